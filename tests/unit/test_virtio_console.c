/*
 * virtio-console (devices/virtio_console.c) against a driver written
 * from the specification (5.3) and Linux's virtio_console: the port's
 * announcement on the control queues, bytes both ways straight between
 * the guest's buffers and the host's, whole writes only, and hostile
 * control messages and chains.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "devices/virtio_console.h"
#include "virtq_driver.h"

static struct virtio_console con;
static struct fake_queue q[VIRTIO_CONSOLE_QUEUES];
static unsigned host_notified;

static void count_notify(void *ctx)
{
	(void)ctx;
	host_notified++;
}

static int setup(void **state)
{
	const struct virtio_console_host host = { count_notify, NULL };

	(void)state;
	virtio_console_init(&con, guest_ram(), &host);
	driver_reset_memory(&con.dev);
	driver_ok(&con.dev);
	for (unsigned i = 0; i < VIRTIO_CONSOLE_QUEUES; i++)
		queue_setup(&q[i], &con.dev, i, 16);
	host_notified = 0;
	return 0;
}

/* The driver sends one control message (id, event, value) on the control transmit queue. */
static void control_out(uint16_t desc, uint32_t id, uint16_t event, uint16_t value)
{
	uint64_t gpa = DATA_BASE + 0x1000u * desc;
	const struct buf b = { gpa, VIRTIO_CONSOLE_CONTROL_SIZE, false };

	wr32(gpa, id);
	wr16(gpa + 4, event);
	wr16(gpa + 6, value);
	post_chain(&q[VIRTIO_CONSOLE_CTRL_TXQ], desc, &b, 1);
	con.dev.ops->queue_notify(&con.dev, VIRTIO_CONSOLE_CTRL_TXQ);
}

/* Posts n control receive buffers of 64 bytes, descriptors from 0. */
static void control_buffers(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		const struct buf b = { DATA_BASE + 0x40000u + 64u * i, 64, true };
		post_chain(&q[VIRTIO_CONSOLE_CTRL_RXQ], (uint16_t)i, &b, 1);
	}
}

static uint16_t control_event(unsigned i)
{
	return rd16(DATA_BASE + 0x40000u + 64u * i + 4);
}

/* The driver's side of Linux's probe: DEVICE_READY, then PORT_READY for port 0. */
static void bring_up(void)
{
	control_buffers(4);
	control_out(0, 0xffffffffu, VIRTIO_CONSOLE_DEVICE_READY, 1);
	control_out(1, 0, VIRTIO_CONSOLE_PORT_READY, 1);
	control_out(2, 0, VIRTIO_CONSOLE_PORT_OPEN, 1);
}

static void test_announces_the_named_port(void **state)
{
	(void)state;
	assert_int_equal(con.dev.ops->config_read(&con.dev, 4, 4), 1); /* max_nr_ports */
	assert_true(con.dev.device_features & (1ULL << VIRTIO_CONSOLE_F_MULTIPORT));
	control_buffers(4);
	control_out(0, 0xffffffffu, VIRTIO_CONSOLE_DEVICE_READY, 1);
	assert_int_equal(used_idx(&q[VIRTIO_CONSOLE_CTRL_RXQ]), 1);
	assert_int_equal(control_event(0), VIRTIO_CONSOLE_DEVICE_ADD);
	assert_int_equal(rd32(DATA_BASE + 0x40000u), 0);
	control_out(1, 0, VIRTIO_CONSOLE_PORT_READY, 1);
	assert_int_equal(used_idx(&q[VIRTIO_CONSOLE_CTRL_RXQ]), 3);
	assert_int_equal(control_event(1), VIRTIO_CONSOLE_PORT_NAME);
	assert_int_equal(used_len(&q[VIRTIO_CONSOLE_CTRL_RXQ], 1),
			 VIRTIO_CONSOLE_CONTROL_SIZE + strlen(VIRTIO_CONSOLE_AGENT_PORT_NAME));
	assert_memory_equal(guest + DATA_BASE + 0x40000u + 64 + 8, VIRTIO_CONSOLE_AGENT_PORT_NAME,
			    strlen(VIRTIO_CONSOLE_AGENT_PORT_NAME));
	/* The host side is open: PORT_OPEN 1. */
	assert_int_equal(control_event(2), VIRTIO_CONSOLE_PORT_OPEN);
	assert_int_equal(rd16(DATA_BASE + 0x40000u + 128 + 6), 1);
	assert_false(con.guest_open);
	control_out(2, 0, VIRTIO_CONSOLE_PORT_OPEN, 1);
	assert_true(con.guest_open);
	assert_true(host_notified > 0);
}

static void test_announcement_waits_for_buffers(void **state)
{
	(void)state;
	control_out(0, 0xffffffffu, VIRTIO_CONSOLE_DEVICE_READY, 1);
	control_out(1, 0, VIRTIO_CONSOLE_PORT_READY, 1);
	assert_int_equal(used_idx(&q[VIRTIO_CONSOLE_CTRL_RXQ]), 0);
	control_buffers(1);
	con.dev.ops->queue_notify(&con.dev, VIRTIO_CONSOLE_CTRL_RXQ);
	assert_int_equal(used_idx(&q[VIRTIO_CONSOLE_CTRL_RXQ]), 1);
	assert_int_equal(control_event(0), VIRTIO_CONSOLE_DEVICE_ADD);
	/* The rest goes out, in order, as buffers come. */
	for (unsigned i = 1; i < 3; i++) {
		const struct buf b = { DATA_BASE + 0x40000u + 64u * i, 64, true };
		post_chain(&q[VIRTIO_CONSOLE_CTRL_RXQ], (uint16_t)i, &b, 1);
	}
	virtio_console_new_pass(&con);
	assert_int_equal(used_idx(&q[VIRTIO_CONSOLE_CTRL_RXQ]), 3);
	assert_int_equal(control_event(1), VIRTIO_CONSOLE_PORT_NAME);
	assert_int_equal(control_event(2), VIRTIO_CONSOLE_PORT_OPEN);
	assert_int_equal(con.control_due, 0);
}

/* A control buffer too small for the port's name comes back empty; the name goes in the next. */
static void test_small_control_buffer(void **state)
{
	const struct buf tiny = { DATA_BASE + 0x40000u + 64, 8, true };
	const struct buf room = { DATA_BASE + 0x40000u + 128, 64, true };

	(void)state;
	control_buffers(1);
	control_out(0, 0xffffffffu, VIRTIO_CONSOLE_DEVICE_READY, 1);
	post_chain(&q[VIRTIO_CONSOLE_CTRL_RXQ], 1, &tiny, 1);
	control_out(1, 0, VIRTIO_CONSOLE_PORT_READY, 1);
	assert_int_equal(used_len(&q[VIRTIO_CONSOLE_CTRL_RXQ], 1), 0);
	assert_true(con.control_due & VIRTIO_CONSOLE_DUE_NAME);
	post_chain(&q[VIRTIO_CONSOLE_CTRL_RXQ], 2, &room, 1);
	virtio_console_new_pass(&con);
	assert_int_equal(control_event(2), VIRTIO_CONSOLE_PORT_NAME);
	assert_false(con.control_due & VIRTIO_CONSOLE_DUE_NAME);
}

static void test_hostile_control_messages(void **state)
{
	const struct buf short_msg = { DATA_BASE, 4, false };

	(void)state;
	control_buffers(4);
	post_chain(&q[VIRTIO_CONSOLE_CTRL_TXQ], 0, &short_msg, 1);
	con.dev.ops->queue_notify(&con.dev, VIRTIO_CONSOLE_CTRL_TXQ);
	control_out(1, 7, VIRTIO_CONSOLE_PORT_READY, 1);         /* no port 7 */
	control_out(2, 0, VIRTIO_CONSOLE_DEVICE_ADD, 1);         /* the device's event */
	assert_int_equal(con.stats.bad_control, 3);
	assert_false(con.port_ready);
	/* Every message was given back, and nothing was announced. */
	assert_int_equal(used_idx(&q[VIRTIO_CONSOLE_CTRL_TXQ]), 3);
	assert_int_equal(used_idx(&q[VIRTIO_CONSOLE_CTRL_RXQ]), 0);
	/* DEVICE_READY 0: a driver that failed gets nothing. */
	control_out(3, 0, VIRTIO_CONSOLE_DEVICE_READY, 0);
	assert_int_equal(used_idx(&q[VIRTIO_CONSOLE_CTRL_RXQ]), 0);
}

/* The guest writes len bytes of c in one buffer at descriptor desc. */
static void guest_write(uint16_t desc, char c, uint32_t len)
{
	uint64_t gpa = DATA_BASE + 0x8000u * desc;
	const struct buf b = { gpa, len, false };

	memset(guest + gpa, c, len);
	post_chain(&q[VIRTIO_CONSOLE_TXQ], desc, &b, 1);
}

static void test_take_moves_whole_writes(void **state)
{
	static uint8_t out[0x10000];

	(void)state;
	bring_up();
	guest_write(0, 'a', 100);
	guest_write(1, 'b', 200);
	guest_write(2, 'c', 300);
	/* Room for the first two: the third waits, whole, for the next read. */
	assert_int_equal(virtio_console_take(&con, out, 350), 300);
	assert_int_equal(out[0], 'a');
	assert_int_equal(out[100], 'b');
	assert_int_equal(used_idx(&q[VIRTIO_CONSOLE_TXQ]), 2);
	assert_int_equal(virtio_console_take(&con, out, 350), 300);
	assert_int_equal(out[299], 'c');
	assert_int_equal(virtio_console_take(&con, out, 350), 0);
	assert_int_equal(con.stats.to_host_bytes, 600);
	/* A write larger than this read's room waits, whole, for a read with room. */
	guest_write(3, 'd', 400);
	assert_int_equal(virtio_console_take(&con, out, 350), 0);
	assert_int_equal(virtio_console_take(&con, out, 0), 0);
	assert_int_equal(con.stats.oversize, 0);
	assert_int_equal(used_idx(&q[VIRTIO_CONSOLE_TXQ]), 3);
	assert_int_equal(virtio_console_take(&con, out, sizeof(out)), 400);
	/* One larger than any read may be could never go: dropped and counted. */
	guest_write(4, 'e', VIRTIO_CONSOLE_WRITE_MAX + 1);
	assert_int_equal(virtio_console_take(&con, out, sizeof(out)), 0);
	assert_int_equal(con.stats.oversize, 1);
	assert_int_equal(used_idx(&q[VIRTIO_CONSOLE_TXQ]), 5);
}

static void test_give_fills_posted_buffers(void **state)
{
	static const uint8_t msg[] = "{\"execute\":\"guest-ping\"}\n";
	const struct buf small = { DATA_BASE + 0x20000u, 10, true };
	const struct buf big = { DATA_BASE + 0x21000u, 4096, true };

	(void)state;
	bring_up();
	/* Nothing posted: nothing taken. */
	assert_int_equal(virtio_console_give(&con, msg, sizeof(msg) - 1), 0);
	post_chain(&q[VIRTIO_CONSOLE_RXQ], 0, &small, 1);
	post_chain(&q[VIRTIO_CONSOLE_RXQ], 1, &big, 1);
	assert_int_equal(virtio_console_give(&con, msg, sizeof(msg) - 1), sizeof(msg) - 1);
	assert_int_equal(used_len(&q[VIRTIO_CONSOLE_RXQ], 0), 10);
	assert_int_equal(used_len(&q[VIRTIO_CONSOLE_RXQ], 1), sizeof(msg) - 1 - 10);
	assert_memory_equal(guest + small.gpa, msg, 10);
	assert_memory_equal(guest + big.gpa, msg + 10, sizeof(msg) - 1 - 10);
	assert_true(irqs[VIRTIO_CONSOLE_RXQ] > 0);
}

static void test_give_needs_an_open_port(void **state)
{
	const struct buf b = { DATA_BASE + 0x20000u, 64, true };

	(void)state;
	bring_up();
	control_out(3, 0, VIRTIO_CONSOLE_PORT_OPEN, 0);
	post_chain(&q[VIRTIO_CONSOLE_RXQ], 0, &b, 1);
	/* A driver drops what comes for a port no program has open. */
	assert_int_equal(virtio_console_give(&con, (const uint8_t *)"x", 1), 0);
	assert_int_equal(used_idx(&q[VIRTIO_CONSOLE_RXQ]), 0);
}

static void test_reset_forgets_the_port(void **state)
{
	(void)state;
	bring_up();
	con.dev.ops->reset(&con.dev);
	assert_false(con.driver_ready);
	assert_false(con.port_ready);
	assert_false(con.guest_open);
	assert_int_equal(con.control_due, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_announces_the_named_port, setup),
		cmocka_unit_test_setup(test_announcement_waits_for_buffers, setup),
		cmocka_unit_test_setup(test_hostile_control_messages, setup),
		cmocka_unit_test_setup(test_small_control_buffer, setup),
		cmocka_unit_test_setup(test_take_moves_whole_writes, setup),
		cmocka_unit_test_setup(test_give_fills_posted_buffers, setup),
		cmocka_unit_test_setup(test_give_needs_an_open_port, setup),
		cmocka_unit_test_setup(test_reset_forgets_the_port, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
