/* fdmsg: messages with at most one fd over SOCK_SEQPACKET (rules in
 * fdmsg.h). */
#include "client/fdmsg.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* The receive side has room for this many fds, and for the credentials
 * SO_PASSCRED would add.  One fd is allowed; a few more are taken only to
 * be closed, so a peer attaching two gets -EBADMSG (it broke the protocol)
 * and not a misleading -EMSGSIZE.  Beyond this the kernel sets MSG_CTRUNC
 * and itself closes what did not fit. */
#define RECV_FDS 4
#define RECV_CMSG (CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(RECV_FDS * sizeof(int)))

int fdmsg_socketpair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	return 0;
}

int fdmsg_send(int sock, uint16_t type, const void *data, uint32_t len, int fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} cbuf;
	uint8_t hdr[FDMSG_HDR_SIZE];
	uint16_t flags = 0;
	struct iovec iov[2] = {
		{ .iov_base = hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)data, .iov_len = len },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
	struct cmsghdr *c;
	ssize_t n;

	if (len > FDMSG_PAYLOAD_MAX)
		return -EMSGSIZE;
	if (len && !data)
		return -EINVAL;
	memcpy(hdr, &type, 2);
	memcpy(hdr + 2, &flags, 2);
	memcpy(hdr + 4, &len, 4);
	if (fd >= 0) {
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = sizeof(cbuf.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* SEQPACKET sends all or nothing; anything else is not our socket. */
	return (size_t)n == sizeof(hdr) + len ? 0 : -EIO;
}

/* Walk the control data the kernel wrote: keep the first fd in *fd, close
 * every other one at once, and count them all.  *foreign is set when a
 * control message other than SCM_RIGHTS came (SO_PASSCRED or SO_PASSSEC
 * set on the socket by someone else: nothing fdmsg asks for). */
static int collect_fds(struct msghdr *mh, int *fd, int *foreign)
{
	const char *end = (const char *)mh->msg_control + mh->msg_controllen;
	struct cmsghdr *c;
	size_t k, cnt;
	int nfds = 0, x;

	*foreign = 0;
	for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			*foreign = 1;
			continue;
		}
		/* Bounded by the buffer too: under MSG_CTRUNC, cmsg_len is
		 * not a promise about what is really there. */
		cnt = c->cmsg_len > CMSG_LEN(0) ? c->cmsg_len - CMSG_LEN(0) : 0;
		if (cnt > (size_t)(end - (const char *)CMSG_DATA(c)))
			cnt = (size_t)(end - (const char *)CMSG_DATA(c));
		for (k = 0; k < cnt / sizeof(int); k++) {
			memcpy(&x, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
			if (nfds++ == 0)
				*fd = x;
			else
				close(x);
		}
	}
	return nfds;
}

/* Judge a received datagram of n bytes whose header is hdr. */
static int check_msg(const struct msghdr *mh, ssize_t n, int nfds, int foreign,
		 const uint8_t *hdr, struct fdmsg *m, struct errbuf *e)
{
	uint16_t flags;

	if (mh->msg_flags & MSG_TRUNC)
		return errbuf_set(e, -EMSGSIZE, "message larger than %d bytes",
				  FDMSG_HDR_SIZE + FDMSG_PAYLOAD_MAX);
	if (mh->msg_flags & MSG_CTRUNC)
		return errbuf_set(e, -EMSGSIZE, "more fds or control data than fit (%d fds came and are closed)",
				  nfds);
	if (foreign)
		return errbuf_set(e, -EBADMSG, "control message other than SCM_RIGHTS");
	if (nfds > 1)
		return errbuf_set(e, -EBADMSG, "%d fds attached, at most one allowed", nfds);
	if (n < FDMSG_HDR_SIZE)
		return errbuf_set(e, -EBADMSG, "message of %zd bytes, shorter than the %d-byte header",
				  n, FDMSG_HDR_SIZE);
	memcpy(&m->type, hdr, 2);
	memcpy(&flags, hdr + 2, 2);
	memcpy(&m->len, hdr + 4, 4);
	if (flags)
		return errbuf_set(e, -EBADMSG, "message type %u: flags 0x%x, must be 0",
				  m->type, flags);
	if (m->len != (uint32_t)(n - FDMSG_HDR_SIZE))
		return errbuf_set(e, -EBADMSG, "message type %u: header says %u payload bytes, %zd came",
				  m->type, m->len, n - FDMSG_HDR_SIZE);
	return 1;
}

int fdmsg_recv(int sock, struct fdmsg *m, struct errbuf *e)
{
	union {
		struct cmsghdr align;
		char buf[RECV_CMSG];
	} cbuf;
	uint8_t hdr[FDMSG_HDR_SIZE];
	struct iovec iov[2] = {
		{ .iov_base = hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = m->data, .iov_len = sizeof(m->data) },
	};
	struct msghdr mh = {
		.msg_iov = iov, .msg_iovlen = 2,
		.msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf),
	};
	ssize_t n;
	int nfds, foreign, r;

	m->fd = -1;
	m->type = 0;
	m->len = 0;
	n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	nfds = collect_fds(&mh, &m->fd, &foreign);
	/* Test the two bits, not msg_flags as a whole: the kernel echoes
	 * MSG_CMSG_CLOEXEC back in it. */
	if (n == 0 && !nfds && !foreign && !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
		return 0;
	r = check_msg(&mh, n, nfds, foreign, hdr, m, e);
	if (r < 0)
		fdmsg_close(m);
	return r;
}

int fdmsg_expect(const struct fdmsg *m, uint32_t min, uint32_t max, struct errbuf *e)
{
	if (m->len < min || m->len > max)
		return errbuf_set(e, -EBADMSG, "message type %u: payload of %u bytes, expected %u to %u",
				  m->type, m->len, min, max);
	return 0;
}

void fdmsg_close(struct fdmsg *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

int fdmsg_peer_cred(int sock, uid_t *uid, pid_t *pid)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return -errno;
	*uid = uc.uid;
	*pid = uc.pid;
	return 0;
}

int fdmsg_recv_within(int sock, int timeout_ms, struct fdmsg *m, struct errbuf *e)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errbuf_set(e, -errno, "waiting for an answer: %s", strerror(errno));
	if (r == 0)
		return errbuf_set(e, -ETIMEDOUT, "no answer within %d ms", timeout_ms);
	return fdmsg_recv(sock, m, e);
}
