/*
 * The vendor interface: everything generic code may ask of the hardware
 * virtualization extension. vmm/vmx.c implements it for Intel VT-x; an SVM
 * backend would implement the same functions and the Makefile would link
 * one or the other. Generic code never sees a VMCS field or a VMX MSR.
 */
#ifndef VMM_VIRT_H
#define VMM_VIRT_H

#include <stdbool.h>
#include <stddef.h>

struct page_alloc;

/*
 * Checks, without changing any CPU state, that this CPU can run the
 * hypervisor. Called while the firmware still owns the machine, so a
 * failure is reported and the firmware gets control back.
 * Returns 0, or -1 with a sentence for the console in why.
 */
int virt_probe(char *why, size_t why_size);

/*
 * Turns the extension on for the calling CPU (for VT-x: IA32_FEATURE_CONTROL,
 * the CR0/CR4 fixed bits, VMXON) and logs the capability report.
 * Called after the hand-over, on the hypervisor's own page tables.
 * Returns 0, or -1 with the reason in why.
 */
int virt_enable_cpu(struct page_alloc *pa, char *why, size_t why_size);

#endif
