/* SHA-256 (FIPS 180-4 examples) and HMAC-SHA256 (RFC 4231 test cases). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mgmt/sha256.h"

static void hex(const uint8_t *d, char *out)
{
	for (unsigned i = 0; i < SHA256_SIZE; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static void check_sha(const char *msg, size_t len, const char *want)
{
	struct sha256 s;
	uint8_t d[SHA256_SIZE];
	char got[2 * SHA256_SIZE + 1];

	sha256_init(&s);
	/* In uneven pieces: block boundaries must not matter. */
	for (size_t i = 0; i < len; i += 7)
		sha256_update(&s, msg + i, len - i < 7 ? len - i : 7);
	sha256_final(&s, d);
	hex(d, got);
	assert_string_equal(got, want);
}

static void test_sha256(void **state)
{
	(void)state;
	check_sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check_sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	check_sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void check_hmac(const uint8_t *key, size_t key_len, const char *msg, size_t len,
		       const char *want)
{
	uint8_t d[SHA256_SIZE];
	char got[2 * SHA256_SIZE + 1];

	hmac_sha256(key, key_len, msg, len, d);
	hex(d, got);
	assert_string_equal(got, want);
}

static void test_hmac_rfc4231(void **state)
{
	uint8_t key[131];

	(void)state;
	memset(key, 0x0b, 20);
	check_hmac(key, 20, "Hi There", 8,
		   "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	check_hmac((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28,
		   "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	/* Case 6: a key longer than a block is hashed first. */
	memset(key, 0xaa, sizeof(key));
	check_hmac(key, sizeof(key), "Test Using Larger Than Block-Size Key - Hash Key First", 54,
		   "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_equal(void **state)
{
	(void)state;
	assert_true(sha256_equal((const uint8_t *)"abcd", (const uint8_t *)"abcd", 4));
	assert_false(sha256_equal((const uint8_t *)"abcd", (const uint8_t *)"abce", 4));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_equal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
