/* hs: the peer handshake as a pure state machine.
 *
 * hs_step() maps (machine, event) to (machine', actions).  It performs no
 * I/O, reads no clock and has no hidden state, so every (state, event) pair
 * can be tested and the interleavings of two machines explored exhaustively
 * (tests/unit/test_hs.c).  The driver (daemon/peer.c) carries the actions out
 * over a transport and feeds the results back as events.
 *
 * Each node exports a status block (status.h) holding its own section,
 * written only by itself, and a mailbox written only by the partner with
 * one-sided WRITEs.  The states and their numbers are the ones published in
 * the status block:
 *
 *   1 READ1     RDMA READ of the partner's own section.
 *               ok -> 2 (the partner's epoch is learned); fails -> 3
 *               (so does a READ showing epoch 0: no partner there).
 *   2 WRITE2    WRITE "I am in 2" into the partner's mailbox.
 *               ok -> 4; fails -> ERROR.
 *   3 WAIT3     the partner is not up: watch our own mailbox.
 *               mailbox says >= 5 (5 or CONNECTED, for our epoch) -> 4,
 *               with the writer's epoch adopted: the READ in 4 checks it
 *               is the partner's current one (our mailbox can still hold
 *               the last words of a partner incarnation that crashed).
 *               wait timeout -> 1 (read again: if both sides' first reads
 *               failed, e.g. on a lossy link, both would otherwise wait
 *               here forever).
 *   4 READ4     second READ of the partner's own section (from 2 or 3).
 *               ok with the same epoch -> 5; another epoch -> ERROR
 *               (the partner restarted); fails -> ERROR.
 *   5 WRITE5    WRITE "I am in 5", then wait until the mailbox says the
 *               partner reached 5 (or CONNECTED) -> 6.
 *               write fails or wait timeout -> ERROR.
 *   6 CONNECTED the driver moves on to the exchange.  A mailbox from a new
 *               partner epoch, or the transport losing the partner -> ERROR.
 *   7 ERROR     report the cause, back off, then start again at 1.
 *
 * The mailbox is level-triggered: the driver hands the machine the current
 * valid mailbox contents (HS_EV_MAILBOX) whenever it may have changed; the
 * machine keeps the latest one and judges it against the state it is in.
 * A mailbox addressed to another epoch of ours (to_epoch != my_epoch) is
 * stale and ignored.
 *
 * Every action that expects an answer carries a sequence number (seq); the
 * driver returns it in the answering event and the machine ignores answers
 * whose seq is not the one it is waiting for.  Stale completions and timers
 * can therefore never move the machine. */
#ifndef CCM_HS_H
#define CCM_HS_H

#include <stdbool.h>
#include <stdint.h>

enum hs_state {
	HS_INIT = 0,       /* not started; published as 0 */
	HS_READ1 = 1,
	HS_WRITE2 = 2,
	HS_WAIT3 = 3,
	HS_READ4 = 4,
	HS_WRITE5 = 5,
	HS_CONNECTED = 6,
	HS_ERROR = 7,
};
#define HS_NSTATES 8

enum hs_event_type {
	HS_EV_START = 0,   /* begin the handshake (from INIT only) */
	HS_EV_READ_OK,     /* peer_state, peer_epoch: the partner's own section */
	HS_EV_READ_FAIL,
	HS_EV_WRITE_OK,
	HS_EV_WRITE_FAIL,
	HS_EV_MAILBOX,     /* peer_state, peer_epoch, to_epoch: our mailbox */
	HS_EV_TIMEOUT,     /* the wait armed by HS_ACT_WAIT expired */
	HS_EV_BACKOFF_DONE,/* the delay armed by HS_ACT_BACKOFF expired */
	HS_EV_PEER_LOST,   /* the transport lost the partner */
};
#define HS_NEVENTS 9

enum hs_error {
	HS_ERR_NONE = 0,
	HS_ERR_WRITE_FAILED,    /* a WRITE into the partner's mailbox failed */
	HS_ERR_READ_FAILED,     /* the second READ failed */
	HS_ERR_PEER_RESTARTED,  /* the partner's epoch changed under us */
	HS_ERR_PEER_SILENT,     /* state 5: the partner never confirmed */
	HS_ERR_PEER_LOST,       /* connected, then the transport lost it */
};

struct hs_event {
	enum hs_event_type type;
	uint32_t seq;        /* for READ_*, WRITE_*, TIMEOUT, BACKOFF_DONE */
	uint8_t peer_state;  /* READ_OK: partner's state; MAILBOX: from_state */
	uint64_t peer_epoch; /* READ_OK: partner's epoch; MAILBOX: from_epoch */
	uint64_t to_epoch;   /* MAILBOX: the epoch of ours the writer addressed */
};

/* Actions, as flags; several can come out of one step. */
enum {
	HS_ACT_READ = 1u << 0,      /* READ the partner's own section */
	HS_ACT_WRITE = 1u << 1,     /* WRITE write_state into the partner's mailbox */
	HS_ACT_WAIT = 1u << 2,      /* arm a timer for wait_ms, answer TIMEOUT */
	HS_ACT_BACKOFF = 1u << 3,   /* arm a timer for wait_ms, answer BACKOFF_DONE */
	HS_ACT_REPORT = 1u << 4,    /* report error (the cause) */
	HS_ACT_CONNECTED = 1u << 5, /* the handshake is complete */
	HS_ACT_PUBLISH = 1u << 6,   /* state changed: update our own section */
};

struct hs_actions {
	unsigned flags;
	uint32_t seq;        /* expected back in the answering event */
	uint8_t write_state; /* for HS_ACT_WRITE */
	uint32_t wait_ms;    /* for HS_ACT_WAIT and HS_ACT_BACKOFF */
	enum hs_error error; /* for HS_ACT_REPORT */
};

struct hs_timing {
	uint32_t wait3_ms;        /* how long state 3 waits before reading again */
	uint32_t wait5_ms;        /* how long state 5 waits for the confirmation */
	uint32_t backoff_min_ms;  /* first back-off; doubles per consecutive error */
	uint32_t backoff_max_ms;
};

struct hs {
	enum hs_state state;
	bool wrote5;            /* state 5: our WRITE completed, now waiting */
	uint64_t my_epoch;
	uint64_t peer_epoch;    /* learned by the READ in state 1; 0 = unknown */
	uint8_t mbox_state;     /* latest mailbox addressed to my_epoch ... */
	uint64_t mbox_epoch;    /* ... and the writer's epoch; 0 = none yet */
	uint32_t seq;           /* seq of the answer being waited for */
	uint32_t errors;        /* consecutive errors, for the back-off */
	enum hs_error last_error;
	struct hs_timing timing;
};

/* Default timing, documented in the README. */
extern const struct hs_timing hs_default_timing;

void hs_init(struct hs *m, uint64_t my_epoch, const struct hs_timing *t);

/* The transition function.  Changes only *m and *act. */
void hs_step(struct hs *m, const struct hs_event *ev, struct hs_actions *act);

const char *hs_state_name(enum hs_state s);
const char *hs_event_name(enum hs_event_type t);
const char *hs_error_name(enum hs_error e);

#endif
