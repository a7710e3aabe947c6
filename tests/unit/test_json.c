/*
 * The JSON reader and writer (lib/json.c): every value and escape, the
 * refusals RFC 8259 asks for, the depth and token limits, every prefix of
 * a valid document, and the writer at every buffer size.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"

#define TOKENS 256

static struct json_token tok[TOKENS];
static struct json_doc doc;

/* The text in a buffer of exactly its size: ASan catches a read past it. */
static enum json_result parse_n(const char *text, size_t len, uint32_t cap)
{
	static char *copy;
	enum json_result r;

	free(copy);
	copy = malloc(len ? len : 1);
	assert_non_null(copy);
	if (len)
		memcpy(copy, text, len);
	r = json_parse(&doc, copy, len, tok, cap);
	if (r != JSON_OK)
		assert_int_equal(doc.count, 0);
	return r;
}

static enum json_result parse(const char *text)
{
	return parse_n(text, strlen(text), TOKENS);
}

static void assert_token(int t, enum json_type type, const char *text, uint32_t count,
			 uint32_t next)
{
	const struct json_token *k = &doc.tok[t];

	assert_int_equal(k->type, type);
	assert_int_equal(k->end - k->start, strlen(text));
	assert_memory_equal(doc.text + k->start, text, strlen(text));
	assert_int_equal(k->count, count);
	assert_int_equal(k->next, next);
}

static void test_scalars(void **state)
{
	(void)state;
	assert_int_equal(parse("true"), JSON_OK);
	assert_int_equal(doc.count, 1);
	assert_token(0, JSON_TRUE, "true", 0, 1);
	assert_int_equal(parse(" false\n"), JSON_OK);
	assert_token(0, JSON_FALSE, "false", 0, 1);
	assert_int_equal(parse("\t\r\nnull "), JSON_OK);
	assert_token(0, JSON_NULL, "null", 0, 1);
	assert_int_equal(parse("-12.5e+3"), JSON_OK);
	assert_token(0, JSON_NUMBER, "-12.5e+3", 0, 1);
	assert_int_equal(parse("\"a\\nb\""), JSON_OK);
	assert_token(0, JSON_STRING, "a\\nb", 0, 1);
	assert_int_equal(parse("\"\""), JSON_OK);
	assert_token(0, JSON_STRING, "", 0, 1);
}

static void test_containers(void **state)
{
	(void)state;
	assert_int_equal(parse("{\"a\": [1, {\"b\": null}, []], \"c\": {}}"), JSON_OK);
	assert_int_equal(doc.count, 10);
	assert_token(0, JSON_OBJECT, "{\"a\": [1, {\"b\": null}, []], \"c\": {}}", 2, 10);
	assert_token(1, JSON_STRING, "a", 0, 2);
	assert_token(2, JSON_ARRAY, "[1, {\"b\": null}, []]", 3, 8);
	assert_token(3, JSON_NUMBER, "1", 0, 4);
	assert_token(4, JSON_OBJECT, "{\"b\": null}", 1, 7);
	assert_token(5, JSON_STRING, "b", 0, 6);
	assert_token(6, JSON_NULL, "null", 0, 7);
	assert_token(7, JSON_ARRAY, "[]", 0, 8);
	assert_token(8, JSON_STRING, "c", 0, 9);
	assert_token(9, JSON_OBJECT, "{}", 0, 10);

	assert_int_equal(parse("[[],[[]],{}]"), JSON_OK);
	assert_token(0, JSON_ARRAY, "[[],[[]],{}]", 3, 5);
	assert_token(2, JSON_ARRAY, "[[]]", 1, 4);
	assert_int_equal(parse(" { } "), JSON_OK);
	assert_token(0, JSON_OBJECT, "{ }", 0, 1);
}

static void test_get_and_index(void **state)
{
	int64_t v;
	bool b;
	int ret, list;

	(void)state;
	assert_int_equal(parse("{\"return\": {\"pid\": 1234, \"list\": [10, [20], 30]},"
			       " \"k\\u0065y\": true, \"return\": 5}"), JSON_OK);
	ret = json_get(&doc, 0, "return");

	/* The first of a repeated key; keys compare unescaped. */
	assert_int_equal(ret, 2);
	assert_true(json_int(&doc, json_get(&doc, ret, "pid"), &v));
	assert_int_equal(v, 1234);
	assert_true(json_bool(&doc, json_get(&doc, 0, "key"), &b));
	assert_true(b);
	assert_int_equal(json_get(&doc, 0, "k\\u0065y"), -1);
	assert_int_equal(json_get(&doc, 0, "retur"), -1);
	assert_int_equal(json_get(&doc, 0, "returns"), -1);
	assert_int_equal(json_get(&doc, 0, ""), -1);
	list = json_get(&doc, ret, "list");
	assert_int_equal(doc.tok[list].count, 3);
	assert_true(json_int(&doc, json_index(&doc, list, 0), &v));
	assert_int_equal(v, 10);
	assert_true(json_int(&doc, json_index(&doc, json_index(&doc, list, 1), 0), &v));
	assert_int_equal(v, 20);
	assert_true(json_int(&doc, json_index(&doc, list, 2), &v));
	assert_int_equal(v, 30);
	assert_int_equal(json_index(&doc, list, 3), -1);
	assert_int_equal(json_index(&doc, list, UINT32_MAX), -1);

	/* Wrong types and indices out of range are refused, not followed. */
	assert_int_equal(json_get(&doc, list, "x"), -1);
	assert_int_equal(json_index(&doc, ret, 0), -1);
	for (int t = -2; t < (int)doc.count + 3; t++) {
		char buf[16];

		if (t >= 0 && t < (int)doc.count)
			continue;
		assert_int_equal(json_get(&doc, t, "return"), -1);
		assert_int_equal(json_index(&doc, t, 0), -1);
		assert_false(json_int(&doc, t, &v));
		assert_false(json_bool(&doc, t, &b));
		assert_int_equal(json_string(&doc, t, buf, sizeof(buf)), -1);
		assert_false(json_string_is(&doc, t, ""));
	}
	assert_false(json_int(&doc, 0, &v));
	assert_false(json_bool(&doc, list, &b));
	assert_false(json_string_is(&doc, list, "x"));
	assert_int_equal(json_string(&doc, ret, (char[8]){ 0 }, 8), -1);

	assert_int_equal(parse("[false, null, \"true\"]"), JSON_OK);
	b = true;
	assert_true(json_bool(&doc, 1, &b));
	assert_false(b);
	assert_false(json_bool(&doc, 2, &b));
	assert_false(json_bool(&doc, 3, &b));
}

static void assert_unescapes(const char *json, const char *want, size_t want_len)
{
	char out[64];

	assert_int_equal(parse(json), JSON_OK);
	assert_int_equal(json_string(&doc, 0, out, sizeof(out)), want_len);
	assert_memory_equal(out, want, want_len + 1);
	assert_true(json_string_is(&doc, 0, want));
}

static void test_escapes(void **state)
{
	char out[8];

	(void)state;
	assert_unescapes("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8);
	assert_unescapes("\"\\u0041\\u007f\"", "A\x7f", 2);
	assert_unescapes("\"\\u00e9\\u07FF\"", "\xc3\xa9\xdf\xbf", 4);
	assert_unescapes("\"\\u0800\\u20AC\\uffff\"", "\xe0\xa0\x80\xe2\x82\xac\xef\xbf\xbf", 9);
	assert_unescapes("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4);
	assert_unescapes("\"\\uD800\\uDC00\\uDBFF\\uDFFF\"", "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", 8);
	/* Bytes from 0x80 up are taken as they are, valid UTF-8 or not. */
	assert_unescapes("\"\xc3\xa9\xff\x80\xfe\"", "\xc3\xa9\xff\x80\xfe", 5);

	/* \u0000 is JSON, but never a C string. */
	assert_int_equal(parse("\"a\\u0000b\""), JSON_OK);
	assert_int_equal(json_string(&doc, 0, out, sizeof(out)), -1);
	assert_false(json_string_is(&doc, 0, "a"));
	assert_false(json_string_is(&doc, 0, "ab"));
	assert_int_equal(parse("\"\\u0000\""), JSON_OK);
	assert_false(json_string_is(&doc, 0, ""));

	/* The buffer must hold the text and its NUL. */
	assert_int_equal(parse("\"\\u20ac\\u20ac\""), JSON_OK);
	for (size_t cap = 0; cap <= 6; cap++) {
		memset(out, 'x', sizeof(out));
		assert_int_equal(json_string(&doc, 0, out, cap), -1);
		if (cap < sizeof(out))
			assert_int_equal(out[cap], 'x');
	}
	assert_int_equal(json_string(&doc, 0, out, 7), 6);
	assert_false(json_string_is(&doc, 0, "\xe2\x82\xac"));
	assert_false(json_string_is(&doc, 0, "\xe2\x82\xac\xe2\x82\xac!"));

	static const char *const bad[] = {
		"\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\U0041\"", "\"\\\"", "\"\\",
		"\"\\u\"", "\"abc", "\"", "\"\\ud800\"", "\"\\ud800x\"", "\"\\ud800\\n\"",
		"\"\\ud800\\u0041\"", "\"\\ud800\\ud800\"", "\"\\udc00\"", "\"\\udfff\\ud800\"",
		"\"\\ud800\\udc0\"", "\"\\ud800\\", "\"\\ud800\\u", "\"\\ud800\\udc00",
		"\"\x01\"", "\"\x1f\"", "\"a\nb\"", "\"\t\"", "\"\\'\"", "'a'",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(bad[i]), JSON_E_SYNTAX);
	/* Every control character is refused raw. */
	for (int c = 0; c < 0x20; c++) {
		char s[4] = { '"', (char)c, '"', 0 };

		assert_int_equal(parse_n(s, 3, TOKENS), JSON_E_SYNTAX);
	}
	assert_int_equal(parse("\"\x7f\""), JSON_OK);
}

static void test_numbers(void **state)
{
	static const char *const good[] = {
		"0", "-0", "1", "-1", "10", "0.5", "-0.0", "1e5", "1E+5", "1e-05", "123.456e789",
		"0e0", "-0E-0",
	};
	static const char *const bad[] = {
		"01", "-01", "00", "-", "+1", "1.", ".5", "-.5", "1e", "1e+", "1E-", "0x10",
		"--1", "1.e3", "- 1", "Infinity", "NaN", "-Infinity", "[01]", "{\"a\":01}",
	};
	int64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(parse(good[i]), JSON_OK);
		assert_token(0, JSON_NUMBER, good[i], 0, 1);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(parse(bad[i]), JSON_OK);
	assert_int_equal(parse("01"), JSON_E_SYNTAX);
	assert_int_equal(parse("1 2"), JSON_E_TRAILING);

	/* Integers at the limits of int64_t, and just beyond. */
	assert_int_equal(parse("[9223372036854775807, -9223372036854775808, 9223372036854775808,"
			       " -9223372036854775809, 99999999999999999999, -0, 0, 1.0, 1e3,"
			       " 00000]"), JSON_E_SYNTAX);
	assert_int_equal(parse("[9223372036854775807, -9223372036854775808, 9223372036854775808,"
			       " -9223372036854775809, 99999999999999999999, -0, 0, 1.0, 1e3,"
			       " 18446744073709551616]"), JSON_OK);
	assert_true(json_int(&doc, 1, &v));
	assert_true(v == INT64_MAX);
	assert_true(json_int(&doc, 2, &v));
	assert_true(v == INT64_MIN);
	v = 42;
	assert_false(json_int(&doc, 3, &v));
	assert_false(json_int(&doc, 4, &v));
	assert_false(json_int(&doc, 5, &v));
	assert_int_equal(v, 42);
	assert_true(json_int(&doc, 6, &v));
	assert_int_equal(v, 0);
	assert_true(json_int(&doc, 7, &v));
	assert_int_equal(v, 0);
	assert_false(json_int(&doc, 8, &v));
	assert_false(json_int(&doc, 9, &v));
	assert_false(json_int(&doc, 10, &v));
	assert_true(parse("922337203685477580") == JSON_OK && json_int(&doc, 0, &v) &&
		    v == 922337203685477580);
	assert_true(parse("-9223372036854775800") == JSON_OK && json_int(&doc, 0, &v) &&
		    v == -9223372036854775800);
}

static void test_structure(void **state)
{
	static const char *const bad[] = {
		"[1,]", "[1,,2]", "[,1]", "[,]", "{\"a\":1,}", "{,}", "{\"a\"}", "{\"a\":}",
		"{\"a\" 1}", "{1:2}", "{a:1}", "{\"a\":1 \"b\":2}", "[1 2]", "[", "]", "{", "}",
		"[}", "{]", "[[]", "{\"a\":[}", "[1]]", "tru", "truee", "nul", "fals", "True",
		"/* c */ 1", "[1] // c", "{\"a\":1;}", "\"a\":1", "[\"a\":1]", ":", ",", "[1,",
		"{\"a\":1,", "{\"a\"", "{\"a\":",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(parse(bad[i]), JSON_OK);
	assert_int_equal(parse("[1,]"), JSON_E_SYNTAX);
	assert_int_equal(parse("{\"a\":1,}"), JSON_E_SYNTAX);
	assert_int_equal(parse("[1]]"), JSON_E_TRAILING);
	assert_int_equal(parse("{} {}"), JSON_E_TRAILING);
	assert_int_equal(parse("truee"), JSON_E_TRAILING);
	assert_int_equal(parse("1\n\x00"), JSON_OK); /* strlen stops at the NUL */
	assert_int_equal(parse_n("1\n\x00", 3, TOKENS), JSON_E_TRAILING);
	assert_int_equal(parse(""), JSON_E_EMPTY);
	assert_int_equal(parse(" \t\r\n "), JSON_E_EMPTY);
	assert_int_equal(parse_n(NULL, 0, TOKENS), JSON_E_EMPTY);
	/* Only the four white-space characters of the RFC. */
	assert_int_equal(parse("\v1"), JSON_E_SYNTAX);
	assert_int_equal(parse("\xc2\xa0" "1"), JSON_E_SYNTAX);
}

/* depth arrays inside each other, with a member at each level on the way out. */
static void nest(char *buf, unsigned depth)
{
	size_t n = 0;

	for (unsigned i = 0; i < depth; i++)
		n += (size_t)sprintf(buf + n, i % 2 ? "[" : "{\"k\":");
	buf[n++] = '0';
	for (unsigned i = depth; i-- > 0;)
		n += (size_t)sprintf(buf + n, i % 2 ? ",1]" : "}");
	buf[n] = '\0';
}

static void test_depth(void **state)
{
	char buf[2048];

	(void)state;
	for (unsigned depth = 1; depth <= JSON_MAX_DEPTH; depth++) {
		nest(buf, depth);
		assert_int_equal(parse(buf), JSON_OK);
		assert_int_equal(doc.tok[0].next, doc.count);
		assert_int_equal(doc.tok[0].end, strlen(buf));
	}
	nest(buf, JSON_MAX_DEPTH + 1);
	assert_int_equal(parse(buf), JSON_E_DEPTH);
	memset(buf, '[', 1000);
	assert_int_equal(parse_n(buf, 1000, TOKENS), JSON_E_DEPTH);
	memset(buf + 1000, ']', 1000);
	assert_int_equal(parse_n(buf, 2000, TOKENS), JSON_E_DEPTH);
	/* Depth is nesting, not count: many closed containers in a row are fine. */
	buf[0] = '[';
	for (size_t i = 0; i < 100; i++)
		memcpy(buf + 1 + i * 3, "[],", 3);
	memcpy(buf + 301, "[]]", 4);
	assert_int_equal(parse(buf), JSON_OK);
	assert_int_equal(doc.tok[0].count, 101);
}

static void test_tokens(void **state)
{
	const char *text = "{\"a\":[1,2,{\"b\":\"c\"}],\"d\":true}";
	size_t len = strlen(text);
	uint32_t need;

	(void)state;
	assert_int_equal(parse(text), JSON_OK);
	need = doc.count;
	assert_int_equal(need, 10);
	for (uint32_t cap = 0; cap < need; cap++) {
		memset(tok, 0xa5, sizeof(tok));
		assert_int_equal(parse_n(text, len, cap), JSON_E_TOKENS);
		/* Nothing written past the array the caller gave. */
		for (uint32_t t = cap; t < TOKENS; t++)
			assert_int_equal(tok[t].type, 0xa5);
	}
	assert_int_equal(parse_n(text, len, need), JSON_OK);
	assert_int_equal(parse_n(text, len, UINT32_MAX), JSON_OK);
	/* The first failure wins: a syntax error after the last token fits. */
	assert_int_equal(parse_n("[1,2,x]", 7, 2), JSON_E_TOKENS);
	assert_int_equal(parse_n("[1,2,x]", 7, 3), JSON_E_SYNTAX);
}

/* Replies of qemu-guest-agent, pretty and compact. */
static const char *const replies[] = {
	"{\"return\": {}}",
	"{\"return\": {\"pid\": 1234}}",
	"{\"error\": {\"class\": \"GenericError\", \"desc\": \"x\"}}",
	"{\"return\": {\"exitcode\": 3, \"out-data\": \"b3V0Cg==\", \"exited\": true,"
	" \"err-data\": \"ZXJyCg==\"}}",
	"{\n  \"return\": {\n    \"version\": \"7.2.0\",\n    \"supported_commands\": [\n"
	"      {\"enabled\": true, \"name\": \"guest-ping\", \"success-response\": true},\n"
	"      {\"enabled\": false, \"name\": \"guest-shutdown\", \"success-response\": false}\n"
	"    ]\n  }\n}\n",
	"{\"return\":-1.5e-3}",
	"[\"\\ud83d\\ude00\",null,true,false,\"\\u00e9\"]",
};

static void test_every_prefix(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		const char *text = replies[i];
		size_t len = strlen(text);

		assert_int_equal(parse_n(text, len, TOKENS), JSON_OK);
		for (size_t cut = 0; cut < len; cut++) {
			enum json_result r = parse_n(text, cut, TOKENS);

			/* A prefix ending in white space after the value is whole. */
			if (strspn(text + cut, " \n") == len - cut)
				assert_int_equal(r, JSON_OK);
			else
				assert_int_not_equal(r, JSON_OK);
		}
	}
}

static char wbuf[4096];
static struct json_writer w;

static void write_sample(char *buf, size_t cap)
{
	json_writer_init(&w, buf, cap);
	json_begin_object(&w);
	json_key(&w, "return");
	json_begin_object(&w);
	json_key(&w, "pid");
	json_put_int(&w, 1234);
	json_key(&w, "neg");
	json_put_int(&w, INT64_MIN);
	json_key(&w, "max");
	json_put_int(&w, INT64_MAX);
	json_key(&w, "ok");
	json_put_bool(&w, true);
	json_key(&w, "no");
	json_put_bool(&w, false);
	json_key(&w, "nothing");
	json_put_null(&w);
	json_key(&w, "list");
	json_begin_array(&w);
	json_put_int(&w, 0);
	json_put_string(&w, "a\"b", 3);
	json_begin_array(&w);
	json_end_array(&w);
	json_begin_object(&w);
	json_end_object(&w);
	json_put_int(&w, -1);
	json_end_array(&w);
	json_end_object(&w);
	json_key(&w, "k\"ey");
	json_put_string(&w, "", 0);
	json_end_object(&w);
}

static const char sample_text[] =
	"{\"return\":{\"pid\":1234,\"neg\":-9223372036854775808,\"max\":9223372036854775807,"
	"\"ok\":true,\"no\":false,\"nothing\":null,\"list\":[0,\"a\\\"b\",[],{},-1]},"
	"\"k\\\"ey\":\"\"}";

static void test_writer(void **state)
{
	int64_t v;
	int ret;

	(void)state;
	write_sample(wbuf, sizeof(wbuf));
	assert_true(json_writer_ok(&w));
	assert_string_equal(wbuf, sample_text);
	assert_int_equal(w.len, strlen(sample_text));
	assert_int_equal(parse(wbuf), JSON_OK);
	ret = json_get(&doc, 0, "return");
	assert_true(json_int(&doc, json_get(&doc, ret, "neg"), &v) && v == INT64_MIN);
	assert_true(json_int(&doc, json_get(&doc, ret, "max"), &v) && v == INT64_MAX);
	assert_true(json_string_is(&doc, json_get(&doc, 0, "k\"ey"), ""));

	json_writer_init(&w, wbuf, sizeof(wbuf));
	json_put_int(&w, 0);
	assert_true(json_writer_ok(&w));
	assert_string_equal(wbuf, "0");
	json_writer_init(&w, wbuf, sizeof(wbuf));
	json_put_string(&w, "x", 1);
	assert_true(json_writer_ok(&w));
	assert_string_equal(wbuf, "\"x\"");
}

static void test_writer_escapes(void **state)
{
	char all[256], back[256];

	(void)state;
	json_writer_init(&w, wbuf, sizeof(wbuf));
	json_put_string(&w, "\"\\/\b\f\n\r\t\x01\x1f\x7f\x80\xff" "a", 14);
	assert_true(json_writer_ok(&w));
	assert_string_equal(wbuf, "\"\\\"\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\x80\xff" "a\"");

	/* Every byte but NUL comes back as it went in. */
	for (int i = 0; i < 255; i++)
		all[i] = (char)(i + 1);
	json_writer_init(&w, wbuf, sizeof(wbuf));
	json_put_string(&w, all, 255);
	assert_true(json_writer_ok(&w));
	for (size_t i = 0; i < w.len; i++)
		assert_true((unsigned char)wbuf[i] >= 0x20 && wbuf[i] != 0x7f);
	assert_int_equal(parse(wbuf), JSON_OK);
	assert_int_equal(json_string(&doc, 0, back, sizeof(back)), 255);
	assert_memory_equal(back, all, 255);

	/* A NUL is written escaped: the reader keeps it out of C strings. */
	json_writer_init(&w, wbuf, sizeof(wbuf));
	json_put_string(&w, "a\0b", 3);
	assert_string_equal(wbuf, "\"a\\u0000b\"");
	json_writer_init(&w, wbuf, sizeof(wbuf));
	json_begin_object(&w);
	json_key(&w, "\n");
	json_put_null(&w);
	json_end_object(&w);
	assert_string_equal(wbuf, "{\"\\n\":null}");
}

static void test_writer_overflow(void **state)
{
	size_t full = strlen(sample_text);

	(void)state;
	for (size_t cap = 0; cap <= full + 2; cap++) {
		char *buf = malloc(cap ? cap : 1);

		memset(buf, 'x', cap);
		write_sample(buf, cap);
		assert_int_equal(json_writer_ok(&w), cap > full);
		assert_true(w.overflow == (cap <= full));
		/* Within cap, the text so far is always terminated. */
		if (cap) {
			assert_true(w.len < cap);
			assert_int_equal(buf[w.len], '\0');
			assert_memory_equal(buf, sample_text, w.len);
		}
		free(buf);
	}
}

static void test_writer_nesting(void **state)
{
	(void)state;
	json_writer_init(&w, wbuf, sizeof(wbuf));
	json_end_object(&w);
	assert_true(w.bad_nesting);
	assert_false(json_writer_ok(&w));

	json_writer_init(&w, wbuf, sizeof(wbuf));
	json_end_array(&w);
	assert_false(json_writer_ok(&w));

	json_writer_init(&w, wbuf, sizeof(wbuf));
	json_key(&w, "top");
	assert_false(json_writer_ok(&w));

	/* A key without its value, then another key or the end. */
	json_writer_init(&w, wbuf, sizeof(wbuf));
	json_begin_object(&w);
	json_key(&w, "a");
	json_key(&w, "b");
	json_put_int(&w, 1);
	json_end_object(&w);
	assert_false(json_writer_ok(&w));
	json_writer_init(&w, wbuf, sizeof(wbuf));
	json_begin_object(&w);
	json_key(&w, "a");
	json_end_object(&w);
	assert_false(json_writer_ok(&w));

	/* Two documents at the top. */
	json_writer_init(&w, wbuf, sizeof(wbuf));
	json_begin_object(&w);
	json_end_object(&w);
	json_put_int(&w, 1);
	assert_false(json_writer_ok(&w));

	/* Left open. */
	json_writer_init(&w, wbuf, sizeof(wbuf));
	json_begin_array(&w);
	json_put_int(&w, 1);
	assert_false(json_writer_ok(&w));
	json_end_array(&w);
	assert_true(json_writer_ok(&w));
	assert_string_equal(wbuf, "[1]");

	/* JSON_MAX_DEPTH levels, and one more. */
	json_writer_init(&w, wbuf, sizeof(wbuf));
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		json_begin_array(&w);
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		json_end_array(&w);
	assert_true(json_writer_ok(&w));
	assert_int_equal(parse(wbuf), JSON_OK);
	json_writer_init(&w, wbuf, sizeof(wbuf));
	for (int i = 0; i <= JSON_MAX_DEPTH; i++)
		json_begin_array(&w);
	assert_true(w.bad_nesting);
	for (int i = 0; i <= JSON_MAX_DEPTH; i++)
		json_end_array(&w);
	assert_false(json_writer_ok(&w));

	/* No buffer at all. */
	json_writer_init(&w, NULL, 0);
	assert_false(json_writer_ok(&w));
	json_put_null(&w);
	assert_true(w.overflow);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scalars),
		cmocka_unit_test(test_containers),
		cmocka_unit_test(test_get_and_index),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_every_prefix),
		cmocka_unit_test(test_writer),
		cmocka_unit_test(test_writer_escapes),
		cmocka_unit_test(test_writer_overflow),
		cmocka_unit_test(test_writer_nesting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
