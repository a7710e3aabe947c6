/*
 * The hypervisor's store (docs/store.md) on the drive the loader found:
 * vmm/storage/store_host.c. Without one the hypervisor runs as it always
 * has, with disks as RAM copies, and says so.
 */
#ifndef VMM_STORAGE_STORE_HOST_H
#define VMM_STORAGE_STORE_HOST_H

#include "boot/boot_info.h"
#include "devices/disk.h"

/* Identifies the drive, opens the store, runs the store self-test when configured. */
void store_host_init(const struct boot_info *bi);

/*
 * The store's disk object name as VM vm_id's disk: *medium reads and
 * writes it, *bytes is its size. An object is one VM's at a time. 0, or
 * -1 with why (no store, no such disk, already another VM's).
 */
int store_host_attach(const char *name, unsigned vm_id, const struct disk_medium **medium,
		      uint64_t *bytes, char *why, size_t why_size);

/* Whether the disk object name could be attached now, for the API's error codes. */
enum store_disk_state {
	STORE_DISK_FREE,
	STORE_DISK_NO_STORE,
	STORE_DISK_MISSING,             /* no such disk object, or one under a sector */
	STORE_DISK_TAKEN,               /* another VM's */
};
enum store_disk_state store_host_disk_state(const char *name);

/* VM vm_id lets go of its store disk, if it has one. */
void store_host_detach(unsigned vm_id);

/* One line for GetHostInfo and the log: the store's state, or why there is none. */
const char *store_host_status(void);

#endif
