/* fuzz_config: the configuration file lexer and every setting's parser.
 * What parses is written back as a file (each key that was set, its value
 * as stored) and must parse to the same settings. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const keys[] = {
	"node-id", "listen", "partner", "transport", "device", "clients",
	"state-dir", "psk-file", "cluster", "timeout", "proto-versions",
	"heartbeat-ms", "heartbeat-misses", "link", "link-policy", "link-heartbeat-ms",
	"link-misses", "link-damp-ms", "partner-node", "psk-accept-file", "msg-hold-ms",
	"metrics-dir",
};

/* Append `key = value`; 0 if the value cannot be written in the format
 * (a '"' inside a value that also needs quotes). */
static int emit(char *out, size_t cap, size_t *len, const char *key, const char *v)
{
	size_t n = strlen(v);
	int quote = !strchr(v, '"');
	int r;

	if (!quote && (v[0] == '"' || !n || v[0] == ' ' || v[0] == '\t' ||
		       v[n - 1] == ' ' || v[n - 1] == '\t'))
		return 0;
	r = snprintf(out + *len, cap - *len, quote ? "%s = \"%s\"\n" : "%s = %s\n", key, v);
	if (r < 0 || (size_t)r >= cap - *len)
		abort();
	*len += (size_t)r;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char text[16384];
	struct ccm_config c, c2;
	struct errbuf e;
	char v[CONFIG_PATH_MAX + 1];
	size_t len = 0;
	unsigned i;

	config_defaults(&c, NULL);
	if (config_parse_text(&c, (const char *)data, size, "fuzz", &e) < 0) {
		if (strncmp(e.msg, "fuzz:", 5))
			abort();        /* every message says where */
		return 0;
	}
	config_check(&c, &e);
	if (c.ver_min > c.ver_max || !c.ver_min || c.timeout_s > 86400 ||
	    ((c.set & CFG_NODE_ID) && (!c.node_id || c.node_id == UINT32_MAX)))
		abort();
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!(c.set & (1u << i)))
			continue;
		switch (1u << i) {
		case CFG_NODE_ID: snprintf(v, sizeof(v), "%u", (unsigned)c.node_id); break;
		case CFG_LISTEN: tp_format_addr(&c.listen, v, sizeof(v)); break;
		case CFG_PARTNER: tp_format_addr(&c.partner, v, sizeof(v)); break;
		case CFG_TRANSPORT: snprintf(v, sizeof(v), "%s", c.transport); break;
		case CFG_DEVICE: snprintf(v, sizeof(v), "%s", c.device); break;
		case CFG_CLIENTS: snprintf(v, sizeof(v), "%s", c.clients_dir); break;
		case CFG_STATE_DIR: snprintf(v, sizeof(v), "%s", c.state_dir); break;
		case CFG_PSK_FILE: snprintf(v, sizeof(v), "%s", c.psk_file); break;
		case CFG_PSK_ACCEPT_FILE: snprintf(v, sizeof(v), "%s", c.psk_accept_file); break;
		case CFG_CLUSTER: snprintf(v, sizeof(v), "%s", c.cluster); break;
		case CFG_TIMEOUT: snprintf(v, sizeof(v), "%u", (unsigned)c.timeout_s); break;
		case CFG_HEARTBEAT_MS: snprintf(v, sizeof(v), "%u", (unsigned)c.heartbeat_ms); break;
		case CFG_HEARTBEAT_MISSES:
			snprintf(v, sizeof(v), "%u", (unsigned)c.heartbeat_misses);
			break;
		case CFG_LINK:
			/* A list: one line per link. */
			for (int k = 0; k < c.nlinks; k++) {
				char a[80], b[80];
				const struct ccm_link *l = &c.links[k];

				snprintf(v, sizeof(v), "%s=%s,device=%s,priority=%u",
					 tp_format_addr(&l->local, a, sizeof(a)),
					 tp_format_addr(&l->partner, b, sizeof(b)), l->device,
					 (unsigned)l->priority);
				if (k < c.nlinks - 1 && !emit(text, sizeof(text), &len, keys[i], v))
					return 0;
			}
			break;
		case CFG_LINK_POLICY: snprintf(v, sizeof(v), "%s", config_policy_name(c.link_policy)); break;
		case CFG_LINK_HEARTBEAT_MS:
			snprintf(v, sizeof(v), "%u", (unsigned)c.link_heartbeat_ms);
			break;
		case CFG_LINK_MISSES: snprintf(v, sizeof(v), "%u", (unsigned)c.link_misses); break;
		case CFG_LINK_DAMP_MS: snprintf(v, sizeof(v), "%u", (unsigned)c.link_damp_ms); break;
		case CFG_PARTNER_NODE: snprintf(v, sizeof(v), "%u", (unsigned)c.partner_node); break;
		case CFG_MSG_HOLD_MS: snprintf(v, sizeof(v), "%u", (unsigned)c.msg_hold_ms); break;
		case CFG_METRICS_DIR: snprintf(v, sizeof(v), "%s", c.metrics_dir); break;
		default: snprintf(v, sizeof(v), "%u-%u", c.ver_min, c.ver_max); break;
		}
		if (!emit(text, sizeof(text), &len, keys[i], v))
			return 0;
	}
	config_defaults(&c2, NULL);
	if (config_parse_text(&c2, text, len, "again", &e) < 0 ||
	    memcmp(&c, &c2, sizeof(c)))
		abort();
	return 0;
}
