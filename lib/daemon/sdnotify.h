/* sdnotify: readiness notification to the service manager, without
 * libsystemd (the sd_notify() protocol: one datagram of "KEY=value" lines
 * to the AF_UNIX socket named by $NOTIFY_SOCKET). */
#ifndef CCM_SDNOTIFY_H
#define CCM_SDNOTIFY_H

/* Send state, e.g. "READY=1\nSTATUS=connected to node 2".  0 when
 * NOTIFY_SOCKET is unset or empty (nobody is listening: not an error);
 * 1 when sent; -EINVAL when NOTIFY_SOCKET is neither a path ("/...") nor
 * an abstract name ("@...") or does not fit a sockaddr_un; else -errno. */
int sdnotify(const char *state);

#endif
