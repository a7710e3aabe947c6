#include "boot/tco.h"

#include <stdbool.h>

#define CLASS_ISA_BRIDGE 0x060100U /* class code, subclass, interface */
#define CLASS_SMBUS 0x0c0500U
#define TCO_BASE_EN (1U << 8)
#define ACPI_EN (1U << 7)
#define BASE_IO 1U

static bool intel(uint32_t id, uint32_t class_reg, uint32_t want_class)
{
	/* Configuration offset 08h: the class code in bits 31:8 over the revision. */
	return (id & 0xffff) == PCI_VENDOR_INTEL && (class_reg >> 8) == want_class;
}

uint16_t tco_base(const struct tco_pci *p)
{
	if (intel(p->smbus_id, p->smbus_class, CLASS_SMBUS) && (p->smbus_tco_ctl & TCO_BASE_EN) &&
	    (p->smbus_tco_base & BASE_IO) && (p->smbus_tco_base & 0xffe0U))
		return (uint16_t)(p->smbus_tco_base & 0xffe0U);
	if (intel(p->lpc_id, p->lpc_class, CLASS_ISA_BRIDGE) && (p->lpc_acpi_ctl & ACPI_EN) &&
	    (p->lpc_acpi_base & BASE_IO) && (p->lpc_acpi_base & 0xff80U))
		return (uint16_t)((p->lpc_acpi_base & 0xff80U) + TCO_FROM_ACPI_BASE);
	return 0;
}
