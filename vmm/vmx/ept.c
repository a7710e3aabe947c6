/*
 * EPT for one VM (SDM Vol. 3C, 28.3): guest-physical [0, RAM size) maps to
 * the VM's host RAM block, write-back, 2-MiB pages where both sides are
 * aligned and 4-KiB pages for a tail. Nothing else is mapped: the
 * hypervisor, other VMs and device MMIO are unreachable, and any access
 * outside RAM exits as an EPT violation.
 */
#include "vmm/vmx/ept.h"

#include "vmm/page_alloc.h"
#include "x86/paging.h"
#include "vmm/vmx/vmx_defs.h"

#include <string.h>

static uint64_t *table(uint64_t pa)
{
	return (uint64_t *)(uintptr_t)pa;
}

/* The next-level table under entry e, created on first use. */
static int next_level(struct page_alloc *pa, uint64_t *e, uint64_t *next_pa)
{
	if (!(*e & EPT_RWX)) {
		uint64_t page;
		if (page_alloc_alloc(pa, 1, 1, &page))
			return -1;
		memset(table(page), 0, PAGE_SIZE);
		*e = page | EPT_RWX;
	}
	*next_pa = *e & PTE_ADDR_MASK;
	return 0;
}

/* PML4 (level 4) down to the page table (level 1). */
#define EPT_LEVELS 4

/*
 * Frees the table at table_pa of the given level and every table under
 * it. Leaves (the page table's entries, 2-MiB pages in a page directory)
 * map guest RAM, which is not the EPT's to free.
 */
static void free_tables(struct page_alloc *pa, uint64_t table_pa, unsigned level)
{
	if (level > 1)
		for (unsigned i = 0; i < 512; i++) {
			uint64_t e = table(table_pa)[i];
			if ((e & EPT_RWX) && !(e & EPT_LARGE))
				free_tables(pa, e & PTE_ADDR_MASK, level - 1);
		}
	page_alloc_free(pa, table_pa, 1);
}

void vmx_ept_destroy(struct page_alloc *pa, uint64_t pml4_pa)
{
	free_tables(pa, pml4_pa, EPT_LEVELS);
}

/*
 * Tables for [0, ram_bytes), each leaf's access leaf_access: EPT_RWX, or
 * none for RAM hidden until a restore has loaded it (an entry with bits
 * 2:0 clear is not present whatever its other bits, SDM 28.2.2).
 */
static int build(struct page_alloc *pa, uint64_t ram_base, uint64_t ram_bytes, bool large_pages,
		 uint64_t leaf_access, uint64_t *pml4_pa)
{
	const uint64_t leaf = leaf_access | ((uint64_t)MEMTYPE_WB << EPT_MEMTYPE_SHIFT);
	uint64_t pml4;

	if (page_alloc_alloc(pa, 1, 1, &pml4))
		return -1;
	memset(table(pml4), 0, PAGE_SIZE);

	for (uint64_t gpa = 0; gpa < ram_bytes;) {
		uint64_t pdpt, pd, pt;

		if (next_level(pa, &table(pml4)[(gpa >> 39) & 511], &pdpt) ||
		    next_level(pa, &table(pdpt)[(gpa >> 30) & 511], &pd))
			goto out_of_memory;
		uint64_t *pde = &table(pd)[(gpa >> 21) & 511];
		/* A 2-MiB leaf needs both sides aligned and the CPU's support (SDM 28.2.2). */
		if (large_pages && ram_bytes - gpa >= SIZE_2M && !(gpa & (SIZE_2M - 1)) &&
		    !((ram_base + gpa) & (SIZE_2M - 1))) {
			*pde = (ram_base + gpa) | leaf | EPT_LARGE;
			gpa += SIZE_2M;
			continue;
		}
		if (next_level(pa, pde, &pt))
			goto out_of_memory;
		table(pt)[(gpa >> 12) & 511] = (ram_base + gpa) | leaf;
		gpa += SIZE_4K;
	}
	*pml4_pa = pml4;
	return 0;

out_of_memory:
	vmx_ept_destroy(pa, pml4);
	return -1;
}

int vmx_ept_build(struct page_alloc *pa, uint64_t ram_base, uint64_t ram_bytes,
		  bool large_pages, uint64_t *pml4_pa)
{
	return build(pa, ram_base, ram_bytes, large_pages, EPT_RWX, pml4_pa);
}

int vmx_ept_build_hidden(struct page_alloc *pa, uint64_t ram_base, uint64_t ram_bytes,
			 uint64_t *pml4_pa)
{
	return build(pa, ram_base, ram_bytes, false, 0, pml4_pa);
}

void vmx_ept_show(uint64_t pml4_pa, uint64_t gpa, uint64_t bytes)
{
	for (uint64_t end = gpa + bytes; gpa < end; gpa += SIZE_4K) {
		uint64_t t = pml4_pa;
		for (unsigned shift = 39; shift > 12; shift -= 9)
			t = table(t)[(gpa >> shift) & 511] & PTE_ADDR_MASK;
		table(t)[(gpa >> 12) & 511] |= EPT_RWX;
	}
}

int vmx_ept_set_4k(struct page_alloc *pa, uint64_t pml4_pa, uint64_t gpa, uint64_t entry)
{
	uint64_t t = pml4_pa;

	for (unsigned shift = 39; shift > 12; shift -= 9) {
		uint64_t *e = &table(t)[(gpa >> shift) & 511];
		/* RAM mapped by a large page (bit 7 is 0 in a PML4 entry): no table to go in. */
		if (*e & EPT_LARGE)
			return -1;
		if (next_level(pa, e, &t))
			return -1;
	}
	table(t)[(gpa >> 12) & 511] = entry;
	return 0;
}
