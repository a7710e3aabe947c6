/*
 * Intel VT-x backend of the vendor interface (vmm/virt.h): detection and
 * VMXON (SDM Vol. 3C, 23.6-23.8).
 */
#include "vmm/virt.h"
#include "vmm/vmx/vmx.h"

#include "lib/fmt.h"
#include "vmm/log.h"
#include "vmm/page_alloc.h"
#include "vmm/percpu.h"
#include "vmm/vmx/caps.h"
#include "vmm/xstate.h"
#include "x86/cpu.h"
#include "x86/msr.h"
#include "vmm/vmx/vmx_defs.h"

#include <string.h>

struct vmx_caps vmx_host_caps;
struct vmx_msrs vmx_host_msrs;

static void cpu_vendor(char out[13])
{
	struct cpuid_regs r = cpuid(0, 0);

	memcpy(out, &r.ebx, 4);
	memcpy(out + 4, &r.edx, 4);
	memcpy(out + 8, &r.ecx, 4);
	out[12] = '\0';
}

static void read_vmx_msrs(struct vmx_msrs *m)
{
	*m = (struct vmx_msrs){ 0 };
	m->basic = rdmsr(MSR_IA32_VMX_BASIC);
	/*
	 * With IA32_VMX_BASIC[55] set the TRUE_* MSRs report the real
	 * allowed-0 settings of the default-1 controls (SDM A.2).
	 */
	bool true_ctls = m->basic & VMX_BASIC_TRUE_CTLS;
	m->pinbased = rdmsr(true_ctls ? MSR_IA32_VMX_TRUE_PINBASED_CTLS
				      : MSR_IA32_VMX_PINBASED_CTLS);
	m->procbased = rdmsr(true_ctls ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS
				       : MSR_IA32_VMX_PROCBASED_CTLS);
	m->exit = rdmsr(true_ctls ? MSR_IA32_VMX_TRUE_EXIT_CTLS : MSR_IA32_VMX_EXIT_CTLS);
	m->entry = rdmsr(true_ctls ? MSR_IA32_VMX_TRUE_ENTRY_CTLS : MSR_IA32_VMX_ENTRY_CTLS);
	m->misc = rdmsr(MSR_IA32_VMX_MISC);
	m->cr0_fixed0 = rdmsr(MSR_IA32_VMX_CR0_FIXED0);
	m->cr0_fixed1 = rdmsr(MSR_IA32_VMX_CR0_FIXED1);
	m->cr4_fixed0 = rdmsr(MSR_IA32_VMX_CR4_FIXED0);
	m->cr4_fixed1 = rdmsr(MSR_IA32_VMX_CR4_FIXED1);
	/* These two MSRs exist only when the controls that report them do. */
	if (VMX_CTL_ALLOWED1(m->procbased) & PROC_CTL_SECONDARY_CONTROLS) {
		m->procbased2 = rdmsr(MSR_IA32_VMX_PROCBASED_CTLS2);
		if (VMX_CTL_ALLOWED1(m->procbased2) & (PROC2_CTL_ENABLE_EPT | PROC2_CTL_ENABLE_VPID))
			m->ept_vpid = rdmsr(MSR_IA32_VMX_EPT_VPID_CAP);
	}
}

int virt_probe(char *why, size_t why_size)
{
	char vendor[13];

	cpu_vendor(vendor);
	if (!(cpuid(1, 0).ecx & CPUID_1_ECX_VMX)) {
		bool svm = cpuid(0x80000000, 0).eax >= 0x80000001 &&
			   (cpuid(0x80000001, 0).ecx & CPUID_80000001_ECX_SVM);
		fmt_snprintf(why, why_size,
			     "this CPU (%s) has no Intel VT-x (CPUID.1:ECX.VMX=0)%s. "
			     "Enable VT-x in the firmware setup; under a hypervisor, "
			     "expose nested VMX to this VM",
			     vendor,
			     svm ? "; it offers AMD-V (SVM), which this build does not support"
				 : "");
		return -1;
	}

	uint64_t fc = rdmsr(MSR_IA32_FEATURE_CONTROL), unused;
	if (feature_control_plan(fc, &unused) == FEATURE_CONTROL_LOCKED_OFF) {
		fmt_snprintf(why, why_size,
			     "VT-x is disabled and locked by the firmware "
			     "(IA32_FEATURE_CONTROL=0x%llx): enable Intel Virtualization "
			     "Technology in the firmware setup and power-cycle",
			     (unsigned long long)fc);
		return -1;
	}

	struct vmx_msrs msrs;
	struct vmx_caps caps;
	read_vmx_msrs(&msrs);
	vmx_caps_decode(&msrs, &caps);
	const char *missing = vmx_caps_missing(&caps);
	if (missing) {
		fmt_snprintf(why, why_size,
			     "this CPU's VT-x lacks %s, which the hypervisor requires", missing);
		return -1;
	}
	return 0;
}

static bool vmxon(uint64_t region_pa)
{
	uint8_t failed;

	/* VMfailInvalid sets CF, VMfailValid sets ZF (SDM 30.2). */
	__asm__ volatile("vmxon %1; setna %0"
			 : "=r"(failed)
			 : "m"(region_pa)
			 : "cc", "memory");
	return !failed;
}

int virt_enable_cpu(struct page_alloc *pa, const struct virt_options *options, char *why,
		    size_t why_size)
{
	struct vmx_msrs msrs;
	struct vmx_caps caps;
	char line[256];

	read_vmx_msrs(&msrs);
	vmx_caps_decode(&msrs, &caps);
	/* apic_virtualization = off: every local APIC access is emulated, as without it. */
	caps.apic_virtualization &= options->apic_virtualization;
	caps.apic_register_virtualization &= options->apic_virtualization;
	vmx_host_msrs = msrs;
	vmx_host_caps = caps;
	log_info("vmx: BASIC=%016llx PINBASED=%016llx PROCBASED=%016llx PROCBASED2=%016llx",
		 (unsigned long long)msrs.basic, (unsigned long long)msrs.pinbased,
		 (unsigned long long)msrs.procbased, (unsigned long long)msrs.procbased2);
	log_info("vmx: EXIT=%016llx ENTRY=%016llx MISC=%016llx EPT_VPID_CAP=%016llx",
		 (unsigned long long)msrs.exit, (unsigned long long)msrs.entry,
		 (unsigned long long)msrs.misc, (unsigned long long)msrs.ept_vpid);

	uint64_t fc = rdmsr(MSR_IA32_FEATURE_CONTROL), fc_new;
	switch (feature_control_plan(fc, &fc_new)) {
	case FEATURE_CONTROL_READY:
		break;
	case FEATURE_CONTROL_WRITE:
		wrmsr(MSR_IA32_FEATURE_CONTROL, fc_new);
		log_info("vmx: IA32_FEATURE_CONTROL was unlocked: enabled VMX outside SMX "
			 "and locked it (0x%llx)", (unsigned long long)fc_new);
		break;
	case FEATURE_CONTROL_LOCKED_OFF:
		fmt_snprintf(why, why_size, "VT-x was locked off (IA32_FEATURE_CONTROL=0x%llx)",
			     (unsigned long long)fc);
		return -1;
	}

	/* VMXON requires CR0/CR4 to honour the fixed bits (SDM 23.8, A.7, A.8). */
	write_cr0((read_cr0() | msrs.cr0_fixed0) & msrs.cr0_fixed1);
	write_cr4(((read_cr4() | msrs.cr4_fixed0) & msrs.cr4_fixed1) | CR4_VMXE);
	/* Before any VMCS takes CR4 as its host CR4: OSXSAVE is set there. */
	uint32_t allowed = CPUID_0D_1_XSAVEOPT | CPUID_0D_1_XGETBV1;
	if (options->xsave_compacted)
		allowed |= CPUID_0D_1_XSAVEC | (caps.xsaves ? CPUID_0D_1_XSAVES : 0);
	xstate_cpu_init(allowed);

	uint64_t region;
	if (page_alloc_alloc(pa, 1, 1, &region)) {
		fmt_snprintf(why, why_size, "no memory for the VMXON region");
		return -1;
	}
	memset((void *)(uintptr_t)region, 0, PAGE_SIZE);
	((struct vmx_region_header *)(uintptr_t)region)->revision_id = caps.revision_id;
	if (!vmxon(region)) {
		page_alloc_free(pa, region, 1);
		fmt_snprintf(why, why_size, "VMXON failed (region at 0x%llx, revision 0x%x)",
			     (unsigned long long)region, caps.revision_id);
		return -1;
	}
	this_cpu()->virt_region = region;

	if (vmx_init_bitmaps(pa)) {
		fmt_snprintf(why, why_size, "no memory for the I/O and MSR bitmaps");
		return -1;
	}
	vmx_caps_describe(&caps, line, sizeof(line));
	log_info("vmx: capabilities: %s", line);
	log_info("vmx: VMXON ok: VMX root operation on CPU 0 (VMCS revision 0x%x, %u-byte "
		 "regions%s)",
		 caps.revision_id, caps.region_size,
		 caps.true_controls ? ", true controls" : "");
	return 0;
}
