/*
 * The ACPI tables a guest finds: RSDP, XSDT, FADT, FACS, DSDT and MADT,
 * describing the platform the hypervisor emulates (one CPU, 8259s, one
 * I/O APIC, a PIIX-style reset register, a fixed-hardware PM1 block and PM
 * timer, PCI configuration mechanism #1 on one root bus).
 *
 * The tables are built into a window of guest RAM. Put it in the BIOS
 * area (0xE0000-0xFFFFF, 16-byte aligned) so that a kernel without
 * boot_params.acpi_rsdp_addr still finds the RSDP by the legacy scan
 * (ACPI 6.5, 5.2.5.1), and mark that area reserved in the guest's memory
 * map. The structure layouts shared with the host-side parser come from
 * boot/acpi.h; what only a builder needs is defined here.
 */
#ifndef DEVICES_ACPI_TABLES_H
#define DEVICES_ACPI_TABLES_H

#include <stddef.h>
#include <stdint.h>

#include "boot/acpi.h"

/*
 * The I/O APIC's ID in the MADT. Both interrupt controllers sit at their
 * default MMIO pages (devices/ioapic.h, devices/lapic.h), which the guest's
 * memory map reserves.
 */
#define GUEST_IOAPIC_ID 1

/* ISA IRQ of the SCI, shared by every fixed and general-purpose event. */
#define ACPI_SCI_IRQ 9

/*
 * PM1 control register (ACPI 6.5, 4.8.3.2.1), for the hypervisor's PM1
 * handler. OSPM powers off by writing SLP_TYP = the first element of \_S5
 * together with SLP_EN. ACPICA reads the register, then writes it with
 * SLP_TYP set and again with SLP_EN added (acpi_hw_legacy_sleep), so reads
 * must return what was written. SCI_EN should read as 1: the platform is
 * always in ACPI mode.
 */
#define ACPI_PM1_CNT_SCI_EN (1U << 0)
#define ACPI_PM1_CNT_SLP_TYP_SHIFT 10
#define ACPI_PM1_CNT_SLP_TYP_MASK (7U << ACPI_PM1_CNT_SLP_TYP_SHIFT)
#define ACPI_PM1_CNT_SLP_EN (1U << 13)
#define ACPI_SLP_TYP_S5 5

/* Register block lengths in bytes (FADT PM1_EVT_LEN, PM1_CNT_LEN, PM_TMR_LEN). */
#define ACPI_PM1_EVT_LEN 4 /* PM1_STS then PM1_EN, 16 bits each */
#define ACPI_PM1_CNT_LEN 2
#define ACPI_PM_TMR_LEN 4
#define ACPI_PM_TIMER_HZ 3579545 /* 24-bit counter (TMR_VAL_EXT clear) */

/* The reset register: the PIIX reset control port, hard reset + reset CPU. */
#define ACPI_RESET_PORT 0xcf9
#define ACPI_RESET_VALUE 0x06

/* Generic Address Structure (ACPI 6.5, 5.2.3.2). */
struct acpi_gas {
	uint8_t space_id; /* 0: system memory, 1: system I/O */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size; /* 1: byte, 2: word, 3: dword, 4: qword */
	uint64_t address;
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_gas) == 12, "GAS is 12 bytes");

#define ACPI_GAS_SYSTEM_IO 1
#define ACPI_GAS_ACCESS_BYTE 1
#define ACPI_GAS_ACCESS_WORD 2
#define ACPI_GAS_ACCESS_DWORD 3

/* Fixed ACPI Description Table, revision 6 (ACPI 6.5, 5.2.9, Table 5.9). */
struct acpi_fadt {
	struct acpi_sdt_header header;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
	uint8_t acpi_disable;
	uint8_t s4bios_req;
	uint8_t pstate_cnt;
	uint32_t pm1a_evt_blk;
	uint32_t pm1b_evt_blk;
	uint32_t pm1a_cnt_blk;
	uint32_t pm1b_cnt_blk;
	uint32_t pm2_cnt_blk;
	uint32_t pm_tmr_blk;
	uint32_t gpe0_blk;
	uint32_t gpe1_blk;
	uint8_t pm1_evt_len;
	uint8_t pm1_cnt_len;
	uint8_t pm2_cnt_len;
	uint8_t pm_tmr_len;
	uint8_t gpe0_blk_len;
	uint8_t gpe1_blk_len;
	uint8_t gpe1_base;
	uint8_t cst_cnt;
	uint16_t p_lvl2_lat;
	uint16_t p_lvl3_lat;
	uint16_t flush_size;
	uint16_t flush_stride;
	uint8_t duty_offset;
	uint8_t duty_width;
	uint8_t day_alrm;
	uint8_t mon_alrm;
	uint8_t century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk;
	struct acpi_gas x_pm1b_evt_blk;
	struct acpi_gas x_pm1a_cnt_blk;
	struct acpi_gas x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk;
	struct acpi_gas x_pm_tmr_blk;
	struct acpi_gas x_gpe0_blk;
	struct acpi_gas x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	uint64_t hypervisor_vendor_id;
} __attribute__((packed));

_Static_assert(offsetof(struct acpi_fadt, sci_int) == 46, "SCI_INT offset");
_Static_assert(offsetof(struct acpi_fadt, pm1a_evt_blk) == 56, "PM1a_EVT_BLK offset");
_Static_assert(offsetof(struct acpi_fadt, pm_tmr_blk) == 76, "PM_TMR_BLK offset");
_Static_assert(offsetof(struct acpi_fadt, pm1_evt_len) == 88, "PM1_EVT_LEN offset");
_Static_assert(offsetof(struct acpi_fadt, century) == 108, "CENTURY offset");
_Static_assert(offsetof(struct acpi_fadt, iapc_boot_arch) == 109, "IAPC_BOOT_ARCH offset");
_Static_assert(offsetof(struct acpi_fadt, flags) == 112, "Flags offset");
_Static_assert(offsetof(struct acpi_fadt, reset_reg) == 116, "RESET_REG offset");
_Static_assert(offsetof(struct acpi_fadt, reset_value) == 128, "RESET_VALUE offset");
_Static_assert(offsetof(struct acpi_fadt, x_firmware_ctrl) == 132, "X_FIRMWARE_CTRL offset");
_Static_assert(offsetof(struct acpi_fadt, x_dsdt) == 140, "X_DSDT offset");
_Static_assert(offsetof(struct acpi_fadt, x_pm1a_evt_blk) == 148, "X_PM1a_EVT_BLK offset");
_Static_assert(offsetof(struct acpi_fadt, x_pm1a_cnt_blk) == 172, "X_PM1a_CNT_BLK offset");
_Static_assert(offsetof(struct acpi_fadt, x_pm_tmr_blk) == 208, "X_PM_TMR_BLK offset");
_Static_assert(offsetof(struct acpi_fadt, hypervisor_vendor_id) == 268, "Hypervisor ID offset");
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT revision 6 is 276 bytes");

/* FADT Fixed Feature Flags (Table 5.10). */
#define ACPI_FADT_WBINVD (1U << 0)
#define ACPI_FADT_PROC_C1 (1U << 2)
#define ACPI_FADT_PWR_BUTTON (1U << 4) /* set: no fixed-hardware power button */
#define ACPI_FADT_SLP_BUTTON (1U << 5) /* set: no fixed-hardware sleep button */
#define ACPI_FADT_FIX_RTC (1U << 6)    /* set: no RTC wake status in PM1 */
#define ACPI_FADT_TMR_VAL_EXT (1U << 8)
#define ACPI_FADT_RESET_REG_SUP (1U << 10)
#define ACPI_FADT_HW_REDUCED_ACPI (1U << 20)

/* IA-PC Boot Architecture Flags (Table 5.11). */
#define ACPI_IAPC_LEGACY_DEVICES (1U << 0)
#define ACPI_IAPC_8042 (1U << 1)
#define ACPI_IAPC_VGA_NOT_PRESENT (1U << 2)
#define ACPI_IAPC_MSI_NOT_SUPPORTED (1U << 3)
#define ACPI_IAPC_CMOS_RTC_NOT_PRESENT (1U << 5)

/* Firmware ACPI Control Structure (ACPI 6.5, 5.2.10): no checksum, 64-byte aligned. */
struct acpi_facs {
	char signature[4];
	uint32_t length;
	uint32_t hardware_signature;
	uint32_t firmware_waking_vector;
	uint32_t global_lock;
	uint32_t flags;
	uint64_t x_firmware_waking_vector;
	uint8_t version;
	uint8_t reserved0[3];
	uint32_t ospm_flags;
	uint8_t reserved1[24];
} __attribute__((packed));

_Static_assert(offsetof(struct acpi_facs, version) == 32, "FACS Version offset");
_Static_assert(sizeof(struct acpi_facs) == 64, "FACS is 64 bytes");

/* Local APIC NMI Structure (ACPI 6.5, 5.2.12.7); boot/acpi.c skips it. */
#define ACPI_MADT_LAPIC_NMI 4
#define ACPI_MADT_ALL_PROCESSORS 0xff

struct acpi_madt_lapic_nmi {
	struct acpi_madt_entry_header header;
	uint8_t acpi_uid;
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_madt_lapic_nmi) == 6, "Local APIC NMI entry is 6 bytes");

/* MPS INTI flags (Table 5.26): polarity in bits 0-1, trigger mode in bits 2-3. */
#define ACPI_INTI_CONFORMS 0x0
#define ACPI_INTI_ACTIVE_HIGH 0x1
#define ACPI_INTI_LEVEL 0xc

/*
 * Where a PCI function's INTA# goes (\_SB.PCI0._PRT, ACPI 6.5, 6.2.13):
 * the 8259 input it shares in PIC mode (its Interrupt Line register) and
 * the I/O APIC input of its own in APIC mode. Every function uses INTA#.
 */
struct acpi_pci_route {
	uint8_t device;   /* 1-31 on bus 0 */
	uint8_t isa_irq;  /* 3-15, level-triggered through the ELCR */
	uint8_t gsi;      /* 16-23: an I/O APIC input of its own, level, active low */
};

#define ACPI_PCI_ROUTES_MAX 8 /* one per I/O APIC input from 16 to 23 */
#define ACPI_PCI_GSI_FIRST 16

/* What the platform offers; ports are I/O port numbers. */
struct acpi_tables_config {
	uint16_t pm1a_evt_port; /* ACPI_PM1_EVT_LEN ports */
	uint16_t pm1a_cnt_port; /* ACPI_PM1_CNT_LEN ports */
	uint16_t pm_tmr_port;   /* ACPI_PM_TMR_LEN ports */
	/* PCI BAR windows of the root bridge's _CRS; size 0 leaves one out. */
	uint32_t pci_io_base, pci_io_size;   /* within 0x0000-0xffff */
	uint32_t pci_mem_base, pci_mem_size; /* below 4 GiB */
	const struct acpi_pci_route *pci_routes;
	unsigned pci_route_count; /* at most ACPI_PCI_ROUTES_MAX */
};

/* Where each table went, as guest-physical addresses. */
struct acpi_tables_layout {
	uint64_t rsdp, xsdt, fadt, facs, dsdt, madt;
	size_t size; /* bytes used from the start of the window */
};

/*
 * Builds the tables into dst[0, dst_size), which the guest sees at
 * guest-physical gpa (64-byte aligned, for the FACS). The RSDP comes first,
 * at gpa itself: that is what boot_params.acpi_rsdp_addr points at.
 * Returns 0, or -1 with *why a static string (the window is then left in an
 * unspecified state).
 */
int acpi_tables_build(void *dst, size_t dst_size, uint64_t gpa,
		      const struct acpi_tables_config *cfg,
		      struct acpi_tables_layout *layout, const char **why);

#endif
