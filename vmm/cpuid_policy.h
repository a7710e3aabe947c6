/*
 * What guests see of CPUID: the host's answer, filtered. Plain C over
 * register values, unit-tested on the host.
 */
#ifndef VMM_CPUID_POLICY_H
#define VMM_CPUID_POLICY_H

#include <stdint.h>

#include "abi/hypercall.h"

struct cpuid_result {
	uint32_t eax, ebx, ecx, edx;
};

/*
 * host: what the CPU answered for (leaf, subleaf) (ignored for the
 * hypervisor leaves). Returns what the guest gets.
 */
struct cpuid_result cpuid_policy(uint32_t leaf, uint32_t subleaf, struct cpuid_result host);

/*
 * Where the policy's answer for a leaf may be kept, or -1. Kept are the
 * leaves whose answer ignores the subleaf and, once filtered, is the same
 * on every CPU of a server and at any time: no APIC ID (the policy masks
 * leaf 1's), no core type (leaf 1AH), nothing that follows CR4 or XCR0
 * (leaves 7 and 0DH; leaf 1's OSXSAVE is hidden here and set per vCPU).
 * Basic leaves 0-3, 5, 6, 0AH, 15H and 16H in slots 0-31, extended
 * 80000000H-80000008H in 32-63, the hypervisor's two in 64 and 65.
 */
#define CPUID_POLICY_SLOTS 66
#define CPUID_KEPT_BASIC 0x0060046fU    /* a bit per leaf 0-1FH */
#define CPUID_KEPT_EXTENDED 0x000001ffU /* a bit per leaf 80000000H-8000001FH */

static inline int cpuid_policy_slot(uint32_t leaf)
{
	if (leaf < 32)
		return (CPUID_KEPT_BASIC >> leaf & 1) ? (int)leaf : -1;
	if (leaf - 0x80000000U < 32)
		return (CPUID_KEPT_EXTENDED >> (leaf - 0x80000000U) & 1)
			       ? 32 + (int)(leaf - 0x80000000U) : -1;
	if (leaf - CPUID_HV_BASE < 2)
		return 64 + (int)(leaf - CPUID_HV_BASE);
	return -1;
}

/* Leaf 15H: the TSC and core crystal clock, which the policy leaves to the caller. */
#define CPUID_TSC_LEAF 0x15U
/* Its answer for a TSC of tsc_hz and a crystal (the local APIC's clock) of crystal_hz. */
struct cpuid_result cpuid_tsc_leaf(uint64_t tsc_hz, uint64_t crystal_hz);

#endif
