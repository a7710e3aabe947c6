/*
 * Loading a Linux bzImage by the 64-bit boot protocol
 * (Documentation/arch/x86/boot.rst, "64-bit Boot Protocol", and
 * zero-page.rst for struct boot_params).
 *
 * Guest-physical layout of a Linux VM (RAM is [0, ram_size)):
 *
 *   0x00000-0x00fff  zero: real-mode IVT and BIOS data area (no EBDA pointer)
 *   0x01000-0x06fff  the caller's page tables (see below)
 *   0x07000-0x0701f  GDT, written here (LINUX_GDT_GPA)
 *   0x07020-0x07fff  initial stack, top at LINUX_STACK_TOP
 *   0x08000-0x08fff  boot_params, the "zero page" (LINUX_BOOT_PARAMS_GPA)
 *   0x09000-0x09fff  kernel command line (LINUX_CMDLINE_GPA)
 *   0x0a000-0x9fbff  free conventional memory
 *   0x9fc00-0x9ffff  reserved (where an EBDA would be)
 *   0xa0000-0xeffff  not in the memory map (VGA window, option ROMs)
 *   0xf0000-0xfffff  reserved: the ACPI tables, RSDP first (LINUX_ACPI_GPA)
 *   0x100000-        RAM: the kernel at pref_address (16 MiB for Debian's),
 *                    the initrd as high as initrd_addr_max and RAM allow
 *   0xfec00000       I/O APIC page, reserved
 *   0xfee00000       local APIC page, reserved
 *
 * What the caller provides (boot.rst, 64-bit protocol): 64-bit mode with
 * paging, and an identity map of the kernel's init_size range from its
 * load address, the zero page and the command line. The initrd is not in
 * that list (the kernel reaches it through its own page tables), but it is
 * placed below 4 GiB too. All of it lies below out->map_top <= 4 GiB, so
 * guest_boot.c's identity map of the first 4 GiB with 2-MiB pages at
 * 0x1000-0x6fff suffices and no other page tables are needed. The GDT
 * at LINUX_GDT_GPA has flat __BOOT_CS (0x10, 64-bit code, execute/read)
 * and __BOOT_DS (0x18, read/write) as the protocol requires: CS =
 * LINUX_BOOT_CS; DS, ES and SS = LINUX_BOOT_DS; interrupts disabled;
 * RSI = boot_params; RIP = the 64-bit entry. The stack is not part of the
 * protocol, but the decompressor pushes a far return before it switches to
 * its own, so RSP must point at writable memory: LINUX_STACK_TOP.
 */
#ifndef VMM_LINUX_BOOT_H
#define VMM_LINUX_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LINUX_GDT_GPA 0x7000
#define LINUX_STACK_TOP 0x8000
#define LINUX_BOOT_PARAMS_GPA 0x8000
#define LINUX_CMDLINE_GPA 0x9000
#define LINUX_CMDLINE_MAX 0x1000 /* bytes, with the NUL */
#define LINUX_ACPI_GPA 0xf0000
#define LINUX_ACPI_SIZE 0x10000
#define LINUX_IDENTITY_MAP_TOP (4ULL << 30)

#define LINUX_BOOT_CS 0x10
#define LINUX_BOOT_DS 0x18

/* Caller-defined MMIO regions that RAM must give way to, at most LINUX_MAX_MMIO. */
#define LINUX_MAX_MMIO 16

struct linux_mmio {
	uint64_t base, size; /* at or above 1 MiB */
	/*
	 * true: listed as reserved in the e820 map, for ranges Linux must
	 * never hand out. false: left out of the map altogether, which is
	 * what a PCI BAR window needs: Linux keeps BAR assignments out of
	 * E820-reserved ranges even inside a host bridge window ("PCI: Using
	 * E820 reservations for host bridge windows"), so a reserved BAR
	 * window leaves it nowhere to put a BAR it has to (re)assign.
	 */
	bool reserve;
};

struct linux_boot_config {
	const void *image; /* the bzImage file, untrusted */
	uint64_t image_size;
	const void *initrd; /* NULL when initrd_size is 0 */
	uint64_t initrd_size;
	const char *cmdline; /* NUL-terminated, "" for none */
	uint64_t acpi_rsdp;  /* guest-physical RSDP, 0 for none */
	const struct linux_mmio *mmio;
	unsigned mmio_count;
};

/* The vCPU state at the 64-bit entry, and where things went. */
struct linux_boot_entry {
	uint64_t rip; /* the 64-bit entry: kernel_base + 0x200 */
	uint64_t rsi; /* boot_params */
	uint64_t rsp;
	uint64_t gdt_base;
	uint16_t gdt_limit;
	uint16_t cs, ds;
	uint64_t kernel_base, kernel_end; /* [load address, + init_size) */
	uint64_t initrd_base;             /* 0 without an initrd */
	uint64_t map_top; /* [0, map_top) must be identity-mapped */
};

/* struct setup_header (boot.rst, "The Real-Mode Kernel Header"), 2.15. */
struct linux_setup_header {
	uint8_t setup_sects;
	uint16_t root_flags;
	uint32_t syssize;
	uint16_t ram_size;
	uint16_t vid_mode;
	uint16_t root_dev;
	uint16_t boot_flag;
	uint16_t jump;
	uint32_t header;
	uint16_t version;
	uint32_t realmode_swtch;
	uint16_t start_sys_seg;
	uint16_t kernel_version;
	uint8_t type_of_loader;
	uint8_t loadflags;
	uint16_t setup_move_size;
	uint32_t code32_start;
	uint32_t ramdisk_image;
	uint32_t ramdisk_size;
	uint32_t bootsect_kludge;
	uint16_t heap_end_ptr;
	uint8_t ext_loader_ver;
	uint8_t ext_loader_type;
	uint32_t cmd_line_ptr;
	uint32_t initrd_addr_max;
	uint32_t kernel_alignment;
	uint8_t relocatable_kernel;
	uint8_t min_alignment;
	uint16_t xloadflags;
	uint32_t cmdline_size;
	uint32_t hardware_subarch;
	uint64_t hardware_subarch_data;
	uint32_t payload_offset;
	uint32_t payload_length;
	uint64_t setup_data;
	uint64_t pref_address;
	uint32_t init_size;
	uint32_t handover_offset;
	uint32_t kernel_info_offset;
} __attribute__((packed));

#define LINUX_HDRS 0x53726448U /* "HdrS" */
#define LINUX_BOOT_FLAG 0xaa55
#define LINUX_LOADFLAG_QUIET (1U << 5)
#define LINUX_LOADFLAG_CAN_USE_HEAP (1U << 7)
#define LINUX_XLF_KERNEL_64 (1U << 0)
#define LINUX_LOADER_UNDEFINED 0xff

/* One e820 entry (zero-page.rst: e820_table, struct boot_e820_entry). */
struct linux_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

_Static_assert(sizeof(struct linux_e820_entry) == 20, "e820 entry is 20 bytes");

#define LINUX_E820_RAM 1
#define LINUX_E820_RESERVED 2
#define LINUX_E820_MAX 128

/* struct screen_info (include/uapi/linux/screen_info.h), the fields that matter. */
struct linux_screen_info {
	uint8_t unused0[6];
	uint8_t orig_video_mode;
	uint8_t orig_video_cols;
	uint8_t unused1[6];
	uint8_t orig_video_lines;
	uint8_t orig_video_is_vga;
	uint8_t unused2[0x30];
} __attribute__((packed));

_Static_assert(offsetof(struct linux_screen_info, orig_video_mode) == 0x06, "orig_video_mode");
_Static_assert(offsetof(struct linux_screen_info, orig_video_lines) == 0x0e, "orig_video_lines");
_Static_assert(offsetof(struct linux_screen_info, orig_video_is_vga) == 0x0f, "orig_video_isVGA");
_Static_assert(sizeof(struct linux_screen_info) == 0x40, "screen_info is 0x40 bytes");

/* struct boot_params (zero-page.rst): one 4-KiB page. */
struct linux_boot_params {
	struct linux_screen_info screen_info;
	uint8_t unused0[0x30]; /* apm_bios_info, tboot_addr, ist_info */
	uint64_t acpi_rsdp_addr;
	uint8_t unused1[0x48];
	uint32_t ext_ramdisk_image;
	uint32_t ext_ramdisk_size;
	uint32_t ext_cmd_line_ptr;
	uint8_t unused2[0x11c];
	uint8_t e820_entries;
	uint8_t unused3[6];
	uint8_t sentinel;
	uint8_t unused4;
	struct linux_setup_header hdr;
	uint8_t unused5[0x290 - 0x1f1 - sizeof(struct linux_setup_header)];
	uint8_t edd_mbr_sig_buffer[0x40];
	struct linux_e820_entry e820_table[LINUX_E820_MAX];
	uint8_t unused6[0x1000 - 0xcd0];
} __attribute__((packed));

_Static_assert(offsetof(struct linux_boot_params, acpi_rsdp_addr) == 0x070, "acpi_rsdp_addr");
_Static_assert(offsetof(struct linux_boot_params, ext_ramdisk_image) == 0x0c0, "ext_ramdisk_image");
_Static_assert(offsetof(struct linux_boot_params, ext_ramdisk_size) == 0x0c4, "ext_ramdisk_size");
_Static_assert(offsetof(struct linux_boot_params, ext_cmd_line_ptr) == 0x0c8, "ext_cmd_line_ptr");
_Static_assert(offsetof(struct linux_boot_params, e820_entries) == 0x1e8, "e820_entries");
_Static_assert(offsetof(struct linux_boot_params, sentinel) == 0x1ef, "sentinel");
_Static_assert(offsetof(struct linux_boot_params, hdr) == 0x1f1, "setup header");
_Static_assert(offsetof(struct linux_boot_params, hdr.syssize) == 0x1f4, "syssize");
_Static_assert(offsetof(struct linux_boot_params, hdr.boot_flag) == 0x1fe, "boot_flag");
_Static_assert(offsetof(struct linux_boot_params, hdr.header) == 0x202, "header magic");
_Static_assert(offsetof(struct linux_boot_params, hdr.version) == 0x206, "version");
_Static_assert(offsetof(struct linux_boot_params, hdr.type_of_loader) == 0x210, "type_of_loader");
_Static_assert(offsetof(struct linux_boot_params, hdr.loadflags) == 0x211, "loadflags");
_Static_assert(offsetof(struct linux_boot_params, hdr.ramdisk_image) == 0x218, "ramdisk_image");
_Static_assert(offsetof(struct linux_boot_params, hdr.heap_end_ptr) == 0x224, "heap_end_ptr");
_Static_assert(offsetof(struct linux_boot_params, hdr.cmd_line_ptr) == 0x228, "cmd_line_ptr");
_Static_assert(offsetof(struct linux_boot_params, hdr.initrd_addr_max) == 0x22c, "initrd_addr_max");
_Static_assert(offsetof(struct linux_boot_params, hdr.kernel_alignment) == 0x230, "kernel_alignment");
_Static_assert(offsetof(struct linux_boot_params, hdr.relocatable_kernel) == 0x234, "relocatable");
_Static_assert(offsetof(struct linux_boot_params, hdr.xloadflags) == 0x236, "xloadflags");
_Static_assert(offsetof(struct linux_boot_params, hdr.cmdline_size) == 0x238, "cmdline_size");
_Static_assert(offsetof(struct linux_boot_params, hdr.setup_data) == 0x250, "setup_data");
_Static_assert(offsetof(struct linux_boot_params, hdr.pref_address) == 0x258, "pref_address");
_Static_assert(offsetof(struct linux_boot_params, hdr.init_size) == 0x260, "init_size");
_Static_assert(offsetof(struct linux_boot_params, hdr.kernel_info_offset) == 0x268, "kernel_info");
_Static_assert(offsetof(struct linux_boot_params, e820_table) == 0x2d0, "e820_table");
_Static_assert(sizeof(struct linux_boot_params) == 0x1000, "boot_params is one page");

/*
 * Loads cfg->image into ram[0, ram_size) (guest-physical [0, ram_size)),
 * with the initrd, command line, zero page and GDT, as laid out above.
 * Writes only those ranges: the caller clears RAM first, builds the page
 * tables and the ACPI tables (at LINUX_ACPI_GPA, cfg->acpi_rsdp). Returns 0
 * and fills *out, or -1 with a message in why.
 */
int linux_boot_load(uint8_t *ram, uint64_t ram_size, const struct linux_boot_config *cfg,
		    struct linux_boot_entry *out, char *why, size_t why_size);

#endif
