/* cmd_exec: `ccm-early exec CLIENT -- COMMAND`: attach to CLIENT the way
 * libccm does (client_attach.h) and exec COMMAND with the channel, windows
 * and event fds handed over as socket activation hands sockets (listenfds.h).
 * The channel itself goes along, so the service talks to the keeper over
 * the connection this process attached, with no second attach. */
#include "cli/commands.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/exit.h"
#include "base/name.h"
#include "cli/keeper_request.h"
#include "client/ccm.h"
#include "client/attach.h"
#include "client/listenfds.h"

/* The control channel and two fds per port must fit the hand-over. */
#define EXEC_PORTS_MAX ((LISTENFDS_MAX - 1) / 2)

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ccm-early exec [--state-dir DIR | --instance NAME] CLIENT -- COMMAND [ARGS...]\n"
		"\n"
		"Attach to CLIENT's ports on the running keeper and run COMMAND with them,\n"
		"as systemd socket activation passes sockets: fd 3 is the control channel,\n"
		"then each port's window memfd and event fd, with LISTEN_FDS, LISTEN_PID and\n"
		"LISTEN_FDNAMES=ccm.control:ccm.window.0:ccm.event.0:... set.  libccm's\n"
		"ccm_attach() takes them.  At most %d ports can be handed over this way.\n"
		"With --instance, COMMAND also gets CCM_INSTANCE=NAME.\n"
		"\n"
		"  --state-dir DIR   where the keeper's socket is\n"
		"  --instance NAME   instance NAME's keeper (default $CCM_INSTANCE)\n"
		"  -h, --help        this help\n"
		"\n"
		"Exit codes (when COMMAND could not be started): %d failure (no keeper,\n"
		"refused, COMMAND not found), %d usage error.\n",
		EXEC_PORTS_MAX, CCM_EXIT_FAILURE, CCM_EXIT_USAGE);
}

/* fds[] and names[] in the order the usage text promises. */
static int hand_over(const struct client_fds *f, struct errbuf *e)
{
	char names_buf[LISTENFDS_MAX][24];
	const char *names[LISTENFDS_MAX];
	int fds[LISTENFDS_MAX], n = 1, p;

	fds[0] = f->sock;
	names[0] = "ccm.control";
	for (p = 0; p < f->nports; p++, n += 2) {
		snprintf(names_buf[n], sizeof(names_buf[n]), "ccm.window.%d", p);
		snprintf(names_buf[n + 1], sizeof(names_buf[n + 1]), "ccm.event.%d", p);
		fds[n] = f->window[p];
		fds[n + 1] = f->event[p];
		names[n] = names_buf[n];
		names[n + 1] = names_buf[n + 1];
	}
	return listenfds_install(fds, names, n, e);
}

int cmd_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 's' },
		{ "instance", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *instance = NULL, *name;
	struct keeper_dir where;
	struct client_fds *f;
	struct errbuf e = { "" };
	char **cmd;
	int c, r;

	/* '+': options end at CLIENT, so COMMAND's own options stay its own. */
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			dir = optarg;
			break;
		case 'i':
			instance = optarg;
			break;
		case 'h':
			usage(stdout);
			return CCM_EXIT_OK;
		default:
			usage(stderr);
			return CCM_EXIT_USAGE;
		}
	}
	if (argc - optind < 3 || strcmp(argv[optind + 1], "--")) {
		fprintf(stderr, "%s: expected CLIENT -- COMMAND\n", argv[0]);
		usage(stderr);
		return CCM_EXIT_USAGE;
	}
	name = argv[optind];
	cmd = argv + optind + 2;
	if (!client_name_valid(name, strnlen(name, CCM_NAME_MAX + 1))) {
		fprintf(stderr, "%s: '%s' is not a client name (" CLIENT_NAME_RULE ")\n",
			argv[0], name);
		return CCM_EXIT_USAGE;
	}
	if (keeper_dir_settle(argv[0], dir, instance, &where) < 0)
		return CCM_EXIT_USAGE;
	/* The service then finds its own keeper again, as libccm does. */
	if (instance && setenv(INSTANCE_ENV, instance, 1) < 0) {
		fprintf(stderr, "%s: setenv: %s\n", argv[0], strerror(errno));
		return CCM_EXIT_FAILURE;
	}

	f = malloc(sizeof(*f));
	if (!f) {
		fprintf(stderr, "%s: out of memory\n", argv[0]);
		return CCM_EXIT_FAILURE;
	}
	r = client_attach_fds(name, where.path, f, &e);
	if (r < 0) {
		fprintf(stderr, "%s: attaching to '%s': %s (%s)\n", argv[0], name,
			ccm_strerror(r), e.msg);
		free(f);
		return CCM_EXIT_FAILURE;
	}
	if (f->nports > EXEC_PORTS_MAX) {
		fprintf(stderr, "%s: '%s' has %d ports; exec can hand over at most %d\n",
			argv[0], name, f->nports, EXEC_PORTS_MAX);
		client_fds_close(f);
		free(f);
		return CCM_EXIT_FAILURE;
	}
	r = hand_over(f, &e);
	/* From here the fds are not closed by number: install may have moved
	 * others onto those numbers.  The originals are close-on-exec, so
	 * exec drops them, and a failed exec ends this process anyway. */
	free(f);
	if (r < 0) {
		fprintf(stderr, "%s: handing over the fds: %s\n", argv[0], e.msg);
		return CCM_EXIT_FAILURE;
	}
	execvp(cmd[0], cmd);
	fprintf(stderr, "%s: %s: %s\n", argv[0], cmd[0], strerror(errno));
	return CCM_EXIT_FAILURE;
}
