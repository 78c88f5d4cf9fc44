/* reliable: client messages that survive a failed link.
 *
 * Every PORT_MSG and PORT_NOTIFY carries its port's next sequence number.
 * The sender keeps each one until the partner has delivered it -- the
 * receiver publishes, per port, the last seq it delivered in its status
 * window (the ack area), and every link heartbeat READs it -- so a link
 * that fails leaves nothing behind: what it may have swallowed is sent
 * again on another link.  The receiver delivers each seq once and in
 * order: it drops what it already delivered and holds what came early
 * (a port moved to another link while its older messages were still on
 * the first) until the gap fills.
 *
 * The structures here only keep bytes; the keeper (serve.c) decides when to
 * send.  Pure: no I/O. */
#ifndef CCM_RELIABLE_H
#define CCM_RELIABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/ports.h"

/* The ack area: one u64 (big-endian) per PORTS slot, after the status
 * block in the status window. */
#define ACK_AREA_OFFSET 64
#define ACK_AREA_SIZE   (8 * CCM_PORTS_TOTAL)

/* How much the sender may keep unacknowledged before it stops taking
 * clients' messages (the next heartbeat's ack frees it). */
#define RELIABLE_BYTES_MAX (1u << 20)
#define RELIABLE_MSGS_MAX  2048
/* Early messages held by the receiver; beyond that they are dropped and
 * the sender's resend brings them again. */
#define RELIABLE_HOLD_MAX  64

struct sent_msg {
	struct port *port;
	uint64_t seq;
	int link;                /* where it went last */
	uint64_t sent_at;        /* ms, when it went last */
	bool queued;             /* to go (again): waits for its port's link to take it */
	uint32_t len;
	uint8_t *frame;          /* the encoded message */
};

struct held_msg {
	struct port *port;
	uint64_t seq;
	uint32_t len;
	uint8_t *frame;
};

struct reliable {
	struct sent_msg *sent;   /* in the order sent */
	int nsent, capsent;
	int nqueued;             /* how many of them are queued */
	size_t sent_bytes;
	struct held_msg held[RELIABLE_HOLD_MAX];
	int nheld;
	uint64_t dups, early;    /* counters: duplicates dropped, early held */
};

/* Keep a message we sent.  -ENOMEM. */
int reliable_sent(struct reliable *r, struct port *p, uint64_t seq, int link, uint64_t now,
		  const uint8_t *frame, uint32_t len);
/* Forget what the partner has delivered (seq <= its port's tx_acked). */
void reliable_acked(struct reliable *r);
/* Too much unacknowledged: take no more messages for now. */
bool reliable_full(const struct reliable *r);

enum reliable_verdict {
	RELIABLE_DELIVER,        /* the next one: deliver it (then reliable_next) */
	RELIABLE_DUP,            /* delivered before: drop */
	RELIABLE_HELD,           /* early: kept until its turn */
	RELIABLE_DROPPED,        /* early and no room: the sender sends it again */
};
/* A message seq for port p arrived (frame/len: its bytes, copied if held).
 * DELIVER advances p->rx_seq. */
enum reliable_verdict reliable_received(struct reliable *r, struct port *p, uint64_t seq,
					const uint8_t *frame, uint32_t len);
/* A held message that is now due for some port (p->rx_seq advanced, the
 * frame handed to the caller, to free()); NULL when none is. */
uint8_t *reliable_next(struct reliable *r, uint32_t *len, struct port **p);

/* Our delivered seq of port p into the ack area of our status window. */
void reliable_publish_ack(uint8_t *status_window, const struct port *p);
/* The partner's ack of slot `slot` from a READ of its status window
 * (buf holds `len` bytes from offset 0); 0 when outside. */
uint64_t reliable_peer_ack(const uint8_t *buf, size_t len, uint16_t slot);

/* Drop everything (the session with the partner ended). */
void reliable_clear(struct reliable *r);

#endif
