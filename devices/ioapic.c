#include "devices/ioapic.h"

#include <string.h>

/* Indirect registers (82093AA 3.2). */
#define REG_ID 0x00
#define REG_VERSION 0x01
#define REG_ARBITRATION 0x02
#define REG_REDIR 0x10 /* two per entry, low half first */

#define REDIR_VECTOR 0xffULL
#define REDIR_DM_SHIFT 8
/* Bits the guest writes: vector, delivery and destination mode, polarity, trigger, mask, destination. */
#define REDIR_WRITABLE_LOW 0x1afffU
#define REDIR_WRITABLE_HIGH 0xff000000U

void ioapic_init(struct ioapic *io, uint8_t id)
{
	memset(io, 0, sizeof(*io));
	io->id = id & 0xf;
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
		io->redir[pin] = IOAPIC_REDIR_MASKED;
}

static uint8_t delivery_mode(uint64_t entry)
{
	return (entry >> REDIR_DM_SHIFT) & 7;
}

/*
 * Only fixed and lowest-priority interrupts end with an EOI; the data
 * sheet requires edge triggering for the other modes, so they are edge
 * whatever the trigger bit says, and never hold Remote IRR.
 */
static bool eoi_tracked(uint64_t entry)
{
	uint8_t mode = delivery_mode(entry);

	return (entry & IOAPIC_REDIR_LEVEL) && (mode == IOAPIC_DM_FIXED || mode == IOAPIC_DM_LOWEST);
}

static bool asserted(const struct ioapic *io, unsigned pin)
{
	bool high = io->lines >> pin & 1;

	return high != !!(io->redir[pin] & IOAPIC_REDIR_ACTIVE_LOW);
}

static void send(struct ioapic *io, unsigned pin)
{
	uint64_t e = io->redir[pin];
	bool level = eoi_tracked(e);
	bool accepted = io->deliver &&
		io->deliver(io->ctx, (uint8_t)(e & REDIR_VECTOR), level, (uint8_t)(e >> 56),
			    (e & IOAPIC_REDIR_LOGICAL) ? 1 : 0, delivery_mode(e));

	/* Remote IRR: the local APIC owes this interrupt an EOI. */
	if (level && accepted)
		io->redir[pin] |= IOAPIC_REDIR_REMOTE_IRR;
}

/* A level-triggered input is delivered whenever it is asserted and nothing is outstanding. */
static void service_level(struct ioapic *io, unsigned pin)
{
	uint64_t e = io->redir[pin];

	if (eoi_tracked(e) && !(e & (IOAPIC_REDIR_MASKED | IOAPIC_REDIR_REMOTE_IRR)) &&
	    asserted(io, pin))
		send(io, pin);
}

void ioapic_set_irq(struct ioapic *io, unsigned pin, bool level)
{
	if (pin >= IOAPIC_PINS)
		return;
	bool was = asserted(io, pin);
	io->lines = level ? io->lines | 1U << pin : io->lines & ~(1U << pin);
	if (eoi_tracked(io->redir[pin]))
		service_level(io, pin);
	else if (!was && asserted(io, pin) && !(io->redir[pin] & IOAPIC_REDIR_MASKED))
		send(io, pin);
}

void ioapic_eoi(struct ioapic *io, uint8_t vector)
{
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		uint64_t e = io->redir[pin];
		if ((e & IOAPIC_REDIR_REMOTE_IRR) && (e & REDIR_VECTOR) == vector) {
			io->redir[pin] = e & ~IOAPIC_REDIR_REMOTE_IRR;
			service_level(io, pin);
		}
	}
}

static uint32_t read_register(const struct ioapic *io, unsigned reg)
{
	switch (reg) {
	case REG_ID:
		return (uint32_t)io->id << 24;
	case REG_VERSION:
		return IOAPIC_VERSION;
	case REG_ARBITRATION:
		/* The arbitration ID is loaded from the APIC ID (82093AA 3.2.3). */
		return (uint32_t)io->id << 24;
	}
	if (reg >= REG_REDIR && reg < REG_REDIR + 2 * IOAPIC_PINS) {
		uint64_t e = io->redir[(reg - REG_REDIR) / 2];
		return (uint32_t)(reg & 1 ? e >> 32 : e);
	}
	return 0;
}

static void write_redirection(struct ioapic *io, unsigned pin, bool high, uint32_t value)
{
	uint64_t e = io->redir[pin];

	if (high)
		e = (uint32_t)e | (uint64_t)(value & REDIR_WRITABLE_HIGH) << 32;
	else
		e = (e & (0xffffffff00000000ULL | IOAPIC_REDIR_REMOTE_IRR)) | (value & REDIR_WRITABLE_LOW);
	/*
	 * Remote IRR means nothing for an entry that no EOI ends; clearing it
	 * is also how OSes end a stuck level interrupt on I/O APICs without an
	 * EOI register (Linux switches the entry to edge and back).
	 */
	if (!eoi_tracked(e))
		e &= ~IOAPIC_REDIR_REMOTE_IRR;
	io->redir[pin] = e;
	/* Unmasking, or a polarity or trigger change, may find the line asserted. */
	service_level(io, pin);
}

static void write_register(struct ioapic *io, unsigned reg, uint32_t value)
{
	if (reg == REG_ID)
		io->id = (value >> 24) & 0xf;
	else if (reg >= REG_REDIR && reg < REG_REDIR + 2 * IOAPIC_PINS)
		write_redirection(io, (reg - REG_REDIR) / 2, reg & 1, value);
	/* Version and arbitration are read-only; other indexes select nothing. */
}

uint32_t ioapic_mmio_read(const struct ioapic *io, uint64_t offset, unsigned size)
{
	if (size != 4)
		return 0;
	switch (offset) {
	case IOAPIC_REGSEL:
		return io->regsel;
	case IOAPIC_IOWIN:
		return read_register(io, io->regsel);
	default:
		return 0; /* the EOI register is write-only */
	}
}

void ioapic_mmio_write(struct ioapic *io, uint64_t offset, unsigned size, uint32_t value)
{
	if (size != 4)
		return;
	switch (offset) {
	case IOAPIC_REGSEL:
		io->regsel = (uint8_t)value; /* bits 7:0 (82093AA 3.1.1) */
		break;
	case IOAPIC_IOWIN:
		write_register(io, io->regsel, value);
		break;
	case IOAPIC_EOI:
		ioapic_eoi(io, (uint8_t)value);
		break;
	}
}

static void ioapic_state_reset(void *state)
{
	struct ioapic *io = state;
	ioapic_deliver_fn *deliver = io->deliver;
	void *ctx = io->ctx;

	ioapic_init(io, io->id);
	io->deliver = deliver;
	io->ctx = ctx;
}

/*
 * An entry holds only what write_redirection lets a guest write, and
 * Remote IRR only where an EOI will clear it: one set on any other entry
 * would block its line for good.
 */
static bool ioapic_state_check(const void *state, const void *live, const char *device,
                               struct devstate_error *err)
{
	(void)live;
	const struct ioapic *io = state;
	const uint64_t allowed = (uint64_t)REDIR_WRITABLE_HIGH << 32 | REDIR_WRITABLE_LOW |
				 IOAPIC_REDIR_REMOTE_IRR;

	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		uint64_t e = io->redir[pin];
		if (e & ~allowed)
			return devstate_refuse(err, device, "redir[]", pin,
					       "= 0x%llx sets reserved bits 0x%llx",
					       (unsigned long long)e, (unsigned long long)(e & ~allowed));
		if ((e & IOAPIC_REDIR_REMOTE_IRR) && !eoi_tracked(e))
			return devstate_refuse(err, device, "redir[]", pin,
					       "= 0x%llx has Remote IRR on an entry no EOI ends",
					       (unsigned long long)e);
	}
	return true;
}

static const struct devstate_field ioapic_fields[] = {
	DEVSTATE_FIELD(struct ioapic, id, DEVSTATE_U8, 0, 0xf, 1),
	DEVSTATE_FIELD(struct ioapic, regsel, DEVSTATE_U8, 0, 0xff, 1),
	DEVSTATE_FIELD(struct ioapic, lines, DEVSTATE_U32, 0, (1U << IOAPIC_PINS) - 1, 1),
	DEVSTATE_ARRAY(struct ioapic, redir, DEVSTATE_U64, 0, UINT64_MAX, 1),
};

const struct devstate_desc ioapic_state_desc = DEVSTATE_DESC(
	struct ioapic, "ioapic", 1, ioapic_fields, ioapic_state_reset, ioapic_state_check);
