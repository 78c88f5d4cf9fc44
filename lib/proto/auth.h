/* auth: proof that both sides hold the same pre-shared key.
 *
 * Each side sends a fresh random nonce in HELLO, then an AUTH message whose
 * mac is HMAC-SHA-256 (libsodium) keyed with the PSK over
 *   "ccm-early auth 1" | sender node | receiver node | sender epoch |
 *   receiver epoch | sender nonce | receiver nonce | chosen version
 * (integers big-endian).  Binding both nonces defeats replay of an old
 * proof; binding the direction (sender first) defeats reflecting the
 * partner's own proof back at it.  Macs are compared in constant time. */
#ifndef CCM_AUTH_H
#define CCM_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "base/errbuf.h"
#include "base/limits.h"

struct auth_key {
	uint8_t bytes[CCM_PSK_MAX];
	uint32_t len;
};

struct auth_party {
	uint32_t node;
	uint64_t epoch;
	const uint8_t *nonce;   /* CCM_NONCE_LEN bytes */
};

/* Load a key file: its bytes are the key (one trailing newline dropped),
 * CCM_PSK_MIN..CCM_PSK_MAX of them.  The file must be a regular file that
 * neither group nor others may read or write. */
int auth_load_key(const char *path, struct auth_key *k, struct errbuf *e);

void auth_wipe_key(struct auth_key *k);

/* A key's public name: 16 hex digits of an HMAC of a fixed label under the
 * key.  Shown by status on both nodes, so an operator sees that they hold
 * the same key, and which, without either revealing it. */
#define AUTH_KEY_ID_LEN 16
void auth_key_id(const struct auth_key *k, char id[AUTH_KEY_ID_LEN + 1]);

/* len fresh random bytes from the kernel (getrandom). */
int auth_random(uint8_t *buf, size_t len);

/* Fresh random bytes from the kernel; blocks only until the kernel's pool
 * is initialised, once per boot. */
int auth_nonce(uint8_t nonce[CCM_NONCE_LEN]);

void auth_mac(const struct auth_key *k, const struct auth_party *sender,
	      const struct auth_party *receiver, uint16_t version, uint8_t mac[CCM_MAC_LEN]);

/* 0 if mac is sender's proof for this exchange, -EACCES if not. */
int auth_verify(const struct auth_key *k, const struct auth_party *sender,
		const struct auth_party *receiver, uint16_t version, const uint8_t mac[CCM_MAC_LEN]);

#endif
