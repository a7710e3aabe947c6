/*
 * A SATA disk on one port of an AHCI controller (Serial ATA AHCI 1.3.1),
 * polled: one command slot, one PRD entry into a bounce buffer the driver
 * owns (below 4 GiB, as an HBA without 64-bit addressing needs). Only the
 * store's port is touched: the controller is not reset, other ports and
 * their disks keep whatever state the firmware left. A command that fails
 * restarts the port (10.7.1); one that times out, twice in a row, leaves
 * the disk dead, its callers told at once.
 */
#include "vmm/storage/block.h"

#include "lib/fmt.h"
#include "vmm/storage/ata.h"
#include "x86/cpu.h"

#include <string.h>

/* Generic host control (3.1). */
#define HBA_CAP 0x00
#define HBA_CAP_S64A (1u << 31)
#define HBA_GHC 0x04
#define HBA_GHC_AE (1u << 31)
#define HBA_PI 0x0c
#define HBA_CAP2 0x24
#define HBA_CAP2_BOH (1u << 0)
#define HBA_BOHC 0x28
#define BOHC_BOS (1u << 0)
#define BOHC_OOS (1u << 1)
#define BOHC_BB (1u << 4)

/* Port registers (3.3), from 100h + port * 80h. */
#define PORT_BASE(p) (0x100 + (p) * 0x80)
#define PX_CLB 0x00
#define PX_CLBU 0x04
#define PX_FB 0x08
#define PX_FBU 0x0c
#define PX_IS 0x10
#define PX_IS_TFES (1u << 30)
/* Fatal: task file error, host bus fatal and data errors, interface fatal error (3.3.5). */
#define PX_IS_FATAL (PX_IS_TFES | 1u << 29 | 1u << 28 | 1u << 27)
#define PX_IE 0x14
#define PX_CMD 0x18
#define PX_CMD_ST (1u << 0)
#define PX_CMD_SUD (1u << 1)
#define PX_CMD_POD (1u << 2)
#define PX_CMD_FRE (1u << 4)
#define PX_CMD_FR (1u << 14)
#define PX_CMD_CR (1u << 15)
#define PX_TFD 0x20
#define PX_SSTS 0x28
#define PX_SCTL 0x2c
#define PX_SERR 0x30
#define PX_CI 0x38

#define TFD_ERR 0x01
#define TFD_DRQ 0x08
#define TFD_DF 0x20
#define TFD_BSY 0x80
#define SSTS_DET_PRESENT 3u             /* device present, PHY communication established */

#define FIS_TYPE_REG_H2D 0x27
#define FIS_COMMAND 0x80                /* the C bit: the FIS carries a command */
#define DEVICE_LBA 0x40

#define CMD_READ_DMA_EXT 0x25
#define CMD_WRITE_DMA_EXT 0x35
#define CMD_FLUSH_CACHE 0xe7
#define CMD_FLUSH_CACHE_EXT 0xea
#define CMD_IDENTIFY 0xec

/* A command header (4.2.2) and a PRD entry (4.2.3). */
struct command_header {
	uint32_t flags;                 /* CFL in DWORDs, W, PRDTL */
	volatile uint32_t prdbc;        /* bytes transferred, written by the HBA */
	uint32_t ctba, ctbau;
	uint32_t reserved[4];
};
_Static_assert(sizeof(struct command_header) == 32, "AHCI 4.2.2");

struct prd {
	uint32_t dba, dbau, reserved, dbc;
};
_Static_assert(sizeof(struct prd) == 16, "AHCI 4.2.3");

/* The command table (4.2.3): the command FIS, the ATAPI command, then the PRDT at 80h. */
struct command_table {
	uint8_t cfis[64];
	uint8_t acmd[16];
	uint8_t reserved[48];
	struct prd prdt[1];
};
_Static_assert(sizeof(struct command_table) == 0x90, "AHCI 4.2.3");

/* One page: the command list (1 KiB, 1-KiB aligned), the received FISes (256 bytes), the table. */
#define CL_OFFSET 0
#define FB_OFFSET 1024
#define CT_OFFSET 2048

#define BOUNCE_BYTES (64 * 1024)
#define BOUNCE_SECTORS (BOUNCE_BYTES / BLOCK_SECTOR)
/* ACS-3 warns a FLUSH CACHE may take longer than 30 s; a drive spinning up takes tens. */
#define COMMAND_TIMEOUT_MS 30000
#define FLUSH_TIMEOUT_MS 60000
#define PORT_STOP_MS 500                /* 10.1.2: CR and FR clear within 500 ms */

static struct ahci_port {
	const struct block_dma *dma;
	volatile uint8_t *abar, *port;
	unsigned number;
	struct command_header *headers;
	struct command_table *table;
	uint8_t *bounce;
	struct ata_identity ident;
	struct block_io io;
	bool dead, timed_out_last;
	char why[128];
} ahci;

static uint32_t rd(volatile uint8_t *base, unsigned reg)
{
	return *(volatile uint32_t *)(base + reg);
}

static void wr(volatile uint8_t *base, unsigned reg, uint32_t v)
{
	*(volatile uint32_t *)(base + reg) = v;
}

static volatile uint32_t *reg_of(volatile uint8_t *base, unsigned reg)
{
	return (volatile uint32_t *)(base + reg);
}

/* 10.1.2: ST off and the command list stopped, then FRE off and FIS reception stopped. */
static bool stop_port(struct ahci_port *a, unsigned number)
{
	volatile uint8_t *port = a->abar + PORT_BASE(number);

	wr(port, PX_CMD, rd(port, PX_CMD) & ~PX_CMD_ST);
	if (!block_mmio_wait(reg_of(port, PX_CMD), PX_CMD_CR, 0,
			     block_deadline(a->dma, PORT_STOP_MS)))
		return block_failed(a->why, sizeof(a->why), "AHCI port %u: its command list does "
				    "not stop (PxCMD %08x)", number, rd(port, PX_CMD));
	wr(port, PX_CMD, rd(port, PX_CMD) & ~PX_CMD_FRE);
	if (!block_mmio_wait(reg_of(port, PX_CMD), PX_CMD_FR, 0,
			     block_deadline(a->dma, PORT_STOP_MS)))
		return block_failed(a->why, sizeof(a->why), "AHCI port %u: its FIS reception does "
				    "not stop (PxCMD %08x)", number, rd(port, PX_CMD));
	return true;
}

static bool port_stop(struct ahci_port *a)
{
	return stop_port(a, a->number);
}

/*
 * 10.4.2: a COMRESET (SControl.DET = 1 for at least 1 ms, then 0) when the
 * device stays busy, until the PHY is back and the device ready.
 */
static bool port_comreset(struct ahci_port *a)
{
	wr(a->port, PX_SCTL, (rd(a->port, PX_SCTL) & ~0xfu) | 1);
	uint64_t until = block_deadline(a->dma, 2);
	while (!block_expired(until))
		cpu_relax();
	wr(a->port, PX_SCTL, rd(a->port, PX_SCTL) & ~0xfu);
	if (!block_mmio_wait(reg_of(a->port, PX_SSTS), 0xf, SSTS_DET_PRESENT,
			     block_deadline(a->dma, 1000)))
		return block_failed(a->why, sizeof(a->why), "AHCI port %u: no device after a "
				    "COMRESET (PxSSTS %08x)", a->number, rd(a->port, PX_SSTS));
	wr(a->port, PX_SERR, 0xffffffffu);
	return true;
}

/* Ours from now: the command list and FIS area set, errors cleared, the engine started. */
static bool port_start(struct ahci_port *a)
{
	uint64_t page = (uint64_t)(uintptr_t)a->headers;

	if (!port_stop(a))
		return false;
	wr(a->port, PX_CLB, (uint32_t)(page + CL_OFFSET));
	wr(a->port, PX_CLBU, (uint32_t)((page + CL_OFFSET) >> 32));
	wr(a->port, PX_FB, (uint32_t)(page + FB_OFFSET));
	wr(a->port, PX_FBU, (uint32_t)((page + FB_OFFSET) >> 32));
	wr(a->port, PX_IE, 0);
	wr(a->port, PX_SERR, 0xffffffffu);
	wr(a->port, PX_IS, 0xffffffffu);
	wr(a->port, PX_CMD, rd(a->port, PX_CMD) | PX_CMD_FRE | PX_CMD_SUD | PX_CMD_POD);
	if ((rd(a->port, PX_SSTS) & 0xf) != SSTS_DET_PRESENT && !port_comreset(a))
		return false;
	/* 10.3.1: ST may be set only while the device is neither busy nor asking for data. */
	if (!block_mmio_wait(reg_of(a->port, PX_TFD), TFD_BSY | TFD_DRQ, 0,
			     block_deadline(a->dma, 1000)) &&
	    (!port_comreset(a) ||
	     !block_mmio_wait(reg_of(a->port, PX_TFD), TFD_BSY | TFD_DRQ, 0,
			      block_deadline(a->dma, COMMAND_TIMEOUT_MS))))
		return block_failed(a->why, sizeof(a->why), "AHCI port %u: the device stays busy "
				    "(PxTFD %08x)", a->number, rd(a->port, PX_TFD));
	wr(a->port, PX_CMD, rd(a->port, PX_CMD) | PX_CMD_ST);
	return true;
}

/*
 * One command in slot 0: the H2D register FIS (SATA 3.x, 10.5.6), data
 * through the bounce buffer. Waits for its end; an error restarts the
 * port, a timeout too (with a COMRESET), and two timeouts in a row are
 * the end of the disk.
 */
static bool run(struct ahci_port *a, const char *what, uint8_t command, uint64_t lba,
		uint32_t sectors, bool write, uint32_t bytes, unsigned timeout_ms)
{
	uint8_t *fis = a->table->cfis;
	uint64_t table = (uint64_t)(uintptr_t)a->table, data = (uint64_t)(uintptr_t)a->bounce;

	if (a->dead)
		return false;
	memset(a->table, 0, sizeof(*a->table));
	fis[0] = FIS_TYPE_REG_H2D;
	fis[1] = FIS_COMMAND;
	fis[2] = command;
	for (unsigned i = 0; i < 3; i++) {
		fis[4 + i] = (uint8_t)(lba >> (8 * i));
		fis[8 + i] = (uint8_t)(lba >> (24 + 8 * i));
	}
	fis[7] = DEVICE_LBA;
	fis[12] = (uint8_t)sectors;
	fis[13] = (uint8_t)(sectors >> 8);
	if (bytes)
		a->table->prdt[0] = (struct prd){ (uint32_t)data, (uint32_t)(data >> 32), 0,
						  bytes - 1 };
	a->headers[0] = (struct command_header){ .flags = 5u | (write ? 1u << 6 : 0) |
								  (bytes ? 1u << 16 : 0),
						 .ctba = (uint32_t)table,
						 .ctbau = (uint32_t)(table >> 32) };
	wr(a->port, PX_IS, 0xffffffffu);
	/* The table and header in memory before the HBA is told (x86 keeps stores in order). */
	__asm__ volatile("" ::: "memory");
	wr(a->port, PX_CI, 1);

	uint64_t deadline = block_deadline(a->dma, timeout_ms);
	while ((rd(a->port, PX_CI) & 1) && !(rd(a->port, PX_IS) & PX_IS_FATAL) &&
	       !block_expired(deadline))
		cpu_relax();
	block_dma_barrier();
	uint32_t tfd = rd(a->port, PX_TFD), is = rd(a->port, PX_IS);
	if (rd(a->port, PX_CI) & 1 && !(is & PX_IS_FATAL)) {
		bool again = a->timed_out_last;
		a->timed_out_last = true;
		block_failed(a->why, sizeof(a->why), "AHCI: %s timed out (PxTFD %08x)", what, tfd);
		if (again || !port_stop(a) || !port_comreset(a) || !port_start(a))
			a->dead = true;
		if (a->dead)
			fmt_snprintf(a->why + strlen(a->why), sizeof(a->why) - strlen(a->why),
				     "; the disk is dead until the next boot");
		return false;
	}
	a->timed_out_last = false;
	/* PRDBC: a data command that moved fewer bytes than asked did not do its work. */
	if ((is & PX_IS_FATAL) || (tfd & (TFD_ERR | TFD_DF)) ||
	    (bytes && a->headers[0].prdbc != bytes)) {
		block_failed(a->why, sizeof(a->why), "AHCI: %s failed (PxIS %08x, PxTFD %08x, %u "
			     "of %u bytes)", what, is, tfd, a->headers[0].prdbc, bytes);
		if (!port_start(a))
			a->dead = true;
		return false;
	}
	return true;
}

static bool data_command(void *ctx, bool write, uint64_t lba, uint32_t sectors)
{
	return run(ctx, write ? "a write" : "a read", write ? CMD_WRITE_DMA_EXT : CMD_READ_DMA_EXT,
		   lba, sectors, write, sectors * BLOCK_SECTOR, COMMAND_TIMEOUT_MS);
}

static bool disk_flush(void *ctx)
{
	struct ahci_port *a = ((struct block_io *)ctx)->ctx;

	return run(a, "a flush", a->ident.flush_ext ? CMD_FLUSH_CACHE_EXT : CMD_FLUSH_CACHE, 0, 0,
		   false, 0, FLUSH_TIMEOUT_MS);
}

/*
 * BIOS/OS handoff (10.6): firmware that owns the HBA is asked to let go,
 * and given the two seconds the specification allows when it is busy.
 */
static void take_from_firmware(struct ahci_port *a)
{
	if (!(rd(a->abar, HBA_CAP2) & HBA_CAP2_BOH))
		return;
	wr(a->abar, HBA_BOHC, rd(a->abar, HBA_BOHC) | BOHC_OOS);
	block_mmio_wait(reg_of(a->abar, HBA_BOHC), BOHC_BOS, 0, block_deadline(a->dma, 25));
	if (rd(a->abar, HBA_BOHC) & BOHC_BB)
		block_mmio_wait(reg_of(a->abar, HBA_BOHC), BOHC_BOS, 0,
				block_deadline(a->dma, 2000));
}

bool ahci_disk_open(const struct boot_store *where, const struct block_dma *dma,
		    struct block_disk *disk, char *why, size_t why_size)
{
	struct ahci_port *a = &ahci;
	uint16_t id[256];

	*a = (struct ahci_port){ .dma = dma, .number = where->sata_port };
	block_pci_enable(where, false, false);
	if (!(a->abar = block_pci_mmio(where, 5, PORT_BASE(32), dma, why, why_size)))
		return false;
	/* 10.1.2: AHCI mode before any other register, for an HBA that also speaks legacy. */
	wr(a->abar, HBA_GHC, rd(a->abar, HBA_GHC) | HBA_GHC_AE);
	uint32_t implemented = rd(a->abar, HBA_PI);
	if (where->sata_port >= 32 || !(implemented & (1u << where->sata_port))) {
		fmt_snprintf(why, why_size, "AHCI: port %u is not implemented (PI %08x)",
			     where->sata_port, implemented);
		return false;
	}
	take_from_firmware(a);
	/*
	 * Every port the firmware may have left running stops, before bus
	 * mastering is back: their command lists and FIS areas lie in memory
	 * that is the hypervisor's now. Only the store's port starts again.
	 */
	for (unsigned p = 0; p < 32; p++)
		if (implemented & (1u << p) && !stop_port(a, p)) {
			fmt_snprintf(why, why_size, "%s", a->why);
			return false;
		}
	block_pci_enable(where, false, true);
	a->port = a->abar + PORT_BASE(where->sata_port);
	bool high_ok = rd(a->abar, HBA_CAP) & HBA_CAP_S64A;
	uint8_t *page = dma->alloc(dma->ctx, 1, !high_ok);
	a->bounce = dma->alloc(dma->ctx, BOUNCE_BYTES / 4096, !high_ok);
	if (!page || !a->bounce) {
		fmt_snprintf(why, why_size, "AHCI: no DMA memory%s", high_ok ? "" : " below 4 GiB");
		return false;
	}
	a->headers = (struct command_header *)(page + CL_OFFSET);
	a->table = (struct command_table *)(page + CT_OFFSET);
	if (!port_start(a) || !run(a, "IDENTIFY", CMD_IDENTIFY, 0, 0, false, sizeof(id),
						 COMMAND_TIMEOUT_MS)) {
		fmt_snprintf(why, why_size, "%s", a->why);
		return false;
	}
	memcpy(id, a->bounce, sizeof(id));
	if (!ata_parse_identify(id, &a->ident) || !a->ident.lba48) {
		fmt_snprintf(why, why_size, "AHCI: IDENTIFY gives no usable size (or no 48-bit "
			     "addressing, which DMA EXT commands need)");
		return false;
	}
	a->io = (struct block_io){ a, "AHCI", a->ident.sectors, a->bounce, BOUNCE_SECTORS, a->why,
				   sizeof(a->why), data_command };
	*disk = (struct block_disk){ .ctx = &a->io, .sectors = a->ident.sectors,
				     .logical_per_physical = a->ident.logical_per_physical,
				     .alignment_offset = a->ident.alignment_offset, .why = a->why,
				     .read = block_io_read, .write = block_io_write,
				     .flush = disk_flush };
	fmt_snprintf(disk->model, sizeof(disk->model), "%s", a->ident.model);
	fmt_snprintf(disk->where, sizeof(disk->where), "SATA port %u of AHCI %02x:%02x.%u",
		     where->sata_port, where->pci_bus, where->pci_device, where->pci_function);
	return true;
}
