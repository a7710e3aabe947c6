/* Internal to the VT-x backend: VMCS access and per-vCPU VMX state. */
#ifndef VMM_VMX_H
#define VMM_VMX_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/vm.h"
#include "vmm/vmx/caps.h"
#include "x86/cpu.h"
#include "vmm/vmx/vmx_defs.h"

/*
 * MSRs swapped through the VM-entry load / VM-exit store area (SDM 24.7.2).
 * TSC_AUX and SPEC_CTRL only where the CPU has them: the area keeps every
 * value, those the CPU swaps first (vmx_swapped).
 */
enum vmx_swapped_msr {
	SWAP_STAR,
	SWAP_LSTAR,
	SWAP_CSTAR,
	SWAP_SFMASK,
	SWAP_KERNEL_GS_BASE,
	SWAP_TSC_AUX,
	SWAP_SPEC_CTRL,
	SWAP_COUNT
};

struct vmx_vcpu {
	uint64_t vmcs_pa;
	bool launched;
	uint16_t vpid;
	uint64_t host_rsp; /* the VMCS's host RSP, written only on change */
	uint32_t proc_controls; /* primary controls, to toggle window exiting */
	struct vmx_msr_entry *msr_area; /* SWAP_COUNT entries, page-aligned */
	uint64_t msr_area_pa;
	uint64_t apic_page_pa; /* the virtual-APIC page (vcpu->apic_page), 0: none */
	/* An exception to deliver at the next entry (SDM 26.6). */
	bool inject_pending;
	uint32_t inject_info;
	uint32_t inject_error;
};



enum exit_action {
	EXIT_CONTINUE, /* re-enter the same vCPU */
	EXIT_PREEMPT,  /* slice over: back to the scheduler */
	EXIT_HALT,     /* HLT */
	EXIT_STOP,     /* the VM must end (vm_request_end was called) */
	EXIT_TIMERS_MOVED, /* re-enter once the VM's timers ran again (vcpu->timers_moved) */
};

/* Where each swapped MSR's entry is in a vCPU's area (vmm/vmx/vcpu.c). */
extern uint8_t vmx_swap_position[SWAP_COUNT];

static inline struct vmx_msr_entry *vmx_swapped(struct vmx_vcpu *v, enum vmx_swapped_msr msr)
{
	return &v->msr_area[vmx_swap_position[msr]];
}

/*
 * The defences entry.S applies (vmm/speculation.h), from the choice at
 * VMXON: return-stack entries overwritten after each exit (0, 1 or 32),
 * VERW before each entry, and the selector VERW checks.
 */
extern __attribute__((visibility("hidden"))) uint32_t vmx_rsb_fill_entries;
extern __attribute__((visibility("hidden"))) uint8_t vmx_clear_buffers;
extern __attribute__((visibility("hidden"))) uint16_t vmx_verw_selector;

struct page_alloc;
/* The I/O and MSR bitmaps and the host MSR-load area all vCPUs share; once, at VMXON. */
int vmx_init_bitmaps(struct page_alloc *pa);

/*
 * Dispatches one exit through the exit table (vmm/vmx/exit.c). Only the reason
 * is read up front; handlers read the exit-information fields they need,
 * which keeps the hot exits (CPUID, port I/O) short.
 */
enum exit_action vmx_handle_exit(struct vcpu *vcpu, uint32_t reason);

/* A task-switch exit (vmm/vmx/task.c, the switch itself in vmm/task_switch.c). */
enum exit_action vmx_handle_task_switch(struct vcpu *vcpu);

/*
 * With EPT, VM entry into PAE paging takes the four PDPTEs from the VMCS
 * (SDM 26.3.2.4), so whatever enables PAE paging or loads CR3 under it
 * (MOV to CR0/CR4, a task switch) must load them from guest memory, as
 * the CPU would. Returns -1 for #GP.
 */
int vmx_load_pae_pdptes(struct vcpu *vcpu);

/* The capabilities read at VMXON, for the control settings. */
extern struct vmx_caps vmx_host_caps;
extern struct vmx_msrs vmx_host_msrs;

/*
 * VMREAD/VMWRITE on the current VMCS, inline because every exit does
 * several. A failure (VMfailInvalid sets CF, VMfailValid ZF: SDM 31.2)
 * means the hypervisor used a field the CPU does not have or no VMCS is
 * current: a bug, so the out-of-line path panics. The check is one JNA
 * to it (asm goto), not a SETNA and a test on every access.
 */
__attribute__((noreturn, cold)) void vmcs_access_failed(enum vmcs_field field, bool write,
							 uint64_t value);

static inline uint64_t vmcs_read(enum vmcs_field field)
{
	uint64_t value;

	__asm__ goto("vmread %1, %0\n\tjna %l[failed]"
		     : "=r"(value)
		     : "r"((uint64_t)field)
		     : "cc"
		     : failed);
	return value;
failed:
	vmcs_access_failed(field, false, 0);
}

static inline void vmcs_write(enum vmcs_field field, uint64_t value)
{
	__asm__ goto("vmwrite %0, %1\n\tjna %l[failed]"
		     :
		     : "r"(value), "r"((uint64_t)field)
		     : "cc"
		     : failed);
	return;
failed:
	vmcs_access_failed(field, true, value);
}

static inline struct vmx_vcpu *to_vmx(struct vcpu *vcpu)
{
	return vcpu->vendor;
}

static inline uint64_t vmx_exit_qualification(void)
{
	return vmcs_read(VMCS_EXIT_QUALIFICATION);
}

/*
 * CR4 bits whose features CPUID hides from guests (SMX, protection keys,
 * CET, and XSAVE where the host has none): host-owned, so setting one
 * exits and is refused with #GP. CR4.OSXSAVE is otherwise the guest's.
 */
static inline uint64_t vmx_cr4_hidden_from_guests(void)
{
	return CR4_SMXE | CR4_PKE | CR4_CET | (xstate_host_layout()->components ? 0 : CR4_OSXSAVE);
}

/* Drops the VM's cached translations (all its VPIDs), e.g. after a CR0/CR4 change. */
void vmx_flush_guest_tlb(struct vcpu *vcpu);

/* Turns interrupt-window exiting on or off (SDM 25.2, 26.7.5). */
void vmx_set_interrupt_window(struct vmx_vcpu *v, bool on);
/* Turns NMI-window exiting on or off (SDM 25.2, 26.7.6). */
void vmx_set_nmi_window(struct vmx_vcpu *v, bool on);

/* Steps the guest over the instruction that exited. */
void vmx_advance_rip(void);

/* Guest CPL from the SS access rights (SDM 24.4.1: SS.DPL is the CPL). */
unsigned vmx_guest_cpl(void);

/*
 * vmm/vmx/entry.S: enters the guest; returns 0 after a VM exit, 1 after
 * VMfailValid (the reason is in the VM-instruction error field), 2 after
 * VMfailInvalid (no current VMCS).
 */
int vmx_enter_guest(struct guest_regs *regs, int launched, uint64_t *host_rsp);

#endif
