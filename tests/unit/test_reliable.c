/* Client messages across failing links and slow clients: kept until
 * acknowledged, completions reported, each delivered once and in order,
 * a port's window, the pending queue, the ack area. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "proto/reliable.h"

static void test_sender(void)
{
	struct reliable r = { 0 };
	struct rel_port a = { .slot = 0 }, b = { .slot = 1 };
	uint8_t frame[3000];

	memset(frame, 7, sizeof(frame));
	for (uint64_t seq = 1; seq <= 5; seq++) {
		CHECK(reliable_sent(&r, &a, seq, 0, 10 * seq, frame, 100, false, 0, 0) == 0, "a: keep %llu",
		      (unsigned long long)seq);
		CHECK(reliable_sent(&r, &b, seq, 1, 10 * seq, frame, 200, false, 0, 0) == 0, "b: keep %llu",
		      (unsigned long long)seq);
	}
	CHECK(r.nsent == 10 && r.sent_bytes == 1500, "ten kept, 1500 bytes");
	a.tx_acked = 3;
	reliable_acked(&r, NULL, NULL);
	CHECK(r.nsent == 7 && r.sent_bytes == 1200, "a's first three acknowledged: gone");
	CHECK(r.sent[0].port == &b && r.sent[0].seq == 1, "send order kept");
	for (int i = 0, last = 0; i < r.nsent; i++) {
		if (r.sent[i].port != &a)
			continue;
		EXPECT((int)r.sent[i].seq > last, "a's left in order");
		last = (int)r.sent[i].seq;
	}
	CHECK(!reliable_full(&r), "not full");
	while (!reliable_full(&r))
		if (reliable_sent(&r, &a, 100, 0, 0, frame, sizeof(frame), false, 0, 0) < 0)
			break;
	CHECK(reliable_full(&r) && r.sent_bytes >= RELIABLE_BYTES_MAX, "full at the byte bound");
	a.tx_acked = b.tx_acked = 1000;
	reliable_acked(&r, NULL, NULL);
	CHECK(r.nsent == 0 && r.sent_bytes == 0 && !reliable_full(&r), "all acknowledged: empty");
	reliable_clear(&r, NULL, NULL, 0);
}

static void test_receiver(void)
{
	struct reliable r = { 0 };
	struct rel_port p = { 0 }, q = { 0 }, *who;
	uint8_t f3[] = "three", f4[] = "four";
	uint32_t len;
	uint8_t *f;

	CHECK(reliable_received(&r, &p, 1, (const uint8_t *)"x", 1) == RELIABLE_DELIVER &&
	      p.rx_seq == 1, "1: delivered");
	CHECK(reliable_received(&r, &p, 1, (const uint8_t *)"x", 1) == RELIABLE_DUP && r.dups == 1,
	      "1 again: a duplicate");
	CHECK(reliable_received(&r, &p, 4, f4, sizeof(f4)) == RELIABLE_HELD, "4 before 2: held");
	CHECK(reliable_received(&r, &p, 3, f3, sizeof(f3)) == RELIABLE_HELD, "3 before 2: held");
	CHECK(reliable_received(&r, &p, 4, f4, sizeof(f4)) == RELIABLE_DUP, "4 again while held: dup");
	CHECK(reliable_next(&r, &len, &who) == NULL, "nothing due while 2 is missing");
	CHECK(reliable_received(&r, &q, 1, f3, 1) == RELIABLE_DELIVER, "another port is separate");
	CHECK(reliable_received(&r, &p, 2, (const uint8_t *)"y", 1) == RELIABLE_DELIVER &&
	      p.rx_seq == 2, "2: delivered");
	f = reliable_next(&r, &len, &who);
	CHECK(f && who == &p && len == sizeof(f3) && !memcmp(f, f3, len) && p.rx_seq == 3,
	      "then 3 from the held ones");
	free(f);
	f = reliable_next(&r, &len, &who);
	CHECK(f && !memcmp(f, f4, sizeof(f4)) && p.rx_seq == 4, "then 4");
	free(f);
	CHECK(reliable_next(&r, &len, &who) == NULL && r.nheld == 0, "nothing left held");
	for (int i = 0; i < RELIABLE_HOLD_MAX; i++)
		reliable_received(&r, &p, 10 + (uint64_t)i, f3, 2);
	CHECK(reliable_received(&r, &p, 1000, f3, 2) == RELIABLE_DROPPED,
	      "no room to hold: dropped, for the sender to send again");
	reliable_clear(&r, NULL, NULL, 0);
	CHECK(r.nheld == 0 && r.nsent == 0, "cleared");
}

/* What the completions said, in the order they were said. */
struct dones {
	int n;
	uint32_t tag[200];
	int status[200];
};

static void note_done(void *ctx, const struct sent_msg *m, int status)
{
	struct dones *d = ctx;

	d->tag[d->n] = m->tag;
	d->status[d->n++] = status;
}

static void test_completions_and_window(void)
{
	struct reliable r = { 0 };
	struct rel_port a = { .slot = 0 }, b = { .slot = 1 };
	struct dones d = { 0 };
	uint8_t frame[64] = { 0 };
	uint64_t seq = 0;

	/* a: a full window of messages, each owed to conn 5, and a notify
	 * (owed too, but outside the window). */
	while (!reliable_port_full(&a)) {
		seq++;
		CHECK(reliable_sent(&r, &a, seq, 0, 0, frame, 64, true, 5, (uint32_t)seq) == 0,
		      "a: message %llu kept", (unsigned long long)seq);
	}
	CHECK(seq == PORT_MSG_WINDOW && a.tx_window == PORT_MSG_WINDOW, "the window is %d",
	      PORT_MSG_WINDOW);
	CHECK(reliable_sent(&r, &a, ++seq, 0, 0, frame, 64, false, 5, 1000) == 0 &&
	      a.tx_window == PORT_MSG_WINDOW, "a notify does not count in the window");
	CHECK(reliable_sent(&r, &b, 1, 0, 0, frame, 64, true, 0, 0) == 0 && !reliable_port_full(&b),
	      "b's window is its own");
	a.tx_acked = 10;
	reliable_acked(&r, note_done, &d);
	CHECK(d.n == 10 && d.tag[0] == 1 && d.tag[9] == 10, "ten acknowledged: ten DONEs, in order");
	EXPECT(d.status[0] == 0 && d.status[9] == 0, "with status 0");
	CHECK(a.tx_window == PORT_MSG_WINDOW - 10 && !reliable_port_full(&a), "credit is back");
	reliable_clear(&r, note_done, &d, -ECONNRESET);
	CHECK(d.n == 10 + PORT_MSG_WINDOW - 10 + 1, "the session ended: every unacknowledged one "
	      "completes (%d), the unowed one of b does not", d.n);
	CHECK(d.status[10] == -ECONNRESET && d.tag[d.n - 1] == 1000 && d.status[d.n - 1] == -ECONNRESET,
	      "with the status given");
	CHECK(a.tx_window == 0 && b.tx_window == 0 && r.nsent == 0, "windows empty");
}

/* Offer the pending ones to a client that takes `room` messages of port
 * 'take_port' (and all of others). */
struct taker {
	struct rel_port *slow;
	int room, took;
	uint64_t last_seq[2];
};

static bool take(void *ctx, struct rel_port *p, const uint8_t *frame, uint32_t len)
{
	struct taker *t = ctx;
	uint64_t seq;

	(void)len;
	memcpy(&seq, frame, sizeof(seq));
	if (p == t->slow && t->room == 0)
		return false;
	if (p == t->slow)
		t->room--;
	CHECK(seq == t->last_seq[p->slot] + 1, "port %u: %llu after %llu, in order", p->slot,
	      (unsigned long long)seq, (unsigned long long)t->last_seq[p->slot]);
	t->last_seq[p->slot] = seq;
	t->took++;
	return true;
}

static void test_pending(void)
{
	struct reliable r = { 0 };
	struct rel_port a = { .slot = 0 }, b = { .slot = 1 };
	struct taker t = { .slow = &a, .room = 3 };
	uint8_t frame[8];
	int n;

	for (uint64_t seq = 1; seq <= PORT_PEND_MAX; seq++) {
		memcpy(frame, &seq, 8);
		CHECK(reliable_pend(&r, &a, seq, frame, 8, 0) == 0, "a: %llu pending",
		      (unsigned long long)seq);
		if (seq <= 5)
			EXPECT(reliable_pend(&r, &b, seq, frame, 8, 0) == 0, "b: %llu pending",
			       (unsigned long long)seq);
	}
	memcpy(frame, &(uint64_t){ PORT_PEND_MAX + 1 }, 8);
	CHECK(reliable_pend(&r, &a, PORT_PEND_MAX + 1, frame, 8, 0) == -ENOBUFS,
	      "a port's pending queue is bounded");
	CHECK(a.rx_pending == PORT_PEND_MAX && b.rx_pending == 5, "counted per port");
	reliable_offer_pending(&r, take, &t);
	CHECK(t.took == 3 + 5 && a.rx_done == 3 && b.rx_done == 5,
	      "a took 3 and then nothing more of a; all of b (%d)", t.took);
	CHECK(a.rx_pending == PORT_PEND_MAX - 3 && b.rx_pending == 0 && r.npend == (int)a.rx_pending,
	      "what was taken is gone");
	t.room = 1000;
	reliable_offer_pending(&r, take, &t);
	CHECK(a.rx_done == PORT_PEND_MAX && r.npend == 0 && a.rx_pending == 0,
	      "room again: the rest, in order");
	for (n = 0; n < 3; n++)
		reliable_pend(&r, &a, (uint64_t)n, frame, 8, 0);
	reliable_clear(&r, NULL, NULL, 0);
	CHECK(a.rx_pending == 0 && r.npend == 0, "cleared with the session");
}

static void test_ack_area(void)
{
	static uint8_t win[ECHO_AREA_OFFSET + ECHO_AREA_SIZE];
	/* The receiver's port is slot 3; the sender reads it as its peer_slot. */
	struct rel_port rx = { .slot = 3, .rx_seq = 0x100000007ull, .rx_done = 0x100000005ull };
	struct rel_port tx = { .peer_slot = 3, .tx_acked = 0xfffffff0ull, .tx_seq = 0x100000007ull };

	reliable_publish_ack(win, &rx);
	CHECK(win[ACK_AREA_OFFSET + 24 + 7] == 5 && win[ACK_AREA_OFFSET + 24 + 3] == 0,
	      "big-endian, slot 3, no run");
	CHECK(reliable_peer_ack(&tx, win, sizeof(win)) == 0 && tx.tx_acked == rx.rx_done &&
	      !tx.tx_run_to, "read back across 2^32: what the client took, not what came in");
	tx.tx_acked = 0x100000006ull;
	reliable_peer_ack(&tx, win, sizeof(win));
	CHECK(tx.tx_acked == 0x100000006ull, "an older READ's word does not move the ack back");
	tx.tx_acked = 0;
	reliable_peer_ack(&tx, win, ACK_AREA_OFFSET + 24);
	CHECK(tx.tx_acked == 0, "outside what was read: nothing");
	tx.peer_slot = CCM_PORTS_TOTAL;
	reliable_peer_ack(&tx, win, sizeof(win));
	CHECK(tx.tx_acked == 0, "past the area: nothing");
}

/* Messages for a client that stays away: given up after the hold, told
 * to the sender exactly, whatever it missed between two READs. */
struct completions {
	int ok, timed_out;
	uint64_t last_ok, last_timed_out;
};

static void count_done(void *ctx, const struct sent_msg *m, int status)
{
	struct completions *c = ctx;

	if (status == 0) {
		c->ok++;
		c->last_ok = m->seq;
	} else {
		CHECK(status == -ETIMEDOUT, "given up: -ETIMEDOUT (%d)", status);
		c->timed_out++;
		c->last_timed_out = m->seq;
	}
}

static void test_give_up(void)
{
	static uint8_t rxwin[ECHO_AREA_OFFSET + ECHO_AREA_SIZE], txwin[sizeof(rxwin)];
	struct reliable rr = { 0 }, tr = { 0 };
	struct rel_port rx = { .slot = 0, .peer_slot = 0 }, tx = { .slot = 0, .peer_slot = 0 };
	struct completions c = { 0 };
	uint8_t frame[8];
	uint64_t next;

	/* The sender sent 1..10; the receiver's client is away. */
	for (uint64_t seq = 1; seq <= 10; seq++) {
		CHECK(reliable_sent(&tr, &tx, seq, 0, 0, frame, 8, true, 1, (uint32_t)seq) == 0, "sent");
		tx.tx_seq = rx.rx_seq = seq;
		memcpy(frame, &seq, 8);
		CHECK(reliable_pend(&rr, &rx, seq, frame, 8, seq < 6 ? 100 : 900) == 0, "pending");
	}
	CHECK(reliable_give_up(&rr, &rx, 1099, 1000, 0, &next) == 0 && next == 1100,
	      "nothing is due before the hold; the first at 1100");
	CHECK(reliable_give_up(&rr, &rx, 1500, 1000, 1200, &next) == 0 && next == 2200,
	      "the client went at 1200: the hold counts from then");
	CHECK(reliable_give_up(&rr, &rx, 1500, 1000, 0, &next) == 5 && next == 1900,
	      "1..5 given up at 1500; 6 is due at 1900");
	CHECK(rx.rx_done == 5 && rx.rx_run_end == 5 && rx.rx_run_len == 5 && rx.rx_pending == 5,
	      "one run, 1..5");
	reliable_publish_ack(rxwin, &rx);
	/* The receiver's client comes back and takes 6..8. */
	{
		struct taker t = { .slow = &rx, .room = 3 };

		t.last_seq[0] = 5;
		reliable_offer_pending(&rr, take, &t);
		CHECK(t.took == 3 && rx.rx_done == 8 && rx.rx_pending == 2, "6..8 taken");
	}
	reliable_publish_ack(rxwin, &rx);
	CHECK(reliable_peer_ack(&tx, rxwin, sizeof(rxwin)) == RELIABLE_ECHO_NEW,
	      "the sender hears the run (its first READ since): it echoes");
	reliable_acked(&tr, count_done, &c);
	CHECK(c.timed_out == 5 && c.last_timed_out == 5 && c.ok == 3 && c.last_ok == 8,
	      "1..5 -ETIMEDOUT, 6..8 done: exact across the missed updates (%d, %d)",
	      c.timed_out, c.ok);
	/* It goes again: 9 and 10 are due, but a run that does not continue
	 * the last waits for the sender's echo. */
	CHECK(reliable_give_up(&rr, &rx, 5000, 1000, 4000, &next) == 0 && next == 0,
	      "a new run waits for the echo");
	reliable_publish_echo(txwin, &tx);
	CHECK(reliable_peer_ack(&rx, txwin, sizeof(txwin)) == RELIABLE_RUN_RETIRED &&
	      rx.rx_run_len == 0, "the echo retires the run");
	CHECK(reliable_give_up(&rr, &rx, 5000, 1000, 4000, &next) == 2 && next == UINT64_MAX &&
	      rx.rx_run_end == 10 && rx.rx_run_len == 2, "then 9..10 are a new run");
	reliable_publish_ack(rxwin, &rx);
	reliable_peer_ack(&tx, rxwin, sizeof(rxwin));
	reliable_acked(&tr, count_done, &c);
	CHECK(c.timed_out == 7 && c.ok == 3 && tr.nsent == 0, "9, 10: -ETIMEDOUT; nothing left");
	CHECK(rr.npend == 0 && rx.rx_pending == 0, "the receiver keeps nothing");
	reliable_clear(&rr, NULL, NULL, 0);
	reliable_clear(&tr, NULL, NULL, 0);
}

int main(void)
{
	test_sender();
	test_receiver();
	test_completions_and_window();
	test_pending();
	test_ack_area();
	test_give_up();
	return check_done();
}
