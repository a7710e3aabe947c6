/*
 * Intel's TCO watchdog (ICH and PCH datasheets, "TCO Timer"), which
 * firmware may leave running so that a hung boot resets the server. Where
 * its registers are: the SMBus controller's TCOBASE (00:1f.4, the PCH
 * since the 100 series), else the LPC bridge's ACPI base + 60H (ICH9 and
 * the older PCHs; QEMU's q35). Plain C: the caller reads PCI configuration
 * space. The halting is boot/efi_main.c's.
 */
#ifndef BOOT_TCO_H
#define BOOT_TCO_H

#include <stdint.h>

#define PCI_VENDOR_INTEL 0x8086
#define TCO_SMBUS_BASE 0x50   /* TCOBASE: bits 15:5, bit 0 I/O space */
#define TCO_SMBUS_CTL 0x54    /* TCOCTL: bit 8 TCO_BASE_EN */
#define TCO_LPC_ACPI_BASE 0x40 /* ABASE: bits 15:7, bit 0 I/O space */
#define TCO_LPC_ACPI_CTL 0x44 /* ACPI_CNTL: bit 7 ACPI_EN */
#define TCO_FROM_ACPI_BASE 0x60

/* TCO registers, from the TCO base. */
#define TCO1_CNT 0x08
#define TCO1_CNT_TMR_HLT (1U << 11)
#define TCO_TMR 0x12          /* the timeout it reloads, in 0.6-s ticks (bits 9:0) */
#define TCO_TICK_DS 6         /* 0.6 s */

/* What the caller read of 00:1f.0 (LPC) and 00:1f.4 (SMBus); 0xffffffff where absent. */
struct tco_pci {
	uint32_t lpc_id, lpc_class, lpc_acpi_base, lpc_acpi_ctl;
	uint32_t smbus_id, smbus_class, smbus_tco_base, smbus_tco_ctl;
};

/* The TCO registers' I/O base, or 0 where this is no Intel chipset that has them enabled. */
uint16_t tco_base(const struct tco_pci *pci);

#endif
