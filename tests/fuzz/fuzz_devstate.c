/*
 * libFuzzer target: the input is a sequence of device state records
 * (docs/devices.md) loaded into every device of the table. A refused load
 * must leave every device byte for byte as it was; an accepted one must
 * save back to records that load to the same state, and the models must
 * then run on it without a sanitizer finding (an index or count a record
 * set out of bounds shows up here).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/devstate_machine.h"

static struct machine m, before, again;
static uint8_t saved[4096], resaved[4096];
static volatile uint32_t sink;

static bool deliver(void *ctx, uint8_t vector, bool level, uint8_t dest, uint8_t dest_mode,
		    uint8_t delivery_mode)
{
	(void)ctx, (void)level, (void)dest_mode;
	sink += vector + dest + delivery_mode;
	return vector & 1;
}

/* Every guest-visible path of every model, on the loaded state. */
static void exercise(struct machine *x)
{
	static const uint8_t input[20] = "loaded state input!";
	uint64_t now = 7000000000ULL;

	sink += (uint32_t)pic_pending(&x->pic);
	for (unsigned c = 0; c < 2; c++) {
		sink += pic_read(&x->pic, c, 0) + pic_read(&x->pic, c, 1);
		pic_write(&x->pic, c, 1, 0x5a);
		pic_write(&x->pic, c, 0, 0x20);
	}
	for (unsigned irq = 0; irq < 16; irq++)
		pic_set_irq(&x->pic, irq, true);
	sink += pic_acknowledge(&x->pic);

	sink += rtc_read(&x->rtc, 1, now);
	for (unsigned reg = 0; reg < RTC_NVRAM_SIZE; reg += 5) {
		rtc_write(&x->rtc, 0, (uint8_t)reg, now);
		sink += rtc_read(&x->rtc, 1, now);
	}
	rtc_write(&x->rtc, 1, 0x33, now);

	sink += vuart_irq_line(&x->vuart);
	for (unsigned reg = 0; reg < VUART_PORTS; reg++)
		sink += vuart_read(&x->vuart, reg);
	vuart_write(&x->vuart, 0, 0x41);
	sink += vuart_feed(&x->vuart, input, sizeof(input));
	for (unsigned i = 0; i <= VUART_FIFO_SIZE; i++)
		sink += vuart_read(&x->vuart, 0);

	sink += ioapic_mmio_read(&x->ioapic, IOAPIC_IOWIN, 4);
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
		ioapic_set_irq(&x->ioapic, pin, pin & 1);
	for (unsigned v = 0; v < 256; v += 17)
		ioapic_eoi(&x->ioapic, (uint8_t)v);

	sink += acpi_pm_read(&x->pm, 0, 4, now) + acpi_pm_read(&x->pm, 4, 2, now);
	sink += acpi_pm_write(&x->pm, 0, 2, 0xffff);

	sink += (uint32_t)pit_next_irq0_ns(&x->pit, now) + pit_irq0_due(&x->pit, now);
	sink += pit_port_b_read(&x->pit, now);
	for (unsigned c = 0; c < 3; c++)
		sink += pit_read(&x->pit, c, now) + pit_read(&x->pit, c, now);
	pit_write(&x->pit, 2, 0x10, now);
	pit_port_b_write(&x->pit, 0x01, now);

	sink += (uint32_t)lapic_next_event_ns(&x->lapic, now, now);
	sink += lapic_timer_run(&x->lapic, now, now);
	for (unsigned reg = 0; reg < LAPIC_MMIO_SIZE; reg += 0x10)
		sink += lapic_mmio_read(&x->lapic, reg, 4, now);
	for (uint32_t msr = LAPIC_MSR_X2APIC_FIRST; msr <= LAPIC_MSR_X2APIC_LAST; msr += 7) {
		uint64_t v;
		if (lapic_msr_read(&x->lapic, msr, &v, now))
			sink += (uint32_t)v;
	}
	sink += (uint32_t)lapic_pending(&x->lapic) + lapic_acknowledge(&x->lapic, 0);
	lapic_mmio_write(&x->lapic, 0xb0, 4, 0, now, now);
	lapic_mmio_write(&x->lapic, 0x380, 4, 7, now, now);
	sink += lapic_accept(&x->lapic, 0x41, true) + lapic_extint_enabled(&x->lapic);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct devstate_instance devs[MACHINE_DEVICES], again_devs[MACHINE_DEVICES];
	struct devstate_error err;
	const unsigned n = MACHINE_DEVICES;

	machine_instances(&m, devs);
	machine_power_on(&m, NULL, deliver);
	memcpy(&before, &m, sizeof(m));
	if (!devstate_load(devs, n, data, size, &err)) {
		if (memcmp(&before, &m, sizeof(m)) != 0 || !err.text[0])
			abort();
		return 0;
	}

	/* What was loaded saves, and loads again to the same bytes. */
	size_t len = devstate_save(devs, n, saved, sizeof(saved));
	machine_power_on(&again, NULL, deliver);
	machine_instances(&again, again_devs);
	if (len == 0 || !devstate_load(again_devs, n, saved, len, &err) ||
	    devstate_save(again_devs, n, resaved, sizeof(resaved)) != len ||
	    memcmp(saved, resaved, len) != 0)
		abort();
	exercise(&m);
	return 0;
}
