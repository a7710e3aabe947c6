#include "devices/virtio_balloon.h"

#include <string.h>

/* Scratch of the chain in hand, not state: one CPU runs every device model. */
static struct virtq_chain chain;

static uint32_t balloon_config_read(struct virtio_device *dev, uint32_t offset, unsigned size)
{
	const struct virtio_balloon *b = dev->ctx;
	uint8_t img[VIRTIO_BALLOON_CONFIG_SIZE] = { 0 }; /* num_pages 0: never inflate */

	memcpy(img + VIRTIO_BALLOON_CONFIG_ACTUAL, &b->actual, sizeof(b->actual));
	memcpy(img + VIRTIO_BALLOON_CONFIG_POISON, &b->poison_val, sizeof(b->poison_val));
	return virtio_config_image_read(img, sizeof(img), offset, size);
}

/* `actual` and `poison_val` are the driver's to write (5.5.4); num_pages is not. */
static void balloon_config_write(struct virtio_device *dev, uint32_t offset, unsigned size,
				 uint32_t value)
{
	struct virtio_balloon *b = dev->ctx;

	if (offset == VIRTIO_BALLOON_CONFIG_ACTUAL && size == 4)
		b->actual = value;
	else if (offset == VIRTIO_BALLOON_CONFIG_POISON && size == 4)
		b->poison_val = value;
}

/* [at, at + n) of guest RAM filled with the driver's poison_val, repeated from address 0. */
static void fill(struct virtio_balloon *b, uint64_t at, uint64_t n)
{
	uint8_t *p = guest_memory_at(&b->dev.mem, at, n);
	uint32_t v = b->poison_val;

	/* Zero, or one byte four times as Linux's PAGE_POISON (0xaa): memset's speed. */
	if (v == (v & 0xff) * 0x01010101u) {
		memset(p, (int)(v & 0xff), n);
		return;
	}
	for (uint64_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * ((at + i) & 3)));
}

/* Clears the chain's writable bytes from report_done on, at most `allowance` of them. */
static uint64_t clear_reported(struct virtio_balloon *b, uint64_t allowance)
{
	uint64_t skip = b->report_done, cleared = 0;

	for (unsigned i = chain.n_readable; i < chain.n_readable + chain.n_writable; i++) {
		const struct virtq_seg *s = &chain.seg[i];
		if (skip >= s->len) {
			skip -= s->len;
			continue;
		}
		uint64_t n = s->len - skip;
		if (n > allowance - cleared)
			n = allowance - cleared;
		/* virtq_pop held the segment inside RAM; checked again before it is written. */
		if (virtio_in_guest_memory(&b->dev.mem, s->gpa + skip, n))
			fill(b, s->gpa + skip, n);
		cleared += n;
		skip = 0;
		if (cleared == allowance)
			break;
	}
	b->report_done += cleared;
	return cleared;
}

/* The next chain of the queue into `chain`, within the pass's chain budget. */
static bool take_chain(struct virtio_balloon *b, unsigned queue)
{
	if (!b->chains_left)
		return false;
	enum virtq_pop_result r = virtq_pop(&b->dev, queue, &b->vq[queue], &chain);
	if (r == VIRTQ_MALFORMED)
		b->stats.resets_needed++;
	if (r != VIRTQ_CHAIN)
		return false;
	b->chains_left--;
	return true;
}

/*
 * Answers reported chains while the pass's allowance lasts; a chain it
 * cannot finish goes back to the ring for the next pass.
 */
static void serve_reports(struct virtio_balloon *b)
{
	struct virtq *vq = &b->vq[VIRTIO_BALLOON_REPORTQ];

	while (b->clear_left && take_chain(b, VIRTIO_BALLOON_REPORTQ)) {
		uint64_t cleared = clear_reported(b, b->clear_left);
		b->clear_left -= cleared;
		b->stats.cleared_bytes += cleared;
		if (b->report_done < chain.writable_len) {
			virtq_unpop(vq);
			break;
		}
		b->report_done = 0;
		b->stats.reports++;
		virtq_push(&b->dev, VIRTIO_BALLOON_REPORTQ, vq, chain.head, 0);
	}
	virtq_interrupt(&b->dev, VIRTIO_BALLOON_REPORTQ, vq);
}

/* Page numbers to inflate or deflate: an empty balloon takes none, and hands them back. */
static void return_unused(struct virtio_balloon *b, unsigned queue)
{
	while (take_chain(b, queue))
		virtq_push(&b->dev, queue, &b->vq[queue], chain.head, 0);
	virtq_interrupt(&b->dev, queue, &b->vq[queue]);
}

static void balloon_queue_notify(struct virtio_device *dev, unsigned queue)
{
	struct virtio_balloon *b = dev->ctx;

	if (queue == VIRTIO_BALLOON_REPORTQ)
		serve_reports(b);
	else if (queue < VIRTIO_BALLOON_QUEUES)
		return_unused(b, queue);
}

static void balloon_reset(struct virtio_device *dev)
{
	struct virtio_balloon *b = dev->ctx;

	for (unsigned q = 0; q < VIRTIO_BALLOON_QUEUES; q++)
		virtq_reset(&b->vq[q]);
	b->actual = 0;
	b->poison_val = 0;
	b->report_done = 0;
}

void virtio_balloon_new_pass(struct virtio_balloon *b)
{
	b->clear_left = VIRTIO_BALLOON_CLEAR_PER_PASS;
	b->chains_left = VIRTIO_BALLOON_CHAINS_PER_PASS;
	serve_reports(b);
	for (unsigned q = VIRTIO_BALLOON_INFLATEQ; q <= VIRTIO_BALLOON_DEFLATEQ; q++)
		return_unused(b, q);
}

static const struct virtio_device_ops balloon_ops = {
	.config_read = balloon_config_read,
	.config_write = balloon_config_write,
	.queue_notify = balloon_queue_notify,
	.reset = balloon_reset,
};

void virtio_balloon_init(struct virtio_balloon *b, struct guest_memory mem)
{
	memset(b, 0, sizeof(*b));
	b->dev.device_id = VIRTIO_ID_BALLOON;
	b->dev.device_features = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_RING_F_INDIRECT_DESC |
				 1ULL << VIRTIO_RING_F_EVENT_IDX |
				 1ULL << VIRTIO_BALLOON_F_PAGE_POISON |
				 1ULL << VIRTIO_BALLOON_F_REPORTING;
	b->dev.num_queues = VIRTIO_BALLOON_QUEUES;
	b->dev.queue_max_size = VIRTQ_MAX_SIZE;
	b->dev.config_size = VIRTIO_BALLOON_CONFIG_SIZE;
	b->dev.ops = &balloon_ops;
	b->dev.ctx = b;
	b->dev.mem = mem;
	b->clear_left = VIRTIO_BALLOON_CLEAR_PER_PASS;
	b->chains_left = VIRTIO_BALLOON_CHAINS_PER_PASS;
}

static void virtio_balloon_state_reset(void *state)
{
	struct virtio_balloon *b = state;

	virtio_device_state_reset(&b->dev);
	balloon_reset(&b->dev);
}

static bool virtio_balloon_state_check(const void *state, const void *live, const char *device,
				       struct devstate_error *err)
{
	const struct virtio_balloon *b = state;

	(void)live;
	return virtio_device_state_check(&b->dev, device, err);
}

static const struct devstate_field virtio_balloon_fields[] = {
	VIRTIO_DEVICE_STATE_FIELDS(struct virtio_balloon),
	VIRTQ_STATE_FIELDS(struct virtio_balloon, vq[VIRTIO_BALLOON_INFLATEQ]),
	VIRTQ_STATE_FIELDS(struct virtio_balloon, vq[VIRTIO_BALLOON_DEFLATEQ]),
	VIRTQ_STATE_FIELDS(struct virtio_balloon, vq[VIRTIO_BALLOON_REPORTQ]),
	DEVSTATE_FIELD(struct virtio_balloon, actual, DEVSTATE_U32, 0, UINT32_MAX, 1),
	DEVSTATE_FIELD(struct virtio_balloon, poison_val, DEVSTATE_U32, 0, UINT32_MAX, 1),
	DEVSTATE_FIELD(struct virtio_balloon, report_done, DEVSTATE_U64, 0, UINT64_MAX, 1),
};

const struct devstate_desc virtio_balloon_state_desc =
	DEVSTATE_DESC(struct virtio_balloon, "virtio_balloon", 1, virtio_balloon_fields,
		      virtio_balloon_state_reset, virtio_balloon_state_check);
