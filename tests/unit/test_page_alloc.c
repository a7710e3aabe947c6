#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "vmm/page_alloc.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static struct page_alloc pa;
static struct page_alloc before;

static int setup(void **state)
{
	(void)state;
	page_alloc_init(&pa);
	return 0;
}

static void expect_extent(unsigned i, uint64_t base, uint64_t pages)
{
	assert_true(i < pa.count);
	assert_int_equal(pa.free[i].base, base);
	assert_int_equal(pa.free[i].pages, pages);
}

/* Failing calls must leave every byte of the allocator as it was. */
static void add_fails(uint64_t base, uint64_t pages)
{
	before = pa;
	assert_int_equal(page_alloc_add(&pa, base, pages), -1);
	assert_memory_equal(&pa, &before, sizeof(pa));
}

static void alloc_fails(uint64_t pages, uint64_t align_pages)
{
	uint64_t base = 0xdead000;

	before = pa;
	assert_int_equal(page_alloc_alloc(&pa, pages, align_pages, &base), -1);
	assert_memory_equal(&pa, &before, sizeof(pa));
	assert_int_equal(base, 0xdead000);
}

static void free_fails(uint64_t base, uint64_t pages)
{
	before = pa;
	assert_int_equal(page_alloc_free(&pa, base, pages), -1);
	assert_memory_equal(&pa, &before, sizeof(pa));
}

static uint64_t alloc_ok(uint64_t pages, uint64_t align_pages)
{
	uint64_t base;

	assert_int_equal(page_alloc_alloc(&pa, pages, align_pages, &base), 0);
	assert_int_equal(base % (align_pages * PAGE_SIZE), 0);
	return base;
}

static void test_init(void **state)
{
	(void)state;
	memset(&pa, 0xff, sizeof(pa));
	page_alloc_init(&pa);
	assert_int_equal(pa.count, 0);
	assert_int_equal(pa.free_pages, 0);
	assert_int_equal(pa.total_pages, 0);
	alloc_fails(1, 1);
}

static void test_add_merges(void **state)
{
	(void)state;
	assert_int_equal(page_alloc_add(&pa, 0x100000, 16), 0);
	assert_int_equal(page_alloc_add(&pa, 0x110000, 16), 0); /* after */
	assert_int_equal(pa.count, 1);
	expect_extent(0, 0x100000, 32);
	assert_int_equal(page_alloc_add(&pa, 0xf0000, 16), 0); /* before */
	assert_int_equal(pa.count, 1);
	expect_extent(0, 0xf0000, 48);

	assert_int_equal(page_alloc_add(&pa, 0x200000, 16), 0);
	assert_int_equal(page_alloc_add(&pa, 0x10000, 1), 0);
	assert_int_equal(pa.count, 3);
	expect_extent(0, 0x10000, 1);
	expect_extent(1, 0xf0000, 48);
	expect_extent(2, 0x200000, 16);

	/* Fills the hole between the last two exactly. */
	assert_int_equal(page_alloc_add(&pa, 0x120000, (0x200000 - 0x120000) / PAGE_SIZE), 0);
	assert_int_equal(pa.count, 2);
	expect_extent(1, 0xf0000, (0x210000 - 0xf0000) / PAGE_SIZE);
	assert_int_equal(pa.free_pages, 1 + (0x210000 - 0xf0000) / PAGE_SIZE);
	assert_int_equal(pa.total_pages, pa.free_pages);
}

static void test_add_errors(void **state)
{
	(void)state;
	assert_int_equal(page_alloc_add(&pa, 0x100000, 16), 0);

	add_fails(0x200800, 1);                        /* unaligned */
	add_fails(0x200000, 0);                        /* empty */
	add_fails(UINT64_MAX - 0xfff, 1);              /* ends at 2^64 */
	add_fails(0x1000, UINT64_MAX >> 12);           /* wraps */
	add_fails(0x1000, (1ULL << 52) + 1);           /* pages * 4K alone wraps */
	add_fails(0x100000, 16);                       /* same range */
	add_fails(0x10f000, 2);                        /* overlaps the end */
	add_fails(0xff000, 2);                         /* overlaps the start */
	add_fails(0x104000, 1);                        /* inside */
	add_fails(0x0, 0x1000);                        /* covers it */

	/* Memory added and then allocated cannot be added again either. */
	uint64_t base = alloc_ok(16, 1);

	assert_int_equal(base, 0x100000);
	assert_int_equal(pa.count, 0);
	add_fails(0x108000, 1);
	assert_int_equal(page_alloc_add(&pa, 0x110000, 1), 0);
	assert_int_equal(pa.total_pages, 17);
	assert_int_equal(pa.free_pages, 1);
}

static void test_add_table_full(void **state)
{
	(void)state;
	for (unsigned i = 0; i < PAGE_ALLOC_MAX_EXTENTS; i++)
		assert_int_equal(page_alloc_add(&pa, i * 0x10000ULL, 1), 0);
	assert_int_equal(pa.count, PAGE_ALLOC_MAX_EXTENTS);
	add_fails(PAGE_ALLOC_MAX_EXTENTS * 0x10000ULL, 1);
	add_fails(0x8000, 1);
	/* Touching an existing extent needs no slot. */
	assert_int_equal(page_alloc_add(&pa, 0x1000, 1), 0);
	assert_int_equal(page_alloc_add(&pa, 0xf000, 1), 0);
	assert_int_equal(page_alloc_add(&pa, 0x2000, 0xd), 0); /* joins both */
	assert_int_equal(pa.count, PAGE_ALLOC_MAX_EXTENTS - 1);
	expect_extent(0, 0, 0x11);
}

static void test_alloc_lowest_first(void **state)
{
	(void)state;
	assert_int_equal(page_alloc_add(&pa, 0x400000, 16), 0);
	assert_int_equal(page_alloc_add(&pa, 0x100000, 2), 0);
	assert_int_equal(page_alloc_add(&pa, 0x200000, 8), 0);

	assert_int_equal(alloc_ok(1, 1), 0x100000);
	assert_int_equal(alloc_ok(4, 1), 0x200000); /* 0x101000 has one page */
	assert_int_equal(alloc_ok(1, 1), 0x101000);
	assert_int_equal(pa.count, 2);
	assert_int_equal(alloc_ok(8, 1), 0x400000); /* 0x204000 has four */
	assert_int_equal(alloc_ok(4, 1), 0x204000);
	assert_int_equal(pa.free_pages, 8);
	assert_int_equal(pa.total_pages, 26);
}

static void test_alloc_2m_aligned(void **state)
{
	(void)state;
	/* [1 MiB + 4 KiB, 5 MiB): the only 2 MiB boundaries inside are 2 and 4 MiB. */
	assert_int_equal(page_alloc_add(&pa, MiB + 0x1000, (4 * MiB - 0x1000) / PAGE_SIZE), 0);

	assert_int_equal(alloc_ok(512, 512), 2 * MiB);
	assert_int_equal(pa.count, 2);
	expect_extent(0, MiB + 0x1000, (MiB - 0x1000) / PAGE_SIZE);
	expect_extent(1, 4 * MiB, 256);

	/* 4 MiB is aligned but only 1 MiB is left there. */
	alloc_fails(512, 512);
	assert_int_equal(alloc_ok(1, 256), 4 * MiB);
	assert_int_equal(alloc_ok(2, 2), MiB + 0x2000);
	assert_int_equal(pa.count, 3);
	expect_extent(0, MiB + 0x1000, 1);
	expect_extent(1, MiB + 0x4000, (MiB - 0x4000) / PAGE_SIZE);
	expect_extent(2, 4 * MiB + 0x1000, 255);
}

static void test_alloc_alignment_past_extent(void **state)
{
	(void)state;
	/* The first 1 GiB boundary lies beyond this extent entirely. */
	assert_int_equal(page_alloc_add(&pa, 0x1000, 16), 0);
	alloc_fails(1, GiB / PAGE_SIZE);
	assert_int_equal(page_alloc_add(&pa, GiB, 1), 0);
	assert_int_equal(alloc_ok(1, GiB / PAGE_SIZE), GiB);
}

static void test_alloc_bad_arguments(void **state)
{
	(void)state;
	assert_int_equal(page_alloc_add(&pa, 0, 1024), 0);
	alloc_fails(0, 1);
	alloc_fails(1, 0);
	alloc_fails(1, 3);
	alloc_fails(1, 6);
	alloc_fails(1, 1ULL << 52); /* 2^64 bytes */
	alloc_fails(1, 1ULL << 63);
	alloc_fails(1, UINT64_MAX);
	alloc_fails(UINT64_MAX, 1);
	/* The largest representable alignment is accepted; page 0 satisfies it. */
	assert_int_equal(alloc_ok(1, 1ULL << 51), 0);
}

static void test_exhaustion(void **state)
{
	(void)state;
	assert_int_equal(page_alloc_add(&pa, 0x100000, 3), 0);
	assert_int_equal(page_alloc_add(&pa, 0x200000, 5), 0);
	alloc_fails(6, 1);
	assert_int_equal(alloc_ok(5, 1), 0x200000);
	assert_int_equal(alloc_ok(3, 1), 0x100000);
	assert_int_equal(pa.count, 0);
	assert_int_equal(pa.free_pages, 0);
	alloc_fails(1, 1);
	assert_int_equal(page_alloc_free(&pa, 0x200000, 5), 0);
	assert_int_equal(alloc_ok(5, 1), 0x200000);
}

static void test_split_and_merge(void **state)
{
	(void)state;
	assert_int_equal(page_alloc_add(&pa, 0x100000, 16), 0);
	assert_int_equal(alloc_ok(4, 4), 0x100000);
	assert_int_equal(alloc_ok(4, 4), 0x104000);
	assert_int_equal(alloc_ok(4, 4), 0x108000);
	expect_extent(0, 0x10c000, 4);

	/* Freeing the middle block opens a second extent... */
	assert_int_equal(page_alloc_free(&pa, 0x104000, 4), 0);
	assert_int_equal(pa.count, 2);
	expect_extent(0, 0x104000, 4);
	/* ...a block touching only the extent after it grows that one down... */
	assert_int_equal(page_alloc_free(&pa, 0x100000, 2), 0);
	assert_int_equal(pa.count, 3);
	assert_int_equal(page_alloc_free(&pa, 0x102000, 2), 0);
	assert_int_equal(pa.count, 2);
	expect_extent(0, 0x100000, 8);
	/* ...and the last one joins both sides into the original extent. */
	assert_int_equal(page_alloc_free(&pa, 0x108000, 4), 0);
	assert_int_equal(pa.count, 1);
	expect_extent(0, 0x100000, 16);
	assert_int_equal(pa.free_pages, 16);
}

static void test_partial_free(void **state)
{
	(void)state;
	/* Pages of one allocation may be given back piecemeal. */
	assert_int_equal(page_alloc_add(&pa, 0x100000, 8), 0);
	assert_int_equal(alloc_ok(8, 1), 0x100000);
	assert_int_equal(page_alloc_free(&pa, 0x107000, 1), 0);
	assert_int_equal(page_alloc_free(&pa, 0x100000, 1), 0);
	assert_int_equal(pa.count, 2);
	assert_int_equal(alloc_ok(1, 1), 0x100000);
	assert_int_equal(pa.free_pages, 1);
}

static void test_double_free(void **state)
{
	(void)state;
	assert_int_equal(page_alloc_add(&pa, 0x100000, 16), 0);
	assert_int_equal(alloc_ok(8, 1), 0x100000);
	free_fails(0x108000, 1);  /* free already */
	free_fails(0x107000, 2);  /* last page is free */
	free_fails(0x100000, 16); /* whole range, half free */
	assert_int_equal(page_alloc_free(&pa, 0x100000, 8), 0);
	free_fails(0x100000, 8);  /* again */
	free_fails(0x104000, 1);
}

static void test_free_not_owned(void **state)
{
	(void)state;
	assert_int_equal(page_alloc_add(&pa, 0x100000, 16), 0);
	assert_int_equal(page_alloc_add(&pa, 0x200000, 16), 0);
	assert_int_equal(alloc_ok(16, 1), 0x100000);

	/* Right after, and right before, free memory that was added. */
	free_fails(0x210000, 1);
	free_fails(0x1ff000, 1);
	/* Right after an allocation, in memory never added. */
	free_fails(0x110000, 1);
	/* Straddling the end of an added range. */
	free_fails(0x10f000, 2);
	free_fails(0xff000, 2);
	/* Far from anything. */
	free_fails(0x0, 1);
	free_fails(64 * GiB, 1);
}

static void test_free_bad_arguments(void **state)
{
	(void)state;
	assert_int_equal(page_alloc_add(&pa, 0x100000, 16), 0);
	assert_int_equal(alloc_ok(16, 1), 0x100000);
	free_fails(0x100800, 1);
	free_fails(0x100000, 0);
	free_fails(UINT64_MAX - 0xfff, 1);
	free_fails(0x100000, UINT64_MAX >> 12);
	free_fails(0x100000, (1ULL << 52) + 1);
	assert_int_equal(page_alloc_free(&pa, 0x100000, 16), 0);
}

/*
 * With the table full, an allocation that would cut an extent in three is
 * served from the next extent that needs no new slot, and a free that opens
 * a new extent is refused.
 */
static void test_full_table(void **state)
{
	(void)state;
	/* 128 extents of 4 pages at 64 KiB + 4 KiB steps: none 8 KiB aligned... */
	for (unsigned i = 0; i < PAGE_ALLOC_MAX_EXTENTS; i++)
		assert_int_equal(page_alloc_add(&pa, i * 0x10000ULL + 0x1000, 4), 0);
	assert_int_equal(pa.count, PAGE_ALLOC_MAX_EXTENTS);

	/* ...so a page aligned to 8 KiB falls in the middle of every one. */
	alloc_fails(1, 2);
	/* A 4 KiB page comes off the front of the first without a new slot. */
	assert_int_equal(alloc_ok(1, 1), 0x1000);
	/* Now the first extent starts aligned and can be cut at its front. */
	assert_int_equal(alloc_ok(1, 2), 0x2000);
	assert_int_equal(pa.count, PAGE_ALLOC_MAX_EXTENTS);

	/* 0x1000 touches no free page (0x2000 is still taken): no slot for it. */
	free_fails(0x1000, 1);
	assert_int_equal(page_alloc_free(&pa, 0x2000, 1), 0);
	assert_int_equal(page_alloc_free(&pa, 0x1000, 1), 0);
	expect_extent(0, 0x1000, 4);

	/* An extent used up entirely frees its slot for a split elsewhere. */
	assert_int_equal(alloc_ok(4, 1), 0x1000);
	assert_int_equal(pa.count, PAGE_ALLOC_MAX_EXTENTS - 1);
	assert_int_equal(alloc_ok(1, 2), 0x12000);
	assert_int_equal(pa.count, PAGE_ALLOC_MAX_EXTENTS);
	expect_extent(0, 0x11000, 1);
	expect_extent(1, 0x13000, 2);
}

/*
 * Random operations checked against a page bitmap. The model derives the
 * expected free extents and every expected failure (including a full
 * extent table) from the bitmap alone.
 */
#define MODEL_BASE (4 * GiB)
#define MODEL_PAGES 2048
#define MODEL_ALLOCS 512

static bool owned[MODEL_PAGES];
static bool is_free[MODEL_PAGES];

struct block {
	uint64_t first, pages;
};

static struct block blocks[MODEL_ALLOCS];
static unsigned nblocks;
static uint32_t rng_state;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static unsigned runs(const bool *bits)
{
	unsigned n = 0;

	for (unsigned i = 0; i < MODEL_PAGES; i++)
		if (bits[i] && (i == 0 || !bits[i - 1]))
			n++;
	return n;
}

static void set(bool *bits, uint64_t first, uint64_t pages, bool v)
{
	for (uint64_t i = first; i < first + pages; i++)
		bits[i] = v;
}

static bool all(const bool *bits, uint64_t first, uint64_t pages, bool v)
{
	for (uint64_t i = first; i < first + pages; i++)
		if (bits[i] != v)
			return false;
	return true;
}

/* Applies the change to the model if it stays within the table limits. */
static bool model_apply(uint64_t first, uint64_t pages, bool add)
{
	static bool saved_owned[MODEL_PAGES], saved_free[MODEL_PAGES];

	memcpy(saved_owned, owned, sizeof(owned));
	memcpy(saved_free, is_free, sizeof(is_free));
	if (add)
		set(owned, first, pages, true);
	set(is_free, first, pages, true);
	if (runs(owned) <= PAGE_ALLOC_MAX_EXTENTS &&
	    runs(is_free) <= PAGE_ALLOC_MAX_EXTENTS)
		return true;
	memcpy(owned, saved_owned, sizeof(owned));
	memcpy(is_free, saved_free, sizeof(is_free));
	return false;
}

/* The lowest start the allocator must pick, or -1 when it must fail. */
static int64_t model_alloc(uint64_t pages, uint64_t align)
{
	for (uint64_t i = 0; i < MODEL_PAGES; i++) {
		if (!is_free[i] || (i > 0 && is_free[i - 1]))
			continue;
		/* i starts a free run; only its first aligned page is a candidate. */
		uint64_t run_end = i;
		uint64_t start = (i + align - 1) / align * align;

		while (run_end < MODEL_PAGES && is_free[run_end])
			run_end++;
		if (start + pages > run_end)
			continue;
		set(is_free, start, pages, false);
		if (runs(is_free) <= PAGE_ALLOC_MAX_EXTENTS)
			return (int64_t)start;
		set(is_free, start, pages, true);
	}
	return -1;
}

static void check_model(void)
{
	unsigned n = 0;
	uint64_t free_pages = 0, total_pages = 0;

	for (unsigned i = 0; i < MODEL_PAGES; i++) {
		free_pages += is_free[i];
		total_pages += owned[i];
		if (!is_free[i] || (i > 0 && is_free[i - 1]))
			continue;
		unsigned end = i;

		while (end < MODEL_PAGES && is_free[end])
			end++;
		expect_extent(n, MODEL_BASE + i * PAGE_SIZE, end - i);
		n++;
	}
	assert_int_equal(pa.count, n);
	assert_int_equal(pa.free_pages, free_pages);
	assert_int_equal(pa.total_pages, total_pages);
}

static void random_range(uint64_t *first, uint64_t *pages, unsigned max_pages)
{
	*pages = 1 + rng() % max_pages;
	*first = rng() % (MODEL_PAGES - *pages + 1);
}

static void test_random_against_bitmap(void **state)
{
	unsigned outcomes[3][2] = { { 0 } }; /* [op][succeeded] */

	(void)state;
	memset(owned, 0, sizeof(owned));
	memset(is_free, 0, sizeof(is_free));
	nblocks = 0;
	rng_state = 0x2545f491;

	for (unsigned step = 0; step < 6000; step++) {
		unsigned op = rng() % 100;
		uint64_t first, pages;
		bool expect;
		int rc;

		if (op < 10) {
			random_range(&first, &pages, 64);
			expect = all(owned, first, pages, false) &&
				 model_apply(first, pages, true);
			rc = page_alloc_add(&pa, MODEL_BASE + first * PAGE_SIZE, pages);
			op = 0;
		} else if (op < 55 && nblocks < MODEL_ALLOCS) {
			uint64_t align = 1ULL << (rng() % 6);
			uint64_t base = 0;
			int64_t start;

			pages = 1 + rng() % 12;
			start = model_alloc(pages, align);
			expect = start >= 0;
			rc = page_alloc_alloc(&pa, pages, align, &base);
			if (expect && rc == 0) {
				assert_int_equal(base, MODEL_BASE + (uint64_t)start * PAGE_SIZE);
				blocks[nblocks++] = (struct block){ (uint64_t)start, pages };
			}
			op = 1;
		} else {
			if (nblocks && rng() % 8) {
				/* All or part of a live allocation. */
				unsigned b = rng() % nblocks;
				uint64_t skip = rng() % blocks[b].pages;

				first = blocks[b].first + skip;
				pages = blocks[b].pages - skip;
				blocks[b].pages = skip;
				if (!skip)
					blocks[b] = blocks[--nblocks];
			} else {
				/* Anything: double frees, memory never added. */
				random_range(&first, &pages, 16);
			}
			expect = all(owned, first, pages, true) &&
				 all(is_free, first, pages, false) &&
				 model_apply(first, pages, false);
			before = pa;
			rc = page_alloc_free(&pa, MODEL_BASE + first * PAGE_SIZE, pages);
			if (rc)
				assert_memory_equal(&pa, &before, sizeof(pa));
			op = 2;
		}
		assert_int_equal(rc, expect ? 0 : -1);
		outcomes[op][rc == 0]++;
		check_model();
	}

	/* Every operation both succeeded and failed, on a well-fragmented table. */
	for (unsigned op = 0; op < 3; op++) {
		assert_true(outcomes[op][0] > 0);
		assert_true(outcomes[op][1] > 0);
	}
	assert_true(pa.count > PAGE_ALLOC_MAX_EXTENTS / 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_init, setup),
		cmocka_unit_test_setup(test_add_merges, setup),
		cmocka_unit_test_setup(test_add_errors, setup),
		cmocka_unit_test_setup(test_add_table_full, setup),
		cmocka_unit_test_setup(test_alloc_lowest_first, setup),
		cmocka_unit_test_setup(test_alloc_2m_aligned, setup),
		cmocka_unit_test_setup(test_alloc_alignment_past_extent, setup),
		cmocka_unit_test_setup(test_alloc_bad_arguments, setup),
		cmocka_unit_test_setup(test_exhaustion, setup),
		cmocka_unit_test_setup(test_split_and_merge, setup),
		cmocka_unit_test_setup(test_partial_free, setup),
		cmocka_unit_test_setup(test_double_free, setup),
		cmocka_unit_test_setup(test_free_not_owned, setup),
		cmocka_unit_test_setup(test_free_bad_arguments, setup),
		cmocka_unit_test_setup(test_full_table, setup),
		cmocka_unit_test_setup(test_random_against_bitmap, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
