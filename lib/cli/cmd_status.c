/* cmd_status: `ccm-early status`: what the keeper says, or else the handoff
 * file, judged.  A running keeper is asked over its socket (CTL_STATE): it
 * knows the state even when it could not write the file (a full disk).
 * Without an answer the file is read, and believed only if the process it
 * names is still there and is the keeper; otherwise it is stale. */
#include "cli/commands.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/exit.h"
#include "base/limits.h"
#include "cli/keeper_request.h"
#include "client/attach.h"
#include "client/ctl.h"
#include "client/fdmsg.h"
#include "conf/client_desc.h"
#include "proto/link_policy.h"
#include "state/handoff.h"
#include "state/metrics.h"

#define ANSWER_MS 2000  /* a keeper that takes longer is not serving */

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ccm-early status [--state-dir DIR | --instance NAME] [--json]\n"
		"\n"
		"Show the state of this node: the running keeper's answer over its socket,\n"
		"or else the handoff file that 'ccm-early connect' wrote.  A file whose\n"
		"writer is gone, or is not the keeper, or does not answer, is shown as\n"
		"stale.  Told no instance, every instance of the node (--json: an array).\n"
		"\n"
		"  --state-dir DIR   handoff directory\n"
		"  --instance NAME   instance NAME's keeper\n"
		"  --json            print the state as JSON\n"
		"  -h, --help        this help\n"
		"\n"
		"Exit codes (the largest of several): %d connected; %d not connected (or no\n"
		"state yet); %d usage error or a corrupt state file; %d stale state.\n",
		CCM_EXIT_OK, CCM_EXIT_FAILURE, CCM_EXIT_USAGE, CCM_EXIT_STALE);
}

/* Colour for a terminal only, and never when $NO_COLOR is set
 * (no-color.org) or the terminal is dumb: a script reading status gets
 * the same text whatever it runs under. */
static bool colour_wanted(void)
{
	const char *term = getenv("TERM"), *no = getenv("NO_COLOR");

	return isatty(STDOUT_FILENO) && !(no && no[0]) && !(term && !strcmp(term, "dumb"));
}

enum paint { PAINT_GOOD, PAINT_WARN, PAINT_BAD };

/* word, in the paint's colour when colour is on. */
static void painted(bool colour, enum paint p, const char *word)
{
	static const char *const sgr[] = { "32", "33", "1;31" };

	if (colour)
		printf("\033[%sm%s\033[0m", sgr[p], word);
	else
		fputs(word, stdout);
}

/* The state at a glance, in the manner of `drbdadm status`: the instance
 * and this node's state on the first line, then indented one line for the
 * partner, one for the session's terms, one per link, one per client, and
 * what is wrong.  Every value is KEY:VALUE without spaces, so a script can
 * split a line on blanks (the JSON form is for programs). */
static void print_status(const struct handoff *h, const char *instance, const char *stale,
			 bool colour)
{
	enum paint p = h->state == HANDOFF_CONNECTED ? PAINT_GOOD :
		       h->state == HANDOFF_HANDSHAKING ? PAINT_WARN : PAINT_BAD;

	printf("%s node:%u epoch:%llu listen:%s state:", instance, h->node,
	       (unsigned long long)h->epoch, h->listen_addr);
	if (stale) {
		painted(colour, PAINT_BAD, "stale");
		printf(" last-state:%s", handoff_state_name(h->state));
	} else {
		painted(colour, p, handoff_state_name(h->state));
	}
	printf("\n");
	if (h->partner_node)
		printf("  partner node:%u epoch:%llu at:%s\n", h->partner_node,
		       (unsigned long long)h->partner_epoch, h->partner_addr);
	else
		printf("  partner node:unknown at:%s\n", h->partner_addr);
	printf("  transport:%s cluster:%s", h->transport, h->cluster);
	if (h->version)
		printf(" version:%u", h->version);
	printf(" key:%s", h->key_id[0] ? h->key_id : "none");
	if (h->key_accept_id[0])
		printf(" accepting:%s", h->key_accept_id);
	printf(" handshake:%s\n", h->hs_state);
	for (int i = 0; i < h->nlinks; i++) {
		const struct handoff_link *l = &h->links[i];

		printf("  link:%d ", i);
		painted(colour, l->state == LINK_UP ? PAINT_GOOD : PAINT_BAD,
			link_state_name(l->state));
		printf(" %s->%s%s%s ports:%u ops:%llu msgs:%llu downs:%llu\n", l->local,
		       l->partner, l->device[0] ? " device:" : "", l->device, l->ports,
		       (unsigned long long)l->ops, (unsigned long long)l->msgs,
		       (unsigned long long)l->downs);
	}
	for (int i = 0; i < h->nclients; i++) {
		printf("  client:%s ", h->clients[i].name);
		painted(colour, h->clients[i].status == MATCH_OK ? PAINT_GOOD : PAINT_WARN,
			client_match_name(h->clients[i].status));
		printf(" ports:%u port-size:%u\n", h->clients[i].nports, h->clients[i].port_size);
	}
	for (int i = 0; i < h->nbad; i++)
		printf("  bad-descriptor: %s\n", h->bad[i]);
	if (h->error[0])
		printf("  error: %s\n", h->error);
	if (stale)
		printf("  stale: %s\n", stale);
	printf("  pid:%u updated:%llu\n", h->pid, (unsigned long long)h->updated);
}

/* --- the keeper's answer --------------------------------------------------------- */

/* Ask the keeper for its state.  1 and *h when it answered; 0 when there
 * is no keeper or it gave no usable answer (*keeper_pid: who owns the
 * socket, 0 = nobody; *silent: it owns it but did not answer in time). */
static int ask_keeper(const char *dir, struct handoff *h, int *keeper_pid, bool *silent)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct fdmsg *m = NULL;
	struct errbuf e;
	int sock, r = 0;

	*keeper_pid = 0;
	*silent = false;
	if (client_connect(dir, &sock, &e) < 0)
		return 0;
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
		*keeper_pid = (int)cred.pid;
	m = malloc(sizeof(*m));
	if (!m || fdmsg_send(sock, CTL_STATE, NULL, 0, -1) < 0)
		goto out;
	r = fdmsg_recv_within(sock, ANSWER_MS, m, &e);
	if (r == -ETIMEDOUT)
		*silent = true;
	if (r > 0)
		fdmsg_close(m);
	/* An older keeper refuses CTL_STATE; a state too large for one
	 * message is refused too.  Either way the keeper is there and
	 * serving: its file is judged as a live keeper's. */
	r = r > 0 && m->type == CTL_STATE_REPLY &&
	    handoff_parse((const char *)m->data, m->len, h, &e) == 0;
out:
	free(m);
	close(sock);
	return r;
}

/* --- the file's writer ----------------------------------------------------------- */

/* /proc/PID/stat: the state letter and the start time (clock ticks since
 * boot, field 22).  The command name (field 2) may hold anything. */
static int proc_stat(pid_t pid, char *state, unsigned long long *start)
{
	char path[40], buf[1024], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
			  "%*d %*d %*d %*d %llu", state, start) != 2)
		return -EPROTO;
	return 0;
}

static unsigned long long boot_time(void)
{
	char line[128];
	unsigned long long t = 0;
	FILE *f = fopen("/proc/stat", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %llu", &t) == 1)
			break;
	fclose(f);
	return t;
}

static void find_writer(uint32_t pid, struct handoff_writer *w)
{
	unsigned long long start, btime;
	long hz = sysconf(_SC_CLK_TCK);
	char st;
	int r;

	w->exists = pid > 0 && (kill((pid_t)pid, 0) == 0 || errno != ESRCH);
	if (!w->exists)
		return;
	r = proc_stat((pid_t)pid, &st, &start);
	if (r == -ENOENT) {
		w->exists = false;
		return;
	}
	if (r < 0)
		return;
	w->zombie = st == 'Z' || st == 'X';
	btime = boot_time();
	if (btime && hz > 0)
		w->started = btime + start / (unsigned long long)hz;
}

/* --- the command ----------------------------------------------------------------- */

static int show(const struct handoff *h, const char *stale, bool json)
{
	if (json) {
		char *buf = malloc(HANDOFF_TEXT_MAX);
		int n = -ENOMEM;

		if (buf)
			n = stale ? handoff_format_json_stale(h, stale, buf, HANDOFF_TEXT_MAX)
				  : handoff_format_json(h, buf, HANDOFF_TEXT_MAX);
		if (n > 0)
			fwrite(buf, 1, (size_t)n, stdout);
		free(buf);
	} else {
		print_status(h, h->instance[0] ? h->instance : "default", stale, colour_wanted());
	}
	if (stale)
		return CCM_EXIT_STALE;
	return h->state == HANDOFF_CONNECTED ? CCM_EXIT_OK : CCM_EXIT_FAILURE;
}

/* What is true now: the keeper's answer, or else its file, judged by
 * whether the process that wrote it is still the keeper (*stale, why).  0,
 * or an exit code when there is neither (said on stderr). */
static int current_state(const char *prog, const char *dir, struct handoff *h, char *why,
			 size_t cap, bool *stale)
{
	struct handoff_writer w = { 0 };
	struct errbuf e;
	int r;

	*stale = false;
	if (ask_keeper(dir, h, &w.keeper_pid, &w.keeper_silent))
		return 0;  /* the keeper's answer is the truth */
	r = handoff_read(dir, h, &e);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", prog, e.msg);
		return r == -ENOENT ? CCM_EXIT_FAILURE : CCM_EXIT_USAGE;
	}
	find_writer(h->pid, &w);
	*stale = handoff_stale(h, &w, why, cap);
	return 0;
}

/* --- which instances -------------------------------------------------------------- */

/* A command told which keeper (d->chosen) shows that one.  Otherwise it
 * shows every instance of this node: the unnamed one when it has ever run
 * here (or when there is no other, to say there is none), then each named
 * one.  fn gets each state directory, its place among them (nth, from 0)
 * and how many there are; the largest exit code it returned is the
 * command's. */
static int for_each_instance(const char *prog, const struct keeper_dir *d,
			     int (*fn)(const char *prog, const char *dir, int nth, int total,
				       void *ctx),
			     void *ctx)
{
	char (*names)[CCM_NAME_MAX + 1], dir[INSTANCE_PATH_MAX], probe[INSTANCE_PATH_MAX + 16];
	int n, nth = 0, worst = 0, r;
	bool unnamed;

	if (d->chosen)
		return fn(prog, d->path, 0, 1, ctx);
	names = calloc(INSTANCES_MAX, sizeof(*names));
	if (!names)
		return CCM_EXIT_FAILURE;
	n = instance_list(names, INSTANCES_MAX);
	if (n < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, instance_run_dir(), strerror(-n));
		n = 0;
	}
	snprintf(probe, sizeof(probe), "%s/state", d->path);
	unnamed = n == 0 || access(probe, F_OK) == 0;
	snprintf(probe, sizeof(probe), "%s/%s", d->path, CTL_SOCKET_NAME);
	unnamed = unnamed || access(probe, F_OK) == 0;
	if (unnamed) {
		r = fn(prog, d->path, nth++, n + 1, ctx);
		worst = r > worst ? r : worst;
	}
	for (int i = 0; i < n; i++) {
		/* Cannot fail: the run directory was opened, and a name is short. */
		if (instance_state_dir(names[i], dir, sizeof(dir)) < 0)
			continue;
		r = fn(prog, dir, nth++, n + unnamed, ctx);
		worst = r > worst ? r : worst;
	}
	free(names);
	return worst;
}

struct status_opts {
	bool json;
	bool several;  /* more than one instance: separate them (set by status_of) */
};

static int status_of(const char *prog, const char *dir, int nth, int total, void *ctx)
{
	struct status_opts *o = ctx;
	struct handoff *h = calloc(1, sizeof(*h));
	char why[160];
	bool stale;
	int r;

	if (!h)
		return CCM_EXIT_FAILURE;
	o->several = total > 1;
	/* Several: a JSON array of the objects, or text blocks apart. */
	if (o->several && o->json)
		fputs(nth ? "," : "[", stdout);
	else if (o->several && nth)
		fputs("\n", stdout);
	r = current_state(prog, dir, h, why, sizeof(why), &stale);
	if (r == 0)
		r = show(h, stale ? why : NULL, o->json);
	else if (o->several && o->json)
		fputs("null\n", stdout);  /* said on stderr; the array keeps its place */
	free(h);
	return r;
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 's' },
		{ "instance", required_argument, NULL, 'i' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *instance = NULL;
	struct status_opts o = { 0 };
	struct keeper_dir where;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			dir = optarg;
			break;
		case 'i':
			instance = optarg;
			break;
		case 'j':
			o.json = true;
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
	r = for_each_instance(argv[0], &where, status_of, &o);
	if (o.several && o.json)
		fputs("]\n", stdout);
	return r;
}

/* --- check ---------------------------------------------------------------------- */

/* 0 to 2 as monitoring plugins have them (OK, WARNING, CRITICAL), so a
 * Nagios-style check or a corosync-qdevice heuristic (which wants 0) takes
 * the command as it is; each case its own code, so a script can tell. */
enum check_exit {
	CHECK_CONNECTED = 0,    /* the partner connected, every link up */
	CHECK_DEGRADED = 1,     /* connected, some link down */
	CHECK_NOT_CONNECTED = 2,/* handshaking, unreachable, or in error */
	CHECK_NO_KEEPER = 3,    /* none answers and its file is stale, or none ran */
	CHECK_USAGE = 4,        /* usage error, or a state file that cannot be read */
};

static void usage_check(FILE *out)
{
	fprintf(out,
		"Usage: ccm-early check [--state-dir DIR | --instance NAME]\n"
		"\n"
		"Print one line on this node's pair and exit with a code for monitoring\n"
		"and for a corosync-qdevice heuristics command:\n"
		"  %d  connected to the partner, every link up\n"
		"  %d  connected, degraded: some link down\n"
		"  %d  the partner is not connected (handshaking, unreachable, error)\n"
		"  %d  no keeper: none answers and its handoff is stale, it ended, or\n"
		"     none ever ran\n"
		"  %d  usage error, or a state file that cannot be read\n"
		"Told no instance, every instance of the node: a line each, the largest code.\n"
		"\n"
		"  --state-dir DIR   handoff directory\n"
		"  --instance NAME   instance NAME's keeper\n"
		"  -h, --help        this help\n",
		CHECK_CONNECTED, CHECK_DEGRADED, CHECK_NOT_CONNECTED, CHECK_NO_KEEPER, CHECK_USAGE);
}

/* ccm, or ccm@NAME for a named instance: the unit's name. */
static void check_label(const struct handoff *h)
{
	printf("ccm%s%s ", h->instance[0] ? "@" : "", h->instance);
}

static int judge(const struct handoff *h, const char *stale)
{
	int up = 0, first_down = -1;

	check_label(h);
	if (stale) {
		printf("NO KEEPER: %s\n", stale);
		return CHECK_NO_KEEPER;
	}
	if (h->state == HANDOFF_TERMINATED) {
		printf("NO KEEPER: the keeper ended (terminated)\n");
		return CHECK_NO_KEEPER;
	}
	if (h->state != HANDOFF_CONNECTED) {
		printf("NOT CONNECTED: %s%s%s\n", handoff_state_name(h->state),
		       h->error[0] ? ": " : "", h->error);
		return CHECK_NOT_CONNECTED;
	}
	for (int i = 0; i < h->nlinks; i++) {
		if (h->links[i].state == LINK_UP)
			up++;
		else if (first_down < 0)
			first_down = i;
	}
	if (first_down >= 0) {
		printf("DEGRADED: connected to node %u, %d of %d links up (link %d %s)\n",
		       h->partner_node, up, h->nlinks, first_down,
		       link_state_name(h->links[first_down].state));
		return CHECK_DEGRADED;
	}
	printf("OK: connected to node %u, %d of %d links up\n", h->partner_node, up, h->nlinks);
	return CHECK_CONNECTED;
}

static int check_of(const char *prog, const char *dir, int nth, int total, void *ctx)
{
	struct handoff *h = calloc(1, sizeof(*h));
	char why[160];
	bool stale;
	int r;

	(void)nth;
	(void)total;
	(void)ctx;
	if (!h)
		return CHECK_USAGE;
	r = current_state(prog, dir, h, why, sizeof(why), &stale);
	if (r == CCM_EXIT_FAILURE)      /* no handoff file: no keeper ever wrote one */
		printf("ccm NO KEEPER: no handoff in %s\n", dir);
	r = r == CCM_EXIT_FAILURE ? CHECK_NO_KEEPER : r ? CHECK_USAGE : judge(h, stale ? why : NULL);
	free(h);
	return r;
}

int cmd_check(int argc, char **argv)
{
	struct keeper_dir where;
	int c;

	c = keeper_dir_args(argc, argv, usage_check, CHECK_USAGE, &where);
	if (c >= 0)
		return c;
	return for_each_instance(argv[0], &where, check_of, NULL);
}

/* --- metrics -------------------------------------------------------------------- */

static void usage_metrics(FILE *out)
{
	fprintf(out,
		"Usage: ccm-early metrics [--state-dir DIR | --instance NAME]\n"
		"\n"
		"Print the keeper's metrics in the Prometheus text format: what it keeps\n"
		"in DIR/metrics (and in metrics-dir for node_exporter), made from the\n"
		"same state as 'ccm-early status'.  Exit status as for status: 6 when\n"
		"the keeper that wrote them is gone (they are printed all the same).\n"
		"\n"
		"  --state-dir DIR   handoff directory\n"
		"  --instance NAME   instance NAME's keeper (default $CCM_INSTANCE)\n"
		"  -h, --help        this help\n");
}

int cmd_metrics(int argc, char **argv)
{
	struct keeper_dir dir;
	char why[160], path[4096 + sizeof("/" METRICS_FILE)];
	struct handoff *h;
	char *text = NULL;
	size_t n = 0;
	bool stale;
	FILE *f;
	int c, r;

	c = keeper_dir_args(argc, argv, usage_metrics, CCM_EXIT_USAGE, &dir);
	if (c >= 0)
		return c;
	h = calloc(1, sizeof(*h));
	text = malloc(METRICS_TEXT_MAX);
	if (!h || !text) {
		free(h);
		free(text);
		return CCM_EXIT_FAILURE;
	}
	r = current_state(argv[0], dir.path, h, why, sizeof(why), &stale);
	free(h);
	if (r) {
		free(text);
		return r;
	}
	snprintf(path, sizeof(path), "%s/%s", dir.path, METRICS_FILE);
	f = fopen(path, "re");
	if (f) {
		n = fread(text, 1, METRICS_TEXT_MAX, f);
		fclose(f);
	}
	if (!f || !n) {
		fprintf(stderr, "%s: %s: %s\n", argv[0], path, f ? "empty" : strerror(errno));
		free(text);
		return CCM_EXIT_FAILURE;
	}
	fwrite(text, 1, n, stdout);
	free(text);
	if (stale) {
		fprintf(stderr, "%s: stale: %s\n", argv[0], why);
		return CCM_EXIT_STALE;
	}
	return CCM_EXIT_OK;
}
