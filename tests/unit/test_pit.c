#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/pit.h"

#define MS 1000000ULL
static struct pit pit;

static int setup(void **state)
{
	(void)state;
	pit_init(&pit);
	return 0;
}

static uint16_t read_count(unsigned counter, uint64_t now)
{
	pit_write(&pit, 3, (uint8_t)(counter << 6), now); /* latch */
	uint8_t lo = pit_read(&pit, counter, now);
	return (uint16_t)(lo | pit_read(&pit, counter, now) << 8);
}

static void program(unsigned counter, unsigned mode, uint16_t count, uint64_t now)
{
	pit_write(&pit, 3, (uint8_t)(counter << 6 | 3 << 4 | mode << 1), now);
	pit_write(&pit, counter, (uint8_t)count, now);
	pit_write(&pit, counter, (uint8_t)(count >> 8), now);
}

static void test_rate_generator_ticks_every_period(void **state)
{
	(void)state;
	program(0, 2, 1193, 0); /* 1 ms, as Linux's PIT clockevent at HZ=1000 */
	assert_false(pit_irq0_due(&pit, 0));
	assert_false(pit_irq0_due(&pit, MS - 10000));
	assert_true(pit_irq0_due(&pit, MS + 1000));
	assert_false(pit_irq0_due(&pit, MS + 2000));
	assert_true(pit_irq0_due(&pit, 2 * MS + 1000));
	/* Missed periods coalesce into one request. */
	assert_true(pit_irq0_due(&pit, 7 * MS + 1000));
	assert_false(pit_irq0_due(&pit, 7 * MS + 2000));
	/* The 8th edge: 8 periods of 1193 input clocks. */
	uint64_t next = pit_next_irq0_ns(&pit, 7 * MS + 2000);
	uint64_t want = 8 * 1193 * 1000000000ULL / PIT_HZ;
	assert_true(next >= want && next <= want + 1);
	assert_true(pit_irq0_due(&pit, next));
}

static void test_count_reads_down(void **state)
{
	(void)state;
	program(0, 2, 1193, 0);
	uint16_t half = read_count(0, MS / 2);
	assert_true(half > 590 && half < 600);
	/* Unlatched LSB/MSB reads use the read flip-flop. */
	uint8_t lo = pit_read(&pit, 0, MS / 4);
	uint8_t hi = pit_read(&pit, 0, MS / 4);
	uint16_t quarter = (uint16_t)(lo | hi << 8);
	assert_true(quarter > 890 && quarter < 900);
	/* A latch holds its value until read. */
	pit_write(&pit, 3, 0x00, MS / 10);
	lo = pit_read(&pit, 0, MS / 2);
	hi = pit_read(&pit, 0, MS / 2);
	assert_true((uint16_t)(lo | hi << 8) > 1070);
}

static void test_one_shot_mode_0(void **state)
{
	(void)state;
	program(0, 0, 11932, 0); /* 10 ms */
	assert_false(pit_irq0_due(&pit, 9 * MS));
	assert_true(pit_irq0_due(&pit, 10 * MS + 1000));
	assert_false(pit_irq0_due(&pit, 30 * MS));
	assert_int_equal(pit_next_irq0_ns(&pit, 30 * MS), 0);
	/* Rewriting the count re-arms it. */
	pit_write(&pit, 0, 0x00, 40 * MS);
	pit_write(&pit, 0, 0x01, 40 * MS);
	assert_true(pit_irq0_due(&pit, 41 * MS));
}

static void test_unprogrammed_counter_is_silent(void **state)
{
	(void)state;
	assert_false(pit_irq0_due(&pit, 100 * MS));
	assert_int_equal(pit_next_irq0_ns(&pit, 0), 0);
	assert_int_equal(pit_read(&pit, 3, 0), 0xff);
	/* Read-back commands are accepted and ignored. */
	pit_write(&pit, 3, 0xc2, 0);
}

/* Linux's pit_calibrate_tsc(): gate counter 2, mode 0, poll OUT2 on port 0x61. */
static void test_counter2_gate_and_output_on_port_61(void **state)
{
	(void)state;
	pit_port_b_write(&pit, (pit_port_b_read(&pit, 0) & ~0x02) | 0x01, 0);
	program(2, 0, 11932, 0); /* 10 ms */
	assert_false(pit_port_b_read(&pit, 5 * MS) & 0x20);
	assert_true(pit_port_b_read(&pit, 10 * MS + 1000) & 0x20);
	assert_true(pit_port_b_read(&pit, 10 * MS) & 0x01);

	/* With the gate low the count pauses. */
	program(2, 0, 11932, 20 * MS);
	pit_port_b_write(&pit, 0x00, 25 * MS);
	assert_false(pit_port_b_read(&pit, 40 * MS) & 0x20);
	pit_port_b_write(&pit, 0x01, 40 * MS);
	assert_false(pit_port_b_read(&pit, 44 * MS) & 0x20);
	assert_true(pit_port_b_read(&pit, 45 * MS + 1000) & 0x20);
}

static void test_square_wave_and_lsb_only(void **state)
{
	(void)state;
	pit_write(&pit, 3, 0x16, 0); /* counter 0, LSB only, mode 3 */
	pit_write(&pit, 0, 100, 0);
	assert_true(pit_irq0_due(&pit, 100 * 1000000000ULL / PIT_HZ + 1000));
	assert_true(pit_read(&pit, 0, 0) <= 100);
	/* A count of 0 means 65536. */
	program(1, 2, 0, 0);
	assert_true(read_count(1, 1000) > 65000);
}

/* A reload of 1 (IRQ 0 every 838 ns) raises IRQ 0 at most once per floor. */
static void test_irq0_floor(void **state)
{
	(void)state;
	unsigned irqs = 0;

	program(0, 2, 1, MS);
	for (uint64_t now = MS; now < 11 * MS; now += 1000) {
		if (!pit_irq0_due(&pit, now))
			continue;
		irqs++;
		assert_true(pit_next_irq0_ns(&pit, now) >= now + PIT_IRQ0_FLOOR_NS);
	}
	assert_true(irqs >= 10 * MS / PIT_IRQ0_FLOOR_NS - 1 && irqs <= 10 * MS / PIT_IRQ0_FLOOR_NS);

	/* Re-arming a one-shot from the handler does not get round it. */
	irqs = 0;
	for (uint64_t now = 11 * MS; now < 21 * MS; now += 1000) {
		program(0, 0, 1, now);
		irqs += pit_irq0_due(&pit, now + 1000);
	}
	assert_true(irqs <= 10 * MS / PIT_IRQ0_FLOOR_NS + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_rate_generator_ticks_every_period, setup),
		cmocka_unit_test_setup(test_count_reads_down, setup),
		cmocka_unit_test_setup(test_one_shot_mode_0, setup),
		cmocka_unit_test_setup(test_unprogrammed_counter_is_silent, setup),
		cmocka_unit_test_setup(test_counter2_gate_and_output_on_port_61, setup),
		cmocka_unit_test_setup(test_square_wave_and_lsb_only, setup),
		cmocka_unit_test_setup(test_irq0_floor, setup),
	};
	return cmocka_run_group_tests_name("pit", tests, NULL, NULL);
}
