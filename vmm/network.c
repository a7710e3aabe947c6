#include "vmm/network.h"

#include "vmm/clock.h"
#include "vmm/log.h"
#include "vmm/page_alloc.h"
#include "vmm/vm.h"

#include <string.h>

/*
 * Each adapter owns the receive ring the switch writes into, in host
 * pages, never in guest memory: frames wait there until the guest posts
 * receive buffers (vmm/platform.c moves them). 32 slots (288 KiB) hold a
 * TCP window's burst between two runs of the receiving VM; a full ring
 * drops and counts, it never stalls the sender.
 */
#define NIC_RING_SLOTS 32
#define NIC_RING_PAGES ((VNET_RING_BYTES(NIC_RING_SLOTS) + PAGE_SIZE - 1) / PAGE_SIZE)
#define NET_PAGES ((sizeof(struct vnet_switch) + PAGE_SIZE - 1) / PAGE_SIZE)

/* Locally administered (bit 1 of the first octet), unicast: 02:76:6d is "vm". */
static const uint8_t mac_prefix[3] = { 0x02, 0x76, 0x6d };

_Static_assert(CFG_ALLOW_MACS_MAX <= VNET_ALLOW_MACS_MAX, "the switch holds what the config allows");

struct nic {
	struct nic_info info;
	int port;
	struct vnet_ring *ring;
};

static struct page_alloc *host_pages;
static void (*link_hook)(unsigned vm_id, unsigned nic, bool up);
static struct vnet_switch *nets[NET_MAX];
static struct nic nics[VM_MAX][NIC_MAX];

void network_init(struct page_alloc *pages)
{
	host_pages = pages;
	for (unsigned v = 0; v < VM_MAX; v++)
		for (unsigned i = 0; i < NIC_MAX; i++)
			nics[v][i].info.net = -1;
}

void network_on_link_change(void (*hook)(unsigned vm_id, unsigned nic, bool up))
{
	link_hook = hook;
}

struct vnet_switch *network_get(unsigned index)
{
	return index < NET_MAX ? nets[index] : NULL;
}

int network_find(const char *name)
{
	for (unsigned i = 0; i < NET_MAX; i++)
		if (nets[i] && !strcmp(nets[i]->name, name))
			return (int)i;
	return -1;
}

unsigned network_count(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < NET_MAX; i++)
		n += nets[i] != NULL;
	return n;
}

unsigned network_nic_count(unsigned index)
{
	unsigned n = 0;

	/* Bit n of attached is port n; no libgcc (__popcountdi2) in the image. */
	for (uint32_t bits = index < NET_MAX && nets[index] ? nets[index]->attached : 0; bits;
	     bits &= bits - 1)
		n++;
	return n;
}

/*
 * A new network's DHCP server is off, with settings that work as soon as
 * it is turned on: 192.168.(100 + index).0/24, the server at .1, a pool
 * of .10-.99, one-hour leases.
 */
static void default_dhcp(unsigned index, struct dhcp_settings *s)
{
	uint32_t net = DHCP_IPV4(192, 168, 100 + index, 0);

	*s = (struct dhcp_settings){
		.server_ip = net | 1,
		.server_mac = { 0x02, 0x76, 0x6d, 0xff, 0x00, (uint8_t)index },
		.pool_start = net | 10,
		.pool_end = net | 99,
		.netmask = DHCP_IPV4(255, 255, 255, 0),
		.lease_s = 3600,
	};
}

int network_create(const char *name, uint32_t mtu)
{
	struct dhcp_settings dhcp;
	char err[96];
	uint64_t pa;
	int free_index = -1;

	if (network_find(name) >= 0)
		return NET_E_EXISTS;
	if (mtu < VNET_MTU_MIN || mtu > VNET_MTU_MAX)
		return NET_E_INVALID;
	for (unsigned i = 0; i < NET_MAX && free_index < 0; i++)
		if (!nets[i])
			free_index = (int)i;
	if (free_index < 0 || page_alloc_alloc(host_pages, NET_PAGES, 1, &pa))
		return NET_E_FULL;
	struct vnet_switch *sw = (struct vnet_switch *)(uintptr_t)pa;
	vnet_switch_init(sw, name, mtu);
	default_dhcp((unsigned)free_index, &dhcp);
	vnet_switch_configure_dhcp(sw, &dhcp, err, sizeof(err));
	nets[free_index] = sw;
	log_info("network '%s': created (MTU %u)", name, (unsigned)mtu);
	return free_index;
}

int network_delete(unsigned index)
{
	struct vnet_switch *sw = network_get(index);
	int detached = 0;

	if (!sw)
		return NET_E_NOT_FOUND;
	for (unsigned v = 0; v < VM_MAX; v++)
		for (unsigned i = 0; i < NIC_MAX; i++)
			if (nics[v][i].info.present && nics[v][i].info.net == (int)index) {
				nic_detach(v, i);
				detached++;
			}
	log_info("network '%s': deleted (%d adapter(s) detached)", sw->name, detached);
	nets[index] = NULL;
	page_alloc_free(host_pages, (uint64_t)(uintptr_t)sw, NET_PAGES);
	return detached;
}

static bool mac_in_use(const uint8_t *mac)
{
	for (unsigned v = 0; v < VM_MAX; v++)
		for (unsigned i = 0; i < NIC_MAX; i++)
			if (nics[v][i].info.present && !memcmp(nics[v][i].info.mac, mac, 6))
				return true;
	for (unsigned n = 0; n < NET_MAX; n++)
		if (nets[n] && !memcmp(nets[n]->dhcp.cfg.server_mac, mac, 6))
			return true;
	return false;
}

int nic_add(unsigned vm_id, const uint8_t *mac)
{
	static const uint8_t zero[6];
	uint8_t chosen[6];
	uint64_t pa;
	int slot = -1;

	if (vm_id >= VM_MAX)
		return NET_E_NOT_FOUND;
	for (unsigned i = 0; i < NIC_MAX && slot < 0; i++)
		if (!nics[vm_id][i].info.present)
			slot = (int)i;
	if (slot < 0)
		return NET_E_FULL;
	if (mac) {
		if ((mac[0] & 1) || !memcmp(mac, zero, 6))
			return NET_E_INVALID;
		if (mac_in_use(mac))
			return NET_E_EXISTS;
		memcpy(chosen, mac, 6);
	} else {
		/* 02:76:6d:<k>:<vm>:<nic>, k counting past addresses an operator took. */
		unsigned k = 0;
		do {
			const uint8_t gen[6] = { mac_prefix[0], mac_prefix[1], mac_prefix[2],
						 (uint8_t)k, (uint8_t)vm_id, (uint8_t)slot };
			memcpy(chosen, gen, 6);
		} while (mac_in_use(chosen) && ++k < 256);
		if (k == 256)
			return NET_E_EXISTS;
	}
	if (page_alloc_alloc(host_pages, NIC_RING_PAGES, 1, &pa))
		return NET_E_FULL;
	struct nic *n = &nics[vm_id][slot];
	*n = (struct nic){ .info = { .present = true, .net = -1 }, .port = -1,
			   .ring = (struct vnet_ring *)(uintptr_t)pa };
	memcpy(n->info.mac, chosen, 6);
	return slot;
}

static struct nic *nic_slot(unsigned vm_id, unsigned nic)
{
	if (vm_id >= VM_MAX || nic >= NIC_MAX || !nics[vm_id][nic].info.present)
		return NULL;
	return &nics[vm_id][nic];
}

int nic_remove(unsigned vm_id, unsigned nic)
{
	struct nic *n = nic_slot(vm_id, nic);

	if (!n)
		return NET_E_NOT_FOUND;
	nic_detach(vm_id, nic);
	page_alloc_free(host_pages, (uint64_t)(uintptr_t)n->ring, NIC_RING_PAGES);
	*n = (struct nic){ .info = { .net = -1 }, .port = -1 };
	return NET_OK;
}

void nic_remove_all(unsigned vm_id)
{
	for (unsigned i = 0; i < NIC_MAX; i++)
		nic_remove(vm_id, i);
}

const struct nic_info *nic_get(unsigned vm_id, unsigned nic)
{
	const struct nic *n = nic_slot(vm_id, nic);
	return n ? &n->info : NULL;
}

unsigned nic_count(unsigned vm_id)
{
	unsigned count = 0;

	for (unsigned i = 0; i < NIC_MAX; i++)
		count += nic_slot(vm_id, i) != NULL;
	return count;
}

int nic_detach(unsigned vm_id, unsigned nic)
{
	struct nic *n = nic_slot(vm_id, nic);

	if (!n)
		return NET_E_NOT_FOUND;
	if (n->info.net >= 0 && nets[n->info.net]) {
		vnet_port_detach(nets[n->info.net], (unsigned)n->port);
		if (link_hook)
			link_hook(vm_id, nic, false);
	}
	n->info.net = -1;
	n->port = -1;
	return NET_OK;
}

int nic_attach(unsigned vm_id, unsigned nic, unsigned net)
{
	struct nic *n = nic_slot(vm_id, nic);
	struct vnet_switch *sw = network_get(net);

	if (!n || !sw)
		return NET_E_NOT_FOUND;
	if (n->info.net == (int)net)
		return NET_OK;
	nic_detach(vm_id, nic);
	int port = vnet_port_attach(sw, n->info.mac, n->info.allow_macs, n->ring, NIC_RING_SLOTS);
	if (port == VNET_ERR_MAC_IN_USE)
		return NET_E_EXISTS;
	if (port < 0)
		return NET_E_FULL;
	n->port = port;
	n->info.net = (int)net;
	if (link_hook)
		link_hook(vm_id, nic, true);
	return NET_OK;
}

int nic_allow_macs(unsigned vm_id, unsigned nic, unsigned allow_macs)
{
	struct nic *n = nic_slot(vm_id, nic);

	if (!n)
		return NET_E_NOT_FOUND;
	if (allow_macs > CFG_ALLOW_MACS_MAX)
		return NET_E_INVALID;
	n->info.allow_macs = allow_macs;
	return NET_OK;
}

int nic_transmit(unsigned vm_id, unsigned nic, const void *frame, size_t len)
{
	struct nic *n = nic_slot(vm_id, nic);

	if (!n || n->info.net < 0 || !nets[n->info.net])
		return -1;
	vnet_switch_send(nets[n->info.net], (unsigned)n->port, frame, len, clock_ns() / 1000000);
	return 0;
}

int nic_peek(unsigned vm_id, unsigned nic, const void **frame)
{
	const struct nic *n = nic_slot(vm_id, nic);

	if (!n || n->info.net < 0)
		return 0;
	return vnet_ring_peek(n->ring, NIC_RING_SLOTS, frame);
}

void nic_consume(unsigned vm_id, unsigned nic)
{
	struct nic *n = nic_slot(vm_id, nic);

	if (n && n->info.net >= 0)
		vnet_ring_consume(n->ring);
}

int network_dhcp_set(unsigned index, const struct dhcp_settings *s, char *err, size_t err_size)
{
	struct vnet_switch *sw = network_get(index);

	if (!sw)
		return NET_E_NOT_FOUND;
	return vnet_switch_configure_dhcp(sw, s, err, err_size) ? NET_E_INVALID : NET_OK;
}
