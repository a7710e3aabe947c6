/*
 * What guests see of CPUID: the host's answer, filtered. Plain C over
 * register values, unit-tested on the host.
 */
#ifndef VMM_CPUID_POLICY_H
#define VMM_CPUID_POLICY_H

#include <stdint.h>

struct cpuid_result {
	uint32_t eax, ebx, ecx, edx;
};

/*
 * host: what the CPU answered for (leaf, subleaf) (ignored for the
 * hypervisor leaves). Returns what the guest gets.
 */
struct cpuid_result cpuid_policy(uint32_t leaf, uint32_t subleaf, struct cpuid_result host);

/* Leaf 15H: the TSC and core crystal clock, which the policy leaves to the caller. */
#define CPUID_TSC_LEAF 0x15U
/* Its answer for a TSC of tsc_hz and a crystal (the local APIC's clock) of crystal_hz. */
struct cpuid_result cpuid_tsc_leaf(uint64_t tsc_hz, uint64_t crystal_hz);

#endif
