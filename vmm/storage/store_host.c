/*
 * The store on its disk: store blocks are sectors of the container file,
 * which lie in the extents the loader resolved (boot/store_locate.c),
 * reached by the disk's driver (vmm/storage/block.h). Only those sectors
 * are ever read or written: the rest of the disk (the FAT, the firmware's
 * files, other partitions) is not this hypervisor's.
 */
#include "vmm/storage/store_host.h"

#include "boot/handover.h"
#include "lib/fmt.h"
#include "lib/store.h"
#include "vmm/clock.h"
#include "vmm/log.h"
#include "vmm/page_alloc.h"
#include "vmm/storage/block.h"
#include "x86/cpu.h"

#include <string.h>

#define SECTORS_PER_BLOCK (STORE_BLOCK / BLOCK_SECTOR)
/* The self-test's object: written by one boot, checked by the next. */
#define SELFTEST_NAME "selftest"
#define SELFTEST_BYTES (64 * 1024)
#define SELFTEST_PIECE (16 * 1024)
_Static_assert(SELFTEST_BYTES % SELFTEST_PIECE == 0, "the self-test writes whole pieces");

static const struct boot_store *where;
static const char *store_path;
static bool store_open_ok;
/* The drive failed last time: said once, not at every guest retry. */
static bool failing;
static struct block_disk disk;
static uint64_t ticks_per_ms;
static struct store store;
static char status[160] = "none: no store configured (disks are RAM copies)";


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
		bool done = write ? disk.write(disk.ctx, x->sector + in, (uint32_t)run, buf)
				  : disk.read(disk.ctx, x->sector + in, (uint32_t)run, buf);
		if (!done) {
			if (!failing)
				log_err("store: %s", disk.why);
			failing = true;
			return false;
		}
		if (failing)
			log_info("store: the drive answers again");
		failing = false;
		sector += run;
		left -= run;
		buf += run * BLOCK_SECTOR;
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
	if (disk.flush(disk.ctx))
		return true;
	if (!failing)
		log_err("store: %s", disk.why);
	failing = true;
	return false;
}

/* DMA memory for the disk's controller: host pages, 1:1 mapped. */
static void *dma_alloc(void *ctx, uint64_t pages, bool below_4g)
{
	uint64_t pa;

	if (page_alloc_alloc(ctx, pages, 1, &pa))
		return NULL;
	/* The pool's pages lie where RAM is: the 4-GiB limit is checked, not asked for. */
	if (below_4g && pa + pages * PAGE_SIZE > (UINT64_C(1) << 32)) {
		page_alloc_free(ctx, pa, pages);
		return NULL;
	}
	memset((void *)(uintptr_t)pa, 0, pages * PAGE_SIZE);
	return (void *)(uintptr_t)pa;
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

/* len bytes (whole sectors) at offset of object o: through its extents, piece by piece. */
static bool sectors_io(const struct store_object *o, uint64_t offset, uint8_t *buf, uint64_t len,
		       bool write)
{
	uint64_t block, run;

	while (len) {
		if (!store_map(o, offset, &block, &run))
			return false;
		uint64_t in_block = offset % STORE_BLOCK, n = run * STORE_BLOCK - in_block;
		if (n > len)
			n = len;
		if (!container_io(block * SECTORS_PER_BLOCK + in_block / BLOCK_SECTOR, n / BLOCK_SECTOR,
				  buf, write))
			return false;
		offset += n;
		buf += n;
		len -= n;
	}
	return true;
}

/*
 * len bytes at offset (a sector's start) of object o. A last partial
 * sector goes through a bounce sector: on a write, the rest of it (past
 * the object's bytes, still inside its own block) is zeros.
 */
static bool object_io(const struct store_object *o, uint64_t offset, uint8_t *buf, uint64_t len,
		      bool write)
{
	static uint8_t bounce[BLOCK_SECTOR];
	uint64_t tail = len % BLOCK_SECTOR, whole = len - tail;

	if (!o || offset % BLOCK_SECTOR || offset > o->bytes || len > o->bytes - offset)
		return false;
	if (!sectors_io(o, offset, buf, whole, write))
		return false;
	if (!tail)
		return true;
	if (write) {
		memset(bounce, 0, sizeof(bounce));
		memcpy(bounce, buf + whole, tail);
	}
	if (!sectors_io(o, offset + whole, bounce, BLOCK_SECTOR, write))
		return false;
	if (!write)
		memcpy(buf + whole, bounce, tail);
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
	if ((o = store_find(&store, name)) && o->kind == STORE_NEW_DISK)
		return STORE_DISK_BEING_MADE;
	/* A disk is whole sectors: an object under one is no disk. */
	if (!o || o->kind != STORE_DISK || o->bytes < BLOCK_SECTOR)
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
	case STORE_DISK_BEING_MADE:
		fmt_snprintf(why, why_size, "store disk '%s' is still being made", name);
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

/*
 * A VM's saved state is the object "NAME.vsv" (Virtual Server's name for
 * a saved state file): a disk may have the VM's own name.
 */
#define SAVED_SUFFIX ".vsv"

static bool saved_object_name(const char *vm_name, char *out, size_t cap)
{
	fmt_snprintf(out, cap, "%s" SAVED_SUFFIX, vm_name);
	return strlen(vm_name) + sizeof(SAVED_SUFFIX) - 1 < cap && store_name_valid(out);
}

static bool writable(char *why, size_t why_size)
{
	if (!store_open_ok) {
		fmt_snprintf(why, why_size, "there is no store (%s)", status);
		return false;
	}
	if (store.uncertain) {
		fmt_snprintf(why, why_size, "the store is read-only until the next boot (a "
			     "superblock write did not finish)");
		return false;
	}
	return true;
}

int store_host_keep_saved(const char *vm_name, const void *file, uint64_t bytes,
			  uint64_t saved_at, char *why, size_t why_size)
{
	char name[STORE_NAME_MAX + 1];
	struct store_object o;
	enum store_result r;

	if (!writable(why, why_size))
		return -1;
	if (!saved_object_name(vm_name, name, sizeof(name))) {
		fmt_snprintf(why, why_size, "'%s' is no store name (at most %u characters of A-Z "
			     "a-z 0-9 . _ - with '" SAVED_SUFFIX "')", vm_name, STORE_NAME_MAX);
		return -1;
	}
	/* The older state stays committed until the new one is whole on the medium. */
	bool replacing = store_find(&store, name) != NULL;
	r = replacing ? store_allocate_replacement(&store, name, STORE_SAVED_STATE, bytes,
						   saved_at, &o, why, why_size)
		      : store_allocate(&store, name, STORE_SAVED_STATE, bytes, saved_at, &o, why,
				       why_size);
	if (r != STORE_OK)
		return -1;
	/* The buffer is only read: the cast serves the shared walk. */
	if (!object_io(&o, 0, (uint8_t *)(uintptr_t)file, bytes, true) || !dev_flush(NULL)) {
		fmt_snprintf(why, why_size, "writing it failed (%s)", disk.why);
		return -1;
	}
	r = replacing ? store_commit_replace(&store, &o, why, why_size)
		      : store_commit_add(&store, &o, why, why_size);
	return r == STORE_OK ? 0 : -1;
}

/* The VM's saved state in the store, if there is one. */
static const struct store_object *saved_of(const char *vm_name, char *name, size_t cap)
{
	const struct store_object *o;

	if (!store_open_ok || !saved_object_name(vm_name, name, cap) ||
	    !(o = store_find(&store, name)) || o->kind != STORE_SAVED_STATE)
		return NULL;
	return o;
}

bool store_host_has_saved(const char *vm_name)
{
	char name[STORE_NAME_MAX + 1];

	return saved_of(vm_name, name, sizeof(name)) != NULL;
}

int store_host_drop_saved(const char *vm_name, char *why, size_t why_size)
{
	char name[STORE_NAME_MAX + 1], detail[160];

	if (!saved_of(vm_name, name, sizeof(name)))
		return 0;
	if (store_commit_delete(&store, name, detail, sizeof(detail)) == STORE_OK) {
		log_info("store: vm '%s': its saved state '%s' dropped", vm_name, name);
		return 0;
	}
	fmt_snprintf(why, why_size, "its saved state '%s' in the store cannot be dropped (%s), "
		     "and would come back at the next boot, older than its disk", name, detail);
	return -1;
}

bool store_host_saved_at(unsigned index, char *vm_name, size_t cap, uint64_t *bytes)
{
	const size_t suffix = sizeof(SAVED_SUFFIX) - 1;

	for (unsigned i = 0, seen = 0; store_open_ok && i < store.table.count; i++) {
		const struct store_object *o = &store.table.object[i];
		size_t n = strlen(o->name);
		if (o->kind != STORE_SAVED_STATE || n <= suffix ||
		    strcmp(o->name + n - suffix, SAVED_SUFFIX) || seen++ != index)
			continue;
		fmt_snprintf(vm_name, cap, "%.*s", (int)(n - suffix), o->name);
		*bytes = o->bytes;
		return n - suffix < cap;
	}
	return false;
}

int store_host_read_saved(const char *vm_name, void *buf, uint64_t bytes, char *why,
			  size_t why_size)
{
	char name[STORE_NAME_MAX + 1];
	const struct store_object *o;

	if (!store_open_ok || !saved_object_name(vm_name, name, sizeof(name)) ||
	    !(o = store_find(&store, name)) || o->bytes != bytes) {
		fmt_snprintf(why, why_size, "the store holds no saved state of %llu bytes for '%s'",
			     (unsigned long long)bytes, vm_name);
		return -1;
	}
	if (!object_io(o, 0, buf, bytes, false)) {
		fmt_snprintf(why, why_size, "reading '%s' failed (%s)", name, disk.why);
		return -1;
	}
	return 0;
}

/*
 * Disks made through the API (CreateVirtualHardDisk): the object is
 * committed at once as a disk being made, so that its blocks are taken,
 * then zeroed a piece at a time from the scheduler's loop (no VM waits on
 * a whole disk's writes), flushed, and committed as a disk. One at a time.
 */
#define ZERO_PIECE (64 * 1024)

static struct making {
	char name[STORE_NAME_MAX + 1];
	uint64_t done;                  /* bytes zeroed */
	bool active;
} making;

/* A disk object of bytes, of kind STORE_NEW_DISK (a boot drops it) until made whole. */
static int new_disk_object(const char *name, uint64_t bytes, char *why, size_t why_size)
{
	struct store_object o;

	if (!writable(why, why_size))
		return STORE_HOST_NO_STORE;
	if (bytes < BLOCK_SECTOR || bytes % BLOCK_SECTOR) {
		fmt_snprintf(why, why_size, "a disk is whole 512-byte sectors, at least one");
		return STORE_HOST_INVALID;
	}
	switch (store_allocate(&store, name, STORE_NEW_DISK, bytes, clock_wallclock_s(), &o, why,
			       why_size)) {
	case STORE_OK:
		break;
	case STORE_EXISTS:
		return STORE_HOST_EXISTS;
	case STORE_NO_SPACE:
		return STORE_HOST_NO_SPACE;
	case STORE_INVALID:
		return STORE_HOST_INVALID;
	default:
		return STORE_HOST_NO_STORE;
	}
	if (store_commit_add(&store, &o, why, why_size) != STORE_OK)
		return STORE_HOST_NO_STORE;
	return 0;
}

/* A disk object written whole: flushed, then committed as a disk. */
static bool disk_made(const char *name, char *why, size_t why_size)
{
	if (!dev_flush(NULL)) {
		fmt_snprintf(why, why_size, "the drive's cache was not flushed (%s)", disk.why);
		return false;
	}
	return store_commit_set_kind(&store, name, STORE_DISK, why, why_size) == STORE_OK;
}

int store_host_create_disk(const char *name, uint64_t bytes, char *why, size_t why_size)
{
	int e;

	if (!writable(why, why_size))
		return STORE_HOST_NO_STORE;
	if (making.active) {
		fmt_snprintf(why, why_size, "disk '%s' is being made (%llu%%): one at a time",
			     making.name,
			     (unsigned long long)(making.done * 100 /
						  store_find(&store, making.name)->bytes));
		return STORE_HOST_BUSY;
	}
	if ((e = new_disk_object(name, bytes, why, why_size)))
		return e;
	making = (struct making){ .active = true };
	memcpy(making.name, name, strlen(name) + 1);
	log_info("store: disk '%s' of %llu MiB being made (zeroed first)", name,
		 (unsigned long long)(bytes >> 20));
	return 0;
}

/* The disk an import writes, in steps: no one else deletes it, or writes it, meanwhile. */
static char importing[STORE_NAME_MAX + 1];

int store_host_import_disk_begin(const char *name, uint64_t bytes, char *why, size_t why_size)
{
	int e = new_disk_object(name, bytes, why, why_size);

	if (!e)
		fmt_snprintf(importing, sizeof(importing), "%s", name);
	return e;
}

bool store_host_import_disk_write(const char *name, uint64_t offset, const void *buf,
				  uint64_t len)
{
	const struct store_object *o = store_find(&store, name);

	return o && o->kind == STORE_NEW_DISK && !strcmp(name, importing) &&
	       object_io(o, offset, (uint8_t *)(uintptr_t)buf, len, true);
}

int store_host_import_disk_end(const char *name, char *why, size_t why_size)
{
	if (strcmp(name, importing)) {
		fmt_snprintf(why, why_size, "disk '%s' is not the one being imported", name);
		return STORE_HOST_INVALID;
	}
	if (!disk_made(name, why, why_size))
		return STORE_HOST_NO_STORE;
	importing[0] = '\0';
	log_info("store: disk '%s' imported", name);
	return 0;
}

int store_host_import_disk_drop(const char *name, char *why, size_t why_size)
{
	if (!strcmp(name, importing))
		importing[0] = '\0';
	return store_host_delete_disk(name, why, why_size);
}

bool store_host_poll(void)
{
	static const uint8_t zeros[ZERO_PIECE];
	const struct store_object *o;
	char why[160];

	if (!making.active)
		return false;
	if (!(o = store_find(&store, making.name)) || o->kind != STORE_NEW_DISK) {
		making.active = false;          /* deleted meanwhile */
		return false;
	}
	uint64_t n = o->bytes - making.done < ZERO_PIECE ? o->bytes - making.done : ZERO_PIECE;
	if (n && !object_io(o, making.done, (uint8_t *)(uintptr_t)zeros, n, true)) {
		log_err("store: disk '%s' cannot be made (%s); it stays a disk being made, dropped "
			"at the next boot or by DeleteVirtualHardDisk", making.name, disk.why);
		making.active = false;
		return false;
	}
	making.done += n;
	if (making.done < o->bytes)
		return true;
	making.active = false;
	if (!disk_made(making.name, why, sizeof(why))) {
		log_err("store: disk '%s' zeroed, but not committed as a disk (%s)", making.name,
			why);
		return false;
	}
	log_info("store: disk '%s' made: %llu MiB, zeroed", making.name,
		 (unsigned long long)(o->bytes >> 20));
	return false;
}

bool store_host_disk_at(unsigned index, struct store_host_disk *out)
{
	for (unsigned i = 0, seen = 0; store_open_ok && i < store.table.count; i++) {
		const struct store_object *o = &store.table.object[i];
		if (o->kind == STORE_SAVED_STATE || seen++ != index)
			continue;
		const struct attachment *a = attachment_of(o->name);
		*out = (struct store_host_disk){ .bytes = o->bytes, .vm_id = a ? (int)a->vm_id : -1,
						 .ready_percent = 100 };
		memcpy(out->name, o->name, sizeof(out->name));
		if (o->kind == STORE_NEW_DISK)
			out->ready_percent = making.active && !strcmp(making.name, o->name)
						     ? (unsigned)(making.done * 100 / o->bytes) : 0;
		return true;
	}
	return false;
}

int store_host_delete_disk(const char *name, char *why, size_t why_size)
{
	const struct store_object *o;

	if (!writable(why, why_size))
		return STORE_HOST_NO_STORE;
	if (!(o = store_find(&store, name)) || o->kind == STORE_SAVED_STATE) {
		fmt_snprintf(why, why_size, "the store holds no disk '%s'", name);
		return STORE_HOST_NOT_FOUND;
	}
	if (!strcmp(name, importing)) {
		fmt_snprintf(why, why_size, "disk '%s' is being imported: the import drops it if "
			     "it is refused", name);
		return STORE_HOST_BUSY;
	}
	if (attachment_of(name)) {
		fmt_snprintf(why, why_size, "disk '%s' is a VM's: delete the VM first", name);
		return STORE_HOST_TAKEN;
	}
	if (store_commit_delete(&store, name, why, why_size) != STORE_OK)
		return STORE_HOST_NO_STORE;
	log_info("store: disk '%s' deleted", name);
	return 0;
}

/* Disks a boot finds half made: their zeroing was cut short, so they are not disks. */
static void drop_unmade_disks(void)
{
	char why[160];

	for (unsigned i = 0; i < store.table.count;) {
		const struct store_object *o = &store.table.object[i];
		char name[STORE_NAME_MAX + 1];
		if (o->kind != STORE_NEW_DISK) {
			i++;
			continue;
		}
		memcpy(name, o->name, sizeof(name));
		if (store_commit_delete(&store, name, why, sizeof(why)) != STORE_OK) {
			log_err("store: disk '%s' was being made when the host stopped; not dropped: "
				"%s", name, why);
			return;
		}
		log_warn("store: disk '%s' was being made when the host stopped: dropped", name);
	}
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
	uint64_t sectors_bytes = o->bytes & ~(uint64_t)(BLOCK_SECTOR - 1);

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
		 SELFTEST_BYTES / 1024, (unsigned long long)(write_ticks * 1000 / ticks_per_ms),
		 (unsigned long long)(commit_ticks * 1000 / ticks_per_ms));
	bad = check_pattern(store_find(&store, SELFTEST_NAME));
	if (bad < 0)
		log_info("store selftest: %u KiB written, flushed, committed (generation %llu) and "
			 "read back", SELFTEST_BYTES / 1024,
			 (unsigned long long)store.super.generation);
	else
		log_err("store selftest: the pattern reads back wrong at byte %lld", (long long)bad);
}

/* Byte k of stress object i: every object's bytes its own. */
static uint8_t stress_byte(uint64_t i, uint64_t k)
{
	return (uint8_t)(i * 31 + k * 7 + (k >> 9));
}

/*
 * selftest = store-stress: objects written, flushed and committed one
 * after another, the oldest deleted once STRESS_KEPT are there, until the
 * power goes. The e2e test cuts it (kills the emulator) in the middle and
 * checks that the store opens, that its generation is at least the last
 * one logged (a line is on the wire only after its commit), and that every
 * object in it holds its bytes. Nothing else runs: it never returns.
 */
#define STRESS_BYTES (16 * 1024)
#define STRESS_KEPT 4

static void stress(void)
{
	static uint8_t data[STRESS_BYTES];
	char name[STORE_NAME_MAX + 1], why[160];
	struct store_object o;

	log_warn("store stress: writing and committing until the power goes; no VM runs");
	for (uint64_t i = 1;; i++) {
		fmt_snprintf(name, sizeof(name), "stress-%llu", (unsigned long long)i);
		for (uint64_t k = 0; k < sizeof(data); k++)
			data[k] = stress_byte(i, k);
		if (store_allocate(&store, name, STORE_DISK, sizeof(data), 0, &o, why,
				   sizeof(why)) != STORE_OK)
			break;
		if (!object_io(&o, 0, data, sizeof(data), true) || !dev_flush(NULL)) {
			fmt_snprintf(why, sizeof(why), "%s", disk.why);
			break;
		}
		if (store_commit_add(&store, &o, why, sizeof(why)) != STORE_OK)
			break;
		log_info("store stress: %s committed (generation %llu)", name,
			 (unsigned long long)store.super.generation);
		if (i > STRESS_KEPT) {
			fmt_snprintf(name, sizeof(name), "stress-%llu",
				     (unsigned long long)(i - STRESS_KEPT));
			if (store_commit_delete(&store, name, why, sizeof(why)) != STORE_OK)
				break;
			log_info("store stress: %s deleted (generation %llu)", name,
				 (unsigned long long)store.super.generation);
		}
		log_flush();
	}
	log_err("store stress: stopped: %s", why);
	log_flush();
	cpu_halt_forever();
}

void store_host_init(const struct boot_info *bi)
{
	const char *path = bi->config->hv.store;
	char why[160], note[160];

	if (bi->store.bus == BOOT_STORE_NONE) {
		if (path[0])
			fmt_snprintf(status, sizeof(status), "none: '%s' was not found usable at boot "
				     "(disks are RAM copies)", path);
		log_info("store: %s", status);
		return;
	}
	where = &bi->store;
	store_path = path;
	ticks_per_ms = bi->tsc_hz / 1000;
	/* The drivers keep it: it outlives this call. */
	static struct block_dma dma;
	dma = (struct block_dma){ dma_alloc, bi->host_pages, bi->identity_map_top,
				  handover_map_mmio, ticks_per_ms };
	bool (*const open[])(const struct boot_store *, const struct block_dma *,
			     struct block_disk *, char *, size_t) = {
		[BOOT_STORE_ATA] = ata_disk_open, [BOOT_STORE_AHCI] = ahci_disk_open,
		[BOOT_STORE_NVME] = nvme_disk_open, [BOOT_STORE_VIRTIO] = virtio_disk_open,
	};
	if (!open[where->bus](where, &dma, &disk, why, sizeof(why))) {
		fmt_snprintf(status, sizeof(status), "none: %s", why);
		log_err("store: %s", status);
		return;
	}
	/*
	 * A store block that straddles physical sectors is written by a
	 * read-modify-write of its neighbours: a power cut then can reach the
	 * other superblock too. Said, not refused: the admin can copy the file
	 * anew (or use a partition) to align it.
	 */
	uint32_t per = disk.logical_per_physical;
	for (uint32_t k = 0; per > 1 && k < where->map.count; k++)
		if ((where->map.extent[k].sector + disk.alignment_offset) % per) {
			log_warn("store: '%s' is not aligned to the drive's %u-byte physical sectors: "
				 "a power cut during a metadata write may damage both superblocks",
				 path, per * BLOCK_SECTOR);
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
	if (!store.uncertain)
		drop_unmade_disks();
	log_info("store: '%s' on '%s' (%s, %llu MiB): generation %llu, %u object(s), %llu KiB "
		 "free", path, disk.model, disk.where, (unsigned long long)(disk.sectors / 2048),
		 (unsigned long long)store.super.generation, store.table.count,
		 (unsigned long long)(store_free_blocks(&store) * (STORE_BLOCK / 1024)));
	if (bi->config->hv.selftest == CFG_SELFTEST_STORE)
		selftest();
	if (bi->config->hv.selftest == CFG_SELFTEST_STORE_STRESS)
		stress();
}

uint64_t store_host_free_bytes(void)
{
	return store_open_ok && !store.uncertain ? store_free_blocks(&store) * STORE_BLOCK : 0;
}

const char *store_host_status(void)
{
	/* As the store is now: every commit changes it. */
	if (store_open_ok)
		fmt_snprintf(status, sizeof(status), "'%s': generation %llu, %u object(s), %llu KiB "
			     "free%s", store_path, (unsigned long long)store.super.generation,
			     store.table.count,
			     (unsigned long long)(store_free_blocks(&store) * (STORE_BLOCK / 1024)),
			     store.uncertain ? " (read-only until the next boot: a superblock's "
					       "state is unknown)" : "");
	return status;
}
