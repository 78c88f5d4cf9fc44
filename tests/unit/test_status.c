/* Unit tests of the status block codec: exact bytes, round trips, torn
 * halves (-EAGAIN) and every kind of malformed half (-EBADMSG, with the
 * offending field named in the message). */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "proto/status.h"

static const struct status_own own_ref = {
	.state = 5, .stage = STAGE_HANDSHAKE, .node_id = 0x01020304,
	.epoch = 0x1112131415161718ull, .heartbeat = 0xa0b0c0d0,
};

static const struct status_mbox mbox_ref = {
	.from_state = 6, .from_stage = STAGE_EXCHANGE, .from_node = 0x21222324,
	.from_epoch = 0x3132333435363738ull, .to_epoch = 0x4142434445464748ull,
};

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Recompute a half's CRC after a test corrupted one of its fields, so the
 * decoder gets past the CRC and has to judge the field itself. */
static void reseal(uint8_t *half)
{
	put32(half + 28, ccm_crc32(half, 28));
}

static void test_crc32(void)
{
	CHECK(ccm_crc32("123456789", 9) == 0xcbf43926u,
	      "crc32 of \"123456789\" is the standard check value 0xcbf43926");
	CHECK(ccm_crc32("", 0) == 0, "crc32 of nothing is 0");
}

static void test_own_bytes(void)
{
	static const uint8_t want[28] = {
		'C', 'C', 'M', 'S', 0, 1, 5, 1,
		1, 2, 3, 4, 0, 0, 0, 0,
		0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
		0xa0, 0xb0, 0xc0, 0xd0,
	};
	uint8_t b[STATUS_OWN_SIZE];
	uint32_t crc;

	status_encode_own(&own_ref, b);
	CHECK(memcmp(b, want, sizeof(want)) == 0,
	      "own section encodes big-endian at the documented offsets");
	crc = (uint32_t)b[28] << 24 | (uint32_t)b[29] << 16 | (uint32_t)b[30] << 8 | b[31];
	CHECK(crc == ccm_crc32(b, 28), "own section ends in crc32 of bytes 0..27");
}

static void test_mbox_bytes(void)
{
	static const uint8_t want[28] = {
		'C', 'C', 'M', 'M', 6, 2, 0, 0,
		0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38,
		0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
		0x21, 0x22, 0x23, 0x24,
	};
	uint8_t b[STATUS_MBOX_SIZE];
	uint32_t crc;

	status_encode_mbox(&mbox_ref, b);
	CHECK(memcmp(b, want, sizeof(want)) == 0,
	      "mailbox encodes big-endian at the documented offsets");
	crc = (uint32_t)b[28] << 24 | (uint32_t)b[29] << 16 | (uint32_t)b[30] << 8 | b[31];
	CHECK(crc == ccm_crc32(b, 28), "mailbox ends in crc32 of bytes 32..59");
}

static void test_round_trips(void)
{
	uint8_t block[STATUS_BLOCK_SIZE];
	struct status_own o;
	struct status_mbox m;
	struct errbuf e = { "" };
	int bad = 0;
	unsigned s, g;

	for (s = 0; s <= 7; s++) {
		for (g = 0; g <= STAGE_TERMINATING; g++) {
			struct status_own oi = own_ref;
			struct status_mbox mi = mbox_ref;

			oi.state = (uint8_t)s;
			oi.stage = (uint8_t)g;
			mi.from_state = (uint8_t)s;
			mi.from_stage = (uint8_t)g;
			status_encode_own(&oi, block + STATUS_OWN_OFFSET);
			status_encode_mbox(&mi, block + STATUS_MBOX_OFFSET);
			memset(&o, 0xee, sizeof(o));
			memset(&m, 0xee, sizeof(m));
			bad += !EXPECT(status_decode_own(block, sizeof(block), &o, &e) == 0 &&
				       o.state == oi.state && o.stage == oi.stage &&
				       o.node_id == oi.node_id && o.epoch == oi.epoch &&
				       o.heartbeat == oi.heartbeat,
				       "own round trip state %u stage %u: %s", s, g, e.msg);
			bad += !EXPECT(status_decode_mbox(block + STATUS_MBOX_OFFSET,
							  STATUS_MBOX_SIZE, &m, &e) == 0 &&
				       m.from_state == mi.from_state &&
				       m.from_stage == mi.from_stage &&
				       m.from_node == mi.from_node &&
				       m.from_epoch == mi.from_epoch &&
				       m.to_epoch == mi.to_epoch,
				       "mailbox round trip state %u stage %u: %s", s, g, e.msg);
		}
	}
	CHECK(bad == 0, "both halves round trip for every state 0..7 and stage 0..4");
}

static void test_zero_is_eagain(void)
{
	uint8_t z[STATUS_BLOCK_SIZE] = { 0 };
	struct status_own o;
	struct status_mbox m;
	struct errbuf e = { "" };

	CHECK(status_decode_own(z, sizeof(z), &o, &e) == -EAGAIN &&
	      strstr(e.msg, "never written"),
	      "all-zero own section is -EAGAIN (never written): %s", e.msg);
	CHECK(status_decode_mbox(z + STATUS_MBOX_OFFSET, STATUS_MBOX_SIZE, &m, &e) == -EAGAIN &&
	      strstr(e.msg, "never written"),
	      "all-zero mailbox is -EAGAIN (never written): %s", e.msg);
	CHECK(status_decode_own(z, sizeof(z), &o, NULL) == -EAGAIN,
	      "decoding works without an errbuf");
}

/* Every single flipped bit of either half is caught by the CRC: a torn
 * read or write never decodes as something else. */
static void test_flipped_bits(void)
{
	uint8_t good[STATUS_OWN_SIZE], b[STATUS_OWN_SIZE];
	struct status_own o;
	struct status_mbox m;
	struct errbuf e = { "" };
	int bad_own = 0, bad_mbox = 0;
	unsigned i, bit;

	status_encode_own(&own_ref, good);
	for (i = 0; i < sizeof(b); i++)
		for (bit = 0; bit < 8; bit++) {
			memcpy(b, good, sizeof(b));
			b[i] ^= (uint8_t)(1u << bit);
			bad_own += !EXPECT(status_decode_own(b, sizeof(b), &o, &e) == -EAGAIN,
					   "own byte %u bit %u flipped: %s", i, bit, e.msg);
		}
	CHECK(bad_own == 0, "every flipped bit of the own section gives -EAGAIN");

	status_encode_mbox(&mbox_ref, good);
	for (i = 0; i < sizeof(b); i++)
		for (bit = 0; bit < 8; bit++) {
			memcpy(b, good, sizeof(b));
			b[i] ^= (uint8_t)(1u << bit);
			bad_mbox += !EXPECT(status_decode_mbox(b, sizeof(b), &m, &e) == -EAGAIN,
					    "mailbox byte %u bit %u flipped: %s", i, bit, e.msg);
		}
	CHECK(bad_mbox == 0, "every flipped bit of the mailbox gives -EAGAIN");

	status_encode_own(&own_ref, b);
	b[17] ^= 0x40;
	CHECK(status_decode_own(b, sizeof(b), &o, &e) == -EAGAIN && strstr(e.msg, "crc"),
	      "a bad crc names the crc: %s", e.msg);
}

struct malformed {
	const char *what;
	unsigned at;        /* byte offset within the half */
	uint8_t value;      /* written there before resealing */
	const char *field;  /* must appear in the message */
};

static void test_malformed_own(void)
{
	static const struct malformed cases[] = {
		{ "wrong magic", 0, 'X', "magic" },
		{ "wrong magic (last byte)", 3, 'M', "magic" },
		{ "layout 0", 5, 0, "layout" },
		{ "layout 2", 5, 2, "layout" },
		{ "layout 257", 4, 1, "layout" },
		{ "state 8", 6, 8, "state" },
		{ "state 255", 6, 255, "state" },
		{ "stage 5", 7, 5, "stage" },
		{ "stage 255", 7, 255, "stage" },
		{ "reserved byte 12", 12, 1, "reserved" },
		{ "reserved byte 15", 15, 0x80, "reserved" },
	};
	uint8_t b[STATUS_OWN_SIZE];
	struct status_own o;
	struct errbuf e;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		status_encode_own(&own_ref, b);
		b[cases[i].at] = cases[i].value;
		reseal(b);
		e.msg[0] = 0;
		CHECK(status_decode_own(b, sizeof(b), &o, &e) == -EBADMSG &&
		      strstr(e.msg, "own section") && strstr(e.msg, cases[i].field),
		      "own section with %s is -EBADMSG naming %s: %s",
		      cases[i].what, cases[i].field, e.msg);
	}
}

static void test_malformed_mbox(void)
{
	static const struct malformed cases[] = {
		{ "wrong magic", 0, 'X', "magic" },
		{ "own-section magic", 3, 'S', "magic" },
		{ "from_state 8", 4, 8, "from_state" },
		{ "from_state 255", 4, 255, "from_state" },
		{ "from_stage 5", 5, 5, "from_stage" },
		{ "from_stage 200", 5, 200, "from_stage" },
		{ "reserved byte 38", 6, 1, "reserved" },
		{ "reserved byte 39", 7, 0xff, "reserved" },
	};
	uint8_t b[STATUS_MBOX_SIZE];
	struct status_mbox m;
	struct errbuf e;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		status_encode_mbox(&mbox_ref, b);
		b[cases[i].at] = cases[i].value;
		reseal(b);
		e.msg[0] = 0;
		CHECK(status_decode_mbox(b, sizeof(b), &m, &e) == -EBADMSG &&
		      strstr(e.msg, "mailbox") && strstr(e.msg, cases[i].field),
		      "mailbox with %s is -EBADMSG naming %s: %s",
		      cases[i].what, cases[i].field, e.msg);
	}
}

static void test_short_input(void)
{
	uint8_t b[STATUS_BLOCK_SIZE];
	struct status_own o;
	struct status_mbox m;
	struct errbuf e;
	int bad = 0;
	size_t len;

	status_encode_own(&own_ref, b);
	status_encode_mbox(&mbox_ref, b + STATUS_MBOX_OFFSET);
	for (len = 0; len < STATUS_OWN_SIZE; len++) {
		e.msg[0] = 0;
		bad += !EXPECT(status_decode_own(b, len, &o, &e) == -EBADMSG &&
			       strstr(e.msg, "bytes"),
			       "own section of %zu bytes: %s", len, e.msg);
		bad += !EXPECT(status_decode_mbox(b + STATUS_MBOX_OFFSET, len, &m, &e) == -EBADMSG &&
			       strstr(e.msg, "bytes"),
			       "mailbox of %zu bytes: %s", len, e.msg);
	}
	CHECK(bad == 0, "halves shorter than 32 bytes are -EBADMSG, saying how long");
	CHECK(status_decode_own(b, sizeof(b), &o, &e) == 0,
	      "a longer buffer decodes its first 32 bytes");
}

/* The two halves have different magics, so a mailbox handed to the own
 * section decoder (or the reverse) is refused, not misread. */
static void test_halves_not_confused(void)
{
	uint8_t b[STATUS_BLOCK_SIZE];
	struct status_own o;
	struct status_mbox m;
	struct errbuf e;

	status_encode_own(&own_ref, b);
	status_encode_mbox(&mbox_ref, b + STATUS_MBOX_OFFSET);
	CHECK(status_decode_own(b + STATUS_MBOX_OFFSET, STATUS_MBOX_SIZE, &o, &e) == -EBADMSG,
	      "a mailbox is not taken for an own section: %s", e.msg);
	CHECK(status_decode_mbox(b, STATUS_OWN_SIZE, &m, &e) == -EBADMSG,
	      "an own section is not taken for a mailbox: %s", e.msg);
}

int main(void)
{
	test_crc32();
	test_own_bytes();
	test_mbox_bytes();
	test_round_trips();
	test_zero_is_eagain();
	test_flipped_bits();
	test_malformed_own();
	test_malformed_mbox();
	test_short_input();
	test_halves_not_confused();
	return check_done();
}
