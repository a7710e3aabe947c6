/*
 * libFuzzer target: the store's metadata decoder (lib/store.c). Each
 * input is a device of 16 blocks (zero-padded), opened twice: as it is
 * (checksums refuse almost every mutation), then with both superblocks'
 * table and header checksums made right, so mutations reach the rules
 * behind them. A store that opens must hold what its rules promise (every
 * extent inside the data area, none shared, sizes covered), and must
 * take one more object and open again with it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crc32c.h"
#include "lib/le.h"
#include "lib/store.h"

#define BLOCKS 16

static uint8_t disk[BLOCKS][STORE_BLOCK];

static bool mem_read(void *ctx, uint64_t block, uint32_t count, void *buf)
{
	(void)ctx;
	if (block > BLOCKS || count > BLOCKS - block)
		abort(); /* the store reads only inside what it was given */
	memcpy(buf, disk[block], (size_t)count * STORE_BLOCK);
	return true;
}

static bool mem_write(void *ctx, uint64_t block, uint32_t count, const void *buf)
{
	(void)ctx;
	if (block > BLOCKS || count > BLOCKS - block)
		abort();
	memcpy(disk[block], buf, (size_t)count * STORE_BLOCK);
	return true;
}

static bool mem_flush(void *ctx)
{
	(void)ctx;
	return true;
}

static const struct store_dev dev = { NULL, BLOCKS, mem_read, mem_write, mem_flush };

static void check_invariants(const struct store *s)
{
	for (uint32_t i = 0; i < s->table.count; i++) {
		const struct store_object *o = &s->table.object[i];
		uint64_t blocks = 0;
		for (uint32_t k = 0; k < o->extent_count; k++) {
			const struct store_extent *x = &o->extent[k];
			if (x->start < STORE_DATA_START || x->start + x->blocks > s->super.total_blocks)
				abort();
			blocks += x->blocks;
			for (uint32_t j = 0; j <= i; j++)
				for (uint32_t m = 0; m < s->table.object[j].extent_count; m++) {
					const struct store_extent *y = &s->table.object[j].extent[m];
					if ((j != i || m != k) && x->start < y->start + y->blocks &&
					    y->start < x->start + x->blocks)
						abort();
				}
		}
		if (blocks * STORE_BLOCK < o->bytes)
			abort();
	}
}

static void try_open(void)
{
	static struct store s, again;
	struct store_object o;
	char note[256], why[256];

	if (store_open(&s, &dev, note, sizeof(note), why, sizeof(why)) != STORE_OK) {
		if (!why[0])
			abort(); /* every refusal says why */
		return;
	}
	check_invariants(&s);
	if (store_allocate(&s, "fuzz-new", STORE_DISK, 1, 0, &o, why, sizeof(why)) != STORE_OK ||
	    store_commit_add(&s, &o, why, sizeof(why)) != STORE_OK)
		return;
	if (store_open(&again, &dev, note, sizeof(note), why, sizeof(why)) != STORE_OK ||
	    !store_find(&again, "fuzz-new") || again.super.generation != s.super.generation)
		abort();
	check_invariants(&again);
}

/* Both superblocks' checksums made right for whatever their fields say. */
static void reseal(void)
{
	for (uint32_t slot = 0; slot < 2; slot++) {
		uint8_t *sb = disk[slot];
		uint32_t len = (uint32_t)le_get(sb + 28, 4);
		if (len > STORE_TABLE_BLOCKS * STORE_BLOCK)
			len = STORE_TABLE_BLOCKS * STORE_BLOCK;
		le_put(sb + 48, crc32c(CRC32C_INIT, disk[2 + slot * STORE_TABLE_BLOCKS], len), 4);
		le_put(sb + 68, crc32c(CRC32C_INIT, sb, 68), 4);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t input[sizeof(disk)];

	if (size > sizeof(disk))
		return 0;
	memset(input, 0, sizeof(input));
	memcpy(input, data, size);
	memcpy(disk, input, sizeof(disk));
	try_open();
	memcpy(disk, input, sizeof(disk));
	reseal();
	try_open();
	return 0;
}
