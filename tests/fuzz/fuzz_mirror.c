/* Fuzz target: walk arbitrary bytes as a mirror window.  The walk must
 * never read outside the window (ASan), and a log that walks clean must be
 * exactly what the writer makes of the same records: appending each
 * payload to a fresh window of the same generation and first sequence
 * reproduces every byte of [0, next), so the decoder accepts nothing the
 * encoder would not write.  The input is walked once as it is and once
 * with its header CRC (and its first record's header CRC) recomputed, so
 * the fuzzer gets past the checksums to the checks behind them. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mirror.h"
#include "proto/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void check_walk(const uint8_t *win, size_t len)
{
	struct mirror_iter it;
	struct mirror_rec r;
	struct mirror_range rg;
	struct errbuf e;
	uint8_t *copy;
	int err;

	if (mirror_iter_start(&it, win, len, &e) < 0)
		return;
	copy = calloc(1, len);
	if (!copy)
		abort();
	if (mirror_init(copy, len, it.h.generation, it.h.first_seq) < 0)
		abort();
	while ((err = mirror_iter_next(&it, &r, &e)) == 1) {
		if (r.off < MIRROR_HDR_SIZE || r.off + (size_t)mirror_rec_size(r.len) > len ||
		    r.payload != win + r.off + MIRROR_REC_HDR_SIZE)
			abort();
		if (mirror_append(copy, len, r.payload, r.len, &rg) < 0 || rg.off != r.off)
			abort();
	}
	if (err == 0 && memcmp(copy, win, it.h.next) != 0)
		abort();
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *w;

	if (size > MIRROR_WINDOW_MAX)
		return 0;
	/* An exact-size heap copy: one byte past it is an ASan report. */
	w = malloc(size ? size : 1);
	if (!w)
		abort();
	memcpy(w, data, size);
	check_walk(w, size);
	if (size >= MIRROR_WINDOW_MIN) {
		put32(w + 36, ccm_crc32(w, 36));
		put32(w + MIRROR_HDR_SIZE + 20, ccm_crc32(w + MIRROR_HDR_SIZE, 20));
		check_walk(w, size);
	}
	free(w);
	return 0;
}
