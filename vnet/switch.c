#include "vnet/switch.h"

#include <string.h>

#include "lib/fmt.h"

/*
 * MAC addresses are handled as 48-bit keys: the six octets in the low
 * bytes of a little-endian integer, so the first octet is the low byte and
 * its first bit, the individual/group bit (IEEE 802.3 3.2.3), is bit 0.
 */
#define MAC_GROUP_BIT 1ULL
#define MAC_BROADCAST 0xffffffffffffULL
#define ALL_PORTS ((1u << VNET_MAX_PORTS) - 1)

_Static_assert(VNET_MAX_PORTS <= 32, "port sets are 32-bit masks");
_Static_assert(VNET_MAX_PORTS <= VNET_MAC_PROBE,
	       "an adapter's address always finds an entry not held by another adapter's");
_Static_assert(VNET_MAX_PORTS < VNET_PORT_NONE, "port numbers fit the table");

/*
 * Spelled out rather than memcpy: the image is built freestanding, where
 * memcpy is a call, and compilers merge these six loads into two.
 */
static uint64_t mac_key(const uint8_t *mac)
{
	return (uint64_t)mac[0] | (uint64_t)mac[1] << 8 | (uint64_t)mac[2] << 16 |
	       (uint64_t)mac[3] << 24 | (uint64_t)mac[4] << 32 | (uint64_t)mac[5] << 40;
}

static bool key_is_unicast(uint64_t key)
{
	return !(key & MAC_GROUP_BIT) && key;
}

/* Fibonacci hashing: the top bits of the product depend on all 48 address bits. */
static struct vnet_mac_entry *mac_entry(struct vnet_switch *sw, uint64_t key, unsigned probe)
{
	unsigned h = (unsigned)((key * 0x9e3779b97f4a7c15ULL) >> (64 - VNET_MAC_TABLE_BITS));

	return &sw->mac_table[(h + probe) & (VNET_MAC_TABLE_SIZE - 1)];
}

/* An entry that forwards: not forgotten, and static or seen within the ageing time. */
static bool mac_live(const struct vnet_switch *sw, const struct vnet_mac_entry *e, uint64_t now)
{
	return e->port != VNET_PORT_NONE &&
	       (e->is_static || now < e->seen_ms || now - e->seen_ms < sw->ageing_ms);
}

/*
 * The entry of key, live or not, or NULL. If reuse is given (and *reuse
 * is NULL), it gets the first entry on the way that a new address may
 * take: never used, forgotten or aged out. Probing stops at a never-used
 * entry: entries are never emptied, so key cannot lie beyond one.
 */
static struct vnet_mac_entry *mac_probe(struct vnet_switch *sw, uint64_t key, uint64_t now,
					struct vnet_mac_entry **reuse)
{
	for (unsigned i = 0; i < VNET_MAC_PROBE; i++) {
		struct vnet_mac_entry *e = mac_entry(sw, key, i);

		if (e->mac == key)
			return e;
		if (reuse && !*reuse && !mac_live(sw, e, now))
			*reuse = e;
		if (!e->mac)
			return NULL;
	}
	return NULL;
}

/* The port a frame from key came in on learns key, unless key is an adapter's own. */
static void mac_learn(struct vnet_switch *sw, uint64_t key, unsigned port, uint64_t now)
{
	struct vnet_mac_entry *reuse = NULL;
	struct vnet_mac_entry *e = mac_probe(sw, key, now, &reuse);

	if (e && e->is_static)
		return;
	if (!e)
		e = reuse;
	if (!e)
		return;
	e->mac = key;
	e->port = (uint16_t)port;
	e->seen_ms = now;
}

/* The port a live entry sends key to, or VNET_PORT_NONE. */
static unsigned mac_lookup(struct vnet_switch *sw, uint64_t key, uint64_t now)
{
	const struct vnet_mac_entry *e = mac_probe(sw, key, now, NULL);

	return e && mac_live(sw, e, now) ? e->port : VNET_PORT_NONE;
}

/*
 * Makes key a static entry of port; the caller checked that no other
 * adapter has it. Any learned entry may give way, and one always does:
 * at most VNET_MAX_PORTS - 1 other static entries are in reach.
 */
static void mac_add_static(struct vnet_switch *sw, uint64_t key, unsigned port)
{
	struct vnet_mac_entry *e = mac_probe(sw, key, 0, NULL);

	for (unsigned i = 0; !e && i < VNET_MAC_PROBE; i++)
		if (!mac_entry(sw, key, i)->is_static)
			e = mac_entry(sw, key, i);
	e->mac = key;
	e->port = (uint16_t)port;
	e->is_static = true;
}

/* The adapter that owns key, or VNET_PORT_NONE. */
static unsigned mac_owner(struct vnet_switch *sw, uint64_t key)
{
	const struct vnet_mac_entry *e = mac_probe(sw, key, 0, NULL);

	return e && e->is_static ? e->port : VNET_PORT_NONE;
}

/*
 * Port security: key is the port's adapter address, or one of the at
 * most allow_macs others it has used within the ageing time, or takes the
 * place of one that aged out. Never another adapter's address.
 */
static bool port_may_send_as(struct vnet_switch *sw, struct vnet_port *p, uint64_t key,
			     uint64_t now)
{
	struct vnet_port_mac *reuse = NULL;

	if (p->allow_macs == VNET_ALLOW_MACS_ANY || key == p->own_mac)
		return true;
	if (!p->allow_macs || mac_owner(sw, key) != VNET_PORT_NONE)
		return false;
	for (uint32_t i = 0; i < p->allow_macs; i++) {
		struct vnet_port_mac *m = &p->extra_mac[i];

		if (m->mac == key) {
			m->seen_ms = now;
			return true;
		}
		if (!reuse && (!m->mac || (now >= m->seen_ms && now - m->seen_ms >= sw->ageing_ms)))
			reuse = m;
	}
	if (!reuse)
		return false;
	reuse->mac = key;
	reuse->seen_ms = now;
	return true;
}

static unsigned drop(struct vnet_switch *sw, struct vnet_port *p, enum vnet_drop why)
{
	p->stats.drops[why]++;
	sw->stats.drops[why]++;
	return 0;
}

/* Writes a frame into a port's ring: the one copy the frame gets. */
static unsigned deliver(struct vnet_switch *sw, unsigned port, const void *frame, size_t len)
{
	struct vnet_port *out = &sw->port[port];
	struct vnet_ring *ring = out->ring;
	uint32_t head = out->head;
	uint32_t waiting;
	struct vnet_slot *slot;

	if (!out->link_up)
		return drop(sw, out, VNET_DROP_NO_LINK);
	/* The consumer's index, read once; ours is never read back. */
	waiting = head - __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
	if (waiting > out->slot_mask)
		return drop(sw, out, waiting == out->slot_mask + 1 ? VNET_DROP_RX_FULL :
				     VNET_DROP_RING_CORRUPT);
	slot = &ring->slot[head & out->slot_mask];
	memcpy(slot->data, frame, len);
	slot->len = (uint32_t)len;
	__atomic_store_n(&ring->head, head + 1, __ATOMIC_RELEASE);
	out->head = head + 1;
	out->stats.tx_frames++;
	out->stats.tx_bytes += len;
	sw->stats.tx_frames++;
	sw->stats.tx_bytes += len;
	return 1;
}

/* Every attached port but the one the frame came from. */
static unsigned flood(struct vnet_switch *sw, unsigned src_port, const void *frame, size_t len)
{
	uint32_t targets = sw->attached & ~(1u << src_port);
	unsigned sent = 0;

	while (targets) {
		unsigned port = (unsigned)__builtin_ctz(targets);

		targets &= targets - 1;
		sent += deliver(sw, port, frame, len);
	}
	return sent;
}

/*
 * Token bucket of a port's broadcast and multicast frames: refilled for
 * the time since the last one, at most to the burst. A clock that goes
 * back refills nothing.
 */
static bool storm_admit(struct vnet_switch *sw, struct vnet_port *p, uint64_t now)
{
	uint64_t cap = (uint64_t)sw->storm_burst * VNET_STORM_TOKEN;

	if (!sw->storm_pps)
		return true;
	if (now > p->storm_refill_ms) {
		/* Past cap ms the bucket is full anyway (pps >= 1); this bounds the product. */
		uint64_t elapsed = now - p->storm_refill_ms;

		p->storm_tokens += (elapsed < cap ? elapsed : cap) * sw->storm_pps;
		p->storm_refill_ms = now;
	}
	if (p->storm_tokens > cap)
		p->storm_tokens = cap;
	if (p->storm_tokens < VNET_STORM_TOKEN)
		return false;
	p->storm_tokens -= VNET_STORM_TOKEN;
	return true;
}

/*
 * Shows a frame to the DHCP server, which leases a port as many addresses
 * as it may use; an answer goes into the ring of the port that sent the
 * frame, counted in *sent.
 */
static enum dhcp_verdict to_server(struct vnet_switch *sw, unsigned port, const void *frame,
				   size_t len, uint64_t now, unsigned *sent)
{
	uint32_t allow = sw->port[port].allow_macs;
	const struct dhcp_client_port from = {
		.port = port,
		.max_leases = allow == VNET_ALLOW_MACS_ANY ? DHCP_MAX_LEASES : 1 + allow,
	};
	uint8_t reply[DHCP_FRAME_MAX];
	size_t reply_len;
	enum dhcp_verdict verdict;

	verdict = dhcp_server_input(&sw->dhcp, &from, frame, len, now, reply, &reply_len);
	*sent = reply_len ? deliver(sw, port, reply, reply_len) : 0;
	return verdict;
}

static unsigned forward(struct vnet_switch *sw, unsigned src_port, const void *frame,
		        size_t len, uint64_t now_ms)
{
	const uint8_t *hdr = frame;
	struct vnet_port *in;
	uint64_t dst, src;
	bool tagged;
	unsigned out;

	if (src_port >= VNET_MAX_PORTS) {
		sw->stats.drops[VNET_DROP_DETACHED]++;
		return 0;
	}
	in = &sw->port[src_port];
	if (!in->ring)
		return drop(sw, in, VNET_DROP_DETACHED);
	if (!in->link_up)
		return drop(sw, in, VNET_DROP_NO_LINK);
	if (len < ETH_HLEN)
		return drop(sw, in, VNET_DROP_RUNT);
	/* Each header field is read once (the guest may be changing them). */
	dst = mac_key(hdr + offsetof(struct eth_hdr, dst));
	src = mac_key(hdr + offsetof(struct eth_hdr, src));
	tagged = (hdr[offsetof(struct eth_hdr, type)] << 8 |
		  hdr[offsetof(struct eth_hdr, type) + 1]) == ETH_TYPE_VLAN;
	/* 802.1Q 6.9: a tag adds 4 octets to the largest frame. */
	if (len > sw->frame_max && (len > sw->frame_max + ETH_VLAN_TAG_LEN || !tagged))
		return drop(sw, in, VNET_DROP_OVERSIZE);
	if (!key_is_unicast(src))
		return drop(sw, in, VNET_DROP_BAD_SRC_MAC);
	if (!port_may_send_as(sw, in, src, now_ms))
		return drop(sw, in, VNET_DROP_SPOOFED);
	if ((dst & MAC_GROUP_BIT) && !storm_admit(sw, in, now_ms))
		return drop(sw, in, VNET_DROP_STORM);

	in->stats.rx_frames++;
	in->stats.rx_bytes += len;
	sw->stats.rx_frames++;
	sw->stats.rx_bytes += len;
	mac_learn(sw, src, src_port, now_ms);

	if (sw->dhcp.cfg.enabled &&
	    (dst == MAC_BROADCAST || dst == mac_key(sw->dhcp.cfg.server_mac))) {
		unsigned sent;

		if (to_server(sw, src_port, frame, len, now_ms, &sent) == DHCP_TAKEN ||
		    dst != MAC_BROADCAST)
			return sent;
		return sent + flood(sw, src_port, frame, len);
	}
	if (dst & MAC_GROUP_BIT)
		return flood(sw, src_port, frame, len);
	out = mac_lookup(sw, dst, now_ms);
	if (out == VNET_PORT_NONE)
		return flood(sw, src_port, frame, len);
	if (out == src_port)
		return drop(sw, in, VNET_DROP_FILTERED);
	return deliver(sw, out, frame, len);
}

unsigned vnet_switch_send(struct vnet_switch *sw, unsigned src_port, const void *frame,
			  size_t len, uint64_t now_ms)
{
	spin_lock_hot(&sw->lock);
	unsigned sent = forward(sw, src_port, frame, len, now_ms);
	spin_unlock_hot(&sw->lock);
	return sent;
}

int vnet_switch_init(struct vnet_switch *sw, const char *name, uint32_t mtu)
{
	if (mtu < VNET_MTU_MIN || mtu > VNET_MTU_MAX)
		return VNET_ERR_INVALID;
	memset(sw, 0, sizeof(*sw));
	for (size_t i = 0; i < VNET_NAME_MAX - 1 && name[i]; i++)
		sw->name[i] = name[i];
	sw->mtu = mtu;
	sw->frame_max = ETH_HLEN + mtu;
	sw->ageing_ms = VNET_AGEING_DEFAULT_MS;
	sw->storm_pps = VNET_STORM_PPS_DEFAULT;
	sw->storm_burst = VNET_STORM_BURST_DEFAULT;
	for (unsigned i = 0; i < VNET_MAC_TABLE_SIZE; i++)
		sw->mac_table[i].port = VNET_PORT_NONE;
	dhcp_server_init(&sw->dhcp);
	return 0;
}

int vnet_switch_set_ageing(struct vnet_switch *sw, uint64_t ageing_ms)
{
	if (!ageing_ms)
		return VNET_ERR_INVALID;
	sw->ageing_ms = ageing_ms;
	return 0;
}

int vnet_switch_set_storm_limit(struct vnet_switch *sw, uint32_t pps, uint32_t burst)
{
	if (pps > VNET_STORM_LIMIT_MAX || (pps && (!burst || burst > VNET_STORM_LIMIT_MAX)))
		return VNET_ERR_INVALID;
	sw->storm_pps = pps;
	sw->storm_burst = burst;
	return 0;
}

int vnet_switch_configure_dhcp(struct vnet_switch *sw, const struct dhcp_settings *s,
			       char *err, size_t err_size)
{
	int ret;

	spin_lock(&sw->lock);
	unsigned owner = mac_owner(sw, mac_key(s->server_mac));
	if (s->enabled && owner != VNET_PORT_NONE) {
		fmt_snprintf(err, err_size, "server MAC is the address of the adapter on port %u",
			     owner);
		ret = -1;
	} else {
		ret = dhcp_server_configure(&sw->dhcp, s, err, err_size);
	}
	spin_unlock(&sw->lock);
	return ret;
}

static int attach(struct vnet_switch *sw, const uint8_t *mac, uint32_t allow_macs,
		  struct vnet_ring *ring, uint32_t slots)
{
	uint64_t key = mac ? mac_key(mac) : 0;
	struct vnet_port *p;
	unsigned port;

	if (!ring || slots < VNET_RING_MIN_SLOTS || slots > VNET_RING_MAX_SLOTS ||
	    (slots & (slots - 1)) || (mac && !key_is_unicast(key)) ||
	    (allow_macs > VNET_ALLOW_MACS_MAX && allow_macs != VNET_ALLOW_MACS_ANY))
		return VNET_ERR_INVALID;
	for (port = 0; port < VNET_MAX_PORTS; port++)
		if (sw->port[port].ring == ring)
			return VNET_ERR_INVALID;
	if (mac && (mac_owner(sw, key) != VNET_PORT_NONE ||
		    (sw->dhcp.cfg.enabled && key == mac_key(sw->dhcp.cfg.server_mac))))
		return VNET_ERR_MAC_IN_USE;
	if (sw->attached == ALL_PORTS)
		return VNET_ERR_NO_PORT;

	port = (unsigned)__builtin_ctz(~sw->attached);
	p = &sw->port[port];
	memset(p, 0, sizeof(*p));
	p->ring = ring;
	p->own_mac = key;
	p->allow_macs = allow_macs;
	p->slot_mask = slots - 1;
	p->link_up = true;
	p->storm_tokens = (uint64_t)sw->storm_burst * VNET_STORM_TOKEN;
	ring->head = 0;
	ring->tail = 0;
	sw->attached |= 1u << port;
	if (mac)
		mac_add_static(sw, key, port);
	return (int)port;
}

int vnet_port_attach(struct vnet_switch *sw, const uint8_t *mac, uint32_t allow_macs,
		     struct vnet_ring *ring, uint32_t slots)
{
	spin_lock(&sw->lock);
	int port = attach(sw, mac, allow_macs, ring, slots);
	spin_unlock(&sw->lock);
	return port;
}

static struct vnet_port *attached_port(struct vnet_switch *sw, unsigned port)
{
	return port < VNET_MAX_PORTS && sw->port[port].ring ? &sw->port[port] : NULL;
}

int vnet_port_detach(struct vnet_switch *sw, unsigned port)
{
	spin_lock(&sw->lock);
	struct vnet_port *p = attached_port(sw, port);
	if (!p) {
		spin_unlock(&sw->lock);
		return VNET_ERR_INVALID;
	}
	p->ring = NULL;
	sw->attached &= ~(1u << port);
	for (unsigned i = 0; i < VNET_MAC_TABLE_SIZE; i++) {
		struct vnet_mac_entry *e = &sw->mac_table[i];

		if (e->port == port) {
			e->port = VNET_PORT_NONE;
			e->is_static = false;
		}
	}
	spin_unlock(&sw->lock);
	return 0;
}

int vnet_port_set_link(struct vnet_switch *sw, unsigned port, bool up)
{
	spin_lock(&sw->lock);
	struct vnet_port *p = attached_port(sw, port);
	if (p)
		p->link_up = up;
	spin_unlock(&sw->lock);
	return p ? 0 : VNET_ERR_INVALID;
}

int vnet_port_stats(struct vnet_switch *sw, unsigned port, struct vnet_counters *out)
{
	if (port >= VNET_MAX_PORTS)
		return VNET_ERR_INVALID;
	spin_lock(&sw->lock);
	*out = sw->port[port].stats;
	spin_unlock(&sw->lock);
	return 0;
}

void vnet_switch_stats(struct vnet_switch *sw, struct vnet_counters *out)
{
	spin_lock(&sw->lock);
	*out = sw->stats;
	spin_unlock(&sw->lock);
}

int vnet_ring_peek(const struct vnet_ring *ring, uint32_t slots, const void **frame)
{
	uint32_t tail, head, len;
	const struct vnet_slot *slot;

	if (slots < VNET_RING_MIN_SLOTS || slots > VNET_RING_MAX_SLOTS || (slots & (slots - 1)))
		return VNET_ERR_INVALID;
	tail = __atomic_load_n(&ring->tail, __ATOMIC_RELAXED);
	head = __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE);
	if (head - tail > slots)
		return VNET_ERR_INVALID;
	if (head == tail)
		return 0;
	slot = &ring->slot[tail & (slots - 1)];
	len = __atomic_load_n(&slot->len, __ATOMIC_RELAXED);
	if (len > VNET_FRAME_MAX)
		return VNET_ERR_INVALID;
	*frame = slot->data;
	return (int)len;
}

void vnet_ring_consume(struct vnet_ring *ring)
{
	/* Frees the slot for the switch: after this it may be overwritten. */
	__atomic_store_n(&ring->tail, ring->tail + 1, __ATOMIC_RELEASE);
}

int vnet_ring_pop(struct vnet_ring *ring, uint32_t slots, void *buf, size_t cap)
{
	const void *frame;
	int len = vnet_ring_peek(ring, slots, &frame);

	if (len <= 0)
		return len;
	if ((size_t)len > cap)
		return VNET_ERR_INVALID;
	memcpy(buf, frame, (size_t)len);
	vnet_ring_consume(ring);
	return len;
}
