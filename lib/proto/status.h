/* status: the status block every node exports at offset 0 of its status
 * window, and its codec.
 *
 * The block has two halves with one writer each, so no byte is ever written
 * by both sides:
 *   own section (bytes 0..31)  written only by the owner; the partner READs it
 *   mailbox     (bytes 32..63) written only by the partner with one WRITE
 * Each half ends in a CRC-32 of its other bytes: a reader that catches a
 * half mid-write (a one-sided READ or WRITE is not atomic against the CPU)
 * sees a bad CRC, treats the half as "not there yet" and looks again.
 * All integers are big-endian.
 *
 * own section:                       mailbox:
 *   0  u32 magic "CCMS"                32 u32 magic "CCMM"
 *   4  u16 layout (1)                  36 u8  from_state (hs_state)
 *   6  u8  state (hs_state)            37 u8  from_stage (status_stage)
 *   7  u8  stage (status_stage)        38 u16 reserved, zero
 *   8  u32 node_id                     40 u64 from_epoch
 *   12 u32 reserved, zero              48 u64 to_epoch (the owner's epoch
 *   16 u64 epoch                              the writer is talking to)
 *   24 u32 heartbeat                   56 u32 from_node
 *   28 u32 crc32(bytes 0..27)          60 u32 crc32(bytes 32..59)
 *
 * A pair that holds a pre-shared key uses the keyed mailbox instead, at
 * STATUS_KMBOX_OFFSET of the window: the same 32 bytes, then a 16-byte tag
 * (auth_mbox_tag), written together in one WRITE.  The rdma gate admits
 * only a connection that proved the key, but a packet forged on the wire
 * needs no connection of its own: the tag is what refuses it.  (On tcp the
 * frames are sealed already; the same layout keeps one code path.)  The
 * mailbox at 32 is then left alone: a keyed node never reads it, so an
 * untagged write, whoever made it, moves nothing.  */
#ifndef CCM_STATUS_H
#define CCM_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "base/errbuf.h"

#define STATUS_BLOCK_SIZE   64
#define STATUS_OWN_OFFSET   0
#define STATUS_OWN_SIZE     32
#define STATUS_MBOX_OFFSET  32
#define STATUS_MBOX_SIZE    32
#define STATUS_LAYOUT       1
#define STATUS_OWN_MAGIC    0x43434d53u /* "CCMS" */
#define STATUS_MBOX_MAGIC   0x43434d4du /* "CCMM" */
/* The status window is one page: the block, then room to grow. */
#define STATUS_WINDOW_SIZE  4096
/* The keyed mailbox and its tag, near the page's end (proto/reliable.h's
 * ack and echo areas lie between). */
#define STATUS_KMBOX_OFFSET 4032
#define STATUS_KMBOX_TAG    16
#define STATUS_KMBOX_SIZE   (STATUS_MBOX_SIZE + STATUS_KMBOX_TAG)

/* Boot stage: how far the node has come, beyond the handshake itself. */
enum status_stage {
	STAGE_NONE = 0,
	STAGE_HANDSHAKE = 1,  /* handshake running */
	STAGE_EXCHANGE = 2,   /* connected, exchanging descriptors */
	STAGE_READY = 3,      /* ports created: "this side is ready" */
	STAGE_TERMINATING = 4,
};

struct status_own {
	uint8_t state;
	uint8_t stage;
	uint32_t node_id;
	uint64_t epoch;
	uint32_t heartbeat;
};

struct status_mbox {
	uint8_t from_state;
	uint8_t from_stage;
	uint32_t from_node;
	uint64_t from_epoch;
	uint64_t to_epoch;
};

void status_encode_own(const struct status_own *o, uint8_t out[STATUS_OWN_SIZE]);
void status_encode_mbox(const struct status_mbox *m, uint8_t out[STATUS_MBOX_SIZE]);

/* 0 on success.  -EAGAIN when the bytes are all zero (never written) or the
 * CRC does not match (caught mid-write: look again); -EBADMSG for a wrong
 * magic, layout, non-zero reserved bytes or out-of-range state/stage. */
int status_decode_own(const uint8_t *in, size_t len, struct status_own *o, struct errbuf *e);
int status_decode_mbox(const uint8_t *in, size_t len, struct status_mbox *m, struct errbuf *e);

uint32_t ccm_crc32(const void *buf, size_t len);

#endif
