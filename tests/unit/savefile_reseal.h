/*
 * Test helper shared by tests/unit/test_savefile.c and
 * tests/fuzz/fuzz_savefile.c: makes an edited save file's checksums right
 * again, so an edit reaches the rules behind them (a test changes a
 * length or a flag and expects that refusal, not "checksum mismatch"; the
 * fuzzer's mutations get past the checksums).
 */
#ifndef TESTS_UNIT_SAVEFILE_RESEAL_H
#define TESTS_UNIT_SAVEFILE_RESEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/crc32c.h"
#include "lib/le.h"
#include "vmm/savefile.h"

/*
 * Recomputes every record's checksum and a footer's stream checksum; with
 * fix_footer, the footer's file length and record count as well. Stops at
 * a record that runs past size.
 */
static inline void savefile_reseal(uint8_t *f, size_t size, bool fix_footer)
{
	size_t pos = SAVEFILE_PREFIX_SIZE;
	uint32_t index = 0;

	while (pos <= size && size - pos >= SAVEFILE_RECORD_HEADER_SIZE) {
		uint8_t *payload = f + pos + SAVEFILE_RECORD_HEADER_SIZE;
		uint32_t len = (uint32_t)le_get(f + pos + 4, 4);

		if (len > size - pos - SAVEFILE_RECORD_HEADER_SIZE)
			return;
		if (le_get(f + pos, 2) == SAVEFILE_FOOTER && len == 16) {
			if (fix_footer) {
				le_put(payload, pos + SAVEFILE_RECORD_HEADER_SIZE + len, 8);
				le_put(payload + 8, index, 4);
			}
			le_put(payload + 12, crc32c(CRC32C_INIT, f, pos), 4);
		}
		le_put(f + pos + 8, crc32c(crc32c(CRC32C_INIT, f + pos, 8), payload, len), 4);
		pos += SAVEFILE_RECORD_HEADER_SIZE + len;
		index++;
	}
}

#endif
