#include "devices/vuart.h"

#include <string.h>

/* Register offsets and bits (PC16550D data sheet, register summary). */
enum { REG_DATA, REG_IER, REG_IIR_FCR, REG_LCR, REG_MCR, REG_LSR, REG_MSR, REG_SCR };

#define IER_RDA 0x01
#define IER_THRE 0x02
#define IER_RLS 0x04
#define IER_MASK 0x0f
#define IIR_NONE 0x01
#define IIR_RLS 0x06
#define IIR_RDA 0x04
#define IIR_THRE 0x02
#define IIR_FIFO 0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

void vuart_init(struct vuart *u, void (*tx)(void *ctx, uint8_t byte), void *ctx)
{
	memset(u, 0, sizeof(*u));
	u->tx = tx;
	u->tx_ctx = ctx;
}

static void rx_push(struct vuart *u, uint8_t byte)
{
	if (u->rx_count == VUART_FIFO_SIZE) {
		u->overrun = true;
		return;
	}
	u->rx[(u->rx_head + u->rx_count) % VUART_FIFO_SIZE] = byte;
	u->rx_count++;
}

static uint8_t rx_pop(struct vuart *u)
{
	if (!u->rx_count)
		return 0;
	uint8_t byte = u->rx[u->rx_head];
	u->rx_head = (u->rx_head + 1) % VUART_FIFO_SIZE;
	u->rx_count--;
	return byte;
}

/* The highest-priority pending interrupt, as IIR reports it. */
static uint8_t pending_interrupt(const struct vuart *u)
{
	if ((u->ier & IER_RLS) && u->overrun)
		return IIR_RLS;
	if ((u->ier & IER_RDA) && u->rx_count)
		return IIR_RDA;
	if ((u->ier & IER_THRE) && u->thre_pending)
		return IIR_THRE;
	return IIR_NONE;
}

uint8_t vuart_read(struct vuart *u, unsigned offset)
{
	switch (offset & 7) {
	case REG_DATA:
		return (u->lcr & LCR_DLAB) ? u->dll : rx_pop(u);
	case REG_IER:
		return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
	case REG_IIR_FCR: {
		uint8_t iir = pending_interrupt(u);
		/* Reading IIR acknowledges a THR-empty interrupt it reports. */
		if (iir == IIR_THRE)
			u->thre_pending = false;
		return iir | (u->fifo_enabled ? IIR_FIFO : 0);
	}
	case REG_LCR:
		return u->lcr;
	case REG_MCR:
		return u->mcr;
	case REG_LSR: {
		uint8_t lsr = LSR_THRE | LSR_TEMT | (u->rx_count ? LSR_DR : 0) |
			      (u->overrun ? LSR_OE : 0);
		u->overrun = false; /* reading LSR clears the error bits */
		return lsr;
	}
	case REG_MSR:
		if (u->mcr & MCR_LOOP) {
			/* Loopback wires the modem outputs to the inputs. */
			return (uint8_t)(((u->mcr & MCR_DTR) ? MSR_DSR : 0) |
					 ((u->mcr & MCR_RTS) ? MSR_CTS : 0) |
					 ((u->mcr & MCR_OUT1) ? MSR_RI : 0) |
					 ((u->mcr & MCR_OUT2) ? MSR_DCD : 0));
		}
		/* A terminal is always attached. */
		return MSR_DCD | MSR_DSR | MSR_CTS;
	default:
		return u->scr;
	}
}

void vuart_write(struct vuart *u, unsigned offset, uint8_t value)
{
	switch (offset & 7) {
	case REG_DATA:
		if (u->lcr & LCR_DLAB) {
			u->dll = value;
			break;
		}
		if (u->mcr & MCR_LOOP)
			rx_push(u, value);
		else if (u->tx)
			u->tx(u->tx_ctx, value);
		/* Sent at once: THR is empty again. */
		u->thre_pending = true;
		break;
	case REG_IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = value;
			break;
		}
		/* Enabling the THR-empty interrupt raises it when THR is empty. */
		if ((value & IER_THRE) && !(u->ier & IER_THRE))
			u->thre_pending = true;
		u->ier = value & IER_MASK;
		break;
	case REG_IIR_FCR:
		u->fifo_enabled = value & FCR_ENABLE;
		if (value & FCR_CLEAR_RX)
			u->rx_head = u->rx_count = 0;
		break;
	case REG_LCR:
		u->lcr = value;
		break;
	case REG_MCR:
		u->mcr = value & MCR_MASK;
		break;
	case REG_LSR:
	case REG_MSR:
		break; /* read-only */
	default:
		u->scr = value;
		break;
	}
}

unsigned vuart_feed(struct vuart *u, const uint8_t *data, unsigned len)
{
	unsigned n = 0;

	/* Input waits in the host's queue rather than overrunning the FIFO. */
	while (n < len && u->rx_count < VUART_FIFO_SIZE)
		rx_push(u, data[n++]);
	return n;
}

bool vuart_irq_line(const struct vuart *u)
{
	return (u->mcr & MCR_OUT2) && pending_interrupt(u) != IIR_NONE;
}

static void vuart_state_reset(void *state)
{
	struct vuart *u = state;

	vuart_init(u, u->tx, u->tx_ctx);
}

/* rx_head indexes rx[]; rx_push relies on rx_count never passing the FIFO's size. */
static const struct devstate_field vuart_fields[] = {
	DEVSTATE_FIELD(struct vuart, ier, DEVSTATE_U8, 0, IER_MASK, 1),
	DEVSTATE_FIELD(struct vuart, lcr, DEVSTATE_U8, 0, 0xff, 1),
	DEVSTATE_FIELD(struct vuart, mcr, DEVSTATE_U8, 0, MCR_MASK, 1),
	DEVSTATE_FIELD(struct vuart, scr, DEVSTATE_U8, 0, 0xff, 1),
	DEVSTATE_FIELD(struct vuart, dll, DEVSTATE_U8, 0, 0xff, 1),
	DEVSTATE_FIELD(struct vuart, dlm, DEVSTATE_U8, 0, 0xff, 1),
	DEVSTATE_FIELD(struct vuart, fifo_enabled, DEVSTATE_BOOL, 0, 1, 1),
	DEVSTATE_FIELD(struct vuart, thre_pending, DEVSTATE_BOOL, 0, 1, 1),
	DEVSTATE_ARRAY(struct vuart, rx, DEVSTATE_U8, 0, 0xff, 1),
	DEVSTATE_FIELD(struct vuart, rx_head, DEVSTATE_U32, 0, VUART_FIFO_SIZE - 1, 1),
	DEVSTATE_FIELD(struct vuart, rx_count, DEVSTATE_U32, 0, VUART_FIFO_SIZE, 1),
	DEVSTATE_FIELD(struct vuart, overrun, DEVSTATE_BOOL, 0, 1, 1),
};

const struct devstate_desc vuart_state_desc =
	DEVSTATE_DESC(struct vuart, "vuart", 1, vuart_fields, vuart_state_reset, NULL);
