/* be: big-endian integers in byte buffers, the one spelling every codec
 * uses -- no casts of buffers to structs, no unaligned loads. */
#ifndef CCM_BE_H
#define CCM_BE_H

#include <stdint.h>

static inline void be_put(uint8_t *p, uint64_t v, int n)
{
	while (n--) {
		p[n] = (uint8_t)v;
		v >>= 8;
	}
}

static inline uint64_t be_get(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static inline void be_put16(uint8_t *p, uint16_t v) { be_put(p, v, 2); }
static inline void be_put32(uint8_t *p, uint32_t v) { be_put(p, v, 4); }
static inline void be_put64(uint8_t *p, uint64_t v) { be_put(p, v, 8); }
static inline uint16_t be_get16(const uint8_t *p) { return (uint16_t)be_get(p, 2); }
static inline uint32_t be_get32(const uint8_t *p) { return (uint32_t)be_get(p, 4); }
static inline uint64_t be_get64(const uint8_t *p) { return be_get(p, 8); }

#endif
