#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "boot/tco.h"

#define ABSENT 0xffffffffU

/* QEMU's q35: ICH9 LPC (8086:2918) with ACPI at 0x600, so TCO at 0x660; its SMBus has no TCO. */
static void test_ich9_lpc(void **state)
{
	struct tco_pci p = {
		.lpc_id = 0x29188086, .lpc_class = 0x06010002, .lpc_acpi_base = 0x601,
		.lpc_acpi_ctl = 0x80, .smbus_id = 0x29308086, .smbus_class = 0x0c050002,
		.smbus_tco_base = 0, .smbus_tco_ctl = 0,
	};

	(void)state;
	assert_int_equal(tco_base(&p), 0x660);
	p.lpc_acpi_ctl = 0; /* ACPI I/O not enabled: nothing there */
	assert_int_equal(tco_base(&p), 0);
}

/* A 100-series PCH and later: TCOBASE in the SMBus controller, the LPC's 40H not the ACPI base. */
static void test_pch_smbus(void **state)
{
	struct tco_pci p = {
		.lpc_id = 0xa1488086, .lpc_class = 0x06010000, .lpc_acpi_base = 0x12345678,
		.lpc_acpi_ctl = 0, .smbus_id = 0xa1a38086, .smbus_class = 0x0c050000,
		.smbus_tco_base = 0x401, .smbus_tco_ctl = 0x100,
	};

	(void)state;
	assert_int_equal(tco_base(&p), 0x400);
	p.smbus_tco_ctl = 0;
	assert_int_equal(tco_base(&p), 0);
}

/* Not Intel, or nothing at 00:1f: never a guess. */
static void test_other_chipsets(void **state)
{
	const struct tco_pci none = { ABSENT, ABSENT, ABSENT, ABSENT,
				      ABSENT, ABSENT, ABSENT, ABSENT };
	const struct tco_pci amd = {
		.lpc_id = 0x790e1022, .lpc_class = 0x06010051, .lpc_acpi_base = 0x801,
		.lpc_acpi_ctl = 0x80, .smbus_id = 0x790b1022, .smbus_class = 0x0c050061,
		.smbus_tco_base = 0x401, .smbus_tco_ctl = 0x100,
	};

	(void)state;
	assert_int_equal(tco_base(&none), 0);
	assert_int_equal(tco_base(&amd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ich9_lpc),
		cmocka_unit_test(test_pch_smbus),
		cmocka_unit_test(test_other_chipsets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
