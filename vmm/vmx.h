/* Internal to the VT-x backend: VMCS access and per-vCPU VMX state. */
#ifndef VMM_VMX_H
#define VMM_VMX_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/vm.h"
#include "vmm/vmx_caps.h"
#include "x86/vmx_defs.h"

/* MSRs swapped through the VM-entry load / VM-exit store area (SDM 24.7.2). */
enum vmx_swapped_msr { SWAP_STAR, SWAP_LSTAR, SWAP_CSTAR, SWAP_SFMASK, SWAP_KERNEL_GS_BASE, SWAP_COUNT };

struct vmx_vcpu {
	uint64_t vmcs_pa;
	bool launched;
	uint16_t vpid;
	struct vmx_msr_entry *msr_area; /* SWAP_COUNT entries, page-aligned */
	uint64_t msr_area_pa;
	/* An exception to deliver at the next entry (SDM 26.6). */
	bool inject_pending;
	uint32_t inject_info;
	uint32_t inject_error;
};

struct vmx_exit {
	uint32_t reason; /* basic exit reason */
	uint64_t qualification;
	uint32_t instr_len;
};

enum exit_action {
	EXIT_CONTINUE, /* re-enter the same vCPU */
	EXIT_PREEMPT,  /* slice over: back to the scheduler */
	EXIT_HALT,     /* HLT */
	EXIT_STOP,     /* the VM must end (vm_request_end was called) */
};

/* Dispatches one exit through the exit table (vmx_exit.c). */
enum exit_action vmx_handle_exit(struct vcpu *vcpu, const struct vmx_exit *exit);

/* The capabilities read at VMXON, for the control settings. */
extern struct vmx_caps vmx_host_caps;
extern struct vmx_msrs vmx_host_msrs;

/*
 * VMREAD/VMWRITE on the current VMCS. A failure here means the hypervisor
 * used a field the CPU does not have: a bug, so it panics.
 */
uint64_t vmcs_read(enum vmcs_field field);
void vmcs_write(enum vmcs_field field, uint64_t value);

static inline struct vmx_vcpu *to_vmx(struct vcpu *vcpu)
{
	return vcpu->vendor;
}

void vmx_advance_rip(const struct vmx_exit *exit);

/* Guest CPL from the SS access rights (SDM 24.4.1: SS.DPL is the CPL). */
unsigned vmx_guest_cpl(void);

/* vmx_entry.S: enters the guest; returns 0 after a VM exit, 1 if entry failed. */
int vmx_enter_guest(struct guest_regs *regs, int launched);

#endif
