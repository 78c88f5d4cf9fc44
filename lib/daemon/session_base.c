/* session_base: the ground every daemon file stands on -- the phases and
 * their moves, the handoff and our status block, the session's own frames,
 * a link's connect and failure, the end.  It calls none of them: session.c
 * calls peer.c, which calls the keeper's files (keeper.c on channel.c,
 * linkset.c and notes.c; channel.c on linkset.c), and what the keeper finds that
 * only the peer can act on (the partner lost) it returns
 * (serve_heartbeat_done). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/exit.h"
#include "daemon/ports.h"
#include "daemon/real_root.h"
#include "state/metrics.h"
#include "daemon/session_int.h"

/* --- the handoff ------------------------------------------------------------- */

void sess_fill_handoff(const struct session *s, struct handoff *h, enum handoff_state state,
		       const char *error)
{
	char addr[96];

	memset(h, 0, sizeof(*h));
	h->state = state;
	h->node = s->cfg->node_id;
	h->epoch = s->epoch;
	h->pid = (uint32_t)getpid();
	h->updated = s->wall;
	snprintf(h->transport, sizeof(h->transport), "%s", s->cfg->transport);
	snprintf(h->cluster, sizeof(h->cluster), "%s", s->cfg->cluster);
	snprintf(h->instance, sizeof(h->instance), "%s", s->cfg->instance);
	if (s->keys.n)
		auth_key_id(&s->keys.slot[0], h->key_id);
	if (s->keys.n > 1)
		auth_key_id(&s->keys.slot[1], h->key_accept_id);
	snprintf(h->partner_addr, sizeof(h->partner_addr), "%s",
		 tp_format_addr(&s->link_cfg[0].partner, addr, sizeof(addr)));
	snprintf(h->listen_addr, sizeof(h->listen_addr), "%s",
		 tp_format_addr(&s->link_cfg[0].local, addr, sizeof(addr)));
	snprintf(h->hs_state, sizeof(h->hs_state), "%s", hs_state_name(s->hs.state));
	snprintf(h->error, sizeof(h->error), "%s", error ? error : "");
	if (sess_ex_started(s) && s->ex->version) {
		h->partner_node = s->ex->peer.node_id;
		h->partner_epoch = s->ex->peer.epoch;
		h->version = s->ex->version;
	}
	/* Clients are listed once matched: before that, whether the partner
	 * has them is unknown. */
	handoff_set_clients(h, s->ex->match, sess_ex_started(s) ? s->ex->nmatch : 0, s->clients);
	for (int i = 0; i < h->nclients; i++) {
		struct handoff_client *hc = &h->clients[i];
		const struct port_client *pc = s->ports ? ports_find(s->ports, hc->name) : NULL;

		if (!pc)
			continue;
		hc->attached = s->control && control_has_channel(s->control, hc->name);
		for (int k = 0; k < pc->nports; k++) {
			hc->queued += pc->port[k].rel.rx_pending;
			hc->in_flight += pc->port[k].rel.tx_window;
			hc->given_up += pc->port[k].rx_given_up;
		}
	}
	h->partner_sessions = s->events_told[CTL_EV_PARTNER_READY];
	h->partner_losses = s->events_told[CTL_EV_PARTNER_LOST];
	h->partner_resumes = s->events_told[CTL_EV_PARTNER_BACK];
	h->partner_epoch_changes = s->partner_epoch_changes;
	h->failovers = s->events_told[CTL_EV_LINK_DOWN];
	snprintf(h->link_policy, sizeof(h->link_policy), "%s",
		 config_policy_name(s->cfg->link_policy));
	h->nlinks = s->nlinks;
	for (int i = 0; i < s->nlinks; i++) {
		struct handoff_link *hl = &h->links[i];
		const struct link_health *lh = &s->links[i].h;

		hl->state = lh->state;
		tp_format_addr(&s->link_cfg[i].local, hl->local, sizeof(hl->local));
		tp_format_addr(&s->link_cfg[i].partner, hl->partner, sizeof(hl->partner));
		snprintf(hl->device, sizeof(hl->device), "%s", s->link_cfg[i].device);
		hl->priority = s->link_cfg[i].priority;
		hl->ports = (uint32_t)sess_link_ports(s, i);
		hl->ops = lh->ops;
		hl->bytes = lh->bytes;
		hl->msgs = lh->msgs;
		hl->downs = lh->downs;
		hl->reissued = lh->reissued;
		/* The keeper's monotonic ms, as the wall clock's seconds. */
		if (lh->changed_at && lh->changed_at <= s->now && s->wall > 0)
			hl->changed = (uint64_t)s->wall - (s->now - lh->changed_at) / 1000;
		hl->rtt_last_ms = lh->rtt_last_ms;
		hl->rtt_max_ms = lh->rtt_max_ms;
		hl->rtt_sum_ms = lh->rtt_sum_ms;
		hl->rtt_count = lh->rtt_count;
	}
}

/* The metrics, from the same struct: in the state directory always, and
 * in metrics-dir when one is set.  A failure is logged when it begins and
 * when it ends, not every second. */
static void write_metrics(struct session *s, const struct handoff *h)
{
	const char *instance = s->cfg->instance;
	char *buf = s->text_buf;
	char prom[sizeof("ccm-early@.prom") + CCM_NAME_MAX];
	struct errbuf e;
	int n, r, dfd, err = 0;

	/* Instances may share one metrics-dir: each its own file. */
	if (instance[0])
		snprintf(prom, sizeof(prom), "ccm-early@%s.prom", instance);
	else
		snprintf(prom, sizeof(prom), "%s", METRICS_PROM);
	n = metrics_format(h, instance[0] ? instance : "default", buf, METRICS_TEXT_MAX);
	r = n < 0 ? errbuf_set(&e, n, "cannot format the metrics") :
	    handoff_replace_at(s->state_dirfd, s->state_dir, METRICS_FILE, buf, (size_t)n, false, &e);
	if (r == 0 && s->cfg->metrics_dir[0]) {
		dfd = open(s->cfg->metrics_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		err = dfd < 0 ? errno : 0;
		/* In the initramfs it may not be there yet; after switch_root
		 * it is in the real root. */
		if (err == ENOENT) {
			int moved = real_root_follow(s->opts->real_root, s->log);

			if (moved > 0) {
				dfd = open(s->cfg->metrics_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				err = dfd < 0 ? errno : 0;
			} else if (moved == 0 && s->opts->real_root && s->opts->real_root->proc_fd >= 0) {
				/* Still in the initramfs: not an error yet. */
				return;
			}
		}
		if (dfd < 0) {
			r = errbuf_set(&e, -err, "metrics-dir %s: %s", s->cfg->metrics_dir,
				       strerror(err));
		} else {
			r = handoff_replace_at(dfd, s->cfg->metrics_dir, prom, buf,
					       (size_t)n, false, &e);
			close(dfd);
		}
	}
	if (r < 0 && !s->metrics_failing)
		log_at(s->log, LOG_ERR, "cannot write the metrics: %s (trying again with each update)",
		       e.msg);
	else if (r == 0 && s->metrics_failing)
		log_at(s->log, LOG_NOTE, "metrics written again");
	s->metrics_failing = r < 0;
}

static int write_handoff(struct session *s, enum handoff_state state, const char *error,
			 bool durable)
{
	struct handoff *h = s->handoff_buf;
	struct errbuf e;
	int r;

	if (!h || !s->text_buf)
		return -ENOMEM;  /* only while session_setup failed early */
	s->handoff_state = state;
	snprintf(s->handoff_error, sizeof(s->handoff_error), "%s", error ? error : "");
	sess_fill_handoff(s, h, state, error);
	r = s->opts->handoff_fault ? s->opts->handoff_fault(s->opts->fault_ctx) : 0;
	if (r < 0)
		errbuf_set(&e, r, "%s: %s", s->state_dir, strerror(-r));
	else
		r = handoff_store_at(s->state_dirfd, s->state_dir, h, durable, s->text_buf,
				     TEXT_BUF_MAX, &e);
	write_metrics(s, h);
	/* Every write is the whole state, so the first one that succeeds
	 * after failures makes the file true again; until then the file
	 * still holds the last state written (handoff_replace_at never replaces it
	 * with a partial one), and `status` asks the keeper instead. */
	if (r < 0) {
		log_at(s->log, LOG_ERR, "cannot write the handoff (%s): %s",
		       handoff_state_name(state), e.msg);
		s->handoff_unwritten = true;
		timer_set(&s->timers, T_HANDOFF, s->now + HANDOFF_RETRY_MS);
	} else {
		if (s->handoff_unwritten)
			log_at(s->log, LOG_NOTE, "handoff written again: %s",
			       handoff_state_name(state));
		else
			log_at(s->log, LOG_DEBUG, "handoff written: %s", handoff_state_name(state));
		s->handoff_unwritten = false;
		timer_stop(&s->timers, T_HANDOFF);
	}
	return r;
}

int sess_write_handoff(struct session *s, enum handoff_state state, const char *error)
{
	return write_handoff(s, state, error, true);
}

int sess_refresh_handoff(struct session *s)
{
	return write_handoff(s, s->handoff_state, s->handoff_error[0] ? s->handoff_error : NULL,
			     false);
}

/* --- the status block -------------------------------------------------------- */

void sess_publish_own(struct session *s)
{
	struct status_own o = {
		.state = (uint8_t)s->hs.state,
		.stage = s->stage,
		.node_id = s->cfg->node_id,
		.epoch = s->epoch,
		.heartbeat = s->heartbeat,
	};

	status_encode_own(&o, s->win + STATUS_OWN_OFFSET);
}

/* --- the session's own frames ------------------------------------------------ */

/* Encode a message of ours into s->msgbuf, stamped with both rounds. */
int sess_encode(struct session *s, struct wire_msg *m)
{
	m->round = s->round;
	m->peer_round = s->peer_round;
	return wire_encode(m, s->msgbuf, CCM_MSG_MAX);
}

int sess_send_on(struct session *s, int link, const uint8_t *frame, uint32_t len)
{
	if (link < 0 || link >= s->nlinks || !s->links[link].tp_up)
		return -ENOTCONN;
	return tp_send(s->links[link].tp, frame, len);
}

/* A message of the session's own (not a client's): over the link the
 * handshake ran on. */
int sess_send_wire(struct session *s, struct wire_msg *m)
{
	int n = sess_encode(s, m);

	return n < 0 ? n : sess_send_on(s, s->hs_link, s->msgbuf, (uint32_t)n);
}

/* The names of the clients both sides have, NULL-terminated. */
void sess_shared_names(const struct session *s, const char *names[2 * CCM_CLIENTS_MAX + 1])
{
	int n = 0;

	for (int i = 0; i < s->ex->nmatch; i++)
		if (s->ex->match[i].status == MATCH_OK)
			names[n++] = s->ex->match[i].name;
	names[n] = NULL;
}

/* --- the links ---------------------------------------------------------------- */

int sess_link_ports(const struct session *s, int link)
{
	int n = 0;

	for (int c = 0; c < s->ports->nclients; c++)
		for (int i = 0; i < s->ports->c[c].nports; i++)
			n += s->ports->c[c].port[i].link == link;
	return n;
}

void sess_link_connect(struct session *s, int i)
{
	struct peer_link *l = &s->links[i];
	int r;

	if (l->tp_up || l->connecting)
		return;
	r = tp_connect(l->tp);
	if (r < 0 && r != -EALREADY) {
		log_at(s->log, LOG_DEBUG, "link %d: connect: %s", i, strerror(-r));
		return;
	}
	l->connecting = true;
	link_connecting(&l->h, s->now);
	timer_set(&s->timers, T_LINK_CONNECT + i, s->now + CONNECT_TIMEOUT_MS);
}

/* A link failed: DOWN, and (connected) connect again in a while. */
void sess_link_down(struct session *s, int li)
{
	link_failed(&s->links[li].h, s->now, LINK_RETRY_MS);
	timer_set(&s->timers, T_LINK_RETRY + li, s->links[li].h.retry_at);
}

/* --- the phases ------------------------------------------------------------------ */

const char *peer_phase_name(enum peer_phase p)
{
	static const char *const names[] = { "handshaking", "exchanging", "connected",
					     "unreachable" };

	return (unsigned)p < sizeof(names) / sizeof(names[0]) ? names[p] : "?";
}

static const char *daemon_phase_name(enum daemon_phase p)
{
	static const char *const names[] = { "starting", "serving", "stopping", "finished" };

	return (unsigned)p < sizeof(names) / sizeof(names[0]) ? names[p] : "?";
}

#define TO(p) (1u << (p))

/* The moves each phase allows (session_int.h draws them). */
static const unsigned peer_moves[] = {
	[PEER_HANDSHAKING] = TO(PEER_EXCHANGING),
	[PEER_EXCHANGING] = TO(PEER_CONNECTED) | TO(PEER_HANDSHAKING),
	[PEER_CONNECTED] = TO(PEER_UNREACHABLE) | TO(PEER_HANDSHAKING),
	[PEER_UNREACHABLE] = TO(PEER_CONNECTED) | TO(PEER_HANDSHAKING),
};

static const unsigned daemon_moves[] = {
	[DAEMON_STARTING] = TO(DAEMON_SERVING) | TO(DAEMON_STOPPING) | TO(DAEMON_FINISHED),
	[DAEMON_SERVING] = TO(DAEMON_STOPPING) | TO(DAEMON_FINISHED),
	[DAEMON_STOPPING] = TO(DAEMON_FINISHED),
	[DAEMON_FINISHED] = 0,
};

/* A move the tables do not allow is a bug here, not the partner's doing:
 * say so loudly (the simulator fails on it), and make it anyway, so the
 * keeper goes on as the code asked. */
void sess_peer_enter(struct session *s, enum peer_phase to)
{
	if (!(peer_moves[s->peer] & TO(to)))
		log_at(s->log, LOG_ERR, "internal error: session %s -> %s is not a move",
		       peer_phase_name(s->peer), peer_phase_name(to));
	log_at(s->log, LOG_DEBUG, "session %s -> %s", peer_phase_name(s->peer),
	       peer_phase_name(to));
	s->peer = to;
}

void sess_daemon_enter(struct session *s, enum daemon_phase to)
{
	if (!(daemon_moves[s->daemon] & TO(to)))
		log_at(s->log, LOG_ERR, "internal error: keeper %s -> %s is not a move",
		       daemon_phase_name(s->daemon), daemon_phase_name(to));
	log_at(s->log, LOG_DEBUG, "keeper %s -> %s", daemon_phase_name(s->daemon),
	       daemon_phase_name(to));
	s->daemon = to;
}

#undef TO

/* --- the end ------------------------------------------------------------------ */

void sess_finish(struct session *s, int code, const char *error)
{
	if (sess_finished(s))
		return;
	sess_daemon_enter(s, DAEMON_FINISHED);
	s->exit_code = code;
	if (code == CCM_EXIT_OK)
		return;
	/* Said where whoever ran us looks first, not only in the handoff. */
	if (error && *error)
		log_at(s->log, LOG_ERR, "giving up: %s", error);
	sess_write_handoff(s, HANDOFF_ERROR, error);
}

void sess_terminate(struct session *s)
{
	struct wire_msg bye = { .type = WIRE_BYE };
	int n;

	log_at(s->log, LOG_NOTE, "terminating");
	s->stage = STAGE_TERMINATING;
	sess_publish_own(s);
	if (s->hs_link >= 0 && sess_ex_started(s)) {
		n = sess_encode(s, &bye);
		if (n > 0)
			sess_send_on(s, s->hs_link, s->msgbuf, (uint32_t)n);
	}
	sess_write_handoff(s, HANDOFF_TERMINATED, NULL);
	sess_daemon_enter(s, DAEMON_FINISHED);
	s->exit_code = s->restart ? CCM_SESSION_RESTART : CCM_EXIT_OK;
}

/* --- the keys ----------------------------------------------------------------- */

/* psk-file into the first slot; psk-accept-file, if the file exists, into
 * the second. */
int sess_load_keys(const struct ccm_config *cfg, struct auth_keyring *r, struct errbuf *e)
{
	int rc;

	memset(r, 0, sizeof(*r));
	if (!cfg->psk_file[0])
		return 0;
	rc = auth_load_key(cfg->psk_file, &r->slot[0], e);
	if (rc < 0)
		return rc;
	r->n = 1;
	if (!cfg->psk_accept_file[0])
		return 0;
	rc = auth_load_key(cfg->psk_accept_file, &r->slot[1], e);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0) {
		auth_wipe_key(&r->slot[0]);
		r->n = 0;
		return rc;
	}
	r->n = 2;
	return 0;
}

int session_reload_keys(struct session *s, struct errbuf *e)
{
	struct auth_keyring r;
	char id0[AUTH_KEY_ID_LEN + 1], id1[AUTH_KEY_ID_LEN + 1] = "";
	int rc;

	if (!s->cfg->psk_file[0]) {
		log_at(s->log, LOG_NOTE, "no psk-file is configured: no key to read again");
		return errbuf_set(e, -ENOKEY, "no psk-file is configured: no key to read again");
	}
	(void)real_root_follow(s->opts->real_root, s->log);  /* the real root's files */
	rc = sess_load_keys(s->cfg, &r, e);
	if (rc < 0) {
		log_at(s->log, LOG_ERR, "keys not read again; the ones in use stay: %s", e->msg);
		return rc;
	}
	/* In place: every link's transport reads them at its next greeting;
	 * connections already up keep their own keys. */
	s->keys = r;
	for (int i = 0; i < AUTH_SLOTS; i++)
		auth_wipe_key(&r.slot[i]);
	auth_key_id(&s->keys.slot[0], id0);
	if (s->keys.n > 1)
		auth_key_id(&s->keys.slot[1], id1);
	log_at(s->log, LOG_NOTE, "keys read again: proving with id %s%s%s", id0,
	       id1[0] ? ", also accepting id " : "", id1);
	sess_refresh_handoff(s);
	return 0;
}

/* --- randomness --------------------------------------------------------------- */

/* Random bytes: the kernel's, or the simulator's seeded ones. */
int sess_random(struct session *s, void *buf, size_t len)
{
	if (s->opts->random) {
		s->opts->random(s->opts->random_ctx, buf, len);
		return 0;
	}
	for (size_t got = 0; got < len;) {
		ssize_t n = getrandom((uint8_t *)buf + got, len - got, 0);

		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			got += (size_t)n;
	}
	return 0;
}
