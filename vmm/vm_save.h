/*
 * Save and Restore of a VM: its whole state as one save file
 * (docs/savefile.md) in hypervisor memory. Save captures the vCPU, every
 * device of the device table, the VM's clock and its RAM; Startup of a
 * saved VM loads them back over the wiring a cold start builds, so the
 * guest goes on where it stopped. The file stays until Discard, Delete or
 * the next Save; a move to another server carries the same bytes.
 */
#ifndef VMM_VM_SAVE_H
#define VMM_VM_SAVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

/* A VM's saved state: the file in host pages (pages 0: none). */
struct vm_saved {
	uint64_t base;     /* host address of the file */
	uint64_t pages;    /* pages taken for it */
	uint64_t bytes;    /* the file's length */
	uint64_t saved_at; /* seconds since 1970 (UTC), from the host's clock */
	bool in_store;     /* a copy is in the store (vmm/storage/store_host.h) */
};

/*
 * Writes the VM's state into a new save file (replacing an older one).
 * The VM must not run meanwhile (it is Running or Paused, between its
 * slices). Returns VM_CONTROL_NO_MEMORY (vmm/vm.h) when memory is short,
 * -1 when the state does not encode (a bug), with the reason; the VM is
 * unchanged either way.
 */
int vm_save_capture(struct vm *vm, char *why, size_t why_size);

/*
 * Loads the saved state over a VM whose devices were just powered on from
 * its configuration: devices, RAM, the vCPU and the clock. The file is
 * validated whole first; a refused one (damaged, another RAM size, a CPU
 * feature this host lacks, named in why) returns -1 and is kept.
 */
int vm_save_restore(struct vm *vm, char *why, size_t why_size);

/*
 * Writes the VM's saved state (just captured or imported) into the store
 * too, so that Startup after a host reboot restores it. Without a store,
 * or room in it, the state stays in host memory only and the log says so.
 */
void vm_save_persist(struct vm *vm);

/*
 * Gives the saved state's pages back (restored, Discard, Delete); its copy
 * in the store is vm.c's to drop (store_host_drop_saved), before the VM
 * can run again.
 */
void vm_save_discard(struct vm *vm);

/* The CPU features guests on this host are shown, as save file feature bits. */
uint64_t vm_save_cpu_features(void);

#endif
