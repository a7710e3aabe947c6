/*
 * UEFI entry point: everything that needs the firmware happens here, in
 * an order that finds every problem before the machine is taken over:
 * VT-x present, configuration valid, ACPI tables readable, every VM's
 * files loaded and memory reserved. Only then ExitBootServices and the
 * hand-over to the hypervisor's own environment.
 */
#include "boot/acpi.h"
#include "boot/ipmi.h"
#include "boot/ipmi_kcs.h"
#include "boot/smbios.h"
#include "boot/tco.h"
#include "boot/tsc.h"
#include "boot/config.h"
#include "boot/efi.h"
#include "boot/handover.h"
#include "boot/memmap.h"
#include "boot/store_locate.h"
#include "boot/vm_loader.h"
#include "lib/calendar.h"
#include "lib/fmt.h"
#include "vmm/log.h"
#include "vmm/page_alloc.h"
#include "vmm/panic.h"
#include "vmm/virt.h"
#include "x86/cpu.h"
#include "x86/msr.h"
#include "x86/pci.h"

#include <string.h>

#define CONFIG_NAME "vmm.conf"
#define COM1_PORT 0x3f8
#define DEFAULT_BAUD 115200
#define MIB (1024ULL * 1024)
/* ExitBootServices fails while the map key is stale; a few retries suffice. */
#define EXIT_BOOT_SERVICES_TRIES 8

EFI_SYSTEM_TABLE *efi_st;
EFI_BOOT_SERVICES *efi_bs;

extern char ImageBase[];
extern char _image_end[];

static struct config config;
static struct boot_info boot;

static uint64_t calibrate_tsc(void)
{
	/* 20 ms of the firmware's Stall() is ample for a 0.1 % log clock. */
	uint64_t t0 = rdtsc();
	efi_bs->Stall(20000);
	return (rdtsc() - t0) * 50;
}

/* A free-running counter the TSC is timed against, counting up modulo mask + 1. */
struct reference_counter {
	uint32_t (*read)(uint16_t port);
	uint16_t port;
	uint32_t mask;
	uint32_t hz;
	const char *name;
};

static uint32_t pm_timer_count(uint16_t port)
{
	return inl(port);
}

/*
 * PIT channel 2 (8254 data sheet): mode 2 with count 0 (65536) runs
 * through every 16-bit value, one per tick, counting down; gated by port
 * 61H bit 0, the speaker (bit 1) off. Latching freezes the count for two
 * reads, low byte first. Negated, it counts up.
 */
#define PIT_CHANNEL2 0x42
#define PIT_COMMAND 0x43
#define PIT_CH2_MODE2_LOHI 0xb4
#define PIT_CH2_LATCH 0x80
#define PORT_B 0x61
#define PORT_B_GATE2 0x01
#define PORT_B_SPEAKER 0x02

static uint32_t pit_count(uint16_t port)
{
	outb(PIT_COMMAND, PIT_CH2_LATCH);
	uint32_t low = inb(port);
	uint32_t count = low | (uint32_t)inb(port) << 8;
	return (0x10000 - count) & 0xffff;
}

static void pit_start_channel2(void)
{
	outb(PORT_B, (inb(PORT_B) & ~PORT_B_SPEAKER) | PORT_B_GATE2);
	outb(PIT_COMMAND, PIT_CH2_MODE2_LOHI);
	outb(PIT_CHANNEL2, 0);
	outb(PIT_CHANNEL2, 0);
}

/*
 * Counts TSC ticks over TSC_COUNT_WINDOW_MS of the counter, from one of
 * its edges to another, with interrupts held off (TPL_HIGH_LEVEL) so that
 * no handler widens the gap between two reads. false if it does not tick
 * on within twice the window by the coarse clock (absent, or a port that
 * reads one value), or if one gap between reads, the edge-finding ones
 * included, was a quarter of the counter's period or more (an SMI, say):
 * the count may then have lost a wrap.
 */
static bool time_tsc(const struct reference_counter *c, uint64_t coarse_hz, struct tsc_rate *out)
{
	const uint64_t target = (uint64_t)c->hz * TSC_COUNT_WINDOW_MS / 1000;
	const uint64_t give_up = coarse_hz / 1000 * TSC_COUNT_WINDOW_MS * 2;
	const uint64_t gap_limit = ((uint64_t)c->mask + 1) / 4 * (coarse_hz / c->hz);
	EFI_TPL tpl = efi_bs->RaiseTPL(TPL_HIGH_LEVEL);
	uint64_t longest_gap = 0, ticks = 0;
	bool counting = false;

	uint32_t last = c->read(c->port) & c->mask, now;
	uint64_t start = rdtsc(), prev = start, edge = start;
	for (;;) {
		now = c->read(c->port) & c->mask;
		uint64_t at = rdtsc();
		if (at - prev > longest_gap)
			longest_gap = at - prev;
		prev = at;
		if (!counting) {
			/* Counting starts at the first edge seen. */
			counting = now != last;
			edge = at;
		} else {
			ticks += (now - last) & c->mask;
		}
		last = now;
		if (ticks >= target || at - start >= give_up + (counting ? give_up : 0))
			break;
	}
	efi_bs->RestoreTPL(tpl);
	if (ticks < target || longest_gap >= gap_limit)
		return false;
	*out = tsc_rate_from_counter(prev - edge, ticks, c->hz, longest_gap, c->name);
	return true;
}

/*
 * The TSC's rate for the hypervisor's clock and the guests' leaf 15H: what
 * the CPU states, else counted against the PM timer, else the PIT, else
 * the coarse Stall() one.
 */
static void measure_tsc(void)
{
	struct tsc_rate rate = { boot.tsc_hz, TSC_STALL_ERROR_PPM, "the firmware's Stall()" };
	uint32_t max_leaf = cpuid(0, 0).eax;
	struct cpuid_regs leaf = max_leaf >= 0x15 ? cpuid(0x15, 0) : (struct cpuid_regs){ 0 };
	const struct reference_counter pm_timer = {
		pm_timer_count, boot.acpi.pm_timer_port,
		boot.acpi.pm_timer_32bit ? 0xffffffffU : 0xffffffU, ACPI_PM_TIMER_FREQUENCY,
		"the ACPI PM timer"
	};
	const struct reference_counter pit = { pit_count, PIT_CHANNEL2, 0xffff, PIT_FREQUENCY,
					       "the PIT" };

	if (!tsc_rate_from_cpuid(max_leaf, leaf.eax, leaf.ebx, leaf.ecx, &rate) &&
	    !(pm_timer.port && time_tsc(&pm_timer, boot.tsc_hz, &rate))) {
		pit_start_channel2();
		time_tsc(&pit, boot.tsc_hz, &rate);
	}
	boot.tsc_hz = rate.hz;
	log_set_clock(boot.tsc_hz);
	if (rate.error_ppm)
		log_info("clock: TSC at %llu Hz by %s, within %u ppm", (unsigned long long)rate.hz,
			 rate.source, rate.error_ppm);
	else
		log_info("clock: TSC at %llu Hz, as %s states", (unsigned long long)rate.hz,
			 rate.source);
}

/*
 * The firmware's time of day as UTC seconds. UEFI spec 8.3, GetTime():
 * Localtime = UTC - TimeZone (minutes), so UTC = Localtime + TimeZone;
 * TimeZone 2047 means unspecified.
 */
static void read_wallclock(void)
{
	EFI_TIME tm;

	if (efi_st->RuntimeServices->GetTime(&tm, NULL) != EFI_SUCCESS || tm.Year < 1970 ||
	    tm.Month < 1 || tm.Month > 12 || tm.Day < 1 || tm.Day > 31) {
		log_warn("clock: the firmware has no valid time of day; guests start at 1970");
		return;
	}
	struct calendar_time t = { .year = tm.Year, .month = tm.Month, .day = tm.Day,
				   .hour = tm.Hour, .minute = tm.Minute, .second = tm.Second };
	int64_t utc = (int64_t)calendar_to_epoch(&t);
	if (tm.TimeZone != EFI_UNSPECIFIED_TIMEZONE)
		utc += (int64_t)tm.TimeZone * 60;
	boot.wallclock_s = (uint64_t)utc;
	boot.wallclock_tsc = rdtsc();
	log_info("clock: %04u-%02u-%02u %02u:%02u:%02u %s from the firmware", tm.Year, tm.Month,
		 tm.Day, tm.Hour, tm.Minute, tm.Second,
		 tm.TimeZone == EFI_UNSPECIFIED_TIMEZONE ? "(local time, taken as UTC)" : "UTC");
}

static void log_firmware(void)
{
	char vendor[64];
	unsigned n = 0;

	for (const CHAR16 *s = efi_st->FirmwareVendor; s && *s && n < sizeof(vendor) - 1; s++)
		vendor[n++] = *s < 0x80 ? (char)*s : '?';
	vendor[n] = '\0';
	log_info("vmm %s (%s) starting: UEFI %u.%u firmware from %s, rev 0x%x", VMM_VERSION,
		 VMM_GIT_REV, efi_st->Hdr.Revision >> 16, efi_st->Hdr.Revision & 0xffff, vendor,
		 efi_st->FirmwareRevision);
}

/*
 * The configuration is vmm.conf next to the application (so an ESP can hold
 * several systems), else \vmm.conf at the root of the boot volume.
 */
static int load_config(EFI_HANDLE image, EFI_FILE_HANDLE root)
{
	char dir[CFG_PATH_MAX], paths[2][CFG_PATH_MAX + sizeof(CONFIG_NAME)];
	unsigned candidates = 0;
	struct boot_file file;
	struct cfg_diag diag;
	EFI_STATUS st = EFI_NOT_FOUND;
	const char *path = NULL;

	if (efi_app_directory(image, dir, sizeof(dir)) == 0 && dir[0])
		fmt_snprintf(paths[candidates++], sizeof(paths[0]), "%s\\%s", dir, CONFIG_NAME);
	fmt_snprintf(paths[candidates++], sizeof(paths[0]), "\\%s", CONFIG_NAME);
	for (unsigned i = 0; i < candidates && st == EFI_NOT_FOUND; i++) {
		path = paths[i];
		st = efi_read_file(root, path, CFG_TEXT_MAX, &file);
	}
	if (st == EFI_NOT_FOUND) {
		log_err("config: no %s on the boot volume (looked for %s%s%s; see README.md, "
			"'Configuration')", CONFIG_NAME, paths[0], candidates > 1 ? " and " : "",
			candidates > 1 ? paths[1] : "");
		return -1;
	}
	if (st == EFI_BAD_BUFFER_SIZE) {
		log_err("config %s: larger than %u bytes", path, CFG_TEXT_MAX);
		return -1;
	}
	if (st != EFI_SUCCESS) {
		log_err("config %s: cannot read it: %s", path, efi_status_name(st));
		return -1;
	}
	int rc = config_parse((const char *)(uintptr_t)file.base, file.size, &config, &diag);
	efi_free_file(&file);
	if (rc) {
		if (diag.line)
			log_err("config %s line %u: %s", path, diag.line, diag.message);
		else
			log_err("config %s: %s", path, diag.message);
		return -1;
	}
	log_info("config %s: %u VM(s), %u network(s)", path, config.vm_count,
		 config.network_count);
	return 0;
}

#define APIC_BASE_ADDR_MASK 0x000ffffffffff000ULL
/* The I/O APIC's address on PC-AT compatibles, and its indirect registers
 * (82093AA data sheet, 3.0 "Register Description"). */
#define IOAPIC_DEFAULT_BASE 0xfec00000U
#define IOAPIC_REGSEL 0x00
#define IOAPIC_WINDOW 0x10
#define IOAPIC_REG_ID 0x00
#define IOAPIC_REG_VERSION 0x01

static uint32_t ioapic_read(uint32_t base, uint32_t reg)
{
	volatile uint32_t *mmio = (volatile uint32_t *)(uintptr_t)base;

	mmio[IOAPIC_REGSEL / 4] = reg;
	return mmio[IOAPIC_WINDOW / 4];
}

/*
 * Firmware without ACPI (OVMF in Bochs, which lacks QEMU's fw_cfg) still
 * leaves the boot CPU and the standard interrupt controllers in place:
 * describe what can be read from the hardware itself, one CPU.
 */
static void describe_without_acpi(struct acpi_info *a)
{
	*a = (struct acpi_info){ 0 };
	a->cpus[0] = (struct acpi_cpu){ .apic_id = cpuid(1, 0).ebx >> 24, .enabled = true };
	a->cpu_count = 1;
	a->lapic_address = rdmsr(MSR_IA32_APIC_BASE) & APIC_BASE_ADDR_MASK;
	/* An absent device reads as all ones. */
	if (ioapic_read(IOAPIC_DEFAULT_BASE, IOAPIC_REG_VERSION) != 0xffffffffU) {
		a->ioapics[0] = (struct acpi_ioapic){
			.id = (uint8_t)((ioapic_read(IOAPIC_DEFAULT_BASE, IOAPIC_REG_ID) >> 24) & 0xf),
			.address = IOAPIC_DEFAULT_BASE,
		};
		a->ioapic_count = 1;
	}
}

/* A UEFI configuration table: the newer kind where the firmware has both, else the older. */
static const void *firmware_table(EFI_GUID newer, EFI_GUID older)
{
	const void *found = NULL;

	for (UINTN i = 0; i < efi_st->NumberOfTableEntries; i++) {
		EFI_CONFIGURATION_TABLE *t = &efi_st->ConfigurationTable[i];
		if (!memcmp(&t->VendorGuid, &newer, sizeof(EFI_GUID)))
			return t->VendorTable;
		if (!found && !memcmp(&t->VendorGuid, &older, sizeof(EFI_GUID)))
			found = t->VendorTable;
	}
	return found;
}

static int read_acpi(void)
{
	/* The ACPI 2.0+ RSDP has the XSDT, with 64-bit pointers. */
	const void *rsdp = firmware_table((EFI_GUID)ACPI_20_TABLE_GUID, (EFI_GUID)ACPI_TABLE_GUID);
	const char *why;

	if (!rsdp) {
		log_warn("acpi: the firmware publishes no ACPI tables; describing this CPU alone "
			 "from CPUID, IA32_APIC_BASE and the PC-AT I/O APIC address");
		describe_without_acpi(&boot.acpi);
	} else if (acpi_parse(rsdp, &boot.acpi, &why)) {
		log_err("acpi: %s", why);
		return -1;
	}
	const struct acpi_info *a = &boot.acpi;
	log_info("acpi: %s rev %u: %u CPU(s)%s, local APIC at 0x%llx, %u I/O APIC(s), "
		 "%u interrupt override(s)%s",
		 rsdp ? a->oem_id : "(no tables)", a->revision, a->cpu_count,
		 a->cpus_ignored ? " (more ignored)" : "", (unsigned long long)a->lapic_address,
		 a->ioapic_count, a->override_count, a->pcat_compat ? ", dual 8259" : "");
	for (unsigned i = 0; i < a->ioapic_count; i++)
		log_info("acpi: I/O APIC id %u at 0x%x, GSI base %u", a->ioapics[i].id,
			 a->ioapics[i].address, a->ioapics[i].gsi_base);
	return 0;
}

/*
 * A BMC watchdog the firmware armed ("OS watchdog" in the setup) resets
 * the server minutes after boot unless the OS services it; the
 * hypervisor has no such agent, so it stops the timer and says so. The
 * BMC is the one SMBIOS describes (type 38), over KCS in I/O space.
 */
#define BMC_TIMEOUT_MS 100

static void stop_bmc_watchdog(void)
{
	const void *entry = firmware_table((EFI_GUID)SMBIOS3_TABLE_GUID, (EFI_GUID)SMBIOS_TABLE_GUID);
	uint64_t table;
	uint32_t length;
	struct ipmi_device bmc;
	const char *why;

	if (!entry || !smbios_table(entry, &table, &length, &why) ||
	    !smbios_find_ipmi((const uint8_t *)(uintptr_t)table, length, &bmc)) {
		log_info("ipmi: no BMC described (SMBIOS type 38): no watchdog to stop");
		return;
	}
	if (bmc.type != IPMI_KCS || !bmc.io || bmc.address > 0xffff - 16 ||
	    !ipmi_kcs_present((uint16_t)bmc.address, bmc.spacing)) {
		log_warn("ipmi: BMC (interface type %u at 0x%llx) not reachable by KCS in I/O "
			 "space: its watchdog, if armed, is left running",
			 bmc.type, (unsigned long long)bmc.address);
		return;
	}
	uint16_t base = (uint16_t)bmc.address;
	uint64_t timeout = boot.tsc_hz / 1000 * BMC_TIMEOUT_MS;
	uint8_t request[IPMI_MESSAGE_MAX], response[IPMI_MESSAGE_MAX];
	size_t got;
	struct ipmi_watchdog w;
	size_t n = ipmi_request(IPMI_NETFN_APP, IPMI_CMD_GET_WATCHDOG, NULL, 0, request);
	why = ipmi_kcs_transfer(base, bmc.spacing, timeout, request, n, response,
				sizeof(response), &got);
	if (why || !ipmi_parse_watchdog(response, got, &w, &why)) {
		log_warn("ipmi: BMC at KCS 0x%x: %s; its watchdog, if armed, is left running",
			 base, why);
		return;
	}
	if (!(w.use & IPMI_WATCHDOG_RUNNING)) {
		log_info("ipmi: BMC at KCS 0x%x: watchdog not running", base);
		return;
	}
	n = ipmi_stop_watchdog_request(&w, request);
	why = ipmi_kcs_transfer(base, bmc.spacing, timeout, request, n, response,
				sizeof(response), &got);
	if (why || !ipmi_response_ok(response, got, IPMI_CMD_SET_WATCHDOG)) {
		log_warn("ipmi: BMC at KCS 0x%x: watchdog running (%u.%u s left, then %s) and NOT "
			 "stopped: %s", base, w.present_ds / 10, w.present_ds % 10,
			 ipmi_watchdog_action(&w), why ? why : "the BMC refused Set Watchdog Timer");
		return;
	}
	log_info("ipmi: BMC at KCS 0x%x: watchdog was running (%u.%u s left, then %s): stopped",
		 base, w.present_ds / 10, w.present_ds % 10, ipmi_watchdog_action(&w));
}

/* The chipset's own registers, on bus 0. */
static uint32_t pci0_read(unsigned dev, unsigned fn, unsigned reg)
{
	return pci_read32((struct pci_address){ 0, (uint8_t)dev, (uint8_t)fn }, reg);
}

/*
 * The chipset's TCO watchdog, which firmware may leave running: halted
 * (TCO1_CNT.TCO_TMR_HLT), as the hypervisor has nothing to reload it.
 */
static void halt_tco_watchdog(void)
{
	const struct tco_pci pci = {
		.lpc_id = pci0_read(31, 0, 0), .lpc_class = pci0_read(31, 0, 8),
		.lpc_acpi_base = pci0_read(31, 0, TCO_LPC_ACPI_BASE),
		.lpc_acpi_ctl = pci0_read(31, 0, TCO_LPC_ACPI_CTL),
		.smbus_id = pci0_read(31, 4, 0), .smbus_class = pci0_read(31, 4, 8),
		.smbus_tco_base = pci0_read(31, 4, TCO_SMBUS_BASE),
		.smbus_tco_ctl = pci0_read(31, 4, TCO_SMBUS_CTL),
	};
	uint16_t base = tco_base(&pci);

	if (!base) {
		log_info("tco: no Intel TCO watchdog enabled on this chipset");
		return;
	}
	uint16_t cnt = inw(base + TCO1_CNT);
	unsigned timeout_ds = (inw(base + TCO_TMR) & 0x3ff) * TCO_TICK_DS;
	if (cnt & TCO1_CNT_TMR_HLT) {
		log_info("tco: TCO watchdog at 0x%x already halted", base);
		return;
	}
	outw(base + TCO1_CNT, cnt | TCO1_CNT_TMR_HLT);
	if (inw(base + TCO1_CNT) & TCO1_CNT_TMR_HLT)
		log_info("tco: TCO watchdog at 0x%x was running (a %u.%u-s timeout): halted", base,
			 timeout_ds / 10, timeout_ds % 10);
	else
		log_warn("tco: TCO watchdog at 0x%x is running (a %u.%u-s timeout) and would not "
			 "halt: the server may reset", base, timeout_ds / 10, timeout_ds % 10);
}

static int reserve_heap(void)
{
	EFI_PHYSICAL_ADDRESS base = 0;
	uint64_t pages = config.hv.heap_bytes / PAGE_SIZE;

	if (efi_bs->AllocatePages(AllocateAnyPages, EfiLoaderData, pages, &base) != EFI_SUCCESS) {
		log_err("memory: cannot reserve the hypervisor heap (%llu MiB)",
			(unsigned long long)(config.hv.heap_bytes / MIB));
		return -1;
	}
	boot.heap_base = base;
	boot.heap_bytes = pages * PAGE_SIZE;
	return 0;
}

/*
 * Room for the host memory map, sized from the firmware's (a server's map
 * has thousands of descriptors), taken while allocation is still possible:
 * after ExitBootServices a map that did not fit could only panic.
 */
static int reserve_memmap(void)
{
	struct efi_raw_map m = { 0 };
	void *room = NULL;

	if (efi_get_memory_map(&m) != EFI_SUCCESS) {
		log_err("memory: GetMemoryMap failed");
		return -1;
	}
	unsigned capacity = memmap_ranges_for(m.size, m.desc_size);
	efi_bs->FreePool(m.buf);
	if (efi_bs->AllocatePool(EfiLoaderData, capacity * sizeof(struct mem_range), &room) !=
	    EFI_SUCCESS) {
		log_err("memory: no room for a memory map of %u ranges", capacity);
		return -1;
	}
	boot.memmap = (struct mem_map){ .ranges = room, .capacity = capacity };
	return 0;
}

/*
 * UEFI spec 7.4, ExitBootServices(): a stale map key fails with
 * EFI_INVALID_PARAMETER; after that first call only the memory allocation
 * services may be used, so the loop neither logs to the firmware console
 * nor calls anything but GetMemoryMap.
 */
static EFI_STATUS exit_boot_services(EFI_HANDLE image, struct efi_raw_map *map)
{
	EFI_STATUS st = EFI_ABORTED;

	efi_console_detach_log();
	for (unsigned i = 1; i <= EXIT_BOOT_SERVICES_TRIES; i++) {
		st = efi_get_memory_map(map);
		if (st != EFI_SUCCESS)
			return st;
		boot.exit_attempts = i;
		st = efi_bs->ExitBootServices(image, map->key);
		if (st != EFI_INVALID_PARAMETER)
			return st;
	}
	return st;
}

static EFI_STATUS give_up(EFI_STATUS st, const char *what)
{
	log_err("%s; returning to the firmware", what);
	efi_console_detach_log();
	return st;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
	EFI_FILE_HANDLE root;
	char why[256];

	efi_st = st;
	efi_bs = st->BootServices;
	/* The firmware's watchdog resets the machine 5 minutes into a boot
	 * application unless it is disarmed (UEFI spec 7.5). */
	efi_bs->SetWatchdogTimer(0, 0, 0, NULL);
	log_init_serial(COM1_PORT, DEFAULT_BAUD);
	efi_console_attach_log();
	boot.tsc_hz = calibrate_tsc();
	log_set_clock(boot.tsc_hz);
	log_firmware();
	read_wallclock();
	boot.image_base = (uint64_t)(uintptr_t)ImageBase;
	boot.image_end = (uint64_t)(uintptr_t)_image_end;

	/* Described first, so that even a refusal below says what the machine is. */
	if (read_acpi())
		return give_up(EFI_LOAD_ERROR, "cannot describe this machine's CPUs");
	measure_tsc();
	stop_bmc_watchdog();
	halt_tco_watchdog();
	/*
	 * The hand-over loads 4-level page tables (boot/handover.c). With
	 * 5-level paging on, CR4.LA57 cannot change while long mode is active
	 * (SDM 4.1.1: MOV to CR4 with LA57 changed is #GP), and a 4-level CR3
	 * would be read as a PML5: refuse before anything is taken over.
	 */
	if (read_cr4() & CR4_LA57) {
		log_err("the firmware runs with 5-level paging (CR4.LA57); this hypervisor uses "
			"4-level page tables: turn 5-level paging off in the firmware setup");
		return give_up(EFI_UNSUPPORTED, "the hypervisor cannot run on this machine");
	}
	bool virt = !virt_probe(why, sizeof(why));
	if (virt)
		/* kHz, as guests are told in CPUID leaf 15H and Linux reports it. */
		log_info("cpu: VT-x with EPT and unrestricted guest present; TSC at "
			 "%llu.%03llu MHz", (unsigned long long)(boot.tsc_hz / 1000000),
			 (unsigned long long)(boot.tsc_hz / 1000 % 1000));
	else
		log_err("%s", why);

	if (efi_open_boot_volume(image, &root) != EFI_SUCCESS)
		return give_up(EFI_LOAD_ERROR, "cannot open the boot volume");
	if (load_config(image, root))
		return give_up(EFI_LOAD_ERROR, "configuration error");
	log_set_level(config.hv.log_level);
	if (config.hv.serial_port != COM1_PORT || config.hv.baud != DEFAULT_BAUD) {
		log_info("console: moving to serial port 0x%x at %u baud", config.hv.serial_port,
			 config.hv.baud);
		log_init_serial(config.hv.serial_port, config.hv.baud);
	}
	boot.config = &config;
	if (!virt) {
		if (!cfg_selftest_of_store(config.hv.selftest))
			return give_up(EFI_UNSUPPORTED, "the hypervisor cannot run on this machine");
		log_warn("selftest = store: taking over this machine for the store's self-test "
			 "alone; no VM runs without VT-x");
		boot.store_test_only = true;
	}

	unsigned problems = boot.store_test_only ? 0
						 : vm_loader_load_all(root, &config, boot.vms);
	if (problems) {
		log_err("%u problem(s) with the configured VMs; nothing was started", problems);
		return give_up(EFI_LOAD_ERROR, "configuration error");
	}
	if (config.hv.additions[0]) {
		EFI_STATUS st = efi_read_file(root, config.hv.additions, BOOT_ADDITIONS_MAX,
					      &boot.additions);
		if (st != EFI_SUCCESS || !boot.additions.size || boot.additions.size % 512) {
			log_err("additions '%s': %s", config.hv.additions,
				st != EFI_SUCCESS ? efi_status_name(st)
						  : "not a disk image (a whole number of 512-byte sectors)");
			return give_up(EFI_LOAD_ERROR, "configuration error");
		}
		log_info("additions '%s': %llu KiB, inserted into a VM by InstallAdditions",
			 config.hv.additions, (unsigned long long)(boot.additions.size / 1024));
	}
	if (config.hv.store[0])
		store_locate(image, config.hv.store, &boot.store);
	if (reserve_heap() || reserve_memmap())
		return give_up(EFI_OUT_OF_RESOURCES, "not enough memory");

	log_info("taking over the machine: exiting boot services");
	struct efi_raw_map map = { 0 };
	EFI_STATUS exit = exit_boot_services(image, &map);
	if (exit != EFI_SUCCESS)
		panic("ExitBootServices failed: %s (after %u attempt(s))",
		      efi_status_name(exit), boot.exit_attempts);

	const char *bad_map;
	if (memmap_from_uefi(map.buf, map.size, map.desc_size, &boot.memmap, &bad_map))
		panic("unusable UEFI memory map: %s", bad_map);
	log_info("boot services exited (%u attempt(s)); memory map: %u ranges (room for %u), "
		 "%llu MiB usable, top of RAM 0x%llx",
		 boot.exit_attempts, boot.memmap.count, boot.memmap.capacity,
		 (unsigned long long)(memmap_total_pages(&boot.memmap, MEM_USABLE) * PAGE_SIZE / MIB),
		 (unsigned long long)memmap_top_address(&boot.memmap));
	handover(&boot);
}
