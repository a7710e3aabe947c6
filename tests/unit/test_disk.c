/*
 * The copy-on-write disk (devices/disk.c): the library's bytes are never
 * written; a VM's writes go to chunks of its own, taken on first write,
 * given back when it is deleted; offsets off the disk and an allocator
 * with nothing left are refused, not crashes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "devices/disk.h"

/* Two whole chunks and 4 KiB of a third. */
#define SIZE (2 * DISK_CHUNK_SIZE + 4096)
#define CHUNKS 3

static uint8_t pristine[SIZE];
static uint8_t *table[CHUNKS];
static struct disk disk;
static unsigned chunks_out;  /* allocated and not freed */
static unsigned chunks_left; /* what the allocator still gives */

static void *chunk_alloc(void *ctx)
{
	(void)ctx;
	if (!chunks_left)
		return NULL;
	chunks_left--;
	chunks_out++;
	/* Garbage, so a chunk not filled from the pristine bytes shows. */
	uint8_t *chunk = malloc(DISK_CHUNK_SIZE);
	assert_non_null(chunk);
	memset(chunk, 0xcc, DISK_CHUNK_SIZE);
	return chunk;
}

static void chunk_free(void *ctx, void *chunk)
{
	(void)ctx;
	chunks_out--;
	free(chunk);
}

static const struct disk_chunk_alloc allocator = { chunk_alloc, chunk_free, NULL };

static int setup(void **state)
{
	(void)state;
	for (unsigned i = 0; i < SIZE; i++)
		pristine[i] = (uint8_t)(i * 7 + i / 4096);
	chunks_out = 0;
	chunks_left = 100;
	for (unsigned i = 0; i < CHUNKS; i++)
		table[i] = (uint8_t *)1; /* disk_init must clear the table */
	disk_init(&disk, pristine, SIZE, table, &allocator);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	disk_discard_writes(&disk);
	assert_int_equal(chunks_out, 0);
	assert_int_equal(disk.chunks_written, 0);
	return 0;
}

/* The VM's view through the spans, as virtio-blk moves the bytes. */
static void read_disk(uint64_t offset, uint8_t *buf, uint64_t len)
{
	for (uint64_t done = 0, n; done < len; done += n) {
		n = len - done;
		const uint8_t *p = disk_read_span(&disk, offset + done, &n);
		assert_true(n > 0);
		memcpy(buf + done, p, n);
	}
}

static int write_disk(uint64_t offset, const uint8_t *buf, uint64_t len)
{
	if (disk_prepare_write(&disk, offset, len))
		return -1;
	for (uint64_t done = 0, n; done < len; done += n) {
		n = len - done;
		uint8_t *p = disk_write_span(&disk, offset + done, &n);
		assert_true(n > 0);
		memcpy(p, buf + done, n);
	}
	return 0;
}

static void expect_pristine(uint64_t offset, uint64_t len)
{
	uint8_t *buf = malloc(len);
	assert_non_null(buf);
	read_disk(offset, buf, len);
	assert_memory_equal(buf, pristine + offset, len);
	free(buf);
}

static void test_chunk_count(void **state)
{
	(void)state;
	assert_int_equal(disk_chunk_count(0), 0);
	assert_int_equal(disk_chunk_count(1), 1);
	assert_int_equal(disk_chunk_count(DISK_CHUNK_SIZE), 1);
	assert_int_equal(disk_chunk_count(DISK_CHUNK_SIZE + 1), 2);
	assert_int_equal(disk_chunk_count(SIZE), CHUNKS);
	assert_int_equal(disk_chunk_count(64ULL << 30), (64ULL << 30) / DISK_CHUNK_SIZE);
}

static void test_reads_come_from_the_base(void **state)
{
	(void)state;
	for (unsigned i = 0; i < CHUNKS; i++)
		assert_null(table[i]);
	expect_pristine(0, SIZE);
	/* A span ends at its chunk's end. */
	uint64_t n = 1000;
	assert_ptr_equal(disk_read_span(&disk, DISK_CHUNK_SIZE - 10, &n),
			 pristine + DISK_CHUNK_SIZE - 10);
	assert_int_equal(n, 10);
	assert_int_equal(chunks_out, 0);
}

static void test_write_allocates_a_chunk_once(void **state)
{
	uint8_t data[512], back[512];

	(void)state;
	memset(data, 0x42, sizeof(data));
	assert_int_equal(write_disk(DISK_CHUNK_SIZE + 1024, data, sizeof(data)), 0);
	assert_int_equal(chunks_out, 1);
	assert_int_equal(disk.chunks_written, 1);
	assert_null(table[0]);
	assert_non_null(table[1]);
	read_disk(DISK_CHUNK_SIZE + 1024, back, sizeof(back));
	assert_memory_equal(back, data, sizeof(data));
	/* The rest of the chunk was copied from the base; the base is untouched. */
	expect_pristine(DISK_CHUNK_SIZE, 1024);
	expect_pristine(DISK_CHUNK_SIZE + 1024 + 512, DISK_CHUNK_SIZE - 1024 - 512);
	assert_int_equal(pristine[DISK_CHUNK_SIZE + 1024], (uint8_t)((DISK_CHUNK_SIZE + 1024) * 7 + 16));
	/* A second write to the chunk takes nothing more. */
	assert_int_equal(write_disk(DISK_CHUNK_SIZE, data, sizeof(data)), 0);
	assert_int_equal(chunks_out, 1);
}

static void test_write_spanning_chunks(void **state)
{
	static uint8_t data[DISK_CHUNK_SIZE + 8192], back[sizeof(data)];
	const uint64_t at = DISK_CHUNK_SIZE - 4096;

	(void)state;
	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i ^ 0x5a);
	/* From the end of chunk 0 over chunk 1 into the partial chunk 2. */
	assert_int_equal(write_disk(at, data, sizeof(data)), 0);
	assert_int_equal(chunks_out, 3);
	read_disk(at, back, sizeof(back));
	assert_memory_equal(back, data, sizeof(data));
	expect_pristine(0, at);
	expect_pristine(at + sizeof(data), SIZE - at - sizeof(data));
	/* The disk's last byte is writable; the partial chunk held the base's tail. */
	uint8_t last = 0xab;
	assert_int_equal(write_disk(SIZE - 1, &last, 1), 0);
	read_disk(SIZE - 1, back, 1);
	assert_int_equal(back[0], 0xab);
}

static void test_out_of_range(void **state)
{
	static const struct { uint64_t offset, len; } bad[] = {
		{ SIZE, 1 }, { SIZE - 1, 2 }, { SIZE + 1, 0 }, { 0, SIZE + 1 },
		{ UINT64_MAX, 1 }, { 1, UINT64_MAX }, { UINT64_MAX - 10, 20 },
	};
	uint8_t byte = 1;

	(void)state;
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(disk_range_ok(&disk, bad[i].offset, bad[i].len));
		assert_int_equal(disk_prepare_write(&disk, bad[i].offset, bad[i].len), -1);
	}
	assert_true(disk_range_ok(&disk, SIZE, 0));
	assert_true(disk_range_ok(&disk, 0, SIZE));
	assert_int_equal(disk_prepare_write(&disk, SIZE, 0), 0);
	assert_int_equal(chunks_out, 0);
	assert_int_equal(write_disk(SIZE, &byte, 1), -1);
}

/* An allocator with one chunk left: a write needing two fails and writes nothing. */
static void test_allocation_failure(void **state)
{
	static uint8_t data[DISK_CHUNK_SIZE];

	(void)state;
	memset(data, 0x11, sizeof(data));
	chunks_left = 1;
	assert_int_equal(write_disk(DISK_CHUNK_SIZE / 2, data, sizeof(data)), -1);
	expect_pristine(0, SIZE);
	/* The chunk it did get holds the base's bytes and is kept. */
	assert_int_equal(chunks_out, 1);
	assert_int_equal(disk.chunks_written, 1);
	/* Within that chunk a write still works. */
	assert_int_equal(write_disk(0, data, 512), 0);
	assert_int_equal(chunks_out, 1);
}

static void test_discard_gives_every_chunk_back(void **state)
{
	uint8_t data[16] = { 0 };

	(void)state;
	for (uint64_t at = 0; at < SIZE; at += 4096)
		assert_int_equal(write_disk(at, data, sizeof(data)), 0);
	assert_int_equal(chunks_out, CHUNKS);
	disk_discard_writes(&disk);
	assert_int_equal(chunks_out, 0);
	for (unsigned i = 0; i < CHUNKS; i++)
		assert_null(table[i]);
	expect_pristine(0, SIZE);
}

/* Two VMs over one library file: neither sees the other's writes. */
static void test_two_disks_over_one_base(void **state)
{
	static uint8_t *other_table[CHUNKS];
	struct disk other;
	uint8_t mine = 0x01, theirs = 0x02, back;

	(void)state;
	disk_init(&other, pristine, SIZE, other_table, &allocator);
	assert_int_equal(write_disk(100, &mine, 1), 0);
	assert_int_equal(disk_prepare_write(&other, 100, 1), 0);
	uint64_t n = 1;
	*disk_write_span(&other, 100, &n) = theirs;
	read_disk(100, &back, 1);
	assert_int_equal(back, mine);
	n = 1;
	assert_int_equal(*disk_read_span(&other, 100, &n), theirs);
	assert_int_equal(pristine[100], (uint8_t)(100 * 7));
	disk_discard_writes(&other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chunk_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reads_come_from_the_base, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_allocates_a_chunk_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_spanning_chunks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allocation_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discard_gives_every_chunk_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_disks_over_one_base, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
