#include "vmm/sched.h"

#include "vmm/clock.h"
#include "vmm/log.h"
#include "vmm/mgmt.h"
#include "vmm/virt.h"
#include "vmm/vm.h"
#include "x86/cpu.h"

/* 10 ms: short enough for interactive guests, long against exit costs. */
#define SLICES_PER_SECOND 100

/*
 * Speculation barriers between VMs, where the CPU has them (CPUID.7.0:EDX,
 * Intel's "Speculative Execution Side Channel Mitigations"): IBPB so one
 * VM's branch predictions cannot steer another's, and an L1D flush so a
 * VM cannot read another's data left in L1 (L1TF).
 */
#define CPUID7_EDX_IBRS_IBPB (1U << 26)
#define CPUID7_EDX_L1D_FLUSH (1U << 28)
#define MSR_PRED_CMD 0x49
#define PRED_CMD_IBPB 1
#define MSR_FLUSH_CMD 0x10b
#define FLUSH_CMD_L1D 1

struct pcpu {
	unsigned next;           /* round-robin position */
	struct vcpu *state_owner;  /* whose x87/SSE and debug state the CPU holds */
	uint64_t slice_tsc;
	bool ibpb, l1d_flush;
};

static struct pcpu boot_cpu;

static bool runnable(const struct vm *vm)
{
	return vm->state == VM_STATE_RUNNING && !vm->vcpu.halted;
}

/*
 * A vCPU an interrupt just woke runs first, once: its interrupt (a timer
 * tick) must not wait behind a whole round of busy guests, or ticks merge
 * and are lost. It cannot starve the others: a wake needs a HLT first.
 */
static struct vcpu *pick_woken(void)
{
	for (unsigned i = 0; i < vm_count(); i++) {
		struct vm *vm = vm_by_index(i);
		if (runnable(vm) && vm->vcpu.woken) {
			vm->vcpu.woken = false;
			return &vm->vcpu;
		}
	}
	return NULL;
}

static struct vcpu *pick_next(struct pcpu *cpu)
{
	unsigned n = vm_count();
	struct vcpu *woken = pick_woken();

	if (woken)
		return woken;

	for (unsigned i = 0; i < n; i++) {
		struct vm *vm = vm_by_index((cpu->next + i) % n);
		if (runnable(vm)) {
			cpu->next = (vm->id + 1) % n;
			return &vm->vcpu;
		}
	}
	return NULL;
}

/*
 * The hypervisor itself never uses x87/SSE (-mgeneral-regs-only) or the
 * debug registers, so the hardware holds the state of the last vCPU that
 * ran; swap only when another one runs (or this one was reset). DR7 and
 * DEBUGCTL are switched by the VMCS.
 */
static void switch_cpu_state(struct pcpu *cpu, struct vcpu *next)
{
	struct vcpu *prev = cpu->state_owner;

	if (prev == next && !next->fpu_fresh)
		return;
	if (prev && prev != next) {
		__asm__ volatile("fxsave64 %0" : "=m"(prev->fpu));
		prev->dr[0] = read_dr0();
		prev->dr[1] = read_dr1();
		prev->dr[2] = read_dr2();
		prev->dr[3] = read_dr3();
		prev->dr6 = read_dr6();
	}
	if (prev && prev->vm != next->vm) {
		if (cpu->ibpb)
			wrmsr(MSR_PRED_CMD, PRED_CMD_IBPB);
		if (cpu->l1d_flush)
			wrmsr(MSR_FLUSH_CMD, FLUSH_CMD_L1D);
	}
	__asm__ volatile("fxrstor64 %0" : : "m"(next->fpu));
	next->fpu_fresh = false;
	write_dr0(next->dr[0]);
	write_dr1(next->dr[1]);
	write_dr2(next->dr[2]);
	write_dr3(next->dr[3]);
	write_dr6(next->dr6);
	cpu->state_owner = next;
}

/* Runs every running VM's timers; returns the earliest next event (0: none). */
static uint64_t run_timers(uint64_t now)
{
	uint64_t earliest = 0, now_ns = clock_ns();

	for (unsigned i = 0; i < vm_count(); i++) {
		struct vm *vm = vm_by_index(i);
		uint64_t next = vm->state == VM_STATE_RUNNING ? vm_run_timers(vm, now, now_ns) : 0;
		if (next && (!earliest || next < earliest))
			earliest = next;
	}
	return earliest;
}

static void report_idle(void)
{
	unsigned off = 0, halted = 0;

	for (unsigned i = 0; i < vm_count(); i++) {
		const struct vm *vm = vm_by_index(i);
		if (vm->state == VM_STATE_RUNNING)
			halted++;
		else
			off++;
	}
	log_info("sched: nothing left to run (%u VM(s) halted, %u not running)", halted, off);
}

void sched_run(uint64_t tsc_hz)
{
	struct pcpu *cpu = &boot_cpu;

	cpu->slice_tsc = tsc_hz / SLICES_PER_SECOND;
	if (cpuid(0, 0).eax >= 7) {
		uint32_t edx = cpuid(7, 0).edx;
		cpu->ibpb = edx & CPUID7_EDX_IBRS_IBPB;
		cpu->l1d_flush = edx & CPUID7_EDX_L1D_FLUSH;
	}
	log_info("sched: %llu-ms slices; between VMs: IBPB %s, L1D flush %s",
		 (unsigned long long)(1000 / SLICES_PER_SECOND), cpu->ibpb ? "on" : "not available",
		 cpu->l1d_flush ? "on" : "not available");
	for (;;) {
		mgmt_poll();
		uint64_t now = rdtsc();
		uint64_t next_timer = run_timers(now);
		struct vcpu *vcpu = pick_next(cpu);
		log_drain();
		if (!vcpu) {
			/* The management line must be served even when every VM sleeps. */
			if (!next_timer && !mgmt_line_active()) {
				report_idle();
				log_flush();
				/* No host interrupt source is wired to the scheduler yet. */
				cpu_halt_forever();
			}
			/* Only timers can wake a vCPU: wait for the earliest. */
			while ((!next_timer || rdtsc() < next_timer) && !mgmt_poll()) {
				log_drain();
				cpu_relax();
			}
			continue;
		}
		/*
		 * The next timer event of any VM cuts the slice short: it may wake
		 * a halted vCPU, whose interrupt must not wait for a whole slice.
		 */
		uint64_t slice = cpu->slice_tsc;
		if (next_timer && next_timer - now < slice)
			slice = next_timer > now ? next_timer - now : 1;
		slice = mgmt_slice_limit(slice);
		switch_cpu_state(cpu, vcpu);
		vcpu->slices++;
		enum vcpu_run_result r = virt_vcpu_run(vcpu, slice);
		/* HLT with an interrupt waiting: the next entry delivers it instead. */
		if (r == VCPU_RUN_HALTED && vcpu_interrupt_pending(vcpu) < 0)
			vcpu->halted = true;
		struct vm *vm = vcpu->vm;
		if (vm->op_pending) {
			log_info("vm '%s': ran %llu slice(s), %llu exit(s), preempted %llu time(s)",
				 vm->cfg->name, (unsigned long long)vcpu->slices,
				 (unsigned long long)vcpu->exits,
				 (unsigned long long)vcpu->preemptions);
			vm_control(vm, vm->pending_op, vm->op_reason);
		}
	}
}
