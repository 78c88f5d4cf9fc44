/* name: the client name rule, [a-z][a-z0-9_]{0,30}.
 *
 * A client's name is its descriptor file's name, a field on the wire, part
 * of a shell variable's name in the handoff file (CCM_CLIENT_<name>_PORTS)
 * and what a process attaches by; every one of those places judges it here,
 * so a name one of them takes is never refused by another. */
#ifndef CCM_NAME_H
#define CCM_NAME_H

#include <stdbool.h>
#include <stddef.h>

/* For messages; CCM_NAME_MAX (limits.h) is 1 + 30. */
#define CLIENT_NAME_RULE "[a-z][a-z0-9_]{0,30}"

/* s[0..n), which need not be NUL-terminated (a NUL in it is a bad byte):
 * 1..CCM_NAME_MAX bytes, each allowed where it stands.  NULL is invalid. */
bool client_name_valid(const char *s, size_t n);

/* May byte i of a name be c?  For parsers that say which byte is wrong. */
bool client_name_char_ok(size_t i, unsigned char c);

#endif
