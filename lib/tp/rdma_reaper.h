/* rdma_reaper: destroying queue pairs off the event loop's thread; the
 * rdma backend's (rdma.c), not part of the transport interface.
 *
 * Destroying a queue pair can block for seconds in the kernel: rxe waits
 * for the packets it still holds, and a link that lost its carrier does
 * not let them go.  The event loop must not wait -- the other links, the
 * heartbeat and the clients depend on it -- so a connection that goes is
 * moved to the error state by its owner (that does not block; its work
 * requests complete flushed, with generations that are stale by then) and
 * this thread destroys its queue pair and CM id.  Its buffers come back to
 * the loop, which frees them in reaper_collect: a message handed out of
 * them may still be read until the next progress. */
#ifndef CCM_RDMA_REAPER_H
#define CCM_RDMA_REAPER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define REAPER_MAX 16

struct rdma_cm_id;
struct ibv_mr;
struct ibv_qp;

/* What a connection leaves behind: the id, its queue pair (NULL: none;
 * ours, not the CM's), and the receive buffers (NULL: none) with their
 * registration. */
struct reaper_item {
	struct rdma_cm_id *id;
	struct ibv_qp *qp;
	uint8_t *recv;
	struct ibv_mr *recv_mr;
};

/* Zeroed (calloc) is the initial state; the thread starts on first use. */
struct reaper {
	pthread_t thread;
	bool started, stopping;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct reaper_item grave[REAPER_MAX];  /* to destroy */
	int ngrave;
	struct reaper_item done[REAPER_MAX];   /* destroyed; buffers to free */
	int ndone;
};

/* Take it over: true, and the item is the reaper's.  false when the
 * thread cannot be started or is REAPER_MAX items behind: the caller
 * destroys it itself, and waits. */
bool reaper_bury(struct reaper *r, const struct reaper_item *it);

/* Free the buffers of the items destroyed so far.  The loop's thread, at
 * a point where no message handed out of them is read any more. */
void reaper_collect(struct reaper *r);

/* Wait for everything handed over, free it, and end the thread. */
void reaper_stop(struct reaper *r);

#endif
