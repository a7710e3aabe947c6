/*
 * The test guests' side of a modern virtio-pci device (virtio 1.1 4.1):
 * found on bus 0 through configuration mechanism #1 (ports 0xcf8/0xcfc),
 * its structures located through its vendor capabilities, features
 * negotiated and split queues handed over, as a driver would. Polled:
 * no interrupts are set up. The guests map 4 GiB 1:1, so a guest address
 * is the bus address the device sees.
 */
#ifndef GUEST_VIRTIO_PCI_H
#define GUEST_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_PCI_VENDOR 0x1af4
/* 4.1.2.1: 0x1040 + the virtio device id. */
#define VIRTIO_PCI_BLK 0x1042
#define VIRTIO_PCI_CONSOLE 0x1043

#define VIRTIO_F_VERSION_1 (1ULL << 32)
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vpci_dev {
	uint64_t common, device;        /* common and device-specific configuration */
	uint64_t notify_base;
	uint32_t notify_mult;
};

/* The first device with that PCI device id, its structures located. */
bool vpci_find(uint16_t device_id, struct vpci_dev *d);

/* Reset, ACKNOWLEDGE, DRIVER, the features written, FEATURES_OK kept by the device. */
bool vpci_start(const struct vpci_dev *d, uint64_t features);

/*
 * Queue index with size entries at the given rings; *notify: the address
 * whose 16-bit write notifies it (4.1.4.4). False when the device's queue
 * is smaller.
 */
bool vpci_queue(const struct vpci_dev *d, uint16_t index, uint16_t size, uint64_t desc,
		uint64_t avail, uint64_t used, uint64_t *notify);

/* DRIVER_OK, and whether the device kept it. */
bool vpci_driver_ok(const struct vpci_dev *d);

/* MMIO through the emulator: plain MOVs, one access each. */
static inline void mmio_write8(uint64_t a, uint8_t v)
{
	__asm__ volatile("movb %1, (%0)" : : "r"(a), "q"(v) : "memory");
}

static inline void mmio_write16(uint64_t a, uint16_t v)
{
	__asm__ volatile("movw %1, (%0)" : : "r"(a), "r"(v) : "memory");
}

static inline void mmio_write32(uint64_t a, uint32_t v)
{
	__asm__ volatile("movl %1, (%0)" : : "r"(a), "r"(v) : "memory");
}

static inline uint8_t mmio_read8(uint64_t a)
{
	uint8_t v;
	__asm__ volatile("movb (%1), %0" : "=q"(v) : "r"(a) : "memory");
	return v;
}

static inline uint16_t mmio_read16(uint64_t a)
{
	uint16_t v;
	__asm__ volatile("movw (%1), %0" : "=r"(v) : "r"(a) : "memory");
	return v;
}

static inline uint32_t mmio_read32(uint64_t a)
{
	uint32_t v;
	__asm__ volatile("movl (%1), %0" : "=r"(v) : "r"(a) : "memory");
	return v;
}

#endif
