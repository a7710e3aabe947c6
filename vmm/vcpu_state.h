/*
 * struct vcpu_state (vmm/virt.h) as a record of the device state codec
 * (devices/devstate.h): one descriptor, so a vCPU is written in a fixed
 * byte order with a version and every value range-checked on load, and
 * the checks every backend applies before it loads a state. Plain C, no
 * hardware access: the unit tests run it on the host.
 */
#ifndef VMM_VCPU_STATE_H
#define VMM_VCPU_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/devstate.h"
#include "vmm/virt.h"

/*
 * The record's name and its descriptor; version 2 added misc_enable,
 * tsc_adjust and tsc_aux, version 3 XCR0 and the AVX/AVX-512 registers,
 * version 4 IA32_SPEC_CTRL.
 */
#define VCPU_STATE_RECORD_NAME "vcpu"
extern const struct devstate_desc vcpu_state_desc;

/* Bytes devstate_save() writes for one vCPU record. */
#define VCPU_STATE_RECORD_MAX 4096

/*
 * What the CPU that would run the state allows; the backend reads them
 * from the hardware (for VT-x: IA32_VMX_CR4_FIXED1, CPUID 80000008H, the
 * MXCSR_MASK of an FXSAVE, the XSAVE components offered: vmm/xstate.h).
 */
struct vcpu_state_limits {
	uint64_t cr4_allowed;   /* CR4 bits a guest may set */
	unsigned maxphyaddr;    /* physical-address width the guest sees */
	unsigned linear_address_bits; /* CPUID.80000008H:EAX[15:8]: 48, or 57 with LA57 */
	uint32_t mxcsr_allowed; /* MXCSR bits FXRSTOR accepts (SDM Vol. 1, 11.6.6) */
	uint64_t xcr0_allowed;  /* XCR0 bits a guest may set (at least x87) */
	uint64_t spec_ctrl_allowed; /* IA32_SPEC_CTRL bits guests are offered (0: no MSR) */
};

/*
 * Every rule a state must meet to be loaded: the decoder's ranges and
 * cross-field rules (vcpu_state_desc's check), then the limits of this CPU.
 * They are the guest-state checks of VM entry (SDM Vol. 3C 26.3.1), the
 * event-injection checks (26.2.1.3), and the rules by which the
 * instructions that write a register would have refused the value (so that
 * the state is one a guest could have reached). false: err names the field.
 */
bool vcpu_state_check(const struct vcpu_state *state, const struct vcpu_state_limits *limits,
		      struct devstate_error *err);

/* The x86 power-on state (SDM Vol. 3A, 9.1.1, table 9-1). */
void vcpu_state_power_on(struct vcpu_state *state);

/* A boot mode's register state (vmm/guest_boot.h) over the power-on state. */
void vcpu_state_from_boot(const struct vcpu_boot_state *boot, struct vcpu_state *state);

#endif
