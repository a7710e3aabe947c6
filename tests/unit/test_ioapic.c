#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/ioapic.h"
#include "devices/lapic.h"

#define MASKED 0x10000U
#define LEVEL 0x8000U
#define REMOTE_IRR 0x4000U
#define ACTIVE_LOW 0x2000U

struct delivery {
	uint8_t vector, dest, dest_mode, delivery_mode;
	bool level;
};

static struct ioapic io;
static struct delivery sent[16];
static int sent_count;
static bool accept_deliveries;

static bool record(void *ctx, uint8_t vector, bool level_triggered, uint8_t dest,
		   uint8_t dest_mode, uint8_t delivery_mode)
{
	assert_ptr_equal(ctx, &io);
	if (sent_count < 16) {
		sent[sent_count] = (struct delivery){
			.vector = vector, .dest = dest, .dest_mode = dest_mode,
			.delivery_mode = delivery_mode, .level = level_triggered,
		};
	}
	sent_count++;
	return accept_deliveries;
}

static int setup(void **state)
{
	(void)state;
	ioapic_init(&io, 1);
	io.deliver = record;
	io.ctx = &io;
	sent_count = 0;
	accept_deliveries = true;
	return 0;
}

static uint32_t reg_read(uint32_t reg)
{
	ioapic_mmio_write(&io, IOAPIC_REGSEL, 4, reg);
	return ioapic_mmio_read(&io, IOAPIC_IOWIN, 4);
}

static void reg_write(uint32_t reg, uint32_t value)
{
	ioapic_mmio_write(&io, IOAPIC_REGSEL, 4, reg);
	ioapic_mmio_write(&io, IOAPIC_IOWIN, 4, value);
}

static void program(unsigned pin, uint32_t low, uint8_t dest)
{
	reg_write(0x11 + 2 * pin, (uint32_t)dest << 24);
	reg_write(0x10 + 2 * pin, low);
}

static uint32_t entry(unsigned pin)
{
	return reg_read(0x10 + 2 * pin);
}

static void test_identification_registers(void **state)
{
	(void)state;
	assert_int_equal(reg_read(0x00), 0x01000000);
	assert_int_equal(reg_read(0x01), 0x00170020);
	assert_int_equal(reg_read(0x02), 0x01000000);
	/* The ID is four bits, the rest of the register reserved. */
	reg_write(0x00, 0xffffffffU);
	assert_int_equal(reg_read(0x00), 0x0f000000);
	assert_int_equal(reg_read(0x02), 0x0f000000);
	/* Version and arbitration are read-only. */
	reg_write(0x01, 0);
	reg_write(0x02, 0);
	assert_int_equal(reg_read(0x01), 0x00170020);
	assert_int_equal(reg_read(0x02), 0x0f000000);
	/* IOREGSEL reads back, eight bits of it. */
	ioapic_mmio_write(&io, IOAPIC_REGSEL, 4, 0x1234);
	assert_int_equal(ioapic_mmio_read(&io, IOAPIC_REGSEL, 4), 0x34);
	/* Every entry starts masked. */
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		assert_int_equal(entry(pin), MASKED);
		assert_int_equal(reg_read(0x11 + 2 * pin), 0);
	}
}

static void test_redirection_entry_bits(void **state)
{
	(void)state;
	reg_write(0x10 + 2 * 23, 0xffffffffU);
	reg_write(0x11 + 2 * 23, 0xffffffffU);
	/* Delivery status (12) and Remote IRR (14) are read-only; 55:17 reserved. */
	assert_int_equal(reg_read(0x10 + 2 * 23), 0x1afff);
	assert_int_equal(reg_read(0x11 + 2 * 23), 0xff000000U);
	assert_int_equal(sent_count, 0); /* masked */
	/* Halves are independent. */
	reg_write(0x11 + 2 * 23, 0x02000000);
	assert_int_equal(reg_read(0x10 + 2 * 23), 0x1afff);
	assert_int_equal(io.redir[23], 0x020000000001afffULL);
}

static void test_bad_register_selects_and_accesses(void **state)
{
	(void)state;
	program(4, 0x34, 0);
	/* Indexes past the table, and the gaps, read 0 and ignore writes. */
	static const uint32_t bad[] = { 0x03, 0x0f, 0x40, 0x41, 0x80, 0xff };
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reg_write(bad[i], 0xffffffffU);
		assert_int_equal(reg_read(bad[i]), 0);
	}
	/* IOREGSEL keeps eight bits: 0x118 selects 0x18 (pin 4 low). */
	ioapic_mmio_write(&io, IOAPIC_REGSEL, 4, 0x118);
	assert_int_equal(ioapic_mmio_read(&io, IOAPIC_IOWIN, 4), 0x34);
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		assert_int_equal(entry(pin), pin == 4 ? 0x34 : MASKED);
		assert_int_equal(reg_read(0x11 + 2 * pin), 0);
	}
	assert_int_equal(reg_read(0x00), 0x01000000);

	/* Only 4-byte accesses at 0x00, 0x10 and 0x40 reach registers. */
	ioapic_mmio_write(&io, IOAPIC_REGSEL, 4, 0x18);
	assert_int_equal(ioapic_mmio_read(&io, IOAPIC_IOWIN, 1), 0);
	assert_int_equal(ioapic_mmio_read(&io, IOAPIC_IOWIN, 8), 0);
	assert_int_equal(ioapic_mmio_read(&io, IOAPIC_IOWIN + 4, 4), 0);
	assert_int_equal(ioapic_mmio_read(&io, IOAPIC_EOI, 4), 0);
	assert_int_equal(ioapic_mmio_read(&io, 0x20, 4), 0);
	assert_int_equal(ioapic_mmio_read(&io, UINT64_MAX, 4), 0);
	ioapic_mmio_write(&io, IOAPIC_IOWIN, 2, MASKED);
	ioapic_mmio_write(&io, IOAPIC_IOWIN + 1, 4, MASKED);
	ioapic_mmio_write(&io, IOAPIC_REGSEL, 1, 0x00);
	ioapic_mmio_write(&io, 0x30, 4, MASKED);
	ioapic_mmio_write(&io, UINT64_MAX, 4, MASKED);
	assert_int_equal(ioapic_mmio_read(&io, IOAPIC_REGSEL, 4), 0x18);
	assert_int_equal(ioapic_mmio_read(&io, IOAPIC_IOWIN, 4), 0x34);

	/* Out-of-range pins are ignored. */
	ioapic_set_irq(&io, 24, true);
	ioapic_set_irq(&io, ~0U, true);
	assert_int_equal(sent_count, 0);
}

static void test_edge_triggered(void **state)
{
	(void)state;
	program(2, 0x30, 0);
	ioapic_set_irq(&io, 2, true);
	assert_int_equal(sent_count, 1);
	assert_int_equal(sent[0].vector, 0x30);
	assert_false(sent[0].level);
	assert_int_equal(sent[0].delivery_mode, IOAPIC_DM_FIXED);
	assert_int_equal(sent[0].dest_mode, 0);
	/* Holding the line raises nothing more; a new edge does. */
	ioapic_set_irq(&io, 2, true);
	assert_int_equal(sent_count, 1);
	ioapic_set_irq(&io, 2, false);
	assert_int_equal(sent_count, 1);
	ioapic_set_irq(&io, 2, true);
	assert_int_equal(sent_count, 2);
	/* No Remote IRR, and an EOI changes nothing. */
	assert_int_equal(entry(2), 0x30);
	ioapic_eoi(&io, 0x30);
	assert_int_equal(sent_count, 2);
	/* Destination fields are passed through. */
	program(3, 0x31 | 0x800 | 0x100, 0x0f);
	ioapic_set_irq(&io, 3, true);
	assert_int_equal(sent[2].dest, 0x0f);
	assert_int_equal(sent[2].dest_mode, 1);
	assert_int_equal(sent[2].delivery_mode, IOAPIC_DM_LOWEST);
}

static void test_masked_edge_is_lost(void **state)
{
	(void)state;
	program(1, MASKED | 0x31, 0);
	ioapic_set_irq(&io, 1, true);
	ioapic_set_irq(&io, 1, false);
	ioapic_set_irq(&io, 1, true);
	assert_int_equal(sent_count, 0);
	/* Unmasking does not replay it, even with the line still high. */
	program(1, 0x31, 0);
	assert_int_equal(sent_count, 0);
	ioapic_set_irq(&io, 1, false);
	ioapic_set_irq(&io, 1, true);
	assert_int_equal(sent_count, 1);
}

static void test_level_triggered_remote_irr(void **state)
{
	(void)state;
	program(9, LEVEL | 0x41, 0);
	ioapic_set_irq(&io, 9, true);
	assert_int_equal(sent_count, 1);
	assert_true(sent[0].level);
	assert_int_equal(entry(9), LEVEL | REMOTE_IRR | 0x41);
	/* No re-delivery while Remote IRR is set. */
	ioapic_set_irq(&io, 9, true);
	ioapic_set_irq(&io, 9, false);
	ioapic_set_irq(&io, 9, true);
	assert_int_equal(sent_count, 1);
	/* Another vector's EOI does not count. */
	ioapic_eoi(&io, 0x42);
	assert_int_equal(sent_count, 1);
	/* The EOI with the line still asserted delivers again. */
	ioapic_eoi(&io, 0x41);
	assert_int_equal(sent_count, 2);
	assert_true(entry(9) & REMOTE_IRR);
	/* Line dropped before the EOI: Remote IRR clears, nothing more. */
	ioapic_set_irq(&io, 9, false);
	ioapic_eoi(&io, 0x41);
	assert_int_equal(sent_count, 2);
	assert_int_equal(entry(9), LEVEL | 0x41);
	/* Remote IRR is read-only. */
	reg_write(0x10 + 2 * 9, LEVEL | REMOTE_IRR | 0x41);
	assert_int_equal(entry(9), LEVEL | 0x41);
}

static void test_eoi_register(void **state)
{
	(void)state;
	program(10, LEVEL | 0x51, 0);
	program(11, LEVEL | 0x51, 0); /* two pins sharing a vector */
	ioapic_set_irq(&io, 10, true);
	ioapic_set_irq(&io, 11, true);
	assert_int_equal(sent_count, 2);
	ioapic_set_irq(&io, 10, false);
	ioapic_set_irq(&io, 11, false);
	ioapic_mmio_write(&io, IOAPIC_EOI, 4, 0xffffff51U); /* the vector is bits 7:0 */
	assert_false(entry(10) & REMOTE_IRR);
	assert_false(entry(11) & REMOTE_IRR);
	assert_int_equal(sent_count, 2);
}

static void test_masked_level_delivers_on_unmask(void **state)
{
	(void)state;
	program(5, MASKED | LEVEL | 0x45, 0);
	ioapic_set_irq(&io, 5, true);
	assert_int_equal(sent_count, 0);
	program(5, LEVEL | 0x45, 0);
	assert_int_equal(sent_count, 1);
	/* Masking after delivery keeps Remote IRR for the EOI to clear. */
	program(5, MASKED | LEVEL | 0x45, 0);
	assert_true(entry(5) & REMOTE_IRR);
	ioapic_eoi(&io, 0x45);
	assert_int_equal(sent_count, 1);
	assert_false(entry(5) & REMOTE_IRR);
	/* A level that came and went while masked leaves nothing behind. */
	ioapic_set_irq(&io, 5, false);
	program(5, LEVEL | 0x45, 0);
	assert_int_equal(sent_count, 1);
}

static void test_polarity(void **state)
{
	(void)state;
	/* Lines idle high on a pulled-up active-low wire. */
	ioapic_set_irq(&io, 16, true);
	ioapic_set_irq(&io, 17, true);
	program(16, ACTIVE_LOW | LEVEL | 0x61, 0);
	program(17, ACTIVE_LOW | 0x62, 0);
	assert_int_equal(sent_count, 0);
	/* Driving the line low asserts it. */
	ioapic_set_irq(&io, 16, false);
	assert_int_equal(sent_count, 1);
	assert_int_equal(sent[0].vector, 0x61);
	ioapic_set_irq(&io, 16, true);
	ioapic_eoi(&io, 0x61);
	assert_int_equal(sent_count, 1);
	/* Edge: the falling edge is the assertion, the rising one is not. */
	ioapic_set_irq(&io, 17, false);
	assert_int_equal(sent_count, 2);
	assert_int_equal(sent[1].vector, 0x62);
	ioapic_set_irq(&io, 17, true);
	assert_int_equal(sent_count, 2);
	/* Reprogramming a level pin active-high while the line is high asserts it. */
	program(16, LEVEL | 0x61, 0);
	assert_int_equal(sent_count, 3);
}

static void test_refused_delivery_is_retried(void **state)
{
	(void)state;
	accept_deliveries = false;
	program(6, LEVEL | 0x46, 0);
	ioapic_set_irq(&io, 6, true);
	assert_int_equal(sent_count, 1);
	assert_false(entry(6) & REMOTE_IRR);
	/* The line is still asserted: the next evaluation tries again. */
	accept_deliveries = true;
	ioapic_set_irq(&io, 6, true);
	assert_int_equal(sent_count, 2);
	assert_true(entry(6) & REMOTE_IRR);
	/* No callback wired: nothing happens, nothing crashes. */
	io.deliver = NULL;
	program(7, 0x47, 0);
	ioapic_set_irq(&io, 7, true);
	assert_int_equal(sent_count, 2);
}

static void test_non_fixed_modes_are_edge(void **state)
{
	(void)state;
	program(0, LEVEL | IOAPIC_DM_EXTINT << 8, 0);
	ioapic_set_irq(&io, 0, true);
	assert_int_equal(sent_count, 1);
	assert_int_equal(sent[0].delivery_mode, IOAPIC_DM_EXTINT);
	assert_false(sent[0].level);
	assert_false(entry(0) & REMOTE_IRR);
	program(8, LEVEL | IOAPIC_DM_NMI << 8, 0);
	ioapic_set_irq(&io, 8, true);
	ioapic_set_irq(&io, 8, true);
	assert_int_equal(sent_count, 2);
	assert_int_equal(sent[1].delivery_mode, IOAPIC_DM_NMI);
	ioapic_set_irq(&io, 8, false);
	ioapic_set_irq(&io, 8, true);
	assert_int_equal(sent_count, 3);

	/* Switching a level pin to edge drops a stale Remote IRR (Linux's EOI for old I/O APICs). */
	program(12, LEVEL | 0x4c, 0);
	ioapic_set_irq(&io, 12, true);
	assert_true(entry(12) & REMOTE_IRR);
	program(12, 0x4c, 0);
	assert_false(entry(12) & REMOTE_IRR);
	assert_int_equal(sent_count, 4);
}

/* The board wiring a caller builds: I/O APIC -> local APIC, EOI broadcast back. */
static struct lapic lapic;

static bool to_lapic(void *ctx, uint8_t vector, bool level_triggered, uint8_t dest,
		     uint8_t dest_mode, uint8_t delivery_mode)
{
	(void)ctx;
	if (delivery_mode != IOAPIC_DM_FIXED && delivery_mode != IOAPIC_DM_LOWEST)
		return false;
	if (!lapic_is_destination(&lapic, dest, dest_mode))
		return false;
	return lapic_accept(&lapic, vector, level_triggered);
}

static void lapic_eoi(void *ctx, uint8_t vector)
{
	ioapic_eoi(ctx, vector);
}

static void test_with_the_local_apic(void **state)
{
	(void)state;
	const struct lapic_config cfg = { .bus_hz = 1000000000, .tsc_hz = 1000000000,
					  .phys_addr_bits = 39 };
	lapic_init(&lapic, &cfg);
	lapic.eoi_broadcast = lapic_eoi;
	lapic.ctx = &io;
	io.deliver = to_lapic;

	program(20, ACTIVE_LOW | LEVEL | 0x71, 0);
	ioapic_set_irq(&io, 20, false); /* asserted */
	assert_int_equal(lapic_pending(&lapic), 0x71);
	assert_int_equal(lapic_acknowledge(&lapic, 0), 0x71);
	assert_true(entry(20) & REMOTE_IRR);
	/* The handler has not quietened the device: the EOI brings it back. */
	lapic_mmio_write(&lapic, 0xb0, 4, 0, 0, 0);
	assert_int_equal(lapic_pending(&lapic), 0x71);
	assert_true(entry(20) & REMOTE_IRR);
	assert_int_equal(lapic_acknowledge(&lapic, 0), 0x71);
	ioapic_set_irq(&io, 20, true);
	lapic_mmio_write(&lapic, 0xb0, 4, 0, 0, 0);
	assert_int_equal(lapic_pending(&lapic), -1);
	assert_false(entry(20) & REMOTE_IRR);

	/* An illegal vector is refused by the local APIC: no Remote IRR to get stuck. */
	program(21, LEVEL | 0x05, 0);
	ioapic_set_irq(&io, 21, true);
	assert_false(entry(21) & REMOTE_IRR);
	assert_int_equal(lapic_pending(&lapic), -1);
	/* Another destination: not ours. */
	program(22, 0x72, 3);
	ioapic_set_irq(&io, 22, true);
	assert_int_equal(lapic_pending(&lapic), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_identification_registers, setup),
		cmocka_unit_test_setup(test_redirection_entry_bits, setup),
		cmocka_unit_test_setup(test_bad_register_selects_and_accesses, setup),
		cmocka_unit_test_setup(test_edge_triggered, setup),
		cmocka_unit_test_setup(test_masked_edge_is_lost, setup),
		cmocka_unit_test_setup(test_level_triggered_remote_irr, setup),
		cmocka_unit_test_setup(test_eoi_register, setup),
		cmocka_unit_test_setup(test_masked_level_delivers_on_unmask, setup),
		cmocka_unit_test_setup(test_polarity, setup),
		cmocka_unit_test_setup(test_refused_delivery_is_retried, setup),
		cmocka_unit_test_setup(test_non_fixed_modes_are_edge, setup),
		cmocka_unit_test_setup(test_with_the_local_apic, setup),
	};
	return cmocka_run_group_tests_name("ioapic", tests, NULL, NULL);
}
