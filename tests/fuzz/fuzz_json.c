/*
 * libFuzzer target: the JSON reader and writer (lib/json.c) and base64
 * (lib/base64.c), as the guest agent's replies feed them. The input is
 * (1) parsed into a small and a large token array; a document is walked
 * through every accessor into small and large buffers, its tokens checked
 * for consistency, and written back out with the writer, which must parse
 * to the same tokens; (2) decoded as base64, which must re-encode to
 * itself, and encoded, which must decode to itself; (3) written as one
 * string in an object, which must read back as the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base64.h"
#include "lib/json.h"

#define MAX_INPUT 4096
#define BIG_TOKENS 4096

static struct json_token small_tok[8], big_tok[BIG_TOKENS], again_tok[BIG_TOKENS];
/* Room for the worst case: every input byte written as \u00XX. */
static char text[MAX_INPUT * 6 + 64], big[MAX_INPUT + 1], other[MAX_INPUT + 1];
static uint8_t bytes[MAX_INPUT];
static char encoded[BASE64_ENCODED_LEN(MAX_INPUT) + 1];

static void check(bool ok)
{
	if (!ok)
		abort();
}

static void walk_token(const struct json_doc *doc, int t)
{
	const struct json_token *k = &doc->tok[t];
	char small[8];
	long n = json_string(doc, t, big, sizeof(big));
	long m = json_string(doc, t, small, sizeof(small));
	int64_t v;
	bool b;

	check(k->start <= k->end && k->end <= doc->len);
	check(k->next > (uint32_t)t && k->next <= doc->count);
	if (n >= 0) {
		check(k->type == JSON_STRING);
		check(json_string_is(doc, t, big) && (size_t)n == strlen(big));
		check(m < 0 ? n >= (long)sizeof(small)
			    : m == n && memcmp(small, big, (size_t)n) == 0);
	}
	if (json_int(doc, t, &v))
		check(k->type == JSON_NUMBER);
	if (json_bool(doc, t, &b))
		check(b == (k->type == JSON_TRUE));
	if (k->type == JSON_OBJECT) {
		uint32_t key = (uint32_t)t + 1;

		for (uint32_t i = 0; i < k->count; i++) {
			check(doc->tok[key].type == JSON_STRING);
			/* json_get finds this member or an earlier one of the same key. */
			if (json_string(doc, (int)key, other, sizeof(other)) >= 0) {
				int found = json_get(doc, t, other);

				check(found > t && found <= (int)key + 1);
				check(json_string_is(doc, found - 1, other));
			}
			key = doc->tok[key + 1].next;
		}
		check(key == k->next);
	}
	if (k->type == JSON_ARRAY) {
		for (uint32_t i = 0; i < k->count; i++)
			check(json_index(doc, t, i) > t);
		check(json_index(doc, t, k->count) == -1);
	} else {
		check(json_index(doc, t, 0) == -1);
	}
}

/* Writes the value at t back out; false when the writer cannot say it (a fraction, a NUL). */
static bool rewrite(struct json_writer *w, const struct json_doc *doc, int t)
{
	const struct json_token *k = &doc->tok[t];
	int64_t v;
	long n;

	switch (k->type) {
	case JSON_OBJECT:
	case JSON_ARRAY:
		if (k->type == JSON_OBJECT)
			json_begin_object(w);
		else
			json_begin_array(w);
		for (uint32_t i = 0, c = (uint32_t)t + 1; i < k->count; i++) {
			if (k->type == JSON_OBJECT) {
				if (json_string(doc, (int)c, other, sizeof(other)) < 0)
					return false;
				json_key(w, other);
				c++;
			}
			if (!rewrite(w, doc, (int)c))
				return false;
			c = doc->tok[c].next;
		}
		if (k->type == JSON_OBJECT)
			json_end_object(w);
		else
			json_end_array(w);
		return true;
	case JSON_STRING:
		n = json_string(doc, t, big, sizeof(big));
		if (n >= 0)
			json_put_string(w, big, (size_t)n);
		return n >= 0;
	case JSON_NUMBER:
		if (json_int(doc, t, &v))
			json_put_int(w, v);
		return json_int(doc, t, &v);
	case JSON_TRUE:
	case JSON_FALSE:
		json_put_bool(w, k->type == JSON_TRUE);
		return true;
	default:
		json_put_null(w);
		return true;
	}
}

static void parse_and_walk(const char *data, size_t size)
{
	struct json_doc doc, small_doc, again;
	struct json_writer w;
	enum json_result r = json_parse(&doc, data, size, big_tok, BIG_TOKENS);
	enum json_result rs = json_parse(&small_doc, data, size, small_tok, 8);

	/* A small array fails for want of tokens, or as the large one does. */
	check(rs == r || rs == JSON_E_TOKENS);
	if (r != JSON_OK)
		return;
	check(rs != JSON_OK || small_doc.count == doc.count);
	check(doc.tok[0].next == doc.count);
	for (uint32_t t = 0; t < doc.count; t++)
		walk_token(&doc, (int)t);

	json_writer_init(&w, text, sizeof(text));
	if (!rewrite(&w, &doc, 0))
		return;
	check(json_writer_ok(&w));
	check(json_parse(&again, text, w.len, again_tok, BIG_TOKENS) == JSON_OK);
	check(again.count == doc.count);
	for (uint32_t t = 0; t < doc.count; t++) {
		check(again_tok[t].type == big_tok[t].type);
		check(again_tok[t].count == big_tok[t].count);
		check(again_tok[t].next == big_tok[t].next);
	}
}

static void base64_round_trips(const uint8_t *data, size_t size)
{
	long n = base64_decode((const char *)data, size, bytes, sizeof(bytes));

	/* What decodes is the one canonical encoding of its bytes. */
	if (n >= 0) {
		check(base64_encode(bytes, (size_t)n, encoded, sizeof(encoded)) == (long)size);
		check(memcmp(encoded, data, size) == 0);
	}
	n = base64_encode(data, size, encoded, sizeof(encoded));
	check(n == (long)BASE64_ENCODED_LEN(size));
	check(base64_decode(encoded, (size_t)n, bytes, size) == (long)size);
	check(memcmp(bytes, data, size) == 0);
	if (size)
		check(base64_decode(encoded, (size_t)n, bytes, size - 1) == -1);
}

static void writer_round_trip(const char *data, size_t size)
{
	struct json_doc doc;
	struct json_writer w;
	size_t cap = size ? (uint8_t)data[0] : 0;
	char *tight = malloc(cap ? cap : 1);
	long n;

	json_writer_init(&w, text, sizeof(text));
	json_begin_object(&w);
	json_key(&w, "return");
	json_put_string(&w, data, size);
	json_end_object(&w);
	check(json_writer_ok(&w) && strlen(text) == w.len);
	check(json_parse(&doc, text, w.len, big_tok, BIG_TOKENS) == JSON_OK);
	n = json_string(&doc, json_get(&doc, 0, "return"), big, sizeof(big));
	if (memchr(data, 0, size))
		check(n == -1);
	else
		check(n == (long)size && memcmp(big, data, size) == 0);

	/* The same at a size the input picks: refused or whole, never past cap. */
	json_writer_init(&w, tight, cap);
	json_begin_object(&w);
	json_key(&w, "return");
	json_put_string(&w, data, size);
	json_end_object(&w);
	check(json_writer_ok(&w) == (cap > strlen(text)));
	if (json_writer_ok(&w))
		check(strcmp(tight, text) == 0);
	free(tight);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > MAX_INPUT)
		return 0;
	parse_and_walk((const char *)data, size);
	base64_round_trips(data, size);
	writer_round_trip((const char *)data, size);
	return 0;
}
