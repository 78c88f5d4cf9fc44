/* journal: log entries for systemd-journald over its native protocol
 * (systemd's "Native Journal Protocol"): one datagram per entry, sent to
 * /run/systemd/journal/socket, made of "KEY=value\n" fields.  No
 * libsystemd: a static keeper cannot carry it, and the protocol is one
 * sendto.  Values here never hold a newline (journal_send turns them into
 * spaces), so the length-prefixed form for binary values is not needed. */
#ifndef CCM_JOURNAL_H
#define CCM_JOURNAL_H

#include <stdbool.h>

/* Where journald takes native entries. */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

struct journal {
	int fd;  /* an unbound datagram socket, or -1: no journal */
};

/* Whether systemd connected our stderr to the journal: $JOURNAL_STREAM
 * names its device and inode (systemd.exec(5)).  Then a service may, and
 * should, switch to the native protocol for the same destination. */
bool journal_is_stderr(void);

/* Get ready to send (0), or -errno; j->fd stays -1 on failure. */
int journal_open(struct journal *j);

/* One entry: PRIORITY (syslog's 0-7), SYSLOG_IDENTIFIER=ccm-early,
 * CCM_NODE (our node id), CCM_INSTANCE (a named instance's name; none for
 * the unnamed one, instance NULL or ""), the caller's fields ("KEY=value\n"
 * each, or NULL) and MESSAGE=msg.  0 when journald took it, -errno when it
 * is not there, not listening or busy (the socket never blocks): the
 * caller then writes the line elsewhere. */
int journal_send(const struct journal *j, int priority, unsigned node, const char *instance,
		 const char *fields, const char *msg);

void journal_close(struct journal *j);

#endif
