/*
 * The hypercalls of include/abi/hypercall.h: one table, with who may make each
 * call (like ACRN's hc_dispatch_table). The calls of every guest are
 * here; the management VM's own are in vmm/mgmt.c.
 */
#include "vmm/clock.h"
#include "abi/hypercall.h"
#include "vmm/log.h"
#include "vmm/mgmt.h"
#include "vmm/sched_policy.h"
#include "vmm/vcpu.h"
#include "x86/cpu.h"

#include <string.h>

enum hypercall_caller {
	HC_ANY_GUEST,
	/* Any other VM is refused with HC_EPERM, and the attempt counted (mgmt_refuse). */
	HC_MANAGEMENT_VM,
};

/* RBX, RCX, RDX of the VMCALL; the result goes to RAX. */
typedef long hypercall_fn(struct vcpu *vcpu, uint64_t rbx, uint64_t rcx, uint64_t rdx);

struct hypercall_type {
	hypercall_fn *handler;
	enum hypercall_caller caller;
};

static long version(struct vcpu *vcpu, uint64_t unused1, uint64_t unused2, uint64_t unused3)
{
	(void)vcpu;
	(void)unused1;
	(void)unused2;
	(void)unused3;
	return HYPERCALL_ABI_VERSION;
}

static long console_write(struct vcpu *vcpu, uint64_t gpa, uint64_t len, uint64_t unused)
{
	(void)unused;
	struct vm *vm = vcpu->vm;

	if (len > 256)
		return HC_EINVAL;
	if (!vm_gpa_is_ram(vm, gpa, len))
		return HC_EFAULT;
	/* Copy once: the guest may change the buffer while we read it. */
	char buf[256];
	memcpy(buf, vm_gpa_to_host(vm, gpa, len), len);
	for (uint64_t i = 0; i < len; i++)
		vm_console_putc(vm, (uint8_t)buf[i]);
	return (long)len;
}

#define FIRST_INTERRUPT_VECTOR 32

static long set_upcall_vector(struct vcpu *vcpu, uint64_t vector, uint64_t unused1, uint64_t unused2)
{
	(void)unused1;
	(void)unused2;
	if (vector != 0 && (vector < FIRST_INTERRUPT_VECTOR || vector > 255))
		return HC_EINVAL;
	vcpu->upcall_vector = (uint8_t)vector;
	if (!vector) {
		vcpu->upcall_pending = false;
		vcpu->timer_deadline = 0;
	}
	return 0;
}

static uint64_t timer_floor_tsc(void)
{
	static uint64_t floor;

	if (!floor)
		floor = clock_ns_to_tsc(SCHED_TIMER_FLOOR_NS) - clock_ns_to_tsc(0);
	return floor;
}

static long set_timer(struct vcpu *vcpu, uint64_t deadline, uint64_t unused1, uint64_t unused2)
{
	(void)unused1;
	(void)unused2;
	if (deadline && !vcpu->upcall_vector)
		return HC_EINVAL;
	/*
	 * The deadline is the guest's TSC (its RDTSC), as vcpu->timer_deadline is.
	 * One in the past would wake a HLT at once, every time: floored.
	 */
	vcpu->timer_deadline = sched_timer_deadline(deadline, vm_now(vcpu->vm).tsc,
						    timer_floor_tsc());
	vcpu->timers_moved = true;
	return 0;
}

static const struct hypercall_type hypercalls[HC_COUNT] = {
	[HC_VERSION] = { version, HC_ANY_GUEST },
	[HC_CONSOLE_WRITE] = { console_write, HC_ANY_GUEST },
	[HC_SET_UPCALL_VECTOR] = { set_upcall_vector, HC_ANY_GUEST },
	[HC_SET_TIMER] = { set_timer, HC_ANY_GUEST },
	[HC_CONTROL] = { mgmt_hc_control, HC_MANAGEMENT_VM },
	[HC_LINE_WRITE] = { mgmt_hc_line_write, HC_MANAGEMENT_VM },
	[HC_LINE_READ] = { mgmt_hc_line_read, HC_MANAGEMENT_VM },
	[HC_EVENTS] = { mgmt_hc_events, HC_MANAGEMENT_VM },
	[HC_MGMT_INFO] = { mgmt_hc_info, HC_MANAGEMENT_VM },
	[HC_AGENT] = { mgmt_hc_agent, HC_MANAGEMENT_VM },
};

void vcpu_hypercall(struct vcpu *vcpu, unsigned cpl)
{
	struct guest_regs *r = &vcpu->regs;
	const uint64_t nr = index_nospec(r->rax, HC_COUNT);
	long ret;

	if (cpl != 0)
		ret = HC_EPERM;
	/* A number the table skips (none today) must not call through NULL. */
	else if (r->rax >= HC_COUNT || !hypercalls[nr].handler) {
		log_debug("vm '%s': unknown hypercall %llu", vcpu->vm->cfg->name,
			  (unsigned long long)r->rax);
		ret = HC_ENOSYS;
	} else if (hypercalls[nr].caller == HC_MANAGEMENT_VM && !mgmt_is_management_vm(vcpu->vm))
		ret = mgmt_refuse(vcpu->vm, nr);
	else
		ret = hypercalls[nr].handler(vcpu, r->rbx, r->rcx, r->rdx);
	r->rax = (uint64_t)ret;
}
