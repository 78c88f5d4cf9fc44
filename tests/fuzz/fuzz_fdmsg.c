/* fuzz_fdmsg: arbitrary datagrams, with arbitrary numbers of fds, through a
 * real socketpair into fdmsg_recv.  It must never crash, every message it
 * accepts must obey the header rules, and no fd may outlive the input.
 *
 * Input: byte 0 = bits 0-5 the number of fds attached (0..63), bit 6
 * SO_PASSCRED on the receiver (a control message fdmsg did not ask for),
 * bit 7 pad the datagram with FDMSG_PAYLOAD_MAX zero bytes (so inputs of
 * the default maximum size can reach MSG_TRUNC); the rest is the datagram. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/fdmsg.h"

#define IN_MAX 8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		abort();
	while ((de = readdir(d)))
		n++;
	closedir(d);
	return n;
}

static void send_raw(int sock, const uint8_t *buf, size_t len, int fd, int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(63 * sizeof(int))];
	} cbuf;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	int k;

	if (nfds) {
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		for (k = 0; k < nfds; k++)
			memcpy(CMSG_DATA(c) + k * sizeof(int), &fd, sizeof(int));
	}
	/* A failed send (too big for the socket buffer) just leaves nothing
	 * to receive but the close. */
	(void)sendmsg(sock, &mh, MSG_NOSIGNAL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[IN_MAX + FDMSG_PAYLOAD_MAX];
	static struct fdmsg m;
	struct errbuf e = { "" };
	int sv[2], fd, before, r, one = 1;
	size_t len;

	if (size < 1 || size > IN_MAX)
		return 0;
	before = count_fds();
	if (fdmsg_socketpair(sv) < 0)
		abort();
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		abort();
	if (data[0] & 0x40)
		setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
	len = size - 1;
	memcpy(buf, data + 1, len);
	if (data[0] & 0x80) {
		memset(buf + len, 0, FDMSG_PAYLOAD_MAX);
		len += FDMSG_PAYLOAD_MAX;
	}
	send_raw(sv[0], buf, len, fd, data[0] & 0x3f);
	close(sv[0]);
	close(fd);

	/* One datagram went in: one message or one refusal comes out (none
	 * when the send failed), then the close. */
	r = fdmsg_recv(sv[1], &m, &e);
	if (r == 1) {
		if (m.len > FDMSG_PAYLOAD_MAX || m.len + FDMSG_HDR_SIZE != len ||
		    memcmp(m.data, buf + FDMSG_HDR_SIZE, m.len))
			abort();
		if (m.fd >= 0 && fcntl(m.fd, F_GETFD) != FD_CLOEXEC)
			abort();
		fdmsg_close(&m);
	} else if (r == -EBADMSG || r == -EMSGSIZE) {
		if (m.fd != -1 || !e.msg[0])
			abort();
	} else if (r != 0) {
		abort();
	}
	if (r != 0 && fdmsg_recv(sv[1], &m, &e) != 0)
		abort();
	close(sv[1]);
	if (count_fds() != before)
		abort();
	return 0;
}
