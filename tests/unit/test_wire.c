/* test_wire: the post-handshake codec.  Round trips at typical and limit
 * values, the exact byte layout against hand-built frames, and every way a
 * frame can be malformed: each must fail with -EBADMSG and a message that
 * names the field. */
#include "proto/wire.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "base/name.h"

#define BUF 16384

/* --- a byte builder, independent of the codec ---------------------------- */

struct bb {
	uint8_t b[BUF];
	size_t n;
};

static void b_int(struct bb *b, uint64_t v, int n)
{
	while (n--)
		b->b[b->n++] = (uint8_t)(v >> (8 * n));
}

static void b_bytes(struct bb *b, const void *p, size_t n)
{
	memcpy(b->b + b->n, p, n);
	b->n += n;
}

static void b_str(struct bb *b, const char *s)
{
	b_int(b, strlen(s), 1);
	b_bytes(b, s, strlen(s));
}

static void b_hdr(struct bb *b, unsigned type)
{
	b->n = 0;
	b_int(b, WIRE_MAGIC, 4);
	b_int(b, WIRE_FORMAT, 1);
	b_int(b, type, 1);
	b_int(b, 0, 2);
	b_int(b, 0, 4);   /* body length: b_fix() */
	b_int(b, 0, 4);   /* round */
	b_int(b, 0, 4);   /* peer round */
}

/* Set the header's body length to what follows it. */
static void b_fix(struct bb *b)
{
	size_t body = b->n - WIRE_HEADER_LEN;
	size_t n = b->n;

	b->n = 8;
	b_int(b, body, 4);
	b->n = n;
}

static void set_be(uint8_t *p, uint64_t v, int n)
{
	while (n--)
		p[n] = (uint8_t)v, v >>= 8;
}

/* --- messages ------------------------------------------------------------ */

static struct wire_msg msg, out;
static uint8_t enc[BUF], enc2[BUF];
static struct bb bb;

static void mk_hello(struct wire_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = WIRE_HELLO;
	m->u.hello.ver_min = 1;
	m->u.hello.ver_max = 3;
	m->u.hello.node_id = 7;
	m->u.hello.epoch = 0x0102030405060708ull;
	m->u.hello.caps = WIRE_CAP_HEARTBEAT;
	m->u.hello.auth = 1;
	strcpy(m->u.hello.cluster, "ha-pair.01");
	for (int i = 0; i < CCM_NONCE_LEN; i++)
		m->u.hello.nonce[i] = (uint8_t)(i * 7 + 1);
}

static void mk_auth(struct wire_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = WIRE_AUTH;
	m->u.auth.version = 1;
	for (int i = 0; i < CCM_MAC_LEN; i++)
		m->u.auth.mac[i] = (uint8_t)(0xff - i);
}

/* n clients with names of length len (>= 2), all distinct. */
static void mk_clients(struct wire_msg *m, unsigned n, size_t len)
{
	memset(m, 0, sizeof(*m));
	m->type = WIRE_CLIENTS;
	m->u.clients.count = (uint16_t)n;
	for (unsigned i = 0; i < n; i++) {
		struct wire_client *c = &m->u.clients.c[i];

		memset(c->name, 'x', len);
		c->name[0] = 'c';
		c->name[len - 2] = (char)('a' + i / 26);
		c->name[len - 1] = (char)('a' + i % 26);
		c->nports = (uint16_t)(1 + i % CCM_PORTS_MAX);
		c->port_size = 4096u * (1 + i);
	}
}

/* n ports spread over clients of name length len, CCM_PORTS_MAX each. */
static void mk_ports(struct wire_msg *m, unsigned n, size_t len)
{
	memset(m, 0, sizeof(*m));
	m->type = WIRE_PORTS;
	m->u.ports.link = 1;
	m->u.ports.count = (uint16_t)n;
	for (unsigned i = 0; i < n; i++) {
		struct wire_port *p = &m->u.ports.p[i];

		memset(p->client, 'p', len);
		p->client[len - 1] = (char)('a' + i / CCM_PORTS_MAX);
		p->index = (uint16_t)(i % CCM_PORTS_MAX);
		p->addr = 0x7f0000000000ull + i * 0x10000ull;
		p->rkey = 0x1000u + i;
		p->len = 4096u << (i % 15);
	}
}

static void mk_decline(struct wire_msg *m, const char *detail)
{
	memset(m, 0, sizeof(*m));
	m->type = WIRE_DECLINE;
	m->u.decline.reason = DECLINE_AUTH_FAILED;
	strcpy(m->u.decline.detail, detail);
}

static void mk_bye(struct wire_msg *m, unsigned reason)
{
	memset(m, 0, sizeof(*m));
	m->type = WIRE_BYE;
	m->u.bye.reason = (uint16_t)reason;
}

static void mk_port_msg(struct wire_msg *m, const char *client, unsigned port, unsigned len)
{
	memset(m, 0, sizeof(*m));
	m->type = WIRE_PORT_MSG;
	strcpy(m->u.port_msg.client, client);
	m->u.port_msg.port = (uint16_t)port;
	m->u.port_msg.seq = 0x0102030405060708ull;
	m->u.port_msg.len = (uint16_t)len;
	for (unsigned i = 0; i < len; i++)
		m->u.port_msg.data[i] = (uint8_t)(i * 7);
}

static void mk_notify(struct wire_msg *m, const char *client, unsigned port)
{
	memset(m, 0, sizeof(*m));
	m->type = WIRE_PORT_NOTIFY;
	strcpy(m->u.notify.client, client);
	m->u.notify.port = (uint16_t)port;
	m->u.notify.seq = 0x1112131415161718ull;
	m->u.notify.off = 4096;
	m->u.notify.len = 65536;
}

static int msg_equal(const struct wire_msg *a, const struct wire_msg *b)
{
	if (a->type != b->type)
		return 0;
	switch (a->type) {
	case WIRE_HELLO: {
		const struct wire_hello *x = &a->u.hello, *y = &b->u.hello;

		return x->ver_min == y->ver_min && x->ver_max == y->ver_max &&
		       x->node_id == y->node_id && x->epoch == y->epoch &&
		       x->caps == y->caps && x->auth == y->auth &&
		       !strcmp(x->cluster, y->cluster) &&
		       !memcmp(x->nonce, y->nonce, sizeof(x->nonce));
	}
	case WIRE_AUTH:
		return a->u.auth.version == b->u.auth.version &&
		       !memcmp(a->u.auth.mac, b->u.auth.mac, CCM_MAC_LEN);
	case WIRE_CLIENTS:
		if (a->u.clients.count != b->u.clients.count)
			return 0;
		for (unsigned i = 0; i < a->u.clients.count; i++) {
			const struct wire_client *x = &a->u.clients.c[i], *y = &b->u.clients.c[i];

			if (strcmp(x->name, y->name) || x->nports != y->nports ||
			    x->port_size != y->port_size)
				return 0;
		}
		return 1;
	case WIRE_PORTS:
	case WIRE_LINK_JOIN:
		if (a->u.ports.count != b->u.ports.count || a->u.ports.link != b->u.ports.link)
			return 0;
		for (unsigned i = 0; i < a->u.ports.count; i++) {
			const struct wire_port *x = &a->u.ports.p[i], *y = &b->u.ports.p[i];

			if (strcmp(x->client, y->client) || x->index != y->index ||
			    x->addr != y->addr || x->rkey != y->rkey || x->len != y->len)
				return 0;
		}
		return 1;
	case WIRE_DECLINE:
		return a->u.decline.reason == b->u.decline.reason &&
		       !strcmp(a->u.decline.detail, b->u.decline.detail);
	case WIRE_BYE:
		return a->u.bye.reason == b->u.bye.reason;
	case WIRE_PORT_MSG: {
		const struct wire_port_msg *x = &a->u.port_msg, *y = &b->u.port_msg;

		return !strcmp(x->client, y->client) && x->port == y->port && x->seq == y->seq &&
		       x->len == y->len && !memcmp(x->data, y->data, x->len);
	}
	case WIRE_PORT_NOTIFY: {
		const struct wire_port_notify *x = &a->u.notify, *y = &b->u.notify;

		return !strcmp(x->client, y->client) && x->port == y->port && x->seq == y->seq &&
		       x->off == y->off && x->len == y->len;
	}
	}
	return 0;
}

/* Encode, decode, compare fields, re-encode, compare bytes. */
static int roundtrip(const struct wire_msg *m, const char *what)
{
	struct errbuf e = { "" };
	int n = wire_encode(m, enc, sizeof(enc));
	int rc = n > 0 ? wire_decode(enc, (size_t)n, &out, &e) : n;
	int n2 = rc ? -1 : wire_encode(&out, enc2, sizeof(enc2));
	int ok = rc == 0 && msg_equal(m, &out) && n2 == n && !memcmp(enc, enc2, (size_t)n);

	CHECK(ok, "round trip: %s (%d bytes) %s", what, n, rc ? e.msg : "");
	return n;
}

/* buf must be refused, with a message containing want. */
static int refused(const uint8_t *buf, size_t len, const char *want, const char *what)
{
	struct errbuf e = { "" };
	int rc = wire_decode(buf, len, &out, &e);
	int ok = rc == -EBADMSG && strstr(e.msg, want);

	CHECK(ok, "refuse %s: \"%s\"", what, e.msg);
	return ok;
}

/* --- tests --------------------------------------------------------------- */

static void test_roundtrips(void)
{
	mk_hello(&msg);
	roundtrip(&msg, "hello typical");
	msg.u.hello.ver_min = 1;
	msg.u.hello.ver_max = UINT16_MAX;
	msg.u.hello.node_id = UINT32_MAX;
	msg.u.hello.epoch = UINT64_MAX;
	msg.u.hello.caps = UINT64_MAX;  /* unknown bits travel untouched */
	msg.u.hello.auth = 0;
	memset(msg.u.hello.cluster, 'Z', CCM_CLUSTER_MAX);
	roundtrip(&msg, "hello limits, 63-byte cluster name");
	strcpy(msg.u.hello.cluster, "a");
	msg.u.hello.ver_min = msg.u.hello.ver_max = 5;
	roundtrip(&msg, "hello 1-byte cluster, ver_min == ver_max");
	strcpy(msg.u.hello.cluster, "AZaz09._-");
	roundtrip(&msg, "hello every cluster character class");

	mk_auth(&msg);
	roundtrip(&msg, "auth");
	msg.u.auth.version = UINT16_MAX;
	roundtrip(&msg, "auth max version");

	mk_clients(&msg, 0, 2);
	roundtrip(&msg, "clients empty");
	mk_clients(&msg, 3, 4);
	roundtrip(&msg, "clients typical");
	mk_clients(&msg, CCM_CLIENTS_MAX, CCM_NAME_MAX);
	msg.u.clients.c[0].nports = CCM_PORTS_MAX;
	msg.u.clients.c[1].port_size = CCM_PORT_SIZE_MAX;
	msg.u.clients.c[2].port_size = CCM_PORT_SIZE_MIN;
	roundtrip(&msg, "clients 32 x 31-byte names, limit sizes");
	mk_clients(&msg, 1, 2);
	strcpy(msg.u.clients.c[0].name, "z");
	roundtrip(&msg, "clients 1-byte name");
	strcpy(msg.u.clients.c[0].name, "a_0_z9");
	roundtrip(&msg, "clients name with digits and underscores");

	mk_ports(&msg, 0, 2);
	roundtrip(&msg, "ports empty");
	mk_ports(&msg, 5, 6);
	roundtrip(&msg, "ports typical");
	mk_ports(&msg, CCM_PORTS_TOTAL, CCM_NAME_MAX);
	msg.u.ports.p[0].addr = UINT64_MAX;
	msg.u.ports.p[0].rkey = UINT32_MAX;
	msg.u.ports.p[0].len = CCM_PORT_SIZE_MAX;
	roundtrip(&msg, "ports 256 x 31-byte names, limit values");

	mk_decline(&msg, "");
	roundtrip(&msg, "decline empty detail");
	mk_decline(&msg, "key mismatch: check /etc/ccm/psk");
	roundtrip(&msg, "decline typical");
	for (int i = 0; i < CCM_DETAIL_MAX; i++)
		msg.u.decline.detail[i] = (char)(0x20 + i % 95);
	msg.u.decline.reason = DECLINE_REASON_MAX;
	roundtrip(&msg, "decline 127-byte detail, all printable, last reason");
	msg.u.decline.reason = 1;
	roundtrip(&msg, "decline first reason");

	mk_bye(&msg, 0);
	roundtrip(&msg, "bye orderly");
	mk_bye(&msg, DECLINE_REASON_MAX);
	roundtrip(&msg, "bye with a reason");
}

/* The encoder's bytes against frames built by hand from wire.h. */
static void test_layout(void)
{
	uint8_t nonce[CCM_NONCE_LEN];
	int n;

	mk_hello(&msg);
	memcpy(nonce, msg.u.hello.nonce, sizeof(nonce));
	b_hdr(&bb, WIRE_HELLO);
	b_int(&bb, 1, 2);
	b_int(&bb, 3, 2);
	b_int(&bb, 7, 4);
	b_int(&bb, 0x0102030405060708ull, 8);
	b_int(&bb, 1, 8);
	b_int(&bb, 1, 1);
	b_str(&bb, "ha-pair.01");
	b_bytes(&bb, nonce, sizeof(nonce));
	b_fix(&bb);
	n = wire_encode(&msg, enc, sizeof(enc));
	CHECK(n == (int)bb.n && !memcmp(enc, bb.b, bb.n), "layout: hello (%d bytes)", n);
	CHECK(!memcmp(enc, "CCMX\x02\x01\x00\x00\x00\x00\x00", 11) && enc[11] == bb.n - 20 &&
	      !memcmp(enc + 12, "\x00\x00\x00\x00\x00\x00\x00\x00", 8),
	      "layout: header bytes spelled out");

	mk_clients(&msg, 1, 3);
	b_hdr(&bb, WIRE_CLIENTS);
	b_int(&bb, 1, 2);
	b_str(&bb, "caa");
	b_int(&bb, 1, 2);
	b_int(&bb, 4096, 4);
	b_fix(&bb);
	n = wire_encode(&msg, enc, sizeof(enc));
	CHECK(n == (int)bb.n && !memcmp(enc, bb.b, bb.n), "layout: clients");

	mk_ports(&msg, 1, 2);
	b_hdr(&bb, WIRE_PORTS);
	b_int(&bb, 1, 1);
	b_int(&bb, 1, 2);
	b_str(&bb, "pa");
	b_int(&bb, 0, 2);
	b_int(&bb, 0x7f0000000000ull, 8);
	b_int(&bb, 0x1000, 4);
	b_int(&bb, 4096, 4);
	b_fix(&bb);
	n = wire_encode(&msg, enc, sizeof(enc));
	CHECK(n == (int)bb.n && !memcmp(enc, bb.b, bb.n), "layout: ports");

	mk_decline(&msg, "no");
	b_hdr(&bb, WIRE_DECLINE);
	b_int(&bb, DECLINE_AUTH_FAILED, 2);
	b_str(&bb, "no");
	b_fix(&bb);
	n = wire_encode(&msg, enc, sizeof(enc));
	CHECK(n == (int)bb.n && !memcmp(enc, bb.b, bb.n), "layout: decline");

	mk_auth(&msg);
	n = wire_encode(&msg, enc, sizeof(enc));
	CHECK(n == 20 + 2 + CCM_MAC_LEN && enc[20] == 0 && enc[21] == 1 && enc[22] == 0xff,
	      "layout: auth");
	mk_bye(&msg, 0x0102);
	msg.u.bye.reason = 3;
	n = wire_encode(&msg, enc, sizeof(enc));
	CHECK(n == 22 && enc[11] == 2 && enc[20] == 0 && enc[21] == 3, "layout: bye");
}

static void test_header(void)
{
	int n;

	mk_bye(&msg, 0);
	n = wire_encode(&msg, enc, sizeof(enc));
	refused(enc, 0, "shorter than the 20-byte header", "empty buffer");
	refused(enc, 11, "header: 11 bytes", "short header");
	memcpy(enc2, enc, (size_t)n);
	enc2[3] = 'Y';
	refused(enc2, (size_t)n, "header: bad magic 0x4343", "bad magic");
	memcpy(enc2, enc, (size_t)n);
	enc2[4] = 3;
	refused(enc2, (size_t)n, "header: format 3", "bad format");
	memcpy(enc2, enc, (size_t)n);
	enc2[5] = 0;
	refused(enc2, (size_t)n, "header: unknown type 0", "type 0");
	enc2[5] = 10;
	refused(enc2, (size_t)n, "header: unknown type 10", "type 10");
	enc2[5] = 0xff;
	refused(enc2, (size_t)n, "header: unknown type 255", "type 255");
	memcpy(enc2, enc, (size_t)n);
	enc2[7] = 1;
	refused(enc2, (size_t)n, "header: reserved", "non-zero reserved (low)");
	enc2[7] = 0, enc2[6] = 0x80;
	refused(enc2, (size_t)n, "header: reserved", "non-zero reserved (high)");
	memcpy(enc2, enc, (size_t)n);
	enc2[11] = 3;
	refused(enc2, (size_t)n, "header: body length 3 but 2 bytes follow",
		"body length above what follows");
	enc2[11] = 1;
	refused(enc2, (size_t)n, "header: body length 1 but 2 bytes follow",
		"body length below what follows");
	set_be(enc2 + 8, 0xffffffffu, 4);
	refused(enc2, (size_t)n, "body length 4294967295", "body length 2^32-1");
	memcpy(enc2, enc, (size_t)n);
	enc2[n] = 0;
	refused(enc2, (size_t)n + 1, "header: body length 2 but 3 bytes follow",
		"a byte after the stated body");
}

/* Every prefix of a valid frame fails cleanly: as is (the header's length
 * no longer matches), and with the header's length patched to the prefix
 * so the body reader itself runs out.  A byte beyond the body is refused
 * as trailing. */
static void prefixes(const struct wire_msg *m, const char *what)
{
	struct errbuf e;
	int n = wire_encode(m, enc, sizeof(enc)), bad = 0;

	for (int k = 0; k < n; k++) {
		uint8_t *p = enc2;
		int rc;

		memcpy(p, enc, (size_t)k);
		rc = wire_decode(p, (size_t)k, &out, &e);
		bad += !EXPECT(rc == -EBADMSG, "%s: prefix %d rc %d", what, k, rc);
		if (k < WIRE_HEADER_LEN)
			continue;
		set_be(p + 8, (uint64_t)(k - WIRE_HEADER_LEN), 4);
		rc = wire_decode(p, (size_t)k, &out, &e);
		bad += !EXPECT(rc == -EBADMSG && strstr(e.msg, "truncated at"),
			       "%s: prefix %d with fixed length: %d \"%s\"", what, k, rc, e.msg);
	}
	CHECK(n > 0 && !bad, "%s: all %d truncations refused", what, n);

	memcpy(enc2, enc, (size_t)n);
	enc2[n] = 0;
	set_be(enc2 + 8, (uint64_t)(n + 1 - WIRE_HEADER_LEN), 4);
	refused(enc2, (size_t)n + 1, "1 trailing byte after", what);
}

static void test_truncation(void)
{
	mk_hello(&msg);
	prefixes(&msg, "hello");
	mk_auth(&msg);
	prefixes(&msg, "auth");
	mk_clients(&msg, 3, 5);
	prefixes(&msg, "clients");
	mk_clients(&msg, 0, 5);
	prefixes(&msg, "clients empty");
	mk_ports(&msg, 3, 5);
	prefixes(&msg, "ports");
	mk_decline(&msg, "why not");
	prefixes(&msg, "decline");
	mk_decline(&msg, "");
	prefixes(&msg, "decline empty detail");
	mk_bye(&msg, 0);
	prefixes(&msg, "bye");
	mk_port_msg(&msg, "fmon", 0, 8);
	prefixes(&msg, "port message");
	mk_notify(&msg, "nvmirror", 1);
	prefixes(&msg, "port notify");
}

/* The messages between two clients' ports. */
static void test_port_messages(void)
{
	int n;

	mk_port_msg(&msg, "fmon", 0, 1);
	roundtrip(&msg, "port message, 1 byte");
	mk_port_msg(&msg, "nvmirror", CCM_PORTS_MAX - 1, CCM_PORT_MSG_MAX);
	roundtrip(&msg, "port message, largest, last port");
	mk_notify(&msg, "nvmirror", 1);
	roundtrip(&msg, "port notify");

	mk_port_msg(&msg, "fmon", 0, 4);
	n = wire_encode(&msg, enc, sizeof(enc));
	/* body at 20: u8 4, "fmon", u16 port at 25, u64 seq at 27, u16 len at 35 */
	memcpy(enc2, enc, (size_t)n);
	set_be(enc2 + 25, CCM_PORTS_MAX, 2);
	refused(enc2, (size_t)n, "PORT_MSG: port 64 is not below 64", "port message, port 64");
	memcpy(enc2, enc, (size_t)n);
	set_be(enc2 + 35, 0, 2);
	refused(enc2, (size_t)n, "PORT_MSG: len 0 is outside 1..3072", "port message, len 0");
	memcpy(enc2, enc, (size_t)n);
	set_be(enc2 + 35, 5, 2);
	refused(enc2, (size_t)n, "PORT_MSG: truncated at data", "port message, len beyond the body");
	memcpy(enc2, enc, (size_t)n);
	set_be(enc2 + 35, 3, 2);
	refused(enc2, (size_t)n, "trailing byte", "port message, len short of the body");
	memcpy(enc2, enc, (size_t)n);
	enc2[21] = 'F';
	refused(enc2, (size_t)n, "PORT_MSG: client", "port message, client name with a capital");
	mk_notify(&msg, "fmon", 0);
	n = wire_encode(&msg, enc, sizeof(enc));
	set_be(enc + 25, 1000, 2);
	refused(enc, (size_t)n, "PORT_NOTIFY: port 1000 is not below 64", "notify, port 1000");

	mk_port_msg(&msg, "fmon", 0, CCM_PORT_MSG_MAX + 1);
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: port message over the limit");
	mk_port_msg(&msg, "fmon", CCM_PORTS_MAX, 1);
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: port message to port 64");
	mk_port_msg(&msg, "Fmon", 0, 1);
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: port message, bad client name");
}

/* HELLO body offsets (from the frame start). */
enum { H_VMIN = 20, H_VMAX = 22, H_AUTH = 44, H_CLEN = 45, H_CLUSTER = 46 };

static void test_hello_rules(void)
{
	static const struct {
		int off;
		uint8_t byte;
		const char *want;
	} cases[] = {
		{ H_CLUSTER, 0x01, "HELLO: cluster name has a non-printable byte 0x01 at offset 0" },
		{ H_CLUSTER + 3, 0x00, "HELLO: cluster name has a non-printable byte 0x00 at offset 3" },
		{ H_CLUSTER + 2, 0x80, "non-printable byte 0x80" },
		{ H_CLUSTER + 1, ' ', "HELLO: cluster name has ' ' at offset 1" },
		{ H_CLUSTER + 1, '/', "cluster name has '/'" },
		{ H_CLUSTER + 1, '!', "cluster name has '!'" },
		{ H_AUTH, 2, "HELLO: auth 2 is neither 0 nor 1" },
		{ H_AUTH, 0xff, "HELLO: auth 255" },
	};
	int n;

	mk_hello(&msg);
	n = wire_encode(&msg, enc, sizeof(enc));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(enc2, enc, (size_t)n);
		enc2[cases[i].off] = cases[i].byte;
		refused(enc2, (size_t)n, cases[i].want, cases[i].want);
	}

	memcpy(enc2, enc, (size_t)n);
	set_be(enc2 + H_VMIN, 0, 2);
	refused(enc2, (size_t)n, "HELLO: ver_min 0", "ver_min 0");
	memcpy(enc2, enc, (size_t)n);
	set_be(enc2 + H_VMIN, 4, 2);
	refused(enc2, (size_t)n, "HELLO: ver_min 4 is above ver_max 3", "ver_min > ver_max");
	memcpy(enc2, enc, (size_t)n);
	set_be(enc2 + H_VMAX, 0, 2);
	refused(enc2, (size_t)n, "ver_max 0", "ver_max 0");

	/* Cluster length: 0, and one over the limit backed by real bytes. */
	b_hdr(&bb, WIRE_HELLO);
	b_bytes(&bb, enc + 20, H_CLEN - 20);
	b_int(&bb, 0, 1);
	b_bytes(&bb, msg.u.hello.nonce, CCM_NONCE_LEN);
	b_fix(&bb);
	refused(bb.b, bb.n, "HELLO: cluster name is empty", "empty cluster name");
	b_hdr(&bb, WIRE_HELLO);
	b_bytes(&bb, enc + 20, H_CLEN - 20);
	b_int(&bb, CCM_CLUSTER_MAX + 1, 1);
	for (int i = 0; i <= CCM_CLUSTER_MAX; i++)
		b_int(&bb, 'a', 1);
	b_bytes(&bb, msg.u.hello.nonce, CCM_NONCE_LEN);
	b_fix(&bb);
	refused(bb.b, bb.n, "HELLO: cluster name length 64 exceeds the limit of 63",
		"64-byte cluster name");
	bb.b[H_CLEN] = 0xff;
	refused(bb.b, bb.n, "cluster name length 255", "cluster name length 255");

	/* Nonce one byte short, and one byte long (trailing). */
	refused(enc, (size_t)n - 1, "body length", "hello short by one");
	memcpy(enc2, enc, (size_t)n);
	set_be(enc2 + 8, (uint64_t)(n - 21), 4);
	refused(enc2, (size_t)n - 1, "HELLO: truncated at nonce (need 32 bytes, 31 left)",
		"hello nonce short by one, length fixed");

	/* Encoder side of the same rules. */
	mk_hello(&msg);
	msg.u.hello.ver_min = 0;
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: hello ver_min 0");
	mk_hello(&msg);
	msg.u.hello.ver_max = 0;
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: hello ver_min > ver_max");
	mk_hello(&msg);
	msg.u.hello.auth = 2;
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: hello auth 2");
	mk_hello(&msg);
	msg.u.hello.cluster[0] = 0;
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: hello empty cluster");
	strcpy(msg.u.hello.cluster, "a b");
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: hello cluster with space");
	memset(msg.u.hello.cluster, 'a', sizeof(msg.u.hello.cluster));  /* no NUL */
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: hello unterminated cluster");
}

static void test_auth_rules(void)
{
	int n;

	mk_auth(&msg);
	n = wire_encode(&msg, enc, sizeof(enc));
	memcpy(enc2, enc, (size_t)n);
	set_be(enc2 + 20, 0, 2);
	refused(enc2, (size_t)n, "AUTH: version 0", "auth version 0");
	msg.u.auth.version = 0;
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: auth version 0");
}

/* A CLIENTS frame with one client whose fields are given. */
static void b_client(struct bb *b, const char *name, unsigned nports, uint32_t size)
{
	b_str(b, name);
	b_int(b, nports, 2);
	b_int(b, size, 4);
}

static void test_clients_rules(void)
{
	static const struct {
		const char *name;
		unsigned nports;
		uint32_t size;
		const char *want;
	} cases[] = {
		{ "", 1, 4096, "CLIENTS[1]: name is empty" },
		{ "9db", 1, 4096, "CLIENTS[1]: name has '9' at offset 0, outside [a-z][a-z0-9_]" },
		{ "_db", 1, 4096, "name has '_' at offset 0" },
		{ "dB", 1, 4096, "name has 'B' at offset 1" },
		{ "d-b", 1, 4096, "name has '-' at offset 1" },
		{ "d\tb", 1, 4096, "name has a non-printable byte 0x09 at offset 1" },
		{ "db", 0, 4096, "CLIENTS[1]: nports 0 is outside 1..64" },
		{ "db", 65, 4096, "nports 65 is outside 1..64" },
		{ "db", 65535, 4096, "nports 65535" },
		{ "db", 1, 0, "CLIENTS[1]: port_size 0 is outside 4096..67108864" },
		{ "db", 1, 100, "CLIENTS[1]: port_size 100 is not a multiple of 4096" },
		{ "db", 1, 4097, "port_size 4097 is not a multiple of 4096" },
		{ "db", 1, (64u << 20) + 4096, "port_size 67112960 is outside" },
		{ "db", 1, 0xfffff000u, "port_size 4294963200 is outside" },
		{ "fw", 1, 4096, "CLIENTS[1]: name \"fw\" repeats CLIENTS[0]" },
	};
	char longname[CCM_NAME_MAX + 2];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		b_hdr(&bb, WIRE_CLIENTS);
		b_int(&bb, 3, 2);
		b_client(&bb, "fw", 2, 8192);
		b_client(&bb, cases[i].name, cases[i].nports, cases[i].size);
		b_client(&bb, "zz", 2, 8192);
		b_fix(&bb);
		refused(bb.b, bb.n, cases[i].want, cases[i].want);
	}

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	b_hdr(&bb, WIRE_CLIENTS);
	b_int(&bb, 1, 2);
	b_client(&bb, longname, 1, 4096);
	b_fix(&bb);
	refused(bb.b, bb.n, "CLIENTS[0]: name length 32 exceeds the limit of 31", "32-byte name");

	/* Count over the limit, with all 40 well-formed clients present. */
	b_hdr(&bb, WIRE_CLIENTS);
	b_int(&bb, 40, 2);
	for (int i = 0; i < 40; i++) {
		char nm[16];

		snprintf(nm, sizeof(nm), "c%u", (unsigned)i % 100);
		b_client(&bb, nm, 1, 4096);
	}
	b_fix(&bb);
	refused(bb.b, bb.n, "CLIENTS: count 40 exceeds the limit of 32", "40 clients");
	set_be(bb.b + 20, 0xffff, 2);
	refused(bb.b, bb.n, "CLIENTS: count 65535 exceeds", "65535 clients");
	/* A count that claims more than follows. */
	b_hdr(&bb, WIRE_CLIENTS);
	b_int(&bb, 2, 2);
	b_client(&bb, "one", 1, 4096);
	b_fix(&bb);
	refused(bb.b, bb.n, "CLIENTS[1]: truncated at name", "count 2, one client");
	b_hdr(&bb, WIRE_CLIENTS);
	b_int(&bb, 1, 2);
	b_client(&bb, "one", 1, 4096);
	b_client(&bb, "two", 1, 4096);
	b_fix(&bb);
	refused(bb.b, bb.n, "CLIENTS: 10 trailing bytes", "count 1, two clients");

	/* Encoder. */
	mk_clients(&msg, CCM_CLIENTS_MAX, 4);
	msg.u.clients.count = CCM_CLIENTS_MAX + 1;
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: 33 clients");
	mk_clients(&msg, 3, 4);
	strcpy(msg.u.clients.c[2].name, msg.u.clients.c[0].name);
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: duplicate client");
	mk_clients(&msg, 3, 4);
	strcpy(msg.u.clients.c[1].name, "Db");
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: upper-case name");
	mk_clients(&msg, 3, 4);
	msg.u.clients.c[1].name[0] = 0;
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: empty name");
	mk_clients(&msg, 3, 4);
	memset(msg.u.clients.c[1].name, 'a', sizeof(msg.u.clients.c[1].name));  /* no NUL */
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: unterminated name");
	mk_clients(&msg, 3, 4);
	msg.u.clients.c[1].nports = 0;
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: nports 0");
	mk_clients(&msg, 3, 4);
	msg.u.clients.c[1].nports = CCM_PORTS_MAX + 1;
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: nports 65");
	mk_clients(&msg, 3, 4);
	msg.u.clients.c[1].port_size = 4095;
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: port_size 4095");
	mk_clients(&msg, 3, 4);
	msg.u.clients.c[1].port_size = CCM_PORT_SIZE_MAX + 4096;
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: port_size over max");
}

static void b_port(struct bb *b, const char *client, unsigned index, uint32_t len)
{
	b_str(b, client);
	b_int(b, index, 2);
	b_int(b, 0x1000, 8);
	b_int(b, 42, 4);
	b_int(b, len, 4);
}

static void test_ports_rules(void)
{
	static const struct {
		const char *client;
		unsigned index;
		uint32_t len;
		const char *want;
	} cases[] = {
		{ "", 0, 4096, "PORTS[3]: client is empty" },
		{ "Db", 0, 4096, "PORTS[3]: client has 'D' at offset 0" },
		{ "d.b", 0, 4096, "client has '.' at offset 1" },
		{ "d\x7f", 0, 4096, "client has a non-printable byte 0x7f" },
		{ "db", 64, 4096, "PORTS[3]: index 64 is not below 64" },
		{ "db", 65535, 4096, "index 65535" },
		{ "db", 0, 100, "PORTS[3]: len 100 is not a multiple of 4096" },
		{ "db", 0, 0, "PORTS[3]: len 0 is outside" },
		{ "db", 0, 128u << 20, "len 134217728 is outside" },
		{ "fw", 1, 4096, "PORTS[3]: client \"fw\" index 1 repeats PORTS[1]" },
	};
	int n;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		b_hdr(&bb, WIRE_PORTS);
		b_int(&bb, 0, 1);
		b_int(&bb, 5, 2);
		b_port(&bb, "fw", 0, 4096);
		b_port(&bb, "fw", 1, 4096);
		b_port(&bb, "db", 1, 4096);   /* same index, other client: fine */
		b_port(&bb, cases[i].client, cases[i].index, cases[i].len);
		b_port(&bb, "zz", 0, 4096);
		b_fix(&bb);
		refused(bb.b, bb.n, cases[i].want, cases[i].want);
	}

	/* Count over the limit with every port present. */
	mk_ports(&msg, CCM_PORTS_TOTAL, 4);
	n = wire_encode(&msg, enc, sizeof(enc));
	CHECK(n > 0, "encode 256 ports");
	b_hdr(&bb, WIRE_PORTS);
	b_int(&bb, 1, 1);
	b_int(&bb, CCM_PORTS_TOTAL + 1, 2);
	b_bytes(&bb, enc + 23, (size_t)n - 23);
	b_port(&bb, "extra", 0, 4096);
	b_fix(&bb);
	refused(bb.b, bb.n, "PORTS: count 257 exceeds the limit of 256", "257 ports");

	/* The link. */
	b_hdr(&bb, WIRE_PORTS);
	b_int(&bb, CCM_LINKS_MAX, 1);
	b_int(&bb, 0, 2);
	b_fix(&bb);
	refused(bb.b, bb.n, "PORTS: link 4 is not below 4", "ports for link 4");
	mk_ports(&msg, 3, 4);
	msg.u.ports.link = CCM_LINKS_MAX;
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: link 4");
	mk_ports(&msg, 3, 4);
	msg.type = WIRE_LINK_JOIN;
	roundtrip(&msg, "link join");

	/* Encoder. */
	mk_ports(&msg, CCM_PORTS_TOTAL, 4);
	msg.u.ports.count = CCM_PORTS_TOTAL + 1;
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: 257 ports");
	mk_ports(&msg, 3, 4);
	msg.u.ports.p[2] = msg.u.ports.p[0];
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: duplicate port");
	mk_ports(&msg, 3, 4);
	msg.u.ports.p[1].index = CCM_PORTS_MAX;
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: index 64");
	mk_ports(&msg, 3, 4);
	msg.u.ports.p[1].len = 100;
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: len 100");
	mk_ports(&msg, 3, 4);
	strcpy(msg.u.ports.p[1].client, "1x");
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: bad client name");
}

static void test_decline_bye_rules(void)
{
	int n;

	mk_decline(&msg, "ok");
	n = wire_encode(&msg, enc, sizeof(enc));
	memcpy(enc2, enc, (size_t)n);
	set_be(enc2 + 20, 99, 2);
	refused(enc2, (size_t)n, "DECLINE: unknown reason 99", "decline reason 99");
	set_be(enc2 + 20, DECLINE_REASON_MAX + 1, 2);
	refused(enc2, (size_t)n, "DECLINE: unknown reason 8", "decline reason 8");
	set_be(enc2 + 20, 0, 2);
	refused(enc2, (size_t)n, "DECLINE: reason 0", "decline reason 0");
	memcpy(enc2, enc, (size_t)n);
	enc2[24] = '\n';
	refused(enc2, (size_t)n, "DECLINE: detail has a non-printable byte 0x0a at offset 1",
		"decline detail with a newline");
	enc2[24] = 0;
	refused(enc2, (size_t)n, "detail has a non-printable byte 0x00", "decline detail with a NUL");

	b_hdr(&bb, WIRE_DECLINE);
	b_int(&bb, 1, 2);
	b_int(&bb, CCM_DETAIL_MAX + 1, 1);
	for (int i = 0; i <= CCM_DETAIL_MAX; i++)
		b_int(&bb, 'x', 1);
	b_fix(&bb);
	refused(bb.b, bb.n, "DECLINE: detail length 128 exceeds the limit of 127",
		"128-byte detail");

	mk_bye(&msg, 0);
	n = wire_encode(&msg, enc, sizeof(enc));
	set_be(enc + 20, DECLINE_REASON_MAX + 1, 2);
	refused(enc, (size_t)n, "BYE: unknown reason 8", "bye reason 8");

	mk_decline(&msg, "x");
	msg.u.decline.reason = 0;
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: decline reason 0");
	msg.u.decline.reason = DECLINE_REASON_MAX + 1;
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: decline reason 8");
	mk_decline(&msg, "tab\there");
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: decline detail with tab");
	memset(msg.u.decline.detail, 'a', sizeof(msg.u.decline.detail));
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: unterminated detail");
	mk_bye(&msg, DECLINE_REASON_MAX + 1);
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: bye reason 8");
	mk_bye(&msg, 0);
	msg.type = (enum wire_type)0;
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: type 0");
	msg.type = (enum wire_type)10;
	CHECK(wire_encode(&msg, enc2, sizeof(enc2)) == -EINVAL, "encode: type 10");
}

/* Every capacity below the size is -EMSGSIZE, and nothing is written at
 * or beyond the capacity. */
static void test_capacity(void)
{
	static uint8_t guard[BUF];
	int n, bad = 0;

	mk_ports(&msg, 7, 9);
	n = wire_encode(&msg, enc, sizeof(enc));
	for (int cap = 0; cap < n; cap++) {
		int rc;

		memset(guard, 0xa5, (size_t)n);
		rc = wire_encode(&msg, guard, (size_t)cap);
		bad += !EXPECT(rc == -EMSGSIZE, "cap %d: rc %d", cap, rc);
		for (int i = cap; i < n; i++)
			bad += !EXPECT(guard[i] == 0xa5, "cap %d: byte %d written", cap, i);
	}
	CHECK(!bad, "encode: all %d short capacities give -EMSGSIZE and stay inside", n);
	CHECK(wire_encode(&msg, guard, (size_t)n) == n && !memcmp(guard, enc, (size_t)n),
	      "encode: exact capacity");
	CHECK(wire_encode(&msg, NULL, 0) == -EMSGSIZE, "encode: NULL buffer, cap 0");
	msg.u.ports.p[0].len = 1;
	CHECK(wire_encode(&msg, guard, 3) == -EINVAL, "encode: -EINVAL wins over -EMSGSIZE");
}

static void test_names(void)
{
	static const char *const good_client[] = {
		"a", "z", "db", "nvram_mirror", "a0", "a_", "abcdefghijklmnopqrstuvwxyz01234",
	};
	static const char *const bad_client[] = {
		"", "A", "0a", "_a", "a-b", "a.b", "a b", "aB", "\x80", "abcdefghijklmnopqrstuvwxyz012345",
	};
	static const char *const good_cluster[] = {
		"a", "Z", "0", "-", ".", "_", "ha-pair.01_A",
		"123456789012345678901234567890123456789012345678901234567890123",
	};
	static const char *const bad_cluster[] = {
		"", "a b", "a/b", "a:b", "a\tb", "\xc3\xa9",
		"1234567890123456789012345678901234567890123456789012345678901234",
	};
	int bad = 0;

	for (size_t i = 0; i < sizeof(good_client) / sizeof(*good_client); i++)
		bad += !EXPECT(client_name_valid(good_client[i], strlen(good_client[i])),
			       "client \"%s\"", good_client[i]);
	for (size_t i = 0; i < sizeof(bad_client) / sizeof(*bad_client); i++)
		bad += !EXPECT(!client_name_valid(bad_client[i], strlen(bad_client[i])),
			       "client \"%s\"", bad_client[i]);
	for (size_t i = 0; i < sizeof(good_cluster) / sizeof(*good_cluster); i++)
		bad += !EXPECT(wire_valid_cluster_name(good_cluster[i]) == 1, "cluster \"%s\"", good_cluster[i]);
	for (size_t i = 0; i < sizeof(bad_cluster) / sizeof(*bad_cluster); i++)
		bad += !EXPECT(wire_valid_cluster_name(bad_cluster[i]) == 0, "cluster \"%s\"", bad_cluster[i]);
	CHECK(!bad, "name rules: valid and invalid client and cluster names");
	CHECK(!client_name_valid("ab\0c", 4) && client_name_valid("ab\0c", 2),
	      "a client name's length is n: a NUL within it is a bad byte");
	CHECK(!client_name_valid(NULL, 0) && !wire_valid_cluster_name(NULL),
	      "NULL names are invalid");

	CHECK(!strcmp(wire_type_name(WIRE_HELLO), "hello") &&
	      !strcmp(wire_type_name(WIRE_CLIENTS), "clients") &&
	      !strcmp(wire_type_name(WIRE_BYE), "bye") &&
	      !strcmp(wire_type_name((enum wire_type)0), "unknown") &&
	      !strcmp(wire_type_name((enum wire_type)99), "unknown"), "type names");
	CHECK(!strcmp(wire_decline_name(DECLINE_NONE), "none") &&
	      !strcmp(wire_decline_name(DECLINE_NO_COMMON_VERSION), "no-common-version") &&
	      !strcmp(wire_decline_name(DECLINE_AUTH_REQUIRED), "auth-required") &&
	      !strcmp(wire_decline_name(DECLINE_NODE_ID_CONFLICT), "node-id-conflict") &&
	      !strcmp(wire_decline_name(DECLINE_PROTOCOL), "protocol") &&
	      !strcmp(wire_decline_name((enum wire_decline_reason)8), "unknown"), "decline names");
}

/* Decoding the same buffer twice gives the same struct, and a failed
 * decode leaves no stale fields from a previous message. */
static void test_decode_resets(void)
{
	struct errbuf e;
	int n;

	mk_hello(&msg);
	n = wire_encode(&msg, enc, sizeof(enc));
	CHECK(!wire_decode(enc, (size_t)n, &out, &e), "decode hello");
	enc[0] = 0;
	CHECK(wire_decode(enc, (size_t)n, &out, &e) == -EBADMSG && out.u.hello.node_id == 0 &&
	      out.u.hello.cluster[0] == 0, "a failed decode leaves a zeroed struct");
	CHECK(wire_decode(enc, (size_t)n, &out, NULL) == -EBADMSG, "decode with no errbuf");
}

int main(void)
{
	test_roundtrips();
	test_layout();
	test_header();
	test_truncation();
	test_hello_rules();
	test_auth_rules();
	test_clients_rules();
	test_ports_rules();
	test_decline_bye_rules();
	test_port_messages();
	test_capacity();
	test_names();
	test_decode_resets();
	return check_done();
}
