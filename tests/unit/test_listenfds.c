/* Unit tests of the LISTEN_FDS hand-over, both sides in this one process
 * (LISTEN_PID is our pid, as it is across exec): overlapping source and
 * target numbers, flags, names, and strict parsing of what the
 * environment says.  The tests own fds 3..9: whatever the harness left
 * there is replaced. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "client/listenfds.h"

static int file_at(const char *tag, int at)
{
	int fd = memfd_create(tag, MFD_CLOEXEC);

	if (fd < 0 || fd == at)
		return fd;
	if (dup3(fd, at, O_CLOEXEC) < 0)
		at = -1;
	close(fd);
	return at;
}

static ino_t ino(int fd)
{
	struct stat st;

	return fstat(fd, &st) < 0 ? 0 : st.st_ino;
}

static int cloexec(int fd)
{
	return fcntl(fd, F_GETFD) == FD_CLOEXEC;
}

static int env_is(const char *name, const char *want)
{
	const char *v = getenv(name);

	return want ? v && !strcmp(v, want) : !v;
}

static void close_range_(int lo, int hi)
{
	for (; lo <= hi; lo++)
		close(lo);
}

static void test_swap(void)
{
	static const char *const nm[] = { "b", "a" };
	const int fds[] = { 4, 3 };
	const char *names[4];
	char buf[64], pid[16];
	struct errbuf e = { "" };
	ino_t a, b;

	close_range_(3, 9);
	file_at("a", 3);
	file_at("b", 4);
	a = ino(3);
	b = ino(4);
	CHECK(listenfds_install(fds, nm, 2, &e) == 0, "install 4,3 at 3,4 (%s)", e.msg);
	CHECK(ino(3) == b && ino(4) == a, "sources at 3 and 4 are swapped");
	CHECK(!cloexec(3) && !cloexec(4), "the installed fds are not close-on-exec");
	CHECK(fcntl(5, F_GETFD) < 0, "no fd left over at 5");
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	CHECK(env_is("LISTEN_FDS", "2") && env_is("LISTEN_PID", pid) &&
	      env_is("LISTEN_FDNAMES", "b:a"), "LISTEN_FDS=2, LISTEN_PID=us, LISTEN_FDNAMES=b:a");

	CHECK(listenfds_take(1, buf, sizeof(buf), names, 4, &e) == 2, "take: 2 (%s)", e.msg);
	CHECK(!strcmp(names[0], "b") && !strcmp(names[1], "a"), "the names come back in order");
	CHECK(cloexec(3) && cloexec(4), "take makes them close-on-exec");
	CHECK(ino(3) == b && ino(4) == a, "and leaves them where they are");
	CHECK(env_is("LISTEN_FDS", NULL) && env_is("LISTEN_PID", NULL) &&
	      env_is("LISTEN_FDNAMES", NULL), "unset_env removes the three variables");
	CHECK(listenfds_take(1, buf, sizeof(buf), names, 4, &e) == 0, "a second take: 0");
}

static void test_overlaps(void)
{
	static const char *const nm[] = { "c", "a", "b" };
	const int rot[] = { 5, 3, 4 }, one[] = { 5 }, twice[] = { 9, 9 };
	const char *names[4];
	char buf[64];
	struct errbuf e = { "" };
	ino_t a, b, c;

	close_range_(3, 9);
	a = ino(file_at("a", 3));
	b = ino(file_at("b", 4));
	c = ino(file_at("c", 5));
	CHECK(listenfds_install(rot, nm, 3, &e) == 0, "install 5,3,4 at 3,4,5 (%s)", e.msg);
	CHECK(ino(3) == c && ino(4) == a && ino(5) == b,
	      "rotated: every source read before its number was overwritten");
	CHECK(!cloexec(3) && !cloexec(4) && !cloexec(5), "none close-on-exec");
	CHECK(listenfds_take(0, buf, sizeof(buf), names, 4, &e) == 3 &&
	      !strcmp(names[0], "c") && !strcmp(names[2], "b"), "take: 3 with their names");
	CHECK(env_is("LISTEN_FDS", "3"), "without unset_env the variables stay");

	close_range_(3, 9);
	c = ino(file_at("c", 5));
	CHECK(listenfds_install(one, NULL, 1, &e) == 0 && ino(3) == c && !cloexec(3),
	      "a source at 5 goes to 3");
	CHECK(ino(5) == c && cloexec(5), "the source at 5 stays the caller's, flags unchanged");
	CHECK(env_is("LISTEN_FDNAMES", NULL), "no names: LISTEN_FDNAMES unset");
	CHECK(listenfds_take(1, buf, sizeof(buf), names, 4, &e) == 1 &&
	      !strcmp(names[0], "unknown"), "no names: take says \"unknown\"");

	close_range_(3, 9);
	a = ino(file_at("a", 9));
	CHECK(listenfds_install(twice, NULL, 2, &e) == 0 && ino(3) == a && ino(4) == a &&
	      fcntl(5, F_GETFD) < 0, "one source twice, from above: 3 and 4, nothing at 5");
	CHECK(listenfds_take(1, NULL, 0, NULL, 2, &e) == 2, "take without names: 2");
}

static void test_install_bad(void)
{
	static char long_ok[LISTENFDS_NAME_MAX + 1], too_long[LISTENFDS_NAME_MAX + 2];
	static const char *const bad[] = { "a:b", "", "sp ace", "caf\xc3\xa9", "new\nline", too_long };
	const int fds[] = { 3, 3 }, gone[] = { 3, 42 };
	const char *nm[2] = { "ok", NULL };
	struct errbuf e = { "" };
	int k, r;

	close_range_(3, 9);
	file_at("a", 3);
	memset(long_ok, 'x', LISTENFDS_NAME_MAX);
	memset(too_long, 'x', LISTENFDS_NAME_MAX + 1);
	for (k = 0; k < (int)(sizeof(bad) / sizeof(bad[0])); k++) {
		nm[1] = bad[k];
		e.msg[0] = '\0';
		r = listenfds_install(fds, nm, 2, &e);
		CHECK(r == -EINVAL && e.msg[0] && env_is("LISTEN_FDS", NULL) &&
		      fcntl(4, F_GETFD) < 0, "bad name %d refused before anything moved: %s",
		      k, e.msg);
	}
	nm[1] = long_ok;
	CHECK(listenfds_install(fds, nm, 2, &e) == 0, "a name of %d bytes is fine",
	      LISTENFDS_NAME_MAX);
	unsetenv("LISTEN_FDS");
	CHECK(listenfds_install(fds, NULL, LISTENFDS_MAX + 1, &e) == -EINVAL &&
	      listenfds_install(fds, NULL, -1, &e) == -EINVAL, "n out of 0..%d: -EINVAL",
	      LISTENFDS_MAX);
	close(42);
	CHECK(listenfds_install(gone, NULL, 2, &e) == -EBADF && env_is("LISTEN_FDS", NULL),
	      "a source that is not open: -EBADF, nothing set (%s)", e.msg);
	setenv("LISTEN_FDS", "1", 1);
	CHECK(listenfds_install(fds, NULL, 0, &e) == 0 && env_is("LISTEN_FDS", NULL) &&
	      env_is("LISTEN_PID", NULL), "n = 0 unsets the variables");
	close_range_(3, 9);
}

/* Set the three variables (NULL = unset) and take. */
static int take_with(const char *pid, const char *fds, const char *names, int max,
		     struct errbuf *e)
{
	static const char *got[LISTENFDS_MAX];
	char buf[32];

	if (pid)
		setenv("LISTEN_PID", pid, 1);
	else
		unsetenv("LISTEN_PID");
	if (fds)
		setenv("LISTEN_FDS", fds, 1);
	else
		unsetenv("LISTEN_FDS");
	if (names)
		setenv("LISTEN_FDNAMES", names, 1);
	else
		unsetenv("LISTEN_FDNAMES");
	e->msg[0] = '\0';
	return listenfds_take(1, buf, sizeof(buf), got, max, e);
}

static void test_take_bad(void)
{
	static const char *const bad_num[] = {
		"-1", "abc", "", "2x", "+1", " 1", "1 ", "65", "99999999999999999999", "0x2",
	};
	static const char *const bad_pid[] = {
		"0", "-5", "abc", "12x", " 12", "+12", "99999999999",
	};
	char me[16], other[16];
	struct errbuf e = { "" };
	int k;

	close_range_(3, 9);
	file_at("a", 3);
	file_at("b", 4);
	snprintf(me, sizeof(me), "%d", (int)getpid());
	snprintf(other, sizeof(other), "%d", (int)getppid());

	CHECK(take_with(NULL, "2", NULL, 4, &e) == 0, "LISTEN_PID unset: 0");
	CHECK(take_with("", "2", NULL, 4, &e) == 0, "LISTEN_PID empty: 0");
	CHECK(take_with(other, "2", NULL, 4, &e) == 0 && cloexec(3),
	      "LISTEN_PID of another process: 0");
	CHECK(take_with(me, NULL, NULL, 4, &e) == 0, "LISTEN_FDS unset: 0");
	CHECK(take_with(me, "0", NULL, 4, &e) == 0, "LISTEN_FDS=0: 0");
	for (k = 0; k < (int)(sizeof(bad_pid) / sizeof(bad_pid[0])); k++)
		CHECK(take_with(bad_pid[k], "2", NULL, 4, &e) == -EINVAL && e.msg[0],
		      "LISTEN_PID=\"%s\": -EINVAL (%s)", bad_pid[k], e.msg);
	for (k = 0; k < (int)(sizeof(bad_num) / sizeof(bad_num[0])); k++)
		CHECK(take_with(me, bad_num[k], NULL, 4, &e) == -EINVAL && e.msg[0],
		      "LISTEN_FDS=\"%s\": -EINVAL (%s)", bad_num[k], e.msg);
	CHECK(env_is("LISTEN_FDS", NULL) && env_is("LISTEN_PID", NULL),
	      "unset_env unsets on errors too");

	fcntl(3, F_SETFD, 0);
	CHECK(take_with(me, "2", "a", 4, &e) == -EINVAL && cloexec(3),
	      "one name for two fds: -EINVAL, the fds close-on-exec all the same (%s)", e.msg);
	CHECK(take_with(me, "2", "a:b:c", 4, &e) == -EINVAL, "three names for two fds: -EINVAL");
	CHECK(take_with(me, "2", "a:", 4, &e) == -EINVAL, "an empty name: -EINVAL (%s)", e.msg);
	CHECK(take_with(me, "2", "a:b c", 4, &e) == -EINVAL, "a name with a space: -EINVAL");
	CHECK(take_with(me, "2", "abcdefghijklmnop:abcdefghijklmnop", 4, &e) == -ENOBUFS,
	      "names longer than the buffer: -ENOBUFS (%s)", e.msg);
	CHECK(take_with(me, "2", "a:b", 1, &e) == -EINVAL, "more fds than the caller takes: -EINVAL");
	CHECK(take_with(me, "3", NULL, 4, &e) == -EBADF,
	      "LISTEN_FDS=3 but fd 5 is not open: -EBADF (%s)", e.msg);
	CHECK(take_with(me, "2", "a:b", 2, &e) == 2, "and the good case between them: 2");
	CHECK(take_with(me, "02", "a:b", 2, &e) == 2, "leading zeros are digits too");
	close_range_(3, 9);
}

int main(void)
{
	test_swap();
	test_overlaps();
	test_install_bad();
	test_take_bad();
	return check_done();
}
