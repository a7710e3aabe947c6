#include "devices/virtqueue.h"

#include <string.h>

/* Split rings are little-endian (2.4, 2.6); so is x86, so no swapping. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "virtio rings are little-endian");
_Static_assert((VIRTQ_MAX_SIZE & (VIRTQ_MAX_SIZE - 1)) == 0, "queue sizes are powers of two");

/* struct virtq_desc (2.6.5), as read once from guest memory. */
struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

_Static_assert(sizeof(struct desc) == VIRTQ_DESC_SIZE, "2.6.5: 16-byte descriptors");

/* The three parts of a queue, mapped to host addresses after checking. */
struct rings {
	const uint8_t *desc;
	uint16_t *avail;                /* flags, idx, ring[size] */
	uint16_t *used;                 /* flags, idx, then 8-byte elements */
};

static bool aligned(const void *p, uintptr_t align)
{
	return ((uintptr_t)p & (align - 1)) == 0;
}

/*
 * Checked again on every use rather than cached: the driver may
 * reprogram a queue, and the transport only checks what it is told.
 * The alignment 2.6 requires is also what makes the 16-bit index
 * accesses below single, untorn loads and stores.
 */
static bool map_rings(const struct guest_memory *mem, const struct virtq_config *cfg,
		      struct rings *r)
{
	uint16_t n = cfg->size;
	uint8_t *avail, *used;

	if (!n || n > VIRTQ_MAX_SIZE || (n & (n - 1)))
		return false;
	r->desc = guest_memory_at(mem, cfg->desc, (uint64_t)n * VIRTQ_DESC_SIZE);
	avail = guest_memory_at(mem, cfg->driver, VIRTQ_AVAIL_BYTES(n));
	used = guest_memory_at(mem, cfg->device, VIRTQ_USED_BYTES(n));
	if (!r->desc || !avail || !used || !aligned(r->desc, VIRTQ_DESC_ALIGN) ||
	    !aligned(avail, VIRTQ_AVAIL_ALIGN) || !aligned(used, VIRTQ_USED_ALIGN))
		return false;
	r->avail = (uint16_t *)(void *)avail;
	r->used = (uint16_t *)(void *)used;
	return true;
}

static bool event_idx(const struct virtio_device *dev)
{
	return dev->driver_features & (1ULL << VIRTIO_RING_F_EVENT_IDX);
}

/*
 * 2.6.7.2: whether the entries pushed from old to new_idx cross the event
 * index the other side named (its vring_need_event), modulo 2^16.
 */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

void virtq_reset(struct virtq *vq)
{
	struct virtq_budget left = vq->left;

	*vq = (struct virtq){ .left = left };
}

bool virtq_budget_left(const struct virtq *vq)
{
	return vq->left.chains && vq->left.bytes;
}

void virtq_charge(struct virtq *vq, const struct virtq_chain *chain, uint64_t bytes)
{
	uint64_t cost = bytes + (uint64_t)chain->n_desc * VIRTQ_DESC_COST;

	if (vq->left.chains)
		vq->left.chains--;
	vq->left.bytes = cost < vq->left.bytes ? vq->left.bytes - cost : 0;
}

bool virtq_new_pass(struct virtq *vq, const struct virtq_budget *budget)
{
	vq->left = *budget;
	return vq->pending;
}

void virtq_process(struct virtio_device *dev, unsigned qi, struct virtq *vq,
		   struct virtq_chain *chain, virtq_serve_fn serve, void *ctx,
		   uint64_t *resets_needed)
{
	/* Until the ring is found empty (or stopped), chains may be waiting. */
	vq->pending = true;
	while (virtq_budget_left(vq)) {
		enum virtq_pop_result r = virtq_pop(dev, qi, vq, chain);
		int64_t moved;

		if (r == VIRTQ_MALFORMED)
			(*resets_needed)++;
		if (r != VIRTQ_CHAIN) {
			vq->pending = false;
			break;
		}
		moved = serve(ctx, chain);
		if (moved < 0) {
			vq->pending = false;
			break;
		}
		virtq_charge(vq, chain, (uint64_t)moved);
	}
	virtq_interrupt(dev, qi, vq);
}

void virtio_config_changed(struct virtio_device *dev)
{
	if (dev->interrupt)
		dev->interrupt(dev, VIRTIO_INTERRUPT_CONFIG);
}

/*
 * 2.1.2: the device sets NEEDS_RESET and, once the driver is running,
 * MUST send a configuration change notification. The queue stays unused
 * until the driver resets the device.
 */
void virtq_break(struct virtio_device *dev, struct virtq *vq)
{
	vq->broken = true;
	dev->status |= VIRTIO_STATUS_NEEDS_RESET;
	virtio_config_changed(dev);
}

static enum virtq_pop_result break_queue(struct virtio_device *dev, struct virtq *vq)
{
	virtq_break(dev, vq);
	return VIRTQ_MALFORMED;
}

static bool add_seg(const struct guest_memory *mem, struct virtq_chain *c, const struct desc *d)
{
	bool writable = d->flags & VIRTQ_DESC_F_WRITE;

	/* 2.6.4.2: all device-readable descriptors come before the device-writable ones. */
	if (!writable && c->n_writable)
		return false;
	/* Bounds only: the bytes are loaded when they are copied (copy_chain). */
	if (!mem->base || !virtio_in_guest_memory(mem, d->addr, d->len))
		return false;
	if (!d->len)
		return true;
	c->seg[c->n_readable + c->n_writable] = (struct virtq_seg){ d->addr, d->len };
	if (writable) {
		c->n_writable++;
		c->writable_len += d->len;
	} else {
		c->n_readable++;
		c->readable_len += d->len;
	}
	return true;
}

/*
 * Walks the chain starting at descriptor head of a size-entry table:
 * zero or more descriptors, optionally ending in one that points to an
 * indirect table (2.6.5.3.2), whose own chain is walked the same way.
 * A walk takes at most as many steps in a table as it has entries (more
 * means a loop) and VIRTQ_MAX_SIZE descriptors in all, which seg[] holds.
 * 2.6.5.3.1 caps a chain at the queue size, but Linux fills an indirect
 * table up to seg_max + 2 entries whatever queue size it chose, so the
 * cap is the largest queue size instead.
 */
static bool walk_chain(const struct guest_memory *mem, bool indirect_ok, const uint8_t *table,
		       uint16_t size, uint16_t head, struct virtq_chain *c)
{
	uint32_t entries = size, idx = head, steps = 0, total = 0;
	bool in_indirect = false;
	struct desc d;

	c->head = head;
	c->n_readable = c->n_writable = 0;
	c->readable_len = c->writable_len = 0;
	for (;;) {
		memcpy(&d, table + (size_t)idx * VIRTQ_DESC_SIZE, sizeof(d));
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			/* 2.6.5.3.1: one table per chain, not chained on, whole descriptors. */
			if (!indirect_ok || in_indirect || (d.flags & VIRTQ_DESC_F_NEXT) ||
			    !d.len || d.len % VIRTQ_DESC_SIZE ||
			    d.len / VIRTQ_DESC_SIZE > VIRTQ_MAX_SIZE)
				return false;
			table = guest_memory_at(mem, d.addr, d.len);
			if (!table)
				return false;
			entries = d.len / VIRTQ_DESC_SIZE;
			idx = steps = 0;
			in_indirect = true;
			continue;
		}
		if (++steps > entries || ++total > VIRTQ_MAX_SIZE)
			return false;
		if (!add_seg(mem, c, &d))
			return false;
		if (!(d.flags & VIRTQ_DESC_F_NEXT)) {
			c->n_desc = (uint16_t)total;
			return true;
		}
		if (d.next >= entries)
			return false;
		idx = d.next;
	}
}

enum virtq_pop_result virtq_pop(struct virtio_device *dev, unsigned qi, struct virtq *vq,
				struct virtq_chain *chain)
{
	const struct virtq_config *cfg;
	struct rings r;
	uint16_t avail_idx, head;
	bool indirect_ok;

	if (!virtio_device_ready(dev) || qi >= dev->num_queues || qi >= VIRTIO_MAX_QUEUES ||
	    vq->broken || !dev->queues[qi].enabled)
		return VIRTQ_STOPPED;
	cfg = &dev->queues[qi];
	if (!map_rings(&dev->mem, cfg, &r))
		return break_queue(dev, vq);
	/*
	 * The driver writes the ring entry and descriptors before avail->idx
	 * (2.6.13.3); the device must read them after it. On x86 (TSO) loads
	 * are not reordered with loads, so the acquire load is a plain load
	 * plus a compiler barrier: no ring or descriptor read moves above it.
	 */
	avail_idx = __atomic_load_n(&r.avail[1], __ATOMIC_ACQUIRE);
	if (avail_idx == vq->last_avail && event_idx(dev)) {
		/*
		 * Found empty: the next entry the driver makes available is the
		 * one to notify about (avail_event, after the used ring). The
		 * driver writes avail->idx and then reads avail_event; the device
		 * writes avail_event and then reads avail->idx again, with a full
		 * fence between, so one of them sees the other (2.6.10.2).
		 */
		__atomic_store_n(&r.used[2 + 4 * (size_t)cfg->size], vq->last_avail,
				 __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail_idx = __atomic_load_n(&r.avail[1], __ATOMIC_ACQUIRE);
	}
	/* More than a queue's worth ahead: the driver made up entries (2.6.6). */
	if ((uint16_t)(avail_idx - vq->last_avail) > cfg->size)
		return break_queue(dev, vq);
	if (avail_idx == vq->last_avail)
		return VIRTQ_EMPTY;
	head = __atomic_load_n(&r.avail[2 + (vq->last_avail & (cfg->size - 1))], __ATOMIC_RELAXED);
	indirect_ok = dev->driver_features & (1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	if (head >= cfg->size ||
	    !walk_chain(&dev->mem, indirect_ok, r.desc, cfg->size, head, chain))
		return break_queue(dev, vq);
	vq->last_avail++;
	return VIRTQ_CHAIN;
}

void virtq_unpop(struct virtq *vq)
{
	vq->last_avail--;
}

/*
 * Copies between host memory and the chain's segments [first, end),
 * skipping offset bytes: into out (gather) when it is set, else from in
 * (scatter). Each segment is checked against RAM again, so a chain that
 * did not come from virtq_pop on this memory still cannot escape it.
 */
static size_t copy_chain(const struct guest_memory *mem, const struct virtq_chain *c,
			 unsigned first, unsigned end, uint64_t offset, uint8_t *out,
			 const uint8_t *in, size_t len)
{
	size_t done = 0;

	for (unsigned i = first; i < end && i < VIRTQ_MAX_SIZE && done < len; i++) {
		const struct virtq_seg *s = &c->seg[i];

		if (!virtio_in_guest_memory(mem, s->gpa, s->len))
			break;
		if (offset >= s->len) {
			offset -= s->len;
			continue;
		}
		size_t n = s->len - offset < len - done ? (size_t)(s->len - offset) : len - done;
		/* Only the bytes copied: where RAM is loaded as needed, no more than that. */
		uint8_t *g = guest_memory_at(mem, s->gpa + offset, n);
		if (!g)
			break;
		if (out)
			memcpy(out + done, g, n);
		else
			memcpy(g, in + done, n);
		done += n;
		offset = 0;
	}
	return done;
}

const uint8_t *virtq_readable_span(const struct guest_memory *mem,
				   const struct virtq_chain *chain, uint64_t offset, uint64_t len)
{
	for (unsigned i = 0; i < chain->n_readable; i++) {
		const struct virtq_seg *seg = &chain->seg[i];
		if (offset < seg->len)
			return len <= seg->len - offset ? guest_memory_at(mem, seg->gpa + offset, len) : NULL;
		offset -= seg->len;
	}
	return NULL;
}

size_t virtq_gather(const struct guest_memory *mem, const struct virtq_chain *chain,
		    uint64_t offset, void *buf, size_t len)
{
	return copy_chain(mem, chain, 0, chain->n_readable, offset, buf, NULL, len);
}

size_t virtq_scatter(const struct guest_memory *mem, const struct virtq_chain *chain,
		     uint64_t offset, const void *buf, size_t len)
{
	return copy_chain(mem, chain, chain->n_readable,
			  (unsigned)chain->n_readable + chain->n_writable, offset, NULL, buf, len);
}

void virtq_push(struct virtio_device *dev, unsigned qi, struct virtq *vq, uint16_t head,
		uint32_t written)
{
	struct rings r;
	uint8_t *elem;
	uint32_t e[2] = { head, written };   /* struct virtq_used_elem: id, len (2.6.8) */

	if (qi >= VIRTIO_MAX_QUEUES || vq->broken)
		return;
	if (!map_rings(&dev->mem, &dev->queues[qi], &r)) {
		virtq_break(dev, vq);
		return;
	}
	elem = (uint8_t *)&r.used[2] + 8 * (size_t)(vq->used_idx & (dev->queues[qi].size - 1));
	memcpy(elem, e, sizeof(e));
	vq->used_idx++;
	/*
	 * 2.6.8.2: the element must be visible before the index that
	 * publishes it. x86 does not reorder stores with stores, so the
	 * release store only keeps the compiler from doing so.
	 */
	__atomic_store_n(&r.used[1], vq->used_idx, __ATOMIC_RELEASE);
	vq->interrupt_due = true;
}

void virtq_interrupt(struct virtio_device *dev, unsigned qi, struct virtq *vq)
{
	struct rings r;
	uint16_t flags;

	if (!vq->interrupt_due || qi >= VIRTIO_MAX_QUEUES)
		return;
	vq->interrupt_due = false;
	if (!map_rings(&dev->mem, &dev->queues[qi], &r))
		return;
	/*
	 * The driver clears NO_INTERRUPT and then reads used->idx; the device
	 * wrote used->idx and now reads the flag. Neither may miss the other,
	 * and x86 lets a load pass an earlier store, so this takes a full
	 * fence (mfence), not just a compiler barrier (2.6.7.2).
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (event_idx(dev)) {
		/* used_event, after the available ring (2.6.7.2): interrupt once past it. */
		uint16_t used_event =
			__atomic_load_n(&r.avail[2 + dev->queues[qi].size], __ATOMIC_RELAXED);
		bool need = !vq->signalled_valid ||
			    need_event(used_event, vq->used_idx, vq->signalled_used);
		vq->signalled_used = vq->used_idx;
		vq->signalled_valid = true;
		if (need && dev->interrupt)
			dev->interrupt(dev, qi);
		return;
	}
	flags = __atomic_load_n(&r.avail[0], __ATOMIC_RELAXED);
	if (!(flags & VIRTQ_AVAIL_F_NO_INTERRUPT) && dev->interrupt)
		dev->interrupt(dev, qi);
}

uint32_t virtio_config_image_read(const uint8_t *img, uint32_t img_size, uint32_t offset,
				  unsigned size)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < size && i < sizeof(v); i++) {
		uint64_t at = (uint64_t)offset + i;

		if (at < img_size)
			v |= (uint32_t)img[at] << (8 * i);
	}
	return v;
}

void virtio_config_write_ignored(struct virtio_device *dev, uint32_t offset, unsigned size,
				 uint32_t value)
{
	(void)dev;
	(void)offset;
	(void)size;
	(void)value;
}

void virtio_device_state_reset(struct virtio_device *dev)
{
	virtio_transport_fields_reset(dev);
	dev->config_generation = 0;
}

static bool vector_mapped(const struct virtio_device *dev, uint16_t vector)
{
	return vector == VIRTIO_MSI_NO_VECTOR || vector < dev->num_queues + 1;
}

bool virtio_device_state_check(const struct virtio_device *dev, const char *device,
			       struct devstate_error *err)
{
	const uint8_t defined = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK |
				VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED;
	const uint64_t version_1 = 1ull << VIRTIO_F_VERSION_1;

	if (dev->status & ~defined)
		return devstate_refuse(err, device, "dev.status", 0, "= 0x%x sets undefined bits",
				       dev->status);
	if ((dev->status & VIRTIO_STATUS_DRIVER_OK) && !(dev->status & VIRTIO_STATUS_FEATURES_OK))
		return devstate_refuse(err, device, "dev.status", 0,
				       "= 0x%x has DRIVER_OK without FEATURES_OK", dev->status);
	if ((dev->status & VIRTIO_STATUS_FEATURES_OK) &&
	    ((dev->driver_features & ~dev->device_features) || !(dev->driver_features & version_1)))
		return devstate_refuse(err, device, "dev.driver_features", 0,
				       "= 0x%llx accepted, but offered were 0x%llx",
				       (unsigned long long)dev->driver_features,
				       (unsigned long long)dev->device_features);
	if (!vector_mapped(dev, dev->config_msix_vector))
		return devstate_refuse(err, device, "dev.config_msix_vector", 0,
				       "= %u, the transport maps 0..%u", dev->config_msix_vector,
				       dev->num_queues);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		const struct virtq_config *q = &dev->queues[i];
		if (i >= dev->num_queues) {
			if (q->size != dev->queue_max_size || q->enabled ||
			    q->msix_vector != VIRTIO_MSI_NO_VECTOR || q->desc || q->driver ||
			    q->device)
				return devstate_refuse(err, device, "dev.queues[]", i,
						       "is set up, the device has %u queues",
						       dev->num_queues);
			continue;
		}
		if (!vector_mapped(dev, q->msix_vector))
			return devstate_refuse(err, device, "dev.queues[].msix_vector", i,
					       "= %u, the transport maps 0..%u", q->msix_vector,
					       dev->num_queues);
		if (q->enabled && !virtio_queue_usable(dev, q))
			return devstate_refuse(err, device, "dev.queues[].enabled", i,
					       "on a queue of size %u at 0x%llx/0x%llx/0x%llx that "
					       "cannot be enabled",
					       q->size, (unsigned long long)q->desc,
					       (unsigned long long)q->driver,
					       (unsigned long long)q->device);
	}
	return true;
}
