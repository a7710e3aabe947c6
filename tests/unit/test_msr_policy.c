/*
 * The MSR policy of vmm/vcpu.c: which MSRs a guest can read and write,
 * what it sees, and which values are refused with #GP before they could
 * reach hardware guest state (where a bad one would fail VM entry).
 * The backend's register file and the LAPIC's MSRs are fakes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "vmm/clock.h"
#include "vmm/cpuid_policy.h"
#include "vmm/log.h"
#include "vmm/vcpu.h"
#include "vmm/virt.h"
#include "x86/cpu.h"
#include "x86/msr.h"

static uint64_t guest_reg[GUEST_REG_COUNT];
static uint32_t lapic_msr_seen;
/* The VM's clock (vmm/vm_clock.c), reduced to the guest TSC it answers. */
static uint64_t guest_tsc;

struct vm_time vm_now(const struct vm *vm)
{
	(void)vm;
	return (struct vm_time){ .ns = 0, .tsc = guest_tsc };
}

void vm_set_guest_tsc(struct vm *vm, uint64_t value)
{
	(void)vm;
	guest_tsc = value;
}

uint64_t virt_guest_reg(struct vcpu *vcpu, enum guest_reg reg)
{
	(void)vcpu;
	return guest_reg[reg];
}

void virt_set_guest_reg(struct vcpu *vcpu, enum guest_reg reg, uint64_t value)
{
	(void)vcpu;
	guest_reg[reg] = value;
}

static uint64_t lapic_msr_value;

bool platform_rdmsr(struct vm *vm, uint32_t msr, uint64_t *value)
{
	(void)vm;
	lapic_msr_seen = msr;
	*value = lapic_msr_value;
	return true;
}

bool platform_wrmsr(struct vm *vm, uint32_t msr, uint64_t value)
{
	(void)vm;
	lapic_msr_seen = msr;
	lapic_msr_value = value;
	return true;
}

/* Whether the backend gives guests IA32_TSC_AUX (RDTSCP, RDPID). */
static bool tsc_aux = true;
bool virt_guest_has_tsc_aux(void)
{
	return tsc_aux;
}

/* The CPU's linear-address width: 48, or 57 with 5-level paging. */
static unsigned linear_bits = 48;
unsigned virt_guest_linear_address_bits(void)
{
	return linear_bits;
}

/* What the host offers of XSAVE: a fake layout, x87, SSE and AVX at their usual offsets. */
static struct xstate_layout xstate;
const struct xstate_layout *xstate_host_layout(void)
{
	return &xstate;
}

static void offer_xsave(bool on)
{
	struct cpuid_result leaf_d[XSTATE_COMPONENTS] = {
		[0] = { .eax = (uint32_t)(XSTATE_X87 | XSTATE_SSE | XSTATE_AVX) },
		[1] = { .eax = CPUID_0D_1_XSAVEOPT | CPUID_0D_1_XSAVES },
		[2] = { .eax = 256, .ebx = 576 },
	};
	xstate_layout_init(&xstate, on, leaf_d, ~0U);
}

/* Not reached by the MSR paths; the linker needs them for vcpu.c's CPUID and logging. */
void log_printf(enum log_level level, const char *format, ...)
{
	(void)level;
	(void)format;
}
uint64_t clock_tsc_hz(void) { return 1000000000; }

static struct cfg_vm cfg = { .name = "policy" };
static struct vm vm = { .cfg = &cfg };

static int setup(void **state)
{
	(void)state;
	memset(guest_reg, 0, sizeof(guest_reg));
	vm.vcpu.vm = &vm;
	lapic_msr_seen = 0;
	lapic_msr_value = 0xfee00000ULL | LAPIC_BASE_EN | LAPIC_BASE_BSP;
	guest_tsc = 0;
	vcpu_set_misc_enable(&vm.vcpu, MISC_ENABLE_FAST_STRINGS);
	vm.vcpu.xcr0 = XSTATE_X87;
	offer_xsave(true);
	return 0;
}

static void test_hardware_msrs_reach_guest_state(void **state)
{
	static const struct { uint32_t msr; enum guest_reg reg; } map[] = {
		{ MSR_IA32_SYSENTER_CS, GUEST_REG_SYSENTER_CS },
		{ MSR_IA32_SYSENTER_ESP, GUEST_REG_SYSENTER_ESP },
		{ MSR_IA32_SYSENTER_EIP, GUEST_REG_SYSENTER_EIP },
		{ MSR_IA32_STAR, GUEST_REG_STAR },
		{ MSR_IA32_LSTAR, GUEST_REG_LSTAR },
		{ MSR_IA32_CSTAR, GUEST_REG_CSTAR },
		{ MSR_IA32_FMASK, GUEST_REG_SFMASK },
		{ MSR_IA32_FS_BASE, GUEST_REG_FS_BASE },
		{ MSR_IA32_GS_BASE, GUEST_REG_GS_BASE },
		{ MSR_IA32_KERNEL_GS_BASE, GUEST_REG_KERNEL_GS_BASE },
	};
	(void)state;
	for (unsigned i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		uint64_t v = 0xffff800000001000ULL + i, got = 0;
		assert_int_equal(vcpu_wrmsr(&vm.vcpu, map[i].msr, v), 0);
		assert_int_equal(guest_reg[map[i].reg], v);
		assert_int_equal(vcpu_rdmsr(&vm.vcpu, map[i].msr, &got), 0);
		assert_int_equal(got, v);
	}
}

static void test_non_canonical_addresses_are_refused(void **state)
{
	static const uint32_t address_msrs[] = {
		MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP, MSR_IA32_LSTAR, MSR_IA32_CSTAR,
		MSR_IA32_FS_BASE, MSR_IA32_GS_BASE, MSR_IA32_KERNEL_GS_BASE,
	};
	(void)state;
	for (unsigned i = 0; i < sizeof(address_msrs) / sizeof(address_msrs[0]); i++) {
		/* SDM 3.3.7.1: bits 63:47 must all equal bit 47. */
		assert_int_equal(vcpu_wrmsr(&vm.vcpu, address_msrs[i], 0x0000800000000000ULL), -1);
		assert_int_equal(vcpu_wrmsr(&vm.vcpu, address_msrs[i], 0x8000000000000000ULL), -1);
	}
	for (unsigned r = 0; r < GUEST_REG_COUNT; r++)
		assert_int_equal(guest_reg[r], 0);
	/* On a CPU with 57-bit linear addresses, 57 bits count, LA57 on or not. */
	linear_bits = 57;
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_LSTAR, 0x0000800000000000ULL), 0);
	assert_int_equal(guest_reg[GUEST_REG_LSTAR], 0x0000800000000000ULL);
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_LSTAR, 0x0100000000000000ULL), -1);
	linear_bits = 48;
	/* STAR and FMASK hold selectors and flags, not addresses. */
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_STAR, 0x8000000000000000ULL), 0);
}

static void test_pat_types_are_checked(void **state)
{
	(void)state;
	guest_reg[GUEST_REG_PAT] = 0x0007040600070406ULL;
	/* SDM 11.12.2: types 2, 3 and above 7 are reserved, in any of the 8 entries. */
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_PAT, 0x0000000000000002ULL), -1);
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_PAT, 0x0300000000000000ULL), -1);
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_PAT, 0x0000000008000000ULL), -1);
	assert_int_equal(guest_reg[GUEST_REG_PAT], 0x0007040600070406ULL);
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_PAT, 0x0706050401000706ULL), 0);
	uint64_t got;
	assert_int_equal(vcpu_rdmsr(&vm.vcpu, MSR_IA32_PAT, &got), 0);
	assert_int_equal(got, 0x0706050401000706ULL);
}

static void test_efer_rules(void **state)
{
	(void)state;
	/* Reserved bits (anything but SCE, LME, LMA, NXE) are refused. */
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_EFER, EFER_SCE | (1ULL << 12)), -1);
	/* LMA is the CPU's: a write neither sets nor clears it. */
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_EFER, EFER_LME | EFER_LMA), 0);
	assert_int_equal(guest_reg[GUEST_REG_EFER], EFER_LME);
	guest_reg[GUEST_REG_EFER] = EFER_LME | EFER_LMA;
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_EFER, EFER_LME | EFER_NXE), 0);
	assert_int_equal(guest_reg[GUEST_REG_EFER], EFER_LME | EFER_LMA | EFER_NXE);
	/* LME may not change while paging is on (SDM 9.8.5). */
	guest_reg[GUEST_REG_CR0] = CR0_PG | CR0_PE;
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_EFER, EFER_NXE), -1);
	assert_int_equal(guest_reg[GUEST_REG_EFER], EFER_LME | EFER_LMA | EFER_NXE);
}

static void test_fixed_answers(void **state)
{
	uint64_t v;

	(void)state;
	/* Locked with VMX off: CPUID shows no VMX, so nested VMXON must not look possible. */
	assert_int_equal(vcpu_rdmsr(&vm.vcpu, MSR_IA32_FEATURE_CONTROL, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_FEATURE_CONTROL, 5), -1);
	assert_int_equal(vcpu_rdmsr(&vm.vcpu, MSR_IA32_MTRRCAP, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(vcpu_rdmsr(&vm.vcpu, MSR_IA32_BIOS_SIGN_ID, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_BIOS_SIGN_ID, 0), 0);
}

static void test_tsc_is_the_vms_clock(void **state)
{
	uint64_t v;

	(void)state;
	/* RDMSR 0x10 reads what RDTSC reads: the VM's clock, never the host TSC. */
	guest_tsc = 123456789;
	assert_int_equal(vcpu_rdmsr(&vm.vcpu, MSR_IA32_TIME_STAMP_COUNTER, &v), 0);
	assert_int_equal(v, 123456789);
	/* A write moves the VM's offset (SDM 17.17), any 64-bit value. */
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_TIME_STAMP_COUNTER, ~0ull), 0);
	assert_true(guest_tsc == ~0ull);
	for (unsigned r = 0; r < GUEST_REG_COUNT; r++)
		assert_int_equal(guest_reg[r], 0);
}

/* IA32_TSC_ADJUST counts what the guest's writes moved its TSC by (SDM 17.17.3). */
static void test_tsc_adjust_follows_tsc_writes(void **state)
{
	uint64_t v;

	(void)state;
	vm.vcpu.tsc_adjust = 0;
	guest_tsc = 1000;
	assert_int_equal(vcpu_rdmsr(&vm.vcpu, MSR_IA32_TSC_ADJUST, &v), 0);
	assert_int_equal(v, 0);
	/* TSC 1000 -> 400: the adjustment is -600. */
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_TIME_STAMP_COUNTER, 400), 0);
	assert_int_equal(guest_tsc, 400);
	assert_int_equal(vcpu_rdmsr(&vm.vcpu, MSR_IA32_TSC_ADJUST, &v), 0);
	assert_true(v == (uint64_t)-600);
	/* Adjustment -600 -> +100 moves the TSC by 700. */
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_TSC_ADJUST, 100), 0);
	assert_int_equal(guest_tsc, 1100);
	assert_int_equal(vcpu_rdmsr(&vm.vcpu, MSR_IA32_TSC_ADJUST, &v), 0);
	assert_int_equal(v, 100);
}

static void test_lapic_msrs_go_to_the_platform(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(vcpu_rdmsr(&vm.vcpu, MSR_IA32_APIC_BASE, &v), 0);
	assert_int_equal(lapic_msr_seen, MSR_IA32_APIC_BASE);
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_X2APIC_EOI, 0), 0);
	assert_int_equal(lapic_msr_seen, MSR_IA32_X2APIC_EOI);
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_TSC_DEADLINE, 0), 0);
	assert_int_equal(lapic_msr_seen, MSR_IA32_TSC_DEADLINE);
}

static uint64_t misc_enable(void)
{
	uint64_t v = 0;
	assert_int_equal(vcpu_rdmsr(&vm.vcpu, MSR_IA32_MISC_ENABLE, &v), 0);
	return v;
}

static void test_misc_enable(void **state)
{
	(void)state;
	/* Fast strings on; BTS and PEBS unavailable (no debug store), read-only. */
	assert_int_equal(misc_enable(), MISC_ENABLE_FAST_STRINGS | MISC_ENABLE_BTS_UNAVAILABLE |
						MISC_ENABLE_PEBS_UNAVAILABLE);
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_MISC_ENABLE, misc_enable()), 0);
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_MISC_ENABLE, 0), 0);
	assert_int_equal(misc_enable(), MISC_ENABLE_BTS_UNAVAILABLE | MISC_ENABLE_PEBS_UNAVAILABLE);
	/* Writable bits whose features the VM lacks stay clear. */
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_MISC_ENABLE,
				    MISC_ENABLE_MONITOR | MISC_ENABLE_EIST | MISC_ENABLE_AUTO_THERMAL |
					    MISC_ENABLE_XTPR_DISABLE | MISC_ENABLE_LIMIT_CPUID),
			 0);
	assert_int_equal(misc_enable(), MISC_ENABLE_LIMIT_CPUID | MISC_ENABLE_BTS_UNAVAILABLE |
						MISC_ENABLE_PEBS_UNAVAILABLE);
	/* Reserved bits: #GP, nothing changes. */
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_MISC_ENABLE, 1ULL << 1), -1);
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_MISC_ENABLE, 1ULL << 63), -1);
	assert_int_equal(vm.vcpu.misc_enable, MISC_ENABLE_LIMIT_CPUID);
	/* XD disable and EFER.NXE exclude each other (where the host has NX at all). */
	if (!(cpuid(0x80000001U, 0).edx & CPUID_80000001_EDX_NX))
		return;
	guest_reg[GUEST_REG_EFER] = EFER_NXE;
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_MISC_ENABLE, MISC_ENABLE_XD_DISABLE), -1);
	guest_reg[GUEST_REG_EFER] = 0;
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_MISC_ENABLE, MISC_ENABLE_XD_DISABLE), 0);
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_EFER, EFER_NXE), -1);
	assert_int_equal(guest_reg[GUEST_REG_EFER], 0);
}

static struct cpuid_regs guest_cpuid(uint32_t leaf)
{
	vm.vcpu.regs.rax = leaf;
	vm.vcpu.regs.rcx = 0;
	vcpu_cpuid(&vm.vcpu);
	return (struct cpuid_regs){ (uint32_t)vm.vcpu.regs.rax, (uint32_t)vm.vcpu.regs.rbx,
				    (uint32_t)vm.vcpu.regs.rcx, (uint32_t)vm.vcpu.regs.rdx };
}

static void test_cpuid_follows_the_guests_msrs(void **state)
{
	(void)state;
	assert_true(guest_cpuid(0).eax >= CPUID_TSC_LEAF);
	assert_true(guest_cpuid(1).edx & CPUID_01_EDX_APIC);
	bool nx = guest_cpuid(0x80000001U).edx & CPUID_80000001_EDX_NX;

	vcpu_set_misc_enable(&vm.vcpu, MISC_ENABLE_LIMIT_CPUID | MISC_ENABLE_XD_DISABLE);
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_APIC_BASE, lapic_msr_value & ~LAPIC_BASE_EN), 0);
	assert_int_equal(guest_cpuid(0).eax, 2);
	assert_false(guest_cpuid(1).edx & CPUID_01_EDX_APIC);
	assert_false(guest_cpuid(0x80000001U).edx & CPUID_80000001_EDX_NX);

	vcpu_set_misc_enable(&vm.vcpu, MISC_ENABLE_FAST_STRINGS);
	/* The APIC stays out of CPUID until IA32_APIC_BASE enables it again. */
	assert_false(guest_cpuid(1).edx & CPUID_01_EDX_APIC);
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_APIC_BASE, lapic_msr_value | LAPIC_BASE_EN), 0);
	assert_true(guest_cpuid(0).eax >= CPUID_TSC_LEAF);
	assert_true(guest_cpuid(1).edx & CPUID_01_EDX_APIC);
	assert_int_equal(!!(guest_cpuid(0x80000001U).edx & CPUID_80000001_EDX_NX), nx);
}

#define C1_ECX_XSAVE (1U << 26)
#define C1_ECX_OSXSAVE (1U << 27)
#define C1_ECX_AVX (1U << 28)

static struct cpuid_regs guest_cpuid_subleaf(uint32_t leaf, uint32_t subleaf)
{
	vm.vcpu.regs.rax = leaf;
	vm.vcpu.regs.rcx = subleaf;
	vcpu_cpuid(&vm.vcpu);
	return (struct cpuid_regs){ (uint32_t)vm.vcpu.regs.rax, (uint32_t)vm.vcpu.regs.rbx,
				    (uint32_t)vm.vcpu.regs.rcx, (uint32_t)vm.vcpu.regs.rdx };
}

/* CPUID.1:ECX.OSXSAVE is the guest's CR4 bit, leaf 0DH sizes the guest's XCR0. */
static void test_xsave_cpuid_follows_cr4_and_xcr0(void **state)
{
	(void)state;
	bool host_avx = cpuid(1, 0).ecx & C1_ECX_AVX;

	uint32_t ecx = guest_cpuid(1).ecx;
	assert_true(ecx & C1_ECX_XSAVE);
	assert_false(ecx & C1_ECX_OSXSAVE);
	assert_int_equal(!!(ecx & C1_ECX_AVX), host_avx);
	guest_reg[GUEST_REG_CR4] = CR4_OSXSAVE;
	assert_true(guest_cpuid(1).ecx & C1_ECX_OSXSAVE);
	assert_int_equal(guest_cpuid_subleaf(0xd, 0).ebx, 576);
	vm.vcpu.xcr0 = XSTATE_X87 | XSTATE_SSE | XSTATE_AVX;
	assert_int_equal(guest_cpuid_subleaf(0xd, 0).ebx, 832);
	assert_int_equal(guest_cpuid_subleaf(0xd, 2).eax, 256);

	offer_xsave(false);
	ecx = guest_cpuid(1).ecx;
	assert_false(ecx & (C1_ECX_XSAVE | C1_ECX_OSXSAVE | C1_ECX_AVX));
	assert_int_equal(guest_cpuid_subleaf(0xd, 0).eax, 0);
}

/* IA32_XSS exists with XSAVES and holds 0: no supervisor component is offered. */
static void test_xss(void **state)
{
	(void)state;
	uint64_t v = 1;

	assert_int_equal(vcpu_rdmsr(&vm.vcpu, MSR_IA32_XSS, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_XSS, 0), 0);
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_XSS, 1ULL << 8), -1);
	offer_xsave(false);
	assert_int_equal(vcpu_rdmsr(&vm.vcpu, MSR_IA32_XSS, &v), -1);
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_XSS, 0), -1);
}

static void test_rdtscp_and_rdpid_only_with_tsc_aux(void **state)
{
	(void)state;
	bool rdtscp = cpuid(0x80000001U, 0).edx & CPUID_80000001_EDX_RDTSCP;
	bool rdpid = cpuid(0, 0).eax >= 7 && (cpuid(7, 0).ecx & CPUID_07_ECX_RDPID);

	tsc_aux = true;
	assert_int_equal(!!(guest_cpuid(0x80000001U).edx & CPUID_80000001_EDX_RDTSCP), rdtscp);
	assert_int_equal(!!(guest_cpuid(7).ecx & CPUID_07_ECX_RDPID), rdpid);
	/* Reads run in the guest; a write reaches the vCPU's register, bits 63:32 #GP. */
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_TSC_AUX, 0xffffffffULL), 0);
	assert_int_equal(guest_reg[GUEST_REG_TSC_AUX], 0xffffffffULL);
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_TSC_AUX, 1ULL << 32), -1);
	assert_int_equal(guest_reg[GUEST_REG_TSC_AUX], 0xffffffffULL);

	tsc_aux = false;
	vcpu_set_misc_enable(&vm.vcpu, MISC_ENABLE_FAST_STRINGS);
	assert_false(guest_cpuid(0x80000001U).edx & CPUID_80000001_EDX_RDTSCP);
	assert_false(guest_cpuid(7).ecx & CPUID_07_ECX_RDPID);
	uint64_t v;
	assert_int_equal(vcpu_rdmsr(&vm.vcpu, MSR_IA32_TSC_AUX, &v), -1);
	assert_int_equal(vcpu_wrmsr(&vm.vcpu, MSR_IA32_TSC_AUX, 1), -1);
	tsc_aux = true;
}

static void test_everything_else_is_general_protection(void **state)
{
	/*
	 * Machine-check banks, MTRRs, performance counters, VMX capabilities,
	 * speculation controls and the host's microcode and power MSRs: none is
	 * virtualized, so a guest gets #GP instead of the host's values.
	 */
	static const uint32_t refused[] = {
		0x179 /* MCG_CAP */, 0x17a /* MCG_STATUS */, 0x400 /* MC0_CTL */,
		0x200 /* MTRR_PHYSBASE0 */, 0x2ff /* MTRR_DEF_TYPE */, 0xc1 /* PMC0 */,
		0x186 /* PERFEVTSEL0 */, MSR_IA32_VMX_BASIC, MSR_IA32_VMX_EPT_VPID_CAP,
		MSR_IA32_PRED_CMD, MSR_IA32_FLUSH_CMD, 0x48 /* SPEC_CTRL */,
		0x79 /* BIOS_UPDT_TRIG */, 0x199 /* PERF_CTL */,
	};
	uint64_t v = 0x5a5a;

	(void)state;
	for (unsigned i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		assert_int_equal(vcpu_rdmsr(&vm.vcpu, refused[i], &v), -1);
		assert_int_equal(vcpu_wrmsr(&vm.vcpu, refused[i], 1), -1);
	}
	assert_int_equal(v, 0x5a5a);
	for (unsigned r = 0; r < GUEST_REG_COUNT; r++)
		assert_int_equal(guest_reg[r], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_hardware_msrs_reach_guest_state, setup),
		cmocka_unit_test_setup(test_non_canonical_addresses_are_refused, setup),
		cmocka_unit_test_setup(test_pat_types_are_checked, setup),
		cmocka_unit_test_setup(test_efer_rules, setup),
		cmocka_unit_test_setup(test_fixed_answers, setup),
		cmocka_unit_test_setup(test_tsc_is_the_vms_clock, setup),
		cmocka_unit_test_setup(test_tsc_adjust_follows_tsc_writes, setup),
		cmocka_unit_test_setup(test_lapic_msrs_go_to_the_platform, setup),
		cmocka_unit_test_setup(test_misc_enable, setup),
		cmocka_unit_test_setup(test_cpuid_follows_the_guests_msrs, setup),
		cmocka_unit_test_setup(test_xsave_cpuid_follows_cr4_and_xcr0, setup),
		cmocka_unit_test_setup(test_xss, setup),
		cmocka_unit_test_setup(test_rdtscp_and_rdpid_only_with_tsc_aux, setup),
		cmocka_unit_test_setup(test_everything_else_is_general_protection, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
