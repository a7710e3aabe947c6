/*
 * A VM's I/O port space: which device model answers which ports. Every
 * guest IN/OUT exits (the I/O bitmaps are all ones) and is looked up here;
 * ports no device claims read as all ones and swallow writes, as on an
 * empty ISA bus.
 */
#ifndef DEVICES_PORT_BUS_H
#define DEVICES_PORT_BUS_H

#include <stdbool.h>
#include <stdint.h>

#define PORT_BUS_MAX 16

struct port_device {
	uint16_t base;
	uint16_t count;
	const char *name;
	/* offset = port - base; size is 1, 2 or 4 and the access lies inside the range. */
	uint32_t (*read)(void *ctx, uint16_t offset, unsigned size);
	void (*write)(void *ctx, uint16_t offset, unsigned size, uint32_t value);
	void *ctx;
};

struct port_bus {
	struct port_device devices[PORT_BUS_MAX];
	unsigned count;
};

/* -1 if the range is empty, wraps past 0xffff, overlaps another, or the bus is full. */
int port_bus_add(struct port_bus *bus, const struct port_device *device);

/* The device whose range holds the whole access, or NULL. */
const struct port_device *port_bus_find(const struct port_bus *bus, uint16_t port,
					unsigned size);

/* Performs the access; an unclaimed IN returns all ones. True if a device took it. */
bool port_bus_access(const struct port_bus *bus, uint16_t port, unsigned size, bool in,
		     uint32_t *value);

#endif
