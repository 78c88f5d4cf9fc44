/* peer: the session with the partner until both sides are ready -- the
 * driver that carries out the handshake machine's actions (its READs and
 * WRITEs of the partner's status block, our mailbox, the ready WRITE) and
 * the exchange's (HELLO, CLIENTS, PORTS over the links, each round's
 * messages only), and the ports it creates.  session.c feeds it the
 * transport's events and the timers; it calls the keeper's files and
 * session_base.c. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "proto/auth.h"
#include "conf/client_desc.h"
#include "proto/exchange.h"
#include "state/handoff.h"
#include "proto/hs.h"
#include "daemon/ports.h"
#include "daemon/real_root.h"
#include "proto/status.h"
#include "tp/transport.h"
#include "proto/wire.h"
#include "daemon/session_int.h"

/* --- the status block ---------------------------------------------------------- */

/* Where the partner's mailbox lies in a status window, and how long a
 * write of it is: the keyed one carries its tag (proto/status.h). */
static bool keyed(const struct session *s)
{
	return s->keys.n > 0;
}

static uint32_t mbox_offset(const struct session *s)
{
	return keyed(s) ? STATUS_KMBOX_OFFSET : STATUS_MBOX_OFFSET;
}

static uint32_t mbox_len(const struct session *s)
{
	return keyed(s) ? STATUS_KMBOX_SIZE : STATUS_MBOX_SIZE;
}

/* Compose a mailbox for the partner in one of our scratch slots (64
 * bytes: room for the tag). */
static uint32_t compose_mbox(struct session *s, uint8_t *slot, uint8_t state)
{
	struct status_mbox m = {
		.from_state = state,
		.from_stage = s->stage,
		.from_node = s->cfg->node_id,
		.from_epoch = s->epoch,
		.to_epoch = s->hs.peer_epoch,
	};

	status_encode_mbox(&m, slot);
	if (keyed(s))
		auth_mbox_tag(&s->keys.slot[0], slot, STATUS_MBOX_SIZE, slot + STATUS_MBOX_SIZE);
	return mbox_len(s);
}

/* --- carrying out the machine's actions ---------------------------------------- */

/* The handshake's operations go over one link, the first that answered. */
int peer_post_hs_op(struct session *s)
{
	struct hs_op *op = &s->op;
	uint64_t wr_id = ((uint64_t)OP_HS << 32) | op->seq;
	struct peer_link *l;
	int r;

	if (s->hs_link < 0)
		return -ENOTCONN;
	l = &s->links[s->hs_link];
	if (op->kind == HS_ACT_READ) {
		r = tp_read(l->tp, &l->peer_win, STATUS_OWN_OFFSET, s->scratch + SCRATCH_READ,
			    STATUS_OWN_SIZE, wr_id);
	} else {
		uint32_t len = compose_mbox(s, s->scratch + SCRATCH_HS_WRITE, op->write_state);

		r = tp_write(l->tp, &l->peer_win, mbox_offset(s), s->scratch + SCRATCH_HS_WRITE,
			     len, wr_id);
	}
	if (r == 0) {
		op->posted = true;
		timer_set(&s->timers, T_HS_OP, s->now + OP_TIMEOUT_MS);
		s->op_link = s->hs_link;
	}
	return r;
}

/* The machine's operation failed without reaching the partner: free the
 * slot first (the machine may ask for the next operation at once), then
 * tell the machine. */
void peer_fail_hs_op(struct session *s)
{
	struct hs_event ev = { .seq = s->op.seq };

	ev.type = s->op.kind == HS_ACT_READ ? HS_EV_READ_FAIL : HS_EV_WRITE_FAIL;
	peer_op_slot_free(s);
	peer_hs_feed(s, &ev);
}

/* The handshake needs a link: one already up, or try them all and the
 * first up carries it. */
static void start_connect(struct session *s)
{
	for (int i = 0; i < s->nlinks && s->hs_link < 0; i++)
		if (s->links[i].tp_up)
			s->hs_link = i;
	if (s->hs_link >= 0)
		return;
	for (int i = 0; i < s->nlinks; i++)
		sess_link_connect(s, i);
}

bool peer_any_connecting(const struct session *s)
{
	for (int i = 0; i < s->nlinks; i++)
		if (s->links[i].connecting)
			return true;
	return false;
}

/* Start the machine's operation, or queue it behind the one in flight. */
static void start_hs_op(struct session *s, int kind, uint32_t seq, uint8_t write_state)
{
	struct hs_op op = { .kind = kind, .seq = seq, .write_state = write_state };

	if (s->op.kind) {
		s->next_op = op;
		return;
	}
	s->op = op;
	if (s->hs_link < 0)
		start_connect(s);
	if (s->hs_link < 0) {
		if (!peer_any_connecting(s))
			peer_fail_hs_op(s);
		return;
	}
	if (peer_post_hs_op(s) < 0)
		peer_fail_hs_op(s);
}

void peer_op_slot_free(struct session *s)
{
	s->op.kind = 0;
	if (s->next_op.kind) {
		struct hs_op next = s->next_op;

		s->next_op.kind = 0;
		start_hs_op(s, next.kind, next.seq, next.write_state);
	}
}

static void start_exchange(struct session *s);
static void reset_exchange(struct session *s, const char *why);

static void apply(struct session *s, enum hs_state was, const struct hs_event *ev,
		  const struct hs_actions *a)
{
	if (a->flags & HS_ACT_PUBLISH) {
		if ((int)s->hs.state == s->crash_at)
			raise(SIGKILL);
		sess_publish_own(s);
		log_at(s->log, LOG_STEP, "handshake %s -> %s (%s)", hs_state_name(was),
		       hs_state_name(s->hs.state), hs_event_name(ev->type));
	}
	if (was == HS_CONNECTED && s->hs.state != HS_CONNECTED)
		reset_exchange(s, hs_error_name(s->hs.last_error));
	if (a->flags & HS_ACT_REPORT) {
		snprintf(s->last_error, sizeof(s->last_error), "%s: %s",
			 was == HS_CONNECTED ? "lost the partner" : "handshake error",
			 hs_error_name(a->error));
		log_at(s->log, LOG_ERR, "%s in %s; starting again in %u ms", s->last_error,
		       hs_state_name(was), a->wait_ms);
		if (!sess_connected(s))
			sess_write_handoff(s, HANDOFF_HANDSHAKING, s->last_error);
	}
	/* Scripts waiting on the handoff can see that we wait for the
	 * partner; once per wait, not once per re-read. */
	if (s->hs.state == HS_WAIT3 && !s->told_waiting && !sess_connected(s)) {
		s->told_waiting = true;
		sess_write_handoff(s, HANDOFF_HANDSHAKING, s->last_error[0] ? s->last_error : NULL);
	}
	if (a->flags & (HS_ACT_WAIT | HS_ACT_BACKOFF)) {
		s->timer_kind = (a->flags & HS_ACT_WAIT) ? HS_ACT_WAIT : HS_ACT_BACKOFF;
		s->timer_seq = a->seq;
		timer_set(&s->timers, T_HS, s->now + a->wait_ms);
	}
	if (a->flags & HS_ACT_READ)
		start_hs_op(s, HS_ACT_READ, a->seq, 0);
	if (a->flags & HS_ACT_WRITE) {
		/* The "I am connected" write expects no answer: it rides on
		 * a seq the machine no longer waits for. */
		start_hs_op(s, HS_ACT_WRITE, a->seq, a->write_state);
	}
	if (a->flags & HS_ACT_CONNECTED)
		start_exchange(s);
}

void peer_hs_feed(struct session *s, const struct hs_event *ev)
{
	struct hs_actions a;
	enum hs_state was = s->hs.state;

	hs_step(&s->hs, ev, &a);
	apply(s, was, ev, &a);
}

/* The partner is lost (it rebooted, or its handshake left the session):
 * the machine decides what follows. */
void peer_lose(struct session *s, const char *why)
{
	struct hs_event ev = { .type = HS_EV_PEER_LOST };

	log_at(s->log, LOG_ERR, "partner lost: %s", why);
	peer_hs_feed(s, &ev);
}

/* Level-triggered: hand the machine the mailbox whenever its contents
 * differ from what it was last given. */
void peer_sync_mailbox(struct session *s)
{
	struct status_mbox m;
	struct hs_event ev = { .type = HS_EV_MAILBOX };
	const uint8_t *raw = s->win + mbox_offset(s);
	struct errbuf e;
	int r;

	r = status_decode_mbox(raw, STATUS_MBOX_SIZE, &m, &e);
	if (r == -EBADMSG)
		log_at(s->log, LOG_DEBUG, "mailbox: %s", e.msg);
	if (r < 0)
		return;
	if (s->have_mbox && memcmp(&m, &s->mbox, sizeof(m)) == 0)
		return;
	/* A wrong tag: a write not made with our key (or, rarely, one caught
	 * between its mailbox and its tag: the rest of it comes and is
	 * checked then).  Checked and said once per content. */
	if (keyed(s)) {
		if (memcmp(raw, s->mbox_refused, STATUS_KMBOX_SIZE) == 0)
			return;
		if (auth_mbox_verify(&s->keys, raw, STATUS_MBOX_SIZE, raw + STATUS_MBOX_SIZE) < 0) {
			memcpy(s->mbox_refused, raw, STATUS_KMBOX_SIZE);
			log_at(s->log, LOG_ERR, "mailbox write claiming node %u, epoch %llu, without "
			       "a valid tag of our key: ignored", m.from_node,
			       (unsigned long long)m.from_epoch);
			return;
		}
	}
	s->mbox = m;
	s->have_mbox = true;
	if (m.from_node == s->cfg->node_id) {
		log_at(s->log, LOG_ERR, "mailbox written by a node with our own id %u: ignored",
		       m.from_node);
		return;
	}
	ev.peer_state = m.from_state;
	ev.peer_epoch = m.from_epoch;
	ev.to_epoch = m.to_epoch;
	peer_hs_feed(s, &ev);
}

/* --- messages ------------------------------------------------------------------ */

static void send_outbox(struct session *s)
{
	for (int i = 0; i < s->ex->noutbox; i++) {
		struct wire_msg *m = &s->ex->outbox[i];
		int n = sess_encode(s, m);

		if (n < 0) {
			log_at(s->log, LOG_ERR, "cannot encode %s: %s", wire_type_name(m->type),
			       strerror(-n));
			continue;
		}
		n = sess_send_on(s, s->hs_link, s->msgbuf, (uint32_t)n);
		if (n < 0)
			log_at(s->log, LOG_ERR, "cannot send %s: %s", wire_type_name(m->type),
			       strerror(-n));
		else
			log_at(s->log, LOG_DEBUG, "sent %s", wire_type_name(m->type));
	}
	s->ex->noutbox = 0;
}

static int exit_code_for(enum wire_decline_reason r)
{
	switch (r) {
	case DECLINE_NO_COMMON_VERSION:
		return CCM_EXIT_NO_VERSION;
	case DECLINE_AUTH_REQUIRED:
	case DECLINE_AUTH_FAILED:
		return CCM_EXIT_AUTH;
	default:
		return CCM_EXIT_FAILURE;
	}
}

static void post_ready(struct session *s)
{
	uint64_t wr_id = ((uint64_t)OP_READY << 32) | s->hs.seq;

	struct peer_link *l = s->hs_link >= 0 ? &s->links[s->hs_link] : NULL;
	uint32_t len = compose_mbox(s, s->scratch + SCRATCH_READY_WRITE, HS_CONNECTED);

	if (l && tp_write(l->tp, &l->peer_win, mbox_offset(s), s->scratch + SCRATCH_READY_WRITE,
			  len, wr_id) == 0) {
		s->ready_posted = true;
		timer_set(&s->timers, T_READY, s->now + OP_TIMEOUT_MS);
		s->ready_link = s->hs_link;
	}
}

static bool peer_ready(const struct session *s)
{
	return s->have_mbox && s->mbox.from_stage >= STAGE_READY &&
	       s->mbox.from_epoch == s->hs.peer_epoch && s->mbox.to_epoch == s->epoch;
}

/* --once ends when the handoff says connected and our "ready" write is no
 * longer in flight, so the partner has had it (or is gone). */
void peer_maybe_finish_once(struct session *s)
{
	if (s->opts->once && sess_connected(s) && !s->ready_posted)
		sess_finish(s, CCM_EXIT_OK, NULL);
}

/* Both sides ready -- we hold the partner's ports and its "ready" is in our
 * mailbox -- so the clients may be told.  Whether our own "ready" write has
 * been acknowledged does not matter for that: a partner that saw it may
 * already have finished and gone. */
void peer_check_ready(struct session *s)
{
	if (sess_connected(s) || !s->ports_checked || !peer_ready(s))
		return;
	sess_peer_enter(s, PEER_CONNECTED);
	s->told_waiting = false;
	/* --timeout bounds the first connection only */
	timer_stop(&s->timers, T_GIVE_UP);
	timer_stop(&s->timers, T_EXCHANGE);
	s->last_error[0] = '\0';
	log_at(s->log, LOG_NOTE, "connected to node %u at version %u; %d client(s) matched",
	       s->ex->peer.node_id, s->ex->version, s->ex->nmatch);
	sess_write_handoff(s, HANDOFF_CONNECTED, NULL);
	peer_maybe_finish_once(s);
	if (!sess_finished(s))
		serve_connected(s);
}

/* Every local client has its ports from the start (a failover monitor must
 * run with no partner at all); the exchange decides which the partner may
 * use, and those are described to it. */
static void create_ports(struct session *s)
{
	struct wire_ports *ours = &s->decoded->u.ports;  /* reuse: it is free now */
	const char *shared[2 * CCM_CLIENTS_MAX + 1];

	for (int i = 0; i < s->ex->nmatch; i++) {
		const struct client_match *m = &s->ex->match[i];

		if (m->status == MATCH_OK)
			log_at(s->log, LOG_STEP, "client %s: %u port(s) of %u bytes shared", m->name,
			       m->nports, m->port_size);
		else
			log_at(s->log, LOG_NOTE, "client %s: %s (here %u x %u, partner %u x %u)",
			       m->name, client_match_name(m->status), m->nports, m->port_size,
			       m->remote_nports, m->remote_port_size);
	}
	sess_shared_names(s, shared);
	ports_to_wire(s->ports, shared, s->hs_link >= 0 ? s->hs_link : 0, ours);
	ex_ports_created(s->ex, ours);
}

int peer_create_local_ports(struct session *s, struct errbuf *e)
{
	struct tp *tps[CCM_LINKS_MAX];

	for (int i = 0; i < s->nlinks; i++)
		tps[i] = s->links[i].tp;
	for (int i = 0; i < s->clients->count; i++) {
		const struct client_desc *d = &s->clients->c[i];
		int r = ports_add_client(s->ports, tps, s->nlinks, d->name, d->nports, d->port_size, e);

		if (r < 0)
			return r;
	}
	return 0;
}

static void after_exchange_step(struct session *s)
{
	struct errbuf e;

	if (s->ex->phase == EX_PORTS_NEEDED) {
		create_ports(s);
		send_outbox(s);
		/* Our ports exist and their description is on its way: say
		 * we are ready now, not a round trip later after the
		 * partner's PORTS. */
		if (s->ex->phase == EX_PORTS_WAIT) {
			s->stage = STAGE_READY;
			if (s->crash_at == HS_NSTATES)
				raise(SIGKILL);
			sess_publish_own(s);
			log_at(s->log, LOG_STEP, "ports created; telling the partner we are ready");
			post_ready(s);
		}
	}
	if (s->ex->phase == EX_DONE && !s->ports_checked) {
		const char *shared[2 * CCM_CLIENTS_MAX + 1];

		sess_shared_names(s, shared);
		if (s->ex->peer_ports.link >= s->nlinks) {
			ex_fail(s->ex, DECLINE_MALFORMED, "PORTS for link %u; we have %d link(s)",
				s->ex->peer_ports.link, s->nlinks);
			send_outbox(s);
		} else if (ports_set_remote(s->ports, shared, &s->ex->peer_ports, 1, &e) < 0) {
			ex_fail(s->ex, DECLINE_MALFORMED, "%s", e.msg);
			send_outbox(s);
		} else {
			s->peer_keys = 1u << s->ex->peer_ports.link;
			s->ports_checked = true;
			peer_check_ready(s);
		}
	}
	if (s->ex->phase == EX_FAILED) {
		log_at(s->log, LOG_ERR, "%s", s->ex->why);
		/* Before the handoff the command says why it failed, with its
		 * exit code, when the two configurations cannot agree.  A
		 * message it could not use (malformed, or out of order: a stale
		 * one of an earlier round the partner had not left yet) is no
		 * reason to fail a boot: like a keeper, which has clients and a
		 * boot behind it, it tries again, backing off, and says why in
		 * the handoff. */
		if (!s->handed_off && s->ex->decline != DECLINE_MALFORMED &&
		    s->ex->decline != DECLINE_PROTOCOL) {
			sess_finish(s, exit_code_for(s->ex->decline), s->ex->why);
		} else {
			snprintf(s->last_error, sizeof(s->last_error), "%.*s",
				 (int)sizeof(s->last_error) - 1, s->ex->why);
			peer_lose(s, s->ex->why);
		}
	}
}

/* The exchange machine, begun afresh with our clients in their wire form. */
static void begin_exchange(struct session *s, const struct ex_self *self,
			   const uint8_t nonce[CCM_NONCE_LEN])
{
	struct wire_clients ours;

	clients_to_wire(s->clients, &ours);
	ex_start(s->ex, self, &ours, nonce);
}

/* The partner began a new exchange while ours with its previous one was
 * still going: start ours over for it, in the same round of ours (and
 * with the same nonce), as if its HELLO were the first. */
static void adopt_partner_round(struct session *s, uint32_t round)
{
	struct ex_self self = s->ex->self;
	uint8_t nonce[CCM_NONCE_LEN];

	log_at(s->log, LOG_STEP, "the partner began a new exchange (round %08x; ours with it "
	       "was %08x): taken up in ours (%08x)", round, s->peer_round, s->round);
	memcpy(nonce, s->ex->nonce, sizeof(nonce));
	/* Its sequence numbers start over with the new round: so must ours,
	 * and so must our acks. */
	channel_forget_partner(s, -ECONNRESET);
	s->ports_checked = s->ready_posted = false;
	s->peer_keys = 0;
	if (s->stage == STAGE_READY) {
		s->stage = STAGE_EXCHANGE;
		sess_publish_own(s);
	}
	begin_exchange(s, &self, nonce);
	s->ex->noutbox = 0;  /* said again once its HELLO is taken */
	s->peer_round = 0;
}

void peer_handle_message(struct session *s, int link, const uint8_t *buf, uint32_t len)
{
	struct wire_msg *m = s->decoded;
	bool adopted = false;
	struct errbuf e;

	if (wire_decode(buf, len, m, &e) < 0) {
		log_at(s->log, LOG_ERR, "malformed message from the partner: %s", e.msg);
		ex_on_malformed(s->ex, e.msg);
		send_outbox(s);
		after_exchange_step(s);
		return;
	}
	log_at(s->log, LOG_DEBUG, "received %s", wire_type_name(m->type));
	if (m->type == WIRE_HELLO && m->u.hello.epoch != s->hs.peer_epoch) {
		/* Not of the incarnation our handshake met: a frame of an
		 * earlier session delivered again (a host on the wire, or a
		 * link that duplicates).  Its round is not ours, so judged by
		 * rounds it would pass for the partner beginning a new
		 * exchange -- and undo a healthy session.  A partner that
		 * really rebooted is found by the handshake and heartbeats,
		 * which read its status block, never by a HELLO
		 * (sim --scenario stale-round). */
		log_at(s->log, LOG_DEBUG, "dropped HELLO of another exchange: partner epoch %llu, "
		       "ours is with %llu", (unsigned long long)m->u.hello.epoch,
		       (unsigned long long)s->hs.peer_epoch);
		return;
	}
	if (m->type == WIRE_HELLO && s->peer_round && m->round != s->peer_round) {
		/* The partner left the exchange we share and began a new one
		 * (it lost us; we had not noticed). */
		if (sess_connected(s)) {
			struct hs_event ev = { .type = HS_EV_PEER_LOST };

			/* Our session with it is over too: meet it in a new
			 * handshake; its HELLO waits for our next exchange. */
			log_at(s->log, LOG_NOTE, "the partner began a new exchange (round %08x; "
			       "ours with it was %08x): meeting it again", m->round, s->peer_round);
			peer_hs_feed(s, &ev);
			peer_queue_message(s, link, buf, len);
			return;
		}
		/* Still exchanging: take its new round up in ours, which keeps
		 * its own round, so the two sides never chase each other's new
		 * rounds. */
		adopt_partner_round(s, m->round);
		adopted = true;
	}
	if (m->type == WIRE_HELLO && !s->peer_round) {
		s->peer_round = m->round;
		s->peer_seen = 0;
		/* Taken up anew: if its new round has not seen our HELLO, say it
		 * again (a partner that did see it drops the copy).  Not in the
		 * ordinary case, where the two HELLOs cross: every message more
		 * costs a receive slot on rdma. */
		if (adopted && m->peer_round != s->round) {
			ex_hello_again(s->ex);
			send_outbox(s);
		}
	} else if (m->type != WIRE_HELLO && !s->peer_round && m->peer_round == s->round &&
		   !sess_connected(s)) {
		struct hs_event ev = { .type = HS_EV_PEER_LOST };

		/* It answers our round, but its HELLO never reached us: its
		 * round began after ours went out, and our HELLO was lost to
		 * its earlier one.  Meet it in a new handshake: our new HELLO
		 * makes it take our new round up. */
		log_at(s->log, LOG_NOTE, "the partner's %s answers our exchange (%08x) but its "
		       "HELLO never came: meeting it again", wire_type_name(m->type), s->round);
		peer_hs_feed(s, &ev);
		return;
	} else if ((m->round != s->peer_round && !(m->type == WIRE_BYE && !s->peer_round)) ||
		   (m->peer_round && m->peer_round != s->round)) {
		/* Of an exchange that is over on one side or the other: it was
		 * on its way when the new one began. */
		log_at(s->log, LOG_DEBUG, "dropped %s of another exchange (round %08x for %08x; "
		       "now %08x with %08x)", wire_type_name(m->type), m->round, m->peer_round,
		       s->peer_round, s->round);
		return;
	}
	if (m->type <= WIRE_DECLINE) {
		/* The exchange's own messages come once a round: a second is a
		 * copy of one said again (ex_hello_again). */
		if (s->peer_seen & (1u << m->type)) {
			log_at(s->log, LOG_DEBUG, "dropped a copy of %s", wire_type_name(m->type));
			return;
		}
		s->peer_seen |= 1u << m->type;
	}
	if (m->type == WIRE_BYE) {
		struct hs_event ev = { .type = HS_EV_PEER_LOST };

		log_at(s->log, LOG_NOTE, "partner is terminating");
		peer_hs_feed(s, &ev);
		return;
	}
	if (m->type == WIRE_PORT_MSG || m->type == WIRE_PORT_NOTIFY) {
		/* Between clients, once both sides are ready; before that
		 * there is no client to give it to. */
		if (sess_connected(s))
			channel_partner_msg(s, m, buf, len);
		return;
	}
	if (m->type == WIRE_LINK_JOIN) {
		serve_link_join(s, link, m, buf, len);
		return;
	}
	ex_on_msg(s->ex, m);
	send_outbox(s);
	after_exchange_step(s);
}

void peer_queue_message(struct session *s, int link, const uint8_t *buf, uint32_t len)
{
	struct queued_msg *q;

	if (s->nqueue == QUEUE_MAX) {
		log_at(s->log, LOG_ERR, "partner sent more than %d messages before the handshake "
		       "completed; dropping the oldest", QUEUE_MAX);
		free(s->queue[0].buf);
		memmove(s->queue, s->queue + 1, sizeof(s->queue[0]) * (QUEUE_MAX - 1));
		s->nqueue--;
	}
	q = &s->queue[s->nqueue];
	q->buf = malloc(len);
	if (!q->buf)
		return;
	memcpy(q->buf, buf, len);
	q->len = len;
	q->link = link;
	s->nqueue++;
}

/* Forget what came over `link` (-1: over any): the partner's connection
 * there was replaced, and what it said before is stale. */
void peer_drop_queue(struct session *s, int link)
{
	int keep = 0;

	for (int i = 0; i < s->nqueue; i++) {
		if (link < 0 || s->queue[i].link == link)
			free(s->queue[i].buf);
		else
			s->queue[keep++] = s->queue[i];
	}
	s->nqueue = keep;
}

static void start_exchange(struct session *s)
{
	struct ex_self self = {
		.node = s->cfg->node_id,
		.epoch = s->epoch,
		.ver_min = s->cfg->ver_min,
		.ver_max = s->cfg->ver_max,
		.cluster = s->cfg->cluster,
		.key = s->keys.n ? &s->keys.slot[0] : NULL,
		.also = s->keys.n > 1 ? &s->keys.slot[1] : NULL,
	};
	uint8_t nonce[CCM_NONCE_LEN];

	if (sess_random(s, nonce, sizeof(nonce)) < 0) {
		sess_finish(s, CCM_EXIT_FAILURE, "no random bytes for the nonce");
		return;
	}
	/* A fresh round: every message of this exchange carries it, and the
	 * partner's round comes with its HELLO. */
	s->round = 0;
	while (!s->round)
		if (sess_random(s, &s->round, sizeof(s->round)) < 0) {
			sess_finish(s, CCM_EXIT_FAILURE, "no random bytes for the round");
			return;
		}
	s->peer_round = 0;
	begin_exchange(s, &self, nonce);
	sess_peer_enter(s, PEER_EXCHANGING);
	timer_set(&s->timers, T_EXCHANGE, s->now + EXCHANGE_TIMEOUT_MS);
	s->stage = STAGE_EXCHANGE;
	sess_publish_own(s);
	log_at(s->log, LOG_STEP, "handshake complete with epoch %llu; exchanging descriptors",
	       (unsigned long long)s->hs.peer_epoch);
	send_outbox(s);
	/* What the partner said before we got here. */
	for (int i = 0; i < s->nqueue && sess_ex_started(s) && !sess_finished(s); i++)
		peer_handle_message(s, s->queue[i].link, s->queue[i].buf, s->queue[i].len);
	peer_drop_queue(s, -1);
}

static void reset_exchange(struct session *s, const char *why)
{
	if (!sess_ex_started(s))
		return;
	log_at(s->log, LOG_NOTE, "session with the partner lost (%s); handshaking again", why);
	/* Our windows stay, and the clients keep their fds: only the
	 * partner's windows are gone until its next PORTS, and what our
	 * clients sent that it has not confirmed will not be. */
	channel_forget_partner(s, -ECONNRESET);
	if (sess_connected(s))
		serve_lost(s);
	sess_peer_enter(s, PEER_HANDSHAKING);
	s->ready_posted = s->ports_checked = false;
	s->stage = STAGE_HANDSHAKE;
	sess_publish_own(s);
	peer_drop_queue(s, -1);
	/* Fresh connections for the next round: the partner may be a new
	 * incarnation behind the same addresses.  What we kept for it goes. */
	for (int i = 0; i < s->nlinks; i++) {
		struct peer_link *l = &s->links[i];

		tp_disconnect(l->tp);
		/* Whoever comes may be the partner now, unless configured. */
		tp_admit(l->tp, s->cfg->partner_node);
		l->hb_posted = false;
		l->h.state = l->connecting ? LINK_CONNECTING : LINK_DOWN;
		l->h.failed_before = false;
		l->h.out_bytes = 0;
		free(l->early_join);
		l->early_join = NULL;
	}
	s->peer_keys = 0;
	/* The error report that follows rewrites the handoff. */
}
