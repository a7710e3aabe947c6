/*
 * What a VM looks like at power-on: its RAM cleared, its image placed, and
 * the register state for its boot mode.
 *
 * boot = real: the image is a ROM that ends at guest-physical 1 MiB; the
 *   vCPU starts at its reset vector F000:FFF0 in real mode, as a PC does
 *   (SDM Vol. 3A, 9.1.4), with CS base 0xF0000.
 * boot = long: the image is loaded at `load` (default 0x100000) and entered
 *   at `entry` (default: load) in 64-bit mode, with paging on: the
 *   hypervisor builds identity page tables for the first 4 GiB of the
 *   guest (at 0x1000-0x6fff), a GDT (at 0x7000) and places the command line
 *   at 0x7800. RSP = load (the stack grows down into low memory),
 *   RSI = guest-physical address of the command line (0 if none),
 *   RDI = RAM size in bytes.
 * boot = linux: the Linux boot protocol (not implemented yet).
 */
#ifndef VMM_GUEST_BOOT_H
#define VMM_GUEST_BOOT_H

#include <stddef.h>

#include "vmm/virt.h"
#include "vmm/vm.h"

int guest_boot_prepare(struct vm *vm, struct vcpu_boot_state *state, char *why,
		       size_t why_size);

#endif
