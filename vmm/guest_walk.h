/*
 * The guest's own page-table walk (Intel SDM Vol. 3A, chapter 4), done in
 * software: an EPT violation on an emulated MMIO page leaves the hypervisor
 * with the guest's RIP, a linear address, which it must translate to fetch
 * the instruction (and, for MOVS, to reach the operand in RAM).
 *
 * Modes: paging off, 32-bit paging (4-KiB and, with CR4.PSE, 4-MiB pages
 * with PSE-36), PAE paging, 4-level and 5-level (CR4.LA57) paging with
 * 2-MiB and 1-GiB pages (the guest is taken to see CPUID Page1GB). Rights per SDM 4.6: U/S and R/W of every level,
 * CR0.WP, EFER.NXE execute-disable and CR4.SMEP. Not modelled: SMAP (the
 * walker has no RFLAGS.AC; the operand accesses the hypervisor makes for a
 * guest kernel's MOVS are ones the guest's own code asked for), protection
 * keys, segment limits, and the PDPTE cache of PAE paging (the PDPTEs are
 * read from CR3 at each walk, not taken from when CR3 was loaded).
 *
 * Accessed and dirty flags are not set. The instruction fetch went through
 * the same translation in hardware just before the exit, which set its
 * accessed flags (SDM 4.8), and the faulting operand is not translated
 * here (the exit reports its guest-physical address). What is left is the
 * RAM side of a MOVS the hypervisor performs itself; a Linux guest reaches
 * it through kernel mappings, which it creates with A and D already set
 * (__PAGE_KERNEL), so nothing it relies on is missed, while a software
 * update would need an atomic compare-exchange on guest page tables that
 * other vCPUs may be rewriting.
 *
 * Every table read goes through the caller's read_gpa, which refuses
 * addresses outside guest RAM; a table there ends the walk with an error.
 * Plain C, no hardware access.
 */
#ifndef VMM_GUEST_WALK_H
#define VMM_GUEST_WALK_H

#include <stdbool.h>
#include <stdint.h>

/* The control registers that select and steer the walk. */
struct guest_paging {
	uint64_t cr0;
	uint64_t cr3;
	uint64_t cr4;
	uint64_t efer;       /* LMA selects 4/5-level paging, NXE execute-disable */
	unsigned maxphyaddr; /* as CPUID 80000008H:EAX[7:0] reports it to the guest */
};

/* Guest-physical memory: 0, or -1 when [gpa, gpa + len) is not all RAM. */
struct guest_mem {
	void *ctx;
	int (*read_gpa)(void *ctx, uint64_t gpa, void *buf, unsigned len);
};

/* Access kinds, at the bit positions of the #PF error code they set. */
#define GW_ACCESS_WRITE (1u << 1)
#define GW_ACCESS_USER (1u << 2) /* CPL 3 */
#define GW_ACCESS_FETCH (1u << 4)

/* #PF error code (SDM Vol. 3A, 4.7). */
#define PF_ERR_P (1u << 0)     /* a protection violation, not a non-present entry */
#define PF_ERR_W (1u << 1)
#define PF_ERR_U (1u << 2)
#define PF_ERR_RSVD (1u << 3)
#define PF_ERR_ID (1u << 4)

enum guest_walk_status {
	GW_OK = 0,
	GW_PAGE_FAULT = 1,   /* inject #PF with the error code, CR2 = the linear address */
	GW_NONCANONICAL = 2, /* inject #GP(0) (SDM Vol. 3A, 3.3.7.1) */
	/* A paging structure or the bytes lie outside guest RAM; on hardware
	 * an EPT violation, which ends the VM. */
	GW_ERR_MEMORY = -1,
};

/*
 * Translates gla for an access of kind `access` (GW_ACCESS_*). Returns
 * GW_OK with *gpa, GW_PAGE_FAULT with *error_code, or another status.
 */
int guest_walk(const struct guest_paging *pg, const struct guest_mem *mem, uint64_t gla,
	       unsigned access, uint64_t *gpa, uint32_t *error_code);

#define GUEST_FETCH_MAX 15 /* the longest x86 instruction */

struct guest_fetch {
	uint8_t bytes[GUEST_FETCH_MAX];
	unsigned len;
	/*
	 * When len < 15: the page at next_gla could not be read (next_status,
	 * with next_error for a page fault). That fault is the guest's only if
	 * the instruction goes on into that page, which the decoder tells
	 * (INSN_ERR_TRUNCATED), so it is reported here, not raised.
	 */
	int next_status;
	uint32_t next_error;
	uint64_t next_gla;
};

/*
 * Fetches up to 15 instruction bytes at gla (CS base + RIP), translating
 * the page it crosses into separately. Returns the first page's status
 * (GW_OK with out filled, or a fault as guest_walk gives it).
 */
int guest_fetch(const struct guest_paging *pg, const struct guest_mem *mem, uint64_t gla,
		bool user, struct guest_fetch *out, uint32_t *error_code);

#endif
