/*
 * A VM's PC platform beyond the legacy ISA devices of vmm/vm.c: local APIC,
 * I/O APIC, ACPI power-management registers, PCI configuration space and
 * the virtio-pci devices on it, and the interrupt wiring between them.
 * Every VM gets the same machine, so a guest sees exactly what its ACPI
 * tables (devices/acpi_tables.c) describe. Generic code: no VMCS here.
 */
#ifndef VMM_PLATFORM_H
#define VMM_PLATFORM_H

#include <stdbool.h>
#include <stdint.h>

#include "boot/config.h"
#include "devices/acpi_pm.h"
#include "devices/acpi_tables.h"
#include "devices/i6300esb.h"
#include "devices/ioapic.h"
#include "devices/lapic.h"
#include "devices/pci.h"
#include "devices/virtio_balloon.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_console.h"
#include "devices/virtio_net.h"
#include "devices/virtio_pci.h"

/* The window the hypervisor, as the guest's firmware, puts PCI BARs in. */
#define PLATFORM_PCI_MEM_BASE 0xc0000000U
#define PLATFORM_PCI_MEM_SIZE 0x10000000U
/* Legacy IRQ lines of the virtio devices when a driver uses INTx, not MSI-X. */
#define PLATFORM_IRQ_BLK 10
#define PLATFORM_IRQ_AGENT 5
#define PLATFORM_IRQ_ADDITIONS 15
#define PLATFORM_IRQ_BALLOON 6
/*
 * The disk, the guest agent's port, the additions drive and the adapters;
 * the balloon takes a slot one of them leaves (platform_power_on says when
 * none is left).
 */
#define PLATFORM_VIRTIO_MAX (3 + CFG_MAX_NICS)
_Static_assert(PLATFORM_VIRTIO_MAX + 1 <= PCI_MAX_DEVICES,
	       "every virtio transport and the watchdog have a PCI slot");
_Static_assert(PLATFORM_VIRTIO_MAX <= ACPI_PCI_ROUTES_MAX,
	       "every virtio transport has an I/O APIC input of its own");

struct vm;
struct port_bus;

/*
 * Interrupt wiring of one virtio-pci function's INTA#: its VM, the 8259
 * input it shares (its Interrupt Line) and the I/O APIC input of its own.
 */
struct platform_pin {
	struct vm *vm;
	uint8_t isa_irq;
	uint8_t gsi;
};

/* A virtio-net device's back end: adapter `slot` of the VM (vmm/network.h). */
struct platform_nic {
	struct vm *vm;
	unsigned slot;
};

struct platform {
	struct lapic lapic;
	struct ioapic ioapic;
	struct acpi_pm pm;
	struct pci_bus pci;
	struct virtio_pci virtio[PLATFORM_VIRTIO_MAX];
	struct platform_pin pins[PLATFORM_VIRTIO_MAX];
	unsigned virtio_count;
	struct virtio_blk blk;
	struct virtio_console agent;    /* the guest agent's port, when agent_present */
	bool agent_present;
	/* A read-only drive, empty until InstallAdditions puts the additions in. */
	struct virtio_blk additions;
	bool additions_present;
	bool additions_inserted;        /* stays in, like a CD, across resets and power cycles */
	/* watchdog = i6300esb: the device, and whether it caused the last reset. */
	struct i6300esb watchdog;
	struct pci_function *watchdog_pci;
	bool watchdog_fired;
	/* free_page_reporting = yes: the guest reports free pages, which are zeroed. */
	struct virtio_balloon balloon;
	bool balloon_present;
	struct virtio_net net[CFG_MAX_NICS];
	struct platform_nic net_port[CFG_MAX_NICS];
	unsigned net_count;
	/* The disk's PCI function (NULL: no disk) and its longest handling, TSC ticks. */
	const struct pci_function *blk_pci;
	uint64_t blk_notify_max_tsc;    /* of one notification (an MMIO write) */
	uint64_t blk_pass_max_tsc;      /* of one pass's resume of waiting requests */
};

/*
 * The guest additions' image (boot_info.additions; size 0: none), shared
 * read-only by every VM's additions drive. Once, before any VM starts.
 */
void platform_init_additions(const uint8_t *base, uint64_t size);

/*
 * InstallAdditions: the additions go into the VM's additions drive, as a
 * CD into a drive. -1 when there is no image or the VM has no drive.
 */
int platform_insert_additions(struct vm *vm);

/* Registers the platform's ports; done once when the VM is created. */
int platform_attach_ports(struct vm *vm, struct port_bus *ports);

/*
 * Power-on state of every platform device, and the PCI devices the VM's
 * configuration asks for, with their BARs assigned as firmware would.
 * Returns -1 with a reason when the devices cannot be built.
 */
int platform_power_on(struct vm *vm, char *why, size_t why_size);

/* Drives a legacy interrupt line (ISA IRQ 0-15) into both the 8259s and the I/O APIC. */
void platform_set_irq(struct vm *vm, unsigned irq, bool level);

/*
 * The INTx routes of the PCI functions platform_power_on built, for the
 * guest's ACPI _PRT; routes[] has room for PLATFORM_VIRTIO_MAX. Returns
 * how many.
 */
unsigned platform_pci_routes(const struct vm *vm, struct acpi_pci_route *routes);

/*
 * Once per scheduler pass: the virtio queues get their work budget back
 * and serve what they left waiting (devices/virtqueue.h), and the frames
 * the VM's networks queued for its adapters move into the guest's receive
 * buffers, as far as the guest posted buffers and the budget goes.
 */
void platform_poll_devices(struct vm *vm);

/*
 * The VM is turning off or resetting: logs the longest device work a
 * notification and a pass cost it, in microseconds of the hypervisor's
 * clock (the bench reads "virtio-blk: longest notification N us").
 */
void platform_report_device_work(const struct vm *vm);

/* An adapter was plugged into a network or pulled out: the guest sees the link change. */
void platform_nic_link_changed(unsigned vm_id, unsigned nic, bool up);

/* Runs the LAPIC timer to now; returns the ns of its next event, 0: none. */
uint64_t platform_run_timers(struct vm *vm, uint64_t now_ns, uint64_t now_tsc);

/*
 * The vector the CPU would take next from the interrupt controllers, or
 * -1; and the 8259s' alone, through LINT0 (or a hardware-disabled APIC).
 * Both read the local APIC model as it is: the caller makes sure the CPU
 * does not hold newer vectors (vcpu_apic_from_page).
 */
int platform_interrupt_pending(const struct vm *vm);
int platform_extint_pending(const struct vm *vm);
/* Its acknowledge: the vector moves to in-service. */
uint8_t platform_interrupt_acknowledge(struct vm *vm);

/* The CPU completed the EOI of vector itself (lapic_virtual_eoi). */
void platform_virtual_eoi(struct vm *vm, uint8_t vector);

/* The LAPIC's MSRs (lapic_is_msr); false for an access the CPU would answer with #GP. */
bool platform_rdmsr(struct vm *vm, uint32_t msr, uint64_t *value);
bool platform_wrmsr(struct vm *vm, uint32_t msr, uint64_t value);

/* CR8 is the LAPIC's task priority (SDM 10.8.6.1). */
uint64_t platform_read_cr8(struct vm *vm);
bool platform_write_cr8(struct vm *vm, uint64_t value);

/* The LAPIC bus clock the guest's CPUID leaf 0x15 reports as the crystal. */
#define PLATFORM_LAPIC_HZ 25000000ULL

#endif
