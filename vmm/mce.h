/*
 * Machine checks (SDM Vol. 3B, chapter 15). A #MC is read out of the
 * banks into a record and judged: the hypervisor goes on where the error
 * was corrected or can wait (UCNA, SRAO) and the interrupted context can
 * resume (MCG_STATUS.RIPV); it clears the banks and MCIP and the
 * scheduler logs what happened. Otherwise the error is fatal: in root
 * mode the host stops with the banks printed; during a guest, a VM whose
 * RAM holds the failing address ends alone (vmm/vmx/exit.c).
 *
 * The judging is plain C over the record, tested on the host.
 */
#ifndef VMM_MCE_H
#define VMM_MCE_H

#include <stdbool.h>
#include <stdint.h>

#define MCE_BANKS_MAX 32

/* MCG_STATUS (15.3.1.2) and MCi_STATUS (15.3.2.2) bits. */
#define MCG_STATUS_RIPV (1ULL << 0)
#define MCG_STATUS_EIPV (1ULL << 1)
#define MCG_STATUS_MCIP (1ULL << 2)
#define MCI_STATUS_VAL (1ULL << 63)
#define MCI_STATUS_OVER (1ULL << 62)
#define MCI_STATUS_UC (1ULL << 61)
#define MCI_STATUS_EN (1ULL << 60)
#define MCI_STATUS_MISCV (1ULL << 59)
#define MCI_STATUS_ADDRV (1ULL << 58)
#define MCI_STATUS_PCC (1ULL << 57)
#define MCI_STATUS_S (1ULL << 56)
#define MCI_STATUS_AR (1ULL << 55)

struct mce_bank {
	uint8_t index;
	uint64_t status, addr, misc; /* addr, misc: 0 unless ADDRV, MISCV */
};

struct mce_record {
	uint64_t mcg_status;
	unsigned count;           /* banks with VAL set */
	struct mce_bank banks[MCE_BANKS_MAX];
};

enum mce_verdict {
	MCE_CONTINUE, /* corrected or deferred: clear the banks and MCIP, go on */
	MCE_FATAL,    /* the interrupted context cannot go on with this error */
};

/* The verdict on a record, and in why (if not NULL) the bank and rule that decided. */
enum mce_verdict mce_judge(const struct mce_record *r, const char **why);

/* A fatal error's address, when a bank has one (ADDRV): true with *addr. */
bool mce_failing_address(const struct mce_record *r, uint64_t *addr);

/* --- On the CPU (vmm/mce_cpu.c) -------------------------------------------- */

/* Reads every bank with an error into r (from the #MC entry or a #MC exit). */
void mce_read(struct mce_record *r);

/* Clears the banks r names and MCG_STATUS.MCIP: the error is handled. */
void mce_clear(const struct mce_record *r);

/* From the #MC entry in root mode: true when the hypervisor may go on. */
bool mce_in_root_mode(void);
/* From the panic that follows a false: the banks and the verdict's reason. */
void mce_log_fatal(void);

/* From the scheduler: logs the machine checks handled since the last report. */
void mce_report(void);

#endif
