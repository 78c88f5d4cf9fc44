/* tp_tcp: the tcp transport backend.
 *
 * It gives the layers above exactly what an RDMA NIC gives them, over TCP:
 * the passive side of each connection is served inside tp_progress(), which
 * answers the partner's READ and WRITE requests against our exposed regions
 * the way a NIC would, without the handshake or the exchange ever seeing
 * them.  Frames are tcpwire.h's.
 *
 * With a key (tcp_config.keys), the greeting proves it both ways and every
 * frame after it is sealed (tcpwire.h, seal.h): a connection to us is
 * served -- and may become the partner's current one -- only once it
 * proved the key, so whatever cannot prove it can neither read, write,
 * inject nor displace anything.
 *
 * One epoll fd covers the listening socket, our active connection and the
 * partner's connections to us; it is the transport's pollable fd.  Sockets
 * are read exactly one frame part at a time (header, then body), never
 * ahead, so a frame not yet handled is always still in the kernel and the
 * level-triggered epoll fd stays readable until it is. */
#include "tp/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "base/clock.h"
#include "base/bytes.h"
#include "base/limits.h"
#include "proto/auth.h"
#include "proto/seal.h"
#include "proto/tcpwire.h"

#define TCP_REGIONS_MAX   (CCM_PORTS_TOTAL + 8)
#define TCP_PASSIVE_MAX   4
#define TCP_PENDING_MAX   TP_OPS_MAX
#define TCP_OUT_MAX       (4u * (TCPWIRE_HDR_LEN + TCPWIRE_MAX_BODY + SEAL_TAG_LEN))
#define GREETING_MS       5000    /* a connection to us that has not greeted by then goes */
/* Frames served on one connection per progress call: a connection that
 * floods READs waits its turn behind the others and the keeper's own
 * timers (its heartbeats), as each NIC queue pair gets its share. */
#define SERVE_BUDGET      32

struct tcp_region {
	bool used;
	void *base;
	size_t len;
	unsigned flags;
};

/* One TCP connection with its framing state. */
struct tcp_conn {
	int fd;                 /* -1 when unused */
	uint8_t hdr[TCPWIRE_HDR_LEN];
	size_t hdr_got;
	struct tcpwire_hdr h;
	uint8_t *body;          /* TCPWIRE_MAX_BODY, allocated on first use */
	size_t body_got;
	uint8_t *out;           /* queued output */
	size_t out_len, out_off, out_cap;
	bool want_out;          /* EPOLLOUT armed */
	uint32_t greeted;       /* passive: which CONN_REQ this was, 0 = none yet */
	uint32_t node;          /* passive: the node id its CONN_REQ gave */
	uint64_t accepted_ms;   /* passive: when it was accepted (clock_ms) */
	struct errbuf why;      /* what broke the protocol, for TP_EV_REJECTED */
	/* With a key: */
	bool proving;           /* passive: CONN_REP went, CONN_PROOF is due */
	uint8_t want_proof[CCM_MAC_LEN];   /* passive: the proof that will do */
	uint8_t greeting[TCPWIRE_CONN_REQ_KEYED_LEN];  /* active: our CONN_REQ */
	bool seal_in, seal_out; /* frames in / out are sealed */
	struct seal rx, tx;
	uint8_t tag[SEAL_TAG_LEN];
	size_t tag_got;
};

struct tcp_pending {
	bool used;
	uint32_t req_id;
	uint64_t wr_id;
	bool is_read;
	void *dst;
	uint32_t len;
};

enum active_state { ACT_IDLE, ACT_CONNECTING, ACT_GREETING, ACT_UP };

struct tp_tcp {
	struct tp base;
	struct tp_config cfg;
	int ep;
	int lfd;
	struct tcp_region regions[TCP_REGIONS_MAX];
	int status_key;         /* region advertised in CONN_REP, -1 none */
	enum active_state act_state;
	struct tcp_conn act;
	struct tcp_conn pas[TCP_PASSIVE_MAX];
	struct tcp_pending pend[TCP_PENDING_MAX];
	uint32_t next_req;
	struct tp_evq evq;
	uint8_t *msg_hold;      /* the message handed out by the last progress */
	uint8_t *spare;         /* a body buffer to give the next connection that
	                           hands its own out, so none is allocated per
	                           message */
	uint32_t greetings;     /* CONN_REQs served */
	uint32_t current;       /* the greeting of the partner's current
	                           connection: its newest (admitted) one */
	uint32_t admit;         /* tp_admit: the one node let in, 0 any */
	struct auth_key act_key;   /* the key our active greeting named */
};

static struct tp_tcp *to_tcp(struct tp *t)
{
	return (struct tp_tcp *)t;
}

static void conn_init(struct tcp_conn *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static void conn_close(struct tp_tcp *t, struct tcp_conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	free(c->body);
	free(c->out);
	seal_wipe(&c->rx);
	seal_wipe(&c->tx);
	conn_init(c);
}

static bool have_key(const struct tp_tcp *t)
{
	return t->cfg.keys && t->cfg.keys->n > 0;
}


static int epoll_set(struct tp_tcp *t, struct tcp_conn *c, int op)
{
	struct epoll_event ev = { .events = EPOLLIN | (c->want_out ? EPOLLOUT : 0) };

	ev.data.ptr = c;
	return epoll_ctl(t->ep, op, c->fd, &ev) ? -errno : 0;
}

/* Latency matters more than segment count; and a partner that dies
 * without a FIN must be noticed in seconds, not hours.  A connection
 * without these would hide a dead partner for hours: no option is
 * optional.  e says which one failed. */
static int set_sockopts(int fd, struct errbuf *e)
{
	static const int one = 1, idle = 1, intvl = 1, cnt = 3;
	static const unsigned user_timeout = 3000;
	static const struct {
		int level, name;
		const char *what;
		const void *val;
	} opts[] = {
		{ IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY", &one },
		{ SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE", &one },
		{ IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE", &idle },
		{ IPPROTO_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL", &intvl },
		{ IPPROTO_TCP, TCP_KEEPCNT, "TCP_KEEPCNT", &cnt },
		{ IPPROTO_TCP, TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT", &user_timeout },
	};

	/* Closing aborts (RST): whatever is still queued or unacknowledged
	 * is discarded, never delivered after the connection was given up or
	 * its process died.  Otherwise a WRITE that went again over another
	 * link could be overtaken by its first copy, retransmitted once the
	 * failed link came back, landing stale over newer bytes (the
	 * simulator found it), and a dead keeper's last messages could reach
	 * the partner's next session.  As an RDMA queue pair's destruction
	 * does. */
	static const struct linger abort_on_close = { .l_onoff = 1, .l_linger = 0 };

	/* Every value is an int or unsigned: one size for all. */
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (setsockopt(fd, opts[i].level, opts[i].name, opts[i].val, sizeof(int)) < 0)
			return errbuf_set(e, -errno, "setsockopt %s: %s", opts[i].what,
					  strerror(errno));
	if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close)) < 0)
		return errbuf_set(e, -errno, "setsockopt SO_LINGER: %s", strerror(errno));
	return 0;
}

/* --- output ---------------------------------------------------------------- */

static int conn_flush(struct tp_tcp *t, struct tcp_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	/* Ask for POLLOUT only while something is queued. */
	bool want = c->out_len > 0;
	if (want != c->want_out) {
		c->want_out = want;
		return epoll_set(t, c, EPOLL_CTL_MOD);
	}
	return 0;
}

/* Queue one frame (header + up to two body pieces) and try to send it. */
static int conn_queue(struct tp_tcp *t, struct tcp_conn *c, const struct tcpwire_hdr *h,
		      const void *b1, size_t l1, const void *b2, size_t l2)
{
	size_t need = TCPWIRE_HDR_LEN + l1 + l2 + (c->seal_out ? SEAL_TAG_LEN : 0);
	uint8_t *frame;

	if (c->out_len + need > TCP_OUT_MAX)
		return -ENOBUFS;
	if (c->out_len + need > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		uint8_t *p;

		while (cap < c->out_len + need)
			cap *= 2;
		p = realloc(c->out, cap);
		if (!p)
			return -ENOMEM;
		c->out = p;
		c->out_cap = cap;
	}
	frame = c->out + c->out_len;
	if (tcpwire_encode_hdr(h, frame) < 0)
		return -EINVAL;
	if (l1)
		memcpy(frame + TCPWIRE_HDR_LEN, b1, l1);
	if (l2)
		memcpy(frame + TCPWIRE_HDR_LEN + l1, b2, l2);
	if (c->seal_out && seal_close(&c->tx, frame, TCPWIRE_HDR_LEN, frame + TCPWIRE_HDR_LEN,
				      l1 + l2, frame + TCPWIRE_HDR_LEN + l1 + l2) < 0)
		return -EOVERFLOW;
	c->out_len += need;
	return conn_flush(t, c);
}

/* --- input ----------------------------------------------------------------- */

/* Read on into buf until *got reaches want: 1 once it has, 0 not yet,
 * negative when the connection is finished. */
static int recv_part(int fd, uint8_t *buf, size_t want, size_t *got)
{
	ssize_t n = recv(fd, buf + *got, want - *got, MSG_DONTWAIT);

	if (n == 0)
		return -ECONNRESET;
	if (n < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
	*got += (size_t)n;
	return *got == want;
}

/* Read the rest of the current frame.  1 = a whole frame is in c->h and
 * c->body, 0 = not yet, negative = the connection is finished (EOF, error
 * or a malformed header). */
static int conn_read_frame(struct tcp_conn *c)
{
	int r;

	if (c->hdr_got < TCPWIRE_HDR_LEN) {
		if ((r = recv_part(c->fd, c->hdr, TCPWIRE_HDR_LEN, &c->hdr_got)) <= 0)
			return r;
		if (tcpwire_decode_hdr(c->hdr, &c->h, &c->why) < 0)
			return -EBADMSG;
		c->body_got = c->tag_got = 0;
		if (c->h.body_len && !c->body) {
			c->body = malloc(TCPWIRE_MAX_BODY);
			if (!c->body)
				return -ENOMEM;
		}
	}
	if (c->body_got < c->h.body_len &&
	    (r = recv_part(c->fd, c->body, c->h.body_len, &c->body_got)) <= 0)
		return r;
	if (c->seal_in) {
		if (c->tag_got < SEAL_TAG_LEN &&
		    (r = recv_part(c->fd, c->tag, SEAL_TAG_LEN, &c->tag_got)) <= 0)
			return r;
		/* An empty body has no buffer; the tag stands in, untouched. */
		if (seal_open(&c->rx, c->hdr, TCPWIRE_HDR_LEN, c->body ? c->body : c->tag,
			      c->h.body_len, c->tag) < 0) {
			errbuf_set(&c->why, -EBADMSG, "a %s frame failed authentication (forged, "
				   "replayed or damaged)", tcpwire_type_name(c->h.type));
			return -EBADMSG;
		}
	}
	c->hdr_got = 0;  /* ready for the next frame once this one is handled */
	return 1;
}

/* --- regions --------------------------------------------------------------- */

/* Find [addr, addr+len) inside region rkey.  For tcp a region's remote
 * address space starts at 0, so addr is an offset into it. */
static void *region_span(struct tp_tcp *t, uint32_t rkey, uint64_t addr, uint32_t len,
			 bool write, uint16_t *status)
{
	struct tcp_region *r;

	if (rkey >= TCP_REGIONS_MAX || !t->regions[rkey].used ||
	    (t->regions[rkey].flags & TP_EXPOSE_LOCAL)) {
		*status = EINVAL;
		return NULL;
	}
	r = &t->regions[rkey];
	if (addr > r->len || len > r->len - addr) {
		*status = EFAULT;
		return NULL;
	}
	if (write && !(r->flags & TP_EXPOSE_WRITE)) {
		*status = EACCES;
		return NULL;
	}
	*status = 0;
	return (uint8_t *)r->base + addr;
}

/* --- the passive side: serving the partner, as a NIC would ------------------ */

/* A greeting from a node tp_admit keeps out: it hears so (CONN_REP with
 * EPERM, which its connect reports), the session hears who it was, and
 * the connection goes before it could touch anything. */
static int refuse_stranger(struct tp_tcp *t, struct tcp_conn *c, uint32_t node)
{
	static const struct linger graceful = { 0 };
	struct tcpwire_hdr rep = { .type = TCPWIRE_CONN_REP, .req_id = c->h.req_id, .status = EPERM };
	struct tp_event ev = { .type = TP_EV_REJECTED, .status = -EPERM, .peer_node = node };

	snprintf(ev.detail, sizeof(ev.detail), "node %u is not our partner (node %u)", node,
		 t->admit);
	tp_evq_push(&t->evq, &ev);
	/* Closed gracefully, so that the answer is not lost to the reset. */
	(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &graceful, sizeof(graceful));
	conn_queue(t, c, &rep, NULL, 0, NULL, 0);
	return errbuf_set(&c->why, -EPERM, "node %u refused", node);
}

/* A connection that proved itself (or, without a key, greeted) becomes
 * the partner's current one: the newest speaks for it. */
static void greeted(struct tp_tcp *t, struct tcp_conn *c, uint32_t node)
{
	struct tp_event ev = { .type = TP_EV_PEER_CONNECTED, .peer_node = node };

	c->greeted = t->current = ++t->greetings;
	c->node = node;
	tp_evq_push(&t->evq, &ev);
}

/* Whether fd's other end is the partner's configured address. */
static bool from_partner_addr(const struct tp_tcp *t, int fd)
{
	struct sockaddr_storage got;
	socklen_t len = sizeof(got);

	return getpeername(fd, (struct sockaddr *)&got, &len) == 0 &&
	       tp_same_host((struct sockaddr *)&got, &t->cfg.partner);
}

/* A greeting whose key is not ours (or that has none, or brings one we do
 * not have): it hears EACCES, the session hears why, the connection goes. */
static int refuse_key(struct tp_tcp *t, struct tcp_conn *c, uint32_t node, const char *why)
{
	static const struct linger graceful = { 0 };
	struct tcpwire_hdr rep = { .type = TCPWIRE_CONN_REP, .req_id = c->h.req_id, .status = EACCES };
	struct tp_event ev = { .type = TP_EV_REJECTED, .status = -EACCES, .peer_node = node,
			       .from_partner_addr = from_partner_addr(t, c->fd) };

	snprintf(ev.detail, sizeof(ev.detail), "node %u %s", node, why);
	tp_evq_push(&t->evq, &ev);
	(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &graceful, sizeof(graceful));
	conn_queue(t, c, &rep, NULL, 0, NULL, 0);
	return errbuf_set(&c->why, -EACCES, "node %u %s", node, why);
}

static int serve_greeting(struct tp_tcp *t, struct tcp_conn *c)
{
	struct tcpwire_conn_req req;
	struct tcpwire_conn_rep cr = { .proto = CCM_PROTO_MAX, .node_id = t->cfg.node_id };
	struct tcpwire_hdr rep = { .type = TCPWIRE_CONN_REP, .req_id = c->h.req_id };
	uint8_t transcript[TCPWIRE_CONN_REQ_KEYED_LEN + TCPWIRE_CONN_REP_KEYED_LEN];
	uint8_t to_passive[AUTH_SESSION_KEY_LEN], to_active[AUTH_SESSION_KEY_LEN];
	const struct auth_key *key = NULL;
	size_t tlen;
	int n;

	if (c->greeted || c->proving)
		return errbuf_set(&c->why, -EPROTO, "a second CONN_REQ");
	if (tcpwire_decode_conn_req(c->body, c->h.body_len, &req, &c->why) < 0)
		return -EPROTO;
	if (t->admit && req.node_id != t->admit)
		return refuse_stranger(t, c, req.node_id);
	if (have_key(t) && !req.keyed)
		return refuse_key(t, c, req.node_id, "has no pre-shared key; ours is required");
	if (!have_key(t) && req.keyed)
		return refuse_key(t, c, req.node_id, "has a pre-shared key; none is configured here");
	if (req.keyed && !(key = auth_keyring_find(t->cfg.keys, req.key_id))) {
		/* A key's id is no secret: it says which key to look for. */
		char id[AUTH_KEY_ID_LEN + 1], why[64];

		hex_encode(id, req.key_id, sizeof(req.key_id));
		snprintf(why, sizeof(why), "proves with key %s, which we do not hold", id);
		return refuse_key(t, c, req.node_id, why);
	}
	if (t->status_key < 0) {
		rep.status = ENODEV;
		return conn_queue(t, c, &rep, NULL, 0, NULL, 0);
	}
	cr.status_addr = 0;
	cr.status_rkey = (uint32_t)t->status_key;
	cr.status_len = (uint32_t)t->regions[t->status_key].len;
	if (!key) {
		greeted(t, c, req.node_id);
		n = tcpwire_encode_conn_rep(&cr, transcript);
		if (n < 0)
			return -EINVAL;
		rep.body_len = (uint32_t)n;
		return conn_queue(t, c, &rep, transcript, (size_t)n, NULL, 0);
	}
	/* The transcript: its CONN_REQ as it came, then our CONN_REP up to
	 * the mac, which goes in last. */
	cr.keyed = 1;
	if (auth_random(cr.nonce, sizeof(cr.nonce)) < 0)
		return errbuf_set(&c->why, -EIO, "no random bytes for the nonce");
	memcpy(transcript, c->body, c->h.body_len);
	tlen = c->h.body_len;
	n = tcpwire_encode_conn_rep(&cr, transcript + tlen);
	if (n < 0)
		return -EINVAL;
	tlen += TCPWIRE_CONN_REP_MACED_LEN;
	auth_greeting_mac(key, AUTH_PASSIVE, transcript, tlen, transcript + tlen);
	auth_greeting_mac(key, AUTH_ACTIVE, transcript, tlen, c->want_proof);
	auth_session_keys(key, transcript, tlen, to_passive, to_active);
	seal_init(&c->rx, to_passive);
	seal_init(&c->tx, to_active);
	sodium_memzero(to_passive, sizeof(to_passive));
	sodium_memzero(to_active, sizeof(to_active));
	c->node = req.node_id;
	c->proving = true;
	rep.body_len = (uint32_t)n;
	n = conn_queue(t, c, &rep, transcript + c->h.body_len, (size_t)n, NULL, 0);
	c->seal_out = true;
	return n;
}

/* The active side's proof: from here on the connection is the partner's
 * (its newest), and what it sends is sealed. */
static int serve_proof(struct tp_tcp *t, struct tcp_conn *c)
{
	if (!c->proving)
		return errbuf_set(&c->why, -EPROTO, "CONN_PROOF %s",
				  c->greeted ? "twice" : "before CONN_REQ");
	if (sodium_memcmp(c->body, c->want_proof, CCM_MAC_LEN) != 0) {
		struct tp_event ev = { .type = TP_EV_REJECTED, .status = -EACCES,
				       .peer_node = c->node };

		snprintf(ev.detail, sizeof(ev.detail), "node %u did not prove the key it named",
			 c->node);
		tp_evq_push(&t->evq, &ev);
		return errbuf_set(&c->why, -EACCES, "node %u did not prove the key it named", c->node);
	}
	c->proving = false;
	c->seal_in = true;
	greeted(t, c, c->node);
	return 0;
}

static int serve_frame(struct tp_tcp *t, struct tcp_conn *c)
{
	struct tcpwire_hdr rep = { .req_id = c->h.req_id };
	struct tcpwire_rw rw;
	uint16_t status;
	void *p;

	if (c->h.type == TCPWIRE_CONN_REQ)
		return serve_greeting(t, c);
	if (c->h.type == TCPWIRE_CONN_PROOF)
		return serve_proof(t, c);
	/* Nothing is served, nothing touched, before the greeting (and,
	 * with a key, its proof) is complete. */
	if (!c->greeted)
		return errbuf_set(&c->why, -EPROTO, "%s before %s", tcpwire_type_name(c->h.type),
				  c->proving ? "the proof of the key" : "CONN_REQ");
	switch (c->h.type) {
	case TCPWIRE_READ_REQ:
		if (tcpwire_decode_read_req(c->body, c->h.body_len, &rw, &c->why) < 0)
			return -EPROTO;
		p = region_span(t, rw.rkey, rw.addr, rw.len, false, &status);
		rep.type = TCPWIRE_READ_REP;
		rep.status = status;
		rep.body_len = p ? rw.len : 0;
		return conn_queue(t, c, &rep, p, rep.body_len, NULL, 0);
	case TCPWIRE_WRITE_REQ:
		if (tcpwire_decode_write_req(c->body, c->h.body_len, &rw, &c->why) < 0)
			return -EPROTO;
		p = region_span(t, rw.rkey, rw.addr, rw.len, true, &status);
		if (p)
			memcpy(p, c->body + TCPWIRE_RW_LEN, rw.len);
		rep.type = TCPWIRE_WRITE_REP;
		rep.status = status;
		return conn_queue(t, c, &rep, NULL, 0, NULL, 0);
	case TCPWIRE_MSG: {
		struct tp_event ev = { .type = TP_EV_MESSAGE };

		/* Only the partner's current connection speaks for it. */
		if (c->greeted != t->current)
			return errbuf_set(&c->why, -EPROTO, "a message on a superseded connection");
		/* Hand the body itself out until the next progress; the
		 * connection reads on into the spare buffer. */
		t->msg_hold = c->body;
		c->body = t->spare;
		t->spare = NULL;
		ev.msg = t->msg_hold;
		ev.msg_len = c->h.body_len;
		tp_evq_push(&t->evq, &ev);
		return 1;
	}
	default:
		/* Replies belong on the active side; anything else is
		 * a partner speaking out of turn. */
		return errbuf_set(&c->why, -EPROTO, "unexpected %s", tcpwire_type_name(c->h.type));
	}
}

static int accept_one(struct tp_tcp *t)
{
	struct tcp_conn *slot = NULL;
	struct errbuf e;
	int fd, i, r;

	fd = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) ? 0 : -errno;
	for (i = 0; i < TCP_PASSIVE_MAX && !slot; i++)
		if (t->pas[i].fd < 0)
			slot = &t->pas[i];
	if (!slot) {
		/* A partner that restarted leaves its old connection behind
		 * until TCP notices; make room by dropping the oldest -- but
		 * never the partner's current one, whatever else keeps
		 * connecting (a flood of idle connections must not cut it). */
		int victim = t->pas[0].greeted && t->pas[0].greeted == t->current ? 1 : 0;

		conn_close(t, &t->pas[victim]);
		memmove(&t->pas[victim], &t->pas[victim + 1],
			sizeof(t->pas[0]) * (size_t)(TCP_PASSIVE_MAX - 1 - victim));
		slot = &t->pas[TCP_PASSIVE_MAX - 1];
		conn_init(slot);
		/* The moved connections' epoll data point at their old slots. */
		for (i = 0; i < TCP_PASSIVE_MAX - 1; i++)
			epoll_set(t, &t->pas[i], EPOLL_CTL_MOD);
	}
	slot->fd = fd;
	slot->accepted_ms = clock_ms();
	r = set_sockopts(fd, &e);
	if (r == 0 && (r = epoll_set(t, slot, EPOLL_CTL_ADD)) < 0)
		errbuf_set(&e, r, "epoll: %s", strerror(-r));
	if (r < 0) {
		/* The partner's connect retries; the session hears why this
		 * one was dropped. */
		struct tp_event ev = { .type = TP_EV_REJECTED, .status = r };

		snprintf(ev.detail, sizeof(ev.detail), "cannot take the connection: %.*s",
			 (int)sizeof(ev.detail) - 32, e.msg);
		tp_evq_push(&t->evq, &ev);
		conn_close(t, slot);
	}
	return 0;
}

static void passive_closed(struct tp_tcp *t, struct tcp_conn *c, int status)
{
	struct tp_event ev = { .status = status };
	bool current = c->greeted && c->greeted == t->current;

	if (status == -EBADMSG || status == -EPROTO) {
		ev.type = TP_EV_REJECTED;
		snprintf(ev.detail, sizeof(ev.detail), "%.*s", (int)sizeof(ev.detail) - 1, c->why.msg);
		tp_evq_push(&t->evq, &ev);
	}
	conn_close(t, c);
	if (current) {
		ev.type = TP_EV_PEER_CLOSED;
		tp_evq_push(&t->evq, &ev);
	}
}

/* --- the active side: our operations ------------------------------------------ */

static void fail_pending(struct tp_tcp *t, int status)
{
	for (int i = 0; i < TCP_PENDING_MAX; i++) {
		struct tp_event ev = { .type = TP_EV_OP_DONE, .status = status };

		if (!t->pend[i].used)
			continue;
		ev.wr_id = t->pend[i].wr_id;
		t->pend[i].used = false;
		tp_evq_push(&t->evq, &ev);
	}
}

static void active_down(struct tp_tcp *t, int status)
{
	enum active_state was = t->act_state;
	struct tp_event ev = { .status = status };

	/* What went wrong, when we found it ourselves (a failed proof). */
	snprintf(ev.detail, sizeof(ev.detail), "%.*s", (int)sizeof(ev.detail) - 1, t->act.why.msg);
	conn_close(t, &t->act);
	t->act_state = ACT_IDLE;
	fail_pending(t, status ? status : -ECONNRESET);
	if (was == ACT_UP) {
		ev.type = TP_EV_DISCONNECTED;
		tp_evq_push(&t->evq, &ev);
	} else if (was != ACT_IDLE) {
		ev.type = TP_EV_CONNECT_FAILED;
		ev.status = status ? status : -ECONNREFUSED;
		tp_evq_push(&t->evq, &ev);
	}
}

static struct tcp_pending *pending_take(struct tp_tcp *t, uint32_t req_id)
{
	for (int i = 0; i < TCP_PENDING_MAX; i++)
		if (t->pend[i].used && t->pend[i].req_id == req_id)
			return &t->pend[i];
	return NULL;
}

/* With a key, the partner's CONN_REP must prove it over the greeting;
 * then we prove it in turn, and both directions are sealed from here. */
static int active_check_proof(struct tp_tcp *t, const struct tcpwire_conn_rep *cr)
{
	struct tcp_conn *c = &t->act;
	struct tcpwire_hdr h = { .type = TCPWIRE_CONN_PROOF, .body_len = TCPWIRE_CONN_PROOF_LEN };
	uint8_t transcript[TCPWIRE_CONN_REQ_KEYED_LEN + TCPWIRE_CONN_REP_MACED_LEN];
	uint8_t to_passive[AUTH_SESSION_KEY_LEN], to_active[AUTH_SESSION_KEY_LEN];
	uint8_t proof[CCM_MAC_LEN];
	int r;

	if (!have_key(t))
		return cr->keyed ? errbuf_set(&c->why, -EPROTO, "a keyed CONN_REP to a plain "
					      "CONN_REQ") : 0;
	/* A partner answering without a key would be a downgrade. */
	if (!cr->keyed)
		return errbuf_set(&c->why, -EACCES, "the node there answered without a pre-shared key");
	memcpy(transcript, c->greeting, TCPWIRE_CONN_REQ_KEYED_LEN);
	memcpy(transcript + TCPWIRE_CONN_REQ_KEYED_LEN, c->body, TCPWIRE_CONN_REP_MACED_LEN);
	if (auth_greeting_verify(&t->act_key, AUTH_PASSIVE, transcript, sizeof(transcript),
				 cr->mac) < 0)
		return errbuf_set(&c->why, -EACCES, "the node there did not prove our pre-shared key");
	auth_greeting_mac(&t->act_key, AUTH_ACTIVE, transcript, sizeof(transcript), proof);
	auth_session_keys(&t->act_key, transcript, sizeof(transcript), to_passive, to_active);
	seal_init(&c->tx, to_passive);
	seal_init(&c->rx, to_active);
	sodium_memzero(to_passive, sizeof(to_passive));
	sodium_memzero(to_active, sizeof(to_active));
	r = conn_queue(t, c, &h, proof, sizeof(proof), NULL, 0);
	c->seal_in = c->seal_out = true;
	return r;
}

static int active_frame(struct tp_tcp *t)
{
	struct tcp_conn *c = &t->act;
	struct tp_event ev = { 0 };
	struct tcp_pending *p;

	if (t->act_state == ACT_GREETING) {
		struct tcpwire_conn_rep cr;
		int r;

		if (c->h.type != TCPWIRE_CONN_REP)
			return -EPROTO;
		if (c->h.status == EACCES)
			return errbuf_set(&c->why, -EACCES, have_key(t) ?
					  "the node there holds another pre-shared key, or none" :
					  "the node there requires a pre-shared key; none is "
					  "configured here");
		if (c->h.status)
			return c->h.status < 4096 ? -(int)c->h.status : -EIO;
		if (tcpwire_decode_conn_rep(c->body, c->h.body_len, &cr, NULL) < 0)
			return -EPROTO;
		r = active_check_proof(t, &cr);
		if (r < 0)
			return r;
		t->act_state = ACT_UP;
		ev.type = TP_EV_CONNECTED;
		ev.status_window.addr = cr.status_addr;
		ev.status_window.rkey = cr.status_rkey;
		ev.status_window.len = cr.status_len;
		ev.peer_node = cr.node_id;
		tp_evq_push(&t->evq, &ev);
		return 0;
	}
	if (c->h.type != TCPWIRE_READ_REP && c->h.type != TCPWIRE_WRITE_REP)
		return -EPROTO;
	p = pending_take(t, c->h.req_id);
	if (!p || p->is_read != (c->h.type == TCPWIRE_READ_REP))
		return -EPROTO;  /* an answer to nothing we asked */
	ev.type = TP_EV_OP_DONE;
	ev.wr_id = p->wr_id;
	if (c->h.status) {
		/* The partner's errno; anything it should not say is EIO. */
		ev.status = c->h.status < 4096 ? -(int)c->h.status : -EIO;
	} else if (p->is_read) {
		if (tcpwire_check_read_rep(&c->h, p->len, NULL) < 0)
			return -EPROTO;
		memcpy(p->dst, c->body, p->len);
	} else if (c->h.body_len) {
		return -EPROTO;
	}
	p->used = false;
	tp_evq_push(&t->evq, &ev);
	return 0;
}

static int active_connected(struct tp_tcp *t)
{
	struct tcpwire_conn_req req = { .proto_min = CCM_PROTO_MIN, .proto_max = CCM_PROTO_MAX,
					.node_id = t->cfg.node_id };
	struct tcpwire_hdr h = { .type = TCPWIRE_CONN_REQ };
	int err = 0, n;
	socklen_t len = sizeof(err);

	if (getsockopt(t->act.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -errno;
	if (err)
		return -err;
	t->act_state = ACT_GREETING;
	if (have_key(t)) {
		/* We prove with the first key; the partner may hold it in
		 * either of its slots. */
		req.keyed = 1;
		auth_key_id_bytes(&t->cfg.keys->slot[0], req.key_id);
		if (auth_random(req.nonce, sizeof(req.nonce)) < 0)
			return -EIO;
		t->act_key = t->cfg.keys->slot[0];
	}
	n = tcpwire_encode_conn_req(&req, t->act.greeting);
	if (n < 0)
		return -EINVAL;
	h.body_len = (uint32_t)n;
	return conn_queue(t, &t->act, &h, t->act.greeting, (size_t)n, NULL, 0);
}

static void active_event(struct tp_tcp *t, uint32_t events)
{
	int r = 0;

	if (t->act_state == ACT_CONNECTING) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		r = active_connected(t);
	} else {
		if (events & EPOLLOUT)
			r = conn_flush(t, &t->act);
		while (r >= 0 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
			r = conn_read_frame(&t->act);
			if (r <= 0)
				break;
			r = active_frame(t);
		}
	}
	if (r < 0)
		active_down(t, r);
}

static void passive_event(struct tp_tcp *t, struct tcp_conn *c, uint32_t events)
{
	int r = 0;

	if (events & EPOLLOUT)
		r = conn_flush(t, c);
	/* Serve until the socket runs dry, the budget is spent (the rest
	 * stays in the kernel, and the level-triggered fd says so again) or
	 * a message is handed out: its buffer must live until the next
	 * progress call. */
	for (int served = 0; r >= 0 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) &&
	     served < SERVE_BUDGET; served++) {
		r = conn_read_frame(c);
		if (r <= 0)
			break;
		r = serve_frame(t, c);
		if (r == 1)
			return;
	}
	if (r < 0)
		passive_closed(t, c, r);
}

/* --- the interface ------------------------------------------------------------ */

static int tcp_expose(struct tp *tp, void *base, size_t len, unsigned flags, struct tp_remote *out)
{
	struct tp_tcp *t = to_tcp(tp);

	if (!base || !len || len > UINT32_MAX)
		return -EINVAL;
	if ((flags & TP_EXPOSE_STATUS) && t->status_key >= 0)
		return -EEXIST;
	for (int i = 0; i < TCP_REGIONS_MAX; i++) {
		if (t->regions[i].used)
			continue;
		t->regions[i] = (struct tcp_region){ true, base, len, flags };
		if (flags & TP_EXPOSE_STATUS)
			t->status_key = i;
		out->addr = 0;
		out->rkey = (uint32_t)i;
		out->len = (uint32_t)len;
		return 0;
	}
	return -ENOSPC;
}

static int tcp_unexpose(struct tp *tp, const struct tp_remote *h)
{
	struct tp_tcp *t = to_tcp(tp);

	if (h->rkey >= TCP_REGIONS_MAX || !t->regions[h->rkey].used)
		return -ENOENT;
	if ((int)h->rkey == t->status_key)
		t->status_key = -1;
	t->regions[h->rkey].used = false;
	return 0;
}

static int tcp_listen(struct tp *tp, struct errbuf *e)
{
	struct tp_tcp *t = to_tcp(tp);
	struct sockaddr_storage ss;
	struct epoll_event ev = { .events = EPOLLIN };
	const char *what;
	socklen_t len;
	char buf[96];
	int one = 1, r;

	r = tp_to_sockaddr(&t->cfg.local, t->cfg.local.port, &ss);
	if (r < 0)
		return errbuf_set(e, r, "listen address '%s' is not numeric", t->cfg.local.host);
	len = (socklen_t)r;
	t->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->lfd < 0)
		return errbuf_set(e, -errno, "socket: %s", strerror(errno));
	/* Without SO_REUSEADDR a keeper restarted within TIME_WAIT could not
	 * listen again: say so now rather than as a puzzling EADDRINUSE. */
	what = "setsockopt SO_REUSEADDR";
	if (setsockopt(t->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0) {
		what = "bind";
		if (bind(t->lfd, (struct sockaddr *)&ss, len) == 0) {
			what = "listen";
			if (listen(t->lfd, 8) == 0)
				what = NULL;
		}
	}
	if (what) {
		int err = -errno;

		close(t->lfd);
		t->lfd = -1;
		return errbuf_set(e, err, "cannot listen on %s: %s: %s",
				  tp_format_addr(&t->cfg.local, buf, sizeof(buf)), what,
				  strerror(-err));
	}
	ev.data.ptr = &t->lfd;
	if (epoll_ctl(t->ep, EPOLL_CTL_ADD, t->lfd, &ev) < 0)
		return errbuf_set(e, -errno, "epoll: %s", strerror(errno));
	return 0;
}

static int tcp_connect(struct tp *tp)
{
	struct tp_tcp *t = to_tcp(tp);
	struct sockaddr_storage ss, local;
	socklen_t len, llen;
	int fd, r;

	if (t->act_state != ACT_IDLE)
		return -EALREADY;
	r = tp_to_sockaddr(&t->cfg.partner, t->cfg.partner.port, &ss);
	if (r < 0)
		return r;
	len = (socklen_t)r;
	r = tp_to_sockaddr(&t->cfg.local, 0, &local);
	if (r < 0)
		return r;
	llen = (socklen_t)r;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Leave from our own link address, so the traffic takes the
	 * interconnect it was configured for. */
	r = bind(fd, (struct sockaddr *)&local, llen) < 0 ? -errno : set_sockopts(fd, NULL);
	if (r < 0) {
		close(fd);
		return r;
	}
	conn_init(&t->act);
	t->act.fd = fd;
	t->act.want_out = true;
	r = epoll_set(t, &t->act, EPOLL_CTL_ADD);
	if (r < 0) {
		conn_close(t, &t->act);
		return r;
	}
	t->act_state = ACT_CONNECTING;
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
		/* Refused at once: report it the same way as a late refusal. */
		active_down(t, -errno);
		return 0;
	}
	return 0;
}

static void tcp_disconnect(struct tp *tp)
{
	active_down(to_tcp(tp), -ECONNABORTED);
}

static int post_rw(struct tp_tcp *t, const struct tp_remote *w, uint64_t off, void *buf,
		   uint32_t len, uint64_t wr_id, bool is_read)
{
	struct tcpwire_hdr h = { .type = is_read ? TCPWIRE_READ_REQ : TCPWIRE_WRITE_REQ };
	struct tcpwire_rw rw = { .rkey = w->rkey, .len = len };
	uint8_t body[TCPWIRE_RW_LEN];
	struct tcp_pending *p = NULL;
	int r;

	if (t->act_state != ACT_UP)
		return -ENOTCONN;
	if (!len || len > CCM_OP_MAX || off > w->len || len > w->len - off)
		return -EINVAL;
	for (int i = 0; i < TCP_PENDING_MAX && !p; i++)
		if (!t->pend[i].used)
			p = &t->pend[i];
	if (!p)
		return -EBUSY;
	rw.addr = w->addr + off;
	if (tcpwire_encode_rw(&rw, body) < 0)
		return -EINVAL;
	h.req_id = ++t->next_req;
	h.body_len = TCPWIRE_RW_LEN + (is_read ? 0 : len);
	r = conn_queue(t, &t->act, &h, body, sizeof(body), is_read ? NULL : buf, is_read ? 0 : len);
	if (r < 0)
		return r;
	*p = (struct tcp_pending){ true, h.req_id, wr_id, is_read, buf, len };
	return 0;
}

static int tcp_read(struct tp *tp, const struct tp_remote *w, uint64_t off, void *dst,
		    uint32_t len, uint64_t wr_id)
{
	return post_rw(to_tcp(tp), w, off, dst, len, wr_id, true);
}

static int tcp_write(struct tp *tp, const struct tp_remote *w, uint64_t off, const void *src,
		     uint32_t len, uint64_t wr_id)
{
	return post_rw(to_tcp(tp), w, off, (void *)src, len, wr_id, false);
}

static int tcp_send(struct tp *tp, const void *msg, uint32_t len)
{
	struct tp_tcp *t = to_tcp(tp);
	struct tcpwire_hdr h = { .type = TCPWIRE_MSG, .body_len = len };

	if (t->act_state != ACT_UP)
		return -ENOTCONN;
	if (!len || len > CCM_MSG_MAX)
		return -EMSGSIZE;
	return conn_queue(t, &t->act, &h, msg, len, NULL, 0);
}

static void tcp_admit(struct tp *tp, uint32_t node)
{
	struct tp_tcp *t = to_tcp(tp);

	t->admit = node;
	if (!node)
		return;
	/* The newest connection of the node let in is the current one; the
	 * others' go, unannounced. */
	t->current = 0;
	for (int i = 0; i < TCP_PASSIVE_MAX; i++)
		if (t->pas[i].greeted && t->pas[i].node == node && t->pas[i].greeted > t->current)
			t->current = t->pas[i].greeted;
	for (int i = 0; i < TCP_PASSIVE_MAX; i++)
		if (t->pas[i].greeted && t->pas[i].node != node)
			conn_close(t, &t->pas[i]);
}

static int tcp_fd(struct tp *tp)
{
	return to_tcp(tp)->ep;
}

/* A connection to us that has not greeted within GREETING_MS goes,
 * without a word: connections that never speak would otherwise sit in
 * the passive slots for good. */
static void drop_silent(struct tp_tcp *t)
{
	uint64_t now = 0;

	/* Every progress passes here: the clock is read only when some
	 * connection has not greeted yet, which is rare. */
	for (int i = 0; i < TCP_PASSIVE_MAX; i++) {
		struct tcp_conn *c = &t->pas[i];

		if (c->fd < 0 || c->greeted)
			continue;
		if (!now)
			now = clock_ms();
		if (now - c->accepted_ms > GREETING_MS)
			conn_close(t, c);
	}
}

static int tcp_progress(struct tp *tp, struct tp_event *out, int max)
{
	struct tp_tcp *t = to_tcp(tp);
	struct epoll_event evs[8];
	int n, i;

	/* The message handed out last time has been consumed by now: its
	 * buffer becomes the spare. */
	if (t->msg_hold) {
		free(t->spare);
		t->spare = t->msg_hold;
		t->msg_hold = NULL;
	}
	drop_silent(t);
	if (t->evq.len == 0) {
		n = epoll_wait(t->ep, evs, 8, 0);
		/* Our own connection first: what the partner answered on it
		 * before it went away must be reported before the close of
		 * its connection to us is. */
		for (i = 0; i < n; i++)
			if (evs[i].data.ptr == &t->act)
				active_event(t, evs[i].events);
		for (i = 0; i < n && !t->msg_hold; i++) {
			void *who = evs[i].data.ptr;

			if (who == &t->lfd)
				accept_one(t);
			else if (who != &t->act)
				passive_event(t, who, evs[i].events);
			/* One message per call (the loop stops once one is
			 * held): its buffer lives until the next call. */
		}
	}
	return tp_evq_take(&t->evq, out, max);
}

static void tcp_destroy(struct tp *tp)
{
	struct tp_tcp *t = to_tcp(tp);

	conn_close(t, &t->act);
	for (int i = 0; i < TCP_PASSIVE_MAX; i++)
		conn_close(t, &t->pas[i]);
	if (t->lfd >= 0)
		close(t->lfd);
	close(t->ep);
	auth_wipe_key(&t->act_key);
	free(t->msg_hold);
	free(t->spare);
	free(t);
}

static int tcp_create(const struct tp_config *cfg, struct tp **out, struct errbuf *e)
{
	struct tp_tcp *t = calloc(1, sizeof(*t));

	if (!t)
		return errbuf_set(e, -ENOMEM, "out of memory");
	t->base.ops = &tp_tcp_ops;
	t->cfg = *cfg;
	t->lfd = -1;
	t->status_key = -1;
	conn_init(&t->act);
	for (int i = 0; i < TCP_PASSIVE_MAX; i++)
		conn_init(&t->pas[i]);
	t->ep = epoll_create1(EPOLL_CLOEXEC);
	if (t->ep < 0) {
		int err = -errno;

		free(t);
		return errbuf_set(e, err, "epoll_create1: %s", strerror(-err));
	}
	*out = &t->base;
	return 0;
}

const struct tp_ops tp_tcp_ops = {
	.name = "tcp",
	.create = tcp_create,
	.expose = tcp_expose,
	.unexpose = tcp_unexpose,
	.listen = tcp_listen,
	.connect = tcp_connect,
	.disconnect = tcp_disconnect,
	.read = tcp_read,
	.write = tcp_write,
	.send = tcp_send,
	.admit = tcp_admit,
	.fd = tcp_fd,
	.progress = tcp_progress,
	.destroy = tcp_destroy,
};
