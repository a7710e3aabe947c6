#include "devices/device_table.h"

#include "devices/acpi_pm.h"
#include "devices/ioapic.h"
#include "devices/lapic.h"
#include "devices/pic.h"
#include "devices/pit.h"
#include "devices/rtc.h"
#include "devices/vuart.h"

/*
 * Not yet described: PCI and the virtio devices (docs/devices.md says
 * why).
 */
const struct devstate_desc *const device_table[] = {
	&pic_state_desc,
	&rtc_state_desc,
	&vuart_state_desc,
	&ioapic_state_desc,
	&acpi_pm_state_desc,
	&pit_state_desc,
	&lapic_state_desc,
};

const unsigned device_table_count = sizeof(device_table) / sizeof(device_table[0]);
