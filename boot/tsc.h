/*
 * The TSC's rate, as exactly as the machine lets it be known: CPUID leaf
 * 15H where it names the crystal's frequency (exact), else counted against
 * a free-running counter of known frequency, the ACPI PM timer (from the
 * FADT) or the PC's 8254 PIT (channel 2), else the firmware's Stall();
 * with the error the way it was found allows, so that what guests are
 * told (leaf 15H) and the wall clock's drift are known. MSR_PLATFORM_INFO's ratio is not used: the
 * bus clock it multiplies is not architectural. Plain C for the
 * arithmetic; boot/efi_main.c measures.
 */
#ifndef BOOT_TSC_H
#define BOOT_TSC_H

#include <stdbool.h>
#include <stdint.h>

#define ACPI_PM_TIMER_FREQUENCY 3579545 /* Hz, ACPI 6.5, 4.8.3.3 */
#define PIT_FREQUENCY 1193182           /* Hz, the 8254's input clock on a PC */
#define TSC_COUNT_WINDOW_MS 200
#define TSC_STALL_ERROR_PPM 1000 /* a 20-ms Stall(): as good as the firmware's timer */

struct tsc_rate {
	uint64_t hz;
	uint32_t error_ppm; /* bound of the method; 0: exact */
	const char *source;
};

/*
 * Leaf 15H (SDM Vol. 2A, CPUID): TSC = ECX * EBX / EAX, where EAX, EBX and
 * ECX (the crystal in Hz) are all given; false otherwise.
 */
bool tsc_rate_from_cpuid(uint32_t max_leaf, uint32_t eax, uint32_t ebx, uint32_t ecx,
			 struct tsc_rate *out);

/*
 * tsc_ticks TSC ticks (under 5e12) between two edges of a counter of
 * counter_hz, counter_ticks (not 0) apart, each edge seen within read_tsc
 * TSC ticks (the longest gap between two reads of the counter). The
 * counter's own crystal tolerance is not in the bound.
 */
struct tsc_rate tsc_rate_from_counter(uint64_t tsc_ticks, uint64_t counter_ticks,
				      uint32_t counter_hz, uint64_t read_tsc, const char *source);

#endif
