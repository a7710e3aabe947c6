/*
 * A fake virtio driver for the virtqueue and device-model tests: a 1 MiB
 * guest RAM buffer, split rings laid out in it as a driver would, and
 * helpers to post descriptor chains and read what the device returned.
 * Queue qi lives at QUEUE_BASE(qi); test data from DATA_BASE on.
 */
#ifndef TESTS_UNIT_VIRTQ_DRIVER_H
#define TESTS_UNIT_VIRTQ_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "devices/virtio.h"
#include "devices/virtqueue.h"

#define GUEST_SIZE (1u << 20)
#define QUEUE_BASE(qi) (0x10000u * ((qi) + 1))
#define DATA_BASE 0x80000u

static _Alignas(4096) uint8_t guest[GUEST_SIZE];

/* The driver's side of one queue. */
struct fake_queue {
	struct virtio_device *dev;
	unsigned qi;
	uint16_t size;
	uint64_t desc, avail, used;
	uint16_t avail_idx;
};

/* Interrupts the device raised, per queue, and configuration changes. */
static unsigned irqs[VIRTIO_MAX_QUEUES];
static unsigned config_irqs;

static inline void record_irq(struct virtio_device *dev, unsigned queue)
{
	(void)dev;
	if (queue == VIRTIO_INTERRUPT_CONFIG)
		config_irqs++;
	else if (queue < VIRTIO_MAX_QUEUES)
		irqs[queue]++;
}

static inline void wr16(uint64_t gpa, uint16_t v)
{
	memcpy(guest + gpa, &v, sizeof(v));
}

static inline void wr32(uint64_t gpa, uint32_t v)
{
	memcpy(guest + gpa, &v, sizeof(v));
}

static inline void wr64(uint64_t gpa, uint64_t v)
{
	memcpy(guest + gpa, &v, sizeof(v));
}

static inline uint16_t rd16(uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, guest + gpa, sizeof(v));
	return v;
}

static inline uint32_t rd32(uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, guest + gpa, sizeof(v));
	return v;
}

/* The test's guest RAM as a device model sees it: all there. */
static inline struct guest_memory guest_ram(void)
{
	return (struct guest_memory){ .base = guest, .size = GUEST_SIZE };
}

/* Clean RAM, no interrupts seen, and dev's guest memory is ours. */
static inline void driver_reset_memory(struct virtio_device *dev)
{
	memset(guest, 0, sizeof(guest));
	memset(irqs, 0, sizeof(irqs));
	config_irqs = 0;
	dev->mem = guest_ram();
	dev->interrupt = record_irq;
}

/*
 * Accepts every offered feature but EVENT_IDX, whose used_event this
 * driver does not keep (test_virtqueue.c's event tests take it), and
 * sets DRIVER_OK (3.1.1).
 */
static inline void driver_ok(struct virtio_device *dev)
{
	dev->driver_features = dev->device_features & ~(1ULL << VIRTIO_RING_F_EVENT_IDX);
	dev->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		      VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
}

/* Lays out and enables queue qi of size entries at QUEUE_BASE(qi). */
static inline void queue_setup(struct fake_queue *q, struct virtio_device *dev, unsigned qi,
			       uint16_t size)
{
	uint64_t base = QUEUE_BASE(qi);

	q->dev = dev;
	q->qi = qi;
	q->size = size;
	q->desc = base;
	q->avail = base + 16u * size;
	q->used = (q->avail + VIRTQ_AVAIL_BYTES(size) + 3) & ~3ull;
	q->avail_idx = 0;
	dev->queues[qi] = (struct virtq_config){
		.size = size, .enabled = true, .msix_vector = 0,
		.desc = q->desc, .driver = q->avail, .device = q->used,
	};
}

static inline void put_desc(uint64_t table, uint16_t i, uint64_t addr, uint32_t len,
			    uint16_t flags, uint16_t next)
{
	uint64_t d = table + 16u * i;

	wr64(d, addr);
	wr32(d + 8, len);
	wr16(d + 12, flags);
	wr16(d + 14, next);
}

/* Puts head in the next avail->ring entry and publishes it. */
static inline void post(struct fake_queue *q, uint16_t head)
{
	wr16(q->avail + 4 + 2u * (q->avail_idx % q->size), head);
	q->avail_idx++;
	wr16(q->avail + 2, q->avail_idx);
}

/* One buffer of a chain the tests build. */
struct buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* Writes bufs as a chain in table at entries first, first + 1, ... */
static inline void put_chain(uint64_t table, uint16_t first, const struct buf *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		put_desc(table, (uint16_t)(first + i), b[i].gpa, b[i].len,
			 (uint16_t)((b[i].write ? VIRTQ_DESC_F_WRITE : 0) |
				    (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
			 (uint16_t)(first + i + 1));
}

/* A chain of direct descriptors from entry first, posted. */
static inline void post_chain(struct fake_queue *q, uint16_t first, const struct buf *b,
			      unsigned n)
{
	put_chain(q->desc, first, b, n);
	post(q, first);
}

/* The chain in an indirect table at table, referenced by entry slot, posted. */
static inline void post_indirect(struct fake_queue *q, uint16_t slot, uint64_t table,
				 const struct buf *b, unsigned n)
{
	put_chain(table, 0, b, n);
	put_desc(q->desc, slot, table, 16u * n, VIRTQ_DESC_F_INDIRECT, 0);
	post(q, slot);
}

static inline void set_avail_flags(struct fake_queue *q, uint16_t flags)
{
	wr16(q->avail, flags);
}

static inline uint16_t used_idx(const struct fake_queue *q)
{
	return rd16(q->used + 2);
}

/* Used element i (modulo the size): id and len. */
static inline uint32_t used_id(const struct fake_queue *q, uint16_t i)
{
	return rd32(q->used + 4 + 8u * (i % q->size));
}

static inline uint32_t used_len(const struct fake_queue *q, uint16_t i)
{
	return rd32(q->used + 8 + 8u * (i % q->size));
}

static inline bool needs_reset(const struct virtio_device *dev)
{
	return dev->status & VIRTIO_STATUS_NEEDS_RESET;
}

#endif
