#include "boot/quiesce.h"

#include "lib/fmt.h"
#include "x86/apic.h"
#include "x86/cpu.h"
#include "x86/ioapic.h"
#include "x86/msr.h"

/* 8259A OCW1 (the interrupt mask) of the master and the slave. */
#define PIC_MASTER_DATA 0x21
#define PIC_SLAVE_DATA 0xa1

/* How long an INIT may stay pending before the hand-over goes on without waiting. */
#define ICR_WAIT_LOOPS 1000000

/* Every redirection entry of one I/O APIC; returns how many it has. */
static unsigned mask_ioapic(uint64_t base)
{
	unsigned entries = ioapic_entries(base);

	for (unsigned i = 0; i < entries; i++) {
		unsigned reg = IOAPIC_REG_REDTBL + 2 * i;
		ioapic_write(base, reg, ioapic_read(base, reg) | IOAPIC_MASKED);
	}
	return entries;
}

/*
 * The LVTs the local APIC has: the version register's "max LVT entry"
 * counts them (SDM 10.4.8), in the order timer, thermal, performance
 * counters, LINT0, LINT1, error, CMCI; the first four the architecture
 * guarantees, thermal and CMCI only where that count reaches them.
 */
static unsigned mask_lapic(uint64_t apic_base)
{
	unsigned max_lvt = (apic_read(apic_base, APIC_REG_VERSION) >> 16) & 0xff;
	unsigned lvts[7], n = 0;

	lvts[n++] = APIC_REG_LVT_TIMER;
	lvts[n++] = APIC_REG_LVT_PERF;
	lvts[n++] = APIC_REG_LVT_LINT0;
	lvts[n++] = APIC_REG_LVT_LINT1;
	lvts[n++] = APIC_REG_LVT_ERROR;
	if (max_lvt >= 5)
		lvts[n++] = APIC_REG_LVT_THERMAL;
	if (max_lvt >= 6)
		lvts[n++] = APIC_REG_LVT_CMCI;
	for (unsigned i = 0; i < n; i++)
		apic_write(apic_base, lvts[i], apic_read(apic_base, lvts[i]) | APIC_LVT_MASKED);
	return n;
}

/*
 * The application processors: the firmware parks them in a loop of its
 * own, in boot-services memory the hypervisor takes over. INIT puts them
 * in wait-for-SIPI (SDM 8.4.1), where they execute nothing until the
 * hypervisor starts them itself (10.6.1: INIT, level assert, to all but
 * self).
 */
static void park_application_processors(uint64_t apic_base)
{
	apic_send_ipi(apic_base, 0,
		      APIC_ICR_ALL_BUT_SELF | APIC_ICR_LEVEL_ASSERT | APIC_ICR_DELIVERY_INIT);
	if (apic_x2(apic_base))
		return; /* no delivery status in x2APIC mode (10.12.9) */
	for (unsigned i = 0; i < ICR_WAIT_LOOPS; i++)
		if (!(apic_read(apic_base, APIC_REG_ICR_LOW) & APIC_ICR_PENDING))
			return;
}

void quiesce_platform(const struct acpi_info *acpi, char *report, size_t report_size)
{
	unsigned entries = 0, lvts = 0;

	/* Even where the MADT says there are none: the write then goes nowhere. */
	outb(PIC_MASTER_DATA, 0xff);
	outb(PIC_SLAVE_DATA, 0xff);
	for (unsigned i = 0; i < acpi->ioapic_count; i++)
		entries += mask_ioapic(acpi->ioapics[i].address);
	uint64_t apic_base = rdmsr(MSR_IA32_APIC_BASE);
	bool parked = false;
	if (apic_base & APIC_BASE_ENABLE) {
		lvts = mask_lapic(apic_base);
		if (acpi->cpu_count > 1) {
			park_application_processors(apic_base);
			parked = true;
		}
	}
	fmt_snprintf(report, report_size,
		     "the 8259s, %u redirection entries of %u I/O APIC(s), %u local APIC LVTs%s; "
		     "%s", entries, acpi->ioapic_count, lvts,
		     apic_x2(apic_base) ? " (x2APIC)" : "",
		     parked ? "the other CPUs sent INIT (wait-for-SIPI)" : "no other CPU");
}
