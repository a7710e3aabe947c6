/*
 * The counting guest of the fairness benchmark (tests/bench/fairness.conf):
 * it counts loop iterations in windows of WINDOW_MS of the hypervisor's
 * clock (the TSC, whose rate CPUID leaf 15H reports) and prints each
 * window as "count: <from TSC> <to TSC> <iterations>", "to" as read when
 * the window ended (late when the guest did not run meanwhile). Beside a guest
 * that storms its timer, fewer iterations fit in a window: the benchmark
 * compares those windows with the ones it counted alone.
 */
#include "guest.h"

#define WINDOW_MS 50
#define WINDOWS 36

int main(void)
{
	uint64_t window = tsc_hz() / 1000 * WINDOW_MS;

	check(window != 0, "count: TSC rate from CPUID leaf 15H");
	uint64_t from = rdtsc();
	for (unsigned w = 0; w < WINDOWS; w++) {
		uint64_t end = from + window, to, n = 0;
		while ((to = rdtsc()) < end)
			n++;
		put("count: ");
		put_u64(from);
		put(" ");
		put_u64(to);
		put(" ");
		put_u64(n);
		put("\n");
		from = rdtsc();
	}
	return 0;
}
