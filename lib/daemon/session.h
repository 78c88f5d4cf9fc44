/* session: one node's connection with its partner.
 *
 * It owns the transport, the status window and the ports, drives the
 * handshake machine (hs.h) and the exchange (exchange.h) over the
 * transport, and writes the handoff.  All the I/O of the manager's
 * connection logic lives here; the decisions live in hs and exchange. */
#ifndef CCM_SESSION_H
#define CCM_SESSION_H

#include <stdbool.h>

#include "conf/config.h"
#include "base/exit.h"
#include "base/log.h"

struct session_opts {
	bool once;                /* exit once the handoff says connected */
	bool foreground;          /* stay attached (a supervisor's Type=notify
	                             service); else detach at the handoff */
	char *argv0;              /* renamed "@..." in an initrd, so that
	                             systemd spares the keeper at switch-root */
	int handoff_fd;           /* -1, or where to write the one-byte exit
	                             code for the parent that forked us, once
	                             connected or timed out */
};

/* Run until connected (once) or until SIGTERM/SIGINT or `ccm-early stop`;
 * returns an exit code, or CCM_SESSION_RESTART.  Without --once the session
 * goes on as the keeper after the handoff (connected, or --timeout passed),
 * telling whoever waits for that through opts->handoff_fd (the parent that
 * forked it) or systemd's notify socket (with --foreground).
 * Blocks SIGTERM and SIGINT for the calling thread and takes them through a
 * signalfd, so a signal can never slip between a check and a poll. */
int session_run(const struct ccm_config *cfg, const struct session_opts *opts,
		const struct log *log);

#endif
