/* keeper_request: one root request to the running keeper over its socket
 * (stop, reload-keys), and its one answer: CTL_DONE, or CTL_ERROR saying
 * why not. */
#ifndef CCM_KEEPER_REQUEST_H
#define CCM_KEEPER_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/errbuf.h"

/* Send type with req (len bytes) to the keeper whose socket is in
 * state_dir (NULL: the default) and wait up to timeout_ms for its answer.
 * 0 when it says done; else -errno with e saying why ("could not WHAT: ..."
 * when the keeper itself reports a failure). */
int keeper_request(const char *state_dir, uint16_t type, const void *req, size_t len,
		   int timeout_ms, const char *what, struct errbuf *e);

/* The arguments of a command whose one option says where the keeper is,
 * --state-dir DIR (and -h, --help): *dir is set, CCM_STATE_DIR_DEFAULT
 * without it.  -1 to go on; else the exit code to return: 0 after the
 * help, usage_exit after a usage error (said on stderr). */
int keeper_dir_args(int argc, char **argv, void (*usage)(FILE *), int usage_exit,
		    const char **dir);

#endif
