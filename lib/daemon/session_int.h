/* session_int: what the daemon's files share -- session.c (the handshake
 * and the exchange) and the keeper's (keeper.c, channel.c, linkset.c,
 * notes.c), on session_base.c.  Not for anyone else: the rest of the
 * program sees session.h. */
#ifndef CCM_SESSION_INT_H
#define CCM_SESSION_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/auth.h"
#include "conf/client_desc.h"
#include "proto/exchange.h"
#include "state/handoff.h"
#include "state/metrics.h"
#include "proto/hs.h"
#include "daemon/control.h"
#include "proto/link_policy.h"
#include "daemon/ports.h"
#include "proto/reliable.h"
#include "daemon/session.h"
#include "daemon/timers.h"
#include "proto/status.h"
#include "tp/transport.h"
#include "proto/wire.h"

#define OP_TIMEOUT_MS        2000   /* a one-sided op not done by then failed */
#define CONNECT_TIMEOUT_MS   1000
#define EXCHANGE_TIMEOUT_MS  10000  /* connected -> both ready */
#define POLL_WAIT3_MS        50     /* mailbox polling while waiting for the partner */
#define POLL_FAST_MS         5      /* ... while an answer is due any moment */
#define TORN_READ_RETRIES    3
#define QUEUE_MAX            8      /* partner messages held until we are connected */
#define STOP_GRACE_MS        5000   /* SIGTERM: how long clients get to detach */
#define LINK_RETRY_MS        100    /* a failed link: try connecting this often */
#define RESEND_AFTER_MS      200    /* a message not acknowledged by then (and two
                                       link heartbeats, which bring the acks) goes again */
#define LINKS_REFRESH_MS     1000   /* the handoff's link counters: this fresh */
#define TEXT_BUF_MAX (HANDOFF_TEXT_MAX > METRICS_TEXT_MAX ? HANDOFF_TEXT_MAX : METRICS_TEXT_MAX)
#define HANDOFF_RETRY_MS     5000   /* a handoff that could not be written: again */

/* What a posted operation was for; the high half of its wr_id. */
enum op_purpose {
	OP_HS = 1,     /* the handshake machine's READ or WRITE */
	OP_READY = 2,  /* "this side is ready" into the partner's mailbox */
	OP_HEARTBEAT = 3, /* a link's READ of the partner's status block and
	                     ack area; the low half is the link */
	OP_CLIENT = 4, /* a client's WRITE or READ; the low half is its slot */
};

/* Local buffers for one-sided operations, in the scratch region. */
enum {
	SCRATCH_READ = 0,
	SCRATCH_HS_WRITE = 64,
	SCRATCH_READY_WRITE = 128,
	SCRATCH_HEARTBEAT = 256,   /* one LINK_HB_MAX slice per link */
	LINK_HB_MAX = ECHO_AREA_OFFSET + ECHO_AREA_SIZE,
	SCRATCH_SIZE = 16384,
};
_Static_assert(SCRATCH_HEARTBEAT + CCM_LINKS_MAX * LINK_HB_MAX <= SCRATCH_SIZE,
	       "scratch too small for the link heartbeats");
_Static_assert(ECHO_AREA_OFFSET + ECHO_AREA_SIZE <= STATUS_WINDOW_SIZE,
	       "the ack and echo areas must fit the status window");
_Static_assert(SCRATCH_READY_WRITE - SCRATCH_HS_WRITE >= STATUS_KMBOX_SIZE &&
	       SCRATCH_HEARTBEAT - SCRATCH_READY_WRITE >= STATUS_KMBOX_SIZE,
	       "a mailbox write slot holds the keyed mailbox and its tag");

/* One interconnect: its own transport (and so its own device and queue
 * pairs, or sockets), over which the same windows are exposed. */
struct peer_link {
	struct tp *tp;
	struct tp_remote win_handle, scratch_handle;
	struct link_health h;
	bool tp_up;                /* our connection to the partner is up */
	bool connecting;
	struct tp_remote peer_win; /* the partner's status window over it */
	bool hb_posted;
	uint64_t hb_posted_at;     /* ms: its round trip is the link's rtt */
	bool acks_wanted;          /* post the next heartbeat READ at once */
	uint64_t hb_wanted_since;  /* a heartbeat READ is due since (0: none);
	                              it may not get posted on a full link */
	uint64_t last_progress;    /* an operation on it last completed */
	uint8_t *early_join;       /* the partner's LINK_JOIN, come before we
	                              were connected */
	uint32_t early_join_len;
	bool refused_said;         /* our connect was refused as a stranger, and
	                              the log said so: once until it connects */
	uint32_t stranger_said;    /* the last stranger whose refusal the log told */
};

/* The session with the partner, one at a time.  Allowed moves
 * (sess_peer_enter checks them against peer_moves in session.c):
 *   HANDSHAKING -> EXCHANGING     the handshake machine connected
 *   EXCHANGING  -> CONNECTED      both sides ready (PORTS, "ready" write)
 *   CONNECTED   -> UNREACHABLE    no link reaches the partner any more
 *   UNREACHABLE -> CONNECTED      a link found the same partner, alive
 *   any but HANDSHAKING -> HANDSHAKING   the session ended: start again */
enum peer_phase {
	PEER_HANDSHAKING = 0,
	PEER_EXCHANGING,
	PEER_CONNECTED,
	PEER_UNREACHABLE,
};

/* The keeper's own life:
 *   STARTING -> SERVING    handed off (connected, or --timeout passed)
 *   STARTING or SERVING -> STOPPING    told to stop: clients' grace time
 *   any -> FINISHED        the exit code is set; the loop ends */
enum daemon_phase {
	DAEMON_STARTING = 0,
	DAEMON_SERVING,
	DAEMON_STOPPING,
	DAEMON_FINISHED,
};

struct hs_op {
	int kind;               /* 0 none, HS_ACT_READ, HS_ACT_WRITE */
	uint32_t seq;
	uint8_t write_state;
	bool posted;
	int torn_retries;
};

/* A client's one-sided operation in flight. */
struct client_op {
	bool used;
	bool is_read;
	int link;                  /* where it is posted */
	uint32_t gen;              /* which posting a completion is for */
	uint64_t order;            /* posting order, to re-post in order */
	uint64_t conn;             /* the keeper connection that asked */
	uint32_t tag;
	char client[CCM_NAME_MAX + 1];
	uint16_t port;
	bool notify;               /* tell the partner once it has landed */
	uint32_t local_off, remote_off, len;
};
/* The clients' READs and WRITEs in flight, over all links together: fewer
 * than a link takes, so that the keeper's own (the link heartbeat READ,
 * the ready WRITE) always find room.  At the link's limit the heartbeat
 * could not be posted, and a healthy partner under load was declared
 * unreachable (the simulator's --stray runs, which allow no loss, found
 * it). */
#define CLIENT_OPS_MAX (TP_OPS_MAX - 8)

struct queued_msg {
	uint8_t *buf;
	uint32_t len;
	int link;                  /* it came over this link */
};

struct session {
	const struct ccm_config *cfg;
	char state_dir[4096];      /* cfg->state_dir made absolute, for messages */
	int state_dirfd;           /* ... and open: every handoff is written
	                              through it, before and after switch_root */
	const struct session_opts *opts;
	const struct log *log;
	uint64_t now;              /* monotonic ms, as the loop last said */
	int64_t wall;              /* seconds since the epoch, likewise */
	unsigned notices;          /* enum session_notice, for the loop */

	uint8_t *win;              /* our status window (remote read/write) */
	uint8_t *scratch;          /* local operation buffers */
	struct ccm_link link_cfg[CCM_LINKS_MAX];
	struct peer_link links[CCM_LINKS_MAX];
	int nlinks;
	int hs_link;               /* the link the handshake runs on; -1 none */
	int op_link, ready_link;   /* where s->op and the ready write went */
	unsigned peer_keys;        /* bit i: we know the partner's windows on link i */

	struct hs hs;
	uint64_t epoch;
	uint8_t stage;
	uint32_t heartbeat;
	struct timers timers;      /* every deadline (timers.h) */

	struct status_mbox mbox;   /* latest valid mailbox, as last fed */
	bool have_mbox;
	/* Keyed: the last mailbox refused for its tag, as it lay in the
	 * window, so that it is checked and logged once. */
	uint8_t mbox_refused[STATUS_KMBOX_SIZE];

	struct hs_op op;           /* the machine's operation in flight */
	struct hs_op next_op;      /* asked for while op was still in flight */
	int timer_kind;            /* 0, HS_ACT_WAIT or HS_ACT_BACKOFF */
	uint32_t timer_seq;        /* T_HS answers with this seq */

	enum peer_phase peer;
	enum daemon_phase daemon;
	uint32_t round;            /* our exchange's round (wire.h); 0: none */
	uint32_t peer_round;       /* the partner's, from its HELLO; 0: not yet */
	unsigned peer_seen;        /* bit t: its message of type t came this round */
	struct exchange *ex;       /* large: on the heap */
	bool ready_posted;         /* our "ready" write is in flight */
	bool ports_checked;        /* the partner's PORTS matched ours */
	bool told_waiting;         /* the handoff says we wait in state 3 */

	struct client_set *clients;
	struct port_table *ports;
	struct auth_keyring keys;  /* every link's transport reads them */

	struct queued_msg queue[QUEUE_MAX];
	int nqueue;

	uint8_t *msgbuf;           /* encoding buffer, CCM_MSG_MAX */
	struct wire_msg *decoded;  /* decoding buffer */
	/* The handoff and metrics writes' buffers, kept for the session's
	 * life: a 64 KiB buffer allocated per write is an mmap and a munmap
	 * each time, which on virtual machines cost more than the write. */
	struct handoff *handoff_buf;
	char *text_buf;            /* TEXT_BUF_MAX */

	/* Fault injection for the two-process tests: die by SIGKILL on
	 * entering this handshake state (CCM_EARLY_TEST_CRASH_AT=write2, ...;
	 * "ready" = once this side is ready).  -1 = never. */
	int crash_at;

	int exit_code;
	char last_error[200];
	bool key_refused;          /* the partner's address refused our key and
	                              no link has connected since */
	enum handoff_state handoff_state;  /* as last written (or tried) */
	char handoff_error[200];
	bool handoff_unwritten;    /* the last write failed: the file lags, and
	                              the keeper writes it again, whole (T_HANDOFF) */

	/* The keeper (keeper.c and the files it calls): everything after the
	 * first handoff. */
	struct control *control;    /* the control socket; NULL with --once */
	bool handed_off;           /* connected once, or timed out: detached
	                              (still true when stopping afterwards) */
	bool was_lost;             /* connected before: the next time is "back" */
	uint32_t hb_at_loss;       /* the partner's counter when it went */
	struct client_op cops[CLIENT_OPS_MAX];
	/* Counted for the status (and the metrics made from it) */
	uint64_t events_told[CTL_EV_COUNT];  /* by type: what the clients heard */
	uint64_t partner_epoch_seen;         /* of the last partner connected */
	uint64_t partner_epoch_changes;      /* it came back as a new one */
	bool metrics_failing;                /* the last metrics write failed */
	/* What `events` watchers were last told (notes_tell_changes) */
	int noted_state, noted_hs, noted_link[CCM_LINKS_MAX];
	uint64_t op_order;
	struct reliable rel;       /* client messages until acknowledged */
	uint64_t hb_seen_at;       /* when the partner's counter last moved */
	uint64_t last_turn;        /* when session_turn last ran (0: never) */
	uint64_t links_written_sum;/* the handoff's link counters, summed, as
	                              last written */
	uint32_t hb_last;
	uint64_t stop_conn;        /* who asked, to answer; 0 = a signal */
	bool restart;
};


/* session_base.c: what session.c and the keeper's files all use; it calls
 * none of them. */
int sess_random(struct session *s, void *buf, size_t len);
void sess_peer_enter(struct session *s, enum peer_phase to);
void sess_daemon_enter(struct session *s, enum daemon_phase to);
const char *peer_phase_name(enum peer_phase p);

/* What the phases say, named for what the code asks. */
static inline bool sess_ex_started(const struct session *s)
{
	return s->peer >= PEER_EXCHANGING;
}

/* Both sides were ready: the clients are served (unreachable or not). */
static inline bool sess_connected(const struct session *s)
{
	return s->peer >= PEER_CONNECTED;
}

static inline bool sess_unreachable(const struct session *s)
{
	return s->peer == PEER_UNREACHABLE;
}

static inline bool sess_stopping(const struct session *s)
{
	return s->daemon == DAEMON_STOPPING;
}

static inline bool sess_finished(const struct session *s)
{
	return s->daemon == DAEMON_FINISHED;
}
int sess_write_handoff(struct session *s, enum handoff_state state, const char *error);
/* The same state again with the links as they are now, without fsync. */
int sess_refresh_handoff(struct session *s);
void sess_fill_handoff(const struct session *s, struct handoff *h, enum handoff_state state,
		       const char *error);
void sess_finish(struct session *s, int code, const char *error);
void sess_terminate(struct session *s);
int sess_send_wire(struct session *s, struct wire_msg *m);
/* Encode m into s->msgbuf, stamped with our round and the partner's. */
int sess_encode(struct session *s, struct wire_msg *m);
/* The names of the clients both sides have, NULL-terminated. */
void sess_shared_names(const struct session *s, const char *names[2 * CCM_CLIENTS_MAX + 1]);
int sess_send_on(struct session *s, int link, const uint8_t *frame, uint32_t len);
void sess_link_connect(struct session *s, int link);
/* A link failed: DOWN, and connect again in a while. */
void sess_link_down(struct session *s, int link);
/* How many ports link carries now. */
int sess_link_ports(const struct session *s, int link);
/* The configured keys, read and checked. */
int sess_load_keys(const struct ccm_config *cfg, struct auth_keyring *r, struct errbuf *e);
/* Our status block's own part, as the session stands. */
void sess_publish_own(struct session *s);

/* peer.c: the session with the partner up to both sides ready.  It calls
 * the keeper's files and session_base.c; session.c calls it. */
int peer_post_hs_op(struct session *s);
/* The operation in flight failed (its link went, or it timed out). */
void peer_fail_hs_op(struct session *s);
bool peer_any_connecting(const struct session *s);
void peer_op_slot_free(struct session *s);
/* An event for the handshake machine, and what it decides, done. */
void peer_hs_feed(struct session *s, const struct hs_event *ev);
/* The partner is lost (why): the session starts again. */
void peer_lose(struct session *s, const char *why);
void peer_sync_mailbox(struct session *s);
void peer_maybe_finish_once(struct session *s);
void peer_check_ready(struct session *s);
int peer_create_local_ports(struct session *s, struct errbuf *e);
/* A frame that came over link: the exchange's, the keeper's or refused. */
void peer_handle_message(struct session *s, int link, const uint8_t *buf, uint32_t len);
/* A partner's message come before we were connected: kept till then. */
void peer_queue_message(struct session *s, int link, const uint8_t *buf, uint32_t len);
void peer_drop_queue(struct session *s, int link);

/* notes.c: what the keeper tells watchers and clients.  It calls
 * session_base.c only. */
void notes_handed_off(struct session *s, bool connected);
/* The handoff, handshake and link states that changed since the watchers
 * (`ccm-early events`) were last told: tell them.  After every turn. */
void notes_tell_changes(struct session *s);
/* A new watcher (connection conn): everything as it stands now. */
void notes_tell_now(struct session *s, uint64_t conn);
/* A change of kind (CTL_NOTE_*) to every watcher. */
void notes_change(struct session *s, uint16_t kind, int link, const char *state, const char *name);
void notes_tell_clients(struct session *s, enum ctl_event_type type, int link);

/* linkset.c: the links.  It calls session_base.c only. */
/* The link that carries port p now (-1: none reaches its window). */
int linkset_port_link(struct session *s, struct port *p);
/* Spread the ports over the UP links again: a link came (back). */
void linkset_rebalance(struct session *s);
bool linkset_other_up(const struct session *s, int except);
/* A link changed state: the handoff shows it. */
void linkset_changed(struct session *s);
void linkset_arm_late(struct session *s, int link);
/* Link's transport connected: its heartbeat READ proves it. */
void linkset_connected(struct session *s, int link);
/* An operation on link completed: it is alive. */
void linkset_progress(struct session *s, int link);
void linkset_send_joins(struct session *s);
uint32_t linkset_hb_read_len(const struct session *s);
void linkset_post_heartbeat(struct session *s, int link, uint64_t now);
bool linkset_late(const struct session *s, const struct peer_link *l, uint64_t now);
/* The handoff's link counters, rewritten when they moved. */
void linkset_refresh(struct session *s);

/* channel.c: the clients' messages.  It calls linkset.c and
 * session_base.c. */
void channel_queue(struct session *s, struct sent_msg *m);
/* The clients' messages that wait for room on their links, in order, as
 * far as the links take them: at the end of every turn. */
void channel_send_queued(struct session *s);
struct port *channel_port_of(struct session *s, const char *client, uint16_t port);
/* A client message (PORT_MSG or PORT_NOTIFY in m) kept until acknowledged
 * and sent: 0, or -errno. */
int channel_send(struct session *s, struct port *p, struct wire_msg *m, uint64_t conn,
		 uint32_t tag);
void channel_hold_from(struct session *s, uint64_t at);
void channel_give_up_due(struct session *s);
void channel_offer_pending(struct session *s);
void channel_partner_msg(struct session *s, const struct wire_msg *m, const uint8_t *frame,
			 uint32_t len);
void channel_msg_acked(void *ctx, const struct sent_msg *m, int status);
/* The session with the partner (this round of it) is over: its windows
 * are forgotten, and our clients' messages it has not confirmed complete
 * with status. */
void channel_forget_partner(struct session *s, int status);
void channel_take_acks(struct session *s, const uint8_t *buf, uint32_t len);
void channel_resend_old(struct session *s, uint64_t now);

/* keeper.c: the keeper proper.  It calls channel.c, linkset.c, notes.c and
 * session_base.c. */
int serve_open(struct session *s, struct errbuf *e);
void serve_close(struct session *s);
void serve_connected(struct session *s);
void serve_lost(struct session *s);
void serve_requests(struct session *s);
/* This process was not scheduled for gap_ms (a stall of its own, seen by
 * the gap between turns): the partner's and the links' silence during it
 * is not counted against them; their clocks start again now. */
void serve_paused(struct session *s, uint64_t gap_ms);
void serve_op_done(struct session *s, int link, uint32_t slot, int status);
/* A link's heartbeat READ completed.  True when what it read says the
 * partner is lost (rebooted, or its handshake left the session): lost_why
 * says why, and the caller, which drives the handshake, acts on it. */
bool serve_heartbeat_done(struct session *s, int link, int status, char *lost_why, size_t len);
void serve_link_join(struct session *s, int link, const struct wire_msg *m, const uint8_t *frame,
		     uint32_t len);
void serve_link_failed(struct session *s, int link, const char *why);
/* A deadline of the keeper's (T_PARTNER_HB and on) is due. */
void serve_on_timer(struct session *s, int id);
void serve_stop(struct session *s, uint64_t conn, bool restart, uint32_t grace_ms);

#endif
