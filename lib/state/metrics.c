#include "state/metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "conf/client_desc.h"

struct mout {
	char *p;
	size_t cap, len;
	bool full;
};

static void put(struct mout *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len)
		o->full = true;
	else
		o->len += (size_t)n;
}

/* A label value as the format wants it: \, " and newline escaped. */
static void esc(const char *in, char *out, size_t cap)
{
	size_t k = 0;

	for (; *in && k + 3 < cap; in++) {
		if (*in == '\\' || *in == '"') {
			out[k++] = '\\';
			out[k++] = *in;
		} else if (*in == '\n') {
			out[k++] = '\\';
			out[k++] = 'n';
		} else {
			out[k++] = *in;
		}
	}
	out[k] = 0;
}

static void family(struct mout *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One family with one sample: labels are the instance's. */
static void one(struct mout *o, const char *lab, const char *name, const char *type,
		const char *help, uint64_t v)
{
	family(o, name, type, help);
	put(o, "%s{%s} %llu\n", name, lab, (unsigned long long)v);
}

static void seconds(struct mout *o, const char *name, const char *labels, uint64_t ms)
{
	put(o, "%s{%s} %llu.%03llu\n", name, labels, (unsigned long long)(ms / 1000),
	    (unsigned long long)(ms % 1000));
}

/* The per-link families that are plain numbers of handoff_link, in the
 * order link_values gives them. */
static const struct {
	const char *name, *type, *help;
} link_fam[] = {
	{ "ccm_link_ports", "gauge", "Ports the link carries now." },
	{ "ccm_link_priority", "gauge", "The link's configured priority (higher is preferred)." },
	{ "ccm_link_operations_total", "counter", "Clients' one-sided READs and WRITEs posted on the link." },
	{ "ccm_link_bytes_total", "counter", "Bytes those READs and WRITEs carried." },
	{ "ccm_link_messages_total", "counter", "Client messages sent on the link, resends included." },
	{ "ccm_link_downs_total", "counter", "Times the link went down after it had worked." },
	{ "ccm_link_reissued_operations_total", "counter",
	  "Operations reissued on another link after this one failed." },
};

static void links(struct mout *o, const struct handoff *h, const char *lab)
{
	char ll[CCM_LINKS_MAX][192];

	for (int i = 0; i < h->nlinks; i++)
		snprintf(ll[i], sizeof(ll[i]), "%s,link=\"%d\"", lab, i);
	family(o, "ccm_link_up", "gauge", "1 when the link is up and may carry ports.");
	for (int i = 0; i < h->nlinks; i++)
		put(o, "ccm_link_up{%s} %d\n", ll[i], h->links[i].state == LINK_UP);
	family(o, "ccm_link_state", "gauge", "The link's state: 1 for the one it is in.");
	for (int i = 0; i < h->nlinks; i++)
		for (int st = 0; st <= LINK_UP; st++)
			put(o, "ccm_link_state{%s,state=\"%s\"} %d\n", ll[i],
			    link_state_name((enum link_state)st), (int)h->links[i].state == st);
	family(o, "ccm_link_state_changed_timestamp_seconds", "gauge",
	       "When the link's state last changed (seconds since the epoch).");
	for (int i = 0; i < h->nlinks; i++)
		put(o, "ccm_link_state_changed_timestamp_seconds{%s} %llu\n", ll[i],
		    (unsigned long long)h->links[i].changed);
	for (size_t k = 0; k < sizeof(link_fam) / sizeof(link_fam[0]); k++) {
		family(o, link_fam[k].name, link_fam[k].type, link_fam[k].help);
		for (int i = 0; i < h->nlinks; i++) {
			const struct handoff_link *l = &h->links[i];
			uint64_t v[] = { l->ports, l->priority, l->ops, l->bytes, l->msgs, l->downs,
					 l->reissued };

			put(o, "%s{%s} %llu\n", link_fam[k].name, ll[i], (unsigned long long)v[k]);
		}
	}
	family(o, "ccm_link_heartbeat_rtt_seconds", "summary",
	       "Round trips of the link's heartbeat READs (the keeper's millisecond clock).");
	for (int i = 0; i < h->nlinks; i++) {
		seconds(o, "ccm_link_heartbeat_rtt_seconds_sum", ll[i], h->links[i].rtt_sum_ms);
		put(o, "ccm_link_heartbeat_rtt_seconds_count{%s} %llu\n", ll[i],
		    (unsigned long long)h->links[i].rtt_count);
	}
	family(o, "ccm_link_heartbeat_rtt_last_seconds", "gauge",
	       "The round trip of the link's latest heartbeat READ.");
	for (int i = 0; i < h->nlinks; i++)
		seconds(o, "ccm_link_heartbeat_rtt_last_seconds", ll[i], h->links[i].rtt_last_ms);
	family(o, "ccm_link_heartbeat_rtt_max_seconds", "gauge",
	       "The longest round trip of the link's heartbeat READs.");
	for (int i = 0; i < h->nlinks; i++)
		seconds(o, "ccm_link_heartbeat_rtt_max_seconds", ll[i], h->links[i].rtt_max_ms);
}

static void clients(struct mout *o, const struct handoff *h, const char *lab)
{
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
		{ "ccm_client_shared", "gauge", "1 when both nodes have the client with its ports." },
		{ "ccm_client_ports", "gauge", "The client's ports." },
		{ "ccm_client_attached", "gauge", "1 when a process of the client is attached." },
		{ "ccm_client_queued_messages", "gauge",
		  "The partner's messages waiting in this keeper for the client." },
		{ "ccm_client_in_flight_messages", "gauge",
		  "The client's messages the partner's client has not confirmed yet." },
		{ "ccm_client_messages_given_up_total", "counter",
		  "The partner's messages given up after msg-hold-ms without the client." },
	};
	char cl[HANDOFF_CLIENTS_MAX][256], name[2 * CCM_NAME_MAX + 1];

	for (int i = 0; i < h->nclients; i++) {
		esc(h->clients[i].name, name, sizeof(name));
		snprintf(cl[i], sizeof(cl[i]), "%s,client=\"%s\"", lab, name);
	}
	for (size_t k = 0; k < sizeof(fam) / sizeof(fam[0]); k++) {
		family(o, fam[k].name, fam[k].type, fam[k].help);
		for (int i = 0; i < h->nclients; i++) {
			const struct handoff_client *c = &h->clients[i];
			uint64_t v[] = { c->status == MATCH_OK, c->nports, c->attached, c->queued,
					 c->in_flight, c->given_up };

			put(o, "%s{%s} %llu\n", fam[k].name, cl[i], (unsigned long long)v[k]);
		}
	}
}

int metrics_format(const struct handoff *h, const char *instance, char *buf, size_t cap)
{
	struct mout o = { buf, cap, 0, false };
	char lab[160], v[4][CCM_CLUSTER_MAX * 2 + 2];  /* lab: instance="" and 128 bytes */

	if (!cap)
		return -ENOSPC;
	buf[0] = 0;
	esc(instance, v[0], 128);
	snprintf(lab, sizeof(lab), "instance=\"%s\"", v[0]);
	esc(h->cluster, v[1], sizeof(v[1]));
	esc(h->transport, v[2], sizeof(v[2]));
	esc(h->key_id, v[3], sizeof(v[3]));
	family(&o, "ccm_info", "gauge", "This node: its id, cluster, transport and key id.");
	put(&o, "ccm_info{%s,node=\"%u\",cluster=\"%s\",transport=\"%s\",key_id=\"%s\"} 1\n", lab,
	    (unsigned)h->node, v[1], v[2], v[3]);
	family(&o, "ccm_state", "gauge", "The handoff state: 1 for the one it is in.");
	for (int st = 0; st < HANDOFF_NSTATES; st++)
		put(&o, "ccm_state{%s,state=\"%s\"} %d\n", lab,
		    handoff_state_name((enum handoff_state)st), (int)h->state == st);
	one(&o, lab, "ccm_state_updated_timestamp_seconds", "gauge",
	    "When the keeper last wrote this (seconds since the epoch).", h->updated);
	one(&o, lab, "ccm_partner_up", "gauge", "1 when connected with the partner.",
	    h->state == HANDOFF_CONNECTED);
	one(&o, lab, "ccm_partner_node", "gauge", "The partner's node id (0: none yet).",
	    h->partner_node);
	one(&o, lab, "ccm_partner_sessions_total", "counter",
	    "Times the partner became ready (clients told PARTNER_READY).", h->partner_sessions);
	one(&o, lab, "ccm_partner_losses_total", "counter",
	    "Times the partner was lost (clients told PARTNER_LOST).", h->partner_losses);
	one(&o, lab, "ccm_partner_resumes_total", "counter",
	    "Times the partner came back (clients told PARTNER_BACK).", h->partner_resumes);
	one(&o, lab, "ccm_partner_epoch_changes_total", "counter",
	    "Times the partner came back as a new incarnation (it rebooted).",
	    h->partner_epoch_changes);
	one(&o, lab, "ccm_link_failovers_total", "counter",
	    "Times a link went down and its traffic moved to another.", h->failovers);
	links(&o, h, lab);
	clients(&o, h, lab);
	return o.full ? -ENOSPC : (int)o.len;
}
