#include "vmm/nmi.h"

#include "vmm/log.h"
#include "x86/apic.h"
#include "x86/cpu.h"
#include "x86/msr.h"

/*
 * NMI status and control (port 0x61, as every PC chipset keeps it): bit 7
 * is set when SERR# (a PCI system error) raised the NMI, bit 6 when
 * IOCHK# (an I/O channel check) did. Neither: the local APIC's LINT1 or
 * an IPI (a BMC, a watchdog, another CPU).
 */
#define PORT_NMI_STATUS 0x61
#define NMI_STATUS_SERR (1U << 7)
#define NMI_STATUS_IOCHK (1U << 6)

static volatile unsigned long nmi_count;
static volatile uint8_t nmi_last_status;
static unsigned long nmi_reported;

void nmi_in_root_mode(void)
{
	nmi_last_status = inb(PORT_NMI_STATUS);
	nmi_count++;
}

void nmi_report(void)
{
	unsigned long count = nmi_count;

	if (count == nmi_reported)
		return;
	uint8_t status = nmi_last_status;
	log_warn("host NMI in root mode: %lu so far; the last one from %s", count,
		 status & NMI_STATUS_SERR    ? "a PCI system error (SERR#, port 0x61 bit 7)" :
		 status & NMI_STATUS_IOCHK ? "an I/O channel check (IOCHK#, port 0x61 bit 6)" :
					      "LINT1 or an IPI (a BMC, a watchdog, another CPU)");
	nmi_reported = count;
}

void nmi_send_self(void)
{
	uint64_t apic_base = rdmsr(MSR_IA32_APIC_BASE);

	apic_send_ipi(apic_base, apic_id(apic_base),
		      APIC_ICR_DELIVERY_NMI | APIC_ICR_LEVEL_ASSERT);
}
