/*
 * Leveled log of the hypervisor. Before ExitBootServices it reaches the
 * serial port and, where the firmware console does not already mirror to a
 * UART, the firmware console; afterwards only the serial port.
 */
#ifndef VMM_LOG_H
#define VMM_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/log_ring.h"

enum log_level {
	LOG_ERROR,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
};

/* (Re)programs the serial console; the log writes there from then on. */
void log_init_serial(uint16_t port, uint32_t baud);

/* Starts the timestamp clock: time 0 is now, ticking at tsc_hz. */
void log_set_clock(uint64_t tsc_hz);

/* Messages above this level are dropped; the boot config sets it. */
void log_set_level(enum log_level level);

/* Where a pre-ExitBootServices copy of each line goes (NULL: nowhere). */
void log_set_firmware_sink(void (*sink)(const char *line));

/*
 * Buffered mode (once guests run): lines queue in a ring of LOG_RING_SIZE
 * bytes at `memory` (vmm/log_ring.h: log lines leave the top
 * LOG_RING_LINE_RESERVE bytes to the management line) and log_drain(),
 * called from the scheduler, moves them to the UART without waiting.
 * log_flush() sends everything queued, waiting as needed (panic, halt).
 * NULL returns to direct writes.
 */
struct uart;
void log_set_buffer(char *memory);
void log_drain(void);
void log_flush(void);
/* Whether buffered output still waits for the UART (log_drain sends it). */
bool log_pending(void);

/*
 * The management line (vmm/mgmt.c) shares the console: a frame or a
 * chunk of text is queued whole between two log lines, or not at all
 * (-1: not buffered yet, or no room now). Text has 0x00 replaced by '?'
 * (0x00 delimits frames, docs/protocol.md) and LF by CR LF; a frame goes
 * out byte for byte. Only the management line may use the ring's reserve.
 */
int log_put_chunk(const char *s, size_t len, bool frame);
/* The console UART, whose receive side the management line polls. */
struct uart *log_uart(void);

void log_printf(enum log_level level, const char *format, ...)
	__attribute__((format(printf, 2, 3)));
void log_vprintf(enum log_level level, const char *format, va_list args);

#define log_err(...) log_printf(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_printf(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_printf(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_printf(LOG_DEBUG, __VA_ARGS__)

#endif
