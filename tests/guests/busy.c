/*
 * A guest that hogs the CPU: it spins and, every few thousand iterations,
 * takes a CPUID exit (a guest that exits often must not get a fresh time
 * slice at each entry). It reports how often its TSC readings jumped:
 * time it did not run because the hypervisor ran other guests. Whether it
 * was preempted is the hypervisor's to say ("preempted N time(s)" when the
 * VM ends), which the end-to-end test checks. Where the CPU offers AVX
 * it keeps values in the vector registers the whole time and checks them
 * at the end: another VM's state must never reach them.
 */
#include "guest.h"

#define SPINS 20000000ULL
#define GAP_TICKS 200000ULL
#define VECTOR_SEED 0xb05eULL

int main(void)
{
	uint64_t gaps = 0, last = rdtsc();
	uint64_t xcr0 = xstate_enable();

	vector_fill(xcr0, VECTOR_SEED);
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
	if (xcr0 & XCR0_AVX)
		check(vector_intact(xcr0, VECTOR_SEED),
		      "busy: its vector registers kept their values across every slice");
	return 0;
}
