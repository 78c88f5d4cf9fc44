/* serve: the keeper's duties once the session has handed off -- serving
 * local clients over the control socket (attach, their one-sided
 * operations and messages), carrying their traffic over the links (which
 * link carries which port, moving it off a link that fails, sending again
 * what a failed link may have swallowed), telling them what happens to the
 * partner and the links, watching heartbeats, and stopping cleanly. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/fdmsg.h"
#include "base/log.h"
#include "daemon/session_int.h"

static void complete_op(struct session *s, struct client_op *op, int status);
static int repost_ops(struct session *s, int from);
static void flush_held(struct session *s);
static void msg_acked(void *ctx, const struct sent_msg *m, int status);
static void offer_pending(struct session *s);
static void hold_from(struct session *s, uint64_t at);

int serve_open(struct session *s, struct errbuf *e)
{
	return control_open(s->state_dir, s->log, &s->control, e);
}

void serve_close(struct session *s)
{
	control_close(s->control);
	s->control = NULL;
}

/* --- events: what `ccm-early events` watchers are told ------------------------ */

/* A change goes to the journal too, when the keeper logs there: an entry
 * of its own, in the words of `ccm-early events`, whose fields say what
 * changed (journalctl CCM_EVENT=link CCM_LINK=0). */
static void journal_note(const struct session *s, const struct ctl_note *n, bool partner)
{
	char fields[320], text[160];  /* fields: 203 bytes at most */
	int k;

	if (!s->log->journal || s->log->journal->fd < 0)
		return;
	k = snprintf(fields, sizeof(fields), "CCM_EVENT=%s\nCCM_STATE=%s\n", ctl_note_object(n->kind),
		     n->state);
	if (n->kind == CTL_NOTE_LINK || n->kind == CTL_NOTE_FAILOVER)
		k += snprintf(fields + k, sizeof(fields) - (size_t)k, "CCM_LINK=%u\n", n->link);
	if (partner)
		k += snprintf(fields + k, sizeof(fields) - (size_t)k,
			      "CCM_PARTNER_NODE=%u\nCCM_PARTNER_EPOCH=%llu\n", n->partner_node,
			      (unsigned long long)n->partner_epoch);
	if (n->name[0])
		snprintf(fields + k, sizeof(fields) - (size_t)k, "CCM_CLIENT=%s\n", n->name);
	ctl_note_text(n, text, sizeof(text));
	/* A lost partner, or a failover off a failed link, is a warning; the rest is news. */
	(void)journal_send(s->log->journal,
			   n->kind == CTL_NOTE_FAILOVER || !strcmp(n->state, "lost") ? 4 : 6,
			   s->log->node, s->log->instance, fields, text);
}

static void note_to(struct session *s, uint64_t conn, uint16_t kind, int link,
		    const char *state, const char *name)
{
	struct ctl_note n = { .kind = kind, .exists = conn != 0, .link = (uint8_t)(link < 0 ? 0 : link) };

	if (!s->control)
		return;
	if (sess_ex_started(s)) {
		n.partner_node = s->ex->peer.node_id;
		n.partner_epoch = s->ex->peer.epoch;
	}
	snprintf(n.state, sizeof(n.state), "%s", state);
	snprintf(n.name, sizeof(n.name), "%s", name ? name : "");
	if (conn) {
		control_reply(s->control, conn, CTL_NOTE, &n, sizeof(n));
	} else {
		control_note(s->control, &n);
		journal_note(s, &n, n.partner_node != 0);  /* node ids start at 1 */
	}
}

static void note(struct session *s, uint16_t kind, int link, const char *state, const char *name)
{
	note_to(s, 0, kind, link, state, name);
}

void serve_note_changes(struct session *s)
{
	if (!s->control)
		return;
	if (s->noted_state != (int)s->handoff_state + 1) {
		s->noted_state = (int)s->handoff_state + 1;
		note(s, CTL_NOTE_STATE, -1, handoff_state_name(s->handoff_state), NULL);
	}
	if (s->noted_hs != (int)s->hs.state + 1) {
		s->noted_hs = (int)s->hs.state + 1;
		note(s, CTL_NOTE_HANDSHAKE, -1, hs_state_name(s->hs.state), NULL);
	}
	for (int i = 0; i < s->nlinks; i++)
		if (s->noted_link[i] != (int)s->links[i].h.state + 1) {
			s->noted_link[i] = (int)s->links[i].h.state + 1;
			note(s, CTL_NOTE_LINK, i, link_state_name(s->links[i].h.state), NULL);
		}
}

/* `events --now`: what is, to conn alone, then the end of it. */
static void note_now(struct session *s, uint64_t conn)
{
	note_to(s, conn, CTL_NOTE_STATE, -1, handoff_state_name(s->handoff_state), NULL);
	note_to(s, conn, CTL_NOTE_HANDSHAKE, -1, hs_state_name(s->hs.state), NULL);
	for (int i = 0; i < s->nlinks; i++)
		note_to(s, conn, CTL_NOTE_LINK, i, link_state_name(s->links[i].h.state), NULL);
	if (sess_connected(s))
		note_to(s, conn, CTL_NOTE_PARTNER, -1, sess_unreachable(s) ? "lost" : "ready", NULL);
	for (int c = 0; c < s->ports->nclients; c++)
		if (control_has_channel(s->control, s->ports->c[c].name))
			note_to(s, conn, CTL_NOTE_CLIENT, -1, "attached", s->ports->c[c].name);
	note_to(s, conn, CTL_NOTE_NOW_DONE, -1, "", NULL);
}

static void tell_all(struct session *s, enum ctl_event_type type, int link)
{
	struct ctl_event ev = { .type = (uint16_t)type, .link = (uint16_t)(link < 0 ? 0 : link) };

	/* What the clients heard is what the status counts, and what the
	 * watchers hear. */
	if ((unsigned)type < CTL_EV_COUNT)
		s->events_told[type]++;
	if (type == CTL_EV_PARTNER_READY || type == CTL_EV_PARTNER_LOST || type == CTL_EV_PARTNER_BACK)
		note(s, CTL_NOTE_PARTNER, -1, type == CTL_EV_PARTNER_READY ? "ready" :
		     type == CTL_EV_PARTNER_LOST ? "lost" : "back", NULL);
	else if (type == CTL_EV_LINK_DOWN)
		note(s, CTL_NOTE_FAILOVER, link, "", NULL);
	else if (type == CTL_EV_TERMINATING)
		note(s, CTL_NOTE_TERMINATING, -1, link ? "restart" : "stop", NULL);

	if (!s->control)
		return;
	if (sess_ex_started(s)) {
		ev.partner_node = s->ex->peer.node_id;
		ev.partner_epoch = s->ex->peer.epoch;
	}
	control_event(s->control, NULL, &ev);
}

/* The boot may go on: the loop tells whoever waits, and the process
 * becomes the keeper that outlives the initramfs (loop.c). */
void serve_handed_off(struct session *s, bool connected)
{
	if (s->handed_off || s->opts->once)
		return;
	s->handed_off = true;
	/* Told to stop before it got here, it stays stopping. */
	if (s->daemon == DAEMON_STARTING)
		sess_daemon_enter(s, DAEMON_SERVING);
	s->notices |= connected ? SESSION_HANDED_OFF : SESSION_HANDED_OFF_DEGRADED;
	log_at(s->log, LOG_NOTE, "handed off (%s); serving clients on %s",
	       connected ? "connected" : "degraded", control_path(s->control));
}

/* --- the links --------------------------------------------------------------- */

/* The link that carries port p now; it is given one when it has none, or
 * when its link stopped carrying. */
static int port_link(struct session *s, struct port *p)
{
	int counts[CCM_LINKS_MAX], li = p->link;
	struct link_health h[CCM_LINKS_MAX];

	if (li >= 0 && s->links[li].h.state == LINK_UP && (p->have_remote & (1u << li)))
		return li;
	for (int i = 0; i < s->nlinks; i++) {
		h[i] = s->links[i].h;
		/* Only where the partner's window is known. */
		if (!(p->have_remote & (1u << i)))
			h[i].state = LINK_DOWN;
		counts[i] = sess_link_ports(s, i);
	}
	p->link = links_pick(h, counts, s->nlinks, s->cfg->link_policy);
	return p->link;
}

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

static void queue_msg(struct session *s, struct sent_msg *m)
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
	int li = port_link(s, m->port), r;

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

void serve_send_queued(struct session *s)
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

/* Spread the ports over the UP links again: a link came (back). */
static void rebalance(struct session *s)
{
	struct port *ps[CCM_PORTS_TOTAL];
	uint64_t load[CCM_PORTS_TOTAL];
	int assign[CCM_PORTS_TOTAL], n = 0, moved;
	struct link_health h[CCM_LINKS_MAX];

	for (int c = 0; c < s->ports->nclients; c++)
		for (int i = 0; i < s->ports->c[c].nports && n < CCM_PORTS_TOTAL; i++) {
			struct port *p = &s->ports->c[c].port[i];

			if (!p->have_remote)
				continue;
			ps[n] = p;
			load[n] = p->load;
			assign[n++] = p->link;
		}
	for (int i = 0; i < s->nlinks; i++)
		h[i] = s->links[i].h;
	moved = links_assign(h, s->nlinks, s->cfg->link_policy, load, n, assign);
	if (moved < 0)
		return;
	for (int k = 0; k < n; k++) {
		ps[k]->link = assign[k];
		ps[k]->load /= 2;  /* recent traffic counts most */
	}
	if (moved)
		log_at(s->log, LOG_STEP, "%d port(s) moved to balance the links", moved);
}

static bool other_link_up(const struct session *s, int except)
{
	for (int i = 0; i < s->nlinks; i++)
		if (i != except && s->links[i].h.state == LINK_UP)
			return true;
	return false;
}

/* The handoff shows the links: rewrite it when one changes state. */
static void links_changed(struct session *s)
{
	sess_refresh_handoff(s);
	timer_set(&s->timers, T_LINKS_WRITE, s->now + LINKS_REFRESH_MS);
}

static uint64_t hb_limit(const struct session *s)
{
	return (uint64_t)s->cfg->heartbeat_ms * s->cfg->heartbeat_misses;
}

static uint64_t link_hb_limit(const struct session *s)
{
	return (uint64_t)s->cfg->link_heartbeat_ms * s->cfg->link_misses;
}

/* The partner's counter moved: it must move again within the limit. */
static void partner_alive(struct session *s)
{
	s->hb_seen_at = s->now;
	timer_set(&s->timers, T_PARTNER_HB, s->now + hb_limit(s) + 1);
}

/* A heartbeat is wanted on link li: it is late once neither it nor
 * anything else has completed on the link for link-misses intervals. */
static void arm_link_late(struct session *s, int li)
{
	const struct peer_link *l = &s->links[li];
	uint64_t from = l->hb_wanted_since > l->last_progress ? l->hb_wanted_since
							      : l->last_progress;

	if (l->hb_wanted_since)
		timer_set(&s->timers, T_LINK_LATE + li, from + link_hb_limit(s) + 1);
}

void serve_paused(struct session *s, uint64_t gap_ms)
{
	log_at(s->log, LOG_NOTE, "this keeper was not scheduled for %llu ms: the partner's "
	       "silence meanwhile does not count", (unsigned long long)gap_ms);
	partner_alive(s);
	for (int i = 0; i < s->nlinks; i++) {
		struct peer_link *l = &s->links[i];

		l->last_progress = s->now;
		if (l->hb_wanted_since)
			l->hb_wanted_since = s->now;
		arm_link_late(s, i);
	}
}

static void link_now_up(struct session *s, int li)
{
	log_at(s->log, LOG_NOTE, "link %d up%s", li, s->links[li].h.downs ? " again" : "");
	if (s->links[li].h.downs)
		tell_all(s, CTL_EV_LINK_UP, li);
	rebalance(s);
	flush_held(s);
	links_changed(s);
	/* A last link that was late waited for the partner's heartbeat; with
	 * this one up, its lateness counts again. */
	for (int i = 0; i < s->nlinks; i++)
		if (i != li)
			arm_link_late(s, i);
}

void serve_link_connected(struct session *s, int li)
{
	struct peer_link *l = &s->links[li];

	/* The partner's status block over this link, at once: it is the
	 * link's proof (serve_heartbeat_done). */
	l->hb_posted = false;
	l->hb_wanted_since = 0;
	l->last_progress = s->now;
	timer_set(&s->timers, T_LINK_HB + li, s->now);
	timer_stop(&s->timers, T_LINK_LATE + li);
}

void serve_link_progress(struct session *s, int li)
{
	/* The late deadline moves with it; its handler looks again. */
	s->links[li].last_progress = s->now;
}

static void send_link_joins(struct session *s)
{
	struct wire_msg *m = s->decoded;  /* free: the partner's PORTS was taken */
	const char *shared[2 * CCM_CLIENTS_MAX + 1];

	sess_shared_names(s, shared);
	for (int li = 0; li < s->nlinks; li++) {
		if (li == s->hs_link)
			continue;
		memset(m, 0, sizeof(*m));
		m->type = WIRE_LINK_JOIN;
		ports_to_wire(s->ports, shared, li, &m->u.ports);
		if (sess_send_wire(s, m) < 0)
			log_at(s->log, LOG_ERR, "cannot send LINK_JOIN for link %d", li);
	}
}

void serve_connected(struct session *s)
{
	uint64_t now = s->now;

	/* A live session: only this partner may connect to us now (its
	 * reboot included); anything else that reaches our address is
	 * refused before it can touch the status block. */
	for (int i = 0; i < s->nlinks; i++)
		tp_admit(s->links[i].tp, s->ex->peer.node_id);

	/* The handshake proved its own link; the others prove themselves. */
	for (int i = 0; i < s->nlinks; i++) {
		struct peer_link *l = &s->links[i];

		if (i == s->hs_link) {
			l->h.state = LINK_VERIFYING;
			link_verified(&l->h, now, 0);
		}
		if (l->tp_up)
			serve_link_connected(s, i);
		else
			sess_link_connect(s, i);
	}
	send_link_joins(s);
	for (int i = 0; i < s->nlinks; i++) {
		struct peer_link *l = &s->links[i];
		uint8_t *early = l->early_join;
		struct errbuf e;

		if (!early)
			continue;
		l->early_join = NULL;
		if (wire_decode(early, l->early_join_len, s->decoded, &e) == 0)
			serve_link_join(s, i, s->decoded, early, l->early_join_len);
		free(early);
	}
	rebalance(s);
	if (s->partner_epoch_seen && s->partner_epoch_seen != s->ex->peer.epoch)
		s->partner_epoch_changes++;
	s->partner_epoch_seen = s->ex->peer.epoch;
	tell_all(s, s->was_lost ? CTL_EV_PARTNER_BACK : CTL_EV_PARTNER_READY, -1);
	s->was_lost = false;
	partner_alive(s);
	serve_handed_off(s, true);
	links_changed(s);  /* the handoff was written before the links were up */
}

void serve_lost(struct session *s)
{
	/* Unreachable, the clients have been told already; what was held for
	 * the partner's return fails now. */
	for (int i = 0; i < CLIENT_OPS_MAX; i++)
		if (s->cops[i].used && s->cops[i].link == -1)
			complete_op(s, &s->cops[i], -ECONNABORTED);
	if (!sess_unreachable(s))
		tell_all(s, CTL_EV_PARTNER_LOST, -1);
	s->was_lost = true;
}

/* No link reaches the partner (the last one failed, or its heartbeat
 * stopped).  The clients are told; the session stays as it is, and the
 * links keep trying: the first back that finds the same partner, alive
 * (its counter moved) and still connected to us, resumes it; one that
 * finds another epoch, or the partner handshaking again, ends it. */
static void go_unreachable(struct session *s, const char *why)
{
	char msg[200];
	uint64_t now = s->now;

	if (sess_unreachable(s))
		return;
	log_at(s->log, LOG_ERR, "partner unreachable: %s", why);
	sess_peer_enter(s, PEER_UNREACHABLE);
	s->was_lost = true;
	s->hb_at_loss = s->hb_last;
	for (int i = 0; i < s->nlinks; i++) {
		struct peer_link *l = &s->links[i];

		/* Every link proves itself afresh. */
		if (l->h.state == LINK_UP)
			tell_all(s, CTL_EV_LINK_DOWN, i);
		if (l->tp_up || l->connecting)
			tp_disconnect(l->tp);
		l->tp_up = l->connecting = l->hb_posted = false;
		if (l->h.state != LINK_DOWN)
			sess_link_down(s, i);
	}
	timer_stop(&s->timers, T_PARTNER_HB);
	if (s->hs_link >= 0)
		s->hs_link = -1;
	for (int c = 0; c < s->ports->nclients; c++)
		for (int i = 0; i < s->ports->c[c].nports; i++)
			s->ports->c[c].port[i].link = -1;
	tell_all(s, CTL_EV_PARTNER_LOST, -1);
	snprintf(msg, sizeof(msg), "partner unreachable: %.170s", why);
	sess_write_handoff(s, HANDOFF_UNREACHABLE, msg);
	timer_set(&s->timers, T_LINKS_WRITE, now + LINKS_REFRESH_MS);
}

static void resume(struct session *s, int li)
{
	log_at(s->log, LOG_NOTE, "partner reachable again over link %d: session resumed", li);
	sess_peer_enter(s, PEER_CONNECTED);
	s->was_lost = false;
	partner_alive(s);
	s->hs_link = li;
	/* What the partner had not acknowledged goes again now, and the
	 * operations held meanwhile. */
	for (int i = 0; i < s->rel.nsent; i++)
		queue_msg(s, &s->rel.sent[i]);
	tell_all(s, CTL_EV_PARTNER_BACK, -1);
	repost_ops(s, -1);
	serve_send_queued(s);
	sess_write_handoff(s, HANDOFF_CONNECTED, NULL);
}

void serve_link_join(struct session *s, int arrived, const struct wire_msg *m, const uint8_t *frame,
		     uint32_t len)
{
	const char *shared[2 * CCM_CLIENTS_MAX + 1];
	int li = m->u.ports.link;
	struct errbuf e;

	if (li >= s->nlinks) {
		log_at(s->log, LOG_ERR, "partner sent LINK_JOIN for link %d; we have %d", li,
		       s->nlinks);
		return;
	}
	if (!s->ports_checked) {
		/* Before its PORTS (over another link): keep it till then. */
		uint8_t *copy = malloc(len);

		if (!copy)
			return;
		memcpy(copy, frame, len);
		free(s->links[li].early_join);
		s->links[li].early_join = copy;
		s->links[li].early_join_len = len;
		return;
	}
	sess_shared_names(s, shared);
	if (ports_set_remote(s->ports, shared, &m->u.ports, 0, &e) < 0) {
		log_at(s->log, LOG_ERR, "partner's LINK_JOIN for link %d (over link %d) refused: %s",
		       li, arrived, e.msg);
		return;
	}
	s->peer_keys |= 1u << li;
	log_at(s->log, LOG_DEBUG, "partner's windows over link %d known", li);
	flush_held(s);
}

/* Must op wait behind an earlier operation of its port that is in flight
 * on another link than li, or held?  Then it does: one connection keeps
 * its operations in order, two do not, and a later write that landed
 * first would be overwritten by the earlier one (the simulator found it,
 * with a port moved back to a restored link while its writes were stuck
 * on the other, cut one). */
static bool fenced(const struct session *s, const struct client_op *op, int li)
{
	for (int i = 0; i < CLIENT_OPS_MAX; i++) {
		const struct client_op *o = &s->cops[i];

		if (o != op && o->used && o->order < op->order && o->link != li &&
		    o->port == op->port && !strcmp(o->client, op->client))
			return true;
	}
	return false;
}

static bool any_held(const struct session *s)
{
	for (int i = 0; i < CLIENT_OPS_MAX; i++)
		if (s->cops[i].used && s->cops[i].link == -1)
			return true;
	return false;
}

/* Post a client's operation on its port's link: -EHOSTUNREACH when no
 * link reaches the partner's window, -EINPROGRESS when it must wait
 * behind an earlier one of its port (fenced). */
static int post_client_op(struct session *s, struct client_op *op)
{
	struct port_client *pc = ports_find(s->ports, op->client);
	struct port *p = pc && op->port < pc->nports ? &pc->port[op->port] : NULL;
	uint32_t slot = (uint32_t)(op - s->cops);
	struct peer_link *l;
	uint64_t wr_id;
	int li, r;

	if (!p)
		return -EINVAL;
	li = port_link(s, p);
	if (li < 0)
		return -EHOSTUNREACH;
	if (fenced(s, op, li))
		return -EINPROGRESS;
	l = &s->links[li];
	op->gen = (op->gen + 1) & 0xffffff;
	wr_id = ((uint64_t)OP_CLIENT << 32) | ((uint64_t)op->gen << 8) | slot;
	r = op->is_read ? tp_read(l->tp, &p->remote[li], op->remote_off, p->map + op->local_off,
				  op->len, wr_id)
			: tp_write(l->tp, &p->remote[li], op->remote_off, p->map + op->local_off,
				   op->len, wr_id);
	if (r < 0)
		return r;
	op->link = li;
	l->h.out_bytes += op->len;
	l->h.ops++;
	l->h.bytes += op->len;
	p->load += op->len;
	return 0;
}

static struct port *port_of(struct session *s, const char *client, uint16_t port)
{
	struct port_client *pc = ports_find(s->ports, client);

	return pc && port < pc->nports ? &pc->port[port] : NULL;
}

/* Post again the clients' operations that were on link `from` (-1: those
 * held while the partner was unreachable), in the order they were first
 * posted: a later write to the same bytes must still land last.  Returns
 * how many went. */
static int repost_ops(struct session *s, int from)
{
	struct client_op *order[CLIENT_OPS_MAX];
	int n = 0, again = 0;

	for (int i = 0; i < CLIENT_OPS_MAX; i++)
		if (s->cops[i].used && s->cops[i].link == from)
			order[n++] = &s->cops[i];
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && order[j]->order < order[j - 1]->order; j--) {
			struct client_op *t = order[j];

			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	for (int i = 0; i < n; i++) {
		int r = post_client_op(s, order[i]);

		if ((r == -EHOSTUNREACH && sess_connected(s)) || r == -EINPROGRESS)
			order[i]->link = -1;  /* held until a link reaches it, or
			                         its port's earlier ones are done */
		else if (r < 0)
			complete_op(s, order[i], r);
		else
			again++;
	}
	return again;
}

/* A link now reaches the partner's windows (it came up, or the partner's
 * LINK_JOIN told us its windows over it): what was held for want of one
 * goes now. */
static void flush_held(struct session *s)
{
	if (!sess_connected(s) || sess_unreachable(s))
		return;
	repost_ops(s, -1);
	serve_send_queued(s);
}

/* A link failed with the session up: its ports go to the others, what was
 * in flight on it goes again there (writes into windows are idempotent;
 * the receiver drops the messages it already has), and the clients hear
 * of it.  The last link failing is the partner lost. */
void serve_link_failed(struct session *s, int li, const char *why)
{
	struct peer_link *l = &s->links[li];
	bool was_up = l->h.state == LINK_UP;
	int again;

	if (l->tp_up || l->connecting)
		tp_disconnect(l->tp);  /* its late completions are ignored */
	l->tp_up = l->connecting = false;
	l->hb_posted = false;
	if (l->h.state == LINK_DOWN)
		return;
	sess_link_down(s, li);
	if (li == s->hs_link) {
		s->hs_link = -1;
		for (int i = 0; i < s->nlinks && s->hs_link < 0; i++)
			if (s->links[i].h.state == LINK_UP)
				s->hs_link = i;
	}
	if (!sess_connected(s))
		return;
	if (!other_link_up(s, -1)) {
		char msg[160];

		snprintf(msg, sizeof(msg), "no link left (link %d: %s)", li, why);
		go_unreachable(s, msg);
		return;
	}
	log_at(s->log, LOG_NOTE, "link %d down: %s; moving its traffic", li, why);
	/* Ports first, so that what goes again goes where they now are. */
	rebalance(s);
	again = repost_ops(s, li);
	for (int i = 0; i < s->rel.nsent; i++) {
		struct sent_msg *m = &s->rel.sent[i];

		if (m->link == li && !m->queued) {
			queue_msg(s, m);
			again++;
		}
	}
	serve_send_queued(s);
	l->h.reissued += (uint64_t)again;
	if (again)
		log_at(s->log, LOG_STEP, "%d operation(s) and message(s) of link %d sent again", again,
		       li);
	if (was_up)
		tell_all(s, CTL_EV_LINK_DOWN, li);
	links_changed(s);
}

/* --- requests -------------------------------------------------------------- */

static const struct client_desc *find_desc(const struct session *s, const char *name)
{
	for (int i = 0; i < s->clients->count; i++)
		if (!strcmp(s->clients->c[i].name, name))
			return &s->clients->c[i];
	return NULL;
}

static void attach(struct session *s, const struct control_req *r)
{
	const struct client_desc *d = find_desc(s, r->client);
	struct port_client *pc = ports_find(s->ports, r->client);
	int fds[2 * CCM_PORTS_MAX];
	uint16_t idx[2 * CCM_PORTS_MAX], kinds[2 * CCM_PORTS_MAX];
	struct ctl_attached a = { 0 };
	char why[96];
	int n = 0;

	if (!d || !pc) {
		snprintf(why, sizeof(why), "no client '%s' on this node", r->client);
		control_error(s->control, r->conn, -ENOENT, why);
		log_at(s->log, LOG_STEP, "pid %d: %s", (int)r->pid, why);
		return;
	}
	if (r->uid != 0 && r->uid != d->uid) {
		snprintf(why, sizeof(why), "uid %u may not attach to client '%s'", (unsigned)r->uid,
			 r->client);
		control_error(s->control, r->conn, -EACCES, why);
		log_at(s->log, LOG_ERR, "pid %d: %s", (int)r->pid, why);
		return;
	}
	a.nports = pc->nports;
	a.port_size = pc->port_size;
	a.partner_ready = sess_connected(s) && !sess_unreachable(s);
	if (a.partner_ready) {
		a.partner_node = s->ex->peer.node_id;
		a.partner_epoch = s->ex->peer.epoch;
	}
	for (int i = 0; i < pc->nports; i++) {
		fds[n] = pc->port[i].memfd, idx[n] = (uint16_t)i, kinds[n++] = CTL_FD_WINDOW;
		fds[n] = pc->port[i].event, idx[n] = (uint16_t)i, kinds[n++] = CTL_FD_EVENT;
	}
	if (control_attached(s->control, r->conn, r->client, &a, fds, idx, kinds, n) < 0)
		return;
	log_at(s->log, LOG_STEP, "pid %d (uid %u) attached to client %s", (int)r->pid,
	       (unsigned)r->uid, r->client);
	note(s, CTL_NOTE_CLIENT, -1, "attached", r->client);
	/* A client that attaches while the partner is there hears so at once,
	 * the same way as one that was attached when it came. */
	if (a.partner_ready) {
		struct ctl_event ev = { .type = CTL_EV_PARTNER_READY, .partner_node = a.partner_node,
					.partner_epoch = a.partner_epoch };

		control_reply(s->control, r->conn, CTL_EVENT, &ev, sizeof(ev));
	} else if (sess_connected(s) && sess_unreachable(s)) {
		/* So that the PARTNER_BACK it will hear has a LOST before it. */
		struct ctl_event ev = { .type = CTL_EV_PARTNER_LOST, .partner_node = s->ex->peer.node_id,
					.partner_epoch = s->ex->peer.epoch };

		control_reply(s->control, r->conn, CTL_EVENT, &ev, sizeof(ev));
	}
	/* What the partner sent while it was away. */
	offer_pending(s);
}

static void rw(struct session *s, const struct control_req *r, bool is_read)
{
	struct port_client *pc = ports_find(s->ports, r->client);
	const struct ctl_rw *q = &r->rw;
	struct client_op *op = NULL;
	struct port *p;
	int ret;

	if (!pc || q->port >= pc->nports) {
		control_done(s->control, r->conn, q->tag, -EINVAL);
		return;
	}
	p = &pc->port[q->port];
	/* Bounds on both windows (they are the same size), without overflow. */
	if (!q->len || q->len > CCM_OP_MAX || q->local_off > pc->port_size ||
	    q->len > pc->port_size - q->local_off || q->remote_off > pc->port_size ||
	    q->len > pc->port_size - q->remote_off || (is_read && (q->flags & CTL_F_NOTIFY))) {
		control_done(s->control, r->conn, q->tag, -EINVAL);
		return;
	}
	if (!p->have_remote || !sess_connected(s)) {
		control_done(s->control, r->conn, q->tag, -EHOSTUNREACH);
		return;
	}
	for (int i = 0; i < CLIENT_OPS_MAX && !op; i++)
		if (!s->cops[i].used)
			op = &s->cops[i];
	if (!op) {
		control_done(s->control, r->conn, q->tag, -EBUSY);
		return;
	}
	*op = (struct client_op){ .used = true, .is_read = is_read, .conn = r->conn, .tag = q->tag,
				  .port = q->port, .notify = !is_read && (q->flags & CTL_F_NOTIFY),
				  .local_off = q->local_off, .remote_off = q->remote_off, .len = q->len,
				  .gen = op->gen, .order = ++s->op_order };
	memcpy(op->client, r->client, sizeof(op->client));
	ret = post_client_op(s, op);
	if (ret == -EHOSTUNREACH || ret == -EINPROGRESS) {
		op->link = -1;  /* held: no link reaches the partner's window
		                   yet, or its port's earlier ones are not done */
		return;
	}
	if (ret < 0) {
		op->used = false;
		control_done(s->control, r->conn, q->tag, ret);
	}
}

/* A client message (PORT_MSG or PORT_NOTIFY, in s->decoded, seq to be
 * given) to the partner over the port's link, kept until acknowledged.
 * Connected, but with no link that reaches the partner's window of this
 * port yet (the links are still proving themselves, or the partner's
 * LINK_JOIN is on its way), or behind others still waiting, it is queued
 * and goes once it can (serve_send_queued). */
static int send_port_msg(struct session *s, struct port *p, struct wire_msg *m, uint64_t conn,
			 uint32_t tag)
{
	struct sent_msg *kept;
	unsigned full = 0;
	int n, r;

	if (port_link(s, p) < 0 && !sess_connected(s))
		return -EHOSTUNREACH;
	if (m->type == WIRE_PORT_MSG)
		m->u.port_msg.seq = ++p->tx_seq;
	else
		m->u.notify.seq = ++p->tx_seq;
	n = sess_encode(s, m);
	if (n < 0)
		return n;
	r = reliable_sent(&s->rel, p, p->tx_seq, -1, s->now, s->msgbuf, (uint32_t)n,
			  m->type == WIRE_PORT_MSG, conn, tag);
	if (r < 0)
		return r;
	p->load += (uint64_t)n;
	kept = &s->rel.sent[s->rel.nsent - 1];
	/* Straight out when nothing waits ahead of it: the common case. */
	if (s->rel.nqueued || sess_unreachable(s) || !put_msg(s, kept, &full))
		queue_msg(s, kept);
	return 0;
}

static void send_msg(struct session *s, const struct control_req *r)
{
	struct port_client *pc = ports_find(s->ports, r->client);
	struct wire_msg *m = s->decoded;  /* free between partner messages */
	int ret;

	if (!pc || r->send.port >= pc->nports) {
		control_done(s->control, r->conn, r->send.tag, -EINVAL);
		return;
	}
	if (!sess_connected(s) || !pc->port[r->send.port].have_remote) {
		control_done(s->control, r->conn, r->send.tag, -EHOSTUNREACH);
		return;
	}
	/* Flow control: the port's window is full (the partner's client has
	 * not taken enough of them yet), or everything we keep for the
	 * partner is.  libccm counts the same window and does not ask. */
	if (reliable_port_full(&pc->port[r->send.port]) || reliable_full(&s->rel)) {
		control_done(s->control, r->conn, r->send.tag, -EAGAIN);
		return;
	}
	memset(m, 0, sizeof(*m));
	m->type = WIRE_PORT_MSG;
	memcpy(m->u.port_msg.client, r->client, sizeof(m->u.port_msg.client));
	m->u.port_msg.port = r->send.port;
	m->u.port_msg.len = (uint16_t)r->len;
	memcpy(m->u.port_msg.data, r->payload, r->len);
	ret = send_port_msg(s, &pc->port[r->send.port], m, r->conn, r->send.tag);
	/* Done when the partner's client has it (msg_acked). */
	if (ret < 0)
		control_done(s->control, r->conn, r->send.tag, ret);
}

/* What the keeper knows now, as JSON (STATUS) or as the state file's text
 * (STATE): the truth even when the handoff file could not be written. */
static void status(struct session *s, const struct control_req *r, bool shell)
{
	struct handoff *h = malloc(sizeof(*h));
	char *buf = malloc(HANDOFF_TEXT_MAX);
	int n = -ENOMEM;

	if (h && buf) {
		sess_fill_handoff(s, h, s->handoff_state, s->handoff_error);
		n = shell ? handoff_format_shell(h, buf, HANDOFF_TEXT_MAX)
			  : handoff_format_json(h, buf, HANDOFF_TEXT_MAX);
	}
	/* The reply must fit one control message. */
	if (n > FDMSG_PAYLOAD_MAX)
		n = -EMSGSIZE;
	if (n < 0)
		control_error(s->control, r->conn, n, "cannot format the state");
	else
		control_reply(s->control, r->conn, shell ? CTL_STATE_REPLY : CTL_STATUS_REPLY, buf,
			      (uint32_t)n);
	free(h);
	free(buf);
}

static void finish_stop(struct session *s)
{
	/* What the partner's clients have not confirmed will not be. */
	reliable_clear(&s->rel, msg_acked, s, -ESHUTDOWN);
	if (s->stop_conn)
		control_done(s->control, s->stop_conn, 0, 0);
	sess_terminate(s);
}

void serve_stop(struct session *s, uint64_t conn, bool restart, uint32_t grace_ms)
{
	if (!sess_stopping(s)) {
		sess_daemon_enter(s, DAEMON_STOPPING);
		timer_set(&s->timers, T_STOP, s->now + grace_ms);
		log_at(s->log, LOG_NOTE, "stopping%s: telling %d client(s), %u ms grace",
		       restart ? " to handshake again" : "", control_attached_count(s->control),
		       grace_ms);
		/* Whether it comes back, in the event's link field. */
		tell_all(s, CTL_EV_TERMINATING, restart ? 1 : 0);
	}
	s->restart = s->restart || restart;
	if (conn)
		s->stop_conn = conn;
	if (control_attached_count(s->control) == 0)
		finish_stop(s);
}

void serve_requests(struct session *s)
{
	struct control_req r;

	/* A bounded batch: the transport gets its turn too. */
	for (int i = 0; i < 64 && !sess_finished(s) && control_next(s->control, &r) == 1; i++) {
		switch (r.type) {
		case CREQ_ATTACH:
			if (sess_stopping(s))
				control_error(s->control, r.conn, -ESHUTDOWN, "the keeper is stopping");
			else
				attach(s, &r);
			break;
		case CREQ_WRITE:
		case CREQ_READ:
			rw(s, &r, r.type == CREQ_READ);
			break;
		case CREQ_SEND:
			send_msg(s, &r);
			break;
		case CREQ_STATUS:
		case CREQ_STATE:
			status(s, &r, r.type == CREQ_STATE);
			break;
		case CREQ_STOP:
			serve_stop(s, r.conn, r.stop.restart != 0, r.stop.grace_ms);
			break;
		case CREQ_RELOAD_KEYS: {
			struct errbuf e;
			int rc = session_reload_keys(s, &e);

			if (rc < 0)
				control_error(s->control, r.conn, rc, e.msg);
			else
				control_done(s->control, r.conn, 0, 0);
			break;
		}
		case CREQ_WRITABLE:
			offer_pending(s);
			break;
		case CREQ_EVENTS:
			if (r.events.now)
				note_now(s, r.conn);
			control_watch(s->control, r.conn);
			break;
		case CREQ_DETACHED: {
			struct port_client *pc = ports_find(s->ports, r.client);

			log_at(s->log, LOG_STEP, "pid %d detached from client %s", (int)r.pid, r.client);
			note(s, CTL_NOTE_CLIENT, -1, "detached", r.client);
			if (pc && !control_has_channel(s->control, r.client)) {
				pc->detached_at = s->now;
				hold_from(s, s->now);
			}
			if (sess_stopping(s) && control_attached_count(s->control) == 0)
				finish_stop(s);
			break;
		}
		}
	}
}

/* --- completions and the partner's messages --------------------------------- */

static void complete_op(struct session *s, struct client_op *op, int status)
{
	struct port *p = port_of(s, op->client, op->port);

	op->used = false;
	if (op->notify && status == 0 && p) {
		struct wire_msg *m = s->decoded;
		int r;

		memset(m, 0, sizeof(*m));
		m->type = WIRE_PORT_NOTIFY;
		memcpy(m->u.notify.client, op->client, sizeof(m->u.notify.client));
		m->u.notify.port = op->port;
		m->u.notify.off = op->remote_off;
		m->u.notify.len = op->len;
		/* Sent after the write completed, so after the bytes landed,
		 * whichever link each went over.  The write is done when the
		 * partner's client has the notify (msg_acked). */
		r = send_port_msg(s, p, m, op->conn, op->tag);
		if (r == 0)
			return;
		status = r;
	}
	if (s->control)
		control_done(s->control, op->conn, op->tag, status);
}

void serve_op_done(struct session *s, int li, uint32_t id, int status)
{
	uint32_t slot = id & 0xff, gen = id >> 8;
	struct client_op *op = slot < CLIENT_OPS_MAX ? &s->cops[slot] : NULL;
	struct link_health *h = &s->links[li].h;

	/* Only the completion of its current posting counts: one from a
	 * link it was moved off is stale. */
	if (!op || !op->used || op->link != li || op->gen != gen)
		return;
	h->out_bytes -= op->len < h->out_bytes ? op->len : h->out_bytes;
	if (status < 0 && sess_unreachable(s)) {
		/* Held until the partner is back (then posted again) or the
		 * session ends (then failed). */
		op->link = -1;
		return;
	}
	if (status < 0 && sess_connected(s) && other_link_up(s, li)) {
		/* The link is failing: this operation goes again elsewhere,
		 * with all else it had. */
		serve_link_failed(s, li, "an operation on it failed");
		return;
	}
	complete_op(s, op, status);
	/* Operations that waited behind it may go now. */
	if (any_held(s))
		flush_held(s);
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

static bool take_pending(void *ctx, struct port *p, const uint8_t *frame, uint32_t len)
{
	struct session *s = ctx;
	struct errbuf e;

	if (!reliable_ack_room(p))
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
static void hold_from(struct session *s, uint64_t at)
{
	if (!s->cfg->msg_hold_ms)
		return;
	at += s->cfg->msg_hold_ms;
	if (!timer_armed(&s->timers, T_HOLD) || s->timers.at[T_HOLD] > at)
		timer_set(&s->timers, T_HOLD, at);
}

static void give_up_due(struct session *s)
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

			if (!p->rx_pending)
				continue;
			n = reliable_give_up(&s->rel, p, s->now, s->cfg->msg_hold_ms,
					     pc->detached_at, &next);
			if (n > 0) {
				reliable_publish_ack(s->win, p);
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
static void offer_pending(struct session *s)
{
	if (!s->rel.npend)
		return;
	reliable_offer_pending(&s->rel, take_pending, s);
	for (int c = 0; c < s->ports->nclients; c++)
		for (int i = 0; i < s->ports->c[c].nports; i++)
			reliable_publish_ack(s->win, &s->ports->c[c].port[i]);
}

/* The message seq (in order: p->rx_seq is seq now) to our client, or into
 * the pending queue behind the port's others.  With no room there it is
 * not taken in at all: rx_seq goes back, and the sender's resend brings
 * it again. */
static void take_in_order(struct session *s, struct port *p, const struct wire_msg *m,
			  uint64_t seq, const uint8_t *frame, uint32_t len)
{
	int r;

	if (!p->rx_pending && reliable_ack_room(p) && take_msg(s, p, m)) {
		p->rx_done = seq;
		reliable_publish_ack(s->win, p);
		return;
	}
	r = reliable_pend(&s->rel, p, seq, frame, len, s->now);
	if (r == 0)
		hold_from(s, s->now);
	if (r < 0) {
		p->rx_seq = seq - 1;
		log_at(s->log, LOG_DEBUG, "message %llu for port %u refused: %s",
		       (unsigned long long)seq, p->slot, strerror(-r));
	}
}

void serve_partner_msg(struct session *s, const struct wire_msg *m, const uint8_t *frame,
		       uint32_t len)
{
	const char *client = m->type == WIRE_PORT_MSG ? m->u.port_msg.client : m->u.notify.client;
	uint16_t port = m->type == WIRE_PORT_MSG ? m->u.port_msg.port : m->u.notify.port;
	uint64_t seq = m->type == WIRE_PORT_MSG ? m->u.port_msg.seq : m->u.notify.seq;
	struct port *p = port_of(s, client, port);
	struct wire_msg *held = s->decoded;
	struct errbuf e;
	uint8_t *f;

	if (!p || !p->have_remote) {
		log_at(s->log, LOG_ERR, "partner sent %s for client %s port %u, which has no port here",
		       wire_type_name(m->type), client, port);
		return;
	}
	if (reliable_received(&s->rel, p, seq, frame, len) != RELIABLE_DELIVER)
		return;
	take_in_order(s, p, m, seq, frame, len);
	/* What came early for this port may be due now (m is s->decoded: done
	 * with it). */
	while ((f = reliable_next(&s->rel, &len, &p))) {
		if (wire_decode(f, len, held, &e) == 0)
			take_in_order(s, p, held, p->rx_seq, f, len);
		free(f);
	}
}

/* A message of ours the partner's client has (status 0), or that it will
 * not get confirmed (the session ended: status < 0): its completion. */
static void msg_acked(void *ctx, const struct sent_msg *m, int status)
{
	struct session *s = ctx;

	if (s->control)
		control_done(s->control, m->conn, m->tag, status);
}

void serve_forget_partner(struct session *s, int status)
{
	reliable_clear(&s->rel, msg_acked, s, status);
	ports_forget_remote(s->ports);
	memset(s->win + ACK_AREA_OFFSET, 0, ACK_AREA_SIZE + ECHO_AREA_SIZE);
}

/* --- the heartbeats -------------------------------------------------------------
 * Connected, every link READs the partner's status block and ack area every
 * link-heartbeat-ms.  A READ that completes proves the link (and, the first
 * time, verifies it: the session's partner is there); one that is late by
 * link-misses intervals fails it, as long as another link can take over.
 * The partner's counter must move at least once every heartbeat-misses x
 * heartbeat-ms on whichever links: a partner that hangs, or whose machine
 * dies without a word, is found there. */

/* The status block and the partner's acks; and its echoes too, but only
 * while one of our given-up runs waits for one: the echo area lies past
 * the whole ack area, and most heartbeats need not READ 2 KiB more. */
static uint32_t hb_read_len(const struct session *s)
{
	for (int c = 0; c < s->ports->nclients; c++)
		for (int i = 0; i < s->ports->c[c].nports; i++)
			if (s->ports->c[c].port[i].rx_run_len)
				return ECHO_AREA_OFFSET + 4u * s->ex->peer_ports.count;
	return ACK_AREA_OFFSET + 8u * s->ex->peer_ports.count;
}

static void take_acks(struct session *s, const uint8_t *buf, uint32_t len)
{
	bool retired = false;

	for (int c = 0; c < s->ports->nclients; c++)
		for (int i = 0; i < s->ports->c[c].nports; i++) {
			struct port *p = &s->ports->c[c].port[i];
			unsigned got;

			if (!p->have_remote)
				continue;
			got = reliable_peer_ack(p, buf, len);
			if (got & RELIABLE_ECHO_NEW)
				reliable_publish_echo(s->win, p);
			if (got & RELIABLE_RUN_RETIRED) {
				reliable_publish_ack(s->win, p);
				retired = true;
			}
		}
	reliable_acked(&s->rel, msg_acked, s);
	/* The partner has our last run: what waited for that may go now. */
	if (retired) {
		offer_pending(s);
		give_up_due(s);
	}
}

bool serve_heartbeat_done(struct session *s, int li, int status, char *lost_why, size_t len)
{
	struct peer_link *l = &s->links[li];
	const uint8_t *buf = s->scratch + SCRATCH_HEARTBEAT + (size_t)li * LINK_HB_MAX;
	struct status_own o;
	uint64_t now = s->now;

	if (l->hb_posted && status == 0)
		link_rtt(&l->h, now - l->hb_posted_at);
	l->hb_posted = false;
	l->hb_wanted_since = 0;
	timer_set(&s->timers, T_LINK_HB + li, l->acks_wanted ? now : now + s->cfg->link_heartbeat_ms);
	l->acks_wanted = false;
	timer_stop(&s->timers, T_LINK_LATE + li);
	if (!sess_connected(s))
		return false;
	if (status < 0) {
		serve_link_failed(s, li, "its heartbeat READ failed");
		return false;
	}
	if (status_decode_own(buf, STATUS_OWN_SIZE, &o, NULL) < 0)
		return false;  /* caught mid-update: the next look will do */
	if (o.epoch != s->hs.peer_epoch || o.node_id != s->ex->peer.node_id) {
		char why[128];

		snprintf(why, sizeof(why), "it reaches node %u epoch %llu, not the partner",
			 o.node_id, (unsigned long long)o.epoch);
		if ((l->h.state == LINK_UP || sess_unreachable(s)) && o.node_id == s->ex->peer.node_id) {
			snprintf(lost_why, len, "its status block shows another epoch");
			return true;
		}
		serve_link_failed(s, li, why);
		return false;
	}
	/* A partner whose handshake left the session (it lost us, while we
	 * did not lose it) must be met again: otherwise we would wait on,
	 * connected to a partner that is not. */
	if (o.state != HS_CONNECTED) {
		if (l->h.state != LINK_UP && !sess_unreachable(s))
			return false;  /* not proven yet: it can wait */
		snprintf(lost_why, len, "its handshake is in %s, not connected",
			 hs_state_name(o.state));
		return true;
	}
	if (sess_unreachable(s)) {
		/* Resume only with a partner whose heartbeat moved: one that
		 * hangs still answers READs over RDMA. */
		if (o.heartbeat == s->hb_at_loss || !(s->peer_keys & (1u << li)))
			return false;
		s->hb_last = o.heartbeat;
		take_acks(s, buf, hb_read_len(s));
		l->h.state = LINK_UP;  /* the first back carries at once */
		resume(s, li);
		link_now_up(s, li);
		return false;
	}
	if (o.heartbeat != s->hb_last) {
		s->hb_last = o.heartbeat;
		partner_alive(s);
	}
	take_acks(s, buf, hb_read_len(s));
	if (l->h.state == LINK_VERIFYING && (s->peer_keys & (1u << li))) {
		if (link_verified(&l->h, now, s->cfg->link_damp_ms)) {
			link_now_up(s, li);
		} else {
			timer_set(&s->timers, T_LINK_DAMP + li, l->h.damp_until);
			log_at(s->log, LOG_STEP, "link %d verified; damped for %u ms", li,
			       s->cfg->link_damp_ms);
		}
		links_changed(s);
	}
	return false;
}

static void post_link_heartbeat(struct session *s, int li, uint64_t now)
{
	struct peer_link *l = &s->links[li];
	uint8_t *buf = s->scratch + SCRATCH_HEARTBEAT + (size_t)li * LINK_HB_MAX;

	if (!l->hb_wanted_since) {
		l->hb_wanted_since = now;
		arm_link_late(s, li);
	}
	/* A link whose queue is full takes no READ: it is late all the same. */
	if (tp_read(l->tp, &l->peer_win, 0, buf, hb_read_len(s),
		    ((uint64_t)OP_HEARTBEAT << 32) | (uint32_t)li) == 0) {
		l->hb_posted = true;
		l->hb_posted_at = now;
	} else
		timer_set(&s->timers, T_LINK_HB + li, now + s->cfg->link_heartbeat_ms);
}

/* Late: its heartbeat has been due for link-misses intervals, and nothing
 * else completed on it meanwhile either (a link busy with bulk data may
 * queue the heartbeat behind it, but it moves). */
static bool link_late(const struct session *s, const struct peer_link *l, uint64_t now)
{
	return l->hb_wanted_since && now - l->hb_wanted_since > link_hb_limit(s) &&
	       now - l->last_progress > link_hb_limit(s);
}

static void check_link_late(struct session *s, int li)
{
	struct peer_link *l = &s->links[li];
	char why[64];

	if (!l->tp_up || l->h.state < LINK_VERIFYING || !l->hb_wanted_since)
		return;
	if (!link_late(s, l, s->now)) {
		arm_link_late(s, li);  /* something completed meanwhile */
		return;
	}
	/* The last link is given up by the partner's heartbeat only: a stall
	 * of a few ms must not cost the whole session (link_now_up looks
	 * again once another link is up). */
	if (l->h.state == LINK_UP && !other_link_up(s, li))
		return;
	snprintf(why, sizeof(why), "no heartbeat for %llu ms",
		 (unsigned long long)(s->now - l->hb_wanted_since));
	serve_link_failed(s, li, why);
}

/* Messages the partner has not acknowledged for a while go again (one
 * that came early there and found no room, say), behind what waits. */
static void resend_old(struct session *s, uint64_t now)
{
	uint64_t next = 0;

	for (int i = 0; i < s->rel.nsent; i++) {
		struct sent_msg *m = &s->rel.sent[i];

		if (!m->queued && now - m->sent_at >= resend_wait(s, m)) {
			m->resends += m->resends < UINT8_MAX;
			queue_msg(s, m);
		}
	}
	serve_send_queued(s);
	for (int i = 0; i < s->rel.nsent; i++) {
		const struct sent_msg *m = &s->rel.sent[i];
		uint64_t at = m->sent_at + resend_wait(s, m);

		if (!m->queued && (!next || at < next))
			next = at;
	}
	if (next)
		timer_set(&s->timers, T_RESEND, next);
}

/* The handoff's link counters, rewritten now and then when they moved: a
 * quiet keeper writes nothing. */
static void refresh_links(struct session *s)
{
	uint64_t sum = 0;

	/* Heartbeats count too: their round trips are in the metrics. */
	for (int i = 0; i < s->nlinks; i++)
		sum += s->links[i].h.ops + s->links[i].h.msgs + s->links[i].h.rtt_count;
	if (sum != s->links_written_sum)
		links_changed(s);
	else
		timer_set(&s->timers, T_LINKS_WRITE, s->now + LINKS_REFRESH_MS);
	s->links_written_sum = sum;
}

static void check_partner_hb(struct session *s)
{
	char why[96];

	if (sess_unreachable(s))
		return;
	if (s->now - s->hb_seen_at <= hb_limit(s)) {
		timer_set(&s->timers, T_PARTNER_HB, s->hb_seen_at + hb_limit(s) + 1);
		return;
	}
	snprintf(why, sizeof(why), "no heartbeat for %llu ms",
		 (unsigned long long)(s->now - s->hb_seen_at));
	go_unreachable(s, why);
}

void serve_on_timer(struct session *s, int id)
{
	int li = id >= T_LINK_CONNECT ? (id - T_LINK_CONNECT) % CCM_LINKS_MAX : -1;
	struct peer_link *l;

	if (id == T_STOP) {
		if (sess_stopping(s) && !sess_finished(s)) {
			log_at(s->log, LOG_ERR, "%d client(s) still attached after the grace time",
			       control_attached_count(s->control));
			finish_stop(s);
		}
		return;
	}
	/* The rest serve a connected session; becoming connected again arms
	 * what it needs (serve_connected). */
	if (!sess_connected(s) || sess_stopping(s))
		return;
	switch (id) {
	case T_PARTNER_HB:
		check_partner_hb(s);
		return;
	case T_RESEND:
		if (!sess_unreachable(s))
			resend_old(s, s->now);
		return;
	case T_LINKS_WRITE:
		refresh_links(s);
		return;
	case T_HOLD:
		give_up_due(s);
		return;
	}
	if (li < 0 || li >= s->nlinks)
		return;
	l = &s->links[li];
	switch (id - li) {
	case T_LINK_RETRY:
		if (l->h.state == LINK_DOWN && !l->connecting)
			sess_link_connect(s, li);
		break;
	case T_LINK_DAMP:
		if (link_tick(&l->h, s->now))
			link_now_up(s, li);
		break;
	case T_LINK_HB:
		if (l->tp_up && l->h.state >= LINK_VERIFYING && !l->hb_posted)
			post_link_heartbeat(s, li, s->now);
		break;
	case T_LINK_LATE:
		check_link_late(s, li);
		break;
	}
}
