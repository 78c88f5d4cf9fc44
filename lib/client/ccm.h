/* libccm: the client library of ccm-early.
 *
 * A client -- a failover monitor, an NVRAM mirror -- has ports to the same
 * client on the partner node.  Each port is a memory window the client maps
 * (zero copy) plus a message channel; ccm-early's keeper owns the
 * interconnect and carries out the client's one-sided operations and
 * messages, so it can balance and fail them over without the client
 * noticing.
 *
 *   struct ccm_client *c;
 *   int err = ccm_attach("nvmirror", NULL, &c);   // LISTEN_FDS or the keeper
 *   if (err) { fprintf(stderr, "%s\n", ccm_strerror(err)); ... }
 *   size_t len;
 *   uint8_t *w = ccm_window(c, 0, &len);          // our window of port 0
 *   memcpy(w + 128, record, n);
 *   ccm_write(c, 0, 128, 128, n, CCM_NOTIFY, &tag); // to the partner's window
 *   struct ccm_event ev;
 *   while (ccm_next(c, &ev, -1) == 0) ...         // DONE, MSG, NOTIFY, events
 *
 * Attaching: when the process was started by `ccm-early exec CLIENT -- ...`
 * its fds arrive as LISTEN_FDS (named "ccm.control", "ccm.window.N",
 * "ccm.event.N") and ccm_attach takes them; otherwise it asks the keeper at
 * STATE_DIR/ccm.sock, which checks that the caller is root or the uid the
 * client's descriptor names.  state_dir NULL is the keeper of instance
 * $CCM_INSTANCE (/run/ccm/NAME) when that is set, else the unnamed
 * instance's (/run/ccm): see ccm_instance_dir.
 *
 * Every function returns 0 (or a count) on success and a negative errno on
 * failure; ccm_strerror() names it.  There is no global state: everything
 * lives in the struct ccm_client, which one thread uses at a time. */
#ifndef CCM_CLIENT_H
#define CCM_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ccm_client;

enum { CCM_NOTIFY = 1u << 0 };  /* ccm_write: signal the partner once landed */
enum { CCM_SEND_WINDOW = 64 };  /* ccm_send: messages in flight per port */

enum ccm_event_type {
	CCM_EV_DONE = 1,          /* tag, status: a write, read or send finished */
	CCM_EV_MSG,               /* port, data, len: a message from the partner's client */
	CCM_EV_NOTIFY,            /* port: the partner wrote into our window with CCM_NOTIFY */
	CCM_EV_PARTNER_READY,     /* the partner's client is attached and ready */
	CCM_EV_PARTNER_LOST,      /* heartbeats stopped: the partner may be dead */
	CCM_EV_PARTNER_BACK,      /* the partner is back (epoch tells whether it rebooted) */
	CCM_EV_TERMINATING,       /* the keeper is stopping: finish and detach
	                             (restarting: it comes back, attach again) */
	CCM_EV_LINK_DOWN,         /* an interconnect failed; traffic moved to another */
	CCM_EV_LINK_UP,
	CCM_EV_KEEPER_GONE,       /* the keeper closed our channel */
};

struct ccm_event {
	enum ccm_event_type type;
	uint32_t tag;             /* DONE */
	int status;               /* DONE: 0 or a negative errno */
	uint16_t port;            /* MSG, NOTIFY */
	const uint8_t *data;      /* MSG: valid until the next ccm_next */
	size_t len;               /* MSG */
	uint32_t partner_node;    /* PARTNER_* */
	uint64_t partner_epoch;   /* PARTNER_* */
	int link;                 /* LINK_*: which interconnect (0 = the first) */
	bool restarting;          /* TERMINATING: `ccm-early stop --restart`: the
	                             keeper handshakes again in the same process
	                             and serves on the same socket; otherwise it
	                             goes away */
};

/* Attach to client `name`'s ports.  state_dir NULL: ccm_instance_dir(NULL). */
int ccm_attach(const char *name, const char *state_dir, struct ccm_client **out);

/* The state directory of ccm-early instance `instance` into buf (cap
 * bytes): /run/ccm/INSTANCE, or /run/ccm for the unnamed instance ("");
 * instance NULL is $CCM_INSTANCE's, or the unnamed one's when that is
 * unset.  ($CCM_RUN_DIR replaces /run/ccm.)  0, -EINVAL for a name that
 * is not one ([a-z][a-z0-9_]{0,30}, not ccm, state or metrics: the
 * unnamed instance's own files), -ENAMETOOLONG. */
int ccm_instance_dir(const char *instance, char *buf, size_t cap);

/* Unmap, close, free.  NULL is fine. */
void ccm_detach(struct ccm_client *c);

/* A fd that becomes readable when ccm_next has something: for poll(). */
int ccm_fd(const struct ccm_client *c);

int ccm_nports(const struct ccm_client *c);

/* Our window of port `port` (NULL if there is no such port). */
void *ccm_window(const struct ccm_client *c, int port, size_t *len);

/* One-sided, asynchronous: *tag comes back in a CCM_EV_DONE.
 * write: our window [local_off, +len) -> the partner's window at remote_off.
 * read:  the partner's window [remote_off, +len) -> ours at local_off.
 * One port's operations take effect in the order they were asked for,
 * whatever the links do meanwhile (a port moved to another link waits for
 * its earlier operations first): a later write to the same bytes lands
 * last.  Leave the source bytes alone until the write's DONE.
 * A DONE status of -EHOSTUNREACH: the partner cannot be reached now (not
 * connected yet, or every link is down); -ENOTCONN is kept for the keeper
 * itself having gone.  A write with CCM_NOTIFY is DONE when the partner's
 * client has the notify (after the bytes landed), like a message below. */
int ccm_write(struct ccm_client *c, int port, uint32_t local_off, uint32_t remote_off,
	      uint32_t len, unsigned flags, uint32_t *tag);
int ccm_read(struct ccm_client *c, int port, uint32_t local_off, uint32_t remote_off,
	     uint32_t len, uint32_t *tag);

/* A small message (1..3072 bytes) to the partner's client on `port`;
 * asynchronous like the above.  The channel's guarantees, per port:
 *
 *   ordering     in the order sent, whatever links fail meanwhile
 *   duplication  never: each message reaches the partner's client once
 *   flow         at most CCM_SEND_WINDOW (64) messages in flight; then
 *                ccm_send returns -EAGAIN until a DONE gives credit back
 *                (wait for ccm_fd, or use ccm_send_sync).  A slow partner
 *                client slows its sender; it is never dropped for it.
 *                The window is the port's: after a re-attach, what the
 *                earlier attachment sent still fills it until confirmed,
 *                and a send may come back DONE -EAGAIN meanwhile
 *   DONE 0       the partner's client's channel has it (delivered to its
 *                newest attached channel; what it does then is its own)
 *   held         a partner client that is not attached, or not reading:
 *                the message waits in its keeper (up to two windows per
 *                port) and is delivered when it attaches or reads; DONE
 *                waits with it
 *   -ETIMEDOUT   given up, never delivered: the partner's client had no
 *                channel attached for the partner keeper's msg-hold-ms
 *                (from when the message came or the client went,
 *                whichever is later).  Never for a client that stays
 *                attached, however slow.  For a write with CCM_NOTIFY:
 *                the notify was given up; the bytes are in the window
 *   loss         only when the session with the partner ends (it rebooted:
 *                a new epoch; it handshook again; or a keeper stopped):
 *                then every message not yet DONE completes with
 *                -ECONNRESET (session ended) or -ESHUTDOWN (our keeper
 *                stopped): it may or may not have been delivered -- at
 *                most once, never confirmed
 *   -EHOSTUNREACH  not sent: no partner session now
 *
 * Partner loss that heals (PARTNER_LOST, then PARTNER_BACK with the same
 * epoch) loses nothing: the messages go again and their DONEs follow. */
int ccm_send(struct ccm_client *c, int port, const void *msg, size_t len, uint32_t *tag);

/* ccm_send, waiting for credit first if the port has none, then for its
 * own DONE (other events meanwhile are queued for ccm_next): its status. */
int ccm_send_sync(struct ccm_client *c, int port, const void *msg, size_t len);

/* The next event: 0 and *ev filled, -EAGAIN when none came within
 * timeout_ms (0: do not wait; -1: wait as long as it takes). */
int ccm_next(struct ccm_client *c, struct ccm_event *ev, int timeout_ms);

/* Write, read or send and wait for its own completion (other events that
 * arrive meanwhile are queued for ccm_next). */
int ccm_write_sync(struct ccm_client *c, int port, uint32_t local_off, uint32_t remote_off,
		   uint32_t len, unsigned flags);
int ccm_read_sync(struct ccm_client *c, int port, uint32_t local_off, uint32_t remote_off,
		  uint32_t len);

const char *ccm_strerror(int err);
const char *ccm_event_name(enum ccm_event_type t);

#endif
