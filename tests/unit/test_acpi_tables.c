#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "boot/acpi.h"
#include "devices/acpi_tables.h"

/* Guest RAM up to 1 MiB, with the tables where a Linux VM has them. */
#define LOW_RAM (1024 * 1024)
#define TABLES_GPA 0xf0000
#define TABLES_SIZE 0x10000

#define PM1A_EVT 0x600
#define PM1A_CNT 0x604
#define PM_TMR 0x608
#define IO_BASE 0xc000
#define IO_SIZE 0x4000
#define MEM_BASE 0xc0000000U
#define MEM_SIZE 0x3ec00000U /* up to the I/O APIC */

/* A disk at device 1 and an adapter at device 2, as a Linux VM has them. */
static const struct acpi_pci_route routes[] = { { 1, 10, 16 }, { 2, 11, 17 } };

static const struct acpi_tables_config config = {
	.pci_routes = routes,
	.pci_route_count = 2,
	.pm1a_evt_port = PM1A_EVT,
	.pm1a_cnt_port = PM1A_CNT,
	.pm_tmr_port = PM_TMR,
	.pci_io_base = IO_BASE,
	.pci_io_size = IO_SIZE,
	.pci_mem_base = MEM_BASE,
	.pci_mem_size = MEM_SIZE,
};

static unsigned char *ram;
static struct acpi_tables_layout layout;

static int setup(void **state)
{
	const char *why = "unset";

	(void)state;
	ram = calloc(1, LOW_RAM);
	assert_non_null(ram);
	assert_int_equal(acpi_tables_build(ram + TABLES_GPA, TABLES_SIZE, TABLES_GPA, &config,
					   &layout, &why), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(ram);
	return 0;
}

static const unsigned char *at(uint64_t gpa)
{
	assert_true(gpa < LOW_RAM);
	return ram + gpa;
}

static uint8_t sum(const unsigned char *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

static struct acpi_sdt_header table_header(uint64_t gpa)
{
	struct acpi_sdt_header h;

	memcpy(&h, at(gpa), sizeof(h));
	return h;
}

/* Signature, revision, OEM fields, the length given, and the checksum. */
static void check_table(uint64_t gpa, const char *signature, uint8_t revision, uint32_t length)
{
	struct acpi_sdt_header h = table_header(gpa);

	assert_memory_equal(h.signature, signature, 4);
	assert_int_equal(h.revision, revision);
	assert_int_equal(h.length, length);
	assert_memory_equal(h.oem_id, "VMM   ", 6);
	assert_int_equal(gpa % 16, 0);
	assert_true(gpa + length <= TABLES_GPA + layout.size);
	assert_int_equal(sum(at(gpa), length), 0);
}

static void test_rsdp(void **state)
{
	struct acpi_rsdp r;

	(void)state;
	assert_int_equal(layout.rsdp, TABLES_GPA);
	memcpy(&r, at(layout.rsdp), sizeof(r));
	assert_memory_equal(r.signature, "RSD PTR ", 8);
	assert_memory_equal(r.oem_id, "VMM   ", 6);
	assert_int_equal(r.revision, 2);
	assert_int_equal(r.rsdt_address, 0);
	assert_int_equal(r.length, 36);
	assert_int_equal(r.xsdt_address, layout.xsdt);
	assert_int_equal(sum(at(layout.rsdp), 20), 0);
	assert_int_equal(sum(at(layout.rsdp), 36), 0);
}

/* What a kernel without acpi_rsdp_addr does: ACPI 6.5, 5.2.5.1. */
static void test_rsdp_found_by_bios_area_scan(void **state)
{
	uint64_t found = 0;

	(void)state;
	for (uint64_t a = 0xe0000; a < 0x100000; a += 16)
		if (!memcmp(at(a), "RSD PTR ", 8) && !sum(at(a), 20)) {
			found = a;
			break;
		}
	assert_int_equal(found, layout.rsdp);
}

static void test_table_lengths_and_checksums(void **state)
{
	(void)state;
	check_table(layout.xsdt, "XSDT", 1, 36 + 2 * 8);
	check_table(layout.fadt, "FACP", 6, 276);
	check_table(layout.madt, "APIC", 6, 44 + 8 + 12 + 10 + 10 + 6);
	check_table(layout.dsdt, "DSDT", 2, table_header(layout.dsdt).length);
	assert_true(table_header(layout.dsdt).length > 36);

	struct acpi_facs facs;

	memcpy(&facs, at(layout.facs), sizeof(facs));
	assert_memory_equal(facs.signature, "FACS", 4);
	assert_int_equal(facs.length, 64);
	assert_int_equal(facs.version, 2);
	assert_int_equal(facs.global_lock, 0);
	assert_int_equal(layout.facs % 64, 0);
	assert_true(layout.size <= TABLES_SIZE);
}

static void test_xsdt_lists_fadt_and_madt(void **state)
{
	uint64_t entries[2];

	(void)state;
	memcpy(entries, at(layout.xsdt) + 36, sizeof(entries));
	assert_int_equal(entries[0], layout.fadt);
	assert_int_equal(entries[1], layout.madt);
}

static void check_io_gas(const struct acpi_gas *g, uint16_t port, unsigned bits, unsigned access)
{
	assert_int_equal(g->space_id, ACPI_GAS_SYSTEM_IO);
	assert_int_equal(g->bit_width, bits);
	assert_int_equal(g->bit_offset, 0);
	assert_int_equal(g->access_size, access);
	assert_int_equal(g->address, port);
}

static void test_fadt_fields(void **state)
{
	struct acpi_fadt f;
	static const struct acpi_gas none;

	(void)state;
	memcpy(&f, at(layout.fadt), sizeof(f));
	assert_int_equal(f.firmware_ctrl, 0);
	assert_int_equal(f.dsdt, 0);
	assert_int_equal(f.x_firmware_ctrl, layout.facs);
	assert_int_equal(f.x_dsdt, layout.dsdt);
	assert_int_equal(f.sci_int, 9);
	assert_int_equal(f.smi_cmd, 0);
	assert_int_equal(f.acpi_enable, 0);
	assert_int_equal(f.acpi_disable, 0);
	assert_int_equal(f.pm1a_evt_blk, PM1A_EVT);
	assert_int_equal(f.pm1b_evt_blk, 0);
	assert_int_equal(f.pm1a_cnt_blk, PM1A_CNT);
	assert_int_equal(f.pm1b_cnt_blk, 0);
	assert_int_equal(f.pm2_cnt_blk, 0);
	assert_int_equal(f.pm_tmr_blk, PM_TMR);
	assert_int_equal(f.gpe0_blk, 0);
	assert_int_equal(f.gpe0_blk_len, 0);
	assert_int_equal(f.pm1_evt_len, 4);
	assert_int_equal(f.pm1_cnt_len, 2);
	assert_int_equal(f.pm_tmr_len, 4);
	assert_true(f.p_lvl2_lat > 100);
	assert_true(f.p_lvl3_lat > 1000);
	assert_int_equal(f.century, 0x32);

	assert_true(f.flags & ACPI_FADT_RESET_REG_SUP);
	assert_true(f.flags & ACPI_FADT_WBINVD);
	assert_true(f.flags & ACPI_FADT_PWR_BUTTON);
	assert_true(f.flags & ACPI_FADT_SLP_BUTTON);
	assert_false(f.flags & ACPI_FADT_TMR_VAL_EXT);
	assert_false(f.flags & ACPI_FADT_HW_REDUCED_ACPI);

	assert_true(f.iapc_boot_arch & ACPI_IAPC_LEGACY_DEVICES);
	assert_false(f.iapc_boot_arch & ACPI_IAPC_8042);
	assert_true(f.iapc_boot_arch & ACPI_IAPC_VGA_NOT_PRESENT);
	assert_false(f.iapc_boot_arch & ACPI_IAPC_MSI_NOT_SUPPORTED);
	assert_false(f.iapc_boot_arch & ACPI_IAPC_CMOS_RTC_NOT_PRESENT);

	check_io_gas(&f.reset_reg, 0xcf9, 8, ACPI_GAS_ACCESS_BYTE);
	assert_int_equal(f.reset_value, 0x06);
	assert_int_equal(f.minor_version, 5);
	check_io_gas(&f.x_pm1a_evt_blk, PM1A_EVT, 32, ACPI_GAS_ACCESS_WORD);
	check_io_gas(&f.x_pm1a_cnt_blk, PM1A_CNT, 16, ACPI_GAS_ACCESS_WORD);
	check_io_gas(&f.x_pm_tmr_blk, PM_TMR, 32, ACPI_GAS_ACCESS_DWORD);
	assert_memory_equal(&f.x_pm1b_evt_blk, &none, sizeof(none));
	assert_memory_equal(&f.x_gpe0_blk, &none, sizeof(none));
	assert_memory_equal(&f.sleep_control_reg, &none, sizeof(none));
}

static void test_madt_entries(void **state)
{
	const unsigned char *t;
	struct acpi_madt m;
	struct acpi_madt_lapic_nmi nmi;
	static const uint8_t types[] = { ACPI_MADT_LAPIC, ACPI_MADT_IOAPIC, ACPI_MADT_OVERRIDE,
					 ACPI_MADT_OVERRIDE, ACPI_MADT_LAPIC_NMI };
	size_t off = sizeof(m);

	(void)state;
	t = at(layout.madt);
	memcpy(&m, t, sizeof(m));
	assert_int_equal(m.lapic_address, 0xfee00000);
	assert_int_equal(m.flags, ACPI_MADT_PCAT_COMPAT);
	for (unsigned i = 0; i < sizeof(types); i++) {
		assert_int_equal(t[off], types[i]);
		off += t[off + 1];
	}
	assert_int_equal(off, m.header.length);

	memcpy(&nmi, t + m.header.length - sizeof(nmi), sizeof(nmi));
	assert_int_equal(nmi.acpi_uid, 0xff);
	assert_int_equal(nmi.flags, 0);
	assert_int_equal(nmi.lint, 1);
}

/* The host-side parser (boot/acpi.c) reads back what the builder wrote. */
static void test_host_parser_reads_tables(void **state)
{
	static struct acpi_info info;
	const char *why = NULL;
	struct acpi_tables_layout l;
	/* The parser follows addresses as pointers: build at the buffer's own address. */
	unsigned char *buf = aligned_alloc(64, TABLES_SIZE);

	(void)state;
	assert_non_null(buf);
	assert_int_equal(acpi_tables_build(buf, TABLES_SIZE, (uintptr_t)buf, &config, &l, &why), 0);
	assert_int_equal(acpi_parse(buf, &info, &why), 0);
	assert_int_equal(info.revision, 2);
	assert_string_equal(info.oem_id, "VMM   ");
	assert_int_equal(info.lapic_address, 0xfee00000);
	assert_true(info.pcat_compat);
	assert_int_equal(info.cpu_count, 1);
	assert_int_equal(info.cpus[0].apic_id, 0);
	assert_int_equal(info.cpus[0].acpi_uid, 0);
	assert_true(info.cpus[0].enabled);
	assert_int_equal(info.ioapic_count, 1);
	assert_int_equal(info.ioapics[0].id, 1);
	assert_int_equal(info.ioapics[0].address, 0xfec00000);
	assert_int_equal(info.ioapics[0].gsi_base, 0);
	assert_int_equal(info.override_count, 2);
	assert_int_equal(info.overrides[0].source_irq, 0);
	assert_int_equal(info.overrides[0].gsi, 2);
	assert_int_equal(info.overrides[0].flags, 0);
	assert_int_equal(info.overrides[1].source_irq, 9);
	assert_int_equal(info.overrides[1].gsi, 9);
	assert_int_equal(info.overrides[1].flags, 0xd); /* active high, level */
	/* The FADT's PM timer (X_PM_TMR_BLK), 24 bits as TMR_VAL_EXT is clear. */
	assert_int_equal(info.pm_timer_port, PM_TMR);
	assert_false(info.pm_timer_32bit);
	free(buf);
}

/*
 * Hand-decoding AML (ACPI 6.5, chapter 20): PkgLength is one byte up to
 * 63, else bits 6-7 of the lead byte count the bytes that follow, and the
 * length is the lead byte's low nibble, then 8 bits per following byte.
 */
static size_t pkg_length(const unsigned char *p, size_t *bytes)
{
	unsigned follow = p[0] >> 6;
	size_t len = follow ? p[0] & 0xf : p[0] & 0x3f;

	for (unsigned i = 0; i < follow; i++)
		len |= (size_t)p[1 + i] << (4 + 8 * i);
	*bytes = 1 + follow;
	return len;
}

static const unsigned char *aml(size_t *len)
{
	*len = table_header(layout.dsdt).length - 36;
	return at(layout.dsdt) + 36;
}

/*
 * Name (_S5, Package (4) { 5, 0, 0, 0 }):
 *   08           NameOp
 *   5F 53 35 5F  "_S5_"
 *   12           PackageOp
 *   07           PkgLength: itself, NumElements and 5 bytes of elements
 *   04           NumElements
 *   0A 05        BytePrefix 5: SLP_TYPa, written to PM1a_CNT.SLP_TYP
 *   00 00 00     ZeroOp x3: SLP_TYPb and two reserved
 */
static void test_dsdt_s5(void **state)
{
	static const unsigned char s5[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04,
					    0x0a, 0x05, 0x00, 0x00, 0x00 };
	size_t len;
	const unsigned char *a = aml(&len);

	(void)state;
	assert_true(len > sizeof(s5));
	assert_memory_equal(a, s5, sizeof(s5));
	assert_int_equal(a[9], ACPI_SLP_TYP_S5);
	/* What the PM1 handler sees for "power off". */
	uint16_t pm1_cnt = ACPI_SLP_TYP_S5 << ACPI_PM1_CNT_SLP_TYP_SHIFT | ACPI_PM1_CNT_SLP_EN;
	assert_int_equal(pm1_cnt, 0x3400);
	assert_int_equal((pm1_cnt & ACPI_PM1_CNT_SLP_TYP_MASK) >> ACPI_PM1_CNT_SLP_TYP_SHIFT, 5);
}

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16;
}

/*
 * Name (PICM, 0)
 * Method (_PIC, 1) { Store (Arg0, \PICM) }:
 *   08 "PICM" 00       NameOp, ZeroOp
 *   14 0D "_PIC" 01    MethodOp, PkgLength 13, one argument
 *   70 68 5C "PICM"    StoreOp Arg0Op \PICM
 */
static const unsigned char pic_method[] = {
	0x08, 'P', 'I', 'C', 'M', 0x00,
	0x14, 0x0d, '_', 'P', 'I', 'C', 0x01, 0x70, 0x68, 0x5c, 'P', 'I', 'C', 'M',
};

static void test_dsdt_pic_method(void **state)
{
	size_t len;
	const unsigned char *a = aml(&len);

	(void)state;
	assert_memory_equal(a + 13, pic_method, sizeof(pic_method));
}

/*
 * Walks \_SB.PCI0 down to its _CRS buffer; returns the buffer's data and
 * length, and in *after what follows the buffer.
 */
static const unsigned char *pci0_crs(size_t *crs_len, const unsigned char **after)
{
	size_t len, n;
	const unsigned char *a = aml(&len);
	const unsigned char *p = a + 13 + sizeof(pic_method); /* after _S5, PICM and _PIC */

	assert_int_equal(p[0], 0x10); /* ScopeOp */
	size_t scope = pkg_length(p + 1, &n);
	assert_int_equal(p + 1 + scope, a + len); /* the scope runs to the end of the DSDT */
	p += 1 + n;
	assert_memory_equal(p, "\\_SB_", 5);
	p += 5;

	assert_int_equal(p[0], 0x5b); /* ExtOpPrefix */
	assert_int_equal(p[1], 0x82); /* DeviceOp */
	size_t device = pkg_length(p + 2, &n);
	assert_int_equal(p + 2 + device, a + len);
	p += 2 + n;
	assert_memory_equal(p, "PCI0", 4);
	p += 4;

	static const unsigned char names[] = {
		0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03, /* EisaId ("PNP0A03") */
		0x08, '_', 'U', 'I', 'D', 0x00,
		0x08, '_', 'B', 'B', 'N', 0x00,
		0x08, '_', 'C', 'R', 'S', 0x11,
	};
	assert_memory_equal(p, names, sizeof(names));
	p += sizeof(names);

	size_t buffer = pkg_length(p, &n);
	*after = p + buffer;
	assert_int_equal(p[n], 0x0a); /* BufferSize as a ByteConst */
	*crs_len = p[n + 1];
	assert_int_equal(n + 2 + *crs_len, buffer);
	return p + n + 2;
}

static void check_word_address(const unsigned char *d, uint8_t type, uint8_t type_flags,
			       uint16_t min, uint32_t len)
{
	assert_int_equal(d[0], 0x88);
	assert_int_equal(get16(d + 1), 13);
	assert_int_equal(d[3], type);
	assert_int_equal(d[4], 0x0c); /* producer, _MIF, _MAF, positive decode */
	assert_int_equal(d[5], type_flags);
	assert_int_equal(get16(d + 6), 0);
	assert_int_equal(get16(d + 8), min);
	assert_int_equal(get16(d + 10), min + len - 1);
	assert_int_equal(get16(d + 12), 0);
	assert_int_equal(get16(d + 14), (uint16_t)len);
}

static const unsigned char config_ports[] = { 0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08 };

static void test_dsdt_pci_root_bridge(void **state)
{
	size_t len;
	const unsigned char *after;
	const unsigned char *d = pci0_crs(&len, &after);

	(void)state;
	assert_int_equal(len, 16 + 8 + 16 + 26 + 2);
	check_word_address(d, 2, 0, 0, 1); /* bus 0 */
	d += 16;
	assert_memory_equal(d, config_ports, sizeof(config_ports)); /* IO (Decode16, 0xCF8, ...) */
	d += 8;
	check_word_address(d, 1, 0x03, IO_BASE, IO_SIZE);
	d += 16;
	assert_int_equal(d[0], 0x87);
	assert_int_equal(get16(d + 1), 23);
	assert_int_equal(d[3], 0); /* memory */
	assert_int_equal(d[4], 0x0c);
	assert_int_equal(d[5], 0x01); /* read/write, non-cacheable */
	assert_int_equal(get32(d + 6), 0);
	assert_int_equal(get32(d + 10), MEM_BASE);
	assert_int_equal(get32(d + 14), MEM_BASE + MEM_SIZE - 1);
	assert_int_equal(get32(d + 18), 0);
	assert_int_equal(get32(d + 22), MEM_SIZE);
	d += 26;
	assert_int_equal(d[0], 0x79);
	assert_int_equal(d[1], 0);
}

static void test_dsdt_without_windows(void **state)
{
	struct acpi_tables_config c = config;
	const char *why;
	const unsigned char *after;
	size_t len;

	(void)state;
	c.pci_io_size = 0;
	c.pci_mem_size = 0;
	assert_int_equal(acpi_tables_build(ram + TABLES_GPA, TABLES_SIZE, TABLES_GPA, &c, &layout,
					   &why), 0);
	const unsigned char *d = pci0_crs(&len, &after);
	assert_int_equal(len, 16 + 8 + 2);
	assert_memory_equal(d + 16, config_ports, sizeof(config_ports));
	assert_int_equal(d[24], 0x79);
	check_table(layout.dsdt, "DSDT", 2, table_header(layout.dsdt).length);
}

/*
 * After _CRS, to the end of \_SB.PCI0 and of the DSDT:
 *   Name (PRTP, Package (2) {
 *       Package (4) { 0x0001FFFF, 0, 0, 10 },   12 0B 04 0C FFFF0100 00 00 0A 0A
 *       Package (4) { 0x0002FFFF, 0, 0, 11 } })
 *   Name (PRTA, ...) the same with GSIs 16 and 17
 *   Method (_PRT, 0) {                           14 17 "_PRT" 00
 *       If (\PICM) { Return (PRTA) }             A0 0B 5C "PICM" A4 "PRTA"
 *       Return (PRTP) }                          A4 "PRTP"
 */
static void test_dsdt_pci_routing(void **state)
{
	static const unsigned char expected[] = {
		0x08, 'P', 'R', 'T', 'P', 0x12, 0x1a, 0x02,
		0x12, 0x0b, 0x04, 0x0c, 0xff, 0xff, 0x01, 0x00, 0x00, 0x00, 0x0a, 10,
		0x12, 0x0b, 0x04, 0x0c, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x0a, 11,
		0x08, 'P', 'R', 'T', 'A', 0x12, 0x1a, 0x02,
		0x12, 0x0b, 0x04, 0x0c, 0xff, 0xff, 0x01, 0x00, 0x00, 0x00, 0x0a, 16,
		0x12, 0x0b, 0x04, 0x0c, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x0a, 17,
		0x14, 0x17, '_', 'P', 'R', 'T', 0x00,
		0xa0, 0x0b, 0x5c, 'P', 'I', 'C', 'M', 0xa4, 'P', 'R', 'T', 'A',
		0xa4, 'P', 'R', 'T', 'P',
	};
	size_t len, crs_len;
	const unsigned char *a = aml(&len);
	const unsigned char *after;

	(void)state;
	pci0_crs(&crs_len, &after);
	assert_int_equal(after + sizeof(expected), a + len);
	assert_memory_equal(after, expected, sizeof(expected));
}

/* Without PCI functions both tables are empty packages and _PRT stays. */
static void test_dsdt_no_pci_routes(void **state)
{
	static const unsigned char empty[] = { 0x08, 'P', 'R', 'T', 'P', 0x12, 0x02, 0x00,
					       0x08, 'P', 'R', 'T', 'A', 0x12, 0x02, 0x00,
					       0x14, 0x17, '_', 'P', 'R', 'T' };
	struct acpi_tables_config c = config;
	const unsigned char *after;
	const char *why;
	size_t len, crs_len;

	(void)state;
	c.pci_route_count = 0;
	assert_int_equal(acpi_tables_build(ram + TABLES_GPA, TABLES_SIZE, TABLES_GPA, &c, &layout,
					   &why), 0);
	const unsigned char *a = aml(&len);
	pci0_crs(&crs_len, &after);
	assert_memory_equal(after, empty, sizeof(empty));
	assert_int_equal(after + 2 * 8 + 1 + 0x17, a + len); /* two Names, then the method */
}

static void expect_error(const struct acpi_tables_config *c, uint64_t gpa, size_t size,
			 const char *message)
{
	const char *why = NULL;
	struct acpi_tables_layout l;

	assert_int_equal(acpi_tables_build(ram + TABLES_GPA, size, gpa, c, &l, &why), -1);
	assert_non_null(why);
	assert_string_equal(why, message);
}

static void test_refusals(void **state)
{
	struct acpi_tables_config c;

	(void)state;
	expect_error(&config, TABLES_GPA + 16, TABLES_SIZE, "ACPI tables must start 64-byte aligned");
	expect_error(&config, TABLES_GPA, 256, "ACPI tables do not fit in the space given");

	static const char *ports = "PM1 event, PM1 control and PM timer need non-zero ports";
	c = config;
	c.pm1a_cnt_port = 0;
	expect_error(&c, TABLES_GPA, TABLES_SIZE, ports);
	c = config;
	c.pm_tmr_port = 0xfffe;
	expect_error(&c, TABLES_GPA, TABLES_SIZE, ports);

	static const char *io = "PCI I/O window must lie within 0-0xffff, clear of 0xcf8-0xcff";
	c = config;
	c.pci_io_base = 0x0c00;
	c.pci_io_size = 0x100;
	expect_error(&c, TABLES_GPA, TABLES_SIZE, io);
	c = config;
	c.pci_io_size = IO_SIZE + 1;
	expect_error(&c, TABLES_GPA, TABLES_SIZE, io);

	static const char *route = "a PCI interrupt route needs device 1-31, ISA IRQ 3-15, GSI 16-23";
	static const struct acpi_pci_route bad[] = {
		{ 0, 10, 16 }, { 32, 10, 16 }, { 1, 2, 16 }, { 1, 16, 16 }, { 1, 10, 15 }, { 1, 10, 24 },
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = config;
		c.pci_routes = &bad[i];
		c.pci_route_count = 1;
		expect_error(&c, TABLES_GPA, TABLES_SIZE, route);
	}
	c = config;
	c.pci_route_count = ACPI_PCI_ROUTES_MAX + 1;
	expect_error(&c, TABLES_GPA, TABLES_SIZE, "at most 8 PCI interrupt routes");

	static const char *mem = "PCI memory window must lie below 4 GiB, clear of the APICs";
	c = config;
	c.pci_mem_size = MEM_SIZE + 0x1000; /* onto the I/O APIC page */
	expect_error(&c, TABLES_GPA, TABLES_SIZE, mem);
	c = config;
	c.pci_mem_base = 0xff000000;
	c.pci_mem_size = 0x01000000 + 0x1000; /* past 4 GiB */
	expect_error(&c, TABLES_GPA, TABLES_SIZE, mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rsdp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rsdp_found_by_bios_area_scan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_lengths_and_checksums, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xsdt_lists_fadt_and_madt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fadt_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_madt_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_parser_reads_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dsdt_s5, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dsdt_pic_method, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dsdt_pci_root_bridge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dsdt_pci_routing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dsdt_no_pci_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dsdt_without_windows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
