/* linkset: the keeper's links to the partner -- which link carries which
 * port (spread again when a link comes back), each link's heartbeat READ
 * and when it is late, our windows over each link told (LINK_JOIN), and
 * the handoff's view of them.  It calls session_base.c only. */
#include <string.h>

#include "base/log.h"
#include "daemon/session_int.h"

/* --- the links --------------------------------------------------------------- */

/* The link that carries port p now; it is given one when it has none, or
 * when its link stopped carrying. */
int linkset_port_link(struct session *s, struct port *p)
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

/* Spread the ports over the UP links again: a link came (back). */
void linkset_rebalance(struct session *s)
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

bool linkset_other_up(const struct session *s, int except)
{
	for (int i = 0; i < s->nlinks; i++)
		if (i != except && s->links[i].h.state == LINK_UP)
			return true;
	return false;
}

/* The handoff shows the links: rewrite it when one changes state. */
void linkset_changed(struct session *s)
{
	sess_refresh_handoff(s);
	timer_set(&s->timers, T_LINKS_WRITE, s->now + LINKS_REFRESH_MS);
}

static uint64_t link_hb_limit(const struct session *s)
{
	return (uint64_t)s->cfg->link_heartbeat_ms * s->cfg->link_misses;
}

/* A heartbeat is wanted on link li: it is late once neither it nor
 * anything else has completed on the link for link-misses intervals. */
void linkset_arm_late(struct session *s, int li)
{
	const struct peer_link *l = &s->links[li];
	uint64_t from = l->hb_wanted_since > l->last_progress ? l->hb_wanted_since
							      : l->last_progress;

	if (l->hb_wanted_since)
		timer_set(&s->timers, T_LINK_LATE + li, from + link_hb_limit(s) + 1);
}

void linkset_connected(struct session *s, int li)
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

void linkset_progress(struct session *s, int li)
{
	/* The late deadline moves with it; its handler looks again. */
	s->links[li].last_progress = s->now;
}

void linkset_send_joins(struct session *s)
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
uint32_t linkset_hb_read_len(const struct session *s)
{
	for (int c = 0; c < s->ports->nclients; c++)
		for (int i = 0; i < s->ports->c[c].nports; i++)
			if (s->ports->c[c].port[i].rel.rx_run_len)
				return ECHO_AREA_OFFSET + 4u * s->ex->peer_ports.count;
	return ACK_AREA_OFFSET + 8u * s->ex->peer_ports.count;
}

void linkset_post_heartbeat(struct session *s, int li, uint64_t now)
{
	struct peer_link *l = &s->links[li];
	uint8_t *buf = s->scratch + SCRATCH_HEARTBEAT + (size_t)li * LINK_HB_MAX;

	if (!l->hb_wanted_since) {
		l->hb_wanted_since = now;
		linkset_arm_late(s, li);
	}
	/* A link whose queue is full takes no READ: it is late all the same. */
	if (tp_read(l->tp, &l->peer_win, 0, buf, linkset_hb_read_len(s),
		    ((uint64_t)OP_HEARTBEAT << 32) | (uint32_t)li) == 0) {
		l->hb_posted = true;
		l->hb_posted_at = now;
	} else
		timer_set(&s->timers, T_LINK_HB + li, now + s->cfg->link_heartbeat_ms);
}

/* Late: its heartbeat has been due for link-misses intervals, and nothing
 * else completed on it meanwhile either (a link busy with bulk data may
 * queue the heartbeat behind it, but it moves). */
bool linkset_late(const struct session *s, const struct peer_link *l, uint64_t now)
{
	return l->hb_wanted_since && now - l->hb_wanted_since > link_hb_limit(s) &&
	       now - l->last_progress > link_hb_limit(s);
}

/* The handoff's link counters, rewritten now and then when they moved: a
 * quiet keeper writes nothing. */
void linkset_refresh(struct session *s)
{
	uint64_t sum = 0;

	/* Heartbeats count too: their round trips are in the metrics. */
	for (int i = 0; i < s->nlinks; i++)
		sum += s->links[i].h.ops + s->links[i].h.msgs + s->links[i].h.rtt_count;
	if (sum != s->links_written_sum)
		linkset_changed(s);
	else
		timer_set(&s->timers, T_LINKS_WRITE, s->now + LINKS_REFRESH_MS);
	s->links_written_sum = sum;
}
