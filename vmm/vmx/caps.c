#include "vmm/vmx/caps.h"

#include "vmm/vmx/vmx_defs.h"
#include "lib/fmt.h"

void vmx_caps_decode(const struct vmx_msrs *m, struct vmx_caps *c)
{
	*c = (struct vmx_caps){ 0 };
	c->revision_id = (uint32_t)(m->basic & VMX_BASIC_REVISION_MASK);
	c->region_size = (uint32_t)((m->basic >> VMX_BASIC_REGION_SIZE_SHIFT) &
				    VMX_BASIC_REGION_SIZE_MASK);
	c->vmcs_memtype = (unsigned)((m->basic >> VMX_BASIC_MEMTYPE_SHIFT) &
				     VMX_BASIC_MEMTYPE_MASK);
	c->true_controls = m->basic & VMX_BASIC_TRUE_CTLS;
	c->addr_limited_32bit = m->basic & VMX_BASIC_PHYS_ADDR_32BIT;

	c->preemption_timer = VMX_CTL_ALLOWED1(m->pinbased) & PIN_CTL_PREEMPTION_TIMER;
	c->preemption_timer_shift = (unsigned)(m->misc & VMX_MISC_PREEMPTION_RATE_MASK);
	c->save_preemption_timer = VMX_CTL_ALLOWED1(m->exit) & EXIT_CTL_SAVE_PREEMPTION_TIMER;
	c->virtual_nmis = (VMX_CTL_ALLOWED1(m->pinbased) & PIN_CTL_VIRTUAL_NMIS) &&
			  (VMX_CTL_ALLOWED1(m->procbased) & PROC_CTL_NMI_WINDOW);

	/*
	 * IA32_VMX_PROCBASED_CTLS2 only exists when the primary controls allow
	 * "activate secondary controls" (SDM A.3.3); the caller passes 0 then.
	 */
	c->secondary_controls = VMX_CTL_ALLOWED1(m->procbased) & PROC_CTL_SECONDARY_CONTROLS;
	uint32_t proc2 = c->secondary_controls ? VMX_CTL_ALLOWED1(m->procbased2) : 0;
	c->ept = proc2 & PROC2_CTL_ENABLE_EPT;
	c->vpid = proc2 & PROC2_CTL_ENABLE_VPID;
	c->unrestricted_guest = proc2 & PROC2_CTL_UNRESTRICTED_GUEST;
	c->rdtscp = proc2 & PROC2_CTL_ENABLE_RDTSCP;
	c->xsaves = proc2 & PROC2_CTL_ENABLE_XSAVES;
	c->apic_virtualization = (VMX_CTL_ALLOWED1(m->procbased) & PROC_CTL_USE_TPR_SHADOW) &&
				 (proc2 & PROC2_CTL_VIRTUALIZE_APIC_ACCESSES) &&
				 (proc2 & PROC2_CTL_VIRTUAL_INTERRUPT_DELIVERY);
	c->apic_register_virtualization =
		c->apic_virtualization && (proc2 & PROC2_CTL_APIC_REGISTER_VIRTUALIZATION);

	/* IA32_VMX_EPT_VPID_CAP exists only if EPT or VPID can be enabled (SDM A.10). */
	uint64_t ev = (c->ept || c->vpid) ? m->ept_vpid : 0;
	c->ept_walk4 = ev & EPT_CAP_WALK_LENGTH_4;
	c->ept_wb = ev & EPT_CAP_MEMTYPE_WB;
	c->ept_2m = ev & EPT_CAP_PAGE_2M;
	c->ept_1g = ev & EPT_CAP_PAGE_1G;
	c->ept_ad = ev & EPT_CAP_ACCESSED_DIRTY;
	c->invept = ev & EPT_CAP_INVEPT;
	c->invept_single = ev & EPT_CAP_INVEPT_SINGLE;
	c->invvpid = ev & EPT_CAP_INVVPID;
}

const char *vmx_caps_missing(const struct vmx_caps *c)
{
	/*
	 * Guests are isolated by EPT alone and started in real mode or long
	 * mode without a software real-mode emulator, so EPT with a 4-level
	 * walk, write-back EPT structures and unrestricted guest are required.
	 * Single-context INVEPT drops one VM's stale translations. The
	 * preemption timer is what stops a guest that never exits from
	 * starving the others. The TRUE_* control MSRs let CR3 accesses run
	 * without exits (the old MSRs force CR3-load/store exiting, SDM A.2).
	 */
	if (c->addr_limited_32bit)
		return "64-bit VMX physical addresses (IA32_VMX_BASIC[48] is set)";
	if (c->vmcs_memtype != MEMTYPE_WB)
		return "write-back VMCS memory type (IA32_VMX_BASIC[53:50])";
	if (!c->secondary_controls)
		return "secondary processor-based controls";
	if (!c->ept)
		return "EPT (extended page tables)";
	if (!c->ept_walk4 || !c->ept_wb)
		return "4-level write-back EPT";
	if (!c->invept || !c->invept_single)
		return "single-context INVEPT";
	if (!c->unrestricted_guest)
		return "unrestricted guest";
	if (!c->preemption_timer)
		return "the VMX preemption timer";
	if (!c->true_controls)
		return "the TRUE_* VMX control MSRs (IA32_VMX_BASIC[55])";
	return NULL;
}

static const char *yes_no(bool b)
{
	return b ? "yes" : "no";
}

void vmx_caps_describe(const struct vmx_caps *c, char *buf, size_t size)
{
	fmt_snprintf(buf, size,
		     "EPT=%s (2M=%s 1G=%s A/D=%s INVEPT=%s) VPID=%s (INVVPID=%s) "
		     "unrestricted-guest=%s preemption-timer=%s (TSC/%u) APIC-virtualization=%s "
		     "(registers=%s)",
		     yes_no(c->ept), yes_no(c->ept_2m), yes_no(c->ept_1g),
		     yes_no(c->ept_ad), yes_no(c->invept), yes_no(c->vpid),
		     yes_no(c->invvpid), yes_no(c->unrestricted_guest),
		     yes_no(c->preemption_timer), 1U << c->preemption_timer_shift,
		     yes_no(c->apic_virtualization), yes_no(c->apic_register_virtualization));
}

enum feature_control_plan feature_control_plan(uint64_t msr, uint64_t *new_value)
{
	/*
	 * SDM 23.7: VMXON outside SMX faults unless the lock bit and the
	 * "enable VMX outside SMX" bit are both set. Once locked the MSR cannot
	 * change until reset, so a locked-off MSR is the firmware's final word.
	 */
	if (msr & FEATURE_CONTROL_LOCK) {
		*new_value = msr;
		return (msr & FEATURE_CONTROL_VMX_OUTSIDE_SMX) ? FEATURE_CONTROL_READY
							       : FEATURE_CONTROL_LOCKED_OFF;
	}
	*new_value = msr | FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX;
	return FEATURE_CONTROL_WRITE;
}
