#include "proto/exchange.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static struct wire_msg *outbox_add(struct exchange *ex, enum wire_type type)
{
	/* Each step queues at most EX_OUTBOX_MAX messages by construction. */
	struct wire_msg *m = &ex->outbox[ex->noutbox++];

	memset(m, 0, sizeof(*m));
	m->type = type;
	return m;
}

void ex_fail(struct exchange *ex, enum wire_decline_reason r, const char *fmt, ...)
{
	struct wire_msg *m;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ex->why, sizeof(ex->why), fmt, ap);
	va_end(ap);
	ex->phase = EX_FAILED;
	ex->decline = r;
	ex->declined_by_peer = false;
	m = outbox_add(ex, WIRE_DECLINE);
	m->u.decline.reason = (uint16_t)r;
	/* The detail goes to the partner: printable ASCII only, bounded. */
	for (size_t i = 0; ex->why[i] && i < CCM_DETAIL_MAX; i++) {
		char c = ex->why[i];

		m->u.decline.detail[i] = (c >= 0x20 && c < 0x7f) ? c : '?';
	}
}

/* Our HELLO, and without a key our CLIENTS with it: there is nothing to
 * prove first, so CLIENTS goes a round trip earlier.  A partner that does
 * require a key declines on our HELLO before it reads them. */
static void say_hello(struct exchange *ex)
{
	struct wire_hello *h = &outbox_add(ex, WIRE_HELLO)->u.hello;

	h->ver_min = ex->self.ver_min;
	h->ver_max = ex->self.ver_max;
	h->node_id = ex->self.node;
	h->epoch = ex->self.epoch;
	h->caps = WIRE_CAP_HEARTBEAT | WIRE_CAP_MSG_EXPIRE;
	h->auth = ex->self.key ? 1 : 0;
	snprintf(h->cluster, sizeof(h->cluster), "%s", ex->self.cluster);
	memcpy(h->nonce, ex->nonce, CCM_NONCE_LEN);
	if (!ex->self.key) {
		outbox_add(ex, WIRE_CLIENTS)->u.clients = ex->local;
		ex->clients_sent = true;
	}
}

void ex_start(struct exchange *ex, const struct ex_self *self, const struct wire_clients *local,
	      const uint8_t nonce[CCM_NONCE_LEN])
{
	memset(ex, 0, sizeof(*ex));
	ex->self = *self;
	memcpy(ex->nonce, nonce, CCM_NONCE_LEN);
	ex->local = *local;
	ex->phase = EX_HELLO_SENT;
	say_hello(ex);
}

void ex_hello_again(struct exchange *ex)
{
	ex->noutbox = 0;
	if (ex->phase != EX_FAILED && ex->phase != EX_IDLE)
		say_hello(ex);
}

static void send_clients(struct exchange *ex)
{
	if (!ex->clients_sent)
		outbox_add(ex, WIRE_CLIENTS)->u.clients = ex->local;
	ex->clients_sent = true;
	ex->phase = EX_CLIENTS_WAIT;
}

static void on_hello(struct exchange *ex, const struct wire_hello *h)
{
	uint16_t lo, hi;

	ex->peer = *h;
	if (strcmp(h->cluster, ex->self.cluster) != 0) {
		ex_fail(ex, DECLINE_CLUSTER_MISMATCH, "partner is in cluster '%s', we are in '%s'",
			h->cluster, ex->self.cluster);
		return;
	}
	if (h->node_id == ex->self.node) {
		ex_fail(ex, DECLINE_NODE_ID_CONFLICT, "partner claims our node id %u", h->node_id);
		return;
	}
	lo = h->ver_min > ex->self.ver_min ? h->ver_min : ex->self.ver_min;
	hi = h->ver_max < ex->self.ver_max ? h->ver_max : ex->self.ver_max;
	if (lo > hi) {
		ex_fail(ex, DECLINE_NO_COMMON_VERSION,
			"partner speaks versions %u-%u, we speak %u-%u",
			h->ver_min, h->ver_max, ex->self.ver_min, ex->self.ver_max);
		return;
	}
	ex->version = hi;
	if (ex->self.key && !h->auth) {
		ex_fail(ex, DECLINE_AUTH_REQUIRED, "a pre-shared key is configured here, "
			"the partner has none");
		return;
	}
	if (!ex->self.key && h->auth) {
		ex_fail(ex, DECLINE_AUTH_REQUIRED, "the partner requires a pre-shared key, "
			"none is configured here");
		return;
	}
	if (ex->self.key) {
		struct auth_party me = { ex->self.node, ex->self.epoch, ex->nonce };
		struct auth_party peer = { h->node_id, h->epoch, h->nonce };
		struct wire_auth *a = &outbox_add(ex, WIRE_AUTH)->u.auth;

		a->version = ex->version;
		auth_mac(ex->self.key, &me, &peer, ex->version, a->mac);
		ex->phase = EX_AUTH_WAIT;
		return;
	}
	send_clients(ex);
}

static void on_auth(struct exchange *ex, const struct wire_auth *a)
{
	struct auth_party me = { ex->self.node, ex->self.epoch, ex->nonce };
	struct auth_party peer = { ex->peer.node_id, ex->peer.epoch, ex->peer.nonce };

	if (a->version != ex->version) {
		ex_fail(ex, DECLINE_PROTOCOL, "partner chose version %u, we chose %u",
			a->version, ex->version);
		return;
	}
	if (auth_verify(ex->self.key, &peer, &me, ex->version, a->mac) < 0 &&
	    (!ex->self.also || auth_verify(ex->self.also, &peer, &me, ex->version, a->mac) < 0)) {
		ex_fail(ex, DECLINE_AUTH_FAILED, "the partner's proof does not match our "
			"pre-shared key");
		return;
	}
	send_clients(ex);
}

void ex_on_msg(struct exchange *ex, const struct wire_msg *m)
{
	ex->noutbox = 0;
	if (ex->phase == EX_FAILED || ex->phase == EX_DONE)
		return;
	if (m->type == WIRE_DECLINE) {
		ex->phase = EX_FAILED;
		ex->decline = m->u.decline.reason;
		ex->declined_by_peer = true;
		snprintf(ex->why, sizeof(ex->why), "partner declined (%s): %s",
			 wire_decline_name(ex->decline), m->u.decline.detail);
		return;
	}
	switch (ex->phase) {
	case EX_HELLO_SENT:
		if (m->type == WIRE_HELLO) {
			on_hello(ex, &m->u.hello);
			return;
		}
		break;
	case EX_AUTH_WAIT:
		if (m->type == WIRE_AUTH) {
			on_auth(ex, &m->u.auth);
			return;
		}
		break;
	case EX_CLIENTS_WAIT:
		if (m->type == WIRE_CLIENTS) {
			ex->nmatch = clients_match(&ex->local, &m->u.clients, ex->match,
						   (int)(sizeof(ex->match) / sizeof(ex->match[0])));
			ex->phase = EX_PORTS_NEEDED;
			return;
		}
		break;
	case EX_PORTS_WAIT:
		if (m->type == WIRE_PORTS) {
			ex->peer_ports = m->u.ports;
			ex->phase = EX_DONE;
			return;
		}
		break;
	default:
		break;
	}
	ex_fail(ex, DECLINE_PROTOCOL, "unexpected %s while %s", wire_type_name(m->type),
		ex_phase_name(ex->phase));
}

void ex_on_malformed(struct exchange *ex, const char *why)
{
	ex->noutbox = 0;
	ex_fail(ex, DECLINE_MALFORMED, "malformed message: %s", why);
}

void ex_ports_created(struct exchange *ex, const struct wire_ports *ours)
{
	ex->noutbox = 0;
	outbox_add(ex, WIRE_PORTS)->u.ports = *ours;
	ex->phase = EX_PORTS_WAIT;
}

const char *ex_phase_name(enum ex_phase p)
{
	static const char *const names[] = {
		"idle", "waiting for HELLO", "waiting for AUTH", "waiting for CLIENTS",
		"creating ports", "waiting for PORTS", "done", "failed",
	};

	return (unsigned)p < sizeof(names) / sizeof(names[0]) ? names[p] : "?";
}
