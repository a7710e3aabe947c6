/*
 * EPT for one VM (SDM Vol. 3C, 28.3): guest-physical [0, RAM size) maps to
 * the VM's host RAM block, write-back, 2-MiB pages where both sides are
 * aligned and 4-KiB pages for a tail. Nothing else is mapped: the
 * hypervisor, other VMs and device MMIO are unreachable, and any access
 * outside RAM exits as an EPT violation.
 */
#include "vmm/page_alloc.h"
#include "vmm/vm.h"
#include "x86/paging.h"
#include "vmm/vmx/vmx_defs.h"

#include <string.h>

#define EPT_LEAF_WB (EPT_RWX | ((uint64_t)MEMTYPE_WB << EPT_MEMTYPE_SHIFT))

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

int vmx_ept_build(struct vm *vm, struct page_alloc *pa, bool large_pages, uint64_t *pml4_pa)
{
	uint64_t ram = vm->boot->ram_bytes, host = vm->boot->ram_base;
	uint64_t pml4;

	if (page_alloc_alloc(pa, 1, 1, &pml4))
		return -1;
	memset(table(pml4), 0, PAGE_SIZE);

	for (uint64_t gpa = 0; gpa < ram;) {
		uint64_t pdpt, pd, pt;

		if (next_level(pa, &table(pml4)[(gpa >> 39) & 511], &pdpt) ||
		    next_level(pa, &table(pdpt)[(gpa >> 30) & 511], &pd))
			return -1;
		uint64_t *pde = &table(pd)[(gpa >> 21) & 511];
		/* A 2-MiB leaf needs both sides aligned and the CPU's support (SDM 28.2.2). */
		if (large_pages && ram - gpa >= SIZE_2M && !(gpa & (SIZE_2M - 1)) &&
		    !((host + gpa) & (SIZE_2M - 1))) {
			*pde = (host + gpa) | EPT_LEAF_WB | EPT_LARGE;
			gpa += SIZE_2M;
			continue;
		}
		if (next_level(pa, pde, &pt))
			return -1;
		table(pt)[(gpa >> 12) & 511] = (host + gpa) | EPT_LEAF_WB;
		gpa += SIZE_4K;
	}
	*pml4_pa = pml4;
	return 0;
}
