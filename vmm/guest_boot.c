#include "vmm/guest_boot.h"

#include "devices/acpi_pm.h"
#include "devices/acpi_tables.h"
#include "lib/fmt.h"
#include "vmm/linux_boot.h"
#include "vmm/platform.h"
#include "x86/cpu.h"
#include "x86/paging.h"

#include <string.h>

#define MIB (1024ULL * 1024)
#define REAL_MODE_TOP MIB
#define RESET_CS 0xf000
#define RESET_IP 0xfff0

#define LONG_PML4 0x1000
#define LONG_PDPT 0x2000
#define LONG_PD 0x3000 /* four page directories: 4 GiB of 2-MiB pages */
#define LONG_GDT 0x7000
#define LONG_CMDLINE 0x7800
#define LONG_DEFAULT_LOAD 0x100000
#define LONG_CS 0x08
#define LONG_DS 0x10

#define CR0_ET (1ULL << 4)
#define RFLAGS_RESERVED_1 (1ULL << 1)

static struct segment_state flat(uint16_t sel, uint32_t type, uint32_t extra)
{
	return (struct segment_state){
		.selector = sel,
		.limit = 0xffffffff,
		.attributes = type | SEG_ATTR_S | SEG_ATTR_PRESENT | SEG_ATTR_GRANULARITY | extra,
	};
}

/* LDTR unusable, TR a busy TSS at 0: what VM entry requires (SDM 26.3.1.2). */
static void system_segments(struct vcpu_boot_state *s)
{
	s->seg[SEG_LDTR] = (struct segment_state){ 0 };
	s->seg[SEG_TR] = (struct segment_state){
		.limit = 0xffff,
		.attributes = SEG_ATTR_TYPE_TSS_BUSY | SEG_ATTR_PRESENT,
	};
}

static int prepare_real(struct vm *vm, struct vcpu_boot_state *s, char *why, size_t n)
{
	uint64_t size = vm->boot->image.size;

	if (vm->boot->ram_bytes < REAL_MODE_TOP) {
		fmt_snprintf(why, n, "boot = real needs at least 1 MiB of RAM");
		return -1;
	}
	if (size < 16 || size > REAL_MODE_TOP) {
		fmt_snprintf(why, n, "a real-mode image must be 16 bytes to 1 MiB (it is %llu)",
			     (unsigned long long)size);
		return -1;
	}
	memcpy(vm_gpa_to_host(vm, REAL_MODE_TOP - size, size),
	       (const void *)(uintptr_t)vm->boot->image.base, size);

	*s = (struct vcpu_boot_state){
		.rip = RESET_IP,
		.rflags = RFLAGS_RESERVED_1,
		.cr0 = CR0_ET,
		.gdt_limit = 0xffff,
		.idt_limit = 0xffff,
	};
	for (unsigned i = SEG_ES; i <= SEG_GS; i++)
		s->seg[i] = (struct segment_state){
			.limit = 0xffff,
			.attributes = SEG_ATTR_TYPE_DATA_RW_ACCESSED | SEG_ATTR_S | SEG_ATTR_PRESENT,
		};
	s->seg[SEG_CS] = (struct segment_state){
		.selector = RESET_CS,
		.base = (uint64_t)RESET_CS << 4,
		.limit = 0xffff,
		.attributes = SEG_ATTR_TYPE_CODE_RX_ACCESSED | SEG_ATTR_S | SEG_ATTR_PRESENT,
	};
	system_segments(s);
	return 0;
}

static void build_page_tables(struct vm *vm)
{
	uint64_t *pml4 = vm_gpa_to_host(vm, LONG_PML4, SIZE_4K);
	uint64_t *pdpt = vm_gpa_to_host(vm, LONG_PDPT, SIZE_4K);

	pml4[0] = LONG_PDPT | PTE_PRESENT | PTE_WRITABLE;
	for (unsigned gb = 0; gb < 4; gb++) {
		uint64_t *pd = vm_gpa_to_host(vm, LONG_PD + gb * SIZE_4K, SIZE_4K);
		pdpt[gb] = (LONG_PD + gb * SIZE_4K) | PTE_PRESENT | PTE_WRITABLE;
		for (unsigned i = 0; i < PAGE_TABLE_ENTRIES; i++)
			pd[i] = (gb * SIZE_1G + i * SIZE_2M) | PTE_PRESENT | PTE_WRITABLE | PTE_LARGE;
	}
}

/*
 * 64-bit mode with paging on the identity map build_page_tables() writes,
 * flat segments from the GDT at gdt_base, interrupts off.
 */
static void long_mode_state(struct vcpu_boot_state *s, uint64_t rip, uint64_t rsp,
			    uint64_t gdt_base, uint32_t gdt_limit, uint16_t cs, uint16_t ds)
{
	*s = (struct vcpu_boot_state){
		.rip = rip,
		.rsp = rsp,
		.rflags = RFLAGS_RESERVED_1,
		.cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_WP | CR0_PG,
		.cr3 = LONG_PML4,
		.cr4 = CR4_PAE,
		.efer = EFER_LME | EFER_LMA,
		.gdt_base = gdt_base,
		.gdt_limit = gdt_limit,
	};
	for (unsigned i = SEG_ES; i <= SEG_GS; i++)
		s->seg[i] = flat(ds, SEG_ATTR_TYPE_DATA_RW_ACCESSED, SEG_ATTR_DB);
	s->seg[SEG_CS] = flat(cs, SEG_ATTR_TYPE_CODE_RX_ACCESSED, SEG_ATTR_LONG);
	system_segments(s);
}

static int prepare_long(struct vm *vm, struct vcpu_boot_state *s, char *why, size_t n)
{
	const struct cfg_vm *cfg = vm->cfg;
	uint64_t load = cfg->load_set ? cfg->load : LONG_DEFAULT_LOAD;
	uint64_t entry = cfg->entry_set ? cfg->entry : load;
	uint64_t size = vm->boot->image.size;

	if (load < LONG_CMDLINE + CFG_CMDLINE_MAX || !vm_gpa_is_ram(vm, load, size)) {
		fmt_snprintf(why, n, "the image (%llu bytes at 0x%llx) does not fit in RAM above "
			     "the boot structures", (unsigned long long)size,
			     (unsigned long long)load);
		return -1;
	}
	if (!vm_gpa_is_ram(vm, entry, 1)) {
		fmt_snprintf(why, n, "entry 0x%llx is outside RAM", (unsigned long long)entry);
		return -1;
	}
	memcpy(vm_gpa_to_host(vm, load, size), (const void *)(uintptr_t)vm->boot->image.base, size);
	build_page_tables(vm);

	/* Null, 64-bit code, data: the same flat layout the hypervisor uses. */
	uint64_t *gdt = vm_gpa_to_host(vm, LONG_GDT, 3 * 8);
	gdt[0] = 0;
	gdt[1] = 0x00af9b000000ffffULL;
	gdt[2] = 0x00cf93000000ffffULL;
	size_t cmdlen = strlen(cfg->cmdline);
	memcpy(vm_gpa_to_host(vm, LONG_CMDLINE, cmdlen + 1), cfg->cmdline, cmdlen + 1);

	long_mode_state(s, entry, load, LONG_GDT, 3 * 8 - 1, LONG_CS, LONG_DS);
	s->rsi = cmdlen ? LONG_CMDLINE : 0;
	s->rdi = vm->boot->ram_bytes;
	return 0;
}

/*
 * An unmodified Linux kernel by its 64-bit boot protocol: the ACPI tables
 * that describe the VM's platform (vmm/platform.h), then the kernel,
 * initrd, command line and zero page (vmm/linux_boot.h), entered in long
 * mode on an identity map of the first 4 GiB.
 */
static int prepare_linux(struct vm *vm, struct vcpu_boot_state *s, char *why, size_t n)
{
	const struct boot_vm *boot = vm->boot;
	struct acpi_pci_route routes[PLATFORM_VIRTIO_MAX];
	const struct acpi_tables_config tables = {
		.pm1a_evt_port = ACPI_PM1A_EVT_PORT,
		.pm1a_cnt_port = ACPI_PM1A_CNT_PORT,
		.pm_tmr_port = ACPI_PM_TMR_PORT,
		.pci_mem_base = PLATFORM_PCI_MEM_BASE,
		.pci_mem_size = PLATFORM_PCI_MEM_SIZE,
		.pci_routes = routes,
		.pci_route_count = platform_pci_routes(vm, routes),
	};
	const struct linux_mmio mmio[] = {
		/* The APIC pages are linux_boot's own; BARs stay out of the map. */
		{ PLATFORM_PCI_MEM_BASE, PLATFORM_PCI_MEM_SIZE, false },
	};
	struct acpi_tables_layout layout;
	const char *error;

	if (!vm_gpa_is_ram(vm, 0, LINUX_ACPI_GPA + LINUX_ACPI_SIZE)) {
		fmt_snprintf(why, n, "a Linux VM needs more than 1 MiB of RAM");
		return -1;
	}
	if (acpi_tables_build(vm_gpa_to_host(vm, LINUX_ACPI_GPA, LINUX_ACPI_SIZE), LINUX_ACPI_SIZE,
			      LINUX_ACPI_GPA, &tables, &layout, &error)) {
		fmt_snprintf(why, n, "ACPI tables: %s", error);
		return -1;
	}
	const struct linux_boot_config cfg = {
		.image = (const void *)(uintptr_t)boot->image.base,
		.image_size = boot->image.size,
		.initrd = (const void *)(uintptr_t)boot->initrd.base,
		.initrd_size = boot->initrd.size,
		.cmdline = vm->cfg->cmdline,
		.acpi_rsdp = layout.rsdp,
		.mmio = mmio,
		.mmio_count = sizeof(mmio) / sizeof(mmio[0]),
	};
	struct linux_boot_entry entry;
	if (linux_boot_load(vm_gpa_to_host(vm, 0, boot->ram_bytes), boot->ram_bytes, &cfg, &entry,
			    why, n))
		return -1;
	build_page_tables(vm);

	long_mode_state(s, entry.rip, entry.rsp, entry.gdt_base, entry.gdt_limit, entry.cs,
			entry.ds);
	s->rsi = entry.rsi;
	return 0;
}

int guest_boot_prepare(struct vm *vm, struct vcpu_boot_state *state, char *why,
		       size_t why_size)
{
	/* An imported VM whose boot files this library lacks runs only from its saved state. */
	const char *absent = !vm->boot->image.size ? vm->cfg->image
			     : vm->cfg->initrd[0] && !vm->boot->initrd.size ? vm->cfg->initrd
									   : NULL;
	if (absent) {
		fmt_snprintf(why, why_size, "'%s' is not in this hypervisor's image library (the VM "
			     "came with an import; only its saved state could run)", absent);
		return -1;
	}
	/* Nothing of a previous run, or of the host, may show through. */
	memset(vm_gpa_to_host(vm, 0, vm->boot->ram_bytes), 0, vm->boot->ram_bytes);
	switch (vm->cfg->boot) {
	case VM_BOOT_REAL:
		return prepare_real(vm, state, why, why_size);
	case VM_BOOT_LONG:
		return prepare_long(vm, state, why, why_size);
	case VM_BOOT_LINUX:
		return prepare_linux(vm, state, why, why_size);
	}
	fmt_snprintf(why, why_size, "unknown boot mode");
	return -1;
}
