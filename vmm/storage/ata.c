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

/* Bits 7 and 5 are obsolete and set, as drives of every age accept (ACS-3 7.1.6.2). */
#define DEV_LBA 0xe0
#define DEV_SLAVE 0x10
#define CTL_NIEN 0x02
#define CTL_SRST 0x04
#define ST_DRDY 0x40
/* Error register bits that say a DMA transfer itself failed, not the medium. */
#define ERR_ABRT 0x04
#define ERR_ICRC 0x80

#define CMD_READ_DMA 0xc8
#define CMD_READ_DMA_EXT 0x25
#define CMD_WRITE_DMA 0xca
#define CMD_WRITE_DMA_EXT 0x35
#define CMD_READ_SECTORS 0x20
#define CMD_READ_SECTORS_EXT 0x24
#define CMD_WRITE_SECTORS 0x30
#define CMD_WRITE_SECTORS_EXT 0x34
#define CMD_FLUSH_CACHE 0xe7
#define CMD_FLUSH_CACHE_EXT 0xea
#define CMD_IDENTIFY 0xec

/*
 * A drive in Standby spins up before its first media access (tens of
 * seconds); ACS-3 warns that FLUSH CACHE may take longer than 30 s.
 */
#define COMMAND_TIMEOUT_MS 30000
#define FLUSH_TIMEOUT_MS 60000
/* After SRST: at least 5 us with it set (ATA-8 ATA/ATAPI-8 Parallel Transport 9.2). */
#define RESET_HOLD_US 10
#define RESET_SETTLE_MS 2
#define LBA28_LIMIT (1ULL << 28)

#define PRD_END_OF_TABLE 0x80000000u

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
	fmt_snprintf(d->why, sizeof(d->why), "ata %s %s: %s (status 0x%02x, error 0x%02x)",
		     d->cmd == ATA_PRIMARY_CMD ? "primary" : "secondary",
		     d->slave ? "slave" : "master", what, status,
		     r == ATA_DEVICE_ERROR ? in8(d, REG_ERROR) : 0);
	return r;
}

/*
 * Polls the alternate status until (status & mask) == want, for at most
 * timeout_ms; *status is the last seen. false when time ran out.
 */
static bool poll_status(const struct ata_drive *d, uint8_t mask, uint8_t want,
			bool stop_on_error, unsigned timeout_ms, uint8_t *status)
{
	uint64_t start = d->io->now(d->io->ctx);
	uint64_t limit = (uint64_t)timeout_ms * d->io->ticks_per_ms;

	for (;;) {
		uint8_t s = alt_status(d);
		*status = s;
		if ((s & mask) == want ||
		    (stop_on_error && !(s & ST_BSY) && (s & (ST_ERR | ST_DF))))
			return true;
		if (d->io->now(d->io->ctx) - start > limit)
			return false;
	}
}

static void spin(const struct ata_drive *d, uint64_t ticks)
{
	uint64_t start = d->io->now(d->io->ctx);

	while (d->io->now(d->io->ctx) - start < ticks)
		;
}

/*
 * A drive that did not answer in time gets one software reset (SRST in
 * the control block: held 5 us, then 2 ms before the status means
 * anything, and DEV is 0 after it, so the drive is selected again before
 * DRDY is awaited; ATA/ATAPI-8 parallel transport, the reset protocol).
 * It resets both drives of the channel, as any host's error recovery
 * does. If the drive comes back only the command failed, once: every
 * wait stalls the hypervisor (PIO runs in the exit that asked for it), so
 * a second timeout in a row, or no answer after the reset, is a dead drive.
 */
static enum ata_result timed_out(struct ata_drive *d, const char *what, uint8_t status)
{
	uint8_t after;
	bool back;

	d->io->out8(d->io->ctx, d->ctl, CTL_NIEN | CTL_SRST);
	spin(d, d->io->ticks_per_ms * RESET_HOLD_US / 1000 + 1);
	d->io->out8(d->io->ctx, d->ctl, CTL_NIEN);
	spin(d, d->io->ticks_per_ms * RESET_SETTLE_MS);
	back = poll_status(d, ST_BSY, 0, false, COMMAND_TIMEOUT_MS, &after);
	if (back) {
		out8(d, REG_DEVICE, (uint8_t)(DEV_LBA | (d->slave ? DEV_SLAVE : 0)));
		settle(d);
		back = poll_status(d, ST_BSY | ST_DRDY, ST_DRDY, false, COMMAND_TIMEOUT_MS, &after);
	}
	d->dead = !back || d->timed_out_last;
	d->timed_out_last = true;
	failed(d, ATA_TIMEOUT, what, status);
	size_t n = strlen(d->why);
	fmt_snprintf(d->why + n, sizeof(d->why) - n, !back ? "; no answer after a reset: dead"
		     : d->dead ? "; a second timeout in a row: dead"
			       : "; it answered again after a reset");
	return ATA_TIMEOUT;
}

/*
 * Waits until BSY clears and (when want_drq) DRQ is set, or ERR/DF shows:
 * ERR and DF belong to the command just issued.
 */
static enum ata_result wait_ready(struct ata_drive *d, bool want_drq, unsigned timeout_ms,
				  const char *what, uint8_t *status)
{
	uint8_t want = want_drq ? ST_DRQ : 0;

	if (!poll_status(d, ST_BSY | want, want, true, timeout_ms, status))
		return timed_out(d, what, *status);
	if (*status & (ST_ERR | ST_DF))
		return failed(d, ATA_DEVICE_ERROR, what, *status);
	return ATA_OK;
}

/*
 * The drive selected, with LBA addressing, and ready for a command: the
 * device register is written only with BSY and DRQ clear, then DRDY is
 * awaited (ACS-3, the device selection protocol). ERR and DF left over
 * from the last command mean nothing here.
 */
static enum ata_result select_drive(struct ata_drive *d, uint8_t lba_top, const char *what)
{
	uint8_t status;

	if (!poll_status(d, ST_BSY | ST_DRQ, 0, false, COMMAND_TIMEOUT_MS, &status))
		return timed_out(d, what, status);
	out8(d, REG_DEVICE, (uint8_t)(DEV_LBA | (d->slave ? DEV_SLAVE : 0) | (lba_top & 0x0f)));
	settle(d);
	if (!poll_status(d, ST_BSY | ST_DRDY, ST_DRDY, false, COMMAND_TIMEOUT_MS, &status))
		return timed_out(d, what, status);
	return ATA_OK;
}

/* The task file for count sectors at lba, then the command (48-bit: high bytes first). */
static void issue(struct ata_drive *d, uint8_t command, uint64_t lba, uint32_t count)
{
	if (d->ident.lba48) {
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

bool ata_parse_identify(const uint16_t id[256], struct ata_identity *out)
{
	*out = (struct ata_identity){ 0 };
	identify_string(&id[27], 20, out->model);
	/* Word 83 holds something only with bits 15:14 = 01b; bit 10: 48-bit, bit 13: FLUSH CACHE EXT. */
	uint16_t w83 = (id[83] & 0xc000) == 0x4000 ? id[83] : 0;
	out->dma = id[49] & (1u << 8);
	out->lba48 = w83 & (1u << 10);
	out->flush_ext = w83 & (1u << 13);
	out->logical_per_physical = (id[106] & 0xc000) == 0x4000 && (id[106] & (1u << 13))
					    ? 1u << (id[106] & 0x0f) : 1;
	out->alignment_offset = (id[209] & 0xc000) == 0x4000 ? id[209] & 0x3fff : 0;
	if (out->lba48)
		out->sectors = (uint64_t)id[100] | (uint64_t)id[101] << 16 |
			       (uint64_t)id[102] << 32 | (uint64_t)id[103] << 48;
	else
		out->sectors = (uint64_t)id[60] | (uint64_t)id[61] << 16;
	return out->sectors && (out->lba48 || out->sectors < LBA28_LIMIT);
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
	if ((r = wait_ready(d, true, COMMAND_TIMEOUT_MS, "IDENTIFY DEVICE", &status)) != ATA_OK)
		return r;
	for (unsigned i = 0; i < 256; i++)
		id[i] = io->in16(io->ctx, (uint16_t)(cmd + REG_DATA));
	if (!ata_parse_identify(id, &d->ident))
		return failed(d, ATA_DEVICE_ERROR, "IDENTIFY gives no usable size", status);
	d->dma = io->bus_master && d->ident.dma;
	return ATA_OK;
}

static enum ata_result check(struct ata_drive *d, uint64_t lba, uint32_t count)
{
	if (d->dead)
		return ATA_DEAD;
	if (lba > d->ident.sectors || count > d->ident.sectors - lba) {
		fmt_snprintf(d->why, sizeof(d->why), "sectors %llu+%u beyond the drive's %llu",
			     (unsigned long long)lba, count, (unsigned long long)d->ident.sectors);
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

	if ((r = select_drive(d, d->ident.lba48 ? 0 : (uint8_t)(lba >> 24), what)) != ATA_OK)
		return r;
	issue(d, write ? (d->ident.lba48 ? CMD_WRITE_SECTORS_EXT : CMD_WRITE_SECTORS)
		       : (d->ident.lba48 ? CMD_READ_SECTORS_EXT : CMD_READ_SECTORS),
	      lba, count == ATA_SECTORS_PER_COMMAND && !d->ident.lba48 ? 0 : count);
	for (uint32_t s = 0; s < count; s++, buf += ATA_SECTOR) {
		if ((r = wait_ready(d, true, COMMAND_TIMEOUT_MS, what, &status)) != ATA_OK)
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
	if ((r = wait_ready(d, false, COMMAND_TIMEOUT_MS, what, &status)) != ATA_OK)
		return r;
	/* The regular status read acknowledges the command's end. */
	in8(d, REG_STATUS);
	d->timed_out_last = false;
	return ATA_OK;
}

static uint8_t bm_in8(const struct ata_drive *d, unsigned reg)
{
	return d->io->in8(d->io->ctx, (uint16_t)(d->io->bus_master + reg));
}

static void bm_out8(const struct ata_drive *d, unsigned reg, uint8_t v)
{
	d->io->out8(d->io->ctx, (uint16_t)(d->io->bus_master + reg), v);
}

/*
 * One DMA command of at most ATA_DMA_BYTES through the bounce buffer,
 * in the order SFF-8038i gives: the engine stopped, the PRD table's
 * address, its status bits cleared, the direction; the command to the
 * drive; then Start. The end is the engine idle (Active clear, or its
 * Interrupt bit where the controller sets it with nIEN) and the drive
 * neither busy nor asking for data, or the drive ending the command
 * with ERR or DF (Active then stays set: the PRD was not used up, and
 * with nIEN no interrupt says so). The PRD's byte count is the
 * transfer's exactly: a controller may leave a longer table's rest
 * unfilled. *dma_fault says the failure is DMA's own (the engine's error,
 * a timeout, the drive's ABRT or interface CRC error), which PIO may not
 * share; a medium error is the drive's either way.
 */
static enum ata_result transfer_dma(struct ata_drive *d, bool write, uint64_t lba,
				    uint32_t count, uint8_t *buf, bool *dma_fault)
{
	const char *what = write ? "WRITE DMA" : "READ DMA";
	const struct ata_io *io = d->io;
	uint32_t bytes = count * ATA_SECTOR;
	uint8_t direction = write ? 0 : ATA_BM_CMD_TO_MEMORY, status, bm = 0;
	enum ata_result r;

	*dma_fault = false;
	if (write)
		memcpy(io->dma_buffer, buf, bytes);
	io->prd[0] = io->dma_buffer_phys;
	io->prd[1] = PRD_END_OF_TABLE | (bytes & 0xffffu); /* 0: 64 KiB */
	bm_out8(d, ATA_BM_COMMAND, 0);
	io->out32(io->ctx, (uint16_t)(io->bus_master + ATA_BM_PRD_TABLE), io->prd_phys);
	bm_out8(d, ATA_BM_STATUS,
		(uint8_t)(bm_in8(d, ATA_BM_STATUS) | ATA_BM_ST_ERROR | ATA_BM_ST_INTERRUPT));
	bm_out8(d, ATA_BM_COMMAND, direction);
	if ((r = select_drive(d, d->ident.lba48 ? 0 : (uint8_t)(lba >> 24), what)) != ATA_OK)
		return r;
	issue(d, write ? (d->ident.lba48 ? CMD_WRITE_DMA_EXT : CMD_WRITE_DMA)
		       : (d->ident.lba48 ? CMD_READ_DMA_EXT : CMD_READ_DMA),
	      lba, count == ATA_SECTORS_PER_COMMAND && !d->ident.lba48 ? 0 : count);
	bm_out8(d, ATA_BM_COMMAND, (uint8_t)(direction | ATA_BM_CMD_START));

	uint64_t start = io->now(io->ctx), limit = (uint64_t)COMMAND_TIMEOUT_MS * io->ticks_per_ms;
	bool done = false;
	*dma_fault = true;
	while (!done) {
		bm = bm_in8(d, ATA_BM_STATUS);
		status = alt_status(d);
		done = (!(status & ST_BSY) && (status & (ST_ERR | ST_DF))) ||
		       ((!(bm & ATA_BM_ST_ACTIVE) || (bm & ATA_BM_ST_INTERRUPT)) &&
			!(status & (ST_BSY | ST_DRQ)));
		if (!done && io->now(io->ctx) - start > limit)
			break;
	}
	bm_out8(d, ATA_BM_COMMAND, direction);
	if (!done)
		return timed_out(d, what, status);
	status = in8(d, REG_STATUS); /* acknowledges the command's end */
	bm_out8(d, ATA_BM_STATUS, (uint8_t)(bm | ATA_BM_ST_ERROR | ATA_BM_ST_INTERRUPT));
	if (status & (ST_ERR | ST_DF)) {
		*dma_fault = (in8(d, REG_ERROR) & (ERR_ABRT | ERR_ICRC)) != 0;
		return failed(d, ATA_DEVICE_ERROR, what, status);
	}
	if (bm & ATA_BM_ST_ERROR) {
		fmt_snprintf(d->why, sizeof(d->why), "ata: %s: the bus master reports an error "
			     "(status 0x%02x)", what, bm);
		return ATA_DEVICE_ERROR;
	}
	*dma_fault = false;
	/* What the engine wrote is read after its end was seen (block.h's rule for DMA). */
	__asm__ volatile("" ::: "memory");
	if (!write)
		memcpy(buf, io->dma_buffer, bytes);
	d->timed_out_last = false;
	return ATA_OK;
}

/*
 * A transfer DMA itself failed again by PIO, and PIO from then on; a
 * medium error is the caller's, and a drive that died meanwhile stays
 * dead. The reason stays in dma_off_why.
 */
static enum ata_result transfer_by_dma_or_pio(struct ata_drive *d, bool write, uint64_t lba,
					      uint32_t count, uint8_t *buf)
{
	bool dma_fault;

	if (!d->dma)
		return transfer(d, write, lba, count, buf);
	enum ata_result r = transfer_dma(d, write, lba, count, buf, &dma_fault);
	if (r == ATA_OK || !dma_fault || d->dead)
		return r;
	d->dma = false;
	fmt_snprintf(d->dma_off_why, sizeof(d->dma_off_why), "%s", d->why);
	return transfer(d, write, lba, count, buf);
}

static enum ata_result transfer_all(struct ata_drive *d, bool write, uint64_t lba,
				    uint32_t count, uint8_t *buf)
{
	enum ata_result r = check(d, lba, count);

	while (r == ATA_OK && count) {
		uint32_t most = d->dma ? ATA_DMA_BYTES / ATA_SECTOR : ATA_SECTORS_PER_COMMAND;
		uint32_t n = count < most ? count : most;
		/* 28-bit commands cannot cross sector 2^28. */
		if (!d->ident.lba48 && lba + n > LBA28_LIMIT)
			return check(d, LBA28_LIMIT, 1);
		r = transfer_by_dma_or_pio(d, write, lba, n, buf);
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
	out8(d, REG_COMMAND, d->ident.flush_ext ? CMD_FLUSH_CACHE_EXT : CMD_FLUSH_CACHE);
	settle(d);
	if ((r = wait_ready(d, false, FLUSH_TIMEOUT_MS, "FLUSH CACHE", &status)) != ATA_OK)
		return r;
	in8(d, REG_STATUS);
	d->timed_out_last = false;
	return ATA_OK;
}
