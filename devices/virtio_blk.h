/*
 * virtio-blk (virtio 1.1, 5.2): one request queue in front of a disk that
 * lives in host memory (the boot loader read the image from the boot
 * volume). Requests: IN, OUT, FLUSH and GET_ID; anything else is answered
 * VIRTIO_BLK_S_UNSUPP.
 *
 * The disk is RAM (devices/disk.h: the VM's copy-on-write overlay over
 * the pristine library file): a write is on the "disk" as soon as it
 * completes, FLUSH completes at once, and nothing written survives a
 * reboot of the host.
 *
 * Errors. A request the device can answer but not carry out (short
 * header, data not whole sectors, past the end of the disk, write to a
 * read-only disk, no host memory for the copies of the chunks it writes)
 * completes with VIRTIO_BLK_S_IOERR and is counted. A chain with no device-writable byte for the status cannot be answered at
 * all, so, like a chain that breaks the ring's rules (devices/virtqueue.h),
 * it makes the device set NEEDS_RESET.
 *
 * Work per notification. A request moves at most VIRTIO_BLK_MAX_DATA
 * bytes: the device offers size_max and seg_max so that a driver never
 * builds a larger one, and answers a larger one IOERR without copying.
 * The queue serves requests while its budget (VIRTIO_BLK_BUDGET) lasts
 * and leaves the rest in the ring for the next scheduler pass
 * (virtio_blk_new_pass), so one notification copies at most a budget plus
 * one request, however large the disk and however many ring entries name
 * the same chain.
 */
#ifndef DEVICES_VIRTIO_BLK_H
#define DEVICES_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/disk.h"
#include "devices/virtio.h"
#include "devices/virtqueue.h"

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9

/* Request types and status values (5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_SECTOR_SIZE 512
#define VIRTIO_BLK_ID_BYTES 20          /* GET_ID answer, NUL-padded */
#define VIRTIO_BLK_REQ_HDR 16           /* le32 type, le32 reserved, le64 sector */
/*
 * Configuration fields offered (5.2.4): capacity, size_max, seg_max,
 * geometry (not offered, 0), blk_size.
 */
#define VIRTIO_BLK_CONFIG_SIZE 24
/*
 * size_max and seg_max: the largest data segment and the most of them a
 * request may have besides its header and status, so the largest request
 * a driver builds is VIRTIO_BLK_MAX_DATA. 4 KiB is the least segment size
 * Linux takes (a page); 16 of them make 64 KiB, a request Linux's own
 * readahead issues and one budget (below) copies.
 */
#define VIRTIO_BLK_SIZE_MAX 4096
#define VIRTIO_BLK_SEG_MAX 16
#define VIRTIO_BLK_MAX_DATA ((uint64_t)VIRTIO_BLK_SEG_MAX * VIRTIO_BLK_SIZE_MAX)
/*
 * The queue's budget per scheduler pass: 64 KiB, with descriptor walks
 * charged, so a notification copies at most about two largest requests:
 * some 10 microseconds of memcpy on a server, and under 1 ms even in
 * Bochs, whose clock advances one tick (5 ns) per byte rep movsb copies.
 * 32 requests: a full ring of small requests in eight passes.
 */
#define VIRTIO_BLK_BUDGET_REQUESTS 32
#define VIRTIO_BLK_BUDGET_BYTES (64 * 1024)

struct virtio_blk_stats {
	uint64_t reads;                 /* IN requests completed OK */
	uint64_t writes;                /* OUT requests completed OK */
	uint64_t flushes;
	uint64_t read_bytes;
	uint64_t written_bytes;
	uint64_t errors;                /* answered IOERR */
	uint64_t too_large;             /* of them: more data than VIRTIO_BLK_MAX_DATA */
	uint64_t unsupported;           /* answered UNSUPP */
	uint64_t resets_needed;         /* chains that made the device need a reset */
};

struct virtio_blk {
	struct virtio_device dev;       /* dev.ctx points back here */
	struct virtq vq;
	struct disk *disk;              /* size a multiple of VIRTIO_BLK_SECTOR_SIZE */
	bool read_only;
	char serial[VIRTIO_BLK_ID_BYTES];
	struct virtio_blk_stats stats;
};

/*
 * Device state (devstate.h): the transport-owned fields of dev and the
 * queue's indices (virtqueue.h). Left out: the disk, read_only and serial
 * (the VM's configuration), the statistics (the host's counters) and the
 * queue's budget (the scheduler's).
 */
extern const struct devstate_desc virtio_blk_state_desc;

/*
 * Sets up blk over guest RAM mem and disk (its size a non-zero multiple
 * of 512), with serial as the GET_ID answer (at most 20 bytes are kept).
 * Returns 0, or -1 for a bad disk size.
 */
int virtio_blk_init(struct virtio_blk *blk, struct guest_memory mem, struct disk *disk,
		    bool read_only, const char *serial);

/*
 * Once per scheduler pass: the queue's budget comes back and the requests
 * a notification left waiting are served, with the used ring update and
 * the interrupt as after a notification. Returns whether some still wait.
 */
bool virtio_blk_new_pass(struct virtio_blk *blk);

/*
 * A medium put in (or taken out: a disk of size 0, which every request
 * finds too small), like a CD in a drive: the driver is told through a
 * configuration change and reads the new capacity.
 */
int virtio_blk_change_medium(struct virtio_blk *blk, struct disk *disk);

#endif
