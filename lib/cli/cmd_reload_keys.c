/* cmd_reload_keys: `ccm-early reload-keys`: ask the keeper to read its key
 * files again (psk-file, psk-accept-file), as SIGHUP does, and say which
 * keys it holds now -- or why it kept the ones it had. */
#include "cli/commands.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/exit.h"
#include "base/limits.h"
#include "cli/keeper_request.h"
#include "client/ctl.h"
#include "state/handoff.h"

#define ANSWER_MS 10000

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ccm-early reload-keys [--state-dir DIR | --instance NAME]\n"
		"\n"
		"Ask the running keeper to read its key files again (psk-file, and\n"
		"psk-accept-file if it exists), as SIGHUP does, and use them from the next\n"
		"connection on; live connections keep theirs.  If a file cannot be read, the\n"
		"keeper keeps the keys it holds and says why.  Only root may ask.  This is\n"
		"how keys are rotated without losing the session (README: Rotating the key).\n"
		"\n"
		"  --state-dir DIR   where the keeper's socket is\n"
		"  --instance NAME   instance NAME's keeper (default $CCM_INSTANCE)\n"
		"  -h, --help        this help\n"
		"\n"
		"Exit codes: %d keys read again; %d no keeper running, or it kept its keys;\n"
		"%d usage error.\n",
		CCM_EXIT_OK, CCM_EXIT_FAILURE, CCM_EXIT_USAGE);
}

int cmd_reload_keys(int argc, char **argv)
{
	struct keeper_dir dir;
	struct errbuf e = { "" };
	struct handoff *h;
	int c;

	c = keeper_dir_args(argc, argv, usage, CCM_EXIT_USAGE, &dir);
	if (c >= 0)
		return c;
	if (keeper_request(dir.path, CTL_RELOAD_KEYS, NULL, 0, ANSWER_MS, "read its keys", &e) < 0) {
		fprintf(stderr, "%s: %s\n", argv[0], e.msg);
		return CCM_EXIT_FAILURE;
	}
	/* The keeper wrote its handoff with the new ids before it answered. */
	h = calloc(1, sizeof(*h));
	if (h && handoff_read(dir.path, h, &e) == 0)
		printf("keys read again: proving with id %s%s%s\n", h->key_id,
		       h->key_accept_id[0] ? ", also accepting id " : "", h->key_accept_id);
	else
		printf("keys read again\n");
	free(h);
	return CCM_EXIT_OK;
}
