/* test_seal: every tcp frame after the greeting is sealed; a forged,
 * replayed, reordered or damaged one must never open. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "proto/seal.h"

static const uint8_t key[SEAL_KEY_LEN] = "0123456789abcdef0123456789abcdef";

int main(void)
{
	struct seal tx, rx, other;
	uint8_t hdr[16] = "CCMT header 16b", body[64], frame1[64], tag1[SEAL_TAG_LEN],
		tag[SEAL_TAG_LEN], empty_tag[SEAL_TAG_LEN], dummy[1];

	seal_init(&tx, key);
	seal_init(&rx, key);
	memset(body, 'x', sizeof(body));
	CHECK(seal_close(&tx, hdr, sizeof(hdr), body, sizeof(body), tag1) == 0, "seal a frame");
	CHECK(memcmp(body, "xxxxxxxxxxxxxxxx", 16) != 0, "its body is encrypted");
	memcpy(frame1, body, sizeof(body));
	CHECK(seal_open(&rx, hdr, sizeof(hdr), body, sizeof(body), tag1) == 0 &&
	      body[0] == 'x' && body[63] == 'x', "it opens, and reads as it was");
	CHECK(rx.count == 1 && tx.count == 1, "both sides counted it");

	/* Replayed: the same bytes again no longer open. */
	memcpy(body, frame1, sizeof(body));
	CHECK(seal_open(&rx, hdr, sizeof(hdr), body, sizeof(body), tag1) == -EBADMSG &&
	      rx.count == 1, "a replayed frame does not open, and the count stays");

	/* Damaged body, header or tag: refused. */
	memset(body, 'y', sizeof(body));
	seal_close(&tx, hdr, sizeof(hdr), body, sizeof(body), tag);
	memcpy(frame1, body, sizeof(body));
	body[5] ^= 1;
	CHECK(seal_open(&rx, hdr, sizeof(hdr), body, sizeof(body), tag) == -EBADMSG,
	      "a changed body bit: refused");
	memcpy(body, frame1, sizeof(body));
	hdr[8] ^= 1;
	CHECK(seal_open(&rx, hdr, sizeof(hdr), body, sizeof(body), tag) == -EBADMSG,
	      "a changed header bit (its length, its type): refused");
	hdr[8] ^= 1;
	tag[0] ^= 1;
	CHECK(seal_open(&rx, hdr, sizeof(hdr), body, sizeof(body), tag) == -EBADMSG,
	      "a changed tag: refused");
	tag[0] ^= 1;
	/* A refused frame's buffer is wiped, not left half-decrypted. */
	CHECK(body[0] == 0 && body[63] == 0, "a refused body is left zeroed");
	memcpy(body, frame1, sizeof(body));
	CHECK(seal_open(&rx, hdr, sizeof(hdr), body, sizeof(body), tag) == 0 && body[0] == 'y',
	      "the frame itself still opens after all that");

	/* Reordered: frame 3 before frame 2 does not open. */
	uint8_t b2[8] = "second", b3[8] = "third", c3[8], t2[SEAL_TAG_LEN], t3[SEAL_TAG_LEN];
	seal_close(&tx, hdr, sizeof(hdr), b2, sizeof(b2), t2);
	seal_close(&tx, hdr, sizeof(hdr), b3, sizeof(b3), t3);
	memcpy(c3, b3, sizeof(b3));
	CHECK(seal_open(&rx, hdr, sizeof(hdr), b3, sizeof(b3), t3) == -EBADMSG,
	      "a frame ahead of its turn: refused");
	memcpy(b3, c3, sizeof(b3));
	CHECK(seal_open(&rx, hdr, sizeof(hdr), b2, sizeof(b2), t2) == 0 &&
	      seal_open(&rx, hdr, sizeof(hdr), b3, sizeof(b3), t3) == 0 && !strcmp((char *)b3, "third"),
	      "in order, both open");

	/* An empty body is authenticated too (a WRITE reply). */
	seal_close(&tx, hdr, sizeof(hdr), dummy, 0, empty_tag);
	hdr[15] ^= 1;
	CHECK(seal_open(&rx, hdr, sizeof(hdr), dummy, 0, empty_tag) == -EBADMSG,
	      "an empty body's header is checked");
	hdr[15] ^= 1;
	CHECK(seal_open(&rx, hdr, sizeof(hdr), dummy, 0, empty_tag) == 0, "and then opens");

	/* Another key (another connection, or no key at all): nothing opens. */
	seal_init(&other, (const uint8_t *)"fedcba9876543210fedcba9876543210");
	other.count = rx.count;
	memset(body, 'z', sizeof(body));
	seal_close(&other, hdr, sizeof(hdr), body, sizeof(body), tag);
	CHECK(seal_open(&rx, hdr, sizeof(hdr), body, sizeof(body), tag) == -EBADMSG,
	      "a frame sealed under another key: refused");

	tx.count = UINT64_MAX;
	CHECK(seal_close(&tx, hdr, sizeof(hdr), body, 1, tag) == -EOVERFLOW,
	      "never a nonce twice: the count does not wrap");
	seal_wipe(&tx);
	seal_wipe(&rx);
	seal_wipe(&other);
	return check_done();
}
