/* channel: the clients' messages between the two keepers -- onto their
 * ports' links in order, again when the partner has not acknowledged them,
 * the partner's in order into our clients' channels (or held for a client
 * that is away, msg-hold-ms), and the acknowledgements that carry the flow
 * control.  It calls linkset.c and session_base.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "daemon/session_int.h"

/* --- the clients' messages on the wire -----------------------------------------
 * A link takes only so many messages at a time (rdma: its send slots; tcp:
 * its output buffer).  A message that finds its link full is queued, and
 * so is every later one while any waits: they go in the order they were
 * kept, each link as far as it takes them, at the end of every turn (a
 * send completing makes room).  Each port's messages so reach the partner
 * in order, and the partner needs no room for early ones.  Before, the
 * message was left for its resend 200 ms later: under load the resends
 * filled the links, the partner's room for early messages overflowed, and
 * a two-link rdma stream stalled for good after one link was cut. */

/* Resent when not acknowledged by then: acknowledgements come with the
 * link heartbeats' READs, so give them two. */
static uint64_t resend_after(const struct session *s)
{
	return RESEND_AFTER_MS + 2ull * s->cfg->link_heartbeat_ms;
}

/* m's own: each time it goes again unacknowledged it waits twice as long,
 * up to 16 times.  A message whose partner client is slow or away stays
 * unacknowledged (flow control) without being lost: resending it every
 * 300 ms would only fill the links with duplicates. */
static uint64_t resend_wait(const struct session *s, const struct sent_msg *m)
{
	return resend_after(s) << (m->resends < 4 ? m->resends : 4);
}

void channel_queue(struct session *s, struct sent_msg *m)
{
	if (!m->queued) {
		m->queued = true;
		s->rel.nqueued++;
	}
}

/* The partner's acks are wanted before the next heartbeat: the link's
 * heartbeat READ, which carries the ack area, goes now, or again as soon
 * as the one in flight completes.  Over tcp it comes behind the message on
 * the same connection, so the partner has usually delivered it by then;
 * over rdma the NIC may answer first, and the next heartbeat brings it. */
static void want_acks(struct session *s, int li)
{
	struct peer_link *l = &s->links[li];

	if (l->hb_posted)
		l->acks_wanted = true;
	else
		timer_set(&s->timers, T_LINK_HB + li, s->now);
}

/* A client waits on this message's DONE, which comes with the ack: the
 * first of a quiet port's messages (a lone message, or a ccm_send_sync),
 * every quarter of the window (a stream keeps its credit flowing), and a
 * notify (its write's DONE).  Not every message: a partner client that
 * does not read would have us READ without pause. */
static bool ack_soon(const struct sent_msg *m)
{
	if (!m->in_window)
		return m->conn != 0;
	return m->port->tx_window == 1 || m->port->tx_window % (PORT_MSG_WINDOW / 4) == 0;
}

/* m onto the wire over its port's link, unless no link reaches the
 * partner's window of that port or the link is full (noted in *full:
 * nothing later goes on it this turn). */
static bool put_msg(struct session *s, struct sent_msg *m, unsigned *full)
{
	int li = linkset_port_link(s, port_of_rel(m->port)), r;

	if (li < 0 || (*full & (1u << li)))
		return false;
	r = sess_send_on(s, li, m->frame, m->len);
	if (r == -EBUSY || r == -ENOBUFS || r == -EAGAIN || r == -ENOTCONN) {
		*full |= 1u << li;
		return false;
	}
	/* Any other error counts as sent: its resend brings it again. */
	m->link = li;
	m->sent_at = s->now;
	s->links[li].h.msgs++;
	if (ack_soon(m))
		want_acks(s, li);
	if (!timer_armed(&s->timers, T_RESEND))
		timer_set(&s->timers, T_RESEND, s->now + resend_after(s));
	return true;
}

void channel_send_queued(struct session *s)
{
	unsigned full = 0;

	if (!s->rel.nqueued || !sess_connected(s) || sess_unreachable(s))
		return;
	for (int i = 0; i < s->rel.nsent && s->rel.nqueued; i++) {
		struct sent_msg *m = &s->rel.sent[i];

		if (m->queued && put_msg(s, m, &full)) {
			m->queued = false;
			s->rel.nqueued--;
		}
	}
}

struct port *channel_port_of(struct session *s, const char *client, uint16_t port)
{
	struct port_client *pc = ports_find(s->ports, client);

	return pc && port < pc->nports ? &pc->port[port] : NULL;
}

/* A client message (PORT_MSG or PORT_NOTIFY, in s->decoded, seq to be
 * given) to the partner over the port's link, kept until acknowledged.
 * Connected, but with no link that reaches the partner's window of this
 * port yet (the links are still proving themselves, or the partner's
 * LINK_JOIN is on its way), or behind others still waiting, it is queued
 * and goes once it can (channel_send_queued). */
int channel_send(struct session *s, struct port *p, struct wire_msg *m, uint64_t conn,
		 uint32_t tag)
{
	struct sent_msg *kept;
	unsigned full = 0;
	int n, r;

	if (linkset_port_link(s, p) < 0 && !sess_connected(s))
		return -EHOSTUNREACH;
	if (m->type == WIRE_PORT_MSG)
		m->u.port_msg.seq = ++p->rel.tx_seq;
	else
		m->u.notify.seq = ++p->rel.tx_seq;
	n = sess_encode(s, m);
	if (n < 0)
		return n;
	r = reliable_sent(&s->rel, &p->rel, p->rel.tx_seq, -1, s->now, s->msgbuf, (uint32_t)n,
			  m->type == WIRE_PORT_MSG, conn, tag);
	if (r < 0)
		return r;
	p->load += (uint64_t)n;
	kept = &s->rel.sent[s->rel.nsent - 1];
	/* Straight out when nothing waits ahead of it: the common case. */
	if (s->rel.nqueued || sess_unreachable(s) || !put_msg(s, kept, &full))
		channel_queue(s, kept);
	return 0;
}

/* Our client's channel takes a partner's message for port p now, or it
 * does not (no channel attached, or its socket is full: then it waits in
 * the pending queue, and the ack that would let the partner send more
 * waits with it).  A notify is always taken: a full pipe already says
 * "notified". */
static bool take_msg(struct session *s, struct port *p, const struct wire_msg *m)
{
	if (m->type == WIRE_PORT_MSG)
		return s->control && control_msg(s->control, m->u.port_msg.client,
						  m->u.port_msg.port, m->u.port_msg.data,
						  m->u.port_msg.len) == 0;
	/* Never blocks (ports.h). */
	if (write(p->event_wr, "", 1) != 1 && errno != EAGAIN)
		log_at(s->log, LOG_DEBUG, "notify %s port %u: %s", m->u.notify.client,
		       m->u.notify.port, strerror(errno));
	return true;
}

static bool take_pending(void *ctx, struct rel_port *r, const uint8_t *frame, uint32_t len)
{
	struct session *s = ctx;
	struct port *p = port_of_rel(r);
	struct errbuf e;

	if (!reliable_ack_room(r))
		return false;
	/* It was decoded once already: a frame that does not decode now is
	 * dropped (taken) rather than left to block its port for good. */
	if (wire_decode(frame, len, s->decoded, &e) < 0)
		return true;
	return take_msg(s, p, s->decoded);
}

/* --- msg-hold-ms: what a client of ours that stays away will not get ------
 * A partner's message waits in the pending queue for as long as its client
 * is attached, however slow (flow control holds the sender).  While no
 * channel of the client is attached, it waits msg-hold-ms -- counted from
 * when it came or the client went, whichever is later -- and is then given
 * up: the ack word tells the sender, whose completion says -ETIMEDOUT. */

/* Look at the held messages by `at` at the latest. */
void channel_hold_from(struct session *s, uint64_t at)
{
	if (!s->cfg->msg_hold_ms)
		return;
	at += s->cfg->msg_hold_ms;
	if (!timer_armed(&s->timers, T_HOLD) || s->timers.at[T_HOLD] > at)
		timer_set(&s->timers, T_HOLD, at);
}

void channel_give_up_due(struct session *s)
{
	uint64_t soonest = UINT64_MAX;

	/* A partner that cannot hear which were given up gets them all. */
	if (!s->cfg->msg_hold_ms || !s->rel.npend || !s->control || !sess_ex_started(s) ||
	    !(s->ex->peer.caps & WIRE_CAP_MSG_EXPIRE))
		return;
	for (int c = 0; c < s->ports->nclients; c++) {
		struct port_client *pc = &s->ports->c[c];

		if (control_has_channel(s->control, pc->name))
			continue;
		for (int i = 0; i < pc->nports; i++) {
			struct port *p = &pc->port[i];
			uint64_t next;
			int n;

			if (!p->rel.rx_pending)
				continue;
			n = reliable_give_up(&s->rel, &p->rel, s->now, s->cfg->msg_hold_ms,
					     pc->detached_at, &next);
			if (n > 0) {
				reliable_publish_ack(s->win, &p->rel);
				p->rx_given_up += (uint64_t)n;
				log_at(s->log, LOG_NOTE, "client %s port %d: %d message(s) of the "
				       "partner's given up: no channel for %u ms", pc->name, i, n,
				       s->cfg->msg_hold_ms);
			}
			/* 0: due, but waiting for the partner's echo, which
			 * looks again (take_acks). */
			if (next && next < soonest)
				soonest = next;
		}
	}
	if (soonest != UINT64_MAX)
		timer_set(&s->timers, T_HOLD, soonest);
}

/* What waits for our clients, to those that can take it now: after an
 * attach, and when a full channel drained. */
void channel_offer_pending(struct session *s)
{
	if (!s->rel.npend)
		return;
	reliable_offer_pending(&s->rel, take_pending, s);
	for (int c = 0; c < s->ports->nclients; c++)
		for (int i = 0; i < s->ports->c[c].nports; i++)
			reliable_publish_ack(s->win, &s->ports->c[c].port[i].rel);
}

/* The message seq (in order: p->rel.rx_seq is seq now) to our client, or into
 * the pending queue behind the port's others.  With no room there it is
 * not taken in at all: rx_seq goes back, and the sender's resend brings
 * it again. */
static void take_in_order(struct session *s, struct port *p, const struct wire_msg *m,
			  uint64_t seq, const uint8_t *frame, uint32_t len)
{
	int r;

	if (!p->rel.rx_pending && reliable_ack_room(&p->rel) && take_msg(s, p, m)) {
		p->rel.rx_done = seq;
		reliable_publish_ack(s->win, &p->rel);
		return;
	}
	r = reliable_pend(&s->rel, &p->rel, seq, frame, len, s->now);
	if (r == 0)
		channel_hold_from(s, s->now);
	if (r < 0) {
		p->rel.rx_seq = seq - 1;
		log_at(s->log, LOG_DEBUG, "message %llu for port %u refused: %s",
		       (unsigned long long)seq, p->rel.slot, strerror(-r));
	}
}

void channel_partner_msg(struct session *s, const struct wire_msg *m, const uint8_t *frame,
			 uint32_t len)
{
	const char *client = m->type == WIRE_PORT_MSG ? m->u.port_msg.client : m->u.notify.client;
	uint16_t port = m->type == WIRE_PORT_MSG ? m->u.port_msg.port : m->u.notify.port;
	uint64_t seq = m->type == WIRE_PORT_MSG ? m->u.port_msg.seq : m->u.notify.seq;
	struct port *p = channel_port_of(s, client, port);
	struct wire_msg *held = s->decoded;
	struct rel_port *r;
	struct errbuf e;
	uint8_t *f;

	if (!p || !p->have_remote) {
		log_at(s->log, LOG_ERR, "partner sent %s for client %s port %u, which has no port here",
		       wire_type_name(m->type), client, port);
		return;
	}
	if (reliable_received(&s->rel, &p->rel, seq, frame, len) != RELIABLE_DELIVER)
		return;
	take_in_order(s, p, m, seq, frame, len);
	/* What came early for this port may be due now (m is s->decoded: done
	 * with it). */
	while ((f = reliable_next(&s->rel, &len, &r))) {
		p = port_of_rel(r);
		if (wire_decode(f, len, held, &e) == 0)
			take_in_order(s, p, held, p->rel.rx_seq, f, len);
		free(f);
	}
}

/* A message of ours the partner's client has (status 0), or that it will
 * not get confirmed (the session ended: status < 0): its completion. */
void channel_msg_acked(void *ctx, const struct sent_msg *m, int status)
{
	struct session *s = ctx;

	if (s->control)
		control_done(s->control, m->conn, m->tag, status);
}

void channel_forget_partner(struct session *s, int status)
{
	reliable_clear(&s->rel, channel_msg_acked, s, status);
	ports_forget_remote(s->ports);
	memset(s->win + ACK_AREA_OFFSET, 0, ACK_AREA_SIZE + ECHO_AREA_SIZE);
}

void channel_take_acks(struct session *s, const uint8_t *buf, uint32_t len)
{
	bool retired = false;

	for (int c = 0; c < s->ports->nclients; c++)
		for (int i = 0; i < s->ports->c[c].nports; i++) {
			struct port *p = &s->ports->c[c].port[i];
			unsigned got;

			if (!p->have_remote)
				continue;
			got = reliable_peer_ack(&p->rel, buf, len);
			if (got & RELIABLE_ECHO_NEW)
				reliable_publish_echo(s->win, &p->rel);
			if (got & RELIABLE_RUN_RETIRED) {
				reliable_publish_ack(s->win, &p->rel);
				retired = true;
			}
		}
	reliable_acked(&s->rel, channel_msg_acked, s);
	/* The partner has our last run: what waited for that may go now. */
	if (retired) {
		channel_offer_pending(s);
		channel_give_up_due(s);
	}
}

/* Messages the partner has not acknowledged for a while go again (one
 * that came early there and found no room, say), behind what waits. */
void channel_resend_old(struct session *s, uint64_t now)
{
	uint64_t next = 0;

	for (int i = 0; i < s->rel.nsent; i++) {
		struct sent_msg *m = &s->rel.sent[i];

		if (!m->queued && now - m->sent_at >= resend_wait(s, m)) {
			m->resends += m->resends < UINT8_MAX;
			channel_queue(s, m);
		}
	}
	channel_send_queued(s);
	for (int i = 0; i < s->rel.nsent; i++) {
		const struct sent_msg *m = &s->rel.sent[i];
		uint64_t at = m->sent_at + resend_wait(s, m);

		if (!m->queued && (!next || at < next))
			next = at;
	}
	if (next)
		timer_set(&s->timers, T_RESEND, next);
}
