/*
 * virtio-balloon with free page reporting (devices/virtio_balloon.c)
 * against a driver written from the specification (5.5) and Linux's
 * virtio_balloon: reported pages are zeroed, or filled with the driver's
 * poison value, and the chain comes back; a
 * report larger than a pass's zeroing spans passes; nothing else of the
 * guest's memory is touched, whatever the driver posts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "devices/virtio_balloon.h"
#include "virtq_driver.h"

#define DIRTY 0xa5
#define DIRTY_FROM 0x40000u /* past the queues */
#define REPORT_AT 0x50000u  /* free pages the tests report, below the end of the 1-MiB guest */

static struct virtio_balloon b;
static struct fake_queue q[VIRTIO_BALLOON_QUEUES];

static int setup(void **state)
{
	(void)state;
	virtio_balloon_init(&b, guest_ram());
	driver_reset_memory(&b.dev);
	driver_ok(&b.dev);
	for (unsigned i = 0; i < VIRTIO_BALLOON_QUEUES; i++)
		queue_setup(&q[i], &b.dev, i, 16);
	memset(guest + DIRTY_FROM, DIRTY, GUEST_SIZE - DIRTY_FROM);
	return 0;
}

static bool all(uint64_t gpa, uint64_t len, uint8_t value)
{
	for (uint64_t i = 0; i < len; i++)
		if (guest[gpa + i] != value)
			return false;
	return true;
}

static void report(const struct buf *bufs, unsigned n)
{
	post_chain(&q[VIRTIO_BALLOON_REPORTQ], 0, bufs, n);
	b.dev.ops->queue_notify(&b.dev, VIRTIO_BALLOON_REPORTQ);
}

static void test_offers_reporting_and_stays_empty(void **state)
{
	(void)state;
	assert_int_equal(b.dev.device_id, VIRTIO_ID_BALLOON);
	assert_true(b.dev.device_features & (1ULL << VIRTIO_BALLOON_F_REPORTING));
	assert_true(b.dev.device_features & (1ULL << VIRTIO_BALLOON_F_PAGE_POISON));
	assert_int_equal(b.dev.num_queues, 3);
	assert_int_equal(b.dev.config_size, 16);
	assert_int_equal(b.dev.ops->config_read(&b.dev, 0, 4), 0); /* num_pages */
	b.dev.ops->config_write(&b.dev, 4, 4, 77);
	assert_int_equal(b.dev.ops->config_read(&b.dev, 4, 4), 77);
	/* num_pages is the device's: a write there changes nothing. */
	b.dev.ops->config_write(&b.dev, 0, 4, 1000);
	assert_int_equal(b.dev.ops->config_read(&b.dev, 0, 4), 0);
	b.dev.ops->config_write(&b.dev, 12, 4, 0xaaaaaaaa);
	assert_int_equal(b.dev.ops->config_read(&b.dev, 12, 4), 0xaaaaaaaa);
	assert_int_equal(b.dev.ops->config_read(&b.dev, 8, 4), 0); /* no free page hinting */
	b.dev.ops->reset(&b.dev);
	assert_int_equal(b.dev.ops->config_read(&b.dev, 4, 4), 0);
	assert_int_equal(b.dev.ops->config_read(&b.dev, 12, 4), 0);
}

/*
 * A driver that gave a poison value (Linux's 0xaa bytes when its kernel has
 * page poisoning built in) finds it in its reported pages, never zeros.
 */
static void test_reported_pages_hold_the_poison_value(void **state)
{
	const struct buf pages[] = { { REPORT_AT, 0x1000, true }, { REPORT_AT + 0x2002, 6, true } };

	(void)state;
	b.dev.ops->config_write(&b.dev, 12, 4, 0xaaaaaaaa);
	report(pages, 1);
	assert_true(all(REPORT_AT, 0x1000, 0xaa));
	/* Any other word repeats from address 0, whatever the buffer's alignment. */
	b.dev.ops->config_write(&b.dev, 12, 4, 0x44332211);
	post_chain(&q[VIRTIO_BALLOON_REPORTQ], 1, &pages[1], 1);
	b.dev.ops->queue_notify(&b.dev, VIRTIO_BALLOON_REPORTQ);
	static const uint8_t want[6] = { 0x33, 0x44, 0x11, 0x22, 0x33, 0x44 };
	assert_memory_equal(guest + REPORT_AT + 0x2002, want, sizeof(want));
	assert_true(all(REPORT_AT + 0x2008, 8, DIRTY));
	assert_int_equal(used_idx(&q[VIRTIO_BALLOON_REPORTQ]), 2);
}

static void test_reported_pages_are_zeroed(void **state)
{
	const struct buf pages[] = { { REPORT_AT, 0x2000, true }, { REPORT_AT + 0x5000, 0x1000, true } };

	(void)state;
	report(pages, 2);
	assert_int_equal(used_idx(&q[VIRTIO_BALLOON_REPORTQ]), 1);
	assert_int_equal(used_id(&q[VIRTIO_BALLOON_REPORTQ], 0), 0);
	assert_int_equal(used_len(&q[VIRTIO_BALLOON_REPORTQ], 0), 0);
	assert_true(irqs[VIRTIO_BALLOON_REPORTQ] > 0);
	assert_true(all(REPORT_AT, 0x2000, 0));
	assert_true(all(REPORT_AT + 0x5000, 0x1000, 0));
	/* Only what was reported. */
	assert_true(all(REPORT_AT + 0x2000, 0x3000, DIRTY));
	assert_true(all(REPORT_AT - 0x1000, 0x1000, DIRTY));
	assert_int_equal(b.stats.reports, 1);
	assert_int_equal(b.stats.cleared_bytes, 0x3000);
}

/* Device-readable buffers are the driver's to keep: never written. */
static void test_readable_buffers_are_not_written(void **state)
{
	const struct buf pages[] = { { REPORT_AT, 0x1000, false }, { REPORT_AT + 0x1000, 0x1000, true } };

	(void)state;
	report(pages, 2);
	assert_int_equal(used_idx(&q[VIRTIO_BALLOON_REPORTQ]), 1);
	assert_true(all(REPORT_AT, 0x1000, DIRTY));
	assert_true(all(REPORT_AT + 0x1000, 0x1000, 0));
}

/*
 * A chain larger than a pass's clearing (Linux reports up to 32 runs of
 * 2 MiB) is answered over several passes, the driver waiting meanwhile.
 */
static void test_large_report_spans_passes(void **state)
{
	const struct buf pages[] = { { REPORT_AT, VIRTIO_BALLOON_CLEAR_PER_PASS, true },
				     { REPORT_AT, 0x1000, true } };

	(void)state;
	report(pages, 2);
	assert_int_equal(used_idx(&q[VIRTIO_BALLOON_REPORTQ]), 0);
	assert_int_equal(b.report_done, VIRTIO_BALLOON_CLEAR_PER_PASS);
	assert_int_equal(b.stats.reports, 0);
	assert_true(all(REPORT_AT, VIRTIO_BALLOON_CLEAR_PER_PASS, 0));
	/* Rewritten by the guest meanwhile: the next pass takes it afresh and finishes it. */
	memset(guest + REPORT_AT, DIRTY, VIRTIO_BALLOON_CLEAR_PER_PASS);
	virtio_balloon_new_pass(&b);
	assert_int_equal(used_idx(&q[VIRTIO_BALLOON_REPORTQ]), 1);
	assert_int_equal(b.report_done, 0);
	assert_int_equal(b.stats.cleared_bytes, VIRTIO_BALLOON_CLEAR_PER_PASS + 0x1000);
	/* The pass cleared only what was left: the second run. */
	assert_true(all(REPORT_AT, 0x1000, 0));
	assert_true(all(REPORT_AT + 0x1000, VIRTIO_BALLOON_CLEAR_PER_PASS - 0x1000, DIRTY));
}

/* Chains that clear nothing still count: a ring of them takes several passes. */
static void test_chains_per_pass(void **state)
{
	const struct buf nothing = { REPORT_AT, 16, false };

	(void)state;
	for (uint16_t i = 0; i < 12; i++)
		post_chain(&q[VIRTIO_BALLOON_REPORTQ], i, &nothing, 1);
	b.dev.ops->queue_notify(&b.dev, VIRTIO_BALLOON_REPORTQ);
	assert_int_equal(used_idx(&q[VIRTIO_BALLOON_REPORTQ]), VIRTIO_BALLOON_CHAINS_PER_PASS);
	virtio_balloon_new_pass(&b);
	assert_int_equal(used_idx(&q[VIRTIO_BALLOON_REPORTQ]), 12);
}

/* Page numbers to inflate or deflate come back untouched: the balloon takes none. */
static void test_inflate_and_deflate_chains_come_back(void **state)
{
	const struct buf pfns = { REPORT_AT, 16, false };

	(void)state;
	post_chain(&q[VIRTIO_BALLOON_INFLATEQ], 0, &pfns, 1);
	b.dev.ops->queue_notify(&b.dev, VIRTIO_BALLOON_INFLATEQ);
	post_chain(&q[VIRTIO_BALLOON_DEFLATEQ], 0, &pfns, 1);
	b.dev.ops->queue_notify(&b.dev, VIRTIO_BALLOON_DEFLATEQ);
	assert_int_equal(used_idx(&q[VIRTIO_BALLOON_INFLATEQ]), 1);
	assert_int_equal(used_idx(&q[VIRTIO_BALLOON_DEFLATEQ]), 1);
	assert_true(all(REPORT_AT, 16, DIRTY));
	/* A queue the device does not have is ignored. */
	b.dev.ops->queue_notify(&b.dev, VIRTIO_BALLOON_QUEUES);
}

/* A report of memory the guest does not have breaks the queue and zeroes nothing. */
static void test_report_outside_ram(void **state)
{
	const struct buf pages[] = { { REPORT_AT, 0x1000, true }, { GUEST_SIZE - 0x1000, 0x2000, true } };

	(void)state;
	report(pages, 2);
	assert_int_equal(used_idx(&q[VIRTIO_BALLOON_REPORTQ]), 0);
	assert_true(needs_reset(&b.dev));
	assert_int_equal(b.stats.resets_needed, 1);
	assert_true(all(REPORT_AT, 0x1000, DIRTY));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_offers_reporting_and_stays_empty, setup),
		cmocka_unit_test_setup(test_reported_pages_are_zeroed, setup),
		cmocka_unit_test_setup(test_reported_pages_hold_the_poison_value, setup),
		cmocka_unit_test_setup(test_readable_buffers_are_not_written, setup),
		cmocka_unit_test_setup(test_large_report_spans_passes, setup),
		cmocka_unit_test_setup(test_chains_per_pass, setup),
		cmocka_unit_test_setup(test_inflate_and_deflate_chains_come_back, setup),
		cmocka_unit_test_setup(test_report_outside_ram, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
