#include "boot/acpi.h"

#include <string.h>

/* The RSDP revision from which XsdtAddress and the extended checksum exist. */
#define ACPI_RSDP_REVISION_2 2

static const unsigned char *phys_to_ptr(uint64_t addr)
{
	return (const unsigned char *)(uintptr_t)addr;
}

uint8_t acpi_byte_sum(const void *p, size_t len)
{
	const unsigned char *b = p;
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += b[i];
	return sum;
}

/* How to check one kind of table, and what to say when it fails. */
struct table_kind {
	char signature[4];
	uint32_t min_length;
	const char *bad_signature;
	const char *bad_length;
	const char *bad_checksum;
};

static const struct table_kind xsdt_kind = {
	.signature = "XSDT",
	.min_length = sizeof(struct acpi_sdt_header),
	.bad_signature = "XSDT signature mismatch",
	.bad_length = "XSDT length out of range",
	.bad_checksum = "XSDT checksum mismatch",
};

static const struct table_kind rsdt_kind = {
	.signature = "RSDT",
	.min_length = sizeof(struct acpi_sdt_header),
	.bad_signature = "RSDT signature mismatch",
	.bad_length = "RSDT length out of range",
	.bad_checksum = "RSDT checksum mismatch",
};

static const struct table_kind madt_kind = {
	.signature = "APIC",
	.min_length = sizeof(struct acpi_madt),
	.bad_signature = "MADT signature mismatch",
	.bad_length = "MADT length out of range",
	.bad_checksum = "MADT checksum mismatch",
};

/*
 * The FADT (ACPI 6.5, 5.2.9), for the PM timer only: PM_TMR_BLK (a port,
 * ACPI 1.0's 116 bytes hold it) and, in the 6.x layout, X_PM_TMR_BLK and
 * the flags' TMR_VAL_EXT (a 32-bit counter; else 24 bits).
 */
#define FADT_PM_TMR_BLK 76
#define FADT_FLAGS 112
#define FADT_X_PM_TMR_BLK 208
#define FADT_MIN_LENGTH 116
#define FADT_FLAG_TMR_VAL_EXT (1U << 8)
#define GAS_SYSTEM_IO 1

static const struct table_kind fadt_kind = {
	.signature = "FACP",
	.min_length = FADT_MIN_LENGTH,
	.bad_signature = "FADT signature mismatch",
	.bad_length = "FADT length out of range",
	.bad_checksum = "FADT checksum mismatch",
};

/*
 * Checks the table at addr against kind. Only the header is read until the
 * length has been bounded; then the checksum covers every byte the caller
 * may go on to read, which is at most *length.
 */
static const char *check_table(uint64_t addr, const struct table_kind *kind,
			       uint32_t *length)
{
	const unsigned char *t = phys_to_ptr(addr);
	struct acpi_sdt_header h;

	memcpy(&h, t, sizeof(h));
	if (memcmp(h.signature, kind->signature, sizeof(h.signature)))
		return kind->bad_signature;
	if (h.length < kind->min_length || h.length > ACPI_MAX_TABLE_LENGTH)
		return kind->bad_length;
	if (acpi_byte_sum(t, h.length))
		return kind->bad_checksum;
	*length = h.length;
	return NULL;
}

static const char *check_rsdp(const unsigned char *p, struct acpi_rsdp *rsdp)
{
	/*
	 * An ACPI 1.0 RSDP is only the first 20 bytes (5.2.5.3); the rest may
	 * not be there to read until the revision says so.
	 */
	memset(rsdp, 0, sizeof(*rsdp));
	memcpy(rsdp, p, offsetof(struct acpi_rsdp, length));
	if (memcmp(rsdp->signature, "RSD PTR ", sizeof(rsdp->signature)))
		return "RSDP signature mismatch";
	if (acpi_byte_sum(p, offsetof(struct acpi_rsdp, length)))
		return "RSDP checksum mismatch";
	if (rsdp->revision < ACPI_RSDP_REVISION_2)
		return NULL;

	memcpy(rsdp, p, sizeof(*rsdp));
	if (rsdp->length < sizeof(*rsdp) || rsdp->length > ACPI_MAX_TABLE_LENGTH)
		return "RSDP length out of range";
	if (acpi_byte_sum(p, rsdp->length))
		return "RSDP extended checksum mismatch";
	return NULL;
}

/* Finds the first table of kind the XSDT (or, failing that, the RSDT) lists; 0 if none. */
static const char *find_table(const struct acpi_rsdp *rsdp, const struct table_kind *kind,
			      uint64_t *found)
{
	bool xsdt = rsdp->revision >= ACPI_RSDP_REVISION_2 && rsdp->xsdt_address;
	uint64_t root = xsdt ? rsdp->xsdt_address : rsdp->rsdt_address;
	size_t entry_size = xsdt ? sizeof(uint64_t) : sizeof(uint32_t);
	uint32_t length;
	const char *err;

	if (!root)
		return "no RSDT or XSDT";
	err = check_table(root, xsdt ? &xsdt_kind : &rsdt_kind, &length);
	if (err)
		return err;

	const unsigned char *t = phys_to_ptr(root);

	/* A partial entry at the end cannot hold an address and is ignored. */
	for (size_t off = sizeof(struct acpi_sdt_header);
	     length - off >= entry_size; off += entry_size) {
		struct acpi_sdt_header h;
		uint64_t addr;

		if (xsdt) {
			memcpy(&addr, t + off, sizeof(addr));
		} else {
			uint32_t addr32;

			memcpy(&addr32, t + off, sizeof(addr32));
			addr = addr32;
		}
		/* Some firmware leaves null entries in the root table. */
		if (!addr)
			continue;
		memcpy(&h, phys_to_ptr(addr), sizeof(h));
		if (!memcmp(h.signature, kind->signature, sizeof(h.signature))) {
			*found = addr;
			return NULL;
		}
	}
	*found = 0;
	return NULL;
}

/* The PM timer's port from a checked FADT, where it has one in I/O space. */
static void parse_fadt(const unsigned char *t, uint32_t length, struct acpi_info *out)
{
	uint32_t port, flags;

	memcpy(&port, t + FADT_PM_TMR_BLK, sizeof(port));
	memcpy(&flags, t + FADT_FLAGS, sizeof(flags));
	if (length >= FADT_X_PM_TMR_BLK + 12) {
		uint8_t space = t[FADT_X_PM_TMR_BLK];
		uint64_t address;
		memcpy(&address, t + FADT_X_PM_TMR_BLK + 4, sizeof(address));
		/* X_PM_TMR_BLK wins where it is set (5.2.9, table 5.9). */
		if (address)
			port = space == GAS_SYSTEM_IO && address <= 0xfffc ? (uint32_t)address : 0;
	}
	if (port && port <= 0xfffc) {
		out->pm_timer_port = (uint16_t)port;
		out->pm_timer_32bit = flags & FADT_FLAG_TMR_VAL_EXT;
	}
}

static void add_cpu(struct acpi_info *out, uint32_t apic_id, uint32_t acpi_uid,
		    uint32_t flags, bool x2apic)
{
	/* Neither Enabled nor Online Capable: the CPU is not there at all. */
	if (!(flags & (ACPI_LAPIC_ENABLED | ACPI_LAPIC_ONLINE_CAPABLE)))
		return;
	for (unsigned i = 0; i < out->cpu_count; i++)
		if (out->cpus[i].apic_id == apic_id)
			return;
	if (out->cpu_count == ACPI_MAX_CPUS) {
		out->cpus_ignored++;
		return;
	}
	out->cpus[out->cpu_count++] = (struct acpi_cpu){
		.apic_id = apic_id,
		.acpi_uid = acpi_uid,
		.enabled = flags & ACPI_LAPIC_ENABLED,
		.x2apic = x2apic,
	};
}

union madt_entry {
	struct acpi_madt_entry_header header;
	struct acpi_madt_lapic lapic;
	struct acpi_madt_ioapic ioapic;
	struct acpi_madt_override override;
	struct acpi_madt_lapic_address lapic_address;
	struct acpi_madt_x2apic x2apic;
};

/* The least length of each entry type we read; 0 for types we skip. */
static const uint8_t madt_entry_size[] = {
	[ACPI_MADT_LAPIC] = sizeof(struct acpi_madt_lapic),
	[ACPI_MADT_IOAPIC] = sizeof(struct acpi_madt_ioapic),
	[ACPI_MADT_OVERRIDE] = sizeof(struct acpi_madt_override),
	[ACPI_MADT_LAPIC_ADDRESS] = sizeof(struct acpi_madt_lapic_address),
	[ACPI_MADT_X2APIC] = sizeof(struct acpi_madt_x2apic),
};

static const char *parse_entry(const union madt_entry *e, struct acpi_info *out)
{
	switch (e->header.type) {
	case ACPI_MADT_LAPIC:
		add_cpu(out, e->lapic.apic_id, e->lapic.acpi_uid, e->lapic.flags, false);
		break;
	case ACPI_MADT_X2APIC:
		add_cpu(out, e->x2apic.x2apic_id, e->x2apic.acpi_uid, e->x2apic.flags, true);
		break;
	case ACPI_MADT_IOAPIC:
		if (out->ioapic_count == ACPI_MAX_IOAPICS) {
			out->ioapics_ignored++;
			break;
		}
		out->ioapics[out->ioapic_count++] = (struct acpi_ioapic){
			.id = e->ioapic.id,
			.address = e->ioapic.address,
			.gsi_base = e->ioapic.gsi_base,
		};
		break;
	case ACPI_MADT_OVERRIDE:
		if (out->override_count == ACPI_MAX_OVERRIDES)
			return "too many interrupt source overrides";
		out->overrides[out->override_count++] = (struct acpi_override){
			.bus = e->override.bus,
			.source_irq = e->override.source_irq,
			.gsi = e->override.gsi,
			.flags = e->override.flags,
		};
		break;
	case ACPI_MADT_LAPIC_ADDRESS:
		/* Supersedes the 32-bit MADT field (5.2.12.8). */
		out->lapic_address = e->lapic_address.address;
		break;
	}
	return NULL;
}

static const char *parse_madt(const unsigned char *t, uint32_t length,
			      struct acpi_info *out)
{
	struct acpi_madt madt;

	memcpy(&madt, t, sizeof(madt));
	out->lapic_address = madt.lapic_address;
	out->pcat_compat = madt.flags & ACPI_MADT_PCAT_COMPAT;

	for (size_t off = sizeof(madt); off < length;) {
		union madt_entry e;
		struct acpi_madt_entry_header h;
		const char *err;

		if (length - off < sizeof(h))
			return "MADT entry overruns table";
		memcpy(&h, t + off, sizeof(h));
		if (h.length < sizeof(h))
			return "MADT entry length too small";
		if (h.length > length - off)
			return "MADT entry overruns table";
		if (h.type < sizeof(madt_entry_size) / sizeof(madt_entry_size[0]) &&
		    h.length < madt_entry_size[h.type])
			return "MADT entry shorter than its type";

		/* Later revisions may lengthen an entry; the tail is not ours. */
		memset(&e, 0, sizeof(e));
		memcpy(&e, t + off, h.length < sizeof(e) ? h.length : sizeof(e));
		err = parse_entry(&e, out);
		if (err)
			return err;
		off += h.length;
	}
	return NULL;
}

static const char *parse(const unsigned char *p, struct acpi_info *out)
{
	struct acpi_rsdp rsdp;
	uint64_t madt;
	uint32_t length;
	const char *err;

	err = check_rsdp(p, &rsdp);
	if (err)
		return err;
	out->revision = rsdp.revision;
	memcpy(out->oem_id, rsdp.oem_id, sizeof(rsdp.oem_id));

	err = find_table(&rsdp, &madt_kind, &madt);
	if (err)
		return err;
	if (!madt)
		return "no MADT";
	err = check_table(madt, &madt_kind, &length);
	if (err)
		return err;
	err = parse_madt(phys_to_ptr(madt), length, out);
	if (err)
		return err;
	/* The FADT is optional here: without it the TSC is timed another way. */
	uint64_t fadt;
	if (!find_table(&rsdp, &fadt_kind, &fadt) && fadt &&
	    !check_table(fadt, &fadt_kind, &length))
		parse_fadt(phys_to_ptr(fadt), length, out);
	return NULL;
}

int acpi_parse(const void *rsdp, struct acpi_info *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	*why = parse(rsdp, out);
	if (*why) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}
