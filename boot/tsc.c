#include "boot/tsc.h"

#define CPUID_TSC_LEAF 0x15U

bool tsc_rate_from_cpuid(uint32_t max_leaf, uint32_t eax, uint32_t ebx, uint32_t ecx,
			 struct tsc_rate *out)
{
	if (max_leaf < CPUID_TSC_LEAF || !eax || !ebx || !ecx)
		return false;
	*out = (struct tsc_rate){ (uint64_t)ecx * ebx / eax, 0, "CPUID leaf 15H" };
	return true;
}

struct tsc_rate tsc_rate_from_counter(uint64_t tsc_ticks, uint64_t counter_ticks,
				      uint32_t counter_hz, uint64_t read_tsc, const char *source)
{
	/* Both ends are off by at most one gap between reads; rounded up. */
	uint64_t error = (2 * read_tsc * 1000000 + tsc_ticks - 1) / tsc_ticks;

	return (struct tsc_rate){
		/* No overflow below 5e12 TSC ticks: minutes at any clock rate. */
		.hz = tsc_ticks * counter_hz / counter_ticks,
		.error_ppm = error > UINT32_MAX ? UINT32_MAX : (uint32_t)error,
		.source = source,
	};
}
