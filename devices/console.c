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
