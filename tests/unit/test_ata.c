/*
 * The ATA PIO driver (vmm/storage/ata.c) against a model of a drive: its
 * task file (48-bit registers as two-deep FIFOs), IDENTIFY, READ/WRITE
 * SECTORS (EXT) a DRQ block per sector, FLUSH CACHE (EXT). Checked:
 * what is written reads back across commands, 28-bit and 48-bit drives,
 * a request beyond the drive never reaches it, a drive's ERR is an error
 * and not a death, one that stays busy times out and is dead from then on
 * (no more port accesses), an empty channel is absent. And bus-master
 * DMA (SFF-8038i) through a model of the controller's engine: the PRD
 * table and bounce buffer it is given, the order of its registers, a DMA
 * error that hands the transfer and the rest to PIO.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "vmm/storage/ata.h"

#define SECTORS 1024
#define CMD ATA_PRIMARY_CMD
#define CTL ATA_PRIMARY_CTL
#define BM 0xc000
/* "Physical" addresses the driver hands the engine; the model maps them to these. */
#define PRD_PHYS 0x1000u
#define BUFFER_PHYS 0x10000u
static uint32_t prd_table[2];
static uint8_t bounce[ATA_DMA_BYTES];

struct reg {
	uint8_t cur, prev;              /* 48-bit: prev is the "previous content" (HOB) */
};

struct fake {
	uint8_t disk[SECTORS][ATA_SECTOR];
	bool lba48, absent, hang;
	bool reset_cures;               /* a software reset ends the hang */
	bool hang_every_command;        /* and the next command hangs again */
	unsigned resets;
	uint64_t bad_lba;               /* ERR on this sector; 0: none */
	struct reg count, lba_low, lba_mid, lba_high;
	uint8_t device, status, error;
	enum { IDLE, DATA_IN, DATA_OUT, DMA_IN, DMA_OUT } phase;
	bool dma_capable;               /* IDENTIFY word 49 bit 8 */
	bool dma_error_once;            /* the engine's next transfer fails (status bit 1) */
	bool dma_abort;                 /* the drive aborts DMA commands (no DMA mode set) */
	uint8_t bm_command, bm_status;
	uint32_t bm_prd;
	unsigned dma_commands, dma_bytes_last;
	uint64_t lba;
	uint32_t left;
	uint16_t buf[256];
	unsigned word;
	unsigned flushes, port_accesses, commands;
	uint8_t last_command;
	uint64_t clock;
};

static struct fake f;

static void put_string(uint16_t *words, const char *s, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		char a = *s ? *s++ : ' ', b = *s ? *s++ : ' ';
		words[i] = (uint16_t)((uint8_t)a << 8 | (uint8_t)b);
	}
}

static void load_sector(void)
{
	if (f.bad_lba && f.lba == f.bad_lba) {
		f.status = 0x41;        /* DRDY | ERR */
		f.error = 0x40;         /* UNC */
		f.phase = IDLE;
		return;
	}
	memcpy(f.buf, f.disk[f.lba], ATA_SECTOR);
	f.word = 0;
	f.status = 0x48;                /* DRDY | DRQ */
}

static void command(uint8_t c)
{
	bool ext = c == 0x24 || c == 0x34;
	uint64_t lba;
	uint32_t count;

	f.commands++;
	f.last_command = c;
	if (f.hang_every_command)
		f.hang = true;
	if (f.hang) {
		f.status = 0x80;
		return;
	}
	if (ext) {
		lba = (uint64_t)f.lba_low.cur | (uint64_t)f.lba_mid.cur << 8 |
		      (uint64_t)f.lba_high.cur << 16 | (uint64_t)f.lba_low.prev << 24 |
		      (uint64_t)f.lba_mid.prev << 32 | (uint64_t)f.lba_high.prev << 40;
		count = (uint32_t)f.count.cur | (uint32_t)f.count.prev << 8;
		if (!count)
			count = 65536;
	} else {
		lba = (uint64_t)f.lba_low.cur | (uint64_t)f.lba_mid.cur << 8 |
		      (uint64_t)f.lba_high.cur << 16 | (uint64_t)(f.device & 0x0f) << 24;
		count = f.count.cur ? f.count.cur : 256;
	}
	switch (c) {
	case 0xc8:
	case 0x25:
	case 0xca:
	case 0x35:
		if ((c == 0x25 || c == 0x35) != f.lba48 || lba + count > SECTORS) {
			f.status = 0x41;
			f.error = 0x10;
			return;
		}
		f.dma_commands++;
		f.lba = lba;
		f.left = count;
		f.phase = c == 0xc8 || c == 0x25 ? DMA_IN : DMA_OUT;
		f.status = 0x48;        /* DRQ until the engine has moved the data */
		return;
	case 0xec:
		memset(f.buf, 0, sizeof(f.buf));
		if (f.dma_capable)
			f.buf[49] = 1u << 8;
		put_string(&f.buf[27], "FAKE ATA DISK", 20);
		f.buf[60] = SECTORS & 0xffff;
		f.buf[61] = SECTORS >> 16;
		if (f.lba48) {
			f.buf[83] = 0x4000 | 1u << 10 | 1u << 13;
			f.buf[100] = SECTORS;
		}
		f.word = 0;
		f.left = 1;
		f.phase = DATA_IN;
		f.lba = SECTORS;        /* nothing to advance through */
		f.status = 0x48;
		return;
	case 0x20:
	case 0x24:
	case 0x30:
	case 0x34:
		if (ext != f.lba48 || lba + count > SECTORS) {
			f.status = 0x41;
			f.error = 0x10; /* IDNF */
			return;
		}
		f.lba = lba;
		f.left = count;
		f.phase = c == 0x20 || c == 0x24 ? DATA_IN : DATA_OUT;
		if (f.phase == DATA_IN)
			load_sector();
		else
			f.word = 0, f.status = 0x48;
		return;
	case 0xe7:
	case 0xea:
		f.flushes++;
		f.status = 0x40;
		return;
	default:
		f.status = 0x41;
		f.error = 0x04;         /* ABRT */
	}
}

static void sector_done(void)
{
	if (f.phase == DATA_OUT) {
		if (f.bad_lba && f.lba == f.bad_lba) {
			f.status = 0x41;
			f.error = 0x40;
			f.phase = IDLE;
			return;
		}
		memcpy(f.disk[f.lba], f.buf, ATA_SECTOR);
	}
	f.lba++;
	if (--f.left == 0) {
		f.phase = IDLE;
		f.status = 0x40;
		return;
	}
	if (f.phase == DATA_IN)
		load_sector();
	else
		f.word = 0;
}

/*
 * Start: the engine takes the one PRD (as the driver must build it: the
 * bounce buffer, the transfer's exact byte count, end of table) and moves
 * the data, in the direction the command register says; a direction
 * against the command moves nothing (the drive waits, as Bochs' does).
 */
static void bm_start(void)
{
	bool to_memory = f.bm_command & 0x08;
	uint32_t bytes = f.left * ATA_SECTOR;

	assert_int_equal(f.bm_prd, PRD_PHYS);
	assert_int_equal(prd_table[0], BUFFER_PHYS);
	assert_int_equal(prd_table[1], 0x80000000u | (bytes & 0xffff));
	f.dma_bytes_last = bytes;
	if (f.phase != (to_memory ? DMA_IN : DMA_OUT))
		return;
	/* The drive ends the command early; the PRD is not used up: Active stays set. */
	if ((f.bad_lba && f.bad_lba >= f.lba && f.bad_lba < f.lba + f.left) || f.dma_abort) {
		f.status = 0x41;
		f.error = f.dma_abort ? 0x04 : 0x40; /* ABRT, UNC */
		f.phase = IDLE;
		return;
	}
	if (f.dma_error_once) {
		f.dma_error_once = false;
		f.bm_status = (uint8_t)((f.bm_status & ~1u) | 0x06);
		f.status = 0x50;
		f.phase = IDLE;
		return;
	}
	if (to_memory)
		memcpy(bounce, f.disk[f.lba], bytes);
	else
		memcpy(f.disk[f.lba], bounce, bytes);
	f.phase = IDLE;
	f.status = 0x50;
	f.bm_status = (uint8_t)((f.bm_status & ~1u) | 0x04);
}

static void bm_out8(uint16_t reg, uint8_t v)
{
	if (reg == 0) {
		if ((v & 1) && !(f.bm_command & 1)) {
			f.bm_command = v;
			f.bm_status |= 1;
			bm_start();
		}
		f.bm_command = v;
		if (!(v & 1))
			f.bm_status &= (uint8_t)~1u;
	} else if (reg == 2) {
		f.bm_status &= (uint8_t)~(v & 0x06); /* write 1 to clear */
	}
}

static uint8_t in8(void *ctx, uint16_t port)
{
	(void)ctx;
	f.port_accesses++;
	if (port == BM + 2)
		return f.bm_status;
	if (port == BM)
		return f.bm_command;
	if (f.absent)
		return 0xff;
	if (port == CTL || port == CMD + 7)
		return f.status;
	if (port == CMD + 1)
		return f.error;
	return 0;
}

static void write_reg(struct reg *r, uint8_t v)
{
	r->prev = r->cur;
	r->cur = v;
}

static void out8(void *ctx, uint16_t port, uint8_t v)
{
	(void)ctx;
	f.port_accesses++;
	if (port >= BM && port < BM + 8) {
		bm_out8((uint16_t)(port - BM), v);
		return;
	}
	if (port == CTL) {
		/* SRST set, then cleared: the drive resets, and is ready unless it stays hung. */
		if (v & 0x04) {
			f.resets++;
			f.phase = IDLE;
			if (f.reset_cures)
				f.hang = false;
		}
		f.status = f.hang ? 0x80 : 0x50;
		return;
	}
	switch (port - CMD) {
	case 2: write_reg(&f.count, v); break;
	case 3: write_reg(&f.lba_low, v); break;
	case 4: write_reg(&f.lba_mid, v); break;
	case 5: write_reg(&f.lba_high, v); break;
	case 6: f.device = v; break;
	case 7: command(v); break;
	}
}

static uint16_t in16(void *ctx, uint16_t port)
{
	(void)ctx;
	f.port_accesses++;
	if (port != CMD || f.phase != DATA_IN)
		return 0xffff;
	uint16_t v = f.buf[f.word++];
	if (f.word == 256)
		sector_done();
	return v;
}

static void out16(void *ctx, uint16_t port, uint16_t v)
{
	(void)ctx;
	f.port_accesses++;
	if (port != CMD || f.phase != DATA_OUT)
		return;
	f.buf[f.word++] = v;
	if (f.word == 256)
		sector_done();
}

static uint64_t now(void *ctx)
{
	(void)ctx;
	return f.clock++;
}

static void out32(void *ctx, uint16_t port, uint32_t v)
{
	(void)ctx;
	f.port_accesses++;
	if (port == BM + 4)
		f.bm_prd = v;
}

static const struct ata_io io = { .in8 = in8, .out8 = out8, .in16 = in16, .out16 = out16,
				  .now = now, .ticks_per_ms = 10 };
static const struct ata_io io_dma = { .in8 = in8, .out8 = out8, .in16 = in16, .out16 = out16,
				      .now = now, .ticks_per_ms = 10, .bus_master = BM,
				      .out32 = out32, .prd = prd_table, .prd_phys = PRD_PHYS,
				      .dma_buffer = bounce, .dma_buffer_phys = BUFFER_PHYS };

static int setup(void **state)
{
	(void)state;
	memset(&f, 0, sizeof(f));
	memset(prd_table, 0, sizeof(prd_table));
	f.lba48 = true;
	f.status = 0x40;
	return 0;
}

static void fill(uint8_t *buf, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(i * 7 + seed + (i >> 9));
}

static void test_identify(void **state)
{
	struct ata_drive d;

	(void)state;
	assert_int_equal(ata_identify(&d, &io, CMD, CTL, false), ATA_OK);
	assert_string_equal(d.ident.model, "FAKE ATA DISK");
	assert_true(d.ident.lba48);
	assert_true(d.ident.flush_ext);
	assert_int_equal(d.ident.sectors, SECTORS);
}

static void round_trip(bool lba48)
{
	static uint8_t out[300 * ATA_SECTOR], in[300 * ATA_SECTOR];
	struct ata_drive d;

	f.lba48 = lba48;
	assert_int_equal(ata_identify(&d, &io, CMD, CTL, false), ATA_OK);
	assert_int_equal(d.ident.lba48, lba48);
	fill(out, sizeof(out), lba48);
	/* 300 sectors: two commands, the first of 256 (a count of 0 in 28-bit). */
	assert_int_equal(ata_write(&d, SECTORS - 300, 300, out), ATA_OK);
	assert_int_equal(f.commands, 3);
	assert_int_equal(ata_flush(&d), ATA_OK);
	assert_int_equal(f.flushes, 1);
	assert_int_equal(f.last_command, lba48 ? 0xea : 0xe7);
	assert_int_equal(ata_read(&d, SECTORS - 300, 300, in), ATA_OK);
	assert_memory_equal(in, out, sizeof(out));
	assert_memory_equal(f.disk[SECTORS - 300], out, sizeof(out));
}

static void test_round_trip_48(void **state)
{
	(void)state;
	round_trip(true);
}

static void test_round_trip_28(void **state)
{
	(void)state;
	round_trip(false);
}

static void test_range(void **state)
{
	uint8_t buf[2 * ATA_SECTOR];
	struct ata_drive d;

	(void)state;
	ata_identify(&d, &io, CMD, CTL, false);
	unsigned commands = f.commands;
	assert_int_equal(ata_read(&d, SECTORS - 1, 2, buf), ATA_RANGE);
	assert_int_equal(ata_write(&d, UINT64_MAX, 1, buf), ATA_RANGE);
	assert_int_equal(f.commands, commands);
	assert_non_null(strstr(d.why, "beyond the drive"));
}

static void test_device_error(void **state)
{
	uint8_t buf[4 * ATA_SECTOR];
	struct ata_drive d;

	(void)state;
	ata_identify(&d, &io, CMD, CTL, false);
	f.bad_lba = 6;
	assert_int_equal(ata_read(&d, 4, 4, buf), ATA_DEVICE_ERROR);
	assert_non_null(strstr(d.why, "error 0x40"));
	assert_false(d.dead);
	assert_int_equal(ata_write(&d, 4, 4, buf), ATA_DEVICE_ERROR);
	f.bad_lba = 0;
	assert_int_equal(ata_read(&d, 4, 4, buf), ATA_OK);
}

static void test_timeout(void **state)
{
	uint8_t buf[ATA_SECTOR];
	struct ata_drive d;

	(void)state;
	ata_identify(&d, &io, CMD, CTL, false);
	f.hang = true;
	assert_int_equal(ata_read(&d, 0, 1, buf), ATA_TIMEOUT);
	assert_true(d.dead);
	assert_non_null(strstr(d.why, "READ SECTORS"));
	assert_int_equal(f.resets, 1);
	assert_non_null(strstr(d.why, "no answer after a reset: dead"));
	/* Bounded: the command's 30 s and the reset's 30 s of this clock, not forever. */
	assert_true(f.clock < 2 * 30000 * 10 + 1000);
	unsigned accesses = f.port_accesses;
	assert_int_equal(ata_read(&d, 0, 1, buf), ATA_DEAD);
	assert_int_equal(ata_write(&d, 0, 1, buf), ATA_DEAD);
	assert_int_equal(ata_flush(&d), ATA_DEAD);
	assert_int_equal(f.port_accesses, accesses);
}

/* A drive that hangs once and answers after a software reset: the command failed, the drive lives. */
static void test_reset_recovers(void **state)
{
	uint8_t buf[ATA_SECTOR];
	struct ata_drive d;

	(void)state;
	ata_identify(&d, &io, CMD, CTL, false);
	f.hang = f.reset_cures = true;
	assert_int_equal(ata_read(&d, 0, 1, buf), ATA_TIMEOUT);
	assert_false(d.dead);
	assert_non_null(strstr(d.why, "answered again after a reset"));
	assert_int_equal(ata_read(&d, 0, 1, buf), ATA_OK);
}

/* Every command hangs, every reset answers: the second timeout in a row is a dead drive. */
static void test_two_timeouts_in_a_row(void **state)
{
	uint8_t buf[ATA_SECTOR];
	struct ata_drive d;

	(void)state;
	ata_identify(&d, &io, CMD, CTL, false);
	f.reset_cures = f.hang_every_command = true;
	assert_int_equal(ata_read(&d, 0, 1, buf), ATA_TIMEOUT);
	assert_false(d.dead);
	assert_int_equal(ata_flush(&d), ATA_TIMEOUT);
	assert_true(d.dead);
	assert_non_null(strstr(d.why, "a second timeout in a row: dead"));
	assert_int_equal(ata_read(&d, 0, 1, buf), ATA_DEAD);
}

/* 300 sectors by DMA: three commands of at most 64 KiB, each one PRD of its exact size. */
static void dma_round_trip(bool lba48)
{
	static uint8_t out[300 * ATA_SECTOR], in[300 * ATA_SECTOR];
	struct ata_drive d;

	f.lba48 = lba48;
	f.dma_capable = true;
	assert_int_equal(ata_identify(&d, &io_dma, CMD, CTL, false), ATA_OK);
	assert_true(d.dma);
	fill(out, sizeof(out), 3);
	assert_int_equal(ata_write(&d, SECTORS - 300, 300, out), ATA_OK);
	assert_int_equal(f.dma_commands, 3);
	assert_int_equal(f.dma_bytes_last, 44 * ATA_SECTOR);
	assert_int_equal(f.last_command, lba48 ? 0x35 : 0xca);
	assert_memory_equal(f.disk[SECTORS - 300], out, sizeof(out));
	assert_int_equal(ata_read(&d, SECTORS - 300, 300, in), ATA_OK);
	assert_int_equal(f.last_command, lba48 ? 0x25 : 0xc8);
	assert_memory_equal(in, out, sizeof(out));
	/* The engine is stopped and its status acknowledged after each. */
	assert_int_equal(f.bm_command & 1, 0);
	assert_int_equal(f.bm_status & 0x07, 0);
	assert_true(d.dma);
	assert_string_equal(d.dma_off_why, "");
}

static void test_dma_round_trip_48(void **state)
{
	(void)state;
	dma_round_trip(true);
}

static void test_dma_round_trip_28(void **state)
{
	(void)state;
	dma_round_trip(false);
}

/* DMA needs both: the controller's bus master and a drive that offers it. */
static void test_dma_needs_both(void **state)
{
	struct ata_drive d;

	(void)state;
	f.dma_capable = true;
	assert_int_equal(ata_identify(&d, &io, CMD, CTL, false), ATA_OK);
	assert_false(d.dma);
	f.dma_capable = false;
	assert_int_equal(ata_identify(&d, &io_dma, CMD, CTL, false), ATA_OK);
	assert_false(d.dma);
	uint8_t buf[ATA_SECTOR] = { 1 };
	assert_int_equal(ata_write(&d, 9, 1, buf), ATA_OK);
	assert_int_equal(f.dma_commands, 0);
	assert_int_equal(f.disk[9][0], 1);
}

/* The engine's error: the same transfer again by PIO, and PIO from then on. */
static void test_dma_error_hands_over_to_pio(void **state)
{
	static uint8_t out[8 * ATA_SECTOR], in[8 * ATA_SECTOR];
	struct ata_drive d;

	(void)state;
	f.dma_capable = true;
	ata_identify(&d, &io_dma, CMD, CTL, false);
	fill(out, sizeof(out), 9);
	f.dma_error_once = true;
	assert_int_equal(ata_write(&d, 100, 8, out), ATA_OK);
	assert_false(d.dma);
	assert_non_null(strstr(d.dma_off_why, "bus master reports an error"));
	assert_memory_equal(f.disk[100], out, sizeof(out));
	unsigned dma_commands = f.dma_commands;
	assert_int_equal(ata_read(&d, 100, 8, in), ATA_OK);
	assert_int_equal(f.dma_commands, dma_commands);
	assert_int_equal(f.last_command, 0x24);
	assert_memory_equal(in, out, sizeof(out));
}

/*
 * A medium error under DMA ends at once with the drive's error (not after
 * the 30-s wait: the engine stays Active), and DMA stays on; the drive
 * aborting DMA commands hands the transfer to PIO.
 */
static void test_dma_drive_errors(void **state)
{
	static uint8_t buf[8 * ATA_SECTOR];
	struct ata_drive d;

	(void)state;
	f.dma_capable = true;
	ata_identify(&d, &io_dma, CMD, CTL, false);
	f.bad_lba = 103;
	uint64_t clock = f.clock;
	assert_int_equal(ata_read(&d, 100, 8, buf), ATA_DEVICE_ERROR);
	assert_true(f.clock - clock < 1000);
	assert_non_null(strstr(d.why, "error 0x40"));
	assert_false(d.dead);
	assert_true(d.dma);
	f.bad_lba = 0;
	assert_int_equal(ata_read(&d, 100, 8, buf), ATA_OK);
	f.dma_abort = true;
	fill(buf, sizeof(buf), 5);
	assert_int_equal(ata_write(&d, 200, 8, buf), ATA_OK);
	assert_false(d.dma);
	assert_non_null(strstr(d.dma_off_why, "error 0x04"));
	assert_memory_equal(f.disk[200], buf, sizeof(buf));
}

static void test_absent(void **state)
{
	struct ata_drive d;

	(void)state;
	f.absent = true;
	assert_int_equal(ata_identify(&d, &io, CMD, CTL, false), ATA_ABSENT);
	assert_false(d.dead);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_identify, setup),
		cmocka_unit_test_setup(test_round_trip_48, setup),
		cmocka_unit_test_setup(test_round_trip_28, setup),
		cmocka_unit_test_setup(test_range, setup),
		cmocka_unit_test_setup(test_device_error, setup),
		cmocka_unit_test_setup(test_timeout, setup),
		cmocka_unit_test_setup(test_reset_recovers, setup),
		cmocka_unit_test_setup(test_two_timeouts_in_a_row, setup),
		cmocka_unit_test_setup(test_dma_round_trip_48, setup),
		cmocka_unit_test_setup(test_dma_round_trip_28, setup),
		cmocka_unit_test_setup(test_dma_needs_both, setup),
		cmocka_unit_test_setup(test_dma_error_hands_over_to_pio, setup),
		cmocka_unit_test_setup(test_dma_drive_errors, setup),
		cmocka_unit_test_setup(test_absent, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
