#include "daemon/ports.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void port_release(struct port *p, uint32_t size, struct tp *const *tps, int ntp)
{
	for (int l = 0; l < ntp; l++)
		if (p->local[l].len && tps[l])
			tp_unexpose(tps[l], &p->local[l]);
	if (p->map)
		munmap(p->map, size);
	if (p->memfd >= 0)
		close(p->memfd);
	if (p->event >= 0)
		close(p->event);
	if (p->event_wr >= 0)
		close(p->event_wr);
	memset(p, 0, sizeof(*p));
	p->memfd = p->event = p->event_wr = -1;
	p->link = -1;
}

static int port_create(struct port *p, struct tp *const *tps, int ntp, const char *client,
		       int index, uint32_t size, struct errbuf *e)
{
	char name[CCM_NAME_MAX + 16];
	int r, ends[2];

	memset(p, 0, sizeof(*p));
	p->memfd = p->event = p->event_wr = -1;
	p->link = -1;
	snprintf(name, sizeof(name), "ccm-%s-%d", client, index);
	p->memfd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (p->memfd < 0)
		return errbuf_set(e, -errno, "port %s: memfd_create: %s", name, strerror(errno));
	/* The size is fixed for the port's life: seal it, so neither side of
	 * the mapping can be truncated under the partner's one-sided ops. */
	if (ftruncate(p->memfd, size) < 0 ||
	    fcntl(p->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
		r = errbuf_set(e, -errno, "port %s: sizing: %s", name, strerror(errno));
		goto fail;
	}
	p->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, p->memfd, 0);
	if (p->map == MAP_FAILED) {
		p->map = NULL;
		r = errbuf_set(e, -errno, "port %s: mmap: %s", name, strerror(errno));
		goto fail;
	}
	/* Not an eventfd: the client would share its open file description,
	 * and a client that saturates the counter and clears O_NONBLOCK makes
	 * our write block.  A pipe's write end is a description of its own
	 * that no client ever holds. */
	if (pipe2(ends, O_CLOEXEC | O_NONBLOCK) < 0) {
		r = errbuf_set(e, -errno, "port %s: pipe: %s", name, strerror(errno));
		goto fail;
	}
	p->event = ends[0];
	p->event_wr = ends[1];
	/* The same pages on every link: any link can carry any operation. */
	for (int l = 0; l < ntp; l++) {
		r = tp_expose(tps[l], p->map, size, TP_EXPOSE_WRITE, &p->local[l]);
		if (r < 0) {
			errbuf_set(e, r, "port %s: cannot expose the window on link %d: %s", name, l,
				   strerror(-r));
			goto fail;
		}
	}
	return 0;
fail:
	port_release(p, size, tps, ntp);
	return r;
}

int ports_add_client(struct port_table *pt, struct tp *const *tps, int ntp, const char *name,
		     uint16_t nports, uint32_t port_size, struct errbuf *e)
{
	struct port_client *pc;
	int r;

	if (pt->nclients == CCM_CLIENTS_MAX)
		return errbuf_set(e, -ENOSPC, "client %s: too many clients", name);
	if (!nports || nports > CCM_PORTS_MAX)
		return errbuf_set(e, -EINVAL, "client %s: %u ports", name, nports);
	pc = &pt->c[pt->nclients];
	memset(pc, 0, sizeof(*pc));
	snprintf(pc->name, sizeof(pc->name), "%s", name);
	pc->port_size = port_size;
	for (int i = 0; i < nports; i++) {
		r = port_create(&pc->port[i], tps, ntp, name, i, port_size, e);
		if (r < 0) {
			while (i-- > 0)
				port_release(&pc->port[i], port_size, tps, ntp);
			return r;
		}
		pc->nports = (uint16_t)(i + 1);
	}
	pt->nclients++;
	return 0;
}

static bool is_shared(const char *const *shared, const char *name)
{
	for (; *shared; shared++)
		if (!strcmp(*shared, name))
			return true;
	return false;
}

void ports_to_wire(struct port_table *pt, const char *const *shared, int link,
		   struct wire_ports *out)
{
	memset(out, 0, sizeof(*out));
	out->link = (uint8_t)link;
	for (int c = 0; c < pt->nclients; c++) {
		struct port_client *pc = &pt->c[c];

		if (!is_shared(shared, pc->name))
			continue;
		for (int i = 0; i < pc->nports && out->count < CCM_PORTS_TOTAL; i++) {
			struct wire_port *w = &out->p[out->count];

			pc->port[i].rel.slot = out->count++;
			memcpy(w->client, pc->name, sizeof(w->client));
			w->index = (uint16_t)i;
			w->addr = pc->port[i].local[link].addr;
			w->rkey = pc->port[i].local[link].rkey;
			w->len = pc->port[i].local[link].len;
		}
	}
}

struct port_client *ports_find(struct port_table *pt, const char *name)
{
	for (int c = 0; c < pt->nclients; c++)
		if (strcmp(pt->c[c].name, name) == 0)
			return &pt->c[c];
	return NULL;
}

void ports_forget_remote(struct port_table *pt)
{
	for (int c = 0; c < pt->nclients; c++)
		for (int i = 0; i < pt->c[c].nports; i++) {
			struct port *p = &pt->c[c].port[i];

			p->have_remote = 0;
			p->link = -1;
			p->load = p->rel.tx_seq = p->rel.tx_acked = p->rel.rx_seq = p->rel.rx_done = 0;
			p->rel.tx_window = p->rel.rx_pending = 0;
			p->rel.rx_run_end = p->rel.rx_run_len = p->rel.rx_echo = 0;
			p->rel.tx_run_from = p->rel.tx_run_to = p->rel.tx_echo = 0;
		}
}

/* The port entry k of `in` names, checked; NULL and e set if it is wrong. */
static struct port *entry_port(struct port_table *pt, const char *const *shared,
			       const struct wire_ports *in, int k, struct errbuf *e)
{
	const struct wire_port *w = &in->p[k];
	struct port_client *pc = ports_find(pt, w->client);

	if (!pc || !is_shared(shared, w->client)) {
		errbuf_set(e, -EBADMSG, "PORTS[%d]: client '%s' is not shared here", k, w->client);
		return NULL;
	}
	if (w->index >= pc->nports) {
		errbuf_set(e, -EBADMSG, "PORTS[%d]: client '%s' has %u ports, not %u", k, w->client,
			   pc->nports, w->index + 1);
		return NULL;
	}
	if (w->len != pc->port_size) {
		errbuf_set(e, -EBADMSG, "PORTS[%d]: %s port %u is %u bytes, ours %u", k, w->client,
			   w->index, w->len, pc->port_size);
		return NULL;
	}
	return &pc->port[w->index];
}

int ports_set_remote(struct port_table *pt, const char *const *shared, const struct wire_ports *in,
		     int first, struct errbuf *e)
{
	unsigned bit = 1u << in->link;
	int expected = 0;

	for (int c = 0; c < pt->nclients; c++)
		if (is_shared(shared, pt->c[c].name))
			expected += pt->c[c].nports;
	if (in->count != expected)
		return errbuf_set(e, -EBADMSG, "PORTS: %u ports given, %d expected", in->count,
				  expected);
	if (in->link >= CCM_LINKS_MAX)
		return errbuf_set(e, -EBADMSG, "PORTS: link %u", in->link);
	/* Check everything before changing anything.  Each port once: with
	 * the count equal to the ports we share, that means all of them. */
	for (int k = 0; k < in->count; k++) {
		struct port *p = entry_port(pt, shared, in, k, e);

		if (!p)
			return -EBADMSG;
		if (!first && (p->rel.peer_slot != k || !p->have_remote))
			return errbuf_set(e, -EBADMSG, "LINK_JOIN[%d]: %s port %u is not where PORTS "
					  "had it", k, in->p[k].client, in->p[k].index);
		for (int j = 0; j < k; j++)
			if (!strcmp(in->p[j].client, in->p[k].client) &&
			    in->p[j].index == in->p[k].index)
				return errbuf_set(e, -EBADMSG, "PORTS[%d]: %s port %u given twice",
						  k, in->p[k].client, in->p[k].index);
	}
	if (first)
		ports_forget_remote(pt);
	for (int k = 0; k < in->count; k++) {
		struct port *p = entry_port(pt, shared, in, k, e);
		const struct wire_port *w = &in->p[k];

		p->remote[in->link] = (struct tp_remote){ w->addr, w->rkey, w->len };
		p->have_remote |= bit;
		p->rel.peer_slot = (uint16_t)k;
	}
	return 0;
}

void ports_destroy(struct port_table *pt, struct tp *const *tps, int ntp)
{
	for (int c = 0; c < pt->nclients; c++)
		for (int i = 0; i < pt->c[c].nports; i++)
			port_release(&pt->c[c].port[i], pt->c[c].port_size, tps, ntp);
	pt->nclients = 0;
}
