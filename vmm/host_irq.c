#include "vmm/host_irq.h"

#include "vmm/clock.h"
#include "vmm/log.h"
#include "vmm/uart16550.h"
#include "x86/apic.h"
#include "x86/cpu.h"
#include "x86/ioapic.h"
#include "x86/msr.h"

#define CPUID_01_ECX_TSC_DEADLINE (1U << 24)
/* MADT interrupt source override flags (ACPI 5.2.12.5): polarity 1:0, trigger mode 3:2. */
#define MPS_POLARITY_MASK 3U
#define MPS_POLARITY_LOW 3U
#define MPS_TRIGGER_MASK (3U << 2)
#define MPS_TRIGGER_LEVEL (3U << 2)
#define ISA_BUS 0
#define XAPIC_MAX_ID 0xff

static struct {
	uint64_t apic_base;
	bool timer; /* the TSC-deadline timer raises HOST_VECTOR_TIMER */
	bool uart;  /* the console's received bytes raise HOST_VECTOR_UART */
	struct host_idle_stats stats;
} host;

/* The ISA IRQ of the PC's serial ports: COM1/COM3 4, COM2/COM4 3. */
static unsigned isa_irq_of(uint16_t port)
{
	return port == 0x2f8 || port == 0x2e8 ? 3 : 4;
}

/*
 * Points the I/O APIC pin of ISA IRQ irq at vector on this CPU, edge and
 * active high as ISA is unless the MADT overrides it. *gsi_out: where.
 */
static bool route_isa_irq(const struct acpi_info *acpi, unsigned irq, uint8_t vector,
			  uint32_t *gsi_out)
{
	uint32_t gsi = irq, low = vector;
	uint32_t destination = apic_id(host.apic_base);

	/* Physical destination mode names 8-bit APIC IDs (82093AA 3.2.4). */
	if (destination > XAPIC_MAX_ID)
		return false;
	for (unsigned i = 0; i < acpi->override_count; i++) {
		const struct acpi_override *o = &acpi->overrides[i];
		if (o->bus != ISA_BUS || o->source_irq != irq)
			continue;
		gsi = o->gsi;
		if ((o->flags & MPS_POLARITY_MASK) == MPS_POLARITY_LOW)
			low |= IOAPIC_ACTIVE_LOW;
		if ((o->flags & MPS_TRIGGER_MASK) == MPS_TRIGGER_LEVEL)
			low |= IOAPIC_LEVEL;
	}
	for (unsigned i = 0; i < acpi->ioapic_count; i++) {
		const struct acpi_ioapic *io = &acpi->ioapics[i];
		if (gsi < io->gsi_base || gsi - io->gsi_base >= ioapic_entries(io->address))
			continue;
		unsigned reg = IOAPIC_REG_REDTBL + 2 * (gsi - io->gsi_base);
		ioapic_write(io->address, reg + 1, destination << IOAPIC_DEST_SHIFT);
		ioapic_write(io->address, reg, low);
		*gsi_out = gsi;
		return true;
	}
	return false;
}

void host_irq_init(const struct acpi_info *acpi)
{
	struct uart *line = log_uart();
	uint32_t gsi = 0;

	host.apic_base = rdmsr(MSR_IA32_APIC_BASE);
	if (!(host.apic_base & APIC_BASE_ENABLE)) {
		log_warn("host: the local APIC is disabled; the CPU polls when idle");
		return;
	}
	apic_write(host.apic_base, APIC_REG_SVR, APIC_SVR_ENABLE | HOST_VECTOR_SPURIOUS);
	if (cpuid(1, 0).ecx & CPUID_01_ECX_TSC_DEADLINE) {
		apic_write(host.apic_base, APIC_REG_LVT_TIMER,
			   HOST_VECTOR_TIMER | APIC_LVT_TSC_DEADLINE);
		/* The mode change must be seen before the first deadline is written (SDM 10.5.4.1). */
		__asm__ volatile("mfence" : : : "memory");
		wrmsr(MSR_IA32_TSC_DEADLINE, 0);
		host.timer = true;
	}
	if (line->present && route_isa_irq(acpi, isa_irq_of(line->port), HOST_VECTOR_UART, &gsi)) {
		uart_set_interrupts(line, false);
		host.uart = true;
	}
	if (!host.timer)
		log_warn("host: no TSC-deadline timer; the CPU polls when idle");
	else if (!host.uart)
		log_warn("host: the console UART cannot interrupt; the CPU polls while the line "
			 "is served");
	else
		log_info("host: the CPU halts when idle, woken by its TSC-deadline timer and the "
			 "console's receive interrupt (GSI %u)", gsi);
}

bool host_irq_taken(unsigned vector)
{
	if (vector == HOST_VECTOR_SPURIOUS)
		return true;
	if (vector == HOST_VECTOR_TIMER)
		host.stats.timer_wakeups++;
	else if (vector == HOST_VECTOR_UART)
		host.stats.uart_wakeups++;
	apic_write(host.apic_base, APIC_REG_EOI, 0);
	return vector == HOST_VECTOR_TIMER || vector == HOST_VECTOR_UART;
}

bool host_idle(uint64_t wake_tsc, bool line_wakes, bool tx_pending)
{
	struct uart *line = log_uart();

	if (!host.timer || ((line_wakes || tx_pending) && !host.uart) || uart_rx_ready(line))
		return false;
	uint64_t now = rdtsc(), latest = now + clock_tsc_hz() / 1000 * HOST_IDLE_MAX_MS;
	if (!wake_tsc || wake_tsc > latest)
		wake_tsc = latest;
	if (wake_tsc <= now)
		return true;
	wrmsr(MSR_IA32_TSC_DEADLINE, wake_tsc);
	/* Room in the transmitter wakes too while output waits: the log goes on. */
	if (tx_pending)
		uart_set_interrupts(line, true);
	/*
	 * STI's shadow covers the HLT: an interrupt that became pending
	 * since the caller looked (a byte, a deadline already past) wakes
	 * the HLT instead of being taken before it (SDM 6.8.3).
	 */
	__asm__ volatile("sti; hlt; cli" : : : "memory");
	wrmsr(MSR_IA32_TSC_DEADLINE, 0);
	if (tx_pending)
		uart_set_interrupts(line, false);
	host.stats.halts++;
	host.stats.halted_tsc += rdtsc() - now;
	return true;
}

void host_idle_stats(struct host_idle_stats *out)
{
	*out = host.stats;
}
