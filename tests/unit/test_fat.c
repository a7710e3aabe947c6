/*
 * Resolving a file of a FAT volume to sector extents (boot/fat.c) on
 * FAT12, FAT16 and FAT32 volumes that mtools made
 * (tests/unit/make_fat_images.sh): the store container lies in two
 * pieces, and reading its extents must give exactly its bytes. Then the
 * refusals: no such file, not an 8.3 name, a chain that loops or leaves
 * the volume, a damaged boot sector.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot/fat.h"
#include "lib/le.h"

struct image {
	uint8_t *data;
	size_t size;
};

static struct image img;
static uint8_t ref[40000];
static char why[256];

static bool read_sectors(void *ctx, uint64_t sector, uint32_t count, void *buf)
{
	struct image *m = ctx;

	if (sector * FAT_SECTOR + (uint64_t)count * FAT_SECTOR > m->size)
		return false;
	memcpy(buf, m->data + sector * FAT_SECTOR, (size_t)count * FAT_SECTOR);
	return true;
}

static void load(const char *name)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", FAT_IMAGES, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	img.size = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	free(img.data);
	img.data = malloc(img.size);
	assert_int_equal(fread(img.data, 1, img.size, f), img.size);
	fclose(f);
}

static void map_and_compare(const char *volume, uint32_t pieces)
{
	struct fat_file_map map;
	uint64_t at = 0;

	load(volume);
	assert_int_equal(fat_map_file(read_sectors, &img, img.size / FAT_SECTOR, "VmmStore.IMG", &map,
				      why, sizeof(why)), 0);
	assert_int_equal(map.bytes, sizeof(ref));
	assert_true(map.count >= pieces);
	for (uint32_t i = 0; i < map.count && at < sizeof(ref); i++) {
		uint64_t n = map.extent[i].sectors * FAT_SECTOR;
		if (n > sizeof(ref) - at)
			n = sizeof(ref) - at;
		assert_memory_equal(img.data + map.extent[i].sector * FAT_SECTOR, ref + at, n);
		at += n;
	}
	assert_int_equal(at, sizeof(ref));
}

static void test_fat12(void **state)
{
	(void)state;
	/* Written into the hole B.BIN left and on after C.BIN: two pieces. */
	map_and_compare("fat12.img", 2);
}

static void test_fat16(void **state)
{
	(void)state;
	map_and_compare("fat16.img", 2);
}

static void test_fat32(void **state)
{
	(void)state;
	/* FAT32 allocates after its last allocation (FSInfo's hint): one piece. */
	map_and_compare("fat32.img", 1);
}

/* The directory entry of VMMSTORE.IMG in the FAT16 image's root. */
static uint8_t *entry_of_store(void)
{
	for (size_t at = 0; at + 32 <= img.size; at += 32)
		if (!memcmp(img.data + at, "VMMSTOREIMG", 11))
			return img.data + at;
	fail();
	return NULL;
}

static void test_refusals(void **state)
{
	struct fat_file_map map;
	uint64_t sectors;

	(void)state;
	load("fat16.img");
	sectors = img.size / FAT_SECTOR;
	assert_int_equal(fat_map_file(read_sectors, &img, sectors, "nothere.img", &map, why,
				      sizeof(why)), -1);
	assert_non_null(strstr(why, "no file 'nothere.img'"));
	assert_int_equal(fat_map_file(read_sectors, &img, sectors, "vmmstore.image", &map, why,
				      sizeof(why)), -1);
	assert_non_null(strstr(why, "not an 8.3 name"));

	/* Its first cluster's FAT entry pointing back at itself: the file would alias its own blocks. */
	uint8_t *e = entry_of_store();
	uint32_t first = (uint32_t)le_get(e + 26, 2);
	uint32_t reserved = (uint32_t)le_get(img.data + 14, 2);
	le_put(img.data + reserved * FAT_SECTOR + 2 * first, first, 2);
	assert_int_equal(fat_map_file(read_sectors, &img, sectors, "vmmstore.img", &map, why,
				      sizeof(why)), -1);
	assert_non_null(strstr(why, "loops"));

	le_put(img.data + reserved * FAT_SECTOR + 2 * first, 0xfff0, 2);
	assert_int_equal(fat_map_file(read_sectors, &img, sectors, "vmmstore.img", &map, why,
				      sizeof(why)), -1);
	assert_non_null(strstr(why, "leaves the volume"));

	le_put(img.data + reserved * FAT_SECTOR + 2 * first, 0xffff, 2);
	assert_int_equal(fat_map_file(read_sectors, &img, sectors, "vmmstore.img", &map, why,
				      sizeof(why)), -1);
	assert_non_null(strstr(why, "ends before its size"));

	load("fat16.img");
	img.data[13] = 3;               /* sectors per cluster: not a power of two */
	assert_int_equal(fat_map_file(read_sectors, &img, sectors, "vmmstore.img", &map, why,
				      sizeof(why)), -1);
	assert_non_null(strstr(why, "geometry"));
	load("fat16.img");
	assert_int_equal(fat_map_file(read_sectors, &img, sectors / 2, "vmmstore.img", &map, why,
				      sizeof(why)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fat12),
		cmocka_unit_test(test_fat16),
		cmocka_unit_test(test_fat32),
		cmocka_unit_test(test_refusals),
	};
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/vmmstore.ref", FAT_IMAGES);
	f = fopen(path, "rb");
	if (!f || fread(ref, 1, sizeof(ref), f) != sizeof(ref))
		return 1;
	fclose(f);
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(img.data);
	return rc;
}
