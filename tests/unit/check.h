/* check: the unit tests' tiny harness.  Each test binary prints one line per
 * check in TAP style ("ok N - what" / "not ok N - what") and exits non-zero
 * if any failed; tests/run counts the lines of every binary.  Only failing
 * checks print their details, so a green run stays short. */
#ifndef CCM_CHECK_H
#define CCM_CHECK_H

#include <stdio.h>
#include <string.h>

struct check_tally {
	int passed, failed;
};

static struct check_tally check_tally_;

#define CHECK(cond, ...) check_report_((cond) != 0, __FILE__, __LINE__, #cond, __VA_ARGS__)

/* A check that counts as one test, with a formatted name. */
static inline int check_report_(int ok, const char *file, int line,
				const char *expr, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#include <stdarg.h>
static inline int check_report_(int ok, const char *file, int line,
				const char *expr, const char *fmt, ...)
{
	va_list ap;
	int n = check_tally_.passed + check_tally_.failed + 1;

	printf("%s %d - ", ok ? "ok" : "not ok", n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!ok)
		printf("#   failed at %s:%d: %s\n", file, line, expr);
	if (ok)
		check_tally_.passed++;
	else
		check_tally_.failed++;
	fflush(stdout);
	return ok;
}

/* Quiet variant for loops with thousands of cases: counts a failure as a
 * test (and prints it), but passes silently; summarise with CHECK after. */
#define EXPECT(cond, ...) \
	((cond) ? 1 : check_report_(0, __FILE__, __LINE__, #cond, __VA_ARGS__))

static inline int check_done(void)
{
	printf("# %d passed, %d failed\n", check_tally_.passed, check_tally_.failed);
	return check_tally_.failed ? 1 : 0;
}

#endif
