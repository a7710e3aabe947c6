/*
 * Reads every configured VM's files from the boot volume and reserves its
 * RAM while the firmware still owns the machine, so that every problem is
 * found (and all of them reported at once) before anything is taken over.
 */
#ifndef BOOT_VM_LOADER_H
#define BOOT_VM_LOADER_H

#include "boot/efi.h"

/*
 * Returns the number of problems found, each reported on the log with the
 * VM's name. On any problem everything this call allocated is freed again.
 */
unsigned vm_loader_load_all(EFI_FILE_HANDLE root, const struct config *cfg,
			    struct boot_vm *vms);

#endif
