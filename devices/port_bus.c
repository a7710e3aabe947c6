#include "devices/port_bus.h"

#include <stddef.h>

int port_bus_add(struct port_bus *bus, const struct port_device *d)
{
	uint32_t end = (uint32_t)d->base + d->count;

	if (!d->count || end > 0x10000 || bus->count == PORT_BUS_MAX)
		return -1;
	for (unsigned i = 0; i < bus->count; i++) {
		const struct port_device *o = &bus->devices[i];
		if (d->base < o->base + o->count && o->base < end)
			return -1;
	}
	bus->devices[bus->count++] = *d;
	return 0;
}

const struct port_device *port_bus_find(const struct port_bus *bus, uint16_t port,
					unsigned size)
{
	for (unsigned i = 0; i < bus->count; i++) {
		const struct port_device *d = &bus->devices[i];
		if (port >= d->base && (uint32_t)port + size <= (uint32_t)d->base + d->count)
			return d;
	}
	return NULL;
}

bool port_bus_access(const struct port_bus *bus, uint16_t port, unsigned size, bool in,
		     uint32_t *value)
{
	const struct port_device *d = port_bus_find(bus, port, size);

	if (!d) {
		if (in)
			*value = size >= 4 ? 0xffffffffU : (1U << (8 * size)) - 1;
		return false;
	}
	if (in)
		*value = d->read ? d->read(d->ctx, (uint16_t)(port - d->base), size)
				 : 0xffffffffU >> (32 - 8 * size);
	else if (d->write)
		d->write(d->ctx, (uint16_t)(port - d->base), size, *value);
	return true;
}
