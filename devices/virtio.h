/*
 * The contract between the virtio-pci transport (devices/virtio_pci.c) and
 * the virtio device models (devices/virtio_blk.c, devices/virtio_net.c),
 * after the virtio 1.x specification ("Virtual I/O Device (VIRTIO) Version
 * 1.1", OASIS), sections 2 (basic facilities), 4.1 (PCI transport) and 5
 * (device types). The transport owns what the driver programs through the
 * common configuration structure; a device model reads the queue layout
 * from here, walks the rings with devices/virtqueue.h and asks the
 * transport to interrupt the driver. Plain C, no hardware access.
 */
#ifndef DEVICES_VIRTIO_H
#define DEVICES_VIRTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Feature bits both device types offer (spec 6). */
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33

/* Device status bits (spec 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2

#define VIRTIO_MAX_QUEUES 4
/* Largest queue a device offers (queue_size is a power of two <= this). */
#define VIRTQ_MAX_SIZE 256
/* MSI-X "no vector" (spec 4.1.5.1.2). */
#define VIRTIO_MSI_NO_VECTOR 0xffff

/*
 * A guest's RAM as the device models see it: guest-physical [0, size) at
 * host address base. Every access is bounds-checked against it and made
 * through guest_memory_at; nothing outside it is ever touched.
 */
struct guest_memory {
	uint8_t *base;
	uint64_t size;
	/*
	 * Called before [gpa, gpa + len), inside RAM, is read or written, where
	 * RAM may not all be there yet (NULL: it always is): a restore loads it
	 * as it is needed (vmm/lazy_restore.h).
	 */
	void (*load)(void *ctx, uint64_t gpa, uint64_t len);
	void *load_ctx;
};

/* One queue as the driver programmed it (common configuration, spec 4.1.4.3). */
struct virtq_config {
	uint16_t size;        /* entries; power of two, 1..VIRTQ_MAX_SIZE */
	bool enabled;         /* queue_enable written 1 */
	uint16_t msix_vector; /* VIRTIO_MSI_NO_VECTOR: none */
	uint64_t desc;        /* guest-physical addresses of the three parts */
	uint64_t driver;      /* "available" ring */
	uint64_t device;      /* "used" ring */
};

struct virtio_device;

/* What a device model implements; the transport calls it. */
struct virtio_device_ops {
	/* Device-specific configuration (spec 5.x.4): offset + size inside config_size. */
	uint32_t (*config_read)(struct virtio_device *dev, uint32_t offset, unsigned size);
	void (*config_write)(struct virtio_device *dev, uint32_t offset, unsigned size,
			     uint32_t value);
	/* The driver notified queue index `queue` (already checked < num_queues, enabled). */
	void (*queue_notify)(struct virtio_device *dev, unsigned queue);
	/* Device reset (status written 0): forget in-flight state, keep the back end. */
	void (*reset)(struct virtio_device *dev);
};

/*
 * One virtio device. The device model fills the identity fields and ops;
 * the transport owns the negotiated and programmed state and fills
 * interrupt/interrupt_ctx.
 */
struct virtio_device {
	/* Set by the device model. */
	uint16_t device_id;          /* VIRTIO_ID_* */
	uint64_t device_features;    /* offered, VIRTIO_F_VERSION_1 included */
	unsigned num_queues;         /* <= VIRTIO_MAX_QUEUES */
	uint16_t queue_max_size;     /* <= VIRTQ_MAX_SIZE */
	uint32_t config_size;        /* bytes of device-specific configuration */
	const struct virtio_device_ops *ops;
	void *ctx;                   /* the device model's own state */
	struct guest_memory mem;

	/* Owned by the transport. */
	uint64_t driver_features;    /* accepted by the driver */
	uint8_t status;
	uint8_t isr;                 /* bit 0: queue interrupt, bit 1: config change */
	uint16_t config_msix_vector;
	uint32_t config_generation;
	struct virtq_config queues[VIRTIO_MAX_QUEUES];
	/*
	 * Raise the queue's interrupt (MSI-X vector or INTx, as the driver set
	 * it up); the transport sets this callback.
	 */
	void (*interrupt)(struct virtio_device *dev, unsigned queue);
	void *interrupt_ctx;
};

/*
 * The queue number a device model passes to dev->interrupt for a
 * configuration change notification (spec 4.1.5.4) rather than a used
 * buffer notification: the transport then moves config_generation and
 * interrupts the driver once DRIVER_OK is set, as
 * virtio_pci_config_changed() does.
 */
#define VIRTIO_INTERRUPT_CONFIG 0xffffu

/* Alignment of the split virtqueue's three parts (2.6, "Virtqueues"). */
#define VIRTQ_DESC_ALIGN 16
#define VIRTQ_AVAIL_ALIGN 2
#define VIRTQ_USED_ALIGN 4

static inline bool virtio_in_guest_memory(const struct guest_memory *mem, uint64_t address,
					  uint64_t length)
{
	return address <= mem->size && length <= mem->size - address;
}

/* Host address of guest-physical [gpa, gpa + len), loaded, or NULL if not all in RAM. */
static inline uint8_t *guest_memory_at(const struct guest_memory *mem, uint64_t gpa, uint64_t len)
{
	if (!mem->base || !virtio_in_guest_memory(mem, gpa, len))
		return NULL;
	if (mem->load)
		mem->load(mem->load_ctx, gpa, len);
	return mem->base + gpa;
}

/*
 * Whether queue q may be enabled: the device models walk an enabled queue
 * without rechecking its shape, so only after FEATURES_OK, for a size that
 * is a power of two within the maximum (2.6), with every part aligned and
 * wholly inside guest memory. Ring lengths include the event fields.
 */
static inline bool virtio_queue_usable(const struct virtio_device *dev,
				       const struct virtq_config *q)
{
	uint64_t n = q->size;

	return (dev->status & VIRTIO_STATUS_FEATURES_OK) && n && !(n & (n - 1)) &&
	       n <= dev->queue_max_size && !(q->desc % VIRTQ_DESC_ALIGN) &&
	       !(q->driver % VIRTQ_AVAIL_ALIGN) && !(q->device % VIRTQ_USED_ALIGN) &&
	       virtio_in_guest_memory(&dev->mem, q->desc, 16 * n) &&
	       virtio_in_guest_memory(&dev->mem, q->driver, 6 + 2 * n) &&
	       virtio_in_guest_memory(&dev->mem, q->device, 6 + 8 * n);
}

/*
 * The transport-owned fields after a device reset (status written 0);
 * queue_size reads the maximum until the driver picks a size (4.1.4.3).
 */
static inline void virtio_transport_fields_reset(struct virtio_device *dev)
{
	dev->driver_features = 0;
	dev->status = 0;
	dev->isr = 0;
	dev->config_msix_vector = VIRTIO_MSI_NO_VECTOR;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		dev->queues[q] = (struct virtq_config){ .size = dev->queue_max_size,
							.msix_vector = VIRTIO_MSI_NO_VECTOR };
}

/* True when the driver finished initialisation and the device did not fail. */
static inline bool virtio_device_ready(const struct virtio_device *dev)
{
	return (dev->status & VIRTIO_STATUS_DRIVER_OK) &&
	       !(dev->status & (VIRTIO_STATUS_FAILED | VIRTIO_STATUS_NEEDS_RESET));
}

#endif
