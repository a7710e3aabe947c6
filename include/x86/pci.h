/*
 * PCI configuration space by mechanism #1 (PCI Local Bus 3.0, 3.2.2.3.2):
 * ports CF8h/CFCh, buses 0-255. The boot path reads the chipset's and the
 * boot disk's registers with it, the store's drivers their controller's.
 */
#ifndef X86_PCI_H
#define X86_PCI_H

#include <stdint.h>

#include "x86/cpu.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc

/* Type 0 header registers (PCI 3.0, 6.1). */
#define PCI_VENDOR_DEVICE 0x00
#define PCI_COMMAND 0x04
#define PCI_COMMAND_IO (1u << 0)
#define PCI_COMMAND_MEMORY (1u << 1)
#define PCI_COMMAND_BUS_MASTER (1u << 2)
#define PCI_COMMAND_INTX_DISABLE (1u << 10)
#define PCI_CLASS_REVISION 0x08
#define PCI_BAR0 0x10
#define PCI_CAPABILITIES 0x34
#define PCI_STATUS_CAPABILITIES (1u << 20) /* in the COMMAND/STATUS dword */

struct pci_address {
	uint8_t bus, device, function;
};

static inline uint32_t pci_config_address(struct pci_address a, unsigned reg)
{
	return 0x80000000u | (uint32_t)a.bus << 16 | (uint32_t)(a.device & 31) << 11 |
	       (uint32_t)(a.function & 7) << 8 | (reg & 0xfc);
}

static inline uint32_t pci_read32(struct pci_address a, unsigned reg)
{
	outl(PCI_CONFIG_ADDRESS, pci_config_address(a, reg));
	return inl(PCI_CONFIG_DATA);
}

static inline void pci_write32(struct pci_address a, unsigned reg, uint32_t value)
{
	outl(PCI_CONFIG_ADDRESS, pci_config_address(a, reg));
	outl(PCI_CONFIG_DATA, value);
}

/* BAR n's base (memory or I/O, 64-bit memory BARs whole); 0 when unassigned. */
static inline uint64_t pci_bar(struct pci_address a, unsigned n)
{
	uint32_t low = pci_read32(a, PCI_BAR0 + 4 * n);

	if (low & 1)
		return low & ~3u;
	uint64_t base = low & ~15u;
	if ((low & 6) == 4 && n < 5)
		base |= (uint64_t)pci_read32(a, PCI_BAR0 + 4 * (n + 1)) << 32;
	return base;
}

#endif
