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

#endif
