/* ports: each client's communication ports.
 *
 * A port is a memory window -- a memfd of the client's requested size,
 * mapped here and exposed on every link's transport so the partner can READ
 * and WRITE it one-sidedly over any interconnect -- plus the partner's
 * matching window, learned in the exchange (PORTS for one link, LINK_JOIN
 * for each other).  The memfd is what a local client later maps (zero
 * copy); the manager keeps owning the transport side.  A port also carries
 * its share of the session's traffic bookkeeping: which link carries it
 * now, what it has in flight, and its message sequence numbers. */
#ifndef CCM_PORTS_H
#define CCM_PORTS_H

#include <stddef.h>
#include <stdint.h>

#include "base/errbuf.h"
#include "base/limits.h"
#include "tp/transport.h"
#include "proto/reliable.h"
#include "proto/wire.h"

struct port {
	int memfd;
	int event;                /* a pipe's read end, the clients': readable
	                             when the partner's write with notify has
	                             landed in this window */
	int event_wr;             /* its write end, ours alone, O_NONBLOCK:
	                             one byte per notify; a full pipe already
	                             says "notified" */
	uint8_t *map;
	struct tp_remote local[CCM_LINKS_MAX];   /* how the partner reaches this
	                                            window over each link */
	struct tp_remote remote[CCM_LINKS_MAX];  /* the partner's matching window */
	unsigned have_remote;     /* bit i: remote[i] is known */

	/* Traffic (the keeper's: keeper.c, channel.c) */
	int link;                 /* the link that carries it; -1 none yet */
	uint64_t load;            /* bytes asked lately (decays), to balance */
	uint64_t rx_given_up;     /* counter: how many of the partner's messages
	                             were given up (msg-hold-ms), for the status */
	/* Its messages: sequence, acks, flow control (proto/reliable.h) */
	struct rel_port rel;
};

struct port_client {
	char name[CCM_NAME_MAX + 1];
	uint16_t nports;
	uint32_t port_size;
	struct port port[CCM_PORTS_MAX];
	uint64_t detached_at;     /* ms: when its last channel went; 0: none
	                             went yet (reliable_give_up) */
};

struct port_table {
	int nclients;
	struct port_client c[CCM_CLIENTS_MAX];
};

/* The port whose message channel r is. */
static inline struct port *port_of_rel(struct rel_port *r)
{
	return (struct port *)(void *)((char *)r - offsetof(struct port, rel));
}

/* A zeroed port_table is empty (and most of its 100 KiB is never touched
 * until ports are made, so allocate it with calloc rather than clear it). */

/* Create nports windows of port_size bytes for client name and expose them
 * on each of the ntp transports (tps[i] is link i).  On failure nothing of
 * this client is left behind. */
int ports_add_client(struct port_table *pt, struct tp *const *tps, int ntp, const char *name,
		     uint16_t nports, uint32_t port_size, struct errbuf *e);

/* Our windows of the shared clients (`shared`: the names both sides have,
 * NULL-terminated) as the partner reaches them over `link`, as PORTS and
 * LINK_JOIN describe them; the entries' order is the same for every link
 * and numbers our ports' slots. */
void ports_to_wire(struct port_table *pt, const char *const *shared, int link,
		   struct wire_ports *out);

/* Take the partner's windows over in->link.  The first (first = 1, from
 * PORTS) starts over: every entry must name one of our shared clients and a
 * port index it has, with the same size; each port exactly once; every
 * port of every shared client must be covered.  The others (LINK_JOIN) must
 * list the same ports in the same order as the first.  Nothing changes when
 * the description is refused. */
int ports_set_remote(struct port_table *pt, const char *const *shared, const struct wire_ports *in,
		     int first, struct errbuf *e);

/* The client's ports, or NULL. */
struct port_client *ports_find(struct port_table *pt, const char *name);

/* Forget the partner's windows and the traffic state (it is gone; new ones
 * come with its PORTS). */
void ports_forget_remote(struct port_table *pt);

/* Unexpose from the ntp transports and release everything. */
void ports_destroy(struct port_table *pt, struct tp *const *tps, int ntp);

#endif
