#include "vmm/guest_walk.h"

#include "x86/cpu.h"
#include "x86/paging.h"

#include <string.h>

/*
 * Entries use the PTE_* bits of x86/paging.h in every mode: P, R/W, U/S
 * and PS sit at the same positions in the 32-bit entries of 4.3.
 */

/* PAE PDPTE bits 2:1 and 8:5 are reserved (SDM Vol. 3A, 4.4.1). */
#define PDPTE_RSVD 0x1e6ULL
/* 32-bit paging, 4-MiB page: bit 21 reserved, bits 20:13 are PA bits 39:32 (4.3). */
#define PDE4M_RSVD_21 (1ULL << 21)
#define PDE4M_HIGH_SHIFT 13
#define PSE36_MAX_PA 40

#define PAGE_SHIFT 12
#define MIN_MAXPHYADDR 32
#define MAX_MAXPHYADDR 52

/* Bits lo..hi (inclusive); empty when hi < lo. */
static uint64_t bits(unsigned hi, unsigned lo)
{
	if (hi < lo)
		return 0;
	uint64_t upto = hi >= 63 ? ~0ULL : (1ULL << (hi + 1)) - 1;
	return upto & ~((1ULL << lo) - 1);
}

/* One paging mode's shape (SDM Vol. 3A, 4.3 to 4.5). */
struct shape {
	unsigned levels;    /* tables walked below the root (PAE: below the PDPTE) */
	unsigned width;     /* entry bytes */
	unsigned index_bits;
	unsigned large_max; /* highest level whose PS makes a page (0: none) */
	uint64_t rsvd;      /* reserved in every entry */
	uint64_t addr;      /* table and page address bits */
};

struct rights {
	bool rw, us, xd;
};

static int read_entry(const struct guest_mem *mem, uint64_t gpa, unsigned width, uint64_t *entry)
{
	uint8_t b[8];

	if (mem->read_gpa(mem->ctx, gpa, b, width))
		return GW_ERR_MEMORY;
	*entry = 0;
	for (unsigned i = 0; i < width; i++)
		*entry |= (uint64_t)b[i] << (8 * i);
	return GW_OK;
}

/*
 * SDM Vol. 3A, 4.7: I/D is reported for fetches only where execute
 * protection exists (SMEP, or NXE with PAE-format entries).
 */
static int page_fault(const struct guest_paging *pg, unsigned access, uint32_t cause,
		      uint32_t *error_code)
{
	uint32_t err = cause | (access & (PF_ERR_W | PF_ERR_U));

	if ((access & GW_ACCESS_FETCH) &&
	    ((pg->cr4 & CR4_SMEP) || ((pg->cr4 & CR4_PAE) && (pg->efer & EFER_NXE))))
		err |= PF_ERR_ID;
	*error_code = err;
	return GW_PAGE_FAULT;
}

/* SDM Vol. 3A, 4.6: the rights the whole walk grants against the access. */
static bool allowed(const struct guest_paging *pg, const struct rights *r, unsigned access)
{
	bool user = access & GW_ACCESS_USER;

	if (user && !r->us)
		return false;
	if ((access & GW_ACCESS_WRITE) && !r->rw && (user || (pg->cr0 & CR0_WP)))
		return false;
	if (access & GW_ACCESS_FETCH) {
		if (r->xd)
			return false;
		if (!user && r->us && (pg->cr4 & CR4_SMEP))
			return false;
	}
	return true;
}

/*
 * The base of a large page and the bits its entry must have clear beyond
 * the shape's: PAT sits at bit 12, the bits up to the page size are
 * reserved; 32-bit paging keeps PA bits 39:32 there instead (PSE-36).
 */
static uint64_t large_page(const struct shape *s, uint64_t entry, unsigned shift,
			   unsigned maxphy, uint64_t *rsvd)
{
	if (s->width == 4) {
		unsigned m = maxphy < PSE36_MAX_PA ? maxphy : PSE36_MAX_PA;
		*rsvd = PDE4M_RSVD_21 | bits(20, PDE4M_HIGH_SHIFT + m - 32);
		return (entry & bits(31, 22)) | ((entry >> PDE4M_HIGH_SHIFT) & 0xff) << 32;
	}
	*rsvd = bits(shift - 1, PAGE_SHIFT + 1);
	return entry & s->addr & ~((1ULL << shift) - 1);
}

static int walk_tables(const struct guest_paging *pg, const struct guest_mem *mem,
		       const struct shape *s, uint64_t table, uint64_t gla, unsigned access,
		       unsigned maxphy, uint64_t *gpa, uint32_t *error_code)
{
	struct rights r = { true, true, false };
	bool nxe = pg->efer & EFER_NXE;

	for (unsigned level = s->levels;; level--) {
		unsigned shift = PAGE_SHIFT + s->index_bits * (level - 1);
		uint64_t index = (gla >> shift) & ((1ULL << s->index_bits) - 1);
		uint64_t entry, rsvd = s->rsvd, base;
		int rc = read_entry(mem, table + index * s->width, s->width, &entry);

		if (rc)
			return rc;
		if (!(entry & PTE_PRESENT))
			return page_fault(pg, access, 0, error_code);
		bool leaf = level == 1 || (level <= s->large_max && (entry & PTE_LARGE));
		/* PS is reserved in PML5Es and PML4Es (4.5.4); 32-bit paging
		 * without CR4.PSE ignores it (4.3). */
		if (!leaf && s->width == 8 && (entry & PTE_LARGE))
			return page_fault(pg, access, PF_ERR_P | PF_ERR_RSVD, error_code);
		if (leaf && level > 1) {
			uint64_t large_rsvd;
			base = large_page(s, entry, shift, maxphy, &large_rsvd);
			rsvd |= large_rsvd;
		} else {
			base = entry & s->addr;
		}
		if (entry & rsvd)
			return page_fault(pg, access, PF_ERR_P | PF_ERR_RSVD, error_code);
		r.rw = r.rw && (entry & PTE_WRITABLE);
		r.us = r.us && (entry & PTE_USER);
		r.xd = r.xd || (nxe && (entry & PTE_NX));
		if (leaf) {
			if (!allowed(pg, &r, access))
				return page_fault(pg, access, PF_ERR_P, error_code);
			*gpa = base | (gla & ((1ULL << shift) - 1));
			return GW_OK;
		}
		table = base;
	}
}


int guest_walk(const struct guest_paging *pg, const struct guest_mem *mem, uint64_t gla,
	       unsigned access, uint64_t *gpa, uint32_t *error_code)
{
	unsigned maxphy = pg->maxphyaddr;
	uint64_t phys;

	if (maxphy < MIN_MAXPHYADDR)
		maxphy = MIN_MAXPHYADDR;
	if (maxphy > MAX_MAXPHYADDR)
		maxphy = MAX_MAXPHYADDR;
	phys = bits(maxphy - 1, PAGE_SHIFT);
	/* Outside IA-32e mode linear addresses are 32 bits wide. */
	if (!(pg->efer & EFER_LMA))
		gla &= 0xffffffffULL;
	if (!(pg->cr0 & CR0_PG)) {
		*gpa = gla;
		return GW_OK;
	}
	/* Execute-disable is a reserved bit when EFER.NXE is clear (4.4.2, 4.5.4). */
	uint64_t xd_rsvd = (pg->efer & EFER_NXE) ? 0 : PTE_NX;

	if (!(pg->cr4 & CR4_PAE)) {
		/* 32-bit paging (4.3): two levels of 1024 4-byte entries. */
		const struct shape s = { 2, 4, 10, (pg->cr4 & CR4_PSE) ? 2 : 0, 0, bits(31, 12) };
		return walk_tables(pg, mem, &s, pg->cr3 & bits(31, 12), gla, access, maxphy, gpa,
				   error_code);
	}
	if (pg->efer & EFER_LMA) {
		/* 4-level and 5-level paging (4.5): bits 51:MAXPHYADDR reserved. */
		bool la57 = pg->cr4 & CR4_LA57;
		const struct shape s = { la57 ? 5 : 4, 8, 9, 3, bits(51, maxphy) | xd_rsvd, phys };
		if (!x86_canonical(gla, la57 ? 57 : X86_VA_BITS_4LEVEL))
			return GW_NONCANONICAL;
		return walk_tables(pg, mem, &s, pg->cr3 & phys, gla, access, maxphy, gpa,
				   error_code);
	}

	/* PAE paging (4.4): a PDPTE chosen by bits 31:30, then two levels; bits 62:MAXPHYADDR reserved. */
	const struct shape s = { 2, 8, 9, 2, bits(62, maxphy) | xd_rsvd, phys };
	uint64_t pdpte;
	int rc = read_entry(mem, (pg->cr3 & bits(31, 5)) + ((gla >> 30) & 3) * 8, 8, &pdpte);
	if (rc)
		return rc;
	if (!(pdpte & PTE_PRESENT))
		return page_fault(pg, access, 0, error_code);
	if (pdpte & (PDPTE_RSVD | bits(63, maxphy)))
		return page_fault(pg, access, PF_ERR_P | PF_ERR_RSVD, error_code);
	return walk_tables(pg, mem, &s, pdpte & phys, gla, access, maxphy, gpa, error_code);
}

static int fetch_page(const struct guest_paging *pg, const struct guest_mem *mem, uint64_t gla,
		      unsigned access, uint8_t *buf, unsigned len, uint32_t *error_code)
{
	uint64_t gpa;
	int rc = guest_walk(pg, mem, gla, access, &gpa, error_code);

	if (rc)
		return rc;
	return mem->read_gpa(mem->ctx, gpa, buf, len) ? GW_ERR_MEMORY : GW_OK;
}

int guest_fetch(const struct guest_paging *pg, const struct guest_mem *mem, uint64_t gla,
		bool user, struct guest_fetch *out, uint32_t *error_code)
{
	unsigned access = GW_ACCESS_FETCH | (user ? GW_ACCESS_USER : 0);
	unsigned first = (unsigned)(SIZE_4K - (gla & (SIZE_4K - 1)));

	memset(out, 0, sizeof(*out));
	if (first > GUEST_FETCH_MAX)
		first = GUEST_FETCH_MAX;
	int rc = fetch_page(pg, mem, gla, access, out->bytes, first, error_code);
	if (rc)
		return rc;
	out->len = first;
	if (first == GUEST_FETCH_MAX)
		return GW_OK;

	/* The rest lies on the next page, which has its own translation. */
	out->next_gla = gla + first;
	if (!(pg->efer & EFER_LMA))
		out->next_gla &= 0xffffffffULL;
	out->next_status = fetch_page(pg, mem, out->next_gla, access, out->bytes + first,
				      GUEST_FETCH_MAX - first, &out->next_error);
	if (out->next_status == GW_OK)
		out->len = GUEST_FETCH_MAX;
	return GW_OK;
}
