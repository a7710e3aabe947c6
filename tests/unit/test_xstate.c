/*
 * The XSAVE components guests are offered (vmm/xstate.c): the layout from
 * CPUID leaf 0DH, XSETBV's rules, the CPUID bits and sizes guests see, and
 * the translation between an XSAVE area and struct vcpu_state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/xstate.h"

#define XSTATE_MPX (3ULL << 3)
#define XSTATE_PKRU (1ULL << 9)
#define C1_ECX_FMA (1U << 12)
#define C1_ECX_SSE3 (1U << 0)
#define C1_ECX_XSAVE (1U << 26)
#define C1_ECX_OSXSAVE (1U << 27)
#define C1_ECX_AVX (1U << 28)
#define C7_EBX_AVX2 (1U << 5)
#define C7_EBX_AVX512F (1U << 16)
#define C7_EBX_BMI2 (1U << 8)

/* CPUID.(0DH,i) of a Skylake server: x87, SSE, AVX, MPX, AVX-512, PKRU. */
static void skylake_server(struct cpuid_result leaf_d[XSTATE_COMPONENTS])
{
	memset(leaf_d, 0, sizeof(struct cpuid_result) * XSTATE_COMPONENTS);
	leaf_d[0] = (struct cpuid_result){ .eax = 0x2ff, .ebx = 576, .ecx = 2696 };
	leaf_d[1] = (struct cpuid_result){ .eax = 0xf, .ebx = 576 };
	leaf_d[2] = (struct cpuid_result){ .eax = 256, .ebx = 576 };
	leaf_d[3] = (struct cpuid_result){ .eax = 64, .ebx = 960 };
	leaf_d[4] = (struct cpuid_result){ .eax = 64, .ebx = 1024 };
	leaf_d[5] = (struct cpuid_result){ .eax = 64, .ebx = 1088 };
	leaf_d[6] = (struct cpuid_result){ .eax = 512, .ebx = 1152 };
	leaf_d[7] = (struct cpuid_result){ .eax = 1024, .ebx = 1664 };
}

static struct xstate_layout layout_of(const struct cpuid_result leaf_d[XSTATE_COMPONENTS],
				      uint32_t allowed)
{
	struct xstate_layout l;

	xstate_layout_init(&l, true, leaf_d, allowed);
	return l;
}

static void test_offers_avx_and_avx512_not_mpx_or_pkru(void **state)
{
	(void)state;
	struct cpuid_result leaf_d[XSTATE_COMPONENTS];

	skylake_server(leaf_d);
	struct xstate_layout l = layout_of(leaf_d, ~0U);
	assert_int_equal(l.components, XSTATE_GUEST_MAX);
	assert_int_equal(l.instructions, CPUID_0D_1_XSAVEOPT | CPUID_0D_1_XSAVEC |
						 CPUID_0D_1_XGETBV1 | CPUID_0D_1_XSAVES);
	assert_int_equal(l.offset[XSTATE_COMPONENTS - 1], 1664);

	l = layout_of(leaf_d, ~CPUID_0D_1_XSAVES);
	assert_false(l.instructions & CPUID_0D_1_XSAVES);
	/* xsave_compacted = off: neither compacting instruction, the rest as before. */
	l = layout_of(leaf_d, ~(CPUID_0D_1_XSAVEC | CPUID_0D_1_XSAVES));
	assert_int_equal(l.instructions, CPUID_0D_1_XSAVEOPT | CPUID_0D_1_XGETBV1);
	assert_int_equal(l.components, XSTATE_GUEST_MAX);

	xstate_layout_init(&l, false, leaf_d, ~0U);
	assert_int_equal(l.components, 0);
}

/* A component that does not look architectural is not offered, nor what needs it. */
static void test_drops_what_does_not_fit(void **state)
{
	(void)state;
	struct cpuid_result leaf_d[XSTATE_COMPONENTS];

	skylake_server(leaf_d);
	leaf_d[6].eax = 256;
	assert_int_equal(layout_of(leaf_d, ~0U).components, XSTATE_X87 | XSTATE_SSE | XSTATE_AVX);

	skylake_server(leaf_d);
	leaf_d[7].ebx = XSAVE_AREA_SIZE - 512;
	assert_int_equal(layout_of(leaf_d, ~0U).components, XSTATE_X87 | XSTATE_SSE | XSTATE_AVX);

	skylake_server(leaf_d);
	leaf_d[2].ebx = 0; /* AVX over the legacy area */
	assert_int_equal(layout_of(leaf_d, ~0U).components, XSTATE_X87 | XSTATE_SSE);

	skylake_server(leaf_d);
	leaf_d[0].eax = 1; /* no SSE: no XSAVE for guests at all */
	assert_int_equal(layout_of(leaf_d, ~0U).components, 0);
}

static void test_xsetbv_rules(void **state)
{
	(void)state;

	assert_true(xstate_xcr0_valid(XSTATE_X87, XSTATE_GUEST_MAX));
	assert_true(xstate_xcr0_valid(XSTATE_X87 | XSTATE_SSE | XSTATE_AVX, XSTATE_GUEST_MAX));
	assert_true(xstate_xcr0_valid(XSTATE_GUEST_MAX, XSTATE_GUEST_MAX));
	assert_false(xstate_xcr0_valid(0, XSTATE_GUEST_MAX));
	assert_false(xstate_xcr0_valid(XSTATE_SSE, XSTATE_GUEST_MAX));
	assert_false(xstate_xcr0_valid(XSTATE_X87 | XSTATE_AVX, XSTATE_GUEST_MAX));
	assert_false(xstate_xcr0_valid(XSTATE_X87 | XSTATE_SSE | XSTATE_AVX512, XSTATE_GUEST_MAX));
	assert_false(xstate_xcr0_valid(XSTATE_X87 | XSTATE_SSE | XSTATE_AVX | XSTATE_OPMASK,
				       XSTATE_GUEST_MAX));
	assert_false(xstate_xcr0_valid(XSTATE_X87 | XSTATE_SSE | XSTATE_PKRU, XSTATE_GUEST_MAX));
	assert_false(xstate_xcr0_valid(XSTATE_X87 | XSTATE_SSE | XSTATE_MPX, XSTATE_GUEST_MAX));
	assert_false(xstate_xcr0_valid(XSTATE_GUEST_MAX, XSTATE_X87 | XSTATE_SSE | XSTATE_AVX));
}

static void test_sizes(void **state)
{
	(void)state;
	struct cpuid_result leaf_d[XSTATE_COMPONENTS];

	skylake_server(leaf_d);
	struct xstate_layout l = layout_of(leaf_d, ~0U);
	assert_int_equal(xstate_standard_size(&l, XSTATE_X87), 576);
	assert_int_equal(xstate_standard_size(&l, XSTATE_X87 | XSTATE_SSE | XSTATE_AVX), 832);
	assert_int_equal(xstate_standard_size(&l, XSTATE_GUEST_MAX), 2688);
	/* Compacted, MPX's 128 bytes are not in the middle. */
	assert_int_equal(xstate_compacted_size(&l, XSTATE_GUEST_MAX), 576 + 256 + 64 + 512 + 1024);
	/*
	 * A component aligned to 64 bytes (CPUID.(0DH,i):ECX bit 1) starts on
	 * the next multiple; AVX shortened by a byte (not what init accepts)
	 * makes the alignment show.
	 */
	leaf_d[5].ecx = 2;
	l = layout_of(leaf_d, ~0U);
	l.size[2] = 255;
	assert_int_equal(xstate_compacted_size(&l, XSTATE_GUEST_MAX), 2432);
	l.aligned64 = 0;
	assert_int_equal(xstate_compacted_size(&l, XSTATE_GUEST_MAX), 2431);
}

static void test_cpuid_bits_follow_the_components(void **state)
{
	(void)state;
	struct cpuid_result leaf_d[XSTATE_COMPONENTS];
	const struct cpuid_result host1 = { .ecx = C1_ECX_SSE3 | C1_ECX_FMA | C1_ECX_XSAVE |
						   C1_ECX_OSXSAVE | C1_ECX_AVX };
	const struct cpuid_result policy1 = { .ecx = C1_ECX_SSE3 };
	const struct cpuid_result host7 = { .ebx = C7_EBX_AVX2 | C7_EBX_AVX512F | C7_EBX_BMI2 };
	const struct cpuid_result policy7 = { .ebx = C7_EBX_BMI2 };

	skylake_server(leaf_d);
	struct xstate_layout l = layout_of(leaf_d, ~0U);
	struct cpuid_result r = xstate_cpuid(&l, 1, 0, host1, policy1, XSTATE_X87, false);
	assert_int_equal(r.ecx, C1_ECX_SSE3 | C1_ECX_FMA | C1_ECX_XSAVE | C1_ECX_AVX);
	r = xstate_cpuid(&l, 1, 0, host1, policy1, XSTATE_X87, true);
	assert_true(r.ecx & C1_ECX_OSXSAVE);
	r = xstate_cpuid(&l, 7, 0, host7, policy7, XSTATE_X87, false);
	assert_int_equal(r.ebx, C7_EBX_AVX2 | C7_EBX_AVX512F | C7_EBX_BMI2);
	assert_int_equal(xstate_cpuid(&l, 7, 1, host7, policy7, XSTATE_X87, false).ebx, C7_EBX_BMI2);

	leaf_d[0].eax &= ~(uint32_t)XSTATE_AVX512;
	l = layout_of(leaf_d, ~0U);
	r = xstate_cpuid(&l, 7, 0, host7, policy7, XSTATE_X87, false);
	assert_int_equal(r.ebx, C7_EBX_AVX2 | C7_EBX_BMI2);

	xstate_layout_init(&l, false, leaf_d, ~0U);
	r = xstate_cpuid(&l, 1, 0, host1, policy1, XSTATE_X87, true);
	assert_int_equal(r.ecx, C1_ECX_SSE3);
	r = xstate_cpuid(&l, 0xd, 0, leaf_d[0], (struct cpuid_result){ 0 }, XSTATE_X87, true);
	assert_int_equal(r.eax | r.ebx | r.ecx | r.edx, 0);
}

static void test_leaf_0d(void **state)
{
	(void)state;
	struct cpuid_result leaf_d[XSTATE_COMPONENTS];
	const struct cpuid_result zero = { 0 };
	uint64_t avx = XSTATE_X87 | XSTATE_SSE | XSTATE_AVX;

	skylake_server(leaf_d);
	struct xstate_layout l = layout_of(leaf_d, ~CPUID_0D_1_XSAVES);
	struct cpuid_result r = xstate_cpuid(&l, 0xd, 0, leaf_d[0], zero, avx, true);
	assert_int_equal(r.eax, XSTATE_GUEST_MAX);
	assert_int_equal(r.ebx, 832);
	assert_int_equal(r.ecx, 2688);
	assert_int_equal(r.edx, 0);
	r = xstate_cpuid(&l, 0xd, 1, leaf_d[1], zero, avx, true);
	assert_int_equal(r.eax, CPUID_0D_1_XSAVEOPT | CPUID_0D_1_XSAVEC | CPUID_0D_1_XGETBV1);
	assert_int_equal(r.ebx, 832);
	assert_int_equal(r.ecx | r.edx, 0);
	r = xstate_cpuid(&l, 0xd, 6, leaf_d[6], zero, avx, true);
	assert_int_equal(r.eax, 512);
	assert_int_equal(r.ebx, 1152);
	/* MPX and PKRU exist on the host, not for guests. */
	assert_int_equal(xstate_cpuid(&l, 0xd, 3, leaf_d[3], zero, avx, true).eax, 0);
	assert_int_equal(xstate_cpuid(&l, 0xd, 9, leaf_d[3], zero, avx, true).eax, 0);
	assert_int_equal(xstate_cpuid(&l, 0xd, 63, leaf_d[3], zero, avx, true).eax, 0);
}

static void fill(struct vcpu_state *s)
{
	memset(s, 0, sizeof(*s));
	s->fpu.fcw = 0x27f;
	s->fpu.fsw = 0x3800;
	s->fpu.ftw = 0x80;
	s->fpu.mxcsr = 0x1fa0;
	for (unsigned i = 0; i < 16; i++)
		s->fpu.st[i] = 0x0101010101010101ULL * (i + 1);
	for (unsigned i = 0; i < 32; i++) {
		s->fpu.xmm[i] = 0x0202020202020202ULL * (i + 1);
		s->ymm_hi[i] = 0x0303030303030303ULL * (i + 1);
	}
	for (unsigned i = 0; i < 8; i++)
		s->opmask[i] = 0x0404040404040404ULL * (i + 1);
	for (unsigned i = 0; i < 64; i++)
		s->zmm_hi256[i] = 0x0505050505050505ULL * (i + 1);
	for (unsigned i = 0; i < 128; i++)
		s->hi16_zmm[i] = 0x0606060606060606ULL * (i + 1);
	s->xcr0 = XSTATE_GUEST_MAX;
}

static uint8_t area[XSAVE_AREA_SIZE] __attribute__((aligned(64)));

static void test_area_round_trip(void **state)
{
	(void)state;
	struct cpuid_result leaf_d[XSTATE_COMPONENTS];
	struct vcpu_state s, back;

	skylake_server(leaf_d);
	struct xstate_layout l = layout_of(leaf_d, ~0U);
	fill(&s);
	memset(area, 0xcc, sizeof(area));
	xstate_area_from_state(&l, &s, area);
	uint64_t xstate_bv, xcomp_bv;
	memcpy(&xstate_bv, area + 512, 8);
	memcpy(&xcomp_bv, area + 520, 8);
	assert_int_equal(xstate_bv, XSTATE_GUEST_MAX);
	assert_int_equal(xcomp_bv, 0);
	for (unsigned i = 528; i < 576; i++)
		assert_int_equal(area[i], 0);
	assert_memory_equal(area + 1664, s.hi16_zmm, sizeof(s.hi16_zmm));

	memset(&back, 0, sizeof(back));
	back.xcr0 = s.xcr0;
	xstate_state_from_area(&l, area, &back);
	assert_memory_equal(&back, &s, sizeof(s));
}

/* What XSAVE left in its initial configuration (XSTATE_BV clear) reads as that. */
static void test_components_in_init_state(void **state)
{
	(void)state;
	struct cpuid_result leaf_d[XSTATE_COMPONENTS];
	struct vcpu_state s, back;
	uint64_t xstate_bv = XSTATE_SSE | XSTATE_OPMASK;

	skylake_server(leaf_d);
	struct xstate_layout l = layout_of(leaf_d, ~0U);
	fill(&s);
	xstate_area_from_state(&l, &s, area);
	memcpy(area + 512, &xstate_bv, 8);
	fill(&back);
	xstate_state_from_area(&l, area, &back);
	assert_int_equal(back.fpu.fcw, 0x37f);
	assert_int_equal(back.fpu.fsw, 0);
	assert_int_equal(back.fpu.ftw, 0);
	assert_int_equal(back.fpu.st[3], 0);
	assert_int_equal(back.fpu.mxcsr, s.fpu.mxcsr);
	assert_memory_equal(back.fpu.xmm, s.fpu.xmm, sizeof(s.fpu.xmm));
	assert_memory_equal(back.opmask, s.opmask, sizeof(s.opmask));
	assert_int_equal(back.ymm_hi[5], 0);
	assert_int_equal(back.zmm_hi256[63], 0);
	assert_int_equal(back.hi16_zmm[0], 0);
}

/* Without XSAVE the area is an FXSAVE image and nothing else. */
static void test_fxsave_only(void **state)
{
	(void)state;
	struct cpuid_result leaf_d[XSTATE_COMPONENTS];
	struct xstate_layout l;
	struct vcpu_state s, back;

	skylake_server(leaf_d);
	xstate_layout_init(&l, false, leaf_d, ~0U);
	fill(&s);
	memset(area, 0xcc, sizeof(area));
	xstate_area_from_state(&l, &s, area);
	assert_int_equal(area[512], 0xcc);
	fill(&back);
	xstate_state_from_area(&l, area, &back);
	assert_memory_equal(&back.fpu, &s.fpu, sizeof(s.fpu));
	assert_int_equal(back.ymm_hi[0] | back.opmask[0] | back.zmm_hi256[0] | back.hi16_zmm[0], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_offers_avx_and_avx512_not_mpx_or_pkru),
		cmocka_unit_test(test_drops_what_does_not_fit),
		cmocka_unit_test(test_xsetbv_rules),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_cpuid_bits_follow_the_components),
		cmocka_unit_test(test_leaf_0d),
		cmocka_unit_test(test_area_round_trip),
		cmocka_unit_test(test_components_in_init_state),
		cmocka_unit_test(test_fxsave_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
