#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "devices/lapic.h"

/* xAPIC register offsets (SDM table 11-1). */
#define ID 0x20
#define VERSION 0x30
#define TPR 0x80
#define APR 0x90
#define PPR 0xa0
#define EOI 0xb0
#define LDR 0xd0
#define DFR 0xe0
#define SVR 0xf0
#define ISR 0x100
#define TMR 0x180
#define IRR 0x200
#define ESR 0x280
#define LVT_CMCI 0x2f0
#define ICR_LOW 0x300
#define ICR_HIGH 0x310
#define LVT_TIMER 0x320
#define LVT_THERMAL 0x330
#define LVT_PERF 0x340
#define LVT_LINT0 0x350
#define LVT_LINT1 0x360
#define LVT_ERROR 0x370
#define TIMER_INITIAL 0x380
#define TIMER_CURRENT 0x390
#define TIMER_DIVIDE 0x3e0

#define MASKED 0x10000U
#define PERIODIC 0x20000U
#define DEADLINE 0x40000U
#define DIVIDE_1 0xbU
#define DIVIDE_16 0x3U
#define SELF (1U << 18)
#define ALL (2U << 18)
#define OTHERS (3U << 18)
#define LOGICAL (1U << 11)

#define TSC_PER_NS 2 /* the guest TSC runs at 2 GHz */

static const struct lapic_config default_cfg = {
	.id = 0,
	.bus_hz = 1000000000, /* one bus clock per ns */
	.tsc_hz = 2000000000,
	.x2apic = true,
	.tsc_deadline = true,
	.phys_addr_bits = 39,
};

static struct lapic l;
static uint64_t now; /* guest ns for the helpers */
static int eoi_vectors[8], eoi_count;
static struct lapic_ipi ipis[8];
static int ipi_count;

static void record_eoi(void *ctx, uint8_t vector)
{
	assert_ptr_equal(ctx, &l);
	if (eoi_count < 8)
		eoi_vectors[eoi_count] = vector;
	eoi_count++;
}

static void record_ipi(void *ctx, const struct lapic_ipi *ipi)
{
	assert_ptr_equal(ctx, &l);
	if (ipi_count < 8)
		ipis[ipi_count] = *ipi;
	ipi_count++;
}

static void init_with(const struct lapic_config *cfg)
{
	lapic_init(&l, cfg);
	l.eoi_broadcast = record_eoi;
	l.ipi = record_ipi;
	l.ctx = &l;
	now = 0;
	eoi_count = ipi_count = 0;
}

static int setup(void **state)
{
	(void)state;
	init_with(&default_cfg);
	return 0;
}

static uint32_t rd(unsigned offset)
{
	return lapic_mmio_read(&l, offset, 4, now);
}

static void wr(unsigned offset, uint32_t value)
{
	lapic_mmio_write(&l, offset, 4, value, now, now * TSC_PER_NS);
}

static bool bit_set(unsigned base, unsigned vector)
{
	return rd(base + vector / 32 * 0x10) & 1U << (vector % 32);
}

static uint32_t esr(void)
{
	wr(ESR, 0);
	return rd(ESR);
}

static bool timer_run(void)
{
	return lapic_timer_run(&l, now, now * TSC_PER_NS);
}

static uint64_t next_event(void)
{
	return lapic_next_event_ns(&l, now, now * TSC_PER_NS);
}

static bool msr_write(uint32_t msr, uint64_t value)
{
	return lapic_msr_write(&l, msr, value, now, now * TSC_PER_NS);
}

static uint64_t msr_read(uint32_t msr)
{
	uint64_t value = 0xdeadbeef;
	assert_true(lapic_msr_read(&l, msr, &value, now));
	return value;
}

static bool msr_read_faults(uint32_t msr)
{
	uint64_t value = 0xdeadbeef;
	bool ok = lapic_msr_read(&l, msr, &value, now);
	assert_int_equal(value, 0xdeadbeef); /* untouched on #GP */
	return !ok;
}

/* Linux's setup_local_APIC() in short: soft-disable, program, enable. */
static void linux_setup(void)
{
	wr(SVR, rd(SVR) & ~0x100U);
	wr(TPR, 0);
	wr(DFR, 0xffffffffU);
	wr(LDR, 0x01000000U);
	wr(SVR, 0x1ff);
	wr(LVT_LINT0, MASKED | 0x700);
	wr(LVT_LINT1, 0x400);
	wr(LVT_ERROR, 0xfe);
}

static void test_firmware_state(void **state)
{
	(void)state;
	assert_int_equal(rd(ID), 0);
	assert_int_equal(rd(VERSION), 0x00060014);
	assert_int_equal(rd(SVR), 0x1ff);
	assert_int_equal(rd(DFR), 0xffffffffU);
	assert_int_equal(rd(LDR), 0);
	assert_int_equal(rd(TPR), 0);
	assert_int_equal(rd(PPR), 0);
	for (unsigned off = LVT_TIMER; off <= LVT_ERROR; off += 0x10) {
		if (off != LVT_LINT0 && off != LVT_LINT1)
			assert_int_equal(rd(off), MASKED);
	}
	assert_int_equal(rd(LVT_CMCI), MASKED);
	assert_int_equal(rd(LVT_LINT0), 0x8700); /* virtual wire: ExtINT */
	assert_int_equal(rd(LVT_LINT1), 0x8400); /* NMI */
	assert_int_equal(msr_read(LAPIC_MSR_APIC_BASE), 0xfee00900ULL);
	assert_true(lapic_extint_enabled(&l));
	assert_int_equal(lapic_pending(&l), -1);
	assert_int_equal(rd(TIMER_CURRENT), 0);

	/* A non-zero ID sits in bits 31:24 of the xAPIC ID register. */
	struct lapic_config cfg = default_cfg;
	cfg.id = 3;
	init_with(&cfg);
	assert_int_equal(rd(ID), 0x03000000);
}

static void test_register_writable_bits(void **state)
{
	(void)state;
	wr(TPR, 0xffffffffU);
	assert_int_equal(rd(TPR), 0xff);
	wr(LDR, 0xffffffffU);
	assert_int_equal(rd(LDR), 0xff000000U);
	wr(DFR, 0);
	assert_int_equal(rd(DFR), 0x0fffffffU);
	wr(SVR, 0xffffffffU);
	assert_int_equal(rd(SVR), 0x3ff);
	wr(ICR_HIGH, 0xffffffffU);
	assert_int_equal(rd(ICR_HIGH), 0xff000000U);
	wr(TIMER_DIVIDE, 0xffffffffU);
	assert_int_equal(rd(TIMER_DIVIDE), 0xb);
	wr(LVT_THERMAL, 0xffffffffU);
	assert_int_equal(rd(LVT_THERMAL), 0x107ff);
	wr(LVT_PERF, 0xffffffffU);
	assert_int_equal(rd(LVT_PERF), 0x107ff);
	wr(LVT_CMCI, 0xffffffffU);
	assert_int_equal(rd(LVT_CMCI), 0x107ff);
	/* Delivery status (12) and remote IRR (14) are read-only. */
	wr(LVT_LINT0, 0xffffffffU);
	assert_int_equal(rd(LVT_LINT0), 0x1a7ff);
	wr(LVT_ERROR, 0xffffffffU);
	assert_int_equal(rd(LVT_ERROR), 0x100ff);
	wr(LVT_TIMER, 0xffffffffU);
	assert_int_equal(rd(LVT_TIMER), 0x700ff);

	/* Read-only registers ignore writes, without an error. */
	wr(ID, 0x05000000);
	wr(VERSION, 0);
	wr(PPR, 0xff);
	wr(APR, 0xff);
	wr(TIMER_CURRENT, 1234);
	wr(ISR, 0xffffffffU);
	wr(IRR + 0x70, 0xffffffffU);
	wr(TMR + 0x10, 0xffffffffU);
	assert_int_equal(rd(ID), 0);
	assert_int_equal(rd(VERSION), 0x00060014);
	assert_int_equal(rd(ISR), 0);
	assert_int_equal(rd(IRR + 0x70), 0);
	assert_int_equal(rd(TMR + 0x10), 0);
	assert_int_equal(rd(TIMER_CURRENT), 0);
	assert_int_equal(esr(), 0);
	/* EOI is write-only: reads 0. */
	assert_int_equal(rd(EOI), 0);
	assert_int_equal(esr(), 0);

	/* Without TSC-deadline support the timer mode field is one bit. */
	struct lapic_config cfg = default_cfg;
	cfg.tsc_deadline = false;
	init_with(&cfg);
	wr(LVT_TIMER, 0xffffffffU);
	assert_int_equal(rd(LVT_TIMER), 0x300ff);
}

static void test_bad_mmio_accesses(void **state)
{
	(void)state;
	wr(TPR, 0x20);
	/* Only aligned 32-bit accesses reach a register. */
	assert_int_equal(lapic_mmio_read(&l, TPR, 1, 0), 0);
	assert_int_equal(lapic_mmio_read(&l, TPR, 2, 0), 0);
	assert_int_equal(lapic_mmio_read(&l, TPR, 8, 0), 0);
	assert_int_equal(lapic_mmio_read(&l, TPR + 4, 4, 0), 0);
	assert_int_equal(lapic_mmio_read(&l, TPR + 1, 4, 0), 0);
	lapic_mmio_write(&l, TPR, 1, 0x70, 0, 0);
	lapic_mmio_write(&l, TPR, 8, 0x70, 0, 0);
	lapic_mmio_write(&l, TPR + 8, 4, 0x70, 0, 0);
	lapic_mmio_write(&l, TPR + 2, 2, 0x70, 0, 0);
	assert_int_equal(rd(TPR), 0x20);
	/* Outside the page. */
	assert_int_equal(lapic_mmio_read(&l, 0x1000 + TPR, 4, 0), 0);
	assert_int_equal(lapic_mmio_read(&l, UINT64_MAX - 15, 4, 0), 0);
	lapic_mmio_write(&l, 0x1000 + TPR, 4, 0x70, 0, 0);
	lapic_mmio_write(&l, UINT64_MAX, 4, 0x70, 0, 0);
	assert_int_equal(rd(TPR), 0x20);
	assert_int_equal(esr(), 0);

	/* Reserved registers: 0, ignored, and the illegal register address error. */
	static const unsigned reserved[] = { 0x00, 0x10, 0x40, 0x70, 0xc0, 0x290, 0x2e0, 0x3a0,
					     0x3d0, 0x3f0, 0xff0 };
	for (unsigned i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		wr(reserved[i], 0xffffffffU);
		assert_int_equal(esr(), LAPIC_ESR_ILLEGAL_REGISTER);
		assert_int_equal(rd(reserved[i]), 0);
		assert_int_equal(esr(), LAPIC_ESR_ILLEGAL_REGISTER);
	}
	assert_int_equal(rd(TPR), 0x20);
	assert_int_equal(lapic_pending(&l), -1);
}

static void test_esr_write_then_read(void **state)
{
	(void)state;
	assert_false(lapic_accept(&l, 7, false));
	/* Errors become visible only at the next ESR write. */
	assert_int_equal(rd(ESR), 0);
	wr(ESR, 0xffffffffU); /* the value written does not matter */
	assert_int_equal(rd(ESR), LAPIC_ESR_RECEIVE_ILLEGAL_VECTOR);
	assert_int_equal(rd(ESR), LAPIC_ESR_RECEIVE_ILLEGAL_VECTOR);
	wr(ESR, 0);
	assert_int_equal(rd(ESR), 0);

	/* An unmasked error LVT entry raises its interrupt. */
	wr(LVT_ERROR, 0xfe);
	wr(ICR_LOW, SELF | 0x02);
	assert_int_equal(lapic_pending(&l), 0xfe);
	assert_int_equal(esr(), LAPIC_ESR_SEND_ILLEGAL_VECTOR);
	assert_int_equal(lapic_acknowledge(&l, 0), 0xfe);
	wr(EOI, 0);

	/* An error LVT with an illegal vector adds its own error, and nothing loops. */
	wr(LVT_ERROR, 0x03);
	wr(0x40, 0);
	assert_int_equal(lapic_pending(&l), -1);
	assert_int_equal(esr(), LAPIC_ESR_ILLEGAL_REGISTER | LAPIC_ESR_RECEIVE_ILLEGAL_VECTOR);
}

static void test_tpr_and_ppr(void **state)
{
	(void)state;
	wr(TPR, 0x40);
	assert_true(lapic_accept(&l, 0x41, false));
	assert_int_equal(rd(PPR), 0x40);
	/* The same priority class as the TPR is held back... */
	assert_int_equal(lapic_pending(&l), -1);
	/* ...and so its acknowledge is spurious, leaving IRR alone. */
	assert_int_equal(lapic_acknowledge(&l, 0), 0xff);
	assert_true(bit_set(IRR, 0x41));
	assert_false(bit_set(ISR, 0x41));
	/* APR is the TPR while neither IRR nor ISR outranks it. */
	assert_int_equal(rd(APR), 0x40);
	wr(TPR, 0x3f);
	assert_int_equal(lapic_pending(&l), 0x41);
	assert_int_equal(rd(PPR), 0x3f);
	assert_int_equal(rd(APR), 0x40);
	/* In service, the class of the ISR vector rules PPR when above the TPR. */
	assert_int_equal(lapic_acknowledge(&l, 0), 0x41);
	assert_int_equal(rd(PPR), 0x40);
	assert_int_equal(rd(APR), 0x40);
	wr(TPR, 0x55);
	assert_int_equal(rd(PPR), 0x55);
	assert_int_equal(rd(APR), 0x55);
	wr(EOI, 0);
	assert_int_equal(rd(PPR), 0x55);

	/* CR8 is TPR[7:4]. */
	assert_int_equal(lapic_read_cr8(&l), 5);
	assert_true(lapic_write_cr8(&l, 0xa));
	assert_int_equal(rd(TPR), 0xa0);
	assert_false(lapic_write_cr8(&l, 0x10));
	assert_int_equal(rd(TPR), 0xa0);
	assert_true(lapic_accept(&l, 0xa9, false));
	assert_int_equal(lapic_pending(&l), -1);
	assert_true(lapic_accept(&l, 0xb0, false));
	assert_int_equal(lapic_pending(&l), 0xb0);
}

static void test_nested_interrupts_and_eoi_order(void **state)
{
	(void)state;
	assert_true(lapic_accept(&l, 0x30, false));
	assert_true(lapic_accept(&l, 0x31, false));
	/* The highest vector first. */
	assert_int_equal(lapic_acknowledge(&l, 0), 0x31);
	/* 0x30 is in the same class as 0x31 in service: it waits. */
	assert_int_equal(lapic_pending(&l), -1);
	/* A higher class preempts. */
	assert_true(lapic_accept(&l, 0x45, false));
	assert_int_equal(lapic_acknowledge(&l, 0), 0x45);
	assert_true(bit_set(ISR, 0x31) && bit_set(ISR, 0x45));
	assert_int_equal(rd(ISR + 0x10), 1U << 17);
	assert_int_equal(rd(ISR + 0x20), 1U << 5);
	assert_true(lapic_accept(&l, 0x44, false));
	assert_int_equal(lapic_pending(&l), -1);
	/* EOI ends the highest in service. */
	wr(EOI, 0);
	assert_false(bit_set(ISR, 0x45));
	assert_true(bit_set(ISR, 0x31));
	assert_int_equal(lapic_pending(&l), 0x44);
	assert_int_equal(lapic_acknowledge(&l, 0), 0x44);
	wr(EOI, 0);
	assert_int_equal(lapic_pending(&l), -1);
	wr(EOI, 0);
	assert_int_equal(lapic_acknowledge(&l, 0), 0x30);
	wr(EOI, 0);
	assert_int_equal(rd(ISR + 0x10), 0);
	assert_int_equal(rd(ISR + 0x20), 0);
	/* An EOI with nothing in service does nothing. */
	wr(EOI, 0);
	assert_int_equal(eoi_count, 0);
	/* A vector raised twice before acknowledge is delivered once. */
	assert_true(lapic_accept(&l, 0x80, false));
	assert_true(lapic_accept(&l, 0x80, false));
	assert_int_equal(lapic_acknowledge(&l, 0), 0x80);
	assert_int_equal(lapic_pending(&l), -1);
	/* Acknowledge with nothing pending gives the spurious vector and no ISR bit. */
	wr(EOI, 0);
	wr(SVR, 0x1ef);
	assert_int_equal(lapic_acknowledge(&l, 0), 0xef);
	assert_false(bit_set(ISR, 0xef));
}

static void test_level_triggered_eoi_broadcast(void **state)
{
	(void)state;
	assert_true(lapic_accept(&l, 0x61, true));
	assert_true(bit_set(TMR, 0x61));
	assert_int_equal(lapic_acknowledge(&l, 0), 0x61);
	wr(EOI, 0);
	assert_int_equal(eoi_count, 1);
	assert_int_equal(eoi_vectors[0], 0x61);
	/* An edge-triggered vector ends without a broadcast, and clears TMR. */
	assert_true(lapic_accept(&l, 0x61, false));
	assert_false(bit_set(TMR, 0x61));
	lapic_acknowledge(&l, 0);
	wr(EOI, 0);
	assert_int_equal(eoi_count, 1);
	/* No callback wired: no crash. */
	l.eoi_broadcast = NULL;
	lapic_accept(&l, 0x62, true);
	lapic_acknowledge(&l, 0);
	wr(EOI, 0);
	assert_int_equal(eoi_count, 1);
}

static void test_illegal_vectors_are_not_delivered(void **state)
{
	(void)state;
	for (unsigned v = 0; v < 16; v++) {
		assert_false(lapic_accept(&l, (uint8_t)v, v & 1));
		assert_int_equal(esr(), LAPIC_ESR_RECEIVE_ILLEGAL_VECTOR);
		wr(ICR_LOW, SELF | v);
		assert_int_equal(esr(), LAPIC_ESR_SEND_ILLEGAL_VECTOR);
	}
	assert_int_equal(rd(IRR), 0);
	assert_int_equal(rd(TMR), 0);
	assert_int_equal(lapic_pending(&l), -1);
	assert_int_equal(ipi_count, 0);
	/* A timer with an illegal vector fires into the ESR instead. */
	wr(LVT_TIMER, 0x05);
	wr(TIMER_DIVIDE, DIVIDE_1);
	wr(TIMER_INITIAL, 10);
	now = 10;
	assert_false(timer_run());
	assert_int_equal(esr(), LAPIC_ESR_RECEIVE_ILLEGAL_VECTOR);
	/* 16 is the first legal vector. */
	assert_true(lapic_accept(&l, 16, false));
	assert_int_equal(lapic_pending(&l), 16);
}

static void test_software_disable_masks_the_lvt(void **state)
{
	(void)state;
	wr(LVT_TIMER, 0x20);
	wr(LVT_ERROR, 0xfe);
	assert_true(lapic_accept(&l, 0x50, false));
	wr(SVR, 0xff);
	for (unsigned off = LVT_TIMER; off <= LVT_ERROR; off += 0x10)
		assert_true(rd(off) & MASKED);
	assert_true(rd(LVT_CMCI) & MASKED);
	assert_false(lapic_extint_enabled(&l));
	/* Writes cannot unmask while disabled. */
	wr(LVT_TIMER, 0x20);
	assert_int_equal(rd(LVT_TIMER), MASKED | 0x20);
	/* New fixed interrupts are refused; those already held are still delivered. */
	assert_false(lapic_accept(&l, 0x60, false));
	assert_false(bit_set(IRR, 0x60));
	assert_int_equal(lapic_pending(&l), 0x50);
	/* Self-IPIs too. */
	wr(ICR_LOW, SELF | 0x70);
	assert_false(bit_set(IRR, 0x70));
	/* Enabling again leaves the masks set until software clears them. */
	wr(SVR, 0x1ff);
	assert_true(rd(LVT_TIMER) & MASKED);
	wr(LVT_TIMER, 0x20);
	assert_int_equal(rd(LVT_TIMER), 0x20);
	assert_true(lapic_accept(&l, 0x60, false));
}

static void test_ipis(void **state)
{
	(void)state;
	linux_setup();
	/* Self by shorthand, and by physical destination: straight into IRR. */
	wr(ICR_LOW, SELF | 0x50);
	assert_true(bit_set(IRR, 0x50));
	assert_false(bit_set(TMR, 0x50));
	wr(ICR_HIGH, 0x00000000);
	wr(ICR_LOW, 0x51);
	assert_true(bit_set(IRR, 0x51));
	/* Lowest priority with only us to choose from. */
	wr(ICR_LOW, 0x100 | 0x52);
	assert_true(bit_set(IRR, 0x52));
	assert_int_equal(ipi_count, 0);
	/* The delivery status bit always reads idle. */
	assert_int_equal(rd(ICR_LOW), 0x100 | 0x52);
	assert_int_equal(rd(ICR_LOW) & 0x1000, 0);

	/* Another APIC ID: reported, not delivered. */
	wr(ICR_HIGH, 0x01000000);
	wr(ICR_LOW, 0x53);
	assert_false(bit_set(IRR, 0x53));
	assert_int_equal(ipi_count, 1);
	assert_int_equal(ipis[0].vector, 0x53);
	assert_int_equal(ipis[0].delivery_mode, LAPIC_DM_FIXED);
	assert_false(ipis[0].self);
	assert_true(ipis[0].others);
	assert_int_equal(ipis[0].dest, 1);

	/* All including self: delivered here and reported for the others. */
	wr(ICR_LOW, ALL | 0x54);
	assert_true(bit_set(IRR, 0x54));
	assert_int_equal(ipi_count, 2);
	assert_false(ipis[1].self);
	assert_true(ipis[1].others);
	/* All but self. */
	wr(ICR_LOW, OTHERS | 0x55);
	assert_false(bit_set(IRR, 0x55));
	assert_int_equal(ipi_count, 3);

	/* NMI to ourselves: latched here, outside IRR; a second one before it is taken is the same. */
	assert_false(lapic_nmi_pending(&l));
	wr(ICR_HIGH, 0);
	wr(ICR_LOW, 0x400);
	wr(ICR_LOW, 0x400);
	assert_int_equal(ipi_count, 3);
	assert_true(lapic_nmi_pending(&l));
	assert_true(lapic_pending(&l) >= 0); /* IRR still holds the fixed IPIs */
	lapic_take_nmi(&l);
	assert_false(lapic_nmi_pending(&l));
	/* INIT and SIPI to another CPU: the caller's business. */
	wr(ICR_HIGH, 0x01000000);
	wr(ICR_LOW, 0x4500); /* INIT, level assert */
	wr(ICR_LOW, 0x8500); /* INIT level de-assert: nothing */
	wr(ICR_LOW, 0x4608); /* SIPI, vector 8: legal for a start-up IPI */
	assert_int_equal(ipi_count, 5);
	assert_int_equal(ipis[3].delivery_mode, LAPIC_DM_INIT);
	assert_int_equal(ipis[4].delivery_mode, LAPIC_DM_STARTUP);
	assert_int_equal(ipis[4].vector, 8);
	/* Reserved modes and ExtINT send nothing. */
	wr(ICR_LOW, 0x300 | 0x56);
	wr(ICR_LOW, 0x700 | 0x56);
	assert_int_equal(ipi_count, 5);
	assert_false(bit_set(IRR, 0x56));

	/* Logical, flat model: LDR bit 0 is ours. */
	wr(ICR_HIGH, 0x01000000);
	wr(ICR_LOW, LOGICAL | 0x57);
	assert_true(bit_set(IRR, 0x57));
	assert_int_equal(ipi_count, 5);
	wr(ICR_HIGH, 0x03000000);
	wr(ICR_LOW, LOGICAL | 0x58);
	assert_true(bit_set(IRR, 0x58));
	assert_int_equal(ipi_count, 6);
	wr(ICR_HIGH, 0x02000000);
	wr(ICR_LOW, LOGICAL | 0x59);
	assert_false(bit_set(IRR, 0x59));
	/* Broadcast. */
	wr(ICR_HIGH, 0xff000000);
	wr(ICR_LOW, 0x5a);
	assert_true(bit_set(IRR, 0x5a));

	/* No callback wired: no crash. */
	l.ipi = NULL;
	wr(ICR_LOW, OTHERS | 0x400);
}

static void test_destinations(void **state)
{
	(void)state;
	struct lapic_config cfg = default_cfg;
	cfg.id = 0x12;
	init_with(&cfg);
	assert_true(lapic_is_destination(&l, 0x12, false));
	assert_false(lapic_is_destination(&l, 0x02, false));
	assert_true(lapic_is_destination(&l, 0xff, false));
	assert_true(lapic_is_destination(&l, 0xff, true));
	/* Logical flat: any common bit. */
	wr(LDR, 0x24000000);
	assert_true(lapic_is_destination(&l, 0x04, true));
	assert_true(lapic_is_destination(&l, 0x0c, true));
	assert_false(lapic_is_destination(&l, 0x08, true));
	/* Logical cluster: cluster 2, member bit 2. */
	wr(DFR, 0x0fffffff);
	assert_true(lapic_is_destination(&l, 0x24, true));
	assert_true(lapic_is_destination(&l, 0x26, true));
	assert_false(lapic_is_destination(&l, 0x14, true));
	assert_false(lapic_is_destination(&l, 0x28, true));
	/* x2APIC: 32-bit IDs, logical ID derived from it (cluster 1, bit 2). */
	assert_true(msr_write(LAPIC_MSR_APIC_BASE, 0xfee00000ULL | LAPIC_BASE_EN | LAPIC_BASE_EXTD));
	assert_int_equal(msr_read(0x80d), 0x00010004);
	assert_true(lapic_is_destination(&l, 0x12, false));
	assert_false(lapic_is_destination(&l, 0xff, false));
	assert_true(lapic_is_destination(&l, 0xffffffffU, false));
	assert_true(lapic_is_destination(&l, 0x00010004, true));
	assert_false(lapic_is_destination(&l, 0x00020004, true));
	assert_false(lapic_is_destination(&l, 0x00010008, true));
}

static void test_extint_virtual_wire(void **state)
{
	(void)state;
	/* Firmware left LINT0 as ExtINT: the 8259 reaches the CPU. */
	assert_true(lapic_extint_enabled(&l));
	/* Linux's setup_local_APIC soft-disables first, which masks LINT0... */
	wr(SVR, 0xff);
	assert_false(lapic_extint_enabled(&l));
	wr(SVR, 0x1ff);
	wr(LVT_LINT0, MASKED | 0x700);
	assert_false(lapic_extint_enabled(&l));
	/* ...and an unmasked ExtINT entry (PIC mode) lets it through again. */
	wr(LVT_LINT0, 0x700);
	assert_true(lapic_extint_enabled(&l));
	/* Other delivery modes do not. */
	wr(LVT_LINT0, 0x400);
	assert_false(lapic_extint_enabled(&l));
	/* A hardware-disabled APIC is bypassed: LINT0 is INTR. */
	assert_true(msr_write(LAPIC_MSR_APIC_BASE, 0xfee00000ULL));
	assert_true(lapic_extint_enabled(&l));
}

static void test_timer_one_shot(void **state)
{
	(void)state;
	wr(LVT_TIMER, 0xec);
	wr(TIMER_DIVIDE, DIVIDE_1);
	now = 1000;
	wr(TIMER_INITIAL, 1000);
	assert_int_equal(rd(TIMER_INITIAL), 1000);
	assert_int_equal(rd(TIMER_CURRENT), 1000);
	assert_int_equal(next_event(), 2000);
	now = 1500;
	assert_int_equal(rd(TIMER_CURRENT), 500);
	now = 1999;
	assert_int_equal(rd(TIMER_CURRENT), 1);
	assert_false(timer_run());
	now = 2000;
	assert_int_equal(rd(TIMER_CURRENT), 0);
	assert_true(timer_run());
	assert_int_equal(lapic_pending(&l), 0xec);
	assert_false(bit_set(TMR, 0xec));
	/* Once. */
	now = 5000;
	assert_false(timer_run());
	assert_int_equal(rd(TIMER_CURRENT), 0);
	assert_int_equal(next_event(), 0);
	/* A new initial count re-arms; 0 stops it. */
	wr(TIMER_INITIAL, 100);
	assert_int_equal(next_event(), 5100);
	wr(TIMER_INITIAL, 0);
	assert_int_equal(next_event(), 0);
	now = 6000;
	assert_false(timer_run());
	assert_int_equal(rd(TIMER_CURRENT), 0);
}

static void test_timer_periodic_and_divide(void **state)
{
	(void)state;
	wr(LVT_TIMER, PERIODIC | 0xef);
	wr(TIMER_DIVIDE, DIVIDE_16);
	wr(TIMER_INITIAL, 100); /* 100 ticks of 16 ns */
	assert_int_equal(next_event(), 1600);
	now = 800;
	assert_int_equal(rd(TIMER_CURRENT), 50);
	now = 1600;
	assert_true(timer_run());
	assert_int_equal(rd(TIMER_CURRENT), 100); /* reloaded */
	assert_int_equal(lapic_acknowledge(&l, 0), 0xef);
	wr(EOI, 0);
	assert_int_equal(next_event(), 3200);
	/* Missed periods coalesce into one interrupt. */
	now = 10 * 1600 + 5;
	assert_true(timer_run());
	assert_false(timer_run());
	assert_int_equal(next_event(), 11 * 1600);
	now = 11 * 1600 - 1;
	assert_false(timer_run());
	now = 11 * 1600;
	assert_true(timer_run());

	/* Every divide value. */
	static const struct { uint32_t code, divisor; } divides[] = {
		{ 0x0, 2 }, { 0x1, 4 }, { 0x2, 8 }, { 0x3, 16 },
		{ 0x8, 32 }, { 0x9, 64 }, { 0xa, 128 }, { 0xb, 1 },
	};
	for (unsigned i = 0; i < 8; i++) {
		now = 100000;
		wr(TIMER_DIVIDE, divides[i].code);
		wr(TIMER_INITIAL, 1000);
		now += 10 * divides[i].divisor;
		assert_int_equal(rd(TIMER_CURRENT), 990);
		assert_int_equal(next_event(), 100000 + 1000 * divides[i].divisor);
	}

	/* A divide change mid-count keeps the ticks done and runs the rest at the new rate. */
	now = 0;
	wr(TIMER_DIVIDE, DIVIDE_1);
	wr(TIMER_INITIAL, 1000);
	now = 400;
	wr(TIMER_DIVIDE, 0x0); /* by 2 */
	assert_int_equal(rd(TIMER_CURRENT), 600);
	now = 600;
	assert_int_equal(rd(TIMER_CURRENT), 500);
	assert_int_equal(next_event(), 400 + 600 * 2);
}

static void test_timer_masked_keeps_counting(void **state)
{
	(void)state;
	wr(LVT_TIMER, MASKED | PERIODIC | 0xef);
	wr(TIMER_DIVIDE, DIVIDE_1);
	wr(TIMER_INITIAL, 1000);
	assert_int_equal(next_event(), 0);
	now = 2500;
	assert_int_equal(rd(TIMER_CURRENT), 500);
	assert_false(timer_run());
	assert_int_equal(rd(IRR + 0x70), 0);
	/* Unmasking delivers nothing for the periods that passed... */
	now = 3500;
	wr(LVT_TIMER, PERIODIC | 0xef);
	assert_false(timer_run());
	assert_int_equal(next_event(), 4000);
	/* ...the next period does. */
	now = 4000;
	assert_true(timer_run());
	assert_int_equal(lapic_pending(&l), 0xef);

	/* A one-shot that expired while masked stays quiet when unmasked. */
	wr(LVT_TIMER, MASKED | 0xee);
	wr(TIMER_INITIAL, 100);
	now = 5000;
	wr(LVT_TIMER, 0xee);
	assert_false(timer_run());
	assert_int_equal(next_event(), 0);
}

static void test_timer_tsc_deadline(void **state)
{
	(void)state;
	now = 1000;
	/* Outside deadline mode the MSR reads 0 and ignores writes. */
	assert_true(msr_write(LAPIC_MSR_TSC_DEADLINE, 5000));
	assert_int_equal(msr_read(LAPIC_MSR_TSC_DEADLINE), 0);

	wr(TIMER_DIVIDE, DIVIDE_1);
	wr(TIMER_INITIAL, 50000);
	wr(LVT_TIMER, DEADLINE | 0xeb);
	/* The mode change disarmed the count; the initial count is now ignored. */
	assert_int_equal(rd(TIMER_INITIAL), 0);
	wr(TIMER_INITIAL, 500);
	assert_int_equal(rd(TIMER_INITIAL), 0);
	assert_int_equal(rd(TIMER_CURRENT), 0);
	assert_int_equal(next_event(), 0);

	uint64_t deadline = now * TSC_PER_NS + 3000; /* 1500 ns from now */
	assert_true(msr_write(LAPIC_MSR_TSC_DEADLINE, deadline));
	assert_int_equal(msr_read(LAPIC_MSR_TSC_DEADLINE), deadline);
	assert_int_equal(next_event(), 2500);
	now = 2499;
	assert_false(timer_run());
	assert_int_equal(next_event(), 2500);
	now = 2500;
	assert_true(timer_run());
	assert_int_equal(lapic_pending(&l), 0xeb);
	assert_int_equal(msr_read(LAPIC_MSR_TSC_DEADLINE), 0);
	assert_int_equal(next_event(), 0);
	assert_false(timer_run());

	/* A deadline in the past is due at once; 0 disarms. */
	assert_true(msr_write(LAPIC_MSR_TSC_DEADLINE, 1));
	assert_int_equal(next_event(), now);
	assert_true(msr_write(LAPIC_MSR_TSC_DEADLINE, 0));
	assert_int_equal(next_event(), 0);
	assert_false(timer_run());

	/* Masked: the deadline passes without an interrupt, also after unmasking. */
	/* Delivered 700 TSC ticks after its deadline: the lateness statistic says so. */
	assert_int_equal(l.timer_late_max_tsc, 0);
	assert_true(lapic_acknowledge(&l, deadline + 700) == 0xeb);
	assert_int_equal(l.timer_late_max_tsc, 700);
	assert_int_equal(l.timer_due_tsc, 0);
	wr(EOI, 0);
	wr(LVT_TIMER, MASKED | DEADLINE | 0xeb);
	assert_true(msr_write(LAPIC_MSR_TSC_DEADLINE, now * TSC_PER_NS + 10));
	assert_int_equal(next_event(), 0);
	now += 100;
	wr(LVT_TIMER, DEADLINE | 0xeb);
	assert_false(timer_run());
	assert_int_equal(lapic_pending(&l), -1);

	/* Leaving deadline mode disarms the deadline. */
	assert_true(msr_write(LAPIC_MSR_TSC_DEADLINE, UINT64_MAX));
	wr(LVT_TIMER, 0xeb);
	wr(LVT_TIMER, DEADLINE | 0xeb);
	assert_int_equal(msr_read(LAPIC_MSR_TSC_DEADLINE), 0);

	/* Not advertised: the MSR faults and the mode cannot be selected. */
	struct lapic_config cfg = default_cfg;
	cfg.tsc_deadline = false;
	init_with(&cfg);
	uint64_t value;
	assert_false(lapic_msr_read(&l, LAPIC_MSR_TSC_DEADLINE, &value, 0));
	assert_false(msr_write(LAPIC_MSR_TSC_DEADLINE, 1));
	wr(LVT_TIMER, DEADLINE | 0xeb);
	assert_int_equal(rd(LVT_TIMER), 0xeb);
}

/*
 * The storms of issue 19: initial count 1 at divide-by-1 (periodic, and a
 * one-shot re-armed from its handler), a TSC deadline always in the past.
 * Over 10 ms stepped every microsecond, with the interrupt taken and EOId
 * at once, the timer fires at most once per floor. The storms start 1 ms
 * into the hypervisor's clock, as guests do.
 */
static unsigned storm_fires(void (*rearm)(void))
{
	unsigned fires = 0;

	for (uint64_t end = now + 10000000; now < end; now += 1000) {
		if (!timer_run())
			continue;
		fires++;
		assert_int_equal(lapic_acknowledge(&l, 0), 0xe0);
		wr(EOI, 0);
		rearm();
		uint64_t next = next_event();
		assert_true(next >= now + LAPIC_TIMER_FLOOR_NS);
	}
	return fires;
}

static void no_rearm(void)
{
}

static void rearm_one_shot(void)
{
	wr(TIMER_INITIAL, 1);
}

static void rearm_past_deadline(void)
{
	assert_true(msr_write(LAPIC_MSR_TSC_DEADLINE, 1));
}

static void test_timer_floor(void **state)
{
	(void)state;
	struct lapic_config cfg = default_cfg;
	cfg.timer_floor_ns = LAPIC_TIMER_FLOOR_NS;
	const unsigned most = 10000000 / LAPIC_TIMER_FLOOR_NS + 1;

	init_with(&cfg);
	now = 1000000;
	wr(LVT_TIMER, PERIODIC | 0xe0);
	wr(TIMER_DIVIDE, DIVIDE_1);
	wr(TIMER_INITIAL, 1);
	unsigned fires = storm_fires(no_rearm);
	assert_true(fires >= most - 1 && fires <= most);

	init_with(&cfg);
	now = 1000000;
	wr(LVT_TIMER, 0xe0);
	wr(TIMER_DIVIDE, DIVIDE_1);
	wr(TIMER_INITIAL, 1);
	fires = storm_fires(rearm_one_shot);
	assert_true(fires >= most - 1 && fires <= most);

	init_with(&cfg);
	now = 1000000;
	wr(LVT_TIMER, DEADLINE | 0xe0);
	rearm_past_deadline();
	fires = storm_fires(rearm_past_deadline);
	assert_true(fires >= most - 1 && fires <= most);

	/* A 4-ms periodic tick (Linux at HZ=250) is untouched by the floor. */
	init_with(&cfg);
	wr(LVT_TIMER, PERIODIC | 0xe0);
	wr(TIMER_DIVIDE, DIVIDE_1);
	wr(TIMER_INITIAL, 4000000);
	fires = storm_fires(no_rearm);
	assert_int_equal(fires, 2);
	assert_int_equal(next_event(), 12000000);
}

static void test_x2apic_msrs(void **state)
{
	(void)state;
	struct lapic_config cfg = default_cfg;
	cfg.id = 0x105; /* beyond 8 bits: x2APIC IDs are 32-bit */
	init_with(&cfg);
	/* Not in x2APIC mode yet: the MSRs fault. */
	assert_true(msr_read_faults(0x802));
	assert_false(msr_write(0x808, 0));

	assert_true(msr_write(LAPIC_MSR_APIC_BASE, 0xfee00000ULL | LAPIC_BASE_EN | LAPIC_BASE_EXTD));
	/* The page is no longer decoded. */
	assert_int_equal(rd(VERSION), 0);
	assert_int_equal(msr_read(0x802), 0x105);
	assert_int_equal(msr_read(0x803), 0x00060014);
	assert_int_equal(msr_read(0x80d), 0x00100020); /* cluster 0x10, bit 5 */
	assert_int_equal(msr_read(0x80f), 0x1ff);
	assert_true(msr_write(0x808, 0x30));
	assert_int_equal(msr_read(0x808), 0x30);
	assert_int_equal(msr_read(0x80a), 0x30);
	assert_int_equal(lapic_read_cr8(&l), 3);

	/* ICR: one 64-bit register, 32-bit destination. */
	assert_true(msr_write(0x830, (uint64_t)0x105 << 32 | 0x41));
	assert_int_equal(msr_read(0x830), (uint64_t)0x105 << 32 | 0x41);
	assert_int_equal(msr_read(0x822), 1U << 1); /* IRR, vectors 64-95 */
	assert_int_equal(ipi_count, 0);
	assert_true(msr_write(0x830, (uint64_t)0x5 << 32 | 0x42));
	assert_int_equal(ipi_count, 1);
	assert_int_equal(ipis[0].dest, 5);
	/* SELF IPI. */
	assert_true(msr_write(0x83f, 0x43));
	assert_int_equal(msr_read(0x822), 1U << 1 | 1U << 3);
	assert_true(msr_write(0x83f, 0x05)); /* illegal vector */
	assert_true(msr_write(0x828, 0));
	assert_int_equal(msr_read(0x828), LAPIC_ESR_SEND_ILLEGAL_VECTOR);

	/* EOI: only 0 may be written. */
	assert_int_equal(lapic_acknowledge(&l, 0), 0x43);
	assert_false(msr_write(0x80b, 1));
	assert_int_equal(msr_read(0x810 + 0x43 / 32), 1U << (0x43 % 32));
	assert_true(msr_write(0x80b, 0));
	assert_int_equal(msr_read(0x810 + 0x43 / 32), 0);

	/* Timer registers. */
	assert_true(msr_write(0x832, PERIODIC | 0xef));
	assert_true(msr_write(0x83e, DIVIDE_1));
	assert_true(msr_write(0x838, 1000));
	now = 300;
	assert_int_equal(msr_read(0x839), 700);
	assert_int_equal(msr_read(0x838), 1000);
	assert_int_equal(msr_read(0x83e), DIVIDE_1);

	/* #GP: write-only reads, read-only writes, absent registers, reserved bits. */
	assert_true(msr_read_faults(0x80b)); /* EOI */
	assert_true(msr_read_faults(0x83f)); /* SELF IPI */
	assert_true(msr_read_faults(0x809)); /* no APR */
	assert_true(msr_read_faults(0x80e)); /* no DFR */
	assert_true(msr_read_faults(0x831)); /* ICR high is part of 0x830 */
	assert_true(msr_read_faults(0x800));
	assert_true(msr_read_faults(0x80c));
	assert_true(msr_read_faults(0x8ff));
	assert_true(msr_read_faults(0x7ff));
	assert_true(msr_read_faults(0x900));
	static const uint32_t read_only[] = { 0x802, 0x803, 0x809, 0x80a, 0x80d, 0x80e, 0x810,
					      0x818, 0x827, 0x831, 0x839, 0x800, 0x8ff };
	for (unsigned i = 0; i < sizeof(read_only) / sizeof(read_only[0]); i++)
		assert_false(msr_write(read_only[i], 0));
	assert_false(msr_write(0x808, 1ULL << 32));
	assert_false(msr_write(0x828, 1));
	assert_false(msr_write(0x83f, 1ULL << 40));
	assert_int_equal(msr_read(0x802), 0x105);
	assert_int_equal(msr_read(0x808), 0x30);
}

static void test_apic_base_transitions(void **state)
{
	(void)state;
	const uint64_t base = 0xfee00000ULL;
	const uint64_t xapic = base | LAPIC_BASE_EN, x2apic = xapic | LAPIC_BASE_EXTD;

	/* Reserved bits: 7:0, 9 and above MAXPHYADDR; EN=0 with EXTD=1 is invalid. */
	assert_false(msr_write(LAPIC_MSR_APIC_BASE, xapic | 1));
	assert_false(msr_write(LAPIC_MSR_APIC_BASE, xapic | 1ULL << 9));
	assert_false(msr_write(LAPIC_MSR_APIC_BASE, xapic | 1ULL << 39));
	assert_false(msr_write(LAPIC_MSR_APIC_BASE, base | LAPIC_BASE_EXTD));
	/* The BSP flag is read-only. */
	assert_true(msr_write(LAPIC_MSR_APIC_BASE, xapic));
	assert_int_equal(msr_read(LAPIC_MSR_APIC_BASE), xapic | LAPIC_BASE_BSP);

	/* xAPIC -> x2APIC; back to xAPIC only through disabled. */
	assert_true(lapic_accept(&l, 0x40, false));
	assert_true(msr_write(LAPIC_MSR_APIC_BASE, x2apic));
	assert_int_equal(lapic_pending(&l), 0x40); /* state survives */
	assert_false(msr_write(LAPIC_MSR_APIC_BASE, xapic));
	assert_true(msr_write(LAPIC_MSR_APIC_BASE, x2apic)); /* no change is fine */
	assert_true(msr_write(LAPIC_MSR_APIC_BASE, base));
	assert_false(msr_write(LAPIC_MSR_APIC_BASE, x2apic));

	/* Disabled: state reset, page not decoded, nothing accepted, x2APIC MSRs fault. */
	assert_int_equal(lapic_pending(&l), -1);
	assert_int_equal(rd(VERSION), 0);
	assert_false(lapic_accept(&l, 0x40, false));
	assert_true(msr_read_faults(0x803));
	wr(SVR, 0x1ff);
	assert_int_equal(lapic_next_event_ns(&l, 0, 0), 0);

	/* Disabled -> xAPIC: power-up state, software-disabled. */
	assert_true(msr_write(LAPIC_MSR_APIC_BASE, xapic));
	assert_int_equal(rd(SVR), 0xff);
	assert_int_equal(rd(LVT_LINT0), MASKED);
	assert_int_equal(rd(DFR), 0xffffffffU);
	assert_false(lapic_extint_enabled(&l));
	assert_false(lapic_accept(&l, 0x40, false));
	/* Moving the page is recorded for the caller to follow. */
	assert_true(msr_write(LAPIC_MSR_APIC_BASE, 0xfed00000ULL | LAPIC_BASE_EN));
	assert_int_equal(msr_read(LAPIC_MSR_APIC_BASE) & ~0xfffULL, 0xfed00000ULL);

	/* Without x2APIC advertised, EXTD is reserved. */
	struct lapic_config cfg = default_cfg;
	cfg.x2apic = false;
	init_with(&cfg);
	assert_false(msr_write(LAPIC_MSR_APIC_BASE, x2apic));
	assert_int_equal(rd(VERSION), 0x00060014);
	/* MSRs that are not the local APIC's fault. */
	assert_true(msr_read_faults(0x10));
	assert_false(msr_write(0x10, 0));
	assert_true(lapic_is_msr(0x1b) && lapic_is_msr(0x6e0) && lapic_is_msr(0x800) &&
		    lapic_is_msr(0x8ff));
	assert_false(lapic_is_msr(0x1c) || lapic_is_msr(0x7ff) || lapic_is_msr(0x900));
}

/* The virtual-APIC page's word for a register (its xAPIC offset). */
static uint32_t *page_word(uint32_t *page, unsigned offset)
{
	return &page[offset / 4];
}

static void page_set_vector(uint32_t *page, unsigned base, unsigned vector, bool on)
{
	uint32_t *w = page_word(page, base + vector / 32 * 0x10);
	*w = on ? *w | 1U << (vector % 32) : *w & ~(1U << (vector % 32));
}

static void test_virtual_apic_page(void **state)
{
	static uint32_t page[1024];
	(void)state;

	linux_setup();
	assert_true(lapic_accept(&l, 0x31, false));
	assert_int_equal(lapic_acknowledge(&l, 0), 0x31);
	assert_true(lapic_accept(&l, 0x61, true));
	assert_true(lapic_accept(&l, 0x41, false));
	wr(TPR, 0x20);
	wr(ICR_HIGH, 0);
	wr(ICR_LOW, 0x400); /* an NMI to APIC ID 0 */

	/* What the CPU starts from: the registers at their offsets, RVI and SVI. */
	memset(page, 0xa5, sizeof(page));
	struct lapic_page_status st = lapic_to_page(&l, page, 0);
	assert_int_equal(st.rvi, 0x61);
	assert_int_equal(st.svi, 0x31);
	assert_true(st.virtualizable);
	assert_int_equal(*page_word(page, TPR), 0x20);
	assert_int_equal(*page_word(page, PPR), 0x30);
	assert_int_equal(*page_word(page, ISR + 0x10), 1U << (0x31 - 32));
	assert_int_equal(*page_word(page, ISR), 0);
	assert_int_equal(*page_word(page, TMR + 0x30), 1U << (0x61 - 96));
	assert_int_equal(*page_word(page, TMR + 0x20), 0);
	assert_true(st.level_vectors[1] == 1ULL << (0x61 - 64));
	assert_true(st.level_vectors[0] == 0 && st.level_vectors[2] == 0 && st.level_vectors[3] == 0);
	assert_int_equal(*page_word(page, IRR + 0x30), 1U << (0x61 - 96));
	assert_int_equal(*page_word(page, IRR + 0x20), 1U << (0x41 - 64));
	assert_int_equal(*page_word(page, ICR_LOW), 0x400);
	/* And what APIC-register virtualization lets the guest read there, as the model reads it. */
	static const unsigned readable[] = { ID, VERSION, LDR, DFR, SVR, ESR, ICR_HIGH, LVT_TIMER,
					     LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR,
					     TIMER_INITIAL, TIMER_DIVIDE };
	for (unsigned i = 0; i < sizeof(readable) / sizeof(readable[0]); i++)
		assert_int_equal(*page_word(page, readable[i]), rd(readable[i]));
	assert_int_equal(*page_word(page, LVT_ERROR), 0xfe);
	assert_int_equal(*page_word(page, EOI), 0);

	/*
	 * The guest ran: the CPU delivered 0x61 and took its EOI, the guest
	 * wrote TPR 0x10 with junk above bit 7, and something set vectors 0-15
	 * in the page, which no interrupt can be.
	 */
	page_set_vector(page, IRR, 0x61, false);
	*page_word(page, TPR) = 0xffffff10U;
	*page_word(page, IRR) |= 0xffffU;
	*page_word(page, ISR) |= 0x8000U;
	lapic_from_page(&l, page);
	assert_int_equal(rd(TPR), 0x10);
	assert_false(bit_set(IRR, 0x61));
	assert_true(bit_set(IRR, 0x41));
	assert_true(bit_set(ISR, 0x31));
	assert_int_equal(rd(IRR), 0);
	assert_int_equal(rd(ISR), 0);
	/* 0x41's class is above PPR's (ISR 0x31, class 3). */
	assert_int_equal(lapic_pending(&l), 0x41);
	assert_true(lapic_may_interrupt(&l));

	/* A virtual EOI reaches the I/O APIC for a level-triggered vector only. */
	lapic_virtual_eoi(&l, 0x61);
	assert_int_equal(eoi_count, 1);
	assert_int_equal(eoi_vectors[0], 0x61);
	lapic_virtual_eoi(&l, 0x31);
	assert_int_equal(eoi_count, 1);

	/*
	 * A self-IPI the CPU took: 0x61 again in IRR, now edge-triggered, its
	 * TMR bit cleared as lapic_accept would; its ICR write is the ICR's.
	 */
	lapic_to_page(&l, page, 0);
	page_set_vector(page, IRR, 0x61, true);
	*page_word(page, ICR_LOW) = 0x40061;
	/* A virtualized ICR-high write keeps bits 31:24 (29.4.3.2). */
	*page_word(page, ICR_HIGH) = 0x0f000000U | 0x00ffffffU;
	lapic_from_page(&l, page);
	assert_true(bit_set(IRR, 0x61));
	assert_false(bit_set(TMR, 0x61));
	assert_int_equal(rd(ICR_LOW), 0x40061);
	assert_int_equal(rd(ICR_HIGH), 0x0f000000U);

	/* Every pending vector delivered: IRR empty, and said so. */
	page_set_vector(page, IRR, 0x41, false);
	page_set_vector(page, IRR, 0x61, false);
	lapic_from_page(&l, page);
	assert_false(lapic_may_interrupt(&l));
	assert_int_equal(lapic_to_page(&l, page, 0).rvi, 0);
}

static void test_virtual_apic_page_when_virtualizable(void **state)
{
	static uint32_t page[1024];
	(void)state;

	assert_true(lapic_to_page(&l, page, 0).virtualizable);
	/* Software-disabled: a self-IPI through the page would be taken, the model refuses it. */
	wr(SVR, 0xff);
	assert_false(lapic_to_page(&l, page, 0).virtualizable);
	wr(SVR, 0x1ff);
	/* Moved, x2APIC mode, disabled: the guest's registers are not in the default page. */
	assert_true(msr_write(LAPIC_MSR_APIC_BASE, 0xfed00000ULL | LAPIC_BASE_EN | LAPIC_BASE_BSP));
	assert_false(lapic_to_page(&l, page, 0).virtualizable);
	assert_true(msr_write(LAPIC_MSR_APIC_BASE,
			      LAPIC_DEFAULT_BASE | LAPIC_BASE_EN | LAPIC_BASE_BSP | LAPIC_BASE_EXTD));
	assert_false(lapic_to_page(&l, page, 0).virtualizable);
	assert_true(msr_write(LAPIC_MSR_APIC_BASE, LAPIC_DEFAULT_BASE | LAPIC_BASE_BSP));
	assert_false(lapic_to_page(&l, page, 0).virtualizable);
}

/*
 * A TSC-deadline interrupt the CPU is to deliver: its lateness counts to
 * the entry that gives it to the CPU, once.
 */
static void test_virtual_apic_page_timer_latency(void **state)
{
	static uint32_t page[1024];
	(void)state;

	now = 1000;
	wr(LVT_TIMER, DEADLINE | 0xeb);
	assert_true(msr_write(LAPIC_MSR_TSC_DEADLINE, now * TSC_PER_NS + 1000));
	lapic_to_page(&l, page, 2500);
	assert_int_equal(l.timer_late_max_tsc, 0);
	now = 1500;
	assert_true(timer_run());
	lapic_to_page(&l, page, 3400);
	assert_int_equal(l.timer_late_max_tsc, 400);
	assert_int_equal(l.timer_due_tsc, 0);
	lapic_to_page(&l, page, 9000);
	assert_int_equal(l.timer_late_max_tsc, 400);
	page_set_vector(page, IRR, 0xeb, false);
	page_set_vector(page, ISR, 0xeb, true);
	lapic_from_page(&l, page);
	assert_true(bit_set(ISR, 0xeb));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_firmware_state, setup),
		cmocka_unit_test_setup(test_register_writable_bits, setup),
		cmocka_unit_test_setup(test_bad_mmio_accesses, setup),
		cmocka_unit_test_setup(test_esr_write_then_read, setup),
		cmocka_unit_test_setup(test_tpr_and_ppr, setup),
		cmocka_unit_test_setup(test_nested_interrupts_and_eoi_order, setup),
		cmocka_unit_test_setup(test_level_triggered_eoi_broadcast, setup),
		cmocka_unit_test_setup(test_illegal_vectors_are_not_delivered, setup),
		cmocka_unit_test_setup(test_software_disable_masks_the_lvt, setup),
		cmocka_unit_test_setup(test_ipis, setup),
		cmocka_unit_test_setup(test_destinations, setup),
		cmocka_unit_test_setup(test_extint_virtual_wire, setup),
		cmocka_unit_test_setup(test_timer_one_shot, setup),
		cmocka_unit_test_setup(test_timer_periodic_and_divide, setup),
		cmocka_unit_test_setup(test_timer_masked_keeps_counting, setup),
		cmocka_unit_test_setup(test_timer_tsc_deadline, setup),
		cmocka_unit_test_setup(test_timer_floor, setup),
		cmocka_unit_test_setup(test_x2apic_msrs, setup),
		cmocka_unit_test_setup(test_apic_base_transitions, setup),
		cmocka_unit_test_setup(test_virtual_apic_page, setup),
		cmocka_unit_test_setup(test_virtual_apic_page_when_virtualizable, setup),
		cmocka_unit_test_setup(test_virtual_apic_page_timer_latency, setup),
	};
	return cmocka_run_group_tests_name("lapic", tests, NULL, NULL);
}
