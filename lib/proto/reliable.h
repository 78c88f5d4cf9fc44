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
 * A message for a client of ours that stays away is not kept for ever:
 * after msg-hold-ms it is given up (reliable_give_up), and the ack word
 * tells the sender which seqs were, so that their completions say
 * -ETIMEDOUT, never 0 (see the ack word below).
 *
 * The structures here only keep bytes; the keeper (daemon/channel.c)
 * decides when to send.  Pure: no I/O. */
#ifndef CCM_RELIABLE_H
#define CCM_RELIABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/limits.h"
#include "proto/status.h"

/* The ack area: one u64 (big-endian) per PORTS slot, after the status
 * block in the status window: the ack word of that port, written in one
 * aligned store so that a READ never sees half of one:
 *   bits  0..31  done: the low 32 bits of the last seq settled -- every seq
 *                up to it our client took, or we gave up
 *   bits 32..47  back: how far before done the latest run given up ends
 *   bits 48..63  len: how many seqs that run has (0: no run to tell)
 * The sender knows the whole seq (its unsettled span is far below 2^31)
 * and settles (tx_acked, done]: the seqs in the run with -ETIMEDOUT, the
 * others with 0.  That is exact only when no other run lies in that span;
 * so a run that does not continue the last one begins only once the sender
 * has echoed the last one.  The echo area holds, per slot, the low 32 bits
 * of the end of the latest run of the partner's that we settled: an end,
 * not a flag, so that a late READ can never pass an old echo for a new one.
 * (A partner without WIRE_CAP_MSG_EXPIRE neither echoes nor understands a
 * run: nothing is given up on its behalf.) */
#define ACK_AREA_OFFSET 64
#define ACK_AREA_SIZE   (8 * CCM_PORTS_TOTAL)
#define ECHO_AREA_OFFSET (ACK_AREA_OFFSET + ACK_AREA_SIZE)
#define ECHO_AREA_SIZE  (4 * CCM_PORTS_TOTAL)
_Static_assert(ECHO_AREA_OFFSET + ECHO_AREA_SIZE <= STATUS_KMBOX_OFFSET,
	       "the ack and echo areas run into the keyed mailbox (proto/status.h)");
#define ACK_BACK_MAX    0xffffu
#define ACK_RUN_MAX     0xffffu

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

/* One port's message channel, as the store keeps it: the daemon's port
 * (daemon/ports.h) embeds one, and the store knows nothing else of ports. */
struct rel_port {
	uint16_t slot;            /* our PORTS entry: where our ack for it is */
	uint16_t peer_slot;       /* the partner's: where its ack for it is */
	uint64_t tx_seq;          /* last message seq we sent on it */
	uint64_t tx_acked;        /* the partner's client has up to here */
	uint32_t tx_window;       /* client messages sent, not yet acknowledged */
	uint64_t rx_seq;          /* last seq we took in (delivered or pending) */
	uint64_t rx_done;         /* last seq our client's channel took: our ack */
	uint32_t rx_pending;      /* taken in, waiting for our client */
	/* Given up (msg-hold-ms: no client of ours took them): the latest
	 * run of the partner's seqs, told in our ack word */
	uint64_t rx_run_end;      /* its last seq */
	uint32_t rx_run_len;      /* 0: no run to tell */
	uint32_t rx_echo;         /* the partner's echo: the low 32 bits of the
	                             end of our latest run it has settled */
	/* Ours the partner gave up: the run its last ack word told */
	uint64_t tx_run_from, tx_run_to;  /* 0, 0: none */
	uint32_t tx_echo;         /* our echo of it, in our echo area */
};

struct sent_msg {
	struct rel_port *port;
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
	struct rel_port *port;
	uint64_t seq;
	uint64_t at;             /* ms: when it came (pending ones) */
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
int reliable_sent(struct reliable *r, struct rel_port *p, uint64_t seq, int link, uint64_t now,
		  const uint8_t *frame, uint32_t len, bool in_window, uint64_t conn, uint32_t tag);

/* A sent message's completion: status 0 when acknowledged. */
typedef void reliable_done_fn(void *ctx, const struct sent_msg *m, int status);

/* Forget what the partner settled (seq <= its port's tx_acked), reporting
 * each to done (may be NULL): status 0, or -ETIMEDOUT for the seqs in the
 * port's tx_run (given up by the partner). */
void reliable_acked(struct reliable *r, reliable_done_fn *done, void *ctx);
/* Too much unacknowledged: take no more messages for now. */
bool reliable_full(const struct reliable *r);
/* p's window is used up: its client waits for an ack. */
bool reliable_port_full(const struct rel_port *p);

enum reliable_verdict {
	RELIABLE_DELIVER,        /* the next one: deliver it (then reliable_next) */
	RELIABLE_DUP,            /* delivered before: drop */
	RELIABLE_HELD,           /* early: kept until its turn */
	RELIABLE_DROPPED,        /* early and no room: the sender sends it again */
};
/* A message seq for port p arrived (frame/len: its bytes, copied if held).
 * DELIVER advances p->rx_seq. */
enum reliable_verdict reliable_received(struct reliable *r, struct rel_port *p, uint64_t seq,
					const uint8_t *frame, uint32_t len);
/* A held message that is now due for some port (p->rx_seq advanced, the
 * frame handed to the caller, to free()); NULL when none is. */
uint8_t *reliable_next(struct reliable *r, uint32_t *len, struct rel_port **p);

/* An in-order message for port p that its client cannot take now: kept
 * (copied) until it can, behind the others.  -ENOBUFS when p already has
 * PORT_PEND_MAX waiting, -ENOMEM. */
int reliable_pend(struct reliable *r, struct rel_port *p, uint64_t seq, const uint8_t *frame,
		  uint32_t len, uint64_t now);
/* Offer the pending messages, oldest first, to take (which returns true
 * when the client took it; a port whose message was not taken is offered
 * nothing more this time, so each port's stay in order).  Taken ones are
 * freed and advance their port's rx_done. */
typedef bool reliable_take_fn(void *ctx, struct rel_port *p, const uint8_t *frame, uint32_t len);
void reliable_offer_pending(struct reliable *r, reliable_take_fn *take, void *ctx);

/* May our client take p's next message now?  Not while settling one more
 * would put the last run out of the ack word's reach (back) before the
 * sender echoed it. */
bool reliable_ack_room(const struct rel_port *p);

/* Give up p's pending messages that waited hold_ms: since they came or
 * since detached_at (its client's last channel went), whichever is later;
 * only call it while p's client has no channel.  The oldest first, as one
 * run that continues p's last or begins a new one (then only once the
 * partner echoed the last).  Returns how many were given up (p->rx_done
 * moved: publish the ack), and *next the time the next one is due (or
 * UINT64_MAX: none, or one is waiting for the partner's echo, then
 * next is 0 -- look again when the echo comes). */
int reliable_give_up(struct reliable *r, struct rel_port *p, uint64_t now, uint32_t hold_ms,
		     uint64_t detached_at, uint64_t *next);

/* Our port p's ack word into the ack area of our status window, and our
 * echo into its echo area. */
void reliable_publish_ack(uint8_t *status_window, const struct rel_port *p);
void reliable_publish_echo(uint8_t *status_window, const struct rel_port *p);

/* What a READ of the partner's status window (buf: `len` bytes from offset
 * 0) says about port p: its ack word moves p->tx_acked and p->tx_run (then
 * call reliable_acked), and its echo may retire p's last run.  Returns
 * RELIABLE_ECHO_NEW (publish our echo), RELIABLE_RUN_RETIRED (publish our
 * ack; what waited for the echo may go), or 0. */
enum { RELIABLE_ECHO_NEW = 1, RELIABLE_RUN_RETIRED = 2 };
unsigned reliable_peer_ack(struct rel_port *p, const uint8_t *buf, size_t len);

/* Drop everything (the session with the partner ended), reporting each
 * owed completion to done (may be NULL) with status. */
void reliable_clear(struct reliable *r, reliable_done_fn *done, void *ctx, int status);

#endif
