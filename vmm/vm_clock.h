/*
 * A VM's clock: the one time base every timer model of the VM reads (PIT,
 * RTC, local APIC, ACPI PM timer, the paravirtual timer) and the guest's
 * TSC. Plain C on a host TSC value the caller passes in, so the unit tests
 * drive it with any host time, including values near 2^64.
 *
 * While the clock runs, guest TSC = host TSC + tsc_offset (mod 2^64, as
 * the TSC's own arithmetic); while it is stopped (the VM is Paused, or
 * later Saved) the guest TSC holds the value it stopped at, and restarting
 * the clock moves tsc_offset back by the time it was stopped. So guest time
 * does not advance across a pause: on Resume no timer fires a burst for the
 * stopped time and no clock jumps (docs/time.md).
 *
 * Guest nanoseconds count the guest TSC's ticks since an epoch at tsc_hz.
 * A guest that writes its TSC (IA32_TIME_STAMP_COUNTER, SDM 17.17) moves
 * the epoch with it, so its device timers do not move, as on real hardware.
 * Only ticks since the epoch are converted, so a loaded guest time of any
 * size continues without overflow.
 */
#ifndef VMM_VM_CLOCK_H
#define VMM_VM_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

struct vm_clock {
	uint64_t tsc_hz;      /* the guest TSC's rate: the host's (no TSC scaling) */
	uint64_t tsc_offset;  /* guest TSC minus host TSC, while running */
	bool stopped;
	uint64_t stopped_tsc; /* the guest TSC it stopped at, while stopped */
	uint64_t epoch_tsc;   /* a guest TSC value ... */
	uint64_t epoch_ns;    /* ... and the guest time it stands for */
};

/*
 * A running clock at guest time 0 whose guest TSC is the host's (as the
 * guest saw it before VMs had clocks of their own). tsc_hz: 1 Hz to
 * 18 GHz (the conversions split whole seconds off, so that no product
 * overflows below that).
 */
void vm_clock_init(struct vm_clock *c, uint64_t tsc_hz, uint64_t host_tsc);

/* Guest time in ns and the guest's TSC at host TSC value host_tsc. */
uint64_t vm_clock_ns(const struct vm_clock *c, uint64_t host_tsc);
uint64_t vm_clock_guest_tsc(const struct vm_clock *c, uint64_t host_tsc);

/* The guest wrote its TSC (IA32_TIME_STAMP_COUNTER): it reads guest_tsc now. */
void vm_clock_set_guest_tsc(struct vm_clock *c, uint64_t host_tsc, uint64_t guest_tsc);

/*
 * Guest TSC minus host TSC while the clock runs: what the hardware adds to
 * the host TSC on a guest's RDTSC (vmm/virt.h, virt_set_tsc_offset).
 */
uint64_t vm_clock_tsc_offset(const struct vm_clock *c);

/* Stop (Pause, Save) and restart (Resume, Restore); each is idempotent. */
void vm_clock_stop(struct vm_clock *c, uint64_t host_tsc);
void vm_clock_start(struct vm_clock *c, uint64_t host_tsc);
bool vm_clock_stopped(const struct vm_clock *c);

/*
 * A loaded state (Restore, a move from another host): guest time and the
 * guest TSC continue from the saved values, whatever this host's TSC reads
 * or its rate. The clock keeps its running or stopped state.
 */
void vm_clock_load(struct vm_clock *c, uint64_t host_tsc, uint64_t guest_ns, uint64_t guest_tsc);

/*
 * Host TSC values at which the running clock reaches guest time guest_ns
 * (rounded up: never before it) and the guest TSC reaches guest_tsc: what
 * the scheduler waits for. Meaningless while the clock is stopped.
 */
uint64_t vm_clock_host_tsc_at_ns(const struct vm_clock *c, uint64_t guest_ns);
uint64_t vm_clock_host_tsc_at_guest_tsc(const struct vm_clock *c, uint64_t guest_tsc);

#endif
