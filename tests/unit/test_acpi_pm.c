#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/acpi_pm.h"

static struct acpi_pm pm;

static int setup(void **state)
{
	(void)state;
	acpi_pm_init(&pm);
	return 0;
}

static void test_sci_enabled_from_the_start(void **state)
{
	(void)state;
	assert_int_equal(acpi_pm_read(&pm, 4, 2, 0) & 1, 1);
	/* A guest cannot turn ACPI mode off. */
	assert_int_equal(acpi_pm_write(&pm, 4, 2, 0), ACPI_PM_NONE);
	assert_int_equal(acpi_pm_read(&pm, 4, 2, 0) & 1, 1);
}

static void test_s5_is_power_off(void **state)
{
	(void)state;
	/* Linux: outw(SLP_TYP << 10 | SLP_EN, PM1a_CNT) after writing SLP_TYP alone. */
	assert_int_equal(acpi_pm_write(&pm, 4, 2, 5 << 10), ACPI_PM_NONE);
	assert_int_equal(acpi_pm_write(&pm, 4, 2, 5 << 10 | 0x2000), ACPI_PM_POWER_OFF);
	/* SLP_EN is write-only. */
	assert_int_equal(acpi_pm_read(&pm, 4, 2, 0) & 0x2000, 0);
	/* Byte-wise: the high byte carries SLP_EN. */
	assert_int_equal(acpi_pm_write(&pm, 5, 1, (5 << 2) | 0x20), ACPI_PM_POWER_OFF);
}

static void test_other_sleep_states_refused(void **state)
{
	(void)state;
	assert_int_equal(acpi_pm_write(&pm, 4, 2, 3 << 10 | 0x2000), ACPI_PM_SLEEP_REFUSED);
	assert_int_equal(acpi_pm_write(&pm, 4, 2, 0x2000), ACPI_PM_SLEEP_REFUSED);
}

static void test_status_write_one_to_clear_enable_plain(void **state)
{
	(void)state;
	pm.pm1_status = 0x0121;
	acpi_pm_write(&pm, 0, 2, 0x0001);
	assert_int_equal(acpi_pm_read(&pm, 0, 2, 0), 0x0120);
	acpi_pm_write(&pm, 2, 2, 0x0120);
	assert_int_equal(acpi_pm_read(&pm, 0, 4, 0), 0x01200120);
}

static void test_timer_counts_at_3_58_mhz_and_wraps_at_24_bits(void **state)
{
	(void)state;
	assert_int_equal(acpi_pm_read(&pm, 8, 4, 0), 0);
	assert_int_equal(acpi_pm_read(&pm, 8, 4, 1000000), 3579);
	assert_int_equal(acpi_pm_read(&pm, 8, 4, 1000000000ULL), 3579545 & 0xffffff);
	uint64_t wrap_ns = 0x1000000ULL * 1000000000ULL / ACPI_PM_TIMER_HZ + 1;
	assert_true(acpi_pm_read(&pm, 8, 4, wrap_ns) < 4);
	/* Read-only; its upper byte is zero. */
	acpi_pm_write(&pm, 8, 4, 0xffffffff);
	assert_int_equal(acpi_pm_read(&pm, 11, 1, 10000000000ULL), 0);
}

static void test_out_of_range_is_harmless(void **state)
{
	(void)state;
	assert_int_equal(acpi_pm_read(&pm, 11, 4, 0), 0);
	assert_int_equal(acpi_pm_write(&pm, 11, 4, 0xffffffff), ACPI_PM_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_sci_enabled_from_the_start, setup),
		cmocka_unit_test_setup(test_s5_is_power_off, setup),
		cmocka_unit_test_setup(test_other_sleep_states_refused, setup),
		cmocka_unit_test_setup(test_status_write_one_to_clear_enable_plain, setup),
		cmocka_unit_test_setup(test_timer_counts_at_3_58_mhz_and_wraps_at_24_bits, setup),
		cmocka_unit_test_setup(test_out_of_range_is_harmless, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
