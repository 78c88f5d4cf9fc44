/* rdma_syslog: the syslog(3) that librdmacm calls, written to stderr.
 *
 * librdmacm reports one condition through syslog (cma.c: a CM event for
 * an id it does not know, "discarding unmatched event - rdma_destroy_id may
 * hang").  The keeper runs where no syslog daemon listens -- the
 * initramfs, and a real root whose journal it speaks to natively -- so
 * through libc's syslog the line would be lost.  Defined here, it is the
 * one every caller in this binary links to: the line goes to stderr in one
 * write(2), as base/log writes its own, and reaches the console or the
 * journal's stream with the keeper's.  (It also keeps libc's syslog, with
 * its strftime and time-zone code, out of a binary whose budget is
 * 512 KiB.)  No caller of ours uses it. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

void syslog(int priority, const char *fmt, ...)
{
	static const char prefix[] = "ccm-early: librdmacm: ";
	char line[256];
	va_list ap;
	int n = sizeof(prefix) - 1, m;

	(void)priority;
	memcpy(line, prefix, (size_t)n);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* Cut to the buffer, and end with exactly one newline. */
	n += m < 0 ? 0 : m;
	if (n > (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 1;
	if (line[n - 1] != '\n')
		line[n++] = '\n';
	while (write(STDERR_FILENO, line, (size_t)n) < 0 && errno == EINTR)
		;
}
