/* loop: the one event loop of the real daemon.  It owns the clock, the
 * signals and the fds: it polls the session's fds, reads the clock once per
 * turn, turns signals into session_signal (SIGHUP: session_reload_keys),
 * and carries out what the session asks of the process (session_notice):
 * telling the parent or systemd that the boot may go on, and becoming a
 * keeper that survives switch_root.  Everything it drives is in session.c
 * and the files it calls. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/journal.h"
#include "daemon/real_root.h"
#include "daemon/sdnotify.h"
#include "daemon/session.h"

/* The boot may go on: say so to whoever waits, and become the keeper that
 * outlives the initramfs. */
static void handed_off(struct session *s, const struct ccm_config *cfg,
		       const struct session_opts *opts, const struct log *log, bool connected)
{
	int fd;

	/* A log reader that goes (the initramfs' journald at switch-root)
	 * must not take the keeper with it: a write then fails with EPIPE. */
	signal(SIGPIPE, SIG_IGN);
	if (opts->handoff_fd >= 0) {
		uint8_t code = connected ? CCM_EXIT_OK : CCM_EXIT_TIMEOUT;

		if (write(opts->handoff_fd, &code, 1) != 1)
			log_at(log, LOG_ERR, "cannot tell the parent: %s", strerror(errno));
		close(opts->handoff_fd);
	}
	if (opts->foreground) {
		char st[160];

		if (connected)
			snprintf(st, sizeof(st), "READY=1\nSTATUS=connected to node %u",
				 session_partner_node(s));
		else
			snprintf(st, sizeof(st), "READY=1\nSTATUS=degraded: no partner after %u s; "
				 "still looking", cfg->timeout_s);
		sdnotify(st);
	}
	/* systemd's root-storage-daemon rule: a process whose argv[0] starts
	 * with '@' when /etc/initrd-release exists is left alone at
	 * switch-root.  And keep nothing open on the initramfs. */
	if (opts->argv0 && access("/etc/initrd-release", F_OK) == 0)
		opts->argv0[0] = '@';
	if (chdir("/") < 0)
		log_at(log, LOG_ERR, "chdir /: %s", strerror(errno));
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (dup2(fd, 0) < 0)
			log_at(log, LOG_ERR, "stdin from /dev/null: %s", strerror(errno));
		close(fd);
	}
}

/* A keeper from the initramfs looks once a second for switch_root having
 * happened; then it joins the real root (real_root.h) and logs to its
 * journal, once the real root has one (a root without journald keeps the
 * console, and the keeper keeps looking).  Before, its lines go to the
 * console: the initramfs' journald stops at switch_root and would take
 * them with it. */
static void look_for_real_root(const struct session_opts *opts, const struct log *log,
			       uint64_t now, uint64_t *next_look)
{
	if (!log->journal || log->journal->fd >= 0 || !opts->real_root ||
	    opts->real_root->proc_fd < 0 || now < *next_look)
		return;
	*next_look = now + 1000;
	if (real_root_follow(opts->real_root, log) >= 0 && access("/etc/initrd-release", F_OK) != 0 &&
	    access(JOURNAL_SOCKET, F_OK) == 0 && journal_open(log->journal) == 0)
		log_at(log, LOG_NOTE, "logging to the journal from now on");
}

static int64_t wall_now(void)
{
	return (int64_t)time(NULL);
}

/* One poll and one turn.  Returns false when the session has finished. */
static bool loop_once(struct session *s, int sigfd, const struct ccm_config *cfg,
		      const struct session_opts *opts, const struct log *log, uint64_t *next_look)
{
	struct pollfd pfd[2 + CCM_LINKS_MAX] = {
		{ .fd = sigfd, .events = POLLIN },
		{ .fd = session_control_fd(s), .events = POLLIN },
	};
	int nlinks = session_nlinks(s), n, timeout;
	uint64_t now = clock_ms(), wake = session_wakeup(s);
	unsigned notices;

	for (int i = 0; i < nlinks; i++)
		pfd[2 + i] = (struct pollfd){ .fd = session_link_fd(s, i), .events = POLLIN };
	timeout = wake <= now ? 0 : wake - now < INT32_MAX ? (int)(wake - now) : INT32_MAX;
	n = poll(pfd, (nfds_t)(2 + nlinks), timeout);
	if (n < 0 && errno != EINTR) {
		log_at(log, LOG_ERR, "poll: %s", strerror(errno));
		return false;
	}
	if (pfd[0].revents & POLLIN) {
		struct signalfd_siginfo si;

		if (read(sigfd, &si, sizeof(si)) != sizeof(si)) {
			/* Nothing after all. */
		} else if (si.ssi_signo == SIGHUP) {
			struct errbuf e;

			(void)session_reload_keys(s, &e);  /* it logs either way */
		} else {
			log_at(log, LOG_NOTE, "%s: stopping", strsignal((int)si.ssi_signo));
			session_signal(s, clock_ms(), wall_now());
			if (session_finished(s, NULL))
				return false;
		}
	}
	look_for_real_root(opts, log, clock_ms(), next_look);
	notices = session_turn(s, clock_ms(), wall_now(), (pfd[1].revents & POLLIN) != 0);
	if (notices & (SESSION_HANDED_OFF | SESSION_HANDED_OFF_DEGRADED))
		handed_off(s, cfg, opts, log, (notices & SESSION_HANDED_OFF) != 0);
	return !session_finished(s, NULL);
}

/* The soft fd limit up to the hard one.  A node's ports take three fds
 * each (the window's memfd, the notify pipe's two ends): 256 ports and the
 * clients' connections come near the soft limit of 1024 that systemd and
 * most shells give, and the keeper polls, so no select(2) limit applies. */
static void raise_fd_limit(const struct log *log)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_at(log, LOG_ERR, "cannot raise the fd limit to %llu: %s",
		       (unsigned long long)rl.rlim_max, strerror(errno));
}

int session_run(const struct ccm_config *cfg, const struct session_opts *opts,
		const struct log *log)
{
	uint64_t next_look = 0;
	struct session *s;
	sigset_t sigs;
	int sigfd, code;

	raise_fd_limit(log);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sigfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigfd < 0) {
		log_at(log, LOG_ERR, "signalfd: %s", strerror(errno));
		return CCM_EXIT_FAILURE;
	}
	code = session_open(cfg, opts, log, clock_ms(), wall_now(), &s);
	if (code != CCM_EXIT_OK) {
		close(sigfd);
		return code;
	}
	while (loop_once(s, sigfd, cfg, opts, log, &next_look))
		;
	if (!session_finished(s, &code))
		code = CCM_EXIT_FAILURE;  /* poll failed */
	session_close(s);
	close(sigfd);
	return code;
}
