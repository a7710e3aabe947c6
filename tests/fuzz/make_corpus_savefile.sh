#!/usr/bin/env bash
# Writes the seed corpora of fuzz_savefile and fuzz_lz
# (tests/fuzz/corpus/savefile, tests/fuzz/corpus/lz) with the real writer
# (vmm/savefile.c), built here on the host: small save files (one vCPU,
# a device, console history, RAM of zero, text, page-table-like and random
# pages; two vCPUs and four NICs; a skippable record of a later type; a
# disk carried after the memory, as export --with-disk writes it) and
# the compressed blocks of their pages. Run it again after changing the
# format.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/tests/fuzz/corpus}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out/savefile" "$out/lz"
rm -f "$out/savefile"/* "$out/lz"/*

cat >"$tmp/gen.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/savefile.h"

#define PAGE SAVEFILE_PAGE_SIZE

static uint8_t file[1 << 20], ram[16 * PAGE], scratch[SAVEFILE_SCRATCH_SIZE];
static uint8_t block[LZ_COMPRESS_BOUND(LZ_BLOCK_MAX)];
static struct lz_workspace ws;
static const uint8_t pit[] = { 3, 'p', 'i', 't', 1, 0, 2, 0, 0, 0, 0x34, 0x12 };

static void put(const char *path, const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		exit(1);
}

/* kind: 0 zero, 1 text, 2 page tables, 3 random */
static void fill(size_t pages, const int *kinds)
{
	for (size_t p = 0; p < pages; p++)
		for (size_t i = 0; i < PAGE; i++)
			ram[p * PAGE + i] = kinds[p] == 0 ? 0 : kinds[p] == 1 ? "init: mounting /proc\n"[i % 21] :
					    kinds[p] == 2 ? (i % 8 == 0 ? (uint8_t)(p + i / 8) : 0) : (uint8_t)rand();
}

static void save(const char *path, size_t pages, unsigned vcpus, unsigned nics, int later,
		 uint64_t disk_bytes)
{
	struct savefile_buffer buf = { .data = file, .capacity = sizeof(file) };
	struct savefile_header h = { .name = "count", .ram_bytes = pages * PAGE, .vcpus = vcpus,
				     .boot_mode = SAVEFILE_BOOT_LONG, .cpu_features = 0x1f,
				     .saved_at = 1798761600, .nic_count = nics };
	struct savefile_writer w;

	for (unsigned i = 0; i < nics; i++) {
		memcpy(h.nics[i].mac, (uint8_t[]){ 2, 0, 0, 0, 0, (uint8_t)i }, 6);
		strcpy(h.nics[i].network, i % 2 ? "dmz" : "lan");
	}
	if (!savefile_writer_init(&w, savefile_buffer_sink, &buf) || !savefile_write_header(&w, &h))
		exit(1);
	for (unsigned i = 0; i < vcpus; i++)
		if (!savefile_write_vcpu(&w, i, (const uint8_t *)"registers", 9))
			exit(1);
	if (!savefile_write_device(&w, pit, sizeof(pit)) ||
	    !savefile_write_record(&w, SAVEFILE_CONSOLE, 0, (const uint8_t *)"$ ", 2) ||
	    (later && !savefile_write_record(&w, 0x0100, 0, (const uint8_t *)"later", 5)) ||
	    !savefile_write_memory(&w, ram, pages, &ws, scratch))
		exit(1);
	/* The disk: RAM's first pages again, the last one's tail past the size zeroed. */
	if (disk_bytes) {
		uint64_t disk_pages = (disk_bytes + PAGE - 1) / PAGE;
		memset(ram + disk_bytes, 0, disk_pages * PAGE - disk_bytes);
		if (!savefile_write_disk(&w, disk_bytes) ||
		    !savefile_write_disk_pages(&w, ram, disk_pages, &ws, scratch))
			exit(1);
	}
	if (!savefile_finish(&w))
		exit(1);
	put(path, file, buf.size);
}

int main(int argc, char **argv)
{
	static const int small[] = { 0, 1, 0, 0 }, mixed[] = { 0, 1, 2, 3, 1, 1, 0, 2 };
	char path[4096];
	size_t n;

	(void)argc;
	srand(1);
	lz_workspace_init(&ws);
	fill(4, small);
	snprintf(path, sizeof(path), "%s/savefile/small", argv[1]);
	save(path, 4, 1, 1, 0, 0);
	snprintf(path, sizeof(path), "%s/savefile/later_record", argv[1]);
	save(path, 4, 2, 4, 1, 0);
	fill(8, mixed);
	snprintf(path, sizeof(path), "%s/savefile/mixed", argv[1]);
	save(path, 8, 1, 2, 0, 0);
	snprintf(path, sizeof(path), "%s/savefile/with_disk", argv[1]);
	save(path, 8, 1, 1, 0, 3 * PAGE - 1536);
	for (int kind = 1; kind <= 2; kind++) {
		int kinds[4] = { kind, kind, kind, kind };

		fill(4, kinds);
		n = lz_compress(&ws, ram, 4 * PAGE, block, sizeof(block));
		snprintf(path, sizeof(path), "%s/lz/block%d", argv[1], kind);
		put(path, block, n);
		snprintf(path, sizeof(path), "%s/lz/plain%d", argv[1], kind);
		put(path, ram, 300);
	}
	return 0;
}
C
cc -std=c11 -O1 -I"$root" -I"$root/include" "$tmp/gen.c" "$root/vmm/savefile.c" \
	"$root/lib/lz.c" "$root/lib/crc32c.c" "$root/lib/fmt.c" -o "$tmp/gen"
"$tmp/gen" "$out"
du -cb "$out/savefile" "$out/lz" | tail -1
