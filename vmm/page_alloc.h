/*
 * Physical page allocator of the hypervisor after ExitBootServices: page
 * tables, VMCS regions, EPT tables and guest RAM all come from here. It only
 * keeps books (it never touches the memory it hands out), so it is tested
 * on the host in full.
 *
 * Free memory is a sorted array of extents; a second array remembers every
 * range ever added, so that a free of memory the allocator never owned is
 * refused instead of silently turning it into allocatable RAM.
 */
#ifndef VMM_PAGE_ALLOC_H
#define VMM_PAGE_ALLOC_H

#include <stdint.h>

#include "lib/spinlock.h"

#define PAGE_SIZE 4096ULL
#define PAGE_ALLOC_MAX_EXTENTS 128

struct page_extent {
	uint64_t base;
	uint64_t pages;
};

/*
 * Both arrays are sorted by base, never overlap and never hold two
 * touching extents (they are merged).
 */
struct page_alloc {
	struct page_extent free[PAGE_ALLOC_MAX_EXTENTS];
	unsigned count;
	uint64_t free_pages;
	uint64_t total_pages;
	struct page_extent owned[PAGE_ALLOC_MAX_EXTENTS];
	unsigned owned_count;
	struct spinlock lock; /* taken by add, alloc and free */
};

void page_alloc_init(struct page_alloc *pa);

/*
 * Adds [base, base + pages * 4K) as free memory. -1 if base is unaligned,
 * pages is 0, the range overflows, overlaps memory added before (free or
 * allocated), or no extent slot is left.
 */
int page_alloc_add(struct page_alloc *pa, uint64_t base, uint64_t pages);

/*
 * Allocates pages contiguous pages whose base is a multiple of
 * align_pages * 4K (align_pages a power of two), at the lowest address
 * where that is possible. An extent whose carving would need a slot the
 * full table lacks is passed over for the next one. Returns 0 and *base,
 * or -1 with nothing changed.
 */
int page_alloc_alloc(struct page_alloc *pa, uint64_t pages, uint64_t align_pages,
		     uint64_t *base);

/*
 * Returns pages to the free pool. -1 with nothing changed if base is
 * unaligned, the range overflows, is not wholly inside one added range,
 * any part of it is already free (double free), or no slot is left.
 */
int page_alloc_free(struct page_alloc *pa, uint64_t base, uint64_t pages);

#endif
