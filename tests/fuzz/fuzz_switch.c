/*
 * libFuzzer harness of the switch: the input is a stream of operations on
 * one network with six receive rings, each an opcode byte and its
 * arguments (missing bytes read as 0):
 *   0 send      port, dst and src choice, Ethernet type choice, length
 *               (2 bytes), then payload bytes from the input
 *   1 attach    ring, slot count choice, MAC choice (or none)
 *   2 detach    port
 *   3 time      advance the clock
 *   4 consume   ring, then: pop frames, set the consumer index to any
 *               value, drain, or set it a little behind the producer's
 *   5 link      port, up or down
 *   6 dhcp      enable or disable the server
 *   7 limits    storm limit and ageing time
 * After each operation the harness checks what must hold whatever the
 * guests do: the switch's counters agree with what it returned, it wrote
 * only into attached rings and never past a well-behaved consumer, and
 * the frames in those rings are sane. A violation aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vnet/switch.h"

#define RINGS 6
#define RING_CAP 16                     /* slots allocated per ring */
#define MAX_OPS 256
#define MACS 6
#define OPS 8

struct input {
	const uint8_t *p;
	size_t n;
};

struct ring_state {
	struct vnet_ring *ring;
	int port;                       /* -1: not attached */
	uint32_t slots;
	bool tampered;                  /* the consumer index was set arbitrarily */
	bool was_attached;
	uint32_t head_at_detach;
};

static struct vnet_switch sw;
static struct ring_state rs[RINGS];
static uint8_t pop_buf[VNET_FRAME_MAX];

static const uint8_t server_mac[6] = { 0x02, 0, 0, 0, 0, 0xfe };
static const uint8_t group_macs[4][6] = {
	{ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
	{ 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 },
	{ 0x33, 0x33, 0x00, 0x00, 0x00, 0x01 },
	{ 0 },
};
/* Larger slot counts than RING_CAP are invalid ones the switch must refuse. */
static const uint32_t slot_choices[] = { 2, 4, 8, 16, 0, 1, 3, 12, VNET_RING_MAX_SLOTS * 2 };
static const uint16_t eth_types[] = { 0x88b5, ETH_TYPE_VLAN, ETH_TYPE_IPV4, ETH_TYPE_ARP };
static const uint64_t time_units[] = { 1, 10, 1000, 60000 };

static void check(int ok)
{
	if (!ok)
		abort();
}

static uint8_t take(struct input *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint16_t take16(struct input *in)
{
	uint16_t lo = take(in);

	return (uint16_t)(lo | take(in) << 8);
}

static uint32_t take32(struct input *in)
{
	uint32_t lo = take16(in);

	return lo | (uint32_t)take16(in) << 16;
}

/* An adapter's address, a group address, the zero address or the server's. */
static void pick_mac(uint8_t sel, uint8_t *out)
{
	static const uint8_t base[6] = { 0x02, 0, 0, 0, 0x02, 0 };

	sel %= MACS + 5;
	if (sel < MACS) {
		memcpy(out, base, 6);
		out[5] = sel;
	} else if (sel < MACS + 4) {
		memcpy(out, group_macs[sel - MACS], 6);
	} else {
		memcpy(out, server_mac, 6);
	}
}

static void op_send(struct input *in, uint64_t now)
{
	unsigned port = take(in) % (VNET_MAX_PORTS + 2);
	struct vnet_counters before, after, pb[VNET_MAX_PORTS], pa;
	uint64_t tx_sum = 0, drop_sum = 0;
	uint8_t dst_sel = take(in), src_sel = take(in);
	uint16_t type = eth_types[take(in) % 4];
	size_t len = take16(in) % (VNET_FRAME_MAX + 32);
	uint8_t *f = malloc(len ? len : 1);
	uint8_t hdr[14];
	unsigned sent;

	pick_mac(dst_sel, hdr);
	pick_mac(src_sel, hdr + 6);
	hdr[12] = (uint8_t)(type >> 8);
	hdr[13] = (uint8_t)type;
	memcpy(f, hdr, len < sizeof(hdr) ? len : sizeof(hdr));
	for (size_t i = sizeof(hdr); i < len; i++)
		f[i] = take(in);

	vnet_switch_stats(&sw, &before);
	for (unsigned p = 0; p < VNET_MAX_PORTS; p++)
		vnet_port_stats(&sw, p, &pb[p]);
	/* The exact length: a sanitizer sees any read past it. */
	sent = vnet_switch_send(&sw, port, f, len, now);
	free(f);
	vnet_switch_stats(&sw, &after);

	check(after.tx_frames - before.tx_frames == sent);
	check(after.rx_frames - before.rx_frames <= 1);
	for (unsigned d = 0; d < VNET_DROP_REASONS; d++)
		drop_sum += after.drops[d] - before.drops[d];
	/* Every frame is accepted or dropped, and counted either way. */
	check(after.rx_frames - before.rx_frames == 1 || drop_sum >= 1);
	for (unsigned p = 0; p < VNET_MAX_PORTS; p++) {
		vnet_port_stats(&sw, p, &pa);
		tx_sum += pa.tx_frames - pb[p].tx_frames;
		if (p == port)
			check(pa.rx_frames - pb[p].rx_frames == after.rx_frames - before.rx_frames);
		else
			check(pa.rx_frames == pb[p].rx_frames);
	}
	check(tx_sum == sent);
}

static const uint32_t allow_choices[] = { VNET_ALLOW_MACS_ANY, 0, 1, 2 };

static void op_attach(struct input *in)
{
	unsigned r = take(in) % RINGS;
	uint32_t slots = slot_choices[take(in) % (sizeof(slot_choices) / sizeof(slot_choices[0]))];
	uint8_t sel = take(in);
	uint8_t mac[6];
	int port;

	pick_mac(sel, mac);
	/* Port security off, none, one or two more addresses: every path of the check. */
	port = vnet_port_attach(&sw, sel & 0x80 ? NULL : mac,
				allow_choices[(sel >> 5) & 3], rs[r].ring, slots);
	if (port < 0) {
		check(port == VNET_ERR_INVALID || port == VNET_ERR_NO_PORT ||
		      port == VNET_ERR_MAC_IN_USE);
		return;
	}
	check(rs[r].port < 0 && slots <= RING_CAP && port < VNET_MAX_PORTS);
	for (unsigned i = 0; i < RINGS; i++)
		check(rs[i].port != port);
	rs[r].port = port;
	rs[r].slots = slots;
	rs[r].tampered = false;
	check(rs[r].ring->head == 0 && rs[r].ring->tail == 0);
}

static void op_detach(struct input *in)
{
	unsigned port = take(in) % (VNET_MAX_PORTS + 1);
	int rc = vnet_port_detach(&sw, port);

	for (unsigned i = 0; i < RINGS; i++) {
		if (rs[i].port != (int)port)
			continue;
		check(rc == 0);
		rs[i].port = -1;
		rs[i].was_attached = true;
		rs[i].head_at_detach = rs[i].ring->head;
		return;
	}
	check(rc == VNET_ERR_INVALID);
}

static void op_consume(struct input *in)
{
	struct ring_state *s = &rs[take(in) % RINGS];
	struct vnet_ring *r = s->ring;
	uint8_t mode = take(in);

	if (s->port < 0)
		return;
	switch (mode % 4) {
	case 0:
		for (unsigned k = take(in) % (RING_CAP + 2); k; k--) {
			int len = vnet_ring_pop(r, s->slots, pop_buf, sizeof(pop_buf));

			if (s->tampered)
				continue;
			check(len >= 0);
			if (!len)
				break;
			check(len >= ETH_HLEN && (size_t)len <= VNET_FRAME_MAX);
		}
		break;
	case 1:
		r->tail = take32(in);
		s->tampered = true;
		break;
	case 2:
		r->tail = r->head;
		s->tampered = false;
		break;
	default: {
		/* Frames again that were taken already: still sane if the switch wrote them. */
		uint32_t back = take(in) % (RING_CAP * 2);

		r->tail = r->head - back;
		s->tampered = back > s->slots || back > r->head;
		break;
	}
	}
}

static void op_dhcp(struct input *in)
{
	struct dhcp_settings s = {
		.enabled = take(in) & 1,
		.server_ip = DHCP_IPV4(10, 0, 0, 1),
		.pool_start = DHCP_IPV4(10, 0, 0, 10),
		.pool_end = DHCP_IPV4(10, 0, 0, 12),
		.netmask = DHCP_IPV4(255, 255, 255, 0),
		.lease_s = 60,
	};
	char err[160];

	memcpy(s.server_mac, server_mac, 6);
	vnet_switch_configure_dhcp(&sw, &s, err, sizeof(err));
}

/* What holds after any operation. */
static void check_rings(void)
{
	unsigned attached = 0;

	for (unsigned i = 0; i < RINGS; i++) {
		struct ring_state *s = &rs[i];

		if (s->port < 0) {
			/* Nothing is written into a ring once it is detached. */
			if (s->was_attached)
				check(s->ring->head == s->head_at_detach);
			continue;
		}
		attached++;
		check(sw.attached & 1u << s->port);
		check(s->ring->head == sw.port[s->port].head);
		if (!s->tampered)
			check(s->ring->head - s->ring->tail <= s->slots);
	}
	check((unsigned)__builtin_popcount(sw.attached) == attached);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	uint64_t now = 1000;

	for (unsigned i = 0; i < RINGS; i++) {
		if (!rs[i].ring)
			rs[i].ring = aligned_alloc(VNET_CACHE_LINE, VNET_RING_BYTES(RING_CAP));
		rs[i].port = -1;
		rs[i].was_attached = false;
		rs[i].tampered = false;
	}
	check(vnet_switch_init(&sw, "fuzz", VNET_MTU_DEFAULT) == 0);

	for (unsigned n = 0; n < MAX_OPS && in.n; n++) {
		switch (take(&in) % OPS) {
		case 0:
			op_send(&in, now);
			break;
		case 1:
			op_attach(&in);
			break;
		case 2:
			op_detach(&in);
			break;
		case 3: {
			uint64_t unit = time_units[take(&in) % 4];

			now += unit * take16(&in);
			break;
		}
		case 4:
			op_consume(&in);
			break;
		case 5: {
			unsigned port = take(&in) % (VNET_MAX_PORTS + 1);

			vnet_port_set_link(&sw, port, take(&in) & 1);
			break;
		}
		case 6:
			op_dhcp(&in);
			break;
		default: {
			uint16_t pps = take16(&in) % 2000;

			vnet_switch_set_storm_limit(&sw, pps, take(&in) % 50);
			vnet_switch_set_ageing(&sw, take16(&in));
			break;
		}
		}
		check_rings();
	}
	return 0;
}
