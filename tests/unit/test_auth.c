/* test_auth: the pre-shared key's file rules, its public id, the key ring,
 * and the tcp greeting's proofs and connection keys. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "proto/auth.h"

static char dir[] = "/tmp/test_auth.XXXXXX";

/* path: a file holding text with mode. */
static const char *key_file(const char *name, const char *text, mode_t mode)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
	return path;
}

static int load(const char *path, struct auth_key *k)
{
	struct errbuf e;

	return auth_load_key(path, k, &e);
}

/* The ring finds a key by its id, in either slot, and nothing else. */
static void ring(const struct auth_key *a, const struct auth_key *b)
{
	struct auth_keyring r = { .n = 1 };
	uint8_t ida[AUTH_KEY_ID_BYTES], idb[AUTH_KEY_ID_BYTES];

	r.slot[0] = *a;
	r.slot[1] = *b;
	auth_key_id_bytes(a, ida);
	auth_key_id_bytes(b, idb);
	CHECK(!memcmp(ida, "\xbb\x9a\xb6\x2e\xca\x00\x1f\x66", 8), "id bytes are the hex id's");
	CHECK(auth_keyring_find(&r, ida) == &r.slot[0], "ring: the first slot's key by its id");
	CHECK(!auth_keyring_find(&r, idb), "ring: a slot not in use is not searched");
	r.n = 2;
	CHECK(auth_keyring_find(&r, idb) == &r.slot[1], "ring: the second slot's key by its id");
	r.n = 0;
	CHECK(!auth_keyring_find(&r, ida), "ring: an empty ring holds nothing");
}

static void greeting(const struct auth_key *a, const struct auth_key *b)
{
	uint8_t t[86], mac[CCM_MAC_LEN], tp[32], ta[32], tp2[32], ta2[32];

	for (size_t i = 0; i < sizeof(t); i++)
		t[i] = (uint8_t)i;
	auth_greeting_mac(a, AUTH_PASSIVE, t, sizeof(t), mac);
	CHECK(auth_greeting_verify(a, AUTH_PASSIVE, t, sizeof(t), mac) == 0,
	      "greeting: the passive side's proof verifies");
	CHECK(auth_greeting_verify(a, AUTH_ACTIVE, t, sizeof(t), mac) == -EACCES,
	      "greeting: it is not the active side's (no reflection)");
	CHECK(auth_greeting_verify(b, AUTH_PASSIVE, t, sizeof(t), mac) == -EACCES,
	      "greeting: not under another key");
	t[40] ^= 1;
	CHECK(auth_greeting_verify(a, AUTH_PASSIVE, t, sizeof(t), mac) == -EACCES,
	      "greeting: not for another transcript (a nonce, a version, a node id)");
	CHECK(auth_greeting_verify(a, AUTH_PASSIVE, t, sizeof(t) - 1, mac) == -EACCES,
	      "greeting: not for a shorter one");
	auth_session_keys(a, t, sizeof(t), tp, ta);
	auth_session_keys(a, t, sizeof(t), tp2, ta2);
	CHECK(!memcmp(tp, tp2, 32) && !memcmp(ta, ta2, 32), "keys: both sides derive the same");
	CHECK(memcmp(tp, ta, 32), "keys: one per direction");
	t[0] ^= 1;
	auth_session_keys(a, t, sizeof(t), tp2, ta2);
	CHECK(memcmp(tp, tp2, 32) && memcmp(ta, ta2, 32), "keys: fresh for another transcript");
	auth_session_keys(b, t, sizeof(t), tp, ta);
	CHECK(memcmp(tp, tp2, 32) && memcmp(ta, ta2, 32), "keys: and under another key");
}

/* The keyed mailbox's tag: either slot's key verifies it, nothing else
 * does, and it covers every byte of the mailbox. */
static void mbox_tag(const struct auth_key *a, const struct auth_key *b)
{
	struct auth_keyring r = { .slot = { *a }, .n = 1 };
	uint8_t m[32], tag[AUTH_MBOX_TAG_LEN], bad[AUTH_MBOX_TAG_LEN];
	int flips = 0;

	for (int i = 0; i < 32; i++)
		m[i] = (uint8_t)(i * 7 + 1);
	auth_mbox_tag(a, m, sizeof(m), tag);
	CHECK(auth_mbox_verify(&r, m, sizeof(m), tag) == 0, "mailbox tag: verified under its key");
	r.slot[0] = *b;
	CHECK(auth_mbox_verify(&r, m, sizeof(m), tag) == -EACCES,
	      "mailbox tag: refused under another key");
	r.slot[1] = *a;
	r.n = 2;
	CHECK(auth_mbox_verify(&r, m, sizeof(m), tag) == 0,
	      "mailbox tag: verified under the second slot (a rotation)");
	for (int i = 0; i < 32 * 8; i++) {
		m[i / 8] ^= (uint8_t)(1u << (i % 8));
		flips += auth_mbox_verify(&r, m, sizeof(m), tag) == -EACCES;
		m[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	CHECK(flips == 32 * 8, "mailbox tag: each of the 256 bits flipped is refused (%d)", flips);
	memcpy(bad, tag, sizeof(bad));
	bad[15] ^= 1;
	CHECK(auth_mbox_verify(&r, m, sizeof(m), bad) == -EACCES, "mailbox tag: a changed tag refused");
	r.n = 0;
	CHECK(auth_mbox_verify(&r, m, sizeof(m), tag) == -EACCES, "mailbox tag: no key, no tag holds");
}

int main(void)
{
	struct auth_key a, b;
	char ida[AUTH_KEY_ID_LEN + 1], idb[AUTH_KEY_ID_LEN + 1];

	if (!mkdtemp(dir))
		return 1;
	CHECK(load(key_file("a", "correct horse battery staple\n", 0600), &a) == 0 && a.len == 28,
	      "a key file: its bytes without the trailing newline");
	CHECK(load(key_file("b", "incorrect horse battery staple", 0600), &b) == 0 && b.len == 30,
	      "one without a newline: all of it");
	auth_key_id(&a, ida);
	auth_key_id(&b, idb);
	/* Known answers (HMAC-SHA-256 of "ccm-early key id 1", first 8
	 * bytes): an id must never change between versions, since operators
	 * compare the two nodes' ids. */
	CHECK(!strcmp(ida, "bb9ab62eca001f66"), "the id of a known key: %s", ida);
	CHECK(!strcmp(idb, "bd150f7fd3c014a3"), "another key, another id: %s", idb);
	ring(&a, &b);
	greeting(&a, &b);
	mbox_tag(&a, &b);
	CHECK(load(key_file("g", "correct horse battery staple\n", 0640), &a) == -EPERM,
	      "readable by the group: refused");
	CHECK(load(key_file("s", "short\n", 0600), &a) == -EINVAL, "fewer than 16 bytes: refused");
	auth_wipe_key(&a);
	auth_wipe_key(&b);
	for (const char *n = "abgs"; *n; n++) {
		char path[256];

		snprintf(path, sizeof(path), "%s/%c", dir, *n);
		unlink(path);
	}
	rmdir(dir);
	return check_done();
}
