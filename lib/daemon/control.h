/* keeper: the control socket the long-running ccm-early serves to local
 * clients and to its own verbs (ctl.h has the protocol).
 *
 * Like a transport, it turns a socket into requests: keeper_next() accepts
 * connections, reads, checks and decodes what they send and hands back one
 * request at a time; the session carries it out and answers with the
 * keeper_* calls below.  Connections are named by an id that is never
 * reused, so an answer for a connection that has gone since is dropped
 * rather than sent to a stranger. */
#ifndef CCM_KEEPER_H
#define CCM_KEEPER_H

#include <stdint.h>
#include <sys/types.h>

#include "client/ctl.h"
#include "base/errbuf.h"

struct keeper;

enum keeper_req_type {
	KREQ_ATTACH = 1,  /* name: make this connection the client's channel */
	KREQ_WRITE,       /* rw */
	KREQ_READ,        /* rw */
	KREQ_SEND,        /* send, payload, len */
	KREQ_STATUS,
	KREQ_STOP,        /* stop (the caller is root: checked already) */
	KREQ_DETACHED,    /* an attached client's channel closed */
};

struct keeper_req {
	enum keeper_req_type type;
	uint64_t conn;             /* who asked: for the answer */
	uid_t uid;                 /* SO_PEERCRED of the caller */
	pid_t pid;
	char client[CCM_NAME_MAX + 1]; /* ATTACH: asked for; others: attached to */
	struct ctl_rw rw;
	struct ctl_send_hdr send;
	const uint8_t *payload;    /* SEND: valid until the next keeper_next */
	uint32_t len;
	struct ctl_stop stop;
};

/* Bind STATE_DIR/ccm.sock (a stale socket of a dead keeper is replaced; a
 * live one is an error) and listen. */
int keeper_open(const char *state_dir, struct keeper **out, struct errbuf *e);

/* Close every connection and remove the socket. */
void keeper_close(struct keeper *k);

/* Pollable: readable when keeper_next may have something. */
int keeper_fd(const struct keeper *k);

/* 1 and *req filled, or 0 when nothing is waiting.  A connection that
 * breaks the protocol is answered with CTL_ERROR and dropped here. */
int keeper_next(struct keeper *k, struct keeper_req *req);

/* ATTACH granted: CTL_ATTACHED, then one CTL_PORT_FD per fd (fds[i] of
 * kinds[i] for port idx[i]); the connection is now client's channel. */
int keeper_attached(struct keeper *k, uint64_t conn, const char *client,
		    const struct ctl_attached *a, const int *fds, const uint16_t *idx,
		    const uint16_t *kinds, int nfds);

int keeper_error(struct keeper *k, uint64_t conn, int status, const char *msg);
int keeper_done(struct keeper *k, uint64_t conn, uint32_t tag, int status);
int keeper_reply(struct keeper *k, uint64_t conn, uint16_t type, const void *data, uint32_t len);

/* To every channel of client (NULL: of every client). */
void keeper_event(struct keeper *k, const char *client, const struct ctl_event *ev);
void keeper_msg(struct keeper *k, const char *client, uint16_t port, const void *data,
		uint32_t len);

/* How many client channels are open. */
int keeper_attached_count(const struct keeper *k);

/* The path of the socket, for messages. */
const char *keeper_path(const struct keeper *k);

#endif
