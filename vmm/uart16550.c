#include "vmm/uart16550.h"

#include "x86/cpu.h"

/* Register offsets (National Semiconductor PC16550D data sheet, table 2). */
enum {
	UART_THR = 0, /* transmit holding (DLAB=0) */
	UART_DLL = 0, /* divisor latch low (DLAB=1) */
	UART_IER = 1,
	UART_DLM = 1,
	UART_FCR = 2,
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
};

#define LCR_8N1 0x03
#define LCR_DLAB 0x80
#define FCR_ENABLE_CLEAR 0x07
#define MCR_DTR_RTS 0x03
#define MCR_OUT2 0x08
#define IER_RX_DATA 0x01
#define IER_TX_EMPTY 0x02
#define LSR_DATA_READY 0x01
#define LSR_OVERRUN 0x02
#define LSR_THR_EMPTY 0x20
#define UART_CLOCK_DIVISOR_BASE 115200

/*
 * A stuck or absent UART must not hang the hypervisor: give up on a byte
 * after this many polls (far longer than one character time at 9600 baud).
 */
#define UART_TX_POLL_LIMIT 1000000

void uart_init(struct uart *u, uint16_t port, uint32_t baud)
{
	uint16_t divisor = (uint16_t)(UART_CLOCK_DIVISOR_BASE / baud);

	u->port = port;
	/* An unpopulated I/O port floats high: all ones means no UART there. */
	u->present = inb(port + UART_LSR) != 0xff;
	if (!u->present)
		return;
	outb(port + UART_IER, 0);
	outb(port + UART_LCR, LCR_DLAB);
	outb(port + UART_DLL, (uint8_t)divisor);
	outb(port + UART_DLM, (uint8_t)(divisor >> 8));
	outb(port + UART_LCR, LCR_8N1);
	outb(port + UART_FCR, FCR_ENABLE_CLEAR);
	outb(port + UART_MCR, MCR_DTR_RTS);
}

/*
 * Every read of LSR clears OE, whatever it was read for, so each one keeps
 * OE for uart_rx() to report: no lost byte goes unnoticed.
 */
static uint8_t line_status(struct uart *u)
{
	uint8_t lsr = inb(u->port + UART_LSR);

	u->overrun |= (lsr & LSR_OVERRUN) != 0;
	return lsr;
}

static void uart_putc(struct uart *u, char c)
{
	for (unsigned i = 0; i < UART_TX_POLL_LIMIT; i++) {
		if (line_status(u) & LSR_THR_EMPTY)
			break;
		cpu_relax();
	}
	outb(u->port + UART_THR, (uint8_t)c);
}

bool uart_rx_ready(struct uart *u)
{
	return u->present && (line_status(u) & LSR_DATA_READY);
}

void uart_set_interrupts(const struct uart *u, bool tx)
{
	if (!u->present)
		return;
	outb(u->port + UART_MCR, MCR_DTR_RTS | MCR_OUT2);
	outb(u->port + UART_IER, IER_RX_DATA | (tx ? IER_TX_EMPTY : 0));
}

bool uart_tx_empty(struct uart *u)
{
	return u->present && (line_status(u) & LSR_THR_EMPTY);
}

void uart_tx_fill(const struct uart *u, const char *s, unsigned len)
{
	for (unsigned i = 0; i < len && i < UART_TX_FIFO; i++)
		outb(u->port + UART_THR, (uint8_t)s[i]);
}

unsigned uart_rx(struct uart *u, uint8_t *buf, unsigned cap, bool *overrun)
{
	unsigned n = 0;

	if (u->present) {
		while (n < cap && (line_status(u) & LSR_DATA_READY))
			buf[n++] = inb(u->port + UART_THR);
	}
	*overrun = u->overrun;
	u->overrun = false;
	return n;
}

void uart_write(struct uart *u, const char *s, unsigned long len)
{
	if (!u->present)
		return;
	for (unsigned long i = 0; i < len; i++) {
		if (s[i] == '\n')
			uart_putc(u, '\r');
		uart_putc(u, s[i]);
	}
}
