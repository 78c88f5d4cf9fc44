/* bench/handshake: how long two ccm-early nodes take, from both started to
 * both connected and handed off, over tcp on loopback, against a baseline
 * measured in the same run: two processes doing one TCP connect plus four
 * request/response round trips of 32 bytes.  Prints both, the ratio (goal
 * <= 1.5), the bare exec cost of each binary, and the RSS of ccm-early once
 * connected (goal <= 4 MiB).
 *
 *   handshake [-n RUNS] [-v] [-d] [-k] [-K] CCM_BINARY
 *
 * -K gives both nodes a pre-shared key: the same handshake with the keyed
 * greeting, the proofs and every frame sealed -- what the key costs.
 * -c CLIENTS -p PORTS gives both nodes that many clients of that many 4K
 * ports each (default 1 x 1): what the exchange and the ports cost as
 * they grow.
 *
 * Each run starts node A (127.0.0.2) and node B (127.0.0.3) on a fresh port
 * with fresh state directories, t0 taken just before the first spawn and t1
 * once both have exited 0 with --once.  The baseline runs, interleaved with
 * the ccm-early runs so both share the machine's noise, start the server at
 * A's place and then the client at B's place the same way; both are this
 * binary re-executed (/proc/self/exe) in a hidden mode, so each side pays an
 * exec as a node does.  The client retries its connect until the server
 * listens, as a node must find its partner.
 *
 * The nodes' state directories live under $TMPDIR, else /dev/shm (tmpfs,
 * as /run is where ccm-early really writes its handoff), else /tmp; the
 * report says whether that is tmpfs, since the handoff's fsyncs on a disk
 * cost more than the whole handshake.
 *
 * A benchmark reports: it exits 0 whether or not a goal is met, 1 when
 * something broke (a node failed, a timeout), 2 on a usage error.  Every
 * child is killed and reaped and the temporary directory removed on every
 * exit path; every wait has a timeout. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/num.h"

extern char **environ;

#define ADDR_A           "127.0.0.2"
#define ADDR_B           "127.0.0.3"
#define PORT_LO          20000       /* below the usual ephemeral range */
#define PORT_HI          32000
#define RUN_TIMEOUT_MS   10000       /* one pair, start to both exited */
#define EXEC_TIMEOUT_MS  5000        /* one bare exec */
#define RSS_TIMEOUT_MS   10000       /* both state files say connected */
#define TERM_TIMEOUT_MS  5000        /* SIGTERM to both exited */
#define BL_MSG           32
#define BL_ROUNDS        4
#define BL_RETRY_NS      100000L     /* baseline client: connect retry delay */
#define MAX_KIDS         4
#define PATHLEN          4096
#define TMPFS_MAGIC_     0x01021994

/* --- children, temporary directory, dying cleanly ------------------------------ */

static pid_t kids[MAX_KIDS];
static char tmproot[PATHLEN];
static sigset_t waitset;         /* SIGCHLD and the signals that stop us */

static void kid_add(pid_t pid)
{
	for (int i = 0; i < MAX_KIDS; i++)
		if (kids[i] == 0) {
			kids[i] = pid;
			return;
		}
}

static void kid_del(pid_t pid)
{
	for (int i = 0; i < MAX_KIDS; i++)
		if (kids[i] == pid)
			kids[i] = 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void cleanup(void)
{
	for (int i = 0; i < MAX_KIDS; i++)
		if (kids[i] > 0) {
			kill(kids[i], SIGKILL);
			while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR)
				;
			kids[i] = 0;
		}
	if (tmproot[0]) {
		nftw(tmproot, rm_one, 16, FTW_DEPTH | FTW_PHYS);
		tmproot[0] = '\0';
	}
}

__attribute__((format(printf, 1, 2), noreturn))
static void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("handshake: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cleanup();
	exit(1);
}

/* Print a path into a PATHLEN buffer; a path that does not fit is fatal. */
__attribute__((format(printf, 2, 3)))
static void pathf(char *buf, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(buf, PATHLEN, fmt, ap);
	va_end(ap);
	if (r < 0 || r >= PATHLEN)
		die("path too long: %s...", buf);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Wait for a signal of waitset for at most ms; returns the signal, 0 on
 * timeout.  SIGINT, SIGTERM and SIGHUP end the benchmark. */
static int wait_signal(double ms)
{
	struct timespec ts;
	int sig;

	if (ms < 0)
		ms = 0;
	ts.tv_sec = (time_t)(ms / 1e3);
	ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1e3) * 1e6);
	sig = sigtimedwait(&waitset, NULL, &ts);
	if (sig < 0)
		return 0;  /* EAGAIN: timed out; EINTR: look again */
	if (sig != SIGCHLD)
		die("interrupted by signal %d", sig);
	return sig;
}

/* --- spawning -------------------------------------------------------------------- */

struct kid {
	const char *name;       /* "node A", "baseline server", ... */
	char *argv[24];
	char log[PATHLEN];     /* its stdout and stderr */
	const char *state;      /* a node's --state-dir */
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	pid_t pid;
	int status;
	bool done;
};

/* Everything a spawn needs is prepared before t0, so the timed part is the
 * spawns themselves. */
static void kid_prepare(struct kid *k, const char *name, const char *log)
{
	sigset_t none, dfl = waitset;

	sigaddset(&dfl, SIGPIPE);  /* we ignore it; the children must not */
	memset(k, 0, sizeof(*k));
	k->name = name;
	pathf(k->log, "%s", log);
	sigemptyset(&none);
	if (posix_spawn_file_actions_init(&k->fa) ||
	    posix_spawn_file_actions_addopen(&k->fa, 0, "/dev/null", O_RDONLY, 0) ||
	    posix_spawn_file_actions_addopen(&k->fa, 1, k->log, O_WRONLY | O_CREAT | O_TRUNC, 0644) ||
	    posix_spawn_file_actions_adddup2(&k->fa, 1, 2) ||
	    posix_spawnattr_init(&k->attr) ||
	    posix_spawnattr_setsigmask(&k->attr, &none) ||
	    posix_spawnattr_setsigdefault(&k->attr, &dfl) ||
	    posix_spawnattr_setflags(&k->attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
		die("cannot prepare a spawn");
}

static void kid_spawn(struct kid *k)
{
	int r = posix_spawn(&k->pid, k->argv[0], &k->fa, &k->attr, k->argv, environ);

	if (r != 0)
		die("cannot start %s (%s): %s", k->name, k->argv[0], strerror(r));
	kid_add(k->pid);
}

static void kid_release(struct kid *k)
{
	posix_spawn_file_actions_destroy(&k->fa);
	posix_spawnattr_destroy(&k->attr);
}

/* Print the end of a child's log, to say why it failed. */
static void kid_show_log(const struct kid *k)
{
	char buf[8192];
	FILE *f = fopen(k->log, "r");
	long size;
	size_t n;

	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0, SEEK_SET);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	fprintf(stderr, "--- %s output (end) ---\n%s%s", k->name, buf,
		n && buf[n - 1] != '\n' ? "\n" : "");
}

/* Reap all n children within timeout_ms of now; *t1 is when the last one
 * was reaped.  Returns 0, or -1 on timeout (the children stay alive). */
static int kids_wait(struct kid *ks, int n, double timeout_ms, double *t1)
{
	double deadline = now_ms() + timeout_ms;

	for (;;) {
		int left = 0;

		for (int i = 0; i < n; i++) {
			pid_t r;

			if (ks[i].done)
				continue;
			r = waitpid(ks[i].pid, &ks[i].status, WNOHANG);
			if (r == ks[i].pid) {
				ks[i].done = true;
				kid_del(ks[i].pid);
			} else if (r < 0 && errno != EINTR) {
				die("waitpid %s: %s", ks[i].name, strerror(errno));
			} else {
				left++;
			}
		}
		if (!left) {
			*t1 = now_ms();
			return 0;
		}
		if (now_ms() >= deadline)
			return -1;
		wait_signal(deadline - now_ms());
	}
}

/* Kill and reap the children still running. */
static void kids_kill(struct kid *ks, int n)
{
	for (int i = 0; i < n; i++)
		if (!ks[i].done) {
			kill(ks[i].pid, SIGKILL);
			while (waitpid(ks[i].pid, &ks[i].status, 0) < 0 && errno == EINTR)
				;
			ks[i].done = true;
			kid_del(ks[i].pid);
		}
}

/* After kids_wait: 0 if every child exited 0, else -1 with why filled. */
static int kids_failed(const struct kid *ks, int n, char *why, size_t len)
{
	for (int i = 0; i < n; i++) {
		int st = ks[i].status;

		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			continue;
		if (WIFEXITED(st))
			snprintf(why, len, "%s exited with status %d", ks[i].name, WEXITSTATUS(st));
		else
			snprintf(why, len, "%s was killed by signal %d", ks[i].name, WTERMSIG(st));
		return -1;
	}
	return 0;
}

static void kids_timed_out(const struct kid *ks, int n, const char *what, double ms,
			   char *why, size_t len)
{
	size_t off = (size_t)snprintf(why, len, "%s did not finish within %.0f ms:", what, ms);

	for (int i = 0; i < n && off < len; i++)
		if (!ks[i].done)
			off += (size_t)snprintf(why + off, len - off, " %s (pid %d) still running",
						ks[i].name, (int)ks[i].pid);
}

/* Wait for the n children, show their logs and die unless all exited 0. */
static void kids_finish(struct kid *ks, int n, const char *what, double timeout_ms, double *t1)
{
	char why[512];
	double t;

	if (kids_wait(ks, n, timeout_ms, t1 ? t1 : &t) < 0)
		kids_timed_out(ks, n, what, timeout_ms, why, sizeof(why));
	else if (kids_failed(ks, n, why, sizeof(why)) == 0)
		return;
	for (int i = 0; i < n; i++)
		kid_show_log(&ks[i]);
	die("%s", why);
}

/* --- ports and directories ---------------------------------------------------------- */

static bool port_free_on(const char *host, int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		die("socket: %s", strerror(errno));
	inet_pton(AF_INET, host, &sin.sin_addr);
	/* No SO_REUSEADDR: a port still in TIME_WAIT counts as taken. */
	ok = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

/* A port free on both addresses, a new one per call. */
static int fresh_port(void)
{
	static int next;

	if (!next)
		next = PORT_LO + (int)(getpid() % (PORT_HI - PORT_LO));
	for (int tries = 0; tries < PORT_HI - PORT_LO; tries++) {
		int p = next;

		next = next + 1 >= PORT_HI ? PORT_LO : next + 1;
		if (port_free_on(ADDR_A, p) && port_free_on(ADDR_B, p))
			return p;
	}
	die("no free port in %d..%d on %s and %s", PORT_LO, PORT_HI - 1, ADDR_A, ADDR_B);
}

static void make_dir(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		die("mkdir %s: %s", path, strerror(errno));
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		die("cannot write %s", path);
}

/* Does DIR/state say connected? */
static bool state_connected(const char *dir)
{
	char path[PATHLEN], buf[4096];
	size_t n;
	FILE *f;

	pathf(path, "%s/state", dir);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return strstr(buf, "\nCCM_STATE='connected'\n") != NULL ||
	       strncmp(buf, "CCM_STATE='connected'\n", 22) == 0;
}

/* --- the measured pairs -------------------------------------------------------------- */

struct bench {
	const char *ccm;        /* the ccm-early binary */
	char self[PATHLEN];     /* this binary, for the baseline */
	char conf[PATHLEN];     /* an empty config file */
	char clients[PATHLEN];  /* one client descriptor */
	int run;                /* a counter, for fresh names */
	bool verbose;
	bool debug;             /* nodes run with -vv */
	bool keep_going;        /* -k: count failed ccm-early pairs, go on */
	int failures;
	const char *transport;  /* -t: tcp (default) or rdma */
	const char *addr_a;     /* -a, -b: the nodes' addresses */
	const char *addr_b;
	const char *rping;      /* -r: baseline is rping's connect, not ours */
};

static char *dupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dupf(const char *fmt, ...)
{
	char *s;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		die("out of memory");
	return s;
}

static void free_argv(struct kid *k)
{
	for (int i = 0; k->argv[i]; i++)
		free(k->argv[i]);
}

/* Fill k->argv for one node; once: with --once. */
static void node_argv(const struct bench *b, struct kid *k, int id, const char *self_addr,
		      const char *peer_addr, int port, const char *state, bool once)
{
	int i = 0;

	k->argv[i++] = dupf("%s", b->ccm);
	k->argv[i++] = dupf("connect");
	k->argv[i++] = dupf("--config");
	k->argv[i++] = dupf("%s", b->conf);
	k->argv[i++] = dupf("--node-id");
	k->argv[i++] = dupf("%d", id);
	k->argv[i++] = dupf("--listen");
	k->argv[i++] = dupf("%s:%d", self_addr, port);
	k->argv[i++] = dupf("--partner");
	k->argv[i++] = dupf("%s:%d", peer_addr, port);
	k->argv[i++] = dupf("--transport");
	k->argv[i++] = dupf("%s", b->transport);
	k->argv[i++] = dupf("--clients");
	k->argv[i++] = dupf("%s", b->clients);
	k->argv[i++] = dupf("--state-dir");
	k->state = k->argv[i++] = dupf("%s", state);
	/* Without --once, in the foreground: the process we started is the
	 * keeper itself, whose memory we measure and which our SIGTERM
	 * stops -- a keeper that detached would be neither. */
	k->argv[i++] = dupf(once ? "--once" : "--foreground");
	if (b->debug)
		k->argv[i++] = dupf("-vv");
	k->argv[i] = NULL;
}

/* Start both nodes (A first), as in every run. */
static void nodes_start(const struct bench *b, struct kid ks[2], const char *dir, bool once)
{
	int port = fresh_port();
	char sa[PATHLEN], sb[PATHLEN], la[PATHLEN], lb[PATHLEN];

	make_dir(dir);
	pathf(sa, "%s/a", dir);
	pathf(sb, "%s/b", dir);
	pathf(la, "%s/a.log", dir);
	pathf(lb, "%s/b.log", dir);
	make_dir(sa);
	make_dir(sb);
	kid_prepare(&ks[0], "node A", la);
	kid_prepare(&ks[1], "node B", lb);
	node_argv(b, &ks[0], 1, b->addr_a, b->addr_b, port, sa, once);
	node_argv(b, &ks[1], 2, b->addr_b, b->addr_a, port, sb, once);
}

static void kids_release(struct kid *ks, int n)
{
	for (int i = 0; i < n; i++) {
		kid_release(&ks[i]);
		free_argv(&ks[i]);
	}
}

/* Both spawned, both reaped; returns t1 - t0 in ms, or -1 with why filled
 * (the children killed and reaped) when one failed or hung. */
static double time_pair(struct kid ks[2], const char *what, char *why, size_t len)
{
	double t0, t1;

	t0 = now_ms();
	kid_spawn(&ks[0]);
	kid_spawn(&ks[1]);
	if (kids_wait(ks, 2, RUN_TIMEOUT_MS, &t1) < 0) {
		kids_timed_out(ks, 2, what, RUN_TIMEOUT_MS, why, len);
		kids_kill(ks, 2);
		return -1;
	}
	if (kids_failed(ks, 2, why, len) < 0)
		return -1;
	return t1 - t0;
}

/* One ccm-early pair with --once; ms, or -1 if it failed and -k was given
 * (without -k a failure ends the benchmark). */
static double run_ccm(struct bench *b)
{
	char dir[PATHLEN], why[512];
	struct kid ks[2];
	double ms;

	pathf(dir, "%s/run%d", tmproot, b->run++);
	nodes_start(b, ks, dir, true);
	ms = time_pair(ks, "the ccm-early pair", why, sizeof(why));
	for (int i = 0; i < 2 && ms >= 0; i++)
		if (!state_connected(ks[i].state)) {
			snprintf(why, sizeof(why), "%s exited 0 but its state does not say connected",
				 ks[i].name);
			ms = -1;
		}
	if (ms < 0) {
		if (!b->keep_going || b->failures == 0 || b->debug)
			for (int i = 0; i < 2; i++)
				kid_show_log(&ks[i]);
		if (!b->keep_going)
			die("%s", why);
		fprintf(stderr, "handshake: ccm-early pair failed: %s\n", why);
		b->failures++;
	}
	kids_release(ks, 2);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return ms;
}

static double run_baseline(struct bench *b)
{
	char dir[PATHLEN], la[PATHLEN], lb[PATHLEN], why[512];
	struct kid ks[2];
	int port = fresh_port();
	double ms;

	pathf(dir, "%s/run%d", tmproot, b->run++);
	make_dir(dir);
	pathf(la, "%s/server.log", dir);
	pathf(lb, "%s/client.log", dir);
	kid_prepare(&ks[0], "baseline server", la);
	kid_prepare(&ks[1], "baseline client", lb);
	ks[0].argv[0] = dupf("%s", b->self);
	ks[0].argv[1] = dupf("--baseline-server");
	ks[0].argv[2] = dupf("%s", b->addr_a);
	ks[0].argv[3] = dupf("%d", port);
	ks[1].argv[0] = dupf("%s", b->self);
	ks[1].argv[1] = dupf("--baseline-client");
	ks[1].argv[2] = dupf("%s", b->addr_a);
	ks[1].argv[3] = dupf("%d", port);
	ks[1].argv[4] = dupf("%s", b->addr_b);
	ms = time_pair(ks, "the baseline pair", why, sizeof(why));
	if (ms < 0) {
		for (int i = 0; i < 2; i++)
			kid_show_log(&ks[i]);
		die("%s", why);
	}
	kids_release(ks, 2);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return ms;
}

/* The rdma baseline: one rdma_cm connect (plus one ping and the
 * disconnect) as rping makes it.  The server is started first and given
 * time to listen, outside the measurement: what is timed is the client's
 * run, from its start to its exit. */
static double run_rping(struct bench *b)
{
	char dir[PATHLEN], la[PATHLEN], lb[PATHLEN], why[512];
	struct kid ks[2];
	int port = fresh_port();
	double t0, t1;

	pathf(dir, "%s/run%d", tmproot, b->run++);
	make_dir(dir);
	pathf(la, "%s/server.log", dir);
	pathf(lb, "%s/client.log", dir);
	kid_prepare(&ks[0], "rping server", la);
	kid_prepare(&ks[1], "rping client", lb);
	ks[0].argv[0] = dupf("%s", b->rping);
	ks[0].argv[1] = dupf("-s");
	ks[0].argv[2] = dupf("-a");
	ks[0].argv[3] = dupf("%s", b->addr_a);
	ks[0].argv[4] = dupf("-p");
	ks[0].argv[5] = dupf("%d", port);
	ks[0].argv[6] = dupf("-C");
	ks[0].argv[7] = dupf("1");
	ks[1].argv[0] = dupf("%s", b->rping);
	ks[1].argv[1] = dupf("-c");
	ks[1].argv[2] = dupf("-a");
	ks[1].argv[3] = dupf("%s", b->addr_a);
	ks[1].argv[4] = dupf("-I");
	ks[1].argv[5] = dupf("%s", b->addr_b);
	ks[1].argv[6] = dupf("-p");
	ks[1].argv[7] = dupf("%d", port);
	ks[1].argv[8] = dupf("-C");
	ks[1].argv[9] = dupf("1");
	kid_spawn(&ks[0]);
	wait_signal(300);
	t0 = now_ms();
	kid_spawn(&ks[1]);
	kids_finish(&ks[1], 1, "the rping client", RUN_TIMEOUT_MS, &t1);
	kids_finish(&ks[0], 1, "the rping server", RUN_TIMEOUT_MS, NULL);
	if (kids_failed(ks, 2, why, sizeof(why)) < 0) {
		for (int i = 0; i < 2; i++)
			kid_show_log(&ks[i]);
		die("%s", why);
	}
	kids_release(ks, 2);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return t1 - t0;
}

/* One bare exec: argv[0] started, reaped; in ms. */
static double run_exec(const char *bin, const char *arg, const char *name)
{
	char log[PATHLEN];
	struct kid k;
	double t0, t1;

	pathf(log, "%s/exec.log", tmproot);
	kid_prepare(&k, name, log);
	k.argv[0] = dupf("%s", bin);
	k.argv[1] = dupf("%s", arg);
	t0 = now_ms();
	kid_spawn(&k);
	kids_finish(&k, 1, name, EXEC_TIMEOUT_MS, &t1);
	kid_release(&k);
	free_argv(&k);
	return t1 - t0;
}

/* "VmRSS:     1234 kB" from /proc/PID/status; -1 if absent. */
static long proc_kib(pid_t pid, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

struct rss {
	long rss[2], hwm[2];
};

static void measure_rss(struct bench *b, struct rss *out)
{
	char dir[PATHLEN];
	struct kid ks[2];
	double deadline;

	pathf(dir, "%s/rss", tmproot);
	nodes_start(b, ks, dir, false);
	kid_spawn(&ks[0]);
	kid_spawn(&ks[1]);
	deadline = now_ms() + RSS_TIMEOUT_MS;
	while (!state_connected(ks[0].state) || !state_connected(ks[1].state)) {
		for (int i = 0; i < 2; i++) {
			pid_t r = waitpid(ks[i].pid, &ks[i].status, WNOHANG);

			if (r == ks[i].pid) {
				ks[i].done = true;
				kid_del(ks[i].pid);
				kid_show_log(&ks[i]);
				die("%s (without --once) ended before connecting", ks[i].name);
			}
		}
		if (now_ms() >= deadline) {
			char why[512];

			kids_timed_out(ks, 2, "connecting without --once", RSS_TIMEOUT_MS, why,
				       sizeof(why));
			for (int i = 0; i < 2; i++)
				kid_show_log(&ks[i]);
			die("%s", why);
		}
		wait_signal(1);
	}
	for (int i = 0; i < 2; i++) {
		out->rss[i] = proc_kib(ks[i].pid, "VmRSS");
		out->hwm[i] = proc_kib(ks[i].pid, "VmHWM");
		/* A figure or nothing: never -1 printed as if it were one. */
		if (out->rss[i] < 0 || out->hwm[i] < 0) {
			for (int k = 0; k < 2; k++)
				kill(ks[k].pid, SIGTERM);
			kids_finish(ks, 2, "stopping the nodes with SIGTERM", TERM_TIMEOUT_MS, NULL);
			die("cannot read %s's memory from /proc/%d/status", ks[i].name,
			    (int)ks[i].pid);
		}
	}
	for (int i = 0; i < 2; i++)
		kill(ks[i].pid, SIGTERM);
	kids_finish(ks, 2, "stopping the nodes with SIGTERM", TERM_TIMEOUT_MS, NULL);
	kids_release(ks, 2);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* --- statistics and the report --------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, int n, int p)
{
	int rank = (p * n + 99) / 100;

	return v[rank < 1 ? 0 : rank - 1];
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* --- the baseline's hidden modes ---------------------------------------------------------- */

static int bl_addr(const char *host, const char *port, struct sockaddr_in *sin)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)atoi(port));
	return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

static int bl_full(int fd, void *buf, size_t len, bool out)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = out ? send(fd, (char *)buf + done, len - done, MSG_NOSIGNAL)
				: recv(fd, (char *)buf + done, len - done, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

static int bl_fail(const char *what)
{
	fprintf(stderr, "baseline: %s: %s\n", what, strerror(errno));
	return 1;
}

/* Listen, accept one connection, answer BL_ROUNDS requests. */
static int bl_server(const char *host, const char *port)
{
	struct sockaddr_in sin;
	unsigned char msg[BL_MSG];
	int one = 1, lfd, fd;

	if (bl_addr(host, port, &sin) < 0)
		return 2;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return bl_fail("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, 8) < 0)
		return bl_fail("listen");
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return bl_fail("accept");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (int i = 0; i < BL_ROUNDS; i++) {
		if (bl_full(fd, msg, sizeof(msg), false) < 0)
			return bl_fail("read request");
		for (size_t j = 0; j < sizeof(msg); j++)
			msg[j] ^= 0xff;
		if (bl_full(fd, msg, sizeof(msg), true) < 0)
			return bl_fail("write answer");
	}
	close(fd);
	close(lfd);
	return 0;
}

/* Connect (retrying until the server listens), BL_ROUNDS round trips. */
static int bl_client(const char *host, const char *port, const char *from)
{
	struct sockaddr_in sin, local;
	unsigned char msg[BL_MSG], want[BL_MSG];
	struct timespec pause = { 0, BL_RETRY_NS };
	double deadline = now_ms() + RUN_TIMEOUT_MS;
	int one = 1, fd;

	if (bl_addr(host, port, &sin) < 0 || bl_addr(from, "0", &local) < 0)
		return 2;
	for (;;) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return bl_fail("socket");
		if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0)
			return bl_fail("bind");
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			break;
		if (errno != ECONNREFUSED || now_ms() >= deadline)
			return bl_fail("connect");
		close(fd);
		nanosleep(&pause, NULL);
	}
	for (int i = 0; i < BL_ROUNDS; i++) {
		for (size_t j = 0; j < sizeof(msg); j++) {
			msg[j] = (unsigned char)(i * 32 + (int)j);
			want[j] = msg[j] ^ 0xff;
		}
		if (bl_full(fd, msg, sizeof(msg), true) < 0)
			return bl_fail("write request");
		if (bl_full(fd, msg, sizeof(msg), false) < 0)
			return bl_fail("read answer");
		if (memcmp(msg, want, sizeof(msg)) != 0) {
			fprintf(stderr, "baseline: wrong answer\n");
			return 1;
		}
	}
	close(fd);
	return 0;
}

/* --- main ------------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f, "Usage: handshake [-n RUNS] [-v] [-d] [-k] [-K] [-c CLIENTS -p PORTS]\n"
		   "                 [-t tcp|rdma] [-a ADDR -b ADDR]\n"
		   "                 [-r RPING] CCM_BINARY\n"
		   "  -n RUNS  timed runs of each pair (default 30)\n"
		   "  -t       the nodes' transport (default tcp)\n"
		   "  -a, -b   the two nodes' addresses (default 127.0.0.2, 127.0.0.3)\n"
		   "  -r RPING baseline: rping's client run against a listening rping server\n"
		   "           (one rdma_cm connect, one ping) instead of TCP round trips\n"
		   "  -v       print every run's times\n"
		   "  -d       run the nodes with -vv (slower; their logs show on failure)\n"
		   "  -k       keep going when a ccm-early pair fails or hangs: count it,\n"
		   "           leave it out of the figures, exit 1 at the end\n"
		   "  -K       both nodes hold a pre-shared key (its cost)\n"
		   "  -c, -p   CLIENTS clients of PORTS 4K ports each on both nodes (default 1, 1)\n");
}

static const char *fs_kind(const char *path)
{
	struct statfs sf;

	if (statfs(path, &sf) < 0)
		return "unknown";
	return sf.f_type == TMPFS_MAGIC_ ? "tmpfs" : "not tmpfs: the nodes' fsyncs reach a disk";
}

static void make_tmproot(void)
{
	const char *base = getenv("TMPDIR");
	struct stat st;
	char tmpl[PATHLEN];

	if (!base || !*base)
		base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
		       access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	pathf(tmpl, "%s/ccm-bench.XXXXXX", base);
	if (!mkdtemp(tmpl))
		die("mkdtemp %s: %s", tmpl, strerror(errno));
	pathf(tmproot, "%s", tmpl);
}

/* -X N: N in [min, max] through the project's one number parser, into
 * *out; else say so.  0 or 2 (the usage exit). */
static int count_arg(char opt, const char *v, uint32_t min, uint32_t max, int *out)
{
	uint32_t u;

	if (num_parse_u32(v, min, max, &u) < 0) {
		fprintf(stderr, "handshake: -%c wants %u..%u, not '%s'\n", opt, min, max, v);
		return 2;
	}
	*out = (int)u;
	return 0;
}

int main(int argc, char **argv)
{
	struct bench b = { 0 };
	struct rss rss;
	double *ccm, *base, *ex_ccm, *ex_self, med_ccm, med_base, med_ex_ccm, med_ex_self;
	int runs = 30, opt, nok = 0, status = 0;
	bool keyed = false;
	int nclients = 1, nports = 1;
	ssize_t n;

	/* The baseline's two sides and the bare exec: this same binary. */
	if (argc >= 2 && strcmp(argv[1], "--noop") == 0)
		return 0;
	if (argc == 4 && strcmp(argv[1], "--baseline-server") == 0)
		return bl_server(argv[2], argv[3]);
	if (argc == 5 && strcmp(argv[1], "--baseline-client") == 0)
		return bl_client(argv[2], argv[3], argv[4]);

	b.transport = "tcp";
	b.addr_a = ADDR_A;
	b.addr_b = ADDR_B;
	while ((opt = getopt(argc, argv, "n:vdkKht:a:b:r:c:p:")) != -1) {
		switch (opt) {
		case 't':
			b.transport = optarg;
			break;
		case 'a':
			b.addr_a = optarg;
			break;
		case 'b':
			b.addr_b = optarg;
			break;
		case 'r':
			b.rping = optarg;
			break;
		case 'n':
			if (count_arg('n', optarg, 1, 100000, &runs))
				return 2;
			break;
		case 'v':
			b.verbose = true;
			break;
		case 'd':
			b.debug = true;
			break;
		case 'k':
			b.keep_going = true;
			break;
		case 'K':
			keyed = true;
			break;
		case 'c':
			if (count_arg('c', optarg, 1, 1000, &nclients))
				return 2;
			break;
		case 'p':
			if (count_arg('p', optarg, 1, 1000, &nports))
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	b.ccm = argv[optind];
	if (access(b.ccm, X_OK) < 0) {
		fprintf(stderr, "handshake: %s: %s\n", b.ccm, strerror(errno));
		return 2;
	}
	n = readlink("/proc/self/exe", b.self, sizeof(b.self) - 1);
	if (n < 0) {
		fprintf(stderr, "handshake: /proc/self/exe: %s\n", strerror(errno));
		return 1;
	}
	b.self[n] = '\0';

	/* Every wait is a sigtimedwait on these, so a child's end or a stop
	 * request can never slip between a check and a sleep. */
	sigemptyset(&waitset);
	sigaddset(&waitset, SIGCHLD);
	sigaddset(&waitset, SIGINT);
	sigaddset(&waitset, SIGTERM);
	sigaddset(&waitset, SIGHUP);
	sigprocmask(SIG_BLOCK, &waitset, NULL);
	signal(SIGPIPE, SIG_IGN);

	make_tmproot();
	pathf(b.conf, "%s/ccm.conf", tmproot);
	write_file(b.conf, "");
	if (keyed) {
		/* 32 bytes as hex, as keygen writes them; mode 0600. */
		char path[PATHLEN], conf[PATHLEN + 16];

		pathf(path, "%s/key", tmproot);
		write_file(path, "4e6f7420612073656372657420627574206c6f6e6720656e6f7567682e2e2e\n");
		if (chmod(path, 0600) < 0)
			die("chmod %s: %s", path, strerror(errno));
		snprintf(conf, sizeof(conf), "psk-file = %s\n", path);
		write_file(b.conf, conf);
	}
	pathf(b.clients, "%s/clients", tmproot);
	make_dir(b.clients);
	{
		char path[PATHLEN];

		char desc[64];

		/* One client "fmon" by default, as a failover monitor has. */
		snprintf(desc, sizeof(desc), "ports = %d\nport-size = 4K\n", nports);
		for (int i = 0; i < nclients; i++) {
			if (nclients == 1)
				pathf(path, "%s/fmon.conf", b.clients);
			else
				pathf(path, "%s/c%03d.conf", b.clients, i);
			write_file(path, desc);
		}
	}

	ccm = calloc((size_t)runs, sizeof(*ccm));
	base = calloc((size_t)runs, sizeof(*base));
	ex_ccm = calloc((size_t)runs, sizeof(*ex_ccm));
	ex_self = calloc((size_t)runs, sizeof(*ex_self));
	if (!ccm || !base || !ex_ccm || !ex_self)
		die("out of memory");

	printf("ccm-early: %s\nstate dirs: %s (%s)\n", b.ccm, tmproot, fs_kind(tmproot));
	printf("runs: %d of each pair, interleaved, after one warm-up of each\n", runs);
	if (keyed)
		printf("pre-shared key: yes (keyed greeting, every frame sealed)\n");
	if (nclients > 1 || nports > 1)
		printf("clients: %d of %d port(s) each, %d ports per node\n", nclients, nports,
		       nclients * nports);
	fflush(stdout);

	/* Warm-up: page cache, binaries, first-time kernel paths. */
	run_ccm(&b);
	if (b.rping)
		run_rping(&b);
	else
		run_baseline(&b);
	run_exec(b.ccm, "version", "ccm-early version");
	run_exec(b.self, "--noop", "bench --noop");

	for (int i = 0; i < runs; i++) {
		double c, bl;

		if (i % 2 == 0) {
			c = run_ccm(&b);
			bl = b.rping ? run_rping(&b) : run_baseline(&b);
		} else {
			bl = b.rping ? run_rping(&b) : run_baseline(&b);
			c = run_ccm(&b);
		}
		base[i] = bl;
		if (c >= 0)
			ccm[nok++] = c;
		if (b.verbose && c >= 0)
			printf("run %3d: ccm-early pair %7.3f ms, baseline %7.3f ms\n", i + 1, c, bl);
		else if (b.verbose)
			printf("run %3d: ccm-early pair FAILED, baseline %7.3f ms\n", i + 1, bl);
	}
	if (nok == 0)
		die("no ccm-early pair connected");
	for (int i = 0; i < runs; i++) {
		ex_ccm[i] = run_exec(b.ccm, "version", "ccm-early version");
		ex_self[i] = run_exec(b.self, "--noop", "bench --noop");
	}
	measure_rss(&b, &rss);

	med_ccm = median(ccm, nok);
	med_base = median(base, runs);
	printf("handshake (%s, %s and %s): ccm-early pair median %.2f ms p90 %.2f ms "
	       "(min %.2f, max %.2f)\n", b.transport, b.addr_a, b.addr_b, med_ccm,
	       pct(ccm, nok, 90), ccm[0], ccm[nok - 1]);
	if (b.rping)
		printf("baseline (rping client: one rdma_cm connect, one ping): median %.2f ms "
		       "p90 %.2f ms (min %.2f, max %.2f)\n", med_base, pct(base, runs, 90), base[0],
		       base[runs - 1]);
	else
		printf("baseline (connect + %d round trips, 2 processes): median %.2f ms p90 %.2f ms "
		       "(min %.2f, max %.2f)\n", BL_ROUNDS, med_base, pct(base, runs, 90), base[0],
		       base[runs - 1]);
	printf("ratio %.2f (goal <= %s); difference %+.2f ms\n", med_ccm / med_base,
	       b.rping ? "2" : "1.5", med_ccm - med_base);
	med_ex_ccm = median(ex_ccm, runs);
	med_ex_self = median(ex_self, runs);
	printf("bare exec, one process: ccm-early version median %.2f ms, "
	       "bench --noop median %.2f ms (both static musl: start-up costs alike)\n",
	       med_ex_ccm, med_ex_self);
	if (med_base > med_ex_self)
		printf("rough, start-up left out (pair median minus one bare exec): ccm-early "
		       "%.2f ms, baseline %.2f ms, ratio %.2f\n", med_ccm - med_ex_ccm,
		       med_base - med_ex_self, (med_ccm - med_ex_ccm) / (med_base - med_ex_self));
	printf("RSS when connected: node A %ld KiB, node B %ld KiB (goal <= 4096 KiB); "
	       "peak (VmHWM) A %ld KiB, B %ld KiB\n", rss.rss[0], rss.rss[1], rss.hwm[0],
	       rss.hwm[1]);
	if (b.failures) {
		printf("FAILED: %d of %d ccm-early pairs (warm-up included) did not both connect; "
		       "the figures above leave them out\n", b.failures, runs + 1);
		status = 1;
	}

	free(ccm);
	free(base);
	free(ex_ccm);
	free(ex_self);
	cleanup();
	return status;
}
