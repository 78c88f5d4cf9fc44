/* test_rdma_syslog: librdmacm's syslog lands on stderr, one line, one
 * write, whatever the message's length or ending. */
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "check.h"

/* What one syslog call writes to stderr: one read of a pipe. */
static ssize_t capture(char *buf, size_t cap, const char *msg)
{
	int p[2], saved = dup(STDERR_FILENO);
	ssize_t n;

	if (saved < 0 || pipe(p) < 0)
		return -1;
	dup2(p[1], STDERR_FILENO);
	close(p[1]);
	syslog(LOG_WARNING, "%s", msg);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = read(p[0], buf, cap);
	close(p[0]);
	return n;
}

int main(void)
{
	char buf[1024], long_msg[600];
	ssize_t n;

	static const char want[] = "ccm-early: librdmacm: rdma_cm: discarding unmatched event\n";

	n = capture(buf, sizeof(buf), "rdma_cm: discarding unmatched event\n");
	CHECK(n == (ssize_t)strlen(want) && !memcmp(buf, want, (size_t)n),
	      "a line that has its newline, prefixed, written whole");
	n = capture(buf, sizeof(buf), "no newline");
	CHECK(n == (ssize_t)strlen("ccm-early: librdmacm: no newline\n") && buf[n - 1] == '\n',
	      "a newline added when missing");
	memset(long_msg, 'x', sizeof(long_msg) - 1);
	long_msg[sizeof(long_msg) - 1] = '\0';
	n = capture(buf, sizeof(buf), long_msg);
	CHECK(n == 256 && buf[255] == '\n' && buf[254] == 'x',
	      "a long message cut to one 256-byte line ending in a newline (%zd)", n);
	return check_done();
}
