/* rdma_reaper: the thread that destroys queue pairs.  See rdma_reaper.h. */
#include "tp/rdma_reaper.h"

#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

static void *reaper_main(void *arg)
{
	struct reaper *r = arg;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		struct reaper_item it;

		while (!r->ngrave && !r->stopping)
			pthread_cond_wait(&r->cond, &r->lock);
		if (!r->ngrave)
			break;
		it = r->grave[--r->ngrave];
		pthread_mutex_unlock(&r->lock);
		if (it.qp)
			ibv_destroy_qp(it.qp);
		rdma_destroy_id(it.id);
		it.id = NULL;
		it.qp = NULL;
		pthread_mutex_lock(&r->lock);
		/* There is room: done holds no more than grave did. */
		r->done[r->ndone++] = it;
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static bool reaper_start(struct reaper *r)
{
	if (r->started)
		return true;
	if (pthread_mutex_init(&r->lock, NULL))
		return false;
	if (pthread_cond_init(&r->cond, NULL)) {
		pthread_mutex_destroy(&r->lock);
		return false;
	}
	if (pthread_create(&r->thread, NULL, reaper_main, r)) {
		pthread_cond_destroy(&r->cond);
		pthread_mutex_destroy(&r->lock);
		return false;
	}
	r->started = true;
	return true;
}

bool reaper_bury(struct reaper *r, const struct reaper_item *it)
{
	bool queued = false;

	if (!reaper_start(r))
		return false;
	pthread_mutex_lock(&r->lock);
	if (r->ngrave + r->ndone < REAPER_MAX) {
		r->grave[r->ngrave++] = *it;
		pthread_cond_signal(&r->cond);
		queued = true;
	}
	pthread_mutex_unlock(&r->lock);
	return queued;
}

void reaper_collect(struct reaper *r)
{
	struct reaper_item done[REAPER_MAX];
	int n;

	if (!r->started)
		return;
	pthread_mutex_lock(&r->lock);
	n = r->ndone;
	memcpy(done, r->done, sizeof(done[0]) * (size_t)n);
	r->ndone = 0;
	pthread_mutex_unlock(&r->lock);
	for (int i = 0; i < n; i++) {
		if (done[i].recv_mr)
			ibv_dereg_mr(done[i].recv_mr);
		free(done[i].recv);
	}
}

void reaper_stop(struct reaper *r)
{
	if (!r->started)
		return;
	pthread_mutex_lock(&r->lock);
	r->stopping = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	reaper_collect(r);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	r->started = false;
}
