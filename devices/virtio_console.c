#include "devices/virtio_console.h"

#include <string.h>

/* Scratch of the chain in hand, not state: one CPU runs every device model. */
static struct virtq_chain chain;

static const struct virtq_budget budget = { VIRTIO_CONSOLE_BUDGET_CHAINS,
					    VIRTIO_CONSOLE_BUDGET_BYTES };

struct control_msg {
	uint32_t id;
	uint16_t event;
	uint16_t value;
};
_Static_assert(sizeof(struct control_msg) == VIRTIO_CONSOLE_CONTROL_SIZE, "virtio 5.3.6.2");

static uint32_t console_config_read(struct virtio_device *dev, uint32_t offset, unsigned size)
{
	/* cols, rows (no VIRTIO_CONSOLE_F_SIZE: unused), max_nr_ports, emerg_wr. */
	uint8_t img[VIRTIO_CONSOLE_CONFIG_SIZE] = { 0 };
	const uint32_t ports = 1;

	(void)dev;
	memcpy(img + 4, &ports, sizeof(ports));
	return virtio_config_image_read(img, sizeof(img), offset, size);
}

static void tell_host(struct virtio_console *con)
{
	if (con->host.notify)
		con->host.notify(con->host.ctx);
}

enum sent { SENT, NO_BUFFER, BUFFER_TOO_SMALL };

/* One owed message into the next control receive buffer. */
static enum sent send_control(struct virtio_console *con, uint16_t event, uint16_t value,
			      const char *extra)
{
	struct virtq *vq = &con->vq[VIRTIO_CONSOLE_CTRL_RXQ];
	const struct control_msg m = { 0, event, value };
	size_t extra_len = extra ? strlen(extra) : 0;
	uint32_t written = 0;

	switch (virtq_pop(&con->dev, VIRTIO_CONSOLE_CTRL_RXQ, vq, &chain)) {
	case VIRTQ_CHAIN:
		break;
	case VIRTQ_MALFORMED:
		con->stats.resets_needed++;
		return NO_BUFFER;
	default:
		return NO_BUFFER;
	}
	/*
	 * A buffer too small for the message comes back empty, as virtio-net
	 * does; the message stays owed for the next one.
	 */
	if (chain.writable_len >= sizeof(m) + extra_len) {
		virtq_scatter(&con->dev.mem, &chain, 0, &m, sizeof(m));
		if (extra_len)
			virtq_scatter(&con->dev.mem, &chain, sizeof(m), extra, extra_len);
		written = (uint32_t)(sizeof(m) + extra_len);
	}
	virtq_push(&con->dev, VIRTIO_CONSOLE_CTRL_RXQ, vq, chain.head, written);
	virtq_interrupt(&con->dev, VIRTIO_CONSOLE_CTRL_RXQ, vq);
	return written ? SENT : BUFFER_TOO_SMALL;
}

/*
 * The port's announcement in the order a driver expects (5.3.6.2.2 and
 * Linux's virtio_console): DEVICE_ADD, then, once the driver says the
 * port is ready, its name and that the host side is open.
 */
static void send_due(struct virtio_console *con)
{
	static const struct {
		uint8_t bit;
		uint16_t event;
		const char *name;
	} order[] = {
		{ VIRTIO_CONSOLE_DUE_ADD, VIRTIO_CONSOLE_DEVICE_ADD, NULL },
		{ VIRTIO_CONSOLE_DUE_NAME, VIRTIO_CONSOLE_PORT_NAME, VIRTIO_CONSOLE_AGENT_PORT_NAME },
		{ VIRTIO_CONSOLE_DUE_OPEN, VIRTIO_CONSOLE_PORT_OPEN, NULL },
	};

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (!(con->control_due & order[i].bit))
			continue;
		enum sent r;
		/* A buffer too small is used up: the ring runs empty, so this ends. */
		while ((r = send_control(con, order[i].event, 1, order[i].name)) == BUFFER_TOO_SMALL)
			;
		if (r == NO_BUFFER)
			return;
		con->control_due &= (uint8_t)~order[i].bit;
	}
}

/* One message from the driver (virtq_serve_fn). */
static int64_t serve_control(void *ctx, const struct virtq_chain *c)
{
	struct virtio_console *con = ctx;
	struct control_msg m;

	size_t got = virtq_gather(&con->dev.mem, c, 0, &m, sizeof(m));

	/* Read, then given back: the driver may reuse the buffer at once. */
	virtq_push(&con->dev, VIRTIO_CONSOLE_CTRL_TXQ, &con->vq[VIRTIO_CONSOLE_CTRL_TXQ], c->head, 0);
	if (got < sizeof(m)) {
		con->stats.bad_control++;
		return 0;
	}
	if (m.event == VIRTIO_CONSOLE_DEVICE_READY) {
		/* 0: the driver failed to set itself up; it gets nothing more. */
		con->driver_ready = m.value == 1;
		if (con->driver_ready)
			con->control_due |= VIRTIO_CONSOLE_DUE_ADD;
		return sizeof(m);
	}
	if (m.id != 0) {
		con->stats.bad_control++;
		return sizeof(m);
	}
	switch (m.event) {
	case VIRTIO_CONSOLE_PORT_READY:
		con->port_ready = m.value == 1;
		if (con->port_ready)
			con->control_due |= VIRTIO_CONSOLE_DUE_NAME | VIRTIO_CONSOLE_DUE_OPEN;
		break;
	case VIRTIO_CONSOLE_PORT_OPEN:
		con->guest_open = m.value == 1;
		tell_host(con);
		break;
	default:
		/* RESIZE and the device-to-driver events mean nothing coming this way. */
		con->stats.bad_control++;
		break;
	}
	return sizeof(m);
}

static void serve_controls(struct virtio_console *con)
{
	virtq_process(&con->dev, VIRTIO_CONSOLE_CTRL_TXQ, &con->vq[VIRTIO_CONSOLE_CTRL_TXQ], &chain,
		      serve_control, con, &con->stats.resets_needed);
	send_due(con);
}

static void console_queue_notify(struct virtio_device *dev, unsigned queue)
{
	struct virtio_console *con = dev->ctx;

	switch (queue) {
	case VIRTIO_CONSOLE_CTRL_TXQ:
		serve_controls(con);
		break;
	case VIRTIO_CONSOLE_CTRL_RXQ:
		send_due(con);
		break;
	default:
		/* Data to read or room to write: the management VM moves it. */
		tell_host(con);
		break;
	}
}

static void console_reset(struct virtio_device *dev)
{
	struct virtio_console *con = dev->ctx;

	for (unsigned q = 0; q < VIRTIO_CONSOLE_QUEUES; q++)
		virtq_reset(&con->vq[q]);
	con->driver_ready = con->port_ready = con->guest_open = false;
	con->control_due = 0;
}

size_t virtio_console_take(struct virtio_console *con, uint8_t *out, size_t cap)
{
	struct virtq *vq = &con->vq[VIRTIO_CONSOLE_TXQ];
	size_t n = 0;

	for (;;) {
		enum virtq_pop_result r = virtq_pop(&con->dev, VIRTIO_CONSOLE_TXQ, vq, &chain);
		if (r == VIRTQ_MALFORMED)
			con->stats.resets_needed++;
		if (r != VIRTQ_CHAIN)
			break;
		if (chain.readable_len > cap - n) {
			if (chain.readable_len <= VIRTIO_CONSOLE_WRITE_MAX) {
				/* A later read with room takes it whole. */
				virtq_unpop(vq);
				break;
			}
			/* Larger than any read may be: it could never be taken. */
			con->stats.oversize++;
		} else {
			n += virtq_gather(&con->dev.mem, &chain, 0, out + n, chain.readable_len);
		}
		virtq_push(&con->dev, VIRTIO_CONSOLE_TXQ, vq, chain.head, 0);
	}
	con->stats.to_host_bytes += n;
	/* The driver reclaims its buffers and wakes a writer waiting for room. */
	virtq_interrupt(&con->dev, VIRTIO_CONSOLE_TXQ, vq);
	return n;
}

size_t virtio_console_give(struct virtio_console *con, const uint8_t *in, size_t len)
{
	struct virtq *vq = &con->vq[VIRTIO_CONSOLE_RXQ];
	size_t n = 0;

	while (n < len && con->guest_open) {
		enum virtq_pop_result r = virtq_pop(&con->dev, VIRTIO_CONSOLE_RXQ, vq, &chain);
		if (r == VIRTQ_MALFORMED)
			con->stats.resets_needed++;
		if (r != VIRTQ_CHAIN)
			break;
		size_t part = len - n < chain.writable_len ? len - n : (size_t)chain.writable_len;
		part = virtq_scatter(&con->dev.mem, &chain, 0, in + n, part);
		virtq_push(&con->dev, VIRTIO_CONSOLE_RXQ, vq, chain.head, (uint32_t)part);
		n += part;
	}
	con->stats.to_guest_bytes += n;
	virtq_interrupt(&con->dev, VIRTIO_CONSOLE_RXQ, vq);
	return n;
}

void virtio_console_new_pass(struct virtio_console *con)
{
	for (unsigned q = 0; q < VIRTIO_CONSOLE_QUEUES; q++)
		if (virtq_new_pass(&con->vq[q], &budget) && q == VIRTIO_CONSOLE_CTRL_TXQ)
			serve_controls(con);
	send_due(con);
}

static const struct virtio_device_ops console_ops = {
	.config_read = console_config_read,
	/* emerg_wr is offered only with VIRTIO_CONSOLE_F_EMERG_WRITE, which this device is not. */
	.config_write = virtio_config_write_ignored,
	.queue_notify = console_queue_notify,
	.reset = console_reset,
};

void virtio_console_init(struct virtio_console *con, struct guest_memory mem,
			 const struct virtio_console_host *host)
{
	memset(con, 0, sizeof(*con));
	con->dev.device_id = VIRTIO_ID_CONSOLE;
	con->dev.device_features = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_RING_F_INDIRECT_DESC |
				   1ULL << VIRTIO_RING_F_EVENT_IDX |
				   1ULL << VIRTIO_CONSOLE_F_MULTIPORT;
	con->dev.num_queues = VIRTIO_CONSOLE_QUEUES;
	con->dev.queue_max_size = VIRTQ_MAX_SIZE;
	con->dev.config_size = VIRTIO_CONSOLE_CONFIG_SIZE;
	con->dev.ops = &console_ops;
	con->dev.ctx = con;
	con->dev.mem = mem;
	if (host)
		con->host = *host;
	for (unsigned q = 0; q < VIRTIO_CONSOLE_QUEUES; q++)
		virtq_new_pass(&con->vq[q], &budget);
}

static void virtio_console_state_reset(void *state)
{
	struct virtio_console *con = state;

	virtio_device_state_reset(&con->dev);
	console_reset(&con->dev);
}

static bool virtio_console_state_check(const void *state, const void *live, const char *device,
				       struct devstate_error *err)
{
	const struct virtio_console *con = state;

	(void)live;
	return virtio_device_state_check(&con->dev, device, err);
}

static const struct devstate_field virtio_console_fields[] = {
	VIRTIO_DEVICE_STATE_FIELDS(struct virtio_console),
	VIRTQ_STATE_FIELDS(struct virtio_console, vq[VIRTIO_CONSOLE_RXQ]),
	VIRTQ_STATE_FIELDS(struct virtio_console, vq[VIRTIO_CONSOLE_TXQ]),
	VIRTQ_STATE_FIELDS(struct virtio_console, vq[VIRTIO_CONSOLE_CTRL_RXQ]),
	VIRTQ_STATE_FIELDS(struct virtio_console, vq[VIRTIO_CONSOLE_CTRL_TXQ]),
	DEVSTATE_FIELD(struct virtio_console, driver_ready, DEVSTATE_BOOL, 0, 1, 1),
	DEVSTATE_FIELD(struct virtio_console, port_ready, DEVSTATE_BOOL, 0, 1, 1),
	DEVSTATE_FIELD(struct virtio_console, guest_open, DEVSTATE_BOOL, 0, 1, 1),
	DEVSTATE_FIELD(struct virtio_console, control_due, DEVSTATE_U8, 0,
		       VIRTIO_CONSOLE_DUE_ADD | VIRTIO_CONSOLE_DUE_NAME | VIRTIO_CONSOLE_DUE_OPEN, 1),
};

const struct devstate_desc virtio_console_state_desc =
	DEVSTATE_DESC(struct virtio_console, "virtio_console", 1, virtio_console_fields,
		      virtio_console_state_reset, virtio_console_state_check);
