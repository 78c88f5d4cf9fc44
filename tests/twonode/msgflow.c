/* ccm-msgflow: the message channel's flow control, seen from two clients.
 *
 *   ccm-msgflow send --state-dir DIR --client NAME --count N [--size S]
 *                    [--until-lost]
 *   ccm-msgflow recv --state-dir DIR --client NAME --count N [--deaf-ms T]
 *                    [--from-any] [--until-gone]
 *
 * send pipelines N messages of S bytes (default 64) on port 0 as fast as
 * ccm_send takes them, each numbered (8 bytes, big-endian, from 1) and
 * filled with a pattern of its number.  -EAGAIN (no credit) makes it wait
 * for a DONE.  Every DONE must be 0; it ends when all N are.  It prints
 *   sent=N done=N failed=0 eagain=K max_in_flight=M
 * With --until-lost a DONE that is not 0 is counted, not fatal: send stops
 * sending at the first and ends once every message sent has its DONE
 * (the partner's loss events are expected then).  Since DONEs come in the
 * order sent, the ones that are 0 are messages 1..done.
 * recv attaches, prints "attached", then reads nothing for T ms (a slow
 * client), then takes messages up to number N and checks that they come
 * exactly once, in order, intact: from 1, or with --from-any from
 * whichever comes first.  It prints "received=R first=F last=L" and stays
 * attached until then: a keeper that dropped it shows as KEEPER_GONE, a
 * failure -- or with --until-gone the end, with what it had.
 * Either exits 1 with the reason on anything else, 2 on bad usage, and
 * gives up after --timeout-s seconds (default 60). */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/num.h"
#include "client/ccm.h"

#define PROG "ccm-msgflow"

struct opts {
	const char *dir, *client;
	uint32_t count, size, deaf_ms, timeout_s;
	bool until_lost, from_any, until_gone;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void fill(uint8_t *m, size_t len, uint64_t n)
{
	for (int i = 0; i < 8; i++)
		m[i] = (uint8_t)(n >> (56 - 8 * i));
	for (size_t i = 8; i < len; i++)
		m[i] = (uint8_t)(n * 31 + i);
}

static int die(const char *what, int err)
{
	fprintf(stderr, PROG ": %s: %s\n", what, ccm_strerror(err));
	return 1;
}

static int do_send(struct ccm_client *c, const struct opts *o)
{
	uint8_t m[3072];
	unsigned long sent = 0, done = 0, failed = 0, eagain = 0, in_flight = 0, max_in_flight = 0;
	int first_error = 0;
	uint64_t deadline = now_ms() + (uint64_t)o->timeout_s * 1000;
	struct ccm_event ev;
	int r;

	while (first_error ? in_flight > 0 : done < o->count) {
		if (now_ms() > deadline) {
			fprintf(stderr, PROG ": timed out: sent %lu, done %lu, failed %lu\n", sent,
				done, failed);
			return 1;
		}
		while (sent < o->count && !first_error) {
			fill(m, o->size, sent + 1);
			r = ccm_send(c, 0, m, o->size, NULL);
			if (r == -EAGAIN) {
				eagain++;
				break;
			}
			if (r < 0)
				return die("ccm_send", r);
			sent++;
			if (++in_flight > max_in_flight)
				max_in_flight = in_flight;
		}
		r = ccm_next(c, &ev, 1000);
		if (r == -EAGAIN)
			continue;
		if (r < 0)
			return die("ccm_next", r);
		if (ev.type == CCM_EV_KEEPER_GONE || ev.type == CCM_EV_TERMINATING ||
		    (ev.type == CCM_EV_PARTNER_LOST && !o->until_lost)) {
			fprintf(stderr, PROG ": %s after %lu DONEs\n", ccm_event_name(ev.type), done);
			return 1;
		}
		if (ev.type != CCM_EV_DONE)
			continue;
		in_flight--;
		if (ev.status == 0 && failed) {
			fprintf(stderr, PROG ": a DONE 0 after %lu that failed: out of order\n", failed);
			return 1;
		}
		if (ev.status == 0) {
			done++;
			continue;
		}
		if (!o->until_lost) {
			fprintf(stderr, PROG ": message DONE %s after %lu good ones\n",
				ccm_strerror(ev.status), done);
			return 1;
		}
		if (!first_error)
			first_error = ev.status;
		failed++;
	}
	printf("sent=%lu done=%lu failed=%lu eagain=%lu max_in_flight=%lu first_error=%d\n", sent,
	       done, failed, eagain, max_in_flight, first_error);
	return 0;
}

static int do_recv(struct ccm_client *c, const struct opts *o)
{
	uint8_t want[3072];
	unsigned long got = 0;
	uint64_t deadline, first = 0, last = 0;
	struct ccm_event ev;
	struct timespec deaf = { (time_t)(o->deaf_ms / 1000), (long)(o->deaf_ms % 1000) * 1000000 };
	int r;

	printf("attached\n");
	fflush(stdout);
	nanosleep(&deaf, NULL);
	deadline = now_ms() + (uint64_t)o->timeout_s * 1000;
	while (last < o->count) {
		uint64_t n = 0;

		if (now_ms() > deadline) {
			fprintf(stderr, PROG ": timed out at message %llu of %u\n",
				(unsigned long long)last, o->count);
			return 1;
		}
		r = ccm_next(c, &ev, 1000);
		if (r == -EAGAIN)
			continue;
		if (r < 0)
			return die("ccm_next", r);
		if (ev.type == CCM_EV_KEEPER_GONE || ev.type == CCM_EV_TERMINATING) {
			if (o->until_gone)
				break;
			fprintf(stderr, PROG ": %s after %lu messages\n", ccm_event_name(ev.type), got);
			return 1;
		}
		if (ev.type != CCM_EV_MSG)
			continue;
		for (size_t i = 0; i < 8 && i < ev.len; i++)
			n = n << 8 | ev.data[i];
		if (!got && o->from_any)
			last = n - 1;
		fill(want, ev.len, last + 1);
		if (ev.port != 0 || ev.len < 8 || memcmp(ev.data, want, ev.len) != 0) {
			fprintf(stderr, PROG ": message %llu of %zu bytes on port %u where %llu was due: "
				"lost, duplicated, reordered or damaged\n", (unsigned long long)n,
				ev.len, ev.port, (unsigned long long)last + 1);
			return 1;
		}
		if (!got++)
			first = n;
		last = n;
	}
	printf("received=%lu first=%llu last=%llu\n", got, (unsigned long long)first,
	       (unsigned long long)last);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: " PROG " send|recv --state-dir DIR --client NAME --count N\n"
			"       [--size BYTES] [--deaf-ms MS] [--timeout-s S] [--until-lost]\n"
			"       [--from-any] [--until-gone]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "state-dir", required_argument, NULL, 'd' },
		{ "client", required_argument, NULL, 'c' },
		{ "count", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "deaf-ms", required_argument, NULL, 'D' },
		{ "timeout-s", required_argument, NULL, 't' },
		{ "until-lost", no_argument, NULL, 'L' },
		{ "from-any", no_argument, NULL, 'A' },
		{ "until-gone", no_argument, NULL, 'G' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .size = 64, .timeout_s = 60 };
	struct ccm_client *c;
	bool send;
	int opt, r;

	if (argc < 2 || (strcmp(argv[1], "send") && strcmp(argv[1], "recv")))
		return usage();
	send = !strcmp(argv[1], "send");
	optind = 2;
	while ((opt = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		bool ok = true;

		switch (opt) {
		case 'd': o.dir = optarg; break;
		case 'c': o.client = optarg; break;
		case 'n': ok = !num_parse_u32(optarg, 1, 100000000, &o.count); break;
		case 's': ok = !num_parse_u32(optarg, 8, 3072, &o.size); break;
		case 'D': ok = !num_parse_u32(optarg, 0, 600000, &o.deaf_ms); break;
		case 't': ok = !num_parse_u32(optarg, 1, 3600, &o.timeout_s); break;
		case 'L': o.until_lost = true; break;
		case 'A': o.from_any = true; break;
		case 'G': o.until_gone = true; break;
		default: ok = false; break;
		}
		if (!ok)
			return usage();
	}
	if (!o.dir || !o.client || !o.count || optind != argc)
		return usage();
	r = ccm_attach(o.client, o.dir, &c);
	if (r < 0)
		return die("ccm_attach", r);
	r = send ? do_send(c, &o) : do_recv(c, &o);
	ccm_detach(c);
	return r;
}
