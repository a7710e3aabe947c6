/*
 * LZ block format (all sequences alike; the last has no match):
 *
 *   token      1 byte: literal count in the high nibble, match length
 *              minus LZ_MIN_MATCH in the low nibble; 15 means "more
 *              bytes follow": each adds its value, 255 continues
 *   literals   the literal count's bytes
 *   offset     2 bytes little-endian, 1..65535 back from the output's end
 *   (lengths)  the match length's extra bytes, as for the literal count
 *
 * The block ends right after the literals of its last sequence, whose
 * match nibble is 0. A match may overlap the bytes it produces (offset 1
 * repeats a byte), so it is copied byte by byte.
 */
#include "lib/lz.h"

#include <stdbool.h>
#include <string.h>

#define NIBBLE_MORE 15u
#define OFFSET_MAX 65535u
/* After this many positions without a match, the search steps further
 * each time: incompressible pages cost little time. */
#define MISS_STEP_SHIFT 6u

static inline uint32_t read32(const uint8_t *p)
{
	/* Byte by byte, which the compiler merges into one load: no
	 * alignment or aliasing assumption about the guest's page. */
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t read64(const uint8_t *p)
{
	return (uint64_t)read32(p) | (uint64_t)read32(p + 4) << 32;
}

/*
 * How far the bytes at a and b agree, up to limit: eight at a time, the
 * first differing byte found as the lowest set bit of their difference
 * (the reads are little-endian).
 */
static size_t common_length(const uint8_t *a, const uint8_t *b, size_t limit)
{
	size_t n = 0;

	while (limit - n >= 8) {
		uint64_t diff = read64(a + n) ^ read64(b + n);

		if (diff)
			return n + (size_t)__builtin_ctzll(diff) / 8;
		n += 8;
	}
	while (n < limit && a[n] == b[n])
		n++;
	return n;
}

static inline uint32_t hash4(uint32_t v)
{
	/* Knuth's multiplicative hash: the top bits mix all four bytes. */
	return (v * 2654435761u) >> (32u - LZ_HASH_BITS);
}

void lz_workspace_init(struct lz_workspace *ws)
{
	memset(ws, 0, sizeof(*ws));
	/* Tag 0 is what a cleared entry holds: no block starts there. */
	ws->next_base = 1;
}

/* Bytes a length of value len takes beyond its nibble (len >= 15). */
static size_t extra_length_bytes(size_t len)
{
	return len < NIBBLE_MORE ? 0 : (len - NIBBLE_MORE) / 255u + 1u;
}

static size_t put_extra_length(uint8_t *out, size_t len)
{
	size_t n = 0;

	if (len < NIBBLE_MORE)
		return 0;
	for (len -= NIBBLE_MORE; len >= 255u; len -= 255u)
		out[n++] = 255u;
	out[n++] = (uint8_t)len;
	return n;
}

/*
 * Appends one sequence at dst[*op]: literal_count bytes from literals,
 * then a match (when match_len > 0). False when it does not fit.
 */
static bool put_sequence(uint8_t *dst, size_t dst_cap, size_t *op, const uint8_t *literals,
			 size_t literal_count, size_t offset, size_t match_len)
{
	size_t match_code = match_len ? match_len - LZ_MIN_MATCH : 0;
	size_t need = 1u + extra_length_bytes(literal_count) + literal_count +
		      (match_len ? 2u + extra_length_bytes(match_code) : 0u);
	size_t o = *op;

	if (dst_cap - o < need)
		return false;
	dst[o++] = (uint8_t)((literal_count < NIBBLE_MORE ? literal_count : NIBBLE_MORE) << 4 |
			     (match_code < NIBBLE_MORE ? match_code : NIBBLE_MORE));
	o += put_extra_length(dst + o, literal_count);
	memcpy(dst + o, literals, literal_count);
	o += literal_count;
	if (match_len) {
		dst[o++] = (uint8_t)offset;
		dst[o++] = (uint8_t)(offset >> 8);
		o += put_extra_length(dst + o, match_code);
	}
	*op = o;
	return true;
}

size_t lz_compress(struct lz_workspace *ws, const uint8_t *src, size_t src_size, uint8_t *dst,
		   size_t dst_cap)
{
	size_t ip = 0, anchor = 0, op = 0;
	unsigned misses = 0;
	uint32_t base;

	if (src_size == 0 || src_size > LZ_BLOCK_MAX)
		return 0;
	/* Tags must not wrap: start afresh well before they would. */
	if (ws->next_base > UINT32_MAX - LZ_BLOCK_MAX)
		lz_workspace_init(ws);
	base = ws->next_base;
	ws->next_base += (uint32_t)src_size;

	/* ip may step past the end after misses: compare, never subtract. */
	while (ip + LZ_MIN_MATCH <= src_size) {
		uint32_t seq = read32(src + ip);
		uint32_t *slot = &ws->table[hash4(seq)];
		uint32_t tag = *slot;
		size_t candidate, len;

		*slot = base + (uint32_t)ip;
		/* A tag below base is from an earlier block; within this one,
		 * every stored position is behind ip. */
		candidate = tag - base;
		if (tag < base || ip - candidate > OFFSET_MAX || read32(src + candidate) != seq) {
			misses++;
			ip += 1u + (misses >> MISS_STEP_SHIFT);
			continue;
		}
		len = LZ_MIN_MATCH + common_length(src + candidate + LZ_MIN_MATCH,
						   src + ip + LZ_MIN_MATCH,
						   src_size - ip - LZ_MIN_MATCH);
		if (!put_sequence(dst, dst_cap, &op, src + anchor, ip - anchor, ip - candidate, len))
			return 0;
		ip += len;
		anchor = ip;
		misses = 0;
	}
	if (!put_sequence(dst, dst_cap, &op, src + anchor, src_size - anchor, 0, 0))
		return 0;
	return op;
}

/*
 * Reads a length's extra bytes onto *len, refusing any total beyond limit
 * (what the output has room for): a hostile chain of 255s stops there,
 * long before size_t could wrap.
 */
static enum lz_status get_extra_length(const uint8_t *src, size_t src_size, size_t *ip,
				       size_t *len, size_t limit)
{
	uint8_t byte;

	do {
		if (*ip >= src_size)
			return LZ_TRUNCATED;
		byte = src[(*ip)++];
		*len += byte;
		if (*len > limit)
			return LZ_OVERRUN;
	} while (byte == 255u);
	return LZ_OK;
}

/*
 * A match: len bytes from offset back, which may overlap what it writes
 * (a run repeats its first offset bytes). Copied as whole blocks instead
 * of a byte loop, which is what a restore spent its time on: every block
 * comes from the match's source, whose distance to the output is a
 * multiple of offset (same phase of the repeat) and doubles each time, and
 * never overlaps the block it fills.
 */
static void copy_match(uint8_t *out, size_t offset, size_t len)
{
	const uint8_t *from = out - offset;

	while (len) {
		size_t piece = (size_t)(out - from) < len ? (size_t)(out - from) : len;
		memcpy(out, from, piece);
		out += piece;
		len -= piece;
	}
}

enum lz_status lz_decompress(const uint8_t *src, size_t src_size, uint8_t *dst, size_t dst_size)
{
	size_t ip = 0, op = 0;
	enum lz_status st;

	while (ip < src_size) {
		uint8_t token = src[ip++];
		size_t literal_count = token >> 4, match_len = token & 0x0fu, offset;

		if (literal_count == NIBBLE_MORE &&
		    (st = get_extra_length(src, src_size, &ip, &literal_count, dst_size - op)) != LZ_OK)
			return st;
		if (literal_count > dst_size - op)
			return LZ_OVERRUN;
		if (literal_count > src_size - ip)
			return LZ_TRUNCATED;
		memcpy(dst + op, src + ip, literal_count);
		op += literal_count;
		ip += literal_count;
		if (ip == src_size)
			/* The last sequence: a match nibble here lost its offset. */
			return match_len ? LZ_TRUNCATED : op == dst_size ? LZ_OK : LZ_SHORT;
		if (src_size - ip < 2)
			return LZ_TRUNCATED;
		offset = (size_t)src[ip] | (size_t)src[ip + 1] << 8;
		ip += 2;
		if (offset == 0 || offset > op)
			return LZ_BAD_OFFSET;
		if (match_len == NIBBLE_MORE &&
		    (st = get_extra_length(src, src_size, &ip, &match_len, dst_size - op)) != LZ_OK)
			return st;
		match_len += LZ_MIN_MATCH;
		if (match_len > dst_size - op)
			return LZ_OVERRUN;
		copy_match(dst + op, offset, match_len);
		op += match_len;
	}
	/* Empty input: not even a last sequence. */
	return LZ_TRUNCATED;
}

const char *lz_status_text(enum lz_status status)
{
	switch (status) {
	case LZ_OK:
		return "ok";
	case LZ_TRUNCATED:
		return "compressed data ends inside a sequence";
	case LZ_BAD_OFFSET:
		return "a match reaches before the start of the output";
	case LZ_OVERRUN:
		return "the data decompresses to more than its stated size";
	case LZ_SHORT:
		return "the data decompresses to less than its stated size";
	}
	return "unknown status";
}
