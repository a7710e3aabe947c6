#include "vmm/sched.h"

#include "vmm/clock.h"
#include "vmm/control.h"
#include "vmm/host_irq.h"
#include "vmm/lazy_restore.h"
#include "vmm/log.h"
#include "vmm/mce.h"
#include "vmm/nmi.h"
#include "vmm/mgmt.h"
#include "vmm/percpu.h"
#include "vmm/sched_policy.h"
#include "vmm/speculation.h"
#include "vmm/storage/store_host.h"
#include "vmm/virt.h"
#include "vmm/vm.h"
#include "x86/cpu.h"
#include "x86/msr.h"

/* The scheduler's part of a CPU (its vCPU queue, by this_cpu()->index). */
struct sched_cpu {
	struct sched_queue queue;
	struct sched_slice_limits limits;
	/* Each VM's next timer event (host TSC, 0: none), by VM id. */
	uint64_t next_event[VM_MAX];
	uint64_t idle_tsc; /* time with nothing to run */
};

static struct sched_cpu sched_cpus[VMM_CPUS];

static bool runnable(const struct vm *vm)
{
	return vm->state == VM_STATE_RUNNING && !vm->vcpu.halted;
}

/* *count: how many vCPUs are runnable (they share the period, sched_slice). */
static struct vcpu *pick_next(struct sched_cpu *cpu, unsigned *count)
{
	struct sched_entity *entities[VM_MAX];
	unsigned n = vm_count();

	*count = 0;
	for (unsigned i = 0; i < n; i++) {
		struct vm *vm = vm_by_index(i);
		vm->vcpu.sched.runnable = runnable(vm);
		*count += vm->vcpu.sched.runnable;
		entities[i] = &vm->vcpu.sched;
	}
	int picked = sched_pick(&cpu->queue, entities, n);
	return picked < 0 ? NULL : &vm_by_index((unsigned)picked)->vcpu;
}

/*
 * The owner's registers back into its struct, unless its struct holds a
 * newer state (a reset or a loaded state) the CPU has not taken yet.
 */
static void save_debug_registers(struct vcpu *owner)
{
	owner->dr[0] = read_dr0();
	owner->dr[1] = read_dr1();
	owner->dr[2] = read_dr2();
	owner->dr[3] = read_dr3();
	owner->dr6 = read_dr6();
}

void sched_save_cpu_state(struct vcpu *vcpu)
{
	if (this_cpu()->current != vcpu || vcpu->fpu_fresh)
		return;
	xstate_save(vcpu);
	save_debug_registers(vcpu);
}

/*
 * The hypervisor itself never uses x87/SSE/AVX (-mgeneral-regs-only) or the
 * debug registers, so the hardware holds the state of the last vCPU that
 * ran; swap only when another one runs (or this one was reset or loaded).
 * DR7 and DEBUGCTL are switched by the VMCS.
 */
static void switch_cpu_state(struct vcpu *next)
{
	struct vcpu *prev = this_cpu()->current;

	if (prev == next && !next->fpu_fresh)
		return;
	/* A struct newer than the registers (a reset or a loaded state) is not overwritten. */
	struct vcpu *keep = prev && prev != next && !prev->fpu_fresh ? prev : NULL;
	if (keep)
		save_debug_registers(keep);
	xstate_switch(keep, next);
	next->fpu_fresh = false;
	/*
	 * Speculation barriers between VMs (vmm/speculation.h): IBPB so one
	 * VM's branch predictions cannot steer another's; an L1D flush, after
	 * the switch so that it drops the outgoing VM's saved registers too,
	 * unless every entry flushes anyway.
	 */
	if (prev && prev->vm != next->vm) {
		if (speculation.ibpb_between_vms)
			wrmsr(MSR_IA32_PRED_CMD, PRED_CMD_IBPB);
		if (speculation.l1d_flush_between_vms && !speculation.l1d_flush_on_entry)
			wrmsr(MSR_IA32_FLUSH_CMD, FLUSH_CMD_L1D);
	}
	write_dr0(next->dr[0]);
	write_dr1(next->dr[1]);
	write_dr2(next->dr[2]);
	write_dr3(next->dr[3]);
	write_dr6(next->dr6);
	this_cpu()->current = next;
}

/*
 * Runs every running VM's timers on its own clock, noting each VM's next
 * event as a host TSC value (0: none): the scheduler waits on host time.
 * A VM whose event came due goes first if it is not too far ahead
 * (sched_pick), so its interrupt does not wait for its turn.
 */
static void run_timers(struct sched_cpu *cpu, uint64_t now)
{
	for (unsigned i = 0; i < vm_count(); i++) {
		struct vm *vm = vm_by_index(i);
		uint64_t due = cpu->next_event[vm->id];
		if (vm->state != VM_STATE_RUNNING) {
			cpu->next_event[vm->id] = 0;
			continue;
		}
		if (due && due <= now)
			vm->vcpu.sched.timer_due = true;
		cpu->next_event[vm->id] = vm_run_timers(vm, now);
	}
}

/*
 * The earliest next event of every VM but the one with id skip (VM_MAX: of
 * all); a deleted VM's slot is not looked at.
 */
static uint64_t earliest_event(const struct sched_cpu *cpu, unsigned skip)
{
	uint64_t earliest = 0;

	for (unsigned i = 0; i < vm_count(); i++) {
		unsigned id = vm_by_index(i)->id;
		uint64_t next = cpu->next_event[id];
		if (id != skip && next && (!earliest || next < earliest))
			earliest = next;
	}
	return earliest;
}

static void report_idle(const struct sched_cpu *cpu)
{
	unsigned off = 0, halted = 0;
	struct host_idle_stats idle;
	uint64_t us = clock_tsc_hz() / 1000000;

	for (unsigned i = 0; i < vm_count(); i++) {
		const struct vm *vm = vm_by_index(i);
		if (vm->state == VM_STATE_RUNNING)
			halted++;
		else
			off++;
	}
	log_info("sched: nothing left to run (%u VM(s) halted, %u not running)", halted, off);
	host_idle_stats(&idle);
	log_info("sched: idle %llu us, the CPU halted for %llu us of it (%llu%%) in %llu HLT(s), "
		 "woken %llu time(s) by its timer and %llu by the UART",
		 (unsigned long long)(cpu->idle_tsc / us),
		 (unsigned long long)(idle.halted_tsc / us),
		 (unsigned long long)(cpu->idle_tsc ? idle.halted_tsc * 100 / cpu->idle_tsc : 0),
		 (unsigned long long)idle.halts, (unsigned long long)idle.timer_wakeups,
		 (unsigned long long)idle.uart_wakeups);
}

/*
 * Nothing to run until next_timer (0: none) or the management line: the
 * CPU halts where an interrupt can wake it in time (vmm/host_irq.h),
 * woken also to send more of the log; it polls otherwise.
 */
static void idle_until(struct sched_cpu *cpu, uint64_t next_timer)
{
	uint64_t start = rdtsc();

	while ((!next_timer || rdtsc() < next_timer) && !mgmt_poll()) {
		log_drain();
		/* Work in the background (a disk being made) keeps the CPU from halting. */
		if (!store_host_poll() && !host_idle(next_timer, mgmt_line_active(), log_pending()))
			cpu_relax();
	}
	cpu->idle_tsc += rdtsc() - start;
}

void sched_forget_vcpu(const struct vcpu *vcpu)
{
	if (this_cpu()->current == vcpu)
		this_cpu()->current = NULL;
}

static uint64_t ns_to_tsc(uint64_t ns, uint64_t tsc_hz)
{
	return tsc_hz / 1000000 * ns / 1000;
}

void sched_run(uint64_t tsc_hz)
{
	struct sched_cpu *cpu = &sched_cpus[this_cpu()->index];

	cpu->limits.slice = ns_to_tsc(SCHED_SLICE_NS, tsc_hz);
	cpu->limits.min_slice = ns_to_tsc(SCHED_MIN_SLICE_NS, tsc_hz);
	cpu->limits.ahead_slice = ns_to_tsc(SCHED_AHEAD_SLICE_NS, tsc_hz);
	cpu->queue.wake_credit = ns_to_tsc(SCHED_WAKE_CREDIT_NS, tsc_hz);
	cpu->queue.timer_lead = ns_to_tsc(SCHED_TIMER_LEAD_NS, tsc_hz);
	log_info("sched: fair share, a %llu-ms period shared by the runnable vCPUs, slices of "
		 "%llu us at the least; between VMs: IBPB %s, L1D flush %s",
		 (unsigned long long)(SCHED_SLICE_NS / 1000000),
		 (unsigned long long)(SCHED_MIN_SLICE_NS / 1000),
		 speculation.ibpb_between_vms ? "on" : "off",
		 speculation.l1d_flush_on_entry ? "at every entry"
		 : speculation.l1d_flush_between_vms ? "on" : "off");
	for (;;) {
		mgmt_poll();
		store_host_poll();
		/*
		 * A Save's step between slices: the other VMs run while a large VM
		 * is saved; a transfer's disk goes in steps too (control_poll).
		 */
		bool saving = vm_save_poll(SAVE_STEP_NS);
		bool restoring = lazy_restore_poll(SAVE_STEP_NS); /* RAM not loaded yet */
		bool stepping = saving || restoring || control_steps_pending();
		uint64_t now = rdtsc();
		run_timers(cpu, now);
		unsigned runnable_count;
		struct vcpu *vcpu = pick_next(cpu, &runnable_count);
		nmi_report();
		mce_report();
		log_drain();
		if (!vcpu) {
			if (stepping)
				continue; /* the next step at once: nothing else wants the CPU */
			uint64_t next_timer = earliest_event(cpu, VM_MAX);
			/* The management line must be served even when every VM sleeps. */
			if (!next_timer && !mgmt_line_active()) {
				report_idle(cpu);
				log_flush();
				/* Nothing can wake a vCPU any more. */
				cpu_halt_forever();
			}
			idle_until(cpu, next_timer);
			continue;
		}
		/*
		 * Timers cut the slice short: they may wake a halted vCPU, whose
		 * interrupt must not wait for a whole slice; another VM's only
		 * down to the minimum slice (sched_policy.h).
		 */
		unsigned id = vcpu->vm->id;
		uint64_t slice = sched_slice(&cpu->limits, &vcpu->sched, runnable_count, now,
					     cpu->next_event[id], earliest_event(cpu, id));
		slice = mgmt_slice_limit(slice);
		switch_cpu_state(vcpu);
		vcpu->slices++;
		uint64_t entered = rdtsc();
		enum vcpu_run_result r = virt_vcpu_run(vcpu, slice);
		sched_charge(&vcpu->sched, rdtsc() - entered);
		/* HLT with an interrupt waiting: the next entry delivers it instead. */
		if (r == VCPU_RUN_HALTED && !vcpu_wakes(vcpu))
			vcpu->halted = true;
		struct vm *vm = vcpu->vm;
		if (vm->op_pending) {
			log_info("vm '%s': ran %llu slice(s), %llu exit(s), preempted %llu time(s); "
				 "TSC-deadline interrupts %llu us late at most",
				 vm->cfg->name, (unsigned long long)vcpu->slices,
				 (unsigned long long)vcpu->exits,
				 (unsigned long long)vcpu->preemptions,
				 (unsigned long long)(vm->platform.lapic.timer_late_max_tsc /
						      (tsc_hz / 1000000)));
			vm_control(vm, vm->pending_op, vm->op_reason);
		}
	}
}
