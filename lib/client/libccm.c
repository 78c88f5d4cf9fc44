/* client: libccm (ccm.h) over the keeper's control protocol (ctl.h), and
 * the attach handshake it shares with `ccm-early exec` (client_attach.h).
 *
 * One struct ccm_client holds everything: the channel, one epoll fd that
 * stands for the channel and every port's event fd (so ccm_fd is one fd),
 * the mapped windows, and the events a *_sync call saw while it waited. */
#include "client/ccm.h"
#include "client/attach.h"
#include "base/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/instance.h"
#include "base/name.h"
#include "base/num.h"
#include "client/fdmsg.h"
#include "client/listenfds.h"

#define ATTACH_TIMEOUT_MS  10000   /* a keeper answers at once; this only ends a hang */
_Static_assert(CCM_SEND_WINDOW == CCM_PORT_MSG_WINDOW, "libccm and the keeper count one window");

#define QUEUE_MAX          64      /* events a *_sync call keeps for ccm_next */
#define CHANNEL_KEY        UINT32_MAX  /* epoll data of the channel; ports are 0..63 */

/* --- the attach handshake (client_attach.h) ---------------------------------- */

/* A name from the caller: NUL-terminated, or NULL. */
static bool name_ok(const char *name)
{
	return name && client_name_valid(name, strnlen(name, CCM_NAME_MAX + 1));
}

void client_fds_init(struct client_fds *f)
{
	int i;

	memset(f, 0, sizeof(*f));
	f->sock = -1;
	for (i = 0; i < CCM_PORTS_MAX; i++)
		f->window[i] = f->event[i] = -1;
}

void client_fds_close(struct client_fds *f)
{
	int i;

	if (f->sock >= 0)
		close(f->sock);
	for (i = 0; i < CCM_PORTS_MAX; i++) {
		if (f->window[i] >= 0)
			close(f->window[i]);
		if (f->event[i] >= 0)
			close(f->event[i]);
	}
	client_fds_init(f);
}

int ccm_instance_dir(const char *instance, char *buf, size_t cap)
{
	return instance_state_dir(instance ? instance : instance_from_env(), buf, cap);
}

int client_connect(const char *state_dir, int *sock, struct errbuf *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dflt[INSTANCE_PATH_MAX];
	const char *dir = state_dir;
	int fd, n, r;

	if (!dir) {
		r = ccm_instance_dir(NULL, dflt, sizeof(dflt));
		if (r < 0)
			return errbuf_set(e, r, "$%s: %s", INSTANCE_ENV, r == -EINVAL ?
					  "not an instance name (" INSTANCE_NAME_RULE ")" :
					  strerror(-r));
		dir = dflt;
	}

	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, CTL_SOCKET_NAME);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return errbuf_set(e, -ENAMETOOLONG, "%s/%s: longer than a Unix socket path",
				  dir, CTL_SOCKET_NAME);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errbuf_set(e, -errno, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		/* No socket file and a stale one both mean: no keeper.  -ENOENT
		 * is kept for "no such client", which only a keeper can say. */
		if (r == -ENOENT || r == -ECONNREFUSED)
			return errbuf_set(e, -ECONNREFUSED, "no keeper at %s", sa.sun_path);
		return errbuf_set(e, r, "%s: %s", sa.sun_path, strerror(-r));
	}
	*sock = fd;
	return 0;
}

/* One message within the attach deadline.  -ENOTCONN when the keeper
 * closed, -EPROTO for anything fdmsg refuses. */
static int recv_timed(int sock, struct fdmsg *m, struct errbuf *e)
{
	int r = fdmsg_recv_within(sock, ATTACH_TIMEOUT_MS, m, e);

	if (r == -ETIMEDOUT)
		return errbuf_prefix(e, r, "the keeper");
	if (r == 0 || r == -ECONNRESET)
		return errbuf_set(e, -ENOTCONN, "the keeper closed the connection");
	if (r == -EBADMSG || r == -EMSGSIZE)
		return errbuf_prefix(e, -EPROTO, "keeper's answer");
	if (r < 0)
		return errbuf_set(e, r, "reading the keeper's answer: %s", strerror(-r));
	return 0;
}

int client_window_check(int fd, uint32_t *size, struct errbuf *e)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return errbuf_set(e, -EPROTO, "window fd: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return errbuf_set(e, -EPROTO, "window fd is not a memfd");
	if (st.st_size < CCM_PORT_SIZE_MIN || st.st_size > CCM_PORT_SIZE_MAX ||
	    st.st_size % CCM_PORT_SIZE_MIN)
		return errbuf_set(e, -EPROTO, "window of %lld bytes, not whole pages from %u to %u",
				  (long long)st.st_size, CCM_PORT_SIZE_MIN, CCM_PORT_SIZE_MAX);
	if (*size && (uint32_t)st.st_size != *size)
		return errbuf_set(e, -EPROTO, "window of %lld bytes, the port size is %u",
				  (long long)st.st_size, *size);
	*size = (uint32_t)st.st_size;
	return 0;
}

/* A port's event fd is a pipe's read end (an older keeper's: an eventfd,
 * which has no file type of its own); what we can rule out is a window,
 * socket or directory standing where it should be. */
static int event_check(int fd, struct errbuf *e)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return errbuf_set(e, -EPROTO, "event fd: %s", strerror(errno));
	if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISSOCK(st.st_mode))
		return errbuf_set(e, -EPROTO, "event fd is not a pipe or eventfd (mode 0%o)",
				  (unsigned)st.st_mode);
	return 0;
}

static int take_attached(const struct fdmsg *m, struct client_fds *f, struct errbuf *e)
{
	struct ctl_error err;
	const struct ctl_attached *a = &f->att;

	if (m->fd >= 0)
		return errbuf_set(e, -EPROTO, "keeper's answer type %u came with an fd", m->type);
	if (m->type == CTL_ERROR) {
		if (fdmsg_expect(m, sizeof(err), sizeof(err), e) < 0)
			return errbuf_prefix(e, -EPROTO, "keeper's answer");
		memcpy(&err, m->data, sizeof(err));
		err.msg[sizeof(err.msg) - 1] = '\0';
		if (err.status >= 0 || err.status < -4095)
			return errbuf_set(e, -EPROTO, "keeper refused with status %d", err.status);
		return errbuf_set(e, err.status, "%s", err.msg[0] ? err.msg : strerror(-err.status));
	}
	if (m->type != CTL_ATTACHED)
		return errbuf_set(e, -EPROTO, "keeper answered CTL_ATTACH with type %u", m->type);
	if (fdmsg_expect(m, sizeof(f->att), sizeof(f->att), e) < 0)
		return errbuf_prefix(e, -EPROTO, "keeper's answer");
	memcpy(&f->att, m->data, sizeof(f->att));
	if (a->nports < 1 || a->nports > CCM_PORTS_MAX)
		return errbuf_set(e, -EPROTO, "keeper says %u ports, not 1 to %d", a->nports,
				  CCM_PORTS_MAX);
	if (a->port_size < CCM_PORT_SIZE_MIN || a->port_size > CCM_PORT_SIZE_MAX ||
	    a->port_size % CCM_PORT_SIZE_MIN)
		return errbuf_set(e, -EPROTO, "keeper says ports of %u bytes, not whole pages from %u to %u",
				  a->port_size, CCM_PORT_SIZE_MIN, CCM_PORT_SIZE_MAX);
	f->nports = a->nports;
	f->port_size = a->port_size;
	return 0;
}

/* One CTL_PORT_FD: its fd moves into f only once every check has passed. */
static int take_port_fd(struct fdmsg *m, struct client_fds *f, struct errbuf *e)
{
	struct ctl_port_fd p;
	int *slot, r;

	if (m->type != CTL_PORT_FD)
		return errbuf_set(e, -EPROTO, "type %u among the port fds", m->type);
	if (fdmsg_expect(m, sizeof(p), sizeof(p), e) < 0)
		return errbuf_prefix(e, -EPROTO, "port fd");
	memcpy(&p, m->data, sizeof(p));
	if (m->fd < 0)
		return errbuf_set(e, -EPROTO, "port %u: no fd came with it", p.index);
	if (p.index >= f->nports)
		return errbuf_set(e, -EPROTO, "port fd for port %u of %d", p.index, f->nports);
	if (p.kind == CTL_FD_WINDOW)
		slot = &f->window[p.index];
	else if (p.kind == CTL_FD_EVENT)
		slot = &f->event[p.index];
	else
		return errbuf_set(e, -EPROTO, "port %u: fd of unknown kind %u", p.index, p.kind);
	if (*slot >= 0)
		return errbuf_set(e, -EPROTO, "port %u: a second %s fd", p.index,
				  p.kind == CTL_FD_WINDOW ? "window" : "event");
	r = p.kind == CTL_FD_WINDOW ? client_window_check(m->fd, &f->port_size, e)
				    : event_check(m->fd, e);
	if (r < 0)
		return errbuf_prefix(e, r, "port %u", p.index);
	*slot = m->fd;
	m->fd = -1;
	return 0;
}

static int attach_on(int sock, const char *name, struct client_fds *f, struct fdmsg *m,
		     struct errbuf *e)
{
	struct ctl_attach req;
	int i, r;

	memset(&req, 0, sizeof(req));
	memcpy(req.name, name, strlen(name));
	r = fdmsg_send(sock, CTL_ATTACH, &req, sizeof(req), -1);
	if (r < 0)
		return errbuf_set(e, r == -EPIPE ? -ENOTCONN : r, "sending CTL_ATTACH: %s",
				  strerror(-r));
	r = recv_timed(sock, m, e);
	if (r < 0)
		return r;
	r = take_attached(m, f, e);
	fdmsg_close(m);
	if (r < 0)
		return r;
	/* Exactly 2 * nports, whatever else the keeper might send: anything
	 * after them is the channel's business (events, messages). */
	for (i = 0; i < 2 * f->nports; i++) {
		r = recv_timed(sock, m, e);
		if (r < 0)
			return r;
		r = take_port_fd(m, f, e);
		fdmsg_close(m);
		if (r < 0)
			return r;
	}
	return 0;
}

int client_attach_fds(const char *name, const char *state_dir, struct client_fds *f,
		      struct errbuf *e)
{
	struct fdmsg *m;
	int r;

	client_fds_init(f);
	if (!name_ok(name))
		return errbuf_set(e, -EINVAL, "client name is not " CLIENT_NAME_RULE);
	m = malloc(sizeof(*m));
	if (!m)
		return errbuf_set(e, -ENOMEM, "out of memory");
	r = client_connect(state_dir, &f->sock, e);
	if (r == 0)
		r = attach_on(f->sock, name, f, m, e);
	if (r < 0)
		client_fds_close(f);
	free(m);
	return r;
}

/* --- the library --------------------------------------------------------------- */

enum chan_state { CHAN_OPEN, CHAN_GONE, CHAN_BROKEN };

struct queued {
	struct ccm_event ev;
	uint8_t *data;               /* MSG: a copy, owned by the queue */
};

struct ccm_client {
	int sock;
	int ep;
	int nports;
	uint32_t port_size;
	uint32_t next_tag;           /* a counter: see take_tag */
	enum chan_state chan;
	uint16_t sends[CCM_PORTS_MAX];  /* messages in flight per port: the
	                                   keeper's window (CCM_PORT_MSG_WINDOW) */
	int event[CCM_PORTS_MAX];
	void *window[CCM_PORTS_MAX];
	uint64_t notify;             /* ports whose eventfd fired, not yet returned */
	struct queued q[QUEUE_MAX];
	unsigned qhead, qlen;
	uint8_t *held;               /* a queued MSG's data ccm_next handed out */
	struct fdmsg rx;             /* ccm_next's last message: MSG data points here */
	struct fdmsg scratch;        /* what the *_sync calls read, so rx stays valid */
};

void ccm_detach(struct ccm_client *c)
{
	int i;

	if (!c)
		return;
	for (i = 0; i < c->nports; i++) {
		if (c->window[i])
			munmap(c->window[i], c->port_size);
		if (c->event[i] >= 0)
			close(c->event[i]);
	}
	for (; c->qlen; c->qlen--, c->qhead = (c->qhead + 1) % QUEUE_MAX)
		free(c->q[c->qhead].data);
	free(c->held);
	if (c->ep >= 0)
		close(c->ep);
	if (c->sock >= 0)
		close(c->sock);
	free(c);
}

static int epoll_add(int ep, int fd, uint32_t key)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = key };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* Move f's fds into a new client: map every window (its fd is closed once
 * mapped: the mapping keeps the memfd), watch the channel and every
 * eventfd from one epoll fd.  f is left all -1 either way. */
static int client_build(struct client_fds *f, struct ccm_client **out)
{
	struct ccm_client *c = calloc(1, sizeof(*c));
	int i, r;

	if (!c) {
		client_fds_close(f);
		return -ENOMEM;
	}
	c->sock = f->sock;
	c->nports = f->nports;
	c->port_size = f->port_size;
	c->next_tag = 1;
	c->rx.fd = c->scratch.fd = -1;
	memcpy(c->event, f->event, sizeof(c->event));
	f->sock = -1;
	for (i = 0; i < CCM_PORTS_MAX; i++)
		f->event[i] = -1;
	c->ep = epoll_create1(EPOLL_CLOEXEC);
	r = c->ep < 0 ? -errno : epoll_add(c->ep, c->sock, CHANNEL_KEY);
	for (i = 0; r == 0 && i < c->nports; i++) {
		c->window[i] = mmap(NULL, c->port_size, PROT_READ | PROT_WRITE, MAP_SHARED,
				    f->window[i], 0);
		if (c->window[i] == MAP_FAILED) {
			c->window[i] = NULL;
			r = -errno;
			break;
		}
		r = epoll_add(c->ep, c->event[i], (uint32_t)i);
	}
	client_fds_close(f);
	if (r < 0) {
		ccm_detach(c);
		return r;
	}
	*out = c;
	return 0;
}

/* "ccm.window.N" / "ccm.event.N" -> N, or -1.  N as exec writes it, so
 * no leading zero: one name per fd. */
static int port_of(const char *name, const char *prefix)
{
	size_t len = strlen(prefix);
	const char *s = name + len;
	uint32_t n;

	if (strncmp(name, prefix, len) || (s[0] == '0' && s[1]) ||
	    num_parse_u32(s, 0, CCM_PORTS_MAX - 1, &n) < 0)
		return -1;
	return (int)n;
}

/* Sort the handed-over fds into f by name.  Names not ours are left alone:
 * they belong to whoever else the program was started for. */
static int sort_listen_fds(const char *const names[], int n, struct client_fds *f,
			   struct errbuf *e)
{
	int i, p, *slot;

	for (i = 0; i < n; i++) {
		p = -1;
		if (!strcmp(names[i], "ccm.control"))
			slot = &f->sock;
		else if ((p = port_of(names[i], "ccm.window.")) >= 0)
			slot = &f->window[p];
		else if ((p = port_of(names[i], "ccm.event.")) >= 0)
			slot = &f->event[p];
		else
			continue;
		if (*slot >= 0)
			return errbuf_set(e, -EINVAL, "LISTEN_FDNAMES names %s twice", names[i]);
		*slot = LISTENFDS_START + i;
		if (p + 1 > f->nports)
			f->nports = p + 1;
	}
	for (p = 0; p < f->nports; p++) {
		if (f->window[p] < 0 || f->event[p] < 0)
			return errbuf_set(e, -EINVAL, "LISTEN_FDS lacks port %d's %s", p,
					  f->window[p] < 0 ? "window" : "eventfd");
		if (client_window_check(f->window[p], &f->port_size, e) < 0 ||
		    event_check(f->event[p], e) < 0)
			return errbuf_prefix(e, -EINVAL, "LISTEN_FDS port %d", p);
	}
	if (f->nports == 0)
		return errbuf_set(e, -EINVAL, "LISTEN_FDS has ccm.control but no ports");
	return 0;
}

/* The LISTEN_FDS way: 1 and f filled when `ccm-early exec` handed us a
 * channel, 0 when it did not (f untouched), or -errno.  Once ccm.control
 * is there the hand-over is ours: the variables are unset and on failure
 * every "ccm." fd is closed, so a retry asks the keeper instead. */
static int attach_listen(struct client_fds *f)
{
	char buf[LISTENFDS_MAX * (LISTENFDS_NAME_MAX + 1)];
	const char *names[LISTENFDS_MAX];
	struct errbuf e;
	int n, i, r;

	n = listenfds_take(0, buf, sizeof(buf), names, LISTENFDS_MAX, &e);
	if (n <= 0)
		return n;
	for (i = 0; i < n && strcmp(names[i], "ccm.control"); i++)
		;
	if (i == n)
		return 0;
	r = sort_listen_fds(names, n, f, &e);
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	if (r < 0) {
		for (i = 0; i < n; i++)
			if (!strncmp(names[i], "ccm.", 4))
				close(LISTENFDS_START + i);
		client_fds_init(f);
		return r;
	}
	return 1;
}

int ccm_attach(const char *name, const char *state_dir, struct ccm_client **out)
{
	struct client_fds *f;
	struct errbuf e;
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!name_ok(name))
		return -EINVAL;
	/* ~2 KiB of fds: off the stack of whatever thread attaches. */
	f = malloc(sizeof(*f));
	if (!f)
		return -ENOMEM;
	client_fds_init(f);
	r = attach_listen(f);
	if (r == 0)
		r = client_attach_fds(name, state_dir, f, &e);
	if (r >= 0)
		r = client_build(f, out);
	free(f);
	return r;
}

int ccm_fd(const struct ccm_client *c)
{
	return c ? c->ep : -EINVAL;
}

int ccm_nports(const struct ccm_client *c)
{
	return c ? c->nports : -EINVAL;
}

void *ccm_window(const struct ccm_client *c, int port, size_t *len)
{
	if (!c || port < 0 || port >= c->nports)
		return NULL;
	if (len)
		*len = c->port_size;
	return c->window[port];
}

/* --- requests ------------------------------------------------------------------ */

/* A tag is a counter above 7 low bits; a send's says so (TAG_SEND) and
 * names its port, so that its DONE gives the port's credit back. */
#define TAG_SEND      0x40u
#define TAG_PORT_MASK 0x3fu
#define TAG_COUNTER   (1u << 25)
_Static_assert(CCM_PORTS_MAX <= TAG_PORT_MASK + 1, "a send's tag names its port");

static uint32_t take_tag(struct ccm_client *c, uint32_t low)
{
	uint32_t t = c->next_tag << 7 | low;

	/* Never 0 (the tag of a partner's CTL_MSG): the counter skips it. */
	c->next_tag = (c->next_tag + 1) % TAG_COUNTER;
	if (c->next_tag == 0)
		c->next_tag = 1;
	return t;
}

static int chan_err(const struct ccm_client *c)
{
	if (c->chan == CHAN_GONE)
		return -ENOTCONN;
	return c->chan == CHAN_BROKEN ? -EPROTO : 0;
}

static int send_req(struct ccm_client *c, uint16_t type, const void *data, uint32_t len)
{
	int r = fdmsg_send(c->sock, type, data, len, -1);

	/* The keeper went away: ccm_next reports it, in order. */
	if (r == -EPIPE || r == -ECONNRESET)
		return -ENOTCONN;
	return r;
}

static int check_port(const struct ccm_client *c, int port)
{
	return port >= 0 && port < c->nports ? 0 : -EINVAL;
}

static int rw(struct ccm_client *c, uint16_t type, int port, uint32_t local_off,
	      uint32_t remote_off, uint32_t len, unsigned flags, uint32_t *tag)
{
	struct ctl_rw req;
	int r;

	if (!c || check_port(c, port) < 0 || len < 1 || len > CCM_OP_MAX || (flags & ~CCM_NOTIFY))
		return -EINVAL;
	/* Both windows are port_size: the descriptor gives both sides one size. */
	if ((uint64_t)local_off + len > c->port_size || (uint64_t)remote_off + len > c->port_size)
		return -ERANGE;
	r = chan_err(c);
	if (r < 0)
		return r;
	memset(&req, 0, sizeof(req));
	req.tag = take_tag(c, 0);
	req.port = (uint16_t)port;
	req.flags = (flags & CCM_NOTIFY) ? CTL_F_NOTIFY : 0;
	req.local_off = local_off;
	req.remote_off = remote_off;
	req.len = len;
	r = send_req(c, type, &req, sizeof(req));
	if (r == 0 && tag)
		*tag = req.tag;
	return r;
}

int ccm_write(struct ccm_client *c, int port, uint32_t local_off, uint32_t remote_off,
	      uint32_t len, unsigned flags, uint32_t *tag)
{
	return rw(c, CTL_WRITE, port, local_off, remote_off, len, flags, tag);
}

int ccm_read(struct ccm_client *c, int port, uint32_t local_off, uint32_t remote_off,
	     uint32_t len, uint32_t *tag)
{
	return rw(c, CTL_READ, port, local_off, remote_off, len, 0, tag);
}

int ccm_send(struct ccm_client *c, int port, const void *msg, size_t len, uint32_t *tag)
{
	uint8_t buf[sizeof(struct ctl_send_hdr) + CTL_MSG_MAX];
	struct ctl_send_hdr h;
	int r;

	if (!c || check_port(c, port) < 0 || !msg || len < 1 || len > CTL_MSG_MAX)
		return -EINVAL;
	r = chan_err(c);
	if (r < 0)
		return r;
	if (c->sends[port] >= CCM_SEND_WINDOW)
		return -EAGAIN;  /* the partner's client has not taken enough */
	memset(&h, 0, sizeof(h));
	h.tag = take_tag(c, TAG_SEND | (uint32_t)port);
	h.port = (uint16_t)port;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), msg, len);
	r = send_req(c, CTL_SEND, buf, (uint32_t)(sizeof(h) + len));
	if (r == 0) {
		c->sends[port]++;
		if (tag)
			*tag = h.tag;
	}
	return r;
}

/* --- events -------------------------------------------------------------------- */

static const enum ccm_event_type ev_of_ctl[] = {
	[CTL_EV_PARTNER_READY] = CCM_EV_PARTNER_READY,
	[CTL_EV_PARTNER_LOST] = CCM_EV_PARTNER_LOST,
	[CTL_EV_PARTNER_BACK] = CCM_EV_PARTNER_BACK,
	[CTL_EV_TERMINATING] = CCM_EV_TERMINATING,
	[CTL_EV_LINK_DOWN] = CCM_EV_LINK_DOWN,
	[CTL_EV_LINK_UP] = CCM_EV_LINK_UP,
};

/* The keeper is trusted: a message it should not have sent means it is
 * broken, and so is the channel from now on. */
static int broken(struct ccm_client *c)
{
	c->chan = CHAN_BROKEN;
	return -EPROTO;
}

static int gone(struct ccm_client *c, struct ccm_event *ev)
{
	epoll_ctl(c->ep, EPOLL_CTL_DEL, c->sock, NULL);
	close(c->sock);
	c->sock = -1;
	c->chan = CHAN_GONE;
	memset(ev, 0, sizeof(*ev));
	ev->type = CCM_EV_KEEPER_GONE;
	return 0;
}

/* Turn one message from the keeper into *ev.  ev->data points into m. */
static int decode(struct ccm_client *c, struct fdmsg *m, struct ccm_event *ev)
{
	struct ctl_send_hdr h;
	struct ctl_event ce;
	struct ctl_error ee;
	struct ctl_done d;

	memset(ev, 0, sizeof(*ev));
	if (m->fd >= 0) {
		fdmsg_close(m);
		return broken(c);
	}
	switch (m->type) {
	case CTL_DONE:
		if (m->len != sizeof(d))
			return broken(c);
		memcpy(&d, m->data, sizeof(d));
		if (d.status > 0 || d.status < -4095)
			return broken(c);
		ev->type = CCM_EV_DONE;
		ev->tag = d.tag;
		ev->status = d.status;
		if ((d.tag & TAG_SEND) && (int)(d.tag & TAG_PORT_MASK) < c->nports &&
		    c->sends[d.tag & TAG_PORT_MASK])
			c->sends[d.tag & TAG_PORT_MASK]--;  /* its credit is back */
		return 0;
	case CTL_EVENT:
		if (m->len != sizeof(ce))
			return broken(c);
		memcpy(&ce, m->data, sizeof(ce));
		if (ce.type < CTL_EV_PARTNER_READY || ce.type > CTL_EV_LINK_UP)
			return broken(c);
		ev->type = ev_of_ctl[ce.type];
		ev->partner_node = ce.partner_node;
		ev->partner_epoch = ce.partner_epoch;
		if (ce.type == CTL_EV_TERMINATING)
			ev->restarting = ce.link == 1;
		else
			ev->link = ce.link;
		return 0;
	case CTL_MSG:
		if (m->len <= sizeof(h) || m->len > sizeof(h) + CTL_MSG_MAX)
			return broken(c);
		memcpy(&h, m->data, sizeof(h));
		if (h.port >= c->nports)
			return broken(c);
		ev->type = CCM_EV_MSG;
		ev->port = h.port;
		ev->data = m->data + sizeof(h);
		ev->len = m->len - sizeof(h);
		return 0;
	case CTL_ERROR:
		/* A request refused without a tag to match it to: the
		 * channel stays, the caller hears the status. */
		if (m->len != sizeof(ee))
			return broken(c);
		memcpy(&ee, m->data, sizeof(ee));
		if (ee.status >= 0 || ee.status < -4095)
			return broken(c);
		return ee.status;
	default:
		return broken(c);
	}
}

/* Read one message off the channel into m and *ev.  The caller knows the
 * channel is readable, so the blocking socket does not block. */
static int read_channel(struct ccm_client *c, struct fdmsg *m, struct ccm_event *ev)
{
	int r = fdmsg_recv(c->sock, m, NULL);

	if (r == 0 || r == -ECONNRESET)
		return gone(c, ev);
	if (r == -EBADMSG || r == -EMSGSIZE)
		return broken(c);
	if (r < 0)
		return r;
	return decode(c, m, ev);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Take everything an event fd holds: 1 if it held something.  A pipe (one
 * byte per notify) is read until a short read; an eventfd gives its count
 * in one read of 8 bytes, a short read of this buffer.  Either way one
 * notify stands for all that came before it. */
static int event_drain(int fd)
{
	char buf[512];
	ssize_t n;
	int got = 0;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		got = 1;
		if ((size_t)n < sizeof(buf))
			break;
	}
	return got;
}

/* Wait up to timeout_ms (-1: for ever) for the channel or an event fd.
 * Event fds that fired are drained into c->notify.  1 with *ev when the
 * channel had a message (or closed), 0 when only notifies came, -EAGAIN
 * when nothing did in time, or -errno. */
static int wait_io(struct ccm_client *c, struct fdmsg *m, struct ccm_event *ev, int timeout_ms)
{
	struct epoll_event evs[CCM_PORTS_MAX + 1];
	int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
	int n, i, chan = 0, left = timeout_ms;

	for (;;) {
		n = epoll_wait(c->ep, evs, CCM_PORTS_MAX + 1, left);
		if (n < 0)
			return -errno;
		for (i = 0; i < n; i++) {
			if (evs[i].data.u32 == CHANNEL_KEY)
				chan = 1;
			else if (event_drain(c->event[evs[i].data.u32]))
				c->notify |= 1ull << evs[i].data.u32;
		}
		if (chan) {
			n = read_channel(c, m, ev);
			return n < 0 ? n : 1;
		}
		if (c->notify)
			return 0;
		if (timeout_ms == 0)
			return -EAGAIN;
		if (timeout_ms > 0) {
			left = (int)(deadline - now_ms());
			if (left <= 0)
				return -EAGAIN;
		}
	}
}

static int pop_notify(struct ccm_client *c, struct ccm_event *ev)
{
	int port = __builtin_ctzll(c->notify);

	c->notify &= c->notify - 1;
	memset(ev, 0, sizeof(*ev));
	ev->type = CCM_EV_NOTIFY;
	ev->port = (uint16_t)port;
	return 0;
}

static int push(struct ccm_client *c, const struct ccm_event *ev)
{
	struct queued *q = &c->q[(c->qhead + c->qlen) % QUEUE_MAX];

	q->ev = *ev;
	q->data = NULL;
	if (ev->type == CCM_EV_MSG) {
		q->data = malloc(ev->len);
		if (!q->data)
			return -ENOMEM;
		memcpy(q->data, ev->data, ev->len);
		q->ev.data = q->data;
	}
	c->qlen++;
	return 0;
}

static void pop(struct ccm_client *c, struct ccm_event *ev)
{
	struct queued *q = &c->q[c->qhead];

	*ev = q->ev;
	c->held = q->data;           /* freed by the next ccm_next */
	c->qhead = (c->qhead + 1) % QUEUE_MAX;
	c->qlen--;
}

int ccm_next(struct ccm_client *c, struct ccm_event *ev, int timeout_ms)
{
	int r;

	if (!c || !ev || timeout_ms < -1)
		return -EINVAL;
	free(c->held);
	c->held = NULL;
	if (c->qlen) {
		pop(c, ev);
		return 0;
	}
	if (c->notify)
		return pop_notify(c, ev);
	r = chan_err(c);
	if (r < 0)
		return r;
	r = wait_io(c, &c->rx, ev, timeout_ms);
	if (r == 0)
		return pop_notify(c, ev);
	return r < 0 ? r : 0;
}

/* Wait for tag's CTL_DONE (its status), or with tag 0 until port has send
 * credit again (0; decode counts the DONEs that bring it), queueing every
 * other event for ccm_next.  A full queue stops the wait before reading
 * more, so nothing is dropped: the DONE then comes through ccm_next. */
static int wait_done(struct ccm_client *c, uint32_t tag, int port)
{
	struct ccm_event ev;
	int r;

	for (;;) {
		if (!tag && c->sends[port] < CCM_SEND_WINDOW)
			return 0;
		if (c->qlen == QUEUE_MAX)
			return -ENOBUFS;
		r = chan_err(c);
		if (r < 0)
			return r;
		r = wait_io(c, &c->scratch, &ev, -1);
		if (r < 0)
			return r;
		if (r == 0)
			continue;    /* notifies wait in c->notify */
		if (tag && ev.type == CCM_EV_DONE && ev.tag == tag)
			return ev.status;
		r = push(c, &ev);
		if (r < 0)
			return r;
		if (ev.type == CCM_EV_KEEPER_GONE)
			return -ENOTCONN;
	}
}

int ccm_write_sync(struct ccm_client *c, int port, uint32_t local_off, uint32_t remote_off,
		   uint32_t len, unsigned flags)
{
	uint32_t tag;
	int r = ccm_write(c, port, local_off, remote_off, len, flags, &tag);

	return r < 0 ? r : wait_done(c, tag, port);
}

int ccm_read_sync(struct ccm_client *c, int port, uint32_t local_off, uint32_t remote_off,
		  uint32_t len)
{
	uint32_t tag;
	int r = ccm_read(c, port, local_off, remote_off, len, &tag);

	return r < 0 ? r : wait_done(c, tag, port);
}

int ccm_send_sync(struct ccm_client *c, int port, const void *msg, size_t len)
{
	uint32_t tag;
	int r;

	if (!c || check_port(c, port) < 0)
		return -EINVAL;
	r = wait_done(c, 0, port);  /* for credit, if it has none */
	if (r == 0)
		r = ccm_send(c, port, msg, len, &tag);
	return r < 0 ? r : wait_done(c, tag, port);
}

/* --- names --------------------------------------------------------------------- */

const char *ccm_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -ENOENT:
		return "no such client on this keeper";
	case -EACCES:
	case -EPERM:
		return "not allowed to attach to this client";
	case -ECONNREFUSED:
		return "no keeper is running (no socket)";
	case -ENOTCONN:
		return "the keeper has gone";
	case -EHOSTUNREACH:
		return "the partner cannot be reached now (not connected, or unreachable)";
	case -EPROTO:
		return "the keeper broke the control protocol";
	case -ETIMEDOUT:
		return "the keeper did not answer in time";
	case -ESHUTDOWN:
		return "the keeper is stopping";
	case -EINVAL:
		return "invalid argument (client name, port, length or flags)";
	case -ERANGE:
		return "offset and length run past the port's window";
	case -ENOBUFS:
		return "64 events queued while waiting: call ccm_next to take them";
	case -ENAMETOOLONG:
		return "state directory path too long for a Unix socket";
	case -EAGAIN:
		return "no event yet";
	}
	return strerror(err < 0 ? -err : err);
}

const char *ccm_event_name(enum ccm_event_type t)
{
	static const char *const names[] = {
		[CCM_EV_DONE] = "done",
		[CCM_EV_MSG] = "msg",
		[CCM_EV_NOTIFY] = "notify",
		[CCM_EV_PARTNER_READY] = "partner-ready",
		[CCM_EV_PARTNER_LOST] = "partner-lost",
		[CCM_EV_PARTNER_BACK] = "partner-back",
		[CCM_EV_TERMINATING] = "terminating",
		[CCM_EV_LINK_DOWN] = "link-down",
		[CCM_EV_LINK_UP] = "link-up",
		[CCM_EV_KEEPER_GONE] = "keeper-gone",
	};

	if ((unsigned)t >= sizeof(names) / sizeof(names[0]) || !names[t])
		return "unknown";
	return names[t];
}
