/* Unit tests of the handshake state machine (lib/proto/hs.c):
 *   1. every (state, event) pair against a table written out by hand;
 *   2. an exhaustive exploration of two machines and their environment
 *      (a small explicit-state model checker);
 *   3. scenarios as plain sequences of environment steps. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "proto/hs.h"

#define MY_EPOCH   1
#define PEER_EPOCH 10

/* ---- 1. the transition table ------------------------------------------ */

/* The machine built into each state through the public API. */
enum config {
	C_INIT, C_READ1, C_WRITE2, C_WAIT3, C_READ4, C_WRITE5, C_WRITE5_WROTE,
	C_CONNECTED, C_ERROR, C_NCONFIGS
};

static const char *const config_name[C_NCONFIGS] = {
	"init", "read1", "write2", "wait3", "read4", "write5 (writing)",
	"write5 (wrote, waiting)", "connected", "error",
};

/* Events, with payloads chosen to reach every branch: the nine event types,
 * READ_OK and MAILBOX in several variants, and an unknown type. */
enum variant {
	V_START, V_READ_OK, V_READ_OK_OTHER, V_READ_FAIL, V_WRITE_OK,
	V_WRITE_FAIL, V_MBOX_2, V_MBOX_5, V_MBOX_6, V_MBOX_5_OTHER,
	V_MBOX_STALE, V_MBOX_NOEPOCH, V_TIMEOUT, V_BACKOFF_DONE, V_PEER_LOST,
	V_UNKNOWN, V_NVARIANTS
};

static const char *const variant_name[V_NVARIANTS] = {
	"start", "read-ok (same epoch)", "read-ok (other epoch)", "read-fail",
	"write-ok", "write-fail", "mailbox 2", "mailbox 5", "mailbox 6",
	"mailbox 5 from another epoch", "mailbox to a stale epoch of ours",
	"mailbox from epoch 0", "timeout", "backoff-done", "peer-lost",
	"unknown event type",
};

static struct hs_event variant_event(enum variant v, uint32_t seq)
{
	static const struct {
		int type;
		uint8_t state;
		uint64_t from, to;
	} ev[V_NVARIANTS] = {
		[V_START] = { HS_EV_START, 0, 0, 0 },
		[V_READ_OK] = { HS_EV_READ_OK, 3, PEER_EPOCH, 0 },
		[V_READ_OK_OTHER] = { HS_EV_READ_OK, 1, PEER_EPOCH + 1, 0 },
		[V_READ_FAIL] = { HS_EV_READ_FAIL, 0, 0, 0 },
		[V_WRITE_OK] = { HS_EV_WRITE_OK, 0, 0, 0 },
		[V_WRITE_FAIL] = { HS_EV_WRITE_FAIL, 0, 0, 0 },
		[V_MBOX_2] = { HS_EV_MAILBOX, 2, PEER_EPOCH, MY_EPOCH },
		[V_MBOX_5] = { HS_EV_MAILBOX, 5, PEER_EPOCH, MY_EPOCH },
		[V_MBOX_6] = { HS_EV_MAILBOX, 6, PEER_EPOCH, MY_EPOCH },
		[V_MBOX_5_OTHER] = { HS_EV_MAILBOX, 5, PEER_EPOCH + 1, MY_EPOCH },
		[V_MBOX_STALE] = { HS_EV_MAILBOX, 5, PEER_EPOCH, MY_EPOCH + 1 },
		[V_MBOX_NOEPOCH] = { HS_EV_MAILBOX, 5, 0, MY_EPOCH },
		[V_TIMEOUT] = { HS_EV_TIMEOUT, 0, 0, 0 },
		[V_BACKOFF_DONE] = { HS_EV_BACKOFF_DONE, 0, 0, 0 },
		[V_PEER_LOST] = { HS_EV_PEER_LOST, 0, 0, 0 },
		[V_UNKNOWN] = { 99, 0, 0, 0 },
	};
	struct hs_event e = {
		.type = (enum hs_event_type)ev[v].type,
		.seq = seq,
		.peer_state = ev[v].state,
		.peer_epoch = ev[v].from,
		.to_epoch = ev[v].to,
	};
	return e;
}

static void feed(struct hs *m, enum variant v)
{
	struct hs_event e = variant_event(v, m->seq);
	struct hs_actions a;

	hs_step(m, &e, &a);
}

static void build(struct hs *m, enum config c)
{
	static const enum variant path[C_NCONFIGS][6] = {
		[C_INIT] = { V_NVARIANTS },
		[C_READ1] = { V_START, V_NVARIANTS },
		[C_WRITE2] = { V_START, V_READ_OK, V_NVARIANTS },
		[C_WAIT3] = { V_START, V_READ_FAIL, V_NVARIANTS },
		[C_READ4] = { V_START, V_READ_OK, V_WRITE_OK, V_NVARIANTS },
		[C_WRITE5] = { V_START, V_READ_OK, V_WRITE_OK, V_READ_OK, V_NVARIANTS },
		[C_WRITE5_WROTE] = { V_START, V_READ_OK, V_WRITE_OK, V_READ_OK,
				     V_WRITE_OK, V_NVARIANTS },
		[C_CONNECTED] = { V_START, V_READ_OK, V_WRITE_OK, V_READ_OK,
				  V_WRITE_OK, V_MBOX_5 },
		[C_ERROR] = { V_START, V_READ_OK, V_WRITE_FAIL, V_NVARIANTS },
	};
	int i;

	hs_init(m, MY_EPOCH, NULL);
	for (i = 0; i < 6 && path[c][i] != V_NVARIANTS; i++)
		feed(m, path[c][i]);
}

/* Flags, short: R read, W write, T wait (timer), B backoff, E report,
 * C connected, P publish.  arg is the value written for W, the error for E. */
#define R HS_ACT_READ
#define W HS_ACT_WRITE
#define T HS_ACT_WAIT
#define B HS_ACT_BACKOFF
#define E HS_ACT_REPORT
#define C HS_ACT_CONNECTED
#define P HS_ACT_PUBLISH

struct outcome {
	int state;          /* -1: stays where it is */
	unsigned flags;
	int arg;
};

#define SAME { -1, 0, 0 }
#define TO(s, f, a) { s, f, a }
#define ERR(cause) { HS_ERROR, E | B | P, cause }

static const struct outcome table[C_NCONFIGS][V_NVARIANTS] = {
	[C_INIT] = {
		[V_START] = TO(HS_READ1, R | P, 0),
		[V_READ_OK] = SAME, [V_READ_OK_OTHER] = SAME, [V_READ_FAIL] = SAME,
		[V_WRITE_OK] = SAME, [V_WRITE_FAIL] = SAME, [V_MBOX_2] = SAME,
		[V_MBOX_5] = SAME, [V_MBOX_6] = SAME, [V_MBOX_5_OTHER] = SAME,
		[V_MBOX_STALE] = SAME, [V_MBOX_NOEPOCH] = SAME, [V_TIMEOUT] = SAME,
		[V_BACKOFF_DONE] = SAME, [V_PEER_LOST] = SAME, [V_UNKNOWN] = SAME,
	},
	[C_READ1] = {
		[V_START] = SAME,
		[V_READ_OK] = TO(HS_WRITE2, W | P, 2),
		[V_READ_OK_OTHER] = TO(HS_WRITE2, W | P, 2),
		[V_READ_FAIL] = TO(HS_WAIT3, T | P, 0),
		[V_WRITE_OK] = SAME, [V_WRITE_FAIL] = SAME, [V_MBOX_2] = SAME,
		[V_MBOX_5] = SAME, [V_MBOX_6] = SAME, [V_MBOX_5_OTHER] = SAME,
		[V_MBOX_STALE] = SAME, [V_MBOX_NOEPOCH] = SAME, [V_TIMEOUT] = SAME,
		[V_BACKOFF_DONE] = SAME, [V_PEER_LOST] = SAME, [V_UNKNOWN] = SAME,
	},
	[C_WRITE2] = {
		[V_START] = SAME, [V_READ_OK] = SAME, [V_READ_OK_OTHER] = SAME,
		[V_READ_FAIL] = SAME,
		[V_WRITE_OK] = TO(HS_READ4, R | P, 0),
		[V_WRITE_FAIL] = ERR(HS_ERR_WRITE_FAILED),
		[V_MBOX_2] = SAME, [V_MBOX_5] = SAME, [V_MBOX_6] = SAME,
		[V_MBOX_5_OTHER] = SAME, [V_MBOX_STALE] = SAME,
		[V_MBOX_NOEPOCH] = SAME, [V_TIMEOUT] = SAME,
		[V_BACKOFF_DONE] = SAME, [V_PEER_LOST] = SAME, [V_UNKNOWN] = SAME,
	},
	[C_WAIT3] = {
		[V_START] = SAME, [V_READ_OK] = SAME, [V_READ_OK_OTHER] = SAME,
		[V_READ_FAIL] = SAME, [V_WRITE_OK] = SAME, [V_WRITE_FAIL] = SAME,
		[V_MBOX_2] = SAME,
		[V_MBOX_5] = TO(HS_READ4, R | P, 0),
		[V_MBOX_6] = TO(HS_READ4, R | P, 0),
		[V_MBOX_5_OTHER] = TO(HS_READ4, R | P, 0),
		[V_MBOX_STALE] = SAME, [V_MBOX_NOEPOCH] = SAME,
		[V_TIMEOUT] = TO(HS_READ1, R | P, 0),
		[V_BACKOFF_DONE] = SAME, [V_PEER_LOST] = SAME, [V_UNKNOWN] = SAME,
	},
	[C_READ4] = {
		[V_START] = SAME,
		[V_READ_OK] = TO(HS_WRITE5, W | P, 5),
		[V_READ_OK_OTHER] = ERR(HS_ERR_PEER_RESTARTED),
		[V_READ_FAIL] = ERR(HS_ERR_READ_FAILED),
		[V_WRITE_OK] = SAME, [V_WRITE_FAIL] = SAME, [V_MBOX_2] = SAME,
		[V_MBOX_5] = SAME, [V_MBOX_6] = SAME,
		[V_MBOX_5_OTHER] = ERR(HS_ERR_PEER_RESTARTED),
		[V_MBOX_STALE] = SAME, [V_MBOX_NOEPOCH] = SAME, [V_TIMEOUT] = SAME,
		[V_BACKOFF_DONE] = SAME, [V_PEER_LOST] = SAME, [V_UNKNOWN] = SAME,
	},
	[C_WRITE5] = {
		[V_START] = SAME, [V_READ_OK] = SAME, [V_READ_OK_OTHER] = SAME,
		[V_READ_FAIL] = SAME,
		[V_WRITE_OK] = TO(-1, T, 0),
		[V_WRITE_FAIL] = ERR(HS_ERR_WRITE_FAILED),
		[V_MBOX_2] = SAME, [V_MBOX_5] = SAME, [V_MBOX_6] = SAME,
		[V_MBOX_5_OTHER] = ERR(HS_ERR_PEER_RESTARTED),
		[V_MBOX_STALE] = SAME, [V_MBOX_NOEPOCH] = SAME, [V_TIMEOUT] = SAME,
		[V_BACKOFF_DONE] = SAME, [V_PEER_LOST] = SAME, [V_UNKNOWN] = SAME,
	},
	[C_WRITE5_WROTE] = {
		[V_START] = SAME, [V_READ_OK] = SAME, [V_READ_OK_OTHER] = SAME,
		[V_READ_FAIL] = SAME, [V_WRITE_OK] = SAME, [V_WRITE_FAIL] = SAME,
		[V_MBOX_2] = SAME,
		[V_MBOX_5] = TO(HS_CONNECTED, C | W | P, 6),
		[V_MBOX_6] = TO(HS_CONNECTED, C | W | P, 6),
		[V_MBOX_5_OTHER] = ERR(HS_ERR_PEER_RESTARTED),
		[V_MBOX_STALE] = SAME, [V_MBOX_NOEPOCH] = SAME,
		[V_TIMEOUT] = ERR(HS_ERR_PEER_SILENT),
		[V_BACKOFF_DONE] = SAME, [V_PEER_LOST] = SAME, [V_UNKNOWN] = SAME,
	},
	[C_CONNECTED] = {
		[V_START] = SAME, [V_READ_OK] = SAME, [V_READ_OK_OTHER] = SAME,
		[V_READ_FAIL] = SAME, [V_WRITE_OK] = SAME, [V_WRITE_FAIL] = SAME,
		[V_MBOX_2] = SAME, [V_MBOX_5] = SAME, [V_MBOX_6] = SAME,
		[V_MBOX_5_OTHER] = ERR(HS_ERR_PEER_RESTARTED),
		[V_MBOX_STALE] = SAME, [V_MBOX_NOEPOCH] = SAME, [V_TIMEOUT] = SAME,
		[V_BACKOFF_DONE] = SAME,
		[V_PEER_LOST] = ERR(HS_ERR_PEER_LOST),
		[V_UNKNOWN] = SAME,
	},
	[C_ERROR] = {
		[V_START] = SAME, [V_READ_OK] = SAME, [V_READ_OK_OTHER] = SAME,
		[V_READ_FAIL] = SAME, [V_WRITE_OK] = SAME, [V_WRITE_FAIL] = SAME,
		[V_MBOX_2] = SAME, [V_MBOX_5] = SAME, [V_MBOX_6] = SAME,
		[V_MBOX_5_OTHER] = SAME, [V_MBOX_STALE] = SAME,
		[V_MBOX_NOEPOCH] = SAME, [V_TIMEOUT] = SAME,
		[V_BACKOFF_DONE] = TO(HS_READ1, R | P, 0),
		[V_PEER_LOST] = SAME, [V_UNKNOWN] = SAME,
	},
};

#undef R
#undef W
#undef T
#undef B
#undef E
#undef C
#undef P

static const enum hs_state config_state[C_NCONFIGS] = {
	HS_INIT, HS_READ1, HS_WRITE2, HS_WAIT3, HS_READ4, HS_WRITE5, HS_WRITE5,
	HS_CONNECTED, HS_ERROR,
};

static bool hs_equal(const struct hs *a, const struct hs *b)
{
	return a->state == b->state && a->wrote5 == b->wrote5 &&
	       a->my_epoch == b->my_epoch && a->peer_epoch == b->peer_epoch &&
	       a->mbox_state == b->mbox_state && a->mbox_epoch == b->mbox_epoch &&
	       a->seq == b->seq && a->errors == b->errors &&
	       a->last_error == b->last_error &&
	       memcmp(&a->timing, &b->timing, sizeof(a->timing)) == 0;
}

static bool is_mailbox(enum variant v)
{
	return v >= V_MBOX_2 && v <= V_MBOX_NOEPOCH;
}

static bool carries_seq(enum variant v)
{
	return v != V_START && v != V_PEER_LOST && v != V_UNKNOWN && !is_mailbox(v);
}

static void test_construction(void)
{
	int bad = 0, c;

	for (c = 0; c < C_NCONFIGS; c++) {
		struct hs m;

		build(&m, (enum config)c);
		bad += !EXPECT(m.state == config_state[c] &&
			       m.wrote5 == (c == C_WRITE5_WROTE),
			       "built %s: got %s", config_name[c], hs_state_name(m.state));
	}
	CHECK(bad == 0, "the machine can be driven into each of the 9 configurations");
}

/* One (configuration, event) pair with the seq the machine waits for. */
static int check_pair(enum config c, enum variant v)
{
	const struct outcome *o = &table[c][v];
	enum hs_state want = o->state < 0 ? config_state[c] : (enum hs_state)o->state;
	unsigned expecting = HS_ACT_READ | HS_ACT_WRITE | HS_ACT_WAIT | HS_ACT_BACKOFF;
	struct hs m, before;
	struct hs_event e;
	struct hs_actions a;
	int bad = 0;

	build(&m, c);
	before = m;
	e = variant_event(v, m.seq);
	hs_step(&m, &e, &a);
	bad += !EXPECT(m.state == want && a.flags == o->flags,
		       "%s + %s: state %s flags 0x%x, want %s flags 0x%x",
		       config_name[c], variant_name[v], hs_state_name(m.state),
		       a.flags, hs_state_name(want), o->flags);
	if (a.flags & HS_ACT_WRITE)
		bad += !EXPECT(a.write_state == o->arg, "%s + %s: writes %u, want %d",
			       config_name[c], variant_name[v], a.write_state, o->arg);
	if (a.flags & HS_ACT_REPORT)
		bad += !EXPECT(a.error == (enum hs_error)o->arg && m.last_error == a.error,
			       "%s + %s: reports %s, want %s", config_name[c],
			       variant_name[v], hs_error_name(a.error),
			       hs_error_name((enum hs_error)o->arg));
	else
		bad += !EXPECT(a.error == HS_ERR_NONE, "%s + %s: no report, no error",
			       config_name[c], variant_name[v]);
	if (a.flags & expecting)
		bad += !EXPECT(a.seq == before.seq + 1 && m.seq == a.seq,
			       "%s + %s: a new answer is expected with the next seq",
			       config_name[c], variant_name[v]);
	else
		bad += !EXPECT(m.seq == before.seq, "%s + %s: seq unchanged",
			       config_name[c], variant_name[v]);
	if (o->state < 0 && o->flags == 0 && !is_mailbox(v))
		bad += !EXPECT(hs_equal(&m, &before), "%s + %s: ignored, nothing changes",
			       config_name[c], variant_name[v]);
	if (m.state != before.state)
		bad += !EXPECT(a.flags & HS_ACT_PUBLISH, "%s + %s: state change published",
			       config_name[c], variant_name[v]);
	return bad;
}

/* The same pair with answers of an older and a newer seq: never a change. */
static int check_stale(enum config c, enum variant v)
{
	static const int32_t delta[] = { -1, 1, -1000 };
	int bad = 0;
	size_t i;

	for (i = 0; i < sizeof(delta) / sizeof(delta[0]); i++) {
		struct hs m, before;
		struct hs_event e;
		struct hs_actions a;

		build(&m, c);
		before = m;
		e = variant_event(v, m.seq + (uint32_t)delta[i]);
		hs_step(&m, &e, &a);
		bad += !EXPECT(hs_equal(&m, &before) && a.flags == 0,
			       "%s + %s with seq %+d: ignored", config_name[c],
			       variant_name[v], delta[i]);
	}
	return bad;
}

static void test_table(void)
{
	int bad = 0, stale = 0, c, v;

	for (c = 0; c < C_NCONFIGS; c++)
		for (v = 0; v < V_NVARIANTS; v++) {
			bad += check_pair((enum config)c, (enum variant)v);
			if (carries_seq((enum variant)v))
				stale += check_stale((enum config)c, (enum variant)v);
		}
	CHECK(bad == 0, "all %d (configuration, event) pairs match the table",
	      C_NCONFIGS * V_NVARIANTS);
	CHECK(stale == 0, "answers and timers with a stale seq never change anything");
}

static void test_timing(void)
{
	static const uint32_t want[] = { 100, 200, 400, 800, 1600, 2000, 2000, 2000 };
	struct hs m;
	struct hs_actions a;
	struct hs_event e;
	int bad = 0;
	size_t i;

	CHECK(hs_default_timing.wait3_ms == 1000 && hs_default_timing.wait5_ms == 2000 &&
	      hs_default_timing.backoff_min_ms == 100 &&
	      hs_default_timing.backoff_max_ms == 2000,
	      "default timing is 1000/2000 ms waits, 100..2000 ms back-off");

	build(&m, C_WAIT3);
	CHECK(m.timing.wait3_ms == 1000, "state 3 waits wait3_ms");

	/* Consecutive errors double the back-off up to its maximum. */
	build(&m, C_READ4);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		e = variant_event(V_READ_FAIL, m.seq);
		hs_step(&m, &e, &a);
		bad += !EXPECT(a.flags & HS_ACT_BACKOFF && a.wait_ms == want[i] &&
			       m.errors == i + 1,
			       "error %zu: back-off %u ms, want %u", i + 1, a.wait_ms, want[i]);
		feed(&m, V_BACKOFF_DONE);
		feed(&m, V_READ_OK);
		feed(&m, V_WRITE_OK);
	}
	CHECK(bad == 0, "back-off doubles from 100 ms per consecutive error, capped at 2000 ms");

	for (i = 0; i < 3; i++) {
		static const uint32_t errs[] = { 32, 33, UINT32_MAX };

		build(&m, C_READ4);
		m.errors = errs[i];
		e = variant_event(V_READ_FAIL, m.seq);
		hs_step(&m, &e, &a);
		CHECK(a.wait_ms == 2000 && m.errors >= errs[i],
		      "after %u errors the back-off stays at the maximum (no overflow)",
		      errs[i]);
	}

	build(&m, C_WRITE5);
	m.errors = 5;
	feed(&m, V_WRITE_OK);
	e = variant_event(V_MBOX_5, 0);
	hs_step(&m, &e, &a);
	CHECK(m.state == HS_CONNECTED && m.errors == 0,
	      "connecting resets the error count");

	build(&m, C_WRITE5);
	e = variant_event(V_WRITE_OK, m.seq);
	hs_step(&m, &e, &a);
	CHECK(a.flags == HS_ACT_WAIT && a.wait_ms == 2000,
	      "state 5 waits wait5_ms for the confirmation");
}

/* The mailbox is level-triggered: what was recorded before counts. */
static void test_level_triggered(void)
{
	struct hs m;
	struct hs_event e;
	struct hs_actions a;

	build(&m, C_READ1);
	feed(&m, V_MBOX_5);
	e = variant_event(V_READ_FAIL, m.seq);
	hs_step(&m, &e, &a);
	CHECK(m.state == HS_READ4 && m.peer_epoch == PEER_EPOCH &&
	      a.flags == (HS_ACT_READ | HS_ACT_PUBLISH),
	      "entering 3 with a recorded mailbox 5 goes on at once to check its epoch in 4");

	build(&m, C_READ1);
	feed(&m, V_MBOX_6);
	e = variant_event(V_READ_FAIL, m.seq);
	hs_step(&m, &e, &a);
	CHECK(m.state == HS_READ4 && m.peer_epoch == PEER_EPOCH &&
	      a.flags == (HS_ACT_READ | HS_ACT_PUBLISH),
	      "entering 3 with a recorded mailbox 6 goes on at once to check its epoch in 4");
	feed(&m, V_READ_OK);
	e = variant_event(V_WRITE_OK, m.seq);
	hs_step(&m, &e, &a);
	CHECK(m.state == HS_CONNECTED && a.flags & HS_ACT_CONNECTED,
	      "... and, the epoch checked, the partner's 6 confirms our 5");

	/* A crashed partner's last words in our mailbox are not taken for
	 * its new incarnation's: the READ in 4 tells them apart. */
	build(&m, C_WAIT3);
	feed(&m, V_MBOX_6);
	e = variant_event(V_READ_OK_OTHER, m.seq);
	hs_step(&m, &e, &a);
	CHECK(m.state == HS_ERROR && a.error == HS_ERR_PEER_RESTARTED,
	      "state 3 adopting a dead epoch from the mailbox errs in 4, never connects");

	build(&m, C_READ1);
	feed(&m, V_MBOX_2);
	feed(&m, V_READ_FAIL);
	CHECK(m.state == HS_WAIT3, "a recorded mailbox 2 does not move state 3");

	build(&m, C_WRITE5);
	feed(&m, V_MBOX_5);
	e = variant_event(V_WRITE_OK, m.seq);
	hs_step(&m, &e, &a);
	CHECK(m.state == HS_CONNECTED && a.flags & HS_ACT_CONNECTED,
	      "state 5: a confirmation recorded before our write completed counts");

	build(&m, C_ERROR);
	feed(&m, V_MBOX_6);
	feed(&m, V_BACKOFF_DONE);
	CHECK(m.state == HS_READ1 && m.mbox_state == 6 && m.peer_epoch == 0,
	      "error keeps the recorded mailbox; state 1 relearns the partner's epoch");

	build(&m, C_READ1);
	e = variant_event(V_READ_OK, m.seq);
	e.peer_epoch = 0;
	hs_step(&m, &e, &a);
	CHECK(m.state == HS_WAIT3 && m.peer_epoch == 0,
	      "a READ returning epoch 0 (no partner) counts as a failed READ");
}

static void test_names(void)
{
	static const char *const st[HS_NSTATES] = {
		"init", "read1", "write2", "wait3", "read4", "write5", "connected", "error",
	};
	static const char *const ev[HS_NEVENTS] = {
		"start", "read-ok", "read-fail", "write-ok", "write-fail", "mailbox",
		"timeout", "backoff-done", "peer-lost",
	};
	static const char *const er[] = {
		"none", "write-failed", "read-failed", "peer-restarted", "peer-silent",
		"peer-lost",
	};
	int bad = 0, i;

	for (i = 0; i < HS_NSTATES; i++)
		bad += !EXPECT(strcmp(hs_state_name((enum hs_state)i), st[i]) == 0,
			       "state %d is %s", i, st[i]);
	for (i = 0; i < HS_NEVENTS; i++)
		bad += !EXPECT(strcmp(hs_event_name((enum hs_event_type)i), ev[i]) == 0,
			       "event %d is %s", i, ev[i]);
	for (i = 0; i <= HS_ERR_PEER_LOST; i++)
		bad += !EXPECT(strcmp(hs_error_name((enum hs_error)i), er[i]) == 0,
			       "error %d is %s", i, er[i]);
	bad += !EXPECT(hs_state_name((enum hs_state)8) && hs_event_name((enum hs_event_type)9) &&
		       hs_error_name((enum hs_error)6), "out-of-range names are not NULL");
	CHECK(bad == 0, "state, event and error names are the short documented ones");
}

/* ---- 2. the model checker ----------------------------------------------
 *
 * The world: node A (epoch 1, never crashes) and node B (epochs 10, 11, 12:
 * one per incarnation), each with its machine, its status block (own
 * section and mailbox) and what its driver has under way.  Every
 * environment step below may happen in any order; the checker explores
 * every reachable world breadth-first.
 *
 * To keep the world small and finite it is normalised:
 *  - seq numbers are not stored.  Only one answer is ever awaited (each
 *    expecting action bumps the seq, so it supersedes the previous one),
 *    so the driver's current operation or timer carries the machine's seq
 *    and everything older is stale.  A stale timer or READ has no effect at
 *    all (the table above proves stale answers are ignored), so it is
 *    dropped; a stale WRITE can still land in the partner's mailbox, so it
 *    is kept, and as RC queue pairs and TCP both complete in order, it
 *    completes before the current operation.  The machine is rebuilt with
 *    seq = SEQ for each step.
 *  - errors and last_error are not stored: they only size the back-off. */

/* Budgets; larger ones can be tried with -D (the space grows fast). */
#ifndef K_FAULTS
#define K_FAULTS   2     /* transient failures per run */
#endif
#ifndef R_RESTARTS
#define R_RESTARTS 2     /* crashes (each followed by a restart) of B */
#endif
#define SEQ        1000u

enum cur { CUR_NONE, CUR_READ, CUR_WRITE, CUR_WAIT, CUR_BACKOFF };

struct node {
	uint8_t alive, listening, epoch;
	uint8_t st, wrote5, peer, mbst, mbep;   /* the machine */
	uint8_t cur, cur_val, cur_to, broken;   /* the awaited answer */
	uint8_t stale_val, stale_to;            /* stale WRITE; 0: none */
	uint8_t own_st;                         /* own section; 0: unwritten */
	uint8_t mb_st, mb_from, mb_to;          /* mailbox; 0: unwritten */
};

struct world {
	struct node n[2];
	uint8_t faults, restarts;
};

enum { NODE_A, NODE_B };

/* Environment steps; the fault ones are bounded by K_FAULTS or R_RESTARTS. */
enum step {
	S_START, S_LISTEN, S_OP_DONE, S_OP_FAULT, S_OP_FAULT_LANDED,
	S_STALE_DONE, S_STALE_FAULT, S_TIMER, S_MAILBOX, S_PEER_LOST,
	S_PEER_LOST_FAULT, S_CRASH, S_RESTART, S_NSTEPS
};

static const char *const step_name[S_NSTEPS] = {
	"start", "listen", "op completes", "op fails (fault)",
	"write fails but landed (fault)", "stale write completes",
	"stale write lost (fault)", "timer fires", "mailbox delivered",
	"peer lost", "link flap: peer lost (fault)", "crash (fault)", "restart",
};

static bool step_is_fault(enum step s)
{
	return s == S_OP_FAULT || s == S_OP_FAULT_LANDED || s == S_STALE_FAULT ||
	       s == S_PEER_LOST_FAULT || s == S_CRASH;
}

/* Violations found while stepping; the first one is kept for the report. */
static struct {
	long steps_checked, reports, two_stale, no_answer, bad_seq;
	char first[200];
} viol;

static void violation(long *counter, const char *what, const struct world *w)
{
	(*counter)++;
	if (!viol.first[0])
		snprintf(viol.first, sizeof(viol.first),
			 "%s (A %s, B %s)", what, hs_state_name(w->n[0].st),
			 hs_state_name(w->n[1].st));
}

static void load(const struct node *x, struct hs *m)
{
	hs_init(m, x->epoch, NULL);
	m->state = (enum hs_state)x->st;
	m->wrote5 = x->wrote5;
	m->peer_epoch = x->peer;
	m->mbox_state = x->mbst;
	m->mbox_epoch = x->mbep;
	m->seq = SEQ;
}

static void save(struct node *x, const struct hs *m)
{
	x->st = (uint8_t)m->state;
	x->wrote5 = m->wrote5;
	x->peer = (uint8_t)m->peer_epoch;
	x->mbst = m->mbox_state;
	x->mbep = (uint8_t)m->mbox_epoch;
}

/* Feed one event to node i's machine and carry out its actions the way the
 * driver does, checking property (d) and the seq discipline on the way. */
static void deliver(struct world *w, int i, struct hs_event ev)
{
	const unsigned expecting = HS_ACT_READ | HS_ACT_WRITE | HS_ACT_WAIT | HS_ACT_BACKOFF;
	struct node *x = &w->n[i];
	struct hs_actions a;
	struct hs m;
	unsigned exp;

	load(x, &m);
	hs_step(&m, &ev, &a);
	viol.steps_checked++;
	if ((m.state == HS_ERROR && x->st != HS_ERROR) !=
	    ((a.flags & HS_ACT_REPORT) && a.error != HS_ERR_NONE))
		violation(&viol.reports, "entered error without a reported cause", w);
	save(x, &m);
	if (a.flags & HS_ACT_PUBLISH)
		x->own_st = x->st;
	exp = a.flags & expecting;
	if (!exp) {
		if (m.seq != SEQ)
			violation(&viol.bad_seq, "seq moved without an action", w);
		return;
	}
	if ((exp & (exp - 1)) || a.seq != SEQ + 1 || m.seq != a.seq)
		violation(&viol.bad_seq, "an expecting action without the next seq", w);
	/* What was awaited until now is stale. */
	if (x->cur == CUR_WRITE && !x->broken) {
		if (x->stale_val)
			violation(&viol.two_stale, "two stale writes outstanding", w);
		x->stale_val = x->cur_val;
		x->stale_to = x->cur_to;
	}
	x->broken = 0;
	x->cur_val = x->cur_to = 0;
	if (exp & HS_ACT_READ) {
		x->cur = CUR_READ;
	} else if (exp & HS_ACT_WRITE) {
		x->cur = CUR_WRITE;
		x->cur_val = a.write_state;
		x->cur_to = (uint8_t)m.peer_epoch;
	} else {
		x->cur = exp & HS_ACT_WAIT ? CUR_WAIT : CUR_BACKOFF;
	}
}

static struct hs_event event(enum hs_event_type t, uint32_t seq)
{
	struct hs_event e = { .type = t, .seq = seq };

	return e;
}

static bool reachable(const struct world *w, int j)
{
	return w->n[j].alive && w->n[j].listening;
}

static void land(struct world *w, int i, uint8_t val, uint8_t to)
{
	struct node *y = &w->n[1 - i];

	y->mb_st = val;
	y->mb_from = w->n[i].epoch;
	y->mb_to = to;
}

static void fresh_node(struct node *x, uint8_t epoch)
{
	memset(x, 0, sizeof(*x));
	x->alive = 1;
	x->epoch = epoch;
}

/* Take step s at node i, if it is enabled; *w is updated in place. */
static bool take(struct world *w, enum step s, int i)
{
	struct node *x = &w->n[i], *y = &w->n[1 - i];
	bool budget = w->faults < K_FAULTS;
	bool op = x->cur == CUR_READ || x->cur == CUR_WRITE;
	struct hs_event e;
	uint8_t val, to;

	if (!x->alive && s != S_RESTART)
		return false;
	switch (s) {
	case S_START:
		if (x->st != HS_INIT)
			return false;
		deliver(w, i, event(HS_EV_START, 0));
		return true;
	case S_LISTEN:
		if (x->listening)
			return false;
		x->listening = 1;
		return true;
	case S_OP_DONE:
	case S_OP_FAULT:
	case S_OP_FAULT_LANDED:
		if (!op || x->stale_val)
			return false;
		if (s != S_OP_DONE && !budget)
			return false;
		if (s == S_OP_FAULT_LANDED &&
		    (x->cur != CUR_WRITE || x->broken || !reachable(w, 1 - i)))
			return false;
		if (s != S_OP_DONE)
			w->faults++;
		if (x->cur == CUR_READ) {
			bool ok = s == S_OP_DONE && !x->broken &&
				  reachable(w, 1 - i) && y->own_st;

			e = event(ok ? HS_EV_READ_OK : HS_EV_READ_FAIL, SEQ);
			if (ok) {
				e.peer_state = y->own_st;
				e.peer_epoch = y->epoch;
			}
		} else {
			bool ok = s == S_OP_DONE && !x->broken && reachable(w, 1 - i);

			if (ok || s == S_OP_FAULT_LANDED)
				land(w, i, x->cur_val, x->cur_to);
			e = event(ok ? HS_EV_WRITE_OK : HS_EV_WRITE_FAIL, SEQ);
		}
		x->cur = CUR_NONE;
		x->cur_val = x->cur_to = x->broken = 0;
		deliver(w, i, e);
		return true;
	case S_STALE_DONE:
	case S_STALE_FAULT:
		if (!x->stale_val || (s == S_STALE_FAULT && !budget))
			return false;
		val = x->stale_val;
		to = x->stale_to;
		x->stale_val = x->stale_to = 0;
		if (s == S_STALE_FAULT)
			w->faults++;
		else if (reachable(w, 1 - i))
			land(w, i, val, to);
		/* Its answer carries an old seq: the machine must ignore it. */
		deliver(w, i, event(HS_EV_WRITE_OK, SEQ - 1));
		return true;
	case S_TIMER:
		if (x->cur != CUR_WAIT && x->cur != CUR_BACKOFF)
			return false;
		e = event(x->cur == CUR_WAIT ? HS_EV_TIMEOUT : HS_EV_BACKOFF_DONE, SEQ);
		x->cur = CUR_NONE;
		deliver(w, i, e);
		return true;
	case S_MAILBOX:
		if (!x->mb_st)
			return false;
		e = event(HS_EV_MAILBOX, 0);
		e.peer_state = x->mb_st;
		e.peer_epoch = x->mb_from;
		e.to_epoch = x->mb_to;
		deliver(w, i, e);
		return true;
	case S_PEER_LOST:
	case S_PEER_LOST_FAULT:
		if (s == S_PEER_LOST ? y->alive : !budget)
			return false;
		if (s == S_PEER_LOST_FAULT)
			w->faults++;
		deliver(w, i, event(HS_EV_PEER_LOST, 0));
		return true;
	case S_CRASH:
		if (i != NODE_B || w->restarts >= R_RESTARTS)
			return false;
		w->restarts++;
		memset(x, 0, sizeof(*x));
		/* The partner's operations in flight die with the connection. */
		if (y->cur == CUR_READ || y->cur == CUR_WRITE)
			y->broken = 1;
		y->stale_val = y->stale_to = 0;
		return true;
	case S_RESTART:
		if (x->alive)
			return false;
		fresh_node(x, (uint8_t)(PEER_EPOCH + w->restarts));
		return true;
	case S_NSTEPS:
		break;
	}
	return false;
}

static void initial_world(struct world *w)
{
	memset(w, 0, sizeof(*w));
	fresh_node(&w->n[NODE_A], MY_EPOCH);
	fresh_node(&w->n[NODE_B], PEER_EPOCH);
}

static bool both_connected(const struct world *w)
{
	return w->n[0].alive && w->n[1].alive &&
	       w->n[0].st == HS_CONNECTED && w->n[1].st == HS_CONNECTED;
}

/* The visited set: worlds in an array (also the BFS queue), indexed by an
 * open-addressing hash table of their positions. */
struct visited {
	struct world *w;
	uint32_t *parent;     /* BFS tree, for counterexamples */
	uint8_t *how;         /* node * S_NSTEPS + step that led here */
	uint32_t n, cap;
	uint32_t *slot;       /* position + 1; 0: empty */
	uint32_t nslots;
};

static uint64_t world_hash(const struct world *w)
{
	const uint8_t *p = (const uint8_t *)w;
	uint64_t h = 0xcbf29ce484222325ull;
	size_t k;

	for (k = 0; k < sizeof(*w); k++)
		h = (h ^ p[k]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		perror("realloc");
		exit(2);
	}
	return p;
}

static void visited_rehash(struct visited *v)
{
	uint32_t i, k;

	v->nslots = v->nslots ? v->nslots * 2 : 1u << 16;
	free(v->slot);
	v->slot = calloc(v->nslots, sizeof(*v->slot));
	if (!v->slot) {
		perror("calloc");
		exit(2);
	}
	for (i = 0; i < v->n; i++) {
		k = (uint32_t)world_hash(&v->w[i]) & (v->nslots - 1);
		while (v->slot[k])
			k = (k + 1) & (v->nslots - 1);
		v->slot[k] = i + 1;
	}
}

/* The position of *w, adding it if it is new (*added tells). */
static uint32_t visited_add(struct visited *v, const struct world *w, bool *added)
{
	uint32_t k;

	if ((uint64_t)(v->n + 1) * 2 > v->nslots)
		visited_rehash(v);
	k = (uint32_t)world_hash(w) & (v->nslots - 1);
	for (; v->slot[k]; k = (k + 1) & (v->nslots - 1))
		if (memcmp(&v->w[v->slot[k] - 1], w, sizeof(*w)) == 0) {
			*added = false;
			return v->slot[k] - 1;
		}
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 1u << 16;
		v->w = xrealloc(v->w, (size_t)v->cap * sizeof(*v->w));
		v->parent = xrealloc(v->parent, (size_t)v->cap * sizeof(*v->parent));
		v->how = xrealloc(v->how, (size_t)v->cap);
	}
	v->parent[v->n] = v->n;
	v->how[v->n] = 0xff;
	v->w[v->n] = *w;
	v->slot[k] = v->n + 1;
	*added = true;
	return v->n++;
}

/* Edges that are not faults, kept to walk the graph backwards. */
struct edges {
	uint32_t *from, *to;
	size_t n, cap;
};

static void edges_add(struct edges *g, uint32_t from, uint32_t to)
{
	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 1u << 20;
		g->from = xrealloc(g->from, g->cap * sizeof(*g->from));
		g->to = xrealloc(g->to, g->cap * sizeof(*g->to));
	}
	g->from[g->n] = from;
	g->to[g->n] = to;
	g->n++;
}

/* Property (b).  good = the worlds from which a world with both nodes
 * connected can be reached using only steps that are not faults (after
 * any number of faults have already happened on the way here).  It is the
 * least fixpoint "both connected, or some non-fault step leads into good",
 * computed by a backward breadth-first search over the non-fault edges.
 * Every reachable world must be good: whatever the faults did so far, once
 * they stop (and their budgets bound them) the pair can still connect, so
 * there is no trap: no livelock or deadlock the environment cannot leave. */
static uint32_t count_good(const struct visited *v, const struct edges *g,
			   uint32_t *first_bad)
{
	uint32_t *first = calloc((size_t)v->n + 1, sizeof(*first));
	uint32_t *pred = malloc((g->n + 1) * sizeof(*pred));
	uint32_t *queue = malloc(((size_t)v->n + 1) * sizeof(*queue));
	uint8_t *good = calloc((size_t)v->n + 1, 1);
	uint32_t head = 0, tail = 0, ngood = 0, i, k;
	size_t e;

	if (!first || !pred || !queue || !good) {
		perror("malloc");
		exit(2);
	}
	/* Predecessor lists, by counting sort on the edge's target. */
	for (e = 0; e < g->n; e++)
		first[g->to[e] + 1]++;
	for (i = 0; i < v->n; i++)
		first[i + 1] += first[i];
	{
		uint32_t *fill = malloc(((size_t)v->n + 1) * sizeof(*fill));

		if (!fill) {
			perror("malloc");
			exit(2);
		}
		memcpy(fill, first, ((size_t)v->n + 1) * sizeof(*fill));
		for (e = 0; e < g->n; e++)
			pred[fill[g->to[e]]++] = g->from[e];
		free(fill);
	}
	for (i = 0; i < v->n; i++)
		if (both_connected(&v->w[i])) {
			good[i] = 1;
			queue[tail++] = i;
		}
	while (head < tail) {
		i = queue[head++];
		ngood++;
		for (k = first[i]; k < first[i + 1]; k++)
			if (!good[pred[k]]) {
				good[pred[k]] = 1;
				queue[tail++] = pred[k];
			}
	}
	*first_bad = UINT32_MAX;
	for (i = 0; i < v->n && *first_bad == UINT32_MAX; i++)
		if (!good[i])
			*first_bad = i;
	free(first);
	free(pred);
	free(queue);
	free(good);
	return ngood;
}

/* Print how the exploration reached world i: the counterexample. */
static void print_path(const struct visited *v, uint32_t i)
{
	uint32_t path[256];
	int n = 0, k;

	while (v->parent[i] != i && n < 256) {
		path[n++] = i;
		i = v->parent[i];
	}
	printf("# counterexample, %d steps from the start:\n", n);
	for (k = n - 1; k >= 0; k--) {
		const struct world *w = &v->w[path[k]];
		unsigned how = v->how[path[k]];

		printf("#   %c %-30s -> A %-9s peer %2u mbox %u/%2u | "
		       "B %-9s epoch %2u peer %u mbox %u/%u | faults %u\n",
		       how / S_NSTEPS ? 'B' : 'A', step_name[how % S_NSTEPS],
		       hs_state_name(w->n[0].st), w->n[0].peer, w->n[0].mb_st,
		       w->n[0].mb_from, hs_state_name(w->n[1].st), w->n[1].epoch,
		       w->n[1].peer, w->n[1].mb_st, w->n[1].mb_from, w->faults);
	}
}

/* A live node that has left INIT and is not connected always awaits an
 * answer or a timer: it can never sit waiting for nothing. */
static bool awaits_something(const struct node *x)
{
	if (!x->alive || x->st == HS_INIT || x->st == HS_CONNECTED)
		return true;
	return x->cur != CUR_NONE;
}

static void test_model(void)
{
	struct visited v = { 0 };
	struct edges g = { 0 };
	struct world w0, w;
	long deadlocks = 0, unsafe = 0, idle = 0, goal = 0;
	uint32_t i, j, ngood, bad;
	unsigned maxfaults = 0, npairs = 0;
	uint8_t pairs[HS_NSTATES][HS_NSTATES] = { { 0 } };
	bool added;
	int s, node;

	initial_world(&w0);
	visited_add(&v, &w0, &added);
	for (i = 0; i < v.n; i++) {
		const struct world cur = v.w[i];   /* v.w may move */
		bool moves = false;

		if (both_connected(&cur)) {
			goal++;
			if ((cur.n[0].peer != cur.n[1].epoch ||
			     cur.n[1].peer != cur.n[0].epoch) && unsafe++ == 0)
				print_path(&v, i);
		}
		if (!awaits_something(&cur.n[0]) || !awaits_something(&cur.n[1]))
			idle++;
		pairs[cur.n[0].st][cur.n[1].st] = 1;
		if (cur.faults > maxfaults)
			maxfaults = cur.faults;
		for (node = 0; node < 2; node++)
			for (s = 0; s < S_NSTEPS; s++) {
				w = cur;
				if (!take(&w, (enum step)s, node))
					continue;
				if (memcmp(&w, &cur, sizeof(w)) == 0)
					continue;   /* a self-loop is no progress */
				moves = true;
				j = visited_add(&v, &w, &added);
				if (added) {
					v.parent[j] = i;
					v.how[j] = (uint8_t)(node * S_NSTEPS + s);
				}
				if (!step_is_fault((enum step)s))
					edges_add(&g, i, j);
			}
		if (!moves && !both_connected(&cur) && deadlocks++ == 0)
			print_path(&v, i);
	}
	/* Every pair of states, but for A not started yet: B then cannot
	 * READ it, so it stays in 1 and 3 (A never crashes). */
	for (i = 0; i < HS_NSTATES * HS_NSTATES; i++)
		npairs += pairs[i / HS_NSTATES][i % HS_NSTATES] ==
			  (i / HS_NSTATES != HS_INIT || i % HS_NSTATES <= HS_READ1 ||
			   i % HS_NSTATES == HS_WAIT3);
	ngood = count_good(&v, &g, &bad);
	if (bad != UINT32_MAX)
		print_path(&v, bad);
	printf("# model: %u worlds explored, %zu non-fault edges, %ld with both "
	       "connected, K=%d transient faults, R=%d restarts of B\n",
	       v.n, g.n, goal, K_FAULTS, R_RESTARTS);

	CHECK(v.n > 1000 && maxfaults == K_FAULTS && npairs == HS_NSTATES * HS_NSTATES,
	      "model: the exploration covered %u worlds, every possible pair of "
	      "states (%u of 64), faults up to the budget", v.n, npairs);
	CHECK(deadlocks == 0, "model (a): no reachable world short of both connected "
	      "is stuck (%ld found)", deadlocks);
	CHECK(idle == 0, "model (a): a started, unconnected node always awaits an "
	      "answer or a timer (%ld worlds violate it)", idle);
	CHECK(ngood == v.n, "model (b): from every reachable world both can still "
	      "connect once faults stop (%u of %u)", ngood, v.n);
	CHECK(goal > 0 && unsafe == 0, "model (c): both connected always means each "
	      "knows the other's current epoch (%ld violations)", unsafe);
	CHECK(viol.reports == 0, "model (d): every entry into error reports a cause "
	      "(%ld violations)", viol.reports);
	CHECK(viol.bad_seq == 0 && viol.two_stale == 0,
	      "model: every expecting action takes the next seq; at most one stale "
	      "write is ever in flight (%ld, %ld violations)", viol.bad_seq,
	      viol.two_stale);
	if (viol.first[0])
		printf("# first violation: %s\n", viol.first);
	printf("# model: %ld machine steps checked\n", viol.steps_checked);
	free(v.w);
	free(v.parent);
	free(v.how);
	free(v.slot);
	free(g.from);
	free(g.to);
}

/* ---- 3. scenarios -------------------------------------------------------
 *
 * Plain sequences of the model's environment steps.  settle() plays a fair
 * scheduler without faults: it takes the enabled steps round-robin over
 * both nodes, and fires timers only when nothing else can move (timers are
 * long compared with one-sided operations). */

struct trace {
	unsigned seen[2];   /* bit s: the node was in state s */
	int steps;
};

static void record(struct trace *t, const struct world *w)
{
	t->seen[0] |= 1u << w->n[0].st;
	t->seen[1] |= 1u << w->n[1].st;
	t->steps++;
}

static bool pick(struct world *w, bool timers, struct trace *t)
{
	static unsigned rr;
	unsigned k, idx;

	for (k = 0; k < 2 * S_NSTEPS; k++) {
		struct world next = *w;
		enum step s;

		idx = (rr + k) % (2 * S_NSTEPS);
		s = (enum step)(idx / 2);
		if (step_is_fault(s) || (s == S_TIMER) != timers)
			continue;
		if (!take(&next, s, (int)(idx % 2)) || memcmp(&next, w, sizeof(next)) == 0)
			continue;
		*w = next;
		rr = idx + 1;
		record(t, w);
		return true;
	}
	return false;
}

static void settle(struct world *w, struct trace *t)
{
	while (t->steps < 1000 && !both_connected(w))
		if (!pick(w, false, t) && !pick(w, true, t))
			break;
}

/* Take the named steps, in order; each must be enabled. */
static bool script(struct world *w, struct trace *t, const int (*seq)[2], size_t n)
{
	size_t k;

	for (k = 0; k < n; k++) {
		if (!take(w, (enum step)seq[k][1], seq[k][0]))
			return false;
		record(t, w);
	}
	return true;
}

#define BIT(s) (1u << (s))

static bool connected_to(const struct world *w, uint8_t b_epoch)
{
	return both_connected(w) && w->n[0].peer == b_epoch &&
	       w->n[1].peer == MY_EPOCH && w->n[1].epoch == b_epoch;
}

static void test_a_first(void)
{
	static const int steps[][2] = {
		{ NODE_A, S_LISTEN }, { NODE_A, S_START }, { NODE_A, S_OP_DONE },
		{ NODE_A, S_TIMER }, { NODE_A, S_OP_DONE },
		{ NODE_B, S_LISTEN }, { NODE_B, S_START },
	};
	struct trace t = { { 0 }, 0 };
	struct world w;

	initial_world(&w);
	CHECK(script(&w, &t, steps, sizeof(steps) / sizeof(steps[0])) &&
	      w.n[0].st == HS_WAIT3 && w.n[0].cur == CUR_WAIT,
	      "A first: A's READ fails, it waits in 3, reads again, waits again");
	settle(&w, &t);
	CHECK(connected_to(&w, PEER_EPOCH), "A first, B late: both connect");
	CHECK(!(t.seen[0] & (BIT(HS_WRITE2) | BIT(HS_ERROR))) &&
	      (t.seen[0] & BIT(HS_READ4)) && (t.seen[1] & BIT(HS_WRITE2)) &&
	      !(t.seen[1] & BIT(HS_ERROR)),
	      "A first, B late: A goes 3-4-5 on B's mailbox, B takes 1-2-4-5, no error");
}

static void test_b_first(void)
{
	static const int steps[][2] = {
		{ NODE_B, S_LISTEN }, { NODE_B, S_START }, { NODE_B, S_OP_DONE },
		{ NODE_A, S_LISTEN }, { NODE_A, S_START },
	};
	struct trace t = { { 0 }, 0 };
	struct world w;

	initial_world(&w);
	CHECK(script(&w, &t, steps, sizeof(steps) / sizeof(steps[0])) &&
	      w.n[1].st == HS_WAIT3, "B first: B waits in 3");
	settle(&w, &t);
	CHECK(connected_to(&w, PEER_EPOCH) && !((t.seen[0] | t.seen[1]) & BIT(HS_ERROR)),
	      "B first, A late: both connect without an error");
}

static void test_both_at_once(void)
{
	static const int steps[][2] = {
		{ NODE_A, S_LISTEN }, { NODE_B, S_LISTEN },
		{ NODE_A, S_START }, { NODE_B, S_START },
	};
	const unsigned path = BIT(HS_READ1) | BIT(HS_WRITE2) | BIT(HS_READ4) |
			      BIT(HS_WRITE5) | BIT(HS_CONNECTED);
	struct trace t = { { 0 }, 0 };
	struct world w;

	initial_world(&w);
	script(&w, &t, steps, sizeof(steps) / sizeof(steps[0]));
	settle(&w, &t);
	CHECK(connected_to(&w, PEER_EPOCH), "both at once: both connect");
	CHECK((t.seen[0] & ~BIT(HS_INIT)) == path && (t.seen[1] & ~BIT(HS_INIT)) == path,
	      "both at once: both take 1-2-4-5-connected (A 0x%x, B 0x%x)",
	      t.seen[0], t.seen[1]);
}

/* Bring B into a state, crash it, let it restart with a new epoch: the
 * pair must end connected to B's new incarnation. */
static bool run_until_b(struct world *w, struct trace *t, int st, bool wrote5)
{
	while (t->steps < 1000) {
		if (w->n[1].st == st && (st != HS_WRITE5 || w->n[1].wrote5 == wrote5))
			return true;
		if (!pick(w, false, t) && !pick(w, true, t))
			return false;
	}
	return false;
}

static void test_b_restarts(void)
{
	static const struct {
		const char *name;
		int st;
		bool wrote5;
		int setup;      /* 0: both start; 1: B alone first; 2: B errs;
				 * 3: B not started */
	} cases[] = {
		{ "init", HS_INIT, false, 3 },
		{ "read1", HS_READ1, false, 0 },
		{ "write2", HS_WRITE2, false, 0 },
		{ "wait3", HS_WAIT3, false, 1 },
		{ "read4", HS_READ4, false, 0 },
		{ "write5 (writing)", HS_WRITE5, false, 0 },
		{ "write5 (waiting)", HS_WRITE5, true, 0 },
		{ "connected", HS_CONNECTED, false, 0 },
		{ "error", HS_ERROR, false, 2 },
	};
	static const int both[][2] = {
		{ NODE_A, S_LISTEN }, { NODE_B, S_LISTEN },
		{ NODE_A, S_START }, { NODE_B, S_START },
	};
	static const int b_alone[][2] = {
		{ NODE_B, S_LISTEN }, { NODE_B, S_START }, { NODE_B, S_OP_DONE },
		{ NODE_A, S_LISTEN }, { NODE_A, S_START },
	};
	static const int b_late[][2] = {
		{ NODE_A, S_LISTEN }, { NODE_B, S_LISTEN }, { NODE_A, S_START },
		{ NODE_A, S_OP_DONE },
	};
	static const int b_errs[][2] = {
		{ NODE_A, S_LISTEN }, { NODE_B, S_LISTEN }, { NODE_A, S_START },
		{ NODE_B, S_START }, { NODE_B, S_OP_DONE }, { NODE_B, S_OP_FAULT },
	};
	size_t c;

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct trace t = { { 0 }, 0 };
		struct world w;
		bool ok;

		initial_world(&w);
		if (cases[c].setup == 1)
			ok = script(&w, &t, b_alone, sizeof(b_alone) / sizeof(b_alone[0]));
		else if (cases[c].setup == 3)
			ok = script(&w, &t, b_late, sizeof(b_late) / sizeof(b_late[0]));
		else if (cases[c].setup == 2)
			ok = script(&w, &t, b_errs, sizeof(b_errs) / sizeof(b_errs[0]));
		else
			ok = script(&w, &t, both, sizeof(both) / sizeof(both[0]));
		ok = ok && run_until_b(&w, &t, cases[c].st, cases[c].wrote5);
		ok = ok && take(&w, S_CRASH, NODE_B);
		settle(&w, &t);
		CHECK(ok && connected_to(&w, PEER_EPOCH + 1),
		      "B crashes in %s and restarts: both connect to the new epoch "
		      "(A %s, B %s)", cases[c].name, hs_state_name(w.n[0].st),
		      hs_state_name(w.n[1].st));
	}
}

/* A connected A must notice B's new incarnation even when the transport
 * never reports the loss: B's first WRITE carries its new epoch. */
static void test_restart_noticed_by_mailbox(void)
{
	static const int steps[][2] = {
		{ NODE_B, S_RESTART }, { NODE_B, S_LISTEN }, { NODE_B, S_START },
		{ NODE_B, S_OP_DONE }, { NODE_B, S_OP_DONE }, { NODE_A, S_MAILBOX },
	};
	struct trace t = { { 0 }, 0 };
	struct world w;

	initial_world(&w);
	take(&w, S_LISTEN, NODE_A);
	take(&w, S_LISTEN, NODE_B);
	take(&w, S_START, NODE_A);
	take(&w, S_START, NODE_B);
	settle(&w, &t);
	take(&w, S_CRASH, NODE_B);
	CHECK(script(&w, &t, steps, sizeof(steps) / sizeof(steps[0])) &&
	      w.n[0].st == HS_ERROR && w.n[1].st == HS_READ4,
	      "connected A sees the new epoch in B's WRITE 2 and goes to error");
	settle(&w, &t);
	CHECK(connected_to(&w, PEER_EPOCH + 1), "... and both connect again");
}

static void test_scenarios(void)
{
	test_a_first();
	test_b_first();
	test_both_at_once();
	test_b_restarts();
	test_restart_noticed_by_mailbox();
}

int main(void)
{
	test_construction();
	test_table();
	test_timing();
	test_level_triggered();
	test_names();
	test_model();
	test_scenarios();
	return check_done();
}
