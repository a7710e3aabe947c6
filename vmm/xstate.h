/*
 * The XSAVE-managed state guests may use (SDM Vol. 1, chapter 13): which
 * state components a guest is offered, what CPUID leaf 0DH, the feature
 * bits that need those components and XSETBV say about them, and the
 * translation between a vCPU's XSAVE area (the hardware's standard format,
 * at this CPU's offsets) and struct vcpu_state (fixed layout, portable).
 *
 * Offered: x87, SSE, AVX and the three AVX-512 components, where the host
 * has them. Not offered: MPX (deprecated; its bound registers change how
 * branches behave), PKRU (needs CR4.PKE, which CPUID hides), AMX (needs
 * XFD and 8 KiB per vCPU) and every supervisor component (IA32_XSS stays
 * 0 for host and guests, so XSAVES saves what XSAVEC does).
 *
 * This file is plain C over CPUID values, unit-tested on the host;
 * vmm/xstate_cpu.c keeps the host's layout and switches the hardware.
 */
#ifndef VMM_XSTATE_H
#define VMM_XSTATE_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/cpuid_policy.h"
#include "vmm/virt.h"

/* State components, as bits of XCR0 (SDM Vol. 1, 13.1). */
#define XSTATE_X87 (1ULL << 0)
#define XSTATE_SSE (1ULL << 1)
#define XSTATE_AVX (1ULL << 2)
#define XSTATE_OPMASK (1ULL << 5)
#define XSTATE_ZMM_HI256 (1ULL << 6)
#define XSTATE_HI16_ZMM (1ULL << 7)
#define XSTATE_AVX512 (XSTATE_OPMASK | XSTATE_ZMM_HI256 | XSTATE_HI16_ZMM)
#define XSTATE_GUEST_MAX (XSTATE_X87 | XSTATE_SSE | XSTATE_AVX | XSTATE_AVX512)
#define XSTATE_COMPONENTS 8 /* components 0..7: every one XSTATE_GUEST_MAX names */

/* The standard format: the FXSAVE image, the XSAVE header, then the components. */
#define XSAVE_LEGACY_SIZE 512
#define XSAVE_HEADER_SIZE 64
#define XSAVE_EXTENDED_OFFSET (XSAVE_LEGACY_SIZE + XSAVE_HEADER_SIZE)
/* A vCPU's XSAVE area: room for every offered component at any host's offsets. */
#define XSAVE_AREA_SIZE 4096

/* CPUID.(EAX=0DH,ECX=1):EAX (SDM Vol. 2A, CPUID). */
#define CPUID_0D_1_XSAVEOPT (1U << 0)
#define CPUID_0D_1_XSAVEC (1U << 1)
#define CPUID_0D_1_XGETBV1 (1U << 2)
#define CPUID_0D_1_XSAVES (1U << 3)

/* What this host offers guests, and where its XSAVE puts each component. */
struct xstate_layout {
	uint64_t components; /* XCR0 bits a guest may set; 0: no XSAVE, FXSAVE state only */
	uint32_t offset[XSTATE_COMPONENTS]; /* standard format, CPUID.(0DH,i):EBX */
	uint32_t size[XSTATE_COMPONENTS];   /* CPUID.(0DH,i):EAX */
	uint32_t aligned64; /* bit i: component i starts 64-byte aligned when compacted */
	uint32_t instructions; /* CPUID.(0DH,1):EAX as guests see it: CPUID_0D_1_* */
};

/* XSAVES/XRSTORS and IA32_XSS (which stays 0) exist for guests. */
static inline bool xstate_offers_xsaves(const struct xstate_layout *l)
{
	return l->instructions & CPUID_0D_1_XSAVES;
}

/*
 * The layout from the host's CPUID: host_xsave is CPUID.01H:ECX.XSAVE,
 * leaf_d[i] the host's CPUID.(0DH,i) (0 and 1 included), allowed the
 * CPUID.(0DH,1):EAX instructions guests may be offered where the host has
 * them (XSAVES only with the virtualization backend's control; XSAVEC and
 * XSAVES not where the configuration turns the compacted format off). A component whose size is not the architectural one or that
 * would not fit XSAVE_AREA_SIZE is not offered, nor what depends on it.
 */
void xstate_layout_init(struct xstate_layout *l, bool host_xsave,
			const struct cpuid_result leaf_d[XSTATE_COMPONENTS], uint32_t allowed);

/*
 * Whether XSETBV may load value into XCR0 (SDM Vol. 2C, XSETBV): x87 set,
 * AVX only with SSE, the AVX-512 components together and only with AVX,
 * nothing outside allowed. Otherwise the instruction is #GP.
 */
bool xstate_xcr0_valid(uint64_t value, uint64_t allowed);

/* Bytes of an XSAVE area holding components, standard and compacted format. */
uint32_t xstate_standard_size(const struct xstate_layout *l, uint64_t components);
uint32_t xstate_compacted_size(const struct xstate_layout *l, uint64_t components);

/*
 * CPUID leaves 1, 7 and 0DH as a guest with this XCR0 and CR4.OSXSAVE
 * sees them: r is the policy's answer (vmm/cpuid_policy.c hides every
 * XSAVE-dependent bit), host the CPU's; the bits the offered components
 * allow come back from host. Other leaves: r unchanged.
 */
struct cpuid_result xstate_cpuid(const struct xstate_layout *l, uint32_t leaf, uint32_t subleaf,
				 struct cpuid_result host, struct cpuid_result r, uint64_t xcr0,
				 bool osxsave);

/*
 * A vCPU's XSAVE area (standard format, XSAVE_AREA_SIZE bytes, 64-byte
 * aligned) from a state, for XRSTOR: every offered component marked
 * present. Without XSAVE, the FXSAVE image only.
 */
void xstate_area_from_state(const struct xstate_layout *l, const struct vcpu_state *s,
			    uint8_t *area);

/*
 * The state's FPU and extended registers from an area XSAVE wrote: a
 * component XSAVE left in its initial configuration (XSTATE_BV clear)
 * reads as that configuration. s->xcr0 is the caller's.
 */
void xstate_state_from_area(const struct xstate_layout *l, const uint8_t *area,
			    struct vcpu_state *s);

/*
 * The hardware side (vmm/xstate_cpu.c). The CPU's XCR0 is the running
 * vCPU's whenever a guest runs; the hypervisor itself uses no XSAVE state
 * (-mgeneral-regs-only), so XCR0 changes only when it switches vCPUs or a
 * guest runs XSETBV.
 */
struct vcpu;

/* Sets CR4.OSXSAVE and IA32_XSS = 0 on this CPU and reads the layout. */
void xstate_cpu_init(uint32_t allowed);
const struct xstate_layout *xstate_host_layout(void);

/*
 * Saves the CPU's state into save->xsave (save NULL: nothing to keep),
 * then loads load->xsave and load->xcr0. All offered components go both
 * ways, whatever either XCR0 says: a vCPU that enables a component later
 * finds its own registers there, never another VM's.
 */
void xstate_switch(struct vcpu *save, struct vcpu *load);

/* Saves the running vCPU's state into its xsave area; it goes on running. */
void xstate_save(struct vcpu *vcpu);

/* XSETBV of XCR0 by the running vCPU: -1 when the guest must get #GP. */
int xstate_set_xcr0(struct vcpu *vcpu, uint64_t value);

#endif
