/*
 * A VM's console history: everything the guest wrote to its serial port,
 * kept in a ring so the management API can show the last bytes of output
 * ("read the buffered output") while older output is overwritten.
 */
#ifndef DEVICES_CONSOLE_H
#define DEVICES_CONSOLE_H

#include <stdbool.h>
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

/*
 * How much of a VM's console output goes on to the host log. The log
 * shares the serial line, 11520 bytes a second at 115200 baud, with every
 * other VM, the hypervisor and the management line; a guest's own 16550
 * could send as fast as that line, so one guest alone could fill it.
 * Each VM may log CONSOLE_LOG_RATE bytes a second, about a ninth of the
 * line, and save up CONSOLE_LOG_BURST (a boot's messages: the test guests
 * print under 2 KiB, a quiet Linux boot and its test runs under 3 KiB).
 * A line costs its bytes plus CONSOLE_LOG_LINE_OVERHEAD, what the log
 * adds (timestamp, level, the VM's name, CR LF), so empty lines are not
 * free. Output over the rate stays in the console history (ConsoleRead)
 * and is counted, not logged.
 *
 * Once a line is refused, the log skips the VM's output until its bucket
 * is full again (CONSOLE_LOG_BURST / CONSOLE_LOG_RATE seconds: refused
 * lines cost nothing), so a flood shows as one burst, one notice when it
 * starts and one count when the log resumes, not as a line now and then.
 */
#define CONSOLE_LOG_RATE 1024           /* bytes a second */
#define CONSOLE_LOG_BURST 8192          /* bytes */
#define CONSOLE_LOG_LINE_OVERHEAD 64

struct console_rate {
	bool started;                   /* false: the bucket is full */
	bool skipping;                  /* refusing until the bucket is full again */
	uint64_t tokens;                /* in byte-nanoseconds: bytes * 10^9 */
	uint64_t refill_ns;
	uint64_t unlogged;              /* guest bytes refused since skipping began */
	uint64_t unlogged_total;
};

enum console_rate_verdict {
	CONSOLE_RATE_LOG,               /* log the line */
	CONSOLE_RATE_RESUMED,           /* log it, after saying *unlogged bytes were not */
	CONSOLE_RATE_FIRST_SKIP,        /* do not log it; say the VM is over its rate */
	CONSOLE_RATE_SKIP,              /* do not log it */
};

/*
 * Whether a line of len guest bytes may go to the log at now_ns (a
 * monotonic clock; one that goes back refills nothing).
 */
enum console_rate_verdict console_rate_admit(struct console_rate *r, size_t len,
					     uint64_t now_ns, uint64_t *unlogged);

#endif
