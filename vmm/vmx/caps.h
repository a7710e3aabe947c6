/*
 * Decoding of the VMX capability MSRs and the IA32_FEATURE_CONTROL policy.
 * Pure functions over raw MSR values, so the decisions that differ between
 * real servers, nested hypervisors and emulators are unit-tested on the host.
 */
#ifndef VMM_VMX_CAPS_H
#define VMM_VMX_CAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The raw capability MSRs, as read by the VMX backend. */
struct vmx_msrs {
	uint64_t basic;
	uint64_t pinbased;
	uint64_t procbased;
	uint64_t procbased2; /* 0 when secondary controls are not allowed */
	uint64_t exit;
	uint64_t entry;
	uint64_t misc;
	uint64_t ept_vpid; /* 0 when neither EPT nor VPID is allowed */
	uint64_t cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
};

struct vmx_caps {
	uint32_t revision_id;
	uint32_t region_size;
	unsigned vmcs_memtype;
	bool true_controls;
	bool addr_limited_32bit;
	bool secondary_controls;
	bool ept;
	bool vpid;
	bool unrestricted_guest;
	bool rdtscp; /* "enable RDTSCP": RDTSCP and RDPID run in the guest (else #UD) */
	bool xsaves; /* "enable XSAVES/XRSTORS": they run in the guest (else #UD) */
	bool virtual_nmis; /* with NMI-window exiting: guests get NMIs of their own (SDM 25.3, 26.7.1) */
	bool preemption_timer;
	unsigned preemption_timer_shift; /* timer counts down every 2^shift TSC ticks */
	bool ept_walk4, ept_wb, ept_2m, ept_1g, ept_ad, invept, invept_single, invvpid;
	bool save_preemption_timer; /* VM exits can keep the timer's remainder */
	/*
	 * TPR shadow, "virtualize APIC accesses" and "virtual-interrupt
	 * delivery" together: the CPU delivers a guest's local APIC
	 * interrupts and takes its EOIs without exits (SDM chapter 29).
	 */
	bool apic_virtualization;
	/* With it: reads of most APIC registers come from the page too (SDM 29.4.2). */
	bool apic_register_virtualization;
};

void vmx_caps_decode(const struct vmx_msrs *msrs, struct vmx_caps *caps);

/*
 * What this hypervisor cannot run without, or NULL when nothing is missing.
 * The string names the missing feature for the console message.
 */
const char *vmx_caps_missing(const struct vmx_caps *caps);

/* One line that lists every capability we use, for the boot report. */
void vmx_caps_describe(const struct vmx_caps *caps, char *buf, size_t size);

enum feature_control_plan {
	FEATURE_CONTROL_READY,     /* locked with VMX outside SMX allowed */
	FEATURE_CONTROL_WRITE,     /* unlocked: write *new_value to enable and lock */
	FEATURE_CONTROL_LOCKED_OFF /* firmware locked it with VMX disabled */
};

enum feature_control_plan feature_control_plan(uint64_t msr, uint64_t *new_value);

#endif
