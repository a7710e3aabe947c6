/*
 * Conversion of the firmware's memory map into the host memory map the
 * hypervisor works from after ExitBootServices. The firmware buffer is
 * untrusted input: every descriptor is bounds- and sanity-checked, and the
 * result is sorted, merged and free of overlaps, so later stages (page
 * allocator, identity map, guest E820) never have to re-validate it.
 */
#ifndef BOOT_MEMMAP_H
#define BOOT_MEMMAP_H

#include <stddef.h>
#include <stdint.h>

#define MEMMAP_PAGE_SHIFT 12
#define MEMMAP_PAGE_SIZE (1ULL << MEMMAP_PAGE_SHIFT)

/*
 * EFI_MEMORY_TYPE (UEFI 2.10, 7.2.1). Prefixed UEFI_MT_ rather than the
 * spec's Efi* names so this header can share a translation unit with the
 * firmware headers that define those.
 */
enum uefi_memory_type {
	UEFI_MT_RESERVED = 0,
	UEFI_MT_LOADER_CODE = 1,
	UEFI_MT_LOADER_DATA = 2,
	UEFI_MT_BOOT_SERVICES_CODE = 3,
	UEFI_MT_BOOT_SERVICES_DATA = 4,
	UEFI_MT_RUNTIME_SERVICES_CODE = 5,
	UEFI_MT_RUNTIME_SERVICES_DATA = 6,
	UEFI_MT_CONVENTIONAL = 7,
	UEFI_MT_UNUSABLE = 8,
	UEFI_MT_ACPI_RECLAIM = 9,
	UEFI_MT_ACPI_NVS = 10,
	UEFI_MT_MMIO = 11,
	UEFI_MT_MMIO_PORT_SPACE = 12,
	UEFI_MT_PAL_CODE = 13,
	UEFI_MT_PERSISTENT = 14,
	UEFI_MT_UNACCEPTED = 15,
};

/*
 * EFI_MEMORY_DESCRIPTOR (UEFI 2.10, 7.2.3). Version 1 of the layout; later
 * versions may only append fields, which is why GetMemoryMap() reports a
 * descriptor stride that can exceed this size.
 */
struct uefi_memory_descriptor {
	uint32_t type;
	uint32_t pad;
	uint64_t physical_start;
	uint64_t virtual_start;
	uint64_t number_of_pages;
	uint64_t attribute;
} __attribute__((packed));

_Static_assert(sizeof(struct uefi_memory_descriptor) == 40,
	       "EFI_MEMORY_DESCRIPTOR is 40 bytes");
_Static_assert(offsetof(struct uefi_memory_descriptor, physical_start) == 8,
	       "PhysicalStart follows the padded Type");
_Static_assert(offsetof(struct uefi_memory_descriptor, number_of_pages) == 24,
	       "NumberOfPages offset");
_Static_assert(offsetof(struct uefi_memory_descriptor, attribute) == 32,
	       "Attribute offset");

/* What a range is to the hypervisor once boot services are gone. */
enum mem_kind {
	MEM_USABLE,
	MEM_HYPERVISOR,
	MEM_RUNTIME,
	MEM_ACPI_RECLAIM,
	MEM_ACPI_NVS,
	MEM_MMIO,
	MEM_RESERVED,
	MEM_UNUSABLE,
};

struct mem_range {
	uint64_t base;
	uint64_t pages; /* of 4 KiB */
	enum mem_kind kind;
};

/*
 * Sorted by base, non-overlapping, adjacent ranges always of different
 * kinds, in room for capacity ranges that the caller provides: sized from
 * the firmware's map (memmap_ranges_for), as a big server's has thousands
 * of descriptors.
 */
struct mem_map {
	struct mem_range *ranges;
	unsigned capacity;
	unsigned count;
};

/*
 * Room for the ranges of a firmware map of map_size bytes: one per
 * descriptor at most, with slack for the descriptors allocating this room
 * and exiting boot services may still add.
 */
#define MEMMAP_SLACK 64
unsigned memmap_ranges_for(size_t map_size, size_t desc_size);

/*
 * Converts the buffer GetMemoryMap() returned (map_size bytes, descriptors
 * desc_size bytes apart) into *out. Descriptors of zero pages describe
 * nothing and are skipped. The capacity applies to the merged ranges
 * held while the descriptors are inserted one by one; for a map the firmware
 * hands over sorted, as EDK2 does, that is the final count.
 * Returns 0, or -1 with *why set to a static string and out->count = 0.
 */
int memmap_from_uefi(const void *buf, size_t map_size, size_t desc_size,
		     struct mem_map *out, const char **why);

uint64_t memmap_total_pages(const struct mem_map *map, enum mem_kind kind);

/*
 * The end of the highest RAM-like range (usable, hypervisor, runtime, ACPI
 * reclaim, ACPI NVS): what the host identity map must cover with write-back
 * memory. MMIO, reserved and unusable ranges are left out on purpose: they
 * may be device windows (PCIe ECAM is often typed reserved) far above RAM,
 * which must not be mapped write-back, and the MMIO hole below 4 GiB is
 * mapped separately. 0 when the map holds no RAM.
 */
uint64_t memmap_top_address(const struct mem_map *map);

const char *memmap_kind_name(enum mem_kind kind);

#endif
