#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "devices/virtio_net.h"
#include "tests/unit/virtq_driver.h"

#define QSIZE 8
#define MTU 1500
#define HDR_LEN 12
#define TX_BUF DATA_BASE                /* frames the guest sends */
#define RX_BUF (DATA_BASE + 0x10000)   /* receive buffers, RX_STRIDE apart */
#define RX_STRIDE 0x1000
#define TABLE (DATA_BASE + 0x20000)

static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0x01, 0x07 };

static struct virtio_net net;
static struct fake_queue rxq, txq;

/* The test back end: records frames, optionally refuses or loops them back. */
static struct {
	unsigned frames;
	size_t len;
	uint8_t frame[VIRTIO_NET_FRAME_MAX];
	int verdict;
	struct virtio_net *loop_to;
	int loop_result;
	unsigned rx_ready;
} be;

static int be_transmit(void *ctx, const void *frame, size_t len)
{
	assert_ptr_equal(ctx, &be);
	be.frames++;
	be.len = len;
	memcpy(be.frame, frame, len);
	if (be.loop_to)
		be.loop_result = virtio_net_receive(be.loop_to, be.frame, len);
	return be.verdict;
}

static void be_rx_ready(void *ctx)
{
	assert_ptr_equal(ctx, &be);
	be.rx_ready++;
}

static const struct virtio_net_backend backend = { be_transmit, be_rx_ready, &be };

static int setup(void **state)
{
	(void)state;
	memset(&be, 0, sizeof(be));
	assert_int_equal(virtio_net_init(&net, guest_ram(), mac, MTU,
					 &backend),
			 0);
	driver_reset_memory(&net.dev);
	driver_ok(&net.dev);
	queue_setup(&rxq, &net.dev, VIRTIO_NET_RXQ, QSIZE);
	queue_setup(&txq, &net.dev, VIRTIO_NET_TXQ, QSIZE);
	return 0;
}

/* A frame of len bytes: to broadcast from mac, then a counting pattern. */
static void make_frame(uint8_t *f, size_t len)
{
	for (size_t i = 0; i < len; i++)
		f[i] = (uint8_t)(i * 7);
	if (len >= 12) {
		memset(f, 0xff, 6);
		memcpy(f + 6, mac, 6);
	}
}

/* The guest sends header + frame_len bytes from TX_BUF as one buffer at descriptor d. */
static void send(uint16_t d, size_t frame_len)
{
	memset(guest + TX_BUF, 0, HDR_LEN);
	make_frame(guest + TX_BUF + HDR_LEN, frame_len);
	post_chain(&txq, d, (struct buf[]){ { TX_BUF, (uint32_t)(HDR_LEN + frame_len), false } },
		   1);
	net.dev.ops->queue_notify(&net.dev, VIRTIO_NET_TXQ);
}

/* The guest posts receive buffer n of len bytes. */
static void post_rx(uint16_t n, uint32_t len)
{
	post_chain(&rxq, n, (struct buf[]){ { RX_BUF + RX_STRIDE * n, len, true } }, 1);
}

static void assert_rx_header(uint64_t gpa)
{
	static const uint8_t want[HDR_LEN] = { [10] = 1 };   /* num_buffers = 1 */

	assert_memory_equal(guest + gpa, want, HDR_LEN);
}

static void test_init_checks(void **state)
{
	struct guest_memory m = guest_ram();
	struct virtio_net_backend none = { 0 };

	(void)state;
	assert_int_equal(virtio_net_init(&net, m, mac, VNET_MTU_MIN - 1, &backend), -1);
	assert_int_equal(virtio_net_init(&net, m, mac, VNET_MTU_MAX + 1, &backend), -1);
	assert_int_equal(virtio_net_init(&net, m, mac, MTU, &none), -1);
	assert_int_equal(virtio_net_init(&net, m, NULL, MTU, &backend), -1);
}

static void test_config_and_features(void **state)
{
	const struct virtio_device_ops *ops = net.dev.ops;

	(void)state;
	assert_int_equal(net.dev.device_id, VIRTIO_ID_NET);
	assert_int_equal(net.dev.num_queues, 2);
	assert_true(net.dev.device_features & 1ULL << VIRTIO_NET_F_MAC);
	assert_true(net.dev.device_features & 1ULL << VIRTIO_NET_F_MTU);
	assert_true(net.dev.device_features & 1ULL << VIRTIO_NET_F_STATUS);
	assert_int_equal(net.dev.device_features & 0x7, 0);     /* no CSUM, no GUEST_CSUM */
	assert_int_equal(ops->config_read(&net.dev, 0, 4), 0x00000002);
	assert_int_equal(ops->config_read(&net.dev, 4, 2), 0x0701);
	assert_int_equal(ops->config_read(&net.dev, 6, 2), VIRTIO_NET_S_LINK_UP);
	assert_int_equal(ops->config_read(&net.dev, 10, 2), MTU);
	assert_int_equal(ops->config_read(&net.dev, 12, 4), 0);
	ops->config_write(&net.dev, 0, 4, 0xdeadbeef);
	assert_int_equal(ops->config_read(&net.dev, 0, 1), 2);
}

static void test_transmit(void **state)
{
	uint8_t want[64];

	(void)state;
	send(0, 64);
	make_frame(want, 64);
	assert_int_equal(be.frames, 1);
	assert_int_equal(be.len, 64);
	assert_memory_equal(be.frame, want, 64);
	assert_int_equal(used_idx(&txq), 1);
	assert_int_equal(used_len(&txq, 0), 0);
	assert_int_equal(irqs[VIRTIO_NET_TXQ], 1);
	assert_int_equal(net.stats.tx_frames, 1);
	assert_int_equal(net.stats.tx_bytes, 64);
}

/* Header and frame split anywhere, through an indirect table. */
static void test_transmit_scattered(void **state)
{
	uint8_t want[100];

	(void)state;
	make_frame(want, sizeof(want));
	memset(guest + TX_BUF, 0, 5);
	memset(guest + TX_BUF + 0x100, 0, 7);
	memcpy(guest + TX_BUF + 0x100 + 7, want, 33);
	memcpy(guest + TX_BUF + 0x200, want + 33, 67);
	post_indirect(&txq, 3, TABLE, (struct buf[]){ { TX_BUF, 5, false },
						      { TX_BUF + 0x100, 40, false },
						      { TX_BUF + 0x200, 67, false } }, 3);
	net.dev.ops->queue_notify(&net.dev, VIRTIO_NET_TXQ);
	assert_int_equal(be.len, sizeof(want));
	assert_memory_equal(be.frame, want, sizeof(want));
	assert_int_equal(used_id(&txq, 0), 3);
}

static void test_transmit_bad_header(void **state)
{
	(void)state;
	guest[TX_BUF] = 1;                  /* NEEDS_CSUM without VIRTIO_NET_F_CSUM */
	post_chain(&txq, 0, (struct buf[]){ { TX_BUF, HDR_LEN + 60, false } }, 1);
	guest[TX_BUF + 0x1000 + 1] = 1;     /* GSO_TCPV4 without any GSO feature */
	post_chain(&txq, 1, (struct buf[]){ { TX_BUF + 0x1000, HDR_LEN + 60, false } }, 1);
	post_chain(&txq, 2, (struct buf[]){ { TX_BUF + 0x2000, HDR_LEN - 1, false } }, 1);
	net.dev.ops->queue_notify(&net.dev, VIRTIO_NET_TXQ);
	assert_int_equal(be.frames, 0);
	assert_int_equal(net.stats.tx_drops[VIRTIO_NET_DROP_BAD_HDR], 3);
	/* Dropped frames still give their buffers back. */
	assert_int_equal(used_idx(&txq), 3);
	assert_false(needs_reset(&net.dev));
}

static void test_transmit_runts(void **state)
{
	(void)state;
	send(0, 0);
	send(1, 13);
	assert_int_equal(be.frames, 0);
	assert_int_equal(net.stats.tx_drops[VIRTIO_NET_DROP_RUNT], 2);
	send(2, 14);
	assert_int_equal(be.frames, 1);
}

static void test_transmit_oversize(void **state)
{
	(void)state;
	send(0, MTU + VIRTIO_NET_FRAME_OVERHEAD);
	assert_int_equal(be.frames, 1);
	send(1, MTU + VIRTIO_NET_FRAME_OVERHEAD + 1);
	assert_int_equal(be.frames, 1);
	assert_int_equal(net.stats.tx_drops[VIRTIO_NET_DROP_OVERSIZE], 1);
	/* Far larger than any frame: overlapping buffers adding up to 8 MiB. */
	for (uint16_t i = 0; i < QSIZE; i++)
		put_desc(txq.desc, i, 0, GUEST_SIZE, i + 1 < QSIZE ? VIRTQ_DESC_F_NEXT : 0,
			 (uint16_t)(i + 1));
	memset(guest, 0, HDR_LEN);
	post(&txq, 0);
	net.dev.ops->queue_notify(&net.dev, VIRTIO_NET_TXQ);
	assert_int_equal(net.stats.tx_drops[VIRTIO_NET_DROP_OVERSIZE], 2);
}

static void test_transmit_backend_refuses(void **state)
{
	(void)state;
	be.verdict = -1;
	send(0, 60);
	assert_int_equal(be.frames, 1);
	assert_int_equal(net.stats.tx_frames, 0);
	assert_int_equal(net.stats.tx_drops[VIRTIO_NET_DROP_BACKEND], 1);
}

static void test_transmit_malformed(void **state)
{
	(void)state;
	put_desc(txq.desc, 0, TX_BUF, 100, VIRTQ_DESC_F_NEXT, 0);
	post(&txq, 0);
	net.dev.ops->queue_notify(&net.dev, VIRTIO_NET_TXQ);
	assert_true(needs_reset(&net.dev));
	assert_int_equal(net.stats.resets_needed, 1);
	assert_int_equal(config_irqs, 1);
	assert_int_equal(be.frames, 0);
}

static void test_receive(void **state)
{
	uint8_t f[60];

	(void)state;
	post_rx(0, 1526);
	make_frame(f, sizeof(f));
	assert_int_equal(virtio_net_receive(&net, f, sizeof(f)), 0);
	assert_rx_header(RX_BUF);
	assert_memory_equal(guest + RX_BUF + HDR_LEN, f, sizeof(f));
	assert_int_equal(used_idx(&rxq), 1);
	assert_int_equal(used_len(&rxq, 0), HDR_LEN + sizeof(f));
	assert_int_equal(irqs[VIRTIO_NET_RXQ], 1);
	assert_int_equal(net.stats.rx_frames, 1);
	assert_int_equal(net.stats.rx_bytes, sizeof(f));
}

static void test_receive_scattered(void **state)
{
	uint8_t f[100];

	(void)state;
	memset(guest + RX_BUF, 0xcc, 0x2000);
	post_chain(&rxq, 0, (struct buf[]){ { RX_BUF, 4, true }, { RX_BUF + 0x100, 50, true },
					    { RX_BUF + 0x200, 100, true } }, 3);
	make_frame(f, sizeof(f));
	assert_int_equal(virtio_net_receive(&net, f, sizeof(f)), 0);
	assert_int_equal(rd16(RX_BUF + 0x100 + 6), 1);  /* num_buffers */
	assert_memory_equal(guest + RX_BUF + 0x100 + 8, f, 42);
	assert_memory_equal(guest + RX_BUF + 0x200, f + 42, 58);
	assert_int_equal(guest[RX_BUF + 0x200 + 58], 0xcc);
}

static void test_receive_no_buffer(void **state)
{
	uint8_t f[60] = { 0 };

	(void)state;
	assert_int_equal(virtio_net_receive(&net, f, sizeof(f)), -1);
	assert_int_equal(net.stats.rx_drops[VIRTIO_NET_DROP_NO_BUFFER], 1);
	post_rx(0, 1526);
	assert_int_equal(virtio_net_receive(&net, f, sizeof(f)), 0);
	assert_int_equal(virtio_net_receive(&net, f, sizeof(f)), -1);
	assert_int_equal(net.stats.rx_drops[VIRTIO_NET_DROP_NO_BUFFER], 2);
}

static void test_receive_small_buffer(void **state)
{
	uint8_t f[200] = { 0 };

	(void)state;
	memset(guest + RX_BUF, 0xcc, 0x100);
	post_rx(0, 100);
	assert_int_equal(virtio_net_receive(&net, f, sizeof(f)), -1);
	assert_int_equal(net.stats.rx_drops[VIRTIO_NET_DROP_SMALL_BUFFER], 1);
	/* Given back empty and untouched. */
	assert_int_equal(used_idx(&rxq), 1);
	assert_int_equal(used_len(&rxq, 0), 0);
	assert_int_equal(guest[RX_BUF], 0xcc);
	assert_int_equal(irqs[VIRTIO_NET_RXQ], 1);
}

static void test_receive_bad_lengths(void **state)
{
	static uint8_t f[VIRTIO_NET_FRAME_MAX + 1];

	(void)state;
	post_rx(0, 0x1000);
	assert_int_equal(virtio_net_receive(&net, f, 0), -1);
	assert_int_equal(virtio_net_receive(&net, f, ETH_HLEN - 1), -1);
	assert_int_equal(net.stats.rx_drops[VIRTIO_NET_DROP_RUNT], 2);
	assert_int_equal(virtio_net_receive(&net, f, MTU + VIRTIO_NET_FRAME_OVERHEAD + 1), -1);
	assert_int_equal(virtio_net_receive(&net, f, sizeof(f)), -1);
	assert_int_equal(net.stats.rx_drops[VIRTIO_NET_DROP_OVERSIZE], 2);
	/* None of them took the buffer. */
	assert_int_equal(used_idx(&rxq), 0);
	assert_int_equal(virtio_net_receive(&net, f, MTU + VIRTIO_NET_FRAME_OVERHEAD), 0);
}

static void test_receive_not_ready(void **state)
{
	uint8_t f[60] = { 0 };

	(void)state;
	post_rx(0, 1526);
	net.dev.status = VIRTIO_STATUS_ACKNOWLEDGE;
	assert_int_equal(virtio_net_receive(&net, f, sizeof(f)), -1);
	net.dev.status = 0;
	assert_int_equal(virtio_net_receive(&net, f, sizeof(f)), -1);
	driver_ok(&net.dev);
	net.dev.queues[VIRTIO_NET_RXQ].enabled = false;
	assert_int_equal(virtio_net_receive(&net, f, sizeof(f)), -1);
	assert_int_equal(net.stats.rx_drops[VIRTIO_NET_DROP_NOT_READY], 3);
	assert_int_equal(used_idx(&rxq), 0);
}

static void test_receive_malformed(void **state)
{
	uint8_t f[60] = { 0 };

	(void)state;
	post_chain(&rxq, 0, (struct buf[]){ { GUEST_SIZE - 10, 1526, true } }, 1);
	assert_int_equal(virtio_net_receive(&net, f, sizeof(f)), -1);
	assert_true(needs_reset(&net.dev));
	assert_int_equal(net.stats.resets_needed, 1);
	assert_int_equal(net.stats.rx_drops[VIRTIO_NET_DROP_NOT_READY], 1);
	/* And the transmit queue is left alone too. */
	send(0, 60);
	assert_int_equal(be.frames, 0);
}

static void test_rx_ready_on_notify(void **state)
{
	(void)state;
	post_rx(0, 1526);
	net.dev.ops->queue_notify(&net.dev, VIRTIO_NET_RXQ);
	assert_int_equal(be.rx_ready, 1);
	assert_int_equal(used_idx(&rxq), 0);
}

static void test_link_change(void **state)
{
	uint8_t f[60] = { 0 };

	(void)state;
	virtio_net_set_link(&net, false);
	assert_int_equal(config_irqs, 1);
	assert_int_equal(net.dev.ops->config_read(&net.dev, 6, 2), 0);
	virtio_net_set_link(&net, false);
	assert_int_equal(config_irqs, 1);

	post_rx(0, 1526);
	assert_int_equal(virtio_net_receive(&net, f, sizeof(f)), -1);
	send(0, 60);
	assert_int_equal(be.frames, 0);
	assert_int_equal(net.stats.rx_drops[VIRTIO_NET_DROP_LINK_DOWN], 1);
	assert_int_equal(net.stats.tx_drops[VIRTIO_NET_DROP_LINK_DOWN], 1);
	assert_int_equal(used_idx(&txq), 1);

	virtio_net_set_link(&net, true);
	assert_int_equal(config_irqs, 2);
	assert_int_equal(net.dev.ops->config_read(&net.dev, 6, 2), VIRTIO_NET_S_LINK_UP);
	assert_int_equal(virtio_net_receive(&net, f, sizeof(f)), 0);
}

/* The back end hands each frame straight back to the same device. */
static void test_loopback(void **state)
{
	uint8_t want[80];

	(void)state;
	be.loop_to = &net;
	post_rx(0, 1526);
	post_rx(1, 1526);
	send(0, 80);
	make_frame(want, sizeof(want));
	assert_int_equal(be.loop_result, 0);
	assert_rx_header(RX_BUF);
	assert_memory_equal(guest + RX_BUF + HDR_LEN, want, sizeof(want));
	send(1, 70);
	assert_int_equal(used_idx(&rxq), 2);
	assert_int_equal(used_len(&rxq, 1), HDR_LEN + 70);
	assert_int_equal(net.stats.tx_frames, 2);
	assert_int_equal(net.stats.rx_frames, 2);
	/* The third finds no buffer: dropped, the sender not held up. */
	send(2, 60);
	assert_int_equal(be.loop_result, -1);
	assert_int_equal(net.stats.rx_drops[VIRTIO_NET_DROP_NO_BUFFER], 1);
	assert_int_equal(used_idx(&txq), 3);
}

/* Two devices on one guest memory, a cable between them. */
static void test_two_devices(void **state)
{
	static struct virtio_net peer;
	struct fake_queue peer_rxq;
	uint8_t want[64];

	(void)state;
	assert_int_equal(virtio_net_init(&peer, net.dev.mem, mac, MTU, &backend), 0);
	peer.dev.interrupt = record_irq;
	driver_ok(&peer.dev);
	/* The peer's receive queue sits where this test puts queue 2. */
	queue_setup(&peer_rxq, &peer.dev, 2, QSIZE);
	peer.dev.queues[VIRTIO_NET_RXQ] = peer.dev.queues[2];
	peer.dev.queues[2].enabled = false;
	post_chain(&peer_rxq, 0, (struct buf[]){ { RX_BUF, 1526, true } }, 1);
	be.loop_to = &peer;
	send(0, 64);
	make_frame(want, sizeof(want));
	assert_int_equal(be.loop_result, 0);
	assert_memory_equal(guest + RX_BUF + HDR_LEN, want, sizeof(want));
	assert_int_equal(used_idx(&peer_rxq), 1);
	assert_int_equal(peer.stats.rx_frames, 1);
	assert_int_equal(net.stats.rx_frames, 0);
}

static void test_reset_keeps_link_and_stats(void **state)
{
	(void)state;
	send(0, 60);
	virtio_net_set_link(&net, false);
	net.dev.ops->reset(&net.dev);
	assert_int_equal(net.vq[VIRTIO_NET_TXQ].last_avail, 0);
	assert_int_equal(net.stats.tx_frames, 1);
	assert_false(net.link_up);
}

/*
 * Issue 19, finding 4, for the network: a full transmit ring (every entry
 * naming one frame) sends at most a budget per notification; the rest
 * goes in later passes, each with its interrupt.
 */
static void test_transmit_flood_is_bounded(void **state)
{
	unsigned passes = 0;

	(void)state;
	queue_setup(&txq, &net.dev, VIRTIO_NET_TXQ, VIRTQ_MAX_SIZE);
	memset(guest + TX_BUF, 0, HDR_LEN);
	make_frame(guest + TX_BUF + HDR_LEN, MTU + 14);
	put_chain(txq.desc, 0, (struct buf[]){ { TX_BUF, HDR_LEN + MTU + 14, false } }, 1);
	for (unsigned i = 0; i < VIRTQ_MAX_SIZE; i++)
		post(&txq, 0);
	net.dev.ops->queue_notify(&net.dev, VIRTIO_NET_TXQ);
	assert_true(be.frames <= VIRTIO_NET_BUDGET_FRAMES);
	assert_true(be.frames * (MTU + 14) <= VIRTIO_NET_BUDGET_BYTES + VIRTIO_NET_FRAME_MAX);
	assert_int_equal(used_idx(&txq), be.frames);
	assert_int_equal(irqs[VIRTIO_NET_TXQ], 1);
	/* More notifications in the same pass send nothing more. */
	unsigned sent = be.frames;
	net.dev.ops->queue_notify(&net.dev, VIRTIO_NET_TXQ);
	assert_int_equal(be.frames, sent);
	while (virtio_net_new_pass(&net) || used_idx(&txq) != VIRTQ_MAX_SIZE) {
		assert_true(++passes < VIRTQ_MAX_SIZE);
		assert_true(be.frames - sent <= VIRTIO_NET_BUDGET_FRAMES);
		assert_int_equal(irqs[VIRTIO_NET_TXQ], passes + 1);
		sent = be.frames;
	}
	assert_int_equal(be.frames, VIRTQ_MAX_SIZE);
	assert_int_equal(net.stats.tx_frames, VIRTQ_MAX_SIZE);
}

/* Receiving: a pass delivers at most a budget, then the back end must hold its frames. */
static void test_receive_budget_per_pass(void **state)
{
	uint8_t frame[64];
	unsigned delivered = 0;

	(void)state;
	queue_setup(&rxq, &net.dev, VIRTIO_NET_RXQ, VIRTQ_MAX_SIZE);
	for (uint16_t n = 0; n < VIRTQ_MAX_SIZE; n++)
		post_chain(&rxq, n, (struct buf[]){ { RX_BUF, HDR_LEN + sizeof(frame), true } }, 1);
	make_frame(frame, sizeof(frame));
	while (virtio_net_can_receive(&net)) {
		assert_true(delivered < VIRTQ_MAX_SIZE);
		assert_int_equal(virtio_net_receive(&net, frame, sizeof(frame)), 0);
		delivered++;
	}
	assert_int_equal(delivered, VIRTIO_NET_BUDGET_FRAMES);
	virtio_net_new_pass(&net);
	assert_true(virtio_net_can_receive(&net));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_init_checks, setup),
		cmocka_unit_test_setup(test_config_and_features, setup),
		cmocka_unit_test_setup(test_transmit, setup),
		cmocka_unit_test_setup(test_transmit_scattered, setup),
		cmocka_unit_test_setup(test_transmit_bad_header, setup),
		cmocka_unit_test_setup(test_transmit_runts, setup),
		cmocka_unit_test_setup(test_transmit_oversize, setup),
		cmocka_unit_test_setup(test_transmit_backend_refuses, setup),
		cmocka_unit_test_setup(test_transmit_malformed, setup),
		cmocka_unit_test_setup(test_receive, setup),
		cmocka_unit_test_setup(test_receive_scattered, setup),
		cmocka_unit_test_setup(test_receive_no_buffer, setup),
		cmocka_unit_test_setup(test_receive_small_buffer, setup),
		cmocka_unit_test_setup(test_receive_bad_lengths, setup),
		cmocka_unit_test_setup(test_receive_not_ready, setup),
		cmocka_unit_test_setup(test_receive_malformed, setup),
		cmocka_unit_test_setup(test_rx_ready_on_notify, setup),
		cmocka_unit_test_setup(test_link_change, setup),
		cmocka_unit_test_setup(test_loopback, setup),
		cmocka_unit_test_setup(test_two_devices, setup),
		cmocka_unit_test_setup(test_reset_keeps_link_and_stats, setup),
		cmocka_unit_test_setup(test_transmit_flood_is_bounded, setup),
		cmocka_unit_test_setup(test_receive_budget_per_pass, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
