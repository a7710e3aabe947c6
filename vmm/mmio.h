/*
 * Emulated memory-mapped I/O: a guest access to a guest-physical page that
 * is not its RAM exits (EPT violation, or the other vendor's nested page
 * fault), and the instruction that made it is fetched through the guest's
 * page tables, decoded and carried out against the device models. Vendor
 * neutral: it uses vmm/virt.h only.
 */
#ifndef VMM_MMIO_H
#define VMM_MMIO_H

#include <stdbool.h>
#include <stdint.h>

struct vcpu;
struct vm;

/*
 * Handles the access at gpa (write: the exit says it was a write). The
 * instruction completes, or the guest gets the exception the CPU would
 * raise, or the VM is ended with a reason (vm->op_pending) when the
 * address belongs to nothing or the instruction is beyond the emulator.
 */
void vcpu_mmio_access(struct vcpu *vcpu, uint64_t gpa, bool write);

/*
 * The VM's MMIO space (vmm/vm.c): 0 when a device claims [gpa, gpa+size)
 * and performed the access, -1 when nothing is there.
 */
int vm_mmio_read(struct vm *vm, uint64_t gpa, unsigned size, uint64_t *value);
int vm_mmio_write(struct vm *vm, uint64_t gpa, unsigned size, uint64_t value);

#endif
