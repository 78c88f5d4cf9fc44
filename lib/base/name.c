/* name: the client name rule.  See name.h. */
#include "base/name.h"

#include "base/limits.h"

_Static_assert(CCM_NAME_MAX == 31, "CLIENT_NAME_RULE spells out CCM_NAME_MAX");

bool client_name_char_ok(size_t i, unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (i > 0 && ((c >= '0' && c <= '9') || c == '_'));
}

bool client_name_valid(const char *s, size_t n)
{
	if (!s || n < 1 || n > CCM_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!client_name_char_ok(i, (unsigned char)s[i]))
			return false;
	return true;
}
