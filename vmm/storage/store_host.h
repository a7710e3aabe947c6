/*
 * The hypervisor's store (docs/store.md) on the drive the loader found:
 * vmm/storage/store_host.c. Without one the hypervisor runs as it always
 * has, with disks as RAM copies, and says so.
 */
#ifndef VMM_STORAGE_STORE_HOST_H
#define VMM_STORAGE_STORE_HOST_H

#include "boot/boot_info.h"
#include "devices/disk.h"
#include "lib/store.h"

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
	STORE_DISK_BEING_MADE,          /* CreateVirtualHardDisk's zeroing is not over */
};
enum store_disk_state store_host_disk_state(const char *name);

/* VM vm_id lets go of its store disk, if it has one. */
void store_host_detach(unsigned vm_id);

/*
 * Saved states (vmm/vm_save.c): a VM's file in the store, so that Startup
 * after a host reboot restores it. keep writes it whole, flushes, then
 * commits it in place of the VM's older one (a power cut leaves one of
 * them); -1 with why when there is no store or it does not fit.
 */
int store_host_keep_saved(const char *vm_name, const void *file, uint64_t bytes,
			  uint64_t saved_at, char *why, size_t why_size);
/*
 * The VM's saved state leaves the store, if it is there: 0, or -1 with
 * why when the commit fails (the state would come back at the next boot).
 */
int store_host_drop_saved(const char *vm_name, char *why, size_t why_size);
/* Whether the store keeps a saved state of that name (one not taken at boot, say). */
bool store_host_has_saved(const char *vm_name);
/* The index-th saved state in the store: its VM's name and size; false past the last. */
bool store_host_saved_at(unsigned index, char *vm_name, size_t cap, uint64_t *bytes);
/* Reads the VM's saved state of bytes into buf; -1 with why. */
int store_host_read_saved(const char *vm_name, void *buf, uint64_t bytes, char *why,
			  size_t why_size);

/* What the disk calls return besides 0: the API's errors follow from them. */
enum store_host_error {
	STORE_HOST_NO_STORE = 1,        /* no store, a read-only one, or a commit that failed */
	STORE_HOST_EXISTS,
	STORE_HOST_NO_SPACE,
	STORE_HOST_INVALID,
	STORE_HOST_NOT_FOUND,
	STORE_HOST_TAKEN,               /* a VM's disk */
	STORE_HOST_BUSY,                /* another disk is being made */
};

/*
 * CreateVirtualHardDisk: a disk object of bytes (whole sectors), zeroed
 * in the background by store_host_poll() before it is one (its state in
 * store_host_disk_at). 0, or an enum store_host_error with why.
 */
int store_host_create_disk(const char *name, uint64_t bytes, char *why, size_t why_size);
/*
 * ImportVirtualMachine of a VM with its disk: begin makes the disk object
 * (enum store_host_error, as CreateVirtualHardDisk's); write fills it
 * (len whole sectors, but for the disk's last bytes); end flushes it and
 * commits it as a disk. Until then it is a disk being made, which the next
 * boot drops; a failed import deletes it (store_host_import_disk_drop).
 */
int store_host_import_disk_begin(const char *name, uint64_t bytes, char *why, size_t why_size);
bool store_host_import_disk_write(const char *name, uint64_t offset, const void *buf,
				  uint64_t len);
int store_host_import_disk_end(const char *name, char *why, size_t why_size);
/* A refused import's disk deleted, written whole or not (store_host_delete_disk refuses one being written). */
int store_host_import_disk_drop(const char *name, char *why, size_t why_size);

/*
 * A piece of the work in the background (zeroing a new disk), from the
 * scheduler's loop; whether more is left.
 */
bool store_host_poll(void);

struct store_host_disk {
	char name[STORE_NAME_MAX + 1];
	uint64_t bytes;
	unsigned ready_percent;         /* 100: a disk; below: being made (zeroed so far) */
	int vm_id;                      /* the VM it is attached to, or -1 */
};
/* The index-th disk object of the store; false past the last. */
bool store_host_disk_at(unsigned index, struct store_host_disk *out);
/* DeleteVirtualHardDisk: 0, or an enum store_host_error with why (a VM's disk is kept). */
int store_host_delete_disk(const char *name, char *why, size_t why_size);

/* Bytes the store can still give objects (0: none, or no writable store). */
uint64_t store_host_free_bytes(void);

/* One line for GetHostInfo and the log: the store's state, or why there is none. */
const char *store_host_status(void);

#endif
