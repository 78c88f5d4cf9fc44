/* bytes: two small byte chores done once. */
#ifndef CCM_BYTES_H
#define CCM_BYTES_H

#include <stddef.h>
#include <stdint.h>

/* All of buf to fd, through short writes and EINTR: 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);

/* n bytes as 2n lowercase hex digits and a NUL (out holds 2n + 1). */
void hex_encode(char *out, const uint8_t *in, size_t n);

#endif
