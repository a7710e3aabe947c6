/*
 * An ATA disk driven by PIO from root mode (ATA/ATAPI-8 ACS, the command
 * and control blocks of an IDE channel): the store's device where the
 * server (or Bochs, which has nothing else) has a parallel or legacy-mode
 * ATA controller. Polled with interrupts off at the drive (nIEN); every
 * wait is bounded by the TSC. A drive that does not answer in time is
 * reset once; one that stays silent, or times out twice in a row, is dead
 * from then on: its callers get an error at once, never a hang.
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
};

/* What IDENTIFY DEVICE says of a drive, however it came (PIO here, a FIS in ahci.c). */
struct ata_identity {
	bool lba48, flush_ext;
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
