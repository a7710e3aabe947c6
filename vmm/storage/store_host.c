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
#define SELFTEST_PIECE (16 * 1024)
_Static_assert(SELFTEST_BYTES % SELFTEST_PIECE == 0, "the self-test writes whole pieces");

static const struct boot_store *where;
static bool store_open_ok;
/* The drive failed last time: said once, not at every guest retry. */
static bool failing;
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

/* count sectors of the container file from sector on, through its extents, piece by piece. */
static bool container_io(uint64_t sector, uint64_t left, uint8_t *buf, bool write)
{
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
			if (!failing)
				log_err("store: %s", drive.why);
			failing = true;
			return false;
		}
		if (failing)
			log_info("store: the drive answers again");
		failing = false;
		sector += run;
		left -= run;
		buf += run * ATA_SECTOR;
	}
	return true;
}

static bool dev_read(void *ctx, uint64_t block, uint32_t count, void *buf)
{
	(void)ctx;
	return container_io(block * SECTORS_PER_BLOCK, (uint64_t)count * SECTORS_PER_BLOCK, buf,
			    false);
}

static bool dev_write(void *ctx, uint64_t block, uint32_t count, const void *buf)
{
	(void)ctx;
	/* The buffer is only read: the cast serves the shared walk. */
	return container_io(block * SECTORS_PER_BLOCK, (uint64_t)count * SECTORS_PER_BLOCK,
			    (uint8_t *)(uintptr_t)buf, true);
}

static bool dev_flush(void *ctx)
{
	(void)ctx;
	if (ata_flush(&drive) == ATA_OK)
		return true;
	if (!failing)
		log_err("store: %s", drive.why);
	failing = true;
	return false;
}

static struct store_dev dev = { NULL, 0, dev_read, dev_write, dev_flush };

/* A disk object lent to a VM: its medium's context. */
struct attachment {
	char name[STORE_NAME_MAX + 1];
	unsigned vm_id;
	bool used;
	struct disk_medium medium;
};

static struct attachment attached[STORE_OBJECTS_MAX];

/* len bytes at offset of object o, whole sectors: through its extents, piece by piece. */
static bool object_io(const struct store_object *o, uint64_t offset, uint8_t *buf, uint64_t len,
		      bool write)
{
	uint64_t block, run;

	if (!o || offset > o->bytes || len > o->bytes - offset)
		return false;
	while (len) {
		if (!store_map(o, offset, &block, &run))
			return false;
		uint64_t in_block = offset % STORE_BLOCK, n = run * STORE_BLOCK - in_block;
		if (n > len)
			n = len;
		if (!container_io(block * SECTORS_PER_BLOCK + in_block / ATA_SECTOR, n / ATA_SECTOR,
				  buf, write))
			return false;
		offset += n;
		buf += n;
		len -= n;
	}
	return true;
}

/* The attachment's object, looked up each time: no pointer into the table outlives a commit. */
static const struct store_object *object_of(void *ctx)
{
	return store_find(&store, ((struct attachment *)ctx)->name);
}

static bool medium_read(void *ctx, uint64_t offset, void *buf, uint64_t len)
{
	return object_io(object_of(ctx), offset, buf, len, false);
}

static bool medium_write(void *ctx, uint64_t offset, const void *buf, uint64_t len)
{
	/* The buffer is only read: the cast serves the shared walk. */
	return object_io(object_of(ctx), offset, (uint8_t *)(uintptr_t)buf, len, true);
}

static bool medium_flush(void *ctx)
{
	return dev_flush(ctx);
}

static struct attachment *attachment_of(const char *name)
{
	for (unsigned i = 0; i < STORE_OBJECTS_MAX; i++)
		if (attached[i].used && !strcmp(attached[i].name, name))
			return &attached[i];
	return NULL;
}

enum store_disk_state store_host_disk_state(const char *name)
{
	const struct store_object *o;

	if (!store_open_ok)
		return STORE_DISK_NO_STORE;
	/* A disk is whole sectors: an object under one is no disk. */
	if (!(o = store_find(&store, name)) || o->kind != STORE_DISK || o->bytes < ATA_SECTOR)
		return STORE_DISK_MISSING;
	return attachment_of(name) ? STORE_DISK_TAKEN : STORE_DISK_FREE;
}

int store_host_attach(const char *name, unsigned vm_id, const struct disk_medium **medium,
		      uint64_t *bytes, char *why, size_t why_size)
{
	struct attachment *free_slot = NULL;

	switch (store_host_disk_state(name)) {
	case STORE_DISK_NO_STORE:
		fmt_snprintf(why, why_size, "its disk is store object '%s', and there is no store "
			     "(%s)", name, status);
		return -1;
	case STORE_DISK_MISSING:
		fmt_snprintf(why, why_size, "the store holds no disk '%s' of a sector or more "
			     "(vmm-store import)", name);
		return -1;
	case STORE_DISK_TAKEN:
		fmt_snprintf(why, why_size, "store disk '%s' is already another VM's", name);
		return -1;
	case STORE_DISK_FREE:
		break;
	}
	for (unsigned i = 0; i < STORE_OBJECTS_MAX && !free_slot; i++)
		if (!attached[i].used)
			free_slot = &attached[i];
	/* One attachment an object, so never more than the objects; checked all the same. */
	if (!free_slot) {
		fmt_snprintf(why, why_size, "every store disk is attached");
		return -1;
	}
	*free_slot = (struct attachment){ .vm_id = vm_id, .used = true,
					  .medium = { free_slot, medium_read, medium_write,
						      medium_flush } };
	memcpy(free_slot->name, name, strlen(name) + 1);
	*medium = &free_slot->medium;
	*bytes = store_find(&store, name)->bytes;
	return 0;
}

void store_host_detach(unsigned vm_id)
{
	for (unsigned i = 0; i < STORE_OBJECTS_MAX; i++)
		if (attached[i].used && attached[i].vm_id == vm_id)
			attached[i].used = false;
}

static uint8_t pattern_byte(uint64_t i)
{
	return (uint8_t)(i * 7 + (i >> 12) + 0x5a);
}

/*
 * Reads object o's whole sectors and compares them with the pattern: the
 * byte that differs first, or -1.
 */
static int64_t check_pattern(const struct store_object *o)
{
	static uint8_t block_buf[STORE_BLOCK];
	uint64_t sectors_bytes = o->bytes & ~(uint64_t)(ATA_SECTOR - 1);

	for (uint64_t at = 0, n; at < sectors_bytes; at += n) {
		n = sectors_bytes - at < STORE_BLOCK ? sectors_bytes - at : STORE_BLOCK;
		if (!object_io(o, at, block_buf, n, false))
			return (int64_t)at;
		for (uint64_t i = 0; i < n; i++)
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
	/* Written 16 KiB a time, as the guests' file systems write a stream. */
	static uint8_t piece[SELFTEST_PIECE];
	const struct store_object *found = store_find(&store, SELFTEST_NAME);
	struct store_object o;
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
	/* The raw driver's write rate and a commit's time: store_write_ratio and store_commit_ms. */
	uint64_t write_ticks = 0;
	for (uint64_t at = 0; at < SELFTEST_BYTES; at += sizeof(piece)) {
		for (uint64_t i = 0; i < sizeof(piece); i++)
			piece[i] = pattern_byte(at + i);
		uint64_t t0 = rdtsc();
		if (!object_io(&o, at, piece, sizeof(piece), true)) {
			log_err("store selftest: writing the pattern failed");
			return;
		}
		write_ticks += rdtsc() - t0;
	}
	/* The data on the medium before the commit that names it. */
	uint64_t t0 = rdtsc();
	if (!dev_flush(NULL)) {
		log_err("store selftest: flushing the pattern failed");
		return;
	}
	write_ticks += rdtsc() - t0;
	t0 = rdtsc();
	if (store_commit_add(&store, &o, why, sizeof(why)) != STORE_OK) {
		log_err("store selftest: %s", why);
		return;
	}
	uint64_t commit_ticks = rdtsc() - t0;
	log_info("store selftest: raw writes %u KiB in %llu us, a commit in %llu us",
		 SELFTEST_BYTES / 1024, (unsigned long long)(write_ticks * 1000 / io.ticks_per_ms),
		 (unsigned long long)(commit_ticks * 1000 / io.ticks_per_ms));
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
	/*
	 * A store block that straddles physical sectors is written by a
	 * read-modify-write of its neighbours: a power cut then can reach the
	 * other superblock too. Said, not refused: the admin can copy the file
	 * anew (or use a partition) to align it.
	 */
	uint32_t per = drive.logical_per_physical;
	for (uint32_t k = 0; per > 1 && k < where->map.count; k++)
		if ((where->map.extent[k].sector + drive.alignment_offset) % per) {
			log_warn("store: '%s' is not aligned to the drive's %u-byte physical sectors: "
				 "a power cut during a metadata write may damage both superblocks",
				 path, per * ATA_SECTOR);
			break;
		}
	dev.blocks = where->bytes / STORE_BLOCK;
	if (store_open(&store, &dev, note, sizeof(note), why, sizeof(why)) != STORE_OK) {
		fmt_snprintf(status, sizeof(status), "none: '%s' is not a usable store: %s (left "
			     "untouched)", path, why);
		log_err("store: %s", status);
		return;
	}
	store_open_ok = true;
	if (note[0])
		log_warn("store: %s", note);
	log_info("store: '%s' on '%s' (%llu MiB drive): generation %llu, %u object(s), %llu KiB "
		 "free", path, drive.model, (unsigned long long)(drive.sectors / 2048),
		 (unsigned long long)store.super.generation, store.table.count,
		 (unsigned long long)(store_free_blocks(&store) * (STORE_BLOCK / 1024)));
	if (bi->config->hv.selftest == CFG_SELFTEST_STORE)
		selftest();
	fmt_snprintf(status, sizeof(status), "'%s': generation %llu, %u object(s), %llu KiB free%s",
		     path, (unsigned long long)store.super.generation, store.table.count,
		     (unsigned long long)(store_free_blocks(&store) * (STORE_BLOCK / 1024)),
		     store.uncertain ? " (read-only: a superblock does not read)" : "");
}

const char *store_host_status(void)
{
	return status;
}
