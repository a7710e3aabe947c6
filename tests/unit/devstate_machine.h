/*
 * Every device of the device table in one structure, for the state codec's
 * test and fuzzer: powered on with the wiring the caller gives, and listed
 * as the instances devstate_save() and devstate_load() take.
 */
#ifndef TESTS_UNIT_DEVSTATE_MACHINE_H
#define TESTS_UNIT_DEVSTATE_MACHINE_H

#include <string.h>

#include "devices/acpi_pm.h"
#include "devices/i6300esb.h"
#include "devices/devstate.h"
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

#define MACHINE_EPOCH 1700000000ULL /* the host's wall clock at power-on */
#define MACHINE_IOAPIC_ID 2
#define MACHINE_LAPIC_BUS_HZ 100000000ULL
#define MACHINE_TSC_HZ 2000000000ULL
#define MACHINE_RAM_BYTES 0x10000
#define MACHINE_DISK_BYTES 0x4000
#define MACHINE_BLK_LINE 11
#define MACHINE_NET_LINE 10
#define MACHINE_AGENT_LINE 5
#define MACHINE_BALLOON_LINE 6
#define MACHINE_DEVICES 22

/* Guest RAM and the disk's bytes: outside the state, shared by every machine. */
static _Alignas(4096) uint8_t machine_ram[MACHINE_RAM_BYTES];
static uint8_t machine_disk[MACHINE_DISK_BYTES];

struct machine {
	struct pic pic;
	struct rtc rtc;
	struct vuart vuart;
	struct ioapic ioapic;
	struct acpi_pm pm;
	struct pit pit;
	struct lapic lapic;
	struct pci_bus pci;
	struct virtio_pci virtio[4]; /* on PCI devices 1 (blk), 2 (net), 3 (agent port), 4 (balloon) */
	struct virtio_blk blk;
	struct virtio_net net;
	struct virtio_console agent;
	struct i6300esb watchdog;
	struct virtio_balloon balloon;
	struct disk disk;
	uint8_t *disk_chunks[1];
};

static inline void machine_msi(void *ctx, uint64_t address, uint32_t data)
{
	(void)ctx, (void)address, (void)data;
}

static inline int machine_transmit(void *ctx, const void *frame, size_t len)
{
	(void)ctx, (void)frame, (void)len;
	return 0;
}

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

	static const uint8_t mac[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 };
	const struct guest_memory ram = { .base = machine_ram, .size = sizeof(machine_ram) };
	const struct virtio_pci_irq irq = { machine_msi, NULL, m };
	const struct virtio_net_backend backend = { machine_transmit, NULL, m };
	const struct disk_chunk_alloc no_alloc = { NULL, NULL, NULL };
	pci_init(&m->pci);
	disk_init(&m->disk, machine_disk, sizeof(machine_disk), m->disk_chunks, &no_alloc);
	virtio_blk_init(&m->blk, ram, &m->disk, true, "devstate");
	virtio_pci_init(&m->virtio[0], &m->pci, &m->blk.dev, MACHINE_BLK_LINE, &irq);
	virtio_net_init(&m->net, ram, mac, 1500, &backend);
	virtio_pci_init(&m->virtio[1], &m->pci, &m->net.dev, MACHINE_NET_LINE, &irq);
	virtio_console_init(&m->agent, ram, NULL);
	virtio_pci_init(&m->virtio[2], &m->pci, &m->agent.dev, MACHINE_AGENT_LINE, &irq);
	i6300esb_init(&m->watchdog, false);
	virtio_balloon_init(&m->balloon, ram);
	virtio_pci_init(&m->virtio[3], &m->pci, &m->balloon.dev, MACHINE_BALLOON_LINE, &irq);
}

static inline void machine_instances(struct machine *m, struct devstate_instance *devs)
{
	devs[0] = (struct devstate_instance){ &pic_state_desc, &m->pic, NULL };
	devs[1] = (struct devstate_instance){ &rtc_state_desc, &m->rtc, NULL };
	devs[2] = (struct devstate_instance){ &vuart_state_desc, &m->vuart, NULL };
	devs[3] = (struct devstate_instance){ &ioapic_state_desc, &m->ioapic, NULL };
	devs[4] = (struct devstate_instance){ &acpi_pm_state_desc, &m->pm, NULL };
	devs[5] = (struct devstate_instance){ &pit_state_desc, &m->pit, NULL };
	devs[6] = (struct devstate_instance){ &lapic_state_desc, &m->lapic, NULL };
	devs[7] = (struct devstate_instance){ &pci_bus_state_desc, &m->pci.state, NULL };
	devs[8] = (struct devstate_instance){ &pci_function_state_desc, &m->pci.devices[0], "pci0" };
	devs[9] = (struct devstate_instance){ &pci_function_state_desc, &m->pci.devices[1], "pci1" };
	devs[10] = (struct devstate_instance){ &pci_function_state_desc, &m->pci.devices[2], "pci2" };
	devs[11] = (struct devstate_instance){ &virtio_pci_state_desc, &m->virtio[0], "virtio_pci1" };
	devs[12] = (struct devstate_instance){ &virtio_pci_state_desc, &m->virtio[1], "virtio_pci2" };
	devs[13] = (struct devstate_instance){ &virtio_blk_state_desc, &m->blk, NULL };
	devs[14] = (struct devstate_instance){ &virtio_net_state_desc, &m->net, "virtio_net0" };
	devs[15] = (struct devstate_instance){ &pci_function_state_desc, &m->pci.devices[3], "pci3" };
	devs[16] = (struct devstate_instance){ &virtio_pci_state_desc, &m->virtio[2], "virtio_pci3" };
	devs[17] = (struct devstate_instance){ &virtio_console_state_desc, &m->agent, NULL };
	devs[18] = (struct devstate_instance){ &i6300esb_state_desc, &m->watchdog, NULL };
	devs[19] = (struct devstate_instance){ &pci_function_state_desc, &m->pci.devices[4], "pci4" };
	devs[20] = (struct devstate_instance){ &virtio_pci_state_desc, &m->virtio[3], "virtio_pci4" };
	devs[21] = (struct devstate_instance){ &virtio_balloon_state_desc, &m->balloon, NULL };
}

#endif
