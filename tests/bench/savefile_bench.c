/*
 * Host benchmark of the save file's memory encoding (vmm/savefile.c,
 * lib/lz.c) on one core, over a 64-MiB guest RAM image with a page mix
 * like a booted Linux guest's: zero pages (45 %), machine code and
 * read-only data (20 %, the pages of a real program: /bin/bash, else this
 * benchmark), page tables (10 %), heap-like pages of small structures
 * with kernel pointers (15 %) and random bytes (10 %, what encrypted or
 * already compressed data looks like). Each kind fills contiguous ranges,
 * as memory does. The mix is an estimate, not a measured guest: the
 * Bochs figure save_ratio_idle_linux (issue 13) will be the real one.
 *
 * Prints:
 *   BENCH savefile_compress_mbps <n> MB/s     lz_compress over the non-zero
 *                                             pages, in 64-KiB runs
 *   BENCH savefile_decompress_mbps <n> MB/s   lz_decompress of the same
 *   BENCH savefile_ratio_mixed <r> ratio      save file bytes / RAM bytes,
 *                                             the whole writer (zero runs,
 *                                             raw fallback, record headers)
 *
 * Build: gcc -std=c11 -O2 -I. -Iinclude tests/bench/savefile_bench.c
 *        vmm/savefile.c lib/lz.c lib/crc32c.c lib/fmt.c
 */
#define _POSIX_C_SOURCE 199309L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmm/savefile.h"

#define PAGE SAVEFILE_PAGE_SIZE
#define RAM_PAGES (64u * 256u)
#define RUN_BYTES LZ_BLOCK_MAX
#define TRIALS 3 /* the best one counts */

static uint8_t ram[RAM_PAGES * PAGE], scratch[SAVEFILE_SCRATCH_SIZE];
static uint8_t packed[RAM_PAGES / SAVEFILE_RUN_PAGES_MAX][LZ_COMPRESS_BOUND(RUN_BYTES)];
static size_t packed_size[RAM_PAGES / SAVEFILE_RUN_PAGES_MAX];
static uint8_t out[RUN_BYTES];
static struct lz_workspace ws;
static uint32_t rng = 2026;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint32_t random32(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static size_t load_program(uint8_t *dst, size_t max)
{
	static const char *const candidates[] = { "/bin/bash", "/proc/self/exe" };

	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
		FILE *f = fopen(candidates[i], "rb");
		size_t n;

		if (!f)
			continue;
		n = fread(dst, 1, max, f);
		fclose(f);
		if (n >= 16 * PAGE)
			return n - n % PAGE;
	}
	fprintf(stderr, "savefile_bench: no program to take code pages from\n");
	exit(1);
}

static void fill_pages(void)
{
	static uint8_t program[8u << 20];
	size_t program_bytes = load_program(program, sizeof(program)), code_at = 0;

	/* Ranges of 64 pages, each of one kind, in the proportions above. */
	for (size_t p = 0; p < RAM_PAGES; p++) {
		uint8_t *page = ram + p * PAGE;
		unsigned kind = (unsigned)(p / 64 * 7919 % 20);

		if (kind < 9) {
			memset(page, 0, PAGE);
		} else if (kind < 13) {
			memcpy(page, program + code_at, PAGE);
			code_at = (code_at + PAGE) % program_bytes;
		} else if (kind < 15) {
			for (size_t e = 0; e < PAGE / 8; e++) {
				uint64_t pte = e % 3 ? 0x100000ull * (p + e) | 0x63 : 0;

				memcpy(page + e * 8, &pte, 8);
			}
		} else if (kind < 18) {
			for (size_t e = 0; e < PAGE / 8; e++) {
				uint64_t v = e % 4 == 0 ? 0xffff888000000000ull | (random32() & 0xfffff) << 6 :
					     e % 4 == 1 ? random32() % 512 : 0;

				memcpy(page + e * 8, &v, 8);
			}
		} else {
			for (size_t i = 0; i < PAGE; i += 4) {
				uint32_t v = random32();

				memcpy(page + i, &v, 4);
			}
		}
	}
}

static bool zero_run(const uint8_t *run)
{
	for (size_t i = 0; i < RUN_BYTES; i++)
		if (run[i])
			return false;
	return true;
}

static bool discard(void *ctx, const uint8_t *data, size_t size)
{
	(void)data;
	*(size_t *)ctx += size;
	return true;
}

int main(void)
{
	double best_c = 1e9, best_d = 1e9;
	size_t data_bytes = 0, file_bytes = 0;
	struct savefile_header h = { .name = "bench", .ram_bytes = sizeof(ram), .vcpus = 1 };
	struct savefile_writer w;

	fill_pages();
	lz_workspace_init(&ws);
	for (int t = 0; t < TRIALS; t++) {
		double start = now_s();

		data_bytes = 0;
		for (size_t r = 0; r < RAM_PAGES / SAVEFILE_RUN_PAGES_MAX; r++) {
			const uint8_t *run = ram + r * RUN_BYTES;

			packed_size[r] = 0;
			if (zero_run(run))
				continue;
			packed_size[r] = lz_compress(&ws, run, RUN_BYTES, packed[r], sizeof(packed[r]));
			data_bytes += RUN_BYTES;
		}
		if (now_s() - start < best_c)
			best_c = now_s() - start;
		start = now_s();
		for (size_t r = 0; r < RAM_PAGES / SAVEFILE_RUN_PAGES_MAX; r++)
			if (packed_size[r] &&
			    (lz_decompress(packed[r], packed_size[r], out, RUN_BYTES) != LZ_OK ||
			     memcmp(out, ram + r * RUN_BYTES, RUN_BYTES) != 0)) {
				fprintf(stderr, "savefile_bench: run %zu does not decompress\n", r);
				return 1;
			}
		if (now_s() - start < best_d)
			best_d = now_s() - start;
	}

	if (!savefile_writer_init(&w, discard, &file_bytes) || !savefile_write_header(&w, &h) ||
	    !savefile_write_vcpu(&w, 0, (const uint8_t *)"", 0) ||
	    !savefile_write_memory(&w, ram, RAM_PAGES, &ws, scratch) || !savefile_finish(&w)) {
		fprintf(stderr, "savefile_bench: %s\n", w.error.text);
		return 1;
	}
	printf("BENCH savefile_compress_mbps %.0f MB/s\n", (double)data_bytes / best_c / 1e6);
	printf("BENCH savefile_decompress_mbps %.0f MB/s\n", (double)data_bytes / best_d / 1e6);
	printf("BENCH savefile_ratio_mixed %.3f ratio\n", (double)file_bytes / (double)sizeof(ram));
	return 0;
}
