#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "vmm/speculation.h"
#include "x86/cpu.h"
#include "x86/msr.h"

#define BUG(b) (1U << (b))

/* A Skylake server's microcode controls: no IA32_ARCH_CAPABILITIES. */
#define SKYLAKE_EDX                                                                   \
	(CPUID_07_EDX_MD_CLEAR | CPUID_07_EDX_SPEC_CTRL | CPUID_07_EDX_STIBP |          \
	 CPUID_07_EDX_L1D_FLUSH | CPUID_07_EDX_SSBD)
/* An Ice Lake server: eIBRS, free of L1TF, MDS, TAA and iTLB multihit. */
#define ICELAKE_CAPS                                                                  \
	(ARCH_CAP_RDCL_NO | ARCH_CAP_IBRS_ALL | ARCH_CAP_SKIP_L1DFL_VMENTRY |           \
	 ARCH_CAP_MDS_NO | ARCH_CAP_PSCHANGE_MC_NO | ARCH_CAP_TAA_NO | ARCH_CAP_TSX_CTRL)
/* A Sapphire Rapids: free of nearly everything but Spectre v2 itself. */
#define SAPPHIRE_CAPS                                                                  \
	(ICELAKE_CAPS | ARCH_CAP_SSB_NO | ARCH_CAP_SBDR_SSDP_NO | ARCH_CAP_FBSDP_NO |    \
	 ARCH_CAP_PSDP_NO | ARCH_CAP_PBRSB_NO | ARCH_CAP_GDS_NO | ARCH_CAP_BHI_NO |        \
	 ARCH_CAP_RFDS_NO)

static struct speculation_defences choose2(uint32_t edx, uint32_t edx2, uint64_t caps, bool rtm,
					   bool enabled)
{
	const struct speculation_cpu cpu = {
		.cpuid7_ebx = rtm ? CPUID_07_EBX_RTM : 0,
		.cpuid7_edx = edx,
		.cpuid7_2_edx = edx2,
		.arch_caps = caps,
		.avx = true,
	};
	struct speculation_defences d;

	memset(&d, 0xa5, sizeof(d));
	speculation_choose(&cpu, enabled, &d);
	return d;
}

static struct speculation_defences choose(uint32_t edx, uint64_t caps, bool rtm, bool enabled)
{
	return choose2(edx, 0, caps, rtm, enabled);
}

/*
 * A CPU that enumerates none of the controls (Bochs' Skylake-X model, an
 * old CPU without microcode updates) declares itself free of nothing: what
 * software alone can do is done, the rest is reported uncovered.
 */
static void test_cpu_without_controls(void **state)
{
	(void)state;
	struct speculation_defences d = choose(0, 0, false, true);

	assert_int_equal(d.affected, BUG(CPU_BUG_SPECTRE_V2) | BUG(CPU_BUG_RSB) | BUG(CPU_BUG_SSB) |
					     BUG(CPU_BUG_L1TF) | BUG(CPU_BUG_MDS) | BUG(CPU_BUG_MMIO) |
					     BUG(CPU_BUG_ITLB_MULTIHIT) | BUG(CPU_BUG_GDS) |
					     BUG(CPU_BUG_BHI));
	assert_false(d.spec_ctrl);
	assert_int_equal(d.host_spec_ctrl, 0);
	assert_false(d.ibpb_between_vms);
	assert_int_equal(d.rsb_fill, SPECULATION_RSB_DEPTH);
	assert_false(d.clear_buffers_on_entry);
	assert_false(d.l1d_flush_on_entry);
	assert_true(d.exec_4k_pages);
	assert_int_equal(d.uncovered, BUG(CPU_BUG_SPECTRE_V2) | BUG(CPU_BUG_SSB) | BUG(CPU_BUG_L1TF) |
					      BUG(CPU_BUG_MDS) | BUG(CPU_BUG_GDS) | BUG(CPU_BUG_BHI));
	assert_int_equal(d.guest_cpuid7_edx, 0);
	assert_false(d.guest_arch_caps_msr);
	assert_string_equal(speculation_bug_defence(&d, CPU_BUG_L1TF),
			    "UNCOVERED: no IA32_FLUSH_CMD (microcode)");
	/* A guest that read the MSR would learn the hypervisor keeps its code in 4-KiB pages. */
	assert_true(d.guest_arch_caps & ARCH_CAP_PSCHANGE_MC_NO);
}

/*
 * Skylake with its microcode: IBRS at each exit (no eIBRS), the whole
 * return stack overwritten, the L1D flushed before each entry and VERW
 * right before it, as root mode stores in between.
 */
static void test_skylake_with_microcode(void **state)
{
	(void)state;
	struct speculation_defences d = choose(SKYLAKE_EDX, 0, true, true);

	assert_true(d.spec_ctrl);
	assert_int_equal(d.host_spec_ctrl, SPEC_CTRL_IBRS);
	assert_true(d.ibpb_between_vms);
	assert_int_equal(d.rsb_fill, SPECULATION_RSB_DEPTH);
	assert_true(d.l1d_flush_on_entry);
	assert_true(d.clear_buffers_on_entry);
	assert_true(d.exec_4k_pages);
	assert_int_equal(d.uncovered, BUG(CPU_BUG_GDS) | BUG(CPU_BUG_BHI));
	assert_int_equal(d.guest_cpuid7_edx, SKYLAKE_EDX);
	assert_int_equal(d.guest_spec_ctrl_bits, SPEC_CTRL_IBRS | SPEC_CTRL_STIBP | SPEC_CTRL_SSBD);
	assert_string_equal(speculation_bug_defence(&d, CPU_BUG_SPECTRE_V2),
			    "IBRS set at each VM exit, IBPB between VMs");
	assert_string_equal(speculation_bug_defence(&d, CPU_BUG_MDS), "VERW before each VM entry");
}

/*
 * Ice Lake server: eIBRS, so one entry against PBRSB; nothing to flush or
 * clear; guests are told what the CPU is free of, but not of TSX_CTRL,
 * an MSR they do not get.
 */
static void test_icelake_with_eibrs(void **state)
{
	(void)state;
	struct speculation_defences d =
		choose(SKYLAKE_EDX | CPUID_07_EDX_ARCH_CAPS, ICELAKE_CAPS, true, true);

	assert_false(d.affected & (BUG(CPU_BUG_L1TF) | BUG(CPU_BUG_MDS) | BUG(CPU_BUG_TAA) |
				   BUG(CPU_BUG_ITLB_MULTIHIT)));
	assert_int_equal(d.rsb_fill, 1);
	assert_int_equal(d.host_spec_ctrl, SPEC_CTRL_IBRS);
	assert_false(d.l1d_flush_on_entry);
	assert_true(d.l1d_flush_between_vms);
	assert_false(d.clear_buffers_on_entry);
	assert_false(d.exec_4k_pages);
	assert_true(d.guest_arch_caps_msr);
	assert_int_equal(d.guest_arch_caps, ICELAKE_CAPS & ~ARCH_CAP_TSX_CTRL);
	assert_string_equal(speculation_bug_defence(&d, CPU_BUG_SPECTRE_V2),
			    "eIBRS in root mode, IBPB between VMs");
	assert_string_equal(speculation_bug_defence(&d, CPU_BUG_L1TF), "not affected");
}

static void test_sapphire_rapids_needs_no_return_stack_fill(void **state)
{
	(void)state;
	struct speculation_defences d =
		choose(SKYLAKE_EDX | CPUID_07_EDX_ARCH_CAPS, SAPPHIRE_CAPS, true, true);

	assert_int_equal(d.affected, BUG(CPU_BUG_SPECTRE_V2));
	assert_int_equal(d.uncovered, 0);
	assert_int_equal(d.rsb_fill, 0);
}

/* MDS_NO with TSX: TAA, and VERW clears the buffers where MD_CLEAR says it does. */
static void test_taa_needs_verw(void **state)
{
	(void)state;
	const uint64_t caps = ARCH_CAP_RDCL_NO | ARCH_CAP_MDS_NO;
	struct speculation_defences d =
		choose(SKYLAKE_EDX | CPUID_07_EDX_ARCH_CAPS, caps, true, true);

	assert_true(d.affected & BUG(CPU_BUG_TAA));
	assert_false(d.affected & BUG(CPU_BUG_MDS));
	assert_true(d.clear_buffers_on_entry);
	assert_false(d.uncovered & BUG(CPU_BUG_TAA));
	d = choose((SKYLAKE_EDX | CPUID_07_EDX_ARCH_CAPS) & ~CPUID_07_EDX_MD_CLEAR, caps, true, true);
	assert_true(d.uncovered & BUG(CPU_BUG_TAA));
	/* Without TSX there is no TAA. */
	d = choose(SKYLAKE_EDX | CPUID_07_EDX_ARCH_CAPS, caps, false, true);
	assert_false(d.affected & BUG(CPU_BUG_TAA));
}

/* Nested under a hypervisor that flushes for us (SKIP_L1DFL_VMENTRY): no flush of ours. */
static void test_nested_skips_the_l1d_flush(void **state)
{
	(void)state;
	struct speculation_defences d = choose(SKYLAKE_EDX | CPUID_07_EDX_ARCH_CAPS,
					       ARCH_CAP_SKIP_L1DFL_VMENTRY, false, true);

	assert_true(d.affected & BUG(CPU_BUG_L1TF));
	assert_false(d.l1d_flush_on_entry);
	assert_false(d.uncovered & BUG(CPU_BUG_L1TF));
	/* Then MDS needs VERW of its own. */
	assert_true(d.clear_buffers_on_entry);
}

/* Off: the host does nothing for itself, guests keep their own controls. */
static void test_off_keeps_the_guests_controls(void **state)
{
	(void)state;
	struct speculation_defences d = choose(SKYLAKE_EDX, 0, false, false);

	assert_true(d.spec_ctrl);
	assert_int_equal(d.host_spec_ctrl, 0);
	assert_false(d.ibpb_between_vms || d.l1d_flush_between_vms || d.l1d_flush_on_entry ||
		     d.clear_buffers_on_entry || d.exec_4k_pages);
	assert_int_equal(d.rsb_fill, 0);
	assert_int_equal(d.uncovered, d.affected);
	assert_int_equal(d.guest_cpuid7_edx, SKYLAKE_EDX);
	assert_false(d.guest_arch_caps & ARCH_CAP_PSCHANGE_MC_NO);
	assert_string_equal(speculation_bug_defence(&d, CPU_BUG_RSB),
			    "UNCOVERED: speculation_defences = off");
}

/* STIBP and SSBD are bits of an MSR a CPU without IA32_SPEC_CTRL lacks. */
static void test_guest_controls_need_spec_ctrl(void **state)
{
	(void)state;
	uint32_t edx = CPUID_07_EDX_STIBP | CPUID_07_EDX_SSBD | CPUID_07_EDX_L1D_FLUSH | (1U << 4);

	assert_int_equal(speculation_guest_cpuid7_edx(edx), CPUID_07_EDX_L1D_FLUSH);
	assert_int_equal(speculation_guest_cpuid7_edx(edx | CPUID_07_EDX_SPEC_CTRL),
			 (edx & ~(1U << 4)) | CPUID_07_EDX_SPEC_CTRL);
	struct speculation_defences d = choose(CPUID_07_EDX_SPEC_CTRL, 0, false, true);
	assert_int_equal(d.guest_spec_ctrl_bits, SPEC_CTRL_IBRS);
	/* What CPUID.(7,2):EDX enumerates the CPU takes from a guest's WRMSR too. */
	d = choose2(CPUID_07_EDX_SPEC_CTRL, CPUID_07_2_EDX_PSFD | CPUID_07_2_EDX_RRSBA_CTRL, 0,
		    false, true);
	assert_int_equal(d.guest_spec_ctrl_bits, SPEC_CTRL_IBRS | SPEC_CTRL_PSFD |
							 SPEC_CTRL_RRSBA_DIS_U |
							 SPEC_CTRL_RRSBA_DIS_S);
	/* Without IA32_SPEC_CTRL, nothing. */
	d = choose2(0, CPUID_07_2_EDX_BHI_CTRL, 0, false, true);
	assert_int_equal(d.guest_spec_ctrl_bits, 0);
}

/* BHI: where the CPU has BHI_DIS_S, root mode runs with it. */
static void test_bhi_dis_s(void **state)
{
	(void)state;
	struct speculation_defences d = choose2(SKYLAKE_EDX | CPUID_07_EDX_ARCH_CAPS,
						CPUID_07_2_EDX_BHI_CTRL, SAPPHIRE_CAPS & ~ARCH_CAP_BHI_NO,
						false, true);

	assert_true(d.affected & BUG(CPU_BUG_BHI));
	assert_false(d.uncovered & BUG(CPU_BUG_BHI));
	assert_int_equal(d.host_spec_ctrl, SPEC_CTRL_IBRS | SPEC_CTRL_BHI_DIS_S);
	assert_true(d.guest_spec_ctrl_bits & SPEC_CTRL_BHI_DIS_S);
	d = choose2(SKYLAKE_EDX | CPUID_07_EDX_ARCH_CAPS, CPUID_07_2_EDX_BHI_CTRL,
		    SAPPHIRE_CAPS & ~ARCH_CAP_BHI_NO, false, false);
	assert_int_equal(d.host_spec_ctrl, 0);
}

/* RFDS: an Atom part whose microcode makes VERW clear the register file, though it has MDS_NO. */
static void test_rfds_needs_verw(void **state)
{
	(void)state;
	const uint64_t caps = ARCH_CAP_RDCL_NO | ARCH_CAP_MDS_NO | ARCH_CAP_TAA_NO |
			      ARCH_CAP_PSCHANGE_MC_NO | ARCH_CAP_RFDS_CLEAR;
	struct speculation_defences d =
		choose(SKYLAKE_EDX | CPUID_07_EDX_ARCH_CAPS, caps, false, true);

	assert_true(d.affected & BUG(CPU_BUG_RFDS));
	assert_true(d.clear_buffers_on_entry);
	assert_false(d.uncovered & BUG(CPU_BUG_RFDS));
	assert_true(d.guest_arch_caps & ARCH_CAP_RFDS_CLEAR);
	d = choose(SKYLAKE_EDX | CPUID_07_EDX_ARCH_CAPS, caps | ARCH_CAP_RFDS_NO, false, true);
	assert_false(d.affected & BUG(CPU_BUG_RFDS));
	assert_false(d.clear_buffers_on_entry);
}

static void test_every_bug_has_a_name_and_a_line(void **state)
{
	(void)state;
	struct speculation_defences cases[] = {
		choose(0, 0, true, true),
		choose(SKYLAKE_EDX, 0, true, true),
		choose(SKYLAKE_EDX | CPUID_07_EDX_ARCH_CAPS, ICELAKE_CAPS, true, true),
		choose(SKYLAKE_EDX, 0, true, false),
	};
	for (unsigned c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
		for (unsigned bug = 0; bug < CPU_BUG_COUNT; bug++) {
			const char *line = speculation_bug_defence(&cases[c], bug);
			assert_string_not_equal(speculation_bug_name(bug), "?");
			assert_string_not_equal(line, "?");
			/* A bug is reported uncovered exactly when it is. */
			assert_int_equal(strncmp(line, "UNCOVERED", 9) == 0,
					 (cases[c].uncovered >> bug & 1) != 0);
		}
	assert_string_equal(speculation_bug_name(CPU_BUG_COUNT), "?");
}

/* Spectre v1: the index a table is read at is in range whatever the branch predicted. */
static void test_index_nospec(void **state)
{
	(void)state;
	assert_int_equal(index_nospec(0, 4), 0);
	assert_int_equal(index_nospec(3, 4), 3);
	assert_int_equal(index_nospec(4, 4), 0);
	assert_int_equal(index_nospec(~0ULL, 4), 0);
	assert_int_equal(index_nospec(1ULL << 63, 1ULL << 63), 0);
	assert_int_equal(index_nospec(0, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpu_without_controls),
		cmocka_unit_test(test_skylake_with_microcode),
		cmocka_unit_test(test_icelake_with_eibrs),
		cmocka_unit_test(test_sapphire_rapids_needs_no_return_stack_fill),
		cmocka_unit_test(test_taa_needs_verw),
		cmocka_unit_test(test_nested_skips_the_l1d_flush),
		cmocka_unit_test(test_off_keeps_the_guests_controls),
		cmocka_unit_test(test_guest_controls_need_spec_ctrl),
		cmocka_unit_test(test_bhi_dis_s),
		cmocka_unit_test(test_rfds_needs_verw),
		cmocka_unit_test(test_every_bug_has_a_name_and_a_line),
		cmocka_unit_test(test_index_nospec),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
