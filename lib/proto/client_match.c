/* client_match: our clients against the partner's.  See client_match.h. */
#include "proto/client_match.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int cmp_match(const void *a, const void *b)
{
	return strcmp(((const struct client_match *)a)->name,
		      ((const struct client_match *)b)->name);
}

static int have_name(const struct client_match *m, int n, const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strncmp(m[i].name, name, CCM_NAME_MAX + 1))
			return 1;
	return 0;
}

int clients_match(const struct wire_clients *local,
		  const struct wire_clients *remote, struct client_match *out,
		  int max)
{
	int lcount = local->count < CCM_CLIENTS_MAX ? local->count : CCM_CLIENTS_MAX;
	int rcount = remote->count < CCM_CLIENTS_MAX ? remote->count : CCM_CLIENTS_MAX;
	const struct wire_client *r;
	struct client_match *m;
	int i, j, n = 0;

	for (i = 0; i < lcount; i++) {
		if (n == max)
			return -ENOSPC;
		m = &out[n++];
		memset(m, 0, sizeof(*m));
		memcpy(m->name, local->c[i].name, sizeof(m->name) - 1);
		m->nports = local->c[i].nports;
		m->port_size = local->c[i].port_size;
		m->status = MATCH_LOCAL_ONLY;
		for (j = 0; j < rcount; j++) {
			r = &remote->c[j];
			if (strncmp(r->name, m->name, sizeof(m->name)))
				continue;
			m->remote_nports = r->nports;
			m->remote_port_size = r->port_size;
			m->status = r->nports == m->nports && r->port_size == m->port_size ?
				    MATCH_OK : MATCH_SIZE_MISMATCH;
			break;
		}
	}
	for (j = 0; j < rcount; j++) {
		r = &remote->c[j];
		if (have_name(out, n, r->name))
			continue;
		if (n == max)
			return -ENOSPC;
		m = &out[n++];
		memset(m, 0, sizeof(*m));
		/* The remote name came off the wire: never trust its NUL. */
		memcpy(m->name, r->name, sizeof(m->name) - 1);
		m->remote_nports = r->nports;
		m->remote_port_size = r->port_size;
		m->status = MATCH_REMOTE_ONLY;
	}
	qsort(out, (size_t)n, sizeof(out[0]), cmp_match);
	return n;
}

static const char *const match_names[CLIENT_MATCH_NSTATUS] = {
	"ok", "local-only", "remote-only", "size-mismatch",
};

const char *client_match_name(enum client_match_status s)
{
	return (unsigned)s < CLIENT_MATCH_NSTATUS ? match_names[s] : "?";
}

int client_match_parse(const char *name, enum client_match_status *s)
{
	int i;

	for (i = 0; i < CLIENT_MATCH_NSTATUS; i++)
		if (!strcmp(match_names[i], name)) {
			*s = (enum client_match_status)i;
			return 0;
		}
	return -EINVAL;
}
