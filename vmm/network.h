/*
 * The virtual networks and network adapters as objects of the management
 * API (IVMVirtualNetwork, IVMNetworkAdapter): each network is a vnet
 * switch (vnet/switch.h) with its DHCP server; each VM has up to
 * CFG_MAX_NICS adapters, each with a MAC and a small receive ring, plugged
 * into a port of at most one network. Until virtio-net connects a guest to
 * its adapter no frames move, but attach, detach, statistics, DHCP
 * settings and leases are the switch's own.
 */
#ifndef VMM_NETWORK_H
#define VMM_NETWORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot/config.h"
#include "vnet/switch.h"

#define NET_MAX CFG_MAX_NETWORKS
#define NIC_MAX CFG_MAX_NICS

struct page_alloc;

enum net_error {
	NET_OK = 0,
	NET_E_NOT_FOUND = -1,
	NET_E_EXISTS = -2,    /* name or MAC in use */
	NET_E_FULL = -3,      /* networks, adapters, switch ports or memory */
	NET_E_INVALID = -4,   /* MTU, MAC */
};

struct nic_info {
	bool present;
	uint8_t mac[6];
	int net;              /* network index, -1: detached */
	uint32_t allow_macs;  /* port security: further source MACs (nic_allow_macs) */
};

void network_init(struct page_alloc *pages);

/* Networks by index 0..NET_MAX-1; NULL for an unused index. */
struct vnet_switch *network_get(unsigned index);
int network_find(const char *name); /* index, or -1 */
unsigned network_count(void);
/* Adapters attached to the network. */
unsigned network_nic_count(unsigned index);

int network_create(const char *name, uint32_t mtu);
/* Detaches every adapter first (unplugging the cables); returns how many, or < 0. */
int network_delete(unsigned index);

/* Adapter `nic` of VM `vm_id`: mac NULL picks a unique one. Returns the index or < 0. */
int nic_add(unsigned vm_id, const uint8_t *mac);
int nic_remove(unsigned vm_id, unsigned nic);
/* Removes all of a VM's adapters (the VM is deleted). */
void nic_remove_all(unsigned vm_id);
const struct nic_info *nic_get(unsigned vm_id, unsigned nic); /* NULL: none */
unsigned nic_count(unsigned vm_id);
/*
 * Port security: the adapter may send with allow_macs source addresses
 * besides its own (0..CFG_ALLOW_MACS_MAX; 0 when added), for a guest that
 * bridges nested VMs; it takes effect when the adapter is next attached.
 */
int nic_allow_macs(unsigned vm_id, unsigned nic, unsigned allow_macs);
/* Attaching an attached adapter moves it; detaching a detached one is OK. */
int nic_attach(unsigned vm_id, unsigned nic, unsigned net);
int nic_detach(unsigned vm_id, unsigned nic);

/* Who learns that an adapter was plugged in or pulled out (the device models). */
void network_on_link_change(void (*hook)(unsigned vm_id, unsigned nic, bool up));

/*
 * The data path of an adapter. nic_transmit hands a frame to its network's
 * switch (-1: not attached, the cable is out), which copies it into the
 * receivers' rings. nic_peek shows the oldest frame the switch queued for
 * the adapter, in its ring (its length, 0: none), until nic_consume.
 */
int nic_transmit(unsigned vm_id, unsigned nic, const void *frame, size_t len);
int nic_peek(unsigned vm_id, unsigned nic, const void **frame);
void nic_consume(unsigned vm_id, unsigned nic);

/* The DHCP settings the API shows for a network, and a change to them. */
int network_dhcp_set(unsigned index, const struct dhcp_settings *s, char *err, size_t err_size);

#endif
