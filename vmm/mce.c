#include "vmm/mce.h"

enum mce_verdict mce_judge(const struct mce_record *r, const char **why)
{
	const char *unused;

	if (!why)
		why = &unused;
	/* No valid return address: the interrupted code cannot be resumed (15.3.1.2). */
	if (!(r->mcg_status & MCG_STATUS_RIPV)) {
		*why = "MCG_STATUS.RIPV is clear: the interrupted code cannot resume";
		return MCE_FATAL;
	}
	for (unsigned i = 0; i < r->count; i++) {
		uint64_t s = r->banks[i].status;
		if (s & MCI_STATUS_PCC) {
			*why = "processor context corrupt (PCC)";
			return MCE_FATAL;
		}
		/*
		 * Uncorrected and signaled: software-recoverable action required
		 * (SRAR, 15.6.3) means the interrupted code consumed bad data;
		 * without S (on a CPU without recovery) an enabled UC error is
		 * fatal too (15.9.3). SRAO and UCNA (S and not AR, or not EN) wait.
		 */
		if ((s & MCI_STATUS_UC) && (s & MCI_STATUS_EN) &&
		    (!(s & MCI_STATUS_S) || (s & MCI_STATUS_AR))) {
			*why = s & MCI_STATUS_S ? "uncorrected, action required (SRAR)"
						: "uncorrected, enabled, not recoverable";
			return MCE_FATAL;
		}
	}
	*why = "corrected or deferred (UCNA, SRAO)";
	return MCE_CONTINUE;
}

bool mce_failing_address(const struct mce_record *r, uint64_t *addr)
{
	for (unsigned i = 0; i < r->count; i++)
		if ((r->banks[i].status & MCI_STATUS_UC) && (r->banks[i].status & MCI_STATUS_ADDRV)) {
			*addr = r->banks[i].addr;
			return true;
		}
	return false;
}
