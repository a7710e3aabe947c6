/*
 * An ATA disk driven from root mode (ATA/ATAPI-8 ACS, the command and
 * control blocks of an IDE channel): the store's device where the server
 * (or Bochs, which has nothing else) has a parallel or legacy-mode ATA
 * controller. By bus-master DMA (SFF-8038i: the PCI IDE controller's
 * BAR4, a PRD table) where the controller and the drive offer it, else by
 * PIO. Polled with interrupts off at the drive (nIEN); every wait is
 * bounded by the TSC. A drive that does not answer in time is reset once;
 * one that stays silent, or times out twice in a row, is dead from then
 * on: its callers get an error at once, never a hang. A DMA transfer that
 * fails for DMA's own reasons (the controller's error bit, a timeout the
 * drive survives, the drive's ABRT or interface CRC error) is done again
 * by PIO, and DMA stays off from then on: a controller whose timing the
 * firmware did not set up for DMA still serves by PIO.
 *
 * Plain C over an I/O interface, so the unit tests run it against a
 * model of a drive (tests/unit/test_ata.c).
 */
#ifndef VMM_STORAGE_ATA_H
#define VMM_STORAGE_ATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ATA_SECTOR 512u
/* Sectors per command: READ/WRITE SECTORS EXT take up to 65536, a PIO burst need not. */
#define ATA_SECTORS_PER_COMMAND 256u

/* The legacy (compatibility-mode) channels of a PCI IDE controller. */
#define ATA_PRIMARY_CMD 0x1f0
#define ATA_PRIMARY_CTL 0x3f6
#define ATA_SECONDARY_CMD 0x170
#define ATA_SECONDARY_CTL 0x376

struct ata_io {
	void *ctx;
	uint8_t (*in8)(void *ctx, uint16_t port);
	void (*out8)(void *ctx, uint16_t port, uint8_t value);
	uint16_t (*in16)(void *ctx, uint16_t port);
	void (*out16)(void *ctx, uint16_t port, uint16_t value);
	uint64_t (*now)(void *ctx);     /* a clock in ticks */
	uint64_t ticks_per_ms;
	/*
	 * The channel's bus-master registers (BAR4, +8 for the secondary);
	 * 0: PIO only. The PRD table and the bounce buffer of ATA_DMA_BYTES
	 * (not crossing a 64-KiB boundary) lie below 4 GiB, as the 32-bit
	 * PRD addresses need.
	 */
	uint16_t bus_master;
	void (*out32)(void *ctx, uint16_t port, uint32_t value);
	uint32_t *prd;
	uint32_t prd_phys;
	uint8_t *dma_buffer;
	uint32_t dma_buffer_phys;
};

/* SFF-8038i bus-master registers (offsets from the channel's base in BAR4). */
#define ATA_BM_COMMAND 0
#define ATA_BM_STATUS 2
#define ATA_BM_PRD_TABLE 4
#define ATA_BM_CMD_START 0x01
#define ATA_BM_CMD_TO_MEMORY 0x08       /* the drive's data into memory: a read */
#define ATA_BM_ST_ACTIVE 0x01
#define ATA_BM_ST_ERROR 0x02            /* write 1 to clear */
#define ATA_BM_ST_INTERRUPT 0x04        /* write 1 to clear */

/* One PRD entry's most: a DMA command moves up to 64 KiB through the bounce buffer. */
#define ATA_DMA_BYTES 65536u

/* What IDENTIFY DEVICE says of a drive, however it came (PIO here, a FIS in ahci.c). */
struct ata_identity {
	bool lba48, flush_ext;
	bool dma;                       /* word 49 bit 8: READ/WRITE DMA (EXT) */
	uint64_t sectors;
	/* Words 106 and 209: logical sectors a physical one, and LBA 0's place in the first. */
	uint32_t logical_per_physical;
	uint32_t alignment_offset;
	char model[41];
};

/* IDENTIFY DEVICE's 256 words (ACS-3 7.12.7); false when they give no usable size. */
bool ata_parse_identify(const uint16_t id[256], struct ata_identity *out);

struct ata_drive {
	const struct ata_io *io;
	uint16_t cmd, ctl;              /* command and control block bases */
	bool slave;
	struct ata_identity ident;
	/* No answer after a reset, or two timeouts in a row: nothing more is sent to it. */
	bool dead;
	bool timed_out_last;            /* the last command timed out (and the reset worked) */
	bool dma;                       /* transfers by bus-master DMA (see above) */
	char dma_off_why[128];          /* why a DMA transfer failed and PIO took over; "" */
	char why[128];                  /* the last failure */
};

enum ata_result {
	ATA_OK = 0,
	ATA_ABSENT,                     /* nothing answers at the channel */
	ATA_DEVICE_ERROR,               /* the drive said ERR or DF */
	ATA_TIMEOUT,                    /* it stopped answering; reset, or dead (see dead) */
	ATA_DEAD,
	ATA_RANGE,                      /* beyond the drive's sectors */
};

/* Selects the drive, reads IDENTIFY DEVICE and sets it up for polling. */
enum ata_result ata_identify(struct ata_drive *d, const struct ata_io *io, uint16_t cmd,
			     uint16_t ctl, bool slave);

enum ata_result ata_read(struct ata_drive *d, uint64_t lba, uint32_t count, void *buf);
enum ata_result ata_write(struct ata_drive *d, uint64_t lba, uint32_t count, const void *buf);

/* FLUSH CACHE (EXT): the drive's write cache on the medium. */
enum ata_result ata_flush(struct ata_drive *d);

#endif
