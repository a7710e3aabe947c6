#include "boot/memmap.h"

#include <stdbool.h>
#include <string.h>

static enum mem_kind kind_of(uint32_t type)
{
	switch (type) {
	case UEFI_MT_CONVENTIONAL:
	/*
	 * Boot services memory is free once ExitBootServices has returned
	 * (UEFI 2.10, 7.2, "Memory Type Usage after ExitBootServices()").
	 */
	case UEFI_MT_BOOT_SERVICES_CODE:
	case UEFI_MT_BOOT_SERVICES_DATA:
		return MEM_USABLE;
	/* Our image and everything we allocated with AllocatePages/AllocatePool. */
	case UEFI_MT_LOADER_CODE:
	case UEFI_MT_LOADER_DATA:
		return MEM_HYPERVISOR;
	case UEFI_MT_RUNTIME_SERVICES_CODE:
	case UEFI_MT_RUNTIME_SERVICES_DATA:
		return MEM_RUNTIME;
	case UEFI_MT_ACPI_RECLAIM:
		return MEM_ACPI_RECLAIM;
	case UEFI_MT_ACPI_NVS:
		return MEM_ACPI_NVS;
	case UEFI_MT_MMIO:
	case UEFI_MT_MMIO_PORT_SPACE:
		return MEM_MMIO;
	case UEFI_MT_UNUSABLE:
		return MEM_UNUSABLE;
	default:
		/*
		 * Reserved, PAL code, persistent memory (must keep its contents,
		 * so it is not ours to allocate), unaccepted memory (unusable
		 * until accepted through the TDX/SEV-SNP protocol, which we do
		 * not speak) and types newer than this code.
		 */
		return MEM_RESERVED;
	}
}

static uint64_t range_end(const struct mem_range *r)
{
	return r->base + (r->pages << MEMMAP_PAGE_SHIFT);
}

/* Index of the first range whose base is above base. */
static unsigned upper_bound(const struct mem_map *map, uint64_t base)
{
	unsigned lo = 0, hi = map->count;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (map->ranges[mid].base <= base)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Inserts r keeping the map sorted and merged. Merging as we go keeps the
 * table at the size of the result rather than of the raw descriptor count,
 * which is often several times smaller than the raw descriptor count.
 */
static const char *insert_range(struct mem_map *map, const struct mem_range *r)
{
	unsigned i = upper_bound(map, r->base);
	struct mem_range *prev = i > 0 ? &map->ranges[i - 1] : NULL;
	struct mem_range *next = i < map->count ? &map->ranges[i] : NULL;
	uint64_t end = range_end(r);

	if ((prev && range_end(prev) > r->base) || (next && end > next->base))
		return "overlapping memory map descriptors";

	bool join_prev = prev && prev->kind == r->kind && range_end(prev) == r->base;
	bool join_next = next && next->kind == r->kind && end == next->base;

	if (join_prev && join_next) {
		prev->pages += r->pages + next->pages;
		map->count--;
		for (unsigned j = i; j < map->count; j++)
			map->ranges[j] = map->ranges[j + 1];
	} else if (join_prev) {
		prev->pages += r->pages;
	} else if (join_next) {
		next->base = r->base;
		next->pages += r->pages;
	} else {
		if (map->count == map->capacity)
			return "too many memory map ranges";
		for (unsigned j = map->count; j > i; j--)
			map->ranges[j] = map->ranges[j - 1];
		map->ranges[i] = *r;
		map->count++;
	}
	return NULL;
}

unsigned memmap_ranges_for(size_t map_size, size_t desc_size)
{
	return (unsigned)(desc_size ? map_size / desc_size : 0) + MEMMAP_SLACK;
}

static const char *convert(const unsigned char *buf, size_t map_size,
			   size_t desc_size, struct mem_map *out)
{
	if (desc_size < sizeof(struct uefi_memory_descriptor))
		return "memory descriptor size smaller than EFI_MEMORY_DESCRIPTOR";
	if (map_size % desc_size)
		return "memory map size not a multiple of the descriptor size";

	for (size_t off = 0; off < map_size; off += desc_size) {
		struct uefi_memory_descriptor d;
		const char *err;

		/* The stride need not keep descriptors 8-byte aligned. */
		memcpy(&d, buf + off, sizeof(d));
		if (d.physical_start & (MEMMAP_PAGE_SIZE - 1))
			return "memory map range not 4 KiB aligned";
		if (d.number_of_pages >
		    (UINT64_MAX - d.physical_start) >> MEMMAP_PAGE_SHIFT)
			return "memory map range overflows 64 bits";
		if (!d.number_of_pages)
			continue;

		struct mem_range r = {
			.base = d.physical_start,
			.pages = d.number_of_pages,
			.kind = kind_of(d.type),
		};
		err = insert_range(out, &r);
		if (err)
			return err;
	}
	return NULL;
}

int memmap_from_uefi(const void *buf, size_t map_size, size_t desc_size,
		     struct mem_map *out, const char **why)
{
	out->count = 0;
	*why = convert(buf, map_size, desc_size, out);
	if (*why) {
		out->count = 0;
		return -1;
	}
	return 0;
}

uint64_t memmap_total_pages(const struct mem_map *map, enum mem_kind kind)
{
	uint64_t total = 0;

	for (unsigned i = 0; i < map->count; i++)
		if (map->ranges[i].kind == kind)
			total += map->ranges[i].pages;
	return total;
}

static bool is_ram(enum mem_kind kind)
{
	switch (kind) {
	case MEM_USABLE:
	case MEM_HYPERVISOR:
	case MEM_RUNTIME:
	case MEM_ACPI_RECLAIM:
	case MEM_ACPI_NVS:
		return true;
	default:
		return false;
	}
}

uint64_t memmap_top_address(const struct mem_map *map)
{
	for (unsigned i = map->count; i-- > 0;)
		if (is_ram(map->ranges[i].kind))
			return range_end(&map->ranges[i]);
	return 0;
}

const char *memmap_kind_name(enum mem_kind kind)
{
	static const char *const names[] = {
		[MEM_USABLE] = "usable",
		[MEM_HYPERVISOR] = "hypervisor",
		[MEM_RUNTIME] = "runtime",
		[MEM_ACPI_RECLAIM] = "ACPI reclaim",
		[MEM_ACPI_NVS] = "ACPI NVS",
		[MEM_MMIO] = "MMIO",
		[MEM_RESERVED] = "reserved",
		[MEM_UNUSABLE] = "unusable",
	};

	if ((unsigned)kind >= sizeof(names) / sizeof(names[0]))
		return "invalid";
	return names[kind];
}
