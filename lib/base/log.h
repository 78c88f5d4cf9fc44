/* log: timestamped lines on stderr.  A logger is a value the caller owns
 * and passes down; there is no global logger. */
#ifndef CCM_LOG_H
#define CCM_LOG_H

#include <stdint.h>

enum log_level {
	LOG_ERR = 0,    /* always shown */
	LOG_NOTE = 0,   /* milestones: always shown */
	LOG_STEP = 1,   /* -v: every state transition */
	LOG_DEBUG = 2,  /* -vv: every operation */
};

struct log {
	int verbose;
	uint32_t node;
	/* Where lines go instead of stderr (the simulator keeps them for its
	 * trace, stamped with virtual time): the message without a stamp. */
	void (*sink)(void *ctx, int level, const char *msg);
	void *sink_ctx;
};

void log_at(const struct log *l, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
