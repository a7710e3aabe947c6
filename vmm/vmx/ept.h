/* EPT tables for one VM (vmm/vmx/ept.c), from the page pool. */
#ifndef VMM_VMX_EPT_H
#define VMM_VMX_EPT_H

#include <stdbool.h>
#include <stdint.h>

struct page_alloc;

/*
 * Tables mapping guest-physical [0, ram_bytes) to host [ram_base, ...),
 * with 2-MiB pages where allowed; the PML4's address in pml4_pa. On
 * failure every table built so far goes back to pa.
 */
int vmx_ept_build(struct page_alloc *pa, uint64_t ram_base, uint64_t ram_bytes,
		  bool large_pages, uint64_t *pml4_pa);

/* Gives back the PML4 at pml4_pa and every table under it. */
void vmx_ept_destroy(struct page_alloc *pa, uint64_t pml4_pa);

#endif
