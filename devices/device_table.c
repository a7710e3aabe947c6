#include "devices/device_table.h"

#include "devices/acpi_pm.h"
#include "devices/ioapic.h"
#include "devices/pic.h"
#include "devices/rtc.h"
#include "devices/vuart.h"

/*
 * Not yet described: the local APIC, the PIT and the virtio devices
 * (being changed elsewhere), and PCI, whose functions mix guest-written
 * configuration bytes with what registration fixed (write masks, BAR
 * sizes, capability layout) and host callbacks.
 */
const struct devstate_desc *const device_table[] = {
	&pic_state_desc,
	&rtc_state_desc,
	&vuart_state_desc,
	&ioapic_state_desc,
	&acpi_pm_state_desc,
};

const unsigned device_table_count = sizeof(device_table) / sizeof(device_table[0]);
