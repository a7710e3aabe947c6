/*
 * The local APIC's TSC-deadline timer beside busy neighbours (issue 20,
 * point 10; tests/bench/timer-latency.conf): it arms a deadline TIMER_GAP
 * ahead, spins with interrupts on until the interrupt comes (it never
 * halts, so the scheduler cannot treat it as a sleeper), and does that
 * ROUNDS times. It prints how late the interrupt came at most, by its own
 * clock; the hypervisor reports the same from its side when the VM ends
 * ("TSC-deadline interrupts N us late at most"). With the command line
 * "wait=halt" it halts for each interrupt instead (tests/bench/idle.conf):
 * a guest that sleeps, so that the host is idle between its timers.
 */
#include "guest.h"

#include "x86/msr.h"

#define ROUNDS 20
#define TIMER_GAP_US 3000
#define TIMER_VECTOR 0x41
#define CPUID_01_ECX_TSC_DEADLINE (1U << 24)

#define LVT_TSC_DEADLINE 0x40000

static volatile uint64_t fired_tsc;

static void on_timer(void)
{
	fired_tsc = rdtsc();
	LAPIC[LAPIC_EOI] = 0;
}

int main(void)
{
	uint64_t us = tsc_hz() / 1000000, late_max = 0;
	bool halt = streq(guest_cmdline, "wait=halt");

	if (!check(us && (cpuid(1, 0).ecx & CPUID_01_ECX_TSC_DEADLINE),
		   "deadline: TSC rate in CPUID leaf 15H, TSC-deadline timer in leaf 1"))
		return 0;
	set_irq_handler(TIMER_VECTOR, on_timer);
	LAPIC[LAPIC_SVR] = LAPIC_SVR_ENABLE | 0xff;
	LAPIC[LAPIC_LVT_TIMER] = LVT_TSC_DEADLINE | TIMER_VECTOR;
	for (unsigned i = 0; i < ROUNDS; i++) {
		uint64_t deadline = rdtsc() + TIMER_GAP_US * us;
		fired_tsc = 0;
		wrmsr_safe(MSR_IA32_TSC_DEADLINE, deadline);
		__asm__ volatile("sti");
		while (!fired_tsc) {
			if (halt)
				__asm__ volatile("hlt");
			else
				__asm__ volatile("pause");
		}
		__asm__ volatile("cli");
		if (fired_tsc > deadline && fired_tsc - deadline > late_max)
			late_max = fired_tsc - deadline;
	}
	put("deadline: ");
	put_u64(ROUNDS);
	put(" timers, late by at most ");
	put_u64(late_max / us);
	put(" us by the guest's clock\n");
	return 0;
}
