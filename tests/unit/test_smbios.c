#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "boot/smbios.h"

static uint8_t table[512];
static uint32_t used;

/* A structure: header, formatted area, then its strings and the double NUL. */
static void put(uint8_t type, const uint8_t *formatted, uint8_t len, const char *strings)
{
	table[used] = type;
	table[used + 1] = len;
	table[used + 2] = (uint8_t)used;
	table[used + 3] = 0;
	memcpy(table + used + 4, formatted, len - 4u);
	used += len;
	size_t n = strings ? strlen(strings) : 0;
	memcpy(table + used, strings ? strings : "", n);
	used += (uint32_t)n;
	/* The last string's NUL and the set's: two NULs either way. */
	table[used++] = 0;
	table[used++] = 0;
}

/* A BIOS structure with a string, a system one, then what the test adds. */
static void begin(void)
{
	static const uint8_t bios[14] = { 1, 2, 0, 0 };
	memset(table, 0, sizeof(table));
	used = 0;
	put(0, bios, 18, "Vendor");
	put(1, bios, 8, NULL);
}

/* Type 38 for KCS at I/O 0xca2 (base 0xca3: bit 0 says I/O), byte spacing. */
static const uint8_t kcs_formatted[14] = { 1, 0x20, 0x20, 0xff, 0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0 };

static void test_finds_the_kcs_bmc(void **state)
{
	struct ipmi_device d;

	(void)state;
	begin();
	put(38, kcs_formatted, 18, NULL);
	put(127, kcs_formatted, 4, NULL);
	assert_true(smbios_find_ipmi(table, used, &d));
	assert_int_equal(d.type, IPMI_KCS);
	assert_true(d.io);
	assert_int_equal(d.address, 0xca2);
	assert_int_equal(d.spacing, 1);
}

/* The modifier's bit 4 is the address's bit 0; bits 7:6 the register spacing. */
static void test_modifier(void **state)
{
	uint8_t f[14];
	struct ipmi_device d;

	(void)state;
	memcpy(f, kcs_formatted, sizeof(f));
	f[12] = 0x10 | 1U << 6;
	begin();
	put(38, f, 18, NULL);
	assert_true(smbios_find_ipmi(table, used, &d));
	assert_int_equal(d.address, 0xca3);
	assert_int_equal(d.spacing, 4);
	f[12] = 3U << 6; /* reserved spacing */
	begin();
	put(38, f, 18, NULL);
	assert_false(smbios_find_ipmi(table, used, &d));
}

/* No type 38, one past the end-of-table structure, or a table cut short. */
static void test_not_found(void **state)
{
	struct ipmi_device d;

	(void)state;
	begin();
	assert_false(smbios_find_ipmi(table, used, &d));
	put(127, kcs_formatted, 4, NULL);
	put(38, kcs_formatted, 18, NULL);
	assert_false(smbios_find_ipmi(table, used, &d));
	begin();
	put(38, kcs_formatted, 18, NULL);
	assert_false(smbios_find_ipmi(table, used - 4, &d)); /* its length past the end */
	/* A structure claiming a length under its header ends the walk. */
	begin();
	table[used] = 38;
	table[used + 1] = 2;
	assert_false(smbios_find_ipmi(table, used + 18, &d));
}

/* Strings that run to the end without their double NUL: the walk stays inside. */
static void test_unterminated_strings(void **state)
{
	struct ipmi_device d;

	(void)state;
	uint8_t *t = malloc(24);
	assert_non_null(t);
	memset(t, 'A', 24);
	t[0] = 1;
	t[1] = 8;
	assert_false(smbios_find_ipmi(t, 24, &d));
	free(t);
}

static void checksum(uint8_t *p, size_t n, size_t at)
{
	uint8_t s = 0;

	p[at] = 0;
	for (size_t i = 0; i < n; i++)
		s += p[i];
	p[at] = (uint8_t)-s;
}

static void test_entry_points(void **state)
{
	uint8_t ep3[0x18] = "_SM3_", ep2[0x1f] = "_SM_";
	uint64_t addr;
	uint32_t len;
	const char *why;

	(void)state;
	ep3[6] = 0x18;
	ep3[0x0c] = 0x34;
	ep3[0x10] = 0x00;
	ep3[0x11] = 0x10;
	checksum(ep3, sizeof(ep3), 5);
	assert_true(smbios_table(ep3, &addr, &len, &why));
	assert_int_equal(addr, 0x1000);
	assert_int_equal(len, 0x34);
	ep3[0x0c] ^= 1;
	assert_false(smbios_table(ep3, &addr, &len, &why));
	assert_string_equal(why, "SMBIOS 3 entry point checksum or length wrong");

	ep2[5] = 0x1f;
	memcpy(ep2 + 0x10, "_DMI_", 5);
	ep2[0x16] = 0x80;
	ep2[0x19] = 0x20;
	checksum(ep2 + 0x10, 0x0f, 5);
	checksum(ep2, sizeof(ep2), 4);
	assert_true(smbios_table(ep2, &addr, &len, &why));
	assert_int_equal(addr, 0x2000);
	assert_int_equal(len, 0x80);
	ep2[0x16] = 0;
	checksum(ep2 + 0x10, 0x0f, 5);
	checksum(ep2, sizeof(ep2), 4);
	assert_false(smbios_table(ep2, &addr, &len, &why));
	assert_string_equal(why, "SMBIOS table address or length out of range");
	assert_false(smbios_table("RSD PTR ", &addr, &len, &why));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_finds_the_kcs_bmc),
		cmocka_unit_test(test_modifier),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_unterminated_strings),
		cmocka_unit_test(test_entry_points),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
