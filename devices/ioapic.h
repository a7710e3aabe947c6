/*
 * Model of an I/O APIC (Intel 82093AA I/O APIC data sheet) in its PCH form:
 * version 0x20, 24 redirection entries, plus the EOI register at offset
 * 0x40 that version 0x20 added. Modelled: the indirect register window
 * (IOREGSEL/IOWIN), ID, version and arbitration registers, edge- and
 * level-triggered inputs with polarity, masking and Remote IRR, and EOI
 * both by register and by the local APIC's broadcast. The APIC bus is a
 * callback: delivery is immediate, so delivery status always reads idle.
 * Plain C, no hardware access.
 */
#ifndef DEVICES_IOAPIC_H
#define DEVICES_IOAPIC_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/devstate.h"

#define IOAPIC_DEFAULT_BASE 0xfec00000U
#define IOAPIC_MMIO_SIZE 0x1000 /* the page guests map; registers at 0x00, 0x10, 0x40 */
#define IOAPIC_PINS 24
#define IOAPIC_VERSION 0x00170020U /* last entry 23, version 0x20 */

#define IOAPIC_REGSEL 0x00
#define IOAPIC_IOWIN 0x10
#define IOAPIC_EOI 0x40

/* Redirection entry fields (82093AA section 3.2.4). */
#define IOAPIC_DM_FIXED 0
#define IOAPIC_DM_LOWEST 1
#define IOAPIC_DM_SMI 2
#define IOAPIC_DM_NMI 4
#define IOAPIC_DM_INIT 5
#define IOAPIC_DM_EXTINT 7
#define IOAPIC_REDIR_LOGICAL (1ULL << 11)
#define IOAPIC_REDIR_ACTIVE_LOW (1ULL << 13)
#define IOAPIC_REDIR_REMOTE_IRR (1ULL << 14)
#define IOAPIC_REDIR_LEVEL (1ULL << 15)
#define IOAPIC_REDIR_MASKED (1ULL << 16)

/*
 * An interrupt message on the APIC bus. The caller gives fixed and
 * lowest-priority ones to the local APIC (lapic_accept) when dest names
 * it, and handles NMI, SMI, INIT and ExtINT (the 8259's vector) itself.
 * Returns whether an APIC accepted it: a level-triggered fixed or
 * lowest-priority interrupt that was accepted sets Remote IRR.
 */
typedef bool ioapic_deliver_fn(void *ctx, uint8_t vector, bool level_triggered, uint8_t dest,
			       uint8_t dest_mode, uint8_t delivery_mode);

struct ioapic {
	uint8_t id;       /* 4 bits, ID register bits 27:24 */
	uint8_t regsel;   /* IOREGSEL */
	uint32_t lines;   /* electrical level of each input */
	uint64_t redir[IOAPIC_PINS];

	/* Wiring, set by the caller after ioapic_init; not device state. */
	ioapic_deliver_fn *deliver;
	void *ctx;
};

/* Reset state: every entry masked (82093AA 3.2.4), every line low. */
void ioapic_init(struct ioapic *io, uint8_t id);

/*
 * Device state (devstate.h): all but deliver and ctx (the APIC bus, wiring).
 * Its reset keeps the ID the platform gave.
 */
extern const struct devstate_desc ioapic_state_desc;

/*
 * Offsets from the base. Only 4-byte accesses at IOREGSEL, IOWIN and EOI
 * reach a register; others read 0 and write nothing, as do IOWIN accesses
 * while IOREGSEL selects no register.
 */
uint32_t ioapic_mmio_read(const struct ioapic *io, uint64_t offset, unsigned size);
void ioapic_mmio_write(struct ioapic *io, uint64_t offset, unsigned size, uint32_t value);

/*
 * A device drives input pin (0-23) to an electrical level; an entry with
 * polarity active-low sees it inverted. Lines start low, so a board whose
 * line idles high (a pulled-up PCI INTx wire) drives it high after init.
 * Edge-triggered: an assertion while unmasked is delivered; one while
 * masked is lost (82093AA 3.2.4, interrupt mask). Level-triggered: an
 * asserted, unmasked line is delivered unless Remote IRR is set; after the
 * EOI clears Remote IRR it is delivered again if still asserted.
 */
void ioapic_set_irq(struct ioapic *io, unsigned pin, bool level);

/* An EOI for vector from the local APIC: clears Remote IRR where it matches. */
void ioapic_eoi(struct ioapic *io, uint8_t vector);

#endif
