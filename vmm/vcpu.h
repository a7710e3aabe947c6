/*
 * Generic handling of what a guest asks of the (virtual) machine. The
 * vendor's exit table decodes an exit and calls these; they decide policy
 * (what CPUID says, which MSRs exist, where an I/O port goes) without
 * knowing how the hardware reported it.
 */
#ifndef VMM_VCPU_H
#define VMM_VCPU_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/vm.h"

/* CPUID with the guest's RAX/RCX in vcpu->regs; writes RAX..RDX. */
void vcpu_cpuid(struct vcpu *vcpu);

/*
 * Sets IA32_MISC_ENABLE (VCPU_MISC_ENABLE_BITS), for WRMSR and a loaded
 * state (loaded after the platform's: CPUID follows its IA32_APIC_BASE too).
 */
void vcpu_set_misc_enable(struct vcpu *vcpu, uint64_t value);

/* RDMSR/WRMSR: 0, or -1 when the guest must get #GP. */
int vcpu_rdmsr(struct vcpu *vcpu, uint32_t msr, uint64_t *value);
int vcpu_wrmsr(struct vcpu *vcpu, uint32_t msr, uint64_t value);

/* A port access of 1, 2 or 4 bytes; *value is read (OUT) or written (IN). */
void vcpu_port_io(struct vcpu *vcpu, uint16_t port, unsigned size, bool in, uint32_t *value);

/*
 * General-purpose register `index` in instruction-encoding order (0 RAX,
 * 1 RCX, 2 RDX, 3 RBX, 4 RSP, ... 15 R15; SDM Vol. 2A, table 2-2), as
 * exit qualifications and ModRM fields name them; RSP is the hardware's.
 */
uint64_t vcpu_read_gpr(struct vcpu *vcpu, unsigned index);
void vcpu_write_gpr(struct vcpu *vcpu, unsigned index, uint64_t value);

/* VMCALL with the ABI of include/abi/hypercall.h (vmm/hypercall.c); cpl is the caller's privilege. */
void vcpu_hypercall(struct vcpu *vcpu, unsigned cpl);

#endif
