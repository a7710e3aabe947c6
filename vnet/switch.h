/*
 * A virtual network: a learning Ethernet switch with up to VNET_MAX_PORTS
 * ports, its statistics, and the network's DHCP server (vnet/dhcp.h).
 *
 * Data path. A guest's adapter sends by handing the switch a frame in its
 * own buffer (vnet_switch_send); the switch copies it once, straight into
 * the receive ring of each port it goes to. A receive ring is shared
 * memory with one producer, the switch, and one consumer, the adapter's
 * device model, which a guest may drive: the switch never trusts the
 * consumer's index (it reads it once per frame and checks it) and keeps
 * its own index privately (it only ever writes the shared one). A full or
 * broken ring costs its receiver the frame, counted, and never blocks the
 * sender or the switch.
 *
 * Forwarding (IEEE 802.1D 7.7, 7.8, without spanning tree: a virtual
 * network has no loops): the source address is learned for the port it
 * came from; a frame to a known unicast address goes to that port only,
 * and is filtered if that is the port it came from; broadcast, multicast
 * and unknown unicast frames go to every other attached port. Learned
 * addresses age out after the ageing time (802.1D 7.9.2, default 300 s).
 * The address an adapter is attached with is a static entry: it never ages
 * and no frame can move it to another port, so a guest cannot take over
 * another adapter's address by sending with it as source.
 *
 * Port security. A port sends only with its adapter's address as source,
 * plus at most allow_macs other addresses (a guest that bridges nested
 * VMs onto the network needs theirs): the first allow_macs addresses it
 * uses are its own until they go unused for the ageing time. A frame with
 * any other source, another adapter's address included, is dropped and
 * counted (VNET_DROP_SPOOFED). The DHCP server gives a port at most
 * 1 + allow_macs leases at a time, so no guest can empty the pool by
 * inventing client addresses (vnet/dhcp.h).
 *
 * DHCP. While the network's server is enabled, frames to its MAC address
 * go to it and to no port, and broadcasts are shown to it before they are
 * flooded: DHCP client messages (UDP to port 67) are consumed by the
 * server and not flooded, so no guest sees or answers another's requests;
 * ARP requests for the server's address are answered and still flooded.
 * The server's replies go only into the ring of the port that asked, even
 * when RFC 2131 addresses them to the broadcast address.
 *
 * Time is the caller's: every call that needs it takes now_ms from a
 * monotonic millisecond clock.
 *
 * Statistics are per port and per network. A port's rx counters count the
 * frames the switch accepted from it, its tx counters the frames written
 * into its ring (the DHCP server's replies included). A frame refused on
 * the way in (runt, oversize, bad or spoofed source address, detached or
 * link-down sender, storm limit) is not in rx and counts as a drop of the sending
 * port; so does an accepted frame whose destination is on the port it
 * came from (filtered). A delivery that fails (full or corrupt ring, link
 * down) counts as a drop of the receiving port, once per receiver. The
 * network's counters are the sum over all ports since the network was
 * created, plus frames sent on port numbers that do not exist (detached);
 * a port's are reset when an adapter is attached to it.
 */
#ifndef VNET_SWITCH_H
#define VNET_SWITCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/spinlock.h"
#include "vnet/dhcp.h"

#define VNET_MAX_PORTS 16
#define VNET_NAME_MAX 32                /* bytes including the NUL */

/* MTU: the IPv4 minimum (RFC 791 3.2: 68 octets) up to jumbo frames. */
#define VNET_MTU_MIN 68
#define VNET_MTU_MAX 9000
#define VNET_MTU_DEFAULT 1500
/* The longest frame: header, one 802.1Q tag and the largest MTU (no FCS). */
#define VNET_FRAME_MAX (ETH_HLEN + ETH_VLAN_TAG_LEN + VNET_MTU_MAX)

/*
 * A ring slot is 9 KiB: its length word, padding that keeps the data
 * 8-byte aligned, and room for the longest frame. Slots are a multiple of
 * 64 bytes, so in a 64-byte aligned ring each starts a cache line.
 */
#define VNET_CACHE_LINE 64
#define VNET_SLOT_SIZE 9216
#define VNET_SLOT_DATA (VNET_SLOT_SIZE - 2 * sizeof(uint32_t))

struct vnet_slot {
	uint32_t len;                   /* frame bytes in data */
	uint32_t reserved;
	uint8_t data[VNET_SLOT_DATA];
};

_Static_assert(sizeof(struct vnet_slot) == VNET_SLOT_SIZE, "slot layout");
_Static_assert(VNET_SLOT_DATA >= VNET_FRAME_MAX, "a slot holds the longest frame");
_Static_assert(VNET_SLOT_SIZE % VNET_CACHE_LINE == 0, "slots keep cache-line alignment");

/*
 * A receive ring: a power-of-two count of slots (given at attach time,
 * not stored here, where the consumer could change it), and two
 * free-running 32-bit indexes, each on its own cache line. head counts
 * the frames the switch wrote, tail the frames the consumer took; slot
 * (i & (slots - 1)) holds frame i. The switch writes a slot, then
 * publishes it with a release store of head; the consumer reads head with
 * acquire, takes the slot, then releases it with a release store of tail.
 * head - tail is the number of frames waiting; more than slots means a
 * consumer broke the ring.
 *
 * Memory: VNET_RING_BYTES(slots), 64-byte aligned.
 */
#define VNET_RING_MIN_SLOTS 2
#define VNET_RING_MAX_SLOTS 4096

struct vnet_ring {
	uint32_t head;                  /* written by the switch only */
	uint8_t head_line[VNET_CACHE_LINE - sizeof(uint32_t)];
	uint32_t tail;                  /* written by the consumer only */
	uint8_t tail_line[VNET_CACHE_LINE - sizeof(uint32_t)];
	struct vnet_slot slot[];
};

_Static_assert(offsetof(struct vnet_ring, tail) == VNET_CACHE_LINE, "tail on its own line");
_Static_assert(sizeof(struct vnet_ring) == 2 * VNET_CACHE_LINE, "slots start a cache line");

#define VNET_RING_BYTES(slots) (sizeof(struct vnet_ring) + (size_t)(slots) * VNET_SLOT_SIZE)

/* Why a frame, or one delivery of it, was dropped. */
enum vnet_drop {
	VNET_DROP_RUNT,                 /* shorter than an Ethernet header */
	VNET_DROP_OVERSIZE,             /* longer than header (+ 802.1Q tag) + MTU */
	VNET_DROP_BAD_SRC_MAC,          /* group or all-zero source (802.3 3.2.3) */
	VNET_DROP_SPOOFED,              /* a source the port may not use (port security) */
	VNET_DROP_DETACHED,             /* sent on a port with no adapter */
	VNET_DROP_NO_LINK,              /* sender's or receiver's link is down */
	VNET_DROP_STORM,                /* over the port's broadcast/multicast rate */
	VNET_DROP_FILTERED,             /* destination is on the port it came from */
	VNET_DROP_RX_FULL,              /* the receiver's ring is full */
	VNET_DROP_RING_CORRUPT,         /* the receiver's ring indexes are impossible */
	VNET_DROP_REASONS,
};

struct vnet_counters {
	uint64_t rx_frames;             /* accepted from the port(s) */
	uint64_t rx_bytes;
	uint64_t tx_frames;             /* written into the port's (ports') ring */
	uint64_t tx_bytes;
	uint64_t drops[VNET_DROP_REASONS];
};

/*
 * Source addresses a port may use besides its adapter's: 0 for a plain
 * guest, up to VNET_ALLOW_MACS_MAX for a bridge; VNET_ALLOW_MACS_ANY turns
 * port security off (the switch benchmark and the learning tests, whose
 * ports stand for whole segments).
 */
#define VNET_ALLOW_MACS_MAX 32
#define VNET_ALLOW_MACS_ANY UINT32_MAX

struct vnet_port_mac {
	uint64_t mac;                   /* 0: unused */
	uint64_t seen_ms;               /* last frame from it */
};

struct vnet_port {
	struct vnet_ring *ring;         /* NULL: no adapter attached */
	uint64_t own_mac;               /* the adapter's address as a key; 0: none */
	uint32_t allow_macs;            /* see VNET_ALLOW_MACS_MAX */
	struct vnet_port_mac extra_mac[VNET_ALLOW_MACS_MAX];
	uint32_t slot_mask;             /* slots - 1, fixed at attach */
	uint32_t head;                  /* the switch's own copy of ring->head */
	bool link_up;
	uint64_t storm_tokens;          /* in 1/VNET_STORM_TOKEN frames */
	uint64_t storm_refill_ms;
	struct vnet_counters stats;
};

/*
 * MAC learning table: open addressing, linear probing over at most
 * VNET_MAC_PROBE entries, so a lookup costs a hash and a few compares.
 * An entry never becomes empty again once used (forgotten entries stay as
 * tombstones that lookups step over); stale and forgotten entries are
 * reused by new addresses. When all entries in reach of an address are
 * live it is not learned, and frames to it are flooded.
 */
#define VNET_MAC_TABLE_BITS 8
#define VNET_MAC_TABLE_SIZE (1u << VNET_MAC_TABLE_BITS)
#define VNET_MAC_PROBE 16
#define VNET_PORT_NONE 0xffff

struct vnet_mac_entry {
	uint64_t mac;                   /* the address as 48 bits; 0: never used */
	uint64_t seen_ms;               /* last frame from it (learned entries) */
	uint16_t port;                  /* VNET_PORT_NONE: forgotten */
	bool is_static;                 /* an attached adapter's own address */
};

/* 802.1D 7.9.2, table 7-5: the recommended ageing time. */
#define VNET_AGEING_DEFAULT_MS (300 * 1000)

/*
 * Storm limit: a token bucket per port for broadcast and multicast frames.
 * A frame costs VNET_STORM_TOKEN tokens; a port earns storm_pps tokens a
 * millisecond, so storm_pps frames a second, and saves at most
 * storm_burst frames. The defaults are far above what an idle network's
 * ARP, DHCP and neighbour discovery need.
 */
#define VNET_STORM_TOKEN 1000
#define VNET_STORM_PPS_DEFAULT 10000
#define VNET_STORM_BURST_DEFAULT 1000
#define VNET_STORM_LIMIT_MAX 1000000    /* for both, keeps the arithmetic in 64 bits */

struct vnet_switch {
	char name[VNET_NAME_MAX];
	uint32_t mtu;
	uint32_t frame_max;             /* untagged; a tagged frame may be 4 bytes longer */
	uint64_t ageing_ms;
	uint32_t storm_pps;             /* 0: no limit */
	uint32_t storm_burst;
	uint32_t attached;              /* bit n: port n has an adapter */
	/*
	 * Held by every call below that reads or changes the ports, the MAC
	 * table, the statistics or the DHCP server, so senders on several CPUs
	 * later need no other change; beside the fields every frame reads, in
	 * the same cache line. A port's ring is not under it: it has one
	 * producer (the switch, under the lock) and one consumer (the port's
	 * VM), which synchronize through its indices.
	 */
	struct spinlock lock;
	struct vnet_port port[VNET_MAX_PORTS];
	struct vnet_mac_entry mac_table[VNET_MAC_TABLE_SIZE];
	struct vnet_counters stats;
	struct dhcp_server dhcp;
};

/* Errors of the calls that return int. */
#define VNET_ERR_INVALID (-1)           /* bad argument: index, MTU, ring, MAC, rate */
#define VNET_ERR_NO_PORT (-2)           /* every port has an adapter */
#define VNET_ERR_MAC_IN_USE (-3)        /* another port's or the DHCP server's MAC */

/*
 * An empty network named name (truncated to VNET_NAME_MAX - 1 bytes) with
 * the given MTU (VNET_MTU_MIN..VNET_MTU_MAX), default ageing and storm
 * limit, and a disabled DHCP server.
 */
int vnet_switch_init(struct vnet_switch *sw, const char *name, uint32_t mtu);

/* Ageing time of learned addresses, at least 1 ms. */
int vnet_switch_set_ageing(struct vnet_switch *sw, uint64_t ageing_ms);

/*
 * Broadcast/multicast frames a port may send per second, and how many it
 * may save up (1..VNET_STORM_LIMIT_MAX each); pps 0 lifts the limit.
 */
int vnet_switch_set_storm_limit(struct vnet_switch *sw, uint32_t pps, uint32_t burst);

/*
 * Configures the network's DHCP server (dhcp_server_configure), refusing
 * a server MAC that an attached adapter uses. Returns 0 or -1 with err.
 */
int vnet_switch_configure_dhcp(struct vnet_switch *sw, const struct dhcp_settings *s,
			       char *err, size_t err_size);

/*
 * Attaches an adapter with address mac (unicast; NULL for none), which
 * may send with allow_macs further source addresses (0..
 * VNET_ALLOW_MACS_MAX, or VNET_ALLOW_MACS_ANY), and its receive ring of
 * `slots` slots (a power of two, VNET_RING_MIN_SLOTS..VNET_RING_MAX_SLOTS)
 * to the lowest free port, link up. The ring's indexes are set to 0, so
 * its consumer must not run before this returns. Returns the port number,
 * or VNET_ERR_*.
 */
int vnet_port_attach(struct vnet_switch *sw, const uint8_t *mac, uint32_t allow_macs,
		     struct vnet_ring *ring, uint32_t slots);

/*
 * Unplugs the adapter of a port: the addresses learned on it are
 * forgotten, nothing more is written to its ring, and the ring belongs to
 * the caller again. Its counters stay readable until the next attach.
 */
int vnet_port_detach(struct vnet_switch *sw, unsigned port);

/* Link state of an attached port; frames neither leave nor reach a port whose link is down. */
int vnet_port_set_link(struct vnet_switch *sw, unsigned port, bool up);

/*
 * Switches one frame of len bytes that the adapter on src_port sent. The
 * frame may be in memory the guest can change: it is read once for the
 * forwarding decision and once per copy. Returns the number of rings it
 * was written into (the DHCP server's replies count).
 */
unsigned vnet_switch_send(struct vnet_switch *sw, unsigned src_port, const void *frame,
			  size_t len, uint64_t now_ms);

/* Counters of one port (VNET_ERR_INVALID for a bad index) and of the network. */
int vnet_port_stats(struct vnet_switch *sw, unsigned port, struct vnet_counters *out);
void vnet_switch_stats(struct vnet_switch *sw, struct vnet_counters *out);

/*
 * Consumer side, for device models and tests: takes the oldest frame of a
 * ring of `slots` slots into buf (cap bytes). Returns its length, 0 if the
 * ring is empty, or VNET_ERR_INVALID with nothing taken if the indexes or
 * the slot's length are impossible or the frame does not fit.
 */
int vnet_ring_pop(struct vnet_ring *ring, uint32_t slots, void *buf, size_t cap);

/*
 * The same without the copy, for a consumer that copies the frame to its
 * final place itself: *frame points at the oldest frame in the ring
 * (its length is returned; 0: empty; VNET_ERR_INVALID as above), which
 * stays there until vnet_ring_consume gives its slot back to the switch.
 */
int vnet_ring_peek(const struct vnet_ring *ring, uint32_t slots, const void **frame);
void vnet_ring_consume(struct vnet_ring *ring);

#endif
