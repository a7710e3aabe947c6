#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "boot/ipmi.h"

/* Get Watchdog Timer: NetFn App 06h, command 25h, no data (IPMI 2.0, 27.7). */
static void test_get_request(void **state)
{
	uint8_t m[IPMI_MESSAGE_MAX];

	(void)state;
	assert_int_equal(ipmi_request(IPMI_NETFN_APP, IPMI_CMD_GET_WATCHDOG, NULL, 0, m), 2);
	assert_int_equal(m[0], 0x18);
	assert_int_equal(m[1], 0x25);
}

/*
 * A running OS-load watchdog (use 3 with bit 6), hard reset, 300 s
 * initial and 123.4 s left; stopping it sends the same use without bit 6.
 */
static void test_running_watchdog_is_stopped(void **state)
{
	const uint8_t r[] = { 0x1c, 0x25, 0x00, 0x43, 0x01, 0x00, 0x00,
			      0xb8, 0x0b, 0xd2, 0x04 };
	struct ipmi_watchdog w;
	const char *why = NULL;
	uint8_t m[IPMI_MESSAGE_MAX];

	(void)state;
	assert_true(ipmi_parse_watchdog(r, sizeof(r), &w, &why));
	assert_true(w.use & IPMI_WATCHDOG_RUNNING);
	assert_int_equal(w.initial_ds, 3000);
	assert_int_equal(w.present_ds, 1234);
	assert_string_equal(ipmi_watchdog_action(&w), "a hard reset");
	assert_int_equal(ipmi_stop_watchdog_request(&w, m), 8);
	const uint8_t want[] = { 0x18, 0x24, 0x03, 0x01, 0x00, 0x00, 0xb8, 0x0b };
	assert_memory_equal(m, want, sizeof(want));
	const uint8_t done[] = { 0x1c, 0x24, 0x00 };
	assert_true(ipmi_response_ok(done, sizeof(done), IPMI_CMD_SET_WATCHDOG));
	assert_false(ipmi_response_ok(done, 2, IPMI_CMD_SET_WATCHDOG));
}

static void test_bad_responses(void **state)
{
	struct ipmi_watchdog w;
	const char *why = NULL;
	const uint8_t refused[] = { 0x1c, 0x25, 0xc1 };
	const uint8_t short_one[] = { 0x1c, 0x25, 0x00, 0x43 };
	const uint8_t other[] = { 0x1c, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0 };

	(void)state;
	assert_false(ipmi_parse_watchdog(refused, sizeof(refused), &w, &why));
	assert_string_equal(why, "the BMC refused Get Watchdog Timer");
	assert_false(ipmi_parse_watchdog(short_one, sizeof(short_one), &w, &why));
	assert_string_equal(why, "a malformed Get Watchdog Timer response");
	assert_false(ipmi_parse_watchdog(other, sizeof(other), &w, &why));
	assert_false(ipmi_parse_watchdog(other, 0, &w, &why));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_request),
		cmocka_unit_test(test_running_watchdog_is_stopped),
		cmocka_unit_test(test_bad_responses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
