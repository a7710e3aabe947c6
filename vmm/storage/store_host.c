/*
 * The store on its ATA drive: store blocks are sectors of the container
 * file, which lie in the extents the loader resolved (boot/store_locate.c),
 * reached by PIO (vmm/storage/ata.c). Only those sectors are ever read or
 * written: the rest of the disk (the FAT, the firmware's files) is not
 * this hypervisor's.
 */
#include "vmm/storage/store_host.h"

#include "lib/fmt.h"
#include "lib/store.h"
#include "vmm/log.h"
#include "vmm/storage/ata.h"
#include "x86/cpu.h"

#include <string.h>

#define SECTORS_PER_BLOCK (STORE_BLOCK / ATA_SECTOR)
/* The self-test's object: written by one boot, checked by the next. */
#define SELFTEST_NAME "selftest"
#define SELFTEST_BYTES (64 * 1024)

static const struct boot_store *where;
static struct ata_drive drive;
static struct store store;
static char status[160] = "none: no store configured (disks are RAM copies)";

static uint8_t port_in8(void *ctx, uint16_t port)
{
	(void)ctx;
	return inb(port);
}

static void port_out8(void *ctx, uint16_t port, uint8_t v)
{
	(void)ctx;
	outb(port, v);
}

static uint16_t port_in16(void *ctx, uint16_t port)
{
	(void)ctx;
	return inw(port);
}

static void port_out16(void *ctx, uint16_t port, uint16_t v)
{
	(void)ctx;
	outw(port, v);
}

static uint64_t tsc_now(void *ctx)
{
	(void)ctx;
	return rdtsc();
}

static struct ata_io io = { NULL, port_in8, port_out8, port_in16, port_out16, tsc_now, 0 };

/* count store blocks from block on, through the container's extents, piece by piece. */
static bool container_io(uint64_t block, uint32_t count, uint8_t *buf, bool write)
{
	uint64_t sector = block * SECTORS_PER_BLOCK, left = (uint64_t)count * SECTORS_PER_BLOCK;

	while (left) {
		uint64_t base = 0;
		const struct fat_extent *x = NULL;
		for (uint32_t k = 0; k < where->map.count; k++) {
			if (sector < base + where->map.extent[k].sectors) {
				x = &where->map.extent[k];
				break;
			}
			base += where->map.extent[k].sectors;
		}
		if (!x)
			return false;
		uint64_t in = sector - base, run = x->sectors - in < left ? x->sectors - in : left;
		enum ata_result r = write ? ata_write(&drive, x->sector + in, (uint32_t)run, buf)
					  : ata_read(&drive, x->sector + in, (uint32_t)run, buf);
		if (r != ATA_OK) {
			log_err("store: %s", drive.why);
			return false;
		}
		sector += run;
		left -= run;
		buf += run * ATA_SECTOR;
	}
	return true;
}

static bool dev_read(void *ctx, uint64_t block, uint32_t count, void *buf)
{
	(void)ctx;
	return container_io(block, count, buf, false);
}

static bool dev_write(void *ctx, uint64_t block, uint32_t count, const void *buf)
{
	(void)ctx;
	/* The buffer is only read: the cast serves the shared walk. */
	return container_io(block, count, (uint8_t *)(uintptr_t)buf, true);
}

static bool dev_flush(void *ctx)
{
	(void)ctx;
	if (ata_flush(&drive) == ATA_OK)
		return true;
	log_err("store: %s", drive.why);
	return false;
}

static struct store_dev dev = { NULL, 0, dev_read, dev_write, dev_flush };

static uint8_t pattern_byte(uint64_t i)
{
	return (uint8_t)(i * 7 + (i >> 12) + 0x5a);
}

/* Reads object o whole and compares it with the pattern: the bytes that differ first, or -1. */
static int64_t check_pattern(const struct store_object *o)
{
	static uint8_t block_buf[STORE_BLOCK];
	uint64_t block, run;

	for (uint64_t at = 0; at < o->bytes; at += STORE_BLOCK) {
		if (!store_map(o, at, &block, &run) || !dev_read(NULL, block, 1, block_buf))
			return (int64_t)at;
		for (uint64_t i = 0; i < STORE_BLOCK && at + i < o->bytes; i++)
			if (block_buf[i] != pattern_byte(at + i))
				return (int64_t)(at + i);
	}
	return -1;
}

/*
 * The store self-test (selftest = store): a boot that finds no object
 * "selftest" writes one with a pattern, flushes, commits and reads it
 * back; a later boot (the machine restarted) finds it and reads it again.
 */
static void selftest(void)
{
	static uint8_t block_buf[STORE_BLOCK];
	const struct store_object *found = store_find(&store, SELFTEST_NAME);
	struct store_object o;
	uint64_t block, run;
	char why[160];
	int64_t bad;

	if (found) {
		bad = check_pattern(found);
		if (bad < 0)
			log_info("store selftest: the %llu KiB a previous boot wrote read back intact",
				 (unsigned long long)(found->bytes / 1024));
		else
			log_err("store selftest: the object of a previous boot differs at byte %lld",
				(long long)bad);
		return;
	}
	if (store_allocate(&store, SELFTEST_NAME, STORE_DISK, SELFTEST_BYTES, 0, &o, why,
			   sizeof(why)) != STORE_OK) {
		log_err("store selftest: %s", why);
		return;
	}
	for (uint64_t at = 0; at < SELFTEST_BYTES; at += STORE_BLOCK) {
		for (uint64_t i = 0; i < STORE_BLOCK; i++)
			block_buf[i] = pattern_byte(at + i);
		if (!store_map(&o, at, &block, &run) || !dev_write(NULL, block, 1, block_buf)) {
			log_err("store selftest: writing the pattern failed");
			return;
		}
	}
	/* The data on the medium before the commit that names it. */
	if (!dev_flush(NULL) || store_commit_add(&store, &o, why, sizeof(why)) != STORE_OK) {
		log_err("store selftest: %s", why);
		return;
	}
	bad = check_pattern(store_find(&store, SELFTEST_NAME));
	if (bad < 0)
		log_info("store selftest: %u KiB written, flushed, committed (generation %llu) and "
			 "read back", SELFTEST_BYTES / 1024,
			 (unsigned long long)store.super.generation);
	else
		log_err("store selftest: the pattern reads back wrong at byte %lld", (long long)bad);
}

void store_host_init(const struct boot_info *bi)
{
	const char *path = bi->config->hv.store;
	char why[160], note[160];

	if (bi->store.bus != BOOT_STORE_ATA) {
		if (path[0])
			fmt_snprintf(status, sizeof(status), "none: '%s' was not found usable at boot "
				     "(disks are RAM copies)", path);
		log_info("store: %s", status);
		return;
	}
	where = &bi->store;
	io.ticks_per_ms = bi->tsc_hz / 1000;
	enum ata_result r = ata_identify(&drive, &io, where->ata_channel ? ATA_SECONDARY_CMD
								    : ATA_PRIMARY_CMD,
					 where->ata_channel ? ATA_SECONDARY_CTL : ATA_PRIMARY_CTL,
					 where->ata_slave);
	if (r != ATA_OK) {
		fmt_snprintf(status, sizeof(status), "none: %s", drive.why);
		log_err("store: %s", status);
		return;
	}
	dev.blocks = where->bytes / STORE_BLOCK;
	if (store_open(&store, &dev, note, sizeof(note), why, sizeof(why)) != STORE_OK) {
		fmt_snprintf(status, sizeof(status), "none: '%s' is not a usable store: %s (left "
			     "untouched)", path, why);
		log_err("store: %s", status);
		return;
	}
	if (note[0])
		log_warn("store: %s", note);
	log_info("store: '%s' on '%s' (%llu MiB drive): generation %llu, %u object(s), %llu KiB "
		 "free", path, drive.model, (unsigned long long)(drive.sectors / 2048),
		 (unsigned long long)store.super.generation, store.table.count,
		 (unsigned long long)(store_free_blocks(&store) * (STORE_BLOCK / 1024)));
	if (bi->config->hv.selftest == CFG_SELFTEST_STORE)
		selftest();
	fmt_snprintf(status, sizeof(status), "'%s': generation %llu, %u object(s), %llu KiB free",
		     path, (unsigned long long)store.super.generation, store.table.count,
		     (unsigned long long)(store_free_blocks(&store) * (STORE_BLOCK / 1024)));
}

const char *store_host_status(void)
{
	return status;
}
