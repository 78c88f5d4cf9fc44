/* ccm-nvmirror: NVRAM shadowing.  Tails a local log (a file some writer
 * appends to; a file in /dev/shm for shared memory) and mirrors it, record
 * by record with sequence numbers and checksums (mirror.h), into this
 * client's window of one port on the partner, so the partner can verify
 * and replay it (`ccm-early dump --payload` there gives the log back).
 *
 * Our own window of the port is the staging copy: a record is appended
 * there, then pushed with ccm_write to the same offset of the partner's
 * window.  That window is also where the partner's client writes, so when
 * both nodes mirror, each must use its own port (say node 1 port 0, node
 * 2 port 1).  A start begins a new generation and mirrors the log from
 * its first byte; while the partner is lost the log is not read, so
 * nothing is dropped: the file holds it until the partner is back. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "client/ccm.h"
/* Not the public header alone: the record format is shared with
 * `ccm-early dump` (mirror.h), and a write's size limit (CCM_OP_MAX) is
 * the keeper's, which ccm.h does not state. */
#include "base/limits.h"
#include "proto/mirror.h"

#define PROG              "ccm-nvmirror"
#define DEFAULT_CLIENT    "nvmirror"
#define DEFAULT_INTERVAL  50
#define DEFAULT_RECORD    4096
#define MAX_INFLIGHT      8           /* record writes outstanding at once */
#define BATCH_MAX         (1u << 20)  /* log bytes read per push */
#define FINISH_MS         2000        /* to finish a push once told to stop */

struct opts {
	const char *client;
	const char *state_dir;        /* NULL: libccm's default */
	char instance_dir[4096];      /* --instance's state directory */
	const char *log_path;
	uint32_t port;
	uint32_t interval_ms;
	uint32_t max_record;
	bool once;
	int verbose;
};

/* One push runs these phases in order; each waits for all its writes. */
enum phase {
	PH_IDLE,
	PH_INVALIDATE,  /* an empty header, before records change under the old one */
	PH_RECORDS,     /* [cur, hi) in writes of at most CCM_OP_MAX */
	PH_HEADER,      /* the header that commits them, with CCM_NOTIFY */
};

struct nvm {
	struct opts o;
	struct ccm_client *c;
	uint8_t *win;
	size_t winlen;
	uint8_t *chunk;
	int logfd, sigfd, timerfd;
	off_t pos;              /* log bytes appended to the window */
	off_t once_end;         /* --once: the log's size at start */
	bool partner_ok;        /* not between PARTNER_LOST and BACK/READY */
	bool need_resync;       /* rewrite the partner's whole copy */
	bool failing;           /* the last push failed (said once) */
	bool retry_wait;        /* after a failure: no new push before the next tick */
	bool push_resync;       /* the push under way is a resync */
	bool stopping;
	bool keeper_restarting; /* stopping for `ccm-early stop --restart`: exit 1,
	                           to be started again (Restart=on-failure) */
	uint64_t partner_epoch; /* 0: not known */
	uint32_t acked_gen;     /* the partner's copy is a prefix of this generation; 0: unknown */
	struct mirror_hdr real; /* the header the push commits */
	enum phase phase;
	unsigned inflight;
	int phase_err;
	uint32_t cur, hi;
};

static void say(const struct nvm *m, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(const struct nvm *m, int level, const char *fmt, ...)
{
	struct timespec ts;
	struct tm tm;
	char line[512];
	va_list ap;
	int n;

	if (level > m->o.verbose)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ " PROG ": ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, ts.tv_nsec / 1000);
	if (n < 0 || n >= (int)sizeof(line))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", line);
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " --log FILE [OPTIONS]\n"
		"\n"
		"Mirror a local log into this client's window on the partner node, one\n"
		"record (sequence number, CRC-32) per chunk read, so the partner can verify\n"
		"and replay it with 'ccm-early dump --payload'.  Runs under\n"
		"'ccm-early exec CLIENT -- " PROG " ...' or attaches to the keeper itself.\n"
		"\n"
		"  --log FILE          the log to tail (a file in /dev/shm for shared memory)\n"
		"  --client NAME       the client (default " DEFAULT_CLIENT ")\n"
		"  --state-dir DIR     the keeper's directory\n"
		"  --instance NAME     the keeper of ccm-early instance NAME (default\n"
		"                      $CCM_INSTANCE, else the unnamed one: /run/ccm)\n"
		"  --port N            the port whose window takes the log (default 0); when\n"
		"                      both nodes mirror, each needs its own port\n"
		"  --interval MS       how often to look for new bytes, 1..60000 (default %d)\n"
		"  --max-record BYTES  the largest record, 1..%u (default %d)\n"
		"  --once              mirror what the log holds now, wait until the partner\n"
		"                      has it, exit\n"
		"  -v, --verbose       say more (-vv: every push)\n"
		"  -h, --help          this help\n"
		"\n"
		"Exit codes: 0 stopped by SIGTERM/SIGINT or the keeper, or --once done;\n"
		"1 failure (no keeper, log unreadable, a push failed with --once); 2 usage.\n",
		DEFAULT_INTERVAL, MIRROR_PAYLOAD_MAX, DEFAULT_RECORD);
}

/* Decimal digits only, min..max: no sign, blanks or suffix, nothing that
 * strtoul would take and wrap. */
static int parse_num(const char *opt, const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;
	const char *p;

	for (p = s; *p >= '0' && *p <= '9' && v <= max; p++)
		v = v * 10 + (uint64_t)(*p - '0');
	if (p == s || *p || v < min || v > max) {
		fprintf(stderr, PROG ": --%s: '%.64s' is not a number in %u..%u\n", opt, s,
			min, max);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "log", required_argument, NULL, 'l' },
		{ "client", required_argument, NULL, 'c' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "instance", required_argument, NULL, 'I' },
		{ "port", required_argument, NULL, 'p' },
		{ "interval", required_argument, NULL, 'i' },
		{ "max-record", required_argument, NULL, 'm' },
		{ "once", no_argument, NULL, 'o' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, r = 0;

	*o = (struct opts){
		.client = DEFAULT_CLIENT, .interval_ms = DEFAULT_INTERVAL,
		.max_record = DEFAULT_RECORD,
	};
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			o->log_path = optarg;
			break;
		case 'c':
			o->client = optarg;
			break;
		case 's':
			o->state_dir = optarg;
			break;
		case 'I':
			r = ccm_instance_dir(optarg, o->instance_dir, sizeof(o->instance_dir));
			if (r < 0)
				fprintf(stderr, PROG ": --instance '%.64s': %s\n", optarg,
					r == -EINVAL ? "not an instance name" : ccm_strerror(r));
			else
				o->state_dir = o->instance_dir;
			break;
		case 'p':
			/* Checked against the client's ports once attached. */
			r = parse_num("port", optarg, 0, UINT16_MAX, &o->port);
			break;
		case 'i':
			r = parse_num("interval", optarg, 1, 60000, &o->interval_ms);
			break;
		case 'm':
			r = parse_num("max-record", optarg, 1, MIRROR_PAYLOAD_MAX, &o->max_record);
			break;
		case 'o':
			o->once = true;
			break;
		case 'v':
			o->verbose++;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			r = -EINVAL;
			break;
		}
		if (r < 0)
			break;
	}
	if (r == 0 && optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%.64s'\n", argv[optind]);
		r = -EINVAL;
	}
	if (r == 0 && !o->log_path) {
		fprintf(stderr, PROG ": --log FILE is required\n");
		r = -EINVAL;
	}
	if (r < 0)
		usage(stderr);
	return r;
}

/* --- pushing to the partner ------------------------------------------------- */

static int write_op(struct nvm *m, uint32_t off, uint32_t len, unsigned flags)
{
	uint32_t tag;
	int r = ccm_write(m->c, (int)m->o.port, off, off, len, flags, &tag);

	if (r < 0)
		return r;
	m->inflight++;
	say(m, 2, "write [%u, +%u)%s tag %u", off, len, flags ? " notify" : "", tag);
	return 0;
}

static void issue_records(struct nvm *m)
{
	while (!m->phase_err && m->inflight < MAX_INFLIGHT && m->cur < m->hi) {
		uint32_t n = m->hi - m->cur < CCM_OP_MAX ? m->hi - m->cur : CCM_OP_MAX;
		int r = write_op(m, m->cur, n, 0);

		if (r < 0)
			m->phase_err = r;
		else
			m->cur += n;
	}
}

static void push_failed(struct nvm *m)
{
	/* The real header goes back in place whatever phase failed: the
	 * next push starts from it. */
	mirror_encode_header(&m->real, m->win);
	m->phase = PH_IDLE;
	m->need_resync = true;
	m->retry_wait = true;
	say(m, m->failing ? 1 : 0, "pushing to the partner failed: %s; %s",
	    ccm_strerror(m->phase_err), m->partner_ok ? "trying again" :
	    "waiting for the partner to come back");
	m->failing = true;
	m->phase_err = 0;
}

/* Move the push on once its phase's writes are all done.  The order is
 * what keeps the partner's copy valid at every instant (mirror.h: the
 * header is the commit point):
 *   records, then the header: a header never covers a record that has not
 *     landed, since the keeper may carry writes over different links and
 *     only a completion says a write is in the partner's memory;
 *   before records overwrite ones the partner's header still covers (a
 *     wrap, or rewriting a copy we know nothing about), an empty header
 *     first, so the partner sees an empty log rather than a torn one. */
static void advance(struct nvm *m)
{
	int r;

	for (;;) {
		if (m->phase == PH_IDLE || m->inflight > 0)
			return;
		if (m->phase == PH_RECORDS && m->cur < m->hi && !m->phase_err) {
			issue_records(m);
			if (m->inflight > 0)
				return;
		}
		if (m->phase_err) {
			push_failed(m);
			return;
		}
		switch (m->phase) {
		case PH_INVALIDATE:
			mirror_encode_header(&m->real, m->win);
			m->acked_gen = m->real.generation;
			m->phase = PH_RECORDS;
			continue;
		case PH_RECORDS:
			m->phase = PH_HEADER;
			r = write_op(m, 0, MIRROR_HDR_SIZE, CCM_NOTIFY);
			if (r < 0)
				m->phase_err = r;
			continue;
		case PH_HEADER:
			m->phase = PH_IDLE;
			m->acked_gen = m->real.generation;
			m->push_resync = false;
			if (m->failing)
				say(m, 0, "mirroring to the partner again");
			m->failing = false;
			say(m, 1, "partner has generation %u up to seq %" PRIu64 " (%u bytes)",
			    m->real.generation, m->real.last_seq, m->real.next);
			return;
		case PH_IDLE:
			return;
		}
	}
}

/* Append the log's new bytes to the window, up to BATCH_MAX or the end of
 * the window.  *lo is where the push starts (the caller's choice) and
 * moves to the start when the log wraps.  1 if anything was appended or
 * the log wrapped, 0 if not, or a negative errno. */
static int read_batch(struct nvm *m, uint32_t *lo, uint32_t *hi, bool *wrapped)
{
	struct mirror_range rg;
	struct mirror_hdr h;
	struct stat st;
	int any = 0, r;
	ssize_t n;

	if (fstat(m->logfd, &st) < 0)
		return -errno;
	r = mirror_read_header(m->win, m->winlen, &h, NULL);
	if (r < 0)
		return r;
	*hi = h.next;
	if (st.st_size < m->pos) {
		say(m, 0, "the log shrank from %lld to %lld bytes: mirroring it again from "
		    "its start, in a new generation", (long long)m->pos, (long long)st.st_size);
		r = mirror_wrap(m->win, m->winlen);
		if (r < 0)
			return r;
		m->pos = 0;
		if (m->once_end > st.st_size)
			m->once_end = st.st_size;
		*lo = *hi = MIRROR_HDR_SIZE;
		*wrapped = true;
		any = 1;
	}
	while (*hi - *lo < BATCH_MAX && m->pos < st.st_size) {
		n = pread(m->logfd, m->chunk, m->o.max_record, m->pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		r = mirror_append(m->win, m->winlen, m->chunk, (uint32_t)n, &rg);
		if (r == -ENOSPC) {
			/* Push what is appended first; the wrap starts the next
			 * push (the chunk is read again then). */
			if (*hi > *lo)
				break;
			r = mirror_wrap(m->win, m->winlen);
			if (r == 0)
				r = mirror_append(m->win, m->winlen, m->chunk, (uint32_t)n, &rg);
			*lo = MIRROR_HDR_SIZE;
			*wrapped = true;
		}
		if (r < 0)
			return r;
		*hi = rg.off + rg.len;
		m->pos += n;
		any = 1;
	}
	return any;
}

/* Start a push if there is anything to push: a resync, new log bytes. */
static int start_push(struct nvm *m)
{
	struct mirror_hdr h;
	bool wrapped = false;
	uint32_t lo, hi = 0;
	int r;

	if (m->phase != PH_IDLE || !m->partner_ok || m->stopping || m->retry_wait)
		return 0;
	r = mirror_read_header(m->win, m->winlen, &h, NULL);
	if (r < 0)
		return r;
	lo = m->need_resync ? MIRROR_HDR_SIZE : h.next;
	r = read_batch(m, &lo, &hi, &wrapped);
	if (r < 0)
		return r;
	if (r == 0 && !m->need_resync)
		return 0;
	r = mirror_read_header(m->win, m->winlen, &m->real, NULL);
	if (r < 0)
		return r;
	m->cur = lo;
	m->hi = hi;
	m->phase_err = 0;
	/* A resync asked for while this push runs is another push. */
	m->push_resync = m->need_resync;
	m->need_resync = false;
	say(m, 2, "push generation %u seq %" PRIu64 "..%" PRIu64 ": bytes [%u, %u)%s",
	    m->real.generation, m->real.first_seq, m->real.last_seq, lo, hi,
	    m->push_resync ? " (resync)" : "");
	if (wrapped || m->acked_gen != m->real.generation) {
		struct mirror_hdr empty = mirror_empty_header(&m->real);

		mirror_encode_header(&empty, m->win);
		m->phase = PH_INVALIDATE;
		r = write_op(m, 0, MIRROR_HDR_SIZE, 0);
	} else {
		m->phase = PH_RECORDS;
		r = 0;
	}
	if (r < 0)
		m->phase_err = r;
	advance(m);
	return 0;
}

/* --- events ------------------------------------------------------------------ */

/* 1: go on, 0: stop (cleanly), <0: fail. */
static int on_event(struct nvm *m, const struct ccm_event *ev)
{
	switch (ev->type) {
	case CCM_EV_DONE:
		if (m->inflight == 0) {
			say(m, 0, "a completion (tag %u) for nothing we asked", ev->tag);
			return 1;
		}
		m->inflight--;
		if (ev->status < 0 && !m->phase_err)
			m->phase_err = ev->status;
		advance(m);
		return 1;
	case CCM_EV_PARTNER_LOST:
		say(m, 0, "partner lost: pausing");
		m->partner_ok = false;
		return 1;
	case CCM_EV_PARTNER_READY:
	case CCM_EV_PARTNER_BACK:
		/* A rebooted partner has a fresh window; one that was only
		 * out of reach still has a prefix of ours, unless we cannot
		 * tell which it is. */
		if (!m->partner_epoch || ev->partner_epoch != m->partner_epoch)
			m->acked_gen = 0;
		m->partner_epoch = ev->partner_epoch;
		say(m, 0, "partner node %u %s (epoch %" PRIu64 "): sending the whole log window "
		    "again", ev->partner_node, ev->type == CCM_EV_PARTNER_BACK ? "back" : "ready",
		    ev->partner_epoch);
		m->partner_ok = true;
		m->need_resync = true;
		return 1;
	case CCM_EV_TERMINATING:
		say(m, 0, "the keeper is %s: finishing", ev->restarting ? "restarting" : "stopping");
		m->stopping = true;
		m->keeper_restarting = ev->restarting;
		return 1;
	case CCM_EV_KEEPER_GONE:
		say(m, 0, "the keeper has gone");
		return -ENOTCONN;
	case CCM_EV_MSG:
	case CCM_EV_NOTIFY:
	case CCM_EV_LINK_DOWN:
	case CCM_EV_LINK_UP:
		say(m, 1, "%s: nothing to do", ccm_event_name(ev->type));
		return 1;
	}
	return 1;
}

static int drain_events(struct nvm *m)
{
	struct ccm_event ev;
	int r;

	for (;;) {
		r = ccm_next(m->c, &ev, 0);
		if (r == -EAGAIN)
			return 1;
		if (r < 0) {
			/* A refused request has no tag to match: our writes
			 * are always well formed, so that is the end. */
			say(m, 0, "keeper: %s", ccm_strerror(r));
			return r;
		}
		r = on_event(m, &ev);
		if (r <= 0)
			return r;
	}
}

/* --- setup and the loop ------------------------------------------------------ */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A new generation continuing the window's sequence numbers if it holds
 * a log already (an earlier run), so the partner sees the restart. */
static int init_window(struct nvm *m)
{
	struct mirror_hdr h;
	uint32_t room;

	if (m->winlen < MIRROR_WINDOW_MIN || m->winlen > MIRROR_WINDOW_MAX) {
		say(m, 0, "port %u's window of %zu bytes cannot hold a log", m->o.port, m->winlen);
		return -EINVAL;
	}
	room = (uint32_t)(m->winlen - MIRROR_HDR_SIZE - MIRROR_REC_HDR_SIZE) & ~(MIRROR_ALIGN - 1);
	if (m->o.max_record > room) {
		say(m, 1, "records of at most %u bytes fit the window", room);
		m->o.max_record = room;
	}
	if (mirror_read_header(m->win, m->winlen, &h, NULL) == 0 &&
	    h.generation < UINT32_MAX && h.last_seq < UINT64_MAX)
		return mirror_init(m->win, m->winlen, h.generation + 1, h.last_seq + 1);
	return mirror_init(m->win, m->winlen, 1, 1);
}

static int setup(struct nvm *m)
{
	struct itimerspec it = { 0 };
	struct stat st;
	sigset_t sigs;
	int r;

	m->logfd = open(m->o.log_path, O_RDONLY | O_CLOEXEC);
	if (m->logfd < 0) {
		say(m, 0, "--log %s: %s", m->o.log_path, strerror(errno));
		return -errno;
	}
	if (fstat(m->logfd, &st) < 0)
		return -errno;
	m->once_end = st.st_size;
	m->chunk = malloc(m->o.max_record);
	if (!m->chunk)
		return -ENOMEM;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	if (sigprocmask(SIG_BLOCK, &sigs, NULL) < 0)
		return -errno;
	m->sigfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (m->sigfd < 0)
		return -errno;
	m->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (m->timerfd < 0)
		return -errno;
	it.it_value.tv_sec = m->o.interval_ms / 1000;
	it.it_value.tv_nsec = (long)(m->o.interval_ms % 1000) * 1000000;
	it.it_interval = it.it_value;
	if (timerfd_settime(m->timerfd, 0, &it, NULL) < 0)
		return -errno;
	r = ccm_attach(m->o.client, m->o.state_dir, &m->c);
	if (r < 0) {
		say(m, 0, "attaching to %s: %s", m->o.client, ccm_strerror(r));
		return r;
	}
	m->win = ccm_window(m->c, (int)m->o.port, &m->winlen);
	if (!m->win) {
		say(m, 0, "client %s has no port %u (it has %d)", m->o.client, m->o.port,
		    ccm_nports(m->c));
		return -EINVAL;
	}
	return init_window(m);
}

static void teardown(struct nvm *m)
{
	ccm_detach(m->c);
	if (m->timerfd >= 0)
		close(m->timerfd);
	if (m->sigfd >= 0)
		close(m->sigfd);
	if (m->logfd >= 0)
		close(m->logfd);
	free(m->chunk);
}

static bool once_done(const struct nvm *m)
{
	return m->o.once && m->phase == PH_IDLE && !m->need_resync && m->pos >= m->once_end;
}

static int run(struct nvm *m)
{
	struct pollfd pfd[3];
	int64_t finish_by = 0;
	uint64_t ticks;
	int r, timeout;

	pfd[0] = (struct pollfd){ .fd = ccm_fd(m->c), .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = m->sigfd, .events = POLLIN };
	pfd[2] = (struct pollfd){ .fd = m->timerfd, .events = POLLIN };
	say(m, 1, "mirroring %s into port %u of %s (%zu-byte window, records up to %u bytes)",
	    m->o.log_path, m->o.port, m->o.client, m->winlen, m->o.max_record);
	m->need_resync = true;
	for (;;) {
		if (m->o.once && m->failing) {
			say(m, 0, "--once: giving up");
			return 1;
		}
		r = start_push(m);
		if (r < 0) {
			say(m, 0, "our window's log: %s (is another writer using port %u?)",
			    strerror(-r), m->o.port);
			return 1;
		}
		if (once_done(m))
			return 0;
		if (m->stopping) {
			if (m->phase == PH_IDLE)
				return m->keeper_restarting;
			if (!finish_by)
				finish_by = now_ms() + FINISH_MS;
			if (now_ms() >= finish_by) {
				say(m, 0, "stopping with a push unfinished");
				return m->keeper_restarting;
			}
		}
		timeout = -1;
		if (m->stopping)
			timeout = finish_by > now_ms() ? (int)(finish_by - now_ms()) : 0;
		if (poll(pfd, 3, timeout) < 0) {
			if (errno == EINTR)
				continue;
			say(m, 0, "poll: %s", strerror(errno));
			return 1;
		}
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(m->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si) && !m->stopping) {
				say(m, 1, "signal %u: finishing", si.ssi_signo);
				m->stopping = true;
			}
		}
		if ((pfd[2].revents & POLLIN) &&
		    read(m->timerfd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks))
			m->retry_wait = false;
		if (pfd[0].revents) {
			r = drain_events(m);
			if (r < 0)
				return 1;
		}
		if (m->o.once && !m->partner_ok) {
			say(m, 0, "--once: the partner is lost");
			return 1;
		}
	}
}

int main(int argc, char **argv)
{
	struct nvm m = { .logfd = -1, .sigfd = -1, .timerfd = -1, .partner_ok = true };
	int rc;

	if (parse_args(argc, argv, &m.o) < 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	rc = setup(&m) < 0 ? 1 : run(&m);
	teardown(&m);
	return rc;
}
