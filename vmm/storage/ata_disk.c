/*
 * The ATA driver (ata.c) on the machine's ports: a legacy-mode IDE
 * channel's command and control blocks at their fixed addresses, as the
 * loader found them (boot/store_locate.c checks the controller's mode).
 */
#include "vmm/storage/block.h"

#include "lib/fmt.h"
#include "vmm/storage/ata.h"
#include "x86/cpu.h"

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

static uint64_t tsc_now(void *ctx)
{
	(void)ctx;
	return rdtsc();
}

static struct ata_io io = { NULL, port_in8, port_out8, port_in16, port_out16, tsc_now, 0 };
static struct ata_drive drive;

static bool disk_read(void *ctx, uint64_t lba, uint32_t count, void *buf)
{
	return ata_read(ctx, lba, count, buf) == ATA_OK;
}

static bool disk_write(void *ctx, uint64_t lba, uint32_t count, const void *buf)
{
	return ata_write(ctx, lba, count, buf) == ATA_OK;
}

static bool disk_flush(void *ctx)
{
	return ata_flush(ctx) == ATA_OK;
}

bool ata_disk_open(const struct boot_store *where, const struct block_dma *dma,
		   struct block_disk *disk, char *why, size_t why_size)
{
	io.ticks_per_ms = dma->ticks_per_ms;
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
	fmt_snprintf(disk->where, sizeof(disk->where), "the ATA %s %s drive",
		     where->ata_channel ? "secondary" : "primary",
		     where->ata_slave ? "slave" : "master");
	return true;
}
