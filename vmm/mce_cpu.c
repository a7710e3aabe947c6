#include "vmm/mce.h"

#include "vmm/log.h"
#include "x86/cpu.h"
#include "x86/msr.h"

#define CPUID1_EDX_MCA (1U << 14)
#define MCG_CAP_COUNT 0xffULL

void mce_read(struct mce_record *r)
{
	unsigned banks = 0;

	r->count = 0;
	r->mcg_status = 0;
	if (!(cpuid(1, 0).edx & CPUID1_EDX_MCA))
		return;
	banks = (unsigned)(rdmsr(MSR_IA32_MCG_CAP) & MCG_CAP_COUNT);
	r->mcg_status = rdmsr(MSR_IA32_MCG_STATUS);
	for (unsigned i = 0; i < banks && r->count < MCE_BANKS_MAX; i++) {
		uint64_t status = rdmsr(MSR_IA32_MC0_STATUS + 4 * i);
		if (!(status & MCI_STATUS_VAL))
			continue;
		struct mce_bank *b = &r->banks[r->count++];
		*b = (struct mce_bank){ .index = (uint8_t)i, .status = status };
		if (status & MCI_STATUS_ADDRV)
			b->addr = rdmsr(MSR_IA32_MC0_ADDR + 4 * i);
		if (status & MCI_STATUS_MISCV)
			b->misc = rdmsr(MSR_IA32_MC0_MISC + 4 * i);
	}
}

void mce_clear(const struct mce_record *r)
{
	for (unsigned i = 0; i < r->count; i++)
		wrmsr(MSR_IA32_MC0_STATUS + 4 * r->banks[i].index, 0);
	/*
	 * MCIP is in the record only where mce_read found machine-check
	 * architecture; while it is set, another #MC shuts the CPU down.
	 */
	if (r->mcg_status & MCG_STATUS_MCIP)
		wrmsr(MSR_IA32_MCG_STATUS, 0);
}

/* What the #MC entry handled, for the scheduler to log outside the exception. */
static volatile unsigned long handled;
static unsigned long reported;
static struct mce_record last;

static void log_record(const struct mce_record *r, const char *verdict)
{
	log_warn("machine check (%s): MCG_STATUS 0x%llx, %u bank(s) with an error", verdict,
		 (unsigned long long)r->mcg_status, r->count);
	for (unsigned i = 0; i < r->count; i++)
		log_warn("  bank %u: status 0x%016llx addr 0x%llx misc 0x%llx", r->banks[i].index,
			 (unsigned long long)r->banks[i].status,
			 (unsigned long long)r->banks[i].addr, (unsigned long long)r->banks[i].misc);
}

bool mce_in_root_mode(void)
{
	const char *why;

	mce_read(&last);
	if (mce_judge(&last, &why) == MCE_FATAL)
		return false; /* the panic prints the banks (mce_log_fatal): no log lock here */
	mce_clear(&last);
	handled++;
	return true;
}

void mce_log_fatal(void)
{
	const char *why;

	mce_judge(&last, &why);
	log_record(&last, why);
}

void mce_report(void)
{
	unsigned long count = handled;

	if (count == reported)
		return;
	log_record(&last, "corrected or deferred, the hypervisor goes on");
	log_warn("machine checks handled in root mode: %lu so far", count);
	reported = count;
}
