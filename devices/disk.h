/*
 * A VM's disk: the library's pristine bytes (read from the boot volume
 * before ExitBootServices, never written again) under the VM's own
 * copy-on-write overlay. The first write to a DISK_CHUNK_SIZE chunk takes
 * a chunk from the allocator, copies the pristine bytes into it and
 * writes there; reads see the chunk from then on. So every VM that uses a
 * library disk, its configured owner included, sees only its own writes,
 * and no two VMs ever write the same bytes.
 *
 * Or a disk on a medium (a store object, docs/store.md): then every read
 * and write goes to the medium through its callbacks, and FLUSH reaches
 * its drive's cache. Such a disk keeps its writes across a host reboot.
 *
 * Plain C with the allocator and the medium behind callbacks: the
 * hypervisor hands out host pages and drives the store, the unit tests
 * use heap blocks and memory.
 */
#ifndef DEVICES_DISK_H
#define DEVICES_DISK_H

#include <stdbool.h>
#include <stdint.h>

/* 16 pages: big enough that the chunk table stays small (8 MiB for 64 GiB). */
#define DISK_CHUNK_SIZE (64 * 1024)

struct disk_chunk_alloc {
	void *(*alloc)(void *ctx);         /* DISK_CHUNK_SIZE bytes, or NULL */
	void (*free)(void *ctx, void *chunk);
	void *ctx;
};

/* Byte offsets and lengths are whole sectors; each returns false on an I/O error. */
struct disk_medium {
	void *ctx;
	bool (*read)(void *ctx, uint64_t offset, void *buf, uint64_t len);
	bool (*write)(void *ctx, uint64_t offset, const void *buf, uint64_t len);
	bool (*flush)(void *ctx);
};

struct disk {
	const struct disk_medium *medium;  /* NULL: the copy-on-write disk below */
	const uint8_t *base;               /* the pristine bytes, size of them */
	uint64_t size;                     /* what the guest sees */
	uint8_t **chunks;                  /* disk_chunk_count(size) entries; NULL: pristine */
	uint64_t chunks_written;           /* chunks taken from the allocator */
	struct disk_chunk_alloc alloc;
};

/* Entries of the chunk table a disk of size bytes needs. */
uint64_t disk_chunk_count(uint64_t size);

/*
 * A disk of size bytes over base, every chunk pristine; table has
 * disk_chunk_count(size) entries, which this clears.
 */
void disk_init(struct disk *d, const uint8_t *base, uint64_t size, uint8_t **table,
	       const struct disk_chunk_alloc *alloc);

/* A disk of size bytes on a medium; the chunk calls below are not for it. */
void disk_init_medium(struct disk *d, uint64_t size, const struct disk_medium *medium);

/* True when [offset, offset + len) lies on the disk. */
bool disk_range_ok(const struct disk *d, uint64_t offset, uint64_t len);

/*
 * The bytes at offset as the VM sees them: a pointer valid for *len bytes,
 * which is cut at the end of the chunk. @pre disk_range_ok(d, offset, *len), *len > 0.
 */
const uint8_t *disk_read_span(const struct disk *d, uint64_t offset, uint64_t *len);

/*
 * Copies len bytes at offset as the VM sees them into buf, from either
 * kind of disk: false for a range off the disk or a medium's I/O error.
 */
bool disk_read(const struct disk *d, uint64_t offset, void *buf, uint64_t len);

/*
 * Gives every chunk of [offset, offset + len) its own copy. Returns -1,
 * with nothing on the disk changed, for a range off the disk or when the
 * allocator has no chunk left (the chunks copied so far stay: they hold
 * what the VM saw anyway).
 */
int disk_prepare_write(struct disk *d, uint64_t offset, uint64_t len);

/* As disk_read_span, writable. @pre disk_prepare_write(d, offset, *len) == 0. */
uint8_t *disk_write_span(struct disk *d, uint64_t offset, uint64_t *len);

/* Gives every chunk back: the disk is pristine again. */
void disk_discard_writes(struct disk *d);

#endif
