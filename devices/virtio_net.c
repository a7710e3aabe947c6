#include "devices/virtio_net.h"

#include <string.h>

/*
 * Scratch of the request in progress, not device state: one physical CPU
 * runs every device model, one request at a time, so all adapters share
 * them rather than each VM paying 17 KiB per adapter. One chain per queue,
 * as a loopback back end receives while a transmit is in progress.
 */
static struct virtq_chain chain[2];
static uint8_t tx_frame[VIRTIO_NET_FRAME_MAX];

/* Byte offsets in the configuration (5.1.4). */
#define CFG_MAC 0
#define CFG_STATUS 6
#define CFG_MAX_PAIRS 8
#define CFG_MTU 10

#define HDR_LEN sizeof(struct virtio_net_hdr)

static const struct virtq_budget budget = { VIRTIO_NET_BUDGET_FRAMES, VIRTIO_NET_BUDGET_BYTES };

static uint32_t net_config_read(struct virtio_device *dev, uint32_t offset, unsigned size)
{
	const struct virtio_net *net = dev->ctx;
	uint8_t img[VIRTIO_NET_CONFIG_SIZE] = { 0 };
	uint16_t status = net->link_up ? VIRTIO_NET_S_LINK_UP : 0, pairs = 1;

	memcpy(img + CFG_MAC, net->mac, ETH_ALEN);
	memcpy(img + CFG_STATUS, &status, sizeof(status));
	memcpy(img + CFG_MAX_PAIRS, &pairs, sizeof(pairs));
	memcpy(img + CFG_MTU, &net->mtu, sizeof(net->mtu));
	return virtio_config_image_read(img, sizeof(img), offset, size);
}

static void net_reset(struct virtio_device *dev)
{
	struct virtio_net *net = dev->ctx;

	virtq_reset(&net->vq[VIRTIO_NET_RXQ]);
	virtq_reset(&net->vq[VIRTIO_NET_TXQ]);
}

static int drop(uint64_t *drops, enum virtio_net_drop why)
{
	drops[why]++;
	return -1;
}

/* The device's frame limits, either way. */
static bool oversize(const struct virtio_net *net, uint64_t len)
{
	return len > (uint64_t)net->mtu + VIRTIO_NET_FRAME_OVERHEAD;
}

/*
 * Sends the frame of one transmit chain to the back end, or drops it.
 * Returns the frame's bytes, 0 when it was dropped before any was copied.
 */
static uint64_t transmit(struct virtio_net *net, const struct virtq_chain *c)
{
	struct virtio_net_hdr h;
	uint64_t len;

	if (!net->link_up) {
		drop(net->stats.tx_drops, VIRTIO_NET_DROP_LINK_DOWN);
		return 0;
	}
	/* 5.1.6.2.1: with no offload negotiated, flags and gso_type must be 0. */
	if (virtq_gather(&net->dev.mem, c, 0, &h, HDR_LEN) < HDR_LEN || h.flags ||
	    h.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
		drop(net->stats.tx_drops, VIRTIO_NET_DROP_BAD_HDR);
		return 0;
	}
	len = c->readable_len - HDR_LEN;
	if (len < ETH_HLEN) {
		drop(net->stats.tx_drops, VIRTIO_NET_DROP_RUNT);
		return 0;
	}
	if (oversize(net, len)) {
		drop(net->stats.tx_drops, VIRTIO_NET_DROP_OVERSIZE);
		return 0;
	}
	/*
	 * A frame in one descriptor goes to the back end where it lies, so the
	 * switch copies it once, straight into the receivers' rings (the
	 * switch reads each header field it decides on once: vnet/switch.h).
	 * A scattered one is gathered first.
	 */
	const uint8_t *frame = virtq_readable_span(&net->dev.mem, c, HDR_LEN, len);
	if (!frame) {
		virtq_gather(&net->dev.mem, c, HDR_LEN, tx_frame, len);
		frame = tx_frame;
	}
	/* Copied by the back end or into tx_frame either way: it counts. */
	if (net->backend.transmit(net->backend.ctx, frame, len) < 0) {
		drop(net->stats.tx_drops, VIRTIO_NET_DROP_BACKEND);
		return len;
	}
	net->stats.tx_frames++;
	net->stats.tx_bytes += len;
	return len;
}

/* One transmit chain (virtq_serve_fn). */
static int64_t serve_tx(void *ctx, const struct virtq_chain *c)
{
	struct virtio_net *net = ctx;
	uint64_t moved = transmit(net, c);

	/* Transmit buffers are device-readable: nothing written (5.1.6.2). */
	virtq_push(&net->dev, VIRTIO_NET_TXQ, &net->vq[VIRTIO_NET_TXQ], c->head, 0);
	return (int64_t)moved;
}

static void transmit_all(struct virtio_net *net)
{
	virtq_process(&net->dev, VIRTIO_NET_TXQ, &net->vq[VIRTIO_NET_TXQ], &chain[VIRTIO_NET_TXQ],
		      serve_tx, net, &net->stats.resets_needed);
}

bool virtio_net_new_pass(struct virtio_net *net)
{
	virtq_new_pass(&net->vq[VIRTIO_NET_RXQ], &budget);
	if (virtq_new_pass(&net->vq[VIRTIO_NET_TXQ], &budget))
		transmit_all(net);
	return net->vq[VIRTIO_NET_TXQ].pending;
}

static void net_queue_notify(struct virtio_device *dev, unsigned queue)
{
	struct virtio_net *net = dev->ctx;

	if (queue == VIRTIO_NET_TXQ)
		transmit_all(net);
	else if (net->backend.rx_ready)
		net->backend.rx_ready(net->backend.ctx);
}

int virtio_net_receive(struct virtio_net *net, const void *frame, size_t len)
{
	struct virtq *vq = &net->vq[VIRTIO_NET_RXQ];
	struct virtq_chain *c = &chain[VIRTIO_NET_RXQ];
	/* 5.1.6.4.1: no offloads; num_buffers 1 without VIRTIO_NET_F_MRG_RXBUF. */
	struct virtio_net_hdr h = { .gso_type = VIRTIO_NET_HDR_GSO_NONE, .num_buffers = 1 };
	uint32_t written = 0;

	if (!net->link_up)
		return drop(net->stats.rx_drops, VIRTIO_NET_DROP_LINK_DOWN);
	if (len < ETH_HLEN)
		return drop(net->stats.rx_drops, VIRTIO_NET_DROP_RUNT);
	if (oversize(net, len))
		return drop(net->stats.rx_drops, VIRTIO_NET_DROP_OVERSIZE);
	switch (virtq_pop(&net->dev, VIRTIO_NET_RXQ, vq, c)) {
	case VIRTQ_CHAIN:
		break;
	case VIRTQ_EMPTY:
		return drop(net->stats.rx_drops, VIRTIO_NET_DROP_NO_BUFFER);
	case VIRTQ_MALFORMED:
		net->stats.resets_needed++;
		/* fall through */
	default:
		return drop(net->stats.rx_drops, VIRTIO_NET_DROP_NOT_READY);
	}
	/*
	 * 5.1.6.3.1 asks the driver for buffers that hold the largest frame.
	 * One that does not is given back empty rather than kept: drivers
	 * take a used length shorter than a header as an error and repost.
	 */
	if (c->writable_len >= HDR_LEN + len) {
		virtq_scatter(&net->dev.mem, c, 0, &h, HDR_LEN);
		virtq_scatter(&net->dev.mem, c, HDR_LEN, frame, len);
		written = (uint32_t)(HDR_LEN + len);
	}
	virtq_push(&net->dev, VIRTIO_NET_RXQ, vq, c->head, written);
	virtq_charge(vq, c, written);
	virtq_interrupt(&net->dev, VIRTIO_NET_RXQ, vq);
	if (!written)
		return drop(net->stats.rx_drops, VIRTIO_NET_DROP_SMALL_BUFFER);
	net->stats.rx_frames++;
	net->stats.rx_bytes += len;
	return 0;
}

bool virtio_net_can_receive(const struct virtio_net *net)
{
	const struct virtq_config *q = &net->dev.queues[VIRTIO_NET_RXQ];
	const struct virtq *vq = &net->vq[VIRTIO_NET_RXQ];
	uint16_t avail_idx;

	if (!net->link_up || !virtio_device_ready(&net->dev) || !q->enabled || vq->broken ||
	    !virtq_budget_left(vq))
		return false;
	/* avail->idx, the ring's second 16-bit field (2.6.6); the transport bounded the ring. */
	const uint8_t *avail = guest_memory_at(&net->dev.mem, q->driver, 4);
	if (!avail)
		return false;
	memcpy(&avail_idx, avail + 2, sizeof(avail_idx));
	return avail_idx != vq->last_avail;
}

void virtio_net_set_link(struct virtio_net *net, bool up)
{
	if (net->link_up == up)
		return;
	net->link_up = up;
	virtio_config_changed(&net->dev);
}

static const struct virtio_device_ops net_ops = {
	.config_read = net_config_read,
	/* 5.1.4.2: a modern driver does not write the configuration. */
	.config_write = virtio_config_write_ignored,
	.queue_notify = net_queue_notify,
	.reset = net_reset,
};

int virtio_net_init(struct virtio_net *net, struct guest_memory mem, const uint8_t *mac,
		    uint16_t mtu, const struct virtio_net_backend *backend)
{
	if (mtu < VNET_MTU_MIN || mtu > VNET_MTU_MAX || !mac || !backend || !backend->transmit)
		return -1;
	memset(net, 0, sizeof(*net));
	net->dev.device_id = VIRTIO_ID_NET;
	net->dev.device_features = 1ULL << VIRTIO_F_VERSION_1 |
				   1ULL << VIRTIO_RING_F_INDIRECT_DESC | 1ULL << VIRTIO_RING_F_EVENT_IDX |
				   1ULL << VIRTIO_NET_F_MTU |
				   1ULL << VIRTIO_NET_F_MAC | 1ULL << VIRTIO_NET_F_STATUS;
	net->dev.num_queues = 2;
	net->dev.queue_max_size = VIRTQ_MAX_SIZE;
	net->dev.config_size = VIRTIO_NET_CONFIG_SIZE;
	net->dev.ops = &net_ops;
	net->dev.ctx = net;
	net->dev.mem = mem;
	memcpy(net->mac, mac, ETH_ALEN);
	net->mtu = mtu;
	net->link_up = true;
	net->backend = *backend;
	virtq_new_pass(&net->vq[VIRTIO_NET_RXQ], &budget);
	virtq_new_pass(&net->vq[VIRTIO_NET_TXQ], &budget);
	return 0;
}

static void virtio_net_state_reset(void *state)
{
	struct virtio_net *net = state;

	virtio_device_state_reset(&net->dev);
	net_reset(&net->dev);
}

static bool virtio_net_state_check(const void *state, const void *live, const char *device,
                                   struct devstate_error *err)
{
	const struct virtio_net *net = state;

	(void)live;
	return virtio_device_state_check(&net->dev, device, err);
}

static const struct devstate_field virtio_net_fields[] = {
	VIRTIO_DEVICE_STATE_FIELDS(struct virtio_net),
	VIRTQ_STATE_FIELDS(struct virtio_net, vq[VIRTIO_NET_RXQ]),
	VIRTQ_STATE_FIELDS(struct virtio_net, vq[VIRTIO_NET_TXQ]),
};

const struct devstate_desc virtio_net_state_desc =
	DEVSTATE_DESC(struct virtio_net, "virtio_net", 1, virtio_net_fields, virtio_net_state_reset,
		      virtio_net_state_check);
