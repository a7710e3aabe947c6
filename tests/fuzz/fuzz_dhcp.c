/*
 * libFuzzer harness of the DHCP server: the input is a short sequence of
 * frames a guest sends, with the clock moving between them, so that
 * offers, leases, releases, declines and expiries are reached.
 *
 * Input: one byte choosing the pool size, then records of
 *   ctl (1 byte), len (2 bytes, little-endian), len bytes.
 * ctl bits 0-1: for a raw frame, recompute the IPv4 header checksum (1)
 *               and set the IPv4 and UDP lengths from the frame length (2);
 * ctl bit 2:    the bytes are not a frame but a template: client number,
 *               flags, address choice, then the DHCP options, which the
 *               harness wraps in valid Ethernet, IPv4, UDP and BOOTP
 *               headers;
 * ctl bits 5-7: how far the clock moves first.
 * After every frame the reply and the lease table are checked; a
 * violation aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vnet/dhcp.h"

#define MAX_FRAMES 64
#define FRAME_CAP 2048
#define CTL_FIX_CHECKSUM 0x01
#define CTL_FIX_LENGTHS 0x02
#define CTL_TEMPLATE 0x04
#define CTL_TIME_SHIFT 5
#define TPL_BROADCAST 0x01              /* template flags */
#define TPL_CIADDR 0x02
#define TPL_TO_SERVER 0x04
#define TPL_HEADER 3                    /* client, flags, address choice */
#define CLIENTS 4

/* Offsets in a frame: Ethernet 14, IPv4 20, UDP 8, then BOOTP. */
#define OFF_IP 14
#define OFF_UDP 34
#define OFF_BOOTP 42
#define OFF_OPTIONS (OFF_BOOTP + 240)

#define SERVER_IP DHCP_IPV4(10, 0, 0, 1)
#define POOL_START DHCP_IPV4(10, 0, 0, 10)
#define GATEWAY DHCP_IPV4(10, 0, 0, 12)         /* inside larger pools: reserved */

static const uint64_t time_steps[8] = {
	0, 1, 1000, 61 * 1000, 10 * 60 * 1000 + 1, 3600 * 1000, 86400 * 1000ULL, 1ULL << 40,
};
static const uint8_t server_mac[6] = { 0x02, 0, 0, 0, 0, 0xfe };

static struct dhcp_server srv;
static uint8_t frame[FRAME_CAP];
static uint8_t reply[DHCP_FRAME_MAX];

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

static uint32_t header_sum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

static void check(int ok)
{
	if (!ok)
		abort();
}

static void fix_checksum(size_t len)
{
	size_t ihl = (size_t)(frame[OFF_IP] & 0xf) * 4;

	if (len < OFF_IP + ihl || ihl < 20)
		return;
	put16(frame + OFF_IP + 10, 0);
	put16(frame + OFF_IP + 10, (uint16_t)~header_sum(frame + OFF_IP, ihl));
}

static void fix_lengths(size_t len)
{
	size_t ihl = (size_t)(frame[OFF_IP] & 0xf) * 4;

	if (len < OFF_IP + ihl + 8 || ihl < 20)
		return;
	put16(frame + OFF_IP + 2, (uint16_t)(len - OFF_IP));
	put16(frame + OFF_IP + ihl + 4, (uint16_t)(len - OFF_IP - ihl));
}

/* A well-formed DHCP client message around the template's options. */
static size_t from_template(const uint8_t *t, size_t len)
{
	uint8_t mac[6] = { 0x02, 0, 0, 0, 0x01, 0 };
	uint8_t flags;
	uint32_t addr;
	size_t opts, total;

	if (len < TPL_HEADER)
		return 0;
	mac[5] = t[0] % CLIENTS;
	flags = t[1];
	addr = POOL_START + (t[2] & 0xf);
	opts = len - TPL_HEADER;
	if (opts > FRAME_CAP - OFF_OPTIONS)
		opts = FRAME_CAP - OFF_OPTIONS;
	total = OFF_OPTIONS + opts;

	memset(frame, 0, total);
	memset(frame, 0xff, 6);
	memcpy(frame + 6, mac, 6);
	put16(frame + 12, ETH_TYPE_IPV4);
	frame[OFF_IP] = 0x45;
	frame[OFF_IP + 8] = 64;
	frame[OFF_IP + 9] = IPV4_PROTO_UDP;
	put32(frame + OFF_IP + 16, IPV4_BROADCAST);
	put16(frame + OFF_UDP, UDP_PORT_BOOTPC);
	put16(frame + OFF_UDP + 2, UDP_PORT_BOOTPS);
	frame[OFF_BOOTP] = BOOTP_OP_REQUEST;
	frame[OFF_BOOTP + 1] = BOOTP_HTYPE_ETHERNET;
	frame[OFF_BOOTP + 2] = ETH_ALEN;
	put32(frame + OFF_BOOTP + 4, 0xfeedf00d);
	if (flags & TPL_BROADCAST)
		put16(frame + OFF_BOOTP + 10, BOOTP_FLAG_BROADCAST);
	if (flags & TPL_CIADDR) {
		put32(frame + OFF_IP + 12, addr);
		put32(frame + OFF_BOOTP + 12, addr);
	}
	if (flags & TPL_TO_SERVER) {
		memcpy(frame, server_mac, 6);
		put32(frame + OFF_IP + 16, SERVER_IP);
	}
	memcpy(frame + OFF_BOOTP + 28, mac, 6);
	memcpy(frame + OFF_BOOTP + 236, (const uint8_t[]){ 99, 130, 83, 99 }, 4);
	memcpy(frame + OFF_OPTIONS, t + TPL_HEADER, opts);
	fix_lengths(total);
	fix_checksum(total);
	return total;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Whatever the server sent must be a well-formed frame from it: an ARP
 * reply to a frame it let pass, or a DHCP reply to one it took, giving
 * only pool addresses that are not reserved.
 */
static void check_reply(enum dhcp_verdict verdict, size_t len, uint32_t pool_end)
{
	uint32_t yiaddr;

	if (!len)
		return;
	check(!memcmp(reply + 6, server_mac, 6));
	if (len == ETH_MIN_FRAME) {
		check(verdict == DHCP_PASS && reply[12] == 0x08 && reply[13] == 0x06);
		return;
	}
	check(verdict == DHCP_TAKEN && len == DHCP_FRAME_MAX);
	check(header_sum(reply + OFF_IP, 20) == 0xffff);
	check(reply[OFF_BOOTP] == BOOTP_OP_REPLY);
	check(reply[OFF_OPTIONS] == DHCP_OPT_MESSAGE_TYPE);
	yiaddr = get32(reply + OFF_BOOTP + 16);
	check(!yiaddr || (yiaddr >= POOL_START && yiaddr <= pool_end && yiaddr != GATEWAY));
}

/*
 * Frame n comes from switch port n % PORTS, which may hold port + 1
 * leases: the per-port cap is checked along with the rest.
 */
#define PORTS 3

/*
 * Every address is leased at most once, inside the pool; every client
 * holds at most one; no port holds more offered or bound leases than its cap.
 */
static void check_leases(uint64_t now, uint32_t pool_end)
{
	struct dhcp_lease l[DHCP_MAX_LEASES];
	unsigned n = dhcp_server_leases(&srv, now, l, DHCP_MAX_LEASES);
	unsigned held[PORTS] = { 0 };

	for (unsigned i = 0; i < n; i++) {
		check(l[i].state != DHCP_LEASE_FREE && l[i].state <= DHCP_LEASE_DECLINED);
		if (l[i].state == DHCP_LEASE_OFFERED || l[i].state == DHCP_LEASE_BOUND) {
			check(l[i].port < PORTS);
			check(++held[l[i].port] <= l[i].port + 1u);
		}
		check(l[i].ip >= POOL_START && l[i].ip <= pool_end && l[i].ip != GATEWAY);
		for (unsigned j = i + 1; j < n; j++) {
			check(l[i].ip != l[j].ip);
			check(l[i].state == DHCP_LEASE_DECLINED || l[j].state == DHCP_LEASE_DECLINED ||
			      memcmp(l[i].mac, l[j].mac, 6));
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dhcp_settings s = {
		.enabled = true,
		.server_ip = SERVER_IP,
		.pool_start = POOL_START,
		.netmask = DHCP_IPV4(255, 255, 255, 0),
		.gateway = GATEWAY,
		.dns = { DHCP_IPV4(10, 0, 0, 53), 0 },
		.lease_s = 60,
	};
	uint64_t now = 1000;
	size_t pos = 1;
	char err[160];

	if (size < 1)
		return 0;
	s.pool_end = POOL_START + (data[0] & 7);
	memcpy(s.server_mac, server_mac, 6);
	dhcp_server_init(&srv);
	if (dhcp_server_configure(&srv, &s, err, sizeof(err)))
		abort();

	for (unsigned n = 0; n < MAX_FRAMES && size - pos >= 3; n++) {
		uint8_t ctl = data[pos];
		size_t len = (size_t)data[pos + 1] | (size_t)data[pos + 2] << 8;
		size_t flen;
		size_t reply_len;
		enum dhcp_verdict verdict;
		const struct dhcp_client_port from = { .port = n % PORTS, .max_leases = n % PORTS + 1 };

		pos += 3;
		if (len > size - pos)
			len = size - pos;
		now += time_steps[ctl >> CTL_TIME_SHIFT];
		if (ctl & CTL_TEMPLATE) {
			flen = from_template(data + pos, len);
		} else {
			flen = len < FRAME_CAP ? len : FRAME_CAP;
			memcpy(frame, data + pos, flen);
			if (ctl & CTL_FIX_LENGTHS)
				fix_lengths(flen);
			if (ctl & CTL_FIX_CHECKSUM)
				fix_checksum(flen);
		}
		pos += len;
		/* The exact length: a sanitizer sees any read past it. */
		{
			uint8_t *copy = malloc(flen ? flen : 1);

			memcpy(copy, frame, flen);
			verdict = dhcp_server_input(&srv, &from, copy, flen, now, reply, &reply_len);
			free(copy);
		}
		check_reply(verdict, reply_len, s.pool_end);
		check_leases(now, s.pool_end);
	}
	return 0;
}
