/*
 * The EPT builder of the VT-x backend (vmm/vmx/ept.c) on the host: it is
 * plain page-table code on the page allocator, with a heap block standing
 * in for physical pages. The tables must translate exactly the VM's RAM,
 * and building then destroying them, or failing half-way for want of
 * memory, must give every table page back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdlib.h>

#include "vmm/page_alloc.h"
#include "vmm/vmx/ept.h"
#include "vmm/vmx/vmx_defs.h"
#include "x86/paging.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
/* Enough for the largest layout below: 1 PML4, 1 PDPT, 2 PDs, 2 PTs. */
#define ARENA_PAGES 16
/* A host RAM address the tables point at but never dereference. */
#define RAM_BASE (8 * GiB)

static struct page_alloc pages;
static uint64_t free_at_start;

static int setup(void **state)
{
	void *arena = aligned_alloc(PAGE_SIZE, ARENA_PAGES * PAGE_SIZE);

	*state = arena;
	assert_non_null(arena);
	page_alloc_init(&pages);
	assert_int_equal(page_alloc_add(&pages, (uint64_t)(uintptr_t)arena, ARENA_PAGES), 0);
	free_at_start = pages.free_pages;
	return 0;
}

static int teardown(void **state)
{
	free(*state);
	return 0;
}

static const uint64_t *table(uint64_t pa)
{
	return (const uint64_t *)(uintptr_t)pa;
}

/* The host address the tables map gpa to (SDM 28.2.2), or ~0 when they map none. */
static uint64_t translate(uint64_t pml4, uint64_t gpa)
{
	uint64_t e = pml4;

	for (unsigned shift = 39; shift >= 12; shift -= 9) {
		e = table(e & PTE_ADDR_MASK)[(gpa >> shift) & 511];
		if (!(e & EPT_RWX))
			return ~0ULL;
		assert_int_equal(e & EPT_RWX, EPT_RWX);
		if (shift == 21 && (e & EPT_LARGE))
			return (e & PTE_ADDR_MASK & ~(SIZE_2M - 1)) + (gpa & (SIZE_2M - 1));
	}
	assert_int_equal((e >> EPT_MEMTYPE_SHIFT) & 7, MEMTYPE_WB);
	return (e & PTE_ADDR_MASK) + (gpa & (SIZE_4K - 1));
}

/* Builds, checks the mapping and its table count, destroys: the pool is whole again. */
static void build_check_destroy(uint64_t ram_base, uint64_t ram_bytes, bool large,
				uint64_t want_tables)
{
	uint64_t pml4;

	assert_int_equal(vmx_ept_build(&pages, ram_base, ram_bytes, large, &pml4), 0);
	assert_int_equal(free_at_start - pages.free_pages, want_tables);
	for (uint64_t gpa = 0; gpa < ram_bytes; gpa += SIZE_4K)
		assert_int_equal(translate(pml4, gpa), ram_base + gpa);
	assert_int_equal(translate(pml4, ram_bytes), ~0ULL);
	vmx_ept_destroy(&pages, pml4);
	assert_int_equal(pages.free_pages, free_at_start);
}

static void test_layouts_map_exactly_the_ram(void **state)
{
	(void)state;
	/* 2-MiB pages and a 4-KiB tail: PML4, PDPT, PD, one PT. */
	build_check_destroy(RAM_BASE, 6 * MiB + 12 * 1024, true, 4);
	/* Without large pages: three PTs. */
	build_check_destroy(RAM_BASE, 6 * MiB, false, 6);
	/* Host RAM not 2-MiB aligned: 4-KiB pages only. */
	build_check_destroy(RAM_BASE + SIZE_4K, 4 * MiB, true, 5);
	/* Across a 1-GiB boundary: two PDs, a PT under the second. */
	build_check_destroy(RAM_BASE, GiB + 2 * MiB + SIZE_4K, true, 5);
}

/* The test for the real builder: 1,000 build/destroy rounds leak nothing. */
static void test_a_thousand_builds_give_every_page_back(void **state)
{
	uint64_t pml4;
	(void)state;

	/* Every other round without large pages, on less RAM: a page table per 2 MiB. */
	for (unsigned round = 0; round < 1000; round++) {
		bool large = round % 2;
		uint64_t ram = (large ? GiB : 0) + 6 * MiB + SIZE_4K;
		assert_int_equal(vmx_ept_build(&pages, RAM_BASE, ram, large, &pml4), 0);
		vmx_ept_destroy(&pages, pml4);
		assert_int_equal(pages.free_pages, free_at_start);
	}
	print_message("1000 EPT builds: %llu free pages before, %llu after\n",
		      (unsigned long long)free_at_start, (unsigned long long)pages.free_pages);
}

/* Out of memory at every possible point: each failure gives back what it had built. */
static void test_a_failed_build_gives_its_tables_back(void **state)
{
	uint64_t pml4, held;
	(void)state;

	for (uint64_t spare = 0; spare < 6; spare++) {
		uint64_t hold = pages.free_pages - spare;
		assert_int_equal(page_alloc_alloc(&pages, hold, 1, &held), 0);
		assert_int_equal(vmx_ept_build(&pages, RAM_BASE, 6 * MiB, false, &pml4), -1);
		assert_int_equal(pages.free_pages, spare);
		page_alloc_free(&pages, held, hold);
	}
	assert_int_equal(pages.free_pages, free_at_start);
}

/*
 * A lazy restore's tables: 4-KiB pages only, none present until shown;
 * a shown range maps exactly its pages, across a 2-MiB boundary, and the
 * tables still translate nothing outside RAM.
 */
static void test_hidden_ram_is_shown_page_by_page(void **state)
{
	const uint64_t ram = 4 * MiB + 3 * SIZE_4K;
	uint64_t pml4;
	(void)state;

	assert_int_equal(vmx_ept_build_hidden(&pages, RAM_BASE, ram, &pml4), 0);
	/* PML4, PDPT, PD and three page tables: no 2-MiB page, though both sides are aligned. */
	assert_int_equal(free_at_start - pages.free_pages, 6);
	for (uint64_t gpa = 0; gpa < ram; gpa += SIZE_4K)
		assert_int_equal(translate(pml4, gpa), ~0ULL);
	vmx_ept_show(pml4, 2 * MiB - 2 * SIZE_4K, 3 * SIZE_4K);
	vmx_ept_show(pml4, ram - SIZE_4K, SIZE_4K);
	for (uint64_t gpa = 0; gpa < ram; gpa += SIZE_4K) {
		bool shown = (gpa >= 2 * MiB - 2 * SIZE_4K && gpa < 2 * MiB + SIZE_4K) ||
			     gpa == ram - SIZE_4K;
		assert_int_equal(translate(pml4, gpa + 8), shown ? RAM_BASE + gpa + 8 : ~0ULL);
	}
	assert_int_equal(translate(pml4, ram), ~0ULL);
	vmx_ept_show(pml4, 0, ram);
	for (uint64_t gpa = 0; gpa < ram; gpa += SIZE_4K)
		assert_int_equal(translate(pml4, gpa), RAM_BASE + gpa);
	vmx_ept_destroy(&pages, pml4);
	assert_int_equal(pages.free_pages, free_at_start);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_layouts_map_exactly_the_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_thousand_builds_give_every_page_back, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_a_failed_build_gives_its_tables_back, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hidden_ram_is_shown_page_by_page, setup,
						teardown),
	};
	return cmocka_run_group_tests_name("ept", tests, NULL, NULL);
}
