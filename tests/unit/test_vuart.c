#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "devices/console.h"
#include "devices/vuart.h"

enum { DATA, IER, IIR, LCR, MCR, LSR, MSR, SCR };

static struct console_ring ring;
static struct vuart u;

static void to_ring(void *ctx, uint8_t byte)
{
	console_ring_write(ctx, &byte, 1);
}

static int setup(void **state)
{
	(void)state;
	memset(&ring, 0, sizeof(ring));
	vuart_init(&u, to_ring, &ring);
	return 0;
}

static void test_transmit_goes_to_the_sink(void **state)
{
	uint8_t out[8];
	uint64_t from = 0;
	(void)state;

	for (const char *s = "hi\n"; *s; s++) {
		assert_true(vuart_read(&u, LSR) & 0x20); /* THR empty */
		vuart_write(&u, DATA, (uint8_t)*s);
	}
	assert_int_equal(console_ring_read(&ring, &from, out, sizeof(out)), 3);
	assert_memory_equal(out, "hi\n", 3);
	assert_int_equal(from, 3);
}

static void test_divisor_latch_does_not_transmit(void **state)
{
	(void)state;
	vuart_write(&u, LCR, 0x80);
	vuart_write(&u, DATA, 0x01);
	vuart_write(&u, IER, 0x00);
	assert_int_equal(vuart_read(&u, DATA), 0x01);
	vuart_write(&u, LCR, 0x03);
	assert_int_equal(ring.written, 0);
	assert_int_equal(vuart_read(&u, LCR), 0x03);
}

static void test_receive_fifo_holds_16_bytes(void **state)
{
	uint8_t data[20];
	(void)state;

	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)('a' + i);
	assert_int_equal(vuart_feed(&u, data, sizeof(data)), VUART_FIFO_SIZE);
	assert_true(vuart_read(&u, LSR) & 0x01);
	for (unsigned i = 0; i < VUART_FIFO_SIZE; i++)
		assert_int_equal(vuart_read(&u, DATA), 'a' + i);
	assert_false(vuart_read(&u, LSR) & 0x01);
	/* Reading an empty FIFO is harmless. */
	assert_int_equal(vuart_read(&u, DATA), 0);
}

static void test_interrupts_follow_ier_and_out2(void **state)
{
	(void)state;
	assert_false(vuart_irq_line(&u));
	assert_int_equal(vuart_read(&u, IIR) & 0x0f, 0x01); /* none pending */

	vuart_write(&u, MCR, 0x08);     /* OUT2: the line reaches the PIC */
	vuart_write(&u, IER, 0x02);     /* THR empty */
	assert_true(vuart_irq_line(&u));
	assert_int_equal(vuart_read(&u, IIR) & 0x0f, 0x02);
	/* Reading IIR acknowledged it. */
	assert_false(vuart_irq_line(&u));
	vuart_write(&u, DATA, 'x');
	assert_true(vuart_irq_line(&u));

	vuart_write(&u, IER, 0x03);     /* received data too: it has priority */
	vuart_feed(&u, (const uint8_t *)"k", 1);
	assert_int_equal(vuart_read(&u, IIR) & 0x0f, 0x04);
	assert_int_equal(vuart_read(&u, DATA), 'k');
	assert_int_equal(vuart_read(&u, IIR) & 0x0f, 0x02);

	vuart_write(&u, MCR, 0x00);     /* OUT2 off: no line, whatever is pending */
	vuart_write(&u, DATA, 'y');
	assert_false(vuart_irq_line(&u));
}

static void test_loopback_as_linux_probes_it(void **state)
{
	(void)state;
	vuart_write(&u, MCR, 0x10 | 0x0a); /* loop, RTS, OUT2 */
	assert_int_equal(vuart_read(&u, MSR) & 0xf0, 0x90); /* CTS, DCD */
	vuart_write(&u, DATA, 0x5a);
	assert_int_equal(ring.written, 0); /* nothing left the UART */
	assert_int_equal(vuart_read(&u, DATA), 0x5a);
	/* More than the FIFO holds: an overrun, reported once in LSR. */
	for (unsigned i = 0; i < VUART_FIFO_SIZE + 1; i++)
		vuart_write(&u, DATA, (uint8_t)i);
	assert_int_equal(vuart_read(&u, LSR) & 0x03, 0x03);
	assert_int_equal(vuart_read(&u, LSR) & 0x02, 0);
	vuart_write(&u, MCR, 0x03);
	assert_int_equal(vuart_read(&u, MSR) & 0xf0, 0xb0); /* a terminal is attached */
}

static void test_fifo_control_and_scratch(void **state)
{
	(void)state;
	vuart_feed(&u, (const uint8_t *)"abc", 3);
	vuart_write(&u, IIR, 0x07);
	assert_int_equal(vuart_read(&u, IIR) & 0xc0, 0xc0);
	assert_false(vuart_read(&u, LSR) & 0x01);
	vuart_write(&u, SCR, 0xa5);
	assert_int_equal(vuart_read(&u, SCR), 0xa5);
	/* Offsets wrap at 8; read-only registers ignore writes. */
	vuart_write(&u, 8 + SCR, 0x11);
	assert_int_equal(vuart_read(&u, SCR), 0x11);
	vuart_write(&u, LSR, 0x00);
	assert_true(vuart_read(&u, LSR) & 0x60);
}

static void test_console_ring_keeps_the_newest(void **state)
{
	static uint8_t big[CONSOLE_RING_SIZE + 100];
	uint8_t out[64];
	uint64_t from = 0;
	(void)state;

	for (unsigned i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)i;
	console_ring_write(&ring, big, 50);
	console_ring_write(&ring, big, sizeof(big));
	assert_int_equal(ring.written, 50 + sizeof(big));
	/* A reader from 0 is moved to the oldest byte still held. */
	size_t n = console_ring_read(&ring, &from, out, sizeof(out));
	assert_int_equal(n, sizeof(out));
	assert_int_equal(from - n, ring.written - CONSOLE_RING_SIZE);
	assert_int_equal(out[0], (uint8_t)100);
	/* Reading at the end gives nothing. */
	from = ring.written;
	assert_int_equal(console_ring_read(&ring, &from, out, sizeof(out)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_transmit_goes_to_the_sink, setup),
		cmocka_unit_test_setup(test_divisor_latch_does_not_transmit, setup),
		cmocka_unit_test_setup(test_receive_fifo_holds_16_bytes, setup),
		cmocka_unit_test_setup(test_interrupts_follow_ier_and_out2, setup),
		cmocka_unit_test_setup(test_loopback_as_linux_probes_it, setup),
		cmocka_unit_test_setup(test_fifo_control_and_scratch, setup),
		cmocka_unit_test_setup(test_console_ring_keeps_the_newest, setup),
	};
	return cmocka_run_group_tests_name("vuart", tests, NULL, NULL);
}
