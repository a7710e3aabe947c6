/* MAP_32BIT, for RSDT tests that need tables below 4 GiB. */
#define _GNU_SOURCE

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "boot/acpi.h"

/*
 * Tables are built in scratch buffers, then placed in heap blocks of their
 * exact declared size, so that AddressSanitizer catches any read past a
 * table. The RSDT holds 32-bit addresses, so its tables go into a low
 * mapping instead (without that check).
 */
#define MAX_PLACED 16
#define LOW_ARENA_SIZE 0x10000

static void *placed[MAX_PLACED];
static unsigned nplaced;
static unsigned char *low_arena;
static size_t low_used;

static struct acpi_info info;
static const char *why;

static int teardown(void **state)
{
	(void)state;
	while (nplaced)
		free(placed[--nplaced]);
	low_used = 0;
	return 0;
}

static uint64_t place(const void *data, size_t len)
{
	void *p = malloc(len);

	assert_non_null(p);
	assert_true(nplaced < MAX_PLACED);
	memcpy(p, data, len);
	placed[nplaced++] = p;
	return (uintptr_t)p;
}

static uint32_t place_low(const void *data, size_t len)
{
	assert_true(low_used + len <= LOW_ARENA_SIZE);
	unsigned char *p = low_arena + low_used;

	memcpy(p, data, len);
	low_used += (len + 15) & ~(size_t)15;
	assert_true((uintptr_t)p < (1ULL << 32));
	return (uint32_t)(uintptr_t)p;
}

static uint8_t sum(const void *p, size_t len)
{
	uint8_t s = 0;

	for (size_t i = 0; i < len; i++)
		s += ((const unsigned char *)p)[i];
	return s;
}

/* Up to 4 KiB of table, enough for 500 local APIC entries. */
struct table {
	union {
		struct acpi_sdt_header header;
		struct acpi_madt madt;
		unsigned char bytes[4096];
	};
	size_t len;
};

static void table_begin(struct table *t, const char signature[4], size_t fixed_len)
{
	memset(t, 0, sizeof(*t));
	memcpy(t->header.signature, signature, 4);
	t->header.revision = 1;
	memcpy(t->header.oem_id, "TESTOE", 6);
	memcpy(t->header.oem_table_id, "UNITTEST", 8);
	t->len = fixed_len;
}

static void table_put(struct table *t, const void *data, size_t len)
{
	assert_true(t->len + len <= sizeof(t->bytes));
	memcpy(t->bytes + t->len, data, len);
	t->len += len;
}

/* Sets the length to what was built and makes the checksum right. */
static void table_finish(struct table *t)
{
	t->header.length = (uint32_t)t->len;
	t->header.checksum = 0;
	t->header.checksum = (uint8_t)-sum(t->bytes, t->len);
}

static void madt_begin(struct table *t, uint32_t lapic_address, uint32_t flags)
{
	table_begin(t, "APIC", sizeof(struct acpi_madt));
	t->madt.lapic_address = lapic_address;
	t->madt.flags = flags;
}

static void put_lapic(struct table *t, uint8_t uid, uint8_t apic_id, uint32_t flags)
{
	struct acpi_madt_lapic e = {
		.header = { ACPI_MADT_LAPIC, sizeof(e) },
		.acpi_uid = uid,
		.apic_id = apic_id,
		.flags = flags,
	};

	table_put(t, &e, sizeof(e));
}

static void put_x2apic(struct table *t, uint32_t uid, uint32_t apic_id, uint32_t flags)
{
	struct acpi_madt_x2apic e = {
		.header = { ACPI_MADT_X2APIC, sizeof(e) },
		.x2apic_id = apic_id,
		.flags = flags,
		.acpi_uid = uid,
	};

	table_put(t, &e, sizeof(e));
}

static void put_ioapic(struct table *t, uint8_t id, uint32_t address, uint32_t gsi_base)
{
	struct acpi_madt_ioapic e = {
		.header = { ACPI_MADT_IOAPIC, sizeof(e) },
		.id = id,
		.address = address,
		.gsi_base = gsi_base,
	};

	table_put(t, &e, sizeof(e));
}

static void put_override(struct table *t, uint8_t irq, uint32_t gsi, uint16_t flags)
{
	struct acpi_madt_override e = {
		.header = { ACPI_MADT_OVERRIDE, sizeof(e) },
		.bus = 0,
		.source_irq = irq,
		.gsi = gsi,
		.flags = flags,
	};

	table_put(t, &e, sizeof(e));
}

static void put_lapic_address(struct table *t, uint64_t address)
{
	struct acpi_madt_lapic_address e = {
		.header = { ACPI_MADT_LAPIC_ADDRESS, sizeof(e) },
		.address = address,
	};

	table_put(t, &e, sizeof(e));
}

static void put_bytes(struct table *t, const unsigned char *bytes, size_t len)
{
	table_put(t, bytes, len);
}

/* An XSDT (8-byte entries) or RSDT (4-byte entries) listing addrs. */
static void root_build(struct table *t, bool xsdt, const uint64_t *addrs, unsigned n)
{
	table_begin(t, xsdt ? "XSDT" : "RSDT", sizeof(struct acpi_sdt_header));
	for (unsigned i = 0; i < n; i++) {
		uint32_t a32 = (uint32_t)addrs[i];

		if (xsdt)
			table_put(t, &addrs[i], sizeof(addrs[i]));
		else
			table_put(t, &a32, sizeof(a32));
	}
	table_finish(t);
}

static struct acpi_rsdp rsdp_build(uint8_t revision, uint32_t rsdt, uint64_t xsdt)
{
	struct acpi_rsdp r = {
		.signature = "RSD PTR ",
		.oem_id = "TESTOE",
		.revision = revision,
		.rsdt_address = rsdt,
		.length = sizeof(r),
		.xsdt_address = xsdt,
	};

	r.checksum = (uint8_t)-sum(&r, offsetof(struct acpi_rsdp, length));
	r.extended_checksum = (uint8_t)-sum(&r, sizeof(r));
	return r;
}

/* A revision 2 RSDP, in a block of its declared length. */
static const void *rsdp_v2(uint64_t xsdt)
{
	struct acpi_rsdp r = rsdp_build(2, 0, xsdt);

	return (const void *)(uintptr_t)place(&r, sizeof(r));
}

/* A table that is not the MADT, with a checksum nobody should check. */
static void build_facp(struct table *t)
{
	table_begin(t, "FACP", 244);
	table_finish(t);
	t->header.checksum ^= 0x55;
}

static uint64_t place_facp(void)
{
	struct table t;

	build_facp(&t);
	return place(t.bytes, t.len);
}

static const void *xsdt_with(const struct table *madt)
{
	uint64_t addrs[] = { place_facp(), 0, place(madt->bytes, madt->len) };
	struct table root;

	root_build(&root, true, addrs, 3);
	return rsdp_v2(place(root.bytes, root.len));
}

/* A FADT of length len with PM_TMR_BLK, its flags and (len >= 220) X_PM_TMR_BLK. */
static uint64_t place_fadt(uint32_t len, uint32_t pm_tmr_blk, uint32_t flags, uint8_t x_space,
			   uint64_t x_address)
{
	struct table t;

	table_begin(&t, "FACP", len);
	memcpy(t.bytes + 76, &pm_tmr_blk, 4);
	memcpy(t.bytes + 112, &flags, 4);
	if (len >= 220) {
		t.bytes[208] = x_space;
		t.bytes[209] = 32;
		memcpy(t.bytes + 212, &x_address, 8);
	}
	table_finish(&t);
	return place(t.bytes, t.len);
}

static void expect_ok(const void *rsdp)
{
	why = NULL;
	assert_int_equal(acpi_parse(rsdp, &info, &why), 0);
	assert_null(why);
}

static void expect_error(const void *rsdp, const char *message)
{
	static const struct acpi_info zero;

	memset(&info, 0x5a, sizeof(info));
	why = NULL;
	assert_int_equal(acpi_parse(rsdp, &info, &why), -1);
	assert_non_null(why);
	assert_string_equal(why, message);
	assert_memory_equal(&info, &zero, sizeof(info));
}

static void expect_madt_error(const struct table *madt, const char *message)
{
	expect_error(xsdt_with(madt), message);
}

static void build_full_madt(struct table *t)
{
	static const unsigned char nmi[] = { 4, 6, 0xff, 0x05, 0x00, 0x01 };

	madt_begin(t, 0xfee00000, ACPI_MADT_PCAT_COMPAT);
	put_lapic(t, 0, 0, ACPI_LAPIC_ENABLED);
	put_lapic(t, 1, 2, ACPI_LAPIC_ONLINE_CAPABLE);
	put_lapic(t, 2, 4, 0); /* not present: not counted */
	put_ioapic(t, 8, 0xfec00000, 0);
	put_override(t, 0, 2, 0);
	put_override(t, 9, 9, 0xd);
	put_bytes(t, nmi, sizeof(nmi)); /* local APIC NMI: skipped */
	put_lapic_address(t, 0xfee00000ULL | (1ULL << 36));
	table_finish(t);
}

/*
 * The PM timer from the FADT: PM_TMR_BLK in ACPI 1.0's layout, X_PM_TMR_BLK
 * over it where set, none where it is not in I/O space, and the 32-bit
 * counter from TMR_VAL_EXT.
 */
static void test_fadt_pm_timer(void **state)
{
	static const struct {
		uint32_t len, pm_tmr_blk, flags;
		uint8_t x_space;
		uint64_t x_address;
		uint16_t port;
		bool wide;
	} cases[] = {
		{ 116, 0x608, 1U << 8, 0, 0, 0x608, true },
		{ 276, 0x608, 0, 1, 0xb008, 0xb008, false },
		{ 276, 0x608, 0, 1, 0, 0x608, false },
		{ 276, 0x608, 0, 0, 0xfed00000, 0, false },
		{ 276, 0x10000, 0, 0, 0, 0, false },
	};
	struct table madt;

	(void)state;
	build_full_madt(&madt);
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t addrs[] = { place_fadt(cases[i].len, cases[i].pm_tmr_blk, cases[i].flags,
						cases[i].x_space, cases[i].x_address),
				     place(madt.bytes, madt.len) };
		struct table root;
		root_build(&root, true, addrs, 2);
		expect_ok(rsdp_v2(place(root.bytes, root.len)));
		assert_int_equal(info.pm_timer_port, cases[i].port);
		assert_int_equal(info.pm_timer_32bit, cases[i].port && cases[i].wide);
		teardown(NULL);
	}
}

static void test_xsdt_full(void **state)
{
	struct table madt;

	(void)state;
	build_full_madt(&madt);
	expect_ok(xsdt_with(&madt));
	/* Its FADT fails its checksum: no PM timer, the MADT still read. */
	assert_int_equal(info.pm_timer_port, 0);

	assert_int_equal(info.revision, 2);
	assert_string_equal(info.oem_id, "TESTOE");
	assert_int_equal(info.lapic_address, 0xfee00000ULL | (1ULL << 36));
	assert_true(info.pcat_compat);

	assert_int_equal(info.cpu_count, 2);
	assert_int_equal(info.cpus_ignored, 0);
	assert_int_equal(info.cpus[0].apic_id, 0);
	assert_int_equal(info.cpus[0].acpi_uid, 0);
	assert_true(info.cpus[0].enabled);
	assert_false(info.cpus[0].x2apic);
	assert_int_equal(info.cpus[1].apic_id, 2);
	assert_int_equal(info.cpus[1].acpi_uid, 1);
	assert_false(info.cpus[1].enabled);

	assert_int_equal(info.ioapic_count, 1);
	assert_int_equal(info.ioapics[0].id, 8);
	assert_int_equal(info.ioapics[0].address, 0xfec00000);
	assert_int_equal(info.ioapics[0].gsi_base, 0);
	assert_int_equal(info.ioapics_ignored, 0);

	assert_int_equal(info.override_count, 2);
	assert_int_equal(info.overrides[0].bus, 0);
	assert_int_equal(info.overrides[0].source_irq, 0);
	assert_int_equal(info.overrides[0].gsi, 2);
	assert_int_equal(info.overrides[0].flags, 0);
	assert_int_equal(info.overrides[1].source_irq, 9);
	assert_int_equal(info.overrides[1].gsi, 9);
	assert_int_equal(info.overrides[1].flags, 0xd);
}

static void test_no_lapic_override(void **state)
{
	struct table madt;

	(void)state;
	madt_begin(&madt, 0xfee00000, 0);
	put_x2apic(&madt, 7, 0x1234, ACPI_LAPIC_ENABLED);
	table_finish(&madt);
	expect_ok(xsdt_with(&madt));
	assert_int_equal(info.lapic_address, 0xfee00000);
	assert_false(info.pcat_compat);
	assert_int_equal(info.cpu_count, 1);
	assert_int_equal(info.cpus[0].apic_id, 0x1234);
	assert_int_equal(info.cpus[0].acpi_uid, 7);
	assert_true(info.cpus[0].enabled);
	assert_true(info.cpus[0].x2apic);
	assert_int_equal(info.ioapic_count, 0);
	assert_int_equal(info.override_count, 0);
}

/* Entries longer than this code knows are read up to what it knows. */
static void test_longer_entries(void **state)
{
	struct table madt;
	unsigned char lapic[12] = { ACPI_MADT_LAPIC, 12, 3, 5, ACPI_LAPIC_ENABLED, 0, 0, 0,
				    0xff, 0xff, 0xff, 0xff };
	unsigned char x2apic[20] = { ACPI_MADT_X2APIC, 20, 0, 0, 0x00, 0x01, 0, 0,
				     ACPI_LAPIC_ENABLED, 0, 0, 0, 9, 0, 0, 0,
				     0xff, 0xff, 0xff, 0xff };
	unsigned char unknown[] = { 0x7f, 2 };

	(void)state;
	madt_begin(&madt, 0xfee00000, 0);
	put_bytes(&madt, lapic, sizeof(lapic));
	put_bytes(&madt, unknown, sizeof(unknown));
	put_bytes(&madt, x2apic, sizeof(x2apic));
	table_finish(&madt);
	expect_ok(xsdt_with(&madt));
	assert_int_equal(info.cpu_count, 2);
	assert_int_equal(info.cpus[0].apic_id, 5);
	assert_int_equal(info.cpus[0].acpi_uid, 3);
	assert_int_equal(info.cpus[1].apic_id, 0x100);
	assert_int_equal(info.cpus[1].acpi_uid, 9);
}

static void test_rsdt_revision_0(void **state)
{
	struct table facp, madt, root;
	uint64_t addrs[2];

	(void)state;
	build_facp(&facp);
	build_full_madt(&madt);
	addrs[0] = place_low(facp.bytes, facp.len);
	addrs[1] = place_low(madt.bytes, madt.len);
	root_build(&root, false, addrs, 2);

	/* An ACPI 1.0 RSDP is 20 bytes; nothing past them may be read. */
	struct acpi_rsdp r = rsdp_build(0, place_low(root.bytes, root.len), 0);
	const void *rsdp = (const void *)(uintptr_t)place(&r, offsetof(struct acpi_rsdp, length));

	expect_ok(rsdp);
	assert_int_equal(info.revision, 0);
	assert_int_equal(info.cpu_count, 2);
	assert_int_equal(info.ioapic_count, 1);
	assert_int_equal(info.override_count, 2);
}

static void test_xsdt_preferred_over_rsdt(void **state)
{
	struct table rsdt_madt, xsdt_madt, rsdt, xsdt;
	uint64_t addr;

	(void)state;
	madt_begin(&rsdt_madt, 0xfee00000, 0);
	put_lapic(&rsdt_madt, 0, 1, ACPI_LAPIC_ENABLED);
	table_finish(&rsdt_madt);
	addr = place_low(rsdt_madt.bytes, rsdt_madt.len);
	root_build(&rsdt, false, &addr, 1);
	uint32_t rsdt_address = place_low(rsdt.bytes, rsdt.len);

	madt_begin(&xsdt_madt, 0xfee00000, 0);
	put_lapic(&xsdt_madt, 0, 2, ACPI_LAPIC_ENABLED);
	table_finish(&xsdt_madt);
	addr = place(xsdt_madt.bytes, xsdt_madt.len);
	root_build(&xsdt, true, &addr, 1);
	uint64_t xsdt_address = place(xsdt.bytes, xsdt.len);

	struct acpi_rsdp both = rsdp_build(2, rsdt_address, xsdt_address);

	expect_ok(&both);
	assert_int_equal(info.cpus[0].apic_id, 2);

	/* Revision 2 without an XSDT falls back to the RSDT. */
	struct acpi_rsdp no_xsdt = rsdp_build(2, rsdt_address, 0);

	expect_ok(&no_xsdt);
	assert_int_equal(info.cpus[0].apic_id, 1);

	/* Revision 0 never looks at XsdtAddress. */
	struct acpi_rsdp v1 = rsdp_build(0, rsdt_address, xsdt_address);

	expect_ok(&v1);
	assert_int_equal(info.cpus[0].apic_id, 1);
}

static void test_rsdp_errors(void **state)
{
	struct table madt;
	struct acpi_rsdp r;

	(void)state;
	build_full_madt(&madt);
	const struct acpi_rsdp *good = xsdt_with(&madt);

	r = *good;
	r.checksum++;
	expect_error(&r, "RSDP checksum mismatch");

	/* A revision 0 RSDP is judged by its first checksum alone. */
	r = rsdp_build(0, 0, 0);
	r.checksum++;
	expect_error(&r, "RSDP checksum mismatch");

	/* The extended checksum covers the XSDT address the first one does not. */
	r = *good;
	r.xsdt_address ^= 0x1000;
	expect_error(&r, "RSDP extended checksum mismatch");

	r = *good;
	r.signature[0] = 'X';
	r.checksum -= 'X' - 'R';
	r.extended_checksum -= 'X' - 'R';
	expect_error(&r, "RSDP signature mismatch");

	r = rsdp_build(2, 0, good->xsdt_address);
	r.length = sizeof(r) - 1;
	r.extended_checksum = 0;
	r.extended_checksum = (uint8_t)-sum(&r, sizeof(r));
	expect_error(&r, "RSDP length out of range");
	r.length = ACPI_MAX_TABLE_LENGTH + 1;
	r.extended_checksum = 0;
	r.extended_checksum = (uint8_t)-sum(&r, sizeof(r));
	expect_error(&r, "RSDP length out of range");
	r.length = UINT32_MAX;
	r.extended_checksum = 0;
	r.extended_checksum = (uint8_t)-sum(&r, sizeof(r));
	expect_error(&r, "RSDP length out of range");

	r = rsdp_build(0, 0, 0);
	expect_error(&r, "no RSDT or XSDT");
	r = rsdp_build(2, 0, 0);
	expect_error(&r, "no RSDT or XSDT");
}

static void test_root_errors(void **state)
{
	struct table madt, root;
	uint64_t addr;

	(void)state;
	build_full_madt(&madt);
	addr = place(madt.bytes, madt.len);

	root_build(&root, true, &addr, 1);
	memcpy(root.header.signature, "RSDT", 4);
	table_finish(&root);
	expect_error(rsdp_v2(place(root.bytes, root.len)), "XSDT signature mismatch");

	root_build(&root, true, &addr, 1);
	root.header.checksum++;
	expect_error(rsdp_v2(place(root.bytes, root.len)), "XSDT checksum mismatch");

	/* Lengths are checked before a byte past the header is summed. */
	root_build(&root, true, &addr, 1);
	root.header.length = sizeof(struct acpi_sdt_header) - 1;
	expect_error(rsdp_v2(place(root.bytes, root.len)), "XSDT length out of range");
	root.header.length = UINT32_MAX;
	expect_error(rsdp_v2(place(root.bytes, root.len)), "XSDT length out of range");

	uint32_t low_addr = place_low(madt.bytes, madt.len);

	root_build(&root, false, (uint64_t[]){ low_addr }, 1);
	root.header.checksum ^= 1;
	struct acpi_rsdp r = rsdp_build(0, place_low(root.bytes, root.len), 0);

	expect_error(&r, "RSDT checksum mismatch");
}

static void test_no_madt(void **state)
{
	struct table root;
	uint64_t addrs[] = { place_facp(), 0 };

	(void)state;
	root_build(&root, true, addrs, 2);
	expect_error(rsdp_v2(place(root.bytes, root.len)), "no MADT");

	root_build(&root, true, NULL, 0);
	expect_error(rsdp_v2(place(root.bytes, root.len)), "no MADT");

	/* Half an entry at the end cannot hold the MADT's address. */
	struct table madt;

	build_full_madt(&madt);
	uint64_t madt_addr = place(madt.bytes, madt.len);

	root_build(&root, true, addrs, 1);
	table_put(&root, &madt_addr, 4);
	table_finish(&root);
	expect_error(rsdp_v2(place(root.bytes, root.len)), "no MADT");
}

static void test_madt_bad_checksum(void **state)
{
	struct table madt;

	(void)state;
	build_full_madt(&madt);
	madt.header.checksum += 1;
	expect_madt_error(&madt, "MADT checksum mismatch");
}

static void test_madt_bad_length(void **state)
{
	struct table madt;

	(void)state;
	/* Shorter than the MADT's fixed fields, though a whole header. */
	madt_begin(&madt, 0xfee00000, 0);
	table_finish(&madt);
	madt.len = madt.header.length = sizeof(struct acpi_madt) - 4;
	madt.header.checksum = 0;
	madt.header.checksum = (uint8_t)-sum(madt.bytes, madt.len);
	expect_madt_error(&madt, "MADT length out of range");

	/* Lengths far beyond the table: rejected before any is summed. */
	build_full_madt(&madt);
	madt.header.length = ACPI_MAX_TABLE_LENGTH + 1;
	expect_madt_error(&madt, "MADT length out of range");
	madt.header.length = UINT32_MAX;
	expect_madt_error(&madt, "MADT length out of range");
}

static void test_madt_empty(void **state)
{
	struct table madt;

	(void)state;
	madt_begin(&madt, 0xfee00000, 0);
	table_finish(&madt);
	expect_ok(xsdt_with(&madt));
	assert_int_equal(info.cpu_count, 0);
}

static void test_madt_bad_entries(void **state)
{
	static const struct {
		unsigned char bytes[8];
		size_t len;
		const char *why;
	} cases[] = {
		{ { ACPI_MADT_LAPIC, 0 }, 2, "MADT entry length too small" },
		{ { 0x7f, 1 }, 2, "MADT entry length too small" },
		{ { ACPI_MADT_LAPIC, 8, 0, 0 }, 4, "MADT entry overruns table" },
		{ { 0x7f, 3 }, 2, "MADT entry overruns table" },
		{ { ACPI_MADT_LAPIC }, 1, "MADT entry overruns table" },
		{ { ACPI_MADT_LAPIC, 6, 0, 0, 1, 0 }, 6, "MADT entry shorter than its type" },
		{ { ACPI_MADT_IOAPIC, 8 }, 8, "MADT entry shorter than its type" },
		{ { ACPI_MADT_OVERRIDE, 8 }, 8, "MADT entry shorter than its type" },
		{ { ACPI_MADT_LAPIC_ADDRESS, 8 }, 8, "MADT entry shorter than its type" },
		{ { ACPI_MADT_X2APIC, 8 }, 8, "MADT entry shorter than its type" },
	};
	struct table madt;

	(void)state;
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		madt_begin(&madt, 0xfee00000, 0);
		put_lapic(&madt, 0, 0, ACPI_LAPIC_ENABLED);
		put_bytes(&madt, cases[i].bytes, cases[i].len);
		table_finish(&madt);
		expect_madt_error(&madt, cases[i].why);
		teardown(NULL);
	}
}

static void test_too_many_cpus(void **state)
{
	struct table madt;

	(void)state;
	madt_begin(&madt, 0xfee00000, 0);
	for (unsigned i = 0; i < ACPI_MAX_CPUS + 6; i++)
		put_x2apic(&madt, i, 0x100 + i, ACPI_LAPIC_ENABLED);
	put_x2apic(&madt, 999, 0x1000, 0); /* not present: not ignored either */
	table_finish(&madt);
	expect_ok(xsdt_with(&madt));
	assert_int_equal(info.cpu_count, ACPI_MAX_CPUS);
	assert_int_equal(info.cpus_ignored, 6);
	assert_int_equal(info.cpus[ACPI_MAX_CPUS - 1].apic_id, 0x100 + ACPI_MAX_CPUS - 1);
}

static void test_duplicate_apic_id(void **state)
{
	struct table madt;

	(void)state;
	madt_begin(&madt, 0xfee00000, 0);
	put_lapic(&madt, 0, 0, ACPI_LAPIC_ENABLED);
	put_lapic(&madt, 1, 1, ACPI_LAPIC_ENABLED);
	put_x2apic(&madt, 1, 1, ACPI_LAPIC_ENABLED);
	table_finish(&madt);
	expect_ok(xsdt_with(&madt));
	assert_int_equal(info.cpu_count, 2);
	assert_false(info.cpus[1].x2apic);
}

static void test_too_many_ioapics(void **state)
{
	struct table madt;

	(void)state;
	madt_begin(&madt, 0xfee00000, 0);
	for (unsigned i = 0; i < ACPI_MAX_IOAPICS + 2; i++)
		put_ioapic(&madt, (uint8_t)i, 0xfec00000 + i * 0x1000, i * 24);
	table_finish(&madt);
	expect_ok(xsdt_with(&madt));
	assert_int_equal(info.ioapic_count, ACPI_MAX_IOAPICS);
	assert_int_equal(info.ioapics_ignored, 2);
	assert_int_equal(info.ioapics[ACPI_MAX_IOAPICS - 1].gsi_base,
			 (ACPI_MAX_IOAPICS - 1) * 24);
}

static void test_too_many_overrides(void **state)
{
	struct table madt;

	(void)state;
	madt_begin(&madt, 0xfee00000, 0);
	for (unsigned i = 0; i < ACPI_MAX_OVERRIDES; i++)
		put_override(&madt, (uint8_t)i, i, 0);
	table_finish(&madt);
	expect_ok(xsdt_with(&madt));
	assert_int_equal(info.override_count, ACPI_MAX_OVERRIDES);

	teardown(NULL);
	put_override(&madt, 0, 2, 0);
	table_finish(&madt);
	expect_madt_error(&madt, "too many interrupt source overrides");
}

static int setup_group(void **state)
{
	(void)state;
	low_arena = mmap(NULL, LOW_ARENA_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	return low_arena == MAP_FAILED ? -1 : 0;
}

static int teardown_group(void **state)
{
	(void)state;
	return munmap(low_arena, LOW_ARENA_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_xsdt_full, teardown),
		cmocka_unit_test_teardown(test_fadt_pm_timer, teardown),
		cmocka_unit_test_teardown(test_no_lapic_override, teardown),
		cmocka_unit_test_teardown(test_longer_entries, teardown),
		cmocka_unit_test_teardown(test_rsdt_revision_0, teardown),
		cmocka_unit_test_teardown(test_xsdt_preferred_over_rsdt, teardown),
		cmocka_unit_test_teardown(test_rsdp_errors, teardown),
		cmocka_unit_test_teardown(test_root_errors, teardown),
		cmocka_unit_test_teardown(test_no_madt, teardown),
		cmocka_unit_test_teardown(test_madt_bad_checksum, teardown),
		cmocka_unit_test_teardown(test_madt_bad_length, teardown),
		cmocka_unit_test_teardown(test_madt_empty, teardown),
		cmocka_unit_test_teardown(test_madt_bad_entries, teardown),
		cmocka_unit_test_teardown(test_too_many_cpus, teardown),
		cmocka_unit_test_teardown(test_duplicate_apic_id, teardown),
		cmocka_unit_test_teardown(test_too_many_ioapics, teardown),
		cmocka_unit_test_teardown(test_too_many_overrides, teardown),
	};

	return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
