/*
 * The store (docs/store.md): VM disks and saved states on a device the
 * hypervisor owns, a GPT partition or a preallocated container file.
 * Two superblocks, each with a table slot of its own, hold the list of
 * objects and their extents; a change writes the other slot's table, then
 * its superblock with the next generation, flushing after each, so a
 * power cut at any write leaves the last committed generation readable.
 * Object data is written in place; only the metadata is copy-on-write.
 *
 * The decoders take hostile bytes (a store from anywhere, a damaged
 * disk): every field is checked, and a store that does not add up is
 * refused with the reason, never repaired. Plain C, freestanding: the
 * hypervisor, the admin tool (tools/vmm-store.c), the unit tests and the
 * fuzzer share it.
 */
#ifndef LIB_STORE_H
#define LIB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_BLOCK 4096u
/*
 * The GPT partition type of a store partition (docs/store.md), as sfdisk,
 * sgdisk and parted write it: c78ea6a6-4a69-4576-97fd-0fa745dc6db4.
 */
#define STORE_GPT_TYPE "c78ea6a6-4a69-4576-97fd-0fa745dc6db4"
#define STORE_VERSION 1u
#define STORE_OBJECTS_MAX 64u
#define STORE_EXTENTS_MAX 8u
#define STORE_NAME_MAX 31u              /* characters, a NUL after them on disk */
/* Blocks 0 and 1: superblocks A and B; 2-5 and 6-9: their table slots; then data. */
#define STORE_TABLE_BLOCKS 4u
#define STORE_DATA_START (2u + 2u * STORE_TABLE_BLOCKS)
/* A store smaller than its metadata and one data block is no store. */
#define STORE_MIN_BLOCKS (STORE_DATA_START + 1u)

enum store_kind {
	STORE_DISK = 1,
	STORE_SAVED_STATE = 2,
	/*
	 * A disk being made (CreateVirtualHardDisk): its blocks are zeroed
	 * before it becomes a disk, so that no VM reads what an object that
	 * was there before held. One found at boot was cut short: dropped.
	 */
	STORE_NEW_DISK = 3,
};

static inline bool store_kind_valid(uint32_t kind)
{
	return kind == STORE_DISK || kind == STORE_SAVED_STATE || kind == STORE_NEW_DISK;
}

struct store_extent {
	uint64_t start;                 /* first block */
	uint64_t blocks;
};

struct store_object {
	char name[STORE_NAME_MAX + 1];
	uint32_t kind;                  /* enum store_kind */
	uint32_t extent_count;
	uint64_t bytes;                 /* the object's size; its extents cover it */
	uint64_t created_s;             /* the host's wall clock, seconds since 1970; 0: unknown */
	struct store_extent extent[STORE_EXTENTS_MAX];
};

struct store_table {
	uint32_t count;
	struct store_object object[STORE_OBJECTS_MAX];
};

struct store_super {
	uint32_t slot;                  /* 0: A, 1: B */
	uint64_t generation;
	uint64_t total_blocks;
	uint32_t table_bytes;
	uint32_t table_crc;
	uint8_t uuid[16];
};

enum store_result {
	STORE_OK = 0,
	STORE_DAMAGED,                  /* not a consistent superblock or table: a torn write, noise */
	STORE_REFUSED,                  /* consistent, but not one this code may use */
	STORE_IO_ERROR,
	STORE_NO_SPACE,
	STORE_EXISTS,
	STORE_NOT_FOUND,
	STORE_INVALID,                  /* a bad argument: name, size, kind */
};

/* The device under a store, in STORE_BLOCK units. Each call returns false on an I/O error. */
struct store_dev {
	void *ctx;
	uint64_t blocks;
	bool (*read)(void *ctx, uint64_t block, uint32_t count, void *buf);
	bool (*write)(void *ctx, uint64_t block, uint32_t count, const void *buf);
	bool (*flush)(void *ctx);
};

struct store {
	const struct store_dev *dev;
	struct store_super super;       /* the last committed */
	struct store_table table;
	/*
	 * A commit's superblock was written but its flush failed: whether
	 * that generation is on the medium is unknown, so nothing more is
	 * committed (or allocated from blocks it may own) until the store is
	 * opened again and reads what is there.
	 */
	bool uncertain;
};

/* Generations stop below 2^63: a commit never wraps to an older-looking one. */
#define STORE_GENERATION_MAX (UINT64_C(1) << 63)

/* --- The on-disk format (pure: no device) ---------------------------------- */

/* Superblock slot's bytes, buf[0..STORE_BLOCK). */
void store_super_encode(const struct store_super *sb, uint8_t *buf);
/*
 * The superblock of slot in buf[0..len): STORE_DAMAGED (no magic, a bad
 * checksum), STORE_REFUSED (a version or geometry this code does not
 * know, or a store larger than the device of device_blocks), STORE_OK.
 */
enum store_result store_super_decode(const uint8_t *buf, size_t len, uint32_t slot,
				     uint64_t device_blocks, struct store_super *sb, char *why,
				     size_t why_size);

/* The table's bytes into buf[0..cap); their count, 0 when they do not fit. */
size_t store_table_encode(const struct store_table *t, uint8_t *buf, size_t cap);
/*
 * The table sb describes, from buf[0..len): STORE_DAMAGED (length or
 * checksum not sb's) or STORE_REFUSED (a bad name, kind, size or extent,
 * extents outside the data area or overlapping, a name twice).
 */
enum store_result store_table_decode(const uint8_t *buf, size_t len, const struct store_super *sb,
				     struct store_table *t, char *why, size_t why_size);

/* --- The store on a device -------------------------------------------------- */

/* A fresh, empty store over the whole device (generation 1 in both slots). */
enum store_result store_format(struct store *s, const struct store_dev *dev,
			       const uint8_t uuid[16], char *why, size_t why_size);

/*
 * The last committed generation: the valid superblock with the higher
 * generation whose table checks. *note says when one superblock was
 * passed over (a torn write), else "". Nothing is written.
 */
enum store_result store_open(struct store *s, const struct store_dev *dev, char *note,
			     size_t note_size, char *why, size_t why_size);

const struct store_object *store_find(const struct store *s, const char *name);

/*
 * A name: 1 to STORE_NAME_MAX of A-Z a-z 0-9 . _ -, not starting with '.'
 * or '-'. Inline: the configuration parser checks names without the store.
 */
static inline bool store_name_valid(const char *name)
{
	size_t n = 0;

	for (; name[n]; n++) {
		char c = name[n];
		if (n >= STORE_NAME_MAX ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return n >= 1 && name[0] != '.' && name[0] != '-';
}

/*
 * Room for a new object of bytes (rounded up to whole blocks) in at most
 * STORE_EXTENTS_MAX free runs, first fit; *o filled, nothing written.
 * store_commit_add() then records it, after its data is written.
 */
enum store_result store_allocate(const struct store *s, const char *name, enum store_kind kind,
				 uint64_t bytes, uint64_t created_s, struct store_object *o,
				 char *why, size_t why_size);

/*
 * Room for the object that will replace name (of the same kind): as
 * store_allocate, outside the blocks name holds, which stay its own until
 * store_commit_replace() commits the new one in its place.
 */
enum store_result store_allocate_replacement(const struct store *s, const char *name,
					     enum store_kind kind, uint64_t bytes,
					     uint64_t created_s, struct store_object *o, char *why,
					     size_t why_size);

/* Adds o (from store_allocate) and commits the next generation. */
enum store_result store_commit_add(struct store *s, const struct store_object *o, char *why,
				   size_t why_size);

/*
 * o (from store_allocate_replacement) takes the place of the object of its
 * name in one commit: a power cut leaves the old one or the new one, never
 * neither. The old one's blocks are free after it.
 */
enum store_result store_commit_replace(struct store *s, const struct store_object *o, char *why,
				       size_t why_size);

/* The object of that name becomes of kind, its extents as they are, in one commit. */
enum store_result store_commit_set_kind(struct store *s, const char *name, enum store_kind kind,
					char *why, size_t why_size);

/* Drops the object and commits the next generation; its blocks are free after it. */
enum store_result store_commit_delete(struct store *s, const char *name, char *why,
				      size_t why_size);

/*
 * Where byte offset of o lies: the device block and how many blocks
 * follow it in the same extent (offset within the object's blocks).
 */
bool store_map(const struct store_object *o, uint64_t offset, uint64_t *block, uint64_t *run);

uint64_t store_free_blocks(const struct store *s);

#endif
