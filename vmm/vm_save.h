/*
 * Save and Restore of a VM: its whole state as one save file
 * (docs/savefile.md) in hypervisor memory. Save captures the vCPU, every
 * device of the device table, the VM's clock and its RAM; Startup of a
 * saved VM loads them back over the wiring a cold start builds, so the
 * guest goes on where it stopped. The file stays until Discard, Delete or
 * the next Save; a move to another server carries the same bytes (or,
 * with --with-disk, a copy that also holds the disk).
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
 * Save in steps, so that the other VMs run while a large VM is saved:
 * begin captures at once, the instant the guest stops, what RAM does not
 * hold (the vCPU, every device, the VM's clock, its configuration); then
 * each vm_save_step, from the scheduler's loop, works on RAM for about
 * budget_ns (at least one piece of 256 KiB): it scans it for the file's
 * size, takes the file, and compresses RAM into it. The VM must not run
 * from begin to the last step, nor its devices touch its RAM (it is
 * Saving: the scheduler and the devices' polls leave it alone).
 *
 * begin returns VM_CONTROL_NO_MEMORY (vmm/vm.h) when memory is short, -1
 * when the state does not encode (a bug), with the reason, the VM
 * unchanged. A step returns VM_SAVE_MORE, VM_SAVE_DONE (the file, whole,
 * replaces an older one as vm->saved and goes to the store) or
 * VM_SAVE_FAILED with the reason (no memory for the file; nothing kept).
 */
enum vm_save_progress { VM_SAVE_MORE, VM_SAVE_DONE, VM_SAVE_FAILED };
/* Drops a Save under way, keeping nothing (a VM deleted while Saving). */
void vm_save_abandon(struct vm *vm);
int vm_save_begin(struct vm *vm, char *why, size_t why_size);
enum vm_save_progress vm_save_step(struct vm *vm, uint64_t budget_ns, char *why,
				   size_t why_size);

/*
 * Loads the saved state over a VM whose devices were just powered on from
 * its configuration: devices, the vCPU and the clock, and RAM as it is
 * needed from then on (vmm/lazy_restore.h). The file is validated whole
 * first; a refused one (damaged, another RAM size, a CPU feature this
 * host lacks, named in why) returns -1 and is kept.
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

/*
 * A restored VM runs on from its file, which is no longer its state: the
 * pages go back now, or, while the restore still loads RAM from them,
 * when it is done (vmm/lazy_restore.h).
 */
void vm_save_restored(struct vm *vm);

/* The CPU features guests on this host are shown, as save file feature bits. */
uint64_t vm_save_cpu_features(void);

#endif
