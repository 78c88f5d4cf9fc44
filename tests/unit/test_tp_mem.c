/* The in-memory transport: connections, one-sided operations and messages
 * with RC ordering on a virtual clock, and the faults (cut wires, frozen
 * and destroyed nodes) the simulator injects. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "base/limits.h"
#include "proto/auth.h"
#include "tp/mem.h"

#define HOST_A   "10.0.0.1"
#define HOST_B   "10.0.0.2"
#define HOST_C   "10.0.0.3"
#define HOST_X   "10.0.0.99"      /* nobody listens there */
#define PORT     7471
#define NODES    4
#define RECS_MAX 16384
#define MEM_LEN  16384
#define ST_OFF   0                /* status window: the partner may write */
#define RO_OFF   4096             /* read-only for the partner */
#define LOC_OFF  8192             /* local buffers only */
#define NOX_OFF  12288            /* never exposed */

/* One event as a node saw it, with the time it was handed out. */
struct rec {
	uint64_t at;
	int node;
	enum tp_event_type type;
	int status;
	uint64_t wr_id;
	uint32_t peer, msg_len, msg_val;
	uint32_t aux;             /* MESSAGE: the node's status word at receipt */
	struct tp_remote win;
	char detail[112];
};

struct node {
	struct tp *tp;
	uint8_t *mem;
	struct tp_remote status, ro, local;
	bool frozen;              /* the harness does not run it */
};

struct sim {
	struct tp_mem_net *net;
	struct tp_mem_params p;
	uint64_t now;
	struct node node[NODES];
	struct rec rec[RECS_MAX];
	int nrec;
	const struct auth_keyring *keys;   /* node_new gives the next node these */
};

static const struct tp_mem_params P_FIXED = { .seed = 1, .min_us = 100, .max_us = 100,
					      .detect_us = 5000 };
static const struct tp_mem_params P_RANDOM = { .seed = 7, .min_us = 1, .max_us = 1000,
					       .detect_us = 5000 };

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static struct sim *sim_new(const struct tp_mem_params *p)
{
	struct sim *s = calloc(1, sizeof(*s));

	if (!s || tp_mem_net_create(p, &s->net) < 0)
		abort();
	s->p = *p;
	return s;
}

static void node_destroy(struct sim *s, int i)
{
	tp_destroy(s->node[i].tp);
	free(s->node[i].mem);
	memset(&s->node[i], 0, sizeof(s->node[i]));
}

static void sim_free(struct sim *s)
{
	for (int i = 0; i < NODES; i++)
		node_destroy(s, i);
	tp_mem_net_destroy(s->net);
	free(s);
}

/* A node listening at host:port (unless !listen) whose partner is at
 * partner:pport; its memory: the status window (unless !status), a
 * read-only window, a local-only area and an area never exposed. */
static struct node *node_new(struct sim *s, int i, const char *host, uint16_t port,
			     const char *partner, uint16_t pport, uint32_t id, bool status,
			     bool listen)
{
	struct node *nd = &s->node[i];
	struct tp_config cfg = { .local.port = port, .partner.port = pport, .node_id = id,
				 .net = s->net, .keys = s->keys };
	struct errbuf e = { "" };

	snprintf(cfg.local.host, sizeof(cfg.local.host), "%s", host);
	snprintf(cfg.partner.host, sizeof(cfg.partner.host), "%s", partner);
	nd->mem = calloc(1, MEM_LEN);
	for (int k = 0; k < MEM_LEN; k++)
		nd->mem[k] = (uint8_t)(k * 7 + id);
	if (!nd->mem || tp_mem_ops.create(&cfg, &nd->tp, &e) < 0 ||
	    (status && tp_expose(nd->tp, nd->mem + ST_OFF, 4096, TP_EXPOSE_STATUS | TP_EXPOSE_WRITE,
				 &nd->status) < 0) ||
	    tp_expose(nd->tp, nd->mem + RO_OFF, 4096, 0, &nd->ro) < 0 ||
	    tp_expose(nd->tp, nd->mem + LOC_OFF, 4096, TP_EXPOSE_LOCAL, &nd->local) < 0 ||
	    (listen && tp_listen(nd->tp, &e) < 0)) {
		fprintf(stderr, "node %d: %s\n", i, e.msg);
		abort();
	}
	return nd;
}

static void record(struct sim *s, int i, const struct tp_event *ev)
{
	struct rec *r = &s->rec[s->nrec];

	if (s->nrec == RECS_MAX)
		abort();
	s->nrec++;
	*r = (struct rec){ .at = s->now, .node = i, .type = ev->type, .status = ev->status,
			   .wr_id = ev->wr_id, .peer = ev->peer_node, .win = ev->status_window };
	memcpy(r->detail, ev->detail, sizeof(r->detail));
	if (ev->type == TP_EV_MESSAGE) {
		r->msg_len = ev->msg_len;
		r->msg_val = ev->msg_len >= 4 ? get32(ev->msg) : 0;
		r->aux = get32(s->node[i].mem + ST_OFF);
	}
}

/* Take every node's events, as the simulator's loop would (not a frozen
 * node's: it is not running). */
static void pump(struct sim *s)
{
	struct tp_event ev[7];
	int n;

	for (int i = 0; i < NODES; i++) {
		if (!s->node[i].tp || s->node[i].frozen)
			continue;
		while ((n = tp_progress(s->node[i].tp, ev, 7)) > 0)
			for (int k = 0; k < n; k++)
				record(s, i, &ev[k]);
	}
}

/* Advance through everything due up to `until`, running the nodes after
 * each step. */
static void run(struct sim *s, uint64_t until)
{
	uint64_t t;

	while ((t = tp_mem_net_next(s->net)) <= until) {
		tp_mem_net_advance(s->net, t);
		s->now = t;
		pump(s);
	}
	tp_mem_net_advance(s->net, until);
	s->now = until;
	pump(s);
}

static void run_for(struct sim *s, uint64_t us)
{
	run(s, s->now + us);
}

static void freeze(struct sim *s, int i, uint32_t id, bool frozen)
{
	tp_mem_net_freeze(s->net, id, frozen);
	s->node[i].frozen = frozen;
	pump(s);
}

/* The k-th (from 0) event of `type` (0: any) at node i, recorded at index
 * >= from. */
static const struct rec *nth(const struct sim *s, int from, int i, enum tp_event_type type, int k)
{
	for (int j = from; j < s->nrec; j++)
		if (s->rec[j].node == i && (type == 0 || s->rec[j].type == type) && k-- == 0)
			return &s->rec[j];
	return NULL;
}

static int count(const struct sim *s, int from, int i, enum tp_event_type type)
{
	int n = 0;

	for (int j = from; j < s->nrec; j++)
		n += s->rec[j].node == i && (type == 0 || s->rec[j].type == type);
	return n;
}

static bool same_remote(struct tp_remote a, struct tp_remote b)
{
	return a.addr == b.addr && a.rkey == b.rkey && a.len == b.len;
}

/* A (node 1, index 0) connected to B (node 2, index 1), both listening;
 * with both, B connected to A as well. */
static struct sim *pair(const struct tp_mem_params *p, bool both)
{
	struct sim *s = sim_new(p);

	node_new(s, 0, HOST_A, PORT, HOST_B, PORT, 1, true, true);
	node_new(s, 1, HOST_B, PORT, HOST_A, PORT, 2, true, true);
	if (tp_connect(s->node[0].tp) < 0 || (both && tp_connect(s->node[1].tp) < 0))
		abort();
	run_for(s, 2 * p->max_us + 1);
	if (!nth(s, 0, 0, TP_EV_CONNECTED, 0) || (both && !nth(s, 0, 1, TP_EV_CONNECTED, 0)))
		abort();
	return s;
}

static int send32(struct node *nd, uint32_t v)
{
	uint8_t b[24] = { 0 };

	put32(b, v);
	return tp_send(nd->tp, b, sizeof(b));
}

/* --- the tests ---------------------------------------------------------------- */

static void test_basics(void)
{
	const struct tp_ops *ops = &tp_mem_ops;
	struct tp_config cfg = { .local = { HOST_A, PORT } };
	struct errbuf e = { "" };
	struct tp *t = NULL;
	struct tp_mem_stats st;
	struct sim *s;
	struct node *a;
	struct tp_remote h;
	uint8_t buf[64];

	CHECK(!tp_lookup("mem") && !strcmp(ops->name, "mem"),
	      "mem: the simulator's, not one a configuration can name");
	CHECK(ops->create(&cfg, &t, &e) == -EINVAL && strstr(e.msg, "only in the simulator"),
	      "without a network: -EINVAL (%s)", e.msg);
	s = sim_new(&P_FIXED);
	CHECK(tp_mem_net_next(s->net) == UINT64_MAX, "an idle network has nothing next");
	CHECK(tp_mem_net_advance(s->net, 1000) == 0, "an idle network delivers nothing");
	a = node_new(s, 0, HOST_A, PORT, HOST_B, PORT, 1, true, true);
	CHECK(tp_fd(a->tp) == -1, "no fd to poll");
	CHECK(a->status.rkey && a->ro.rkey && a->local.rkey && a->status.rkey != a->ro.rkey &&
	      a->ro.rkey != a->local.rkey && a->status.rkey != a->local.rkey,
	      "rkeys distinct and non-zero (%u %u %u)", a->status.rkey, a->ro.rkey, a->local.rkey);
	CHECK(a->status.len == 4096 && a->status.addr % 4096 == 0, "a window's handle");
	CHECK(tp_expose(a->tp, buf, sizeof(buf), TP_EXPOSE_STATUS, &h) == -EEXIST,
	      "a second status window: -EEXIST");
	CHECK(tp_expose(a->tp, NULL, 8, 0, &h) == -EINVAL &&
	      tp_expose(a->tp, buf, 0, 0, &h) == -EINVAL, "nothing to expose: -EINVAL");
	CHECK(tp_expose(a->tp, buf, sizeof(buf), 0, &h) == 0 && tp_unexpose(a->tp, &h) == 0 &&
	      tp_unexpose(a->tp, &h) == -ENOENT, "unexpose, twice: -ENOENT");
	CHECK(tp_listen(a->tp, &e) == 0, "listening again at our own address is fine");
	node_new(s, 1, HOST_A, PORT + 1, HOST_B, PORT, 9, true, true);
	cfg.net = s->net;
	CHECK(ops->create(&cfg, &t, &e) == 0, "a second transport at the same address");
	CHECK(tp_listen(t, &e) == -EADDRINUSE && strstr(e.msg, HOST_A ":7471"),
	      "cannot listen where another listens: -EADDRINUSE (%s)", e.msg);
	node_destroy(s, 0);
	CHECK(tp_listen(t, &e) == 0, "its listener destroyed, the address is free");
	tp_mem_net_stats(s->net, &st);
	CHECK(st.transports == 2 && st.in_flight == 0, "stats: two transports alive");
	tp_destroy(t);
	sim_free(s);
}

static void test_connect(void)
{
	struct sim *s = sim_new(&P_FIXED);
	struct node *a = node_new(s, 0, HOST_A, PORT, HOST_B, PORT, 1, true, true);
	struct node *b = node_new(s, 1, HOST_B, PORT, HOST_A, PORT, 2, true, true);
	struct node *c = node_new(s, 2, HOST_C, PORT, HOST_X, PORT, 3, true, false);
	struct node *d;
	const struct rec *r, *pc;
	struct tp_mem_stats st;
	int mark;

	CHECK(tp_read(a->tp, &b->ro, 0, a->mem + LOC_OFF, 8, 1) == -ENOTCONN &&
	      tp_write(a->tp, &b->status, 0, a->mem + LOC_OFF, 8, 1) == -ENOTCONN &&
	      send32(a, 1) == -ENOTCONN, "nothing goes before connecting: -ENOTCONN");
	CHECK(tp_connect(a->tp) == 0 && tp_connect(a->tp) == -EALREADY,
	      "connect; again while connecting: -EALREADY");
	CHECK(tp_read(a->tp, &b->ro, 0, a->mem + LOC_OFF, 8, 1) == -ENOTCONN,
	      "nothing goes while connecting: -ENOTCONN");
	CHECK(tp_mem_net_next(s->net) == 100, "the request is due after one latency");
	run(s, 1000);
	r = nth(s, 0, 0, TP_EV_CONNECTED, 0);
	pc = nth(s, 0, 1, TP_EV_PEER_CONNECTED, 0);
	CHECK(pc && pc->peer == 1 && pc->at == 100,
	      "the listener: PEER_CONNECTED from node 1 at 100");
	CHECK(r && r->at == 200 && r->status == 0 && r->peer == 2 && same_remote(r->win, b->status),
	      "the connector: CONNECTED at 200 with node 2's status window");
	CHECK(count(s, 0, 0, 0) == 1 && count(s, 0, 1, 0) == 1, "nothing else");
	CHECK(tp_connect(a->tp) == -EALREADY, "connect while up: -EALREADY");

	/* Nobody there. */
	mark = s->nrec;
	CHECK(tp_connect(c->tp) == 0, "connect to an address nobody listens at");
	run_for(s, 1000);
	r = nth(s, mark, 2, TP_EV_CONNECT_FAILED, 0);
	CHECK(r && r->status == -ECONNREFUSED && r->at == 1200 && count(s, mark, 2, 0) == 1,
	      "CONNECT_FAILED -ECONNREFUSED after a round trip");
	CHECK(tp_connect(c->tp) == 0, "and it may try again");
	run_for(s, 1000);
	CHECK(count(s, mark, 2, TP_EV_CONNECT_FAILED) == 2, "refused again");

	/* A listener without a status window. */
	d = node_new(s, 3, HOST_C, PORT + 5, HOST_A, PORT, 4, false, true);
	(void)d;
	node_destroy(s, 2);
	c = node_new(s, 2, HOST_C, PORT, HOST_C, PORT + 5, 3, true, false);
	mark = s->nrec;
	tp_connect(c->tp);
	run_for(s, 1000);
	r = nth(s, mark, 2, TP_EV_CONNECT_FAILED, 0);
	CHECK(r && r->status == -ENODEV, "no status window at the listener: -ENODEV");
	CHECK(nth(s, mark, 3, TP_EV_PEER_CONNECTED, 0) && nth(s, mark, 3, TP_EV_PEER_CLOSED, 0) &&
	      count(s, mark, 3, 0) == 2, "that listener saw it come and go");
	tp_mem_net_stats(s->net, &st);
	CHECK(st.connects == 1 && st.in_flight == 0 && st.transports == 4 && st.delivered == 9,
	      "stats: one connection made, %llu deliveries", (unsigned long long)st.delivered);
	sim_free(s);
}

static void test_read_write(void)
{
	struct sim *s = pair(&P_FIXED, false);
	struct node *a = &s->node[0], *b = &s->node[1];
	struct tp_remote big = b->status, bad = b->ro, below = b->status, huge = b->status;
	uint8_t ro_before[4096];
	int mark = s->nrec;
	const struct rec *r;

	memcpy(ro_before, b->mem + RO_OFF, sizeof(ro_before));
	memcpy(a->mem + LOC_OFF, "ABCDEFGH", 8);
	big.len = 8192;
	huge.len = UINT32_MAX;
	bad.rkey ^= 0x5a5a;
	below.addr -= 4096;
	below.len = 8192;
	CHECK(tp_write(a->tp, &b->status, 16, a->mem + LOC_OFF, 8, 1) == 0, "post a WRITE");
	CHECK(tp_read(a->tp, &b->ro, 100, a->mem + LOC_OFF + 100, 32, 2) == 0, "post a READ");
	CHECK(tp_write(a->tp, &b->ro, 0, a->mem + LOC_OFF, 8, 3) == 0,
	      "a WRITE to a read-only window");
	CHECK(tp_read(a->tp, &big, 4090, a->mem + LOC_OFF, 16, 4) == 0,
	      "a READ past a window's end");
	CHECK(tp_read(a->tp, &bad, 0, a->mem + LOC_OFF, 16, 5) == 0, "a READ with a wrong key");
	CHECK(tp_read(a->tp, &b->local, 0, a->mem + LOC_OFF, 16, 6) == 0,
	      "a READ of a local-only region");
	CHECK(tp_write(a->tp, &below, 0, a->mem + LOC_OFF, 8, 7) == 0, "a WRITE below a window");
	CHECK(tp_read(a->tp, &b->status, 0, a->mem + RO_OFF, 8, 8) == 0,
	      "any exposed region of ours serves as a local buffer");
	CHECK(tp_read(a->tp, &b->status, 0, a->mem + NOX_OFF, 8, 9) == -EINVAL &&
	      tp_write(a->tp, &b->status, 0, a->mem + LOC_OFF + 4090, 8, 9) == -EINVAL,
	      "a local buffer outside our regions: -EINVAL");
	CHECK(tp_read(a->tp, &b->status, 0, a->mem + LOC_OFF, 0, 9) == -EINVAL &&
	      tp_read(a->tp, &b->status, 4090, a->mem + LOC_OFF, 8, 9) == -EINVAL &&
	      tp_read(a->tp, &b->status, 5000, a->mem + LOC_OFF, 8, 9) == -EINVAL &&
	      tp_read(a->tp, &huge, 0, a->mem + LOC_OFF, CCM_OP_MAX + 1, 9) == -EINVAL,
	      "a span outside the handle, of no length or over CCM_OP_MAX: -EINVAL at once");
	run_for(s, 1000);
	for (int k = 0; k < 8; k++) {
		static const int want[8] = { 0, 0, -EACCES, -EFAULT, -EINVAL, -EINVAL, -EFAULT, 0 };

		r = nth(s, mark, 0, TP_EV_OP_DONE, k);

		CHECK(r && r->wr_id == (uint64_t)k + 1 && r->status == want[k] &&
		      r->at == s->now - 800, "completion %d: wr %llu, status %d (want %d)", k + 1,
		      r ? (unsigned long long)r->wr_id : 0ull, r ? r->status : 1, want[k]);
	}
	CHECK(count(s, mark, 0, 0) == 8 && count(s, mark, 1, 0) == 0,
	      "eight completions, the target saw nothing");
	CHECK(!memcmp(b->mem + ST_OFF + 16, "ABCDEFGH", 8), "the WRITE landed");
	CHECK(!memcmp(a->mem + LOC_OFF + 100, ro_before + 100, 32), "the READ brought the bytes");
	CHECK(!memcmp(b->mem + RO_OFF, ro_before, sizeof(ro_before)),
	      "the read-only window unchanged");
	CHECK(!memcmp(a->mem + RO_OFF, b->mem + ST_OFF, 8), "read into our read-only window");

	/* Unexposed at the target: the key is gone. */
	mark = s->nrec;
	tp_unexpose(b->tp, &b->ro);
	tp_read(a->tp, &b->ro, 0, a->mem + LOC_OFF, 8, 10);
	run_for(s, 1000);
	r = nth(s, mark, 0, TP_EV_OP_DONE, 0);
	CHECK(r && r->status == -EINVAL, "a READ of an unexposed window: -EINVAL");
	sim_free(s);
}

/* The READ's bytes are the target's at arrival, and the initiator's buffer
 * changes only when the completion arrives. */
static void test_read_dst(void)
{
	struct sim *s = pair(&P_FIXED, false);
	struct node *a = &s->node[0], *b = &s->node[1];
	uint8_t want[64];
	uint64_t t0 = s->now;
	int mark = s->nrec, done = 0;
	bool ok = true;

	memcpy(want, b->mem + RO_OFF, sizeof(want));
	memset(a->mem + LOC_OFF, 0xaa, 64);
	tp_read(a->tp, &b->ro, 0, a->mem + LOC_OFF, 64, 77);
	run(s, t0 + 150);
	CHECK(a->mem[LOC_OFF] == 0xaa && a->mem[LOC_OFF + 63] == 0xaa && count(s, mark, 0, 0) == 0,
	      "served at the target, the answer on its way: dst untouched");
	memset(b->mem + RO_OFF, 0x55, 64);
	run(s, t0 + 199);
	CHECK(a->mem[LOC_OFF] == 0xaa, "still untouched just before");
	run(s, t0 + 200);
	CHECK(nth(s, mark, 0, TP_EV_OP_DONE, 0) && !memcmp(a->mem + LOC_OFF, want, 64),
	      "OP_DONE at 200: the bytes as they were at arrival");

	/* The same, step by step with random delays, over many READs. */
	sim_free(s);
	s = pair(&P_RANDOM, false);
	a = &s->node[0];
	b = &s->node[1];
	for (int k = 0; k < 32; k++)
		memset(a->mem + LOC_OFF + 64 * k, 0xaa, 64);
	memset(b->mem + RO_OFF, 0x11, 4096);
	for (int k = 0; k < 32; k++)
		tp_read(a->tp, &b->ro, 64u * k, a->mem + LOC_OFF + 64 * k, 64, k);
	for (uint64_t t; (t = tp_mem_net_next(s->net)) != UINT64_MAX;) {
		tp_mem_net_advance(s->net, t);
		s->now = t;
		mark = s->nrec;
		pump(s);
		done += count(s, mark, 0, TP_EV_OP_DONE);
		for (int k = done; k < 32; k++)
			ok &= a->mem[LOC_OFF + 64 * k] == 0xaa;
	}
	CHECK(ok && done == 32 && a->mem[LOC_OFF + 64 * 31] == 0x11,
	      "32 READs: no dst changed before its completion was there");
	sim_free(s);
}

/* RC ordering under random delays: WRITEs land and complete in order, and
 * a message is never ahead of a WRITE posted before it. */
static void test_order(void)
{
	struct sim *s = pair(&P_RANDOM, false);
	struct node *a = &s->node[0], *b = &s->node[1];
	int mark = s->nrec, busy = 0, nmsg = 0, rounds = 20;
	uint32_t v = 0;
	bool ok = true;
	uint64_t last_at = 0, first_at = UINT64_MAX;

	for (int r = 0; r < rounds; r++) {
		for (int k = 0; k < 64; k++) {
			uint8_t *src = a->mem + LOC_OFF + 4 * k;

			put32(src, ++v);
			ok &= tp_write(a->tp, &b->status, 0, src, 4, v) == 0;
			/* 4 a round: the send slots are free again by the next. */
			if (k % 16 == 15) {
				ok &= send32(a, v) == 0;
				nmsg++;
			}
		}
		busy += tp_write(a->tp, &b->status, 0, a->mem + LOC_OFF, 4, 0) == -EBUSY;
		run_for(s, 20000);
	}
	CHECK(ok && busy == rounds, "64 posted per round; the 65th: -EBUSY");
	for (int k = 0; k < (int)v; k++) {
		const struct rec *r = nth(s, mark, 0, TP_EV_OP_DONE, k);

		ok &= r && r->wr_id == (uint64_t)k + 1 && r->status == 0;
		if (r && r->at < first_at)
			first_at = r->at;
		if (r && r->at >= last_at)
			last_at = r->at;
		else
			ok = false;
	}
	CHECK(ok && count(s, mark, 0, TP_EV_OP_DONE) == (int)v,
	      "%u completions, all in post order", v);
	CHECK(get32(b->mem + ST_OFF) == v, "the last WRITE landed last (%u)",
	      get32(b->mem + ST_OFF));
	ok = count(s, mark, 1, TP_EV_MESSAGE) == nmsg;
	for (int k = 0; k < nmsg; k++) {
		const struct rec *r = nth(s, mark, 1, TP_EV_MESSAGE, k);

		ok &= r && r->msg_val == 16u * (uint32_t)k + 16 && r->msg_len == 24 &&
		      r->aux >= r->msg_val;
	}
	CHECK(ok, "%d messages in order, each behind the WRITE posted before it", nmsg);
	sim_free(s);
}

static void test_messages(void)
{
	struct sim *s = pair(&P_FIXED, false);
	struct node *a = &s->node[0];
	uint8_t *big = malloc(CCM_MSG_MAX + 1);
	struct tp_event ev[4];
	bool same;

	if (!big)
		abort();
	for (uint32_t k = 0; k <= CCM_MSG_MAX; k++)
		big[k] = (uint8_t)(k * 13);
	CHECK(tp_send(a->tp, big, 0) == -EMSGSIZE &&
	      tp_send(a->tp, big, CCM_MSG_MAX + 1) == -EMSGSIZE,
	      "no message of 0 or over CCM_MSG_MAX bytes: -EMSGSIZE");
	CHECK(tp_send(a->tp, big, CCM_MSG_MAX) == 0 && tp_send(a->tp, big + 1, 1) == 0,
	      "the largest and the smallest");
	memset(big, 0, 2);  /* the sender's buffer is free again at once */
	tp_mem_net_advance(s->net, s->now + 1000);
	CHECK(tp_progress(s->node[1].tp, ev, 4) == 2 && ev[0].type == TP_EV_MESSAGE &&
	      ev[0].msg_len == CCM_MSG_MAX && ev[1].msg_len == 1, "both arrive");
	same = ev[0].msg[0] == 0 && ev[0].msg[1] == 13 && ev[1].msg[0] == 13;
	for (uint32_t k = 2; k < CCM_MSG_MAX; k++)
		same &= ev[0].msg[k] == (uint8_t)(k * 13);
	CHECK(same, "whole, copied when sent");
	CHECK(tp_progress(s->node[1].tp, ev, 4) == 0, "and only once");
	free(big);
	sim_free(s);
}

/* tp_disconnect: everything posted fails in order, then DISCONNECTED; the
 * listener hears of it one latency later.  An abort: what was on its way
 * never arrives. */
static void test_disconnect(void)
{
	struct sim *s = pair(&P_RANDOM, false);
	struct node *a = &s->node[0], *b = &s->node[1];
	uint64_t t0 = s->now;
	int mark = s->nrec;
	bool ok = true;
	const struct rec *r;

	for (int k = 1; k <= 10; k++) {
		put32(a->mem + LOC_OFF, 1000 + (uint32_t)k);
		tp_write(a->tp, &b->status, 0, a->mem + LOC_OFF, 4, (uint64_t)k);
	}
	tp_read(a->tp, &b->ro, 0, a->mem + LOC_OFF + 64, 16, 11);
	send32(a, 4242);
	tp_disconnect(a->tp);
	pump(s);
	for (int k = 0; k < 11; k++) {
		r = nth(s, mark, 0, TP_EV_OP_DONE, k);
		ok &= r && r->wr_id == (uint64_t)k + 1 && r->status == -ECONNABORTED && r->at == t0;
	}
	r = nth(s, mark, 0, TP_EV_DISCONNECTED, 0);
	CHECK(ok && r && r->status == -ECONNABORTED && r == &s->rec[mark + 11],
	      "at once: 11 OP_DONE -ECONNABORTED in order, then DISCONNECTED");
	CHECK(send32(a, 1) == -ENOTCONN, "nothing goes after it");
	run_for(s, 10000);
	CHECK(count(s, mark, 0, 0) == 12, "no late completion at the connector");
	r = nth(s, mark, 1, TP_EV_PEER_CLOSED, 0);
	CHECK(r && r->status == -ECONNRESET && r->at > t0 && !nth(s, mark, 1, TP_EV_MESSAGE, 0) &&
	      count(s, mark, 1, 0) == 1,
	      "the listener: PEER_CLOSED, and nothing of what was on its way (%s)",
	      r ? r->detail : "");
	CHECK(get32(b->mem + ST_OFF) != 1010, "no WRITE on its way lands after the abort");
	mark = s->nrec;
	tp_disconnect(a->tp);
	pump(s);
	CHECK(count(s, mark, 0, 0) == 0, "disconnect when idle: no event");

	/* While connecting: CONNECT_FAILED at once; the request on its way is
	 * aborted with it, so the listener hears nothing. */
	CHECK(tp_connect(a->tp) == 0, "connect again");
	tp_disconnect(a->tp);
	pump(s);
	r = nth(s, mark, 0, TP_EV_CONNECT_FAILED, 0);
	CHECK(r && r->status == -ECONNABORTED && count(s, mark, 0, 0) == 1,
	      "disconnect while connecting: CONNECT_FAILED -ECONNABORTED");
	run_for(s, 10000);
	CHECK(count(s, mark, 0, 0) == 1, "and nothing more");
	CHECK(count(s, mark, 1, 0) == 0, "the listener: nothing");
	mark = s->nrec;
	tp_connect(a->tp);
	run_for(s, 10000);
	CHECK(nth(s, mark, 0, TP_EV_CONNECTED, 0), "and a new connection comes up");
	sim_free(s);
}

/* The newest connection to a listener is the partner's current one. */
static void test_newest(void)
{
	struct sim *s = pair(&P_RANDOM, false);
	struct node *a = &s->node[0], *b = &s->node[1];
	struct node *a2 = node_new(s, 2, HOST_A, PORT + 1, HOST_B, PORT, 1, true, false);
	int mark = s->nrec;
	const struct rec *r;

	tp_connect(a2->tp);
	run_for(s, 5000);
	CHECK(nth(s, mark, 2, TP_EV_CONNECTED, 0) && nth(s, mark, 1, TP_EV_PEER_CONNECTED, 0),
	      "a second connection from node 1");
	mark = s->nrec;
	send32(a, 1);
	put32(a->mem + LOC_OFF, 0xfeed);
	tp_write(a->tp, &b->status, 8, a->mem + LOC_OFF, 4, 5);
	send32(a2, 2);
	run_for(s, 5000);
	r = nth(s, mark, 1, TP_EV_MESSAGE, 0);
	CHECK(r && r->msg_val == 2 && count(s, mark, 1, TP_EV_MESSAGE) == 1,
	      "the older connection's message dropped, the newer's delivered");
	r = nth(s, mark, 0, TP_EV_OP_DONE, 0);
	CHECK(r && r->status == 0 && get32(b->mem + ST_OFF + 8) == 0xfeed,
	      "the older connection's WRITE still served");
	mark = s->nrec;
	tp_disconnect(a->tp);
	run_for(s, 5000);
	CHECK(count(s, mark, 1, 0) == 0, "the older one's close is not reported");
	tp_disconnect(a2->tp);
	run_for(s, 5000);
	CHECK(nth(s, mark, 1, TP_EV_PEER_CLOSED, 0) && count(s, mark, 1, 0) == 1,
	      "the current one's is");
	sim_free(s);
}

/* tp_admit: a stranger (node 3) is refused with -EPERM and named to the
 * listener; the one it already had goes, the partner's stays current. */
static void test_admit(void)
{
	struct sim *s = pair(&P_FIXED, false);
	struct node *a = &s->node[0], *b = &s->node[1];
	struct node *c = node_new(s, 2, HOST_C, PORT, HOST_B, PORT, 3, true, false);
	int mark = s->nrec;
	const struct rec *r;

	tp_connect(c->tp);
	run_for(s, 5000);
	CHECK(nth(s, mark, 2, TP_EV_CONNECTED, 0), "no admit yet: node 3 gets in");
	mark = s->nrec;
	tp_admit(b->tp, 1);
	send32(c, 7);
	send32(a, 8);
	run_for(s, 5000);
	r = nth(s, mark, 1, TP_EV_MESSAGE, 0);
	CHECK(r && r->msg_val == 8 && count(s, mark, 1, TP_EV_MESSAGE) == 1,
	      "admitted node 1: its connection is current again, node 3's message is lost");
	CHECK(nth(s, mark, 2, TP_EV_DISCONNECTED, 0) && count(s, mark, 1, TP_EV_PEER_CLOSED) == 0,
	      "node 3's connection went, unannounced to the listener");
	mark = s->nrec;
	tp_connect(c->tp);
	run_for(s, 5000);
	r = nth(s, mark, 2, TP_EV_CONNECT_FAILED, 0);
	CHECK(r && r->status == -EPERM, "node 3 connecting again: -EPERM (%d)", r ? r->status : 0);
	r = nth(s, mark, 1, TP_EV_REJECTED, 0);
	CHECK(r && r->status == -EPERM && r->peer == 3 && strstr(r->detail, "not our partner"),
	      "the listener hears whom it refused: %s", r ? r->detail : "nothing");
	mark = s->nrec;
	tp_admit(b->tp, 0);
	tp_connect(c->tp);
	run_for(s, 5000);
	CHECK(nth(s, mark, 2, TP_EV_CONNECTED, 0), "admit 0: any node again");
	sim_free(s);
}

static void ring_of(struct auth_keyring *r, const char *text)
{
	memset(r, 0, sizeof(*r));
	r->n = 1;
	r->slot[0].len = (uint32_t)strlen(text);
	memcpy(r->slot[0].bytes, text, r->slot[0].len);
}

/* Node 3 (slot 3) connects to node 2 at C holding keys (NULL: none), and
 * the simulation runs on; the record mark before it is returned. */
static int connect_node3(struct sim *s, const struct auth_keyring *keys)
{
	struct node *c;
	int mark;

	node_destroy(s, 3);
	s->keys = keys;
	c = node_new(s, 3, HOST_A, PORT + 1, HOST_C, PORT, 3, true, false);
	mark = s->nrec;
	tp_connect(c->tp);
	run_for(s, 5000);
	return mark;
}

/* The greeting's outcome with keys: in only with a key the listener
 * holds; otherwise -EACCES on both ends, and never the current one. */
static void test_keys(void)
{
	struct sim *s = pair(&P_FIXED, false);
	struct auth_keyring held, k2;
	const struct rec *r;
	int mark;

	ring_of(&held, "the first key, 16 bytes or more");
	ring_of(&k2, "the second key, 16 bytes or more");
	/* Node 2 listens at C holding the first key; node 3 connects with
	 * the second, then with none. */
	s->keys = &held;
	node_new(s, 2, HOST_C, PORT, HOST_A, PORT, 2, true, true);
	mark = connect_node3(s, &k2);
	r = nth(s, mark, 3, TP_EV_CONNECT_FAILED, 0);
	CHECK(r && r->status == -EACCES, "another key: connect fails -EACCES (%d)", r ? r->status : 0);
	r = nth(s, mark, 2, TP_EV_REJECTED, 0);
	CHECK(r && r->status == -EACCES && r->peer == 3 && strstr(r->detail, "does not prove"),
	      "the listener hears why: %s", r ? r->detail : "nothing");
	CHECK(!nth(s, mark, 2, TP_EV_PEER_CONNECTED, 0), "and never takes it for the partner");
	mark = connect_node3(s, NULL);
	r = nth(s, mark, 2, TP_EV_REJECTED, 0);
	CHECK(r && r->status == -EACCES && strstr(r->detail, "no pre-shared key"),
	      "no key: refused, and said so: %s", r ? r->detail : "nothing");
	/* Rotation: the listener's keys change in place; the second key is
	 * now accepted too, and the same node gets in. */
	held.slot[1] = k2.slot[0];
	held.n = 2;
	mark = connect_node3(s, &k2);
	CHECK(nth(s, mark, 3, TP_EV_CONNECTED, 0) && nth(s, mark, 2, TP_EV_PEER_CONNECTED, 0),
	      "a key in the listener's second slot: connected");
	sim_free(s);
}

/* Cut shorter than detect_us: late, but whole and in order. */
static void test_cut_short(void)
{
	struct sim *s = pair(&P_RANDOM, false);
	struct node *a = &s->node[0], *b = &s->node[1];
	struct tp_mem_stats st;
	bool ok = true;

	for (int round = 0; round < 2; round++) {
		int mark = s->nrec;
		uint64_t restored;

		tp_mem_net_cut(s->net, HOST_B, true);
		run_for(s, 50);
		for (uint32_t k = 1; k <= 8; k++) {
			put32(a->mem + LOC_OFF + 4 * k, 100 * (uint32_t)round + k);
			tp_write(a->tp, &b->status, 0, a->mem + LOC_OFF + 4 * k, 4, k);
			if (k % 2 == 0)
				send32(a, 100 * (uint32_t)round + k);
		}
		run_for(s, 4900);
		tp_mem_net_stats(s->net, &st);
		CHECK(count(s, mark, 0, 0) == 0 && count(s, mark, 1, 0) == 0 && st.in_flight == 12,
		      "round %d: cut for 4.9 ms: nothing arrives, all 12 wait", round);
		tp_mem_net_cut(s->net, HOST_B, false);
		restored = s->now;
		CHECK(tp_mem_net_next(s->net) == restored, "restored: what waited is due at once");
		run_for(s, 5000);
		for (int k = 0; k < 8; k++) {
			const struct rec *r = nth(s, mark, 0, TP_EV_OP_DONE, k);

			ok &= r && r->wr_id == (uint64_t)k + 1 && r->status == 0 &&
			      r->at >= restored;
		}
		for (int k = 0; k < 4; k++) {
			const struct rec *r = nth(s, mark, 1, TP_EV_MESSAGE, k);

			ok &= r && r->msg_val == 100u * (uint32_t)round + 2 * (uint32_t)k + 2 &&
			      r->aux >= r->msg_val;
		}
		CHECK(ok && count(s, mark, 0, 0) == 8 && count(s, mark, 1, 0) == 4 &&
		      get32(b->mem + ST_OFF) == 100u * (uint32_t)round + 8,
		      "round %d: everything arrives after the restore, in order", round);
	}
	tp_mem_net_stats(s->net, &st);
	CHECK(st.failures == 0, "two cuts of 4.95 ms, 5 ms apart: no failure (the clock restarts)");
	sim_free(s);
}

/* Cut longer than detect_us with something outstanding: both ends fail. */
static void test_cut_long(void)
{
	struct sim *s = pair(&P_RANDOM, true);
	struct node *a = &s->node[0], *b = &s->node[1], *c;
	uint32_t before = get32(b->mem + ST_OFF + 32);
	uint64_t t0;
	int mark = s->nrec;
	const struct rec *r;
	struct tp_mem_stats st;

	tp_mem_net_cut(s->net, HOST_B, true);
	run_for(s, 3000);
	t0 = s->now;
	CHECK(count(s, mark, 0, 0) == 0 && count(s, mark, 1, 0) == 0,
	      "a cut with nothing outstanding: nothing happens");
	put32(a->mem + LOC_OFF, 0xdead);
	tp_read(a->tp, &b->ro, 0, a->mem + LOC_OFF + 8, 8, 1);
	tp_write(a->tp, &b->status, 32, a->mem + LOC_OFF, 4, 2);
	run(s, t0 + 4999);
	CHECK(count(s, mark, 0, 0) == 0 && count(s, mark, 1, 0) == 0, "nothing before detect_us");
	CHECK(tp_mem_net_next(s->net) == t0 + 5000, "the failure is what is next");
	run(s, t0 + 5000);
	r = nth(s, mark, 0, TP_EV_OP_DONE, 0);
	CHECK(r && r->wr_id == 1 && r->status == -ETIMEDOUT && r->at == t0 + 5000 &&
	      nth(s, mark, 0, TP_EV_OP_DONE, 1) && nth(s, mark, 0, TP_EV_OP_DONE, 1)->wr_id == 2,
	      "the connector: its operations fail -ETIMEDOUT in order");
	r = nth(s, mark, 0, TP_EV_DISCONNECTED, 0);
	CHECK(r && r->status == -ETIMEDOUT && r == nth(s, mark, 0, 0, 2) &&
	      count(s, mark, 0, 0) == 3, "then DISCONNECTED -ETIMEDOUT");
	r = nth(s, mark, 1, TP_EV_PEER_CLOSED, 0);
	CHECK(r && r->status == -ETIMEDOUT && r->at == t0 + 5000 && count(s, mark, 1, 0) == 1,
	      "the listener: PEER_CLOSED -ETIMEDOUT at the same time (%s)", r ? r->detail : "");
	run_for(s, 50000);
	CHECK(count(s, mark, 1, 0) == 1 && count(s, mark, 0, 0) == 3,
	      "B's idle connection to A survives a long cut");

	/* A connection request into the cut. */
	c = node_new(s, 2, HOST_C, PORT, HOST_B, PORT, 3, true, false);
	mark = s->nrec;
	t0 = s->now;
	tp_connect(c->tp);
	run_for(s, 20000);
	r = nth(s, mark, 2, TP_EV_CONNECT_FAILED, 0);
	CHECK(r && r->status == -ETIMEDOUT && r->at == t0 + 5000 && count(s, mark, 1, 0) == 0,
	      "connect into a cut: CONNECT_FAILED -ETIMEDOUT after detect_us");
	tp_mem_net_cut(s->net, HOST_B, false);
	run_for(s, 20000);
	CHECK(get32(b->mem + ST_OFF + 32) == before, "restored: the failed WRITE never lands");
	mark = s->nrec;
	tp_read(b->tp, &a->ro, 0, b->mem + LOC_OFF, 8, 9);
	tp_connect(a->tp);
	run_for(s, 5000);
	CHECK(nth(s, mark, 1, TP_EV_OP_DONE, 0) && nth(s, mark, 1, TP_EV_OP_DONE, 0)->status == 0 &&
	      nth(s, mark, 0, TP_EV_CONNECTED, 0), "restored: B's READ works, A reconnects");
	tp_mem_net_stats(s->net, &st);
	CHECK(st.failures == 2 && st.in_flight == 0, "stats: two failures");
	sim_free(s);
}

/* A frozen node: over tcp its CPU serves nothing; an RDMA NIC serves
 * READ and WRITE anyway.  Messages to it queue up. */
static void test_freeze(void)
{
	struct tp_mem_params p = P_RANDOM;
	struct sim *s = pair(&p, false);
	struct node *a = &s->node[0], *b = &s->node[1], *c;
	int mark = s->nrec;
	uint64_t thawed;
	const struct rec *r;
	bool ok = true;

	freeze(s, 1, 2, true);
	tp_read(a->tp, &b->ro, 0, a->mem + LOC_OFF, 8, 1);
	send32(a, 5);
	run_for(s, 100000);
	CHECK(count(s, mark, 0, 0) == 0 && count(s, mark, 1, 0) == 0,
	      "tcp: a frozen node serves no READ (and the message waits behind it)");
	freeze(s, 1, 2, false);
	thawed = s->now;
	run_for(s, 5000);
	r = nth(s, mark, 0, TP_EV_OP_DONE, 0);
	CHECK(r && r->status == 0 && r->at > thawed && nth(s, mark, 1, TP_EV_MESSAGE, 0),
	      "thawed: served, and the message arrives");

	/* Messages alone do not wait: they queue, more than a tp_evq holds. */
	mark = s->nrec;
	freeze(s, 1, 2, true);
	for (uint32_t k = 0; k < 4; k++)
		ok &= send32(a, k) == 0;
	ok &= send32(a, 4) == -EBUSY;
	run_for(s, 100000);
	CHECK(ok && count(s, mark, 1, 0) == 0,
	      "4 messages on their way to a frozen node; the 5th: -EBUSY (rdma's send slots)");
	freeze(s, 1, 2, false);
	for (int k = 0; k < 4; k++) {
		r = nth(s, mark, 1, TP_EV_MESSAGE, k);
		ok &= r && r->msg_val == (uint32_t)k && r->at == s->now;
	}
	CHECK(ok && count(s, mark, 1, 0) == 4, "thawed: all 4 there at once, in order");
	/* Landed: the slots are free again. */
	for (uint32_t k = 0; k < 4; k++)
		ok &= send32(a, 10 + k) == 0;
	CHECK(ok && send32(a, 14) == -EBUSY, "landed, 4 more go; the 5th: -EBUSY");
	sim_free(s);

	p.nic_serves = true;
	s = pair(&p, false);
	a = &s->node[0];
	b = &s->node[1];
	c = node_new(s, 2, HOST_C, PORT, HOST_B, PORT, 3, true, false);
	mark = s->nrec;
	freeze(s, 1, 2, true);
	tp_read(a->tp, &b->ro, 0, a->mem + LOC_OFF + 64, 8, 1);
	tp_write(a->tp, &b->status, 0, a->mem + LOC_OFF, 8, 2);
	tp_connect(c->tp);
	run_for(s, 100000);
	CHECK(nth(s, mark, 0, TP_EV_OP_DONE, 1) && nth(s, mark, 0, TP_EV_OP_DONE, 1)->status == 0 &&
	      !memcmp(b->mem + ST_OFF, a->mem + LOC_OFF, 8),
	      "rdma: the NIC serves READ and WRITE of a frozen node");
	CHECK(count(s, mark, 2, 0) == 0, "but a connection request waits for its CPU");
	freeze(s, 1, 2, false);
	thawed = s->now;
	run_for(s, 5000);
	r = nth(s, mark, 2, TP_EV_CONNECTED, 0);
	CHECK(r && r->at > thawed && nth(s, mark, 1, TP_EV_PEER_CONNECTED, 0),
	      "thawed: the connection is accepted");
	sim_free(s);
}

/* A destroyed end: the other side's connections fail after detect_us;
 * nothing the dead node had sent arrives any more. */
static void test_destroy(void)
{
	struct sim *s = pair(&P_RANDOM, true);
	struct node *a = &s->node[0], *b = &s->node[1];
	struct tp_remote b_ro = b->ro;
	int mark = s->nrec;
	uint64_t t0 = s->now;
	const struct rec *r;
	struct tp_mem_stats st;

	tp_read(a->tp, &b->ro, 0, a->mem + LOC_OFF, 8, 1);
	tp_write(a->tp, &b->status, 0, a->mem + LOC_OFF, 8, 2);
	send32(b, 31337);
	node_destroy(s, 1);
	run(s, t0 + 2000);
	CHECK(tp_read(a->tp, &b_ro, 0, a->mem + LOC_OFF + 64, 8, 3) == 0,
	      "the partner destroyed, we do not know yet: a READ posts");
	run(s, t0 + 4999);
	r = nth(s, mark, 0, TP_EV_MESSAGE, 0);
	CHECK(!r && count(s, mark, 0, 0) == 0,
	      "nothing the destroyed node sent arrives; nothing else yet");
	run(s, t0 + 5000);
	CHECK(nth(s, mark, 0, TP_EV_OP_DONE, 0) && nth(s, mark, 0, TP_EV_OP_DONE, 0)->wr_id == 1 &&
	      nth(s, mark, 0, TP_EV_OP_DONE, 0)->status == -ECONNRESET &&
	      nth(s, mark, 0, TP_EV_OP_DONE, 1) && nth(s, mark, 0, TP_EV_OP_DONE, 1)->wr_id == 2 &&
	      nth(s, mark, 0, TP_EV_OP_DONE, 2) && nth(s, mark, 0, TP_EV_OP_DONE, 2)->wr_id == 3 &&
	      nth(s, mark, 0, TP_EV_OP_DONE, 2)->status == -ECONNRESET,
	      "after detect_us: the operations fail -ECONNRESET in order");
	r = nth(s, mark, 0, TP_EV_DISCONNECTED, 0);
	CHECK(r && r->status == -ECONNRESET && r->at == t0 + 5000 && r == nth(s, mark, 0, 0, 3),
	      "then DISCONNECTED");
	r = nth(s, mark, 0, TP_EV_PEER_CLOSED, 0);
	CHECK(r && r->at == t0 + 5000 && count(s, mark, 0, 0) == 5,
	      "and the dead node's connection to us closes (%s)", r ? r->detail : "");

	/* It comes back at the same address. */
	b = node_new(s, 1, HOST_B, PORT, HOST_A, PORT, 2, true, true);
	mark = s->nrec;
	tp_connect(a->tp);
	tp_connect(b->tp);
	run_for(s, 5000);
	r = nth(s, mark, 0, TP_EV_CONNECTED, 0);
	CHECK(r && same_remote(r->win, b->status) && nth(s, mark, 1, TP_EV_CONNECTED, 0),
	      "a restarted node listens at the same address; both connect");

	/* The connector dies: the listener's side closes after detect_us. */
	mark = s->nrec;
	t0 = s->now;
	node_destroy(s, 0);
	run_for(s, 20000);
	r = nth(s, mark, 1, TP_EV_PEER_CLOSED, 0);
	CHECK(r && r->at == t0 + 5000 && nth(s, mark, 1, TP_EV_DISCONNECTED, 0) &&
	      nth(s, mark, 1, TP_EV_DISCONNECTED, 0)->at == t0 + 5000 && count(s, mark, 1, 0) == 2,
	      "the other end: DISCONNECTED and PEER_CLOSED after detect_us");
	tp_mem_net_stats(s->net, &st);
	CHECK(st.transports == 1 && st.in_flight == 0 && st.failures == 4,
	      "stats: one transport, four failures (%llu)", (unsigned long long)st.failures);
	sim_free(s);

	/* Against the contract, the network first: nothing is touched after. */
	s = pair(&P_RANDOM, true);
	tp_read(s->node[0].tp, &s->node[1].ro, 0, s->node[0].mem + LOC_OFF, 8, 1);
	send32(&s->node[1], 1);
	tp_mem_net_destroy(s->net);
	s->net = NULL;
	CHECK(tp_connect(s->node[0].tp) == -ENETDOWN && send32(&s->node[0], 1) == -ENOTCONN,
	      "the network gone first: its transports are idle");
	for (int i = 0; i < NODES; i++)
		node_destroy(s, i);
	free(s);
}

/* One scenario with everything in it; the trace of (time, node, event,
 * wr_id, status, message) must depend on the seed alone. */
static int scenario(uint64_t seed, struct rec *out, int max)
{
	struct tp_mem_params p = { .seed = seed, .min_us = 5, .max_us = 500, .detect_us = 3000 };
	struct sim *s = sim_new(&p);
	uint64_t act = 12345;  /* the actions' own generator: the same in every run */
	uint32_t v = 0;
	int n;

	node_new(s, 0, HOST_A, PORT, HOST_B, PORT, 1, true, true);
	node_new(s, 1, HOST_B, PORT, HOST_A, PORT, 2, true, true);
	for (int step = 0; step < 400; step++) {
		int i = step & 1, from = s->nrec;
		struct node *me = &s->node[i], *peer = &s->node[1 - i];

		act = act * 6364136223846793005ull + 1442695040888963407ull;
		switch ((act >> 33) % 10) {
		case 0:
			tp_connect(me->tp);
			break;
		case 1:
		case 2:
			tp_write(me->tp, &peer->status, (act >> 20) % 1024, me->mem + LOC_OFF, 8,
				 ++v);
			break;
		case 3:
		case 4:
			tp_read(me->tp, &peer->ro, (act >> 20) % 1024, me->mem + LOC_OFF + 64, 16,
				++v);
			break;
		case 5:
		case 6:
			send32(me, ++v);
			break;
		case 7:
			tp_mem_net_cut(s->net, HOST_B, (act >> 40) & 1);
			break;
		case 8:
			freeze(s, 1, 2, (act >> 40) & 1);
			break;
		default:
			if ((act >> 40) % 8 == 0)
				tp_disconnect(me->tp);
			break;
		}
		run_for(s, (act >> 45) % 700);
		/* As the session does: a link down is connected again. */
		for (int j = from; j < s->nrec; j++)
			if (s->rec[j].type == TP_EV_DISCONNECTED ||
			    s->rec[j].type == TP_EV_CONNECT_FAILED)
				tp_connect(s->node[s->rec[j].node].tp);
	}
	tp_mem_net_cut(s->net, HOST_B, false);
	freeze(s, 1, 2, false);
	run_for(s, 100000);
	n = s->nrec < max ? s->nrec : max;
	memcpy(out, s->rec, sizeof(*out) * (size_t)n);
	sim_free(s);
	return n;
}

static bool same_trace(const struct rec *x, int nx, const struct rec *y, int ny)
{
	if (nx != ny)
		return false;
	for (int k = 0; k < nx; k++)
		if (x[k].at != y[k].at || x[k].node != y[k].node || x[k].type != y[k].type ||
		    x[k].wr_id != y[k].wr_id || x[k].status != y[k].status ||
		    x[k].msg_val != y[k].msg_val)
			return false;
	return true;
}

static void test_determinism(void)
{
	struct rec *t1 = calloc(RECS_MAX, sizeof(*t1)), *t2 = calloc(RECS_MAX, sizeof(*t2));
	int n1 = scenario(42, t1, RECS_MAX), n2 = scenario(42, t2, RECS_MAX), kinds = 0;
	bool seen[TP_EV_REJECTED + 1] = { false };

	for (int k = 0; k < n1; k++)
		seen[t1[k].type] = true;
	for (int k = 0; k <= TP_EV_REJECTED; k++)
		kinds += seen[k];
	CHECK(n1 > 200 && kinds >= 7, "the scenario made %d events of %d kinds", n1, kinds);
	CHECK(same_trace(t1, n1, t2, n2), "same seed: the same trace, event for event");
	n2 = scenario(43, t2, RECS_MAX);
	CHECK(!same_trace(t1, n1, t2, n2), "another seed: another trace (%d events)", n2);
	free(t1);
	free(t2);
}

int main(void)
{
	test_basics();
	test_connect();
	test_read_write();
	test_read_dst();
	test_order();
	test_messages();
	test_disconnect();
	test_newest();
	test_admit();
	test_keys();
	test_cut_short();
	test_cut_long();
	test_freeze();
	test_destroy();
	test_determinism();
	return check_done();
}
