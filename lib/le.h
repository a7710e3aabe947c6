/*
 * Little-endian byte order for wire and record formats (the management
 * protocol, device state records): explicit bytes, so a layout never
 * depends on the host's order or on alignment.
 */
#ifndef LIB_LE_H
#define LIB_LE_H

#include <stddef.h>
#include <stdint.h>

static inline void le_put(uint8_t *p, uint64_t v, size_t width)
{
	for (size_t i = 0; i < width; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t le_get(const uint8_t *p, size_t width)
{
	uint64_t v = 0;

	for (size_t i = 0; i < width; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

#endif
