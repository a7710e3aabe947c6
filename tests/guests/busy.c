/*
 * A guest that hogs the CPU: it spins and, every few thousand iterations,
 * takes a CPUID exit (a guest that exits often must not get a fresh time
 * slice at each entry). It reports how often its TSC readings jumped:
 * time it did not run because the hypervisor ran other guests. Whether it
 * was preempted is the hypervisor's to say ("preempted N time(s)" when the
 * VM ends), which the end-to-end test checks.
 */
#include "guest.h"

#define SPINS 20000000ULL
#define GAP_TICKS 200000ULL

int main(void)
{
	uint64_t gaps = 0, last = rdtsc();

	put("busy: spinning\n");
	for (volatile uint64_t i = 0; i < SPINS; i++) {
		if (!(i % 4096))
			cpuid(0, 0);
		uint64_t now = rdtsc();
		if (now - last > GAP_TICKS)
			gaps++;
		last = now;
	}
	put("busy: done; other guests ran ");
	put_u64(gaps);
	put(" time(s) while it spun\n");
	return 0;
}
