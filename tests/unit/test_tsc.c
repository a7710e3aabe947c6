#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "boot/tsc.h"

/* Leaf 15H with its crystal named is exact; without it, or below the range, not used. */
static void test_cpuid_leaf_15h(void **state)
{
	struct tsc_rate r;

	(void)state;
	/* A Skylake client: 24-MHz crystal, ratio 188/2. */
	assert_true(tsc_rate_from_cpuid(0x16, 2, 188, 24000000, &r));
	assert_int_equal(r.hz, 2256000000ULL);
	assert_int_equal(r.error_ppm, 0);
	/* Bochs' Skylake-X model and many server parts: the crystal left 0. */
	assert_false(tsc_rate_from_cpuid(0x16, 2, 0x124, 0, &r));
	assert_false(tsc_rate_from_cpuid(0x16, 0, 188, 24000000, &r));
	assert_false(tsc_rate_from_cpuid(0x14, 2, 188, 24000000, &r));
}

/*
 * 200 ms of a 3-GHz TSC against the PM timer: the rate, and the bound from
 * the longest gap between reads (1 us here: 2 us over 200 ms is 10 ppm).
 */
static void test_pm_timer(void **state)
{
	(void)state;
	const uint64_t pm_ticks = 715909; /* 200 ms */
	const uint64_t tsc_ticks = 3000000000ULL * pm_ticks / 3579545;
	struct tsc_rate r = tsc_rate_from_counter(tsc_ticks, pm_ticks, ACPI_PM_TIMER_FREQUENCY, 3000, "pm");

	assert_true(r.hz >= 2999999990ULL && r.hz <= 3000000000ULL);
	assert_int_equal(r.error_ppm, 10); /* 9.99999x, rounded up */
	/* A gap as long as the window (an SMI, say) is no bound at all, and says so. */
	r = tsc_rate_from_counter(tsc_ticks, pm_ticks, ACPI_PM_TIMER_FREQUENCY, tsc_ticks, "pm");
	assert_int_equal(r.error_ppm, 2000000);
	/* The largest window the arithmetic allows: minutes at 5 GHz. */
	r = tsc_rate_from_counter(4999999999999ULL, 3579545ULL * 1000, ACPI_PM_TIMER_FREQUENCY, 5000, "pm");
	assert_int_equal(r.hz, 4999999999ULL);
	/* The PIT: 200 ms at 1.193182 MHz against a 2-GHz TSC, 3-us reads. */
	r = tsc_rate_from_counter(2000000000ULL * 238636 / PIT_FREQUENCY, 238636, PIT_FREQUENCY, 6000,
				  "pit");
	assert_true(r.hz >= 1999999000ULL && r.hz <= 2000001000ULL);
	assert_int_equal(r.error_ppm, 31); /* 12000 of 399999329 ticks: 30.00005, rounded up */
	assert_string_equal(r.source, "pit");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpuid_leaf_15h),
		cmocka_unit_test(test_pm_timer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
