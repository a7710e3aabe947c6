/*
 * The step from "UEFI application" to "owner of the machine": after
 * ExitBootServices the hypervisor switches to its own page tables, GDT,
 * TSS, IDT and stack, then calls vmm_main(). Nothing of the firmware's
 * boot-time environment is used after that.
 */
#ifndef BOOT_HANDOVER_H
#define BOOT_HANDOVER_H

#include "boot/boot_info.h"

/* @pre ExitBootServices succeeded and bi->memmap describes the machine. */
__attribute__((noreturn)) void handover(struct boot_info *bi);

/*
 * Maps [base, base + bytes) 1:1, uncached and not executable, in the
 * hypervisor's page tables: a device's registers above the identity map
 * (a 64-bit BAR the firmware placed high). Only where nothing else is
 * mapped (a page mapped so already is kept); -1 when something else is,
 * or page-table memory is short.
 */
int handover_map_mmio(uint64_t base, uint64_t bytes);

/* Entry of the hypervisor proper, on its own stack (vmm/main.c). */
__attribute__((noreturn)) void vmm_main(struct boot_info *bi);

#endif
