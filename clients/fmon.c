/* ccm-fmon: a failover monitor.  Sends the partner's fmon a heartbeat over
 * its port every --interval ms and declares the partner dead when none
 * came back for --dead-after ms; then runs the --takeover command, and the
 * --giveback command once heartbeats resume.
 *
 * Decisions:
 *  - Dead means "was alive, then went silent".  A partner never heard since
 *    fmon started is unknown, not dead: at boot its fmon may just start
 *    later, and taking over a partner that never came up is for whoever
 *    decides how the pair boots, not for a heartbeat timeout.
 *  - Heartbeats go client to client, so they prove the partner's monitor
 *    (and the keepers and a link between) alive.  The keeper's
 *    PARTNER_LOST is only logged unless --fast is given: then it declares
 *    an alive partner dead at once, without waiting out --dead-after.
 *    PARTNER_BACK never revives it: only a heartbeat does.
 *  - Hooks run one at a time and never block the loop (fork, exec, reaped
 *    through a signalfd's SIGCHLD).  fmon tracks what it last started:
 *    when a hook ends and the partner's state no longer matches it (it came
 *    back during the takeover), the other hook runs next.  A failed hook
 *    is logged, not retried.  A giveback only ever follows a takeover.
 *  - With --fence, a dead partner is fenced before it is taken over: a
 *    silence proves only that the heartbeats stopped, and a partner that
 *    is alive behind a broken interconnect, taken over, is a split brain.
 *    The takeover runs only once the fence command says the partner is
 *    fenced (exit 0, or DRBD's fence-peer codes 3, 4 and 7, so that its
 *    handlers can be used as they are); any other end means "not fenced":
 *    no takeover, logged, and the fence is tried again every
 *    --fence-retry ms for as long as the partner stays dead.
 *  - On SIGTERM, SIGINT or the keeper's TERMINATING fmon exits 0 and
 *    leaves a running hook to finish: killing a takeover half-way is
 *    worse than not starting it.  A keeper that is restarting (TERMINATING
 *    with restarting) or gone makes it exit 1, for its service manager to
 *    start it again (ccm-fmon.service: Restart=on-failure). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/ccm.h"

#define PROG               "ccm-fmon"
#define DEFAULT_CLIENT     "fmon"
#define DEFAULT_INTERVAL   100
#define DEFAULT_DEAD_AFTER 1000
#define DEFAULT_FENCE_RETRY 5000
#define HB_MAGIC           0x43434d48u /* "CCMH" */
#define HB_SIZE            16
#define MAX_INFLIGHT       4           /* sends outstanding: more is a stuck keeper */

extern char **environ;

/* The heartbeat is fmon's own format: big-endian, so that the two nodes
 * need not share a byte order. */
static void put_be(uint8_t *p, uint64_t v, int n)
{
	while (n--) {
		p[n] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

struct opts {
	const char *client;
	const char *state_dir;        /* NULL: libccm's default */
	char instance_dir[4096];      /* --instance's state directory */
	const char *takeover;
	const char *giveback;
	const char *fence;
	uint32_t port;
	uint32_t interval_ms;
	uint32_t dead_after_ms;
	uint32_t fence_retry_ms;
	bool fast;
	int verbose;
};

enum partner { P_UNKNOWN, P_ALIVE, P_DEAD };

static const char *const partner_name[] = {
	[P_UNKNOWN] = "unknown", [P_ALIVE] = "alive", [P_DEAD] = "dead",
};

struct fmon {
	struct opts o;
	struct ccm_client *c;
	int sigfd;
	sigset_t oldmask;         /* restored in hooks */
	enum partner state;
	bool taken_over;          /* the last hook started was the takeover */
	bool fenced;              /* the fence said so since the partner died */
	int64_t next_fence_ms;    /* when a refused fence may run again */
	uint64_t deaths;          /* the partner's, counted */
	uint64_t fence_death;     /* the death the running fence was for */
	pid_t hook_pid;           /* 0: none running */
	const char *hook_name;    /* one of the hook_* below */
	char reason[96];          /* for the hook's CCM_FMON_REASON */
	uint32_t partner_node;    /* from the keeper's events; 0: not known */
	uint64_t tx_count;
	uint64_t rx_count;        /* the partner's last counter */
	int64_t last_rx_ms;
	int64_t dead_since_ms;
	int64_t next_tx_ms;
	unsigned inflight;
	bool send_failing;
};

static void say(const struct fmon *f, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(const struct fmon *f, int level, const char *fmt, ...)
{
	struct timespec ts;
	struct tm tm;
	char line[512];
	va_list ap;
	int n;

	if (level > f->o.verbose)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ " PROG ": ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, ts.tv_nsec / 1000);
	if (n < 0 || n >= (int)sizeof(line))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", line);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " [OPTIONS]\n"
		"\n"
		"Exchange heartbeats with the partner's " PROG " over a port; when the\n"
		"partner, once heard, falls silent for --dead-after ms, run --takeover;\n"
		"when its heartbeats resume, run --giveback.  Hooks run with /bin/sh -c and\n"
		"CCM_FMON_REASON and CCM_FMON_PARTNER (the partner's node id, empty if the\n"
		"keeper has not named it yet) in their environment.\n"
		"\n"
		"  --client NAME       the client (default " DEFAULT_CLIENT ")\n"
		"  --state-dir DIR     the keeper's directory\n"
		"  --instance NAME     the keeper of ccm-early instance NAME (default\n"
		"                      $CCM_INSTANCE, else the unnamed one: /run/ccm)\n"
		"  --port N            the port (default 0)\n"
		"  --interval MS       heartbeat period, 10..60000 (default %d)\n"
		"  --dead-after MS     silence that means dead, at least twice --interval,\n"
		"                      up to 3600000 (default %d)\n"
		"  --fast              also declare an alive partner dead as soon as the\n"
		"                      keeper reports it lost\n"
		"  --takeover CMD      run when the partner is declared dead\n"
		"  --giveback CMD      run when its heartbeats resume after a takeover\n"
		"  --fence CMD         run before --takeover; take over only if it exits\n"
		"                      0, 3, 4 or 7 (DRBD's fence-peer: inconsistent,\n"
		"                      outdated, fenced); else no takeover, and CMD runs\n"
		"                      again every --fence-retry ms while the partner is dead\n"
		"  --fence-retry MS    100..3600000 (default %d)\n"
		"  -v, --verbose       say more (-vv: every heartbeat)\n"
		"  -h, --help          this help\n"
		"\n"
		"Exit codes: 0 stopped by SIGTERM/SIGINT or the keeper; 1 failure (no\n"
		"keeper, the keeper went away); 2 usage.\n",
		DEFAULT_INTERVAL, DEFAULT_DEAD_AFTER, DEFAULT_FENCE_RETRY);
}

/* Decimal digits only, min..max: no sign, blanks or suffix, nothing that
 * strtoul would take and wrap. */
static int parse_num(const char *opt, const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;
	const char *p;

	for (p = s; *p >= '0' && *p <= '9' && v <= max; p++)
		v = v * 10 + (uint64_t)(*p - '0');
	if (p == s || *p || v < min || v > max) {
		fprintf(stderr, PROG ": --%s: '%.64s' is not a number in %u..%u\n", opt, s,
			min, max);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "client", required_argument, NULL, 'c' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "instance", required_argument, NULL, 'I' },
		{ "port", required_argument, NULL, 'p' },
		{ "interval", required_argument, NULL, 'i' },
		{ "dead-after", required_argument, NULL, 'd' },
		{ "fast", no_argument, NULL, 'f' },
		{ "takeover", required_argument, NULL, 't' },
		{ "giveback", required_argument, NULL, 'g' },
		{ "fence", required_argument, NULL, 'F' },
		{ "fence-retry", required_argument, NULL, 'R' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, r = 0;

	*o = (struct opts){
		.client = DEFAULT_CLIENT, .interval_ms = DEFAULT_INTERVAL,
		.dead_after_ms = DEFAULT_DEAD_AFTER, .fence_retry_ms = DEFAULT_FENCE_RETRY,
	};
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->client = optarg;
			break;
		case 's':
			o->state_dir = optarg;
			break;
		case 'I':
			r = ccm_instance_dir(optarg, o->instance_dir, sizeof(o->instance_dir));
			if (r < 0)
				fprintf(stderr, PROG ": --instance '%.64s': %s\n", optarg,
					r == -EINVAL ? "not an instance name" : ccm_strerror(r));
			else
				o->state_dir = o->instance_dir;
			break;
		case 'p':
			/* Checked against the client's ports once attached. */
			r = parse_num("port", optarg, 0, UINT16_MAX, &o->port);
			break;
		case 'i':
			r = parse_num("interval", optarg, 10, 60000, &o->interval_ms);
			break;
		case 'd':
			r = parse_num("dead-after", optarg, 20, 3600000, &o->dead_after_ms);
			break;
		case 'f':
			o->fast = true;
			break;
		case 't':
			o->takeover = optarg;
			break;
		case 'g':
			o->giveback = optarg;
			break;
		case 'F':
			o->fence = optarg;
			break;
		case 'R':
			r = parse_num("fence-retry", optarg, 100, 3600000, &o->fence_retry_ms);
			break;
		case 'v':
			o->verbose++;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			r = -EINVAL;
			break;
		}
		if (r < 0)
			break;
	}
	if (r == 0 && optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%.64s'\n", argv[optind]);
		r = -EINVAL;
	}
	/* One late heartbeat must not kill the partner. */
	if (r == 0 && o->dead_after_ms < 2 * o->interval_ms) {
		fprintf(stderr, PROG ": --dead-after %u is less than twice --interval %u\n",
			o->dead_after_ms, o->interval_ms);
		r = -EINVAL;
	}
	if (r == 0 && ((o->takeover && !*o->takeover) || (o->giveback && !*o->giveback) ||
		       (o->fence && !*o->fence))) {
		fprintf(stderr, PROG ": --takeover, --giveback and --fence need a command\n");
		r = -EINVAL;
	}
	if (r < 0)
		usage(stderr);
	return r;
}

/* --- hooks ------------------------------------------------------------------ */

static const char hook_fence[] = "fence", hook_takeover[] = "takeover",
		  hook_giveback[] = "giveback";

static bool env_ours(const char *s)
{
	return strncmp(s, "CCM_FMON_REASON=", 16) == 0 ||
	       strncmp(s, "CCM_FMON_PARTNER=", 17) == 0;
}

/* Fork and exec cmd with the reason and partner in its environment; the
 * loop hears of its end through SIGCHLD. */
static void run_hook(struct fmon *f, const char *name, const char *cmd)
{
	char reason[128], partner[32];
	char *argv[] = { "sh", "-c", (char *)cmd, NULL };
	char **envp;
	size_t n = 0, k = 0;
	pid_t pid;

	if (!cmd) {
		say(f, 1, "no --%s command", name);
		return;
	}
	snprintf(reason, sizeof(reason), "CCM_FMON_REASON=%s", f->reason);
	if (f->partner_node)
		snprintf(partner, sizeof(partner), "CCM_FMON_PARTNER=%" PRIu32, f->partner_node);
	else
		snprintf(partner, sizeof(partner), "CCM_FMON_PARTNER=");
	while (environ[n])
		n++;
	envp = calloc(n + 3, sizeof(*envp));
	if (!envp) {
		say(f, 0, "%s not run: out of memory", name);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (!env_ours(environ[i]))
			envp[k++] = environ[i];
	envp[k++] = reason;
	envp[k++] = partner;
	pid = fork();
	if (pid == 0) {
		/* The signals fmon takes through its signalfd are blocked;
		 * the hook gets the mask fmon started with. */
		sigprocmask(SIG_SETMASK, &f->oldmask, NULL);
		execve("/bin/sh", argv, envp);
		_exit(127);
	}
	free(envp);
	if (pid < 0) {
		say(f, 0, "%s not run: fork: %s", name, strerror(errno));
		return;
	}
	f->hook_pid = pid;
	f->hook_name = name;
	say(f, 0, "running %s (pid %d): %s", name, (int)pid, cmd);
}

/* Start the hook the partner's state calls for, unless one is running:
 * its end brings us back here (and a refused fence's retry time). */
static void reconcile(struct fmon *f)
{
	if (f->hook_pid)
		return;
	if (f->state == P_DEAD && !f->taken_over) {
		if (f->o.fence && !f->fenced) {
			if (now_ms() >= f->next_fence_ms) {
				f->next_fence_ms = now_ms() + f->o.fence_retry_ms;
				f->fence_death = f->deaths;
				run_hook(f, hook_fence, f->o.fence);
			}
			return;
		}
		f->taken_over = true;
		run_hook(f, hook_takeover, f->o.takeover);
	} else if (f->state == P_ALIVE && f->taken_over) {
		f->taken_over = false;
		run_hook(f, hook_giveback, f->o.giveback);
	}
}

/* DRBD's fence-peer handlers' exit codes that mean the peer can no longer
 * write: 3 its disk is inconsistent, 4 it was outdated, 7 it was fenced
 * (STONITH).  5 (unreachable) and 6 (refused: it is primary) are not. */
static bool fence_succeeded(int st)
{
	if (!WIFEXITED(st))
		return false;
	switch (WEXITSTATUS(st)) {
	case 0: case 3: case 4: case 7:
		return true;
	default:
		return false;
	}
}

static void fence_ended(struct fmon *f, pid_t pid, int st)
{
	if (fence_succeeded(st)) {
		say(f, 0, "fence (pid %d) done: exit status %d, the partner is fenced", (int)pid,
		    WEXITSTATUS(st));
		/* Only for the death it was run for: a partner that came back
		 * during the fence is fenced again if it dies again. */
		f->fenced = f->state == P_DEAD && f->fence_death == f->deaths;
		return;
	}
	if (f->state != P_DEAD || f->fence_death != f->deaths) {
		say(f, 0, "fence (pid %d) ended (status %#x) after the partner came back; not counted",
		    (int)pid, (unsigned)st);
		return;
	}
	f->next_fence_ms = now_ms() + f->o.fence_retry_ms;
	if (WIFEXITED(st))
		say(f, 0, "fence (pid %d) failed: exit status %d; no takeover of a partner "
		    "not fenced: trying again in %u ms", (int)pid, WEXITSTATUS(st),
		    f->o.fence_retry_ms);
	else
		say(f, 0, "fence (pid %d) killed by signal %d; no takeover of a partner not "
		    "fenced: trying again in %u ms", (int)pid, WIFSIGNALED(st) ? WTERMSIG(st) : 0,
		    f->o.fence_retry_ms);
}

static void reap(struct fmon *f)
{
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (pid != f->hook_pid)
			continue;
		if (f->hook_name == hook_fence)
			fence_ended(f, pid, st);
		else if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			say(f, 0, "%s (pid %d) done", f->hook_name, (int)pid);
		else if (WIFEXITED(st))
			say(f, 0, "%s (pid %d) failed: exit status %d", f->hook_name, (int)pid,
			    WEXITSTATUS(st));
		else
			say(f, 0, "%s (pid %d) killed by signal %d", f->hook_name, (int)pid,
			    WIFSIGNALED(st) ? WTERMSIG(st) : 0);
		f->hook_pid = 0;
		reconcile(f);
	}
}

/* --- the partner's state ------------------------------------------------------ */

static void set_state(struct fmon *f, enum partner to, const char *why)
{
	char who[32] = "partner";

	if (f->partner_node)
		snprintf(who, sizeof(who), "partner node %" PRIu32, f->partner_node);
	say(f, 0, "%s %s -> %s: %s", who, partner_name[f->state], partner_name[to], why);
	snprintf(f->reason, sizeof(f->reason), "%s", why);
	f->state = to;
	if (to == P_DEAD) {
		f->dead_since_ms = now_ms();
		f->deaths++;
	}
	f->fenced = false;
	f->next_fence_ms = 0;
	reconcile(f);
}

/* A heartbeat: u32 "CCMH", u32 the sender's interval in ms, u64 its
 * counter; big-endian. */
static void send_heartbeat(struct fmon *f)
{
	uint8_t hb[HB_SIZE];
	uint32_t tag;
	int r;

	if (f->inflight >= MAX_INFLIGHT) {
		say(f, 1, "heartbeat %" PRIu64 " skipped: %u still unanswered", f->tx_count + 1,
		    f->inflight);
		return;
	}
	f->tx_count++;
	put_be(hb, HB_MAGIC, 4);
	put_be(hb + 4, f->o.interval_ms, 4);
	put_be(hb + 8, f->tx_count, 8);
	r = ccm_send(f->c, (int)f->o.port, hb, sizeof(hb), &tag);
	if (r < 0) {
		say(f, f->send_failing ? 2 : 1, "heartbeat %" PRIu64 ": %s", f->tx_count,
		    ccm_strerror(r));
		f->send_failing = true;
		return;
	}
	f->inflight++;
	say(f, 2, "heartbeat %" PRIu64 " sent", f->tx_count);
}

static void on_heartbeat(struct fmon *f, const struct ccm_event *ev)
{
	char why[96];
	uint64_t count;

	if (ev->port != f->o.port || ev->len != HB_SIZE || get_be(ev->data, 4) != HB_MAGIC) {
		say(f, 1, "a %zu-byte message on port %u that is not a heartbeat", ev->len,
		    ev->port);
		return;
	}
	count = get_be(ev->data + 8, 8);
	say(f, 2, "heartbeat %" PRIu64 " received", count);
	if (count <= f->rx_count && f->state != P_UNKNOWN)
		say(f, 1, "the partner's counter went back from %" PRIu64 " to %" PRIu64
		    ": its monitor restarted", f->rx_count, count);
	if (get_be(ev->data + 4, 4) * 2 > f->o.dead_after_ms && f->state == P_UNKNOWN)
		say(f, 0, "warning: the partner beats every %u ms, more than half of "
		    "--dead-after %u", (uint32_t)get_be(ev->data + 4, 4), f->o.dead_after_ms);
	f->rx_count = count;
	f->last_rx_ms = now_ms();
	if (f->state == P_UNKNOWN) {
		set_state(f, P_ALIVE, "first heartbeat");
	} else if (f->state == P_DEAD) {
		snprintf(why, sizeof(why), "heartbeats resumed after %" PRId64 " ms dead",
			 f->last_rx_ms - f->dead_since_ms);
		set_state(f, P_ALIVE, why);
	}
}

/* 1: go on, 0: stop cleanly, <0: fail. */
static int on_event(struct fmon *f, const struct ccm_event *ev)
{
	switch (ev->type) {
	case CCM_EV_MSG:
		on_heartbeat(f, ev);
		return 1;
	case CCM_EV_DONE:
		if (f->inflight)
			f->inflight--;
		if (ev->status < 0) {
			say(f, f->send_failing ? 2 : 1, "a heartbeat was not delivered: %s",
			    ccm_strerror(ev->status));
			f->send_failing = true;
		} else {
			f->send_failing = false;
		}
		return 1;
	case CCM_EV_PARTNER_LOST:
		f->partner_node = ev->partner_node;
		say(f, 0, "the keeper reports partner node %u lost%s", ev->partner_node,
		    f->o.fast ? "" : " (waiting for the heartbeats to say)");
		if (f->o.fast && f->state == P_ALIVE)
			set_state(f, P_DEAD, "keeper reports partner lost");
		return 1;
	case CCM_EV_PARTNER_READY:
	case CCM_EV_PARTNER_BACK:
		f->partner_node = ev->partner_node;
		say(f, 0, "the keeper reports partner node %u %s (epoch %" PRIu64 ")",
		    ev->partner_node, ev->type == CCM_EV_PARTNER_BACK ? "back" : "ready",
		    ev->partner_epoch);
		return 1;
	case CCM_EV_TERMINATING:
		if (ev->restarting) {
			say(f, 0, "the keeper is restarting: exiting to be started again");
			return -ENOTCONN;
		}
		say(f, 0, "the keeper is stopping");
		return 0;
	case CCM_EV_KEEPER_GONE:
		say(f, 0, "the keeper has gone");
		return -ENOTCONN;
	case CCM_EV_NOTIFY:
	case CCM_EV_LINK_DOWN:
	case CCM_EV_LINK_UP:
		say(f, 1, "%s", ccm_event_name(ev->type));
		return 1;
	}
	return 1;
}

static int drain_events(struct fmon *f)
{
	struct ccm_event ev;
	int r;

	for (;;) {
		r = ccm_next(f->c, &ev, 0);
		if (r == -EAGAIN)
			return 1;
		if (r == -ENOTCONN || r == -EPROTO) {
			say(f, 0, "keeper: %s", ccm_strerror(r));
			return r;
		}
		if (r < 0) {
			/* A refused send has no tag to match it by. */
			say(f, 1, "the keeper refused a request: %s", ccm_strerror(r));
			f->inflight = 0;
			continue;
		}
		r = on_event(f, &ev);
		if (r <= 0)
			return r;
	}
}

/* --- the loop ------------------------------------------------------------------ */

static void check_timers(struct fmon *f)
{
	int64_t now = now_ms();
	char why[64];

	if (now >= f->next_tx_ms) {
		send_heartbeat(f);
		f->next_tx_ms += f->o.interval_ms;
		if (f->next_tx_ms <= now)   /* we were stalled: do not burst */
			f->next_tx_ms = now + f->o.interval_ms;
	}
	if (f->state == P_ALIVE && now - f->last_rx_ms >= f->o.dead_after_ms) {
		snprintf(why, sizeof(why), "no heartbeat for %" PRId64 " ms", now - f->last_rx_ms);
		set_state(f, P_DEAD, why);
	}
	if (f->state == P_DEAD && f->o.fence && !f->fenced && !f->hook_pid &&
	    now >= f->next_fence_ms)
		reconcile(f);
}

static int next_timeout(const struct fmon *f)
{
	int64_t now = now_ms(), until = f->next_tx_ms;

	if (f->state == P_ALIVE && f->last_rx_ms + f->o.dead_after_ms < until)
		until = f->last_rx_ms + f->o.dead_after_ms;
	if (f->state == P_DEAD && f->o.fence && !f->fenced && !f->hook_pid &&
	    f->next_fence_ms < until)
		until = f->next_fence_ms;
	return until > now ? (int)(until - now) : 0;
}

/* 0 on a clean stop, 1 on failure. */
static int run(struct fmon *f)
{
	struct pollfd pfd[2];
	struct signalfd_siginfo si;
	int r;

	pfd[0] = (struct pollfd){ .fd = ccm_fd(f->c), .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = f->sigfd, .events = POLLIN };
	f->next_tx_ms = now_ms();
	say(f, 1, "monitoring over port %u of %s: heartbeat every %u ms, dead after %u ms%s%s",
	    f->o.port, f->o.client, f->o.interval_ms, f->o.dead_after_ms,
	    f->o.fast ? ", or at once when the keeper says lost" : "",
	    f->o.fence ? "; fenced before any takeover" : "");
	for (;;) {
		if (poll(pfd, 2, next_timeout(f)) < 0) {
			if (errno == EINTR)
				continue;
			say(f, 0, "poll: %s", strerror(errno));
			return 1;
		}
		while (read(f->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (si.ssi_signo == SIGCHLD) {
				reap(f);
				continue;
			}
			say(f, 0, "signal %u: stopping", si.ssi_signo);
			return 0;
		}
		/* Events first: heartbeats that queued up while we were not
		 * scheduled count before any silence is judged. */
		if (pfd[0].revents) {
			r = drain_events(f);
			if (r <= 0)
				return r < 0 ? 1 : 0;
		}
		check_timers(f);
	}
}

static int setup(struct fmon *f)
{
	sigset_t sigs;
	int r;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &sigs, &f->oldmask) < 0)
		return -errno;
	f->sigfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (f->sigfd < 0) {
		say(f, 0, "signalfd: %s", strerror(errno));
		return -errno;
	}
	r = ccm_attach(f->o.client, f->o.state_dir, &f->c);
	if (r < 0) {
		say(f, 0, "attaching to %s: %s", f->o.client, ccm_strerror(r));
		return r;
	}
	if ((int)f->o.port >= ccm_nports(f->c)) {
		say(f, 0, "client %s has no port %u (it has %d)", f->o.client, f->o.port,
		    ccm_nports(f->c));
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct fmon f = { .sigfd = -1 };
	int rc;

	if (parse_args(argc, argv, &f.o) < 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	rc = setup(&f) < 0 ? 1 : run(&f);
	if (f.hook_pid)
		say(&f, 0, "leaving %s (pid %d) running", f.hook_name, (int)f.hook_pid);
	ccm_detach(f.c);
	if (f.sigfd >= 0)
		close(f.sigfd);
	return rc;
}
