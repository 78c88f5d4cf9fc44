/* cmd_dump: `ccm-early dump`, what the partner's client mirrored into our
 * window of one port, walked and checked with the mirror codec. */
#include "cli/commands.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/exit.h"
#include "base/name.h"
#include "cli/keeper_request.h"
#include "client/ccm.h"
#include "base/num.h"
#include "base/limits.h"
#include "proto/mirror.h"

#define SNAPSHOT_TRIES    50
#define SNAPSHOT_PAUSE_NS (10 * 1000 * 1000)

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ccm-early dump [--state-dir DIR | --instance NAME] [--port N] [--payload] [-v] CLIENT\n"
		"\n"
		"Print what the partner's CLIENT (ccm-nvmirror) mirrored into this node's\n"
		"window of port N: the log's generation, then each record's sequence,\n"
		"offset, length and checksum, checking every one.\n"
		"\n"
		"  --state-dir DIR   the keeper's directory\n"
		"  --instance NAME   instance NAME's keeper (default $CCM_INSTANCE)\n"
		"  --port N          the port (default 0)\n"
		"  --payload         write the records' payloads, concatenated, to stdout\n"
		"                    (the listing then goes to stderr with -v, or nowhere)\n"
		"  -v, --verbose     with --payload: the listing on stderr\n"
		"  -h, --help        this help\n"
		"\n"
		"Exit codes: %d every record checks out; %d a corrupt or torn record (named),\n"
		"nothing mirrored yet, or no keeper to attach to; %d usage error.\n",
		CCM_EXIT_OK, CCM_EXIT_FAILURE, CCM_EXIT_USAGE);
}

/* Copy the window so the walk sees one state of it.  The writer changes
 * records only under a header that does not cover them and commits them by
 * rewriting the header, so a copy taken while the header stayed the same
 * is consistent; one during which it changed is taken again. */
static int snapshot(const uint8_t *win, size_t len, uint8_t *copy)
{
	static const struct timespec pause = { 0, SNAPSHOT_PAUSE_NS };
	uint8_t before[MIRROR_HDR_SIZE];

	for (int i = 0; i < SNAPSHOT_TRIES; i++) {
		memcpy(before, win, sizeof(before));
		memcpy(copy, win, len);
		if (memcmp(before, copy, sizeof(before)) == 0 &&
		    memcmp(before, win, sizeof(before)) == 0)
			return 0;
		nanosleep(&pause, NULL);
	}
	return -EBUSY;
}

static int dump(struct ccm_client *c, int port, const char *name, bool payload,
		bool verbose)
{
	FILE *list = payload ? (verbose ? stderr : NULL) : stdout;
	struct errbuf e = { "" };
	uint8_t *win, *copy;
	size_t len;
	int n;

	win = ccm_window(c, port, &len);
	if (!win) {
		fprintf(stderr, "ccm-early dump: client %s has no port %d (it has %d)\n", name,
			port, ccm_nports(c));
		return CCM_EXIT_FAILURE;
	}
	if (len < MIRROR_WINDOW_MIN || len > MIRROR_WINDOW_MAX) {
		fprintf(stderr, "ccm-early dump: port %d's window of %zu bytes cannot hold "
			"a mirror log\n", port, len);
		return CCM_EXIT_FAILURE;
	}
	copy = malloc(len);
	if (!copy) {
		fprintf(stderr, "ccm-early dump: out of memory for a %zu-byte copy\n", len);
		return CCM_EXIT_FAILURE;
	}
	if (snapshot(win, len, copy) < 0) {
		fprintf(stderr, "ccm-early dump: the partner kept rewriting the log's header; "
			"no consistent copy after %d tries\n", SNAPSHOT_TRIES);
		free(copy);
		return CCM_EXIT_FAILURE;
	}
	n = mirror_print(list, payload ? stdout : NULL, copy, len, &e);
	free(copy);
	if (payload && fflush(stdout) != 0 && n >= 0) {
		fprintf(stderr, "ccm-early dump: writing the payload: %s\n", strerror(errno));
		return CCM_EXIT_FAILURE;
	}
	if (n == -ENODATA) {
		fprintf(stderr, "ccm-early dump: nothing mirrored into %s's port %d yet\n",
			name, port);
		return CCM_EXIT_FAILURE;
	}
	if (n < 0) {
		fprintf(stderr, "ccm-early dump: %s port %d: %s\n", name, port, e.msg);
		return CCM_EXIT_FAILURE;
	}
	return CCM_EXIT_OK;
}

int cmd_dump(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 's' },
		{ "instance", required_argument, NULL, 'i' },
		{ "port", required_argument, NULL, 'p' },
		{ "payload", no_argument, NULL, 'P' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *state_dir = NULL, *instance = NULL, *name;
	struct keeper_dir where;
	bool payload = false, verbose = false;
	struct ccm_client *c;
	uint32_t port = 0;
	int opt, err, rc;

	while ((opt = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			state_dir = optarg;
			break;
		case 'i':
			instance = optarg;
			break;
		case 'p':
			if (num_parse_u32(optarg, 0, CCM_PORTS_MAX - 1, &port) < 0) {
				fprintf(stderr, "ccm-early dump: --port: '%.64s' is not a number "
					"in 0..%d\n", optarg, CCM_PORTS_MAX - 1);
				usage(stderr);
				return CCM_EXIT_USAGE;
			}
			break;
		case 'P':
			payload = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout);
			return CCM_EXIT_OK;
		default:
			usage(stderr);
			return CCM_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "ccm-early dump: %s\n",
			optind < argc ? "one CLIENT only" : "which CLIENT?");
		usage(stderr);
		return CCM_EXIT_USAGE;
	}
	name = argv[optind];
	if (!client_name_valid(name, strnlen(name, CCM_NAME_MAX + 1))) {
		fprintf(stderr, "ccm-early dump: '%.64s' is not a client name (" CLIENT_NAME_RULE
			")\n", name);
		return CCM_EXIT_USAGE;
	}
	if (keeper_dir_settle(argv[0], state_dir, instance, &where) < 0)
		return CCM_EXIT_USAGE;
	err = ccm_attach(name, where.path, &c);
	if (err < 0) {
		fprintf(stderr, "ccm-early dump: attaching to %s: %s\n", name, ccm_strerror(err));
		return CCM_EXIT_FAILURE;
	}
	rc = dump(c, (int)port, name, payload, verbose);
	ccm_detach(c);
	return rc;
}
