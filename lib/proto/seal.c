#include "proto/seal.h"
#include "base/be.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

/* No sodium_init() (see auth.c): the portable ChaCha20 and Poly1305 that
 * libsodium uses until then are what we get, which keeps the rest of its
 * primitives out of the static binary. */

void seal_init(struct seal *s, const uint8_t key[SEAL_KEY_LEN])
{
	memcpy(s->key, key, SEAL_KEY_LEN);
	s->count = 0;
}

void seal_wipe(struct seal *s)
{
	sodium_memzero(s, sizeof(*s));
}

static void nonce_for(uint64_t count, uint8_t n[crypto_aead_chacha20poly1305_ietf_NPUBBYTES])
{
	memset(n, 0, 4);
	be_put(n + 4, count, 8);
}

int seal_close(struct seal *s, const uint8_t *ad, size_t ad_len, uint8_t *buf, size_t len,
	       uint8_t tag[SEAL_TAG_LEN])
{
	uint8_t n[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];

	if (s->count == UINT64_MAX)
		return -EOVERFLOW;
	nonce_for(s->count, n);
	crypto_aead_chacha20poly1305_ietf_encrypt_detached(buf, tag, NULL, buf, len, ad, ad_len,
							   NULL, n, s->key);
	s->count++;
	return 0;
}

int seal_open(struct seal *s, const uint8_t *ad, size_t ad_len, uint8_t *buf, size_t len,
	      const uint8_t tag[SEAL_TAG_LEN])
{
	uint8_t n[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];

	if (s->count == UINT64_MAX)
		return -EBADMSG;
	nonce_for(s->count, n);
	if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(buf, NULL, buf, len, tag, ad,
							       ad_len, n, s->key) != 0)
		return -EBADMSG;
	s->count++;
	return 0;
}
