/* Fuzz target: decode both halves of a status block from arbitrary bytes.
 * Whatever decodes must re-encode to exactly the bytes it came from (the
 * decoder is strict: fixed magic and layout, zero reserved bytes, a CRC
 * over everything else), so any difference is a codec bug and aborts. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_own(const uint8_t *in, size_t len)
{
	uint8_t out[STATUS_OWN_SIZE];
	struct status_own o;
	struct errbuf e;

	if (status_decode_own(in, len, &o, &e) != 0)
		return;
	status_encode_own(&o, out);
	if (len < sizeof(out) || memcmp(out, in, sizeof(out)) != 0)
		abort();
}

static void check_mbox(const uint8_t *in, size_t len)
{
	uint8_t out[STATUS_MBOX_SIZE];
	struct status_mbox m;
	struct errbuf e;

	if (status_decode_mbox(in, len, &m, &e) != 0)
		return;
	status_encode_mbox(&m, out);
	if (len < sizeof(out) || memcmp(out, in, sizeof(out)) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The input as a block (own section, then mailbox at offset 32),
	 * and each half also taken from the very start, so a fuzzer that
	 * found one valid half can try it against the other decoder. */
	check_own(data, size);
	check_mbox(data, size);
	if (size > STATUS_MBOX_OFFSET)
		check_mbox(data + STATUS_MBOX_OFFSET, size - STATUS_MBOX_OFFSET);
	return 0;
}
