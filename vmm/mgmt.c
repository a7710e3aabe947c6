#include "vmm/mgmt.h"

#include "boot/boot_info.h"
#include "vmm/clock.h"
#include "vmm/control.h"
#include "abi/hypercall.h"
#include "vmm/log.h"
#include "vmm/uart16550.h"
#include "vmm/vm.h"
#include "x86/cpu.h"

#include <string.h>

/*
 * Receive queue between the UART and the management VM: a second of
 * input at 115200 baud, so a management VM that is being restarted loses
 * nothing a tool would not retry anyway.
 */
#define RX_QUEUE 16384
/* 16 bytes at 115200 baud 8N1 take 1.39 ms: drain at least every 1 ms. */
#define DRAIN_PER_SECOND 1000
#define EVENTS_PER_CALL 16
/* Watchdog: first restart after 1 s, doubling to 60 s while it keeps dying. */
#define RESTART_FIRST_MS 1000
#define RESTART_MAX_MS 60000
#define HEALTHY_MS 60000

static struct vm *mgmt_vm;
static const struct cfg_vm *mgmt_cfg;
static uint8_t rx[RX_QUEUE];
static unsigned rx_head, rx_len;
static uint64_t rx_dropped, rx_overruns;
static uint32_t denied[VM_MAX];
static uint32_t denied_total;
static uint64_t events_notified;
static bool agent_activity;

/*
 * HC_CONTROL is executed between vCPU runs (vmm/control.h says why), and
 * its answer may come later still (a pending request): the request waits
 * here QUEUED, then is EXECUTING until vmm/control.c answers it.
 */
static enum { CONTROL_IDLE, CONTROL_QUEUED, CONTROL_EXECUTING } control_stage;
static struct hc_control request;
static uint64_t request_gpa;
/* Numbers the requests: an answer to one from before a restart is dropped. */
static uint32_t request_id;
static bool answered;

static void control_answered(uint32_t id, uint16_t error, const uint8_t *payload, size_t len);

/* The management VM administers the machine: every request is open to it. */
static struct control_caller management_caller = {
	.privilege = CONTROL_PRIV_ADMIN,
	.answer = control_answered,
};

static uint64_t restart_at_ns, restart_delay_ms = RESTART_FIRST_MS, running_since_ns;

void mgmt_init(const struct boot_info *bi)
{
	(void)bi;
	for (unsigned i = 0; i < vm_count(); i++) {
		struct vm *vm = vm_by_index(i);
		if (vm->cfg->role == CFG_ROLE_MANAGEMENT) {
			mgmt_vm = vm;
			mgmt_cfg = vm->cfg;
			management_caller.vm = vm;
		}
	}
	if (mgmt_vm)
		log_info("mgmt: '%s' is the management VM; it owns the serial line%s",
			 mgmt_cfg->name, mgmt_cfg->auth_key_len ? " (authentication on)" : "");
}

bool mgmt_line_active(void)
{
	return mgmt_vm != NULL;
}

uint64_t mgmt_slice_limit(uint64_t slice_tsc)
{
	uint64_t limit = clock_tsc_hz() / DRAIN_PER_SECOND;

	return mgmt_vm && slice_tsc > limit ? limit : slice_tsc;
}

uint32_t mgmt_denied(unsigned vm_id)
{
	return vm_id < VM_MAX ? denied[vm_id] : 0;
}

uint32_t mgmt_denied_total(void)
{
	return denied_total;
}

/* Repeated complaints are logged at 1, 2, 4, 8, ...: a loop cannot flood the line. */
static bool worth_logging(uint64_t count)
{
	return !(count & (count - 1));
}

static bool guest_range(const struct vm *vm, uint64_t gpa, uint64_t len)
{
	return vm_gpa_is_ram(vm, gpa, len);
}

bool mgmt_is_management_vm(const struct vm *vm)
{
	return vm == mgmt_vm;
}

long mgmt_refuse(const struct vm *vm, uint64_t nr)
{
	uint32_t n = ++denied[vm->id % VM_MAX];

	denied_total++;
	if (worth_logging(n))
		log_warn("vm '%s': control hypercall %llu refused: not the management VM "
			 "(%u attempt(s))", vm->cfg->name, (unsigned long long)nr, n);
	return HC_EPERM;
}

long mgmt_hc_control(struct vcpu *vcpu, uint64_t gpa, uint64_t unused1, uint64_t unused2)
{
	struct vm *vm = vcpu->vm;

	(void)unused1;
	(void)unused2;
	if (control_stage != CONTROL_IDLE)
		return HC_EAGAIN;
	if (!guest_range(vm, gpa, sizeof(request)))
		return HC_EFAULT;
	/* Copy once: the guest may change the buffer while we read it. */
	memcpy(&request, vm_gpa_to_host(vm, gpa, sizeof(request)), sizeof(request));
	if (request.version != HC_CONTROL_VERSION || request.length > HC_CONTROL_PAYLOAD)
		return HC_EINVAL;
	request_gpa = gpa;
	control_stage = CONTROL_QUEUED;
	return 0;
}

long mgmt_hc_line_write(struct vcpu *vcpu, uint64_t gpa, uint64_t len, uint64_t kind)
{
	struct vm *vm = vcpu->vm;
	char buf[HC_LINE_MAX];

	if (len > HC_LINE_MAX || (kind != HC_LINE_TEXT && kind != HC_LINE_FRAME))
		return HC_EINVAL;
	if (!guest_range(vm, gpa, len))
		return HC_EFAULT;
	memcpy(buf, vm_gpa_to_host(vm, gpa, len), len);
	/* A frame carries both delimiters, or the line would glue it to text. */
	if (kind == HC_LINE_FRAME && (len < 2 || buf[0] || buf[len - 1]))
		return HC_EINVAL;
	if (log_put_chunk(buf, len, kind == HC_LINE_FRAME))
		return HC_EAGAIN;
	return (long)len;
}

long mgmt_hc_line_read(struct vcpu *vcpu, uint64_t gpa, uint64_t cap, uint64_t unused)
{
	struct vm *vm = vcpu->vm;

	(void)unused;
	if (cap > RX_QUEUE)
		cap = RX_QUEUE;
	if (!guest_range(vm, gpa, cap))
		return HC_EFAULT;
	uint8_t *out = vm_gpa_to_host(vm, gpa, cap);
	unsigned n = 0;
	while (n < cap && rx_len) {
		out[n++] = rx[rx_head];
		rx_head = (rx_head + 1) % RX_QUEUE;
		rx_len--;
	}
	return n;
}

long mgmt_hc_events(struct vcpu *vcpu, uint64_t after, uint64_t gpa, uint64_t max)
{
	struct vm *vm = vcpu->vm;
	struct vm_event e[EVENTS_PER_CALL];
	struct hc_event out;

	if (max > EVENTS_PER_CALL)
		max = EVENTS_PER_CALL;
	if (!guest_range(vm, gpa, max * sizeof(out)))
		return HC_EFAULT;
	unsigned n = vm_events_since(after, e, (unsigned)max);
	for (unsigned i = 0; i < n; i++) {
		out = (struct hc_event){ .seq = e[i].seq, .vm_id = e[i].vm_id,
					 .state = (uint8_t)e[i].state };
		_Static_assert(sizeof(out.vm) == sizeof(e[i].vm_name), "one name size");
		memcpy(out.vm, e[i].vm_name, sizeof(out.vm));
		memcpy(out.reason, e[i].reason, sizeof(out.reason));
		out.vm[sizeof(out.vm) - 1] = out.reason[sizeof(out.reason) - 1] = '\0';
		memcpy((struct hc_event *)vm_gpa_to_host(vm, gpa, max * sizeof(out)) + i, &out,
		       sizeof(out));
	}
	return n;
}

long mgmt_hc_info(struct vcpu *vcpu, uint64_t gpa, uint64_t unused1, uint64_t unused2)
{
	struct vm *vm = vcpu->vm;
	struct hc_mgmt_info info = { .tsc_hz = clock_tsc_hz(),
				     .auth_key_len = mgmt_cfg->auth_key_len };

	(void)unused1;
	(void)unused2;
	if (!guest_range(vm, gpa, sizeof(info)))
		return HC_EFAULT;
	memcpy(info.auth_key, mgmt_cfg->auth_key, info.auth_key_len);
	memcpy(vm_gpa_to_host(vm, gpa, sizeof(info)), &info, sizeof(info));
	return 0;
}

/* The VM of that name, if it exists; ids are reused, names are what the caller knows. */
static struct vm *vm_of_name(const char *name)
{
	for (unsigned i = 0; i < vm_count(); i++) {
		struct vm *vm = vm_by_index(i);
		if (!strcmp(vm->cfg->name, name))
			return vm;
	}
	return NULL;
}

static uint32_t agent_status(const struct vm *vm)
{
	const struct platform *p = &vm->platform;

	if (vm->state != VM_STATE_RUNNING)
		return 0;
	if (!p->agent_present)
		return HC_AGENT_RUNNING;
	return HC_AGENT_RUNNING | HC_AGENT_PORT | (p->agent.port_ready ? HC_AGENT_READY : 0) |
	       (p->agent.guest_open ? HC_AGENT_OPEN : 0);
}

_Static_assert(HC_AGENT_IO_MAX >= VIRTIO_CONSOLE_WRITE_MAX,
	       "a read with all the room takes any write the port accepts");

long mgmt_hc_agent(struct vcpu *vcpu, uint64_t gpa, uint64_t write_gpa, uint64_t read_gpa)
{
	struct vm *caller = vcpu->vm;
	struct hc_agent a;
	struct vm *vm;

	if (!guest_range(caller, gpa, sizeof(a)))
		return HC_EFAULT;
	memcpy(&a, vm_gpa_to_host(caller, gpa, sizeof(a)), sizeof(a));
	if (a.write_len > HC_AGENT_IO_MAX || a.read_cap > HC_AGENT_IO_MAX ||
	    a.vm[sizeof(a.vm) - 1] != '\0')
		return HC_EINVAL;
	if (!guest_range(caller, write_gpa, a.write_len) || !guest_range(caller, read_gpa, a.read_cap))
		return HC_EFAULT;
	vm = vm_of_name(a.vm);
	if (!vm || vm == caller)
		return HC_ENOENT;
	a.written = a.read = 0;
	a.status = agent_status(vm);
	if (a.status & HC_AGENT_PORT) {
		/*
		 * Straight between the two guests' memories: the guest's own
		 * rings are the queues, so a guest that floods its port only
		 * fills its own ring. The device reads each descriptor once.
		 */
		struct virtio_console *con = &vm->platform.agent;
		const uint8_t *give = vm_gpa_to_host(caller, write_gpa, a.write_len);
		uint8_t *take = vm_gpa_to_host(caller, read_gpa, a.read_cap);
		a.written = (uint32_t)virtio_console_give(con, give, a.write_len);
		a.read = (uint32_t)virtio_console_take(con, take, a.read_cap);
		a.status = agent_status(vm);
	}
	memcpy(vm_gpa_to_host(caller, gpa, sizeof(a)), &a, sizeof(a));
	return 0;
}

void mgmt_agent_notify(void *ctx)
{
	(void)ctx;
	agent_activity = true;
}

static void drain_uart(void)
{
	uint8_t buf[64];
	bool overrun;
	unsigned n = uart_rx(log_uart(), buf, sizeof(buf), &overrun);

	if (overrun && worth_logging(++rx_overruns))
		log_warn("mgmt: the UART's receive FIFO overflowed: input was lost (%llu time(s))",
			 (unsigned long long)rx_overruns);
	for (unsigned i = 0; i < n; i++) {
		if (rx_len == RX_QUEUE) {
			if (worth_logging(++rx_dropped))
				log_warn("mgmt: line input dropped, the management VM is not reading "
					 "(%llu byte(s))", (unsigned long long)rx_dropped);
			continue;
		}
		rx[(rx_head + rx_len++) % RX_QUEUE] = buf[i];
	}
}

static void control_answered(uint32_t id, uint16_t error, const uint8_t *payload, size_t len)
{
	/* A management VM that was restarted meanwhile no longer waits for it. */
	if (control_stage != CONTROL_EXECUTING || id != request_id)
		return;
	control_stage = CONTROL_IDLE;
	answered = true;
	if (mgmt_vm->state != VM_STATE_RUNNING || !guest_range(mgmt_vm, request_gpa, sizeof(request)))
		return;
	struct hc_control *out = vm_gpa_to_host(mgmt_vm, request_gpa, sizeof(request));
	if (len > sizeof(out->payload))
		len = sizeof(out->payload);
	memcpy(out->payload, payload, len);
	out->length = (uint16_t)len;
	/* error last: it is what the management VM waits on. */
	__atomic_store_n(&out->error, error, __ATOMIC_RELEASE);
}

static void execute_control(void)
{
	control_stage = CONTROL_EXECUTING;
	control_execute(&management_caller, ++request_id, request.request, request.payload,
			request.length);
}

static void watchdog(void)
{
	uint64_t now = clock_ns();

	if (mgmt_vm->state == VM_STATE_RUNNING || mgmt_vm->state == VM_STATE_PAUSED) {
		if (running_since_ns && now - running_since_ns > HEALTHY_MS * 1000000ULL)
			restart_delay_ms = RESTART_FIRST_MS;
		restart_at_ns = 0;
		return;
	}
	if (mgmt_vm->state != VM_STATE_TURNED_OFF)
		return;
	if (!restart_at_ns) {
		restart_at_ns = now + restart_delay_ms * 1000000ULL;
		log_err("mgmt: the management VM '%s' is down; restarting it in %llu ms",
			mgmt_cfg->name, (unsigned long long)restart_delay_ms);
		restart_delay_ms = restart_delay_ms * 2 > RESTART_MAX_MS ? RESTART_MAX_MS
									: restart_delay_ms * 2;
		return;
	}
	if (now < restart_at_ns)
		return;
	restart_at_ns = 0;
	control_stage = CONTROL_IDLE;
	running_since_ns = now;
	vm_control(mgmt_vm, VM_OP_STARTUP, "restarted by the watchdog");
}

static bool wake(void)
{
	struct vcpu *v = &mgmt_vm->vcpu;

	if (mgmt_vm->state != VM_STATE_RUNNING || !v->halted)
		return false;
	v->halted = false;
	return true;
}

bool mgmt_poll(void)
{
	bool work = false;

	control_poll();
	if (!mgmt_vm)
		return false;
	drain_uart();
	if (control_stage == CONTROL_QUEUED)
		execute_control();
	if (answered || agent_activity) {
		answered = agent_activity = false;
		work = true;
	}
	uint64_t seq = vm_event_seq();
	if (seq != events_notified) {
		events_notified = seq;
		work = true;
	}
	watchdog();
	return (work || rx_len) && wake();
}
