/* glob() and mmap's MAP_NORESERVE, for the optional real-kernel test. */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "devices/acpi_tables.h"
#include "vmm/linux_boot.h"

#define MIB (1024ULL * 1024)
#define RAM_SIZE (64 * MIB)

/*
 * A fake bzImage: 3 setup sectors after the boot sector, a setup header as
 * Debian's 6.1 kernel has it (protocol 2.15, header to 0x26c), 64 KiB of
 * "kernel", and a trailer past syssize standing for an appended signature.
 */
#define SETUP_SECTS 3
#define SETUP_SIZE ((SETUP_SECTS + 1) * 512)
#define PAYLOAD (64 * 1024)
#define TRAILER 512
#define IMAGE_SIZE (SETUP_SIZE + PAYLOAD + TRAILER)
#define INIT_SIZE (4 * MIB)
#define PREF 0x1000000
#define ALIGN_2M 0x200000

static uint8_t image[IMAGE_SIZE];
static uint8_t *ram;
static uint64_t ram_size;
static struct linux_boot_config cfg;
static struct linux_boot_entry entry;
static char why[256];

static void put16(size_t off, uint16_t v)
{
	memcpy(image + off, &v, sizeof(v));
}

static void put32(size_t off, uint32_t v)
{
	memcpy(image + off, &v, sizeof(v));
}

static void put64(size_t off, uint64_t v)
{
	memcpy(image + off, &v, sizeof(v));
}

static void make_image(void)
{
	memset(image, 0, sizeof(image));
	image[0x1ef] = 0xff; /* the sentinel, as in a real file */
	image[0x1f1] = SETUP_SECTS;
	put32(0x1f4, PAYLOAD / 16);
	put16(0x1fa, 0xffff); /* vid_mode: normal */
	put16(0x1fe, 0xaa55);
	image[0x200] = 0xeb;
	image[0x201] = 0x6a; /* header ends at 0x26c */
	memcpy(image + 0x202, "HdrS", 4);
	put16(0x206, 0x020f);
	image[0x211] = 0x01 | 0x20; /* LOADED_HIGH, QUIET */
	put32(0x214, 0x100000);
	put32(0x22c, 0x7fffffff);
	put32(0x230, ALIGN_2M);
	image[0x234] = 1;
	image[0x235] = 21;
	put16(0x236, 0x7f);
	put32(0x238, 2047);
	put64(0x250, 0xdeadbeef); /* setup_data: must not reach the kernel */
	put64(0x258, PREF);
	put32(0x260, INIT_SIZE);
	for (size_t i = 0; i < PAYLOAD; i++)
		image[SETUP_SIZE + i] = (uint8_t)(i * 7 + 1);
	memset(image + SETUP_SIZE + PAYLOAD, 0xee, TRAILER);
}

static void use_ram(uint64_t size)
{
	if (ram)
		munmap(ram, ram_size);
	ram_size = size;
	ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	assert_true(ram != MAP_FAILED);
}

static int setup(void **state)
{
	(void)state;
	make_image();
	use_ram(RAM_SIZE);
	cfg = (struct linux_boot_config){
		.image = image,
		.image_size = IMAGE_SIZE,
		.cmdline = "console=ttyS0 quiet",
		.acpi_rsdp = LINUX_ACPI_GPA,
	};
	memset(&entry, 0, sizeof(entry));
	why[0] = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	munmap(ram, ram_size);
	ram = NULL;
	return 0;
}

static const struct linux_boot_params *bp(void)
{
	return (const struct linux_boot_params *)(ram + LINUX_BOOT_PARAMS_GPA);
}

static void load_ok(void)
{
	int rc = linux_boot_load(ram, ram_size, &cfg, &entry, why, sizeof(why));

	if (rc)
		fail_msg("load failed: %s", why);
}

static void load_fails(const char *fragment)
{
	assert_int_equal(linux_boot_load(ram, ram_size, &cfg, &entry, why, sizeof(why)), -1);
	if (!strstr(why, fragment))
		fail_msg("\"%s\" does not say \"%s\"", why, fragment);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

static void test_entry_state(void **state)
{
	static const uint64_t gdt[4] = { 0, 0, 0x00af9b000000ffffULL, 0x00cf93000000ffffULL };

	(void)state;
	load_ok();
	assert_int_equal(entry.rip, PREF + 0x200);
	assert_int_equal(entry.rsi, 0x8000);
	assert_int_equal(entry.rsp, LINUX_STACK_TOP);
	assert_int_equal(entry.cs, 0x10);
	assert_int_equal(entry.ds, 0x18);
	assert_int_equal(entry.gdt_base, LINUX_GDT_GPA);
	assert_int_equal(entry.gdt_limit, 31);
	assert_memory_equal(ram + LINUX_GDT_GPA, gdt, sizeof(gdt));
	assert_int_equal(entry.kernel_base, PREF);
	assert_int_equal(entry.kernel_end, PREF + INIT_SIZE);
	assert_int_equal(entry.initrd_base, 0);
	assert_int_equal(entry.map_top, PREF + INIT_SIZE);
}

static void test_kernel_copied_without_trailer(void **state)
{
	(void)state;
	load_ok();
	assert_memory_equal(ram + PREF, image + SETUP_SIZE, PAYLOAD);
	/* syssize ends the kernel: the signature-like trailer stays behind. */
	assert_true(all_zero(ram + PREF + PAYLOAD, TRAILER));
	/* Nothing of the setup code is loaded anywhere we can see. */
	assert_true(all_zero(ram + PREF - 4096, 4096));
}

static void test_boot_params(void **state)
{
	(void)state;
	load_ok();
	const struct linux_boot_params *p = bp();

	/* The file's header, from 0x1f1 to its end at 0x26c... */
	assert_int_equal(p->hdr.setup_sects, SETUP_SECTS);
	assert_int_equal(p->hdr.boot_flag, 0xaa55);
	assert_int_equal(p->hdr.header, LINUX_HDRS);
	assert_int_equal(p->hdr.version, 0x020f);
	assert_int_equal(p->hdr.vid_mode, 0xffff);
	assert_int_equal(p->hdr.kernel_alignment, ALIGN_2M);
	assert_int_equal(p->hdr.init_size, INIT_SIZE);
	assert_int_equal(p->hdr.pref_address, PREF);
	assert_int_equal(p->hdr.cmdline_size, 2047);
	/* ...with what the loader owns filled in. */
	assert_int_equal(p->hdr.type_of_loader, 0xff);
	assert_int_equal(p->hdr.loadflags, 0x01 | 0x80); /* LOADED_HIGH, CAN_USE_HEAP, not QUIET */
	assert_int_equal(p->hdr.heap_end_ptr, 0xfe00);
	assert_int_equal(p->hdr.setup_data, 0);
	assert_int_equal(p->hdr.cmd_line_ptr, LINUX_CMDLINE_GPA);
	assert_int_equal(p->ext_cmd_line_ptr, 0);
	assert_int_equal(p->hdr.ramdisk_image, 0);
	assert_int_equal(p->hdr.ramdisk_size, 0);
	assert_int_equal(p->acpi_rsdp_addr, LINUX_ACPI_GPA);
	/* Only the header was copied: the file's sentinel byte is not there. */
	assert_int_equal(p->sentinel, 0);
	assert_int_equal(p->screen_info.orig_video_is_vga, 0);
	assert_int_equal(p->screen_info.orig_video_mode, 0);
	assert_int_equal(p->screen_info.orig_video_cols, 0);
	assert_int_equal(p->screen_info.orig_video_lines, 0);
	assert_true(all_zero((const uint8_t *)p, 0x70));
	assert_true(all_zero((const uint8_t *)p + 0x26c, 0x290 - 0x26c));
	assert_true(all_zero((const uint8_t *)&p->e820_table[p->e820_entries],
			     (LINUX_E820_MAX - p->e820_entries) * sizeof(p->e820_table[0])));
}

static void test_cmdline(void **state)
{
	(void)state;
	load_ok();
	assert_string_equal((const char *)ram + LINUX_CMDLINE_GPA, "console=ttyS0 quiet");

	cfg.cmdline = "";
	load_ok();
	assert_int_equal(bp()->hdr.cmd_line_ptr, LINUX_CMDLINE_GPA);
	assert_int_equal(ram[LINUX_CMDLINE_GPA], 0);
}

static void test_cmdline_bounded_by_cmdline_size(void **state)
{
	(void)state;
	put32(0x238, 8);
	cfg.cmdline = "12345678";
	load_ok();
	assert_string_equal((const char *)ram + LINUX_CMDLINE_GPA, "12345678");
	cfg.cmdline = "123456789";
	load_fails("longer than the 8 characters");

	/* Our own 4-KiB page bounds it when the kernel would take more. */
	static char long_line[LINUX_CMDLINE_MAX + 1];
	put32(0x238, 0xffffffff);
	memset(long_line, 'x', LINUX_CMDLINE_MAX);
	cfg.cmdline = long_line;
	load_fails("longer than the 4095 characters");
	long_line[LINUX_CMDLINE_MAX - 1] = 0;
	load_ok();
}

struct e820 {
	uint64_t addr, size;
	uint32_t type;
};

static void expect_e820(const struct e820 *want, unsigned n)
{
	const struct linux_boot_params *p = bp();

	assert_int_equal(p->e820_entries, n);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(p->e820_table[i].addr, want[i].addr);
		assert_int_equal(p->e820_table[i].size, want[i].size);
		assert_int_equal(p->e820_table[i].type, want[i].type);
	}
}

#define RAM LINUX_E820_RAM
#define RES LINUX_E820_RESERVED

static void test_e820_plain(void **state)
{
	static const struct e820 want[] = {
		{ 0, 0x9fc00, RAM },
		{ 0x9fc00, 0x400, RES },
		{ 0xf0000, 0x10000, RES },
		{ 0x100000, RAM_SIZE - 0x100000, RAM },
		{ 0xfec00000, 0x1000, RES },
		{ 0xfee00000, 0x1000, RES },
	};

	(void)state;
	load_ok();
	expect_e820(want, 6);
}

/* Caller regions carve RAM: a reserved one is listed, a hole is left out. */
static void test_e820_mmio_regions(void **state)
{
	static const struct linux_mmio mmio[] = {
		{ 48 * MIB, 2 * MIB, false },
		{ 32 * MIB, 1 * MIB, true },
		{ 0xc0000000, 0x3ec00000, false }, /* a PCI window above RAM */
	};
	static const struct e820 want[] = {
		{ 0, 0x9fc00, RAM },
		{ 0x9fc00, 0x400, RES },
		{ 0xf0000, 0x10000, RES },
		{ 0x100000, 31 * MIB, RAM },
		{ 32 * MIB, 1 * MIB, RES },
		{ 33 * MIB, 15 * MIB, RAM },
		{ 50 * MIB, 14 * MIB, RAM },
		{ 0xfec00000, 0x1000, RES },
		{ 0xfee00000, 0x1000, RES },
	};

	(void)state;
	cfg.mmio = mmio;
	cfg.mmio_count = 3;
	load_ok();
	expect_e820(want, 9);
}

/* RAM beyond 4 GiB: the APIC pages and the PCI window are cut out of it. */
static void test_e820_large_ram(void **state)
{
	static const struct linux_mmio pci = { 0xc0000000, 0x3ec00000, false };
	static const struct e820 want[] = {
		{ 0, 0x9fc00, RAM },
		{ 0x9fc00, 0x400, RES },
		{ 0xf0000, 0x10000, RES },
		{ 0x100000, 0xc0000000 - 0x100000, RAM },
		{ 0xfec00000, 0x1000, RES },
		{ 0xfec01000, 0xfee00000 - 0xfec01000, RAM },
		{ 0xfee00000, 0x1000, RES },
		{ 0xfee01000, 0x140000000 - 0xfee01000, RAM },
	};
	static uint8_t initrd[8192];

	(void)state;
	use_ram(5ULL << 30);
	put32(0x22c, 0xffffffff);
	cfg.mmio = &pci;
	cfg.mmio_count = 1;
	cfg.initrd = initrd;
	cfg.initrd_size = sizeof(initrd);
	load_ok();
	expect_e820(want, 8);
	/* Highest below 4 GiB (the identity map's top), in RAM. */
	assert_int_equal(entry.initrd_base, 0x100000000 - 8192);
	assert_true(entry.map_top <= LINUX_IDENTITY_MAP_TOP);
}

static void test_mmio_refusals(void **state)
{
	struct linux_mmio m[LINUX_MAX_MMIO + 1];

	(void)state;
	cfg.mmio = m;
	cfg.mmio_count = 1;
	m[0] = (struct linux_mmio){ 0xa0000, 0x1000, true };
	load_fails("above 1 MiB");
	m[0] = (struct linux_mmio){ 32 * MIB, 0, true };
	load_fails("non-empty");
	m[0] = (struct linux_mmio){ 0xfffffffffffff000, 0x2000, true };
	load_fails("non-empty");
	m[0] = (struct linux_mmio){ 0xfe000000, 0xc01000, false };
	load_fails("overlap");
	cfg.mmio_count = 2;
	m[0] = (struct linux_mmio){ 32 * MIB, 2 * MIB, true };
	m[1] = (struct linux_mmio){ 33 * MIB, 2 * MIB, true };
	load_fails("overlap");
	cfg.mmio_count = LINUX_MAX_MMIO + 1;
	load_fails("too many MMIO regions");
}

static void test_initrd_at_top(void **state)
{
	static uint8_t initrd[10000];

	(void)state;
	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i * 13);
	cfg.initrd = initrd;
	cfg.initrd_size = sizeof(initrd);
	load_ok();
	uint64_t want = (RAM_SIZE - sizeof(initrd)) & ~0xfffULL;

	assert_int_equal(entry.initrd_base, want);
	assert_int_equal(bp()->hdr.ramdisk_image, want);
	assert_int_equal(bp()->hdr.ramdisk_size, sizeof(initrd));
	assert_int_equal(bp()->ext_ramdisk_image, 0);
	assert_int_equal(bp()->ext_ramdisk_size, 0);
	assert_memory_equal(ram + want, initrd, sizeof(initrd));
	assert_int_equal(entry.map_top, want + sizeof(initrd));
}

/* Its last byte at or below initrd_addr_max, which here is just above the kernel. */
static void test_initrd_below_addr_max(void **state)
{
	static uint8_t initrd[3 * 4096];

	(void)state;
	cfg.initrd = initrd;
	cfg.initrd_size = sizeof(initrd);
	put32(0x22c, PREF + INIT_SIZE + sizeof(initrd) - 1);
	load_ok();
	assert_int_equal(entry.initrd_base, PREF + INIT_SIZE);

	/* One byte less and it no longer fits above the kernel: it goes below. */
	put32(0x22c, PREF + INIT_SIZE + sizeof(initrd) - 2);
	load_ok();
	assert_int_equal(entry.initrd_base, PREF - sizeof(initrd));
	assert_true(entry.initrd_base + sizeof(initrd) <= entry.kernel_base);
}

static void test_initrd_skips_holes(void **state)
{
	static const struct linux_mmio hole = { 48 * MIB, 2 * MIB, false };

	(void)state;
	cfg.mmio = &hole;
	cfg.mmio_count = 1;
	/* Too big for [50 MiB, 64 MiB): the next fit down is [20 MiB, 48 MiB). */
	cfg.initrd_size = 15 * MIB;
	cfg.initrd = malloc(cfg.initrd_size);
	assert_non_null(cfg.initrd);
	memset((void *)cfg.initrd, 0x5a, cfg.initrd_size);
	load_ok();
	free((void *)cfg.initrd);
	assert_int_equal(entry.initrd_base, 33 * MIB);
}

static void test_initrd_does_not_fit(void **state)
{
	static uint8_t byte;

	(void)state;
	cfg.initrd = &byte;
	cfg.initrd_size = 45 * MIB; /* 60 MiB of RAM beside a 4-MiB kernel: no run that long */
	load_fails("the initrd (47185920 bytes) does not fit");
	put32(0x22c, 0xfffff); /* nothing above 1 MiB may hold it */
	cfg.initrd_size = 1;
	load_fails("does not fit in RAM below 0x100000");
}

/* Never below pref_address: the kernel would decompress there anyway (boot.rst, init_size). */
static void test_kernel_moves_up_past_a_hole(void **state)
{
	static const struct linux_mmio hole = { PREF + 0x1000, 0x1000, false };

	(void)state;
	cfg.mmio = &hole;
	cfg.mmio_count = 1;
	load_ok();
	assert_int_equal(entry.kernel_base, PREF + ALIGN_2M);
	assert_int_equal(entry.rip, PREF + ALIGN_2M + 0x200);
	assert_memory_equal(ram + PREF + ALIGN_2M, image + SETUP_SIZE, PAYLOAD);
}

static void test_kernel_aligned_up_from_pref(void **state)
{
	(void)state;
	put64(0x258, PREF + 0x1000);
	load_ok();
	assert_int_equal(entry.kernel_base, PREF + ALIGN_2M);

	put64(0x258, 0x100000000);
	load_fails("pref_address 0x100000000 is not below 4 GiB");
}

static void test_non_relocatable_kernel(void **state)
{
	(void)state;
	image[0x234] = 0;
	put32(0x230, 3); /* not consulted without relocatable_kernel */
	load_ok();
	assert_int_equal(entry.kernel_base, PREF);

	put64(0x258, 0); /* no pref_address: a bzImage's traditional 1 MiB */
	load_ok();
	assert_int_equal(entry.kernel_base, 0x100000);

	put64(0x258, PREF);
	use_ram(18 * MIB);
	load_fails("not relocatable");
}

static void test_kernel_does_not_fit(void **state)
{
	(void)state;
	use_ram(PREF + INIT_SIZE - 4096); /* the kernel never goes below pref_address */
	load_fails("no room for the kernel: it needs 0x400000 bytes (init_size) from 0x1000000 on");
	use_ram(PREF + INIT_SIZE);
	load_ok();
	use_ram(512 * 1024);
	load_fails("at least 1 MiB");
}

static void test_header_refusals(void **state)
{
	(void)state;
	cfg.image_size = 0x207;
	load_fails("too short");
	cfg.image_size = IMAGE_SIZE;

	image[0x203] = 'x';
	load_fails("no \"HdrS\"");
	make_image();

	put16(0x206, 0x020b);
	load_fails("boot protocol 2.11 is too old");
	make_image();

	image[0x201] = 0x60; /* header would end at 0x262, before 2.12's fields */
	load_fails("setup header ends at 0x262");
	image[0x201] = 0x90; /* 0x292: past boot_params' room for it */
	load_fails("setup header ends at 0x292");
	make_image();

	put16(0x1fe, 0x55aa);
	load_fails("boot_flag");
	make_image();

	put16(0x236, 0x7e);
	load_fails("XLF_KERNEL_64");
	make_image();
}

static void test_size_refusals(void **state)
{
	(void)state;
	image[0x1f1] = 200; /* 100 KiB of setup code in a 70-KiB file */
	load_fails("setup_sects 200");
	image[0x1f1] = 0; /* means 4: 2.5 KiB, still fine */
	cfg.image_size = 4 * 512;
	load_fails("setup_sects 0");
	make_image();
	cfg.image_size = IMAGE_SIZE;

	put32(0x1f4, (PAYLOAD + TRAILER) / 16 + 1); /* the image is larger than the file */
	load_fails("syssize says 66064 bytes");
	put32(0x1f4, 0);
	load_fails("syssize says 0 bytes");
	make_image();

	put32(0x260, PAYLOAD - 16);
	load_fails("init_size 0xfff0 is smaller");
	make_image();

	put32(0x230, 0x300000);
	load_fails("kernel_alignment 0x300000");
	put32(0x230, 0x800);
	load_fails("kernel_alignment 0x800");
}

/* setup_sects 0 stands for 4 (boot.rst). */
static void test_setup_sects_zero_means_four(void **state)
{
	(void)state;
	image[0x1f1] = 0;
	memmove(image + 5 * 512, image + SETUP_SIZE, PAYLOAD);
	put32(0x1f4, (PAYLOAD - 512) / 16);
	load_ok();
	assert_memory_equal(ram + PREF, image + 5 * 512, PAYLOAD - 512);
}

/* Debian's kernel, where a developer has it (see tools/mk-linux-guest.sh). */
static void test_real_kernel(void **state)
{
	static char path[4096];
	static uint8_t file[32 * MIB];
	const char *env = getenv("VMM_TEST_VMLINUZ");
	glob_t g = { 0 };

	(void)state;
	if (env) {
		snprintf(path, sizeof(path), "%s", env);
	} else {
		bool found = !glob("/tmp/lk/k/boot/vmlinuz-*", 0, NULL, &g) && g.gl_pathc;

		if (found)
			snprintf(path, sizeof(path), "%s", g.gl_pathv[0]);
		globfree(&g);
		if (!found)
			skip();
	}
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t size = fread(file, 1, sizeof(file), f);
	fclose(f);
	assert_true(size > 0 && size < sizeof(file));

	struct linux_setup_header h;
	memcpy(&h, file + 0x1f1, sizeof(h));
	uint64_t setup = ((uint64_t)(h.setup_sects ? h.setup_sects : 4) + 1) * 512;

	use_ram(256 * MIB);
	cfg.image = file;
	cfg.image_size = size;
	load_ok();
	assert_true(bp()->hdr.version >= 0x020c);
	assert_true(bp()->hdr.xloadflags & LINUX_XLF_KERNEL_64);
	assert_int_equal(entry.kernel_base, h.pref_address);
	assert_int_equal(entry.rip, h.pref_address + 0x200);
	assert_int_equal(entry.kernel_end, h.pref_address + h.init_size);
	assert_memory_equal(ram + h.pref_address, file + setup, (size_t)h.syssize * 16);
	assert_true(setup + (uint64_t)h.syssize * 16 <= size);
	print_message("real kernel %s: protocol %x, %u setup sectors, init_size 0x%x\n", path,
		      h.version, h.setup_sects, h.init_size);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_entry_state),
		T(test_kernel_copied_without_trailer),
		T(test_boot_params),
		T(test_cmdline),
		T(test_cmdline_bounded_by_cmdline_size),
		T(test_e820_plain),
		T(test_e820_mmio_regions),
		T(test_e820_large_ram),
		T(test_mmio_refusals),
		T(test_initrd_at_top),
		T(test_initrd_below_addr_max),
		T(test_initrd_skips_holes),
		T(test_initrd_does_not_fit),
		T(test_kernel_moves_up_past_a_hole),
		T(test_kernel_aligned_up_from_pref),
		T(test_non_relocatable_kernel),
		T(test_kernel_does_not_fit),
		T(test_header_refusals),
		T(test_size_refusals),
		T(test_setup_sects_zero_means_four),
		T(test_real_kernel),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
