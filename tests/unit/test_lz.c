/*
 * The LZ block codec (lib/lz.c) and CRC-32C (lib/crc32c.c): round trips of
 * every kind of page, the compressor's bounds, and every refusal of the
 * decoder on hostile blocks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lib/crc32c.h"
#include "lib/lz.h"

static struct lz_workspace ws;
static uint8_t src[LZ_BLOCK_MAX], packed[LZ_COMPRESS_BOUND(LZ_BLOCK_MAX) + 64],
	out[LZ_BLOCK_MAX + 64];

static uint32_t rng = 12345;

static uint8_t random_byte(void)
{
	rng = rng * 1103515245u + 12345u;
	return (uint8_t)(rng >> 16);
}

static int setup(void **state)
{
	(void)state;
	lz_workspace_init(&ws);
	return 0;
}

/* The polynomial one bit at a time: what the table must agree with. */
static uint32_t crc32c_bitwise(uint32_t crc, const uint8_t *p, size_t size)
{
	crc = ~crc;
	for (size_t i = 0; i < size; i++) {
		crc ^= p[i];
		for (int bit = 0; bit < 8; bit++)
			crc = (crc >> 1) ^ (crc & 1 ? 0x82F63B78u : 0);
	}
	return ~crc;
}

static void test_crc32c(void **state)
{
	uint8_t buf[1000];

	(void)state;
	/* The check value of the CRC catalogue (RFC 3720, appendix B.4). */
	assert_int_equal(crc32c(CRC32C_INIT, "123456789", 9), 0xE3069283u);
	assert_int_equal(crc32c(CRC32C_INIT, "", 0), 0);
	for (unsigned b = 0; b < 256; b++) {
		uint8_t byte = (uint8_t)b;

		assert_int_equal(crc32c(CRC32C_INIT, &byte, 1), crc32c_bitwise(0, &byte, 1));
	}
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = random_byte();
	assert_int_equal(crc32c(CRC32C_INIT, buf, sizeof(buf)),
			 crc32c_bitwise(0, buf, sizeof(buf)));
	/* In chunks, as the writer streams. */
	assert_int_equal(crc32c(crc32c(CRC32C_INIT, buf, 333), buf + 333, sizeof(buf) - 333),
			 crc32c(CRC32C_INIT, buf, sizeof(buf)));
	/*
	 * The table and the CPU's instruction (where crc32c uses it) agree
	 * with the reference at every length and alignment.
	 */
	for (size_t at = 0; at < 9; at++)
		for (size_t n = 0; n < 40; n++) {
			assert_int_equal(crc32c_table_only(0x1234u, buf + at, n),
					 crc32c_bitwise(0x1234u, buf + at, n));
			assert_int_equal(crc32c(0x1234u, buf + at, n),
					 crc32c_bitwise(0x1234u, buf + at, n));
		}
}

/*
 * The CRC of two pieces from the CRCs of each, at every split of a
 * buffer (empty pieces too), and lengths far past what can be hashed here:
 * the shift by m bytes then n is the shift by m + n, every bit of the
 * length and every entry of the table reached.
 */
static void test_crc32c_combine(void **state)
{
	uint8_t buf[300];
	(void)state;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = random_byte();
	uint32_t whole = crc32c(CRC32C_INIT, buf, sizeof(buf));
	for (size_t split = 0; split <= sizeof(buf); split++)
		assert_int_equal(crc32c_combine(crc32c(CRC32C_INIT, buf, split),
						crc32c(CRC32C_INIT, buf + split, sizeof(buf) - split),
						sizeof(buf) - split),
				 whole);
	/* Shifting by m then n bytes is shifting by m + n, for lengths up to 2^62. */
	const uint32_t zero = crc32c(CRC32C_INIT, "", 0);
	for (uint64_t m = 1; m < (1ull << 62); m = m * 3 + 1) {
		uint64_t n = (1ull << 62) - m;
		assert_int_equal(crc32c_combine(crc32c_combine(whole, zero, m), zero, n),
				 crc32c_combine(whole, zero, m + n));
	}
}

/* Compresses size bytes of src with room for the worst case, decodes, compares. */
static size_t round_trip(size_t size)
{
	size_t n = lz_compress(&ws, src, size, packed, LZ_COMPRESS_BOUND(size));

	assert_true(n > 0);
	assert_true(n <= LZ_COMPRESS_BOUND(size));
	memset(out, 0xee, sizeof(out));
	assert_int_equal(lz_decompress(packed, n, out, size), LZ_OK);
	assert_memory_equal(out, src, size);
	assert_int_equal(out[size], 0xee);
	return n;
}

static void test_round_trips(void **state)
{
	static const size_t sizes[] = { 1, 2, 3, 4, 5, 15, 16, 19, 20, 255, 270, 4096, 12345, LZ_BLOCK_MAX };

	(void)state;
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t size = sizes[s];

		memset(src, 0, size);
		assert_true(round_trip(size) <= size / 200 + 8);  /* zeros: a long match */
		for (size_t i = 0; i < size; i++)
			src[i] = random_byte();
		round_trip(size);                                  /* incompressible */
		for (size_t i = 0; i < size; i++)
			src[i] = "struct page *p = alloc_page();\n"[i % 31];
		if (size >= 4096)
			assert_true(round_trip(size) < size / 10); /* text repeats */
		else
			round_trip(size);
		for (size_t i = 0; i < size; i++)                  /* a page table's look */
			src[i] = i % 8 == 0 ? (uint8_t)(i / 8 * 0x10 | 7) : i % 8 == 1 ? (uint8_t)(i / 2048) : 0;
		round_trip(size);
		for (size_t i = 0; i < size; i++)                  /* short random repeats */
			src[i] = i % 64 < 40 ? random_byte() % 4 : (uint8_t)i;
		round_trip(size);
	}
}

/*
 * Overlapping matches of every short period, cut at every length: the
 * decoder copies a match in doubling blocks, each of the repeat's phase.
 */
static void test_repeats_of_every_period(void **state)
{
	(void)state;
	for (size_t period = 1; period <= 40; period++)
		for (size_t size = period; size < 600; size += 37) {
			for (size_t i = 0; i < size; i++)
				src[i] = (uint8_t)(i % period * 7 + 1);
			round_trip(size);
		}
}

/* Many blocks through one workspace, and across the tag wrap. */
static void test_workspace_reuse(void **state)
{
	(void)state;
	for (unsigned round = 0; round < 3; round++) {
		for (size_t i = 0; i < LZ_BLOCK_MAX; i++)
			src[i] = (uint8_t)(i * round / 3);
		round_trip(LZ_BLOCK_MAX);
	}
	ws.next_base = UINT32_MAX - LZ_BLOCK_MAX + 2;
	round_trip(LZ_BLOCK_MAX);
	assert_true(ws.next_base <= LZ_BLOCK_MAX + 1);
	round_trip(LZ_BLOCK_MAX);
}

static void test_compress_limits(void **state)
{
	size_t n;

	(void)state;
	assert_int_equal(lz_compress(&ws, src, 0, packed, sizeof(packed)), 0);
	assert_int_equal(lz_compress(&ws, src, LZ_BLOCK_MAX + 1, packed, sizeof(packed)), 0);
	/* Random data does not beat its own size: 0, and nothing past the cap. */
	for (size_t i = 0; i < 4096; i++)
		src[i] = random_byte();
	memset(packed, 0xcc, sizeof(packed));
	assert_int_equal(lz_compress(&ws, src, 4096, packed, 4095), 0);
	assert_int_equal(packed[4095], 0xcc);
	/* Every cap below what it needs is refused without writing past it. */
	memset(src, 'a', 4096);
	n = lz_compress(&ws, src, 4096, packed, sizeof(packed));
	for (size_t cap = 0; cap < n; cap++) {
		memset(packed, 0xcc, sizeof(packed));
		assert_int_equal(lz_compress(&ws, src, 4096, packed, cap), 0);
		assert_int_equal(packed[cap], 0xcc);
	}
	assert_int_equal(lz_compress(&ws, src, 4096, packed, n), n);
}

static enum lz_status decode(const uint8_t *block, size_t size, size_t out_size)
{
	return lz_decompress(block, size, out, out_size);
}

static void test_hostile_blocks(void **state)
{
	static uint8_t chain[600];
	size_t n;

	(void)state;
	assert_int_equal(decode(NULL, 0, 0), LZ_TRUNCATED);
	assert_int_equal(decode((const uint8_t[]){ 0x00 }, 1, 0), LZ_OK);
	assert_int_equal(decode((const uint8_t[]){ 0x00 }, 1, 1), LZ_SHORT);
	assert_int_equal(decode((const uint8_t[]){ 0x20, 'a', 'b' }, 3, 1), LZ_OVERRUN);
	assert_int_equal(decode((const uint8_t[]){ 0x30, 'a', 'b' }, 3, 3), LZ_TRUNCATED);
	/* A last sequence with a match length but no offset. */
	assert_int_equal(decode((const uint8_t[]){ 0x11, 'a' }, 2, 5), LZ_TRUNCATED);
	assert_int_equal(decode((const uint8_t[]){ 0x10, 'a', 1 }, 3, 5), LZ_TRUNCATED);
	assert_int_equal(decode((const uint8_t[]){ 0x10, 'a', 0, 0, 0x00 }, 5, 5), LZ_BAD_OFFSET);
	assert_int_equal(decode((const uint8_t[]){ 0x10, 'a', 2, 0, 0x00 }, 5, 5), LZ_BAD_OFFSET);
	assert_int_equal(decode((const uint8_t[]){ 0x00, 1, 0, 0x00 }, 4, 4), LZ_BAD_OFFSET);
	assert_int_equal(decode((const uint8_t[]){ 0x10, 'a', 1, 0, 0x00 }, 5, 5), LZ_OK);
	assert_memory_equal(out, "aaaaa", 5);
	assert_int_equal(decode((const uint8_t[]){ 0x11, 'a', 1, 0, 0x00 }, 5, 5), LZ_OVERRUN);
	/* Match length continuation: cut short, and beyond the output. */
	assert_int_equal(decode((const uint8_t[]){ 0x1f, 'a', 1, 0 }, 4, 100), LZ_TRUNCATED);
	assert_int_equal(decode((const uint8_t[]){ 0x1f, 'a', 1, 0, 255, 0, 0x00 }, 7, 100),
			 LZ_OVERRUN);
	/* A long chain of 255s stops at the output's size, no wrap, no hang. */
	chain[0] = 0xf0;
	memset(chain + 1, 255, sizeof(chain) - 1);
	assert_int_equal(decode(chain, sizeof(chain), 1000), LZ_OVERRUN);
	assert_int_equal(decode(chain, 100, SIZE_MAX), LZ_TRUNCATED);

	/* Every strict prefix of a valid block is refused. */
	for (size_t i = 0; i < 4096; i++)
		src[i] = i % 300 < 200 ? (uint8_t)(i % 7) : random_byte();
	n = lz_compress(&ws, src, 4096, packed, sizeof(packed));
	for (size_t cut = 0; cut < n; cut++)
		assert_int_not_equal(decode(packed, cut, 4096), LZ_OK);
	assert_int_equal(decode(packed, n, 4096), LZ_OK);
	assert_int_not_equal(decode(packed, n, 4095), LZ_OK);
	assert_int_not_equal(decode(packed, n, 4097), LZ_OK);
}

static void test_status_text(void **state)
{
	(void)state;
	/* Each status has its own words. */
	for (int a = LZ_OK; a <= LZ_SHORT; a++)
		for (int b = LZ_OK; b < a; b++)
			assert_string_not_equal(lz_status_text((enum lz_status)a),
						lz_status_text((enum lz_status)b));
	assert_string_equal(lz_status_text(LZ_BAD_OFFSET),
			    "a match reaches before the start of the output");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_crc32c_combine),
		cmocka_unit_test_setup(test_round_trips, setup),
		cmocka_unit_test_setup(test_repeats_of_every_period, setup),
		cmocka_unit_test_setup(test_workspace_reuse, setup),
		cmocka_unit_test_setup(test_compress_limits, setup),
		cmocka_unit_test_setup(test_hostile_blocks, setup),
		cmocka_unit_test(test_status_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
