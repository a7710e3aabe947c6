/*
 * The SMBIOS tables (DMTF DSP0134), for what the hypervisor needs of them:
 * the IPMI device (type 38), the BMC whose watchdog the firmware may have
 * armed. The tables come from firmware and are untrusted: the entry point
 * is checksummed, every structure is bounded by the table's length, and a
 * walk ends at the end-of-table structure (type 127) or the length.
 * Plain C over buffers; host tests build the tables in memory.
 */
#ifndef BOOT_SMBIOS_H
#define BOOT_SMBIOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMBIOS_TABLE_MAX (1U << 20) /* a sanity cap on the structure table */

/*
 * The structure table an entry point describes: SMBIOS 3.x "_SM3_" (64-bit
 * address) or 2.x "_SM_" with its "_DMI_" part. false (and *why) if the
 * entry point is not one or fails its checksums.
 */
bool smbios_table(const void *entry_point, uint64_t *table, uint32_t *length, const char **why);

enum ipmi_interface { IPMI_KCS = 1, IPMI_SMIC = 2, IPMI_BT = 3, IPMI_SSIF = 4 };

struct ipmi_device {
	enum ipmi_interface type;
	bool io;           /* I/O space; else memory-mapped */
	uint64_t address;  /* of the data register */
	unsigned spacing;  /* bytes between registers: 1, 4 or 16 */
};

/* The first IPMI device (type 38) of the table, if any. */
bool smbios_find_ipmi(const uint8_t *table, uint32_t length, struct ipmi_device *out);

#endif
