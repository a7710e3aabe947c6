/* Polled driver for the host's 16550-compatible serial port (the console). */
#ifndef VMM_UART16550_H
#define VMM_UART16550_H

#include <stdbool.h>
#include <stdint.h>

struct uart {
	uint16_t port;
	bool present;
};

/* Programs 8N1 at baud with FIFOs on and interrupts off. */
void uart_init(struct uart *u, uint16_t port, uint32_t baud);
void uart_write(const struct uart *u, const char *s, unsigned long len);

#endif
