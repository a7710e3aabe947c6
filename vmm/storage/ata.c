#include "vmm/storage/ata.h"

#include "lib/fmt.h"

#include <string.h>

/* Command block registers (offsets from cmd) and the control block's one. */
#define REG_DATA 0
#define REG_ERROR 1
#define REG_COUNT 2
#define REG_LBA_LOW 3
#define REG_LBA_MID 4
#define REG_LBA_HIGH 5
#define REG_DEVICE 6
#define REG_STATUS 7                    /* read */
#define REG_COMMAND 7                   /* write */

#define ST_ERR 0x01
#define ST_DRQ 0x08
#define ST_DF 0x20
#define ST_BSY 0x80

#define DEV_LBA 0x40
#define DEV_SLAVE 0x10
#define CTL_NIEN 0x02

#define CMD_READ_SECTORS 0x20
#define CMD_READ_SECTORS_EXT 0x24
#define CMD_WRITE_SECTORS 0x30
#define CMD_WRITE_SECTORS_EXT 0x34
#define CMD_FLUSH_CACHE 0xe7
#define CMD_FLUSH_CACHE_EXT 0xea
#define CMD_IDENTIFY 0xec

/* ACS-3: most commands end within seconds; a flush may write a whole cache. */
#define COMMAND_TIMEOUT_MS 5000
#define FLUSH_TIMEOUT_MS 30000
#define LBA28_LIMIT (1ULL << 28)

static uint8_t in8(const struct ata_drive *d, unsigned reg)
{
	return d->io->in8(d->io->ctx, (uint16_t)(d->cmd + reg));
}

static void out8(const struct ata_drive *d, unsigned reg, uint8_t v)
{
	d->io->out8(d->io->ctx, (uint16_t)(d->cmd + reg), v);
}

/* The alternate status: reading it does not acknowledge anything. */
static uint8_t alt_status(const struct ata_drive *d)
{
	return d->io->in8(d->io->ctx, d->ctl);
}

/* ATA's 400-ns settle after a write to the device or command register: four status reads. */
static void settle(const struct ata_drive *d)
{
	for (int i = 0; i < 4; i++)
		alt_status(d);
}

static enum ata_result failed(struct ata_drive *d, enum ata_result r, const char *what,
			      uint8_t status)
{
	if (r == ATA_TIMEOUT)
		d->dead = true;
	fmt_snprintf(d->why, sizeof(d->why), "ata %s %s: %s (status 0x%02x, error 0x%02x)",
		     d->cmd == ATA_PRIMARY_CMD ? "primary" : "secondary",
		     d->slave ? "slave" : "master", what, status,
		     r == ATA_DEVICE_ERROR ? in8(d, REG_ERROR) : 0);
	return r;
}

/*
 * Waits until BSY clears and (when want_drq) DRQ is set, or ERR/DF shows;
 * *status is the last status seen. ERR and DF belong to the command just
 * issued: before one (selecting the drive) the last command's linger and
 * mean nothing, so a wait for an idle drive passes check_errors false.
 */
static enum ata_result wait_ready(struct ata_drive *d, bool want_drq, bool check_errors,
				  unsigned timeout_ms, const char *what, uint8_t *status)
{
	uint64_t start = d->io->now(d->io->ctx);
	uint64_t limit = (uint64_t)timeout_ms * d->io->ticks_per_ms;

	for (;;) {
		uint8_t s = alt_status(d);
		*status = s;
		if (!(s & ST_BSY)) {
			if (check_errors && (s & (ST_ERR | ST_DF)))
				return failed(d, ATA_DEVICE_ERROR, what, s);
			if (!want_drq || (s & ST_DRQ))
				return ATA_OK;
		}
		if (d->io->now(d->io->ctx) - start > limit)
			return failed(d, ATA_TIMEOUT, what, s);
	}
}

/* The drive selected, with LBA addressing, and idle. */
static enum ata_result select_drive(struct ata_drive *d, uint8_t lba_top, const char *what)
{
	uint8_t status;

	out8(d, REG_DEVICE, (uint8_t)(DEV_LBA | (d->slave ? DEV_SLAVE : 0) | (lba_top & 0x0f)));
	settle(d);
	return wait_ready(d, false, false, COMMAND_TIMEOUT_MS, what, &status);
}

/* The task file for count sectors at lba, then the command (48-bit: high bytes first). */
static void issue(struct ata_drive *d, uint8_t command, uint64_t lba, uint32_t count)
{
	if (d->lba48) {
		out8(d, REG_COUNT, (uint8_t)(count >> 8));
		out8(d, REG_LBA_LOW, (uint8_t)(lba >> 24));
		out8(d, REG_LBA_MID, (uint8_t)(lba >> 32));
		out8(d, REG_LBA_HIGH, (uint8_t)(lba >> 40));
	}
	out8(d, REG_COUNT, (uint8_t)count);
	out8(d, REG_LBA_LOW, (uint8_t)lba);
	out8(d, REG_LBA_MID, (uint8_t)(lba >> 8));
	out8(d, REG_LBA_HIGH, (uint8_t)(lba >> 16));
	out8(d, REG_COMMAND, command);
	settle(d);
}

/* IDENTIFY's string words: two characters a word, the first in the high byte. */
static void identify_string(const uint16_t *words, unsigned n, char *out)
{
	unsigned len = 0;

	for (unsigned i = 0; i < n; i++) {
		out[len++] = (char)(words[i] >> 8);
		out[len++] = (char)words[i];
	}
	while (len && (out[len - 1] == ' ' || out[len - 1] == '\0'))
		len--;
	for (unsigned i = 0; i < len; i++)
		if (out[i] < 0x20 || out[i] > 0x7e)
			out[i] = '?';
	out[len] = '\0';
}

enum ata_result ata_identify(struct ata_drive *d, const struct ata_io *io, uint16_t cmd,
			     uint16_t ctl, bool slave)
{
	uint16_t id[256];
	uint8_t status;
	enum ata_result r;

	*d = (struct ata_drive){ .io = io, .cmd = cmd, .ctl = ctl, .slave = slave };
	/* A floating bus reads 0xff; no drive there is no drive, not a dead one. */
	if (alt_status(d) == 0xff)
		return failed(d, ATA_ABSENT, "nothing on the channel", 0xff);
	io->out8(io->ctx, ctl, CTL_NIEN);
	if ((r = select_drive(d, 0, "selecting it")) != ATA_OK)
		return r;
	out8(d, REG_COMMAND, CMD_IDENTIFY);
	settle(d);
	if (alt_status(d) == 0)
		return failed(d, ATA_ABSENT, "no drive answers IDENTIFY", 0);
	if ((r = wait_ready(d, true, true, COMMAND_TIMEOUT_MS, "IDENTIFY DEVICE", &status)) != ATA_OK)
		return r;
	for (unsigned i = 0; i < 256; i++)
		id[i] = io->in16(io->ctx, (uint16_t)(cmd + REG_DATA));
	identify_string(&id[27], 20, d->model);
	/* Word 83 bit 10: the 48-bit feature set; bit 13: FLUSH CACHE EXT. */
	d->lba48 = id[83] & (1u << 10);
	d->flush_ext = id[83] & (1u << 13);
	if (d->lba48)
		d->sectors = (uint64_t)id[100] | (uint64_t)id[101] << 16 | (uint64_t)id[102] << 32 |
			     (uint64_t)id[103] << 48;
	else
		d->sectors = (uint64_t)id[60] | (uint64_t)id[61] << 16;
	if (!d->sectors || (!d->lba48 && d->sectors > LBA28_LIMIT))
		return failed(d, ATA_DEVICE_ERROR, "IDENTIFY gives no usable size", status);
	return ATA_OK;
}

static enum ata_result check(struct ata_drive *d, uint64_t lba, uint32_t count)
{
	if (d->dead)
		return ATA_DEAD;
	if (lba > d->sectors || count > d->sectors - lba) {
		fmt_snprintf(d->why, sizeof(d->why), "sectors %llu+%u beyond the drive's %llu",
			     (unsigned long long)lba, count, (unsigned long long)d->sectors);
		return ATA_RANGE;
	}
	return ATA_OK;
}

/* One command of at most ATA_SECTORS_PER_COMMAND sectors, a DRQ block per sector. */
static enum ata_result transfer(struct ata_drive *d, bool write, uint64_t lba, uint32_t count,
				uint8_t *buf)
{
	const char *what = write ? "WRITE SECTORS" : "READ SECTORS";
	uint8_t status;
	enum ata_result r;

	if ((r = select_drive(d, d->lba48 ? 0 : (uint8_t)(lba >> 24), what)) != ATA_OK)
		return r;
	issue(d, write ? (d->lba48 ? CMD_WRITE_SECTORS_EXT : CMD_WRITE_SECTORS)
		       : (d->lba48 ? CMD_READ_SECTORS_EXT : CMD_READ_SECTORS),
	      lba, count == ATA_SECTORS_PER_COMMAND && !d->lba48 ? 0 : count);
	for (uint32_t s = 0; s < count; s++, buf += ATA_SECTOR) {
		if ((r = wait_ready(d, true, true, COMMAND_TIMEOUT_MS, what, &status)) != ATA_OK)
			return r;
		for (unsigned w = 0; w < ATA_SECTOR / 2; w++) {
			uint16_t v;
			if (write) {
				memcpy(&v, buf + 2 * w, 2);
				d->io->out16(d->io->ctx, (uint16_t)(d->cmd + REG_DATA), v);
			} else {
				v = d->io->in16(d->io->ctx, (uint16_t)(d->cmd + REG_DATA));
				memcpy(buf + 2 * w, &v, 2);
			}
		}
		settle(d);
	}
	/* The last sector written (or read) and the command ended: ERR now is its failure. */
	if ((r = wait_ready(d, false, true, COMMAND_TIMEOUT_MS, what, &status)) != ATA_OK)
		return r;
	/* The regular status read acknowledges the command's end. */
	in8(d, REG_STATUS);
	return ATA_OK;
}

static enum ata_result transfer_all(struct ata_drive *d, bool write, uint64_t lba,
				    uint32_t count, uint8_t *buf)
{
	enum ata_result r = check(d, lba, count);

	while (r == ATA_OK && count) {
		uint32_t n = count < ATA_SECTORS_PER_COMMAND ? count : ATA_SECTORS_PER_COMMAND;
		/* 28-bit commands cannot cross sector 2^28. */
		if (!d->lba48 && lba + n > LBA28_LIMIT)
			return check(d, LBA28_LIMIT, 1);
		r = transfer(d, write, lba, n, buf);
		lba += n;
		count -= n;
		buf += (size_t)n * ATA_SECTOR;
	}
	return r;
}

enum ata_result ata_read(struct ata_drive *d, uint64_t lba, uint32_t count, void *buf)
{
	return transfer_all(d, false, lba, count, buf);
}

enum ata_result ata_write(struct ata_drive *d, uint64_t lba, uint32_t count, const void *buf)
{
	/* The buffer is only read: the cast serves the shared loop. */
	return transfer_all(d, true, lba, count, (uint8_t *)(uintptr_t)buf);
}

enum ata_result ata_flush(struct ata_drive *d)
{
	uint8_t status;
	enum ata_result r;

	if (d->dead)
		return ATA_DEAD;
	if ((r = select_drive(d, 0, "FLUSH CACHE")) != ATA_OK)
		return r;
	out8(d, REG_COMMAND, d->flush_ext ? CMD_FLUSH_CACHE_EXT : CMD_FLUSH_CACHE);
	settle(d);
	if ((r = wait_ready(d, false, true, FLUSH_TIMEOUT_MS, "FLUSH CACHE", &status)) != ATA_OK)
		return r;
	in8(d, REG_STATUS);
	return ATA_OK;
}
