/*
 * A guest that storms its timers and halts (issue 19, finding 3), for the
 * fairness benchmark beside tests/guests/count.c. It sleeps QUIET_MS first
 * (the counting guest measures its rate alone meanwhile), then for
 * STORM_MS each: HC_SET_TIMER with a deadline in the past, STI, HLT, over
 * and over; then the local APIC timer, periodic with initial count 1 at
 * divide-by-1 (every 40 ns unfloored), HLT after each interrupt. Each phase
 * is printed as "storm: <name> <from TSC> <to TSC> <wake-ups>".
 */
#include "guest.h"

#define QUIET_MS 400
#define STORM_MS 600
#define UPCALL_VECTOR 0x40
#define LAPIC_VECTOR 0x41

#define LVT_PERIODIC 0x20000
#define LVT_MASKED 0x10000
#define DIVIDE_1 0xb

static volatile uint64_t wakes;
static volatile bool lapic_phase;

static void on_interrupt(void)
{
	wakes++;
	/* The upcall needs no EOI; the local APIC's timer does. */
	if (lapic_phase)
		LAPIC[LAPIC_EOI] = 0;
}

static void report(const char *name, uint64_t from, uint64_t to)
{
	put("storm: ");
	put(name);
	put(" ");
	put_u64(from);
	put(" ");
	put_u64(to);
	put(" ");
	put_u64(wakes);
	put("\n");
}

int main(void)
{
	uint64_t ms = tsc_hz() / 1000;

	check(ms != 0, "storm: TSC rate from CPUID leaf 15H");
	set_irq_handler(UPCALL_VECTOR, on_interrupt);
	set_irq_handler(LAPIC_VECTOR, on_interrupt);
	vmcall(HC_SET_UPCALL_VECTOR, UPCALL_VECTOR, 0, 0);

	vmcall(HC_SET_TIMER, rdtsc() + QUIET_MS * ms, 0, 0);
	__asm__ volatile("sti; hlt; cli");

	uint64_t from = rdtsc(), to = from + STORM_MS * ms;
	wakes = 0;
	while (rdtsc() < to) {
		vmcall(HC_SET_TIMER, 1, 0, 0);
		__asm__ volatile("sti; hlt; cli");
	}
	report("set-timer-past", from, rdtsc());

	from = rdtsc();
	to = from + STORM_MS * ms;
	wakes = 0;
	lapic_phase = true;
	LAPIC[LAPIC_SVR] = LAPIC_SVR_ENABLE | 0xff;
	LAPIC[LAPIC_TIMER_DIVIDE] = DIVIDE_1;
	LAPIC[LAPIC_LVT_TIMER] = LVT_PERIODIC | LAPIC_VECTOR;
	LAPIC[LAPIC_TIMER_INITIAL] = 1;
	while (rdtsc() < to)
		__asm__ volatile("sti; hlt; cli");
	LAPIC[LAPIC_LVT_TIMER] = LVT_MASKED;
	LAPIC[LAPIC_TIMER_INITIAL] = 0;
	report("lapic-periodic-1", from, rdtsc());
	return 0;
}
