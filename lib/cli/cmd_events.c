/* cmd_events: `ccm-early events`: follow the keeper's changes, one line
 * each, until it goes (ctl.h CTL_EVENTS, CTL_NOTE).  The format is stable:
 *
 *   TIME exists|change OBJECT ...
 *
 * TIME is when the line was printed (UTC, ISO 8601, milliseconds); OBJECT
 * and what follows it:
 *   state STATE                  the handoff state (connected, unreachable, ...)
 *   handshake STATE              the handshake machine's state
 *   link I STATE                 link I (down, connecting, verifying, damped, up)
 *   partner node=N epoch=E STATE ready, lost or back
 *   failover link=I              link I went down and its traffic moved
 *   client NAME STATE            attached or detached
 *   terminating STATE            stop or restart
 *   -                            (exists only) the end of what is
 * With --json, one object per line with the same fields: time, type,
 * object, and state, link, node, epoch (a string), name where they apply. */
#include "cli/commands.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/exit.h"
#include "base/limits.h"
#include "cli/keeper_request.h"
#include "client/attach.h"
#include "client/ctl.h"
#include "client/fdmsg.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ccm-early events [--state-dir DIR | --instance NAME] [--now] [--json]\n"
		"\n"
		"Follow the keeper's changes, one line each, until it goes: the handoff\n"
		"and handshake states, each link's state, the partner ready, lost or back,\n"
		"failovers, clients attaching and detaching, termination.\n"
		"\n"
		"  --state-dir DIR   where the keeper's socket is\n"
		"  --instance NAME   instance NAME's keeper (default $CCM_INSTANCE)\n"
		"  --now             first what is now (\"exists\" lines, then \"exists -\")\n"
		"  --json            one JSON object per line\n"
		"  -h, --help        this help\n"
		"\n"
		"Exit codes: %d the keeper went (stopped, or restarting); %d no keeper;\n"
		"%d usage error.\n",
		CCM_EXIT_OK, CCM_EXIT_FAILURE, CCM_EXIT_USAGE);
}

static void print_note(const struct ctl_note *n, bool json)
{
	char when[80], state[sizeof(n->state)], name[sizeof(n->name)], text[160];
	struct timespec ts;
	struct tm tm;
	const char *type = n->exists ? "exists" : "change";

	/* The keeper is trusted, but a string must end where it says. */
	snprintf(state, sizeof(state), "%.*s", (int)sizeof(state) - 1, n->state);
	snprintf(name, sizeof(name), "%.*s", (int)sizeof(name) - 1, n->name);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	if (json) {
		printf("{\"time\":\"%s\",\"type\":\"%s\",\"object\":\"%s\"", when, type,
		       ctl_note_object(n->kind));
		if (n->kind == CTL_NOTE_LINK || n->kind == CTL_NOTE_FAILOVER)
			printf(",\"link\":%u", n->link);
		if (n->kind == CTL_NOTE_PARTNER)
			printf(",\"node\":%u,\"epoch\":\"%llu\"", n->partner_node,
			       (unsigned long long)n->partner_epoch);
		if (n->kind == CTL_NOTE_CLIENT)
			printf(",\"name\":\"%s\"", name);  /* a client name needs no escaping */
		if (state[0])
			printf(",\"state\":\"%s\"", state);  /* one of ours: no escaping */
		printf("}\n");
	} else {
		ctl_note_text(n, text, sizeof(text));
		printf("%s %s %s\n", when, type, text);
	}
	fflush(stdout);
}

int cmd_events(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 's' },
		{ "instance", required_argument, NULL, 'i' },
		{ "now", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *instance = NULL;
	struct keeper_dir where;
	struct ctl_events req = { 0 };
	struct ctl_note n;
	struct fdmsg *m;
	struct errbuf e;
	bool json = false;
	int c, sock, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			dir = optarg;
			break;
		case 'i':
			instance = optarg;
			break;
		case 'n':
			req.now = 1;
			break;
		case 'j':
			json = true;
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
	if (client_connect(where.path, &sock, &e) < 0) {
		fprintf(stderr, "%s: %s\n", argv[0], e.msg);
		return CCM_EXIT_FAILURE;
	}
	m = malloc(sizeof(*m));
	r = m ? fdmsg_send(sock, CTL_EVENTS, &req, sizeof(req), -1) : -ENOMEM;
	while (r >= 0) {
		r = fdmsg_recv(sock, m, &e);
		if (r == -EINTR) {
			r = 0;
			continue;
		}
		if (r <= 0)
			break;
		fdmsg_close(m);
		if (m->type == CTL_ERROR) {
			fprintf(stderr, "%s: the keeper refused\n", argv[0]);
			r = -EPROTO;
		} else if (m->type == CTL_NOTE && m->len == sizeof(n)) {
			memcpy(&n, m->data, sizeof(n));
			print_note(&n, json);
		}
	}
	free(m);
	close(sock);
	if (r < 0 && r != -ECONNRESET) {
		fprintf(stderr, "%s: %s\n", argv[0], strerror(-r));
		return CCM_EXIT_FAILURE;
	}
	return CCM_EXIT_OK;  /* the keeper went */
}
