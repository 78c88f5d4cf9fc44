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
#include "proto/status.h"

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

/* Two key slots, as knet has: slot 0 is the key we prove with, and a
 * proof under either is accepted.  Rotating is then: the new key into
 * slot 1 on both nodes; then into slot 0 on both; then slot 1 emptied --
 * at no step do the two nodes fail to understand each other, and a live
 * session, whose connections hold keys of their own, never notices. */
#define AUTH_SLOTS 2
struct auth_keyring {
	struct auth_key slot[AUTH_SLOTS];
	int n;                  /* slots in use, from 0; 0 = no key */
};

/* A key's public name: 16 hex digits of an HMAC of a fixed label under the
 * key.  Shown by status on both nodes, so an operator sees that they hold
 * the same key, and which, without either revealing it. */
#define AUTH_KEY_ID_LEN 16
void auth_key_id(const struct auth_key *k, char id[AUTH_KEY_ID_LEN + 1]);

/* The key id's bytes, as the tcp greeting names the key it proves with. */
#define AUTH_KEY_ID_BYTES (AUTH_KEY_ID_LEN / 2)
void auth_key_id_bytes(const struct auth_key *k, uint8_t id[AUTH_KEY_ID_BYTES]);

/* The ring's key with this id, or NULL. */
const struct auth_key *auth_keyring_find(const struct auth_keyring *r,
					 const uint8_t id[AUTH_KEY_ID_BYTES]);


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

/* The tcp greeting (tcpwire.h).  The transcript is the greeting's bytes
 * as sent: the active side's CONN_REQ body, then the passive side's
 * CONN_REP body up to its mac -- node ids, versions, key id and both
 * fresh nonces, so a proof can be neither replayed nor downgraded.  Each
 * side proves with its own label, so neither's proof can be reflected
 * back as the other's. */
enum auth_role { AUTH_PASSIVE, AUTH_ACTIVE };

void auth_greeting_mac(const struct auth_key *k, enum auth_role prover,
		       const uint8_t *transcript, size_t len, uint8_t mac[CCM_MAC_LEN]);
/* 0 if mac is prover's proof of this transcript under k, -EACCES if not. */
int auth_greeting_verify(const struct auth_key *k, enum auth_role prover,
			 const uint8_t *transcript, size_t len, const uint8_t mac[CCM_MAC_LEN]);

/* The tag of a keyed status-block mailbox (proto/status.h): HMAC-SHA-256
 * under the key, cut to 16 bytes, over the mailbox's 32 bytes, which name
 * the writer's node and epoch and the epoch of the owner it writes to --
 * so a tag of an earlier boot of either node fits no later one.  Written
 * with slot 0; a tag under either slot is accepted, so that a rotation
 * (above) never refuses the partner's mailbox. */
#define AUTH_MBOX_TAG_LEN STATUS_KMBOX_TAG
void auth_mbox_tag(const struct auth_key *k, const uint8_t *mbox, size_t len,
		   uint8_t tag[AUTH_MBOX_TAG_LEN]);
/* 0 if tag is mbox's under a key of r, -EACCES if not (or r holds none). */
int auth_mbox_verify(const struct auth_keyring *r, const uint8_t *mbox, size_t len,
		     const uint8_t tag[AUTH_MBOX_TAG_LEN]);

/* The connection's own keys, one per direction, from the key and the
 * transcript: fresh for every connection. */
#define AUTH_SESSION_KEY_LEN 32
void auth_session_keys(const struct auth_key *k, const uint8_t *transcript, size_t len,
		       uint8_t to_passive[AUTH_SESSION_KEY_LEN],
		       uint8_t to_active[AUTH_SESSION_KEY_LEN]);

#endif
