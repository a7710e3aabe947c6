/*
 * Base64 (lib/base64.c): the RFC 4648 test vectors, round trips of every
 * length, output buffers of every size, and every refusal of the decoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lib/base64.h"

static uint32_t rng = 4242;

static uint8_t random_byte(void)
{
	rng = rng * 1103515245u + 12345u;
	return (uint8_t)(rng >> 16);
}

/* Decodes a string held in a buffer of exactly its length (ASan sees past it). */
static long decode(const char *text, uint8_t *out, size_t cap)
{
	size_t n = strlen(text);
	char *copy = malloc(n ? n : 1);
	long r;

	memcpy(copy, text, n);
	r = base64_decode(copy, n, out, cap);
	free(copy);
	return r;
}

static void test_vectors(void **state)
{
	/* RFC 4648, section 10. */
	static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const coded[] = {
		"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy",
	};
	char enc[16];
	uint8_t dec[16];

	(void)state;
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		size_t n = strlen(plain[i]);

		assert_int_equal(base64_encode((const uint8_t *)plain[i], n, enc, sizeof(enc)),
				 strlen(coded[i]));
		assert_string_equal(enc, coded[i]);
		assert_int_equal(BASE64_ENCODED_LEN(n), strlen(coded[i]));
		assert_int_equal(decode(coded[i], dec, sizeof(dec)), n);
		assert_memory_equal(dec, plain[i], n);
	}
	/* The last two characters of the alphabet. */
	assert_int_equal(base64_encode((const uint8_t[]){ 0xfb, 0xff, 0xbf }, 3, enc, sizeof(enc)),
			 4);
	assert_string_equal(enc, "+/+/");
	assert_int_equal(decode("+/+/", dec, sizeof(dec)), 3);
	assert_memory_equal(dec, ((const uint8_t[]){ 0xfb, 0xff, 0xbf }), 3);
}

static void test_round_trips(void **state)
{
	static uint8_t in[1000], out[1000];
	static char text[BASE64_ENCODED_LEN(1000) + 1];

	(void)state;
	for (size_t n = 0; n <= sizeof(in); n++) {
		long len;

		for (size_t i = 0; i < n; i++)
			in[i] = random_byte();
		len = base64_encode(in, n, text, sizeof(text));
		assert_int_equal(len, BASE64_ENCODED_LEN(n));
		assert_int_equal(strlen(text), len);
		assert_int_equal(base64_decode(text, (size_t)len, out, n), n);
		assert_memory_equal(out, in, n);
	}
}

static void test_short_buffers(void **state)
{
	static const uint8_t in[] = "the quick brown fox";
	size_t n = sizeof(in) - 1, need = BASE64_ENCODED_LEN(n);
	char text[64];
	uint8_t out[64];

	(void)state;
	/* Encoding needs room for the NUL; nothing is written past cap. */
	for (size_t cap = 0; cap <= need + 1; cap++) {
		char *buf = malloc(cap ? cap : 1);

		assert_int_equal(base64_encode(in, n, buf, cap), cap > need ? (long)need : -1);
		free(buf);
	}
	/* A length whose encoding would wrap size_t is refused, not written. */
	assert_int_equal(base64_encode(in, SIZE_MAX, text, sizeof(text)), -1);
	assert_int_equal(base64_encode(in, SIZE_MAX / 4 * 3 + 1, text, SIZE_MAX), -1);

	assert_int_equal(base64_encode(in, n, text, sizeof(text)), need);
	for (size_t cap = 0; cap <= n; cap++) {
		uint8_t *buf = malloc(cap ? cap : 1);

		assert_int_equal(base64_decode(text, need, buf, cap), cap == n ? (long)n : -1);
		free(buf);
	}
	assert_int_equal(base64_decode(text, need, out, sizeof(out)), n);
}

static void test_hostile(void **state)
{
	static const char *const bad[] = {
		"Z", "Zg", "Zg=", "Zm9vY", "Zm9vYg=", "Zg===", "====", "=", "==", "Z===",
		"=Zg=", "Z=g=", "Zg==Zg==", "Zm8=Zm9v", "Zm9v=", "Zm-v", "Zm_v", "Zm9v ", " Zm9v",
		"Zm9\nv", "Zm\x80v", "Zm9v\r\n", "Zh==", "Zm9=",
		/* The same bits with stray low bits set: not the canonical form. */
		"Zm+=", "AB==", "AAB=",
	};
	uint8_t out[16];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(decode(bad[i], out, sizeof(out)), -1);
	/* A NUL inside the counted input is just another bad character. */
	assert_int_equal(base64_decode("Zm\0v", 4, out, sizeof(out)), -1);
	/* Every byte outside the alphabet, in every position of a group. */
	for (int c = 0; c < 256; c++) {
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '+' || c == '/')
			continue;
		for (int pos = 0; pos < 4; pos++) {
			char group[5] = "QUJD";

			group[pos] = (char)c;
			assert_int_equal(base64_decode(group, 4, out, sizeof(out)), -1);
		}
	}
	assert_int_equal(decode("QUJD", out, sizeof(out)), 3);
	assert_memory_equal(out, "ABC", 3);
	assert_int_equal(decode("QQ==", out, sizeof(out)), 1);
	assert_int_equal(decode("QUI=", out, sizeof(out)), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_short_buffers),
		cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
