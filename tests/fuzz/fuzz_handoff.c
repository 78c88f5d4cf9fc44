/* fuzz_handoff: the strict reader of the `state` file.  Whatever it accepts
 * must format (shell and JSON) and read back to the very same struct. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state/handoff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct handoff h, g;
	static char text[2 * HANDOFF_TEXT_MAX], again[2 * HANDOFF_TEXT_MAX];
	struct errbuf e;
	int n, m;

	if (handoff_parse((const char *)data, size, &h, &e) < 0) {
		if (strncmp(e.msg, "state", 5))
			abort();        /* every message says where */
		return 0;
	}
	n = handoff_format_shell(&h, text, sizeof(text));
	if (n < 0 || handoff_parse(text, (size_t)n, &g, &e) < 0)
		abort();
	if (memcmp(&h, &g, sizeof(h)))
		abort();
	m = handoff_format_shell(&g, again, sizeof(again));
	if (m != n || memcmp(text, again, (size_t)n))
		abort();
	if (handoff_format_json(&h, text, sizeof(text)) < 0)
		abort();
	return 0;
}
