#include "vmm/control.h"

#include "boot/boot_info.h"
#include "lib/fmt.h"
#include "abi/api.h"
#include "mgmt/proto.h"
#include "vmm/clock.h"
#include "vmm/library.h"
#include "vmm/log.h"
#include "vmm/mgmt.h"
#include "vmm/network.h"
#include "vmm/page_alloc.h"
#include "vmm/vm.h"

#include <stdarg.h>
#include <string.h>

#define MIB (1024ULL * 1024)
/* ConsoleWrite: what docs/protocol.md allows in one request, and what is queued per VM. */
#define CONSOLE_WRITE_MAX 256
#define CONSOLE_INPUT_QUEUE 512
/* A full input queue drains at the guest's pace; this is when to look again. */
#define CONSOLE_BUSY_RETRY_MS 100

/*
 * What the hypervisor keeps per VM for the API beyond struct vm: the
 * time it last started (uptime), why it last ended, its console input on
 * its way to the UART. By VM id: reset when CreateVirtualMachine reuses a slot.
 */
struct vm_extra {
	uint64_t started_ns;
	char reason[VM_REASON_MAX];
	uint8_t input[CONSOLE_INPUT_QUEUE];
	unsigned input_head, input_len;
};

static const struct boot_info *boot;
static struct vm_extra extra[VM_MAX];
static uint64_t events_seen;

/* One request: its payload, the answer being written, the error if any. */
struct call {
	const struct vm *caller;
	const uint8_t *req;
	size_t len;
	struct tlv_writer w;
	uint16_t error; /* enum api_error */
};

static int fail(struct call *c, enum api_error e, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct call *c, enum api_error e, const char *format, ...)
{
	char message[API_STR_MAX + 1];
	va_list ap;

	va_start(ap, format);
	fmt_vsnprintf(message, sizeof(message), format, ap);
	va_end(ap);
	/* The answer so far is dropped: an error frame holds only the error. */
	c->w.len = 0;
	c->w.overflow = false;
	c->error = (uint16_t)e;
	tlv_put_u16(&c->w, API_TAG_ERROR, (uint16_t)e);
	tlv_put_str(&c->w, API_TAG_MESSAGE, message);
	return e;
}

static const char *request_name(uint16_t request)
{
	const char *name = api_request_name(request);
	return name ? name : "request";
}

/* A required string-like tag; INVALID_ARGUMENT names it when it is missing. */
static int need_str(struct call *c, uint16_t request, uint8_t tag, char *out, size_t cap)
{
	int r = tlv_get_str(c->req, c->len, tag, out, cap);

	if (r == TLV_ABSENT)
		return fail(c, API_E_INVALID_ARGUMENT, "%s: missing %s", request_name(request),
			    api_tag_name(tag));
	if (r != TLV_OK)
		return fail(c, API_E_INVALID_ARGUMENT, "%s: %s is too long", request_name(request),
			    api_tag_name(tag));
	return 0;
}

static struct vm *vm_named(const char *name)
{
	for (unsigned i = 0; i < vm_count(); i++) {
		struct vm *vm = vm_by_index(i);
		if (!strcmp(vm->cfg->name, name))
			return vm;
	}
	return NULL;
}

/* The `vm` tag of the request, which must name an existing VM. */
static int need_vm(struct call *c, uint16_t request, struct vm **vm)
{
	char name[API_NAME_MAX + 1];

	if (need_str(c, request, API_TAG_VM, name, sizeof(name)))
		return -1;
	*vm = vm_named(name);
	if (!*vm)
		return fail(c, API_E_NOT_FOUND, "%s: no VM named '%s'", request_name(request), name);
	return 0;
}

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

static uint64_t vm_uptime_ms(const struct vm *vm)
{
	if (vm->state != VM_STATE_RUNNING && vm->state != VM_STATE_PAUSED)
		return 0;
	return (clock_ns() - extra[vm->id].started_ns) / 1000000;
}

/* --- IVMVirtualServer ----------------------------------------------------- */

#define SOFTWARE "vmm " VMM_VERSION " (" VMM_GIT_REV ")"

static int hello(struct call *c)
{
	tlv_put_u16(&c->w, API_TAG_API_VERSION, API_VERSION);
	tlv_put_str(&c->w, API_TAG_SOFTWARE, SOFTWARE);
	tlv_put_u64(&c->w, API_TAG_SEQ, vm_event_seq());
	return 0;
}

static int host_info(struct call *c)
{
	const struct page_alloc *pa = boot->host_pages;
	uint64_t reserved = 0;

	/* Configured VMs' RAM was reserved from the firmware, outside the page pool. */
	for (unsigned i = 0; i < boot->config->vm_count; i++)
		reserved += boot->vms[i].ram_bytes;
	uint64_t total = pa->total_pages * PAGE_SIZE + reserved;
	uint64_t free = pa->free_pages * PAGE_SIZE;
	tlv_put_str(&c->w, API_TAG_SOFTWARE, SOFTWARE);
	tlv_put_u16(&c->w, API_TAG_API_VERSION, API_VERSION);
	/* The scheduler runs every vCPU on the boot CPU. */
	tlv_put_u32(&c->w, API_TAG_CPUS, 1);
	tlv_put_u64(&c->w, API_TAG_MEMORY_TOTAL, total);
	tlv_put_u64(&c->w, API_TAG_MEMORY_FREE, free);
	tlv_put_u64(&c->w, API_TAG_MEMORY_USED, total - free);
	tlv_put_u64(&c->w, API_TAG_UPTIME_MS, clock_ns() / 1000000);
	tlv_put_u32(&c->w, API_TAG_VM_COUNT, vm_count());
	tlv_put_u32(&c->w, API_TAG_NET_COUNT, network_count());
	tlv_put_u32(&c->w, API_TAG_CONTROL_DENIED, mgmt_denied_total());
	return 0;
}

static int library_path(struct call *c, uint8_t tag, char *path, const struct boot_file **file)
{
	enum library_kind kind = tag == API_TAG_DISK ? LIBRARY_DISK : LIBRARY_BOOT_FILE;
	int r = tlv_get_str(c->req, c->len, tag, path, CFG_PATH_MAX);

	*file = NULL;
	if (r == TLV_ABSENT)
		return 0;
	if (r != TLV_OK || !path[0])
		return fail(c, API_E_INVALID_ARGUMENT, "CreateVirtualMachine: %s must be 1..%u "
			    "characters", api_tag_name(tag), CFG_PATH_MAX - 1);
	*file = library_find(boot->config, boot->vms, path, kind);
	if (!*file && kind == LIBRARY_DISK &&
	    library_find(boot->config, boot->vms, path, LIBRARY_BOOT_FILE))
		return fail(c, API_E_INVALID_ARGUMENT, "CreateVirtualMachine: disk '%s' is an "
			    "image or initrd; a disk must be a file the boot configuration names "
			    "with disk =", path);
	if (!*file)
		return fail(c, API_E_NOT_FOUND, "CreateVirtualMachine: %s '%s' is not in the image "
			    "library (%s named by the boot configuration)", api_tag_name(tag),
			    path, kind == LIBRARY_DISK ? "disk = files" : "image = and initrd = files");
	for (char *p = path; *p; p++)
		if (*p == '/')
			*p = '\\';
	return 0;
}

/* "lan" or "lan,mac=02:00:00:00:00:01", as the configuration's nic = value. */
static int parse_nic_spec(struct call *c, const struct tlv *t, struct cfg_nic *nic)
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

static int add_nics(struct call *c, const struct vm *vm, const struct cfg_nic *nics,
		    unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		int index = nic_add(vm->id, nics[i].mac_set ? nics[i].mac : NULL);
		if (index == NET_E_EXISTS)
			return fail(c, API_E_ALREADY_EXISTS, "%s: MAC of adapter %u is in use",
				    vm->cfg->name, i);
		if (index == NET_E_INVALID)
			return fail(c, API_E_INVALID_ARGUMENT, "%s: MAC of adapter %u is multicast "
				    "or zero", vm->cfg->name, i);
		if (index < 0 || nic_allow_macs(vm->id, (unsigned)index, nics[i].allow_macs) ||
		    nic_attach(vm->id, (unsigned)index,
					    (unsigned)network_find(nics[i].network)))
			return fail(c, API_E_NO_RESOURCES, "%s: no room for adapter %u",
				    vm->cfg->name, i);
	}
	return 0;
}

static void put_vm_id(struct call *c, const struct vm *vm)
{
	tlv_put_u32(&c->w, API_TAG_VM_ID, vm->id);
	tlv_put_str(&c->w, API_TAG_VM, vm->cfg->name);
	tlv_put_u8(&c->w, API_TAG_STATE, (uint8_t)vm->state);
}

static int create_vm(struct call *c)
{
	static const char *const boot_modes[] = { "real", "long", "linux" };
	const uint16_t rq = API_REQ_CREATE_VIRTUAL_MACHINE;
	struct cfg_vm cfg = { .boot = VM_BOOT_LONG };
	const struct boot_file *image, *initrd, *disk;
	char mode[API_STR_MAX + 1];
	uint8_t autostart = 0;
	struct tlv t;

	if (need_str(c, rq, API_TAG_VM, cfg.name, sizeof(cfg.name)))
		return -1;
	if (tlv_get_u64(c->req, c->len, API_TAG_MEMORY, &cfg.memory_bytes) != TLV_OK)
		return fail(c, API_E_INVALID_ARGUMENT, "CreateVirtualMachine: missing memory");
	if (tlv_find(c->req, c->len, API_TAG_IMAGE, &t) != TLV_OK)
		return fail(c, API_E_INVALID_ARGUMENT, "CreateVirtualMachine: missing image");
	if (cfg.memory_bytes < MIB || cfg.memory_bytes > 64 * 1024 * MIB ||
	    cfg.memory_bytes % MIB)
		return fail(c, API_E_INVALID_ARGUMENT, "CreateVirtualMachine: memory must be whole "
			    "MiB from 1 MiB to 64 GiB");
	if (tlv_get_str(c->req, c->len, API_TAG_BOOT, mode, sizeof(mode)) == TLV_OK) {
		unsigned m = 0;
		while (m < 3 && strcmp(mode, boot_modes[m]))
			m++;
		if (m == 3)
			return fail(c, API_E_INVALID_ARGUMENT, "CreateVirtualMachine: boot must be "
				    "real, long or linux");
		cfg.boot = (enum vm_boot_mode)m;
	}
	cfg.load_set = tlv_get_u64(c->req, c->len, API_TAG_LOAD, &cfg.load) == TLV_OK;
	cfg.entry_set = tlv_get_u64(c->req, c->len, API_TAG_ENTRY, &cfg.entry) == TLV_OK;
	if ((cfg.load_set && cfg.load >= cfg.memory_bytes) ||
	    (cfg.entry_set && cfg.entry >= cfg.memory_bytes))
		return fail(c, API_E_INVALID_ARGUMENT, "CreateVirtualMachine: load and entry must "
			    "lie inside memory");
	if (tlv_get_str(c->req, c->len, API_TAG_CMDLINE, cfg.cmdline, sizeof(cfg.cmdline)) ==
	    TLV_BAD)
		return fail(c, API_E_INVALID_ARGUMENT, "CreateVirtualMachine: cmdline is too long");
	tlv_get_u8(c->req, c->len, API_TAG_AUTOSTART, &autostart);
	cfg.autostart = autostart;

	struct tlv_reader r;
	tlv_reader_init(&r, c->req, c->len);
	while (tlv_next(&r, &t)) {
		if (t.tag != API_TAG_NIC_SPEC)
			continue;
		if (cfg.nic_count == CFG_MAX_NICS)
			return fail(c, API_E_NO_RESOURCES, "CreateVirtualMachine: at most %u adapters",
				    CFG_MAX_NICS);
		if (parse_nic_spec(c, &t, &cfg.nics[cfg.nic_count++]))
			return -1;
	}
	if (vm_named(cfg.name))
		return fail(c, API_E_ALREADY_EXISTS, "CreateVirtualMachine: a VM named '%s' exists",
			    cfg.name);
	if (library_path(c, API_TAG_IMAGE, cfg.image, &image) ||
	    library_path(c, API_TAG_INITRD, cfg.initrd, &initrd) ||
	    library_path(c, API_TAG_DISK, cfg.disk, &disk))
		return -1;

	/*
	 * The image and initrd are copied into the VM's RAM at every start;
	 * the disk gets the VM's own copy-on-write chunks (vm_create), so the
	 * library's bytes stay as they were loaded and no other VM sees its writes.
	 */
	struct boot_vm b = { .ram_bytes = cfg.memory_bytes, .image = *image };
	if (initrd)
		b.initrd = *initrd;
	if (disk)
		b.disk = *disk;
	char why[VM_REASON_MAX];
	struct vm *vm = vm_create(&cfg, &b, VM_RAM_FROM_POOL, boot->host_pages, why, sizeof(why));
	if (!vm)
		return fail(c, API_E_NO_RESOURCES, "CreateVirtualMachine: %s", why);
	/* The slot may have been a deleted VM's. */
	extra[vm->id] = (struct vm_extra){ 0 };
	if (add_nics(c, vm, cfg.nics, cfg.nic_count)) {
		/* Keep the VM (it exists, TurnedOff) but say what went wrong. */
		return -1;
	}
	log_info("vm '%s': created through the management API (%llu MiB, image %s)",
		 cfg.name, (unsigned long long)(cfg.memory_bytes / MIB), cfg.image);
	if (cfg.autostart && vm->state == VM_STATE_TURNED_OFF)
		vm_control(vm, VM_OP_STARTUP, NULL);
	put_vm_id(c, vm);
	return 0;
}

static bool is_caller(const struct call *c, const struct vm *vm)
{
	return c->caller == vm;
}

static int delete_vm(struct call *c)
{
	const uint16_t rq = API_REQ_DELETE_VIRTUAL_MACHINE;
	struct vm *vm;

	if (need_vm(c, rq, &vm))
		return -1;
	if (is_caller(c, vm))
		return fail(c, API_E_PERMISSION_DENIED, "DeleteVirtualMachine: '%s' is the "
			    "management VM", vm->cfg->name);
	if (vm->state != VM_STATE_TURNED_OFF) {
		fail(c, API_E_INVALID_STATE, "DeleteVirtualMachine: %s is %s, not TurnedOff",
		     vm->cfg->name, vm_state_name(vm->state));
		tlv_put_u8(&c->w, API_TAG_STATE, (uint8_t)vm->state);
		return -1;
	}
	log_info("vm '%s': deleted through the management API", vm->cfg->name);
	vm_delete(vm);
	return 0;
}

/*
 * Paged lists: entries from `cursor` on while they fit; a cursor for the
 * next page when one did not. `put` writes entry i, or nothing when it is not shown.
 */
static int put_paged(struct call *c, unsigned total, void (*put)(struct call *, unsigned))
{
	uint32_t cursor = 0;

	tlv_get_u32(c->req, c->len, API_TAG_CURSOR, &cursor);
	for (unsigned i = cursor; i < total; i++) {
		size_t before = c->w.len;
		put(c, i);
		/* Room for the cursor must remain. */
		if (c->w.overflow || c->w.cap - c->w.len < TLV_HEADER_SIZE + 4) {
			c->w.len = before;
			c->w.overflow = false;
			tlv_put_u32(&c->w, API_TAG_CURSOR, i);
			return 0;
		}
	}
	return 0;
}

static void put_vm_entry(struct call *c, unsigned i)
{
	const struct vm *vm = vm_by_index(i);
	size_t list = tlv_list_begin(&c->w, API_TAG_VM_ENTRY);
	put_vm_id(c, vm);
	tlv_list_end(&c->w, list);
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

static int list_vms(struct call *c)
{
	return put_paged(c, vm_count(), put_vm_entry);
}

static int list_nets(struct call *c)
{
	return put_paged(c, NET_MAX, put_net_entry);
}

static int find_vm(struct call *c)
{
	struct vm *vm;

	if (need_vm(c, API_REQ_FIND_VIRTUAL_MACHINE, &vm))
		return -1;
	put_vm_id(c, vm);
	return 0;
}

static int create_net(struct call *c)
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

static int delete_net(struct call *c)
{
	unsigned net;

	if (need_net(c, API_REQ_DELETE_VIRTUAL_NETWORK, API_TAG_NET, &net))
		return -1;
	tlv_put_u32(&c->w, API_TAG_NIC_COUNT, (uint32_t)network_delete(net));
	return 0;
}

static int subscribe(struct call *c)
{
	char name[API_NAME_MAX + 1];

	if (tlv_get_str(c->req, c->len, API_TAG_CONSOLE_VM, name, sizeof(name)) == TLV_OK &&
	    !vm_named(name))
		return fail(c, API_E_NOT_FOUND, "SubscribeEvents: no VM named '%s'", name);
	tlv_put_u64(&c->w, API_TAG_SEQ, vm_event_seq());
	return 0;
}

/* --- IVMVirtualMachine ---------------------------------------------------- */

static int get_state(struct call *c)
{
	struct vm *vm;

	if (need_vm(c, API_REQ_GET_STATE, &vm))
		return -1;
	put_vm_id(c, vm);
	tlv_put_u64(&c->w, API_TAG_MEMORY, vm->boot->ram_bytes);
	tlv_put_u64(&c->w, API_TAG_VM_UPTIME_MS, vm_uptime_ms(vm));
	tlv_put_u32(&c->w, API_TAG_NIC_COUNT, nic_count(vm->id));
	tlv_put_str(&c->w, API_TAG_IMAGE, vm->cfg->image);
	tlv_put_str(&c->w, API_TAG_BOOT, config_boot_mode_name(vm->cfg->boot));
	if (extra[vm->id].reason[0])
		tlv_put_str(&c->w, API_TAG_REASON, extra[vm->id].reason);
	tlv_put_u32(&c->w, API_TAG_CONTROL_DENIED, mgmt_denied(vm->id));
	return 0;
}

/* Startup, TurnOff, Reset, Save, Pause, Resume: the state table's sequences. */
static int state_op(struct call *c, uint16_t rq, enum vm_op op)
{
	char reason[API_STR_MAX + 1] = "";
	struct vm *vm;

	if (need_vm(c, rq, &vm))
		return -1;
	if (is_caller(c, vm))
		return fail(c, API_E_PERMISSION_DENIED, "%s: '%s' is the management VM",
			    request_name(rq), vm->cfg->name);
	if (!vm_transition_for(op, vm->state)) {
		fail(c, API_E_INVALID_STATE, "%s: %s is %s", request_name(rq), vm->cfg->name,
		     vm_state_name(vm->state));
		tlv_put_u8(&c->w, API_TAG_STATE, (uint8_t)vm->state);
		return -1;
	}
	if (op == VM_OP_SAVE || vm->state == VM_STATE_SAVED)
		return fail(c, API_E_NOT_SUPPORTED, "%s: saved states are not supported yet",
			    request_name(rq));
	if (op == VM_OP_TURN_OFF)
		tlv_get_str(c->req, c->len, API_TAG_REASON, reason, sizeof(reason));
	if (vm_control(vm, op, reason[0] ? reason : NULL)) {
		control_poll(); /* picks up why it ended */
		return fail(c, API_E_INTERNAL, "%s: %s could not start: %s", request_name(rq),
			    vm->cfg->name, extra[vm->id].reason);
	}
	tlv_put_u8(&c->w, API_TAG_STATE, (uint8_t)vm->state);
	tlv_put_u64(&c->w, API_TAG_SEQ, vm_event_seq());
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

static int add_nic(struct call *c)
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

static int remove_nic(struct call *c)
{
	const uint16_t rq = API_REQ_REMOVE_NETWORK_ADAPTER;
	struct vm *vm;
	unsigned nic;

	if (need_nic(c, rq, &vm, &nic) || turned_off_vm(c, rq, vm))
		return -1;
	nic_remove(vm->id, nic);
	return 0;
}

static int list_nics(struct call *c)
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

/* Payload room for console data: three u64 tags and the data tag's header. */
#define CONSOLE_READ_MAX (PROTO_MAX_PAYLOAD - 3 * (TLV_HEADER_SIZE + 8) - TLV_HEADER_SIZE)

static int console_read(struct call *c)
{
	uint8_t data[CONSOLE_READ_MAX];
	uint32_t max = CONSOLE_READ_MAX;
	struct vm *vm;
	uint64_t from;

	if (need_vm(c, API_REQ_CONSOLE_READ, &vm))
		return -1;
	const struct console_ring *ring = &vm->console;
	if (tlv_get_u64(c->req, c->len, API_TAG_OFFSET, &from) != TLV_OK)
		from = ring->written > CONSOLE_RING_SIZE ? ring->written - CONSOLE_RING_SIZE : 0;
	if (from > ring->written)
		from = ring->written;
	tlv_get_u32(c->req, c->len, API_TAG_MAX_BYTES, &max);
	if (max > CONSOLE_READ_MAX)
		max = CONSOLE_READ_MAX;
	uint64_t requested = from;
	size_t n = console_ring_read(ring, &from, data, max);
	tlv_put_u64(&c->w, API_TAG_OFFSET, from - n);
	tlv_put(&c->w, API_TAG_DATA, data, n);
	tlv_put_u64(&c->w, API_TAG_NEXT_OFFSET, from);
	tlv_put_u64(&c->w, API_TAG_LOST, from - n - requested);
	return 0;
}

static int console_write(struct call *c)
{
	const uint16_t rq = API_REQ_CONSOLE_WRITE;
	const uint8_t *data;
	size_t n;
	struct vm *vm;

	if (need_vm(c, rq, &vm))
		return -1;
	if (tlv_get_bytes(c->req, c->len, API_TAG_DATA, &data, &n) != TLV_OK || !n ||
	    n > CONSOLE_WRITE_MAX)
		return fail(c, API_E_INVALID_ARGUMENT, "ConsoleWrite: data must be 1..%u bytes",
			    CONSOLE_WRITE_MAX);
	if (vm->state != VM_STATE_RUNNING && vm->state != VM_STATE_PAUSED) {
		fail(c, API_E_INVALID_STATE, "ConsoleWrite: %s is %s", vm->cfg->name,
		     vm_state_name(vm->state));
		tlv_put_u8(&c->w, API_TAG_STATE, (uint8_t)vm->state);
		return -1;
	}
	struct vm_extra *x = &extra[vm->id];
	if (CONSOLE_INPUT_QUEUE - x->input_len < n) {
		fail(c, API_E_BUSY, "ConsoleWrite: %s has not read its earlier input yet",
		     vm->cfg->name);
		tlv_put_u32(&c->w, API_TAG_RETRY_AFTER_MS, CONSOLE_BUSY_RETRY_MS);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		x->input[(x->input_head + x->input_len++) % CONSOLE_INPUT_QUEUE] = data[i];
	return 0;
}

/* --- IVMNetworkAdapter, IVMVirtualNetwork --------------------------------- */

static int get_mac(struct call *c)
{
	struct vm *vm;
	unsigned nic;

	if (need_nic(c, API_REQ_GET_MAC_ADDRESS, &vm, &nic))
		return -1;
	tlv_put(&c->w, API_TAG_MAC, nic_get(vm->id, nic)->mac, 6);
	return 0;
}

static int attach_nic(struct call *c)
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

static int detach_nic(struct call *c)
{
	struct vm *vm;
	unsigned nic;

	if (need_nic(c, API_REQ_DETACH_FROM_VIRTUAL_NETWORK, &vm, &nic))
		return -1;
	nic_detach(vm->id, nic);
	return 0;
}

static int get_adapters(struct call *c)
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

static int get_statistics(struct call *c)
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

static int get_dhcp(struct call *c)
{
	unsigned net;

	if (need_net(c, API_REQ_GET_DHCP_SETTINGS, API_TAG_NET, &net))
		return -1;
	put_dhcp(c, &network_get(net)->dhcp.cfg);
	return 0;
}

static int set_dhcp(struct call *c)
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

static int get_leases(struct call *c)
{
	unsigned net;

	if (need_net(c, API_REQ_GET_LEASES, API_TAG_NET, &net))
		return -1;
	leases_now = now_ms();
	unsigned n = dhcp_server_leases(&network_get(net)->dhcp, leases_now, leases,
					DHCP_MAX_LEASES);
	return put_paged(c, n, put_lease);
}

/* IVMGuestOS: part of the API, refused until the guest additions exist. */
static int guest_os(struct call *c, uint16_t rq)
{
	struct vm *vm;

	if (need_vm(c, rq, &vm))
		return -1;
	return fail(c, API_E_NOT_SUPPORTED, "%s: the guest additions do not exist yet",
		    request_name(rq));
}

static int dispatch(struct call *c, uint16_t rq)
{
	switch (rq) {
	case API_REQ_HELLO:
		return hello(c);
	case API_REQ_GOODBYE:
		return 0;
	case API_REQ_GET_HOST_INFO:
		return host_info(c);
	case API_REQ_CREATE_VIRTUAL_MACHINE:
		return create_vm(c);
	case API_REQ_DELETE_VIRTUAL_MACHINE:
		return delete_vm(c);
	case API_REQ_LIST_VIRTUAL_MACHINES:
		return list_vms(c);
	case API_REQ_FIND_VIRTUAL_MACHINE:
		return find_vm(c);
	case API_REQ_CREATE_VIRTUAL_NETWORK:
		return create_net(c);
	case API_REQ_DELETE_VIRTUAL_NETWORK:
		return delete_net(c);
	case API_REQ_LIST_VIRTUAL_NETWORKS:
		return list_nets(c);
	case API_REQ_SUBSCRIBE_EVENTS:
		return subscribe(c);
	case API_REQ_GET_STATE:
		return get_state(c);
	case API_REQ_STARTUP:
		return state_op(c, rq, VM_OP_STARTUP);
	case API_REQ_TURN_OFF:
		return state_op(c, rq, VM_OP_TURN_OFF);
	case API_REQ_RESET:
		return state_op(c, rq, VM_OP_RESET);
	case API_REQ_SAVE:
		return state_op(c, rq, VM_OP_SAVE);
	case API_REQ_PAUSE:
		return state_op(c, rq, VM_OP_PAUSE);
	case API_REQ_RESUME:
		return state_op(c, rq, VM_OP_RESUME);
	case API_REQ_ADD_NETWORK_ADAPTER:
		return add_nic(c);
	case API_REQ_REMOVE_NETWORK_ADAPTER:
		return remove_nic(c);
	case API_REQ_LIST_NETWORK_ADAPTERS:
		return list_nics(c);
	case API_REQ_CONSOLE_READ:
		return console_read(c);
	case API_REQ_CONSOLE_WRITE:
		return console_write(c);
	case API_REQ_GET_MAC_ADDRESS:
		return get_mac(c);
	case API_REQ_ATTACH_TO_VIRTUAL_NETWORK:
		return attach_nic(c);
	case API_REQ_DETACH_FROM_VIRTUAL_NETWORK:
		return detach_nic(c);
	case API_REQ_GET_ADAPTERS:
		return get_adapters(c);
	case API_REQ_GET_STATISTICS:
		return get_statistics(c);
	case API_REQ_GET_DHCP_SETTINGS:
		return get_dhcp(c);
	case API_REQ_SET_DHCP_SETTINGS:
		return set_dhcp(c);
	case API_REQ_GET_LEASES:
		return get_leases(c);
	case API_REQ_GET_HEARTBEAT:
	case API_REQ_SHUTDOWN:
	case API_REQ_GET_OS_NAME:
	case API_REQ_GET_ADDITIONS_VERSION:
	case API_REQ_SYNC_TIME:
	case API_REQ_EXECUTE_COMMAND:
	case API_REQ_SET_PARAMETER:
	case API_REQ_INSTALL_ADDITIONS:
		return guest_os(c, rq);
	default:
		/* AuthChallenge and AuthResponse are the management VM's own. */
		return fail(c, API_E_UNKNOWN_REQUEST, "unknown request 0x%x", rq);
	}
}

uint16_t control_execute(const struct vm *caller, uint16_t request, const uint8_t *payload,
			 size_t len, uint8_t *out, size_t *out_len)
{
	struct call c = { .caller = caller, .req = payload, .len = len };

	tlv_writer_init(&c.w, out, PROTO_MAX_PAYLOAD);
	if (!api_payload_valid(payload, len))
		fail(&c, API_E_BAD_FRAME, "%s: malformed payload", request_name(request));
	else if (dispatch(&c, request) == 0 && c.w.overflow)
		fail(&c, API_E_INTERNAL, "%s: the answer does not fit in a frame",
		     request_name(request));
	*out_len = c.w.len;
	return c.error;
}

void control_poll(void)
{
	struct vm_event e[8];
	unsigned n;

	/* Uptime starts at TurningOn; the last reason is kept for GetState. */
	while ((n = vm_events_since(events_seen, e, 8)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			struct vm_extra *x = &extra[e[i].vm_id % VM_MAX];
			if (e[i].state == VM_STATE_TURNING_ON)
				x->started_ns = clock_ns();
			if (e[i].reason[0])
				fmt_snprintf(x->reason, sizeof(x->reason), "%s", e[i].reason);
			if (e[i].state == VM_STATE_TURNED_OFF)
				x->input_len = 0;
			events_seen = e[i].seq;
		}
	}
	for (unsigned i = 0; i < vm_count(); i++) {
		struct vm *vm = vm_by_index(i);
		struct vm_extra *x = &extra[vm->id];
		if (!x->input_len || vm->state != VM_STATE_RUNNING)
			continue;
		/* In order, as much as the UART's receive FIFO takes. */
		unsigned run = CONSOLE_INPUT_QUEUE - x->input_head;
		if (run > x->input_len)
			run = x->input_len;
		size_t taken = vm_console_input(vm, x->input + x->input_head, run);
		x->input_head = (unsigned)((x->input_head + taken) % CONSOLE_INPUT_QUEUE);
		x->input_len -= (unsigned)taken;
	}
}

void control_init(const struct boot_info *bi)
{
	const struct config *cfg = bi->config;

	boot = bi;
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
