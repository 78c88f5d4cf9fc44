/* num: the one number parser -- the command line, the config and client
 * descriptor files, the handoff file, LISTEN_FDS, addresses' ports.
 *
 * Decimal digits only: no sign, no blanks, no "0x", no empty string and
 * nothing after the digits -- all of which strtoul lets through, "-1"
 * wrapping to its largest value.  Leading zeros are allowed.  0, or
 * -EINVAL for text that is not a number, -ERANGE for a number outside
 * min..max (however many digits: nothing wraps).  *out is written only on
 * success. */
#ifndef CCM_NUM_H
#define CCM_NUM_H

#include <stdint.h>

int num_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int num_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);

#endif
