/* links: the state of each interconnect between the two nodes, and the
 * policy that says which link carries which port.  Pure: no I/O, the time
 * comes in as an argument, so every rule here is tested on its own.
 *
 * A link's life:
 *
 *   DOWN --connect--> CONNECTING --connected--> VERIFYING --verified--> UP
 *     ^                   |                        |                    |
 *     +---- failed -------+------------------------+--------------------+
 *                                       verified after a failure: DAMPED
 *                                       until it has stayed up damp-ms, then UP
 *
 * VERIFYING: our connection is up, and the partner's status block READ over
 * it must show the session's partner (node, epoch, connected) before the
 * link may carry anything.  Only UP links carry ports. */
#ifndef CCM_LINKS_H
#define CCM_LINKS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/limits.h"

/* How ports spread over the links that are up (the link-policy key). */
enum link_policy {
	LINK_POLICY_BALANCE = 0,
	LINK_POLICY_STANDBY = 1,
};

enum link_state {
	LINK_DOWN = 0,
	LINK_CONNECTING,
	LINK_VERIFYING,
	LINK_DAMPED,
	LINK_UP,
};

struct link_health {
	enum link_state state;
	uint8_t priority;
	bool failed_before;      /* it has gone down once: damp it when back */
	uint64_t damp_until;     /* DAMPED: UP from then on */
	uint64_t retry_at;       /* DOWN: when to try connecting again */
	uint64_t out_bytes;      /* one-sided bytes in flight on it */
	/* Counters, for the status (and the metrics made from it) */
	uint64_t ops, bytes, msgs, downs, reissued;
	uint64_t changed_at;     /* ms: when its state last changed */
	/* Its heartbeat READs' round trips, in ms (the keeper's clock) */
	uint64_t rtt_last_ms, rtt_max_ms, rtt_sum_ms, rtt_count;
};

const char *link_state_name(enum link_state s);

void link_connecting(struct link_health *l, uint64_t now);
void link_connected(struct link_health *l, uint64_t now);
/* A heartbeat READ on it came back after ms. */
void link_rtt(struct link_health *l, uint64_t ms);
/* The partner checked out over it.  Returns true when it is UP now (false:
 * DAMPED until now + damp_ms). */
bool link_verified(struct link_health *l, uint64_t now, uint32_t damp_ms);
/* It failed (an error, a disconnect, a late heartbeat): DOWN, and counted
 * once per time it had been up.  Connect again at now + retry_ms. */
void link_failed(struct link_health *l, uint64_t now, uint32_t retry_ms);
/* DAMPED and due: UP.  Returns true when it became UP. */
bool link_tick(struct link_health *l, uint64_t now);

/* The link a port with nothing to keep it where it is should go to: an UP
 * link; balance: the one with the fewest bytes in flight (then the fewest
 * ports, then the lowest index); standby: the highest priority (then the
 * lowest index).  nports[i]: ports link i carries now.  -1 if none is UP. */
int links_pick(const struct link_health *l, const int *nports, int n, enum link_policy pol);

/* Spread ports over the UP links.  load[k] is port k's recent traffic;
 * assign[k] gets its link.  balance: heaviest port first onto the link
 * with the least load so far (ties: fewer ports, lower index), which keeps
 * the busiest links apart; standby: all on links_pick's choice.  Ports
 * whose assign[k] is already a good answer keep it where that costs no
 * balance.  Returns the number of ports whose link changed; -1 if no link
 * is UP (assign untouched). */
int links_assign(const struct link_health *l, int n, enum link_policy pol, const uint64_t *load,
		 int nports, int *assign);

#endif
