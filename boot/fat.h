/*
 * Where a file of a FAT volume lies (Microsoft's FAT specification, 1.03):
 * the boot volume's store container (docs/store.md) is resolved to sector
 * extents before ExitBootServices, so the hypervisor's own disk driver can
 * reach its data afterwards without a file system, and the FAT is never
 * written after the hand-over. Plain C over a sector reader; it trusts
 * nothing it reads (a chain is followed only as far as the file's size
 * needs, every cluster number is checked).
 */
#ifndef BOOT_FAT_H
#define BOOT_FAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FAT_SECTOR 512u
/* A preallocated container is nearly contiguous: more runs than this is refused. */
#define FAT_EXTENTS_MAX 32u

struct fat_extent {
	uint64_t sector;                /* from the volume's first sector */
	uint64_t sectors;
};

struct fat_file_map {
	uint64_t bytes;
	uint32_t count;
	struct fat_extent extent[FAT_EXTENTS_MAX];
};

/* Reads count 512-byte sectors from the volume's sector `sector` on. */
typedef bool (*fat_read_fn)(void *ctx, uint64_t sector, uint32_t count, void *buf);

/*
 * The extents of the file named name (8.3, in the root directory, any
 * case: "vmmstore.img") on a volume of volume_sectors. 0, or -1 with the
 * reason in why.
 */
int fat_map_file(fat_read_fn read, void *ctx, uint64_t volume_sectors, const char *name,
		 struct fat_file_map *map, char *why, size_t why_size);

#endif
