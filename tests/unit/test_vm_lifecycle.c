/*
 * The VM lifecycle engine (vmm/vm.c) on the host, with the vendor backend
 * and the guest loader replaced by fakes: every control operation must
 * emit exactly the state table's event sequence, refuse invalid ones
 * without a trace, and end a VM that cannot start with a reason; deleting
 * a VM gives back every page its life took and frees its slot.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/le.h"
#include "tests/unit/savefile_reseal.h"
#include "vmm/guest_boot.h"
#include "vmm/lazy_restore.h"
#include "vmm/network.h"
#include "vmm/page_alloc.h"
#include "vmm/sched.h"
#include "vmm/virt.h"
#include "vmm/vm.h"
#include "x86/cpu.h"

/* --- fakes ------------------------------------------------------------ */
static int boot_prepare_result;
static unsigned vcpu_resets;

void log_printf(enum log_level level, const char *format, ...)
{
	(void)level;
	(void)format;
}

/* The management VM is not part of these tests: a guest's agent port has nobody to tell. */
void mgmt_agent_notify(void *ctx)
{
	(void)ctx;
}

/* The fakes keep the address of the pages they took in the vendor pointer. */
#define FAKE_EPT_PAGES 3
#define FAKE_VCPU_PAGES 2
static const struct vcpu *forgotten_vcpu;

static int take_pages(struct page_alloc *pa, uint64_t n, void **vendor)
{
	uint64_t base;

	if (page_alloc_alloc(pa, n, 1, &base))
		return -1;
	*vendor = (void *)(uintptr_t)base;
	return 0;
}

static void give_pages_back(struct page_alloc *pa, uint64_t n, void **vendor)
{
	page_alloc_free(pa, (uint64_t)(uintptr_t)*vendor, n);
	*vendor = NULL;
}

int virt_vm_init(struct vm *vm, struct page_alloc *pa)
{
	return take_pages(pa, FAKE_EPT_PAGES, &vm->vendor);
}

void virt_vm_destroy(struct vm *vm, struct page_alloc *pa)
{
	give_pages_back(pa, FAKE_EPT_PAGES, &vm->vendor);
}

int virt_vcpu_init(struct vcpu *vcpu, struct page_alloc *pa)
{
	return take_pages(pa, FAKE_VCPU_PAGES, &vcpu->vendor);
}

void virt_vcpu_destroy(struct vcpu *vcpu, struct page_alloc *pa)
{
	give_pages_back(pa, FAKE_VCPU_PAGES, &vcpu->vendor);
}

void sched_forget_vcpu(const struct vcpu *vcpu)
{
	forgotten_vcpu = vcpu;
}

/* The store (vmm/storage/store_host.c): one disk object "sd1", 8 sectors, in memory. */
static uint8_t store_sd1[8 * 512];
static int store_sd1_vm = -1;

static bool sd1_read(void *ctx, uint64_t offset, void *buf, uint64_t len)
{
	(void)ctx;
	memcpy(buf, store_sd1 + offset, len);
	return true;
}

static bool sd1_write(void *ctx, uint64_t offset, const void *buf, uint64_t len)
{
	(void)ctx;
	memcpy(store_sd1 + offset, buf, len);
	return true;
}

static bool sd1_flush(void *ctx)
{
	(void)ctx;
	return true;
}

static const struct disk_medium sd1_medium = { NULL, sd1_read, sd1_write, sd1_flush };

int store_host_attach(const char *name, unsigned vm_id, const struct disk_medium **medium,
		      uint64_t *bytes, char *why, size_t why_size)
{
	if (strcmp(name, "sd1") || store_sd1_vm >= 0) {
		snprintf(why, why_size, "the store holds no free disk '%s'", name);
		return -1;
	}
	store_sd1_vm = (int)vm_id;
	*medium = &sd1_medium;
	*bytes = sizeof(store_sd1) + 100;       /* a partial last sector, never seen */
	return 0;
}

void store_host_detach(unsigned vm_id)
{
	if (store_sd1_vm == (int)vm_id)
		store_sd1_vm = -1;
}

/* Saved states in the store: the last one kept, and whether it was dropped since. */
static struct {
	char vm[32];
	uint8_t file[64 * 1024];
	uint64_t bytes;
	bool kept;
} store_saved;

int store_host_keep_saved(const char *vm_name, const void *file, uint64_t bytes,
			  uint64_t saved_at, char *why, size_t why_size)
{
	(void)saved_at;
	if (bytes > sizeof(store_saved.file)) {
		snprintf(why, why_size, "'%s' does not fit", vm_name);
		return -1;
	}
	snprintf(store_saved.vm, sizeof(store_saved.vm), "%s", vm_name);
	memcpy(store_saved.file, file, bytes);
	store_saved.bytes = bytes;
	store_saved.kept = true;
	return 0;
}

/* drop_fails: the store cannot commit (its state stays, and would come back). */
static bool drop_fails;

int store_host_drop_saved(const char *vm_name, char *why, size_t why_size)
{
	if (!store_saved.kept || strcmp(vm_name, store_saved.vm))
		return 0;
	if (drop_fails) {
		snprintf(why, why_size, "its saved state in the store cannot be dropped");
		return -1;
	}
	store_saved.kept = false;
	return 0;
}

size_t virt_vm_state_bytes(void)
{
	return 64;
}

/* The fake hardware: the state last loaded, what get returns. */
static struct vcpu_state loaded_state;
static unsigned vcpu_state_loads;

int virt_vcpu_set_state(struct vcpu *vcpu, const struct vcpu_state *state,
			struct devstate_error *err)
{
	(void)err;
	loaded_state = *state;
	vcpu->halted = state->activity == VCPU_ACTIVITY_HLT;
	vcpu_state_loads++;
	return 0;
}

/* The TSC offset the hardware would add to the host TSC for the guest's RDTSC. */
static uint64_t hardware_tsc_offset;

/* A host without XSAVE: the saved CPU features are the policy's alone. */
const struct xstate_layout *xstate_host_layout(void)
{
	static const struct xstate_layout none;
	return &none;
}

void virt_set_tsc_offset(struct vcpu *vcpu, uint64_t offset)
{
	(void)vcpu;
	hardware_tsc_offset = offset;
}

void virt_vcpu_get_state(struct vcpu *vcpu, struct vcpu_state *state)
{
	(void)vcpu;
	*state = loaded_state;
}

int virt_vcpu_reset(struct vcpu *vcpu, const struct vcpu_state *state,
		    struct devstate_error *err)
{
	vcpu_resets++;
	return virt_vcpu_set_state(vcpu, state, err);
}

/* Nested paging's view of a VM's 1 MiB of RAM after a restore: the pages the guest reaches. */
#define GUEST_PAGES 256
static bool ram_hidden, hide_fails;
static bool page_shown[GUEST_PAGES];

int virt_ram_hide(struct vm *vm)
{
	(void)vm;
	if (hide_fails)
		return -1;
	ram_hidden = true;
	memset(page_shown, 0, sizeof(page_shown));
	return 0;
}

void virt_ram_show(struct vm *vm, uint64_t gpa, uint64_t bytes)
{
	(void)vm;
	assert_true(ram_hidden);
	assert_true(gpa % PAGE_SIZE == 0 && bytes % PAGE_SIZE == 0);
	for (uint64_t page = gpa / PAGE_SIZE; page < (gpa + bytes) / PAGE_SIZE; page++) {
		assert_false(page_shown[page]); /* a window is loaded once */
		page_shown[page] = true;
	}
}

void virt_ram_show_all(struct vm *vm)
{
	(void)vm;
	ram_hidden = false;
}

/* boot = real's register state, the shape of every boot mode's. */
int guest_boot_prepare(struct vm *vm, struct vcpu_boot_state *state, char *why, size_t n)
{
	(void)vm;
	*state = (struct vcpu_boot_state){ .rip = 0xfff0, .rflags = 2, .gdt_limit = 0xffff,
					   .idt_limit = 0xffff };
	for (unsigned i = SEG_ES; i <= SEG_GS; i++)
		state->seg[i] = (struct segment_state){ .limit = 0xffff, .attributes = 0x93 };
	state->seg[SEG_CS].attributes = 0x9b;
	state->seg[SEG_TR] = (struct segment_state){ .limit = 0xffff, .attributes = 0x8b };
	if (boot_prepare_result)
		strncpy(why, "the image does not fit", n);
	return boot_prepare_result;
}

/* --- helpers -------------------------------------------------------------- */
static struct config cfg;
static struct boot_info bi;
static struct page_alloc pages;
/* Room for VM_MAX VMs, two 64-KiB disk chunks and a 2-MiB-aligned MiB of guest RAM. */
#define ARENA_PAGES 1024
static uint64_t arena_free_at_start;
static uint64_t seen; /* last event sequence number read */

static void setup_two_vms(bool autostart)
{
	memset(&cfg, 0, sizeof(cfg));
	memset(&bi, 0, sizeof(bi));
	cfg.vm_count = 2;
	for (unsigned i = 0; i < 2; i++) {
		strcpy(cfg.vms[i].name, i ? "b" : "a");
		cfg.vms[i].memory_bytes = 1 << 20;
		cfg.vms[i].autostart = autostart;
		/* The guest agent's port, the additions drive and a watchdog: their state is saved too. */
		cfg.vms[i].guest_agent = true;
		cfg.vms[i].watchdog = CFG_WATCHDOG_I6300ESB;
		bi.vms[i].ram_bytes = 1 << 20;
		/* Reserved RAM as the firmware would have left it: Save reads it, Restore writes it. */
		bi.vms[i].ram_base = (uint64_t)(uintptr_t)aligned_alloc(PAGE_SIZE, 1 << 20);
		assert_true(bi.vms[i].ram_base != 0);
	}
	/* Host memory: an aligned heap block stands in for physical pages. */
	void *arena = aligned_alloc(PAGE_SIZE, ARENA_PAGES * PAGE_SIZE);
	assert_non_null(arena);
	page_alloc_init(&pages);
	assert_int_equal(page_alloc_add(&pages, (uint64_t)(uintptr_t)arena, ARENA_PAGES), 0);
	arena_free_at_start = pages.free_pages;
	bi.config = &cfg;
	bi.host_pages = &pages;
	static uint8_t additions[4096];
	platform_init_additions(additions, sizeof(additions));
	vm_create_all(&bi);
	vm_start_autostart();
}

/* The next n events must be want[0..n) of vm_id. */
static void expect_events(unsigned vm_id, const enum vm_state *want, unsigned n,
			  const char *last_reason)
{
	struct vm_event got[VM_EVENT_RING];
	unsigned count = vm_events_since(seen, got, n);

	assert_int_equal(count, n);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(got[i].vm_id, vm_id);
		assert_int_equal(got[i].state, want[i]);
		assert_int_equal(got[i].seq, seen + i + 1);
	}
	if (n && last_reason)
		assert_string_equal(got[n - 1].reason, last_reason);
	seen += count;
}

static void expect_no_events(void)
{
	struct vm_event got[1];
	assert_int_equal(vm_events_since(seen, got, 1), 0);
}

/* The VM registry is static; each test continues from the previous one. */
static struct vm *vm_a(void)
{
	return vm_by_index(vm_count() - 2);
}

static void test_create_and_autostart(void **state)
{
	(void)state;
	setup_two_vms(true);
	expect_events(0, (enum vm_state[]){ VM_STATE_TURNING_ON, VM_STATE_RUNNING }, 2, "");
	expect_events(1, (enum vm_state[]){ VM_STATE_TURNING_ON, VM_STATE_RUNNING }, 2, "");
	expect_no_events();
	assert_int_equal(vm_a()->state, VM_STATE_RUNNING);
	assert_int_equal(vcpu_resets, 2);
}

static void test_pause_resume(void **state)
{
	struct vm *vm = vm_a();
	(void)state;

	assert_int_equal(vm_control(vm, VM_OP_PAUSE, NULL), 0);
	expect_events(vm->id, (enum vm_state[]){ VM_STATE_PAUSED }, 1, "");
	/* Guest time and the guest TSC stand still while Paused ... */
	struct vm_time paused = vm_now(vm);
	for (uint64_t until = rdtsc() + 1000000; rdtsc() < until;)
		;
	struct vm_time still = vm_now(vm);
	assert_int_equal(still.ns, paused.ns);
	assert_int_equal(still.tsc, paused.tsc);
	assert_int_equal(vm_control(vm, VM_OP_PAUSE, NULL), -1);
	assert_int_equal(vm_control(vm, VM_OP_STARTUP, NULL), -1);
	expect_no_events();
	uint64_t host_before = rdtsc();
	assert_int_equal(vm_control(vm, VM_OP_RESUME, NULL), 0);
	struct vm_time resumed = vm_now(vm);
	uint64_t host_after = rdtsc();
	expect_events(vm->id, (enum vm_state[]){ VM_STATE_RUNNING }, 1, "");
	/* ... and go on from there: no jump by the paused time, in the hardware's offset too. */
	assert_true(resumed.tsc >= paused.tsc && resumed.tsc - paused.tsc <= host_after - host_before);
	assert_true(resumed.ns >= paused.ns);
	assert_int_equal(hardware_tsc_offset, vm_clock_tsc_offset(&vm->clock));
	assert_true(0 - hardware_tsc_offset >= 1000000);
	assert_int_equal(vm_control(vm, VM_OP_RESUME, NULL), -1);
	expect_no_events();
}

/* Pause parks the vCPU's state as a record; Resume loads exactly that state back. */
static void test_resume_loads_the_parked_state(void **state)
{
	struct vm *vm = vm_a();
	(void)state;

	loaded_state.gpr[0] = 0x1234;
	loaded_state.fpu.xmm[31] = 0xfeedface;
	loaded_state.activity = VCPU_ACTIVITY_HLT;
	struct vcpu_state running = loaded_state;
	assert_int_equal(vm_control(vm, VM_OP_PAUSE, NULL), 0);
	expect_events(vm->id, (enum vm_state[]){ VM_STATE_PAUSED }, 1, "");
	loaded_state = (struct vcpu_state){ 0 };
	unsigned loads = vcpu_state_loads;
	assert_int_equal(vm_control(vm, VM_OP_RESUME, NULL), 0);
	expect_events(vm->id, (enum vm_state[]){ VM_STATE_RUNNING }, 1, "");
	assert_int_equal(vcpu_state_loads, loads + 1);
	assert_memory_equal(&loaded_state, &running, sizeof(running));
	assert_true(vm->vcpu.halted);
}

/* A parked state that does not load refuses Resume: the VM stays Paused, its vCPU as it was. */
static void test_resume_refuses_a_bad_parked_state(void **state)
{
	struct vm *vm = vm_a();
	(void)state;

	assert_int_equal(vm_control(vm, VM_OP_PAUSE, NULL), 0);
	expect_events(vm->id, (enum vm_state[]){ VM_STATE_PAUSED }, 1, "");
	unsigned loads = vcpu_state_loads;
	vm->parked_vcpu_len--;
	assert_int_equal(vm_control(vm, VM_OP_RESUME, NULL), -1);
	expect_no_events();
	assert_int_equal(vm->state, VM_STATE_PAUSED);
	assert_int_equal(vcpu_state_loads, loads);
	vm->parked_vcpu_len++;
	assert_int_equal(vm_control(vm, VM_OP_RESUME, NULL), 0);
	expect_events(vm->id, (enum vm_state[]){ VM_STATE_RUNNING }, 1, "");
}

static void test_reset_reloads_the_vcpu(void **state)
{
	struct vm *vm = vm_a();
	unsigned before = vcpu_resets;
	(void)state;

	vm->vcpu.halted = true;
	vm->vcpu.sched.vruntime = 123456789; /* it had run: a restart is a newcomer again */
	assert_int_equal(vm_control(vm, VM_OP_RESET, "operator"), 0);
	expect_events(vm->id,
		      (enum vm_state[]){ VM_STATE_TURNING_OFF, VM_STATE_DELETE_MACHINE,
					 VM_STATE_TURNING_ON, VM_STATE_RUNNING },
		      4, "operator");
	expect_no_events();
	assert_int_equal(vcpu_resets, before + 1);
	assert_false(vm->vcpu.halted);
	assert_int_equal(vm->vcpu.sched.vruntime, 0);
}

static const enum vm_state save_events[] = { VM_STATE_SAVING, VM_STATE_TURNING_OFF,
					     VM_STATE_DELETE_MACHINE, VM_STATE_TURNED_OFF };
static const enum vm_state restore_events[] = { VM_STATE_TURNING_ON, VM_STATE_RESTORING,
						VM_STATE_RUNNING };

/* What Save must carry: RAM, the vCPU, a device, the paravirtual state, guest time. */
static void fill_guest(struct vm *vm)
{
	uint8_t *ram = vm_gpa_to_host(vm, 0, vm->boot->ram_bytes);

	memset(ram, 0, vm->boot->ram_bytes);
	for (unsigned i = 0; i < PAGE_SIZE; i++) {
		ram[PAGE_SIZE + i] = (uint8_t)(i / 16);     /* compresses */
		ram[7 * PAGE_SIZE + i] = (uint8_t)(i * 2654435761u >> 13); /* hardly */
	}
	ram[vm->boot->ram_bytes - 1] = 0x77;
	loaded_state = (struct vcpu_state){ 0 };
	vcpu_state_power_on(&loaded_state);
	loaded_state.gpr[0] = 0x5a5a5a5a;
	loaded_state.rip = 0x1234;
	loaded_state.fpu.xmm[3] = 0xcafe;
	vm->com1.scr = 0xa5;
	vm->vcpu.upcall_vector = 0x40;
	vm->vcpu.upcall_pending = true;
	vm->vcpu.timer_deadline = vm_now(vm).tsc + 1000000;
}

static void clobber_guest(struct vm *vm)
{
	memset(vm_gpa_to_host(vm, 0, vm->boot->ram_bytes), 0xee, vm->boot->ram_bytes);
	loaded_state = (struct vcpu_state){ 0 };
	vm->com1.scr = 0;
	vm->vcpu.upcall_vector = 0;
	vm->vcpu.upcall_pending = false;
	vm->vcpu.timer_deadline = 0;
}

/* Guest RAM as it is, not as vm_gpa_to_host would load it. */
static const uint8_t *raw_ram(const struct vm *vm, uint64_t page)
{
	return (const uint8_t *)(uintptr_t)vm->boot->ram_base + page * PAGE_SIZE;
}

/*
 * A clobbered guest just restored from fill_guest's RAM (runs: page 0
 * zero, 1 data, 2-6 zero, 7 data, 8-254 zero, 255 data): nothing is
 * loaded until it is needed, then one window at a time, by whoever needs
 * it; the background loads the rest, and RAM is mapped whole again.
 */
static void expect_ram_loaded_as_needed(struct vm *vm, const uint8_t *want)
{
	assert_true(ram_hidden);
	for (uint64_t page = 0; page < GUEST_PAGES; page++)
		assert_int_equal(*raw_ram(vm, page), 0xee);
	/* The guest touches page 7 (a data run): that run alone comes in and is mapped. */
	assert_true(lazy_restore_fault(vm, 7 * PAGE_SIZE + 5));
	assert_memory_equal(raw_ram(vm, 7), want + 7 * PAGE_SIZE, PAGE_SIZE);
	assert_true(page_shown[7] && !page_shown[6] && !page_shown[8]);
	assert_int_equal(*raw_ram(vm, 1), 0xee);
	/* A retried access to a loaded page is the restore's too, and loads nothing again. */
	assert_true(lazy_restore_fault(vm, 7 * PAGE_SIZE));
	/* A zero run: its aligned window of 16 pages around the touch, no more. */
	assert_true(lazy_restore_fault(vm, 100 * PAGE_SIZE));
	for (uint64_t page = 96; page < 112; page++)
		assert_true(page_shown[page] && *raw_ram(vm, page) == 0);
	assert_true(!page_shown[95] && *raw_ram(vm, 95) == 0xee);
	assert_true(!page_shown[112] && *raw_ram(vm, 112) == 0xee);
	/* The hypervisor's or a device's access: through vm_gpa_to_host, across two runs. */
	uint8_t two[2];
	memcpy(two, vm_gpa_to_host(vm, 2 * PAGE_SIZE - 1, 2), 2);
	assert_memory_equal(two, want + 2 * PAGE_SIZE - 1, 2);
	assert_true(page_shown[1] && page_shown[2] && page_shown[6] && !page_shown[0]);
	/* The background: a window a step, until none is left; then RAM is mapped whole. */
	unsigned steps = 0;
	while (lazy_restore_poll(0))
		steps++;
	/* Pages 0, 8-15, 16-95 in five, 112-254 in nine, 255: 17 windows, the last ends it. */
	assert_int_equal(steps, 16);
	assert_false(ram_hidden);
	assert_null(vm->lazy);
	assert_memory_equal(raw_ram(vm, 0), want, vm->boot->ram_bytes);
	assert_false(lazy_restore_fault(vm, 0));
}

/*
 * Save: the state table's sequence, the VM Saved with its file; Startup:
 * TurningOn, Restoring, Running, and the guest exactly as it was, its
 * guest TSC going on from the saved value; the file's pages come back.
 */
static void test_save_and_restore(void **state)
{
	struct vm *vm = vm_a();
	(void)state;

	/* An adapter on a network: after the restore it announces itself there. */
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 0x42 };
	network_init(&pages);
	int net = network_create("lan", 1500);
	assert_true(net >= 0);
	assert_int_equal(nic_add(vm->id, mac), 0);
	assert_int_equal(nic_attach(vm->id, 0, (unsigned)net), 0);
	/* Its devices are built at power-on, as when the API adds an adapter to a VM that is off. */
	assert_int_equal(vm_control(vm, VM_OP_RESET, NULL), 0);
	expect_events(vm->id,
		      (enum vm_state[]){ VM_STATE_TURNING_OFF, VM_STATE_DELETE_MACHINE,
					 VM_STATE_TURNING_ON, VM_STATE_RUNNING },
		      4, NULL);
	fill_guest(vm);
	uint8_t *want = malloc(vm->boot->ram_bytes);
	assert_non_null(want);
	memcpy(want, vm_gpa_to_host(vm, 0, vm->boot->ram_bytes), vm->boot->ram_bytes);
	struct vcpu_state cpu = loaded_state;
	uint64_t deadline = vm->vcpu.timer_deadline, free_before = pages.free_pages;
	struct vm_time before = vm_now(vm);

	console_ring_write(&vm->console, (const uint8_t *)"the guest's output\n", 19);
	assert_int_equal(vm_control(vm, VM_OP_SAVE, NULL), 0);
	/* Saving until its steps are done (vm_save_poll, from the scheduler's loop). */
	expect_events(vm->id, save_events, 1, "");
	assert_int_equal(vm->state, VM_STATE_SAVING);
	assert_int_equal(vm_control(vm, VM_OP_TURN_OFF, NULL), -1);
	/* A piece a step: 1 MiB of RAM scanned in four, then compressed in four. */
	for (unsigned step = 0; step < 7; step++) {
		assert_true(vm_save_poll(0));
		assert_int_equal(vm->state, VM_STATE_SAVING);
	}
	expect_no_events();
	assert_false(vm_save_poll(0));
	expect_events(vm->id, save_events + 1, 3, "");
	expect_no_events();
	assert_int_equal(vm->state, VM_STATE_SAVED);
	/* Zero pages take no room: 1 MiB of RAM with two pages of data is a few KiB. */
	assert_true(vm->saved.bytes > 2 * 1024 && vm->saved.bytes < 16 * 1024);
	assert_int_equal(pages.free_pages, free_before - vm->saved.pages);
	/* The same file in the store, for Startup after a host reboot. */
	assert_true(vm->saved.in_store && store_saved.kept);
	assert_string_equal(store_saved.vm, vm->cfg->name);
	assert_int_equal(store_saved.bytes, vm->saved.bytes);
	assert_memory_equal(store_saved.file, (const void *)(uintptr_t)vm->saved.base,
			    vm->saved.bytes);
	assert_int_equal(vm_control(vm, VM_OP_SAVE, NULL), -1);
	assert_int_equal(vm_control(vm, VM_OP_PAUSE, NULL), -1);
	expect_no_events();

	/*
	 * Restored, but its state cannot leave the store: it does not run (at
	 * the next boot that state would come back, older than its disk).
	 */
	drop_fails = true;
	assert_int_equal(vm_control(vm, VM_OP_STARTUP, NULL), -1);
	struct vm_event got[8];
	assert_int_equal(vm_events_since(seen, got, 8), 5);
	assert_int_equal(got[1].state, VM_STATE_RESTORING);
	assert_non_null(strstr(got[4].reason, "cannot be dropped"));
	seen += 5;
	assert_int_equal(vm->state, VM_STATE_SAVED);
	assert_true(store_saved.kept);
	drop_fails = false;
	clobber_guest(vm);
	/* As a VM made anew from the file (after a host reboot): no history of its own. */
	memset(&vm->console, 0, sizeof(vm->console));
	assert_int_equal(vm_control(vm, VM_OP_STARTUP, NULL), 0);
	expect_events(vm->id, restore_events, 3, "");
	uint8_t history[64] = { 0 };
	uint64_t from = 0;
	assert_true(console_ring_read(&vm->console, &from, history, sizeof(history)) >= 19);
	assert_non_null(strstr((const char *)history, "the guest's output"));
	assert_int_equal(vm->state, VM_STATE_RUNNING);
	expect_ram_loaded_as_needed(vm, want);
	assert_memory_equal(&loaded_state, &cpu, sizeof(cpu));
	assert_int_equal(vm->com1.scr, 0xa5);
	assert_int_equal(vm->vcpu.upcall_vector, 0x40);
	assert_true(vm->vcpu.upcall_pending);
	assert_true(vm->vcpu.timer_deadline == deadline);
	struct vm_time after = vm_now(vm);
	assert_true(after.tsc >= before.tsc && after.ns >= before.ns);
	assert_true(hardware_tsc_offset == vm_clock_tsc_offset(&vm->clock));
	struct vnet_counters lan;
	vnet_switch_stats(network_get((unsigned)net), &lan);
	/* The RARPs from the adapter's MAC: the restore that could not drop its state sent one too. */
	assert_int_equal(lan.rx_frames, 2);
	/* The guest runs on from the file, which is no longer its state, here or in the store. */
	assert_int_equal(vm->saved.pages, 0);
	assert_false(store_saved.kept);
	assert_int_equal(pages.free_pages, free_before);
	nic_remove_all(vm->id);
	assert_int_equal(network_delete((unsigned)net), 0);
	free(want);
}

/* A damaged file is refused whole: the VM stays Saved with it; Discard drops it. */
static void test_damaged_save_file_keeps_the_vm_saved(void **state)
{
	struct vm *vm = vm_a();
	uint64_t free_before = pages.free_pages;
	(void)state;

	fill_guest(vm);
	assert_int_equal(vm_control(vm, VM_OP_PAUSE, NULL), 0);
	expect_events(vm->id, (enum vm_state[]){ VM_STATE_PAUSED }, 1, "");
	assert_int_equal(vm_control(vm, VM_OP_SAVE, NULL), 0);
	while (vm_save_poll(SAVE_STEP_NS))
		;
	expect_events(vm->id, save_events, 4, "");
	uint8_t *file = (uint8_t *)(uintptr_t)vm->saved.base;
	file[vm->saved.bytes / 2] ^= 0x10;
	assert_int_equal(vm_control(vm, VM_OP_STARTUP, NULL), -1);
	struct vm_event got[8];
	assert_int_equal(vm_events_since(seen, got, 8), 5);
	assert_int_equal(got[1].state, VM_STATE_RESTORING);
	assert_int_equal(got[4].state, VM_STATE_TURNED_OFF);
	assert_non_null(strstr(got[4].reason, "damaged"));
	seen += 5;
	assert_int_equal(vm->state, VM_STATE_SAVED);
	assert_int_not_equal(vm->saved.pages, 0);
	assert_true(store_saved.kept);
	file[vm->saved.bytes / 2] ^= 0x10;

	/* A store that cannot drop the state keeps the VM Saved: it would come back at boot. */
	char why[128];
	drop_fails = true;
	assert_int_equal(vm_discard_saved_state(vm, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "cannot be dropped"));
	assert_int_equal(vm->state, VM_STATE_SAVED);
	assert_true(store_saved.kept);
	drop_fails = false;
	assert_int_equal(vm_discard_saved_state(vm, why, sizeof(why)), 0);
	expect_events(vm->id, (enum vm_state[]){ VM_STATE_TURNED_OFF }, 1, "saved state discarded");
	assert_int_equal(vm->state, VM_STATE_TURNED_OFF);
	assert_false(store_saved.kept);
	assert_int_equal(pages.free_pages, free_before);
	assert_int_equal(vm_discard_saved_state(vm, why, sizeof(why)), -1);
	assert_int_equal(vm_control(vm, VM_OP_STARTUP, NULL), 0);
	expect_events(vm->id, (enum vm_state[]){ VM_STATE_TURNING_ON, VM_STATE_RUNNING }, 2, "");
}

/*
 * A Save whose file finds no memory once RAM is scanned: nothing is kept
 * and the VM goes on from where it stopped, Running again with the reason.
 */
static void test_save_without_memory_for_the_file(void **state)
{
	struct vm *vm = vm_a();
	uint64_t free_before = pages.free_pages, hoard;
	(void)state;

	fill_guest(vm);
	assert_int_equal(vm_control(vm, VM_OP_SAVE, NULL), 0);
	expect_events(vm->id, save_events, 1, "");
	uint64_t hoarded = pages.free_pages;
	assert_int_equal(page_alloc_alloc(&pages, hoarded, 1, &hoard), 0);
	/* The scan's four pieces, then no file. */
	for (unsigned step = 0; step < 3; step++)
		assert_true(vm_save_poll(0));
	assert_false(vm_save_poll(0));
	page_alloc_free(&pages, hoard, hoarded);
	struct vm_event got[2];
	assert_int_equal(vm_events_since(seen, got, 2), 1);
	seen++;
	assert_int_equal(got[0].state, VM_STATE_RUNNING);
	assert_non_null(strstr(got[0].reason, "no memory for a save file"));
	assert_int_equal(vm->state, VM_STATE_RUNNING);
	assert_int_equal(vm->saved.pages, 0);
	assert_int_equal(pages.free_pages, free_before);
	assert_false(store_saved.kept);
}

/* Saves the VM (Running) with fill_guest's RAM into want; it is Saved. */
static void save_filled_guest(struct vm *vm, uint8_t *want)
{
	fill_guest(vm);
	memcpy(want, raw_ram(vm, 0), vm->boot->ram_bytes);
	assert_int_equal(vm_control(vm, VM_OP_SAVE, NULL), 0);
	while (vm_save_poll(SAVE_STEP_NS))
		;
	expect_events(vm->id, save_events, 4, "");
	assert_int_equal(vm->state, VM_STATE_SAVED);
}

static void start_saved(struct vm *vm)
{
	clobber_guest(vm);
	assert_int_equal(vm_control(vm, VM_OP_STARTUP, NULL), 0);
	expect_events(vm->id, restore_events, 3, "");
}

/* Makes the save file's memory run at gpa a corrupt LZ block, its checksums right. */
static void corrupt_run(struct vm *vm, uint64_t gpa)
{
	uint8_t *f = (uint8_t *)(uintptr_t)vm->saved.base;

	for (size_t pos = SAVEFILE_PREFIX_SIZE; pos < vm->saved.bytes;
	     pos += SAVEFILE_RECORD_HEADER_SIZE + le_get(f + pos + 4, 4)) {
		uint8_t *run = f + pos + SAVEFILE_RECORD_HEADER_SIZE;
		if (le_get(f + pos, 2) != SAVEFILE_MEMORY || le_get(run, 8) != gpa)
			continue;
		assert_int_equal(run[12], SAVEFILE_RUN_LZ);
		memset(run + SAVEFILE_RUN_HEADER_SIZE, 0xff,
		       le_get(f + pos + 4, 4) - SAVEFILE_RUN_HEADER_SIZE);
		savefile_reseal(f, vm->saved.bytes, false);
		return;
	}
	fail_msg("no memory run at 0x%llx", (unsigned long long)gpa);
}

/*
 * The VM (whose restore found a run that does not decode) ended with that
 * reason, every page back; it starts afresh.
 */
static void expect_ended_and_start_again(struct vm *vm, uint64_t free_before)
{
	struct vm_event last;

	assert_int_equal(vm_events_since(seen + 2, &last, 1), 1);
	assert_non_null(strstr(last.reason, "its saved RAM does not decode"));
	expect_events(vm->id,
		      (enum vm_state[]){ VM_STATE_TURNING_OFF, VM_STATE_DELETE_MACHINE,
					 VM_STATE_TURNED_OFF },
		      3, NULL);
	assert_int_equal(vm->state, VM_STATE_TURNED_OFF);
	assert_null(vm->lazy);
	assert_int_equal(pages.free_pages, free_before);
	assert_int_equal(vm_control(vm, VM_OP_STARTUP, NULL), 0);
	expect_events(vm->id, (enum vm_state[]){ VM_STATE_TURNING_ON, VM_STATE_RUNNING }, 2, "");
}

/*
 * While a restored VM's RAM is still loading: a Save reads it all (and
 * the saved RAM is the guest's), a turn-off drops the rest; without
 * memory to hide RAM it is decoded whole at Startup; a run that does not
 * decode ends the VM on first touch, or, decoded whole, fails the start
 * with the VM still Saved. Every page comes back each time.
 */
static void test_restore_while_ram_is_loading(void **state)
{
	struct vm *vm = vm_a();
	uint64_t free_before = pages.free_pages;
	uint8_t *want = malloc(vm->boot->ram_bytes);
	(void)state;

	assert_non_null(want);
	save_filled_guest(vm, want);
	start_saved(vm);
	assert_non_null(vm->lazy);
	assert_int_equal(vm_control(vm, VM_OP_SAVE, NULL), 0);
	while (vm_save_poll(SAVE_STEP_NS))
		;
	expect_events(vm->id, save_events, 4, "");
	assert_null(vm->lazy);
	assert_false(ram_hidden);
	start_saved(vm);
	while (lazy_restore_poll(SAVE_STEP_NS))
		;
	assert_memory_equal(raw_ram(vm, 0), want, vm->boot->ram_bytes);

	save_filled_guest(vm, want);
	start_saved(vm);
	assert_true(ram_hidden);
	assert_int_equal(vm_control(vm, VM_OP_TURN_OFF, NULL), 0);
	expect_events(vm->id,
		      (enum vm_state[]){ VM_STATE_TURNING_OFF, VM_STATE_DELETE_MACHINE,
					 VM_STATE_TURNED_OFF },
		      3, "");
	assert_null(vm->lazy);
	assert_false(ram_hidden);
	assert_int_equal(pages.free_pages, free_before);
	assert_int_equal(vm_control(vm, VM_OP_STARTUP, NULL), 0);
	expect_events(vm->id, (enum vm_state[]){ VM_STATE_TURNING_ON, VM_STATE_RUNNING }, 2, "");

	save_filled_guest(vm, want);
	hide_fails = true;
	start_saved(vm);
	assert_null(vm->lazy);
	assert_memory_equal(raw_ram(vm, 0), want, vm->boot->ram_bytes);
	assert_int_equal(pages.free_pages, free_before);

	save_filled_guest(vm, want);
	corrupt_run(vm, PAGE_SIZE);
	clobber_guest(vm);
	assert_int_equal(vm_control(vm, VM_OP_STARTUP, NULL), -1);
	struct vm_event got[8];
	assert_int_equal(vm_events_since(seen, got, 8), 5);
	seen += 5;
	assert_non_null(strstr(got[4].reason, "memory: "));
	assert_int_equal(vm->state, VM_STATE_SAVED);
	hide_fails = false;
	start_saved(vm);
	assert_false(vm->op_pending);
	assert_true(lazy_restore_fault(vm, PAGE_SIZE));
	assert_true(vm->op_pending);
	assert_non_null(strstr(vm->op_reason, "its saved RAM does not decode"));
	assert_int_equal(vm_control(vm, VM_OP_GUEST_END, vm->op_reason), 0);
	expect_ended_and_start_again(vm, free_before);

	/* Paused, the background finds it: the VM ends there and then, before it runs again. */
	save_filled_guest(vm, want);
	corrupt_run(vm, PAGE_SIZE);
	start_saved(vm);
	assert_int_equal(vm_control(vm, VM_OP_PAUSE, NULL), 0);
	expect_events(vm->id, (enum vm_state[]){ VM_STATE_PAUSED }, 1, "");
	/* Page 0's window, then page 1's run: it ends. */
	assert_true(lazy_restore_poll(0));
	assert_int_equal(vm->state, VM_STATE_PAUSED);
	assert_false(lazy_restore_poll(0));
	expect_ended_and_start_again(vm, free_before);

	/* A Save that reads it fails (no file of zeros), and then the VM ends. */
	save_filled_guest(vm, want);
	corrupt_run(vm, PAGE_SIZE);
	start_saved(vm);
	assert_int_equal(vm_control(vm, VM_OP_SAVE, NULL), 0);
	expect_events(vm->id, save_events, 1, "");
	while (vm_save_poll(0))
		;
	assert_int_equal(vm_events_since(seen, got, 8), 1);
	seen++;
	assert_int_equal(got[0].state, VM_STATE_RUNNING);
	assert_non_null(strstr(got[0].reason, "its saved RAM does not decode"));
	assert_int_equal(vm->saved.pages, 0);
	assert_false(lazy_restore_poll(0));
	expect_ended_and_start_again(vm, free_before);
	free(want);
}

static void test_turn_off_and_start_again(void **state)
{
	struct vm *vm = vm_a();
	(void)state;

	assert_int_equal(vm_control(vm, VM_OP_TURN_OFF, NULL), 0);
	expect_events(vm->id,
		      (enum vm_state[]){ VM_STATE_TURNING_OFF, VM_STATE_DELETE_MACHINE,
					 VM_STATE_TURNED_OFF },
		      3, "");
	assert_int_equal(vm_control(vm, VM_OP_TURN_OFF, NULL), -1);
	assert_int_equal(vm_control(vm, VM_OP_PAUSE, NULL), -1);
	expect_no_events();
	assert_int_equal(vm_control(vm, VM_OP_STARTUP, NULL), 0);
	expect_events(vm->id, (enum vm_state[]){ VM_STATE_TURNING_ON, VM_STATE_RUNNING }, 2, "");
	expect_no_events();
}

static void test_guest_end_carries_the_reason(void **state)
{
	struct vm *vm = vm_a();
	(void)state;

	vm_request_end(vm, "triple fault at RIP 0x%x", 0x1234);
	vm_request_end(vm, "a later, secondary problem");
	assert_true(vm->op_pending);
	assert_int_equal(vm_control(vm, VM_OP_GUEST_END, vm->op_reason), 0);
	expect_events(vm->id,
		      (enum vm_state[]){ VM_STATE_TURNING_OFF, VM_STATE_DELETE_MACHINE,
					 VM_STATE_TURNED_OFF },
		      3, "triple fault at RIP 0x1234");
	expect_no_events();
}

static void test_failed_power_on_ends_with_the_reason(void **state)
{
	struct vm *vm = vm_a();
	(void)state;

	boot_prepare_result = -1;
	assert_int_equal(vm_control(vm, VM_OP_STARTUP, NULL), -1);
	boot_prepare_result = 0;
	expect_events(vm->id,
		      (enum vm_state[]){ VM_STATE_TURNING_ON, VM_STATE_TURNING_OFF,
					 VM_STATE_DELETE_MACHINE, VM_STATE_TURNED_OFF },
		      4, "the image does not fit");
	expect_no_events();
	assert_int_equal(vm->state, VM_STATE_TURNED_OFF);
}

static void test_event_ring_keeps_the_newest(void **state)
{
	struct vm *vm = vm_a();
	struct vm_event got[VM_EVENT_RING];
	(void)state;

	assert_int_equal(vm_control(vm, VM_OP_STARTUP, NULL), 0);
	for (unsigned i = 0; i < VM_EVENT_RING; i++) {
		vm_control(vm, VM_OP_PAUSE, NULL);
		vm_control(vm, VM_OP_RESUME, NULL);
	}
	/* A reader far behind gets the newest VM_EVENT_RING, with a seq gap. */
	unsigned n = vm_events_since(seen, got, VM_EVENT_RING);
	assert_int_equal(n, VM_EVENT_RING);
	assert_true(got[0].seq > seen + 1);
	assert_int_equal(got[n - 1].state, VM_STATE_RUNNING);
	for (unsigned i = 1; i < n; i++)
		assert_int_equal(got[i].seq, got[i - 1].seq + 1);
	seen = got[n - 1].seq;
	expect_no_events();
}

static void test_each_vm_takes_its_state_and_backend_pages(void **state)
{
	(void)state;
	/* Its own pages for struct vm, plus the ones the fake backend took. */
	uint64_t vm_pages = (sizeof(struct vm) + PAGE_SIZE - 1) / PAGE_SIZE;
	assert_int_equal(pages.free_pages,
			 arena_free_at_start - 2 * (vm_pages + FAKE_EPT_PAGES + FAKE_VCPU_PAGES));
}

/*
 * A disk's writes are the VM's own: they go to chunks from the page pool,
 * the library's bytes stay as loaded, Reset and TurnOff keep the writes
 * (a real disk does), and vm_delete gives every chunk back.
 */
static void test_disk_writes_are_the_vms_own(void **state)
{
	/* Two chunks and a part, with a partial last sector the guest never sees. */
	static uint8_t file[2 * DISK_CHUNK_SIZE + 700];
	const struct cfg_vm c = { .name = "disk", .memory_bytes = 1 << 20 };
	struct boot_vm b = { .ram_bytes = 1 << 20 };
	uint64_t free_before = pages.free_pages, n;
	char why[VM_REASON_MAX];

	(void)state;
	memset(file, 0xd1, sizeof(file));
	b.disk = (struct boot_file){ (uint64_t)(uintptr_t)file, sizeof(file), 1 };
	struct vm *vm = vm_create(&c, &b, VM_RAM_RESERVED, &pages, why, sizeof(why));
	assert_non_null(vm);
	assert_int_equal(vm->state, VM_STATE_TURNED_OFF);
	assert_int_equal(vm->disk.size, 2 * DISK_CHUNK_SIZE + 512);
	uint64_t free_created = pages.free_pages;

	assert_int_equal(vm_control(vm, VM_OP_STARTUP, NULL), 0);
	/* The virtio-blk device works on the VM's disk, not on the file. */
	assert_ptr_equal(vm->platform.blk.disk, &vm->disk);
	assert_int_equal(disk_prepare_write(&vm->disk, DISK_CHUNK_SIZE - 512, 1024), 0);
	n = 1;
	*disk_write_span(&vm->disk, DISK_CHUNK_SIZE, &n) = 0x5e;
	assert_int_equal(pages.free_pages, free_created - 2 * DISK_CHUNK_SIZE / PAGE_SIZE);
	assert_int_equal(file[DISK_CHUNK_SIZE], 0xd1);

	assert_int_equal(vm_control(vm, VM_OP_RESET, NULL), 0);
	assert_int_equal(vm_control(vm, VM_OP_TURN_OFF, NULL), 0);
	assert_int_equal(vm_control(vm, VM_OP_STARTUP, NULL), 0);
	n = 1;
	assert_int_equal(*disk_read_span(&vm->disk, DISK_CHUNK_SIZE, &n), 0x5e);
	assert_int_equal(vm_control(vm, VM_OP_TURN_OFF, NULL), 0);
	assert_int_equal(file[DISK_CHUNK_SIZE], 0xd1);

	vm_delete(vm);
	assert_int_equal(pages.free_pages, free_before);
	seen = vm_event_seq();
}

/*
 * A store disk (docs/store.md): the device works on the object, whole
 * sectors of it; no chunk memory is taken; a second VM cannot have it
 * while the first does, with the store's reason; deleting lets go of it.
 */
static void test_store_disk(void **state)
{
	struct cfg_vm c = { .name = "sd", .memory_bytes = 1 << 20, .store_disk = "sd1" };
	struct boot_vm b = { .ram_bytes = 1 << 20 };
	uint64_t free_before = pages.free_pages;
	char why[VM_REASON_MAX];

	(void)state;
	struct vm *vm = vm_create(&c, &b, VM_RAM_RESERVED, &pages, why, sizeof(why));
	assert_non_null(vm);
	assert_ptr_equal(vm->disk.medium, &sd1_medium);
	assert_int_equal(vm->disk.size, sizeof(store_sd1));
	assert_int_equal(vm_control(vm, VM_OP_STARTUP, NULL), 0);
	assert_ptr_equal(vm->platform.blk.disk, &vm->disk);
	strcpy(c.name, "sd-twin");
	assert_null(vm_create(&c, &b, VM_RAM_RESERVED, &pages, why, sizeof(why)));
	assert_non_null(strstr(why, "no free disk 'sd1'"));
	assert_int_equal(vm_control(vm, VM_OP_TURN_OFF, NULL), 0);
	vm_delete(vm);
	assert_int_equal(store_sd1_vm, -1);
	assert_int_equal(pages.free_pages, free_before);
	seen = vm_event_seq();
}

/*
 * The disk's INTA# as its _PRT entries say: ISA IRQ 10 for the 8259s, and
 * I/O APIC input 16, which idles high and goes low while the disk
 * interrupts (PCI INTx# is active low); I/O APIC input 10 stays out of it.
 */
static void test_disk_inta_follows_the_pci_routing(void **state)
{
	static uint8_t file[DISK_CHUNK_SIZE];
	const struct cfg_vm c = { .name = "intx", .memory_bytes = 1 << 20 };
	struct boot_vm b = { .ram_bytes = 1 << 20,
			     .disk = { (uint64_t)(uintptr_t)file, sizeof(file), 1 } };
	struct acpi_pci_route routes[PLATFORM_VIRTIO_MAX];
	char why[VM_REASON_MAX];

	(void)state;
	struct vm *vm = vm_create(&c, &b, VM_RAM_RESERVED, &pages, why, sizeof(why));
	assert_non_null(vm);
	assert_int_equal(vm_control(vm, VM_OP_STARTUP, NULL), 0);
	assert_int_equal(platform_pci_routes(vm, routes), 1);
	assert_int_equal(routes[0].device, 1);
	assert_int_equal(routes[0].isa_irq, PLATFORM_IRQ_BLK);
	assert_int_equal(routes[0].gsi, ACPI_PCI_GSI_FIRST);

	struct pci_function *fn = vm->platform.virtio[0].pci;
	const struct ioapic *io = &vm->platform.ioapic;
	assert_int_equal(io->lines, 1U << 16);
	pci_set_intx(fn, true);
	assert_int_equal(io->lines, 0);
	assert_int_equal(vm->pic.chip[1].irr, 1U << (PLATFORM_IRQ_BLK - 8));
	pci_set_intx(fn, false);
	assert_int_equal(io->lines, 1U << 16);

	assert_int_equal(vm_control(vm, VM_OP_TURN_OFF, NULL), 0);
	vm_delete(vm);
	seen = vm_event_seq();
}

/*
 * A VM with a one-chunk disk and 1 MiB of RAM: like CreateVirtualMachine's
 * from the pool, or like a config file's from reserved memory.
 */
static struct vm *create_test_vm(const char *name, enum vm_ram ram, char *why, size_t why_size)
{
	static uint8_t file[DISK_CHUNK_SIZE];
	struct cfg_vm c = { .memory_bytes = 1 << 20 };
	const struct boot_vm b = { .ram_bytes = 1 << 20,
				   .disk = { (uint64_t)(uintptr_t)file, sizeof(file), 1 } };

	strcpy(c.name, name);
	return vm_create(&c, &b, ram, &pages, why, why_size);
}

/*
 * Deleting raises one event, Invalid, carrying the name (the VM is gone
 * when a subscriber reads it); the VM leaves the list, the scheduler
 * forgets its vCPU, and the VM's copies of cfg and boot outlive the caller's.
 */
static void test_delete_raises_invalid_and_leaves_the_list(void **state)
{
	char why[VM_REASON_MAX];
	struct vm_event got[2];
	(void)state;

	unsigned count = vm_count();
	struct vm *vm = create_test_vm("gone", VM_RAM_FROM_POOL, why, sizeof(why));
	assert_non_null(vm);
	assert_string_equal(vm->cfg->name, "gone");
	assert_int_equal(vm_count(), count + 1);
	assert_ptr_equal(vm_by_index(count), vm);
	unsigned id = vm->id;
	const struct vcpu *vcpu = &vm->vcpu;

	vm_delete(vm);
	assert_int_equal(vm_events_since(seen, got, 2), 1);
	assert_int_equal(got[0].vm_id, id);
	assert_int_equal(got[0].state, VM_STATE_INVALID);
	assert_string_equal(got[0].vm_name, "gone");
	assert_string_equal(got[0].reason, "");
	seen = got[0].seq;
	assert_ptr_equal(forgotten_vcpu, vcpu);
	assert_int_equal(vm_count(), count);
	for (unsigned i = 0; i < vm_count(); i++)
		assert_int_not_equal(vm_by_index(i)->id, id);
}

/*
 * The test: 1,000 lives (create, start, a disk write, turn off,
 * delete) fit in VM_MAX slots and leave the page pool exactly as it was.
 */
static void test_a_thousand_lives_give_every_page_back(void **state)
{
	char why[VM_REASON_MAX];
	(void)state;

	uint64_t free_at_start = pages.free_pages;
	unsigned count = vm_count();
	for (unsigned life = 0; life < 1000; life++) {
		struct vm *vm = create_test_vm("cycle", VM_RAM_FROM_POOL, why, sizeof(why));
		assert_non_null(vm);
		assert_true(pages.free_pages < free_at_start);
		assert_int_equal(vm_control(vm, VM_OP_STARTUP, NULL), 0);
		assert_int_equal(disk_prepare_write(&vm->disk, 0, 512), 0);
		assert_int_equal(vm_control(vm, VM_OP_TURN_OFF, NULL), 0);
		vm_delete(vm);
		assert_int_equal(pages.free_pages, free_at_start);
	}
	print_message("1000 lives: %llu free pages before, %llu after\n",
		      (unsigned long long)free_at_start, (unsigned long long)pages.free_pages);
	assert_int_equal(vm_count(), count);
	seen = vm_event_seq();
}

/*
 * Every slot can be filled, the next create is refused with nothing taken,
 * and all come back (reserved RAM: VM_MAX MiBs of guest RAM would not fit the arena).
 */
static void test_slots_fill_and_are_reused(void **state)
{
	struct vm *made[VM_MAX];
	char why[VM_REASON_MAX], name[8];
	unsigned n = 0;
	(void)state;

	uint64_t free_at_start = pages.free_pages;
	unsigned count = vm_count();
	while (count + n < VM_MAX) {
		snprintf(name, sizeof(name), "s%u", n);
		made[n] = create_test_vm(name, VM_RAM_RESERVED, why, sizeof(why));
		assert_non_null(made[n]);
		n++;
	}
	uint64_t free_full = pages.free_pages;
	assert_null(create_test_vm("one-too-many", VM_RAM_RESERVED, why, sizeof(why)));
	assert_non_null(strstr(why, "VMs exist"));
	assert_int_equal(pages.free_pages, free_full);

	/* A freed slot is the next one taken. */
	unsigned id = made[1]->id;
	vm_delete(made[1]);
	made[1] = create_test_vm("again", VM_RAM_RESERVED, why, sizeof(why));
	assert_non_null(made[1]);
	assert_int_equal(made[1]->id, id);
	while (n)
		vm_delete(made[--n]);
	assert_int_equal(pages.free_pages, free_at_start);
	assert_int_equal(vm_count(), count);
	seen = vm_event_seq();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_and_autostart),
		cmocka_unit_test(test_pause_resume),
		cmocka_unit_test(test_store_disk),
		cmocka_unit_test(test_resume_loads_the_parked_state),
		cmocka_unit_test(test_resume_refuses_a_bad_parked_state),
		cmocka_unit_test(test_reset_reloads_the_vcpu),
		cmocka_unit_test(test_save_and_restore),
		cmocka_unit_test(test_damaged_save_file_keeps_the_vm_saved),
		cmocka_unit_test(test_save_without_memory_for_the_file),
		cmocka_unit_test(test_restore_while_ram_is_loading),
		cmocka_unit_test(test_turn_off_and_start_again),
		cmocka_unit_test(test_guest_end_carries_the_reason),
		cmocka_unit_test(test_failed_power_on_ends_with_the_reason),
		cmocka_unit_test(test_event_ring_keeps_the_newest),
		cmocka_unit_test(test_each_vm_takes_its_state_and_backend_pages),
		cmocka_unit_test(test_disk_writes_are_the_vms_own),
		cmocka_unit_test(test_disk_inta_follows_the_pci_routing),
		cmocka_unit_test(test_delete_raises_invalid_and_leaves_the_list),
		cmocka_unit_test(test_a_thousand_lives_give_every_page_back),
		cmocka_unit_test(test_slots_fill_and_are_reused),
	};
	return cmocka_run_group_tests_name("vm_lifecycle", tests, NULL, NULL);
}
