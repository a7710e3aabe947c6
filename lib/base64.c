#include "lib/base64.h"

#include <stdbool.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

long base64_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	/* Counted in groups: a huge n cannot wrap the length it needs. */
	if (cap == 0 || n / 3 + (n % 3 != 0) > (cap - 1) / 4)
		return -1;
	for (size_t i = 0; i < n; i += 3) {
		size_t left = n - i;
		uint32_t v = (uint32_t)in[i] << 16 | (left > 1 ? (uint32_t)in[i + 1] << 8 : 0) |
			     (left > 2 ? in[i + 2] : 0);

		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = left > 1 ? alphabet[v >> 6 & 63] : '=';
		out[o++] = left > 2 ? alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	return (long)o;
}

static int sextet(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long base64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
	size_t pad = 0, size, o = 0;

	if (n % 4)
		return -1;
	if (n && in[n - 1] == '=')
		pad = in[n - 2] == '=' ? 2 : 1;
	size = n / 4 * 3 - pad;
	if (size > cap)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		bool last = i + 4 == n;
		int s[4];
		uint32_t v = 0;

		for (int k = 0; k < 4; k++) {
			/* '=' only as the padding of the last group. */
			s[k] = last && k >= 4 - (int)pad ? 0 : sextet(in[i + k]);
			if (s[k] < 0)
				return -1;
			v = v << 6 | (uint32_t)s[k];
		}
		/* Bits the padding leaves over must be zero: one encoding per byte string. */
		if ((last && pad == 1 && (v & 0xff)) || (last && pad == 2 && (v & 0xffff)))
			return -1;
		out[o++] = (uint8_t)(v >> 16);
		if (o < size)
			out[o++] = (uint8_t)(v >> 8);
		if (o < size)
			out[o++] = (uint8_t)v;
	}
	return (long)o;
}
