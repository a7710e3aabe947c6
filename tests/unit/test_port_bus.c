#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/port_bus.h"

static uint32_t last_write;
static uint16_t last_offset;

static uint32_t read_offset(void *ctx, uint16_t offset, unsigned size)
{
	(void)ctx;
	return 0x100U * size + offset;
}

static void record_write(void *ctx, uint16_t offset, unsigned size, uint32_t value)
{
	(void)ctx;
	(void)size;
	last_offset = offset;
	last_write = value;
}

static void test_add_rejects_bad_ranges(void **state)
{
	struct port_bus bus = { 0 };
	(void)state;

	assert_int_equal(port_bus_add(&bus, &(struct port_device){ .base = 0x3f8, .count = 8, .name = "a" }), 0);
	assert_int_equal(port_bus_add(&bus, &(struct port_device){ .base = 0x3fc, .count = 8, .name = "overlap" }), -1);
	assert_int_equal(port_bus_add(&bus, &(struct port_device){ .base = 0x3f0, .count = 9, .name = "overlap" }), -1);
	assert_int_equal(port_bus_add(&bus, &(struct port_device){ .base = 0x3f0, .count = 8, .name = "below" }), 0);
	assert_int_equal(port_bus_add(&bus, &(struct port_device){ .base = 0x100, .count = 0, .name = "empty" }), -1);
	assert_int_equal(port_bus_add(&bus, &(struct port_device){ .base = 0xfffe, .count = 4, .name = "wraps" }), -1);
	assert_int_equal(port_bus_add(&bus, &(struct port_device){ .base = 0xfffc, .count = 4, .name = "top" }), 0);
	for (unsigned i = bus.count; i < PORT_BUS_MAX; i++)
		assert_int_equal(port_bus_add(&bus, &(struct port_device){ .base = (uint16_t)(0x1000 + i * 8), .count = 8, .name = "x" }), 0);
	assert_int_equal(port_bus_add(&bus, &(struct port_device){ .base = 0x2000, .count = 1, .name = "full" }), -1);
}

static void test_access_must_lie_inside_the_range(void **state)
{
	struct port_bus bus = { 0 };
	uint32_t v;
	(void)state;

	port_bus_add(&bus, &(struct port_device){ .base = 0x70, .count = 2, .name = "rtc", .read = read_offset, .write = record_write });
	assert_true(port_bus_access(&bus, 0x71, 1, true, &v));
	assert_int_equal(v, 0x101);
	assert_true(port_bus_access(&bus, 0x70, 2, true, &v));
	assert_int_equal(v, 0x200);
	/* Straddling the end: nobody claims it; the read floats high. */
	assert_false(port_bus_access(&bus, 0x71, 2, true, &v));
	assert_int_equal(v, 0xffff);
	assert_false(port_bus_access(&bus, 0x6f, 4, true, &v));
	assert_int_equal(v, 0xffffffffU);
	v = 0x42;
	assert_true(port_bus_access(&bus, 0x71, 1, false, &v));
	assert_int_equal(last_offset, 1);
	assert_int_equal(last_write, 0x42);
}

static void test_write_only_device_reads_all_ones(void **state)
{
	struct port_bus bus = { 0 };
	uint32_t v = 0;
	(void)state;

	port_bus_add(&bus, &(struct port_device){ .base = 0xe9, .count = 1, .name = "debug", .write = record_write });
	assert_true(port_bus_access(&bus, 0xe9, 1, true, &v));
	assert_int_equal(v, 0xff);
	/* Unclaimed writes are dropped. */
	v = 7;
	last_write = 0;
	assert_false(port_bus_access(&bus, 0x80, 1, false, &v));
	assert_int_equal(last_write, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_rejects_bad_ranges),
		cmocka_unit_test(test_access_must_lie_inside_the_range),
		cmocka_unit_test(test_write_only_device_reads_all_ones),
	};
	return cmocka_run_group_tests_name("port_bus", tests, NULL, NULL);
}
