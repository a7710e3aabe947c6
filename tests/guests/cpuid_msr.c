/* What a guest sees of CPUID, MSRs and the hypercall interface. */
#include "guest.h"

#define BENCH_ITERATIONS 1000

static bool signature_is(struct cpuid_regs r, const char *sig)
{
	uint32_t got[3] = { r.ebx, r.ecx, r.edx };
	const char *bytes = (const char *)got;
	for (int i = 0; i < 12; i++)
		if (bytes[i] != sig[i])
			return false;
	return true;
}

int main(void)
{
	struct cpuid_regs r;
	uint64_t v;

	r = cpuid(1, 0);
	check(!(r.ecx & (1U << 5)), "cpuid: VMX hidden from the guest");
	check(r.ecx & (1U << 31), "cpuid: hypervisor-present bit set");
	r = cpuid(0x40000000, 0);
	check(r.eax >= 0x40000001 && signature_is(r, "VMMvmmVMMvmm"),
	      "cpuid: hypervisor leaf 0x40000000 carries the signature");
	r = cpuid(0x40000001, 0);
	check(r.eax == HYPERCALL_ABI_VERSION, "cpuid: hypercall ABI version in leaf 0x40000001");

	check(vmcall(HC_VERSION, 0, 0, 0) == HYPERCALL_ABI_VERSION, "vmcall: version call answers the ABI version");
	check(vmcall(0x7777, 0, 0, 0) == HC_ENOSYS, "vmcall: unknown call returns ENOSYS");

	check(rdmsr_safe(0x1b, &v) == NO_FAULT && (v & ~0xfffULL) == 0xfee00000ULL,
	      "msr: IA32_APIC_BASE reads the default xAPIC address");
	check(rdmsr_safe(0x3a, &v) == NO_FAULT && v == 1,
	      "msr: IA32_FEATURE_CONTROL reads locked, VMX off");
	check(rdmsr_safe(0x480, &v) == 13, "msr: IA32_VMX_BASIC is #GP");
	/* A fault pushes RF=1 (SDM 18.3.1.1), injected by the hypervisor as well. */
	check(fault_rflags & (1ULL << 16), "exceptions: an injected #GP pushes RFLAGS.RF");
	check(rdmsr_safe(0xc0000080, &v) == NO_FAULT && (v & 0x500) == 0x500,
	      "msr: EFER shows long mode (LME, LMA)");
	check(wrmsr_safe(0x277, 0x0007040600070406ULL) == NO_FAULT &&
		      rdmsr_safe(0x277, &v) == NO_FAULT && v == 0x0007040600070406ULL,
	      "msr: PAT round-trips");
	check(wrmsr_safe(0x277, 0x0202020202020202ULL) == 13, "msr: PAT with a reserved type is #GP");
	check(wrmsr_safe(0xc0000082, 0xffff800000001000ULL) == NO_FAULT &&
		      rdmsr_safe(0xc0000082, &v) == NO_FAULT && v == 0xffff800000001000ULL,
	      "msr: LSTAR round-trips");
	check(wrmsr_safe(0xc0000102, 0x123456789000ULL) == NO_FAULT &&
		      rdmsr_safe(0xc0000102, &v) == NO_FAULT && v == 0x123456789000ULL,
	      "msr: KERNEL_GS_BASE round-trips");
	/* The guest's own TSC (SDM 17.17): RDTSC and the MSR go on from the value written. */
	const uint64_t tsc_set = 1ULL << 44;
	check(wrmsr_safe(0x10, tsc_set) == NO_FAULT && rdmsr_safe(0x10, &v) == NO_FAULT &&
		      v >= tsc_set && rdtsc() >= v && rdtsc() - tsc_set < 1ULL << 32,
	      "msr: a TSC write sets the guest's TSC");
	check(wrmsr_safe(0x3a, 5) == 13, "msr: IA32_FEATURE_CONTROL is not writable");

	/*
	 * Nothing here may run natively: MONITOR/MWAIT (hidden from CPUID) are
	 * #UD, RDPMC is #GP as no counter exists for guests, even with CR4.PCE
	 * set, which the guest sees as it wrote it.
	 */
	static volatile uint64_t line;
	check(!(cpuid(1, 0).ecx & (1U << 3)), "cpuid: MONITOR/MWAIT hidden");
	check(monitor_safe((const void *)&line) == 6, "insn: MONITOR is #UD");
	check(mwait_safe() == 6, "insn: MWAIT is #UD");
	check(rdpmc_safe(0) == 13, "insn: RDPMC is #GP");
	uint64_t cr4;
	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	__asm__ volatile("mov %0, %%cr4" : : "r"(cr4 | (1ULL << 8)));
	uint64_t cr4_pce;
	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4_pce));
	check(cr4_pce & (1ULL << 8), "cr4: PCE reads back as the guest set it");
	check(rdpmc_safe(0) == 13, "insn: RDPMC is #GP with CR4.PCE set too");
	__asm__ volatile("mov %0, %%cr4" : : "r"(cr4));

	/*
	 * Round trip of one CPUID exit as the guest sees it, minus the cost of
	 * the two RDTSCs around it. Under Bochs one TSC tick is one emulated
	 * instruction, so the difference counts the instructions of the exit
	 * path (VM exit, root-mode handler, VM entry) plus the CPUID itself.
	 */
	uint64_t best = ~0ULL, baseline = ~0ULL, total = 0;
	for (int i = 0; i < BENCH_ITERATIONS; i++) {
		uint64_t t0 = rdtsc();
		uint64_t t1 = rdtsc();
		r = cpuid(0, 0);
		uint64_t t2 = rdtsc();
		if (t1 - t0 < baseline)
			baseline = t1 - t0;
		total += t2 - t1;
		if (t2 - t1 < best)
			best = t2 - t1;
	}
	put("BENCH cpuid_exit_tsc ");
	put_u64(best);
	put(" ticks\n");
	put("cpuid: round trip best ");
	put_u64(best);
	put(", mean ");
	put_u64(total / BENCH_ITERATIONS);
	put(", rdtsc pair ");
	put_u64(baseline);
	put(" ticks\n");
	put("BENCH cpuid_exit_root_instr ");
	put_u64(best > baseline ? best - baseline - 1 : 0);
	put(" instr\n");
	return 0;
}
