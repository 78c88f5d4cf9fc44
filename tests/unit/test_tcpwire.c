/* test_tcpwire: the tcp backend's frame codec.  Round trips of every
 * header and body, the byte layout against hand-built frames, and every
 * malformed form refused with -EBADMSG and a message naming the field. */
#include "proto/tcpwire.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

static void set_be(uint8_t *p, uint64_t v, int n)
{
	while (n--)
		p[n] = (uint8_t)v, v >>= 8;
}

static void mkhdr(uint8_t out[TCPWIRE_HDR_LEN], uint32_t magic, unsigned fmt,
		  unsigned type, unsigned status, uint32_t body_len, uint32_t req_id)
{
	set_be(out, magic, 4);
	out[4] = (uint8_t)fmt;
	out[5] = (uint8_t)type;
	set_be(out + 6, status, 2);
	set_be(out + 8, body_len, 4);
	set_be(out + 12, req_id, 4);
}

static int hdr_refused(const uint8_t in[TCPWIRE_HDR_LEN], const char *want, const char *what)
{
	struct tcpwire_hdr h;
	struct errbuf e = { "" };
	int rc = tcpwire_decode_hdr(in, &h, &e);

	return CHECK(rc == -EBADMSG && strstr(e.msg, want), "refuse header %s: \"%s\"", what, e.msg);
}

static int hdr_ok(unsigned type, unsigned status, uint32_t body_len, uint32_t req_id)
{
	struct tcpwire_hdr h = { (uint8_t)type, (uint16_t)status, body_len, req_id }, d;
	struct errbuf e = { "" };
	uint8_t a[TCPWIRE_HDR_LEN], b[TCPWIRE_HDR_LEN];
	int rc = tcpwire_encode_hdr(&h, a);

	mkhdr(b, TCPWIRE_MAGIC, 1, type, status, body_len, req_id);
	rc = rc ? rc : tcpwire_decode_hdr(a, &d, &e);
	return EXPECT(rc == 0 && !memcmp(a, b, sizeof(a)) && d.type == type &&
		      d.status == status && d.body_len == body_len && d.req_id == req_id,
		      "header %s status %u len %u: %d \"%s\"",
		      tcpwire_type_name(type), status, body_len, rc, e.msg);
}

static void test_header(void)
{
	static const struct {
		unsigned type;
		uint32_t min, max;
		int reply;
	} t[] = {
		{ TCPWIRE_CONN_REQ, 8, 48, 0 },
		{ TCPWIRE_CONN_REP, 22, 86, 1 },
		{ TCPWIRE_READ_REQ, 16, 16, 0 },
		{ TCPWIRE_READ_REP, 1, CCM_OP_MAX, 1 },
		{ TCPWIRE_WRITE_REQ, 17, 16 + CCM_OP_MAX, 0 },
		{ TCPWIRE_WRITE_REP, 0, 0, 1 },
		{ TCPWIRE_MSG, 1, CCM_MSG_MAX, 0 },
		{ TCPWIRE_CONN_PROOF, 32, 32, 0 },
	};
	struct tcpwire_hdr h;
	uint8_t b[TCPWIRE_HDR_LEN];
	int bad = 0;

	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++) {
		struct tcpwire_hdr x = { (uint8_t)t[i].type, 0, 0, 0 };

		bad += !hdr_ok(t[i].type, 0, t[i].min, 1);
		bad += !hdr_ok(t[i].type, 0, t[i].max, UINT32_MAX);
		if (t[i].reply) {
			bad += !hdr_ok(t[i].type, 1, 0, 7);
			bad += !hdr_ok(t[i].type, TCPWIRE_STATUS_MAX, 0, 7);
		}
		/* Refused lengths, statuses, and the encoder agreeing. */
		mkhdr(b, TCPWIRE_MAGIC, 1, t[i].type, 0, t[i].max + 1, 0);
		bad += !EXPECT(tcpwire_decode_hdr(b, &h, NULL) == -EBADMSG, "%u: max+1", t[i].type);
		x.body_len = t[i].max + 1;
		bad += !EXPECT(tcpwire_encode_hdr(&x, b) == -EINVAL, "%u: encode max+1", t[i].type);
		if (t[i].min) {
			mkhdr(b, TCPWIRE_MAGIC, 1, t[i].type, 0, t[i].min - 1, 0);
			bad += !EXPECT(tcpwire_decode_hdr(b, &h, NULL) == -EBADMSG, "%u: min-1", t[i].type);
			x.body_len = t[i].min - 1;
			bad += !EXPECT(tcpwire_encode_hdr(&x, b) == -EINVAL, "%u: encode min-1", t[i].type);
		}
		mkhdr(b, TCPWIRE_MAGIC, 1, t[i].type, 5, 0, 0);
		bad += !EXPECT((tcpwire_decode_hdr(b, &h, NULL) == 0) == t[i].reply,
			       "%u: status 5, empty body", t[i].type);
		x.status = 5, x.body_len = 0;
		bad += !EXPECT((tcpwire_encode_hdr(&x, b) == 0) == t[i].reply,
			       "%u: encode status 5", t[i].type);
		mkhdr(b, TCPWIRE_MAGIC, 1, t[i].type, 5, 1, 0);
		bad += !EXPECT(tcpwire_decode_hdr(b, &h, NULL) == -EBADMSG,
			       "%u: status 5 with a body", t[i].type);
		mkhdr(b, TCPWIRE_MAGIC, 1, t[i].type, UINT32_MAX, UINT32_MAX, 0);
		bad += !EXPECT(tcpwire_decode_hdr(b, &h, NULL) == -EBADMSG, "%u: all ones", t[i].type);
	}
	CHECK(!bad, "header: every type at its body bounds, with and without status");

	mkhdr(b, TCPWIRE_MAGIC, 1, TCPWIRE_MSG, 0, 10, 0);
	b[3] = 'X';
	hdr_refused(b, "header: bad magic 0x43434d58", "bad magic (a wire.h frame)");
	mkhdr(b, TCPWIRE_MAGIC, 2, TCPWIRE_MSG, 0, 10, 0);
	hdr_refused(b, "header: format 2 is not 1", "bad format");
	mkhdr(b, TCPWIRE_MAGIC, 1, 0, 0, 10, 0);
	hdr_refused(b, "header: unknown type 0", "type 0");
	mkhdr(b, TCPWIRE_MAGIC, 1, 9, 0, 10, 0);
	hdr_refused(b, "header: unknown type 9", "type 9");
	mkhdr(b, TCPWIRE_MAGIC, 1, TCPWIRE_READ_REQ, 1, 16, 0);
	hdr_refused(b, "header: status 1 in a read-req", "status in a request");
	mkhdr(b, TCPWIRE_MAGIC, 1, TCPWIRE_MSG, 3, 10, 0);
	hdr_refused(b, "header: status 3 in a msg", "status in a msg");
	mkhdr(b, TCPWIRE_MAGIC, 1, TCPWIRE_READ_REP, TCPWIRE_STATUS_MAX + 1, 0, 0);
	hdr_refused(b, "header: status 4096 exceeds the limit of 4095", "status over the limit");
	mkhdr(b, TCPWIRE_MAGIC, 1, TCPWIRE_READ_REQ, 0, 17, 0);
	hdr_refused(b, "header: read-req body length 17 is outside 16..16", "read-req body 17");
	mkhdr(b, TCPWIRE_MAGIC, 1, TCPWIRE_WRITE_REQ, 0, TCPWIRE_MAX_BODY + 1, 0);
	hdr_refused(b, "header: write-req body length 65553 is outside 17..65552", "write-req too long");
	mkhdr(b, TCPWIRE_MAGIC, 1, TCPWIRE_MSG, 0, 0, 0);
	hdr_refused(b, "header: msg body length 0 is outside 1..16384", "empty msg");
	mkhdr(b, TCPWIRE_MAGIC, 1, TCPWIRE_READ_REP, 12, 4096, 0);
	hdr_refused(b, "header: read-rep with status 12 has a 4096-byte body",
		    "failed read with data");
	mkhdr(b, TCPWIRE_MAGIC, 1, TCPWIRE_MSG, 0, UINT32_MAX, 0);
	hdr_refused(b, "msg body length 4294967295", "msg length 2^32-1");

	/* The layout, spelled out. */
	h = (struct tcpwire_hdr){ TCPWIRE_WRITE_REP, 0x0102, 0, 0xa1b2c3d4 };
	CHECK(tcpwire_encode_hdr(&h, b) == 0 &&
	      !memcmp(b, "CCMT\x01\x06\x01\x02\x00\x00\x00\x00\xa1\xb2\xc3\xd4", 16),
	      "layout: header bytes");
	CHECK(TCPWIRE_MAX_BODY == 16 + CCM_OP_MAX && TCPWIRE_MAX_BODY >= CCM_MSG_MAX,
	      "TCPWIRE_MAX_BODY holds every body");
}

#define REQ(a, b, n) ((struct tcpwire_conn_req){ .proto_min = (a), .proto_max = (b), .node_id = (n) })
#define REP(p, n, ad, k, l) ((struct tcpwire_conn_rep){ .proto = (p), .node_id = (n), \
	.status_addr = (ad), .status_rkey = (k), .status_len = (l) })

static int same_req(const struct tcpwire_conn_req *a, const struct tcpwire_conn_req *b)
{
	return a->proto_min == b->proto_min && a->proto_max == b->proto_max &&
	       a->node_id == b->node_id && a->keyed == b->keyed &&
	       (!a->keyed || (!memcmp(a->key_id, b->key_id, sizeof(a->key_id)) &&
			      !memcmp(a->nonce, b->nonce, sizeof(a->nonce))));
}

static void test_conn(void)
{
	struct tcpwire_conn_req rq = REQ(1, 3, 0xdeadbeef), rq2;
	struct tcpwire_conn_rep rp = REP(2, 7, 0x00007f0012345000ull, 0x1234, 4096), rp2;
	uint8_t b[128], c[128];
	struct errbuf e = { "" };
	int bad = 0, rc;

	CHECK(tcpwire_encode_conn_req(&rq, b) == 8 &&
	      !memcmp(b, "\x00\x01\x00\x03\xde\xad\xbe\xef", 8), "layout: conn-req");
	rc = tcpwire_decode_conn_req(b, 8, &rq2, &e);
	CHECK(rc == 0 && rq2.proto_min == 1 && rq2.proto_max == 3 && rq2.node_id == 0xdeadbeef &&
	      !rq2.keyed, "round trip: conn-req \"%s\"", e.msg);
	rq = REQ(UINT16_MAX, UINT16_MAX, UINT32_MAX);
	rc = tcpwire_encode_conn_req(&rq, b) != 8 || tcpwire_decode_conn_req(b, 8, &rq2, &e);
	CHECK(!rc && same_req(&rq, &rq2), "round trip: conn-req limits");

	CHECK(tcpwire_encode_conn_rep(&rp, b) == 22 &&
	      !memcmp(b, "\x00\x02\x00\x00\x00\x07\x00\x00\x7f\x00\x12\x34\x50\x00"
		      "\x00\x00\x12\x34\x00\x00\x10\x00", 22), "layout: conn-rep");
	rc = tcpwire_decode_conn_rep(b, 22, &rp2, &e);
	CHECK(rc == 0 && rp2.proto == 2 && rp2.node_id == 7 && rp2.status_addr == rp.status_addr &&
	      rp2.status_rkey == 0x1234 && rp2.status_len == 4096 && !rp2.keyed,
	      "round trip: conn-rep \"%s\"", e.msg);
	rp = REP(UINT16_MAX, UINT32_MAX, UINT64_MAX, UINT32_MAX, UINT32_MAX);
	rc = tcpwire_encode_conn_rep(&rp, b) != 22 || tcpwire_decode_conn_rep(b, 22, &rp2, &e);
	CHECK(!rc && rp2.proto == rp.proto && rp2.node_id == rp.node_id &&
	      rp2.status_addr == rp.status_addr && rp2.status_rkey == rp.status_rkey &&
	      rp2.status_len == rp.status_len, "round trip: conn-rep limits");

	/* With a key: key id and nonce after the plain request; nonce and
	 * mac after the plain reply, the mac last. */
	rq = REQ(1, 3, 5);
	rq.keyed = 1;
	memset(rq.key_id, 0xab, sizeof(rq.key_id));
	memset(rq.nonce, 0xcd, sizeof(rq.nonce));
	CHECK(tcpwire_encode_conn_req(&rq, b) == 48 && b[8] == 0xab && b[15] == 0xab &&
	      b[16] == 0xcd && b[47] == 0xcd, "layout: keyed conn-req");
	rc = tcpwire_decode_conn_req(b, 48, &rq2, &e);
	CHECK(!rc && same_req(&rq, &rq2), "round trip: keyed conn-req \"%s\"", e.msg);
	rp = REP(1, 2, 0, 3, 64);
	rp.keyed = 1;
	memset(rp.nonce, 0x11, sizeof(rp.nonce));
	memset(rp.mac, 0x22, sizeof(rp.mac));
	CHECK(tcpwire_encode_conn_rep(&rp, c) == 86 && c[22] == 0x11 && c[53] == 0x11 &&
	      c[TCPWIRE_CONN_REP_MACED_LEN] == 0x22 && c[85] == 0x22, "layout: keyed conn-rep");
	rc = tcpwire_decode_conn_rep(c, 86, &rp2, &e);
	CHECK(!rc && rp2.keyed && !memcmp(rp.nonce, rp2.nonce, sizeof(rp.nonce)) &&
	      !memcmp(rp.mac, rp2.mac, sizeof(rp.mac)) && rp2.status_len == 64,
	      "round trip: keyed conn-rep \"%s\"", e.msg);

	/* Every length but the two exact ones. */
	rq = REQ(1, 1, 1);
	rp = REP(1, 1, 1, 1, 1);
	tcpwire_encode_conn_req(&rq, b);
	tcpwire_encode_conn_rep(&rp, c);
	for (size_t n = 0; n < sizeof(b); n++) {
		if (n != 8 && n != 48)
			bad += !EXPECT(tcpwire_decode_conn_req(b, n, &rq2, &e) == -EBADMSG &&
				       strstr(e.msg, "conn-req: body length"), "conn-req len %zu", n);
		if (n != 22 && n != 86)
			bad += !EXPECT(tcpwire_decode_conn_rep(c, n, &rp2, &e) == -EBADMSG &&
				       strstr(e.msg, "conn-rep: body length"), "conn-rep len %zu", n);
	}
	CHECK(!bad, "conn-req and conn-rep: every wrong length refused");

	set_be(b, 0, 2);
	CHECK(tcpwire_decode_conn_req(b, 8, &rq2, &e) == -EBADMSG &&
	      strstr(e.msg, "conn-req: proto_min 0"), "refuse conn-req proto_min 0: \"%s\"", e.msg);
	set_be(b, 2, 2);
	CHECK(tcpwire_decode_conn_req(b, 8, &rq2, &e) == -EBADMSG &&
	      strstr(e.msg, "conn-req: proto_min 2 is above proto_max 1"),
	      "refuse conn-req proto_min > proto_max: \"%s\"", e.msg);
	set_be(c, 0, 2);
	CHECK(tcpwire_decode_conn_rep(c, 22, &rp2, &e) == -EBADMSG &&
	      strstr(e.msg, "conn-rep: proto 0"), "refuse conn-rep proto 0: \"%s\"", e.msg);
	set_be(c, 1, 2);
	set_be(c + 18, 0, 4);
	CHECK(tcpwire_decode_conn_rep(c, 22, &rp2, &e) == -EBADMSG &&
	      strstr(e.msg, "conn-rep: status_len is 0"), "refuse conn-rep status_len 0: \"%s\"", e.msg);

	rq = REQ(0, 1, 1);
	CHECK(tcpwire_encode_conn_req(&rq, b) == -EINVAL, "encode: conn-req proto_min 0");
	rq = REQ(2, 1, 1);
	CHECK(tcpwire_encode_conn_req(&rq, b) == -EINVAL, "encode: conn-req proto_min > max");
	rp = REP(0, 1, 1, 1, 1);
	CHECK(tcpwire_encode_conn_rep(&rp, b) == -EINVAL, "encode: conn-rep proto 0");
	rp = REP(1, 1, 1, 1, 0);
	CHECK(tcpwire_encode_conn_rep(&rp, b) == -EINVAL, "encode: conn-rep status_len 0");
}

static uint8_t body[TCPWIRE_MAX_BODY + 8];

static void test_rw(void)
{
	struct tcpwire_rw rw = { 0x11223344, 64, 0x0102030405060708ull }, d;
	struct errbuf e = { "" };
	int bad = 0;

	CHECK(tcpwire_encode_rw(&rw, body) == 0 &&
	      !memcmp(body, "\x11\x22\x33\x44\x00\x00\x00\x40\x01\x02\x03\x04\x05\x06\x07\x08", 16),
	      "layout: rw");
	CHECK(tcpwire_decode_read_req(body, 16, &d, &e) == 0 && d.rkey == rw.rkey &&
	      d.len == 64 && d.addr == rw.addr, "round trip: read-req \"%s\"", e.msg);
	CHECK(tcpwire_decode_write_req(body, 16 + 64, &d, &e) == 0 && d.rkey == rw.rkey &&
	      d.len == 64 && d.addr == rw.addr, "round trip: write-req \"%s\"", e.msg);

	/* Every body length but the exact one, for both. */
	for (size_t n = 0; n <= 16 + 64 + 4; n++) {
		int rr = tcpwire_decode_read_req(body, n, &d, &e);
		int wr = tcpwire_decode_write_req(body, n, &d, &e);

		bad += !EXPECT((rr == 0) == (n == 16) && (rr == 0 || rr == -EBADMSG),
			       "read-req len %zu: %d", n, rr);
		bad += !EXPECT((wr == 0) == (n == 80) && (wr == 0 || wr == -EBADMSG),
			       "write-req len %zu: %d", n, wr);
	}
	CHECK(!bad, "read-req and write-req: only the exact body length is accepted");

	CHECK(tcpwire_decode_read_req(body, 15, &d, &e) == -EBADMSG &&
	      strstr(e.msg, "read-req: body length 15, want 16"), "refuse short read-req: \"%s\"", e.msg);
	CHECK(tcpwire_decode_write_req(body, 79, &d, &e) == -EBADMSG &&
	      strstr(e.msg, "write-req: body length 79, want 80"),
	      "refuse write-req with one data byte missing: \"%s\"", e.msg);
	CHECK(tcpwire_decode_write_req(body, 81, &d, &e) == -EBADMSG &&
	      strstr(e.msg, "write-req: body length 81, want 80"),
	      "refuse write-req with one data byte extra: \"%s\"", e.msg);

	/* Limits of len. */
	rw.len = CCM_OP_MAX;
	CHECK(tcpwire_encode_rw(&rw, body) == 0 &&
	      tcpwire_decode_write_req(body, TCPWIRE_MAX_BODY, &d, &e) == 0 && d.len == CCM_OP_MAX,
	      "round trip: write-req of CCM_OP_MAX bytes \"%s\"", e.msg);
	CHECK(tcpwire_decode_read_req(body, 16, &d, &e) == 0 && d.len == CCM_OP_MAX,
	      "round trip: read-req of CCM_OP_MAX bytes");
	rw.len = 1;
	CHECK(tcpwire_encode_rw(&rw, body) == 0 && tcpwire_decode_write_req(body, 17, &d, &e) == 0,
	      "round trip: write-req of 1 byte");
	set_be(body + 4, 0, 4);
	CHECK(tcpwire_decode_read_req(body, 16, &d, &e) == -EBADMSG &&
	      strstr(e.msg, "read-req: len 0 is outside 1..65536"), "refuse read len 0: \"%s\"", e.msg);
	CHECK(tcpwire_decode_write_req(body, 16, &d, &e) == -EBADMSG &&
	      strstr(e.msg, "write-req: len 0"), "refuse write len 0: \"%s\"", e.msg);
	set_be(body + 4, CCM_OP_MAX + 1, 4);
	CHECK(tcpwire_decode_read_req(body, 16, &d, &e) == -EBADMSG &&
	      strstr(e.msg, "read-req: len 65537 is outside"), "refuse read len 65537: \"%s\"", e.msg);
	set_be(body + 4, UINT32_MAX, 4);
	CHECK(tcpwire_decode_write_req(body, 16, &d, &e) == -EBADMSG &&
	      strstr(e.msg, "write-req: len 4294967295"), "refuse write len 2^32-1: \"%s\"", e.msg);
	/* A write len that wraps 16 + len must not match a short body. */
	set_be(body + 4, UINT32_MAX - 15, 4);
	CHECK(tcpwire_decode_write_req(body, 0, &d, &e) == -EBADMSG, "write len 2^32-16, empty body");

	rw.len = 0;
	CHECK(tcpwire_encode_rw(&rw, body) == -EINVAL, "encode: rw len 0");
	rw.len = CCM_OP_MAX + 1;
	CHECK(tcpwire_encode_rw(&rw, body) == -EINVAL, "encode: rw len 65537");
}

static void test_read_rep(void)
{
	struct tcpwire_hdr h = { TCPWIRE_READ_REP, 0, 64, 9 };
	struct errbuf e = { "" };

	CHECK(tcpwire_check_read_rep(&h, 64, &e) == 0, "read-rep with the asked length");
	CHECK(tcpwire_check_read_rep(&h, 65, &e) == -EBADMSG &&
	      strstr(e.msg, "read-rep: body length 64, the read asked for 65"),
	      "refuse read-rep of the wrong length: \"%s\"", e.msg);
	h.status = EFAULT, h.body_len = 0;
	CHECK(tcpwire_check_read_rep(&h, 64, &e) == 0, "failed read-rep carries no data");
	h.type = TCPWIRE_WRITE_REP;
	CHECK(tcpwire_check_read_rep(&h, 64, &e) == -EBADMSG && strstr(e.msg, "got a write-rep"),
	      "refuse a write-rep answering a read: \"%s\"", e.msg);
}

static void test_names(void)
{
	CHECK(!strcmp(tcpwire_type_name(TCPWIRE_CONN_REQ), "conn-req") &&
	      !strcmp(tcpwire_type_name(TCPWIRE_READ_REP), "read-rep") &&
	      !strcmp(tcpwire_type_name(TCPWIRE_MSG), "msg") &&
	      !strcmp(tcpwire_type_name(TCPWIRE_CONN_PROOF), "conn-proof") &&
	      !strcmp(tcpwire_type_name(0), "unknown") &&
	      !strcmp(tcpwire_type_name(9), "unknown"), "type names");
}

int main(void)
{
	test_header();
	test_conn();
	test_rw();
	test_read_rep();
	test_names();
	return check_done();
}
