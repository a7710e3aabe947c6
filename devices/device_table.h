/*
 * The device table: one row per device model whose state a VM saves and
 * loads (devstate.h). Adding a device is its file in devices/ plus its row
 * here (docs/devices.md). How each device attaches to a VM (ports, MMIO,
 * IRQ lines) is still vmm/vm.c's and vmm/platform.c's.
 */
#ifndef DEVICES_DEVICE_TABLE_H
#define DEVICES_DEVICE_TABLE_H

#include "devices/devstate.h"

extern const struct devstate_desc *const device_table[];
extern const unsigned device_table_count;

#endif
