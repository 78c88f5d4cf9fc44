/* log: timestamped lines on stderr, or entries in the journal.  A logger is
 * a value the caller owns and passes down; there is no global logger. */
#ifndef CCM_LOG_H
#define CCM_LOG_H

#include <stdint.h>

#include "base/journal.h"

/* A level is the verbosity that shows it (low nibble) and its syslog
 * priority for the journal (high nibble). */
enum log_level {
	LOG_ERR = 0x30,    /* always shown; err */
	LOG_NOTE = 0x50,   /* milestones: always shown; notice */
	LOG_STEP = 0x61,   /* -v: every state transition; info */
	LOG_DEBUG = 0x72,  /* -vv: every operation; debug */
};

struct log {
	int verbose;
	uint32_t node;
	const char *instance;  /* NULL or "": the unnamed one (base/instance.h) */
	/* Where lines go first when it is open: they go to stderr only when
	 * it is not, or when journald does not take them. */
	struct journal *journal;
	/* Where lines go instead of stderr (the simulator keeps them for its
	 * trace, stamped with virtual time): the message without a stamp. */
	void (*sink)(void *ctx, int level, const char *msg);
	void *sink_ctx;
};

void log_at(const struct log *l, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The same, with journal fields of the caller's ("KEY=value\n" each) for
 * the entry: in a line on stderr they are not shown. */
void log_fields(const struct log *l, int level, const char *fields, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
