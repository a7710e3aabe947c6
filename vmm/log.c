#include "vmm/log.h"

#include "lib/fmt.h"
#include "vmm/uart16550.h"
#include "x86/cpu.h"

#define LOG_LINE_MAX 512

static struct uart console;
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
