/* fuzz_tcpwire: one tcp backend frame (16-byte header, then the body) from
 * arbitrary bytes, decoded as the backend does: header first, then the body
 * by type.  Decoders must never read out of bounds and fail only with
 * -EBADMSG and a message; a frame accepted whole must re-encode to exactly
 * the input (the codec is canonical). */
#include "proto/tcpwire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[TCPWIRE_HDR_LEN + TCPWIRE_MAX_BODY];

static void expect_refusal(int rc, const struct errbuf *e)
{
	if (rc != -EBADMSG || !e->msg[0])
		abort();
}

/* Decode the body by type; on success write its canonical encoding to o
 * (the fixed part re-encoded, any data copied) and return 0. */
static int body(unsigned type, const uint8_t *b, size_t len, uint8_t *o)
{
	struct errbuf e = { "" };
	struct tcpwire_conn_req rq;
	struct tcpwire_conn_rep rp;
	struct tcpwire_rw rw;
	int rc;

	switch (type) {
	case TCPWIRE_CONN_REQ:
		if ((rc = tcpwire_decode_conn_req(b, len, &rq, &e)))
			break;
		return tcpwire_encode_conn_req(&rq, o) != (int)len ? (abort(), 1) : 0;
	case TCPWIRE_CONN_REP:
		if ((rc = tcpwire_decode_conn_rep(b, len, &rp, &e)))
			break;
		return tcpwire_encode_conn_rep(&rp, o) != (int)len ? (abort(), 1) : 0;
	case TCPWIRE_READ_REQ:
	case TCPWIRE_WRITE_REQ:
		rc = type == TCPWIRE_READ_REQ ? tcpwire_decode_read_req(b, len, &rw, &e) :
		     tcpwire_decode_write_req(b, len, &rw, &e);
		if (rc)
			break;
		if (tcpwire_encode_rw(&rw, o))
			abort();
		memcpy(o + TCPWIRE_RW_LEN, b + TCPWIRE_RW_LEN, len - TCPWIRE_RW_LEN);
		return 0;
	default:    /* data only, or empty: the header bounded its length */
		memcpy(o, b, len);
		return 0;
	}
	expect_refusal(rc, &e);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tcpwire_hdr h;
	struct errbuf e = { "" };
	size_t len;
	int rc;

	if (size < TCPWIRE_HDR_LEN)
		return 0;
	len = size - TCPWIRE_HDR_LEN;
	if (len > TCPWIRE_MAX_BODY)
		len = TCPWIRE_MAX_BODY;
	rc = tcpwire_decode_hdr(data, &h, &e);
	if (rc) {
		expect_refusal(rc, &e);
		/* The body decoders alone, on whatever follows. */
		body(data[5], data + TCPWIRE_HDR_LEN, len, out + TCPWIRE_HDR_LEN);
		return 0;
	}
	if (h.body_len > TCPWIRE_MAX_BODY)
		abort();    /* the header check must bound every body */
	if (h.body_len != len || (h.status && h.body_len))
		return 0;
	if (h.type == TCPWIRE_READ_REP && tcpwire_check_read_rep(&h, h.body_len, NULL))
		abort();
	if (h.status == 0 && body(h.type, data + TCPWIRE_HDR_LEN, len, out + TCPWIRE_HDR_LEN))
		return 0;
	if (tcpwire_encode_hdr(&h, out))
		abort();
	if (memcmp(out, data, size))
		abort();
	return 0;
}
