/*
 * IVMVirtualServer's VM requests (create, delete, list, find) and
 * IVMVirtualMachine's state: GetState and the state changes; IVMGuestOS,
 * refused until the guest additions exist.
 */
#include "vmm/control_internal.h"

#include "boot/boot_info.h"
#include "lib/fmt.h"
#include "lib/store.h"
#include "vmm/clock.h"
#include "vmm/library.h"
#include "vmm/log.h"
#include "vmm/mgmt.h"
#include "vmm/network.h"
#include "vmm/storage/store_host.h"
#include "vmm/page_alloc.h"
#include "vmm/vm.h"

#include <string.h>

#define MIB (1024ULL * 1024)

/*
 * What the hypervisor keeps per VM for the API beyond struct vm: the
 * time it last started (uptime) and why it last ended. By VM id: reset
 * when CreateVirtualMachine reuses a deleted VM's slot.
 */
struct vm_extra {
	uint64_t started_ns;
	char reason[VM_REASON_MAX];
};

/* The image library and the page pool new VMs are carved from. */
static const struct boot_info *boot;
static struct vm_extra extra[VM_MAX];
static uint64_t events_seen;

void control_vm_init(const struct boot_info *bi)
{
	boot = bi;
}

struct vm *vm_named(const char *name)
{
	for (unsigned i = 0; i < vm_count(); i++) {
		struct vm *vm = vm_by_index(i);
		if (!strcmp(vm->cfg->name, name))
			return vm;
	}
	return NULL;
}

int need_vm(struct call *c, uint16_t request, struct vm **vm)
{
	char name[API_NAME_MAX + 1];

	if (need_str(c, request, API_TAG_VM, name, sizeof(name)))
		return -1;
	*vm = vm_named(name);
	if (!*vm)
		return fail(c, API_E_NOT_FOUND, "%s: no VM named '%s'", request_name(request), name);
	return 0;
}

static uint64_t vm_uptime_ms(const struct vm *vm)
{
	if (vm->state != VM_STATE_RUNNING && vm->state != VM_STATE_PAUSED)
		return 0;
	return (clock_ns() - extra[vm->id].started_ns) / 1000000;
}

static int library_path(struct call *c, uint8_t tag, char *path, const struct boot_file **file)
{
	bool may_be_absent = c->boot_files_may_be_absent && tag != API_TAG_DISK;
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
	if (!*file && !may_be_absent)
		return fail(c, API_E_NOT_FOUND, "CreateVirtualMachine: %s '%s' is not in the image "
			    "library (%s named by the boot configuration)", api_tag_name(tag),
			    path, kind == LIBRARY_DISK ? "disk = files" : "image = and initrd = files");
	for (char *p = path; *p; p++)
		if (*p == '/')
			*p = '\\';
	return 0;
}

void put_vm_id(struct call *c, const struct vm *vm)
{
	tlv_put_u32(&c->w, API_TAG_VM_ID, vm->id);
	tlv_put_str(&c->w, API_TAG_VM, vm->cfg->name);
	tlv_put_u8(&c->w, API_TAG_STATE, (uint8_t)vm->state);
}

int create_vm(struct call *c)
{
	static const char *const boot_modes[] = { "real", "long", "linux" };
	const uint16_t rq = API_REQ_CREATE_VIRTUAL_MACHINE;
	struct cfg_vm cfg = { .boot = VM_BOOT_LONG };
	const struct boot_file *image, *initrd, *disk;
	char mode[API_STR_MAX + 1];
	uint8_t autostart = 0, guest_agent = 1, time_sync = 1, free_page_reporting = 0;
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
	enum tlv_result store_disk = tlv_get_str(c->req, c->len, API_TAG_STORE_DISK,
						 cfg.store_disk, sizeof(cfg.store_disk));
	if (store_disk == TLV_BAD || (store_disk == TLV_OK && !store_name_valid(cfg.store_disk)))
		return fail(c, API_E_INVALID_ARGUMENT, "CreateVirtualMachine: store_disk is a "
			    "store object's name (docs/store.md)");
	if (store_disk == TLV_OK && tlv_find(c->req, c->len, API_TAG_DISK, &t) == TLV_OK)
		return fail(c, API_E_INVALID_ARGUMENT, "CreateVirtualMachine: a VM has one disk: "
			    "disk or store_disk");
	switch (store_disk == TLV_OK ? store_host_disk_state(cfg.store_disk) : STORE_DISK_FREE) {
	case STORE_DISK_NO_STORE:
		return fail(c, API_E_INVALID_STATE, "CreateVirtualMachine: this server has no store "
			    "(%s)", store_host_status());
	case STORE_DISK_MISSING:
		return fail(c, API_E_NOT_FOUND, "CreateVirtualMachine: the store holds no disk '%s'",
			    cfg.store_disk);
	case STORE_DISK_TAKEN:
		return fail(c, API_E_INVALID_STATE, "CreateVirtualMachine: store disk '%s' is "
			    "another VM's", cfg.store_disk);
	case STORE_DISK_BEING_MADE:
		return fail(c, API_E_INVALID_STATE, "CreateVirtualMachine: store disk '%s' is "
			    "still being made (vmmctl disk-list)", cfg.store_disk);
	case STORE_DISK_FREE:
		break;
	}
	tlv_get_u8(c->req, c->len, API_TAG_AUTOSTART, &autostart);
	cfg.autostart = autostart;
	tlv_get_u8(c->req, c->len, API_TAG_GUEST_AGENT, &guest_agent);
	cfg.guest_agent = guest_agent;
	tlv_get_u8(c->req, c->len, API_TAG_TIME_SYNC, &time_sync);
	cfg.time_sync = time_sync;
	tlv_get_u8(c->req, c->len, API_TAG_FREE_PAGE_REPORTING, &free_page_reporting);
	cfg.free_page_reporting = free_page_reporting;
	cfg.heartbeat_grace_s = CFG_HEARTBEAT_GRACE_DEFAULT_S;
	if (tlv_get_str(c->req, c->len, API_TAG_WATCHDOG, mode, sizeof(mode)) == TLV_OK &&
	    !config_watchdog_parse(mode, &cfg.watchdog))
		return fail(c, API_E_INVALID_ARGUMENT, "CreateVirtualMachine: watchdog must be none "
			    "or i6300esb");
	if (tlv_get_str(c->req, c->len, API_TAG_ON_HEARTBEAT_LOSS, mode, sizeof(mode)) == TLV_OK &&
	    !config_heartbeat_action_parse(mode, &cfg.on_heartbeat_loss))
		return fail(c, API_E_INVALID_ARGUMENT, "CreateVirtualMachine: on_heartbeat_loss must "
			    "be none, reset or turnoff");
	if (tlv_get_u32(c->req, c->len, API_TAG_HEARTBEAT_GRACE_S, &cfg.heartbeat_grace_s) ==
		    TLV_OK &&
	    (cfg.heartbeat_grace_s < CFG_HEARTBEAT_GRACE_MIN_S ||
	     cfg.heartbeat_grace_s > CFG_HEARTBEAT_GRACE_MAX_S))
		return fail(c, API_E_INVALID_ARGUMENT, "CreateVirtualMachine: heartbeat_grace_s must "
			    "be 15..3600");

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
	struct boot_vm b = { .ram_bytes = cfg.memory_bytes };
	if (image)
		b.image = *image;
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
	console_input_discard(vm->id);
	if (add_nics(c, vm, cfg.nics, cfg.nic_count)) {
		/* Keep the VM (it exists, TurnedOff) but say what went wrong. */
		return -1;
	}
	log_info("vm '%s': created through the management API (%llu MiB, image %s%s)",
		 cfg.name, (unsigned long long)(cfg.memory_bytes / MIB), cfg.image,
		 image ? "" : ", not in this library");
	/* A start that fails is in the VM's events and GetState's reason. */
	if (cfg.autostart && vm->state == VM_STATE_TURNED_OFF)
		vm_control_why(vm, VM_OP_STARTUP, NULL, why, sizeof(why));
	put_vm_id(c, vm);
	return 0;
}

static bool is_caller(const struct call *c, const struct vm *vm)
{
	return c->caller->vm == vm;
}

int delete_vm(struct call *c)
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

static void put_vm_entry(struct call *c, unsigned i)
{
	const struct vm *vm = vm_by_index(i);
	size_t list = tlv_list_begin(&c->w, API_TAG_VM_ENTRY);
	put_vm_id(c, vm);
	/* The management VM's heartbeat and time sync read what to do from here. */
	tlv_put_u8(&c->w, API_TAG_TIME_SYNC, vm->cfg->time_sync);
	if (vm->cfg->on_heartbeat_loss != CFG_HEARTBEAT_NONE) {
		tlv_put_str(&c->w, API_TAG_ON_HEARTBEAT_LOSS,
			    config_heartbeat_action_name(vm->cfg->on_heartbeat_loss));
		tlv_put_u32(&c->w, API_TAG_HEARTBEAT_GRACE_S, vm->cfg->heartbeat_grace_s);
	}
	tlv_list_end(&c->w, list);
}

int list_vms(struct call *c)
{
	return put_paged(c, vm_count(), put_vm_entry);
}

int find_vm(struct call *c)
{
	struct vm *vm;

	if (need_vm(c, API_REQ_FIND_VIRTUAL_MACHINE, &vm))
		return -1;
	put_vm_id(c, vm);
	return 0;
}

int get_state(struct call *c)
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
	if (vm->cfg->store_disk[0])
		tlv_put_str(&c->w, API_TAG_STORE_DISK, vm->cfg->store_disk);
	if (extra[vm->id].reason[0])
		tlv_put_str(&c->w, API_TAG_REASON, extra[vm->id].reason);
	tlv_put_u32(&c->w, API_TAG_CONTROL_DENIED, mgmt_denied(vm->id));
	tlv_put_u64(&c->w, API_TAG_VM_EXITS, vm->vcpu.exits);
	if (vm->state == VM_STATE_SAVED) {
		tlv_put_u64(&c->w, API_TAG_SAVED_SIZE, vm->saved.bytes);
		tlv_put_u64(&c->w, API_TAG_SAVED_AT, vm->saved.saved_at);
		tlv_put_u8(&c->w, API_TAG_SAVED_IN_STORE, vm->saved.in_store);
	}
	return 0;
}

/* Startup, TurnOff, Reset, Save, Pause, Resume: the state table's sequences. */
static int state_op(struct call *c, enum vm_op op)
{
	const uint16_t rq = c->request;
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
	if (op == VM_OP_TURN_OFF || op == VM_OP_RESET)
		tlv_get_str(c->req, c->len, API_TAG_REASON, reason, sizeof(reason));
	enum vm_state before = vm->state;
	char why[VM_REASON_MAX];
	int rc = vm_control_why(vm, op, reason[0] ? reason : NULL, why, sizeof(why));
	if (rc) {
		control_vm_follow_events(); /* picks up why it ended */
		if (rc == VM_CONTROL_NO_MEMORY)
			return fail(c, API_E_NO_RESOURCES, "%s: %s is %s as it was: %s",
				    request_name(rq), vm->cfg->name, vm_state_name(vm->state), why);
		return fail(c, API_E_INTERNAL, "%s: %s could not %s: %s", request_name(rq),
			    vm->cfg->name,
			    op == VM_OP_SAVE ? "be saved" :
			    before == VM_STATE_SAVED ? "be restored" : "start", why);
	}
	/*
	 * A Save is answered Saving at once, as its RAM is written in steps
	 * (vm_save_poll): the events say how it ends, Saved after TurnedOff or
	 * the state it was saved from again with the reason (docs/protocol.md).
	 */
	tlv_put_u8(&c->w, API_TAG_STATE, (uint8_t)vm->state);
	tlv_put_u64(&c->w, API_TAG_SEQ, vm_event_seq());
	return 0;
}

int startup_vm(struct call *c)
{
	return state_op(c, VM_OP_STARTUP);
}

int turn_off_vm(struct call *c)
{
	return state_op(c, VM_OP_TURN_OFF);
}

int reset_vm(struct call *c)
{
	return state_op(c, VM_OP_RESET);
}

int save_vm(struct call *c)
{
	return state_op(c, VM_OP_SAVE);
}

int discard_saved_state(struct call *c)
{
	const uint16_t rq = API_REQ_DISCARD_SAVED_STATE;
	struct vm *vm;

	char why[VM_REASON_MAX];

	if (need_vm(c, rq, &vm))
		return -1;
	if (vm->state != VM_STATE_SAVED) {
		fail(c, API_E_INVALID_STATE, "DiscardSavedState: %s is %s, not Saved",
		     vm->cfg->name, vm_state_name(vm->state));
		tlv_put_u8(&c->w, API_TAG_STATE, (uint8_t)vm->state);
		return -1;
	}
	if (vm_discard_saved_state(vm, why, sizeof(why))) {
		fail(c, API_E_INTERNAL, "DiscardSavedState: %s stays Saved: %s", vm->cfg->name,
		     why);
		tlv_put_u8(&c->w, API_TAG_STATE, (uint8_t)vm->state);
		return -1;
	}
	tlv_put_u8(&c->w, API_TAG_STATE, (uint8_t)vm->state);
	tlv_put_u64(&c->w, API_TAG_SEQ, vm_event_seq());
	return 0;
}

int pause_vm(struct call *c)
{
	return state_op(c, VM_OP_PAUSE);
}

int resume_vm(struct call *c)
{
	return state_op(c, VM_OP_RESUME);
}

/*
 * IsHostTimeSyncEnabled lives with the VM's configuration, so it outlives
 * a Save and a restart of the management VM; the management VM sets and
 * reads it here, then sets the guest's clock through the agent.
 */
int sync_time_setting(struct call *c)
{
	uint8_t on;
	struct vm *vm;

	if (need_vm(c, API_REQ_SYNC_TIME, &vm))
		return -1;
	if (tlv_get_u8(c->req, c->len, API_TAG_TIME_SYNC, &on) == TLV_OK)
		vm->own_cfg.time_sync = on;
	tlv_put_str(&c->w, API_TAG_VM, vm->cfg->name);
	tlv_put_u8(&c->w, API_TAG_TIME_SYNC, vm->cfg->time_sync);
	return 0;
}

/*
 * InstallAdditions needs no agent (it is how one gets there): the
 * additions image goes into the VM's additions drive; the guest mounts it
 * and runs its installer (docs/guest-agent.md).
 */
int install_additions(struct call *c)
{
	struct vm *vm;

	if (need_vm(c, API_REQ_INSTALL_ADDITIONS, &vm))
		return -1;
	if (vm->state != VM_STATE_RUNNING)
		return fail(c, API_E_INVALID_STATE, "InstallAdditions: %s is %s", vm->cfg->name,
			    vm_state_name(vm->state));
	if (platform_insert_additions(vm))
		return fail(c, API_E_NOT_FOUND, "InstallAdditions: %s", !vm->platform.additions_present
			    ? "the VM has no additions drive (guest_agent = no, or no [hypervisor] "
			      "additions image)" : "no additions image");
	log_info("vm '%s': guest additions inserted into its additions drive (serial "
		 "vmm-additions): mount it and run install.sh", vm->cfg->name);
	tlv_put_str(&c->w, API_TAG_VM, vm->cfg->name);
	return 0;
}

/*
 * IVMGuestOS is answered by the management VM through the guest agent
 * (mgmt/vm/guest_os.c): the hypervisor never parses what a guest's agent
 * writes. A caller that reaches this table anyway gets a clear refusal.
 */
int guest_os(struct call *c)
{
	const uint16_t rq = c->request;
	struct vm *vm;

	if (need_vm(c, rq, &vm))
		return -1;
	return fail(c, API_E_NOT_SUPPORTED, "%s: answered by the management VM's guest agent "
		    "client, not the hypervisor", request_name(rq));
}

void control_vm_follow_events(void)
{
	struct vm_event e[8];
	unsigned n;

	while ((n = vm_events_since(events_seen, e, 8)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			struct vm_extra *x = &extra[e[i].vm_id % VM_MAX];
			if (e[i].state == VM_STATE_TURNING_ON)
				x->started_ns = clock_ns();
			if (e[i].reason[0])
				fmt_snprintf(x->reason, sizeof(x->reason), "%s", e[i].reason);
			if (e[i].state == VM_STATE_TURNED_OFF)
				console_input_discard(e[i].vm_id % VM_MAX);
			events_seen = e[i].seq;
		}
	}
}
