/* errbuf: one error convention for the whole manager.
 *
 * Every fallible function returns 0 (or a count) on success and a negative
 * errno on failure.  Where the caller needs to tell a user *what* was wrong
 * (which line of a config file, which field of a partner's message), the
 * function also fills a struct errbuf with one human-readable sentence. */
#ifndef CCM_ERRBUF_H
#define CCM_ERRBUF_H

#include <stddef.h>

struct errbuf {
	char msg[256];
};

/* Format a message into e (if e is not NULL) and return err unchanged, so a
 * failure path reads: return errbuf_set(e, -EINVAL, "line %d: ...", n); */
int errbuf_set(struct errbuf *e, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefix an existing message: "context: old message". */
int errbuf_prefix(struct errbuf *e, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
