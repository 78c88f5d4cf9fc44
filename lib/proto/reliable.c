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
static int keep_copy(struct held_msg *h, struct rel_port *p, uint64_t seq, const uint8_t *frame,
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

int reliable_sent(struct reliable *r, struct rel_port *p, uint64_t seq, int link, uint64_t now,
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
			const struct rel_port *p = m->port;
			bool given_up = p->tx_run_to && m->seq >= p->tx_run_from && m->seq <= p->tx_run_to;

			forget_sent(r, m, done, ctx, given_up ? -ETIMEDOUT : 0);
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

bool reliable_port_full(const struct rel_port *p)
{
	return p->tx_window >= PORT_MSG_WINDOW;
}

enum reliable_verdict reliable_received(struct reliable *r, struct rel_port *p, uint64_t seq,
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

uint8_t *reliable_next(struct reliable *r, uint32_t *len, struct rel_port **p)
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

int reliable_pend(struct reliable *r, struct rel_port *p, uint64_t seq, const uint8_t *frame,
		  uint32_t len, uint64_t now)
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
	r->pend[r->npend++].at = now;
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

bool reliable_ack_room(const struct rel_port *p)
{
	return !p->rx_run_len || p->rx_done + 1 - p->rx_run_end <= ACK_BACK_MAX;
}

/* Give up p's next seq (p->rx_done + 1) if the ack word can tell it. */
static bool give_up_next(struct rel_port *p)
{
	if (p->rx_run_len && p->rx_run_end == p->rx_done && p->rx_run_len < ACK_RUN_MAX)
		p->rx_run_len++;        /* the last run goes on */
	else if (!p->rx_run_len || p->rx_echo == (uint32_t)p->rx_run_end)
		p->rx_run_len = 1;      /* a new one: the sender has the last */
	else
		return false;           /* the sender has not echoed the last yet */
	p->rx_run_end = ++p->rx_done;
	return true;
}

int reliable_give_up(struct reliable *r, struct rel_port *p, uint64_t now, uint32_t hold_ms,
		     uint64_t detached_at, uint64_t *next)
{
	bool stuck = false;  /* one of p's stays: so do all behind it */
	int keep = 0, n = 0;

	*next = UINT64_MAX;
	for (int i = 0; i < r->npend; i++) {
		struct held_msg *h = &r->pend[i];
		uint64_t due = (h->at > detached_at ? h->at : detached_at) + hold_ms;

		if (h->port == p && !stuck) {
			if (due <= now && give_up_next(p)) {
				p->rx_pending--;
				free(h->frame);
				n++;
				continue;
			}
			stuck = true;
			*next = due <= now ? 0 : due;
		}
		r->pend[keep++] = *h;
	}
	r->npend = keep;
	return n;
}

void reliable_publish_ack(uint8_t *status_window, const struct rel_port *p)
{
	/* reliable_ack_room keeps back within its 16 bits. */
	uint64_t back = p->rx_run_len ? p->rx_done - p->rx_run_end : 0;
	uint64_t word = (uint32_t)p->rx_done | back << 32 | (uint64_t)p->rx_run_len << 48;
	uint8_t be[8];

	/* One aligned 8-byte store: the partner's READ may come at any time
	 * (with RDMA, from the NIC), and must never see half an update --
	 * a torn value could acknowledge a message not yet delivered. */
	be_put64(be, word);
	memcpy(&word, be, 8);
	__atomic_store_n((uint64_t *)(void *)(status_window + ACK_AREA_OFFSET + 8 * (size_t)p->slot),
			 word, __ATOMIC_RELEASE);
}

void reliable_publish_echo(uint8_t *status_window, const struct rel_port *p)
{
	uint8_t be[4];
	uint32_t word;

	be_put32(be, p->tx_echo);
	memcpy(&word, be, 4);
	__atomic_store_n((uint32_t *)(void *)(status_window + ECHO_AREA_OFFSET + 4 * (size_t)p->slot),
			 word, __ATOMIC_RELEASE);
}

unsigned reliable_peer_ack(struct rel_port *p, const uint8_t *buf, size_t len)
{
	size_t off = ACK_AREA_OFFSET + 8 * (size_t)p->peer_slot;
	size_t eoff = ECHO_AREA_OFFSET + 4 * (size_t)p->peer_slot;
	unsigned out = 0;

	if (off + 8 <= len) {
		uint64_t w = be_get64(buf + off);
		uint64_t back = (w >> 32) & 0xffff, run = w >> 48;
		/* The whole seq from its low 32 bits: what we have unsettled
		 * spans far less than 2^31, so anything outside (tx_acked,
		 * tx_seq] is an older READ's word, or nonsense: ignored. */
		uint64_t done = p->tx_acked + (uint32_t)((uint32_t)w - (uint32_t)p->tx_acked);

		if (done > p->tx_acked && done <= p->tx_seq) {
			p->tx_acked = done;
			p->tx_run_from = p->tx_run_to = 0;
			if (run && back + run <= done) {
				p->tx_run_to = done - back;
				p->tx_run_from = p->tx_run_to - run + 1;
				if (p->tx_echo != (uint32_t)p->tx_run_to) {
					p->tx_echo = (uint32_t)p->tx_run_to;
					out |= RELIABLE_ECHO_NEW;
				}
			}
		}
	}
	if (eoff + 4 <= len) {
		p->rx_echo = be_get32(buf + eoff);
		if (p->rx_run_len && p->rx_echo == (uint32_t)p->rx_run_end) {
			p->rx_run_len = 0;  /* told: the word need not say it again */
			out |= RELIABLE_RUN_RETIRED;
		}
	}
	return out;
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
