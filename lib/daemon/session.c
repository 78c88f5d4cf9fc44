/* session: the driver that carries out the handshake machine's and the
 * exchange's decisions over a transport.  See session.h. */
#include "daemon/session.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

static void hs_feed(struct session *s, const struct hs_event *ev);

/* The handshake's operations go over one link, the first that answered. */
static int post_hs_op(struct session *s)
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

static void op_slot_free(struct session *s);

/* The machine's operation failed without reaching the partner: free the
 * slot first (the machine may ask for the next operation at once), then
 * tell the machine. */
static void fail_hs_op(struct session *s)
{
	struct hs_event ev = { .seq = s->op.seq };

	ev.type = s->op.kind == HS_ACT_READ ? HS_EV_READ_FAIL : HS_EV_WRITE_FAIL;
	op_slot_free(s);
	hs_feed(s, &ev);
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

static bool any_connecting(const struct session *s)
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
		if (!any_connecting(s))
			fail_hs_op(s);
		return;
	}
	if (post_hs_op(s) < 0)
		fail_hs_op(s);
}

static void op_slot_free(struct session *s)
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

static void hs_feed(struct session *s, const struct hs_event *ev)
{
	struct hs_actions a;
	enum hs_state was = s->hs.state;

	hs_step(&s->hs, ev, &a);
	apply(s, was, ev, &a);
}

/* The partner is lost (it rebooted, or its handshake left the session):
 * the machine decides what follows. */
static void lose_partner(struct session *s, const char *why)
{
	struct hs_event ev = { .type = HS_EV_PEER_LOST };

	log_at(s->log, LOG_ERR, "partner lost: %s", why);
	hs_feed(s, &ev);
}

/* Level-triggered: hand the machine the mailbox whenever its contents
 * differ from what it was last given. */
static void sync_mailbox(struct session *s)
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
	hs_feed(s, &ev);
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
static void maybe_finish_once(struct session *s)
{
	if (s->opts->once && sess_connected(s) && !s->ready_posted)
		sess_finish(s, CCM_EXIT_OK, NULL);
}

/* Both sides ready -- we hold the partner's ports and its "ready" is in our
 * mailbox -- so the clients may be told.  Whether our own "ready" write has
 * been acknowledged does not matter for that: a partner that saw it may
 * already have finished and gone. */
static void check_ready(struct session *s)
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
	maybe_finish_once(s);
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

static int create_local_ports(struct session *s, struct errbuf *e)
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
			check_ready(s);
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
			lose_partner(s, s->ex->why);
		}
	}
}

static void queue_message(struct session *s, int link, const uint8_t *buf, uint32_t len);

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
	serve_forget_partner(s, -ECONNRESET);
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

static void handle_message(struct session *s, int link, const uint8_t *buf, uint32_t len)
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
			hs_feed(s, &ev);
			queue_message(s, link, buf, len);
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
		hs_feed(s, &ev);
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
		hs_feed(s, &ev);
		return;
	}
	if (m->type == WIRE_PORT_MSG || m->type == WIRE_PORT_NOTIFY) {
		/* Between clients, once both sides are ready; before that
		 * there is no client to give it to. */
		if (sess_connected(s))
			serve_partner_msg(s, m, buf, len);
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

static void queue_message(struct session *s, int link, const uint8_t *buf, uint32_t len)
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
static void drop_queue(struct session *s, int link)
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
		handle_message(s, s->queue[i].link, s->queue[i].buf, s->queue[i].len);
	drop_queue(s, -1);
}

static void reset_exchange(struct session *s, const char *why)
{
	if (!sess_ex_started(s))
		return;
	log_at(s->log, LOG_NOTE, "session with the partner lost (%s); handshaking again", why);
	/* Our windows stay, and the clients keep their fds: only the
	 * partner's windows are gone until its next PORTS, and what our
	 * clients sent that it has not confirmed will not be. */
	serve_forget_partner(s, -ECONNRESET);
	if (sess_connected(s))
		serve_lost(s);
	sess_peer_enter(s, PEER_HANDSHAKING);
	s->ready_posted = s->ports_checked = false;
	s->stage = STAGE_HANDSHAKE;
	sess_publish_own(s);
	drop_queue(s, -1);
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

/* --- transport events ---------------------------------------------------------- */

/* The node at the partner's address refused our key, or said it holds
 * another (its connection to us failed our proof).  A misconfiguration,
 * most likely -- but a refusal carries no proof (it cannot: we share no
 * key with whoever sends it), so anyone who can answer at that address
 * could send it.  It is a diagnosis, not a verdict: said once per link,
 * and the run tries on; --timeout ends it with exit 5 if it is still so
 * (give_up_waiting), so a forged refusal cannot end a boot that the real
 * partner's connection would have made.  A keeper, after the handoff,
 * goes on trying (the partner's key may be about to change: rotation). */
static void key_refused(struct session *s, int li, const char *msg)
{
	struct peer_link *l = &s->links[li];

	bool first = !s->key_refused;

	snprintf(s->last_error, sizeof(s->last_error), "%s", msg);
	s->key_refused = true;
	if (!l->refused_said)
		log_at(s->log, LOG_ERR, "link %d: %s%s", li, msg,
		       s->handed_off ? "" : "; trying on until the timeout");
	l->refused_said = true;
	/* Before the handoff, status shows why the wait goes on. */
	if (first && !s->handed_off)
		sess_write_handoff(s, HANDOFF_HANDSHAKING, msg);
}

/* Why an event failed: the errno, and the transport's own diagnosis when
 * it gave one (a completion's status, a CM event), never a bare EIO. */
static const char *ev_why(const struct tp_event *ev, char *buf, size_t len)
{
	if (!ev->detail[0])
		return strerror(-ev->status);
	snprintf(buf, len, "%s: %.*s", strerror(-ev->status), (int)sizeof(ev->detail),
		 ev->detail);
	return buf;
}

static void on_op_done(struct session *s, int link, const struct tp_event *tev)
{
	char why[192];
	uint32_t purpose = (uint32_t)(tev->wr_id >> 32);
	uint32_t seq = (uint32_t)tev->wr_id;

	if (purpose == OP_READY) {
		if (link != s->ready_link)
			return;
		s->ready_posted = false;
		if (tev->status < 0 && sess_ex_started(s))
			log_at(s->log, LOG_STEP, "telling the partner we are ready failed: %s",
			       ev_why(tev, why, sizeof(why)));
		maybe_finish_once(s);
		return;
	}
	if (purpose == OP_HEARTBEAT) {
		char lost_why[96];

		if (serve_heartbeat_done(s, link, tev->status, lost_why, sizeof(lost_why)))
			lose_partner(s, lost_why);
		return;
	}
	if (purpose == OP_CLIENT) {
		serve_op_done(s, link, seq, tev->status);
		return;
	}
	if (purpose != OP_HS || !s->op.kind || !s->op.posted || seq != s->op.seq ||
	    link != s->op_link)
		return;
	if (tev->status < 0) {
		log_at(s->log, LOG_DEBUG, "%s failed: %s", s->op.kind == HS_ACT_READ ? "read" : "write",
		       ev_why(tev, why, sizeof(why)));
		struct hs_event ev = { .seq = seq };

		ev.type = s->op.kind == HS_ACT_READ ? HS_EV_READ_FAIL : HS_EV_WRITE_FAIL;
		op_slot_free(s);
		hs_feed(s, &ev);
		return;
	}
	if (s->op.kind == HS_ACT_WRITE) {
		struct hs_event ev = { .type = HS_EV_WRITE_OK, .seq = seq };

		op_slot_free(s);
		hs_feed(s, &ev);
		return;
	}
	{
		struct status_own o;
		struct errbuf e;
		struct hs_event ev = { .type = HS_EV_READ_FAIL, .seq = seq };
		int r = status_decode_own(s->scratch + SCRATCH_READ, STATUS_OWN_SIZE, &o, &e);

		if (r == -EAGAIN && s->op.torn_retries++ < TORN_READ_RETRIES && post_hs_op(s) == 0)
			return;  /* caught mid-update, or not yet published: look again */
		if (r == -EBADMSG)
			log_at(s->log, LOG_ERR, "partner's status block is malformed: %s", e.msg);
		else if (r == 0 && o.node_id == s->cfg->node_id)
			log_at(s->log, LOG_ERR, "the partner address answers with our own node id %u",
			       o.node_id);
		else if (r == 0) {
			ev.type = HS_EV_READ_OK;
			ev.peer_state = o.state;
			ev.peer_epoch = o.epoch;
		}
		op_slot_free(s);
		hs_feed(s, &ev);
	}
}

static void on_tp_event(struct session *s, int li, const struct tp_event *ev)
{
	struct hs_event lost = { .type = HS_EV_PEER_LOST };
	struct peer_link *l = &s->links[li];
	char why[192];

	switch (ev->type) {
	case TP_EV_CONNECTED:
		l->connecting = false;
		timer_stop(&s->timers, T_LINK_CONNECT + li);
		if (ev->status_window.len < ECHO_AREA_OFFSET + ECHO_AREA_SIZE) {
			log_at(s->log, LOG_ERR, "link %d: partner's status window is %u bytes, "
			       "too small", li, ev->status_window.len);
			tp_disconnect(l->tp);
			return;
		}
		if (s->cfg->partner_node && ev->peer_node != s->cfg->partner_node) {
			if (!l->refused_said)
				log_at(s->log, LOG_ERR, "link %d: the node at the partner's address is "
				       "node %u, not partner-node %u: not talking to it", li,
				       ev->peer_node, s->cfg->partner_node);
			l->refused_said = true;
			tp_disconnect(l->tp);
			return;
		}
		l->tp_up = true;
		l->refused_said = false;
		s->key_refused = false;
		l->peer_win = ev->status_window;
		link_connected(&l->h, s->now);
		log_at(s->log, LOG_DEBUG, "link %d up to node %u", li, ev->peer_node);
		if (sess_connected(s)) {
			serve_link_connected(s, li);
			break;
		}
		if (s->hs_link < 0)
			s->hs_link = li;
		if (s->op.kind && !s->op.posted && post_hs_op(s) < 0)
			fail_hs_op(s);
		break;
	case TP_EV_CONNECT_FAILED:
		l->connecting = false;
		timer_stop(&s->timers, T_LINK_CONNECT + li);
		sess_link_down(s, li);
		if (ev->status == -EPERM && !l->refused_said) {
			/* Typed: the node there has another partner.  A wrong
			 * partner= (or node-id) here, most likely. */
			log_at(s->log, LOG_ERR, "link %d: the node at the partner's address refused "
			       "us: it is connected to another partner (check partner= and "
			       "node-id)", li);
			l->refused_said = true;
		}
		if (ev->status == -EACCES) {
			char msg[sizeof(why) + 32];

			snprintf(msg, sizeof(msg), "pre-shared key: %s", ev_why(ev, why, sizeof(why)));
			key_refused(s, li, msg);
		}
		log_at(s->log, LOG_DEBUG, "link %d: connect failed: %s", li,
		       ev_why(ev, why, sizeof(why)));
		if (s->op.kind && !s->op.posted && s->hs_link < 0 && !any_connecting(s))
			fail_hs_op(s);
		break;
	case TP_EV_OP_DONE:
		if (ev->status == 0)
			serve_link_progress(s, li);
		on_op_done(s, li, ev);
		break;
	case TP_EV_MESSAGE:
		/* The mailbox may have been written just before this message
		 * on the same connection: let the machine see it first. */
		sync_mailbox(s);
		if (sess_ex_started(s))
			handle_message(s, li, ev->msg, ev->msg_len);
		else
			queue_message(s, li, ev->msg, ev->msg_len);
		break;
	case TP_EV_DISCONNECTED:
		l->tp_up = l->connecting = false;
		log_at(s->log, LOG_DEBUG, "link %d to the partner down: %s", li,
		       ev_why(ev, why, sizeof(why)));
		if (li == s->hs_link && !sess_connected(s)) {
			/* What the partner wrote before it went counts first:
			 * its "ready" may be in our mailbox. */
			sync_mailbox(s);
			if (sess_ex_started(s))
				check_ready(s);
		}
		if (sess_finished(s))
			break;
		if (sess_connected(s)) {
			/* The keeper moves the link's traffic, or finds the
			 * partner lost when it was the last. */
			serve_link_failed(s, li, ev_why(ev, why, sizeof(why)));
			break;
		}
		sess_link_down(s, li);
		if (li != s->hs_link)
			break;
		s->hs_link = -1;
		hs_feed(s, &lost);
		break;
	case TP_EV_PEER_CONNECTED:
		log_at(s->log, LOG_DEBUG, "node %u connected to us on link %d", ev->peer_node, li);
		drop_queue(s, li);
		/* The partner is up: have our own link ready before the
		 * machine (or the keeper) asks for it. */
		sess_link_connect(s, li);
		break;
	case TP_EV_PEER_CLOSED:
		log_at(s->log, LOG_DEBUG, "the partner's connection to us on link %d closed%s%.*s", li,
		       ev->detail[0] ? ": " : "", (int)sizeof(ev->detail), ev->detail);
		drop_queue(s, li);
		/* While one of our own links to the partner is up, it is the
		 * judge: it delivers what the partner answered before it went
		 * (the ready write's completion, say) and then reports the
		 * loss itself.  A partner that finished a --once run is not
		 * lost before we have heard all it said. */
		if (s->hs_link < 0 && !sess_connected(s))
			hs_feed(s, &lost);
		break;
	case TP_EV_REJECTED:
		if (ev->status == -EACCES && ev->from_partner_addr && !s->handed_off &&
		    (!s->cfg->partner_node || ev->peer_node == s->cfg->partner_node)) {
			/* The partner's own address, and not our key: the
			 * same misconfiguration our connect to it finds,
			 * said here too in case that never gets through.
			 * Anyone else without the key is only refused. */
			char msg[sizeof(ev->detail) + 32];

			snprintf(msg, sizeof(msg), "pre-shared key: %s", ev->detail);
			key_refused(s, li, msg);
			break;
		}
		if (ev->status == -EPERM || ev->status == -EACCES) {
			/* A stranger, or a node without our key: said once
			 * per node, however often it tries; it heard why. */
			if (ev->peer_node != l->stranger_said)
				log_at(s->log, LOG_NOTE, "link %d: refused a connection: %s", li,
				       ev->detail);
			l->stranger_said = ev->peer_node;
			break;
		}
		if (ev->status == -ETIMEDOUT) {
			/* Stale: its sender gave up on it while we did not run. */
			log_at(s->log, LOG_DEBUG, "link %d: dropped %s", li, ev->detail);
			break;
		}
		/* The detail says why: a malformed frame, or no resources
		 * to take the connection. */
		log_at(s->log, LOG_ERR, "link %d: refused a connection to us: %s", li, ev->detail);
		break;
	}
}

/* --- timers -------------------------------------------------------------------- */

/* Our mailbox is written one-sidedly: nothing wakes us when it is.  Look
 * at it regularly while an answer is due there. */
static void arm_mailbox_look(struct session *s)
{
	uint32_t every = 0;

	if ((s->hs.state == HS_WRITE5 && s->hs.wrote5) ||
	    (s->stage == STAGE_READY && !sess_connected(s)))
		every = POLL_FAST_MS;
	else if (s->hs.state == HS_WAIT3)
		every = POLL_WAIT3_MS;
	if (!every)
		timer_stop(&s->timers, T_MAILBOX);
	else if (!timer_armed(&s->timers, T_MAILBOX))
		timer_set(&s->timers, T_MAILBOX, s->now + every);
}

static void give_up_waiting(struct session *s)
{
	char why[320];

	snprintf(why, sizeof(why), "timed out after %u s waiting for the partner "
		 "(handshake in %s%s%s)", s->cfg->timeout_s, hs_state_name(s->hs.state),
		 s->last_error[0] ? "; last " : "", s->last_error);
	log_at(s->log, LOG_ERR, "%s", why);
	if (s->key_refused) {
		/* Refused for our key until the end: the run fails as a
		 * failed proof does (exit 5), keeper or not. */
		sess_finish(s, CCM_EXIT_AUTH, why);
		return;
	}
	if (s->opts->once) {
		sess_finish(s, CCM_EXIT_TIMEOUT, why);
		return;
	}
	/* Boot goes on degraded; the keeper keeps looking. */
	sess_write_handoff(s, HANDOFF_HANDSHAKING, why);
	serve_handed_off(s, false);
}

/* One deadline is due: act if what it guards still holds. */
static void on_timer(struct session *s, int id)
{
	struct hs_event lost = { .type = HS_EV_PEER_LOST };

	switch (id) {
	case T_HS:
		if (s->timer_kind) {
			struct hs_event ev = { .seq = s->timer_seq };

			ev.type = s->timer_kind == HS_ACT_WAIT ? HS_EV_TIMEOUT : HS_EV_BACKOFF_DONE;
			s->timer_kind = 0;
			hs_feed(s, &ev);
		}
		break;
	case T_HS_OP:
		if (s->op.kind && s->op.posted) {
			log_at(s->log, LOG_DEBUG, "operation timed out; dropping link %d", s->op_link);
			tp_disconnect(s->links[s->op_link].tp);  /* fails everything in flight */
		}
		break;
	case T_READY:
		if (s->ready_posted) {
			log_at(s->log, LOG_DEBUG, "ready write timed out; dropping link %d",
			       s->ready_link);
			tp_disconnect(s->links[s->ready_link].tp);
		}
		break;
	case T_EXCHANGE:
		if (sess_ex_started(s) && !sess_connected(s)) {
			log_at(s->log, LOG_ERR, "exchange with the partner did not complete in %d ms "
			       "(%s)", EXCHANGE_TIMEOUT_MS, ex_phase_name(s->ex->phase));
			hs_feed(s, &lost);
		}
		break;
	case T_HANDOFF:
		/* In any phase: the file must catch up with what it missed. */
		if (s->handoff_unwritten)
			sess_write_handoff(s, s->handoff_state,
					   s->handoff_error[0] ? s->handoff_error : NULL);
		break;
	case T_BEAT:
		s->heartbeat++;
		sess_publish_own(s);
		timer_set(&s->timers, T_BEAT, s->now + s->cfg->heartbeat_ms);
		break;
	case T_GIVE_UP:
		if (!sess_connected(s))
			give_up_waiting(s);
		break;
	case T_MAILBOX:
		sync_mailbox(s);
		break;
	default:
		if (id >= T_LINK_CONNECT && id < T_LINK_CONNECT + s->nlinks) {
			int li = id - T_LINK_CONNECT;

			if (s->links[li].connecting) {
				log_at(s->log, LOG_DEBUG, "link %d: connect timed out", li);
				tp_disconnect(s->links[li].tp);  /* answers with CONNECT_FAILED */
			}
			break;
		}
		serve_on_timer(s, id);
		break;
	}
}

static void check_timers(struct session *s, uint64_t now)
{
	for (int id = 0; id < T_COUNT && !sess_finished(s); id++)
		if (timer_due(&s->timers, id, now))
			on_timer(s, id);
	if (!sess_finished(s))
		arm_mailbox_look(s);
}

/* --- set-up, the loop, tear-down ----------------------------------------------- */

static int new_epoch(struct session *s, uint64_t *epoch)
{
	/* Random and non-zero: 0 means "unknown" throughout. */
	*epoch = 0;
	while (*epoch == 0) {
		int r = sess_random(s, epoch, sizeof(*epoch));

		if (r < 0)
			return r;
	}
	return 0;
}

static void *map_page(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void session_close(struct session *s)
{
	struct tp *tps[CCM_LINKS_MAX];

	if (!s)
		return;
	serve_close(s);
	/* Before the ports: what it keeps points into them. */
	reliable_clear(&s->rel, NULL, NULL, 0);
	for (int i = 0; i < s->nlinks; i++)
		tps[i] = s->links[i].tp;
	if (s->ports)
		ports_destroy(s->ports, tps, s->nlinks);
	for (int i = 0; i < s->nlinks; i++) {
		tp_destroy(s->links[i].tp);
		free(s->links[i].early_join);
	}
	drop_queue(s, -1);
	if (s->win)
		munmap(s->win, STATUS_WINDOW_SIZE);
	if (s->scratch)
		munmap(s->scratch, SCRATCH_SIZE);
	if (s->state_dirfd >= 0)
		close(s->state_dirfd);
	for (int i = 0; i < AUTH_SLOTS; i++)
		auth_wipe_key(&s->keys.slot[i]);
	free(s->ex);
	free(s->clients);
	free(s->ports);
	free(s->msgbuf);
	free(s->decoded);
	free(s);
}

static int crash_point(void)
{
	const char *at = getenv("CCM_EARLY_TEST_CRASH_AT");

	if (!at)
		return -1;
	if (strcmp(at, "ready") == 0)
		return HS_NSTATES;
	for (int st = HS_READ1; st < HS_NSTATES; st++)
		if (strcmp(at, hs_state_name(st)) == 0)
			return st;
	return -1;
}

static int session_setup(struct session *s, struct errbuf *e)
{
	const struct tp_ops *ops = s->opts->tp ? s->opts->tp : tp_lookup(s->cfg->transport);
	int r;

	s->ex = calloc(1, sizeof(*s->ex));
	s->clients = calloc(1, sizeof(*s->clients));
	s->ports = calloc(1, sizeof(*s->ports));
	s->msgbuf = malloc(CCM_MSG_MAX);
	s->decoded = malloc(sizeof(*s->decoded));
	s->win = map_page(STATUS_WINDOW_SIZE);
	s->scratch = map_page(SCRATCH_SIZE);
	if (!s->ex || !s->clients || !s->ports || !s->msgbuf || !s->decoded || !s->win || !s->scratch)
		return errbuf_set(e, -ENOMEM, "out of memory");
	s->crash_at = crash_point();
	/* A restart after switch_root opens everything below in the real
	 * root, not in the emptied initramfs. */
	(void)real_root_follow(s->opts->real_root, s->log);  /* it logs */

	/* The state directory first: the handoff and the keeper's socket
	 * live there, and nobody would learn anything without it. */
	r = handoff_mkdir(s->cfg->state_dir, e);
	if (r < 0)
		return r;
	if (!realpath(s->cfg->state_dir, s->state_dir))
		return errbuf_set(e, -errno, "%s: %s", s->cfg->state_dir, strerror(errno));
	s->state_dirfd = open(s->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->state_dirfd < 0)
		return errbuf_set(e, -errno, "%s: %s", s->state_dir, strerror(errno));
	r = clients_load_dir(s->cfg->clients_dir, s->clients, e);
	if (r < 0)
		return r;
	for (int i = 0; i < s->clients->nbad; i++)
		log_at(s->log, LOG_ERR, "client descriptor %s left out: %s", s->clients->bad[i].file,
		       s->clients->bad[i].why);
	r = sess_load_keys(s->cfg, &s->keys, e);
	if (r < 0)
		return r;
	if (!ops)
		return errbuf_set(e, -ENOTSUP, "transport '%s' is not available in this build",
				  s->cfg->transport);
	s->nlinks = config_links(s->cfg, s->link_cfg);
	for (int i = 0; i < s->nlinks; i++) {
		const struct ccm_link *lc = &s->link_cfg[i];
		struct peer_link *l = &s->links[i];
		struct tp_config tc = {
			.local = lc->local,
			.partner = lc->partner,
			.device = lc->device[0] ? lc->device : NULL,
			.node_id = s->cfg->node_id,
			.op_timeout_ms = OP_TIMEOUT_MS,
			.connect_timeout_ms = CONNECT_TIMEOUT_MS,
			.net = s->opts->net,
			.keys = &s->keys,
		};

		l->h.priority = lc->priority;
		r = ops->create(&tc, &l->tp, e);
		if (r < 0)
			return s->nlinks > 1 ? errbuf_prefix(e, r, "link %d", i) : r;
		tp_admit(l->tp, s->cfg->partner_node);
		/* The same status window and scratch on every link. */
		r = tp_expose(l->tp, s->win, STATUS_WINDOW_SIZE, TP_EXPOSE_STATUS | TP_EXPOSE_WRITE,
			      &l->win_handle);
		if (r == 0)
			r = tp_expose(l->tp, s->scratch, SCRATCH_SIZE, TP_EXPOSE_LOCAL,
				      &l->scratch_handle);
		if (r < 0)
			return errbuf_set(e, r, "link %d: cannot expose the status window: %s", i,
					  strerror(-r));
	}
	r = create_local_ports(s, e);
	if (r < 0)
		return r;

	r = new_epoch(s, &s->epoch);
	if (r < 0)
		return errbuf_set(e, r, "no random bytes for the epoch: %s", strerror(-r));
	s->stage = STAGE_HANDSHAKE;
	hs_init(&s->hs, s->epoch, &hs_default_timing);
	/* Publish before listening: a partner that can connect must find a
	 * valid block. */
	sess_publish_own(s);
	for (int i = 0; i < s->nlinks && r == 0; i++) {
		r = s->links[i].tp ? tp_listen(s->links[i].tp, e) : -EINVAL;
		if (r < 0 && s->nlinks > 1)
			errbuf_prefix(e, r, "link %d", i);
	}
	if (r == 0 && !s->opts->once)
		r = serve_open(s, e);
	return r;
}

int session_open(const struct ccm_config *cfg, const struct session_opts *opts,
		 const struct log *log, uint64_t now, int64_t wall, struct session **out)
{
	struct session *s = calloc(1, sizeof(*s));
	struct hs_event start = { .type = HS_EV_START };
	struct errbuf e;
	int r;

	*out = NULL;
	if (!s) {
		log_at(log, LOG_ERR, "out of memory");
		return CCM_EXIT_FAILURE;
	}
	s->cfg = cfg;
	s->opts = opts;
	s->log = log;
	s->state_dirfd = -1;
	s->hs_link = -1;
	s->now = now;
	s->wall = wall;
	r = session_setup(s, &e);
	if (r < 0) {
		log_at(log, LOG_ERR, "%s", e.msg);
		if (s->clients && s->win && s->state_dirfd >= 0)
			sess_write_handoff(s, HANDOFF_ERROR, e.msg);
		session_close(s);
		return r == -EINVAL || r == -ENOENT || r == -EPERM || r == -ENOTSUP
		       ? CCM_EXIT_USAGE : CCM_EXIT_FAILURE;
	}
	if (cfg->timeout_s)
		timer_set(&s->timers, T_GIVE_UP, now + (uint64_t)cfg->timeout_s * 1000);
	timer_set(&s->timers, T_BEAT, now + cfg->heartbeat_ms);
	for (int i = 0; i < s->nlinks; i++) {
		char where[24] = "";

		if (s->nlinks > 1)
			snprintf(where, sizeof(where), "link %d: ", i);
		log_at(log, LOG_STEP, "%slistening on %s:%u, partner %s:%u, transport %s, epoch %llu",
		       where, s->link_cfg[i].local.host, s->link_cfg[i].local.port,
		       s->link_cfg[i].partner.host, s->link_cfg[i].partner.port, cfg->transport,
		       (unsigned long long)s->epoch);
	}
	/* The first READ goes out before the first handoff is written, so
	 * the two overlap.  Nobody could learn the outcome without a
	 * handoff: failing to write it is a configuration error, and the
	 * partner has seen no more than a READ of its status block. */
	hs_feed(s, &start);
	if (sess_write_handoff(s, HANDOFF_HANDSHAKING, NULL) < 0) {
		session_close(s);
		return CCM_EXIT_USAGE;
	}
	*out = s;
	return CCM_EXIT_OK;
}

unsigned session_turn(struct session *s, uint64_t now, int64_t wall, bool control_ready)
{
	struct tp_event evs[16];
	unsigned notices;
	int n;

	s->now = now;
	s->wall = wall;
	/* Connected, a turn comes at least every heartbeat-ms (T_BEAT); a gap
	 * of twice that is this process not being scheduled, and silence it
	 * did not watch must not count as the partner's. */
	if (s->last_turn && now - s->last_turn > 2ull * s->cfg->heartbeat_ms &&
	    sess_connected(s) && !sess_unreachable(s) && !sess_stopping(s))
		serve_paused(s, now - s->last_turn);
	s->last_turn = now;
	for (int li = 0; li < s->nlinks && !sess_finished(s); li++) {
		do {
			n = tp_progress(s->links[li].tp, evs, 16);
			for (int i = 0; i < n && !sess_finished(s); i++)
				on_tp_event(s, li, &evs[i]);
			if (!sess_finished(s))
				sync_mailbox(s);
		} while (n > 0 && !sess_finished(s));
	}
	if (!sess_finished(s) && sess_ex_started(s))
		check_ready(s);
	/* The keeper's socket is only read when it has something: a client's
	 * round trip passes here twice.  It is always read: a client whose
	 * port's window is full is refused with -EAGAIN (send_msg), never
	 * left unread, so one flooding client cannot cut the others off. */
	if (!sess_finished(s) && s->control && control_ready)
		serve_requests(s);
	if (!sess_finished(s))
		serve_send_queued(s);
	if (!sess_finished(s))
		check_timers(s, now);
	serve_note_changes(s);
	notices = s->notices;
	s->notices = 0;
	return notices;
}

void session_signal(struct session *s, uint64_t now, int64_t wall)
{
	s->now = now;
	s->wall = wall;
	if (s->control)
		serve_stop(s, 0, false, STOP_GRACE_MS);
	else
		sess_terminate(s);
	serve_note_changes(s);
}

uint64_t session_wakeup(const struct session *s)
{
	/* Our heartbeat's timer is always armed: never UINT64_MAX. */
	return timer_next(&s->timers);
}

int session_control_fd(const struct session *s)
{
	return s->control ? control_fd(s->control) : -1;
}

int session_nlinks(const struct session *s)
{
	return s->nlinks;
}

int session_link_fd(const struct session *s, int link)
{
	return tp_fd(s->links[link].tp);
}

bool session_finished(const struct session *s, int *exit_code)
{
	if (sess_finished(s) && exit_code)
		*exit_code = s->exit_code;
	return sess_finished(s);
}

uint32_t session_partner_node(const struct session *s)
{
	return s->ex->peer.node_id;
}
