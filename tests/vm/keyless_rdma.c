/* keyless_rdma: a host without the pre-shared key, over real verbs, against
 * a keeper that holds one (tests/vm/test_rdma.sh).
 *
 *   keyless_rdma LOCAL_ADDR PARTNER_ADDR[:PORT] NODE KEY_ID [KEY_FILE]
 *
 * It connects claiming to be NODE with a keyed request naming the real
 * key id (no secret: status prints it) and a nonce of its own, as
 * lib/tp/rdma.c's greeting does, but it cannot prove the key.  Then:
 *   - the accept must not show the status window's address or rkey in the
 *     clear (they travel sealed to the key);
 *   - it SENDs a BYE, as the exchange encodes one, where its proof should
 *     be: the keeper must not take it;
 *   - the keeper must drop the connection within its 5 s for a proof.
 * With KEY_FILE it also knows the status window's address and rkey -- it
 * opens them from one accept with the key, standing in for an rkey
 * guessed (8 bits of key beside a small index) or leaked -- and on
 * connections that have not proved the key:
 *   - a READ of the status window must fail;
 *   - a WRITE into it must fail.
 * And a keyed request of earlier builds (whose queue pairs served READ and
 * WRITE before the proof) must be refused, saying so.
 * Prints one line per check; exits 0 if every one held, 1 if not, 2 on a
 * setup failure.  Written against librdmacm directly: the product's own
 * transport would prove the key. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "base/be.h"
#include "base/errbuf.h"
#include "proto/auth.h"
#include "proto/seal.h"
#include "proto/tcpwire.h"

#define DEFAULT_PORT 7471
#define PRIV_MAGIC_KEYED 0x43434d47u   /* "CCMG", as lib/tp/rdma.c */
#define PRIV_MAGIC_UNGATED 0x43434d4bu /* "CCMK": earlier builds' */
#define PRIV_MAGIC 0x43434d52u         /* "CCMR": a reject's */
#define REJECT_UNGATED 3

/* What a connection does once accepted. */
enum act { NOTHING, BYE, LEARN, READ, WRITE, UNGATED };

/* The status window: opened from an accept with the key (LEARN). */
struct window {
	uint64_t addr;
	uint32_t rkey, len;
};

static int failures;

static void check(bool ok, const char *what)
{
	printf("%s - %s\n", ok ? "held" : "FAIL", what);
	fflush(stdout);
	failures += !ok;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The next CM event within ms, or NULL. */
static struct rdma_cm_event *next_event(struct rdma_event_channel *ch, int ms)
{
	struct pollfd p = { .fd = ch->fd, .events = POLLIN };
	struct rdma_cm_event *e;

	if (poll(&p, 1, ms) <= 0 || rdma_get_cm_event(ch, &e) < 0)
		return NULL;
	return e;
}

static struct rdma_cm_event *expect(struct rdma_event_channel *ch, enum rdma_cm_event_type want,
				    int ms)
{
	struct rdma_cm_event *e = next_event(ch, ms);

	if (!e || e->event != want) {
		fprintf(stderr, "keyless_rdma: wanted %s, got %s\n", rdma_event_str(want),
			e ? rdma_event_str(e->event) : "nothing");
		exit(2);
	}
	return e;
}

static int addr_of(const char *s, uint16_t port, struct sockaddr_in *sin)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	return inet_pton(AF_INET, s, &sin->sin_addr) == 1 ? 0 : -1;
}

/* LEARN: the status window, sealed behind the keyed accept (rep, the
 * private data after the magic) to the key; as lib/tp/rdma.c's active side
 * opens it. */
static int open_window(const struct auth_key *key, const uint8_t *req_body, const uint8_t *rep,
		       struct window *w)
{
	uint8_t transcript[TCPWIRE_CONN_REQ_KEYED_LEN + TCPWIRE_CONN_REP_MACED_LEN];
	uint8_t to_passive[AUTH_SESSION_KEY_LEN], to_active[AUTH_SESSION_KEY_LEN];
	uint8_t sealed[16 + SEAL_TAG_LEN];
	struct seal s;
	int r;

	memcpy(transcript, req_body, TCPWIRE_CONN_REQ_KEYED_LEN);
	memcpy(transcript + TCPWIRE_CONN_REQ_KEYED_LEN, rep, TCPWIRE_CONN_REP_MACED_LEN);
	auth_session_keys(key, transcript, sizeof(transcript), to_passive, to_active);
	seal_init(&s, to_active);
	memcpy(sealed, rep + TCPWIRE_CONN_REP_KEYED_LEN, sizeof(sealed));
	r = seal_open(&s, NULL, 0, sealed, 16, sealed + 16);
	w->addr = be_get64(sealed);
	w->rkey = be_get32(sealed + 8);
	w->len = be_get32(sealed + 12);
	return r;
}

/* READ or WRITE 8 bytes at the status window's end, unproven: the
 * completion's status, or -1 if none came. */
static int one_sided(struct rdma_cm_id *id, struct ibv_cq *cq, struct ibv_mr *mr, uint8_t *buf,
		     const struct window *w, bool read)
{
	struct ibv_sge sge = { .addr = (uintptr_t)buf, .length = 8, .lkey = mr->lkey };
	struct ibv_send_wr wr = { .sg_list = &sge, .num_sge = 1,
				  .opcode = read ? IBV_WR_RDMA_READ : IBV_WR_RDMA_WRITE,
				  .send_flags = IBV_SEND_SIGNALED }, *bad;
	struct ibv_wc wc;
	double t0 = now_ms();

	wr.wr.rdma.remote_addr = w->addr + w->len - 8;
	wr.wr.rdma.rkey = w->rkey;
	if (ibv_post_send(id->qp, &wr, &bad))
		return -1;
	while (now_ms() - t0 < 5000) {
		int n = ibv_poll_cq(cq, 1, &wc);

		if (n < 0)
			return -1;
		if (n == 1)
			return (int)wc.status;
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
	return -1;
}

/* One connection as NODE with a keyed request and no proof, then what
 * act says: a BYE where the proof should go, a READ or a WRITE of the
 * status window w, or (LEARN, with key) open w from the accept and go.
 * Checks what the accept shows, and that the keeper drops the connection
 * within max_ms. */
static int attempt(const struct sockaddr_in *local, const struct sockaddr_in *remote,
		   const struct tcpwire_conn_req *req, enum act act, const struct auth_key *key,
		   struct window *w, int max_ms)
{
	struct rdma_event_channel *ch;
	struct rdma_cm_id *id;
	struct rdma_cm_event *e;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_mr *mr;
	struct ibv_qp_init_attr qa = { .qp_type = IBV_QPT_RC,
				       .cap = { .max_send_wr = 4, .max_recv_wr = 1,
						.max_send_sge = 1, .max_recv_sge = 1 } };
	struct rdma_conn_param cp = { .responder_resources = 1, .initiator_depth = 1,
				      .retry_count = 3, .rnr_retry_count = 7 };
	static uint8_t msg[20 + 2];
	uint8_t priv[4 + TCPWIRE_CONN_REQ_KEYED_LEN], rep[196];
	struct ibv_sge sge;
	struct ibv_send_wr wr = { 0 }, *bad;
	char what[160];
	double t0;
	int n, st;

	ch = rdma_create_event_channel();
	if (!ch || rdma_create_id(ch, &id, NULL, RDMA_PS_TCP) ||
	    rdma_resolve_addr(id, (struct sockaddr *)local, (struct sockaddr *)remote, 1000))
		return 2;
	rdma_ack_cm_event(expect(ch, RDMA_CM_EVENT_ADDR_RESOLVED, 2000));
	if (rdma_resolve_route(id, 1000))
		return 2;
	rdma_ack_cm_event(expect(ch, RDMA_CM_EVENT_ROUTE_RESOLVED, 2000));
	pd = ibv_alloc_pd(id->verbs);
	cq = pd ? ibv_create_cq(id->verbs, 8, NULL, NULL, 0) : NULL;
	mr = cq ? ibv_reg_mr(pd, msg, sizeof(msg), IBV_ACCESS_LOCAL_WRITE) : NULL;
	/* Our own queue pair serves nothing: what comes back is the keeper's. */
	qa.send_cq = qa.recv_cq = cq;
	if (!mr || rdma_create_qp(id, pd, &qa))
		return 2;
	be_put32(priv, act == UNGATED ? PRIV_MAGIC_UNGATED : PRIV_MAGIC_KEYED);
	n = tcpwire_encode_conn_req(req, priv + 4);
	if (n < 0)
		return 2;
	cp.private_data = priv;
	cp.private_data_len = (uint8_t)(4 + n);
	if (rdma_connect(id, &cp))
		return 2;
	e = next_event(ch, 5000);
	if (act == UNGATED) {
		const uint8_t *d = e ? e->param.conn.private_data : NULL;

		check(e && e->event == RDMA_CM_EVENT_REJECTED && d &&
		      e->param.conn.private_data_len >= 5 && be_get32(d) == PRIV_MAGIC &&
		      d[4] == REJECT_UNGATED,
		      "a keyed request of the ungated greeting is refused as such");
		if (e)
			rdma_ack_cm_event(e);
		goto out;
	}
	if (!e || e->event != RDMA_CM_EVENT_ESTABLISHED) {
		check(false, "the keeper accepts a keyed request naming its key (to test what follows)");
		return 1;
	}
	memset(rep, 0, sizeof(rep));
	memcpy(rep, e->param.conn.private_data,
	       e->param.conn.private_data_len < sizeof(rep) ? e->param.conn.private_data_len :
	       sizeof(rep));
	rdma_ack_cm_event(e);
	/* The keyed CONN_REP: u16 proto, u32 node, u64 status_addr, u32 rkey. */
	check(be_get32(rep) == PRIV_MAGIC_KEYED && be_get64(rep + 4 + 6) == 0 &&
	      be_get32(rep + 4 + 14) == 0,
	      "the accept shows neither the status window's address nor its rkey");
	if (act == LEARN) {
		if (open_window(key, priv + 4, rep + 4, w) < 0) {
			fprintf(stderr, "keyless_rdma: the accept's window does not open with the key\n");
			return 2;
		}
		printf("# the status window: rkey 0x%x, %u bytes\n", w->rkey, w->len);
		rdma_disconnect(id);
		max_ms = 0;
	}
	if (act == READ || act == WRITE) {
		memset(msg, 0xa5, sizeof(msg));
		st = one_sided(id, cq, mr, msg, w, act == READ);
		printf("# %s completed with status %d (%s)\n", act == READ ? "READ" : "WRITE", st,
		       st >= 0 ? ibv_wc_status_str((enum ibv_wc_status)st) : "none");
		snprintf(what, sizeof(what), "a %s of the status window with its real rkey, "
			 "before any proof, fails", act == READ ? "READ" : "WRITE");
		check(st > 0, what);
	}
	if (act == BYE) {
		/* wire.h: the 20-byte header (CCMX, format 2, type 6 BYE,
		 * body 2, rounds 1 and 1), then u16 reason 0. */
		be_put32(msg, 0x43434d58u);
		msg[4] = 2;
		msg[5] = 6;
		be_put32(msg + 8, 2);
		be_put32(msg + 12, 1);
		be_put32(msg + 16, 1);
		sge = (struct ibv_sge){ .addr = (uintptr_t)msg, .length = sizeof(msg),
					.lkey = mr->lkey };
		wr.sg_list = &sge;
		wr.num_sge = 1;
		wr.opcode = IBV_WR_SEND;
		wr.send_flags = IBV_SEND_SIGNALED;
		if (ibv_post_send(id->qp, &wr, &bad))
			return 2;
	}
	t0 = now_ms();
	e = next_event(ch, max_ms ? max_ms : 2000);
	snprintf(what, sizeof(what), "%s: the keeper drops the connection within %d ms",
		 act == BYE ? "a BYE instead of the proof" : "no proof at all", max_ms);
	/* Dropped: the CM says so as DISCONNECTED, or (when the keeper's
	 * queue pair went to the error state under our BYE first) as an
	 * error of its own; either ends the connection. */
	if (act == NOTHING || act == BYE)
		check(e && (e->event == RDMA_CM_EVENT_DISCONNECTED ||
			    e->event == RDMA_CM_EVENT_UNREACHABLE ||
			    e->event == RDMA_CM_EVENT_CONNECT_ERROR ||
			    e->event == RDMA_CM_EVENT_TIMEWAIT_EXIT), what);
	if (e) {
		printf("# the CM said %s; dropped after %.0f ms\n", rdma_event_str(e->event),
		       now_ms() - t0);
		rdma_ack_cm_event(e);
		rdma_disconnect(id);
	}
out:
	rdma_destroy_qp(id);
	ibv_dereg_mr(mr);
	ibv_destroy_cq(cq);
	ibv_dealloc_pd(pd);
	rdma_destroy_id(id);
	rdma_destroy_event_channel(ch);
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in local, remote;
	struct tcpwire_conn_req req = { .proto_min = 1, .proto_max = 1, .keyed = 1 };
	char host[64], *colon;
	uint16_t port = DEFAULT_PORT;

	struct auth_key key;
	struct window w;
	struct errbuf e;

	if ((argc != 5 && argc != 6) || strlen(argv[4]) != 2 * TCPWIRE_KEY_ID_LEN) {
		fprintf(stderr, "usage: keyless_rdma LOCAL_ADDR PARTNER_ADDR[:PORT] NODE KEY_ID "
			"[KEY_FILE]\n");
		return 2;
	}
	if (argc == 6 && auth_load_key(argv[5], &key, &e) < 0) {
		fprintf(stderr, "keyless_rdma: %s\n", e.msg);
		return 2;
	}
	snprintf(host, sizeof(host), "%s", argv[2]);
	if ((colon = strchr(host, ':'))) {
		*colon = 0;
		port = (uint16_t)atoi(colon + 1);
	}
	if (addr_of(argv[1], 0, &local) < 0 || addr_of(host, port, &remote) < 0)
		return 2;
	req.node_id = (uint32_t)strtoul(argv[3], NULL, 10);
	for (int i = 0; i < TCPWIRE_KEY_ID_LEN; i++)
		sscanf(argv[4] + 2 * i, "%2hhx", &req.key_id[i]);
	if (getrandom(req.nonce, sizeof(req.nonce), 0) != sizeof(req.nonce))
		return 2;
	/* The keeper gives a connection 5 s for its proof; some slack. */
	if (attempt(&local, &remote, &req, NOTHING, NULL, NULL, 8000) == 2 ||
	    attempt(&local, &remote, &req, BYE, NULL, NULL, 3000) == 2 ||
	    attempt(&local, &remote, &req, UNGATED, NULL, NULL, 0) == 2) {
		fprintf(stderr, "keyless_rdma: setup failed\n");
		return 2;
	}
	/* Each with a nonce of its own, as the keeper would see anyone's. */
	if (argc == 6 &&
	    (attempt(&local, &remote, &req, LEARN, &key, &w, 0) == 2 ||
	     getrandom(req.nonce, sizeof(req.nonce), 0) != sizeof(req.nonce) ||
	     attempt(&local, &remote, &req, READ, NULL, &w, 0) == 2 ||
	     getrandom(req.nonce, sizeof(req.nonce), 0) != sizeof(req.nonce) ||
	     attempt(&local, &remote, &req, WRITE, NULL, &w, 0) == 2)) {
		fprintf(stderr, "keyless_rdma: setup failed\n");
		return 2;
	}
	return failures ? 1 : 0;
}
