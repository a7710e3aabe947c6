/*
 * Time-slicing of the vCPUs on the boot CPU: fair share by virtual runtime
 * (vmm/sched_policy.h), each pick for at most one slice, cut short by HLT
 * and by timers and enforced by the VMX preemption timer, so neither a
 * guest that never exits nor one that storms its timers and halts can
 * starve the others. Per-CPU state is one struct so more physical CPUs can
 * each run a scheduler.
 */
#ifndef VMM_SCHED_H
#define VMM_SCHED_H

#include <stdint.h>

struct vcpu;

/*
 * The CPU keeps the x87/SSE and debug registers of the vCPU that ran last
 * (switched lazily); this writes them back to vcpu->fpu and vcpu->dr when
 * that vCPU is this one, so that its struct holds its state.
 */
void sched_save_cpu_state(struct vcpu *vcpu);

/* @pre VMX operation is on; never returns. */
__attribute__((noreturn)) void sched_run(uint64_t tsc_hz);

/*
 * The vCPU's VM is being deleted: the scheduler drops every reference to
 * it (the CPU's x87/SSE state is no longer saved into it).
 */
void sched_forget_vcpu(const struct vcpu *vcpu);

#endif
