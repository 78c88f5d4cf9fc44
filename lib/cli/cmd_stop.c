/* cmd_stop: `ccm-early stop`: ask the keeper to stop (or restart) and
 * wait for its CTL_DONE, which it sends once it has told its clients and
 * the partner. */
#include "cli/commands.h"

#include <getopt.h>
#include <stdio.h>

#include "base/exit.h"
#include "base/num.h"
#include "cli/keeper_request.h"
#include "client/ctl.h"

#define GRACE_DEFAULT_MS 5000u
#define GRACE_MAX_MS     3600000u  /* an hour: anything longer is a typo */
#define ANSWER_SLACK_MS  30000     /* past the grace, for telling the partner */

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ccm-early stop [--state-dir DIR | --instance NAME] [--restart] [--grace MS]\n"
		"\n"
		"Ask the running keeper to tell its clients to close their ports, wait up\n"
		"to the grace time for them, tell the partner, and release the ports and\n"
		"the interconnect.  With --restart it then handshakes again.  Waits for the\n"
		"keeper's answer.  Only root may stop the keeper.\n"
		"\n"
		"  --state-dir DIR   where the keeper's socket is\n"
		"  --instance NAME   instance NAME's keeper (default $CCM_INSTANCE)\n"
		"  --restart         handshake again after stopping\n"
		"  --grace MS        how long clients get to close their ports, 0..%u\n"
		"                    (default %u)\n"
		"  -h, --help        this help\n"
		"\n"
		"Exit codes: %d stopped; %d no keeper running, or it refused or failed;\n"
		"%d usage error.\n",
		GRACE_MAX_MS, GRACE_DEFAULT_MS, CCM_EXIT_OK, CCM_EXIT_FAILURE, CCM_EXIT_USAGE);
}

int cmd_stop(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 's' },
		{ "instance", required_argument, NULL, 'i' },
		{ "restart", no_argument, NULL, 'r' },
		{ "grace", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_stop req = { .restart = 0, .grace_ms = GRACE_DEFAULT_MS };
	const char *dir = NULL, *instance = NULL;
	struct keeper_dir where;
	struct errbuf e = { "" };
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			dir = optarg;
			break;
		case 'i':
			instance = optarg;
			break;
		case 'r':
			req.restart = 1;
			break;
		case 'g':
			if (num_parse_u32(optarg, 0, GRACE_MAX_MS, &req.grace_ms) < 0) {
				fprintf(stderr, "%s: --grace '%s' is not 0 to %u milliseconds\n",
					argv[0], optarg, GRACE_MAX_MS);
				return CCM_EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return CCM_EXIT_OK;
		default:
			usage(stderr);
			return CCM_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], argv[optind]);
		return CCM_EXIT_USAGE;
	}
	if (keeper_dir_settle(argv[0], dir, instance, &where) < 0)
		return CCM_EXIT_USAGE;
	r = keeper_request(where.path, CTL_STOP, &req, sizeof(req), (int)req.grace_ms + ANSWER_SLACK_MS,
			   "stop cleanly", &e);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", argv[0], e.msg);
		return CCM_EXIT_FAILURE;
	}
	printf("keeper stopped: clients told, partner told%s\n",
	       req.restart ? "; handshaking again" : "");
	return CCM_EXIT_OK;
}
