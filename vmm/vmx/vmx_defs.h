/*
 * VT-x architectural definitions, written from the Intel SDM Vol. 3C
 * (chapter 24 "Virtual Machine Control Structures", chapter 25 and
 * appendix A "VMX Capability Reporting Facility"). Only the VMX backend
 * includes this header; generic code goes through vmm/virt.h.
 */
#ifndef VMM_VMX_DEFS_H
#define VMM_VMX_DEFS_H

#include <stdint.h>

#define BIT64(n) (1ULL << (n))

/* CPUID.1:ECX.VMX[bit 5] (SDM 23.6 "Discovering Support for VMX"). */
#define CPUID_1_ECX_VMX (1U << 5)
/* CPUID.80000001h:ECX.SVM[bit 2]: only to name what a non-Intel CPU offers. */
#define CPUID_80000001_ECX_SVM (1U << 2)

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
#define PIN_CTL_EXTERNAL_INTERRUPT (1U << 0)
#define PIN_CTL_NMI_EXITING (1U << 3)
#define PIN_CTL_VIRTUAL_NMIS (1U << 5)
#define PIN_CTL_PREEMPTION_TIMER (1U << 6)
/* Primary processor-based VM-execution controls (SDM 24.6.2, table 24-6). */
#define PROC_CTL_INTERRUPT_WINDOW (1U << 2)
#define PROC_CTL_USE_TSC_OFFSETTING (1U << 3)
#define PROC_CTL_HLT_EXITING (1U << 7)
#define PROC_CTL_MWAIT_EXITING (1U << 10)
#define PROC_CTL_RDPMC_EXITING (1U << 11)
#define PROC_CTL_CR8_LOAD_EXITING (1U << 19)
#define PROC_CTL_CR8_STORE_EXITING (1U << 20)
#define PROC_CTL_USE_TPR_SHADOW (1U << 21)
#define PROC_CTL_NMI_WINDOW (1U << 22)
#define PROC_CTL_USE_IO_BITMAPS (1U << 25)
#define PROC_CTL_USE_MSR_BITMAPS (1U << 28)
#define PROC_CTL_MONITOR_EXITING (1U << 29)
#define PROC_CTL_SECONDARY_CONTROLS (1U << 31)
/* Secondary processor-based VM-execution controls (SDM 24.6.2, table 24-7). */
#define PROC2_CTL_VIRTUALIZE_APIC_ACCESSES (1U << 0)
#define PROC2_CTL_ENABLE_EPT (1U << 1)
#define PROC2_CTL_ENABLE_RDTSCP (1U << 3)
#define PROC2_CTL_ENABLE_VPID (1U << 5)
#define PROC2_CTL_WBINVD_EXITING (1U << 6)
#define PROC2_CTL_UNRESTRICTED_GUEST (1U << 7)
#define PROC2_CTL_APIC_REGISTER_VIRTUALIZATION (1U << 8)
#define PROC2_CTL_VIRTUAL_INTERRUPT_DELIVERY (1U << 9)
#define PROC2_CTL_ENABLE_XSAVES (1U << 20)
/* VM-exit controls (SDM 24.7.1, table 24-13). */
#define EXIT_CTL_SAVE_DEBUG (1U << 2)
#define EXIT_CTL_HOST_ADDR_SPACE_SIZE (1U << 9)
#define EXIT_CTL_ACK_INTERRUPT (1U << 15)
#define EXIT_CTL_SAVE_PAT (1U << 18)
#define EXIT_CTL_LOAD_PAT (1U << 19)
#define EXIT_CTL_SAVE_EFER (1U << 20)
#define EXIT_CTL_LOAD_EFER (1U << 21)
#define EXIT_CTL_SAVE_PREEMPTION_TIMER (1U << 22)
/* VM-entry controls (SDM 24.8.1, table 24-15). */
#define ENTRY_CTL_LOAD_DEBUG (1U << 2)
#define ENTRY_CTL_IA32E_GUEST (1U << 9)
#define ENTRY_CTL_LOAD_PAT (1U << 14)
#define ENTRY_CTL_LOAD_EFER (1U << 15)

/* VMCS field encodings (SDM appendix B). */
enum vmcs_field {
	/* 16-bit */
	VMCS_VPID = 0x0000,
	VMCS_GUEST_ES_SEL = 0x0800, /* ES, CS, SS, DS, FS, GS, LDTR, TR: +2 each */
	VMCS_GUEST_INTERRUPT_STATUS = 0x0810, /* RVI in bits 7:0, SVI in 15:8 */
	VMCS_HOST_ES_SEL = 0x0c00,
	VMCS_HOST_CS_SEL = 0x0c02,
	VMCS_HOST_SS_SEL = 0x0c04,
	VMCS_HOST_DS_SEL = 0x0c06,
	VMCS_HOST_FS_SEL = 0x0c08,
	VMCS_HOST_GS_SEL = 0x0c0a,
	VMCS_HOST_TR_SEL = 0x0c0c,
	/* 64-bit */
	VMCS_IO_BITMAP_A = 0x2000,
	VMCS_IO_BITMAP_B = 0x2002,
	VMCS_MSR_BITMAP = 0x2004,
	VMCS_EXIT_MSR_STORE_ADDR = 0x2006,
	VMCS_EXIT_MSR_LOAD_ADDR = 0x2008,
	VMCS_ENTRY_MSR_LOAD_ADDR = 0x200a,
	VMCS_TSC_OFFSET = 0x2010,
	VMCS_VIRTUAL_APIC_ADDR = 0x2012,
	VMCS_APIC_ACCESS_ADDR = 0x2014,
	VMCS_EPT_POINTER = 0x201a,
	VMCS_EOI_EXIT_BITMAP0 = 0x201c, /* ..3: +2 each, 64 vectors each */
	VMCS_XSS_EXIT_BITMAP = 0x202c,
	VMCS_GUEST_PHYSICAL_ADDR = 0x2400,
	VMCS_LINK_POINTER = 0x2800,
	VMCS_GUEST_DEBUGCTL = 0x2802,
	VMCS_GUEST_PAT = 0x2804,
	VMCS_GUEST_EFER = 0x2806,
	VMCS_GUEST_PDPTE0 = 0x280a, /* ..PDPTE3: +2 each */
	VMCS_HOST_PAT = 0x2c00,
	VMCS_HOST_EFER = 0x2c02,
	/* 32-bit */
	VMCS_PIN_CONTROLS = 0x4000,
	VMCS_PROC_CONTROLS = 0x4002,
	VMCS_EXCEPTION_BITMAP = 0x4004,
	VMCS_PF_ERROR_MASK = 0x4006,
	VMCS_PF_ERROR_MATCH = 0x4008,
	VMCS_CR3_TARGET_COUNT = 0x400a,
	VMCS_EXIT_CONTROLS = 0x400c,
	VMCS_EXIT_MSR_STORE_COUNT = 0x400e,
	VMCS_EXIT_MSR_LOAD_COUNT = 0x4010,
	VMCS_ENTRY_CONTROLS = 0x4012,
	VMCS_ENTRY_MSR_LOAD_COUNT = 0x4014,
	VMCS_ENTRY_INTR_INFO = 0x4016,
	VMCS_ENTRY_EXCEPTION_ERROR = 0x4018,
	VMCS_ENTRY_INSTR_LEN = 0x401a,
	VMCS_TPR_THRESHOLD = 0x401c,
	VMCS_PROC2_CONTROLS = 0x401e,
	VMCS_INSTR_ERROR = 0x4400,
	VMCS_EXIT_REASON = 0x4402,
	VMCS_EXIT_INTR_INFO = 0x4404,
	VMCS_EXIT_INTR_ERROR = 0x4406,
	VMCS_IDT_VECTORING_INFO = 0x4408,
	VMCS_IDT_VECTORING_ERROR = 0x440a,
	VMCS_EXIT_INSTR_LEN = 0x440c,
	VMCS_GUEST_ES_LIMIT = 0x4800, /* ..TR limit: +2 each, then GDTR, IDTR */
	VMCS_GUEST_GDTR_LIMIT = 0x4810,
	VMCS_GUEST_IDTR_LIMIT = 0x4812,
	VMCS_GUEST_ES_AR = 0x4814, /* ..TR access rights: +2 each */
	VMCS_GUEST_INTERRUPTIBILITY = 0x4824,
	VMCS_GUEST_ACTIVITY = 0x4826,
	VMCS_GUEST_SYSENTER_CS = 0x482a,
	VMCS_PREEMPTION_TIMER = 0x482e,
	VMCS_HOST_SYSENTER_CS = 0x4c00,
	/* natural width */
	VMCS_CR0_MASK = 0x6000,
	VMCS_CR4_MASK = 0x6002,
	VMCS_CR0_SHADOW = 0x6004,
	VMCS_CR4_SHADOW = 0x6006,
	VMCS_EXIT_QUALIFICATION = 0x6400,
	VMCS_GUEST_LINEAR_ADDR = 0x640a,
	VMCS_GUEST_CR0 = 0x6800,
	VMCS_GUEST_CR3 = 0x6802,
	VMCS_GUEST_CR4 = 0x6804,
	VMCS_GUEST_ES_BASE = 0x6806, /* ..TR base: +2 each */
	VMCS_GUEST_GDTR_BASE = 0x6816,
	VMCS_GUEST_IDTR_BASE = 0x6818,
	VMCS_GUEST_DR7 = 0x681a,
	VMCS_GUEST_RSP = 0x681c,
	VMCS_GUEST_RIP = 0x681e,
	VMCS_GUEST_RFLAGS = 0x6820,
	VMCS_GUEST_PENDING_DBG = 0x6822,
	VMCS_GUEST_SYSENTER_ESP = 0x6824,
	VMCS_GUEST_SYSENTER_EIP = 0x6826,
	VMCS_HOST_CR0 = 0x6c00,
	VMCS_HOST_CR3 = 0x6c02,
	VMCS_HOST_CR4 = 0x6c04,
	VMCS_HOST_FS_BASE = 0x6c06,
	VMCS_HOST_GS_BASE = 0x6c08,
	VMCS_HOST_TR_BASE = 0x6c0a,
	VMCS_HOST_GDTR_BASE = 0x6c0c,
	VMCS_HOST_IDTR_BASE = 0x6c0e,
	VMCS_HOST_SYSENTER_ESP = 0x6c10,
	VMCS_HOST_SYSENTER_EIP = 0x6c12,
	VMCS_HOST_RSP = 0x6c14,
	VMCS_HOST_RIP = 0x6c16,
};

/*
 * Guest segment access rights are the descriptor attributes of
 * include/x86/segment.h (SEG_ATTR_*), plus "unusable" (SDM 24.4.1).
 * Segment fields come in enum x86_segment order: field = first + 2 * seg.
 */
#define VMX_AR_UNUSABLE (1U << 16)

/* Basic exit reasons (SDM appendix C); bit 31 flags a failed VM entry. */
enum vmx_exit_reason {
	EXIT_EXCEPTION_NMI = 0,
	EXIT_EXTERNAL_INTERRUPT = 1,
	EXIT_TRIPLE_FAULT = 2,
	EXIT_INIT = 3,
	EXIT_SIPI = 4,
	EXIT_INTERRUPT_WINDOW = 7,
	EXIT_NMI_WINDOW = 8,
	EXIT_TASK_SWITCH = 9,
	EXIT_CPUID = 10,
	EXIT_GETSEC = 11,
	EXIT_HLT = 12,
	EXIT_INVD = 13,
	EXIT_RDPMC = 15,
	EXIT_VMCALL = 18,
	EXIT_VMCLEAR = 19,
	EXIT_VMLAUNCH = 20,
	EXIT_VMPTRLD = 21,
	EXIT_VMPTRST = 22,
	EXIT_VMREAD = 23,
	EXIT_VMRESUME = 24,
	EXIT_VMWRITE = 25,
	EXIT_VMXOFF = 26,
	EXIT_VMXON = 27,
	EXIT_CR_ACCESS = 28,
	EXIT_IO = 30,
	EXIT_RDMSR = 31,
	EXIT_WRMSR = 32,
	EXIT_INVALID_GUEST_STATE = 33,
	EXIT_MSR_LOADING = 34,
	EXIT_MWAIT = 36,
	EXIT_MONITOR = 39,
	EXIT_MACHINE_CHECK = 41,
	EXIT_APIC_ACCESS = 44,
	EXIT_EOI_INDUCED = 45,
	EXIT_EPT_VIOLATION = 48,
	EXIT_EPT_MISCONFIG = 49,
	EXIT_INVEPT = 50,
	EXIT_PREEMPTION_TIMER = 52,
	EXIT_INVVPID = 53,
	EXIT_WBINVD = 54,
	EXIT_XSETBV = 55,
	EXIT_APIC_WRITE = 56,
	EXIT_VMFUNC = 59,
	EXIT_REASON_COUNT = 70,
};
#define EXIT_REASON_ENTRY_FAILURE (1U << 31)
#define EXIT_REASON_BASIC_MASK 0xffffU

/* Pending debug exceptions: BS, a single-step trap (SDM 24.4.2, table 24-4). */
#define VMX_PENDING_DBG_BS (1ULL << 14)

/* VM-entry/exit interruption information (SDM 24.8.3, 24.9.2). */
#define INTR_INFO_VALID (1U << 31)
#define INTR_INFO_DELIVER_ERROR (1U << 11)
#define INTR_TYPE_EXTERNAL (0U << 8)
#define INTR_TYPE_NMI (2U << 8)
#define INTR_TYPE_HW_EXCEPTION (3U << 8)
#define INTR_INFO_TYPE_MASK (7U << 8)
#define INTR_INFO_VECTOR_MASK 0xffU

/* Exit qualification of I/O instructions (SDM 27.2.1, table 27-5). */
#define IO_QUAL_SIZE_MASK 0x7ULL  /* size - 1 */
#define IO_QUAL_IN (1ULL << 3)
#define IO_QUAL_STRING (1ULL << 4)
#define IO_QUAL_REP (1ULL << 5)
#define IO_QUAL_PORT_SHIFT 16

/* Exit qualification of EPT violations (SDM 27.2.1, table 27-7). */
/* APIC-access exit qualification (SDM 27.2.1, table 27-6): page offset, access type. */
#define APIC_ACCESS_QUAL_OFFSET 0xfffULL
#define APIC_ACCESS_QUAL_TYPE_SHIFT 12
#define APIC_ACCESS_LINEAR_READ 0
#define APIC_ACCESS_LINEAR_WRITE 1

#define EPT_QUAL_READ (1ULL << 0)
#define EPT_QUAL_WRITE (1ULL << 1)
#define EPT_QUAL_FETCH (1ULL << 2)
#define EPT_QUAL_NMI_UNBLOCKED (1ULL << 12) /* by an IRET that then faulted */

/* Exit qualification of control-register accesses (SDM table 27-3). */
#define CR_QUAL_NUMBER(q) ((unsigned)((q) & 0xf))
#define CR_QUAL_TYPE(q) ((unsigned)(((q) >> 4) & 0x3)) /* 0: MOV to CR */
#define CR_QUAL_GPR(q) ((unsigned)(((q) >> 8) & 0xf))

/* EPT paging-structure entries (SDM 28.3.2, tables 28-1..28-6). */
#define EPT_READ (1ULL << 0)
#define EPT_WRITE (1ULL << 1)
#define EPT_EXECUTE (1ULL << 2)
#define EPT_RWX (EPT_READ | EPT_WRITE | EPT_EXECUTE)
#define EPT_MEMTYPE_SHIFT 3
#define EPT_LARGE (1ULL << 7)
/* EPTP (SDM 24.6.11): memory type in bits 2:0, walk length - 1 in 5:3. */
#define EPTP_WB MEMTYPE_WB
#define EPTP_WALK_4 (3ULL << 3)

/* INVEPT types (SDM 30.3, INVEPT). */
#define INVEPT_SINGLE_CONTEXT 1
struct invept_descriptor {
	uint64_t eptp;
	uint64_t reserved;
};
_Static_assert(sizeof(struct invept_descriptor) == 16, "SDM 30.3 INVEPT");

/* One entry of a VM-entry MSR-load / VM-exit MSR-store area (SDM 24.7.2). */
struct vmx_msr_entry {
	uint32_t index;
	uint32_t reserved;
	uint64_t value;
};
_Static_assert(sizeof(struct vmx_msr_entry) == 16, "SDM table 24-12");

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
