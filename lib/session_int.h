/* session_int: what session.c (the handshake and the exchange) and
 * serve.c (the keeper's duties once handed off) share.  Not for anyone
 * else: the rest of the program sees session.h. */
#ifndef CCM_SESSION_INT_H
#define CCM_SESSION_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "clients.h"
#include "exchange.h"
#include "handoff.h"
#include "hs.h"
#include "keeper.h"
#include "ports.h"
#include "session.h"
#include "status.h"
#include "tp.h"
#include "wire.h"

#define OP_TIMEOUT_MS        2000   /* a one-sided op not done by then failed */
#define CONNECT_TIMEOUT_MS   1000
#define EXCHANGE_TIMEOUT_MS  10000  /* connected -> both ready */
#define POLL_WAIT3_MS        50     /* mailbox polling while waiting for the partner */
#define POLL_FAST_MS         5      /* ... while an answer is due any moment */
#define TORN_READ_RETRIES    3
#define QUEUE_MAX            8      /* partner messages held until we are connected */
#define STOP_GRACE_MS        5000   /* SIGTERM: how long clients get to detach */

/* What a posted operation was for; the high half of its wr_id. */
enum op_purpose {
	OP_HS = 1,     /* the handshake machine's READ or WRITE */
	OP_READY = 2,  /* "this side is ready" into the partner's mailbox */
	OP_HEARTBEAT = 3, /* READ of the partner's own section */
	OP_CLIENT = 4, /* a client's WRITE or READ; the low half is its slot */
};

/* Local buffers for one-sided operations, in the scratch region. */
enum {
	SCRATCH_READ = 0,
	SCRATCH_HS_WRITE = 64,
	SCRATCH_READY_WRITE = 128,
	SCRATCH_HEARTBEAT = 192,
	SCRATCH_SIZE = 4096,
};

struct hs_op {
	int kind;               /* 0 none, HS_ACT_READ, HS_ACT_WRITE */
	uint32_t seq;
	uint8_t write_state;
	bool posted;
	int torn_retries;
	uint64_t deadline;
};

/* A client's one-sided operation in flight. */
struct client_op {
	bool used;
	uint64_t conn;             /* the keeper connection that asked */
	uint32_t tag;
	char client[CCM_NAME_MAX + 1];
	uint16_t port;
	bool notify;               /* tell the partner once it has landed */
	uint32_t remote_off, len;
};
#define CLIENT_OPS_MAX 64

struct queued_msg {
	uint8_t *buf;
	uint32_t len;
};

struct session {
	const struct ccm_config *cfg;
	char state_dir[4096];      /* cfg->state_dir made absolute, for messages */
	int state_dirfd;           /* ... and open: every handoff is written
	                              through it, before and after switch_root */
	const struct session_opts *opts;
	const struct log *log;
	struct tp *tp;
	int sigfd;

	uint8_t *win;              /* our status window (remote read/write) */
	uint8_t *scratch;          /* local operation buffers */
	struct tp_remote win_handle, scratch_handle;

	bool link_up, connecting;
	uint64_t connect_deadline;
	struct tp_remote peer_win;

	struct hs hs;
	uint64_t epoch;
	uint8_t stage;
	uint32_t heartbeat;
	uint64_t next_beat;

	struct status_mbox mbox;   /* latest valid mailbox, as last fed */
	bool have_mbox;

	struct hs_op op;           /* the machine's operation in flight */
	struct hs_op next_op;      /* asked for while op was still in flight */
	int timer_kind;            /* 0, HS_ACT_WAIT or HS_ACT_BACKOFF */
	uint32_t timer_seq;
	uint64_t timer_deadline;

	struct exchange *ex;       /* large: on the heap */
	bool ex_started;
	uint64_t ex_deadline;
	bool ready_posted;         /* our "ready" write is in flight */
	bool ports_checked;        /* the partner's PORTS matched ours */
	uint64_t ready_deadline;
	bool handoff_connected;
	bool told_waiting;         /* the handoff says we wait in state 3 */

	struct client_set *clients;
	struct port_table *ports;
	struct auth_key key;
	bool have_key;

	struct queued_msg queue[QUEUE_MAX];
	int nqueue;

	uint8_t *msgbuf;           /* encoding buffer, CCM_MSG_MAX */
	struct wire_msg *decoded;  /* decoding buffer */

	/* Fault injection for the two-process tests: die by SIGKILL on
	 * entering this handshake state (CCM_EARLY_TEST_CRASH_AT=write2, ...;
	 * "ready" = once this side is ready).  -1 = never. */
	int crash_at;

	uint64_t deadline;         /* --timeout; 0 = none */
	bool finished;
	int exit_code;
	char last_error[200];
	enum handoff_state handoff_state;  /* as last written */
	char handoff_error[200];

	/* The keeper (serve.c): everything after the first handoff. */
	struct keeper *keeper;     /* the control socket; NULL with --once */
	bool handed_off;           /* connected once, or timed out: detached */
	bool was_lost;             /* connected before: the next time is "back" */
	struct client_op cops[CLIENT_OPS_MAX];
	uint64_t msg_seq;          /* PORT_MSG sequence numbers, ours */
	uint64_t hb_next;          /* when to READ the partner's heartbeat */
	uint64_t hb_seen_at;       /* when its counter last moved */
	uint32_t hb_last;
	bool hb_posted;
	uint64_t hb_deadline;
	bool stopping;             /* clients told; waiting for them */
	uint64_t stop_deadline;
	uint64_t stop_conn;        /* who asked, to answer; 0 = a signal */
	bool restart;
};


uint64_t sess_now_ms(void);
int sess_write_handoff(struct session *s, enum handoff_state state, const char *error);
void sess_fill_handoff(const struct session *s, struct handoff *h, enum handoff_state state,
		       const char *error);
void sess_finish(struct session *s, int code, const char *error);
void sess_terminate(struct session *s);
void sess_lose_partner(struct session *s, const char *why);
int sess_send_wire(struct session *s, const struct wire_msg *m);

/* serve.c: the keeper's side. */
int serve_open(struct session *s, struct errbuf *e);
void serve_close(struct session *s);
void serve_handed_off(struct session *s, bool connected);
void serve_connected(struct session *s);
void serve_lost(struct session *s);
void serve_requests(struct session *s);
void serve_op_done(struct session *s, uint32_t slot, int status);
void serve_heartbeat_done(struct session *s, int status);
void serve_partner_msg(struct session *s, const struct wire_msg *m);
void serve_timers(struct session *s, uint64_t now);
uint64_t serve_next_deadline(const struct session *s, uint64_t next);
void serve_stop(struct session *s, uint64_t conn, bool restart, uint32_t grace_ms);

#endif
