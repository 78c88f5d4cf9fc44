/* listenfds: LISTEN_FDS hand-over, both sides (convention in listenfds.h). */
#include "client/listenfds.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/num.h"

static int name_ok(const char *s, size_t len)
{
	size_t k;
	char c;

	if (len == 0 || len > LISTENFDS_NAME_MAX)
		return 0;
	for (k = 0; k < len; k++) {
		c = s[k];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

static int set_env(int n, const char *names)
{
	char num[16];

	snprintf(num, sizeof(num), "%d", n);
	if (setenv("LISTEN_FDS", num, 1) < 0)
		return -errno;
	snprintf(num, sizeof(num), "%d", (int)getpid());
	if (setenv("LISTEN_PID", num, 1) < 0)
		return -errno;
	if ((names ? setenv("LISTEN_FDNAMES", names, 1) : unsetenv("LISTEN_FDNAMES")) < 0)
		return -errno;
	return 0;
}

static void unset_env(void)
{
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
}

int listenfds_install(const int *fds, const char *const *names, int n, struct errbuf *e)
{
	char joined[LISTENFDS_MAX * (LISTENFDS_NAME_MAX + 1)];
	int tmp[LISTENFDS_MAX], made = 0, i, r = 0;
	size_t at = 0, len;

	if (n < 0 || n > LISTENFDS_MAX)
		return errbuf_set(e, -EINVAL, "%d fds to hand over, at most %d", n, LISTENFDS_MAX);
	if (n == 0) {
		unset_env();
		return 0;
	}
	for (i = 0; names && i < n; i++) {
		len = strlen(names[i]);
		if (!name_ok(names[i], len))
			return errbuf_set(e, -EINVAL, "fd name %d is not 1 to %d of [A-Za-z0-9_.-]",
					  i, LISTENFDS_NAME_MAX);
		memcpy(joined + at, names[i], len);
		at += len;
		joined[at++] = ':';
	}
	joined[at ? at - 1 : 0] = '\0';

	/* Copy every source above the target range first: then no dup2()
	 * below can overwrite a source not yet placed, however the numbers
	 * overlap. */
	for (i = 0; i < n; i++) {
		tmp[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, LISTENFDS_START + n);
		if (tmp[i] < 0) {
			r = errbuf_set(e, -errno, "fd %d (number %d to hand over): %s", fds[i], i,
				       strerror(errno));
			goto out;
		}
		made++;
	}
	/* dup2() leaves FD_CLOEXEC clear on the new fd: that is the point. */
	for (i = 0; i < n; i++) {
		if (dup2(tmp[i], LISTENFDS_START + i) < 0) {
			r = errbuf_set(e, -errno, "placing fd %d: %s", LISTENFDS_START + i,
				       strerror(errno));
			goto out;
		}
	}
	r = set_env(n, names ? joined : NULL);
	if (r < 0)
		errbuf_set(e, r, "setting LISTEN_FDS: %s", strerror(-r));
out:
	while (made > 0)
		close(tmp[--made]);
	return r;
}

/* Split LISTEN_FDNAMES into names[0..n), in a copy in buf. */
static int take_names(char *buf, size_t buf_len, const char *names[], int n, struct errbuf *e)
{
	const char *s = getenv("LISTEN_FDNAMES");
	char *p, *colon;
	size_t len;
	int k, cnt = 1;

	if (!s) {
		for (k = 0; k < n; k++)
			names[k] = "unknown";
		return 0;
	}
	len = strlen(s);
	for (k = 0; s[k]; k++)
		cnt += s[k] == ':';
	if (cnt != n)
		return errbuf_set(e, -EINVAL, "LISTEN_FDNAMES has %d names for LISTEN_FDS=%d",
				  cnt, n);
	if (len >= buf_len)
		return errbuf_set(e, -ENOBUFS, "LISTEN_FDNAMES is %zu bytes, the buffer %zu",
				  len, buf_len);
	memcpy(buf, s, len + 1);
	for (p = buf, k = 0; k < n; k++, p = colon + 1) {
		colon = strchr(p, ':');
		if (colon)
			*colon = '\0';
		if (!name_ok(p, strlen(p)))
			return errbuf_set(e, -EINVAL,
					  "LISTEN_FDNAMES: name %d is not 1 to %d of [A-Za-z0-9_.-]",
					  k, LISTENFDS_NAME_MAX);
		names[k] = p;
	}
	return 0;
}

static int take(char *names_buf, size_t names_len, const char *names[], int max,
		struct errbuf *e)
{
	const char *s = getenv("LISTEN_PID");
	uint32_t pid, nfds;
	int fd, fl, n, r;

	if (!s || !*s)
		return 0;
	if (num_parse_u32(s, 1, INT32_MAX, &pid) < 0)
		return errbuf_set(e, -EINVAL, "LISTEN_PID=\"%.32s\" is not a pid", s);
	if ((pid_t)pid != getpid())
		return 0;
	s = getenv("LISTEN_FDS");
	if (!s)
		return 0;
	if (num_parse_u32(s, 0, LISTENFDS_MAX, &nfds) < 0)
		return errbuf_set(e, -EINVAL, "LISTEN_FDS=\"%.32s\" is not a number from 0 to %d",
				  s, LISTENFDS_MAX);
	n = (int)nfds;
	for (fd = LISTENFDS_START; fd < LISTENFDS_START + n; fd++) {
		fl = fcntl(fd, F_GETFD);
		if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
			return errbuf_set(e, -errno, "LISTEN_FDS=%d, but fd %d: %s", n, fd,
					  strerror(errno));
	}
	if (n > max)
		return errbuf_set(e, -EINVAL, "LISTEN_FDS=%d, more than the %d expected", n, max);
	if (names && n > 0) {
		r = take_names(names_buf, names_len, names, n, e);
		if (r < 0)
			return r;
	}
	return n;
}

int listenfds_take(int unset, char *names_buf, size_t names_len, const char *names[],
		   int max, struct errbuf *e)
{
	int r = take(names_buf, names_len, names, max, e);

	if (unset)
		unset_env();
	return r;
}
