/*
 * A bounded JSON reader and writer for the guest agent protocol
 * (docs/guest-agent.md). What a guest writes is hostile: the reader takes
 * at most a caller-given number of tokens and a fixed nesting depth,
 * allocates nothing, never reads outside the text it is given and accepts
 * only RFC 8259 JSON (no trailing commas, no comments, no NaN). Values
 * are located, not copied: a token is an offset range into the text, and
 * strings are unescaped only when the caller asks, into a bounded buffer.
 * Plain C, freestanding: it runs in the management VM, in the project's
 * own agent (a Linux program) and under the fuzzer.
 */
#ifndef LIB_JSON_H
#define LIB_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deeper documents are refused: recursion in readers stays bounded. */
#define JSON_MAX_DEPTH 16

enum json_type {
	JSON_OBJECT = 1,
	JSON_ARRAY,
	JSON_STRING,
	JSON_NUMBER,
	JSON_TRUE,
	JSON_FALSE,
	JSON_NULL,
};

enum json_result {
	JSON_OK = 0,
	JSON_E_SYNTAX = -1,     /* not JSON (also: bad escape, control char in a string) */
	JSON_E_TOKENS = -2,     /* more values than the token array holds */
	JSON_E_DEPTH = -3,      /* nested deeper than JSON_MAX_DEPTH */
	JSON_E_TRAILING = -4,   /* something other than white space after the value */
	JSON_E_EMPTY = -5,      /* only white space */
};

/*
 * One value. For a string, [start, end) is what lies between the quotes,
 * still escaped; for the others, the value's text. Members of an object
 * are key then value tokens, in order; `next` is the index of the token
 * after this value and everything inside it, so a reader skips a value
 * in one step.
 */
struct json_token {
	uint8_t type;           /* enum json_type */
	uint32_t start, end;
	uint32_t count;         /* object: members; array: elements; else 0 */
	uint32_t next;
};

struct json_doc {
	const char *text;
	size_t len;
	const struct json_token *tok;
	uint32_t count;         /* tokens used; the root is tok[0] */
};

/*
 * Parses exactly one JSON value (white space around it allowed) from
 * text[0..len) into tok[0..cap). On JSON_OK, doc describes it.
 */
enum json_result json_parse(struct json_doc *doc, const char *text, size_t len,
			    struct json_token *tok, uint32_t cap);

/*
 * Token index of the value of `key` in the object at index obj, or -1
 * (obj not an object, no such key). Keys compare after unescaping.
 */
int json_get(const struct json_doc *doc, int obj, const char *key);

/* Index of element i of the array at index arr, or -1. */
int json_index(const struct json_doc *doc, int arr, uint32_t i);

/* A number without fraction or exponent that fits int64_t. */
bool json_int(const struct json_doc *doc, int t, int64_t *out);
bool json_bool(const struct json_doc *doc, int t, bool *out);

/*
 * The string at t, unescaped (\uXXXX and surrogate pairs to UTF-8),
 * into out[0..cap) with a NUL after it. Returns its length, or -1 when t
 * is not a string, it holds a NUL (\u0000) or it does not fit.
 */
long json_string(const struct json_doc *doc, int t, char *out, size_t cap);

/* True when the string at t, unescaped, equals s. */
bool json_string_is(const struct json_doc *doc, int t, const char *s);

/*
 * The writer: appends into a caller's buffer, never past cap; an
 * overflow is remembered (json_writer_ok false) and the text is then
 * unusable. Commas are placed by the writer; a member is json_key then
 * one value.
 */
struct json_writer {
	char *buf;
	size_t cap, len;
	bool overflow;
	/* An end without a begin, deeper than JSON_MAX_DEPTH, a key at the top,
	 * a key or an end where a key's value belongs, two values at the top. */
	bool bad_nesting;
	uint8_t depth;
	bool need_comma[JSON_MAX_DEPTH + 1];
	bool after_key;
};

void json_writer_init(struct json_writer *w, char *buf, size_t cap);
void json_begin_object(struct json_writer *w);
void json_end_object(struct json_writer *w);
void json_begin_array(struct json_writer *w);
void json_end_array(struct json_writer *w);
void json_key(struct json_writer *w, const char *key);
/* n bytes of s, escaped: quote, backslash and control characters. */
void json_put_string(struct json_writer *w, const char *s, size_t n);
void json_put_int(struct json_writer *w, int64_t v);
void json_put_bool(struct json_writer *w, bool v);
void json_put_null(struct json_writer *w);
/*
 * True when the text written is one whole value, NUL-terminated: no
 * overflow or misnesting happened and every container is closed.
 */
bool json_writer_ok(const struct json_writer *w);

#endif
