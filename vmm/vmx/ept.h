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

/*
 * The same tables with 4-KiB pages only, none of them present: a restore
 * that loads RAM as the guest first touches it (vmm/lazy_restore.h)
 * shows each page once loaded, with vmx_ept_show.
 */
int vmx_ept_build_hidden(struct page_alloc *pa, uint64_t ram_base, uint64_t ram_bytes,
			 uint64_t *pml4_pa);

/*
 * Makes the pages of [gpa, gpa + bytes), hidden by vmx_ept_build_hidden,
 * present. No INVEPT is needed: a not-present entry is never cached, and
 * an EPT violation drops what a retried access would use (SDM 28.3.3.1,
 * 28.3.3.4).
 */
void vmx_ept_show(uint64_t pml4_pa, uint64_t gpa, uint64_t bytes);

/*
 * Sets the 4-KiB EPT entry of gpa (outside RAM) to entry, creating the
 * tables down to it; -1 when memory for them ran out or RAM's large page
 * covers gpa. The page entry maps is not the EPT's: vmx_ept_destroy
 * leaves it. Removing a present entry needs an INVEPT after.
 */
int vmx_ept_set_4k(struct page_alloc *pa, uint64_t pml4_pa, uint64_t gpa, uint64_t entry);

/* Gives back the PML4 at pml4_pa and every table under it. */
void vmx_ept_destroy(struct page_alloc *pa, uint64_t pml4_pa);

#endif
