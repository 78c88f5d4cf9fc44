#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static void vlog(const struct log *l, int level, const char *fields, const char *fmt, va_list ap)
{
	struct timespec ts;
	struct tm tm;
	char line[512];
	size_t len;
	int n;

	if ((level & 0xf) > l->verbose)
		return;
	if (l->sink || l->journal) {
		va_list again;

		va_copy(again, ap);
		vsnprintf(line, sizeof(line), fmt, again);
		va_end(again);
		if (l->sink) {
			l->sink(l->sink_ctx, level, line);
			return;
		}
		/* journald stamps it; a line it refuses goes on below. */
		if (journal_send(l->journal, level >> 4, l->node, l->instance, fields, line) == 0)
			return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	/* ccm-early@NAME for a named instance, as its unit is called. */
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ ccm-early%s%s[node %u]: ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, ts.tv_nsec / 1000, l->instance && l->instance[0] ? "@" : "",
		     l->instance ? l->instance : "", l->node);
	if (n < 0 || n >= (int)sizeof(line))
		n = 0;
	vsnprintf(line + n, sizeof(line) - 1 - (size_t)n, fmt, ap);
	/* One write(2) per line, newline included, so two nodes sharing a
	 * terminal or a journal stream never interleave within a line (musl's
	 * unbuffered stderr would split a long fprintf into several writes). */
	len = 0;
	while (line[len])
		len++;
	line[len++] = '\n';
	while (write(STDERR_FILENO, line, len) < 0 && errno == EINTR)
		;
}

void log_at(const struct log *l, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(l, level, NULL, fmt, ap);
	va_end(ap);
}

void log_fields(const struct log *l, int level, const char *fields, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(l, level, fields, fmt, ap);
	va_end(ap);
}
