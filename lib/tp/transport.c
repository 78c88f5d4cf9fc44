/* tp: finding a transport backend by name, and what backends share. */
#include "tp/transport.h"

#include <string.h>

void tp_evq_push(struct tp_evq *q, const struct tp_event *ev)
{
	if (q->len == TP_EVQ_MAX) {
		memmove(q->ev, q->ev + 1, sizeof(q->ev[0]) * (TP_EVQ_MAX - 1));
		q->len--;
	}
	q->ev[q->len++] = *ev;
}

int tp_evq_take(struct tp_evq *q, struct tp_event *out, int max)
{
	int n = q->len < max ? q->len : max;

	memcpy(out, q->ev, sizeof(*out) * (size_t)n);
	memmove(q->ev, q->ev + n, sizeof(*out) * (size_t)(q->len - n));
	q->len -= n;
	return n;
}

const struct tp_ops *tp_lookup(const char *name)
{
	static const struct tp_ops *const backends[] = {
		&tp_tcp_ops,
		&tp_rdma_ops,
		&tp_mem_ops,
	};

	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strcmp(backends[i]->name, name) == 0)
			return backends[i];
	return NULL;
}
