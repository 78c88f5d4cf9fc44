/* failover: a client's view of a failing interconnect, for bench/failover.sh.
 *
 *   failover cut  --state-dir DIR [--client NAME] --cuts N --cut CMD --restore CMD
 *                 --ready CMD [--size B] [-v]
 *   failover tput --state-dir DIR [--client NAME] --seconds S [--size B] [--depth N]
 *
 * Both take --others K (clients o1 .. oK attached too, and kept attached
 * to the end: the keeper serves all of them while it fails over) and
 * --attached CMD (a shell command run once they all are, before anything
 * else: what the keeper holds then).
 *
 * cut: back-to-back writes of --size bytes (one in flight) into port 0 of
 * the partner's window.  N times: wait until the shell command --ready
 * succeeds (the ports are on the link to cut), write for 200 ms, start
 * --cut and write on, and time from the moment --cut has returned (its
 * rule is in force) to the completion of the first write issued after
 * that: a write that cannot have used the cut link.  Then --restore.
 * Prints each cut with -v, then "failover: N cuts median X ms worst Y ms".
 *
 * tput: --depth writes of --size bytes in flight on every port for S
 * seconds, after 0.5 s of warm-up; prints "tput: X MB/s".
 *
 * A write that fails, or a command that fails, ends it with exit 1. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/ccm.h"

#define CUTS_MAX 1000
#define OTHERS_MAX 63    /* and the client itself: CCM_CLIENTS_MAX is lower */
#define READY_MS 30000   /* for --ready to succeed */
#define STUCK_MS 10000   /* a write not done by then: something broke */

extern char **environ;

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "failover: %s: %s\n", what, err < 0 ? ccm_strerror(err) : strerror(err));
	return -1;
}

static pid_t spawn_sh(const char *cmd)
{
	char *argv[] = { "sh", "-c", (char *)cmd, NULL };
	pid_t pid;

	return posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) ? -1 : pid;
}

static int reap(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int run_sh(const char *cmd)
{
	pid_t pid = spawn_sh(cmd);

	return pid < 0 ? -1 : reap(pid);
}

/* The DONE of tag: its status.  While waiting, *pidfd (if >= 0) becoming
 * readable -- the --cut command has ended -- sets *t_cut. */
static int wait_done(struct ccm_client *c, uint32_t tag, int *pidfd, uint64_t *t_cut)
{
	uint64_t start = now_us();
	struct ccm_event ev;
	int r;

	for (;;) {
		struct pollfd p[2] = { { ccm_fd(c), POLLIN, 0 }, { *pidfd, POLLIN, 0 } };

		r = ccm_next(c, &ev, 0);
		if (r == 0 && ev.type == CCM_EV_DONE && ev.tag == tag)
			return ev.status;
		if (r == 0 && (ev.type == CCM_EV_KEEPER_GONE || ev.type == CCM_EV_TERMINATING))
			return -ESHUTDOWN;
		if (r == 0)
			continue;    /* LINK_DOWN and the like */
		if (r != -EAGAIN)
			return r;
		if (now_us() - start > STUCK_MS * 1000u)
			return -ETIMEDOUT;
		if (poll(p, *pidfd >= 0 ? 2 : 1, 100) > 0 && *pidfd >= 0 && p[1].revents) {
			*t_cut = now_us();
			close(*pidfd);
			*pidfd = -1;
		}
	}
}

/* One cut: writes until --cut has returned, then the first write issued
 * after it; *us gets the time from the one to the other's completion. */
static int one_cut(struct ccm_client *c, uint32_t size, const char *cut, uint64_t *us)
{
	uint64_t t_cut = 0, warm_end = now_us() + 200000;
	pid_t child = -1;
	int pidfd = -1, r;

	for (;;) {
		uint64_t issued = now_us();
		uint32_t tag;

		if (child < 0 && issued >= warm_end) {
			child = spawn_sh(cut);
			pidfd = child < 0 ? -1 : (int)syscall(SYS_pidfd_open, child, 0);
			if (pidfd < 0)
				return fail("starting --cut", errno);
		}
		r = ccm_write(c, 0, 0, 0, size, 0, &tag);
		if (r == 0)
			r = wait_done(c, tag, &pidfd, &t_cut);
		if (r < 0) {
			if (pidfd >= 0)
				close(pidfd);
			if (child > 0)
				reap(child);
			return fail("write", r);
		}
		if (t_cut && issued >= t_cut) {
			*us = now_us() - t_cut;
			break;
		}
	}
	if (reap(child) != 0) {
		fprintf(stderr, "failover: --cut failed: %s\n", cut);
		return -1;
	}
	return 0;
}

static int wait_ready(const char *ready)
{
	uint64_t end = now_us() + READY_MS * 1000u;

	while (run_sh(ready) != 0) {
		if (now_us() > end) {
			fprintf(stderr, "failover: --ready did not succeed within %d ms: %s\n", READY_MS,
				ready);
			return -1;
		}
		usleep(20000);
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cuts(struct ccm_client *c, int n, uint32_t size, const char *cut, const char *restore,
		const char *ready, int verbose)
{
	uint64_t us[CUTS_MAX];

	for (int i = 0; i < n; i++) {
		if (wait_ready(ready) < 0 || one_cut(c, size, cut, &us[i]) < 0)
			return -1;
		if (run_sh(restore) != 0) {
			fprintf(stderr, "failover: --restore failed: %s\n", restore);
			return -1;
		}
		if (verbose)
			printf("cut %d: %.1f ms\n", i + 1, (double)us[i] / 1000.0);
	}
	qsort(us, (size_t)n, sizeof(us[0]), cmp_u64);
	printf("failover: %d cuts median %.1f ms worst %.1f ms\n", n,
	       (double)us[(n - 1) / 2] / 1000.0, (double)us[n - 1] / 1000.0);
	return 0;
}

static int tput(struct ccm_client *c, int seconds, uint32_t size, int depth)
{
	int nports = ccm_nports(c), inflight = 0, r;
	uint64_t start = now_us(), t0 = start + 500000, end = t0 + (uint64_t)seconds * 1000000u;
	uint64_t bytes = 0;
	uint32_t *next = calloc((size_t)nports, sizeof(*next));
	size_t wlen;
	struct ccm_event ev;

	ccm_window(c, 0, &wlen);
	if (!next || wlen < size) {
		free(next);
		return fail("--size larger than the window", EINVAL);
	}
	for (int p = 0; p < nports; p++)
		for (int k = 0; k < depth; k++, inflight++) {
			/* Round robin over the window's slots: any content will do. */
			r = ccm_write(c, p, next[p], next[p], size, 0, NULL);
			next[p] = (uint32_t)((next[p] + size) % (wlen / size * size));
			if (r < 0)
				goto out;
		}
	/* A DONE carries no port: the next write goes to the port after the
	 * last one refilled, which keeps every port at about --depth. */
	for (int p = 0; now_us() < end;) {
		r = ccm_next(c, &ev, 1000);
		if (r == -EAGAIN)
			continue;
		if (r < 0)
			goto out;
		if (ev.type == CCM_EV_KEEPER_GONE || ev.type == CCM_EV_TERMINATING) {
			r = -ESHUTDOWN;
			goto out;
		}
		if (ev.type != CCM_EV_DONE)
			continue;
		if (ev.status) {
			r = ev.status;
			goto out;
		}
		if (now_us() >= t0)
			bytes += size;
		p = (p + 1) % nports;
		r = ccm_write(c, p, next[p], next[p], size, 0, NULL);
		next[p] = (uint32_t)((next[p] + size) % (wlen / size * size));
		if (r < 0)
			goto out;
	}
	printf("tput: %.1f MB/s (%d ports, %d x %u bytes in flight each)\n",
	       (double)bytes / (double)(now_us() - t0), nports, depth, size);
	r = 0;
out:
	free(next);
	/* The writes still in flight end with the detach. */
	return r < 0 ? fail("throughput", r) : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 'd' },
		{ "client", required_argument, NULL, 'c' },
		{ "cuts", required_argument, NULL, 'n' },
		{ "cut", required_argument, NULL, 'x' },
		{ "restore", required_argument, NULL, 'r' },
		{ "ready", required_argument, NULL, 'y' },
		{ "size", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 't' },
		{ "depth", required_argument, NULL, 'q' },
		{ "others", required_argument, NULL, 'o' },
		{ "attached", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *client = "bench", *cut = NULL, *restore = NULL, *ready = NULL;
	const char *attached = NULL;
	int n = 20, seconds = 3, depth = 4, verbose = 0, nothers = 0, opt, r;
	long size = -1;
	struct ccm_client *c, *others[OTHERS_MAX];

	while ((opt = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': dir = optarg; break;
		case 'c': client = optarg; break;
		case 'n': n = atoi(optarg); break;
		case 'x': cut = optarg; break;
		case 'r': restore = optarg; break;
		case 'y': ready = optarg; break;
		case 's': size = atol(optarg); break;
		case 't': seconds = atoi(optarg); break;
		case 'q': depth = atoi(optarg); break;
		case 'o': nothers = atoi(optarg); break;
		case 'a': attached = optarg; break;
		case 'v': verbose = 1; break;
		default: return 2;
		}
	}
	if (optind != argc - 1 || !dir || n < 1 || n > CUTS_MAX || seconds < 1 || depth < 1 ||
	    depth > 64 || size == 0 || size > 65536 || nothers < 0 || nothers > OTHERS_MAX)
		return 2;
	if (!strcmp(argv[optind], "cut") && !(cut && restore && ready))
		return 2;
	r = ccm_attach(client, dir, &c);
	if (r < 0) {
		fail("attach", r);
		return 1;
	}
	for (int i = 0; i < nothers; i++) {
		char name[16];

		snprintf(name, sizeof(name), "o%d", i + 1);
		r = ccm_attach(name, dir, &others[i]);
		if (r < 0) {
			fail(name, r);
			while (i--)
				ccm_detach(others[i]);
			ccm_detach(c);
			return 1;
		}
	}
	if (attached && run_sh(attached) != 0) {
		fprintf(stderr, "failover: --attached failed: %s\n", attached);
		r = -1;
	} else if (!strcmp(argv[optind], "cut"))
		r = cuts(c, n, size < 0 ? 64 : (uint32_t)size, cut, restore, ready, verbose);
	else if (!strcmp(argv[optind], "tput"))
		r = tput(c, seconds, size < 0 ? 65536 : (uint32_t)size, depth);
	else
		r = -2;
	for (int i = 0; i < nothers; i++)
		ccm_detach(others[i]);
	ccm_detach(c);
	return r == -2 ? 2 : r < 0;
}
