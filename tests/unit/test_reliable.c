/* Client messages across failing links: kept until acknowledged, each
 * delivered once and in order, the ack area. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "proto/reliable.h"

static void test_sender(void)
{
	struct reliable r = { 0 };
	struct port a = { .link = 0 }, b = { .link = 1 };
	uint8_t frame[3000];

	memset(frame, 7, sizeof(frame));
	for (uint64_t seq = 1; seq <= 5; seq++) {
		CHECK(reliable_sent(&r, &a, seq, 0, 10 * seq, frame, 100) == 0, "a: keep %llu",
		      (unsigned long long)seq);
		CHECK(reliable_sent(&r, &b, seq, 1, 10 * seq, frame, 200) == 0, "b: keep %llu",
		      (unsigned long long)seq);
	}
	CHECK(r.nsent == 10 && r.sent_bytes == 1500, "ten kept, 1500 bytes");
	a.tx_acked = 3;
	reliable_acked(&r);
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
		if (reliable_sent(&r, &a, 100, 0, 0, frame, sizeof(frame)) < 0)
			break;
	CHECK(reliable_full(&r) && r.sent_bytes >= RELIABLE_BYTES_MAX, "full at the byte bound");
	a.tx_acked = b.tx_acked = 1000;
	reliable_acked(&r);
	CHECK(r.nsent == 0 && r.sent_bytes == 0 && !reliable_full(&r), "all acknowledged: empty");
	reliable_clear(&r);
}

static void test_receiver(void)
{
	struct reliable r = { 0 };
	struct port p = { 0 }, q = { 0 }, *who;
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
	reliable_clear(&r);
	CHECK(r.nheld == 0 && r.nsent == 0, "cleared");
}

static void test_ack_area(void)
{
	static uint8_t win[ACK_AREA_OFFSET + ACK_AREA_SIZE];
	struct port p = { .slot = 3, .rx_seq = 0x0102030405060708ull };

	reliable_publish_ack(win, &p);
	CHECK(win[ACK_AREA_OFFSET + 24] == 1 && win[ACK_AREA_OFFSET + 31] == 8, "big-endian, slot 3");
	CHECK(reliable_peer_ack(win, sizeof(win), 3) == p.rx_seq, "read back");
	CHECK(reliable_peer_ack(win, ACK_AREA_OFFSET + 24, 3) == 0, "outside what was read: 0");
	CHECK(reliable_peer_ack(win, sizeof(win), CCM_PORTS_TOTAL) == 0, "past the area: 0");
}

int main(void)
{
	test_sender();
	test_receiver();
	test_ack_area();
	return check_done();
}
