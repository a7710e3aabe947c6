#include "vmm/page_alloc.h"

#include <stdbool.h>
#include <string.h>

#define PAGE_SHIFT 12

_Static_assert(PAGE_SIZE == 1ULL << PAGE_SHIFT, "PAGE_SHIFT matches PAGE_SIZE");

static uint64_t extent_end(const struct page_extent *e)
{
	return e->base + (e->pages << PAGE_SHIFT);
}

/*
 * Every extent is checked here on the way in, so that end addresses of
 * stored extents can be computed everywhere else without overflow checks.
 */
static bool range_valid(uint64_t base, uint64_t pages)
{
	return !(base & (PAGE_SIZE - 1)) && pages &&
	       pages <= (UINT64_MAX - base) >> PAGE_SHIFT;
}

/* Index of the first extent whose base is above base. */
static unsigned upper_bound(const struct page_extent *tab, unsigned count,
			    uint64_t base)
{
	unsigned lo = 0, hi = count;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (tab[mid].base <= base)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Where a new extent goes in a table, worked out before anything changes. */
struct slot {
	unsigned index;
	bool join_prev, join_next;
};

/*
 * Finds the slot for e in tab. False if e overlaps an extent there, or if
 * it touches neither neighbour and the table has no room for it.
 */
static bool find_slot(const struct page_extent *tab, unsigned count,
		      const struct page_extent *e, struct slot *s)
{
	unsigned i = upper_bound(tab, count, e->base);
	uint64_t end = extent_end(e);
	uint64_t prev_end = i > 0 ? extent_end(&tab[i - 1]) : 0;

	if ((i > 0 && prev_end > e->base) || (i < count && end > tab[i].base))
		return false;
	s->index = i;
	s->join_prev = i > 0 && prev_end == e->base;
	s->join_next = i < count && end == tab[i].base;
	return s->join_prev || s->join_next || count < PAGE_ALLOC_MAX_EXTENTS;
}

static void open_gap(struct page_extent *tab, unsigned *count, unsigned i)
{
	for (unsigned j = *count; j > i; j--)
		tab[j] = tab[j - 1];
	(*count)++;
}

static void close_gap(struct page_extent *tab, unsigned *count, unsigned i)
{
	(*count)--;
	for (unsigned j = i; j < *count; j++)
		tab[j] = tab[j + 1];
}

static void insert_at(struct page_extent *tab, unsigned *count,
		      const struct slot *s, const struct page_extent *e)
{
	unsigned i = s->index;

	if (s->join_prev && s->join_next) {
		tab[i - 1].pages += e->pages + tab[i].pages;
		close_gap(tab, count, i);
	} else if (s->join_prev) {
		tab[i - 1].pages += e->pages;
	} else if (s->join_next) {
		tab[i].base = e->base;
		tab[i].pages += e->pages;
	} else {
		open_gap(tab, count, i);
		tab[i] = *e;
	}
}

void page_alloc_init(struct page_alloc *pa)
{
	/* All of it, unused slots too, so two states compare equal with memcmp. */
	memset(pa, 0, sizeof(*pa));
}

static int add(struct page_alloc *pa, uint64_t base, uint64_t pages)
{
	struct page_extent e = { .base = base, .pages = pages };
	struct slot free_slot, owned_slot;

	/*
	 * Free extents are a subset of owned ones, so checking overlap
	 * against the owned table covers both. Both slots are found before
	 * either table changes, so a failure leaves no half-added range.
	 */
	if (!range_valid(base, pages) ||
	    !find_slot(pa->owned, pa->owned_count, &e, &owned_slot) ||
	    !find_slot(pa->free, pa->count, &e, &free_slot))
		return -1;
	insert_at(pa->owned, &pa->owned_count, &owned_slot, &e);
	insert_at(pa->free, &pa->count, &free_slot, &e);
	pa->free_pages += pages;
	pa->total_pages += pages;
	return 0;
}

/*
 * Carves [start, start + pages) out of free[i], which contains it. False,
 * with nothing changed, when a middle cut needs a slot the table lacks.
 */
static bool carve(struct page_alloc *pa, unsigned i, uint64_t start, uint64_t pages)
{
	struct page_extent *e = &pa->free[i];
	uint64_t lead = (start - e->base) >> PAGE_SHIFT;
	uint64_t tail = e->pages - lead - pages;

	if (lead && tail) {
		if (pa->count == PAGE_ALLOC_MAX_EXTENTS)
			return false;
		open_gap(pa->free, &pa->count, i + 1);
		pa->free[i + 1].base = start + (pages << PAGE_SHIFT);
		pa->free[i + 1].pages = tail;
		e->pages = lead;
	} else if (lead) {
		e->pages = lead;
	} else if (tail) {
		e->base += pages << PAGE_SHIFT;
		e->pages = tail;
	} else {
		close_gap(pa->free, &pa->count, i);
	}
	return true;
}

static int alloc(struct page_alloc *pa, uint64_t pages, uint64_t align_pages, uint64_t *base)
{
	/* Bounding align_pages keeps the alignment in bytes within 64 bits. */
	if (!pages || !align_pages || (align_pages & (align_pages - 1)) ||
	    align_pages > UINT64_MAX >> PAGE_SHIFT)
		return -1;

	uint64_t align = align_pages << PAGE_SHIFT;

	for (unsigned i = 0; i < pa->count; i++) {
		const struct page_extent *e = &pa->free[i];
		uint64_t misalign = e->base & (align - 1);
		uint64_t lead = misalign ? (align - misalign) >> PAGE_SHIFT : 0;

		if (lead > e->pages || pages > e->pages - lead)
			continue;

		uint64_t start = e->base + (lead << PAGE_SHIFT);

		if (carve(pa, i, start, pages)) {
			pa->free_pages -= pages;
			*base = start;
			return 0;
		}
	}
	return -1;
}

static int release(struct page_alloc *pa, uint64_t base, uint64_t pages)
{
	struct page_extent e = { .base = base, .pages = pages };
	struct slot s;

	if (!range_valid(base, pages))
		return -1;

	/* Owned extents are merged, so anything we handed out lies in one. */
	unsigned i = upper_bound(pa->owned, pa->owned_count, base);

	if (i == 0 || extent_end(&pa->owned[i - 1]) < extent_end(&e))
		return -1;
	if (!find_slot(pa->free, pa->count, &e, &s))
		return -1;
	insert_at(pa->free, &pa->count, &s, &e);
	pa->free_pages += pages;
	return 0;
}

int page_alloc_add(struct page_alloc *pa, uint64_t base, uint64_t pages)
{
	spin_lock(&pa->lock);
	int ret = add(pa, base, pages);
	spin_unlock(&pa->lock);
	return ret;
}

int page_alloc_alloc(struct page_alloc *pa, uint64_t pages, uint64_t align_pages,
		     uint64_t *base)
{
	spin_lock(&pa->lock);
	int ret = alloc(pa, pages, align_pages, base);
	spin_unlock(&pa->lock);
	return ret;
}

int page_alloc_free(struct page_alloc *pa, uint64_t base, uint64_t pages)
{
	spin_lock(&pa->lock);
	int ret = release(pa, base, pages);
	spin_unlock(&pa->lock);
	return ret;
}
