/* test_num: the one number parser's edges. */
#include <errno.h>
#include <stdint.h>

#include "check.h"
#include "base/num.h"

static const struct {
	const char *in;
	uint64_t min, max;
	int rc;
	uint64_t want;
} cases[] = {
	{ "0", 0, 10, 0, 0 },
	{ "10", 0, 10, 0, 10 },
	{ "007", 0, 10, 0, 7 },
	{ "18446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX },
	{ "00000000000000000000000000018446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX },
	{ "18446744073709551616", 0, UINT64_MAX, -ERANGE, 0 },
	{ "99999999999999999999999", 0, UINT64_MAX, -ERANGE, 0 },
	{ "11", 0, 10, -ERANGE, 0 },
	{ "0", 1, 10, -ERANGE, 0 },
	{ "", 0, 10, -EINVAL, 0 },
	{ "-1", 0, UINT64_MAX, -EINVAL, 0 },
	{ "+1", 0, 10, -EINVAL, 0 },
	{ " 1", 0, 10, -EINVAL, 0 },
	{ "1 ", 0, 10, -EINVAL, 0 },
	{ "0x10", 0, 100, -EINVAL, 0 },
	{ "1e3", 0, 10000, -EINVAL, 0 },
	{ "5k", 0, 10000, -EINVAL, 0 },
	{ "99999999999999999999999x", 0, UINT64_MAX, -EINVAL, 0 },
	{ "\xd9\xa3", 0, 10, -EINVAL, 0 },  /* a digit, but not an ASCII one */
};

int main(void)
{
	uint64_t v;
	uint32_t w;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		v = 12345;
		rc = num_parse_u64(cases[i].in, cases[i].min, cases[i].max, &v);
		CHECK(rc == cases[i].rc && v == (rc ? 12345 : cases[i].want),
		      "'%s' in %llu..%llu: %d (got %d, %llu)", cases[i].in,
		      (unsigned long long)cases[i].min, (unsigned long long)cases[i].max,
		      cases[i].rc, rc, (unsigned long long)v);
	}
	CHECK(num_parse_u32("4294967295", 0, UINT32_MAX, &w) == 0 && w == UINT32_MAX,
	      "u32: the largest");
	w = 7;
	CHECK(num_parse_u32("4294967296", 0, UINT32_MAX, &w) == -ERANGE && w == 7,
	      "u32: one past the largest, *out untouched");
	CHECK(num_parse_u32("65536", 1, 65535, &w) == -ERANGE, "u32: past a port");
	return check_done();
}
