#include "vmm/speculation.h"

#include "vmm/log.h"
#include "x86/cpu.h"
#include "x86/msr.h"

#define CPUID_01_ECX_AVX (1U << 28)

void speculation_init(bool enabled)
{
	struct speculation_cpu cpu = { .avx = cpuid(1, 0).ecx & CPUID_01_ECX_AVX };

	if (cpuid(0, 0).eax >= 7) {
		struct cpuid_regs r = cpuid(7, 0);
		cpu.cpuid7_ebx = r.ebx;
		cpu.cpuid7_edx = r.edx;
		/* EAX is the last subleaf. */
		if (r.eax >= 2)
			cpu.cpuid7_2_edx = cpuid(7, 2).edx;
	}
	if (cpu.cpuid7_edx & CPUID_07_EDX_ARCH_CAPS)
		cpu.arch_caps = rdmsr(MSR_IA32_ARCH_CAPABILITIES);
	speculation_choose(&cpu, enabled, &speculation);
	if (speculation.spec_ctrl)
		wrmsr(MSR_IA32_SPEC_CTRL, speculation.host_spec_ctrl);

	unsigned affected = 0, uncovered = 0;
	for (unsigned bug = 0; bug < CPU_BUG_COUNT; bug++) {
		affected += speculation.affected >> bug & 1;
		uncovered += speculation.uncovered >> bug & 1;
	}
	log_info("speculation: CPUID.7:EDX 0x%08x, IA32_ARCH_CAPABILITIES %s0x%llx: %u of %u "
		 "known bugs apply, %u left uncovered%s",
		 cpu.cpuid7_edx, (cpu.cpuid7_edx & CPUID_07_EDX_ARCH_CAPS) ? "" : "(absent) ",
		 (unsigned long long)cpu.arch_caps, affected, (unsigned)CPU_BUG_COUNT, uncovered,
		 enabled ? "" : " (speculation_defences = off)");
	for (unsigned bug = 0; bug < CPU_BUG_COUNT; bug++)
		if (speculation.affected >> bug & 1)
			log_info("speculation: %s: %s", speculation_bug_name(bug),
				 speculation_bug_defence(&speculation, bug));
}
