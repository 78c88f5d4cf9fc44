/* config: the manager's settings, one table for the command line and the
 * configuration file, and the `key = value` line lexer shared with the
 * client descriptors (clients.c).
 *
 * Configuration file format (default /etc/ccm/ccm.conf):
 *
 *   # ccm-early configuration
 *   node-id   = 1
 *   listen    = 10.0.0.1
 *   partner   = [fd00::2]:7471
 *   cluster   = "storage-a"
 *
 *   - UTF-8 or ASCII text, at most 64 KiB, one `key = value` per line.
 *   - Blank lines and lines whose first non-blank character is '#' are
 *     ignored.  There are no comments after a value: a '#' there is part of
 *     the value (paths may contain it), and the value then fails to parse.
 *   - Spaces and tabs around the key and the value are trimmed; a trailing
 *     CR is trimmed too, so CRLF files work.
 *   - A value may be enclosed in double quotes to keep leading or trailing
 *     blanks or to write an empty value; there are no escapes, and a quoted
 *     value may not itself contain a double quote.
 *   - Each of these is an error reported as "FILE:LINE: ...": a NUL byte or
 *     other control character (tab excepted), a line longer than 1024 bytes,
 *     a line without '=', an unknown key, a key given twice, an invalid value.
 *
 * Keys (spelled the same as the --long command line options):
 *   node-id        this node's id, 1..4294967294 (required)
 *   listen         where we listen: ADDR[:PORT], numeric IPv4 or IPv6
 *                  ([V6]:PORT), port default 7471 (required)
 *   partner        where the partner listens, same syntax (required; must
 *                  differ from listen)
 *   transport      "tcp" or "rdma" (default tcp)
 *   device         RDMA device name, e.g. mlx5_0 (default: by address)
 *   clients        client descriptor directory (default /etc/ccm/clients.d)
 *   state-dir      handoff state directory (default /run/ccm)
 *   psk-file       pre-shared key file (default: none, no authentication)
 *   psk-accept-file  a second key accepted from the partner while keys are
 *                  rotated; a file that does not exist means none (default:
 *                  none).  Both files are read again on SIGHUP or
 *                  `ccm-early reload-keys`.
 *   cluster        cluster name, printable, no spaces, at most 63 bytes
 *                  (default ccm)
 *   timeout        seconds to wait for the partner, 0..86400, 0 = forever
 *                  (default 0)
 *   proto-versions protocol versions to offer, "MIN-MAX" or "N", each
 *                  1..65535 (default: what this build speaks); for testing
 *                  against older and newer partners.
 *   heartbeat-ms   once connected, how often to advance our heartbeat and
 *                  READ the partner's, 10..60000 (default 100)
 *   heartbeat-misses  the partner is lost when its heartbeat has not moved
 *                  for this many intervals, 1..1000 (default 5)
 *   link           one interconnect: LOCAL=PARTNER[,device=DEV][,priority=N],
 *                  LOCAL and PARTNER as for listen and partner, N 0..255
 *                  (higher is preferred; default 0).  The one key that may
 *                  be given several times (up to 4): link i here pairs with
 *                  link i on the partner.  Without it, listen, partner and
 *                  device make the single link; with it, they must not be
 *                  given.  On the command line, --link replaces the file's.
 *   link-policy    balance (default: ports spread over the up links by
 *                  outstanding bytes) or standby (every port on the up link
 *                  of the highest priority, then the lowest index)
 *   link-heartbeat-ms  how often each link READs the partner's status block
 *                  to prove it works, 1..60000 (default 10)
 *   link-misses    a link whose heartbeat READ has not completed for this
 *                  many intervals is down, 1..1000 (default 3); the last
 *                  working link is only given up by heartbeat-ms/-misses
 *   link-damp-ms   a link that went down must stay up this long before it
 *                  carries ports again, 0..600000 (default 1000)
 *   msg-hold-ms    how long a partner's message waits for a client of ours
 *                  that is not attached; then it is given up and the
 *                  sender's completion says -ETIMEDOUT.  0..86400000, 0 =
 *                  until the session ends (default 30000).  The wait counts
 *                  from when the message came or the client went, whichever
 *                  is later: a slow client that stays attached never loses
 *                  one, and a client's restart is not a loss.
 *   metrics-dir    a directory where the keeper keeps ccm-early.prom
 *                  (instance NAME: ccm-early@NAME.prom), its metrics in
 *                  the Prometheus text format, up to date (for
 *                  node_exporter's textfile collector); "" = none (default).
 *                  The same text is always in the state directory as
 *                  `metrics`.
 *   partner-node   the partner's node id, 1..4294967294: connections from
 *                  any other node are refused, and a node at the partner's
 *                  address with another id is not talked to (default: the
 *                  first node that completes a session; once connected,
 *                  only it is let in until the session ends)
 * Numbers are decimal digits only: no sign, no spaces, no hex. */
#ifndef CCM_CONFIG_H
#define CCM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "base/errbuf.h"
#include "base/limits.h"
#include "proto/link_policy.h"
#include "tp/transport.h"

#define CONFIG_PATH_MAX   255
#define CONFIG_DEVICE_MAX 63
#define KV_TEXT_MAX       65536  /* bytes in one file */
#define KV_LINE_MAX       1024   /* bytes in one line, without the newline */

/* One bit per key in struct ccm_config.set, in table order. */
enum config_key {
	CFG_NODE_ID = 1u << 0,
	CFG_LISTEN = 1u << 1,
	CFG_PARTNER = 1u << 2,
	CFG_TRANSPORT = 1u << 3,
	CFG_DEVICE = 1u << 4,
	CFG_CLIENTS = 1u << 5,
	CFG_STATE_DIR = 1u << 6,
	CFG_PSK_FILE = 1u << 7,
	CFG_CLUSTER = 1u << 8,
	CFG_TIMEOUT = 1u << 9,
	CFG_PROTO_VERSIONS = 1u << 10,
	CFG_HEARTBEAT_MS = 1u << 11,
	CFG_HEARTBEAT_MISSES = 1u << 12,
	CFG_LINK = 1u << 13,
	CFG_LINK_POLICY = 1u << 14,
	CFG_LINK_HEARTBEAT_MS = 1u << 15,
	CFG_LINK_MISSES = 1u << 16,
	CFG_LINK_DAMP_MS = 1u << 17,
	CFG_PARTNER_NODE = 1u << 18,
	CFG_PSK_ACCEPT_FILE = 1u << 19,
	CFG_MSG_HOLD_MS = 1u << 20,
	CFG_METRICS_DIR = 1u << 21,
};

/* One interconnect: where we listen on it, where the partner does. */
struct ccm_link {
	struct tp_addr local, partner;
	char device[CONFIG_DEVICE_MAX + 1];   /* "" = choose by address */
	uint8_t priority;
};

struct ccm_config {
	uint32_t node_id;                  /* 0 = not set */
	struct tp_addr listen, partner;
	char transport[8];                 /* "tcp" or "rdma" */
	char device[CONFIG_DEVICE_MAX + 1];/* "" = choose by address */
	char clients_dir[CONFIG_PATH_MAX + 1];
	char state_dir[CONFIG_PATH_MAX + 1];
	char psk_file[CONFIG_PATH_MAX + 1];/* "" = no key */
	char psk_accept_file[CONFIG_PATH_MAX + 1];  /* "" = none */
	char cluster[CCM_CLUSTER_MAX + 1];
	uint32_t timeout_s;                /* 0 = wait forever */
	uint16_t ver_min, ver_max;
	uint32_t heartbeat_ms;
	uint32_t heartbeat_misses;
	struct ccm_link links[CCM_LINKS_MAX];
	int nlinks;                        /* `link` keys given; 0 = listen/partner */
	enum link_policy link_policy;
	uint32_t link_heartbeat_ms;
	uint32_t link_misses;
	uint32_t link_damp_ms;
	uint32_t msg_hold_ms;              /* 0 = until the session ends */
	char metrics_dir[CONFIG_PATH_MAX + 1];  /* "" = none */
	uint32_t partner_node;             /* 0 = whichever node comes first */
	int verbose;                       /* 0..3; command line only (-v) */
	char instance[CCM_NAME_MAX + 1];   /* "" = the unnamed one; command
	                                      line only (--instance) */
	unsigned set;                      /* enum config_key bits given */
};

/* The defaults of instance (NULL or "": the unnamed one; a name the
 * caller has checked with instance_name_valid): its clients and state
 * directories are base/instance.h's. */
void config_defaults(struct ccm_config *c, const char *instance);

/* Set one key from its text value (the command line and the file both come
 * here).  A later call for the same key overrides an earlier one, so the
 * command line can override the file.  -EINVAL "unknown setting 'x'" or a
 * message naming the key. */
int config_set(struct ccm_config *c, const char *key, const char *value,
	       struct errbuf *e);

/* Parse a whole file's text (len bytes, need not be NUL-terminated); origin
 * names it in messages ("FILE:LINE: ...").  A key repeated within the text is
 * an error.  On error *c may be partly updated. */
int config_parse_text(struct ccm_config *c, const char *text, size_t len,
		      const char *origin, struct errbuf *e);

/* Read and parse a file.  -ENOENT (and a message) if it does not exist. */
int config_load_file(struct ccm_config *c, const char *path, struct errbuf *e);

/* The cross-key rules: node-id given; either listen and partner (which
 * differ) or links (each with LOCAL != PARTNER, no LOCAL twice), not both. */
int config_check(const struct ccm_config *c, struct errbuf *e);

/* The interconnects in use, checked: the `link` keys, or the one that
 * listen, partner and device make.  Returns how many. */
int config_links(const struct ccm_config *c, struct ccm_link out[CCM_LINKS_MAX]);

/* Forget the links given so far (the command line's --link replaces the
 * file's). */
void config_clear_links(struct ccm_config *c);

const char *config_policy_name(enum link_policy p);

/* The line lexer.  fn is called once per `key = value` line with the trimmed
 * key and the trimmed, unquoted value; it returns 0 to go on, or a negative
 * errno with e holding a message, which kv_parse prefixes with
 * "ORIGIN:LINE: ".  Returns 0, the callback's error, or -EINVAL / -EFBIG for
 * lexical errors. */
typedef int (*kv_fn)(void *ctx, const char *key, const char *value,
		     struct errbuf *e);
int kv_parse(const char *text, size_t len, const char *origin, kv_fn fn,
	     void *ctx, struct errbuf *e);

/* Read a whole small file (at most KV_TEXT_MAX bytes) into a malloc'd,
 * NUL-terminated buffer; for kv_parse users.  Regular files only. */
int kv_read_file(int dirfd, const char *path, char **text, size_t *len,
		 struct errbuf *e);

#endif
