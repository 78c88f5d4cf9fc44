/* ccm-stream: a streaming test client for the interconnects of ccm-early.
 *
 *   ccm-stream send --state-dir DIR --client NAME --seconds S [options]
 *   ccm-stream recv --state-dir DIR --client NAME --seconds S [options]
 *
 * send keeps, on every port, --depth one-sided writes and --depth messages
 * in flight for S seconds.  Each write fills one slot of the partner's
 * window from the same slot of ours, stamped (port, slot, write number)
 * with a pattern derived from the stamp; each message carries (port,
 * per-port seq).  Only a DONE with status 0 counts as done.  recv checks
 * that every port's messages arrive exactly once and in order, and at the
 * end that every slot of its windows holds an intact stamped write and
 * that the windows' checksum is the one the sender's windows have: the
 * content the partner must hold.
 *
 * The two ends meet and part over port 0:
 *   H nports slot_size   send -> recv, repeated until R: "here I am"
 *   R                    recv -> send: "attached, go"
 *   D port seq filler    a message of the stream
 *   G port next_seq      send -> recv after PARTNER_BACK: messages before
 *                        next_seq were lost with the partner, if at all
 *   C port seq           recv -> send: every message up to seq has arrived
 *   E port last_seq      send -> recv on every port, once every write is done
 *   A checksum counts    recv -> send: what recv found
 * Numbers are big-endian.
 *
 * The C credits are the stream's own pacing, on top of the channel's flow
 * control (a DONE comes once recv's channel has a message; at most
 * CCM_SEND_WINDOW per port are in flight, and ccm_send says -EAGAIN
 * beyond): send keeps at most window() messages per port beyond the last
 * credit, so that recv's progress, not only its keeper's, paces it. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/ccm.h"

#define PROG        "ccm-stream"
#define SLOT_MAGIC  0x4353544dU     /* "CSTM" */
#define SLOT_HDR    24              /* magic, port, slot, size, write number */
#define MSG_HDR     11              /* kind, port, seq */
#define MSG_MAX     3072
#define HELLO_MS    200             /* how often send says H until R comes */
#define REORDER_WIN 65536           /* seqs behind the newest that recv remembers */
#define CREDIT_ALL  128             /* messages ahead of the credits, all ports together */

struct opts {
	const char *dir, *client;
	unsigned seconds, wait_s, depth, msg_size, rate;
	uint32_t size;
	bool loss_ok;
	int verbose;
};

static volatile sig_atomic_t finish_now;  /* send: SIGINT or SIGTERM came */

static void on_signal(int sig)
{
	(void)sig;
	finish_now = 1;
}

struct counts {
	unsigned long link_down, link_up, partner_lost, partner_back;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void say(const struct opts *o, const char *fmt, ...)
{
	struct timespec ts;
	va_list ap;

	if (!o->verbose)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(stderr, "%s [%lld.%03ld]: ", PROG, (long long)ts.tv_sec, ts.tv_nsec / 1000000);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* --- content ------------------------------------------------------------------ */

static void put(uint8_t *p, uint64_t v, int n)
{
	while (n--) {
		p[n] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get(const uint8_t *p, int n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | *p++;
	return v;
}

/* splitmix64 seeds an xorshift64* stream: a pattern anyone can recompute
 * from its stamp, so a torn, stale or misplaced write shows. */
static void pattern(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t x = seed + 0x9e3779b97f4a7c15ULL;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	x ^= x >> 31;
	x |= 1;
	for (size_t i = 0; i < len; i++) {
		if (i % 8 == 0) {
			x ^= x >> 12;
			x ^= x << 25;
			x ^= x >> 27;
		}
		p[i] = (uint8_t)((x * 0x2545f4914f6cdd1dULL) >> (8 * (i % 8)));
	}
}

static uint64_t slot_seed(unsigned port, uint32_t slot, uint64_t wseq)
{
	return (uint64_t)port << 56 ^ (uint64_t)slot << 40 ^ wseq;
}

static void slot_fill(uint8_t *s, unsigned port, uint32_t slot, uint32_t size, uint64_t wseq)
{
	put(s, SLOT_MAGIC, 4);
	put(s + 4, port, 4);
	put(s + 8, slot, 4);
	put(s + 12, size, 4);
	put(s + 16, wseq, 8);
	pattern(s + SLOT_HDR, size - SLOT_HDR, slot_seed(port, slot, wseq));
}

/* A slot as one complete write left it (scratch: size bytes). */
static bool slot_ok(const uint8_t *s, unsigned port, uint32_t slot, uint32_t size, uint8_t *scratch)
{
	if (get(s, 4) != SLOT_MAGIC || get(s + 4, 4) != port || get(s + 8, 4) != slot ||
	    get(s + 12, 4) != size)
		return false;
	pattern(scratch, size - SLOT_HDR, slot_seed(port, slot, get(s + 16, 8)));
	return !memcmp(s + SLOT_HDR, scratch, size - SLOT_HDR);
}

/* FNV-1a over every port's window, in port order. */
static uint64_t windows_sum(struct ccm_client *c)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t len;

	for (int p = 0; p < ccm_nports(c); p++) {
		const uint8_t *w = ccm_window(c, p, &len);

		for (size_t i = 0; i < len; i++)
			h = (h ^ w[i]) * 0x100000001b3ULL;
	}
	return h;
}

static void count_event(const struct opts *o, const struct ccm_event *ev, struct counts *n)
{
	switch (ev->type) {
	case CCM_EV_LINK_DOWN: n->link_down++; break;
	case CCM_EV_LINK_UP: n->link_up++; break;
	case CCM_EV_PARTNER_LOST: n->partner_lost++; break;
	case CCM_EV_PARTNER_BACK: n->partner_back++; break;
	default: return;
	}
	if (ev->type == CCM_EV_LINK_DOWN || ev->type == CCM_EV_LINK_UP)
		say(o, "event %s (link %d)", ccm_event_name(ev->type), ev->link);
	else
		say(o, "event %s", ccm_event_name(ev->type));
}

/* Messages per port that send may have beyond recv's last credit; recv
 * credits every quarter of it. */
static uint64_t window(int nports)
{
	int w = CREDIT_ALL / nports;

	return w < 4 ? 4 : w > 32 ? 32 : (uint64_t)w;
}

/* A status the keeper gives for an operation that the partner's loss
 * failed (as opposed to one that should never happen). */
static bool loss_status(int st)
{
	return st == -ENOTCONN || st == -EHOSTUNREACH || st == -ECONNABORTED || st == -ECONNRESET ||
	       st == -EPIPE ||
	       st == -ETIMEDOUT || st == -ESHUTDOWN;
}

/* --- send --------------------------------------------------------------------- */

enum { F_WRITE = 1, F_MSG, F_RESYNC, F_CTL };

struct flight {
	uint32_t tag;
	uint8_t kind;           /* 0: free */
	uint16_t port;
	uint32_t slot;
};

struct sport {
	uint32_t nslots, cursor;
	bool *busy, *dirty;     /* dirty: no write has completed since the last failure */
	unsigned writes, msgs;  /* in flight */
	uint64_t wseq, mseq;    /* last issued */
	uint64_t credit;        /* recv has every message up to this seq */
	bool resync;            /* a G is owed before the next D */
};

struct sender {
	struct opts o;
	struct ccm_client *c;
	int nports;
	struct sport *port;
	struct flight *fl;
	unsigned nfl, inflight;
	bool lost;
	uint64_t start;               /* --rate: when the stream began, */
	unsigned long issued_w, issued_m;  /* and what it has issued since */
	unsigned long ops, msgs, errors, failed_lost;
	struct counts n;
	bool acked;
	uint64_t partner_sum;
	char ack[160];
};

static int track(struct sender *s, uint32_t tag, int kind, int port, uint32_t slot)
{
	for (unsigned i = 0; i < s->nfl; i++)
		if (!s->fl[i].kind) {
			s->fl[i] = (struct flight){ tag, (uint8_t)kind, (uint16_t)port, slot };
			s->inflight++;
			return 0;
		}
	return -ENOBUFS;  /* cannot happen: the table holds every op depth allows */
}

static int send_ctl(struct sender *s, int port, const uint8_t *m, size_t len, bool tracked)
{
	uint32_t tag;
	int r = ccm_send(s->c, port, m, len, &tag);

	return r < 0 || !tracked ? r : track(s, tag, F_CTL, port, 0);
}

static int issue_write(struct sender *s, int p)
{
	struct sport *sp = &s->port[p];
	uint8_t *w = ccm_window(s->c, p, NULL);
	uint32_t slot = UINT32_MAX, tag, off;
	int r;

	/* A slot whose last write failed first, then round robin; never one
	 * with a write in flight, whose bytes the keeper may still read. */
	for (uint32_t i = 0; i < sp->nslots && slot == UINT32_MAX; i++)
		if (sp->dirty[i] && !sp->busy[i])
			slot = i;
	for (uint32_t i = 0; i < sp->nslots && slot == UINT32_MAX; i++) {
		uint32_t k = (sp->cursor + i) % sp->nslots;

		if (!sp->busy[k]) {
			slot = k;
			sp->cursor = k + 1;
		}
	}
	if (slot == UINT32_MAX)
		return 0;
	off = slot * s->o.size;
	slot_fill(w + off, (unsigned)p, slot, s->o.size, ++sp->wseq);
	/* Every 4th write asks for a notify, so notifies flow too. */
	r = ccm_write(s->c, p, off, off, s->o.size, sp->wseq % 4 ? 0 : CCM_NOTIFY, &tag);
	if (r < 0)
		return r;
	sp->busy[slot] = true;
	sp->writes++;
	return track(s, tag, F_WRITE, p, slot);
}

static int issue_msg(struct sender *s, int p)
{
	struct sport *sp = &s->port[p];
	uint8_t m[MSG_MAX];
	uint32_t tag;
	int r;

	if (sp->resync) {
		/* Only once nothing sent before the loss is still pending. */
		if (sp->msgs)
			return 0;
		m[0] = 'G';
		put(m + 1, (uint64_t)p, 2);
		put(m + 3, sp->mseq + 1, 8);
		r = ccm_send(s->c, p, m, MSG_HDR, &tag);
		if (r == 0)
			sp->resync = false, sp->msgs++, r = track(s, tag, F_RESYNC, p, 0);
		return r;
	}
	if (sp->mseq - sp->credit >= window(s->nports))
		return 0;
	m[0] = 'D';
	put(m + 1, (uint64_t)p, 2);
	put(m + 3, ++sp->mseq, 8);
	pattern(m + MSG_HDR, s->o.msg_size - MSG_HDR, (uint64_t)p << 56 ^ sp->mseq);
	r = ccm_send(s->c, p, m, s->o.msg_size, &tag);
	if (r == -EAGAIN) {  /* the port's window is full: after a DONE */
		sp->mseq--;
		return 0;
	}
	if (r < 0)
		return r;
	sp->msgs++;
	return track(s, tag, F_MSG, p, 0);
}

/* --rate: may another write (or message) go now? */
static bool rate_ok(const struct sender *s, unsigned long issued)
{
	return !s->o.rate || issued < s->o.rate * (now_ms() - s->start) / 1000 + 1;
}

/* Keep every port's writes and messages topped up. */
static int top_up(struct sender *s, bool writes, bool msgs)
{
	int r = 0;

	writes = writes && rate_ok(s, s->issued_w);
	msgs = msgs && rate_ok(s, s->issued_m);
	for (int p = 0; p < s->nports && r == 0 && !s->lost; p++) {
		struct sport *sp = &s->port[p];

		while (r == 0 && writes && sp->writes < s->o.depth && sp->writes < sp->nslots) {
			unsigned before = sp->writes;

			r = issue_write(s, p);
			if (sp->writes == before)
				break;
			writes = rate_ok(s, ++s->issued_w);
		}
		while (r == 0 && msgs && sp->msgs < s->o.depth) {
			unsigned before = sp->msgs;

			r = issue_msg(s, p);
			if (sp->msgs == before)
				break;
			msgs = rate_ok(s, ++s->issued_m);
		}
	}
	return r;
}

static void on_ack(struct sender *s, const uint8_t *d, size_t len)
{
	if (len < 9 || s->acked)
		return;
	s->acked = true;
	s->partner_sum = get(d + 1, 8);
	snprintf(s->ack, sizeof(s->ack), "%.*s", (int)(len - 9), (const char *)d + 9);
}

static void on_done(struct sender *s, const struct ccm_event *ev)
{
	struct flight *f = NULL;

	for (unsigned i = 0; i < s->nfl && !f; i++)
		if (s->fl[i].kind && s->fl[i].tag == ev->tag)
			f = &s->fl[i];
	if (!f)
		return;  /* an H, which nobody waits for */
	if (f->kind == F_WRITE) {
		s->port[f->port].busy[f->slot] = false;
		s->port[f->port].writes--;
		s->port[f->port].dirty[f->slot] = ev->status != 0;
		s->ops += ev->status == 0;
	} else if (f->kind == F_MSG || f->kind == F_RESYNC) {
		s->port[f->port].msgs--;
		s->msgs += ev->status == 0 && f->kind == F_MSG;
	}
	if (ev->status) {
		/* Failures the partner's loss explains are allowed with
		 * --partner-loss-ok, and only if it was lost at all: decided
		 * at the end, since the DONE may come before the event. */
		if (loss_status(ev->status))
			s->failed_lost++;
		else
			s->errors++;
		if (s->errors + s->failed_lost <= 5)
			fprintf(stderr, "%s: %s on port %u failed: %s\n", PROG,
				f->kind == F_WRITE ? "write" : "send", f->port,
				ccm_strerror(ev->status));
	}
	f->kind = 0;
	s->inflight--;
}

/* One event, with at most timeout_ms of waiting.  -errno when the channel
 * is done for. */
static int send_event(struct sender *s, int timeout_ms, bool *ready)
{
	struct ccm_event ev;
	int r = ccm_next(s->c, &ev, timeout_ms);

	if (r == -EAGAIN || r == -EINTR)
		return 0;
	if (r < 0)
		return r;
	count_event(&s->o, &ev, &s->n);
	switch (ev.type) {
	case CCM_EV_DONE:
		on_done(s, &ev);
		break;
	case CCM_EV_MSG:
		if (ev.len >= 1 && ev.data[0] == 'R' && ready)
			*ready = true;
		else if (ev.len >= 1 && ev.data[0] == 'A')
			on_ack(s, ev.data, ev.len);
		else if (ev.len == MSG_HDR && ev.data[0] == 'C' && get(ev.data + 1, 2) == ev.port &&
			 get(ev.data + 3, 8) > s->port[ev.port].credit)
			s->port[ev.port].credit = get(ev.data + 3, 8);
		break;
	case CCM_EV_PARTNER_LOST:
		s->lost = true;
		break;
	case CCM_EV_PARTNER_BACK:
		s->lost = false;
		for (int p = 0; p < s->nports; p++)
			s->port[p].resync = true;
		break;
	case CCM_EV_TERMINATING:
	case CCM_EV_KEEPER_GONE:
		fprintf(stderr, "%s: %s\n", PROG, ccm_event_name(ev.type));
		return -ESHUTDOWN;
	default:
		break;
	}
	return 0;
}

/* H on port 0 every HELLO_MS until recv answers R. */
static int meet(struct sender *s, uint64_t deadline)
{
	uint8_t h[11] = { 'H' };
	uint64_t next = 0;
	bool ready = false;
	int r = 0;

	put(h + 1, (uint64_t)s->nports, 2);
	put(h + 3, s->o.size, 4);
	put(h + 7, s->o.seconds, 4);
	while (!ready && r == 0) {
		uint64_t t = now_ms();

		if (t >= deadline) {
			fprintf(stderr, "%s: no answer from a receiver within %u s\n", PROG, s->o.wait_s);
			return -ETIMEDOUT;
		}
		if (t >= next) {
			/* Refused (no partner yet) is fine: H is only a knock. */
			r = send_ctl(s, 0, h, sizeof(h), false);
			next = t + HELLO_MS;
		}
		if (r == 0)
			r = send_event(s, (int)(next - t), &ready);
	}
	return r;
}

/* Wait until nothing is in flight, or the deadline. */
static int drain(struct sender *s, uint64_t deadline)
{
	int r = 0;

	while (r == 0 && s->inflight && now_ms() < deadline)
		r = send_event(s, (int)(deadline - now_ms()), NULL);
	if (r == 0 && s->inflight) {
		fprintf(stderr, "%s: %u operations still in flight after %u s\n", PROG, s->inflight,
			s->o.wait_s);
		return -ETIMEDOUT;
	}
	return r;
}

static unsigned dirty_slots(const struct sender *s)
{
	unsigned n = 0;

	for (int p = 0; p < s->nports; p++)
		for (uint32_t i = 0; i < s->port[p].nslots; i++)
			n += s->port[p].dirty[i];
	return n;
}

static int stream_send(struct sender *s)
{
	uint64_t end, deadline = now_ms() + s->o.wait_s * 1000u;
	uint8_t e[MSG_HDR];
	unsigned dirty;
	int r;

	r = meet(s, deadline);
	if (r < 0)
		return r;
	say(&s->o, "receiver ready; streaming for %u s", s->o.seconds);
	s->start = now_ms();
	end = s->start + s->o.seconds * 1000u;
	while (r == 0 && now_ms() < end && !finish_now) {
		uint64_t left = end - now_ms();

		r = top_up(s, true, true);
		/* Rate-limited, look again soon even if nothing completes. */
		if (r == 0)
			r = send_event(s, (int)(s->o.rate && left > 2 ? 2 : left), NULL);
	}
	/* The end: every write done, slots that failed written again (the
	 * partner still there), and only then E, behind every message. */
	deadline = now_ms() + s->o.wait_s * 1000u;
	if (r == 0)
		r = drain(s, deadline);
	while (r == 0 && (dirty = dirty_slots(s)) && now_ms() < deadline) {
		say(&s->o, "writing %u failed slot(s) again", dirty);
		r = top_up(s, true, false);
		/* Nothing to do while the partner is lost: wait for news. */
		if (r == 0 && !s->inflight)
			r = send_event(s, 100, NULL);
		if (r == 0)
			r = drain(s, deadline);
	}
	for (int p = 0; r == 0 && p < s->nports; p++) {
		s->port[p].resync = false;
		e[0] = 'E';
		put(e + 1, (uint64_t)p, 2);
		put(e + 3, s->port[p].mseq, 8);
		r = send_ctl(s, p, e, sizeof(e), true);
	}
	if (r == 0)
		r = drain(s, deadline);
	while (r == 0 && !s->acked && now_ms() < deadline)
		r = send_event(s, (int)(deadline - now_ms()), NULL);
	return r;
}

static int run_send(const struct opts *o, struct ccm_client *c)
{
	struct sender s = { .o = *o, .c = c, .nports = ccm_nports(c) };
	size_t wlen;
	bool clean;
	int r = 0;

	ccm_window(c, 0, &wlen);
	s.port = calloc((size_t)s.nports, sizeof(*s.port));
	s.nfl = (unsigned)s.nports * (2 * o->depth + 1) + 1;
	s.fl = calloc(s.nfl, sizeof(*s.fl));
	if (!s.port || !s.fl)
		r = -ENOMEM;
	if (r == 0 && (wlen < o->size || wlen / o->size > UINT32_MAX)) {
		fprintf(stderr, "%s: --size %u is larger than the %zu-byte window\n", PROG, o->size,
			wlen);
		r = -EINVAL;
	}
	for (int p = 0; r == 0 && p < s.nports; p++) {
		struct sport *sp = &s.port[p];

		sp->nslots = (uint32_t)(wlen / o->size);
		sp->busy = calloc(sp->nslots, sizeof(bool));
		sp->dirty = calloc(sp->nslots, sizeof(bool));
		if (!sp->busy || !sp->dirty)
			r = -ENOMEM;
		/* Every slot once, so the whole window is known content. */
		for (uint32_t i = 0; r == 0 && i < sp->nslots; i++)
			sp->dirty[i] = true;
	}
	if (r == 0)
		r = stream_send(&s);
	if (r < 0 && r != -ETIMEDOUT && r != -ESHUTDOWN)
		fprintf(stderr, "%s: %s\n", PROG, ccm_strerror(r));
	/* Failures the partner's loss explains are errors unless allowed and
	 * the partner was indeed lost. */
	if (!(o->loss_ok && s.n.partner_lost))
		s.errors += s.failed_lost, s.failed_lost = 0;
	printf("stream send: ops=%lu msgs=%lu errors=%lu failed_lost=%lu link_down=%lu link_up=%lu "
	       "partner_lost=%lu partner_back=%lu checksum=%016" PRIx64,
	       s.ops, s.msgs, s.errors, s.failed_lost, s.n.link_down, s.n.link_up,
	       s.n.partner_lost, s.n.partner_back, windows_sum(c));
	if (s.acked)
		printf(" partner_checksum=%016" PRIx64 " (%s)\n", s.partner_sum, s.ack);
	else
		printf(" partner_checksum=none\n");
	clean = r == 0 && s.errors == 0 && s.acked && s.partner_sum == windows_sum(c) &&
		!dirty_slots(&s);
	for (int p = 0; s.port && p < s.nports; p++) {
		free(s.port[p].busy);
		free(s.port[p].dirty);
	}
	free(s.port);
	free(s.fl);
	return clean ? 0 : 1;
}

/* --- recv --------------------------------------------------------------------- */

struct rport {
	uint64_t top;           /* highest seq seen */
	uint8_t *seen;          /* bit (seq % REORDER_WIN): seq arrived, for seq > top - REORDER_WIN */
	uint64_t last;          /* E's last seq */
	uint64_t credited;      /* the last C we sent */
	bool outage;            /* from PARTNER_LOST to this port's G: gaps are the loss's */
	bool ended;
};

struct receiver {
	struct opts o;
	struct ccm_client *c;
	int nports;
	struct rport *port;
	uint32_t slot_size;     /* from H; 0 until then */
	unsigned ended;
	unsigned long msgs, lost, dup, reordered, corrupt, outage, notifies, bad_slots;
	struct counts n;
};

static bool seen(const struct rport *rp, uint64_t q)
{
	return rp->seen[(q % REORDER_WIN) / 8] & (1u << (q % 8));
}

static void mark(struct rport *rp, uint64_t q, bool on)
{
	if (on)
		rp->seen[(q % REORDER_WIN) / 8] |= (uint8_t)(1u << (q % 8));
	else
		rp->seen[(q % REORDER_WIN) / 8] &= (uint8_t)~(1u << (q % 8));
}

/* Move top to q.  The seqs passed over are marked unseen (a gap: lost
 * unless they come later, reordered) or, for a resync, seen: nothing sent
 * before a G may come after it. */
static void advance(struct rport *rp, uint64_t q, bool as_seen)
{
	if (q - rp->top >= REORDER_WIN) {
		memset(rp->seen, as_seen ? 0xff : 0, REORDER_WIN / 8);
		rp->top = q;
		return;
	}
	for (uint64_t k = rp->top + 1; k <= q; k++)
		mark(rp, k, as_seen);
	rp->top = q;
}

static void on_data(struct receiver *rv, int port, const uint8_t *d, size_t len)
{
	struct rport *rp = &rv->port[port];
	uint8_t filler[MSG_MAX];
	uint64_t q = get(d + 3, 8);

	rv->msgs++;
	pattern(filler, len - MSG_HDR, (uint64_t)port << 56 ^ q);
	if (get(d + 1, 2) != (uint64_t)port || q == 0 || memcmp(d + MSG_HDR, filler, len - MSG_HDR)) {
		rv->corrupt++;
		return;
	}
	if (q > rp->top) {
		/* A gap: lost unless its seqs come later (then reordered), or
		 * lost with the partner. */
		if (rp->outage)
			rv->outage += q - rp->top - 1;
		else
			rv->lost += q - rp->top - 1;
		advance(rp, q, false);
		mark(rp, q, true);
	} else if (rp->top - q < REORDER_WIN && !seen(rp, q)) {
		if (rv->lost)
			rv->lost--;
		else if (rv->outage)
			rv->outage--;
		rv->reordered++;
		mark(rp, q, true);
	} else {
		rv->dup++;
	}
}

/* Tell send how far we are, every quarter window (now, after a resync).
 * A C lost on the way is made good by the next. */
static void credit(struct receiver *rv, int port, bool now)
{
	struct rport *rp = &rv->port[port];
	uint8_t m[MSG_HDR] = { 'C' };

	if (!now && rp->top - rp->credited < window(rv->nports) / 4)
		return;
	put(m + 1, (uint64_t)port, 2);
	put(m + 3, rp->top, 8);
	if (ccm_send(rv->c, port, m, sizeof(m), NULL) == 0)
		rp->credited = rp->top;
}

static void on_msg(struct receiver *rv, const struct ccm_event *ev)
{
	const uint8_t *d = ev->data;
	uint8_t r = 'R';
	struct rport *rp;
	uint64_t q;

	if (ev->len < 1)
		return;
	if (d[0] == 'H' && ev->len >= 11 && ev->port == 0) {
		if (get(d + 1, 2) != (uint64_t)rv->nports) {
			fprintf(stderr, "%s: the sender has %u ports, we have %d\n", PROG,
				(unsigned)get(d + 1, 2), rv->nports);
			return;
		}
		if (!rv->slot_size)
			say(&rv->o, "sender is here");
		rv->slot_size = (uint32_t)get(d + 3, 4);
		/* Lost on the way (no partner yet) is fine: H comes again. */
		ccm_send(rv->c, 0, &r, 1, NULL);
		return;
	}
	if (ev->len < MSG_HDR || get(d + 1, 2) != ev->port || (d[0] != 'D' && ev->len != MSG_HDR)) {
		rv->corrupt++;
		return;
	}
	rp = &rv->port[ev->port];
	q = get(d + 3, 8);
	if (d[0] == 'D') {
		on_data(rv, ev->port, d, ev->len);
		credit(rv, ev->port, false);
	} else if (d[0] == 'G' && q > rp->top) {
		/* Sent after PARTNER_BACK: what never came before it went
		 * with the partner's loss. */
		rv->outage += q - 1 - rp->top;
		say(&rv->o, "port %u: resync at %" PRIu64 ", %" PRIu64 " message(s) lost in the outage",
		    ev->port, q, q - 1 - rp->top);
		advance(rp, q - 1, true);
		rp->outage = false;
		credit(rv, ev->port, true);
	} else if (d[0] == 'E' && !rp->ended) {
		rp->ended = true;
		rp->last = q;
		rv->ended++;
		if (q > rp->top)
			rv->lost += q - rp->top;
	} else {
		rv->corrupt++;
	}
}

static void check_slots(struct receiver *rv)
{
	uint8_t *scratch = rv->slot_size >= SLOT_HDR ? malloc(rv->slot_size) : NULL;
	size_t wlen;

	for (int p = 0; p < rv->nports; p++) {
		const uint8_t *w = ccm_window(rv->c, p, &wlen);

		for (uint32_t i = 0; scratch && i < wlen / rv->slot_size; i++)
			if (!slot_ok(w + (size_t)i * rv->slot_size, (unsigned)p, i, rv->slot_size,
				     scratch)) {
				if (rv->bad_slots++ < 5)
					fprintf(stderr, "%s: port %d slot %u is not an intact write\n",
						PROG, p, i);
			}
	}
	if (!scratch)
		rv->bad_slots++;
	free(scratch);
}

static int run_recv(const struct opts *o, struct ccm_client *c)
{
	struct receiver rv = { .o = *o, .c = c, .nports = ccm_nports(c) };
	uint64_t deadline = now_ms() + (o->seconds + o->wait_s) * 1000u, sum = 0;
	uint8_t a[160] = { 'A' };
	struct ccm_event ev;
	uint32_t atag = 0;
	bool clean;
	int r = 0, n;

	rv.port = calloc((size_t)rv.nports, sizeof(*rv.port));
	for (int p = 0; rv.port && p < rv.nports; p++)
		if (!(rv.port[p].seen = calloc(REORDER_WIN / 8, 1)))
			r = -ENOMEM;
	if (!rv.port)
		r = -ENOMEM;
	say(o, "waiting for the sender");
	while (r == 0 && rv.ended < (unsigned)rv.nports) {
		uint64_t t = now_ms();

		if (t >= deadline) {
			fprintf(stderr, "%s: the stream did not end within %u s\n", PROG,
				o->seconds + o->wait_s);
			r = -ETIMEDOUT;
			break;
		}
		r = ccm_next(c, &ev, (int)(deadline - t));
		if (r == -EAGAIN || r == -EINTR) {
			r = 0;
			continue;
		}
		if (r < 0)
			break;
		count_event(o, &ev, &rv.n);
		if (ev.type == CCM_EV_MSG)
			on_msg(&rv, &ev);
		else if (ev.type == CCM_EV_NOTIFY)
			rv.notifies++;
		else if (ev.type == CCM_EV_PARTNER_LOST)
			for (int p = 0; p < rv.nports; p++)
				rv.port[p].outage = true;
		else if (ev.type == CCM_EV_TERMINATING || ev.type == CCM_EV_KEEPER_GONE)
			r = -ESHUTDOWN;
	}
	if (r == 0) {
		/* Every write was done before the first E left: the windows
		 * are final. */
		check_slots(&rv);
		sum = windows_sum(c);
		put(a + 1, sum, 8);
		n = snprintf((char *)a + 9, sizeof(a) - 9, "msgs=%lu lost=%lu dup=%lu reordered=%lu",
			     rv.msgs, rv.lost, rv.dup, rv.reordered);
		r = ccm_send(c, 0, a, 9 + (size_t)n, &atag);
	}
	/* A's DONE: the keeper has it, so detaching now does not lose it. */
	while (r == 0 && atag) {
		r = ccm_next(c, &ev, (int)(o->wait_s * 1000u));
		if (r == 0 && ev.type == CCM_EV_DONE && ev.tag == atag) {
			r = ev.status;
			atag = 0;
		}
	}
	if (r < 0 && r != -ETIMEDOUT)
		fprintf(stderr, "%s: %s\n", PROG, ccm_strerror(r));
	printf("stream recv: msgs=%lu lost=%lu dup=%lu reordered=%lu corrupt=%lu lost_in_outage=%lu "
	       "bad_slots=%lu notifies=%lu link_down=%lu link_up=%lu partner_lost=%lu "
	       "partner_back=%lu checksum=%016" PRIx64 "\n",
	       rv.msgs, rv.lost, rv.dup, rv.reordered, rv.corrupt, rv.outage, rv.bad_slots,
	       rv.notifies, rv.n.link_down, rv.n.link_up, rv.n.partner_lost, rv.n.partner_back, sum);
	clean = r == 0 && !rv.lost && !rv.dup && !rv.reordered && !rv.corrupt && !rv.bad_slots &&
		(!rv.outage || (o->loss_ok && rv.n.partner_lost));
	for (int p = 0; rv.port && p < rv.nports; p++)
		free(rv.port[p].seen);
	free(rv.port);
	return clean ? 0 : 1;
}

/* --- main --------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " send|recv --state-dir DIR --client NAME --seconds S [OPTIONS]\n"
		"\n"
		"send: on every port keep --depth writes (stamped, into the partner's window)\n"
		"and --depth messages (port, seq) in flight for S seconds (SIGINT or SIGTERM:\n"
		"stop sooner); then tell recv the end on every port and wait for its answer.\n"
		"recv: check that every port's messages arrive once each and in order, and\n"
		"its windows' content.  Both print one summary line with the windows'\n"
		"checksum and exit 0 only when all was clean.\n"
		"\n"
		"  --state-dir DIR     the keeper's state directory (default /run/ccm)\n"
		"  --client NAME       the client to attach to (required)\n"
		"  --seconds S         how long send streams (recv: the stream it expects)\n"
		"  --size B            send: bytes per write, a slot of the window (default 4096)\n"
		"  --depth N           send: writes and messages in flight per port (default 4)\n"
		"  --msg-size B        send: bytes per message, %d..%d (default 64)\n"
		"  --rate N            send: at most N writes and N messages a second, all\n"
		"                      ports together (default 0: as fast as they complete)\n"
		"  --wait S            how long to wait for the other end and the end (default 30)\n"
		"  --partner-loss-ok   failures and lost messages while the partner was lost\n"
		"                      (PARTNER_LOST) are no error\n"
		"  -v                  log events to stderr\n"
		"  -h, --help          this help\n",
		MSG_HDR, MSG_MAX);
}

static bool number(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
		return false;
	*out = (unsigned)v;
	return true;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "state-dir", required_argument, NULL, 'd' },
		{ "client", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 's' },
		{ "size", required_argument, NULL, 'z' },
		{ "depth", required_argument, NULL, 'n' },
		{ "msg-size", required_argument, NULL, 'm' },
		{ "wait", required_argument, NULL, 'w' },
		{ "rate", required_argument, NULL, 'r' },
		{ "partner-loss-ok", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .seconds = 0, .wait_s = 30, .depth = 4, .msg_size = 64, .size = 4096 };
	struct ccm_client *c;
	bool have_seconds = false, ok = true;
	unsigned v;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "vh", lopts, NULL)) != -1) {
		switch (opt) {
		case 'd': o.dir = optarg; break;
		case 'c': o.client = optarg; break;
		case 's': ok = ok && number(optarg, 1, 86400, &o.seconds); have_seconds = true; break;
		case 'z': ok = ok && number(optarg, 64, 65536, &v) && v % 8 == 0; o.size = v; break;
		case 'n': ok = ok && number(optarg, 1, 64, &o.depth); break;
		case 'm': ok = ok && number(optarg, MSG_HDR, MSG_MAX, &o.msg_size); break;
		case 'w': ok = ok && number(optarg, 1, 3600, &o.wait_s); break;
		case 'r': ok = ok && number(optarg, 0, 10000000, &o.rate); break;
		case 'l': o.loss_ok = true; break;
		case 'v': o.verbose++; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!ok || optind != argc - 1 || !o.client || !have_seconds ||
	    (strcmp(argv[optind], "send") && strcmp(argv[optind], "recv"))) {
		fprintf(stderr, "%s: %s\n", PROG, !ok ? "a number out of range (--size: a multiple of 8)"
						      : "need send|recv, --client and --seconds");
		usage(stderr);
		return 2;
	}
	if (argv[optind][0] == 's') {
		/* No SA_RESTART: the wait in ccm_next returns, and send ends
		 * the stream as it would at --seconds. */
		struct sigaction sa = { .sa_handler = on_signal };

		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	r = ccm_attach(o.client, o.dir, &c);
	if (r < 0) {
		fprintf(stderr, "%s: attach to %s: %s\n", PROG, o.client, ccm_strerror(r));
		return 1;
	}
	r = argv[optind][0] == 's' ? run_send(&o, c) : run_recv(&o, c);
	ccm_detach(c);
	return r;
}
