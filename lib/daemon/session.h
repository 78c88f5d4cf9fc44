/* session: one node's connection with its partner.
 *
 * It owns the transport, the status window and the ports, drives the
 * handshake machine (hs.h) and the exchange (exchange.h) over the
 * transport, and writes the handoff.  All the I/O of the manager's
 * connection logic lives here; the decisions live in hs and exchange. */
#ifndef CCM_SESSION_H
#define CCM_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"
#include "base/exit.h"
#include "base/log.h"

struct tp_mem_net;
struct tp_ops;
struct real_root;
struct session;

struct session_opts {
	bool once;                /* exit once the handoff says connected */
	bool foreground;          /* stay attached (a supervisor's Type=notify
	                             service); else detach at the handoff */
	char *argv0;              /* renamed "@..." in an initrd, so that
	                             systemd spares the keeper at switch-root */
	int handoff_fd;           /* -1, or where to write the one-byte exit
	                             code for the parent that forked us, once
	                             connected or timed out */
	const struct real_root *real_root;  /* NULL: what is opened by path
	                             comes from our own root even after
	                             switch_root (real_root.h) */
	/* The simulator's; zero for the real thing. */
	const struct tp_ops *tp;  /* the transport (tp_mem_ops); NULL: the one
	                             cfg->transport names */
	struct tp_mem_net *net;   /* transport "mem" joins this network */
	void (*random)(void *ctx, void *buf, size_t len);  /* NULL: the kernel's */
	void *random_ctx;
	/* A fault the simulator injects into every handoff write: 0, or the
	 * -errno the write fails with (-ENOSPC: a full disk). NULL: none. */
	int (*handoff_fault)(void *ctx);
	void *fault_ctx;
};

/* Run until connected (once) or until SIGTERM/SIGINT or `ccm-early stop`;
 * returns an exit code, or CCM_SESSION_RESTART.  Without --once the session
 * goes on as the keeper after the handoff (connected, or --timeout passed),
 * telling whoever waits for that through opts->handoff_fd (the parent that
 * forked it) or systemd's notify socket (with --foreground).
 * Blocks SIGTERM and SIGINT for the calling thread and takes them through a
 * signalfd, so a signal can never slip between a check and a poll.
 * This is the event loop (loop.c): the one place that polls and reads the
 * clock; the session below it is driven by the calls that follow. */
int session_run(const struct ccm_config *cfg, const struct session_opts *opts,
		const struct log *log);

/* --- the session without I/O of its own: what a loop drives -------------------
 * Time comes in (now: monotonic ms; wall: seconds since the epoch, for the
 * handoff's stamp); nothing below reads a clock or waits.  A simulator
 * drives the same calls over the mem transport on a virtual clock. */

/* Set up and start the handshake.  CCM_EXIT_OK and *out, or an exit code
 * (the error is logged and, where possible, in the handoff). */
int session_open(const struct ccm_config *cfg, const struct session_opts *opts,
		 const struct log *log, uint64_t now, int64_t wall, struct session **out);

/* What the loop must do on the session's behalf, returned by session_turn. */
enum session_notice {
	SESSION_HANDED_OFF = 1u << 0,          /* connected: tell whoever waits */
	SESSION_HANDED_OFF_DEGRADED = 1u << 1, /* timed out: boot goes on degraded */
};

/* One turn: the transports' events, the control socket's requests (when
 * control_ready: its fd was readable), the timers due at now. */
unsigned session_turn(struct session *s, uint64_t now, int64_t wall, bool control_ready);
/* SIGTERM or SIGINT: stop (clients get their grace time). */
void session_signal(struct session *s, uint64_t now, int64_t wall);

/* SIGHUP, or `ccm-early reload-keys`: read the key files again (psk-file,
 * psk-accept-file) and use them from the next greeting on; if they cannot
 * be read, the keys in use stay, and e says why (-errno).  A live session
 * is not touched: that is how keys are rotated. */
struct errbuf;
int session_reload_keys(struct session *s, struct errbuf *e);
/* When the next turn is due at the latest (monotonic ms). */
uint64_t session_wakeup(const struct session *s);
/* The fds a loop polls: the control socket (-1 while it must not be
 * read) and each link's transport (-1: nothing to poll). */
int session_control_fd(const struct session *s);
int session_nlinks(const struct session *s);
int session_link_fd(const struct session *s, int link);
bool session_finished(const struct session *s, int *exit_code);
uint32_t session_partner_node(const struct session *s);
void session_close(struct session *s);

#endif
