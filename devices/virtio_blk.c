#include "devices/virtio_blk.h"

#include <string.h>

/*
 * Scratch of the request in progress, not device state: one physical CPU
 * runs every device model, one request at a time, so all disks share it.
 */
static struct virtq_chain chain;
/* A disk on a medium is copied through this: one request's data fits it whole. */
static uint8_t bounce[VIRTIO_BLK_MAX_DATA];

/* Byte offsets in the configuration (5.2.4). */
#define CFG_CAPACITY 0
#define CFG_SIZE_MAX 8
#define CFG_SEG_MAX 12
#define CFG_BLK_SIZE 20

static const struct virtq_budget budget = { VIRTIO_BLK_BUDGET_REQUESTS, VIRTIO_BLK_BUDGET_BYTES };

/* used.len is 32 bits and counts the status byte too (2.6.8). */
#define MAX_TRANSFER (UINT32_MAX - 1)

static uint32_t blk_config_read(struct virtio_device *dev, uint32_t offset, unsigned size)
{
	const struct virtio_blk *blk = dev->ctx;
	uint8_t img[VIRTIO_BLK_CONFIG_SIZE] = { 0 };
	uint64_t capacity = blk->disk->size / VIRTIO_BLK_SECTOR_SIZE;
	uint32_t size_max = VIRTIO_BLK_SIZE_MAX, seg_max = VIRTIO_BLK_SEG_MAX;
	uint32_t blk_size = VIRTIO_BLK_SECTOR_SIZE;

	memcpy(img + CFG_CAPACITY, &capacity, sizeof(capacity));
	memcpy(img + CFG_SIZE_MAX, &size_max, sizeof(size_max));
	memcpy(img + CFG_SEG_MAX, &seg_max, sizeof(seg_max));
	memcpy(img + CFG_BLK_SIZE, &blk_size, sizeof(blk_size));
	return virtio_config_image_read(img, sizeof(img), offset, size);
}

static void blk_reset(struct virtio_device *dev)
{
	struct virtio_blk *blk = dev->ctx;

	virtq_reset(&blk->vq);
}

/*
 * Moves len bytes between the chain's data buffers and a disk on a medium
 * at offset, through the bounce buffer. A medium's error is the guest's
 * IOERR; a write may then have landed in part, as on a real disk. A
 * driver without VIRTIO_BLK_F_FLUSH takes the disk for write-through
 * (5.2.5.2; Linux then never flushes): its writes are flushed before they
 * are done.
 */
static bool medium_transfer(struct virtio_blk *blk, uint64_t offset, uint64_t len, bool write)
{
	const struct disk_medium *m = blk->disk->medium;
	bool write_through = !(blk->dev.driver_features & 1ULL << VIRTIO_BLK_F_FLUSH);

	for (uint64_t done = 0, n; done < len; done += n) {
		n = len - done < sizeof(bounce) ? len - done : sizeof(bounce);
		if (write) {
			virtq_gather(&blk->dev.mem, &chain, VIRTIO_BLK_REQ_HDR + done, bounce, n);
			if (!m->write(m->ctx, offset + done, bounce, n))
				return false;
			if (write_through && !m->flush(m->ctx))
				return false;
		} else {
			if (!m->read(m->ctx, offset + done, bounce, n))
				return false;
			virtq_scatter(&blk->dev.mem, &chain, done, bounce, n);
		}
	}
	return true;
}

/* The same for a disk in host RAM, a chunk of it at a time (devices/disk.h). */
static bool ram_transfer(struct virtio_blk *blk, uint64_t offset, uint64_t len, bool write)
{
	/* No host memory for the copy-on-write chunks: the write fails, not the host. */
	if (write && disk_prepare_write(blk->disk, offset, len))
		return false;
	/* The lengths are the chain's own, so the copies move exactly len bytes. */
	for (uint64_t done = 0, n; done < len; done += n) {
		n = len - done;
		if (write)
			virtq_gather(&blk->dev.mem, &chain, VIRTIO_BLK_REQ_HDR + done,
				     disk_write_span(blk->disk, offset + done, &n), n);
		else
			virtq_scatter(&blk->dev.mem, &chain, done,
				      disk_read_span(blk->disk, offset + done, &n), n);
	}
	return true;
}

/* Moves len bytes between the chain's data buffers and the disk at sector. */
static uint8_t transfer(struct virtio_blk *blk, uint64_t sector, uint64_t len, bool write)
{
	uint64_t sectors = blk->disk->size / VIRTIO_BLK_SECTOR_SIZE;
	uint64_t offset = sector * VIRTIO_BLK_SECTOR_SIZE;

	/* 5.2.6.2: a device MUST answer a write to a read-only disk IOERR and write nothing. */
	if (write && blk->read_only)
		return VIRTIO_BLK_S_IOERR;
	if (len % VIRTIO_BLK_SECTOR_SIZE || len > MAX_TRANSFER || sector > sectors ||
	    len / VIRTIO_BLK_SECTOR_SIZE > sectors - sector)
		return VIRTIO_BLK_S_IOERR;
	if (!(blk->disk->medium ? medium_transfer : ram_transfer)(blk, offset, len, write))
		return VIRTIO_BLK_S_IOERR;
	if (write) {
		blk->stats.writes++;
		blk->stats.written_bytes += len;
	} else {
		blk->stats.reads++;
		blk->stats.read_bytes += len;
	}
	return VIRTIO_BLK_S_OK;
}

/*
 * A transfer of a request's len data bytes, refused when it is larger
 * than size_max and seg_max allow: a driver honouring them never builds
 * one, and copying it would exceed the queue's budget by its whole size.
 * *moved is what was copied.
 */
static uint8_t bounded_transfer(struct virtio_blk *blk, uint64_t sector, uint64_t len,
				bool write, uint64_t *moved)
{
	uint8_t status;

	if (len > VIRTIO_BLK_MAX_DATA) {
		blk->stats.too_large++;
		return VIRTIO_BLK_S_IOERR;
	}
	status = transfer(blk, sector, len, write);
	if (status == VIRTIO_BLK_S_OK)
		*moved = len;
	return status;
}

/*
 * One request (5.2.6): a 16-byte header in the device-readable bytes,
 * then OUT data; IN and GET_ID data in the device-writable bytes, whose
 * last byte is the status. 2.6.4 lets the driver split all of it over
 * descriptors as it likes, so everything goes by byte offsets.
 * Returns the data bytes moved, or -1 when the queue broke (virtq_serve_fn).
 */
static int64_t serve(void *ctx, const struct virtq_chain *c)
{
	struct virtio_blk *blk = ctx;
	uint8_t hdr[VIRTIO_BLK_REQ_HDR];
	uint32_t type;
	uint64_t sector, data_in, moved = 0;
	uint32_t written = 0;
	uint8_t status;

	if (!c->writable_len) {
		blk->stats.resets_needed++;
		virtq_break(&blk->dev, &blk->vq);
		return -1;
	}
	data_in = c->writable_len - 1;
	if (virtq_gather(&blk->dev.mem, c, 0, hdr, sizeof(hdr)) < sizeof(hdr)) {
		status = VIRTIO_BLK_S_IOERR;
	} else {
		memcpy(&type, hdr, sizeof(type));
		memcpy(&sector, hdr + 8, sizeof(sector));
		switch (type) {
		case VIRTIO_BLK_T_IN:
			status = bounded_transfer(blk, sector, data_in, false, &moved);
			if (status == VIRTIO_BLK_S_OK)
				written = (uint32_t)data_in;
			break;
		case VIRTIO_BLK_T_OUT:
			status = bounded_transfer(blk, sector, c->readable_len - sizeof(hdr), true,
						  &moved);
			break;
		case VIRTIO_BLK_T_FLUSH:
			/*
			 * On a medium: done when the medium's drive has its
			 * cache on the platters (5.2.6.1). A disk in host RAM
			 * has no slower medium to flush to.
			 */
			status = !blk->disk->medium ||
					 blk->disk->medium->flush(blk->disk->medium->ctx)
				 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
			blk->stats.flushes++;
			break;
		case VIRTIO_BLK_T_GET_ID:
			written = data_in < VIRTIO_BLK_ID_BYTES ? (uint32_t)data_in
								: VIRTIO_BLK_ID_BYTES;
			virtq_scatter(&blk->dev.mem, c, 0, blk->serial, written);
			status = VIRTIO_BLK_S_OK;
			break;
		default:
			status = VIRTIO_BLK_S_UNSUPP;
			blk->stats.unsupported++;
			break;
		}
	}
	if (status == VIRTIO_BLK_S_IOERR)
		blk->stats.errors++;
	virtq_scatter(&blk->dev.mem, c, data_in, &status, 1);
	virtq_push(&blk->dev, 0, &blk->vq, c->head, written + 1);
	return (int64_t)moved;
}

static void blk_queue_notify(struct virtio_device *dev, unsigned queue)
{
	struct virtio_blk *blk = dev->ctx;

	virtq_process(dev, queue, &blk->vq, &chain, serve, blk, &blk->stats.resets_needed);
}

bool virtio_blk_new_pass(struct virtio_blk *blk)
{
	if (virtq_new_pass(&blk->vq, &budget))
		virtq_process(&blk->dev, 0, &blk->vq, &chain, serve, blk,
			      &blk->stats.resets_needed);
	return blk->vq.pending;
}

static const struct virtio_device_ops blk_ops = {
	.config_read = blk_config_read,
	/* Writable configuration needs VIRTIO_BLK_F_CONFIG_WCE, not offered. */
	.config_write = virtio_config_write_ignored,
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
};

int virtio_blk_init(struct virtio_blk *blk, struct guest_memory mem, struct disk *disk,
		    bool read_only, const char *serial)
{
	if (!disk || disk->size % VIRTIO_BLK_SECTOR_SIZE)
		return -1;
	memset(blk, 0, sizeof(*blk));
	blk->dev.device_id = VIRTIO_ID_BLOCK;
	blk->dev.device_features = 1ULL << VIRTIO_F_VERSION_1 |
				   1ULL << VIRTIO_RING_F_INDIRECT_DESC | 1ULL << VIRTIO_RING_F_EVENT_IDX |
				   1ULL << VIRTIO_BLK_F_SIZE_MAX | 1ULL << VIRTIO_BLK_F_SEG_MAX |
				   1ULL << VIRTIO_BLK_F_BLK_SIZE |
				   1ULL << VIRTIO_BLK_F_FLUSH |
				   (read_only ? 1ULL << VIRTIO_BLK_F_RO : 0);
	blk->dev.num_queues = 1;
	blk->dev.queue_max_size = VIRTQ_MAX_SIZE;
	blk->dev.config_size = VIRTIO_BLK_CONFIG_SIZE;
	blk->dev.ops = &blk_ops;
	blk->dev.ctx = blk;
	blk->dev.mem = mem;
	blk->disk = disk;
	blk->read_only = read_only;
	virtq_new_pass(&blk->vq, &budget);
	for (unsigned i = 0; serial && i < VIRTIO_BLK_ID_BYTES && serial[i]; i++)
		blk->serial[i] = serial[i];
	return 0;
}

int virtio_blk_change_medium(struct virtio_blk *blk, struct disk *disk)
{
	if (!disk || disk->size % VIRTIO_BLK_SECTOR_SIZE)
		return -1;
	blk->disk = disk;
	/* The capacity in the configuration changed: the driver reads it again (5.2.4). */
	virtio_config_changed(&blk->dev);
	return 0;
}

static void virtio_blk_state_reset(void *state)
{
	struct virtio_blk *blk = state;

	virtio_device_state_reset(&blk->dev);
	virtq_reset(&blk->vq);
}

static bool virtio_blk_state_check(const void *state, const void *live, const char *device,
                                   struct devstate_error *err)
{
	const struct virtio_blk *blk = state;

	(void)live;
	return virtio_device_state_check(&blk->dev, device, err);
}

static const struct devstate_field virtio_blk_fields[] = {
	VIRTIO_DEVICE_STATE_FIELDS(struct virtio_blk),
	VIRTQ_STATE_FIELDS(struct virtio_blk, vq),
};

const struct devstate_desc virtio_blk_state_desc =
	DEVSTATE_DESC(struct virtio_blk, "virtio_blk", 1, virtio_blk_fields, virtio_blk_state_reset,
		      virtio_blk_state_check);
