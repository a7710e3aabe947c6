#include "devices/console.h"

#include <string.h>

_Static_assert((CONSOLE_RING_SIZE & (CONSOLE_RING_SIZE - 1)) == 0, "power of two");

void console_ring_write(struct console_ring *ring, const uint8_t *data, size_t len)
{
	/* Only the tail of an oversized write can survive anyway. */
	if (len > CONSOLE_RING_SIZE) {
		ring->written += len - CONSOLE_RING_SIZE;
		data += len - CONSOLE_RING_SIZE;
		len = CONSOLE_RING_SIZE;
	}
	size_t at = (size_t)(ring->written & (CONSOLE_RING_SIZE - 1));
	size_t first = len < CONSOLE_RING_SIZE - at ? len : CONSOLE_RING_SIZE - at;

	memcpy(ring->buf + at, data, first);
	memcpy(ring->buf, data + first, len - first);
	ring->written += len;
}

size_t console_ring_read(const struct console_ring *ring, uint64_t *from, uint8_t *out,
			 size_t max)
{
	uint64_t oldest = ring->written > CONSOLE_RING_SIZE ? ring->written - CONSOLE_RING_SIZE : 0;
	size_t n = 0;

	if (*from < oldest)
		*from = oldest;
	while (*from + n < ring->written && n < max) {
		out[n] = ring->buf[(*from + n) & (CONSOLE_RING_SIZE - 1)];
		n++;
	}
	*from += n;
	return n;
}

#define NS_PER_S 1000000000ULL
#define BUCKET_FULL ((uint64_t)CONSOLE_LOG_BURST * NS_PER_S)
/* From empty to full; a longer gap adds nothing, which bounds the product. */
#define FILL_NS (BUCKET_FULL / CONSOLE_LOG_RATE)
_Static_assert(FILL_NS * CONSOLE_LOG_RATE <= UINT64_MAX - BUCKET_FULL, "no overflow");

enum console_rate_verdict console_rate_admit(struct console_rate *r, size_t len,
					     uint64_t now_ns, uint64_t *unlogged)
{
	/* At most a full bucket, so that any line gets through after a pause. */
	uint64_t bytes = (uint64_t)len + CONSOLE_LOG_LINE_OVERHEAD;
	uint64_t cost = (bytes < CONSOLE_LOG_BURST ? bytes : CONSOLE_LOG_BURST) * NS_PER_S;

	if (!r->started) {
		r->started = true;
		r->tokens = BUCKET_FULL;
		r->refill_ns = now_ns;
	}
	if (now_ns > r->refill_ns) {
		uint64_t elapsed = now_ns - r->refill_ns;

		r->tokens += (elapsed < FILL_NS ? elapsed : FILL_NS) * CONSOLE_LOG_RATE;
		if (r->tokens > BUCKET_FULL)
			r->tokens = BUCKET_FULL;
		r->refill_ns = now_ns;
	}
	if (r->skipping && r->tokens < BUCKET_FULL) {
		r->unlogged += len;
		r->unlogged_total += len;
		return CONSOLE_RATE_SKIP;
	}
	if (r->skipping) {
		r->skipping = false;
		*unlogged = r->unlogged;
		r->unlogged = 0;
		r->tokens -= cost;
		return CONSOLE_RATE_RESUMED;
	}
	if (r->tokens >= cost) {
		r->tokens -= cost;
		return CONSOLE_RATE_LOG;
	}
	r->skipping = true;
	r->unlogged = len;
	r->unlogged_total += len;
	return CONSOLE_RATE_FIRST_SKIP;
}
