/* client_match: our clients against the partner's, by name (pure).  Both
 * lists are in their wire form (CLIENTS): ours as we send it, the
 * partner's as it came, not trusted -- its count is clamped and its names
 * are never read past their field. */
#ifndef CCM_CLIENT_MATCH_H
#define CCM_CLIENT_MATCH_H

#include <stdint.h>

#include "base/limits.h"
#include "proto/wire.h"

enum client_match_status {
	MATCH_OK = 0,           /* both sides, same ports and size */
	MATCH_LOCAL_ONLY,       /* only here: no ports until the partner has it */
	MATCH_REMOTE_ONLY,      /* only on the partner */
	MATCH_SIZE_MISMATCH,    /* both sides, different ports or size */
};
#define CLIENT_MATCH_NSTATUS 4

struct client_match {
	char name[CCM_NAME_MAX + 1];
	enum client_match_status status;
	uint16_t nports;              /* local; 0 if remote-only */
	uint32_t port_size;
	uint16_t remote_nports;       /* remote; 0 if local-only */
	uint32_t remote_port_size;
};

/* Join local and remote by name into out[0..max), sorted by name, each name
 * once (a name the partner repeats counts once, its first entry).  Returns
 * the count, or -ENOSPC if max is too small (2 * CCM_CLIENTS_MAX always
 * suffices). */
int clients_match(const struct wire_clients *local,
		  const struct wire_clients *remote, struct client_match *out,
		  int max);

/* "ok", "local-only", "remote-only", "size-mismatch"; "?" if out of range. */
const char *client_match_name(enum client_match_status s);

/* The reverse: 0 and *s, or -EINVAL. */
int client_match_parse(const char *name, enum client_match_status *s);

#endif
