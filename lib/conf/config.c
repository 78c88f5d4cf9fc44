/* config: settings from the command line and the configuration file, one
 * table for both; and the `key = value` lexer the client descriptors share.
 * The file format is documented in config.h. */
#include "conf/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/instance.h"
#include "base/num.h"
#include "proto/wire.h"

/* --- the lexer --------------------------------------------------------- */

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Trim blanks in place from [*s, *s + *n). */
static void trim(char **s, size_t *n)
{
	while (*n && is_blank(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && is_blank((*s)[*n - 1]))
		(*n)--;
}

/* One line, already copied into buf (n bytes, no newline); 0 = go on. */
static int kv_line(char *buf, size_t n, const char *origin, int line,
		   kv_fn fn, void *ctx, struct errbuf *e)
{
	char *key = buf, *val, *eq;
	size_t i, klen, vlen;
	int rc;

	if (n && buf[n - 1] == '\r')
		n--;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c == 0)
			return errbuf_set(e, -EINVAL, "%s:%d: NUL byte", origin, line);
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return errbuf_set(e, -EINVAL, "%s:%d: control character 0x%02x",
					  origin, line, c);
	}
	trim(&key, &n);
	if (n == 0 || key[0] == '#')
		return 0;
	eq = memchr(key, '=', n);
	if (!eq)
		return errbuf_set(e, -EINVAL, "%s:%d: expected 'key = value'",
				  origin, line);
	klen = (size_t)(eq - key);
	val = eq + 1;
	vlen = n - klen - 1;
	trim(&key, &klen);
	trim(&val, &vlen);
	if (klen == 0)
		return errbuf_set(e, -EINVAL, "%s:%d: missing key before '='",
				  origin, line);
	if (vlen && val[0] == '"') {
		if (vlen < 2 || val[vlen - 1] != '"' ||
		    memchr(val + 1, '"', vlen - 2))
			return errbuf_set(e, -EINVAL,
					  "%s:%d: badly quoted value (no escapes; one pair of '\"')",
					  origin, line);
		val++;
		vlen -= 2;
	}
	key[klen] = 0;
	val[vlen] = 0;
	rc = fn(ctx, key, val, e);
	if (rc < 0)
		return errbuf_prefix(e, rc, "%s:%d", origin, line);
	return 0;
}

int kv_parse(const char *text, size_t len, const char *origin, kv_fn fn,
	     void *ctx, struct errbuf *e)
{
	char buf[KV_LINE_MAX + 1];
	size_t off = 0, n;
	const char *nl;
	int line = 0, rc;

	if (len > KV_TEXT_MAX)
		return errbuf_set(e, -EFBIG, "%s: larger than %u KiB", origin,
				  KV_TEXT_MAX / 1024);
	while (off < len) {
		line++;
		nl = memchr(text + off, '\n', len - off);
		n = nl ? (size_t)(nl - (text + off)) : len - off;
		/* The limit excludes the line end, CRLF included; buf has
		 * the one byte more that a CR needs. */
		if (n - (n && text[off + n - 1] == '\r') > KV_LINE_MAX)
			return errbuf_set(e, -EINVAL, "%s:%d: line longer than %d bytes",
					  origin, line, KV_LINE_MAX);
		memcpy(buf, text + off, n);
		rc = kv_line(buf, n, origin, line, fn, ctx, e);
		if (rc < 0)
			return rc;
		off += n + 1;
	}
	return 0;
}

int kv_read_file(int dirfd, const char *path, char **text, size_t *len,
		 struct errbuf *e)
{
	struct stat st;
	char *buf = NULL;
	size_t n = 0, cap;
	ssize_t r;
	int fd, rc;

	/* O_NONBLOCK: a FIFO in the way must not hang the boot. */
	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return errbuf_set(e, -errno, "%s: cannot open: %s", path,
				  strerror(errno));
	if (fstat(fd, &st) < 0) {
		rc = errbuf_set(e, -errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = errbuf_set(e, -EINVAL, "%s: not a regular file", path);
		goto out;
	}
	/* Sized by the fstat (a fixed 64 KiB buffer is an mmap and a munmap
	 * per file), grown to the cap if the file turns out longer: one
	 * byte past the cap notices a file that is too large, even one that
	 * grew after the fstat. */
	cap = (size_t)st.st_size < KV_TEXT_MAX ? (size_t)st.st_size + 1 : KV_TEXT_MAX + 1;
	buf = malloc(cap);
	if (!buf) {
		rc = errbuf_set(e, -ENOMEM, "%s: out of memory", path);
		goto out;
	}
	while (n <= KV_TEXT_MAX) {
		if (n == cap) {
			char *more = realloc(buf, KV_TEXT_MAX + 1);

			if (!more) {
				rc = errbuf_set(e, -ENOMEM, "%s: out of memory", path);
				goto out;
			}
			buf = more;
			cap = KV_TEXT_MAX + 1;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = errbuf_set(e, -errno, "%s: read: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > KV_TEXT_MAX) {
		rc = errbuf_set(e, -EFBIG, "%s: larger than %u KiB", path,
				KV_TEXT_MAX / 1024);
		goto out;
	}
	buf[n] = 0;
	*text = buf;
	*len = n;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

/* --- the settings ------------------------------------------------------ */

typedef int (*config_parser)(struct ccm_config *c, const char *key,
			     const char *v, struct errbuf *e);

static int set_node_id(struct ccm_config *c, const char *key, const char *v,
		       struct errbuf *e)
{
	if (num_parse_u32(v, 1, UINT32_MAX - 1, &c->node_id) < 0)
		return errbuf_set(e, -EINVAL,
				  "%s: '%.64s' is not a number in 1..%u", key, v,
				  UINT32_MAX - 1);
	return 0;
}

static int set_addr(struct tp_addr *a, const char *key, const char *v,
		    struct errbuf *e)
{
	int rc = tp_parse_addr(v, CCM_DEFAULT_PORT, a, e);

	return rc < 0 ? errbuf_prefix(e, rc, "%s", key) : 0;
}

static int set_partner_node(struct ccm_config *c, const char *key, const char *v,
			    struct errbuf *e)
{
	if (num_parse_u32(v, 1, UINT32_MAX - 1, &c->partner_node) < 0)
		return errbuf_set(e, -EINVAL,
				  "%s: '%.64s' is not a number in 1..%u", key, v,
				  UINT32_MAX - 1);
	return 0;
}

static int set_listen(struct ccm_config *c, const char *key, const char *v,
		      struct errbuf *e)
{
	return set_addr(&c->listen, key, v, e);
}

static int set_partner(struct ccm_config *c, const char *key, const char *v,
		       struct errbuf *e)
{
	return set_addr(&c->partner, key, v, e);
}

static int set_transport(struct ccm_config *c, const char *key, const char *v,
			 struct errbuf *e)
{
	if (strcmp(v, "tcp") && strcmp(v, "rdma"))
		return errbuf_set(e, -EINVAL, "%s: '%.64s' is neither tcp nor rdma",
				  key, v);
	strcpy(c->transport, v);
	return 0;
}

static int parse_device(char dst[CONFIG_DEVICE_MAX + 1], const char *key, const char *v,
			struct errbuf *e)
{
	size_t n = strlen(v);
	const char *p;

	/* Device names end up in sysfs paths: keep to the characters the
	 * kernel's drivers use. */
	for (p = v; *p; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
		    !(*p >= '0' && *p <= '9') && *p != '_' && *p != '-' && *p != '.')
			break;
	if (*p || n > CONFIG_DEVICE_MAX || !strcmp(v, ".") || !strcmp(v, ".."))
		return errbuf_set(e, -EINVAL,
				  "%s: '%.64s' is not a device name ([A-Za-z0-9_.-], at most %d)",
				  key, v, CONFIG_DEVICE_MAX);
	/* All of it: a longer name given before leaves nothing behind. */
	memset(dst, 0, CONFIG_DEVICE_MAX + 1);
	memcpy(dst, v, n);
	return 0;
}

static int set_device(struct ccm_config *c, const char *key, const char *v,
		      struct errbuf *e)
{
	return parse_device(c->device, key, v, e);
}

/* A path: the file lexer already refuses control characters, the command
 * line does not. */
static int set_path(char *dst, int may_be_empty, const char *key,
		    const char *v, struct errbuf *e)
{
	size_t n = strlen(v), i;

	if (!n && !may_be_empty)
		return errbuf_set(e, -EINVAL, "%s: empty path", key);
	if (n > CONFIG_PATH_MAX)
		return errbuf_set(e, -EINVAL, "%s: path longer than %d bytes", key,
				  CONFIG_PATH_MAX);
	for (i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return errbuf_set(e, -EINVAL,
					  "%s: path contains a control character", key);
	memcpy(dst, v, n + 1);
	return 0;
}

static int set_clients(struct ccm_config *c, const char *key, const char *v,
		       struct errbuf *e)
{
	return set_path(c->clients_dir, 0, key, v, e);
}

static int set_state_dir(struct ccm_config *c, const char *key, const char *v,
			 struct errbuf *e)
{
	return set_path(c->state_dir, 0, key, v, e);
}

static int set_psk_file(struct ccm_config *c, const char *key, const char *v,
			struct errbuf *e)
{
	return set_path(c->psk_file, 1, key, v, e);
}

static int set_psk_accept_file(struct ccm_config *c, const char *key, const char *v,
			       struct errbuf *e)
{
	return set_path(c->psk_accept_file, 1, key, v, e);
}

static int set_cluster(struct ccm_config *c, const char *key, const char *v,
		       struct errbuf *e)
{
	if (strlen(v) > CCM_CLUSTER_MAX || !wire_valid_cluster_name(v))
		return errbuf_set(e, -EINVAL,
				  "%s: '%.64s' is not a cluster name (printable, no spaces, 1..%d bytes)",
				  key, v, CCM_CLUSTER_MAX);
	strcpy(c->cluster, v);
	return 0;
}

static int set_timeout(struct ccm_config *c, const char *key, const char *v,
		       struct errbuf *e)
{
	if (num_parse_u32(v, 0, 86400, &c->timeout_s) < 0)
		return errbuf_set(e, -EINVAL,
				  "%s: '%.64s' is not a number of seconds in 0..86400",
				  key, v);
	return 0;
}

static int set_proto_versions(struct ccm_config *c, const char *key,
			      const char *v, struct errbuf *e)
{
	char lo[8] = "", *hi;
	uint32_t a, b;
	size_t n = strcspn(v, "-");

	if (n < sizeof(lo))
		memcpy(lo, v, n);
	hi = v[n] ? (char *)v + n + 1 : lo;
	if (n >= sizeof(lo) || num_parse_u32(lo, 1, 65535, &a) < 0 ||
	    num_parse_u32(hi, 1, 65535, &b) < 0 || a > b)
		return errbuf_set(e, -EINVAL,
				  "%s: '%.64s' is not MIN-MAX with 1 <= MIN <= MAX <= 65535",
				  key, v);
	c->ver_min = (uint16_t)a;
	c->ver_max = (uint16_t)b;
	return 0;
}

static int set_heartbeat_ms(struct ccm_config *c, const char *key, const char *v,
			    struct errbuf *e)
{
	if (num_parse_u32(v, 10, 60000, &c->heartbeat_ms) < 0)
		return errbuf_set(e, -EINVAL, "%s: '%.64s' is not a number of milliseconds "
				  "in 10..60000", key, v);
	return 0;
}

static int set_heartbeat_misses(struct ccm_config *c, const char *key, const char *v,
				struct errbuf *e)
{
	if (num_parse_u32(v, 1, 1000, &c->heartbeat_misses) < 0)
		return errbuf_set(e, -EINVAL, "%s: '%.64s' is not a count in 1..1000", key, v);
	return 0;
}

/* LOCAL=PARTNER[,device=DEV][,priority=N] */
static int set_link(struct ccm_config *c, const char *key, const char *v,
		    struct errbuf *e)
{
	struct ccm_link l;
	char buf[256], *opt, *eq, *save = NULL;
	uint32_t prio;
	int rc;

	memset(&l, 0, sizeof(l));  /* padding too: settings are compared whole */
	if (c->nlinks == CCM_LINKS_MAX)
		return errbuf_set(e, -EINVAL, "%s: more than %d links", key, CCM_LINKS_MAX);
	if (strlen(v) >= sizeof(buf))
		return errbuf_set(e, -EINVAL, "%s: longer than %zu bytes", key, sizeof(buf) - 1);
	strcpy(buf, v);
	opt = strchr(buf, ',');
	if (opt)
		*opt++ = 0;
	eq = strchr(buf, '=');
	if (!eq)
		return errbuf_set(e, -EINVAL, "%s: '%.64s' is not LOCAL=PARTNER[,device=DEV]"
				  "[,priority=N]", key, v);
	*eq = 0;
	if ((rc = set_addr(&l.local, key, buf, e)) < 0 ||
	    (rc = set_addr(&l.partner, key, eq + 1, e)) < 0)
		return rc;
	for (opt = opt ? strtok_r(opt, ",", &save) : NULL; opt; opt = strtok_r(NULL, ",", &save)) {
		if (!strncmp(opt, "device=", 7)) {
			if ((rc = parse_device(l.device, key, opt + 7, e)) < 0)
				return rc;
		} else if (!strncmp(opt, "priority=", 9)) {
			if (num_parse_u32(opt + 9, 0, 255, &prio) < 0)
				return errbuf_set(e, -EINVAL, "%s: priority '%.16s' is not in 0..255",
						  key, opt + 9);
			l.priority = (uint8_t)prio;
		} else {
			return errbuf_set(e, -EINVAL, "%s: unknown option '%.32s' (device=, priority=)",
					  key, opt);
		}
	}
	c->links[c->nlinks++] = l;
	return 0;
}

static int set_link_policy(struct ccm_config *c, const char *key, const char *v,
			   struct errbuf *e)
{
	if (!strcmp(v, "balance"))
		c->link_policy = LINK_POLICY_BALANCE;
	else if (!strcmp(v, "standby"))
		c->link_policy = LINK_POLICY_STANDBY;
	else
		return errbuf_set(e, -EINVAL, "%s: '%.64s' is neither balance nor standby", key, v);
	return 0;
}

static int set_ms(uint32_t *dst, uint32_t min, uint32_t max, const char *key, const char *v,
		  struct errbuf *e)
{
	if (num_parse_u32(v, min, max, dst) < 0)
		return errbuf_set(e, -EINVAL, "%s: '%.64s' is not a number of milliseconds "
				  "in %u..%u", key, v, min, max);
	return 0;
}

static int set_link_heartbeat_ms(struct ccm_config *c, const char *key, const char *v,
				 struct errbuf *e)
{
	return set_ms(&c->link_heartbeat_ms, 1, 60000, key, v, e);
}

static int set_link_misses(struct ccm_config *c, const char *key, const char *v,
			   struct errbuf *e)
{
	if (num_parse_u32(v, 1, 1000, &c->link_misses) < 0)
		return errbuf_set(e, -EINVAL, "%s: '%.64s' is not a count in 1..1000", key, v);
	return 0;
}

static int set_link_damp_ms(struct ccm_config *c, const char *key, const char *v,
			    struct errbuf *e)
{
	return set_ms(&c->link_damp_ms, 0, 600000, key, v, e);
}

static int set_metrics_dir(struct ccm_config *c, const char *key, const char *v,
			   struct errbuf *e)
{
	return set_path(c->metrics_dir, 1, key, v, e);
}

static int set_msg_hold_ms(struct ccm_config *c, const char *key, const char *v,
			   struct errbuf *e)
{
	return set_ms(&c->msg_hold_ms, 0, 86400000, key, v, e);
}

/* The one table: index i is bit 1u << i of ccm_config.set (enum config_key). */
static const struct {
	const char *key;
	config_parser parse;
} config_table[] = {
	{ "node-id", set_node_id },
	{ "listen", set_listen },
	{ "partner", set_partner },
	{ "transport", set_transport },
	{ "device", set_device },
	{ "clients", set_clients },
	{ "state-dir", set_state_dir },
	{ "psk-file", set_psk_file },
	{ "cluster", set_cluster },
	{ "timeout", set_timeout },
	{ "proto-versions", set_proto_versions },
	{ "heartbeat-ms", set_heartbeat_ms },
	{ "heartbeat-misses", set_heartbeat_misses },
	{ "link", set_link },
	{ "link-policy", set_link_policy },
	{ "link-heartbeat-ms", set_link_heartbeat_ms },
	{ "link-misses", set_link_misses },
	{ "link-damp-ms", set_link_damp_ms },
	{ "partner-node", set_partner_node },
	{ "psk-accept-file", set_psk_accept_file },
	{ "msg-hold-ms", set_msg_hold_ms },
	{ "metrics-dir", set_metrics_dir },
};
#define CONFIG_NKEYS (int)(sizeof(config_table) / sizeof(config_table[0]))

static int config_find(const char *key)
{
	int i;

	for (i = 0; i < CONFIG_NKEYS; i++)
		if (!strcmp(config_table[i].key, key))
			return i;
	return -1;
}

void config_defaults(struct ccm_config *c, const char *instance)
{
	memset(c, 0, sizeof(*c));
	if (instance && instance_name_valid(instance))
		memcpy(c->instance, instance, strlen(instance) + 1);
	c->listen.port = CCM_DEFAULT_PORT;
	c->partner.port = CCM_DEFAULT_PORT;
	strcpy(c->transport, "tcp");
	/* Both fit: instance.h's paths are as long as a config path at most,
	 * and one that does not is "" (config_check says so). */
	if (instance_clients_dir(c->instance, c->clients_dir, sizeof(c->clients_dir)) < 0)
		c->clients_dir[0] = '\0';
	if (instance_state_dir(c->instance, c->state_dir, sizeof(c->state_dir)) < 0)
		c->state_dir[0] = '\0';
	strcpy(c->cluster, "ccm");
	c->ver_min = CCM_PROTO_MIN;
	c->ver_max = CCM_PROTO_MAX;
	c->heartbeat_ms = 100;
	c->heartbeat_misses = 5;
	c->link_policy = LINK_POLICY_BALANCE;
	c->link_heartbeat_ms = 10;
	c->link_misses = 3;
	c->link_damp_ms = 1000;
	c->msg_hold_ms = 30000;
}

void config_clear_links(struct ccm_config *c)
{
	c->nlinks = 0;
	c->set &= ~(unsigned)CFG_LINK;
}

const char *config_policy_name(enum link_policy p)
{
	return p == LINK_POLICY_STANDBY ? "standby" : "balance";
}

int config_links(const struct ccm_config *c, struct ccm_link out[CCM_LINKS_MAX])
{
	if (c->nlinks) {
		memcpy(out, c->links, sizeof(c->links[0]) * (size_t)c->nlinks);
		return c->nlinks;
	}
	memset(&out[0], 0, sizeof(out[0]));
	out[0].local = c->listen;
	out[0].partner = c->partner;
	memcpy(out[0].device, c->device, sizeof(out[0].device));
	return 1;
}

int config_set(struct ccm_config *c, const char *key, const char *value,
	       struct errbuf *e)
{
	int i = config_find(key), rc;

	if (i < 0)
		return errbuf_set(e, -EINVAL, "unknown setting '%.64s'", key);
	rc = config_table[i].parse(c, key, value, e);
	if (rc < 0)
		return rc;
	c->set |= 1u << i;
	return 0;
}

struct config_file_ctx {
	struct ccm_config *c;
	unsigned seen;
};

static int config_kv(void *ctx, const char *key, const char *value,
		     struct errbuf *e)
{
	struct config_file_ctx *f = ctx;
	int i = config_find(key);

	if (i < 0)
		return errbuf_set(e, -EINVAL, "unknown setting '%.64s'", key);
	/* `link` is a list: each line adds one. */
	if ((f->seen & (1u << i)) && (1u << i) != CFG_LINK)
		return errbuf_set(e, -EINVAL, "'%s' is set twice", key);
	f->seen |= 1u << i;
	return config_set(f->c, key, value, e);
}

int config_parse_text(struct ccm_config *c, const char *text, size_t len,
		      const char *origin, struct errbuf *e)
{
	struct config_file_ctx f = { c, 0 };

	return kv_parse(text, len, origin, config_kv, &f, e);
}

int config_load_file(struct ccm_config *c, const char *path, struct errbuf *e)
{
	char *text;
	size_t len;
	int rc;

	rc = kv_read_file(AT_FDCWD, path, &text, &len, e);
	if (rc < 0)
		return rc;
	rc = config_parse_text(c, text, len, path, e);
	free(text);
	return rc;
}

int config_check(const struct ccm_config *c, struct errbuf *e)
{
	char a[80];

	if (!(c->set & CFG_NODE_ID))
		return errbuf_set(e, -EINVAL, "node-id is not set");
	if (!c->clients_dir[0] || !c->state_dir[0])
		return errbuf_set(e, -ENAMETOOLONG, "instance %s: its default %s is too long "
				  "(set it)", c->instance, c->state_dir[0] ? "clients" : "state-dir");
	if (c->partner_node == c->node_id)
		return errbuf_set(e, -EINVAL, "partner-node is this node's own id (%u)", c->node_id);
	if (c->psk_accept_file[0] && !c->psk_file[0])
		return errbuf_set(e, -EINVAL, "psk-accept-file without psk-file: a second key "
				  "accepted needs a first to prove with");
	if (c->nlinks) {
		if (c->set & (CFG_LISTEN | CFG_PARTNER | CFG_DEVICE))
			return errbuf_set(e, -EINVAL, "give either link or listen/partner/device, "
					  "not both");
		for (int i = 0; i < c->nlinks; i++) {
			const struct ccm_link *l = &c->links[i];

			if (!strcmp(l->local.host, l->partner.host) && l->local.port == l->partner.port)
				return errbuf_set(e, -EINVAL, "link %d: LOCAL and PARTNER are the same "
						  "address (%s)", i, tp_format_addr(&l->local, a, sizeof(a)));
			for (int j = 0; j < i; j++)
				if (!strcmp(l->local.host, c->links[j].local.host) &&
				    l->local.port == c->links[j].local.port)
					return errbuf_set(e, -EINVAL, "links %d and %d both listen on %s",
							  j, i, tp_format_addr(&l->local, a, sizeof(a)));
		}
		return 0;
	}
	if (!(c->set & CFG_LISTEN))
		return errbuf_set(e, -EINVAL, "listen is not set");
	if (!(c->set & CFG_PARTNER))
		return errbuf_set(e, -EINVAL, "partner is not set");
	if (!strcmp(c->listen.host, c->partner.host) &&
	    c->listen.port == c->partner.port)
		return errbuf_set(e, -EINVAL,
				  "listen and partner are the same address (%s)",
				  tp_format_addr(&c->listen, a, sizeof(a)));
	return 0;
}
