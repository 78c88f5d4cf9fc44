/* exchange: what two connected managers say to each other after the
 * handshake, as a state machine without I/O.
 *
 *   both sides:  HELLO  ->  (AUTH, if a key is configured)  ->  CLIENTS
 *                -> [driver creates the matched clients' ports]  ->  PORTS
 * (without a key, CLIENTS goes out together with HELLO)
 *
 * HELLO carries the version range, node and cluster identity, epoch,
 * capabilities and a nonce.  The version used is the highest both speak.
 * With a pre-shared key each side proves it (auth.h) and CLIENTS is only
 * sent once the partner's proof checked out, so a partner with the wrong
 * key never learns our clients.  Any refusal goes to the partner as a
 * DECLINE with a typed reason before this side gives up.
 *
 * The driver feeds decoded messages in and sends what comes out in
 * ex->outbox, in order. */
#ifndef CCM_EXCHANGE_H
#define CCM_EXCHANGE_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/auth.h"
#include "proto/client_match.h"
#include "proto/wire.h"

enum ex_phase {
	EX_IDLE = 0,
	EX_HELLO_SENT,     /* waiting for the partner's HELLO */
	EX_AUTH_WAIT,      /* waiting for the partner's AUTH */
	EX_CLIENTS_WAIT,   /* waiting for the partner's CLIENTS */
	EX_PORTS_NEEDED,   /* driver: create ports for ex->match, then call ex_ports_created */
	EX_PORTS_WAIT,     /* waiting for the partner's PORTS */
	EX_DONE,           /* partner's PORTS in ex->peer_ports, for the driver to check */
	EX_FAILED,         /* see decline, declined_by_peer, why */
};

struct ex_self {
	uint32_t node;
	uint64_t epoch;
	uint16_t ver_min, ver_max;
	const char *cluster;
	const struct auth_key *key;   /* NULL: no key configured */
	const struct auth_key *also;  /* a second key the partner may prove
	                                 with (rotation), or NULL */
};

#define EX_OUTBOX_MAX 2

struct exchange {
	enum ex_phase phase;
	struct ex_self self;
	uint8_t nonce[CCM_NONCE_LEN];
	struct wire_hello peer;        /* the partner's HELLO */
	uint16_t version;              /* agreed; 0 until HELLO is answered */
	struct wire_clients local;     /* our descriptors, to send */
	bool clients_sent;
	struct client_match match[2 * CCM_CLIENTS_MAX];
	int nmatch;
	struct wire_ports peer_ports;  /* EX_DONE */
	enum wire_decline_reason decline;
	bool declined_by_peer;
	char why[256];
	int noutbox;
	struct wire_msg outbox[EX_OUTBOX_MAX];
};

/* Begin: queues our HELLO.  The nonce must be fresh random bytes. */
void ex_start(struct exchange *ex, const struct ex_self *self, const struct wire_clients *local,
	      const uint8_t nonce[CCM_NONCE_LEN]);

/* The partner's HELLO said it has not seen ours (it may have begun its
 * exchange after ours went out): queue our HELLO again, and CLIENTS with
 * it when they went with it.  The phase does not change; the driver drops
 * the copies a partner that did see the first ones receives again. */
void ex_hello_again(struct exchange *ex);

/* One message from the partner.  Clears and refills the outbox. */
void ex_on_msg(struct exchange *ex, const struct wire_msg *m);

/* The driver could not decode a message: decline it as malformed. */
void ex_on_malformed(struct exchange *ex, const char *why);

/* The driver created the ports ex->match asked for: queue our PORTS. */
void ex_ports_created(struct exchange *ex, const struct wire_ports *ours);

/* Fail with a reason of our own (queues a DECLINE to the partner). */
void ex_fail(struct exchange *ex, enum wire_decline_reason r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

const char *ex_phase_name(enum ex_phase p);

#endif
