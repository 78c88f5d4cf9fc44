#include "base/journal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

bool journal_is_stderr(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	return env && sscanf(env, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
	       st.st_dev == dev && st.st_ino == ino;
}

int journal_open(struct journal *j)
{
	j->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	return j->fd < 0 ? -errno : 0;
}

int journal_send(const struct journal *j, int priority, unsigned node, const char *instance,
		 const char *fields, const char *msg)
{
	/* By path each time, not connected: a journald that restarts, or the
	 * real root's after switch_root, is found again by the next entry. */
	static const struct sockaddr_un to = { AF_UNIX, JOURNAL_SOCKET };
	char entry[1024];
	int n;

	if (!j || j->fd < 0)
		return -ENOTCONN;
	n = snprintf(entry, sizeof(entry),
		     "PRIORITY=%d\nSYSLOG_IDENTIFIER=ccm-early\nCCM_NODE=%u\n%s%s%s%sMESSAGE=%s\n",
		     priority, node, instance && instance[0] ? "CCM_INSTANCE=" : "",
		     instance ? instance : "", instance && instance[0] ? "\n" : "",
		     fields ? fields : "", msg);
	if (n < 0)
		return -EINVAL;
	if (n >= (int)sizeof(entry)) {
		n = sizeof(entry) - 1;
		entry[n - 1] = '\n';
	}
	/* The message's own newlines would start fields of their choosing. */
	for (char *p = strstr(entry, "MESSAGE=") + 8; p < entry + n - 1; p++)
		if (*p == '\n')
			*p = ' ';
	if (sendto(j->fd, entry, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT, (const struct sockaddr *)&to,
		   sizeof(to)) < 0)
		return -errno;
	return 0;
}

void journal_close(struct journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
}
