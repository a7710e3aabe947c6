/*
 * libFuzzer target: the save file reader (vmm/savefile.c). Each input is
 * opened twice: as it is (the checksums refuse almost every mutation),
 * then with its checksums, footer length and record count made right
 * (tests/unit/savefile_reseal.h), so mutations reach the rules behind
 * them. A file the reader accepts is walked record by record and every
 * memory run is decoded into a page buffer, as a restore would; nothing
 * may read or write out of bounds, and an accepted file's runs must
 * cover exactly its RAM. The header alone (an import's first chunk) is
 * read too, with the configuration record after it, and must agree with a
 * whole file's.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/savefile_reseal.h"
#include "vmm/savefile.h"

#define FILE_MAX (1u << 20)

static uint8_t copy[FILE_MAX], pages[LZ_BLOCK_MAX];

static void walk(const uint8_t *file, size_t size)
{
	struct savefile_reader r;
	struct savefile_record rec;
	struct savefile_run run;
	struct savefile_error err;
	struct savefile_header header;
	uint64_t covered = 0, disk_covered = 0;

	struct savefile_record config;
	bool header_read = savefile_read_header(file, size, &header, &err);
	if (!header_read && err.text[0] == '\0')
		abort();
	if (header_read && savefile_read_config(file, size, &config) &&
	    (config.type != SAVEFILE_CONFIG || config.payload + config.size > file + size))
		abort();
	if (!savefile_open(&r, file, size, &err)) {
		if (err.text[0] == '\0')
			abort(); /* every refusal says why */
		return;
	}
	/* A whole file's header is what its start alone gives. */
	if (!header_read || header.ram_bytes != r.walk.header.ram_bytes ||
	    header.nic_count != r.walk.header.nic_count ||
	    header.cpu_features != r.walk.header.cpu_features ||
	    strcmp(header.name, r.walk.header.name) != 0)
		abort();
	while (savefile_next(&r, &rec)) {
		if (rec.type != SAVEFILE_MEMORY && rec.type != SAVEFILE_DISK_RUN)
			continue;
		if (!savefile_memory_run(&rec, &run, &err))
			abort(); /* savefile_open accepted it */
		if (rec.type == SAVEFILE_MEMORY)
			covered += (uint64_t)run.pages * SAVEFILE_PAGE_SIZE;
		else
			disk_covered += (uint64_t)run.pages * SAVEFILE_PAGE_SIZE;
		if (run.encoding == SAVEFILE_RUN_ZERO)
			continue;
		savefile_run_decode(&run, pages, (size_t)run.pages * SAVEFILE_PAGE_SIZE, &err);
	}
	/* The disk's runs cover its whole pages, and a disk of none has none. */
	if (covered != r.walk.header.ram_bytes ||
	    disk_covered != (r.walk.disk_bytes + SAVEFILE_PAGE_SIZE - 1) / SAVEFILE_PAGE_SIZE *
				    SAVEFILE_PAGE_SIZE)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > FILE_MAX)
		return 0;
	walk(data, size);
	memcpy(copy, data, size);
	savefile_reseal(copy, size, true);
	walk(copy, size);
	return 0;
}
