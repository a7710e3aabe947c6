/*
 * Thin wrappers around the x86-64 instructions the hypervisor needs, and
 * the architectural register bits. Host-built code and tests include it
 * for the bits (the guest page walker): the wrappers compile on any x86-64
 * host, but the privileged ones (MSRs, control registers, hlt) only run in
 * the hypervisor.
 */
#ifndef X86_CPU_H
#define X86_CPU_H

#include <stdbool.h>
#include <stdint.h>

struct cpuid_regs {
	uint32_t eax, ebx, ecx, edx;
};

/* CPUID leaf 80000008H: EAX[7:0] is MAXPHYADDR (SDM Vol. 2A, CPUID). */
#define CPUID_ADDRESS_SIZES 0x80000008U
/* CPUID.01H:ECX.XSAVE[bit 26]: XSAVE/XRSTOR, XSETBV/XGETBV and XCR0. */
#define CPUID_01_ECX_XSAVE (1U << 26)
/* CPUID.01H:EDX.APIC[bit 9]: an on-chip local APIC, present only while enabled (SDM 11.4.3). */
#define CPUID_01_EDX_APIC (1U << 9)
/* CPUID.80000001h:EDX.NX[bit 20]: execute-disable in the host's own tables. */
#define CPUID_80000001_EDX_NX (1U << 20)
/* CPUID.80000001h:EDX.RDTSCP[bit 27] and CPUID.(EAX=7,ECX=0):ECX.RDPID[bit 22]. */
#define CPUID_80000001_EDX_RDTSCP (1U << 27)
#define CPUID_07_ECX_RDPID (1U << 22)
/*
 * CPUID.(EAX=7,ECX=0):EDX, the speculative-execution controls (Intel,
 * "Speculative Execution Side Channel Mitigations", and SDM Vol. 2A CPUID):
 * VERW clears CPU buffers (MD_CLEAR), IA32_SPEC_CTRL with IBRS and
 * IA32_PRED_CMD with IBPB, STIBP, IA32_FLUSH_CMD, IA32_ARCH_CAPABILITIES,
 * and SSBD in IA32_SPEC_CTRL.
 */
#define CPUID_07_EDX_MD_CLEAR (1U << 10)
#define CPUID_07_EDX_SPEC_CTRL (1U << 26)
#define CPUID_07_EDX_STIBP (1U << 27)
#define CPUID_07_EDX_L1D_FLUSH (1U << 28)
#define CPUID_07_EDX_ARCH_CAPS (1U << 29)
#define CPUID_07_EDX_SSBD (1U << 31)
/* CPUID.(EAX=7,ECX=2):EDX: more IA32_SPEC_CTRL controls. */
#define CPUID_07_2_EDX_PSFD (1U << 0)
#define CPUID_07_2_EDX_IPRED_CTRL (1U << 1)
#define CPUID_07_2_EDX_RRSBA_CTRL (1U << 2)
#define CPUID_07_2_EDX_DDPD_U (1U << 3)
#define CPUID_07_2_EDX_BHI_CTRL (1U << 4)
/* CPUID.(EAX=7,ECX=0):EBX.RTM[bit 11]: TSX, what TAA needs. */
#define CPUID_07_EBX_RTM (1U << 11)
/* CPUID.80000001h:EDX.Page1GB[bit 26]: 1-GiB pages in the host's own tables. */
#define CPUID_80000001_EDX_PAGE1GB (1U << 26)

/*
 * index when index < size, else 0, without a branch the CPU could
 * mispredict (Spectre v1): for a table indexed by a guest-chosen number
 * after its bounds check. CMP's carry is index < size; SBB spreads it.
 */
static inline uint64_t index_nospec(uint64_t index, uint64_t size)
{
	uint64_t mask;

	__asm__("cmp %2, %1\n\tsbb %0, %0" : "=r"(mask) : "r"(index), "r"(size) : "cc");
	return index & mask;
}

static inline struct cpuid_regs cpuid(uint32_t leaf, uint32_t subleaf)
{
	struct cpuid_regs r;
	__asm__ volatile("cpuid"
			 : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx)
			 : "a"(leaf), "c"(subleaf));
	return r;
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t value)
{
	__asm__ volatile("wrmsr"
			 :
			 : "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32))
			 : "memory");
}

/* XCR0 (SDM Vol. 2C, XGETBV/XSETBV); both need CR4.OSXSAVE. */
static inline uint64_t xgetbv(uint32_t index)
{
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(index));
	return ((uint64_t)hi << 32) | lo;
}

static inline void xsetbv(uint32_t index, uint64_t value)
{
	__asm__ volatile("xsetbv"
			 :
			 : "c"(index), "a"((uint32_t)value), "d"((uint32_t)(value >> 32))
			 : "memory");
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* read_crN/write_crN and read_drN/write_drN for the registers we use. */
#define DEFINE_REG_ACCESSORS(name, reg)                                      \
	static inline uint64_t read_##name(void)                             \
	{                                                                    \
		uint64_t v;                                                  \
		__asm__ volatile("mov %%" #reg ", %0" : "=r"(v));            \
		return v;                                                    \
	}                                                                    \
	static inline void write_##name(uint64_t v)                          \
	{                                                                    \
		__asm__ volatile("mov %0, %%" #reg : : "r"(v) : "memory");   \
	}
DEFINE_REG_ACCESSORS(cr0, cr0)
DEFINE_REG_ACCESSORS(cr2, cr2)
DEFINE_REG_ACCESSORS(cr3, cr3)
DEFINE_REG_ACCESSORS(cr4, cr4)
DEFINE_REG_ACCESSORS(dr0, db0)
DEFINE_REG_ACCESSORS(dr1, db1)
DEFINE_REG_ACCESSORS(dr2, db2)
DEFINE_REG_ACCESSORS(dr3, db3)
DEFINE_REG_ACCESSORS(dr6, db6)
#undef DEFINE_REG_ACCESSORS

static inline uint64_t read_rflags(void)
{
	uint64_t v;
	__asm__ volatile("pushfq; pop %0" : "=r"(v));
	return v;
}

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause");
}

static inline void irq_disable(void)
{
	__asm__ volatile("cli" ::: "memory");
}

/* Stops this CPU for good: interrupts off, so only NMI/SMI can wake it. */
static inline __attribute__((noreturn)) void cpu_halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

/*
 * A linear address of a va_bits-wide address space is canonical when bits
 * 63:va_bits-1 are all equal (SDM Vol. 1, 3.3.7.1): 48 with 4-level paging.
 */
#define X86_VA_BITS_4LEVEL 48
#define X86_VA_BITS_5LEVEL 57
static inline bool x86_canonical(uint64_t va, unsigned va_bits)
{
	uint64_t top = va >> (va_bits - 1);

	return top == 0 || top == ~0ULL >> (va_bits - 1);
}

/* Each of IA32_PAT's 8 entries must be a defined memory type (SDM 11.12.2). */
static inline bool x86_pat_valid(uint64_t pat)
{
	for (unsigned i = 0; i < 8; i++) {
		unsigned type = (pat >> (8 * i)) & 0xff;
		if (type == 2 || type == 3 || type > 7)
			return false;
	}
	return true;
}

/* Exception vectors (SDM Vol. 3A, 6.3.1). */
#define VECTOR_DE 0
#define VECTOR_DB 1
#define VECTOR_NMI 2
#define VECTOR_BP 3
#define VECTOR_BR 5
#define VECTOR_UD 6
#define VECTOR_NM 7
#define VECTOR_DF 8
#define VECTOR_TS 10
#define VECTOR_NP 11
#define VECTOR_SS 12
#define VECTOR_GP 13
#define VECTOR_PF 14
#define VECTOR_MF 16
#define VECTOR_AC 17
#define VECTOR_MC 18
#define VECTOR_XM 19
#define VECTOR_VE 20

/* RFLAGS (SDM Vol. 1, 3.4.3); the status flags are the ones arithmetic sets. */
#define RFLAGS_CF (1ULL << 0)
#define RFLAGS_PF (1ULL << 2)
#define RFLAGS_AF (1ULL << 4)
#define RFLAGS_ZF (1ULL << 6)
#define RFLAGS_SF (1ULL << 7)
#define RFLAGS_IF (1ULL << 9)
#define RFLAGS_DF (1ULL << 10)
#define RFLAGS_OF (1ULL << 11)
#define RFLAGS_TF (1ULL << 8)
#define RFLAGS_NT (1ULL << 14)
#define RFLAGS_RF (1ULL << 16)
#define RFLAGS_STATUS (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)

#define CR0_PE (1ULL << 0)
#define CR0_TS (1ULL << 3)
#define CR0_NE (1ULL << 5)
#define CR0_WP (1ULL << 16)
#define CR0_NW (1ULL << 29)
#define CR0_CD (1ULL << 30)
#define CR0_PG (1ULL << 31)

/* DR6.BT: the debug exception came from a task switch to a TSS with T set (SDM 17.2.3). */
#define DR6_BT (1ULL << 15)
#define CR4_PSE (1ULL << 4)
#define CR4_PAE (1ULL << 5)
#define CR4_PCE (1ULL << 8)
#define CR4_PGE (1ULL << 7)
#define CR4_LA57 (1ULL << 12)
#define CR4_VMXE (1ULL << 13)
#define CR4_SMXE (1ULL << 14)
#define CR4_PCIDE (1ULL << 17)
#define CR4_OSXSAVE (1ULL << 18)
#define CR4_SMEP (1ULL << 20)
#define CR4_SMAP (1ULL << 21)
#define CR4_PKE (1ULL << 22)
#define CR4_CET (1ULL << 23)

#define EFER_SCE (1ULL << 0)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define EFER_NXE (1ULL << 11)

#endif
