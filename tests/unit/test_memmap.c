#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "boot/memmap.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define PAGES(bytes) ((bytes) >> MEMMAP_PAGE_SHIFT)

/* OVMF reports 48-byte descriptors: the version 1 layout plus 8 bytes. */
#define OVMF_DESC_SIZE 48
#define MAX_RAW 1100

struct raw {
	uint32_t type;
	uint64_t base;
	uint64_t pages;
};

static unsigned char buf[MAX_RAW * OVMF_DESC_SIZE];
/* A map with room for MEMMAP_TEST_ROOM ranges, as efi_main sizes one from the firmware's. */
#define MEMMAP_TEST_ROOM 256
static struct mem_range room[MEMMAP_TEST_ROOM];
static struct mem_map map = { room, MEMMAP_TEST_ROOM, 0 };

/*
 * Lays descriptors out desc_size bytes apart, filling the bytes past the
 * version 1 layout with junk a parser that ignored the stride would read.
 */
static size_t build(const struct raw *raw, unsigned n, size_t desc_size)
{
	assert_true(n * desc_size <= sizeof(buf));
	memset(buf, 0xa5, n * desc_size);
	for (unsigned i = 0; i < n; i++) {
		struct uefi_memory_descriptor d = {
			.type = raw[i].type,
			.physical_start = raw[i].base,
			.virtual_start = 0,
			.number_of_pages = raw[i].pages,
			.attribute = 0xf,
		};

		memcpy(buf + i * desc_size, &d, sizeof(d));
	}
	return n * desc_size;
}

static int convert(const struct raw *raw, unsigned n, size_t desc_size,
		   const char **why)
{
	*why = NULL;
	return memmap_from_uefi(buf, build(raw, n, desc_size), desc_size, &map, why);
}

static void expect_range(unsigned i, uint64_t base, uint64_t end, enum mem_kind kind)
{
	assert_true(i < map.count);
	assert_int_equal(map.ranges[i].base, base);
	assert_int_equal(map.ranges[i].pages, PAGES(end - base));
	assert_int_equal(map.ranges[i].kind, kind);
}

static void expect_error(const struct raw *raw, unsigned n, size_t desc_size,
			 const char *message)
{
	const char *why;

	map.count = 12345;
	assert_int_equal(convert(raw, n, desc_size, &why), -1);
	assert_non_null(why);
	assert_string_equal(why, message);
	assert_int_equal(map.count, 0);
}

/* Shaped like what OVMF hands a loaded application on a 5 GiB guest. */
static const struct raw ovmf_map[] = {
	{ UEFI_MT_BOOT_SERVICES_CODE, 0x0, 1 },
	{ UEFI_MT_CONVENTIONAL, 0x1000, PAGES(0xa0000 - 0x1000) },
	{ UEFI_MT_CONVENTIONAL, 0x100000, PAGES(0x800000 - 0x100000) },
	{ UEFI_MT_ACPI_NVS, 0x800000, 8 },
	{ UEFI_MT_CONVENTIONAL, 0x808000, 8 },
	{ UEFI_MT_ACPI_NVS, 0x810000, PAGES(0x900000 - 0x810000) },
	{ UEFI_MT_BOOT_SERVICES_DATA, 0x900000, PAGES(0x1000000 - 0x900000) },
	{ UEFI_MT_LOADER_CODE, 0x1000000, PAGES(MiB) },
	{ UEFI_MT_LOADER_DATA, 0x1100000, PAGES(MiB) },
	{ UEFI_MT_CONVENTIONAL, 0x1200000, PAGES(0x3f000000 - 0x1200000) },
	{ UEFI_MT_RUNTIME_SERVICES_CODE, 0x3f000000, PAGES(MiB) },
	{ UEFI_MT_RUNTIME_SERVICES_DATA, 0x3f100000, PAGES(MiB) },
	{ UEFI_MT_ACPI_RECLAIM, 0x3f200000, PAGES(MiB) },
	{ UEFI_MT_BOOT_SERVICES_CODE, 0x3f300000, PAGES(MiB) },
	{ UEFI_MT_RESERVED, 0x3f400000, PAGES(0x40000000 - 0x3f400000) },
	{ UEFI_MT_MMIO, 0xffc00000, PAGES(4 * MiB) },
	{ UEFI_MT_CONVENTIONAL, 4 * GiB, PAGES(GiB) },
};

#define N(a) ((unsigned)(sizeof(a) / sizeof((a)[0])))

static void check_ovmf_result(void)
{
	assert_int_equal(map.count, 14);
	expect_range(0, 0x0, 0xa0000, MEM_USABLE);
	expect_range(1, 0x100000, 0x800000, MEM_USABLE);
	expect_range(2, 0x800000, 0x808000, MEM_ACPI_NVS);
	expect_range(3, 0x808000, 0x810000, MEM_USABLE);
	expect_range(4, 0x810000, 0x900000, MEM_ACPI_NVS);
	expect_range(5, 0x900000, 0x1000000, MEM_USABLE);
	expect_range(6, 0x1000000, 0x1200000, MEM_HYPERVISOR);
	expect_range(7, 0x1200000, 0x3f000000, MEM_USABLE);
	expect_range(8, 0x3f000000, 0x3f200000, MEM_RUNTIME);
	expect_range(9, 0x3f200000, 0x3f300000, MEM_ACPI_RECLAIM);
	expect_range(10, 0x3f300000, 0x3f400000, MEM_USABLE);
	expect_range(11, 0x3f400000, 0x40000000, MEM_RESERVED);
	expect_range(12, 0xffc00000, 4 * GiB, MEM_MMIO);
	expect_range(13, 4 * GiB, 5 * GiB, MEM_USABLE);
}

static void test_ovmf_map(void **state)
{
	const char *why;

	(void)state;
	assert_int_equal(convert(ovmf_map, N(ovmf_map), OVMF_DESC_SIZE, &why), 0);
	assert_null(why);
	check_ovmf_result();
	assert_int_equal(memmap_total_pages(&map, MEM_HYPERVISOR), PAGES(2 * MiB));
	assert_int_equal(memmap_total_pages(&map, MEM_MMIO), PAGES(4 * MiB));
	assert_int_equal(memmap_total_pages(&map, MEM_UNUSABLE), 0);
	assert_int_equal(memmap_total_pages(&map, MEM_USABLE),
			 PAGES(0xa0000 + 0x700000 + 0x8000 + 0x700000 +
			       (0x3f000000 - 0x1200000) + MiB + GiB));
	assert_int_equal(memmap_top_address(&map), 5 * GiB);
}

static void test_reversed_input(void **state)
{
	struct raw raw[N(ovmf_map)];
	const char *why;

	(void)state;
	for (unsigned i = 0; i < N(raw); i++)
		raw[i] = ovmf_map[N(raw) - 1 - i];
	assert_int_equal(convert(raw, N(raw), OVMF_DESC_SIZE, &why), 0);
	check_ovmf_result();
}

/* Same map, a descriptor stride that is not a multiple of 8. */
static void test_odd_stride(void **state)
{
	const char *why;

	(void)state;
	assert_int_equal(convert(ovmf_map, N(ovmf_map), 41, &why), 0);
	check_ovmf_result();
}

static void test_exact_struct_stride(void **state)
{
	const char *why;

	(void)state;
	assert_int_equal(convert(ovmf_map, N(ovmf_map),
				 sizeof(struct uefi_memory_descriptor), &why), 0);
	check_ovmf_result();
}

static void test_kinds(void **state)
{
	static const struct {
		uint32_t type;
		enum mem_kind kind;
	} cases[] = {
		{ UEFI_MT_RESERVED, MEM_RESERVED },
		{ UEFI_MT_LOADER_CODE, MEM_HYPERVISOR },
		{ UEFI_MT_LOADER_DATA, MEM_HYPERVISOR },
		{ UEFI_MT_BOOT_SERVICES_CODE, MEM_USABLE },
		{ UEFI_MT_BOOT_SERVICES_DATA, MEM_USABLE },
		{ UEFI_MT_RUNTIME_SERVICES_CODE, MEM_RUNTIME },
		{ UEFI_MT_RUNTIME_SERVICES_DATA, MEM_RUNTIME },
		{ UEFI_MT_CONVENTIONAL, MEM_USABLE },
		{ UEFI_MT_UNUSABLE, MEM_UNUSABLE },
		{ UEFI_MT_ACPI_RECLAIM, MEM_ACPI_RECLAIM },
		{ UEFI_MT_ACPI_NVS, MEM_ACPI_NVS },
		{ UEFI_MT_MMIO, MEM_MMIO },
		{ UEFI_MT_MMIO_PORT_SPACE, MEM_MMIO },
		{ UEFI_MT_PAL_CODE, MEM_RESERVED },
		{ UEFI_MT_PERSISTENT, MEM_RESERVED },
		{ UEFI_MT_UNACCEPTED, MEM_RESERVED },
		{ 16, MEM_RESERVED },
		{ 0x80000000, MEM_RESERVED }, /* OEM range */
		{ 0xffffffff, MEM_RESERVED },
	};
	struct raw raw[N(cases)];
	const char *why;

	(void)state;
	/* One page apart, so that no two of them merge. */
	for (unsigned i = 0; i < N(cases); i++)
		raw[i] = (struct raw){ cases[i].type, i * 0x2000, 1 };
	assert_int_equal(convert(raw, N(raw), OVMF_DESC_SIZE, &why), 0);
	assert_int_equal(map.count, N(cases));
	for (unsigned i = 0; i < N(cases); i++)
		expect_range(i, i * 0x2000, i * 0x2000 + 0x1000, cases[i].kind);
}

static void test_merge_fills_gap(void **state)
{
	/* The last descriptor joins its two neighbours into one range. */
	static const struct raw raw[] = {
		{ UEFI_MT_CONVENTIONAL, 0x3000, 2 },
		{ UEFI_MT_BOOT_SERVICES_DATA, 0x0, 1 },
		{ UEFI_MT_LOADER_DATA, 0x10000, 1 },
		{ UEFI_MT_BOOT_SERVICES_CODE, 0x1000, 2 },
	};
	const char *why;

	(void)state;
	assert_int_equal(convert(raw, N(raw), OVMF_DESC_SIZE, &why), 0);
	assert_int_equal(map.count, 2);
	expect_range(0, 0x0, 0x5000, MEM_USABLE);
	expect_range(1, 0x10000, 0x11000, MEM_HYPERVISOR);
}

static void test_different_kinds_do_not_merge(void **state)
{
	static const struct raw raw[] = {
		{ UEFI_MT_CONVENTIONAL, 0x0, 1 },
		{ UEFI_MT_LOADER_CODE, 0x1000, 1 },
		{ UEFI_MT_CONVENTIONAL, 0x2000, 1 },
	};
	const char *why;

	(void)state;
	assert_int_equal(convert(raw, N(raw), OVMF_DESC_SIZE, &why), 0);
	assert_int_equal(map.count, 3);
	expect_range(1, 0x1000, 0x2000, MEM_HYPERVISOR);
}

static void test_zero_pages_skipped(void **state)
{
	static const struct raw raw[] = {
		{ UEFI_MT_CONVENTIONAL, 0x0, 4 },
		{ UEFI_MT_RESERVED, 0x2000, 0 }, /* inside the range above */
		{ UEFI_MT_RESERVED, 0x10000, 0 },
	};
	const char *why;

	(void)state;
	assert_int_equal(convert(raw, N(raw), OVMF_DESC_SIZE, &why), 0);
	assert_int_equal(map.count, 1);
	expect_range(0, 0x0, 0x4000, MEM_USABLE);
}

static void test_empty_map(void **state)
{
	const char *why;

	(void)state;
	assert_int_equal(memmap_from_uefi(buf, 0, OVMF_DESC_SIZE, &map, &why), 0);
	assert_null(why);
	assert_int_equal(map.count, 0);
	assert_int_equal(memmap_top_address(&map), 0);
	assert_int_equal(memmap_total_pages(&map, MEM_USABLE), 0);
}

/*
 * Many more raw descriptors than the map has room for, merging into two ranges, in
 * the out-of-order shapes firmware produces: descending, and ascending
 * with neighbours swapped.
 */
static void test_many_descriptors_merge(void **state)
{
	static struct raw raw[1024];
	const char *why;

	(void)state;
	for (unsigned order = 0; order < 2; order++) {
		for (unsigned i = 0; i < N(raw); i++) {
			unsigned page = order ? i ^ 1 : N(raw) - 1 - i;
			/* The top half is reserved, so exactly two ranges come out. */
			uint32_t type = page < N(raw) / 2 ?
				(page % 2 ? UEFI_MT_CONVENTIONAL : UEFI_MT_BOOT_SERVICES_DATA) :
				UEFI_MT_RESERVED;

			raw[i] = (struct raw){ type, (uint64_t)page << 12, 1 };
		}
		assert_int_equal(convert(raw, N(raw), OVMF_DESC_SIZE, &why), 0);
		assert_int_equal(map.count, 2);
		expect_range(0, 0, 512 << 12, MEM_USABLE);
		expect_range(1, 512 << 12, 1024 << 12, MEM_RESERVED);
	}
}

static void fill_disjoint(struct raw *raw, unsigned n)
{
	/* A one-page hole between ranges keeps every one of them separate. */
	for (unsigned i = 0; i < n; i++)
		raw[i] = (struct raw){ UEFI_MT_CONVENTIONAL, (uint64_t)i * 0x2000, 1 };
}

static void test_max_ranges(void **state)
{
	static struct raw raw[MEMMAP_TEST_ROOM];
	const char *why;

	(void)state;
	fill_disjoint(raw, MEMMAP_TEST_ROOM);
	assert_int_equal(convert(raw, MEMMAP_TEST_ROOM, OVMF_DESC_SIZE, &why), 0);
	assert_int_equal(map.count, MEMMAP_TEST_ROOM);
	expect_range(MEMMAP_TEST_ROOM - 1, (MEMMAP_TEST_ROOM - 1) * 0x2000ULL,
		     (MEMMAP_TEST_ROOM - 1) * 0x2000ULL + 0x1000, MEM_USABLE);
}

static void test_too_many_ranges(void **state)
{
	static struct raw raw[MEMMAP_TEST_ROOM + 1];

	(void)state;
	fill_disjoint(raw, MEMMAP_TEST_ROOM + 1);
	expect_error(raw, MEMMAP_TEST_ROOM + 1, OVMF_DESC_SIZE, "too many memory map ranges");
}

/* Room for every descriptor of the firmware's map, and slack for those still to come. */
static void test_room_from_the_firmware_map(void **state)
{
	(void)state;
	assert_int_equal(memmap_ranges_for(3000 * OVMF_DESC_SIZE, OVMF_DESC_SIZE),
			 3000 + MEMMAP_SLACK);
	assert_int_equal(memmap_ranges_for(0, 0), MEMMAP_SLACK);
}

static void test_desc_size_too_small(void **state)
{
	const char *why;

	(void)state;
	build(ovmf_map, 1, OVMF_DESC_SIZE);
	assert_int_equal(memmap_from_uefi(buf, 39 * 4, 39, &map, &why), -1);
	assert_string_equal(why, "memory descriptor size smaller than EFI_MEMORY_DESCRIPTOR");
	assert_int_equal(memmap_from_uefi(buf, 0, 0, &map, &why), -1);
	assert_string_equal(why, "memory descriptor size smaller than EFI_MEMORY_DESCRIPTOR");
}

static void test_map_size_not_multiple(void **state)
{
	const char *why;

	(void)state;
	build(ovmf_map, 2, OVMF_DESC_SIZE);
	assert_int_equal(memmap_from_uefi(buf, 2 * OVMF_DESC_SIZE - 8,
					  OVMF_DESC_SIZE, &map, &why), -1);
	assert_string_equal(why, "memory map size not a multiple of the descriptor size");
	assert_int_equal(map.count, 0);
}

static void test_misaligned(void **state)
{
	static const struct raw raw[] = {
		{ UEFI_MT_CONVENTIONAL, 0x0, 1 },
		{ UEFI_MT_CONVENTIONAL, 0x10800, 1 },
	};

	(void)state;
	expect_error(raw, N(raw), OVMF_DESC_SIZE, "memory map range not 4 KiB aligned");
}

static void test_overflow(void **state)
{
	static const struct raw huge[] = {
		{ UEFI_MT_CONVENTIONAL, 0x1000, UINT64_MAX >> 12 },
	};
	static const struct raw wraps[] = {
		{ UEFI_MT_CONVENTIONAL, 0x0, 1 },
		{ UEFI_MT_RESERVED, UINT64_MAX - 0xfff, 1 },
	};
	/* pages * 4096 alone wraps to a small number here. */
	static const struct raw multiply_wraps[] = {
		{ UEFI_MT_CONVENTIONAL, 0x1000, (1ULL << 52) + 1 },
	};
	static const struct raw top_ok[] = {
		{ UEFI_MT_RESERVED, UINT64_MAX - 0x1fff, 1 },
	};
	const char *why;

	(void)state;
	expect_error(huge, N(huge), OVMF_DESC_SIZE, "memory map range overflows 64 bits");
	expect_error(wraps, N(wraps), OVMF_DESC_SIZE, "memory map range overflows 64 bits");
	expect_error(multiply_wraps, N(multiply_wraps), OVMF_DESC_SIZE,
		     "memory map range overflows 64 bits");
	assert_int_equal(convert(top_ok, N(top_ok), OVMF_DESC_SIZE, &why), 0);
	assert_int_equal(map.count, 1);
}

static void test_overlap(void **state)
{
	static const struct raw partial_after[] = {
		{ UEFI_MT_CONVENTIONAL, 0x10000, 4 },
		{ UEFI_MT_CONVENTIONAL, 0x13000, 4 },
	};
	static const struct raw partial_before[] = {
		{ UEFI_MT_CONVENTIONAL, 0x13000, 4 },
		{ UEFI_MT_CONVENTIONAL, 0x10000, 4 },
	};
	static const struct raw duplicate[] = {
		{ UEFI_MT_CONVENTIONAL, 0x10000, 4 },
		{ UEFI_MT_CONVENTIONAL, 0x10000, 4 },
	};
	static const struct raw contained[] = {
		{ UEFI_MT_CONVENTIONAL, 0x10000, 16 },
		{ UEFI_MT_MMIO, 0x14000, 1 },
	};
	/* Overlaps a range that only exists because two descriptors merged. */
	static const struct raw merged[] = {
		{ UEFI_MT_CONVENTIONAL, 0x10000, 1 },
		{ UEFI_MT_CONVENTIONAL, 0x11000, 1 },
		{ UEFI_MT_RESERVED, 0x20000, 1 },
		{ UEFI_MT_RESERVED, 0xf000, 0x3 },
	};

	(void)state;
	expect_error(partial_after, N(partial_after), OVMF_DESC_SIZE,
		     "overlapping memory map descriptors");
	expect_error(partial_before, N(partial_before), OVMF_DESC_SIZE,
		     "overlapping memory map descriptors");
	expect_error(duplicate, N(duplicate), OVMF_DESC_SIZE,
		     "overlapping memory map descriptors");
	expect_error(contained, N(contained), OVMF_DESC_SIZE,
		     "overlapping memory map descriptors");
	expect_error(merged, N(merged), OVMF_DESC_SIZE,
		     "overlapping memory map descriptors");
}

static void test_top_address(void **state)
{
	/* Reserved, MMIO and unusable memory above RAM do not raise the top. */
	static const struct raw raw[] = {
		{ UEFI_MT_CONVENTIONAL, 0x0, PAGES(GiB) },
		{ UEFI_MT_ACPI_NVS, 2 * GiB, 1 },
		{ UEFI_MT_MMIO, 0xfe000000, PAGES(16 * MiB) },
		{ UEFI_MT_RESERVED, 0xe0000000, PAGES(256 * MiB) },
		{ UEFI_MT_UNUSABLE, 8 * GiB, 1 },
		{ UEFI_MT_MMIO, 64 * GiB, PAGES(GiB) },
		{ UEFI_MT_RESERVED, 128 * GiB, PAGES(GiB) },
	};
	static const struct raw kinds[] = {
		{ UEFI_MT_RUNTIME_SERVICES_DATA, 0x1000, 1 },
		{ UEFI_MT_ACPI_RECLAIM, 0x3000, 1 },
		{ UEFI_MT_LOADER_CODE, 0x5000, 1 },
	};
	static const struct raw no_ram[] = {
		{ UEFI_MT_MMIO, 0xfe000000, 1 },
		{ UEFI_MT_RESERVED, 0x0, 1 },
	};
	const char *why;

	(void)state;
	assert_int_equal(convert(raw, N(raw), OVMF_DESC_SIZE, &why), 0);
	assert_int_equal(memmap_top_address(&map), 2 * GiB + 0x1000);

	for (unsigned n = 1; n <= N(kinds); n++) {
		assert_int_equal(convert(kinds, n, OVMF_DESC_SIZE, &why), 0);
		assert_int_equal(memmap_top_address(&map), kinds[n - 1].base + 0x1000);
	}

	assert_int_equal(convert(no_ram, N(no_ram), OVMF_DESC_SIZE, &why), 0);
	assert_int_equal(memmap_top_address(&map), 0);
}

static void test_kind_names(void **state)
{
	(void)state;
	assert_string_equal(memmap_kind_name(MEM_USABLE), "usable");
	assert_string_equal(memmap_kind_name(MEM_HYPERVISOR), "hypervisor");
	assert_string_equal(memmap_kind_name(MEM_RUNTIME), "runtime");
	assert_string_equal(memmap_kind_name(MEM_ACPI_RECLAIM), "ACPI reclaim");
	assert_string_equal(memmap_kind_name(MEM_ACPI_NVS), "ACPI NVS");
	assert_string_equal(memmap_kind_name(MEM_MMIO), "MMIO");
	assert_string_equal(memmap_kind_name(MEM_RESERVED), "reserved");
	assert_string_equal(memmap_kind_name(MEM_UNUSABLE), "unusable");
	assert_string_equal(memmap_kind_name((enum mem_kind)(MEM_UNUSABLE + 1)), "invalid");
	assert_string_equal(memmap_kind_name((enum mem_kind)-1), "invalid");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ovmf_map),
		cmocka_unit_test(test_reversed_input),
		cmocka_unit_test(test_odd_stride),
		cmocka_unit_test(test_exact_struct_stride),
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_merge_fills_gap),
		cmocka_unit_test(test_different_kinds_do_not_merge),
		cmocka_unit_test(test_zero_pages_skipped),
		cmocka_unit_test(test_empty_map),
		cmocka_unit_test(test_many_descriptors_merge),
		cmocka_unit_test(test_max_ranges),
		cmocka_unit_test(test_too_many_ranges),
		cmocka_unit_test(test_room_from_the_firmware_map),
		cmocka_unit_test(test_desc_size_too_small),
		cmocka_unit_test(test_map_size_not_multiple),
		cmocka_unit_test(test_misaligned),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_overlap),
		cmocka_unit_test(test_top_address),
		cmocka_unit_test(test_kind_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
