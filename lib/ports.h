/* ports: each client's communication ports.
 *
 * A port is a memory window -- a memfd of the client's requested size,
 * mapped here and exposed on the transport so the partner can READ and
 * WRITE it one-sidedly -- plus the partner's matching window, learned in the
 * exchange.  The memfd is what a local client later maps (zero copy); the
 * manager keeps owning the transport side. */
#ifndef CCM_PORTS_H
#define CCM_PORTS_H

#include <stdint.h>

#include "errbuf.h"
#include "limits.h"
#include "tp.h"
#include "wire.h"

struct port {
	int memfd;
	int eventfd;              /* signalled when the partner's write with
	                             notify has landed in this window */
	uint8_t *map;
	struct tp_remote local;   /* how the partner reaches this window */
	struct tp_remote remote;  /* the partner's matching window */
	int have_remote;
};

struct port_client {
	char name[CCM_NAME_MAX + 1];
	uint16_t nports;
	uint32_t port_size;
	struct port port[CCM_PORTS_MAX];
};

struct port_table {
	int nclients;
	struct port_client c[CCM_CLIENTS_MAX];
};

/* A zeroed port_table is empty (and most of its 100 KiB is never touched
 * until ports are made, so allocate it with calloc rather than clear it). */

/* Create nports windows of port_size bytes for client name and expose them
 * on t.  On failure nothing of this client is left behind. */
int ports_add_client(struct port_table *pt, struct tp *t, const char *name,
		     uint16_t nports, uint32_t port_size, struct errbuf *e);

/* Our windows of the shared clients (`shared`: the names both sides have,
 * NULL-terminated), as the PORTS message describes them to the partner. */
void ports_to_wire(const struct port_table *pt, const char *const *shared, struct wire_ports *out);

/* Take the partner's PORTS: every entry must name one of our shared clients
 * and a port index it has, with the same size; each port exactly once;
 * every port of every shared client must be covered. */
int ports_set_remote(struct port_table *pt, const char *const *shared, const struct wire_ports *in,
		     struct errbuf *e);

/* The client's ports, or NULL. */
struct port_client *ports_find(struct port_table *pt, const char *name);

/* Release one client's ports. */
void ports_remove_client(struct port_table *pt, struct tp *t, const char *name);

/* Forget the partner's windows (it is gone; new ones come with its PORTS). */
void ports_forget_remote(struct port_table *pt);

/* Unexpose and release everything. */
void ports_destroy(struct port_table *pt, struct tp *t);

#endif
