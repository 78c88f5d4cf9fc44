/* control: the control-socket server.  See control.h. */
#include "daemon/control.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/name.h"
#include "client/fdmsg.h"

#define CONTROL_CONNS_MAX 64
/* What one non-root uid may hold at once.  A client needs one channel, and
 * `ccm-early exec` or a status query one more for a moment; 16 leaves room
 * for several clients of one user.  One user's idle connections cannot
 * lock out the others. */
#define CONTROL_CONNS_PER_UID 16
/* Slots only root may take: however many uids fill their share, root's
 * `status` and `stop` still get in. */
#define CONTROL_CONNS_ROOT_ONLY 8
/* A refusal is logged at most once in this long (a flood must not fill the
 * log); the next line counts those it kept quiet about. */
#define CONTROL_REFUSE_LOG_MS 10000
/* What may wait for a client that reads slower than its answers come, in
 * memory (each entry with its header): its DONEs and events.  Partner
 * messages never wait here (control_msg): they wait in the reliable store,
 * within the port's window.  A client that reads at all has at most a
 * DONE per operation and per message in its windows outstanding (some
 * 200 KiB with every port's window full); one that piles up more does not
 * read, and is closed rather than let it grow the keeper. */
#define CONTROL_OUT_MAX (1u << 20)

/* A message that waits for the client's socket to take it. */
struct kout {
	struct kout *next;
	uint16_t type;
	uint32_t len;
	uint8_t data[];
};

struct kconn {
	int fd;                 /* -1: free */
	uint64_t id;
	uid_t uid;
	pid_t pid;
	bool attached;
	char client[CCM_NAME_MAX + 1];
	struct kout *out_head, *out_tail;
	size_t out_bytes;
	bool msg_waits;         /* a partner's message found it full: say
	                           CREQ_WRITABLE once it drained */
	bool watching;          /* `events`: gets every control_note */
};

struct control {
	const struct log *log;
	int ep;
	int lfd;
	uint64_t refused_logged_ms;  /* when a refusal was last logged; 0 never */
	unsigned refused_quiet;      /* refused since, not logged */
	struct sockaddr_un addr;
	uint64_t next_id;
	struct kconn conns[CONTROL_CONNS_MAX];
	struct fdmsg in;        /* the request being handed out */
};

static void conn_flush(struct control *k, struct kconn *c);

static void conn_drop(struct control *k, struct kconn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(k->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	while (c->out_head) {
		struct kout *o = c->out_head;

		c->out_head = o->next;
		free(o);
	}
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static struct kconn *conn_by_id(struct control *k, uint64_t id)
{
	for (int i = 0; i < CONTROL_CONNS_MAX; i++)
		if (k->conns[i].fd >= 0 && k->conns[i].id == id)
			return &k->conns[i];
	return NULL;
}

/* Is someone alive behind the socket file? */
static bool socket_alive(const struct sockaddr_un *a)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	bool alive;

	if (fd < 0)
		return false;
	alive = connect(fd, (const struct sockaddr *)a, sizeof(*a)) == 0;
	close(fd);
	return alive;
}

int control_open(const char *state_dir, const struct log *log, struct control **out,
		 struct errbuf *e)
{
	struct control *k = calloc(1, sizeof(*k));
	struct epoll_event ev = { .events = EPOLLIN };
	int n, r;

	if (!k)
		return errbuf_set(e, -ENOMEM, "out of memory");
	k->log = log;
	k->lfd = k->ep = -1;
	k->in.fd = -1;
	for (int i = 0; i < CONTROL_CONNS_MAX; i++)
		k->conns[i].fd = -1;
	k->addr.sun_family = AF_UNIX;
	n = snprintf(k->addr.sun_path, sizeof(k->addr.sun_path), "%s/%s", state_dir, CTL_SOCKET_NAME);
	if (n < 0 || (size_t)n >= sizeof(k->addr.sun_path)) {
		r = errbuf_set(e, -ENAMETOOLONG, "%s/%s: too long for a Unix socket", state_dir,
			       CTL_SOCKET_NAME);
		goto fail;
	}
	k->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	k->ep = epoll_create1(EPOLL_CLOEXEC);
	if (k->lfd < 0 || k->ep < 0) {
		r = errbuf_set(e, -errno, "control socket: %s", strerror(errno));
		goto fail;
	}
	r = bind(k->lfd, (struct sockaddr *)&k->addr, sizeof(k->addr));
	if (r < 0 && errno == EADDRINUSE) {
		/* A keeper that died leaves its socket file behind; a live
		 * one must not be stolen from. */
		if (socket_alive(&k->addr)) {
			r = errbuf_set(e, -EADDRINUSE, "another keeper is running on %s",
				       k->addr.sun_path);
			goto fail;
		}
		unlink(k->addr.sun_path);
		r = bind(k->lfd, (struct sockaddr *)&k->addr, sizeof(k->addr));
	}
	if (r < 0) {
		r = errbuf_set(e, -errno, "%s: %s", k->addr.sun_path, strerror(errno));
		goto fail;
	}
	/* Who may do what is decided per request from SO_PEERCRED (a client
	 * descriptor may name a non-root uid), so anyone may connect.  A
	 * socket left to the umask would lock those clients out unseen. */
	if (chmod(k->addr.sun_path, 0666) < 0) {
		r = errbuf_set(e, -errno, "%s: chmod: %s", k->addr.sun_path, strerror(errno));
		unlink(k->addr.sun_path);
		goto fail;
	}
	ev.data.u64 = UINT64_MAX;
	if (listen(k->lfd, 16) < 0 || epoll_ctl(k->ep, EPOLL_CTL_ADD, k->lfd, &ev) < 0) {
		r = errbuf_set(e, -errno, "%s: %s", k->addr.sun_path, strerror(errno));
		unlink(k->addr.sun_path);
		goto fail;
	}
	*out = k;
	return 0;
fail:
	if (k->lfd >= 0)
		close(k->lfd);
	if (k->ep >= 0)
		close(k->ep);
	free(k);
	return r;
}

void control_close(struct control *k)
{
	if (!k)
		return;
	for (int i = 0; i < CONTROL_CONNS_MAX; i++)
		conn_drop(k, &k->conns[i]);
	close(k->lfd);
	close(k->ep);
	unlink(k->addr.sun_path);
	fdmsg_close(&k->in);
	free(k);
}

int control_fd(const struct control *k)
{
	return k->ep;
}

const char *control_path(const struct control *k)
{
	return k->addr.sun_path;
}

/* NULL when uid may have no more connections, else a free slot. */
static struct kconn *conn_slot(struct control *k, uid_t uid, const char **why)
{
	struct kconn *free_slot = NULL;
	int mine = 0, nonroot = 0;

	for (int i = 0; i < CONTROL_CONNS_MAX; i++) {
		struct kconn *c = &k->conns[i];

		if (c->fd < 0) {
			free_slot = free_slot ? free_slot : c;
			continue;
		}
		mine += c->uid == uid;
		nonroot += c->uid != 0;
	}
	*why = "too many connections";
	if (uid == 0 || !free_slot)
		return free_slot;
	if (mine >= CONTROL_CONNS_PER_UID) {
		*why = "too many connections from this uid";
		return NULL;
	}
	if (nonroot >= CONTROL_CONNS_MAX - CONTROL_CONNS_ROOT_ONLY)
		return NULL;  /* the rest is root's */
	return free_slot;
}

static void refuse_conn(struct control *k, int fd, uid_t uid, pid_t pid, const char *why)
{
	struct ctl_error err = { .status = -EMFILE };
	uint64_t now = clock_ms();

	snprintf(err.msg, sizeof(err.msg), "%s", why);
	fdmsg_send(fd, CTL_ERROR, &err, sizeof(err), -1);
	close(fd);
	if (k->refused_logged_ms && now - k->refused_logged_ms < CONTROL_REFUSE_LOG_MS) {
		k->refused_quiet++;
		return;
	}
	if (k->log)
		log_at(k->log, LOG_ERR,
		       "control socket: refused a connection from uid %u (pid %d): %s; "
		       "%u more refused quietly since the last such line",
		       (unsigned)uid, (int)pid, why, k->refused_quiet);
	k->refused_logged_ms = now ? now : 1;
	k->refused_quiet = 0;
}

/* The accepted socket is ours alone (its own open file description, made
 * non-blocking here): what a client does to its end cannot make our sends
 * block. */
static void accept_one(struct control *k)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct kconn *c;
	const char *why;
	uid_t uid;
	pid_t pid;
	int fd;

	fd = accept4(k->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (fdmsg_peer_cred(fd, &uid, &pid) < 0) {
		close(fd);
		return;
	}
	c = conn_slot(k, uid, &why);
	if (!c) {
		refuse_conn(k, fd, uid, pid, why);
		return;
	}
	c->fd = fd;
	c->id = ++k->next_id;
	c->uid = uid;
	c->pid = pid;
	ev.data.u64 = (uint64_t)(c - k->conns);
	if (epoll_ctl(k->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		conn_drop(k, c);
}

static int refuse(struct control *k, struct kconn *c, int status, const char *msg)
{
	control_error(k, c->id, status, msg);
	conn_drop(k, c);
	return 0;
}

/* Check one message from c and describe it in req: 1 when there is a
 * request, 0 when it was dealt with here. */
static int parse(struct control *k, struct kconn *c, struct control_req *req)
{
	struct fdmsg *m = &k->in;
	struct errbuf e;

	/* Clients have no business sending us descriptors. */
	if (m->fd >= 0)
		return refuse(k, c, -EPROTO, "unexpected file descriptor");
	memset(req, 0, sizeof(*req));
	req->conn = c->id;
	req->uid = c->uid;
	req->pid = c->pid;
	memcpy(req->client, c->client, sizeof(req->client));
	switch (m->type) {
	case CTL_ATTACH: {
		struct ctl_attach a;

		if (c->attached || c->watching)
			return refuse(k, c, -EISCONN, "already attached");
		if (fdmsg_expect(m, sizeof(a), sizeof(a), &e) < 0)
			return refuse(k, c, -EPROTO, e.msg);
		memcpy(&a, m->data, sizeof(a));
		/* At most CCM_NAME_MAX bytes before a NUL: also NUL-terminated. */
		if (!client_name_valid(a.name, strnlen(a.name, sizeof(a.name))))
			return refuse(k, c, -EINVAL, "not a client name");
		req->type = CREQ_ATTACH;
		memcpy(req->client, a.name, sizeof(req->client));
		return 1;
	}
	case CTL_WRITE:
	case CTL_READ:
		if (!c->attached)
			return refuse(k, c, -ENOTCONN, "attach first");
		if (fdmsg_expect(m, sizeof(req->rw), sizeof(req->rw), &e) < 0)
			return refuse(k, c, -EPROTO, e.msg);
		req->type = m->type == CTL_WRITE ? CREQ_WRITE : CREQ_READ;
		memcpy(&req->rw, m->data, sizeof(req->rw));
		return 1;
	case CTL_SEND:
		if (!c->attached)
			return refuse(k, c, -ENOTCONN, "attach first");
		if (fdmsg_expect(m, sizeof(req->send) + 1, sizeof(req->send) + CTL_MSG_MAX, &e) < 0)
			return refuse(k, c, -EPROTO, e.msg);
		req->type = CREQ_SEND;
		memcpy(&req->send, m->data, sizeof(req->send));
		req->payload = m->data + sizeof(req->send);
		req->len = m->len - (uint32_t)sizeof(req->send);
		return 1;
	case CTL_STATUS:
		if (m->len)
			return refuse(k, c, -EPROTO, "STATUS takes no payload");
		req->type = CREQ_STATUS;
		return 1;
	case CTL_STATE:
		if (m->len)
			return refuse(k, c, -EPROTO, "STATE takes no payload");
		req->type = CREQ_STATE;
		return 1;
	case CTL_RELOAD_KEYS:
		if (m->len)
			return refuse(k, c, -EPROTO, "RELOAD_KEYS takes no payload");
		if (c->uid != 0)
			return refuse(k, c, -EACCES, "only root may change the keeper's keys");
		req->type = CREQ_RELOAD_KEYS;
		return 1;
	case CTL_EVENTS:
		if (c->attached || c->watching)
			return refuse(k, c, -EISCONN, "this connection is taken");
		if (fdmsg_expect(m, sizeof(req->events), sizeof(req->events), &e) < 0)
			return refuse(k, c, -EPROTO, e.msg);
		req->type = CREQ_EVENTS;
		memcpy(&req->events, m->data, sizeof(req->events));
		return 1;
	case CTL_STOP:
		if (fdmsg_expect(m, sizeof(req->stop), sizeof(req->stop), &e) < 0)
			return refuse(k, c, -EPROTO, e.msg);
		if (c->uid != 0)
			return refuse(k, c, -EACCES, "only root may stop the keeper");
		req->type = CREQ_STOP;
		memcpy(&req->stop, m->data, sizeof(req->stop));
		return 1;
	default:
		return refuse(k, c, -EPROTO, "unknown request");
	}
}

/* A request about connection c itself, not one it sent: who it is. */
static void conn_req(const struct kconn *c, enum control_req_type type, struct control_req *req)
{
	memset(req, 0, sizeof(*req));
	req->type = type;
	req->conn = c->id;
	req->uid = c->uid;
	req->pid = c->pid;
	memcpy(req->client, c->client, sizeof(req->client));
}

int control_next(struct control *k, struct control_req *req)
{
	struct epoll_event evs[8];
	int n;

	fdmsg_close(&k->in);
	n = epoll_wait(k->ep, evs, 8, 0);
	for (int i = 0; i < n; i++) {
		struct kconn *c;
		struct errbuf e;
		int r;

		if (evs[i].data.u64 == UINT64_MAX) {
			accept_one(k);
			continue;
		}
		c = &k->conns[evs[i].data.u64];
		if (c->fd >= 0 && (evs[i].events & EPOLLOUT))
			conn_flush(k, c);
		if (c->fd >= 0 && c->msg_waits && !c->out_head && (evs[i].events & EPOLLOUT)) {
			/* Its input, if any, stays readable for the next call. */
			c->msg_waits = false;
			conn_req(c, CREQ_WRITABLE, req);
			return 1;
		}
		if (c->fd < 0 || !(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
			continue;
		r = fdmsg_recv(c->fd, &k->in, &e);
		if (r == -EAGAIN || r == -EINTR)
			continue;
		if (r <= 0) {
			bool was = c->attached;

			conn_req(c, CREQ_DETACHED, req);
			conn_drop(k, c);
			if (was)
				return 1;
			continue;
		}
		/* One request per call: the others stay readable. */
		if (parse(k, c, req))
			return 1;
	}
	return 0;
}

/* Ask for EPOLLOUT only while something waits. */
static void conn_want_out(struct control *k, struct kconn *c, bool want)
{
	struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0) };

	ev.data.u64 = (uint64_t)(c - k->conns);
	if (epoll_ctl(k->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		conn_drop(k, c);
}

/* Send what waits, in order, as far as the socket takes it. */
static void conn_flush(struct control *k, struct kconn *c)
{
	while (c->out_head) {
		struct kout *o = c->out_head;
		int r = fdmsg_send(c->fd, o->type, o->data, o->len, -1);

		if (r == -EAGAIN)
			return;
		if (r < 0) {
			conn_drop(k, c);
			return;
		}
		c->out_head = o->next;
		if (!c->out_head)
			c->out_tail = NULL;
		c->out_bytes -= sizeof(*o) + o->len;
		free(o);
	}
	conn_want_out(k, c, false);
}

int control_reply(struct control *k, uint64_t conn, uint16_t type, const void *data, uint32_t len)
{
	struct kconn *c = conn_by_id(k, conn);
	struct kout *o;
	int r;

	if (!c)
		return -ENOTCONN;  /* gone since it asked */
	if (!c->out_head) {
		r = fdmsg_send(c->fd, type, data, len, -1);
		if (r != -EAGAIN) {
			if (r < 0)
				conn_drop(k, c);
			return r;
		}
	}
	/* Its socket is full: the message waits, in order behind the others,
	 * up to a bound.  A client that lets more than that pile up does not
	 * read at all, and is not served. */
	o = c->out_bytes + sizeof(*o) + len <= CONTROL_OUT_MAX ? malloc(sizeof(*o) + len) : NULL;
	if (!o) {
		conn_drop(k, c);
		return -ENOBUFS;
	}
	o->next = NULL;
	o->type = type;
	o->len = len;
	memcpy(o->data, data, len);
	if (c->out_tail)
		c->out_tail->next = o;
	else
		c->out_head = o;
	if (!c->out_tail)
		conn_want_out(k, c, true);
	c->out_tail = o;
	c->out_bytes += sizeof(*o) + len;
	return 0;
}

int control_error(struct control *k, uint64_t conn, int status, const char *msg)
{
	struct ctl_error err = { .status = status };

	snprintf(err.msg, sizeof(err.msg), "%s", msg);
	return control_reply(k, conn, CTL_ERROR, &err, sizeof(err));
}

int control_done(struct control *k, uint64_t conn, uint32_t tag, int status)
{
	struct ctl_done d = { .tag = tag, .status = status };

	return control_reply(k, conn, CTL_DONE, &d, sizeof(d));
}

int control_attached(struct control *k, uint64_t conn, const char *client,
		    const struct ctl_attached *a, const int *fds, const uint16_t *idx,
		    const uint16_t *kinds, int nfds)
{
	struct kconn *c = conn_by_id(k, conn);
	int r;

	if (!c)
		return -ENOTCONN;
	r = fdmsg_send(c->fd, CTL_ATTACHED, a, sizeof(*a), -1);
	for (int i = 0; i < nfds && r >= 0; i++) {
		struct ctl_port_fd pf = { .index = idx[i], .kind = kinds[i] };

		r = fdmsg_send(c->fd, CTL_PORT_FD, &pf, sizeof(pf), fds[i]);
	}
	if (r < 0) {
		conn_drop(k, c);
		return r;
	}
	c->attached = true;
	snprintf(c->client, sizeof(c->client), "%s", client);
	return 0;
}

void control_event(struct control *k, const char *client, const struct ctl_event *ev)
{
	for (int i = 0; i < CONTROL_CONNS_MAX; i++) {
		struct kconn *c = &k->conns[i];

		if (c->fd >= 0 && c->attached && (!client || !strcmp(c->client, client)))
			control_reply(k, c->id, CTL_EVENT, ev, sizeof(*ev));
	}
}

void control_watch(struct control *k, uint64_t conn)
{
	struct kconn *c = conn_by_id(k, conn);

	if (c)
		c->watching = true;
}

void control_note(struct control *k, const struct ctl_note *n)
{
	for (int i = 0; i < CONTROL_CONNS_MAX; i++)
		if (k->conns[i].fd >= 0 && k->conns[i].watching)
			control_reply(k, k->conns[i].id, CTL_NOTE, n, sizeof(*n));
}

/* The client's newest channel (see control_msg), or NULL. */
static struct kconn *newest_channel(struct control *k, const char *client)
{
	struct kconn *c = NULL;

	for (int i = 0; i < CONTROL_CONNS_MAX; i++) {
		struct kconn *o = &k->conns[i];

		if (o->fd >= 0 && o->attached && !strcmp(o->client, client) && (!c || o->id > c->id))
			c = o;
	}
	return c;
}

bool control_has_channel(struct control *k, const char *client)
{
	return newest_channel(k, client) != NULL;
}

int control_msg(struct control *k, const char *client, uint16_t port, const void *data,
		uint32_t len)
{
	uint8_t buf[sizeof(struct ctl_send_hdr) + CTL_MSG_MAX];
	struct ctl_send_hdr h = { .port = port };
	struct kconn *c;
	int r;

	if (len > CTL_MSG_MAX)
		return -EMSGSIZE;
	/* The client's newest channel: a process that attached again (a
	 * restarted monitor whose old channel is still closing) gets its
	 * partner's messages, and each goes to one channel only. */
	c = newest_channel(k, client);
	if (!c)
		return -ENOTCONN;
	/* Straight into its socket or not at all: never into control_reply's
	 * wait (the window bounds these, not its limit), and never ahead of
	 * what waits there. */
	if (c->msg_waits || c->out_head) {
		c->msg_waits = true;
		return -EAGAIN;
	}
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), data, len);
	r = fdmsg_send(c->fd, CTL_MSG, buf, (uint32_t)sizeof(h) + len, -1);
	if (r == -EAGAIN) {
		c->msg_waits = true;
		conn_want_out(k, c, true);
		return -EAGAIN;
	}
	if (r < 0) {
		conn_drop(k, c);
		return -ENOTCONN;
	}
	return 0;
}

int control_attached_count(const struct control *k)
{
	int n = 0;

	for (int i = 0; i < CONTROL_CONNS_MAX; i++)
		n += k->conns[i].fd >= 0 && k->conns[i].attached;
	return n;
}
