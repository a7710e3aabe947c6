/*
 * The store on its disk (vmm/storage/store_host.c) over a disk in memory:
 * saved states kept, replaced, read back and dropped (and a drop that
 * cannot commit), a file of any length through the partial last sector,
 * disks made through the API (zeroed in pieces, one at a time, a VM's
 * disk kept from deletion), and a disk being made when the power went,
 * dropped at the next boot.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot/boot_info.h"
#include "boot/config.h"
#include "boot/handover.h"
#include "lib/store.h"
#include "vmm/clock.h"
#include "vmm/log.h"
#include "vmm/page_alloc.h"
#include "vmm/storage/block.h"
#include "vmm/storage/store_host.h"

#define DISK_SECTORS 4096u              /* 2 MiB: the store is the whole disk */
#define POOL_PAGES 64u

/* --- the disk, in memory, that fails its flushes when told ----------------- */
static uint8_t medium[DISK_SECTORS * BLOCK_SECTOR];
static bool flush_fails;

static bool ram_read(void *ctx, uint64_t lba, uint32_t count, void *buf)
{
	(void)ctx;
	if (lba + count > DISK_SECTORS)
		return false;
	memcpy(buf, medium + lba * BLOCK_SECTOR, (size_t)count * BLOCK_SECTOR);
	return true;
}

static bool ram_write(void *ctx, uint64_t lba, uint32_t count, const void *buf)
{
	(void)ctx;
	if (lba + count > DISK_SECTORS)
		return false;
	memcpy(medium + lba * BLOCK_SECTOR, buf, (size_t)count * BLOCK_SECTOR);
	return true;
}

static bool ram_flush(void *ctx)
{
	(void)ctx;
	return !flush_fails;
}

bool ata_disk_open(const struct boot_store *where, const struct block_dma *dma,
		   struct block_disk *disk, char *why, size_t why_size)
{
	(void)where;
	(void)dma;
	(void)why;
	(void)why_size;
	*disk = (struct block_disk){ .sectors = DISK_SECTORS, .logical_per_physical = 1,
				     .why = "the disk in memory failed", .read = ram_read,
				     .write = ram_write, .flush = ram_flush };
	snprintf(disk->model, sizeof(disk->model), "RAM");
	snprintf(disk->where, sizeof(disk->where), "memory");
	return true;
}

/* The other buses have no disk here. */
static bool no_disk(char *why, size_t why_size)
{
	snprintf(why, why_size, "no such controller");
	return false;
}

bool ahci_disk_open(const struct boot_store *where, const struct block_dma *dma,
		    struct block_disk *disk, char *why, size_t why_size)
{
	(void)where, (void)dma, (void)disk;
	return no_disk(why, why_size);
}

bool nvme_disk_open(const struct boot_store *where, const struct block_dma *dma,
		    struct block_disk *disk, char *why, size_t why_size)
{
	(void)where, (void)dma, (void)disk;
	return no_disk(why, why_size);
}

bool virtio_disk_open(const struct boot_store *where, const struct block_dma *dma,
		      struct block_disk *disk, char *why, size_t why_size)
{
	(void)where, (void)dma, (void)disk;
	return no_disk(why, why_size);
}

int handover_map_mmio(uint64_t base, uint64_t bytes)
{
	(void)base;
	(void)bytes;
	return -1;
}

uint64_t clock_wallclock_s(void)
{
	return 1767225600;
}

static char logged[4096];

void log_printf(enum log_level level, const char *format, ...)
{
	va_list ap;
	size_t n = strlen(logged);

	(void)level;
	va_start(ap, format);
	if (n < sizeof(logged) - 2) {
		vsnprintf(logged + n, sizeof(logged) - n - 1, format, ap);
		strcat(logged, "\n");
	}
	va_end(ap);
}

void log_flush(void)
{
}

/* --- the boot ------------------------------------------------------------ */
static struct config config;
static struct boot_info bi;
static struct page_alloc pool;
static void *pool_memory;

/* The medium as vmm-store create leaves it, plus objects made beforehand. */
static bool dev_read(void *ctx, uint64_t block, uint32_t count, void *buf)
{
	return ram_read(ctx, block * 8, count * 8, buf);
}

static bool dev_write(void *ctx, uint64_t block, uint32_t count, const void *buf)
{
	return ram_write(ctx, block * 8, count * 8, buf);
}

static const struct store_dev mem_dev = { NULL, DISK_SECTORS / 8, dev_read, dev_write,
					  ram_flush };

static struct store fresh_store(void)
{
	static const uint8_t uuid[16] = { 7 };
	struct store s;
	char why[128];

	/* What old objects left behind: a new disk must not show it. */
	memset(medium, 0xaa, sizeof(medium));
	assert_int_equal(store_format(&s, &mem_dev, uuid, why, sizeof(why)), STORE_OK);
	return s;
}

static void boot(void)
{
	logged[0] = '\0';
	strcpy(config.hv.store, "\\vmmstore.img");
	bi.config = &config;
	bi.tsc_hz = 1000000000;
	bi.identity_map_top = UINT64_MAX;
	bi.store = (struct boot_store){ .bus = BOOT_STORE_ATA, .bytes = sizeof(medium),
					.map = { .bytes = sizeof(medium), .count = 1,
						 .extent = { { 0, DISK_SECTORS } } } };
	if (!pool_memory)
		pool_memory = aligned_alloc(4096, POOL_PAGES * 4096);
	page_alloc_init(&pool);
	page_alloc_add(&pool, (uint64_t)(uintptr_t)pool_memory, POOL_PAGES);
	bi.host_pages = &pool;
	store_host_init(&bi);
	assert_non_null(strstr(store_host_status(), "generation"));
}

static int setup(void **state)
{
	(void)state;
	flush_fails = false;
	fresh_store();
	boot();
	return 0;
}

/* --- saved states ------------------------------------------------------- */
static void test_saved_states(void **state)
{
	static uint8_t file[10000], back[10000];
	char why[160], name[40];
	uint64_t bytes;
	(void)state;

	for (size_t i = 0; i < sizeof(file); i++)
		file[i] = (uint8_t)(i * 13 + 1);
	/* 10000 bytes: the last sector partial, its rest zeros on the medium. */
	assert_int_equal(store_host_keep_saved("web", file, sizeof(file), 1, why, sizeof(why)), 0);
	assert_true(store_host_has_saved("web"));
	assert_true(store_host_saved_at(0, name, sizeof(name), &bytes));
	assert_string_equal(name, "web");
	assert_int_equal(bytes, sizeof(file));
	assert_false(store_host_saved_at(1, name, sizeof(name), &bytes));
	assert_int_equal(store_host_read_saved("web", back, sizeof(back), why, sizeof(why)), 0);
	assert_memory_equal(back, file, sizeof(file));

	/* The next Save replaces it: still one state, the new bytes, after a reboot too. */
	file[0] ^= 0xff;
	assert_int_equal(store_host_keep_saved("web", file, 5000, 2, why, sizeof(why)), 0);
	boot();
	assert_true(store_host_saved_at(0, name, sizeof(name), &bytes));
	assert_int_equal(bytes, 5000);
	assert_false(store_host_saved_at(1, name, sizeof(name), &bytes));
	assert_int_equal(store_host_read_saved("web", back, 5000, why, sizeof(why)), 0);
	assert_memory_equal(back, file, 5000);
	assert_int_equal(store_host_read_saved("web", back, 4000, why, sizeof(why)), -1);

	/* A name the store cannot hold stays in host memory only, said why. */
	assert_int_equal(store_host_keep_saved("-web", file, 100, 1, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "no store name"));

	/* A drop that cannot commit says so: the state would come back. */
	flush_fails = true;
	assert_int_equal(store_host_drop_saved("web", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "cannot be dropped"));
	/* A Save while the disk fails its flushes is not kept: the state is not whole there. */
	assert_int_equal(store_host_keep_saved("db", file, 100, 1, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "failed"));
	assert_false(store_host_has_saved("db"));
	flush_fails = false;
	boot();
	assert_int_equal(store_host_drop_saved("web", why, sizeof(why)), 0);
	assert_false(store_host_has_saved("web"));
	/* Nothing to drop is no error. */
	assert_int_equal(store_host_drop_saved("web", why, sizeof(why)), 0);
}

/* --- disks made through the API ------------------------------------------- */
static void make_until_done(void)
{
	unsigned polls = 0;

	while (store_host_poll())
		assert_true(++polls < 1000);
}

static void test_disks_made(void **state)
{
	const struct disk_medium *m;
	struct store_host_disk d;
	uint64_t bytes;
	char why[160];
	uint8_t sector[BLOCK_SECTOR];
	(void)state;

	assert_int_equal(store_host_create_disk("data", 300 * 1024, why, sizeof(why)), 0);
	assert_int_equal(store_host_create_disk("more", 4096, why, sizeof(why)), STORE_HOST_BUSY);
	assert_int_equal(store_host_disk_state("data"), STORE_DISK_BEING_MADE);
	assert_true(store_host_disk_at(0, &d));
	assert_string_equal(d.name, "data");
	assert_int_equal(d.ready_percent, 0);
	assert_int_equal(d.vm_id, -1);
	assert_true(store_host_poll());
	assert_true(store_host_disk_at(0, &d));
	assert_true(d.ready_percent > 0 && d.ready_percent < 100);
	make_until_done();
	assert_true(store_host_disk_at(0, &d));
	assert_int_equal(d.ready_percent, 100);
	assert_non_null(strstr(logged, "disk 'data' made"));

	/* Zeros, not what the blocks held; the disk is one after a reboot too. */
	boot();
	assert_int_equal(store_host_disk_state("data"), STORE_DISK_FREE);
	assert_int_equal(store_host_attach("data", 3, &m, &bytes, why, sizeof(why)), 0);
	assert_int_equal(bytes, 300 * 1024);
	for (uint64_t at = 0; at < bytes; at += sizeof(sector)) {
		static const uint8_t zeros[BLOCK_SECTOR];
		assert_true(m->read(m->ctx, at, sector, sizeof(sector)));
		assert_memory_equal(sector, zeros, sizeof(sector));
	}
	assert_true(store_host_disk_at(0, &d));
	assert_int_equal(d.vm_id, 3);
	assert_int_equal(store_host_delete_disk("data", why, sizeof(why)), STORE_HOST_TAKEN);
	store_host_detach(3);
	assert_int_equal(store_host_delete_disk("data", why, sizeof(why)), 0);
	assert_int_equal(store_host_delete_disk("data", why, sizeof(why)), STORE_HOST_NOT_FOUND);
	assert_false(store_host_disk_at(0, &d));

	/* Refused: not whole sectors, a name twice, more than the store holds. */
	assert_int_equal(store_host_create_disk("odd", 1000, why, sizeof(why)),
			 STORE_HOST_INVALID);
	assert_int_equal(store_host_create_disk("big", 4 << 20, why, sizeof(why)),
			 STORE_HOST_NO_SPACE);
	assert_false(store_host_poll());
}

/*
 * A disk an import writes (ImportVirtualMachine with a carried disk): only
 * the import writes it, nobody deletes it meanwhile, and it is a disk once
 * ended; a refused import drops it.
 */
static void test_imported_disk(void **state)
{
	const struct disk_medium *m;
	uint64_t bytes;
	char why[160];
	uint8_t data[2 * BLOCK_SECTOR], back[sizeof(data)];
	(void)state;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(store_host_import_disk_begin("moved", sizeof(data), why, sizeof(why)), 0);
	assert_int_equal(store_host_disk_state("moved"), STORE_DISK_BEING_MADE);
	assert_int_equal(store_host_delete_disk("moved", why, sizeof(why)), STORE_HOST_BUSY);
	assert_non_null(strstr(why, "being imported"));
	assert_false(store_host_import_disk_write("other", 0, data, sizeof(data)));
	assert_true(store_host_import_disk_write("moved", 0, data, sizeof(data)));
	assert_int_equal(store_host_import_disk_end("moved", why, sizeof(why)), 0);
	assert_int_equal(store_host_disk_state("moved"), STORE_DISK_FREE);
	assert_int_equal(store_host_attach("moved", 1, &m, &bytes, why, sizeof(why)), 0);
	assert_int_equal(bytes, sizeof(data));
	assert_true(m->read(m->ctx, 0, back, sizeof(back)));
	assert_memory_equal(back, data, sizeof(data));
	store_host_detach(1);
	assert_int_equal(store_host_delete_disk("moved", why, sizeof(why)), 0);

	assert_int_equal(store_host_import_disk_begin("cut", sizeof(data), why, sizeof(why)), 0);
	assert_true(store_host_import_disk_write("cut", 0, data, BLOCK_SECTOR));
	assert_int_equal(store_host_import_disk_drop("cut", why, sizeof(why)), 0);
	assert_int_equal(store_host_disk_state("cut"), STORE_DISK_MISSING);
	assert_false(store_host_import_disk_write("cut", 0, data, BLOCK_SECTOR));
}

/* A disk being made when the power went is not a disk: the next boot drops it. */
static void test_unmade_disk_dropped_at_boot(void **state)
{
	struct store_host_disk d;
	char why[160];
	(void)state;

	assert_int_equal(store_host_create_disk("cut", 256 * 1024, why, sizeof(why)), 0);
	assert_true(store_host_poll());
	boot();
	assert_non_null(strstr(logged, "disk 'cut' was being made when the host stopped: dropped"));
	assert_false(store_host_disk_at(0, &d));
	assert_int_equal(store_host_disk_state("cut"), STORE_DISK_MISSING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_saved_states, setup),
		cmocka_unit_test_setup(test_disks_made, setup),
		cmocka_unit_test_setup(test_imported_disk, setup),
		cmocka_unit_test_setup(test_unmade_disk_dropped_at_boot, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
