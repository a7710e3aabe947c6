/*
 * Defences against the CPU's speculative-execution bugs, chosen per CPU
 * from what it says of itself: CPUID.(EAX=7,ECX=0) and
 * IA32_ARCH_CAPABILITIES (Intel's "Speculative Execution Side Channel
 * Mitigations" and its guidance per bug; docs/security.md has one line per
 * bug, as Xen's spec-ctrl documentation does). A CPU that does not
 * enumerate IA32_ARCH_CAPABILITIES declares itself free of nothing.
 * Plain C over register values, unit-tested on the host.
 */
#ifndef VMM_SPECULATION_H
#define VMM_SPECULATION_H

#include <stdbool.h>
#include <stdint.h>

enum cpu_bug {
	CPU_BUG_SPECTRE_V2, /* branch target injection */
	CPU_BUG_RSB,        /* return predictions a guest left behind */
	CPU_BUG_SSB,        /* speculative store bypass */
	CPU_BUG_L1TF,       /* L1 terminal fault */
	CPU_BUG_MDS,        /* microarchitectural data sampling */
	CPU_BUG_TAA,        /* TSX asynchronous abort */
	CPU_BUG_MMIO,       /* MMIO stale data */
	CPU_BUG_ITLB_MULTIHIT,
	CPU_BUG_GDS,        /* gather data sampling */
	CPU_BUG_BHI,        /* branch history injection */
	CPU_BUG_RFDS,       /* register file data sampling */
	CPU_BUG_COUNT
};

/* What the CPU says: CPUID.(EAX=7,ECX=0 and 2) and IA32_ARCH_CAPABILITIES (0 if absent). */
struct speculation_cpu {
	uint32_t cpuid7_ebx, cpuid7_edx, cpuid7_2_edx;
	uint64_t arch_caps;
	bool avx; /* GDS leaks through the gather instructions */
};

struct speculation_defences {
	bool enabled; /* false: [hypervisor] speculation_defences = off */
	/*
	 * IA32_SPEC_CTRL exists: each vCPU has its own value, loaded at VM
	 * entry and stored at VM exit; root mode runs with host_spec_ctrl
	 * (loaded at VM exit).
	 */
	bool spec_ctrl;
	uint64_t host_spec_ctrl;
	bool ibpb_between_vms;
	bool l1d_flush_between_vms;
	bool l1d_flush_on_entry;  /* IA32_FLUSH_CMD before each VM entry */
	bool clear_buffers_on_entry; /* VERW before each VM entry */
	unsigned rsb_fill;        /* return-stack entries overwritten after each VM exit */
	bool exec_4k_pages;       /* no executable 2-MiB EPT page */
	/* What guests are shown: CPUID.(EAX=7,ECX=0):EDX bits and IA32_ARCH_CAPABILITIES. */
	uint32_t guest_cpuid7_edx;
	/*
	 * The IA32_SPEC_CTRL bits a guest's WRMSR can set (the CPU checks
	 * them, as guests write it directly): those of its controls, and of
	 * CPUID.(7,2):EDX's, which it is not shown but the CPU takes.
	 */
	uint64_t guest_spec_ctrl_bits;
	bool guest_arch_caps_msr;
	uint64_t guest_arch_caps;
	/* Per bug (bit enum cpu_bug): the CPU has it; and no defence here covers it. */
	uint32_t affected, uncovered;
};

/* The return stack's depth on the CPUs that need it filled. */
#define SPECULATION_RSB_DEPTH 32

/*
 * enabled: the host's own defences ([hypervisor] speculation_defences);
 * guests get their controls either way.
 */
void speculation_choose(const struct speculation_cpu *cpu, bool enabled,
			struct speculation_defences *out);

/* CPUID.(EAX=7,ECX=0):EDX's speculation controls a guest is shown, from the host's. */
uint32_t speculation_guest_cpuid7_edx(uint32_t host_edx);

/* A bug's short name ("L1TF"), and one line on what is done about it here. */
const char *speculation_bug_name(enum cpu_bug bug);
const char *speculation_bug_defence(const struct speculation_defences *d, enum cpu_bug bug);

/*
 * The defences this host chose (speculation_init in root mode); zero
 * (nothing offered, nothing done) until then and in host-built tests.
 */
extern struct speculation_defences speculation;

/*
 * Reads the CPU, chooses, sets root mode's IA32_SPEC_CTRL and reports a
 * line per bug that applies (vmm/speculation_cpu.c). Before VMXON.
 */
void speculation_init(bool enabled);

#endif
