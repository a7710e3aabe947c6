/*
 * A small LZ77 block compressor for guest memory in save files
 * (docs/savefile.md, "Compressed pages"). The block format is in the
 * style of LZ4 (a token with a literal count and a match length, the
 * literals, a 16-bit back offset); the code is the project's own.
 * Chosen for speed in root mode: greedy matching with one hash probe per
 * position, no entropy coding, decoding a plain copy loop.
 *
 * The decoder takes hostile input: the decompressed size is known up
 * front (a run of pages), every literal count, match length and offset is
 * checked against the input and the output buffer before a byte is
 * copied, and the output must come out exactly that size. Plain C,
 * freestanding, no allocation.
 */
#ifndef LIB_LZ_H
#define LIB_LZ_H

#include <stddef.h>
#include <stdint.h>

/* Largest block: back offsets are 16 bits, so a block is their reach. */
#define LZ_BLOCK_MAX 65536u
#define LZ_MIN_MATCH 4u
#define LZ_HASH_BITS 12u

/*
 * Room that always suffices for the compressed form of size bytes: every
 * byte a literal, plus one length byte per 255 literals and the token.
 */
#define LZ_COMPRESS_BOUND(size) ((size) + (size) / 255u + 16u)

/*
 * The compressor's hash table, kept by the caller (16 KiB is too much for
 * a hypervisor stack) and reused across blocks without being cleared:
 * entries are tagged with a running position, so those from earlier
 * blocks are recognised as stale.
 */
struct lz_workspace {
	uint32_t table[1u << LZ_HASH_BITS];
	uint32_t next_base; /* the tag of this block's first byte */
};

void lz_workspace_init(struct lz_workspace *ws);

/*
 * Compresses src (1..LZ_BLOCK_MAX bytes) into dst. Returns the compressed
 * size, or 0 when it would not fit in dst_cap bytes (a caller passes the
 * size it must beat to store the block raw otherwise) or src_size is out
 * of range.
 */
size_t lz_compress(struct lz_workspace *ws, const uint8_t *src, size_t src_size, uint8_t *dst,
		   size_t dst_cap);

enum lz_status {
	LZ_OK,
	LZ_TRUNCATED,   /* the input ends inside a sequence */
	LZ_BAD_OFFSET,  /* a match reaches back before the output's start, or offset 0 */
	LZ_OVERRUN,     /* a sequence would write past the expected size */
	LZ_SHORT,       /* the input ends before the expected size is reached */
};

/* Decompresses src into exactly dst_size bytes at dst. */
enum lz_status lz_decompress(const uint8_t *src, size_t src_size, uint8_t *dst, size_t dst_size);

/* What went wrong, for error messages ("ok" for LZ_OK). */
const char *lz_status_text(enum lz_status status);

#endif
