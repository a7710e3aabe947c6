/*
 * Time-slicing of the vCPUs on the boot CPU: round robin, each runnable
 * vCPU for one slice, cut short by HLT and enforced by the VMX preemption
 * timer, so a guest that never exits cannot starve the others. Per-CPU
 * state is one struct so more physical CPUs can each run a scheduler.
 */
#ifndef VMM_SCHED_H
#define VMM_SCHED_H

#include <stdint.h>

/* @pre VMX operation is on; never returns. */
__attribute__((noreturn)) void sched_run(uint64_t tsc_hz);

#endif
