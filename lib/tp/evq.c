/* evq: the events a backend has made and not yet handed out.  See
 * transport.h (struct tp_evq). */
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
