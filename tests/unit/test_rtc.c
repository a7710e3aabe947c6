#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/rtc.h"
#include "lib/calendar.h"

#define S 1000000000ULL
#define NOV_23_2026_134507 1795441507ULL /* Monday */

static struct rtc rtc;

static uint8_t reg(uint8_t index, uint64_t now)
{
	rtc_write(&rtc, 0, index, now);
	return rtc_read(&rtc, 1, now);
}

static void set_reg(uint8_t index, uint8_t value, uint64_t now)
{
	rtc_write(&rtc, 0, index, now);
	rtc_write(&rtc, 1, value, now);
}

static int setup(void **state)
{
	(void)state;
	rtc_init(&rtc, NOV_23_2026_134507, 5 * S);
	return 0;
}

static void test_calendar_conversions(void **state)
{
	struct calendar_time t;
	(void)state;

	calendar_from_epoch(0, &t);
	assert_true(t.year == 1970 && t.month == 1 && t.day == 1 && t.weekday == 5);
	calendar_from_epoch(951782400, &t); /* a leap day in a year divisible by 400 */
	assert_true(t.year == 2000 && t.month == 2 && t.day == 29);
	calendar_from_epoch(4107456000ULL, &t); /* 2100 is not a leap year */
	assert_true(t.year == 2100 && t.month == 2 && t.day == 28);
	calendar_from_epoch(NOV_23_2026_134507, &t);
	assert_true(t.year == 2026 && t.month == 11 && t.day == 23 && t.hour == 13 &&
		    t.minute == 45 && t.second == 7 && t.weekday == 2);
	assert_int_equal(calendar_to_epoch(&t), NOV_23_2026_134507);
}

static void test_bcd_time_of_day_advances(void **state)
{
	(void)state;
	assert_int_equal(reg(0x00, 5 * S), 0x07);
	assert_int_equal(reg(0x02, 5 * S), 0x45);
	assert_int_equal(reg(0x04, 5 * S), 0x13);
	assert_int_equal(reg(0x07, 5 * S), 0x23);
	assert_int_equal(reg(0x08, 5 * S), 0x11);
	assert_int_equal(reg(0x09, 5 * S), 0x26);
	assert_int_equal(reg(0x32, 5 * S), 0x20);
	assert_int_equal(reg(0x06, 5 * S), 2);
	/* 60 seconds later. */
	assert_int_equal(reg(0x02, 65 * S), 0x46);
	assert_int_equal(reg(0x0d, 5 * S), 0x80);
}

static void test_binary_and_12_hour_formats(void **state)
{
	(void)state;
	set_reg(0x0b, 0x04, 5 * S); /* binary, 12-hour */
	assert_int_equal(reg(0x02, 5 * S), 45);
	assert_int_equal(reg(0x04, 5 * S), 0x80 | 1); /* 1 PM */
	set_reg(0x0b, 0x00, 5 * S); /* BCD, 12-hour */
	assert_int_equal(reg(0x04, 5 * S), 0x81);
}

static void test_update_in_progress_window(void **state)
{
	(void)state;
	assert_false(reg(0x0a, 5 * S + S / 2) & 0x80);
	assert_true(reg(0x0a, 5 * S + S - 100000) & 0x80);
	/* Guests cannot set UIP themselves. */
	set_reg(0x0a, 0xa6, 5 * S);
	assert_int_equal(reg(0x0a, 5 * S), 0x26);
}

static void test_guest_sets_its_own_clock(void **state)
{
	(void)state;
	set_reg(0x04, 0x08, 5 * S);  /* 08 h */
	set_reg(0x09, 0x30, 5 * S);  /* year 2030 */
	assert_int_equal(reg(0x04, 5 * S), 0x08);
	assert_int_equal(reg(0x09, 5 * S), 0x30);
	assert_int_equal(reg(0x02, 5 * S), 0x45); /* the rest is kept */
	/* It keeps running from there. */
	assert_int_equal(reg(0x04, 5 * S + 3600 * S), 0x09);
	/* A nonsense month is ignored. */
	set_reg(0x08, 0x13, 5 * S);
	assert_int_equal(reg(0x08, 5 * S), 0x11);
}

static void test_nvram_and_index_port(void **state)
{
	(void)state;
	set_reg(0x80 | 0x40, 0x5a, 5 * S); /* bit 7 is the NMI mask, not the index */
	assert_int_equal(reg(0x40, 5 * S), 0x5a);
	assert_int_equal(rtc_read(&rtc, 0, 5 * S), 0xff);
	assert_int_equal(reg(0x0c, 5 * S), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_calendar_conversions),
		cmocka_unit_test_setup(test_bcd_time_of_day_advances, setup),
		cmocka_unit_test_setup(test_binary_and_12_hour_formats, setup),
		cmocka_unit_test_setup(test_update_in_progress_window, setup),
		cmocka_unit_test_setup(test_guest_sets_its_own_clock, setup),
		cmocka_unit_test_setup(test_nvram_and_index_port, setup),
	};
	return cmocka_run_group_tests_name("rtc", tests, NULL, NULL);
}
