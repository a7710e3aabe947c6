/* A VM's console history and the rate of its output to the host log (devices/console.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "devices/console.h"

#define MS 1000000ULL
#define S (1000 * MS)
#define T0 (5 * S)
#define LINE 80

static struct console_rate rate;

static int setup(void **state)
{
	(void)state;
	memset(&rate, 0, sizeof(rate));
	return 0;
}

static enum console_rate_verdict admit(size_t len, uint64_t now)
{
	uint64_t unlogged = 0;

	return console_rate_admit(&rate, len, now, &unlogged);
}

/* A burst goes through whole; past it nothing until the bucket is full again. */
static void test_burst_then_skip_until_full(void **state)
{
	const unsigned burst_lines = CONSOLE_LOG_BURST / (LINE + CONSOLE_LOG_LINE_OVERHEAD);
	uint64_t unlogged = 0, now = T0;

	(void)state;
	for (unsigned i = 0; i < burst_lines; i++)
		assert_int_equal(admit(LINE, now), CONSOLE_RATE_LOG);
	assert_int_equal(admit(LINE, now), CONSOLE_RATE_FIRST_SKIP);
	/* Refilled enough for a line, but not full: still skipped, and counted. */
	now += S;
	assert_int_equal(admit(LINE, now), CONSOLE_RATE_SKIP);
	assert_int_equal(admit(0, now), CONSOLE_RATE_SKIP);
	/* Full again after CONSOLE_LOG_BURST / CONSOLE_LOG_RATE seconds. */
	now = T0 + (uint64_t)CONSOLE_LOG_BURST * S / CONSOLE_LOG_RATE;
	assert_int_equal(console_rate_admit(&rate, LINE, now, &unlogged), CONSOLE_RATE_RESUMED);
	assert_int_equal(unlogged, 2 * LINE);
	assert_int_equal(rate.unlogged_total, 2 * LINE);
}

/*
 * A guest that prints without pause for a minute gets about the rate
 * into the log, whatever the length of its lines, and one notice per burst.
 */
static void test_flood_is_held_to_the_rate(void **state)
{
	static const size_t lens[] = { 0, 1, 40, 159 };

	(void)state;
	for (unsigned k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		uint64_t logged = 0, notices = 0;

		memset(&rate, 0, sizeof(rate));
		/* A line every 100 us: 10000 lines a second. */
		for (uint64_t now = T0; now < T0 + 60 * S; now += 100000) {
			enum console_rate_verdict v = admit(lens[k], now);

			if (v == CONSOLE_RATE_LOG || v == CONSOLE_RATE_RESUMED)
				logged += lens[k] + CONSOLE_LOG_LINE_OVERHEAD;
			notices += v == CONSOLE_RATE_FIRST_SKIP;
		}
		assert_true(logged <= 60ULL * CONSOLE_LOG_RATE + CONSOLE_LOG_BURST);
		assert_true(logged >= 60ULL * CONSOLE_LOG_RATE / 2);
		assert_true(notices <= 60ULL * CONSOLE_LOG_RATE / CONSOLE_LOG_BURST + 1);
	}
}

/* A guest under the rate is never held back; a clock that goes back refills nothing. */
static void test_under_the_rate_and_clock_back(void **state)
{
	const uint64_t step = (uint64_t)(LINE + CONSOLE_LOG_LINE_OVERHEAD) * S / CONSOLE_LOG_RATE;

	(void)state;
	for (unsigned i = 0; i < 1000; i++)
		assert_int_equal(admit(LINE, T0 + i * step), CONSOLE_RATE_LOG);
	memset(&rate, 0, sizeof(rate));
	while (admit(LINE, T0) == CONSOLE_RATE_LOG)
		;
	assert_int_equal(admit(LINE, 0), CONSOLE_RATE_SKIP);
	assert_int_equal(admit(LINE, T0), CONSOLE_RATE_SKIP);
}

/* A line longer than the whole burst still gets through once the bucket is full. */
static void test_huge_line(void **state)
{
	(void)state;
	assert_int_equal(admit(4 * CONSOLE_LOG_BURST, T0), CONSOLE_RATE_LOG);
	assert_int_equal(admit(1, T0), CONSOLE_RATE_FIRST_SKIP);
}

/* The history keeps the newest CONSOLE_RING_SIZE bytes and says how much was lost. */
static void test_history(void **state)
{
	static struct console_ring ring;
	static uint8_t data[CONSOLE_RING_SIZE + 100], out[CONSOLE_RING_SIZE];
	uint64_t from = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	console_ring_write(&ring, data, 60);
	console_ring_write(&ring, data + 60, sizeof(data) - 60);
	assert_int_equal(console_ring_read(&ring, &from, out, sizeof(out)), CONSOLE_RING_SIZE);
	assert_int_equal(from, sizeof(data));
	assert_memory_equal(out, data + 100, CONSOLE_RING_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_burst_then_skip_until_full, setup),
		cmocka_unit_test_setup(test_flood_is_held_to_the_rate, setup),
		cmocka_unit_test_setup(test_under_the_rate_and_clock_back, setup),
		cmocka_unit_test_setup(test_huge_line, setup),
		cmocka_unit_test_setup(test_history, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
