/* handoff: the state files the manager leaves for scripts and tools.
 *
 * In the state directory (default /run/ccm) the manager keeps two files,
 * each replaced atomically (temp file in the same directory, fsync, rename,
 * fsync of the directory), so a reader sees the old or the new file, never
 * half of one:
 *
 * `state`, for `. /run/ccm/state` in sh.  Format 1:
 *
 *   # ccm-early handoff, format 1
 *   CCM_STATE='connected'
 *   CCM_NODE='1'
 *   ...
 *
 *   - The first line is exactly the comment above; every other line is
 *     KEY='VALUE' (written in the order below; the reader does not insist
 *     on it), and every line ends in a newline.
 *   - Every value is in single quotes, and a ' inside it is written '\'' so
 *     sourcing the file runs nothing, whatever a value holds.  Control
 *     characters (newline, tab, ...) in text are written as spaces: one
 *     line is always one variable.
 *   - Keys:
 *       CCM_STATE          handshaking | connected | terminated | error |
 *                          unreachable (was connected; no link reaches the
 *                          partner now, and the keeper waits for one)
 *       CCM_NODE           our node id
 *       CCM_PARTNER_NODE   the partner's node id, 0 = not known yet
 *       CCM_PARTNER_ADDR   the partner's ADDR:PORT ([V6]:PORT)
 *       CCM_LISTEN_ADDR    ours
 *       CCM_VERSION        the agreed protocol version, 0 = none yet
 *       CCM_TRANSPORT      tcp | rdma
 *       CCM_CLUSTER        the cluster name
 *       CCM_INSTANCE       the instance of ccm-early that wrote it, '' =
 *                          the unnamed one (base/instance.h); newer: a
 *                          file without it reads as ''
 *       CCM_KEY_ID         the pre-shared key's id (auth_key_id), '' = no key
 *       CCM_KEY_ACCEPT_ID  the id of the second key accepted while keys are
 *                          rotated (psk-accept-file), '' = none
 *       CCM_EPOCH          our boot epoch (decimal, 64 bits)
 *       CCM_PARTNER_EPOCH  the partner's, 0 = not known
 *       CCM_HS_STATE       the handshake state machine's state name
 *       CCM_PID            the manager's pid (`status` calls the file
 *                          stale when it is gone: handoff_stale)
 *       CCM_UPDATED        when this was written, seconds since 1970
 *       CCM_ERROR          the last error, free text, '' = none
 *       CCM_CLIENTS        names of the clients whose status is ok,
 *                          separated by single spaces
 *     then for every client NAME, the name spelled as it is (lowercase):
 *       CCM_CLIENT_NAME_STATUS     ok | local-only | remote-only |
 *                                  size-mismatch
 *       CCM_CLIENT_NAME_PORTS      number of ports
 *       CCM_CLIENT_NAME_PORT_SIZE  bytes per port
 *     then:
 *       CCM_BAD_DESCRIPTORS  descriptor files that were refused, separated
 *                            by single spaces; each name is made of
 *                            [A-Za-z0-9._-] only (others written as '_')
 *       CCM_LINK_POLICY    balance | standby
 *       CCM_LINKS          the number of interconnects, 1..4
 *     and for every link I (0, 1, ...):
 *       CCM_LINK_I_STATE     down | connecting | verifying | damped | up
 *       CCM_LINK_I_LOCAL     our ADDR:PORT on it
 *       CCM_LINK_I_PARTNER   the partner's
 *       CCM_LINK_I_DEVICE    the RDMA device named for it, '' = by address
 *       CCM_LINK_I_PRIORITY  0..255, higher preferred (standby)
 *       CCM_LINK_I_PORTS     ports it carries now
 *       CCM_LINK_I_OPS, _BYTES, _MSGS  one-sided operations, their bytes,
 *                            and client messages it has carried
 *       CCM_LINK_I_DOWNS     times it failed
 *       CCM_LINK_I_REISSUED  operations and messages moved off it when it
 *                            failed, sent again on another
 *   - A script reads a client's value with, for example,
 *       for c in $CCM_CLIENTS; do eval "ports=\$CCM_CLIENT_${c}_PORTS"; done
 *
 * `state.json`: the same facts as one JSON object:
 *   {"format":1,"state":"connected","node":1,...,"error":"",
 *    "clients":[{"name":"a","status":"ok","ports":4,"port_size":1048576}],
 *    "bad_descriptors":["x.conf"],"link_policy":"balance",
 *    "links":[{"index":0,"state":"up","local":"10.0.0.1:7471",...}]}
 * Member names are the shell keys without CCM_, in lower case.  Strings are
 * escaped per RFC 8259 (control characters as \u00XX; bytes that are not
 * valid UTF-8 become U+FFFD).  Epochs are 64-bit, so JSON carries them as
 * decimal strings ("epoch":"1234..."): readers that hold numbers as doubles
 * (JavaScript, jq before 1.7) would round them above 2^53.
 *
 * One writer per directory: the temporary files are named after the pid. */
#ifndef CCM_HANDOFF_H
#define CCM_HANDOFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/client_desc.h"
#include "base/errbuf.h"
#include "proto/link_policy.h"
#include "base/limits.h"

#define HANDOFF_FORMAT      1
#define HANDOFF_HEADER      "# ccm-early handoff, format 1"
#define HANDOFF_TEXT_MAX    65536
#define HANDOFF_CLIENTS_MAX (2 * CCM_CLIENTS_MAX)
#define HANDOFF_BAD_MAX     CCM_CLIENTS_MAX
#define HANDOFF_ADDR_MAX    71    /* "[" 63 "]:" 5 */
#define HANDOFF_ERROR_MAX   255

enum handoff_state {
	HANDOFF_HANDSHAKING = 0,
	HANDOFF_CONNECTED,
	HANDOFF_TERMINATED,
	HANDOFF_ERROR,
	HANDOFF_UNREACHABLE,
};
#define HANDOFF_NSTATES 5

struct handoff_client {
	char name[CCM_NAME_MAX + 1];        /* a valid client name */
	enum client_match_status status;
	uint16_t nports;                    /* 0..CCM_PORTS_MAX */
	uint32_t port_size;                 /* 0..CCM_PORT_SIZE_MAX */
	/* Its ports' traffic, for state.json and the metrics (not in the
	 * shell file, which must stay small enough for one control message) */
	uint32_t attached;                  /* 1: a channel of it is attached */
	uint32_t queued;                    /* the partner's messages waiting for it */
	uint32_t in_flight;                 /* its messages the partner has not confirmed */
	uint64_t given_up;                  /* the partner's messages it never came for */
};

struct handoff_link {
	enum link_state state;
	char local[HANDOFF_ADDR_MAX + 1];
	char partner[HANDOFF_ADDR_MAX + 1];
	char device[64];
	uint32_t priority;                  /* 0..255 */
	uint32_t ports;                     /* 0..CCM_PORTS_TOTAL */
	uint64_t ops, bytes, msgs, downs, reissued;
	/* Newer keys: optional when read */
	uint64_t changed;                   /* seconds since the epoch: its state's */
	uint64_t rtt_last_ms, rtt_max_ms, rtt_sum_ms, rtt_count;  /* its heartbeats */
};

/* Strings are NUL-terminated within their arrays. */
struct handoff {
	enum handoff_state state;
	uint32_t node;
	uint32_t partner_node;
	char partner_addr[HANDOFF_ADDR_MAX + 1];
	char listen_addr[HANDOFF_ADDR_MAX + 1];
	uint16_t version;
	char transport[16];
	char cluster[CCM_CLUSTER_MAX + 1];
	char instance[CCM_NAME_MAX + 1];    /* "" = the unnamed one */
	char key_id[17];                    /* AUTH_KEY_ID_LEN hex digits, or "" */
	char key_accept_id[17];             /* the same, or "" */
	uint64_t epoch;
	uint64_t partner_epoch;
	char hs_state[24];
	uint32_t pid;
	uint64_t updated;
	char error[HANDOFF_ERROR_MAX + 1];
	int nclients;
	struct handoff_client clients[HANDOFF_CLIENTS_MAX];
	int nbad;
	char bad[HANDOFF_BAD_MAX][CLIENTS_FILE_MAX];
	/* Counted since the keeper's session began */
	uint64_t partner_sessions;          /* the partner became ready */
	uint64_t partner_losses;            /* ... was lost */
	uint64_t partner_resumes;           /* ... came back, the same or rebooted */
	uint64_t partner_epoch_changes;     /* ... came back rebooted (a new epoch) */
	uint64_t failovers;                 /* a link went down and traffic moved */
	char link_policy[16];
	int nlinks;                         /* 1..CCM_LINKS_MAX (0: none known) */
	struct handoff_link links[CCM_LINKS_MAX];
};

/* Fill h->clients from a clients_match() result (ports and size: ours, or
 * the partner's for a remote-only client) and h->bad from the local set. */
void handoff_set_clients(struct handoff *h, const struct client_match *m,
			 int n, const struct client_set *local);

/* Write dir/state.json, then dir/state, each atomically; create dir (and
 * its parents, mode 0755) if missing. */
int handoff_write(const char *dir, const struct handoff *h, struct errbuf *e);

/* The same into an open directory (dir only names it in messages),
 * formatting in buf (cap bytes, HANDOFF_TEXT_MAX is always enough): a
 * keeper writes often, and on these machines a buffer mapped and unmapped
 * for every write costs more than the write.  It writes through the fd it
 * opened before switch_root: its own root stays the initramfs', where the
 * path /run/ccm no longer leads to the /run that moved into the real root.
 *
 * Without durable, no fsyncs, for what a keeper rewrites often (its links'
 * states and counters): still atomic for readers, and the keeper's next
 * durable write, or its next run, rewrites it anyway.  An fsync on a busy
 * disk can block the keeper's loop for a second. */
int handoff_store_at(int dfd, const char *dir, const struct handoff *h, bool durable,
		     char *buf, size_t cap, struct errbuf *e);

/* dir/name replaced atomically by buf (n bytes): a temporary file, then a
 * rename; with durable, fsyncs of both.  Readers see the old file or the
 * new one, never a part. */
int handoff_replace_at(int dfd, const char *dir, const char *name, const char *buf, size_t n,
		       bool durable, struct errbuf *e);

/* Create dir and its parents (mode 0755) if they are missing. */
int handoff_mkdir(const char *dir, struct errbuf *e);

/* Format into buf (NUL-terminated).  Return the length, -ENOSPC if cap is
 * too small, -EINVAL if h is out of range (a count, a state, a status, a
 * client name that would not be a safe shell variable name). */
int handoff_format_shell(const struct handoff *h, char *buf, size_t cap);
int handoff_format_json(const struct handoff *h, char *buf, size_t cap);

/* The same with CCM_STATE replaced: "state":"stale", "last_state" (what
 * the file says), "stale":true and "stale_reason":why.  For `status`. */
int handoff_format_json_stale(const struct handoff *h, const char *why, char *buf, size_t cap);

/* What `ccm-early status` found out about the process a handoff names
 * (CCM_PID), when the keeper did not answer for itself. */
struct handoff_writer {
	bool exists;          /* /proc/PID is there and kill(PID, 0) did not say ESRCH */
	bool zombie;          /* it has exited; only its parent has not reaped it */
	uint64_t started;     /* when it started, seconds since 1970; 0 = unknown */
	int keeper_pid;       /* who answers on the keeper's socket: 0 = nobody */
	bool keeper_silent;   /* the socket's owner is PID but gave no answer */
};

/* Process start and file stamp come from two readings of a clock that
 * early boot may step: a second or two apart is the same moment. */
#define HANDOFF_CLOCK_SLACK_S 2

/* Whether h can no longer be believed: its writer is gone (or a zombie),
 * the pid is now another process's (started after h->updated, or not the
 * keeper's), or the keeper does not answer.  A handoff that says
 * terminated or error is the writer's last word and is never stale.  The
 * reason, if stale, in why (cap bytes).  Pure: no I/O. */
bool handoff_stale(const struct handoff *h, const struct handoff_writer *w, char *why,
		   size_t cap);

/* The strict reader of `state`: the header line, known keys only, each at
 * most once, quoting exactly as written, numbers in range, CCM_STATE and
 * CCM_NODE present, every client complete, CCM_CLIENTS consistent with the
 * statuses.  Messages are "state:LINE: ...".  parse(format(h)) == h for any
 * h without control characters in its strings. */
int handoff_parse(const char *text, size_t len, struct handoff *h,
		  struct errbuf *e);

/* Read and parse dir/state; -ENOENT with a clear message if there is none. */
int handoff_read(const char *dir, struct handoff *h, struct errbuf *e);

const char *handoff_state_name(enum handoff_state s);

#endif
