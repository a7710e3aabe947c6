/*
 * PCI configuration space of bus 0 (PCI Local Bus Specification 3.0,
 * chapter 6) reached through configuration mechanism #1 (section 3.2.2.3.2):
 * CONFIG_ADDRESS at port 0xcf8, CONFIG_DATA at 0xcfc-0xcff. Device 0 is an
 * Intel 440FX host bridge (8086:1237), devices 1..PCI_MAX_DEVICES hold the
 * functions callers register, each as function 0 of a single-function
 * device with a type 0 header. Memory BARs (32- or 64-bit) decode guest
 * physical addresses while command.MEM is set; the hypervisor resolves an
 * EPT-violation address with pci_mmio_find() and calls the function's
 * bar_read/bar_write. Not modelled: I/O BARs, expansion ROMs, other buses
 * and bridges, extended (PCIe) configuration space and its MMCONFIG window,
 * error reporting status bits. Plain C, no hardware access.
 */
#ifndef DEVICES_PCI_H
#define DEVICES_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/devstate.h"
#include "devices/port_bus.h"

/*
 * Devices 1..PCI_MAX_DEVICES of bus 0 take registered functions: a disk,
 * four adapters, and room for two more (each slot is ~600 bytes of every
 * VM's state).
 */
#define PCI_MAX_DEVICES 8
#define PCI_CONFIG_SIZE 256
#define PCI_NUM_BARS 6

#define PCI_CONFIG_PORT 0xcf8 /* CONFIG_ADDRESS; CONFIG_DATA follows at 0xcfc */
#define PCI_CONFIG_PORTS 8

/* Type 0 header registers (PCI 3.0 6.1). */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION_ID 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_CACHE_LINE_SIZE 0x0c
#define PCI_LATENCY_TIMER 0x0d
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d

#define PCI_COMMAND_MEMORY 0x0002
#define PCI_COMMAND_MASTER 0x0004
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS_INTERRUPT 0x0008
#define PCI_STATUS_CAP_LIST 0x0010

#define PCI_BAR_MEM_TYPE_64 0x04
#define PCI_BAR_MEM_PREFETCH 0x08

#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11

#define PCI_INTERRUPT_PIN_NONE 0
#define PCI_INTERRUPT_PIN_INTA 1

enum pci_bar_type { PCI_BAR_NONE, PCI_BAR_MEM32, PCI_BAR_MEM64 };

struct pci_bar_info {
	enum pci_bar_type type;
	bool prefetchable;
	uint64_t size; /* power of two >= 4 KiB; <= 2 GiB for MEM32 */
};

/*
 * What a device model implements; every callback may be NULL and gets the
 * function's ctx. The config hooks let a model give registers side effects
 * (MSI-X enable, the virtio PCI_CFG window) on top of the byte store.
 */
struct pci_function_ops {
	/* Before a guest read of [offset, offset + size) is answered from the store. */
	void (*config_read)(void *ctx, unsigned offset, unsigned size);
	/* After a guest write to [offset, offset + size) went into the store. */
	void (*config_write)(void *ctx, unsigned offset, unsigned size);
	/*
	 * An access pci_mmio_find resolved: offset < the BAR's size, though
	 * offset + size may run past it; size is what the guest used.
	 */
	uint64_t (*bar_read)(void *ctx, unsigned bar, uint64_t offset, unsigned size);
	void (*bar_write)(void *ctx, unsigned bar, uint64_t offset, unsigned size,
			  uint64_t value);
};

struct pci_function_info {
	uint16_t vendor_id, device_id;
	uint16_t subsystem_vendor_id, subsystem_id;
	uint8_t revision;
	uint32_t class_code;    /* base class << 16 | subclass << 8 | programming interface */
	uint8_t interrupt_pin;  /* PCI_INTERRUPT_PIN_* */
	uint8_t interrupt_line; /* the legacy IRQ the caller delivers INTx on */
	struct pci_bar_info bars[PCI_NUM_BARS]; /* a MEM64 BAR also takes the next slot */
	const struct pci_function_ops *ops;
	void *ctx;
	/* Drives the platform's interrupt line; NULL with no interrupt pin. */
	void (*intx)(void *ctx, bool level);
	void *intx_ctx;
};

struct pci_function {
	uint8_t config[PCI_CONFIG_SIZE];
	uint8_t wmask[PCI_CONFIG_SIZE]; /* bits a guest write may change */
	uint64_t bar_size[PCI_NUM_BARS]; /* 0: no BAR starts in this slot */
	uint8_t last_cap;                /* offset of the last capability, 0: none */
	uint16_t cap_free;               /* where the next capability goes */
	bool intx_out;                   /* what intx() last drove */
	uint8_t interrupt_line_at_reset; /* what registration put in the interrupt line */
	const struct pci_function_ops *ops;
	void *ctx;
	void (*intx)(void *ctx, bool level);
	void *intx_ctx;
};

/* The bus's own guest state: the one register it has. */
struct pci_bus_state {
	uint32_t address; /* CONFIG_ADDRESS */
};

struct pci_bus {
	struct pci_bus_state state;
	/*
	 * Only a dword access to 0xcf8 is CONFIG_ADDRESS; byte and word
	 * accesses to 0xcf8-0xcfb are ordinary I/O (PCI 3.0 3.2.2.3.2). On a
	 * PIIX that is the reset control register at 0xcf9, which the caller
	 * adds here instead of to the VM's port bus, where it would overlap
	 * the configuration ports. count 0: none.
	 */
	struct port_device chipset_port;
	/* Indexed by device number; [0] is the host bridge. */
	struct pci_function devices[1 + PCI_MAX_DEVICES];
	unsigned count; /* devices in use, the host bridge included */
};

void pci_init(struct pci_bus *bus);

/*
 * Device state (devstate.h). pci_bus_state_desc: the bus's
 * struct pci_bus_state. pci_function_state_desc: a registered function,
 * one record each (named by device number: pci0 is the host bridge): the
 * configuration registers a guest writes (command, cache line size,
 * latency timer, BARs as programmed, interrupt line), status (its
 * interrupt bit is the device's), the capability bytes (MSI-X enable and
 * function mask, the virtio PCI_CFG window) and intx_out. Registration's
 * part of the same bytes (IDs, BAR type bits, the capability list) is
 * checked against the live function, never taken from a record; the write
 * masks, BAR sizes, the capability layout and the callbacks are not in it.
 */
extern const struct devstate_desc pci_bus_state_desc;
extern const struct devstate_desc pci_function_state_desc;

/*
 * Registers a function at the next free device number. NULL if the bus is
 * full or a BAR is malformed (size not a power of two >= 4 KiB, too large
 * for its type, or a MEM64 BAR without a free upper slot).
 */
struct pci_function *pci_add_function(struct pci_bus *bus, const struct pci_function_info *info);

/*
 * Reserves len bytes (header included) for a capability with this id,
 * linked at the end of the list: returns its offset, or -1 if it does not
 * fit. The body is read-only until the caller opens bits with
 * pci_config_set_wmask().
 */
int pci_add_capability(struct pci_function *fn, uint8_t id, unsigned len);

/* The device model's view: no write mask, no hooks; out-of-range accesses do nothing. */
uint32_t pci_config_get(const struct pci_function *fn, unsigned offset, unsigned size);
void pci_config_set(struct pci_function *fn, unsigned offset, unsigned size, uint32_t value);
void pci_config_set_wmask(struct pci_function *fn, unsigned offset, unsigned size,
			  uint32_t mask);

/*
 * The guest's view (size 1, 2 or 4 at any offset): read-only bits hold,
 * hooks run. An access reaching past 256 bytes reads all ones and writes
 * nothing.
 */
uint32_t pci_config_read(struct pci_function *fn, unsigned offset, unsigned size);
void pci_config_write(struct pci_function *fn, unsigned offset, unsigned size, uint32_t value);

/*
 * The device's interrupt request (PCI 3.0 6.2.3: mirrored in status bit 3).
 * The pin follows it unless command bit 10 disables INTx.
 */
void pci_set_intx(struct pci_function *fn, bool level);

/*
 * The function and memory BAR that decode guest-physical address gpa, and
 * the offset inside that BAR. Only BARs of functions with command.MEM set
 * decode. BARs a guest made overlap resolve to the lowest device number,
 * then the lowest BAR; a BAR over RAM is never asked for, as the EPT maps
 * RAM first.
 */
bool pci_mmio_find(struct pci_bus *bus, uint64_t gpa, struct pci_function **fn, unsigned *bar,
		   uint64_t *offset);

/* port_bus callbacks for ports PCI_CONFIG_PORT..+7; ctx is the struct pci_bus. */
uint32_t pci_port_read(void *ctx, uint16_t offset, unsigned size);
void pci_port_write(void *ctx, uint16_t offset, unsigned size, uint32_t value);

#endif
