#include "vmm/nmi.h"

#include "vmm/log.h"
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

/* Local APIC: ID and interrupt command registers (SDM 10.6.1), by MMIO or x2APIC MSR. */
#define APIC_BASE_EXTD (1ULL << 10)
#define APIC_BASE_ADDRESS 0x000ffffffffff000ULL
#define LAPIC_ID 0x020
#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310
#define ICR_DELIVERY_NMI (4U << 8)
#define ICR_LEVEL_ASSERT (1U << 14)
#define MSR_X2APIC_ID (MSR_IA32_X2APIC_FIRST + (LAPIC_ID >> 4))
#define MSR_X2APIC_ICR (MSR_IA32_X2APIC_FIRST + (LAPIC_ICR_LOW >> 4))

void nmi_send_self(void)
{
	uint64_t base = rdmsr(MSR_IA32_APIC_BASE);

	if (base & APIC_BASE_EXTD) {
		uint64_t id = rdmsr(MSR_X2APIC_ID);
		wrmsr(MSR_X2APIC_ICR, id << 32 | ICR_DELIVERY_NMI | ICR_LEVEL_ASSERT);
		return;
	}
	volatile uint32_t *apic = (volatile uint32_t *)(uintptr_t)(base & APIC_BASE_ADDRESS);
	uint32_t id = apic[LAPIC_ID / 4] >> 24;
	apic[LAPIC_ICR_HIGH / 4] = id << 24;
	apic[LAPIC_ICR_LOW / 4] = ICR_DELIVERY_NMI | ICR_LEVEL_ASSERT;
}
