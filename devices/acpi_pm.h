/*
 * The fixed-feature power-management registers a guest's FADT describes
 * (ACPI 6.4, 4.8 "ACPI Hardware Model" and 4.8.3 "PM1 Event/Control
 * Registers"): the PM1a event block (status and enable words), the PM1a
 * control block, and the 24-bit power-management timer at 3.579545 MHz.
 * Writing SLP_EN with the \_S5 sleep type is the guest's power-off;
 * this model reports it and the caller turns the VM off. ACPI is always
 * enabled (FADT SMI_CMD = 0), so SCI_EN reads as 1. Plain C, no hardware.
 */
#ifndef DEVICES_ACPI_PM_H
#define DEVICES_ACPI_PM_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/acpi_tables.h"
#include "devices/devstate.h"

#define ACPI_PM_PORT_BASE 0x600
#define ACPI_PM1A_EVT_PORT ACPI_PM_PORT_BASE        /* 4 bytes: status, enable */
#define ACPI_PM1A_CNT_PORT (ACPI_PM_PORT_BASE + 4)  /* 2 bytes */
#define ACPI_PM_TMR_PORT (ACPI_PM_PORT_BASE + 8)    /* 4 bytes, 24 bits count */
#define ACPI_PM_PORTS 12

enum acpi_pm_request { ACPI_PM_NONE, ACPI_PM_POWER_OFF, ACPI_PM_SLEEP_REFUSED };

struct acpi_pm {
	uint16_t pm1_status;
	uint16_t pm1_enable;
	uint16_t pm1_control; /* without the write-only SLP_EN */
};

void acpi_pm_init(struct acpi_pm *pm);

/* The whole structure is device state (devstate.h); the timer is the host's clock. */
extern const struct devstate_desc acpi_pm_state_desc;

/* offset = port - ACPI_PM_PORT_BASE; size 1, 2 or 4. */
uint32_t acpi_pm_read(const struct acpi_pm *pm, uint16_t offset, unsigned size, uint64_t now_ns);
/* Returns what the write asked of the platform (a sleep state other than S5 is refused). */
enum acpi_pm_request acpi_pm_write(struct acpi_pm *pm, uint16_t offset, unsigned size,
				   uint32_t value);

#endif
