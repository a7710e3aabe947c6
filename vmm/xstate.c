#include "vmm/xstate.h"

#include <stddef.h>
#include <string.h>

/* Feature bits that need XSAVE-managed state (SDM Vol. 2A, CPUID, tables 3-10, 3-8). */
#define C1_ECX_FMA (1U << 12)
#define C1_ECX_XSAVE (1U << 26)
#define C1_ECX_OSXSAVE (1U << 27)
#define C1_ECX_AVX (1U << 28)
#define C1_ECX_F16C (1U << 29)
#define C7_EBX_AVX2 (1U << 5)
/* AVX512F, DQ, IFMA, PF, ER, CD, BW, VL */
#define C7_EBX_AVX512 \
	((1U << 16) | (1U << 17) | (1U << 21) | (1U << 26) | (1U << 27) | (1U << 28) | (1U << 30) | (1U << 31))
/* GFNI, VAES, VPCLMULQDQ: their VEX forms need AVX (their SSE-encoded GFNI is rarely used alone). */
#define C7_ECX_AVX ((1U << 8) | (1U << 9) | (1U << 10))
/* AVX512_VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ */
#define C7_ECX_AVX512 ((1U << 1) | (1U << 6) | (1U << 11) | (1U << 12) | (1U << 14))
/* AVX512_4VNNIW, 4FMAPS, VP2INTERSECT, FP16 */
#define C7_EDX_AVX512 ((1U << 2) | (1U << 3) | (1U << 8) | (1U << 23))

#define XSAVE_HEADER_XSTATE_BV XSAVE_LEGACY_SIZE
#define FCW_INIT 0x037f /* the x87 initial configuration (SDM Vol. 1, 13.6) */

/* Where each extended component the state carries lives in struct vcpu_state. */
static const struct {
	unsigned component;
	size_t state_offset;
	uint32_t size; /* the architectural size, CPUID.(0DH,i):EAX */
} extended[] = {
	{ 2, offsetof(struct vcpu_state, ymm_hi), sizeof(((struct vcpu_state *)0)->ymm_hi) },
	{ 5, offsetof(struct vcpu_state, opmask), sizeof(((struct vcpu_state *)0)->opmask) },
	{ 6, offsetof(struct vcpu_state, zmm_hi256), sizeof(((struct vcpu_state *)0)->zmm_hi256) },
	{ 7, offsetof(struct vcpu_state, hi16_zmm), sizeof(((struct vcpu_state *)0)->hi16_zmm) },
};
#define EXTENDED_COUNT (sizeof(extended) / sizeof(extended[0]))
_Static_assert(sizeof(((struct vcpu_state *)0)->ymm_hi) == 256 &&
		       sizeof(((struct vcpu_state *)0)->opmask) == 64 &&
		       sizeof(((struct vcpu_state *)0)->zmm_hi256) == 512 &&
		       sizeof(((struct vcpu_state *)0)->hi16_zmm) == 1024,
	       "SDM Vol. 1, 13.2 and 13.5: the components' sizes");

static bool has(uint64_t set, unsigned component)
{
	return (set >> component) & 1;
}

void xstate_layout_init(struct xstate_layout *l, bool host_xsave,
			const struct cpuid_result leaf_d[XSTATE_COMPONENTS], uint32_t allowed)
{
	*l = (struct xstate_layout){ 0 };
	if (!host_xsave)
		return;
	uint64_t offered = ((uint64_t)leaf_d[0].edx << 32 | leaf_d[0].eax) & XSTATE_GUEST_MAX;

	for (unsigned i = 0; i < EXTENDED_COUNT; i++) {
		unsigned c = extended[i].component;
		uint32_t size = leaf_d[c].eax, offset = leaf_d[c].ebx;
		if (!has(offered, c))
			continue;
		if (size != extended[i].size || offset < XSAVE_EXTENDED_OFFSET ||
		    offset > XSAVE_AREA_SIZE - size) {
			offered &= ~(1ULL << c);
			continue;
		}
		l->offset[c] = offset;
		l->size[c] = size;
		/* ECX bit 1: aligned to 64 bytes in the compacted format (SDM Vol. 1, 13.4.3). */
		if (leaf_d[c].ecx & 2)
			l->aligned64 |= 1U << c;
	}
	/* XSETBV requires x87 and AVX needs SSE; the AVX-512 components go together, on AVX. */
	if ((offered & (XSTATE_X87 | XSTATE_SSE)) != (XSTATE_X87 | XSTATE_SSE))
		return;
	if ((offered & XSTATE_AVX512) != XSTATE_AVX512 || !(offered & XSTATE_AVX))
		offered &= ~XSTATE_AVX512;
	l->components = offered;
	l->instructions = leaf_d[1].eax & allowed &
			  (CPUID_0D_1_XSAVEOPT | CPUID_0D_1_XSAVEC | CPUID_0D_1_XGETBV1 | CPUID_0D_1_XSAVES);
}

bool xstate_xcr0_valid(uint64_t value, uint64_t allowed)
{
	if (!(value & XSTATE_X87) || (value & ~allowed))
		return false;
	if ((value & XSTATE_AVX) && !(value & XSTATE_SSE))
		return false;
	uint64_t avx512 = value & XSTATE_AVX512;
	return !avx512 || (avx512 == XSTATE_AVX512 && (value & XSTATE_AVX));
}

uint32_t xstate_standard_size(const struct xstate_layout *l, uint64_t components)
{
	uint32_t size = XSAVE_EXTENDED_OFFSET;

	for (unsigned c = 2; c < XSTATE_COMPONENTS; c++)
		if (has(components & l->components, c) && l->offset[c] + l->size[c] > size)
			size = l->offset[c] + l->size[c];
	return size;
}

uint32_t xstate_compacted_size(const struct xstate_layout *l, uint64_t components)
{
	uint32_t size = XSAVE_EXTENDED_OFFSET;

	/* Components follow in order, each 64-byte aligned where CPUID says (SDM Vol. 1, 13.4.3). */
	for (unsigned c = 2; c < XSTATE_COMPONENTS; c++) {
		if (!has(components & l->components, c))
			continue;
		if (has(l->aligned64, c))
			size = (size + 63) & ~63U;
		size += l->size[c];
	}
	return size;
}

static struct cpuid_result component_leaf(const struct xstate_layout *l, uint32_t subleaf,
					  uint64_t xcr0)
{
	switch (subleaf) {
	case 0:
		return (struct cpuid_result){
			.eax = (uint32_t)l->components,
			.ebx = xstate_standard_size(l, xcr0),
			.ecx = xstate_standard_size(l, l->components),
			.edx = (uint32_t)(l->components >> 32),
		};
	case 1:
		/* EBX: XCR0 | IA32_XSS compacted, and IA32_XSS is 0; no supervisor components. */
		return (struct cpuid_result){ .eax = l->instructions,
					      .ebx = xstate_compacted_size(l, xcr0) };
	default:
		if (subleaf < 2 || subleaf >= XSTATE_COMPONENTS || !has(l->components, subleaf))
			return (struct cpuid_result){ 0 };
		return (struct cpuid_result){
			.eax = l->size[subleaf],
			.ebx = l->offset[subleaf],
			.ecx = has(l->aligned64, subleaf) ? 2U : 0U,
		};
	}
}

struct cpuid_result xstate_cpuid(const struct xstate_layout *l, uint32_t leaf, uint32_t subleaf,
				 struct cpuid_result host, struct cpuid_result r, uint64_t xcr0,
				 bool osxsave)
{
	if (!l->components)
		return r;
	bool avx = l->components & XSTATE_AVX;
	bool avx512 = l->components & XSTATE_AVX512;

	switch (leaf) {
	case 1:
		r.ecx |= C1_ECX_XSAVE | (osxsave ? C1_ECX_OSXSAVE : 0);
		if (avx)
			r.ecx |= host.ecx & (C1_ECX_AVX | C1_ECX_FMA | C1_ECX_F16C);
		return r;
	case 7:
		if (subleaf != 0)
			return r;
		if (avx) {
			r.ebx |= host.ebx & C7_EBX_AVX2;
			r.ecx |= host.ecx & C7_ECX_AVX;
		}
		if (avx512) {
			r.ebx |= host.ebx & C7_EBX_AVX512;
			r.ecx |= host.ecx & C7_ECX_AVX512;
			r.edx |= host.edx & C7_EDX_AVX512;
		}
		return r;
	case 0xd:
		return component_leaf(l, subleaf, xcr0);
	default:
		return r;
	}
}

static void *state_bytes(struct vcpu_state *s, size_t offset)
{
	return (uint8_t *)s + offset;
}

void xstate_area_from_state(const struct xstate_layout *l, const struct vcpu_state *s,
			    uint8_t *area)
{
	_Static_assert(sizeof(s->fpu) == XSAVE_LEGACY_SIZE, "the FXSAVE image");
	memcpy(area, &s->fpu, XSAVE_LEGACY_SIZE);
	if (!l->components)
		return;
	/*
	 * The header: XSTATE_BV marks every component present, XCOMP_BV 0 is
	 * the standard format, and the rest must be 0 or XRSTOR is #GP
	 * (SDM Vol. 1, 13.8.1).
	 */
	memset(area + XSAVE_LEGACY_SIZE, 0, XSAVE_HEADER_SIZE);
	memcpy(area + XSAVE_HEADER_XSTATE_BV, &l->components, sizeof(l->components));
	for (unsigned i = 0; i < EXTENDED_COUNT; i++) {
		unsigned c = extended[i].component;
		if (has(l->components, c))
			memcpy(area + l->offset[c], (const uint8_t *)s + extended[i].state_offset,
			       extended[i].size);
	}
}

void xstate_state_from_area(const struct xstate_layout *l, const uint8_t *area,
			    struct vcpu_state *s)
{
	uint64_t xstate_bv = XSTATE_X87 | XSTATE_SSE;

	memcpy(&s->fpu, area, XSAVE_LEGACY_SIZE);
	if (l->components)
		memcpy(&xstate_bv, area + XSAVE_HEADER_XSTATE_BV, sizeof(xstate_bv));
	/* MXCSR is saved with either SSE or AVX, whatever XSTATE_BV says (SDM Vol. 1, 13.7). */
	if (!(xstate_bv & XSTATE_X87)) {
		s->fpu.fcw = FCW_INIT;
		s->fpu.fsw = 0;
		s->fpu.ftw = 0;
		s->fpu.fop = 0;
		s->fpu.fip = 0;
		s->fpu.fdp = 0;
		memset(s->fpu.st, 0, sizeof(s->fpu.st));
	}
	if (!(xstate_bv & XSTATE_SSE))
		memset(s->fpu.xmm, 0, sizeof(s->fpu.xmm));
	for (unsigned i = 0; i < EXTENDED_COUNT; i++) {
		unsigned c = extended[i].component;
		void *to = state_bytes(s, extended[i].state_offset);
		if (has(l->components & xstate_bv, c))
			memcpy(to, area + l->offset[c], extended[i].size);
		else
			memset(to, 0, extended[i].size);
	}
}
