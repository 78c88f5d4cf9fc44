/* fdmsg: the one message layer of the keeper's Unix sockets.
 *
 * Sockets are AF_UNIX SOCK_SEQPACKET, so the kernel keeps message
 * boundaries and one recvmsg() is one message.  A message is
 *
 *   0  u16 type
 *   2  u16 flags, zero
 *   4  u32 payload length
 *   8  payload, 0..FDMSG_PAYLOAD_MAX bytes
 *
 * in host byte order (both ends are on one machine, by construction of
 * AF_UNIX), with at most one file descriptor attached (SCM_RIGHTS).
 *
 * Ownership: the sender keeps its fd (the kernel passes a duplicate); the
 * receiver owns m->fd and either takes it (sets m->fd = -1) or lets
 * fdmsg_close() close it.  fdmsg_recv() never trusts the peer: a message
 * that breaks any rule above is refused, and every fd that came with it is
 * closed, so an fd is always either in m->fd or closed, never leaked. */
#ifndef CCM_FDMSG_H
#define CCM_FDMSG_H

#include <stdint.h>
#include <sys/types.h>

#include "base/errbuf.h"

#define FDMSG_HDR_SIZE     8
#define FDMSG_PAYLOAD_MAX  4096

struct fdmsg {
	uint16_t type;
	uint32_t len;
	uint8_t data[FDMSG_PAYLOAD_MAX];
	int fd;         /* -1 = none; the receiver owns it */
};

/* A connected SOCK_SEQPACKET | SOCK_CLOEXEC pair.  0 or -errno. */
int fdmsg_socketpair(int sv[2]);

/* Send one message, with fd attached unless it is -1 (the caller keeps
 * fd).  MSG_NOSIGNAL, EINTR retried.  0; -EMSGSIZE when len is over
 * FDMSG_PAYLOAD_MAX; -EAGAIN on a full nonblocking socket; else -errno. */
int fdmsg_send(int sock, uint16_t type, const void *data, uint32_t len, int fd);

/* Receive one message into m (m->fd = -1 unless one came with it).
 * 1 = got one; 0 = the peer closed (an empty datagram reads the same: it
 * could not be a message anyway); -EAGAIN on an empty nonblocking socket;
 * -EINTR is returned, not retried, so a signal can end a blocking wait;
 * -EMSGSIZE for a datagram or control data larger than fits; -EBADMSG for
 * a malformed message (e says how); else -errno. */
int fdmsg_recv(int sock, struct fdmsg *m, struct errbuf *e);

/* The same, waiting at most timeout_ms for it (a signal does not cut the
 * wait short): -ETIMEDOUT when nothing came (e says so), else as
 * fdmsg_recv. */
int fdmsg_recv_within(int sock, int timeout_ms, struct fdmsg *m, struct errbuf *e);

/* The payload length check every handler does before reading m->data:
 * 0 when min <= m->len <= max (min == max for a fixed-size type), else
 * -EBADMSG with the type and the lengths in e. */
int fdmsg_expect(const struct fdmsg *m, uint32_t min, uint32_t max, struct errbuf *e);

/* Close the fd nobody took, if any. */
void fdmsg_close(struct fdmsg *m);

/* Who is at the other end (SO_PEERCRED: as of connect() or socketpair()).
 * 0 or -errno. */
int fdmsg_peer_cred(int sock, uid_t *uid, pid_t *pid);

#endif
