/*
 * A VM's console history: everything the guest wrote to its serial port,
 * kept in a ring so the management API can show the last bytes of output
 * ("read the buffered output") while older output is overwritten.
 */
#ifndef DEVICES_CONSOLE_H
#define DEVICES_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#define CONSOLE_RING_SIZE 16384 /* power of two */

struct console_ring {
	uint8_t buf[CONSOLE_RING_SIZE];
	uint64_t written; /* bytes ever written; the ring holds the last ones */
};

void console_ring_write(struct console_ring *ring, const uint8_t *data, size_t len);

/*
 * Copies output starting at absolute offset `from` (bytes since the VM
 * started). Output older than the ring is gone: *from is moved up to the
 * oldest byte still held, so the caller can tell how much it missed, and
 * then past the bytes copied. Returns the number copied (at most max).
 */
size_t console_ring_read(const struct console_ring *ring, uint64_t *from, uint8_t *out,
			 size_t max);

#endif
