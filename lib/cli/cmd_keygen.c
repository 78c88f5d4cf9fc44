/* cmd_keygen: `ccm-early keygen FILE`: a new pre-shared key.
 *
 * 32 random bytes from the kernel, written as 64 hex digits and a newline
 * (the key is the file's bytes, auth.h; hex keeps it printable for copying
 * to the partner).  The file is created with mode 0600 and never replaces
 * one that exists unless --force says so: overwriting the key a running
 * pair uses would cut it off at its next handshake. */
#include "cli/commands.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/exit.h"
#include "proto/auth.h"

#define KEY_RANDOM_BYTES 32

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ccm-early keygen [--force] FILE\n"
		"\n"
		"Write a new pre-shared key (%d random bytes as hex) to FILE, mode 0600, and\n"
		"print its id, which 'ccm-early status' shows on both nodes.  Copy FILE to the\n"
		"partner over a trusted channel and name it in psk-file on both nodes.\n"
		"\n"
		"  --force       replace FILE if it exists\n"
		"  -h, --help    this help\n",
		KEY_RANDOM_BYTES);
}

int cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint8_t raw[KEY_RANDOM_BYTES];
	char text[2 * KEY_RANDOM_BYTES + 1], id[AUTH_KEY_ID_LEN + 1];
	struct auth_key key = { .len = 2 * KEY_RANDOM_BYTES };
	bool force = false;
	const char *path;
	int c, fd, r;

	while ((c = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			force = true;
			break;
		case 'h':
			usage(stdout);
			return CCM_EXIT_OK;
		default:
			usage(stderr);
			return CCM_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "%s: give one FILE\n", argv[0]);
		usage(stderr);
		return CCM_EXIT_USAGE;
	}
	path = argv[optind];
	r = auth_random(raw, sizeof(raw));
	if (r < 0) {
		fprintf(stderr, "%s: no random bytes: %s\n", argv[0], strerror(-r));
		return CCM_EXIT_FAILURE;
	}
	hex_encode(text, raw, sizeof(raw));
	text[sizeof(text) - 1] = '\n';  /* over the NUL: the file is text */
	/* O_EXCL unless forced; the mode is the file's from its creation on,
	 * and a replaced file is made private before the key goes in. */
	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (force ? O_TRUNC : O_EXCL),
		  0600);
	if (fd < 0) {
		fprintf(stderr, "%s: %s: %s%s\n", argv[0], path, strerror(errno),
			errno == EEXIST ? " (--force replaces it)" : "");
		r = errno == EEXIST ? CCM_EXIT_USAGE : CCM_EXIT_FAILURE;
		goto out;
	}
	if (fchmod(fd, 0600) < 0 || (r = write_all(fd, text, sizeof(text))) < 0 ||
	    (r = fsync(fd) < 0 ? -errno : 0) < 0) {
		r = r < 0 ? r : -errno;
		fprintf(stderr, "%s: %s: %s\n", argv[0], path, strerror(-r));
		close(fd);
		unlink(path);
		r = CCM_EXIT_FAILURE;
		goto out;
	}
	if (close(fd) < 0) {
		fprintf(stderr, "%s: %s: %s\n", argv[0], path, strerror(errno));
		r = CCM_EXIT_FAILURE;
		goto out;
	}
	/* The id of the key as the keeper will load it: the file's bytes
	 * without the trailing newline. */
	memcpy(key.bytes, text, key.len);
	auth_key_id(&key, id);
	printf("key written to %s (id %s)\n", path, id);
	r = CCM_EXIT_OK;
out:
	auth_wipe_key(&key);
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(text, sizeof(text));
	return r;
}
