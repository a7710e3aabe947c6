/*
 * The ring that the hypervisor's log and the management line share on
 * the way to the serial port (vmm/log.c drains it into the UART). Plain C,
 * built on the host for its unit test.
 *
 * The serial line carries 11520 bytes a second at 115200 baud (8N1): the
 * ring is about 5.7 s of it. Log lines, guest console lines among them,
 * may fill the ring only up to LOG_RING_LINE_RESERVE bytes below the top;
 * the management VM's frames and text may use all of it. So however much
 * the guests print, an answer or an event of the management line finds
 * room and never waits for the log to drain (docs/security.md, "The
 * console and the log ring").
 *
 * Room is counted exactly: text has each LF sent as CR LF, so it needs
 * its length plus its LF count; a frame goes byte for byte.
 */
#ifndef VMM_LOG_RING_H
#define VMM_LOG_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/spinlock.h"

#define LOG_RING_SIZE 65536
/*
 * Room for three of the largest management chunks the ring can be asked
 * for, 1100-byte HC_LINE_TEXT chunks of LFs only (2200 bytes each), or
 * seven frames of at most 1047 bytes (docs/protocol.md). 0.7 s of the line.
 */
#define LOG_RING_LINE_RESERVE 8192

enum log_ring_kind {
	LOG_RING_LOG,           /* a log line: LF as CR LF; up to the reserve */
	LOG_RING_LINE_TEXT,     /* management text: LF as CR LF, NUL as '?'; the whole ring */
	LOG_RING_LINE_FRAME,    /* a management frame, byte for byte; the whole ring */
};

struct log_ring {
	char *buf;              /* LOG_RING_SIZE bytes */
	uint64_t head, tail;    /* bytes written / taken, ever */
	struct spinlock lock;   /* taken by put and take */
};

/* Queues s whole, or nothing when its kind may not use the room it needs (false). */
bool log_ring_put(struct log_ring *r, const char *s, size_t len, enum log_ring_kind kind);

/* Takes up to max of the oldest bytes into out; returns how many. */
size_t log_ring_take(struct log_ring *r, char *out, size_t max);

/* Bytes queued; a hint without the lock, as log_ring_empty. */
static inline uint64_t log_ring_used(const struct log_ring *r)
{
	return __atomic_load_n(&r->head, __ATOMIC_RELAXED) -
	       __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
}

/* A hint without the lock: another CPU may be adding or taking bytes. */
static inline bool log_ring_empty(const struct log_ring *r)
{
	return __atomic_load_n(&r->head, __ATOMIC_RELAXED) ==
	       __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
}

#endif
