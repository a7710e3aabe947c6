/*
 * The management API (vmm/control*.c) and the hypercall table
 * (vmm/hypercall.c) on the host: every request type's answer and each
 * error it can give, the privilege table, pending answers (ConsoleWrite
 * waiting for room), and who may make which hypercall. The networks,
 * the page allocator, the image library, the protocol and the VM state
 * table are the real ones; the VMs, the clock and the management VM's
 * hypercalls are fakes below.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot/boot_info.h"
#include "vmm/storage/store_host.h"
#include "abi/api.h"
#include "mgmt/proto.h"
#include "vmm/clock.h"
#include "vmm/control.h"
#include "abi/hypercall.h"
#include "vmm/log.h"
#include "vmm/mgmt.h"
#include "vmm/network.h"
#include "vmm/page_alloc.h"
#include "vmm/savefile.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define MIB (1024ULL * 1024)

/* --- fakes: log, clock, platform, the management VM's side ----------------- */

void log_printf(enum log_level level, const char *format, ...)
{
	(void)level;
	(void)format;
}

static uint64_t now_ns = 1000000000;

uint64_t clock_ns(void)
{
	return now_ns;
}

uint64_t clock_tsc_hz(void)
{
	return 1000000000;
}

uint64_t clock_ns_to_tsc(uint64_t ns)
{
	return ns;
}

/* 2026-01-01 00:00:00 UTC, as the firmware would have said at boot. */
uint64_t clock_wallclock_ns(void)
{
	return 1767225600ULL * 1000000000 + now_ns;
}

static bool additions_drive;
static unsigned additions_inserted;

int platform_insert_additions(struct vm *vm)
{
	if (!additions_drive)
		return -1;
	vm->platform.additions_present = true;
	additions_inserted++;
	return 0;
}

void platform_nic_link_changed(unsigned vm_id, unsigned nic, bool up)
{
	(void)vm_id;
	(void)nic;
	(void)up;
}

#define DENIED_PER_VM 7
#define DENIED_TOTAL 9

uint32_t mgmt_denied(unsigned vm_id)
{
	(void)vm_id;
	return DENIED_PER_VM;
}

uint32_t mgmt_denied_total(void)
{
	return DENIED_TOTAL;
}

const char *store_host_status(void)
{
	return "none: no store configured (disks are RAM copies)";
}

/* Whether there is a store: its disks are the list below. */
static bool store_present;
static struct store_host_disk disks[4];
static unsigned disk_count;

enum store_disk_state store_host_disk_state(const char *name)
{
	if (!store_present)
		return STORE_DISK_NO_STORE;
	for (unsigned i = 0; i < disk_count; i++)
		if (!strcmp(disks[i].name, name))
			return disks[i].vm_id >= 0 ? STORE_DISK_TAKEN : STORE_DISK_FREE;
	return STORE_DISK_MISSING;
}

static uint64_t store_free = 1 * MIB;

uint64_t store_host_free_bytes(void)
{
	return store_present ? store_free : 0;
}

/* A disk an import writes: its bytes here; writes fail from write_fails_at on. */
static uint8_t imported_disk[256 * 1024];
static uint64_t write_fails_at = UINT64_MAX;

int store_host_import_disk_begin(const char *name, uint64_t bytes, char *why, size_t why_size)
{
	if (!store_present || bytes > sizeof(imported_disk) || disk_count == 4) {
		snprintf(why, why_size, "no room");
		return STORE_HOST_NO_SPACE;
	}
	memset(imported_disk, 0xee, sizeof(imported_disk)); /* a store's blocks are not zeroed */
	disks[disk_count] = (struct store_host_disk){ .bytes = bytes, .vm_id = -1 };
	snprintf(disks[disk_count++].name, sizeof(disks[0].name), "%s", name);
	return 0;
}

bool store_host_import_disk_write(const char *name, uint64_t offset, const void *buf,
				  uint64_t len)
{
	(void)name;
	if (offset + len > write_fails_at || offset + len > sizeof(imported_disk))
		return false;
	memcpy(imported_disk + offset, buf, len);
	return true;
}

int store_host_import_disk_drop(const char *name, char *why, size_t why_size)
{
	return store_host_delete_disk(name, why, why_size);
}

int store_host_import_disk_end(const char *name, char *why, size_t why_size)
{
	(void)name;
	(void)why;
	(void)why_size;
	return 0;
}

/* The store's saved states, as the boot after a host reboot finds them. */
struct stored_state {
	const char *vm;
	const uint8_t *file;
	size_t bytes;
};
static struct stored_state stored[4];
static unsigned stored_count, persisted;

bool store_host_saved_at(unsigned index, char *vm_name, size_t cap, uint64_t *bytes)
{
	if (index >= stored_count)
		return false;
	snprintf(vm_name, cap, "%s", stored[index].vm);
	*bytes = stored[index].bytes;
	return true;
}

int store_host_read_saved(const char *vm_name, void *buf, uint64_t bytes, char *why,
			  size_t why_size)
{
	for (unsigned i = 0; i < stored_count; i++)
		if (!strcmp(stored[i].vm, vm_name) && stored[i].bytes == bytes) {
			memcpy(buf, stored[i].file, bytes);
			return 0;
		}
	snprintf(why, why_size, "no saved state for '%s'", vm_name);
	return -1;
}

bool store_host_has_saved(const char *vm_name)
{
	for (unsigned i = 0; i < stored_count; i++)
		if (!strcmp(stored[i].vm, vm_name))
			return true;
	return false;
}

/* The store's disks (vmm/storage/store_host.c): a list; "busy" while one is being made. */
static bool disk_making;

int store_host_create_disk(const char *name, uint64_t bytes, char *why, size_t why_size)
{
	for (unsigned i = 0; i < disk_count; i++)
		if (!strcmp(disks[i].name, name)) {
			snprintf(why, why_size, "the store already holds '%s'", name);
			return STORE_HOST_EXISTS;
		}
	if (disk_making) {
		snprintf(why, why_size, "a disk is being made: one at a time");
		return STORE_HOST_BUSY;
	}
	if (bytes % 512) {
		snprintf(why, why_size, "a disk is whole 512-byte sectors");
		return STORE_HOST_INVALID;
	}
	disks[disk_count] = (struct store_host_disk){ .bytes = bytes, .vm_id = -1 };
	snprintf(disks[disk_count++].name, sizeof(disks[0].name), "%s", name);
	disk_making = true;
	return 0;
}

bool store_host_disk_at(unsigned index, struct store_host_disk *out)
{
	if (index >= disk_count)
		return false;
	*out = disks[index];
	return true;
}

int store_host_delete_disk(const char *name, char *why, size_t why_size)
{
	for (unsigned i = 0; i < disk_count; i++)
		if (!strcmp(disks[i].name, name)) {
			if (disks[i].vm_id >= 0) {
				snprintf(why, why_size, "disk '%s' is a VM's", name);
				return STORE_HOST_TAKEN;
			}
			disks[i] = disks[--disk_count];
			return 0;
		}
	snprintf(why, why_size, "the store holds no disk '%s'", name);
	return STORE_HOST_NOT_FOUND;
}

/* vmm/vm_save.c: an imported state goes to the store. */
void vm_save_persist(struct vm *vm)
{
	vm->saved.in_store = true;
	persisted++;
}

/* VM slots as vmm/vm.c keeps them: by id, reused after a delete; vms lists the living. */
static struct vm slots[VM_MAX];
static bool slot_used[VM_MAX];
static struct vm *vms[VM_MAX];
static unsigned mgmt_refusals;
static uint64_t mgmt_call_seen; /* the last management hypercall's RBX */

bool mgmt_is_management_vm(const struct vm *vm)
{
	return vm == &slots[0];
}

long mgmt_refuse(const struct vm *vm, uint64_t nr)
{
	(void)vm;
	(void)nr;
	mgmt_refusals++;
	return HC_EPERM;
}

static long management_call(struct vcpu *vcpu, uint64_t rbx)
{
	(void)vcpu;
	mgmt_call_seen = rbx;
	return 0;
}

long mgmt_hc_control(struct vcpu *vcpu, uint64_t gpa, uint64_t unused1, uint64_t unused2)
{
	(void)unused1;
	(void)unused2;
	return management_call(vcpu, gpa);
}

long mgmt_hc_line_write(struct vcpu *vcpu, uint64_t gpa, uint64_t len, uint64_t kind)
{
	(void)len;
	(void)kind;
	return management_call(vcpu, gpa);
}

long mgmt_hc_line_read(struct vcpu *vcpu, uint64_t gpa, uint64_t cap, uint64_t unused)
{
	(void)cap;
	(void)unused;
	return management_call(vcpu, gpa);
}

long mgmt_hc_events(struct vcpu *vcpu, uint64_t after, uint64_t gpa, uint64_t max)
{
	(void)gpa;
	(void)max;
	return management_call(vcpu, after);
}

long mgmt_hc_info(struct vcpu *vcpu, uint64_t gpa, uint64_t unused1, uint64_t unused2)
{
	(void)unused1;
	(void)unused2;
	return management_call(vcpu, gpa);
}

long mgmt_hc_agent(struct vcpu *vcpu, uint64_t gpa, uint64_t write_gpa, uint64_t read_gpa)
{
	(void)write_gpa;
	(void)read_gpa;
	return management_call(vcpu, gpa);
}

/* --- fakes: the VMs (vmm/vm.c) ---------------------------------------------- */

static unsigned vms_used;
static bool vm_create_fails, startup_fails;
static struct vm_event events[256];
static unsigned event_count;
/* What the guests' UARTs take from their console input, and what they got. */
static size_t uart_room = SIZE_MAX;
static uint8_t uart_got[4096];
static size_t uart_got_len;
/* Guest RAM for the hypercalls, and what HC_CONSOLE_WRITE printed. */
static uint8_t guest_ram[4096];
static char printed[512];
static size_t printed_len;

static void push_event(struct vm *vm, enum vm_state state, const char *reason)
{
	struct vm_event *e = &events[event_count % 256];

	*e = (struct vm_event){ .seq = ++event_count, .vm_id = vm->id, .state = state };
	snprintf(e->reason, sizeof(e->reason), "%s", reason ? reason : "");
	vm->state = state;
}

uint64_t vm_event_seq(void)
{
	return event_count;
}

unsigned vm_events_since(uint64_t after, struct vm_event *out, unsigned max)
{
	unsigned n = 0;

	for (uint64_t seq = after + 1; seq <= event_count && n < max; seq++)
		out[n++] = events[(seq - 1) % 256];
	return n;
}

unsigned vm_count(void)
{
	return vms_used;
}

struct vm *vm_by_index(unsigned index)
{
	return vms[index];
}

struct vm *vm_create(const struct cfg_vm *cfg, const struct boot_vm *boot, enum vm_ram ram,
		     struct page_alloc *pa, char *why, size_t why_size)
{
	unsigned id = 0;
	uint64_t ram_base = boot->ram_base;

	while (id < VM_MAX && slot_used[id])
		id++;
	if (id == VM_MAX) {
		snprintf(why, why_size, "%u VMs exist, the most there can be", VM_MAX);
		return NULL;
	}
	if (vm_create_fails) {
		snprintf(why, why_size, "no memory for the VM's state");
		return NULL;
	}
	if (ram == VM_RAM_FROM_POOL &&
	    page_alloc_alloc(pa, boot->ram_bytes / PAGE_SIZE, 2 * MIB / PAGE_SIZE, &ram_base)) {
		snprintf(why, why_size, "no %llu MiB block of free memory",
			 (unsigned long long)(boot->ram_bytes / MIB));
		return NULL;
	}
	struct vm *vm = &slots[id];
	*vm = (struct vm){ .id = id, .own_cfg = *cfg, .own_boot = *boot, .pages = pa,
			   .ram_from_pool = ram == VM_RAM_FROM_POOL,
			   .state = VM_STATE_TURNED_OFF };
	vm->own_boot.ram_base = ram_base;
	vm->cfg = &vm->own_cfg;
	vm->boot = &vm->own_boot;
	slot_used[id] = true;
	vms[vms_used++] = vm;
	return vm;
}

void vm_delete(struct vm *vm)
{
	unsigned index = 0;

	push_event(vm, VM_STATE_INVALID, NULL);
	nic_remove_all(vm->id);
	while (vms[index] != vm)
		index++;
	memmove(&vms[index], &vms[index + 1], (vms_used - index - 1) * sizeof(vms[0]));
	vms_used--;
	slot_used[vm->id] = false;
	if (vm->ram_from_pool)
		page_alloc_free(vm->pages, vm->boot->ram_base, vm->boot->ram_bytes / PAGE_SIZE);
}

static bool save_in_steps;

int vm_control_why(struct vm *vm, enum vm_op op, const char *reason, char *why,
		   size_t why_size)
{
	static const enum vm_state after[VM_OP_COUNT] = {
		[VM_OP_STARTUP] = VM_STATE_RUNNING, [VM_OP_TURN_OFF] = VM_STATE_TURNED_OFF,
		[VM_OP_RESET] = VM_STATE_RUNNING,   [VM_OP_SAVE] = VM_STATE_SAVED,
		[VM_OP_PAUSE] = VM_STATE_PAUSED,    [VM_OP_RESUME] = VM_STATE_RUNNING,
	};

	if (op == VM_OP_STARTUP || op == VM_OP_RESET)
		push_event(vm, VM_STATE_TURNING_ON, NULL);
	if (op == VM_OP_STARTUP && startup_fails) {
		snprintf(why, why_size, "the image is not bootable");
		push_event(vm, VM_STATE_TURNED_OFF, why);
		return -1;
	}
	/* A Save in steps (vm_save_poll) stays Saving until a test ends it. */
	if (op == VM_OP_SAVE && save_in_steps) {
		push_event(vm, VM_STATE_SAVING, NULL);
		return 0;
	}
	push_event(vm, after[op], op == VM_OP_TURN_OFF ? reason : NULL);
	return 0;
}

int vm_adopt_saved_state(struct vm *vm, const struct vm_saved *saved)
{
	if (vm->state != VM_STATE_TURNED_OFF)
		return -1;
	vm->saved = *saved;
	vm->state = VM_STATE_SAVED;
	return 0;
}

int vm_discard_saved_state(struct vm *vm, char *why, size_t why_size)
{
	(void)why;
	(void)why_size;
	if (vm->state != VM_STATE_SAVED)
		return -1;
	push_event(vm, VM_STATE_TURNED_OFF, "saved state discarded");
	return 0;
}

size_t vm_console_input(struct vm *vm, const uint8_t *data, size_t len)
{
	(void)vm;
	size_t n = len < uart_room ? len : uart_room;
	if (n > sizeof(uart_got) - uart_got_len)
		n = sizeof(uart_got) - uart_got_len;
	memcpy(uart_got + uart_got_len, data, n);
	uart_got_len += n;
	uart_room -= uart_room == SIZE_MAX ? 0 : n;
	return n;
}

bool vm_gpa_is_ram(const struct vm *vm, uint64_t gpa, uint64_t len)
{
	(void)vm;
	return gpa <= sizeof(guest_ram) && len <= sizeof(guest_ram) - gpa;
}

void *vm_gpa_to_host(struct vm *vm, uint64_t gpa, uint64_t len)
{
	(void)vm;
	(void)len;
	return guest_ram + gpa;
}

/* The guest's clock: HC_SET_TIMER deadlines are on it. */
struct vm_time vm_now(const struct vm *vm)
{
	(void)vm;
	return (struct vm_time){ .ns = 1000000, .tsc = 1000000 };
}

void vm_console_putc(struct vm *vm, uint8_t byte)
{
	(void)vm;
	if (printed_len < sizeof(printed))
		printed[printed_len++] = (char)byte;
}

/* --- the machine: a management VM, a guest with an adapter on lan ----------- */

static const char config_text[] =
	"[network lan]\n"
	"dhcp = on\n"
	"[vm mgmt]\n"
	"memory = 4M\n"
	"image = \\guests\\mgmt.bin\n"
	"role = management\n"
	"[vm guest]\n"
	"memory = 4M\n"
	"image = \\img\\guest.bin\n"
	"initrd = \\img\\initrd\n"
	"disk = \\img\\disk.img\n"
	"nic = lan,mac=02:00:00:00:00:01\n";

#define ARENA_BYTES (32 * MIB)
static struct config config;
static struct boot_info boot_info;
static struct page_alloc pages;
static void *arena;

/* Every answer, in order: pending ones arrive later than their request. */
struct answer {
	uint32_t id;
	uint16_t error;
	uint8_t payload[PROTO_MAX_PAYLOAD];
	size_t len;
};
static struct answer answers[16];
static unsigned answer_count;
static uint32_t last_id;

static void on_answer(uint32_t id, uint16_t error, const uint8_t *payload, size_t len)
{
	struct answer *a = &answers[answer_count++ % 16];

	assert_true(len <= PROTO_MAX_PAYLOAD);
	a->id = id;
	a->error = error;
	a->len = len;
	memcpy(a->payload, payload, len);
}

static struct control_caller callers[] = {
	[CONTROL_PRIV_NONE] = { .privilege = CONTROL_PRIV_NONE, .answer = on_answer },
	[CONTROL_PRIV_READ] = { .privilege = CONTROL_PRIV_READ, .answer = on_answer },
	[CONTROL_PRIV_OPERATE] = { .privilege = CONTROL_PRIV_OPERATE, .answer = on_answer },
	[CONTROL_PRIV_ADMIN] = { .privilege = CONTROL_PRIV_ADMIN, .answer = on_answer },
};

static int setup(void **state)
{
	struct cfg_diag diag;

	(void)state;
	assert_int_equal(config_parse(config_text, strlen(config_text), &config, &diag), 0);
	arena = aligned_alloc(2 * MIB, ARENA_BYTES);
	page_alloc_init(&pages);
	page_alloc_add(&pages, (uint64_t)(uintptr_t)arena, ARENA_BYTES / PAGE_SIZE);
	boot_info.config = &config;
	boot_info.host_pages = &pages;
	for (unsigned i = 0; i < config.vm_count; i++) {
		boot_info.vms[i] = (struct boot_vm){ .ram_bytes = 4 * MIB,
						     .image = { .base = 0x100000, .size = 100 } };
		char why[64];
		assert_non_null(vm_create(&config.vms[i], &boot_info.vms[i], VM_RAM_RESERVED, &pages,
					  why, sizeof(why)));
	}
	boot_info.vms[1].initrd = (struct boot_file){ .base = 0x200000, .size = 100 };
	boot_info.vms[1].disk = (struct boot_file){ .base = 0x300000, .size = 4096 };
	push_event(vms[0], VM_STATE_RUNNING, NULL);
	for (unsigned i = 0; i < sizeof(callers) / sizeof(callers[0]); i++)
		callers[i].vm = vms[0];
	control_init(&boot_info);
	control_poll();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(arena);
	return 0;
}

/* --- helpers --------------------------------------------------------------- */

static uint8_t request_buf[PROTO_MAX_PAYLOAD];
static struct tlv_writer w;

static void begin(void)
{
	tlv_writer_init(&w, request_buf, sizeof(request_buf));
}

static const struct answer *last(void)
{
	return &answers[(answer_count - 1) % 16];
}

/* Sends w's payload; the answer may come now or later. */
static uint32_t submit(enum control_privilege privilege, uint16_t request)
{
	control_execute(&callers[privilege], ++last_id, request, request_buf, w.len);
	return last_id;
}

/* A request answered at once, as the admin asks it (or as privilege does). */
static uint16_t call_as(enum control_privilege privilege, uint16_t request)
{
	unsigned before = answer_count;

	submit(privilege, request);
	assert_int_equal(answer_count, before + 1);
	assert_int_equal(last()->id, last_id);
	return last()->error;
}

static uint16_t call(uint16_t request)
{
	return call_as(CONTROL_PRIV_ADMIN, request);
}

static uint16_t call_vm(uint16_t request, const char *vm)
{
	begin();
	tlv_put_str(&w, API_TAG_VM, vm);
	return call(request);
}

static uint16_t call_net(uint16_t request, const char *net)
{
	begin();
	tlv_put_str(&w, API_TAG_NET, net);
	return call(request);
}

static uint16_t call_nic(uint16_t request, const char *vm, uint8_t nic)
{
	begin();
	tlv_put_str(&w, API_TAG_VM, vm);
	tlv_put_u8(&w, API_TAG_NIC, nic);
	return call(request);
}

static void assert_message(const char *part)
{
	char message[API_STR_MAX + 1];

	assert_int_equal(tlv_get_str(last()->payload, last()->len, API_TAG_MESSAGE, message,
				     sizeof(message)), TLV_OK);
	if (!strstr(message, part))
		fail_msg("message '%s' lacks '%s'", message, part);
}

static uint64_t answer_uint(uint8_t tag)
{
	struct tlv t;
	uint64_t v = 0;

	assert_int_equal(tlv_find(last()->payload, last()->len, tag, &t), TLV_OK);
	for (size_t i = t.len; i-- > 0;)
		v = v << 8 | t.value[i];
	return v;
}

static bool answer_has(uint8_t tag)
{
	struct tlv t;

	return tlv_find(last()->payload, last()->len, tag, &t) == TLV_OK;
}

static unsigned answer_entries(uint8_t tag)
{
	struct tlv_reader r;
	struct tlv t;
	unsigned n = 0;

	tlv_reader_init(&r, last()->payload, last()->len);
	while (tlv_next(&r, &t))
		n += t.tag == tag;
	return n;
}

static struct vm *vm_called(const char *name)
{
	for (unsigned i = 0; i < vms_used; i++)
		if (!strcmp(vms[i]->cfg->name, name))
			return vms[i];
	fail_msg("no VM %s", name);
	return NULL;
}

static void put_create(const char *name, uint64_t memory, const char *image)
{
	begin();
	tlv_put_str(&w, API_TAG_VM, name);
	tlv_put_u64(&w, API_TAG_MEMORY, memory);
	tlv_put_str(&w, API_TAG_IMAGE, image);
}

static uint16_t create(const char *name, uint64_t memory, const char *image)
{
	put_create(name, memory, image);
	return call(API_REQ_CREATE_VIRTUAL_MACHINE);
}

/* --- the dispatcher: table, privileges, malformed requests ----------------- */

#define API_REQUEST_CODE(sym, code, name) code,
static const uint16_t all_requests[] = { API_REQUESTS(API_REQUEST_CODE) };

static void test_every_request_type_has_a_privilege(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(all_requests) / sizeof(all_requests[0]); i++) {
		uint16_t rq = all_requests[i];
		enum control_privilege needed = CONTROL_PRIV_ADMIN + 1;
		bool known = control_request_privilege(rq, &needed);
		/* The management VM answers these itself: the hypervisor never sees them. */
		if (rq == API_REQ_AUTH_CHALLENGE || rq == API_REQ_AUTH_RESPONSE) {
			assert_false(known);
			continue;
		}
		assert_true(known);
		assert_true(needed <= CONTROL_PRIV_ADMIN);
	}
	enum control_privilege needed;
	assert_false(control_request_privilege(0x99, &needed));
	/* A few that say what the levels mean. */
	assert_true(control_request_privilege(API_REQ_HELLO, &needed));
	assert_int_equal(needed, CONTROL_PRIV_NONE);
	assert_true(control_request_privilege(API_REQ_LIST_VIRTUAL_MACHINES, &needed));
	assert_int_equal(needed, CONTROL_PRIV_READ);
	assert_true(control_request_privilege(API_REQ_STARTUP, &needed));
	assert_int_equal(needed, CONTROL_PRIV_OPERATE);
	assert_true(control_request_privilege(API_REQ_CONSOLE_WRITE, &needed));
	assert_int_equal(needed, CONTROL_PRIV_OPERATE);
	assert_true(control_request_privilege(API_REQ_CREATE_VIRTUAL_MACHINE, &needed));
	assert_int_equal(needed, CONTROL_PRIV_ADMIN);
	assert_true(control_request_privilege(API_REQ_SET_DHCP_SETTINGS, &needed));
	assert_int_equal(needed, CONTROL_PRIV_ADMIN);
}

static void test_a_caller_below_the_privilege_is_refused(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(all_requests) / sizeof(all_requests[0]); i++) {
		enum control_privilege needed;
		if (!control_request_privilege(all_requests[i], &needed) ||
		    needed == CONTROL_PRIV_NONE)
			continue;
		/* A request that would succeed: only the privilege stops it. */
		put_create("refused", MIB, "\\img\\guest.bin");
		uint64_t seq = vm_event_seq();
		unsigned count = vms_used;
		assert_int_equal(call_as(needed - 1, all_requests[i]), API_E_PERMISSION_DENIED);
		assert_message(api_request_name(all_requests[i]));
		assert_int_equal(vms_used, count);
		assert_int_equal(vm_event_seq(), seq);
	}
	begin();
	assert_int_equal(call_as(CONTROL_PRIV_NONE, API_REQ_HELLO), API_E_OK);
	assert_int_equal(call_as(CONTROL_PRIV_READ, API_REQ_LIST_VIRTUAL_MACHINES), API_E_OK);
	assert_int_equal(call_vm(API_REQ_FIND_VIRTUAL_MACHINE, "refused"), API_E_NOT_FOUND);
}

static void test_unknown_and_malformed_requests(void **state)
{
	static const uint8_t truncated[] = { API_TAG_VM, 10, 0, 'g' };

	(void)state;
	begin();
	assert_int_equal(call(0x99), API_E_UNKNOWN_REQUEST);
	assert_message("0x99");
	assert_int_equal(call(API_REQ_AUTH_CHALLENGE), API_E_UNKNOWN_REQUEST);
	memcpy(request_buf, truncated, sizeof(truncated));
	w.len = sizeof(truncated);
	assert_int_equal(call(API_REQ_FIND_VIRTUAL_MACHINE), API_E_BAD_FRAME);
	assert_message("FindVirtualMachine: malformed");
	/* Longer than any frame: refused before it is read. */
	control_execute(&callers[CONTROL_PRIV_ADMIN], ++last_id, API_REQ_HELLO, request_buf,
			PROTO_MAX_PAYLOAD + 1);
	assert_int_equal(last()->error, API_E_BAD_FRAME);
}

/* --- IVMVirtualServer -------------------------------------------------------- */

static void test_hello_goodbye_host_info(void **state)
{
	char software[API_STR_MAX + 1];

	(void)state;
	begin();
	assert_int_equal(call(API_REQ_HELLO), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_API_VERSION), API_VERSION);
	assert_int_equal(answer_uint(API_TAG_SEQ), vm_event_seq());
	assert_int_equal(tlv_get_str(last()->payload, last()->len, API_TAG_SOFTWARE, software,
				     sizeof(software)), TLV_OK);
	assert_memory_equal(software, "vmm ", 4);
	assert_int_equal(call(API_REQ_GOODBYE), API_E_OK);
	assert_int_equal(last()->len, 0);
	assert_int_equal(call(API_REQ_GET_HOST_INFO), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_CPUS), 1);
	assert_int_equal(answer_uint(API_TAG_VM_COUNT), 2);
	assert_int_equal(answer_uint(API_TAG_NET_COUNT), 1);
	assert_int_equal(answer_uint(API_TAG_CONTROL_DENIED), DENIED_TOTAL);
	assert_int_equal(tlv_get_str(last()->payload, last()->len, API_TAG_STORE, software,
				     sizeof(software)), TLV_OK);
	assert_memory_equal(software, "none: ", 6);
	/* The configured VMs' RAM counts as used: it is outside the pool. */
	assert_int_equal(answer_uint(API_TAG_MEMORY_TOTAL) - answer_uint(API_TAG_MEMORY_USED),
			 answer_uint(API_TAG_MEMORY_FREE));
	assert_true(answer_uint(API_TAG_MEMORY_USED) >= 8 * MIB);
}

static void test_subscribe(void **state)
{
	(void)state;
	begin();
	tlv_put_u8(&w, API_TAG_STATE_EVENTS, 1);
	assert_int_equal(call(API_REQ_SUBSCRIBE_EVENTS), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_SEQ), vm_event_seq());
	tlv_put_str(&w, API_TAG_CONSOLE_VM, "guest");
	assert_int_equal(call(API_REQ_SUBSCRIBE_EVENTS), API_E_OK);
	begin();
	tlv_put_str(&w, API_TAG_CONSOLE_VM, "nobody");
	assert_int_equal(call(API_REQ_SUBSCRIBE_EVENTS), API_E_NOT_FOUND);
	assert_message("'nobody'");
}

static void test_create_vm(void **state)
{
	(void)state;
	put_create("web", 2 * MIB, "/img/guest.bin");
	tlv_put_str(&w, API_TAG_BOOT, "linux");
	tlv_put_str(&w, API_TAG_INITRD, "/img/initrd");
	tlv_put_str(&w, API_TAG_DISK, "/img/disk.img");
	tlv_put_str(&w, API_TAG_CMDLINE, "console=ttyS0");
	tlv_put_str(&w, API_TAG_NIC_SPEC, "lan");
	tlv_put_str(&w, API_TAG_NIC_SPEC, "lan,mac=02:00:00:00:00:42");
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_MACHINE), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_STATE), VM_STATE_TURNED_OFF);
	struct vm *web = vm_called("web");
	assert_int_equal(answer_uint(API_TAG_VM_ID), web->id);
	assert_int_equal(web->cfg->boot, VM_BOOT_LINUX);
	assert_string_equal(web->cfg->image, "\\img\\guest.bin");
	assert_string_equal(web->cfg->cmdline, "console=ttyS0");
	assert_int_equal(web->boot->ram_bytes, 2 * MIB);
	assert_int_equal(web->boot->ram_base % (2 * MIB), 0);
	assert_int_equal(web->boot->disk.base, 0x300000);
	assert_int_equal(nic_count(web->id), 2);
	assert_memory_equal(nic_get(web->id, 1)->mac, "\x02\0\0\0\0\x42", 6);

	put_create("auto", MIB, "\\img\\guest.bin");
	tlv_put_u8(&w, API_TAG_AUTOSTART, 1);
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_MACHINE), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_STATE), VM_STATE_RUNNING);
}

static void test_create_vm_refusals(void **state)
{
	static const struct {
		const char *tag_value; /* nic_spec */
		uint16_t error;
		const char *message;
	} nic_specs[] = {
		{ ",mac=02:00:00:00:00:09", API_E_INVALID_ARGUMENT, "expected NETWORK" },
		{ "wan", API_E_NOT_FOUND, "no network named 'wan'" },
		{ "lan,mac", API_E_INVALID_ARGUMENT, "expected ,mac=" },
		{ "lan,mac=zz:00:00:00:00:09", API_E_INVALID_ARGUMENT, "bad MAC" },
		{ "lan,mac=02:00:00:00:00:01", API_E_ALREADY_EXISTS, "in use" },
		{ "lan,mac=01:00:5e:00:00:01", API_E_INVALID_ARGUMENT, "multicast" },
	};
	unsigned count = vms_used;

	(void)state;
	begin();
	tlv_put_u64(&w, API_TAG_MEMORY, MIB);
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_MACHINE), API_E_INVALID_ARGUMENT);
	assert_message("missing vm");
	begin();
	tlv_put_str(&w, API_TAG_VM, "x");
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_MACHINE), API_E_INVALID_ARGUMENT);
	assert_message("missing memory");
	begin();
	tlv_put_str(&w, API_TAG_VM, "x");
	tlv_put_u64(&w, API_TAG_MEMORY, MIB);
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_MACHINE), API_E_INVALID_ARGUMENT);
	assert_message("missing image");
	assert_int_equal(create("x", MIB + 1, "\\img\\guest.bin"), API_E_INVALID_ARGUMENT);
	assert_message("whole MiB");
	/* A store disk: a store name, one disk, and a server with a store (this one has none). */
	begin();
	tlv_put_str(&w, API_TAG_VM, "x");
	tlv_put_u64(&w, API_TAG_MEMORY, MIB);
	tlv_put_str(&w, API_TAG_IMAGE, "\\img\\guest.bin");
	tlv_put_str(&w, API_TAG_STORE_DISK, ".bad");
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_MACHINE), API_E_INVALID_ARGUMENT);
	assert_message("store object's name");
	begin();
	tlv_put_str(&w, API_TAG_VM, "x");
	tlv_put_u64(&w, API_TAG_MEMORY, MIB);
	tlv_put_str(&w, API_TAG_IMAGE, "\\img\\guest.bin");
	tlv_put_str(&w, API_TAG_STORE_DISK, "web1");
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_MACHINE), API_E_INVALID_STATE);
	assert_message("has no store");
	assert_int_equal(create("x", 0, "\\img\\guest.bin"), API_E_INVALID_ARGUMENT);
	assert_int_equal(create("x", 65 * 1024 * MIB, "\\img\\guest.bin"),
			 API_E_INVALID_ARGUMENT);
	put_create("x", MIB, "\\img\\guest.bin");
	tlv_put_str(&w, API_TAG_BOOT, "protected");
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_MACHINE), API_E_INVALID_ARGUMENT);
	assert_message("real, long or linux");
	put_create("x", MIB, "\\img\\guest.bin");
	tlv_put_u64(&w, API_TAG_ENTRY, MIB);
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_MACHINE), API_E_INVALID_ARGUMENT);
	assert_message("inside memory");
	put_create("x", MIB, "\\img\\guest.bin");
	tlv_put_u64(&w, API_TAG_LOAD, 2 * MIB);
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_MACHINE), API_E_INVALID_ARGUMENT);
	put_create("x", MIB, "\\img\\guest.bin");
	for (unsigned i = 0; i <= CFG_MAX_NICS; i++)
		tlv_put_str(&w, API_TAG_NIC_SPEC, "lan");
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_MACHINE), API_E_NO_RESOURCES);
	assert_message("at most 4 adapters");
	for (size_t i = 0; i < sizeof(nic_specs) / sizeof(nic_specs[0]); i++) {
		put_create(i < 4 ? "x" : "half", MIB, "\\img\\guest.bin");
		tlv_put_str(&w, API_TAG_NIC_SPEC, nic_specs[i].tag_value);
		assert_int_equal(call(API_REQ_CREATE_VIRTUAL_MACHINE), nic_specs[i].error);
		assert_message(nic_specs[i].message);
		/* An adapter that cannot be made leaves the VM, TurnedOff, to be fixed. */
		if (i >= 4)
			assert_int_equal(call_vm(API_REQ_DELETE_VIRTUAL_MACHINE, "half"), API_E_OK);
	}
	assert_int_equal(create("guest", MIB, "\\img\\guest.bin"), API_E_ALREADY_EXISTS);
	assert_int_equal(create("x", MIB, ""), API_E_INVALID_ARGUMENT);
	assert_message("1..127 characters");
	assert_int_equal(create("x", MIB, "\\img\\other.bin"), API_E_NOT_FOUND);
	assert_message("not in the image library");
	put_create("x", MIB, "\\img\\guest.bin");
	tlv_put_str(&w, API_TAG_DISK, "\\img\\guest.bin");
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_MACHINE), API_E_INVALID_ARGUMENT);
	assert_message("is an image or initrd");
	put_create("x", MIB, "\\img\\guest.bin");
	tlv_put_str(&w, API_TAG_INITRD, "\\img\\disk.img");
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_MACHINE), API_E_NOT_FOUND);
	assert_int_equal(create("x", 64 * MIB, "\\img\\guest.bin"), API_E_NO_RESOURCES);
	assert_message("no 64 MiB block");
	vm_create_fails = true;
	assert_int_equal(create("x", MIB, "\\img\\guest.bin"), API_E_NO_RESOURCES);
	assert_message("no memory for the VM's state");
	vm_create_fails = false;
	assert_int_equal(vms_used, count);

	/* At most VM_MAX at once. */
	struct cfg_vm filler = { .name = "filler" };
	struct boot_vm filler_boot = { .ram_bytes = MIB };
	char why[64];
	while (vms_used < VM_MAX)
		assert_non_null(vm_create(&filler, &filler_boot, VM_RAM_RESERVED, &pages, why,
					  sizeof(why)));
	assert_int_equal(create("x", MIB, "\\img\\guest.bin"), API_E_NO_RESOURCES);
	assert_message("16 VMs exist");
	while (vms_used > count)
		vm_delete(vms[vms_used - 1]);
}

static void test_delete_list_find_vm(void **state)
{
	(void)state;
	uint64_t free_before = pages.free_pages;
	assert_int_equal(create("gone", 2 * MIB, "\\img\\guest.bin"), API_E_OK);
	assert_int_equal(call_vm(API_REQ_FIND_VIRTUAL_MACHINE, "gone"), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_STATE), VM_STATE_TURNED_OFF);
	begin();
	assert_int_equal(call(API_REQ_LIST_VIRTUAL_MACHINES), API_E_OK);
	unsigned listed = answer_entries(API_TAG_VM_ENTRY);
	assert_false(answer_has(API_TAG_CURSOR));
	begin();
	tlv_put_u32(&w, API_TAG_CURSOR, 1);
	assert_int_equal(call(API_REQ_LIST_VIRTUAL_MACHINES), API_E_OK);
	assert_int_equal(answer_entries(API_TAG_VM_ENTRY), listed - 1);

	assert_int_equal(call_vm(API_REQ_DELETE_VIRTUAL_MACHINE, "gone"), API_E_OK);
	/* Its RAM is back, and its slot is free for the next. */
	assert_int_equal(pages.free_pages, free_before);
	assert_int_equal(call_vm(API_REQ_FIND_VIRTUAL_MACHINE, "gone"), API_E_NOT_FOUND);
	assert_int_equal(call_vm(API_REQ_DELETE_VIRTUAL_MACHINE, "gone"), API_E_NOT_FOUND);
	begin();
	assert_int_equal(call(API_REQ_LIST_VIRTUAL_MACHINES), API_E_OK);
	assert_int_equal(answer_entries(API_TAG_VM_ENTRY), listed - 1);
	assert_int_equal(call(API_REQ_DELETE_VIRTUAL_MACHINE), API_E_INVALID_ARGUMENT);
	assert_message("missing vm");
	assert_int_equal(call(API_REQ_FIND_VIRTUAL_MACHINE), API_E_INVALID_ARGUMENT);
	assert_int_equal(call_vm(API_REQ_DELETE_VIRTUAL_MACHINE, "mgmt"),
			 API_E_PERMISSION_DENIED);
	assert_message("is the management VM");
	assert_int_equal(call_vm(API_REQ_DELETE_VIRTUAL_MACHINE, "auto"), API_E_INVALID_STATE);
	assert_int_equal(answer_uint(API_TAG_STATE), VM_STATE_RUNNING);
}

static void test_networks(void **state)
{
	(void)state;
	begin();
	tlv_put_str(&w, API_TAG_NET, "dmz");
	tlv_put_u32(&w, API_TAG_MTU, 9000);
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_NETWORK), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_MTU), 9000);
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_NETWORK), API_E_ALREADY_EXISTS);
	begin();
	tlv_put_str(&w, API_TAG_NET, "jumbo");
	tlv_put_u32(&w, API_TAG_MTU, 65000);
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_NETWORK), API_E_INVALID_ARGUMENT);
	assert_message("mtu must be");
	begin();
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_NETWORK), API_E_INVALID_ARGUMENT);
	assert_message("missing net");
	for (unsigned i = network_count(); i < NET_MAX; i++) {
		char name[8];
		snprintf(name, sizeof(name), "n%u", i);
		assert_int_equal(call_net(API_REQ_CREATE_VIRTUAL_NETWORK, name), API_E_OK);
	}
	assert_int_equal(call_net(API_REQ_CREATE_VIRTUAL_NETWORK, "more"), API_E_NO_RESOURCES);
	begin();
	assert_int_equal(call(API_REQ_LIST_VIRTUAL_NETWORKS), API_E_OK);
	assert_int_equal(answer_entries(API_TAG_NET_ENTRY), NET_MAX);
	for (unsigned i = 2; i < NET_MAX; i++) {
		char name[8];
		snprintf(name, sizeof(name), "n%u", i);
		assert_int_equal(call_net(API_REQ_DELETE_VIRTUAL_NETWORK, name), API_E_OK);
	}
	/* dmz's adapter is unplugged with it. */
	begin();
	tlv_put_str(&w, API_TAG_VM, "guest");
	tlv_put_u8(&w, API_TAG_NIC, 0);
	tlv_put_str(&w, API_TAG_NET, "dmz");
	assert_int_equal(call(API_REQ_ATTACH_TO_VIRTUAL_NETWORK), API_E_OK);
	assert_int_equal(call_net(API_REQ_DELETE_VIRTUAL_NETWORK, "dmz"), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_NIC_COUNT), 1);
	assert_int_equal(call_net(API_REQ_DELETE_VIRTUAL_NETWORK, "dmz"), API_E_NOT_FOUND);
	assert_int_equal(nic_get(vm_called("guest")->id, 0)->net, -1);
	begin();
	tlv_put_str(&w, API_TAG_VM, "guest");
	tlv_put_u8(&w, API_TAG_NIC, 0);
	tlv_put_str(&w, API_TAG_NET, "lan");
	assert_int_equal(call(API_REQ_ATTACH_TO_VIRTUAL_NETWORK), API_E_OK);
}

/* --- Moving a VM: ExportSavedState, ImportVirtualMachine -------------------------- */

/* The configuration record's disk in the next save file made; NULL: none. */
static const char *save_file_disk;

/* A save file as vmm/vm_save.c writes one: header, configuration, a vCPU, RAM. */
static size_t make_save_file(uint8_t *out, size_t cap, uint64_t ram_bytes, const char *network)
{
	struct savefile_header h = { .name = "guest", .ram_bytes = ram_bytes, .vcpus = 1,
				     .boot_mode = SAVEFILE_BOOT_LONG, .saved_at = 1767225600,
				     .nic_count = 1,
				     .nics = { { .mac = { 2, 0, 0, 0, 0, 0x77 } } } };
	static uint8_t ram[4 * MIB];
	static struct lz_workspace ws;
	static uint8_t scratch[SAVEFILE_SCRATCH_SIZE];
	uint8_t config[256], vcpu[16] = { 1 };
	struct tlv_writer cw;
	struct savefile_buffer file = { out, cap, 0 };
	struct savefile_writer sw;

	snprintf(h.nics[0].network, sizeof(h.nics[0].network), "%s", network);
	assert_true(ram_bytes <= sizeof(ram));
	memset(ram, 0, sizeof(ram));
	strcpy((char *)ram + 8192, "the guest's memory");
	for (unsigned i = 0; i < 4 * 4096; i++) /* pages that do not compress: a file of chunks */
		ram[16384 + i] = (uint8_t)((i * 2654435761u) >> 24);
	tlv_writer_init(&cw, config, sizeof(config));
	tlv_put_str(&cw, API_TAG_VM, "guest");
	tlv_put_u64(&cw, API_TAG_MEMORY, ram_bytes);
	tlv_put_str(&cw, API_TAG_IMAGE, "\\img\\guest.bin");
	tlv_put_str(&cw, API_TAG_NIC_SPEC, "lan"); /* ignored: the header's adapters count */
	tlv_put_u8(&cw, API_TAG_ALLOW_MACS, 3);
	if (save_file_disk)
		tlv_put_str(&cw, API_TAG_DISK, save_file_disk);
	lz_workspace_init(&ws);
	assert_true(savefile_writer_init(&sw, savefile_buffer_sink, &file));
	assert_true(savefile_write_header(&sw, &h));
	assert_true(savefile_write_record(&sw, SAVEFILE_CONFIG, 0, config, cw.len));
	assert_true(savefile_write_vcpu(&sw, 0, vcpu, sizeof(vcpu)));
	assert_true(savefile_write_memory(&sw, ram, ram_bytes / 4096, &ws, scratch));
	assert_true(savefile_finish(&sw));
	return file.size;
}

static void assert_no_vm_named(const char *name)
{
	for (unsigned i = 0; i < vms_used; i++)
		assert_string_not_equal(vms[i]->cfg->name, name);
}

static uint16_t import_chunk(const char *vm, uint64_t size, uint64_t offset, const uint8_t *data,
			     size_t n)
{
	begin();
	tlv_put_str(&w, API_TAG_VM, vm);
	tlv_put_u64(&w, API_TAG_SAVED_SIZE, size);
	tlv_put_u64(&w, API_TAG_OFFSET, offset);
	tlv_put(&w, API_TAG_DATA, data, n);
	return call(API_REQ_IMPORT_VIRTUAL_MACHINE);
}

/* The first chunk with an option of the import (tag API_TAG_NET: --network, STORE_DISK: --disk). */
static uint16_t import_first_with(const char *vm, uint8_t tag, const char *value, uint64_t size,
				  const uint8_t *data, size_t n)
{
	begin();
	tlv_put_str(&w, API_TAG_VM, vm);
	tlv_put_str(&w, tag, value);
	tlv_put_u64(&w, API_TAG_SAVED_SIZE, size);
	tlv_put_u64(&w, API_TAG_OFFSET, 0);
	tlv_put(&w, API_TAG_DATA, data, n);
	return call(API_REQ_IMPORT_VIRTUAL_MACHINE);
}

/*
 * Sends data[from..size) in chunks; returns the first error, or the last
 * answer's. A BUSY last chunk (a carried disk being written in steps) is
 * sent again after a scheduler pass (control_poll), as vmmctl does.
 */
static unsigned busy_answers;

static uint16_t import_rest(const char *vm, const uint8_t *data, size_t size, size_t from)
{
	uint16_t e = API_E_OK;

	for (size_t at = from; at < size && e == API_E_OK; at += 800) {
		size_t n = size - at < 800 ? size - at : 800;
		while ((e = import_chunk(vm, size, at, data + at, n)) == API_E_BUSY) {
			assert_int_equal(answer_uint(API_TAG_RETRY_AFTER_MS), 200);
			busy_answers++;
			control_poll();
		}
	}
	return e;
}

static void test_export_and_import(void **state)
{
	static uint8_t file[64 * 1024], got[64 * 1024];
	struct vm *guest = vm_called("guest");
	size_t size = make_save_file(file, sizeof(file), guest->boot->ram_bytes, "lan"), have = 0;
	(void)state;

	/* Only a saved VM has a file to export. */
	assert_int_equal(call_vm(API_REQ_EXPORT_SAVED_STATE, "guest"), API_E_INVALID_STATE);
	assert_message("not Saved");
	if (guest->state == VM_STATE_TURNED_OFF)
		assert_int_equal(call_vm(API_REQ_STARTUP, "guest"), API_E_OK);
	assert_int_equal(call_vm(API_REQ_SAVE, "guest"), API_E_OK);
	guest->saved = (struct vm_saved){ .base = (uint64_t)(uintptr_t)file, .bytes = size };

	/* In chunks by offset, as a dropped line would resume. */
	while (have < size) {
		begin();
		tlv_put_str(&w, API_TAG_VM, "guest");
		tlv_put_u64(&w, API_TAG_OFFSET, have);
		assert_int_equal(call(API_REQ_EXPORT_SAVED_STATE), API_E_OK);
		const uint8_t *data;
		size_t n;
		assert_int_equal(tlv_get_bytes(last()->payload, last()->len, API_TAG_DATA, &data, &n),
				 TLV_OK);
		assert_true(n > 0 && n <= PROTO_MAX_PAYLOAD);
		assert_int_equal(answer_uint(API_TAG_SAVED_SIZE), size);
		assert_int_equal(answer_uint(API_TAG_NEXT_OFFSET), have + n);
		memcpy(got + have, data, n);
		have += n;
	}
	assert_memory_equal(got, file, size);
	begin();
	tlv_put_str(&w, API_TAG_VM, "guest");
	tlv_put_u64(&w, API_TAG_OFFSET, size + 1);
	assert_int_equal(call(API_REQ_EXPORT_SAVED_STATE), API_E_INVALID_ARGUMENT);
	assert_message("past the file");

	/* A damaged file is refused whole, and its memory comes back. */
	uint64_t free_before = pages.free_pages;
	got[size / 2] ^= 1;
	assert_int_equal(import_chunk("moved", size, 0, got, 700), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_NEXT_OFFSET), 700);
	assert_int_equal(import_rest("moved", got, size, 700), API_E_INVALID_ARGUMENT);
	assert_message("the file is refused");
	assert_int_equal(pages.free_pages, free_before);
	got[size / 2] ^= 1;

	/* An import whose line dropped waits ten minutes for --resume, then is dropped. */
	assert_int_equal(import_chunk("moved", size, 0, got, 700), API_E_OK);
	assert_true(pages.free_pages < free_before);
	now_ns += 9ull * 60 * 1000000000;
	control_poll();
	assert_int_equal(import_chunk("moved", size, 700, got + 700, 100), API_E_OK);
	now_ns += 10ull * 60 * 1000000000 + 1;
	control_poll();
	assert_int_equal(pages.free_pages, free_before);
	assert_int_equal(import_chunk("moved", size, 800, got + 800, 100), API_E_INVALID_STATE);
	assert_message("begin at offset 0");

	/* Out of order is refused with where to go on; a chunk sent again is taken. */
	assert_int_equal(import_chunk("moved", size, 0, got, 700), API_E_OK);
	assert_int_equal(import_chunk("moved", size, 900, got + 900, 100), API_E_INVALID_ARGUMENT);
	assert_int_equal(answer_uint(API_TAG_NEXT_OFFSET), 700);
	assert_int_equal(import_chunk("moved", size, 500, got + 500, 400), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_NEXT_OFFSET), 900);
	assert_int_equal(import_chunk("other", size, 900, got + 900, 10), API_E_INVALID_STATE);
	assert_message("no import of 'other'");
	assert_int_equal(import_rest("moved", got, size, 900), API_E_OK);
	struct vm *moved = vm_called("moved");
	assert_int_equal(moved->state, VM_STATE_SAVED);
	assert_int_equal(answer_uint(API_TAG_STATE), VM_STATE_SAVED);
	assert_true(moved->saved.in_store);
	assert_int_equal(persisted, 1);
	assert_memory_equal((const void *)(uintptr_t)moved->saved.base, file, size);
	assert_int_equal(moved->boot->ram_bytes, guest->boot->ram_bytes);
	const struct nic_info *nic = nic_get(moved->id, 0);
	assert_non_null(nic);
	assert_int_equal(nic->mac[5], 0x77);
	assert_int_equal(nic->net, network_find("lan"));
	assert_int_equal(nic->allow_macs, 3); /* what the header does not hold moves too */

	/* A name in use, and the same MAC again, are refused before anything stays. */
	assert_int_equal(import_chunk("moved", size, 0, got, 10), API_E_ALREADY_EXISTS);
	free_before = pages.free_pages;
	assert_int_equal(import_rest("copy", got, size, 0), API_E_ALREADY_EXISTS);
	assert_message("MAC");
	assert_int_equal(pages.free_pages, free_before);
	assert_no_vm_named("copy");

	/*
	 * An adapter's network must exist here: refused from the first chunk,
	 * which holds the header, before any memory is taken.
	 */
	static uint8_t elsewhere[64 * 1024];
	size_t other = make_save_file(elsewhere, sizeof(elsewhere), guest->boot->ram_bytes, "wan");
	assert_int_equal(import_chunk("far", other, 0, elsewhere, 800), API_E_NOT_FOUND);
	assert_message("network 'wan' does not exist here");
	assert_message("--network");
	assert_int_equal(pages.free_pages, free_before);
	assert_no_vm_named("far");
	/* A first chunk without the whole header cannot be checked: refused. */
	assert_int_equal(import_chunk("far", other, 0, elsewhere, 20), API_E_INVALID_ARGUMENT);
	assert_message("truncated");

	/* Tidy up for the tests after. */
	moved->state = VM_STATE_TURNED_OFF;
	assert_int_equal(call_vm(API_REQ_DELETE_VIRTUAL_MACHINE, "moved"), API_E_OK);

	/* Too little memory for its RAM and the file: refused from the first chunk. */
	uint64_t hoard, hoarded = pages.free_pages - guest->boot->ram_bytes / 4096;
	assert_int_equal(page_alloc_alloc(&pages, hoarded, 1, &hoard), 0);
	free_before = pages.free_pages;
	assert_int_equal(import_chunk("far", other, 0, elsewhere, 800), API_E_NO_RESOURCES);
	assert_message("KiB are free");
	assert_int_equal(pages.free_pages, free_before);
	page_alloc_free(&pages, hoard, hoarded);

	/* --network puts the adapters on a network that is here. */
	assert_int_equal(import_first_with("far", API_TAG_NET, "lan", other, elsewhere, 800),
			 API_E_OK);
	assert_int_equal(import_rest("far", elsewhere, other, 800), API_E_OK);
	struct vm *far = vm_called("far");
	nic = nic_get(far->id, 0);
	assert_non_null(nic);
	assert_int_equal(nic->net, network_find("lan"));
	far->state = VM_STATE_TURNED_OFF;
	assert_int_equal(call_vm(API_REQ_DELETE_VIRTUAL_MACHINE, "far"), API_E_OK);

	/* A VM with a disk: its writes are not in the file, so it is not imported. */
	save_file_disk = "\\disk\\data.img";
	other = make_save_file(elsewhere, sizeof(elsewhere), guest->boot->ram_bytes, "lan");
	save_file_disk = NULL;
	free_before = pages.free_pages;
	assert_int_equal(import_chunk("disked", other, 0, elsewhere, 800), API_E_INVALID_ARGUMENT);
	assert_message("has a disk, which the file does not carry");
	assert_int_equal(pages.free_pages, free_before);
	assert_no_vm_named("disked");
	guest->saved = (struct vm_saved){ 0 };
	assert_int_equal(call_vm(API_REQ_DISCARD_SAVED_STATE, "guest"), API_E_OK);
}

/* The chunks ExportSavedState gives for vm, with_disk or not, into out; the file's size. */
static size_t export_all(const char *vm, bool with_disk, uint8_t *out, size_t cap)
{
	size_t have = 0, size = 1;

	while (have < size) {
		const uint8_t *data;
		size_t n;
		begin();
		tlv_put_str(&w, API_TAG_VM, vm);
		tlv_put_u64(&w, API_TAG_OFFSET, have);
		if (with_disk)
			tlv_put_u8(&w, API_TAG_WITH_DISK, 1);
		/* The disk is read in steps (control_poll) while the chunk is answered BUSY. */
		uint16_t e = call(API_REQ_EXPORT_SAVED_STATE);
		if (e == API_E_BUSY) {
			assert_message("its disk is being read");
			busy_answers++;
			control_poll();
			continue;
		}
		assert_int_equal(e, API_E_OK);
		assert_int_equal(tlv_get_bytes(last()->payload, last()->len, API_TAG_DATA, &data, &n),
				 TLV_OK);
		size = answer_uint(API_TAG_SAVED_SIZE);
		assert_true(size <= cap && n > 0);
		memcpy(out + have, data, n);
		have += n;
	}
	return size;
}

/*
 * A VM moved with its disk (export --with-disk): the exported file carries
 * the disk after the saved state; an import makes it a store disk, which
 * the new VM's configuration and saved file name, and keeps none of it
 * when the store lacks room, writing fails, or there is no store.
 */
static void test_export_and_import_with_disk(void **state)
{
	static uint8_t file[64 * 1024], got[256 * 1024], disk_bytes[80 * 1024];
	static uint8_t *chunk_table[2];
	struct vm *guest = vm_called("guest");
	const uint64_t disk_size = sizeof(disk_bytes) - 3 * 512; /* not whole pages */
	struct savefile_reader r;
	struct savefile_error err;
	struct savefile_record rec;
	struct tlv t;
	(void)state;

	save_file_disk = "data.img";
	size_t size = make_save_file(file, sizeof(file), guest->boot->ram_bytes, "lan");
	save_file_disk = NULL;
	if (guest->state == VM_STATE_TURNED_OFF)
		assert_int_equal(call_vm(API_REQ_STARTUP, "guest"), API_E_OK);
	assert_int_equal(call_vm(API_REQ_SAVE, "guest"), API_E_OK);
	guest->saved = (struct vm_saved){ .base = (uint64_t)(uintptr_t)file, .bytes = size,
					  .saved_at = 1767225600 };

	/* A VM without a disk has none to carry. */
	begin();
	tlv_put_str(&w, API_TAG_VM, "guest");
	tlv_put_u64(&w, API_TAG_OFFSET, 0);
	tlv_put_u8(&w, API_TAG_WITH_DISK, 1);
	assert_int_equal(call(API_REQ_EXPORT_SAVED_STATE), API_E_INVALID_ARGUMENT);
	assert_message("has no disk to carry");

	for (size_t i = 0; i < sizeof(disk_bytes); i++)
		disk_bytes[i] = i < 8192 ? 0 : (uint8_t)((i * 2654435761u) >> 13);
	const struct disk_chunk_alloc no_chunks = { 0 }; /* read only: the export writes nothing */
	disk_init(&guest->disk, disk_bytes, disk_size, chunk_table, &no_chunks);
	/*
	 * The file is begun at the first chunk asked for, which is answered
	 * BUSY while the disk is read in steps, kept for the chunks after, and
	 * dropped when abandoned.
	 */
	uint64_t free_before = pages.free_pages;
	begin();
	tlv_put_str(&w, API_TAG_VM, "guest");
	tlv_put_u8(&w, API_TAG_WITH_DISK, 1);
	assert_int_equal(call(API_REQ_EXPORT_SAVED_STATE), API_E_BUSY);
	assert_message("its disk is being read: 0 of 78 KiB");
	assert_int_equal(answer_uint(API_TAG_RETRY_AFTER_MS), 200);
	assert_true(pages.free_pages < free_before);
	now_ns += 10ull * 60 * 1000000000 + 1;
	control_poll();
	assert_int_equal(pages.free_pages, free_before);
	/* A VM that leaves Saved while its disk is read (started, say) ends the reading. */
	begin();
	tlv_put_str(&w, API_TAG_VM, "guest");
	tlv_put_u8(&w, API_TAG_WITH_DISK, 1);
	assert_int_equal(call(API_REQ_EXPORT_SAVED_STATE), API_E_BUSY);
	assert_true(control_steps_pending());
	guest->state = VM_STATE_RUNNING;
	control_poll();
	assert_false(control_steps_pending());
	assert_int_equal(pages.free_pages, free_before);
	guest->state = VM_STATE_SAVED;
	busy_answers = 0;
	/* Whole, then dropped with its last chunk. */
	size_t moved_size = export_all("guest", true, got, sizeof(got));
	assert_true(busy_answers >= 1);
	assert_int_equal(pages.free_pages, free_before);
	assert_true(savefile_open(&r, got, moved_size, &err));
	assert_int_equal(r.walk.disk_bytes, disk_size);
	assert_true(moved_size < size + disk_size);
	/* Without with_disk the same VM's file is the saved state alone. */
	assert_int_equal(export_all("guest", false, got + moved_size, sizeof(got) - moved_size),
			 size);
	uint64_t said = 0;
	while (savefile_next(&r, &rec))
		if (rec.type == SAVEFILE_CONFIG)
			tlv_get_u64(rec.payload, rec.size, API_TAG_DISK_SIZE, &said);
	assert_int_equal(said, disk_size);

	/* No store here: refused from the first chunk. */
	assert_int_equal(import_chunk("moved", moved_size, 0, got, 800), API_E_NOT_SUPPORTED);
	assert_message("no store here");
	assert_int_equal(pages.free_pages, free_before);

	/* A store without room for the disk: refused from the first chunk. */
	store_present = true;
	store_free = 64 * 1024;
	assert_int_equal(import_chunk("moved", moved_size, 0, got, 800), API_E_NO_RESOURCES);
	assert_message("its disk needs 78 KiB, the store has 64 KiB free");
	assert_int_equal(pages.free_pages, free_before);
	store_free = 1 * MIB;

	/* The drive fails half-way: no disk, no VM, no memory kept. */
	unsigned disks_before = disk_count;
	write_fails_at = 40 * 1024;
	assert_int_equal(import_rest("moved", got, moved_size, 0), API_E_INTERNAL);
	assert_message("its disk 'moved' is not written");
	assert_int_equal(disk_count, disks_before);
	assert_int_equal(pages.free_pages, free_before);
	assert_no_vm_named("moved");
	write_fails_at = UINT64_MAX;

	/* The disk becomes store disk 'moved' (the VM's name: it was a library disk). */
	busy_answers = 0;
	size_t last_at = (moved_size - 1) / 800 * 800;
	for (size_t at = 0; at < last_at; at += 800)
		assert_int_equal(import_chunk("moved", moved_size, at, got + at, 800), API_E_OK);
	assert_int_equal(import_chunk("moved", moved_size, last_at, got + last_at,
				      moved_size - last_at), API_E_BUSY);
	/* A chunk sent again meanwhile is taken as there (BUSY as the rest): its bytes are not. */
	static uint8_t junk[800];
	memset(junk, 0x5a, sizeof(junk));
	assert_int_equal(import_chunk("moved", moved_size, 800, junk, sizeof(junk)), API_E_BUSY);
	assert_int_equal(import_rest("moved", got, moved_size, last_at), API_E_OK);
	assert_true(busy_answers >= 1); /* its last chunk, while the disk was written */
	assert_int_equal(answer_uint(API_TAG_NEXT_OFFSET), moved_size);
	struct vm *moved = vm_called("moved");
	assert_int_equal(moved->state, VM_STATE_SAVED);
	assert_string_equal(moved->cfg->store_disk, "moved");
	assert_string_equal(moved->cfg->disk, "");
	assert_int_equal(disk_count, disks_before + 1);
	assert_memory_equal(imported_disk, disk_bytes, disk_size);
	/* Its saved file is what a Save here writes: no disk, the configuration naming its own. */
	assert_true(savefile_open(&r, (const uint8_t *)(uintptr_t)moved->saved.base,
				  moved->saved.bytes, &err));
	assert_int_equal(r.walk.disk_bytes, 0);
	while (savefile_next(&r, &rec))
		if (rec.type == SAVEFILE_CONFIG) {
			char name[32] = "";
			assert_int_equal(tlv_get_str(rec.payload, rec.size, API_TAG_STORE_DISK, name,
						     sizeof(name)), TLV_OK);
			assert_string_equal(name, "moved");
			assert_int_not_equal(tlv_find(rec.payload, rec.size, API_TAG_DISK, &t), TLV_OK);
			assert_int_not_equal(tlv_find(rec.payload, rec.size, API_TAG_DISK_SIZE, &t),
					     TLV_OK);
		}

	/* A new import begun while a disk is being written drops that disk. */
	unsigned disks_now = disk_count;
	for (size_t at = 0; at + 800 < moved_size; at += 800)
		assert_int_equal(import_chunk("again", moved_size, at, got + at, 800), API_E_OK);
	size_t tail = moved_size % 800 ? moved_size % 800 : 800;
	assert_int_equal(import_chunk("again", moved_size, moved_size - tail,
				      got + moved_size - tail, tail), API_E_BUSY);
	assert_int_equal(disk_count, disks_now + 1);
	assert_int_equal(import_first_with("again", API_TAG_STORE_DISK, "again-2", moved_size, got,
					   800), API_E_OK);
	assert_int_equal(disk_count, disks_now);
	assert_false(control_steps_pending());

	/* A second import may not take that disk's name; --disk gives another. */
	assert_int_equal(call_vm(API_REQ_DELETE_VIRTUAL_MACHINE, "moved"), API_E_INVALID_STATE);
	moved->state = VM_STATE_TURNED_OFF;
	assert_int_equal(call_vm(API_REQ_DELETE_VIRTUAL_MACHINE, "moved"), API_E_OK);
	assert_int_equal(import_chunk("moved", moved_size, 0, got, 800), API_E_ALREADY_EXISTS);
	assert_message("name another with --disk");
	assert_int_equal(import_first_with("moved", API_TAG_STORE_DISK, "moved-2", moved_size, got,
					   800), API_E_OK);
	assert_int_equal(import_rest("moved", got, moved_size, 800), API_E_OK);
	assert_string_equal(vm_called("moved")->cfg->store_disk, "moved-2");
	vm_called("moved")->state = VM_STATE_TURNED_OFF;
	assert_int_equal(call_vm(API_REQ_DELETE_VIRTUAL_MACHINE, "moved"), API_E_OK);

	/* Disk records under a configuration that names no disk: refused whole. */
	static uint8_t plain[64 * 1024], odd[256 * 1024];
	size_t plain_size = make_save_file(plain, sizeof(plain), guest->boot->ram_bytes, "lan");
	struct savefile_buffer ob = { odd, sizeof(odd), 0 };
	struct savefile_writer ow;
	static struct lz_workspace ows;
	static uint8_t oscratch[SAVEFILE_SCRATCH_SIZE];
	assert_true(savefile_open(&r, plain, plain_size, &err));
	assert_true(savefile_writer_init(&ow, savefile_buffer_sink, &ob));
	assert_true(savefile_write_header(&ow, &r.walk.header));
	while (savefile_next(&r, &rec))
		assert_true(savefile_copy_record(&ow, &rec));
	lz_workspace_init(&ows);
	assert_true(savefile_write_disk(&ow, 4096));
	assert_true(savefile_write_disk_pages(&ow, disk_bytes + 8192, 1, &ows, oscratch));
	assert_true(savefile_finish(&ow));
	free_before = pages.free_pages;
	assert_int_equal(import_rest("odd", odd, ob.size, 0), API_E_INVALID_ARGUMENT);
	assert_message("carries a disk its configuration does not name");
	assert_no_vm_named("odd");
	assert_int_equal(pages.free_pages, free_before);

	/* Tidy up. */
	disk_count = disks_before;
	store_present = false;
	guest->disk = (struct disk){ 0 };
	guest->saved = (struct vm_saved){ 0 };
	assert_int_equal(call_vm(API_REQ_DISCARD_SAVED_STATE, "guest"), API_E_OK);
}

/*
 * After a host reboot, the store's saved states are their VMs' again: a VM
 * the API had created is created again from its file; a configured VM
 * takes its own only if saved with its configuration's RAM and disk (the
 * guest's RAM holds that disk's caches); a state that cannot be taken
 * stays in the store, costs no memory, keeps its VM from autostarting and
 * its name from an import.
 */
/* vmm/control_internal.h, which cmocka's fail() macro keeps out of this file. */
void control_saved_init(const struct boot_info *bi);

static void test_saved_states_from_the_store(void **state)
{
	static uint8_t revived[64 * 1024], own[64 * 1024], far[64 * 1024];
	struct vm *guest = vm_called("guest");
	uint64_t ram = guest->boot->ram_bytes;
	(void)state;

	assert_int_equal(guest->state, VM_STATE_TURNED_OFF);
	stored[0] = (struct stored_state){ "revived", revived,
					 make_save_file(revived, sizeof(revived), ram, "lan") };
	stored[1] = (struct stored_state){ "guest", own, make_save_file(own, sizeof(own), ram, "lan") };
	stored[2] = (struct stored_state){ "far", far, make_save_file(far, sizeof(far), ram, "wan") };
	stored[3] = (struct stored_state){ "mgmt", own, stored[1].bytes };
	stored_count = 4;
	unsigned persisted_before = persisted, vms_before = vms_used;
	uint64_t free_before = pages.free_pages;

	control_saved_init(&boot_info);
	struct vm *back = vm_called("revived");
	assert_int_equal(back->state, VM_STATE_SAVED);
	assert_true(back->saved.in_store);
	assert_int_equal(back->saved.saved_at, 1767225600);
	assert_memory_equal((const void *)(uintptr_t)back->saved.base, revived, stored[0].bytes);
	assert_int_equal(nic_get(back->id, 0)->mac[5], 0x77);
	assert_int_equal(call_vm(API_REQ_GET_STATE, "revived"), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_SAVED_IN_STORE), 1);
	/* guest's configuration has a disk the file was not saved with. */
	assert_int_equal(guest->state, VM_STATE_TURNED_OFF);
	assert_true(guest->stored_state_refused);
	/* Read from the store, not written back to it. */
	assert_int_equal(persisted, persisted_before);
	/* "far" names a network this host lacks; "mgmt" runs: neither is made or kept. */
	assert_int_equal(vms_used, vms_before + 1);
	/* The name of a state left in the store is not imported over. */
	assert_int_equal(import_chunk("far", stored[2].bytes, 0, far, 10), API_E_ALREADY_EXISTS);
	assert_message("not taken at boot");

	/* Tidy up for the tests after. */
	stored_count = 0;
	back->state = VM_STATE_TURNED_OFF;
	page_alloc_free(&pages, back->saved.base, back->saved.pages);
	back->saved = (struct vm_saved){ 0 };
	assert_int_equal(call_vm(API_REQ_DELETE_VIRTUAL_MACHINE, "revived"), API_E_OK);
	guest->stored_state_refused = false;
	/* Nothing of the refused ones stayed. */
	assert_int_equal(pages.free_pages, free_before);
}

/*
 * CreateVirtualHardDisk answers at once with the disk being made;
 * ListVirtualHardDisks shows how far, and whose it is; a VM's disk is not
 * deleted from under it.
 */
static void test_virtual_hard_disks(void **state)
{
	(void)state;
	begin();
	tlv_put_str(&w, API_TAG_STORE_DISK, "data1");
	tlv_put_u64(&w, API_TAG_DISK_SIZE, 64 * MIB);
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_HARD_DISK), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_DISK_SIZE), 64 * MIB);
	assert_int_equal(answer_uint(API_TAG_DISK_READY_PCT), 0);
	/* One at a time, then: BUSY, with the store's words. */
	begin();
	tlv_put_str(&w, API_TAG_STORE_DISK, "data2");
	tlv_put_u64(&w, API_TAG_DISK_SIZE, MIB);
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_HARD_DISK), API_E_BUSY);
	assert_message("CreateVirtualHardDisk: a disk is being made");
	disk_making = false;
	disks[0].ready_percent = 100;
	disks[0].vm_id = (int)vm_called("guest")->id;
	/* A name the store cannot hold, a size missing or not in sectors, a name twice. */
	begin();
	tlv_put_str(&w, API_TAG_STORE_DISK, "-bad");
	tlv_put_u64(&w, API_TAG_DISK_SIZE, MIB);
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_HARD_DISK), API_E_INVALID_ARGUMENT);
	assert_message("no store name");
	begin();
	tlv_put_str(&w, API_TAG_STORE_DISK, "data2");
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_HARD_DISK), API_E_INVALID_ARGUMENT);
	assert_message("missing disk_size");
	begin();
	tlv_put_str(&w, API_TAG_STORE_DISK, "data2");
	tlv_put_u64(&w, API_TAG_DISK_SIZE, 1000);
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_HARD_DISK), API_E_INVALID_ARGUMENT);
	begin();
	tlv_put_str(&w, API_TAG_STORE_DISK, "data1");
	tlv_put_u64(&w, API_TAG_DISK_SIZE, MIB);
	assert_int_equal(call(API_REQ_CREATE_VIRTUAL_HARD_DISK), API_E_ALREADY_EXISTS);

	begin();
	assert_int_equal(call(API_REQ_LIST_VIRTUAL_HARD_DISKS), API_E_OK);
	struct tlv entry, t;
	assert_int_equal(tlv_find(last()->payload, last()->len, API_TAG_DISK_ENTRY, &entry),
			 TLV_OK);
	assert_int_equal(tlv_find(entry.value, entry.len, API_TAG_DISK_READY_PCT, &t), TLV_OK);
	assert_int_equal(t.value[0], 100);
	assert_int_equal(tlv_find(entry.value, entry.len, API_TAG_VM, &t), TLV_OK);
	assert_memory_equal(t.value, "guest", 5);

	begin();
	tlv_put_str(&w, API_TAG_STORE_DISK, "data1");
	assert_int_equal(call(API_REQ_DELETE_VIRTUAL_HARD_DISK), API_E_INVALID_STATE);
	assert_message("is a VM's");
	disks[0].vm_id = -1;
	assert_int_equal(call(API_REQ_DELETE_VIRTUAL_HARD_DISK), API_E_OK);
	assert_int_equal(call(API_REQ_DELETE_VIRTUAL_HARD_DISK), API_E_NOT_FOUND);
	assert_int_equal(disk_count, 0);
}

/* --- IVMVirtualMachine ------------------------------------------------------- */

static void test_state_changes(void **state)
{
	(void)state;
	assert_int_equal(call_vm(API_REQ_STARTUP, "guest"), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_STATE), VM_STATE_RUNNING);
	assert_int_equal(answer_uint(API_TAG_SEQ), vm_event_seq());
	assert_int_equal(call_vm(API_REQ_STARTUP, "guest"), API_E_INVALID_STATE);
	assert_int_equal(answer_uint(API_TAG_STATE), VM_STATE_RUNNING);
	assert_message("guest is Running");
	assert_int_equal(call_vm(API_REQ_PAUSE, "guest"), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_STATE), VM_STATE_PAUSED);
	assert_int_equal(call_vm(API_REQ_PAUSE, "guest"), API_E_INVALID_STATE);
	assert_int_equal(call_vm(API_REQ_RESUME, "guest"), API_E_OK);
	assert_int_equal(call_vm(API_REQ_RESUME, "guest"), API_E_INVALID_STATE);
	assert_int_equal(call_vm(API_REQ_RESET, "guest"), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_STATE), VM_STATE_RUNNING);
	/* Save leaves it Saved, with the file's size and time in GetState; Startup restores. */
	assert_int_equal(call_vm(API_REQ_SAVE, "guest"), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_STATE), VM_STATE_SAVED);
	assert_int_equal(call_vm(API_REQ_GET_STATE, "guest"), API_E_OK);
	assert_true(answer_has(API_TAG_SAVED_SIZE));
	assert_true(answer_has(API_TAG_SAVED_AT));
	assert_int_equal(call_vm(API_REQ_SAVE, "guest"), API_E_INVALID_STATE);
	assert_int_equal(call_vm(API_REQ_DELETE_VIRTUAL_MACHINE, "guest"), API_E_INVALID_STATE);
	assert_int_equal(call_vm(API_REQ_STARTUP, "guest"), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_STATE), VM_STATE_RUNNING);
	assert_int_equal(call_vm(API_REQ_GET_STATE, "guest"), API_E_OK);
	assert_false(answer_has(API_TAG_SAVED_SIZE));
	/* Discard drops a saved state: TurnedOff, and only from Saved. */
	assert_int_equal(call_vm(API_REQ_DISCARD_SAVED_STATE, "guest"), API_E_INVALID_STATE);
	assert_message("not Saved");
	assert_int_equal(call_vm(API_REQ_SAVE, "guest"), API_E_OK);
	assert_int_equal(call_vm(API_REQ_DISCARD_SAVED_STATE, "guest"), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_STATE), VM_STATE_TURNED_OFF);
	assert_int_equal(call_vm(API_REQ_STARTUP, "guest"), API_E_OK);
	begin();
	tlv_put_str(&w, API_TAG_VM, "guest");
	tlv_put_str(&w, API_TAG_REASON, "maintenance");
	assert_int_equal(call(API_REQ_TURN_OFF), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_STATE), VM_STATE_TURNED_OFF);
	assert_int_equal(call_vm(API_REQ_TURN_OFF, "guest"), API_E_INVALID_STATE);
	assert_int_equal(call_vm(API_REQ_RESET, "guest"), API_E_INVALID_STATE);
	assert_int_equal(call_vm(API_REQ_SAVE, "guest"), API_E_INVALID_STATE);
	control_poll();
	assert_int_equal(call_vm(API_REQ_GET_STATE, "guest"), API_E_OK);
	char reason[API_STR_MAX + 1];
	assert_int_equal(tlv_get_str(last()->payload, last()->len, API_TAG_REASON, reason,
				     sizeof(reason)), TLV_OK);
	assert_string_equal(reason, "maintenance");

	static const uint16_t ops[] = { API_REQ_STARTUP, API_REQ_TURN_OFF, API_REQ_RESET,
					API_REQ_SAVE,    API_REQ_PAUSE,    API_REQ_RESUME };
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		assert_int_equal(call_vm(ops[i], "nobody"), API_E_NOT_FOUND);
		assert_int_equal(call_vm(ops[i], "mgmt"), API_E_PERMISSION_DENIED);
		begin();
		assert_int_equal(call(ops[i]), API_E_INVALID_ARGUMENT);
	}

	startup_fails = true;
	assert_int_equal(call_vm(API_REQ_STARTUP, "guest"), API_E_INTERNAL);
	assert_message("could not start: the image is not bootable");
	startup_fails = false;
}

static void test_get_state(void **state)
{
	(void)state;
	assert_int_equal(call_vm(API_REQ_STARTUP, "guest"), API_E_OK);
	control_poll();
	now_ns += 1500000000;
	assert_int_equal(call_vm(API_REQ_GET_STATE, "guest"), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_STATE), VM_STATE_RUNNING);
	assert_int_equal(answer_uint(API_TAG_VM_UPTIME_MS), 1500);
	assert_int_equal(answer_uint(API_TAG_MEMORY), 4 * MIB);
	assert_int_equal(answer_uint(API_TAG_NIC_COUNT), 1);
	assert_int_equal(answer_uint(API_TAG_CONTROL_DENIED), DENIED_PER_VM);
	assert_int_equal(call_vm(API_REQ_GET_STATE, "nobody"), API_E_NOT_FOUND);
	assert_int_equal(call_vm(API_REQ_TURN_OFF, "guest"), API_E_OK);
	assert_int_equal(call_vm(API_REQ_GET_STATE, "guest"), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_VM_UPTIME_MS), 0);
}

static void test_adapters(void **state)
{
	(void)state;
	assert_int_equal(call_vm(API_REQ_ADD_NETWORK_ADAPTER, "guest"), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_NIC), 1);
	begin();
	tlv_put_str(&w, API_TAG_VM, "guest");
	tlv_put(&w, API_TAG_MAC, "\x02\0\0\0\0\x77", 6);
	assert_int_equal(call(API_REQ_ADD_NETWORK_ADAPTER), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_NIC), 2);
	assert_int_equal(call(API_REQ_ADD_NETWORK_ADAPTER), API_E_ALREADY_EXISTS);
	begin();
	tlv_put_str(&w, API_TAG_VM, "guest");
	tlv_put(&w, API_TAG_MAC, "\x01\0\0\0\0\x77", 6);
	assert_int_equal(call(API_REQ_ADD_NETWORK_ADAPTER), API_E_INVALID_ARGUMENT);
	assert_int_equal(call_vm(API_REQ_ADD_NETWORK_ADAPTER, "guest"), API_E_OK);
	assert_int_equal(call_vm(API_REQ_ADD_NETWORK_ADAPTER, "guest"), API_E_NO_RESOURCES);
	assert_int_equal(call_vm(API_REQ_ADD_NETWORK_ADAPTER, "nobody"), API_E_NOT_FOUND);

	assert_int_equal(call_vm(API_REQ_LIST_NETWORK_ADAPTERS, "guest"), API_E_OK);
	assert_int_equal(answer_entries(API_TAG_NIC_ENTRY), NIC_MAX);
	assert_int_equal(call_vm(API_REQ_LIST_NETWORK_ADAPTERS, "nobody"), API_E_NOT_FOUND);

	assert_int_equal(call_nic(API_REQ_GET_MAC_ADDRESS, "guest", 2), API_E_OK);
	struct tlv t;
	assert_int_equal(tlv_find(last()->payload, last()->len, API_TAG_MAC, &t), TLV_OK);
	assert_memory_equal(t.value, "\x02\0\0\0\0\x77", 6);
	assert_int_equal(call_nic(API_REQ_GET_MAC_ADDRESS, "guest", 7), API_E_NOT_FOUND);
	assert_message("guest has no adapter 7");
	assert_int_equal(call_vm(API_REQ_GET_MAC_ADDRESS, "guest"), API_E_INVALID_ARGUMENT);
	assert_message("missing nic");
	assert_int_equal(call_nic(API_REQ_GET_MAC_ADDRESS, "nobody", 0), API_E_NOT_FOUND);

	for (uint8_t nic = 1; nic < NIC_MAX; nic++)
		assert_int_equal(call_nic(API_REQ_REMOVE_NETWORK_ADAPTER, "guest", nic), API_E_OK);
	assert_int_equal(call_nic(API_REQ_REMOVE_NETWORK_ADAPTER, "guest", 1), API_E_NOT_FOUND);
	assert_int_equal(call_vm(API_REQ_REMOVE_NETWORK_ADAPTER, "guest"),
			 API_E_INVALID_ARGUMENT);
	assert_int_equal(call_vm(API_REQ_STARTUP, "guest"), API_E_OK);
	assert_int_equal(call_vm(API_REQ_ADD_NETWORK_ADAPTER, "guest"), API_E_INVALID_STATE);
	assert_message("not TurnedOff");
	assert_int_equal(call_nic(API_REQ_REMOVE_NETWORK_ADAPTER, "guest", 0),
			 API_E_INVALID_STATE);
	assert_int_equal(answer_uint(API_TAG_STATE), VM_STATE_RUNNING);
	assert_int_equal(call_vm(API_REQ_TURN_OFF, "guest"), API_E_OK);
}

static void test_cabling(void **state)
{
	(void)state;
	assert_int_equal(call_net(API_REQ_GET_ADAPTERS, "lan"), API_E_OK);
	assert_int_equal(answer_entries(API_TAG_NIC_ENTRY), 3); /* guest, web's two */
	assert_int_equal(call_nic(API_REQ_DETACH_FROM_VIRTUAL_NETWORK, "guest", 0), API_E_OK);
	assert_int_equal(call_net(API_REQ_GET_ADAPTERS, "lan"), API_E_OK);
	assert_int_equal(answer_entries(API_TAG_NIC_ENTRY), 2);
	assert_int_equal(call_nic(API_REQ_DETACH_FROM_VIRTUAL_NETWORK, "guest", 3),
			 API_E_NOT_FOUND);
	begin();
	tlv_put_str(&w, API_TAG_VM, "guest");
	tlv_put_u8(&w, API_TAG_NIC, 0);
	tlv_put_str(&w, API_TAG_NET, "wan");
	assert_int_equal(call(API_REQ_ATTACH_TO_VIRTUAL_NETWORK), API_E_NOT_FOUND);
	assert_message("no network named 'wan'");
	assert_int_equal(call_nic(API_REQ_ATTACH_TO_VIRTUAL_NETWORK, "guest", 0),
			 API_E_INVALID_ARGUMENT);
	assert_message("missing net");
	begin();
	tlv_put_str(&w, API_TAG_VM, "guest");
	tlv_put_u8(&w, API_TAG_NIC, 0);
	tlv_put_str(&w, API_TAG_NET, "lan");
	assert_int_equal(call(API_REQ_ATTACH_TO_VIRTUAL_NETWORK), API_E_OK);
	assert_int_equal(call_vm(API_REQ_LIST_NETWORK_ADAPTERS, "guest"), API_E_OK);
	assert_true(answer_has(API_TAG_NIC_ENTRY));
	assert_int_equal(call_net(API_REQ_GET_ADAPTERS, "wan"), API_E_NOT_FOUND);

	assert_int_equal(call_net(API_REQ_GET_STATISTICS, "lan"), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_NIC_COUNT), 3);
	assert_int_equal(answer_uint(API_TAG_RX_FRAMES), 0);
	assert_int_equal(answer_uint(API_TAG_DROPS), 0);
	assert_int_equal(call_net(API_REQ_GET_STATISTICS, "wan"), API_E_NOT_FOUND);
}

static void test_dhcp(void **state)
{
	static const uint8_t range[8] = { 10, 0, 0, 100, 10, 0, 0, 200 };
	static const uint8_t netmask[4] = { 255, 255, 255, 0 }, gateway[4] = { 10, 0, 0, 1 };
	static const uint8_t dns3[12] = { 1, 1, 1, 1, 8, 8, 8, 8, 9, 9, 9, 9 };
	static const uint8_t outside[8] = { 10, 0, 1, 100, 10, 0, 1, 200 };

	(void)state;
	assert_int_equal(call_net(API_REQ_GET_DHCP_SETTINGS, "lan"), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_DHCP_ENABLED), 1);
	assert_int_equal(call_net(API_REQ_GET_DHCP_SETTINGS, "wan"), API_E_NOT_FOUND);

	begin();
	tlv_put_str(&w, API_TAG_NET, "lan");
	tlv_put_u8(&w, API_TAG_DHCP_ENABLED, 1);
	tlv_put(&w, API_TAG_DHCP_RANGE, range, 8);
	tlv_put(&w, API_TAG_NETMASK, netmask, 4);
	tlv_put(&w, API_TAG_GATEWAY, gateway, 4);
	tlv_put(&w, API_TAG_DNS, dns3, 8);
	tlv_put_u32(&w, API_TAG_LEASE_TIME_S, 600);
	assert_int_equal(call(API_REQ_SET_DHCP_SETTINGS), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_LEASE_TIME_S), 600);
	struct tlv t;
	assert_int_equal(tlv_find(last()->payload, last()->len, API_TAG_DHCP_RANGE, &t), TLV_OK);
	assert_memory_equal(t.value, range, 8);
	assert_int_equal(tlv_find(last()->payload, last()->len, API_TAG_DNS, &t), TLV_OK);
	assert_int_equal(t.len, 8);
	/* The server takes the subnet's first free host: .1 is the gateway, so .254. */
	assert_int_equal(network_get((unsigned)network_find("lan"))->dhcp.cfg.server_ip,
			 0x0a0000fe);

	begin();
	tlv_put_str(&w, API_TAG_NET, "lan");
	tlv_put(&w, API_TAG_DNS, dns3, 12);
	assert_int_equal(call(API_REQ_SET_DHCP_SETTINGS), API_E_INVALID_ARGUMENT);
	assert_message("at most 2 DNS");
	begin();
	tlv_put_str(&w, API_TAG_NET, "lan");
	tlv_put(&w, API_TAG_DHCP_RANGE, outside, 8);
	assert_int_equal(call(API_REQ_SET_DHCP_SETTINGS), API_E_INVALID_ARGUMENT);
	assert_message("SetDhcpSettings: ");
	assert_int_equal(call_net(API_REQ_SET_DHCP_SETTINGS, "wan"), API_E_NOT_FOUND);

	assert_int_equal(call_net(API_REQ_GET_LEASES, "lan"), API_E_OK);
	assert_int_equal(answer_entries(API_TAG_LEASE_ENTRY), 0);
	assert_int_equal(call_net(API_REQ_GET_LEASES, "wan"), API_E_NOT_FOUND);
}

static void test_console_read(void **state)
{
	struct vm *guest = vm_called("guest");
	uint8_t data[CONSOLE_RING_SIZE];

	(void)state;
	memset(data, 'x', sizeof(data));
	console_ring_write(&guest->console, (const uint8_t *)"hello", 5);
	assert_int_equal(call_vm(API_REQ_CONSOLE_READ, "guest"), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_OFFSET), 0);
	assert_int_equal(answer_uint(API_TAG_NEXT_OFFSET), 5);
	assert_int_equal(answer_uint(API_TAG_LOST), 0);
	begin();
	tlv_put_str(&w, API_TAG_VM, "guest");
	tlv_put_u64(&w, API_TAG_OFFSET, 2);
	tlv_put_u32(&w, API_TAG_MAX_BYTES, 2);
	assert_int_equal(call(API_REQ_CONSOLE_READ), API_E_OK);
	struct tlv t;
	assert_int_equal(tlv_find(last()->payload, last()->len, API_TAG_DATA, &t), TLV_OK);
	assert_int_equal(t.len, 2);
	assert_memory_equal(t.value, "ll", 2);
	/* Past the end: nothing, from the end. */
	begin();
	tlv_put_str(&w, API_TAG_VM, "guest");
	tlv_put_u64(&w, API_TAG_OFFSET, 99);
	assert_int_equal(call(API_REQ_CONSOLE_READ), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_OFFSET), 5);
	/* Overwritten history is reported lost; the answer fits in a frame. */
	console_ring_write(&guest->console, data, sizeof(data));
	begin();
	tlv_put_str(&w, API_TAG_VM, "guest");
	tlv_put_u64(&w, API_TAG_OFFSET, 0);
	assert_int_equal(call(API_REQ_CONSOLE_READ), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_LOST), 5);
	assert_int_equal(call_vm(API_REQ_CONSOLE_READ, "nobody"), API_E_NOT_FOUND);
}

static uint16_t console_write(const char *vm, const void *data, size_t len)
{
	begin();
	tlv_put_str(&w, API_TAG_VM, vm);
	tlv_put(&w, API_TAG_DATA, data, len);
	return call(API_REQ_CONSOLE_WRITE);
}

static void test_console_write(void **state)
{
	uint8_t big[257];

	(void)state;
	memset(big, 'k', sizeof(big));
	assert_int_equal(console_write("guest", "ls\r", 3), API_E_INVALID_STATE);
	assert_int_equal(answer_uint(API_TAG_STATE), VM_STATE_TURNED_OFF);
	assert_int_equal(call_vm(API_REQ_STARTUP, "guest"), API_E_OK);
	/* The scheduler follows the events between two requests. */
	control_poll();
	uart_got_len = 0;
	assert_int_equal(console_write("guest", "ls\r", 3), API_E_OK);
	control_poll();
	assert_int_equal(uart_got_len, 3);
	assert_memory_equal(uart_got, "ls\r", 3);
	assert_int_equal(console_write("guest", big, 0), API_E_INVALID_ARGUMENT);
	assert_message("1..256 bytes");
	assert_int_equal(console_write("guest", big, 257), API_E_INVALID_ARGUMENT);
	assert_int_equal(call_vm(API_REQ_CONSOLE_WRITE, "guest"), API_E_INVALID_ARGUMENT);
	assert_int_equal(console_write("nobody", "x", 1), API_E_NOT_FOUND);
}

/* Fills the guest's input queue (512 bytes) while its UART takes nothing. */
static void fill_console_input(void)
{
	uint8_t chunk[256];

	memset(chunk, 'f', sizeof(chunk));
	uart_room = 0;
	assert_int_equal(console_write("guest", chunk, 256), API_E_OK);
	assert_int_equal(console_write("guest", chunk, 256), API_E_OK);
}

static uint32_t submit_console_write(const char *data)
{
	begin();
	tlv_put_str(&w, API_TAG_VM, "guest");
	tlv_put(&w, API_TAG_DATA, data, strlen(data));
	return submit(CONTROL_PRIV_OPERATE, API_REQ_CONSOLE_WRITE);
}

static void test_pending_console_write_answers_when_room_comes(void **state)
{
	(void)state;
	fill_console_input();
	unsigned before = answer_count;
	uint32_t id = submit_console_write("later");
	assert_int_equal(answer_count, before);
	control_poll();
	assert_int_equal(answer_count, before);
	/* The guest reads: the queue drains, then the waiting write goes in. */
	uart_room = SIZE_MAX;
	uart_got_len = 0;
	now_ns += 50000000;
	control_poll();
	assert_int_equal(answer_count, before + 1);
	assert_int_equal(last()->id, id);
	assert_int_equal(last()->error, API_E_OK);
	control_poll();
	assert_int_equal(uart_got_len, 512 + 5);
	assert_memory_equal(uart_got + 512, "later", 5);
}

/*
 * Save is answered Saving at once while its RAM is written in steps
 * (vm_save_poll): the events say how it ends.
 */
static void test_save_answers_saving_at_once(void **state)
{
	struct vm *guest = vm_called("guest");
	(void)state;

	if (guest->state == VM_STATE_TURNED_OFF)
		assert_int_equal(call_vm(API_REQ_STARTUP, "guest"), API_E_OK);
	save_in_steps = true;
	assert_int_equal(call_vm(API_REQ_SAVE, "guest"), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_STATE), VM_STATE_SAVING);
	assert_int_equal(answer_uint(API_TAG_SEQ), vm_event_seq());
	/* A second Save, or any other operation, is refused (INVALID_STATE) until it ends. */
	assert_int_equal(call_vm(API_REQ_SAVE, "guest"), API_E_INVALID_STATE);
	assert_int_equal(call_vm(API_REQ_TURN_OFF, "guest"), API_E_INVALID_STATE);
	save_in_steps = false;
	guest->state = VM_STATE_SAVED;
	assert_int_equal(call_vm(API_REQ_DISCARD_SAVED_STATE, "guest"), API_E_OK);
}

static void test_pending_console_write_gives_up_with_busy(void **state)
{
	(void)state;
	fill_console_input();
	unsigned before = answer_count;
	uint32_t id = submit_console_write("x");
	now_ns += 249000000;
	control_poll();
	assert_int_equal(answer_count, before);
	now_ns += 1000000;
	control_poll();
	assert_int_equal(answer_count, before + 1);
	assert_int_equal(last()->id, id);
	assert_int_equal(last()->error, API_E_BUSY);
	assert_int_equal(answer_uint(API_TAG_RETRY_AFTER_MS), 100);
	assert_message("has not read its earlier input");
}

static void test_pending_console_write_sees_the_vm_turn_off(void **state)
{
	(void)state;
	unsigned before = answer_count;
	uint32_t id = submit_console_write("x");
	assert_int_equal(answer_count, before);
	push_event(vm_called("guest"), VM_STATE_TURNED_OFF, "guest powered off");
	control_poll();
	assert_int_equal(answer_count, before + 1);
	assert_int_equal(last()->id, id);
	assert_int_equal(last()->error, API_E_INVALID_STATE);
	/* Its input was for the run that ended. */
	uart_room = SIZE_MAX;
	uart_got_len = 0;
	assert_int_equal(call_vm(API_REQ_STARTUP, "guest"), API_E_OK);
	control_poll();
	assert_int_equal(uart_got_len, 0);
}

static void test_no_wait_for_a_paused_guest_or_without_a_slot(void **state)
{
	(void)state;
	fill_console_input();
	assert_int_equal(call_vm(API_REQ_PAUSE, "guest"), API_E_OK);
	assert_int_equal(console_write("guest", "x", 1), API_E_BUSY);
	assert_int_equal(call_vm(API_REQ_RESUME, "guest"), API_E_OK);

	unsigned before = answer_count;
	uint32_t first = submit_console_write("1");
	for (unsigned i = 1; i < 4; i++)
		submit_console_write("n");
	assert_int_equal(answer_count, before);
	/* Every slot is taken: the fifth is answered at once, as before waiting existed. */
	assert_int_equal(console_write("guest", "5", 1), API_E_BUSY);
	now_ns += 300000000;
	control_poll();
	assert_int_equal(answer_count, before + 5);
	assert_int_equal(answers[(before + 1) % 16].id, first);
	for (unsigned i = 1; i < 5; i++)
		assert_int_equal(answers[(before + i) % 16].error, API_E_BUSY);
	uart_room = SIZE_MAX;
	control_poll();
}

static void test_guest_os_requests(void **state)
{
	static const uint16_t guest_os[] = {
		API_REQ_GET_HEARTBEAT,  API_REQ_SHUTDOWN,        API_REQ_GET_OS_NAME,
		API_REQ_GET_ADDITIONS_VERSION, API_REQ_EXECUTE_COMMAND,
		API_REQ_SET_PARAMETER,
	};

	(void)state;
	for (size_t i = 0; i < sizeof(guest_os) / sizeof(guest_os[0]); i++) {
		assert_int_equal(call_vm(guest_os[i], "guest"), API_E_NOT_SUPPORTED);
		assert_message(api_request_name(guest_os[i]));
		assert_int_equal(call_vm(guest_os[i], "nobody"), API_E_NOT_FOUND);
	}
	/* IsHostTimeSyncEnabled is the VM's setting, kept here; the clock is the agent's business. */
	assert_int_equal(call_vm(API_REQ_SYNC_TIME, "guest"), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_TIME_SYNC), 1);
	begin();
	tlv_put_str(&w, API_TAG_VM, "guest");
	tlv_put_u8(&w, API_TAG_TIME_SYNC, 0);
	assert_int_equal(call(API_REQ_SYNC_TIME), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_TIME_SYNC), 0);
	assert_int_equal(call_vm(API_REQ_SYNC_TIME, "guest"), API_E_OK);
	assert_int_equal(answer_uint(API_TAG_TIME_SYNC), 0);
	assert_int_equal(call_vm(API_REQ_SYNC_TIME, "nobody"), API_E_NOT_FOUND);
}

static void test_install_additions(void **state)
{
	(void)state;
	additions_drive = false;
	assert_int_equal(call_vm(API_REQ_INSTALL_ADDITIONS, "guest"), API_E_NOT_FOUND);
	assert_message("no additions drive");
	additions_drive = true;
	assert_int_equal(call_vm(API_REQ_INSTALL_ADDITIONS, "guest"), API_E_OK);
	assert_int_equal(additions_inserted, 1);
	assert_int_equal(call_vm(API_REQ_INSTALL_ADDITIONS, "nobody"), API_E_NOT_FOUND);
}

/* --- the hypercall table ----------------------------------------------------- */

static long hypercall(struct vm *vm, unsigned cpl, uint64_t nr, uint64_t rbx, uint64_t rcx)
{
	struct vcpu *v = &vm->vcpu;

	v->vm = vm;
	v->regs.rax = nr;
	v->regs.rbx = rbx;
	v->regs.rcx = rcx;
	v->regs.rdx = 0;
	vcpu_hypercall(v, cpl);
	return (long)v->regs.rax;
}

static void test_hypercalls_of_every_guest(void **state)
{
	struct vm *guest = vm_called("guest");

	(void)state;
	assert_int_equal(hypercall(guest, 0, HC_VERSION, 0, 0), HYPERCALL_ABI_VERSION);
	assert_int_equal(hypercall(guest, 3, HC_VERSION, 0, 0), HC_EPERM);
	assert_int_equal(hypercall(guest, 0, HC_COUNT, 0, 0), HC_ENOSYS);
	assert_int_equal(hypercall(guest, 0, ~0ULL, 0, 0), HC_ENOSYS);

	memcpy(guest_ram + 16, "hi", 2);
	assert_int_equal(hypercall(guest, 0, HC_CONSOLE_WRITE, 16, 2), 2);
	assert_memory_equal(printed, "hi", 2);
	assert_int_equal(hypercall(guest, 0, HC_CONSOLE_WRITE, 16, 257), HC_EINVAL);
	assert_int_equal(hypercall(guest, 0, HC_CONSOLE_WRITE, sizeof(guest_ram) - 1, 2),
			 HC_EFAULT);

	assert_int_equal(hypercall(guest, 0, HC_SET_TIMER, 5000000000ULL, 0), HC_EINVAL);
	assert_int_equal(hypercall(guest, 0, HC_SET_UPCALL_VECTOR, 31, 0), HC_EINVAL);
	assert_int_equal(hypercall(guest, 0, HC_SET_UPCALL_VECTOR, 256, 0), HC_EINVAL);
	assert_int_equal(hypercall(guest, 0, HC_SET_UPCALL_VECTOR, 0x40, 0), 0);
	assert_int_equal(guest->vcpu.upcall_vector, 0x40);
	assert_int_equal(hypercall(guest, 0, HC_SET_TIMER, ~0ULL >> 1, 0), 0);
	assert_int_not_equal(guest->vcpu.timer_deadline, 0);
	assert_int_equal(hypercall(guest, 0, HC_SET_UPCALL_VECTOR, 0, 0), 0);
	assert_int_equal(guest->vcpu.timer_deadline, 0);
}

static void test_management_hypercalls(void **state)
{
	static const uint64_t management_only[] = { HC_CONTROL, HC_LINE_WRITE, HC_LINE_READ,
						    HC_EVENTS, HC_MGMT_INFO };
	struct vm *guest = vm_called("guest"), *mgmt = vm_called("mgmt");

	(void)state;
	for (size_t i = 0; i < sizeof(management_only) / sizeof(management_only[0]); i++) {
		unsigned refusals = mgmt_refusals;
		mgmt_call_seen = 0;
		assert_int_equal(hypercall(guest, 0, management_only[i], 0x1000 + i, 0), HC_EPERM);
		assert_int_equal(mgmt_refusals, refusals + 1);
		assert_int_equal(mgmt_call_seen, 0);
		assert_int_equal(hypercall(mgmt, 3, management_only[i], 0x1000 + i, 0), HC_EPERM);
		assert_int_equal(mgmt_refusals, refusals + 1);
		assert_int_equal(hypercall(mgmt, 0, management_only[i], 0x1000 + i, 0), 0);
		assert_int_equal(mgmt_call_seen, 0x1000 + i);
	}
	/* The management VM has every guest's calls too. */
	assert_int_equal(hypercall(mgmt, 0, HC_VERSION, 0, 0), HYPERCALL_ABI_VERSION);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_request_type_has_a_privilege),
		cmocka_unit_test(test_a_caller_below_the_privilege_is_refused),
		cmocka_unit_test(test_unknown_and_malformed_requests),
		cmocka_unit_test(test_hello_goodbye_host_info),
		cmocka_unit_test(test_subscribe),
		cmocka_unit_test(test_create_vm),
		cmocka_unit_test(test_create_vm_refusals),
		cmocka_unit_test(test_delete_list_find_vm),
		cmocka_unit_test(test_networks),
		cmocka_unit_test(test_state_changes),
		cmocka_unit_test(test_export_and_import),
		cmocka_unit_test(test_export_and_import_with_disk),
		cmocka_unit_test(test_saved_states_from_the_store),
		cmocka_unit_test(test_virtual_hard_disks),
		cmocka_unit_test(test_get_state),
		cmocka_unit_test(test_adapters),
		cmocka_unit_test(test_cabling),
		cmocka_unit_test(test_dhcp),
		cmocka_unit_test(test_console_read),
		cmocka_unit_test(test_console_write),
		cmocka_unit_test(test_pending_console_write_answers_when_room_comes),
		cmocka_unit_test(test_pending_console_write_gives_up_with_busy),
		cmocka_unit_test(test_pending_console_write_sees_the_vm_turn_off),
		cmocka_unit_test(test_no_wait_for_a_paused_guest_or_without_a_slot),
		cmocka_unit_test(test_guest_os_requests),
		cmocka_unit_test(test_install_additions),
		cmocka_unit_test(test_hypercalls_of_every_guest),
		cmocka_unit_test(test_management_hypercalls),
		cmocka_unit_test(test_save_answers_saving_at_once),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
