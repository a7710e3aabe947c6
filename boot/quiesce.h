/*
 * What the firmware leaves armed: at the hand-over every host interrupt
 * source is masked (the legacy 8259s, each I/O APIC redirection entry,
 * the boot CPU's local APIC LVTs). The hypervisor takes no host
 * interrupts, it polls; a source left armed would only raise
 * external-interrupt exits, or, on a real server, an interrupt storm from
 * a device the firmware used.
 */
#ifndef BOOT_QUIESCE_H
#define BOOT_QUIESCE_H

#include <stddef.h>

#include "boot/acpi.h"

/*
 * Masks them all and puts the other CPUs into wait-for-SIPI, out of the
 * firmware's parking loop; report says what was done, for the boot log.
 */
void quiesce_platform(const struct acpi_info *acpi, char *report, size_t report_size);

#endif
