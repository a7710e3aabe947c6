#include "devices/device_table.h"

#include "devices/acpi_pm.h"
#include "devices/i6300esb.h"
#include "devices/ioapic.h"
#include "devices/lapic.h"
#include "devices/pci.h"
#include "devices/pic.h"
#include "devices/pit.h"
#include "devices/rtc.h"
#include "devices/virtio_balloon.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_console.h"
#include "devices/virtio_net.h"
#include "devices/virtio_pci.h"
#include "devices/vuart.h"

/*
 * A VM has several PCI functions, virtio transports and NICs: their
 * instances carry their own record names (pci1, virtio_pci1, virtio_net0).
 */
const struct devstate_desc *const device_table[] = {
	&pic_state_desc,
	&rtc_state_desc,
	&vuart_state_desc,
	&ioapic_state_desc,
	&acpi_pm_state_desc,
	&pit_state_desc,
	&lapic_state_desc,
	&pci_bus_state_desc,
	&pci_function_state_desc,
	&virtio_pci_state_desc,
	&virtio_blk_state_desc,
	&virtio_net_state_desc,
	&virtio_console_state_desc,
	&i6300esb_state_desc,
	&virtio_balloon_state_desc,
};

const unsigned device_table_count = sizeof(device_table) / sizeof(device_table[0]);
