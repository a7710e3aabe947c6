#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fmt.h"

static void expect(const char *want, const char *format, ...)
{
	char buf[128];
	va_list ap;

	va_start(ap, format);
	int n = fmt_vsnprintf(buf, sizeof(buf), format, ap);
	va_end(ap);
	assert_string_equal(buf, want);
	assert_int_equal(n, (int)strlen(want));
}

static void test_integers(void **state)
{
	(void)state;
	expect("0 -1 42", "%d %d %u", 0, -1, 42u);
	expect("-9223372036854775808", "%lld", (long long)INT64_MIN);
	expect("18446744073709551615", "%llu", (unsigned long long)UINT64_MAX);
	expect("ff FF 0x10", "%x %X %p", 255u, 255u, (void *)0x10);
	expect("123456789", "%zu", (size_t)123456789);
}

static void test_width_and_flags(void **state)
{
	(void)state;
	expect("   42|42   |00042", "%5d|%-5d|%05d", 42, 42, 42);
	expect("-0042", "%05d", -42);
	expect("0000000000001000", "%016llx", 0x1000ULL);
	expect("  ab|ab  ", "%4s|%-4s", "ab", "ab");
}

static void test_strings(void **state)
{
	(void)state;
	expect("abc", "%.3s", "abcdef");
	expect("ab", "%.*s", 2, "abcdef");
	expect("(null)", "%s", (char *)NULL);
	/* An unterminated span: nothing past the precision may be read (ASan). */
	char *span = malloc(3);
	memcpy(span, "xyz", 3);
	expect("xyz", "%.3s", span);
	free(span);
	expect("100%", "100%%");
	expect("x", "%c", 'x');
}

static void test_unknown_conversion_is_shown(void **state)
{
	(void)state;
	expect("%q", "%q");
}

static void test_truncation_keeps_nul_and_reports_length(void **state)
{
	char buf[8];
	(void)state;

	memset(buf, 'Z', sizeof(buf));
	int n = fmt_snprintf(buf, sizeof(buf), "%s", "0123456789");
	assert_int_equal(n, 10);
	assert_string_equal(buf, "0123456");
	/* A zero-sized buffer is never written. */
	buf[0] = 'Z';
	assert_int_equal(fmt_snprintf(buf, 0, "%d", 12345), 5);
	assert_int_equal(buf[0], 'Z');
}

static void test_trailing_percent_stops(void **state)
{
	(void)state;
	expect("ab", "ab%");
}

static void test_hex_digit(void **state)
{
	(void)state;
	assert_int_equal(fmt_hex_digit('0'), 0);
	assert_int_equal(fmt_hex_digit('9'), 9);
	assert_int_equal(fmt_hex_digit('a'), 10);
	assert_int_equal(fmt_hex_digit('F'), 15);
	assert_int_equal(fmt_hex_digit('g'), -1);
	assert_int_equal(fmt_hex_digit('/'), -1);
	assert_int_equal(fmt_hex_digit(':'), -1);
	assert_int_equal(fmt_hex_digit('@'), -1);
	assert_int_equal(fmt_hex_digit(-1), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_width_and_flags),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_unknown_conversion_is_shown),
		cmocka_unit_test(test_truncation_keeps_nul_and_reports_length),
		cmocka_unit_test(test_trailing_percent_stops),
		cmocka_unit_test(test_hex_digit),
	};
	return cmocka_run_group_tests_name("fmt", tests, NULL, NULL);
}
