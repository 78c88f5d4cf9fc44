/* client_attach: the client side of the keeper's attach handshake (ctl.h),
 * shared by libccm (ccm_attach) and the subcommands that talk to a keeper
 * (`ccm-early exec`, `ccm-early stop`), so the fds a service gets are
 * checked the same way whichever way it gets them.
 *
 * Internal to ccm-early and libccm: not installed. */
#ifndef CCM_CLIENT_ATTACH_H
#define CCM_CLIENT_ATTACH_H

#include <stdint.h>

#include "client/ctl.h"
#include "base/errbuf.h"
#include "base/limits.h"

/* What one attach hands over.  Every fd is -1 or ours, and close-on-exec. */
struct client_fds {
	int sock;                       /* the client's control channel */
	int nports;
	uint32_t port_size;
	int window[CCM_PORTS_MAX];      /* memfd of port_size bytes */
	int event[CCM_PORTS_MAX];       /* event fd (a pipe's read end) notifies signal */
	struct ctl_attached att;        /* as the keeper said it (zero via LISTEN_FDS) */
};

/* Connect to STATE_DIR/ccm.sock (state_dir NULL: /run/ccm).  0 and *sock;
 * -ECONNREFUSED when no keeper is there (no socket, or nobody listening);
 * -ENAMETOOLONG for a path longer than a sockaddr_un holds; else -errno.
 * e says which path. */
int client_connect(const char *state_dir, int *sock, struct errbuf *e);

/* Connect and attach to client `name`: send CTL_ATTACH, take CTL_ATTACHED
 * and exactly 2 * nports CTL_PORT_FD, checking every index, kind, size and
 * fd (the keeper is trusted, so a broken answer is -EPROTO, not
 * something to work around).  CTL_ERROR returns the keeper's status with
 * its text in e.  On failure nothing stays open and *f is all -1. */
int client_attach_fds(const char *name, const char *state_dir, struct client_fds *f,
		      struct errbuf *e);

/* Check what a window fd is: a regular file (memfd) of a sane port size,
 * equal to *size if that is not 0, else setting it.  0 or -EPROTO. */
int client_window_check(int fd, uint32_t *size, struct errbuf *e);

void client_fds_init(struct client_fds *f);

/* Close every fd still in f and reset it to all -1. */
void client_fds_close(struct client_fds *f);

#endif
