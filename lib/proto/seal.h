/* seal: the protection of every tcp frame after the greeting.
 *
 * ChaCha20-Poly1305 (IETF, libsodium) with the connection's key for one
 * direction (auth_session_keys) and a 96-bit nonce that is the frame's
 * number in that direction: 4 zero bytes, then the count from 0,
 * big-endian.  TCP delivers in order, so both sides count alike and a
 * replayed, dropped, reordered or forged frame fails its tag.  The frame's
 * header is authenticated as additional data; its body is encrypted in
 * place and followed on the wire by the 16-byte tag.  Pure: no I/O. */
#ifndef CCM_SEAL_H
#define CCM_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define SEAL_KEY_LEN 32
#define SEAL_TAG_LEN 16

struct seal {
	uint8_t key[SEAL_KEY_LEN];
	uint64_t count;         /* frames sealed or opened so far */
};

void seal_init(struct seal *s, const uint8_t key[SEAL_KEY_LEN]);
void seal_wipe(struct seal *s);

/* Encrypt buf in place and write its tag.  -EOVERFLOW once 2^64 frames
 * went (never, in practice: a nonce is never used twice). */
int seal_close(struct seal *s, const uint8_t *ad, size_t ad_len, uint8_t *buf, size_t len,
	       uint8_t tag[SEAL_TAG_LEN]);

/* Check tag and decrypt buf in place: 0, or -EBADMSG (buf is then
 * zeroed, never left half-decrypted, and the count does not move). */
int seal_open(struct seal *s, const uint8_t *ad, size_t ad_len, uint8_t *buf, size_t len,
	      const uint8_t tag[SEAL_TAG_LEN]);

#endif
