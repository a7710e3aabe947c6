#include "vmm/clock.h"

#include "x86/cpu.h"

#define NS_PER_S 1000000000ULL

static uint64_t hz = 1;
static uint64_t start;
static uint64_t wall_s, wall_tsc;

void clock_init(uint64_t tsc_hz, uint64_t wallclock_s, uint64_t wallclock_tsc)
{
	hz = tsc_hz ? tsc_hz : 1;
	start = rdtsc();
	wall_s = wallclock_s;
	wall_tsc = wallclock_s ? wallclock_tsc : start;
}

uint64_t clock_wallclock_s(void)
{
	return wall_s + (rdtsc() - wall_tsc) / hz;
}

uint64_t clock_wallclock_ns(void)
{
	uint64_t t = rdtsc() - wall_tsc;

	if (!wall_s)
		return 0;
	return wall_s * NS_PER_S + t / hz * NS_PER_S + t % hz * NS_PER_S / hz;
}

uint64_t clock_tsc_hz(void)
{
	return hz;
}

/* Whole seconds and the rest, so no product overflows 64 bits (hz < 18 GHz). */
uint64_t clock_ns(void)
{
	uint64_t t = rdtsc() - start;
	return t / hz * NS_PER_S + t % hz * NS_PER_S / hz;
}

uint64_t clock_ns_to_tsc(uint64_t ns)
{
	return start + ns / NS_PER_S * hz + (ns % NS_PER_S * hz + NS_PER_S - 1) / NS_PER_S;
}
