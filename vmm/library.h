/*
 * The image library (docs/management.md): the files the boot loader read
 * for the configured VMs, which CreateVirtualMachine names by path. A
 * file is offered only as what the configuration named it: an `image` or
 * `initrd` as a boot file, a `disk` as a disk, so that a created VM's
 * disk is never another VM's kernel or boot image.
 */
#ifndef VMM_LIBRARY_H
#define VMM_LIBRARY_H

#include "boot/boot_info.h"

enum library_kind {
	LIBRARY_BOOT_FILE, /* image = or initrd = */
	LIBRARY_DISK,      /* disk = */
};

/*
 * The loaded file named path ('/' or '\') of that kind among the
 * configured VMs' files (boot[i] holds what cfg->vms[i] names), or NULL.
 */
const struct boot_file *library_find(const struct config *cfg, const struct boot_vm *boot,
				     const char *path, enum library_kind kind);

#endif
