/*
 * The image library lookup (vmm/library.c): a created VM's disk must be a
 * file the configuration names with disk =, never another VM's kernel,
 * initrd or boot image; paths match with '/' or '\'.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "vmm/library.h"

static struct config cfg;
static struct boot_vm boot[CFG_MAX_VMS];

static int setup(void **state)
{
	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	memset(boot, 0, sizeof(boot));
	cfg.vm_count = 2;
	strcpy(cfg.vms[0].image, "\\guests\\web.bin");
	strcpy(cfg.vms[0].disk, "\\disks\\web.img");
	strcpy(cfg.vms[1].image, "\\vmlinuz");
	strcpy(cfg.vms[1].initrd, "\\initrd.img");
	boot[0].image = (struct boot_file){ 0x100000, 100, 1 };
	boot[0].disk = (struct boot_file){ 0x200000, 4096, 1 };
	boot[1].image = (struct boot_file){ 0x300000, 200, 1 };
	boot[1].initrd = (struct boot_file){ 0x400000, 300, 1 };
	return 0;
}

static void test_disk_files_are_disks(void **state)
{
	(void)state;
	assert_ptr_equal(library_find(&cfg, boot, "/disks/web.img", LIBRARY_DISK), &boot[0].disk);
	assert_ptr_equal(library_find(&cfg, boot, "\\disks\\web.img", LIBRARY_DISK),
			 &boot[0].disk);
}

/* The finding: disk=/guests/web.bin rewrote another VM's boot image. */
static void test_boot_files_are_not_disks(void **state)
{
	(void)state;
	assert_null(library_find(&cfg, boot, "/guests/web.bin", LIBRARY_DISK));
	assert_null(library_find(&cfg, boot, "/vmlinuz", LIBRARY_DISK));
	assert_null(library_find(&cfg, boot, "/initrd.img", LIBRARY_DISK));
	assert_ptr_equal(library_find(&cfg, boot, "/guests/web.bin", LIBRARY_BOOT_FILE),
			 &boot[0].image);
	assert_ptr_equal(library_find(&cfg, boot, "/initrd.img", LIBRARY_BOOT_FILE),
			 &boot[1].initrd);
}

static void test_disks_are_not_boot_files(void **state)
{
	(void)state;
	assert_null(library_find(&cfg, boot, "/disks/web.img", LIBRARY_BOOT_FILE));
}

static void test_unknown_and_unloaded(void **state)
{
	(void)state;
	assert_null(library_find(&cfg, boot, "/disks/other.img", LIBRARY_DISK));
	assert_null(library_find(&cfg, boot, "", LIBRARY_DISK));
	/* Named but not loaded (size 0): not offered. */
	boot[0].disk.size = 0;
	assert_null(library_find(&cfg, boot, "/disks/web.img", LIBRARY_DISK));
	/* A VM past vm_count is not looked at. */
	strcpy(cfg.vms[2].disk, "\\late.img");
	boot[2].disk = (struct boot_file){ 0x500000, 512, 1 };
	assert_null(library_find(&cfg, boot, "/late.img", LIBRARY_DISK));
}

static void test_long_path_is_cut_not_overrun(void **state)
{
	char path[CFG_PATH_MAX * 2];

	(void)state;
	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	assert_null(library_find(&cfg, boot, path, LIBRARY_DISK));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_disk_files_are_disks, setup),
		cmocka_unit_test_setup(test_boot_files_are_not_disks, setup),
		cmocka_unit_test_setup(test_disks_are_not_boot_files, setup),
		cmocka_unit_test_setup(test_unknown_and_unloaded, setup),
		cmocka_unit_test_setup(test_long_path_is_cut_not_overrun, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
