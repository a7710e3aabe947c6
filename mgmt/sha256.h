/*
 * SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104) for the line's
 * challenge-response authentication (docs/protocol.md, "Authentication").
 * Freestanding: the management VM and the admin tool link the same code.
 */
#ifndef MGMT_SHA256_H
#define MGMT_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_SIZE 32
#define SHA256_BLOCK 64

struct sha256 {
	uint32_t h[8];
	uint64_t bytes;
	uint8_t block[SHA256_BLOCK];
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, uint8_t out[SHA256_SIZE]);

void hmac_sha256(const uint8_t *key, size_t key_len, const void *msg, size_t msg_len,
		 uint8_t out[SHA256_SIZE]);

/* Compares without an early exit, so timing does not tell how much matched. */
int sha256_equal(const uint8_t *a, const uint8_t *b, size_t len);

#endif
