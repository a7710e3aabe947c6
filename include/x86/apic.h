/*
 * The host's local APIC (SDM Vol. 3A, chapter 10): IA32_APIC_BASE, the
 * registers the hypervisor touches, and one way to reach them whether the
 * firmware left the APIC in xAPIC mode (MMIO at the base) or in x2APIC
 * mode (MSR 0x800 + offset / 16, 10.12.1.2). apic_base is the value of
 * IA32_APIC_BASE, read once by the caller.
 */
#ifndef X86_APIC_H
#define X86_APIC_H

#include <stdbool.h>
#include <stdint.h>

#include "x86/cpu.h"
#include "x86/msr.h"

#define APIC_BASE_EXTD (1ULL << 10)   /* x2APIC mode */
#define APIC_BASE_ENABLE (1ULL << 11)
#define APIC_BASE_ADDRESS 0x000ffffffffff000ULL

/* Register offsets (table 10-1). */
#define APIC_REG_ID 0x020
#define APIC_REG_VERSION 0x030
#define APIC_REG_EOI 0x0b0
#define APIC_REG_SVR 0x0f0
#define APIC_REG_LVT_CMCI 0x2f0
#define APIC_REG_ICR_LOW 0x300
#define APIC_REG_ICR_HIGH 0x310
#define APIC_REG_LVT_TIMER 0x320
#define APIC_REG_LVT_THERMAL 0x330
#define APIC_REG_LVT_PERF 0x340
#define APIC_REG_LVT_LINT0 0x350
#define APIC_REG_LVT_LINT1 0x360
#define APIC_REG_LVT_ERROR 0x370

#define APIC_LVT_MASKED (1U << 16)
#define APIC_LVT_TSC_DEADLINE (2U << 17) /* timer mode 10b (10.5.1) */
#define APIC_SVR_ENABLE (1U << 8)

/* Interrupt command (10.6.1). */
#define APIC_ICR_DELIVERY_NMI (4U << 8)
#define APIC_ICR_DELIVERY_INIT (5U << 8)
#define APIC_ICR_PENDING (1U << 12)          /* xAPIC only */
#define APIC_ICR_LEVEL_ASSERT (1U << 14)
#define APIC_ICR_ALL_BUT_SELF (3U << 18)

static inline bool apic_x2(uint64_t apic_base)
{
	return apic_base & APIC_BASE_EXTD;
}

static inline uint32_t apic_read(uint64_t apic_base, unsigned reg)
{
	if (apic_x2(apic_base))
		return (uint32_t)rdmsr(MSR_IA32_X2APIC_FIRST + (reg >> 4));
	return *(volatile uint32_t *)(uintptr_t)((apic_base & APIC_BASE_ADDRESS) + reg);
}

static inline void apic_write(uint64_t apic_base, unsigned reg, uint32_t value)
{
	if (apic_x2(apic_base))
		wrmsr(MSR_IA32_X2APIC_FIRST + (reg >> 4), value);
	else
		*(volatile uint32_t *)(uintptr_t)((apic_base & APIC_BASE_ADDRESS) + reg) = value;
}

/* This CPU's APIC ID: 8 bits in xAPIC mode, 32 in x2APIC mode (10.12.5.1). */
static inline uint32_t apic_id(uint64_t apic_base)
{
	uint32_t id = apic_read(apic_base, APIC_REG_ID);
	return apic_x2(apic_base) ? id : id >> 24;
}

/*
 * An IPI: in x2APIC mode the ICR is one 64-bit MSR with the destination in
 * its high half; in xAPIC mode the high register is written first, as the
 * write of the low one sends (10.6.1, 10.12.9).
 */
static inline void apic_send_ipi(uint64_t apic_base, uint32_t destination, uint32_t icr_low)
{
	if (apic_x2(apic_base)) {
		wrmsr(MSR_IA32_X2APIC_FIRST + (APIC_REG_ICR_LOW >> 4),
		      (uint64_t)destination << 32 | icr_low);
		return;
	}
	apic_write(apic_base, APIC_REG_ICR_HIGH, destination << 24);
	apic_write(apic_base, APIC_REG_ICR_LOW, icr_low);
}

#endif
