/*
 * The reader is one loop over the text with an explicit stack of the open
 * containers (JSON_MAX_DEPTH entries), so a hostile document costs no
 * more stack than a friendly one. Strings are checked in full while
 * parsing (escapes, surrogate pairs, control characters), which lets the
 * unescaping in json_string and json_string_is trust a string token.
 */
#include "lib/json.h"

#include "lib/fmt.h"

#include <string.h>

/* Indices are returned as int: a token array never holds more than this. */
#define TOKENS_MAX 0x7fffffffu

struct parser {
	const char *text;
	uint32_t len, pos;
	struct json_token *tok;
	uint32_t cap, count;
	uint32_t open[JSON_MAX_DEPTH];  /* token index of each open container */
	uint32_t depth;
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static void skip_space(struct parser *p)
{
	while (p->pos < p->len && is_space(p->text[p->pos]))
		p->pos++;
}

/* The value of four hex digits at s (the caller has checked they are there), or -1. */
static int32_t hex4(const char *s)
{
	int32_t v = 0;

	for (int i = 0; i < 4; i++) {
		int d = fmt_hex_digit(s[i]);

		if (d < 0)
			return -1;
		v = v << 4 | d;
	}
	return v;
}

static bool is_high_surrogate(int32_t u)
{
	return u >= 0xd800 && u <= 0xdbff;
}

static bool is_low_surrogate(int32_t u)
{
	return u >= 0xdc00 && u <= 0xdfff;
}

static struct json_token *new_token(struct parser *p, enum json_type type, uint32_t start,
				    uint32_t end)
{
	struct json_token *t;

	if (p->count == p->cap)
		return NULL;
	t = &p->tok[p->count++];
	t->type = (uint8_t)type;
	t->start = start;
	t->end = end;
	t->count = 0;
	t->next = p->count;
	return t;
}

/* A string at p->pos (its opening quote). */
static enum json_result parse_string(struct parser *p)
{
	uint32_t i = p->pos + 1;

	while (i < p->len) {
		unsigned char c = (unsigned char)p->text[i];
		int32_t u;

		if (c == '"') {
			if (!new_token(p, JSON_STRING, p->pos + 1, i))
				return JSON_E_TOKENS;
			p->pos = i + 1;
			return JSON_OK;
		}
		if (c < 0x20)
			return JSON_E_SYNTAX;
		if (c != '\\') {
			i++;
			continue;
		}
		if (p->len - i < 2)
			return JSON_E_SYNTAX;
		switch (p->text[i + 1]) {
		case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
			i += 2;
			break;
		case 'u':
			if (p->len - i < 6 || (u = hex4(p->text + i + 2)) < 0 ||
			    is_low_surrogate(u))
				return JSON_E_SYNTAX;
			i += 6;
			if (!is_high_surrogate(u))
				break;
			/* Half a character is not text: the low half must follow. */
			if (p->len - i < 6 || p->text[i] != '\\' || p->text[i + 1] != 'u' ||
			    !is_low_surrogate(hex4(p->text + i + 2)))
				return JSON_E_SYNTAX;
			i += 6;
			break;
		default:
			return JSON_E_SYNTAX;
		}
	}
	return JSON_E_SYNTAX;
}

/* The digits at p->pos: at least one. */
static bool skip_digits(struct parser *p)
{
	uint32_t start = p->pos;

	while (p->pos < p->len && is_digit(p->text[p->pos]))
		p->pos++;
	return p->pos > start;
}

static enum json_result parse_number(struct parser *p)
{
	uint32_t start = p->pos;

	if (p->text[p->pos] == '-')
		p->pos++;
	if (p->pos < p->len && p->text[p->pos] == '0') {
		p->pos++;
		if (p->pos < p->len && is_digit(p->text[p->pos]))
			return JSON_E_SYNTAX;
	} else if (!skip_digits(p)) {
		return JSON_E_SYNTAX;
	}
	if (p->pos < p->len && p->text[p->pos] == '.') {
		p->pos++;
		if (!skip_digits(p))
			return JSON_E_SYNTAX;
	}
	if (p->pos < p->len && (p->text[p->pos] == 'e' || p->text[p->pos] == 'E')) {
		p->pos++;
		if (p->pos < p->len && (p->text[p->pos] == '+' || p->text[p->pos] == '-'))
			p->pos++;
		if (!skip_digits(p))
			return JSON_E_SYNTAX;
	}
	return new_token(p, JSON_NUMBER, start, p->pos) ? JSON_OK : JSON_E_TOKENS;
}

static enum json_result parse_literal(struct parser *p, const char *word, enum json_type type)
{
	uint32_t n = (uint32_t)strlen(word);

	if (p->len - p->pos < n || memcmp(p->text + p->pos, word, n) != 0)
		return JSON_E_SYNTAX;
	if (!new_token(p, type, p->pos, p->pos + n))
		return JSON_E_TOKENS;
	p->pos += n;
	return JSON_OK;
}

/* A value at p->pos: a scalar, or the opening bracket of a container, which stays open. */
static enum json_result parse_value(struct parser *p)
{
	enum json_type container;

	if (p->pos == p->len)
		return JSON_E_SYNTAX;
	switch (p->text[p->pos]) {
	case '{':
		container = JSON_OBJECT;
		break;
	case '[':
		container = JSON_ARRAY;
		break;
	case '"':
		return parse_string(p);
	case 't':
		return parse_literal(p, "true", JSON_TRUE);
	case 'f':
		return parse_literal(p, "false", JSON_FALSE);
	case 'n':
		return parse_literal(p, "null", JSON_NULL);
	default:
		return parse_number(p);
	}
	if (p->depth == JSON_MAX_DEPTH)
		return JSON_E_DEPTH;
	if (!new_token(p, container, p->pos, p->pos + 1))
		return JSON_E_TOKENS;
	p->open[p->depth++] = p->count - 1;
	p->pos++;
	return JSON_OK;
}

/* An object member's key and its colon, at p->pos. */
static enum json_result parse_key(struct parser *p)
{
	enum json_result r;

	if (p->pos == p->len || p->text[p->pos] != '"')
		return JSON_E_SYNTAX;
	r = parse_string(p);
	if (r != JSON_OK)
		return r;
	skip_space(p);
	if (p->pos == p->len || p->text[p->pos] != ':')
		return JSON_E_SYNTAX;
	p->pos++;
	return JSON_OK;
}

/*
 * After a value, or right after an opening bracket (just_opened): closes
 * the containers that end here and steps over the comma before the next
 * element. *done when the root value is complete.
 */
static enum json_result close_or_continue(struct parser *p, bool just_opened, bool *done)
{
	for (;;) {
		struct json_token *top;
		char c;

		skip_space(p);
		if (p->depth == 0) {
			*done = true;
			return JSON_OK;
		}
		if (p->pos == p->len)
			return JSON_E_SYNTAX;
		top = &p->tok[p->open[p->depth - 1]];
		c = p->text[p->pos];
		if (c == (top->type == JSON_OBJECT ? '}' : ']')) {
			p->pos++;
			top->end = p->pos;
			top->next = p->count;
			p->depth--;
			just_opened = false;
			continue;
		}
		if (!just_opened) {
			if (c != ',')
				return JSON_E_SYNTAX;
			p->pos++;
			skip_space(p);
		}
		top->count++;
		*done = false;
		return top->type == JSON_OBJECT ? parse_key(p) : JSON_OK;
	}
}

enum json_result json_parse(struct json_doc *doc, const char *text, size_t len,
			    struct json_token *tok, uint32_t cap)
{
	struct parser p = {
		.text = text,
		.tok = tok,
		.cap = cap < TOKENS_MAX ? cap : TOKENS_MAX,
	};
	enum json_result r;
	bool done = false;

	doc->text = text;
	doc->len = len;
	doc->tok = tok;
	doc->count = 0;
	/* Token offsets are 32 bits wide. */
	if (len > UINT32_MAX)
		return JSON_E_SYNTAX;
	p.len = (uint32_t)len;
	skip_space(&p);
	if (p.pos == p.len)
		return JSON_E_EMPTY;
	while (!done) {
		uint32_t depth = p.depth;

		skip_space(&p);
		r = parse_value(&p);
		if (r == JSON_OK)
			r = close_or_continue(&p, p.depth > depth, &done);
		if (r != JSON_OK)
			return r;
	}
	if (p.pos != p.len)
		return JSON_E_TRAILING;
	doc->count = p.count;
	return JSON_OK;
}

static const struct json_token *token(const struct json_doc *doc, int t, enum json_type type)
{
	if (t < 0 || (uint32_t)t >= doc->count || doc->tok[t].type != type)
		return NULL;
	return &doc->tok[t];
}

int json_get(const struct json_doc *doc, int obj, const char *key)
{
	const struct json_token *o = token(doc, obj, JSON_OBJECT);
	uint32_t i = (uint32_t)obj + 1;

	if (!o)
		return -1;
	for (uint32_t m = 0; m < o->count; m++) {
		if (json_string_is(doc, (int)i, key))
			return (int)i + 1;
		i = doc->tok[i + 1].next;
	}
	return -1;
}

int json_index(const struct json_doc *doc, int arr, uint32_t i)
{
	const struct json_token *a = token(doc, arr, JSON_ARRAY);
	uint32_t t = (uint32_t)arr + 1;

	if (!a || i >= a->count)
		return -1;
	while (i--)
		t = doc->tok[t].next;
	return (int)t;
}

bool json_int(const struct json_doc *doc, int t, int64_t *out)
{
	const struct json_token *n = token(doc, t, JSON_NUMBER);
	const char *s, *end;
	uint64_t limit = INT64_MAX, v = 0;
	bool negative;

	if (!n)
		return false;
	s = doc->text + n->start;
	end = doc->text + n->end;
	negative = *s == '-';
	if (negative) {
		s++;
		limit = (uint64_t)INT64_MAX + 1;
	}
	for (; s < end; s++) {
		unsigned d = (unsigned)(*s - '0');

		/* A fraction or an exponent: not an integer, whatever its value. */
		if (d > 9 || v > (limit - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = negative ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

bool json_bool(const struct json_doc *doc, int t, bool *out)
{
	if (token(doc, t, JSON_TRUE))
		*out = true;
	else if (token(doc, t, JSON_FALSE))
		*out = false;
	else
		return false;
	return true;
}

/*
 * The character at *pos of a string the parser accepted (a plain byte or
 * an escape), as UTF-8 into u; returns its length and steps *pos over it.
 */
static size_t unescape_char(const char *text, uint32_t *pos, char u[4])
{
	const char *s = text + *pos;
	int32_t c;

	if (s[0] != '\\') {
		u[0] = s[0];
		*pos += 1;
		return 1;
	}
	*pos += 2;
	switch (s[1]) {
	case 'b':
		u[0] = '\b';
		return 1;
	case 'f':
		u[0] = '\f';
		return 1;
	case 'n':
		u[0] = '\n';
		return 1;
	case 'r':
		u[0] = '\r';
		return 1;
	case 't':
		u[0] = '\t';
		return 1;
	case 'u':
		break;
	default:        /* the quote, backslash or slash itself */
		u[0] = s[1];
		return 1;
	}
	c = hex4(s + 2);
	*pos += 4;
	if (is_high_surrogate(c)) {
		c = 0x10000 + ((c - 0xd800) << 10) + (hex4(s + 8) - 0xdc00);
		*pos += 6;
	}
	if (c < 0x80) {
		u[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		u[0] = (char)(0xc0 | c >> 6);
		u[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		u[0] = (char)(0xe0 | c >> 12);
		u[1] = (char)(0x80 | (c >> 6 & 0x3f));
		u[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	u[0] = (char)(0xf0 | c >> 18);
	u[1] = (char)(0x80 | (c >> 12 & 0x3f));
	u[2] = (char)(0x80 | (c >> 6 & 0x3f));
	u[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

long json_string(const struct json_doc *doc, int t, char *out, size_t cap)
{
	const struct json_token *str = token(doc, t, JSON_STRING);
	uint32_t pos;
	size_t n = 0;

	if (!str || cap == 0)
		return -1;
	for (pos = str->start; pos < str->end;) {
		char u[4];
		size_t k = unescape_char(doc->text, &pos, u);

		/* A NUL would cut the C string short of what was sent. */
		if (k >= cap - n || (k == 1 && u[0] == '\0')) {
			out[0] = '\0';
			return -1;
		}
		memcpy(out + n, u, k);
		n += k;
	}
	out[n] = '\0';
	return (long)n;
}

bool json_string_is(const struct json_doc *doc, int t, const char *s)
{
	const struct json_token *str = token(doc, t, JSON_STRING);
	uint32_t pos;
	size_t n = 0;

	if (!str)
		return false;
	for (pos = str->start; pos < str->end;) {
		char u[4];
		size_t k = unescape_char(doc->text, &pos, u);

		/* s[n] == '\0' ends the comparison before any read past s's end. */
		for (size_t i = 0; i < k; i++, n++)
			if (s[n] == '\0' || s[n] != u[i])
				return false;
	}
	return s[n] == '\0';
}

void json_writer_init(struct json_writer *w, char *buf, size_t cap)
{
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->cap = cap;
	if (cap)
		buf[0] = '\0';
}

/* Keeps one byte free for the NUL: a text that fits is always terminated. */
static void put_raw(struct json_writer *w, const char *s, size_t n)
{
	if (w->overflow)
		return;
	if (w->cap == 0 || n >= w->cap - w->len) {
		w->overflow = true;
		return;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void put_comma(struct json_writer *w)
{
	if (w->need_comma[w->depth])
		put_raw(w, ",", 1);
	w->need_comma[w->depth] = true;
}

/* What comes before any value: nothing after a key, else the comma. */
static void begin_value(struct json_writer *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	/* A second value at the top would make the text two documents. */
	if (w->depth == 0 && w->need_comma[0])
		w->bad_nesting = true;
	put_comma(w);
}

static void put_escaped(struct json_writer *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;

	put_raw(w, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6] = { '\\', 0 };
		size_t len = 2;

		switch (c) {
		case '"': case '\\':
			esc[1] = (char)c;
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			/* DEL is legal JSON but a control character all the same:
			 * the text stays printable wherever it is shown. */
			if (c >= 0x20 && c != 0x7f)
				continue;
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			len = 6;
		}
		put_raw(w, s + run, i - run);
		put_raw(w, esc, len);
		run = i + 1;
	}
	put_raw(w, s + run, n - run);
	put_raw(w, "\"", 1);
}

static void begin_container(struct json_writer *w, char bracket)
{
	begin_value(w);
	if (w->depth == JSON_MAX_DEPTH) {
		w->bad_nesting = true;
		return;
	}
	put_raw(w, &bracket, 1);
	w->need_comma[++w->depth] = false;
}

static void end_container(struct json_writer *w, char bracket)
{
	if (w->depth == 0 || w->after_key) {
		w->bad_nesting = true;
		return;
	}
	put_raw(w, &bracket, 1);
	w->depth--;
}

void json_begin_object(struct json_writer *w)
{
	begin_container(w, '{');
}

void json_end_object(struct json_writer *w)
{
	end_container(w, '}');
}

void json_begin_array(struct json_writer *w)
{
	begin_container(w, '[');
}

void json_end_array(struct json_writer *w)
{
	end_container(w, ']');
}

void json_key(struct json_writer *w, const char *key)
{
	if (w->depth == 0 || w->after_key) {
		w->bad_nesting = true;
		return;
	}
	put_comma(w);
	put_escaped(w, key, strlen(key));
	put_raw(w, ":", 1);
	w->after_key = true;
}

void json_put_string(struct json_writer *w, const char *s, size_t n)
{
	begin_value(w);
	put_escaped(w, s, n);
}

void json_put_int(struct json_writer *w, int64_t v)
{
	char digits[20];
	uint64_t magnitude = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	size_t n = sizeof(digits);

	begin_value(w);
	do {
		digits[--n] = (char)('0' + magnitude % 10);
		magnitude /= 10;
	} while (magnitude);
	if (v < 0)
		put_raw(w, "-", 1);
	put_raw(w, digits + n, sizeof(digits) - n);
}

void json_put_bool(struct json_writer *w, bool v)
{
	begin_value(w);
	if (v)
		put_raw(w, "true", 4);
	else
		put_raw(w, "false", 5);
}

void json_put_null(struct json_writer *w)
{
	begin_value(w);
	put_raw(w, "null", 4);
}

bool json_writer_ok(const struct json_writer *w)
{
	/* An open container or a key without its value is not a document yet. */
	return w->cap > 0 && !w->overflow && !w->bad_nesting && w->depth == 0 && !w->after_key;
}
