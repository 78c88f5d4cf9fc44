/* wire: the codec for the messages two managers exchange after the
 * handshake (peer information, authentication, client descriptors, ports,
 * decline).  Pure: no I/O, no allocation.
 *
 * Every message starts with the same 20-byte header, big-endian:
 *   0 u32 magic "CCMX"
 *   4 u8  format (WIRE_FORMAT: the layout of this header and the bodies)
 *   5 u8  type (enum wire_type)
 *   6 u16 reserved, zero
 *   8 u32 body length (bytes after the header)
 *  12 u32 round: the sender's exchange round, fresh for each exchange it
 *         starts (0 outside one)
 *  16 u32 peer round: the receiver's round, as the sender learned it from
 *         the receiver's HELLO (0: not yet)
 * The rounds tie every message to one exchange of the two sides: a message
 * of an earlier round, still on its way when either side began a new one,
 * is told apart and dropped rather than taken for the new one's.
 * The decoder checks, in order: the buffer holds a header; magic; format;
 * type; reserved; that the stated body length equals what is left in the
 * buffer; then every field of the body, every count against its limit
 * (limits.h) *before* it is used, and that the body has no trailing bytes.
 * A string on the wire is a u8 length followed by that many bytes, with no
 * NUL; names must match their character rules.
 *
 * Bodies:
 *   HELLO   u16 ver_min, u16 ver_max, u32 node_id, u64 epoch, u64 caps,
 *           u8 auth (1 = I hold a pre-shared key), str cluster,
 *           nonce[32]
 *   AUTH    u16 version (the chosen one), mac[32]
 *   CLIENTS u16 count, count x { str name, u16 nports, u32 port_size }
 *   PORTS   u8 link, u16 count, count x { str client, u16 index, u64 addr,
 *           u32 rkey, u32 len }: the sender's windows as the partner
 *           reaches them over interconnect `link` (< CCM_LINKS_MAX)
 *   LINK_JOIN  the same body as PORTS, for another link: sent once
 *           connected, for every link but the one PORTS named
 *   DECLINE u16 reason (enum wire_decline_reason), str detail
 *   BYE     u16 reason (0 = orderly termination)
 *   PORT_MSG    str client, u16 port, u64 seq, u16 len, len bytes
 *               (1..CCM_PORT_MSG_MAX): a message between two clients
 *   PORT_NOTIFY str client, u16 port, u64 seq, u32 off, u32 len: a one-sided
 *               write into the receiver's window that its client is to be
 *               told of
 *   PORT_MSG and PORT_NOTIFY share one sequence per port and direction,
 *   from 1: the receiver delivers each seq once, in order (a link that
 *   fails makes the sender send again what was not yet acknowledged).
 * Rules beyond the struct comments below: versions (HELLO ver_min, AUTH
 * version) start at 1; client names are unique within CLIENTS and
 * (client, index) pairs unique within PORTS; DECLINE's reason is
 * 1..DECLINE_REASON_MAX and BYE's 0..DECLINE_REASON_MAX; detail is
 * printable ASCII (0x20..0x7e), possibly empty.  Unknown caps bits are
 * carried, not cleared, so decode-then-encode gives the same bytes.
 */
#ifndef CCM_WIRE_H
#define CCM_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "base/errbuf.h"
#include "base/limits.h"

#define WIRE_MAGIC      0x43434d58u /* "CCMX" */
#define WIRE_FORMAT     2
#define WIRE_HEADER_LEN 20

enum wire_type {
	WIRE_HELLO = 1,
	WIRE_AUTH = 2,
	WIRE_CLIENTS = 3,
	WIRE_PORTS = 4,
	WIRE_DECLINE = 5,
	WIRE_BYE = 6,
	WIRE_PORT_MSG = 7,
	WIRE_PORT_NOTIFY = 8,
	WIRE_LINK_JOIN = 9,
};

/* Why a side refuses to go on; sent in DECLINE, mapped to exit codes. */
enum wire_decline_reason {
	DECLINE_NONE = 0,
	DECLINE_NO_COMMON_VERSION = 1,
	DECLINE_AUTH_REQUIRED = 2,   /* I hold a key, you do not */
	DECLINE_AUTH_FAILED = 3,     /* your proof does not match my key */
	DECLINE_CLUSTER_MISMATCH = 4,
	DECLINE_NODE_ID_CONFLICT = 5,/* we both claim the same node id */
	DECLINE_MALFORMED = 6,       /* I could not decode your message */
	DECLINE_PROTOCOL = 7,        /* a message out of order */
};
#define DECLINE_REASON_MAX 7

/* Capability bits in HELLO.caps; unknown bits are ignored. */
#define WIRE_CAP_HEARTBEAT (1ull << 0)
/* Gives up client messages after msg-hold-ms and tells which in its ack
 * words; echoes what it was told (reliable.h). */
#define WIRE_CAP_MSG_EXPIRE (1ull << 1)

struct wire_hello {
	uint16_t ver_min, ver_max;
	uint32_t node_id;
	uint64_t epoch;
	uint64_t caps;
	uint8_t auth;
	char cluster[CCM_CLUSTER_MAX + 1];
	uint8_t nonce[CCM_NONCE_LEN];
};

struct wire_auth {
	uint16_t version;
	uint8_t mac[CCM_MAC_LEN];
};

struct wire_client {
	char name[CCM_NAME_MAX + 1];
	uint16_t nports;      /* 1..CCM_PORTS_MAX */
	uint32_t port_size;   /* CCM_PORT_SIZE_MIN..MAX, a multiple of 4096 */
};

struct wire_clients {
	uint16_t count;       /* 0..CCM_CLIENTS_MAX */
	struct wire_client c[CCM_CLIENTS_MAX];
};

struct wire_port {
	char client[CCM_NAME_MAX + 1];
	uint16_t index;       /* < CCM_PORTS_MAX */
	uint64_t addr;
	uint32_t rkey;
	uint32_t len;         /* CCM_PORT_SIZE_MIN..MAX */
};

struct wire_ports {
	uint8_t link;         /* < CCM_LINKS_MAX */
	uint16_t count;       /* 0..CCM_PORTS_TOTAL */
	struct wire_port p[CCM_PORTS_TOTAL];
};

struct wire_decline {
	uint16_t reason;      /* 1..DECLINE_REASON_MAX */
	char detail[CCM_DETAIL_MAX + 1];
};

struct wire_bye {
	uint16_t reason;
};

struct wire_port_msg {
	char client[CCM_NAME_MAX + 1];
	uint16_t port;        /* < CCM_PORTS_MAX */
	uint64_t seq;         /* per port and direction, from 1 */
	uint16_t len;         /* 1..CCM_PORT_MSG_MAX */
	uint8_t data[CCM_PORT_MSG_MAX];
};

struct wire_port_notify {
	char client[CCM_NAME_MAX + 1];
	uint16_t port;
	uint64_t seq;         /* the port's message sequence */
	uint32_t off, len;
};

struct wire_msg {
	enum wire_type type;
	uint32_t round, peer_round;   /* the header's (see above) */
	union {
		struct wire_hello hello;
		struct wire_auth auth;
		struct wire_clients clients;
		struct wire_ports ports;
		struct wire_decline decline;
		struct wire_bye bye;
		struct wire_port_msg port_msg;
		struct wire_port_notify notify;
	} u;
};

/* Encode m into buf.  Returns the total length, or -EMSGSIZE if it does not
 * fit in cap, or -EINVAL if m itself breaks a limit or a naming rule (so we
 * never send what we would refuse to receive). */
int wire_encode(const struct wire_msg *m, uint8_t *buf, size_t cap);

/* Decode exactly one message occupying all len bytes of buf.  Returns 0, or
 * -EBADMSG with e saying precisely which field was wrong and why. */
int wire_decode(const uint8_t *buf, size_t len, struct wire_msg *m, struct errbuf *e);

/* The cluster name's character rule, shared with the config parser.  (A
 * client name's is base/name.h's.) */
int wire_valid_cluster_name(const char *s);  /* 1 if valid */

const char *wire_type_name(enum wire_type t);
const char *wire_decline_name(enum wire_decline_reason r);

#endif
