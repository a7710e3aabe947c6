/*
 * The hypercall ABI, shared by the hypervisor and guest code.
 *
 * A guest issues VMCALL with the call number in RAX and up to three
 * arguments in RBX, RCX, RDX; the result comes back in RAX: zero or a
 * positive value on success, a negative HC_E* code on failure. Every other
 * register is preserved. The ABI version is reported by HC_VERSION and by
 * CPUID leaf 0x40000001 (EAX), and changes whenever a call changes.
 * Hypercalls are only available from guest ring 0 (CPL 0): others get
 * HC_EPERM.
 */
#ifndef VMM_HYPERCALL_H
#define VMM_HYPERCALL_H

#define HYPERCALL_ABI_VERSION 1

/* CPUID leaves of the hypervisor range (0x40000000: max leaf + signature). */
#define CPUID_HV_BASE 0x40000000U
#define CPUID_HV_VERSION 0x40000001U
#define CPUID_HV_SIGNATURE "VMMvmmVMMvmm" /* EBX, ECX, EDX */

/*
 * The upcall: the one interrupt the hypervisor raises in a guest for its
 * own events (today the paravirtual timer). It is delivered like an
 * external interrupt when RFLAGS.IF allows, wakes a halted vCPU, and needs
 * no EOI. Vectors below 32 are the CPU's exceptions and are refused.
 */
enum hypercall {
	HC_VERSION = 0,           /* -> HYPERCALL_ABI_VERSION */
	HC_CONSOLE_WRITE = 1,     /* RBX: guest-physical address, RCX: length (<= 256) */
	HC_SET_UPCALL_VECTOR = 2, /* RBX: vector 32..255, or 0 to turn upcalls off */
	HC_SET_TIMER = 3,         /* RBX: TSC deadline for one upcall, 0 cancels */
	HC_COUNT,
};

#define HC_EPERM (-1L)
#define HC_EFAULT (-14L)
#define HC_EINVAL (-22L)
#define HC_ENOSYS (-38L)

#endif
