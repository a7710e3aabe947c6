#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "vmm/vmx/caps.h"
#include "vmm/vmx/vmx_defs.h"

/*
 * The MSR values Bochs 2.7 (corei7_skylake_x) reports, as the hypervisor
 * logged them at boot ("vmx: BASIC=... PINBASED=..." lines of make e2e).
 */
static struct vmx_msrs bochs_msrs(void)
{
	return (struct vmx_msrs){
		.basic = 0x00d810000000002bULL,
		.pinbased = 0x0000007f00000016ULL,
		.procbased = 0xf7f9fffe04006172ULL,
		.procbased2 = 0x02177fff00000000ULL,
		.exit = 0x007fffff00036dfbULL,
		.entry = 0x0000ffff000011fbULL,
		.misc = 0x00000000600401e0ULL,
		.ept_vpid = 0x00000f0106334141ULL,
	};
}

static void test_decode_bochs(void **state)
{
	struct vmx_msrs m = bochs_msrs();
	struct vmx_caps c;
	(void)state;

	vmx_caps_decode(&m, &c);
	assert_int_equal(c.revision_id, 0x2b);
	assert_int_equal(c.region_size, 4096);
	assert_int_equal(c.vmcs_memtype, MEMTYPE_WB);
	assert_true(c.true_controls);
	assert_false(c.addr_limited_32bit);
	assert_true(c.ept && c.vpid && c.unrestricted_guest && c.preemption_timer);
	assert_int_equal(c.preemption_timer_shift, 0);
	assert_true(c.ept_walk4 && c.ept_wb && c.ept_2m && c.ept_1g && c.ept_ad);
	assert_true(c.invept && c.invept_single && c.invvpid);
	assert_true(c.save_preemption_timer);
	assert_true(c.apic_virtualization && c.apic_register_virtualization);
	assert_null(vmx_caps_missing(&c));
}

static void test_describe_names_every_feature(void **state)
{
	struct vmx_msrs m = bochs_msrs();
	struct vmx_caps c;
	char line[256];
	(void)state;

	vmx_caps_decode(&m, &c);
	vmx_caps_describe(&c, line, sizeof(line));
	assert_non_null(strstr(line, "EPT=yes (2M=yes 1G=yes A/D=yes INVEPT=yes)"));
	assert_non_null(strstr(line, "VPID=yes"));
	assert_non_null(strstr(line, "unrestricted-guest=yes"));
	assert_non_null(strstr(line, "preemption-timer=yes (TSC/1)"));
	assert_non_null(strstr(line, "APIC-virtualization=yes (registers=yes)"));

	/* Real CPUs count the timer down more slowly than the TSC. */
	m.misc = 5;
	vmx_caps_decode(&m, &c);
	vmx_caps_describe(&c, line, sizeof(line));
	assert_non_null(strstr(line, "preemption-timer=yes (TSC/32)"));
}

static void test_secondary_controls_absent_hides_ept(void **state)
{
	struct vmx_msrs m = bochs_msrs();
	struct vmx_caps c;
	(void)state;

	/* Without "activate secondary controls" the CTLS2 MSR does not exist. */
	m.procbased &= ~((uint64_t)PROC_CTL_SECONDARY_CONTROLS << 32);
	vmx_caps_decode(&m, &c);
	assert_false(c.ept || c.vpid || c.unrestricted_guest || c.ept_2m);
	assert_string_equal(vmx_caps_missing(&c), "secondary processor-based controls");
}

static void test_missing_features_are_named(void **state)
{
	struct vmx_msrs m;
	struct vmx_caps c;
	(void)state;

	m = bochs_msrs();
	m.procbased2 &= ~((uint64_t)PROC2_CTL_UNRESTRICTED_GUEST << 32);
	vmx_caps_decode(&m, &c);
	assert_string_equal(vmx_caps_missing(&c), "unrestricted guest");

	m = bochs_msrs();
	m.procbased2 &= ~((uint64_t)PROC2_CTL_ENABLE_EPT << 32);
	vmx_caps_decode(&m, &c);
	assert_string_equal(vmx_caps_missing(&c), "EPT (extended page tables)");

	m = bochs_msrs();
	m.ept_vpid &= ~EPT_CAP_MEMTYPE_WB;
	vmx_caps_decode(&m, &c);
	assert_string_equal(vmx_caps_missing(&c), "4-level write-back EPT");

	m = bochs_msrs();
	m.ept_vpid &= ~EPT_CAP_INVEPT;
	vmx_caps_decode(&m, &c);
	assert_string_equal(vmx_caps_missing(&c), "single-context INVEPT");

	m = bochs_msrs();
	m.ept_vpid &= ~EPT_CAP_INVEPT_SINGLE;
	vmx_caps_decode(&m, &c);
	assert_string_equal(vmx_caps_missing(&c), "single-context INVEPT");

	m = bochs_msrs();
	m.pinbased &= ~((uint64_t)PIN_CTL_PREEMPTION_TIMER << 32);
	vmx_caps_decode(&m, &c);
	assert_string_equal(vmx_caps_missing(&c), "the VMX preemption timer");

	m = bochs_msrs();
	m.basic &= ~VMX_BASIC_TRUE_CTLS;
	vmx_caps_decode(&m, &c);
	assert_non_null(strstr(vmx_caps_missing(&c), "TRUE_* VMX control MSRs"));

	m = bochs_msrs();
	m.basic |= VMX_BASIC_PHYS_ADDR_32BIT;
	vmx_caps_decode(&m, &c);
	assert_non_null(strstr(vmx_caps_missing(&c), "64-bit VMX physical addresses"));

	m = bochs_msrs();
	m.basic &= ~(VMX_BASIC_MEMTYPE_MASK << VMX_BASIC_MEMTYPE_SHIFT);
	vmx_caps_decode(&m, &c);
	assert_non_null(strstr(vmx_caps_missing(&c), "write-back VMCS"));
}

static void test_optional_features_do_not_block(void **state)
{
	struct vmx_msrs m = bochs_msrs();
	struct vmx_caps c;
	(void)state;

	m.procbased2 &= ~((uint64_t)PROC2_CTL_ENABLE_VPID << 32);
	m.ept_vpid &= ~(EPT_CAP_PAGE_2M | EPT_CAP_PAGE_1G);
	m.exit &= ~((uint64_t)EXIT_CTL_SAVE_PREEMPTION_TIMER << 32);
	vmx_caps_decode(&m, &c);
	assert_false(c.vpid);
	assert_false(c.ept_2m);
	assert_false(c.save_preemption_timer);
	assert_null(vmx_caps_missing(&c));

	/* APIC virtualization needs all three controls; without one, the APIC is emulated. */
	static const struct {
		bool primary;
		uint32_t control;
	} apic_controls[] = {
		{ true, PROC_CTL_USE_TPR_SHADOW },
		{ false, PROC2_CTL_VIRTUALIZE_APIC_ACCESSES },
		{ false, PROC2_CTL_VIRTUAL_INTERRUPT_DELIVERY },
	};
	for (unsigned i = 0; i < sizeof(apic_controls) / sizeof(apic_controls[0]); i++) {
		m = bochs_msrs();
		if (apic_controls[i].primary)
			m.procbased &= ~((uint64_t)apic_controls[i].control << 32);
		else
			m.procbased2 &= ~((uint64_t)apic_controls[i].control << 32);
		vmx_caps_decode(&m, &c);
		assert_false(c.apic_virtualization || c.apic_register_virtualization);
		assert_null(vmx_caps_missing(&c));
	}
	/* Register reads from the page are optional beside it. */
	m = bochs_msrs();
	m.procbased2 &= ~((uint64_t)PROC2_CTL_APIC_REGISTER_VIRTUALIZATION << 32);
	vmx_caps_decode(&m, &c);
	assert_true(c.apic_virtualization);
	assert_false(c.apic_register_virtualization);
}

static void test_feature_control_unlocked_is_enabled_and_locked(void **state)
{
	uint64_t v;
	(void)state;

	assert_int_equal(feature_control_plan(0, &v), FEATURE_CONTROL_WRITE);
	assert_int_equal(v, FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX);
	/* Other bits the firmware set (SGX, LMCE...) survive. */
	assert_int_equal(feature_control_plan(1ULL << 20, &v), FEATURE_CONTROL_WRITE);
	assert_int_equal(v, (1ULL << 20) | FEATURE_CONTROL_LOCK |
				    FEATURE_CONTROL_VMX_OUTSIDE_SMX);
}

static void test_feature_control_locked(void **state)
{
	uint64_t v;
	(void)state;

	assert_int_equal(feature_control_plan(FEATURE_CONTROL_LOCK |
						      FEATURE_CONTROL_VMX_OUTSIDE_SMX, &v),
			 FEATURE_CONTROL_READY);
	assert_int_equal(feature_control_plan(FEATURE_CONTROL_LOCK, &v),
			 FEATURE_CONTROL_LOCKED_OFF);
	/* VMX inside SMX only does not allow a plain VMXON. */
	assert_int_equal(feature_control_plan(FEATURE_CONTROL_LOCK |
						      FEATURE_CONTROL_VMX_INSIDE_SMX, &v),
			 FEATURE_CONTROL_LOCKED_OFF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_bochs),
		cmocka_unit_test(test_describe_names_every_feature),
		cmocka_unit_test(test_secondary_controls_absent_hides_ept),
		cmocka_unit_test(test_missing_features_are_named),
		cmocka_unit_test(test_optional_features_do_not_block),
		cmocka_unit_test(test_feature_control_unlocked_is_enabled_and_locked),
		cmocka_unit_test(test_feature_control_locked),
	};
	return cmocka_run_group_tests_name("vmx_caps", tests, NULL, NULL);
}
