/* tp_mem: the in-memory transport backend, for the deterministic simulator
 * (the contract is tp/mem.h).
 *
 * The network owns everything in flight: connections (struct mem_conn) and,
 * on each, two FIFO queues of items, one per direction.  A transport points
 * at its active connection and a connection at its two ends; both pointers
 * are cleared when either side lets go, and an item names only its
 * connection, so nothing in flight ever points into a transport that is
 * gone.  A connection is freed once neither end holds it and nothing of it
 * is in flight.
 *
 * An item's due time is its post time plus a latency drawn from the
 * network's generator, never earlier than the item ahead of it in its queue:
 * that is the whole of RC ordering.  tp_mem_net_advance delivers, in time
 * order, the heads of the queues that are not held up (a cut wire, a frozen
 * node's CPU); a head held up holds up its queue behind it, and is delivered
 * at once when released.  Answers (a READ's data, a WRITE's status, a
 * connection's reply) travel back on the request's own item, so serving
 * never allocates. */
#include "tp/mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"
#include "proto/auth.h"

#define MEM_REGIONS_MAX (CCM_PORTS_TOTAL + 8)
#define MEM_PENDING_MAX TP_OPS_MAX
#define MEM_SEND_SLOTS  4       /* as rdma: messages posted that have not landed yet */
#define NEVER           UINT64_MAX
/* tp_mem_net_replay: the first messages of each connection (an exchange's
 * own), the most recent few, kept to be delivered again. */
#define MEM_RECORD_PER_CONN 8
#define MEM_RECORD_MAX      32

enum item_kind { IT_CONN_REQ, IT_CONN_REP, IT_READ, IT_WRITE, IT_DONE, IT_MSG, IT_CLOSE };
enum { TO_PAS, TO_ACT };        /* a connection's two directions */

struct item {
	struct item *next;
	uint64_t due, seq;      /* seq: post order over the whole network, for ties */
	enum item_kind kind;
	int status;             /* CONN_REP, DONE: 0 or -errno */
	uint32_t req;           /* READ, WRITE, DONE: which operation */
	uint32_t rkey, len;
	uint64_t addr;
	uint32_t node;          /* CONN_REP: the listener's node id */
	struct tp_remote win;   /* CONN_REP: its status window */
	bool replayed;          /* MSG: injected by tp_mem_net_replay, no send slot */
	uint8_t data[];         /* WRITE, MSG: the payload; READ: room for the bytes read */
};

struct queue {
	struct item *head, *tail;
};

struct mem_conn {
	struct mem_conn *next;
	uint64_t id;
	struct mem_tp *act, *pas;   /* NULL once that end let go (or, pas: before it accepted) */
	char act_host[64], pas_host[64];
	uint16_t pas_port;
	uint32_t act_node;
	/* The key the connecting side proves with (tp_config.keys' first),
	 * by its id.  The greeting's outcome is modelled, not its
	 * cryptography, which tcp and rdma carry out for real: a
	 * connection proves the key exactly when the listener holds one
	 * with this id. */
	bool act_keyed;
	uint8_t act_key_id[AUTH_KEY_ID_BYTES];
	struct queue q[2];
	int items;
	struct item *close;     /* the FIN, allocated up front so closing cannot fail */
	uint64_t stall_since;   /* cut with something outstanding since, NEVER if not */
	uint64_t doom_at;       /* an end was destroyed: the other notices then */
	int recorded;           /* of its messages, kept for tp_mem_net_replay */
};

/* A message as it was sent, for tp_mem_net_replay. */
struct record {
	uint64_t conn;          /* 0: slot free */
	uint32_t node;          /* its sender */
	uint32_t len;
	uint8_t *data;
};

struct region {
	void *base;
	size_t len;             /* 0: slot free */
	unsigned flags;
	uint32_t rkey;
	uint64_t addr;
};

struct pending {
	uint32_t req;
	uint64_t wr_id;
	bool is_read;
	void *dst;
	uint32_t len;
};

/* An event made but not handed out yet, with its message's bytes.  Our own
 * queue rather than a struct tp_evq: a frozen node may be sent more than
 * TP_EVQ_MAX messages, and the simulator must lose none of them. */
struct inbox_ev {
	struct inbox_ev *next;
	struct tp_event ev;
	uint8_t msg[];
};

enum act_state { ACT_IDLE, ACT_CONNECTING, ACT_UP };

struct mem_tp {
	struct tp base;
	struct tp_mem_net *net;         /* NULL if the network went first */
	struct mem_tp *next;            /* the network's transports */
	struct tp_config cfg;
	bool listening;
	struct region reg[MEM_REGIONS_MAX];
	enum act_state state;
	struct mem_conn *act;
	struct pending pend[MEM_PENDING_MAX];   /* a ring: completions come in post order */
	int pend_head, pend_len;
	int sends;                      /* messages on their way: tp_send is busy at MEM_SEND_SLOTS */
	uint32_t next_req;
	uint64_t current;               /* the partner's current connection to us, 0 none */
	uint32_t admit;                 /* tp_admit: the one node let in, 0 any */
	struct inbox_ev *in_head, *in_tail;
	struct inbox_ev *held;          /* handed out by the last progress */
};

struct tp_mem_net {
	struct tp_mem_params p;
	uint64_t now;
	uint64_t rng, keyrng;           /* latencies; rkeys and addresses */
	uint64_t seq, conn_ids;
	struct mem_tp *tps;
	struct mem_conn *conns;
	char (*cut)[64];
	int ncut;
	uint32_t *frozen;
	int nfrozen;
	struct record rec[MEM_RECORD_MAX];  /* a ring, oldest at rec_next */
	int rec_next;
	struct tp_mem_stats st;
};

static struct mem_tp *to_mem(struct tp *t)
{
	return (struct mem_tp *)t;
}

/* splitmix64: small, and the same sequence everywhere. */
static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* --- the network's state ---------------------------------------------------- */

static int cut_index(const struct tp_mem_net *n, const char *host)
{
	for (int i = 0; i < n->ncut; i++)
		if (!strcmp(n->cut[i], host))
			return i;
	return -1;
}

static bool frozen(const struct tp_mem_net *n, uint32_t node)
{
	for (int i = 0; i < n->nfrozen; i++)
		if (n->frozen[i] == node)
			return true;
	return false;
}

static bool conn_cut(const struct tp_mem_net *n, const struct mem_conn *c)
{
	return cut_index(n, c->act_host) >= 0 || cut_index(n, c->pas_host) >= 0;
}

static struct mem_tp *listener(const struct tp_mem_net *n, const char *host, uint16_t port)
{
	for (struct mem_tp *t = n->tps; t; t = t->next)
		if (t->listening && t->cfg.local.port == port && !strcmp(t->cfg.local.host, host))
			return t;
	return NULL;
}

/* --- events ----------------------------------------------------------------- */

static void inbox_push(struct mem_tp *t, const struct tp_event *ev, const void *msg, uint32_t len)
{
	struct inbox_ev *e = malloc(sizeof(*e) + len);

	if (!e)
		return;  /* out of memory in the simulator: lost like a dropped packet */
	e->next = NULL;
	e->ev = *ev;
	if (len) {
		memcpy(e->msg, msg, len);
		e->ev.msg = e->msg;
		e->ev.msg_len = len;
	}
	if (t->in_tail)
		t->in_tail->next = e;
	else
		t->in_head = e;
	t->in_tail = e;
}

static void peer_closed(struct mem_tp *t, int status, const char *why)
{
	struct tp_event ev = { .type = TP_EV_PEER_CLOSED, .status = status };

	snprintf(ev.detail, sizeof(ev.detail), "%s", why);
	inbox_push(t, &ev, NULL, 0);
}

static void free_list(struct inbox_ev *e)
{
	while (e) {
		struct inbox_ev *next = e->next;

		free(e);
		e = next;
	}
}

/* --- queues ----------------------------------------------------------------- */

/* A connection with something outstanding whose wire is cut starts its
 * failure clock; anything else stops it. */
static void conn_watch(struct tp_mem_net *n, struct mem_conn *c)
{
	bool outstanding = c->items > 0 || (c->act && c->act->pend_len > 0);

	if (!outstanding || !conn_cut(n, c))
		c->stall_since = NEVER;
	else if (c->stall_since == NEVER)
		c->stall_since = n->now;
}

static uint64_t conn_fail_at(const struct mem_conn *c, uint32_t detect_us)
{
	uint64_t stall = c->stall_since == NEVER ? NEVER : c->stall_since + detect_us;

	return stall < c->doom_at ? stall : c->doom_at;
}

static void enqueue(struct tp_mem_net *n, struct mem_conn *c, int dir, struct item *it)
{
	struct queue *q = &c->q[dir];
	uint32_t span = n->p.max_us - n->p.min_us;

	it->next = NULL;
	it->seq = ++n->seq;
	it->due = n->now + n->p.min_us + mix(&n->rng) % ((uint64_t)span + 1);
	if (q->tail && q->tail->due > it->due)
		it->due = q->tail->due;  /* RC: never ahead of what went before */
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	c->items++;
	n->st.in_flight++;
	conn_watch(n, c);
}

static struct item *dequeue(struct tp_mem_net *n, struct mem_conn *c, int dir)
{
	struct item *it = c->q[dir].head;

	c->q[dir].head = it->next;
	if (!it->next)
		c->q[dir].tail = NULL;
	c->items--;
	n->st.in_flight--;
	/* A message landed or was dropped: its send slot is free again (rdma:
	 * the send's completion, or its failure). */
	if (it->kind == IT_MSG && dir == TO_PAS && !it->replayed && c->act && c->act->sends > 0)
		c->act->sends--;
	return it;
}

static void drop_queue(struct tp_mem_net *n, struct mem_conn *c, int dir)
{
	while (c->q[dir].head)
		free(dequeue(n, c, dir));
}

/* Free the connection once neither end holds it and nothing of it is in
 * flight; otherwise look again at its failure clock. */
static void conn_settle(struct tp_mem_net *n, struct mem_conn *c)
{
	struct mem_conn **pp;

	if (c->act || c->pas || c->items) {
		conn_watch(n, c);
		return;
	}
	for (pp = &n->conns; *pp != c; pp = &(*pp)->next)
		;
	*pp = c->next;
	free(c->close);
	free(c);
}

/* --- connections ---------------------------------------------------------- */

/* The active end lets go: every operation still posted fails, in order, then
 * DISCONNECTED (or CONNECT_FAILED if it never came up).  With tell, the
 * listener hears of it behind whatever is already on its way to it, as a FIN
 * follows the data.  The caller settles the connection. */
static void active_close(struct tp_mem_net *n, struct mem_tp *t, int status, bool tell)
{
	struct mem_conn *c = t->act;
	struct tp_event ev = { .type = TP_EV_CONNECT_FAILED, .status = status };

	if (t->state == ACT_UP) {
		for (; t->pend_len; t->pend_len--) {
			struct tp_event done = { .type = TP_EV_OP_DONE, .status = status,
						 .wr_id = t->pend[t->pend_head].wr_id };

			t->pend_head = (t->pend_head + 1) % MEM_PENDING_MAX;
			inbox_push(t, &done, NULL, 0);
		}
		ev.type = TP_EV_DISCONNECTED;
	}
	inbox_push(t, &ev, NULL, 0);
	t->act = NULL;
	t->state = ACT_IDLE;
	t->sends = 0;
	c->act = NULL;
	drop_queue(n, c, TO_ACT);  /* answers nobody waits for any more */
	/* An abort, as tcp's close (SO_LINGER 0) and an RDMA queue pair's
	 * destruction are: what had not arrived yet never does.  A WRITE
	 * given up here and posted again on another link must never land
	 * late over newer bytes. */
	drop_queue(n, c, TO_PAS);
	if (tell && c->pas) {
		c->close->kind = IT_CLOSE;
		enqueue(n, c, TO_PAS, c->close);
		c->close = NULL;
	}
}

/* Both ends see the connection fail: nothing more of it arrives. */
static void conn_fail(struct tp_mem_net *n, struct mem_conn *c, int status)
{
	struct mem_tp *p = c->pas;

	n->st.failures++;
	c->pas = NULL;
	c->stall_since = c->doom_at = NEVER;
	drop_queue(n, c, TO_PAS);
	if (c->act)
		active_close(n, c->act, status, false);
	drop_queue(n, c, TO_ACT);
	if (p && p->current == c->id)
		peer_closed(p, status, status == -ETIMEDOUT ? "the connection timed out"
							    : "the partner is gone");
	conn_settle(n, c);
}

/* The answer travels back on the request's item. */
static void reply(struct tp_mem_net *n, struct mem_conn *c, struct item *it, enum item_kind kind)
{
	if (!c->act) {
		free(it);
		return;
	}
	it->kind = kind;
	enqueue(n, c, TO_ACT, it);
}

static const struct region *find_region(const struct mem_tp *t, uint32_t rkey)
{
	for (int i = 0; i < MEM_REGIONS_MAX; i++)
		if (t->reg[i].len && t->reg[i].rkey == rkey)
			return &t->reg[i];
	return NULL;
}

static const struct region *status_region(const struct mem_tp *t)
{
	for (int i = 0; i < MEM_REGIONS_MAX; i++)
		if (t->reg[i].len && (t->reg[i].flags & TP_EXPOSE_STATUS))
			return &t->reg[i];
	return NULL;
}

static bool has_key(const struct mem_tp *t)
{
	return t->cfg.keys && t->cfg.keys->n > 0;
}

/* Whether c's greeting would prove a key l accepts (or both have none). */
static bool key_proved(const struct mem_tp *l, const struct mem_conn *c)
{
	if (!has_key(l) || !c->act_keyed)
		return !has_key(l) && !c->act_keyed;
	return auth_keyring_find(l->cfg.keys, c->act_key_id) != NULL;
}

static void accept_conn(struct tp_mem_net *n, struct mem_conn *c, struct item *it)
{
	struct mem_tp *l = listener(n, c->pas_host, c->pas_port);
	struct tp_event ev = { .type = TP_EV_PEER_CONNECTED, .peer_node = c->act_node };
	const struct region *st;

	it->status = -ECONNREFUSED;
	if (l && !key_proved(l, c)) {
		struct tp_event no = { .type = TP_EV_REJECTED, .status = -EACCES,
				       .peer_node = c->act_node,
				       .from_partner_addr = !strcmp(c->act_host, l->cfg.partner.host) };

		snprintf(no.detail, sizeof(no.detail), "node %u %s", c->act_node,
			 c->act_keyed ? "does not prove a key we hold" :
			 "has no pre-shared key; ours is required");
		inbox_push(l, &no, NULL, 0);
		it->status = -EACCES;
	} else if (l && l->admit && c->act_node != l->admit) {
		struct tp_event no = { .type = TP_EV_REJECTED, .status = -EPERM,
				       .peer_node = c->act_node };

		snprintf(no.detail, sizeof(no.detail), "node %u is not our partner (node %u)",
			 c->act_node, l->admit);
		inbox_push(l, &no, NULL, 0);
		it->status = -EPERM;
	} else if (l) {
		/* The newest connection is the partner's current one. */
		c->pas = l;
		l->current = c->id;
		inbox_push(l, &ev, NULL, 0);
		it->node = l->cfg.node_id;
		st = status_region(l);
		it->status = st ? 0 : -ENODEV;
		if (st)
			it->win = (struct tp_remote){ st->addr, st->rkey, (uint32_t)st->len };
	}
	reply(n, c, it, IT_CONN_REP);
}

/* A READ or WRITE at its target, checked as a NIC checks it. */
static void serve(struct mem_tp *t, struct item *it)
{
	const struct region *r = find_region(t, it->rkey);
	bool write = it->kind == IT_WRITE;
	uint64_t off = it->addr - (r ? r->addr : 0);
	uint8_t *at;

	if (!r || (r->flags & TP_EXPOSE_LOCAL))
		it->status = -EINVAL;
	else if (it->addr < r->addr || off > r->len || it->len > r->len - off)
		it->status = -EFAULT;
	else if (write && !(r->flags & TP_EXPOSE_WRITE))
		it->status = -EACCES;
	if (it->status)
		return;
	at = (uint8_t *)r->base + off;
	if (write)
		memcpy(at, it->data, it->len);
	else
		memcpy(it->data, at, it->len);
}

static void arrive_passive(struct tp_mem_net *n, struct mem_conn *c, struct item *it)
{
	struct mem_tp *p = c->pas;
	bool current = p && p->current == c->id;
	struct tp_event ev = { .type = TP_EV_MESSAGE };

	switch (it->kind) {
	case IT_CONN_REQ:
		accept_conn(n, c, it);
		return;
	case IT_READ:
	case IT_WRITE:
		/* Served on any connection the partner still has, current
		 * or not, as tcp and rdma serve it.  With the target gone it
		 * vanishes: the initiator's failure clock answers for it. */
		if (!p)
			break;
		serve(p, it);
		n->st.ops++;
		reply(n, c, it, IT_DONE);
		return;
	case IT_MSG:
		if (current) {  /* an older connection's messages are stale */
			inbox_push(p, &ev, it->data, it->len);
			n->st.msgs++;
		}
		break;
	case IT_CLOSE:
		if (current)
			peer_closed(p, -ECONNRESET, "the partner closed the connection");
		c->pas = NULL;
		break;
	default:
		break;
	}
	free(it);
}

static void arrive_active(struct tp_mem_net *n, struct mem_conn *c, struct item *it)
{
	struct mem_tp *t = c->act;  /* set: letting go drops this queue */
	struct pending *p = &t->pend[t->pend_head];
	struct tp_event ev = { .type = TP_EV_CONNECTED, .status_window = it->win,
			       .peer_node = it->node };

	if (it->kind == IT_CONN_REP) {
		if (it->status) {
			active_close(n, t, it->status, true);
		} else {
			t->state = ACT_UP;
			inbox_push(t, &ev, NULL, 0);
			n->st.connects++;
		}
	} else if (t->pend_len && p->req == it->req) {
		ev = (struct tp_event){ .type = TP_EV_OP_DONE, .status = it->status,
					.wr_id = p->wr_id };
		/* Only now does the initiator's buffer change. */
		if (p->is_read && !it->status)
			memcpy(p->dst, it->data, p->len);
		t->pend_head = (t->pend_head + 1) % MEM_PENDING_MAX;
		t->pend_len--;
		inbox_push(t, &ev, NULL, 0);
	}
	free(it);
}

/* Whether a queue's head must wait: a cut wire holds everything; a frozen
 * node's CPU holds what needs it (with a NIC serving, only the connection
 * requests). */
static bool held_up(const struct tp_mem_net *n, const struct mem_conn *c, int dir,
		    const struct item *it)
{
	const struct mem_tp *l;

	if (conn_cut(n, c))
		return true;
	if (dir == TO_ACT)
		return false;
	if (it->kind == IT_CONN_REQ) {
		l = listener(n, c->pas_host, c->pas_port);
		return l && frozen(n, l->cfg.node_id);
	}
	if (it->kind == IT_READ || it->kind == IT_WRITE)
		return c->pas && !n->p.nic_serves && frozen(n, c->pas->cfg.node_id);
	return false;
}

struct next {
	struct mem_conn *c;
	int dir;                /* -1: the connection fails */
	uint64_t at, ord;
};

/* What happens next: the earliest deliverable queue head (one released after
 * being held up goes at once), ties in post order; then failures, ties in
 * connection order. */
static struct next find_next(const struct tp_mem_net *n)
{
	struct next nx = { .at = NEVER };

	for (struct mem_conn *c = n->conns; c; c = c->next) {
		uint64_t at = conn_fail_at(c, n->p.detect_us);

		if (at != NEVER) {
			at = at > n->now ? at : n->now;
			if (at < nx.at || (at == nx.at && nx.dir < 0 && c->id < nx.ord))
				nx = (struct next){ c, -1, at, c->id };
		}
		for (int d = TO_PAS; d <= TO_ACT; d++) {
			struct item *it = c->q[d].head;

			if (!it || held_up(n, c, d, it))
				continue;
			at = it->due > n->now ? it->due : n->now;
			if (at < nx.at || (at == nx.at && (nx.dir < 0 || it->seq < nx.ord)))
				nx = (struct next){ c, d, at, it->seq };
		}
	}
	return nx;
}

/* --- the interface -------------------------------------------------------- */

static int mem_create(const struct tp_config *cfg, struct tp **out, struct errbuf *e)
{
	struct tp_mem_net *n = cfg->net;
	struct mem_tp *t;

	if (!n)
		return errbuf_set(e, -EINVAL, "the mem transport exists only in the simulator");
	t = calloc(1, sizeof(*t));
	if (!t)
		return errbuf_set(e, -ENOMEM, "out of memory");
	t->base.ops = &tp_mem_ops;
	t->cfg = *cfg;
	t->net = n;
	t->next = n->tps;
	n->tps = t;
	n->st.transports++;
	*out = &t->base;
	return 0;
}

static int mem_expose(struct tp *tp, void *base, size_t len, unsigned flags, struct tp_remote *out)
{
	struct mem_tp *t = to_mem(tp);
	struct region *r = NULL;
	uint32_t rkey;

	if (!base || !len || len > UINT32_MAX)
		return -EINVAL;
	if (!t->net)
		return -ENETDOWN;
	if ((flags & TP_EXPOSE_STATUS) && status_region(t))
		return -EEXIST;
	for (int i = 0; i < MEM_REGIONS_MAX && !r; i++)
		if (!t->reg[i].len)
			r = &t->reg[i];
	if (!r)
		return -ENOSPC;
	/* Keys and addresses an RDMA NIC might give: neither small nor in
	 * sequence, so a layer that assumed either would be caught. */
	do
		rkey = (uint32_t)mix(&t->net->keyrng);
	while (!rkey || find_region(t, rkey));
	*r = (struct region){ base, len, flags, rkey, mix(&t->net->keyrng) & 0x7ffffffff000ull };
	*out = (struct tp_remote){ r->addr, rkey, (uint32_t)len };
	return 0;
}

static int mem_unexpose(struct tp *tp, const struct tp_remote *h)
{
	struct region *r = (struct region *)find_region(to_mem(tp), h->rkey);

	if (!r)
		return -ENOENT;
	r->len = 0;
	return 0;
}

static int mem_listen(struct tp *tp, struct errbuf *e)
{
	struct mem_tp *t = to_mem(tp), *other;
	char buf[96];

	if (!t->net)
		return errbuf_set(e, -ENETDOWN, "the simulated network is gone");
	other = listener(t->net, t->cfg.local.host, t->cfg.local.port);
	if (other && other != t)
		return errbuf_set(e, -EADDRINUSE, "cannot listen on %s: in use",
				  tp_format_addr(&t->cfg.local, buf, sizeof(buf)));
	t->listening = true;
	return 0;
}

static int mem_connect(struct tp *tp)
{
	struct mem_tp *t = to_mem(tp);
	struct tp_mem_net *n = t->net;
	struct mem_conn *c;
	struct item *req;

	if (!n)
		return -ENETDOWN;
	if (t->state != ACT_IDLE)
		return -EALREADY;
	c = calloc(1, sizeof(*c));
	req = calloc(1, sizeof(*req));
	if (c)
		c->close = calloc(1, sizeof(*c->close));
	if (!c || !req || !c->close) {
		if (c)
			free(c->close);
		free(c);
		free(req);
		return -ENOMEM;
	}
	c->id = ++n->conn_ids;
	c->act = t;
	memcpy(c->act_host, t->cfg.local.host, sizeof(c->act_host));
	memcpy(c->pas_host, t->cfg.partner.host, sizeof(c->pas_host));
	c->act_host[sizeof(c->act_host) - 1] = c->pas_host[sizeof(c->pas_host) - 1] = 0;
	c->pas_port = t->cfg.partner.port;
	c->act_node = t->cfg.node_id;
	c->act_keyed = has_key(t);
	if (c->act_keyed)
		auth_key_id_bytes(&t->cfg.keys->slot[0], c->act_key_id);
	c->stall_since = c->doom_at = NEVER;
	c->next = n->conns;
	n->conns = c;
	t->act = c;
	t->state = ACT_CONNECTING;
	req->kind = IT_CONN_REQ;
	enqueue(n, c, TO_PAS, req);
	return 0;
}

static void mem_disconnect(struct tp *tp)
{
	struct mem_tp *t = to_mem(tp);
	struct mem_conn *c = t->act;

	if (!c)
		return;
	active_close(t->net, t, -ECONNABORTED, true);
	conn_settle(t->net, c);
}

static bool local_ok(const struct mem_tp *t, const void *buf, uint32_t len)
{
	uintptr_t p = (uintptr_t)buf;

	for (int i = 0; i < MEM_REGIONS_MAX; i++) {
		uintptr_t b = (uintptr_t)t->reg[i].base;
		size_t rlen = t->reg[i].len;

		if (rlen && p >= b && p - b <= rlen && len <= rlen - (p - b))
			return true;
	}
	return false;
}

static int post_rw(struct mem_tp *t, const struct tp_remote *w, uint64_t off, void *buf,
		   uint32_t len, uint64_t wr_id, bool is_read)
{
	struct item *it;

	if (t->state != ACT_UP)
		return -ENOTCONN;
	if (!len || len > CCM_OP_MAX || off > w->len || len > w->len - off)
		return -EINVAL;
	if (!local_ok(t, buf, len))
		return -EINVAL;  /* RDMA needs it registered */
	if (t->pend_len == MEM_PENDING_MAX)
		return -EBUSY;  /* as tcp and rdma say it */
	it = calloc(1, sizeof(*it) + len);
	if (!it)
		return -ENOMEM;
	it->kind = is_read ? IT_READ : IT_WRITE;
	it->req = ++t->next_req;
	it->rkey = w->rkey;
	it->addr = w->addr + off;
	it->len = len;
	if (!is_read)
		memcpy(it->data, buf, len);
	t->pend[(t->pend_head + t->pend_len++) % MEM_PENDING_MAX] =
		(struct pending){ it->req, wr_id, is_read, buf, len };
	enqueue(t->net, t->act, TO_PAS, it);
	return 0;
}

static int mem_read(struct tp *tp, const struct tp_remote *w, uint64_t off, void *dst,
		    uint32_t len, uint64_t wr_id)
{
	return post_rw(to_mem(tp), w, off, dst, len, wr_id, true);
}

static int mem_write(struct tp *tp, const struct tp_remote *w, uint64_t off, const void *src,
		     uint32_t len, uint64_t wr_id)
{
	return post_rw(to_mem(tp), w, off, (void *)src, len, wr_id, false);
}

static int mem_send(struct tp *tp, const void *msg, uint32_t len)
{
	struct mem_tp *t = to_mem(tp);
	struct item *it;

	if (t->state != ACT_UP)
		return -ENOTCONN;
	if (!len || len > CCM_MSG_MAX)
		return -EMSGSIZE;
	if (t->sends >= MEM_SEND_SLOTS)
		return -EBUSY;
	it = calloc(1, sizeof(*it) + len);
	if (!it)
		return -ENOMEM;
	it->kind = IT_MSG;
	it->len = len;
	memcpy(it->data, msg, len);
	if (t->act->recorded < MEM_RECORD_PER_CONN) {
		struct record *r = &t->net->rec[t->net->rec_next];
		uint8_t *copy = malloc(len);

		if (copy) {
			free(r->data);
			*r = (struct record){ t->act->id, t->cfg.node_id, len, copy };
			memcpy(copy, msg, len);
			t->net->rec_next = (t->net->rec_next + 1) % MEM_RECORD_MAX;
			t->act->recorded++;
		}
	}
	enqueue(t->net, t->act, TO_PAS, it);
	t->sends++;
	return 0;
}

static void mem_admit(struct tp *tp, uint32_t node)
{
	struct mem_tp *t = to_mem(tp);
	struct tp_mem_net *n = t->net;
	struct mem_conn *c, *next;
	uint64_t newest = 0;

	t->admit = node;
	if (!n || !node)
		return;
	/* The newest connection from the one let in is the partner's current
	 * one again; those from other nodes go, unannounced. */
	for (c = n->conns; c; c = c->next)
		if (c->pas == t && c->act_node == node && c->id > newest)
			newest = c->id;
	t->current = newest;
	for (c = n->conns; c; c = next) {
		next = c->next;
		if (c->pas == t && c->act_node != node)
			conn_fail(n, c, -EPERM);
	}
}

static int mem_fd(struct tp *tp)
{
	(void)tp;
	return -1;  /* nothing to poll: the simulator drives the clock */
}

static int mem_progress(struct tp *tp, struct tp_event *out, int max)
{
	struct mem_tp *t = to_mem(tp);
	int n = 0;

	/* The messages handed out last time have been consumed by now. */
	free_list(t->held);
	t->held = NULL;
	while (n < max && t->in_head) {
		struct inbox_ev *e = t->in_head;

		t->in_head = e->next;
		if (!t->in_head)
			t->in_tail = NULL;
		out[n++] = e->ev;
		e->next = t->held;
		t->held = e;
	}
	return n;
}

static void mem_destroy(struct tp *tp)
{
	struct mem_tp *t = to_mem(tp), **pp;
	struct tp_mem_net *n = t->net;
	struct mem_conn *c, *next;

	if (n) {
		for (pp = &n->tps; *pp != t; pp = &(*pp)->next)
			;
		*pp = t->next;
		n->st.transports--;
		/* A crash: the partner notices after detect_us.  Nothing of
		 * ours arrives any more, in either direction: no process is
		 * left to retransmit, as with an aborted tcp connection or a
		 * destroyed queue pair. */
		for (c = n->conns; c; c = next) {
			next = c->next;
			if (c->act == t) {
				c->act = NULL;
				drop_queue(n, c, TO_ACT);
				drop_queue(n, c, TO_PAS);
				c->doom_at = n->now + n->p.detect_us;
			}
			if (c->pas == t) {
				c->pas = NULL;
				drop_queue(n, c, TO_PAS);
				drop_queue(n, c, TO_ACT);
				if (c->act)
					c->doom_at = n->now + n->p.detect_us;
			}
			conn_settle(n, c);
		}
	}
	free_list(t->in_head);
	free_list(t->held);
	free(t);
}

const struct tp_ops tp_mem_ops = {
	.name = "mem",
	.create = mem_create,
	.expose = mem_expose,
	.unexpose = mem_unexpose,
	.listen = mem_listen,
	.connect = mem_connect,
	.disconnect = mem_disconnect,
	.read = mem_read,
	.write = mem_write,
	.send = mem_send,
	.admit = mem_admit,
	.fd = mem_fd,
	.progress = mem_progress,
	.destroy = mem_destroy,
};

/* --- the network ------------------------------------------------------------- */

int tp_mem_net_create(const struct tp_mem_params *p, struct tp_mem_net **out)
{
	struct tp_mem_net *n;

	if (!p || !out)
		return -EINVAL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->p = *p;
	n->rng = p->seed;
	n->keyrng = p->seed ^ 0x6d656d2d6b657973ull;  /* a second stream: exposing moves no delay */
	tp_mem_net_set_latency(n, p->min_us, p->max_us);
	*out = n;
	return 0;
}

void tp_mem_net_destroy(struct tp_mem_net *n)
{
	if (!n)
		return;
	/* Transports left behind (against the contract) keep working alone:
	 * they hold nothing of the network any more. */
	for (struct mem_tp *t = n->tps; t; t = t->next) {
		t->net = NULL;
		t->act = NULL;
		t->state = ACT_IDLE;
		t->pend_len = 0;
		t->listening = false;
	}
	while (n->conns) {
		struct mem_conn *c = n->conns;

		n->conns = c->next;
		drop_queue(n, c, TO_PAS);
		drop_queue(n, c, TO_ACT);
		free(c->close);
		free(c);
	}
	for (int i = 0; i < MEM_RECORD_MAX; i++)
		free(n->rec[i].data);
	free(n->cut);
	free(n->frozen);
	free(n);
}

int tp_mem_net_advance(struct tp_mem_net *n, uint64_t now_us)
{
	int done = 0;

	for (;;) {
		struct next nx = find_next(n);

		if (!nx.c || nx.at > now_us)
			break;
		n->now = nx.at;  /* what this delivery makes is stamped with its time */
		if (nx.dir < 0) {
			conn_fail(n, nx.c, nx.c->doom_at <= nx.at ? -ECONNRESET : -ETIMEDOUT);
		} else {
			n->st.delivered++;
			if (nx.dir == TO_PAS)
				arrive_passive(n, nx.c, dequeue(n, nx.c, TO_PAS));
			else
				arrive_active(n, nx.c, dequeue(n, nx.c, TO_ACT));
			conn_settle(n, nx.c);
		}
		done++;
	}
	if (now_us > n->now)
		n->now = now_us;
	return done;
}

uint64_t tp_mem_net_next(const struct tp_mem_net *n)
{
	return find_next(n).at;
}

void tp_mem_net_set_latency(struct tp_mem_net *n, uint32_t min_us, uint32_t max_us)
{
	n->p.min_us = min_us < max_us ? min_us : max_us;
	n->p.max_us = min_us < max_us ? max_us : min_us;
}

void tp_mem_net_cut(struct tp_mem_net *n, const char *host, bool cut)
{
	int i = cut_index(n, host);

	if (cut && i < 0) {
		char (*more)[64] = realloc(n->cut, sizeof(*more) * (size_t)(n->ncut + 1));

		if (!more)
			return;
		n->cut = more;
		snprintf(n->cut[n->ncut++], sizeof(*more), "%s", host);
	} else if (!cut && i >= 0) {
		memcpy(n->cut[i], n->cut[--n->ncut], sizeof(n->cut[i]));
	}
	for (struct mem_conn *c = n->conns; c; c = c->next)
		conn_watch(n, c);
}

void tp_mem_net_freeze(struct tp_mem_net *n, uint32_t node, bool frz)
{
	int i;

	for (i = 0; i < n->nfrozen && n->frozen[i] != node; i++)
		;
	if (frz && i == n->nfrozen) {
		uint32_t *more = realloc(n->frozen, sizeof(*more) * (size_t)(n->nfrozen + 1));

		if (!more)
			return;
		n->frozen = more;
		n->frozen[n->nfrozen++] = node;
	} else if (!frz && i < n->nfrozen) {
		n->frozen[i] = n->frozen[--n->nfrozen];
	}
}

void tp_mem_net_stats(const struct tp_mem_net *n, struct tp_mem_stats *st)
{
	*st = n->st;
}

int tp_mem_net_replay(struct tp_mem_net *n, uint32_t from_node, int skip, int max)
{
	struct mem_conn *c;
	uint64_t earlier = 0;
	int count = 0, seen = 0;

	for (c = n->conns; c; c = c->next)
		if (c->act && c->pas && c->pas->current == c->id && c->act_node == from_node)
			break;
	if (!c)
		return -ENOENT;
	for (int i = 0; i < MEM_RECORD_MAX; i++)
		if (n->rec[i].conn && n->rec[i].node == from_node && n->rec[i].conn < c->id &&
		    n->rec[i].conn > earlier)
			earlier = n->rec[i].conn;
	for (int k = 0; k < MEM_RECORD_MAX && earlier && count < max; k++) {
		const struct record *r = &n->rec[(n->rec_next + k) % MEM_RECORD_MAX];
		struct item *it;

		if (r->conn != earlier || seen++ < skip)
			continue;
		it = calloc(1, sizeof(*it) + r->len);
		if (!it)
			return -ENOMEM;
		it->kind = IT_MSG;
		it->replayed = true;
		it->len = r->len;
		memcpy(it->data, r->data, r->len);
		enqueue(n, c, TO_PAS, it);
		count++;
	}
	return count;
}
