/* keeper: the keeper's duties once the session has handed off -- serving
 * local clients over the control socket (attach, their one-sided operations
 * and messages), moving traffic off a link that fails, watching the
 * partner's heartbeat, the partner lost and back, and stopping cleanly.
 * It calls channel.c, linkset.c, notes.c and session_base.c; session.c
 * and peer.c call it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/fdmsg.h"
#include "base/log.h"
#include "daemon/session_int.h"

static void flush_held(struct session *s);
static void complete_op(struct session *s, struct client_op *op, int status);
static int repost_ops(struct session *s, int from);

int serve_open(struct session *s, struct errbuf *e)
{
	return control_open(s->state_dir, s->log, &s->control, e);
}

void serve_close(struct session *s)
{
	control_close(s->control);
	s->control = NULL;
}

static uint64_t hb_limit(const struct session *s)
{
	return (uint64_t)s->cfg->heartbeat_ms * s->cfg->heartbeat_misses;
}

/* The partner's counter moved: it must move again within the limit. */
static void partner_alive(struct session *s)
{
	s->hb_seen_at = s->now;
	timer_set(&s->timers, T_PARTNER_HB, s->now + hb_limit(s) + 1);
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
		linkset_arm_late(s, i);
	}
}

static void link_now_up(struct session *s, int li)
{
	log_at(s->log, LOG_NOTE, "link %d up%s", li, s->links[li].h.downs ? " again" : "");
	if (s->links[li].h.downs)
		notes_tell_clients(s, CTL_EV_LINK_UP, li);
	linkset_rebalance(s);
	flush_held(s);
	linkset_changed(s);
	/* A last link that was late waited for the partner's heartbeat; with
	 * this one up, its lateness counts again. */
	for (int i = 0; i < s->nlinks; i++)
		if (i != li)
			linkset_arm_late(s, i);
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
			linkset_connected(s, i);
		else
			sess_link_connect(s, i);
	}
	linkset_send_joins(s);
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
	linkset_rebalance(s);
	if (s->partner_epoch_seen && s->partner_epoch_seen != s->ex->peer.epoch)
		s->partner_epoch_changes++;
	s->partner_epoch_seen = s->ex->peer.epoch;
	notes_tell_clients(s, s->was_lost ? CTL_EV_PARTNER_BACK : CTL_EV_PARTNER_READY, -1);
	s->was_lost = false;
	partner_alive(s);
	notes_handed_off(s, true);
	linkset_changed(s);  /* the handoff was written before the links were up */
}

void serve_lost(struct session *s)
{
	/* Unreachable, the clients have been told already; what was held for
	 * the partner's return fails now. */
	for (int i = 0; i < CLIENT_OPS_MAX; i++)
		if (s->cops[i].used && s->cops[i].link == -1)
			complete_op(s, &s->cops[i], -ECONNABORTED);
	if (!sess_unreachable(s))
		notes_tell_clients(s, CTL_EV_PARTNER_LOST, -1);
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
			notes_tell_clients(s, CTL_EV_LINK_DOWN, i);
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
	notes_tell_clients(s, CTL_EV_PARTNER_LOST, -1);
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
		channel_queue(s, &s->rel.sent[i]);
	notes_tell_clients(s, CTL_EV_PARTNER_BACK, -1);
	repost_ops(s, -1);
	channel_send_queued(s);
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
	li = linkset_port_link(s, p);
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
	channel_send_queued(s);
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
	if (!linkset_other_up(s, -1)) {
		char msg[160];

		snprintf(msg, sizeof(msg), "no link left (link %d: %s)", li, why);
		go_unreachable(s, msg);
		return;
	}
	log_at(s->log, LOG_NOTE, "link %d down: %s; moving its traffic", li, why);
	/* Ports first, so that what goes again goes where they now are. */
	linkset_rebalance(s);
	again = repost_ops(s, li);
	for (int i = 0; i < s->rel.nsent; i++) {
		struct sent_msg *m = &s->rel.sent[i];

		if (m->link == li && !m->queued) {
			channel_queue(s, m);
			again++;
		}
	}
	channel_send_queued(s);
	l->h.reissued += (uint64_t)again;
	if (again)
		log_at(s->log, LOG_STEP, "%d operation(s) and message(s) of link %d sent again", again,
		       li);
	if (was_up)
		notes_tell_clients(s, CTL_EV_LINK_DOWN, li);
	linkset_changed(s);
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
	notes_change(s, CTL_NOTE_CLIENT, -1, "attached", r->client);
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
	channel_offer_pending(s);
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
	if (reliable_port_full(&pc->port[r->send.port].rel) || reliable_full(&s->rel)) {
		control_done(s->control, r->conn, r->send.tag, -EAGAIN);
		return;
	}
	memset(m, 0, sizeof(*m));
	m->type = WIRE_PORT_MSG;
	memcpy(m->u.port_msg.client, r->client, sizeof(m->u.port_msg.client));
	m->u.port_msg.port = r->send.port;
	m->u.port_msg.len = (uint16_t)r->len;
	memcpy(m->u.port_msg.data, r->payload, r->len);
	ret = channel_send(s, &pc->port[r->send.port], m, r->conn, r->send.tag);
	/* Done when the partner's client has it (channel_msg_acked). */
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
	reliable_clear(&s->rel, channel_msg_acked, s, -ESHUTDOWN);
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
		notes_tell_clients(s, CTL_EV_TERMINATING, restart ? 1 : 0);
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
			channel_offer_pending(s);
			break;
		case CREQ_EVENTS:
			if (r.events.now)
				notes_tell_now(s, r.conn);
			control_watch(s->control, r.conn);
			break;
		case CREQ_DETACHED: {
			struct port_client *pc = ports_find(s->ports, r.client);

			log_at(s->log, LOG_STEP, "pid %d detached from client %s", (int)r.pid, r.client);
			notes_change(s, CTL_NOTE_CLIENT, -1, "detached", r.client);
			if (pc && !control_has_channel(s->control, r.client)) {
				pc->detached_at = s->now;
				channel_hold_from(s, s->now);
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
	struct port *p = channel_port_of(s, op->client, op->port);

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
		 * partner's client has the notify (channel_msg_acked). */
		r = channel_send(s, p, m, op->conn, op->tag);
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
	if (status < 0 && sess_connected(s) && linkset_other_up(s, li)) {
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
		channel_take_acks(s, buf, linkset_hb_read_len(s));
		l->h.state = LINK_UP;  /* the first back carries at once */
		resume(s, li);
		link_now_up(s, li);
		return false;
	}
	if (o.heartbeat != s->hb_last) {
		s->hb_last = o.heartbeat;
		partner_alive(s);
	}
	channel_take_acks(s, buf, linkset_hb_read_len(s));
	if (l->h.state == LINK_VERIFYING && (s->peer_keys & (1u << li))) {
		if (link_verified(&l->h, now, s->cfg->link_damp_ms)) {
			link_now_up(s, li);
		} else {
			timer_set(&s->timers, T_LINK_DAMP + li, l->h.damp_until);
			log_at(s->log, LOG_STEP, "link %d verified; damped for %u ms", li,
			       s->cfg->link_damp_ms);
		}
		linkset_changed(s);
	}
	return false;
}

static void check_link_late(struct session *s, int li)
{
	struct peer_link *l = &s->links[li];
	char why[64];

	if (!l->tp_up || l->h.state < LINK_VERIFYING || !l->hb_wanted_since)
		return;
	if (!linkset_late(s, l, s->now)) {
		linkset_arm_late(s, li);  /* something completed meanwhile */
		return;
	}
	/* The last link is given up by the partner's heartbeat only: a stall
	 * of a few ms must not cost the whole session (link_now_up looks
	 * again once another link is up). */
	if (l->h.state == LINK_UP && !linkset_other_up(s, li))
		return;
	snprintf(why, sizeof(why), "no heartbeat for %llu ms",
		 (unsigned long long)(s->now - l->hb_wanted_since));
	serve_link_failed(s, li, why);
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
			channel_resend_old(s, s->now);
		return;
	case T_LINKS_WRITE:
		linkset_refresh(s);
		return;
	case T_HOLD:
		channel_give_up_due(s);
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
			linkset_post_heartbeat(s, li, s->now);
		break;
	case T_LINK_LATE:
		check_link_late(s, li);
		break;
	}
}
