#include "proto/reliable.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/be.h"

/* A growing array of n elements of `size` bytes with room for one more:
 * arr itself or its new place, or NULL (arr unchanged) without memory. */
static void *make_room(void *arr, int n, int *cap, size_t size)
{
	int bigger = *cap ? 2 * *cap : 64;
	void *a;

	if (n < *cap)
		return arr;
	a = realloc(arr, size * (size_t)bigger);
	if (a)
		*cap = bigger;
	return a;
}

/* h keeps its own copy of frame, for port p's seq: 0, or -ENOMEM. */
static int keep_copy(struct held_msg *h, struct port *p, uint64_t seq, const uint8_t *frame,
		     uint32_t len)
{
	h->frame = malloc(len);
	if (!h->frame)
		return -ENOMEM;
	memcpy(h->frame, frame, len);
	h->port = p;
	h->seq = seq;
	h->len = len;
	return 0;
}

int reliable_sent(struct reliable *r, struct port *p, uint64_t seq, int link, uint64_t now,
		  const uint8_t *frame, uint32_t len, bool in_window, uint64_t conn, uint32_t tag)
{
	struct sent_msg *sent, *m;

	sent = make_room(r->sent, r->nsent, &r->capsent, sizeof(*sent));
	if (!sent)
		return -ENOMEM;
	r->sent = sent;
	m = &r->sent[r->nsent];
	m->frame = malloc(len);
	if (!m->frame)
		return -ENOMEM;
	memcpy(m->frame, frame, len);
	m->port = p;
	m->seq = seq;
	m->link = link;
	m->sent_at = now;
	m->queued = false;
	m->in_window = in_window;
	m->resends = 0;
	m->conn = conn;
	m->tag = tag;
	m->len = len;
	r->nsent++;
	r->sent_bytes += len;
	p->tx_window += in_window;
	return 0;
}

static void forget_sent(struct reliable *r, struct sent_msg *m, reliable_done_fn *done, void *ctx,
			int status)
{
	r->sent_bytes -= m->len;
	r->nqueued -= m->queued;
	m->port->tx_window -= m->in_window;
	if (done && m->conn)
		done(ctx, m, status);
	free(m->frame);
}

void reliable_acked(struct reliable *r, reliable_done_fn *done, void *ctx)
{
	int keep = 0;

	for (int i = 0; i < r->nsent; i++) {
		struct sent_msg *m = &r->sent[i];

		if (m->seq <= m->port->tx_acked) {
			forget_sent(r, m, done, ctx, 0);
		} else {
			r->sent[keep++] = *m;
		}
	}
	r->nsent = keep;
}

bool reliable_full(const struct reliable *r)
{
	return r->sent_bytes >= RELIABLE_BYTES_MAX || r->nsent >= RELIABLE_MSGS_MAX;
}

bool reliable_port_full(const struct port *p)
{
	return p->tx_window >= PORT_MSG_WINDOW;
}

enum reliable_verdict reliable_received(struct reliable *r, struct port *p, uint64_t seq,
					const uint8_t *frame, uint32_t len)
{
	if (seq <= p->rx_seq) {
		r->dups++;
		return RELIABLE_DUP;
	}
	if (seq == p->rx_seq + 1) {
		p->rx_seq = seq;
		return RELIABLE_DELIVER;
	}
	for (int i = 0; i < r->nheld; i++)
		if (r->held[i].port == p && r->held[i].seq == seq) {
			r->dups++;
			return RELIABLE_DUP;
		}
	if (r->nheld == RELIABLE_HOLD_MAX)
		return RELIABLE_DROPPED;
	if (keep_copy(&r->held[r->nheld], p, seq, frame, len) < 0)
		return RELIABLE_DROPPED;
	r->nheld++;
	r->early++;
	return RELIABLE_HELD;
}

uint8_t *reliable_next(struct reliable *r, uint32_t *len, struct port **p)
{
	for (int i = 0; i < r->nheld; i++) {
		struct held_msg h = r->held[i];

		if (h.seq > h.port->rx_seq + 1)
			continue;
		r->held[i] = r->held[--r->nheld];
		if (h.seq <= h.port->rx_seq) {  /* came again meanwhile */
			free(h.frame);
			i--;
			continue;
		}
		h.port->rx_seq = h.seq;
		*len = h.len;
		*p = h.port;
		return h.frame;
	}
	return NULL;
}

int reliable_pend(struct reliable *r, struct port *p, uint64_t seq, const uint8_t *frame,
		  uint32_t len)
{
	struct held_msg *pend;

	if (p->rx_pending >= PORT_PEND_MAX)
		return -ENOBUFS;
	pend = make_room(r->pend, r->npend, &r->cappend, sizeof(*pend));
	if (!pend)
		return -ENOMEM;
	r->pend = pend;
	if (keep_copy(&r->pend[r->npend], p, seq, frame, len) < 0)
		return -ENOMEM;
	r->npend++;
	p->rx_pending++;
	return 0;
}

void reliable_offer_pending(struct reliable *r, reliable_take_fn *take, void *ctx)
{
	/* Ports (by slot) whose client did not take one this time. */
	uint64_t stuck[(CCM_PORTS_TOTAL + 63) / 64] = { 0 };
	int keep = 0;

	for (int i = 0; i < r->npend; i++) {
		struct held_msg *h = &r->pend[i];
		uint16_t slot = h->port->slot;
		uint64_t bit = 1ull << (slot % 64);

		if (!(stuck[slot / 64] & bit) && take(ctx, h->port, h->frame, h->len)) {
			h->port->rx_done = h->seq;
			h->port->rx_pending--;
			free(h->frame);
			continue;
		}
		stuck[slot / 64] |= bit;
		r->pend[keep++] = *h;
	}
	r->npend = keep;
}

void reliable_publish_ack(uint8_t *status_window, const struct port *p)
{
	uint8_t be[8];
	uint64_t word;

	/* One aligned 8-byte store: the partner's READ may come at any time
	 * (with RDMA, from the NIC), and must never see half an update --
	 * a torn value could acknowledge a message not yet delivered. */
	be_put64(be, p->rx_done);
	memcpy(&word, be, 8);
	__atomic_store_n((uint64_t *)(void *)(status_window + ACK_AREA_OFFSET + 8 * (size_t)p->slot),
			 word, __ATOMIC_RELEASE);
}

uint64_t reliable_peer_ack(const uint8_t *buf, size_t len, uint16_t slot)
{
	size_t off = ACK_AREA_OFFSET + 8 * (size_t)slot;

	return off + 8 <= len ? be_get64(buf + off) : 0;
}

void reliable_clear(struct reliable *r, reliable_done_fn *done, void *ctx, int status)
{
	for (int i = 0; i < r->nsent; i++)
		forget_sent(r, &r->sent[i], done, ctx, status);
	for (int i = 0; i < r->nheld; i++)
		free(r->held[i].frame);
	for (int i = 0; i < r->npend; i++) {
		r->pend[i].port->rx_pending--;
		free(r->pend[i].frame);
	}
	free(r->sent);
	free(r->pend);
	memset(r, 0, sizeof(*r));
}
