/*
 * libFuzzer harness of the virtqueue code and the virtio-blk and
 * virtio-net models: the input is a guest's RAM and how its driver set up
 * the queues, then a few notifications and received frames.
 *
 * Input:
 *   ctl (1 byte): bit 0: the block driver accepted indirect descriptors,
 *     bit 1: the network driver did, bit 2: the link starts down,
 *     bit 3: the disk is read-only, bit 4: the block driver is not running,
 *     bit 5: both drivers reset their device after the second operation
 *     and start it again with the same queues;
 *   ops (1 byte): four 2-bit operations, low bits first: 0 notify the
 *     block queue, 1 notify the transmit queue (the back end loops every
 *     frame back into the receive queue), 2 receive a frame, 3 toggle
 *     the link;
 *   three queues (block, net receive, net transmit), each
 *     size code (1 byte: 0..8 give 1 << code, larger codes are the size
 *     itself), desc, driver, device (2 bytes each, little-endian);
 *   the received frame's length (2 bytes, little-endian): the frame is
 *     a copy of the first bytes of guest RAM;
 *   the rest: guest RAM, guest-physical 0 on, exactly as long as given,
 *   so a sanitizer sees any access past it.
 * Then scheduler passes until no queue has chains waiting: each pass
 * copies at most a budget and one request, and no more than a ring's
 * worth of passes is needed. Afterwards every queue either broke (and
 * the device needs a reset) or returned every chain it took.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio_blk.h"
#include "devices/virtio_net.h"

#define CTL_BLK_INDIRECT 0x01
#define CTL_NET_INDIRECT 0x02
#define CTL_LINK_DOWN 0x04
#define CTL_READ_ONLY 0x08
#define CTL_BLK_NOT_RUNNING 0x10
#define CTL_RESET 0x20
#define QUEUE_BYTES 7
#define HEADER_BYTES (2 + 3 * QUEUE_BYTES + 2)
#define OPS 4
/* Two copy-on-write chunks and part of a third, so requests can span chunks. */
#define DISK_SECTORS 272
#define MTU 1500

static struct virtio_blk blk;
static struct virtio_net net;

static void check(int ok)
{
	if (!ok)
		abort();
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void interrupt(struct virtio_device *dev, unsigned queue)
{
	check(queue == VIRTIO_INTERRUPT_CONFIG || queue < dev->num_queues);
}

static int loopback(void *ctx, const void *frame, size_t len)
{
	/* The frame may be the guest's own memory: copy it out first, as the switch does. */
	static uint8_t copy[VIRTIO_NET_FRAME_MAX];
	check(ctx == &net && len >= ETH_HLEN && len <= (size_t)MTU + VIRTIO_NET_FRAME_OVERHEAD);
	memcpy(copy, frame, len);
	return virtio_net_receive(&net, copy, len);
}

static void queue_config(struct virtio_device *dev, unsigned qi, const uint8_t *p)
{
	dev->queues[qi] = (struct virtq_config){
		.size = (uint16_t)(p[0] <= 8 ? 1u << p[0] : p[0]),
		.enabled = true,
		.msix_vector = VIRTIO_MSI_NO_VECTOR,
		.desc = get16(p + 1),
		.driver = get16(p + 3),
		.device = get16(p + 5),
	};
}

static void start(struct virtio_device *dev, bool indirect, bool running)
{
	dev->interrupt = interrupt;
	dev->driver_features = dev->device_features;
	if (!indirect)
		dev->driver_features &= ~(1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	dev->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
		      (running ? VIRTIO_STATUS_DRIVER_OK : 0);
}

/*
 * The configuration is read-only to the driver: every access, past its
 * end too, reads the same before and after a write.
 */
static void poke_config(struct virtio_device *dev)
{
	for (uint32_t off = 0; off < dev->config_size + 8; off++) {
		for (unsigned size = 1; size <= 4; size *= 2) {
			uint32_t before = dev->ops->config_read(dev, off, size);

			dev->ops->config_write(dev, off, size, ~before);
			check(dev->ops->config_read(dev, off, size) == before);
		}
	}
}

/* Status 0, then the driver's initialisation again (3.1.1). */
static void reset(struct virtio_device *dev)
{
	uint8_t status = dev->status & (uint8_t)~VIRTIO_STATUS_NEEDS_RESET;

	dev->ops->reset(dev);
	dev->status = status;
}

/* A queue that did not break gave back every chain it took. */
static void check_queue(const struct virtio_device *dev, const struct virtq *vq)
{
	if (vq->broken)
		check(dev->status & VIRTIO_STATUS_NEEDS_RESET);
	else
		check(vq->used_idx == vq->last_avail);
}

/* The disk's copy-on-write chunks (devices/disk.h) come from the heap. */
static void *chunk_alloc(void *ctx)
{
	(void)ctx;
	return malloc(DISK_CHUNK_SIZE);
}

static void chunk_free(void *ctx, void *chunk)
{
	(void)ctx;
	free(chunk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 1 };
	const struct virtio_net_backend backend = { loopback, NULL, &net };
	struct guest_memory mem = { 0 };
	static const struct disk_chunk_alloc heap_chunks = { chunk_alloc, chunk_free, NULL };
	static uint8_t *chunk_table[DISK_SECTORS * VIRTIO_BLK_SECTOR_SIZE / DISK_CHUNK_SIZE + 1];
	struct disk disk;
	uint8_t *ram, *pristine, *frame;
	uint8_t ctl, ops;
	size_t frame_len;

	if (size < HEADER_BYTES)
		return 0;
	ctl = data[0];
	ops = data[1];
	mem.size = size - HEADER_BYTES;
	ram = malloc(mem.size ? mem.size : 1);
	pristine = malloc(DISK_SECTORS * VIRTIO_BLK_SECTOR_SIZE);
	check(ram && pristine);
	memcpy(ram, data + HEADER_BYTES, mem.size);
	memset(pristine, 0x5a, DISK_SECTORS * VIRTIO_BLK_SECTOR_SIZE);
	disk_init(&disk, pristine, DISK_SECTORS * VIRTIO_BLK_SECTOR_SIZE, chunk_table, &heap_chunks);
	mem.base = ram;
	frame_len = get16(data + 2 + 3 * QUEUE_BYTES);
	if (frame_len > mem.size)
		frame_len = mem.size;
	/* A back end's frame is never in the receiving guest's RAM. */
	frame = malloc(frame_len ? frame_len : 1);
	check(frame != NULL);
	memcpy(frame, ram, frame_len);

	check(!virtio_blk_init(&blk, mem, &disk, ctl & CTL_READ_ONLY, "fuzz"));
	check(!virtio_net_init(&net, mem, mac, MTU, &backend));
	start(&blk.dev, ctl & CTL_BLK_INDIRECT, !(ctl & CTL_BLK_NOT_RUNNING));
	start(&net.dev, ctl & CTL_NET_INDIRECT, true);
	queue_config(&blk.dev, 0, data + 2);
	queue_config(&net.dev, VIRTIO_NET_RXQ, data + 2 + QUEUE_BYTES);
	queue_config(&net.dev, VIRTIO_NET_TXQ, data + 2 + 2 * QUEUE_BYTES);
	if (ctl & CTL_LINK_DOWN)
		virtio_net_set_link(&net, false);

	for (unsigned i = 0; i < OPS; i++) {
		if (i == OPS / 2 && (ctl & CTL_RESET)) {
			reset(&blk.dev);
			reset(&net.dev);
		}
		switch (ops >> (2 * i) & 3) {
		case 0:
			blk.dev.ops->queue_notify(&blk.dev, 0);
			break;
		case 1:
			net.dev.ops->queue_notify(&net.dev, VIRTIO_NET_TXQ);
			break;
		case 2:
			virtio_net_receive(&net, frame, frame_len);
			break;
		default:
			virtio_net_set_link(&net, !net.link_up);
			break;
		}
	}
	for (unsigned pass = 0; blk.vq.pending || net.vq[VIRTIO_NET_TXQ].pending; pass++) {
		uint64_t copied = blk.stats.read_bytes + blk.stats.written_bytes;

		check(pass <= VIRTQ_MAX_SIZE);
		virtio_blk_new_pass(&blk);
		virtio_net_new_pass(&net);
		check(blk.stats.read_bytes + blk.stats.written_bytes - copied <=
		      VIRTIO_BLK_BUDGET_BYTES + VIRTIO_BLK_MAX_DATA);
	}
	poke_config(&blk.dev);
	poke_config(&net.dev);

	check_queue(&blk.dev, &blk.vq);
	check_queue(&net.dev, &net.vq[VIRTIO_NET_RXQ]);
	check_queue(&net.dev, &net.vq[VIRTIO_NET_TXQ]);
	check(blk.stats.read_bytes % VIRTIO_BLK_SECTOR_SIZE == 0);
	check(blk.stats.written_bytes % VIRTIO_BLK_SECTOR_SIZE == 0);
	check(blk.stats.written_bytes == 0 || !(ctl & CTL_READ_ONLY));
	check(net.stats.tx_bytes <=
	      net.stats.tx_frames * ((uint64_t)MTU + VIRTIO_NET_FRAME_OVERHEAD));
	/* The library's bytes are never written, whatever the guest did. */
	for (size_t i = 0; i < DISK_SECTORS * VIRTIO_BLK_SECTOR_SIZE; i++)
		check(pristine[i] == 0x5a);
	disk_discard_writes(&disk);
	free(ram);
	free(pristine);
	free(frame);
	return 0;
}
