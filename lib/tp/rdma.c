/* tp_rdma: the rdma transport backend -- libibverbs RC queue pairs
 * connected with librdmacm.
 *
 * Each node binds an rdma_cm id to its listen address (which picks the
 * device) and listens; it connects its own active id to the partner.  Our
 * READs, WRITEs and messages go out on the active queue pair; the partner's
 * arrive on the passive one, where the NIC serves the one-sided operations
 * without us and our receives take its messages.
 *
 * The CM private data carries, as tcpwire's CONN_REQ and CONN_REP bodies
 * behind a "CCMR" magic, the protocol range and node id one way and the
 * status window's address, length and rkey the other (at most 56 bytes).
 *
 * With a key, behind a "CCMG" magic, it carries tcpwire's keyed greeting
 * (key id, both nonces, the passive side's proof), and the status
 * window's address and rkey travel sealed behind it (seal.h, under the
 * connection's key towards the active side): only a holder of the key
 * learns them.  The active side's first message is its CONN_PROOF; until
 * it came, the connection is not the partner's, its messages are not
 * taken, and without it within GREETING_MS it goes.  Every message after
 * it carries a tag (seal.h), checked before it is handed out.
 *
 * An rkey is a capability the NIC honours for any queue pair of our
 * protection domain, and it can be guessed (8 bits of key beside a small
 * index).  So the queue pairs are ours, not the CM's (which opens them to
 * READ and WRITE as it readies them), and a queue pair's access flags
 * decide: our own connection's serve nothing (the node there never READs
 * or WRITEs through it), and with a key the partner's serve nothing until
 * its proof came.  Then the passive side opens its queue pair and says so
 * with an OPEN message; the active side READs and WRITEs only after it
 * (TP_EV_CONNECTED), or its first READ would find the queue pair shut.
 * A keyed request of the greeting before this gate ("CCMK") is refused
 * with a reason of its own: it would READ before the OPEN.
 *
 * Dead partners are found by the QP itself: an ACK timeout of 4.096 us x
 * 2^ACK_TIMEOUT (67 ms) and RETRY_COUNT retries make an operation on a
 * vanished partner fail in about a quarter of a second, and the session's
 * own operation timeout bounds it whatever the device does.
 *
 * One epoll fd covers the CM event channel and the completion channel. */
#include "tp/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include <sodium.h>

#include "base/be.h"
#include "base/bytes.h"
#include "base/clock.h"
#include "base/limits.h"
#include "proto/auth.h"
#include "proto/seal.h"
#include "proto/tcpwire.h"
#include "tp/rdma_reaper.h"

#define RDMA_REGIONS_MAX   (CCM_PORTS_TOTAL + 8)
#define RDMA_PASSIVE_MAX   2      /* the partner's current connection, and one it left */
#define RDMA_PENDING_MAX   TP_OPS_MAX
#define RDMA_RECV_SLOTS    16     /* the partner's messages in flight before it waits (RNR) */
#define RNR_NAK_TIMER      14     /* IB code 14: the partner retries a send after 1.28 ms */
#define RDMA_SEND_SLOTS    4
/* Two more slots of the send buffer: where our connection's OPEN lands,
 * and the OPEN the passive side sends (never changed once written). */
#define OPEN_RECV_SLOT     RDMA_SEND_SLOTS
#define OPEN_SEND_SLOT     (RDMA_SEND_SLOTS + 1)
#define RDMA_PRIV_MAGIC    0x43434d52u /* "CCMR" */
#define RDMA_PRIV_MAGIC_KEYED 0x43434d47u /* "CCMG": keyed, queue pairs gated */
#define RDMA_PRIV_MAGIC_UNGATED 0x43434d4bu /* "CCMK": keyed, of earlier builds */
#define RDMA_OPEN_MAGIC    0x43434d4fu /* "CCMO": the partner's queue pair is open */
#define REJECT_NOT_PARTNER 1      /* a reject's private data: magic, then this code */
#define REJECT_KEY         2      /* ... or this: not our key, or none */
#define REJECT_UNGATED     3      /* ... or this: a "CCMK" request */
#define REMOTE_RW          (IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE)
/* A message slot: the longest message and its tag. */
#define RDMA_MSG_SLOT      (CCM_MSG_MAX + SEAL_TAG_LEN)
/* The sealed status window behind a keyed CONN_REP: u64 addr, u32 rkey,
 * u32 len, then the tag. */
#define SEALED_WINDOW_LEN  (16 + SEAL_TAG_LEN)
#define GREETING_MS        5000   /* a connection that has not proved the key by then goes */
#define PRIV_MAX           196    /* the CM's longest private data (a REP) */
#define ACK_TIMEOUT        14
#define RETRY_COUNT        3
#define RNR_RETRY_FOREVER  7
#define RD_ATOMIC_WANTED   4
#define RESOLVE_TIMEOUT_MS 1000
/* A diagnosis for an event's detail: the provider's own words, where the
 * errno the session gets (EIO, ECONNRESET) cannot say what happened. */
#define WHY_MAX            sizeof(((struct tp_event *)0)->detail)

/* What a work request was for: the top byte of its wr_id. */
enum { WR_OP = 1, WR_SEND = 2, WR_RECV = 3, WR_OPEN = 4 };

static uint64_t wr_make(unsigned kind, uint32_t gen, unsigned index)
{
	return ((uint64_t)kind << 56) | ((uint64_t)gen << 16) | index;
}

struct rdma_region {
	bool used;
	void *base;
	size_t len;
	struct ibv_mr *mr;
};

/* One connection: a CM id with its queue pair, and for a passive one the
 * receive buffers the partner's messages land in. */
struct rdma_conn {
	struct rdma_cm_id *id;
	struct ibv_qp *qp;      /* ours: the CM's id has none */
	uint32_t gen;           /* passive: which CONNECT_REQUEST; 0 = unused;
	                           active: which connect */
	uint32_t peer_node;     /* passive: the node id its request gave */
	bool established;
	uint8_t *recv;
	struct ibv_mr *recv_mr;
	bool held[RDMA_RECV_SLOTS];  /* handed out; repost at the next progress */
	char why[WHY_MAX];      /* "" or what is known of why it is failing,
	                           for the detail of its going down */
	/* With a key: */
	bool proving;           /* passive: accepted, its CONN_PROOF not yet come */
	uint8_t want_proof[CCM_MAC_LEN];  /* passive: the proof due; active:
	                                     ours, until it is sent */
	uint64_t accepted_ms;   /* passive: when (clock_ms) */
	bool sealed;            /* messages carry a tag: ours out (active), the
	                           partner's in (passive) */
	struct seal seal;
};

struct rdma_pending {
	bool used;
	uint32_t gen;
	uint64_t wr_id;
};

/* ACT_OPENING: connected, with a key, waiting for the partner's OPEN. */
enum active_state { ACT_IDLE, ACT_RESOLVING, ACT_CONNECTING, ACT_OPENING, ACT_UP };

struct tp_rdma {
	struct tp base;
	struct tp_config cfg;
	int ep;
	struct rdma_event_channel *cm;
	struct rdma_cm_id *listen_id;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_comp_channel *cc;
	struct ibv_cq *cq;
	uint8_t rd_atomic, init_depth;
	struct rdma_region regions[RDMA_REGIONS_MAX];
	int status_key;
	enum active_state act_state;
	struct rdma_conn act;
	struct tp_event act_ready;  /* ACT_OPENING: the CONNECTED to hand out */
	struct rdma_conn pas[RDMA_PASSIVE_MAX];
	uint32_t greetings;     /* connection requests taken */
	uint32_t current;       /* the gen of the partner's current connection:
	                           its newest (admitted) one */
	uint32_t admit;         /* tp_admit: the one node let in, 0 any */
	bool qp_made;           /* a queue pair was created here once: our
	                           attributes are good, and a later EINVAL is
	                           the request's (stale_request) */
	uint8_t act_greeting[TCPWIRE_CONN_REQ_KEYED_LEN];  /* our keyed CONN_REQ */
	struct auth_key act_key;   /* the key it named */
	struct rdma_pending pend[RDMA_PENDING_MAX];
	uint32_t gen;
	uint8_t *send;
	struct ibv_mr *send_mr;
	uint32_t send_gen[RDMA_SEND_SLOTS];  /* 0 = free */
	struct tp_evq evq;
	struct reaper reaper;
};

static struct tp_rdma *to_rdma(struct tp *t)
{
	return (struct tp_rdma *)t;
}


static uint32_t next_gen(struct tp_rdma *t)
{
	if (++t->gen == 0)
		t->gen = 1;
	return t->gen;
}

static void why_set(char why[WHY_MAX], const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void why_set(char why[WHY_MAX], const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, WHY_MAX, fmt, ap);
	va_end(ap);
}

/* An error completion in the provider's words; vendor_err is what its
 * documentation (or its support) needs. */
static void why_wc(char why[WHY_MAX], const char *what, const struct ibv_wc *wc)
{
	why_set(why, "%s completion: %s (status %d, vendor error 0x%x)", what,
		ibv_wc_status_str(wc->status), (int)wc->status, wc->vendor_err);
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

/* --- private data ------------------------------------------------------------- */


/* The payload behind the magic, or NULL.  The CM pads private data to its
 * maximum, so it may be longer than what was sent, never shorter. */
static const uint8_t *priv_body(const void *data, uint8_t len, size_t want, uint32_t magic)
{
	const uint8_t *p = data;

	if (!p || len < 4 + want || be_get32(p) != magic)
		return NULL;
	return p + 4;
}

static bool have_key(const struct tp_rdma *t)
{
	return t->cfg.keys && t->cfg.keys->n > 0;
}

/* --- connections ---------------------------------------------------------------- */

static void conn_free_buffers(struct rdma_conn *c)
{
	if (c->recv_mr)
		ibv_dereg_mr(c->recv_mr);
	free(c->recv);
	sodium_memzero(c, sizeof(*c));
}

static void conn_destroy_now(struct rdma_conn *c)
{
	if (c->qp)
		ibv_destroy_qp(c->qp);
	if (c->id)
		rdma_destroy_id(c->id);
	conn_free_buffers(c);
}

/* Let a connection go without waiting for the kernel (rdma_reaper.h). */
static void conn_destroy(struct tp_rdma *t, struct rdma_conn *c)
{
	struct reaper_item it = { c->id, c->qp, c->recv, c->recv_mr };

	if (!c->id) {
		conn_destroy_now(c);
		return;
	}
	if (c->qp) {
		struct ibv_qp_attr a = { .qp_state = IBV_QPS_ERR };

		ibv_modify_qp(c->qp, &a, IBV_QP_STATE);
	}
	if (reaper_bury(&t->reaper, &it))
		sodium_memzero(c, sizeof(*c));
	else
		conn_destroy_now(c);  /* no reaper, or it is that far behind: wait */
}

static int post_recv(struct tp_rdma *t, struct rdma_conn *c, int slot)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(c->recv + (size_t)slot * RDMA_MSG_SLOT),
		.length = RDMA_MSG_SLOT,
		.lkey = c->recv_mr->lkey,
	};
	struct ibv_recv_wr wr = { .sg_list = &sge, .num_sge = 1 }, *bad;
	int idx = (int)(c - t->pas);

	wr.wr_id = wr_make(WR_RECV, c->gen, (unsigned)(idx << 8 | slot));
	return ibv_post_recv(c->qp, &wr, &bad) ? -errno : 0;
}

/* Our connection's one receive: where the partner's OPEN lands. */
static int post_open_recv(struct tp_rdma *t)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(t->send + (size_t)OPEN_RECV_SLOT * RDMA_MSG_SLOT),
		.length = RDMA_MSG_SLOT,
		.lkey = t->send_mr->lkey,
	};
	struct ibv_recv_wr wr = { .sg_list = &sge, .num_sge = 1 }, *bad;

	wr.wr_id = wr_make(WR_OPEN, t->act.gen, 0);
	return ibv_post_recv(t->act.qp, &wr, &bad) ? -errno : 0;
}

/* c's queue pair, in the reset state; why says which step failed. */
static int create_qp(struct tp_rdma *t, struct rdma_conn *c, bool passive, char why[WHY_MAX])
{
	struct rdma_cm_id *id = c->id;
	struct ibv_qp_init_attr qa = {
		.send_cq = t->cq,
		.recv_cq = t->cq,
		.qp_type = IBV_QPT_RC,
		.cap = {
			.max_send_wr = passive ? 1 : RDMA_PENDING_MAX + RDMA_SEND_SLOTS,
			.max_recv_wr = passive ? RDMA_RECV_SLOTS : 1,
			.max_send_sge = 1,
			.max_recv_sge = 1,
		},
	};
	uint8_t timeout = ACK_TIMEOUT;

	/* The partner must be reached through the device whose memory we
	 * registered; another route would need another registration. */
	if (id->verbs != t->ctx) {
		why_set(why, "the route to the partner leaves through another device than %s",
			ibv_get_device_name(t->ctx->device));
		return -EXDEV;
	}
	/* Deliberately unchecked: a provider that refuses it keeps its own
	 * ACK timeout, which only makes a dead partner slower to show on the
	 * QP -- the session's operation timeout bounds that anyway (see the
	 * top of this file); refusing the connection for it would be worse. */
	(void)rdma_set_option(id, RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT, &timeout,
			      sizeof(timeout));
	c->qp = ibv_create_qp(t->pd, &qa);
	if (!c->qp) {
		int err = -errno;

		why_set(why, "ibv_create_qp: %s", strerror(-err));
		return err;
	}
	return 0;
}

/* Ready c's queue pair (reset to RTS) with the CM's attributes for its
 * connection, but our access flags (top of this file).  -ESTALE: the CM
 * no longer knows the connection (its request was given up on). */
static int qp_ready(struct tp_rdma *t, struct rdma_conn *c, bool passive, unsigned access,
		    char why[WHY_MAX])
{
	static const enum ibv_qp_state steps[] = { IBV_QPS_INIT, IBV_QPS_RTR, IBV_QPS_RTS };
	static const char *const names[] = { "INIT", "RTR", "RTS" };

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct ibv_qp_attr a = { .qp_state = steps[i] };
		int mask = 0, err;

		if (rdma_init_qp_attr(c->id, &a, &mask)) {
			err = errno;
			why_set(why, "rdma_init_qp_attr (%s): %s", names[i], strerror(err));
			return err == EINVAL ? -ESTALE : -err;
		}
		if (steps[i] == IBV_QPS_INIT) {
			a.qp_access_flags = access;
			mask |= IBV_QP_ACCESS_FLAGS;
		} else if (steps[i] == IBV_QPS_RTR && passive) {
			/* As many READs in flight as we offered; and the CM's
			 * RNR NAK timer of code 0 is 655 ms: a burst that finds
			 * every receive slot taken would stall the partner's
			 * messages that long, where the slots come back within
			 * a turn. */
			if (a.max_dest_rd_atomic > t->rd_atomic)
				a.max_dest_rd_atomic = t->rd_atomic;
			a.min_rnr_timer = RNR_NAK_TIMER;
			mask |= IBV_QP_MIN_RNR_TIMER;
		} else if (steps[i] == IBV_QPS_RTS && a.max_rd_atomic > t->init_depth) {
			a.max_rd_atomic = t->init_depth;
		}
		err = ibv_modify_qp(c->qp, &a, mask);
		if (err) {
			why_set(why, "ibv_modify_qp (%s): %s", names[i], strerror(err));
			return -err;
		}
	}
	t->qp_made = true;
	return 0;
}

static struct rdma_conn_param conn_param(const struct tp_rdma *t, const struct rdma_conn *c,
					 const void *priv, uint8_t len)
{
	struct rdma_conn_param p = {
		.private_data = priv,
		.private_data_len = len,
		.qp_num = c->qp->qp_num,
		.responder_resources = t->rd_atomic,
		.initiator_depth = t->init_depth,
		.retry_count = RETRY_COUNT,
		/* The partner reposts receives as it goes: wait for them. */
		.rnr_retry_count = RNR_RETRY_FOREVER,
	};

	return p;
}

/* --- the active side --------------------------------------------------------------- */

static void fail_pending(struct tp_rdma *t, int status, const char *why)
{
	for (int i = 0; i < RDMA_PENDING_MAX; i++) {
		struct tp_event ev = { .type = TP_EV_OP_DONE, .status = status };

		if (!t->pend[i].used)
			continue;
		ev.wr_id = t->pend[i].wr_id;
		snprintf(ev.detail, sizeof(ev.detail), "%s", why);
		t->pend[i].used = false;
		tp_evq_push(&t->evq, &ev);
	}
}

/* Our connection is gone.  why (NULL: none) is the diagnosis for the
 * events' detail, with what the connection noted before (act.why). */
static void active_down(struct tp_rdma *t, int status, const char *why)
{
	enum active_state was = t->act_state;
	struct tp_event ev = { .status = status };

	if (why && *why && t->act.why[0])
		why_set(ev.detail, "%s; %s", why, t->act.why);  /* cut to fit */
	else
		why_set(ev.detail, "%s", why && *why ? why : t->act.why);
	if (t->act.id && (was == ACT_UP || was == ACT_OPENING))
		rdma_disconnect(t->act.id);
	conn_destroy(t, &t->act);
	t->act_state = ACT_IDLE;
	fail_pending(t, status ? status : -ECONNRESET, ev.detail);
	memset(t->send_gen, 0, sizeof(t->send_gen));
	if (was == ACT_UP) {
		ev.type = TP_EV_DISCONNECTED;
		tp_evq_push(&t->evq, &ev);
	} else if (was != ACT_IDLE) {
		ev.type = TP_EV_CONNECT_FAILED;
		ev.status = status ? status : -ECONNREFUSED;
		tp_evq_push(&t->evq, &ev);
	}
}

static int active_route_resolved(struct tp_rdma *t, char why[WHY_MAX])
{
	struct tcpwire_conn_req req = { .proto_min = CCM_PROTO_MIN, .proto_max = CCM_PROTO_MAX,
					.node_id = t->cfg.node_id };
	uint8_t priv[4 + TCPWIRE_CONN_REQ_KEYED_LEN];
	struct rdma_conn_param p;
	int r, n;

	t->act.gen = next_gen(t);
	r = create_qp(t, &t->act, false, why);
	if (r < 0)
		return r;
	if (have_key(t)) {
		/* We prove with the first key; the partner may hold it in
		 * either of its slots. */
		req.keyed = 1;
		t->act_key = t->cfg.keys->slot[0];
		auth_key_id_bytes(&t->act_key, req.key_id);
		if (auth_random(req.nonce, sizeof(req.nonce)) < 0) {
			why_set(why, "no random bytes for the nonce");
			return -EIO;
		}
	}
	be_put32(priv, req.keyed ? RDMA_PRIV_MAGIC_KEYED : RDMA_PRIV_MAGIC);
	n = tcpwire_encode_conn_req(&req, priv + 4);
	if (n < 0)
		return -EINVAL;
	memcpy(t->act_greeting, priv + 4, (size_t)n);
	p = conn_param(t, &t->act, priv, (uint8_t)(4 + n));
	if (rdma_connect(t->act.id, &p)) {
		r = -errno;
		why_set(why, "rdma_connect: %s", strerror(-r));
		return r;
	}
	t->act_state = ACT_CONNECTING;
	return 0;
}

static int post_send(struct tp_rdma *t, const void *msg, uint32_t len);

/* With a key: the partner's accept must prove the key over our request
 * and bring the status window sealed.  Our proof (act.want_proof) is the
 * first thing we send, once our queue pair is ready; every message after
 * it is sealed (act.seal). */
static int active_check_proof(struct tp_rdma *t, const uint8_t *body, struct tcpwire_conn_rep *rep,
			      char why[WHY_MAX])
{
	uint8_t transcript[TCPWIRE_CONN_REQ_KEYED_LEN + TCPWIRE_CONN_REP_MACED_LEN];
	uint8_t to_passive[AUTH_SESSION_KEY_LEN], to_active[AUTH_SESSION_KEY_LEN];
	uint8_t window[SEALED_WINDOW_LEN];
	struct seal w;
	int r = -EACCES;

	memcpy(transcript, t->act_greeting, TCPWIRE_CONN_REQ_KEYED_LEN);
	memcpy(transcript + TCPWIRE_CONN_REQ_KEYED_LEN, body, TCPWIRE_CONN_REP_MACED_LEN);
	if (auth_greeting_verify(&t->act_key, AUTH_PASSIVE, transcript, sizeof(transcript),
				 rep->mac) < 0) {
		why_set(why, "the node there did not prove our pre-shared key");
		return -EACCES;
	}
	auth_session_keys(&t->act_key, transcript, sizeof(transcript), to_passive, to_active);
	seal_init(&w, to_active);
	memcpy(window, body + TCPWIRE_CONN_REP_KEYED_LEN, sizeof(window));
	if (seal_open(&w, NULL, 0, window, 16, window + 16) < 0) {
		why_set(why, "the node there sent a status window that is not sealed with our key");
		goto out;
	}
	rep->status_addr = be_get64(window);
	rep->status_rkey = be_get32(window + 8);
	rep->status_len = be_get32(window + 12);
	auth_greeting_mac(&t->act_key, AUTH_ACTIVE, transcript, sizeof(transcript),
			  t->act.want_proof);
	seal_init(&t->act.seal, to_passive);
	r = 0;
out:
	seal_wipe(&w);
	sodium_memzero(to_passive, sizeof(to_passive));
	sodium_memzero(to_active, sizeof(to_active));
	return r;
}

/* The partner accepted (CONNECT_RESPONSE: our queue pair is ours to
 * ready): check its accept, ready the queue pair shut to READ and WRITE,
 * complete the connection, and with a key send our proof and wait for its
 * OPEN before anyone is told. */
static int active_established(struct tp_rdma *t, const void *priv, uint8_t len, char why[WHY_MAX])
{
	bool keyed = have_key(t);
	const uint8_t *body = keyed ?
		priv_body(priv, len, TCPWIRE_CONN_REP_KEYED_LEN + SEALED_WINDOW_LEN,
			  RDMA_PRIV_MAGIC_KEYED) :
		priv_body(priv, len, TCPWIRE_CONN_REP_LEN, RDMA_PRIV_MAGIC);
	struct tcpwire_conn_rep rep;
	struct tp_event ev = { .type = TP_EV_CONNECTED };
	int r;

	if (!body && keyed) {
		/* A partner answering without a key would be a downgrade. */
		why_set(why, "the node there answered without a pre-shared key");
		return -EACCES;
	}
	if (!body || tcpwire_decode_conn_rep(body, keyed ? TCPWIRE_CONN_REP_KEYED_LEN :
					     TCPWIRE_CONN_REP_LEN, &rep, NULL) < 0) {
		why_set(why, "the partner's accept has no valid CCMR private data");
		return -EPROTO;
	}
	if (keyed && (r = active_check_proof(t, body, &rep, why)) < 0)
		return r;
	if ((r = qp_ready(t, &t->act, false, 0, why)) < 0)
		return r;
	if (keyed && (r = post_open_recv(t)) < 0) {
		why_set(why, "ibv_post_recv: %s", strerror(-r));
		return r;
	}
	if (rdma_establish(t->act.id)) {
		r = -errno;
		why_set(why, "rdma_establish: %s", strerror(-r));
		return r;
	}
	ev.status_window.addr = rep.status_addr;
	ev.status_window.rkey = rep.status_rkey;
	ev.status_window.len = rep.status_len;
	ev.peer_node = rep.node_id;
	if (!keyed) {
		t->act_state = ACT_UP;
		tp_evq_push(&t->evq, &ev);
		return 0;
	}
	r = post_send(t, t->act.want_proof, CCM_MAC_LEN);
	sodium_memzero(t->act.want_proof, CCM_MAC_LEN);
	if (r < 0) {
		why_set(why, "cannot send our proof of the key: %s", strerror(-r));
		return r;
	}
	t->act.sealed = true;
	t->act_state = ACT_OPENING;
	t->act_ready = ev;
	return 0;
}

/* Our connection's receive completed: the partner's OPEN, or the flush
 * of a connection going down. */
static void active_open(struct tp_rdma *t, const struct ibv_wc *wc)
{
	const uint8_t *m = t->send + (size_t)OPEN_RECV_SLOT * RDMA_MSG_SLOT;
	char why[WHY_MAX];

	if (t->act_state != ACT_OPENING || (uint32_t)(wc->wr_id >> 16) != t->act.gen)
		return;
	if (wc->status != IBV_WC_SUCCESS) {
		why_wc(why, "receive", wc);
		active_down(t, -EIO, why);
	} else if (wc->byte_len != 4 || be_get32(m) != RDMA_OPEN_MAGIC) {
		why_set(why, "the partner's first message is not its OPEN");
		active_down(t, -EPROTO, why);
	} else {
		t->act_state = ACT_UP;
		tp_evq_push(&t->evq, &t->act_ready);
	}
}

/* --- the passive side ---------------------------------------------------------------- */

static struct rdma_conn *passive_by_id(struct tp_rdma *t, struct rdma_cm_id *id)
{
	for (int i = 0; i < RDMA_PASSIVE_MAX; i++)
		if (t->pas[i].id == id)
			return &t->pas[i];
	return NULL;
}

static void reject(struct tp_rdma *t, struct rdma_cm_id *id, const char *why)
{
	struct tp_event ev = { .type = TP_EV_REJECTED, .status = -EPROTO };

	snprintf(ev.detail, sizeof(ev.detail), "%s", why);
	tp_evq_push(&t->evq, &ev);
	rdma_reject(id, NULL, 0);
	rdma_destroy_id(id);
}

/* A connection request its sender had already given up on: the session
 * hears of it only as -ETIMEDOUT (for its debug log). */
static void stale_request(struct tp_rdma *t, struct rdma_cm_id *id)
{
	struct tp_event ev = { .type = TP_EV_REJECTED, .status = -ETIMEDOUT };

	snprintf(ev.detail, sizeof(ev.detail), "a connection request its sender had given up on");
	tp_evq_push(&t->evq, &ev);
	rdma_reject(id, NULL, 0);
	rdma_destroy_id(id);
}

/* A request from a node tp_admit keeps out, refused before it takes a
 * passive slot: the reject's private data tells it why (its connect fails
 * with -EPERM), and the session hears who it was. */
static void refuse_stranger(struct tp_rdma *t, struct rdma_cm_id *id, uint32_t node)
{
	struct tp_event ev = { .type = TP_EV_REJECTED, .status = -EPERM, .peer_node = node };
	uint8_t priv[5];

	be_put32(priv, RDMA_PRIV_MAGIC);
	priv[4] = REJECT_NOT_PARTNER;
	snprintf(ev.detail, sizeof(ev.detail), "node %u is not our partner (node %u)", node,
		 t->admit);
	tp_evq_push(&t->evq, &ev);
	rdma_reject(id, priv, sizeof(priv));
	rdma_destroy_id(id);
}

/* A request whose key is not ours (or that has none, or brings one we do
 * not have): the reject says so (code REJECT_KEY: its connect fails with
 * -EACCES), the session hears why.  Also for a keyed request of the
 * ungated greeting (REJECT_UNGATED). */
static void refuse_key(struct tp_rdma *t, struct rdma_cm_id *id, uint32_t node, uint8_t code,
		       const char *why)
{
	struct tp_event ev = { .type = TP_EV_REJECTED, .status = -EACCES, .peer_node = node,
			       .from_partner_addr = tp_same_host(rdma_get_peer_addr(id),
								 &t->cfg.partner) };
	uint8_t priv[5];

	be_put32(priv, RDMA_PRIV_MAGIC);
	priv[4] = code;
	snprintf(ev.detail, sizeof(ev.detail), "node %u %s", node, why);
	tp_evq_push(&t->evq, &ev);
	rdma_reject(id, priv, sizeof(priv));
	rdma_destroy_id(id);
}

static void page_round(size_t *n)
{
	*n = (*n + 4095) / 4096 * 4096;
}

/* Our accept's private data for a keyed request (req_body as it came):
 * the keyed CONN_REP with our proof, then the status window sealed to the
 * active side; c learns the proof due and the key its messages come
 * sealed with.  The length, or -errno. */
static int keyed_accept(struct rdma_conn *c, const struct auth_key *key,
			const uint8_t *req_body, struct tcpwire_conn_rep *rep,
			uint8_t priv[4 + TCPWIRE_CONN_REP_KEYED_LEN + SEALED_WINDOW_LEN])
{
	uint8_t transcript[TCPWIRE_CONN_REQ_KEYED_LEN + TCPWIRE_CONN_REP_KEYED_LEN];
	uint8_t to_passive[AUTH_SESSION_KEY_LEN], to_active[AUTH_SESSION_KEY_LEN];
	uint8_t *window = priv + 4 + TCPWIRE_CONN_REP_KEYED_LEN;
	size_t tlen = TCPWIRE_CONN_REQ_KEYED_LEN;
	struct seal w;
	int n;

	/* Address and rkey go sealed behind the reply, not in it. */
	be_put(window, rep->status_addr, 8);
	be_put(window + 8, rep->status_rkey, 4);
	be_put(window + 12, rep->status_len, 4);
	rep->status_addr = rep->status_rkey = 0;
	rep->keyed = 1;
	if (auth_random(rep->nonce, sizeof(rep->nonce)) < 0)
		return -EIO;
	memcpy(transcript, req_body, tlen);
	n = tcpwire_encode_conn_rep(rep, transcript + tlen);
	if (n < 0)
		return n;
	tlen += TCPWIRE_CONN_REP_MACED_LEN;
	auth_greeting_mac(key, AUTH_PASSIVE, transcript, tlen, transcript + tlen);
	auth_greeting_mac(key, AUTH_ACTIVE, transcript, tlen, c->want_proof);
	auth_session_keys(key, transcript, tlen, to_passive, to_active);
	seal_init(&w, to_active);
	seal_close(&w, NULL, 0, window, 16, window + 16);
	seal_wipe(&w);
	seal_init(&c->seal, to_passive);
	sodium_memzero(to_passive, sizeof(to_passive));
	sodium_memzero(to_active, sizeof(to_active));
	be_put32(priv, RDMA_PRIV_MAGIC_KEYED);
	memcpy(priv + 4, transcript + TCPWIRE_CONN_REQ_KEYED_LEN, TCPWIRE_CONN_REP_KEYED_LEN);
	c->proving = true;
	c->accepted_ms = clock_ms();
	return 4 + TCPWIRE_CONN_REP_KEYED_LEN + SEALED_WINDOW_LEN;
}

/* The event is acknowledged already; id is the new connection's, priv
 * its private data. */
static void passive_request(struct tp_rdma *t, struct rdma_cm_id *id, const uint8_t *priv,
			    uint8_t priv_len)
{
	const uint8_t *plain = priv_body(priv, priv_len, TCPWIRE_CONN_REQ_LEN, RDMA_PRIV_MAGIC);
	const uint8_t *keyed = priv_body(priv, priv_len, TCPWIRE_CONN_REQ_KEYED_LEN,
					 RDMA_PRIV_MAGIC_KEYED);
	const uint8_t *ungated = priv_body(priv, priv_len, TCPWIRE_CONN_REQ_KEYED_LEN,
					   RDMA_PRIV_MAGIC_UNGATED);
	struct tcpwire_conn_req req;
	struct tcpwire_conn_rep rep = { .proto = CCM_PROTO_MAX, .node_id = t->cfg.node_id };
	uint8_t out[4 + TCPWIRE_CONN_REP_KEYED_LEN + SEALED_WINDOW_LEN];
	const struct auth_key *key = NULL;
	struct rdma_conn_param p;
	struct rdma_conn *c = NULL;
	char why[WHY_MAX] = "";
	size_t bufsize = (size_t)RDMA_RECV_SLOTS * RDMA_MSG_SLOT;
	int i, oldest = -1, r, n;

	if (ungated && tcpwire_decode_conn_req(ungated, TCPWIRE_CONN_REQ_KEYED_LEN, &req, NULL) == 0) {
		refuse_key(t, id, req.node_id, REJECT_UNGATED,
			   "speaks the keyed greeting of an earlier ccm-early, whose queue "
			   "pairs are not gated: upgrade it");
		return;
	}
	if ((!plain && !keyed) ||
	    tcpwire_decode_conn_req(keyed ? keyed : plain, keyed ? TCPWIRE_CONN_REQ_KEYED_LEN :
				    TCPWIRE_CONN_REQ_LEN, &req, NULL) < 0) {
		reject(t, id, "connection request without a valid CCMR private data");
		return;
	}
	if (t->admit && req.node_id != t->admit) {
		refuse_stranger(t, id, req.node_id);
		return;
	}
	if (have_key(t) && !keyed) {
		refuse_key(t, id, req.node_id, REJECT_KEY, "has no pre-shared key; ours is required");
		return;
	}
	if (!have_key(t) && keyed) {
		refuse_key(t, id, req.node_id, REJECT_KEY,
			   "has a pre-shared key; none is configured here");
		return;
	}
	if (keyed && !(key = auth_keyring_find(t->cfg.keys, req.key_id))) {
		char kid[AUTH_KEY_ID_LEN + 1];

		hex_encode(kid, req.key_id, sizeof(req.key_id));
		snprintf(why, sizeof(why), "proves with key %s, which we do not hold", kid);
		refuse_key(t, id, req.node_id, REJECT_KEY, why);
		return;
	}
	if (t->status_key < 0) {
		reject(t, id, "connection request before the status window exists");
		return;
	}
	for (i = 0; i < RDMA_PASSIVE_MAX && !c; i++)
		if (!t->pas[i].id)
			c = &t->pas[i];
	if (!c) {
		/* A partner that restarted leaves its old connection behind
		 * until the QP notices: make room by dropping the oldest, but
		 * never the partner's current one (the slots are full and only
		 * one is current, so another is there to go). */
		for (i = 0; i < RDMA_PASSIVE_MAX; i++)
			if (t->pas[i].gen != t->current &&
			    (oldest < 0 || t->pas[i].gen < t->pas[oldest].gen))
				oldest = i;
		c = &t->pas[oldest];
		conn_destroy(t, c);
	}
	c->id = id;
	c->gen = ++t->greetings;
	/* With a key, only its proof makes it the partner's. */
	if (!key)
		t->current = c->gen;
	c->peer_node = req.node_id;
	page_round(&bufsize);
	c->recv = aligned_alloc(4096, bufsize);
	if (!c->recv) {
		why_set(why, "no memory for receive buffers");
		goto fail;
	}
	c->recv_mr = ibv_reg_mr(t->pd, c->recv, bufsize, IBV_ACCESS_LOCAL_WRITE);
	if (!c->recv_mr) {
		why_set(why, "ibv_reg_mr: %s", strerror(errno));
		goto fail;
	}
	r = create_qp(t, c, true, why);
	/* Shut to READ and WRITE until its proof, with a key (top of file). */
	if (r == 0)
		r = qp_ready(t, c, true, key ? 0 : REMOTE_RW, why);
	if (r == -ESTALE && t->qp_made) {
		/* The CM no longer holds the request: its sender gave up on it
		 * while it waited in our queue (this node was not running --
		 * a stalled VM lets a dozen pile up).  Nothing to refuse, nor
		 * to worry anyone with; its sender has long tried again. */
		c->id = NULL;
		conn_destroy(t, c);
		stale_request(t, id);
		return;
	}
	if (r < 0)
		goto fail;
	for (i = 0; i < RDMA_RECV_SLOTS; i++) {
		r = post_recv(t, c, i);
		if (r < 0) {
			why_set(why, "ibv_post_recv: %s", strerror(-r));
			goto fail;
		}
	}
	rep.status_addr = (uintptr_t)t->regions[t->status_key].base;
	rep.status_rkey = t->regions[t->status_key].mr->rkey;
	rep.status_len = (uint32_t)t->regions[t->status_key].len;
	if (key) {
		n = keyed_accept(c, key, keyed, &rep, out);
	} else {
		be_put32(out, RDMA_PRIV_MAGIC);
		n = tcpwire_encode_conn_rep(&rep, out + 4);
		n = n < 0 ? n : 4 + n;
	}
	if (n < 0) {
		why_set(why, "cannot make our accept: %s", strerror(-n));
		goto fail;
	}
	p = conn_param(t, c, out, (uint8_t)n);
	if (rdma_accept(id, &p)) {
		why_set(why, "rdma_accept: %s", strerror(errno));
		goto fail;
	}
	return;
fail:
	c->id = NULL;
	conn_destroy(t, c);
	reject(t, id, why);
}

static void passive_closed(struct tp_rdma *t, struct rdma_conn *c)
{
	struct tp_event ev = { .type = TP_EV_PEER_CLOSED };
	bool current = c->established && c->gen == t->current;

	snprintf(ev.detail, sizeof(ev.detail), "%s", c->why);
	conn_destroy(t, c);
	if (current)
		tp_evq_push(&t->evq, &ev);
}

/* --- events ----------------------------------------------------------------------- */

static void cm_event(struct tp_rdma *t, struct rdma_cm_event *e)
{
	enum rdma_cm_event_type type = e->event;
	struct rdma_cm_id *id = e->id;
	uint8_t priv[PRIV_MAX];
	uint8_t priv_len = e->param.conn.private_data_len;
	int status = e->status;
	char why[WHY_MAX] = "";
	struct rdma_conn *c;

	/* Copy what is needed, then acknowledge before acting: destroying
	 * an id with an unacknowledged event would wait forever. */
	if (priv_len > sizeof(priv))
		priv_len = sizeof(priv);
	if (e->param.conn.private_data && priv_len)
		memcpy(priv, e->param.conn.private_data, priv_len);
	else
		priv_len = 0;
	rdma_ack_cm_event(e);

	if (type == RDMA_CM_EVENT_CONNECT_REQUEST) {
		passive_request(t, id, priv, priv_len);
		return;
	}
	if (type == RDMA_CM_EVENT_DEVICE_REMOVAL) {
		why_set(why, "%s: the RDMA device went away", rdma_event_str(type));
		active_down(t, -ENODEV, why);
		for (int i = 0; i < RDMA_PASSIVE_MAX; i++)
			if (t->pas[i].id) {
				memcpy(t->pas[i].why, why, sizeof(why));
				passive_closed(t, &t->pas[i]);
			}
		return;
	}
	if (id == t->act.id) {
		int r = 0;

		switch (type) {
		case RDMA_CM_EVENT_ADDR_RESOLVED:
			if (rdma_resolve_route(id, RESOLVE_TIMEOUT_MS)) {
				r = -errno;
				why_set(why, "rdma_resolve_route: %s", strerror(-r));
			}
			break;
		case RDMA_CM_EVENT_ROUTE_RESOLVED:
			r = active_route_resolved(t, why);
			break;
		case RDMA_CM_EVENT_CONNECT_RESPONSE:
			r = active_established(t, priv, priv_len, why);
			break;
		case RDMA_CM_EVENT_REJECTED:
			/* status: the CM's reject reason (28: the partner's
			 * manager refused; its log says why). */
			if (priv_len >= 5 && be_get32(priv) == RDMA_PRIV_MAGIC &&
			    priv[4] == REJECT_NOT_PARTNER) {
				r = -EPERM;
				why_set(why, "refused: the node there has another partner");
				break;
			}
			if (priv_len >= 5 && be_get32(priv) == RDMA_PRIV_MAGIC &&
			    priv[4] == REJECT_KEY) {
				r = -EACCES;
				why_set(why, have_key(t) ?
					"the node there holds another pre-shared key, or none" :
					"the node there requires a pre-shared key; none is "
					"configured here");
				break;
			}
			if (priv_len >= 5 && be_get32(priv) == RDMA_PRIV_MAGIC &&
			    priv[4] == REJECT_UNGATED) {
				r = -EPROTO;
				why_set(why, "refused: we speak a keyed greeting the node there "
					"no longer takes; upgrade this node");
				break;
			}
			r = -ECONNREFUSED;
			why_set(why, "%s (reason %d; a node with a key that runs an earlier "
				"ccm-early refuses ours this way)", rdma_event_str(type), status);
			break;
		case RDMA_CM_EVENT_ADDR_ERROR:
		case RDMA_CM_EVENT_ROUTE_ERROR:
		case RDMA_CM_EVENT_UNREACHABLE:
		case RDMA_CM_EVENT_CONNECT_ERROR:
			r = status < 0 ? status : -EHOSTUNREACH;
			why_set(why, "%s (status %d)", rdma_event_str(type), status);
			break;
		case RDMA_CM_EVENT_DISCONNECTED:
			r = -ECONNRESET;
			why_set(why, "%s", rdma_event_str(type));
			break;
		default:
			/* Nothing to do about it now; named when the
			 * connection goes down, should that follow. */
			why_set(t->act.why, "after an unexpected %s (status %d)",
				rdma_event_str(type), status);
			break;
		}
		if (r < 0)
			active_down(t, r, why);
		return;
	}
	c = passive_by_id(t, id);
	if (!c)
		return;  /* an id we already let go of */
	switch (type) {
	case RDMA_CM_EVENT_ESTABLISHED: {
		struct tp_event ev = { .type = TP_EV_PEER_CONNECTED, .peer_node = c->peer_node };

		c->established = true;
		/* With a key, its proof makes it the partner's (and may come
		 * first: then this is the moment). */
		if (!c->proving)
			tp_evq_push(&t->evq, &ev);
		break;
	}
	case RDMA_CM_EVENT_DISCONNECTED:
	case RDMA_CM_EVENT_CONNECT_ERROR:
	case RDMA_CM_EVENT_UNREACHABLE:
		/* What was noted first (an error completion) says more. */
		if (!c->why[0])
			why_set(c->why, "%s (status %d)", rdma_event_str(type), status);
		passive_closed(t, c);
		break;
	default:
		if (!c->why[0])
			why_set(c->why, "after an unexpected %s (status %d)",
				rdma_event_str(type), status);
		break;
	}
}

/* A keyed connection's first message: its proof of the key.  Right, and
 * the connection is the partner's newest, its messages sealed from here;
 * wrong, and it goes. */
static void passive_proof(struct tp_rdma *t, struct rdma_conn *c, const uint8_t *msg,
			  uint32_t len)
{
	if (len != CCM_MAC_LEN || sodium_memcmp(msg, c->want_proof, CCM_MAC_LEN) != 0) {
		struct tp_event ev = { .type = TP_EV_REJECTED, .status = -EACCES,
				       .peer_node = c->peer_node };

		why_set(ev.detail, "node %u did not prove the key it named", c->peer_node);
		tp_evq_push(&t->evq, &ev);
		conn_destroy(t, c);
		return;
	}
	/* Now, and not sooner, its queue pair serves READ and WRITE; the
	 * OPEN tells the partner it may begin (its messages are held in
	 * order behind it, so nothing it does can come first). */
	struct ibv_qp_attr a = { .qp_access_flags = REMOTE_RW };
	struct ibv_sge sge = {
		.addr = (uintptr_t)(t->send + (size_t)OPEN_SEND_SLOT * RDMA_MSG_SLOT),
		.length = 4,
		.lkey = t->send_mr->lkey,
	};
	struct ibv_send_wr wr = { .sg_list = &sge, .num_sge = 1, .opcode = IBV_WR_SEND,
				  .send_flags = IBV_SEND_SIGNALED }, *bad;
	int err = ibv_modify_qp(c->qp, &a, IBV_QP_ACCESS_FLAGS);

	wr.wr_id = wr_make(WR_OPEN, c->gen, 1);
	if (err || ibv_post_send(c->qp, &wr, &bad)) {
		struct tp_event ev = { .type = TP_EV_REJECTED, .status = -EIO,
				       .peer_node = c->peer_node };

		why_set(ev.detail, err ? "cannot open the queue pair of node %u to its READ and "
			"WRITE: %s" : "cannot send node %u its OPEN: %s", c->peer_node,
			strerror(err ? err : errno));
		tp_evq_push(&t->evq, &ev);
		conn_destroy(t, c);
		return;
	}
	c->proving = false;
	c->sealed = true;
	t->current = c->gen;
	if (c->established) {
		struct tp_event ev = { .type = TP_EV_PEER_CONNECTED, .peer_node = c->peer_node };

		tp_evq_push(&t->evq, &ev);
	}
}

/* Keyed connections that have not proved the key within GREETING_MS go,
 * without a word: they would otherwise hold a passive slot for good. */
static void drop_unproven(struct tp_rdma *t)
{
	uint64_t now = 0;

	for (int i = 0; i < RDMA_PASSIVE_MAX; i++) {
		struct rdma_conn *c = &t->pas[i];

		if (!c->id || !c->proving)
			continue;
		if (!now)
			now = clock_ms();
		if (now - c->accepted_ms > GREETING_MS)
			conn_destroy(t, c);
	}
}

static void cq_entry(struct tp_rdma *t, const struct ibv_wc *wc)
{
	unsigned kind = (unsigned)(wc->wr_id >> 56);
	uint32_t gen = (uint32_t)(wc->wr_id >> 16);
	unsigned index = (unsigned)(wc->wr_id & 0xffff);

	if (kind == WR_OP) {
		struct rdma_pending *p = index < RDMA_PENDING_MAX ? &t->pend[index] : NULL;
		struct tp_event ev = { .type = TP_EV_OP_DONE };

		if (!p || !p->used || p->gen != gen)
			return;  /* failed already, when its connection went down */
		p->used = false;
		ev.wr_id = p->wr_id;
		ev.status = wc->status == IBV_WC_SUCCESS ? 0 : -EIO;
		if (ev.status)
			why_wc(ev.detail, "READ/WRITE", wc);
		tp_evq_push(&t->evq, &ev);
		/* An error completion leaves the QP in the error state. */
		if (ev.status)
			active_down(t, -EIO, ev.detail);
	} else if (kind == WR_SEND) {
		char why[WHY_MAX];

		if (index >= RDMA_SEND_SLOTS || t->send_gen[index] != gen)
			return;  /* from a connection torn down since */
		t->send_gen[index] = 0;
		if (wc->status != IBV_WC_SUCCESS) {
			why_wc(why, "SEND", wc);
			active_down(t, -EIO, why);
		}
	} else if (kind == WR_OPEN) {
		/* Index 0: our connection's receive.  1: a passive side's OPEN
		 * went out -- nothing to do; an error there shows as its
		 * connection going down. */
		if (index == 0)
			active_open(t, wc);
	} else if (kind == WR_RECV) {
		unsigned ci = index >> 8, slot = index & 0xff;
		struct rdma_conn *c = ci < RDMA_PASSIVE_MAX ? &t->pas[ci] : NULL;
		struct tp_event ev = { .type = TP_EV_MESSAGE };

		if (!c || !c->id || c->gen != gen || slot >= RDMA_RECV_SLOTS)
			return;  /* from a connection let go since */
		if (wc->status != IBV_WC_SUCCESS) {
			/* Flushed as the connection goes down; any other
			 * error is why it goes, for its PEER_CLOSED. */
			if (wc->status != IBV_WC_WR_FLUSH_ERR && !c->why[0])
				why_wc(c->why, "receive", wc);
			return;
		}
		ev.msg = c->recv + (size_t)slot * RDMA_MSG_SLOT;
		ev.msg_len = wc->byte_len;
		if (c->proving) {
			passive_proof(t, c, ev.msg, ev.msg_len);
			if (c->id)
				post_recv(t, c, (int)slot);
			return;
		}
		if (c->gen != t->current) {
			/* Only the partner's current connection speaks for
			 * it; the buffer goes straight back. */
			post_recv(t, c, (int)slot);
			return;
		}
		if (c->sealed) {
			if (ev.msg_len <= SEAL_TAG_LEN ||
			    seal_open(&c->seal, NULL, 0, (uint8_t *)ev.msg, ev.msg_len - SEAL_TAG_LEN,
				      ev.msg + ev.msg_len - SEAL_TAG_LEN) < 0) {
				struct tp_event rej = { .type = TP_EV_REJECTED, .status = -EBADMSG };

				why_set(rej.detail, "a message from node %u failed authentication "
					"(forged, replayed or damaged)", c->peer_node);
				tp_evq_push(&t->evq, &rej);
				memcpy(c->why, rej.detail, sizeof(c->why));
				passive_closed(t, c);
				return;
			}
			ev.msg_len -= SEAL_TAG_LEN;
		}
		tp_evq_push(&t->evq, &ev);
	}
}

/* Poll the completion queue: in user space for rxe and mlx5, no system
 * call, so a caller that spins on tp_progress costs what perftest does. */
static int poll_cq(struct tp_rdma *t)
{
	struct ibv_wc wc[16];
	int n, total = 0;

	while ((n = ibv_poll_cq(t->cq, 16, wc)) > 0) {
		for (int i = 0; i < n; i++)
			cq_entry(t, &wc[i]);
		total += n;
	}
	return total;
}

/* The completion channel fired: take its events, re-arm, and poll again
 * for what landed in between. */
static void cq_notified(struct tp_rdma *t)
{
	struct ibv_cq *cq;
	void *ctx;

	while (ibv_get_cq_event(t->cc, &cq, &ctx) == 0)
		ibv_ack_cq_events(cq, 1);
	ibv_req_notify_cq(t->cq, 0);
	poll_cq(t);
}

/* --- the interface ---------------------------------------------------------------- */

static int rdma_expose(struct tp *tp, void *base, size_t len, unsigned flags, struct tp_remote *out)
{
	struct tp_rdma *t = to_rdma(tp);
	int access = IBV_ACCESS_LOCAL_WRITE;

	if (!base || !len || len > UINT32_MAX)
		return -EINVAL;
	if ((flags & TP_EXPOSE_STATUS) && t->status_key >= 0)
		return -EEXIST;
	if (!(flags & TP_EXPOSE_LOCAL))
		access |= IBV_ACCESS_REMOTE_READ | ((flags & TP_EXPOSE_WRITE) ? IBV_ACCESS_REMOTE_WRITE : 0);
	for (int i = 0; i < RDMA_REGIONS_MAX; i++) {
		struct rdma_region *r = &t->regions[i];

		if (r->used)
			continue;
		r->mr = ibv_reg_mr(t->pd, base, len, access);
		if (!r->mr)
			return -errno;
		r->used = true;
		r->base = base;
		r->len = len;
		if (flags & TP_EXPOSE_STATUS)
			t->status_key = i;
		out->addr = (uintptr_t)base;
		out->rkey = r->mr->rkey;
		out->len = (uint32_t)len;
		return 0;
	}
	return -ENOSPC;
}

static int rdma_unexpose(struct tp *tp, const struct tp_remote *h)
{
	struct tp_rdma *t = to_rdma(tp);

	for (int i = 0; i < RDMA_REGIONS_MAX; i++) {
		struct rdma_region *r = &t->regions[i];

		if (!r->used || r->mr->rkey != h->rkey || (uintptr_t)r->base != h->addr)
			continue;
		ibv_dereg_mr(r->mr);
		memset(r, 0, sizeof(*r));
		if (i == t->status_key)
			t->status_key = -1;
		return 0;
	}
	return -ENOENT;
}

static int rdma_tp_listen(struct tp *tp, struct errbuf *e)
{
	struct tp_rdma *t = to_rdma(tp);

	if (rdma_listen(t->listen_id, 8))
		return errbuf_set(e, -errno, "cannot listen on %s:%u: %s", t->cfg.local.host,
				  t->cfg.local.port, strerror(errno));
	return 0;
}

static int rdma_tp_connect(struct tp *tp)
{
	struct tp_rdma *t = to_rdma(tp);
	struct sockaddr_storage src, dst;

	if (t->act_state != ACT_IDLE)
		return -EALREADY;
	if (tp_to_sockaddr(&t->cfg.local, 0, &src) < 0 ||
	    tp_to_sockaddr(&t->cfg.partner, t->cfg.partner.port, &dst) < 0)
		return -EINVAL;
	if (rdma_create_id(t->cm, &t->act.id, t, RDMA_PS_TCP))
		return -errno;
	t->act_state = ACT_RESOLVING;
	/* From our own address, so the connection takes this interconnect. */
	if (rdma_resolve_addr(t->act.id, (struct sockaddr *)&src, (struct sockaddr *)&dst,
			      RESOLVE_TIMEOUT_MS)) {
		int err = -errno;
		char why[WHY_MAX];

		why_set(why, "rdma_resolve_addr: %s", strerror(-err));
		active_down(t, err, why);
	}
	return 0;
}

static void rdma_tp_disconnect(struct tp *tp)
{
	active_down(to_rdma(tp), -ECONNABORTED, NULL);
}

static struct ibv_mr *local_mr(struct tp_rdma *t, const void *p, uint32_t len)
{
	for (int i = 0; i < RDMA_REGIONS_MAX; i++) {
		const struct rdma_region *r = &t->regions[i];

		if (r->used && (const uint8_t *)p >= (const uint8_t *)r->base &&
		    (size_t)((const uint8_t *)p - (const uint8_t *)r->base) + len <= r->len)
			return r->mr;
	}
	return NULL;
}

static int post_rw(struct tp_rdma *t, const struct tp_remote *w, uint64_t off, void *buf,
		   uint32_t len, uint64_t wr_id, bool is_read)
{
	struct ibv_send_wr wr = { 0 }, *bad;
	struct ibv_sge sge;
	struct rdma_pending *p = NULL;
	struct ibv_mr *mr;
	int i;

	if (t->act_state != ACT_UP)
		return -ENOTCONN;
	if (!len || len > CCM_OP_MAX || off > w->len || len > w->len - off)
		return -EINVAL;
	mr = local_mr(t, buf, len);
	if (!mr)
		return -EFAULT;  /* tp.h: local buffers live in exposed regions */
	for (i = 0; i < RDMA_PENDING_MAX && !p; i++)
		if (!t->pend[i].used)
			p = &t->pend[i];
	if (!p)
		return -EBUSY;
	sge = (struct ibv_sge){ .addr = (uintptr_t)buf, .length = len, .lkey = mr->lkey };
	*p = (struct rdma_pending){ true, next_gen(t), wr_id };
	wr.wr_id = wr_make(WR_OP, p->gen, (unsigned)(p - t->pend));
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = is_read ? IBV_WR_RDMA_READ : IBV_WR_RDMA_WRITE;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.wr.rdma.remote_addr = w->addr + off;
	wr.wr.rdma.rkey = w->rkey;
	if (ibv_post_send(t->act.qp, &wr, &bad)) {
		p->used = false;
		return -errno;
	}
	return 0;
}

static int rdma_tp_read(struct tp *tp, const struct tp_remote *w, uint64_t off, void *dst,
			uint32_t len, uint64_t wr_id)
{
	return post_rw(to_rdma(tp), w, off, dst, len, wr_id, true);
}

static int rdma_tp_write(struct tp *tp, const struct tp_remote *w, uint64_t off, const void *src,
			 uint32_t len, uint64_t wr_id)
{
	return post_rw(to_rdma(tp), w, off, (void *)src, len, wr_id, false);
}

/* One message out on our connection, sealed once the greeting made it so. */
static int post_send(struct tp_rdma *t, const void *msg, uint32_t len)
{
	struct ibv_send_wr wr = { 0 }, *bad;
	struct ibv_sge sge;
	uint8_t *buf;
	int slot;

	for (slot = 0; slot < RDMA_SEND_SLOTS && t->send_gen[slot]; slot++)
		;
	if (slot == RDMA_SEND_SLOTS)
		return -EBUSY;
	buf = t->send + (size_t)slot * RDMA_MSG_SLOT;
	memcpy(buf, msg, len);
	if (t->act.sealed) {
		if (seal_close(&t->act.seal, NULL, 0, buf, len, buf + len) < 0)
			return -EOVERFLOW;
		len += SEAL_TAG_LEN;
	}
	sge = (struct ibv_sge){ .addr = (uintptr_t)buf, .length = len, .lkey = t->send_mr->lkey };
	t->send_gen[slot] = next_gen(t);
	wr.wr_id = wr_make(WR_SEND, t->send_gen[slot], (unsigned)slot);
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_SEND;
	wr.send_flags = IBV_SEND_SIGNALED;
	if (ibv_post_send(t->act.qp, &wr, &bad)) {
		/* A sealed message not sent leaves the counts apart: the
		 * connection is of no more use (the caller sees why). */
		t->send_gen[slot] = 0;
		return -errno;
	}
	return 0;
}

static int rdma_tp_send(struct tp *tp, const void *msg, uint32_t len)
{
	struct tp_rdma *t = to_rdma(tp);

	if (t->act_state != ACT_UP)
		return -ENOTCONN;
	if (!len || len > CCM_MSG_MAX)
		return -EMSGSIZE;
	return post_send(t, msg, len);
}

static void rdma_tp_admit(struct tp *tp, uint32_t node)
{
	struct tp_rdma *t = to_rdma(tp);

	t->admit = node;
	if (!node)
		return;
	/* The newest connection of the node let in is the current one; the
	 * others' go, unannounced. */
	t->current = 0;
	for (int i = 0; i < RDMA_PASSIVE_MAX; i++)
		if (t->pas[i].id && t->pas[i].peer_node == node && t->pas[i].gen > t->current)
			t->current = t->pas[i].gen;
	for (int i = 0; i < RDMA_PASSIVE_MAX; i++)
		if (t->pas[i].id && t->pas[i].peer_node != node)
			conn_destroy(t, &t->pas[i]);
}

static int rdma_tp_fd(struct tp *tp)
{
	return to_rdma(tp)->ep;
}

/* The messages among the events handed out: their receive slots go back
 * to the partner at the next progress, once the caller is done with them.
 * Not sooner: a message still waiting in the event queue lives in its
 * slot, and a slot posted again is the NIC's to overwrite. */
static void held_out(struct tp_rdma *t, const struct tp_event *ev, int n)
{
	for (int i = 0; i < n; i++) {
		uintptr_t m = (uintptr_t)ev[i].msg;

		if (ev[i].type != TP_EV_MESSAGE)
			continue;
		for (int k = 0; k < RDMA_PASSIVE_MAX; k++) {
			struct rdma_conn *c = &t->pas[k];
			uintptr_t base = (uintptr_t)c->recv;

			if (c->recv && m >= base && m - base < (size_t)RDMA_RECV_SLOTS * RDMA_MSG_SLOT) {
				c->held[(m - base) / RDMA_MSG_SLOT] = true;
				break;
			}
		}
	}
}

static int rdma_tp_progress(struct tp *tp, struct tp_event *out, int max)
{
	struct tp_rdma *t = to_rdma(tp);
	struct rdma_cm_event *e;
	int n;

	reaper_collect(&t->reaper);
	drop_unproven(t);
	/* Messages handed out last time have been consumed: their buffers
	 * go back to the partner's connection. */
	for (int i = 0; i < RDMA_PASSIVE_MAX; i++)
		for (int s = 0; s < RDMA_RECV_SLOTS; s++)
			if (t->pas[i].held[s]) {
				t->pas[i].held[s] = false;
				if (t->pas[i].id)
					post_recv(t, &t->pas[i], s);
			}
	/* Completions first: what the partner answered before it went is
	 * reported before its going is.  Only when there are none does the
	 * slow path look at the channels, with one non-blocking system call. */
	if (t->evq.len == 0 && poll_cq(t) == 0) {
		struct epoll_event evs[2];
		int nfd = epoll_wait(t->ep, evs, 2, 0);

		for (int i = 0; i < nfd; i++) {
			if (evs[i].data.fd == t->cc->fd)
				cq_notified(t);
			else
				while (rdma_get_cm_event(t->cm, &e) == 0)
					cm_event(t, e);
		}
	}
	n = tp_evq_take(&t->evq, out, max);
	held_out(t, out, n);
	return n;
}

static void rdma_tp_destroy(struct tp *tp)
{
	struct tp_rdma *t = to_rdma(tp);

	/* Everything goes now, in order: the queue pairs before their CQ. */
	reaper_stop(&t->reaper);
	conn_destroy_now(&t->act);
	for (int i = 0; i < RDMA_PASSIVE_MAX; i++)
		conn_destroy_now(&t->pas[i]);
	for (int i = 0; i < RDMA_REGIONS_MAX; i++)
		if (t->regions[i].used)
			ibv_dereg_mr(t->regions[i].mr);
	if (t->send_mr)
		ibv_dereg_mr(t->send_mr);
	free(t->send);
	if (t->cq)
		ibv_destroy_cq(t->cq);
	if (t->cc)
		ibv_destroy_comp_channel(t->cc);
	if (t->pd)
		ibv_dealloc_pd(t->pd);
	if (t->listen_id)
		rdma_destroy_id(t->listen_id);
	if (t->cm)
		rdma_destroy_event_channel(t->cm);
	if (t->ep >= 0)
		close(t->ep);
	auth_wipe_key(&t->act_key);
	free(t);
}

/* Bind to the listen address now: the address picks the device, and the
 * device's protection domain is needed before anything can be exposed. */
static int setup_device(struct tp_rdma *t, struct errbuf *e)
{
	struct sockaddr_storage ss;
	struct ibv_device_attr attr;
	struct epoll_event ev = { .events = EPOLLIN };
	const char *name;
	size_t sendsize = (size_t)(OPEN_SEND_SLOT + 1) * RDMA_MSG_SLOT;

	t->cm = rdma_create_event_channel();
	if (!t->cm)
		return errbuf_set(e, -ENODEV, "no RDMA connection manager (%s): is rdma_ucm loaded?",
				  strerror(errno));
	if (set_nonblock(t->cm->fd) < 0 || rdma_create_id(t->cm, &t->listen_id, t, RDMA_PS_TCP))
		return errbuf_set(e, -errno, "rdma_create_id: %s", strerror(errno));
	if (tp_to_sockaddr(&t->cfg.local, t->cfg.local.port, &ss) < 0)
		return errbuf_set(e, -EINVAL, "listen address '%s' is not numeric", t->cfg.local.host);
	if (rdma_bind_addr(t->listen_id, (struct sockaddr *)&ss))
		return errbuf_set(e, -errno, "cannot bind %s:%u for RDMA: %s", t->cfg.local.host,
				  t->cfg.local.port, strerror(errno));
	t->ctx = t->listen_id->verbs;
	if (!t->ctx)
		return errbuf_set(e, -ENODEV, "%s is not the address of an RDMA device's interface",
				  t->cfg.local.host);
	name = ibv_get_device_name(t->ctx->device);
	if (t->cfg.device && strcmp(t->cfg.device, name) != 0)
		return errbuf_set(e, -ENODEV, "%s belongs to RDMA device %s, not %s",
				  t->cfg.local.host, name, t->cfg.device);
	if (ibv_query_device(t->ctx, &attr))
		return errbuf_set(e, -errno, "%s: cannot query the device", name);
	t->rd_atomic = (uint8_t)(attr.max_qp_rd_atom < RD_ATOMIC_WANTED ? attr.max_qp_rd_atom : RD_ATOMIC_WANTED);
	t->init_depth = (uint8_t)(attr.max_qp_init_rd_atom < RD_ATOMIC_WANTED ?
				  attr.max_qp_init_rd_atom : RD_ATOMIC_WANTED);
	t->pd = ibv_alloc_pd(t->ctx);
	t->cc = t->pd ? ibv_create_comp_channel(t->ctx) : NULL;
	t->cq = t->cc ? ibv_create_cq(t->ctx, 2 * (RDMA_PENDING_MAX + RDMA_SEND_SLOTS +
				      RDMA_PASSIVE_MAX * RDMA_RECV_SLOTS), NULL, t->cc, 0) : NULL;
	if (!t->cq || set_nonblock(t->cc->fd) < 0 || ibv_req_notify_cq(t->cq, 0))
		return errbuf_set(e, -ENOMEM, "%s: cannot set up a protection domain and "
				  "completion queue", name);
	page_round(&sendsize);
	t->send = aligned_alloc(4096, sendsize);
	t->send_mr = t->send ? ibv_reg_mr(t->pd, t->send, sendsize, IBV_ACCESS_LOCAL_WRITE) : NULL;
	if (!t->send_mr)
		return errbuf_set(e, -ENOMEM, "%s: cannot register send buffers", name);
	be_put32(t->send + (size_t)OPEN_SEND_SLOT * RDMA_MSG_SLOT, RDMA_OPEN_MAGIC);
	t->ep = epoll_create1(EPOLL_CLOEXEC);
	if (t->ep < 0)
		return errbuf_set(e, -errno, "epoll_create1: %s", strerror(errno));
	ev.data.fd = t->cm->fd;
	if (epoll_ctl(t->ep, EPOLL_CTL_ADD, t->cm->fd, &ev))
		return errbuf_set(e, -errno, "epoll: %s", strerror(errno));
	ev.data.fd = t->cc->fd;
	if (epoll_ctl(t->ep, EPOLL_CTL_ADD, t->cc->fd, &ev))
		return errbuf_set(e, -errno, "epoll: %s", strerror(errno));
	return 0;
}

static int rdma_tp_create(const struct tp_config *cfg, struct tp **out, struct errbuf *e)
{
	struct tp_rdma *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return errbuf_set(e, -ENOMEM, "out of memory");
	t->base.ops = &tp_rdma_ops;
	t->cfg = *cfg;
	t->ep = -1;
	t->status_key = -1;
	r = setup_device(t, e);
	if (r < 0) {
		rdma_tp_destroy(&t->base);
		return r;
	}
	*out = &t->base;
	return 0;
}

const struct tp_ops tp_rdma_ops = {
	.name = "rdma",
	.create = rdma_tp_create,
	.expose = rdma_expose,
	.unexpose = rdma_unexpose,
	.listen = rdma_tp_listen,
	.connect = rdma_tp_connect,
	.disconnect = rdma_tp_disconnect,
	.read = rdma_tp_read,
	.write = rdma_tp_write,
	.send = rdma_tp_send,
	.admit = rdma_tp_admit,
	.fd = rdma_tp_fd,
	.progress = rdma_tp_progress,
	.destroy = rdma_tp_destroy,
};
