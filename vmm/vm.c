#include "vmm/vm.h"

#include "lib/fmt.h"
#include "vmm/guest_boot.h"
#include "vmm/log.h"
#include "vmm/page_alloc.h"
#include "vmm/virt.h"

#include <stdarg.h>
#include <string.h>

#define FXSAVE_FCW 0
#define FXSAVE_MXCSR 24
#define FCW_RESET 0x0040
#define MXCSR_RESET 0x1f80
#define DR6_RESET 0xffff0ff0ULL

static struct vm vms[VM_MAX];
static unsigned vm_total;
static struct vm_event events[VM_EVENT_RING];
static uint64_t event_seq;

unsigned vm_events_since(uint64_t after, struct vm_event *out, unsigned max)
{
	uint64_t first = event_seq > VM_EVENT_RING ? event_seq - VM_EVENT_RING + 1 : 1;
	unsigned n = 0;

	if (after + 1 > first)
		first = after + 1;
	for (uint64_t seq = first; seq <= event_seq && n < max; seq++)
		out[n++] = events[seq % VM_EVENT_RING];
	return n;
}

unsigned vm_count(void)
{
	return vm_total;
}

struct vm *vm_by_index(unsigned index)
{
	return index < vm_total ? &vms[index] : NULL;
}

bool vm_gpa_is_ram(const struct vm *vm, uint64_t gpa, uint64_t len)
{
	return gpa <= vm->boot->ram_bytes && len <= vm->boot->ram_bytes - gpa;
}

void *vm_gpa_to_host(const struct vm *vm, uint64_t gpa)
{
	return (void *)(uintptr_t)(vm->boot->ram_base + gpa);
}

void vm_request_end(struct vm *vm, const char *format, ...)
{
	va_list ap;

	/* The first reason is the cause; later ones are consequences. */
	if (vm->end_pending)
		return;
	va_start(ap, format);
	fmt_vsnprintf(vm->end_reason, sizeof(vm->end_reason), format, ap);
	va_end(ap);
	vm->end_pending = true;
}

void vm_console_putc(struct vm *vm, uint8_t byte)
{
	console_ring_write(&vm->console, &byte, 1);
	if (byte == '\n' || vm->console_len == sizeof(vm->console_line) - 1) {
		vm->console_line[vm->console_len] = '\0';
		log_info("[%s] %s", vm->cfg->name, vm->console_line);
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

static void com1_tx(void *ctx, uint8_t byte)
{
	vm_console_putc(ctx, byte);
}

static uint32_t com1_read(void *ctx, uint16_t offset, unsigned size)
{
	(void)size; /* the UART is byte-wide; wider reads see it in the low byte */
	return vuart_read(&((struct vm *)ctx)->com1, offset);
}

static void com1_write(void *ctx, uint16_t offset, unsigned size, uint32_t value)
{
	(void)size;
	vuart_write(&((struct vm *)ctx)->com1, offset, (uint8_t)value);
}

static void debug_console_write(void *ctx, uint16_t offset, unsigned size, uint32_t value)
{
	(void)offset;
	(void)size;
	vm_console_putc(ctx, (uint8_t)value);
}

static void debug_exit_write(void *ctx, uint16_t offset, unsigned size, uint32_t value)
{
	(void)offset;
	(void)size;
	vm_request_end(ctx, "guest exited with status %u", value & 0xff);
}

static int attach_devices(struct vm *vm)
{
	const struct port_device devices[] = {
		{ .base = PORT_COM1, .count = VUART_PORTS, .name = "com1", .read = com1_read,
		  .write = com1_write, .ctx = vm },
		{ .base = PORT_DEBUG_CONSOLE, .count = 1, .name = "debug-console",
		  .write = debug_console_write, .ctx = vm },
		{ .base = PORT_DEBUG_EXIT, .count = 1, .name = "debug-exit",
		  .write = debug_exit_write, .ctx = vm },
	};

	for (unsigned i = 0; i < sizeof(devices) / sizeof(devices[0]); i++)
		if (port_bus_add(&vm->ports, &devices[i]))
			return -1;
	return 0;
}

/* TurningOn: fresh RAM, the pristine image, the vCPU at its boot state. */
static int power_on(struct vm *vm, char *why, size_t why_size)
{
	struct vcpu_boot_state state;

	if (guest_boot_prepare(vm, &state, why, why_size))
		return -1;
	struct vcpu *vcpu = &vm->vcpu;
	vcpu->regs = (struct guest_regs){ 0 };
	vcpu->regs.rsi = state.rsi;
	vcpu->regs.rdi = state.rdi;
	/* x87 and SSE power-on state (SDM Vol. 3A, table 9-1), in FXSAVE layout. */
	memset(vcpu->fpu, 0, sizeof(vcpu->fpu));
	vcpu->fpu[FXSAVE_FCW] = FCW_RESET & 0xff;
	vcpu->fpu[FXSAVE_MXCSR] = MXCSR_RESET & 0xff;
	vcpu->fpu[FXSAVE_MXCSR + 1] = MXCSR_RESET >> 8;
	vcpu->fpu_fresh = true;
	memset(vcpu->dr, 0, sizeof(vcpu->dr));
	vcpu->dr6 = DR6_RESET;
	vcpu->tpr = 0;
	vcpu->upcall_vector = 0;
	vcpu->upcall_pending = false;
	vcpu->timer_deadline = 0;
	vcpu->halted = false;
	vm->end_pending = false;
	vm->console_len = 0;
	vuart_init(&vm->com1, com1_tx, vm);
	if (virt_vcpu_reset(&vm->vcpu, &state)) {
		fmt_snprintf(why, why_size, "the CPU refused the initial register state");
		return -1;
	}
	return 0;
}

static void enter_state(struct vm *vm, enum vm_state state, const char *reason)
{
	struct vm_event *e = &events[++event_seq % VM_EVENT_RING];

	*e = (struct vm_event){ .seq = event_seq, .vm_id = vm->id, .state = state };
	if (reason)
		fmt_snprintf(e->reason, sizeof(e->reason), "%s", reason);
	vm->state = state;
	if (reason && *reason)
		log_info("vm '%s': %s (%s)", vm->cfg->name, vm_state_name(state), reason);
	else
		log_info("vm '%s': %s", vm->cfg->name, vm_state_name(state));
}

int vm_control(struct vm *vm, enum vm_op op, const char *reason)
{
	const struct vm_transition *t = vm_transition_for(op, vm->state);
	char why[VM_REASON_MAX];

	if (!t) {
		log_warn("vm '%s': %s refused in state %s", vm->cfg->name, vm_op_name(op),
			 vm_state_name(vm->state));
		return -1;
	}
	if (op == VM_OP_SAVE || vm->state == VM_STATE_SAVED) {
		log_warn("vm '%s': %s: saved states are not supported yet", vm->cfg->name,
			 vm_op_name(op));
		return -1;
	}
	for (unsigned i = 0; i < t->event_count; i++) {
		enum vm_state next = t->events[i];

		enter_state(vm, next, i + 1 == t->event_count ? reason : NULL);
		if (next == VM_STATE_TURNING_ON && power_on(vm, why, sizeof(why))) {
			/* A VM that cannot start ends with the reason, like any other. */
			enter_state(vm, VM_STATE_TURNING_OFF, NULL);
			enter_state(vm, VM_STATE_DELETE_MACHINE, NULL);
			enter_state(vm, VM_STATE_TURNED_OFF, why);
			return -1;
		}
	}
	return 0;
}

void vm_create_all(const struct boot_info *bi)
{
	for (unsigned i = 0; i < bi->config->vm_count && i < VM_MAX; i++) {
		struct vm *vm = &vms[vm_total];
		uint64_t free_before = bi->host_pages->free_pages;

		*vm = (struct vm){
			.id = vm_total,
			.cfg = &bi->config->vms[i],
			.boot = &bi->vms[i],
			.state = VM_STATE_TURNED_OFF,
		};
		vm->vcpu.vm = vm;
		if (attach_devices(vm) || virt_vm_init(vm, bi->host_pages) ||
		    virt_vcpu_init(&vm->vcpu, bi->host_pages)) {
			log_err("vm '%s': no memory for its VMCS and EPT tables; it cannot run",
				vm->cfg->name);
			vm->state = VM_STATE_INVALID;
		}
		/* Everything the hypervisor holds for this VM beyond its RAM. */
		uint64_t overhead = (free_before - bi->host_pages->free_pages) * PAGE_SIZE +
				    sizeof(*vm) + virt_vm_state_bytes();
		log_info("vm '%s': %llu MiB RAM, %llu bytes of hypervisor memory (VMCS, EPT, "
			 "state)", vm->cfg->name,
			 (unsigned long long)(vm->boot->ram_bytes >> 20),
			 (unsigned long long)overhead);
		vm_total++;
	}
	for (unsigned i = 0; i < vm_total; i++)
		if (vms[i].cfg->autostart && vms[i].state == VM_STATE_TURNED_OFF)
			vm_control(&vms[i], VM_OP_STARTUP, NULL);
}
