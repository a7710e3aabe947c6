/*
 * The paravirtual timer and interrupt delivery: a halted vCPU is woken by
 * its timer upcall; an upcall raised while interrupts are masked waits for
 * the interrupt window; a cancelled timer stays silent.
 */
#include "guest.h"

#define UPCALL_VECTOR 0x40

static volatile uint64_t upcalls;
static volatile uint64_t upcall_tsc;

static void on_upcall(void)
{
	upcalls++;
	upcall_tsc = rdtsc();
}

static void spin_until(uint64_t tsc)
{
	while (rdtsc() < tsc)
		__asm__ volatile("pause");
}

int main(void)
{
	check(vmcall(HC_SET_TIMER, rdtsc() + 1000, 0, 0) == HC_EINVAL,
	      "timer: refused before an upcall vector is set");
	check(vmcall(HC_SET_UPCALL_VECTOR, 14, 0, 0) == HC_EINVAL,
	      "timer: an exception vector is refused for upcalls");
	set_irq_handler(UPCALL_VECTOR, on_upcall);
	check(vmcall(HC_SET_UPCALL_VECTOR, UPCALL_VECTOR, 0, 0) == 0, "timer: upcall vector set");

	/* 1: HLT until the timer fires. */
	uint64_t deadline = rdtsc() + 2000000;
	vmcall(HC_SET_TIMER, deadline, 0, 0);
	__asm__ volatile("sti; hlt; cli");
	check(upcalls == 1 && upcall_tsc >= deadline, "timer: HLT woken by the timer upcall");

	/* 2: due while interrupts are masked: delivered at STI, not before. */
	deadline = rdtsc() + 200000;
	vmcall(HC_SET_TIMER, deadline, 0, 0);
	spin_until(deadline + 2000000);
	check(upcalls == 1, "timer: nothing delivered while RFLAGS.IF is clear");
	__asm__ volatile("sti; nop; cli");
	check(upcalls == 2, "timer: delivered through the interrupt window at STI");

	/* 3: a cancelled timer does not fire. */
	vmcall(HC_SET_TIMER, rdtsc() + 200000, 0, 0);
	vmcall(HC_SET_TIMER, 0, 0, 0);
	__asm__ volatile("sti");
	spin_until(rdtsc() + 2000000);
	__asm__ volatile("cli");
	check(upcalls == 2, "timer: a cancelled timer stays silent");
	return 0;
}
