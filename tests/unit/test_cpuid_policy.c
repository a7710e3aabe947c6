#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "vmm/cpuid_policy.h"
#include "abi/hypercall.h"
#include "x86/cpu.h"

static const struct cpuid_result all_ones = { ~0U, ~0U, ~0U, ~0U };

static void test_leaf1_hides_vmx_and_unemulated_features(void **state)
{
	(void)state;
	struct cpuid_result r = cpuid_policy(1, 0, all_ones);

	assert_false(r.ecx & (1U << 5));  /* VMX */
	assert_false(r.ecx & (1U << 6));  /* SMX */
	assert_true(r.ecx & (1U << 21));  /* x2APIC: the virtual local APIC's */
	assert_true(cpuid_policy(1, 0, (struct cpuid_result){ 0 }).ecx & (1U << 21));
	assert_false(r.ecx & (1U << 26)); /* XSAVE */
	assert_false(r.ecx & (1U << 27)); /* OSXSAVE */
	assert_false(r.ecx & (1U << 28)); /* AVX */
	assert_true(r.ecx & (1U << 31));  /* hypervisor present */
	assert_true(r.ecx & (1U << 0));   /* SSE3 passes */
	assert_false(r.edx & (1U << 22)); /* ACPI thermal */
	assert_true(r.edx & (1U << 25));  /* SSE passes */
	/* One vCPU, APIC ID 0; the low half (brand, CLFLUSH size) passes. */
	assert_int_equal(r.ebx, 0x0001ffffU);
}

static void test_hypervisor_leaves(void **state)
{
	(void)state;
	struct cpuid_result r = cpuid_policy(CPUID_HV_BASE, 0, all_ones);
	char sig[13] = { 0 };

	memcpy(sig, &r.ebx, 4);
	memcpy(sig + 4, &r.ecx, 4);
	memcpy(sig + 8, &r.edx, 4);
	assert_int_equal(r.eax, CPUID_HV_VERSION);
	assert_string_equal(sig, CPUID_HV_SIGNATURE);

	r = cpuid_policy(CPUID_HV_VERSION, 0, all_ones);
	assert_int_equal(r.eax, HYPERCALL_ABI_VERSION);
	assert_int_equal(r.ebx | r.ecx | r.edx, 0);

	/* The rest of the range is empty, not the host's. */
	r = cpuid_policy(0x40000100, 0, all_ones);
	assert_int_equal(r.eax | r.ebx | r.ecx | r.edx, 0);
}

static void test_leaf7_keeps_only_the_allow_list(void **state)
{
	(void)state;
	struct cpuid_result r = cpuid_policy(7, 0, all_ones);

	assert_true(r.ebx & (1U << 7));   /* SMEP */
	assert_true(r.ebx & (1U << 20));  /* SMAP */
	assert_true(r.ebx & (1U << 1));   /* IA32_TSC_ADJUST, kept per vCPU */
	assert_false(r.ebx & (1U << 5));  /* AVX2 needs XSAVE */
	assert_false(r.ebx & (1U << 10)); /* INVPCID is not enabled in VMX */
	assert_false(r.ebx & (1U << 16)); /* AVX-512 */
	/* RDPID alone in ECX: vcpu_cpuid() keeps it only where IA32_TSC_AUX is the guest's. */
	assert_int_equal(r.ecx, 1U << 22);
	/* EDX: the speculation controls guests defend themselves with, nothing else. */
	assert_int_equal(r.edx, CPUID_07_EDX_MD_CLEAR | CPUID_07_EDX_SPEC_CTRL | CPUID_07_EDX_STIBP |
				       CPUID_07_EDX_L1D_FLUSH | CPUID_07_EDX_ARCH_CAPS |
				       CPUID_07_EDX_SSBD);
	r = cpuid_policy(7, 1, all_ones);
	assert_int_equal(r.eax | r.ebx | r.ecx | r.edx, 0);
}

static void test_emptied_leaves(void **state)
{
	(void)state;
	const uint32_t leaves[] = { 6, 0xa, 0xb, 0xd, 0x1f };
	for (unsigned i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
		struct cpuid_result r = cpuid_policy(leaves[i], 0, all_ones);
		assert_int_equal(r.eax | r.ebx | r.ecx | r.edx, 0);
	}
}

static void test_extended_and_other_leaves_pass(void **state)
{
	(void)state;
	struct cpuid_result r = cpuid_policy(0x80000001, 0, all_ones);
	assert_true(r.edx & (1U << 27)); /* RDTSCP: vcpu_cpuid() decides */
	assert_true(r.edx & (1U << 29));  /* long mode */
	r = cpuid_policy(0, 0, (struct cpuid_result){ 0x1b, 1, 2, 3 });
	assert_int_equal(r.eax, 0x1b);
	assert_int_equal(r.ebx, 1);
	/* The range always reaches the TSC leaf. */
	assert_int_equal(cpuid_policy(0, 0, (struct cpuid_result){ 0xd, 1, 2, 3 }).eax, 0x15);
}

/*
 * Kept answers: each kept leaf has a slot of its own; leaves that take a
 * subleaf (4, 7, 0BH, 0DH, 0FH, 10H, 12H, 14H, 17H, 18H, 1FH, 8000001DH)
 * or differ per core (1AH) are asked every time; and for a kept leaf the
 * policy's answer does not depend on the subleaf.
 */
static void test_kept_leaves(void **state)
{
	static const uint32_t kept[] = { 0, 1, 2, 3, 5, 6, 0xa, 0x15, 0x16, 0x80000000,
					 0x80000001, 0x80000004, 0x80000007, 0x80000008,
					 CPUID_HV_BASE, CPUID_HV_BASE + 1 };
	static const uint32_t asked[] = { 4, 7, 0xb, 0xd, 0xf, 0x10, 0x12, 0x14, 0x17, 0x18,
					  0x1a, 0x1f, 0x20, 0x80000009, 0x8000001d, 0x80000020,
					  CPUID_HV_BASE + 2, 0x4fffffff, 0xffffffff };
	unsigned char used[CPUID_POLICY_SLOTS] = { 0 };
	const struct cpuid_result host = { 0x1b, 0x12345678, 0x9abcdef0, 0x0fedcba9 };

	(void)state;
	for (unsigned i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		int slot = cpuid_policy_slot(kept[i]);
		assert_true(slot >= 0 && slot < CPUID_POLICY_SLOTS);
		assert_int_equal(used[slot]++, 0);
		struct cpuid_result a = cpuid_policy(kept[i], 0, host);
		struct cpuid_result b = cpuid_policy(kept[i], 3, host);
		assert_memory_equal(&a, &b, sizeof(a));
	}
	for (unsigned i = 0; i < sizeof(asked) / sizeof(asked[0]); i++)
		assert_int_equal(cpuid_policy_slot(asked[i]), -1);
	/* Leaf 1's APIC ID is not in a kept answer. */
	assert_int_equal(cpuid_policy(1, 0, host).ebx >> 24, 0);
}

/* Leaf 4 describes the host's caches, shared by one vCPU in a one-core package. */
static void test_cache_leaf_has_one_core(void **state)
{
	(void)state;
	/* An L2 shared by 2 threads in a 28-core package: type 2, level 2, and the counts. */
	const struct cpuid_result host = { 27U << 26 | 1U << 14 | 2U << 5 | 2, 0x3c0003f, 1023, 0 };
	struct cpuid_result r = cpuid_policy(4, 2, host);

	assert_int_equal(r.eax, 2U << 5 | 2);
	assert_int_equal(r.ebx, host.ebx);
	assert_int_equal(r.ecx, host.ecx);
}

/* The TSC rate as Linux's native_calibrate_tsc() computes it: 32-bit products, in kHz. */
static uint32_t linux_tsc_khz(struct cpuid_result r)
{
	uint32_t crystal_khz = r.ecx / 1000;
	return crystal_khz * r.ebx / r.eax;
}

static uint64_t ppm_off(uint64_t got, uint64_t want)
{
	return (got > want ? got - want : want - got) * 1000000 / want;
}

static void test_tsc_leaf_reports_the_measured_rate(void **state)
{
	(void)state;
	struct cpuid_result r = cpuid_tsc_leaf(199998000ULL, 25000000ULL);
	assert_int_equal(r.ecx, 25000000);
	/* Bochs' rate: exact, and exact in Linux's 32-bit arithmetic (it read 28.199 MHz). */
	assert_int_equal((uint64_t)r.ecx * r.ebx / r.eax, 199998000ULL);
	assert_int_equal(linux_tsc_khz(r), 199998);
	r = cpuid_tsc_leaf(3000000000ULL, 25000000ULL);
	assert_int_equal(r.ebx, 120);
	assert_int_equal(r.eax, 1);
	/* Rates that do not fit report "unknown", never a wrong figure. */
	r = cpuid_tsc_leaf(0, 25000000ULL);
	assert_int_equal(r.eax | r.ebx | r.ecx | r.edx, 0);
	r = cpuid_tsc_leaf(1ULL << 50, 25000000ULL);
	assert_int_equal(r.eax | r.ebx | r.ecx | r.edx, 0);
	assert_int_equal(cpuid_policy(CPUID_TSC_LEAF, 0, all_ones).ebx, 0);
}

/* Any measured rate: within a few ppm as Linux computes it, and as the SDM does. */
static void test_tsc_leaf_is_near_for_any_rate(void **state)
{
	(void)state;
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	for (unsigned i = 0; i < 100000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* 25 MHz to 10 GHz, in Hz. */
		uint64_t tsc_hz = 25000000ULL + x % 9975000000ULL;
		struct cpuid_result r = cpuid_tsc_leaf(tsc_hz, 25000000ULL);
		assert_true(r.eax && r.ebx);
		assert_true((uint64_t)(r.ecx / 1000) * r.ebx <= 0xffffffffULL);
		assert_true(ppm_off((uint64_t)r.ecx * r.ebx / r.eax, tsc_hz) <= 10);
		if (tsc_hz >= 100000000ULL)
			assert_true(ppm_off(linux_tsc_khz(r), tsc_hz / 1000) <= 20);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tsc_leaf_reports_the_measured_rate),
		cmocka_unit_test(test_tsc_leaf_is_near_for_any_rate),
		cmocka_unit_test(test_leaf1_hides_vmx_and_unemulated_features),
		cmocka_unit_test(test_hypervisor_leaves),
		cmocka_unit_test(test_leaf7_keeps_only_the_allow_list),
		cmocka_unit_test(test_emptied_leaves),
		cmocka_unit_test(test_extended_and_other_leaves_pass),
		cmocka_unit_test(test_kept_leaves),
		cmocka_unit_test(test_cache_leaf_has_one_core),
	};
	return cmocka_run_group_tests_name("cpuid_policy", tests, NULL, NULL);
}
