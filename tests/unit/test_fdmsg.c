/* Unit tests of the keeper's message layer: round trips with and without an
 * fd, the size limits, and a hand-made hostile sender (raw sendmsg) for
 * every malformed message, each refused with the right error and without
 * leaking a single fd (counted in /proc/self/fd). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "client/fdmsg.h"

#define MANY_FDS 64

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int same_file(int a, int b)
{
	struct stat sa, sb;

	if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0)
		return 0;
	return sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

static void put_hdr(uint8_t *p, uint16_t type, uint16_t flags, uint32_t len)
{
	memcpy(p, &type, 2);
	memcpy(p + 2, &flags, 2);
	memcpy(p + 4, &len, 4);
}

/* The hostile peer: any bytes, with nfds copies of fd attached. */
static int raw_send(int sock, const void *buf, size_t len, int fd, int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(MANY_FDS * sizeof(int))];
	} cbuf;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	int k;

	if (nfds > 0) {
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
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -errno;
}

static void test_round_trip(int sv[2], int file)
{
	static struct fdmsg m;
	static uint8_t big[FDMSG_PAYLOAD_MAX];
	struct errbuf e = { "" };
	size_t k;

	CHECK(fdmsg_send(sv[0], 7, "hello", 5, -1) == 0, "send without fd");
	CHECK(fdmsg_recv(sv[1], &m, &e) == 1, "receive it");
	CHECK(m.type == 7 && m.len == 5 && !memcmp(m.data, "hello", 5) && m.fd == -1,
	      "type, length, payload kept; no fd");

	CHECK(fdmsg_send(sv[0], 9, NULL, 0, file) == 0, "send an empty payload with an fd");
	CHECK(fdmsg_recv(sv[1], &m, &e) == 1, "receive it");
	CHECK(m.type == 9 && m.len == 0, "type kept, length 0");
	CHECK(m.fd >= 0 && m.fd != file && same_file(m.fd, file),
	      "the fd received is a new fd for the same file (st_dev, st_ino)");
	CHECK(fcntl(m.fd, F_GETFD) == FD_CLOEXEC, "the fd received is close-on-exec");
	CHECK(fcntl(file, F_GETFD) >= 0, "the sender still has its own fd");
	fdmsg_close(&m);
	CHECK(m.fd == -1, "fdmsg_close marks it gone");
	fdmsg_close(&m);
	CHECK(m.fd == -1, "fdmsg_close again is harmless");

	for (k = 0; k < sizeof(big); k++)
		big[k] = (uint8_t)(k * 7 + 3);
	CHECK(fdmsg_send(sv[0], 0xffff, big, sizeof(big), file) == 0,
	      "send the maximum payload, %d bytes, with an fd", FDMSG_PAYLOAD_MAX);
	CHECK(fdmsg_recv(sv[1], &m, &e) == 1 && m.type == 0xffff &&
	      m.len == FDMSG_PAYLOAD_MAX && !memcmp(m.data, big, sizeof(big)) &&
	      same_file(m.fd, file), "the maximum payload arrives whole, with its fd");
	fdmsg_close(&m);

	CHECK(fdmsg_send(sv[0], 1, big, FDMSG_PAYLOAD_MAX + 1, -1) == -EMSGSIZE,
	      "a payload over the maximum is refused on send (-EMSGSIZE)");
	CHECK(fdmsg_send(sv[0], 1, NULL, 3, -1) == -EINVAL,
	      "a length without data is refused (-EINVAL)");
	CHECK(fdmsg_recv(sv[1], &m, &e) == -EAGAIN, "and nothing was sent for either");
}

/* Send what the hostile peer sends, then expect fdmsg_recv to refuse it
 * with want and leave exactly the fds that were open before. */
static void hostile(int sv[2], int file, const char *what, const void *buf,
		    size_t len, int nfds, int want)
{
	static struct fdmsg m;
	struct errbuf e = { "" };
	int before = count_fds(), r;

	if (!CHECK(raw_send(sv[0], buf, len, file, nfds) == 0, "%s: hostile send", what))
		return;
	r = fdmsg_recv(sv[1], &m, &e);
	CHECK(r == want, "%s: refused with %d (got %d: %s)", what, want, r, e.msg);
	CHECK(m.fd == -1 && count_fds() == before, "%s: no fd returned, none leaked", what);
	CHECK(want == 0 || e.msg[0], "%s: says why: %s", what, e.msg);
}

static void test_hostile(int sv[2], int file)
{
	static uint8_t buf[FDMSG_HDR_SIZE + FDMSG_PAYLOAD_MAX + 1];
	static struct fdmsg m;
	struct errbuf e = { "" };
	int one = 1, before;

	put_hdr(buf, 1, 0, 0);
	hostile(sv, file, "short header", buf, 5, 1, -EBADMSG);
	hostile(sv, file, "empty datagram with an fd", buf, 0, 1, -EBADMSG);
	put_hdr(buf, 1, 0, 10);
	hostile(sv, file, "length says more than came", buf, FDMSG_HDR_SIZE + 5, 1, -EBADMSG);
	put_hdr(buf, 1, 0, 3);
	hostile(sv, file, "length says less than came", buf, FDMSG_HDR_SIZE + 5, 1, -EBADMSG);
	put_hdr(buf, 1, 0x8000, 5);
	hostile(sv, file, "non-zero flags", buf, FDMSG_HDR_SIZE + 5, 1, -EBADMSG);
	put_hdr(buf, 1, 0, 5);
	hostile(sv, file, "two fds in one message", buf, FDMSG_HDR_SIZE + 5, 2, -EBADMSG);
	hostile(sv, file, "more fds than the control buffer holds (MSG_CTRUNC)", buf,
		FDMSG_HDR_SIZE + 5, MANY_FDS, -EMSGSIZE);
	put_hdr(buf, 1, 0, FDMSG_PAYLOAD_MAX + 1);
	hostile(sv, file, "datagram over the maximum (MSG_TRUNC)", buf, sizeof(buf), 1, -EMSGSIZE);
	hostile(sv, file, "datagram over the maximum, no fd", buf, sizeof(buf), 0, -EMSGSIZE);

	/* SCM_CREDENTIALS only comes when the receiver asked for it: the way
	 * a control message fdmsg does not expect reaches it. */
	setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
	put_hdr(buf, 1, 0, 5);
	hostile(sv, file, "a control message other than SCM_RIGHTS", buf, FDMSG_HDR_SIZE + 5, 1,
		-EBADMSG);
	one = 0;
	setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));

	before = count_fds();
	CHECK(raw_send(sv[0], buf, 0, -1, 0) == 0 && fdmsg_recv(sv[1], &m, &e) == 0 &&
	      m.fd == -1 && count_fds() == before,
	      "an empty datagram without fds reads as a close (0)");

	CHECK(fdmsg_send(sv[0], 3, "after", 5, file) == 0 && fdmsg_recv(sv[1], &m, &e) == 1 &&
	      m.type == 3 && m.len == 5 && same_file(m.fd, file),
	      "after all that, the socket still carries good messages");
	fdmsg_close(&m);
}

static void test_expect(void)
{
	static struct fdmsg m = { .type = 42, .len = 16, .fd = -1 };
	struct errbuf e = { "" };

	CHECK(fdmsg_expect(&m, 16, 16, &e) == 0, "exact length accepted");
	CHECK(fdmsg_expect(&m, 0, 100, &e) == 0, "length in range accepted");
	CHECK(fdmsg_expect(&m, 17, 100, &e) == -EBADMSG && strstr(e.msg, "42"),
	      "too short refused, naming the type: %s", e.msg);
	CHECK(fdmsg_expect(&m, 0, 15, &e) == -EBADMSG, "too long refused");
}

static void test_ends(int file)
{
	static struct fdmsg m;
	struct errbuf e = { "" };
	int sv[2], before;
	uid_t uid;
	pid_t pid;

	if (!CHECK(fdmsg_socketpair(sv) == 0, "socketpair"))
		return;
	CHECK(fcntl(sv[0], F_GETFD) == FD_CLOEXEC && fcntl(sv[1], F_GETFD) == FD_CLOEXEC,
	      "both ends are close-on-exec");
	CHECK(fdmsg_peer_cred(sv[1], &uid, &pid) == 0 && uid == getuid() && pid == getpid(),
	      "peer credentials are our uid and pid");

	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	CHECK(fdmsg_recv(sv[1], &m, &e) == -EAGAIN && m.fd == -1,
	      "nonblocking and nothing there: -EAGAIN");

	/* A message still queued when the peer goes is read first, fd and
	 * all; only then the close. */
	before = count_fds();
	CHECK(fdmsg_send(sv[0], 5, "x", 1, file) == 0, "send, then close the sender");
	close(sv[0]);
	CHECK(fdmsg_recv(sv[1], &m, &e) == 1 && same_file(m.fd, file), "the message is read");
	fdmsg_close(&m);
	CHECK(fdmsg_recv(sv[1], &m, &e) == 0 && m.fd == -1, "then peer closed: 0");
	CHECK(fdmsg_recv(sv[1], &m, &e) == 0, "and 0 again");
	CHECK(fdmsg_send(sv[1], 5, "x", 1, -1) == -EPIPE,
	      "sending to a closed peer is -EPIPE, not SIGPIPE");
	close(sv[1]);
	CHECK(count_fds() == before - 2, "nothing left open but the test's own");
	CHECK(fdmsg_recv(-1, &m, &e) == -EBADF && fdmsg_send(-1, 1, NULL, 0, -1) == -EBADF,
	      "a bad socket is -EBADF both ways");
}

/* A receive with a deadline: -ETIMEDOUT when nothing comes, the message
 * when one is there, 0 when the peer closed. */
static void test_within(void)
{
	struct errbuf e = { "" };
	struct fdmsg m;
	int sv[2];

	if (!CHECK(fdmsg_socketpair(sv) == 0, "socketpair"))
		return;
	CHECK(fdmsg_recv_within(sv[1], 20, &m, &e) == -ETIMEDOUT && strstr(e.msg, "20 ms"),
	      "nothing within 20 ms: -ETIMEDOUT, said (%s)", e.msg);
	CHECK(fdmsg_send(sv[0], 7, "hi", 2, -1) == 0 &&
	      fdmsg_recv_within(sv[1], 1000, &m, &e) == 1 && m.type == 7 && m.len == 2 &&
	      !memcmp(m.data, "hi", 2), "a message there: taken at once");
	fdmsg_close(&m);
	close(sv[0]);
	CHECK(fdmsg_recv_within(sv[1], 1000, &m, &e) == 0, "the peer closed: 0");
	close(sv[1]);
}

int main(void)
{
	int sv[2], file, start;

	start = count_fds();
	file = memfd_create("fdmsg-test", MFD_CLOEXEC);
	if (!CHECK(file >= 0 && fdmsg_socketpair(sv) == 0, "memfd and socketpair"))
		return check_done();
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	test_round_trip(sv, file);
	test_hostile(sv, file);
	close(sv[0]);
	close(sv[1]);
	test_expect();
	test_ends(file);
	test_within();
	close(file);
	CHECK(count_fds() == start, "every fd the tests opened is closed");
	return check_done();
}
