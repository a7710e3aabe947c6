/* 4-level paging entries (Intel SDM Vol. 3A, 4.5 "4-Level Paging"). */
#ifndef X86_PAGING_H
#define X86_PAGING_H

#include <stdint.h>

typedef uint64_t pte_t;
_Static_assert(sizeof(pte_t) == 8, "SDM 4.5: 64-bit entries");

#define PTE_PRESENT (1ULL << 0)
#define PTE_WRITABLE (1ULL << 1)
#define PTE_USER (1ULL << 2)
/* PS: a 2-MiB page in a PDE (4-MiB with 32-bit paging), 1-GiB in a PDPTE */
#define PTE_LARGE (1ULL << 7)
/* PWT and PCD: with the default PAT, both set select UC, whatever the MTRRs say (SDM 11.12.3). */
#define PTE_PWT (1ULL << 3)
#define PTE_PCD (1ULL << 4)
#define PTE_NX (1ULL << 63)   /* execute-disable, with EFER.NXE (SDM 4.6) */
#define PTE_ADDR_MASK 0x000ffffffffff000ULL

#define PAGE_TABLE_ENTRIES 512
#define SIZE_4K (1ULL << 12)
#define SIZE_2M (1ULL << 21)
#define SIZE_1G (1ULL << 30)
#define SIZE_512G (1ULL << 39)

#endif
