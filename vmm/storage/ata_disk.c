/*
 * The ATA driver (ata.c) on the machine's ports: a legacy-mode IDE
 * channel's command and control blocks at their fixed addresses, as the
 * loader found them (boot/store_locate.c checks the controller's mode),
 * and the controller's bus-master registers in its BAR4 (SFF-8038i).
 */
#include "vmm/storage/block.h"

#include "lib/fmt.h"
#include "vmm/log.h"
#include "vmm/storage/ata.h"
#include "x86/cpu.h"
#include "x86/pci.h"

/* SFF-8038i: BAR4 holds 16 ports, the primary channel's 8 then the secondary's. */
#define BUS_MASTER_BAR 4
#define BUS_MASTER_CHANNEL_PORTS 8
#define DMA_WINDOW (64u * 1024u)

static uint8_t port_in8(void *ctx, uint16_t port)
{
	(void)ctx;
	return inb(port);
}

static void port_out8(void *ctx, uint16_t port, uint8_t v)
{
	(void)ctx;
	outb(port, v);
}

static uint16_t port_in16(void *ctx, uint16_t port)
{
	(void)ctx;
	return inw(port);
}

static void port_out16(void *ctx, uint16_t port, uint16_t v)
{
	(void)ctx;
	outw(port, v);
}

static void port_out32(void *ctx, uint16_t port, uint32_t v)
{
	(void)ctx;
	outl(port, v);
}

static uint64_t tsc_now(void *ctx)
{
	(void)ctx;
	return rdtsc();
}

static struct ata_io io = { .in8 = port_in8, .out8 = port_out8, .in16 = port_in16,
			    .out16 = port_out16, .now = tsc_now, .out32 = port_out32 };
static struct ata_drive drive;
static bool dma_off_said;

/* The moment DMA failed and PIO took over (ata.c), said once. */
static bool said(bool ok)
{
	if (drive.dma_off_why[0] && !dma_off_said) {
		dma_off_said = true;
		log_warn("store: bus-master DMA failed, PIO from now on: %s", drive.dma_off_why);
	}
	return ok;
}

static bool disk_read(void *ctx, uint64_t lba, uint32_t count, void *buf)
{
	return said(ata_read(ctx, lba, count, buf) == ATA_OK);
}

static bool disk_write(void *ctx, uint64_t lba, uint32_t count, const void *buf)
{
	return said(ata_write(ctx, lba, count, buf) == ATA_OK);
}

/*
 * The channel's bus-master registers and DMA memory in io, or none (PIO):
 * BAR4 must be an I/O BAR the firmware assigned. The bounce buffer is the
 * 64-KiB-aligned half of 128 KiB below 4 GiB (a PRD's buffer may not
 * cross a 64-KiB boundary), the PRD table in the rest.
 */
static const char *bus_master_setup(const struct boot_store *where, const struct block_dma *dma)
{
	struct pci_address a = { where->pci_bus, where->pci_device, where->pci_function };
	uint32_t bar = pci_read32(a, PCI_BAR0 + 4 * BUS_MASTER_BAR);

	uint32_t ports = bar & ~3u;
	if (!(bar & 1) || !ports || ports > 0xffffu - 2 * BUS_MASTER_CHANNEL_PORTS)
		return "no bus-master I/O BAR";
	uint8_t *window = dma->alloc(dma->ctx, 2 * DMA_WINDOW / 4096, true);
	if (!window)
		return "no memory below 4 GiB for DMA";
	uintptr_t base = (uintptr_t)window;
	uintptr_t buffer = (base + DMA_WINDOW - 1) & ~(uintptr_t)(DMA_WINDOW - 1);
	uintptr_t prd = buffer == base ? base + DMA_WINDOW : base;
	/*
	 * Both channels' engines stopped and their Error and Interrupt bits
	 * cleared before bus mastering is on: the firmware's Start bit and PRD
	 * pointer point into memory that is the hypervisor's now.
	 */
	for (unsigned channel = 0; channel < 2; channel++) {
		uint16_t port = (uint16_t)(ports + channel * BUS_MASTER_CHANNEL_PORTS);
		outb(port + ATA_BM_COMMAND, 0);
		outb(port + ATA_BM_STATUS, ATA_BM_ST_ERROR | ATA_BM_ST_INTERRUPT);
	}
	io.bus_master = (uint16_t)(ports + where->ata_channel * BUS_MASTER_CHANNEL_PORTS);
	io.dma_buffer = (uint8_t *)buffer;
	io.dma_buffer_phys = (uint32_t)buffer;
	io.prd = (uint32_t *)prd;
	io.prd_phys = (uint32_t)prd;
	return NULL;
}

static bool disk_flush(void *ctx)
{
	return ata_flush(ctx) == ATA_OK;
}

bool ata_disk_open(const struct boot_store *where, const struct block_dma *dma,
		   struct block_disk *disk, char *why, size_t why_size)
{
	io.ticks_per_ms = dma->ticks_per_ms;
	block_pci_enable(where, true, false);
	const char *no_dma = bus_master_setup(where, dma);
	block_pci_enable(where, true, !no_dma);
	if (ata_identify(&drive, &io, where->ata_channel ? ATA_SECONDARY_CMD : ATA_PRIMARY_CMD,
			 where->ata_channel ? ATA_SECONDARY_CTL : ATA_PRIMARY_CTL,
			 where->ata_slave) != ATA_OK) {
		fmt_snprintf(why, why_size, "%s", drive.why);
		return false;
	}
	*disk = (struct block_disk){ .ctx = &drive, .sectors = drive.ident.sectors,
				     .logical_per_physical = drive.ident.logical_per_physical,
				     .alignment_offset = drive.ident.alignment_offset,
				     .why = drive.why, .read = disk_read, .write = disk_write,
				     .flush = disk_flush };
	fmt_snprintf(disk->model, sizeof(disk->model), "%s", drive.ident.model);
	fmt_snprintf(disk->where, sizeof(disk->where), "the ATA %s %s drive (%s)",
		     where->ata_channel ? "secondary" : "primary",
		     where->ata_slave ? "slave" : "master",
		     drive.dma ? "bus-master DMA" : "PIO");
	if (!drive.dma)
		log_info("store: ATA by PIO: %s", no_dma ? no_dma : "the drive offers no DMA");
	return true;
}
