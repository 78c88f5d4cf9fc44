/* Unit tests of the mirror record codec: exact bytes, round trips,
 * wrap-around, the writer's ordering as a partner's copy sees it, every
 * kind of corruption (each check reached with the CRCs resealed, and every
 * flipped bit), and no byte read outside the window (windows are heap
 * blocks of exactly their size, so ASan sees any overrun). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "proto/mirror.h"
#include "proto/status.h"

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

/* Recompute CRCs after a test changed a field, so the decoder gets past
 * the CRC and has to judge the field itself. */
static void reseal_hdr(uint8_t *w)
{
	put32(w + 36, ccm_crc32(w, 36));
}

static void reseal_rec(uint8_t *r)
{
	put32(r + 20, ccm_crc32(r, 20));
}

static uint8_t *window(size_t len)
{
	uint8_t *w = calloc(1, len);

	if (!w)
		abort();
	return w;
}

/* A deterministic payload: seq-dependent bytes. */
static void fill(uint8_t *p, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

/* Walk a whole window; the walk's result (0 or an error) and the count. */
static int walk(const uint8_t *w, size_t len, int *count, struct errbuf *e)
{
	struct mirror_iter it;
	struct mirror_rec r;
	int err;

	*count = 0;
	err = mirror_iter_start(&it, w, len, e);
	if (err < 0)
		return err;
	while ((err = mirror_iter_next(&it, &r, e)) == 1)
		(*count)++;
	return err;
}

static void test_bytes(void)
{
	static const uint8_t want_hdr[36] = {
		'C', 'C', 'M', 'N', 0, 1, 0, 0,
		0, 0, 0, 7, 0, 0, 0, 72,
		0, 0, 0, 0, 0, 0, 0, 9,
		0, 0, 0, 0, 0, 0, 0, 9,
		0, 0, 0, 0,
	};
	static const uint8_t want_rec[16] = {
		'C', 'C', 'M', 'R', 0, 0, 0, 5,
		0, 0, 0, 0, 0, 0, 0, 9,
	};
	uint8_t *w = window(4096), *r;
	struct mirror_range rg;

	CHECK(mirror_init(w, 4096, 7, 9) == 0, "init generation 7 from seq 9");
	CHECK(mirror_append(w, 4096, "hello", 5, &rg) == 0 && rg.off == 40 && rg.len == 32,
	      "a 5-byte record goes at offset 40 and takes 24 + 5 + 3 padding = 32 bytes");
	CHECK(memcmp(w, want_hdr, sizeof(want_hdr)) == 0 && get32(w + 36) == ccm_crc32(w, 36),
	      "header encodes big-endian at the documented offsets, crc32 of bytes 0..35");
	r = w + 40;
	CHECK(memcmp(r, want_rec, sizeof(want_rec)) == 0 &&
	      get32(r + 16) == ccm_crc32("hello", 5) && get32(r + 20) == ccm_crc32(r, 20) &&
	      memcmp(r + 24, "hello\0\0\0", 8) == 0,
	      "record: magic, len, seq, payload crc, header crc, payload, zero padding");
	CHECK(mirror_rec_size(0) == 24 && mirror_rec_size(1) == 32 && mirror_rec_size(8) == 32 &&
	      mirror_rec_size(MIRROR_PAYLOAD_MAX) == CCM_OP_MAX,
	      "record sizes: padding to 8, the largest record is exactly one CCM_OP_MAX write");
	free(w);
}

static void test_round_trip(void)
{
	enum { WIN = 65536, N = 200 };
	uint8_t *w = window(WIN), buf[600];
	struct mirror_range rg;
	struct mirror_iter it;
	struct mirror_rec r;
	struct errbuf e = { "" };
	uint32_t expect_off = MIRROR_HDR_SIZE;
	int bad = 0, i, got;

	CHECK(mirror_init(w, WIN, 1, 1) == 0, "init an empty log");
	CHECK(walk(w, WIN, &got, &e) == 0 && got == 0, "an empty log walks to no records: %s",
	      e.msg);
	for (i = 0; i < N; i++) {
		uint32_t len = (uint32_t)(i * 3) % 300;

		fill(buf, len, (uint32_t)i);
		bad += !EXPECT(mirror_append(w, WIN, buf, len, &rg) == 0 &&
			       rg.off == expect_off && rg.len == mirror_rec_size(len),
			       "append %d (%u bytes)", i, len);
		expect_off += mirror_rec_size(len);
	}
	CHECK(bad == 0, "%d records of 0..297 bytes append back to back", N);

	bad = 0;
	CHECK(mirror_iter_start(&it, w, WIN, &e) == 0 && it.h.generation == 1 &&
	      it.h.first_seq == 1 && it.h.last_seq == N && it.h.next == expect_off,
	      "header after %d appends: seq 1..%d, next %u: %s", N, N, expect_off, e.msg);
	for (i = 0; i < N; i++) {
		uint32_t len = (uint32_t)(i * 3) % 300;

		fill(buf, len, (uint32_t)i);
		bad += !EXPECT(mirror_iter_next(&it, &r, &e) == 1 && r.seq == (uint64_t)i + 1 &&
			       r.len == len && memcmp(r.payload, buf, len) == 0,
			       "record %d reads back: %s", i, e.msg);
	}
	CHECK(bad == 0, "every record reads back with its sequence, length and payload");
	CHECK(mirror_iter_next(&it, &r, &e) == 0, "then the walk ends: %s", e.msg);
	CHECK(mirror_iter_next(&it, &r, &e) == 0, "and stays ended");
	free(w);
}

/* A window filled to its last byte: the walk reads up to the end and not
 * one byte further (ASan would say). */
static void test_exact_fit(void)
{
	const size_t WIN = MIRROR_HDR_SIZE + 3 * 64;
	uint8_t *w = window(WIN), buf[40] = { 1, 2, 3 };
	struct mirror_range rg;
	struct errbuf e = { "" };
	int got, i, ok = 1;

	mirror_init(w, WIN, 1, 1);
	for (i = 0; i < 3; i++)
		ok &= mirror_append(w, WIN, buf, 40, &rg) == 0;
	CHECK(ok && rg.off + rg.len == WIN, "three 64-byte records fill the window exactly");
	CHECK(walk(w, WIN, &got, &e) == 0 && got == 3, "and walk to the last byte: %s", e.msg);
	CHECK(mirror_append(w, WIN, buf, 0, &rg) == -ENOSPC,
	      "a full window says -ENOSPC even for an empty record");
	free(w);
}

static void test_limits(void)
{
	uint8_t *w = window(4096), *big = window(CCM_OP_MAX + 64), *p, before[4096];
	struct mirror_range rg;
	struct mirror_hdr h;
	struct errbuf e = { "" };
	int got;

	CHECK(mirror_init(w, MIRROR_WINDOW_MIN - 1, 1, 1) == -EINVAL,
	      "a window smaller than MIRROR_WINDOW_MIN is refused");
	CHECK(mirror_read_header(w, MIRROR_WINDOW_MIN - 1, &h, &e) == -EINVAL,
	      "and not read either: %s", e.msg);
	CHECK(mirror_init(w, 4096, 0, 1) == -EINVAL && mirror_init(w, 4096, 1, 0) == -EINVAL,
	      "generation 0 and sequence 0 are refused");
	mirror_init(w, 4096, 1, 1);
	memcpy(before, w, sizeof(before));
	CHECK(mirror_append(w, 4096, w, 4096 - 40 - 24 + 1, &rg) == -EMSGSIZE,
	      "a record bigger than an empty window is -EMSGSIZE");
	CHECK(mirror_append(w, 4096, w, MIRROR_PAYLOAD_MAX + 1, &rg) == -EMSGSIZE,
	      "a payload over MIRROR_PAYLOAD_MAX is -EMSGSIZE");
	CHECK(memcmp(before, w, sizeof(before)) == 0, "a refused append changes nothing");

	p = window(MIRROR_PAYLOAD_MAX);
	memset(p, 0xa5, MIRROR_PAYLOAD_MAX);
	mirror_init(big, CCM_OP_MAX + 64, 1, 1);
	CHECK(mirror_append(big, CCM_OP_MAX + 64, p, MIRROR_PAYLOAD_MAX, &rg) == 0 &&
	      rg.len == CCM_OP_MAX && walk(big, CCM_OP_MAX + 64, &got, &e) == 0 && got == 1,
	      "a record of MIRROR_PAYLOAD_MAX bytes fits a big enough window: %s", e.msg);

	mirror_init(w, 4096, 1, UINT64_MAX);
	CHECK(mirror_append(w, 4096, "x", 1, &rg) == 0, "seq UINT64_MAX is usable");
	CHECK(mirror_append(w, 4096, "x", 1, &rg) == -EOVERFLOW,
	      "and after it appending is -EOVERFLOW, not a wrap to 0");
	CHECK(mirror_wrap(w, 4096) == -EOVERFLOW, "so is wrapping");
	free(p);
	free(big);
	free(w);
}

static void test_wrap(void)
{
	enum { WIN = 1024 };
	uint8_t *w = window(WIN), buf[100];
	struct mirror_range rg;
	struct mirror_iter it;
	struct mirror_rec r;
	struct mirror_hdr h;
	struct errbuf e = { "" };
	uint64_t seq = 0;
	int n = 0, err, got, bad = 0, gens = 0;

	mirror_init(w, WIN, 1, 1);
	/* Many wraps: each generation holds what fits, sequence numbers run on. */
	for (int i = 0; i < 100; i++) {
		fill(buf, 100, (uint32_t)i);
		err = mirror_append(w, WIN, buf, 100, &rg);
		if (err == -ENOSPC) {
			uint8_t before[WIN];

			memcpy(before, w, WIN);
			bad += !EXPECT(mirror_wrap(w, WIN) == 0, "wrap");
			bad += !EXPECT(memcmp(before + 40, w + 40, WIN - 40) == 0,
				       "wrap rewrites the header only");
			gens++;
			err = mirror_append(w, WIN, buf, 100, &rg);
			bad += !EXPECT(err == 0 && rg.off == MIRROR_HDR_SIZE,
				       "after a wrap the record goes first");
		}
		bad += !EXPECT(err == 0, "append %d: %d", i, err);
		seq++;
		n++;
	}
	CHECK(bad == 0 && gens > 10, "100 records of 100 bytes wrap a 1 KiB window %d times", gens);
	CHECK(mirror_read_header(w, WIN, &h, &e) == 0 && h.generation == (uint32_t)gens + 1 &&
	      h.last_seq == seq, "generation %u counts the wraps, last seq %llu",
	      h.generation, (unsigned long long)h.last_seq);
	CHECK(walk(w, WIN, &got, &e) == 0 && (uint64_t)got == h.last_seq - h.first_seq + 1,
	      "the current generation walks clean, old records beyond next ignored: %s", e.msg);
	mirror_iter_start(&it, w, WIN, &e);
	fill(buf, 100, (uint32_t)(h.first_seq - 1));
	CHECK(mirror_iter_next(&it, &r, &e) == 1 && r.seq == h.first_seq &&
	      memcmp(r.payload, buf, 100) == 0,
	      "its first record continues the sequence of the generation before");
	(void)n;
	free(w);
}

/* What the partner's copy looks like at each step of the writer's order
 * (records, then the header; at a wrap an empty header first). */
static void test_writer_order(void)
{
	enum { WIN = 512 };
	uint8_t *w = window(WIN), *copy = window(WIN), buf[100];
	struct mirror_range rg;
	struct mirror_hdr h, empty;
	struct errbuf e = { "" };
	int got;

	mirror_init(w, WIN, 1, 1);
	memcpy(copy, w, WIN);
	mirror_append(w, WIN, "one", 3, &rg);
	memcpy(copy + rg.off, w + rg.off, rg.len);
	CHECK(walk(copy, WIN, &got, &e) == 0 && got == 0,
	      "record landed, header not yet: the copy is the old, consistent log");
	memcpy(copy, w, MIRROR_HDR_SIZE);
	CHECK(walk(copy, WIN, &got, &e) == 0 && got == 1, "header landed: the record is there");

	mirror_append(w, WIN, "two", 3, &rg);
	memcpy(copy, w, MIRROR_HDR_SIZE);
	CHECK(walk(copy, WIN, &got, &e) == -EBADMSG,
	      "a header ahead of its record is caught (why the header goes last): %s", e.msg);
	memcpy(copy + rg.off, w + rg.off, rg.len);

	/* Fill up and wrap. */
	fill(buf, 100, 1);
	while (mirror_append(w, WIN, buf, 100, &rg) == 0)
		;
	memcpy(copy, w, WIN);
	mirror_wrap(w, WIN);
	mirror_append(w, WIN, "new", 3, &rg);
	memcpy(copy + rg.off, w + rg.off, rg.len);
	CHECK(walk(copy, WIN, &got, &e) == -EBADMSG,
	      "new-generation records under the old header are caught: %s", e.msg);
	mirror_read_header(w, WIN, &h, NULL);
	empty = mirror_empty_header(&h);
	mirror_encode_header(&empty, copy);
	CHECK(walk(copy, WIN, &got, &e) == 0 && got == 0,
	      "so the writer pushes the empty header first: an empty, valid log");
	memcpy(copy, w, MIRROR_HDR_SIZE);
	CHECK(walk(copy, WIN, &got, &e) == 0 && got == 1, "then the real one: %s", e.msg);
	free(copy);
	free(w);
}

/* A log of three records (with padding) used by the corruption tests. */
enum { CW = 4096 };
static uint32_t make_log(uint8_t *w, uint32_t off[3])
{
	struct mirror_range rg;
	struct mirror_hdr h;

	memset(w, 0, CW);
	mirror_init(w, CW, 3, 10);
	mirror_append(w, CW, "alpha", 5, &rg);
	off[0] = rg.off;
	mirror_append(w, CW, "bravo charlie", 13, &rg);
	off[1] = rg.off;
	mirror_append(w, CW, "delta", 5, &rg);
	off[2] = rg.off;
	mirror_read_header(w, CW, &h, NULL);
	return h.next;
}

static void test_header_corruption(void)
{
	static const struct {
		uint32_t at;       /* field offset */
		int width;         /* 2, 4 or 8 */
		uint64_t value;
		uint64_t last;     /* and last_seq set to this, if not 0 */
		const char *why;   /* in the message */
	} cases[] = {
		{ 0, 4, 0x43434d53, 0, "magic" },
		{ 4, 2, 2, 0, "format" },
		{ 6, 2, 1, 0, "reserved" },
		{ 32, 4, 1, 0, "reserved" },
		{ 8, 4, 0, 0, "generation 0" },
		{ 12, 4, 32, 0, "next offset" },          /* before the records */
		{ 12, 4, 100, 0, "next offset" },         /* unaligned */
		{ 12, 4, CW + 8, 0, "next offset" },      /* past the window */
		{ 16, 8, 0, 0, "impossible" },            /* first_seq 0 */
		{ 24, 8, 5, 0, "impossible" },            /* last before first - 1 */
		{ 24, 8, 10 + 100, 0, "cannot fit" },     /* more records than bytes */
		{ 12, 4, 80, 0, "cannot fit" },           /* 3 records in 40 bytes */
		{ 24, 8, 9, 0, "no records" },            /* empty, next not 40 */
		{ 24, 8, 11, 0, "left after the header's last" }, /* log runs on */
		{ 24, 8, 13, 0, "header says its last" }, /* log ends before */
		{ 12, 4, 88, 11, "bytes before next" },   /* next inside record 2's header */
		{ 12, 4, 104, 11, "runs past next" },     /* next cuts record 2's payload */
	};
	uint8_t *w = window(CW);
	uint32_t off[3];
	struct errbuf e;
	int got, err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *p;

		make_log(w, off);
		p = w + cases[i].at;
		if (cases[i].width == 2) {
			p[0] = (uint8_t)(cases[i].value >> 8);
			p[1] = (uint8_t)cases[i].value;
		} else if (cases[i].width == 4) {
			put32(p, (uint32_t)cases[i].value);
		} else {
			put64(p, cases[i].value);
		}
		if (cases[i].last)
			put64(w + 24, cases[i].last);
		reseal_hdr(w);
		e.msg[0] = 0;
		err = walk(w, CW, &got, &e);
		CHECK(err == -EBADMSG && strstr(e.msg, cases[i].why),
		      "header field at %u set to %llu: caught (%s)", cases[i].at,
		      (unsigned long long)cases[i].value, e.msg);
	}
	make_log(w, off);
	w[20] ^= 1;
	CHECK(walk(w, CW, &got, &e) == -EBADMSG && strstr(e.msg, "crc32"),
	      "a header that fails its crc is caught: %s", e.msg);
	memset(w, 0, CW);
	CHECK(walk(w, CW, &got, &e) == -ENODATA && strstr(e.msg, "never written"),
	      "an all-zero window is -ENODATA: %s", e.msg);
	free(w);
}

static void test_record_corruption(void)
{
	static const struct {
		uint32_t at;       /* in record 1 (13-byte payload) */
		uint32_t value;
		int reseal;
		const char *why;
	} cases[] = {
		{ 0, 0x43434d4e, 1, "bad magic" },
		{ 4, 14, 0, "header crc32" },        /* len changed, crc not */
		{ 4, 14, 1, "payload crc32" },       /* len within padding */
		{ 4, 4000, 1, "runs past next" },
		{ 4, 0xffffffff, 1, "runs past next" },
		{ 8, 1, 1, "expected" },             /* seq high word */
		{ 12, 10, 1, "expected" },           /* seq low word: a repeat */
		{ 16, 0x12345678, 1, "payload crc32" },
		{ 20, 0, 0, "header crc32" },
		{ 24, 0x41414141, 0, "payload crc32" },
		{ 36, 0x65010000, 0, "padding" },    /* payload's last byte 'e', then padding */
	};
	uint8_t *w = window(CW);
	uint32_t off[3];
	struct errbuf e;
	int got, err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *r;

		make_log(w, off);
		r = w + off[1];
		put32(r + cases[i].at, cases[i].value);
		if (cases[i].reseal)
			reseal_rec(r);
		e.msg[0] = 0;
		err = walk(w, CW, &got, &e);
		CHECK(err == -EBADMSG && got == 1 && strstr(e.msg, cases[i].why) &&
		      (strstr(e.msg, "offset 72") || strstr(e.msg, "seq 11")),
		      "record 2's field at +%u set to 0x%x%s: caught after record 1 (%s)",
		      cases[i].at, cases[i].value, cases[i].reseal ? " (resealed)" : "", e.msg);
	}
	free(w);
}

/* Every single flipped bit of the used part of the window is caught:
 * nothing in it is outside a CRC or a zero check. */
static void test_flipped_bits(void)
{
	uint8_t *w = window(CW);
	uint32_t off[3], next = make_log(w, off);
	struct errbuf e;
	int bad = 0, got;

	for (uint32_t bit = 0; bit < next * 8; bit++) {
		make_log(w, off);
		w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		bad += !EXPECT(walk(w, CW, &got, &e) < 0, "flipped bit %u not caught", bit);
	}
	CHECK(bad == 0, "each of the %u bits of a 3-record log, flipped, is caught", next * 8);
	make_log(w, off);
	w[next] ^= 0xff;
	w[CW - 1] ^= 0xff;
	CHECK(walk(w, CW, &got, &e) == 0 && got == 3,
	      "bytes beyond next are not part of the log: %s", e.msg);
	free(w);
}

static void test_append_on_bad_header(void)
{
	uint8_t *w = window(CW), before[CW];
	uint32_t off[3];
	struct mirror_range rg;

	make_log(w, off);
	w[14] ^= 1;
	memcpy(before, w, CW);
	CHECK(mirror_append(w, CW, "x", 1, &rg) == -EBADMSG && memcmp(before, w, CW) == 0,
	      "append refuses a window whose header is corrupt and changes nothing");
	CHECK(mirror_wrap(w, CW) == -EBADMSG, "so does wrap");
	memset(w, 0, CW);
	CHECK(mirror_append(w, CW, "x", 1, &rg) == -ENODATA,
	      "append to a never-initialised window is -ENODATA");
	free(w);
}

/* Random garbage, and garbage under a valid header: the walk never reads
 * outside the window (ASan) and never claims more than fits. */
static void test_garbage(void)
{
	uint32_t state = 12345;
	int bad = 0, got;
	struct errbuf e;

	for (int round = 0; round < 3000; round++) {
		size_t len = MIRROR_WINDOW_MIN + (size_t)(round % 700);
		uint8_t *w = window(len);
		struct mirror_hdr h;

		for (size_t i = 0; i < len; i++) {
			state = state * 1103515245u + 12345u;
			w[i] = (uint8_t)(state >> 16);
		}
		if (round % 2) {
			h.generation = 1;
			h.next = (uint32_t)(MIRROR_HDR_SIZE + ((len - MIRROR_HDR_SIZE) & ~7u) *
					    (size_t)(round % 5) / 4) & ~7u;
			h.first_seq = 1;
			h.last_seq = (uint64_t)(round % 4);
			mirror_encode_header(&h, w);
			if (round % 3 == 0 && h.next >= MIRROR_HDR_SIZE + 24) {
				/* A plausible first record over garbage. */
				put32(w + 40, MIRROR_REC_MAGIC);
				put32(w + 44, (uint32_t)(state % 600));
				put64(w + 48, 1);
				reseal_rec(w + 40);
			}
		}
		if (walk(w, len, &got, &e) == 0)
			bad += !EXPECT((size_t)got * 24 <= len, "garbage walked to %d records", got);
		free(w);
	}
	CHECK(bad == 0, "3000 windows of garbage walk without reading outside them");
}

static void test_print(void)
{
	uint8_t *w = window(CW);
	uint32_t off[3];
	char list[1024] = "", data[64] = "";
	FILE *lf = fmemopen(list, sizeof(list), "w"), *df = fmemopen(data, sizeof(data), "w");
	struct errbuf e = { "" };
	int n;

	make_log(w, off);
	n = mirror_print(lf, df, w, CW, &e);
	fclose(lf);
	fclose(df);
	CHECK(n == 3, "print counts three records: %s", e.msg);
	CHECK(strstr(list, "generation 3: seq 10..12 (3 records)") &&
	      strstr(list, "seq 11 at 72: 13 bytes, crc32 0x") && strstr(list, " ok\n"),
	      "the listing names the generation and each record: %s", list);
	CHECK(strcmp(data, "alphabravo charliedelta") == 0,
	      "the payloads concatenate in order: '%s'", data);

	make_log(w, off);
	w[off[2] + 24] ^= 1;
	memset(list, 0, sizeof(list));
	lf = fmemopen(list, sizeof(list), "w");
	n = mirror_print(lf, NULL, w, CW, &e);
	fclose(lf);
	CHECK(n == -EBADMSG && strstr(list, "seq 11 at 72") && !strstr(list, "seq 12 at") &&
	      strstr(e.msg, "seq 12") && strstr(e.msg, "payload crc32"),
	      "a corrupt third record: the first two print, the error names it: %s", e.msg);
	free(w);
}

int main(void)
{
	test_bytes();
	test_round_trip();
	test_exact_fit();
	test_limits();
	test_wrap();
	test_writer_order();
	test_header_corruption();
	test_record_corruption();
	test_flipped_bits();
	test_append_on_bad_header();
	test_garbage();
	test_print();
	return check_done();
}
