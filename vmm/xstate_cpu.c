#include "vmm/xstate.h"

#include "vmm/log.h"
#include "vmm/vm.h"
#include "x86/cpu.h"
#include "x86/msr.h"

static struct xstate_layout host_layout;

void xstate_cpu_init(uint32_t allowed)
{
	struct cpuid_result leaf_d[XSTATE_COMPONENTS] = { { 0 } };
	bool host_xsave = cpuid(1, 0).ecx & CPUID_01_ECX_XSAVE;

	if (host_xsave) {
		write_cr4(read_cr4() | CR4_OSXSAVE);
		for (uint32_t i = 0; i < XSTATE_COMPONENTS; i++) {
			struct cpuid_regs r = cpuid(0xd, i);
			leaf_d[i] = (struct cpuid_result){ r.eax, r.ebx, r.ecx, r.edx };
		}
	}
	xstate_layout_init(&host_layout, host_xsave, leaf_d, allowed);
	if (!host_layout.components) {
		log_info("xstate: no XSAVE; guests get x87 and SSE state (FXSAVE)");
		return;
	}
	/*
	 * Supervisor components stay off: IA32_XSS is never switched, so a
	 * guest's XSAVES saves exactly what its XCR0 enables.
	 */
	if (leaf_d[1].eax & CPUID_0D_1_XSAVES)
		wrmsr(MSR_IA32_XSS, 0);
	xsetbv(0, host_layout.components);
	log_info("xstate: guests may enable XCR0 0x%llx (XSAVE area %u bytes), instructions%s%s%s",
		 (unsigned long long)host_layout.components,
		 xstate_standard_size(&host_layout, host_layout.components),
		 (host_layout.instructions & CPUID_0D_1_XSAVEOPT) ? " XSAVEOPT" : "",
		 (host_layout.instructions & CPUID_0D_1_XSAVEC) ? " XSAVEC" : "",
		 (host_layout.instructions & CPUID_0D_1_XSAVES) ? " XSAVES" : "");
}

const struct xstate_layout *xstate_host_layout(void)
{
	return &host_layout;
}

/* XSETBV serializes: only when XCR0 changes. */
static void set_xcr0(uint64_t value)
{
	if (xgetbv(0) != value)
		xsetbv(0, value);
}

/* XSAVE/XRSTOR take the components in EDX:EAX, of those XCR0 enables. */
static void save_area(uint8_t *area)
{
	uint64_t all = host_layout.components;

	__asm__ volatile("xsave64 %0"
			 : "=m"(*(uint8_t(*)[XSAVE_AREA_SIZE])area)
			 : "a"((uint32_t)all), "d"((uint32_t)(all >> 32))
			 : "memory");
}

static void load_area(const uint8_t *area)
{
	uint64_t all = host_layout.components;

	__asm__ volatile("xrstor64 %0"
			 :
			 : "m"(*(const uint8_t(*)[XSAVE_AREA_SIZE])area), "a"((uint32_t)all),
			   "d"((uint32_t)(all >> 32))
			 : "memory");
}

void xstate_switch(struct vcpu *save, struct vcpu *load)
{
	if (!host_layout.components) {
		if (save)
			__asm__ volatile("fxsave64 %0" : "=m"(*(uint8_t(*)[XSAVE_LEGACY_SIZE])save->xsave));
		__asm__ volatile("fxrstor64 %0" : : "m"(*(const uint8_t(*)[XSAVE_LEGACY_SIZE])load->xsave));
		return;
	}
	set_xcr0(host_layout.components);
	if (save)
		save_area(save->xsave);
	load_area(load->xsave);
	set_xcr0(load->xcr0);
}

void xstate_save(struct vcpu *vcpu)
{
	if (!host_layout.components) {
		__asm__ volatile("fxsave64 %0" : "=m"(*(uint8_t(*)[XSAVE_LEGACY_SIZE])vcpu->xsave));
		return;
	}
	set_xcr0(host_layout.components);
	save_area(vcpu->xsave);
	set_xcr0(vcpu->xcr0);
}

int xstate_set_xcr0(struct vcpu *vcpu, uint64_t value)
{
	if (!xstate_xcr0_valid(value, host_layout.components))
		return -1;
	vcpu->xcr0 = value;
	xsetbv(0, value);
	return 0;
}
