#include "vmm/log.h"

#include "lib/fmt.h"
#include "abi/hypercall.h"
#include "vmm/uart16550.h"
#include "x86/cpu.h"

#define LOG_LINE_MAX 512

static struct uart console;

/*
 * Once the hypervisor runs guests, log lines go through a ring that is
 * drained into the UART's FIFO whenever it is empty (log_drain), so a
 * chatty guest console costs the system a copy, not 87 us per character
 * of busy-waiting at 115200 baud. A full ring drops new log text and says
 * so; the management line has room of its own (vmm/log_ring.h).
 */
_Static_assert(LOG_RING_LINE_RESERVE >= 3 * 2 * HC_LINE_MAX,
	       "the reserve holds three management chunks of LFs only");
static struct log_ring ring;
static uint64_t ring_dropped;
static bool buffered;
static enum log_level max_level = LOG_INFO;
static void (*firmware_sink)(const char *line);
static uint64_t clock_hz;
static uint64_t clock_start;

static const char *const level_names[] = {
	[LOG_ERROR] = "ERROR",
	[LOG_WARN] = "WARN ",
	[LOG_INFO] = "INFO ",
	[LOG_DEBUG] = "DEBUG",
};

void log_init_serial(uint16_t port, uint32_t baud)
{
	uart_init(&console, port, baud);
	/* The firmware may have left the line half-written: start a fresh one. */
	uart_write(&console, "\n", 1);
}

void log_set_clock(uint64_t tsc_hz)
{
	clock_hz = tsc_hz;
	clock_start = rdtsc();
}

void log_set_level(enum log_level level)
{
	max_level = level;
}

void log_set_firmware_sink(void (*sink)(const char *line))
{
	firmware_sink = sink;
}

int log_put_chunk(const char *s, size_t len, bool frame)
{
	if (!buffered ||
	    !log_ring_put(&ring, s, len, frame ? LOG_RING_LINE_FRAME : LOG_RING_LINE_TEXT))
		return -1;
	return 0;
}

struct uart *log_uart(void)
{
	return &console;
}

void log_set_buffer(char *memory)
{
	ring.buf = memory;
	buffered = memory != NULL;
	if (!buffered)
		ring.head = ring.tail = 0;
}

void log_drain(void)
{
	char chunk[UART_TX_FIFO];

	/*
	 * Dropped log lines are counted as soon as half the ring is free
	 * again, not only once it is empty, which steady guest output may
	 * never let happen: a full ring always says what it dropped.
	 */
	if (ring_dropped && log_ring_used(&ring) <= LOG_RING_SIZE / 2) {
		uint64_t dropped = ring_dropped;
		ring_dropped = 0;
		log_warn("log: %llu bytes of log output were dropped (ring full)",
			 (unsigned long long)dropped);
	}
	if (log_ring_empty(&ring) || !uart_tx_empty(&console))
		return;
	uart_tx_fill(&console, chunk, (unsigned)log_ring_take(&ring, chunk, sizeof(chunk)));
}

bool log_pending(void)
{
	return buffered && !log_ring_empty(&ring);
}

void log_flush(void)
{
	/*
	 * A panic raised inside the ring's own code finds its lock held on
	 * this CPU: the queue may be half-written, and taking from it would
	 * trap again (lib/spinlock.h). Its bytes are given up.
	 */
	if (buffered && spin_is_held(&ring.lock)) {
		ring.tail = ring.head;
		return;
	}
	/* Bounded: an absent or stuck UART must not hang a panic. */
	for (unsigned spins = 0; buffered && !log_ring_empty(&ring) && spins < 100000000;
	     spins++) {
		if (!console.present) {
			ring.tail = ring.head;
			break;
		}
		log_drain();
	}
}

void log_vprintf(enum log_level level, const char *format, va_list args)
{
	char line[LOG_LINE_MAX];
	size_t n = 0;

	if (level > max_level)
		return;
	if (clock_hz) {
		uint64_t ms = (rdtsc() - clock_start) / (clock_hz / 1000);
		n = (size_t)fmt_snprintf(line, sizeof(line), "[%5llu.%03llu] ",
					 (unsigned long long)(ms / 1000),
					 (unsigned long long)(ms % 1000));
	}
	n += (size_t)fmt_snprintf(line + n, sizeof(line) - n, "%s ", level_names[level]);
	size_t body = (size_t)fmt_vsnprintf(line + n, sizeof(line) - n, format, args);
	n += body;
	/* Keep room for the newline even when the message was cut short. */
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	line[n] = '\0';

	if (buffered && !log_ring_put(&ring, line, n, LOG_RING_LOG))
		ring_dropped += n;
	else if (!buffered)
		uart_write(&console, line, n);
	if (firmware_sink)
		firmware_sink(line);
}

void log_printf(enum log_level level, const char *format, ...)
{
	va_list ap;
	va_start(ap, format);
	log_vprintf(level, format, ap);
	va_end(ap);
}
