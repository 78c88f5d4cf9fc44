/* clients: descriptor files, the descriptor directory, and matching the
 * local descriptors against the partner's.  The file syntax is config.c's
 * kv_parse; the rules are in clients.h. */
#include "conf/client_desc.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/name.h"
#include "base/num.h"
#include "conf/config.h"

#define D_PORTS     1u
#define D_PORT_SIZE 2u
#define D_UID       4u

struct desc_ctx {
	struct client_desc *d;
	unsigned seen;
};

/* Bytes with an optional K or M suffix (KiB, MiB); whole pages in range. */
static int parse_port_size(const char *v, uint32_t *out)
{
	char num[12];
	size_t n = strlen(v);
	unsigned shift = 0;
	uint32_t x;

	if (n && (v[n - 1] == 'K' || v[n - 1] == 'M')) {
		shift = v[n - 1] == 'K' ? 10 : 20;
		n--;
	}
	if (n >= sizeof(num))
		return -EINVAL;
	memcpy(num, v, n);
	num[n] = 0;
	/* Bound before shifting, so the shift cannot overflow. */
	if (num_parse_u32(num, 1, CCM_PORT_SIZE_MAX >> shift, &x) < 0)
		return -EINVAL;
	x <<= shift;
	if (x < CCM_PORT_SIZE_MIN || x % 4096)
		return -EINVAL;
	*out = x;
	return 0;
}

static int desc_kv(void *ctx, const char *key, const char *v, struct errbuf *e)
{
	struct desc_ctx *c = ctx;
	uint32_t x = 0, bit;
	int bad;

	if (!strcmp(key, "ports")) {
		bit = D_PORTS;
		bad = num_parse_u32(v, 1, CCM_PORTS_MAX, &x) < 0;
		c->d->nports = (uint16_t)x;
	} else if (!strcmp(key, "port-size")) {
		bit = D_PORT_SIZE;
		bad = parse_port_size(v, &x) < 0;
		c->d->port_size = x;
	} else if (!strcmp(key, "uid")) {
		bit = D_UID;
		/* (uid_t)-1 means "no change" to chown(): never a real user. */
		bad = num_parse_u32(v, 0, UINT32_MAX - 1, &x) < 0;
		c->d->uid = x;
	} else {
		return errbuf_set(e, -EINVAL, "unknown key '%.64s'", key);
	}
	if (c->seen & bit)
		return errbuf_set(e, -EINVAL, "'%s' is set twice", key);
	c->seen |= bit;
	if (!bad)
		return 0;
	if (bit == D_PORTS)
		return errbuf_set(e, -EINVAL, "ports: '%.32s' is not a number in 1..%d",
				  v, CCM_PORTS_MAX);
	if (bit == D_PORT_SIZE)
		return errbuf_set(e, -EINVAL,
				  "port-size: '%.32s' is not a multiple of 4096 in %u..%u (suffix K or M allowed)",
				  v, CCM_PORT_SIZE_MIN, CCM_PORT_SIZE_MAX);
	return errbuf_set(e, -EINVAL, "uid: '%.32s' is not a number in 0..%u", v,
			  UINT32_MAX - 1);
}

int clients_parse(const char *fname, const char *text, size_t len,
		  struct client_desc *out, struct errbuf *e)
{
	struct client_desc d;
	struct desc_ctx c = { &d, 0 };
	size_t n = strlen(fname);
	int rc;

	memset(&d, 0, sizeof(d));
	if (n < 5 || strcmp(fname + n - 5, ".conf"))
		return errbuf_set(e, -EINVAL, "%.64s: not a NAME.conf file", fname);
	n -= 5;
	if (n > CCM_NAME_MAX)
		return errbuf_set(e, -EINVAL, "%.64s: client name longer than %d",
				  fname, CCM_NAME_MAX);
	memcpy(d.name, fname, n);
	if (!client_name_valid(d.name, n))
		return errbuf_set(e, -EINVAL,
				  "%.64s: '%s' is not a client name (" CLIENT_NAME_RULE ")",
				  fname, d.name);
	rc = kv_parse(text, len, fname, desc_kv, &c, e);
	if (rc < 0)
		return rc;
	if (!(c.seen & D_PORTS))
		return errbuf_set(e, -EINVAL, "%s: 'ports' is missing", fname);
	if (!(c.seen & D_PORT_SIZE))
		return errbuf_set(e, -EINVAL, "%s: 'port-size' is missing", fname);
	*out = d;
	return 0;
}

/* Keep a refused file's name printable and free of blanks, shell, glob and
 * JSON metacharacters wherever it goes next (logs, the handoff file). */
static void record_bad(struct client_set *s, const char *fname, const char *why)
{
	struct client_bad *b;
	size_t i;

	if (s->nbad == CCM_CLIENTS_MAX)
		return;
	b = &s->bad[s->nbad++];
	for (i = 0; fname[i] && i < sizeof(b->file) - 1; i++) {
		char c = fname[i];

		b->file[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || c == '.' || c == '_' ||
			     c == '-' ? c : '_';
	}
	b->file[i] = 0;
	i = strnlen(why, sizeof(b->why) - 1);
	memcpy(b->why, why, i);
	b->why[i] = 0;
}

static int cmp_desc(const void *a, const void *b)
{
	return strcmp(((const struct client_desc *)a)->name,
		      ((const struct client_desc *)b)->name);
}

static int cmp_bad(const void *a, const void *b)
{
	return strcmp(((const struct client_bad *)a)->file,
		      ((const struct client_bad *)b)->file);
}

static int load_one(DIR *d, const char *name, struct client_desc *out,
		    struct errbuf *e)
{
	char *text;
	size_t len;
	int rc;

	rc = kv_read_file(dirfd(d), name, &text, &len, e);
	if (rc < 0)
		return rc;
	rc = clients_parse(name, text, len, out, e);
	free(text);
	return rc;
}

int clients_load_dir(const char *dir, struct client_set *out, struct errbuf *e)
{
	struct client_desc desc;
	struct errbuf fe;
	struct dirent *de;
	unsigned ports = 0;
	size_t n;
	DIR *d;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;  /* no directory: a node without clients */
		return errbuf_set(e, -errno, "%s: cannot open: %s", dir,
				  strerror(errno));
	}
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				rc = errbuf_set(e, -errno, "%s: readdir: %s", dir,
						strerror(errno));
			break;
		}
		n = strlen(de->d_name);
		if (de->d_name[0] == '.' || n < 5 ||
		    strcmp(de->d_name + n - 5, ".conf"))
			continue;
		if (load_one(d, de->d_name, &desc, &fe) < 0) {
			record_bad(out, de->d_name, fe.msg);
			continue;
		}
		if (out->count == CCM_CLIENTS_MAX) {
			rc = errbuf_set(e, -E2BIG, "%s: more than %d client descriptors",
					dir, CCM_CLIENTS_MAX);
			break;
		}
		out->c[out->count++] = desc;
		ports += desc.nports;
	}
	closedir(d);
	if (!rc && ports > CCM_PORTS_TOTAL)
		rc = errbuf_set(e, -E2BIG, "%s: clients ask for %u ports, more than %d in all",
				dir, ports, CCM_PORTS_TOTAL);
	if (rc < 0)
		return rc;
	qsort(out->c, (size_t)out->count, sizeof(out->c[0]), cmp_desc);
	qsort(out->bad, (size_t)out->nbad, sizeof(out->bad[0]), cmp_bad);
	return 0;
}

void clients_to_wire(const struct client_set *s, struct wire_clients *w)
{
	int i;

	memset(w, 0, sizeof(*w));
	for (i = 0; i < s->count && i < CCM_CLIENTS_MAX; i++) {
		memcpy(w->c[i].name, s->c[i].name, sizeof(w->c[i].name));
		w->c[i].nports = s->c[i].nports;
		w->c[i].port_size = s->c[i].port_size;
	}
	w->count = (uint16_t)i;
}
