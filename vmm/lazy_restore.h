/*
 * A restore that does not wait for RAM (docs/savefile.md, "Restore"):
 * Startup loads the vCPU and the devices, hides the VM's RAM from nested
 * paging and lets the guest run. Each memory run of the save file is
 * decoded when it is first needed:
 * - the guest touches one of its pages (an EPT violation, retried once
 *   the run is in; an event whose delivery faulted is delivered again);
 * - the hypervisor or a device model reads or writes it (vm_gpa_to_host,
 *   the devices' struct guest_memory);
 * - or the background gets to it, between the VMs' slices
 *   (lazy_restore_poll), until no page is left.
 * Then RAM is mapped whole again (2-MiB pages) and the file's pages go
 * back. The file was checked whole (every checksum) before the guest ran;
 * a run that still does not decode (a forged file) ends the VM with the
 * reason, and no Save of it is made.
 *
 * Zero runs are loaded in aligned windows of 16 pages, data runs whole
 * (one LZ block): a window is loaded all at once, so a page is either
 * pending with the rest of its window or loaded.
 */
#ifndef VMM_LAZY_RESTORE_H
#define VMM_LAZY_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct vm_saved;
struct savefile_run;
struct lazy_restore;

/* Room for run_count memory runs of the VM's RAM, none yet; NULL when memory is short. */
struct lazy_restore *lazy_restore_create(struct vm *vm, uint32_t run_count);
/* A run, in the file's order (savefile_open held them to cover RAM from GPA 0). */
void lazy_restore_add_run(struct lazy_restore *l, const struct savefile_run *run);
/* Gives back a restore that did not start (the file's other records were refused). */
void lazy_restore_free(struct vm *vm, struct lazy_restore *l);
/*
 * Makes l the VM's (vm->lazy): its RAM hidden, loaded as it is needed.
 * Without memory for the hidden tables RAM is loaded here, whole, and l
 * is freed; -1 then, with why, if a run does not decode (the restore
 * fails). From the scheduler's loop only (virt_ram_hide).
 */
int lazy_restore_start(struct vm *vm, struct lazy_restore *l, char *why, size_t why_size);
/*
 * The save file the runs point into is the restore's from now on (the
 * VM runs on from it): its pages go back when the last page is loaded.
 */
void lazy_restore_own_file(struct vm *vm, const struct vm_saved *file);
/*
 * Ends the VM's restore, what is still pending dropped: the guest's RAM
 * is about to be rewritten (a turn-off, a reset) or the start failed.
 * RAM is mapped whole again; the file, if the restore owns it, goes back.
 */
void lazy_restore_drop(struct vm *vm);

/* Loads what is pending of guest-physical [gpa, gpa + len), in RAM. */
void lazy_restore_load(struct vm *vm, uint64_t gpa, uint64_t len);
/*
 * An EPT violation at gpa, in RAM: true when the VM's restore accounts
 * for it (the page is loaded now, or was, and the access is retried).
 */
bool lazy_restore_fault(struct vm *vm, uint64_t gpa);
/* Why the VM's RAM could not all be loaded (it is ending for it), or NULL. */
const char *lazy_restore_failure(const struct vm *vm);
/*
 * One step of about budget_ns of every VM's background loading (0: one
 * window); a restore whose last page is in ends (its RAM mapped whole,
 * the file given back). True while one is left, so that the loop does
 * not sleep. From the scheduler's loop only.
 */
bool lazy_restore_poll(uint64_t budget_ns);

#endif
