#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "devices/virtio_blk.h"
#include "tests/unit/virtq_driver.h"

#define QSIZE 16
#define SECTORS 256                    /* 128 KiB: more than the largest request */
#define HDR DATA_BASE                   /* request header */
#define DATA (DATA_BASE + 0x1000)      /* request data */
#define STATUS (DATA_BASE + 0x100)      /* status byte */
#define TABLE (DATA_BASE + 0x800)       /* an indirect table */

static struct virtio_blk blk;
static struct fake_queue q;
static uint8_t pristine[SECTORS * VIRTIO_BLK_SECTOR_SIZE];
/* The guest's writes land in copy-on-write chunks (devices/disk.h) from the heap. */
static struct disk disk;
static uint8_t *chunk_table[(SECTORS * VIRTIO_BLK_SECTOR_SIZE + DISK_CHUNK_SIZE - 1) / DISK_CHUNK_SIZE];
static bool out_of_chunks;

static void *chunk_alloc(void *ctx)
{
	(void)ctx;
	return out_of_chunks ? NULL : malloc(DISK_CHUNK_SIZE);
}

static void chunk_free(void *ctx, void *chunk)
{
	(void)ctx;
	free(chunk);
}

static const struct disk_chunk_alloc heap_chunks = { chunk_alloc, chunk_free, NULL };

static void new_disk(uint64_t size)
{
	if (disk.chunks)
		disk_discard_writes(&disk);
	disk_init(&disk, pristine, size, chunk_table, &heap_chunks);
}

static void init(bool read_only)
{
	memset(&blk, 0, sizeof(blk));
	for (unsigned i = 0; i < sizeof(pristine); i++)
		pristine[i] = (uint8_t)(i / VIRTIO_BLK_SECTOR_SIZE + i);
	out_of_chunks = false;
	new_disk(sizeof(pristine));
	assert_int_equal(virtio_blk_init(&blk, guest_ram(), &disk,
					 read_only, "vmm-disk-0"),
			 0);
	driver_reset_memory(&blk.dev);
	driver_ok(&blk.dev);
	queue_setup(&q, &blk.dev, 0, QSIZE);
	guest[STATUS] = 0xee;
}

static int setup(void **state)
{
	(void)state;
	init(false);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	disk_discard_writes(&disk);
	return 0;
}

static void header(uint64_t gpa, uint32_t type, uint64_t sector)
{
	wr32(gpa, type);
	wr32(gpa + 4, 0);
	wr64(gpa + 8, sector);
}

static void notify(void)
{
	blk.dev.ops->queue_notify(&blk.dev, 0);
}

/* Posts header, data (len bytes, device-writable for IN) and status; notifies. */
static void request(uint32_t type, uint64_t sector, uint32_t len)
{
	bool in = type != VIRTIO_BLK_T_OUT;

	header(HDR, type, sector);
	post_chain(&q, 0,
		   (struct buf[]){ { HDR, 16, false }, { DATA, len, in }, { STATUS, 1, true } }, 3);
	notify();
}

/* The sector as the guest sees it now. */
static const uint8_t *sector_ptr(uint64_t s)
{
	uint64_t len = VIRTIO_BLK_SECTOR_SIZE;
	return disk_read_span(&disk, s * VIRTIO_BLK_SECTOR_SIZE, &len);
}

static uint8_t on_disk(uint64_t offset)
{
	uint64_t len = 1;
	return *disk_read_span(&disk, offset, &len);
}

static void test_init_checks_disk_size(void **state)
{
	struct guest_memory m = guest_ram();

	(void)state;
	new_disk(1000);
	assert_int_equal(virtio_blk_init(&blk, m, &disk, false, NULL), -1);
	assert_int_equal(virtio_blk_init(&blk, m, NULL, false, NULL), -1);
}

/* A drive without a medium, then with one: InstallAdditions' additions drive. */
static void test_medium_change(void **state)
{
	static struct disk empty;
	const struct virtio_device_ops *ops = blk.dev.ops;

	(void)state;
	disk_init(&empty, NULL, 0, NULL, &heap_chunks);
	assert_int_equal(virtio_blk_change_medium(&blk, &empty), 0);
	assert_int_equal(config_irqs, 1);
	assert_int_equal(ops->config_read(&blk.dev, 0, 4), 0);
	request(VIRTIO_BLK_T_IN, 0, 512);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_IOERR);
	assert_int_equal(virtio_blk_change_medium(&blk, &disk), 0);
	assert_int_equal(config_irqs, 2);
	assert_int_equal(ops->config_read(&blk.dev, 0, 4), sizeof(pristine) / VIRTIO_BLK_SECTOR_SIZE);
	guest[STATUS] = 0xee;
	request(VIRTIO_BLK_T_IN, 1, 512);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_OK);
	assert_memory_equal(guest + DATA, sector_ptr(1), 512);
	assert_int_equal(virtio_blk_change_medium(&blk, NULL), -1);
}

static void test_config_and_features(void **state)
{
	const struct virtio_device_ops *ops = blk.dev.ops;

	(void)state;
	assert_int_equal(blk.dev.device_id, VIRTIO_ID_BLOCK);
	assert_int_equal(blk.dev.num_queues, 1);
	assert_true(blk.dev.device_features & 1ULL << VIRTIO_F_VERSION_1);
	assert_true(blk.dev.device_features & 1ULL << VIRTIO_BLK_F_FLUSH);
	assert_false(blk.dev.device_features & 1ULL << VIRTIO_BLK_F_RO);
	assert_int_equal(ops->config_read(&blk.dev, 0, 4), SECTORS);
	assert_int_equal(ops->config_read(&blk.dev, 4, 4), 0);
	assert_true(blk.dev.device_features & 1ULL << VIRTIO_BLK_F_SIZE_MAX);
	assert_int_equal(ops->config_read(&blk.dev, 8, 4), VIRTIO_BLK_SIZE_MAX);
	assert_int_equal(ops->config_read(&blk.dev, 12, 4), VIRTIO_BLK_SEG_MAX);
	assert_int_equal(ops->config_read(&blk.dev, 20, 4), 512);
	assert_int_equal(ops->config_read(&blk.dev, 24, 4), 0);
	ops->config_write(&blk.dev, 0, 4, 12345);
	assert_int_equal(ops->config_read(&blk.dev, 0, 4), SECTORS);
	init(true);
	assert_true(blk.dev.device_features & 1ULL << VIRTIO_BLK_F_RO);
}

static void test_read(void **state)
{
	(void)state;
	request(VIRTIO_BLK_T_IN, 3, 1024);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_OK);
	assert_memory_equal(guest + DATA, sector_ptr(3), 1024);
	assert_int_equal(used_idx(&q), 1);
	assert_int_equal(used_len(&q, 0), 1025);
	assert_int_equal(irqs[0], 1);
	assert_int_equal(blk.stats.reads, 1);
	assert_int_equal(blk.stats.read_bytes, 1024);
}

static void test_write(void **state)
{
	(void)state;
	memset(guest + DATA, 0x77, 512);
	request(VIRTIO_BLK_T_OUT, SECTORS - 1, 512);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_OK);
	for (unsigned i = 0; i < 512; i++)
		assert_int_equal(sector_ptr(SECTORS - 1)[i], 0x77);
	/* The library's bytes stay as they were loaded: the write went to the VM's copy. */
	assert_int_equal(pristine[(SECTORS - 1) * 512], (uint8_t)(SECTORS - 1 + (SECTORS - 1) * 512));
	assert_int_equal(disk.chunks_written, 1);
	assert_int_equal(used_len(&q, 0), 1);
	assert_int_equal(blk.stats.writes, 1);
	assert_int_equal(blk.stats.written_bytes, 512);
}

/* 2.6.4: framing is the driver's; the status is the last writable byte. */
static void test_odd_framing(void **state)
{
	(void)state;
	header(HDR, VIRTIO_BLK_T_IN, 1);
	post_chain(&q, 0, (struct buf[]){ { HDR, 5, false }, { HDR + 5, 11, false },
					  { DATA, 100, true }, { DATA + 100, 500, true },
					  { DATA + 600, 425, true } }, 5);
	notify();
	assert_int_equal(guest[DATA + 1024], VIRTIO_BLK_S_OK);
	assert_memory_equal(guest + DATA, sector_ptr(1), 1024);
	assert_int_equal(used_len(&q, 0), 1025);
}

static void test_write_header_and_data_in_one_buffer(void **state)
{
	(void)state;
	header(DATA, VIRTIO_BLK_T_OUT, 0);
	memset(guest + DATA + 16, 0x42, 512);
	post_chain(&q, 0, (struct buf[]){ { DATA, 16 + 512, false }, { STATUS, 1, true } }, 2);
	notify();
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_OK);
	assert_int_equal(on_disk(0), 0x42);
	assert_int_equal(on_disk(511), 0x42);
	assert_int_equal(on_disk(512), (uint8_t)(1 + 512));
}

static void test_indirect_request(void **state)
{
	(void)state;
	header(HDR, VIRTIO_BLK_T_IN, 2);
	post_indirect(&q, 7, TABLE, (struct buf[]){ { HDR, 16, false }, { DATA, 512, true },
						    { STATUS, 1, true } }, 3);
	notify();
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_OK);
	assert_memory_equal(guest + DATA, sector_ptr(2), 512);
	assert_int_equal(used_id(&q, 0), 7);
}

static void test_read_past_end(void **state)
{
	(void)state;
	request(VIRTIO_BLK_T_IN, SECTORS - 1, 1024);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_IOERR);
	/* Nothing was read into the buffer. */
	assert_int_equal(guest[DATA], 0);
	assert_int_equal(used_len(&q, 0), 1);
	assert_int_equal(blk.stats.errors, 1);
	assert_int_equal(blk.stats.reads, 0);
}

static void test_sector_overflow(void **state)
{
	static const uint64_t sectors[] = { SECTORS, SECTORS + 1, UINT64_MAX, UINT64_MAX / 512 };

	(void)state;
	for (unsigned i = 0; i < sizeof(sectors) / sizeof(sectors[0]); i++) {
		init(false);
		request(VIRTIO_BLK_T_OUT, sectors[i], 512);
		assert_int_equal(guest[STATUS], VIRTIO_BLK_S_IOERR);
	}
}

static void test_partial_sector(void **state)
{
	(void)state;
	request(VIRTIO_BLK_T_IN, 0, 100);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_IOERR);
	init(false);
	request(VIRTIO_BLK_T_OUT, 0, 513);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_IOERR);
	assert_int_equal(on_disk(0), 0);
}

static void test_zero_length_read(void **state)
{
	(void)state;
	header(HDR, VIRTIO_BLK_T_IN, 0);
	post_chain(&q, 0, (struct buf[]){ { HDR, 16, false }, { STATUS, 1, true } }, 2);
	notify();
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_OK);
	assert_int_equal(used_len(&q, 0), 1);
}

static void test_read_only_disk(void **state)
{
	(void)state;
	init(true);
	memset(guest + DATA, 0x99, 512);
	request(VIRTIO_BLK_T_OUT, 0, 512);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_IOERR);
	assert_int_equal(on_disk(0), 0);
	request(VIRTIO_BLK_T_IN, 0, 512);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_OK);
}

/* No host memory for the copy: the guest gets an I/O error, the disk is unchanged. */
static void test_write_without_memory(void **state)
{
	(void)state;
	out_of_chunks = true;
	memset(guest + DATA, 0x99, 512);
	request(VIRTIO_BLK_T_OUT, 2, 512);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk.stats.errors, 1);
	assert_int_equal(blk.stats.writes, 0);
	assert_int_equal(on_disk(2 * 512), (uint8_t)(2 + 2 * 512));
	/* Memory back: the same request succeeds. */
	out_of_chunks = false;
	request(VIRTIO_BLK_T_OUT, 2, 512);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_OK);
	assert_int_equal(on_disk(2 * 512), 0x99);
}

static void test_flush(void **state)
{
	(void)state;
	header(HDR, VIRTIO_BLK_T_FLUSH, 0);
	post_chain(&q, 0, (struct buf[]){ { HDR, 16, false }, { STATUS, 1, true } }, 2);
	notify();
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_OK);
	assert_int_equal(blk.stats.flushes, 1);
}

/* A disk on a medium (a store object): reads, writes and FLUSH go to it; its errors are IOERR. */
static uint8_t medium_bytes[SECTORS * VIRTIO_BLK_SECTOR_SIZE];
static unsigned medium_flushes, medium_calls;
static bool medium_broken;

static bool medium_read(void *ctx, uint64_t offset, void *buf, uint64_t len)
{
	(void)ctx;
	medium_calls++;
	assert_true(offset + len <= sizeof(medium_bytes) && len % VIRTIO_BLK_SECTOR_SIZE == 0);
	memcpy(buf, medium_bytes + offset, len);
	return !medium_broken;
}

static bool medium_write(void *ctx, uint64_t offset, const void *buf, uint64_t len)
{
	(void)ctx;
	medium_calls++;
	assert_true(offset + len <= sizeof(medium_bytes) && len % VIRTIO_BLK_SECTOR_SIZE == 0);
	if (!medium_broken)
		memcpy(medium_bytes + offset, buf, len);
	return !medium_broken;
}

static bool medium_flush(void *ctx)
{
	(void)ctx;
	medium_flushes++;
	return !medium_broken;
}

static const struct disk_medium medium = { NULL, medium_read, medium_write, medium_flush };

static void test_medium(void **state)
{
	(void)state;
	for (unsigned i = 0; i < sizeof(medium_bytes); i++)
		medium_bytes[i] = (uint8_t)(i * 3);
	medium_flushes = medium_calls = 0;
	medium_broken = false;
	disk_discard_writes(&disk);
	disk_init_medium(&disk, sizeof(medium_bytes), &medium);
	assert_int_equal(virtio_blk_change_medium(&blk, &disk), 0);

	request(VIRTIO_BLK_T_IN, 7, 2048);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_OK);
	assert_memory_equal(guest + DATA, medium_bytes + 7 * 512, 2048);
	memset(guest + DATA, 0x5e, 1024);
	request(VIRTIO_BLK_T_OUT, SECTORS - 2, 1024);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_OK);
	assert_int_equal(medium_bytes[(SECTORS - 2) * 512], 0x5e);
	assert_int_equal(medium_bytes[SECTORS * 512 - 1], 0x5e);
	header(HDR, VIRTIO_BLK_T_FLUSH, 0);
	post_chain(&q, 0, (struct buf[]){ { HDR, 16, false }, { STATUS, 1, true } }, 2);
	notify();
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_OK);
	assert_int_equal(medium_flushes, 1);
	/* A driver without VIRTIO_BLK_F_FLUSH: each write is flushed before it is done. */
	blk.dev.driver_features &= ~(1ULL << VIRTIO_BLK_F_FLUSH);
	request(VIRTIO_BLK_T_OUT, 1, 512);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_OK);
	assert_int_equal(medium_flushes, 2);
	blk.dev.driver_features |= 1ULL << VIRTIO_BLK_F_FLUSH;
	/* The largest request a driver may build, whole. */
	request(VIRTIO_BLK_T_IN, 0, VIRTIO_BLK_MAX_DATA);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_OK);
	assert_memory_equal(guest + DATA, medium_bytes, VIRTIO_BLK_MAX_DATA);
	/* That used the pass's budget: the rest waits for the next pass. */
	virtio_blk_new_pass(&blk);

	/* Beyond the disk: refused before the medium sees it. */
	unsigned calls = medium_calls;
	request(VIRTIO_BLK_T_IN, SECTORS, 512);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_IOERR);
	assert_int_equal(medium_calls, calls);

	medium_broken = true;
	request(VIRTIO_BLK_T_IN, 0, 512);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_IOERR);
	request(VIRTIO_BLK_T_OUT, 0, 512);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_IOERR);
	header(HDR, VIRTIO_BLK_T_FLUSH, 0);
	post_chain(&q, 0, (struct buf[]){ { HDR, 16, false }, { STATUS, 1, true } }, 2);
	notify();
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_IOERR);
	/* teardown's discard leaves a medium alone. */
	disk_discard_writes(&disk);
	new_disk(sizeof(pristine));
}

static void test_get_id(void **state)
{
	(void)state;
	memset(guest + DATA, 0xff, 64);
	request(VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_OK);
	assert_memory_equal(guest + DATA, "vmm-disk-0\0\0\0\0\0\0\0\0\0", VIRTIO_BLK_ID_BYTES);
	assert_int_equal(used_len(&q, 0), VIRTIO_BLK_ID_BYTES + 1);
	/* A shorter buffer gets what fits; the status stays its last byte. */
	init(false);
	memset(guest + DATA, 0xff, 64);
	request(VIRTIO_BLK_T_GET_ID, 0, 3);
	assert_memory_equal(guest + DATA, "vmm", 3);
	assert_int_equal(guest[DATA + 3], 0xff);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_OK);
	assert_int_equal(used_len(&q, 0), 4);
}

static void test_serial_truncated(void **state)
{
	(void)state;
	assert_int_equal(virtio_blk_init(&blk, guest_ram(), &disk,
					 false, "0123456789abcdefghijKLMN"),
			 0);
	assert_memory_equal(blk.serial, "0123456789abcdefghij", VIRTIO_BLK_ID_BYTES);
}

static void test_unsupported(void **state)
{
	(void)state;
	request(11 /* VIRTIO_BLK_T_DISCARD, not offered */, 0, 512);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(blk.stats.unsupported, 1);
	assert_int_equal(used_len(&q, 0), 1);
}

static void test_short_header(void **state)
{
	(void)state;
	header(HDR, VIRTIO_BLK_T_IN, 0);
	post_chain(&q, 0, (struct buf[]){ { HDR, 15, false }, { DATA, 512, true },
					  { STATUS, 1, true } }, 3);
	notify();
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_IOERR);
	assert_int_equal(guest[DATA], 0);
	assert_false(needs_reset(&blk.dev));
}

static void test_no_status_byte(void **state)
{
	(void)state;
	header(HDR, VIRTIO_BLK_T_OUT, 0);
	post_chain(&q, 0, (struct buf[]){ { HDR, 16, false }, { DATA, 512, false } }, 2);
	notify();
	assert_true(needs_reset(&blk.dev));
	assert_int_equal(config_irqs, 1);
	assert_int_equal(used_idx(&q), 0);
	assert_int_equal(blk.stats.resets_needed, 1);
	assert_int_equal(on_disk(0), 0);
}

static void test_batch_one_interrupt(void **state)
{
	(void)state;
	for (uint16_t i = 0; i < 4; i++) {
		header(HDR + 32 * i, VIRTIO_BLK_T_IN, i);
		post_chain(&q, (uint16_t)(3 * i), (struct buf[]){ { HDR + 32 * i, 16, false },
								  { DATA + 512 * i, 512, true },
								  { STATUS + i, 1, true } }, 3);
	}
	notify();
	assert_int_equal(used_idx(&q), 4);
	assert_int_equal(irqs[0], 1);
	for (uint16_t i = 0; i < 4; i++) {
		assert_int_equal(used_id(&q, i), 3 * i);
		assert_int_equal(guest[STATUS + i], VIRTIO_BLK_S_OK);
		assert_memory_equal(guest + DATA + 512 * i, sector_ptr(i), 512);
	}
}

static void test_malformed_chain_stops_queue(void **state)
{
	(void)state;
	put_desc(q.desc, 5, HDR, 16, VIRTQ_DESC_F_NEXT, 5);
	post(&q, 5);
	request(VIRTIO_BLK_T_IN, 0, 512);
	assert_true(needs_reset(&blk.dev));
	assert_int_equal(used_idx(&q), 0);
	assert_int_equal(guest[STATUS], 0xee);
	assert_int_equal(blk.stats.resets_needed, 1);
	/* Later notifications do nothing until the driver resets the device. */
	notify();
	assert_int_equal(used_idx(&q), 0);
	blk.dev.ops->reset(&blk.dev);
	driver_reset_memory(&blk.dev);
	driver_ok(&blk.dev);
	queue_setup(&q, &blk.dev, 0, QSIZE);
	request(VIRTIO_BLK_T_IN, 0, 512);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_OK);
}

static void test_not_ready_ignored(void **state)
{
	(void)state;
	blk.dev.status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
	request(VIRTIO_BLK_T_IN, 0, 512);
	assert_int_equal(used_idx(&q), 0);
	assert_int_equal(irqs[0], 0);
}

/*
 * Issue 19, finding 4: every entry of a full ring names one indirect read
 * of n_data segments of seg bytes (all over one buffer), status at STATUS.
 */
#define FLOOD_QSIZE VIRTQ_MAX_SIZE

static void post_flood(unsigned n_data, uint32_t seg)
{
	struct buf b[VIRTQ_MAX_SIZE];

	queue_setup(&q, &blk.dev, 0, FLOOD_QSIZE);
	header(HDR, VIRTIO_BLK_T_IN, 0);
	b[0] = (struct buf){ HDR, 16, false };
	for (unsigned i = 1; i <= n_data; i++)
		b[i] = (struct buf){ DATA, seg, true };
	b[n_data + 1] = (struct buf){ STATUS, 1, true };
	put_chain(TABLE, 0, b, n_data + 2);
	put_desc(q.desc, 0, TABLE, 16u * (n_data + 2), VIRTQ_DESC_F_INDIRECT, 0);
	for (unsigned i = 0; i < FLOOD_QSIZE; i++)
		post(&q, 0);
}

/* The most one pass may copy: a budget, overdrawn by one largest request. */
#define PASS_MAX_BYTES (VIRTIO_BLK_BUDGET_BYTES + VIRTIO_BLK_MAX_DATA)

/*
 * Resumes pass after pass until the ring is done: each pass copies at most
 * PASS_MAX_BYTES, serves something and interrupts the driver for it.
 * Returns the passes it took.
 */
static unsigned drain(void)
{
	unsigned passes = 0;

	while (blk.vq.pending) {
		uint64_t before = blk.stats.read_bytes;
		uint16_t used_before = used_idx(&q);
		unsigned irqs_before = irqs[0];

		assert_true(++passes <= FLOOD_QSIZE);
		virtio_blk_new_pass(&blk);
		assert_true(blk.stats.read_bytes - before <= PASS_MAX_BYTES);
		if (used_idx(&q) != used_before)
			assert_int_equal(irqs[0], irqs_before + 1);
	}
	assert_int_equal(used_idx(&q), FLOOD_QSIZE);
	return passes;
}

/* 256 largest valid reads: the notification copies at most a budget's worth. */
static void test_flood_of_largest_reads_is_bounded(void **state)
{
	(void)state;
	post_flood(VIRTIO_BLK_SEG_MAX, VIRTIO_BLK_SIZE_MAX);
	notify();
	assert_true(blk.stats.read_bytes <= PASS_MAX_BYTES);
	assert_true(used_idx(&q) < FLOOD_QSIZE);
	assert_true(blk.vq.pending);
	assert_int_equal(irqs[0], 1);
	/* Notifying again in the same pass does no more work. */
	uint16_t served = used_idx(&q);
	notify();
	assert_int_equal(used_idx(&q), served);
	assert_true(drain() > 1);
	assert_int_equal(blk.stats.reads, FLOOD_QSIZE);
	assert_int_equal(blk.stats.read_bytes, FLOOD_QSIZE * VIRTIO_BLK_MAX_DATA);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_OK);
	assert_false(blk.vq.pending);
}

/*
 * 256 reads of the whole disk: refused IOERR without a byte copied, and
 * the descriptor walks alone still bound what one notification does.
 */
static void test_flood_of_whole_disk_reads_copies_nothing(void **state)
{
	const unsigned n_data = VIRTQ_MAX_SIZE - 2;

	(void)state;
	post_flood(n_data, sizeof(pristine) / n_data / 512 * 512);
	notify();
	assert_int_equal(blk.stats.read_bytes, 0);
	assert_true(used_idx(&q) < FLOOD_QSIZE);
	drain();
	assert_int_equal(blk.stats.too_large, FLOOD_QSIZE);
	assert_int_equal(blk.stats.errors, FLOOD_QSIZE);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_IOERR);
}

/* One byte more than size_max x seg_max is refused whole, even inside the disk. */
static void test_request_larger_than_allowed(void **state)
{
	(void)state;
	request(VIRTIO_BLK_T_IN, 0, VIRTIO_BLK_MAX_DATA + 512);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk.stats.too_large, 1);
	assert_int_equal(blk.stats.read_bytes, 0);
	request(VIRTIO_BLK_T_IN, 0, VIRTIO_BLK_MAX_DATA);
	assert_int_equal(guest[STATUS], VIRTIO_BLK_S_OK);
}

/* A driver reset keeps the pass's budget: it is the scheduler's, not the driver's. */
static void test_reset_keeps_budget_spent(void **state)
{
	(void)state;
	post_flood(VIRTIO_BLK_SEG_MAX, VIRTIO_BLK_SIZE_MAX);
	notify();
	uint64_t copied = blk.stats.read_bytes;
	blk.dev.ops->reset(&blk.dev);
	driver_reset_memory(&blk.dev);
	post_flood(VIRTIO_BLK_SEG_MAX, VIRTIO_BLK_SIZE_MAX);
	notify();
	assert_int_equal(blk.stats.read_bytes, copied);
	assert_int_equal(used_idx(&q), 0);
	virtio_blk_new_pass(&blk);
	assert_true(used_idx(&q) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_init_checks_disk_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_and_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_medium_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_medium, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_odd_framing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_header_and_data_in_one_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indirect_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_past_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sector_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_sector, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_length_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_without_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_serial_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsupported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_status_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_one_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_chain_stops_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_ready_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flood_of_largest_reads_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flood_of_whole_disk_reads_copies_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_larger_than_allowed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_keeps_budget_spent, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
