/* tcpwire: the frames of the tcp backend, which emulates an RDMA NIC over
 * one TCP stream per direction.  Pure: no I/O, no allocation.
 *
 * Every frame is a 16-byte header then body_len bytes of body, big-endian:
 *   0  u32 magic "CCMT"
 *   4  u8  format (TCPWIRE_FORMAT)
 *   5  u8  type (enum tcpwire_type)
 *   6  u16 status: 0 in requests and MSG; in replies 0 or a positive
 *          errno value (1..TCPWIRE_STATUS_MAX) the requester reports
 *   8  u32 body length
 *   12 u32 req_id: chosen by the requester, echoed in the reply
 *
 * Types and bodies:
 *   CONN_REQ  (1) u16 proto_min, u16 proto_max, u32 node_id      8 bytes
 *                 with a key: then key_id[8], nonce[32]          48 bytes
 *   CONN_REP  (2) u16 proto, u32 node_id, u64 status_addr,
 *                 u32 status_rkey, u32 status_len                22 bytes
 *                 with a key: then nonce[32], mac[32]            86 bytes
 *   READ_REQ  (3) rw: u32 rkey, u32 len, u64 addr                16 bytes
 *   READ_REP  (4) the data read: exactly the requested len
 *   WRITE_REQ (5) rw, then exactly rw.len bytes of data
 *   WRITE_REP (6) empty
 *   MSG       (7) 1..CCM_MSG_MAX bytes of message
 *   CONN_PROOF (8) mac[32]: the active side's proof of the key
 *
 * With a key (auth.h): CONN_REQ names the key (key_id) and brings the
 * active side's nonce; CONN_REP brings the passive side's nonce and its
 * proof over the transcript (the CONN_REQ body, then the CONN_REP body up
 * to the mac); CONN_PROOF is the active side's proof over the same.
 * Every frame after CONN_REP (passive to active) and after CONN_PROOF
 * (active to passive) is sealed (seal.h): its body encrypted and followed
 * by SEAL_TAG_LEN bytes of tag, which body_len does not count.  The
 * passive side serves nothing before a valid CONN_PROOF.  A side whose key
 * does not match answers CONN_REQ with status EACCES.
 * A reply whose status is not 0 has an empty body.  rw.len is
 * 1..CCM_OP_MAX; protocol versions start at 1 and proto_min <= proto_max;
 * status_len is not 0.
 *
 * Receiving: read TCPWIRE_HDR_LEN bytes, tcpwire_decode_hdr() (which bounds
 * body_len for the type, so a buffer of TCPWIRE_MAX_BODY always holds the
 * body), read body_len bytes, then decode the body by type with the
 * tcpwire_decode_* function, which checks its exact length.  A READ_REP
 * is checked against the request it answers with tcpwire_check_read_rep().
 *
 * Sending: the encoders validate by the same rules and return -EINVAL for
 * what the decoders would refuse, so we never send a frame the partner
 * must drop.  Decoders return 0 or -EBADMSG with e naming the field. */
#ifndef CCM_TCPWIRE_H
#define CCM_TCPWIRE_H

#include <stddef.h>
#include <stdint.h>

#include "base/errbuf.h"
#include "base/limits.h"

#define TCPWIRE_MAGIC        0x43434d54u /* "CCMT" */
#define TCPWIRE_FORMAT       1
#define TCPWIRE_HDR_LEN      16
#define TCPWIRE_CONN_REQ_LEN 8
#define TCPWIRE_CONN_REP_LEN 22
#define TCPWIRE_KEY_ID_LEN   8
#define TCPWIRE_CONN_REQ_KEYED_LEN (TCPWIRE_CONN_REQ_LEN + TCPWIRE_KEY_ID_LEN + CCM_NONCE_LEN)
#define TCPWIRE_CONN_REP_KEYED_LEN (TCPWIRE_CONN_REP_LEN + CCM_NONCE_LEN + CCM_MAC_LEN)
#define TCPWIRE_CONN_PROOF_LEN CCM_MAC_LEN
#define TCPWIRE_RW_LEN       16
#define TCPWIRE_MAX_BODY     (TCPWIRE_RW_LEN + CCM_OP_MAX)
#define TCPWIRE_STATUS_MAX   4095        /* errno values, as Linux's MAX_ERRNO */

enum tcpwire_type {
	TCPWIRE_CONN_REQ = 1,
	TCPWIRE_CONN_REP = 2,
	TCPWIRE_READ_REQ = 3,
	TCPWIRE_READ_REP = 4,
	TCPWIRE_WRITE_REQ = 5,
	TCPWIRE_WRITE_REP = 6,
	TCPWIRE_MSG = 7,
	TCPWIRE_CONN_PROOF = 8,
};

struct tcpwire_hdr {
	uint8_t type;         /* enum tcpwire_type */
	uint16_t status;
	uint32_t body_len;
	uint32_t req_id;
};

/* CM private data, as librdmacm would carry it. */
struct tcpwire_conn_req {
	uint16_t proto_min, proto_max;
	uint32_t node_id;
	uint8_t keyed;        /* 1: key_id and nonce follow */
	uint8_t key_id[TCPWIRE_KEY_ID_LEN];
	uint8_t nonce[CCM_NONCE_LEN];
};

struct tcpwire_conn_rep {
	uint16_t proto;       /* the chosen version */
	uint32_t node_id;
	uint64_t status_addr; /* the replier's status window */
	uint32_t status_rkey;
	uint32_t status_len;
	uint8_t keyed;        /* 1: nonce and mac follow */
	uint8_t nonce[CCM_NONCE_LEN];
	uint8_t mac[CCM_MAC_LEN];
};

/* The fixed part of READ_REQ and WRITE_REQ: which remote bytes. */
struct tcpwire_rw {
	uint32_t rkey;
	uint32_t len;
	uint64_t addr;
};

/* Header: checks magic, format, type, status (0 unless a reply; at most
 * TCPWIRE_STATUS_MAX) and body_len for the type and status. */
int tcpwire_decode_hdr(const uint8_t in[TCPWIRE_HDR_LEN], struct tcpwire_hdr *h,
		       struct errbuf *e);
int tcpwire_encode_hdr(const struct tcpwire_hdr *h, uint8_t out[TCPWIRE_HDR_LEN]);

/* Bodies: len is the body's length, which must be exact for the type. */
/* The greeting's bodies are one of two lengths, by keyed; the encoders
 * return the length written (out holds the keyed length). */
int tcpwire_decode_conn_req(const uint8_t *body, size_t len,
			    struct tcpwire_conn_req *r, struct errbuf *e);
int tcpwire_encode_conn_req(const struct tcpwire_conn_req *r,
			    uint8_t out[TCPWIRE_CONN_REQ_KEYED_LEN]);
int tcpwire_decode_conn_rep(const uint8_t *body, size_t len,
			    struct tcpwire_conn_rep *r, struct errbuf *e);
int tcpwire_encode_conn_rep(const struct tcpwire_conn_rep *r,
			    uint8_t out[TCPWIRE_CONN_REP_KEYED_LEN]);
/* The part of a keyed CONN_REP body its mac covers. */
#define TCPWIRE_CONN_REP_MACED_LEN (TCPWIRE_CONN_REP_KEYED_LEN - CCM_MAC_LEN)

/* READ_REQ: len == TCPWIRE_RW_LEN.  WRITE_REQ: len == TCPWIRE_RW_LEN +
 * rw->len, the data following at body + TCPWIRE_RW_LEN. */
int tcpwire_decode_read_req(const uint8_t *body, size_t len,
			    struct tcpwire_rw *rw, struct errbuf *e);
int tcpwire_decode_write_req(const uint8_t *body, size_t len,
			     struct tcpwire_rw *rw, struct errbuf *e);
/* The fixed part of either; the caller sends WRITE_REQ's data after it. */
int tcpwire_encode_rw(const struct tcpwire_rw *rw, uint8_t out[TCPWIRE_RW_LEN]);

/* A decoded READ_REP header against the len its READ_REQ asked for. */
int tcpwire_check_read_rep(const struct tcpwire_hdr *h, uint32_t want_len,
			   struct errbuf *e);

/* "conn-req", "read-rep", ...; "unknown" otherwise. */
const char *tcpwire_type_name(unsigned type);

#endif
