#include "vmm/vcpu.h"

#include "vmm/clock.h"
#include "vmm/cpuid_policy.h"
#include "abi/hypercall.h"
#include "vmm/log.h"
#include "vmm/speculation.h"
#include "vmm/virt.h"
#include "vmm/xstate.h"
#include "x86/cpu.h"
#include "x86/msr.h"

static uint64_t *gpr_slot(struct guest_regs *r, unsigned index)
{
	uint64_t *const slots[16] = { &r->rax, &r->rcx, &r->rdx, &r->rbx, NULL,   &r->rbp,
				      &r->rsi, &r->rdi, &r->r8,  &r->r9,  &r->r10, &r->r11,
				      &r->r12, &r->r13, &r->r14, &r->r15 };
	return slots[index & 15];
}

uint64_t vcpu_read_gpr(struct vcpu *vcpu, unsigned index)
{
	return (index & 15) == 4 ? virt_guest_reg(vcpu, GUEST_REG_RSP)
				 : *gpr_slot(&vcpu->regs, index);
}

void vcpu_write_gpr(struct vcpu *vcpu, unsigned index, uint64_t value)
{
	if ((index & 15) == 4)
		virt_set_guest_reg(vcpu, GUEST_REG_RSP, value);
	else
		*gpr_slot(&vcpu->regs, index) = value;
}

/* CPUID serializes and costs hundreds of cycles: ask the host once. */
static uint32_t host_max_basic_leaf(void)
{
	static uint32_t max;

	if (!max)
		max = cpuid(0, 0).eax;
	return max;
}

static bool apic_enabled(struct vcpu *vcpu)
{
	uint64_t base;

	return platform_rdmsr(vcpu->vm, MSR_IA32_APIC_BASE, &base) && (base & LAPIC_BASE_EN);
}

/*
 * What the guest's own MSRs change in CPUID: IA32_MISC_ENABLE's limit-CPUID
 * and XD-disable bits (SDM Vol. 4, table 2-2) and IA32_APIC_BASE.EN (a
 * globally disabled APIC is absent from CPUID.01H:EDX, SDM 11.4.3); and
 * RDTSCP/RDPID only where the guest has IA32_TSC_AUX.
 */
__attribute__((noinline)) static struct cpuid_result guest_msr_view(struct vcpu *vcpu, uint32_t leaf,
					  struct cpuid_result r)
{
	switch (leaf) {
	case 0:
		if (vcpu->misc_enable & MISC_ENABLE_LIMIT_CPUID)
			r.eax = 2;
		break;
	case 1:
		if (!apic_enabled(vcpu))
			r.edx &= ~CPUID_01_EDX_APIC;
		break;
	case 7:
		if (!virt_guest_has_tsc_aux())
			r.ecx &= ~CPUID_07_ECX_RDPID;
		break;
	case 0x80000001U:
		if (vcpu->misc_enable & MISC_ENABLE_XD_DISABLE)
			r.edx &= ~CPUID_80000001_EDX_NX;
		if (!virt_guest_has_tsc_aux())
			r.edx &= ~CPUID_80000001_EDX_RDTSCP;
		break;
	}
	return r;
}

/*
 * The basic leaves whose answer is not the policy's alone: leaf 15H, the
 * leaves the policy raised the range over, and what the XSAVE components
 * this host offers add for this vCPU's XCR0 and CR4 (leaves 1, 7, 0DH).
 * Out of line, asking the host again rather than keeping its answer live
 * across the policy: leaf 0 and the hypervisor's leaves, the frequent
 * ones, pay one compare (cpuid_exit_root_instr).
 */
__attribute__((noinline)) static struct cpuid_result basic_leaf_view(struct vcpu *vcpu,
								      uint32_t leaf,
								      uint32_t subleaf,
								      struct cpuid_result r)
{
	if (leaf == CPUID_TSC_LEAF)
		return cpuid_tsc_leaf(clock_tsc_hz(), PLATFORM_LAPIC_HZ);
	if (leaf > host_max_basic_leaf())
		return (struct cpuid_result){ 0 };
	if (leaf != 1 && leaf != 7 && leaf != 0xd)
		return r;
	struct cpuid_regs h = cpuid(leaf, subleaf);
	bool osxsave = leaf == 1 && (virt_guest_reg(vcpu, GUEST_REG_CR4) & CR4_OSXSAVE);
	return xstate_cpuid(xstate_host_layout(), leaf, subleaf,
			    (struct cpuid_result){ h.eax, h.ebx, h.ecx, h.edx }, r, vcpu->xcr0, osxsave);
}

/*
 * The policy's answers that can be kept (cpuid_policy_slot), each from the
 * first exit that asked: a host CPUID serializes and costs hundreds of
 * cycles, and nested under another hypervisor it is an exit of its own.
 * The answer is stored before its flag, and x86 keeps stores in order.
 */
static struct cpuid_result policy_answers[CPUID_POLICY_SLOTS];
static volatile bool policy_answered[CPUID_POLICY_SLOTS];

/* Out of line, so that a kept answer's path saves no registers for CPUID. */
__attribute__((noinline)) static struct cpuid_result ask_host(uint32_t leaf, uint32_t subleaf,
							       int slot)
{
	struct cpuid_regs h = cpuid(leaf, subleaf);
	struct cpuid_result r =
		cpuid_policy(leaf, subleaf, (struct cpuid_result){ h.eax, h.ebx, h.ecx, h.edx });

	if (slot >= 0) {
		policy_answers[slot] = r;
		__asm__ volatile("" ::: "memory"); /* the compiler keeps the order too */
		policy_answered[slot] = true;
	}
	return r;
}

static struct cpuid_result policy_answer(uint32_t leaf, uint32_t subleaf)
{
	int slot = cpuid_policy_slot(leaf);

	if (slot >= 0 && policy_answered[slot])
		return policy_answers[slot];
	return ask_host(leaf, subleaf, slot);
}

static inline void set_cpuid_registers(struct vcpu *vcpu, struct cpuid_result r)
{
	vcpu->regs.rax = r.eax;
	vcpu->regs.rbx = r.ebx;
	vcpu->regs.rcx = r.ecx;
	vcpu->regs.rdx = r.edx;
}

/* Leaves 1 to 3FFFFFFFH may differ per vCPU (basic_leaf_view): one compare. */
static inline bool basic_leaf_viewed(uint32_t leaf)
{
	return leaf - 1 < CPUID_HV_BASE - 1;
}

__attribute__((noinline)) static void viewed_cpuid(struct vcpu *vcpu, uint32_t leaf)
{
	uint32_t subleaf = (uint32_t)vcpu->regs.rcx;
	struct cpuid_result r = policy_answer(leaf, subleaf);

	if (basic_leaf_viewed(leaf))
		r = basic_leaf_view(vcpu, leaf, subleaf, r);
	if (vcpu->cpuid_edited)
		r = guest_msr_view(vcpu, leaf, r);
	set_cpuid_registers(vcpu, r);
}

void vcpu_cpuid(struct vcpu *vcpu)
{
	uint32_t leaf = (uint32_t)vcpu->regs.rax;
	int slot = cpuid_policy_slot(leaf);

	/*
	 * The common exit: a kept answer no view of this vCPU changes (leaf 0,
	 * the extended and the hypervisor's leaves, while the MSRs edit none),
	 * without a call or a saved register.
	 */
	if (slot >= 0 && policy_answered[slot] && !basic_leaf_viewed(leaf) && !vcpu->cpuid_edited) {
		set_cpuid_registers(vcpu, policy_answers[slot]);
		return;
	}
	viewed_cpuid(vcpu, leaf);
}

#define FEATURE_CONTROL_LOCKED 1ULL

/*
 * IA32_MISC_ENABLE: besides the bits a guest may change, the ones it may write but
 * that stay as CPUID and the VM have them (no thermal control, PMU,
 * Enhanced SpeedStep, MONITOR or xTPR), and the read-only ones that say
 * no BTS and no PEBS. Any other bit is reserved: #GP.
 */
#define MISC_ENABLE_IGNORED_BITS                                                   \
	(MISC_ENABLE_AUTO_THERMAL | MISC_ENABLE_PERF_MON | MISC_ENABLE_BTS_UNAVAILABLE | \
	 MISC_ENABLE_PEBS_UNAVAILABLE | MISC_ENABLE_EIST | MISC_ENABLE_MONITOR |         \
	 MISC_ENABLE_XTPR_DISABLE)
#define MISC_ENABLE_READ_ONLY_SET (MISC_ENABLE_BTS_UNAVAILABLE | MISC_ENABLE_PEBS_UNAVAILABLE)

static bool host_has_nx(void)
{
	static int nx = -1;

	if (nx < 0)
		nx = (cpuid(0x80000001U, 0).edx & CPUID_80000001_EDX_NX) != 0;
	return nx;
}

/*
 * Whether guest_msr_view has anything to change. The MSRs it reads change
 * only through vcpu_wrmsr and a loaded state (after the platform's, whose
 * IA32_APIC_BASE it reads here).
 */
static void note_cpuid_edits(struct vcpu *vcpu)
{
	vcpu->cpuid_edited = (vcpu->misc_enable & (MISC_ENABLE_LIMIT_CPUID | MISC_ENABLE_XD_DISABLE)) ||
			     !apic_enabled(vcpu) || !virt_guest_has_tsc_aux();
}

void vcpu_set_misc_enable(struct vcpu *vcpu, uint64_t value)
{
	vcpu->misc_enable = value & VCPU_MISC_ENABLE_BITS;
	note_cpuid_edits(vcpu);
}

static int write_misc_enable(struct vcpu *vcpu, uint64_t value)
{
	if (value & ~(VCPU_MISC_ENABLE_BITS | MISC_ENABLE_IGNORED_BITS))
		return -1;
	/*
	 * XD disable exists where the CPU has NX; with EFER.NXE set the
	 * guest's page tables rely on NX, so it must clear NXE first.
	 */
	if ((value & MISC_ENABLE_XD_DISABLE) &&
	    (!host_has_nx() || (virt_guest_reg(vcpu, GUEST_REG_EFER) & EFER_NXE)))
		return -1;
	vcpu_set_misc_enable(vcpu, value);
	return 0;
}

/* MSRs that live in hardware guest state, by number. */
static const struct {
	uint32_t msr;
	enum guest_reg reg;
	bool address; /* must be canonical, or VM entry would fail */
} hardware_msrs[] = {
	{ MSR_IA32_SYSENTER_CS, GUEST_REG_SYSENTER_CS, false },
	{ MSR_IA32_SYSENTER_ESP, GUEST_REG_SYSENTER_ESP, true },
	{ MSR_IA32_SYSENTER_EIP, GUEST_REG_SYSENTER_EIP, true },
	{ MSR_IA32_STAR, GUEST_REG_STAR, false },
	{ MSR_IA32_LSTAR, GUEST_REG_LSTAR, true },
	{ MSR_IA32_CSTAR, GUEST_REG_CSTAR, true },
	{ MSR_IA32_FMASK, GUEST_REG_SFMASK, false },
	{ MSR_IA32_FS_BASE, GUEST_REG_FS_BASE, true },
	{ MSR_IA32_GS_BASE, GUEST_REG_GS_BASE, true },
	{ MSR_IA32_KERNEL_GS_BASE, GUEST_REG_KERNEL_GS_BASE, true },
};

static int hardware_msr_index(uint32_t msr)
{
	for (unsigned i = 0; i < sizeof(hardware_msrs) / sizeof(hardware_msrs[0]); i++)
		if (hardware_msrs[i].msr == msr)
			return (int)i;
	return -1;
}

int vcpu_rdmsr(struct vcpu *vcpu, uint32_t msr, uint64_t *value)
{
	int hw = hardware_msr_index(msr);

	if (hw >= 0) {
		*value = virt_guest_reg(vcpu, hardware_msrs[hw].reg);
		return 0;
	}
	if (lapic_is_msr(msr))
		return platform_rdmsr(vcpu->vm, msr, value) ? 0 : -1;
	switch (msr) {
	case MSR_IA32_TIME_STAMP_COUNTER:
		/* The same as the guest's RDTSC: the VM's clock, not the host's. */
		*value = vm_now(vcpu->vm).tsc;
		return 0;
	case MSR_IA32_TSC_ADJUST:
		*value = vcpu->tsc_adjust;
		return 0;
	case MSR_IA32_FEATURE_CONTROL:
		/* Locked with VMX off, as CPUID shows no VMX. */
		*value = FEATURE_CONTROL_LOCKED;
		return 0;
	case MSR_IA32_BIOS_SIGN_ID:
	case MSR_IA32_MTRRCAP:
		*value = 0;
		return 0;
	case MSR_IA32_MISC_ENABLE:
		*value = vcpu->misc_enable | MISC_ENABLE_READ_ONLY_SET;
		return 0;
	case MSR_IA32_PAT:
		*value = virt_guest_reg(vcpu, GUEST_REG_PAT);
		return 0;
	case MSR_IA32_EFER:
		*value = virt_guest_reg(vcpu, GUEST_REG_EFER);
		return 0;
	case MSR_IA32_XSS:
		*value = 0;
		return xstate_offers_xsaves(xstate_host_layout()) ? 0 : -1;
	case MSR_IA32_ARCH_CAPABILITIES:
		/* Read-only: a write is #GP, as on the CPU. */
		*value = speculation.guest_arch_caps;
		return speculation.guest_arch_caps_msr ? 0 : -1;
	default:
		log_debug("vm '%s': RDMSR 0x%x refused (#GP)", vcpu->vm->cfg->name, msr);
		return -1;
	}
}

int vcpu_wrmsr(struct vcpu *vcpu, uint32_t msr, uint64_t value)
{
	int hw = hardware_msr_index(msr);

	if (hw >= 0) {
		if (hardware_msrs[hw].address &&
		    !x86_canonical(value, virt_guest_linear_address_bits()))
			return -1;
		virt_set_guest_reg(vcpu, hardware_msrs[hw].reg, value);
		return 0;
	}
	if (lapic_is_msr(msr)) {
		if (!platform_wrmsr(vcpu->vm, msr, value))
			return -1;
		if (msr == MSR_IA32_APIC_BASE)
			note_cpuid_edits(vcpu);
		return 0;
	}
	switch (msr) {
	case MSR_IA32_PAT:
		if (!x86_pat_valid(value))
			return -1;
		virt_set_guest_reg(vcpu, GUEST_REG_PAT, value);
		return 0;
	case MSR_IA32_EFER: {
		uint64_t old = virt_guest_reg(vcpu, GUEST_REG_EFER);
		if (value & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE))
			return -1;
		/* LMA is the CPU's to set; LME may not change under paging. */
		value = (value & ~EFER_LMA) | (old & EFER_LMA);
		/* NXE is reserved while CPUID shows no NX (SDM Vol. 4, IA32_EFER). */
		if ((value & EFER_NXE) && (vcpu->misc_enable & MISC_ENABLE_XD_DISABLE))
			return -1;
		if ((value ^ old) & EFER_LME && (virt_guest_reg(vcpu, GUEST_REG_CR0) & CR0_PG))
			return -1;
		virt_set_guest_reg(vcpu, GUEST_REG_EFER, value);
		return 0;
	}
	case MSR_IA32_TIME_STAMP_COUNTER:
	case MSR_IA32_TSC_ADJUST: {
		/*
		 * The TSC is writable (SDM 17.17): the guest moves its own
		 * offset, never the host TSC nor its device timers. A write of
		 * either MSR moves the other by the same amount (SDM 17.17.3).
		 */
		uint64_t tsc = vm_now(vcpu->vm).tsc;
		uint64_t delta = msr == MSR_IA32_TSC_ADJUST ? value - vcpu->tsc_adjust : value - tsc;
		vcpu->tsc_adjust += delta;
		vm_set_guest_tsc(vcpu->vm, tsc + delta);
		return 0;
	}
	case MSR_IA32_BIOS_SIGN_ID:
		/* Accepted and ignored: there is no microcode to update. */
		return 0;
	case MSR_IA32_MISC_ENABLE:
		return write_misc_enable(vcpu, value);
	case MSR_IA32_TSC_AUX:
		/* Reads run in the guest; bits 63:32 are reserved (SDM Vol. 4). */
		if (!virt_guest_has_tsc_aux() || (value >> 32))
			return -1;
		virt_set_guest_reg(vcpu, GUEST_REG_TSC_AUX, value);
		return 0;
	case MSR_IA32_XSS:
		/* No supervisor component is offered (CPUID.(0DH,1):ECX/EDX are 0). */
		return xstate_offers_xsaves(xstate_host_layout()) && value == 0 ? 0 : -1;
	default:
		log_debug("vm '%s': WRMSR 0x%x refused (#GP)", vcpu->vm->cfg->name, msr);
		return -1;
	}
}

void vcpu_port_io(struct vcpu *vcpu, uint16_t port, unsigned size, bool in, uint32_t *value)
{
	if (!port_bus_access(&vcpu->vm->ports, port, size, in, value))
		log_debug("vm '%s': %s port 0x%x (%u bytes): no device", vcpu->vm->cfg->name,
			  in ? "IN from" : "OUT to", port, size);
}
