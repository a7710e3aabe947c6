/*
 * The hypervisor proper, entered on its own stack once the firmware is gone.
 */
#include "boot/handover.h"
#include "boot/quiesce.h"
#include "vmm/clock.h"
#include "vmm/control.h"
#include "vmm/mgmt.h"
#include "vmm/host_irq.h"
#include "vmm/log.h"
#include "vmm/page_alloc.h"
#include "vmm/panic.h"
#include "vmm/nmi.h"
#include "vmm/percpu.h"
#include "vmm/sched.h"
#include "vmm/speculation.h"
#include "vmm/storage/store_host.h"
#include "vmm/virt.h"
#include "vmm/vm.h"
#include "x86/cpu.h"

#define MIB (1024ULL * 1024)
/*
 * Low memory stays untouched: application-processor start-up code needs a
 * page below 1 MiB, and firmware tables often live there.
 */
#define LOW_MEMORY_END MIB

static void adopt_free_memory(struct boot_info *bi)
{
	for (unsigned i = 0; i < bi->memmap.count; i++) {
		const struct mem_range *r = &bi->memmap.ranges[i];
		uint64_t base = r->base, end = r->base + r->pages * PAGE_SIZE;

		if (r->kind != MEM_USABLE || end <= LOW_MEMORY_END)
			continue;
		if (base < LOW_MEMORY_END)
			base = LOW_MEMORY_END;
		/*
		 * Memory beyond the identity map would be unreachable; the map
		 * covers all RAM, so this only guards against a future change.
		 */
		if (end > bi->identity_map_top)
			end = bi->identity_map_top;
		if (base < end && page_alloc_add(bi->host_pages, base, (end - base) / PAGE_SIZE))
			log_warn("memory: could not adopt 0x%llx-0x%llx (allocator full)",
				 (unsigned long long)base, (unsigned long long)end);
	}
}

static void report_memory(const struct boot_info *bi)
{
	uint64_t guest = 0;

	for (unsigned i = 0; i < bi->config->vm_count; i++)
		guest += bi->vms[i].ram_bytes;
	log_info("memory: %llu MiB free for the hypervisor and new VMs, %llu MiB reserved "
		 "for %u configured VM(s), %llu MiB firmware runtime/ACPI, image %llu KiB",
		 (unsigned long long)(bi->host_pages->free_pages * PAGE_SIZE / MIB),
		 (unsigned long long)(guest / MIB), bi->config->vm_count,
		 (unsigned long long)((memmap_total_pages(&bi->memmap, MEM_RUNTIME) +
				       memmap_total_pages(&bi->memmap, MEM_ACPI_RECLAIM) +
				       memmap_total_pages(&bi->memmap, MEM_ACPI_NVS)) *
				      PAGE_SIZE / MIB),
		 (unsigned long long)((bi->image_end - bi->image_base) / 1024));
}

void vmm_main(struct boot_info *bi)
{
	char why[256];

	/*
	 * Not before handover_switch: reloading GS there sets the GS base from
	 * the descriptor (SDM 3.4.4), which would undo it.
	 */
	percpu_start(0, bi->stack_low, bi->stack_high);
	log_info("hand-over done: own GDT, TSS, IDT and stack; page tables map "
		 "0-%llu GiB 1:1%s",
		 (unsigned long long)(bi->identity_map_top >> 30),
		 bi->identity_map_1g && bi->identity_map_top > (4ULL << 30)
			 ? " (1-GiB pages above 4 GiB)" : "");
	/* On the hypervisor's own page tables, which map the APICs' MMIO 1:1. */
	char masked[160];
	quiesce_platform(&bi->acpi, masked, sizeof(masked));
	log_info("hand-over: firmware leftovers: masked %s", masked);
	adopt_free_memory(bi);
	report_memory(bi);

	if (bi->store_test_only) {
		clock_init(bi->tsc_hz, bi->wallclock_s, bi->wallclock_tsc);
		store_host_init(bi);
		log_info("store selftest: over; without VT-x no VM runs: system halted");
		cpu_halt_forever();
	}

	speculation_init(bi->config->hv.speculation_defences);
	const struct virt_options options = {
		.xsave_compacted = bi->config->hv.xsave_compacted,
		.apic_virtualization = bi->config->hv.apic_virtualization,
	};
	if (virt_enable_cpu(bi->host_pages, &options, why, sizeof(why)))
		panic("cannot enter VMX operation: %s", why);

	if (bi->config->hv.selftest == CFG_SELFTEST_EXCEPTION) {
		/* Code is mapped read-only (W^X), so this must fault into the panic path. */
		volatile uint8_t *code = (volatile uint8_t *)(uintptr_t)&vmm_main;
		log_info("selftest: writing to the hypervisor's own code at %p", (void *)code);
		*code = *code;
	}

	if (bi->config->hv.selftest == CFG_SELFTEST_NMI) {
		/* Counted by its handler, reported by the scheduler; everything goes on. */
		log_info("selftest: this CPU sends itself an NMI");
		nmi_send_self();
	}

	clock_init(bi->tsc_hz, bi->wallclock_s, bi->wallclock_tsc);
	host_irq_init(&bi->acpi);
	uint64_t ring;
	if (page_alloc_alloc(bi->host_pages, LOG_RING_SIZE / PAGE_SIZE, 1, &ring) == 0)
		log_set_buffer((char *)(uintptr_t)ring);
	else
		log_warn("log: no memory for the log ring; writing to the UART directly");
	store_host_init(bi);
	platform_init_additions((const uint8_t *)(uintptr_t)bi->additions.base, bi->additions.size);
	vm_create_all(bi);
	control_init(bi);
	vm_start_autostart();
	mgmt_init(bi);
	sched_run(bi->tsc_hz);
}
