/*
 * Framing (COBS, CRC-32), the streaming decoder, TLV payloads, the replay
 * cache, and the tables of the message catalogue (include/abi/api.h). Everything
 * that decides what a byte on the line means is here; docs/protocol.md
 * describes the same rules for the other end.
 */
#include "mgmt/proto.h"

#include <string.h>

#include "lib/le.h"
#include "abi/api.h"

/*
 * Reflected CRC-32, polynomial 0xEDB88320, four bits at a time: a 64-byte
 * table instead of 1 KiB, and still far faster than a 115200-baud line.
 */
static const uint32_t crc_nibble[16] = {
	0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
	0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
	0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
};

uint32_t proto_crc32(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;

	crc = ~crc;
	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		crc = (crc >> 4) ^ crc_nibble[crc & 0xf];
		crc = (crc >> 4) ^ crc_nibble[crc & 0xf];
	}
	return ~crc;
}

/*
 * COBS encoder writing straight into the caller's buffer, so a frame needs
 * no scratch copy of header, payload and CRC. Each block is a code byte
 * (1 + the number of non-zero bytes that follow) and those bytes; a code
 * below 0xFF stands for a zero after the block.
 */
struct cobs_writer {
	uint8_t *out;
	size_t cap;
	size_t pos;
	size_t code_pos;
	uint8_t code;
	bool overflow;
};

static void cobs_reserve_code(struct cobs_writer *c)
{
	c->code_pos = c->pos++;
	c->code = 1;
	if (c->pos > c->cap)
		c->overflow = true;
}

static void cobs_close_block(struct cobs_writer *c)
{
	if (!c->overflow)
		c->out[c->code_pos] = c->code;
}

static void cobs_put(struct cobs_writer *c, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n && !c->overflow; i++) {
		if (p[i] != 0) {
			if (c->pos >= c->cap) {
				c->overflow = true;
				break;
			}
			c->out[c->pos++] = p[i];
			c->code++;
		}
		if (p[i] == 0 || c->code == 0xff) {
			cobs_close_block(c);
			cobs_reserve_code(c);
		}
	}
}

int proto_encode(void *out, size_t cap, const struct proto_frame *frame)
{
	struct proto_header h = {
		.version = PROTO_VERSION,
		.type = frame->type,
		.flags = frame->flags,
		.id = frame->id,
		.code = frame->code,
		.length = frame->length,
	};
	struct cobs_writer c = { .out = out, .cap = cap };
	uint8_t crc[PROTO_CRC_SIZE];

	if (frame->type < PROTO_REQUEST || frame->type > PROTO_ERROR)
		return PROTO_E_INVAL;
	if (frame->length > PROTO_MAX_PAYLOAD)
		return PROTO_E_TOO_BIG;
	if (cap < 2)
		return PROTO_E_NOSPACE;

	le_put(crc, proto_crc32(proto_crc32(0, &h, sizeof(h)), frame->payload, frame->length),
	       PROTO_CRC_SIZE);
	/* The leading delimiter ends whatever partial frame the peer holds. */
	c.out[c.pos++] = PROTO_DELIMITER;
	cobs_reserve_code(&c);
	cobs_put(&c, (const uint8_t *)&h, sizeof(h));
	cobs_put(&c, frame->payload, frame->length);
	cobs_put(&c, crc, sizeof(crc));
	cobs_close_block(&c);
	if (c.overflow || c.pos >= cap)
		return PROTO_E_NOSPACE;
	c.out[c.pos++] = PROTO_DELIMITER;
	return (int)c.pos;
}

/*
 * Decodes a chunk in place (the output never overtakes the input). Returns
 * the decoded length, or -1 when a block runs past the end: bytes were lost.
 */
static long cobs_decode_in_place(uint8_t *buf, size_t n)
{
	size_t in = 0, out = 0;

	while (in < n) {
		uint8_t code = buf[in++];
		size_t run = (size_t)code - 1;

		/* A code byte is never 0 (the delimiter is not stored): run <= 254. */
		if (run > n - in)
			return -1;
		for (size_t k = 0; k < run; k++)
			buf[out++] = buf[in++];
		if (code != 0xff && in < n)
			buf[out++] = 0;
	}
	return (long)out;
}

void proto_decoder_init(struct proto_decoder *d, proto_text_fn text, void *ctx)
{
	memset(d, 0, sizeof(*d));
	d->text = text;
	d->ctx = ctx;
}

void proto_decoder_reset(struct proto_decoder *d)
{
	if (d->in_frame && d->len > 0)
		d->stats.truncated++;
	d->in_frame = false;
	d->len = 0;
}

static void emit_text(struct proto_decoder *d, const uint8_t *text, size_t len)
{
	if (len > 0 && d->text)
		d->text(d->ctx, text, len);
}

/* Checks the chunk held in d->buf; true with *frame set when it is a frame. */
static bool finish_chunk(struct proto_decoder *d, struct proto_frame *frame)
{
	long n = cobs_decode_in_place(d->buf, d->len);
	struct proto_header h;

	if (n < PROTO_MIN_RAW) {
		d->stats.truncated++;
		return false;
	}
	size_t body = (size_t)n - PROTO_CRC_SIZE;
	if (proto_crc32(0, d->buf, body) != (uint32_t)le_get(d->buf + body, PROTO_CRC_SIZE)) {
		d->stats.crc_errors++;
		return false;
	}
	memcpy(&h, d->buf, sizeof(h));
	if (h.version != PROTO_VERSION) {
		d->stats.bad_version++;
		return false;
	}
	/*
	 * The COBS bound lets a chunk hold a few bytes more than the longest
	 * frame: a length over the protocol's maximum is malformed even when
	 * it matches what arrived, so no reader ever sees more than
	 * PROTO_MAX_PAYLOAD bytes.
	 */
	if (h.type < PROTO_REQUEST || h.type > PROTO_ERROR || h.length > PROTO_MAX_PAYLOAD ||
	    h.length != body - PROTO_HEADER_SIZE) {
		d->stats.malformed++;
		return false;
	}
	frame->type = h.type;
	frame->flags = h.flags;
	frame->code = h.code;
	frame->id = h.id;
	frame->length = h.length;
	frame->payload = d->buf + PROTO_HEADER_SIZE;
	d->stats.frames++;
	return true;
}

bool proto_decode(struct proto_decoder *d, const uint8_t **data, size_t *len,
		  struct proto_frame *frame)
{
	const uint8_t *p = *data;
	size_t n = *len, i = 0, text_start = 0;
	bool found = false;

	while (i < n && !found) {
		uint8_t b = p[i++];

		if (!d->in_frame) {
			if (b != PROTO_DELIMITER)
				continue;
			emit_text(d, p + text_start, i - 1 - text_start);
			d->in_frame = true;
			d->len = 0;
		} else if (b == PROTO_DELIMITER) {
			/*
			 * Two delimiters in a row (end of one frame, start of
			 * the next) make an empty chunk: nothing to check. A
			 * chunk that is no frame does not end the frame state:
			 * its closing 0x00 may be the opening one of the next
			 * frame, when the chunk was text after a stray 0x00 or
			 * a frame that lost its own opening delimiter.
			 */
			if (d->len > 0)
				found = finish_chunk(d, frame);
			d->len = 0;
			if (found)
				d->in_frame = false;
		} else if (d->len == sizeof(d->buf)) {
			/* No frame is this long: it was text after a stray 0x00. */
			d->stats.oversize++;
			emit_text(d, d->buf, d->len);
			d->in_frame = false;
			d->len = 0;
			text_start = i - 1;
		} else {
			d->buf[d->len++] = b;
		}
		if (!d->in_frame && (found || b == PROTO_DELIMITER))
			text_start = i;
	}
	if (!d->in_frame)
		emit_text(d, p + text_start, i - text_start);
	*data = p + i;
	*len = n - i;
	return found;
}

void tlv_writer_init(struct tlv_writer *w, void *buf, size_t cap)
{
	w->buf = buf;
	w->cap = cap;
	w->len = 0;
	w->overflow = false;
}

static uint8_t *tlv_reserve(struct tlv_writer *w, uint8_t tag, size_t len)
{
	if (w->overflow || len > UINT16_MAX || w->cap - w->len < TLV_HEADER_SIZE + len) {
		w->overflow = true;
		return NULL;
	}
	uint8_t *p = w->buf + w->len;
	p[0] = tag;
	le_put(p + 1, len, 2);
	w->len += TLV_HEADER_SIZE + len;
	return p + TLV_HEADER_SIZE;
}

void tlv_put(struct tlv_writer *w, uint8_t tag, const void *value, size_t len)
{
	uint8_t *p = tlv_reserve(w, tag, len);

	if (p && len)
		memcpy(p, value, len);
}

void tlv_put_uint(struct tlv_writer *w, uint8_t tag, uint64_t v, size_t width)
{
	uint8_t *p = width <= 8 ? tlv_reserve(w, tag, width) : NULL;

	if (p)
		le_put(p, v, width);
	else
		w->overflow = true;
}

void tlv_put_u8(struct tlv_writer *w, uint8_t tag, uint8_t v)
{
	tlv_put_uint(w, tag, v, 1);
}

void tlv_put_u16(struct tlv_writer *w, uint8_t tag, uint16_t v)
{
	tlv_put_uint(w, tag, v, 2);
}

void tlv_put_u32(struct tlv_writer *w, uint8_t tag, uint32_t v)
{
	tlv_put_uint(w, tag, v, 4);
}

void tlv_put_u64(struct tlv_writer *w, uint8_t tag, uint64_t v)
{
	tlv_put_uint(w, tag, v, 8);
}

void tlv_put_str(struct tlv_writer *w, uint8_t tag, const char *s)
{
	tlv_put(w, tag, s, strlen(s));
}

size_t tlv_list_begin(struct tlv_writer *w, uint8_t tag)
{
	tlv_reserve(w, tag, 0);
	return w->len;
}

void tlv_list_end(struct tlv_writer *w, size_t begin)
{
	if (w->overflow)
		return;
	size_t len = w->len - begin;
	if (len > UINT16_MAX) {
		w->overflow = true;
		return;
	}
	le_put(w->buf + begin - 2, len, 2);
}

void tlv_reader_init(struct tlv_reader *r, const void *buf, size_t len)
{
	r->buf = buf;
	r->len = len;
	r->pos = 0;
	r->malformed = false;
}

bool tlv_next(struct tlv_reader *r, struct tlv *t)
{
	size_t left = r->len - r->pos;

	if (r->malformed || left == 0)
		return false;
	if (left < TLV_HEADER_SIZE ||
	    le_get(r->buf + r->pos + 1, 2) > left - TLV_HEADER_SIZE) {
		r->malformed = true;
		return false;
	}
	t->tag = r->buf[r->pos];
	t->len = (uint16_t)le_get(r->buf + r->pos + 1, 2);
	t->value = r->buf + r->pos + TLV_HEADER_SIZE;
	r->pos += TLV_HEADER_SIZE + t->len;
	return true;
}

int tlv_find(const void *buf, size_t len, uint8_t tag, struct tlv *t)
{
	struct tlv_reader r;

	tlv_reader_init(&r, buf, len);
	while (tlv_next(&r, t))
		if (t->tag == tag)
			return TLV_OK;
	return TLV_ABSENT;
}

static int tlv_get_uint(const void *buf, size_t len, uint8_t tag, size_t width, uint64_t *v)
{
	struct tlv t;
	int rc = tlv_find(buf, len, tag, &t);

	if (rc != TLV_OK)
		return rc;
	if (t.len != width)
		return TLV_BAD;
	*v = le_get(t.value, width);
	return TLV_OK;
}

int tlv_get_u8(const void *buf, size_t len, uint8_t tag, uint8_t *v)
{
	uint64_t x;
	int rc = tlv_get_uint(buf, len, tag, 1, &x);

	if (rc == TLV_OK)
		*v = (uint8_t)x;
	return rc;
}

int tlv_get_u16(const void *buf, size_t len, uint8_t tag, uint16_t *v)
{
	uint64_t x;
	int rc = tlv_get_uint(buf, len, tag, 2, &x);

	if (rc == TLV_OK)
		*v = (uint16_t)x;
	return rc;
}

int tlv_get_u32(const void *buf, size_t len, uint8_t tag, uint32_t *v)
{
	uint64_t x;
	int rc = tlv_get_uint(buf, len, tag, 4, &x);

	if (rc == TLV_OK)
		*v = (uint32_t)x;
	return rc;
}

int tlv_get_u64(const void *buf, size_t len, uint8_t tag, uint64_t *v)
{
	return tlv_get_uint(buf, len, tag, 8, v);
}

int tlv_get_str(const void *buf, size_t len, uint8_t tag, char *out, size_t cap)
{
	struct tlv t;
	int rc = tlv_find(buf, len, tag, &t);

	if (rc != TLV_OK)
		return rc;
	if ((size_t)t.len + 1 > cap)
		return TLV_BAD;
	for (size_t i = 0; i < t.len; i++)
		if (t.value[i] == 0)
			return TLV_BAD;
	memcpy(out, t.value, t.len);
	out[t.len] = '\0';
	return TLV_OK;
}

int tlv_get_bytes(const void *buf, size_t len, uint8_t tag, const uint8_t **v, size_t *n)
{
	struct tlv t;
	int rc = tlv_find(buf, len, tag, &t);

	if (rc != TLV_OK)
		return rc;
	*v = t.value;
	*n = t.len;
	return TLV_OK;
}

/* In the order a slot is given up for a new request: free ones first. */
enum { SLOT_FREE, SLOT_ANSWERED, SLOT_EXECUTING };

/* What makes a retransmission the same request: code and payload, not flags. */
static uint32_t request_fingerprint(const struct proto_frame *f)
{
	uint8_t code[2];

	le_put(code, f->code, 2);
	return proto_crc32(proto_crc32(0, code, sizeof(code)), f->payload, f->length);
}

void proto_replay_init(struct proto_replay *r)
{
	memset(r, 0, sizeof(*r));
}

enum proto_replay_verdict proto_replay_check(struct proto_replay *r,
					     const struct proto_frame *request,
					     const uint8_t **wire, size_t *len)
{
	uint32_t fp = request_fingerprint(request);
	struct proto_replay_slot *victim = NULL;

	for (unsigned i = 0; i < PROTO_REPLAY_SLOTS; i++) {
		struct proto_replay_slot *s = &r->slot[i];

		if (s->state != SLOT_FREE && s->id == request->id) {
			if (s->fingerprint != fp) {
				/* Same id, other content: a new request. */
				victim = s;
				break;
			}
			if (s->state == SLOT_EXECUTING)
				return PROTO_REPLAY_IN_PROGRESS;
			*wire = s->wire;
			*len = s->len;
			return PROTO_REPLAY_ANSWER;
		}
		/* Free first, then the oldest answered, then the oldest executing. */
		if (!victim || s->state < victim->state ||
		    (s->state == victim->state && s->age < victim->age))
			victim = s;
	}
	victim->state = SLOT_EXECUTING;
	victim->id = request->id;
	victim->fingerprint = fp;
	victim->age = ++r->clock;
	victim->len = 0;
	return PROTO_REPLAY_EXECUTE;
}

void proto_replay_store(struct proto_replay *r, const struct proto_frame *request,
			const uint8_t *wire, size_t len)
{
	uint32_t fp = request_fingerprint(request);

	if (len > PROTO_MAX_WIRE)
		return;
	for (unsigned i = 0; i < PROTO_REPLAY_SLOTS; i++) {
		struct proto_replay_slot *s = &r->slot[i];

		if (s->state == SLOT_EXECUTING && s->id == request->id && s->fingerprint == fp) {
			memcpy(s->wire, wire, len);
			s->len = (uint16_t)len;
			s->state = SLOT_ANSWERED;
			return;
		}
	}
	/* Evicted while executing (more than PROTO_REPLAY_SLOTS newer requests): not kept. */
}

#define NAME_CASE(sym, code, name) case code: return name;

const char *api_request_name(uint16_t request)
{
	switch (request) {
	API_REQUESTS(NAME_CASE)
	}
	return NULL;
}

const char *api_event_name(uint16_t event)
{
	switch (event) {
	API_EVENTS(NAME_CASE)
	}
	return NULL;
}

const char *api_error_name(uint16_t error)
{
	switch (error) {
	API_ERRORS(NAME_CASE)
	}
	return "unknown error";
}

#undef NAME_CASE

#define TAG_NAME_CASE(sym, tag, type, name) case tag: return name;
#define TAG_TYPE_CASE(sym, tag, t, name) case tag: *type = t; return true;

const char *api_tag_name(uint8_t tag)
{
	switch (tag) {
	API_TAGS(TAG_NAME_CASE)
	}
	return NULL;
}

bool api_request_waits_for_agent(uint16_t request)
{
	switch (request) {
	case API_REQ_GET_OS_NAME:
	case API_REQ_GET_ADDITIONS_VERSION:
	case API_REQ_SHUTDOWN:
	case API_REQ_EXECUTE_COMMAND:
	case API_REQ_SET_PARAMETER:
	case API_REQ_SYNC_TIME:
		return true;
	default:
		return false;
	}
}

bool api_tag_type(uint8_t tag, enum api_type *type)
{
	switch (tag) {
	API_TAGS(TAG_TYPE_CASE)
	}
	return false;
}

#undef TAG_NAME_CASE
#undef TAG_TYPE_CASE

static bool name_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

/* Lists hold entries; entries hold plain values. Deeper is refused. */
#define API_LIST_DEPTH_MAX 2

static bool payload_valid(const uint8_t *payload, size_t len, unsigned depth);

static bool value_valid(enum api_type type, const uint8_t *v, size_t len, unsigned depth)
{
	switch (type) {
	case API_T_U8:
		return len == 1;
	case API_T_U16:
		return len == 2;
	case API_T_U32:
		return len == 4;
	case API_T_U64:
	case API_T_SIZE:
		return len == 8;
	case API_T_BOOL:
		return len == 1 && v[0] <= 1;
	case API_T_STR:
		if (len > API_STR_MAX)
			return false;
		for (size_t i = 0; i < len; i++)
			if (v[i] < 0x20 || v[i] > 0x7e)
				return false;
		return true;
	case API_T_NAME:
		if (len < 1 || len > API_NAME_MAX)
			return false;
		for (size_t i = 0; i < len; i++)
			if (!name_char(v[i]))
				return false;
		return true;
	case API_T_BYTES:
	case API_T_HEX:
		return true;
	case API_T_MAC:
		return len == 6;
	case API_T_IPV4:
		return len == 4;
	case API_T_IPV4_RANGE:
		/* Network order, so the byte-wise order is the numeric one. */
		return len == 8 && memcmp(v, v + 4, 4) <= 0;
	case API_T_IPV4_LIST:
		return len >= 4 && len <= 4 * API_IPV4_LIST_MAX && len % 4 == 0;
	case API_T_LIST:
		return depth < API_LIST_DEPTH_MAX && payload_valid(v, len, depth + 1);
	}
	return false;
}

static bool payload_valid(const uint8_t *payload, size_t len, unsigned depth)
{
	struct tlv_reader r;
	struct tlv t;
	enum api_type type;

	tlv_reader_init(&r, payload, len);
	while (tlv_next(&r, &t))
		if (api_tag_type(t.tag, &type) && !value_valid(type, t.value, t.len, depth))
			return false;
	return !r.malformed;
}

bool api_value_valid(enum api_type type, const uint8_t *value, size_t len)
{
	return value_valid(type, value, len, 0);
}

bool api_payload_valid(const uint8_t *payload, size_t len)
{
	return payload_valid(payload, len, 0);
}
