/* fuzz_wire: the wire codec in both directions.
 *
 * Bytes -> message: wire_decode on arbitrary bytes must never read out of
 * bounds, must fail only with -EBADMSG and a message, and whatever it
 * accepts must re-encode to exactly the input: the codec is canonical, so
 * one message has one encoding and an accepted frame carries no slack.
 *
 * Message -> bytes: the same input, laid over a struct wire_msg, is
 * encoded; whatever the encoder accepts the decoder must accept, and must
 * give back the same bytes (we never send what we would refuse). */
#include "proto/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct wire_msg m, m2;
static uint8_t out[16384], out2[16384];

static void bytes_to_msg(const uint8_t *data, size_t size)
{
	struct errbuf e = { "" };
	int rc, n;

	rc = wire_decode(data, size, &m, &e);
	if (rc) {
		if (rc != -EBADMSG || !e.msg[0])
			abort();
		return;
	}
	n = wire_encode(&m, out, sizeof(out));
	if (n < 0 || (size_t)n != size || memcmp(out, data, size))
		abort();
}

static void msg_to_bytes(const uint8_t *data, size_t size)
{
	int n, n2;

	if (!size)
		return;
	memset(&m, 0, sizeof(m));
	m.type = (enum wire_type)(data[0] % 8);
	memcpy(&m.u, data + 1, size - 1 < sizeof(m.u) ? size - 1 : sizeof(m.u));
	n = wire_encode(&m, out, sizeof(out));
	if (n < 0) {
		if (n != -EINVAL)
			abort();
		return;
	}
	if (wire_decode(out, (size_t)n, &m2, NULL))
		abort();
	n2 = wire_encode(&m2, out2, sizeof(out2));
	if (n2 != n || memcmp(out, out2, (size_t)n))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bytes_to_msg(data, size);
	msg_to_bytes(data, size);
	return 0;
}
