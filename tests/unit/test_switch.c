#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "vnet/switch.h"

#define SLOTS 8
#define NOW 5000ULL
#define ETHERTYPE_TEST 0x88b5           /* IEEE 802 local experimental */

static struct vnet_switch sw;
static struct vnet_ring *rings[VNET_MAX_PORTS + 1];
static uint32_t ring_slots[VNET_MAX_PORTS + 1];

static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t mcast[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
static const uint8_t server_mac[6] = { 0x02, 0, 0, 0, 0, 0xfe };

/* 02:00:00:00:01:nn, a locally administered unicast address per n. */
static const uint8_t *mac(unsigned n)
{
	static uint8_t macs[256][6];

	macs[n][0] = 0x02;
	macs[n][4] = 0x01;
	macs[n][5] = (uint8_t)n;
	return macs[n];
}

static struct vnet_ring *new_ring(unsigned i, uint32_t slots)
{
	free(rings[i]);
	rings[i] = aligned_alloc(VNET_CACHE_LINE, VNET_RING_BYTES(slots));
	assert_non_null(rings[i]);
	/* Garbage everywhere: attach must set the indexes. */
	memset(rings[i], 0x5a, VNET_RING_BYTES(slots));
	ring_slots[i] = slots;
	return rings[i];
}

/*
 * Attaches ring i with slots slots; returns the port. A port with an
 * address is a guest's adapter (port security on, no other address); one
 * without stands for a segment of many stations (port security off).
 */
static int attach_ring(unsigned i, const uint8_t *m, uint32_t slots)
{
	return vnet_port_attach(&sw, m, m ? 0 : VNET_ALLOW_MACS_ANY, new_ring(i, slots), slots);
}

/* Ports 0..n-1 on rings 0..n-1, with the addresses mac(port) or none. */
static void attach_ports(unsigned n, bool with_mac)
{
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(attach_ring(i, with_mac ? mac(i) : NULL, SLOTS), (int)i);
}

static int setup(void **state)
{
	(void)state;
	assert_int_equal(vnet_switch_init(&sw, "lan", VNET_MTU_DEFAULT), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (unsigned i = 0; i <= VNET_MAX_PORTS; i++) {
		free(rings[i]);
		rings[i] = NULL;
	}
	return 0;
}

/* A frame from src to dst whose payload is all `fill`, as long as the longest. */
static uint8_t *frame(const uint8_t *dst, const uint8_t *src, uint8_t fill)
{
	static uint8_t f[VNET_FRAME_MAX + 64];

	memset(f, fill, sizeof(f));
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = ETHERTYPE_TEST >> 8;
	f[13] = ETHERTYPE_TEST & 0xff;
	return f;
}

static unsigned send(unsigned port, const uint8_t *dst, const uint8_t *src, size_t len,
		     uint8_t fill, uint64_t now)
{
	return vnet_switch_send(&sw, port, frame(dst, src, fill), len, now);
}

static void expect_frame(unsigned ring, const uint8_t *dst, const uint8_t *src, size_t len,
			 uint8_t fill)
{
	static uint8_t buf[VNET_FRAME_MAX];

	assert_int_equal(vnet_ring_pop(rings[ring], ring_slots[ring], buf, sizeof(buf)), (int)len);
	assert_memory_equal(buf, dst, 6);
	assert_memory_equal(buf + 6, src, 6);
	for (size_t i = 14; i < len; i++)
		assert_int_equal(buf[i], fill);
}

static void expect_empty(unsigned ring)
{
	uint8_t buf[16];

	assert_int_equal(vnet_ring_pop(rings[ring], ring_slots[ring], buf, sizeof(buf)), 0);
}

static void drain(unsigned ring)
{
	rings[ring]->tail = rings[ring]->head;
}

static struct vnet_counters port_stats(unsigned port)
{
	struct vnet_counters c;

	assert_int_equal(vnet_port_stats(&sw, port, &c), 0);
	return c;
}

static struct vnet_counters net_stats(void)
{
	struct vnet_counters c;

	vnet_switch_stats(&sw, &c);
	return c;
}

static void test_init(void **state)
{
	static const char long_name[] = "a-network-name-much-longer-than-thirty-one-bytes";

	(void)state;
	assert_int_equal(vnet_switch_init(&sw, "x", VNET_MTU_MIN - 1), VNET_ERR_INVALID);
	assert_int_equal(vnet_switch_init(&sw, "x", VNET_MTU_MAX + 1), VNET_ERR_INVALID);
	assert_int_equal(vnet_switch_init(&sw, "x", VNET_MTU_MIN), 0);
	assert_int_equal(vnet_switch_init(&sw, long_name, VNET_MTU_MAX), 0);
	assert_int_equal(strlen(sw.name), VNET_NAME_MAX - 1);
	assert_memory_equal(sw.name, long_name, VNET_NAME_MAX - 1);
	assert_int_equal(vnet_switch_set_ageing(&sw, 0), VNET_ERR_INVALID);
	assert_int_equal(vnet_switch_set_storm_limit(&sw, VNET_STORM_LIMIT_MAX + 1, 1),
			 VNET_ERR_INVALID);
	assert_int_equal(vnet_switch_set_storm_limit(&sw, 10, 0), VNET_ERR_INVALID);
	assert_int_equal(vnet_switch_set_storm_limit(&sw, 0, 0), 0);
}

static void test_attach_checks(void **state)
{
	uint8_t bad[6] = { 0 };

	(void)state;
	assert_int_equal(vnet_port_attach(&sw, NULL, 0, NULL, SLOTS), VNET_ERR_INVALID);
	assert_int_equal(attach_ring(0, NULL, 6), VNET_ERR_INVALID);
	assert_int_equal(attach_ring(0, NULL, 1), VNET_ERR_INVALID);
	assert_int_equal(attach_ring(0, NULL, 0), VNET_ERR_INVALID);
	assert_int_equal(attach_ring(0, NULL, 2 * VNET_RING_MAX_SLOTS), VNET_ERR_INVALID);
	assert_int_equal(attach_ring(0, bad, SLOTS), VNET_ERR_INVALID);
	assert_int_equal(attach_ring(0, mcast, SLOTS), VNET_ERR_INVALID);
	assert_int_equal(attach_ring(0, bcast, SLOTS), VNET_ERR_INVALID);

	assert_int_equal(attach_ring(0, mac(0), SLOTS), 0);
	assert_int_equal(rings[0]->head, 0);
	assert_int_equal(rings[0]->tail, 0);
	/* The same ring twice, or the same address on two ports. */
	assert_int_equal(vnet_port_attach(&sw, mac(1), 0, rings[0], SLOTS), VNET_ERR_INVALID);
	assert_int_equal(attach_ring(1, mac(0), SLOTS), VNET_ERR_MAC_IN_USE);

	for (unsigned i = 1; i < VNET_MAX_PORTS; i++)
		assert_int_equal(attach_ring(i, mac(i), SLOTS), (int)i);
	assert_int_equal(attach_ring(VNET_MAX_PORTS, mac(99), SLOTS), VNET_ERR_NO_PORT);
	/* A detached port is the next one taken, and its address is free again. */
	assert_int_equal(vnet_port_detach(&sw, 5), 0);
	assert_int_equal(vnet_port_detach(&sw, 5), VNET_ERR_INVALID);
	assert_int_equal(vnet_port_detach(&sw, VNET_MAX_PORTS), VNET_ERR_INVALID);
	assert_int_equal(attach_ring(VNET_MAX_PORTS, mac(5), SLOTS), 5);
	assert_int_equal(vnet_port_set_link(&sw, VNET_MAX_PORTS, true), VNET_ERR_INVALID);
}

static void test_unknown_unicast_and_broadcast_flood(void **state)
{
	(void)state;
	attach_ports(3, false);
	assert_int_equal(send(0, mac(7), mac(0), 64, 0x11, NOW), 2);
	expect_empty(0);
	expect_frame(1, mac(7), mac(0), 64, 0x11);
	expect_frame(2, mac(7), mac(0), 64, 0x11);
	assert_int_equal(send(1, bcast, mac(1), 100, 0x22, NOW), 2);
	expect_frame(0, bcast, mac(1), 100, 0x22);
	expect_empty(1);
	expect_frame(2, bcast, mac(1), 100, 0x22);
	assert_int_equal(send(2, mcast, mac(2), 60, 0x33, NOW), 2);
	expect_frame(0, mcast, mac(2), 60, 0x33);
	expect_frame(1, mcast, mac(2), 60, 0x33);
	expect_empty(2);
}

static void test_unicast_after_learning(void **state)
{
	(void)state;
	attach_ports(3, false);
	/* mac(0) is unknown: flooded; its answer teaches the switch both addresses. */
	assert_int_equal(send(1, mac(0), mac(1), 64, 1, NOW), 2);
	drain(0);
	drain(2);
	assert_int_equal(send(0, mac(1), mac(0), 64, 2, NOW), 1);
	expect_frame(1, mac(1), mac(0), 64, 2);
	assert_int_equal(send(1, mac(0), mac(1), 64, 3, NOW), 1);
	expect_frame(0, mac(0), mac(1), 64, 3);
	expect_empty(2);
	/* An address that moves is learned on its new port. */
	assert_int_equal(send(2, bcast, mac(1), 64, 4, NOW), 2);
	drain(0);
	drain(1);
	assert_int_equal(send(0, mac(1), mac(0), 64, 5, NOW), 1);
	expect_frame(2, mac(1), mac(0), 64, 5);
	expect_empty(1);
}

static void test_adapter_address_is_static(void **state)
{
	(void)state;
	attach_ports(3, true);
	/* Known before the adapter sends anything. */
	assert_int_equal(send(0, mac(2), mac(0), 64, 1, NOW), 1);
	expect_frame(2, mac(2), mac(0), 64, 1);
	/* Port 0 sending with port 1's address is refused and does not take it over. */
	assert_int_equal(send(0, mac(9), mac(1), 64, 2, NOW), 0);
	assert_int_equal(port_stats(0).drops[VNET_DROP_SPOOFED], 1);
	assert_int_equal(send(2, mac(1), mac(2), 64, 3, NOW), 1);
	expect_frame(1, mac(1), mac(2), 64, 3);
	expect_empty(0);
	/* Nor does it age. */
	assert_int_equal(send(2, mac(1), mac(2), 64, 4, NOW + 10 * VNET_AGEING_DEFAULT_MS), 1);
	expect_frame(1, mac(1), mac(2), 64, 4);
}

static void test_ageing(void **state)
{
	(void)state;
	attach_ports(3, false);
	assert_int_equal(vnet_switch_set_ageing(&sw, 1000), 0);
	assert_int_equal(send(1, bcast, mac(1), 64, 0, NOW), 2);
	drain(0);
	drain(2);
	/* Known until the ageing time has passed since its last frame. */
	assert_int_equal(send(0, mac(1), mac(0), 64, 1, NOW + 999), 1);
	drain(1);
	assert_int_equal(send(0, mac(1), mac(0), 64, 1, NOW + 1000), 2);
	drain(1);
	drain(2);
	/* Every frame from it starts the time again. */
	assert_int_equal(send(1, bcast, mac(1), 64, 2, NOW + 2000), 2);
	assert_int_equal(send(1, bcast, mac(1), 64, 2, NOW + 2900), 2);
	drain(0);
	drain(2);
	assert_int_equal(send(0, mac(1), mac(0), 64, 3, NOW + 3899), 1);
	expect_frame(1, mac(1), mac(0), 64, 3);
	expect_empty(2);
}

static void test_filtered_when_destination_is_on_source_port(void **state)
{
	struct vnet_counters c;

	(void)state;
	assert_int_equal(vnet_port_attach(&sw, mac(0), 1, new_ring(0, SLOTS), SLOTS), 0);
	assert_int_equal(attach_ring(1, mac(1), SLOTS), 1);
	/* A second address behind port 0 (a guest bridge), learned there. */
	assert_int_equal(send(0, bcast, mac(50), 64, 0, NOW), 1);
	drain(1);
	assert_int_equal(send(0, mac(50), mac(0), 64, 0, NOW), 0);
	assert_int_equal(send(0, mac(0), mac(50), 64, 0, NOW), 0);
	expect_empty(0);
	expect_empty(1);
	c = port_stats(0);
	assert_int_equal(c.drops[VNET_DROP_FILTERED], 2);
	assert_int_equal(c.rx_frames, 3);
}

static void test_detach_and_reattach(void **state)
{
	struct vnet_counters c;

	(void)state;
	attach_ports(3, false);
	/* mac(1) and mac(51) are learned on port 1. */
	assert_int_equal(send(1, bcast, mac(1), 64, 0, NOW), 2);
	assert_int_equal(send(1, bcast, mac(51), 64, 0, NOW), 2);
	drain(0);
	drain(2);
	assert_int_equal(vnet_port_detach(&sw, 1), 0);
	/* Forgotten: frames to them are flooded, and not to the detached port. */
	assert_int_equal(send(0, mac(51), mac(0), 64, 1, NOW), 1);
	expect_frame(2, mac(51), mac(0), 64, 1);
	assert_int_equal(send(0, mac(1), mac(0), 64, 2, NOW), 1);
	expect_frame(2, mac(1), mac(0), 64, 2);
	assert_int_equal(send(0, bcast, mac(0), 64, 3, NOW), 1);
	expect_frame(2, bcast, mac(0), 64, 3);
	/* The detached ring is not touched. */
	assert_int_equal(rings[1]->head, 0);
	/* Sending on a detached or non-existent port is counted. */
	assert_int_equal(send(1, mac(0), mac(1), 64, 4, NOW), 0);
	assert_int_equal(send(VNET_MAX_PORTS, mac(0), mac(1), 64, 4, NOW), 0);
	assert_int_equal(send(UINT32_MAX, mac(0), mac(1), 64, 4, NOW), 0);
	c = port_stats(1);
	assert_int_equal(c.drops[VNET_DROP_DETACHED], 1);
	assert_int_equal(c.rx_frames, 2);
	assert_int_equal(net_stats().drops[VNET_DROP_DETACHED], 3);
	assert_int_equal(vnet_port_stats(&sw, VNET_MAX_PORTS, &c), VNET_ERR_INVALID);

	/* Plugged in again, on a new ring: a fresh port that works. */
	assert_int_equal(attach_ring(3, mac(1), SLOTS), 1);
	c = port_stats(1);
	assert_int_equal(c.rx_frames + c.drops[VNET_DROP_DETACHED], 0);
	assert_int_equal(send(0, mac(1), mac(0), 64, 5, NOW), 1);
	expect_frame(3, mac(1), mac(0), 64, 5);
	expect_empty(2);
}

static void test_mtu(void **state)
{
	uint8_t *f;

	(void)state;
	attach_ports(2, true);
	assert_int_equal(send(0, mac(1), mac(0), 14 + 1500, 1, NOW), 1);
	expect_frame(1, mac(1), mac(0), 14 + 1500, 1);
	assert_int_equal(send(0, mac(1), mac(0), 14 + 1501, 1, NOW), 0);
	assert_int_equal(send(0, mac(1), mac(0), 18 + 1500, 1, NOW), 0);
	/* An 802.1Q tag may add its 4 octets. */
	f = frame(mac(1), mac(0), 2);
	f[12] = 0x81;
	f[13] = 0x00;
	assert_int_equal(vnet_switch_send(&sw, 0, f, 18 + 1500, NOW), 1);
	assert_int_equal(vnet_switch_send(&sw, 0, f, 18 + 1501, NOW), 0);
	expect_frame(1, mac(1), mac(0), 18 + 1500, 2);
	assert_int_equal(port_stats(0).drops[VNET_DROP_OVERSIZE], 3);

	/* Jumbo frames on a network configured for them; they still fit a slot. */
	teardown(state);
	assert_int_equal(vnet_switch_init(&sw, "jumbo", VNET_MTU_MAX), 0);
	attach_ports(2, true);
	f = frame(mac(1), mac(0), 3);
	f[12] = 0x81;
	f[13] = 0x00;
	assert_int_equal(vnet_switch_send(&sw, 0, f, VNET_FRAME_MAX, NOW), 1);
	assert_int_equal(vnet_switch_send(&sw, 0, f, VNET_FRAME_MAX + 1, NOW), 0);
	expect_frame(1, mac(1), mac(0), VNET_FRAME_MAX, 3);
	assert_int_equal(send(0, mac(1), mac(0), 14 + 9000, 4, NOW), 1);
	assert_int_equal(send(0, mac(1), mac(0), 14 + 9001, 4, NOW), 0);
}

static void test_runts_and_bad_sources(void **state)
{
	struct vnet_counters c;
	const uint8_t zero[6] = { 0 };

	(void)state;
	attach_ports(2, true);
	assert_int_equal(vnet_switch_send(&sw, 0, NULL, 0, NOW), 0);
	assert_int_equal(send(0, mac(1), mac(0), 13, 0, NOW), 0);
	assert_int_equal(send(0, mac(1), mac(0), 14, 0, NOW), 1);
	expect_frame(1, mac(1), mac(0), 14, 0);
	assert_int_equal(send(0, mac(1), mcast, 64, 0, NOW), 0);
	assert_int_equal(send(0, mac(1), bcast, 64, 0, NOW), 0);
	assert_int_equal(send(0, mac(1), zero, 64, 0, NOW), 0);
	expect_empty(1);
	c = port_stats(0);
	assert_int_equal(c.drops[VNET_DROP_RUNT], 2);
	assert_int_equal(c.drops[VNET_DROP_BAD_SRC_MAC], 3);
	assert_int_equal(c.rx_frames, 1);
	/* Bad sources are not learned: the group address still floods. */
	assert_int_equal(send(1, mcast, mac(1), 64, 0, NOW), 1);
}

static void test_full_receiver_drops_without_blocking(void **state)
{
	struct vnet_counters c;

	(void)state;
	attach_ports(3, true);
	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(send(0, mac(1), mac(0), 64, (uint8_t)i, NOW), i < SLOTS ? 1 : 0);
	/* The sender goes on to others unhindered. */
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(send(0, mac(2), mac(0), 64, (uint8_t)i, NOW), 1);
	/* A flood reaches those with room. */
	assert_int_equal(send(0, bcast, mac(0), 64, 0xbb, NOW), 1);
	c = port_stats(1);
	assert_int_equal(c.tx_frames, SLOTS);
	assert_int_equal(c.drops[VNET_DROP_RX_FULL], 3);
	c = port_stats(0);
	assert_int_equal(c.rx_frames, 16);
	assert_int_equal(c.drops[VNET_DROP_RX_FULL], 0);
	/* The oldest frames are kept, in order; once there is room, delivery resumes. */
	for (unsigned i = 0; i < SLOTS; i++)
		expect_frame(1, mac(1), mac(0), 64, (uint8_t)i);
	expect_empty(1);
	assert_int_equal(send(0, mac(1), mac(0), 64, 0x77, NOW), 1);
	expect_frame(1, mac(1), mac(0), 64, 0x77);
}

static void test_corrupt_ring_indexes(void **state)
{
	struct vnet_ring *r;
	struct vnet_counters c;
	uint8_t buf[VNET_FRAME_MAX];

	(void)state;
	attach_ports(2, true);
	r = rings[1];
	assert_int_equal(send(0, mac(1), mac(0), 64, 1, NOW), 1);
	assert_int_equal(send(0, mac(1), mac(0), 64, 2, NOW), 1);
	memset(r->slot[2].data, 0xcc, 64);
	/* The consumer's index ahead of the producer's, or too far behind. */
	r->tail = 3;
	assert_int_equal(send(0, mac(1), mac(0), 64, 3, NOW), 0);
	r->tail = (uint32_t)(2 - SLOTS - 1);
	assert_int_equal(send(0, mac(1), mac(0), 64, 3, NOW), 0);
	r->tail = UINT32_MAX / 2;
	assert_int_equal(send(0, mac(1), mac(0), 64, 3, NOW), 0);
	assert_int_equal(r->head, 2);
	assert_int_equal(r->slot[2].data[0], 0xcc);
	/* Exactly full is full, not corrupt. */
	r->tail = (uint32_t)(2 - SLOTS);
	assert_int_equal(send(0, mac(1), mac(0), 64, 3, NOW), 0);
	c = port_stats(1);
	assert_int_equal(c.drops[VNET_DROP_RING_CORRUPT], 3);
	assert_int_equal(c.drops[VNET_DROP_RX_FULL], 1);
	assert_int_equal(net_stats().drops[VNET_DROP_RING_CORRUPT], 3);
	/* The consumer side refuses a broken ring too, and takes nothing. */
	r->tail = 3;
	assert_int_equal(vnet_ring_pop(r, SLOTS, buf, sizeof(buf)), VNET_ERR_INVALID);
	assert_int_equal(r->tail, 3);
	/* A head overwritten by someone else is never read back by the switch. */
	r->tail = 0;
	r->head = 12345;
	assert_int_equal(send(0, mac(1), mac(0), 64, 4, NOW), 1);
	assert_int_equal(r->head, 3);
	expect_frame(1, mac(1), mac(0), 64, 1);
	expect_frame(1, mac(1), mac(0), 64, 2);
	expect_frame(1, mac(1), mac(0), 64, 4);
}

static void test_ring_pop_checks(void **state)
{
	struct vnet_ring *r;
	uint8_t buf[VNET_FRAME_MAX];

	(void)state;
	attach_ports(2, true);
	r = rings[1];
	assert_int_equal(send(0, mac(1), mac(0), 100, 1, NOW), 1);
	assert_int_equal(vnet_ring_pop(r, 0, buf, sizeof(buf)), VNET_ERR_INVALID);
	assert_int_equal(vnet_ring_pop(r, 6, buf, sizeof(buf)), VNET_ERR_INVALID);
	assert_int_equal(vnet_ring_pop(r, SLOTS, buf, 99), VNET_ERR_INVALID);
	r->slot[0].len = VNET_FRAME_MAX + 1;
	assert_int_equal(vnet_ring_pop(r, SLOTS, buf, sizeof(buf)), VNET_ERR_INVALID);
	r->slot[0].len = 100;
	assert_int_equal(r->tail, 0);
	assert_int_equal(vnet_ring_pop(r, SLOTS, buf, 100), 100);
	assert_int_equal(vnet_ring_pop(r, SLOTS, buf, 100), 0);
}

static void test_indexes_wrap(void **state)
{
	const uint32_t start = UINT32_MAX - 1;

	(void)state;
	attach_ports(2, true);
	/* As if 2^32 - 2 frames had gone through already. */
	sw.port[1].head = start;
	rings[1]->head = start;
	rings[1]->tail = start;
	for (unsigned i = 0; i < SLOTS; i++)
		assert_int_equal(send(0, mac(1), mac(0), 64, (uint8_t)i, NOW), 1);
	assert_int_equal(send(0, mac(1), mac(0), 64, 0xff, NOW), 0);
	assert_int_equal(rings[1]->head, start + SLOTS);
	for (unsigned i = 0; i < SLOTS; i++)
		expect_frame(1, mac(1), mac(0), 64, (uint8_t)i);
	expect_empty(1);
	assert_int_equal(port_stats(1).drops[VNET_DROP_RX_FULL], 1);
}

static void test_link_down(void **state)
{
	struct vnet_counters c;

	(void)state;
	attach_ports(3, true);
	assert_int_equal(vnet_port_set_link(&sw, 1, false), 0);
	assert_int_equal(send(0, mac(1), mac(0), 64, 1, NOW), 0);
	assert_int_equal(send(0, bcast, mac(0), 64, 2, NOW), 1);
	assert_int_equal(send(1, mac(0), mac(1), 64, 3, NOW), 0);
	expect_empty(1);
	expect_empty(0);
	expect_frame(2, bcast, mac(0), 64, 2);
	c = port_stats(1);
	assert_int_equal(c.drops[VNET_DROP_NO_LINK], 3);
	assert_int_equal(c.rx_frames, 0);
	assert_int_equal(vnet_port_set_link(&sw, 1, true), 0);
	assert_int_equal(send(0, mac(1), mac(0), 64, 4, NOW), 1);
	expect_frame(1, mac(1), mac(0), 64, 4);
}

static void test_storm_limit(void **state)
{
	struct vnet_counters c;
	unsigned admitted = 0, delivered = 0, sent = 0;
	const unsigned ms = 1000, storm_per_ms = 10, flow_per_ms = 5;

	(void)state;
	/* 100 broadcasts a second, 10 saved up. */
	assert_int_equal(vnet_switch_set_storm_limit(&sw, 100, 10), 0);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(attach_ring(i, mac(i), 64), (int)i);
	for (unsigned t = 1; t <= ms; t++) {
		for (unsigned k = 0; k < storm_per_ms; k++) {
			sent++;
			admitted += send(0, bcast, mac(0), 60, 0, NOW + t) ? 1 : 0;
		}
		for (unsigned k = 0; k < flow_per_ms; k++)
			delivered += send(1, mac(2), mac(1), 1500, (uint8_t)k, NOW + t);
		drain(1);
		drain(2);
	}
	/* The burst, then one every 10 ms. */
	assert_in_range(admitted, 10 + ms / 10 - 1, 10 + ms / 10);
	c = port_stats(0);
	assert_int_equal(c.rx_frames, admitted);
	assert_int_equal(c.drops[VNET_DROP_STORM], sent - admitted);
	/* The unicast flow between the two others lost nothing. */
	assert_int_equal(delivered, ms * flow_per_ms);
	c = port_stats(2);
	assert_int_equal(c.tx_frames, ms * flow_per_ms + admitted);
	for (unsigned i = 0; i < VNET_DROP_REASONS; i++)
		assert_int_equal(c.drops[i], 0);
	/* A quiet port earns its burst back; unicast was never limited. */
	admitted = 0;
	for (unsigned k = 0; k < 20; k++)
		admitted += send(0, bcast, mac(0), 60, 0, NOW + ms + 10000) ? 1 : 0;
	assert_int_equal(admitted, 10);
	assert_int_equal(send(0, mac(1), mac(0), 60, 0, NOW + ms + 10000), 1);
	/* No limit. */
	assert_int_equal(vnet_switch_set_storm_limit(&sw, 0, 0), 0);
	drain(1);
	drain(2);
	for (unsigned k = 0; k < 30; k++) {
		assert_int_equal(send(0, mcast, mac(0), 60, 0, NOW + ms + 10000), 2);
		drain(1);
		drain(2);
	}
}

static void test_stats_match_traffic(void **state)
{
	struct vnet_counters a, b, c, n;

	(void)state;
	attach_ports(3, true);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(send(0, mac(1), mac(0), 100, 0, NOW), 1);
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(send(1, bcast, mac(1), 60, 0, NOW), 2);
	assert_int_equal(send(2, mac(77), mac(2), 200, 0, NOW), 2);
	assert_int_equal(send(0, mac(1), mac(0), 10, 0, NOW), 0);      /* runt */
	assert_int_equal(send(0, mac(0), mac(0), 64, 0, NOW), 0);      /* filtered */
	assert_int_equal(send(2, mac(0), mac(2), 1515, 0, NOW), 0);    /* oversize */

	a = port_stats(0);
	b = port_stats(1);
	c = port_stats(2);
	n = net_stats();
	assert_int_equal(a.rx_frames, 4);
	assert_int_equal(a.rx_bytes, 364);
	assert_int_equal(a.tx_frames, 3);
	assert_int_equal(a.tx_bytes, 320);
	assert_int_equal(a.drops[VNET_DROP_RUNT], 1);
	assert_int_equal(a.drops[VNET_DROP_FILTERED], 1);
	assert_int_equal(b.rx_frames, 2);
	assert_int_equal(b.rx_bytes, 120);
	assert_int_equal(b.tx_frames, 4);
	assert_int_equal(b.tx_bytes, 500);
	assert_int_equal(c.rx_frames, 1);
	assert_int_equal(c.rx_bytes, 200);
	assert_int_equal(c.tx_frames, 2);
	assert_int_equal(c.tx_bytes, 120);
	assert_int_equal(c.drops[VNET_DROP_OVERSIZE], 1);
	assert_int_equal(n.rx_frames, 7);
	assert_int_equal(n.rx_bytes, 684);
	assert_int_equal(n.tx_frames, 9);
	assert_int_equal(n.tx_bytes, 940);
	/* The network's counters are the sum of the ports'. */
	assert_int_equal(n.rx_frames, a.rx_frames + b.rx_frames + c.rx_frames);
	assert_int_equal(n.tx_bytes, a.tx_bytes + b.tx_bytes + c.tx_bytes);
	for (unsigned i = 0; i < VNET_DROP_REASONS; i++)
		assert_int_equal(n.drops[i], a.drops[i] + b.drops[i] + c.drops[i]);
	assert_int_equal(n.drops[VNET_DROP_RUNT] + n.drops[VNET_DROP_FILTERED] +
			 n.drops[VNET_DROP_OVERSIZE], 3);
	/* And the rings hold what the counters say. */
	assert_int_equal(rings[0]->head, a.tx_frames);
	assert_int_equal(rings[1]->head, b.tx_frames);
	assert_int_equal(rings[2]->head, c.tx_frames);
}

static void test_mac_table_full(void **state)
{
	uint8_t src[6] = { 0x02, 0x44, 0, 0, 0, 0 };

	(void)state;
	attach_ports(3, false);
	assert_int_equal(attach_ring(3, mac(3), 64), 3);
	assert_int_equal(vnet_switch_set_ageing(&sw, 1000), 0);
	/* Far more addresses behind port 0 than the table holds. */
	for (unsigned i = 0; i < 4 * VNET_MAC_TABLE_SIZE; i++) {
		src[3] = (uint8_t)(i >> 16);
		src[4] = (uint8_t)(i >> 8);
		src[5] = (uint8_t)i;
		assert_int_equal(send(0, mac(3), src, 64, 0, NOW), 1);
		drain(3);
	}
	/* An adapter's own address is still known. */
	assert_int_equal(send(1, mac(3), mac(1), 64, 0, NOW), 1);
	drain(3);
	/* Once the flood has aged out, new addresses are learned again. */
	assert_int_equal(send(2, bcast, mac(2), 64, 0, NOW + 1000), 3);
	drain(0);
	drain(1);
	drain(3);
	assert_int_equal(send(1, mac(2), mac(1), 64, 9, NOW + 1001), 1);
	expect_frame(2, mac(2), mac(1), 64, 9);
}

/* A minimal DHCPDISCOVER from src, broadcast (RFC 2131 4.1). */
static size_t discover(uint8_t *f, const uint8_t *src)
{
	const size_t udp_len = 8 + 240 + 4;
	uint32_t sum = 0;

	memset(f, 0, 14 + 20 + udp_len);
	memcpy(f, bcast, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x08;
	f[14] = 0x45;
	f[16] = (uint8_t)((20 + udp_len) >> 8);
	f[17] = (uint8_t)(20 + udp_len);
	f[22] = 64;
	f[23] = 17;
	memset(f + 30, 0xff, 4);
	for (unsigned i = 14; i < 34; i += 2)
		sum += (uint32_t)f[i] << 8 | f[i + 1];
	sum = (sum & 0xffff) + (sum >> 16);
	f[24] = (uint8_t)(~sum >> 8);
	f[25] = (uint8_t)~sum;
	f[35] = 68;
	f[37] = 67;
	f[39] = (uint8_t)udp_len;
	f[42] = 1;
	f[43] = 1;
	f[44] = 6;
	memcpy(f + 42 + 28, src, 6);
	memcpy(f + 42 + 236, (const uint8_t[]){ 99, 130, 83, 99, 53, 1, 1, 255 }, 8);
	return 14 + 20 + udp_len;
}

/* The test network's DHCP settings: 10.0.0.0/24, pool .100-.200. */
static struct dhcp_settings dhcp_settings(bool enabled)
{
	struct dhcp_settings s = {
		.enabled = enabled,
		.server_ip = DHCP_IPV4(10, 0, 0, 1),
		.pool_start = DHCP_IPV4(10, 0, 0, 100),
		.pool_end = DHCP_IPV4(10, 0, 0, 200),
		.netmask = DHCP_IPV4(255, 255, 255, 0),
		.lease_s = 3600,
	};

	memcpy(s.server_mac, server_mac, 6);
	return s;
}

static void configure_dhcp(bool enabled)
{
	struct dhcp_settings s = dhcp_settings(enabled);
	char err[128];

	assert_int_equal(vnet_switch_configure_dhcp(&sw, &s, err, sizeof(err)), 0);
}

static void test_dhcp_is_served_on_the_network(void **state)
{
	uint8_t f[400], buf[VNET_FRAME_MAX];
	size_t len;
	int n;

	(void)state;
	attach_ports(3, true);
	configure_dhcp(true);
	/* A DISCOVER reaches the server only; the OFFER only its sender. */
	len = discover(f, mac(0));
	assert_int_equal(vnet_switch_send(&sw, 0, f, len, NOW), 1);
	n = vnet_ring_pop(rings[0], SLOTS, buf, sizeof(buf));
	assert_int_equal(n, DHCP_FRAME_MAX);
	assert_memory_equal(buf + 6, server_mac, 6);
	assert_int_equal(buf[42], BOOTP_OP_REPLY);
	assert_int_equal(buf[42 + 240 + 2], DHCP_OFFER);
	expect_empty(1);
	expect_empty(2);
	assert_int_equal(sw.dhcp.stats.offer, 1);
	assert_int_equal(port_stats(0).tx_frames, 1);
	assert_int_equal(port_stats(0).rx_frames, 1);

	/* An ARP request for the server: answered, and flooded as usual. */
	memset(f, 0, 60);
	memcpy(f, bcast, 6);
	memcpy(f + 6, mac(1), 6);
	memcpy(f + 12, (const uint8_t[]){ 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1 }, 10);
	memcpy(f + 22, mac(1), 6);
	memcpy(f + 38, (const uint8_t[]){ 10, 0, 0, 1 }, 4);
	assert_int_equal(vnet_switch_send(&sw, 1, f, 60, NOW), 3);
	n = vnet_ring_pop(rings[1], SLOTS, buf, sizeof(buf));
	assert_int_equal(n, 60);
	assert_memory_equal(buf, mac(1), 6);
	assert_memory_equal(buf + 6, server_mac, 6);
	drain(0);
	drain(2);

	/* Anything else for the server's MAC ends there. */
	assert_int_equal(send(2, server_mac, mac(2), 64, 0, NOW), 0);
	expect_empty(0);
	expect_empty(1);
	assert_int_equal(port_stats(2).rx_frames, 1);

	/* A full ring costs the client its reply, counted like any other. */
	for (unsigned i = 0; i < SLOTS; i++)
		assert_int_equal(send(1, mac(0), mac(1), 64, 0, NOW), 1);
	len = discover(f, mac(0));
	assert_int_equal(vnet_switch_send(&sw, 0, f, len, NOW), 0);
	assert_int_equal(port_stats(0).drops[VNET_DROP_RX_FULL], 1);
	drain(0);

	/* Disabled, DHCP is ordinary broadcast traffic. */
	configure_dhcp(false);
	assert_int_equal(vnet_switch_send(&sw, 0, f, len, NOW), 2);
	assert_int_equal(send(2, server_mac, mac(2), 64, 0, NOW), 2);
}

static void test_server_mac_is_not_an_adapters(void **state)
{
	struct dhcp_settings s = dhcp_settings(true);
	char err[128];

	(void)state;
	attach_ports(2, true);
	memcpy(s.server_mac, mac(1), 6);
	assert_int_equal(vnet_switch_configure_dhcp(&sw, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "adapter on port 1"));
	assert_false(sw.dhcp.cfg.enabled);
	/* Bad settings are refused with the server's own message. */
	memcpy(s.server_mac, server_mac, 6);
	s.lease_s = 1;
	assert_int_equal(vnet_switch_configure_dhcp(&sw, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "lease time"));
	configure_dhcp(true);
	assert_int_equal(attach_ring(2, server_mac, SLOTS), VNET_ERR_MAC_IN_USE);
}

/* A guest's port sends with its adapter's address only: anything else is dropped and counted. */
static void test_port_security_drops_foreign_sources(void **state)
{
	struct vnet_counters c;

	(void)state;
	attach_ports(3, true);
	assert_int_equal(send(0, bcast, mac(77), 64, 1, NOW), 0);
	assert_int_equal(send(0, mac(2), mac(78), 64, 1, NOW), 0);
	expect_empty(1);
	expect_empty(2);
	c = port_stats(0);
	assert_int_equal(c.drops[VNET_DROP_SPOOFED], 2);
	assert_int_equal(c.rx_frames, 0);
	assert_int_equal(net_stats().drops[VNET_DROP_SPOOFED], 2);
	/* Nothing was learned: a frame to the made-up address is flooded, not sent to port 0. */
	assert_int_equal(send(1, mac(77), mac(1), 64, 2, NOW), 2);
	drain(0);
	drain(2);
	/* Its own address works as before. */
	assert_int_equal(send(0, mac(2), mac(0), 64, 3, NOW), 1);
	expect_frame(2, mac(2), mac(0), 64, 3);
}

/*
 * A bridge port allowed two more addresses uses them, and a third only
 * once one has gone unused for the ageing time; never another adapter's.
 */
static void test_bridge_port_uses_its_allowance(void **state)
{
	(void)state;
	assert_int_equal(vnet_port_attach(&sw, mac(0), VNET_ALLOW_MACS_MAX + 1,
					  new_ring(0, SLOTS), SLOTS), VNET_ERR_INVALID);
	assert_int_equal(vnet_port_attach(&sw, mac(0), 2, new_ring(0, SLOTS), SLOTS), 0);
	assert_int_equal(attach_ring(1, mac(1), SLOTS), 1);
	assert_int_equal(vnet_switch_set_ageing(&sw, 1000), 0);
	assert_int_equal(send(0, mac(1), mac(50), 64, 1, NOW), 1);
	assert_int_equal(send(0, mac(1), mac(51), 64, 2, NOW + 500), 1);
	assert_int_equal(send(0, mac(1), mac(52), 64, 3, NOW + 500), 0);
	assert_int_equal(send(0, mac(2), mac(1), 64, 4, NOW + 500), 0);
	assert_int_equal(port_stats(0).drops[VNET_DROP_SPOOFED], 2);
	expect_frame(1, mac(1), mac(50), 64, 1);
	expect_frame(1, mac(1), mac(51), 64, 2);
	expect_empty(1);
	/* The nested stations are reachable through the bridge. */
	assert_int_equal(send(1, mac(51), mac(1), 64, 5, NOW + 600), 1);
	expect_frame(0, mac(51), mac(1), 64, 5);
	/* mac(50) aged out: mac(52) takes its place, and mac(50) is refused now. */
	assert_int_equal(send(0, mac(1), mac(52), 64, 6, NOW + 1000), 1);
	assert_int_equal(send(0, mac(1), mac(50), 64, 7, NOW + 1000), 0);
	expect_frame(1, mac(1), mac(52), 64, 6);
	expect_empty(1);
}

/*
 * The exhaustion attack of a guest on its network's DHCP server: 128
 * DISCOVERs with made-up addresses. A guest port gets none through; a
 * bridge port allowed one more address gets one lease for it, besides its
 * adapter's own.
 */
static void test_spoofed_dhcp_cannot_empty_the_pool(void **state)
{
	uint8_t f[400], src[6] = { 0x02, 0x66, 0, 0, 0, 0 };
	struct dhcp_lease leases[DHCP_MAX_LEASES];

	(void)state;
	attach_ports(1, true);
	assert_int_equal(vnet_port_attach(&sw, mac(1), 1, new_ring(1, SLOTS), SLOTS), 1);
	configure_dhcp(true);
	for (unsigned port = 0; port < 2; port++) {
		for (unsigned i = 0; i < DHCP_MAX_LEASES; i++) {
			src[4] = (uint8_t)port;
			src[5] = (uint8_t)i;
			vnet_switch_send(&sw, port, f, discover(f, src), NOW);
			drain(port);
		}
		vnet_switch_send(&sw, port, f, discover(f, mac(port)), NOW);
		drain(port);
	}
	assert_int_equal(port_stats(0).drops[VNET_DROP_SPOOFED], DHCP_MAX_LEASES);
	assert_int_equal(port_stats(1).drops[VNET_DROP_SPOOFED], DHCP_MAX_LEASES - 1);
	/* Port 0: its own; port 1: the first made-up address and its own. */
	assert_int_equal(dhcp_server_leases(&sw.dhcp, NOW, leases, DHCP_MAX_LEASES), 3);
	assert_int_equal(sw.dhcp.stats.offer, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_init, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_unicast_and_broadcast_flood, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unicast_after_learning, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adapter_address_is_static, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ageing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filtered_when_destination_is_on_source_port, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_detach_and_reattach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mtu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runts_and_bad_sources, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_receiver_drops_without_blocking, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_ring_indexes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_pop_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indexes_wrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storm_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stats_match_traffic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mac_table_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dhcp_is_served_on_the_network, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_mac_is_not_an_adapters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_port_security_drops_foreign_sources, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bridge_port_uses_its_allowance, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spoofed_dhcp_cannot_empty_the_pool, setup, teardown),
	};
	return cmocka_run_group_tests_name("switch", tests, NULL, NULL);
}
