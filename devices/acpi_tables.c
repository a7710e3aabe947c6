#include "devices/acpi_tables.h"

#include "devices/ioapic.h"
#include "devices/lapic.h"
#include "devices/pci.h"

#include <stdbool.h>
#include <string.h>

#define OEM_ID "VMM   "
#define CREATOR_ID "VMM "

/* Revisions of the ACPI 6.5 tables built here. */
#define RSDP_REVISION 2
#define XSDT_REVISION 1
#define FADT_REVISION 6
#define FADT_MINOR_VERSION 5
#define MADT_REVISION 6
#define FACS_VERSION 2
/* 2 and up: AML integers are 64 bits wide (ACPI 6.5, 5.2.11.1). */
#define DSDT_REVISION 2

#define FACS_ALIGN 64 /* 5.2.10 */
#define TABLE_ALIGN 16

/* A bounded cursor over the window; once full, everything else is dropped. */
struct out {
	unsigned char *base;
	size_t cap, len;
	uint64_t gpa;
	bool full;
};

static void put(struct out *o, const void *data, size_t n)
{
	if (o->full || n > o->cap - o->len) {
		o->full = true;
		return;
	}
	memcpy(o->base + o->len, data, n);
	o->len += n;
}

static void put_byte(struct out *o, uint8_t b)
{
	put(o, &b, 1);
}

static void align(struct out *o, size_t to)
{
	static const unsigned char zeros[FACS_ALIGN];

	put(o, zeros, (to - o->len % to) % to);
}

static struct acpi_sdt_header header(const char signature[4], uint8_t revision)
{
	struct acpi_sdt_header h = {
		.revision = revision,
		.oem_revision = 1,
		.creator_revision = 1,
	};

	memcpy(h.signature, signature, sizeof(h.signature));
	memcpy(h.oem_id, OEM_ID, sizeof(h.oem_id));
	/* "VMM " and the signature: unique per table, as 5.2.6 asks. */
	memcpy(h.oem_table_id, CREATOR_ID, 4);
	memcpy(h.oem_table_id + 4, signature, 4);
	memcpy(&h.creator_id, CREATOR_ID, sizeof(h.creator_id));
	return h;
}

/* Starts a table at the next aligned offset; returns that offset. */
static size_t table_begin(struct out *o, const char signature[4], uint8_t revision)
{
	struct acpi_sdt_header h = header(signature, revision);

	align(o, TABLE_ALIGN);
	size_t start = o->len;
	put(o, &h, sizeof(h));
	return start;
}

/* Fixes the table's length and checksum; returns its guest-physical address. */
static uint64_t table_end(struct out *o, size_t start)
{
	if (o->full)
		return 0;

	unsigned char *t = o->base + start;
	uint32_t length = (uint32_t)(o->len - start);

	memcpy(t + offsetof(struct acpi_sdt_header, length), &length, sizeof(length));
	t[offsetof(struct acpi_sdt_header, checksum)] = 0;
	t[offsetof(struct acpi_sdt_header, checksum)] = (uint8_t)-acpi_byte_sum(t, length);
	return o->gpa + start;
}

/*
 * AML (ACPI 6.5, chapter 20). Only what the DSDT below needs: names,
 * integers, packages, buffers, scopes, devices, and the two methods that
 * choose the PCI routing for the interrupt model OSPM picked.
 */
#define AML_ZERO 0x00
#define AML_NAME 0x08
#define AML_BYTE_PREFIX 0x0a
#define AML_DWORD_PREFIX 0x0c
#define AML_SCOPE 0x10
#define AML_BUFFER 0x11
#define AML_PACKAGE 0x12
#define AML_METHOD 0x14
#define AML_EXT_PREFIX 0x5b
#define AML_ROOT_CHAR 0x5c
#define AML_ARG0 0x68
#define AML_STORE 0x70
#define AML_IF 0xa0
#define AML_RETURN 0xa4
#define AML_EXT_DEVICE 0x82

static void aml_nameseg(struct out *o, const char name[4])
{
	put(o, name, 4);
}

/* The shortest encoding of each value we emit (20.2.3). */
static void aml_integer(struct out *o, uint32_t value)
{
	if (value == 0) {
		put_byte(o, AML_ZERO);
	} else if (value <= 0xff) {
		put_byte(o, AML_BYTE_PREFIX);
		put_byte(o, (uint8_t)value);
	} else {
		put_byte(o, AML_DWORD_PREFIX);
		put(o, &value, sizeof(value));
	}
}

/*
 * A PkgLength (20.2.4) counts itself, so it is known only once the body is
 * written: the body is then moved up to make room for it. One byte holds
 * lengths up to 63; otherwise bits 6-7 of the lead byte give the number of
 * bytes that follow, the lead byte's low nibble the length's low nibble,
 * and each following byte the next 8 bits.
 */
static void aml_pkg_end(struct out *o, size_t start)
{
	size_t body = o->len - start;
	size_t n = 1;

	while (n < 4 && body + n > (n == 1 ? 0x3fU : (1U << (4 + 8 * (n - 1))) - 1))
		n++;
	unsigned char lead[4] = { 0 };
	put(o, lead, n); /* claims the room, checked against the window */
	if (o->full)
		return;

	unsigned char *p = o->base + start;
	size_t total = body + n;

	memmove(p + n, p, body);
	if (n == 1) {
		p[0] = (unsigned char)total;
		return;
	}
	p[0] = (unsigned char)((n - 1) << 6 | (total & 0xf));
	for (size_t i = 1; i < n; i++)
		p[i] = (unsigned char)(total >> (4 + 8 * (i - 1)));
}

static void put16(struct out *o, uint16_t v)
{
	put(o, &v, sizeof(v));
}

static void put32(struct out *o, uint32_t v)
{
	put(o, &v, sizeof(v));
}

/*
 * Address space resource descriptors (6.4.3.5.2 DWord, 6.4.3.5.3 Word):
 * the root bridge produces these ranges for the devices behind it, with
 * fixed minimum and maximum, so _LEN = _MAX - _MIN + 1 (Table 6.44).
 */
#define RES_WORD_ADDRESS 0x88
#define RES_DWORD_ADDRESS 0x87
#define RES_TYPE_MEMORY 0
#define RES_TYPE_IO 1
#define RES_TYPE_BUS 2
#define RES_PRODUCER_MIN_MAX_FIXED 0x0c /* _MIF | _MAF, positive decode */
#define RES_IO_ENTIRE_RANGE 0x03        /* _RNG: ISA and non-ISA ports */
#define RES_MEM_READ_WRITE 0x01         /* _RW, _MEM non-cacheable */
#define RES_IO_DECODE16 0x01            /* I/O port descriptor, 6.4.2.5 */
#define RES_IO_PORT 0x47
#define RES_END_TAG 0x79

static void res_word(struct out *o, uint8_t type, uint8_t type_flags, uint16_t min,
		     uint32_t len)
{
	put_byte(o, RES_WORD_ADDRESS);
	put16(o, 13); /* bytes after the length field */
	put_byte(o, type);
	put_byte(o, RES_PRODUCER_MIN_MAX_FIXED);
	put_byte(o, type_flags);
	put16(o, 0); /* granularity */
	put16(o, min);
	put16(o, (uint16_t)(min + len - 1));
	put16(o, 0); /* translation offset */
	put16(o, (uint16_t)len);
}

static void res_dword_memory(struct out *o, uint32_t min, uint32_t len)
{
	put_byte(o, RES_DWORD_ADDRESS);
	put16(o, 23);
	put_byte(o, RES_TYPE_MEMORY);
	put_byte(o, RES_PRODUCER_MIN_MAX_FIXED);
	put_byte(o, RES_MEM_READ_WRITE);
	put32(o, 0);
	put32(o, min);
	put32(o, min + len - 1);
	put32(o, 0);
	put32(o, len);
}

/* Name (_CRS, ResourceTemplate () { ... }) of \_SB.PCI0. */
static void root_bridge_crs(struct out *o, const struct acpi_tables_config *cfg)
{
	put_byte(o, AML_NAME);
	aml_nameseg(o, "_CRS");
	put_byte(o, AML_BUFFER);
	size_t buffer = o->len;

	/* BufferSize, a ByteConst patched below: the template is under 256 bytes. */
	put_byte(o, AML_BYTE_PREFIX);
	put_byte(o, 0);
	size_t data = o->len;

	res_word(o, RES_TYPE_BUS, 0, 0, 1); /* bus 0 only: _BBN 0, no bridges */
	put_byte(o, RES_IO_PORT);
	put_byte(o, RES_IO_DECODE16);
	put16(o, PCI_CONFIG_PORT);
	put16(o, PCI_CONFIG_PORT);
	put_byte(o, 1); /* alignment */
	put_byte(o, PCI_CONFIG_PORTS);
	if (cfg->pci_io_size)
		res_word(o, RES_TYPE_IO, RES_IO_ENTIRE_RANGE, (uint16_t)cfg->pci_io_base,
			 cfg->pci_io_size);
	if (cfg->pci_mem_size)
		res_dword_memory(o, cfg->pci_mem_base, cfg->pci_mem_size);
	/* A zero checksum byte means "treat as correct" (6.4.2.9). */
	put_byte(o, RES_END_TAG);
	put_byte(o, 0);
	if (!o->full)
		o->base[data - 1] = (unsigned char)(o->len - data);
	aml_pkg_end(o, buffer);
}

/*
 * DefinitionBlock ("", "DSDT", 2, "VMM   ", "VMM DSDT", 1)
 * {
 *     Name (_S5, Package (4) { 5, 0, 0, 0 })
 *     Name (PICM, 0)
 *     Method (_PIC, 1) { Store (Arg0, \PICM) }
 *     Scope (\_SB) {
 *         Device (PCI0) {
 *             Name (_HID, EisaId ("PNP0A03"))
 *             Name (_UID, 0)
 *             Name (_BBN, 0)
 *             Name (_CRS, ResourceTemplate () {
 *                 WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
 *                                0, 0, 0, 0, 1)
 *                 IO (Decode16, 0xCF8, 0xCF8, 1, 8)
 *                 WordIO (..., EntireRange, 0, io_base, io_max, 0, io_size)
 *                 DWordMemory (..., NonCacheable, ReadWrite, 0, mem_base,
 *                              mem_max, 0, mem_size)
 *             })
 *             Name (PRTP, Package (n) { Package (4) { 0xDDDDFFFF, 0, 0, isa_irq }, ... })
 *             Name (PRTA, Package (n) { Package (4) { 0xDDDDFFFF, 0, 0, gsi }, ... })
 *             Method (_PRT, 0) {
 *                 If (\PICM) { Return (PRTA) }
 *                 Return (PRTP)
 *             }
 *         }
 *     }
 * }
 *
 * \_S5 is the only sleep state: its first element is SLP_TYPa, what OSPM
 * writes to PM1a_CNT.SLP_TYP with SLP_EN to power off (7.4.2); the second
 * is SLP_TYPb for a PM1b block that does not exist, the rest reserved.
 *
 * PCI interrupts follow the interrupt model OSPM announces through \_PIC
 * (5.8.1: 0 PIC, 1 APIC), as on a PC whose chipset steers each INTx# either
 * to an 8259 input or to an I/O APIC input of its own. _PRT (6.2.13) lists,
 * per device, INTA# with Source 0, so Source Index is the GSI itself:
 * PRTP gives the ISA IRQ of the function's Interrupt Line register, PRTA
 * an I/O APIC input from 16 up, which nothing else shares. OSPM makes both
 * level-triggered and active-low (6.2.13: "non-ISA" GSIs), what PCI INTx#
 * is on the wire.
 */
#define EISA_ID_PNP0A03 0x030ad041U /* "PNP" compressed, then 0x0A03, big-endian */
#define S5_PACKAGE_ELEMENTS 4
#define PRT_ALL_FUNCTIONS 0xffffU /* _PRT Address: device in the high word */
#define PCI_INTA 0

static void aml_name_integer(struct out *o, const char name[4], uint32_t value)
{
	put_byte(o, AML_NAME);
	aml_nameseg(o, name);
	aml_integer(o, value);
}

static void aml_root_name(struct out *o, const char name[4])
{
	put_byte(o, AML_ROOT_CHAR);
	aml_nameseg(o, name);
}

/* Method (name, args) { ... }: the body follows, closed by aml_pkg_end. */
static size_t aml_method_begin(struct out *o, const char name[4], uint8_t args)
{
	put_byte(o, AML_METHOD);
	size_t method = o->len;
	aml_nameseg(o, name);
	put_byte(o, args); /* MethodFlags: ArgCount in bits 0-2, not serialized */
	return method;
}

/* Name (name, Package () { one Package (4) per function }) for one interrupt model. */
static void prt_table(struct out *o, const char name[4], const struct acpi_tables_config *cfg,
		      bool apic)
{
	put_byte(o, AML_NAME);
	aml_nameseg(o, name);
	put_byte(o, AML_PACKAGE);
	size_t package = o->len;
	put_byte(o, (uint8_t)cfg->pci_route_count);
	for (unsigned i = 0; i < cfg->pci_route_count; i++) {
		const struct acpi_pci_route *r = &cfg->pci_routes[i];
		put_byte(o, AML_PACKAGE);
		size_t entry = o->len;
		put_byte(o, 4);
		aml_integer(o, (uint32_t)r->device << 16 | PRT_ALL_FUNCTIONS);
		aml_integer(o, PCI_INTA);
		aml_integer(o, 0); /* Source: none, so Source Index is a GSI */
		aml_integer(o, apic ? r->gsi : r->isa_irq);
		aml_pkg_end(o, entry);
	}
	aml_pkg_end(o, package);
}

static void pci_routing(struct out *o, const struct acpi_tables_config *cfg)
{
	prt_table(o, "PRTP", cfg, false);
	prt_table(o, "PRTA", cfg, true);

	size_t method = aml_method_begin(o, "_PRT", 0);
	put_byte(o, AML_IF);
	size_t apic = o->len;
	aml_root_name(o, "PICM");
	put_byte(o, AML_RETURN);
	aml_nameseg(o, "PRTA");
	aml_pkg_end(o, apic);
	put_byte(o, AML_RETURN);
	aml_nameseg(o, "PRTP");
	aml_pkg_end(o, method);
}

static uint64_t build_dsdt(struct out *o, const struct acpi_tables_config *cfg)
{
	size_t start = table_begin(o, "DSDT", DSDT_REVISION);

	put_byte(o, AML_NAME);
	aml_nameseg(o, "_S5_");
	put_byte(o, AML_PACKAGE);
	size_t package = o->len;
	put_byte(o, S5_PACKAGE_ELEMENTS);
	aml_integer(o, ACPI_SLP_TYP_S5);
	for (unsigned i = 1; i < S5_PACKAGE_ELEMENTS; i++)
		aml_integer(o, 0);
	aml_pkg_end(o, package);

	aml_name_integer(o, "PICM", 0);
	size_t pic = aml_method_begin(o, "_PIC", 1);
	put_byte(o, AML_STORE);
	put_byte(o, AML_ARG0);
	aml_root_name(o, "PICM");
	aml_pkg_end(o, pic);

	put_byte(o, AML_SCOPE);
	size_t scope = o->len;
	put_byte(o, '\\');
	aml_nameseg(o, "_SB_");

	put_byte(o, AML_EXT_PREFIX);
	put_byte(o, AML_EXT_DEVICE);
	size_t device = o->len;
	aml_nameseg(o, "PCI0");
	aml_name_integer(o, "_HID", EISA_ID_PNP0A03);
	aml_name_integer(o, "_UID", 0);
	aml_name_integer(o, "_BBN", 0);
	root_bridge_crs(o, cfg);
	pci_routing(o, cfg);
	aml_pkg_end(o, device);
	aml_pkg_end(o, scope);

	return table_end(o, start);
}

static struct acpi_gas io_gas(uint16_t port, unsigned bytes, uint8_t access)
{
	return (struct acpi_gas){
		.space_id = ACPI_GAS_SYSTEM_IO,
		.bit_width = (uint8_t)(bytes * 8),
		.access_size = access,
		.address = port,
	};
}

static uint64_t build_fadt(struct out *o, const struct acpi_tables_config *cfg,
			   uint64_t facs, uint64_t dsdt)
{
	struct acpi_fadt f = {
		.header = header("FACP", FADT_REVISION),
		.sci_int = ACPI_SCI_IRQ,
		/*
		 * No SMI_CMD: the platform has no SMM and is in ACPI mode from
		 * reset (5.2.9: zero where SMM is not supported), so OSPM never
		 * does the ACPI_ENABLE handshake. ACPICA then takes ACPI mode
		 * as given without reading SCI_EN (acpi_hw_get_mode).
		 */
		.smi_cmd = 0,
		.pm1a_evt_blk = cfg->pm1a_evt_port,
		.pm1a_cnt_blk = cfg->pm1a_cnt_port,
		.pm_tmr_blk = cfg->pm_tmr_port,
		.pm1_evt_len = ACPI_PM1_EVT_LEN,
		.pm1_cnt_len = ACPI_PM1_CNT_LEN,
		.pm_tmr_len = ACPI_PM_TMR_LEN,
		/* No C2/C3: latencies above 100 and 1000 us say so (Table 5.9). */
		.p_lvl2_lat = 101,
		.p_lvl3_lat = 1001,
		.century = 0x32, /* devices/rtc.c keeps the century there */
		/*
		 * ISA devices (PIC, PIT, RTC, UART) exist; no 8042, so Linux
		 * does not probe for a keyboard controller; no VGA, so it does
		 * not touch the legacy VGA ranges. MSI is left allowed.
		 */
		.iapc_boot_arch = ACPI_IAPC_LEGACY_DEVICES | ACPI_IAPC_VGA_NOT_PRESENT,
		/*
		 * Buttons and RTC wake-up are not modelled, so they are declared
		 * absent from the fixed hardware; TMR_VAL_EXT clear: the PM
		 * timer is 24 bits. Not HW_REDUCED_ACPI: PM1 and the PM timer
		 * are the fixed hardware Linux powers off and keeps time with.
		 */
		.flags = ACPI_FADT_WBINVD | ACPI_FADT_PROC_C1 | ACPI_FADT_PWR_BUTTON |
			 ACPI_FADT_SLP_BUTTON | ACPI_FADT_FIX_RTC | ACPI_FADT_RESET_REG_SUP,
		.reset_reg = io_gas(ACPI_RESET_PORT, 1, ACPI_GAS_ACCESS_BYTE),
		.reset_value = ACPI_RESET_VALUE,
		.minor_version = FADT_MINOR_VERSION,
		/*
		 * Only the 64-bit pointers: 5.2.9 wants FIRMWARE_CTRL zero when
		 * X_FIRMWARE_CTRL is set, and ACPICA warns when the two differ.
		 */
		.x_firmware_ctrl = facs,
		.x_dsdt = dsdt,
		.x_pm1a_evt_blk = io_gas(cfg->pm1a_evt_port, ACPI_PM1_EVT_LEN, ACPI_GAS_ACCESS_WORD),
		.x_pm1a_cnt_blk = io_gas(cfg->pm1a_cnt_port, ACPI_PM1_CNT_LEN, ACPI_GAS_ACCESS_WORD),
		.x_pm_tmr_blk = io_gas(cfg->pm_tmr_port, ACPI_PM_TMR_LEN, ACPI_GAS_ACCESS_DWORD),
	};

	align(o, TABLE_ALIGN);
	size_t start = o->len;
	put(o, &f, sizeof(f));
	return table_end(o, start);
}

static uint64_t build_facs(struct out *o)
{
	struct acpi_facs f = {
		.signature = "FACS",
		.length = sizeof(f),
		.version = FACS_VERSION,
	};

	align(o, FACS_ALIGN);
	uint64_t gpa = o->gpa + o->len;
	put(o, &f, sizeof(f));
	return gpa;
}

static uint64_t build_madt(struct out *o)
{
	struct acpi_madt m = {
		.header = header("APIC", MADT_REVISION),
		.lapic_address = LAPIC_DEFAULT_BASE,
		.flags = ACPI_MADT_PCAT_COMPAT, /* the 8259s are there too */
	};
	struct acpi_madt_lapic cpu = {
		.header = { ACPI_MADT_LAPIC, sizeof(cpu) },
		.acpi_uid = 0,
		.apic_id = 0,
		.flags = ACPI_LAPIC_ENABLED,
	};
	struct acpi_madt_ioapic ioapic = {
		.header = { ACPI_MADT_IOAPIC, sizeof(ioapic) },
		.id = GUEST_IOAPIC_ID,
		.address = IOAPIC_DEFAULT_BASE,
		.gsi_base = 0,
	};
	/* As on PCs: the PIT's IRQ 0 is wired to I/O APIC pin 2 (5.2.12.5). */
	struct acpi_madt_override timer = {
		.header = { ACPI_MADT_OVERRIDE, sizeof(timer) },
		.source_irq = 0,
		.gsi = 2,
		.flags = ACPI_INTI_CONFORMS, /* ISA: edge, active high */
	};
	/* The SCI is level-triggered active-high on its own pin (5.2.9, SCI_INT). */
	struct acpi_madt_override sci = {
		.header = { ACPI_MADT_OVERRIDE, sizeof(sci) },
		.source_irq = ACPI_SCI_IRQ,
		.gsi = ACPI_SCI_IRQ,
		.flags = ACPI_INTI_ACTIVE_HIGH | ACPI_INTI_LEVEL,
	};
	struct acpi_madt_lapic_nmi nmi = {
		.header = { ACPI_MADT_LAPIC_NMI, sizeof(nmi) },
		.acpi_uid = ACPI_MADT_ALL_PROCESSORS,
		.flags = ACPI_INTI_CONFORMS,
		.lint = 1,
	};

	align(o, TABLE_ALIGN);
	size_t start = o->len;
	put(o, &m, sizeof(m));
	put(o, &cpu, sizeof(cpu));
	put(o, &ioapic, sizeof(ioapic));
	put(o, &timer, sizeof(timer));
	put(o, &sci, sizeof(sci));
	put(o, &nmi, sizeof(nmi));
	return table_end(o, start);
}

static uint64_t build_xsdt(struct out *o, uint64_t fadt, uint64_t madt)
{
	size_t start = table_begin(o, "XSDT", XSDT_REVISION);

	put(o, &fadt, sizeof(fadt));
	put(o, &madt, sizeof(madt));
	return table_end(o, start);
}

/*
 * Revision 2 with only the XSDT: an OS that knows ACPI 2.0 uses it
 * (5.2.5.3), and everything the tables describe needs 64-bit pointers
 * anyway (X_FIRMWARE_CTRL, X_DSDT).
 */
static void build_rsdp(unsigned char *at, uint64_t xsdt)
{
	struct acpi_rsdp r = {
		.signature = "RSD PTR ",
		.oem_id = OEM_ID,
		.revision = RSDP_REVISION,
		.length = sizeof(r),
		.xsdt_address = xsdt,
	};

	r.checksum = (uint8_t)-acpi_byte_sum(&r, offsetof(struct acpi_rsdp, length));
	r.extended_checksum = (uint8_t)-acpi_byte_sum(&r, sizeof(r));
	memcpy(at, &r, sizeof(r));
}

static bool ranges_overlap(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len)
{
	return a < b + b_len && b < a + a_len;
}

static const char *check_config(uint64_t gpa, const struct acpi_tables_config *c)
{
	if (gpa % FACS_ALIGN)
		return "ACPI tables must start 64-byte aligned";
	if (!c->pm1a_evt_port || c->pm1a_evt_port > 0x10000 - ACPI_PM1_EVT_LEN ||
	    !c->pm1a_cnt_port || c->pm1a_cnt_port > 0x10000 - ACPI_PM1_CNT_LEN ||
	    !c->pm_tmr_port || c->pm_tmr_port > 0x10000 - ACPI_PM_TMR_LEN)
		return "PM1 event, PM1 control and PM timer need non-zero ports";
	if (c->pci_io_size &&
	    (c->pci_io_base > 0xffff || c->pci_io_size > 0x10000 - c->pci_io_base ||
	     ranges_overlap(c->pci_io_base, c->pci_io_size, PCI_CONFIG_PORT, PCI_CONFIG_PORTS)))
		return "PCI I/O window must lie within 0-0xffff, clear of 0xcf8-0xcff";
	if (c->pci_mem_size &&
	    ((uint64_t)c->pci_mem_base + c->pci_mem_size > (1ULL << 32) ||
	     ranges_overlap(c->pci_mem_base, c->pci_mem_size, IOAPIC_DEFAULT_BASE,
			    IOAPIC_MMIO_SIZE) ||
	     ranges_overlap(c->pci_mem_base, c->pci_mem_size, LAPIC_DEFAULT_BASE,
			    LAPIC_MMIO_SIZE)))
		return "PCI memory window must lie below 4 GiB, clear of the APICs";
	if (c->pci_route_count > ACPI_PCI_ROUTES_MAX)
		return "at most 8 PCI interrupt routes";
	for (unsigned i = 0; i < c->pci_route_count; i++) {
		const struct acpi_pci_route *r = &c->pci_routes[i];
		if (r->device < 1 || r->device > 31 || r->isa_irq < 3 ||
		    r->isa_irq > 15 || r->gsi < ACPI_PCI_GSI_FIRST || r->gsi >= IOAPIC_PINS)
			return "a PCI interrupt route needs device 1-31, ISA IRQ 3-15, GSI 16-23";
	}
	return NULL;
}

int acpi_tables_build(void *dst, size_t dst_size, uint64_t gpa,
		      const struct acpi_tables_config *cfg,
		      struct acpi_tables_layout *layout, const char **why)
{
	struct out o = { .base = dst, .cap = dst_size, .gpa = gpa };
	struct acpi_tables_layout l = { .rsdp = gpa };

	*why = check_config(gpa, cfg);
	if (*why)
		return -1;
	/* The RSDP is filled in last, once the XSDT's address is known. */
	put(&o, &(struct acpi_rsdp){ 0 }, sizeof(struct acpi_rsdp));
	l.facs = build_facs(&o);
	l.dsdt = build_dsdt(&o, cfg);
	l.fadt = build_fadt(&o, cfg, l.facs, l.dsdt);
	l.madt = build_madt(&o);
	l.xsdt = build_xsdt(&o, l.fadt, l.madt);
	if (o.full) {
		*why = "ACPI tables do not fit in the space given";
		return -1;
	}
	build_rsdp(o.base, l.xsdt);
	l.size = o.len;
	*layout = l;
	return 0;
}
