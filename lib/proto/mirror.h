/* mirror: the record format ccm-nvmirror keeps in a port window, and its
 * codec.  Pure: no I/O beyond the printer's FILE *.
 *
 * The window is a log of one *generation*: a header at offset 0, then
 * records back to back, each at an 8-byte aligned offset.  When the next
 * record does not fit before the end of the window the log wraps: a new
 * generation starts, empty, and its records overwrite the old ones from
 * the start.  Sequence numbers never restart: a generation's first record
 * follows the previous generation's last.  All integers are big-endian
 * (the two nodes of a pair need not share a byte order).
 *
 * header (MIRROR_HDR_SIZE = 40):     record (MIRROR_REC_HDR_SIZE = 24 + payload):
 *   0 u32 magic "CCMN"                 0 u32 magic "CCMR"
 *   4 u16 format (1)                   4 u32 len (payload bytes)
 *   6 u16 reserved, zero               8 u64 seq
 *   8 u32 generation (>= 1)           16 u32 crc32(payload)
 *  12 u32 next: end of the last       20 u32 crc32(bytes 0..19)
 *         record, where the next      24 payload, then zero padding to a
 *         one goes (8-aligned)           multiple of 8
 *  16 u64 first_seq (>= 1)
 *  24 u64 last_seq (first_seq - 1
 *         when the log is empty)
 *  32 u32 reserved, zero
 *  36 u32 crc32(bytes 0..35)
 *
 * The header is the commit point: a reader trusts exactly the records in
 * [MIRROR_HDR_SIZE, next), which must hold last_seq - first_seq + 1
 * records numbered first_seq, first_seq + 1, ... with nothing left over.
 * A writer that copies the window elsewhere (ccm-nvmirror pushing it to
 * the partner) therefore copies records before the header that covers
 * them, and, before records of a new generation overwrite old ones, a
 * header that no longer covers the old ones (mirror_empty_header). */
#ifndef CCM_MIRROR_H
#define CCM_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/errbuf.h"
#include "base/limits.h"

#define MIRROR_HDR_MAGIC    0x43434d4eu /* "CCMN" */
#define MIRROR_REC_MAGIC    0x43434d52u /* "CCMR" */
#define MIRROR_FORMAT       1
#define MIRROR_HDR_SIZE     40u
#define MIRROR_REC_HDR_SIZE 24u
#define MIRROR_ALIGN        8u
/* A record, header and padding, fits in one ccm_write (CCM_OP_MAX). */
#define MIRROR_PAYLOAD_MAX  (CCM_OP_MAX - MIRROR_REC_HDR_SIZE)
/* The smallest window that holds the header and one 8-byte record. */
#define MIRROR_WINDOW_MIN   (MIRROR_HDR_SIZE + MIRROR_REC_HDR_SIZE + MIRROR_ALIGN)
/* Windows are port windows: the offsets are u32. */
#define MIRROR_WINDOW_MAX   CCM_PORT_SIZE_MAX

struct mirror_hdr {
	uint32_t generation;
	uint32_t next;
	uint64_t first_seq;
	uint64_t last_seq;
};

/* A byte range of the window that an update changed. */
struct mirror_range {
	uint32_t off;
	uint32_t len;
};

struct mirror_rec {
	uint64_t seq;
	uint32_t off;             /* of the record header in the window */
	uint32_t len;             /* payload bytes */
	uint32_t crc;             /* crc32 of the payload, checked */
	const uint8_t *payload;   /* inside the window walked */
};

struct mirror_iter {
	const uint8_t *win;
	uint32_t winlen;
	struct mirror_hdr h;
	uint32_t pos;             /* the next record's offset */
	uint64_t seq;             /* the next record's expected sequence */
};

/* Bytes a record with a payload of len bytes takes, padding included. */
uint32_t mirror_rec_size(uint32_t len);

void mirror_encode_header(const struct mirror_hdr *h, uint8_t out[MIRROR_HDR_SIZE]);

/* Decode and check the header of a window of winlen bytes: -ENODATA when
 * its 40 bytes are all zero (nothing was ever written), -EBADMSG for a bad
 * magic, format, reserved field or CRC, or fields that contradict each
 * other or the window (next outside it or unaligned, first_seq 0, last_seq
 * before first_seq - 1, more records than could fit), -EINVAL for a window
 * outside MIRROR_WINDOW_MIN..MIRROR_WINDOW_MAX. */
int mirror_read_header(const void *win, size_t winlen, struct mirror_hdr *h,
		       struct errbuf *e);

/* Start an empty log of the given generation whose first record will have
 * sequence first_seq (both >= 1).  Writes the header only. */
int mirror_init(void *win, size_t winlen, uint32_t generation, uint64_t first_seq);

/* Append one record of len (0..MIRROR_PAYLOAD_MAX) bytes at the header's
 * next offset and update the header.  *rec is the record's byte range; the
 * header, [0, MIRROR_HDR_SIZE), changed too.  -ENOSPC: the record does not
 * fit before the end of the window (mirror_wrap, then append again);
 * -EMSGSIZE: it would not fit in an empty window either; -EOVERFLOW: the
 * sequence numbers are exhausted; a bad header fails as mirror_read_header
 * says.  On failure the window is unchanged. */
int mirror_append(void *win, size_t winlen, const void *payload, uint32_t len,
		  struct mirror_range *rec);

/* Start the next generation, empty, continuing the sequence numbers. */
int mirror_wrap(void *win, size_t winlen);

/* The header h with no records: what a reader may see while the records
 * of h's generation are being (re)written under it. */
struct mirror_hdr mirror_empty_header(const struct mirror_hdr *h);

/* Walk a window's records.  start checks the header (as
 * mirror_read_header).  next returns 1 with *r filled, 0 at the end of the
 * log, or -EBADMSG (e says which record and why) for the first record that
 * is torn or corrupt: a bad magic, header CRC, length running past next,
 * unexpected sequence, payload CRC or non-zero padding, or a log that ends
 * before or after the header's last_seq.  Every length is checked against
 * the window before it is used; nothing outside [0, winlen) is read. */
int mirror_iter_start(struct mirror_iter *it, const void *win, size_t winlen,
		      struct errbuf *e);
int mirror_iter_next(struct mirror_iter *it, struct mirror_rec *r, struct errbuf *e);

/* The printer of `ccm-early dump`: a line for the header and one per
 * record to list (if not NULL), every payload in order to payload (if not
 * NULL).  Returns the number of records, or the walk's error with e set
 * (the records before it are printed). */
int mirror_print(FILE *list, FILE *payload, const void *win, size_t winlen,
		 struct errbuf *e);

#endif
