/*
 * The host's I/O APICs (Intel 82093AA datasheet, 3.0): registers reached
 * through an index (IOREGSEL) and a window (IOWIN) at the MMIO base the
 * ACPI MADT gives; each redirection entry is two 32-bit registers.
 */
#ifndef X86_IOAPIC_H
#define X86_IOAPIC_H

#include <stdint.h>

#define IOAPIC_IOREGSEL 0x00
#define IOAPIC_IOWIN 0x10
#define IOAPIC_REG_VERSION 0x01
#define IOAPIC_REG_REDTBL 0x10 /* entry i: low at 0x10 + 2i, high (destination) at 0x11 + 2i */

/* Redirection entry bits (datasheet 3.2.4). */
#define IOAPIC_ACTIVE_LOW (1U << 13)
#define IOAPIC_LEVEL (1U << 15)
#define IOAPIC_MASKED (1U << 16)
#define IOAPIC_DEST_SHIFT 24 /* in the high register: physical APIC ID */

static inline uint32_t ioapic_read(uint64_t base, unsigned reg)
{
	*(volatile uint32_t *)(uintptr_t)(base + IOAPIC_IOREGSEL) = reg;
	return *(volatile uint32_t *)(uintptr_t)(base + IOAPIC_IOWIN);
}

static inline void ioapic_write(uint64_t base, unsigned reg, uint32_t value)
{
	*(volatile uint32_t *)(uintptr_t)(base + IOAPIC_IOREGSEL) = reg;
	*(volatile uint32_t *)(uintptr_t)(base + IOAPIC_IOWIN) = value;
}

/* How many redirection entries it has: the version register's bits 23:16, plus one. */
static inline unsigned ioapic_entries(uint64_t base)
{
	return ((ioapic_read(base, IOAPIC_REG_VERSION) >> 16) & 0xff) + 1;
}

#endif
