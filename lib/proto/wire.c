/* wire: the post-handshake message codec (see wire.h for the byte layout).
 *
 * Every multi-byte field is read and written a byte at a time through the
 * be* helpers: no buffer is ever cast to a struct or an integer pointer, so
 * there are no alignment, padding or host-endianness assumptions.
 *
 * Decoding goes through a cursor (struct rd) that knows how many bytes are
 * left; every get fails cleanly when the buffer is short, so no field is
 * read past the end whatever the lengths on the wire claim.  Encoding goes
 * through a writer (struct wr) that stops at its capacity and remembers the
 * overflow, so the encoder can validate and write in one walk.
 *
 * The field rules live in small check functions shared by both directions:
 * wire_encode refuses (-EINVAL) exactly what wire_decode refuses (-EBADMSG),
 * which also makes decode-then-encode reproduce the input byte for byte. */
#include "proto/wire.h"
#include "base/be.h"
#include "base/name.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* --- big-endian byte access ---------------------------------------------- */





/* --- the decoding cursor ------------------------------------------------- */

struct rd {
	const uint8_t *p;
	size_t left;
	struct errbuf *e;     /* NULL when only validating for the encoder */
	char where[16];       /* "HELLO", "PORTS[3]": prefixes every message */
};

/* Every decode error goes through here: "where: what", -EBADMSG. */
__attribute__((format(printf, 2, 3)))
static int fail(struct rd *r, const char *fmt, ...)
{
	char what[200];
	va_list ap;

	if (!r->e)
		return -EBADMSG;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return errbuf_set(r->e, -EBADMSG, "%s: %s", r->where, what);
}

static void rd_where(struct rd *r, const char *type, int idx)
{
	if (idx < 0)
		snprintf(r->where, sizeof(r->where), "%s", type);
	else
		snprintf(r->where, sizeof(r->where), "%s[%d]", type, idx);
}

/* Take n bytes, or fail naming the field that did not fit. */
static const uint8_t *take(struct rd *r, size_t n, const char *field, int *err)
{
	const uint8_t *p = r->p;

	if (r->left < n) {
		*err = fail(r, "truncated at %s (need %zu bytes, %zu left)",
			    field, n, r->left);
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return p;
}

static int get16(struct rd *r, uint16_t *v, const char *field)
{
	int err = 0;
	const uint8_t *p = take(r, 2, field, &err);

	if (p)
		*v = be_get16(p);
	return err;
}

static int get32(struct rd *r, uint32_t *v, const char *field)
{
	int err = 0;
	const uint8_t *p = take(r, 4, field, &err);

	if (p)
		*v = be_get32(p);
	return err;
}

static int get64(struct rd *r, uint64_t *v, const char *field)
{
	int err = 0;
	const uint8_t *p = take(r, 8, field, &err);

	if (p)
		*v = be_get64(p);
	return err;
}

static int getn(struct rd *r, void *dst, size_t n, const char *field)
{
	int err = 0;
	const uint8_t *p = take(r, n, field, &err);

	if (p)
		memcpy(dst, p, n);
	return err;
}

/* --- field rules, shared by decoder and encoder -------------------------- */

enum str_rule { STR_CLIENT, STR_CLUSTER, STR_DETAIL };

static const struct {
	uint8_t min, max;
	const char *allowed;  /* for messages */
} str_rules[] = {
	[STR_CLIENT] = { 1, CCM_NAME_MAX, "[a-z][a-z0-9_]" },  /* base/name.h's rule */
	[STR_CLUSTER] = { 1, CCM_CLUSTER_MAX, "[A-Za-z0-9._-]" },
	[STR_DETAIL] = { 0, CCM_DETAIL_MAX, "printable ASCII" },
};

static int byte_ok(enum str_rule rule, size_t i, unsigned char c)
{
	int lower = c >= 'a' && c <= 'z', digit = c >= '0' && c <= '9';

	switch (rule) {
	case STR_CLIENT:
		return client_name_char_ok(i, c);
	case STR_CLUSTER:
		return lower || digit || (c >= 'A' && c <= 'Z') ||
		       c == '.' || c == '_' || c == '-';
	default:
		return c >= 0x20 && c < 0x7f;
	}
}

/* s need not be NUL-terminated: n is its length as it came off the wire (or
 * strnlen of the struct field), so an embedded NUL is a bad byte here. */
static int check_str(struct rd *r, const char *field, const char *s, size_t n,
		     enum str_rule rule)
{
	size_t i;

	if (n < str_rules[rule].min)
		return fail(r, "%s is empty", field);
	if (n > str_rules[rule].max)
		return fail(r, "%s length %zu exceeds the limit of %u",
			    field, n, str_rules[rule].max);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (byte_ok(rule, i, c))
			continue;
		if (c < 0x20 || c >= 0x7f)
			return fail(r, "%s has a non-printable byte 0x%02x at offset %zu",
				    field, c, i);
		return fail(r, "%s has '%c' at offset %zu, outside %s",
			    field, c, i, str_rules[rule].allowed);
	}
	return 0;
}

/* A string field: u8 length (checked against the limit before the bytes
 * are touched), the bytes, then the character rule.  out has room for
 * max + 1 bytes and is left NUL-terminated. */
static int get_str(struct rd *r, const char *field, char *out, enum str_rule rule)
{
	uint8_t n;
	int err;

	if ((err = getn(r, &n, 1, field)))
		return err;
	if (n > str_rules[rule].max)
		return fail(r, "%s length %u exceeds the limit of %u",
			    field, n, str_rules[rule].max);
	if ((err = getn(r, out, n, field)))
		return err;
	out[n] = '\0';
	return check_str(r, field, out, n, rule);
}

static int check_version(struct rd *r, const char *field, unsigned v)
{
	return v ? 0 : fail(r, "%s 0 is not a version (versions start at 1)", field);
}

/* Port windows are whole pages within [MIN, MAX]. */
static int check_size(struct rd *r, const char *field, uint32_t v)
{
	if (v % 4096)
		return fail(r, "%s %u is not a multiple of 4096", field, v);
	if (v < CCM_PORT_SIZE_MIN || v > CCM_PORT_SIZE_MAX)
		return fail(r, "%s %u is outside %u..%u", field, v,
			    CCM_PORT_SIZE_MIN, CCM_PORT_SIZE_MAX);
	return 0;
}

static int check_count(struct rd *r, unsigned n, unsigned max)
{
	return n <= max ? 0 :
	       fail(r, "count %u exceeds the limit of %u", n, max);
}

static int check_hello(struct rd *r, const struct wire_hello *h)
{
	int err;

	if ((err = check_version(r, "ver_min", h->ver_min)))
		return err;
	if (h->ver_min > h->ver_max)
		return fail(r, "ver_min %u is above ver_max %u",
			    h->ver_min, h->ver_max);
	if (h->auth > 1)
		return fail(r, "auth %u is neither 0 nor 1", h->auth);
	return 0;
}

/* Client i against the ones before it; names are unique per node. */
static int check_client(struct rd *r, const struct wire_clients *cs, unsigned i)
{
	const struct wire_client *c = &cs->c[i];
	unsigned j;
	int err;

	for (j = 0; j < i; j++)
		if (!strcmp(cs->c[j].name, c->name))
			return fail(r, "name \"%s\" repeats CLIENTS[%u]",
				    c->name, j);
	if (c->nports < 1 || c->nports > CCM_PORTS_MAX)
		return fail(r, "nports %u is outside 1..%u",
			    c->nports, CCM_PORTS_MAX);
	if ((err = check_size(r, "port_size", c->port_size)))
		return err;
	return 0;
}

/* Port i against the ones before it: one (client, index) describes one
 * window, so a repeat would be ambiguous. */
static int check_port(struct rd *r, const struct wire_ports *ps, unsigned i)
{
	const struct wire_port *p = &ps->p[i];
	unsigned j;
	int err;

	if (p->index >= CCM_PORTS_MAX)
		return fail(r, "index %u is not below %u", p->index, CCM_PORTS_MAX);
	if ((err = check_size(r, "len", p->len)))
		return err;
	for (j = 0; j < i; j++)
		if (ps->p[j].index == p->index && !strcmp(ps->p[j].client, p->client))
			return fail(r, "client \"%s\" index %u repeats PORTS[%u]",
				    p->client, p->index, j);
	return 0;
}

/* DECLINE must give a reason; BYE may say 0 (orderly) or reuse one. */
static int check_reason(struct rd *r, unsigned v, int zero_ok)
{
	if (v > DECLINE_REASON_MAX)
		return fail(r, "unknown reason %u", v);
	if (!v && !zero_ok)
		return fail(r, "reason 0 (none) is no reason to decline");
	return 0;
}

/* --- decoding ------------------------------------------------------------ */

static int dec_hello(struct rd *r, struct wire_hello *h)
{
	int err;

	if ((err = get16(r, &h->ver_min, "ver_min")) ||
	    (err = get16(r, &h->ver_max, "ver_max")) ||
	    (err = get32(r, &h->node_id, "node_id")) ||
	    (err = get64(r, &h->epoch, "epoch")) ||
	    (err = get64(r, &h->caps, "caps")) ||
	    (err = getn(r, &h->auth, 1, "auth")))
		return err;
	/* The fixed fields are judged before the variable part is read. */
	if ((err = check_hello(r, h)) ||
	    (err = get_str(r, "cluster name", h->cluster, STR_CLUSTER)) ||
	    (err = getn(r, h->nonce, CCM_NONCE_LEN, "nonce")))
		return err;
	return 0;
}

static int dec_auth(struct rd *r, struct wire_auth *a)
{
	int err;

	if ((err = get16(r, &a->version, "version")) ||
	    (err = check_version(r, "version", a->version)) ||
	    (err = getn(r, a->mac, CCM_MAC_LEN, "mac")))
		return err;
	return 0;
}

static int dec_clients(struct rd *r, struct wire_clients *cs)
{
	unsigned i;
	int err;

	if ((err = get16(r, &cs->count, "count")) ||
	    (err = check_count(r, cs->count, CCM_CLIENTS_MAX)))
		return err;
	for (i = 0; i < cs->count; i++) {
		struct wire_client *c = &cs->c[i];

		rd_where(r, "CLIENTS", (int)i);
		if ((err = get_str(r, "name", c->name, STR_CLIENT)) ||
		    (err = get16(r, &c->nports, "nports")) ||
		    (err = get32(r, &c->port_size, "port_size")) ||
		    (err = check_client(r, cs, i)))
			return err;
	}
	rd_where(r, "CLIENTS", -1);
	return 0;
}

static int dec_ports(struct rd *r, struct wire_ports *ps)
{
	unsigned i;
	int err;

	if ((err = getn(r, &ps->link, 1, "link")))
		return err;
	if (ps->link >= CCM_LINKS_MAX)
		return fail(r, "link %u is not below %u", ps->link, CCM_LINKS_MAX);
	if ((err = get16(r, &ps->count, "count")) ||
	    (err = check_count(r, ps->count, CCM_PORTS_TOTAL)))
		return err;
	for (i = 0; i < ps->count; i++) {
		struct wire_port *p = &ps->p[i];

		rd_where(r, "PORTS", (int)i);
		if ((err = get_str(r, "client", p->client, STR_CLIENT)) ||
		    (err = get16(r, &p->index, "index")) ||
		    (err = get64(r, &p->addr, "addr")) ||
		    (err = get32(r, &p->rkey, "rkey")) ||
		    (err = get32(r, &p->len, "len")) ||
		    (err = check_port(r, ps, i)))
			return err;
	}
	rd_where(r, "PORTS", -1);
	return 0;
}

static int dec_decline(struct rd *r, struct wire_decline *d)
{
	int err;

	if ((err = get16(r, &d->reason, "reason")) ||
	    (err = check_reason(r, d->reason, 0)) ||
	    (err = get_str(r, "detail", d->detail, STR_DETAIL)))
		return err;
	return 0;
}

static int dec_bye(struct rd *r, struct wire_bye *b)
{
	int err;

	if ((err = get16(r, &b->reason, "reason")) ||
	    (err = check_reason(r, b->reason, 1)))
		return err;
	return 0;
}

static int dec_port_msg(struct rd *r, struct wire_port_msg *m)
{
	int err;

	if ((err = get_str(r, "client", m->client, STR_CLIENT)) ||
	    (err = get16(r, &m->port, "port")) ||
	    (err = get64(r, &m->seq, "seq")) ||
	    (err = get16(r, &m->len, "len")))
		return err;
	if (m->port >= CCM_PORTS_MAX)
		return fail(r, "port %u is not below %u", m->port, CCM_PORTS_MAX);
	if (m->len < 1 || m->len > CCM_PORT_MSG_MAX)
		return fail(r, "len %u is outside 1..%u", m->len, CCM_PORT_MSG_MAX);
	return getn(r, m->data, m->len, "data");
}

static int dec_notify(struct rd *r, struct wire_port_notify *n)
{
	int err;

	if ((err = get_str(r, "client", n->client, STR_CLIENT)) ||
	    (err = get16(r, &n->port, "port")) ||
	    (err = get64(r, &n->seq, "seq")) ||
	    (err = get32(r, &n->off, "off")) ||
	    (err = get32(r, &n->len, "len")))
		return err;
	if (n->port >= CCM_PORTS_MAX)
		return fail(r, "port %u is not below %u", n->port, CCM_PORTS_MAX);
	return 0;
}

static const char *const type_names[] = {
	[WIRE_HELLO] = "hello",
	[WIRE_AUTH] = "auth",
	[WIRE_CLIENTS] = "clients",
	[WIRE_PORTS] = "ports",
	[WIRE_DECLINE] = "decline",
	[WIRE_BYE] = "bye",
	[WIRE_PORT_MSG] = "port-msg",
	[WIRE_PORT_NOTIFY] = "port-notify",
	[WIRE_LINK_JOIN] = "link-join",
};

/* Upper-case message prefixes, as the header comment names the bodies. */
static const char *const type_tags[] = {
	[WIRE_HELLO] = "HELLO",
	[WIRE_AUTH] = "AUTH",
	[WIRE_CLIENTS] = "CLIENTS",
	[WIRE_PORTS] = "PORTS",
	[WIRE_DECLINE] = "DECLINE",
	[WIRE_BYE] = "BYE",
	[WIRE_PORT_MSG] = "PORT_MSG",
	[WIRE_PORT_NOTIFY] = "PORT_NOTIFY",
	[WIRE_LINK_JOIN] = "LINK_JOIN",
};

static int known_type(uint32_t t)
{
	return t >= WIRE_HELLO && t <= WIRE_LINK_JOIN;
}

int wire_decode(const uint8_t *buf, size_t len, struct wire_msg *m, struct errbuf *e)
{
	struct rd r = { buf, len, e, "header" };
	uint32_t magic, body;
	uint16_t rsvd;
	uint8_t fmt, type;
	int err;

	memset(m, 0, sizeof(*m));
	if (len < WIRE_HEADER_LEN)
		return fail(&r, "%zu bytes, shorter than the %d-byte header",
			    len, WIRE_HEADER_LEN);
	get32(&r, &magic, "magic");
	getn(&r, &fmt, 1, "format");
	getn(&r, &type, 1, "type");
	get16(&r, &rsvd, "reserved");
	get32(&r, &body, "body length");
	get32(&r, &m->round, "round");
	get32(&r, &m->peer_round, "peer round");
	if (magic != WIRE_MAGIC)
		return fail(&r, "bad magic 0x%08x (want 0x%08x \"CCMX\")",
			    magic, WIRE_MAGIC);
	if (fmt != WIRE_FORMAT)
		return fail(&r, "format %u is not %d", fmt, WIRE_FORMAT);
	if (!known_type(type))
		return fail(&r, "unknown type %u", type);
	if (rsvd)
		return fail(&r, "reserved field is 0x%04x, not zero", rsvd);
	if (body != r.left)
		return fail(&r, "body length %u but %zu bytes follow", body, r.left);

	rd_where(&r, type_tags[type], -1);
	m->type = (enum wire_type)type;
	switch (m->type) {
	case WIRE_HELLO:
		err = dec_hello(&r, &m->u.hello);
		break;
	case WIRE_AUTH:
		err = dec_auth(&r, &m->u.auth);
		break;
	case WIRE_CLIENTS:
		err = dec_clients(&r, &m->u.clients);
		break;
	case WIRE_PORTS:
	case WIRE_LINK_JOIN:
		err = dec_ports(&r, &m->u.ports);
		break;
	case WIRE_DECLINE:
		err = dec_decline(&r, &m->u.decline);
		break;
	case WIRE_PORT_MSG:
		err = dec_port_msg(&r, &m->u.port_msg);
		break;
	case WIRE_PORT_NOTIFY:
		err = dec_notify(&r, &m->u.notify);
		break;
	default:
		err = dec_bye(&r, &m->u.bye);
		break;
	}
	if (err)
		return err;
	if (r.left)
		return fail(&r, "%zu trailing byte%s after the body", r.left,
			    r.left == 1 ? "" : "s");
	return 0;
}

/* --- encoding ------------------------------------------------------------ */

struct wr {
	uint8_t *p;
	size_t cap, len;      /* len keeps counting past cap: the size needed */
};

static void put(struct wr *w, const void *src, size_t n)
{
	if (n <= w->cap && w->len <= w->cap - n)
		memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void put_int(struct wr *w, uint64_t v, int n)
{
	uint8_t b[8];

	be_put(b, v, n);
	put(w, b, (size_t)n);
}

/* Validate a struct string (which may lack its NUL: strnlen stops at the
 * array's end, and one byte over the limit is then refused) and write it. */
static int put_str(struct wr *w, struct rd *r, const char *s, size_t size,
		   enum str_rule rule)
{
	size_t n = strnlen(s, size);
	int err;

	if ((err = check_str(r, "", s, n, rule)))
		return err;
	put_int(w, n, 1);
	put(w, s, n);
	return 0;
}

static int enc_hello(struct wr *w, struct rd *r, const struct wire_hello *h)
{
	int err;

	if ((err = check_hello(r, h)))
		return err;
	put_int(w, h->ver_min, 2);
	put_int(w, h->ver_max, 2);
	put_int(w, h->node_id, 4);
	put_int(w, h->epoch, 8);
	put_int(w, h->caps, 8);
	put_int(w, h->auth, 1);
	if ((err = put_str(w, r, h->cluster, sizeof(h->cluster), STR_CLUSTER)))
		return err;
	put(w, h->nonce, CCM_NONCE_LEN);
	return 0;
}

static int enc_clients(struct wr *w, struct rd *r, const struct wire_clients *cs)
{
	unsigned i;
	int err;

	if ((err = check_count(r, cs->count, CCM_CLIENTS_MAX)))
		return err;
	put_int(w, cs->count, 2);
	for (i = 0; i < cs->count; i++) {
		const struct wire_client *c = &cs->c[i];

		/* The name first: check_client compares it with strcmp. */
		if ((err = put_str(w, r, c->name, sizeof(c->name), STR_CLIENT)) ||
		    (err = check_client(r, cs, i)))
			return err;
		put_int(w, c->nports, 2);
		put_int(w, c->port_size, 4);
	}
	return 0;
}

static int enc_ports(struct wr *w, struct rd *r, const struct wire_ports *ps)
{
	unsigned i;
	int err;

	if (ps->link >= CCM_LINKS_MAX)
		return -EINVAL;
	if ((err = check_count(r, ps->count, CCM_PORTS_TOTAL)))
		return err;
	put_int(w, ps->link, 1);
	put_int(w, ps->count, 2);
	for (i = 0; i < ps->count; i++) {
		const struct wire_port *p = &ps->p[i];

		if ((err = put_str(w, r, p->client, sizeof(p->client), STR_CLIENT)) ||
		    (err = check_port(r, ps, i)))
			return err;
		put_int(w, p->index, 2);
		put_int(w, p->addr, 8);
		put_int(w, p->rkey, 4);
		put_int(w, p->len, 4);
	}
	return 0;
}

static int enc_body(struct wr *w, struct rd *r, const struct wire_msg *m)
{
	int err;

	switch (m->type) {
	case WIRE_HELLO:
		return enc_hello(w, r, &m->u.hello);
	case WIRE_AUTH:
		if ((err = check_version(r, "", m->u.auth.version)))
			return err;
		put_int(w, m->u.auth.version, 2);
		put(w, m->u.auth.mac, CCM_MAC_LEN);
		return 0;
	case WIRE_CLIENTS:
		return enc_clients(w, r, &m->u.clients);
	case WIRE_PORTS:
	case WIRE_LINK_JOIN:
		return enc_ports(w, r, &m->u.ports);
	case WIRE_DECLINE:
		if ((err = check_reason(r, m->u.decline.reason, 0)))
			return err;
		put_int(w, m->u.decline.reason, 2);
		return put_str(w, r, m->u.decline.detail,
			       sizeof(m->u.decline.detail), STR_DETAIL);
	case WIRE_BYE:
		if ((err = check_reason(r, m->u.bye.reason, 1)))
			return err;
		put_int(w, m->u.bye.reason, 2);
		return 0;
	case WIRE_PORT_MSG: {
		const struct wire_port_msg *pm = &m->u.port_msg;

		if (pm->port >= CCM_PORTS_MAX || pm->len < 1 || pm->len > CCM_PORT_MSG_MAX)
			return -EINVAL;
		if ((err = put_str(w, r, pm->client, sizeof(pm->client), STR_CLIENT)))
			return err;
		put_int(w, pm->port, 2);
		put_int(w, pm->seq, 8);
		put_int(w, pm->len, 2);
		put(w, pm->data, pm->len);
		return 0;
	}
	case WIRE_PORT_NOTIFY: {
		const struct wire_port_notify *n = &m->u.notify;

		if (n->port >= CCM_PORTS_MAX)
			return -EINVAL;
		if ((err = put_str(w, r, n->client, sizeof(n->client), STR_CLIENT)))
			return err;
		put_int(w, n->port, 2);
		put_int(w, n->seq, 8);
		put_int(w, n->off, 4);
		put_int(w, n->len, 4);
		return 0;
	}
	}
	return -EINVAL;
}

int wire_encode(const struct wire_msg *m, uint8_t *buf, size_t cap)
{
	struct wr w = { buf, cap, WIRE_HEADER_LEN };
	struct rd r = { NULL, 0, NULL, "" };  /* checks only, no messages */
	uint8_t hdr[WIRE_HEADER_LEN];

	if (enc_body(&w, &r, m))
		return -EINVAL;
	if (w.len > cap)
		return -EMSGSIZE;
	be_put(hdr, WIRE_MAGIC, 4);
	hdr[4] = WIRE_FORMAT;
	hdr[5] = (uint8_t)m->type;
	be_put(hdr + 6, 0, 2);
	be_put(hdr + 8, w.len - WIRE_HEADER_LEN, 4);
	be_put(hdr + 12, m->round, 4);
	be_put(hdr + 16, m->peer_round, 4);
	memcpy(buf, hdr, sizeof(hdr));
	return (int)w.len;
}

/* --- names --------------------------------------------------------------- */

int wire_valid_cluster_name(const char *s)
{
	struct rd r = { NULL, 0, NULL, "" };

	return s && !check_str(&r, "", s, strnlen(s, CCM_CLUSTER_MAX + 1), STR_CLUSTER);
}

const char *wire_type_name(enum wire_type t)
{
	return known_type((uint32_t)t) ? type_names[t] : "unknown";
}

const char *wire_decline_name(enum wire_decline_reason r)
{
	static const char *const names[] = {
		"none", "no-common-version", "auth-required", "auth-failed",
		"cluster-mismatch", "node-id-conflict", "malformed", "protocol",
	};

	return (unsigned)r <= DECLINE_REASON_MAX ? names[r] : "unknown";
}
