#include "vmm/linux_boot.h"

#include "devices/acpi_tables.h"
#include "devices/ioapic.h"
#include "devices/lapic.h"
#include "lib/fmt.h"

#include <string.h>

#define KIB 1024ULL
#define MIB (1024 * KIB)
#define PAGE 4096ULL

/* boot.rst: the header ends at 0x202 + the byte at 0x201 (the jump's offset). */
#define HDR_START 0x1f1
#define HDR_JUMP_OFFSET 0x201
#define HDR_MAGIC 0x202
#define HDR_FIXED_END 0x208 /* through the version field */
#define HDR_END_2_12 0x268  /* handover_offset, the last 2.12 field, ends here */
#define HDR_SPACE_END 0x290 /* boot_params has room for the header up to here */
#define PROTOCOL_64BIT 0x020c /* 2.12: xloadflags and XLF_KERNEL_64 */
#define SECTOR 512
#define SETUP_SECTS_DEFAULT 4 /* boot.rst: "If this field is 0, the real value is 4" */
#define ENTRY_64_OFFSET 0x200
#define BZIMAGE_LOAD 0x100000 /* where a bzImage goes without pref_address */
#define MAX_KERNEL_ALIGNMENT (1ULL << 30)
/*
 * Only the 16-bit setup code reads heap_end_ptr, and the 64-bit entry
 * skips it; boot.rst asks every 2.01+ loader for it with CAN_USE_HEAP, so
 * we declare the whole 64-KiB setup segment as the conventional value.
 */
#define HEAP_END_PTR 0xfe00

/*
 * Conventional memory stops where a PC keeps a 1-KiB EBDA, and the BIOS
 * area holds the ACPI tables: both are reserved, as firmware reports them,
 * so nothing the kernel allocates can land on the tables.
 */
#define LOW_RAM_TOP 0x9fc00
#define EBDA_SIZE (0xa0000 - LOW_RAM_TOP)
#define BIOS_AREA 0xf0000
#define BIOS_AREA_SIZE (MIB - BIOS_AREA)

_Static_assert(LINUX_ACPI_GPA >= BIOS_AREA && LINUX_ACPI_GPA + LINUX_ACPI_SIZE <= MIB,
	       "the ACPI tables are in the reserved BIOS area");
_Static_assert(LINUX_CMDLINE_GPA + LINUX_CMDLINE_MAX <= LOW_RAM_TOP &&
	       LINUX_BOOT_PARAMS_GPA + sizeof(struct linux_boot_params) <= LINUX_CMDLINE_GPA,
	       "boot structures stay in conventional memory");

/*
 * boot.rst wants flat __BOOT_CS at 0x10 and __BOOT_DS at 0x18; the code
 * segment is a 64-bit one (L set) as the vCPU starts in long mode.
 */
static const uint64_t gdt[] = { 0, 0, 0x00af9b000000ffffULL, 0x00cf93000000ffffULL };

_Static_assert(LINUX_GDT_GPA + sizeof(gdt) <= LINUX_STACK_TOP - KIB, "GDT below the stack");

#define BUILTIN_REGIONS 4

/* Every region splits at most one RAM range in two, plus low RAM and the tail. */
_Static_assert(2 * (BUILTIN_REGIONS + LINUX_MAX_MMIO) + 2 <= LINUX_E820_MAX,
	       "the e820 table cannot overflow");

struct loader {
	uint8_t *ram;
	uint64_t ram_size;
	const struct linux_boot_config *cfg;
	struct linux_boot_params *bp;
	struct linux_setup_header hdr; /* from the file, fields past its end zero */
	uint64_t hdr_end, setup_size, payload_size;
	char *why;
	size_t why_size;
};

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static int fail(struct loader *l, const char *message)
{
	fmt_snprintf(l->why, l->why_size, "%s", message);
	return -1;
}

/*
 * Reads and bounds the setup header. Every field is taken from a copy that
 * holds only the bytes the file has and the header's own length covers.
 */
static int parse_header(struct loader *l)
{
	const uint8_t *image = l->cfg->image;
	uint64_t size = l->cfg->image_size;
	struct linux_setup_header *h = &l->hdr;
	uint32_t magic;

	if (size < HDR_FIXED_END)
		return fail(l, "not a Linux bzImage: too short for a setup header");
	memcpy(&magic, image + HDR_MAGIC, sizeof(magic));
	if (magic != LINUX_HDRS)
		return fail(l, "not a Linux bzImage: no \"HdrS\" signature at 0x202");
	memcpy(h, image + HDR_START, HDR_FIXED_END - HDR_START);
	if (h->version < PROTOCOL_64BIT) {
		fmt_snprintf(l->why, l->why_size,
			     "boot protocol %u.%02u is too old: the 64-bit entry needs 2.12",
			     h->version >> 8, h->version & 0xff);
		return -1;
	}

	uint64_t hdr_end = HDR_MAGIC + (uint64_t)image[HDR_JUMP_OFFSET];

	if (hdr_end < HDR_END_2_12 || hdr_end > HDR_SPACE_END || hdr_end > size) {
		fmt_snprintf(l->why, l->why_size,
			     "setup header ends at 0x%llx, outside 0x%x-0x%x or the file",
			     (unsigned long long)hdr_end, HDR_END_2_12, HDR_SPACE_END);
		return -1;
	}
	l->hdr_end = hdr_end;
	memcpy(h, image + HDR_START, min_u64(hdr_end, HDR_START + sizeof(*h)) - HDR_START);
	if (h->boot_flag != LINUX_BOOT_FLAG)
		return fail(l, "not a Linux bzImage: boot_flag is not 0xaa55");
	if (!(h->xloadflags & LINUX_XLF_KERNEL_64))
		return fail(l, "the kernel has no 64-bit entry point (XLF_KERNEL_64 clear)");

	l->setup_size = ((uint64_t)(h->setup_sects ? h->setup_sects : SETUP_SECTS_DEFAULT) + 1) *
			SECTOR;
	if (l->setup_size < hdr_end || l->setup_size >= size) {
		fmt_snprintf(l->why, l->why_size,
			     "setup_sects %u: %llu bytes of setup code do not fit the %llu-byte file",
			     h->setup_sects, (unsigned long long)l->setup_size,
			     (unsigned long long)size);
		return -1;
	}
	/* syssize, not the file size: a signed image carries its signature after the kernel. */
	l->payload_size = (uint64_t)h->syssize * 16;
	if (!l->payload_size || l->payload_size > size - l->setup_size) {
		fmt_snprintf(l->why, l->why_size,
			     "syssize says %llu bytes of kernel, the file has %llu after the setup code",
			     (unsigned long long)l->payload_size,
			     (unsigned long long)(size - l->setup_size));
		return -1;
	}
	if (h->init_size < l->payload_size) {
		fmt_snprintf(l->why, l->why_size, "init_size 0x%x is smaller than the kernel (%llu bytes)",
			     h->init_size, (unsigned long long)l->payload_size);
		return -1;
	}
	if (h->relocatable_kernel &&
	    (h->kernel_alignment < PAGE || h->kernel_alignment > MAX_KERNEL_ALIGNMENT ||
	     (h->kernel_alignment & (h->kernel_alignment - 1)))) {
		fmt_snprintf(l->why, l->why_size,
			     "kernel_alignment 0x%x is not a power of two from 4 KiB to 1 GiB",
			     h->kernel_alignment);
		return -1;
	}
	return 0;
}

struct region {
	uint64_t base, size;
	bool reserve;
};

static void add_e820(struct linux_boot_params *bp, uint64_t addr, uint64_t size, uint32_t type)
{
	bp->e820_table[bp->e820_entries++] = (struct linux_e820_entry){
		.addr = addr,
		.size = size,
		.type = type,
	};
}

/*
 * The memory map describes exactly the VM: conventional memory, the BIOS
 * area, RAM from 1 MiB less the MMIO regions, the APIC pages and the
 * caller's regions. Entries are in address order, as a BIOS reports them.
 */
static int build_e820(struct loader *l)
{
	struct region r[BUILTIN_REGIONS + LINUX_MAX_MMIO] = {
		{ LOW_RAM_TOP, EBDA_SIZE, true },
		{ BIOS_AREA, BIOS_AREA_SIZE, true },
		{ IOAPIC_DEFAULT_BASE, IOAPIC_MMIO_SIZE, true },
		{ LAPIC_DEFAULT_BASE, LAPIC_MMIO_SIZE, true },
	};
	unsigned n = BUILTIN_REGIONS;
	const struct linux_boot_config *cfg = l->cfg;

	if (cfg->mmio_count > LINUX_MAX_MMIO)
		return fail(l, "too many MMIO regions");
	for (unsigned i = 0; i < cfg->mmio_count; i++) {
		const struct linux_mmio *m = &cfg->mmio[i];

		if (m->base < MIB || !m->size || m->size > UINT64_MAX - m->base) {
			fmt_snprintf(l->why, l->why_size,
				     "MMIO region 0x%llx+0x%llx must be non-empty, above 1 MiB",
				     (unsigned long long)m->base, (unsigned long long)m->size);
			return -1;
		}
		/* Insertion sort: a handful of regions. */
		unsigned j = n++;
		for (; j > 0 && r[j - 1].base > m->base; j--)
			r[j] = r[j - 1];
		r[j] = (struct region){ m->base, m->size, m->reserve };
	}
	for (unsigned i = 1; i < n; i++)
		if (r[i].base < r[i - 1].base + r[i - 1].size) {
			fmt_snprintf(l->why, l->why_size, "MMIO regions at 0x%llx and 0x%llx overlap",
				     (unsigned long long)r[i - 1].base,
				     (unsigned long long)r[i].base);
			return -1;
		}

	struct linux_boot_params *bp = l->bp;
	uint64_t cursor = MIB;

	add_e820(bp, 0, LOW_RAM_TOP, LINUX_E820_RAM);
	for (unsigned i = 0; i < n; i++) {
		uint64_t ram_end = min_u64(r[i].base, l->ram_size);

		if (cursor < ram_end)
			add_e820(bp, cursor, ram_end - cursor, LINUX_E820_RAM);
		if (r[i].reserve)
			add_e820(bp, r[i].base, r[i].size, LINUX_E820_RESERVED);
		cursor = max_u64(cursor, r[i].base + r[i].size);
	}
	if (cursor < l->ram_size)
		add_e820(bp, cursor, l->ram_size - cursor, LINUX_E820_RAM);
	return 0;
}

/* [base, base + size) within one RAM entry above 1 MiB and below the identity map's top. */
static bool in_ram(const struct linux_boot_params *bp, uint64_t base, uint64_t size)
{
	if (base < MIB || base > LINUX_IDENTITY_MAP_TOP || size > LINUX_IDENTITY_MAP_TOP - base)
		return false;
	for (unsigned i = 0; i < bp->e820_entries; i++) {
		const struct linux_e820_entry *e = &bp->e820_table[i];

		if (e->type == LINUX_E820_RAM && base >= e->addr && base + size <= e->addr + e->size)
			return true;
	}
	return false;
}

/*
 * boot.rst (init_size): the kernel runs from its "runtime start": for a
 * relocatable kernel the load address raised to pref_address if below it,
 * then aligned up to kernel_alignment; otherwise pref_address. From there
 * it needs init_size bytes before it reads the memory map, as it
 * decompresses in that range. Loading at the runtime start makes the two
 * one range: the lowest one in RAM at or above pref_address ("A relocating
 * bootloader should attempt to load at this address if possible").
 */
static int place_kernel(struct loader *l, uint64_t *load)
{
	const struct linux_setup_header *h = &l->hdr;
	uint64_t pref = h->pref_address ? h->pref_address : BZIMAGE_LOAD;
	uint64_t need = h->init_size;

	if (pref >= LINUX_IDENTITY_MAP_TOP) {
		fmt_snprintf(l->why, l->why_size, "pref_address 0x%llx is not below 4 GiB",
			     (unsigned long long)pref);
		return -1;
	}
	if (!h->relocatable_kernel) {
		if (in_ram(l->bp, pref, need)) {
			*load = pref;
			return 0;
		}
		fmt_snprintf(l->why, l->why_size,
			     "the kernel is not relocatable and 0x%llx bytes (init_size) at 0x%llx "
			     "are not all RAM", (unsigned long long)need, (unsigned long long)pref);
		return -1;
	}
	for (unsigned i = 0; i < l->bp->e820_entries; i++) {
		const struct linux_e820_entry *e = &l->bp->e820_table[i];
		uint64_t at = align_up(max_u64(e->addr, pref), h->kernel_alignment);

		if (e->type == LINUX_E820_RAM && in_ram(l->bp, at, need)) {
			*load = at;
			return 0;
		}
	}
	fmt_snprintf(l->why, l->why_size,
		     "no room for the kernel: it needs 0x%llx bytes (init_size) from 0x%llx on, "
		     "aligned to 0x%x, in %llu MiB of RAM", (unsigned long long)need,
		     (unsigned long long)pref, h->kernel_alignment,
		     (unsigned long long)(l->ram_size / MIB));
	return -1;
}

/* The highest page-aligned start for size bytes in [lo, hi), or 0 if none. */
static uint64_t highest_fit(uint64_t lo, uint64_t hi, uint64_t size)
{
	if (hi <= lo || hi - lo < size)
		return 0;
	uint64_t at = (hi - size) & ~(PAGE - 1);

	return at >= lo ? at : 0;
}

/*
 * boot.rst: the initrd must end at or below initrd_addr_max (its highest
 * byte); loaders put it as high as they can, out of the kernel's way. Here
 * it must also miss the kernel's whole init_size range, which the kernel
 * overwrites while it decompresses, and stay below the identity map's top.
 */
static int place_initrd(struct loader *l, uint64_t kbase, uint64_t kend, uint64_t *at)
{
	uint64_t size = l->cfg->initrd_size;
	uint64_t limit = min_u64((uint64_t)l->hdr.initrd_addr_max + 1, LINUX_IDENTITY_MAP_TOP);
	const struct linux_boot_params *bp = l->bp;

	*at = 0;
	for (unsigned i = 0; i < bp->e820_entries; i++) {
		const struct linux_e820_entry *e = &bp->e820_table[i];

		if (e->type != LINUX_E820_RAM)
			continue;
		uint64_t lo = max_u64(e->addr, MIB);
		uint64_t hi = min_u64(e->addr + e->size, limit);
		/* Below the kernel, then above it; either may be empty. */
		uint64_t below = highest_fit(lo, min_u64(hi, kbase), size);
		uint64_t above = highest_fit(max_u64(lo, kend), hi, size);

		*at = max_u64(*at, max_u64(below, above));
	}
	if (!*at) {
		fmt_snprintf(l->why, l->why_size,
			     "the initrd (%llu bytes) does not fit in RAM below 0x%llx beside the "
			     "kernel", (unsigned long long)size, (unsigned long long)limit);
		return -1;
	}
	return 0;
}

static int copy_cmdline(struct loader *l)
{
	const char *s = l->cfg->cmdline;
	/* cmdline_size excludes the NUL (boot.rst, 2.06+). */
	uint64_t max = min_u64(l->hdr.cmdline_size, LINUX_CMDLINE_MAX - 1);
	uint64_t len = 0;

	while (len <= max && s[len])
		len++;
	if (len > max) {
		fmt_snprintf(l->why, l->why_size,
			     "the command line is longer than the %llu characters the kernel takes",
			     (unsigned long long)max);
		return -1;
	}
	memset(l->ram + LINUX_CMDLINE_GPA, 0, LINUX_CMDLINE_MAX);
	memcpy(l->ram + LINUX_CMDLINE_GPA, s, len);
	return 0;
}

int linux_boot_load(uint8_t *ram, uint64_t ram_size, const struct linux_boot_config *cfg,
		    struct linux_boot_entry *out, char *why, size_t why_size)
{
	struct loader l = {
		.ram = ram,
		.ram_size = ram_size,
		.cfg = cfg,
		.bp = (struct linux_boot_params *)(ram + LINUX_BOOT_PARAMS_GPA),
		.why = why,
		.why_size = why_size,
	};
	struct linux_boot_params *bp = l.bp;
	uint64_t load, initrd = 0;

	if (ram_size < MIB)
		return fail(&l, "boot = linux needs at least 1 MiB of RAM");
	if (parse_header(&l))
		return -1;

	/* boot.rst: the zero page starts out all zero, then gets the file's header. */
	memset(bp, 0, sizeof(*bp));
	if (build_e820(&l) || place_kernel(&l, &load))
		return -1;
	if (cfg->initrd_size && place_initrd(&l, load, load + l.hdr.init_size, &initrd))
		return -1;
	if (copy_cmdline(&l))
		return -1;

	memcpy((uint8_t *)bp + HDR_START, (const uint8_t *)cfg->image + HDR_START,
	       l.hdr_end - HDR_START);
	/*
	 * sentinel (0x1ef) stays 0: only the header from 0x1f1 is copied, so
	 * the kernel does not take this for a loader that copied the whole
	 * sector and clear fields we set (sanitize_boot_params).
	 */
	bp->hdr.type_of_loader = LINUX_LOADER_UNDEFINED;
	bp->hdr.loadflags = (uint8_t)((bp->hdr.loadflags | LINUX_LOADFLAG_CAN_USE_HEAP) &
				      ~LINUX_LOADFLAG_QUIET);
	bp->hdr.heap_end_ptr = HEAP_END_PTR;
	/* We pass no setup_data list; a value in the file is not a pointer we made. */
	bp->hdr.setup_data = 0;
	/* 64-bit values: low half in the header, high half in the ext_ field (zero-page.rst). */
	bp->hdr.cmd_line_ptr = LINUX_CMDLINE_GPA;
	bp->ext_cmd_line_ptr = 0;
	bp->hdr.ramdisk_image = (uint32_t)initrd;
	bp->ext_ramdisk_image = (uint32_t)(initrd >> 32);
	bp->hdr.ramdisk_size = (uint32_t)cfg->initrd_size;
	bp->ext_ramdisk_size = (uint32_t)(cfg->initrd_size >> 32);
	bp->acpi_rsdp_addr = cfg->acpi_rsdp;
	/*
	 * No video: vgacon takes mode, columns and lines all 0 to mean no VGA
	 * (vgacon_startup), and orig_video_isVGA 0 is no VESA or EFI
	 * framebuffer, so the kernel leaves 0xb8000 and the VGA ports alone.
	 */
	bp->screen_info = (struct linux_screen_info){ 0 };

	memcpy(ram + LINUX_GDT_GPA, gdt, sizeof(gdt));
	memcpy(ram + load, (const uint8_t *)cfg->image + l.setup_size, l.payload_size);
	if (cfg->initrd_size)
		memcpy(ram + initrd, cfg->initrd, cfg->initrd_size);

	*out = (struct linux_boot_entry){
		.rip = load + ENTRY_64_OFFSET,
		.rsi = LINUX_BOOT_PARAMS_GPA,
		.rsp = LINUX_STACK_TOP,
		.gdt_base = LINUX_GDT_GPA,
		.gdt_limit = sizeof(gdt) - 1,
		.cs = LINUX_BOOT_CS,
		.ds = LINUX_BOOT_DS,
		.kernel_base = load,
		.kernel_end = load + l.hdr.init_size,
		.initrd_base = initrd,
		.map_top = max_u64(load + l.hdr.init_size, initrd + cfg->initrd_size),
	};
	return 0;
}
