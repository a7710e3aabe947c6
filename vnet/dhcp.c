#include "vnet/dhcp.h"

#include <string.h>

#include "lib/fmt.h"

/* RFC 2131 3: the options field starts with 99.130.83.99. */
static const uint8_t dhcp_magic[4] = { 99, 130, 83, 99 };

#define MS_PER_S 1000ULL
/* RFC 2131 4.3.1 leaves how long an offered address is held to the server. */
#define DHCP_OFFER_HOLD_MS (60 * MS_PER_S)
/* RFC 2131 4.3.3: a declined address is "not available"; for how long is ours. */
#define DHCP_DECLINE_HOLD_MS (10 * 60 * MS_PER_S)

/* Netmasks must leave a network, a broadcast and at least one host address. */
#define NETMASK_MIN_HOST_BITS 2

#define ARP_PLEN_IPV4 4
#define IPV4_HEADER_WORD 4              /* the IHL field counts 32-bit words */

#define IP_FMT "%u.%u.%u.%u"
#define IP_ARGS(ip) (unsigned)((ip) >> 24), (unsigned)((ip) >> 16 & 0xff), \
		    (unsigned)((ip) >> 8 & 0xff), (unsigned)((ip) & 0xff)

/*
 * Options in a reply: message type (3 octets), server identifier, lease
 * time, T1, T2, subnet mask, router (6 each), the DNS servers and the end
 * option. They fit the option area of a minimum-size BOOTP message, so
 * every reply is exactly DHCP_FRAME_MAX bytes.
 */
#define OPTION_HEADER 2                 /* code and length octets */
#define REPLY_OPTIONS_WORST (OPTION_HEADER + 1 + 6 * (OPTION_HEADER + 4) + \
			     OPTION_HEADER + 4 * DHCP_MAX_DNS + 1)
_Static_assert(REPLY_OPTIONS_WORST <= DHCP_REPLY_OPTIONS_MAX,
	       "reply options fit a 300-octet BOOTP message");
_Static_assert(ETH_MIN_FRAME <= DHCP_FRAME_MAX, "an ARP reply fits the reply buffer");

/* A client message as far as the server reads it, each part copied once. */
struct dhcp_request {
	uint8_t eth_src[ETH_ALEN];
	struct dhcp_client_port from;
	struct bootp_hdr bootp;
	uint8_t type;                   /* option 53; 0: absent (0 is no type) */
	uint8_t overload;               /* option 52; 0: absent */
	bool has_requested_ip;
	bool has_server_id;
	uint32_t requested_ip;          /* option 50, host order */
	uint32_t server_id;             /* option 54, host order */
	char hostname[DHCP_HOSTNAME_MAX]; /* option 12, sanitised; "" if absent */
};

/* The longest option value the server reads: a host name, as far as it is kept. */
#define OPTION_VALUE_MAX (DHCP_HOSTNAME_MAX - 1)
#define ASCII_PRINTABLE_FIRST 0x20
#define ASCII_PRINTABLE_LAST 0x7e

/* One's complement sum of 16-bit words (RFC 791 3.1, RFC 1071). */
static uint16_t ipv4_checksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static bool mac_is_unicast(const uint8_t *mac)
{
	static const uint8_t zero[ETH_ALEN];

	/* IEEE 802.3 3.2.3: the first bit of the address marks a group. */
	return !(mac[0] & 1) && memcmp(mac, zero, ETH_ALEN);
}

static bool in_subnet(const struct dhcp_settings *s, uint32_t ip)
{
	return (ip & s->netmask) == (s->server_ip & s->netmask);
}

static bool in_pool(const struct dhcp_settings *s, uint32_t ip)
{
	return ip >= s->pool_start && ip <= s->pool_end;
}

/* Addresses of the network's own hosts are never leased, even in the pool. */
static bool is_reserved(const struct dhcp_settings *s, uint32_t ip)
{
	if (ip == s->server_ip || ip == s->gateway)
		return true;
	for (unsigned i = 0; i < DHCP_MAX_DNS; i++)
		if (ip == s->dns[i])
			return true;
	return false;
}

/* At most DHCP_MAX_DNS + 2 addresses are reserved, so this ends quickly. */
static bool pool_has_unreserved(const struct dhcp_settings *s)
{
	for (uint32_t ip = s->pool_start;; ip++) {
		if (!is_reserved(s, ip))
			return true;
		if (ip == s->pool_end)
			return false;
	}
}

/* A host address of the subnet: neither the network nor the broadcast address. */
static bool is_host_address(const struct dhcp_settings *s, uint32_t ip)
{
	uint32_t host = ip & ~s->netmask;

	return in_subnet(s, ip) && host != 0 && host != ~s->netmask;
}

int dhcp_settings_check(const struct dhcp_settings *s, char *err, size_t err_size)
{
	uint32_t host_bits = ~s->netmask;

	if (!s->enabled)
		return 0;
	if (s->lease_s < DHCP_LEASE_MIN_S || s->lease_s > DHCP_LEASE_MAX_S) {
		fmt_snprintf(err, err_size, "lease time %u s is outside %u..%u s",
			     (unsigned)s->lease_s, DHCP_LEASE_MIN_S, DHCP_LEASE_MAX_S);
		return -1;
	}
	/* A contiguous mask's host bits are one run of ones from bit 0. */
	if (s->netmask == 0 || (host_bits & (host_bits + 1))) {
		fmt_snprintf(err, err_size, "netmask " IP_FMT " is not a contiguous mask",
			     IP_ARGS(s->netmask));
		return -1;
	}
	if (host_bits < (1u << NETMASK_MIN_HOST_BITS) - 1) {
		fmt_snprintf(err, err_size, "netmask " IP_FMT " leaves no room for hosts",
			     IP_ARGS(s->netmask));
		return -1;
	}
	if (!mac_is_unicast(s->server_mac)) {
		fmt_snprintf(err, err_size, "server MAC is not a unicast address");
		return -1;
	}
	if (!is_host_address(s, s->server_ip)) {
		fmt_snprintf(err, err_size, "server address " IP_FMT
			     " is the network or broadcast address of its subnet",
			     IP_ARGS(s->server_ip));
		return -1;
	}
	if (s->pool_start > s->pool_end) {
		fmt_snprintf(err, err_size, "pool start " IP_FMT " is after pool end " IP_FMT,
			     IP_ARGS(s->pool_start), IP_ARGS(s->pool_end));
		return -1;
	}
	if (!is_host_address(s, s->pool_start) || !is_host_address(s, s->pool_end)) {
		fmt_snprintf(err, err_size, "pool " IP_FMT ".." IP_FMT
			     " is not inside the server's subnet " IP_FMT "/" IP_FMT,
			     IP_ARGS(s->pool_start), IP_ARGS(s->pool_end),
			     IP_ARGS(s->server_ip & s->netmask), IP_ARGS(s->netmask));
		return -1;
	}
	if (s->gateway && !is_host_address(s, s->gateway)) {
		fmt_snprintf(err, err_size, "gateway " IP_FMT " is not a host of the subnet",
			     IP_ARGS(s->gateway));
		return -1;
	}
	if (!pool_has_unreserved(s)) {
		fmt_snprintf(err, err_size, "pool " IP_FMT ".." IP_FMT
			     " holds only the server's, gateway's or DNS addresses",
			     IP_ARGS(s->pool_start), IP_ARGS(s->pool_end));
		return -1;
	}
	return 0;
}

void dhcp_server_init(struct dhcp_server *srv)
{
	memset(srv, 0, sizeof(*srv));
}

int dhcp_server_configure(struct dhcp_server *srv, const struct dhcp_settings *s,
			  char *err, size_t err_size)
{
	if (dhcp_settings_check(s, err, err_size))
		return -1;
	srv->cfg = *s;
	if (!s->enabled)
		return 0;
	for (unsigned i = 0; i < DHCP_MAX_LEASES; i++) {
		struct dhcp_lease *l = &srv->lease[i];

		if (!in_pool(s, l->ip) || is_reserved(s, l->ip))
			memset(l, 0, sizeof(*l));
	}
	return 0;
}

/* The state of a lease at now: offers and leases run out, declines too. */
static enum dhcp_lease_state lease_state(const struct dhcp_lease *l, uint64_t now)
{
	switch (l->state) {
	case DHCP_LEASE_OFFERED:
	case DHCP_LEASE_BOUND:
		return now < l->until_ms ? l->state : DHCP_LEASE_RELEASED;
	case DHCP_LEASE_DECLINED:
		return now < l->until_ms ? DHCP_LEASE_DECLINED : DHCP_LEASE_FREE;
	default:
		return l->state;
	}
}

/* The client's current or remembered lease. */
static struct dhcp_lease *lease_by_mac(struct dhcp_server *srv, const uint8_t *mac, uint64_t now)
{
	for (unsigned i = 0; i < DHCP_MAX_LEASES; i++) {
		struct dhcp_lease *l = &srv->lease[i];
		enum dhcp_lease_state st = lease_state(l, now);

		if ((st == DHCP_LEASE_OFFERED || st == DHCP_LEASE_BOUND ||
		     st == DHCP_LEASE_RELEASED) && !memcmp(l->mac, mac, ETH_ALEN))
			return l;
	}
	return NULL;
}

/* Free, in the pool, and neither reserved nor held or remembered for anyone. */
static bool address_free(struct dhcp_server *srv, uint32_t ip, uint64_t now)
{
	if (!in_pool(&srv->cfg, ip) || is_reserved(&srv->cfg, ip))
		return false;
	for (unsigned i = 0; i < DHCP_MAX_LEASES; i++)
		if (srv->lease[i].ip == ip && lease_state(&srv->lease[i], now) != DHCP_LEASE_FREE)
			return false;
	return true;
}

/*
 * The lowest free address of the pool. Only the lease table and the
 * reserved addresses make one unfree, so the walk ends within
 * DHCP_MAX_LEASES + DHCP_MAX_DNS + 3 steps however large the pool is.
 */
static bool first_free_address(struct dhcp_server *srv, uint64_t now, uint32_t *out)
{
	for (uint32_t ip = srv->cfg.pool_start;; ip++) {
		if (address_free(srv, ip, now)) {
			*out = ip;
			return true;
		}
		if (ip == srv->cfg.pool_end)
			return false;
	}
}

static struct dhcp_lease *free_slot(struct dhcp_server *srv, uint64_t now)
{
	for (unsigned i = 0; i < DHCP_MAX_LEASES; i++)
		if (lease_state(&srv->lease[i], now) == DHCP_LEASE_FREE)
			return &srv->lease[i];
	return NULL;
}

/* The released or expired lease that has been free longest. */
static struct dhcp_lease *oldest_released(struct dhcp_server *srv, uint64_t now)
{
	struct dhcp_lease *oldest = NULL;

	for (unsigned i = 0; i < DHCP_MAX_LEASES; i++) {
		struct dhcp_lease *l = &srv->lease[i];

		if (lease_state(l, now) == DHCP_LEASE_RELEASED &&
		    (!oldest || l->until_ms < oldest->until_ms))
			oldest = l;
	}
	return oldest;
}

/*
 * A new lease for a client the table does not know (RFC 2131 4.3.1): the
 * address it asks for if that is free, else the lowest free one, else the
 * address some other client released longest ago. NULL when the pool is
 * exhausted. The caller sets the state.
 */
static struct dhcp_lease *lease_allocate(struct dhcp_server *srv, const struct dhcp_request *req,
					 uint64_t now)
{
	struct dhcp_lease *oldest = oldest_released(srv, now);
	struct dhcp_lease *slot = free_slot(srv, now);
	uint32_t ip;

	if (!slot)
		slot = oldest;
	if (!slot)
		return NULL;
	if (req->has_requested_ip && address_free(srv, req->requested_ip, now)) {
		ip = req->requested_ip;
	} else if (!first_free_address(srv, now, &ip)) {
		if (!oldest)
			return NULL;
		slot = oldest;
		ip = oldest->ip;
	}
	memcpy(slot->mac, req->bootp.chaddr, ETH_ALEN);
	slot->ip = ip;
	return slot;
}

struct reply_options {
	uint8_t buf[DHCP_REPLY_OPTIONS_MAX];
	size_t len;
};

static void put_option(struct reply_options *o, uint8_t code, const void *value, uint8_t len)
{
	o->buf[o->len++] = code;
	o->buf[o->len++] = len;
	memcpy(o->buf + o->len, value, len);
	o->len += len;
}

static void put_u32_option(struct reply_options *o, uint8_t code, uint32_t value)
{
	uint32_t be = vnet_be32(value);

	put_option(o, code, &be, sizeof(be));
}

/*
 * The options of a reply (RFC 2131 table 3): a NAK carries only its type
 * and the server identifier; an ACK to an INFORM (yiaddr 0) no lease times.
 */
static void reply_options(const struct dhcp_settings *cfg, uint8_t type, uint32_t yiaddr,
			  struct reply_options *o)
{
	uint32_t dns[DHCP_MAX_DNS];
	uint8_t dns_count = 0;

	put_option(o, DHCP_OPT_MESSAGE_TYPE, &type, sizeof(type));
	put_u32_option(o, DHCP_OPT_SERVER_ID, cfg->server_ip);
	if (type == DHCP_NAK)
		return;
	if (yiaddr) {
		/* RFC 2131 4.4.5: T1 defaults to half the lease, T2 to 7/8 of it. */
		put_u32_option(o, DHCP_OPT_LEASE_TIME, cfg->lease_s);
		put_u32_option(o, DHCP_OPT_RENEWAL_TIME, cfg->lease_s / 2);
		put_u32_option(o, DHCP_OPT_REBINDING_TIME, cfg->lease_s - cfg->lease_s / 8);
	}
	put_u32_option(o, DHCP_OPT_SUBNET_MASK, cfg->netmask);
	if (cfg->gateway)
		put_u32_option(o, DHCP_OPT_ROUTER, cfg->gateway);
	for (unsigned i = 0; i < DHCP_MAX_DNS; i++)
		if (cfg->dns[i])
			dns[dns_count++] = vnet_be32(cfg->dns[i]);
	if (dns_count)
		put_option(o, DHCP_OPT_DNS, dns, (uint8_t)(dns_count * sizeof(dns[0])));
}

static void count_reply(struct dhcp_counters *c, uint8_t type)
{
	if (type == DHCP_OFFER)
		c->offer++;
	else if (type == DHCP_ACK)
		c->ack++;
	else
		c->nak++;
}

/*
 * Builds an OFFER, ACK or NAK as a whole frame; yiaddr is the address
 * given (0 for an INFORM's ACK and for a NAK). Returns its length.
 */
static size_t build_reply(struct dhcp_server *srv, const struct dhcp_request *req, uint8_t type,
			  uint32_t yiaddr, uint8_t *out)
{
	const struct dhcp_settings *cfg = &srv->cfg;
	uint32_t ciaddr = vnet_be32(req->bootp.ciaddr);
	uint16_t flags = vnet_be16(req->bootp.flags);
	struct reply_options opts = { .len = 0 };
	struct eth_hdr eth;
	struct ipv4_hdr ip;
	struct udp_hdr udp;
	struct bootp_hdr bootp;
	uint32_t dst_ip;
	uint8_t *p = out;

	/*
	 * RFC 2131 4.1, with giaddr always 0 here: a NAK is broadcast; a
	 * client that has an address (ciaddr) gets a unicast to it; one that
	 * asked for broadcast, or that gets no address, a broadcast; any
	 * other a unicast to its new address and hardware address.
	 */
	if (type == DHCP_NAK)
		dst_ip = IPV4_BROADCAST;
	else if (ciaddr)
		dst_ip = ciaddr;
	else if ((flags & BOOTP_FLAG_BROADCAST) || !yiaddr)
		dst_ip = IPV4_BROADCAST;
	else
		dst_ip = yiaddr;

	if (dst_ip == IPV4_BROADCAST)
		memset(eth.dst, 0xff, ETH_ALEN);
	else
		memcpy(eth.dst, req->bootp.chaddr, ETH_ALEN);
	memcpy(eth.src, cfg->server_mac, ETH_ALEN);
	eth.type = vnet_be16(ETH_TYPE_IPV4);

	reply_options(cfg, type, yiaddr, &opts);
	opts.buf[opts.len++] = DHCP_OPT_END;

	/* RFC 2131 table 3. */
	memset(&bootp, 0, sizeof(bootp));
	bootp.op = BOOTP_OP_REPLY;
	bootp.htype = BOOTP_HTYPE_ETHERNET;
	bootp.hlen = ETH_ALEN;
	bootp.xid = req->bootp.xid;
	bootp.flags = req->bootp.flags;
	bootp.ciaddr = type == DHCP_ACK ? req->bootp.ciaddr : 0;
	bootp.yiaddr = vnet_be32(yiaddr);
	memcpy(bootp.chaddr, req->bootp.chaddr, sizeof(bootp.chaddr));
	memcpy(bootp.magic, dhcp_magic, sizeof(bootp.magic));

	udp.src_port = vnet_be16(UDP_PORT_BOOTPS);
	udp.dst_port = vnet_be16(UDP_PORT_BOOTPC);
	udp.length = vnet_be16(sizeof(udp) + BOOTP_MIN_MESSAGE);
	udp.checksum = 0;

	ip.version_ihl = IPV4_VERSION << 4 | IPV4_IHL_MIN;
	ip.tos = 0;
	ip.total_length = vnet_be16(sizeof(ip) + sizeof(udp) + BOOTP_MIN_MESSAGE);
	ip.id = vnet_be16(srv->ip_id++);
	ip.frag = 0;
	ip.ttl = IPV4_TTL;
	ip.protocol = IPV4_PROTO_UDP;
	ip.checksum = 0;
	ip.src = vnet_be32(cfg->server_ip);
	ip.dst = vnet_be32(dst_ip);
	ip.checksum = vnet_be16(ipv4_checksum(&ip, sizeof(ip)));

	/* The rest of the 300-octet message after the options is pad (zero). */
	memset(out, 0, DHCP_FRAME_MAX);
	memcpy(p, &eth, sizeof(eth));
	p += sizeof(eth);
	memcpy(p, &ip, sizeof(ip));
	p += sizeof(ip);
	memcpy(p, &udp, sizeof(udp));
	p += sizeof(udp);
	memcpy(p, &bootp, sizeof(bootp));
	p += sizeof(bootp);
	memcpy(p, opts.buf, opts.len);

	count_reply(&srv->stats, type);
	return DHCP_FRAME_MAX;
}

static bool take_address(const uint8_t *value, uint8_t len, bool *present, uint32_t *out)
{
	uint32_t be;

	if (len != sizeof(be) || *present)
		return false;
	memcpy(&be, value, sizeof(be));
	*out = vnet_be32(be);
	*present = true;
	return true;
}

/*
 * The host name (RFC 2132 3.14: at least one octet) ends up on the
 * administrator's console: it is cut to fit and every octet that is not
 * printable ASCII becomes '?', so a guest cannot send terminal controls.
 */
static bool take_hostname(struct dhcp_request *req, const uint8_t *value, uint8_t len)
{
	size_t n = len < OPTION_VALUE_MAX ? len : OPTION_VALUE_MAX;

	if (!len || req->hostname[0])
		return false;
	for (size_t i = 0; i < n; i++)
		req->hostname[i] = value[i] >= ASCII_PRINTABLE_FIRST &&
				   value[i] <= ASCII_PRINTABLE_LAST ? (char)value[i] : '?';
	req->hostname[n] = '\0';
	return true;
}

/*
 * Takes the value of one option the server reads (RFC 2132 3.14, 9.1,
 * 9.3, 9.6, 9.7), of which value holds the first OPTION_VALUE_MAX octets
 * at most; other options are skipped. false: a length or value the option
 * cannot have, or a second instance of it.
 */
static bool take_option(struct dhcp_request *req, uint8_t code, const uint8_t *value,
			uint8_t len, bool options_field)
{
	switch (code) {
	case DHCP_OPT_HOST_NAME:
		return take_hostname(req, value, len);
	case DHCP_OPT_MESSAGE_TYPE:
		if (len != 1 || req->type || !value[0])
			return false;
		req->type = value[0];
		return true;
	case DHCP_OPT_OVERLOAD:
		/* Only the options field may say that the others hold options. */
		if (len != 1 || !options_field || req->overload || !value[0] ||
		    value[0] > (DHCP_OVERLOAD_FILE | DHCP_OVERLOAD_SNAME))
			return false;
		req->overload = value[0];
		return true;
	case DHCP_OPT_REQUESTED_IP:
		return take_address(value, len, &req->has_requested_ip, &req->requested_ip);
	case DHCP_OPT_SERVER_ID:
		return take_address(value, len, &req->has_server_id, &req->server_id);
	default:
		return true;
	}
}

/*
 * Walks one option area (RFC 2132 2): pad is a single octet, end stops
 * the walk, any other option is code, length and value. Every option must
 * lie wholly inside the area and the area must hold the end option (RFC
 * 2131 4.1). Each octet is read once, into a local, before it is used.
 */
static bool parse_options(struct dhcp_request *req, const uint8_t *area, size_t len,
			  bool options_field)
{
	size_t i = 0;

	while (i < len) {
		uint8_t code = area[i++];
		uint8_t opt_len;
		uint8_t value[OPTION_VALUE_MAX];

		if (code == DHCP_OPT_END)
			return true;
		if (code == DHCP_OPT_PAD)
			continue;
		if (i == len)
			return false;
		opt_len = area[i++];
		if (opt_len > len - i)
			return false;
		memcpy(value, area + i, opt_len < sizeof(value) ? opt_len : sizeof(value));
		if (!take_option(req, code, value, opt_len, options_field))
			return false;
		i += opt_len;
	}
	return false;
}

/*
 * The options field, then (option 52) the 'file' and the 'sname' field,
 * in the order RFC 2131 4.1 gives. The fixed fields come from the local
 * copy of the header.
 */
static bool parse_all_options(struct dhcp_request *req, const uint8_t *options, size_t len)
{
	if (!parse_options(req, options, len, true))
		return false;
	if ((req->overload & DHCP_OVERLOAD_FILE) &&
	    !parse_options(req, req->bootp.file, sizeof(req->bootp.file), false))
		return false;
	if ((req->overload & DHCP_OVERLOAD_SNAME) &&
	    !parse_options(req, req->bootp.sname, sizeof(req->bootp.sname), false))
		return false;
	return true;
}

/*
 * A BOOTREQUEST of an Ethernet client (RFC 2131 2), with the DHCP magic
 * cookie, sent directly (no relay) by the adapter its chaddr names.
 */
static bool served(const struct dhcp_request *req)
{
	const struct bootp_hdr *b = &req->bootp;

	return b->op == BOOTP_OP_REQUEST && b->htype == BOOTP_HTYPE_ETHERNET &&
	       b->hlen == ETH_ALEN && !memcmp(b->magic, dhcp_magic, sizeof(dhcp_magic)) &&
	       b->giaddr == 0 && !memcmp(b->chaddr, req->eth_src, ETH_ALEN) &&
	       mac_is_unicast(b->chaddr);
}

/* A message that names another server in option 54 is not for this one. */
static bool for_other_server(const struct dhcp_server *srv, const struct dhcp_request *req)
{
	return req->has_server_id && req->server_id != srv->cfg.server_ip;
}

static void lease_bind(const struct dhcp_server *srv, struct dhcp_lease *l, uint64_t now)
{
	l->state = DHCP_LEASE_BOUND;
	l->until_ms = now + srv->cfg.lease_s * MS_PER_S;
}

static void lease_release(struct dhcp_lease *l, uint64_t now)
{
	l->state = DHCP_LEASE_RELEASED;
	l->until_ms = now;
}

static bool lease_held(const struct dhcp_lease *l, uint64_t now)
{
	enum dhcp_lease_state st = lease_state(l, now);

	return st == DHCP_LEASE_OFFERED || st == DHCP_LEASE_BOUND;
}

/*
 * Whether the client's port may hold l, the client's lease (NULL: a new
 * one): yes if the port holds it already, else if the port holds fewer
 * than its max_leases offered or bound addresses.
 */
static bool port_has_room(struct dhcp_server *srv, const struct dhcp_request *req,
			  const struct dhcp_lease *l, uint64_t now)
{
	unsigned held = 0;

	if (l && l->port == req->from.port && lease_held(l, now))
		return true;
	for (unsigned i = 0; i < DHCP_MAX_LEASES; i++)
		held += srv->lease[i].port == req->from.port && lease_held(&srv->lease[i], now);
	if (held < req->from.max_leases)
		return true;
	srv->stats.port_full++;
	return false;
}

/* RFC 2131 4.3.1. */
static size_t on_discover(struct dhcp_server *srv, const struct dhcp_request *req, uint64_t now,
			  uint8_t *reply)
{
	struct dhcp_lease *l = lease_by_mac(srv, req->bootp.chaddr, now);

	if (!port_has_room(srv, req, l, now))
		return 0;
	if (!l)
		l = lease_allocate(srv, req, now);
	if (!l) {
		srv->stats.no_address++;
		return 0;
	}
	/* A bound client keeps its lease; anyone else gets the address held. */
	if (lease_state(l, now) != DHCP_LEASE_BOUND) {
		l->state = DHCP_LEASE_OFFERED;
		l->until_ms = now + DHCP_OFFER_HOLD_MS;
	}
	l->port = (uint8_t)req->from.port;
	memcpy(l->hostname, req->hostname, sizeof(l->hostname));
	return build_reply(srv, req, DHCP_OFFER, l->ip, reply);
}

/*
 * RFC 2131 4.3.2. In SELECTING (option 54 present) the client asks for the
 * address offered to it: ACK if that is its lease, else NAK, which is what
 * a client the pool had no address for gets. In INIT-REBOOT (option 50)
 * and RENEWING/REBINDING (ciaddr) it checks an address it had: ACK if the
 * table says it is the client's, NAK if it is another one or off the
 * subnet, and silence if the table does not know the client, as the RFC
 * requires.
 */
static size_t on_request(struct dhcp_server *srv, const struct dhcp_request *req, uint64_t now,
			 uint8_t *reply)
{
	uint32_t ciaddr = vnet_be32(req->bootp.ciaddr);
	struct dhcp_lease *l = lease_by_mac(srv, req->bootp.chaddr, now);
	bool selecting = req->has_server_id;
	uint32_t addr;

	if (for_other_server(srv, req)) {
		/* The client took another server's offer: ours is free again. */
		if (l && lease_state(l, now) == DHCP_LEASE_OFFERED)
			lease_release(l, now);
		return 0;
	}
	if (req->has_requested_ip) {
		addr = req->requested_ip;
	} else if (ciaddr && !selecting) {
		addr = ciaddr;
	} else {
		/* RFC 2131 table 5: SELECTING must name the address it wants. */
		srv->stats.malformed++;
		return 0;
	}
	if (!l && !selecting && in_subnet(&srv->cfg, addr))
		return 0;
	if (!l || l->ip != addr || !port_has_room(srv, req, l, now))
		return build_reply(srv, req, DHCP_NAK, 0, reply);
	lease_bind(srv, l, now);
	l->port = (uint8_t)req->from.port;
	memcpy(l->hostname, req->hostname, sizeof(l->hostname));
	return build_reply(srv, req, DHCP_ACK, l->ip, reply);
}

/* RFC 2131 4.3.4: the client gives its address (ciaddr) back. */
static void on_release(struct dhcp_server *srv, const struct dhcp_request *req, uint64_t now)
{
	struct dhcp_lease *l = lease_by_mac(srv, req->bootp.chaddr, now);

	if (l && !for_other_server(srv, req) && l->ip == vnet_be32(req->bootp.ciaddr) &&
	    lease_held(l, now))
		lease_release(l, now);
}

/*
 * RFC 2131 4.3.3: the client found the address (option 50) in use. It is
 * taken out of the pool for a while and no longer tied to the client,
 * whose next DISCOVER gets another one.
 */
static void on_decline(struct dhcp_server *srv, const struct dhcp_request *req, uint64_t now)
{
	struct dhcp_lease *l = lease_by_mac(srv, req->bootp.chaddr, now);

	if (!req->has_requested_ip) {
		srv->stats.malformed++;
		return;
	}
	if (!l || for_other_server(srv, req) || l->ip != req->requested_ip)
		return;
	memset(l->mac, 0, ETH_ALEN);
	memset(l->hostname, 0, sizeof(l->hostname));
	l->state = DHCP_LEASE_DECLINED;
	l->until_ms = now + DHCP_DECLINE_HOLD_MS;
}

/* The BOOTP message of a DHCP client, len bytes from msg. */
static size_t dhcp_input(struct dhcp_server *srv, const struct dhcp_client_port *from,
			 const struct eth_hdr *eth, const uint8_t *msg, size_t len, uint64_t now,
			 uint8_t *reply)
{
	struct dhcp_request req;

	memset(&req, 0, sizeof(req));
	req.from = *from;
	if (len < sizeof(req.bootp)) {
		srv->stats.malformed++;
		return 0;
	}
	memcpy(&req.bootp, msg, sizeof(req.bootp));
	memcpy(req.eth_src, eth->src, ETH_ALEN);
	if (!served(&req)) {
		srv->stats.ignored++;
		return 0;
	}
	if (!parse_all_options(&req, msg + sizeof(req.bootp), len - sizeof(req.bootp)) ||
	    !req.type) {
		srv->stats.malformed++;
		return 0;
	}
	switch (req.type) {
	case DHCP_DISCOVER:
		srv->stats.discover++;
		return on_discover(srv, &req, now, reply);
	case DHCP_REQUEST:
		srv->stats.request++;
		return on_request(srv, &req, now, reply);
	case DHCP_DECLINE:
		srv->stats.decline++;
		on_decline(srv, &req, now);
		return 0;
	case DHCP_RELEASE:
		srv->stats.release++;
		on_release(srv, &req, now);
		return 0;
	case DHCP_INFORM:
		/* RFC 2131 4.3.5: parameters only, no lease. */
		srv->stats.inform++;
		return build_reply(srv, &req, DHCP_ACK, 0, reply);
	default:
		srv->stats.ignored++;
		return 0;
	}
}

/*
 * An IPv4 packet of len bytes. It is the server's if it is a UDP datagram
 * (first fragment) to port 67 at the broadcast or the server's address;
 * from then on whatever is wrong with it is counted.
 */
static enum dhcp_verdict ipv4_input(struct dhcp_server *srv, const struct dhcp_client_port *from,
				    const struct eth_hdr *eth, const uint8_t *pkt, size_t len,
				    uint64_t now, uint8_t *reply, size_t *reply_len)
{
	struct ipv4_hdr ip;
	struct udp_hdr udp;
	size_t ihl, total, udp_len;
	uint16_t frag;
	uint32_t dst;

	if (len < sizeof(ip))
		return DHCP_PASS;
	memcpy(&ip, pkt, sizeof(ip));
	ihl = (size_t)(ip.version_ihl & 0xf) * IPV4_HEADER_WORD;
	total = vnet_be16(ip.total_length);
	frag = vnet_be16(ip.frag);
	/* RFC 791 3.1; a frame may carry Ethernet padding after the packet. */
	if (ip.version_ihl >> 4 != IPV4_VERSION || ihl < sizeof(ip) || total > len ||
	    total < ihl + sizeof(udp) || ip.protocol != IPV4_PROTO_UDP ||
	    (frag & IPV4_FRAG_OFFSET))
		return DHCP_PASS;
	memcpy(&udp, pkt + ihl, sizeof(udp));
	dst = vnet_be32(ip.dst);
	if (vnet_be16(udp.dst_port) != UDP_PORT_BOOTPS ||
	    (dst != IPV4_BROADCAST && dst != srv->cfg.server_ip))
		return DHCP_PASS;

	udp_len = vnet_be16(udp.length);
	/* Fragmented DHCP messages are not reassembled. */
	if ((frag & IPV4_FLAG_MF) || ipv4_checksum(pkt, ihl) ||
	    udp_len < sizeof(udp) || udp_len > total - ihl) {
		srv->stats.malformed++;
		return DHCP_TAKEN;
	}
	*reply_len = dhcp_input(srv, from, eth, pkt + ihl + sizeof(udp), udp_len - sizeof(udp),
				now, reply);
	return DHCP_TAKEN;
}

/* RFC 826: who has the server's address? The server does. */
static size_t arp_input(struct dhcp_server *srv, const struct eth_hdr *eth, const uint8_t *pkt,
			size_t len, uint8_t *reply)
{
	struct arp_ipv4 req, rep;
	struct eth_hdr reth;

	if (len < sizeof(req))
		return 0;
	memcpy(&req, pkt, sizeof(req));
	if (vnet_be16(req.htype) != ARP_HTYPE_ETHERNET || vnet_be16(req.ptype) != ETH_TYPE_IPV4 ||
	    req.hlen != ETH_ALEN || req.plen != ARP_PLEN_IPV4 ||
	    vnet_be16(req.oper) != ARP_OP_REQUEST || vnet_be32(req.tpa) != srv->cfg.server_ip)
		return 0;

	rep = req;
	rep.oper = vnet_be16(ARP_OP_REPLY);
	memcpy(rep.sha, srv->cfg.server_mac, ETH_ALEN);
	rep.spa = req.tpa;
	memcpy(rep.tha, req.sha, ETH_ALEN);
	rep.tpa = req.spa;
	memcpy(reth.dst, eth->src, ETH_ALEN);
	memcpy(reth.src, srv->cfg.server_mac, ETH_ALEN);
	reth.type = vnet_be16(ETH_TYPE_ARP);

	/* Padded to the 802.3 minimum. */
	memset(reply, 0, ETH_MIN_FRAME);
	memcpy(reply, &reth, sizeof(reth));
	memcpy(reply + sizeof(reth), &rep, sizeof(rep));
	srv->stats.arp_reply++;
	return ETH_MIN_FRAME;
}

enum dhcp_verdict dhcp_server_input(struct dhcp_server *srv, const struct dhcp_client_port *from,
				    const uint8_t *frame, size_t len, uint64_t now_ms,
				    uint8_t *reply, size_t *reply_len)
{
	struct eth_hdr eth;

	*reply_len = 0;
	if (!srv->cfg.enabled || len < sizeof(eth))
		return DHCP_PASS;
	memcpy(&eth, frame, sizeof(eth));
	switch (vnet_be16(eth.type)) {
	case ETH_TYPE_IPV4:
		return ipv4_input(srv, from, &eth, frame + sizeof(eth), len - sizeof(eth), now_ms,
				  reply, reply_len);
	case ETH_TYPE_ARP:
		*reply_len = arp_input(srv, &eth, frame + sizeof(eth), len - sizeof(eth), reply);
		return DHCP_PASS;
	default:
		return DHCP_PASS;
	}
}

unsigned dhcp_server_leases(const struct dhcp_server *srv, uint64_t now_ms,
			    struct dhcp_lease *out, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < DHCP_MAX_LEASES && n < max; i++) {
		enum dhcp_lease_state st = lease_state(&srv->lease[i], now_ms);

		if (st == DHCP_LEASE_FREE)
			continue;
		out[n] = srv->lease[i];
		out[n].state = (uint8_t)st;
		n++;
	}
	return n;
}
