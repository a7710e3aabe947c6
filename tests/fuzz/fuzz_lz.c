/*
 * libFuzzer target: the LZ block codec (lib/lz.c). Every input is
 * (1) compressed and must decompress to itself, also when compressed
 * only if it saves space, as the save file writer does; and (2) decoded
 * as a hostile block into outputs of several sizes, which must never read
 * or write out of bounds; what a block decodes to is itself round-tripped
 * (long matches and runs the compressor rarely sees in raw inputs).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/lz.h"

static struct lz_workspace ws;
static uint8_t packed[LZ_COMPRESS_BOUND(LZ_BLOCK_MAX)], out[LZ_BLOCK_MAX], decoded[LZ_BLOCK_MAX];

static void round_trip(const uint8_t *data, size_t size)
{
	size_t n = lz_compress(&ws, data, size, packed, sizeof(packed));

	if (n == 0 || n > LZ_COMPRESS_BOUND(size) ||
	    lz_decompress(packed, n, out, size) != LZ_OK || memcmp(out, data, size) != 0)
		abort();
	n = lz_compress(&ws, data, size, packed, size - 1);
	if (n != 0 && (n >= size || lz_decompress(packed, n, out, size) != LZ_OK ||
			memcmp(out, data, size) != 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Output sizes: exact pages, and one taken from the input. */
	size_t sizes[] = { 4096, LZ_BLOCK_MAX, size ? (size_t)data[0] << 8 | 0x10 : 0 };

	if (ws.next_base == 0)
		lz_workspace_init(&ws);
	if (size > 0 && size <= LZ_BLOCK_MAX)
		round_trip(data, size);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		if (sizes[i] && lz_decompress(data, size, decoded, sizes[i]) == LZ_OK)
			round_trip(decoded, sizes[i]);
	}
	return 0;
}
