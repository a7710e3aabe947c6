/*
 * The virtio PCI transport, modern interface only (virtio 1.1 section 4.1;
 * the legacy I/O BAR is not offered): one PCI function per virtio device
 * (vendor 0x1af4, device 0x1040 + virtio device id, revision 1) with one
 * 64-bit memory BAR holding every structure the capabilities point at:
 *
 *   0x0000  common configuration (4.1.4.3)      0x38 bytes
 *   0x0800  ISR status (4.1.4.5)                 1 byte, read clears it
 *   0x0c00  device-specific configuration        config_size, <= 0x400
 *   0x1000  notifications (4.1.4.4)              4 bytes per queue
 *   0x2000  MSI-X table (PCI 3.0 6.8.2)          16 bytes per vector
 *   0x3000  MSI-X pending bit array              8 bytes
 *
 * The BAR is not prefetchable: reading the ISR has a side effect. MSI-X
 * has num_queues + 1 vectors. The PCI_CFG access capability (4.1.4.7) is
 * implemented. Interrupts go out through callbacks the caller provides: an
 * MSI write, or the INTx pin (level-triggered, held while the ISR is
 * non-zero). Plain C, no hardware access.
 */
#ifndef DEVICES_VIRTIO_PCI_H
#define DEVICES_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/pci.h"
#include "devices/virtio.h"

#define VIRTIO_PCI_VENDOR_ID 0x1af4
#define VIRTIO_PCI_DEVICE_ID_BASE 0x1040 /* + virtio device id (4.1.2.1) */
#define VIRTIO_PCI_REVISION 1

#define VIRTIO_PCI_BAR 0
#define VIRTIO_PCI_BAR_SIZE 0x4000
#define VIRTIO_PCI_COMMON_OFFSET 0x0000
#define VIRTIO_PCI_ISR_OFFSET 0x0800
#define VIRTIO_PCI_DEVICE_OFFSET 0x0c00
#define VIRTIO_PCI_DEVICE_MAX 0x400
#define VIRTIO_PCI_NOTIFY_OFFSET 0x1000
#define VIRTIO_PCI_NOTIFY_MULTIPLIER 4
#define VIRTIO_PCI_MSIX_TABLE_OFFSET 0x2000
#define VIRTIO_PCI_MSIX_PBA_OFFSET 0x3000
#define VIRTIO_PCI_MSIX_VECTORS (VIRTIO_MAX_QUEUES + 1)

/* The platform's interrupt delivery; ctx is passed to both. */
struct virtio_pci_irq {
	/* One MSI write; the caller decodes the 0xfeexxxxx address and data. */
	void (*msi)(void *ctx, uint64_t address, uint32_t data);
	/* The INTx pin's new level; may be NULL if the caller wires no pin. */
	void (*intx)(void *ctx, bool level);
	void *ctx;
};

struct virtio_pci {
	struct virtio_device *dev;
	struct pci_function *pci;
	struct virtio_pci_irq irq;
	/* Common configuration registers that are transport state only. */
	uint32_t device_feature_select, driver_feature_select;
	uint16_t queue_select;
	/* MSI-X: address low, address high, data, vector control per vector. */
	unsigned msix_vectors;
	uint32_t msix_table[VIRTIO_PCI_MSIX_VECTORS][4];
	uint32_t msix_pending; /* bit per vector */
	/* Configuration-space offsets of the capabilities with side effects. */
	uint8_t msix_cap, pci_cfg_cap;
};

/*
 * Puts dev on bus as a new PCI function delivering INTx on interrupt_line,
 * and takes over dev's transport-owned fields (dev->interrupt included).
 * dev's identity fields and ops must be set. -1 if the bus is full or dev
 * is out of this transport's bounds (num_queues 0 or > VIRTIO_MAX_QUEUES,
 * queue_max_size not a power of two <= VIRTQ_MAX_SIZE, config_size >
 * VIRTIO_PCI_DEVICE_MAX, an op or irq->msi missing).
 */
int virtio_pci_init(struct virtio_pci *vp, struct pci_bus *bus, struct virtio_device *dev,
		    uint8_t interrupt_line, const struct virtio_pci_irq *irq);

/*
 * Device state (devstate.h), one record per function: the feature and
 * queue selects, the MSI-X table and pending bits. Left out: dev, pci and
 * irq (wiring), msix_vectors and the capability offsets (fixed at
 * virtio_pci_init). The registers the transport keeps in the device
 * (status, features, queues) are in the device model's record, MSI-X
 * enable and function mask in the PCI function's.
 */
extern const struct devstate_desc virtio_pci_state_desc;

/*
 * The device-specific configuration changed (4.1.4.3: config_generation
 * moves; 4.1.5.4: the config interrupt goes out once DRIVER_OK is set).
 */
void virtio_pci_config_changed(struct virtio_pci *vp);

#endif
