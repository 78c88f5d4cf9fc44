/* tp/mem: the in-memory transport, for the deterministic simulator.
 *
 * Every mem transport of one process joins a struct tp_mem_net: the
 * simulated interconnect.  A transport is created with tp_mem_ops (through
 * tp_lookup("mem")) and a tp_config whose `net` names the network; it
 * listens at cfg->local and connects to cfg->partner, both looked up by
 * (host, port) in the network's directory.  No socket, no thread, no clock:
 * the network holds everything in flight with the virtual time it is due,
 * and delivers it when the simulator calls tp_mem_net_advance().
 *
 * It gives the layers above exactly what tcp and rdma give them:
 *   - RC ordering: on one connection, the operations and messages of one
 *     direction arrive in the order posted, and their completions come
 *     back in that order.  Nothing is duplicated or reordered.
 *   - a READ or WRITE is applied to the target's exposed memory when it
 *     arrives (bounds, key and write permission checked there, as a NIC
 *     does: -EINVAL unknown key or local-only region, -EFAULT out of
 *     bounds, -EACCES write to a read-only region); its completion comes
 *     back one latency later.
 *   - a bounded send queue: at most 4 messages of one connection on their
 *     way (rdma's send slots); tp_send says -EBUSY beyond, until one lands.
 *   - connections: tp_connect answers TP_EV_CONNECTED (with the partner's
 *     status window and node id) or TP_EV_CONNECT_FAILED (-ECONNREFUSED:
 *     nobody listens there); the listener sees TP_EV_PEER_CONNECTED, and
 *     the newest connection to it is the partner's current one: messages
 *     from an older one are dropped, as tcp and rdma drop them, and only
 *     the current one's close is reported (TP_EV_PEER_CLOSED).
 *   - tp_disconnect, a failed connection, or the partner destroyed:
 *     every operation still posted completes with an error status, in
 *     order, then TP_EV_DISCONNECTED.  It is an abort: what had not
 *     arrived yet, either way, never does (tcp closes with SO_LINGER 0;
 *     a destroyed queue pair retransmits nothing).  A WRITE that had
 *     already arrived stays written (an RDMA write may land and still
 *     complete in error).
 *
 * Faults, all of which a real interconnect can produce:
 *   - latency: each delivery takes a delay drawn from [min, max] us
 *     (the network's own generator, seeded: same seed, same delays).
 *   - a cut host (a cable pulled at that address): nothing crosses to or
 *     from it; what is in flight waits (TCP and RC retransmit), and a
 *     connection with something outstanding that stays cut for detect_us
 *     fails (TCP's user timeout, RC's retry limit).  Restored before that,
 *     everything arrives late but whole.
 *   - a frozen node (a stalled VM): the simulator stops running it; with
 *     nic_serves = 0 (tcp) the transport does not serve the partner's
 *     READs, WRITEs and connection requests meanwhile (they wait, and are
 *     served once it thaws); with nic_serves = 1 (rdma) the NIC goes on
 *     serving READs and WRITEs, and only connection requests wait.
 *   - a node destroyed (a crash): tp_destroy of its transports; their
 *     partners' connections fail after detect_us.
 *   - a replay (tp_mem_net_replay): what a node sent first on an earlier
 *     connection arrives again on its current one.  Neither transport
 *     does that by itself; a host on the wire can without a key (with
 *     one, tcp's sealed frames and rdma's tagged messages refuse it), and
 *     it is what a stale message of an earlier exchange looks like to the
 *     layers above.
 */
#ifndef CCM_TP_MEM_H
#define CCM_TP_MEM_H

#include <stdbool.h>
#include <stdint.h>

#include "tp/transport.h"

struct tp_mem_net;

struct tp_mem_params {
	uint64_t seed;          /* the network's delays */
	uint32_t min_us, max_us;/* one delivery's latency */
	uint32_t detect_us;     /* a cut connection with something outstanding
	                           fails after this long */
	bool nic_serves;        /* rdma: a frozen node still serves READ/WRITE */
};

int tp_mem_net_create(const struct tp_mem_params *p, struct tp_mem_net **out);
/* Every transport of the network must have been destroyed first. */
void tp_mem_net_destroy(struct tp_mem_net *net);

/* The network's virtual time is the one given to the last advance: what a
 * transport posts between two calls is stamped with it.
 * Deliver everything due at or before now (us).  Returns how many
 * deliveries happened. */
int tp_mem_net_advance(struct tp_mem_net *net, uint64_t now_us);
/* When the next delivery or failure is due (us); UINT64_MAX when nothing is
 * in flight. */
uint64_t tp_mem_net_next(const struct tp_mem_net *net);

/* Change the latency from now on (what is in flight keeps its time). */
void tp_mem_net_set_latency(struct tp_mem_net *net, uint32_t min_us, uint32_t max_us);
/* Cut or restore every wire to and from host (a numeric address string as
 * in struct tp_addr). */
void tp_mem_net_cut(struct tp_mem_net *net, const char *host, bool cut);
/* Freeze or thaw every transport whose tp_config.node_id is node. */
void tp_mem_net_freeze(struct tp_mem_net *net, uint32_t node, bool frozen);

/* Deliver again, on from_node's current connection to its partner, up to
 * max of the first messages it sent on its most recent earlier connection
 * (8 are kept), the first skip of them left out, in their order, after
 * whatever that connection has in flight.  Returns how many, 0 if there
 * are none kept, -ENOENT without a current connection. */
int tp_mem_net_replay(struct tp_mem_net *n, uint32_t from_node, int skip, int max);

/* Counters, for the simulator's report and its invariants. */
struct tp_mem_stats {
	uint64_t delivered;     /* operations, messages and connection steps */
	uint64_t ops, msgs, connects, failures;
	int transports;         /* alive now */
	int in_flight;          /* items queued now */
};
void tp_mem_net_stats(const struct tp_mem_net *net, struct tp_mem_stats *st);

#endif
