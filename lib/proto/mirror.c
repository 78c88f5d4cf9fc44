#include "proto/mirror.h"
#include "base/be.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "proto/status.h"







uint32_t mirror_rec_size(uint32_t len)
{
	/* len <= MIRROR_PAYLOAD_MAX in every caller, so no overflow. */
	return (MIRROR_REC_HDR_SIZE + len + MIRROR_ALIGN - 1) & ~(MIRROR_ALIGN - 1);
}

void mirror_encode_header(const struct mirror_hdr *h, uint8_t out[MIRROR_HDR_SIZE])
{
	memset(out, 0, MIRROR_HDR_SIZE);
	be_put32(out, MIRROR_HDR_MAGIC);
	be_put16(out + 4, MIRROR_FORMAT);
	be_put32(out + 8, h->generation);
	be_put32(out + 12, h->next);
	be_put64(out + 16, h->first_seq);
	be_put64(out + 24, h->last_seq);
	be_put32(out + 36, ccm_crc32(out, 36));
}

static int check_winlen(size_t winlen, struct errbuf *e)
{
	if (winlen < MIRROR_WINDOW_MIN || winlen > MIRROR_WINDOW_MAX)
		return errbuf_set(e, -EINVAL, "a window of %zu bytes cannot hold a mirror log "
				  "(%u..%u)", winlen, MIRROR_WINDOW_MIN, MIRROR_WINDOW_MAX);
	return 0;
}

int mirror_read_header(const void *win, size_t winlen, struct mirror_hdr *h,
		       struct errbuf *e)
{
	static const uint8_t zero[MIRROR_HDR_SIZE];
	const uint8_t *p = win;
	uint64_t count;
	int r;

	r = check_winlen(winlen, e);
	if (r < 0)
		return r;
	if (memcmp(p, zero, sizeof(zero)) == 0)
		return errbuf_set(e, -ENODATA, "header: never written (all zero)");
	if (be_get32(p) != MIRROR_HDR_MAGIC)
		return errbuf_set(e, -EBADMSG, "header: bad magic 0x%08x", be_get32(p));
	if (be_get16(p + 4) != MIRROR_FORMAT)
		return errbuf_set(e, -EBADMSG, "header: format %u, not %u", be_get16(p + 4),
				  MIRROR_FORMAT);
	if (be_get32(p + 36) != ccm_crc32(p, 36))
		return errbuf_set(e, -EBADMSG, "header: crc32 0x%08x does not match its "
				  "bytes (0x%08x): torn or corrupt", be_get32(p + 36),
				  ccm_crc32(p, 36));
	if (be_get16(p + 6) != 0 || be_get32(p + 32) != 0)
		return errbuf_set(e, -EBADMSG, "header: reserved field not zero");
	h->generation = be_get32(p + 8);
	h->next = be_get32(p + 12);
	h->first_seq = be_get64(p + 16);
	h->last_seq = be_get64(p + 24);
	if (h->generation == 0)
		return errbuf_set(e, -EBADMSG, "header: generation 0");
	if (h->next < MIRROR_HDR_SIZE || h->next > winlen || h->next % MIRROR_ALIGN)
		return errbuf_set(e, -EBADMSG, "header: next offset %u is not an aligned "
				  "offset in %u..%zu", h->next, MIRROR_HDR_SIZE, winlen);
	if (h->first_seq == 0 || h->last_seq < h->first_seq - 1)
		return errbuf_set(e, -EBADMSG, "header: sequence range %" PRIu64 "..%" PRIu64
				  " is impossible", h->first_seq, h->last_seq);
	/* Every record takes at least its header: a count beyond that is a
	 * lie, whatever the records say. */
	count = h->last_seq - (h->first_seq - 1);
	if (count > (h->next - MIRROR_HDR_SIZE) / MIRROR_REC_HDR_SIZE)
		return errbuf_set(e, -EBADMSG, "header: %" PRIu64 " records cannot fit in "
				  "the %u bytes before next offset %u", count,
				  h->next - MIRROR_HDR_SIZE, h->next);
	if (count == 0 && h->next != MIRROR_HDR_SIZE)
		return errbuf_set(e, -EBADMSG, "header: no records, yet next offset is %u",
				  h->next);
	return 0;
}

int mirror_init(void *win, size_t winlen, uint32_t generation, uint64_t first_seq)
{
	struct mirror_hdr h = {
		.generation = generation, .next = MIRROR_HDR_SIZE,
		.first_seq = first_seq, .last_seq = first_seq - 1,
	};

	if (check_winlen(winlen, NULL) < 0 || generation == 0 || first_seq == 0)
		return -EINVAL;
	mirror_encode_header(&h, win);
	return 0;
}

int mirror_append(void *win, size_t winlen, const void *payload, uint32_t len,
		  struct mirror_range *rec)
{
	uint8_t *p = win, *r;
	struct mirror_hdr h;
	uint32_t size;
	int err;

	err = mirror_read_header(win, winlen, &h, NULL);
	if (err < 0)
		return err;
	if (len > MIRROR_PAYLOAD_MAX)
		return -EMSGSIZE;
	size = mirror_rec_size(len);
	if (size > winlen - MIRROR_HDR_SIZE)
		return -EMSGSIZE;
	if (size > winlen - h.next)
		return -ENOSPC;
	if (h.last_seq == UINT64_MAX)
		return -EOVERFLOW;
	r = p + h.next;
	be_put32(r, MIRROR_REC_MAGIC);
	be_put32(r + 4, len);
	be_put64(r + 8, h.last_seq + 1);
	be_put32(r + 16, ccm_crc32(payload, len));
	be_put32(r + 20, ccm_crc32(r, 20));
	if (len)
		memcpy(r + MIRROR_REC_HDR_SIZE, payload, len);
	memset(r + MIRROR_REC_HDR_SIZE + len, 0, size - MIRROR_REC_HDR_SIZE - len);
	*rec = (struct mirror_range){ .off = h.next, .len = size };
	h.next += size;
	h.last_seq++;
	mirror_encode_header(&h, win);
	return 0;
}

int mirror_wrap(void *win, size_t winlen)
{
	struct mirror_hdr h;
	int err;

	err = mirror_read_header(win, winlen, &h, NULL);
	if (err < 0)
		return err;
	if (h.generation == UINT32_MAX || h.last_seq == UINT64_MAX)
		return -EOVERFLOW;
	return mirror_init(win, winlen, h.generation + 1, h.last_seq + 1);
}

struct mirror_hdr mirror_empty_header(const struct mirror_hdr *h)
{
	return (struct mirror_hdr){
		.generation = h->generation, .next = MIRROR_HDR_SIZE,
		.first_seq = h->first_seq, .last_seq = h->first_seq - 1,
	};
}

int mirror_iter_start(struct mirror_iter *it, const void *win, size_t winlen,
		      struct errbuf *e)
{
	int err;

	memset(it, 0, sizeof(*it));
	err = mirror_read_header(win, winlen, &it->h, e);
	if (err < 0)
		return err;
	it->win = win;
	it->winlen = (uint32_t)winlen;
	it->pos = MIRROR_HDR_SIZE;
	it->seq = it->h.first_seq;
	return 0;
}

static bool all_zero(const uint8_t *p, uint32_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/* The bounds that matter are the header's next offset, which
 * mirror_read_header already checked against the window: every record is
 * checked to lie in [pos, next) before any byte of it beyond its fixed
 * header is touched. */
int mirror_iter_next(struct mirror_iter *it, struct mirror_rec *r, struct errbuf *e)
{
	const uint8_t *p;
	uint32_t room, len, size, crc;
	uint64_t seq;

	if (!it->win)
		return errbuf_set(e, -EINVAL, "walk not started");
	if (it->pos == it->h.next) {
		if (it->seq != it->h.last_seq + 1)
			return errbuf_set(e, -EBADMSG, "log ends at offset %u after seq %" PRIu64
					  ", but the header says its last record is seq %" PRIu64,
					  it->pos, it->seq - 1, it->h.last_seq);
		return 0;
	}
	room = it->h.next - it->pos;
	if (it->seq > it->h.last_seq)
		return errbuf_set(e, -EBADMSG, "record at offset %u: %u bytes left after the "
				  "header's last record, seq %" PRIu64, it->pos, room,
				  it->h.last_seq);
	if (room < MIRROR_REC_HDR_SIZE)
		return errbuf_set(e, -EBADMSG, "record at offset %u (seq %" PRIu64 "): only %u "
				  "bytes before next offset %u, a record header takes %u",
				  it->pos, it->seq, room, it->h.next, MIRROR_REC_HDR_SIZE);
	p = it->win + it->pos;
	if (be_get32(p) != MIRROR_REC_MAGIC)
		return errbuf_set(e, -EBADMSG, "record at offset %u (seq %" PRIu64 "): bad "
				  "magic 0x%08x", it->pos, it->seq, be_get32(p));
	if (be_get32(p + 20) != ccm_crc32(p, 20))
		return errbuf_set(e, -EBADMSG, "record at offset %u (seq %" PRIu64 "): header "
				  "crc32 0x%08x does not match its bytes: torn or corrupt",
				  it->pos, it->seq, be_get32(p + 20));
	len = be_get32(p + 4);
	seq = be_get64(p + 8);
	crc = be_get32(p + 16);
	if (seq != it->seq)
		return errbuf_set(e, -EBADMSG, "record at offset %u: seq %" PRIu64 ", expected %"
				  PRIu64, it->pos, seq, it->seq);
	if (len > MIRROR_PAYLOAD_MAX || mirror_rec_size(len) > room)
		return errbuf_set(e, -EBADMSG, "record at offset %u (seq %" PRIu64 "): length "
				  "%u runs past next offset %u", it->pos, seq, len, it->h.next);
	size = mirror_rec_size(len);
	if (ccm_crc32(p + MIRROR_REC_HDR_SIZE, len) != crc)
		return errbuf_set(e, -EBADMSG, "record at offset %u (seq %" PRIu64 "): payload "
				  "crc32 0x%08x, the record says 0x%08x", it->pos, seq,
				  ccm_crc32(p + MIRROR_REC_HDR_SIZE, len), crc);
	if (!all_zero(p + MIRROR_REC_HDR_SIZE + len, size - MIRROR_REC_HDR_SIZE - len))
		return errbuf_set(e, -EBADMSG, "record at offset %u (seq %" PRIu64 "): padding "
				  "not zero", it->pos, seq);
	*r = (struct mirror_rec){
		.seq = seq, .off = it->pos, .len = len, .crc = crc,
		.payload = p + MIRROR_REC_HDR_SIZE,
	};
	it->pos += size;
	it->seq++;
	return 1;
}

int mirror_print(FILE *list, FILE *payload, const void *win, size_t winlen,
		 struct errbuf *e)
{
	struct mirror_iter it;
	struct mirror_rec r;
	int n = 0, err;

	err = mirror_iter_start(&it, win, winlen, e);
	if (err < 0)
		return err;
	if (list)
		fprintf(list, "generation %u: seq %" PRIu64 "..%" PRIu64 " (%" PRIu64
			" records), %u of %zu bytes used\n", it.h.generation, it.h.first_seq,
			it.h.last_seq, it.h.last_seq - (it.h.first_seq - 1), it.h.next, winlen);
	while ((err = mirror_iter_next(&it, &r, e)) == 1) {
		if (list)
			fprintf(list, "seq %" PRIu64 " at %u: %u bytes, crc32 0x%08x ok\n",
				r.seq, r.off, r.len, r.crc);
		if (payload && r.len && fwrite(r.payload, 1, r.len, payload) != r.len)
			return errbuf_set(e, -EIO, "writing the payload of seq %" PRIu64
					  " failed", r.seq);
		n++;    /* a window holds fewer than 2^22 records */
	}
	return err < 0 ? err : n;
}
