#include "daemon/timers.h"

void timer_set(struct timers *t, int id, uint64_t at)
{
	/* 0 means stopped: a deadline at time 0 is due at once anyway. */
	t->at[id] = at ? at : 1;
}

void timer_stop(struct timers *t, int id)
{
	t->at[id] = 0;
}

bool timer_armed(const struct timers *t, int id)
{
	return t->at[id] != 0;
}

bool timer_due(struct timers *t, int id, uint64_t now)
{
	if (!t->at[id] || t->at[id] > now)
		return false;
	t->at[id] = 0;
	return true;
}

uint64_t timer_next(const struct timers *t)
{
	uint64_t next = UINT64_MAX;

	for (int i = 0; i < T_COUNT; i++)
		if (t->at[i] && t->at[i] < next)
			next = t->at[i];
	return next;
}

const char *timer_name(int id)
{
	static const char *const names[] = {
		"hs", "hs-op", "ready", "exchange", "beat", "give-up", "mailbox", "partner-hb",
		"resend", "links-write", "stop", "handoff", "hold",
	};

	if (id >= 0 && id < T_LINK_CONNECT)
		return names[id];
	if (id < T_LINK_RETRY)
		return "link-connect";
	if (id < T_LINK_DAMP)
		return "link-retry";
	if (id < T_LINK_HB)
		return "link-damp";
	if (id < T_LINK_LATE)
		return "link-hb";
	return id < T_COUNT ? "link-late" : "?";
}
