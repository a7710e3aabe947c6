/*
 * A host disk the store lies on, whatever drives it: the ATA channel by
 * PIO (ata.c), an AHCI port (ahci.c), an NVMe namespace (nvme.c) or a
 * virtio-blk device (virtio_disk.c). store_host.c sees only this. Sectors
 * are 512 bytes: the boot volume's FAT is read in them, and a disk with
 * other logical sectors is refused when it is opened.
 */
#ifndef VMM_STORAGE_BLOCK_H
#define VMM_STORAGE_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot/boot_info.h"

#define BLOCK_SECTOR 512u

struct block_disk {
	void *ctx;
	uint64_t sectors;
	/* Logical sectors a physical one, and LBA 0's place in the first (1, 0: unknown). */
	uint32_t logical_per_physical;
	uint32_t alignment_offset;
	char model[48];
	char where[64];                 /* "the ATA primary master", "AHCI port 0 of 00:1f.2" */
	/* The last failure, in the driver's words; a dead disk fails at once from then on. */
	const char *why;
	bool (*read)(void *ctx, uint64_t lba, uint32_t count, void *buf);
	bool (*write)(void *ctx, uint64_t lba, uint32_t count, const void *buf);
	/* The disk's volatile write cache on the medium. */
	bool (*flush)(void *ctx);
};

/*
 * Memory a driver's controller reads and writes by DMA: whole pages, 1:1
 * mapped, below 4 GiB where the controller cannot reach higher. From the
 * hypervisor's page pool; freed never (the store lives as long as the
 * hypervisor).
 */
struct block_dma {
	void *(*alloc)(void *ctx, uint64_t pages, bool below_4g);
	void *ctx;
	uint64_t identity_map_top;      /* MMIO above it is mapped by map_mmio first */
	int (*map_mmio)(uint64_t base, uint64_t bytes);
	uint64_t ticks_per_ms;          /* the TSC's */
};

/*
 * After a poll saw the device's completion: what the device wrote by DMA
 * (the bounce buffer, a completion entry) is read after it, not before
 * (the CPU keeps loads in order; this keeps the compiler from hoisting).
 */
static inline void block_dma_barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

/* A wait's end by the TSC, and whether it has passed. */
uint64_t block_deadline(const struct block_dma *dma, uint64_t ms);
bool block_expired(uint64_t deadline);

/* Polls a 32-bit MMIO register until (value & mask) == want; false at the deadline. */
bool block_mmio_wait(const volatile uint32_t *reg, uint32_t mask, uint32_t want,
		     uint64_t deadline);

/*
 * The controller's PCI function with memory decoding on (I/O decoding too
 * with io) and INTx off (the drivers poll); bus mastering on or off. A
 * driver turns it off until the controller is quiet: the firmware's
 * queues and FIS areas lie in memory that is the hypervisor's now.
 */
void block_pci_enable(const struct boot_store *where, bool io, bool bus_master);

/*
 * The first bytes of the controller's memory BAR n as a pointer, mapped
 * 1:1 if the BAR lies above the identity map; NULL with why otherwise.
 */
volatile uint8_t *block_pci_mmio(const struct boot_store *where, unsigned n, uint64_t bytes,
				 const struct block_dma *dma, char *why, size_t why_size);

/* why <- the message; false, for `return block_failed(...)`. */
__attribute__((format(printf, 3, 4))) bool block_failed(char *why, size_t why_size,
							 const char *format, ...);

/*
 * A driver's data path: commands of at most max_sectors, each through its
 * bounce buffer (DMA memory it owns, below 4 GiB where need be), so that
 * callers' buffers need no alignment and no address limit.
 */
struct block_io {
	void *ctx;
	const char *driver;             /* "AHCI", "NVMe", "virtio-blk": for the messages */
	uint64_t sectors;
	uint8_t *bounce;
	uint32_t max_sectors;
	char *why;
	size_t why_size;
	/* One command on the bounce buffer's first sectors; false with why set. */
	bool (*command)(void *ctx, bool write, uint64_t lba, uint32_t sectors);
};

/*
 * A block_disk's read and write for a driver with a block_io (the disk's
 * ctx is the block_io): count sectors from lba, checked against the disk's
 * size, then command by command.
 */
bool block_io_read(void *ctx, uint64_t lba, uint32_t count, void *buf);
bool block_io_write(void *ctx, uint64_t lba, uint32_t count, const void *buf);

/* A device's fixed-width string (ATA words, NVMe bytes) without its padding, printable. */
void block_trim_string(const char *in, size_t n, char *out, size_t out_size);

/*
 * Each driver takes the controller the loader named (boot/store_locate.c)
 * and fills *disk; false with why (the controller's state, a timeout, a
 * disk it cannot use).
 */
bool ata_disk_open(const struct boot_store *where, const struct block_dma *dma,
		   struct block_disk *disk, char *why, size_t why_size);
bool ahci_disk_open(const struct boot_store *where, const struct block_dma *dma,
		    struct block_disk *disk, char *why, size_t why_size);
bool nvme_disk_open(const struct boot_store *where, const struct block_dma *dma,
		    struct block_disk *disk, char *why, size_t why_size);
bool virtio_disk_open(const struct boot_store *where, const struct block_dma *dma,
		      struct block_disk *disk, char *why, size_t why_size);

#endif
