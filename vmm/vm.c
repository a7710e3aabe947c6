#include "vmm/vm.h"

#include "lib/fmt.h"
#include "lib/spinlock.h"
#include "vmm/clock.h"
#include "vmm/guest_boot.h"
#include "vmm/lazy_restore.h"
#include "vmm/log.h"
#include "vmm/network.h"
#include "vmm/page_alloc.h"
#include "vmm/sched.h"
#include "vmm/storage/store_host.h"
#include "vmm/vcpu_state.h"
#include "vmm/virt.h"
#include "x86/cpu.h"
#include "x86/paging.h"

#include <stdarg.h>
#include <string.h>

/* EPT 2-MiB pages need the RAM's host address 2-MiB aligned (vmm/vmx/ept.c). */
#define GUEST_RAM_ALIGN_PAGES (SIZE_2M / PAGE_SIZE)

/*
 * Allocated from host pages: with its console history a VM is ~40 KiB.
 * slots[] by id (NULL: free), vms[] the same VMs in creation order, for
 * vm_by_index.
 */
#define VM_STATE_PAGES ((sizeof(struct vm) + PAGE_SIZE - 1) / PAGE_SIZE)
static struct vm *slots[VM_MAX];
static struct vm *vms[VM_MAX];
static unsigned vm_total;
/* The event ring: written by whichever CPU changes a VM's state, read by the control path. */
static struct vm_event events[VM_EVENT_RING];
static uint64_t event_seq;
static struct spinlock events_lock;

unsigned vm_events_since(uint64_t after, struct vm_event *out, unsigned max)
{
	unsigned n = 0;

	spin_lock(&events_lock);
	uint64_t first = event_seq > VM_EVENT_RING ? event_seq - VM_EVENT_RING + 1 : 1;
	if (after + 1 > first)
		first = after + 1;
	for (uint64_t seq = first; seq <= event_seq && n < max; seq++)
		out[n++] = events[seq % VM_EVENT_RING];
	spin_unlock(&events_lock);
	return n;
}

uint64_t vm_event_seq(void)
{
	return event_seq;
}

unsigned vm_count(void)
{
	return vm_total;
}

struct vm *vm_by_index(unsigned index)
{
	return index < vm_total ? vms[index] : NULL;
}

bool vm_gpa_is_ram(const struct vm *vm, uint64_t gpa, uint64_t len)
{
	return gpa <= vm->boot->ram_bytes && len <= vm->boot->ram_bytes - gpa;
}

void *vm_gpa_to_host(struct vm *vm, uint64_t gpa, uint64_t len)
{
	lazy_restore_load(vm, gpa, len);
	return (void *)(uintptr_t)(vm->boot->ram_base + gpa);
}

int vm_read_ram(void *vm, uint64_t gpa, void *buf, unsigned len)
{
	if (!vm_gpa_is_ram(vm, gpa, len))
		return -1;
	memcpy(buf, vm_gpa_to_host(vm, gpa, len), len);
	return 0;
}

void vm_request_end(struct vm *vm, const char *format, ...)
{
	va_list ap;

	/* The first reason is the cause; later ones are consequences. */
	if (vm->op_pending && vm->pending_op == VM_OP_GUEST_END)
		return;
	va_start(ap, format);
	fmt_vsnprintf(vm->op_reason, sizeof(vm->op_reason), format, ap);
	va_end(ap);
	vm->op_pending = true;
	vm->pending_op = VM_OP_GUEST_END;
}

void vm_request_reset(struct vm *vm, const char *reason)
{
	/* An end already requested wins: a dying VM does not come back. */
	if (vm->op_pending)
		return;
	fmt_snprintf(vm->op_reason, sizeof(vm->op_reason), "%s", reason);
	vm->op_pending = true;
	vm->pending_op = VM_OP_RESET;
}

/* A line of the guest's console output goes to the log if its rate allows (devices/console.h). */
static void console_log_line(struct vm *vm)
{
	uint64_t unlogged = 0;

	switch (console_rate_admit(&vm->console_rate, vm->console_len + 1, clock_ns(), &unlogged)) {
	case CONSOLE_RATE_FIRST_SKIP:
		log_warn("vm '%s': console output over %u B/s: not logged until it slows down "
			 "(ConsoleRead has it)", vm->cfg->name, CONSOLE_LOG_RATE);
		return;
	case CONSOLE_RATE_SKIP:
		return;
	case CONSOLE_RATE_RESUMED:
		log_warn("vm '%s': console output over %u B/s, %llu bytes not logged",
			 vm->cfg->name, CONSOLE_LOG_RATE, (unsigned long long)unlogged);
		break;
	case CONSOLE_RATE_LOG:
		break;
	}
	log_info("[%s] %s", vm->cfg->name, vm->console_line);
}

void vm_console_putc(struct vm *vm, uint8_t byte)
{
	console_ring_write(&vm->console, &byte, 1);
	if (byte == '\n' || vm->console_len == sizeof(vm->console_line) - 1) {
		vm->console_line[vm->console_len] = '\0';
		console_log_line(vm);
		vm->console_len = 0;
		if (byte == '\n')
			return;
	}
	/* Keep the host console readable: control bytes become '.'. */
	if (byte != '\r')
		vm->console_line[vm->console_len++] = (byte >= 0x20 && byte < 0x7f) ? (char)byte : '.';
}

/*
 * The VM's fixed devices. Ports follow PC conventions: COM1 at 0x3f8;
 * 0xe9 and 0xf4 are the Bochs/QEMU debug-console and debug-exit ports
 * (a byte written to 0xf4 ends the VM with that exit status), which the
 * test guests use.
 */
#define PORT_COM1 0x3f8
#define PORT_DEBUG_CONSOLE 0xe9
#define PORT_DEBUG_EXIT 0xf4
#define IRQ_PIT 0
#define IRQ_COM1 4

static void com1_update_irq(struct vm *vm);

size_t vm_console_input(struct vm *vm, const uint8_t *data, size_t len)
{
	size_t n = vuart_feed(&vm->com1, data, len);
	com1_update_irq(vm);
	return n;
}

static void com1_tx(void *ctx, uint8_t byte)
{
	vm_console_putc(ctx, byte);
}

/* Every UART access may change its interrupt line. */
static void com1_update_irq(struct vm *vm)
{
	platform_set_irq(vm, IRQ_COM1, vuart_irq_line(&vm->com1));
}

/* The UART, PIC and PIT are byte-wide; wider accesses use the low byte. */
static uint32_t com1_read(void *ctx, uint16_t offset, unsigned size)
{
	struct vm *vm = ctx;
	(void)size;
	uint8_t value = vuart_read(&vm->com1, offset);
	com1_update_irq(vm);
	return value;
}

static void com1_write(void *ctx, uint16_t offset, unsigned size, uint32_t value)
{
	struct vm *vm = ctx;
	(void)size;
	vuart_write(&vm->com1, offset, (uint8_t)value);
	com1_update_irq(vm);
}

/* The two 8259As sit at separate port pairs; each range's context names its chip. */
static uint32_t pic_port_read(void *ctx, uint16_t offset, unsigned size)
{
	const struct pic_port *p = ctx;
	(void)size;
	return pic_read(p->pic, p->chip, offset);
}

static void pic_port_write(void *ctx, uint16_t offset, unsigned size, uint32_t value)
{
	const struct pic_port *p = ctx;
	(void)size;
	pic_write(p->pic, p->chip, offset, (uint8_t)value);
}

static uint32_t elcr_read(void *ctx, uint16_t offset, unsigned size)
{
	(void)size;
	return pic_elcr_read(&((struct vm *)ctx)->pic, offset);
}

static void elcr_write(void *ctx, uint16_t offset, unsigned size, uint32_t value)
{
	(void)size;
	pic_elcr_write(&((struct vm *)ctx)->pic, offset, (uint8_t)value);
}

static uint32_t pit_port_read(void *ctx, uint16_t offset, unsigned size)
{
	(void)size;
	return pit_read(&((struct vm *)ctx)->pit, offset, vm_now(ctx).ns);
}

static void pit_port_write(void *ctx, uint16_t offset, unsigned size, uint32_t value)
{
	(void)size;
	pit_write(&((struct vm *)ctx)->pit, offset, (uint8_t)value, vm_now(ctx).ns);
}

static uint32_t rtc_port_read(void *ctx, uint16_t offset, unsigned size)
{
	(void)size;
	return rtc_read(&((struct vm *)ctx)->rtc, offset, vm_now(ctx).ns);
}

static void rtc_port_write(void *ctx, uint16_t offset, unsigned size, uint32_t value)
{
	(void)size;
	rtc_write(&((struct vm *)ctx)->rtc, offset, (uint8_t)value, vm_now(ctx).ns);
}

static uint32_t port_b_read(void *ctx, uint16_t offset, unsigned size)
{
	(void)offset;
	(void)size;
	return pit_port_b_read(&((struct vm *)ctx)->pit, vm_now(ctx).ns);
}

static void port_b_write(void *ctx, uint16_t offset, unsigned size, uint32_t value)
{
	(void)offset;
	(void)size;
	pit_port_b_write(&((struct vm *)ctx)->pit, (uint8_t)value, vm_now(ctx).ns);
}

static void debug_console_write(void *ctx, uint16_t offset, unsigned size, uint32_t value)
{
	(void)offset;
	(void)size;
	vm_console_putc(ctx, (uint8_t)value);
}

/* A 1-, 2- or 4-byte write to 0xf4 (QEMU's isa-debug-exit with iosize 4); the status is its low byte. */
static void debug_exit_write(void *ctx, uint16_t offset, unsigned size, uint32_t value)
{
	(void)size;
	if (offset == 0)
		vm_request_end(ctx, "guest exited with status %u", value & 0xff);
}

static int attach_devices(struct vm *vm)
{
	vm->pic_ports[0] = (struct pic_port){ &vm->pic, 0 };
	vm->pic_ports[1] = (struct pic_port){ &vm->pic, 1 };
	const struct port_device devices[] = {
		{ .base = PORT_COM1, .count = VUART_PORTS, .name = "com1", .read = com1_read,
		  .write = com1_write, .ctx = vm },
		{ .base = PIC_MASTER_PORT, .count = 2, .name = "pic-master",
		  .read = pic_port_read, .write = pic_port_write, .ctx = &vm->pic_ports[0] },
		{ .base = PIC_SLAVE_PORT, .count = 2, .name = "pic-slave", .read = pic_port_read,
		  .write = pic_port_write, .ctx = &vm->pic_ports[1] },
		{ .base = PIC_ELCR_PORT, .count = 2, .name = "elcr", .read = elcr_read,
		  .write = elcr_write, .ctx = vm },
		{ .base = PIT_BASE_PORT, .count = 4, .name = "pit", .read = pit_port_read,
		  .write = pit_port_write, .ctx = vm },
		{ .base = PIT_PORT_B, .count = 1, .name = "port-b", .read = port_b_read,
		  .write = port_b_write, .ctx = vm },
		{ .base = RTC_INDEX_PORT, .count = 2, .name = "rtc", .read = rtc_port_read,
		  .write = rtc_port_write, .ctx = vm },
		{ .base = PORT_DEBUG_CONSOLE, .count = 1, .name = "debug-console",
		  .write = debug_console_write, .ctx = vm },
		{ .base = PORT_DEBUG_EXIT, .count = 4, .name = "debug-exit",
		  .write = debug_exit_write, .ctx = vm },
	};

	for (unsigned i = 0; i < sizeof(devices) / sizeof(devices[0]); i++)
		if (port_bus_add(&vm->ports, &devices[i]))
			return -1;
	return platform_attach_ports(vm, &vm->ports);
}

static int platform_vector(const struct vcpu *vcpu)
{
	return vcpu->apic_page_live ? platform_extint_pending(vcpu->vm)
				    : platform_interrupt_pending(vcpu->vm);
}

int vcpu_interrupt_pending(const struct vcpu *vcpu)
{
	int vector = platform_vector(vcpu);

	if (vector >= 0)
		return vector;
	return vcpu->upcall_pending ? vcpu->upcall_vector : -1;
}

uint8_t vcpu_interrupt_acknowledge(struct vcpu *vcpu)
{
	if (platform_vector(vcpu) >= 0)
		return platform_interrupt_acknowledge(vcpu->vm);
	vcpu->upcall_pending = false;
	return vcpu->upcall_vector;
}

struct lapic_page_status vcpu_apic_to_page(struct vcpu *vcpu)
{
	vcpu->apic_page_live = true;
	return lapic_to_page(&vcpu->vm->platform.lapic, vcpu->apic_page, vm_now(vcpu->vm).tsc);
}

void vcpu_apic_from_page(struct vcpu *vcpu)
{
	if (!vcpu->apic_page_live)
		return;
	lapic_from_page(&vcpu->vm->platform.lapic, vcpu->apic_page);
	vcpu->apic_page_live = false;
}

static struct vm_time clock_at(const struct vm *vm, uint64_t host_tsc)
{
	return (struct vm_time){ vm_clock_ns(&vm->clock, host_tsc),
				 vm_clock_guest_tsc(&vm->clock, host_tsc) };
}

struct vm_time vm_now(const struct vm *vm)
{
	return clock_at(vm, rdtsc());
}

/* The hardware adds the clock's offset to the host TSC on the guest's RDTSC. */
static void apply_tsc_offset(struct vm *vm)
{
	virt_set_tsc_offset(&vm->vcpu, vm_clock_tsc_offset(&vm->clock));
}

void vm_set_guest_tsc(struct vm *vm, uint64_t guest_tsc)
{
	vm_clock_set_guest_tsc(&vm->clock, rdtsc(), guest_tsc);
	apply_tsc_offset(vm);
}

static uint64_t earlier(uint64_t a, uint64_t b)
{
	return !a || (b && b < a) ? b : a;
}

/* The host TSC at guest time ns, for the scheduler; 0 (no event) stays 0. */
static uint64_t host_tsc_at_ns(const struct vm *vm, uint64_t ns)
{
	return ns ? vm_clock_host_tsc_at_ns(&vm->clock, ns) : 0;
}

uint64_t vm_run_timers(struct vm *vm, uint64_t host_tsc)
{
	struct vcpu *vcpu = &vm->vcpu;
	struct vm_time now = clock_at(vm, host_tsc);

	if (vcpu->timer_deadline && now.tsc >= vcpu->timer_deadline) {
		vcpu->timer_deadline = 0;
		vcpu->upcall_pending = true;
	}
	if (pit_irq0_due(&vm->pit, now.ns)) {
		/* An edge on IRQ 0: the counter's output rose again. */
		platform_set_irq(vm, IRQ_PIT, false);
		platform_set_irq(vm, IRQ_PIT, true);
	}
	uint64_t lapic_ns = platform_run_timers(vm, now.ns, now.tsc);
	/*
	 * Device work left waiting and frames other VMs sent since this one
	 * last ran wake it like an interrupt.
	 */
	platform_poll_devices(vm);
	if (vcpu->halted && vcpu_wakes(vcpu))
		vcpu->halted = false;

	uint64_t upcall = vcpu->timer_deadline
				  ? vm_clock_host_tsc_at_guest_tsc(&vm->clock, vcpu->timer_deadline)
				  : 0;
	uint64_t next = earlier(upcall, host_tsc_at_ns(vm, pit_next_irq0_ns(&vm->pit, now.ns)));
	return earlier(next, host_tsc_at_ns(vm, lapic_ns));
}

/*
 * TurningOn: fresh RAM, the pristine image, the vCPU at its boot state,
 * devices at power-on state. A reset (cold = false) keeps what survives a
 * PC's reboot: the battery-backed CMOS clock and RAM. Before a restore
 * (Restoring comes next) the image is not loaded: the saved state writes
 * every page of RAM (savefile_open holds its runs to cover the RAM) and
 * the whole vCPU, so the load would be thrown away, and for a Linux
 * guest it is most of TurningOn's time.
 */
static int power_on(struct vm *vm, bool cold, bool restoring, char *why, size_t why_size)
{
	struct vcpu_state state;
	struct devstate_error err;

	struct vcpu *vcpu = &vm->vcpu;
	vcpu->upcall_vector = 0;
	vcpu->upcall_pending = false;
	vcpu->timer_deadline = 0;
	/* A fresh start joins the queue where it stands (sched_pick), not where it left. */
	vcpu->sched.vruntime = 0;
	vm->op_pending = false;
	vm->console_len = 0;
	vuart_init(&vm->com1, com1_tx, vm);
	pic_init(&vm->pic);
	pit_init(&vm->pit);
	/* The devices first: the boot tables describe them (_PRT). */
	if (platform_power_on(vm, why, why_size))
		return -1;
	if (restoring) {
		vcpu_state_power_on(&state);
	} else {
		struct vcpu_boot_state boot;
		if (guest_boot_prepare(vm, &boot, why, why_size))
			return -1;
		/* The boot mode's registers over the power-on state; x87, SSE and the rest as then. */
		vcpu_state_from_boot(&boot, &state);
	}
	/*
	 * A cold start begins guest time anew; a reset keeps it, as the CMOS
	 * clock and the TSC run through a PC's reboot.
	 */
	if (cold) {
		vm_clock_init(&vm->clock, clock_tsc_hz(), rdtsc());
		rtc_init(&vm->rtc, clock_wallclock_s(), vm_now(vm).ns);
	}
	if (virt_vcpu_reset(vcpu, &state, &err)) {
		fmt_snprintf(why, why_size, "the initial register state is refused: %s", err.text);
		return -1;
	}
	apply_tsc_offset(vm);
	return 0;
}

/*
 * Pause parks the vCPU's state as a record of the state codec and Resume
 * loads it back: the path of a saved or moved VM (vmm/vcpu_state.h), so
 * every pause of a live guest proves that the state is complete and that
 * it encodes, checks and loads. The guest TSC is not in it: it is the VM
 * clock's (vmm/vm_clock.h), which Pause stops and Resume starts.
 */
_Static_assert(VCPU_STATE_RECORD_MAX <= PAGE_SIZE, "a parked vCPU fits its page");

static int park_vcpu(struct vm *vm)
{
	struct vcpu_state state;
	const struct devstate_instance record = { &vcpu_state_desc, &state, NULL };

	if (page_alloc_alloc(vm->pages, 1, 1, &vm->parked_vcpu))
		return -1;
	virt_vcpu_get_state(&vm->vcpu, &state);
	vm->parked_vcpu_len = devstate_save(&record, 1, (uint8_t *)(uintptr_t)vm->parked_vcpu,
					    VCPU_STATE_RECORD_MAX);
	return 0;
}

static void drop_parked_vcpu(struct vm *vm)
{
	if (vm->parked_vcpu)
		page_alloc_free(vm->pages, vm->parked_vcpu, 1);
	vm->parked_vcpu = 0;
	vm->parked_vcpu_len = 0;
}

/* Returns -1 with the reason, the vCPU as it was, when the parked state is refused. */
static int unpark_vcpu(struct vm *vm, char *why, size_t why_size)
{
	struct vcpu_state state;
	struct devstate_error err;
	const struct devstate_instance record = { &vcpu_state_desc, &state, NULL };

	vcpu_state_power_on(&state);
	if (!devstate_load(&record, 1, (const uint8_t *)(uintptr_t)vm->parked_vcpu,
			   vm->parked_vcpu_len, &err) ||
	    virt_vcpu_set_state(&vm->vcpu, &state, &err)) {
		fmt_snprintf(why, why_size, "%s", err.text);
		return -1;
	}
	return 0;
}

/*
 * Guest time stands still while the VM is Paused or Saving (docs/time.md):
 * on Resume, and on any way out of them, it goes on from where it stopped.
 */
static void clock_follow_state(struct vm *vm, enum vm_state state)
{
	/* Saving too: a Save that fails goes on from where the guest stopped, as a Pause does. */
	if (state == VM_STATE_PAUSED || state == VM_STATE_SAVING) {
		vm_clock_stop(&vm->clock, rdtsc());
	} else if (vm_clock_stopped(&vm->clock)) {
		vm_clock_start(&vm->clock, rdtsc());
		apply_tsc_offset(vm);
	}
}

static void enter_state(struct vm *vm, enum vm_state state, const char *reason)
{
	clock_follow_state(vm, state);

	spin_lock(&events_lock);
	struct vm_event *e = &events[++event_seq % VM_EVENT_RING];
	*e = (struct vm_event){ .seq = event_seq, .vm_id = vm->id, .state = state };
	fmt_snprintf(e->vm_name, sizeof(e->vm_name), "%s", vm->cfg->name);
	if (reason)
		fmt_snprintf(e->reason, sizeof(e->reason), "%s", reason);
	spin_unlock(&events_lock);
	vm->state = state;
	if (reason && *reason)
		log_info("vm '%s': %s (%s)", vm->cfg->name, vm_state_name(state), reason);
	else
		log_info("vm '%s': %s", vm->cfg->name, vm_state_name(state));
}

/* A state of an operation's sequence; at TurningOff the devices' longest work is logged. */
static void enter_sequence_state(struct vm *vm, enum vm_state state, const char *reason)
{
	enter_state(vm, state, reason);
	if (state == VM_STATE_TURNING_OFF) {
		platform_report_device_work(vm);
		/* What a restore had not loaded yet is no longer the guest's RAM. */
		lazy_restore_drop(vm);
	}
}

/*
 * A VM that cannot start ends with the reason, like any other; one that
 * could not be restored stays Saved with its file, to be started again
 * or discarded.
 */
static int end_failed_start(struct vm *vm, bool restore, const char *why)
{
	enter_state(vm, VM_STATE_TURNING_OFF, NULL);
	enter_state(vm, VM_STATE_DELETE_MACHINE, NULL);
	enter_state(vm, VM_STATE_TURNED_OFF, why);
	if (restore)
		vm->state = VM_STATE_SAVED;
	return -1;
}

int vm_control(struct vm *vm, enum vm_op op, const char *reason)
{
	char why[VM_REASON_MAX];

	return vm_control_why(vm, op, reason, why, sizeof(why));
}

int vm_control_why(struct vm *vm, enum vm_op op, const char *reason, char *why,
		   size_t why_size)
{
	const struct vm_transition *t = vm_transition_for(op, vm->state);

	fmt_snprintf(why, why_size, "%s", "");
	if (!t) {
		fmt_snprintf(why, why_size, "%s is not valid in state %s", vm_op_name(op),
			     vm_state_name(vm->state));
		log_warn("vm '%s': %s refused in state %s", vm->cfg->name, vm_op_name(op),
			 vm_state_name(vm->state));
		return -1;
	}
	if (op == VM_OP_SAVE) {
		int rc = vm_save_begin(vm, why, why_size);
		if (rc) {
			log_err("vm '%s': Save refused: %s", vm->cfg->name, why);
			return rc;
		}
		/* The rest of its sequence when its last step is done (vm_save_poll). */
		vm->saving_from = vm->state;
		enter_state(vm, t->events[0], reason);
		return 0;
	}
	if (op == VM_OP_PAUSE && park_vcpu(vm)) {
		fmt_snprintf(why, why_size, "no memory to park its vCPU state in");
		log_err("vm '%s': Pause refused: no memory to park its vCPU state in",
			vm->cfg->name);
		return VM_CONTROL_NO_MEMORY;
	}
	bool restore = vm->state == VM_STATE_SAVED;
	/*
	 * A VM never runs while the store keeps a saved state of its name: at
	 * the next boot that state would come back, older than its disk. A
	 * fresh start drops one left there (refused at boot) first; a restore
	 * drops its own once it is loaded, below.
	 */
	if (op == VM_OP_STARTUP && !restore && store_host_drop_saved(vm->cfg->name, why, why_size)) {
		log_err("vm '%s': Startup refused: %s", vm->cfg->name, why);
		return -1;
	}
	if (op == VM_OP_RESUME && unpark_vcpu(vm, why, why_size)) {
		log_err("vm '%s': Resume refused, its parked vCPU state does not load: %s",
			vm->cfg->name, why);
		return -1;
	}
	for (unsigned i = 0; i < t->event_count; i++) {
		enum vm_state next = t->events[i];

		enter_sequence_state(vm, next, i + 1 == t->event_count ? reason : NULL);
		if (next == VM_STATE_TURNING_ON &&
		    power_on(vm, op == VM_OP_STARTUP, restore, why, why_size))
			return end_failed_start(vm, restore, why);
		if (next == VM_STATE_RESTORING) {
			if (vm_save_restore(vm, why, why_size) ||
			    store_host_drop_saved(vm->cfg->name, why, why_size)) {
				lazy_restore_drop(vm); /* the file stays the Saved VM's */
				return end_failed_start(vm, restore, why);
			}
			apply_tsc_offset(vm); /* the loaded clock's */
		}
	}
	if (vm->state != VM_STATE_PAUSED)
		drop_parked_vcpu(vm); /* resumed, or ended from Paused */
	if (restore)
		vm_save_restored(vm);
	return 0;
}

/* Save's sequence after Saving, its file made: the VM ends as a Saved one. */
static void end_save(struct vm *vm)
{
	const struct vm_transition *t = vm_transition_for(VM_OP_SAVE, vm->saving_from);

	for (unsigned i = 1; t && i < t->event_count; i++)
		enter_sequence_state(vm, t->events[i], NULL);
	drop_parked_vcpu(vm);
	vm->state = VM_STATE_SAVED; /* after its TurnedOff event, as the state table has it */
}

bool vm_save_poll(uint64_t budget_ns)
{
	char why[VM_REASON_MAX];
	bool more = false;

	for (unsigned i = 0; i < vm_count(); i++) {
		struct vm *vm = vm_by_index(i);
		if (!vm->save_job)
			continue;
		switch (vm_save_step(vm, budget_ns, why, sizeof(why))) {
		case VM_SAVE_MORE:
			more = true;
			break;
		case VM_SAVE_DONE:
			end_save(vm);
			break;
		case VM_SAVE_FAILED:
			/* Nothing was lost: the VM goes on from where it stopped. */
			log_err("vm '%s': Save failed: %s", vm->cfg->name, why);
			enter_state(vm, vm->saving_from, why);
			break;
		}
	}
	return more;
}

int vm_adopt_saved_state(struct vm *vm, const struct vm_saved *saved)
{
	if (vm->state != VM_STATE_TURNED_OFF || vm->saved.pages)
		return -1;
	vm->saved = *saved;
	vm->state = VM_STATE_SAVED;
	return 0;
}

int vm_discard_saved_state(struct vm *vm, char *why, size_t why_size)
{
	if (vm->state != VM_STATE_SAVED) {
		fmt_snprintf(why, why_size, "it is %s, not Saved", vm_state_name(vm->state));
		return -1;
	}
	if (store_host_drop_saved(vm->cfg->name, why, why_size))
		return -1;
	vm_save_discard(vm);
	enter_state(vm, VM_STATE_TURNED_OFF, "saved state discarded");
	return 0;
}

#define NO_BACKEND_MEMORY "no memory for the VM's VMCS and EPT tables"

static void *disk_chunk_alloc(void *ctx)
{
	uint64_t pa;

	if (page_alloc_alloc(ctx, DISK_CHUNK_SIZE / PAGE_SIZE, 1, &pa))
		return NULL;
	return (void *)(uintptr_t)pa;
}

static void disk_chunk_free(void *ctx, void *chunk)
{
	page_alloc_free(ctx, (uint64_t)(uintptr_t)chunk, DISK_CHUNK_SIZE / PAGE_SIZE);
}

static uint64_t disk_table_pages(const struct vm *vm)
{
	uint64_t bytes = disk_chunk_count(vm->disk.size) * sizeof(vm->disk.chunks[0]);
	return (bytes + PAGE_SIZE - 1) / PAGE_SIZE;
}

/*
 * The disk: a store object (docs/store.md), or the library's bytes under
 * copy-on-write chunks, of which only the table is allocated now. A
 * partial last sector cannot be addressed, so the disk is whole sectors.
 */
static int disk_create(struct vm *vm, struct page_alloc *pages, char *why, size_t why_size)
{
	const struct disk_chunk_alloc chunks = { disk_chunk_alloc, disk_chunk_free, pages };
	uint64_t size = vm->boot->disk.size & ~(uint64_t)(VIRTIO_BLK_SECTOR_SIZE - 1);
	uint64_t table;

	if (vm->cfg->store_disk[0]) {
		const struct disk_medium *medium;
		if (store_host_attach(vm->cfg->store_disk, vm->id, &medium, &size, why, why_size))
			return -1;
		disk_init_medium(&vm->disk, size & ~(uint64_t)(VIRTIO_BLK_SECTOR_SIZE - 1), medium);
		return 0;
	}
	vm->disk.size = size;
	if (!size)
		return 0;
	if (page_alloc_alloc(pages, disk_table_pages(vm), 1, &table)) {
		vm->disk.size = 0;
		fmt_snprintf(why, why_size, "no memory for the disk's chunk table");
		return -1;
	}
	disk_init(&vm->disk, (const uint8_t *)(uintptr_t)vm->boot->disk.base, size,
		  (uint8_t **)(uintptr_t)table, &chunks);
	return 0;
}

/* Gives the disk's copy-on-write chunks and its chunk table back, or its store object. */
static void disk_delete(struct vm *vm)
{
	if (vm->disk.medium) {
		store_host_detach(vm->id);
		return;
	}
	if (!vm->disk.size)
		return;
	log_info("vm '%s': %llu KiB of disk writes given back", vm->cfg->name,
		 (unsigned long long)(vm->disk.chunks_written * DISK_CHUNK_SIZE / 1024));
	disk_discard_writes(&vm->disk);
	page_alloc_free(vm->pages, (uint64_t)(uintptr_t)vm->disk.chunks, disk_table_pages(vm));
}

static int free_slot(void)
{
	for (unsigned id = 0; id < VM_MAX; id++)
		if (!slots[id])
			return (int)id;
	return -1;
}

struct vm *vm_create(const struct cfg_vm *cfg, const struct boot_vm *boot, enum vm_ram ram,
		     struct page_alloc *pages, char *why, size_t why_size)
{
	const uint64_t ram_pages = boot->ram_bytes / PAGE_SIZE;
	uint64_t free_before = pages->free_pages;
	uint64_t vm_pa, ram_pa = boot->ram_base;
	int id = free_slot();

	if (id < 0) {
		fmt_snprintf(why, why_size, "%u VMs exist, the most there can be", VM_MAX);
		return NULL;
	}
	if (page_alloc_alloc(pages, VM_STATE_PAGES, 1, &vm_pa)) {
		fmt_snprintf(why, why_size, "no memory for the VM's state");
		return NULL;
	}
	if (ram == VM_RAM_FROM_POOL &&
	    page_alloc_alloc(pages, ram_pages, GUEST_RAM_ALIGN_PAGES, &ram_pa)) {
		fmt_snprintf(why, why_size, "no %llu MiB block of free memory",
			     (unsigned long long)(boot->ram_bytes >> 20));
		goto free_state;
	}
	struct vm *vm = (struct vm *)(uintptr_t)vm_pa;
	*vm = (struct vm){
		.id = (unsigned)id,
		.state = VM_STATE_TURNED_OFF,
		.own_cfg = *cfg,
		.own_boot = *boot,
		.ram_from_pool = ram == VM_RAM_FROM_POOL,
		.pages = pages,
	};
	vm->own_boot.ram_base = ram_pa;
	vm->cfg = &vm->own_cfg;
	vm->boot = &vm->own_boot;
	vm->vcpu.vm = vm;
	/* Guest time is read only while the VM runs; this makes it defined before. */
	vm_clock_init(&vm->clock, clock_tsc_hz(), rdtsc());
	if (attach_devices(vm) || virt_vm_init(vm, pages))
		goto no_backend_memory;
	if (virt_vcpu_init(&vm->vcpu, pages)) {
		fmt_snprintf(why, why_size, NO_BACKEND_MEMORY);
		goto destroy_vm_backend;
	}
	if (disk_create(vm, pages, why, why_size))
		goto destroy_vcpu_backend;
	slots[id] = vm;
	vms[vm_total++] = vm;

	/* Everything the hypervisor holds for this VM beyond its RAM. */
	uint64_t pool_ram = vm->ram_from_pool ? ram_pages : 0;
	uint64_t overhead = (free_before - pages->free_pages - pool_ram) * PAGE_SIZE +
			    virt_vm_state_bytes();
	char disk[96] = "";
	if (vm->disk.medium)
		fmt_snprintf(disk, sizeof(disk), "; its %llu-KiB disk is store object '%s'",
			     (unsigned long long)(vm->disk.size / 1024), vm->cfg->store_disk);
	else if (vm->disk.size)
		fmt_snprintf(disk, sizeof(disk), "; its %llu-KiB disk is copy-on-write: 64 KiB "
			     "more per chunk it writes", (unsigned long long)(vm->disk.size / 1024));
	log_info("vm '%s': %llu MiB RAM, %llu bytes of hypervisor memory (VMCS, EPT, "
		 "state%s)%s", vm->cfg->name, (unsigned long long)(vm->boot->ram_bytes >> 20),
		 (unsigned long long)overhead,
		 vm->disk.size && !vm->disk.medium ? ", disk chunk table" : "", disk);
	return vm;

destroy_vcpu_backend:
	virt_vcpu_destroy(&vm->vcpu, pages);
destroy_vm_backend:
	virt_vm_destroy(vm, pages);
	goto free_ram;
no_backend_memory:
	fmt_snprintf(why, why_size, NO_BACKEND_MEMORY);
free_ram:
	if (ram == VM_RAM_FROM_POOL)
		page_alloc_free(pages, ram_pa, ram_pages);
free_state:
	page_alloc_free(pages, vm_pa, VM_STATE_PAGES);
	return NULL;
}

void vm_delete(struct vm *vm)
{
	struct page_alloc *pages = vm->pages;

	/* Subscribers see it go: the last event of its life (docs/protocol.md). */
	enter_state(vm, VM_STATE_INVALID, NULL);
	vm_save_abandon(vm); /* Delete wants TurnedOff, so no Save is under way; were one, its pages come back */
	sched_forget_vcpu(&vm->vcpu);
	nic_remove_all(vm->id);
	unsigned index = 0;
	while (vms[index] != vm)
		index++;
	memmove(&vms[index], &vms[index + 1], (vm_total - index - 1) * sizeof(vms[0]));
	vms[--vm_total] = NULL;
	slots[vm->id] = NULL;

	vm_save_discard(vm);
	char why[160];
	if (store_host_drop_saved(vm->cfg->name, why, sizeof(why)))
		log_err("vm '%s': deleted, but %s (vmm-store delete)", vm->cfg->name, why);
	disk_delete(vm);
	virt_vcpu_destroy(&vm->vcpu, pages);
	virt_vm_destroy(vm, pages);
	if (vm->ram_from_pool)
		page_alloc_free(pages, vm->boot->ram_base, vm->boot->ram_bytes / PAGE_SIZE);
	page_alloc_free(pages, (uint64_t)(uintptr_t)vm, VM_STATE_PAGES);
}

void vm_create_all(const struct boot_info *bi)
{
	char why[VM_REASON_MAX];

	for (unsigned i = 0; i < bi->config->vm_count && i < VM_MAX; i++)
		if (!vm_create(&bi->config->vms[i], &bi->vms[i], VM_RAM_RESERVED, bi->host_pages,
			       why, sizeof(why)))
			log_err("vm '%s': %s; it is left out", bi->config->vms[i].name, why);
}

void vm_start_autostart(void)
{
	/*
	 * The management VM first: it owns the line the operator watches. A
	 * VM saved before the host's reboot (from the store) is restored.
	 */
	for (unsigned pass = 0; pass < 2; pass++)
		for (unsigned i = 0; i < vm_total; i++)
			if (vms[i]->cfg->autostart && !vms[i]->stored_state_refused &&
			    (vms[i]->state == VM_STATE_TURNED_OFF || vms[i]->state == VM_STATE_SAVED) &&
			    (vms[i]->cfg->role == CFG_ROLE_MANAGEMENT) == (pass == 0))
				vm_control(vms[i], VM_OP_STARTUP, NULL);
}
