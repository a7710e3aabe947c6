/* The store's container file on the boot volume, located for the hypervisor: boot/store_locate.c. */
#ifndef BOOT_STORE_LOCATE_H
#define BOOT_STORE_LOCATE_H

#include <efi.h>

#include "boot/boot_info.h"

/*
 * Finds path (the configuration's store) and fills out; when it cannot,
 * it says why and leaves out's bus NONE: the hypervisor runs without a
 * store, as without one configured.
 */
void store_locate(EFI_HANDLE image, const char *path, struct boot_store *out);

#endif
