/*
 * The store's format (lib/store.c): format and open, objects added and
 * deleted with first-fit extents, a saved state replaced in one commit, a power cut at every write of a commit
 * (the last committed generation always comes back, never a mix), and
 * refusals: a bad checksum in both superblocks, an unknown version,
 * overlapping extents, a name twice, extents outside the store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crc32c.h"
#include "lib/le.h"
#include "lib/store.h"

#define DEV_BLOCKS 64

/* A device in memory that can lose power: writes after the budget are dropped. */
struct mem_dev {
	uint8_t data[DEV_BLOCKS][STORE_BLOCK];
	long writes_left;               /* < 0: no limit */
	bool torn;                      /* the write that hits the limit lands half */
	unsigned writes, flushes;
	long bad_block;                 /* reads of it fail; < 0: none */
	unsigned failing_flush;         /* this flush (1: the first) fails; 0: none */
};

static struct mem_dev mem;
static char why[256], note[256];

static bool mem_read(void *ctx, uint64_t block, uint32_t count, void *buf)
{
	struct mem_dev *m = ctx;

	if (block + count > DEV_BLOCKS ||
	    (m->bad_block >= 0 && (uint64_t)m->bad_block >= block &&
	     (uint64_t)m->bad_block < block + count))
		return false;
	memcpy(buf, m->data[block], (size_t)count * STORE_BLOCK);
	return true;
}

static bool mem_write(void *ctx, uint64_t block, uint32_t count, const void *buf)
{
	struct mem_dev *m = ctx;

	if (block + count > DEV_BLOCKS)
		return false;
	m->writes++;
	if (m->writes_left == 0)
		return true;    /* the power is off: the write never lands, no one is told */
	if (m->writes_left > 0 && --m->writes_left == 0 && m->torn) {
		memcpy(m->data[block], buf, (size_t)count * STORE_BLOCK / 2);
		return true;
	}
	memcpy(m->data[block], buf, (size_t)count * STORE_BLOCK);
	return true;
}

static bool mem_flush(void *ctx)
{
	struct mem_dev *m = ctx;

	return ++m->flushes != m->failing_flush;
}

static const struct store_dev dev = { &mem, DEV_BLOCKS, mem_read, mem_write, mem_flush };
static const uint8_t uuid[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

static int setup(void **state)
{
	(void)state;
	memset(&mem, 0, sizeof(mem));
	mem.writes_left = -1;
	mem.bad_block = -1;
	return 0;
}

static void add(struct store *s, const char *name, uint64_t bytes)
{
	struct store_object o;

	assert_int_equal(store_allocate(s, name, STORE_DISK, bytes, 1700000000, &o, why,
					sizeof(why)), STORE_OK);
	assert_int_equal(store_commit_add(s, &o, why, sizeof(why)), STORE_OK);
}

static void test_format_open(void **state)
{
	struct store s, t;

	(void)state;
	assert_int_equal(store_format(&s, &dev, uuid, why, sizeof(why)), STORE_OK);
	assert_int_equal(store_open(&t, &dev, note, sizeof(note), why, sizeof(why)), STORE_OK);
	assert_string_equal(note, "");
	assert_int_equal(t.super.generation, 1);
	assert_int_equal(t.table.count, 0);
	assert_memory_equal(t.super.uuid, uuid, 16);
	assert_int_equal(store_free_blocks(&t), DEV_BLOCKS - STORE_DATA_START);
	/* Table, flush, superblock, flush: twice. */
	assert_int_equal(mem.writes, 4);
	assert_int_equal(mem.flushes, 4);
}

static void test_objects(void **state)
{
	struct store s, t;
	struct store_object o;
	uint64_t block, run;

	(void)state;
	store_format(&s, &dev, uuid, why, sizeof(why));
	add(&s, "disk1", 3 * STORE_BLOCK);
	add(&s, "disk2", 2 * STORE_BLOCK + 1);
	add(&s, "disk3", 1);
	assert_int_equal(store_open(&t, &dev, note, sizeof(note), why, sizeof(why)), STORE_OK);
	assert_int_equal(t.super.generation, 4);
	assert_int_equal(t.table.count, 3);
	const struct store_object *d2 = store_find(&t, "disk2");
	assert_non_null(d2);
	assert_int_equal(d2->extent_count, 1);
	assert_int_equal(d2->extent[0].start, STORE_DATA_START + 3);
	assert_int_equal(d2->extent[0].blocks, 3);
	assert_true(store_map(d2, 2 * STORE_BLOCK, &block, &run));
	assert_int_equal(block, STORE_DATA_START + 5);
	assert_int_equal(run, 1);
	assert_false(store_map(d2, 2 * STORE_BLOCK + 1, &block, &run));

	/* A hole where disk2 was: the next object fills it first, then goes on after disk3. */
	assert_int_equal(store_commit_delete(&t, "disk2", why, sizeof(why)), STORE_OK);
	assert_int_equal(store_allocate(&t, "big", STORE_SAVED_STATE, 5 * STORE_BLOCK, 0, &o, why,
					sizeof(why)), STORE_OK);
	assert_int_equal(o.extent_count, 2);
	assert_int_equal(o.extent[0].start, STORE_DATA_START + 3);
	assert_int_equal(o.extent[0].blocks, 3);
	assert_int_equal(o.extent[1].start, STORE_DATA_START + 7);
	assert_int_equal(o.extent[1].blocks, 2);
	assert_true(store_map(&o, 4 * STORE_BLOCK, &block, &run));
	assert_int_equal(block, STORE_DATA_START + 8);

	assert_int_equal(store_allocate(&t, "disk1", STORE_DISK, 1, 0, &o, why, sizeof(why)),
			 STORE_EXISTS);
	assert_int_equal(store_allocate(&t, ".hidden", STORE_DISK, 1, 0, &o, why, sizeof(why)),
			 STORE_INVALID);
	assert_int_equal(store_allocate(&t, "huge", STORE_DISK, (uint64_t)DEV_BLOCKS * STORE_BLOCK,
					0, &o, why, sizeof(why)), STORE_NO_SPACE);
	assert_non_null(strstr(why, "KiB free"));
	assert_int_equal(store_commit_delete(&t, "nothere", why, sizeof(why)), STORE_NOT_FOUND);

	/* A disk being made becomes a disk in one commit, its blocks where they were. */
	assert_int_equal(store_allocate(&t, "made", STORE_NEW_DISK, STORE_BLOCK, 0, &o, why,
					sizeof(why)), STORE_OK);
	assert_int_equal(store_commit_add(&t, &o, why, sizeof(why)), STORE_OK);
	assert_int_equal(store_commit_set_kind(&t, "made", STORE_DISK, why, sizeof(why)), STORE_OK);
	assert_int_equal(store_open(&s, &dev, note, sizeof(note), why, sizeof(why)), STORE_OK);
	assert_int_equal(store_find(&s, "made")->kind, STORE_DISK);
	assert_int_equal(store_find(&s, "made")->extent[0].start, o.extent[0].start);
	assert_int_equal(store_commit_set_kind(&s, "nothere", STORE_DISK, why, sizeof(why)),
			 STORE_NOT_FOUND);
	assert_int_equal(store_commit_set_kind(&s, "made", 9, why, sizeof(why)), STORE_NOT_FOUND);
}

static void test_fragmented(void **state)
{
	struct store s;
	struct store_object o;
	char name[16];

	(void)state;
	store_format(&s, &dev, uuid, why, sizeof(why));
	/* One-block objects, every other one deleted: free runs of one block each. */
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "o%d", i);
		add(&s, name, 1);
	}
	for (int i = 0; i < 20; i += 2) {
		snprintf(name, sizeof(name), "o%d", i);
		assert_int_equal(store_commit_delete(&s, name, why, sizeof(why)), STORE_OK);
	}
	assert_int_equal(store_allocate(&s, "nine", STORE_DISK, 9 * STORE_BLOCK, 0, &o, why,
					sizeof(why)), STORE_NO_SPACE);
	assert_non_null(strstr(why, "fragmented"));
	assert_int_equal(store_allocate(&s, "eight", STORE_DISK, 8 * STORE_BLOCK, 0, &o, why,
					sizeof(why)), STORE_OK);
	assert_int_equal(o.extent_count, 8);
}

/*
 * A power cut at every write of one commit, whole or torn: the store
 * opens at the generation before or the one after, with the table of that
 * generation, never anything between.
 */
static void test_power_cut(void **state)
{
	(void)state;
	for (int torn = 0; torn < 2; torn++)
		for (long cut = 0; cut <= 2; cut++) {
			struct store s, t;
			struct store_object o;
			setup(NULL);
			store_format(&s, &dev, uuid, why, sizeof(why));
			add(&s, "keep", STORE_BLOCK);
			add(&s, "gone", STORE_BLOCK);
			store_allocate(&s, "new", STORE_DISK, STORE_BLOCK, 0, &o, why, sizeof(why));
			mem.writes_left = cut;
			mem.torn = torn;
			/* A lost write is not seen by the writer: the commit "succeeds". */
			store_commit_add(&s, &o, why, sizeof(why));
			assert_int_equal(store_open(&t, &dev, note, sizeof(note), why, sizeof(why)),
					 STORE_OK);
			if (t.super.generation == 4) {
				assert_int_equal(t.table.count, 3);
				assert_non_null(store_find(&t, "new"));
			} else {
				assert_int_equal(t.super.generation, 3);
				assert_int_equal(t.table.count, 2);
				assert_null(store_find(&t, "new"));
			}
			assert_non_null(store_find(&t, "keep"));
			assert_non_null(store_find(&t, "gone"));
			/* The table reached the disk but not its superblock: the old one in that slot is passed over. */
			if (cut == 1)
				assert_non_null(strstr(note, "passed over"));
		}
}

/*
 * A saved state replaced by the next Save: the new one lies outside the old
 * one's blocks, and a power cut at any write of the commit leaves exactly
 * one of them, whole.
 */
static void test_replace(void **state)
{
	(void)state;
	for (long cut = 0; cut <= 2; cut++) {
		struct store s, t;
		struct store_object o;
		setup(NULL);
		store_format(&s, &dev, uuid, why, sizeof(why));
		assert_int_equal(store_allocate(&s, "vm.vsv", STORE_SAVED_STATE, 2 * STORE_BLOCK, 0,
						&o, why, sizeof(why)), STORE_OK);
		assert_int_equal(store_commit_add(&s, &o, why, sizeof(why)), STORE_OK);
		uint64_t old_start = store_find(&s, "vm.vsv")->extent[0].start;

		assert_int_equal(store_allocate_replacement(&s, "vm.vsv", STORE_SAVED_STATE,
							    3 * STORE_BLOCK, 0, &o, why,
							    sizeof(why)), STORE_OK);
		assert_int_equal(o.extent[0].start, old_start + 2);
		mem.writes_left = cut;
		store_commit_replace(&s, &o, why, sizeof(why));
		assert_int_equal(store_open(&t, &dev, note, sizeof(note), why, sizeof(why)),
				 STORE_OK);
		assert_int_equal(t.table.count, 1);
		const struct store_object *now = store_find(&t, "vm.vsv");
		assert_non_null(now);
		assert_int_equal(now->bytes, t.super.generation == 3 ? 3 * STORE_BLOCK
								    : 2 * STORE_BLOCK);
		assert_int_equal(now->extent[0].start, t.super.generation == 3 ? old_start + 2
										: old_start);
		if (cut == 2)
			assert_int_equal(store_free_blocks(&t), DEV_BLOCKS - STORE_DATA_START - 3);
	}
	/* Only an object of the same kind is replaced. */
	struct store s;
	struct store_object o;
	setup(NULL);
	store_format(&s, &dev, uuid, why, sizeof(why));
	add(&s, "disk", STORE_BLOCK);
	assert_int_equal(store_allocate_replacement(&s, "disk", STORE_SAVED_STATE, 1, 0, &o, why,
						    sizeof(why)), STORE_NOT_FOUND);
	assert_int_equal(store_allocate_replacement(&s, "none", STORE_DISK, 1, 0, &o, why,
						    sizeof(why)), STORE_NOT_FOUND);
	o = (struct store_object){ .name = "none", .kind = STORE_DISK, .bytes = 1 };
	assert_int_equal(store_commit_replace(&s, &o, why, sizeof(why)), STORE_NOT_FOUND);
	assert_int_equal(s.super.generation, 2);
}

/* A slot that cannot be read is a damaged one: the other slot's generation is used. */
static void test_unreadable_slot(void **state)
{
	struct store s, t;

	(void)state;
	store_format(&s, &dev, uuid, why, sizeof(why));
	add(&s, "a", STORE_BLOCK);      /* generation 2, slot A */
	mem.bad_block = 0;
	assert_int_equal(store_open(&t, &dev, note, sizeof(note), why, sizeof(why)), STORE_OK);
	assert_int_equal(t.super.generation, 1);
	assert_non_null(strstr(note, "read error"));
	/* It may hold the newer generation: nothing overwrites it until it reads again. */
	assert_true(t.uncertain);
	assert_int_equal(store_commit_delete(&t, "nothing", why, sizeof(why)), STORE_NOT_FOUND);
	struct store_object o;
	assert_int_equal(store_allocate(&t, "b", STORE_DISK, 1, 0, &o, why, sizeof(why)),
			 STORE_IO_ERROR);
	mem.bad_block = 6;              /* B's table */
	assert_int_equal(store_open(&t, &dev, note, sizeof(note), why, sizeof(why)), STORE_OK);
	assert_int_equal(t.super.generation, 2);
	mem.bad_block = 1;
	mem.data[0][40] ^= 1;           /* and A torn: nothing left */
	assert_int_equal(store_open(&t, &dev, note, sizeof(note), why, sizeof(why)), STORE_DAMAGED);
}

/*
 * The superblock written, its flush failed: the generation may or may not
 * be on the medium. Nothing more is committed or allocated until the store
 * is opened again; then it is one or the other, whole.
 */
static void test_uncertain_commit(void **state)
{
	struct store s, t;
	struct store_object o;

	(void)state;
	store_format(&s, &dev, uuid, why, sizeof(why));
	assert_int_equal(store_allocate(&s, "a", STORE_DISK, 1, 0, &o, why, sizeof(why)), STORE_OK);
	mem.failing_flush = mem.flushes + 2;    /* the one after the superblock's write */
	assert_int_equal(store_commit_add(&s, &o, why, sizeof(why)), STORE_IO_ERROR);
	assert_non_null(strstr(why, "may or may not"));
	assert_true(s.uncertain);
	assert_int_equal(store_commit_delete(&s, "a", why, sizeof(why)), STORE_NOT_FOUND);
	assert_int_equal(store_allocate(&s, "b", STORE_DISK, 1, 0, &o, why, sizeof(why)),
			 STORE_IO_ERROR);
	assert_int_equal(store_open(&t, &dev, note, sizeof(note), why, sizeof(why)), STORE_OK);
	assert_false(t.uncertain);
	assert_int_equal(t.super.generation, 2);
	assert_non_null(store_find(&t, "a"));
}

/* Re-seals slot's superblock after an edit, as a deliberate writer would. */
static void reseal_super(uint32_t slot)
{
	uint8_t *b = mem.data[slot];

	le_put(b + 68, crc32c(CRC32C_INIT, b, 68), 4);
}

/* Re-seals slot's table and its superblock's record of it. */
static void reseal_table(uint32_t slot)
{
	uint8_t *sb = mem.data[slot];
	uint32_t len = (uint32_t)le_get(sb + 28, 4);

	le_put(sb + 48, crc32c(CRC32C_INIT, mem.data[2 + slot * STORE_TABLE_BLOCKS], len), 4);
	reseal_super(slot);
}

static void expect_refused(enum store_result want, const char *words)
{
	struct store t;
	uint8_t before[DEV_BLOCKS][STORE_BLOCK];

	memcpy(before, mem.data, sizeof(before));
	assert_int_equal(store_open(&t, &dev, note, sizeof(note), why, sizeof(why)), want);
	assert_non_null(strstr(why, words));
	/* Refused, and left untouched. */
	assert_memory_equal(before, mem.data, sizeof(before));
}

/* A fresh store with objects a (generation 2, slot A) and b (3, slot B); b's table entry. */
static uint8_t *store_of_two(void)
{
	struct store s;

	setup(NULL);
	store_format(&s, &dev, uuid, why, sizeof(why));
	add(&s, "a", STORE_BLOCK);
	add(&s, "b", STORE_BLOCK);
	return mem.data[2 + STORE_TABLE_BLOCKS] + 8 + 184;
}

static void test_refusals(void **state)
{
	struct store s;
	uint8_t *entry_b;

	(void)state;
	/* b's extent onto a's: overlapping, with every checksum right. */
	entry_b = store_of_two();
	le_put(entry_b + 56, STORE_DATA_START, 8);
	reseal_table(1);
	expect_refused(STORE_REFUSED, "share blocks");

	entry_b = store_of_two();
	memcpy(entry_b, "a\0", 2);
	reseal_table(1);
	expect_refused(STORE_REFUSED, "two objects named 'a'");

	entry_b = store_of_two();
	le_put(entry_b + 56, DEV_BLOCKS, 8);
	reseal_table(1);
	expect_refused(STORE_REFUSED, "outside the data area");

	setup(NULL);
	store_format(&s, &dev, uuid, why, sizeof(why));
	le_put(mem.data[1] + 8, 2, 4);  /* a version from the future */
	reseal_super(1);
	expect_refused(STORE_REFUSED, "format version 2");

	setup(NULL);
	store_format(&s, &dev, uuid, why, sizeof(why));
	mem.data[0][40] ^= 1;
	mem.data[1][40] ^= 1;
	expect_refused(STORE_DAMAGED, "no consistent superblock");
	assert_non_null(strstr(why, "bad checksum"));

	setup(NULL);
	store_format(&s, &dev, uuid, why, sizeof(why));
	le_put(mem.data[1] + 40, DEV_BLOCKS + 1, 8);   /* larger than the device */
	reseal_super(1);
	expect_refused(STORE_REFUSED, "on a device of");

	setup(NULL);
	store_format(&s, &dev, uuid, why, sizeof(why));
	le_put(mem.data[1] + 32, STORE_GENERATION_MAX + 1, 8);   /* would outrank every commit */
	reseal_super(1);
	expect_refused(STORE_REFUSED, "do not match its place");

	setup(NULL);
	store_format(&s, &dev, uuid, why, sizeof(why));
	mem.data[1][52] ^= 0xff;        /* another store's uuid in B */
	reseal_super(1);
	expect_refused(STORE_REFUSED, "two different stores");

	setup(NULL);
	expect_refused(STORE_DAMAGED, "no store magic");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_format_open, setup),
		cmocka_unit_test_setup(test_objects, setup),
		cmocka_unit_test_setup(test_fragmented, setup),
		cmocka_unit_test_setup(test_power_cut, setup),
		cmocka_unit_test_setup(test_replace, setup),
		cmocka_unit_test_setup(test_unreadable_slot, setup),
		cmocka_unit_test_setup(test_uncertain_commit, setup),
		cmocka_unit_test_setup(test_refusals, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
