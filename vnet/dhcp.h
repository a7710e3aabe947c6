/*
 * The DHCP server of a virtual network (RFC 2131, options from RFC 2132),
 * and the wire formats that it and the switch (vnet/switch.h) read:
 * Ethernet, ARP, IPv4, UDP and BOOTP.
 *
 * The server belongs to the network, not to any guest: it runs in the
 * hypervisor and hands out addresses to whatever adapter asks. Every frame
 * it is given comes from a guest and is hostile: each header is copied once
 * into a local structure before any field of it is used (a guest may change
 * its buffer while the server reads it), every length is bounded by the
 * length of the frame, and a frame the server cannot parse is counted and
 * dropped, never answered.
 *
 * What the server does not do, on purpose:
 *   - Relayed requests (giaddr != 0) are ignored: a virtual network is one
 *     link, there is no relay agent on it.
 *   - Leases are keyed by the client hardware address (chaddr), which must
 *     be the Ethernet source of the frame; the client identifier (option
 *     61) is not used. This keeps one guest adapter from taking leases in
 *     the name of others.
 *   - A chaddr costs a guest nothing to invent, so leases are also counted
 *     per switch port: a port holds at most max_leases offered or bound
 *     addresses at a time (the switch gives 1 + the addresses its port
 *     security lets the port use). Past that a DISCOVER gets no OFFER and
 *     a REQUEST a NAK, counted as port_full: 128 made-up clients on one
 *     port cannot empty the pool.
 *   - Option overload (option 52, RFC 2132 9.3) is supported: the 'file'
 *     and then the 'sname' field are parsed as further option areas, each
 *     of which must end with the end option (RFC 2131 4.1).
 *   - Several instances of an option the server reads (12, 52, 53, 50, 54) are
 *     refused as malformed rather than concatenated (RFC 3396): no client
 *     has a reason to split a 1- or 4-octet option.
 *   - Replies carry the whole parameter set (mask, router, DNS, lease
 *     times) whether the parameter request list (option 55) asks for it or
 *     not; the set is small and fixed.
 *   - The UDP checksum of requests is not verified: a guest with checksum
 *     offload sends only the pseudo-header sum there. Replies carry none
 *     (0, allowed for UDP over IPv4 by RFC 768).
 *
 * The server also answers ARP requests for its own address, so that a
 * renewing client can unicast to it (RFC 2131 4.4.5).
 *
 * Addresses in struct dhcp_settings and struct dhcp_lease are in host byte
 * order (10.0.0.1 is 0x0a000001); DHCP_IPV4() builds one.
 */
#ifndef VNET_DHCP_H
#define VNET_DHCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "wire fields are converted with byte swaps");

/* Wire fields marked "big-endian" are converted with these. */
static inline uint16_t vnet_be16(uint16_t v)
{
	return __builtin_bswap16(v);
}

static inline uint32_t vnet_be32(uint32_t v)
{
	return __builtin_bswap32(v);
}

/* Ethernet (IEEE 802.3 clause 3.2, Ethernet II type field). */
#define ETH_ALEN 6
#define ETH_HLEN 14
#define ETH_TYPE_IPV4 0x0800
#define ETH_TYPE_ARP 0x0806
#define ETH_TYPE_VLAN 0x8100             /* IEEE 802.1Q tag protocol identifier */
#define ETH_VLAN_TAG_LEN 4
/* 802.3 4.4.2: 64 octets minimum, less the FCS a virtual NIC never carries. */
#define ETH_MIN_FRAME 60

struct eth_hdr {
	uint8_t dst[ETH_ALEN];
	uint8_t src[ETH_ALEN];
	uint16_t type;                  /* big-endian */
} __attribute__((packed));

_Static_assert(sizeof(struct eth_hdr) == ETH_HLEN, "802.3 3.2: 6 + 6 + 2 octets");

/* ARP for IPv4 over Ethernet (RFC 826). */
#define ARP_HTYPE_ETHERNET 1
#define ARP_OP_REQUEST 1
#define ARP_OP_REPLY 2

struct arp_ipv4 {
	uint16_t htype;                 /* big-endian */
	uint16_t ptype;                 /* big-endian, an Ethernet type */
	uint8_t hlen;
	uint8_t plen;
	uint16_t oper;                  /* big-endian */
	uint8_t sha[ETH_ALEN];
	uint32_t spa;                   /* big-endian */
	uint8_t tha[ETH_ALEN];
	uint32_t tpa;                   /* big-endian */
} __attribute__((packed));

_Static_assert(sizeof(struct arp_ipv4) == 28, "RFC 826 for 6-octet MACs, 4-octet IPs");

/* IPv4 (RFC 791 3.1). */
#define IPV4_VERSION 4
#define IPV4_IHL_MIN 5                  /* in 32-bit words: no options */
#define IPV4_PROTO_UDP 17
#define IPV4_FLAG_MF 0x2000
#define IPV4_FRAG_OFFSET 0x1fff
#define IPV4_TTL 64                     /* RFC 1700's recommended default */
#define IPV4_BROADCAST 0xffffffffu

struct ipv4_hdr {
	uint8_t version_ihl;            /* version << 4 | header length in words */
	uint8_t tos;
	uint16_t total_length;          /* big-endian, header included */
	uint16_t id;                    /* big-endian */
	uint16_t frag;                  /* big-endian: flags and fragment offset */
	uint8_t ttl;
	uint8_t protocol;
	uint16_t checksum;              /* one's complement of the header sum */
	uint32_t src;                   /* big-endian */
	uint32_t dst;                   /* big-endian */
} __attribute__((packed));

_Static_assert(sizeof(struct ipv4_hdr) == 20, "RFC 791 3.1: header without options");

/* UDP (RFC 768). */
#define UDP_PORT_BOOTPS 67
#define UDP_PORT_BOOTPC 68

struct udp_hdr {
	uint16_t src_port;              /* big-endian */
	uint16_t dst_port;              /* big-endian */
	uint16_t length;                /* big-endian, header included */
	uint16_t checksum;              /* 0: none */
} __attribute__((packed));

_Static_assert(sizeof(struct udp_hdr) == 8, "RFC 768");

/* BOOTP/DHCP message, fixed part (RFC 2131 2, figure 1), and the magic cookie. */
#define BOOTP_OP_REQUEST 1
#define BOOTP_OP_REPLY 2
#define BOOTP_HTYPE_ETHERNET 1
#define BOOTP_FLAG_BROADCAST 0x8000
/* RFC 1542 2.1: relay agents and clients expect at least 300 octets. */
#define BOOTP_MIN_MESSAGE 300

struct bootp_hdr {
	uint8_t op;
	uint8_t htype;
	uint8_t hlen;
	uint8_t hops;
	uint32_t xid;                   /* opaque, echoed */
	uint16_t secs;                  /* big-endian */
	uint16_t flags;                 /* big-endian */
	uint32_t ciaddr;                /* big-endian, all four */
	uint32_t yiaddr;
	uint32_t siaddr;
	uint32_t giaddr;
	uint8_t chaddr[16];
	uint8_t sname[64];
	uint8_t file[128];
	uint8_t magic[4];               /* 99.130.83.99 (RFC 2131 3) */
} __attribute__((packed));

_Static_assert(sizeof(struct bootp_hdr) == 240, "RFC 2131 figure 1 plus the cookie");

/* The options this server reads or writes (RFC 2132). */
enum dhcp_option {
	DHCP_OPT_PAD = 0,               /* 3.1 */
	DHCP_OPT_SUBNET_MASK = 1,       /* 3.3 */
	DHCP_OPT_ROUTER = 3,            /* 3.5 */
	DHCP_OPT_DNS = 6,               /* 3.8 */
	DHCP_OPT_HOST_NAME = 12,        /* 3.14 */
	DHCP_OPT_REQUESTED_IP = 50,     /* 9.1 */
	DHCP_OPT_LEASE_TIME = 51,       /* 9.2 */
	DHCP_OPT_OVERLOAD = 52,         /* 9.3 */
	DHCP_OPT_MESSAGE_TYPE = 53,     /* 9.6 */
	DHCP_OPT_SERVER_ID = 54,        /* 9.7 */
	DHCP_OPT_RENEWAL_TIME = 58,     /* 9.11, T1 */
	DHCP_OPT_REBINDING_TIME = 59,   /* 9.12, T2 */
	DHCP_OPT_END = 255,             /* 3.2 */
};

/* Option 52 values: which fixed fields hold further options. */
#define DHCP_OVERLOAD_FILE 1
#define DHCP_OVERLOAD_SNAME 2

/* Option 53 values (RFC 2132 9.6). */
enum dhcp_msg_type {
	DHCP_DISCOVER = 1,
	DHCP_OFFER = 2,
	DHCP_REQUEST = 3,
	DHCP_DECLINE = 4,
	DHCP_ACK = 5,
	DHCP_NAK = 6,
	DHCP_RELEASE = 7,
	DHCP_INFORM = 8,
};

/*
 * The largest frame the server sends: a BOOTP message padded to its
 * 300-octet minimum, whose option area (60 octets after the fixed part)
 * holds every option a reply can carry (checked in dhcp.c).
 */
#define DHCP_REPLY_OPTIONS_MAX (BOOTP_MIN_MESSAGE - sizeof(struct bootp_hdr))
#define DHCP_FRAME_MAX (sizeof(struct eth_hdr) + sizeof(struct ipv4_hdr) + \
			sizeof(struct udp_hdr) + BOOTP_MIN_MESSAGE)

#define DHCP_IPV4(a, b, c, d) \
	((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

#define DHCP_MAX_DNS 2
#define DHCP_MAX_LEASES 128
/* A client's host name as the lease table keeps it, NUL included. */
#define DHCP_HOSTNAME_MAX 32
/* Lease times accepted in the settings, in seconds. */
#define DHCP_LEASE_MIN_S 60
#define DHCP_LEASE_MAX_S 0x7fffffffu    /* 0xffffffff would mean "infinite" */

struct dhcp_settings {
	bool enabled;
	uint32_t server_ip;             /* inside the subnet; never leased */
	uint8_t server_mac[ETH_ALEN];   /* unicast, used by no adapter */
	uint32_t pool_start;            /* inclusive, inside the subnet */
	uint32_t pool_end;              /* inclusive, >= pool_start */
	uint32_t netmask;               /* contiguous, /1 to /30 */
	uint32_t gateway;               /* router option; 0: none */
	uint32_t dns[DHCP_MAX_DNS];     /* DNS servers option; 0: unused */
	uint32_t lease_s;               /* DHCP_LEASE_MIN_S..DHCP_LEASE_MAX_S */
};

/*
 * State of an address in the lease table. RELEASED covers released and
 * expired leases alike: the address is free, but the table remembers whose
 * it was so that the same client gets it again until it has to be given to
 * another one (pool exhausted).
 */
enum dhcp_lease_state {
	DHCP_LEASE_FREE,                /* slot unused */
	DHCP_LEASE_OFFERED,             /* held for the client until until_ms */
	DHCP_LEASE_BOUND,               /* the client's until until_ms */
	DHCP_LEASE_RELEASED,            /* free since until_ms, remembered */
	DHCP_LEASE_DECLINED,            /* unusable until until_ms (RFC 2131 4.3.3) */
};

struct dhcp_lease {
	uint8_t mac[ETH_ALEN];          /* zero for a declined address */
	uint8_t state;                  /* enum dhcp_lease_state */
	uint8_t port;                   /* switch port the client last asked from */
	uint32_t ip;
	uint64_t until_ms;
	/*
	 * Option 12 of the client's last DISCOVER or REQUEST, for display:
	 * truncated, anything but printable ASCII replaced by '?'.
	 */
	char hostname[DHCP_HOSTNAME_MAX];
};

struct dhcp_counters {
	/* Client messages served, by type. */
	uint64_t discover;
	uint64_t request;
	uint64_t decline;
	uint64_t release;
	uint64_t inform;
	/* Replies. */
	uint64_t offer;
	uint64_t ack;
	uint64_t nak;
	uint64_t arp_reply;
	/* DISCOVERs left unanswered because no address was free. */
	uint64_t no_address;
	/* DISCOVERs unanswered and REQUESTs refused: the port holds max_leases. */
	uint64_t port_full;
	/* Unparsable: bad IPv4 header, lengths, options, message type. */
	uint64_t malformed;
	/*
	 * Well formed but not served: op not BOOTREQUEST, htype or hlen not
	 * Ethernet, no magic cookie (plain BOOTP), relayed, chaddr not the
	 * sender, or a type only servers send.
	 */
	uint64_t ignored;
};

struct dhcp_server {
	struct dhcp_settings cfg;
	struct dhcp_lease lease[DHCP_MAX_LEASES];
	struct dhcp_counters stats;
	uint16_t ip_id;                 /* IPv4 identification of the next reply */
};

/* A disabled server with an empty lease table. */
void dhcp_server_init(struct dhcp_server *srv);

/*
 * Checks settings; a disabled server's are not checked. Returns 0, or -1
 * with a message naming the offending setting in err (always
 * NUL-terminated when err_size > 0).
 */
int dhcp_settings_check(const struct dhcp_settings *s, char *err, size_t err_size);

/*
 * Checks and applies settings (-1 and nothing changed if they are bad).
 * Leases whose address is still in the new pool are kept; the others are
 * forgotten.
 */
int dhcp_server_configure(struct dhcp_server *srv, const struct dhcp_settings *s,
			  char *err, size_t err_size);

enum dhcp_verdict {
	DHCP_PASS,                      /* not a DHCP client message: switch it as usual */
	DHCP_TAKEN,                     /* a DHCP client message: the server consumed it */
};

/* Where a client message came from: the switch port, and how many leases it may hold. */
struct dhcp_client_port {
	unsigned port;                  /* < 256 */
	unsigned max_leases;            /* >= 1 */
};

/*
 * Gives a frame a guest sent on port from->port to the server. A DHCP client message (IPv4,
 * UDP to port 67, to the broadcast address or the server's) is consumed;
 * anything else passes, though an ARP request for the server's address is
 * answered too. When there is an answer, it is written as a whole Ethernet
 * frame to reply (DHCP_FRAME_MAX bytes) and its length to *reply_len,
 * which is 0 otherwise. now_ms is the caller's monotonic clock.
 */
enum dhcp_verdict dhcp_server_input(struct dhcp_server *srv, const struct dhcp_client_port *from,
				    const uint8_t *frame, size_t len, uint64_t now_ms,
				    uint8_t *reply, size_t *reply_len);

/*
 * Copies the entries of the lease table in use into out (at most max),
 * with their state as of now_ms, and returns how many it copied.
 */
unsigned dhcp_server_leases(const struct dhcp_server *srv, uint64_t now_ms,
			    struct dhcp_lease *out, unsigned max);

#endif
