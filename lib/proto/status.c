/* status: codec of the status block (layout in status.h).
 *
 * Bytes are put and taken one at a time, big-endian, so the layout does not
 * depend on the host's byte order, alignment or struct padding. */
#include "proto/status.h"
#include "base/be.h"

#include <errno.h>

#include "proto/hs.h"

#define OWN_CRC_AT   28
#define MBOX_CRC_AT  28        /* relative to the start of the mailbox */
#define STATE_MAX    HS_ERROR
#define STAGE_MAX    STAGE_TERMINATING

/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), bit by bit: the
 * halves are 28 bytes, so a table would cost more than it saves. */
uint32_t ccm_crc32(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t crc = 0xffffffffu;
	int k;

	while (len--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1u));
	}
	return ~crc;
}

void status_encode_own(const struct status_own *o, uint8_t out[STATUS_OWN_SIZE])
{
	be_put32(out, STATUS_OWN_MAGIC);
	be_put16(out + 4, STATUS_LAYOUT);
	out[6] = o->state;
	out[7] = o->stage;
	be_put32(out + 8, o->node_id);
	be_put32(out + 12, 0);
	be_put64(out + 16, o->epoch);
	be_put32(out + 24, o->heartbeat);
	be_put32(out + OWN_CRC_AT, ccm_crc32(out, OWN_CRC_AT));
}

void status_encode_mbox(const struct status_mbox *m, uint8_t out[STATUS_MBOX_SIZE])
{
	be_put32(out, STATUS_MBOX_MAGIC);
	out[4] = m->from_state;
	out[5] = m->from_stage;
	be_put16(out + 6, 0);
	be_put64(out + 8, m->from_epoch);
	be_put64(out + 16, m->to_epoch);
	be_put32(out + 24, m->from_node);
	be_put32(out + MBOX_CRC_AT, ccm_crc32(out, MBOX_CRC_AT));
}

static int all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return 0;
	return 1;
}

/* The checks both halves share, in the order that matters: a half that
 * is all zero was never written and one with a bad CRC is being written,
 * so both mean "look again" (-EAGAIN); only a half that is whole (the CRC
 * matches) can be judged malformed (-EBADMSG). */
static int check_half(const uint8_t *in, size_t len, size_t size,
		      const char *what, struct errbuf *e)
{
	uint32_t want, got;

	if (len < size)
		return errbuf_set(e, -EBADMSG, "%s: %zu bytes, need %zu",
				  what, len, size);
	if (all_zero(in, size))
		return errbuf_set(e, -EAGAIN, "%s: never written", what);
	want = be_get32(in + size - 4);
	got = ccm_crc32(in, size - 4);
	if (want != got)
		return errbuf_set(e, -EAGAIN,
				  "%s: crc 0x%08x, expected 0x%08x (caught mid-write?)",
				  what, want, got);
	return 0;
}

int status_decode_own(const uint8_t *in, size_t len, struct status_own *o,
		      struct errbuf *e)
{
	static const char what[] = "own section";
	uint32_t magic;
	int err;

	err = check_half(in, len, STATUS_OWN_SIZE, what, e);
	if (err)
		return err;
	magic = be_get32(in);
	if (magic != STATUS_OWN_MAGIC)
		return errbuf_set(e, -EBADMSG, "%s: magic 0x%08x, expected 0x%08x",
				  what, magic, STATUS_OWN_MAGIC);
	if (be_get16(in + 4) != STATUS_LAYOUT)
		return errbuf_set(e, -EBADMSG, "%s: layout %u, expected %u",
				  what, be_get16(in + 4), STATUS_LAYOUT);
	if (in[6] > STATE_MAX)
		return errbuf_set(e, -EBADMSG, "%s: state %u out of range 0..%u",
				  what, in[6], STATE_MAX);
	if (in[7] > STAGE_MAX)
		return errbuf_set(e, -EBADMSG, "%s: stage %u out of range 0..%u",
				  what, in[7], STAGE_MAX);
	if (be_get32(in + 12))
		return errbuf_set(e, -EBADMSG, "%s: reserved 0x%08x, must be zero",
				  what, be_get32(in + 12));
	o->state = in[6];
	o->stage = in[7];
	o->node_id = be_get32(in + 8);
	o->epoch = be_get64(in + 16);
	o->heartbeat = be_get32(in + 24);
	return 0;
}

int status_decode_mbox(const uint8_t *in, size_t len, struct status_mbox *m,
		       struct errbuf *e)
{
	static const char what[] = "mailbox";
	uint32_t magic;
	int err;

	err = check_half(in, len, STATUS_MBOX_SIZE, what, e);
	if (err)
		return err;
	magic = be_get32(in);
	if (magic != STATUS_MBOX_MAGIC)
		return errbuf_set(e, -EBADMSG, "%s: magic 0x%08x, expected 0x%08x",
				  what, magic, STATUS_MBOX_MAGIC);
	if (in[4] > STATE_MAX)
		return errbuf_set(e, -EBADMSG, "%s: from_state %u out of range 0..%u",
				  what, in[4], STATE_MAX);
	if (in[5] > STAGE_MAX)
		return errbuf_set(e, -EBADMSG, "%s: from_stage %u out of range 0..%u",
				  what, in[5], STAGE_MAX);
	if (be_get16(in + 6))
		return errbuf_set(e, -EBADMSG, "%s: reserved 0x%04x, must be zero",
				  what, be_get16(in + 6));
	m->from_state = in[4];
	m->from_stage = in[5];
	m->from_epoch = be_get64(in + 8);
	m->to_epoch = be_get64(in + 16);
	m->from_node = be_get32(in + 24);
	return 0;
}
