/* handoff: writing, formatting and strictly reading the state files
 * (format in handoff.h). */
#include "state/handoff.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/name.h"
#include "base/num.h"
#include "conf/config.h"

#define HANDOFF_VALUE_MAX 2047  /* an unquoted value: the longest is a list */
#define HANDOFF_DIR_MAX   1023

/* --- the scalar keys: one table for the shell writer, the JSON writer and
 * the reader --------------------------------------------------------------- */

/* HF_ID: a 64-bit identifier; a number in `state`, a string in JSON, where
 * readers that hold numbers as doubles would round it. */
enum { HF_STATE, HF_NUM, HF_ID, HF_STR };

struct hf {
	const char *key;
	unsigned char type;
	unsigned short off, size;
};

#define HF(k, t, m) { k, t, offsetof(struct handoff, m), sizeof(((struct handoff *)0)->m) }
static const struct hf hf_fields[] = {
	HF("CCM_STATE", HF_STATE, state),
	HF("CCM_NODE", HF_NUM, node),
	HF("CCM_PARTNER_NODE", HF_NUM, partner_node),
	HF("CCM_PARTNER_ADDR", HF_STR, partner_addr),
	HF("CCM_LISTEN_ADDR", HF_STR, listen_addr),
	HF("CCM_VERSION", HF_NUM, version),
	HF("CCM_TRANSPORT", HF_STR, transport),
	HF("CCM_CLUSTER", HF_STR, cluster),
	HF("CCM_KEY_ID", HF_STR, key_id),
	HF("CCM_KEY_ACCEPT_ID", HF_STR, key_accept_id),
	HF("CCM_EPOCH", HF_ID, epoch),
	HF("CCM_PARTNER_EPOCH", HF_ID, partner_epoch),
	HF("CCM_HS_STATE", HF_STR, hs_state),
	HF("CCM_PID", HF_NUM, pid),
	HF("CCM_UPDATED", HF_NUM, updated),
	HF("CCM_ERROR", HF_STR, error),
	HF("CCM_PARTNER_SESSIONS", HF_NUM, partner_sessions),
	HF("CCM_PARTNER_LOSSES", HF_NUM, partner_losses),
	HF("CCM_PARTNER_RESUMES", HF_NUM, partner_resumes),
	HF("CCM_PARTNER_EPOCH_CHANGES", HF_NUM, partner_epoch_changes),
	HF("CCM_FAILOVERS", HF_NUM, failovers),
	HF("CCM_INSTANCE", HF_STR, instance),
};
#define HF_N         (int)(sizeof(hf_fields) / sizeof(hf_fields[0]))
#define HF_BIT_LIST  (1u << HF_N)         /* CCM_CLIENTS */
#define HF_BIT_BAD   (1u << (HF_N + 1))   /* CCM_BAD_DESCRIPTORS */
#define HF_BIT_POLICY (1u << (HF_N + 2))  /* CCM_LINK_POLICY */
#define HF_BIT_LINKS (1u << (HF_N + 3))   /* CCM_LINKS */

/* A link's keys, CCM_LINK_I_<suffix>, in the order written. */
#define LF(k, t, m) { k, t, offsetof(struct handoff_link, m), sizeof(((struct handoff_link *)0)->m) }
static const struct hf lf_fields[] = {
	LF("STATE", HF_STATE, state),
	LF("LOCAL", HF_STR, local),
	LF("PARTNER", HF_STR, partner),
	LF("DEVICE", HF_STR, device),
	LF("PRIORITY", HF_NUM, priority),
	LF("PORTS", HF_NUM, ports),
	LF("OPS", HF_NUM, ops),
	LF("BYTES", HF_NUM, bytes),
	LF("MSGS", HF_NUM, msgs),
	LF("DOWNS", HF_NUM, downs),
	LF("REISSUED", HF_NUM, reissued),
	/* Newer: a file without them still reads */
	LF("CHANGED", HF_NUM, changed),
	LF("RTT_LAST_MS", HF_NUM, rtt_last_ms),
	LF("RTT_MAX_MS", HF_NUM, rtt_max_ms),
	LF("RTT_SUM_MS", HF_NUM, rtt_sum_ms),
	LF("RTT_COUNT", HF_NUM, rtt_count),
};
#define LF_N   (int)(sizeof(lf_fields) / sizeof(lf_fields[0]))
#define LF_REQUIRED ((1u << 11) - 1)  /* the first 11: every file has them */

#define C_STATUS    1u
#define C_PORTS     2u
#define C_PORT_SIZE 4u
#define C_ALL       7u

static const char *const state_names[HANDOFF_NSTATES] = {
	"handshaking", "connected", "terminated", "error", "unreachable",
};

const char *handoff_state_name(enum handoff_state s)
{
	return (unsigned)s < HANDOFF_NSTATES ? state_names[s] : "?";
}

/* Numbers of 2, 4 or 8 bytes, by the field's size. */
static uint64_t get_num(const void *p, size_t size)
{
	uint16_t a;
	uint32_t b;
	uint64_t c;

	if (size == 2) {
		memcpy(&a, p, 2);
		return a;
	}
	if (size == 4) {
		memcpy(&b, p, 4);
		return b;
	}
	memcpy(&c, p, 8);
	return c;
}

static void set_num(void *p, size_t size, uint64_t v)
{
	uint16_t a = (uint16_t)v;
	uint32_t b = (uint32_t)v;

	if (size == 2)
		memcpy(p, &a, 2);
	else if (size == 4)
		memcpy(p, &b, 4);
	else
		memcpy(p, &v, 8);
}

/* A string field's length: never past its array, even without a NUL. */
static size_t field_len(const char *s, size_t size)
{
	return strnlen(s, size - 1);
}

static int is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* --- output ------------------------------------------------------------------ */

/* Appends until the first write that does not fit; after that only len
 * grows, and the caller reports -ENOSPC. */
struct out {
	char *p;
	size_t cap, len;
};

static void out_mem(struct out *o, const char *s, size_t n)
{
	if (o->len < o->cap && n < o->cap - o->len)
		memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void out_s(struct out *o, const char *s)
{
	out_mem(o, s, strlen(s));
}

static void out_c(struct out *o, char c)
{
	out_mem(o, &c, 1);
}

static void out_u(struct out *o, uint64_t v)
{
	char t[24];
	int i = sizeof(t);

	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	out_mem(o, t + i, sizeof(t) - (size_t)i);
}

static int out_end(struct out *o)
{
	if (o->len >= o->cap)
		return -ENOSPC;
	o->p[o->len] = 0;
	return (int)o->len;
}

/* A bad descriptor's name: what clients.c records, and all the reader
 * accepts.  No blank (the list splits on spaces), no glob or shell
 * character (scripts loop over the list unquoted). */
static int bad_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* The name as written: other bytes become '_'; never empty. */
static void bad_name(const char *s, char *dst)
{
	size_t i, n = field_len(s, CLIENTS_FILE_MAX);

	for (i = 0; i < n; i++)
		dst[i] = bad_char(s[i]) ? s[i] : '_';
	if (!n)
		dst[n++] = '_';
	dst[n] = 0;
}

/* Everything that could make the output unsafe or not round-trip. */
static int handoff_valid(const struct handoff *h)
{
	const struct handoff_client *c;
	int i, j;

	if ((unsigned)h->state >= HANDOFF_NSTATES ||
	    h->nclients < 0 || h->nclients > HANDOFF_CLIENTS_MAX ||
	    h->nbad < 0 || h->nbad > HANDOFF_BAD_MAX ||
	    h->nlinks < 0 || h->nlinks > CCM_LINKS_MAX)
		return -EINVAL;
	for (i = 0; i < h->nlinks; i++)
		if ((unsigned)h->links[i].state > LINK_UP || h->links[i].priority > 255 ||
		    h->links[i].ports > CCM_PORTS_TOTAL)
			return -EINVAL;
	for (i = 0; i < h->nclients; i++) {
		c = &h->clients[i];
		/* The name becomes part of a shell variable name. */
		if (!client_name_valid(c->name, strnlen(c->name, sizeof(c->name))) ||
		    (unsigned)c->status >= CLIENT_MATCH_NSTATUS ||
		    c->nports > CCM_PORTS_MAX || c->port_size > CCM_PORT_SIZE_MAX)
			return -EINVAL;
		for (j = 0; j < i; j++)
			if (!strcmp(h->clients[j].name, c->name))
				return -EINVAL;
	}
	return 0;
}

/* --- shell ------------------------------------------------------------------- */

/* Single quotes protect everything but the quote itself, which closes,
 * escapes and reopens: ' -> '\''.  Control characters become spaces, so a
 * value never spans lines. */
static void sh_value(struct out *o, const char *s, size_t n)
{
	size_t i;

	out_c(o, '\'');
	for (i = 0; i < n; i++) {
		if (s[i] == '\'')
			out_s(o, "'\\''");
		else
			out_c(o, is_ctl((unsigned char)s[i]) ? ' ' : s[i]);
	}
	out_s(o, "'\n");
}

static void sh_client_key(struct out *o, const char *name, const char *suffix)
{
	out_s(o, "CCM_CLIENT_");
	out_s(o, name);
	out_s(o, suffix);
	out_c(o, '=');
}

static void sh_num(struct out *o, uint64_t v)
{
	out_c(o, '\'');
	out_u(o, v);
	out_s(o, "'\n");
}

int handoff_format_shell(const struct handoff *h, char *buf, size_t cap)
{
	struct out o = { buf, cap, 0 }, lo = { NULL, 0, 0 };
	char list[HANDOFF_VALUE_MAX + 1], name[CLIENTS_FILE_MAX];
	const struct hf *f;
	const char *p;
	int i;

	if (handoff_valid(h) < 0)
		return -EINVAL;
	out_s(&o, HANDOFF_HEADER "\n");
	for (f = hf_fields; f < hf_fields + HF_N; f++) {
		p = (const char *)h + f->off;
		out_s(&o, f->key);
		out_c(&o, '=');
		if (f->type == HF_STATE)
			sh_value(&o, state_names[h->state], strlen(state_names[h->state]));
		else if (f->type == HF_NUM || f->type == HF_ID)
			sh_num(&o, get_num(p, f->size));
		else
			sh_value(&o, p, field_len(p, f->size));
	}
	/* Lists are built apart, then quoted like any other value. */
	lo.p = list;
	lo.cap = sizeof(list);
	for (i = 0; i < h->nclients; i++) {
		if (h->clients[i].status != MATCH_OK)
			continue;
		if (lo.len)
			out_c(&lo, ' ');
		out_s(&lo, h->clients[i].name);
	}
	if (out_end(&lo) < 0)
		return -ENOSPC;
	out_s(&o, "CCM_CLIENTS=");
	sh_value(&o, list, lo.len);
	for (i = 0; i < h->nclients; i++) {
		const struct handoff_client *c = &h->clients[i];
		const char *st = client_match_name(c->status);

		sh_client_key(&o, c->name, "_STATUS");
		sh_value(&o, st, strlen(st));
		sh_client_key(&o, c->name, "_PORTS");
		sh_num(&o, c->nports);
		sh_client_key(&o, c->name, "_PORT_SIZE");
		sh_num(&o, c->port_size);
	}
	lo.len = 0;
	for (i = 0; i < h->nbad; i++) {
		bad_name(h->bad[i], name);
		if (i)
			out_c(&lo, ' ');
		out_s(&lo, name);
	}
	if (out_end(&lo) < 0)
		return -ENOSPC;
	out_s(&o, "CCM_BAD_DESCRIPTORS=");
	sh_value(&o, list, lo.len);
	out_s(&o, "CCM_LINK_POLICY=");
	sh_value(&o, h->link_policy, field_len(h->link_policy, sizeof(h->link_policy)));
	out_s(&o, "CCM_LINKS=");
	sh_num(&o, (uint64_t)h->nlinks);
	for (i = 0; i < h->nlinks; i++) {
		const char *l = (const char *)&h->links[i];

		for (f = lf_fields; f < lf_fields + LF_N; f++) {
			const char *v = l + f->off;

			out_s(&o, "CCM_LINK_");
			out_u(&o, (uint64_t)i);
			out_c(&o, '_');
			out_s(&o, f->key);
			out_c(&o, '=');
			if (f->type == HF_STATE) {
				const char *st = link_state_name(h->links[i].state);

				sh_value(&o, st, strlen(st));
			} else if (f->type == HF_NUM)
				sh_num(&o, get_num(v, f->size));
			else
				sh_value(&o, v, field_len(v, f->size));
		}
	}
	return out_end(&o);
}

/* --- JSON -------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid:
 * overlong forms, surrogates and code points past U+10FFFF are invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1fu;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0fu;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07u;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static void js_str(struct out *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	char esc[7] = "\\u00";
	size_t i = 0, k;

	out_c(o, '"');
	while (i < n) {
		if (u[i] == '"' || u[i] == '\\') {
			out_c(o, '\\');
			out_c(o, (char)u[i++]);
		} else if (u[i] < 0x20 || u[i] == 0x7f) {
			esc[4] = hex[u[i] >> 4];
			esc[5] = hex[u[i] & 15];
			out_mem(o, esc, 6);
			i++;
		} else if ((k = utf8_len(u + i, n - i)) == 0) {
			out_s(o, "\\ufffd");
			i++;
		} else {
			out_mem(o, s + i, k);
			i += k;
		}
	}
	out_c(o, '"');
}

/* "CCM_PARTNER_NODE" -> "partner_node" */
static void js_key(struct out *o, const char *key)
{
	const char *p;

	out_c(o, '"');
	for (p = key + 4; *p; p++)
		out_c(o, *p >= 'A' && *p <= 'Z' ? (char)(*p + 32) : *p);
	out_s(o, "\":");
}

static int format_json(const struct handoff *h, const char *stale, char *buf, size_t cap)
{
	struct out o = { buf, cap, 0 };
	char name[CLIENTS_FILE_MAX];
	const struct hf *f;
	const char *p;
	int i;

	if (handoff_valid(h) < 0)
		return -EINVAL;
	out_s(&o, "{\"format\":1");
	for (f = hf_fields; f < hf_fields + HF_N; f++) {
		p = (const char *)h + f->off;
		out_s(&o, ",\n");
		js_key(&o, f->key);
		if (f->type == HF_STATE && stale) {
			out_s(&o, "\"stale\",\n\"last_state\":");
			js_str(&o, state_names[h->state], strlen(state_names[h->state]));
			out_s(&o, ",\n\"stale\":true,\n\"stale_reason\":");
			js_str(&o, stale, strlen(stale));
		} else if (f->type == HF_STATE)
			js_str(&o, state_names[h->state], strlen(state_names[h->state]));
		else if (f->type == HF_NUM)
			out_u(&o, get_num(p, f->size));
		else if (f->type == HF_ID) {
			out_s(&o, "\"");
			out_u(&o, get_num(p, f->size));
			out_s(&o, "\"");
		} else
			js_str(&o, p, field_len(p, f->size));
	}
	out_s(&o, ",\n\"clients\":[");
	for (i = 0; i < h->nclients; i++) {
		const struct handoff_client *c = &h->clients[i];

		out_s(&o, i ? ",\n {\"name\":\"" : "\n {\"name\":\"");
		out_s(&o, c->name);  /* a valid client name needs no escaping */
		out_s(&o, "\",\"status\":\"");
		out_s(&o, client_match_name(c->status));
		out_s(&o, "\",\"ports\":");
		out_u(&o, c->nports);
		out_s(&o, ",\"port_size\":");
		out_u(&o, c->port_size);
		out_s(&o, ",\"attached\":");
		out_s(&o, c->attached ? "true" : "false");
		out_s(&o, ",\"queued\":");
		out_u(&o, c->queued);
		out_s(&o, ",\"in_flight\":");
		out_u(&o, c->in_flight);
		out_s(&o, ",\"given_up\":");
		out_u(&o, c->given_up);
		out_c(&o, '}');
	}
	out_s(&o, "],\n\"bad_descriptors\":[");
	for (i = 0; i < h->nbad; i++) {
		bad_name(h->bad[i], name);
		if (i)
			out_c(&o, ',');
		js_str(&o, name, strlen(name));
	}
	out_s(&o, "],\n\"link_policy\":");
	js_str(&o, h->link_policy, field_len(h->link_policy, sizeof(h->link_policy)));
	out_s(&o, ",\n\"links\":[");
	for (i = 0; i < h->nlinks; i++) {
		const char *l = (const char *)&h->links[i];

		out_s(&o, i ? ",\n {\"index\":" : "\n {\"index\":");
		out_u(&o, (uint64_t)i);
		for (f = lf_fields; f < lf_fields + LF_N; f++) {
			const char *v = l + f->off;
			char lower[16];
			size_t k;

			for (k = 0; f->key[k] && k < sizeof(lower) - 1; k++)
				lower[k] = f->key[k] == '_' ? '_' : (char)(f->key[k] - 'A' + 'a');
			lower[k] = 0;
			out_s(&o, ",\"");
			out_s(&o, lower);
			out_s(&o, "\":");
			if (f->type == HF_STATE) {
				const char *st = link_state_name(h->links[i].state);

				js_str(&o, st, strlen(st));
			} else if (f->type == HF_NUM) {
				out_u(&o, get_num(v, f->size));
			} else {
				js_str(&o, v, field_len(v, f->size));
			}
		}
		out_c(&o, '}');
	}
	out_s(&o, "]}\n");
	return out_end(&o);
}

int handoff_format_json(const struct handoff *h, char *buf, size_t cap)
{
	return format_json(h, NULL, buf, cap);
}

int handoff_format_json_stale(const struct handoff *h, const char *why, char *buf, size_t cap)
{
	return format_json(h, why, buf, cap);
}

/* --- staleness ---------------------------------------------------------------- */

bool handoff_stale(const struct handoff *h, const struct handoff_writer *w, char *why,
		   size_t cap)
{
	why[0] = 0;
	/* The writer's last word: true after it is gone. */
	if (h->state == HANDOFF_TERMINATED || h->state == HANDOFF_ERROR)
		return false;
	if (!w->exists || w->zombie)
		snprintf(why, cap, "pid %u, which wrote it, is gone", h->pid);
	else if (w->started && w->started > h->updated + HANDOFF_CLOCK_SLACK_S)
		snprintf(why, cap, "pid %u is another process, started after the state was written",
			 h->pid);
	else if (w->keeper_pid > 0 && (uint32_t)w->keeper_pid != h->pid)
		snprintf(why, cap, "pid %u wrote it, but the keeper now is pid %d", h->pid,
			 w->keeper_pid);
	else if (w->keeper_silent)
		snprintf(why, cap, "the keeper, pid %u, does not answer", h->pid);
	return why[0] != 0;
}

/* --- the reader -------------------------------------------------------------- */

struct hp {
	struct handoff *h;
	unsigned seen;                            /* HF bits */
	unsigned char cseen[HANDOFF_CLIENTS_MAX]; /* C_ bits per client */
	unsigned lseen[CCM_LINKS_MAX];            /* LF bits per link */
	char list[HANDOFF_VALUE_MAX + 1];         /* CCM_CLIENTS as read */
};

/* Undo sh_value exactly: '...' with '\'' for each quote, nothing after. */
static const char *sh_unquote(const char *s, size_t n, char *dst, size_t *dlen)
{
	size_t i = 1, k = 0;
	char c;

	if (!n || s[0] != '\'')
		return "value is not in single quotes";
	for (;;) {
		if (i >= n)
			return "unterminated quote";
		c = s[i];
		if (c == '\'') {
			if (n - i < 4 || memcmp(s + i, "'\\''", 4))
				break;
			i += 3;  /* onto the reopening quote; c is the quote */
		} else if (is_ctl((unsigned char)c)) {
			return "control character in value";
		}
		if (k >= HANDOFF_VALUE_MAX)
			return "value too long";
		dst[k++] = c;
		i++;
	}
	if (i + 1 != n)
		return "text after the closing quote";
	dst[k] = 0;
	*dlen = k;
	return NULL;
}

static const char *hp_client(struct hp *c, const char *key, const char *v)
{
	static const struct {
		const char *sfx;
		unsigned bit;
	} sfx[] = {
		/* _PORT_SIZE before _PORTS: names are lowercase and the suffixes
		 * uppercase, so the split is never ambiguous. */
		{ "_PORT_SIZE", C_PORT_SIZE }, { "_PORTS", C_PORTS }, { "_STATUS", C_STATUS },
	};
	struct handoff *h = c->h;
	struct handoff_client *cl;
	char name[CCM_NAME_MAX + 1];
	const char *rest = key + strlen("CCM_CLIENT_");
	size_t n = strlen(rest), sl = 0;
	unsigned bit = 0;
	uint64_t x;
	int i;

	for (i = 0; i < 3 && !bit; i++) {
		sl = strlen(sfx[i].sfx);
		if (n > sl && !strcmp(rest + n - sl, sfx[i].sfx))
			bit = sfx[i].bit;
	}
	if (!bit || n - sl > CCM_NAME_MAX)
		return "unknown key";
	memcpy(name, rest, n - sl);
	name[n - sl] = 0;
	if (!client_name_valid(name, n - sl))
		return "unknown key (not a client name)";
	for (i = 0; i < h->nclients; i++)
		if (!strcmp(h->clients[i].name, name))
			break;
	if (i == h->nclients) {
		if (i == HANDOFF_CLIENTS_MAX)
			return "too many clients";
		h->nclients++;
		strcpy(h->clients[i].name, name);
	}
	cl = &h->clients[i];
	if (c->cseen[i] & bit)
		return "given twice";
	c->cseen[i] |= bit;
	if (bit == C_STATUS)
		return client_match_parse(v, &cl->status) < 0 ?
		       "not a client status (ok, local-only, remote-only, size-mismatch)" : NULL;
	if (bit == C_PORTS) {
		if (num_parse_u64(v, 0, CCM_PORTS_MAX, &x) < 0)
			return "not a number of ports in 0..64";
		cl->nports = (uint16_t)x;
		return NULL;
	}
	if (num_parse_u64(v, 0, CCM_PORT_SIZE_MAX, &x) < 0)
		return "not a port size in 0..67108864";
	cl->port_size = (uint32_t)x;
	return NULL;
}

/* A number (at most max) or a string into field f at p. */
static const char *hp_value(const struct hf *f, char *p, const char *v, size_t vlen, uint64_t max)
{
	uint64_t x;

	if (f->type == HF_NUM || f->type == HF_ID) {
		if (num_parse_u64(v, 0, max, &x) < 0)
			return "not a decimal number in range";
		set_num(p, f->size, x);
		return NULL;
	}
	if (vlen >= f->size)
		return "too long";
	memcpy(p, v, vlen + 1);
	return NULL;
}

/* CCM_LINK_I_SUFFIX */
static const char *hp_link(struct hp *c, const char *key, const char *v, size_t vlen)
{
	const char *rest = key + strlen("CCM_LINK_");
	const struct hf *f;
	char *p;
	int i, li;

	if (rest[0] < '0' || rest[0] >= '0' + CCM_LINKS_MAX || rest[1] != '_')
		return "unknown key (links are numbered 0..3)";
	li = rest[0] - '0';
	for (f = lf_fields; f < lf_fields + LF_N && strcmp(f->key, rest + 2); f++)
		;
	if (f == lf_fields + LF_N)
		return "unknown key";
	if (c->lseen[li] & (1u << (f - lf_fields)))
		return "given twice";
	c->lseen[li] |= 1u << (f - lf_fields);
	p = (char *)&c->h->links[li] + f->off;
	if (f->type == HF_STATE) {
		for (i = 0; i <= LINK_UP && strcmp(link_state_name((enum link_state)i), v); i++)
			;
		if (i > LINK_UP)
			return "not a link state (down, connecting, verifying, damped, up)";
		c->h->links[li].state = (enum link_state)i;
		return NULL;
	}
	return hp_value(f, p, v, vlen, !strcmp(f->key, "PRIORITY") ? 255 :
				       !strcmp(f->key, "PORTS") ? CCM_PORTS_TOTAL : UINT64_MAX);
}

/* A list of names separated by single spaces; "" is the empty list. */
static const char *hp_bad(struct handoff *h, const char *v)
{
	size_t n;

	while (*v) {
		for (n = 0; bad_char(v[n]); n++)
			;
		if (v[n] && v[n] != ' ')
			return "a name holds a character outside [A-Za-z0-9._-]";
		if (!n)
			return "empty name in the list";
		if (n >= CLIENTS_FILE_MAX)
			return "name too long";
		if (h->nbad == HANDOFF_BAD_MAX)
			return "too many names";
		memcpy(h->bad[h->nbad++], v, n);
		v += n;
		if (*v && !*++v)
			return "empty name in the list";
	}
	return NULL;
}

static const char *hp_kv(struct hp *c, const char *key, const char *v,
			 size_t vlen)
{
	const struct hf *f;
	unsigned bit;
	uint64_t x;
	char *p;
	int i;

	if (!strncmp(key, "CCM_CLIENT_", 11))
		return hp_client(c, key, v);
	if (!strncmp(key, "CCM_LINK_", 9) && strcmp(key, "CCM_LINK_POLICY"))
		return hp_link(c, key, v, vlen);
	for (i = 0; i < HF_N && strcmp(hf_fields[i].key, key); i++)
		;
	if (i < HF_N)
		bit = 1u << i;
	else if (!strcmp(key, "CCM_CLIENTS"))
		bit = HF_BIT_LIST;
	else if (!strcmp(key, "CCM_BAD_DESCRIPTORS"))
		bit = HF_BIT_BAD;
	else if (!strcmp(key, "CCM_LINK_POLICY"))
		bit = HF_BIT_POLICY;
	else if (!strcmp(key, "CCM_LINKS"))
		bit = HF_BIT_LINKS;
	else
		return "unknown key";
	if (c->seen & bit)
		return "given twice";
	c->seen |= bit;
	if (bit == HF_BIT_LIST) {
		memcpy(c->list, v, vlen + 1);
		return NULL;
	}
	if (bit == HF_BIT_BAD)
		return hp_bad(c->h, v);
	if (bit == HF_BIT_POLICY) {
		if (*v && strcmp(v, "balance") && strcmp(v, "standby"))
			return "not a link policy (balance, standby, or '' for not known)";
		strcpy(c->h->link_policy, v);
		return NULL;
	}
	if (bit == HF_BIT_LINKS) {
		if (num_parse_u64(v, 0, CCM_LINKS_MAX, &x) < 0)
			return "not a number of links in 0..4";
		c->h->nlinks = (int)x;
		return NULL;
	}
	f = &hf_fields[i];
	p = (char *)c->h + f->off;
	if (f->type == HF_STATE) {
		for (i = 0; i < HANDOFF_NSTATES && strcmp(state_names[i], v); i++)
			;
		if (i == HANDOFF_NSTATES)
			return "not a state (handshaking, connected, terminated, error, unreachable)";
		c->h->state = (enum handoff_state)i;
		return NULL;
	}
	return hp_value(f, p, v, vlen, f->type == HF_STR || f->size >= 8 ? UINT64_MAX
					: (1ull << (8 * f->size)) - 1);
}

/* The clients whose status is ok, in order, separated by spaces: exactly
 * what the writer puts in CCM_CLIENTS. */
static int hp_list_matches(const struct hp *c)
{
	const struct handoff *h = c->h;
	const char *l = c->list;
	size_t n;
	int i;

	for (i = 0; i < h->nclients; i++) {
		if (h->clients[i].status != MATCH_OK)
			continue;
		if (l != c->list && *l++ != ' ')
			return 0;
		n = strlen(h->clients[i].name);
		if (strncmp(l, h->clients[i].name, n))
			return 0;
		l += n;
	}
	return !*l;
}

int handoff_parse(const char *text, size_t len, struct handoff *h,
		  struct errbuf *e)
{
	struct hp c;
	char key[64], val[HANDOFF_VALUE_MAX + 1];
	const char *p, *nl, *why;
	size_t off = 0, n, k, vlen = 0;
	int line = 0, i;

	memset(h, 0, sizeof(*h));
	memset(&c, 0, sizeof(c));
	c.h = h;
	if (len > HANDOFF_TEXT_MAX)
		return errbuf_set(e, -EFBIG, "state: larger than %d KiB",
				  HANDOFF_TEXT_MAX / 1024);
	while (off < len) {
		line++;
		p = text + off;
		nl = memchr(p, '\n', len - off);
		if (!nl)
			return errbuf_set(e, -EINVAL,
					  "state:%d: no newline at the end (truncated file?)", line);
		n = (size_t)(nl - p);
		off += n + 1;
		if (line == 1) {
			if (n != strlen(HANDOFF_HEADER) || memcmp(p, HANDOFF_HEADER, n))
				return errbuf_set(e, -EINVAL,
						  "state:1: not a ccm-early handoff file of format %d",
						  HANDOFF_FORMAT);
			continue;
		}
		for (k = 0; k < n && ((p[k] >= 'A' && p[k] <= 'Z') || (p[k] >= 'a' && p[k] <= 'z') ||
				      (p[k] >= '0' && p[k] <= '9') || p[k] == '_'); k++)
			;
		if (!k || k >= sizeof(key) || k == n || p[k] != '=')
			return errbuf_set(e, -EINVAL, "state:%d: expected KEY='VALUE'", line);
		memcpy(key, p, k);
		key[k] = 0;
		why = sh_unquote(p + k + 1, n - k - 1, val, &vlen);
		if (!why)
			why = hp_kv(&c, key, val, vlen);
		if (why)
			return errbuf_set(e, -EINVAL, "state:%d: %s: %s", line, key, why);
	}
	if (!line)
		return errbuf_set(e, -EINVAL, "state: empty file");
	/* Bits 0 and 1: the table's first two keys. */
	if (!(c.seen & 1u))
		return errbuf_set(e, -EINVAL, "state: CCM_STATE is missing");
	if (!(c.seen & 2u))
		return errbuf_set(e, -EINVAL, "state: CCM_NODE is missing");
	for (i = 0; i < h->nclients; i++)
		if (c.cseen[i] != C_ALL)
			return errbuf_set(e, -EINVAL,
					  "state: client '%s' lacks one of _STATUS, _PORTS, _PORT_SIZE",
					  h->clients[i].name);
	for (i = 0; i < CCM_LINKS_MAX; i++) {
		if (i < h->nlinks && (c.lseen[i] & LF_REQUIRED) != LF_REQUIRED)
			return errbuf_set(e, -EINVAL, "state: link %d lacks one of its keys", i);
		if (i >= h->nlinks && c.lseen[i])
			return errbuf_set(e, -EINVAL, "state: keys for link %d, but CCM_LINKS is %d",
					  i, h->nlinks);
	}
	if ((c.seen & HF_BIT_LIST) && !hp_list_matches(&c))
		return errbuf_set(e, -EINVAL,
				  "state: CCM_CLIENTS does not list exactly the clients whose status is ok");
	return 0;
}

/* --- files ------------------------------------------------------------------- */

/* mkdir -p with mode 0755; an existing directory is fine. */
int handoff_mkdir(const char *dir, struct errbuf *e)
{
	char p[HANDOFF_DIR_MAX + 1];
	size_t n = strlen(dir), i;

	if (!n || n > HANDOFF_DIR_MAX)
		return errbuf_set(e, -ENAMETOOLONG, "state directory '%.64s': bad length",
				  dir);
	memcpy(p, dir, n + 1);
	for (i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i])
			continue;
		p[i] = 0;
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return errbuf_set(e, -errno, "%s: cannot create: %s", p,
					  strerror(errno));
		p[i] = dir[i];
	}
	return 0;
}

/* dir/name replaced atomically by buf: temp file, fsync, rename, fsync of
 * the directory (without the last, a crash could bring the old file back). */
int handoff_replace_at(int dfd, const char *dir, const char *name, const char *buf, size_t n,
		       bool durable, struct errbuf *e)
{
	char tmp[32];
	const char *what;
	int fd, rc;

	/* Our pid makes the name ours: a leftover with it is from an earlier
	 * boot's process that died mid-write, and is safe to remove. */
	snprintf(tmp, sizeof(tmp), ".%s.%ld.tmp", name, (long)getpid());
	unlinkat(dfd, tmp, 0);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return errbuf_set(e, -errno, "%s: cannot create the temporary file %s: %s",
				  dir, tmp, strerror(errno));
	what = "fchmod";
	rc = fchmod(fd, 0644) < 0 ? -errno : 0;  /* whatever the umask */
	if (!rc) {
		what = "write";
		rc = write_all(fd, buf, n);
	}
	if (!rc && durable) {
		what = "fsync";
		rc = fsync(fd) < 0 ? -errno : 0;
	}
	if (close(fd) < 0 && !rc) {
		what = "close";
		rc = -errno;
	}
	if (!rc) {
		what = "rename";
		rc = renameat(dfd, tmp, dfd, name) < 0 ? -errno : 0;
	}
	if (rc) {
		unlinkat(dfd, tmp, 0);
		return errbuf_set(e, rc, "%s/%s: %s: %s", dir, name, what, strerror(-rc));
	}
	if (durable && fsync(dfd) < 0)
		return errbuf_set(e, -errno, "%s: fsync: %s", dir, strerror(errno));
	return 0;
}

int handoff_store_at(int dfd, const char *dir, const struct handoff *h, bool durable,
		     char *buf, size_t cap, struct errbuf *e)
{
	int n, rc = 0;

	/* JSON first: a tool that polls `state` for changes then finds
	 * state.json at least as new. */
	n = handoff_format_json(h, buf, cap);
	if (n >= 0)
		rc = handoff_replace_at(dfd, dir, "state.json", buf, (size_t)n, durable, e);
	if (n >= 0 && !rc)
		n = handoff_format_shell(h, buf, cap);
	if (n >= 0 && !rc)
		rc = handoff_replace_at(dfd, dir, "state", buf, (size_t)n, durable, e);
	if (n < 0)
		rc = errbuf_set(e, n, "handoff: cannot format the state (%s)",
				n == -ENOSPC ? "too large" : "invalid contents");
	return rc;
}

int handoff_write(const char *dir, const struct handoff *h, struct errbuf *e)
{
	char *buf;
	int dfd, rc = handoff_mkdir(dir, e);

	if (rc < 0)
		return rc;
	buf = malloc(HANDOFF_TEXT_MAX);
	if (!buf)
		return errbuf_set(e, -ENOMEM, "handoff: out of memory");
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		rc = errbuf_set(e, -errno, "%s: cannot open: %s", dir, strerror(errno));
	else
		rc = handoff_store_at(dfd, dir, h, true, buf, HANDOFF_TEXT_MAX, e);
	if (dfd >= 0)
		close(dfd);
	free(buf);
	return rc;
}

int handoff_read(const char *dir, struct handoff *h, struct errbuf *e)
{
	char path[HANDOFF_DIR_MAX + 8], *text;
	size_t len;
	int rc;

	if (strlen(dir) > HANDOFF_DIR_MAX)
		return errbuf_set(e, -ENAMETOOLONG, "state directory too long");
	snprintf(path, sizeof(path), "%s/state", dir);
	rc = kv_read_file(AT_FDCWD, path, &text, &len, e);
	if (rc == -ENOENT)
		return errbuf_set(e, rc, "%s: no handoff state (ccm-early has not written one)",
				  path);
	if (rc < 0)
		return rc;
	rc = handoff_parse(text, len, h, e);
	free(text);
	return rc;
}

void handoff_set_clients(struct handoff *h, const struct client_match *m,
			 int n, const struct client_set *local)
{
	struct handoff_client *c;
	int i;

	memset(h->clients, 0, sizeof(h->clients));
	memset(h->bad, 0, sizeof(h->bad));
	h->nclients = n < 0 ? 0 : n < HANDOFF_CLIENTS_MAX ? n : HANDOFF_CLIENTS_MAX;
	for (i = 0; i < h->nclients; i++) {
		c = &h->clients[i];
		memcpy(c->name, m[i].name, sizeof(c->name));
		c->status = m[i].status;
		if (c->status == MATCH_REMOTE_ONLY) {
			c->nports = m[i].remote_nports;
			c->port_size = m[i].remote_port_size;
		} else {
			c->nports = m[i].nports;
			c->port_size = m[i].port_size;
		}
	}
	h->nbad = 0;
	if (local)
		h->nbad = local->nbad < HANDOFF_BAD_MAX ? local->nbad : HANDOFF_BAD_MAX;
	for (i = 0; i < h->nbad; i++)
		memcpy(h->bad[i], local->bad[i].file, CLIENTS_FILE_MAX);
}
