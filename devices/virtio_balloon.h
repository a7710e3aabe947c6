/*
 * virtio-balloon with free page reporting only (virtio 1.2, 5.5;
 * VIRTIO_BALLOON_F_REPORTING, 5.5.6.5): the guest tells the hypervisor
 * which of its pages are free, and the hypervisor zeroes them. Free
 * memory a guest never cleared (a freed initramfs, a kernel's compressed
 * image) is then zero pages, which a save file holds in no space
 * (docs/savefile.md), so Save of an idle guest writes what it uses, not
 * what it once touched.
 *
 * The balloon itself never inflates: num_pages stays 0. Its two queues
 * exist because the driver always sets them up; chains posted there come
 * back unused. With REPORTING the only other feature, the reporting queue
 * is the third (5.5.2: queues follow the features offered).
 *
 * A reported chain holds up to 32 runs of free pages (Linux: 2 MiB or
 * more each). Zeroing one at once would stall the CPU for every VM, so a
 * scheduler pass zeroes at most VIRTIO_BALLOON_ZERO_PER_PASS bytes: a
 * chain larger than that is given back unanswered (virtq_unpop) with the
 * bytes done noted, and taken again next pass. The guest's reporting
 * thread waits for it meanwhile, the pages stay off its free lists, so
 * zeroing them late, or twice after a Save in the middle, is harmless.
 * The bytes done are state; a driver that changes the chain meanwhile
 * only has other pages of its own zeroed.
 */
#ifndef DEVICES_VIRTIO_BALLOON_H
#define DEVICES_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio.h"
#include "devices/virtqueue.h"

#define VIRTIO_ID_BALLOON 5
#define VIRTIO_BALLOON_F_REPORTING 5

#define VIRTIO_BALLOON_INFLATEQ 0
#define VIRTIO_BALLOON_DEFLATEQ 1
#define VIRTIO_BALLOON_REPORTQ 2
#define VIRTIO_BALLOON_QUEUES 3

/* num_pages, actual (5.5.4); the rest of the layout goes with features not offered. */
#define VIRTIO_BALLOON_CONFIG_SIZE 8

/* 4 MiB a pass: about what the host's memset clears in a millisecond. */
#define VIRTIO_BALLOON_ZERO_PER_PASS (4u << 20)

struct virtio_balloon_stats {
	uint64_t reports;       /* chains answered */
	uint64_t zeroed_bytes;  /* reported free bytes cleared */
	uint64_t resets_needed;
};

struct virtio_balloon {
	struct virtio_device dev;
	struct virtq vq[VIRTIO_BALLOON_QUEUES];
	uint32_t actual;        /* the driver's `actual`, as it wrote it */
	uint64_t report_done;   /* bytes of the next reported chain already zeroed */
	uint64_t zero_left;     /* of this pass's VIRTIO_BALLOON_ZERO_PER_PASS: not state */
	struct virtio_balloon_stats stats;
};

extern const struct devstate_desc virtio_balloon_state_desc;

void virtio_balloon_init(struct virtio_balloon *b, struct guest_memory mem);

/* Once per scheduler pass: zeroing goes on where the last pass stopped. */
void virtio_balloon_new_pass(struct virtio_balloon *b);

#endif
