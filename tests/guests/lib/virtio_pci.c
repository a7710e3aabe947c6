#include "guest.h"
#include "virtio_pci.h"

#define PCI_ADDR 0xcf8
#define PCI_DATA 0xcfc
#define PCI_STATUS_CAPS 0x10
#define PCI_CAP_VNDR 0x09

/* virtio_pci_cap cfg_type (4.1.4) and the common configuration's fields (4.1.4.3). */
#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_DEVICE 4
#define GFSELECT 0x08
#define GF 0x0c
#define STATUS 0x14
#define Q_SELECT 0x16
#define Q_SIZE 0x18
#define Q_ENABLE 0x1c
#define Q_NOFF 0x1e
#define Q_DESC 0x20
#define Q_AVAIL 0x28
#define Q_USED 0x30

#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8

static uint32_t pci_read(unsigned dev, unsigned off)
{
	outl(PCI_ADDR, 0x80000000u | dev << 11 | (off & 0xfc));
	return inl(PCI_DATA);
}

static void mmio_write64(uint64_t a, uint64_t v)
{
	mmio_write32(a, (uint32_t)v);
	mmio_write32(a + 4, (uint32_t)(v >> 32));
}

bool vpci_find(uint16_t device_id, struct vpci_dev *d)
{
	for (unsigned dev = 0; dev < 32; dev++) {
		uint32_t id = pci_read(dev, 0);
		if ((id & 0xffff) != VIRTIO_PCI_VENDOR || id >> 16 != device_id)
			continue;
		uint64_t bar = (pci_read(dev, 0x10) & ~0xfu) | (uint64_t)pci_read(dev, 0x14) << 32;
		if (!(pci_read(dev, 0x04) >> 16 & PCI_STATUS_CAPS))
			return false;
		*d = (struct vpci_dev){ 0 };
		for (unsigned cap = pci_read(dev, 0x34) & 0xfc; cap; cap = pci_read(dev, cap) >> 8 & 0xfc) {
			uint32_t head = pci_read(dev, cap);
			if ((head & 0xff) != PCI_CAP_VNDR)
				continue;
			uint32_t offset = pci_read(dev, cap + 8);
			switch (head >> 24) {
			case CAP_COMMON:
				d->common = bar + offset;
				break;
			case CAP_NOTIFY:
				d->notify_base = bar + offset;
				d->notify_mult = pci_read(dev, cap + 16);
				break;
			case CAP_DEVICE:
				d->device = bar + offset;
				break;
			}
		}
		return d->common && d->device && d->notify_base;
	}
	return false;
}

bool vpci_start(const struct vpci_dev *d, uint64_t features)
{
	mmio_write8(d->common + STATUS, 0);
	mmio_write8(d->common + STATUS, S_ACK | S_DRIVER);
	mmio_write32(d->common + GFSELECT, 0);
	mmio_write32(d->common + GF, (uint32_t)features);
	mmio_write32(d->common + GFSELECT, 1);
	mmio_write32(d->common + GF, (uint32_t)(features >> 32));
	mmio_write8(d->common + STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	return mmio_read8(d->common + STATUS) & S_FEATURES_OK;
}

bool vpci_queue(const struct vpci_dev *d, uint16_t index, uint16_t size, uint64_t desc,
		uint64_t avail, uint64_t used, uint64_t *notify)
{
	mmio_write16(d->common + Q_SELECT, index);
	if (mmio_read16(d->common + Q_SIZE) < size)
		return false;
	mmio_write16(d->common + Q_SIZE, size);
	mmio_write64(d->common + Q_DESC, desc);
	mmio_write64(d->common + Q_AVAIL, avail);
	mmio_write64(d->common + Q_USED, used);
	*notify = d->notify_base + (uint64_t)mmio_read16(d->common + Q_NOFF) * d->notify_mult;
	mmio_write16(d->common + Q_ENABLE, 1);
	return true;
}

bool vpci_driver_ok(const struct vpci_dev *d)
{
	mmio_write8(d->common + STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	return mmio_read8(d->common + STATUS) & S_DRIVER_OK;
}
