#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/pic.h"

static struct pic pic;

/* What Linux's init_8259A() writes: vectors 0x20/0x28, cascade on IRQ 2. */
static int setup(void **state)
{
	(void)state;
	pic_init(&pic);
	pic_write(&pic, 0, 0, 0x11);
	pic_write(&pic, 0, 1, 0x20);
	pic_write(&pic, 0, 1, 0x04);
	pic_write(&pic, 0, 1, 0x01);
	pic_write(&pic, 1, 0, 0x11);
	pic_write(&pic, 1, 1, 0x28);
	pic_write(&pic, 1, 1, 0x02);
	pic_write(&pic, 1, 1, 0x01);
	pic_write(&pic, 0, 1, 0x00);
	pic_write(&pic, 1, 1, 0x00);
	return 0;
}

static void eoi(unsigned chip)
{
	pic_write(&pic, chip, 0, 0x20);
}

static void test_power_on_masks_everything(void **state)
{
	(void)state;
	pic_init(&pic);
	pic_set_irq(&pic, 0, true);
	assert_int_equal(pic_pending(&pic), -1);
	assert_int_equal(pic_read(&pic, 0, 1), 0xff);
}

static void test_edge_request_ack_eoi(void **state)
{
	(void)state;
	pic_set_irq(&pic, 0, true);
	assert_int_equal(pic_pending(&pic), 0x20);
	assert_int_equal(pic_acknowledge(&pic), 0x20);
	pic_write(&pic, 0, 0, 0x0b); /* OCW3: read ISR */
	assert_int_equal(pic_read(&pic, 0, 0), 0x01);
	/* The edge was consumed: holding the line high raises nothing more. */
	assert_int_equal(pic_pending(&pic), -1);
	eoi(0);
	assert_int_equal(pic_read(&pic, 0, 0), 0x00);
	assert_int_equal(pic_pending(&pic), -1);
	/* A new edge needs the line to drop first. */
	pic_set_irq(&pic, 0, false);
	pic_set_irq(&pic, 0, true);
	assert_int_equal(pic_pending(&pic), 0x20);
}

static void test_priority_and_nesting(void **state)
{
	(void)state;
	pic_set_irq(&pic, 4, true);
	pic_set_irq(&pic, 1, true);
	assert_int_equal(pic_acknowledge(&pic), 0x21); /* IRQ 1 before IRQ 4 */
	assert_int_equal(pic_pending(&pic), -1);       /* IRQ 4 waits for the EOI */
	pic_set_irq(&pic, 0, true);
	assert_int_equal(pic_pending(&pic), 0x20);     /* higher priority preempts */
	assert_int_equal(pic_acknowledge(&pic), 0x20);
	eoi(0);                                        /* ends IRQ 0, the highest in service */
	assert_int_equal(pic_pending(&pic), -1);
	eoi(0);                                        /* ends IRQ 1 */
	assert_int_equal(pic_acknowledge(&pic), 0x24);
}

static void test_specific_eoi(void **state)
{
	(void)state;
	pic_set_irq(&pic, 3, true);
	pic_acknowledge(&pic);
	pic_write(&pic, 0, 0, 0x60 | 3);
	pic_write(&pic, 0, 0, 0x0b);
	assert_int_equal(pic_read(&pic, 0, 0), 0);
}

static void test_mask(void **state)
{
	(void)state;
	pic_write(&pic, 0, 1, 0x02);
	pic_set_irq(&pic, 1, true);
	assert_int_equal(pic_pending(&pic), -1);
	pic_write(&pic, 0, 0, 0x0a); /* OCW3: read IRR */
	assert_int_equal(pic_read(&pic, 0, 0), 0x02);
	pic_write(&pic, 0, 1, 0x00);
	assert_int_equal(pic_pending(&pic), 0x21);
}

static void test_slave_through_the_cascade(void **state)
{
	(void)state;
	pic_set_irq(&pic, 12, true);
	assert_int_equal(pic_pending(&pic), 0x2c);
	assert_int_equal(pic_acknowledge(&pic), 0x2c);
	pic_write(&pic, 0, 0, 0x0b);
	pic_write(&pic, 1, 0, 0x0b);
	assert_int_equal(pic_read(&pic, 0, 0), 0x04);
	assert_int_equal(pic_read(&pic, 1, 0), 0x10);
	eoi(1);
	eoi(0);
	assert_int_equal(pic_read(&pic, 0, 0), 0);
	assert_int_equal(pic_read(&pic, 1, 0), 0);
	/* A masked slave input does not reach the master. */
	pic_write(&pic, 1, 1, 0x10);
	pic_set_irq(&pic, 12, false);
	pic_set_irq(&pic, 12, true);
	assert_int_equal(pic_pending(&pic), -1);
}

static void test_level_triggered_stays_until_the_line_drops(void **state)
{
	(void)state;
	pic_elcr_write(&pic, 1, 0x08); /* IRQ 11 level */
	assert_int_equal(pic_elcr_read(&pic, 1), 0x08);
	pic_set_irq(&pic, 11, true);
	assert_int_equal(pic_acknowledge(&pic), 0x2b);
	eoi(1);
	eoi(0);
	assert_int_equal(pic_pending(&pic), 0x2b); /* still asserted */
	pic_set_irq(&pic, 11, false);
	assert_int_equal(pic_pending(&pic), -1);
	/* The timer, keyboard, cascade, RTC and FPU lines stay edge-triggered. */
	pic_elcr_write(&pic, 0, 0xff);
	pic_elcr_write(&pic, 1, 0xff);
	assert_int_equal(pic_elcr_read(&pic, 0), 0xf8);
	assert_int_equal(pic_elcr_read(&pic, 1), 0xde);
}

static void test_auto_eoi_and_spurious(void **state)
{
	(void)state;
	pic_write(&pic, 0, 0, 0x11);
	pic_write(&pic, 0, 1, 0x08);
	pic_write(&pic, 0, 1, 0x04);
	pic_write(&pic, 0, 1, 0x03); /* 8086 mode, automatic EOI */
	pic_write(&pic, 0, 1, 0x00);
	pic_set_irq(&pic, 5, true);
	assert_int_equal(pic_acknowledge(&pic), 0x0d);
	pic_write(&pic, 0, 0, 0x0b);
	assert_int_equal(pic_read(&pic, 0, 0), 0);
	/* An acknowledge with nothing pending gets the IRQ 7 vector. */
	assert_int_equal(pic_acknowledge(&pic), 0x0f);
	/* Out-of-range lines are ignored. */
	pic_set_irq(&pic, 16, true);
	assert_int_equal(pic_pending(&pic), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_power_on_masks_everything),
		cmocka_unit_test_setup(test_edge_request_ack_eoi, setup),
		cmocka_unit_test_setup(test_priority_and_nesting, setup),
		cmocka_unit_test_setup(test_specific_eoi, setup),
		cmocka_unit_test_setup(test_mask, setup),
		cmocka_unit_test_setup(test_slave_through_the_cascade, setup),
		cmocka_unit_test_setup(test_level_triggered_stays_until_the_line_drops, setup),
		cmocka_unit_test_setup(test_auto_eoi_and_spurious, setup),
	};
	return cmocka_run_group_tests_name("pic", tests, NULL, NULL);
}
