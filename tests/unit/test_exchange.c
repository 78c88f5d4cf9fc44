/* The post-handshake exchange, two machines wired back to back in memory:
 * every outcome, every refusal and its typed reason, and messages out of
 * order. */
#include <string.h>

#include "check.h"
#include "conf/client_desc.h"
#include "proto/exchange.h"

struct side {
	struct exchange ex;
	struct client_set clients;
	struct auth_key key, also;
	struct ex_self self;
	uint8_t nonce[CCM_NONCE_LEN];
};

static void add_client(struct client_set *s, const char *name, uint16_t nports, uint32_t size)
{
	struct client_desc *c = &s->c[s->count++];

	memset(c, 0, sizeof(*c));
	strcpy(c->name, name);
	c->nports = nports;
	c->port_size = size;
}

static void side_init(struct side *s, uint32_t node, uint64_t epoch, const char *key)
{
	memset(s, 0, sizeof(*s));
	s->self.node = node;
	s->self.epoch = epoch;
	s->self.ver_min = 1;
	s->self.ver_max = 1;
	s->self.cluster = "ccm";
	if (key) {
		s->key.len = (uint32_t)strlen(key);
		memcpy(s->key.bytes, key, s->key.len);
		s->self.key = &s->key;
	}
	memset(s->nonce, (int)node, sizeof(s->nonce));
	add_client(&s->clients, "fmon", 1, 4096);
	add_client(&s->clients, "nvmirror", 2, 1 << 20);
}

/* A stand-in for the driver's port creation: describe one window per port. */
static void fake_ports(struct exchange *ex)
{
	struct wire_ports p;

	memset(&p, 0, sizeof(p));
	for (int i = 0; i < ex->nmatch; i++) {
		const struct client_match *m = &ex->match[i];

		if (m->status != MATCH_OK)
			continue;
		for (int k = 0; k < m->nports; k++) {
			struct wire_port *w = &p.p[p.count++];

			strcpy(w->client, m->name);
			w->index = (uint16_t)k;
			w->addr = 0;
			w->rkey = (uint32_t)p.count;
			w->len = m->port_size;
		}
	}
	ex_ports_created(ex, &p);
}

/* ex_start with a side's clients in their wire form, as the driver does. */
static void start(struct exchange *ex, const struct ex_self *self, const struct client_set *c,
		  const uint8_t nonce[CCM_NONCE_LEN])
{
	struct wire_clients w;

	clients_to_wire(c, &w);
	ex_start(ex, self, &w, nonce);
}

/* What one side has sent and the other not yet read, encoded and decoded
 * through the real codec on the way, as the driver does. */
struct wire_queue {
	int head, tail;
	struct wire_msg m[16];
};

static void flush(struct side *from, struct wire_queue *q)
{
	static uint8_t buf[CCM_MSG_MAX];
	struct errbuf e;

	for (int i = 0; i < from->ex.noutbox; i++) {
		int len = wire_encode(&from->ex.outbox[i], buf, sizeof(buf));

		if (len < 0 || wire_decode(buf, (size_t)len, &q->m[q->tail++ % 16], &e) < 0)
			CHECK(0, "message %s went through the codec",
			      wire_type_name(from->ex.outbox[i].type));
	}
	from->ex.noutbox = 0;
}

/* Read one queued message; answers go straight onto the other queue. */
static int step(struct side *s, struct wire_queue *in, struct wire_queue *out)
{
	if (in->head == in->tail)
		return 0;
	ex_on_msg(&s->ex, &in->m[in->head++ % 16]);
	if (s->ex.phase == EX_PORTS_NEEDED) {
		flush(s, out);
		fake_ports(&s->ex);
	}
	flush(s, out);
	return 1;
}

/* Both sides start, then read alternately until nothing is in flight. */
static void run(struct side *a, struct side *b)
{
	static struct wire_queue to_a, to_b;

	memset(&to_a, 0, sizeof(to_a));
	memset(&to_b, 0, sizeof(to_b));
	start(&a->ex, &a->self, &a->clients, a->nonce);
	flush(a, &to_b);
	start(&b->ex, &b->self, &b->clients, b->nonce);
	flush(b, &to_a);
	for (int n = 0; n < 64; n++)
		if (!step(a, &to_a, &to_b) && !step(b, &to_b, &to_a))
			break;
}

static void test_plain_exchange(void)
{
	static struct side a, b;

	side_init(&a, 1, 100, NULL);
	side_init(&b, 2, 200, NULL);
	run(&a, &b);
	CHECK(a.ex.phase == EX_DONE && b.ex.phase == EX_DONE, "no key: both sides reach done");
	CHECK(a.ex.version == 1 && b.ex.version == 1, "version 1 agreed");
	CHECK(a.ex.nmatch == 2 && a.ex.match[0].status == MATCH_OK, "both clients matched");
	CHECK(a.ex.peer_ports.count == 3, "A learned B's 3 ports");
	CHECK(a.ex.peer.node_id == 2 && b.ex.peer.epoch == 100, "identities exchanged");
}

static void test_highest_common_version(void)
{
	static struct side a, b;

	side_init(&a, 1, 100, NULL);
	side_init(&b, 2, 200, NULL);
	a.self.ver_min = 1, a.self.ver_max = 5;
	b.self.ver_min = 3, b.self.ver_max = 9;
	run(&a, &b);
	CHECK(a.ex.version == 5 && b.ex.version == 5, "ranges 1-5 and 3-9 agree on 5 (got %u, %u)",
	      a.ex.version, b.ex.version);
}

static void test_no_common_version(void)
{
	static struct side a, b;

	side_init(&a, 1, 100, NULL);
	side_init(&b, 2, 200, NULL);
	a.self.ver_min = 2, a.self.ver_max = 3;
	run(&a, &b);
	CHECK(a.ex.phase == EX_FAILED && a.ex.decline == DECLINE_NO_COMMON_VERSION &&
	      !a.ex.declined_by_peer, "A refuses: no common version");
	CHECK(b.ex.phase == EX_FAILED && b.ex.decline == DECLINE_NO_COMMON_VERSION,
	      "B refuses too, or is told why");
	CHECK(strstr(a.ex.why, "2-3") && strstr(a.ex.why, "1-1"), "the reason names both ranges: %s",
	      a.ex.why);
}

static void test_same_key(void)
{
	static struct side a, b;

	side_init(&a, 1, 100, "correct horse battery staple");
	side_init(&b, 2, 200, "correct horse battery staple");
	run(&a, &b);
	CHECK(a.ex.phase == EX_DONE && b.ex.phase == EX_DONE, "same key: both done");
}

/* Rotation: A proves with the new key, B still with the old one; each
 * accepts the other's as its second key, and both get through. */
static void test_keys_in_rotation(void)
{
	static struct side a, b;

	side_init(&a, 1, 100, "the new key, 16 bytes or more");
	side_init(&b, 2, 200, "correct horse battery staple");
	memcpy(&a.also, &b.key, sizeof(a.also));
	memcpy(&b.also, &a.key, sizeof(b.also));
	a.self.also = &a.also;
	b.self.also = &b.also;
	run(&a, &b);
	CHECK(a.ex.phase == EX_DONE && b.ex.phase == EX_DONE, "keys in rotation: both done");

	side_init(&a, 1, 100, "the new key, 16 bytes or more");
	side_init(&b, 2, 200, "correct horse battery staple");
	memcpy(&a.also, &b.key, sizeof(a.also));
	a.self.also = &a.also;
	run(&a, &b);
	CHECK(a.ex.phase == EX_FAILED && b.ex.phase == EX_FAILED,
	      "a second key on one side only: B does not accept A's new key, and says so");
}

static void test_wrong_key(void)
{
	static struct side a, b;

	side_init(&a, 1, 100, "correct horse battery staple");
	side_init(&b, 2, 200, "incorrect horse battery stapl");
	run(&a, &b);
	CHECK(a.ex.phase == EX_FAILED && b.ex.phase == EX_FAILED, "wrong key: both fail");
	CHECK(a.ex.decline == DECLINE_AUTH_FAILED && b.ex.decline == DECLINE_AUTH_FAILED,
	      "typed reason auth-failed (%d, %d)", a.ex.decline, b.ex.decline);
	CHECK(a.ex.nmatch == 0 && b.ex.nmatch == 0, "neither side ever saw the other's clients");
}

static void test_key_on_one_side(void)
{
	static struct side a, b;

	side_init(&a, 1, 100, "correct horse battery staple");
	side_init(&b, 2, 200, NULL);
	run(&a, &b);
	CHECK(a.ex.decline == DECLINE_AUTH_REQUIRED && b.ex.decline == DECLINE_AUTH_REQUIRED,
	      "key on one side only: auth-required on both (%d, %d)", a.ex.decline, b.ex.decline);
	CHECK(a.ex.nmatch == 0 && b.ex.nmatch == 0, "no clients exchanged");
}

static void test_replayed_proof_is_refused(void)
{
	static struct side a, b;
	struct wire_msg b_hello, b_auth;

	/* Capture B's HELLO and its proof for A's first nonce. */
	side_init(&a, 1, 100, "correct horse battery staple");
	side_init(&b, 2, 200, "correct horse battery staple");
	start(&a.ex, &a.self, &a.clients, a.nonce);
	start(&b.ex, &b.self, &b.clients, b.nonce);
	b_hello = b.ex.outbox[0];
	ex_on_msg(&b.ex, &a.ex.outbox[0]);
	b_auth = b.ex.outbox[0];
	CHECK(b_auth.type == WIRE_AUTH, "B's proof captured");

	/* The proof is good for the nonce it was made for ... */
	start(&a.ex, &a.self, &a.clients, a.nonce);
	ex_on_msg(&a.ex, &b_hello);
	ex_on_msg(&a.ex, &b_auth);
	CHECK(a.ex.phase == EX_CLIENTS_WAIT, "the captured proof passes for its own nonce");

	/* ... and refused when replayed against a fresh one. */
	memset(a.nonce, 0x77, sizeof(a.nonce));
	start(&a.ex, &a.self, &a.clients, a.nonce);
	ex_on_msg(&a.ex, &b_hello);
	ex_on_msg(&a.ex, &b_auth);
	CHECK(a.ex.phase == EX_FAILED && a.ex.decline == DECLINE_AUTH_FAILED,
	      "a proof replayed against a fresh nonce is refused");
}

static void test_reflected_proof_is_refused(void)
{
	static struct side a;
	struct wire_msg hello = { .type = WIRE_HELLO };
	struct wire_msg mine;

	/* An attacker without the key echoes A's own HELLO nonce and A's own
	 * proof back at it. */
	side_init(&a, 1, 100, "correct horse battery staple");
	start(&a.ex, &a.self, &a.clients, a.nonce);
	hello.u.hello = a.ex.outbox[0].u.hello;
	hello.u.hello.node_id = 2;
	a.ex.noutbox = 0;
	ex_on_msg(&a.ex, &hello);
	mine = a.ex.outbox[0];
	CHECK(mine.type == WIRE_AUTH, "A sent its proof");
	ex_on_msg(&a.ex, &mine);
	CHECK(a.ex.phase == EX_FAILED && a.ex.decline == DECLINE_AUTH_FAILED,
	      "A's own proof reflected back is refused");
}

static void test_cluster_and_node_conflicts(void)
{
	static struct side a, b;

	side_init(&a, 1, 100, NULL);
	side_init(&b, 2, 200, NULL);
	b.self.cluster = "other";
	run(&a, &b);
	CHECK(a.ex.decline == DECLINE_CLUSTER_MISMATCH, "cluster mismatch declined");

	side_init(&a, 1, 100, NULL);
	side_init(&b, 1, 200, NULL);
	run(&a, &b);
	CHECK(a.ex.decline == DECLINE_NODE_ID_CONFLICT && b.ex.decline == DECLINE_NODE_ID_CONFLICT,
	      "two nodes with id 1 both refuse");
}

static void test_out_of_order_messages(void)
{
	static struct side a;
	static struct wire_msg m;
	const enum wire_type wrong[] = { WIRE_AUTH, WIRE_CLIENTS, WIRE_PORTS };
	int refused = 0;

	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		side_init(&a, 1, 100, NULL);
		start(&a.ex, &a.self, &a.clients, a.nonce);
		memset(&m, 0, sizeof(m));
		m.type = wrong[i];
		if (m.type == WIRE_AUTH)
			m.u.auth.version = 1;
		ex_on_msg(&a.ex, &m);
		refused += EXPECT(a.ex.phase == EX_FAILED && a.ex.decline == DECLINE_PROTOCOL &&
				  a.ex.noutbox == 1 && a.ex.outbox[0].type == WIRE_DECLINE,
				  "%s before HELLO is declined as a protocol error",
				  wire_type_name(wrong[i]));
	}
	CHECK(refused == 3, "AUTH, CLIENTS and PORTS before HELLO are each declined");

	side_init(&a, 1, 100, NULL);
	start(&a.ex, &a.self, &a.clients, a.nonce);
	ex_on_malformed(&a.ex, "HELLO: truncated");
	CHECK(a.ex.phase == EX_FAILED && a.ex.decline == DECLINE_MALFORMED &&
	      strstr(a.ex.outbox[0].u.decline.detail, "truncated"),
	      "a malformed message is declined, and the partner is told what was wrong");
}

static void test_decline_from_peer(void)
{
	static struct side a;
	struct wire_msg d = { .type = WIRE_DECLINE };

	side_init(&a, 1, 100, NULL);
	start(&a.ex, &a.self, &a.clients, a.nonce);
	d.u.decline.reason = DECLINE_AUTH_FAILED;
	strcpy(d.u.decline.detail, "bad proof");
	a.ex.noutbox = 0;
	ex_on_msg(&a.ex, &d);
	CHECK(a.ex.phase == EX_FAILED && a.ex.declined_by_peer &&
	      a.ex.decline == DECLINE_AUTH_FAILED && a.ex.noutbox == 0,
	      "a DECLINE from the partner ends the exchange without an answer");
	CHECK(strstr(a.ex.why, "bad proof") != NULL, "and its detail is kept: %s", a.ex.why);
}

static void test_decline_detail_is_sanitised(void)
{
	static struct side a;

	side_init(&a, 1, 100, NULL);
	start(&a.ex, &a.self, &a.clients, a.nonce);
	a.ex.noutbox = 0;
	ex_fail(&a.ex, DECLINE_PROTOCOL, "tab\there, newline\nthere");
	CHECK(strchr(a.ex.outbox[0].u.decline.detail, '\n') == NULL &&
	      strchr(a.ex.outbox[0].u.decline.detail, '\t') == NULL,
	      "control characters never reach the partner");
	CHECK(wire_encode(&a.ex.outbox[0], (uint8_t[CCM_MSG_MAX]){ 0 }, CCM_MSG_MAX) > 0,
	      "the DECLINE we queue is encodable");
}

int main(void)
{
	test_plain_exchange();
	test_highest_common_version();
	test_no_common_version();
	test_same_key();
	test_wrong_key();
	test_keys_in_rotation();
	test_key_on_one_side();
	test_replayed_proof_is_refused();
	test_reflected_proof_is_refused();
	test_cluster_and_node_conflicts();
	test_out_of_order_messages();
	test_decline_from_peer();
	test_decline_detail_is_sanitised();
	return check_done();
}
