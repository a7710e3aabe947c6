/*
 * libFuzzer harness of the virtio-console model (devices/virtio_console.c):
 * a hostile guest's RAM and queue set-up against the agent channel's
 * host side.
 *
 * Input:
 *   features (1 byte): bit 0 indirect descriptors, bit 1 EVENT_IDX;
 *   ops (4 bytes): one operation each, low 2 bits: 0 notify queue
 *     (bits 2-3 say which), 1 the host takes with room (bits 2-7) * 1024,
 *     2 the host gives (bits 2-7) * 64 bytes, 3 a scheduler pass;
 *   four queues, each size code (1 byte: 0..8 give 1 << code, larger codes
 *     are the size itself), desc, driver, device (2 bytes each, LE);
 *   the rest: guest RAM from guest-physical 0, exactly as long as given.
 * Whatever the guest wrote, the device never reads or writes outside its
 * RAM or the host's buffer, and never hands the host more than its room.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio_console.h"

#define QUEUE_BYTES 7
#define HEADER_BYTES (1 + 4 + VIRTIO_CONSOLE_QUEUES * QUEUE_BYTES)

static struct virtio_console con;
static uint8_t host_buf[64 * 1024], give_buf[4096];

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void no_interrupt(struct virtio_device *dev, unsigned queue)
{
	(void)dev;
	(void)queue;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *ram;

	if (size < HEADER_BYTES)
		return 0;
	size_t ram_size = size - HEADER_BYTES;
	free(ram);
	ram = malloc(ram_size ? ram_size : 1);
	if (!ram)
		return 0;
	memcpy(ram, data + HEADER_BYTES, ram_size);
	virtio_console_init(&con, (struct guest_memory){ .base = ram, .size = ram_size }, NULL);
	con.dev.interrupt = no_interrupt;
	con.dev.driver_features = con.dev.device_features;
	if (!(data[0] & 1))
		con.dev.driver_features &= ~(1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	if (!(data[0] & 2))
		con.dev.driver_features &= ~(1ULL << VIRTIO_RING_F_EVENT_IDX);
	con.dev.status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	for (unsigned q = 0; q < VIRTIO_CONSOLE_QUEUES; q++) {
		const uint8_t *p = data + 5 + q * QUEUE_BYTES;
		struct virtq_config *c = &con.dev.queues[q];
		*c = (struct virtq_config){ .size = (uint16_t)(p[0] <= 8 ? 1u << p[0] : p[0]),
					    .msix_vector = VIRTIO_MSI_NO_VECTOR,
					    .desc = get16(p + 1), .driver = get16(p + 3),
					    .device = get16(p + 5) };
		/* The transport enables only a queue it can walk (virtio.h). */
		c->enabled = virtio_queue_usable(&con.dev, c);
	}
	memset(give_buf, '{', sizeof(give_buf));
	for (unsigned i = 0; i < 4; i++) {
		uint8_t op = data[1 + i], arg = op >> 2;
		switch (op & 3) {
		case 0:
			if (con.dev.queues[arg & 3].enabled)
				con.dev.ops->queue_notify(&con.dev, arg & 3);
			break;
		case 1: {
			size_t cap = (size_t)arg * 1024;
			if (virtio_console_take(&con, host_buf, cap) > cap)
				abort();
			break;
		}
		case 2: {
			size_t len = (size_t)arg * 64;
			if (virtio_console_give(&con, give_buf, len) > len)
				abort();
			break;
		}
		default:
			virtio_console_new_pass(&con);
			break;
		}
	}
	return 0;
}
