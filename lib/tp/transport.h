/* tp: the one transport interface.
 *
 * A transport gives a node what an RDMA NIC gives it: memory windows the
 * partner can READ and WRITE one-sidedly, one-sided READ and WRITE of the
 * partner's windows, small messages, completion events and a pollable fd.
 * Everything above this interface (handshake driver, exchange, ports) is
 * the same for every backend; the backends are
 *   tcp   one-sided semantics emulated over TCP: our event loop serves the
 *         partner's READ and WRITE requests against our exposed windows,
 *         as a NIC would (tp/tcp.c);
 *   rdma  libibverbs RC queue pairs connected with librdmacm (tp/rdma.c);
 *   mem   the same semantics in memory, between transports of one process,
 *         on a virtual clock with faults injected: the simulator's
 *         (tp/mem.c).
 *
 * Connections: each node listens (passive side: the partner's operations
 * arrive there and are served without the upper layers seeing them) and
 * connects to the partner (active side: our operations and messages go out
 * there).  Messages the partner sends arrive as TP_EV_MESSAGE.
 *
 * All calls are non-blocking.  Posting returns 0 or a negative errno; the
 * outcome of a posted operation, of tp_connect and of the connections
 * arrives as events from tp_progress(), which also serves the partner. */
#ifndef CCM_TP_H
#define CCM_TP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/errbuf.h"

/* Every backend's handle starts with this, so the wrappers below can
 * dispatch; the rest of the backend's struct is private to it. */
struct tp {
	const struct tp_ops *ops;
};

/* A window of the partner's memory, as the partner described it. */
struct tp_remote {
	uint64_t addr;
	uint32_t rkey;
	uint32_t len;
};

struct tp_addr {
	char host[64];        /* numeric IPv4 or IPv6 address */
	uint16_t port;
};

enum tp_event_type {
	TP_EV_CONNECTED = 1,  /* our active connection is up; status = 0 */
	TP_EV_CONNECT_FAILED, /* status = -errno (e.g. -ECONNREFUSED; -EACCES:
	                         the node there holds another key, or none) */
	TP_EV_OP_DONE,        /* wr_id, status: a posted READ/WRITE finished */
	TP_EV_MESSAGE,        /* msg, msg_len: valid until the next tp_progress */
	TP_EV_DISCONNECTED,   /* our active connection failed or closed; all
	                         operations still posted on it completed first,
	                         each with an error status */
	TP_EV_PEER_CONNECTED, /* the partner (re)connected to us; messages
	                         from its earlier connections are stale */
	TP_EV_PEER_CLOSED,    /* the partner's current connection to us closed */
	TP_EV_REJECTED,       /* a connection to us broke the protocol and was
	                         dropped, or came from a node tp_admit keeps
	                         out (status -EPERM, peer_node says which),
	                         or did not prove our key (-EACCES, peer_node
	                         the node it claimed), or had been given up
	                         on by its sender before we took it
	                         (-ETIMEDOUT: nothing wrong); status and
	                         detail say how */
};

struct tp_event {
	enum tp_event_type type;
	int status;
	uint64_t wr_id;
	struct tp_remote status_window;  /* CONNECTED: the partner's status window */
	uint32_t peer_node;              /* CONNECTED, PEER_CONNECTED, REJECTED
	                                    (-EPERM, -EACCES): the node id it gave */
	bool from_partner_addr;          /* REJECTED (-EACCES): it came from the
	                                    partner's configured address */
	const uint8_t *msg;
	uint32_t msg_len;
	char detail[112];                /* REJECTED, PEER_CLOSED, CONNECT_FAILED,
	                                    DISCONNECTED, a failed OP_DONE: the
	                                    transport's own diagnosis, or empty */
};

struct auth_keyring;

struct tp_config {
	struct tp_addr local;     /* where we listen */
	struct tp_addr partner;   /* where the partner listens */
	const char *device;       /* rdma: device name, NULL = by address */
	uint32_t node_id;
	/* The caller enforces both with tp_disconnect(); a backend may also use
	 * them to size its own retries (the rdma QP timeout). */
	uint32_t op_timeout_ms;
	uint32_t connect_timeout_ms;
	/* mem: the simulated interconnect this transport joins (tp/mem.h);
	 * the real backends ignore it. */
	struct tp_mem_net *net;
	/* The pre-shared keys (proto/auth.h), NULL or none in it: no key.
	 * Read at each greeting, so the owner may change them in place
	 * (rotation); connections already up keep their own keys.  tcp:
	 * with a key, a connection is served only once it proved the key,
	 * and every frame after the greeting is sealed (tcpwire.h). */
	const struct auth_keyring *keys;
};

/* Expose flags. */
enum {
	TP_EXPOSE_STATUS = 1u << 0, /* this is the status window: advertised to
	                               the partner when it connects */
	TP_EXPOSE_WRITE = 1u << 1,  /* the partner may WRITE (READ always) */
	TP_EXPOSE_LOCAL = 1u << 2,  /* local buffers only: the partner can
	                               neither READ nor WRITE it */
};

/* Local buffers: the dst of tp_read and the src of tp_write must lie inside
 * a region passed to tp_expose (RDMA needs them registered) and must stay
 * untouched until the operation's TP_EV_OP_DONE. */

struct tp_ops {
	const char *name;
	int (*create)(const struct tp_config *cfg, struct tp **out, struct errbuf *e);
	int (*expose)(struct tp *t, void *base, size_t len, unsigned flags, struct tp_remote *out);
	int (*unexpose)(struct tp *t, const struct tp_remote *handle);
	int (*listen)(struct tp *t, struct errbuf *e);
	int (*connect)(struct tp *t);
	void (*disconnect)(struct tp *t);
	int (*read)(struct tp *t, const struct tp_remote *w, uint64_t off, void *dst, uint32_t len, uint64_t wr_id);
	int (*write)(struct tp *t, const struct tp_remote *w, uint64_t off, const void *src, uint32_t len, uint64_t wr_id);
	int (*send)(struct tp *t, const void *msg, uint32_t len);
	void (*admit)(struct tp *t, uint32_t node);
	int (*fd)(struct tp *t);
	int (*progress)(struct tp *t, struct tp_event *ev, int max);
	void (*destroy)(struct tp *t);
};

/* The calls, for users of a transport. */
static inline int tp_expose(struct tp *t, void *base, size_t len, unsigned flags, struct tp_remote *out)
{ return t->ops->expose(t, base, len, flags, out); }
static inline int tp_unexpose(struct tp *t, const struct tp_remote *h)
{ return t->ops->unexpose(t, h); }
static inline int tp_listen(struct tp *t, struct errbuf *e) { return t->ops->listen(t, e); }
static inline int tp_connect(struct tp *t) { return t->ops->connect(t); }
static inline void tp_disconnect(struct tp *t) { t->ops->disconnect(t); }
static inline int tp_read(struct tp *t, const struct tp_remote *w, uint64_t off, void *dst, uint32_t len, uint64_t wr_id)
{ return t->ops->read(t, w, off, dst, len, wr_id); }
static inline int tp_write(struct tp *t, const struct tp_remote *w, uint64_t off, const void *src, uint32_t len, uint64_t wr_id)
{ return t->ops->write(t, w, off, src, len, wr_id); }
static inline int tp_send(struct tp *t, const void *msg, uint32_t len) { return t->ops->send(t, msg, len); }
/* From now on only node `node` may connect to us (0: any node): another's
 * greeting is refused with a typed answer (its connect fails with -EPERM)
 * and a TP_EV_REJECTED here naming it; connections other nodes already
 * have go at once, and the newest of `node`'s is the current one.  A
 * stray or misconfigured node can so never disturb a live session. */
static inline void tp_admit(struct tp *t, uint32_t node) { t->ops->admit(t, node); }
static inline int tp_fd(struct tp *t) { return t->ops->fd(t); }
static inline int tp_progress(struct tp *t, struct tp_event *ev, int max) { return t->ops->progress(t, ev, max); }
static inline void tp_destroy(struct tp *t) { if (t) t->ops->destroy(t); }

/* Every backend takes this many READs and WRITEs posted on one connection
 * at once; one more is -EBUSY until a completion. */
#define TP_OPS_MAX 64

/* For backends: the events a backend has made but not yet handed out.
 * Each holds one per operation in flight plus connection events, so it
 * cannot overflow in use; if it ever would, the oldest goes. */
#define TP_EVQ_MAX 160

struct tp_evq {
	int len;
	struct tp_event ev[TP_EVQ_MAX];
};

void tp_evq_push(struct tp_evq *q, const struct tp_event *ev);
/* Move up to max events to out; returns how many. */
int tp_evq_take(struct tp_evq *q, struct tp_event *out, int max);

/* The backends. */
extern const struct tp_ops tp_tcp_ops;
extern const struct tp_ops tp_rdma_ops;
extern const struct tp_ops tp_mem_ops;

/* Look a backend up by name ("tcp", "rdma"); NULL if this build has none. */
const struct tp_ops *tp_lookup(const char *name);

/* Parse "ADDR[:PORT]" or "[V6ADDR][:PORT]"; default_port when omitted. */
int tp_parse_addr(const char *s, uint16_t default_port, struct tp_addr *out, struct errbuf *e);
/* "ADDR:PORT" or "[V6]:PORT" into buf. */
const char *tp_format_addr(const struct tp_addr *a, char *buf, size_t len);
/* a's host with the given port as a sockaddr_in or _in6 in *ss: its length
 * for bind() and connect(), or -EINVAL if the host is not numeric. */
struct sockaddr_storage;
int tp_to_sockaddr(const struct tp_addr *a, uint16_t port, struct sockaddr_storage *ss);
/* Whether sa's host (any port) is a's. */
struct sockaddr;
bool tp_same_host(const struct sockaddr *sa, const struct tp_addr *a);

#endif
