/*
 * What the UEFI loader hands to the hypervisor proper. Plain data only:
 * after the hand-over nothing may depend on firmware types or services.
 */
#ifndef BOOT_BOOT_INFO_H
#define BOOT_BOOT_INFO_H

#include <stdbool.h>
#include <stdint.h>

struct page_alloc;

#include "boot/acpi.h"
#include "boot/config.h"
#include "boot/fat.h"
#include "boot/memmap.h"

/* A file read whole from the boot volume into page-aligned memory. */
struct boot_file {
	uint64_t base;  /* physical address, 0 if none */
	uint64_t size;  /* bytes of content */
	uint64_t pages; /* 4-KiB pages allocated */
};

/* The guest additions' image: a small read-only disk every VM may be given. */
#define BOOT_ADDITIONS_MAX (16ULL << 20)

/* A configured VM's memory, reserved before the firmware let go. */
struct boot_vm {
	uint64_t ram_base; /* host-physical, 2-MiB aligned for EPT large pages */
	uint64_t ram_bytes;
	/* Pristine copies, kept so that a Reset can start from them again. */
	struct boot_file image;
	struct boot_file initrd;
	struct boot_file disk;
};

/*
 * The store's container file as the disk sees it (docs/store.md), found
 * before ExitBootServices: which drive, and the file's sectors on it.
 */
enum boot_store_bus {
	BOOT_STORE_NONE,
	BOOT_STORE_ATA,                 /* a legacy-mode IDE channel */
	BOOT_STORE_AHCI,                /* a SATA port of an AHCI controller */
	BOOT_STORE_NVME,                /* a namespace of an NVMe controller */
	BOOT_STORE_VIRTIO,              /* a virtio-blk PCI device */
};

struct boot_store {
	enum boot_store_bus bus;
	/* The controller (the IDE controller's too), bridges resolved to bus numbers. */
	uint8_t pci_bus, pci_device, pci_function;
	uint8_t ata_channel;            /* 0 primary, 1 secondary */
	bool ata_slave;
	uint16_t sata_port;             /* AHCI: the HBA port */
	uint32_t nvme_namespace;        /* NVMe: the namespace ID */
	uint64_t bytes;
	struct fat_file_map map;        /* sectors from the disk's first */
};

struct boot_info {
	const struct config *config;
	struct boot_vm vms[CFG_MAX_VMS];
	struct boot_file additions;      /* [hypervisor] additions, read whole; size 0: none */
	struct boot_store store;         /* [hypervisor] store, located; bus NONE: none */
	struct acpi_info acpi;
	struct mem_map memmap;           /* after ExitBootServices */
	uint64_t heap_base, heap_bytes;  /* the hypervisor's first page pool */
	struct page_alloc *host_pages;   /* set by the hand-over */
	uint64_t identity_map_top;       /* the hypervisor maps [0, top) 1:1 */
	bool identity_map_1g;            /* with 1-GiB pages above 4 GiB */
	uint64_t stack_low, stack_high;  /* the boot CPU's hypervisor stack */
	uint64_t image_base, image_end;  /* this application in memory */
	uint64_t tsc_hz;
	uint64_t wallclock_s;   /* UTC seconds since 1970 at wallclock_tsc (0: unknown) */
	uint64_t wallclock_tsc;
	unsigned exit_attempts;          /* ExitBootServices calls it took */
	/*
	 * No VT-x, and selftest = store: the machine is taken over for the
	 * store's self-test alone, and no VM runs (a QEMU without VMX tests
	 * the AHCI, NVMe and virtio-blk drivers so).
	 */
	bool store_test_only;
};

#endif
