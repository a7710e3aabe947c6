#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "devices/virtqueue.h"
#include "tests/unit/virtq_driver.h"

#define QSIZE 8

static struct virtio_device dev;
static struct virtq vq;
static struct virtq_chain chain;
static struct fake_queue q;

static int setup(void **state)
{
	(void)state;
	memset(&dev, 0, sizeof(dev));
	driver_reset_memory(&dev);
	dev.num_queues = 1;
	dev.device_features = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_RING_F_INDIRECT_DESC;
	driver_ok(&dev);
	queue_setup(&q, &dev, 0, QSIZE);
	virtq_reset(&vq);
	return 0;
}

static enum virtq_pop_result pop(void)
{
	return virtq_pop(&dev, 0, &vq, &chain);
}

/* The driver broke the ring: NEEDS_RESET, a config interrupt, the queue stays stopped. */
static void assert_broken(enum virtq_pop_result r)
{
	assert_int_equal(r, VIRTQ_MALFORMED);
	assert_true(needs_reset(&dev));
	assert_int_equal(config_irqs, 1);
	assert_true(vq.broken);
	assert_int_equal(pop(), VIRTQ_STOPPED);
}

static void test_empty_queue(void **state)
{
	(void)state;
	assert_int_equal(pop(), VIRTQ_EMPTY);
	assert_false(needs_reset(&dev));
}

static void test_not_ready_or_disabled(void **state)
{
	(void)state;
	post_chain(&q, 0, (struct buf[]){ { DATA_BASE, 64, false } }, 1);
	dev.status &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
	assert_int_equal(pop(), VIRTQ_STOPPED);
	driver_ok(&dev);
	dev.queues[0].enabled = false;
	assert_int_equal(pop(), VIRTQ_STOPPED);
	assert_int_equal(virtq_pop(&dev, 1, &vq, &chain), VIRTQ_STOPPED);
	dev.queues[0].enabled = true;
	assert_int_equal(pop(), VIRTQ_CHAIN);
}

static void test_chain_readable_then_writable(void **state)
{
	(void)state;
	post_chain(&q, 3, (struct buf[]){ { DATA_BASE, 10, false }, { DATA_BASE + 100, 0, false },
					  { DATA_BASE + 200, 20, false },
					  { DATA_BASE + 300, 30, true } }, 4);
	assert_int_equal(pop(), VIRTQ_CHAIN);
	assert_int_equal(chain.head, 3);
	/* The zero-length descriptor carries nothing and is left out. */
	assert_int_equal(chain.n_readable, 2);
	assert_int_equal(chain.n_writable, 1);
	assert_int_equal(chain.readable_len, 30);
	assert_int_equal(chain.writable_len, 30);
	assert_int_equal(chain.seg[1].gpa, DATA_BASE + 200);
	assert_int_equal(vq.last_avail, 1);
	assert_int_equal(pop(), VIRTQ_EMPTY);
}

static void test_gather_and_scatter_across_segments(void **state)
{
	uint8_t buf[64], want[64];

	(void)state;
	for (unsigned i = 0; i < 30; i++)
		guest[DATA_BASE + (i < 10 ? i : 190 + i)] = (uint8_t)i;
	post_chain(&q, 0, (struct buf[]){ { DATA_BASE, 10, false }, { DATA_BASE + 200, 20, false },
					  { DATA_BASE + 300, 5, true },
					  { DATA_BASE + 400, 25, true } }, 4);
	assert_int_equal(pop(), VIRTQ_CHAIN);
	assert_int_equal(virtq_gather(&dev.mem, &chain, 5, buf, 10), 10);
	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(buf[i], 5 + i);
	/* Past the end of the readable bytes: short, and never the writable ones. */
	assert_int_equal(virtq_gather(&dev.mem, &chain, 25, buf, sizeof(buf)), 5);
	assert_int_equal(virtq_gather(&dev.mem, &chain, 1000, buf, sizeof(buf)), 0);

	memset(want, 0xab, sizeof(want));
	assert_int_equal(virtq_scatter(&dev.mem, &chain, 3, want, 64), 27);
	assert_int_equal(guest[DATA_BASE + 302], 0);
	assert_int_equal(guest[DATA_BASE + 303], 0xab);
	assert_int_equal(guest[DATA_BASE + 424], 0xab);
	assert_int_equal(guest[DATA_BASE + 425], 0);
	/* Readable buffers are never written. */
	assert_int_equal(guest[DATA_BASE + 9], 9);
}

static void test_readable_span_only_inside_one_descriptor(void **state)
{
	(void)state;
	post_chain(&q, 0, (struct buf[]){ { DATA_BASE, 10, false }, { DATA_BASE + 200, 20, false },
					  { DATA_BASE + 300, 5, true } }, 3);
	assert_int_equal(pop(), VIRTQ_CHAIN);
	assert_ptr_equal(virtq_readable_span(&dev.mem, &chain, 2, 8), guest + DATA_BASE + 2);
	assert_ptr_equal(virtq_readable_span(&dev.mem, &chain, 10, 20), guest + DATA_BASE + 200);
	/* Across two descriptors, past the readable bytes, or into the writable ones: no. */
	assert_null(virtq_readable_span(&dev.mem, &chain, 5, 10));
	assert_null(virtq_readable_span(&dev.mem, &chain, 25, 6));
	assert_null(virtq_readable_span(&dev.mem, &chain, 30, 1));
	/* A descriptor the guest pointed past its RAM is refused here too. */
	struct virtq_chain forged = { .n_readable = 1, .seg = { { sizeof(guest) - 4, 16 } } };
	assert_null(virtq_readable_span(&dev.mem, &forged, 0, 16));
}

static void test_copy_rechecks_guest_ram(void **state)
{
	struct virtq_chain forged = { .n_readable = 2,
				      .seg = { { DATA_BASE, 4 }, { UINT64_MAX - 1, 8 } } };
	uint8_t buf[16];

	(void)state;
	assert_int_equal(virtq_gather(&dev.mem, &forged, 0, buf, sizeof(buf)), 4);
	forged.seg[0].gpa = GUEST_SIZE - 2;
	assert_int_equal(virtq_gather(&dev.mem, &forged, 0, buf, sizeof(buf)), 0);
}

/* What guest RAM a device asked to have loaded before touching it (struct guest_memory). */
struct ram_range {
	uint64_t gpa, len;
};
static struct ram_range loads[16];
static unsigned load_count;

static void record_load(void *ctx, uint64_t gpa, uint64_t len)
{
	(void)ctx;
	if (load_count < 16)
		loads[load_count] = (struct ram_range){ gpa, len };
	load_count++;
}

/*
 * Where RAM is loaded as it is needed (a lazy restore), every byte the
 * queue touches is asked for first, and a copy asks for the bytes it
 * copies, not the whole buffer.
 */
static void test_ram_is_loaded_before_it_is_touched(void **state)
{
	uint8_t buf[16];
	(void)state;

	dev.mem.load = record_load;
	post_chain(&q, 0, (struct buf[]){ { DATA_BASE, 4096, false }, { DATA_BASE + 8192, 64, true } },
		   2);
	load_count = 0;
	assert_int_equal(pop(), VIRTQ_CHAIN);
	/* The three ring parts; the buffers wait until their bytes are copied. */
	assert_int_equal(load_count, 3);
	for (unsigned i = 0; i < 3; i++)
		assert_true(loads[i].gpa + loads[i].len <= DATA_BASE || loads[i].gpa >= DATA_BASE + 8256);
	load_count = 0;
	assert_int_equal(virtq_gather(&dev.mem, &chain, 100, buf, sizeof(buf)), sizeof(buf));
	assert_int_equal(load_count, 1);
	assert_true(loads[0].gpa == DATA_BASE + 100 && loads[0].len == sizeof(buf));
	load_count = 0;
	assert_int_equal(virtq_scatter(&dev.mem, &chain, 60, buf, sizeof(buf)), 4);
	assert_int_equal(load_count, 1);
	assert_true(loads[0].gpa == DATA_BASE + 8192 + 60 && loads[0].len == 4);
	dev.mem.load = NULL;
}

static void test_push_and_interrupt(void **state)
{
	(void)state;
	post_chain(&q, 0, (struct buf[]){ { DATA_BASE, 16, true } }, 1);
	post_chain(&q, 5, (struct buf[]){ { DATA_BASE + 16, 16, true } }, 1);
	assert_int_equal(pop(), VIRTQ_CHAIN);
	virtq_push(&dev, 0, &vq, chain.head, 7);
	assert_int_equal(pop(), VIRTQ_CHAIN);
	virtq_push(&dev, 0, &vq, chain.head, 16);
	assert_int_equal(used_idx(&q), 2);
	assert_int_equal(used_id(&q, 0), 0);
	assert_int_equal(used_len(&q, 0), 7);
	assert_int_equal(used_id(&q, 1), 5);
	assert_int_equal(used_len(&q, 1), 16);
	assert_int_equal(irqs[0], 0);
	/* One interrupt per batch, none without a push. */
	virtq_interrupt(&dev, 0, &vq);
	virtq_interrupt(&dev, 0, &vq);
	assert_int_equal(irqs[0], 1);
}

static void test_no_interrupt_flag(void **state)
{
	(void)state;
	set_avail_flags(&q, VIRTQ_AVAIL_F_NO_INTERRUPT);
	post_chain(&q, 0, (struct buf[]){ { DATA_BASE, 16, true } }, 1);
	assert_int_equal(pop(), VIRTQ_CHAIN);
	virtq_push(&dev, 0, &vq, chain.head, 0);
	virtq_interrupt(&dev, 0, &vq);
	assert_int_equal(irqs[0], 0);
	assert_int_equal(used_idx(&q), 1);
}

/*
 * EVENT_IDX (2.6.7.2): the first interrupt always; then only once used->idx
 * passes the used_event the driver wrote after its ring.
 */
static void test_event_idx_interrupts(void **state)
{
	(void)state;
	dev.driver_features |= 1ULL << VIRTIO_RING_F_EVENT_IDX;
	const uint64_t used_event = q.avail + 4 + 2 * QSIZE;
	for (unsigned i = 0; i < 4; i++)
		post_chain(&q, (uint16_t)i, (struct buf[]){ { DATA_BASE + 16 * i, 16, true } }, 1);

	assert_int_equal(pop(), VIRTQ_CHAIN);
	virtq_push(&dev, 0, &vq, chain.head, 0);
	virtq_interrupt(&dev, 0, &vq);
	assert_int_equal(irqs[0], 1);
	/* "Interrupt me once entry 2 is used": not for entry 1, then for 2. */
	wr16(used_event, 2);
	assert_int_equal(pop(), VIRTQ_CHAIN);
	virtq_push(&dev, 0, &vq, chain.head, 0);
	virtq_interrupt(&dev, 0, &vq);
	assert_int_equal(irqs[0], 1);
	assert_int_equal(pop(), VIRTQ_CHAIN);
	virtq_push(&dev, 0, &vq, chain.head, 0);
	virtq_interrupt(&dev, 0, &vq);
	assert_int_equal(irqs[0], 2);
	/* A used_event already behind: nothing until it is moved. */
	assert_int_equal(pop(), VIRTQ_CHAIN);
	virtq_push(&dev, 0, &vq, chain.head, 0);
	virtq_interrupt(&dev, 0, &vq);
	assert_int_equal(irqs[0], 2);
	/* A reset forgets what was signalled: the next interrupt goes out. */
	virtq_reset(&vq);
	vq.used_idx = 4;
	vq.last_avail = 4;
	post_chain(&q, 4, (struct buf[]){ { DATA_BASE, 16, true } }, 1);
	assert_int_equal(pop(), VIRTQ_CHAIN);
	virtq_push(&dev, 0, &vq, chain.head, 0);
	virtq_interrupt(&dev, 0, &vq);
	assert_int_equal(irqs[0], 3);
}

/*
 * EVENT_IDX: a device that finds the ring empty asks to be notified of
 * the next entry (avail_event, after the used ring), and takes an entry
 * made available meanwhile.
 */
static void test_event_idx_avail_event(void **state)
{
	(void)state;
	dev.driver_features |= 1ULL << VIRTIO_RING_F_EVENT_IDX;
	const uint64_t avail_event = q.used + 4 + 8 * QSIZE;
	wr16(avail_event, 0xbeef);
	assert_int_equal(pop(), VIRTQ_EMPTY);
	assert_int_equal(rd16(avail_event), 0);
	post_chain(&q, 0, (struct buf[]){ { DATA_BASE, 16, true } }, 1);
	post_chain(&q, 1, (struct buf[]){ { DATA_BASE, 16, true } }, 1);
	assert_int_equal(pop(), VIRTQ_CHAIN);
	assert_int_equal(pop(), VIRTQ_CHAIN);
	assert_int_equal(rd16(avail_event), 0); /* written only when found empty */
	assert_int_equal(pop(), VIRTQ_EMPTY);
	assert_int_equal(rd16(avail_event), 2);
	/* Without EVENT_IDX the field is the driver's padding: untouched. */
	dev.driver_features &= ~(1ULL << VIRTIO_RING_F_EVENT_IDX);
	wr16(avail_event, 0xbeef);
	assert_int_equal(pop(), VIRTQ_EMPTY);
	assert_int_equal(rd16(avail_event), 0xbeef);
}

static void test_indexes_wrap(void **state)
{
	(void)state;
	vq.last_avail = vq.used_idx = 0xfffe;
	q.avail_idx = 0xfffe;
	for (uint16_t i = 0; i < 4; i++) {
		post_chain(&q, i, (struct buf[]){ { DATA_BASE, 4, true } }, 1);
		assert_int_equal(pop(), VIRTQ_CHAIN);
		assert_int_equal(chain.head, i);
		virtq_push(&dev, 0, &vq, chain.head, i);
	}
	assert_int_equal(vq.last_avail, 2);
	assert_int_equal(used_idx(&q), 2);
	assert_int_equal(used_id(&q, 1), 3);
	assert_false(needs_reset(&dev));
}

static void test_full_queue_accepted(void **state)
{
	(void)state;
	for (uint16_t i = 0; i < QSIZE; i++)
		post_chain(&q, i, (struct buf[]){ { DATA_BASE, 4, false } }, 1);
	for (uint16_t i = 0; i < QSIZE; i++)
		assert_int_equal(pop(), VIRTQ_CHAIN);
	assert_int_equal(pop(), VIRTQ_EMPTY);
}

static void test_avail_idx_jump(void **state)
{
	(void)state;
	wr16(q.avail + 2, QSIZE + 1);
	assert_broken(pop());
}

static void test_avail_idx_backwards(void **state)
{
	(void)state;
	wr16(q.avail + 2, 0xffff);
	assert_broken(pop());
}

static void test_head_out_of_range(void **state)
{
	(void)state;
	post(&q, QSIZE);
	assert_broken(pop());
}

static void test_descriptor_loop(void **state)
{
	(void)state;
	put_desc(q.desc, 0, DATA_BASE, 4, VIRTQ_DESC_F_NEXT, 1);
	put_desc(q.desc, 1, DATA_BASE, 4, VIRTQ_DESC_F_NEXT, 0);
	post(&q, 0);
	assert_broken(pop());
}

static void test_descriptor_self_loop(void **state)
{
	(void)state;
	put_desc(q.desc, 2, DATA_BASE, 4, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	post(&q, 2);
	assert_broken(pop());
}

static void test_chain_of_queue_size_accepted(void **state)
{
	struct buf b[QSIZE];

	(void)state;
	for (unsigned i = 0; i < QSIZE; i++)
		b[i] = (struct buf){ DATA_BASE + 16 * i, 16, i >= 4 };
	post_chain(&q, 0, b, QSIZE);
	assert_int_equal(pop(), VIRTQ_CHAIN);
	assert_int_equal(chain.n_readable, 4);
	assert_int_equal(chain.n_writable, 4);
}

static void test_next_out_of_range(void **state)
{
	(void)state;
	put_desc(q.desc, 0, DATA_BASE, 4, VIRTQ_DESC_F_NEXT, QSIZE);
	post(&q, 0);
	assert_broken(pop());
}

static void test_buffer_outside_ram(void **state)
{
	(void)state;
	post_chain(&q, 0, (struct buf[]){ { GUEST_SIZE - 8, 9, false } }, 1);
	assert_broken(pop());
}

static void test_buffer_address_overflow(void **state)
{
	(void)state;
	post_chain(&q, 0, (struct buf[]){ { UINT64_MAX - 15, 32, true } }, 1);
	assert_broken(pop());
}

static void test_zero_length_buffer_outside_ram(void **state)
{
	(void)state;
	post_chain(&q, 0, (struct buf[]){ { GUEST_SIZE + 1, 0, false } }, 1);
	assert_broken(pop());
}

static void test_buffer_at_end_of_ram(void **state)
{
	(void)state;
	post_chain(&q, 0, (struct buf[]){ { GUEST_SIZE - 8, 8, true } }, 1);
	assert_int_equal(pop(), VIRTQ_CHAIN);
	assert_int_equal(chain.writable_len, 8);
}

static void test_readable_after_writable(void **state)
{
	(void)state;
	post_chain(&q, 0, (struct buf[]){ { DATA_BASE, 4, true }, { DATA_BASE + 4, 4, false } }, 2);
	assert_broken(pop());
}

static void test_rings_outside_ram(void **state)
{
	(void)state;
	dev.queues[0].device = GUEST_SIZE - 8;
	assert_broken(pop());
}

static void test_rings_misaligned(void **state)
{
	(void)state;
	dev.queues[0].driver += 1;
	assert_broken(pop());
}

static void test_bad_queue_size(void **state)
{
	static const uint16_t sizes[] = { 0, 3, VIRTQ_MAX_SIZE * 2 };

	(void)state;
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		setup(NULL);
		dev.queues[0].size = sizes[i];
		assert_broken(pop());
	}
}

static void test_reset_restarts_queue(void **state)
{
	(void)state;
	post(&q, QSIZE);
	assert_broken(pop());
	/* The driver resets the device and sets it up again (2.1.2, 3.1.1). */
	setup(NULL);
	post_chain(&q, 0, (struct buf[]){ { DATA_BASE, 4, false } }, 1);
	assert_int_equal(pop(), VIRTQ_CHAIN);
}

static void test_indirect_chain(void **state)
{
	uint64_t table = DATA_BASE + 0x1000;

	(void)state;
	post_indirect(&q, 4, table, (struct buf[]){ { DATA_BASE, 16, false },
						   { DATA_BASE + 16, 512, true },
						   { DATA_BASE + 600, 1, true } }, 3);
	assert_int_equal(pop(), VIRTQ_CHAIN);
	assert_int_equal(chain.head, 4);
	assert_int_equal(chain.n_readable, 1);
	assert_int_equal(chain.n_writable, 2);
	assert_int_equal(chain.writable_len, 513);
}

/* 2.6.5.3.2: direct descriptors may come before the indirect one. */
static void test_direct_then_indirect(void **state)
{
	uint64_t table = DATA_BASE + 0x1000;

	(void)state;
	put_chain(table, 0, (struct buf[]){ { DATA_BASE + 16, 8, true } }, 1);
	put_desc(q.desc, 0, DATA_BASE, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(q.desc, 1, table, 16, VIRTQ_DESC_F_INDIRECT, 0);
	post(&q, 0);
	assert_int_equal(pop(), VIRTQ_CHAIN);
	assert_int_equal(chain.readable_len, 16);
	assert_int_equal(chain.writable_len, 8);
}

static void test_indirect_not_negotiated(void **state)
{
	(void)state;
	dev.driver_features &= ~(1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	post_indirect(&q, 0, DATA_BASE + 0x1000, (struct buf[]){ { DATA_BASE, 16, false } }, 1);
	assert_broken(pop());
}

static void test_indirect_nested(void **state)
{
	uint64_t table = DATA_BASE + 0x1000;

	(void)state;
	put_desc(table, 0, DATA_BASE + 0x2000, 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(q.desc, 0, table, 16, VIRTQ_DESC_F_INDIRECT, 0);
	post(&q, 0);
	assert_broken(pop());
}

static void test_indirect_with_next(void **state)
{
	(void)state;
	put_chain(DATA_BASE + 0x1000, 0, (struct buf[]){ { DATA_BASE, 16, false } }, 1);
	put_desc(q.desc, 0, DATA_BASE + 0x1000, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	put_desc(q.desc, 1, DATA_BASE, 16, 0, 0);
	post(&q, 0);
	assert_broken(pop());
}

static void test_indirect_bad_length(void **state)
{
	static const uint32_t lens[] = { 0, 15, 24, 16 * (VIRTQ_MAX_SIZE + 1) };

	(void)state;
	for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		setup(NULL);
		put_desc(q.desc, 0, DATA_BASE + 0x1000, lens[i], VIRTQ_DESC_F_INDIRECT, 0);
		post(&q, 0);
		assert_broken(pop());
	}
}

static void test_indirect_table_outside_ram(void **state)
{
	(void)state;
	put_desc(q.desc, 0, GUEST_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	post(&q, 0);
	assert_broken(pop());
}

static void test_indirect_loop(void **state)
{
	uint64_t table = DATA_BASE + 0x1000;

	(void)state;
	put_desc(table, 0, DATA_BASE, 4, VIRTQ_DESC_F_NEXT, 1);
	put_desc(table, 1, DATA_BASE, 4, VIRTQ_DESC_F_NEXT, 0);
	put_desc(q.desc, 0, table, 32, VIRTQ_DESC_F_INDIRECT, 0);
	post(&q, 0);
	assert_broken(pop());
}

static void test_indirect_next_out_of_table(void **state)
{
	uint64_t table = DATA_BASE + 0x1000;

	(void)state;
	/* Entry 2 is inside the queue's size but not inside this 2-entry table. */
	put_desc(table, 0, DATA_BASE, 4, VIRTQ_DESC_F_NEXT, 2);
	put_desc(q.desc, 0, table, 32, VIRTQ_DESC_F_INDIRECT, 0);
	post(&q, 0);
	assert_broken(pop());
}

/* Linux fills indirect tables up to seg_max + 2 entries, more than a small queue has. */
static void test_indirect_table_larger_than_queue(void **state)
{
	uint64_t table = DATA_BASE + 0x1000;
	struct buf b[VIRTQ_MAX_SIZE];

	(void)state;
	for (unsigned i = 0; i < VIRTQ_MAX_SIZE; i++)
		b[i] = (struct buf){ DATA_BASE + i, 1, i > 0 };
	post_indirect(&q, 0, table, b, VIRTQ_MAX_SIZE);
	assert_int_equal(pop(), VIRTQ_CHAIN);
	assert_int_equal(chain.n_readable, 1);
	assert_int_equal(chain.n_writable, VIRTQ_MAX_SIZE - 1);
}

/* More descriptors than seg[] holds, counting both tables. */
static void test_chain_longer_than_max(void **state)
{
	uint64_t table = DATA_BASE + 0x1000;
	struct buf b[VIRTQ_MAX_SIZE];

	(void)state;
	for (unsigned i = 0; i < VIRTQ_MAX_SIZE; i++)
		b[i] = (struct buf){ DATA_BASE, 4, false };
	put_chain(table, 0, b, VIRTQ_MAX_SIZE);
	put_desc(q.desc, 0, DATA_BASE, 4, VIRTQ_DESC_F_NEXT, 1);
	put_desc(q.desc, 1, table, 16 * VIRTQ_MAX_SIZE, VIRTQ_DESC_F_INDIRECT, 0);
	post(&q, 0);
	assert_broken(pop());
}

static void test_push_with_rings_moved_outside_ram(void **state)
{
	(void)state;
	post_chain(&q, 0, (struct buf[]){ { DATA_BASE, 4, true } }, 1);
	assert_int_equal(pop(), VIRTQ_CHAIN);
	dev.queues[0].device = UINT64_MAX - 8;
	virtq_push(&dev, 0, &vq, chain.head, 4);
	assert_true(needs_reset(&dev));
	assert_true(vq.broken);
}

static void test_config_change(void **state)
{
	(void)state;
	virtio_config_changed(&dev);
	assert_int_equal(config_irqs, 1);
	assert_int_equal(irqs[0], 0);
	/* Before the transport set its callback: nobody to tell. */
	dev.interrupt = NULL;
	virtio_config_changed(&dev);
	assert_int_equal(config_irqs, 1);
}

/* A serve callback: returns each chain, moving its readable bytes. */
static int64_t serve_all(void *ctx, const struct virtq_chain *c)
{
	(*(unsigned *)ctx)++;
	virtq_push(&dev, 0, &vq, c->head, 0);
	return (int64_t)c->readable_len;
}

/* The budget stops a batch; the rest waits for the next pass, with its interrupt. */
static void test_process_stops_at_budget(void **state)
{
	const struct virtq_budget three = { 3, 1 << 20 };
	unsigned served = 0;
	uint64_t resets = 0;

	(void)state;
	for (uint16_t i = 0; i < QSIZE; i++)
		post_chain(&q, i, (struct buf[]){ { DATA_BASE, 64, false } }, 1);
	virtq_new_pass(&vq, &three);
	virtq_process(&dev, 0, &vq, &chain, serve_all, &served, &resets);
	assert_int_equal(served, 3);
	assert_true(vq.pending);
	assert_int_equal(irqs[0], 1);
	virtq_process(&dev, 0, &vq, &chain, serve_all, &served, &resets);
	assert_int_equal(served, 3);
	assert_true(virtq_new_pass(&vq, &three));
	virtq_process(&dev, 0, &vq, &chain, serve_all, &served, &resets);
	assert_int_equal(irqs[0], 2);
	virtq_new_pass(&vq, &three);
	virtq_process(&dev, 0, &vq, &chain, serve_all, &served, &resets);
	assert_int_equal(served, QSIZE);
	assert_false(vq.pending);
	assert_int_equal(used_idx(&q), QSIZE);
	assert_int_equal(irqs[0], 3);
	assert_int_equal(resets, 0);
}

/* Walking descriptors is charged, empty ones too: a chain of nothing is not free. */
static void test_descriptors_are_charged(void **state)
{
	const struct virtq_budget small = { 100, 3 * VIRTQ_DESC_COST };
	unsigned served = 0;
	uint64_t resets = 0;

	(void)state;
	for (uint16_t i = 0; i < 4; i++)
		post_chain(&q, (uint16_t)(2 * i), (struct buf[]){ { 0, 0, false }, { 0, 0, true } }, 2);
	virtq_new_pass(&vq, &small);
	virtq_process(&dev, 0, &vq, &chain, serve_all, &served, &resets);
	assert_int_equal(chain.n_desc, 2);
	assert_int_equal(served, 2);
	assert_true(vq.pending);
}

/* A device reset restarts the rings but not the scheduler's budget. */
static void test_reset_keeps_budget(void **state)
{
	const struct virtq_budget one = { 1, 1 };

	(void)state;
	virtq_new_pass(&vq, &one);
	vq.pending = true;
	virtq_reset(&vq);
	assert_false(vq.pending);
	assert_int_equal(vq.left.chains, 1);
	assert_true(virtq_budget_left(&vq));
}

static void test_config_image_read(void **state)
{
	static const uint8_t img[6] = { 1, 2, 3, 4, 5, 6 };

	(void)state;
	assert_int_equal(virtio_config_image_read(img, 6, 0, 4), 0x04030201);
	assert_int_equal(virtio_config_image_read(img, 6, 4, 2), 0x0605);
	assert_int_equal(virtio_config_image_read(img, 6, 5, 1), 6);
	assert_int_equal(virtio_config_image_read(img, 6, 4, 4), 0x0605);
	assert_int_equal(virtio_config_image_read(img, 6, 6, 4), 0);
	assert_int_equal(virtio_config_image_read(img, 6, UINT32_MAX, 4), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_empty_queue, setup),
		cmocka_unit_test_setup(test_process_stops_at_budget, setup),
		cmocka_unit_test_setup(test_descriptors_are_charged, setup),
		cmocka_unit_test_setup(test_reset_keeps_budget, setup),
		cmocka_unit_test_setup(test_readable_span_only_inside_one_descriptor, setup),
		cmocka_unit_test_setup(test_not_ready_or_disabled, setup),
		cmocka_unit_test_setup(test_chain_readable_then_writable, setup),
		cmocka_unit_test_setup(test_gather_and_scatter_across_segments, setup),
		cmocka_unit_test_setup(test_copy_rechecks_guest_ram, setup),
		cmocka_unit_test_setup(test_ram_is_loaded_before_it_is_touched, setup),
		cmocka_unit_test_setup(test_push_and_interrupt, setup),
		cmocka_unit_test_setup(test_no_interrupt_flag, setup),
		cmocka_unit_test_setup(test_event_idx_interrupts, setup),
		cmocka_unit_test_setup(test_event_idx_avail_event, setup),
		cmocka_unit_test_setup(test_indexes_wrap, setup),
		cmocka_unit_test_setup(test_full_queue_accepted, setup),
		cmocka_unit_test_setup(test_avail_idx_jump, setup),
		cmocka_unit_test_setup(test_avail_idx_backwards, setup),
		cmocka_unit_test_setup(test_head_out_of_range, setup),
		cmocka_unit_test_setup(test_descriptor_loop, setup),
		cmocka_unit_test_setup(test_descriptor_self_loop, setup),
		cmocka_unit_test_setup(test_chain_of_queue_size_accepted, setup),
		cmocka_unit_test_setup(test_next_out_of_range, setup),
		cmocka_unit_test_setup(test_buffer_outside_ram, setup),
		cmocka_unit_test_setup(test_buffer_address_overflow, setup),
		cmocka_unit_test_setup(test_zero_length_buffer_outside_ram, setup),
		cmocka_unit_test_setup(test_buffer_at_end_of_ram, setup),
		cmocka_unit_test_setup(test_readable_after_writable, setup),
		cmocka_unit_test_setup(test_rings_outside_ram, setup),
		cmocka_unit_test_setup(test_rings_misaligned, setup),
		cmocka_unit_test_setup(test_bad_queue_size, setup),
		cmocka_unit_test_setup(test_reset_restarts_queue, setup),
		cmocka_unit_test_setup(test_indirect_chain, setup),
		cmocka_unit_test_setup(test_direct_then_indirect, setup),
		cmocka_unit_test_setup(test_indirect_not_negotiated, setup),
		cmocka_unit_test_setup(test_indirect_nested, setup),
		cmocka_unit_test_setup(test_indirect_with_next, setup),
		cmocka_unit_test_setup(test_indirect_bad_length, setup),
		cmocka_unit_test_setup(test_indirect_table_outside_ram, setup),
		cmocka_unit_test_setup(test_indirect_loop, setup),
		cmocka_unit_test_setup(test_indirect_next_out_of_table, setup),
		cmocka_unit_test_setup(test_indirect_table_larger_than_queue, setup),
		cmocka_unit_test_setup(test_chain_longer_than_max, setup),
		cmocka_unit_test_setup(test_push_with_rings_moved_outside_ram, setup),
		cmocka_unit_test_setup(test_config_change, setup),
		cmocka_unit_test_setup(test_config_image_read, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
