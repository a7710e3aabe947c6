/*
 * Discovery of the processors and interrupt controllers from the ACPI MADT,
 * and of the PM timer from the FADT.
 * The tables come from firmware and are treated as untrusted: each one is
 * checked (signature, length, checksum) before any field past its header
 * is read, and every MADT entry is bounded by the table length.
 *
 * Firmware memory is identity-mapped, so the physical addresses in the
 * tables are used as pointers. Host tests build the tables in ordinary
 * buffers and store their host addresses there instead.
 */
#ifndef BOOT_ACPI_H
#define BOOT_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACPI_MAX_CPUS 64
#define ACPI_MAX_IOAPICS 8
#define ACPI_MAX_OVERRIDES 16

/* Sanity cap on any table's length: a MADT for thousands of CPUs fits easily. */
#define ACPI_MAX_TABLE_LENGTH (1U << 20)

/* Root System Description Pointer (ACPI 6.5, 5.2.5.3). */
struct acpi_rsdp {
	char signature[8]; /* "RSD PTR " */
	uint8_t checksum;  /* over the first 20 bytes (the ACPI 1.0 structure) */
	char oem_id[6];
	uint8_t revision;  /* 0: ACPI 1.0, 2: ACPI 2.0 and later */
	uint32_t rsdt_address;
	/* Revision 2 and later only. */
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum; /* over length bytes */
	uint8_t reserved[3];
} __attribute__((packed));

_Static_assert(offsetof(struct acpi_rsdp, length) == 20, "ACPI 1.0 RSDP is 20 bytes");
_Static_assert(offsetof(struct acpi_rsdp, xsdt_address) == 24, "XsdtAddress offset");
_Static_assert(sizeof(struct acpi_rsdp) == 36, "ACPI 2.0 RSDP is 36 bytes");

/* System Description Table header (ACPI 6.5, 5.2.6). */
struct acpi_sdt_header {
	char signature[4];
	uint32_t length; /* of the whole table, header included */
	uint8_t revision;
	uint8_t checksum; /* all length bytes sum to 0 */
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	uint32_t creator_id;
	uint32_t creator_revision;
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_sdt_header) == 36, "SDT header is 36 bytes");

/*
 * The RSDT (5.2.7) follows the header with 32-bit table addresses, the
 * XSDT (5.2.8) with 64-bit ones, which are only 4-byte aligned.
 */

/* Multiple APIC Description Table (ACPI 6.5, 5.2.12), before its entries. */
struct acpi_madt {
	struct acpi_sdt_header header;
	uint32_t lapic_address;
	uint32_t flags;
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_madt) == 44, "MADT fixed part is 44 bytes");

#define ACPI_MADT_PCAT_COMPAT (1U << 0)

/* Interrupt Controller Structure types (ACPI 6.5, 5.2.12). */
enum acpi_madt_type {
	ACPI_MADT_LAPIC = 0,
	ACPI_MADT_IOAPIC = 1,
	ACPI_MADT_OVERRIDE = 2,
	ACPI_MADT_LAPIC_ADDRESS = 5,
	ACPI_MADT_X2APIC = 9,
};

struct acpi_madt_entry_header {
	uint8_t type;
	uint8_t length;
} __attribute__((packed));

/* Processor Local APIC (5.2.12.2). */
struct acpi_madt_lapic {
	struct acpi_madt_entry_header header;
	uint8_t acpi_uid;
	uint8_t apic_id;
	uint32_t flags;
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_madt_lapic) == 8, "Local APIC entry is 8 bytes");

/* Local APIC Flags (5.2.12.2); the x2APIC entry uses the same bits. */
#define ACPI_LAPIC_ENABLED (1U << 0)
#define ACPI_LAPIC_ONLINE_CAPABLE (1U << 1)

/* I/O APIC (5.2.12.3). */
struct acpi_madt_ioapic {
	struct acpi_madt_entry_header header;
	uint8_t id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_madt_ioapic) == 12, "I/O APIC entry is 12 bytes");

/* Interrupt Source Override (5.2.12.5). */
struct acpi_madt_override {
	struct acpi_madt_entry_header header;
	uint8_t bus;
	uint8_t source_irq;
	uint32_t gsi;
	uint16_t flags; /* MPS INTI flags: polarity and trigger mode */
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_madt_override) == 10, "Override entry is 10 bytes");

/* Local APIC Address Override (5.2.12.8). */
struct acpi_madt_lapic_address {
	struct acpi_madt_entry_header header;
	uint16_t reserved;
	uint64_t address;
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_madt_lapic_address) == 12,
	       "Local APIC Address Override entry is 12 bytes");

/* Processor Local x2APIC (5.2.12.12). */
struct acpi_madt_x2apic {
	struct acpi_madt_entry_header header;
	uint16_t reserved;
	uint32_t x2apic_id;
	uint32_t flags;
	uint32_t acpi_uid;
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_madt_x2apic) == 16, "x2APIC entry is 16 bytes");

struct acpi_cpu {
	uint32_t apic_id;
	uint32_t acpi_uid;
	bool enabled; /* usable now; otherwise only online capable (hot-add) */
	bool x2apic;  /* described by an x2APIC entry */
};

struct acpi_ioapic {
	uint8_t id;
	uint32_t address;
	uint32_t gsi_base;
};

struct acpi_override {
	uint8_t bus;
	uint8_t source_irq;
	uint32_t gsi;
	uint16_t flags;
};

struct acpi_info {
	uint8_t revision; /* of the RSDP */
	char oem_id[7];
	uint64_t lapic_address; /* MADT field, replaced by a type-5 override if present */
	bool pcat_compat;       /* MADT flag bit 0: legacy 8259s present */
	struct acpi_cpu cpus[ACPI_MAX_CPUS];
	unsigned cpu_count;
	unsigned cpus_ignored; /* present CPUs beyond ACPI_MAX_CPUS */
	struct acpi_ioapic ioapics[ACPI_MAX_IOAPICS];
	unsigned ioapic_count;
	unsigned ioapics_ignored; /* I/O APICs beyond ACPI_MAX_IOAPICS */
	struct acpi_override overrides[ACPI_MAX_OVERRIDES];
	unsigned override_count;
	/* From the FADT, if it is there and checks out: the ACPI PM timer (3.579545 MHz). */
	uint16_t pm_timer_port; /* 0: none */
	bool pm_timer_32bit;    /* TMR_VAL_EXT; else the counter has 24 bits */
};

/*
 * rsdp: the RSDP, from the UEFI configuration table. Uses the XSDT when the
 * RSDP revision is 2 or later and XsdtAddress is not 0, else the RSDT, and
 * the first MADT it lists. A CPU counts as present when its Enabled or
 * Online Capable flag is set; a CPU whose APIC ID was already listed (some
 * firmware describes the same CPU in both a local APIC and an x2APIC entry)
 * is skipped. I/O APICs beyond ACPI_MAX_IOAPICS are counted, not stored;
 * more than ACPI_MAX_OVERRIDES overrides is an error, as ISA has only 16
 * IRQs to override and dropping one would misroute an interrupt.
 * Returns 0, or -1 with *why a static string and *out zeroed.
 */
int acpi_parse(const void *rsdp, struct acpi_info *out, const char **why);

/*
 * The sum of p[0, len) modulo 256. ACPI checksums make every byte of a
 * structure sum to 0, so a parser checks for 0 and a builder stores the
 * negated sum of the structure with its checksum byte cleared.
 */
uint8_t acpi_byte_sum(const void *p, size_t len);

#endif
