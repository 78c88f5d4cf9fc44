#include "proto/auth.h"
#include "base/be.h"
#include "base/bytes.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

static const char auth_label[] = "ccm-early auth 1";

/* Only libsodium's HMAC-SHA-256, constant-time compare and wipe are used.
 * None of them needs sodium_init(), whose CPU-dispatch set-up would link
 * every other primitive (some 120 KiB) into the static binary; nonces come
 * from the kernel's getrandom() directly. */

int auth_load_key(const char *path, struct auth_key *k, struct errbuf *e)
{
	/* Room for the longest key, its newline, and one byte more to
	 * catch a file that is too long. */
	uint8_t buf[CCM_PSK_MAX + 2];
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd, err;

	memset(k, 0, sizeof(*k));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0 && errno == ELOOP)
		return errbuf_set(e, -EINVAL, "key file %s is a symbolic link; give the file's "
				  "own path", path);
	if (fd < 0)
		return errbuf_set(e, -errno, "key file %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		err = errbuf_set(e, -errno, "key file %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err = errbuf_set(e, -EINVAL, "key file %s is not a regular file", path);
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		err = errbuf_set(e, -EPERM, "key file %s is accessible by group or others "
				 "(mode %03o); chmod 600 it", path, (unsigned)(st.st_mode & 0777));
		goto out;
	}
	while (got < sizeof(buf)) {
		n = read(fd, buf + got, sizeof(buf) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errbuf_set(e, -errno, "key file %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got && buf[got - 1] == '\n')
		got--;
	if (got > CCM_PSK_MAX) {
		err = errbuf_set(e, -EINVAL, "key file %s is longer than %d bytes", path, CCM_PSK_MAX);
		goto out;
	}
	if (got < CCM_PSK_MIN) {
		err = errbuf_set(e, -EINVAL, "key file %s holds %zu bytes; at least %d are needed",
				 path, got, CCM_PSK_MIN);
		goto out;
	}
	memcpy(k->bytes, buf, got);
	k->len = (uint32_t)got;
	err = 0;
out:
	sodium_memzero(buf, sizeof(buf));
	close(fd);
	return err;
}

void auth_wipe_key(struct auth_key *k)
{
	sodium_memzero(k, sizeof(*k));
}

int auth_random(uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = getrandom(buf + got, len - got, 0);

		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			got += (size_t)n;
	}
	return 0;
}

int auth_nonce(uint8_t nonce[CCM_NONCE_LEN])
{
	return auth_random(nonce, CCM_NONCE_LEN);
}

/* HMAC-SHA-256 under k of label then data. */
static void hmac_labelled(const struct auth_key *k, const char *label, const uint8_t *data,
			  size_t len, uint8_t mac[crypto_auth_hmacsha256_BYTES])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, k->bytes, k->len);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)label, strlen(label));
	if (len)
		crypto_auth_hmacsha256_update(&st, data, len);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof(st));
}

void auth_key_id_bytes(const struct auth_key *k, uint8_t id[AUTH_KEY_ID_BYTES])
{
	uint8_t mac[crypto_auth_hmacsha256_BYTES];

	hmac_labelled(k, "ccm-early key id 1", NULL, 0, mac);
	memcpy(id, mac, AUTH_KEY_ID_BYTES);
}

void auth_key_id(const struct auth_key *k, char id[AUTH_KEY_ID_LEN + 1])
{
	uint8_t raw[AUTH_KEY_ID_BYTES];

	auth_key_id_bytes(k, raw);
	hex_encode(id, raw, sizeof(raw));
}

const struct auth_key *auth_keyring_find(const struct auth_keyring *r,
					 const uint8_t id[AUTH_KEY_ID_BYTES])
{
	uint8_t have[AUTH_KEY_ID_BYTES];

	for (int i = 0; i < r->n && i < AUTH_SLOTS; i++) {
		auth_key_id_bytes(&r->slot[i], have);
		if (memcmp(have, id, sizeof(have)) == 0)
			return &r->slot[i];
	}
	return NULL;
}

static const char *const greeting_label[] = {
	[AUTH_PASSIVE] = "ccm-early tcp greeting passive 1",
	[AUTH_ACTIVE] = "ccm-early tcp greeting active 1",
};

void auth_greeting_mac(const struct auth_key *k, enum auth_role prover,
		       const uint8_t *transcript, size_t len, uint8_t mac[CCM_MAC_LEN])
{
	hmac_labelled(k, greeting_label[prover], transcript, len, mac);
}

/* 0 if mac is want, -EACCES if not, in constant time; want is wiped. */
static int mac_matches(uint8_t want[CCM_MAC_LEN], const uint8_t mac[CCM_MAC_LEN])
{
	int r = crypto_verify_32(want, mac) == 0 ? 0 : -EACCES;

	sodium_memzero(want, CCM_MAC_LEN);
	return r;
}

int auth_greeting_verify(const struct auth_key *k, enum auth_role prover,
			 const uint8_t *transcript, size_t len, const uint8_t mac[CCM_MAC_LEN])
{
	uint8_t want[CCM_MAC_LEN];

	auth_greeting_mac(k, prover, transcript, len, want);
	return mac_matches(want, mac);
}

void auth_mbox_tag(const struct auth_key *k, const uint8_t *mbox, size_t len,
		   uint8_t tag[AUTH_MBOX_TAG_LEN])
{
	uint8_t mac[crypto_auth_hmacsha256_BYTES];

	hmac_labelled(k, "ccm-early mailbox 1", mbox, len, mac);
	memcpy(tag, mac, AUTH_MBOX_TAG_LEN);
	sodium_memzero(mac, sizeof(mac));
}

int auth_mbox_verify(const struct auth_keyring *r, const uint8_t *mbox, size_t len,
		     const uint8_t tag[AUTH_MBOX_TAG_LEN])
{
	uint8_t want[AUTH_MBOX_TAG_LEN];
	int ok = 0;

	for (int i = 0; i < r->n && i < AUTH_SLOTS; i++) {
		auth_mbox_tag(&r->slot[i], mbox, len, want);
		ok |= crypto_verify_16(want, tag) == 0;
	}
	sodium_memzero(want, sizeof(want));
	return ok ? 0 : -EACCES;
}

void auth_session_keys(const struct auth_key *k, const uint8_t *transcript, size_t len,
		       uint8_t to_passive[AUTH_SESSION_KEY_LEN],
		       uint8_t to_active[AUTH_SESSION_KEY_LEN])
{
	hmac_labelled(k, "ccm-early tcp key to passive 1", transcript, len, to_passive);
	hmac_labelled(k, "ccm-early tcp key to active 1", transcript, len, to_active);
}


void auth_mac(const struct auth_key *k, const struct auth_party *sender,
	      const struct auth_party *receiver, uint16_t version, uint8_t mac[CCM_MAC_LEN])
{
	crypto_auth_hmacsha256_state st;
	uint8_t ids[4 + 4 + 8 + 8 + 2];

	be_put(ids, sender->node, 4);
	be_put(ids + 4, receiver->node, 4);
	be_put(ids + 8, sender->epoch, 8);
	be_put(ids + 16, receiver->epoch, 8);
	be_put(ids + 24, version, 2);
	crypto_auth_hmacsha256_init(&st, k->bytes, k->len);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)auth_label, sizeof(auth_label) - 1);
	crypto_auth_hmacsha256_update(&st, ids, sizeof(ids));
	crypto_auth_hmacsha256_update(&st, sender->nonce, CCM_NONCE_LEN);
	crypto_auth_hmacsha256_update(&st, receiver->nonce, CCM_NONCE_LEN);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof(st));
}

int auth_verify(const struct auth_key *k, const struct auth_party *sender,
		const struct auth_party *receiver, uint16_t version, const uint8_t mac[CCM_MAC_LEN])
{
	uint8_t want[CCM_MAC_LEN];

	auth_mac(k, sender, receiver, version, want);
	return mac_matches(want, mac);
}
