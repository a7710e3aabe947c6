/*
 * The machine-check verdict (vmm/mce.c), from SDM Vol. 3B chapter 15:
 * corrected and deferred errors (UCNA, SRAO) let the interrupted context
 * go on, a corrupt context (PCC), an action-required error (SRAR), an
 * enabled uncorrected error on a CPU without recovery, or no valid return
 * address (RIPV clear) do not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/mce.h"

#define VAL MCI_STATUS_VAL
#define UC MCI_STATUS_UC
#define EN MCI_STATUS_EN
#define S MCI_STATUS_S
#define AR MCI_STATUS_AR
#define PCC MCI_STATUS_PCC
#define ADDRV MCI_STATUS_ADDRV

static struct mce_record one_bank(uint64_t mcg_status, uint64_t status)
{
	return (struct mce_record){ .mcg_status = mcg_status, .count = 1,
				    .banks = { { .index = 3, .status = status,
						 .addr = 0x12345000 } } };
}

static void test_verdicts(void **state)
{
	static const struct {
		uint64_t mcg_status, status;
		enum mce_verdict want;
		const char *what;
	} cases[] = {
		{ MCG_STATUS_RIPV | MCG_STATUS_MCIP, VAL | EN, MCE_CONTINUE, "corrected" },
		{ MCG_STATUS_RIPV, VAL | UC | EN | S, MCE_CONTINUE, "SRAO" },
		{ MCG_STATUS_RIPV, VAL | UC, MCE_CONTINUE, "UCNA (not enabled to signal)" },
		{ MCG_STATUS_RIPV, VAL | UC | EN | S | AR, MCE_FATAL, "SRAR" },
		{ MCG_STATUS_RIPV, VAL | UC | EN, MCE_FATAL, "UC without recovery" },
		{ MCG_STATUS_RIPV, VAL | EN | PCC, MCE_FATAL, "context corrupt" },
		{ MCG_STATUS_EIPV, VAL | EN, MCE_FATAL, "no valid return address" },
	};

	(void)state;
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mce_record r = one_bank(cases[i].mcg_status, cases[i].status);
		const char *why = NULL;
		if (mce_judge(&r, &why) != cases[i].want)
			fail_msg("%s: wrong verdict (%s)", cases[i].what, why);
		assert_non_null(why);
	}
	/* A record with no bank but a valid return address goes on; NULL why is allowed. */
	struct mce_record none = { .mcg_status = MCG_STATUS_RIPV };
	assert_int_equal(mce_judge(&none, NULL), MCE_CONTINUE);
}

static void test_one_fatal_bank_decides(void **state)
{
	struct mce_record r = one_bank(MCG_STATUS_RIPV, VAL | EN);

	(void)state;
	r.banks[r.count++] = (struct mce_bank){ .index = 7, .status = VAL | UC | EN | S | AR };
	assert_int_equal(mce_judge(&r, NULL), MCE_FATAL);
}

static void test_failing_address(void **state)
{
	uint64_t addr = 0;
	struct mce_record r = one_bank(MCG_STATUS_RIPV, VAL | UC | EN | S | AR | ADDRV);

	(void)state;
	assert_true(mce_failing_address(&r, &addr));
	assert_int_equal(addr, 0x12345000);
	/* A corrected error's address is no failing one; without ADDRV there is none. */
	r = one_bank(MCG_STATUS_RIPV, VAL | EN | ADDRV);
	assert_false(mce_failing_address(&r, &addr));
	r = one_bank(MCG_STATUS_RIPV, VAL | UC | EN);
	assert_false(mce_failing_address(&r, &addr));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_one_fatal_bank_decides),
		cmocka_unit_test(test_failing_address),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
