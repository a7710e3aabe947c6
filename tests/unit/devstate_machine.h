/*
 * Every device of the device table in one structure, for the state codec's
 * test and fuzzer: powered on with the wiring the caller gives, and listed
 * as the instances devstate_save() and devstate_load() take.
 */
#ifndef TESTS_UNIT_DEVSTATE_MACHINE_H
#define TESTS_UNIT_DEVSTATE_MACHINE_H

#include <string.h>

#include "devices/acpi_pm.h"
#include "devices/devstate.h"
#include "devices/ioapic.h"
#include "devices/lapic.h"
#include "devices/pic.h"
#include "devices/pit.h"
#include "devices/rtc.h"
#include "devices/vuart.h"

#define MACHINE_EPOCH 1700000000ULL /* the host's wall clock at power-on */
#define MACHINE_IOAPIC_ID 2
#define MACHINE_LAPIC_BUS_HZ 100000000ULL
#define MACHINE_TSC_HZ 2000000000ULL
#define MACHINE_DEVICES 7

struct machine {
	struct pic pic;
	struct rtc rtc;
	struct vuart vuart;
	struct ioapic ioapic;
	struct acpi_pm pm;
	struct pit pit;
	struct lapic lapic;
};

/* Zeroed first, so that two powered-on machines compare equal byte for byte. */
static inline void machine_power_on(struct machine *m, void (*tx)(void *ctx, uint8_t byte),
				    ioapic_deliver_fn *deliver)
{
	memset(m, 0, sizeof(*m));
	pic_init(&m->pic);
	rtc_init(&m->rtc, MACHINE_EPOCH, 0);
	vuart_init(&m->vuart, tx, NULL);
	ioapic_init(&m->ioapic, MACHINE_IOAPIC_ID);
	m->ioapic.deliver = deliver;
	acpi_pm_init(&m->pm);
	pit_init(&m->pit);
	const struct lapic_config lapic_cfg = {
		.bus_hz = MACHINE_LAPIC_BUS_HZ,
		.tsc_hz = MACHINE_TSC_HZ,
		.x2apic = true,
		.tsc_deadline = true,
		.phys_addr_bits = 39,
		.timer_floor_ns = LAPIC_TIMER_FLOOR_NS,
	};
	lapic_init(&m->lapic, &lapic_cfg);
	m->lapic.ctx = m; /* wiring a load must keep */
}

static inline void machine_instances(struct machine *m, struct devstate_instance *devs)
{
	devs[0] = (struct devstate_instance){ &pic_state_desc, &m->pic };
	devs[1] = (struct devstate_instance){ &rtc_state_desc, &m->rtc };
	devs[2] = (struct devstate_instance){ &vuart_state_desc, &m->vuart };
	devs[3] = (struct devstate_instance){ &ioapic_state_desc, &m->ioapic };
	devs[4] = (struct devstate_instance){ &acpi_pm_state_desc, &m->pm };
	devs[5] = (struct devstate_instance){ &pit_state_desc, &m->pit };
	devs[6] = (struct devstate_instance){ &lapic_state_desc, &m->lapic };
}

#endif
