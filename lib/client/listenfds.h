/* listenfds: hand fds to an exec'd program the way systemd socket
 * activation does, and take them on the other side.
 *
 * The convention: the fds sit at 3, 4, ... 3+n-1, without FD_CLOEXEC, and
 * the environment says LISTEN_FDS=n, LISTEN_PID=<the pid that execs> and
 * LISTEN_FDNAMES=name0:name1:...  Names are 1..LISTENFDS_NAME_MAX bytes of
 * [A-Za-z0-9_.-] (so ':' can separate them and nothing needs quoting). */
#ifndef CCM_LISTENFDS_H
#define CCM_LISTENFDS_H

#include <stddef.h>

#include "base/errbuf.h"

#define LISTENFDS_START     3
#define LISTENFDS_MAX       64
#define LISTENFDS_NAME_MAX  255

/* Exec side, to call right before exec (in the child after fork): put
 * fds[i] at 3+i without FD_CLOEXEC and set the three variables.  Sources
 * may sit anywhere, at each other's targets included, and may repeat.
 * Whatever else was at 3..3+n-1 is closed; the sources stay the caller's
 * (those not overwritten keep their own flags).  n == 0 unsets the
 * variables.  names may be NULL: then LISTEN_FDNAMES is unset.  0; -EINVAL
 * for n out of 0..LISTENFDS_MAX or a bad name; -EBADF for a source that
 * is not open; else -errno. */
int listenfds_install(const int *fds, const char *const *names, int n, struct errbuf *e);

/* Receive side, like sd_listen_fds_with_names(): 0 when LISTEN_PID is
 * unset, empty or not our pid, or LISTEN_FDS is unset; else the count n,
 * with FD_CLOEXEC set on 3..3+n-1 (first, so they never leak into our own
 * children, whatever else is wrong).  names[0..n) point into names_buf
 * (or to "unknown" when LISTEN_FDNAMES is unset); names may be NULL when
 * the caller does not want them.  Every number is parsed strictly (digits
 * only, in range).  With unset_env, the three variables are unset on every
 * return.  -EINVAL for a malformed number, n over LISTENFDS_MAX or max, a
 * bad name or a name count that is not n; -ENOBUFS when names_buf is too
 * small; -EBADF when one of the fds is not open. */
int listenfds_take(int unset_env, char *names_buf, size_t names_len, const char *names[],
		   int max, struct errbuf *e);

#endif
