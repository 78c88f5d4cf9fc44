/* keeper_request: one root request to the running keeper over its socket
 * (stop, reload-keys), and its one answer: CTL_DONE, or CTL_ERROR saying
 * why not. */
#ifndef CCM_KEEPER_REQUEST_H
#define CCM_KEEPER_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "base/errbuf.h"

/* Send type with req (len bytes) to the keeper whose socket is in
 * state_dir (NULL: the default) and wait up to timeout_ms for its answer.
 * 0 when it says done; else -errno with e saying why ("could not WHAT: ..."
 * when the keeper itself reports a failure). */
int keeper_request(const char *state_dir, uint16_t type, const void *req, size_t len,
		   int timeout_ms, const char *what, struct errbuf *e);

#endif
