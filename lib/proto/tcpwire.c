/* tcpwire: the tcp backend's frame codec (layout in tcpwire.h).
 *
 * All bodies but the data are fixed-size, so instead of a cursor each
 * decoder checks the exact length first and then reads fixed offsets with
 * the byte-wise big-endian helpers (no casts, no unaligned loads).  The
 * range rules live in one check function per structure, shared by encoder
 * and decoder so that decode-then-encode is the identity. */
#include "proto/tcpwire.h"
#include "base/be.h"

#include <errno.h>
#include <string.h>




static const char *const type_names[] = {
	[TCPWIRE_CONN_REQ] = "conn-req",
	[TCPWIRE_CONN_REP] = "conn-rep",
	[TCPWIRE_READ_REQ] = "read-req",
	[TCPWIRE_READ_REP] = "read-rep",
	[TCPWIRE_WRITE_REQ] = "write-req",
	[TCPWIRE_WRITE_REP] = "write-rep",
	[TCPWIRE_MSG] = "msg",
	[TCPWIRE_CONN_PROOF] = "conn-proof",
};

/* Body length bounds for each type when status is 0.  A reply with a
 * non-zero status carries nothing, so its bound is 0..0. */
static const struct {
	uint32_t min, max;
} body_bounds[] = {
	[TCPWIRE_CONN_REQ] = { TCPWIRE_CONN_REQ_LEN, TCPWIRE_CONN_REQ_KEYED_LEN },
	[TCPWIRE_CONN_REP] = { TCPWIRE_CONN_REP_LEN, TCPWIRE_CONN_REP_KEYED_LEN },
	[TCPWIRE_READ_REQ] = { TCPWIRE_RW_LEN, TCPWIRE_RW_LEN },
	[TCPWIRE_READ_REP] = { 1, CCM_OP_MAX },
	[TCPWIRE_WRITE_REQ] = { TCPWIRE_RW_LEN + 1, TCPWIRE_MAX_BODY },
	[TCPWIRE_WRITE_REP] = { 0, 0 },
	[TCPWIRE_MSG] = { 1, CCM_MSG_MAX },
	[TCPWIRE_CONN_PROOF] = { TCPWIRE_CONN_PROOF_LEN, TCPWIRE_CONN_PROOF_LEN },
};

const char *tcpwire_type_name(unsigned type)
{
	return type >= TCPWIRE_CONN_REQ && type <= TCPWIRE_CONN_PROOF ?
	       type_names[type] : "unknown";
}

static int is_reply(unsigned type)
{
	return type == TCPWIRE_CONN_REP || type == TCPWIRE_READ_REP ||
	       type == TCPWIRE_WRITE_REP;
}

/* The header rules after magic and format; e may be NULL (encoder). */
static int check_hdr(const struct tcpwire_hdr *h, struct errbuf *e)
{
	const char *name = tcpwire_type_name(h->type);
	uint32_t min, max;

	if (h->type < TCPWIRE_CONN_REQ || h->type > TCPWIRE_CONN_PROOF)
		return errbuf_set(e, -EBADMSG, "header: unknown type %u", h->type);
	if (h->status && !is_reply(h->type))
		return errbuf_set(e, -EBADMSG, "header: status %u in a %s (only replies carry one)",
				  h->status, name);
	if (h->status > TCPWIRE_STATUS_MAX)
		return errbuf_set(e, -EBADMSG, "header: status %u exceeds the limit of %u",
				  h->status, TCPWIRE_STATUS_MAX);
	if (h->status)
		return h->body_len ? errbuf_set(e, -EBADMSG,
				"header: %s with status %u has a %u-byte body (a failed reply has none)",
				name, h->status, h->body_len) : 0;
	min = body_bounds[h->type].min;
	max = body_bounds[h->type].max;
	if (h->body_len < min || h->body_len > max)
		return errbuf_set(e, -EBADMSG, "header: %s body length %u is outside %u..%u",
				  name, h->body_len, min, max);
	return 0;
}

int tcpwire_decode_hdr(const uint8_t in[TCPWIRE_HDR_LEN], struct tcpwire_hdr *h,
		       struct errbuf *e)
{
	uint32_t magic = be_get(in, 4);

	if (magic != TCPWIRE_MAGIC)
		return errbuf_set(e, -EBADMSG, "header: bad magic 0x%08x (want 0x%08x \"CCMT\")",
				  magic, TCPWIRE_MAGIC);
	if (in[4] != TCPWIRE_FORMAT)
		return errbuf_set(e, -EBADMSG, "header: format %u is not %d",
				  in[4], TCPWIRE_FORMAT);
	h->type = in[5];
	h->status = (uint16_t)be_get(in + 6, 2);
	h->body_len = be_get(in + 8, 4);
	h->req_id = be_get(in + 12, 4);
	return check_hdr(h, e);
}

int tcpwire_encode_hdr(const struct tcpwire_hdr *h, uint8_t out[TCPWIRE_HDR_LEN])
{
	if (check_hdr(h, NULL))
		return -EINVAL;
	be_put(out, TCPWIRE_MAGIC, 4);
	out[4] = TCPWIRE_FORMAT;
	out[5] = h->type;
	be_put(out + 6, h->status, 2);
	be_put(out + 8, h->body_len, 4);
	be_put(out + 12, h->req_id, 4);
	return 0;
}

static int check_len(const char *what, size_t len, size_t want, struct errbuf *e)
{
	if (len == want)
		return 0;
	return errbuf_set(e, -EBADMSG, "%s: body length %zu, want %zu", what, len, want);
}

/* A greeting body: plain or keyed, nothing in between. */
static int check_len2(const char *what, size_t len, size_t plain, size_t keyed,
		      struct errbuf *e)
{
	if (len == plain || len == keyed)
		return 0;
	return errbuf_set(e, -EBADMSG, "%s: body length %zu, want %zu or %zu (with a key)",
			  what, len, plain, keyed);
}

static int check_conn_req(const struct tcpwire_conn_req *r, struct errbuf *e)
{
	if (!r->proto_min)
		return errbuf_set(e, -EBADMSG, "conn-req: proto_min 0 is not a version");
	if (r->proto_min > r->proto_max)
		return errbuf_set(e, -EBADMSG, "conn-req: proto_min %u is above proto_max %u",
				  r->proto_min, r->proto_max);
	return 0;
}

int tcpwire_decode_conn_req(const uint8_t *body, size_t len,
			    struct tcpwire_conn_req *r, struct errbuf *e)
{
	int err;

	if ((err = check_len2("conn-req", len, TCPWIRE_CONN_REQ_LEN, TCPWIRE_CONN_REQ_KEYED_LEN, e)))
		return err;
	r->proto_min = (uint16_t)be_get(body, 2);
	r->proto_max = (uint16_t)be_get(body + 2, 2);
	r->node_id = be_get(body + 4, 4);
	r->keyed = len == TCPWIRE_CONN_REQ_KEYED_LEN;
	if (r->keyed) {
		memcpy(r->key_id, body + TCPWIRE_CONN_REQ_LEN, TCPWIRE_KEY_ID_LEN);
		memcpy(r->nonce, body + TCPWIRE_CONN_REQ_LEN + TCPWIRE_KEY_ID_LEN, CCM_NONCE_LEN);
	}
	return check_conn_req(r, e);
}

int tcpwire_encode_conn_req(const struct tcpwire_conn_req *r,
			    uint8_t out[TCPWIRE_CONN_REQ_KEYED_LEN])
{
	if (check_conn_req(r, NULL))
		return -EINVAL;
	be_put(out, r->proto_min, 2);
	be_put(out + 2, r->proto_max, 2);
	be_put(out + 4, r->node_id, 4);
	if (!r->keyed)
		return TCPWIRE_CONN_REQ_LEN;
	memcpy(out + TCPWIRE_CONN_REQ_LEN, r->key_id, TCPWIRE_KEY_ID_LEN);
	memcpy(out + TCPWIRE_CONN_REQ_LEN + TCPWIRE_KEY_ID_LEN, r->nonce, CCM_NONCE_LEN);
	return TCPWIRE_CONN_REQ_KEYED_LEN;
}

static int check_conn_rep(const struct tcpwire_conn_rep *r, struct errbuf *e)
{
	if (!r->proto)
		return errbuf_set(e, -EBADMSG, "conn-rep: proto 0 is not a version");
	if (!r->status_len)
		return errbuf_set(e, -EBADMSG, "conn-rep: status_len is 0");
	return 0;
}

int tcpwire_decode_conn_rep(const uint8_t *body, size_t len,
			    struct tcpwire_conn_rep *r, struct errbuf *e)
{
	int err;

	if ((err = check_len2("conn-rep", len, TCPWIRE_CONN_REP_LEN, TCPWIRE_CONN_REP_KEYED_LEN, e)))
		return err;
	r->proto = (uint16_t)be_get(body, 2);
	r->node_id = be_get(body + 2, 4);
	r->status_addr = be_get64(body + 6);
	r->status_rkey = be_get(body + 14, 4);
	r->status_len = be_get(body + 18, 4);
	r->keyed = len == TCPWIRE_CONN_REP_KEYED_LEN;
	if (r->keyed) {
		memcpy(r->nonce, body + TCPWIRE_CONN_REP_LEN, CCM_NONCE_LEN);
		memcpy(r->mac, body + TCPWIRE_CONN_REP_MACED_LEN, CCM_MAC_LEN);
	}
	return check_conn_rep(r, e);
}

int tcpwire_encode_conn_rep(const struct tcpwire_conn_rep *r,
			    uint8_t out[TCPWIRE_CONN_REP_KEYED_LEN])
{
	if (check_conn_rep(r, NULL))
		return -EINVAL;
	be_put(out, r->proto, 2);
	be_put(out + 2, r->node_id, 4);
	be_put(out + 6, r->status_addr, 8);
	be_put(out + 14, r->status_rkey, 4);
	be_put(out + 18, r->status_len, 4);
	if (!r->keyed)
		return TCPWIRE_CONN_REP_LEN;
	memcpy(out + TCPWIRE_CONN_REP_LEN, r->nonce, CCM_NONCE_LEN);
	memcpy(out + TCPWIRE_CONN_REP_MACED_LEN, r->mac, CCM_MAC_LEN);
	return TCPWIRE_CONN_REP_KEYED_LEN;
}

static int check_rw(const char *what, const struct tcpwire_rw *rw, struct errbuf *e)
{
	if (rw->len < 1 || rw->len > CCM_OP_MAX)
		return errbuf_set(e, -EBADMSG, "%s: len %u is outside 1..%u",
				  what, rw->len, CCM_OP_MAX);
	return 0;
}

/* The fixed part is read only once the body is known to hold it; the
 * data length is then judged against the len it states. */
static int decode_rw(const char *what, int with_data, const uint8_t *body,
		     size_t len, struct tcpwire_rw *rw, struct errbuf *e)
{
	int err;

	if (len < TCPWIRE_RW_LEN)
		return check_len(what, len, TCPWIRE_RW_LEN, e);
	rw->rkey = be_get(body, 4);
	rw->len = be_get(body + 4, 4);
	rw->addr = be_get64(body + 8);
	if ((err = check_rw(what, rw, e)))
		return err;
	return check_len(what, len, TCPWIRE_RW_LEN + (with_data ? (size_t)rw->len : 0), e);
}

int tcpwire_decode_read_req(const uint8_t *body, size_t len,
			    struct tcpwire_rw *rw, struct errbuf *e)
{
	return decode_rw("read-req", 0, body, len, rw, e);
}

int tcpwire_decode_write_req(const uint8_t *body, size_t len,
			     struct tcpwire_rw *rw, struct errbuf *e)
{
	return decode_rw("write-req", 1, body, len, rw, e);
}

int tcpwire_encode_rw(const struct tcpwire_rw *rw, uint8_t out[TCPWIRE_RW_LEN])
{
	if (check_rw("", rw, NULL))
		return -EINVAL;
	be_put(out, rw->rkey, 4);
	be_put(out + 4, rw->len, 4);
	be_put(out + 8, rw->addr, 8);
	return 0;
}

int tcpwire_check_read_rep(const struct tcpwire_hdr *h, uint32_t want_len,
			   struct errbuf *e)
{
	if (h->type != TCPWIRE_READ_REP)
		return errbuf_set(e, -EBADMSG, "read-rep: got a %s",
				  tcpwire_type_name(h->type));
	if (!h->status && h->body_len != want_len)
		return errbuf_set(e, -EBADMSG, "read-rep: body length %u, the read asked for %u",
				  h->body_len, want_len);
	return 0;
}
