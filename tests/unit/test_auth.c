/* test_auth: the pre-shared key's file rules and its public id. */
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
