/*
 * virtio-console with the multiport feature (virtio 1.1, 5.3): one named
 * port, `org.qemu.guest_agent.0`, the channel of the guest agent (the
 * stock qemu-guest-agent or the project's own, docs/guest-agent.md).
 *
 * The device keeps no byte queue of its own: the management VM's agent
 * hypercall (vmm/mgmt.c) copies straight out of the guest's transmit
 * buffers and into its receive buffers. The guest's own rings are the
 * bounded queues: a guest that writes faster than the management VM
 * reads fills its own ring and waits, as on a real serial line; nothing
 * is dropped on the way, and nothing it does costs another VM memory.
 *
 * Queues (5.3.2, with VIRTIO_CONSOLE_F_MULTIPORT): 0 and 1 are port 0's
 * receive and transmit queues, 2 and 3 the control queues. One port
 * keeps the device within VIRTIO_MAX_QUEUES; a driver does not treat
 * port 0 as a console unless told (VIRTIO_CONSOLE_CONSOLE_PORT), which
 * this device never says.
 */
#ifndef DEVICES_VIRTIO_CONSOLE_H
#define DEVICES_VIRTIO_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/virtio.h"
#include "devices/virtqueue.h"

#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_CONSOLE_F_MULTIPORT 1

#define VIRTIO_CONSOLE_RXQ 0            /* port 0: device -> driver */
#define VIRTIO_CONSOLE_TXQ 1            /* port 0: driver -> device */
#define VIRTIO_CONSOLE_CTRL_RXQ 2       /* control: device -> driver */
#define VIRTIO_CONSOLE_CTRL_TXQ 3       /* control: driver -> device */
#define VIRTIO_CONSOLE_QUEUES 4

/* Control events (5.3.6.2). */
#define VIRTIO_CONSOLE_DEVICE_READY 0
#define VIRTIO_CONSOLE_DEVICE_ADD 1
#define VIRTIO_CONSOLE_DEVICE_REMOVE 2
#define VIRTIO_CONSOLE_PORT_READY 3
#define VIRTIO_CONSOLE_CONSOLE_PORT 4
#define VIRTIO_CONSOLE_RESIZE 5
#define VIRTIO_CONSOLE_PORT_OPEN 6
#define VIRTIO_CONSOLE_PORT_NAME 7

#define VIRTIO_CONSOLE_CONTROL_SIZE 8   /* le32 id, le16 event, le16 value */
#define VIRTIO_CONSOLE_CONFIG_SIZE 12   /* le16 cols, le16 rows, le32 max_nr_ports, le32 emerg_wr */
#define VIRTIO_CONSOLE_AGENT_PORT_NAME "org.qemu.guest_agent.0"

/* The largest guest write taken (whole); Linux writes at most 32 KiB at once. */
#define VIRTIO_CONSOLE_WRITE_MAX 65536

#define VIRTIO_CONSOLE_BUDGET_CHAINS 64
#define VIRTIO_CONSOLE_BUDGET_BYTES (64 * 1024)

/* Control messages the device still owes the driver (bits of control_due). */
#define VIRTIO_CONSOLE_DUE_ADD 1
#define VIRTIO_CONSOLE_DUE_NAME 2
#define VIRTIO_CONSOLE_DUE_OPEN 4

struct virtio_console_stats {
	uint64_t to_host_bytes;         /* taken from the guest's transmit buffers */
	uint64_t to_guest_bytes;        /* put into its receive buffers */
	uint64_t oversize;              /* transmit chains larger than any host read: dropped */
	uint64_t bad_control;           /* control messages too short or naming no port */
	uint64_t resets_needed;
};

/* What the device tells its owner; both may be NULL. */
struct virtio_console_host {
	/* The guest wrote to the port, posted receive buffers or opened or closed it. */
	void (*notify)(void *ctx);
	void *ctx;
};

struct virtio_console {
	struct virtio_device dev;
	struct virtq vq[VIRTIO_CONSOLE_QUEUES];
	bool driver_ready;              /* DEVICE_READY 1 received */
	bool port_ready;                /* PORT_READY 1 for port 0 received */
	bool guest_open;                /* a guest program has the port open (PORT_OPEN) */
	uint8_t control_due;            /* VIRTIO_CONSOLE_DUE_* */
	struct virtio_console_host host;
	struct virtio_console_stats stats;
};

extern const struct devstate_desc virtio_console_state_desc;

void virtio_console_init(struct virtio_console *con, struct guest_memory mem,
			 const struct virtio_console_host *host);

/*
 * Moves whole guest writes, in order, into out[0..cap) while they fit
 * (a write that does not waits for a read with more room); a write
 * larger than VIRTIO_CONSOLE_WRITE_MAX is dropped (counted). Returns the
 * bytes moved; the guest's buffers go back used.
 */
size_t virtio_console_take(struct virtio_console *con, uint8_t *out, size_t cap);

/*
 * Puts up to len bytes into the receive buffers the guest posted.
 * Returns how many went in: fewer, down to 0, when the guest has no more
 * buffers posted or no program has the port open (a driver discards what
 * arrives for a closed port).
 */
size_t virtio_console_give(struct virtio_console *con, const uint8_t *in, size_t len);

/* Once per scheduler pass: budgets back, owed control messages sent. */
void virtio_console_new_pass(struct virtio_console *con);

#endif
