#include "lib/store.h"

#include "lib/crc32c.h"
#include "lib/fmt.h"
#include "lib/le.h"

#include <string.h>

/* The superblock's fields (docs/store.md), little-endian at these offsets. */
#define SUPER_MAGIC "VMMSTORE"
#define SB_VERSION 8
#define SB_BLOCK_SIZE 12
#define SB_SLOT 16
#define SB_TABLE_BLOCKS 20
#define SB_DATA_START 24
#define SB_TABLE_BYTES 28
#define SB_GENERATION 32
#define SB_TOTAL_BLOCKS 40
#define SB_TABLE_CRC 48
#define SB_UUID 52
#define SB_CRC 68
#define SUPER_BYTES 72

/* The table: a count, then one entry per object. */
#define TABLE_HEADER 8
#define E_NAME 0
#define E_KIND 32
#define E_EXTENT_COUNT 36
#define E_BYTES 40
#define E_CREATED 48
#define E_EXTENTS 56
#define ENTRY_BYTES (E_EXTENTS + 16 * STORE_EXTENTS_MAX)
#define TABLE_MAX (TABLE_HEADER + ENTRY_BYTES * STORE_OBJECTS_MAX)
_Static_assert(TABLE_MAX <= STORE_TABLE_BLOCKS * STORE_BLOCK, "the table fits its slot");
_Static_assert(SUPER_BYTES <= 512, "a superblock is written by one sector's write");

/* One CPU at a time works on a store: scratch, not state. */
static uint8_t table_buf[STORE_TABLE_BLOCKS * STORE_BLOCK];
static uint8_t super_buf[STORE_BLOCK];
static struct store_table next_table;

static uint64_t table_block(uint32_t slot)
{
	return 2u + (uint64_t)slot * STORE_TABLE_BLOCKS;
}

static uint64_t blocks_for(uint64_t bytes)
{
	return bytes / STORE_BLOCK + (bytes % STORE_BLOCK != 0);
}

void store_super_encode(const struct store_super *sb, uint8_t *buf)
{
	memset(buf, 0, STORE_BLOCK);
	memcpy(buf, SUPER_MAGIC, 8);
	le_put(buf + SB_VERSION, STORE_VERSION, 4);
	le_put(buf + SB_BLOCK_SIZE, STORE_BLOCK, 4);
	le_put(buf + SB_SLOT, sb->slot, 4);
	le_put(buf + SB_TABLE_BLOCKS, STORE_TABLE_BLOCKS, 4);
	le_put(buf + SB_DATA_START, STORE_DATA_START, 4);
	le_put(buf + SB_TABLE_BYTES, sb->table_bytes, 4);
	le_put(buf + SB_GENERATION, sb->generation, 8);
	le_put(buf + SB_TOTAL_BLOCKS, sb->total_blocks, 8);
	le_put(buf + SB_TABLE_CRC, sb->table_crc, 4);
	memcpy(buf + SB_UUID, sb->uuid, 16);
	le_put(buf + SB_CRC, crc32c(CRC32C_INIT, buf, SB_CRC), 4);
}

enum store_result store_super_decode(const uint8_t *buf, size_t len, uint32_t slot,
				     uint64_t device_blocks, struct store_super *sb, char *why,
				     size_t why_size)
{
	const char *name = slot ? "B" : "A";

	if (len < SUPER_BYTES || memcmp(buf, SUPER_MAGIC, 8)) {
		fmt_snprintf(why, why_size, "superblock %s: no store magic", name);
		return STORE_DAMAGED;
	}
	if (le_get(buf + SB_CRC, 4) != crc32c(CRC32C_INIT, buf, SB_CRC)) {
		fmt_snprintf(why, why_size, "superblock %s: bad checksum", name);
		return STORE_DAMAGED;
	}
	uint64_t version = le_get(buf + SB_VERSION, 4);
	if (version != STORE_VERSION) {
		fmt_snprintf(why, why_size, "superblock %s: format version %llu (this hypervisor "
			     "reads version %u)", name, (unsigned long long)version, STORE_VERSION);
		return STORE_REFUSED;
	}
	*sb = (struct store_super){
		.slot = (uint32_t)le_get(buf + SB_SLOT, 4),
		.generation = le_get(buf + SB_GENERATION, 8),
		.total_blocks = le_get(buf + SB_TOTAL_BLOCKS, 8),
		.table_bytes = (uint32_t)le_get(buf + SB_TABLE_BYTES, 4),
		.table_crc = (uint32_t)le_get(buf + SB_TABLE_CRC, 4),
	};
	memcpy(sb->uuid, buf + SB_UUID, 16);
	if (le_get(buf + SB_BLOCK_SIZE, 4) != STORE_BLOCK ||
	    le_get(buf + SB_TABLE_BLOCKS, 4) != STORE_TABLE_BLOCKS ||
	    le_get(buf + SB_DATA_START, 4) != STORE_DATA_START) {
		fmt_snprintf(why, why_size, "superblock %s: a block size or layout of another "
			     "format", name);
		return STORE_REFUSED;
	}
	/* Generation g lives in slot g % 2: anything else is not what a commit writes. */
	if (sb->slot != slot || sb->generation % 2 != slot ||
	    sb->generation >= STORE_GENERATION_MAX) {
		fmt_snprintf(why, why_size, "superblock %s: slot %u and generation %llu do not "
			     "match its place", name, sb->slot, (unsigned long long)sb->generation);
		return STORE_REFUSED;
	}
	if (sb->total_blocks < STORE_MIN_BLOCKS || sb->total_blocks > device_blocks) {
		fmt_snprintf(why, why_size, "superblock %s: %llu blocks of store on a device of "
			     "%llu", name, (unsigned long long)sb->total_blocks,
			     (unsigned long long)device_blocks);
		return STORE_REFUSED;
	}
	if (sb->table_bytes < TABLE_HEADER || sb->table_bytes > TABLE_MAX ||
	    (sb->table_bytes - TABLE_HEADER) % ENTRY_BYTES) {
		fmt_snprintf(why, why_size, "superblock %s: a table of %u bytes", name,
			     sb->table_bytes);
		return STORE_REFUSED;
	}
	return STORE_OK;
}

size_t store_table_encode(const struct store_table *t, uint8_t *buf, size_t cap)
{
	size_t len = TABLE_HEADER + (size_t)t->count * ENTRY_BYTES;

	if (t->count > STORE_OBJECTS_MAX || len > cap)
		return 0;
	memset(buf, 0, len);
	le_put(buf, t->count, 4);
	for (uint32_t i = 0; i < t->count; i++) {
		const struct store_object *o = &t->object[i];
		uint8_t *e = buf + TABLE_HEADER + (size_t)i * ENTRY_BYTES;
		memcpy(e + E_NAME, o->name, strlen(o->name));
		le_put(e + E_KIND, o->kind, 4);
		le_put(e + E_EXTENT_COUNT, o->extent_count, 4);
		le_put(e + E_BYTES, o->bytes, 8);
		le_put(e + E_CREATED, o->created_s, 8);
		for (uint32_t k = 0; k < o->extent_count && k < STORE_EXTENTS_MAX; k++) {
			le_put(e + E_EXTENTS + 16 * k, o->extent[k].start, 8);
			le_put(e + E_EXTENTS + 16 * k + 8, o->extent[k].blocks, 8);
		}
	}
	return len;
}

static bool overlaps(const struct store_extent *a, const struct store_extent *b)
{
	return a->start < b->start + b->blocks && b->start < a->start + a->blocks;
}

/* One entry's fields, each checked on its own; the cross-checks come after. */
static enum store_result decode_object(const uint8_t *e, const struct store_super *sb,
				       struct store_object *o, char *why, size_t why_size)
{
	uint64_t blocks = 0;

	memcpy(o->name, e + E_NAME, STORE_NAME_MAX + 1);
	if (o->name[STORE_NAME_MAX] || !store_name_valid(o->name)) {
		o->name[STORE_NAME_MAX] = '\0';
		fmt_snprintf(why, why_size, "an object's name is not a store name");
		return STORE_REFUSED;
	}
	o->kind = (uint32_t)le_get(e + E_KIND, 4);
	o->extent_count = (uint32_t)le_get(e + E_EXTENT_COUNT, 4);
	o->bytes = le_get(e + E_BYTES, 8);
	o->created_s = le_get(e + E_CREATED, 8);
	if (!store_kind_valid(o->kind)) {
		fmt_snprintf(why, why_size, "object '%s': unknown kind %u", o->name, o->kind);
		return STORE_REFUSED;
	}
	if (!o->extent_count || o->extent_count > STORE_EXTENTS_MAX || !o->bytes) {
		fmt_snprintf(why, why_size, "object '%s': %u extents for %llu bytes", o->name,
			     o->extent_count, (unsigned long long)o->bytes);
		return STORE_REFUSED;
	}
	for (uint32_t k = 0; k < o->extent_count; k++) {
		struct store_extent *x = &o->extent[k];
		x->start = le_get(e + E_EXTENTS + 16 * k, 8);
		x->blocks = le_get(e + E_EXTENTS + 16 * k + 8, 8);
		/* Subtractions only: start + blocks could wrap. */
		if (!x->blocks || x->start < STORE_DATA_START || x->start >= sb->total_blocks ||
		    x->blocks > sb->total_blocks - x->start) {
			fmt_snprintf(why, why_size, "object '%s': extent %u (%llu+%llu) outside the "
				     "data area", o->name, k, (unsigned long long)x->start,
				     (unsigned long long)x->blocks);
			return STORE_REFUSED;
		}
		blocks += x->blocks;
	}
	if (blocks != blocks_for(o->bytes)) {
		fmt_snprintf(why, why_size, "object '%s': %llu blocks of extents for %llu bytes",
			     o->name, (unsigned long long)blocks, (unsigned long long)o->bytes);
		return STORE_REFUSED;
	}
	return STORE_OK;
}

enum store_result store_table_decode(const uint8_t *buf, size_t len, const struct store_super *sb,
				     struct store_table *t, char *why, size_t why_size)
{
	enum store_result r;

	if (len != sb->table_bytes || crc32c(CRC32C_INIT, buf, len) != sb->table_crc) {
		fmt_snprintf(why, why_size, "the table of generation %llu does not match its "
			     "checksum", (unsigned long long)sb->generation);
		return STORE_DAMAGED;
	}
	t->count = (uint32_t)le_get(buf, 4);
	if (t->count > STORE_OBJECTS_MAX || len != TABLE_HEADER + (size_t)t->count * ENTRY_BYTES) {
		fmt_snprintf(why, why_size, "a table of %u objects in %zu bytes", t->count, len);
		return STORE_REFUSED;
	}
	for (uint32_t i = 0; i < t->count; i++) {
		struct store_object *o = &t->object[i];
		*o = (struct store_object){ 0 };
		r = decode_object(buf + TABLE_HEADER + (size_t)i * ENTRY_BYTES, sb, o, why, why_size);
		if (r != STORE_OK)
			return r;
		for (uint32_t j = 0; j < i; j++) {
			const struct store_object *p = &t->object[j];
			if (!strcmp(p->name, o->name)) {
				fmt_snprintf(why, why_size, "two objects named '%s'", o->name);
				return STORE_REFUSED;
			}
			for (uint32_t a = 0; a < o->extent_count; a++)
				for (uint32_t b = 0; b < p->extent_count; b++)
					if (overlaps(&o->extent[a], &p->extent[b]))
						goto overlap;
			continue;
overlap:
			fmt_snprintf(why, why_size, "objects '%s' and '%s' share blocks", p->name,
				     o->name);
			return STORE_REFUSED;
		}
		for (uint32_t a = 0; a < o->extent_count; a++)
			for (uint32_t b = 0; b < a; b++)
				if (overlaps(&o->extent[a], &o->extent[b])) {
					fmt_snprintf(why, why_size, "object '%s': its extents %u and "
						     "%u overlap", o->name, b, a);
					return STORE_REFUSED;
				}
	}
	return STORE_OK;
}

/* Writes t as generation s->super.generation + 1 in its slot: table, flush, superblock, flush. */
static enum store_result commit(struct store *s, const struct store_table *t, char *why,
				size_t why_size)
{
	const struct store_dev *d = s->dev;
	struct store_super sb = s->super;
	size_t len = store_table_encode(t, table_buf, sizeof(table_buf));

	if (s->uncertain) {
		fmt_snprintf(why, why_size, "an earlier commit's end is unknown: open the store "
			     "again first");
		return STORE_IO_ERROR;
	}
	if (sb.generation + 1 >= STORE_GENERATION_MAX) {
		fmt_snprintf(why, why_size, "the store is at its last generation");
		return STORE_NO_SPACE;
	}
	sb.generation++;
	sb.slot = (uint32_t)(sb.generation % 2);
	sb.table_bytes = (uint32_t)len;
	sb.table_crc = crc32c(CRC32C_INIT, table_buf, len);
	memset(table_buf + len, 0, sizeof(table_buf) - len);
	store_super_encode(&sb, super_buf);
	if (!d->write(d->ctx, table_block(sb.slot), STORE_TABLE_BLOCKS, table_buf) ||
	    !d->flush(d->ctx)) {
		fmt_snprintf(why, why_size, "writing generation %llu failed (generation %llu "
			     "stays)", (unsigned long long)sb.generation,
			     (unsigned long long)s->super.generation);
		return STORE_IO_ERROR;
	}
	/* From the superblock's write on, the new generation may be on the medium. */
	if (!d->write(d->ctx, sb.slot, 1, super_buf) || !d->flush(d->ctx)) {
		s->uncertain = true;
		fmt_snprintf(why, why_size, "generation %llu may or may not be on the medium (its "
			     "superblock's write or flush failed): open the store again",
			     (unsigned long long)sb.generation);
		return STORE_IO_ERROR;
	}
	s->super = sb;
	if (t != &s->table)
		s->table = *t;
	return STORE_OK;
}

enum store_result store_format(struct store *s, const struct store_dev *dev,
			       const uint8_t uuid[16], char *why, size_t why_size)
{
	if (dev->blocks < STORE_MIN_BLOCKS) {
		fmt_snprintf(why, why_size, "%llu blocks of %u bytes is too small for a store "
			     "(%u at least)", (unsigned long long)dev->blocks, STORE_BLOCK,
			     STORE_MIN_BLOCKS);
		return STORE_INVALID;
	}
	*s = (struct store){ .dev = dev };
	s->super.total_blocks = dev->blocks;
	memcpy(s->super.uuid, uuid, 16);
	/* Generation 0 in slot A, then 1 in slot B: both slots hold a valid, empty store. */
	s->super.generation = (uint64_t)-1;
	enum store_result r = commit(s, &s->table, why, why_size);
	return r != STORE_OK ? r : commit(s, &s->table, why, why_size);
}

/* Slot's superblock and its table, into sb and t. */
static enum store_result read_slot(const struct store_dev *dev, uint32_t slot,
				   struct store_super *sb, struct store_table *t, char *why,
				   size_t why_size)
{
	enum store_result r;

	if (!dev->read(dev->ctx, slot, 1, super_buf) ||
	    !dev->read(dev->ctx, table_block(slot), STORE_TABLE_BLOCKS, table_buf)) {
		fmt_snprintf(why, why_size, "superblock %s: read error", slot ? "B" : "A");
		return STORE_IO_ERROR;
	}
	r = store_super_decode(super_buf, STORE_BLOCK, slot, dev->blocks, sb, why, why_size);
	if (r != STORE_OK)
		return r;
	return store_table_decode(table_buf, sb->table_bytes, sb, t, why, why_size);
}

enum store_result store_open(struct store *s, const struct store_dev *dev, char *note,
			     size_t note_size, char *why, size_t why_size)
{
	static struct store_table tables[2];
	struct store_super sb[2];
	enum store_result r[2];
	char reason[2][128];

	note[0] = '\0';
	if (dev->blocks < STORE_MIN_BLOCKS) {
		fmt_snprintf(why, why_size, "the device (%llu blocks) is smaller than any store",
			     (unsigned long long)dev->blocks);
		return STORE_DAMAGED;
	}
	bool unreadable[2] = { false, false };

	for (uint32_t slot = 0; slot < 2; slot++) {
		/* Read twice before a slot counts as unreadable: an error may pass. */
		for (int attempt = 0; attempt < 2; attempt++) {
			r[slot] = read_slot(dev, slot, &sb[slot], &tables[slot], reason[slot],
					    sizeof(reason[slot]));
			if (r[slot] != STORE_IO_ERROR)
				break;
		}
		/*
		 * An unreadable slot (a write cut by a power loss can leave
		 * one) may hold the newer generation: the other is used, but
		 * read-only (uncertain), so no commit overwrites it.
		 */
		if (r[slot] == STORE_IO_ERROR) {
			r[slot] = STORE_DAMAGED;
			unreadable[slot] = true;
		}
		/* Consistent but not usable: the store is refused whole. */
		if (r[slot] != STORE_OK && r[slot] != STORE_DAMAGED) {
			fmt_snprintf(why, why_size, "%s", reason[slot]);
			return r[slot];
		}
	}
	if (r[0] != STORE_OK && r[1] != STORE_OK) {
		fmt_snprintf(why, why_size, "no consistent superblock (%s; %s)", reason[0], reason[1]);
		return STORE_DAMAGED;
	}
	if (r[0] == STORE_OK && r[1] == STORE_OK &&
	    (memcmp(sb[0].uuid, sb[1].uuid, 16) || sb[0].total_blocks != sb[1].total_blocks)) {
		fmt_snprintf(why, why_size, "superblocks A and B describe two different stores");
		return STORE_REFUSED;
	}
	uint32_t use = r[1] != STORE_OK ? 0 : r[0] != STORE_OK ? 1 :
		       sb[1].generation > sb[0].generation;
	if (r[!use] != STORE_OK)
		fmt_snprintf(note, note_size, "generation %llu from superblock %s; %s passed over",
			     (unsigned long long)sb[use].generation, use ? "B" : "A",
			     reason[!use]);
	*s = (struct store){ .dev = dev, .super = sb[use], .uncertain = unreadable[!use] };
	s->table = tables[use];
	if (unreadable[!use]) {
		size_t n = strlen(note);
		fmt_snprintf(note + n, note_size - n, "; nothing is committed until it reads");
	}
	return STORE_OK;
}

const struct store_object *store_find(const struct store *s, const char *name)
{
	for (uint32_t i = 0; i < s->table.count; i++)
		if (!strcmp(s->table.object[i].name, name))
			return &s->table.object[i];
	return NULL;
}

/* Every object's extents, sorted by start, into x; their count. */
static uint32_t used_extents(const struct store_table *t,
			     struct store_extent x[STORE_OBJECTS_MAX * STORE_EXTENTS_MAX])
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < t->count; i++)
		for (uint32_t k = 0; k < t->object[i].extent_count; k++) {
			struct store_extent e = t->object[i].extent[k];
			uint32_t at = n++;
			for (; at && x[at - 1].start > e.start; at--)
				x[at] = x[at - 1];
			x[at] = e;
		}
	return n;
}

/* replacing: name is an object of kind that the new one will take the place of. */
static enum store_result allocate(const struct store *s, const char *name, enum store_kind kind,
				  uint64_t bytes, uint64_t created_s, bool replacing,
				  struct store_object *o, char *why, size_t why_size)
{
	static struct store_extent used[STORE_OBJECTS_MAX * STORE_EXTENTS_MAX];
	uint64_t need = blocks_for(bytes), at = STORE_DATA_START;
	uint32_t n;

	if (s->uncertain) {
		fmt_snprintf(why, why_size, "an earlier commit's end is unknown: open the store "
			     "again first");
		return STORE_IO_ERROR;
	}
	if (!store_name_valid(name) || !store_kind_valid(kind) || !bytes) {
		fmt_snprintf(why, why_size, "an object is a name of 1 to %u of A-Z a-z 0-9 . _ - "
			     "(not first . or -), a kind and a size above 0", STORE_NAME_MAX);
		return STORE_INVALID;
	}
	const struct store_object *old = store_find(s, name);
	if (replacing && (!old || old->kind != kind)) {
		fmt_snprintf(why, why_size, "the store holds no %s '%s' to replace",
			     kind == STORE_SAVED_STATE ? "saved state" : "disk", name);
		return STORE_NOT_FOUND;
	}
	if (!replacing && old) {
		fmt_snprintf(why, why_size, "the store already holds '%s'", name);
		return STORE_EXISTS;
	}
	if (!replacing && s->table.count >= STORE_OBJECTS_MAX) {
		fmt_snprintf(why, why_size, "the store holds %u objects, its most", STORE_OBJECTS_MAX);
		return STORE_NO_SPACE;
	}
	if (need > store_free_blocks(s)) {
		fmt_snprintf(why, why_size, "'%s' needs %llu KiB, the store has %llu KiB free", name,
			     (unsigned long long)(need * (STORE_BLOCK / 1024)),
			     (unsigned long long)(store_free_blocks(s) * (STORE_BLOCK / 1024)));
		return STORE_NO_SPACE;
	}
	*o = (struct store_object){ .kind = kind, .bytes = bytes, .created_s = created_s };
	memcpy(o->name, name, strlen(name) + 1);
	n = used_extents(&s->table, used);
	/* First fit over the gaps between used extents, then after the last one. */
	for (uint32_t i = 0; i <= n && need; i++) {
		uint64_t end = i < n ? used[i].start : s->super.total_blocks;
		if (end > at) {
			if (o->extent_count == STORE_EXTENTS_MAX) {
				fmt_snprintf(why, why_size, "'%s' does not fit in %u free runs: the "
					     "store's free space is too fragmented", name,
					     STORE_EXTENTS_MAX);
				return STORE_NO_SPACE;
			}
			uint64_t take = end - at < need ? end - at : need;
			o->extent[o->extent_count++] = (struct store_extent){ at, take };
			need -= take;
		}
		if (i < n && used[i].start + used[i].blocks > at)
			at = used[i].start + used[i].blocks;
	}
	return STORE_OK;
}

enum store_result store_allocate(const struct store *s, const char *name, enum store_kind kind,
				 uint64_t bytes, uint64_t created_s, struct store_object *o,
				 char *why, size_t why_size)
{
	return allocate(s, name, kind, bytes, created_s, false, o, why, why_size);
}

enum store_result store_allocate_replacement(const struct store *s, const char *name,
					     enum store_kind kind, uint64_t bytes,
					     uint64_t created_s, struct store_object *o, char *why,
					     size_t why_size)
{
	return allocate(s, name, kind, bytes, created_s, true, o, why, why_size);
}

enum store_result store_commit_add(struct store *s, const struct store_object *o, char *why,
				   size_t why_size)
{
	if (s->table.count >= STORE_OBJECTS_MAX || store_find(s, o->name)) {
		fmt_snprintf(why, why_size, "'%s' cannot be added: the store is full or holds it",
			     o->name);
		return STORE_EXISTS;
	}
	next_table = s->table;
	next_table.object[next_table.count++] = *o;
	return commit(s, &next_table, why, why_size);
}

enum store_result store_commit_replace(struct store *s, const struct store_object *o, char *why,
				       size_t why_size)
{
	const struct store_object *old = store_find(s, o->name);

	if (!old || old->kind != o->kind) {
		fmt_snprintf(why, why_size, "the store holds no object '%s' of that kind to replace",
			     o->name);
		return STORE_NOT_FOUND;
	}
	next_table = s->table;
	next_table.object[old - s->table.object] = *o;
	return commit(s, &next_table, why, why_size);
}

enum store_result store_commit_set_kind(struct store *s, const char *name, enum store_kind kind,
					char *why, size_t why_size)
{
	const struct store_object *o = store_find(s, name);

	if (!o || !store_kind_valid(kind)) {
		fmt_snprintf(why, why_size, "the store holds no '%s'", name);
		return STORE_NOT_FOUND;
	}
	next_table = s->table;
	next_table.object[o - s->table.object].kind = kind;
	return commit(s, &next_table, why, why_size);
}

enum store_result store_commit_delete(struct store *s, const char *name, char *why,
				      size_t why_size)
{
	const struct store_object *o = store_find(s, name);

	if (!o) {
		fmt_snprintf(why, why_size, "the store holds no '%s'", name);
		return STORE_NOT_FOUND;
	}
	uint32_t at = (uint32_t)(o - s->table.object);
	next_table = s->table;
	memmove(&next_table.object[at], &next_table.object[at + 1],
		(next_table.count - at - 1) * sizeof(next_table.object[0]));
	next_table.count--;
	return commit(s, &next_table, why, why_size);
}

bool store_map(const struct store_object *o, uint64_t offset, uint64_t *block, uint64_t *run)
{
	uint64_t want = offset / STORE_BLOCK, base = 0;

	if (offset >= o->bytes)
		return false;
	for (uint32_t k = 0; k < o->extent_count && k < STORE_EXTENTS_MAX; k++) {
		const struct store_extent *x = &o->extent[k];
		if (want < base + x->blocks) {
			*block = x->start + (want - base);
			*run = x->blocks - (want - base);
			return true;
		}
		base += x->blocks;
	}
	return false;
}

uint64_t store_free_blocks(const struct store *s)
{
	uint64_t used = 0;

	for (uint32_t i = 0; i < s->table.count; i++)
		for (uint32_t k = 0; k < s->table.object[i].extent_count; k++)
			used += s->table.object[i].extent[k].blocks;
	return s->super.total_blocks - STORE_DATA_START - used;
}
