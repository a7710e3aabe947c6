/*
 * virtio-balloon with free page reporting only (virtio 1.2, 5.5;
 * VIRTIO_BALLOON_F_REPORTING, 5.5.6.5): the guest tells the hypervisor
 * which of its pages are free, and the hypervisor clears them: to zero,
 * or to the driver's poison_val when it gave one (VIRTIO_BALLOON_F_PAGE_POISON,
 * 5.5.6.4: the device must not leave any other content). Free memory a
 * guest never cleared (a freed initramfs, a kernel's compressed image) is
 * then zero pages, which a save file holds in no space, or pages of one
 * repeated word, which its compressor shrinks to a few bytes
 * (docs/savefile.md): Save of an idle guest writes what it uses, not what
 * it once touched.
 *
 * PAGE_POISON is offered because Linux turns reporting off without it
 * when the guest poisons or clears its free pages (page_poison=1,
 * init_on_free=1): it then tells the value, 0 for init_on_free, 0xaa bytes
 * for poisoning. Otherwise it declines the feature and poison_val stays 0.
 *
 * The balloon itself never inflates: num_pages stays 0. Its two queues
 * exist because the driver always sets them up; chains posted there come
 * back unused. The reporting queue is the third: the spec numbers it 4
 * (5.5.2), after the statistics and free page hinting queues, but a
 * driver sets up only the queues of features negotiated, one after the
 * other (Linux's virtio_find_vqs, as QEMU expects), and neither of those
 * is offered.
 *
 * Linux reports from a zone only while it holds its low watermark plus
 * 32 blocks of the reporting order free (2-MiB blocks by default: 64 MiB),
 * so a small guest reports nothing unless it lowers the order: 5 (128-KiB
 * blocks, 4 MiB) into /sys/module/page_reporting/parameters/page_reporting_order
 * once the driver is loaded (Linux 6.1 sets it when the balloon
 * registers, over page_reporting.page_reporting_order= on the command
 * line).
 *
 * A reported chain holds up to 32 runs of free pages (Linux: 2 MiB or
 * more each). Clearing one at once would stall the CPU for every VM, so a
 * scheduler pass takes at most VIRTIO_BALLOON_CHAINS_PER_PASS chains and
 * clears at most VIRTIO_BALLOON_CLEAR_PER_PASS bytes, as virtio-blk and
 * virtio-net bound their work per pass: a
 * chain larger than that is given back unanswered (virtq_unpop) with the
 * bytes done noted, and taken again next pass. The guest's reporting
 * thread waits for it meanwhile, the pages stay off its free lists, so
 * clearing them late, or twice after a Save in the middle, is harmless.
 * The bytes done are state; a driver that changes the chain meanwhile
 * only has other pages of its own cleared.
 */
#ifndef DEVICES_VIRTIO_BALLOON_H
#define DEVICES_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio.h"
#include "devices/virtqueue.h"

#define VIRTIO_ID_BALLOON 5
#define VIRTIO_BALLOON_F_PAGE_POISON 4
#define VIRTIO_BALLOON_F_REPORTING 5

#define VIRTIO_BALLOON_INFLATEQ 0
#define VIRTIO_BALLOON_DEFLATEQ 1
#define VIRTIO_BALLOON_REPORTQ 2
#define VIRTIO_BALLOON_QUEUES 3

/* num_pages, actual, free_page_hint_cmd_id (unused: no FREE_PAGE_HINT), poison_val (5.5.4). */
#define VIRTIO_BALLOON_CONFIG_SIZE 16
#define VIRTIO_BALLOON_CONFIG_ACTUAL 4
#define VIRTIO_BALLOON_CONFIG_POISON 12

/* 256 KiB a pass, about what virtio-net may move in one; a few chains (empty ones count). */
#define VIRTIO_BALLOON_CLEAR_PER_PASS (256u << 10)
#define VIRTIO_BALLOON_CHAINS_PER_PASS 8

struct virtio_balloon_stats {
	uint64_t reports;       /* chains answered */
	uint64_t cleared_bytes; /* reported free bytes cleared */
	uint64_t resets_needed;
};

struct virtio_balloon {
	struct virtio_device dev;
	struct virtq vq[VIRTIO_BALLOON_QUEUES];
	uint32_t actual;        /* the driver's `actual`, as it wrote it */
	uint32_t poison_val;    /* what reported pages are filled with, little-endian */
	uint64_t report_done;   /* bytes of the next reported chain already cleared */
	uint64_t clear_left;    /* of this pass's VIRTIO_BALLOON_CLEAR_PER_PASS: not state */
	unsigned chains_left;   /* of its VIRTIO_BALLOON_CHAINS_PER_PASS: not state */
	struct virtio_balloon_stats stats;
};

extern const struct devstate_desc virtio_balloon_state_desc;

void virtio_balloon_init(struct virtio_balloon *b, struct guest_memory mem);

/* Once per scheduler pass: clearing goes on where the last pass stopped. */
void virtio_balloon_new_pass(struct virtio_balloon *b);

#endif
