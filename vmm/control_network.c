/*
 * Networks and adapters: IVMVirtualServer's network requests,
 * IVMVirtualMachine's adapter requests, IVMNetworkAdapter, and
 * IVMVirtualNetwork with its DHCP server.
 */
#include "vmm/control_internal.h"

#include "boot/boot_info.h"
#include "vmm/clock.h"
#include "vmm/log.h"
#include "vmm/network.h"
#include "vmm/platform.h"
#include "vmm/vm.h"

#include <string.h>

static int need_net(struct call *c, uint16_t request, uint8_t tag, unsigned *net)
{
	char name[API_NAME_MAX + 1];

	if (need_str(c, request, tag, name, sizeof(name)))
		return -1;
	int index = network_find(name);
	if (index < 0)
		return fail(c, API_E_NOT_FOUND, "%s: no network named '%s'", request_name(request),
			    name);
	*net = (unsigned)index;
	return 0;
}

static int need_nic(struct call *c, uint16_t request, struct vm **vm, unsigned *nic)
{
	uint8_t index;

	if (need_vm(c, request, vm))
		return -1;
	if (tlv_get_u8(c->req, c->len, API_TAG_NIC, &index) != TLV_OK)
		return fail(c, API_E_INVALID_ARGUMENT, "%s: missing nic", request_name(request));
	if (!nic_get((*vm)->id, index))
		return fail(c, API_E_NOT_FOUND, "%s: %s has no adapter %u", request_name(request),
			    (*vm)->cfg->name, index);
	*nic = index;
	return 0;
}

/* "lan" or "lan,mac=02:00:00:00:00:01", as the configuration's nic = value. */
int parse_nic_spec(struct call *c, const struct tlv *t, struct cfg_nic *nic)
{
	char spec[API_STR_MAX + 1];
	size_t n = t->len, comma;

	memcpy(spec, t->value, n);
	spec[n] = '\0';
	for (comma = 0; comma < n && spec[comma] != ','; comma++)
		;
	if (comma == 0 || comma >= CFG_NAME_MAX)
		return fail(c, API_E_INVALID_ARGUMENT, "nic_spec '%s': expected NETWORK or "
			    "NETWORK,mac=XX:XX:XX:XX:XX:XX", spec);
	memcpy(nic->network, spec, comma);
	nic->network[comma] = '\0';
	if (network_find(nic->network) < 0)
		return fail(c, API_E_NOT_FOUND, "nic_spec '%s': no network named '%s'", spec,
			    nic->network);
	if (comma == n)
		return 0;
	const char *m = spec + comma + 1;
	if (strlen(m) != 21 || memcmp(m, "mac=", 4))
		return fail(c, API_E_INVALID_ARGUMENT, "nic_spec '%s': expected ,mac=XX:XX:XX:XX:XX:XX",
			    spec);
	if (!config_parse_mac(m + 4, strlen(m + 4), nic->mac))
		return fail(c, API_E_INVALID_ARGUMENT, "nic_spec '%s': bad MAC", spec);
	nic->mac_set = true;
	return 0;
}

int add_nics(struct call *c, const struct vm *vm, const struct cfg_nic *nics,
		    unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		/* No network: the adapter is there, its cable out (a saved VM's may be). */
		int net = nics[i].network[0] ? network_find(nics[i].network) : -1;
		if (nics[i].network[0] && net < 0)
			return fail(c, API_E_NOT_FOUND, "%s: adapter %u's network '%s' does not "
				    "exist", vm->cfg->name, i, nics[i].network);
		int index = nic_add(vm->id, nics[i].mac_set ? nics[i].mac : NULL);
		if (index == NET_E_EXISTS)
			return fail(c, API_E_ALREADY_EXISTS, "%s: MAC of adapter %u is in use",
				    vm->cfg->name, i);
		if (index == NET_E_INVALID)
			return fail(c, API_E_INVALID_ARGUMENT, "%s: MAC of adapter %u is multicast "
				    "or zero", vm->cfg->name, i);
		if (index < 0 || nic_allow_macs(vm->id, (unsigned)index, nics[i].allow_macs) ||
		    (net >= 0 && nic_attach(vm->id, (unsigned)index, (unsigned)net)))
			return fail(c, API_E_NO_RESOURCES, "%s: no room for adapter %u",
				    vm->cfg->name, i);
	}
	return 0;
}

static void put_net_entry(struct call *c, unsigned i)
{
	const struct vnet_switch *sw = network_get(i);

	if (!sw)
		return;
	size_t list = tlv_list_begin(&c->w, API_TAG_NET_ENTRY);
	tlv_put_str(&c->w, API_TAG_NET, sw->name);
	tlv_put_u32(&c->w, API_TAG_MTU, sw->mtu);
	tlv_put_u32(&c->w, API_TAG_NIC_COUNT, network_nic_count(i));
	tlv_list_end(&c->w, list);
}

int list_nets(struct call *c)
{
	return put_paged(c, NET_MAX, put_net_entry);
}

int create_net(struct call *c)
{
	char name[API_NAME_MAX + 1];
	uint32_t mtu = VNET_MTU_DEFAULT;

	if (need_str(c, API_REQ_CREATE_VIRTUAL_NETWORK, API_TAG_NET, name, sizeof(name)))
		return -1;
	tlv_get_u32(c->req, c->len, API_TAG_MTU, &mtu);
	int r = network_create(name, mtu);
	if (r == NET_E_EXISTS)
		return fail(c, API_E_ALREADY_EXISTS, "CreateVirtualNetwork: '%s' exists", name);
	if (r == NET_E_INVALID)
		return fail(c, API_E_INVALID_ARGUMENT, "CreateVirtualNetwork: mtu must be %u..%u",
			    VNET_MTU_MIN, VNET_MTU_MAX);
	if (r < 0)
		return fail(c, API_E_NO_RESOURCES, "CreateVirtualNetwork: at most %u networks",
			    NET_MAX);
	tlv_put_str(&c->w, API_TAG_NET, name);
	tlv_put_u32(&c->w, API_TAG_MTU, mtu);
	return 0;
}

int delete_net(struct call *c)
{
	unsigned net;

	if (need_net(c, API_REQ_DELETE_VIRTUAL_NETWORK, API_TAG_NET, &net))
		return -1;
	tlv_put_u32(&c->w, API_TAG_NIC_COUNT, (uint32_t)network_delete(net));
	return 0;
}

static int turned_off_vm(struct call *c, uint16_t rq, struct vm *vm)
{
	if (vm->state == VM_STATE_TURNED_OFF)
		return 0;
	fail(c, API_E_INVALID_STATE, "%s: %s is %s, not TurnedOff", request_name(rq),
	     vm->cfg->name, vm_state_name(vm->state));
	tlv_put_u8(&c->w, API_TAG_STATE, (uint8_t)vm->state);
	return -1;
}

int add_nic(struct call *c)
{
	const uint16_t rq = API_REQ_ADD_NETWORK_ADAPTER;
	const uint8_t *mac;
	size_t n;
	struct vm *vm;

	if (need_vm(c, rq, &vm) || turned_off_vm(c, rq, vm))
		return -1;
	bool given = tlv_get_bytes(c->req, c->len, API_TAG_MAC, &mac, &n) == TLV_OK;
	int nic = nic_add(vm->id, given ? mac : NULL);
	if (nic == NET_E_INVALID)
		return fail(c, API_E_INVALID_ARGUMENT, "AddNetworkAdapter: multicast or zero MAC");
	if (nic == NET_E_EXISTS)
		return fail(c, API_E_ALREADY_EXISTS, "AddNetworkAdapter: MAC in use");
	if (nic < 0)
		return fail(c, API_E_NO_RESOURCES, "AddNetworkAdapter: %s has %u adapters",
			    vm->cfg->name, NIC_MAX);
	tlv_put_u8(&c->w, API_TAG_NIC, (uint8_t)nic);
	tlv_put(&c->w, API_TAG_MAC, nic_get(vm->id, (unsigned)nic)->mac, 6);
	return 0;
}

int remove_nic(struct call *c)
{
	const uint16_t rq = API_REQ_REMOVE_NETWORK_ADAPTER;
	struct vm *vm;
	unsigned nic;

	if (need_nic(c, rq, &vm, &nic) || turned_off_vm(c, rq, vm))
		return -1;
	nic_remove(vm->id, nic);
	return 0;
}

int list_nics(struct call *c)
{
	struct vm *vm;

	if (need_vm(c, API_REQ_LIST_NETWORK_ADAPTERS, &vm))
		return -1;
	for (unsigned i = 0; i < NIC_MAX; i++) {
		const struct nic_info *n = nic_get(vm->id, i);
		if (!n)
			continue;
		size_t list = tlv_list_begin(&c->w, API_TAG_NIC_ENTRY);
		tlv_put_u8(&c->w, API_TAG_NIC, (uint8_t)i);
		tlv_put(&c->w, API_TAG_MAC, n->mac, 6);
		if (n->net >= 0)
			tlv_put_str(&c->w, API_TAG_NET, network_get((unsigned)n->net)->name);
		tlv_list_end(&c->w, list);
	}
	return 0;
}

int get_mac(struct call *c)
{
	struct vm *vm;
	unsigned nic;

	if (need_nic(c, API_REQ_GET_MAC_ADDRESS, &vm, &nic))
		return -1;
	tlv_put(&c->w, API_TAG_MAC, nic_get(vm->id, nic)->mac, 6);
	return 0;
}

int attach_nic(struct call *c)
{
	const uint16_t rq = API_REQ_ATTACH_TO_VIRTUAL_NETWORK;
	struct vm *vm;
	unsigned nic, net;

	if (need_nic(c, rq, &vm, &nic) || need_net(c, rq, API_TAG_NET, &net))
		return -1;
	int r = nic_attach(vm->id, nic, net);
	if (r == NET_E_EXISTS)
		return fail(c, API_E_ALREADY_EXISTS, "AttachToVirtualNetwork: the adapter's MAC is "
			    "in use on '%s'", network_get(net)->name);
	if (r < 0)
		return fail(c, API_E_NO_RESOURCES, "AttachToVirtualNetwork: '%s' has no free port",
			    network_get(net)->name);
	return 0;
}

int detach_nic(struct call *c)
{
	struct vm *vm;
	unsigned nic;

	if (need_nic(c, API_REQ_DETACH_FROM_VIRTUAL_NETWORK, &vm, &nic))
		return -1;
	nic_detach(vm->id, nic);
	return 0;
}

int get_adapters(struct call *c)
{
	unsigned net;

	if (need_net(c, API_REQ_GET_ADAPTERS, API_TAG_NET, &net))
		return -1;
	for (unsigned i = 0; i < vm_count(); i++) {
		const struct vm *vm = vm_by_index(i);
		for (unsigned k = 0; k < NIC_MAX; k++) {
			const struct nic_info *n = nic_get(vm->id, k);
			if (!n || n->net != (int)net)
				continue;
			size_t list = tlv_list_begin(&c->w, API_TAG_NIC_ENTRY);
			tlv_put_str(&c->w, API_TAG_VM, vm->cfg->name);
			tlv_put_u8(&c->w, API_TAG_NIC, (uint8_t)k);
			tlv_put(&c->w, API_TAG_MAC, n->mac, 6);
			tlv_list_end(&c->w, list);
		}
	}
	return 0;
}

int get_statistics(struct call *c)
{
	struct vnet_counters s;
	uint64_t drops = 0;
	unsigned net;

	if (need_net(c, API_REQ_GET_STATISTICS, API_TAG_NET, &net))
		return -1;
	vnet_switch_stats(network_get(net), &s);
	for (unsigned i = 0; i < VNET_DROP_REASONS; i++)
		drops += s.drops[i];
	tlv_put_u64(&c->w, API_TAG_RX_FRAMES, s.rx_frames);
	tlv_put_u64(&c->w, API_TAG_RX_BYTES, s.rx_bytes);
	tlv_put_u64(&c->w, API_TAG_TX_FRAMES, s.tx_frames);
	tlv_put_u64(&c->w, API_TAG_TX_BYTES, s.tx_bytes);
	tlv_put_u64(&c->w, API_TAG_DROPS, drops);
	tlv_put_u32(&c->w, API_TAG_NIC_COUNT, network_nic_count(net));
	return 0;
}

static void put_ipv4(struct tlv_writer *w, uint8_t tag, uint32_t ip)
{
	uint32_t be = __builtin_bswap32(ip);
	tlv_put(w, tag, &be, 4);
}

static uint32_t get_ipv4(const uint8_t *v)
{
	return (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
}

static void put_dhcp(struct call *c, const struct dhcp_settings *s)
{
	uint32_t range[2] = { __builtin_bswap32(s->pool_start), __builtin_bswap32(s->pool_end) };
	uint32_t dns[DHCP_MAX_DNS];
	unsigned ndns = 0;

	tlv_put_u8(&c->w, API_TAG_DHCP_ENABLED, s->enabled);
	tlv_put(&c->w, API_TAG_DHCP_RANGE, range, sizeof(range));
	put_ipv4(&c->w, API_TAG_NETMASK, s->netmask);
	put_ipv4(&c->w, API_TAG_GATEWAY, s->gateway);
	for (unsigned i = 0; i < DHCP_MAX_DNS; i++)
		if (s->dns[i])
			dns[ndns++] = __builtin_bswap32(s->dns[i]);
	if (ndns)
		tlv_put(&c->w, API_TAG_DNS, dns, 4 * ndns);
	tlv_put_u32(&c->w, API_TAG_LEASE_TIME_S, s->lease_s);
}

int get_dhcp(struct call *c)
{
	unsigned net;

	if (need_net(c, API_REQ_GET_DHCP_SETTINGS, API_TAG_NET, &net))
		return -1;
	put_dhcp(c, &network_get(net)->dhcp.cfg);
	return 0;
}

int set_dhcp(struct call *c)
{
	unsigned net;
	struct tlv t;
	char err[128];

	if (need_net(c, API_REQ_SET_DHCP_SETTINGS, API_TAG_NET, &net))
		return -1;
	struct dhcp_settings s = network_get(net)->dhcp.cfg;
	uint8_t enabled;
	if (tlv_get_u8(c->req, c->len, API_TAG_DHCP_ENABLED, &enabled) == TLV_OK)
		s.enabled = enabled;
	if (tlv_find(c->req, c->len, API_TAG_DHCP_RANGE, &t) == TLV_OK) {
		s.pool_start = get_ipv4(t.value);
		s.pool_end = get_ipv4(t.value + 4);
	}
	if (tlv_find(c->req, c->len, API_TAG_NETMASK, &t) == TLV_OK)
		s.netmask = get_ipv4(t.value);
	if (tlv_find(c->req, c->len, API_TAG_GATEWAY, &t) == TLV_OK)
		s.gateway = get_ipv4(t.value);
	if (tlv_find(c->req, c->len, API_TAG_DNS, &t) == TLV_OK) {
		if (t.len / 4 > DHCP_MAX_DNS)
			return fail(c, API_E_INVALID_ARGUMENT, "SetDhcpSettings: at most %u DNS "
				    "servers", DHCP_MAX_DNS);
		memset(s.dns, 0, sizeof(s.dns));
		for (unsigned i = 0; i < t.len / 4u; i++)
			s.dns[i] = get_ipv4(t.value + 4 * i);
	}
	tlv_get_u32(c->req, c->len, API_TAG_LEASE_TIME_S, &s.lease_s);
	/*
	 * The server's own address is not part of the API: the subnet's first
	 * host, or its last when the pool or the gateway has the first.
	 */
	uint32_t subnet = s.pool_start & s.netmask, first = subnet | 1;
	s.server_ip = first >= s.pool_start && first <= s.pool_end ? (subnet | ~s.netmask) - 1
		      : first == s.gateway && s.gateway ? (subnet | ~s.netmask) - 1 : first;
	if (network_dhcp_set(net, &s, err, sizeof(err)))
		return fail(c, API_E_INVALID_ARGUMENT, "SetDhcpSettings: %s", err);
	log_info("network '%s': DHCP %s", network_get(net)->name, s.enabled ? "on" : "off");
	put_dhcp(c, &network_get(net)->dhcp.cfg);
	return 0;
}

static uint64_t now_ms(void)
{
	return clock_ns() / 1000000;
}

/* The lease table as of the GetLeases being answered (put_paged's entries). */
static struct dhcp_lease leases[DHCP_MAX_LEASES];
static uint64_t leases_now;

static void put_lease(struct call *c, unsigned i)
{
	const struct dhcp_lease *l = leases;
	uint64_t now = leases_now;

	if (l[i].state != DHCP_LEASE_BOUND && l[i].state != DHCP_LEASE_OFFERED)
		return;
	size_t list = tlv_list_begin(&c->w, API_TAG_LEASE_ENTRY);
	tlv_put(&c->w, API_TAG_MAC, l[i].mac, 6);
	put_ipv4(&c->w, API_TAG_IP, l[i].ip);
	tlv_put_u32(&c->w, API_TAG_EXPIRES_S,
		    l[i].until_ms > now ? (uint32_t)((l[i].until_ms - now) / 1000) : 0);
	if (l[i].hostname[0])
		tlv_put_str(&c->w, API_TAG_HOSTNAME, l[i].hostname);
	tlv_list_end(&c->w, list);
}

int get_leases(struct call *c)
{
	unsigned net;

	if (need_net(c, API_REQ_GET_LEASES, API_TAG_NET, &net))
		return -1;
	leases_now = now_ms();
	unsigned n = dhcp_server_leases(&network_get(net)->dhcp, leases_now, leases,
					DHCP_MAX_LEASES);
	return put_paged(c, n, put_lease);
}

/* The boot configuration's networks, then the configured VMs' adapters on them. */
void control_network_init(const struct boot_info *bi)
{
	const struct config *cfg = bi->config;

	network_init(bi->host_pages);
	network_on_link_change(platform_nic_link_changed);
	for (unsigned i = 0; i < cfg->network_count; i++) {
		int net = network_create(cfg->networks[i].name, cfg->networks[i].mtu);
		if (net < 0) {
			log_err("network '%s': no memory for it", cfg->networks[i].name);
			continue;
		}
		if (cfg->networks[i].dhcp) {
			struct dhcp_settings dhcp = network_get((unsigned)net)->dhcp.cfg;
			char err[96];
			dhcp.enabled = true;
			if (network_dhcp_set((unsigned)net, &dhcp, err, sizeof(err)))
				log_err("network '%s': DHCP: %s", cfg->networks[i].name, err);
		}
	}
	for (unsigned i = 0; i < vm_count(); i++) {
		const struct vm *vm = vm_by_index(i);
		struct call c = { 0 };
		uint8_t scratch[PROTO_MAX_PAYLOAD];
		tlv_writer_init(&c.w, scratch, sizeof(scratch));
		if (add_nics(&c, vm, vm->cfg->nics, vm->cfg->nic_count))
			log_err("vm '%s': its network adapters could not all be created",
				vm->cfg->name);
	}
}
