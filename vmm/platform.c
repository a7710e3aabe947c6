#include "vmm/platform.h"

#include "devices/acpi_tables.h"
#include "lib/fmt.h"
#include "vmm/clock.h"
#include "vmm/lazy_restore.h"
#include "vmm/log.h"
#include "vmm/mgmt.h"
#include "vmm/mmio.h"
#include "vmm/network.h"
#include "vmm/vm.h"
#include "x86/cpu.h"

#include <string.h>

/* The PIIX reset control register (the FADT's reset register): RST_CPU, bit 2, resets. */
#define RESET_CPU 0x04
/* MSI address/data format (SDM Vol. 3A 10.11.1 and 10.11.2). */
#define MSI_ADDRESS_MASK 0xfff00000ULL
#define MSI_ADDRESS_BASE 0xfee00000ULL
#define MSI_DATA_VECTOR 0xffu
#define MSI_DATA_DELIVERY_SHIFT 8
#define MSI_DATA_DELIVERY_MASK 7u
/* ISA IRQ 0 reaches I/O APIC pin 2, as the MADT's interrupt source override says. */
#define ISA_IRQ_PIT 0
#define GSI_PIT 2
#define PLATFORM_IRQ_NET_FIRST 11

/* Shared by every VM's additions drive: read-only, so never written. */
static struct disk additions_disk, no_medium;
static uint8_t *additions_chunks[BOOT_ADDITIONS_MAX / DISK_CHUNK_SIZE];

void platform_init_additions(const uint8_t *base, uint64_t size)
{
	const struct disk_chunk_alloc none = { NULL, NULL, NULL };

	if (size > BOOT_ADDITIONS_MAX)
		size = 0;
	disk_init(&additions_disk, base, size - size % VIRTIO_BLK_SECTOR_SIZE, additions_chunks,
		  &none);
}

/* The 6300ESB's registers in configuration space: the device keeps them as state. */
static void watchdog_config_write(void *ctx, unsigned offset, unsigned size)
{
	struct vm *vm = ctx;
	struct platform *p = &vm->platform;

	(void)offset;
	(void)size;
	i6300esb_config_write(&p->watchdog,
			      (uint16_t)pci_config_get(p->watchdog_pci, I6300ESB_CONFIG_REG, 2),
			      (uint8_t)pci_config_get(p->watchdog_pci, I6300ESB_LOCK_REG, 1),
			      vm_now(vm).ns);
	/* What a locked register kept is what the guest reads back. */
	pci_config_set(p->watchdog_pci, I6300ESB_LOCK_REG, 1, p->watchdog.lock);
}

static uint64_t watchdog_bar_read(void *ctx, unsigned bar, uint64_t offset, unsigned size)
{
	(void)bar;
	return i6300esb_read(&((struct vm *)ctx)->platform.watchdog, offset, size);
}

static void watchdog_bar_write(void *ctx, unsigned bar, uint64_t offset, unsigned size,
			       uint64_t value)
{
	struct vm *vm = ctx;

	(void)bar;
	i6300esb_write(&vm->platform.watchdog, offset, size, (uint32_t)value, vm_now(vm).ns);
}

static const struct pci_function_ops watchdog_ops = {
	.config_write = watchdog_config_write,
	.bar_read = watchdog_bar_read,
	.bar_write = watchdog_bar_write,
};

/* The watchdog after the virtio functions, its BAR after theirs; no interrupt pin. */
static int add_watchdog(struct vm *vm)
{
	struct platform *p = &vm->platform;
	const struct pci_function_info info = {
		.vendor_id = I6300ESB_VENDOR_ID, .device_id = I6300ESB_DEVICE_ID,
		.subsystem_vendor_id = I6300ESB_VENDOR_ID, .subsystem_id = I6300ESB_DEVICE_ID,
		.class_code = I6300ESB_CLASS,
		.bars = { [0] = { PCI_BAR_MEM32, false, I6300ESB_BAR_SIZE } },
		.ops = &watchdog_ops, .ctx = vm,
	};

	i6300esb_init(&p->watchdog, p->watchdog_fired);
	p->watchdog_fired = false;
	p->watchdog_pci = pci_add_function(&p->pci, &info);
	if (!p->watchdog_pci)
		return -1;
	pci_config_set_wmask(p->watchdog_pci, I6300ESB_CONFIG_REG, 2, I6300ESB_CONFIG_WRITABLE);
	pci_config_set_wmask(p->watchdog_pci, I6300ESB_LOCK_REG, 1, I6300ESB_LOCK_WRITABLE);
	pci_config_write(p->watchdog_pci, PCI_BAR0, 4,
			 PLATFORM_PCI_MEM_BASE + PLATFORM_VIRTIO_MAX * VIRTIO_PCI_BAR_SIZE);
	pci_config_write(p->watchdog_pci, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	return 0;
}

int platform_insert_additions(struct vm *vm)
{
	struct platform *p = &vm->platform;

	if (!p->additions_present || !additions_disk.size)
		return -1;
	p->additions_inserted = true;
	return virtio_blk_change_medium(&p->additions, &additions_disk);
}

static void reset_control_write(void *ctx, uint16_t offset, unsigned size, uint32_t value)
{
	(void)offset;
	(void)size;
	if (value & RESET_CPU)
		vm_request_reset(ctx, "reset by the guest (port 0xcf9)");
}

static uint32_t pm_port_read(void *ctx, uint16_t offset, unsigned size)
{
	return acpi_pm_read(&((struct vm *)ctx)->platform.pm, offset, size, vm_now(ctx).ns);
}

static void pm_port_write(void *ctx, uint16_t offset, unsigned size, uint32_t value)
{
	struct vm *vm = ctx;

	switch (acpi_pm_write(&vm->platform.pm, offset, size, value)) {
	case ACPI_PM_POWER_OFF:
		vm_request_end(vm, "powered off by the guest (ACPI S5)");
		break;
	case ACPI_PM_SLEEP_REFUSED:
		log_warn("vm '%s': the guest asked for a sleep state other than S5; ignored",
			 vm->cfg->name);
		break;
	case ACPI_PM_NONE:
		break;
	}
}

int platform_attach_ports(struct vm *vm, struct port_bus *ports)
{
	const struct port_device devices[] = {
		{ .base = PCI_CONFIG_PORT, .count = PCI_CONFIG_PORTS, .name = "pci-config",
		  .read = pci_port_read, .write = pci_port_write, .ctx = &vm->platform.pci },
		{ .base = ACPI_PM_PORT_BASE, .count = ACPI_PM_PORTS, .name = "acpi-pm",
		  .read = pm_port_read, .write = pm_port_write, .ctx = vm },
	};

	for (unsigned i = 0; i < sizeof(devices) / sizeof(devices[0]); i++)
		if (port_bus_add(ports, &devices[i]))
			return -1;
	return 0;
}

/*
 * The local APIC model, current: what the CPU changed in the virtual-APIC
 * page while the guest ran is taken back first (vcpu_apic_from_page).
 * Every device path to the model goes through it.
 */
static struct lapic *lapic_of(struct vm *vm)
{
	vcpu_apic_from_page(&vm->vcpu);
	return &vm->platform.lapic;
}

/*
 * An interrupt message (an I/O APIC entry or an MSI, whose delivery modes
 * share the local APIC's encoding, SDM 11.11.2) for the one local APIC:
 * fixed and lowest priority go to IRR, NMI is latched. ExtINT is the
 * 8259s' path, which LINT0 models; SMI, INIT and the reserved modes reach
 * nothing. Returns whether the APIC took it.
 */
static bool lapic_message(struct vm *vm, unsigned delivery_mode, uint8_t vector,
			  bool level_triggered, uint8_t dest, bool logical)
{
	struct lapic *lapic = lapic_of(vm);

	if (delivery_mode != LAPIC_DM_FIXED && delivery_mode != LAPIC_DM_LOWEST &&
	    delivery_mode != LAPIC_DM_NMI)
		return false;
	if (!lapic_is_destination(lapic, dest, logical))
		return false;
	if (delivery_mode == LAPIC_DM_NMI) {
		lapic_deliver_nmi(lapic);
		return true;
	}
	return lapic_accept(lapic, vector, level_triggered);
}

static bool ioapic_deliver(void *ctx, uint8_t vector, bool level_triggered, uint8_t dest,
			   uint8_t dest_mode, uint8_t delivery_mode)
{
	_Static_assert(IOAPIC_DM_FIXED == LAPIC_DM_FIXED && IOAPIC_DM_LOWEST == LAPIC_DM_LOWEST &&
			       IOAPIC_DM_NMI == LAPIC_DM_NMI,
		       "one delivery-mode encoding (SDM 11.11.2, I/O APIC redirection entries)");
	return lapic_message(ctx, delivery_mode, vector, level_triggered, dest, dest_mode);
}

static void lapic_eoi_broadcast(void *ctx, uint8_t vector)
{
	ioapic_eoi(&((struct vm *)ctx)->platform.ioapic, vector);
}

void platform_set_irq(struct vm *vm, unsigned irq, bool level)
{
	pic_set_irq(&vm->pic, irq, level);
	ioapic_set_irq(&vm->platform.ioapic, irq == ISA_IRQ_PIT ? GSI_PIT : irq, level);
}

unsigned platform_pci_routes(const struct vm *vm, struct acpi_pci_route *routes)
{
	const struct platform *p = &vm->platform;

	/* A function's device number is its slot on the bus. */
	for (unsigned n = 0; n < p->virtio_count; n++)
		routes[n] = (struct acpi_pci_route){ (uint8_t)(p->virtio[n].pci - p->pci.devices),
						     p->pins[n].isa_irq, p->pins[n].gsi };
	return p->virtio_count;
}

static void virtio_msi(void *ctx, uint64_t address, uint32_t data)
{
	struct platform_pin *pin = ctx;
	unsigned mode = (data >> MSI_DATA_DELIVERY_SHIFT) & MSI_DATA_DELIVERY_MASK;
	uint8_t dest = (uint8_t)(address >> 12);

	/* A message outside the interrupt address range is a write to nowhere (no IOMMU). */
	if ((address & MSI_ADDRESS_MASK) == MSI_ADDRESS_BASE)
		lapic_message(pin->vm, mode, (uint8_t)(data & MSI_DATA_VECTOR), false, dest,
			      address & (1u << 2));
}

/*
 * INTx# is active low and open drain (PCI 3.0, 2.2.6): the I/O APIC input
 * sees the wire, which idles high. The 8259 input sees it through the
 * chipset's PIRQ steering, active high, level through the ELCR.
 */
static void virtio_intx(void *ctx, bool asserted)
{
	struct platform_pin *pin = ctx;

	pic_set_irq(&pin->vm->pic, pin->isa_irq, asserted);
	ioapic_set_irq(&pin->vm->platform.ioapic, pin->gsi, !asserted);
}

/* Puts a virtio device on the bus with its BAR assigned, as the firmware would. */
static int add_virtio(struct vm *vm, struct virtio_device *dev, unsigned isa_irq)
{
	struct platform *p = &vm->platform;
	unsigned n = p->virtio_count;

	if (n == PLATFORM_VIRTIO_MAX)
		return -1;
	p->pins[n] = (struct platform_pin){ vm, (uint8_t)isa_irq,
					    (uint8_t)(ACPI_PCI_GSI_FIRST + n) };
	const struct virtio_pci_irq wiring = { virtio_msi, virtio_intx, &p->pins[n] };
	if (virtio_pci_init(&p->virtio[n], &p->pci, dev, (uint8_t)isa_irq, &wiring))
		return -1;
	virtio_intx(&p->pins[n], false);
	struct pci_function *fn = p->virtio[n].pci;
	uint32_t bar = PLATFORM_PCI_MEM_BASE + n * VIRTIO_PCI_BAR_SIZE;
	pci_config_write(fn, PCI_BAR0 + 4 * VIRTIO_PCI_BAR, 4, bar);
	pci_config_write(fn, PCI_BAR0 + 4 * (VIRTIO_PCI_BAR + 1), 4, 0);
	pci_config_write(fn, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	p->virtio_count++;
	return 0;
}

/* The virtio-net back end is the adapter's network (vmm/network.h). */
static int net_transmit(void *ctx, const void *frame, size_t len)
{
	const struct platform_nic *port = ctx;
	return nic_transmit(port->vm->id, port->slot, frame, len);
}

static void poll_network(struct vm *vm)
{
	struct platform *p = &vm->platform;

	/*
	 * Straight from the ring slot into the guest's receive buffer: with the
	 * switch's copy into the ring, a frame is copied twice between guests.
	 */
	for (unsigned k = 0; k < p->net_count; k++) {
		unsigned slot = p->net_port[k].slot;
		const void *frame;
		int len;
		while (virtio_net_can_receive(&p->net[k]) &&
		       (len = nic_peek(vm->id, slot, &frame)) > 0) {
			virtio_net_receive(&p->net[k], frame, (size_t)len);
			nic_consume(vm->id, slot);
		}
	}
}

static void net_rx_ready(void *ctx)
{
	poll_network(((struct platform_nic *)ctx)->vm);
}

static uint64_t longest(uint64_t max, uint64_t start_tsc)
{
	uint64_t took = rdtsc() - start_tsc;

	return took > max ? took : max;
}

void platform_poll_devices(struct vm *vm)
{
	struct platform *p = &vm->platform;

	if (p->blk_pci) {
		uint64_t start = rdtsc();
		virtio_blk_new_pass(&p->blk);
		p->blk_pass_max_tsc = longest(p->blk_pass_max_tsc, start);
	}
	if (p->agent_present)
		virtio_console_new_pass(&p->agent);
	if (p->additions_present)
		virtio_blk_new_pass(&p->additions);
	for (unsigned k = 0; k < p->net_count; k++)
		virtio_net_new_pass(&p->net[k]);
	if (p->balloon_present) {
		uint64_t reports = p->balloon.stats.reports;
		virtio_balloon_new_pass(&p->balloon);
		if (!reports && p->balloon.stats.reports)
			log_info("vm '%s': free page reporting: the guest's first report", vm->cfg->name);
	}
	poll_network(vm);
}

static uint64_t tsc_to_us(uint64_t ticks)
{
	uint64_t mhz = clock_tsc_hz() / 1000000;

	return mhz ? ticks / mhz : 0;
}

void platform_report_device_work(const struct vm *vm)
{
	const struct platform *p = &vm->platform;

	if (!p->blk_pci)
		return;
	log_info("vm '%s': virtio-blk: longest notification %llu us, longest pass %llu us; "
		 "%llu request(s) too large refused",
		 vm->cfg->name, (unsigned long long)tsc_to_us(p->blk_notify_max_tsc),
		 (unsigned long long)tsc_to_us(p->blk_pass_max_tsc),
		 (unsigned long long)p->blk.stats.too_large);
}

void platform_nic_link_changed(unsigned vm_id, unsigned nic, bool up)
{
	for (unsigned i = 0; i < vm_count(); i++) {
		struct vm *vm = vm_by_index(i);
		if (vm->id != vm_id || vm->state == VM_STATE_TURNED_OFF)
			continue;
		for (unsigned k = 0; k < vm->platform.net_count; k++)
			if (vm->platform.net_port[k].slot == nic)
				virtio_net_set_link(&vm->platform.net[k], up);
	}
}

/* Before a device model touches guest RAM: a restore may not have loaded it yet. */
static void load_guest_ram(void *vm, uint64_t gpa, uint64_t len)
{
	lazy_restore_load(vm, gpa, len);
}

int platform_power_on(struct vm *vm, char *why, size_t why_size)
{
	struct platform *p = &vm->platform;
	const struct lapic_config lapic_cfg = {
		.id = 0,
		.bus_hz = PLATFORM_LAPIC_HZ,
		.tsc_hz = clock_tsc_hz(),
		.x2apic = true,
		.tsc_deadline = true,
		.phys_addr_bits = (uint8_t)cpuid(CPUID_ADDRESS_SIZES, 0).eax,
		.timer_floor_ns = LAPIC_TIMER_FLOOR_NS,
	};
	const struct guest_memory mem = {
		.base = (uint8_t *)(uintptr_t)vm->boot->ram_base,
		.size = vm->boot->ram_bytes,
		.load = load_guest_ram,
		.load_ctx = vm,
	};

	lapic_init(&p->lapic, &lapic_cfg);
	p->lapic.eoi_broadcast = lapic_eoi_broadcast;
	p->lapic.ctx = vm;
	ioapic_init(&p->ioapic, GUEST_IOAPIC_ID);
	p->ioapic.deliver = ioapic_deliver;
	p->ioapic.ctx = vm;
	acpi_pm_init(&p->pm);
	pci_init(&p->pci);
	p->pci.chipset_port = (struct port_device){ .base = ACPI_RESET_PORT, .count = 1,
						     .name = "reset-control",
						     .write = reset_control_write, .ctx = vm };
	p->virtio_count = 0;
	p->net_count = 0;
	p->blk_pci = NULL;
	p->agent_present = p->additions_present = false;
	p->blk_notify_max_tsc = p->blk_pass_max_tsc = 0;

	if (vm->boot->disk.size || vm->disk.medium) {
		/* The VM's own disk (vm.h), writes kept since it was created, or a store object. */
		if (vm->disk.size < VIRTIO_BLK_SECTOR_SIZE ||
		    virtio_blk_init(&p->blk, mem, &vm->disk, false, vm->cfg->name) ||
		    add_virtio(vm, &p->blk.dev, PLATFORM_IRQ_BLK)) {
			fmt_snprintf(why, why_size, "its disk (%llu bytes) cannot be attached: "
				     "it must hold at least one 512-byte sector",
				     (unsigned long long)(vm->disk.medium ? vm->disk.size
								   : vm->boot->disk.size));
			return -1;
		}
		p->blk_pci = p->virtio[p->virtio_count - 1].pci;
	}
	for (unsigned slot = 0; slot < CFG_MAX_NICS; slot++) {
		const struct nic_info *nic = nic_get(vm->id, slot);
		unsigned k = p->net_count;
		if (!nic)
			continue;
		p->net_port[k] = (struct platform_nic){ vm, slot };
		const struct virtio_net_backend backend = { net_transmit, net_rx_ready,
							    &p->net_port[k] };
		uint32_t mtu = nic->net >= 0 ? network_get((unsigned)nic->net)->mtu
					     : VNET_MTU_DEFAULT;
		if (virtio_net_init(&p->net[k], mem, nic->mac, (uint16_t)mtu, &backend) ||
		    add_virtio(vm, &p->net[k].dev, PLATFORM_IRQ_NET_FIRST + k)) {
			fmt_snprintf(why, why_size, "network adapter %u cannot be attached", slot);
			return -1;
		}
		/* An adapter on no network is a NIC with its cable out. */
		virtio_net_set_link(&p->net[k], nic->net >= 0);
		p->net_count++;
	}
	/* After the adapters, so a VM's NICs keep the slots and GSIs they always had. */
	if (vm->cfg->guest_agent && vm->cfg->role != CFG_ROLE_MANAGEMENT) {
		const struct virtio_console_host host = { mgmt_agent_notify, vm };
		virtio_console_init(&p->agent, mem, &host);
		if (add_virtio(vm, &p->agent.dev, PLATFORM_IRQ_AGENT)) {
			fmt_snprintf(why, why_size, "the guest agent's port cannot be attached");
			return -1;
		}
		p->agent_present = true;
		/* The additions drive comes with the agent's port, empty. */
		if (additions_disk.size) {
			struct disk *medium = p->additions_inserted ? &additions_disk : &no_medium;
			if (virtio_blk_init(&p->additions, mem, medium, true, "vmm-additions") ||
			    add_virtio(vm, &p->additions.dev, PLATFORM_IRQ_ADDITIONS)) {
				fmt_snprintf(why, why_size, "the additions drive cannot be attached");
				return -1;
			}
			p->additions_present = true;
		}
	}
	p->watchdog_pci = NULL;
	if (vm->cfg->watchdog == CFG_WATCHDOG_I6300ESB && add_watchdog(vm)) {
		fmt_snprintf(why, why_size, "the watchdog has no PCI slot left");
		return -1;
	}
	/* Last, so that every other device keeps the slot it had before the balloon came. */
	p->balloon_present = false;
	if (vm->cfg->free_page_reporting) {
		virtio_balloon_init(&p->balloon, mem);
		if (add_virtio(vm, &p->balloon.dev, PLATFORM_IRQ_BALLOON)) {
			fmt_snprintf(why, why_size, "free page reporting: no PCI slot left for its "
				     "virtio-balloon (%u virtio devices already)", p->virtio_count);
			return -1;
		}
		p->balloon_present = true;
	}
	return 0;
}

uint64_t platform_run_timers(struct vm *vm, uint64_t now_ns, uint64_t now_tsc)
{
	struct lapic *lapic = lapic_of(vm);

	lapic_timer_run(lapic, now_ns, now_tsc);
	uint64_t next = lapic_next_event_ns(lapic, now_ns, now_tsc);
	struct platform *p = &vm->platform;
	if (!p->watchdog_pci)
		return next;
	if (i6300esb_run(&p->watchdog, now_ns)) {
		/* The guest stopped feeding it: reset, and the driver finds TIMEOUT set after. */
		p->watchdog_fired = true;
		vm_request_reset(vm, "the watchdog (i6300esb) expired");
	}
	uint64_t w = i6300esb_next_event(&p->watchdog);
	return w && (!next || w < next) ? w : next;
}

/*
 * The 8259s reach the CPU through LINT0 in ExtINT mode, which is how a PC
 * starts (virtual-wire mode, MP spec 3.6.2.2) and what a guest that never
 * touches its local APIC keeps; a hardware-disabled local APIC passes INTR
 * straight to the CPU (SDM 10.4.3). lapic_extint_enabled() covers both.
 */
int platform_extint_pending(const struct vm *vm)
{
	return lapic_extint_enabled(&vm->platform.lapic) ? pic_pending(&vm->pic) : -1;
}

int platform_interrupt_pending(const struct vm *vm)
{
	int vector = platform_extint_pending(vm);

	return vector >= 0 ? vector : lapic_pending(&vm->platform.lapic);
}

uint8_t platform_interrupt_acknowledge(struct vm *vm)
{
	if (platform_extint_pending(vm) >= 0)
		return pic_acknowledge(&vm->pic);
	return lapic_acknowledge(lapic_of(vm), vm_now(vm).tsc);
}

void platform_virtual_eoi(struct vm *vm, uint8_t vector)
{
	lapic_virtual_eoi(lapic_of(vm), vector);
}

bool platform_rdmsr(struct vm *vm, uint32_t msr, uint64_t *value)
{
	return lapic_msr_read(lapic_of(vm), msr, value, vm_now(vm).ns);
}

bool platform_wrmsr(struct vm *vm, uint32_t msr, uint64_t value)
{
	struct vm_time now = vm_now(vm);

	if (lapic_msr_moves_timer(msr))
		vm->vcpu.timers_moved = true;
	return lapic_msr_write(lapic_of(vm), msr, value, now.ns, now.tsc);
}

uint64_t platform_read_cr8(struct vm *vm)
{
	return lapic_read_cr8(lapic_of(vm));
}

bool platform_write_cr8(struct vm *vm, uint64_t value)
{
	return lapic_write_cr8(lapic_of(vm), value);
}

static bool in_page(uint64_t gpa, unsigned size, uint64_t base, uint64_t page_size)
{
	return gpa >= base && gpa - base < page_size && size <= page_size - (gpa - base);
}

static bool in_lapic_page(const struct platform *p, uint64_t gpa, unsigned size)
{
	return in_page(gpa, size, p->lapic.apic_base & ~(uint64_t)(LAPIC_MMIO_SIZE - 1),
		       LAPIC_MMIO_SIZE);
}

/* The local APIC page moves with IA32_APIC_BASE and vanishes in x2APIC mode or when disabled. */
static bool lapic_mmio(const struct platform *p, uint64_t gpa, unsigned size)
{
	uint64_t base = p->lapic.apic_base;
	return (base & LAPIC_BASE_EN) && !(base & LAPIC_BASE_EXTD) && in_lapic_page(p, gpa, size);
}

/* The device a guest-physical access lands on, if any, performs it. */
static int mmio_access(struct vm *vm, uint64_t gpa, unsigned size, bool write, uint64_t *value)
{
	struct platform *p = &vm->platform;
	struct pci_function *fn;
	unsigned bar;
	uint64_t offset;

	if (lapic_mmio(p, gpa, size)) {
		offset = gpa & (LAPIC_MMIO_SIZE - 1);
		struct vm_time now = vm_now(vm);
		if (write) {
			if (lapic_mmio_moves_timer((unsigned)offset))
				vm->vcpu.timers_moved = true;
			lapic_mmio_write(lapic_of(vm), offset, size, (uint32_t)*value, now.ns,
					 now.tsc);
		} else {
			*value = lapic_mmio_read(lapic_of(vm), offset, size, now.ns);
		}
	} else if (in_lapic_page(p, gpa, size)) {
		/*
		 * A globally disabled APIC (or one in x2APIC mode) no longer
		 * claims its page (SDM 11.4.3, 11.12.1): the access goes to the
		 * bus, where nothing answers it; reads float to all ones.
		 */
		if (!write)
			*value = ~0ULL;
	} else if (in_page(gpa, size, IOAPIC_DEFAULT_BASE, IOAPIC_MMIO_SIZE)) {
		offset = gpa - IOAPIC_DEFAULT_BASE;
		if (write)
			ioapic_mmio_write(&p->ioapic, offset, size, (uint32_t)*value);
		else
			*value = ioapic_mmio_read(&p->ioapic, offset, size);
	} else if (pci_mmio_find(&p->pci, gpa, &fn, &bar, &offset)) {
		uint64_t start = rdtsc();
		if (write)
			fn->ops->bar_write(fn->ctx, bar, offset, size, *value);
		else
			*value = fn->ops->bar_read(fn->ctx, bar, offset, size);
		/* The disk's notifications are where a driver makes the device work. */
		if (write && fn == p->blk_pci && offset >= VIRTIO_PCI_NOTIFY_OFFSET &&
		    offset < VIRTIO_PCI_MSIX_TABLE_OFFSET)
			p->blk_notify_max_tsc = longest(p->blk_notify_max_tsc, start);
	} else {
		return -1;
	}
	return 0;
}

int vm_mmio_read(struct vm *vm, uint64_t gpa, unsigned size, uint64_t *value)
{
	return mmio_access(vm, gpa, size, false, value);
}

int vm_mmio_write(struct vm *vm, uint64_t gpa, unsigned size, uint64_t value)
{
	return mmio_access(vm, gpa, size, true, &value);
}
