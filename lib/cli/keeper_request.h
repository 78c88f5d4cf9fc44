/* keeper_request: one root request to the running keeper over its socket
 * (stop, reload-keys), and its one answer: CTL_DONE, or CTL_ERROR saying
 * why not. */
#ifndef CCM_KEEPER_REQUEST_H
#define CCM_KEEPER_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/errbuf.h"
#include "base/instance.h"

/* Which keeper a command talks to: its state directory. */
struct keeper_dir {
	char path[INSTANCE_PATH_MAX];
	bool chosen;  /* --state-dir, --instance or $CCM_INSTANCE said which;
	                 else it is the unnamed instance's */
};

/* Send type with req (len bytes) to the keeper whose socket is in
 * state_dir (NULL: the default) and wait up to timeout_ms for its answer.
 * 0 when it says done; else -errno with e saying why ("could not WHAT: ..."
 * when the keeper itself reports a failure). */
int keeper_request(const char *state_dir, uint16_t type, const void *req, size_t len,
		   int timeout_ms, const char *what, struct errbuf *e);

/* Settle where the keeper is: state_dir (--state-dir) when given, else
 * instance's (--instance) when given, else $CCM_INSTANCE's, else the
 * unnamed instance's (base/instance.h).  0, or -1 after saying why on
 * stderr (both options given, a name that is not one). */
int keeper_dir_settle(const char *prog, const char *state_dir, const char *instance,
		      struct keeper_dir *d);

/* The arguments of a command whose options only say where the keeper is,
 * --state-dir DIR or --instance NAME (and -h, --help): *d is settled.
 * -1 to go on; else the exit code to return: 0 after the help, usage_exit
 * after a usage error (said on stderr). */
int keeper_dir_args(int argc, char **argv, void (*usage)(FILE *), int usage_exit,
		    struct keeper_dir *d);

#endif
