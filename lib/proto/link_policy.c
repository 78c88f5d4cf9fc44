#include "proto/link_policy.h"

#include <string.h>

const char *link_state_name(enum link_state s)
{
	static const char *const names[] = {
		[LINK_DOWN] = "down",
		[LINK_CONNECTING] = "connecting",
		[LINK_VERIFYING] = "verifying",
		[LINK_DAMPED] = "damped",
		[LINK_UP] = "up",
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* Every state change goes through here: its time is the status's. */
static void enter(struct link_health *l, enum link_state st, uint64_t now)
{
	if (l->state != st)
		l->changed_at = now;
	l->state = st;
}

void link_connecting(struct link_health *l, uint64_t now)
{
	enter(l, LINK_CONNECTING, now);
}

void link_connected(struct link_health *l, uint64_t now)
{
	enter(l, LINK_VERIFYING, now);
}

void link_rtt(struct link_health *l, uint64_t ms)
{
	l->rtt_last_ms = ms;
	if (ms > l->rtt_max_ms)
		l->rtt_max_ms = ms;
	l->rtt_sum_ms += ms;
	l->rtt_count++;
}

bool link_verified(struct link_health *l, uint64_t now, uint32_t damp_ms)
{
	if (l->state != LINK_VERIFYING)
		return l->state == LINK_UP;
	if (l->failed_before && damp_ms) {
		enter(l, LINK_DAMPED, now);
		l->damp_until = now + damp_ms;
		return false;
	}
	enter(l, LINK_UP, now);
	return true;
}

void link_failed(struct link_health *l, uint64_t now, uint32_t retry_ms)
{
	/* A failed reconnect attempt is not another "down": only losing a
	 * link that worked counts. */
	if (l->state >= LINK_VERIFYING) {
		l->downs++;
		l->failed_before = true;
	}
	enter(l, LINK_DOWN, now);
	l->retry_at = now + retry_ms;
	l->out_bytes = 0;
}

bool link_tick(struct link_health *l, uint64_t now)
{
	if (l->state != LINK_DAMPED || now < l->damp_until)
		return false;
	enter(l, LINK_UP, now);
	return true;
}

int links_pick(const struct link_health *l, const int *nports, int n, enum link_policy pol)
{
	int best = -1;

	for (int i = 0; i < n; i++) {
		if (l[i].state != LINK_UP)
			continue;
		if (best < 0) {
			best = i;
		} else if (pol == LINK_POLICY_STANDBY) {
			if (l[i].priority > l[best].priority)
				best = i;
		} else if (l[i].out_bytes < l[best].out_bytes ||
			   (l[i].out_bytes == l[best].out_bytes && nports[i] < nports[best])) {
			best = i;
		}
	}
	return best;
}

int links_assign(const struct link_health *l, int n, enum link_policy pol, const uint64_t *load,
		 int nports, int *assign)
{
	int none[CCM_LINKS_MAX] = { 0 }, count[CCM_LINKS_MAX] = { 0 };
	uint64_t sum[CCM_LINKS_MAX] = { 0 };
	int first = links_pick(l, none, n, pol), moved = 0;
	bool done[CCM_PORTS_TOTAL] = { false };

	if (first < 0)
		return -1;
	if (nports > CCM_PORTS_TOTAL)
		nports = CCM_PORTS_TOTAL;
	if (pol == LINK_POLICY_STANDBY) {
		for (int k = 0; k < nports; k++) {
			moved += assign[k] != first;
			assign[k] = first;
		}
		return moved;
	}
	/* Longest processing time first: the heaviest unplaced port goes to
	 * the least loaded link.  Among ports of equal load (idle ones, say)
	 * the one already on the chosen link goes first, so a balanced
	 * assignment stays as it is. */
	for (int placed = 0; placed < nports; placed++) {
		int to = -1, pick = -1;

		for (int i = 0; i < n; i++) {
			if (l[i].state != LINK_UP)
				continue;
			if (to < 0 || sum[i] < sum[to] || (sum[i] == sum[to] && count[i] < count[to]))
				to = i;
		}
		for (int k = 0; k < nports; k++) {
			if (done[k])
				continue;
			if (pick < 0 || load[k] > load[pick] ||
			    (load[k] == load[pick] && assign[k] == to && assign[pick] != to))
				pick = k;
		}
		done[pick] = true;
		moved += assign[pick] != to;
		assign[pick] = to;
		sum[to] += load[pick];
		count[to]++;
	}
	return moved;
}
