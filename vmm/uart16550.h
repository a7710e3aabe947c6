/*
 * Driver for the host's 16550-compatible serial port (the console): polled,
 * with the receive interrupt only to wake an idle CPU (vmm/host_irq.c).
 */
#ifndef VMM_UART16550_H
#define VMM_UART16550_H

#include <stdbool.h>
#include <stdint.h>

struct uart {
	uint16_t port;
	bool present;
	bool overrun; /* LSR.OE seen since uart_rx() last reported it */
};

#define UART_TX_FIFO 16

/* Programs 8N1 at baud with FIFOs on and interrupts off. */
void uart_init(struct uart *u, uint16_t port, uint32_t baud);
/* Writes every byte, waiting for the transmitter ("\n" becomes "\r\n"). */
void uart_write(struct uart *u, const char *s, unsigned long len);
/* True when the transmit FIFO is empty: UART_TX_FIFO bytes may go without waiting. */
bool uart_tx_empty(struct uart *u);
/* Puts raw bytes (at most UART_TX_FIFO) into an empty transmit FIFO. */
void uart_tx_fill(const struct uart *u, const char *s, unsigned len);
/*
 * Takes up to cap received bytes without waiting. *overrun is set when the
 * UART lost bytes since the last call (LSR.OE: its receive FIFO was full).
 */
unsigned uart_rx(struct uart *u, uint8_t *buf, unsigned cap, bool *overrun);
/* True when a received byte waits (LSR.DR). */
bool uart_rx_ready(struct uart *u);
/*
 * Raises the UART's interrupt line while a received byte waits (IER.ERBFI),
 * and with tx also once the transmitter has room (IER.ETBEI), and connects
 * it to the board (MCR.OUT2, which PC serial ports gate their IRQ with).
 */
void uart_set_interrupts(const struct uart *u, bool tx);

#endif
