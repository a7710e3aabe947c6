/*
 * Model of a 16550A UART (National Semiconductor PC16550D data sheet), as
 * a guest sees it at 0x3f8 (COM1). Transmission is instantaneous: each
 * byte written to THR goes to the sink at once, so THR is always empty.
 * The receive FIFO (16 bytes) is filled by vuart_feed() from the host
 * side. The interrupt line follows the IER/IIR rules, gated by MCR.OUT2
 * as on PC hardware. Loopback (MCR bit 4) is modelled because drivers
 * (Linux 8250) probe the UART with it. Plain C, no hardware access.
 */
#ifndef DEVICES_VUART_H
#define DEVICES_VUART_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/devstate.h"

#define VUART_PORTS 8
#define VUART_FIFO_SIZE 16

struct vuart {
	uint8_t ier, lcr, mcr, scr, dll, dlm;
	bool fifo_enabled;
	bool thre_pending; /* THR-empty interrupt raised and not yet acknowledged */
	uint8_t rx[VUART_FIFO_SIZE];
	unsigned rx_head, rx_count;
	bool overrun;
	void (*tx)(void *ctx, uint8_t byte);
	void *tx_ctx;
};

/* The reset state of the data sheet: registers cleared, interrupts off. */
void vuart_init(struct vuart *u, void (*tx)(void *ctx, uint8_t byte), void *ctx);

/* Device state (devstate.h): all but tx and tx_ctx, where the bytes go (wiring). */
extern const struct devstate_desc vuart_state_desc;

/* A guest access to register `offset` (0-7) of the UART. */
uint8_t vuart_read(struct vuart *u, unsigned offset);
void vuart_write(struct vuart *u, unsigned offset, uint8_t value);

/* Host input; returns how many bytes fitted in the receive FIFO. */
unsigned vuart_feed(struct vuart *u, const uint8_t *data, unsigned len);

/* Level of the UART's interrupt request line (IRQ 4 for COM1). */
bool vuart_irq_line(const struct vuart *u);

#endif
