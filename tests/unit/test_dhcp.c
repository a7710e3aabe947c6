#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "vnet/dhcp.h"

/*
 * Byte offsets of the reply fields checked below, counted by hand from
 * RFC 791, RFC 768 and RFC 2131 figure 1 (not from the structures the
 * server uses), so that a layout mistake in them shows.
 */
enum {
	OFF_ETH_DST = 0,
	OFF_ETH_SRC = 6,
	OFF_ETH_TYPE = 12,
	OFF_IP = 14,
	OFF_IP_TOTAL_LEN = OFF_IP + 2,
	OFF_IP_PROTO = OFF_IP + 9,
	OFF_IP_SRC = OFF_IP + 12,
	OFF_IP_DST = OFF_IP + 16,
	OFF_UDP = 34,
	OFF_BOOTP = 42,
	OFF_OP = OFF_BOOTP,
	OFF_XID = OFF_BOOTP + 4,
	OFF_FLAGS = OFF_BOOTP + 10,
	OFF_CIADDR = OFF_BOOTP + 12,
	OFF_YIADDR = OFF_BOOTP + 16,
	OFF_CHADDR = OFF_BOOTP + 28,
	OFF_SNAME = OFF_BOOTP + 44,
	OFF_FILE = OFF_BOOTP + 108,
	OFF_MAGIC = OFF_BOOTP + 236,
	OFF_OPTIONS = OFF_BOOTP + 240,
};

#define NOW 1000000ULL
#define LEASE_S 3600
#define XID 0x12345678u
#define FRAME_BUF 1600

static const uint8_t server_mac[6] = { 0x02, 0, 0, 0, 0, 0xfe };
static const uint8_t mac_a[6] = { 0x02, 0, 0, 0, 0, 0x0a };
static const uint8_t mac_b[6] = { 0x02, 0, 0, 0, 0, 0x0b };
static const uint8_t mac_c[6] = { 0x02, 0, 0, 0, 0, 0x0c };
static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

#define SERVER_IP DHCP_IPV4(10, 0, 0, 1)
#define POOL_START DHCP_IPV4(10, 0, 0, 100)
#define POOL_END DHCP_IPV4(10, 0, 0, 199)
#define GATEWAY DHCP_IPV4(10, 0, 0, 254)
#define DNS1 DHCP_IPV4(10, 0, 0, 53)
#define DNS2 DHCP_IPV4(8, 8, 8, 8)

static struct dhcp_settings good_settings(void)
{
	struct dhcp_settings s = {
		.enabled = true,
		.server_ip = SERVER_IP,
		.pool_start = POOL_START,
		.pool_end = POOL_END,
		.netmask = DHCP_IPV4(255, 255, 255, 0),
		.gateway = GATEWAY,
		.dns = { DNS1, DNS2 },
		.lease_s = LEASE_S,
	};

	memcpy(s.server_mac, server_mac, 6);
	return s;
}

static struct dhcp_server srv;
/* The switch port messages come from: by default one that may hold every lease. */
static struct dhcp_client_port from;

static int setup(void **state)
{
	struct dhcp_settings s = good_settings();
	char err[128];

	(void)state;
	dhcp_server_init(&srv);
	assert_int_equal(dhcp_server_configure(&srv, &s, err, sizeof(err)), 0);
	from = (struct dhcp_client_port){ .port = 0, .max_leases = DHCP_MAX_LEASES };
	return 0;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

/* RFC 1071 sum over the header: 0xffff when the checksum is right. */
static uint32_t header_sum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < len; i += 2)
		sum += get16(p + i);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

static void fix_ip_checksum(uint8_t *frame)
{
	put16(frame + OFF_IP + 10, 0);
	put16(frame + OFF_IP + 10, (uint16_t)~header_sum(frame + OFF_IP, 20));
}

/* Options under construction. */
struct opts {
	uint8_t b[400];
	size_t n;
};

static void opt(struct opts *o, uint8_t code, const void *value, uint8_t len)
{
	o->b[o->n++] = code;
	o->b[o->n++] = len;
	memcpy(o->b + o->n, value, len);
	o->n += len;
}

static void opt_type(struct opts *o, uint8_t type)
{
	opt(o, DHCP_OPT_MESSAGE_TYPE, &type, 1);
}

static void opt_ip(struct opts *o, uint8_t code, uint32_t ip)
{
	uint8_t v[4];

	put32(v, ip);
	opt(o, code, v, 4);
}

static void opt_raw(struct opts *o, const uint8_t *bytes, size_t len)
{
	memcpy(o->b + o->n, bytes, len);
	o->n += len;
}

static void opt_end(struct opts *o)
{
	o->b[o->n++] = DHCP_OPT_END;
}

/*
 * A client message from mac: broadcast to 255.255.255.255 (or unicast to
 * the server when ciaddr is set and to_server), with the given options.
 */
static size_t build(uint8_t *f, const uint8_t *mac, uint32_t ciaddr, uint16_t flags,
		    const struct opts *o)
{
	size_t udp_len = 8 + 240 + o->n;

	memset(f, 0, FRAME_BUF);
	memcpy(f + OFF_ETH_DST, bcast, 6);
	memcpy(f + OFF_ETH_SRC, mac, 6);
	put16(f + OFF_ETH_TYPE, 0x0800);
	f[OFF_IP] = 0x45;
	put16(f + OFF_IP_TOTAL_LEN, (uint16_t)(20 + udp_len));
	f[OFF_IP + 8] = 64;
	f[OFF_IP_PROTO] = 17;
	put32(f + OFF_IP_SRC, ciaddr);
	put32(f + OFF_IP_DST, 0xffffffff);
	fix_ip_checksum(f);
	put16(f + OFF_UDP, 68);
	put16(f + OFF_UDP + 2, 67);
	put16(f + OFF_UDP + 4, (uint16_t)udp_len);
	f[OFF_OP] = 1;
	f[OFF_OP + 1] = 1;
	f[OFF_OP + 2] = 6;
	put32(f + OFF_XID, XID);
	put16(f + OFF_FLAGS, flags);
	put32(f + OFF_CIADDR, ciaddr);
	memcpy(f + OFF_CHADDR, mac, 6);
	f[OFF_MAGIC] = 99;
	f[OFF_MAGIC + 1] = 130;
	f[OFF_MAGIC + 2] = 83;
	f[OFF_MAGIC + 3] = 99;
	memcpy(f + OFF_OPTIONS, o->b, o->n);
	return OFF_OPTIONS + o->n;
}

/* Unicast to the server (RENEWING, INFORM, RELEASE). */
static void to_server(uint8_t *f)
{
	memcpy(f + OFF_ETH_DST, server_mac, 6);
	put32(f + OFF_IP_DST, SERVER_IP);
	fix_ip_checksum(f);
}

/* Options 50 and 54 are added when non-zero. */
static size_t message(uint8_t *f, uint8_t type, const uint8_t *mac, uint32_t ciaddr,
		      uint32_t requested, uint32_t server_id)
{
	struct opts o = { .n = 0 };

	opt_type(&o, type);
	if (requested)
		opt_ip(&o, DHCP_OPT_REQUESTED_IP, requested);
	if (server_id)
		opt_ip(&o, DHCP_OPT_SERVER_ID, server_id);
	opt_end(&o);
	return build(f, mac, ciaddr, 0, &o);
}

static uint8_t reply[DHCP_FRAME_MAX];
static size_t reply_len;

static enum dhcp_verdict input_at(const uint8_t *f, size_t len, uint64_t now)
{
	memset(reply, 0xee, sizeof(reply));
	return dhcp_server_input(&srv, &from, f, len, now, reply, &reply_len);
}

/* Sends a message and expects the server to take it. */
static void send_at(uint8_t type, const uint8_t *mac, uint32_t ciaddr, uint32_t requested,
		    uint32_t server_id, uint64_t now)
{
	uint8_t f[FRAME_BUF];
	size_t len = message(f, type, mac, ciaddr, requested, server_id);

	assert_int_equal(input_at(f, len, now), DHCP_TAKEN);
}

/* The options of the reply, checked for well-formedness on the way. */
struct reply_opts {
	int type;                       /* -1: absent */
	bool has[256];
	uint32_t value[256];            /* first 4 octets of 4-octet options */
	uint8_t len[256];
	uint8_t dns[8];
};

static void parse_reply_options(struct reply_opts *r)
{
	size_t i = OFF_OPTIONS;

	memset(r, 0, sizeof(*r));
	r->type = -1;
	assert_int_equal(reply_len, DHCP_FRAME_MAX);
	for (;;) {
		uint8_t code, len;

		assert_true(i < reply_len);
		code = reply[i++];
		if (code == DHCP_OPT_END)
			break;
		if (code == DHCP_OPT_PAD)
			continue;
		len = reply[i++];
		assert_true(i + len <= reply_len);
		assert_false(r->has[code]);
		r->has[code] = true;
		r->len[code] = len;
		if (code == DHCP_OPT_MESSAGE_TYPE)
			r->type = reply[i];
		if (len == 4)
			r->value[code] = get32(reply + i);
		if (code == DHCP_OPT_DNS && len <= sizeof(r->dns))
			memcpy(r->dns, reply + i, len);
		i += len;
	}
	/* The rest of the 300-octet message is pad. */
	for (; i < reply_len; i++)
		assert_int_equal(reply[i], 0);
}

/* The frame-level checks every DHCP reply must pass. */
static void check_reply_frame(const uint8_t *mac, uint32_t yiaddr, uint32_t dst_ip)
{
	assert_int_equal(reply_len, DHCP_FRAME_MAX);
	assert_int_equal(reply_len, 14 + 20 + 8 + 300);
	if (dst_ip == 0xffffffff)
		assert_memory_equal(reply + OFF_ETH_DST, bcast, 6);
	else
		assert_memory_equal(reply + OFF_ETH_DST, mac, 6);
	assert_memory_equal(reply + OFF_ETH_SRC, server_mac, 6);
	assert_int_equal(get16(reply + OFF_ETH_TYPE), 0x0800);
	assert_int_equal(reply[OFF_IP], 0x45);
	assert_int_equal(get16(reply + OFF_IP_TOTAL_LEN), 20 + 8 + 300);
	assert_int_equal(reply[OFF_IP_PROTO], 17);
	assert_int_equal(header_sum(reply + OFF_IP, 20), 0xffff);
	assert_int_equal(get32(reply + OFF_IP_SRC), SERVER_IP);
	assert_int_equal(get32(reply + OFF_IP_DST), dst_ip);
	assert_int_equal(get16(reply + OFF_UDP), 67);
	assert_int_equal(get16(reply + OFF_UDP + 2), 68);
	assert_int_equal(get16(reply + OFF_UDP + 4), 8 + 300);
	assert_int_equal(get16(reply + OFF_UDP + 6), 0);
	assert_int_equal(reply[OFF_OP], 2);
	assert_int_equal(reply[OFF_OP + 1], 1);
	assert_int_equal(reply[OFF_OP + 2], 6);
	assert_int_equal(get32(reply + OFF_XID), XID);
	assert_int_equal(get32(reply + OFF_YIADDR), yiaddr);
	assert_memory_equal(reply + OFF_CHADDR, mac, 6);
	assert_int_equal(reply[OFF_MAGIC], 99);
	assert_int_equal(reply[OFF_MAGIC + 1], 130);
	assert_int_equal(reply[OFF_MAGIC + 2], 83);
	assert_int_equal(reply[OFF_MAGIC + 3], 99);
}

/* An OFFER or ACK that gives yiaddr, with every parameter. */
static void check_lease_reply(int type, const uint8_t *mac, uint32_t yiaddr, uint32_t dst_ip)
{
	struct reply_opts r;

	check_reply_frame(mac, yiaddr, dst_ip);
	parse_reply_options(&r);
	/* The message type comes first, at a fixed place. */
	assert_int_equal(reply[OFF_OPTIONS], DHCP_OPT_MESSAGE_TYPE);
	assert_int_equal(reply[OFF_OPTIONS + 1], 1);
	assert_int_equal(reply[OFF_OPTIONS + 2], type);
	assert_int_equal(r.type, type);
	assert_int_equal(r.value[DHCP_OPT_SERVER_ID], SERVER_IP);
	assert_int_equal(r.value[DHCP_OPT_SUBNET_MASK], DHCP_IPV4(255, 255, 255, 0));
	assert_int_equal(r.value[DHCP_OPT_ROUTER], GATEWAY);
	assert_int_equal(r.value[DHCP_OPT_LEASE_TIME], LEASE_S);
	assert_int_equal(r.value[DHCP_OPT_RENEWAL_TIME], LEASE_S / 2);
	assert_int_equal(r.value[DHCP_OPT_REBINDING_TIME], LEASE_S * 7 / 8);
	assert_int_equal(r.len[DHCP_OPT_DNS], 8);
	assert_int_equal(get32(r.dns), DNS1);
	assert_int_equal(get32(r.dns + 4), DNS2);
	assert_false(r.has[DHCP_OPT_REQUESTED_IP]);
}

static void check_nak(const uint8_t *mac)
{
	struct reply_opts r;

	check_reply_frame(mac, 0, 0xffffffff);
	assert_int_equal(get32(reply + OFF_CIADDR), 0);
	parse_reply_options(&r);
	assert_int_equal(r.type, DHCP_NAK);
	assert_int_equal(r.value[DHCP_OPT_SERVER_ID], SERVER_IP);
	/* RFC 2131 table 3: nothing about a lease or the network in a NAK. */
	assert_false(r.has[DHCP_OPT_LEASE_TIME]);
	assert_false(r.has[DHCP_OPT_SUBNET_MASK]);
	assert_false(r.has[DHCP_OPT_ROUTER]);
	assert_false(r.has[DHCP_OPT_DNS]);
}

/* The lease of mac, as the accessor shows it. */
static bool find_lease(const uint8_t *mac, uint64_t now, struct dhcp_lease *out)
{
	struct dhcp_lease all[DHCP_MAX_LEASES];
	unsigned n = dhcp_server_leases(&srv, now, all, DHCP_MAX_LEASES);

	for (unsigned i = 0; i < n; i++) {
		if (!memcmp(all[i].mac, mac, 6)) {
			*out = all[i];
			return true;
		}
	}
	return false;
}

/* DISCOVER and REQUEST; returns the address bound. */
static uint32_t dora(const uint8_t *mac, uint64_t now)
{
	uint32_t ip;

	send_at(DHCP_DISCOVER, mac, 0, 0, 0, now);
	assert_int_equal(reply_len, DHCP_FRAME_MAX);
	ip = get32(reply + OFF_YIADDR);
	send_at(DHCP_REQUEST, mac, 0, ip, SERVER_IP, now);
	assert_int_equal(reply[OFF_OPTIONS + 2], DHCP_ACK);
	return ip;
}

static void test_settings_check(void **state)
{
	struct dhcp_settings s;
	char err[160];

	(void)state;
	s = good_settings();
	assert_int_equal(dhcp_settings_check(&s, err, sizeof(err)), 0);

#define REFUSED(field_change, words)                                              \
	do {                                                                      \
		s = good_settings();                                              \
		field_change;                                                     \
		err[0] = '\0';                                                    \
		assert_int_equal(dhcp_settings_check(&s, err, sizeof(err)), -1); \
		assert_non_null(strstr(err, words));                              \
	} while (0)

	REFUSED(s.lease_s = 59, "lease time 59 s");
	REFUSED(s.lease_s = 0x80000000u, "lease time");
	REFUSED(s.netmask = DHCP_IPV4(255, 0, 255, 0), "netmask 255.0.255.0 is not a contiguous");
	REFUSED(s.netmask = 0, "not a contiguous");
	REFUSED(s.netmask = DHCP_IPV4(255, 255, 255, 254), "leaves no room");
	REFUSED(s.netmask = 0xffffffff, "leaves no room");
	REFUSED(s.server_mac[0] = 0x01, "server MAC");
	REFUSED(memset(s.server_mac, 0, 6), "server MAC");
	REFUSED(s.server_ip = DHCP_IPV4(10, 0, 0, 0), "server address 10.0.0.0");
	REFUSED(s.server_ip = DHCP_IPV4(10, 0, 0, 255), "server address 10.0.0.255");
	REFUSED(s.pool_start = DHCP_IPV4(10, 0, 0, 150); s.pool_end = DHCP_IPV4(10, 0, 0, 140),
		"pool start 10.0.0.150 is after pool end 10.0.0.140");
	REFUSED(s.pool_end = DHCP_IPV4(10, 0, 1, 10), "not inside the server's subnet 10.0.0.0/255.255.255.0");
	REFUSED(s.pool_start = DHCP_IPV4(10, 0, 0, 0), "not inside");
	REFUSED(s.pool_end = DHCP_IPV4(10, 0, 0, 255), "not inside");
	REFUSED(s.gateway = DHCP_IPV4(192, 168, 0, 1), "gateway 192.168.0.1");
	REFUSED(s.pool_start = SERVER_IP; s.pool_end = SERVER_IP, "holds only");
	REFUSED(s.pool_start = DHCP_IPV4(10, 0, 0, 53); s.pool_end = DHCP_IPV4(10, 0, 0, 54);
		s.gateway = DHCP_IPV4(10, 0, 0, 54), "holds only");
#undef REFUSED

	/* A server inside its pool is fine: its address is just never leased. */
	s = good_settings();
	s.pool_start = DHCP_IPV4(10, 0, 0, 1);
	assert_int_equal(dhcp_settings_check(&s, err, sizeof(err)), 0);
	/* A disabled server's settings are not checked. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(dhcp_settings_check(&s, err, sizeof(err)), 0);
	/* Bad settings leave the server as it was. */
	s = good_settings();
	s.lease_s = 1;
	assert_int_equal(dhcp_server_configure(&srv, &s, err, sizeof(err)), -1);
	assert_int_equal(srv.cfg.lease_s, LEASE_S);
}

static void test_full_dora(void **state)
{
	struct dhcp_lease l;
	uint8_t f[FRAME_BUF];
	size_t len;
	uint16_t first_id;

	(void)state;
	/* No broadcast flag: the OFFER is unicast to the new address (RFC 2131 4.1). */
	send_at(DHCP_DISCOVER, mac_a, 0, 0, 0, NOW);
	check_lease_reply(DHCP_OFFER, mac_a, POOL_START, POOL_START);
	assert_int_equal(get32(reply + OFF_CIADDR), 0);
	assert_int_equal(srv.stats.discover, 1);
	assert_int_equal(srv.stats.offer, 1);
	assert_true(find_lease(mac_a, NOW, &l));
	assert_int_equal(l.state, DHCP_LEASE_OFFERED);
	assert_int_equal(l.ip, POOL_START);
	first_id = get16(reply + OFF_IP + 4);

	send_at(DHCP_REQUEST, mac_a, 0, POOL_START, SERVER_IP, NOW + 10);
	check_lease_reply(DHCP_ACK, mac_a, POOL_START, POOL_START);
	assert_int_equal(srv.stats.request, 1);
	assert_int_equal(srv.stats.ack, 1);
	assert_true(find_lease(mac_a, NOW + 10, &l));
	assert_int_equal(l.state, DHCP_LEASE_BOUND);
	assert_int_equal(l.until_ms, NOW + 10 + LEASE_S * 1000ULL);

	/* With the broadcast flag the reply is broadcast; a second client gets the next address. */
	{
		struct opts o = { .n = 0 };

		opt_type(&o, DHCP_DISCOVER);
		opt_end(&o);
		len = build(f, mac_b, 0, BOOTP_FLAG_BROADCAST, &o);
	}
	assert_int_equal(input_at(f, len, NOW), DHCP_TAKEN);
	check_lease_reply(DHCP_OFFER, mac_b, POOL_START + 1, 0xffffffff);
	assert_int_equal(get16(reply + OFF_FLAGS), BOOTP_FLAG_BROADCAST);
	/* The IPv4 identification changes from reply to reply. */
	assert_int_not_equal(get16(reply + OFF_IP + 4), first_id);
	assert_int_equal(srv.stats.malformed + srv.stats.ignored, 0);
}

static void test_requested_address_is_honoured(void **state)
{
	(void)state;
	send_at(DHCP_DISCOVER, mac_a, 0, POOL_START + 42, 0, NOW);
	check_lease_reply(DHCP_OFFER, mac_a, POOL_START + 42, POOL_START + 42);
	/* Outside the pool or reserved: the server picks. */
	send_at(DHCP_DISCOVER, mac_b, 0, GATEWAY, 0, NOW);
	assert_int_equal(get32(reply + OFF_YIADDR), POOL_START);
	send_at(DHCP_DISCOVER, mac_c, 0, POOL_START + 42, 0, NOW);
	assert_int_equal(get32(reply + OFF_YIADDR), POOL_START + 1);
}

static void test_renew_and_rebind(void **state)
{
	uint8_t f[FRAME_BUF];
	size_t len;
	struct dhcp_lease l;
	uint32_t ip;
	uint64_t t1 = NOW + LEASE_S * 1000ULL / 2;

	(void)state;
	ip = dora(mac_a, NOW);
	/* RENEWING: unicast to the server, ciaddr set; the ACK goes to ciaddr. */
	len = message(f, DHCP_REQUEST, mac_a, ip, 0, 0);
	to_server(f);
	assert_int_equal(input_at(f, len, t1), DHCP_TAKEN);
	check_lease_reply(DHCP_ACK, mac_a, ip, ip);
	assert_int_equal(get32(reply + OFF_CIADDR), ip);
	assert_true(find_lease(mac_a, t1, &l));
	assert_int_equal(l.until_ms, t1 + LEASE_S * 1000ULL);

	/* REBINDING: the same, broadcast. */
	send_at(DHCP_REQUEST, mac_a, ip, 0, 0, t1 + 1000);
	check_lease_reply(DHCP_ACK, mac_a, ip, ip);

	/* Renewing an address that is another client's: NAK. */
	dora(mac_b, NOW);
	send_at(DHCP_REQUEST, mac_b, ip, 0, 0, t1);
	check_nak(mac_b);
	assert_int_equal(srv.stats.nak, 1);
}

static void test_init_reboot(void **state)
{
	uint32_t ip;

	(void)state;
	ip = dora(mac_a, NOW);
	/* Wrong address: NAK, broadcast. */
	send_at(DHCP_REQUEST, mac_a, 0, ip + 1, 0, NOW + 5);
	check_nak(mac_a);
	/* Right address: ACK. */
	send_at(DHCP_REQUEST, mac_a, 0, ip, 0, NOW + 6);
	check_lease_reply(DHCP_ACK, mac_a, ip, ip);
	/* A client the server does not know stays unanswered (RFC 2131 4.3.2)... */
	send_at(DHCP_REQUEST, mac_b, 0, POOL_START + 50, 0, NOW + 7);
	assert_int_equal(reply_len, 0);
	/* ...unless it is on the wrong network. */
	send_at(DHCP_REQUEST, mac_b, 0, DHCP_IPV4(192, 168, 1, 7), 0, NOW + 8);
	check_nak(mac_b);
	/* After its lease expired, the client gets its address back (nobody took it). */
	send_at(DHCP_REQUEST, mac_a, 0, ip, 0, NOW + 2 * LEASE_S * 1000ULL);
	check_lease_reply(DHCP_ACK, mac_a, ip, ip);
}

static void test_release_then_discover_gets_same_address(void **state)
{
	struct dhcp_lease l;
	uint32_t ip;

	(void)state;
	ip = dora(mac_a, NOW);
	dora(mac_b, NOW);
	send_at(DHCP_RELEASE, mac_a, ip, 0, SERVER_IP, NOW + 100);
	assert_int_equal(reply_len, 0);
	assert_int_equal(srv.stats.release, 1);
	assert_true(find_lease(mac_a, NOW + 100, &l));
	assert_int_equal(l.state, DHCP_LEASE_RELEASED);
	/* A new client does not get the released address while others are free. */
	send_at(DHCP_DISCOVER, mac_c, 0, 0, 0, NOW + 200);
	assert_int_not_equal(get32(reply + OFF_YIADDR), ip);
	send_at(DHCP_DISCOVER, mac_a, 0, 0, 0, NOW + 300);
	check_lease_reply(DHCP_OFFER, mac_a, ip, ip);
	/* A release for an address that is not the client's changes nothing. */
	send_at(DHCP_REQUEST, mac_a, 0, ip, SERVER_IP, NOW + 400);
	send_at(DHCP_RELEASE, mac_a, ip + 7, 0, SERVER_IP, NOW + 500);
	assert_true(find_lease(mac_a, NOW + 500, &l));
	assert_int_equal(l.state, DHCP_LEASE_BOUND);
	/* Nor does one that names another server. */
	send_at(DHCP_RELEASE, mac_a, ip, 0, SERVER_IP + 1, NOW + 500);
	assert_true(find_lease(mac_a, NOW + 500, &l));
	assert_int_equal(l.state, DHCP_LEASE_BOUND);
}

static void test_decline(void **state)
{
	struct dhcp_lease all[DHCP_MAX_LEASES];
	uint32_t ip, ip2;
	unsigned n;

	(void)state;
	ip = dora(mac_a, NOW);
	/* Another client cannot decline mac_a's address. */
	send_at(DHCP_DECLINE, mac_b, 0, ip, SERVER_IP, NOW + 5);
	n = dhcp_server_leases(&srv, NOW + 5, all, DHCP_MAX_LEASES);
	assert_int_equal(n, 1);
	assert_int_equal(all[0].state, DHCP_LEASE_BOUND);
	send_at(DHCP_DECLINE, mac_a, 0, ip, SERVER_IP, NOW + 10);
	assert_int_equal(reply_len, 0);
	assert_int_equal(srv.stats.decline, 2);
	n = dhcp_server_leases(&srv, NOW + 10, all, DHCP_MAX_LEASES);
	assert_int_equal(n, 1);
	assert_int_equal(all[0].state, DHCP_LEASE_DECLINED);
	assert_int_equal(all[0].ip, ip);
	/* The client's next DISCOVER gets another address, and so does anyone else. */
	send_at(DHCP_DISCOVER, mac_a, 0, 0, 0, NOW + 20);
	ip2 = get32(reply + OFF_YIADDR);
	assert_int_not_equal(ip2, ip);
	send_at(DHCP_DISCOVER, mac_b, 0, ip, 0, NOW + 20);
	assert_int_not_equal(get32(reply + OFF_YIADDR), ip);
	/* Once the hold time is over the address is free again. */
	send_at(DHCP_DISCOVER, mac_c, 0, ip, 0, NOW + 3600 * 1000ULL);
	assert_int_equal(get32(reply + OFF_YIADDR), ip);
	/* DECLINE without option 50 is malformed (RFC 2131 table 5). */
	send_at(DHCP_DECLINE, mac_a, 0, 0, SERVER_IP, NOW + 30);
	assert_int_equal(srv.stats.malformed, 1);
}

static void test_inform(void **state)
{
	struct reply_opts r;
	uint8_t f[FRAME_BUF];
	size_t len;
	uint32_t mine = DHCP_IPV4(10, 0, 0, 20);

	(void)state;
	len = message(f, DHCP_INFORM, mac_a, mine, 0, 0);
	to_server(f);
	assert_int_equal(input_at(f, len, NOW), DHCP_TAKEN);
	check_reply_frame(mac_a, 0, mine);
	assert_int_equal(get32(reply + OFF_CIADDR), mine);
	parse_reply_options(&r);
	assert_int_equal(r.type, DHCP_ACK);
	assert_int_equal(r.value[DHCP_OPT_SUBNET_MASK], DHCP_IPV4(255, 255, 255, 0));
	assert_int_equal(r.value[DHCP_OPT_ROUTER], GATEWAY);
	assert_true(r.has[DHCP_OPT_DNS]);
	/* RFC 2131 table 3: no lease time in an ACK to an INFORM. */
	assert_false(r.has[DHCP_OPT_LEASE_TIME]);
	assert_false(r.has[DHCP_OPT_RENEWAL_TIME]);
	assert_int_equal(srv.stats.inform, 1);
	assert_int_equal(dhcp_server_leases(&srv, NOW, (struct dhcp_lease[1]){ 0 }, 1), 0);
}

static void test_exhaustion(void **state)
{
	struct dhcp_settings s = good_settings();
	char err[128];
	uint32_t ip_a, ip_b;

	(void)state;
	s.pool_start = DHCP_IPV4(10, 0, 0, 10);
	s.pool_end = DHCP_IPV4(10, 0, 0, 11);
	assert_int_equal(dhcp_server_configure(&srv, &s, err, sizeof(err)), 0);
	ip_a = dora(mac_a, NOW);
	ip_b = dora(mac_b, NOW);
	assert_int_equal(ip_a, DHCP_IPV4(10, 0, 0, 10));
	assert_int_equal(ip_b, DHCP_IPV4(10, 0, 0, 11));

	/* The third client gets no OFFER, and a NAK if it asks anyway. */
	send_at(DHCP_DISCOVER, mac_c, 0, 0, 0, NOW + 1);
	assert_int_equal(reply_len, 0);
	assert_int_equal(srv.stats.no_address, 1);
	send_at(DHCP_REQUEST, mac_c, 0, ip_a, SERVER_IP, NOW + 2);
	check_nak(mac_c);
	/* Exhaustion does not disturb the others. */
	send_at(DHCP_REQUEST, mac_a, ip_a, 0, 0, NOW + 3);
	check_lease_reply(DHCP_ACK, mac_a, ip_a, ip_a);

	/* When a lease ends, its address is given away; its old owner then gets none. */
	send_at(DHCP_RELEASE, mac_b, ip_b, 0, SERVER_IP, NOW + 4);
	send_at(DHCP_DISCOVER, mac_c, 0, 0, 0, NOW + 5);
	check_lease_reply(DHCP_OFFER, mac_c, ip_b, ip_b);
	send_at(DHCP_DISCOVER, mac_b, 0, 0, 0, NOW + 6);
	assert_int_equal(reply_len, 0);
	/* An OFFER not taken in time goes too. */
	send_at(DHCP_DISCOVER, mac_b, 0, 0, 0, NOW + 5 + 61 * 1000);
	check_lease_reply(DHCP_OFFER, mac_b, ip_b, ip_b);
}

static void test_table_exhaustion_with_large_pool(void **state)
{
	struct dhcp_settings s = good_settings();
	char err[128];
	uint8_t mac[6] = { 0x02, 0x10, 0, 0, 0, 0 };

	(void)state;
	s.pool_start = DHCP_IPV4(10, 0, 0, 2);
	s.pool_end = DHCP_IPV4(10, 0, 255, 250);
	s.netmask = DHCP_IPV4(255, 255, 0, 0);
	s.gateway = 0;
	assert_int_equal(dhcp_server_configure(&srv, &s, err, sizeof(err)), 0);
	for (unsigned i = 0; i < DHCP_MAX_LEASES; i++) {
		mac[4] = (uint8_t)(i >> 8);
		mac[5] = (uint8_t)i;
		send_at(DHCP_DISCOVER, mac, 0, 0, 0, NOW);
		assert_int_equal(reply_len, DHCP_FRAME_MAX);
	}
	/* The table is full of offers: the next client gets nothing, until they expire. */
	mac[3] = 1;
	send_at(DHCP_DISCOVER, mac, 0, 0, 0, NOW);
	assert_int_equal(reply_len, 0);
	send_at(DHCP_DISCOVER, mac, 0, 0, 0, NOW + 61 * 1000);
	assert_int_equal(reply_len, DHCP_FRAME_MAX);
}

static void test_stable_lease_and_other_server(void **state)
{
	uint32_t ip;
	struct dhcp_lease l;

	(void)state;
	ip = dora(mac_a, NOW);
	/* A bound client that DISCOVERs again is offered its address, and stays bound. */
	send_at(DHCP_DISCOVER, mac_a, 0, 0, 0, NOW + 1);
	check_lease_reply(DHCP_OFFER, mac_a, ip, ip);
	assert_true(find_lease(mac_a, NOW + 1, &l));
	assert_int_equal(l.state, DHCP_LEASE_BOUND);

	/* A client that picks another server's offer frees ours, silently. */
	send_at(DHCP_DISCOVER, mac_b, 0, 0, 0, NOW);
	send_at(DHCP_REQUEST, mac_b, 0, get32(reply + OFF_YIADDR), SERVER_IP + 1, NOW + 2);
	assert_int_equal(reply_len, 0);
	assert_true(find_lease(mac_b, NOW + 2, &l));
	assert_int_equal(l.state, DHCP_LEASE_RELEASED);
	/* SELECTING for an address that was not offered: NAK. */
	send_at(DHCP_REQUEST, mac_a, 0, ip + 1, SERVER_IP, NOW + 3);
	check_nak(mac_a);
	/* SELECTING without option 50 is malformed. */
	send_at(DHCP_REQUEST, mac_a, 0, 0, SERVER_IP, NOW + 3);
	assert_int_equal(reply_len, 0);
	assert_int_equal(srv.stats.malformed, 1);
	/* Neither option 50 nor 54 nor ciaddr: malformed too. */
	send_at(DHCP_REQUEST, mac_a, 0, 0, 0, NOW + 3);
	assert_int_equal(srv.stats.malformed, 2);
}

static void test_reserved_addresses_never_leased(void **state)
{
	struct dhcp_settings s = good_settings();
	char err[128];
	uint8_t mac[6] = { 0x02, 0x20, 0, 0, 0, 0 };

	(void)state;
	/* The pool holds the server, the gateway and a DNS server. */
	s.pool_start = DHCP_IPV4(10, 0, 0, 1);
	s.pool_end = DHCP_IPV4(10, 0, 0, 6);
	s.gateway = DHCP_IPV4(10, 0, 0, 3);
	s.dns[0] = DHCP_IPV4(10, 0, 0, 5);
	static const uint32_t leased[] = {
		DHCP_IPV4(10, 0, 0, 2), DHCP_IPV4(10, 0, 0, 4), DHCP_IPV4(10, 0, 0, 6),
	};

	assert_int_equal(dhcp_server_configure(&srv, &s, err, sizeof(err)), 0);
	for (uint8_t i = 0; i < 3; i++) {
		mac[5] = i;
		assert_int_equal(dora(mac, NOW), leased[i]);
	}
	mac[5] = 9;
	send_at(DHCP_DISCOVER, mac, 0, 0, 0, NOW);
	assert_int_equal(reply_len, 0);
}

static void test_reconfigure_keeps_leases_in_pool(void **state)
{
	struct dhcp_settings s = good_settings();
	struct dhcp_lease l;
	char err[128];
	uint32_t ip_a, ip_b;

	(void)state;
	ip_a = dora(mac_a, NOW);
	ip_b = dora(mac_b, NOW);
	assert_true(ip_a < ip_b);
	s.pool_start = ip_b;
	assert_int_equal(dhcp_server_configure(&srv, &s, err, sizeof(err)), 0);
	assert_false(find_lease(mac_a, NOW, &l));
	assert_true(find_lease(mac_b, NOW, &l));
	assert_int_equal(l.ip, ip_b);
	/* Disabled, the server passes everything and answers nothing. */
	s.enabled = false;
	assert_int_equal(dhcp_server_configure(&srv, &s, err, sizeof(err)), 0);
	{
		uint8_t f[FRAME_BUF];
		size_t len = message(f, DHCP_DISCOVER, mac_c, 0, 0, 0);

		assert_int_equal(input_at(f, len, NOW), DHCP_PASS);
		assert_int_equal(reply_len, 0);
	}
}

/* Builds a DISCOVER whose options are the given bytes, sends it, returns the verdict. */
static enum dhcp_verdict discover_with_options(const uint8_t *bytes, size_t n)
{
	struct opts o = { .n = 0 };
	uint8_t f[FRAME_BUF];
	size_t len;

	opt_raw(&o, bytes, n);
	len = build(f, mac_a, 0, 0, &o);
	return input_at(f, len, NOW);
}

static void expect_malformed_options(const uint8_t *bytes, size_t n)
{
	uint64_t before = srv.stats.malformed;

	assert_int_equal(discover_with_options(bytes, n), DHCP_TAKEN);
	assert_int_equal(reply_len, 0);
	assert_int_equal(srv.stats.malformed, before + 1);
}

static void test_malformed_options(void **state)
{
	(void)state;
	/* An option whose length runs past the end of the message. */
	expect_malformed_options((const uint8_t[]){ 53, 1, 1, 12, 200, 'a', 'b' }, 7);
	/* A length octet that is not there. */
	expect_malformed_options((const uint8_t[]){ 53, 1, 1, 12 }, 4);
	/* No end option. */
	expect_malformed_options((const uint8_t[]){ 53, 1, 1 }, 3);
	expect_malformed_options((const uint8_t[]){ 53, 1, 1, 0, 0, 0 }, 6);
	/* Nothing but pad and end: no message type. */
	expect_malformed_options((const uint8_t[]){ 0, 0, 255 }, 3);
	/* A message type missing, duplicated, of the wrong length or zero. */
	expect_malformed_options((const uint8_t[]){ 12, 1, 'x', 255 }, 4);
	expect_malformed_options((const uint8_t[]){ 53, 1, 1, 53, 1, 1, 255 }, 7);
	expect_malformed_options((const uint8_t[]){ 53, 2, 1, 1, 255 }, 5);
	expect_malformed_options((const uint8_t[]){ 53, 0, 255 }, 3);
	expect_malformed_options((const uint8_t[]){ 53, 1, 0, 255 }, 4);
	/* Requested address and server identifier of the wrong length, or twice. */
	expect_malformed_options((const uint8_t[]){ 53, 1, 1, 50, 3, 10, 0, 0, 255 }, 9);
	expect_malformed_options((const uint8_t[]){ 53, 1, 1, 54, 5, 10, 0, 0, 1, 0, 255 }, 11);
	expect_malformed_options((const uint8_t[]){ 53, 1, 1, 50, 4, 10, 0, 0, 100,
						    50, 4, 10, 0, 0, 100, 255 }, 16);
	/* Option overload with a value out of range, twice, or of the wrong length. */
	expect_malformed_options((const uint8_t[]){ 53, 1, 1, 52, 1, 4, 255 }, 7);
	expect_malformed_options((const uint8_t[]){ 53, 1, 1, 52, 1, 0, 255 }, 7);
	expect_malformed_options((const uint8_t[]){ 53, 1, 1, 52, 1, 1, 52, 1, 1, 255 }, 10);
	expect_malformed_options((const uint8_t[]){ 53, 1, 1, 52, 2, 1, 1, 255 }, 8);
	/* Overload of a 'file' field that holds no end option (it is all zero pads). */
	expect_malformed_options((const uint8_t[]){ 53, 1, 1, 52, 1, 1, 255 }, 7);
	/* An empty options field: not even the end. */
	expect_malformed_options((const uint8_t[]){ 0 }, 0);
	assert_int_equal(srv.stats.offer, 0);
}

static void test_pads_and_unknown_options_are_skipped(void **state)
{
	(void)state;
	assert_int_equal(discover_with_options((const uint8_t[]){ 0, 0, 12, 3, 'v', 'm', 'm', 0,
								  53, 1, 1, 0, 55, 3, 1, 3, 6,
								  255, 1, 2, 3 }, 21),
			 DHCP_TAKEN);
	check_lease_reply(DHCP_OFFER, mac_a, POOL_START, POOL_START);
}

static void test_hostname_is_kept_sanitised(void **state)
{
	static const char long_name[] = "a-host-name-longer-than-the-table-keeps";
	struct opts o = { .n = 0 };
	struct dhcp_lease l;
	uint8_t f[FRAME_BUF];
	size_t len;

	(void)state;
	/* Terminal controls become '?'. */
	opt_type(&o, DHCP_DISCOVER);
	opt(&o, DHCP_OPT_HOST_NAME, "web\x1b[2J\x7f", 8);
	opt_end(&o);
	len = build(f, mac_a, 0, 0, &o);
	assert_int_equal(input_at(f, len, NOW), DHCP_TAKEN);
	assert_true(find_lease(mac_a, NOW, &l));
	assert_string_equal(l.hostname, "web?[2J?");
	/* Cut to fit; the REQUEST's name replaces the DISCOVER's. */
	o.n = 0;
	opt_type(&o, DHCP_REQUEST);
	opt_ip(&o, DHCP_OPT_REQUESTED_IP, l.ip);
	opt_ip(&o, DHCP_OPT_SERVER_ID, SERVER_IP);
	opt(&o, DHCP_OPT_HOST_NAME, long_name, sizeof(long_name) - 1);
	opt_end(&o);
	len = build(f, mac_a, 0, 0, &o);
	assert_int_equal(input_at(f, len, NOW), DHCP_TAKEN);
	assert_int_equal(reply[OFF_OPTIONS + 2], DHCP_ACK);
	assert_true(find_lease(mac_a, NOW, &l));
	assert_int_equal(strlen(l.hostname), DHCP_HOSTNAME_MAX - 1);
	assert_memory_equal(l.hostname, long_name, DHCP_HOSTNAME_MAX - 1);
	/* Empty or twice: malformed. */
	expect_malformed_options((const uint8_t[]){ 53, 1, 1, 12, 0, 255 }, 6);
	expect_malformed_options((const uint8_t[]){ 53, 1, 1, 12, 1, 'a', 12, 1, 'b', 255 }, 10);
}

/* A DISCOVER whose message type is in the 'file' and/or 'sname' field. */
static void test_option_overload(void **state)
{
	struct opts o = { .n = 0 };
	uint8_t f[FRAME_BUF];
	size_t len;
	uint64_t malformed;

	(void)state;
	opt(&o, DHCP_OPT_OVERLOAD, (const uint8_t[]){ 1 }, 1);
	opt_end(&o);
	len = build(f, mac_a, 0, 0, &o);
	memcpy(f + OFF_FILE, (const uint8_t[]){ 53, 1, 1, 255 }, 4);
	assert_int_equal(input_at(f, len, NOW), DHCP_TAKEN);
	check_lease_reply(DHCP_OFFER, mac_a, POOL_START, POOL_START);

	/* Value 3: both fields; the requested address comes from 'sname'. */
	o.n = 0;
	opt(&o, DHCP_OPT_OVERLOAD, (const uint8_t[]){ 3 }, 1);
	opt_end(&o);
	len = build(f, mac_b, 0, 0, &o);
	memcpy(f + OFF_FILE, (const uint8_t[]){ 0, 53, 1, 1, 255 }, 5);
	memcpy(f + OFF_SNAME, (const uint8_t[]){ 50, 4, 10, 0, 0, 150, 255 }, 7);
	assert_int_equal(input_at(f, len, NOW), DHCP_TAKEN);
	check_lease_reply(DHCP_OFFER, mac_b, POOL_START + 50, POOL_START + 50);

	/* Overloaded fields follow the same rules: a duplicated type... */
	malformed = srv.stats.malformed;
	o.n = 0;
	opt_type(&o, DHCP_DISCOVER);
	opt(&o, DHCP_OPT_OVERLOAD, (const uint8_t[]){ 2 }, 1);
	opt_end(&o);
	len = build(f, mac_c, 0, 0, &o);
	memcpy(f + OFF_SNAME, (const uint8_t[]){ 53, 1, 1, 255 }, 4);
	assert_int_equal(input_at(f, len, NOW), DHCP_TAKEN);
	assert_int_equal(reply_len, 0);
	/* ...an option running past the field (its end is in the next one)... */
	memcpy(f + OFF_SNAME, (const uint8_t[]){ 12, 70 }, 2);
	memcpy(f + OFF_SNAME + 64, (const uint8_t[]){ 255 }, 1);
	assert_int_equal(input_at(f, len, NOW), DHCP_TAKEN);
	assert_int_equal(reply_len, 0);
	/* ...an overload option inside an overloaded field... */
	memset(f + OFF_SNAME, 0, 64);
	memcpy(f + OFF_SNAME, (const uint8_t[]){ 52, 1, 1, 255 }, 4);
	assert_int_equal(input_at(f, len, NOW), DHCP_TAKEN);
	assert_int_equal(reply_len, 0);
	/* ...and a field without end option. */
	memset(f + OFF_SNAME, 0, 64);
	assert_int_equal(input_at(f, len, NOW), DHCP_TAKEN);
	assert_int_equal(reply_len, 0);
	assert_int_equal(srv.stats.malformed, malformed + 4);
	/* Without option 52 the same fields are not options: they are ignored. */
	o.n = 0;
	opt_type(&o, DHCP_DISCOVER);
	opt_end(&o);
	len = build(f, mac_c, 0, 0, &o);
	memcpy(f + OFF_SNAME, (const uint8_t[]){ 53, 1, 1, 255 }, 4);
	memcpy(f + OFF_FILE, (const uint8_t[]){ 12, 200 }, 2);
	assert_int_equal(input_at(f, len, NOW), DHCP_TAKEN);
	assert_int_equal(reply_len, DHCP_FRAME_MAX);
}

static void expect_ignored(uint8_t *f, size_t len)
{
	uint64_t before = srv.stats.ignored;

	assert_int_equal(input_at(f, len, NOW), DHCP_TAKEN);
	assert_int_equal(reply_len, 0);
	assert_int_equal(srv.stats.ignored, before + 1);
}

static void test_header_checks(void **state)
{
	uint8_t f[FRAME_BUF];
	size_t len;

	(void)state;
	len = message(f, DHCP_DISCOVER, mac_a, 0, 0, 0);
	f[OFF_OP] = 2;                  /* BOOTREPLY */
	expect_ignored(f, len);
	len = message(f, DHCP_DISCOVER, mac_a, 0, 0, 0);
	f[OFF_OP + 1] = 6;              /* htype IEEE 802 */
	expect_ignored(f, len);
	len = message(f, DHCP_DISCOVER, mac_a, 0, 0, 0);
	f[OFF_OP + 2] = 16;             /* hlen */
	expect_ignored(f, len);
	len = message(f, DHCP_DISCOVER, mac_a, 0, 0, 0);
	put32(f + OFF_BOOTP + 24, DHCP_IPV4(10, 9, 9, 9));     /* giaddr: relayed */
	expect_ignored(f, len);
	len = message(f, DHCP_DISCOVER, mac_a, 0, 0, 0);
	f[OFF_MAGIC] = 0;               /* plain BOOTP */
	expect_ignored(f, len);
	len = message(f, DHCP_DISCOVER, mac_a, 0, 0, 0);
	memcpy(f + OFF_CHADDR, mac_b, 6); /* for another adapter */
	expect_ignored(f, len);
	len = message(f, DHCP_DISCOVER, bcast, 0, 0, 0);      /* group chaddr */
	expect_ignored(f, len);
	/* Types only servers send, and unknown ones. */
	len = message(f, DHCP_OFFER, mac_a, 0, 0, 0);
	expect_ignored(f, len);
	len = message(f, DHCP_NAK, mac_a, 0, 0, 0);
	expect_ignored(f, len);
	len = message(f, 200, mac_a, 0, 0, 0);
	expect_ignored(f, len);
	assert_int_equal(srv.stats.malformed, 0);
	assert_int_equal(srv.stats.offer, 0);
}

static void expect_malformed_frame(const uint8_t *f, size_t len)
{
	uint64_t before = srv.stats.malformed;

	assert_int_equal(input_at(f, len, NOW), DHCP_TAKEN);
	assert_int_equal(reply_len, 0);
	assert_int_equal(srv.stats.malformed, before + 1);
}

static void test_ip_and_udp_checks(void **state)
{
	uint8_t f[FRAME_BUF];
	size_t len;

	(void)state;
	/* Bad IPv4 header checksum. */
	len = message(f, DHCP_DISCOVER, mac_a, 0, 0, 0);
	f[OFF_IP + 10] ^= 1;
	expect_malformed_frame(f, len);
	/* A first fragment (MF set). */
	len = message(f, DHCP_DISCOVER, mac_a, 0, 0, 0);
	put16(f + OFF_IP + 6, 0x2000);
	fix_ip_checksum(f);
	expect_malformed_frame(f, len);
	/* UDP length past the IP payload, or shorter than a UDP header. */
	len = message(f, DHCP_DISCOVER, mac_a, 0, 0, 0);
	put16(f + OFF_UDP + 4, (uint16_t)(len - OFF_UDP + 1));
	expect_malformed_frame(f, len);
	put16(f + OFF_UDP + 4, 7);
	expect_malformed_frame(f, len);
	/* A UDP payload shorter than the BOOTP header. */
	put16(f + OFF_UDP + 4, 8 + 239);
	expect_malformed_frame(f, len);
	/* IP options are skipped by the header length. */
	{
		uint8_t g[FRAME_BUF];

		len = message(f, DHCP_DISCOVER, mac_a, 0, 0, 0);
		memcpy(g, f, OFF_IP + 20);
		g[OFF_IP] = 0x46;
		memset(g + OFF_IP + 20, 1, 4);  /* four NOP options (RFC 791) */
		memcpy(g + OFF_IP + 24, f + OFF_UDP, len - OFF_UDP);
		put16(g + OFF_IP_TOTAL_LEN, (uint16_t)(len - OFF_IP + 4));
		put16(g + OFF_IP + 10, 0);
		put16(g + OFF_IP + 10, (uint16_t)~header_sum(g + OFF_IP, 24));
		assert_int_equal(input_at(g, len + 4, NOW), DHCP_TAKEN);
		assert_int_equal(reply_len, DHCP_FRAME_MAX);
	}
	/* Ethernet padding after the IP packet is fine. */
	len = message(f, DHCP_DISCOVER, mac_b, 0, 0, 0);
	assert_int_equal(input_at(f, len + 20, NOW), DHCP_TAKEN);
	assert_int_equal(reply_len, DHCP_FRAME_MAX);
}

static void expect_pass(const uint8_t *f, size_t len)
{
	struct dhcp_counters before = srv.stats;

	assert_int_equal(input_at(f, len, NOW), DHCP_PASS);
	assert_int_equal(reply_len, 0);
	assert_memory_equal(&before, &srv.stats, sizeof(before));
}

static void test_other_traffic_passes(void **state)
{
	uint8_t f[FRAME_BUF];
	size_t len;

	(void)state;
	len = message(f, DHCP_DISCOVER, mac_a, 0, 0, 0);
	put16(f + OFF_UDP + 2, 68);     /* to the client port */
	expect_pass(f, len);
	len = message(f, DHCP_DISCOVER, mac_a, 0, 0, 0);
	put32(f + OFF_IP_DST, DHCP_IPV4(10, 0, 0, 77));  /* to another host */
	fix_ip_checksum(f);
	expect_pass(f, len);
	len = message(f, DHCP_DISCOVER, mac_a, 0, 0, 0);
	f[OFF_IP_PROTO] = 6;            /* TCP */
	fix_ip_checksum(f);
	expect_pass(f, len);
	len = message(f, DHCP_DISCOVER, mac_a, 0, 0, 0);
	put16(f + OFF_IP + 6, 5);       /* a later fragment: no UDP header in it */
	fix_ip_checksum(f);
	expect_pass(f, len);
	len = message(f, DHCP_DISCOVER, mac_a, 0, 0, 0);
	f[OFF_IP] = 0x65;               /* IPv6 version number */
	expect_pass(f, len);
	len = message(f, DHCP_DISCOVER, mac_a, 0, 0, 0);
	f[OFF_IP] = 0x44;               /* header length below 5 words */
	expect_pass(f, len);
	len = message(f, DHCP_DISCOVER, mac_a, 0, 0, 0);
	put16(f + OFF_ETH_TYPE, 0x86dd);
	expect_pass(f, len);
	len = message(f, DHCP_DISCOVER, mac_a, 0, 0, 0);
	put16(f + OFF_ETH_TYPE, 0x8100);        /* tagged: not the untagged network's server */
	expect_pass(f, len);
	/* Every truncation of a DISCOVER: the IP total length says more than there is. */
	len = message(f, DHCP_DISCOVER, mac_a, 0, 0, 0);
	for (size_t cut = 0; cut < len; cut++)
		expect_pass(f, cut);
}

/* Every truncation of a DISCOVER whose IP and UDP lengths agree with the cut. */
static void test_truncated_messages(void **state)
{
	uint8_t f[FRAME_BUF];
	size_t full;

	(void)state;
	full = message(f, DHCP_DISCOVER, mac_a, 0, 0, 0);
	for (size_t cut = OFF_UDP + 8; cut < full; cut++) {
		uint64_t before = srv.stats.malformed;

		put16(f + OFF_IP_TOTAL_LEN, (uint16_t)(cut - OFF_IP));
		put16(f + OFF_UDP + 4, (uint16_t)(cut - OFF_UDP));
		fix_ip_checksum(f);
		assert_int_equal(input_at(f, cut, NOW), DHCP_TAKEN);
		assert_int_equal(reply_len, 0);
		assert_int_equal(srv.stats.malformed, before + 1);
	}
	assert_int_equal(srv.stats.offer, 0);
}

static void test_arp_for_server(void **state)
{
	uint8_t f[64] = { 0 };
	const size_t len = 42;

	(void)state;
	memcpy(f, bcast, 6);
	memcpy(f + 6, mac_a, 6);
	put16(f + 12, 0x0806);
	put16(f + 14, 1);
	put16(f + 16, 0x0800);
	f[18] = 6;
	f[19] = 4;
	put16(f + 20, 1);
	memcpy(f + 22, mac_a, 6);
	put32(f + 28, DHCP_IPV4(10, 0, 0, 100));
	put32(f + 38, SERVER_IP);
	assert_int_equal(input_at(f, len, NOW), DHCP_PASS);
	assert_int_equal(reply_len, 60);
	assert_memory_equal(reply, mac_a, 6);
	assert_memory_equal(reply + 6, server_mac, 6);
	assert_int_equal(get16(reply + 12), 0x0806);
	assert_int_equal(get16(reply + 14), 1);
	assert_int_equal(get16(reply + 16), 0x0800);
	assert_int_equal(reply[18], 6);
	assert_int_equal(reply[19], 4);
	assert_int_equal(get16(reply + 20), 2);
	assert_memory_equal(reply + 22, server_mac, 6);
	assert_int_equal(get32(reply + 28), SERVER_IP);
	assert_memory_equal(reply + 32, mac_a, 6);
	assert_int_equal(get32(reply + 38), DHCP_IPV4(10, 0, 0, 100));
	for (size_t i = 42; i < 60; i++)
		assert_int_equal(reply[i], 0);
	assert_int_equal(srv.stats.arp_reply, 1);

	/* For another address, a reply, or truncated: nothing. */
	put32(f + 38, SERVER_IP + 1);
	expect_pass(f, len);
	put32(f + 38, SERVER_IP);
	put16(f + 20, 2);
	expect_pass(f, len);
	put16(f + 20, 1);
	f[18] = 8;
	expect_pass(f, len);
	f[18] = 6;
	for (size_t cut = 0; cut < len; cut++)
		expect_pass(f, cut);
}

/* The type of the last reply, 0 for none. */
static int reply_type(void)
{
	return reply_len ? reply[OFF_OPTIONS + 2] : 0;
}

/*
 * One guest port, allowed one lease, makes up 128 clients (chaddr and
 * Ethernet source agree, so only the per-port count stops them): each
 * DISCOVER then REQUEST. The first client gets its address; the others
 * get no OFFER and a NAK, and the pool stays for the other ports.
 */
static void test_spoofed_clients_get_one_lease_per_port(void **state)
{
	uint8_t f[FRAME_BUF], mac[6] = { 0x02, 0x66, 0, 0, 0, 0 };
	unsigned acks = 0;

	(void)state;
	from = (struct dhcp_client_port){ .port = 3, .max_leases = 1 };
	for (unsigned i = 0; i < DHCP_MAX_LEASES; i++) {
		mac[5] = (uint8_t)i;
		assert_int_equal(input_at(f, message(f, DHCP_DISCOVER, mac, 0, 0, 0), NOW),
				 DHCP_TAKEN);
		assert_int_equal(reply_type(), i ? 0 : DHCP_OFFER);
		assert_int_equal(input_at(f, message(f, DHCP_REQUEST, mac, 0, POOL_START + i,
						     SERVER_IP), NOW), DHCP_TAKEN);
		assert_int_equal(reply_type(), i ? DHCP_NAK : DHCP_ACK);
		acks += reply_type() == DHCP_ACK;
	}
	assert_int_equal(acks, 1);
	assert_int_equal(srv.stats.port_full, DHCP_MAX_LEASES - 1);
	/* The port's one client renews as usual. */
	mac[5] = 0;
	send_at(DHCP_REQUEST, mac, POOL_START, 0, 0, NOW + 1000);
	check_lease_reply(DHCP_ACK, mac, POOL_START, POOL_START);
	/* Another port gets the next address. */
	from = (struct dhcp_client_port){ .port = 4, .max_leases = 1 };
	send_at(DHCP_DISCOVER, mac_b, 0, 0, 0, NOW);
	check_lease_reply(DHCP_OFFER, mac_b, POOL_START + 1, POOL_START + 1);
	/* Once the port's lease is released, another of its clients may have one. */
	from = (struct dhcp_client_port){ .port = 3, .max_leases = 1 };
	send_at(DHCP_RELEASE, mac, POOL_START, 0, SERVER_IP, NOW + 2000);
	mac[5] = 7;
	send_at(DHCP_DISCOVER, mac, 0, 0, 0, NOW + 3000);
	assert_int_equal(reply_type(), DHCP_OFFER);
}

/* A bridge port allowed three leases holds three and no more. */
static void test_bridge_port_holds_its_allowance(void **state)
{
	uint8_t mac[6] = { 0x02, 0x66, 0, 0, 1, 0 };

	(void)state;
	from = (struct dhcp_client_port){ .port = 1, .max_leases = 3 };
	for (unsigned i = 0; i < 4; i++) {
		mac[5] = (uint8_t)i;
		send_at(DHCP_DISCOVER, mac, 0, 0, 0, NOW);
		assert_int_equal(reply_type(), i < 3 ? DHCP_OFFER : 0);
	}
	/* An offer not taken up runs out and frees the port's room. */
	send_at(DHCP_DISCOVER, mac, 0, 0, 0, NOW + 10 * 60 * 1000);
	assert_int_equal(reply_type(), DHCP_OFFER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_settings_check, setup),
		cmocka_unit_test_setup(test_full_dora, setup),
		cmocka_unit_test_setup(test_requested_address_is_honoured, setup),
		cmocka_unit_test_setup(test_renew_and_rebind, setup),
		cmocka_unit_test_setup(test_init_reboot, setup),
		cmocka_unit_test_setup(test_release_then_discover_gets_same_address, setup),
		cmocka_unit_test_setup(test_decline, setup),
		cmocka_unit_test_setup(test_inform, setup),
		cmocka_unit_test_setup(test_exhaustion, setup),
		cmocka_unit_test_setup(test_table_exhaustion_with_large_pool, setup),
		cmocka_unit_test_setup(test_stable_lease_and_other_server, setup),
		cmocka_unit_test_setup(test_reserved_addresses_never_leased, setup),
		cmocka_unit_test_setup(test_reconfigure_keeps_leases_in_pool, setup),
		cmocka_unit_test_setup(test_malformed_options, setup),
		cmocka_unit_test_setup(test_pads_and_unknown_options_are_skipped, setup),
		cmocka_unit_test_setup(test_hostname_is_kept_sanitised, setup),
		cmocka_unit_test_setup(test_option_overload, setup),
		cmocka_unit_test_setup(test_header_checks, setup),
		cmocka_unit_test_setup(test_ip_and_udp_checks, setup),
		cmocka_unit_test_setup(test_other_traffic_passes, setup),
		cmocka_unit_test_setup(test_truncated_messages, setup),
		cmocka_unit_test_setup(test_arp_for_server, setup),
		cmocka_unit_test_setup(test_spoofed_clients_get_one_lease_per_port, setup),
		cmocka_unit_test_setup(test_bridge_port_holds_its_allowance, setup),
	};
	return cmocka_run_group_tests_name("dhcp", tests, NULL, NULL);
}
