#include "boot/fat.h"

#include "lib/fmt.h"
#include "lib/le.h"

#include <stdarg.h>
#include <string.h>

#define DIR_ENTRY 32
#define ATTR_VOLUME_ID 0x08
#define ATTR_DIRECTORY 0x10
#define ATTR_LONG_NAME 0x0f
#define ENTRY_FREE 0xe5
#define ENTRY_END 0x00
/* FAT12 and FAT16 by cluster count (the specification's only rule, 3.5). */
#define FAT12_CLUSTERS 4085u
#define DIR_MAX_BYTES (65536u * DIR_ENTRY)
#define FAT16_CLUSTERS 65525u

struct volume {
	fat_read_fn read;
	void *ctx;
	unsigned bits;                  /* 12, 16 or 32 */
	uint32_t sectors_per_cluster;
	uint64_t fat_start, data_start, root_start, root_sectors;
	uint32_t clusters;              /* data clusters: numbers 2 .. clusters + 1 */
	uint32_t root_cluster;          /* FAT32 */
	uint8_t sector[2 * FAT_SECTOR]; /* a FAT12 entry may straddle two sectors */
	uint64_t cached;                /* the FAT sector in `sector`, or UINT64_MAX */
};

/* "vmmstore.img" as a directory entry spells it: "VMMSTOREIMG"; false when it is no 8.3 name. */
static bool short_name(const char *name, char out[11])
{
	size_t i = 0, base = 0, ext = 0;

	memset(out, ' ', 11);
	for (; name[i] && name[i] != '.'; i++) {
		if (base == 8)
			return false;
		char c = name[i];
		out[base++] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
	}
	if (name[i] == '.')
		for (i++; name[i]; i++) {
			if (ext == 3 || name[i] == '.')
				return false;
			char c = name[i];
			out[8 + ext++] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
		}
	return base > 0;
}

static int fail(char *why, size_t n, const char *format, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t n, const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	fmt_vsnprintf(why, n, format, ap);
	va_end(ap);
	return -1;
}

static int parse_boot_sector(struct volume *v, uint64_t volume_sectors, char *why, size_t n)
{
	const uint8_t *b = v->sector;

	if (!v->read(v->ctx, 0, 1, v->sector))
		return fail(why, n, "the volume's boot sector cannot be read");
	uint32_t bytes_per_sector = (uint32_t)le_get(b + 11, 2);
	v->sectors_per_cluster = b[13];
	uint32_t reserved = (uint32_t)le_get(b + 14, 2), fats = b[16];
	uint32_t root_entries = (uint32_t)le_get(b + 17, 2);
	uint64_t total = le_get(b + 19, 2) ? le_get(b + 19, 2) : le_get(b + 32, 4);
	uint64_t fat_size = le_get(b + 22, 2) ? le_get(b + 22, 2) : le_get(b + 36, 4);

	if (b[510] != 0x55 || b[511] != 0xaa || bytes_per_sector != FAT_SECTOR)
		return fail(why, n, "not a FAT volume of 512-byte sectors");
	if (!v->sectors_per_cluster || (v->sectors_per_cluster & (v->sectors_per_cluster - 1)) ||
	    !reserved || !fats || !fat_size || total > volume_sectors)
		return fail(why, n, "the FAT boot sector's geometry does not add up");
	v->fat_start = reserved;
	v->root_start = reserved + fats * fat_size;
	v->root_sectors = ((uint64_t)root_entries * DIR_ENTRY + FAT_SECTOR - 1) / FAT_SECTOR;
	v->data_start = v->root_start + v->root_sectors;
	if (v->data_start >= total)
		return fail(why, n, "the FAT boot sector leaves no data area");
	uint64_t clusters = (total - v->data_start) / v->sectors_per_cluster;
	v->bits = clusters < FAT12_CLUSTERS ? 12 : clusters < FAT16_CLUSTERS ? 16 : 32;
	v->clusters = clusters > 0x0ffffff5 ? 0x0ffffff5 : (uint32_t)clusters;
	/* The FAT must hold an entry for every cluster. */
	if (fat_size * FAT_SECTOR * 8 / v->bits < (uint64_t)v->clusters + 2)
		return fail(why, n, "the FAT is smaller than the volume's clusters");
	if (v->bits == 32) {
		v->root_cluster = (uint32_t)le_get(b + 44, 4);
		if (root_entries)
			return fail(why, n, "a FAT32 boot sector with a fixed root directory");
		/* BPB_ExtFlags: with mirroring off (bit 7) only FAT number bits 3:0 is current. */
		uint32_t ext_flags = (uint32_t)le_get(b + 40, 2);
		if (ext_flags & 0x80) {
			if ((ext_flags & 0x0f) >= fats)
				return fail(why, n, "FAT32's active FAT %u of %u", ext_flags & 0x0f, fats);
			v->fat_start += (ext_flags & 0x0f) * fat_size;
		}
	} else if (!root_entries) {
		return fail(why, n, "a FAT%u boot sector without a root directory", v->bits);
	}
	v->cached = UINT64_MAX;
	return 0;
}

/* The FAT's entry for cluster c: the next cluster, or a value >= the end mark. */
static bool next_cluster(struct volume *v, uint32_t c, uint32_t *next)
{
	uint64_t offset = v->bits == 12 ? c + c / 2 : (uint64_t)c * (v->bits / 8);
	uint64_t sector = v->fat_start + offset / FAT_SECTOR;
	size_t at = offset % FAT_SECTOR;

	if (sector != v->cached) {
		if (!v->read(v->ctx, sector, 2, v->sector))
			return false;
		v->cached = sector;
	}
	if (v->bits == 12) {
		uint32_t pair = (uint32_t)le_get(v->sector + at, 2);
		*next = c & 1 ? pair >> 4 : pair & 0xfff;
	} else if (v->bits == 16) {
		*next = (uint32_t)le_get(v->sector + at, 2);
	} else {
		*next = (uint32_t)le_get(v->sector + at, 4) & 0x0fffffff;
	}
	return true;
}

static bool end_of_chain(const struct volume *v, uint32_t c)
{
	return c >= (v->bits == 12 ? 0xff8u : v->bits == 16 ? 0xfff8u : 0x0ffffff8u);
}

static bool valid_cluster(const struct volume *v, uint32_t c)
{
	return c >= 2 && c - 2 < v->clusters;
}

/* The chain from first, as far as `clusters` clusters, into sector extents. */
static int map_chain(struct volume *v, uint32_t first, uint64_t clusters, uint64_t bytes,
		     struct fat_file_map *map, char *why, size_t n)
{
	uint32_t c = first;

	*map = (struct fat_file_map){ .bytes = bytes };
	for (uint64_t i = 0; i < clusters; i++) {
		if (!valid_cluster(v, c))
			return fail(why, n, "the file's cluster chain leaves the volume (cluster %u)", c);
		uint64_t sector = v->data_start + (uint64_t)(c - 2) * v->sectors_per_cluster;
		for (uint32_t k = 0; k < map->count; k++)
			if (sector >= map->extent[k].sector &&
			    sector - map->extent[k].sector < map->extent[k].sectors)
				return fail(why, n, "the file's cluster chain loops (cluster %u)", c);
		struct fat_extent *last = map->count ? &map->extent[map->count - 1] : NULL;
		if (last && last->sector + last->sectors == sector) {
			last->sectors += v->sectors_per_cluster;
		} else {
			if (map->count == FAT_EXTENTS_MAX)
				return fail(why, n, "the file lies in more than %u pieces: copy it "
					    "anew to make it contiguous", FAT_EXTENTS_MAX);
			map->extent[map->count++] = (struct fat_extent){ sector, v->sectors_per_cluster };
		}
		if (i + 1 == clusters)
			break;
		if (!next_cluster(v, c, &c))
			return fail(why, n, "the FAT cannot be read");
		if (end_of_chain(v, c))
			return fail(why, n, "the file's cluster chain ends before its size");
	}
	return 0;
}

/* The directory entry of name (11 characters) in one sector of directory; 1 found, 0 not, -1 end. */
static int find_in_sector(const uint8_t *sector, const char name[11], uint32_t *first,
			  uint64_t *bytes, unsigned bits)
{
	for (size_t at = 0; at < FAT_SECTOR; at += DIR_ENTRY) {
		const uint8_t *e = sector + at;
		if (e[0] == ENTRY_END)
			return -1;
		if (e[0] == ENTRY_FREE || (e[11] & ATTR_LONG_NAME) == ATTR_LONG_NAME ||
		    (e[11] & (ATTR_VOLUME_ID | ATTR_DIRECTORY)) || memcmp(e, name, 11))
			continue;
		*first = (uint32_t)le_get(e + 26, 2) |
			 (bits == 32 ? (uint32_t)le_get(e + 20, 2) << 16 : 0);
		*bytes = le_get(e + 28, 4);
		return 1;
	}
	return 0;
}

int fat_map_file(fat_read_fn read, void *ctx, uint64_t volume_sectors, const char *name,
		 struct fat_file_map *map, char *why, size_t why_size)
{
	static struct volume v;
	uint8_t dir[FAT_SECTOR];
	char want[11];
	uint32_t first = 0;
	uint64_t bytes = 0;
	int found = 0;

	v = (struct volume){ .read = read, .ctx = ctx };
	if (!short_name(name, want))
		return fail(why, why_size, "'%s' is not an 8.3 name", name);
	if (parse_boot_sector(&v, volume_sectors, why, why_size))
		return -1;
	if (v.bits != 32) {
		for (uint64_t s = 0; s < v.root_sectors && !found; s++) {
			if (!read(ctx, v.root_start + s, 1, dir))
				return fail(why, why_size, "the root directory cannot be read");
			found = find_in_sector(dir, want, &first, &bytes, v.bits);
		}
	} else {
		/*
		 * The root's chain, bounded as the specification bounds a
		 * directory (65536 entries, 2 MiB): a loop ends there.
		 */
		uint32_t c = v.root_cluster;
		uint64_t max_clusters = DIR_MAX_BYTES / ((uint64_t)v.sectors_per_cluster * FAT_SECTOR);
		for (uint64_t i = 0; i < max_clusters + 1 && !found && !end_of_chain(&v, c); i++) {
			if (!valid_cluster(&v, c))
				return fail(why, why_size, "the root directory's chain leaves the volume");
			uint64_t base = v.data_start + (uint64_t)(c - 2) * v.sectors_per_cluster;
			for (uint32_t s = 0; s < v.sectors_per_cluster && !found; s++) {
				if (!read(ctx, base + s, 1, dir))
					return fail(why, why_size, "the root directory cannot be read");
				found = find_in_sector(dir, want, &first, &bytes, v.bits);
			}
			if (!found && !next_cluster(&v, c, &c))
				return fail(why, why_size, "the FAT cannot be read");
		}
	}
	if (found != 1)
		return fail(why, why_size, "no file '%s' in the volume's root directory", name);
	uint64_t cluster_bytes = (uint64_t)v.sectors_per_cluster * FAT_SECTOR;
	if (!bytes)
		return fail(why, why_size, "'%s' is empty", name);
	return map_chain(&v, first, (bytes + cluster_bytes - 1) / cluster_bytes, bytes, map, why,
			 why_size);
}
