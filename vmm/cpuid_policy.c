#include "vmm/cpuid_policy.h"

#include "abi/hypercall.h"
#include "vmm/speculation.h"
#include "x86/cpu.h"

#include <string.h>

/* CPUID.1 feature bits (SDM Vol. 2A, CPUID, tables 3-10 and 3-11). */
#define C1_ECX_MONITOR (1U << 3)
#define C1_ECX_DS_CPL (1U << 4)
#define C1_ECX_VMX (1U << 5)
#define C1_ECX_SMX (1U << 6)
#define C1_ECX_EST (1U << 7)
#define C1_ECX_TM2 (1U << 8)
#define C1_ECX_FMA (1U << 12)
#define C1_ECX_PDCM (1U << 15)
#define C1_ECX_X2APIC (1U << 21)
#define C1_ECX_TSC_DEADLINE (1U << 24)
#define C1_ECX_XSAVE (1U << 26)
#define C1_ECX_OSXSAVE (1U << 27)
#define C1_ECX_AVX (1U << 28)
#define C1_ECX_F16C (1U << 29)
#define C1_ECX_HYPERVISOR (1U << 31)
#define C1_EDX_MCE (1U << 7)
#define C1_EDX_MTRR (1U << 12)
#define C1_EDX_MCA (1U << 14)
#define C1_EDX_DS (1U << 21)
#define C1_EDX_ACPI (1U << 22)
#define C1_EDX_HTT (1U << 28)
#define C1_EDX_TM (1U << 29)
#define C1_EDX_PBE (1U << 31)

/*
 * Leaf 7 subleaf 0 EBX: features that need no hypervisor support and no
 * XSAVE state (FSGSBASE, BMI1, SMEP, BMI2, ERMS, ADX, SMAP, CLFLUSHOPT),
 * and IA32_TSC_ADJUST, which vmm/vcpu.c keeps per vCPU.
 */
#define C7_EBX_TSC_ADJUST (1U << 1)
#define C7_EBX_ALLOWED ((1U << 0) | C7_EBX_TSC_ADJUST | (1U << 3) | (1U << 7) | (1U << 8) | \
			(1U << 9) | (1U << 19) | (1U << 20) | (1U << 23))

#define HOST_CPU_FEATURES_HIDDEN_ECX                                                   \
	(C1_ECX_MONITOR | C1_ECX_DS_CPL | C1_ECX_VMX | C1_ECX_SMX | C1_ECX_EST |        \
	 C1_ECX_TM2 | C1_ECX_PDCM | C1_ECX_X2APIC | C1_ECX_XSAVE | C1_ECX_OSXSAVE | C1_ECX_AVX | \
	 C1_ECX_FMA | C1_ECX_F16C)
#define HOST_CPU_FEATURES_HIDDEN_EDX                                              \
	(C1_EDX_MCE | C1_EDX_MTRR | C1_EDX_MCA | C1_EDX_DS | C1_EDX_ACPI | C1_EDX_HTT | \
	 C1_EDX_TM | C1_EDX_PBE)

/*
 * Leaf 7 subleaf 0. Out of line: inlined, the compiler computes its masks
 * ahead of the switch, on the path of every leaf (eleven instructions on
 * each CPUID exit, cpuid_exit_root_instr).
 */
__attribute__((noinline)) static struct cpuid_result structured_features(struct cpuid_result host)
{
	host.ebx &= C7_EBX_ALLOWED;
	/* RDPID reads IA32_TSC_AUX; vcpu_cpuid() hides it as it hides RDTSCP. */
	host.ecx &= CPUID_07_ECX_RDPID;
	/* The speculation controls guests defend themselves with (vmm/speculation.h). */
	host.edx = speculation_guest_cpuid7_edx(host.edx);
	return host;
}

struct cpuid_result cpuid_policy(uint32_t leaf, uint32_t subleaf, struct cpuid_result host)
{
	struct cpuid_result zero = { 0 };

	switch (leaf) {
	case 1:
		/*
		 * VMX/SMX: no nested virtualization. XSAVE and what needs its
		 * state (AVX, FMA, F16C; AVX2 and AVX-512 in leaf 7; leaf 0DH):
		 * per host and vCPU, vmm/xstate.c adds them. x2APIC is the
		 * virtual local APIC's, whatever the host has (devices/lapic.h;
		 * Linux takes it only with interrupt remapping or under a
		 * hypervisor it knows, and stays in xAPIC mode here). MONITOR,
		 * thermal and debug-store features: not emulated. MCE/MCA and MTRRs: their
		 * MSR banks are not emulated and a guest that sees the bits
		 * reads them without a fault handler (Linux panics). The TSC
		 * deadline timer is the virtual local APIC's (devices/lapic.c).
		 * EBX[31:24] is the initial APIC ID and [23:16] the logical CPU
		 * count: one vCPU with APIC ID 0.
		 */
		host.ecx = (host.ecx & ~HOST_CPU_FEATURES_HIDDEN_ECX) | C1_ECX_HYPERVISOR |
			   C1_ECX_X2APIC;
		host.edx &= ~HOST_CPU_FEATURES_HIDDEN_EDX;
		host.ebx = (host.ebx & 0x0000ffffU) | (1U << 16);
		return host;
	case 0:
		/* Leaf 15H exists for every guest (cpuid_tsc_leaf), whatever the host's range. */
		if (host.eax < CPUID_TSC_LEAF)
			host.eax = CPUID_TSC_LEAF;
		return host;
	case CPUID_TSC_LEAF:
		/* The caller fills it from the hypervisor's TSC rate (cpuid_tsc_leaf). */
		return zero;
	case 0x16: /* processor frequencies: meaningless under a hypervisor */
	case 6:  /* thermal and power management */
	case 0xa: /* performance monitoring: no PMU is virtualized */
	case 0xb: /* x2APIC topology */
	case 0xd: /* XSAVE state components: vmm/xstate.c */
	case 0x1f:
		return zero;
	case 4:
		/*
		 * Deterministic cache parameters: the caches are the host's, the
		 * sharing one vCPU's. EAX[31:26] (cores per package - 1) and
		 * EAX[25:14] (logical processors sharing the cache - 1) are 0.
		 */
		host.eax &= ~(0x3fU << 26 | 0xfffU << 14);
		return host;
	case 7:
		return subleaf == 0 ? structured_features(host) : zero;
	case 0x80000001:
		/* RDTSCP stays: vcpu_cpuid() hides it where guests cannot run it. */
		return host;
	case CPUID_HV_BASE: {
		struct cpuid_result r = { .eax = CPUID_HV_VERSION };
		memcpy(&r.ebx, CPUID_HV_SIGNATURE, 4);
		memcpy(&r.ecx, CPUID_HV_SIGNATURE + 4, 4);
		memcpy(&r.edx, CPUID_HV_SIGNATURE + 8, 4);
		return r;
	}
	case CPUID_HV_VERSION:
		return (struct cpuid_result){ .eax = HYPERCALL_ABI_VERSION };
	default:
		/* The rest of the hypervisor range is ours and empty. */
		if (leaf >= CPUID_HV_BASE && leaf < 0x50000000U)
			return zero;
		return host;
	}
}

/*
 * The fraction num/den nearest to a/b with num <= max_num and den <= max_den
 * (a, b > 0): the last continued-fraction convergent within the bounds, or
 * the semiconvergent past it where that is nearer (it is when its
 * coefficient is more than half the full one). Every step's products are
 * bounded before they are formed, so nothing overflows.
 */
static void nearest_fraction(uint64_t a, uint64_t b, uint64_t max_num, uint64_t max_den,
			     uint64_t *num, uint64_t *den)
{
	uint64_t h1 = 1, h2 = 0, k1 = 0, k2 = 1;

	while (b) {
		uint64_t t = a / b;
		uint64_t fit = (max_num - h2) / h1;
		if (k1 && (max_den - k2) / k1 < fit)
			fit = (max_den - k2) / k1;
		if (t > fit) {
			/* The bounds end the expansion: a semiconvergent, if it is nearer. */
			if (2 * fit > t) {
				h1 = fit * h1 + h2;
				k1 = fit * k1 + k2;
			}
			break;
		}
		uint64_t h = t * h1 + h2, k = t * k1 + k2, r = a - t * b;
		h2 = h1;
		h1 = h;
		k2 = k1;
		k1 = k;
		a = b;
		b = r;
	}
	*num = h1;
	*den = k1;
}

struct cpuid_result cpuid_tsc_leaf(uint64_t tsc_hz, uint64_t crystal_hz)
{
	/*
	 * TSC = crystal * EBX / EAX (SDM Vol. 2A, CPUID leaf 15H). Linux
	 * forms crystal_kHz * EBX in 32 bits (native_calibrate_tsc), so EBX
	 * stays below 2^32 / crystal_kHz: with a 25-MHz crystal and a
	 * 199.998-MHz TSC, EBX = 199998 and EAX = 25000 wrapped there to a
	 * 28.199-MHz TSC and a guest clock seven times too fast. The ratio is
	 * the nearest fraction within that bound (exact for the usual rates,
	 * a few ppm off for any other). With the crystal as the local APIC's
	 * clock, Linux takes its timer period from here too.
	 */
	uint64_t crystal_khz = crystal_hz / 1000, num, den;
	if (!crystal_khz || tsc_hz < crystal_hz || crystal_hz > 0xffffffffULL ||
	    tsc_hz / crystal_hz >= 0xffffffffULL / crystal_khz)
		return (struct cpuid_result){ 0 };
	nearest_fraction(tsc_hz, crystal_hz, 0xffffffffULL / crystal_khz, 0xffffffffULL, &num,
			 &den);
	return (struct cpuid_result){ .eax = (uint32_t)den, .ebx = (uint32_t)num,
				      .ecx = (uint32_t)crystal_hz };
}
