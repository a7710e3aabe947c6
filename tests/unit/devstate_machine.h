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
#include "devices/pic.h"
#include "devices/rtc.h"
#include "devices/vuart.h"

#define MACHINE_EPOCH 1700000000ULL /* the host's wall clock at power-on */
#define MACHINE_IOAPIC_ID 2
#define MACHINE_DEVICES 5

struct machine {
	struct pic pic;
	struct rtc rtc;
	struct vuart vuart;
	struct ioapic ioapic;
	struct acpi_pm pm;
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
}

static inline void machine_instances(struct machine *m, struct devstate_instance *devs)
{
	devs[0] = (struct devstate_instance){ &pic_state_desc, &m->pic };
	devs[1] = (struct devstate_instance){ &rtc_state_desc, &m->rtc };
	devs[2] = (struct devstate_instance){ &vuart_state_desc, &m->vuart };
	devs[3] = (struct devstate_instance){ &ioapic_state_desc, &m->ioapic };
	devs[4] = (struct devstate_instance){ &acpi_pm_state_desc, &m->pm };
}

#endif
