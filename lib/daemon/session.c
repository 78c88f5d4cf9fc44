/* session: one turn of the daemon -- the transports' events and the timers,
 * each handed to the part it concerns (peer.c until both sides are ready,
 * the keeper's files after), and the session's set-up and tear-down.  See
 * session.h. */
#include "daemon/session.h"

#include <errno.h>
#include <fcntl.h>
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
		peer_maybe_finish_once(s);
		return;
	}
	if (purpose == OP_HEARTBEAT) {
		char lost_why[96];

		if (serve_heartbeat_done(s, link, tev->status, lost_why, sizeof(lost_why)))
			peer_lose(s, lost_why);
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
		peer_op_slot_free(s);
		peer_hs_feed(s, &ev);
		return;
	}
	if (s->op.kind == HS_ACT_WRITE) {
		struct hs_event ev = { .type = HS_EV_WRITE_OK, .seq = seq };

		peer_op_slot_free(s);
		peer_hs_feed(s, &ev);
		return;
	}
	{
		struct status_own o;
		struct errbuf e;
		struct hs_event ev = { .type = HS_EV_READ_FAIL, .seq = seq };
		int r = status_decode_own(s->scratch + SCRATCH_READ, STATUS_OWN_SIZE, &o, &e);

		if (r == -EAGAIN && s->op.torn_retries++ < TORN_READ_RETRIES && peer_post_hs_op(s) == 0)
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
		peer_op_slot_free(s);
		peer_hs_feed(s, &ev);
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
			linkset_connected(s, li);
			break;
		}
		if (s->hs_link < 0)
			s->hs_link = li;
		if (s->op.kind && !s->op.posted && peer_post_hs_op(s) < 0)
			peer_fail_hs_op(s);
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
		if (s->op.kind && !s->op.posted && s->hs_link < 0 && !peer_any_connecting(s))
			peer_fail_hs_op(s);
		break;
	case TP_EV_OP_DONE:
		if (ev->status == 0)
			linkset_progress(s, li);
		on_op_done(s, li, ev);
		break;
	case TP_EV_MESSAGE:
		/* The mailbox may have been written just before this message
		 * on the same connection: let the machine see it first. */
		peer_sync_mailbox(s);
		if (sess_ex_started(s))
			peer_handle_message(s, li, ev->msg, ev->msg_len);
		else
			peer_queue_message(s, li, ev->msg, ev->msg_len);
		break;
	case TP_EV_DISCONNECTED:
		l->tp_up = l->connecting = false;
		log_at(s->log, LOG_DEBUG, "link %d to the partner down: %s", li,
		       ev_why(ev, why, sizeof(why)));
		if (li == s->hs_link && !sess_connected(s)) {
			/* What the partner wrote before it went counts first:
			 * its "ready" may be in our mailbox. */
			peer_sync_mailbox(s);
			if (sess_ex_started(s))
				peer_check_ready(s);
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
		peer_hs_feed(s, &lost);
		break;
	case TP_EV_PEER_CONNECTED:
		log_at(s->log, LOG_DEBUG, "node %u connected to us on link %d", ev->peer_node, li);
		peer_drop_queue(s, li);
		/* The partner is up: have our own link ready before the
		 * machine (or the keeper) asks for it. */
		sess_link_connect(s, li);
		break;
	case TP_EV_PEER_CLOSED:
		log_at(s->log, LOG_DEBUG, "the partner's connection to us on link %d closed%s%.*s", li,
		       ev->detail[0] ? ": " : "", (int)sizeof(ev->detail), ev->detail);
		peer_drop_queue(s, li);
		/* While one of our own links to the partner is up, it is the
		 * judge: it delivers what the partner answered before it went
		 * (the ready write's completion, say) and then reports the
		 * loss itself.  A partner that finished a --once run is not
		 * lost before we have heard all it said. */
		if (s->hs_link < 0 && !sess_connected(s))
			peer_hs_feed(s, &lost);
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
	notes_handed_off(s, false);
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
			peer_hs_feed(s, &ev);
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
			peer_hs_feed(s, &lost);
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
		peer_sync_mailbox(s);
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

/* A session and its large buffers, allocated as one: each allocation of
 * their sizes is an mmap of its own, and its munmap at the end costs a
 * TLB shootdown -- on virtual machines the largest part of a short
 * connect step.  Pages never touched are never faulted in. */
struct session_mem {
	struct session s;  /* first: the session is the allocation */
	struct exchange ex;
	struct client_set clients;
	struct port_table ports;
	struct wire_msg decoded;
	struct handoff handoff;
	uint8_t msgbuf[CCM_MSG_MAX];
	char text[TEXT_BUF_MAX];
};

static struct session_mem *container_of_session(struct session *s)
{
	return (struct session_mem *)(void *)s;
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
	peer_drop_queue(s, -1);
	if (s->win)
		munmap(s->win, STATUS_WINDOW_SIZE);
	if (s->scratch)
		munmap(s->scratch, SCRATCH_SIZE);
	if (s->state_dirfd >= 0)
		close(s->state_dirfd);
	for (int i = 0; i < AUTH_SLOTS; i++)
		auth_wipe_key(&s->keys.slot[i]);
	free(container_of_session(s));
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

	s->win = map_page(STATUS_WINDOW_SIZE);
	s->scratch = map_page(SCRATCH_SIZE);
	if (!s->win || !s->scratch)
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
	r = peer_create_local_ports(s, e);
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
	struct session_mem *mem = calloc(1, sizeof(*mem));
	struct session *s = mem ? &mem->s : NULL;
	struct hs_event start = { .type = HS_EV_START };
	struct errbuf e;
	int r;

	*out = NULL;
	if (!s) {
		log_at(log, LOG_ERR, "out of memory");
		return CCM_EXIT_FAILURE;
	}
	s->ex = &mem->ex;
	s->clients = &mem->clients;
	s->ports = &mem->ports;
	s->msgbuf = mem->msgbuf;
	s->decoded = &mem->decoded;
	s->handoff_buf = &mem->handoff;
	s->text_buf = mem->text;
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
	peer_hs_feed(s, &start);
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
				peer_sync_mailbox(s);
		} while (n > 0 && !sess_finished(s));
	}
	if (!sess_finished(s) && sess_ex_started(s))
		peer_check_ready(s);
	/* The keeper's socket is only read when it has something: a client's
	 * round trip passes here twice.  It is always read: a client whose
	 * port's window is full is refused with -EAGAIN (send_msg), never
	 * left unread, so one flooding client cannot cut the others off. */
	if (!sess_finished(s) && s->control && control_ready)
		serve_requests(s);
	if (!sess_finished(s))
		channel_send_queued(s);
	if (!sess_finished(s))
		check_timers(s, now);
	notes_tell_changes(s);
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
	notes_tell_changes(s);
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
