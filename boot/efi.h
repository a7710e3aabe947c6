/*
 * Firmware services used while the firmware still owns the machine
 * (before ExitBootServices). Nothing after the hand-over may call these.
 */
#ifndef BOOT_EFI_H
#define BOOT_EFI_H

#include <efi.h>
#include <stddef.h>
#include <stdint.h>

#include "boot/boot_info.h"

extern EFI_SYSTEM_TABLE *efi_st;
extern EFI_BOOT_SERVICES *efi_bs;

/*
 * Mirrors log lines to every firmware text console that does not already
 * reach a serial port (the log writes the UART itself, and a firmware
 * serial terminal would print each line twice).
 */
void efi_console_attach_log(void);
void efi_console_detach_log(void);

/* Opens the root directory of the volume this application was loaded from. */
EFI_STATUS efi_open_boot_volume(EFI_HANDLE image, EFI_FILE_HANDLE *root);

/*
 * The directory this application was loaded from, e.g. "\EFI\BOOT" ("" for
 * the root), into dir. Returns -1 when the firmware does not say.
 */
int efi_app_directory(EFI_HANDLE image, char *dir, size_t size);

/*
 * Reads path (ASCII, '\' separators) from root into new pages.
 * max_size bounds what is accepted: a larger file is refused with
 * EFI_BAD_BUFFER_SIZE before anything is allocated.
 */
EFI_STATUS efi_read_file(EFI_FILE_HANDLE root, const char *path, uint64_t max_size,
			 struct boot_file *out);
void efi_free_file(struct boot_file *blob);

/*
 * The memory map as GetMemoryMap returns it, in a buffer that grows as
 * needed. Only the raw descriptors: boot/memmap.c interprets them.
 */
struct efi_raw_map {
	uint8_t *buf;
	UINTN size;
	UINTN capacity;
	UINTN key;
	UINTN desc_size;
	UINT32 desc_version;
};

EFI_STATUS efi_get_memory_map(struct efi_raw_map *map);

/* Free conventional memory now: in all, and the largest contiguous block. */
void efi_free_memory(uint64_t *total_bytes, uint64_t *largest_bytes);

/* A short English name for an EFI_STATUS, for console messages. */
const char *efi_status_name(EFI_STATUS status);

#endif
