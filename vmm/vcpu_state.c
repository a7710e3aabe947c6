#include "vmm/vcpu_state.h"

#include "vmm/xstate.h"
#include "x86/cpu.h"
#include "x86/msr.h"
#include "x86/segment.h"

#include <stddef.h>
#include <string.h>

#define U64_MAX (~0ULL)
#define U32_MAX 0xffffffffULL
#define U16_MAX 0xffffULL

/* Power-on values (SDM Vol. 3A, table 9-1) the boot modes do not set. */
#define RFLAGS_RESERVED_1 (1ULL << 1)
#define CR0_POWER_ON 0x60000010ULL /* CD, NW, ET */
#define DR6_POWER_ON 0xffff0ff0ULL
#define DR7_POWER_ON 0x400ULL
#define PAT_POWER_ON 0x0007040600070406ULL /* SDM 11.12.4 */
#define FCW_POWER_ON 0x0040
#define MXCSR_POWER_ON 0x1f80
#define RESET_CS_SELECTOR 0xf000
#define RESET_CS_BASE 0xffff0000ULL
#define RESET_IP 0xfff0

/* Bits of RFLAGS that are reserved: 63:22, 15, 5, 3 zero; 1 one (SDM 26.3.1.4). */
#define RFLAGS_RESERVED_0 (~0x3fffffULL | (1ULL << 15) | (1ULL << 5) | (1ULL << 3))
#define RFLAGS_VM (1ULL << 17)
/* EFER bits the guest may have: vcpu_wrmsr refuses the rest. */
#define EFER_GUEST_BITS (EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE)
/*
 * Pending debug exceptions: B3-B0, enabled breakpoint, BS (SDM 24.4.2,
 * table 24-4); RTM (bit 16) cannot be pending as CPUID hides TSX.
 */
#define PENDING_DEBUG_BITS 0x500fULL
#define PENDING_DEBUG_BS (1ULL << 14)
/* Segment access rights bits 11:8 and 31:17 are reserved (SDM 24.4.1). */
#define SEG_ATTR_RESERVED 0xfffe0f00U
#define SEG_ATTR_TYPE_MASK 0xfU
#define SEG_ATTR_TYPE_ACCESSED 0x1U
#define SEG_ATTR_TYPE_READABLE 0x2U
#define SEG_ATTR_TYPE_CODE 0x8U
#define SEG_ATTR_V8086 0xf3U /* present, DPL 3, data read/write accessed */
#define SEG_ATTR_TYPE_TSS16_BUSY 0x3U
#define SELECTOR_TI (1U << 2)
/* PAE PDPTE bits that must be 0 (SDM Vol. 3A, 4.4.1): 2:1, 8:5. */
#define PDPTE_PRESENT 1ULL
#define PDPTE_RESERVED_LOW 0x1e6ULL
#define MAXPHYADDR_ARCH 52
#define FOP_BITS 0x7ffULL /* the last x87 opcode: 11 bits */
#define INSTRUCTION_MAX 15

#define F(member, type, lo, hi) DEVSTATE_FIELD(struct vcpu_state, member, type, lo, hi, 1)
#define A(member, type, lo, hi) DEVSTATE_ARRAY(struct vcpu_state, member, type, lo, hi, 1)
#define SEG(member, type, lo, hi) \
	DEVSTATE_STRUCT_ARRAY(struct vcpu_state, seg, member, type, lo, hi, 1)

static const struct devstate_field vcpu_state_fields[] = {
	A(gpr, DEVSTATE_U64, 0, U64_MAX),
	F(rip, DEVSTATE_U64, 0, U64_MAX),
	F(rflags, DEVSTATE_U64, 0, 0x3fffff),
	F(cr0, DEVSTATE_U64, 0, U32_MAX),
	F(cr2, DEVSTATE_U64, 0, U64_MAX),
	F(cr3, DEVSTATE_U64, 0, (1ULL << MAXPHYADDR_ARCH) - 1),
	F(cr4, DEVSTATE_U64, 0, U32_MAX),
	A(dr, DEVSTATE_U64, 0, U64_MAX),
	/* MOV to DR6/DR7 with bits 63:32 set is #GP, in the guest and the host. */
	F(dr6, DEVSTATE_U64, 0, U32_MAX),
	F(dr7, DEVSTATE_U64, 0, U32_MAX),
	F(efer, DEVSTATE_U64, 0, EFER_GUEST_BITS),
	F(pat, DEVSTATE_U64, 0, U64_MAX),
	/*
	 * The guest cannot write IA32_DEBUGCTL (#GP), and LBR or BTS would
	 * record into host MSRs no one switches: it is always 0.
	 */
	F(debugctl, DEVSTATE_U64, 0, 0),
	DEVSTATE_FIELD(struct vcpu_state, misc_enable, DEVSTATE_U64, 0, VCPU_MISC_ENABLE_BITS, 2),
	DEVSTATE_FIELD(struct vcpu_state, tsc_adjust, DEVSTATE_U64, 0, U64_MAX, 2),
	F(sysenter_cs, DEVSTATE_U64, 0, U16_MAX),
	F(sysenter_esp, DEVSTATE_U64, 0, U64_MAX),
	F(sysenter_eip, DEVSTATE_U64, 0, U64_MAX),
	F(star, DEVSTATE_U64, 0, U64_MAX),
	F(lstar, DEVSTATE_U64, 0, U64_MAX),
	F(cstar, DEVSTATE_U64, 0, U64_MAX),
	F(sfmask, DEVSTATE_U64, 0, U32_MAX),
	F(kernel_gs_base, DEVSTATE_U64, 0, U64_MAX),
	/* IA32_TSC_AUX bits 63:32 are reserved (WRMSR #GP). */
	DEVSTATE_FIELD(struct vcpu_state, tsc_aux, DEVSTATE_U64, 0, U32_MAX, 2),
	DEVSTATE_FIELD(struct vcpu_state, spec_ctrl, DEVSTATE_U64, 0, U64_MAX, 4),
	SEG(selector, DEVSTATE_U16, 0, U16_MAX),
	SEG(base, DEVSTATE_U64, 0, U64_MAX),
	SEG(limit, DEVSTATE_U32, 0, U32_MAX),
	SEG(attributes, DEVSTATE_U32, 0, VCPU_SEG_UNUSABLE | 0xffff),
	F(gdtr_base, DEVSTATE_U64, 0, U64_MAX),
	F(idtr_base, DEVSTATE_U64, 0, U64_MAX),
	F(gdtr_limit, DEVSTATE_U32, 0, U16_MAX),
	F(idtr_limit, DEVSTATE_U32, 0, U16_MAX),
	F(interruptibility, DEVSTATE_U32, 0,
	  VCPU_BLOCKING_STI | VCPU_BLOCKING_MOV_SS | VCPU_BLOCKING_SMI | VCPU_BLOCKING_NMI),
	F(activity, DEVSTATE_U32, 0, VCPU_ACTIVITY_WAIT_FOR_SIPI),
	F(pending_debug, DEVSTATE_U64, 0, PENDING_DEBUG_BITS),
	A(pdpte, DEVSTATE_U64, 0, U64_MAX),
	F(event.pending, DEVSTATE_BOOL, 0, 1),
	F(event.type, DEVSTATE_U8, 0, VCPU_EVENT_SOFTWARE_EXCEPTION),
	F(event.vector, DEVSTATE_U8, 0, 0xff),
	F(event.has_error_code, DEVSTATE_BOOL, 0, 1),
	/* Error codes are 16 bits; VM entry refuses more (SDM 26.2.1.3). */
	F(event.error_code, DEVSTATE_U32, 0, U16_MAX),
	F(event.instruction_length, DEVSTATE_U32, 0, INSTRUCTION_MAX),
	F(fpu.fcw, DEVSTATE_U16, 0, U16_MAX),
	F(fpu.fsw, DEVSTATE_U16, 0, U16_MAX),
	F(fpu.ftw, DEVSTATE_U8, 0, 0xff),
	F(fpu.fop, DEVSTATE_U16, 0, FOP_BITS),
	F(fpu.fip, DEVSTATE_U64, 0, U64_MAX),
	F(fpu.fdp, DEVSTATE_U64, 0, U64_MAX),
	/* MXCSR bits 31:16 are reserved: FXRSTOR of them is #GP, in the host (SDM Vol. 1, 11.6.6). */
	F(fpu.mxcsr, DEVSTATE_U32, 0, U16_MAX),
	A(fpu.st, DEVSTATE_U64, 0, U64_MAX),
	A(fpu.xmm, DEVSTATE_U64, 0, U64_MAX),
	DEVSTATE_FIELD(struct vcpu_state, xcr0, DEVSTATE_U64, XSTATE_X87, XSTATE_GUEST_MAX, 3),
	DEVSTATE_ARRAY(struct vcpu_state, ymm_hi, DEVSTATE_U64, 0, U64_MAX, 3),
	DEVSTATE_ARRAY(struct vcpu_state, opmask, DEVSTATE_U64, 0, U64_MAX, 3),
	DEVSTATE_ARRAY(struct vcpu_state, zmm_hi256, DEVSTATE_U64, 0, U64_MAX, 3),
	DEVSTATE_ARRAY(struct vcpu_state, hi16_zmm, DEVSTATE_U64, 0, U64_MAX, 3),
};

static bool refuse(struct devstate_error *err, const char *field, unsigned index,
		   const char *what, uint64_t value)
{
	return devstate_refuse(err, VCPU_STATE_RECORD_NAME, field, index, "= 0x%llx: %s",
			       (unsigned long long)value, what);
}

static unsigned seg_type(uint32_t attributes)
{
	return attributes & SEG_ATTR_TYPE_MASK;
}

static unsigned seg_dpl(uint32_t attributes)
{
	return (attributes & SEG_ATTR_DPL_MASK) >> SEG_ATTR_DPL_SHIFT;
}

static bool usable(const struct vcpu_segment *seg)
{
	return !(seg->attributes & VCPU_SEG_UNUSABLE);
}

static bool long_mode_active(const struct vcpu_state *s)
{
	return s->efer & EFER_LMA;
}

static bool pae_paging(const struct vcpu_state *s)
{
	return (s->cr0 & CR0_PG) && (s->cr4 & CR4_PAE) && !long_mode_active(s);
}

/* CR0, CR4, EFER and their combinations (SDM 26.3.1.1, Vol. 3A 2.5 and 9.8.5). */
static bool check_control_registers(const struct vcpu_state *s, struct devstate_error *err)
{
	if ((s->cr0 & CR0_PG) && !(s->cr0 & CR0_PE))
		return refuse(err, "cr0", 0, "paging without protected mode", s->cr0);
	if ((s->cr0 & CR0_NW) && !(s->cr0 & CR0_CD))
		return refuse(err, "cr0", 0, "NW without CD (MOV to CR0 is #GP)", s->cr0);
	if (long_mode_active(s) && (!(s->cr0 & CR0_PG) || !(s->cr4 & CR4_PAE)))
		return refuse(err, "efer", 0, "LMA without CR0.PG and CR4.PAE", s->efer);
	if ((s->cr0 & CR0_PG) && !!(s->efer & EFER_LMA) != !!(s->efer & EFER_LME))
		return refuse(err, "efer", 0, "LMA differs from LME under paging", s->efer);
	if (!long_mode_active(s) && (s->cr4 & CR4_PCIDE))
		return refuse(err, "cr4", 0, "PCIDE outside IA-32e mode", s->cr4);
	if (!x86_pat_valid(s->pat))
		return refuse(err, "pat", 0, "an entry is not a memory type", s->pat);
	if (!xstate_xcr0_valid(s->xcr0, XSTATE_GUEST_MAX))
		return refuse(err, "xcr0", 0, "a value XSETBV refuses", s->xcr0);
	if ((s->misc_enable & ~VCPU_MISC_ENABLE_BITS) ||
	    ((s->misc_enable & MISC_ENABLE_XD_DISABLE) && (s->efer & EFER_NXE)))
		return refuse(err, "misc_enable", 0, "a bit no guest can set, or XD disabled with "
			      "EFER.NXE set", s->misc_enable);
	return true;
}

/*
 * What holds a linear address must be canonical for the CPU's linear-address
 * width, va_bits (CPUID.80000008H:EAX[15:8]; 57 on CPUs with 5-level paging,
 * whatever CR4.LA57 is): MSRs and table registers, the FS, GS, TR and LDTR
 * bases, and RIP in 64-bit code (SDM 26.3.1.1-4).
 */
static bool check_addresses(const struct vcpu_state *s, unsigned va_bits,
			    struct devstate_error *err)
{
	const struct {
		const char *name;
		unsigned index;
		uint64_t value;
	} addresses[] = {
		{ "sysenter_esp", 0, s->sysenter_esp }, { "sysenter_eip", 0, s->sysenter_eip },
		{ "lstar", 0, s->lstar },               { "cstar", 0, s->cstar },
		{ "kernel_gs_base", 0, s->kernel_gs_base },
		{ "gdtr_base", 0, s->gdtr_base },       { "idtr_base", 0, s->idtr_base },
		{ "seg[].base", SEG_FS, s->seg[SEG_FS].base },
		{ "seg[].base", SEG_GS, s->seg[SEG_GS].base },
		{ "seg[].base", SEG_TR, s->seg[SEG_TR].base },
		{ "seg[].base", SEG_LDTR, s->seg[SEG_LDTR].base },
	};

	for (unsigned i = 0; i < sizeof(addresses) / sizeof(addresses[0]); i++)
		if (!x86_canonical(addresses[i].value, va_bits))
			return refuse(err, addresses[i].name, addresses[i].index, "not canonical",
				      addresses[i].value);
	bool code64 = long_mode_active(s) && (s->seg[SEG_CS].attributes & SEG_ATTR_LONG);
	if (code64 && !x86_canonical(s->rip, va_bits))
		return refuse(err, "rip", 0, "not canonical", s->rip);
	return true;
}

/* A usable segment's limit and G agree: byte granular below 1 MiB, 4-KiB pages above. */
static bool limit_matches_granularity(const struct vcpu_segment *seg)
{
	bool g = seg->attributes & SEG_ATTR_GRANULARITY;

	if ((seg->limit & 0xfff) != 0xfff && g)
		return false;
	return seg->limit <= 0xfffff || g;
}

static bool check_code_segment(const struct vcpu_state *s, struct devstate_error *err)
{
	const struct vcpu_segment *cs = &s->seg[SEG_CS];
	uint32_t ar = cs->attributes;
	unsigned type = seg_type(ar), ss_dpl = seg_dpl(s->seg[SEG_SS].attributes);

	if (!usable(cs))
		return refuse(err, "seg[].attributes", SEG_CS, "CS unusable", ar);
	/* Type 3 (read/write data) is the real-mode CS of unrestricted guests. */
	if (type != 3 && type != 9 && type != 11 && type != 13 && type != 15)
		return refuse(err, "seg[].attributes", SEG_CS, "CS type not 3, 9, 11, 13, 15", ar);
	if (type == 3 && seg_dpl(ar) != 0)
		return refuse(err, "seg[].attributes", SEG_CS, "type 3 with DPL above 0", ar);
	if ((type == 9 || type == 11) && seg_dpl(ar) != ss_dpl)
		return refuse(err, "seg[].attributes", SEG_CS, "non-conforming DPL is not SS.DPL", ar);
	if (type >= 13 && seg_dpl(ar) > ss_dpl)
		return refuse(err, "seg[].attributes", SEG_CS, "conforming DPL above SS.DPL", ar);
	if (long_mode_active(s) && (ar & SEG_ATTR_LONG) && (ar & SEG_ATTR_DB))
		return refuse(err, "seg[].attributes", SEG_CS, "L and D both set", ar);
	if (s->seg[SEG_CS].base >> 32)
		return refuse(err, "seg[].base", SEG_CS, "CS base above 4 GiB", cs->base);
	return true;
}

static bool check_data_segment(const struct vcpu_state *s, unsigned i, struct devstate_error *err)
{
	const struct vcpu_segment *seg = &s->seg[i];
	uint32_t ar = seg->attributes;
	unsigned type = seg_type(ar);

	if (i == SEG_SS) {
		if (type != 3 && type != 7)
			return refuse(err, "seg[].attributes", i, "SS type not 3 or 7", ar);
		if ((seg_type(s->seg[SEG_CS].attributes) == 3 || !(s->cr0 & CR0_PE)) && seg_dpl(ar))
			return refuse(err, "seg[].attributes", i, "SS.DPL above 0 in real mode", ar);
	} else {
		if (!(type & SEG_ATTR_TYPE_ACCESSED))
			return refuse(err, "seg[].attributes", i, "not accessed", ar);
		if ((type & SEG_ATTR_TYPE_CODE) && !(type & SEG_ATTR_TYPE_READABLE))
			return refuse(err, "seg[].attributes", i, "execute-only code", ar);
	}
	if (!(ar & SEG_ATTR_S))
		return refuse(err, "seg[].attributes", i, "a system segment", ar);
	if (i != SEG_FS && i != SEG_GS && (seg->base >> 32))
		return refuse(err, "seg[].base", i, "base above 4 GiB", seg->base);
	return true;
}

static bool check_system_segment(const struct vcpu_state *s, unsigned i, struct devstate_error *err)
{
	const struct vcpu_segment *seg = &s->seg[i];
	uint32_t ar = seg->attributes;
	unsigned type = seg_type(ar);

	if (seg->selector & SELECTOR_TI)
		return refuse(err, "seg[].selector", i, "in the LDT", seg->selector);
	if (ar & SEG_ATTR_S)
		return refuse(err, "seg[].attributes", i, "not a system segment", ar);
	if (i == SEG_LDTR && type != SEG_ATTR_TYPE_LDT)
		return refuse(err, "seg[].attributes", i, "LDTR type not LDT (2)", ar);
	if (i == SEG_TR && type != SEG_ATTR_TYPE_TSS_BUSY &&
	    (type != SEG_ATTR_TYPE_TSS16_BUSY || long_mode_active(s)))
		return refuse(err, "seg[].attributes", i, "TR type not a busy TSS", ar);
	return true;
}

/* Segment registers (SDM 26.3.1.2), for an unrestricted guest. */
static bool check_segments(const struct vcpu_state *s, struct devstate_error *err)
{
	bool v8086 = s->rflags & RFLAGS_VM;

	for (unsigned i = 0; i < SEG_COUNT; i++) {
		const struct vcpu_segment *seg = &s->seg[i];
		uint32_t ar = seg->attributes;

		if (ar & SEG_ATTR_RESERVED)
			return refuse(err, "seg[].attributes", i, "reserved bits set", ar);
		if (v8086 && i <= SEG_GS) {
			if (seg->base != (uint64_t)seg->selector << 4 || seg->limit != 0xffff ||
			    ar != SEG_ATTR_V8086)
				return refuse(err, "seg[].attributes", i,
					      "not a virtual-8086 segment (base selector*16, "
					      "limit 0xffff, attributes 0xf3)", ar);
			continue;
		}
		if (!usable(seg)) {
			if (i == SEG_TR)
				return refuse(err, "seg[].attributes", i, "TR unusable", ar);
			continue;
		}
		if (!(ar & SEG_ATTR_PRESENT))
			return refuse(err, "seg[].attributes", i, "usable but not present", ar);
		if (!limit_matches_granularity(seg))
			return refuse(err, "seg[].limit", i, "does not match G", seg->limit);
		bool ok = i == SEG_CS ? check_code_segment(s, err)
			  : i >= SEG_LDTR ? check_system_segment(s, i, err)
					  : check_data_segment(s, i, err);
		if (!ok)
			return false;
	}
	return true;
}

/* RIP and RFLAGS (SDM 26.3.1.4). */
static bool check_rip_rflags(const struct vcpu_state *s, struct devstate_error *err)
{
	bool code64 = long_mode_active(s) && (s->seg[SEG_CS].attributes & SEG_ATTR_LONG);

	if (!code64 && (s->rip >> 32) != 0)
		return refuse(err, "rip", 0, "above 4 GiB outside 64-bit code", s->rip);
	if ((s->rflags & RFLAGS_RESERVED_0) || !(s->rflags & RFLAGS_RESERVED_1))
		return refuse(err, "rflags", 0, "reserved bits wrong (1 set, 3, 5, 15 clear)", s->rflags);
	if ((s->rflags & RFLAGS_VM) && (long_mode_active(s) || !(s->cr0 & CR0_PE)))
		return refuse(err, "rflags", 0, "VM outside protected mode", s->rflags);
	return true;
}

/* Interruptibility, activity and pending debug exceptions (SDM 26.3.1.5). */
static bool check_non_register_state(const struct vcpu_state *s, struct devstate_error *err)
{
	uint32_t blocking = s->interruptibility;
	bool sti_or_mov_ss = blocking & (VCPU_BLOCKING_STI | VCPU_BLOCKING_MOV_SS);

	if ((blocking & VCPU_BLOCKING_STI) && (blocking & VCPU_BLOCKING_MOV_SS))
		return refuse(err, "interruptibility", 0, "blocking by STI and by MOV SS", blocking);
	if ((blocking & VCPU_BLOCKING_STI) && !(s->rflags & RFLAGS_IF))
		return refuse(err, "interruptibility", 0, "blocking by STI with IF clear", blocking);
	if (blocking & VCPU_BLOCKING_SMI)
		return refuse(err, "interruptibility", 0, "blocking by SMI: no SMM", blocking);
	/*
	 * HLT is emulated (the hypervisor exits on it); shutdown and
	 * wait-for-SIPI never happen: a triple fault ends the VM, and a
	 * one-vCPU VM gets no SIPI.
	 */
	if (s->activity > VCPU_ACTIVITY_HLT)
		return refuse(err, "activity", 0, "only active and HLT are modelled", s->activity);
	if (s->activity == VCPU_ACTIVITY_HLT && seg_dpl(s->seg[SEG_SS].attributes))
		return refuse(err, "activity", 0, "HLT above CPL 0", s->activity);
	if (s->activity != VCPU_ACTIVITY_ACTIVE && sti_or_mov_ss)
		return refuse(err, "activity", 0, "not active with STI or MOV SS blocking",
			      s->activity);
	/* With BTF never set (DEBUGCTL is 0), a pending single step is BS = TF. */
	if ((sti_or_mov_ss || s->activity == VCPU_ACTIVITY_HLT) &&
	    !!(s->pending_debug & PENDING_DEBUG_BS) != !!(s->rflags & RFLAGS_TF))
		return refuse(err, "pending_debug", 0, "BS differs from RFLAGS.TF while blocked",
			      s->pending_debug);
	return true;
}

static bool exception_has_error_code(unsigned vector)
{
	return vector == VECTOR_DF || vector == VECTOR_TS || vector == VECTOR_NP ||
	       vector == VECTOR_SS || vector == VECTOR_GP || vector == VECTOR_PF ||
	       vector == VECTOR_AC;
}

/* The pending event (SDM 26.2.1.3) and how it fits the rest (26.3.1.5). */
static bool check_event(const struct vcpu_state *s, struct devstate_error *err)
{
	const struct vcpu_event *e = &s->event;
	bool software = e->type >= VCPU_EVENT_SOFTWARE_INTERRUPT;

	if (!e->pending)
		return true;
	if (e->type == 1)
		return refuse(err, "event.type", 0, "reserved", e->type);
	if (e->type == VCPU_EVENT_NMI && e->vector != VECTOR_NMI)
		return refuse(err, "event.vector", 0, "an NMI is vector 2", e->vector);
	if (e->type == VCPU_EVENT_HARDWARE_EXCEPTION && e->vector > 31)
		return refuse(err, "event.vector", 0, "an exception is vector 0..31", e->vector);
	bool error_code = (s->cr0 & CR0_PE) && e->type == VCPU_EVENT_HARDWARE_EXCEPTION &&
			  exception_has_error_code(e->vector);
	if (e->has_error_code != error_code)
		return refuse(err, "event.has_error_code", 0,
			      error_code ? "this exception pushes an error code"
					 : "only protected-mode #DF #TS #NP #SS #GP #PF #AC push one",
			      e->has_error_code);
	if (software && e->instruction_length == 0)
		return refuse(err, "event.instruction_length", 0, "a software event needs 1..15",
			      e->instruction_length);
	if (e->type == VCPU_EVENT_EXTERNAL_INTERRUPT &&
	    ((s->interruptibility & (VCPU_BLOCKING_STI | VCPU_BLOCKING_MOV_SS)) ||
	     !(s->rflags & RFLAGS_IF)))
		return refuse(err, "event.type", 0, "an external interrupt while they are blocked",
			      e->type);
	if (e->type == VCPU_EVENT_NMI &&
	    (s->interruptibility & (VCPU_BLOCKING_MOV_SS | VCPU_BLOCKING_NMI)))
		return refuse(err, "event.type", 0, "an NMI while NMIs are blocked", e->type);
	if (s->activity == VCPU_ACTIVITY_HLT && e->type != VCPU_EVENT_EXTERNAL_INTERRUPT &&
	    e->type != VCPU_EVENT_NMI &&
	    !(e->type == VCPU_EVENT_HARDWARE_EXCEPTION &&
	      (e->vector == VECTOR_DB || e->vector == VECTOR_MC)))
		return refuse(err, "event.type", 0, "HLT only takes interrupts, NMI, #DB, #MC",
			      e->type);
	return true;
}

static bool check_pdptes(const struct vcpu_state *s, unsigned maxphyaddr,
			 struct devstate_error *err)
{
	uint64_t reserved = PDPTE_RESERVED_LOW | ~((1ULL << maxphyaddr) - 1);

	for (unsigned i = 0; i < 4; i++) {
		if (!pae_paging(s) && s->pdpte[i])
			return refuse(err, "pdpte[]", i, "set outside PAE paging", s->pdpte[i]);
		if ((s->pdpte[i] & PDPTE_PRESENT) && (s->pdpte[i] & reserved))
			return refuse(err, "pdpte[]", i, "reserved bits set", s->pdpte[i]);
	}
	return true;
}

/* The cross-field rules of a record, independent of the CPU (the codec's check). */
static bool check_architectural(const void *state, const void *live, const char *device,
				struct devstate_error *err)
{
	const struct vcpu_state *s = state;

	/* Nothing of a vCPU is fixed by wiring: live has nothing to compare. */
	(void)live;
	(void)device;
	return check_control_registers(s, err) && check_addresses(s, X86_VA_BITS_5LEVEL, err) &&
	       check_rip_rflags(s, err) && check_segments(s, err) &&
	       check_non_register_state(s, err) && check_event(s, err) &&
	       check_pdptes(s, MAXPHYADDR_ARCH, err);
}

bool vcpu_state_check(const struct vcpu_state *s, const struct vcpu_state_limits *limits,
		      struct devstate_error *err)
{
	if (!devstate_check(&vcpu_state_desc, s, err))
		return false;
	if (s->cr4 & ~limits->cr4_allowed)
		return refuse(err, "cr4", 0, "sets bits this CPU or the guest's CPUID lacks", s->cr4);
	if (s->cr3 >> limits->maxphyaddr)
		return refuse(err, "cr3", 0, "above MAXPHYADDR", s->cr3);
	if (s->fpu.mxcsr & ~limits->mxcsr_allowed)
		return refuse(err, "fpu.mxcsr", 0, "bits this CPU's MXCSR_MASK lacks (FXRSTOR #GP)",
			      s->fpu.mxcsr);
	if (s->xcr0 & ~limits->xcr0_allowed)
		return refuse(err, "xcr0", 0, "enables XSAVE state this CPU does not offer", s->xcr0);
	if (s->spec_ctrl & ~limits->spec_ctrl_allowed)
		return refuse(err, "spec_ctrl", 0,
			      "sets IA32_SPEC_CTRL bits this CPU does not offer guests", s->spec_ctrl);
	return check_addresses(s, limits->linear_address_bits, err) &&
	       check_pdptes(s, limits->maxphyaddr, err);
}

void vcpu_state_power_on(struct vcpu_state *s)
{
	*s = (struct vcpu_state){
		.rip = RESET_IP,
		.rflags = RFLAGS_RESERVED_1,
		.cr0 = CR0_POWER_ON,
		.dr6 = DR6_POWER_ON,
		.dr7 = DR7_POWER_ON,
		.pat = PAT_POWER_ON,
		.misc_enable = MISC_ENABLE_FAST_STRINGS,
		.gdtr_limit = 0xffff,
		.idtr_limit = 0xffff,
		.fpu = { .fcw = FCW_POWER_ON, .mxcsr = MXCSR_POWER_ON },
		.xcr0 = XSTATE_X87,
	};
	for (unsigned i = SEG_ES; i <= SEG_GS; i++)
		s->seg[i] = (struct vcpu_segment){
			.limit = 0xffff,
			.attributes = SEG_ATTR_TYPE_DATA_RW_ACCESSED | SEG_ATTR_S | SEG_ATTR_PRESENT,
		};
	s->seg[SEG_CS].selector = RESET_CS_SELECTOR;
	s->seg[SEG_CS].base = RESET_CS_BASE;
	s->seg[SEG_CS].attributes = SEG_ATTR_TYPE_CODE_RX_ACCESSED | SEG_ATTR_S | SEG_ATTR_PRESENT;
	s->seg[SEG_LDTR] = (struct vcpu_segment){
		.limit = 0xffff,
		.attributes = SEG_ATTR_TYPE_LDT | SEG_ATTR_PRESENT,
	};
	s->seg[SEG_TR] = (struct vcpu_segment){
		.limit = 0xffff,
		.attributes = SEG_ATTR_TYPE_TSS_BUSY | SEG_ATTR_PRESENT,
	};
}

static void reset_record(void *state)
{
	vcpu_state_power_on(state);
}

const struct devstate_desc vcpu_state_desc = DEVSTATE_DESC(
	struct vcpu_state, VCPU_STATE_RECORD_NAME, 4, vcpu_state_fields, reset_record,
	check_architectural);

void vcpu_state_from_boot(const struct vcpu_boot_state *boot, struct vcpu_state *s)
{
	vcpu_state_power_on(s);
	s->gpr[4] = boot->rsp;
	s->gpr[6] = boot->rsi;
	s->gpr[7] = boot->rdi;
	s->rip = boot->rip;
	s->rflags = boot->rflags;
	s->cr0 = boot->cr0;
	s->cr3 = boot->cr3;
	s->cr4 = boot->cr4;
	s->efer = boot->efer;
	for (unsigned i = 0; i < SEG_COUNT; i++) {
		const struct segment_state *seg = &boot->seg[i];
		s->seg[i] = (struct vcpu_segment){
			.selector = seg->selector,
			.base = seg->base,
			.limit = seg->limit,
			.attributes = seg->attributes ? seg->attributes : VCPU_SEG_UNUSABLE,
		};
	}
	s->gdtr_base = boot->gdt_base;
	s->gdtr_limit = boot->gdt_limit;
	s->idtr_base = boot->idt_base;
	s->idtr_limit = boot->idt_limit;
}
