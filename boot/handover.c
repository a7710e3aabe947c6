#include "boot/handover.h"

#include "vmm/log.h"
#include "vmm/page_alloc.h"
#include "vmm/panic.h"
#include "x86/cpu.h"
#include "x86/msr.h"
#include "x86/paging.h"
#include "x86/segment.h"

#include <string.h>

/* Selectors; handover_switch.S uses the same values. */
enum {
	GDT_NULL,
	GDT_CODE64,
	GDT_DATA,
	GDT_TSS, /* two slots */
	GDT_ENTRIES = GDT_TSS + 2,
};
#define KERNEL_CS (GDT_CODE64 * 8)
_Static_assert(KERNEL_CS == 0x08 && GDT_DATA * 8 == 0x10 && GDT_TSS * 8 == 0x18,
	       "selectors hard-coded in handover_switch.S");

/* IST slot for exceptions that must not use a possibly broken stack. */
#define IST_EMERGENCY 1
#define STACK_PAGES 16
#define IST_STACK_PAGES 4

static struct segment_descriptor gdt[GDT_ENTRIES] __attribute__((aligned(16)));
static struct tss64 tss __attribute__((aligned(16)));
static struct idt_gate idt[256] __attribute__((aligned(16)));
static struct page_alloc host_pages;

extern char exception_stubs[];
#define EXCEPTION_STUB_SIZE 16

__attribute__((noreturn)) void handover_switch(uint64_t cr3, const void *gdtr,
					       const void *idtr, uint64_t stack_top,
					       void (*entry)(struct boot_info *),
					       struct boot_info *arg);

static struct segment_descriptor flat_segment(uint8_t access, uint8_t flags)
{
	/* Base and limit are ignored in 64-bit mode except for FS/GS bases. */
	return (struct segment_descriptor){
		.limit_low = 0xffff,
		.access = SEG_ACCESS_PRESENT | SEG_ACCESS_CODE_DATA | access,
		.limit_flags = (uint8_t)(flags | SEG_FLAG_GRANULARITY_4K | 0x0f),
	};
}

static void setup_gdt(void)
{
	uint64_t base = (uint64_t)(uintptr_t)&tss;
	struct system_descriptor *tss_desc = (struct system_descriptor *)&gdt[GDT_TSS];

	gdt[GDT_NULL] = (struct segment_descriptor){ 0 };
	gdt[GDT_CODE64] = flat_segment(SEG_ACCESS_CODE_READ, SEG_FLAG_LONG_MODE);
	gdt[GDT_DATA] = flat_segment(SEG_ACCESS_DATA_WRITE, SEG_FLAG_DB);
	*tss_desc = (struct system_descriptor){
		.low = {
			.limit_low = sizeof(tss) - 1,
			.base_low = (uint16_t)base,
			.base_mid = (uint8_t)(base >> 16),
			.access = SEG_ACCESS_PRESENT | SEG_ACCESS_TSS_AVAILABLE,
			.base_high = (uint8_t)(base >> 24),
		},
		.base_upper = (uint32_t)(base >> 32),
	};
}

static void setup_idt(void)
{
	for (unsigned v = 0; v < 256; v++) {
		uint64_t handler = (uint64_t)(uintptr_t)exception_stubs + v * EXCEPTION_STUB_SIZE;
		/* NMI, #DF and #MC may arrive on a broken stack (SDM 6.14.5). */
		uint8_t ist = (v == 2 || v == 8 || v == 18) ? IST_EMERGENCY : 0;

		idt[v] = (struct idt_gate){
			.offset_low = (uint16_t)handler,
			.selector = KERNEL_CS,
			.ist = ist,
			.type_attr = IDT_GATE_INTERRUPT,
			.offset_mid = (uint16_t)(handler >> 16),
			.offset_high = (uint32_t)(handler >> 32),
		};
	}
}

static uint64_t alloc_zeroed(uint64_t pages)
{
	uint64_t base;

	if (page_alloc_alloc(&host_pages, pages, 1, &base))
		panic("hand-over: hypervisor heap exhausted (%llu pages wanted)",
		      (unsigned long long)pages);
	memset((void *)(uintptr_t)base, 0, pages * PAGE_SIZE);
	return base;
}

static pte_t *table_at(uint64_t pa)
{
	return (pte_t *)(uintptr_t)pa;
}

static uint64_t round_up(uint64_t v, uint64_t align)
{
	return (v + align - 1) & ~(align - 1);
}

/*
 * Identity-maps [0, top) with the largest pages that are safe:
 * 4-KiB pages for the first 2 MiB, whose fixed-range MTRRs give mixed memory
 * types (a large page spanning several MTRR types is undefined, SDM 11.11.9),
 * 2-MiB pages up to 4 GiB where the MMIO holes are, 1-GiB pages above when
 * the CPU has them. The MTRRs the firmware programmed keep MMIO uncached.
 */
static uint64_t build_identity_map(uint64_t top, bool gib_pages, uint64_t nx)
{
	uint64_t pml4 = alloc_zeroed(1);
	/* Data everywhere: only the hypervisor's code is executable (see protect_image). */
	const uint64_t leaf = PTE_PRESENT | PTE_WRITABLE | nx;

	for (uint64_t gb = 0; gb < top / SIZE_1G; gb++) {
		uint64_t va = gb * SIZE_1G;
		pte_t *l4 = table_at(pml4);
		unsigned i4 = (unsigned)(va / SIZE_512G);

		if (!(l4[i4] & PTE_PRESENT))
			l4[i4] = alloc_zeroed(1) | PTE_PRESENT | PTE_WRITABLE;
		pte_t *pdpt = table_at(l4[i4] & PTE_ADDR_MASK);
		unsigned i3 = (unsigned)(gb % PAGE_TABLE_ENTRIES);

		if (gib_pages && va >= 4 * SIZE_1G) {
			pdpt[i3] = va | leaf | PTE_LARGE;
			continue;
		}
		uint64_t pd_pa = alloc_zeroed(1);
		pte_t *pd = table_at(pd_pa);
		pdpt[i3] = pd_pa | PTE_PRESENT | PTE_WRITABLE;
		for (unsigned i2 = 0; i2 < PAGE_TABLE_ENTRIES; i2++)
			pd[i2] = (va + i2 * SIZE_2M) | leaf | PTE_LARGE;
		if (va == 0) {
			uint64_t pt_pa = alloc_zeroed(1);
			pte_t *pt = table_at(pt_pa);
			for (unsigned i1 = 0; i1 < PAGE_TABLE_ENTRIES; i1++)
				pt[i1] = (i1 * SIZE_4K) | leaf;
			pd[0] = pt_pa | PTE_PRESENT | PTE_WRITABLE;
		}
	}
	return pml4;
}

/*
 * The entry mapping va at the 4-KiB level, splitting a 1-GiB or 2-MiB page
 * on the way into a table of smaller pages with the same attributes.
 */
static pte_t *pte_4k(uint64_t pml4, uint64_t va)
{
	static const unsigned shifts[] = { 39, 30, 21, 12 };
	pte_t *table = table_at(pml4);

	for (unsigned level = 0; level < 3; level++) {
		pte_t *e = &table[(va >> shifts[level]) & (PAGE_TABLE_ENTRIES - 1)];
		if (*e & PTE_LARGE) {
			uint64_t step = 1ULL << shifts[level + 1];
			uint64_t attrs = *e & ~PTE_ADDR_MASK & ~PTE_LARGE;
			uint64_t base = *e & PTE_ADDR_MASK;
			uint64_t next = alloc_zeroed(1);
			pte_t *t = table_at(next);
			for (unsigned i = 0; i < PAGE_TABLE_ENTRIES; i++)
				t[i] = (base + i * step) | attrs | (level + 1 < 3 ? PTE_LARGE : 0);
			*e = next | PTE_PRESENT | PTE_WRITABLE;
		}
		table = table_at(*e & PTE_ADDR_MASK);
	}
	return &table[(va >> 12) & (PAGE_TABLE_ENTRIES - 1)];
}

extern char _text[], _etext[];

/* W^X for the hypervisor itself: its code read-only, the rest not executable. */
static void protect_image(uint64_t pml4, const struct boot_info *bi, uint64_t nx)
{
	uint64_t text = (uint64_t)(uintptr_t)_text & ~(SIZE_4K - 1);
	uint64_t etext = (uint64_t)(uintptr_t)_etext;

	for (uint64_t va = bi->image_base & ~(SIZE_4K - 1); va < bi->image_end; va += SIZE_4K) {
		pte_t *pte = pte_4k(pml4, va);
		bool code = va >= text && va < etext;
		*pte = va | PTE_PRESENT | (code ? 0 : PTE_WRITABLE | nx);
	}
}

int handover_map_mmio(uint64_t base, uint64_t bytes)
{
	static const unsigned shifts[] = { 39, 30, 21 };
	uint64_t nx = rdmsr(MSR_IA32_EFER) & EFER_NXE ? PTE_NX : 0;

	for (uint64_t va = base & ~(SIZE_4K - 1); va < base + bytes; va += SIZE_4K) {
		pte_t *table = table_at(read_cr3() & PTE_ADDR_MASK);
		for (unsigned level = 0; level < 3; level++) {
			pte_t *e = &table[(va >> shifts[level]) & (PAGE_TABLE_ENTRIES - 1)];
			if (*e & PTE_LARGE)
				return -1;
			if (!(*e & PTE_PRESENT)) {
				uint64_t next;
				if (page_alloc_alloc(&host_pages, 1, 1, &next))
					return -1;
				memset((void *)(uintptr_t)next, 0, PAGE_SIZE);
				*e = next | PTE_PRESENT | PTE_WRITABLE;
			}
			table = table_at(*e & PTE_ADDR_MASK);
		}
		pte_t *pte = &table[(va >> 12) & (PAGE_TABLE_ENTRIES - 1)];
		pte_t want = va | PTE_PRESENT | PTE_WRITABLE | PTE_PCD | PTE_PWT | nx;
		/* The CPU sets Accessed and Dirty (bits 5, 6) in a page that was used. */
		if ((*pte & PTE_PRESENT) && (*pte & ~(pte_t)0x60) != want)
			return -1;
		*pte = want;
	}
	/* Not-present entries are not cached, but paging-structure caches may be: drop them. */
	write_cr3(read_cr3());
	return 0;
}

void handover(struct boot_info *bi)
{
	page_alloc_init(&host_pages);
	if (page_alloc_add(&host_pages, bi->heap_base, bi->heap_bytes / PAGE_SIZE))
		panic("hand-over: bad hypervisor heap 0x%llx+0x%llx",
		      (unsigned long long)bi->heap_base, (unsigned long long)bi->heap_bytes);
	bi->host_pages = &host_pages;

	/* Everything below 4 GiB (MMIO: LAPIC, IOAPIC, PCI) plus all RAM. */
	uint64_t top = round_up(memmap_top_address(&bi->memmap), SIZE_1G);
	if (top < 4 * SIZE_1G)
		top = 4 * SIZE_1G;
	uint32_t ext = cpuid(0x80000001, 0).edx;
	bool gib_pages = ext & CPUID_80000001_EDX_PAGE1GB;
	/* NX bits are reserved (a #PF) unless EFER.NXE is set first. */
	uint64_t nx = 0;
	if (ext & CPUID_80000001_EDX_NX) {
		wrmsr(MSR_IA32_EFER, rdmsr(MSR_IA32_EFER) | EFER_NXE);
		nx = PTE_NX;
	}
	uint64_t cr3 = build_identity_map(top, gib_pages, nx);
	protect_image(cr3, bi, nx);
	/* CR0.WP: read-only pages bind ring 0 too (SDM 4.6.1). */
	write_cr0(read_cr0() | CR0_WP);
	bi->identity_map_top = top;
	bi->identity_map_1g = gib_pages;

	setup_gdt();
	setup_idt();
	tss.ist[IST_EMERGENCY - 1] = alloc_zeroed(IST_STACK_PAGES) + IST_STACK_PAGES * PAGE_SIZE;
	tss.iomap_base = sizeof(tss); /* no I/O permission bitmap */

	uint64_t stack = alloc_zeroed(STACK_PAGES);
	uint64_t stack_top = stack + STACK_PAGES * PAGE_SIZE;
	bi->stack_low = stack;
	bi->stack_high = stack_top;

	struct descriptor_table_register gdtr = {
		.limit = sizeof(gdt) - 1,
		.base = (uint64_t)(uintptr_t)gdt,
	};
	struct descriptor_table_register idtr = {
		.limit = sizeof(idt) - 1,
		.base = (uint64_t)(uintptr_t)idt,
	};
	handover_switch(cr3, &gdtr, &idtr, stack_top, vmm_main, bi);
}
