#include "vmm/percpu.h"

#include "vmm/panic.h"
#include "x86/cpu.h"
#include "x86/msr.h"

static struct percpu cpus[VMM_CPUS];
static bool started;

void percpu_start(unsigned index, uint64_t stack_low, uint64_t stack_high)
{
	struct percpu *cpu = &cpus[index];

	*cpu = (struct percpu){ .self = cpu, .index = index,
				.stack_low = stack_low, .stack_high = stack_high };
	wrmsr(MSR_IA32_GS_BASE, (uint64_t)(uintptr_t)cpu);
	if (this_cpu() != cpu)
		panic("percpu: GS:0 reads %p, not CPU %u's entry %p", (void *)this_cpu(), index,
		      (void *)cpu);
	started = true;
}

bool percpu_started(void)
{
	return started;
}
