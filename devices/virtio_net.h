/*
 * virtio-net (virtio 1.1, 5.1): queue 0 receives, queue 1 transmits; no
 * control queue, no multiqueue, no offloads. The other end is a back end
 * (the inter-VM switch, vnet/switch.h, or a test's loopback): the device
 * hands it every frame the guest sends through a transmit callback, and
 * the back end calls virtio_net_receive for every frame for the guest.
 *
 * Every frame carries the 12-byte struct virtio_net_hdr in front (5.1.6:
 * num_buffers is there with VIRTIO_F_VERSION_1). No checksum or
 * segmentation offload is offered, so a transmit header asking for one is
 * a driver error: the frame is dropped and counted. Received frames get a
 * zero header with num_buffers 1.
 *
 * Never blocks: a frame the guest has no receive buffer for, or cannot
 * take, is dropped and counted; the back end keeps no queue here.
 * A chain that breaks the ring's rules makes the device need a reset
 * (devices/virtqueue.h).
 *
 * Work per notification: each queue serves at most VIRTIO_NET_BUDGET
 * frames per scheduler pass (virtio_net_new_pass). Transmit chains left
 * over wait in the ring for the next pass; a receive queue out of budget
 * reports it cannot receive, so the back end keeps its frames until then.
 *
 * Link changes raise a configuration change interrupt
 * (VIRTIO_INTERRUPT_CONFIG); a link that is down passes no frames either way.
 */
#ifndef DEVICES_VIRTIO_NET_H
#define DEVICES_VIRTIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/virtio.h"
#include "devices/virtqueue.h"
#include "vnet/switch.h"

/* Feature bits (5.1.3). */
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_STATUS 16

#define VIRTIO_NET_S_LINK_UP 1          /* config status (5.1.4) */
#define VIRTIO_NET_HDR_GSO_NONE 0

#define VIRTIO_NET_RXQ 0
#define VIRTIO_NET_TXQ 1

/* Configuration (5.1.4): mac[6], le16 status, le16 max_virtqueue_pairs, le16 mtu. */
#define VIRTIO_NET_CONFIG_SIZE 12

/* struct virtio_net_hdr (5.1.6). */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};

_Static_assert(sizeof(struct virtio_net_hdr) == 12, "5.1.6: 12 bytes with num_buffers");

/*
 * The longest frame either way: the switch's, an Ethernet header with one
 * 802.1Q tag and the largest MTU; a device's own limit is its MTU plus
 * the same 18 bytes.
 */
#define VIRTIO_NET_FRAME_MAX VNET_FRAME_MAX
#define VIRTIO_NET_FRAME_OVERHEAD (ETH_HLEN + ETH_VLAN_TAG_LEN)

/*
 * Budget of each queue per scheduler pass: 64 frames, 128 KiB with
 * descriptor walks charged (devices/virtqueue.h). A frame is at most
 * VIRTIO_NET_FRAME_MAX bytes, so it is the frame count that bounds a pass
 * of full-size frames and the bytes one of jumbo frames; 64 standard
 * frames are 96 KiB, a TCP window's worth of segments at a time.
 */
#define VIRTIO_NET_BUDGET_FRAMES 64
#define VIRTIO_NET_BUDGET_BYTES (128 * 1024)

/* Why a frame was dropped; each direction counts its own. */
enum virtio_net_drop {
	VIRTIO_NET_DROP_BAD_HDR,        /* tx: header short, or asks for an offload */
	VIRTIO_NET_DROP_RUNT,           /* shorter than an Ethernet header */
	VIRTIO_NET_DROP_OVERSIZE,       /* longer than MTU + VIRTIO_NET_FRAME_OVERHEAD */
	VIRTIO_NET_DROP_BACKEND,        /* tx: the back end refused it */
	VIRTIO_NET_DROP_NO_BUFFER,      /* rx: the guest posted no receive buffer */
	VIRTIO_NET_DROP_SMALL_BUFFER,   /* rx: its buffer was too small, returned empty */
	VIRTIO_NET_DROP_NOT_READY,      /* rx: driver not running, queue off or broken */
	VIRTIO_NET_DROP_LINK_DOWN,
	VIRTIO_NET_DROP_REASONS,
};

struct virtio_net_stats {
	uint64_t tx_frames;             /* handed to the back end */
	uint64_t tx_bytes;
	uint64_t rx_frames;             /* written into the guest's buffers */
	uint64_t rx_bytes;
	uint64_t tx_drops[VIRTIO_NET_DROP_REASONS];
	uint64_t rx_drops[VIRTIO_NET_DROP_REASONS];
	uint64_t resets_needed;         /* chains that made the device need a reset */
};

/*
 * The back end. transmit gets each frame the guest sends (without the
 * virtio header) and returns 0 if it took it or a negative number if not.
 * The frame is often the guest's own memory (a frame in one descriptor is
 * not copied): read each field you decide on once, and copy it out before
 * writing to any guest memory, as virtio_net_receive on this device (a
 * loopback) would. rx_ready, if set, hears that the guest posted
 * receive buffers, so a back end holding frames can deliver them now.
 */
struct virtio_net_backend {
	int (*transmit)(void *ctx, const void *frame, size_t len);
	void (*rx_ready)(void *ctx);
	void *ctx;
};

struct virtio_net {
	struct virtio_device dev;       /* dev.ctx points back here */
	struct virtq vq[2];             /* VIRTIO_NET_RXQ, VIRTIO_NET_TXQ */
	uint8_t mac[ETH_ALEN];
	uint16_t mtu;
	bool link_up;
	struct virtio_net_backend backend;
	struct virtio_net_stats stats;
};

/*
 * Device state (devstate.h): the transport-owned fields of dev and both
 * queues' indices (virtqueue.h). Left out: mac and mtu (the VM's
 * configuration), link_up (follows the host's switch port), the back end,
 * the statistics and the queues' budgets.
 */
extern const struct devstate_desc virtio_net_state_desc;

/*
 * Sets up net over guest RAM mem with address mac and an MTU of
 * VNET_MTU_MIN..VNET_MTU_MAX, link up. Returns 0, or -1 for a bad MTU or
 * a missing transmit callback.
 */
int virtio_net_init(struct virtio_net *net, struct guest_memory mem, const uint8_t *mac,
		    uint16_t mtu, const struct virtio_net_backend *backend);

/*
 * A frame from the back end for the guest, copied into the next receive
 * buffer. Returns 0, or -1 if it was dropped (counted by reason).
 */
int virtio_net_receive(struct virtio_net *net, const void *frame, size_t len);

/* Link state as the guest sees it (config status, with a configuration change interrupt). */
void virtio_net_set_link(struct virtio_net *net, bool up);

/*
 * True when virtio_net_receive would find a receive buffer and the receive
 * queue has budget left in this pass: the back end leaves frames queued on
 * its side rather than have them dropped.
 */
bool virtio_net_can_receive(const struct virtio_net *net);

/*
 * Once per scheduler pass: both queues get their budget back and the
 * transmit chains a notification left waiting are sent, with the used ring
 * update and the interrupt as after a notification. Returns whether some
 * still wait.
 */
bool virtio_net_new_pass(struct virtio_net *net);

#endif
