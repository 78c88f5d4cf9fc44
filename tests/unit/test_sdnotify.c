/* Unit tests of readiness notification: a datagram socket bound at a path
 * and at an abstract name (bound with its exact length, so an address
 * padded with NULs would miss it) receives exactly the state sent; unset
 * or empty NOTIFY_SOCKET sends nothing; bad values are -EINVAL. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "daemon/sdnotify.h"

#define STATE "READY=1\nSTATUS=connected to node 2"

/* Bind a datagram socket at name ("/path" or "@abstract"). */
static int listener(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(name);
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	else
		salen++;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, salen) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int got(int fd, const char *want)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf), 0);

	return n == (ssize_t)strlen(want) && !memcmp(buf, want, (size_t)n);
}

static int nothing(int fd)
{
	char buf[8];

	return recv(fd, buf, sizeof(buf), 0) < 0 && errno == EAGAIN;
}

static void test_path(void)
{
	char dir[] = "/tmp/sdnotify-XXXXXX", path[64];
	int fd;

	if (!CHECK(mkdtemp(dir), "temporary directory"))
		return;
	snprintf(path, sizeof(path), "%s/notify", dir);
	fd = listener(path);
	if (CHECK(fd >= 0, "bind at %s", path)) {
		setenv("NOTIFY_SOCKET", path, 1);
		CHECK(sdnotify(STATE) == 1, "send to a path: 1");
		CHECK(got(fd, STATE), "the exact state arrives");
		CHECK(nothing(fd), "one datagram only");
		close(fd);
		CHECK(sdnotify(STATE) == -ECONNREFUSED,
		      "the socket file is there, nobody behind it: -ECONNREFUSED");
	}
	unlink(path);
	rmdir(dir);
	CHECK(sdnotify(STATE) == -ENOENT, "no such path: -ENOENT");
}

static void test_abstract(void)
{
	char name[sizeof(((struct sockaddr_un *)0)->sun_path) + 1], pid[16];
	int fd;

	snprintf(name, sizeof(name), "@ccm-sdnotify-test-%d", (int)getpid());
	fd = listener(name);
	if (CHECK(fd >= 0, "bind at abstract %s", name)) {
		setenv("NOTIFY_SOCKET", name, 1);
		CHECK(sdnotify(STATE) == 1 && got(fd, STATE),
		      "send to an abstract name: the exact state arrives");
		close(fd);
	}

	/* The longest abstract name: all of sun_path, no NUL anywhere. */
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	memset(name, 'x', sizeof(name) - 1);
	name[0] = '@';
	memcpy(name + 1, pid, strlen(pid));
	name[sizeof(name) - 1] = '\0';
	fd = listener(name);
	if (CHECK(fd >= 0, "bind at an abstract name of %zu bytes", strlen(name))) {
		setenv("NOTIFY_SOCKET", name, 1);
		CHECK(sdnotify(STATE) == 1 && got(fd, STATE),
		      "an abstract name filling sun_path works");
		close(fd);
	}
}

static void test_off_and_bad(void)
{
	static const char *const bad[] = {
		"relative/notify", "notify", "vsock:2:1234", " /run/notify",
	};
	char longname[sizeof(((struct sockaddr_un *)0)->sun_path) + 2];
	int fd = listener("@ccm-sdnotify-quiet"), k;

	unsetenv("NOTIFY_SOCKET");
	CHECK(sdnotify(STATE) == 0, "NOTIFY_SOCKET unset: 0");
	setenv("NOTIFY_SOCKET", "", 1);
	CHECK(sdnotify(STATE) == 0, "NOTIFY_SOCKET empty: 0");
	CHECK(fd >= 0 && nothing(fd), "and nothing was sent");
	if (fd >= 0)
		close(fd);

	for (k = 0; k < (int)(sizeof(bad) / sizeof(bad[0])); k++) {
		setenv("NOTIFY_SOCKET", bad[k], 1);
		CHECK(sdnotify(STATE) == -EINVAL, "NOTIFY_SOCKET=\"%s\": -EINVAL", bad[k]);
	}

	/* A path needs its NUL inside sun_path; an abstract name does not. */
	memset(longname, 'x', sizeof(longname) - 2);
	longname[0] = '/';
	longname[sizeof(longname) - 2] = '\0';
	setenv("NOTIFY_SOCKET", longname, 1);
	CHECK(sdnotify(STATE) == -EINVAL, "a path of %zu bytes (no room for its NUL): -EINVAL",
	      strlen(longname));
	longname[0] = '@';
	longname[sizeof(longname) - 2] = 'x';
	longname[sizeof(longname) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longname, 1);
	CHECK(sdnotify(STATE) == -EINVAL, "an abstract name of %zu bytes: -EINVAL",
	      strlen(longname));
	unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
	test_path();
	test_abstract();
	test_off_and_bad();
	return check_done();
}
