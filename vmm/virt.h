/*
 * The vendor interface: everything generic code may ask of the hardware
 * virtualization extension. vmm/vmx*.c implement it for Intel VT-x; an SVM
 * backend would implement the same functions and the Makefile would link
 * one or the other. Generic code never sees a VMCS field or a VMX MSR.
 */
#ifndef VMM_VIRT_H
#define VMM_VIRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "x86/msr.h"
#include "x86/segment.h"

struct page_alloc;
struct vm;
struct vcpu;

/*
 * Checks, without changing any CPU state, that this CPU can run the
 * hypervisor. Called while the firmware still owns the machine, so a
 * failure is reported and the firmware gets control back.
 * Returns 0, or -1 with a sentence for the console in why.
 */
int virt_probe(char *why, size_t why_size);

/* What the configuration lets the extension use where the CPU has it. */
struct virt_options {
	bool xsave_compacted;     /* guests may be offered XSAVEC and XSAVES */
	bool apic_virtualization; /* the CPU delivers guests' local APIC interrupts */
};

/*
 * Turns the extension on for the calling CPU (for VT-x: IA32_FEATURE_CONTROL,
 * the CR0/CR4 fixed bits, VMXON) and logs the capability report.
 * Called after the hand-over, on the hypervisor's own page tables.
 * Returns 0, or -1 with the reason in why.
 */
int virt_enable_cpu(struct page_alloc *pa, const struct virt_options *options, char *why,
		    size_t why_size);

/*
 * Nested paging for a VM: maps exactly its RAM, nothing else. On failure
 * nothing stays allocated.
 */
int virt_vm_init(struct vm *vm, struct page_alloc *pa);
/*
 * Gives back every page virt_vm_init took; the CPU keeps no translation
 * through them. @pre its vCPU's state is destroyed.
 */
void virt_vm_destroy(struct vm *vm, struct page_alloc *pa);
/*
 * RAM a restore loads as the guest first touches it (vmm/lazy_restore.h).
 * Hide makes nested paging map none of it, so that each first access
 * exits as an EPT violation (-1, nothing changed, when memory for the
 * tables is short); show maps [gpa, gpa + bytes) again once loaded; show
 * all maps the whole RAM as virt_vm_init did. Hide and show all load the
 * vCPU's state: only between its slices, from the scheduler's loop.
 */
int virt_ram_hide(struct vm *vm);
void virt_ram_show(struct vm *vm, uint64_t gpa, uint64_t bytes);
void virt_ram_show_all(struct vm *vm);
/* Bytes of backend state kept per VM outside the page allocator. */
size_t virt_vm_state_bytes(void);
/*
 * Allocates the per-vCPU hardware state once (vm->id must be the VM's
 * final slot). On failure nothing stays allocated.
 */
int virt_vcpu_init(struct vcpu *vcpu, struct page_alloc *pa);
/*
 * Gives back every page virt_vcpu_init took, after making sure no CPU
 * caches any of that state. @pre the vCPU is not running.
 */
void virt_vcpu_destroy(struct vcpu *vcpu, struct page_alloc *pa);

struct segment_state {
	uint16_t selector;
	uint64_t base;
	uint32_t limit;
	uint32_t attributes; /* SEG_ATTR_*; 0 marks the segment unusable */
};

/* The register state a vCPU starts from (power-on or a loader's hand-off). */
struct vcpu_boot_state {
	uint64_t rip, rsp, rflags;
	uint64_t rsi, rdi; /* boot arguments of long-mode entry */
	uint64_t cr0, cr3, cr4, efer;
	struct segment_state seg[SEG_COUNT];
	uint64_t gdt_base, idt_base;
	uint32_t gdt_limit, idt_limit;
};

/*
 * The complete architectural state of a vCPU, as data: what the guest sees,
 * never how the backend keeps it (VMCS fields, CR read shadows and masks,
 * MSR areas, lazily switched FPU and debug registers are all folded in).
 * No host pointers, fixed-width fields, so it can be encoded (vmm/vcpu_state.h)
 * and loaded on another machine. Encodings that need one follow the SDM:
 * segment access rights as in include/x86/segment.h, interruptibility,
 * activity state and event types as in Vol. 3C 24.4.2 and 24.8.3.
 *
 * Not here, on purpose: CR8 (the TPR is the local APIC model's register,
 * devices/lapic.h: CR8 reads TPR >> 4); the TSC (guests read the host's,
 * offset 0: moving a VM needs a TSC offset, issue 13); supervisor XSAVE
 * state (IA32_XSS is always 0, vmm/xstate.h); MTRRs and
 * machine-check banks (not emulated: #GP). The constant MSRs
 * (FEATURE_CONTROL, MISC_ENABLE) are properties of the hypervisor.
 */
#define VCPU_SEG_UNUSABLE (1U << 16) /* a null selector was loaded (SDM 24.4.1) */

struct vcpu_segment {
	uint64_t base;
	uint32_t limit;      /* in bytes, G already applied */
	uint32_t attributes; /* SEG_ATTR_* bits 15:0, VCPU_SEG_UNUSABLE */
	uint16_t selector;
	uint16_t reserved[3];
};

/* Interruptibility state (SDM 24.4.2, table 24-3). */
#define VCPU_BLOCKING_STI (1U << 0)
#define VCPU_BLOCKING_MOV_SS (1U << 1)
#define VCPU_BLOCKING_SMI (1U << 2)
#define VCPU_BLOCKING_NMI (1U << 3)

/* Activity state (SDM 24.4.2). */
enum vcpu_activity {
	VCPU_ACTIVITY_ACTIVE = 0,
	VCPU_ACTIVITY_HLT = 1,
	VCPU_ACTIVITY_SHUTDOWN = 2,
	VCPU_ACTIVITY_WAIT_FOR_SIPI = 3,
};

/* Event types (SDM 24.8.3, table 24-16); 1 is reserved, 7 (MTF) unused. */
enum vcpu_event_type {
	VCPU_EVENT_EXTERNAL_INTERRUPT = 0,
	VCPU_EVENT_NMI = 2,
	VCPU_EVENT_HARDWARE_EXCEPTION = 3,
	VCPU_EVENT_SOFTWARE_INTERRUPT = 4,
	VCPU_EVENT_PRIVILEGED_SOFTWARE_EXCEPTION = 5,
	VCPU_EVENT_SOFTWARE_EXCEPTION = 6,
};

/*
 * An event the next entry delivers: one the hypervisor queued, or one whose
 * delivery a VM exit interrupted (IDT-vectoring information, SDM 27.2.4),
 * which must be delivered again (SDM 29.2.1 "re-injection").
 */
struct vcpu_event {
	bool pending;
	uint8_t type;   /* enum vcpu_event_type */
	uint8_t vector;
	bool has_error_code;
	uint32_t error_code;
	uint32_t instruction_length; /* of INT n, INT3, INTO, INT1: 1..15 */
	uint32_t reserved;
};

/* The FXSAVE area in its 64-bit format (SDM Vol. 1, 10.5.1, table 10-2). */
struct vcpu_fxsave {
	uint16_t fcw, fsw;
	uint8_t ftw; /* abridged: one bit per register */
	uint8_t reserved1;
	uint16_t fop;
	uint64_t fip, fdp;
	uint32_t mxcsr;
	uint32_t mxcsr_mask; /* the CPU's, written by FXSAVE, ignored by FXRSTOR */
	uint64_t st[16];     /* ST0/MM0..ST7: 16 bytes each, 80 bits used */
	uint64_t xmm[32];    /* XMM0..XMM15: low quadword, then high */
	uint8_t reserved2[96];
};
_Static_assert(sizeof(struct vcpu_fxsave) == 512, "SDM Vol. 1 table 10-2");
_Static_assert(offsetof(struct vcpu_fxsave, mxcsr) == 24 &&
		       offsetof(struct vcpu_fxsave, st) == 32 &&
		       offsetof(struct vcpu_fxsave, xmm) == 160,
	       "SDM Vol. 1 table 10-2");

/* The IA32_MISC_ENABLE bits a guest may change (vmm/vcpu.c has the rest). */
#define VCPU_MISC_ENABLE_BITS \
	(MISC_ENABLE_FAST_STRINGS | MISC_ENABLE_LIMIT_CPUID | MISC_ENABLE_XD_DISABLE)

struct vcpu_state {
	/* Instruction-encoding order: 0 RAX, 1 RCX, 2 RDX, 3 RBX, 4 RSP, ... 15 R15. */
	uint64_t gpr[16];
	uint64_t rip, rflags;
	uint64_t cr0, cr2, cr3, cr4; /* as the guest reads them */
	uint64_t dr[4], dr6, dr7;
	uint64_t efer, pat, debugctl;
	uint64_t misc_enable; /* VCPU_MISC_ENABLE_BITS of IA32_MISC_ENABLE; version 2 on */
	uint64_t tsc_adjust;  /* IA32_TSC_ADJUST; version 2 on */
	uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
	uint64_t star, lstar, cstar, sfmask, kernel_gs_base;
	uint64_t tsc_aux; /* IA32_TSC_AUX (RDTSCP, RDPID); version 2 on */
	uint64_t spec_ctrl; /* IA32_SPEC_CTRL, where guests have it; version 4 on */
	struct vcpu_segment seg[SEG_COUNT]; /* FS and GS base: the MSRs too */
	uint64_t gdtr_base, idtr_base;
	uint32_t gdtr_limit, idtr_limit;
	uint32_t interruptibility; /* VCPU_BLOCKING_* */
	uint32_t activity;         /* enum vcpu_activity */
	uint64_t pending_debug;    /* SDM 24.4.2: B0-B3, enabled breakpoint, BS */
	/*
	 * The PDPTE registers of PAE paging (CR0.PG, CR4.PAE, not EFER.LMA):
	 * the CPU loaded them at the last MOV to CR3/CR0/CR4 and uses them, not
	 * memory (SDM Vol. 3A 4.4.1). Zero in every other paging mode.
	 */
	uint64_t pdpte[4];
	struct vcpu_event event;
	struct vcpu_fxsave fpu;
	/*
	 * XCR0 and the XSAVE state beyond the FXSAVE image (SDM Vol. 1, 13.5),
	 * in the order of each component's standard-format data; version 3 on.
	 */
	uint64_t xcr0;
	uint64_t ymm_hi[32];    /* AVX: YMM0..15 bits 255:128, two quadwords each */
	uint64_t opmask[8];     /* AVX-512: k0..k7 */
	uint64_t zmm_hi256[64]; /* AVX-512: ZMM0..15 bits 511:256, four quadwords each */
	uint64_t hi16_zmm[128]; /* AVX-512: ZMM16..31, eight quadwords each */
};

/*
 * The vCPU's state. Valid while the vCPU is not running (between
 * virt_vcpu_run calls); an interrupted event delivery comes back as
 * state->event.
 */
void virt_vcpu_get_state(struct vcpu *vcpu, struct vcpu_state *state);

/*
 * Loads a state (vcpu_state_check() with this CPU's limits first). Refused
 * (-1, err names the field, the vCPU unchanged) when VM entry would fail
 * with it or the guest could never have reached it.
 */
struct devstate_error;
int virt_vcpu_set_state(struct vcpu *vcpu, const struct vcpu_state *state,
			struct devstate_error *err);

/*
 * A cold reset of the vCPU's hardware state (for VT-x: a cleared VMCS,
 * its host state and controls), then virt_vcpu_set_state(state).
 */
int virt_vcpu_reset(struct vcpu *vcpu, const struct vcpu_state *state,
		    struct devstate_error *err);

enum vcpu_run_result {
	VCPU_RUN_PREEMPTED, /* its time slice is over */
	VCPU_RUN_HALTED,    /* HLT: nothing to do until an event arrives */
	VCPU_RUN_STOPPED,   /* the VM must end (vm->op_pending) */
};

/* Runs the vCPU for at most slice_tsc TSC ticks, handling its exits. */
enum vcpu_run_result virt_vcpu_run(struct vcpu *vcpu, uint64_t slice_tsc);

/*
 * The guest's TSC is the host's plus offset (mod 2^64) from the next VM
 * entry on, for RDTSC and IA32_TIME_STAMP_COUNTER alike. virt_vcpu_reset
 * sets it to 0: the VM's offset is set again after every reset.
 */
void virt_set_tsc_offset(struct vcpu *vcpu, uint64_t offset);

/*
 * Whether guests run RDTSCP and RDPID and have IA32_TSC_AUX per vCPU (for
 * VT-x: the CPU has RDTSCP and the "enable RDTSCP" control); else CPUID
 * hides them, both instructions are #UD and the MSR is #GP.
 */
bool virt_guest_has_tsc_aux(void);

/*
 * The linear-address width guests have, the CPU's (CPUID.80000008H:EAX
 * [15:8], which guests see): 57 where it has 5-level paging, even with
 * CR4.LA57 clear, else 48. What holds a linear address is canonical for it.
 */
unsigned virt_guest_linear_address_bits(void);

/* Queues a hardware exception for delivery at the next VM entry. */
void virt_inject_exception(struct vcpu *vcpu, unsigned vector, bool has_error_code,
			   uint32_t error_code);

/* Guest registers kept by the hardware (in the VMCS, or its MSR areas). */
enum guest_reg {
	GUEST_REG_RIP,
	GUEST_REG_RSP,
	GUEST_REG_RFLAGS,
	GUEST_REG_CR0,
	GUEST_REG_CR3,
	GUEST_REG_CR4,
	GUEST_REG_EFER,
	GUEST_REG_PAT,
	GUEST_REG_FS_BASE,
	GUEST_REG_GS_BASE,
	GUEST_REG_KERNEL_GS_BASE,
	GUEST_REG_TSC_AUX, /* only where virt_guest_has_tsc_aux() */
	GUEST_REG_STAR,
	GUEST_REG_LSTAR,
	GUEST_REG_CSTAR,
	GUEST_REG_SFMASK,
	GUEST_REG_SYSENTER_CS,
	GUEST_REG_SYSENTER_ESP,
	GUEST_REG_SYSENTER_EIP,
	GUEST_REG_COUNT,
};
uint64_t virt_guest_reg(struct vcpu *vcpu, enum guest_reg reg);
void virt_set_guest_reg(struct vcpu *vcpu, enum guest_reg reg, uint64_t value);

/* A guest segment register as the hardware holds it (SEG_ES .. SEG_TR). */
struct segment_state virt_guest_segment(struct vcpu *vcpu, enum x86_segment seg);

/*
 * Completes an instruction the hypervisor emulated: RIP moves past its len
 * bytes and STI/MOV-SS blocking ends, as after any executed instruction.
 */
void virt_skip_instruction(struct vcpu *vcpu, unsigned len);

#endif
