/*
 * The hypervisor's time base: the TSC, calibrated at boot against the
 * firmware's Stall(). Device models count in nanoseconds; the scheduler
 * and the VMX preemption timer count in TSC ticks.
 */
#ifndef VMM_CLOCK_H
#define VMM_CLOCK_H

#include <stdint.h>

/* wallclock_s: UTC seconds since 1970 at TSC value wallclock_tsc (0 if unknown). */
void clock_init(uint64_t tsc_hz, uint64_t wallclock_s, uint64_t wallclock_tsc);
uint64_t clock_tsc_hz(void);
/* Nanoseconds since clock_init. */
uint64_t clock_ns(void);
/* UTC seconds since 1970 now (from 0 when the firmware had no time). */
uint64_t clock_wallclock_s(void);
/* UTC nanoseconds since 1970, as exact as the firmware's second allows; 0 if unknown. */
uint64_t clock_wallclock_ns(void);

/* The TSC value at which clock_ns() reaches ns. */
uint64_t clock_ns_to_tsc(uint64_t ns);

#endif
