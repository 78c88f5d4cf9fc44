#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

void log_at(const struct log *l, int level, const char *fmt, ...)
{
	struct timespec ts;
	struct tm tm;
	char line[512];
	va_list ap;
	int n;

	if (level > l->verbose)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ ccm-early[node %u]: ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, ts.tv_nsec / 1000, l->node);
	if (n < 0 || n >= (int)sizeof(line))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One write per line, so two nodes sharing a terminal do not
	 * interleave within a line. */
	fprintf(stderr, "%s\n", line);
}
