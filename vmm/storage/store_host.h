/*
 * The hypervisor's store (docs/store.md) on the drive the loader found:
 * vmm/storage/store_host.c. Without one the hypervisor runs as it always
 * has, with disks as RAM copies, and says so.
 */
#ifndef VMM_STORAGE_STORE_HOST_H
#define VMM_STORAGE_STORE_HOST_H

#include "boot/boot_info.h"

/* Identifies the drive, opens the store, runs the store self-test when configured. */
void store_host_init(const struct boot_info *bi);

/* One line for GetHostInfo and the log: the store's state, or why there is none. */
const char *store_host_status(void);

#endif
