/* num: the one number parser.  See num.h. */
#include "base/num.h"

#include <errno.h>
#include <stdbool.h>

int num_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	bool over = false;
	uint64_t v = 0;
	const char *p;

	/* To the end of the digits even past an overflow: "99...9x" is not
	 * a number at all, rather than a number too large. */
	for (p = s; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			over = true;
		else
			v = v * 10 + d;
	}
	if (p == s || *p)
		return -EINVAL;
	if (over || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int num_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v;
	int r = num_parse_u64(s, min, max, &v);

	if (r == 0)
		*out = (uint32_t)v;
	return r;
}
