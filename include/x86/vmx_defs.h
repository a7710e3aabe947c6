/*
 * VT-x architectural definitions, written from the Intel SDM Vol. 3C
 * (chapter 24 "Virtual Machine Control Structures", chapter 25 and
 * appendix A "VMX Capability Reporting Facility"). Only the VMX backend
 * includes this header; generic code goes through vmm/virt.h.
 */
#ifndef X86_VMX_DEFS_H
#define X86_VMX_DEFS_H

#include <stdint.h>

#define BIT64(n) (1ULL << (n))

/* CPUID.1:ECX.VMX[bit 5] (SDM 23.6 "Discovering Support for VMX"). */
#define CPUID_1_ECX_VMX (1U << 5)
/* CPUID.80000001h:ECX.SVM[bit 2]: only to name what a non-Intel CPU offers. */
#define CPUID_80000001_ECX_SVM (1U << 2)
/* CPUID.80000001h:EDX.Page1GB[bit 26]: 1-GiB pages in the host's own tables. */
#define CPUID_80000001_EDX_PAGE1GB (1U << 26)

/* IA32_FEATURE_CONTROL (SDM 23.7 "Enabling and Entering VMX Operation"). */
#define FEATURE_CONTROL_LOCK BIT64(0)
#define FEATURE_CONTROL_VMX_INSIDE_SMX BIT64(1)
#define FEATURE_CONTROL_VMX_OUTSIDE_SMX BIT64(2)

/* IA32_VMX_BASIC (SDM A.1). */
#define VMX_BASIC_REVISION_MASK 0x7fffffffULL
#define VMX_BASIC_REGION_SIZE_SHIFT 32
#define VMX_BASIC_REGION_SIZE_MASK 0x1fffULL
#define VMX_BASIC_PHYS_ADDR_32BIT BIT64(48)
#define VMX_BASIC_MEMTYPE_SHIFT 50
#define VMX_BASIC_MEMTYPE_MASK 0xfULL
#define VMX_BASIC_INS_OUTS_INFO BIT64(54)
#define VMX_BASIC_TRUE_CTLS BIT64(55)

#define MEMTYPE_UC 0
#define MEMTYPE_WB 6

/*
 * Control capability MSRs hold the allowed-0 settings in bits 31:0 and the
 * allowed-1 settings in bits 63:32 (SDM A.3-A.5).
 */
#define VMX_CTL_ALLOWED1(msr) ((uint32_t)((msr) >> 32))
#define VMX_CTL_ALLOWED0(msr) ((uint32_t)(msr))

/* Pin-based VM-execution controls (SDM 24.6.1). */
#define PIN_CTL_PREEMPTION_TIMER (1U << 6)
/* Primary processor-based VM-execution controls (SDM 24.6.2, table 24-6). */
#define PROC_CTL_SECONDARY_CONTROLS (1U << 31)
/* Secondary processor-based VM-execution controls (SDM 24.6.2, table 24-7). */
#define PROC2_CTL_ENABLE_EPT (1U << 1)
#define PROC2_CTL_ENABLE_VPID (1U << 5)
#define PROC2_CTL_UNRESTRICTED_GUEST (1U << 7)

/* IA32_VMX_MISC (SDM A.6). */
#define VMX_MISC_PREEMPTION_RATE_MASK 0x1fULL

/* IA32_VMX_EPT_VPID_CAP (SDM A.10). */
#define EPT_CAP_EXECUTE_ONLY BIT64(0)
#define EPT_CAP_WALK_LENGTH_4 BIT64(6)
#define EPT_CAP_MEMTYPE_UC BIT64(8)
#define EPT_CAP_MEMTYPE_WB BIT64(14)
#define EPT_CAP_PAGE_2M BIT64(16)
#define EPT_CAP_PAGE_1G BIT64(17)
#define EPT_CAP_INVEPT BIT64(20)
#define EPT_CAP_ACCESSED_DIRTY BIT64(21)
#define EPT_CAP_INVEPT_SINGLE BIT64(25)
#define EPT_CAP_INVEPT_ALL BIT64(26)
#define EPT_CAP_INVVPID BIT64(32)

/*
 * The first 4 bytes of the VMXON region and of a VMCS hold the VMCS
 * revision identifier, bit 31 clear (SDM 24.2 and 24.11.5).
 */
struct vmx_region_header {
	uint32_t revision_id;
	uint32_t abort_indicator;
};
_Static_assert(sizeof(struct vmx_region_header) == 8, "SDM 24.2 layout");

#endif
