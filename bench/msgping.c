/* msgping: message round trips between two clients through their ports
 * (libccm, the keepers in between), and the same over a raw TCP connection
 * between two processes, for bench/keeper.sh to set side by side; and a
 * watcher that reports when the keeper says the partner is lost.
 *
 *   msgping pong  --state-dir DIR [--client NAME]    echo until told to stop
 *   msgping ping  --state-dir DIR [--client NAME] [--iters N] [--size B]
 *   msgping tcp-pong PORT
 *   msgping tcp-ping HOST PORT [--iters N] [--size B]
 *   msgping watch --state-dir DIR [--client NAME]    print when PARTNER_LOST comes
 *   msgping sink   --state-dir DIR [--client NAME] [--iters N]
 *   msgping source --state-dir DIR [--client NAME] [--iters N] [--size B]
 *   msgping tcp-sink PORT [--iters N]
 *   msgping tcp-source HOST PORT [--iters N] [--size B]
 *
 * ping prints "median X us p90 Y us" of the round trips; watch prints the
 * CLOCK_REALTIME second at which the partner was reported lost.  source
 * streams N messages to sink as fast as the channel takes them (over a
 * port: within its window), and sink answers once it has them all; source
 * prints "N messages in T ms: R messages/s", from its first message to
 * that answer. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client/ccm.h"

#define MSG_MAX 3072

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *ns, int n, size_t size)
{
	qsort(ns, (size_t)n, sizeof(*ns), cmp_u64);
	printf("%s: %zu-byte messages, %d round trips: median %.1f us p90 %.1f us\n", what, size,
	       n, (double)ns[n / 2] / 1000.0, (double)ns[n * 9 / 10] / 1000.0);
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "msgping: %s: %s\n", what, err < 0 ? ccm_strerror(err) : strerror(err));
	return 1;
}

/* The next message on our port, answering DONEs and ignoring the rest. */
static int next_msg(struct ccm_client *c, struct ccm_event *ev, int timeout_ms)
{
	for (;;) {
		int r = ccm_next(c, ev, timeout_ms);

		if (r < 0)
			return r;
		if (ev->type == CCM_EV_MSG)
			return 0;
		if (ev->type == CCM_EV_DONE && ev->status < 0)
			return ev->status;
		if (ev->type == CCM_EV_KEEPER_GONE || ev->type == CCM_EV_TERMINATING)
			return -ENOTCONN;
	}
}

/* ccm_send, waiting for credit when the port's window is full (its DONEs
 * come once the partner's client has the messages).  No message can come
 * meanwhile: the other side sends nothing before our answer. */
static int send_when_credit(struct ccm_client *c, int port, const void *m, size_t len)
{
	struct ccm_event ev;
	int r;

	while ((r = ccm_send(c, port, m, len, NULL)) == -EAGAIN) {
		r = ccm_next(c, &ev, 10000);
		if (r < 0)
			return r;
		if (ev.type == CCM_EV_DONE && ev.status < 0)
			return ev.status;
		if (ev.type == CCM_EV_MSG)
			return -EPROTO;
	}
	return r;
}

static int ccm_pingpong(const char *dir, const char *client, int iters, size_t size, int is_ping)
{
	static uint8_t buf[MSG_MAX];
	struct ccm_client *c;
	struct ccm_event ev;
	uint64_t *ns;
	uint32_t tag;
	int r;

	r = ccm_attach(client, dir, &c);
	if (r < 0)
		return fail("attach", r);
	if (!is_ping) {
		/* pong: echo everything until "quit". */
		while (next_msg(c, &ev, -1) == 0) {
			if (ev.len == 4 && !memcmp(ev.data, "quit", 4))
				break;
			memcpy(buf, ev.data, ev.len);
			r = send_when_credit(c, ev.port, buf, ev.len);
			if (r < 0)
				return fail("send", r);
		}
		ccm_detach(c);
		return 0;
	}
	ns = calloc((size_t)iters, sizeof(*ns));
	if (!ns)
		return fail("calloc", ENOMEM);
	memset(buf, 'x', size);
	/* Warm-up round trips.  The first also waits for the pong to attach:
	 * its keeper holds the message for it until then. */
	for (int i = 0; i < 20; i++) {
		r = send_when_credit(c, 0, buf, size);
		if (r == 0)
			r = next_msg(c, &ev, 10000);
		if (r < 0)
			return fail("warm-up", r);
	}
	for (int i = 0; i < iters; i++) {
		uint64_t t0 = now_ns();

		r = send_when_credit(c, 0, buf, size);
		if (r == 0)
			r = next_msg(c, &ev, 10000);
		if (r < 0)
			return fail("round trip", r);
		ns[i] = now_ns() - t0;
	}
	report("ccm ports (client -> keeper -> keeper -> client and back)", ns, iters, size);
	/* The quit must have left before we detach. */
	if (ccm_send(c, 0, "quit", 4, &tag) == 0)
		while (ccm_next(c, &ev, 5000) == 0 && !(ev.type == CCM_EV_DONE && ev.tag == tag))
			;
	ccm_detach(c);
	free(ns);
	return 0;
}

static int full(int fd, void *p, size_t n, int out)
{
	uint8_t *b = p;

	while (n) {
		ssize_t k = out ? send(fd, b, n, MSG_NOSIGNAL) : recv(fd, b, n, 0);

		if (k <= 0)
			return -1;
		b += k;
		n -= (size_t)k;
	}
	return 0;
}

/* One TCP connection with TCP_NODELAY: accepted at host:port (saying
 * "listening" first), or made to it.  The fd, or -1 after saying why. */
static int tcp_open(const char *host, int port, int accepting)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, fd, l;

	inet_pton(AF_INET, host, &sin.sin_addr);
	if (accepting) {
		l = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(l, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(l, 1) < 0) {
			fail("tcp listen", errno);
			return -1;
		}
		printf("listening\n");
		fflush(stdout);
		fd = accept(l, NULL, NULL);
		close(l);
		if (fd < 0) {
			fail("accept", errno);
			return -1;
		}
	} else {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
			fail("tcp connect", errno);
			close(fd);
			return -1;
		}
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int tcp_pingpong(const char *host, int port, int iters, size_t size, int is_ping)
{
	static uint8_t buf[MSG_MAX];
	int fd = tcp_open(host, port, !is_ping);
	uint64_t *ns;

	if (fd < 0)
		return 1;
	if (!is_ping) {
		/* Messages are framed by a 4-byte length, as a real protocol
		 * over a stream must be. */
		for (;;) {
			uint32_t len;

			if (full(fd, &len, 4, 0) < 0 || len > MSG_MAX || full(fd, buf, len, 0) < 0)
				break;
			if (full(fd, &len, 4, 1) < 0 || full(fd, buf, len, 1) < 0)
				break;
		}
		close(fd);
		return 0;
	}
	ns = calloc((size_t)iters, sizeof(*ns));
	memset(buf, 'x', size);
	for (int i = -20; i < iters; i++) {
		uint64_t t0 = now_ns();
		uint32_t len = (uint32_t)size;

		if (full(fd, &len, 4, 1) < 0 || full(fd, buf, size, 1) < 0 ||
		    full(fd, &len, 4, 0) < 0 || full(fd, buf, len, 0) < 0)
			return fail("tcp round trip", EPIPE);
		if (i >= 0)
			ns[i] = now_ns() - t0;
	}
	report("raw TCP between two processes", ns, iters, size);
	close(fd);
	free(ns);
	return 0;
}

static int report_rate(const char *what, int iters, size_t size, uint64_t ns)
{
	if (ns == 0)
		return fail("stream: no time measured", EINVAL);
	printf("%s: %d %zu-byte messages in %.1f ms: %.0f messages/s\n", what, iters, size,
	       (double)ns / 1e6, (double)iters * 1e9 / (double)ns);
	return 0;
}

static int ccm_stream(const char *dir, const char *client, int iters, size_t size, int is_source)
{
	static uint8_t buf[MSG_MAX];
	struct ccm_client *c;
	struct ccm_event ev;
	uint64_t t0;
	int r;

	r = ccm_attach(client, dir, &c);
	if (r < 0)
		return fail("attach", r);
	memset(buf, 'x', size);
	if (!is_source) {
		/* The source's hello, echoed; its stream; then our answer. */
		r = next_msg(c, &ev, 30000);
		if (r == 0)
			r = send_when_credit(c, ev.port, "hello", 5);
		for (int i = 0; i < iters && r == 0; i++)
			r = next_msg(c, &ev, 30000);
		if (r == 0)
			r = ccm_send_sync(c, 0, "all", 3);
		ccm_detach(c);
		return r < 0 ? fail("sink", r) : 0;
	}
	/* The sink is there once our hello comes back (it waits for it if
	 * not: its keeper holds it). */
	r = send_when_credit(c, 0, "hello", 5);
	if (r == 0)
		r = next_msg(c, &ev, 30000);
	t0 = now_ns();
	for (int i = 0; i < iters && r == 0; i++)
		r = send_when_credit(c, 0, buf, size);
	if (r == 0)
		r = next_msg(c, &ev, 30000);
	t0 = now_ns() - t0;
	ccm_detach(c);
	if (r < 0)
		return fail("source", r);
	return report_rate("ccm ports stream", iters, size, t0);
}

static int tcp_stream(const char *host, int port, int iters, size_t size, int is_source)
{
	static uint8_t buf[MSG_MAX];
	int fd = tcp_open(host, port, !is_source);
	uint32_t len = (uint32_t)size;
	uint8_t all = 1;
	uint64_t t0;

	if (fd < 0)
		return 1;
	if (!is_source) {
		for (int i = 0; i < iters; i++)
			if (full(fd, &len, 4, 0) < 0 || len > MSG_MAX || full(fd, buf, len, 0) < 0)
				return fail("tcp sink", EPIPE);
		if (full(fd, &all, 1, 1) < 0)
			return fail("tcp sink", EPIPE);
		close(fd);
		return 0;
	}
	memset(buf, 'x', size);
	t0 = now_ns();
	/* Framed as a real protocol over a stream must be, one write each. */
	for (int i = 0; i < iters; i++)
		if (full(fd, &len, 4, 1) < 0 || full(fd, buf, size, 1) < 0)
			return fail("tcp source", EPIPE);
	if (full(fd, &all, 1, 0) < 0)
		return fail("tcp source", EPIPE);
	t0 = now_ns() - t0;
	close(fd);
	return report_rate("raw TCP stream", iters, size, t0);
}

static int watch(const char *dir, const char *client)
{
	struct ccm_client *c;
	struct ccm_event ev;
	struct timespec ts;
	int r = ccm_attach(client, dir, &c);

	if (r < 0)
		return fail("attach", r);
	printf("watching\n");
	fflush(stdout);
	while ((r = ccm_next(c, &ev, -1)) == 0 && ev.type != CCM_EV_PARTNER_LOST)
		;
	clock_gettime(CLOCK_REALTIME, &ts);
	ccm_detach(c);
	if (r < 0)
		return fail("watch", r);
	printf("partner lost at %lld.%09ld\n", (long long)ts.tv_sec, ts.tv_nsec);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 'd' },
		{ "client", required_argument, NULL, 'c' },
		{ "iters", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *client = "fmon", *mode;
	int iters = 2000, opt;
	size_t size = 64;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': dir = optarg; break;
		case 'c': client = optarg; break;
		case 'n': iters = atoi(optarg); break;
		case 's': size = (size_t)atoi(optarg); break;
		default: return 2;
		}
	}
	if (optind >= argc || iters < 1 || size < 1 || size > MSG_MAX)
		return 2;
	mode = argv[optind];
	if (!strcmp(mode, "ping") || !strcmp(mode, "pong"))
		return dir ? ccm_pingpong(dir, client, iters, size, !strcmp(mode, "ping")) : 2;
	if (!strcmp(mode, "watch"))
		return dir ? watch(dir, client) : 2;
	if (!strcmp(mode, "source") || !strcmp(mode, "sink"))
		return dir ? ccm_stream(dir, client, iters, size, !strcmp(mode, "source")) : 2;
	if (!strcmp(mode, "tcp-sink") && optind + 1 < argc)
		return tcp_stream("127.0.0.2", atoi(argv[optind + 1]), iters, size, 0);
	if (!strcmp(mode, "tcp-source") && optind + 2 < argc)
		return tcp_stream(argv[optind + 1], atoi(argv[optind + 2]), iters, size, 1);
	if (!strcmp(mode, "tcp-pong") && optind + 1 < argc)
		return tcp_pingpong("127.0.0.2", atoi(argv[optind + 1]), iters, size, 0);
	if (!strcmp(mode, "tcp-ping") && optind + 2 < argc)
		return tcp_pingpong(argv[optind + 1], atoi(argv[optind + 2]), iters, size, 1);
	return 2;
}
