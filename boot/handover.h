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

/* Entry of the hypervisor proper, on its own stack (vmm/main.c). */
__attribute__((noreturn)) void vmm_main(struct boot_info *bi);

#endif
