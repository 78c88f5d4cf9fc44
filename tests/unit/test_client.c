/* Unit tests of libccm (client/libccm.c) and the subcommands' client side against
 * a fake keeper below the control protocol.
 *
 * The fake keeper is a forked child that accepts one connection on a real
 * AF_UNIX listener in a mkdtemp state directory, answers the first request
 * from a script (a good attach, a refusal, or one of many hostile
 * answers), passes its end of the connection back to this process and
 * exits; from then on this process plays the keeper on that fd.  The
 * windows and eventfds are created here, so the fake keeper's mapping is
 * ours to compare with the client's.  Every refusal is checked not to leak
 * a single fd (counted in /proc/self/fd).
 *
 * The LISTEN_FDS tests put fds at 3 and up: every fd of the fake keeper
 * is therefore moved to 100 and up first.
 *
 * Run with --as-service, this binary is the service `ccm-early exec`
 * starts in the exec test. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/ccm.h"
#include "check.h"
#include "client/attach.h"
#include "base/name.h"
#include "client/ctl.h"
#include "client/fdmsg.h"
#include "client/listenfds.h"
#include "cli/commands.h"

#define PORTS 2
#define SIZE  8192u

struct control {
	char dir[64];
	int lsock;
	int nports;
	uint32_t size;
	int win[CCM_PORTS_MAX];
	int evt[CCM_PORTS_MAX];      /* handed to the client */
	int evt_wr[CCM_PORTS_MAX];   /* the keeper's end: a pipe's; evt if an eventfd */
	uint8_t *map[CCM_PORTS_MAX];
};

/* What the fake keeper answers to the first request. */
enum answer {
	A_OK,
	A_ERR_EACCES,
	A_ERR_ENOENT,
	A_ERR_POSITIVE,
	A_NPORTS_ZERO,
	A_NPORTS_BIG,
	A_SIZE_ODD,
	A_SIZE_SMALL,
	A_SIZE_MISMATCH,
	A_KIND_UNKNOWN,
	A_EVENT_AS_WINDOW,
	A_WINDOW_AS_EVENT,
	A_INDEX_OUT,
	A_DUP,
	A_NO_FD,
	A_SHORT_ATTACHED,
	A_ATTACHED_WITH_FD,
	A_CLOSE_MIDWAY,
	A_FOREIGN_TYPE,
	A_TOO_MANY,
	A_STOP_DONE,
	A_STOP_REFUSED,
};

static bool cname(const char *s)
{
	return client_name_valid(s, strlen(s));
}

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

static int high(int fd)
{
	int h = fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 100);

	if (fd >= 0)
		close(fd);
	return h;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int make_ports(struct control *k, int nports, uint32_t size)
{
	int p;

	k->nports = nports;
	k->size = size;
	for (p = 0; p < nports; p++) {
		k->win[p] = high(memfd_create("ccm-test-window", MFD_CLOEXEC));
		/* Even ports as the keeper makes them (a pipe), odd ones as an
		 * older keeper did (an eventfd): libccm takes both. */
		if (p % 2 == 0) {
			int ends[2];

			if (pipe2(ends, O_CLOEXEC | O_NONBLOCK) < 0)
				return -1;
			k->evt[p] = high(ends[0]);
			k->evt_wr[p] = high(ends[1]);
		} else {
			k->evt[p] = k->evt_wr[p] = high(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
		}
		if (k->win[p] < 0 || k->evt[p] < 0 || k->evt_wr[p] < 0 ||
		    ftruncate(k->win[p], size) < 0)
			return -1;
		k->map[p] = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, k->win[p], 0);
		if (k->map[p] == MAP_FAILED)
			return -1;
	}
	return 0;
}

/* A notify, as the keeper gives it: 1 when it was given. */
static int signal_port(struct control *k, int p)
{
	uint64_t one = 1;

	if (k->evt_wr[p] != k->evt[p])
		return write(k->evt_wr[p], "", 1) == 1;
	return write(k->evt[p], &one, 8) == 8;
}

static void drop_ports(struct control *k)
{
	int p;

	for (p = 0; p < k->nports; p++) {
		munmap(k->map[p], k->size);
		close(k->win[p]);
		if (k->evt_wr[p] != k->evt[p])
			close(k->evt_wr[p]);
		close(k->evt[p]);
	}
	k->nports = 0;
}

static int keeper_init(struct control *k)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(k, 0, sizeof(*k));
	strcpy(k->dir, "/tmp/ccm-client-test.XXXXXX");
	if (!mkdtemp(k->dir))
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", k->dir, CTL_SOCKET_NAME);
	k->lsock = high(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
	if (k->lsock < 0 || bind(k->lsock, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(k->lsock, 8) < 0)
		return -1;
	return make_ports(k, PORTS, SIZE);
}

static void keeper_fini(struct control *k)
{
	char path[128];

	drop_ports(k);
	close(k->lsock);
	snprintf(path, sizeof(path), "%s/%s", k->dir, CTL_SOCKET_NAME);
	unlink(path);
	rmdir(k->dir);
}

/* --- the fake keeper, in a child ------------------------------------------------ */

static void send_port_fd(int conn, int index, int kind, int fd)
{
	struct ctl_port_fd p = { .index = (uint16_t)index, .kind = (uint16_t)kind };

	fdmsg_send(conn, CTL_PORT_FD, &p, sizeof(p), fd);
}

static void send_error(int conn, int status, const char *msg)
{
	struct ctl_error e;

	memset(&e, 0, sizeof(e));
	e.status = status;
	snprintf(e.msg, sizeof(e.msg), "%s", msg);
	fdmsg_send(conn, CTL_ERROR, &e, sizeof(e), -1);
}

static void send_done(int conn, uint32_t tag, int status)
{
	struct ctl_done d = { .tag = tag, .status = status };

	fdmsg_send(conn, CTL_DONE, &d, sizeof(d), -1);
}

static void send_event(int conn, int type, uint32_t node, uint64_t epoch)
{
	struct ctl_event ev = { .type = (uint16_t)type, .partner_node = node, .partner_epoch = epoch };

	fdmsg_send(conn, CTL_EVENT, &ev, sizeof(ev), -1);
}

static void send_msg(int conn, int port, const char *text)
{
	uint8_t buf[sizeof(struct ctl_send_hdr) + CTL_MSG_MAX];
	struct ctl_send_hdr h = { .tag = 0, .port = (uint16_t)port };
	size_t len = strlen(text);

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), text, len);
	fdmsg_send(conn, CTL_MSG, buf, (uint32_t)(sizeof(h) + len), -1);
}

/* The answer to CTL_ATTACH; hostile ones break the last port, so the
 * client has fds in hand to release when it notices. */
static void answer_attach(int conn, const struct control *k, enum answer a)
{
	struct ctl_attached at = {
		.nports = (uint16_t)k->nports, .partner_ready = 1, .port_size = k->size,
		.partner_node = 2, .partner_epoch = 77,
	};
	int p, last = k->nports - 1, wi, wk, wfd, efd;

	switch (a) {
	case A_ERR_EACCES:
		send_error(conn, -EACCES, "uid 1000 may not attach to svc");
		return;
	case A_ERR_ENOENT:
		send_error(conn, -ENOENT, "no client svc");
		return;
	case A_ERR_POSITIVE:
		send_error(conn, 13, "positive");
		return;
	case A_NPORTS_ZERO:
		at.nports = 0;
		break;
	case A_NPORTS_BIG:
		at.nports = CCM_PORTS_MAX + 1;
		break;
	case A_SIZE_ODD:
		at.port_size = k->size + 100;
		break;
	case A_SIZE_SMALL:
		at.port_size = 2048;
		break;
	case A_SIZE_MISMATCH:
		at.port_size = k->size * 2;
		break;
	case A_SHORT_ATTACHED:
		fdmsg_send(conn, CTL_ATTACHED, &at, 4, -1);
		return;
	default:
		break;
	}
	fdmsg_send(conn, CTL_ATTACHED, &at, sizeof(at), a == A_ATTACHED_WITH_FD ? k->win[0] : -1);
	for (p = 0; p < k->nports; p++) {
		wi = p;
		wk = CTL_FD_WINDOW;
		wfd = k->win[p];
		efd = k->evt[p];
		if (p == last) {
			if (a == A_CLOSE_MIDWAY)
				return;
			if (a == A_FOREIGN_TYPE)
				send_done(conn, 1, 0);
			wk = a == A_KIND_UNKNOWN ? 7 : wk;
			wfd = a == A_EVENT_AS_WINDOW ? efd : a == A_NO_FD ? -1 : wfd;
			efd = a == A_WINDOW_AS_EVENT ? k->win[p] : efd;
			wi = a == A_INDEX_OUT ? k->nports : a == A_DUP ? 0 : wi;
		}
		send_port_fd(conn, wi, wk, wfd);
		send_port_fd(conn, p, CTL_FD_EVENT, efd);
	}
	if (a == A_TOO_MANY)
		send_port_fd(conn, 0, CTL_FD_WINDOW, k->win[0]);
}

static void answer_stop(int conn, const struct fdmsg *m, enum answer a)
{
	struct ctl_stop s;

	if (m->type != CTL_STOP || m->len != sizeof(s))
		return;
	memcpy(&s, m->data, sizeof(s));
	if (a == A_STOP_REFUSED)
		send_error(conn, -EPERM, "only root may stop the keeper");
	else
		send_done(conn, 0, 0);
}

/* Accept one connection, answer its first request, hand the connection
 * and that request back over `back`, exit.  The alarm ends a child whose
 * client never came. */
static void child_keeper(const struct control *k, int back, enum answer a)
{
	struct fdmsg m;
	int conn;

	alarm(10);
	conn = accept4(k->lsock, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0 || fdmsg_recv(conn, &m, NULL) != 1)
		_exit(1);
	if (a == A_STOP_DONE || a == A_STOP_REFUSED)
		answer_stop(conn, &m, a);
	else if (m.type == CTL_ATTACH)
		answer_attach(conn, k, a);
	/* A keeper that closes must not keep the connection alive in flight. */
	fdmsg_send(back, m.type, m.data, m.len, a == A_CLOSE_MIDWAY ? -1 : conn);
	_exit(0);
}

struct fake {
	pid_t pid;
	int back;
};

static int fake_start(struct fake *f, const struct control *k, enum answer a)
{
	int sv[2];

	if (fdmsg_socketpair(sv) < 0)
		return -1;
	fflush(stdout);
	f->pid = fork();
	if (f->pid == 0) {
		close(sv[0]);
		child_keeper(k, sv[1], a);
	}
	close(sv[1]);
	f->back = sv[0];
	return f->pid < 0 ? -1 : 0;
}

/* The keeper's end of the connection (or -1), and the first request. */
static int fake_finish(struct fake *f, struct fdmsg *first)
{
	int conn = -1;

	if (fdmsg_recv(f->back, first, NULL) == 1) {
		conn = first->fd;
		first->fd = -1;
	}
	close(f->back);
	waitpid(f->pid, NULL, 0);
	return conn;
}

/* ccm_attach through the socket with the fake keeper answering a. */
static int attach_via(const struct control *k, enum answer a, struct ccm_client **c, int *conn,
		      struct ctl_attach *req)
{
	struct fdmsg first;
	struct fake f;
	int r;

	*conn = -1;
	if (fake_start(&f, k, a) < 0)
		return -999;
	r = ccm_attach("svc", k->dir, c);
	*conn = fake_finish(&f, &first);
	if (req && first.type == CTL_ATTACH && first.len == sizeof(*req))
		memcpy(req, first.data, sizeof(*req));
	return r;
}

/* A good attach and the keeper's end, nonblocking so that "nothing came"
 * reads as -EAGAIN. */
static struct ccm_client *attach_ok(const struct control *k, int *conn)
{
	struct ccm_client *c = NULL;

	if (attach_via(k, A_OK, &c, conn, NULL) != 0) {
		ccm_detach(c);
		return NULL;
	}
	fcntl(*conn, F_SETFL, O_NONBLOCK);
	return c;
}

static int recv_type(int conn, struct fdmsg *m)
{
	return fdmsg_recv(conn, m, NULL) == 1 ? m->type : -1;
}

/* --- attach --------------------------------------------------------------------- */

static void test_attach(struct control *k)
{
	struct ccm_client *c = NULL;
	struct ctl_attach req;
	struct pollfd pfd;
	uint8_t *w0, *w1;
	size_t len = 0;
	int conn, r, before = count_fds();

	memset(&req, 0xff, sizeof(req));
	r = attach_via(k, A_OK, &c, &conn, &req);
	CHECK(r == 0 && c, "attach through STATE_DIR/ccm.sock (%s)", ccm_strerror(r));
	if (!c)
		return;
	CHECK(!strcmp(req.name, "svc") && req.name[4] == 0 && req.name[CCM_NAME_MAX] == 0,
	      "CTL_ATTACH names the client, zero-padded");
	CHECK(ccm_nports(c) == PORTS, "2 ports");
	w0 = ccm_window(c, 0, &len);
	w1 = ccm_window(c, 1, NULL);
	CHECK(w0 && w1 && len == SIZE, "both windows mapped, %u bytes", SIZE);
	CHECK(!ccm_window(c, 2, &len) && !ccm_window(c, -1, &len), "no window for ports 2 and -1");
	memcpy(w0 + 4000, "from client", 11);
	memcpy(k->map[1] + SIZE - 11, "from keeper", 11);
	CHECK(!memcmp(k->map[0] + 4000, "from client", 11), "the client's writes land in the keeper's memfd");
	CHECK(!memcmp(w1 + SIZE - 11, "from keeper", 11), "the keeper's writes show in the client's window");
	pfd = (struct pollfd){ .fd = ccm_fd(c), .events = POLLIN };
	CHECK(pfd.fd >= 0 && poll(&pfd, 1, 0) == 0, "ccm_fd is quiet while nothing happens");
	ccm_detach(c);
	close(conn);
	CHECK(count_fds() == before, "detach releases every fd");
	ccm_detach(NULL);
}

static void test_attach_64_ports(struct control *k)
{
	struct ccm_client *c = NULL;
	int conn, r, p, ok = 1, before;

	drop_ports(k);
	if (make_ports(k, CCM_PORTS_MAX, 4096) < 0) {
		CHECK(0, "making 64 ports");
		return;
	}
	before = count_fds();
	r = attach_via(k, A_OK, &c, &conn, NULL);
	CHECK(r == 0 && ccm_nports(c) == CCM_PORTS_MAX, "64 ports of 4096 bytes attach (%d)", r);
	for (p = 0; c && p < CCM_PORTS_MAX; p++) {
		k->map[p][p] = (uint8_t)(p + 1);
		ok &= ((uint8_t *)ccm_window(c, p, NULL))[p] == p + 1;
	}
	CHECK(ok, "each of the 64 windows is its own port's memfd");
	ccm_detach(c);
	close(conn);
	CHECK(count_fds() == before, "64 ports: detach releases every fd");
	drop_ports(k);
	make_ports(k, PORTS, SIZE);
}

static void test_refused(struct control *k)
{
	static const struct {
		enum answer a;
		int want;
		const char *what;
	} cases[] = {
		{ A_ERR_EACCES, -EACCES, "CTL_ERROR -EACCES" },
		{ A_ERR_ENOENT, -ENOENT, "CTL_ERROR -ENOENT" },
		{ A_ERR_POSITIVE, -EPROTO, "CTL_ERROR with a positive status" },
		{ A_NPORTS_ZERO, -EPROTO, "0 ports" },
		{ A_NPORTS_BIG, -EPROTO, "65 ports" },
		{ A_SIZE_ODD, -EPROTO, "port size not whole pages" },
		{ A_SIZE_SMALL, -EPROTO, "port size under a page" },
		{ A_SIZE_MISMATCH, -EPROTO, "memfds smaller than the port size" },
		{ A_KIND_UNKNOWN, -EPROTO, "fd of unknown kind" },
		{ A_EVENT_AS_WINDOW, -EPROTO, "eventfd sent as a window" },
		{ A_WINDOW_AS_EVENT, -EPROTO, "memfd sent as an eventfd" },
		{ A_INDEX_OUT, -EPROTO, "port index out of range" },
		{ A_DUP, -EPROTO, "window 0 twice" },
		{ A_NO_FD, -EPROTO, "CTL_PORT_FD without an fd" },
		{ A_SHORT_ATTACHED, -EPROTO, "CTL_ATTACHED of 4 bytes" },
		{ A_ATTACHED_WITH_FD, -EPROTO, "CTL_ATTACHED with an fd" },
		{ A_CLOSE_MIDWAY, -ENOTCONN, "keeper closes half-way through the fds" },
		{ A_FOREIGN_TYPE, -EPROTO, "CTL_DONE among the port fds" },
	};
	struct ccm_client *c;
	size_t i;
	int conn, r, before;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		before = count_fds();
		c = (struct ccm_client *)&c;  /* must come back NULL */
		r = attach_via(k, cases[i].a, &c, &conn, NULL);
		if (conn >= 0)
			close(conn);
		CHECK(r == cases[i].want && !c, "%s: %d (%s)", cases[i].what, r, ccm_strerror(r));
		CHECK(count_fds() == before, "%s: no fd leaked (%d, was %d)", cases[i].what,
		      count_fds(), before);
	}
}

static void test_too_many(struct control *k)
{
	struct ccm_client *c = NULL;
	struct ccm_event ev;
	int conn, r, before = count_fds();

	r = attach_via(k, A_TOO_MANY, &c, &conn, NULL);
	CHECK(r == 0, "an extra CTL_PORT_FD is not part of the attach: attached (%d)", r);
	r = ccm_next(c, &ev, 1000);
	CHECK(r == -EPROTO, "the extra CTL_PORT_FD then breaks the channel: %d", r);
	CHECK(ccm_next(c, &ev, 0) == -EPROTO && ccm_write(c, 0, 0, 0, 1, 0, NULL) == -EPROTO,
	      "and it stays broken");
	ccm_detach(c);
	close(conn);
	CHECK(count_fds() == before, "the extra fd is closed too");
}

static void test_no_keeper(void)
{
	char dir[] = "/tmp/ccm-client-empty.XXXXXX";
	struct ccm_client *c = NULL;
	struct errbuf e;
	int r, sock = -1, before = count_fds();
	char longdir[200];

	CHECK(mkdtemp(dir) != NULL, "empty state dir");
	r = ccm_attach("svc", dir, &c);
	CHECK(r == -ECONNREFUSED && !c, "no socket: -ECONNREFUSED (%d)", r);
	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[0] = '/';
	longdir[sizeof(longdir) - 1] = 0;
	r = client_connect(longdir, &sock, &e);
	CHECK(r == -ENAMETOOLONG, "a state dir too long for sun_path: -ENAMETOOLONG");
	CHECK(ccm_attach("Svc", dir, &c) == -EINVAL && ccm_attach("", dir, &c) == -EINVAL &&
	      ccm_attach("a23456789012345678901234567890123", dir, &c) == -EINVAL &&
	      ccm_attach(NULL, dir, &c) == -EINVAL && ccm_attach("svc", dir, NULL) == -EINVAL,
	      "bad names are refused before connecting");
	CHECK(cname("a") && cname("nv_mirror2") && cname("a234567890123456789012345678901") &&
	      !cname("2a") && !cname("a-b") && !cname("a2345678901234567890123456789012"),
	      "client names are " CLIENT_NAME_RULE);
	rmdir(dir);
	CHECK(count_fds() == before, "no fd leaked without a keeper");
}

/* --- requests -------------------------------------------------------------------- */

static void test_requests(struct control *k)
{
	struct ccm_client *c;
	struct ctl_send_hdr sh;
	struct ctl_rw rw, want;
	uint8_t big[CTL_MSG_MAX + 1];
	struct fdmsg m;
	uint32_t t1 = 0, t2 = 0, t3 = 0;
	int conn;

	c = attach_ok(k, &conn);
	if (!CHECK(c != NULL, "attach for the request tests"))
		return;
	CHECK(ccm_write(c, 1, 16, 4096, 100, CCM_NOTIFY, &t1) == 0, "ccm_write");
	CHECK(recv_type(conn, &m) == CTL_WRITE && m.len == sizeof(rw) && m.fd < 0,
	      "the keeper gets CTL_WRITE, struct ctl_rw, no fd");
	memcpy(&rw, m.data, sizeof(rw));
	want = (struct ctl_rw){ .tag = t1, .port = 1, .flags = CTL_F_NOTIFY, .local_off = 16,
				 .remote_off = 4096, .len = 100 };
	CHECK(!memcmp(&rw, &want, sizeof(rw)) && t1 != 0, "tag, port 1, NOTIFY, 16 -> 4096, 100 bytes");

	CHECK(ccm_read(c, 0, SIZE - 8, 0, 8, &t2) == 0, "ccm_read");
	CHECK(recv_type(conn, &m) == CTL_READ && m.len == sizeof(rw), "the keeper gets CTL_READ");
	memcpy(&rw, m.data, sizeof(rw));
	want = (struct ctl_rw){ .tag = t2, .port = 0, .flags = 0, .local_off = SIZE - 8,
				 .remote_off = 0, .len = 8 };
	CHECK(!memcmp(&rw, &want, sizeof(rw)) && t2 != t1, "a new tag, port 0, no flags, the offsets");

	CHECK(ccm_send(c, 1, "ping", 4, &t3) == 0, "ccm_send");
	CHECK(recv_type(conn, &m) == CTL_SEND && m.len == sizeof(sh) + 4, "the keeper gets CTL_SEND, header + 4 bytes");
	memcpy(&sh, m.data, sizeof(sh));
	CHECK(sh.tag == t3 && sh.port == 1 && sh.reserved == 0 && !memcmp(m.data + sizeof(sh), "ping", 4) &&
	      t3 != t2 && t3 != t1, "its tag, port 1, the payload");
	memset(big, 'x', sizeof(big));
	CHECK(ccm_send(c, 0, big, CTL_MSG_MAX, NULL) == 0 && recv_type(conn, &m) == CTL_SEND &&
	      m.len == sizeof(sh) + CTL_MSG_MAX, "a %u-byte message goes in one fdmsg", CTL_MSG_MAX);
	CHECK(ccm_write(c, 0, SIZE - 192, SIZE - 192, 192, 0, NULL) == 0 &&
	      recv_type(conn, &m) == CTL_WRITE, "a write that ends at the window's end is fine");

	/* Bounds: refused here, nothing reaches the keeper. */
	CHECK(ccm_write(c, 2, 0, 0, 1, 0, NULL) == -EINVAL, "write: port 2 of 2");
	CHECK(ccm_write(c, -1, 0, 0, 1, 0, NULL) == -EINVAL, "write: port -1");
	CHECK(ccm_write(c, 0, 0, 0, 0, 0, NULL) == -EINVAL, "write: 0 bytes");
	CHECK(ccm_write(c, 0, 0, 0, CCM_OP_MAX + 1, 0, NULL) == -EINVAL, "write: over CCM_OP_MAX");
	CHECK(ccm_write(c, 0, 0, 0, 1, 2, NULL) == -EINVAL, "write: unknown flag");
	CHECK(ccm_write(c, 0, SIZE - 192, 0, 193, 0, NULL) == -ERANGE, "write: local end past the window");
	CHECK(ccm_write(c, 0, 0, SIZE, 1, 0, NULL) == -ERANGE, "write: remote offset at the window's end");
	CHECK(ccm_write(c, 0, UINT32_MAX, 0, 2, 0, NULL) == -ERANGE, "write: offset + len wraps 32 bits");
	CHECK(ccm_read(c, 0, 0, UINT32_MAX - 1, 8, NULL) == -ERANGE, "read: remote offset + len wraps");
	CHECK(ccm_read(c, 5, 0, 0, 8, NULL) == -EINVAL, "read: port 5");
	CHECK(ccm_read(c, 0, 0, 0, 0, NULL) == -EINVAL, "read: 0 bytes");
	CHECK(ccm_send(c, 0, "x", 0, NULL) == -EINVAL, "send: 0 bytes");
	CHECK(ccm_send(c, 0, big, CTL_MSG_MAX + 1, NULL) == -EINVAL, "send: over CTL_MSG_MAX");
	CHECK(ccm_send(c, 0, NULL, 1, NULL) == -EINVAL, "send: NULL");
	CHECK(ccm_send(c, 2, "x", 1, NULL) == -EINVAL, "send: port 2");
	CHECK(ccm_write(NULL, 0, 0, 0, 1, 0, NULL) == -EINVAL && ccm_next(NULL, NULL, 0) == -EINVAL,
	      "NULL client");
	CHECK(fdmsg_recv(conn, &m, NULL) == -EAGAIN, "none of the refused requests reached the keeper");
	ccm_detach(c);
	close(conn);
}

/* --- events ---------------------------------------------------------------------- */

static void test_events(struct control *k)
{
	struct ccm_client *c;
	struct ccm_event ev;
	struct pollfd pfd;
	int64_t t0;
	int conn, r, i;

	c = attach_ok(k, &conn);
	if (!CHECK(c != NULL, "attach for the event tests"))
		return;
	t0 = now_ms();
	r = ccm_next(c, &ev, 50);
	CHECK(r == -EAGAIN && now_ms() - t0 >= 45, "nothing within 50 ms: -EAGAIN after ~50 ms");
	CHECK(ccm_next(c, &ev, 0) == -EAGAIN, "timeout 0: -EAGAIN at once");

	send_done(conn, 42, -EIO);
	pfd = (struct pollfd){ .fd = ccm_fd(c), .events = POLLIN };
	CHECK(poll(&pfd, 1, 1000) == 1, "ccm_fd becomes readable for a CTL_DONE");
	r = ccm_next(c, &ev, 0);
	CHECK(r == 0 && ev.type == CCM_EV_DONE && ev.tag == 42 && ev.status == -EIO,
	      "CTL_DONE -> CCM_EV_DONE tag 42, -EIO");

	send_event(conn, CTL_EV_PARTNER_BACK, 2, 99);
	r = ccm_next(c, &ev, 1000);
	CHECK(r == 0 && ev.type == CCM_EV_PARTNER_BACK && ev.partner_node == 2 && ev.partner_epoch == 99,
	      "CTL_EVENT PARTNER_BACK -> CCM_EV_PARTNER_BACK, node 2, epoch 99");
	send_event(conn, CTL_EV_PARTNER_READY, 2, 99);
	send_event(conn, CTL_EV_PARTNER_LOST, 2, 99);
	send_event(conn, CTL_EV_TERMINATING, 2, 99);
	send_event(conn, CTL_EV_LINK_DOWN, 2, 99);
	send_event(conn, CTL_EV_LINK_UP, 2, 99);
	r = 0;
	r += ccm_next(c, &ev, 1000) == 0 && ev.type == CCM_EV_PARTNER_READY;
	r += ccm_next(c, &ev, 1000) == 0 && ev.type == CCM_EV_PARTNER_LOST;
	r += ccm_next(c, &ev, 1000) == 0 && ev.type == CCM_EV_TERMINATING;
	r += ccm_next(c, &ev, 1000) == 0 && ev.type == CCM_EV_LINK_DOWN;
	r += ccm_next(c, &ev, 1000) == 0 && ev.type == CCM_EV_LINK_UP;
	CHECK(r == 5, "every event type maps to its ccm event, in order");
	{
		struct ctl_event te = { .type = CTL_EV_TERMINATING, .link = 1, .partner_node = 2 };

		fdmsg_send(conn, CTL_EVENT, &te, sizeof(te), -1);
		r = ccm_next(c, &ev, 1000);
		CHECK(r == 0 && ev.type == CCM_EV_TERMINATING && ev.restarting && ev.link == 0,
		      "TERMINATING with link 1: restarting (and no link)");
		te.link = 0;
		fdmsg_send(conn, CTL_EVENT, &te, sizeof(te), -1);
		r = ccm_next(c, &ev, 1000);
		CHECK(r == 0 && ev.type == CCM_EV_TERMINATING && !ev.restarting,
		      "TERMINATING with link 0: going away");
	}

	send_msg(conn, 1, "hello partner");
	r = ccm_next(c, &ev, 1000);
	CHECK(r == 0 && ev.type == CCM_EV_MSG && ev.port == 1 && ev.len == 13 &&
	      !memcmp(ev.data, "hello partner", 13), "CTL_MSG -> CCM_EV_MSG, port 1, its bytes");

	CHECK(signal_port(k, 1) && signal_port(k, 0) && signal_port(k, 0),
	      "the keeper signals port 1 once, port 0 twice");
	CHECK(poll(&pfd, 1, 1000) == 1, "ccm_fd becomes readable for an eventfd");
	r = ccm_next(c, &ev, 0);
	CHECK(r == 0 && ev.type == CCM_EV_NOTIFY && ev.port == 0, "CCM_EV_NOTIFY port 0");
	r = ccm_next(c, &ev, 0);
	CHECK(r == 0 && ev.type == CCM_EV_NOTIFY && ev.port == 1, "CCM_EV_NOTIFY port 1");
	CHECK(ccm_next(c, &ev, 0) == -EAGAIN, "two signals of one port are one notify");
	CHECK(poll(&pfd, 1, 0) == 0, "ccm_fd quiet again");
	for (i = 0; i < 1500 && signal_port(k, 0); i++)
		;
	CHECK(i == 1500, "1500 notifies fit in port 0's pipe");
	r = ccm_next(c, &ev, 1000);
	CHECK(r == 0 && ev.type == CCM_EV_NOTIFY && ev.port == 0, "they are one CCM_EV_NOTIFY");
	CHECK(ccm_next(c, &ev, 0) == -EAGAIN, "and no more: the pipe was drained whole");

	send_error(conn, -EINVAL, "bad request");
	CHECK(ccm_next(c, &ev, 1000) == -EINVAL, "a CTL_ERROR after attaching returns its status");
	send_done(conn, 7, 0);
	CHECK(ccm_next(c, &ev, 1000) == 0 && ev.type == CCM_EV_DONE && ev.tag == 7,
	      "and the channel goes on");

	close(conn);
	r = ccm_next(c, &ev, 1000);
	CHECK(r == 0 && ev.type == CCM_EV_KEEPER_GONE, "keeper closes: CCM_EV_KEEPER_GONE");
	CHECK(ccm_next(c, &ev, 1000) == -ENOTCONN, "then -ENOTCONN");
	CHECK(ccm_next(c, &ev, -1) == -ENOTCONN, "even waiting for ever");
	CHECK(ccm_write(c, 0, 0, 0, 1, 0, NULL) == -ENOTCONN && ccm_send(c, 0, "x", 1, NULL) == -ENOTCONN,
	      "and requests: -ENOTCONN");
	ccm_detach(c);
}

/* The keeper breaks the protocol after attaching: -EPROTO, and it stays. */
static void test_broken_keeper(struct control *k)
{
	static const struct {
		uint16_t type;
		uint32_t len;
		int with_fd;
		const char *what;
	} cases[] = {
		{ 99, 0, 0, "unknown type" },
		{ CTL_DONE, 4, 0, "short CTL_DONE" },
		{ CTL_DONE, 8, 1, "CTL_DONE with an fd" },
		{ CTL_EVENT, 16, 0, "CTL_EVENT of unknown type 0" },
		{ CTL_MSG, 8, 0, "CTL_MSG with no payload" },
		{ CTL_MSG, 10, 0, "CTL_MSG for port 9" },
		{ CTL_ATTACHED, 24, 0, "CTL_ATTACHED again" },
		{ CTL_STATUS_REPLY, 4, 0, "CTL_STATUS_REPLY unasked" },
	};
	uint8_t buf[64];
	struct ccm_client *c;
	struct ccm_event ev;
	size_t i;
	int conn, r, before = count_fds();

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = attach_ok(k, &conn);
		if (!c)
			break;
		memset(buf, 0, sizeof(buf));
		buf[4] = 9;  /* CTL_MSG: port 9 */
		fdmsg_send(conn, cases[i].type, buf, cases[i].len, cases[i].with_fd ? k->win[0] : -1);
		r = ccm_next(c, &ev, 1000);
		CHECK(r == -EPROTO, "%s: -EPROTO (%d)", cases[i].what, r);
		CHECK(ccm_next(c, &ev, 0) == -EPROTO, "%s: the channel stays broken", cases[i].what);
		ccm_detach(c);
		close(conn);
	}
	CHECK(count_fds() == before, "broken keepers: no fd leaked");
}

/* --- the *_sync calls ------------------------------------------------------------ */

/* libccm's tags count up above 7 low bits (TAG_SEND, the port). */
static uint32_t tag_after(uint32_t t, uint32_t k)
{
	return (t & ~0x7fu) + (k << 7);
}

static void test_sync(struct control *k)
{
	const uint8_t *first;
	struct ccm_client *c;
	struct ccm_event ev;
	struct fdmsg m;
	uint32_t t;
	int conn, r, i, n;

	c = attach_ok(k, &conn);
	if (!CHECK(c != NULL, "attach for the sync tests"))
		return;
	CHECK(ccm_write(c, 0, 0, 0, 8, 0, &t) == 0, "an async write first");
	/* Tags count up, so the keeper can answer before the request. */
	send_event(conn, CTL_EV_PARTNER_LOST, 2, 5);
	send_msg(conn, 0, "queued");
	send_done(conn, t, 0);
	send_done(conn, tag_after(t, 1), -EIO);
	CHECK(signal_port(k, 1), "and a notify on port 1");
	r = ccm_write_sync(c, 0, 8, 8, 8, CCM_NOTIFY);
	CHECK(r == -EIO, "ccm_write_sync returns its own DONE's status (%d)", r);
	r = recv_type(conn, &m) == CTL_WRITE && recv_type(conn, &m) == CTL_WRITE;
	CHECK(r && ((struct ctl_rw *)m.data)->tag == tag_after(t, 1) && ((struct ctl_rw *)m.data)->flags == CTL_F_NOTIFY,
	      "the sync write went out with the next tag and NOTIFY");
	r = ccm_next(c, &ev, 0);
	CHECK(r == 0 && ev.type == CCM_EV_PARTNER_LOST && ev.partner_epoch == 5, "queued: PARTNER_LOST");
	r = ccm_next(c, &ev, 0);
	CHECK(r == 0 && ev.type == CCM_EV_MSG && ev.len == 6 && !memcmp(ev.data, "queued", 6),
	      "queued: the MSG, with its bytes");
	r = ccm_next(c, &ev, 0);
	CHECK(r == 0 && ev.type == CCM_EV_DONE && ev.tag == t && ev.status == 0, "queued: the async write's DONE");
	r = ccm_next(c, &ev, 0);
	CHECK(r == 0 && ev.type == CCM_EV_NOTIFY && ev.port == 1, "then the notify");
	CHECK(ccm_next(c, &ev, 0) == -EAGAIN, "then nothing");

	/* A MSG from ccm_next stays valid across a sync call. */
	send_msg(conn, 1, "first");
	r = ccm_next(c, &ev, 1000);
	first = ev.data;
	CHECK(r == 0 && ev.type == CCM_EV_MSG, "a MSG from ccm_next");
	send_msg(conn, 1, "SECOND");
	send_done(conn, tag_after(t, 2), 0);
	CHECK(ccm_read_sync(c, 1, 0, 0, 16) == 0, "ccm_read_sync: 0");
	CHECK(!memcmp(first, "first", 5), "the earlier MSG's data is still intact");
	r = ccm_next(c, &ev, 0);
	CHECK(r == 0 && ev.type == CCM_EV_MSG && ev.len == 6 && !memcmp(ev.data, "SECOND", 6),
	      "the MSG the sync call saw comes next");
	while (fdmsg_recv(conn, &m, NULL) == 1)
		;

	/* 65 events while waiting: 64 queue up, then -ENOBUFS, nothing lost. */
	for (i = 0; i < 65; i++)
		send_event(conn, CTL_EV_LINK_UP, 2, (uint64_t)i);
	send_done(conn, tag_after(t, 3), 0);
	r = ccm_write_sync(c, 0, 0, 0, 8, 0);
	CHECK(r == -ENOBUFS, "a full queue: -ENOBUFS (%d)", r);
	for (i = 0, n = 0; i < 65; i++)
		n += ccm_next(c, &ev, 0) == 0 && ev.type == CCM_EV_LINK_UP && ev.partner_epoch == (uint64_t)i;
	CHECK(n == 65, "all 65 events come through ccm_next, in order (%d)", n);
	r = ccm_next(c, &ev, 0);
	CHECK(r == 0 && ev.type == CCM_EV_DONE && ev.tag == tag_after(t, 3), "then the sync write's own DONE");
	while (fdmsg_recv(conn, &m, NULL) == 1)
		;

	/* The keeper goes while a sync call waits. */
	send_event(conn, CTL_EV_TERMINATING, 2, 5);
	shutdown(conn, SHUT_WR);
	r = ccm_write_sync(c, 0, 0, 0, 8, 0);
	CHECK(r == -ENOTCONN, "keeper gone during a sync write: -ENOTCONN");
	r = ccm_next(c, &ev, 0);
	CHECK(r == 0 && ev.type == CCM_EV_TERMINATING, "queued: TERMINATING");
	r = ccm_next(c, &ev, 0);
	CHECK(r == 0 && ev.type == CCM_EV_KEEPER_GONE, "queued: KEEPER_GONE");
	CHECK(ccm_next(c, &ev, 0) == -ENOTCONN, "then -ENOTCONN");
	ccm_detach(c);
	close(conn);

	c = attach_ok(k, &conn);
	close(conn);
	CHECK(c && ccm_read_sync(c, 0, 0, 0, 8) == -ENOTCONN, "a sync read to a closed keeper: -ENOTCONN");
	CHECK(ccm_next(c, &ev, 0) == 0 && ev.type == CCM_EV_KEEPER_GONE, "and ccm_next says KEEPER_GONE");
	ccm_detach(c);
}

/* --- the send window ---------------------------------------------------------------- */

/* CCM_SEND_WINDOW sends per port without their DONE, then -EAGAIN; any
 * DONE, failed or not, gives its credit back; ccm_send_sync waits for it. */
static void test_send_window(struct control *k)
{
	uint32_t tags[CCM_SEND_WINDOW], t1, sync_tag;
	struct ccm_client *c;
	struct ccm_event ev;
	struct fdmsg m;
	int conn, r, n = 0;

	c = attach_ok(k, &conn);
	if (!CHECK(c != NULL, "attach for the send window"))
		return;
	for (int i = 0; i < CCM_SEND_WINDOW; i++)
		n += ccm_send(c, 0, "m", 1, &tags[i]) == 0;
	CHECK(n == CCM_SEND_WINDOW, "%d sends on port 0 without a DONE (%d)", CCM_SEND_WINDOW, n);
	CHECK(ccm_send(c, 0, "m", 1, NULL) == -EAGAIN, "one more: -EAGAIN");
	CHECK(ccm_send(c, 1, "m", 1, &t1) == 0, "port 1 has a window of its own");
	send_done(conn, tags[0], 0);
	r = ccm_next(c, &ev, 1000);
	CHECK(r == 0 && ev.type == CCM_EV_DONE && ev.tag == tags[0], "the first send's DONE");
	CHECK(ccm_send(c, 0, "m", 1, &tags[0]) == 0, "gave its credit back");
	CHECK(ccm_send(c, 0, "m", 1, NULL) == -EAGAIN, "one credit only");
	/* ccm_send_sync: no credit, so it waits for one (a failed DONE gives
	 * it too), then sends, then waits for its own DONE. */
	sync_tag = tag_after(tags[0], 1) | 0x40;
	send_done(conn, tags[1], -ECONNRESET);
	send_done(conn, sync_tag, -EIO);
	r = ccm_send_sync(c, 0, "sync", 4);
	CHECK(r == -EIO, "ccm_send_sync waited for credit, then returned its DONE's status (%d)", r);
	r = ccm_next(c, &ev, 0);
	CHECK(r == 0 && ev.type == CCM_EV_DONE && ev.tag == tags[1] && ev.status == -ECONNRESET,
	      "the DONE that gave the credit is kept for ccm_next");
	n = 0;
	while (fdmsg_recv(conn, &m, NULL) == 1)
		n += m.type == CTL_SEND;
	CHECK(n == CCM_SEND_WINDOW + 3, "the keeper got every send that was not refused (%d)", n);
	ccm_detach(c);
	close(conn);
}

/* --- LISTEN_FDS ------------------------------------------------------------------ */

static void test_listen_fds(struct control *k)
{
	static const char *const names[] = {
		"ccm.control", "ccm.window.0", "ccm.event.0", "ccm.window.1", "ccm.event.1",
	};
	static const char *const names_short[] = {
		"ccm.control", "ccm.window.0", "ccm.event.0", "ccm.window.1",
	};
	static const char *const foreign[] = { "http" };
	struct ccm_client *c = NULL;
	struct ccm_event ev;
	struct errbuf e = { "" };
	int sv[2], fds[5], r, before;
	uint8_t *w;

	if (fdmsg_socketpair(sv) < 0)
		return;
	sv[0] = high(sv[0]);
	sv[1] = high(sv[1]);
	fds[0] = sv[1];
	fds[1] = k->win[0];
	fds[2] = k->evt[0];
	fds[3] = k->win[1];
	fds[4] = k->evt[1];
	before = count_fds();
	r = listenfds_install(fds, names, 5, &e);
	CHECK(r == 0, "install control, window.0, event.0, window.1, event.1 (%s)", e.msg);
	r = ccm_attach("svc", "/nonexistent", &c);
	CHECK(r == 0 && ccm_nports(c) == 2, "ccm_attach takes LISTEN_FDS (%s)", ccm_strerror(r));
	CHECK(!getenv("LISTEN_FDS") && !getenv("LISTEN_PID") && !getenv("LISTEN_FDNAMES"),
	      "and unsets the variables");
	w = ccm_window(c, 1, NULL);
	CHECK(w && (memcpy(k->map[1] + 8, "via listen", 10), !memcmp(w + 8, "via listen", 10)),
	      "window.1 is the keeper's memfd");
	send_done(sv[0], 3, 0);
	r = ccm_next(c, &ev, 1000);
	CHECK(r == 0 && ev.type == CCM_EV_DONE && ev.tag == 3, "ccm.control is the channel");
	CHECK(ccm_write(c, 0, 0, 0, 4, 0, NULL) == 0, "requests go over it");
	ccm_detach(c);
	CHECK(fcntl(3, F_GETFD) < 0 && fcntl(7, F_GETFD) < 0, "detach closes fds 3..7");
	CHECK(count_fds() == before, "LISTEN_FDS: no fd leaked");

	/* A hand-over lacking port 1's eventfd is refused and released. */
	listenfds_install(fds, names_short, 4, &e);
	c = (struct ccm_client *)&c;
	r = ccm_attach("svc", "/nonexistent", &c);
	CHECK(r == -EINVAL && !c, "a port without its eventfd: -EINVAL (%d)", r);
	CHECK(count_fds() == before && !getenv("LISTEN_FDS"), "its fds closed, the variables unset");

	/* LISTEN_FDS for someone else: left alone, the socket is asked. */
	listenfds_install(fds, foreign, 1, &e);
	r = ccm_attach("svc", "/nonexistent", &c);
	CHECK(r == -ECONNREFUSED, "someone else's LISTEN_FDS: ask the keeper's socket (%d)", r);
	CHECK(getenv("LISTEN_FDS") && fcntl(3, F_GETFD) >= 0, "and leave their fd and variables");
	close(3);
	listenfds_install(NULL, NULL, 0, &e);
	close(sv[0]);
	close(sv[1]);
	(void)k;
}

/* --- the subcommands ------------------------------------------------------------------- */

static int call_verb(int (*verb)(int, char **), char **argv)
{
	int argc = 0, saved_out, saved_err, devnull, r;

	while (argv[argc])
		argc++;
	fflush(stdout);
	saved_out = dup(1);
	saved_err = dup(2);
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	dup2(devnull, 1);
	dup2(devnull, 2);
	optind = 0;
	r = verb(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, 1);
	dup2(saved_err, 2);
	close(saved_out);
	close(saved_err);
	close(devnull);
	return r;
}

static void test_stop(struct control *k)
{
	char name[] = "ccm-early stop", sd[] = "--state-dir", restart[] = "--restart",
	     grace[] = "--grace", ms[] = "1500", bad[] = "15x", huge[] = "99999999999",
	     none[] = "/nonexistent";
	char *argv_ok[] = { name, sd, k->dir, restart, grace, ms, NULL };
	char *argv_bad[] = { name, grace, bad, NULL };
	char *argv_huge[] = { name, grace, huge, NULL };
	char *argv_none[] = { name, sd, none, NULL };
	struct ctl_stop s = { 0 };
	struct fdmsg first;
	struct fake f;
	int r, conn;

	CHECK(call_verb(cmd_stop, argv_bad) == 2 && call_verb(cmd_stop, argv_huge) == 2,
	      "stop --grace 15x or 99999999999: usage error, 2");
	CHECK(call_verb(cmd_stop, argv_none) == 1, "stop with no keeper: 1");
	fake_start(&f, k, A_STOP_DONE);
	r = call_verb(cmd_stop, argv_ok);
	conn = fake_finish(&f, &first);
	if (first.len == sizeof(s))
		memcpy(&s, first.data, sizeof(s));
	CHECK(r == 0, "stop, answered CTL_DONE: 0");
	CHECK(first.type == CTL_STOP && s.restart == 1 && s.grace_ms == 1500,
	      "CTL_STOP{restart 1, grace 1500}");
	close(conn);
	fake_start(&f, k, A_STOP_REFUSED);
	r = call_verb(cmd_stop, argv_ok);
	close(fake_finish(&f, &first));
	CHECK(r == 1, "stop refused with CTL_ERROR: 1");
}

/* The service `ccm-early exec` starts in test_exec: attach by LISTEN_FDS,
 * check the windows, write through the keeper; the exit code says how far
 * it got. */
static int service_main(void)
{
	struct ccm_client *c;
	size_t len;
	uint8_t *w;
	int r;

	if (ccm_attach("svc", "/nonexistent", &c) != 0)
		return 10;
	if (getenv("LISTEN_FDS") || ccm_nports(c) != PORTS)
		return 11;
	w = ccm_window(c, 0, &len);
	if (!w || len != SIZE || memcmp(w, "from keeper", 11))
		return 12;
	memcpy(w + 100, "hello", 5);
	r = ccm_write_sync(c, 0, 100, 0, 5, CCM_NOTIFY);
	ccm_detach(c);
	return r == 0 ? 0 : 13;
}

static void test_exec(struct control *k)
{
	char name[] = "ccm-early exec", sd[] = "--state-dir", svc[] = "svc", dash[] = "--",
	     self[] = "/proc/self/exe", as[] = "--as-service", none[] = "/nonexistent",
	     bad[] = "Svc";
	char *argv_ok[] = { name, sd, k->dir, svc, dash, self, as, NULL };
	char *argv_nodash[] = { name, sd, k->dir, svc, self, NULL };
	char *argv_bad[] = { name, bad, dash, self, NULL };
	char *argv_none[] = { name, sd, none, svc, dash, self, NULL };
	struct ctl_rw rw;
	struct fdmsg first, m;
	struct pollfd pfd;
	struct fake f;
	int conn, status = -1;
	pid_t pid;

	CHECK(call_verb(cmd_exec, argv_nodash) == 2, "exec without --: usage error, 2");
	CHECK(call_verb(cmd_exec, argv_bad) == 2, "exec with a bad client name: 2");
	CHECK(call_verb(cmd_exec, argv_none) == 1, "exec with no keeper: 1");

	memcpy(k->map[0], "from keeper", 11);
	fake_start(&f, k, A_OK);
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(call_verb(cmd_exec, argv_ok));
	conn = fake_finish(&f, &first);
	pfd = (struct pollfd){ .fd = conn, .events = POLLIN };
	CHECK(conn >= 0 && poll(&pfd, 1, 10000) == 1 && recv_type(conn, &m) == CTL_WRITE &&
	      m.len == sizeof(rw), "the exec'd service's write reaches the keeper over the handed-over channel");
	memcpy(&rw, m.data, sizeof(rw));
	CHECK(rw.port == 0 && rw.local_off == 100 && rw.len == 5 && rw.flags == CTL_F_NOTIFY &&
	      !memcmp(k->map[0] + 100, "hello", 5), "with its bytes in the shared window");
	send_done(conn, rw.tag, 0);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the service attached through LISTEN_FDS and got its DONE (exit %d)",
	      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	close(conn);
}

/* --- names ----------------------------------------------------------------------- */

static void test_names(void)
{
	CHECK(!strcmp(ccm_strerror(-ENOENT), "no such client on this keeper") &&
	      !strcmp(ccm_strerror(-EACCES), "not allowed to attach to this client") &&
	      !strcmp(ccm_strerror(-ECONNREFUSED), "no keeper is running (no socket)") &&
	      !strcmp(ccm_strerror(-ENOTCONN), "the keeper has gone"), "ccm_strerror: our texts");
	CHECK(!strcmp(ccm_strerror(-EIO), strerror(EIO)), "ccm_strerror: else strerror");
	CHECK(!strcmp(ccm_event_name(CCM_EV_NOTIFY), "notify") &&
	      !strcmp(ccm_event_name(CCM_EV_KEEPER_GONE), "keeper-gone") &&
	      !strcmp(ccm_event_name((enum ccm_event_type)0), "unknown") &&
	      !strcmp(ccm_event_name((enum ccm_event_type)99), "unknown"), "ccm_event_name");
}

int main(int argc, char **argv)
{
	struct control k;

	if (argc == 2 && !strcmp(argv[1], "--as-service"))
		return service_main();
	signal(SIGPIPE, SIG_IGN);
	if (!CHECK(keeper_init(&k) == 0, "fake keeper: state dir, listener, ports"))
		return check_done();
	test_attach(&k);
	test_attach_64_ports(&k);
	test_refused(&k);
	test_too_many(&k);
	test_no_keeper();
	test_requests(&k);
	test_events(&k);
	test_broken_keeper(&k);
	test_sync(&k);
	test_send_window(&k);
	test_listen_fds(&k);
	test_stop(&k);
	test_exec(&k);
	test_names();
	keeper_fini(&k);
	return check_done();
}
