/* sim: deterministic simulation of a whole ccm-early pair under faults.
 *
 * Two complete keepers -- the same session, exchange, handshake, link set,
 * reliable store and control-socket server as the binary -- run in this one
 * process over the in-memory transport (tp/mem.h) on a virtual clock, each
 * with a scripted client attached through its real control socket.  One
 * seed decides everything: the pair's configuration, the fault mix (swarm
 * testing: each seed draws its own rates), every fault's time, every delay
 * on the interconnect, every client action, every epoch and nonce.  The
 * same seed replays the same run exactly.
 *
 * Checked at every step (safety):
 *   - both handoffs agree on partner node, epoch and version whenever both
 *     say connected;
 *   - a client's messages arrive at the partner's client in the order sent,
 *     each at most once;
 *   - a send confirmed with status 0 reached the partner's client: checked
 *     once that client has read its channel dry (or left);
 *   - a client within its send window is never refused for a full one;
 *   - a window write that completed with status 0 is in the partner's
 *     window;
 *   - virtual time advances: no turn loop spins;
 *   - no keeper exits, except when told to stop;
 *   - what the interconnect holds in flight stays bounded.
 * Checked at the end (liveness): once the faults stop, both sides reach
 * connected with each other's current epoch within a bound, both clients
 * attach, and messages and writes sent then all arrive.  After each seed
 * every fd the run opened is closed again.
 *
 *   sim [--seeds N] [--first S] [--seed S] [-v] [--plant rewind|lose]
 *       [--stray] [--impostor] [--scenario NAME|all]
 *
 * --plant proves the checks can fail; the run reports how many seeds caught
 * the planted bug, and fails if none did.  rewind: now and then a receiving
 * keeper forgets that it delivered a port's last message (its duplicate
 * filter lets the next copy through).  lose: now and then a message the
 * keeper handed a client's channel never reaches the client, as if the
 * keeper had confirmed one it could not deliver.
 * --stray runs the pair without faults next to a third, misconfigured
 * node whose partner address is A's: the pair must stay connected
 * throughout (the design's promise without a key).
 * --impostor is --stray with a pre-shared key: the pair holds one, and the
 * third node claims to be B (node id 2) with another key or none, over and
 * over: it must never get in, and the pair must never notice.  (The mem
 * transport models the greeting's outcome; tcp and rdma do its crypto.)
 * It also forges mailbox writes, as a host that injects packets on the
 * wire could whatever the transport admits: now and then, while the pair
 * is connected, a mailbox with a valid CRC, claiming the partner (its
 * epoch or a new one, any state) but with a tag not made with the pair's
 * key lands in one keeper's status window.  The keepers must refuse each
 * and carry on.
 * --scenario replaces the random faults with a script: one of the recovery
 * bugs the shell suites once found, replayed where it happened (see
 * scenarios[] below).  The seeds still draw everything else (latencies,
 * the clients, epochs), and each run must also show, by the keepers' own
 * log lines, that it reached the bug's situation: a scenario that drifted
 * away from it would otherwise pass without testing anything.
 *
 * A failing seed prints the trace of its last events and the command that
 * replays it. */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/num.h"
#include "client/ccm.h"
#include "client/ctl.h"
#include "client/fdmsg.h"
#include "daemon/session_int.h"
#include "tp/mem.h"

#define NODES       2
#define PORTS       2
#define PORT_SIZE   4096
#define WRITE_AREA  1024          /* the partner writes [0, 1024) of a window */
#define WRITE_SRC   2048          /* our writes' source bytes: one slice per
                                     write in flight */
#define WRITE_MAX   256
#define WRITES_IN_FLIGHT 4        /* per port: several, so that a later write
                                     can overtake an earlier one if the
                                     keeper lets it (over another link) */
_Static_assert(WRITE_SRC + WRITES_IN_FLIGHT * WRITE_MAX <= PORT_SIZE, "write slices");
#define TRACE_LINES 256
#define SPIN_LIMIT  20000         /* turns without virtual time moving */
#define IN_FLIGHT_MAX 50000

/* --- the seeded generator ------------------------------------------------------ */

struct rng {
	uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rng_below(struct rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

static uint64_t rng_range(struct rng *r, uint64_t lo, uint64_t hi)
{
	return lo + rng_below(r, hi - lo + 1);
}

/* True with probability per_million / 1e6. */
static bool rng_chance(struct rng *r, uint32_t per_million)
{
	return rng_below(r, 1000000) < per_million;
}

static void rng_bytes(void *ctx, void *buf, size_t len)
{
	struct rng *r = ctx;
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)rng_next(r);
}

/* --- the run ------------------------------------------------------------------- */

/* A message a scripted client sends: who, which incarnation, which one. */
struct probe_msg {
	uint32_t magic;
	uint32_t node;
	uint64_t boot;             /* the sender node's incarnation */
	uint64_t inc;              /* the sender client's attachment */
	uint64_t counter;
};
#define PROBE_MAGIC 0x53494d31u

/* A send the keeper has not answered yet.  A client keeps at most
 * CCM_SEND_WINDOW per port, as libccm does: the keeper refuses more. */
struct unanswered_send {
	uint32_t tag;
	uint64_t counter;
	bool probe;                /* the liveness probe's: sent again if refused */
};

/* DONE 0 for one of our sends: the partner's client must have it.  Kept
 * on the receiving node until its client has read its channel dry. */
struct claim {
	uint8_t port;
	uint64_t boot, inc, counter;
};

/* The messages a node's clients received, every incarnation: (port,
 * sender boot, sender client incarnation, counter) as one key. */
struct msg_set {
	uint64_t *slot;            /* 0: empty */
	size_t cap, n;
};

struct pending_write {
	bool busy;
	uint32_t tag;
	uint32_t off, len;
	uint64_t partner_boot;     /* the partner's incarnation when posted */
	uint8_t bytes[WRITE_MAX];
};

struct sim_client {
	int sock;                  /* -1: detached */
	bool attached;             /* ATTACHED and every fd arrived */
	int fds_due;
	uint8_t *win[PORTS];
	uint64_t inc;
	uint32_t next_tag;
	uint64_t tx_counter[PORTS];
	struct pending_write wr[PORTS][WRITES_IN_FLIGHT];
	/* What each port's partner window must hold once no write of ours is
	 * in flight: every byte as the latest write issued over it left it,
	 * where that write succeeded (known); for the partner's incarnation
	 * shadow_boot. */
	uint8_t shadow[PORTS][WRITE_AREA];
	bool known[PORTS][WRITE_AREA];
	uint64_t shadow_boot[PORTS];
	bool partner_ready;        /* PARTNER_READY/BACK since the last LOST */
	struct unanswered_send out[PORTS][CCM_SEND_WINDOW];
	int nout[PORTS];
	uint32_t orphans[PORTS];   /* the port's window when we attached: what an
	                              earlier attachment sent, still unconfirmed */
	uint64_t deaf_until;       /* a slow client: reads nothing until then (us) */
	uint64_t away_until;       /* detached: attaches again no sooner (us) */
	bool detaching;            /* reading what is left: no new detach */
};

/* What a receiving port last saw, to check order. */
struct rx_mark {
	uint64_t boot, inc, counter;
};

struct sim_node {
	struct sim *sim;
	int idx;
	uint32_t id;
	struct ccm_config cfg;
	struct session_opts opts;
	struct log log;
	struct session *s;         /* NULL while down */
	uint64_t boot;
	uint64_t up_at;            /* down: boots again then (us) */
	bool frozen;
	uint64_t thaw_at;
	bool disk_full;            /* its state directory's disk: every handoff
	                              write fails with ENOSPC until disk_room_at */
	uint64_t disk_room_at;     /* ... and since when it has room again (us) */
	bool stop_sent;            /* a graceful restart is under way */
	struct sim_client cl;
	struct rx_mark rx[PORTS];
	struct msg_set got;        /* what our clients received, ever */
	struct msg_set lost;       /* what the sender heard we gave up
	                              (-ETIMEDOUT): our clients must never get it */
	struct claim *claims;      /* what the partner's keeper said they did */
	int nclaims, capclaims;
	uint64_t probe_from[PORTS];/* liveness: our counters past these must arrive */
	uint64_t probe_got[PORTS];
	int probe_todo[PORTS];     /* probe messages still to hand the keeper */
	char dir[64];
};

struct cut {
	bool on;
	uint64_t until;
};

struct fault_mix {
	uint32_t cut, stall, crash, restart, jitter, disk;  /* per million per ms */
	uint32_t client_churn, client_send, client_write;
	uint32_t client_deaf;      /* a client stops reading for a while */
};

struct counters {
	uint64_t steps, turns, cuts, stalls, crashes, restarts, jitters, disks_full;
	uint64_t msgs_delivered, writes_checked, resumes, rehandshakes, failovers;
	uint64_t unreachables, attaches, connected_runs, plants;
	uint64_t claims_checked, deaf_spells, refused_full, given_up;
	uint64_t forged;           /* --impostor: forged mailboxes that landed */
};

/* --- scenarios: the known recovery bugs, scripted ------------------------------- */

enum sc_act { SC_STALL, SC_RESTART, SC_CRASH, SC_LATENCY, SC_REPLAY };

struct sc_step {
	const char *when;      /* NULL: at once (the first step: once both are
	                          connected); else once this line is logged */
	int when_node;         /* by this node (0 A, 1 B) */
	uint32_t after_ms;     /* then this much later */
	enum sc_act act;
	int node;
	uint32_t ms;           /* STALL: for how long; CRASH: down how long;
	                          LATENCY: the most a delivery takes */
	/* REPLAY: ms of the first messages node sent on its previous
	 * connection, the first skip left out, arrive again on its current
	 * one (tp_mem_net_replay): its HELLO is the first, then the
	 * exchange's next steps. */
	uint32_t skip;
};

/* A log line that must come between min and max times in the run. */
struct sc_count {
	int node;
	const char *line;
	int min, max;
};

struct scenario {
	const char *name;
	const char *bug;       /* what the keeper once did here */
	bool rdma;
	struct sc_step steps[4];
	int nsteps;
	struct sc_count counts[4];
	int ncounts;
};

/* The pair's heartbeat in every scenario: 100 ms x 5, lost after 500 ms. */
#define SC_HEARTBEAT_MS 100
#define SC_MISSES       5

static const struct scenario scenarios[] = {
	{
		.name = "stall-stale-exchange",
		.bug = "a keeper exited after a stall when a stale exchange message arrived",
		.steps = {
			{ NULL, 0, 200, SC_RESTART, 1, 0 },
			/* B's new incarnation begins its exchange while A
			 * stalls; B's frames of the exchange before are
			 * delivered again meanwhile, and A wakes to them. */
			{ "exchanging descriptors", 1, 0, SC_STALL, 0, 800 },
			{ NULL, 0, 50, SC_REPLAY, 1, 3 },
		},
		.nsteps = 3,
		/* Dropped, they cost nothing: A handshakes again once, for
		 * B's restart (taken in, an old HELLO made A give the new
		 * session up once more). */
		.counts = { { 0, "of another exchange", 1, 1000 },
			    { 0, "handshaking again", 1, 1 } },
		.ncounts = 2,
	},
	{
		.name = "one-sided-loss",
		.bug = "a loss only one side saw (its partner stalled) did not heal",
		.steps = { { NULL, 0, 300, SC_STALL, 0, 1000 } },
		.nsteps = 1,
		.counts = { { 1, "partner unreachable", 1, 1 },
			    { 1, "session resumed", 1, 1 },
			    { 0, "handshaking again", 0, 0 },
			    { 1, "handshaking again", 0, 0 } },
		.ncounts = 4,
	},
	{
		.name = "partner-reboot-rdma",
		.bug = "a partner's reboot over rdma was followed by a second, spurious "
		       "re-handshake",
		.rdma = true,
		.steps = { { NULL, 0, 300, SC_CRASH, 1, 1500 } },
		.nsteps = 1,
		.counts = { { 0, "handshaking again", 1, 1 },
			    { 0, "connected to node 2", 2, 2 } },
		.ncounts = 2,
	},
	{
		.name = "stale-round",
		.bug = "messages of an earlier exchange round reached a new one (they carried "
		       "no round number)",
		.steps = {
			{ NULL, 0, 200, SC_RESTART, 1, 0 },
			/* B loses A in the middle of the exchange (A stalls
			 * 3 s) and begins another with the same epochs; its
			 * frames of the one before arrive in the middle of
			 * it: only their round tells them apart. */
			{ "exchanging descriptors", 1, 0, SC_STALL, 0, 3000 },
			{ "exchanging descriptors", 1, 0, SC_REPLAY, 1, 3, 1 },
		},
		.nsteps = 3,
		/* Its HELLO is not among them: a HELLO of another round
		 * while connected is the partner beginning anew, met again
		 * (a replayed one costs a re-handshake; with a key none
		 * can be replayed). */
		.counts = { { 0, "of another exchange", 1, 1000 },
			    { 0, "handshaking again", 1, 1 } },
		.ncounts = 2,
	},
};

#define NSCENARIOS ((int)(sizeof(scenarios) / sizeof(scenarios[0])))

struct sim {
	uint64_t seed;
	struct rng rng;            /* the run's choices */
	struct rng entropy;        /* epochs and nonces */
	struct rng disk_rng;       /* full disks: a stream of their own, so that
	                              every other choice a seed made before they
	                              were modelled stays the same (the kept
	                              regression seeds replay as they failed) */
	struct tp_mem_net *net;
	uint64_t now;              /* us */
	uint64_t fault_end, end;
	int nlinks;
	bool rdma;
	struct fault_mix mix;
	struct cut cuts[NODES][CCM_LINKS_MAX];  /* link l of node i is cut */
	struct sim_node node[NODES];
	struct counters c;
	struct rng deaf_rng;       /* slow clients: a stream of their own too */
	bool plant_rewind;
	bool plant_lose;           /* --plant lose */
	bool stray;
	bool impostor;             /* --impostor: the third claims B's id, without our key */
	struct rng forge_rng;      /* --impostor's forged mailboxes: a stream of their own */
	uint64_t forge_at;         /* the next one (us) */
	struct sim_node third;     /* --stray: the misconfigured node */
	bool pair_up;              /* --stray: both were connected once */
	bool verbose;
	char failure[512];
	char trace[TRACE_LINES][200];
	int trace_next;
	char root[48];
	bool quiet_phase;
	bool probing;
	const struct scenario *sc;  /* --scenario: the script, or NULL */
	int sc_next;               /* its next step */
	uint64_t sc_armed_at;      /* when that step's trigger came (0: not yet) */
	bool sc_when_seen;         /* its log line has been seen */
	int sc_seen[4];            /* how often each of its counted lines came */
};

static void trace(struct sim *sim, int node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void trace(struct sim *sim, int node, const char *fmt, ...)
{
	char *line = sim->trace[sim->trace_next++ % TRACE_LINES];
	va_list ap;
	int n;

	n = snprintf(line, 200, "%8llu.%03llu %c ", (unsigned long long)(sim->now / 1000),
		     (unsigned long long)(sim->now % 1000), node < 0 ? '*' : 'A' + node);
	va_start(ap, fmt);
	vsnprintf(line + n, (size_t)(200 - n), fmt, ap);
	va_end(ap);
	if (sim->verbose)
		fprintf(stderr, "%s\n", line);
}

static void fail(struct sim *sim, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct sim *sim, const char *fmt, ...)
{
	va_list ap;

	if (sim->failure[0])
		return;
	va_start(ap, fmt);
	vsnprintf(sim->failure, sizeof(sim->failure), fmt, ap);
	va_end(ap);
	trace(sim, -1, "FAILED: %s", sim->failure);
}

/* The keepers' log lines go into the trace, and a few count as the
 * "sometimes" properties a sweep must reach. */
static void log_sink(void *ctx, int level, const char *msg)
{
	struct sim_node *n = ctx;
	struct sim *sim = n->sim;

	(void)level;
	if (!strncmp(msg, "internal error", 14))
		fail(sim, "node %c: %s", 'A' + n->idx, msg);
	if (strstr(msg, "session resumed"))
		sim->c.resumes++;
	else if (strstr(msg, "handshaking again"))
		sim->c.rehandshakes++;
	else if (strstr(msg, "moving its traffic"))
		sim->c.failovers++;
	else if (strstr(msg, "partner unreachable"))
		sim->c.unreachables++;
	if (sim->sc && n->idx < NODES) {
		const struct scenario *sc = sim->sc;

		for (int i = 0; i < sc->ncounts; i++)
			if ((sc->counts[i].node < 0 || sc->counts[i].node == n->idx) &&
			    strstr(msg, sc->counts[i].line))
				sim->sc_seen[i]++;
		if (sim->sc_next < sc->nsteps && sc->steps[sim->sc_next].when &&
		    sc->steps[sim->sc_next].when_node == n->idx &&
		    strstr(msg, sc->steps[sim->sc_next].when))
			sim->sc_when_seen = true;
	}
	trace(sim, n->idx, "%s", msg);
}

/* --- files: each node's clients and state directories --------------------------- */

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -errno;
}

static void rm_dir_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[400];

	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
	closedir(d);
}

static int make_dirs(struct sim *sim)
{
	char path[300], desc[64];

	/* tmpfs: the handoff's fsyncs cost nothing there. */
	snprintf(sim->root, sizeof(sim->root), "/dev/shm/ccm-sim-%d", (int)getpid());
	if (mkdir(sim->root, 0700) < 0 && errno != EEXIST)
		return -errno;
	for (int i = 0; i <= NODES; i++) {
		struct sim_node *n = i < NODES ? &sim->node[i] : &sim->third;

		snprintf(n->dir, sizeof(n->dir), "%s/%c", sim->root, 'a' + i);
		snprintf(path, sizeof(path), "%s/clients", n->dir);
		if ((mkdir(n->dir, 0700) < 0 && errno != EEXIST) ||
		    (mkdir(path, 0700) < 0 && errno != EEXIST))
			return -errno;
		snprintf(path, sizeof(path), "%s/clients/probe.conf", n->dir);
		snprintf(desc, sizeof(desc), "ports = %d\nport-size = %d\n", PORTS, PORT_SIZE);
		if (write_file(path, desc) < 0)
			return -errno;
		/* --impostor: the pair's key, and the third node's own. */
		snprintf(path, sizeof(path), "%s/key", n->dir);
		if (write_file(path, i < NODES ? "the pair's own key, 32 bytes..\n" :
			       "an impostor's key, not the pair's\n") < 0 || chmod(path, 0600) < 0)
			return -errno;
	}
	return 0;
}

static void remove_dirs(struct sim *sim)
{
	char path[300];

	for (int i = 0; i <= NODES; i++) {
		char dir[64];

		snprintf(dir, sizeof(dir), "%s/%c", sim->root, 'a' + i);
		snprintf(path, sizeof(path), "%s/state", dir);
		rm_dir_files(path);
		rmdir(path);
		snprintf(path, sizeof(path), "%s/clients", dir);
		rm_dir_files(path);
		rmdir(path);
		snprintf(path, sizeof(path), "%s/key", dir);
		unlink(path);
		rmdir(dir);
	}
	rmdir(sim->root);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* --- the scripted client ----------------------------------------------------------- */

static struct sim_node *partner_of(struct sim_node *n)
{
	return &n->sim->node[1 - n->idx];
}

static uint64_t msg_key(unsigned port, uint64_t boot, uint64_t inc, uint64_t counter)
{
	/* Bounded by a run: boots < 2^15, attaches < 2^20, counters < 2^28. */
	return 1ull << 63 | (uint64_t)port << 62 | (boot & 0x7fff) << 48 | (inc & 0xfffff) << 28 |
	       (counter & 0xfffffff);
}

static size_t msg_hash(uint64_t k, size_t cap)
{
	return (size_t)((k * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
}

static bool msg_set_has(const struct msg_set *set, uint64_t k)
{
	if (!set->cap)
		return false;
	for (size_t i = msg_hash(k, set->cap);; i = (i + 1) & (set->cap - 1)) {
		if (set->slot[i] == k)
			return true;
		if (!set->slot[i])
			return false;
	}
}

static void msg_set_add(struct sim *sim, struct msg_set *set, uint64_t k)
{
	if (2 * (set->n + 1) > set->cap) {
		struct msg_set bigger = { .cap = set->cap ? 2 * set->cap : 1024 };

		bigger.slot = calloc(bigger.cap, sizeof(uint64_t));
		if (!bigger.slot) {
			fail(sim, "out of memory");
			return;
		}
		for (size_t i = 0; i < set->cap; i++)
			if (set->slot[i])
				msg_set_add(sim, &bigger, set->slot[i]);
		free(set->slot);
		*set = bigger;
	}
	for (size_t i = msg_hash(k, set->cap);; i = (i + 1) & (set->cap - 1)) {
		if (set->slot[i] == k)
			return;
		if (!set->slot[i]) {
			set->slot[i] = k;
			set->n++;
			return;
		}
	}
}

/* The partner confirmed that its client has our message: remember to
 * check it on the partner's side. */
static void add_claim(struct sim_node *rx, const struct claim *cl)
{
	if (rx->nclaims == rx->capclaims) {
		int cap = rx->capclaims ? 2 * rx->capclaims : 256;
		struct claim *n = realloc(rx->claims, sizeof(*n) * (size_t)cap);

		if (!n) {
			fail(rx->sim, "out of memory");
			return;
		}
		rx->claims = n;
		rx->capclaims = cap;
	}
	rx->claims[rx->nclaims++] = *cl;
}

/* Our client has read everything its channel held: every confirmation the
 * partner's client heard before now is for a message one of our clients
 * received. */
static void check_claims(struct sim_node *n)
{
	for (int i = 0; i < n->nclaims; i++) {
		const struct claim *cl = &n->claims[i];

		n->sim->c.claims_checked++;
		if (!msg_set_has(&n->got, msg_key(cl->port, cl->boot, cl->inc, cl->counter))) {
			fail(n->sim, "node %c port %u: the partner's send %llu/%llu/%llu was "
			     "confirmed (DONE 0), but no client of ours received it", 'A' + n->idx,
			     cl->port, (unsigned long long)cl->boot, (unsigned long long)cl->inc,
			     (unsigned long long)cl->counter);
			break;
		}
	}
	n->nclaims = 0;
}

static void client_read(struct sim_node *n);

static void client_detach(struct sim_node *n, const char *why)
{
	struct sim_client *c = &n->cl;

	if (c->sock < 0)
		return;
	trace(n->sim, n->idx, "client detaches (%s)", why);
	/* What its channel took reached it, read or not: read it before the
	 * claims are checked.  (A keeper that closed the channel ended it
	 * already; client_read detaches again on that, which returns here.) */
	c->deaf_until = 0;
	c->detaching = true;
	client_read(n);
	c->detaching = false;
	check_claims(n);
	close(c->sock);
	for (int p = 0; p < PORTS; p++) {
		if (c->win[p])
			munmap(c->win[p], PORT_SIZE);
		c->win[p] = NULL;
		/* Their outcome is never heard: the bytes they cover are no
		 * longer known. */
		for (int k = 0; k < WRITES_IN_FLIGHT; k++) {
			struct pending_write *w = &c->wr[p][k];

			if (w->busy)
				memset(c->known[p] + w->off, 0, w->len);
			w->busy = false;
		}
	}
	c->sock = -1;
	c->attached = false;
	c->partner_ready = false;
	/* Answers to our sends will not come: like libccm, forget them. */
	memset(c->nout, 0, sizeof(c->nout));
}

static void client_attach(struct sim_node *n)
{
	struct sim_client *c = &n->cl;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct ctl_attach req = { .name = "probe" };

	c->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->sock < 0)
		return;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/state/%s", n->dir, CTL_SOCKET_NAME);
	if (connect(c->sock, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    fdmsg_send(c->sock, CTL_ATTACH, &req, sizeof(req), -1) < 0) {
		close(c->sock);
		c->sock = -1;
		return;
	}
	c->inc++;
	c->fds_due = -1;
	for (int p = 0; p < PORTS; p++) {
		struct port_client *pc = ports_find(n->s->ports, "probe");

		c->orphans[p] = pc && p < pc->nports ? pc->port[p].rel.tx_window : 0;
	}
	memset(c->tx_counter, 0, sizeof(c->tx_counter));
	n->sim->c.attaches++;
	trace(n->sim, n->idx, "client attaching (incarnation %llu)", (unsigned long long)c->inc);
}

/* The partner keeper's window of port p, where our writes land. */
static const uint8_t *partner_window(struct sim_node *n, int p)
{
	struct sim_node *o = partner_of(n);
	struct port_client *pc;

	if (!o->s)
		return NULL;
	pc = ports_find(o->s->ports, "probe");
	return pc && p < pc->nports ? pc->port[p].map : NULL;
}

static bool writes_in_flight(const struct sim_client *c, int p)
{
	for (int k = 0; k < WRITES_IN_FLIGHT; k++)
		if (c->wr[p][k].busy)
			return true;
	return false;
}

static void on_done(struct sim_node *n, const struct ctl_done *d)
{
	struct sim_client *c = &n->cl;

	for (int p = 0; p < PORTS; p++)
		for (int k = 0; k < WRITES_IN_FLIGHT; k++) {
			struct pending_write *w = &c->wr[p][k];
			const uint8_t *win;

			if (!w->busy || w->tag != d->tag)
				continue;
			w->busy = false;
			if (d->status != 0) {
				memset(c->known[p] + w->off, 0, w->len);
				return;
			}
			/* Landed: it is there, unless the partner has rebooted
			 * since (its windows are new ones then). */
			win = partner_window(n, p);
			if (!win || partner_of(n)->boot != w->partner_boot)
				return;
			n->sim->c.writes_checked++;
			/* With none of ours in flight, every known byte is the
			 * latest write's: an earlier write that landed after a
			 * later one (over another link) shows here. */
			if (writes_in_flight(c, p) || c->shadow_boot[p] != w->partner_boot)
				return;
			for (uint32_t i = 0; i < WRITE_AREA; i++)
				if (c->known[p][i] && win[i] != c->shadow[p][i]) {
					fail(n->sim, "node %c: port %d's writes all completed, but the "
					     "partner's window at byte %u holds %02x, not %02x: an "
					     "earlier write landed after a later one (the last "
					     "completed: %u bytes at %u)", 'A' + n->idx, p, i, win[i],
					     c->shadow[p][i], w->len, w->off);
					return;
				}
			return;
		}
	for (int p = 0; p < PORTS; p++)
		for (int k = 0; k < c->nout[p]; k++) {
			struct unanswered_send u = c->out[p][k];

			if (u.tag != d->tag)
				continue;
			c->out[p][k] = c->out[p][--c->nout[p]];
			if (d->status == 0) {
				struct claim cl = { .port = (uint8_t)p, .boot = n->boot, .inc = c->inc,
						    .counter = u.counter };

				add_claim(partner_of(n), &cl);
				return;
			}
			if (d->status == -ETIMEDOUT) {
				/* Given up by the partner's keeper (msg-hold-ms):
				 * its client never gets it, now or later. */
				uint64_t key = msg_key((unsigned)p, n->boot, c->inc, u.counter);

				n->sim->c.given_up++;
				if (msg_set_has(&partner_of(n)->got, key))
					fail(n->sim, "node %c port %d: send %llu completed -ETIMEDOUT, but "
					     "the partner's client has it", 'A' + n->idx, p,
					     (unsigned long long)u.counter);
				msg_set_add(n->sim, &partner_of(n)->lost, key);
			}
			trace(n->sim, n->idx, "client: send %u/%llu failed: %s", d->tag,
			      (unsigned long long)u.counter, strerror(-d->status));
			/* Within its window a client is never refused for a full
			 * one: the keeper counts the same window -- which also
			 * holds what an earlier attachment sent and the partner
			 * has not confirmed yet. */
			if (d->status == -EAGAIN && !reliable_full(&n->s->rel) &&
			    c->nout[p] + c->orphans[p] < CCM_SEND_WINDOW)
				fail(n->sim, "node %c port %d: a send refused with -EAGAIN while the "
				     "client had %d of %d in flight (%u of an earlier attachment's)",
				     'A' + n->idx, p, c->nout[p] + 1, CCM_SEND_WINDOW, c->orphans[p]);
			if (u.probe)
				n->probe_todo[p]++;
			return;
		}
	fail(n->sim, "node %c: a DONE for tag %u, which is no request of ours", 'A' + n->idx,
	     d->tag);
}

static void on_msg(struct sim_node *n, const uint8_t *data, uint32_t len)
{
	const struct ctl_send_hdr *h = (const void *)data;
	struct probe_msg m;
	struct rx_mark *mk;

	if (len < sizeof(*h) + sizeof(m) || h->port >= PORTS) {
		fail(n->sim, "node %c: a client message of %u bytes that no client sent", 'A' + n->idx,
		     len);
		return;
	}
	memcpy(&m, data + sizeof(*h), sizeof(m));
	if (m.magic != PROBE_MAGIC || m.node != partner_of(n)->id) {
		fail(n->sim, "node %c: a forged or corrupted client message", 'A' + n->idx);
		return;
	}
	if (n->sim->plant_lose && rng_chance(&n->sim->deaf_rng, 2000)) {
		n->sim->c.plants++;
		trace(n->sim, n->idx, "PLANTED: message %llu/%llu/%llu on port %u lost on its way "
		      "to the client", (unsigned long long)m.boot, (unsigned long long)m.inc,
		      (unsigned long long)m.counter, h->port);
		return;
	}
	if (msg_set_has(&n->lost, msg_key(h->port, m.boot, m.inc, m.counter)))
		fail(n->sim, "node %c port %u: message %llu/%llu/%llu arrived after its sender "
		     "heard it was given up (-ETIMEDOUT)", 'A' + n->idx, h->port,
		     (unsigned long long)m.boot, (unsigned long long)m.inc,
		     (unsigned long long)m.counter);
	msg_set_add(n->sim, &n->got, msg_key(h->port, m.boot, m.inc, m.counter));
	mk = &n->rx[h->port];
	/* (boot, inc, counter) only grows: nothing twice, nothing out of order. */
	if (m.boot < mk->boot || (m.boot == mk->boot && (m.inc < mk->inc ||
	    (m.inc == mk->inc && m.counter <= mk->counter))))
		fail(n->sim, "node %c port %u: message %llu/%llu/%llu after %llu/%llu/%llu: "
		     "duplicated or reordered", 'A' + n->idx, h->port, (unsigned long long)m.boot,
		     (unsigned long long)m.inc, (unsigned long long)m.counter,
		     (unsigned long long)mk->boot, (unsigned long long)mk->inc,
		     (unsigned long long)mk->counter);
	mk->boot = m.boot;
	mk->inc = m.inc;
	mk->counter = m.counter;
	n->sim->c.msgs_delivered++;
	if (n->sim->probing && n->sim->verbose)
		trace(n->sim, n->idx, "client got message %llu/%llu/%llu on port %u",
		      (unsigned long long)m.boot, (unsigned long long)m.inc,
		      (unsigned long long)m.counter, h->port);
	if (n->sim->probing && m.boot == partner_of(n)->boot &&
	    m.inc == partner_of(n)->cl.inc && m.counter > partner_of(n)->probe_from[h->port])
		n->probe_got[h->port]++;
}

static void client_read(struct sim_node *n)
{
	struct sim_client *c = &n->cl;
	struct fdmsg m;
	struct errbuf e;

	while (c->sock >= 0) {
		int r = fdmsg_recv(c->sock, &m, &e);

		if (r == -EAGAIN) {
			if (!c->detaching)
				check_claims(n);
			return;
		}
		if (r <= 0) {
			if (!c->detaching)
				client_detach(n, r == 0 ? "the keeper closed the channel"
						 : "receive failed");
			return;
		}
		switch (m.type) {
		case CTL_ATTACHED: {
			struct ctl_attached a;

			memcpy(&a, m.data, sizeof(a));
			c->fds_due = 2 * a.nports;
			c->partner_ready = a.partner_ready;
			break;
		}
		case CTL_PORT_FD: {
			struct ctl_port_fd pf;

			memcpy(&pf, m.data, sizeof(pf));
			if (pf.kind == CTL_FD_WINDOW && pf.index < PORTS && m.fd >= 0) {
				void *w = mmap(NULL, PORT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
					       m.fd, 0);

				c->win[pf.index] = w == MAP_FAILED ? NULL : w;
			}
			fdmsg_close(&m);
			if (--c->fds_due == 0)
				c->attached = true;
			break;
		}
		case CTL_DONE: {
			struct ctl_done d;

			memcpy(&d, m.data, sizeof(d));
			on_done(n, &d);
			break;
		}
		case CTL_EVENT: {
			struct ctl_event ev;

			memcpy(&ev, m.data, sizeof(ev));
			if (ev.type == CTL_EV_TERMINATING && !c->detaching) {
				client_detach(n, "the keeper is terminating");
				return;
			}
			if (ev.type == CTL_EV_PARTNER_READY || ev.type == CTL_EV_PARTNER_BACK)
				c->partner_ready = true;
			if (ev.type == CTL_EV_PARTNER_LOST)
				c->partner_ready = false;
			break;
		}
		case CTL_MSG:
			on_msg(n, m.data, m.len);
			break;
		case CTL_ERROR:
			if (c->detaching)
				break;
			client_detach(n, "attach refused");
			return;
		default:
			fdmsg_close(&m);
			break;
		}
	}
}

/* 0, or -EAGAIN when the port's window is full (as libccm counts it) or
 * the keeper's socket takes nothing now. */
static int client_send(struct sim_node *n, int p)
{
	struct sim_client *c = &n->cl;
	uint8_t buf[sizeof(struct ctl_send_hdr) + sizeof(struct probe_msg)];
	struct ctl_send_hdr h = { .tag = ++c->next_tag, .port = (uint16_t)p };
	struct probe_msg m = { .magic = PROBE_MAGIC, .node = n->id, .boot = n->boot,
			       .inc = c->inc, .counter = c->tx_counter[p] + 1 };

	if (c->nout[p] == CCM_SEND_WINDOW) {
		n->sim->c.refused_full++;
		return -EAGAIN;
	}
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &m, sizeof(m));
	if (fdmsg_send(c->sock, CTL_SEND, buf, sizeof(buf), -1) < 0)
		return -EAGAIN;
	c->tx_counter[p]++;
	c->out[p][c->nout[p]++] = (struct unanswered_send){ .tag = h.tag, .counter = m.counter,
							     .probe = n->sim->probing };
	return 0;
}

/* The probe's messages go out as the keeper takes them, and one that it
 * refused goes again. */
static void probe_send(struct sim_node *n)
{
	for (int p = 0; p < PORTS; p++)
		while (n->probe_todo[p] && client_send(n, p) == 0)
			n->probe_todo[p]--;
}

static void client_write(struct sim_node *n, int p)
{
	struct sim_client *c = &n->cl;
	struct pending_write *w = NULL;
	uint64_t boot = partner_of(n)->boot;
	struct ctl_rw rw;
	uint32_t src;
	int k;

	if (!c->win[p])
		return;
	for (k = 0; k < WRITES_IN_FLIGHT && !w; k++)
		if (!c->wr[p][k].busy)
			w = &c->wr[p][k];
	if (!w)
		return;
	src = WRITE_SRC + (uint32_t)(k - 1) * WRITE_MAX;
	w->len = (uint32_t)rng_range(&n->sim->rng, 1, WRITE_MAX);
	w->off = (uint32_t)rng_below(&n->sim->rng, WRITE_AREA - w->len);
	rng_bytes(&n->sim->rng, w->bytes, w->len);
	memcpy(c->win[p] + src, w->bytes, w->len);
	w->tag = ++c->next_tag;
	w->partner_boot = boot;
	rw = (struct ctl_rw){ .tag = w->tag, .port = (uint16_t)p,
			      .flags = rng_chance(&n->sim->rng, 500000) ? CTL_F_NOTIFY : 0,
			      .local_off = src, .remote_off = w->off, .len = w->len };
	if (fdmsg_send(c->sock, CTL_WRITE, &rw, sizeof(rw), -1) < 0)
		return;
	w->busy = true;
	if (c->shadow_boot[p] != boot) {
		memset(c->known[p], 0, sizeof(c->known[p]));
		c->shadow_boot[p] = boot;
	}
	memcpy(c->shadow[p] + w->off, w->bytes, w->len);
	memset(c->known[p] + w->off, 1, w->len);
}

/* The client's turn: read what came, then perhaps act. */
static void client_step(struct sim_node *n)
{
	struct sim *sim = n->sim;
	struct sim_client *c = &n->cl;

	if (!n->s || n->frozen)
		return;
	if (c->deaf_until && sim->now < c->deaf_until)
		return;
	c->deaf_until = 0;
	client_read(n);
	if (c->sock < 0) {
		if (!sim->quiet_phase && sim->now < c->away_until)
			return;
		if (!n->stop_sent && (sim->quiet_phase || rng_chance(&sim->rng, 20000)))
			client_attach(n);
		return;
	}
	if (!c->attached)
		return;
	/* A slow client: deaf for a while, from 10 ms to 3 s, its messages
	 * piling up in its channel and then in its keeper. */
	if (!sim->quiet_phase && !c->deaf_until && rng_chance(&sim->deaf_rng, sim->mix.client_deaf)) {
		c->deaf_until = sim->now + rng_range(&sim->deaf_rng, 10000, 3000000);
		sim->c.deaf_spells++;
		trace(sim, n->idx, "client turns deaf for %llu ms",
		      (unsigned long long)(c->deaf_until - sim->now) / 1000);
	}
	if (!sim->quiet_phase && rng_chance(&sim->rng, sim->mix.client_churn)) {
		client_detach(n, "churn");
		/* Now and then away for longer than its keeper's msg-hold-ms:
		 * the partner's messages for it are given up. */
		if (rng_below(&sim->deaf_rng, 3) == 0) {
			c->away_until = sim->now + rng_range(&sim->deaf_rng, 100000, 3000000);
			trace(sim, n->idx, "client stays away for %llu ms",
			      (unsigned long long)(c->away_until - sim->now) / 1000);
		}
		return;
	}
	if (sim->probing)
		probe_send(n);
	for (int p = 0; p < PORTS; p++) {
		if (!sim->probing && rng_chance(&sim->rng, sim->mix.client_send))
			client_send(n, p);
		if (rng_chance(&sim->rng, sim->mix.client_write))
			client_write(n, p);
	}
}

/* --- nodes ------------------------------------------------------------------------ */

/* session_opts.handoff_fault: a full disk fails every handoff write. */
static int disk_fault(void *ctx)
{
	const struct sim_node *n = ctx;

	return n->disk_full ? -ENOSPC : 0;
}

static void node_config(struct sim *sim, struct sim_node *n)
{
	struct ccm_config *cfg = &n->cfg;
	struct rng *r = &sim->rng;

	config_defaults(cfg, NULL);
	cfg->node_id = n->id;
	snprintf(cfg->transport, sizeof(cfg->transport), "mem");
	snprintf(cfg->clients_dir, sizeof(cfg->clients_dir), "%s/clients", n->dir);
	snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s/state", n->dir);
	if (sim->impostor)
		snprintf(cfg->psk_file, sizeof(cfg->psk_file), "%s/key", n->dir);
	cfg->nlinks = sim->nlinks;
	for (int i = 0; i < sim->nlinks; i++) {
		struct ccm_link *l = &cfg->links[i];

		/* Link i: 127.0.i.1 (A) to 127.0.i.2 (B).  Nothing leaves the
		 * process: these name endpoints of the mem network. */
		snprintf(l->local.host, sizeof(l->local.host), "127.0.%d.%d", i, n->idx + 1);
		snprintf(l->partner.host, sizeof(l->partner.host), "127.0.%d.%d", i, 2 - n->idx);
		l->local.port = l->partner.port = 7471;
		l->priority = (uint8_t)rng_below(r, 3);
	}
	cfg->set |= CFG_LINK;
	cfg->link_policy = rng_below(r, 2) ? LINK_POLICY_STANDBY : LINK_POLICY_BALANCE;
	cfg->heartbeat_ms = (uint32_t)rng_range(r, 50, 200);
	cfg->heartbeat_misses = (uint32_t)rng_range(r, 3, 8);
	cfg->link_heartbeat_ms = (uint32_t)rng_range(r, 10, 50);
	cfg->link_misses = (uint32_t)rng_range(r, 2, 5);
	cfg->link_damp_ms = (uint32_t)rng_range(r, 0, 1000);
	cfg->timeout_s = rng_below(r, 2) ? 0 : (uint32_t)rng_range(r, 1, 5);
	/* From the seed, not the stream: the seeds' runs stay what they were.
	 * 200..1223 ms: clients stay away longer than that now and then. */
	cfg->msg_hold_ms = 200 + (uint32_t)(((sim->seed + (uint64_t)n->idx) *
					      0x9e3779b97f4a7c15ull) >> 54);
	if (sim->sc) {
		cfg->heartbeat_ms = SC_HEARTBEAT_MS;
		cfg->heartbeat_misses = SC_MISSES;
		cfg->timeout_s = 0;
	}
	/* A scenario's lines are read at every level (its debug ones too). */
	n->log = (struct log){ .verbose = sim->verbose || sim->sc ? LOG_DEBUG : LOG_STEP,
			       .node = n->id, .sink = log_sink, .sink_ctx = n };
	n->opts = (struct session_opts){ .handoff_fd = -1, .tp = &tp_mem_ops, .net = sim->net,
					 .random = rng_bytes, .random_ctx = &sim->entropy,
					 .handoff_fault = disk_fault, .fault_ctx = n };
}

/* A third node, id 3, whose one link's partner address is A's first: a
 * typo in its configuration.  It runs the whole handshake against A. */
static void stray_config(struct sim *sim, struct sim_node *n)
{
	struct ccm_config *cfg = &n->cfg;

	config_defaults(cfg, NULL);
	cfg->node_id = n->id;
	snprintf(cfg->transport, sizeof(cfg->transport), "mem");
	snprintf(cfg->clients_dir, sizeof(cfg->clients_dir), "%s/clients", n->dir);
	snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s/state", n->dir);
	cfg->nlinks = 1;
	snprintf(cfg->links[0].local.host, sizeof(cfg->links[0].local.host), "127.0.9.3");
	snprintf(cfg->links[0].partner.host, sizeof(cfg->links[0].partner.host), "127.0.0.1");
	cfg->links[0].local.port = cfg->links[0].partner.port = 7471;
	cfg->set |= CFG_LINK;
	n->log = (struct log){ .verbose = sim->verbose ? LOG_DEBUG : LOG_STEP, .node = n->id,
			       .sink = log_sink, .sink_ctx = n };
	n->opts = (struct session_opts){ .handoff_fd = -1, .tp = &tp_mem_ops, .net = sim->net,
					 .random = rng_bytes, .random_ctx = &sim->entropy };
}

static void node_boot(struct sim_node *n)
{
	struct sim *sim = n->sim;
	char path[300];
	int code;

	snprintf(path, sizeof(path), "%s/state", n->dir);
	rm_dir_files(path);  /* /run starts empty at boot */
	n->boot++;
	memset(n->rx, 0, sizeof(n->rx));
	code = session_open(&n->cfg, &n->opts, &n->log, sim->now / 1000,
			    (int64_t)(sim->now / 1000000), &n->s);
	if (code != CCM_EXIT_OK) {
		n->s = NULL;
		fail(sim, "node %c: session_open failed with exit code %d", 'A' + n->idx, code);
		return;
	}
	trace(sim, n->idx, "booted (incarnation %llu, epoch %016llx)", (unsigned long long)n->boot,
	      (unsigned long long)n->s->epoch);
}

/* Down: at once (a crash, no goodbye) or after a graceful stop. */
static void node_down(struct sim_node *n, uint64_t for_us)
{
	client_detach(n, "node down");
	session_close(n->s);
	n->s = NULL;
	n->stop_sent = false;
	if (n->frozen)
		tp_mem_net_freeze(n->sim->net, n->id, false);
	n->frozen = false;
	n->disk_full = false;  /* /run starts empty at boot */
	n->up_at = n->sim->now + for_us;
}

static void node_turn(struct sim_node *n)
{
	struct sim *sim = n->sim;
	int code;

	if (!n->s) {
		if (sim->now >= n->up_at)
			node_boot(n);
		return;
	}
	if (n->frozen)
		return;
	session_turn(n->s, sim->now / 1000, (int64_t)(sim->now / 1000000), true);
	sim->c.turns++;
	if (session_finished(n->s, &code)) {
		if (!n->stop_sent)
			fail(sim, "node %c: the keeper exited (code %d) without being told to stop",
			     'A' + n->idx, code);
		trace(sim, n->idx, "keeper stopped (code %d); restarting", code);
		node_down(n, rng_range(&sim->rng, 1000, 500000));
	}
}

/* --- faults ----------------------------------------------------------------------- */

static void link_host(const struct sim *sim, int node, int link, char *host, size_t len)
{
	(void)sim;
	snprintf(host, len, "127.0.%d.%d", link, node + 1);
}

static void faults(struct sim *sim, uint64_t dt_ms)
{
	struct rng *r = &sim->rng;
	char host[64];

	/* Restore what is due. */
	for (int i = 0; i < NODES; i++)
		for (int l = 0; l < sim->nlinks; l++)
			if (sim->cuts[i][l].on && sim->now >= sim->cuts[i][l].until) {
				sim->cuts[i][l].on = false;
				link_host(sim, i, l, host, sizeof(host));
				tp_mem_net_cut(sim->net, host, false);
				trace(sim, i, "link %d restored", l);
			}
	for (int i = 0; i < NODES; i++) {
		struct sim_node *n = &sim->node[i];

		if (n->frozen && sim->now >= n->thaw_at) {
			n->frozen = false;
			tp_mem_net_freeze(sim->net, n->id, false);
			if (n->disk_room_at < sim->now)
				n->disk_room_at = sim->now;  /* its retry timer runs from now */
			trace(sim, i, "thawed");
		}
		if (n->disk_full && sim->now >= n->disk_room_at) {
			n->disk_full = false;
			trace(sim, i, "its disk has room again");
		}
	}
	if (sim->now >= sim->fault_end || !dt_ms)
		return;
	for (uint64_t t = 0; t < dt_ms && t < 50; t++) {
		for (int i = 0; i < NODES; i++) {
			struct sim_node *n = &sim->node[i];

			if (rng_chance(r, sim->mix.cut)) {
				int l = (int)rng_below(r, (uint64_t)sim->nlinks);

				if (!sim->cuts[i][l].on) {
					sim->cuts[i][l].on = true;
					sim->cuts[i][l].until = sim->now + rng_range(r, 1000, 6000000);
					link_host(sim, i, l, host, sizeof(host));
					tp_mem_net_cut(sim->net, host, true);
					sim->c.cuts++;
					trace(sim, i, "link %d cut for %llu ms", l,
					      (unsigned long long)((sim->cuts[i][l].until - sim->now) / 1000));
				}
			}
			if (!n->s)
				continue;
			if (!n->frozen && rng_chance(r, sim->mix.stall)) {
				n->frozen = true;
				n->thaw_at = sim->now + rng_range(r, 1000, 4000000);
				tp_mem_net_freeze(sim->net, n->id, true);
				sim->c.stalls++;
				trace(sim, i, "stalled for %llu ms",
				      (unsigned long long)((n->thaw_at - sim->now) / 1000));
			}
			if (!n->disk_full && rng_chance(&sim->disk_rng, sim->mix.disk)) {
				n->disk_full = true;
				n->disk_room_at = sim->now + rng_range(&sim->disk_rng, 1000, 8000000);
				sim->c.disks_full++;
				trace(sim, i, "its disk is full for %llu ms",
				      (unsigned long long)((n->disk_room_at - sim->now) / 1000));
			}
			if (rng_chance(r, sim->mix.crash)) {
				sim->c.crashes++;
				trace(sim, i, "crashes");
				node_down(n, rng_range(r, 1000, 3000000));
				continue;
			}
			if (!n->stop_sent && !n->frozen && rng_chance(r, sim->mix.restart)) {
				sim->c.restarts++;
				trace(sim, i, "told to stop (a restart)");
				n->stop_sent = true;
				session_signal(n->s, sim->now / 1000, (int64_t)(sim->now / 1000000));
			}
		}
		if (sim->plant_rewind && rng_chance(r, 2000)) {
			struct sim_node *n = &sim->node[rng_below(r, NODES)];
			struct port_client *pc = n->s ? ports_find(n->s->ports, "probe") : NULL;
			int p = (int)rng_below(r, PORTS);

			if (pc && sess_connected(n->s) && pc->port[p].rel.rx_seq > 0) {
				pc->port[p].rel.rx_seq--;
				sim->c.plants++;
				trace(sim, n->idx, "PLANTED: port %d forgets it delivered seq %llu", p,
				      (unsigned long long)pc->port[p].rel.rx_seq + 1);
			}
		}
		if (rng_chance(r, sim->mix.jitter)) {
			uint32_t lo = (uint32_t)rng_range(r, 5, 500);
			uint32_t hi = lo + (uint32_t)rng_range(r, 0, rng_below(r, 4) ? 2000 : 80000);

			tp_mem_net_set_latency(sim->net, lo, hi);
			sim->c.jitters++;
			trace(sim, -1, "latency now %u..%u us", lo, hi);
		}
	}
}

/* The faults stop: everything comes back. */
static void heal(struct sim *sim)
{
	char host[64];

	for (int i = 0; i < NODES; i++) {
		struct sim_node *n = &sim->node[i];

		for (int l = 0; l < sim->nlinks; l++)
			if (sim->cuts[i][l].on) {
				sim->cuts[i][l].on = false;
				link_host(sim, i, l, host, sizeof(host));
				tp_mem_net_cut(sim->net, host, false);
			}
		if (n->frozen) {
			n->frozen = false;
			tp_mem_net_freeze(sim->net, n->id, false);
		}
		if (n->disk_full || n->disk_room_at > sim->now) {
			n->disk_full = false;
			n->disk_room_at = sim->now;
		}
	}
	tp_mem_net_set_latency(sim->net, 10, 200);
	trace(sim, -1, "faults stop: every link restored, every node running");
}

/* --- invariants ------------------------------------------------------------------- */

static bool both_connected(const struct sim *sim)
{
	const struct session *a = sim->node[0].s, *b = sim->node[1].s;

	return a && b && a->handoff_state == HANDOFF_CONNECTED &&
	       b->handoff_state == HANDOFF_CONNECTED;
}

static void check_agreement(struct sim *sim)
{
	const struct session *a = sim->node[0].s, *b = sim->node[1].s;

	if (!both_connected(sim))
		return;
	if (a->ex->peer.node_id != b->cfg->node_id || b->ex->peer.node_id != a->cfg->node_id ||
	    a->ex->peer.epoch != b->epoch || b->ex->peer.epoch != a->epoch ||
	    a->ex->version != b->ex->version)
		fail(sim, "both handoffs say connected but disagree: A has partner %u epoch %016llx "
		     "v%u, B is %u epoch %016llx; B has partner %u epoch %016llx v%u, A is %u "
		     "epoch %016llx", a->ex->peer.node_id, (unsigned long long)a->ex->peer.epoch,
		     a->ex->version, b->cfg->node_id, (unsigned long long)b->epoch,
		     b->ex->peer.node_id, (unsigned long long)b->ex->peer.epoch, b->ex->version,
		     a->cfg->node_id, (unsigned long long)a->epoch);
}

/* A full disk loses no state: once it has room again, the keeper writes
 * the whole handoff at its next retry (or sooner, at its next change). */
static void check_disk(struct sim *sim)
{
	for (int i = 0; i < NODES; i++) {
		const struct sim_node *n = &sim->node[i];

		if (!n->s || n->frozen || n->disk_full || !n->s->handoff_unwritten)
			continue;
		if (sim->now > n->disk_room_at + (HANDOFF_RETRY_MS + 100) * 1000ull)
			fail(sim, "node %c: its handoff is still not written %llu ms after its disk "
			     "had room again", 'A' + i,
			     (unsigned long long)((sim->now - n->disk_room_at) / 1000));
	}
}

/* At the end: the file a script reads says what the keeper knows (its
 * state, and once it has one its partner's epoch), whatever the disk did
 * meanwhile. */
static void check_handoff_files(struct sim *sim)
{
	for (int i = 0; i < NODES && !sim->failure[0]; i++) {
		const struct sim_node *n = &sim->node[i];
		const struct session *ns = n->s;
		char path[300], want[96], epoch[96], text[8192];
		FILE *f;
		size_t len;

		snprintf(path, sizeof(path), "%s/state/state", n->dir);
		f = fopen(path, "r");
		len = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
		if (f)
			fclose(f);
		text[len] = '\0';
		snprintf(want, sizeof(want), "CCM_STATE='%s'", handoff_state_name(ns->handoff_state));
		snprintf(epoch, sizeof(epoch), "CCM_PARTNER_EPOCH='%llu'",
			 (unsigned long long)ns->ex->peer.epoch);
		if (!strstr(text, want) ||
		    (ns->handoff_state == HANDOFF_CONNECTED && !strstr(text, epoch)))
			fail(sim, "node %c: its handoff file does not say what its keeper knows: "
			     "%s, partner epoch %016llx (%s)", 'A' + i,
			     handoff_state_name(ns->handoff_state),
			     (unsigned long long)ns->ex->peer.epoch, f ? "see the file" : "no file");
	}
}

/* A keeper's armed deadlines and state: for the spin report. */
static void dump_deadlines(struct sim *sim, const struct session *s, int node)
{
	char line[160];
	int n = 0;

	for (int id = 0; id < T_COUNT; id++)
		if (timer_armed(&s->timers, id) && n < (int)sizeof(line) - 32)
			n += snprintf(line + n, sizeof(line) - (size_t)n, " %s%s@%llu",
				      timer_name(id), id >= T_LINK_CONNECT ? "/" : "",
				      (unsigned long long)s->timers.at[id]);
	trace(sim, node, "at %llu, hs %s, stage %u, connected %d, unreachable %d, stopping %d; "
	      "timers:%s", (unsigned long long)s->now, hs_state_name(s->hs.state), s->stage,
	      sess_connected(s), sess_unreachable(s), sess_stopping(s), line);
}

/* --- one seed --------------------------------------------------------------------- */

static void draw_mix(struct sim *sim)
{
	struct rng *r = &sim->rng;
	struct fault_mix *m = &sim->mix;

	/* Swarm: each fault is on or off for the whole run, at its own rate. */
	m->cut = rng_below(r, 3) ? (uint32_t)rng_range(r, 10, 2000) : 0;
	m->stall = rng_below(r, 3) ? 0 : (uint32_t)rng_range(r, 10, 400);
	m->crash = rng_below(r, 3) ? 0 : (uint32_t)rng_range(r, 5, 200);
	m->restart = rng_below(r, 4) ? 0 : (uint32_t)rng_range(r, 5, 200);
	m->jitter = rng_below(r, 2) ? 0 : (uint32_t)rng_range(r, 100, 2000);
	m->disk = rng_below(&sim->disk_rng, 3) ? 0 : (uint32_t)rng_range(&sim->disk_rng, 5, 200);
	m->client_churn = rng_below(r, 2) ? 0 : (uint32_t)rng_range(r, 10, 1000);
	m->client_send = (uint32_t)rng_range(r, 1000, 100000);
	m->client_write = (uint32_t)rng_range(r, 1000, 50000);
	m->client_deaf = rng_below(&sim->deaf_rng, 2) ? 0 : (uint32_t)rng_range(&sim->deaf_rng, 10, 500);
	sim->nlinks = (int)rng_range(r, 1, 3);
	sim->rdma = rng_below(r, 2);
	if (sim->stray || sim->sc)
		m->cut = m->stall = m->crash = m->restart = m->jitter = m->disk = m->client_churn =
			m->client_deaf = 0;
	if (sim->sc) {
		sim->nlinks = 1;
		sim->rdma = sim->sc->rdma;
	}
}

/* --scenario: the script's next step, once its time has come.  When the
 * last is done, the faults end 3 s later (then the usual liveness). */
static void script_step(struct sim *sim)
{
	const struct scenario *sc = sim->sc;

	while (sim->sc_next < sc->nsteps) {
		const struct sc_step *st = &sc->steps[sim->sc_next];
		struct sim_node *n = &sim->node[st->node];

		if (!sim->sc_armed_at) {
			bool due = st->when ? sim->sc_when_seen : sim->sc_next > 0 || both_connected(sim);

			if (!due)
				return;
			sim->sc_armed_at = sim->now;
		}
		if (sim->now < sim->sc_armed_at + (uint64_t)st->after_ms * 1000)
			return;
		/* A step that cannot be taken now (its node down, or already
		 * stopping) ends the run as a failure: the script lost its
		 * situation. */
		if (st->act != SC_LATENCY && st->act != SC_REPLAY &&
		    (!n->s || n->frozen || n->stop_sent)) {
			fail(sim, "scenario %s: step %d found node %c %s", sc->name, sim->sc_next + 1,
			     'A' + st->node, !n->s ? "down" : n->frozen ? "stalled" : "stopping");
			return;
		}
		switch (st->act) {
		case SC_STALL:
			n->frozen = true;
			n->thaw_at = sim->now + (uint64_t)st->ms * 1000;
			tp_mem_net_freeze(sim->net, n->id, true);
			sim->c.stalls++;
			trace(sim, st->node, "scenario step %d: stalled for %u ms", sim->sc_next + 1,
			      st->ms);
			break;
		case SC_RESTART:
			n->stop_sent = true;
			sim->c.restarts++;
			trace(sim, st->node, "scenario step %d: told to stop (a restart)",
			      sim->sc_next + 1);
			session_signal(n->s, sim->now / 1000, (int64_t)(sim->now / 1000000));
			break;
		case SC_CRASH:
			sim->c.crashes++;
			trace(sim, st->node, "scenario step %d: crashes, down for %u ms",
			      sim->sc_next + 1, st->ms);
			node_down(n, (uint64_t)st->ms * 1000);
			break;
		case SC_REPLAY: {
			int r = tp_mem_net_replay(sim->net, n->id, (int)st->skip, (int)st->ms);

			if (r <= 0) {
				fail(sim, "scenario %s: step %d: nothing of node %c to deliver again "
				     "(%d)", sc->name, sim->sc_next + 1, 'A' + st->node, r);
				return;
			}
			trace(sim, st->node, "scenario step %d: %d frame(s) of its previous "
			      "connection delivered again on its current one", sim->sc_next + 1, r);
			break;
		}
		case SC_LATENCY:
			tp_mem_net_set_latency(sim->net, st->ms * 500, st->ms * 1000);
			sim->c.jitters++;
			trace(sim, -1, "scenario step %d: latency now %u..%u ms", sim->sc_next + 1,
			      st->ms / 2, st->ms);
			break;
		}
		sim->sc_next++;
		sim->sc_armed_at = 0;
		sim->sc_when_seen = false;
	}
	if (sim->fault_end == UINT64_MAX) {
		sim->fault_end = sim->now + 3000000;
		sim->end = sim->fault_end + 60000000;
	}
}

/* --scenario, at the end of a run that passed: its lines came as often as
 * the bug's situation makes them. */
static void script_check(struct sim *sim)
{
	const struct scenario *sc = sim->sc;

	if (sim->sc_next < sc->nsteps)
		fail(sim, "scenario %s: step %d never came (waiting for \"%s\")", sc->name,
		     sim->sc_next + 1, sc->steps[sim->sc_next].when ? sc->steps[sim->sc_next].when :
		     "both connected");
	for (int i = 0; i < sc->ncounts && !sim->failure[0]; i++) {
		const struct sc_count *k = &sc->counts[i];

		if (sim->sc_seen[i] < k->min || sim->sc_seen[i] > k->max)
			fail(sim, "scenario %s: \"%s\" logged %d time(s) by %s, wanted %d..%d", sc->name,
			     k->line, sim->sc_seen[i], k->node < 0 ? "either" : k->node ? "B" : "A",
			     k->min, k->max);
	}
}

/* --impostor: a forged mailbox (proto/status.h, keyed) into the status
 * window of one of the connected pair, claiming to come from its partner.
 * Only once both are connected: a write that lands on the partner's
 * genuine one mid-handshake destroys it, which no tag can prevent (an
 * injector can always deny service); what the tag must prevent is being
 * believed. */
static void forge_step(struct sim *sim)
{
	struct rng *r = &sim->forge_rng;
	struct session *victim, *partner;
	struct status_mbox m;
	uint8_t *at;
	int i;

	if (!sim->pair_up || sim->now < sim->forge_at || sim->now >= sim->fault_end)
		return;
	sim->forge_at = sim->now + rng_range(r, 1000, 30000);
	i = (int)rng_below(r, NODES);
	victim = sim->node[i].s;
	partner = sim->node[!i].s;
	m = (struct status_mbox){
		.from_state = (uint8_t)rng_below(r, HS_NSTATES),
		.from_stage = (uint8_t)rng_range(r, STAGE_HANDSHAKE, STAGE_TERMINATING),
		.from_node = sim->node[!i].id,
		.from_epoch = rng_below(r, 2) ? partner->epoch : rng_next(r),
		.to_epoch = victim->epoch,
	};
	at = victim->win + STATUS_KMBOX_OFFSET;
	status_encode_mbox(&m, at);
	rng_bytes(r, at + STATUS_MBOX_SIZE, STATUS_KMBOX_TAG);
	sim->c.forged++;
	trace(sim, i, "forged mailbox lands: state %u stage %u, epoch %s", m.from_state,
	      m.from_stage, m.from_epoch == partner->epoch ? "the partner's" : "a new one");
}

/* --stray: the third node comes and goes; the pair must not notice. */
static void stray_step(struct sim *sim)
{
	struct sim_node *t = &sim->third;

	if (!sim->pair_up && both_connected(sim))
		sim->pair_up = true;
	if (sim->pair_up && !both_connected(sim))
		fail(sim, "a stray node (%s, partner address A's) disturbed the connected pair "
		     "(%llu forged mailbox writes so far): A is %s, B is %s",
		     sim->impostor ? "claiming B's id without our key" : "id 3",
		     (unsigned long long)sim->c.forged,
		     sim->node[0].s ? handoff_state_name(sim->node[0].s->handoff_state) : "down",
		     sim->node[1].s ? handoff_state_name(sim->node[1].s->handoff_state) : "down");
	if (sim->impostor && !sim->failure[0])
		forge_step(sim);
	if (t->s && t->s->handoff_state == HANDOFF_CONNECTED)
		fail(sim, "the stray node got in: it is connected");
	if (t->s && session_finished(t->s, NULL)) {
		/* Ended (an impostor refused for its key tries on until a
		 * --timeout, and the stray has none: seldom): it starts
		 * again a while later, as a retrying unit would. */
		session_close(t->s);
		t->s = NULL;
		t->up_at = sim->now + 500000;
		return;
	}
	if (!t->s && sim->now >= t->up_at && sim->now < sim->fault_end) {
		node_boot(t);
		return;
	}
	if (t->s && sim->now >= sim->fault_end) {
		session_close(t->s);
		t->s = NULL;
		return;
	}
	if (t->s)
		session_turn(t->s, sim->now / 1000, (int64_t)(sim->now / 1000000), false);
}

static uint64_t next_time(struct sim *sim)
{
	uint64_t next = tp_mem_net_next(sim->net);

	for (int i = 0; i < NODES; i++) {
		struct sim_node *n = &sim->node[i];
		uint64_t t;

		if (!n->s)
			t = n->up_at;
		else if (n->frozen)
			t = n->thaw_at;
		else
			t = session_wakeup(n->s) * 1000;
		if (t < next)
			next = t;
		for (int l = 0; l < sim->nlinks; l++)
			if (sim->cuts[i][l].on && sim->cuts[i][l].until < next)
				next = sim->cuts[i][l].until;
	}
	/* The clients and the faults act at least once a millisecond. */
	if (next > sim->now + 1000)
		next = sim->now + 1000;
	return next;
}

/* Liveness: once healed, both connected to each other, both clients
 * attached and told the partner is ready, then a burst of messages and a
 * write each way arrive whole, and both handoff files are written. */
static bool probe_done(struct sim *sim)
{
	for (int i = 0; i < NODES; i++) {
		struct sim_node *n = &sim->node[i];

		for (int p = 0; p < PORTS; p++)
			if (n->probe_got[p] < 5 || writes_in_flight(&n->cl, p))
				return false;
		/* A handoff a full disk held back is written at the keeper's
		 * next retry (check_disk bounds it): then the files are read. */
		if (n->s->handoff_unwritten)
			return false;
	}
	return true;
}

static void probe_start(struct sim *sim)
{
	sim->probing = true;
	for (int i = 0; i < NODES; i++) {
		struct sim_node *n = &sim->node[i];

		memset(n->probe_got, 0, sizeof(n->probe_got));
		for (int p = 0; p < PORTS; p++) {
			n->probe_from[p] = n->cl.tx_counter[p];
			n->probe_todo[p] = 5;
		}
		probe_send(n);
	}
	trace(sim, -1, "liveness probe: 5 messages per port each way");
}

static bool ready_to_probe(const struct sim *sim)
{
	if (!both_connected(sim))
		return false;
	for (int i = 0; i < NODES; i++)
		if (!sim->node[i].cl.attached || !sim->node[i].cl.partner_ready ||
		    sim->node[i].stop_sent)
			return false;
	return true;
}

static void run_seed(struct sim *sim)
{
	uint64_t last = 0, spins = 0, quiet_at = 0, probe_at = 0;
	struct tp_mem_params np = { 0 };
	struct tp_mem_stats st;

	sim->rng.s = sim->seed;
	sim->entropy.s = sim->seed ^ 0x5eed5eed5eed5eedull;
	sim->disk_rng.s = sim->seed ^ 0xd15cf011d15cf011ull;
	sim->deaf_rng.s = sim->seed ^ 0xdeafc11e4deafc11ull;
	sim->forge_rng.s = sim->seed ^ 0xf0f6ed3a11b0c5ull;
	draw_mix(sim);
	np.seed = rng_next(&sim->rng);
	np.min_us = (uint32_t)rng_range(&sim->rng, 5, 100);
	np.max_us = np.min_us + (uint32_t)rng_range(&sim->rng, 0, 2000);
	np.detect_us = (uint32_t)rng_range(&sim->rng, 500000, 3000000);
	np.nic_serves = sim->rdma;
	if (tp_mem_net_create(&np, &sim->net) < 0) {
		fail(sim, "cannot create the network");
		return;
	}
	sim->fault_end = rng_range(&sim->rng, 1000000, 15000000);
	sim->end = sim->fault_end + 60000000;  /* liveness bound: 60 s */
	if (sim->sc) {
		/* Until the script is done (script_step), with a bound. */
		sim->fault_end = UINT64_MAX;
		sim->end = 120000000;
	}
	trace(sim, -1, "seed %llu: %d link(s), %s, cut %u stall %u crash %u restart %u jitter %u "
	      "disk %u churn %u (per million per ms), faults until %llu ms",
	      (unsigned long long)sim->seed, sim->nlinks, sim->rdma ? "rdma-like" : "tcp-like",
	      sim->mix.cut, sim->mix.stall, sim->mix.crash, sim->mix.restart, sim->mix.jitter,
	      sim->mix.disk, sim->mix.client_churn, (unsigned long long)(sim->fault_end / 1000));
	for (int i = 0; i < NODES; i++) {
		struct sim_node *n = &sim->node[i];

		n->sim = sim;
		n->idx = i;
		n->id = (uint32_t)(i + 1);
		n->cl.sock = -1;
		node_config(sim, n);
		/* The second node starts a while after the first. */
		n->up_at = i ? rng_below(&sim->rng, 3000000) : 0;
	}
	if (sim->stray) {
		struct sim_node *t = &sim->third;

		/* Nothing may go unreachable here, so the pair agrees on its
		 * heartbeat: with B beating slower than A's limit, A declares
		 * a healthy B lost (a hazard of its own, noted in the README). */
		sim->node[1].cfg.heartbeat_ms = sim->node[0].cfg.heartbeat_ms;
		sim->node[1].cfg.heartbeat_misses = sim->node[0].cfg.heartbeat_misses;

		t->sim = sim;
		t->idx = 2;
		t->id = 3;
		t->cl.sock = -1;
		snprintf(t->dir, sizeof(t->dir), "%s/c", sim->root);
		stray_config(sim, t);
		t->up_at = rng_below(&sim->rng, sim->fault_end);
		if (sim->impostor) {
			/* Posing as B, with a key of its own or none. */
			t->cfg.node_id = 2;
			if (rng_below(&sim->rng, 2))
				snprintf(t->cfg.psk_file, sizeof(t->cfg.psk_file), "%s/key", t->dir);
		}
	}
	while (!sim->failure[0]) {
		uint64_t next = next_time(sim), dt;

		if (next < sim->now)
			next = sim->now;
		dt = (next - sim->now) / 1000 + (next > sim->now);
		sim->now = next;
		if (sim->now >= sim->end) {
			const struct sim_node *a = &sim->node[0], *b = &sim->node[1];

			for (int i = 0; i < NODES; i++) {
				struct session *ns = sim->node[i].s;
				struct port_client *pc = ns ? ports_find(ns->ports, "probe") : NULL;

				for (int p = 0; pc && p < PORTS; p++)
					trace(sim, i, "port %d: tx_seq %llu acked %llu rx_seq %llu link %d; "
					      "%d unacknowledged kept, %d held early, %llu dups", p,
					      (unsigned long long)pc->port[p].rel.tx_seq,
					      (unsigned long long)pc->port[p].rel.tx_acked,
					      (unsigned long long)pc->port[p].rel.rx_seq, pc->port[p].link,
					      ns->rel.nsent, ns->rel.nheld,
					      (unsigned long long)ns->rel.dups);
			}
			fail(sim, "liveness: %s %llu ms after the faults stopped (probe messages "
			     "received: A %llu/%llu, B %llu/%llu of 5 per port; writes pending: "
			     "A %d/%d, B %d/%d)",
			     !both_connected(sim) ? "the pair is not connected"
			     : !ready_to_probe(sim) ? "the clients are not both attached and ready"
			     : "the probe's messages and writes did not all arrive",
			     (unsigned long long)((sim->now - sim->fault_end) / 1000),
			     (unsigned long long)a->probe_got[0], (unsigned long long)a->probe_got[1],
			     (unsigned long long)b->probe_got[0], (unsigned long long)b->probe_got[1],
			     writes_in_flight(&a->cl, 0), writes_in_flight(&a->cl, 1),
			     writes_in_flight(&b->cl, 0), writes_in_flight(&b->cl, 1));
			break;
		}
		if (sim->now == last) {
			if (++spins > SPIN_LIMIT) {
				for (int i = 0; i < NODES; i++)
					if (sim->node[i].s)
						dump_deadlines(sim, sim->node[i].s, i);
				fail(sim, "virtual time stopped at %llu us: a turn loop spins (net next "
				     "%llu, A wakes %llu, B wakes %llu)", (unsigned long long)sim->now,
				     (unsigned long long)tp_mem_net_next(sim->net),
				     (unsigned long long)(sim->node[0].s ? session_wakeup(sim->node[0].s) * 1000 : 0),
				     (unsigned long long)(sim->node[1].s ? session_wakeup(sim->node[1].s) * 1000 : 0));
				break;
			}
		} else {
			spins = 0;
			last = sim->now;
		}
		sim->c.steps++;
		if (!sim->quiet_phase && sim->now >= sim->fault_end) {
			heal(sim);
			sim->quiet_phase = true;
			quiet_at = sim->now;
		}
		if (sim->sc)
			script_step(sim);
		faults(sim, dt);
		tp_mem_net_advance(sim->net, sim->now);
		for (int i = 0; i < NODES && !sim->failure[0]; i++)
			node_turn(&sim->node[i]);
		for (int i = 0; i < NODES && !sim->failure[0]; i++)
			client_step(&sim->node[i]);
		if (sim->stray)
			stray_step(sim);
		check_agreement(sim);
		check_disk(sim);
		tp_mem_net_stats(sim->net, &st);
		if (st.in_flight > IN_FLIGHT_MAX)
			fail(sim, "%d items in flight: unbounded", st.in_flight);
		if (sim->quiet_phase && !sim->probing && ready_to_probe(sim)) {
			probe_start(sim);
			probe_at = sim->now;
		}
		if (sim->probing && probe_done(sim)) {
			check_handoff_files(sim);
			if (sim->sc && !sim->failure[0])
				script_check(sim);
			if (sim->failure[0])
				break;
			sim->c.connected_runs++;
			trace(sim, -1, "liveness: connected %llu ms after the faults stopped; probe "
			      "done in %llu ms", (unsigned long long)((probe_at - quiet_at) / 1000),
			      (unsigned long long)((sim->now - probe_at) / 1000));
			break;
		}
	}
	for (int i = 0; i < NODES; i++)
		if (sim->node[i].s) {
			client_detach(&sim->node[i], "end of run");
			session_close(sim->node[i].s);
			sim->node[i].s = NULL;
		}
	if (sim->third.s) {
		session_close(sim->third.s);
		sim->third.s = NULL;
	}
	tp_mem_net_destroy(sim->net);
	sim->net = NULL;
	for (int i = 0; i < NODES; i++) {
		free(sim->node[i].got.slot);
		free(sim->node[i].lost.slot);
		free(sim->node[i].claims);
	}
}

static void print_trace(const struct sim *sim)
{
	int n = sim->trace_next < TRACE_LINES ? sim->trace_next : TRACE_LINES;

	for (int i = sim->trace_next - n; i < sim->trace_next; i++)
		fprintf(stderr, "  %s\n", sim->trace[i % TRACE_LINES]);
}

static void usage(void)
{
	fprintf(stderr, "usage: sim [--seeds N] [--first S] [--seed S] [-v] [--plant rewind|lose]\n"
			"           [--stray] [--impostor] [--scenario NAME|all]\n");
	exit(2);
}

static uint64_t arg_u64(const char *s)
{
	uint64_t v;

	if (num_parse_u64(s, 1, UINT64_MAX / 2, &v) < 0)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seeds", required_argument, NULL, 'n' },
		{ "first", required_argument, NULL, 'f' },
		{ "seed", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "plant", required_argument, NULL, 'p' },
		{ "stray", no_argument, NULL, 'S' },
		{ "impostor", no_argument, NULL, 'I' },
		{ "scenario", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t first = 1, seeds = 100, failed = 0, sim_us = 0;
	struct counters total = { 0 };
	struct sim *sim;
	uint64_t t0;
	bool verbose = false, plant = false, stray = false, impostor = false;
	const char *plant_name = "";
	uint64_t first_caught = 0, caught = 0;
	int c, fds0, sc_first = -1, sc_last = -1;
	uint64_t runs = 0;

	while ((c = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			seeds = arg_u64(optarg);
			break;
		case 'f':
			first = arg_u64(optarg);
			break;
		case 's':
			first = arg_u64(optarg);
			seeds = 1;
			break;
		case 'v':
			verbose = true;
			break;
		case 'p':
			if (strcmp(optarg, "rewind") == 0)
				plant_name = "rewind";
			else if (strcmp(optarg, "lose") == 0)
				plant_name = "lose";
			else
				usage();
			plant = true;
			break;
		case 'S':
			stray = true;
			break;
		case 'I':
			stray = impostor = true;
			break;
		case 'c':
			sc_first = 0;
			sc_last = NSCENARIOS - 1;
			if (strcmp(optarg, "all") != 0) {
				while (sc_first < NSCENARIOS && strcmp(scenarios[sc_first].name, optarg))
					sc_first++;
				if (sc_first == NSCENARIOS) {
					fprintf(stderr, "sim: no scenario %s; there are:", optarg);
					for (int k = 0; k < NSCENARIOS; k++)
						fprintf(stderr, " %s", scenarios[k].name);
					fprintf(stderr, "\n");
					return 2;
				}
				sc_last = sc_first;
			}
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	sim = calloc(1, sizeof(*sim));
	if (!sim || make_dirs(sim) < 0) {
		fprintf(stderr, "sim: cannot set up its directories in /dev/shm\n");
		return 1;
	}
	printf("sim: seeds %llu..%llu\n", (unsigned long long)first,
	       (unsigned long long)(first + seeds - 1));
	fflush(stdout);
	t0 = clock_ms();
	fds0 = count_fds();
	for (int k = sc_first; k <= sc_last; k++)
	for (uint64_t seed = first; seed < first + seeds; seed++) {
		const struct scenario *sc = k >= 0 ? &scenarios[k] : NULL;
		char root[48], what[256];
		int fds;

		memcpy(root, sim->root, sizeof(root));
		memset(sim, 0, sizeof(*sim));
		memcpy(sim->root, root, sizeof(root));
		for (int i = 0; i < NODES; i++)
			snprintf(sim->node[i].dir, sizeof(sim->node[i].dir), "%s/%c", root, 'a' + i);
		sim->seed = seed;
		sim->verbose = verbose;
		sim->plant_rewind = plant && !strcmp(plant_name, "rewind");
		sim->plant_lose = plant && !strcmp(plant_name, "lose");
		sim->stray = stray;
		sim->impostor = impostor;
		sim->sc = sc;
		run_seed(sim);
		runs++;
		if (sc)
			snprintf(what, sizeof(what), "scenario %s (%s), seed %llu", sc->name, sc->bug,
				 (unsigned long long)seed);
		else
			snprintf(what, sizeof(what), "seed %llu", (unsigned long long)seed);
		fds = count_fds();
		if (!sim->failure[0] && fds != fds0)
			fail(sim, "%d fd(s) open after the run, %d before: a leak", fds, fds0);
		sim_us += sim->now;
		total.steps += sim->c.steps;
		total.turns += sim->c.turns;
		total.cuts += sim->c.cuts;
		total.stalls += sim->c.stalls;
		total.crashes += sim->c.crashes;
		total.restarts += sim->c.restarts;
		total.jitters += sim->c.jitters;
		total.disks_full += sim->c.disks_full;
		total.msgs_delivered += sim->c.msgs_delivered;
		total.writes_checked += sim->c.writes_checked;
		total.resumes += sim->c.resumes;
		total.rehandshakes += sim->c.rehandshakes;
		total.failovers += sim->c.failovers;
		total.unreachables += sim->c.unreachables;
		total.attaches += sim->c.attaches;
		total.connected_runs += sim->c.connected_runs;
		total.plants += sim->c.plants;
		total.claims_checked += sim->c.claims_checked;
		total.deaf_spells += sim->c.deaf_spells;
		total.given_up += sim->c.given_up;
		total.forged += sim->c.forged;
		total.refused_full += sim->c.refused_full;
		if (plant) {
			/* Every failure here is the planted bug caught. */
			if (sim->failure[0] && !caught++)
				first_caught = seed;
			if (sim->failure[0] && verbose)
				print_trace(sim);
			continue;
		}
		if (sim->failure[0]) {
			failed++;
			printf("not ok %llu - %s: %s\n", (unsigned long long)runs, what, sim->failure);
			fprintf(stderr, "%s failed: %s\n  last events:\n", what, sim->failure);
			print_trace(sim);
			fprintf(stderr, "  replay: build/dev/tests/sim --seed %llu%s%s -v\n",
				(unsigned long long)seed, sc ? " --scenario " : "", sc ? sc->name : "");
		} else if (verbose || seeds <= 20) {
			printf("ok %llu - %s\n", (unsigned long long)runs, what);
		}
		fflush(stdout);
	}
	{
		double secs = (double)(clock_ms() - t0) / 1000.0;

		if (secs <= 0)
			secs = 0.001;
		printf("sim: %llu seeds in %.1f s (%.0f seeds/s), %.2f simulated hours "
		       "(%.1f simulated minutes per wall second), %llu steps (%.0f steps/s)\n",
		       (unsigned long long)runs, secs, (double)runs / secs,
		       (double)sim_us / 3.6e9, (double)sim_us / 6e7 / secs,
		       (unsigned long long)total.steps, (double)total.steps / secs);
		printf("sim: faults: %llu link cuts, %llu stalls, %llu crashes, %llu restarts, "
		       "%llu latency changes, %llu full disks\n", (unsigned long long)total.cuts,
		       (unsigned long long)total.stalls, (unsigned long long)total.crashes,
		       (unsigned long long)total.restarts, (unsigned long long)total.jitters,
		       (unsigned long long)total.disks_full);
		printf("sim: reached: %llu resumes, %llu re-handshakes, %llu failovers, "
		       "%llu unreachable, %llu client attaches, %llu messages delivered in order, "
		       "%llu writes checked, %llu runs connected at the end\n",
		       (unsigned long long)total.resumes, (unsigned long long)total.rehandshakes,
		       (unsigned long long)total.failovers, (unsigned long long)total.unreachables,
		       (unsigned long long)total.attaches, (unsigned long long)total.msgs_delivered,
		       (unsigned long long)total.writes_checked,
		       (unsigned long long)total.connected_runs);
		printf("sim: flow control: %llu confirmed sends checked at the receiver, %llu deaf "
		       "client spells, %llu sends held back by a full window, %llu given up "
		       "(-ETIMEDOUT) and never delivered\n",
		       (unsigned long long)total.claims_checked,
		       (unsigned long long)total.deaf_spells, (unsigned long long)total.refused_full,
		       (unsigned long long)total.given_up);
		if (impostor)
			printf("sim: %llu forged mailbox writes landed in a connected keeper's "
			       "window\n", (unsigned long long)total.forged);
	}
	if (plant) {
		printf("sim: planted bug '%s' made %llu time(s)\n", plant_name,
		       (unsigned long long)total.plants);
		remove_dirs(sim);
		free(sim);
		if (!caught) {
			printf("not ok 1 - the planted bug '%s' was not caught in %llu seeds\n",
			       plant_name, (unsigned long long)seeds);
			printf("0 passed, 1 failed\n");
			return 1;
		}
		printf("ok 1 - the planted bug '%s' was caught by %llu of %llu seeds, first by "
		       "seed %llu (%llu seed(s) in)\n", plant_name, (unsigned long long)caught,
		       (unsigned long long)seeds, (unsigned long long)first_caught,
		       (unsigned long long)(first_caught - first + 1));
		printf("1 passed, 0 failed\n");
		return 0;
	}
	if (!failed)
		printf("ok %llu - %llu seeds, no invariant broken\n",
		       (unsigned long long)(seeds <= 20 ? runs + 1 : 1), (unsigned long long)runs);
	remove_dirs(sim);
	free(sim);
	printf("%llu passed, %llu failed\n", (unsigned long long)(runs - failed),
	       (unsigned long long)failed);
	return failed ? 1 : 0;
}
