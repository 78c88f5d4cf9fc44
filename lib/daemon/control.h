/* control: the control-socket server.  The keeper (the long-running
 * ccm-early) serves it to local clients and to its own subcommands
 * (client/ctl.h has the protocol).
 *
 * Like a transport, it turns a socket into requests: control_next() accepts
 * connections, reads, checks and decodes what they send and hands back one
 * request at a time; the session carries it out and answers with the
 * control_* calls below.  Connections are named by an id that is never
 * reused, so an answer for a connection that has gone since is dropped
 * rather than sent to a stranger. */
#ifndef CCM_CONTROL_H
#define CCM_CONTROL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "client/ctl.h"
#include "base/errbuf.h"
#include "base/log.h"

struct control;

enum control_req_type {
	CREQ_ATTACH = 1,  /* name: make this connection the client's channel */
	CREQ_WRITE,       /* rw */
	CREQ_READ,        /* rw */
	CREQ_SEND,        /* send, payload, len */
	CREQ_STATUS,
	CREQ_STOP,        /* stop (the caller is root: checked already) */
	CREQ_DETACHED,    /* an attached client's channel closed */
	CREQ_STATE,       /* the handoff as shell text (`ccm-early status`) */
	CREQ_RELOAD_KEYS, /* read the key files again (the caller is root) */
	CREQ_WRITABLE,    /* a client's channel that refused a message has room */
	CREQ_EVENTS,      /* events: follow the keeper's changes (ctl_note) */
};

struct control_req {
	enum control_req_type type;
	uint64_t conn;             /* who asked: for the answer */
	uid_t uid;                 /* SO_PEERCRED of the caller */
	pid_t pid;
	char client[CCM_NAME_MAX + 1]; /* ATTACH: asked for; others: attached to */
	struct ctl_rw rw;
	struct ctl_send_hdr send;
	const uint8_t *payload;    /* SEND: valid until the next control_next */
	uint32_t len;
	struct ctl_stop stop;
	struct ctl_events events;
};

/* Bind STATE_DIR/ccm.sock (a stale socket of a dead keeper is replaced; a
 * live one is an error) and listen.  Connections are bounded per uid, with
 * slots kept for root (control.c); refusals go to log (may be NULL). */
int control_open(const char *state_dir, const struct log *log, struct control **out,
		 struct errbuf *e);

/* Close every connection and remove the socket. */
void control_close(struct control *k);

/* Pollable: readable when control_next may have something. */
int control_fd(const struct control *k);

/* 1 and *req filled, or 0 when nothing is waiting.  A connection that
 * breaks the protocol is answered with CTL_ERROR and dropped here. */
int control_next(struct control *k, struct control_req *req);

/* ATTACH granted: CTL_ATTACHED, then one CTL_PORT_FD per fd (fds[i] of
 * kinds[i] for port idx[i]); the connection is now client's channel. */
int control_attached(struct control *k, uint64_t conn, const char *client,
		    const struct ctl_attached *a, const int *fds, const uint16_t *idx,
		    const uint16_t *kinds, int nfds);

int control_error(struct control *k, uint64_t conn, int status, const char *msg);
int control_done(struct control *k, uint64_t conn, uint32_t tag, int status);
int control_reply(struct control *k, uint64_t conn, uint16_t type, const void *data, uint32_t len);

/* To every channel of client (NULL: of every client). */
void control_event(struct control *k, const char *client, const struct ctl_event *ev);
/* A partner's message to client's newest channel, into its socket now:
 * 0, or -ENOTCONN (none attached) or -EAGAIN (full: a CREQ_WRITABLE
 * follows once it drained).  Never queued here: the caller keeps what
 * was refused, so what a slow client costs stays bounded. */
int control_msg(struct control *k, const char *client, uint16_t port, const void *data,
		uint32_t len);

/* conn follows the keeper's changes from now on: every control_note. */
void control_watch(struct control *k, uint64_t conn);
/* A change, to every watcher. */
void control_note(struct control *k, const struct ctl_note *n);

/* Whether client has a channel attached now. */
bool control_has_channel(struct control *k, const char *client);

/* How many client channels are open. */
int control_attached_count(const struct control *k);

/* The path of the socket, for messages. */
const char *control_path(const struct control *k);

#endif
