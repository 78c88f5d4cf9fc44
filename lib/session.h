/* session: one node's connection with its partner.
 *
 * It owns the transport, the status window and the ports, drives the
 * handshake machine (hs.h) and the exchange (exchange.h) over the
 * transport, and writes the handoff.  All the I/O of the manager's
 * connection logic lives here; the decisions live in hs and exchange. */
#ifndef CCM_SESSION_H
#define CCM_SESSION_H

#include <stdbool.h>

#include "config.h"
#include "log.h"

/* Exit codes of `ccm-early connect`, documented in the README and --help. */
enum ccm_exit {
	CCM_EXIT_OK = 0,          /* connected (and, without --once, ended cleanly) */
	CCM_EXIT_FAILURE = 1,     /* anything else */
	CCM_EXIT_USAGE = 2,       /* usage or configuration error */
	CCM_EXIT_TIMEOUT = 3,     /* timed out waiting for the partner */
	CCM_EXIT_NO_VERSION = 4,  /* no common protocol version */
	CCM_EXIT_AUTH = 5,        /* authentication failed */
};

struct session_opts {
	bool once;                /* exit once the handoff says connected */
};

/* Run until connected (once) or until SIGTERM/SIGINT; returns an exit code.
 * Blocks SIGTERM and SIGINT for the calling thread and takes them through a
 * signalfd, so a signal can never slip between a check and a poll. */
int session_run(const struct ccm_config *cfg, const struct session_opts *opts,
		const struct log *log);

#endif
