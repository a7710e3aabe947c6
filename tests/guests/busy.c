/*
 * A guest that never exits on its own: it spins, and counts how often its
 * TSC readings jump (time it did not run because the hypervisor preempted
 * it for the other guests).
 */
#include "guest.h"

#define SPINS 20000000ULL
#define GAP_TICKS 200000ULL

int main(void)
{
	uint64_t gaps = 0, last = rdtsc();

	put("busy: spinning without exits\n");
	for (volatile uint64_t i = 0; i < SPINS; i++) {
		uint64_t now = rdtsc();
		if (now - last > GAP_TICKS)
			gaps++;
		last = now;
	}
	put("busy: preempted ");
	put_u64(gaps);
	put(" time(s)\n");
	check(gaps > 0, "busy: preempted by the scheduler, other guests ran");
	return 0;
}
