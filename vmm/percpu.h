/*
 * What each physical CPU keeps for itself. The hypervisor runs on the boot
 * CPU only, but everything that is per CPU lives here and is reached
 * through this_cpu(), so a second CPU is one more entry, its own stack and
 * a start-up path, not a rewrite.
 *
 * this_cpu() reads the entry's own address at GS:0. The GS base is the
 * hypervisor's on every path into it: set at the hand-over, and loaded
 * from the VMCS host-state area on every VM exit (SDM 27.5.2), which the
 * backend points at this_cpu(). The guest's GS base never reaches the
 * hypervisor's code: it is loaded and saved by VM entry and exit.
 */
#ifndef VMM_PERCPU_H
#define VMM_PERCPU_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/spinlock.h" /* VMM_CPUS */

struct vcpu;

struct percpu {
	struct percpu *self; /* first: this_cpu() loads it from GS:0 */
	unsigned index;      /* 0: the boot CPU */
	/* The vCPU whose x87/SSE and debug registers this CPU holds (vmm/sched.c). */
	struct vcpu *current;
	/* The hypervisor stack this CPU runs on, VM exits and the backtrace included. */
	uint64_t stack_low, stack_high;
	/* The backend's own per-CPU page (for VT-x, the VMXON region: SDM 24.11.5). */
	uint64_t virt_region;
};

static inline struct percpu *this_cpu(void)
{
	struct percpu *cpu;
	__asm__("movq %%gs:0, %0" : "=r"(cpu));
	return cpu;
}

/*
 * Makes cpus[index] this CPU's: records its stack and points the GS base at
 * it. Called first thing on the hypervisor's own stack, once the GS
 * selector is loaded for good (loading it sets the base).
 */
void percpu_start(unsigned index, uint64_t stack_low, uint64_t stack_high);

/* False until percpu_start ran on this CPU (the firmware's GS base is not ours). */
bool percpu_started(void);

#endif
