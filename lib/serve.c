/* serve: the keeper's duties once the session has handed off -- serving
 * local clients over the control socket (attach, their one-sided
 * operations and messages), telling them what happens to the partner,
 * watching the partner's heartbeat, and stopping cleanly. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fdmsg.h"
#include "log.h"
#include "sdnotify.h"
#include "session_int.h"

int serve_open(struct session *s, struct errbuf *e)
{
	return keeper_open(s->state_dir, &s->keeper, e);
}

void serve_close(struct session *s)
{
	keeper_close(s->keeper);
	s->keeper = NULL;
}

static void tell_all(struct session *s, enum ctl_event_type type)
{
	struct ctl_event ev = { .type = (uint16_t)type };

	if (!s->keeper)
		return;
	if (s->ex_started) {
		ev.partner_node = s->ex->peer.node_id;
		ev.partner_epoch = s->ex->peer.epoch;
	}
	keeper_event(s->keeper, NULL, &ev);
}

/* The boot may go on: say so to whoever waits, and become the keeper that
 * outlives the initramfs. */
void serve_handed_off(struct session *s, bool connected)
{
	int fd;

	if (s->handed_off || s->opts->once)
		return;
	s->handed_off = true;
	if (s->opts->handoff_fd >= 0) {
		uint8_t code = connected ? CCM_EXIT_OK : CCM_EXIT_TIMEOUT;

		if (write(s->opts->handoff_fd, &code, 1) != 1)
			log_at(s->log, LOG_ERR, "cannot tell the parent: %s", strerror(errno));
		close(s->opts->handoff_fd);
	}
	if (s->opts->foreground) {
		char st[160];

		if (connected)
			snprintf(st, sizeof(st), "READY=1\nSTATUS=connected to node %u",
				 s->ex->peer.node_id);
		else
			snprintf(st, sizeof(st), "READY=1\nSTATUS=degraded: no partner after %u s; "
				 "still looking", s->cfg->timeout_s);
		sdnotify(st);
	}
	/* systemd's root-storage-daemon rule: a process whose argv[0] starts
	 * with '@' when /etc/initrd-release exists is left alone at
	 * switch-root.  And keep nothing open on the initramfs. */
	if (s->opts->argv0 && access("/etc/initrd-release", F_OK) == 0)
		s->opts->argv0[0] = '@';
	if (chdir("/") < 0)
		log_at(s->log, LOG_ERR, "chdir /: %s", strerror(errno));
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		close(fd);
	}
	log_at(s->log, LOG_NOTE, "handed off (%s); serving clients on %s",
	       connected ? "connected" : "degraded", keeper_path(s->keeper));
}

void serve_connected(struct session *s)
{
	uint64_t now = sess_now_ms();

	tell_all(s, s->was_lost ? CTL_EV_PARTNER_BACK : CTL_EV_PARTNER_READY);
	s->was_lost = false;
	s->hb_next = now + s->cfg->heartbeat_ms;
	s->hb_seen_at = now;
	s->hb_posted = false;
	serve_handed_off(s, true);
}

void serve_lost(struct session *s)
{
	s->was_lost = true;
	tell_all(s, CTL_EV_PARTNER_LOST);
}

/* --- requests -------------------------------------------------------------- */

static const struct client_desc *find_desc(const struct session *s, const char *name)
{
	for (int i = 0; i < s->clients->count; i++)
		if (!strcmp(s->clients->c[i].name, name))
			return &s->clients->c[i];
	return NULL;
}

static void attach(struct session *s, const struct keeper_req *r)
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
		keeper_error(s->keeper, r->conn, -ENOENT, why);
		log_at(s->log, LOG_STEP, "pid %d: %s", (int)r->pid, why);
		return;
	}
	if (r->uid != 0 && r->uid != d->uid) {
		snprintf(why, sizeof(why), "uid %u may not attach to client '%s'", (unsigned)r->uid,
			 r->client);
		keeper_error(s->keeper, r->conn, -EACCES, why);
		log_at(s->log, LOG_ERR, "pid %d: %s", (int)r->pid, why);
		return;
	}
	a.nports = pc->nports;
	a.port_size = pc->port_size;
	a.partner_ready = s->handoff_connected;
	if (s->handoff_connected) {
		a.partner_node = s->ex->peer.node_id;
		a.partner_epoch = s->ex->peer.epoch;
	}
	for (int i = 0; i < pc->nports; i++) {
		fds[n] = pc->port[i].memfd, idx[n] = (uint16_t)i, kinds[n++] = CTL_FD_WINDOW;
		fds[n] = pc->port[i].eventfd, idx[n] = (uint16_t)i, kinds[n++] = CTL_FD_EVENT;
	}
	if (keeper_attached(s->keeper, r->conn, r->client, &a, fds, idx, kinds, n) < 0)
		return;
	log_at(s->log, LOG_STEP, "pid %d (uid %u) attached to client %s", (int)r->pid,
	       (unsigned)r->uid, r->client);
	/* A client that attaches while the partner is there hears so at once,
	 * the same way as one that was attached when it came. */
	if (s->handoff_connected) {
		struct ctl_event ev = { .type = CTL_EV_PARTNER_READY, .partner_node = a.partner_node,
					.partner_epoch = a.partner_epoch };

		keeper_reply(s->keeper, r->conn, CTL_EVENT, &ev, sizeof(ev));
	}
}

static void rw(struct session *s, const struct keeper_req *r, bool is_read)
{
	struct port_client *pc = ports_find(s->ports, r->client);
	const struct ctl_rw *q = &r->rw;
	struct client_op *op = NULL;
	struct port *p;
	uint64_t wr_id;
	int ret;

	if (!pc || q->port >= pc->nports) {
		keeper_done(s->keeper, r->conn, q->tag, -EINVAL);
		return;
	}
	p = &pc->port[q->port];
	/* Bounds on both windows (they are the same size), without overflow. */
	if (!q->len || q->len > CCM_OP_MAX || q->local_off > pc->port_size ||
	    q->len > pc->port_size - q->local_off || q->remote_off > pc->port_size ||
	    q->len > pc->port_size - q->remote_off || (is_read && (q->flags & CTL_F_NOTIFY))) {
		keeper_done(s->keeper, r->conn, q->tag, -EINVAL);
		return;
	}
	if (!p->have_remote || !s->handoff_connected) {
		keeper_done(s->keeper, r->conn, q->tag, -ENOTCONN);
		return;
	}
	for (int i = 0; i < CLIENT_OPS_MAX && !op; i++)
		if (!s->cops[i].used)
			op = &s->cops[i];
	if (!op) {
		keeper_done(s->keeper, r->conn, q->tag, -EBUSY);
		return;
	}
	wr_id = ((uint64_t)OP_CLIENT << 32) | (uint64_t)(op - s->cops);
	ret = is_read ? tp_read(s->tp, &p->remote, q->remote_off, p->map + q->local_off, q->len, wr_id)
		      : tp_write(s->tp, &p->remote, q->remote_off, p->map + q->local_off, q->len, wr_id);
	if (ret < 0) {
		keeper_done(s->keeper, r->conn, q->tag, ret);
		return;
	}
	*op = (struct client_op){ .used = true, .conn = r->conn, .tag = q->tag, .port = q->port,
				  .notify = !is_read && (q->flags & CTL_F_NOTIFY),
				  .remote_off = q->remote_off, .len = q->len };
	memcpy(op->client, r->client, sizeof(op->client));
}

static void send_msg(struct session *s, const struct keeper_req *r)
{
	struct port_client *pc = ports_find(s->ports, r->client);
	struct wire_msg *m = s->decoded;  /* free between partner messages */
	int ret;

	if (!pc || r->send.port >= pc->nports) {
		keeper_done(s->keeper, r->conn, r->send.tag, -EINVAL);
		return;
	}
	if (!s->handoff_connected || !pc->port[r->send.port].have_remote) {
		keeper_done(s->keeper, r->conn, r->send.tag, -ENOTCONN);
		return;
	}
	memset(m, 0, sizeof(*m));
	m->type = WIRE_PORT_MSG;
	memcpy(m->u.port_msg.client, r->client, sizeof(m->u.port_msg.client));
	m->u.port_msg.port = r->send.port;
	m->u.port_msg.seq = ++s->msg_seq;
	m->u.port_msg.len = (uint16_t)r->len;
	memcpy(m->u.port_msg.data, r->payload, r->len);
	ret = sess_send_wire(s, m);
	keeper_done(s->keeper, r->conn, r->send.tag, ret < 0 ? ret : 0);
}

static void status(struct session *s, const struct keeper_req *r)
{
	struct handoff *h = malloc(sizeof(*h));
	char *buf = malloc(HANDOFF_TEXT_MAX);
	int n = -ENOMEM;

	if (h && buf) {
		sess_fill_handoff(s, h, s->handoff_state, s->handoff_error);
		n = handoff_format_json(h, buf, HANDOFF_TEXT_MAX);
	}
	/* The reply must fit one control message. */
	if (n > FDMSG_PAYLOAD_MAX)
		n = -EMSGSIZE;
	if (n < 0)
		keeper_error(s->keeper, r->conn, n, "cannot format the state");
	else
		keeper_reply(s->keeper, r->conn, CTL_STATUS_REPLY, buf, (uint32_t)n);
	free(h);
	free(buf);
}

static void finish_stop(struct session *s)
{
	if (s->stop_conn)
		keeper_done(s->keeper, s->stop_conn, 0, 0);
	sess_terminate(s);
}

void serve_stop(struct session *s, uint64_t conn, bool restart, uint32_t grace_ms)
{
	if (!s->stopping) {
		s->stopping = true;
		s->stop_deadline = sess_now_ms() + grace_ms;
		log_at(s->log, LOG_NOTE, "stopping%s: telling %d client(s), %u ms grace",
		       restart ? " to handshake again" : "", keeper_attached_count(s->keeper),
		       grace_ms);
		tell_all(s, CTL_EV_TERMINATING);
	}
	s->restart = s->restart || restart;
	if (conn)
		s->stop_conn = conn;
	if (keeper_attached_count(s->keeper) == 0)
		finish_stop(s);
}

void serve_requests(struct session *s)
{
	struct keeper_req r;

	/* A bounded batch: the transport gets its turn too. */
	for (int i = 0; i < 64 && !s->finished && keeper_next(s->keeper, &r) == 1; i++) {
		switch (r.type) {
		case KREQ_ATTACH:
			if (s->stopping)
				keeper_error(s->keeper, r.conn, -ESHUTDOWN, "the keeper is stopping");
			else
				attach(s, &r);
			break;
		case KREQ_WRITE:
		case KREQ_READ:
			rw(s, &r, r.type == KREQ_READ);
			break;
		case KREQ_SEND:
			send_msg(s, &r);
			break;
		case KREQ_STATUS:
			status(s, &r);
			break;
		case KREQ_STOP:
			serve_stop(s, r.conn, r.stop.restart != 0, r.stop.grace_ms);
			break;
		case KREQ_DETACHED:
			log_at(s->log, LOG_STEP, "pid %d detached from client %s", (int)r.pid, r.client);
			if (s->stopping && keeper_attached_count(s->keeper) == 0)
				finish_stop(s);
			break;
		}
	}
}

/* --- completions and the partner's messages --------------------------------- */

void serve_op_done(struct session *s, uint32_t slot, int status)
{
	struct client_op *op = slot < CLIENT_OPS_MAX ? &s->cops[slot] : NULL;

	if (!op || !op->used)
		return;
	op->used = false;
	if (op->notify && status == 0) {
		struct wire_msg *m = s->decoded;

		memset(m, 0, sizeof(*m));
		m->type = WIRE_PORT_NOTIFY;
		memcpy(m->u.notify.client, op->client, sizeof(m->u.notify.client));
		m->u.notify.port = op->port;
		m->u.notify.off = op->remote_off;
		m->u.notify.len = op->len;
		/* Sent after the write completed: on the same connection, it
		 * reaches the partner after the bytes have landed. */
		sess_send_wire(s, m);
	}
	if (s->keeper)
		keeper_done(s->keeper, op->conn, op->tag, status);
}

void serve_partner_msg(struct session *s, const struct wire_msg *m)
{
	const char *client = m->type == WIRE_PORT_MSG ? m->u.port_msg.client : m->u.notify.client;
	uint16_t port = m->type == WIRE_PORT_MSG ? m->u.port_msg.port : m->u.notify.port;
	struct port_client *pc = ports_find(s->ports, client);

	if (!pc || port >= pc->nports) {
		log_at(s->log, LOG_ERR, "partner sent %s for client %s port %u, which has no port here",
		       wire_type_name(m->type), client, port);
		return;
	}
	if (m->type == WIRE_PORT_MSG) {
		if (s->keeper)
			keeper_msg(s->keeper, client, port, m->u.port_msg.data, m->u.port_msg.len);
	} else {
		uint64_t one = 1;

		if (write(pc->port[port].eventfd, &one, sizeof(one)) != sizeof(one))
			log_at(s->log, LOG_DEBUG, "notify %s port %u: %s", client, port,
			       strerror(errno));
	}
}

/* --- the heartbeat --------------------------------------------------------------
 * Connected, we READ the partner's own section every heartbeat interval;
 * its counter must move at least once every heartbeat-misses intervals.  A
 * partner that hangs, or whose machine dies without a word, is found here;
 * one whose process dies is usually found sooner by its transport. */

static uint64_t hb_limit(const struct session *s)
{
	return (uint64_t)s->cfg->heartbeat_ms * s->cfg->heartbeat_misses;
}

void serve_heartbeat_done(struct session *s, int status)
{
	struct status_own o;
	uint64_t now = sess_now_ms();

	s->hb_posted = false;
	s->hb_next = now + s->cfg->heartbeat_ms;
	if (status < 0 || !s->handoff_connected)
		return;
	if (status_decode_own(s->scratch + SCRATCH_HEARTBEAT, STATUS_OWN_SIZE, &o, NULL) < 0)
		return;  /* caught mid-update: the next look will do */
	if (o.epoch != s->hs.peer_epoch) {
		sess_lose_partner(s, "its status block shows another epoch");
		return;
	}
	/* A partner whose handshake left the session (it lost us, while we
	 * did not lose it) must be met again: otherwise we would wait on,
	 * connected to a partner that is not. */
	if (o.state != HS_CONNECTED) {
		char why[96];

		snprintf(why, sizeof(why), "its handshake is in %s, not connected",
			 hs_state_name(o.state));
		sess_lose_partner(s, why);
		return;
	}
	if (o.heartbeat != s->hb_last) {
		s->hb_last = o.heartbeat;
		s->hb_seen_at = now;
	}
}

void serve_timers(struct session *s, uint64_t now)
{
	if (s->handoff_connected && !s->stopping) {
		if (now - s->hb_seen_at > hb_limit(s)) {
			char why[96];

			snprintf(why, sizeof(why), "no heartbeat for %llu ms",
				 (unsigned long long)(now - s->hb_seen_at));
			sess_lose_partner(s, why);
			return;
		}
		if (!s->hb_posted && now >= s->hb_next && s->link_up &&
		    tp_read(s->tp, &s->peer_win, STATUS_OWN_OFFSET, s->scratch + SCRATCH_HEARTBEAT,
			    STATUS_OWN_SIZE, (uint64_t)OP_HEARTBEAT << 32) == 0)
			s->hb_posted = true;
	}
	if (s->stopping && now >= s->stop_deadline && !s->finished) {
		log_at(s->log, LOG_ERR, "%d client(s) still attached after the grace time",
		       keeper_attached_count(s->keeper));
		finish_stop(s);
	}
}

uint64_t serve_next_deadline(const struct session *s, uint64_t next)
{
	if (s->handoff_connected) {
		if (!s->hb_posted && s->hb_next < next)
			next = s->hb_next;
		if (s->hb_seen_at + hb_limit(s) + 1 < next)
			next = s->hb_seen_at + hb_limit(s) + 1;
	}
	if (s->stopping && s->stop_deadline < next)
		next = s->stop_deadline;
	return next;
}
