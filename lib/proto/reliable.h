/* reliable: client messages that survive a failed link and a slow client.
 *
 * Every PORT_MSG and PORT_NOTIFY carries its port's next sequence number.
 * The sender keeps each one until the partner's client has it -- the
 * receiver publishes, per port, the last seq its client's channel took
 * (rx_done) in its status window (the ack area), and every link heartbeat
 * READs it -- so a link that fails leaves nothing behind: what it may have
 * swallowed is sent again on another link.  The receiver takes each seq
 * once and in order: it drops what it already took and holds what came
 * early (a port moved to another link while its older messages were still
 * on the first) until the gap fills.
 *
 * Flow control end to end: a port has at most PORT_MSG_WINDOW client
 * messages unacknowledged, and the ack only moves when the receiving
 * client's channel took the message.  What its client cannot take yet
 * (its socket is full, or it is not attached) waits here, in order, in
 * the pending queue -- at most PORT_PEND_MAX per port, so a client that
 * never reads holds up only its own ports and the keeper's memory stays
 * bounded.  The sender's completion is reported when the ack covers it
 * (reliable_acked), or with an error when the session ends first
 * (reliable_clear).
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
/* Client messages (not notifies) one port may have unacknowledged: the
 * client's credit (libccm keeps the same count). */
#define PORT_MSG_WINDOW    CCM_PORT_MSG_WINDOW
/* In order, waiting for the client to take them: per port, enough for a
 * whole window plus the notifies of the writes in flight (two windows); a
 * sender that sends more than its window has them refused (its resend
 * brings them again). */
#define PORT_PEND_MAX      (2 * PORT_MSG_WINDOW)

struct sent_msg {
	struct port *port;
	uint64_t seq;
	int link;                /* where it went last */
	uint64_t sent_at;        /* ms, when it went last */
	bool queued;             /* to go (again): waits for its port's link to take it */
	bool in_window;          /* a client message: counts in its port's window */
	uint8_t resends;         /* how often it went again: its resend backs off */
	uint64_t conn;           /* whose completion it owes (0: nobody's) */
	uint32_t tag;
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
	struct held_msg *pend;   /* in order: for clients that cannot take them yet */
	int npend, cappend;
	uint64_t dups, early;    /* counters: duplicates dropped, early held */
};

/* Keep a message we sent; its completion is owed to (conn, tag) when conn
 * is not 0, and in_window counts it in p's window (p->tx_window).
 * -ENOMEM. */
int reliable_sent(struct reliable *r, struct port *p, uint64_t seq, int link, uint64_t now,
		  const uint8_t *frame, uint32_t len, bool in_window, uint64_t conn, uint32_t tag);

/* A sent message's completion: status 0 when acknowledged. */
typedef void reliable_done_fn(void *ctx, const struct sent_msg *m, int status);

/* Forget what the partner's clients have (seq <= its port's tx_acked),
 * reporting each to done (may be NULL) with status 0. */
void reliable_acked(struct reliable *r, reliable_done_fn *done, void *ctx);
/* Too much unacknowledged: take no more messages for now. */
bool reliable_full(const struct reliable *r);
/* p's window is used up: its client waits for an ack. */
bool reliable_port_full(const struct port *p);

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

/* An in-order message for port p that its client cannot take now: kept
 * (copied) until it can, behind the others.  -ENOBUFS when p already has
 * PORT_PEND_MAX waiting, -ENOMEM. */
int reliable_pend(struct reliable *r, struct port *p, uint64_t seq, const uint8_t *frame,
		  uint32_t len);
/* Offer the pending messages, oldest first, to take (which returns true
 * when the client took it; a port whose message was not taken is offered
 * nothing more this time, so each port's stay in order).  Taken ones are
 * freed and advance their port's rx_done. */
typedef bool reliable_take_fn(void *ctx, struct port *p, const uint8_t *frame, uint32_t len);
void reliable_offer_pending(struct reliable *r, reliable_take_fn *take, void *ctx);

/* Our port p's rx_done into the ack area of our status window. */
void reliable_publish_ack(uint8_t *status_window, const struct port *p);
/* The partner's ack of slot `slot` from a READ of its status window
 * (buf holds `len` bytes from offset 0); 0 when outside. */
uint64_t reliable_peer_ack(const uint8_t *buf, size_t len, uint16_t slot);

/* Drop everything (the session with the partner ended), reporting each
 * owed completion to done (may be NULL) with status. */
void reliable_clear(struct reliable *r, reliable_done_fn *done, void *ctx, int status);

#endif
