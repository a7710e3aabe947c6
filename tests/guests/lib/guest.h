/*
 * Runtime of the 64-bit test guests: output on the test console port,
 * PASS/FAIL lines, exits through the debug-exit port, and instructions
 * that may fault wrapped so the fault is caught instead of killing the
 * guest. The hypervisor starts these guests per vmm/guest_boot.h (long
 * mode, RSI = command line, RDI = RAM size).
 */
#ifndef GUEST_H
#define GUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "abi/hypercall.h"
#include "x86/cpu.h"

#define TEST_CONSOLE_PORT 0xe9
#define TEST_EXIT_PORT 0xf4
#define NO_FAULT 0xff

/*
 * The local APIC's xAPIC registers at the default base, as 32-bit words
 * (SDM table 11-1); the test guests map 4 GiB 1:1.
 */
#define LAPIC ((volatile uint32_t *)0xfee00000UL)
#define LAPIC_VERSION (0x30 / 4)
#define LAPIC_TPR (0x80 / 4)
#define LAPIC_EOI (0xb0 / 4)
#define LAPIC_SVR (0xf0 / 4)
#define LAPIC_ICR_LOW (0x300 / 4)
#define LAPIC_ICR_HIGH (0x310 / 4)
#define LAPIC_LVT_TIMER (0x320 / 4)
#define LAPIC_TIMER_INITIAL (0x380 / 4)
#define LAPIC_TIMER_DIVIDE (0x3e0 / 4)
#define LAPIC_SVR_ENABLE 0x100

extern const char *guest_cmdline; /* "" when none */
extern uint64_t guest_ram_bytes;

#define COM1 0x3f8
#define COM1_LSR 5
#define LSR_DATA_READY 0x01
#define LSR_THR_EMPTY 0x20

void put(const char *s);
/* Polled output on the virtual 16550, the way a kernel's early console does it. */
void com1_puts(const char *s);
/* v in decimal, in buf; returns where the digits start. */
const char *u64_decimal(uint64_t v, char buf[21]);
void put_u64(uint64_t v);
void put_hex(uint64_t v);
/* "PASS name" or "FAIL name"; returns ok. Any FAIL makes the exit status 1. */
bool check(bool ok, const char *name);
__attribute__((noreturn)) void guest_exit(void);
__attribute__((noreturn)) void ram_too_small(void);

static inline long vmcall(uint64_t nr, uint64_t a, uint64_t b, uint64_t c)
{
	long ret;
	__asm__ volatile("vmcall" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
	return ret;
}

/* These return the vector of the fault they caught, or NO_FAULT. */
unsigned rdmsr_safe(uint32_t msr, uint64_t *value);
unsigned wrmsr_safe(uint32_t msr, uint64_t value);
unsigned vmxon_safe(uint64_t region);
unsigned rdpmc_safe(uint32_t counter);
unsigned write_cr0_safe(uint64_t value);
unsigned write_cr4_safe(uint64_t value);
unsigned write32_safe(volatile uint32_t *address, uint32_t value);
unsigned xsetbv_safe(uint32_t index, uint64_t value);
/* The RIP and RFLAGS images the last exception a *_safe wrapper caught pushed. */
extern uint64_t fault_rip, fault_rflags;
unsigned monitor_safe(const void *address);
unsigned mwait_safe(void);

bool streq(const char *a, const char *b);

/* The TSC rate the hypervisor reports in CPUID leaf 15H (its own clock), in Hz. */
uint64_t tsc_hz(void);

/*
 * The vector registers beyond SSE, for checks that a guest's state is its
 * own. xstate_enable sets CR4.OSXSAVE and XCR0 to every component CPUID
 * offers of x87, SSE, AVX and AVX-512; it returns that XCR0 (0: no XSAVE).
 * vector_fill loads YMM0-15 (with AVX), or ZMM0-31 and k0-7 (with
 * AVX-512), with values made from seed; vector_intact says whether they
 * still hold them; vector_store copies them out (YMMi to regs[i][0..3])
 * and returns how many there are (0 without AVX). The runtime's own code never touches them
 * (-mgeneral-regs-only).
 */
#define XCR0_AVX (1ULL << 2)
#define XCR0_AVX512 (7ULL << 5)
uint64_t xstate_enable(void);
void vector_fill(uint64_t xcr0, uint64_t seed);
bool vector_intact(uint64_t xcr0, uint64_t seed);
unsigned vector_store(uint64_t xcr0, uint64_t regs[32][8], uint16_t masks[8]);

/*
 * One HLT until the hypervisor's timer fires ticks TSC ticks from now:
 * it runs a scheduler pass meanwhile. Needs an upcall vector and its
 * handler (HC_SET_UPCALL_VECTOR, set_irq_handler).
 */
void guest_nap(uint64_t ticks);

/* One interrupt handler, for the hypervisor's upcall vector. */
void set_irq_handler(uint8_t vector, void (*handler)(void));

#endif
