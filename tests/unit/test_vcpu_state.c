/*
 * struct vcpu_state as a record (vmm/vcpu_state.c): every described field
 * survives save and load, every range and cross-field rule refuses a bad
 * value and names the field, on a record and on a state loaded directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "lib/le.h"
#include "vmm/vcpu_state.h"
#include "vmm/xstate.h"
#include "x86/cpu.h"
#include "x86/msr.h"
#include "x86/segment.h"

#define RECORD_HEADER (1 + sizeof(VCPU_STATE_RECORD_NAME) - 1 + 2 + 4)
#define CR4_OSFXSR (1ULL << 9)
#define CR4_OSXMMEXCPT (1ULL << 10)
#define RFLAGS_RESERVED_1 (1ULL << 1)
#define RFLAGS_VM (1ULL << 17)
#define MXCSR_DAZ (1U << 6)

static const struct vcpu_state_limits limits = {
	.cr4_allowed = 0x3fffffULL & ~(CR4_VMXE | CR4_SMXE),
	.maxphyaddr = 46,
	.linear_address_bits = 48,
	.mxcsr_allowed = 0xffbf, /* no DAZ */
	.xcr0_allowed = XSTATE_X87 | XSTATE_SSE | XSTATE_AVX, /* no AVX-512 */
	.spec_ctrl_allowed = SPEC_CTRL_IBRS | SPEC_CTRL_SSBD, /* no STIBP */
};

static struct vcpu_segment flat(uint16_t selector, uint32_t attributes)
{
	return (struct vcpu_segment){ .selector = selector, .limit = 0xffffffff,
				      .attributes = attributes };
}

/* A 64-bit kernel taking a page fault, every described field away from its reset value. */
static struct vcpu_state long_mode_state(void)
{
	struct vcpu_state s = {
		.rip = 0xffffffff81000000ULL,
		.rflags = RFLAGS_IF | RFLAGS_ZF | RFLAGS_PF | RFLAGS_RESERVED_1,
		.cr0 = CR0_PE | CR0_NE | CR0_WP | CR0_PG | 0x2,
		.cr2 = 0xdeadbeef000ULL,
		.cr3 = 0x12345000,
		.cr4 = CR4_PAE | CR4_PGE | CR4_OSFXSR | CR4_OSXMMEXCPT,
		.dr = { 0x1000, 0x2000, 0x3000, 0x4000 },
		.dr6 = 0xffff0ff1,
		.dr7 = 0x401,
		.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE,
		.pat = 0x0007010600070106ULL,
		.misc_enable = MISC_ENABLE_LIMIT_CPUID,
		.tsc_adjust = (uint64_t)-5000,
		.sysenter_cs = 0x10,
		.sysenter_esp = 0xfffffe0000002000ULL,
		.sysenter_eip = 0xffffffff81800000ULL,
		.star = 0x0023001000000000ULL,
		.lstar = 0xffffffff81a00000ULL,
		.cstar = 0xffffffff81a00100ULL,
		.sfmask = 0x47700,
		.kernel_gs_base = 0x7f0000001000ULL,
		.tsc_aux = 0x1234,
		.spec_ctrl = SPEC_CTRL_IBRS,
		.gdtr_base = 0xfffffe0000001000ULL,
		.gdtr_limit = 0x7f,
		.idtr_base = 0xfffffe0000000000ULL,
		.idtr_limit = 0xfff,
		.interruptibility = VCPU_BLOCKING_NMI,
		.pending_debug = 0x2,
		.event = { .pending = true, .type = VCPU_EVENT_HARDWARE_EXCEPTION,
			   .vector = VECTOR_PF, .has_error_code = true, .error_code = 0x7,
			   .instruction_length = 3 },
		.fpu = { .fcw = 0x37f, .fsw = 0x3800, .ftw = 0x81, .fop = 0x7ff,
			 .fip = 0x401000, .fdp = 0x602000, .mxcsr = 0x1fa0 },
	};
	for (unsigned i = 0; i < 16; i++)
		s.gpr[i] = 0x1111111111111111ULL * (i + 1);
	for (unsigned i = 0; i < 16; i++)
		s.fpu.st[i] = 0x0101010101010101ULL * (i + 1);
	for (unsigned i = 0; i < 32; i++)
		s.fpu.xmm[i] = 0x0202020202020202ULL * (i + 1);
	s.xcr0 = XSTATE_X87 | XSTATE_SSE | XSTATE_AVX;
	for (unsigned i = 0; i < 32; i++)
		s.ymm_hi[i] = 0x0303030303030303ULL * (i + 1);
	for (unsigned i = 0; i < 8; i++)
		s.opmask[i] = 0x0404040404040404ULL * (i + 1);
	for (unsigned i = 0; i < 64; i++)
		s.zmm_hi256[i] = 0x0505050505050505ULL * (i + 1);
	for (unsigned i = 0; i < 128; i++)
		s.hi16_zmm[i] = 0x0606060606060606ULL * (i + 1);
	for (unsigned i = SEG_ES; i <= SEG_GS; i++)
		s.seg[i] = flat(0x18, 0xc093); /* data, present, D, G */
	s.seg[SEG_CS] = flat(0x10, 0xa09b); /* 64-bit code: L, G */
	s.seg[SEG_FS] = (struct vcpu_segment){ .base = 0x7f1234567000ULL,
					       .attributes = VCPU_SEG_UNUSABLE };
	s.seg[SEG_GS] = (struct vcpu_segment){ .base = 0xffff888000000000ULL,
					       .attributes = VCPU_SEG_UNUSABLE };
	s.seg[SEG_LDTR] = (struct vcpu_segment){ .attributes = VCPU_SEG_UNUSABLE };
	s.seg[SEG_TR] = (struct vcpu_segment){ .selector = 0x40, .base = 0xfffffe0000003000ULL,
					       .limit = 0x4087, .attributes = 0x8b };
	return s;
}

/* 32-bit PAE paging: the PDPTE registers are state. */
static struct vcpu_state pae_state(void)
{
	struct vcpu_state s = long_mode_state();

	s.efer = EFER_NXE;
	s.rip = 0xc1000000;
	s.seg[SEG_CS] = flat(0x10, 0xc09b);
	s.seg[SEG_FS].base = 0;
	s.seg[SEG_GS].base = 0;
	s.seg[SEG_TR].base = 0xc2000000;
	s.seg[SEG_TR].limit = 0x67;
	for (unsigned i = 0; i < 4; i++)
		s.pdpte[i] = 0x100001ULL + 0x1000 * i;
	return s;
}

static size_t save(const struct vcpu_state *s, uint8_t *out)
{
	const struct devstate_instance record = { &vcpu_state_desc, (void *)s, NULL };
	size_t n = devstate_save(&record, 1, out, VCPU_STATE_RECORD_MAX);

	assert_true(n > 0);
	return n;
}

static bool load(const uint8_t *in, size_t len, struct vcpu_state *s, struct devstate_error *err)
{
	const struct devstate_instance record = { &vcpu_state_desc, s, NULL };

	vcpu_state_power_on(s);
	return devstate_load(&record, 1, in, len, err);
}

/* "field NAME" as devstate_refuse writes it, [] filled with index. */
static void field_text(const char *name, unsigned index, char *out, size_t size)
{
	const char *brackets = strstr(name, "[]");

	if (brackets)
		snprintf(out, size, "vcpu: field %.*s[%u]%s ", (int)(brackets - name), name, index,
			 brackets + 2);
	else
		snprintf(out, size, "vcpu: field %s ", name);
}

static void assert_names(const struct devstate_error *err, const char *name, unsigned index)
{
	char want[96];

	field_text(name, index, want, sizeof(want));
	if (strncmp(err->text, want, strlen(want)) != 0)
		fail_msg("refusal '%s' does not start with '%s'", err->text, want);
}

/* Refused by the codec's load of its record and by the check with limits, naming field. */
static void assert_refused(const struct vcpu_state *s, const char *name, unsigned index)
{
	uint8_t record[VCPU_STATE_RECORD_MAX];
	struct devstate_error err;
	struct vcpu_state loaded;

	size_t n = save(s, record);
	assert_false(load(record, n, &loaded, &err));
	assert_names(&err, name, index);
	memset(&err, 0, sizeof(err));
	assert_false(vcpu_state_check(s, &limits, &err));
	assert_names(&err, name, index);
}

static void assert_accepted(const struct vcpu_state *s)
{
	struct devstate_error err = { "" };

	if (!vcpu_state_check(s, &limits, &err))
		fail_msg("refused: %s", err.text);
}

static void test_valid_states_are_accepted(void **state)
{
	(void)state;
	struct vcpu_state s;

	vcpu_state_power_on(&s);
	assert_accepted(&s);
	s = long_mode_state();
	assert_accepted(&s);
	s = pae_state();
	assert_accepted(&s);
}

/* Every element of every described field comes back from its record. */
static void round_trip(const struct vcpu_state *s)
{
	uint8_t record[VCPU_STATE_RECORD_MAX];
	struct devstate_error err;
	struct vcpu_state loaded;

	size_t n = save(s, record);
	if (!load(record, n, &loaded, &err))
		fail_msg("%s", err.text);
	for (unsigned i = 0; i < vcpu_state_desc.field_count; i++) {
		const struct devstate_field *f = &vcpu_state_desc.fields[i];
		for (unsigned e = 0; e < f->count; e++) {
			size_t at = f->offset + (size_t)e * f->stride;
			if (memcmp((const uint8_t *)s + at, (const uint8_t *)&loaded + at,
				   DEVSTATE_TYPE_SIZE(f->type)) != 0)
				fail_msg("field %s element %u differs after save and load", f->name, e);
		}
	}
}

static void test_round_trip_field_by_field(void **state)
{
	(void)state;
	struct vcpu_state s = long_mode_state();

	round_trip(&s);
	s = pae_state();
	round_trip(&s);
	vcpu_state_power_on(&s);
	round_trip(&s);
}

static void test_record_fits_the_parking_space(void **state)
{
	(void)state;
	const struct vcpu_state s = long_mode_state();
	const struct devstate_instance record = { &vcpu_state_desc, (void *)&s, NULL };

	assert_true(devstate_saved_size(&record, 1) <= VCPU_STATE_RECORD_MAX);
}

/* Where element e of field f is in a record's payload. */
static size_t payload_offset(const struct devstate_field *f, unsigned e)
{
	size_t at = RECORD_HEADER;

	for (const struct devstate_field *g = vcpu_state_desc.fields; g != f; g++)
		at += (size_t)g->count * DEVSTATE_TYPE_SIZE(g->type);
	return at + (size_t)e * DEVSTATE_TYPE_SIZE(f->type);
}

/* Version 4 is the newest: 0 and a newer one are refused, not guessed at. */
static void test_unknown_versions_are_refused(void **state)
{
	(void)state;
	const struct vcpu_state s = long_mode_state();
	uint8_t record[VCPU_STATE_RECORD_MAX];
	struct devstate_error err;
	struct vcpu_state loaded;

	size_t n = save(&s, record);
	assert_int_equal(le_get(record + RECORD_HEADER - 6, 2), 4);
	le_put(record + RECORD_HEADER - 6, 5, 2);
	assert_false(load(record, n, &loaded, &err));
	assert_non_null(strstr(err.text, "version 5 unknown"));
	le_put(record + RECORD_HEADER - 6, 0, 2);
	assert_false(load(record, n, &loaded, &err));
	assert_false(load(record, n - 1, &loaded, &err));
}

/* A record cut down to an older version: without the fields added since. */
static size_t cut_to_version(uint8_t *record, size_t n, unsigned version)
{
	size_t cut = 0;

	/* Back to front, so that the offsets of the fields still to cut hold. */
	for (unsigned i = vcpu_state_desc.field_count; i-- > 0;) {
		const struct devstate_field *f = &vcpu_state_desc.fields[i];
		if (f->since <= version)
			continue;
		size_t at = payload_offset(f, 0), len = (size_t)f->count * DEVSTATE_TYPE_SIZE(f->type);
		memmove(record + at, record + at + len, n - at - len);
		n -= len;
		cut += len;
	}
	le_put(record + RECORD_HEADER - 6, version, 2);
	le_put(record + RECORD_HEADER - 4, le_get(record + RECORD_HEADER - 4, 4) - cut, 4);
	return n;
}

/*
 * Records of versions 1 (before IA32_MISC_ENABLE, IA32_TSC_ADJUST and
 * IA32_TSC_AUX were state), 2 (before XCR0 and the AVX/AVX-512 registers)
 * and 3 (before IA32_SPEC_CTRL) load, and the vCPU gets the power-on values
 * of what they lack.
 */
static void test_older_records_load(void **state)
{
	(void)state;
	const struct vcpu_state s = long_mode_state();
	uint8_t record[VCPU_STATE_RECORD_MAX];
	struct devstate_error err = { "" };
	struct vcpu_state loaded, want;

	for (unsigned version = 1; version <= 3; version++) {
		size_t n = cut_to_version(record, save(&s, record), version);
		if (!load(record, n, &loaded, &err))
			fail_msg("version %u refused: %s", version, err.text);
		want = s;
		want.spec_ctrl = 0;
		if (version <= 2) {
			want.xcr0 = XSTATE_X87;
			memset(want.ymm_hi, 0, sizeof(want.ymm_hi));
			memset(want.opmask, 0, sizeof(want.opmask));
			memset(want.zmm_hi256, 0, sizeof(want.zmm_hi256));
			memset(want.hi16_zmm, 0, sizeof(want.hi16_zmm));
		}
		if (version == 1) {
			want.misc_enable = MISC_ENABLE_FAST_STRINGS;
			want.tsc_aux = 0;
			want.tsc_adjust = 0;
		}
		assert_memory_equal(&loaded, &want, sizeof(want));
	}
}

/* Each field narrower than its type refuses max + 1 in its first and last element. */
static void test_each_range_rule_names_its_field(void **state)
{
	(void)state;
	const struct vcpu_state s = long_mode_state();
	uint8_t record[VCPU_STATE_RECORD_MAX];
	struct devstate_error err;
	struct vcpu_state loaded;
	unsigned ranges = 0;

	for (unsigned i = 0; i < vcpu_state_desc.field_count; i++) {
		const struct devstate_field *f = &vcpu_state_desc.fields[i];
		unsigned width = DEVSTATE_TYPE_SIZE(f->type);
		uint64_t type_max = width == 8 ? ~0ULL : (1ULL << (8 * width)) - 1;
		if (f->max == type_max)
			continue;
		ranges++;
		unsigned elements[2] = { 0, f->count - 1u };
		for (unsigned k = 0; k < 2; k++) {
			size_t n = save(&s, record);
			le_put(record + payload_offset(f, elements[k]), f->max + 1, width);
			assert_false(load(record, n, &loaded, &err));
			assert_names(&err, f->name, elements[k]);
			assert_non_null(strstr(err.text, "out of range"));
		}
	}
	assert_true(ranges >= 20);
}

/* MXCSR bits 31:16 would make the host's FXRSTOR fault: the range keeps them out. */
static void test_mxcsr_reserved_bits_are_refused(void **state)
{
	(void)state;
	struct vcpu_state s = long_mode_state();

	s.fpu.mxcsr = 0x11f80;
	assert_refused(&s, "fpu.mxcsr", 0);
}

struct mutation {
	void (*apply)(struct vcpu_state *s);
	const char *field;
	unsigned index;
};

#define MUTATION(name, body) \
	static void name(struct vcpu_state *s) { body; }
MUTATION(pg_without_pe, s->cr0 &= ~CR0_PE)
MUTATION(nw_without_cd, s->cr0 |= CR0_NW)
MUTATION(lma_without_paging, s->cr0 &= ~CR0_PG)
MUTATION(lma_without_lme, s->efer &= ~EFER_LME)
MUTATION(pcide_outside_long_mode, (s->efer = 0, s->cr0 &= ~CR0_PG, s->cr4 |= CR4_PCIDE))
MUTATION(pat_undefined_type, s->pat = 0x0007040600070402ULL)
MUTATION(lstar_not_canonical, s->lstar = 0x0100000000000000ULL)
MUTATION(gdtr_not_canonical, s->gdtr_base = 0x8000000000000000ULL)
MUTATION(rip_not_canonical, s->rip = 0x0100000000000000ULL)
MUTATION(rflags_bit1_clear, s->rflags &= ~RFLAGS_RESERVED_1)
MUTATION(rflags_bit3_set, s->rflags |= 1ULL << 3)
MUTATION(rflags_vm_in_long_mode, s->rflags |= RFLAGS_VM)
MUTATION(attributes_reserved, s->seg[SEG_DS].attributes |= 1U << 8)
MUTATION(fs_base_not_canonical, s->seg[SEG_FS].base = 1ULL << 56)
MUTATION(tr_unusable, s->seg[SEG_TR].attributes = VCPU_SEG_UNUSABLE)
MUTATION(cs_not_present, s->seg[SEG_CS].attributes &= ~SEG_ATTR_PRESENT)
MUTATION(cs_data_type_5, s->seg[SEG_CS].attributes ^= 0xe)
MUTATION(cs_dpl_not_ss_dpl, s->seg[SEG_CS].attributes |= SEG_ATTR_DPL_MASK)
MUTATION(cs_long_and_db, s->seg[SEG_CS].attributes |= SEG_ATTR_DB)
MUTATION(limit_against_g, s->seg[SEG_DS].limit = 0xfffff000)
MUTATION(ss_code, s->seg[SEG_SS].attributes ^= 0x8)
MUTATION(ds_not_accessed, s->seg[SEG_DS].attributes &= ~1U)
MUTATION(ds_execute_only, s->seg[SEG_DS].attributes ^= 0xa)
MUTATION(ds_system, s->seg[SEG_DS].attributes &= ~SEG_ATTR_S)
MUTATION(ds_base_high, s->seg[SEG_DS].base = 1ULL << 32)
MUTATION(tr_in_ldt, s->seg[SEG_TR].selector |= 4)
MUTATION(tr_16bit_in_long_mode, s->seg[SEG_TR].attributes = 0x83)
MUTATION(ldtr_not_ldt, s->seg[SEG_LDTR].attributes = 0x83)
MUTATION(sti_and_mov_ss, s->interruptibility = VCPU_BLOCKING_STI | VCPU_BLOCKING_MOV_SS)
MUTATION(sti_with_if_clear, (s->interruptibility = VCPU_BLOCKING_STI, s->rflags &= ~RFLAGS_IF))
MUTATION(smi_blocking, s->interruptibility = VCPU_BLOCKING_SMI)
MUTATION(shutdown, s->activity = VCPU_ACTIVITY_SHUTDOWN)
MUTATION(hlt_in_user_mode, (s->activity = VCPU_ACTIVITY_HLT, s->seg[SEG_SS].attributes |= SEG_ATTR_DPL_MASK,
	  s->seg[SEG_CS].attributes |= SEG_ATTR_DPL_MASK))
MUTATION(hlt_in_sti_shadow, (s->activity = VCPU_ACTIVITY_HLT, s->interruptibility = VCPU_BLOCKING_STI))
MUTATION(bs_without_tf, (s->interruptibility = VCPU_BLOCKING_MOV_SS, s->pending_debug = 1ULL << 14))
MUTATION(event_type_reserved, s->event.type = 1)
MUTATION(nmi_not_vector_2, (s->event.type = VCPU_EVENT_NMI, s->event.vector = 3, s->event.has_error_code = false,
	  s->interruptibility = 0))
MUTATION(exception_vector_32, s->event.vector = 32)
MUTATION(gp_without_error_code, (s->event.vector = VECTOR_GP, s->event.has_error_code = false))
MUTATION(ud_with_error_code, s->event.vector = VECTOR_UD)
MUTATION(int_n_without_length, (s->event.type = VCPU_EVENT_SOFTWARE_INTERRUPT, s->event.vector = 0x80,
	  s->event.has_error_code = false, s->event.instruction_length = 0))
MUTATION(interrupt_with_if_clear, (s->event.type = VCPU_EVENT_EXTERNAL_INTERRUPT, s->event.vector = 0x30,
	  s->event.has_error_code = false, s->rflags &= ~RFLAGS_IF))
MUTATION(nmi_while_blocked, (s->event.type = VCPU_EVENT_NMI, s->event.vector = 2, s->event.has_error_code = false))
MUTATION(hlt_with_gp, (s->activity = VCPU_ACTIVITY_HLT, s->event.vector = VECTOR_GP))
MUTATION(pdpte_outside_pae, s->pdpte[0] = 1)
MUTATION(xd_disabled_with_nxe, s->misc_enable |= MISC_ENABLE_XD_DISABLE)
MUTATION(xcr0_avx_without_sse, s->xcr0 = XSTATE_X87 | XSTATE_AVX)
MUTATION(xcr0_one_avx512_component, s->xcr0 |= XSTATE_OPMASK)
#undef MUTATION

static const struct mutation long_mode_rules[] = {
#define RULE(name, field, index) { name, field, index }
	RULE(pg_without_pe, "cr0", 0),
	RULE(nw_without_cd, "cr0", 0),
	RULE(lma_without_paging, "efer", 0),
	RULE(lma_without_lme, "efer", 0),
	RULE(pcide_outside_long_mode, "cr4", 0),
	RULE(pat_undefined_type, "pat", 0),
	RULE(lstar_not_canonical, "lstar", 0),
	RULE(gdtr_not_canonical, "gdtr_base", 0),
	RULE(rip_not_canonical, "rip", 0),
	RULE(rflags_bit1_clear, "rflags", 0),
	RULE(rflags_bit3_set, "rflags", 0),
	RULE(rflags_vm_in_long_mode, "rflags", 0),
	RULE(attributes_reserved, "seg[].attributes", SEG_DS),
	RULE(fs_base_not_canonical, "seg[].base", SEG_FS),
	RULE(tr_unusable, "seg[].attributes", SEG_TR),
	RULE(cs_not_present, "seg[].attributes", SEG_CS),
	RULE(cs_data_type_5, "seg[].attributes", SEG_CS),
	RULE(cs_dpl_not_ss_dpl, "seg[].attributes", SEG_CS),
	RULE(cs_long_and_db, "seg[].attributes", SEG_CS),
	RULE(limit_against_g, "seg[].limit", SEG_DS),
	RULE(ss_code, "seg[].attributes", SEG_SS),
	RULE(ds_not_accessed, "seg[].attributes", SEG_DS),
	RULE(ds_execute_only, "seg[].attributes", SEG_DS),
	RULE(ds_system, "seg[].attributes", SEG_DS),
	RULE(ds_base_high, "seg[].base", SEG_DS),
	RULE(tr_in_ldt, "seg[].selector", SEG_TR),
	RULE(tr_16bit_in_long_mode, "seg[].attributes", SEG_TR),
	RULE(ldtr_not_ldt, "seg[].attributes", SEG_LDTR),
	RULE(sti_and_mov_ss, "interruptibility", 0),
	RULE(sti_with_if_clear, "interruptibility", 0),
	RULE(smi_blocking, "interruptibility", 0),
	RULE(shutdown, "activity", 0),
	RULE(hlt_in_user_mode, "activity", 0),
	RULE(hlt_in_sti_shadow, "activity", 0),
	RULE(bs_without_tf, "pending_debug", 0),
	RULE(event_type_reserved, "event.type", 0),
	RULE(nmi_not_vector_2, "event.vector", 0),
	RULE(exception_vector_32, "event.vector", 0),
	RULE(gp_without_error_code, "event.has_error_code", 0),
	RULE(ud_with_error_code, "event.has_error_code", 0),
	RULE(int_n_without_length, "event.instruction_length", 0),
	RULE(interrupt_with_if_clear, "event.type", 0),
	RULE(nmi_while_blocked, "event.type", 0),
	RULE(hlt_with_gp, "event.type", 0),
	RULE(pdpte_outside_pae, "pdpte[]", 0),
	RULE(xd_disabled_with_nxe, "misc_enable", 0),
	RULE(xcr0_avx_without_sse, "xcr0", 0),
	RULE(xcr0_one_avx512_component, "xcr0", 0),
#undef RULE
};

static void test_each_cross_field_rule_names_its_field(void **state)
{
	(void)state;

	for (unsigned i = 0; i < sizeof(long_mode_rules) / sizeof(long_mode_rules[0]); i++) {
		const struct mutation *m = &long_mode_rules[i];
		struct vcpu_state s = long_mode_state();
		m->apply(&s);
		assert_refused(&s, m->field, m->index);
	}
}

static void test_pae_and_v8086_rules(void **state)
{
	(void)state;
	struct vcpu_state s = pae_state();

	s.pdpte[1] |= 1ULL << 5;
	assert_refused(&s, "pdpte[]", 1);

	/* Virtual-8086 mode: every data and code segment is selector * 16, 64 KiB, 0xf3. */
	s = pae_state();
	s.rflags |= RFLAGS_VM;
	assert_refused(&s, "seg[].attributes", SEG_ES);
	for (unsigned i = SEG_ES; i <= SEG_GS; i++)
		s.seg[i] = (struct vcpu_segment){ .selector = 0x1000, .base = 0x10000,
						  .limit = 0xffff, .attributes = 0xf3 };
	s.rip = 0x100;
	assert_accepted(&s);
}

/* The rules that depend on the CPU: refused by the check, not by the record. */
static void test_limits_of_this_cpu(void **state)
{
	(void)state;
	struct devstate_error err;
	struct vcpu_state s = long_mode_state();

	s.cr4 |= CR4_SMXE;
	assert_false(vcpu_state_check(&s, &limits, &err));
	assert_names(&err, "cr4", 0);

	s = long_mode_state();
	s.cr3 = 1ULL << 46;
	assert_false(vcpu_state_check(&s, &limits, &err));
	assert_names(&err, "cr3", 0);

	s = long_mode_state();
	s.fpu.mxcsr |= MXCSR_DAZ;
	assert_false(vcpu_state_check(&s, &limits, &err));
	assert_names(&err, "fpu.mxcsr", 0);

	s = pae_state();
	s.pdpte[3] |= 1ULL << 46;
	assert_false(vcpu_state_check(&s, &limits, &err));
	assert_names(&err, "pdpte[]", 3);

	s = long_mode_state();
	s.xcr0 |= XSTATE_AVX512;
	assert_false(vcpu_state_check(&s, &limits, &err));
	assert_names(&err, "xcr0", 0);

	/* Canonical for this CPU's linear-address width: 48 bits here, 57 where it has LA57. */
	s = long_mode_state();
	s.lstar = 0x0000800000000000ULL;
	assert_false(vcpu_state_check(&s, &limits, &err));
	assert_names(&err, "lstar", 0);
	struct vcpu_state_limits wide = limits;
	wide.linear_address_bits = 57;
	assert_true(vcpu_state_check(&s, &wide, &err));
	s.seg[SEG_GS].base = 0x0100000000000000ULL;
	assert_false(vcpu_state_check(&s, &wide, &err));
	assert_names(&err, "seg[].base", SEG_GS);

	/* IA32_SPEC_CTRL holds only the controls this CPU offers guests (vmm/speculation.h). */
	s = long_mode_state();
	s.spec_ctrl |= SPEC_CTRL_STIBP;
	assert_false(vcpu_state_check(&s, &limits, &err));
	assert_names(&err, "spec_ctrl", 0);
}

/* A boot mode's state: its registers over the power-on ones, an unusable segment marked so. */
static void test_from_boot(void **state)
{
	(void)state;
	struct vcpu_boot_state boot = {
		.rip = 0x100000, .rsp = 0x100000, .rflags = RFLAGS_RESERVED_1,
		.rsi = 0x7800, .rdi = 64ULL << 20,
		.cr0 = CR0_PE | CR0_NE | CR0_WP | CR0_PG | 0x10, .cr3 = 0x1000, .cr4 = CR4_PAE,
		.efer = EFER_LME | EFER_LMA, .gdt_base = 0x7000, .gdt_limit = 23,
	};
	struct vcpu_state s;

	for (unsigned i = SEG_ES; i <= SEG_GS; i++)
		boot.seg[i] = (struct segment_state){ .selector = 0x10, .limit = 0xffffffff,
						      .attributes = 0xc093 };
	boot.seg[SEG_CS] = (struct segment_state){ .selector = 8, .limit = 0xffffffff,
						   .attributes = 0xa09b };
	boot.seg[SEG_TR] = (struct segment_state){ .limit = 0xffff, .attributes = 0x8b };
	vcpu_state_from_boot(&boot, &s);
	assert_accepted(&s);
	assert_int_equal(s.gpr[4], 0x100000);
	assert_int_equal(s.gpr[6], 0x7800);
	assert_int_equal(s.gpr[7], 64ULL << 20);
	assert_int_equal(s.seg[SEG_LDTR].attributes, VCPU_SEG_UNUSABLE);
	assert_int_equal(s.seg[SEG_CS].attributes, 0xa09b);
	assert_int_equal(s.fpu.mxcsr, 0x1f80);
	assert_int_equal(s.dr6, 0xffff0ff0);
	assert_int_equal(s.dr7, 0x400);
	assert_int_equal(s.pat, 0x0007040600070406ULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_states_are_accepted),
		cmocka_unit_test(test_round_trip_field_by_field),
		cmocka_unit_test(test_record_fits_the_parking_space),
		cmocka_unit_test(test_unknown_versions_are_refused),
		cmocka_unit_test(test_older_records_load),
		cmocka_unit_test(test_each_range_rule_names_its_field),
		cmocka_unit_test(test_mxcsr_reserved_bits_are_refused),
		cmocka_unit_test(test_each_cross_field_rule_names_its_field),
		cmocka_unit_test(test_pae_and_v8086_rules),
		cmocka_unit_test(test_limits_of_this_cpu),
		cmocka_unit_test(test_from_boot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
