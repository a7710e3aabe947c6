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

/*
 * Turns the extension on for the calling CPU (for VT-x: IA32_FEATURE_CONTROL,
 * the CR0/CR4 fixed bits, VMXON) and logs the capability report.
 * Called after the hand-over, on the hypervisor's own page tables.
 * Returns 0, or -1 with the reason in why.
 */
int virt_enable_cpu(struct page_alloc *pa, char *why, size_t why_size);

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

/* Loads the boot state into the vCPU (a cold reset of its hardware state). */
int virt_vcpu_reset(struct vcpu *vcpu, const struct vcpu_boot_state *state);

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
