#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/guest_walk.h"
#include "x86/cpu.h"
#include "x86/paging.h"

#define RAM_SIZE (256 * 4096)

/* Short names keep the page-table fixtures on one line each. */
#define P PTE_PRESENT
#define RW PTE_WRITABLE
#define US PTE_USER
#define PS PTE_LARGE
#define XD PTE_NX
#define TABLE (P | RW | US)

static uint8_t ram[RAM_SIZE];
static int reads;

/* Guest RAM is [0, RAM_SIZE); anything else is refused, as in the hypervisor. */
static int read_gpa(void *ctx, uint64_t gpa, void *buf, unsigned len)
{
	(void)ctx;
	reads++;
	if (gpa > RAM_SIZE || len > RAM_SIZE - gpa)
		return -1;
	memcpy(buf, ram + gpa, len);
	return 0;
}

static const struct guest_mem mem = { NULL, read_gpa };

static void set64(uint64_t gpa, uint64_t v)
{
	for (unsigned i = 0; i < 8; i++)
		ram[gpa + i] = (uint8_t)(v >> (8 * i));
}

static void set32(uint64_t gpa, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		ram[gpa + i] = (uint8_t)(v >> (8 * i));
}

static int setup(void **state)
{
	(void)state;
	memset(ram, 0, sizeof(ram));
	reads = 0;
	return 0;
}

static uint64_t gla4(uint64_t l4, uint64_t l3, uint64_t l2, uint64_t l1, uint64_t off)
{
	uint64_t gla = l4 << 39 | l3 << 30 | l2 << 21 | l1 << 12 | off;
	/* sign-extend bit 47 */
	return (gla & (1ULL << 47)) ? gla | 0xffff000000000000ULL : gla;
}

static int walk(const struct guest_paging *pg, uint64_t gla, unsigned access, uint64_t *gpa,
		uint32_t *err)
{
	*gpa = 0;
	*err = 0xdead;
	return guest_walk(pg, &mem, gla, access, gpa, err);
}

static void assert_maps(const struct guest_paging *pg, uint64_t gla, unsigned access,
			uint64_t want)
{
	uint64_t gpa;
	uint32_t err;
	assert_int_equal(walk(pg, gla, access, &gpa, &err), GW_OK);
	assert_int_equal(gpa, want);
}

static void assert_fault(const struct guest_paging *pg, uint64_t gla, unsigned access,
			 uint32_t want)
{
	uint64_t gpa;
	uint32_t err;
	assert_int_equal(walk(pg, gla, access, &gpa, &err), GW_PAGE_FAULT);
	assert_int_equal(err, want);
}

/* 4-level tables: CR3 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000. */
#define L4 0x1ff
#define L3 0x48
#define L2 0x1a2
#define L1 0x167
static const struct guest_paging long4 = {
	CR0_PG | CR0_WP, 0x1000, CR4_PAE, EFER_LMA | EFER_NXE, 36,
};

static void build_long4(uint64_t pte)
{
	set64(0x1000 + L4 * 8, 0x2000 | TABLE);
	set64(0x2000 + L3 * 8, 0x3000 | TABLE);
	set64(0x3000 + L2 * 8, 0x4000 | TABLE);
	set64(0x4000 + L1 * 8, pte);
}

static void test_paging_off(void **state)
{
	(void)state;
	const struct guest_paging pg = { 0, 0x1000, 0, 0, 36 };
	assert_maps(&pg, 0xfee00300, GW_ACCESS_WRITE, 0xfee00300);
	/* Linear addresses are 32-bit outside IA-32e mode. */
	assert_maps(&pg, 0x100001000ULL, 0, 0x1000);
	assert_int_equal(reads, 0);
}

static void test_four_level_4k(void **state)
{
	(void)state;
	build_long4(0x7000 | P | RW | US);
	uint64_t gla = gla4(L4, L3, L2, L1, 0xabc);
	assert_true(gla >> 48 == 0xffff); /* a kernel-half address */
	assert_maps(&long4, gla, 0, 0x7abc);
	assert_maps(&long4, gla, GW_ACCESS_WRITE | GW_ACCESS_USER, 0x7abc);
	assert_maps(&long4, gla, GW_ACCESS_FETCH, 0x7abc);
	assert_int_equal(reads, 12);
	/* The same table through CR3 with PCID bits set in 11:0. */
	struct guest_paging pcid = long4;
	pcid.cr3 |= 0x5a5;
	assert_maps(&pcid, gla, 0, 0x7abc);
}

static void test_large_pages(void **state)
{
	(void)state;
	build_long4(0);
	/* 2 MiB: PDE with PS; PAT (bit 12) is not part of the address. */
	set64(0x3000 + L2 * 8, 0x40200000ULL | 0x1000 | PS | P | RW);
	assert_maps(&long4, gla4(L4, L3, L2, 0x155, 0x123), 0, 0x40200000ULL | 0x155123);
	/* 1 GiB: PDPTE with PS. */
	set64(0x2000 + L3 * 8, 0x80000000ULL | PS | P | RW);
	assert_maps(&long4, gla4(L4, L3, 0x1ff, 0x1ff, 0xfff), GW_ACCESS_WRITE, 0xbfffffffULL);
	/* Bits 29:13 of a 1-GiB entry are reserved. */
	set64(0x2000 + L3 * 8, 0x80000000ULL | 0x2000 | PS | P | RW);
	assert_fault(&long4, gla4(L4, L3, 0, 0, 0), 0, PF_ERR_P | PF_ERR_RSVD);
}

static void test_reserved_bits(void **state)
{
	(void)state;
	uint64_t gla = gla4(L4, L3, L2, L1, 0);
	/* An address bit at MAXPHYADDR (36). */
	build_long4((1ULL << 36) | 0x7000 | P);
	assert_fault(&long4, gla, GW_ACCESS_WRITE, PF_ERR_P | PF_ERR_RSVD | PF_ERR_W);
	/* ...which is fine with a larger MAXPHYADDR. */
	struct guest_paging wide = long4;
	wide.maxphyaddr = 40;
	assert_maps(&wide, gla, 0, (1ULL << 36) | 0x7000);
	/* Bits 62:52 are ignored in 4-level paging. */
	build_long4((1ULL << 62) | (1ULL << 52) | 0x7000 | P);
	assert_maps(&long4, gla, 0, 0x7000);
	/* XD without EFER.NXE is reserved; no I/D bit without NXE or SMEP. */
	build_long4(XD | 0x7000 | P);
	struct guest_paging no_nx = long4;
	no_nx.efer = EFER_LMA;
	assert_fault(&no_nx, gla, GW_ACCESS_FETCH, PF_ERR_P | PF_ERR_RSVD);
	/* PS in a PML4E is reserved. */
	build_long4(0x7000 | P);
	set64(0x1000 + L4 * 8, 0x2000 | TABLE | PS);
	assert_fault(&long4, gla, 0, PF_ERR_P | PF_ERR_RSVD);
	/* 2-MiB entry with bit 13 set. */
	set64(0x1000 + L4 * 8, 0x2000 | TABLE);
	set64(0x3000 + L2 * 8, 0x200000 | 0x2000 | PS | P);
	assert_fault(&long4, gla, GW_ACCESS_USER, PF_ERR_P | PF_ERR_RSVD | PF_ERR_U);
}

static void test_not_present_and_rights(void **state)
{
	(void)state;
	uint64_t gla = gla4(L4, L3, L2, L1, 0x10);
	build_long4(0x7000); /* PTE not present */
	assert_fault(&long4, gla, 0, 0);
	assert_fault(&long4, gla, GW_ACCESS_WRITE | GW_ACCESS_USER, PF_ERR_W | PF_ERR_U);
	/* Not present higher up: a PDPTE. */
	set64(0x2000 + L3 * 8, 0);
	assert_fault(&long4, gla, GW_ACCESS_FETCH, PF_ERR_ID);

	/* A supervisor page: user accesses fault whatever the other bits. */
	build_long4(0x7000 | P | RW);
	assert_fault(&long4, gla, GW_ACCESS_USER, PF_ERR_P | PF_ERR_U);
	assert_maps(&long4, gla, GW_ACCESS_WRITE, 0x7010);
	/* U/S must be set at every level: here the PD clears it. */
	build_long4(0x7000 | P | RW | US);
	set64(0x3000 + L2 * 8, 0x4000 | P | RW);
	assert_fault(&long4, gla, GW_ACCESS_USER, PF_ERR_P | PF_ERR_U);

	/* Read-only: CR0.WP decides for the supervisor, never for the user. */
	build_long4(0x7000 | P | US);
	assert_fault(&long4, gla, GW_ACCESS_WRITE, PF_ERR_P | PF_ERR_W);
	assert_maps(&long4, gla, GW_ACCESS_USER, 0x7010);
	struct guest_paging no_wp = long4;
	no_wp.cr0 &= ~CR0_WP;
	assert_maps(&no_wp, gla, GW_ACCESS_WRITE, 0x7010);
	assert_fault(&no_wp, gla, GW_ACCESS_WRITE | GW_ACCESS_USER,
		     PF_ERR_P | PF_ERR_W | PF_ERR_U);
	/* R/W cleared in the PDPT is enough. */
	build_long4(0x7000 | P | RW | US);
	set64(0x2000 + L3 * 8, 0x3000 | P | US);
	assert_fault(&long4, gla, GW_ACCESS_WRITE, PF_ERR_P | PF_ERR_W);
}

static void test_execute_disable_and_smep(void **state)
{
	(void)state;
	uint64_t gla = gla4(L4, L3, L2, L1, 0);
	build_long4(0x7000 | P | RW | US);
	set64(0x3000 + L2 * 8, 0x4000 | TABLE | XD); /* XD anywhere counts */
	assert_fault(&long4, gla, GW_ACCESS_FETCH, PF_ERR_P | PF_ERR_ID);
	assert_fault(&long4, gla, GW_ACCESS_FETCH | GW_ACCESS_USER,
		     PF_ERR_P | PF_ERR_ID | PF_ERR_U);
	assert_maps(&long4, gla, GW_ACCESS_WRITE, 0x7000); /* data is fine */

	/* SMEP: the supervisor may not run user pages. */
	set64(0x3000 + L2 * 8, 0x4000 | TABLE);
	struct guest_paging smep = long4;
	smep.cr4 |= CR4_SMEP;
	assert_fault(&smep, gla, GW_ACCESS_FETCH, PF_ERR_P | PF_ERR_ID);
	assert_maps(&smep, gla, GW_ACCESS_FETCH | GW_ACCESS_USER, 0x7000);
	assert_maps(&long4, gla, GW_ACCESS_FETCH, 0x7000);
}

static void test_five_level_and_canonical(void **state)
{
	(void)state;
	uint64_t gpa;
	uint32_t err;
	/* Bits 55:48 select the PML5 entry; canonical only with LA57. */
	uint64_t gla = 0x00ff000000000000ULL | gla4(0, 0, 0, 3, 0x21);
	struct guest_paging la57 = long4;
	la57.cr3 = 0x8000;
	la57.cr4 |= CR4_LA57;
	set64(0x8000 + 0xff * 8, 0x9000 | TABLE);
	set64(0x9000, 0xa000 | TABLE);
	set64(0xa000, 0xb000 | TABLE);
	set64(0xb000, 0xc000 | TABLE);
	set64(0xc000 + 3 * 8, 0xd000 | P);
	assert_maps(&la57, gla, 0, 0xd021);
	assert_int_equal(walk(&long4, gla, 0, &gpa, &err), GW_NONCANONICAL);
	assert_int_equal(walk(&long4, 0x0000800000000000ULL, 0, &gpa, &err), GW_NONCANONICAL);
	assert_int_equal(walk(&la57, 0x0100000000000000ULL, 0, &gpa, &err), GW_NONCANONICAL);
	/* PS in a PML5E is reserved. */
	set64(0x8000 + 0xff * 8, 0x9000 | TABLE | PS);
	assert_fault(&la57, gla, 0, PF_ERR_P | PF_ERR_RSVD);
}

static void test_pae(void **state)
{
	(void)state;
	/* CR3 holds a 32-byte-aligned table of four PDPTEs. */
	const struct guest_paging pae = { CR0_PG | CR0_WP, 0x1fe0, CR4_PAE, EFER_NXE, 36 };
	set64(0x1fe0 + 2 * 8, 0x2000 | P);
	set64(0x2000 + 5 * 8, 0x3000 | TABLE);
	set64(0x3000 + 7 * 8, 0x7000 | P | RW);
	uint64_t gla = 0x80000000ULL | 5 << 21 | 7 << 12 | 0x44;
	assert_maps(&pae, gla, GW_ACCESS_WRITE, 0x7044);
	/* Linear addresses are 32 bits: bit 32 is dropped. */
	assert_maps(&pae, 0x100000000ULL | gla, 0, 0x7044);
	/* A PDPTE has no rights bits: supervisor-only comes from the PTE. */
	assert_fault(&pae, gla, GW_ACCESS_USER, PF_ERR_P | PF_ERR_U);
	/* Bits 62:52 are reserved in PAE paging (ignored in 4-level). */
	set64(0x3000 + 7 * 8, (1ULL << 62) | 0x7000 | P | RW);
	assert_fault(&pae, gla, 0, PF_ERR_P | PF_ERR_RSVD);
	/* 2-MiB page. */
	set64(0x2000 + 6 * 8, 0x600000 | PS | P | XD);
	assert_maps(&pae, 0x80000000ULL | 6 << 21 | 0x12345, 0, 0x612345);
	assert_fault(&pae, 0x80000000ULL | 6 << 21, GW_ACCESS_FETCH, PF_ERR_P | PF_ERR_ID);
	/* A non-present PDPTE, and one with reserved bit 1 (R/W does not exist there). */
	assert_fault(&pae, 0xc0000000ULL, GW_ACCESS_WRITE, PF_ERR_W);
	set64(0x1fe0 + 3 * 8, 0x2000 | P | RW);
	assert_fault(&pae, 0xc0000000ULL, 0, PF_ERR_P | PF_ERR_RSVD);
}

static void test_32bit_paging(void **state)
{
	(void)state;
	struct guest_paging pg = { CR0_PG, 0x1000, 0, 0, 36 };
	uint64_t gla = 0xc0000000ULL | 0x155 << 12 | 0x9ab;
	set32(0x1000 + (0xc0000000 >> 22) * 4, 0x2000 | P | RW | US);
	set32(0x2000 + 0x155 * 4, 0x9000 | P | US);
	assert_maps(&pg, gla, GW_ACCESS_USER, 0x99ab);
	assert_fault(&pg, gla, GW_ACCESS_USER | GW_ACCESS_WRITE, PF_ERR_P | PF_ERR_W | PF_ERR_U);
	/* CR0.WP clear: the supervisor writes a read-only page. */
	assert_maps(&pg, gla, GW_ACCESS_WRITE, 0x99ab);
	/* No execute protection here: no I/D bit on a fetch fault. */
	assert_fault(&pg, 0x400000, GW_ACCESS_FETCH, 0);

	/* 4 MiB with PSE-36: PDE bits 20:13 are physical bits 39:32. */
	set32(0x1000 + 1 * 4, 0x00800000 | 0x3 << 13 | PS | P | RW);
	pg.cr4 = CR4_PSE;
	assert_maps(&pg, 0x00412345, 0, 0x300812345ULL);
	/* Above MAXPHYADDR 32 those bits are reserved, and bit 21 always is. */
	pg.maxphyaddr = 32;
	assert_fault(&pg, 0x00412345, 0, PF_ERR_P | PF_ERR_RSVD);
	pg.maxphyaddr = 36;
	set32(0x1000 + 1 * 4, 0x00800000 | 1 << 21 | PS | P);
	assert_fault(&pg, 0x00412345, 0, PF_ERR_P | PF_ERR_RSVD);
	/* Without CR4.PSE, PS is ignored: the PDE points to a table. */
	set32(0x1000 + 1 * 4, 0x2000 | PS | P);
	pg.cr4 = 0;
	assert_maps(&pg, 0x00555123, 0, 0x9123);
}

static void test_tables_outside_ram(void **state)
{
	(void)state;
	uint64_t gpa;
	uint32_t err;
	uint64_t gla = gla4(L4, L3, L2, L1, 0);
	build_long4(0x7000 | P);
	set64(0x3000 + L2 * 8, (uint64_t)RAM_SIZE | TABLE);  /* just past the end */
	assert_int_equal(walk(&long4, gla, 0, &gpa, &err), GW_ERR_MEMORY);
	set64(0x3000 + L2 * 8, 0xfee00000ULL | TABLE);       /* the local APIC */
	assert_int_equal(walk(&long4, gla, 0, &gpa, &err), GW_ERR_MEMORY);
	struct guest_paging far = long4;
	far.cr3 = 0xffff000ULL; /* CR3 itself */
	assert_int_equal(walk(&far, gla, 0, &gpa, &err), GW_ERR_MEMORY);
	/* The last entry of the last page is still inside. */
	set64(0x3000 + L2 * 8, (RAM_SIZE - 0x1000) | TABLE);
	set64(RAM_SIZE - 8, 0x7000 | P);
	assert_maps(&long4, gla4(L4, L3, L2, 0x1ff, 0), 0, 0x7000);
	/* PAE: the PDPTE table beyond RAM. */
	const struct guest_paging pae = { CR0_PG, 0xfffffe0, CR4_PAE, 0, 36 };
	assert_int_equal(walk(&pae, 0, 0, &gpa, &err), GW_ERR_MEMORY);
}

/* Code at 0x...ff8 of a page mapped to 0x7000; the next page to 0x5000. */
static uint64_t build_fetch(void)
{
	build_long4(0x7000 | P | RW | US);
	set64(0x4000 + (L1 + 1) * 8, 0x5000 | P | RW | US);
	for (unsigned i = 0; i < 8; i++)
		ram[0x7ff8 + i] = (uint8_t)(0x10 + i);
	for (unsigned i = 0; i < 8; i++)
		ram[0x5000 + i] = (uint8_t)(0x18 + i);
	return gla4(L4, L3, L2, L1, 0xff8);
}

static void test_fetch_across_pages(void **state)
{
	(void)state;
	struct guest_fetch f;
	uint32_t err;
	uint64_t gla = build_fetch();

	assert_int_equal(guest_fetch(&long4, &mem, gla, false, &f, &err), GW_OK);
	assert_int_equal(f.len, 15);
	for (unsigned i = 0; i < 15; i++)
		assert_int_equal(f.bytes[i], 0x10 + i);

	/* Next page not present: 8 bytes, and the fault to raise if more are needed. */
	set64(0x4000 + (L1 + 1) * 8, 0);
	assert_int_equal(guest_fetch(&long4, &mem, gla, true, &f, &err), GW_OK);
	assert_int_equal(f.len, 8);
	assert_int_equal(f.next_status, GW_PAGE_FAULT);
	assert_int_equal(f.next_error, PF_ERR_U | PF_ERR_ID);
	assert_int_equal(f.next_gla, gla + 8);

	/* Not crossing: one translation. */
	assert_int_equal(guest_fetch(&long4, &mem, gla - 0xff8, false, &f, &err), GW_OK);
	assert_int_equal(f.len, 15);

	/* The first page faults: that is the fetch's status. */
	set64(0x4000 + L1 * 8, 0x7000 | P | RW | XD);
	assert_int_equal(guest_fetch(&long4, &mem, gla, false, &f, &err), GW_PAGE_FAULT);
	assert_int_equal(err, PF_ERR_P | PF_ERR_ID);

	/* The page maps outside RAM. */
	set64(0x4000 + L1 * 8, 0xfee00000ULL | P);
	assert_int_equal(guest_fetch(&long4, &mem, gla, false, &f, &err), GW_ERR_MEMORY);
}

static void test_fetch_wraps_at_4g_and_canonical(void **state)
{
	(void)state;
	struct guest_fetch f;
	uint32_t err;
	/* 32-bit paging: 0xfffffff8 then 0 (32-bit linear addresses wrap). */
	const struct guest_paging pg32 = { CR0_PG, 0x1000, 0, 0, 36 };
	set32(0x1000 + 0x3ff * 4, 0x2000 | P);
	set32(0x2000 + 0x3ff * 4, 0x7000 | P);
	set32(0x1000, 0x3000 | P);
	set32(0x3000, 0x5000 | P);
	for (unsigned i = 0; i < 8; i++)
		ram[0x7ff8 + i] = (uint8_t)(0x10 + i);
	ram[0x5000] = 0xaa;
	assert_int_equal(guest_fetch(&pg32, &mem, 0xfffffff8ULL, false, &f, &err), GW_OK);
	assert_int_equal(f.len, 15);
	assert_int_equal(f.next_gla, 0);
	assert_int_equal(f.bytes[7], 0x17);
	assert_int_equal(f.bytes[8], 0xaa);

	/* Real-mode code at the top of RAM: what is there, and why no more. */
	const struct guest_paging flat = { 0, 0, 0, 0, 36 };
	ram[RAM_SIZE - 1] = 0x90;
	assert_int_equal(guest_fetch(&flat, &mem, RAM_SIZE - 1, false, &f, &err), GW_OK);
	assert_int_equal(f.len, 1);
	assert_int_equal(f.bytes[0], 0x90);
	assert_int_equal(f.next_status, GW_ERR_MEMORY);

	/* Long mode: the byte after 0x00007fffffffffff is non-canonical. */
	build_long4(0);
	set64(0x1000 + 0xff * 8, 0x2000 | TABLE);
	set64(0x2000 + 0x1ff * 8, 0x3000 | TABLE);
	set64(0x3000 + 0x1ff * 8, 0x4000 | TABLE);
	set64(0x4000 + 0x1ff * 8, 0x7000 | P);
	assert_int_equal(guest_fetch(&long4, &mem, 0x00007ffffffffff9ULL, false, &f, &err), GW_OK);
	assert_int_equal(f.len, 7);
	assert_int_equal(f.next_status, GW_NONCANONICAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_paging_off, setup),
		cmocka_unit_test_setup(test_four_level_4k, setup),
		cmocka_unit_test_setup(test_large_pages, setup),
		cmocka_unit_test_setup(test_reserved_bits, setup),
		cmocka_unit_test_setup(test_not_present_and_rights, setup),
		cmocka_unit_test_setup(test_execute_disable_and_smep, setup),
		cmocka_unit_test_setup(test_five_level_and_canonical, setup),
		cmocka_unit_test_setup(test_pae, setup),
		cmocka_unit_test_setup(test_32bit_paging, setup),
		cmocka_unit_test_setup(test_tables_outside_ram, setup),
		cmocka_unit_test_setup(test_fetch_across_pages, setup),
		cmocka_unit_test_setup(test_fetch_wraps_at_4g_and_canonical, setup),
	};
	return cmocka_run_group_tests_name("guest_walk", tests, NULL, NULL);
}
