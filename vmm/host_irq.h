/*
 * The host's own interrupts, which exist only so that an idle CPU can halt
 * (issue 17): the local APIC's TSC-deadline timer and the console UART's
 * receive interrupt, both delivered to this CPU. Everything else stays
 * masked (boot/quiesce.c). The hypervisor runs with interrupts disabled;
 * they are enabled only across the HLT in host_idle(), and an interrupt
 * that arrives while a guest runs is an external-interrupt exit whose
 * vector the exit acknowledged.
 */
#ifndef VMM_HOST_IRQ_H
#define VMM_HOST_IRQ_H

#include <stdbool.h>
#include <stdint.h>

#include "boot/acpi.h"

#define HOST_VECTOR_TIMER 0xf0
#define HOST_VECTOR_UART 0xf1
#define HOST_VECTOR_SPURIOUS 0xff

/*
 * Enables the local APIC with its spurious vector, the TSC-deadline timer
 * where CPUID has it, and the console UART's receive interrupt through the
 * I/O APIC that serves its ISA IRQ (the MADT's overrides applied).
 */
void host_irq_init(const struct acpi_info *acpi);

/*
 * A host interrupt taken in root mode or acknowledged by a VM exit:
 * counted and its EOI given (none for the spurious vector, SDM 10.9).
 * False for a vector that is not ours (it gets its EOI all the same).
 */
bool host_irq_taken(unsigned vector);

/*
 * Halts until wake_tsc (0: no timer), the line receives, the UART's
 * transmitter has room (with tx_pending: output waits to be sent) or any
 * other host interrupt, and at most HOST_IDLE_MAX_MS, so that a wake-up
 * source the scheduler does not know of is polled at least that often.
 * False, without halting, when it cannot be woken in time: no TSC-deadline
 * timer, or the line must wake it and the UART cannot interrupt, or a
 * received byte waits.
 */
#define HOST_IDLE_MAX_MS 10
bool host_idle(uint64_t wake_tsc, bool line_wakes, bool tx_pending);

struct host_idle_stats {
	uint64_t halts, halted_tsc;
	uint64_t timer_wakeups, uart_wakeups; /* the UART's: a received byte or room to send */
};
void host_idle_stats(struct host_idle_stats *out);

#endif
