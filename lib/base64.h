/*
 * Base64 (RFC 4648, section 4: the standard alphabet, '=' padding), as
 * the guest agent protocol carries command input and output. The decoder
 * takes hostile input: it refuses characters outside the alphabet, bad
 * padding and non-zero trailing bits, and never writes past its output.
 * Plain C, freestanding.
 */
#ifndef LIB_BASE64_H
#define LIB_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Characters base64_encode writes for n bytes, without the NUL. */
#define BASE64_ENCODED_LEN(n) (((n) + 2) / 3 * 4)

/* Encodes in[0..n) into out with a NUL after it; returns the length, or -1 when cap is short. */
long base64_encode(const uint8_t *in, size_t n, char *out, size_t cap);

/* Decodes in[0..n) into out[0..cap); returns the byte count, or -1 (malformed, or out short). */
long base64_decode(const char *in, size_t n, uint8_t *out, size_t cap);

#endif
