/*
 * The device side of a split virtqueue (virtio 1.1, 2.6 "Split
 * Virtqueues"), shared by the virtio device models: taking the next
 * descriptor chain the driver made available, copying to and from its
 * buffers, returning it in the used ring and interrupting the driver.
 * Plain C, no hardware access.
 *
 * Everything in guest memory is the driver's, and the driver is hostile:
 * each index, descriptor and table entry is read once into a local and
 * checked before use, every guest-physical range is checked against the
 * guest's RAM before it is touched, and a chain walk ends after
 * VIRTQ_MAX_SIZE descriptors, or earlier when it loops. A chain the spec
 * forbids makes the device set VIRTIO_STATUS_NEEDS_RESET and stop using
 * the queue (2.1.2): once the
 * driver broke the ring's invariants there is no request the device could
 * safely answer.
 *
 * Offered ring features: VIRTIO_RING_F_INDIRECT_DESC (2.6.5.3), because
 * drivers then post a request as one ring slot however many segments it
 * has; and VIRTIO_RING_F_EVENT_IDX (2.6.7.2, 2.6.10.2): the driver says
 * after which used entry it wants its next interrupt (used_event), the
 * device after which available entry its next notification
 * (avail_event: the first it has not taken, written whenever it finds the
 * ring empty). Without it, interrupts are suppressed with
 * VIRTQ_AVAIL_F_NO_INTERRUPT only, and the device never sets
 * VIRTQ_USED_F_NO_NOTIFY (2.6.10: it MAY leave it clear).
 *
 * Work per notification is bounded (virtq_process): a queue serves chains
 * only while its budget lasts, and gets the budget back once per
 * scheduler pass (virtq_new_pass), where the chains it left waiting are
 * taken up again. So a driver that posts a full ring of huge chains, or
 * notifies again and again, costs the hypervisor at most one budget per
 * pass, while honest I/O larger than a budget still completes.
 *
 * Not thread-safe: the caller serializes all calls for one device.
 */
#ifndef DEVICES_VIRTQUEUE_H
#define DEVICES_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/devstate.h"
#include "devices/virtio.h"

/* Ring feature bits (spec 6). */
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX 29

/* struct virtq_desc flags (2.6.5). */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
/* struct virtq_avail flags (2.6.6). */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

/* Guest layout sizes (2.6: the three parts and their alignment). */
#define VIRTQ_DESC_SIZE 16
#define VIRTQ_AVAIL_BYTES(n) (4 + 2 * (uint64_t)(n) + 2)  /* flags, idx, ring, used_event */
#define VIRTQ_USED_BYTES(n) (4 + 8 * (uint64_t)(n) + 2)   /* flags, idx, ring, avail_event */

/*
 * What a queue may do for the driver between two scheduler passes: take
 * `chains` chains and move `bytes` bytes. Walking a descriptor is charged
 * as VIRTQ_DESC_COST bytes, about what it costs next to a memcpy (a 16-byte
 * read, bounds checks and a branch or two), so a chain of 256 empty
 * descriptors is not free. A chain is served whole once taken, so the
 * last one may overdraw: the worst is a budget plus one chain.
 */
struct virtq_budget {
	uint32_t chains;
	uint64_t bytes;
};

#define VIRTQ_DESC_COST 64

/* What the device keeps of one queue; all of it is device-owned. */
struct virtq {
	uint16_t last_avail;            /* next avail->ring entry to take */
	uint16_t used_idx;              /* the device's copy of used->idx */
	bool interrupt_due;             /* pushed since the last interrupt */
	bool broken;                    /* the driver broke the ring: NEEDS_RESET */
	bool pending;                   /* the budget ran out with chains maybe waiting */
	struct virtq_budget left;       /* of this scheduler pass */
	/*
	 * EVENT_IDX: used_idx when the driver was last considered for an
	 * interrupt. Not state: after a reset or a load the next interrupt is
	 * sent whatever used_event says, which the driver takes as spurious at
	 * worst.
	 */
	uint16_t signalled_used;
	bool signalled_valid;
};

/* One buffer of a chain, inside guest RAM (checked when the chain was taken). */
struct virtq_seg {
	uint64_t gpa;
	uint32_t len;
};

/*
 * A descriptor chain as a scatter list: the device-readable segments
 * first, then the device-writable ones (2.6.4.2), zero-length descriptors
 * left out. A longer chain than VIRTQ_MAX_SIZE descriptors is refused
 * (virtqueue.c, walk_chain). 4 KiB: keep it in the device's structure,
 * not on the hypervisor's stack.
 */
struct virtq_chain {
	uint16_t head;                  /* descriptor index to return in the used ring */
	uint16_t n_readable;
	uint16_t n_writable;
	uint16_t n_desc;                /* descriptors walked, empty ones included */
	uint64_t readable_len;          /* bytes */
	uint64_t writable_len;
	struct virtq_seg seg[VIRTQ_MAX_SIZE];
};

enum virtq_pop_result {
	VIRTQ_MALFORMED = -2,           /* just broke: NEEDS_RESET set, config interrupt sent */
	VIRTQ_STOPPED = -1,             /* device not ready, queue disabled or broken */
	VIRTQ_EMPTY = 0,                /* no buffer available */
	VIRTQ_CHAIN = 1,                /* *chain holds the next chain */
};

/*
 * Forgets the rings (device reset, 2.1.2: the driver starts them from 0);
 * the budget is the scheduler's and stays.
 */
void virtq_reset(struct virtq *vq);

/*
 * Serves one chain the device model took from the queue: carries it out
 * and returns it with virtq_push. Returns the data bytes it moved, or -1
 * when it broke the queue (virtq_break) instead.
 */
typedef int64_t (*virtq_serve_fn)(void *ctx, const struct virtq_chain *chain);

/*
 * Serves the available chains of queue qi into chain, one at a time,
 * while the queue's budget lasts; then interrupts the driver for what was
 * pushed. Chains left over stay in the ring with vq->pending set, for
 * virtq_new_pass. A chain that breaks the ring counts in *resets_needed.
 */
void virtq_process(struct virtio_device *dev, unsigned qi, struct virtq *vq,
		   struct virtq_chain *chain, virtq_serve_fn serve, void *ctx,
		   uint64_t *resets_needed);

/*
 * A scheduler pass: the queue gets budget back. Returns whether chains were
 * left waiting, which the caller then serves with virtq_process.
 */
bool virtq_new_pass(struct virtq *vq, const struct virtq_budget *budget);

/* True while the queue may still take a chain in this pass. */
bool virtq_budget_left(const struct virtq *vq);

/* Charges the queue's budget for a chain served and the data bytes it moved. */
void virtq_charge(struct virtq *vq, const struct virtq_chain *chain, uint64_t bytes);

/*
 * Takes the next available chain of queue qi of dev into *chain. A chain
 * taken must be returned with virtq_push before the next one is taken.
 */
enum virtq_pop_result virtq_pop(struct virtio_device *dev, unsigned qi, struct virtq *vq,
				struct virtq_chain *chain);

/*
 * For a device model that finds a chain it cannot even answer: breaks the
 * queue as virtq_pop does for a malformed chain (2.1.2).
 */
void virtq_break(struct virtio_device *dev, struct virtq *vq);

/*
 * Gives back the chain virtq_pop just returned, unused: the next pop
 * takes the same ring entry again. It is read and checked afresh then,
 * nothing of this pop is kept, so a driver that rewrites it meanwhile
 * gains nothing. For a device that can take a chain only whole.
 */
void virtq_unpop(struct virtq *vq);

/*
 * Copy len bytes between buf and the chain's readable (gather) or
 * writable (scatter) bytes, starting offset bytes into them. Return the
 * bytes copied: fewer when the chain's buffers end first.
 */
/*
 * The chain's readable bytes [offset, offset + len) as one host pointer
 * when they lie in a single descriptor (what Linux's virtio-net sends for
 * a linear frame with its header in front), or NULL: then virtq_gather.
 * The bytes stay guest memory: whoever reads them must read each field
 * it decides on once.
 */
const uint8_t *virtq_readable_span(const struct guest_memory *mem,
				   const struct virtq_chain *chain, uint64_t offset, uint64_t len);

size_t virtq_gather(const struct guest_memory *mem, const struct virtq_chain *chain,
		    uint64_t offset, void *buf, size_t len);
size_t virtq_scatter(const struct guest_memory *mem, const struct virtq_chain *chain,
		     uint64_t offset, const void *buf, size_t len);

/*
 * Returns a chain to the driver with `written` bytes written into its
 * writable buffers (2.6.8); the interrupt waits for virtq_interrupt.
 */
void virtq_push(struct virtio_device *dev, unsigned qi, struct virtq *vq, uint16_t head,
		uint32_t written);

/*
 * Interrupts the driver if chains were pushed since the last call and it
 * did not ask for silence (2.6.7.2). Call once after a batch of pushes.
 */
void virtq_interrupt(struct virtio_device *dev, unsigned qi, struct virtq *vq);

/* Tells the transport that the device configuration or status changed. */
void virtio_config_changed(struct virtio_device *dev);

/*
 * A device-specific configuration read from its little-endian byte image
 * (spec 5.x.4): size (1, 2 or 4) bytes at offset; 0 for bytes past
 * img_size.
 */
uint32_t virtio_config_image_read(const uint8_t *img, uint32_t img_size, uint32_t offset,
				  unsigned size);

/* A config_write for a configuration the driver cannot change: ignores the write. */
void virtio_config_write_ignored(struct virtio_device *dev, uint32_t offset, unsigned size,
				 uint32_t value);

/*
 * Device state (devstate.h) of a virtio device model st whose struct
 * virtio_device is its member dev: the fields the transport owns there,
 * for the model's field table. Identity, ops, guest memory and the
 * interrupt callback are the model's and the VM's, not described.
 */
#define VIRTIO_DEVICE_STATE_FIELDS(st) \
	DEVSTATE_FIELD(st, dev.driver_features, DEVSTATE_U64, 0, UINT64_MAX, 1), \
	DEVSTATE_FIELD(st, dev.status, DEVSTATE_U8, 0, 0xff, 1), \
	DEVSTATE_FIELD(st, dev.isr, DEVSTATE_U8, 0, 3, 1), \
	DEVSTATE_FIELD(st, dev.config_msix_vector, DEVSTATE_U16, 0, 0xffff, 1), \
	DEVSTATE_FIELD(st, dev.config_generation, DEVSTATE_U32, 0, UINT32_MAX, 1), \
	DEVSTATE_STRUCT_ARRAY(st, dev.queues, size, DEVSTATE_U16, 0, 0xffff, 1), \
	DEVSTATE_STRUCT_ARRAY(st, dev.queues, enabled, DEVSTATE_BOOL, 0, 1, 1), \
	DEVSTATE_STRUCT_ARRAY(st, dev.queues, msix_vector, DEVSTATE_U16, 0, 0xffff, 1), \
	DEVSTATE_STRUCT_ARRAY(st, dev.queues, desc, DEVSTATE_U64, 0, UINT64_MAX, 1), \
	DEVSTATE_STRUCT_ARRAY(st, dev.queues, driver, DEVSTATE_U64, 0, UINT64_MAX, 1), \
	DEVSTATE_STRUCT_ARRAY(st, dev.queues, device, DEVSTATE_U64, 0, UINT64_MAX, 1)

/* And of one struct virtq, the hypervisor's own indices: the scheduler's budget is not. */
#define VIRTQ_STATE_FIELDS(st, vq) \
	DEVSTATE_FIELD(st, vq.last_avail, DEVSTATE_U16, 0, 0xffff, 1), \
	DEVSTATE_FIELD(st, vq.used_idx, DEVSTATE_U16, 0, 0xffff, 1), \
	DEVSTATE_FIELD(st, vq.interrupt_due, DEVSTATE_BOOL, 0, 1, 1), \
	DEVSTATE_FIELD(st, vq.broken, DEVSTATE_BOOL, 0, 1, 1), \
	DEVSTATE_FIELD(st, vq.pending, DEVSTATE_BOOL, 0, 1, 1)

/* Those fields at power-on: as after a device reset, and no configuration change yet. */
void virtio_device_state_reset(struct virtio_device *dev);

/*
 * What the PCI transport's writes let those fields hold (virtio_pci.c):
 * defined status bits, FEATURES_OK only for an acceptable feature set and
 * DRIVER_OK only after it, vectors the transport maps (num_queues + 1 of
 * them) or NO_VECTOR, an enabled queue only with the shape
 * virtio_queue_usable() asks for, queues past num_queues untouched.
 */
bool virtio_device_state_check(const struct virtio_device *dev, const char *device,
			       struct devstate_error *err);

#endif
