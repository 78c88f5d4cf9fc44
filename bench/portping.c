/* portping: one-sided READ and WRITE into a partner's port window through
 * ccm-early's own transport and port code (lib/tp/transport.h, lib/daemon/ports.h), as a
 * check of content and as a latency benchmark to set beside perftest's
 * ib_write_lat and ib_read_lat on the same devices.
 *
 *   portping --node N --local ADDR[:PORT] --partner ADDR[:PORT]
 *            [--transport rdma|tcp] [--size BYTES] [--iters N] MODE
 *
 * MODE verify: each side fills its window with its own pattern, READs the
 * partner's whole window and checks the partner's pattern, WRITEs a second
 * pattern over the partner's window, and checks that what the partner wrote
 * into its own window -- seen through the memfd mapping a local client would
 * use -- is exactly that pattern.  Exit 0 when all of it matched.
 *
 * MODE write-lat: ping-pong like ib_write_lat: the lower node id WRITEs SIZE
 * bytes into the partner's window, the partner sees them land in its own
 * memory and WRITEs back; half the round trip is the latency.  MODE read-lat:
 * the lower node id READs SIZE bytes of the partner's window, one at a time
 * (like ib_read_lat).  Both print the median and p90 in microseconds, polling
 * without sleeping, as perftest does. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "base/limits.h"
#include "daemon/ports.h"
#include "tp/transport.h"

#define WINDOW      65536u
#define STATUS_PAGE 4096u
#define WAIT_MS     30000
#define RDMA_PENDING_BATCH 32     /* < the transport's 64 operations in flight */

struct bench {
	struct tp *tp;
	uint32_t node;
	struct port_table *pt;
	uint8_t *window;          /* our port window, as a client maps it */
	uint8_t *scratch;         /* local operation buffer */
	struct tp_remote peer;    /* the partner's port window */
	bool have_peer;
	int peer_done;            /* "done" messages from the partner */
	int ops_done;
	int op_status;
	unsigned pump_every;      /* spins between pumps while watching memory */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint8_t pattern(uint32_t seed, size_t i)
{
	uint32_t x = seed * 2654435761u + (uint32_t)i * 40503u;

	return (uint8_t)(x ^ (x >> 13) ^ (x >> 24));
}

static void die(const char *what, int err)
{
	fprintf(stderr, "portping: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

/* Handle what the transport reports; returns whether the link is up. */
static bool pump(struct bench *b, bool *link_up)
{
	struct tp_event ev[16];
	int n = tp_progress(b->tp, ev, 16);

	for (int i = 0; i < n; i++) {
		switch (ev[i].type) {
		case TP_EV_CONNECTED:
			*link_up = true;
			break;
		case TP_EV_CONNECT_FAILED:
		case TP_EV_DISCONNECTED:
			*link_up = false;
			break;
		case TP_EV_OP_DONE:
			b->ops_done++;
			if (ev[i].status)
				b->op_status = ev[i].status;
			break;
		case TP_EV_MESSAGE:
			if (ev[i].msg_len == 16 && !b->have_peer) {
				memcpy(&b->peer.addr, ev[i].msg, 8);
				memcpy(&b->peer.rkey, ev[i].msg + 8, 4);
				memcpy(&b->peer.len, ev[i].msg + 12, 4);
				b->have_peer = true;
			} else if (ev[i].msg_len == 4 && !memcmp(ev[i].msg, "done", 4)) {
				b->peer_done++;
			}
			break;
		default:
			break;
		}
	}
	return *link_up;
}

static bool link_up;

static void wait_until(struct bench *b, bool (*cond)(struct bench *), const char *what)
{
	uint64_t end = now_ns() + (uint64_t)WAIT_MS * 1000000;

	while (!cond(b)) {
		pump(b, &link_up);
		if (now_ns() > end) {
			fprintf(stderr, "portping: timed out waiting for %s\n", what);
			exit(1);
		}
	}
}

static int want_ops;
static bool ops_reached(struct bench *b) { return b->ops_done >= want_ops; }
static int want_done;
static bool done_reached(struct bench *b) { return b->peer_done >= want_done; }
static bool have_peer(struct bench *b) { return b->have_peer; }

/* One operation, waited for. */
static void op(struct bench *b, bool is_read, uint64_t off, uint32_t len)
{
	int r = is_read ? tp_read(b->tp, &b->peer, off, b->scratch, len, 1)
			: tp_write(b->tp, &b->peer, off, b->scratch, len, 1);

	if (r < 0)
		die(is_read ? "read" : "write", r);  /* r is -errno */
	want_ops = b->ops_done + 1;
	wait_until(b, ops_reached, "an operation");
	if (b->op_status)
		die("operation failed", b->op_status);
}

static void send_done(struct bench *b)
{
	if (tp_send(b->tp, "done", 4) < 0)
		die("send", errno);
}

static int verify(struct bench *b, uint32_t peer_node)
{
	int bad = 0;

	/* READ the partner's window: its first pattern. */
	for (uint32_t off = 0; off < WINDOW; off += CCM_OP_MAX) {
		op(b, true, off, CCM_OP_MAX);
		for (uint32_t i = 0; i < CCM_OP_MAX; i++)
			bad += b->scratch[i] != pattern(peer_node, off + i);
	}
	printf("read %u bytes of node %u's window: %s\n", WINDOW, peer_node, bad ? "MISMATCH" : "match");
	/* Everyone has read before anyone overwrites. */
	send_done(b);
	want_done = 1;
	wait_until(b, done_reached, "the partner's reads");
	for (uint32_t off = 0; off < WINDOW; off += CCM_OP_MAX) {
		for (uint32_t i = 0; i < CCM_OP_MAX; i++)
			b->scratch[i] = pattern(b->node + 1000, off + i);
		op(b, false, off, CCM_OP_MAX);
	}
	send_done(b);
	want_done = 2;
	wait_until(b, done_reached, "the partner's writes");
	{
		int wbad = 0;

		for (uint32_t i = 0; i < WINDOW; i++)
			wbad += b->window[i] != pattern(peer_node + 1000, i);
		printf("node %u wrote %u bytes into our window: %s\n", peer_node, WINDOW,
		       wbad ? "MISMATCH" : "match");
		bad += wbad;
	}
	return bad ? 1 : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *ns, int n, uint32_t size, int halve)
{
	qsort(ns, (size_t)n, sizeof(*ns), cmp_u64);
	printf("portping %s: %u bytes, %d iterations: median %.2f us, p90 %.2f us\n", what, size,
	       n, (double)ns[n / 2] / 1000.0 / halve, (double)ns[n * 9 / 10] / 1000.0 / halve);
}

static int write_lat(struct bench *b, bool leader, uint32_t size, int iters)
{
	volatile uint32_t *mine = (volatile uint32_t *)b->window;
	uint64_t *ns = calloc((size_t)iters, sizeof(*ns));

	if (!ns)
		die("calloc", ENOMEM);
	memset(b->scratch, 0, size);
	for (int i = 1; i <= iters; i++) {
		uint64_t t0 = now_ns(), end = t0 + (uint64_t)WAIT_MS * 1000000;
		int r;

		if (leader) {
			memcpy(b->scratch, &i, sizeof(i));
			r = tp_write(b->tp, &b->peer, 0, b->scratch, size, 1);
			if (r < 0)
				die("write", r);
		}
		/* The partner's write lands in our memory, as in
		 * ib_write_lat; watch the memory, and pump the transport now
		 * and then (for tcp the write lands only when our loop
		 * serves it). */
		for (unsigned spin = 0; *mine != (uint32_t)i; spin++) {
			if (spin % b->pump_every == b->pump_every - 1)
				pump(b, &link_up);
			if (spin % 4096 == 4095 && now_ns() > end)
				die("waiting for the partner's write", ETIMEDOUT);
		}
		if (!leader) {
			memcpy(b->scratch, &i, sizeof(i));
			r = tp_write(b->tp, &b->peer, 0, b->scratch, size, 1);
			if (r < 0)
				die("write", r);
		}
		ns[i - 1] = now_ns() - t0;
		/* Our own completions, off the timed path and in batches:
		 * rxe asks for an ACK only every so many packets, so a
		 * write's completion can trail its arrival by milliseconds. */
		if (i - b->ops_done >= RDMA_PENDING_BATCH)
			while (b->ops_done < i)
				pump(b, &link_up);
	}
	want_ops = iters;
	wait_until(b, ops_reached, "the last completions");
	if (leader)
		report("write (half round trip)", ns, iters, size, 2);
	free(ns);
	return 0;
}

static int read_lat(struct bench *b, bool leader, uint32_t size, int iters)
{
	uint64_t *ns = calloc((size_t)iters, sizeof(*ns));

	if (!ns)
		die("calloc", ENOMEM);
	if (leader) {
		for (int i = 0; i < iters; i++) {
			uint64_t t0 = now_ns();

			op(b, true, 0, size);
			ns[i] = now_ns() - t0;
		}
		report("read", ns, iters, size, 1);
	}
	free(ns);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: portping --node N --local ADDR[:PORT] --partner ADDR[:PORT] "
		"[--transport rdma|tcp] [--size BYTES] [--iters N] verify|write-lat|read-lat\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "node", required_argument, NULL, 'n' },
		{ "local", required_argument, NULL, 'l' },
		{ "partner", required_argument, NULL, 'p' },
		{ "transport", required_argument, NULL, 't' },
		{ "size", required_argument, NULL, 's' },
		{ "iters", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	struct tp_config cfg = { .op_timeout_ms = 2000, .connect_timeout_ms = 1000 };
	const char *transport = "rdma", *mode;
	uint32_t size = 64, peer_node;
	int iters = 1000, c, r, rc = 0;
	struct tp_remote status_h, scratch_h;
	struct bench b = { 0 };
	uint8_t *status;
	struct errbuf e;
	uint64_t end;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n': b.node = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'l': if (tp_parse_addr(optarg, CCM_DEFAULT_PORT + 100, &cfg.local, &e) < 0) usage(); break;
		case 'p': if (tp_parse_addr(optarg, CCM_DEFAULT_PORT + 100, &cfg.partner, &e) < 0) usage(); break;
		case 't': transport = optarg; break;
		case 's': size = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'i': iters = atoi(optarg); break;
		default: usage();
		}
	}
	if (optind + 1 != argc || !b.node || !cfg.local.host[0] || !cfg.partner.host[0] ||
	    !size || size > CCM_OP_MAX || iters < 1)
		usage();
	mode = argv[optind];
	cfg.node_id = b.node;
	/* A tcp partner's write lands only when our loop serves it; an rdma
	 * one lands by itself, and a pump is a system call to spare. */
	b.pump_every = strcmp(transport, "tcp") == 0 ? 64 : 65536;
	if (!tp_lookup(transport) || (r = tp_lookup(transport)->create(&cfg, &b.tp, &e)) < 0) {
		fprintf(stderr, "portping: %s\n", tp_lookup(transport) ? e.msg : "no such transport");
		return 1;
	}
	b.pt = calloc(1, sizeof(*b.pt));
	status = mmap(NULL, STATUS_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	b.scratch = mmap(NULL, CCM_OP_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!b.pt || status == MAP_FAILED || b.scratch == MAP_FAILED)
		die("memory", ENOMEM);
	if ((r = tp_expose(b.tp, status, STATUS_PAGE, TP_EXPOSE_STATUS, &status_h)) < 0 ||
	    (r = tp_expose(b.tp, b.scratch, CCM_OP_MAX, TP_EXPOSE_LOCAL, &scratch_h)) < 0)
		die("expose", r);
	if (ports_add_client(b.pt, &b.tp, 1, "bench", 1, WINDOW, &e) < 0) {
		fprintf(stderr, "portping: %s\n", e.msg);
		return 1;
	}
	b.window = b.pt->c[0].port[0].map;
	for (uint32_t i = 0; i < WINDOW; i++)
		b.window[i] = pattern(b.node, i);
	if (strcmp(mode, "verify") != 0)
		memset(b.window, 0, WINDOW);
	if (tp_listen(b.tp, &e) < 0) {
		fprintf(stderr, "portping: %s\n", e.msg);
		return 1;
	}
	/* Find the partner: connect until it answers. */
	end = now_ns() + (uint64_t)WAIT_MS * 1000000;
	while (!link_up) {
		uint64_t retry = now_ns() + 50000000;

		tp_connect(b.tp);
		while (!pump(&b, &link_up) && now_ns() < retry)
			;
		if (now_ns() > end)
			die("connecting to the partner", ETIMEDOUT);
	}
	{
		uint8_t msg[16];
		const struct tp_remote *w = &b.pt->c[0].port[0].local[0];

		memcpy(msg, &w->addr, 8);
		memcpy(msg + 8, &w->rkey, 4);
		memcpy(msg + 12, &w->len, 4);
		if (tp_send(b.tp, msg, sizeof(msg)) < 0)
			die("send", errno);
	}
	wait_until(&b, have_peer, "the partner's window");
	peer_node = b.node == 1 ? 2 : 1;
	if (strcmp(mode, "verify") == 0)
		rc = verify(&b, peer_node);
	else if (strcmp(mode, "write-lat") == 0)
		rc = write_lat(&b, b.node < peer_node, size, iters);
	else if (strcmp(mode, "read-lat") == 0)
		rc = read_lat(&b, b.node < peer_node, size, iters);
	else
		usage();
	/* Part only when both are done, so neither leaves the other's last
	 * answer unread. */
	send_done(&b);
	want_done = strcmp(mode, "verify") == 0 ? 3 : 1;
	wait_until(&b, done_reached, "the partner to finish");
	ports_destroy(b.pt, &b.tp, 1);
	tp_destroy(b.tp);
	free(b.pt);
	return rc;
}
