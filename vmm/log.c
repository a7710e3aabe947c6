#include "vmm/log.h"

#include "lib/fmt.h"
#include "vmm/uart16550.h"
#include "x86/cpu.h"

#define LOG_LINE_MAX 512

static struct uart console;

/*
 * Once the hypervisor runs guests, log lines go through a ring that is
 * drained into the UART's FIFO whenever it is empty (log_drain), so a
 * chatty guest console costs the system a copy, not 87 us per character
 * of busy-waiting at 115200 baud. A full ring drops new text and says so.
 */
static char *ring;
static uint64_t ring_head, ring_tail; /* bytes written / sent, ever */
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

static void ring_put(const char *s, size_t n)
{
	if (ring_head - ring_tail + 2 * n > LOG_RING_SIZE) {
		ring_dropped += n;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		/* The UART path turns "\n" into "\r\n" itself; the ring does it here. */
		if (s[i] == '\n')
			ring[ring_head++ % LOG_RING_SIZE] = '\r';
		ring[ring_head++ % LOG_RING_SIZE] = s[i];
	}
}

int log_put_chunk(const char *s, size_t len, bool frame)
{
	if (!buffered || ring_head - ring_tail + 2 * len > LOG_RING_SIZE)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!frame && c == '\n')
			ring[ring_head++ % LOG_RING_SIZE] = '\r';
		if (!frame && c == '\0')
			c = '?';
		ring[ring_head++ % LOG_RING_SIZE] = c;
	}
	return 0;
}

const struct uart *log_uart(void)
{
	return &console;
}

void log_set_buffer(char *memory)
{
	ring = memory;
	buffered = memory != NULL;
	if (!buffered)
		ring_head = ring_tail = 0;
}

void log_drain(void)
{
	char chunk[UART_TX_FIFO];

	if (ring_dropped && ring_head == ring_tail) {
		uint64_t dropped = ring_dropped;
		ring_dropped = 0;
		log_warn("log: %llu bytes of log output were dropped (ring full)",
			 (unsigned long long)dropped);
	}
	if (ring_head == ring_tail || !uart_tx_empty(&console))
		return;
	unsigned n = 0;
	while (n < UART_TX_FIFO && ring_tail != ring_head)
		chunk[n++] = ring[ring_tail++ % LOG_RING_SIZE];
	uart_tx_fill(&console, chunk, n);
}

void log_flush(void)
{
	/* Bounded: an absent or stuck UART must not hang a panic. */
	for (unsigned spins = 0; buffered && ring_head != ring_tail && spins < 100000000;
	     spins++) {
		if (!console.present) {
			ring_tail = ring_head;
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

	if (buffered)
		ring_put(line, n);
	else
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
