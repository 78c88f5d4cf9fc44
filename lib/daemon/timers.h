/* timers: every deadline of a keeper in one table.
 *
 * A deadline is a slot, armed with the monotonic time (ms) it is due at
 * or stopped.  The turn fires each due slot once (timer_due disarms it)
 * and its handler re-arms it if it is still wanted, so a due deadline is
 * always consumed: none can keep the loop's poll timeout at zero.  The
 * loop's timeout is timer_next(): adding a deadline is one enum line and
 * its handler, never a second list to keep in step with the first. */
#ifndef CCM_TIMERS_H
#define CCM_TIMERS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/limits.h"

enum timer_id {
	T_HS,          /* the handshake machine's wait or back-off */
	T_HS_OP,       /* its READ or WRITE must have completed */
	T_READY,       /* our "ready" write must have completed */
	T_EXCHANGE,    /* the exchange must have completed */
	T_BEAT,        /* advance our heartbeat counter */
	T_GIVE_UP,     /* --timeout: no partner yet, the boot goes on degraded */
	T_MAILBOX,     /* look at our mailbox: one-sided writes wake nobody */
	T_PARTNER_HB,  /* the partner's counter must have moved */
	T_RESEND,      /* unacknowledged messages are due again */
	T_LINKS_WRITE, /* refresh the handoff's link counters */
	T_STOP,        /* the clients' grace time is over */
	T_HANDOFF,     /* a handoff write failed: write it again, whole */
	T_HOLD,        /* a partner's message waited msg-hold-ms for our client */
	/* One of each per link: T_LINK_x + link. */
	T_LINK_CONNECT,                       /* its connect must have completed */
	T_LINK_RETRY = T_LINK_CONNECT + CCM_LINKS_MAX, /* DOWN: connect again */
	T_LINK_DAMP = T_LINK_RETRY + CCM_LINKS_MAX,    /* DAMPED: UP */
	T_LINK_HB = T_LINK_DAMP + CCM_LINKS_MAX,       /* its heartbeat READ is due */
	T_LINK_LATE = T_LINK_HB + CCM_LINKS_MAX,       /* its heartbeat is late */
	T_COUNT = T_LINK_LATE + CCM_LINKS_MAX,
};

struct timers {
	uint64_t at[T_COUNT];  /* 0: stopped */
};

void timer_set(struct timers *t, int id, uint64_t at);
void timer_stop(struct timers *t, int id);
bool timer_armed(const struct timers *t, int id);
/* Armed and due at now: disarm it and say so. */
bool timer_due(struct timers *t, int id, uint64_t now);
/* The earliest armed deadline; UINT64_MAX when none is. */
uint64_t timer_next(const struct timers *t);
const char *timer_name(int id);

#endif
