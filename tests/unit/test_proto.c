#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "abi/api.h"
#include "mgmt/proto.h"

/* ---- Helpers ---- */

#define TEXT_MAX 16384
#define FRAMES_MAX 16

/* What a decoder produced: text and copies of the frames. */
struct sink {
	uint8_t text[TEXT_MAX];
	size_t text_len;
	unsigned text_calls;
	struct proto_frame frames[FRAMES_MAX];
	uint8_t payloads[FRAMES_MAX][PROTO_MAX_PAYLOAD];
	unsigned count;
};

static void on_text(void *ctx, const uint8_t *text, size_t len)
{
	struct sink *s = ctx;

	assert_true(len > 0);
	assert_true(s->text_len + len <= TEXT_MAX);
	memcpy(s->text + s->text_len, text, len);
	s->text_len += len;
	s->text_calls++;
}

/* Feeds data in pieces of `chunk` bytes (0: all at once). */
static void feed(struct proto_decoder *d, struct sink *s, const uint8_t *data, size_t len,
		 size_t chunk)
{
	while (len > 0) {
		size_t n = chunk && chunk < len ? chunk : len;
		const uint8_t *p = data;
		size_t left = n;
		struct proto_frame f;

		while (proto_decode(d, &p, &left, &f)) {
			assert_true(s->count < FRAMES_MAX);
			assert_true(f.length <= PROTO_MAX_PAYLOAD);
			memcpy(s->payloads[s->count], f.payload, f.length);
			f.payload = s->payloads[s->count];
			s->frames[s->count++] = f;
		}
		assert_int_equal(left, 0);
		data += n;
		len -= n;
	}
}

static struct sink *new_sink(struct proto_decoder *d)
{
	struct sink *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	proto_decoder_init(d, on_text, s);
	return s;
}

static size_t encode(uint8_t *out, size_t cap, uint8_t type, uint32_t id, uint16_t code,
		     const void *payload, size_t len)
{
	struct proto_frame f = {
		.type = type, .id = id, .code = code, .length = (uint16_t)len, .payload = payload,
	};
	int n = proto_encode(out, cap, &f);

	assert_true(n > 0);
	return (size_t)n;
}

static void expect_frame(const struct proto_frame *f, uint8_t type, uint32_t id, uint16_t code,
			 const void *payload, size_t len)
{
	assert_int_equal(f->type, type);
	assert_int_equal(f->id, id);
	assert_int_equal(f->code, code);
	assert_int_equal(f->length, len);
	if (len)
		assert_memory_equal(f->payload, payload, len);
}

/*
 * An independent COBS encoder, so tests can put arbitrary raw bytes (bad
 * CRC, bad version, short frames) on the wire with correct stuffing.
 */
static size_t cobs_wire(const uint8_t *raw, size_t n, uint8_t *out)
{
	size_t o = 0, code_at;
	uint8_t code = 1;

	out[o++] = 0;
	code_at = o++;
	for (size_t i = 0; i < n; i++) {
		if (raw[i] == 0) {
			out[code_at] = code;
			code_at = o++;
			code = 1;
			continue;
		}
		out[o++] = raw[i];
		if (++code == 0xff) {
			out[code_at] = code;
			code_at = o++;
			code = 1;
		}
	}
	out[code_at] = code;
	out[o++] = 0;
	return o;
}

/* Raw frame bytes (header, payload, CRC) with chosen fields. */
static size_t raw_frame(uint8_t *raw, uint8_t version, uint8_t type, uint16_t length,
			const void *payload, size_t payload_len)
{
	struct proto_header h = {
		.version = version, .type = type, .id = 42, .code = API_REQ_PAUSE, .length = length,
	};
	size_t n = sizeof(h);

	memcpy(raw, &h, sizeof(h));
	memcpy(raw + n, payload, payload_len);
	n += payload_len;
	uint32_t crc = proto_crc32(0, raw, n);
	memcpy(raw + n, &crc, 4);
	return n + 4;
}

/* ---- CRC and encoder ---- */

static void test_crc32_is_ieee(void **state)
{
	(void)state;
	assert_int_equal(proto_crc32(0, "123456789", 9), 0xcbf43926);
	assert_int_equal(proto_crc32(0, "", 0), 0);
	/* Chaining gives the CRC of the concatenation. */
	assert_int_equal(proto_crc32(proto_crc32(0, "1234", 4), "56789", 5), 0xcbf43926);
}

static void test_round_trip_all_types_and_sizes(void **state)
{
	static const size_t sizes[] = { 0, 1, 2, 253, 254, 255, 256, 507, 508, 509, 1023, 1024 };
	static const uint8_t types[] = { PROTO_REQUEST, PROTO_RESPONSE, PROTO_EVENT, PROTO_ERROR };
	static uint8_t wire[PROTO_MAX_WIRE];
	uint8_t patterns[3][PROTO_MAX_PAYLOAD];

	(void)state;
	for (size_t i = 0; i < PROTO_MAX_PAYLOAD; i++) {
		patterns[0][i] = (uint8_t)i;     /* every byte value, zeros included */
		patterns[1][i] = 0xff;           /* no zeros: longest COBS blocks */
		patterns[2][i] = 0;              /* only zeros */
	}
	for (size_t p = 0; p < 3; p++) {
		for (size_t t = 0; t < sizeof(types); t++) {
			for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
				struct proto_decoder d;
				struct sink *s = new_sink(&d);
				size_t n = encode(wire, sizeof(wire), types[t], 0xdeadbeef,
						  0x1234, patterns[p], sizes[k]);

				assert_true(n <= PROTO_MAX_WIRE);
				assert_int_equal(wire[0], 0);
				assert_int_equal(wire[n - 1], 0);
				assert_null(memchr(wire + 1, 0, n - 2));
				feed(&d, s, wire, n, k % 2 ? 1 : 0);
				assert_int_equal(s->count, 1);
				expect_frame(&s->frames[0], types[t], 0xdeadbeef, 0x1234,
					     patterns[p], sizes[k]);
				assert_int_equal(s->text_len, 0);
				assert_int_equal(d.stats.frames, 1);
				free(s);
			}
		}
	}
}

static void test_flags_survive(void **state)
{
	uint8_t wire[64];
	struct proto_frame f = { .type = PROTO_REQUEST, .flags = PROTO_FLAG_RETRY | 0x80, .id = 1 };
	struct proto_decoder d;
	struct sink *s = new_sink(&d);
	int n = proto_encode(wire, sizeof(wire), &f);

	(void)state;
	assert_true(n > 0);
	feed(&d, s, wire, (size_t)n, 0);
	assert_int_equal(s->count, 1);
	assert_int_equal(s->frames[0].flags, PROTO_FLAG_RETRY | 0x80);
	free(s);
}

static void test_encode_errors(void **state)
{
	static uint8_t payload[PROTO_MAX_PAYLOAD + 1];
	static uint8_t wire[PROTO_MAX_WIRE + 16];
	struct proto_frame f = { .type = PROTO_REQUEST, .payload = payload };

	(void)state;
	f.length = PROTO_MAX_PAYLOAD + 1;
	assert_int_equal(proto_encode(wire, sizeof(wire), &f), PROTO_E_TOO_BIG);
	f.length = 10;
	f.type = 0;
	assert_int_equal(proto_encode(wire, sizeof(wire), &f), PROTO_E_INVAL);
	f.type = 5;
	assert_int_equal(proto_encode(wire, sizeof(wire), &f), PROTO_E_INVAL);

	/* Every buffer one byte too small fails, and nothing is written past it. */
	f.type = PROTO_RESPONSE;
	f.length = 600;
	memset(payload, 0x5a, f.length);
	int need = proto_encode(wire, sizeof(wire), &f);
	assert_true(need > 0);
	for (int cap = 0; cap < need; cap++) {
		memset(wire, 0xee, sizeof(wire));
		assert_int_equal(proto_encode(wire, (size_t)cap, &f), PROTO_E_NOSPACE);
		for (size_t i = (size_t)cap; i < sizeof(wire); i++)
			assert_int_equal(wire[i], 0xee);
	}
	assert_int_equal(proto_encode(wire, (size_t)need, &f), need);
}

/* ---- Decoder: damage and resynchronisation ---- */

static void test_crc_error_is_dropped(void **state)
{
	uint8_t raw[64], wire[128], good[128];
	struct proto_decoder d;
	struct sink *s = new_sink(&d);
	size_t n = raw_frame(raw, PROTO_VERSION, PROTO_REQUEST, 3, "abc", 3);

	(void)state;
	raw[PROTO_HEADER_SIZE + 1] ^= 0x04; /* one payload bit */
	size_t w = cobs_wire(raw, n, wire);
	size_t g = encode(good, sizeof(good), PROTO_REQUEST, 9, API_REQ_PAUSE, "xyz", 3);
	feed(&d, s, wire, w, 0);
	feed(&d, s, good, g, 0);
	assert_int_equal(d.stats.crc_errors, 1);
	assert_int_equal(s->count, 1);
	expect_frame(&s->frames[0], PROTO_REQUEST, 9, API_REQ_PAUSE, "xyz", 3);
	free(s);
}

static void test_bad_header_fields_are_counted(void **state)
{
	uint8_t raw[64], wire[128];
	struct {
		uint8_t version, type;
		uint16_t length;
		size_t payload;
	} cases[] = {
		{ 2, PROTO_REQUEST, 3, 3 },     /* future framing */
		{ 0, PROTO_REQUEST, 3, 3 },
		{ PROTO_VERSION, 0, 3, 3 },     /* unknown type */
		{ PROTO_VERSION, 9, 3, 3 },
		{ PROTO_VERSION, PROTO_REQUEST, 4, 3 }, /* length says more */
		{ PROTO_VERSION, PROTO_REQUEST, 2, 3 }, /* length says less */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct proto_decoder d;
		struct sink *s = new_sink(&d);
		size_t n = raw_frame(raw, cases[i].version, cases[i].type, cases[i].length, "abc",
				     cases[i].payload);

		feed(&d, s, wire, cobs_wire(raw, n, wire), 0);
		assert_int_equal(s->count, 0);
		assert_int_equal(d.stats.bad_version, i < 2 ? 1 : 0);
		assert_int_equal(d.stats.malformed, i < 2 ? 0 : 1);
		free(s);
	}
}

static void test_short_and_broken_chunks_are_truncated(void **state)
{
	uint8_t raw[64], wire[128];
	struct proto_decoder d;
	struct sink *s = new_sink(&d);

	(void)state;
	/* Fewer bytes than header + CRC. */
	size_t n = raw_frame(raw, PROTO_VERSION, PROTO_REQUEST, 0, "", 0);
	feed(&d, s, wire, cobs_wire(raw, n - 1, wire), 0);
	assert_int_equal(d.stats.truncated, 1);
	/* A COBS code byte that promises more bytes than the chunk has. */
	static const uint8_t broken[] = { 0, 0x20, 'a', 'b', 0 };
	feed(&d, s, broken, sizeof(broken), 0);
	assert_int_equal(d.stats.truncated, 2);
	assert_int_equal(s->count, 0);
	free(s);
}

/*
 * COBS lets a chunk hold a few bytes more than the longest frame: a header
 * that claims 1025..1028 payload bytes, CRC-valid and matching what
 * arrived, must still be refused (it overflowed the management VM's
 * request buffer once).
 */
static void test_payload_over_the_maximum_is_refused(void **state)
{
	static uint8_t raw[PROTO_MAX_RAW + 8], wire[PROTO_MAX_WIRE + 16];
	struct proto_decoder d;
	struct sink *s = new_sink(&d);

	(void)state;
	for (size_t len = PROTO_MAX_PAYLOAD + 1; len <= PROTO_MAX_PAYLOAD + 4; len++) {
		struct proto_header h = { .version = PROTO_VERSION, .type = PROTO_REQUEST,
					  .id = 7, .code = API_REQ_HELLO, .length = (uint16_t)len };
		size_t n = sizeof(h) + len;

		memcpy(raw, &h, sizeof(h));
		/* Zeros cost no COBS code byte: the chunk stays within PROTO_MAX_BODY. */
		for (size_t i = 0; i < len; i++)
			raw[sizeof(h) + i] = i % 200 ? 'x' : 0;
		uint32_t crc = proto_crc32(0, raw, n);
		memcpy(raw + n, &crc, sizeof(crc));
		size_t w = cobs_wire(raw, n + sizeof(crc), wire);
		assert_true(w - 2 <= PROTO_MAX_BODY);
		feed(&d, s, wire, w, 0);
	}
	assert_int_equal(s->count, 0);
	assert_int_equal(d.stats.malformed, 4);
	free(s);
}

static void test_oversize_chunk_is_given_back_as_text(void **state)
{
	static uint8_t stream[4096];
	uint8_t good[64];
	struct proto_decoder d;
	struct sink *s = new_sink(&d);
	size_t n = 0;

	(void)state;
	/* A stray 0x00, then a long log with no delimiter. */
	stream[n++] = 0;
	for (size_t i = 0; i < 3000; i++)
		stream[n++] = (uint8_t)('a' + i % 26);
	size_t g = encode(good, sizeof(good), PROTO_EVENT, 0, API_EVENT_VM_STATE_CHANGE, "e", 1);
	memcpy(stream + n, good, g);
	n += g;
	feed(&d, s, stream, n, 7);
	assert_int_equal(d.stats.oversize, 1);
	assert_int_equal(s->text_len, 3000);
	assert_memory_equal(s->text, stream + 1, 3000);
	assert_int_equal(s->count, 1);
	expect_frame(&s->frames[0], PROTO_EVENT, 0, API_EVENT_VM_STATE_CHANGE, "e", 1);
	free(s);
}

static void test_log_text_between_frames(void **state)
{
	static const char *const logs[] = {
		"[    0.125] INFO  vmm 0.1.0 starting\r\n",
		"[    1.000] WARN  vm web: unassigned port 0x80\r\n",
		"tail without newline",
	};
	uint8_t stream[1024], expect_text[256];
	struct proto_decoder d;
	struct sink *s = new_sink(&d);
	size_t n = 0, t = 0;

	(void)state;
	for (unsigned i = 0; i < 3; i++) {
		size_t l = strlen(logs[i]);

		memcpy(stream + n, logs[i], l);
		memcpy(expect_text + t, logs[i], l);
		n += l;
		t += l;
		if (i < 2)
			n += encode(stream + n, sizeof(stream) - n, PROTO_RESPONSE, i, API_REQ_GET_STATE,
				    "\x23\x01\x00\x05", 4);
	}
	for (size_t chunk = 0; chunk < 5; chunk++) {
		memset(s, 0, sizeof(*s));
		proto_decoder_init(&d, on_text, s);
		feed(&d, s, stream, n, chunk);
		assert_int_equal(s->count, 2);
		expect_frame(&s->frames[1], PROTO_RESPONSE, 1, API_REQ_GET_STATE,
			     "\x23\x01\x00\x05", 4);
		assert_int_equal(s->text_len, t);
		assert_memory_equal(s->text, expect_text, t);
	}
	/* Whole runs of text come in one call when fed at once. */
	memset(s, 0, sizeof(*s));
	proto_decoder_init(&d, on_text, s);
	feed(&d, s, stream, n, 0);
	assert_int_equal(s->text_calls, 3);
	free(s);
}

static void test_text_callback_may_be_null(void **state)
{
	uint8_t stream[128];
	struct proto_decoder d;
	struct proto_frame f;
	size_t n = 0;

	(void)state;
	memcpy(stream, "log line\n", 9);
	n = 9 + encode(stream + 9, sizeof(stream) - 9, PROTO_REQUEST, 5, API_REQ_RESET, "", 0);
	proto_decoder_init(&d, NULL, NULL);
	const uint8_t *p = stream;
	assert_true(proto_decode(&d, &p, &n, &f));
	assert_int_equal(f.id, 5);
	assert_int_equal(n, 0);
}

static void test_noise_before_between_and_inside(void **state)
{
	uint8_t stream[1024], f1[64], f2[64], f3[64];
	struct proto_decoder d;
	struct sink *s = new_sink(&d);
	size_t n = 0;
	size_t l1 = encode(f1, sizeof(f1), PROTO_REQUEST, 1, API_REQ_STARTUP, "one", 3);
	size_t l2 = encode(f2, sizeof(f2), PROTO_REQUEST, 2, API_REQ_STARTUP, "two", 3);
	size_t l3 = encode(f3, sizeof(f3), PROTO_REQUEST, 3, API_REQ_STARTUP, "three", 5);

	(void)state;
	/* Noise with stray delimiters before the first frame. */
	static const uint8_t noise[] = { 0xff, 0x00, 0x13, 0x7e, 0x00, 0x00, 0x81, 0x02 };
	memcpy(stream + n, noise, sizeof(noise));
	n += sizeof(noise);
	memcpy(stream + n, f1, l1);
	n += l1;
	memcpy(stream + n, noise, sizeof(noise));
	n += sizeof(noise);
	/* A noise byte inside the second frame. */
	memcpy(stream + n, f2, 5);
	stream[n + 5] = 0x99;
	memcpy(stream + n + 6, f2 + 5, l2 - 5);
	n += l2 + 1;
	memcpy(stream + n, f3, l3);
	n += l3;
	feed(&d, s, stream, n, 0);
	assert_int_equal(s->count, 2);
	expect_frame(&s->frames[0], PROTO_REQUEST, 1, API_REQ_STARTUP, "one", 3);
	expect_frame(&s->frames[1], PROTO_REQUEST, 3, API_REQ_STARTUP, "three", 5);
	assert_true(d.stats.crc_errors + d.stats.truncated >= 1);
	free(s);
}

static void test_lost_opening_delimiter_costs_one_frame(void **state)
{
	uint8_t stream[256], f1[64], f2[64];
	struct proto_decoder d;
	struct sink *s = new_sink(&d);
	size_t l1 = encode(f1, sizeof(f1), PROTO_EVENT, 0, API_EVENT_VM_STATE_CHANGE, "a", 1);
	size_t l2 = encode(f2, sizeof(f2), PROTO_EVENT, 0, API_EVENT_VM_STATE_CHANGE, "b", 1);
	size_t n = 0;

	(void)state;
	memcpy(stream, "log\n", 4);
	n = 4;
	memcpy(stream + n, f1 + 1, l1 - 1); /* first frame without its opening 0x00 */
	n += l1 - 1;
	memcpy(stream + n, "more log\n", 9);
	n += 9;
	memcpy(stream + n, f2, l2);
	n += l2;
	feed(&d, s, stream, n, 0);
	/* The closing 0x00 of the damaged frame opened a chunk; the next frame is found. */
	assert_int_equal(s->count, 1);
	expect_frame(&s->frames[0], PROTO_EVENT, 0, API_EVENT_VM_STATE_CHANGE, "b", 1);
	free(s);
}

/*
 * Any single dropped or duplicated byte in a stream of frames costs at
 * most one frame, and what comes out is always a frame that was sent.
 */
static void check_damaged_stream(const uint8_t *stream, size_t n, unsigned count)
{
	struct proto_decoder d;
	struct sink *s = new_sink(&d);
	unsigned next = 0;

	feed(&d, s, stream, n, 3);
	assert_true(s->count + 1 >= count);
	for (unsigned i = 0; i < s->count; i++) {
		/* In order, each equal to one that was sent. */
		while (next < count && s->frames[i].id != next + 1)
			next++;
		assert_true(next < count);
		char payload[2] = { (char)('a' + next), 0 };
		expect_frame(&s->frames[i], PROTO_REQUEST, next + 1, API_REQ_PAUSE, payload, 1);
		next++;
	}
	free(s);
}

static void test_dropped_and_duplicated_bytes(void **state)
{
	enum { COUNT = 4 };
	uint8_t wires[COUNT][64], stream[512], damaged[512];
	size_t lens[COUNT], n = 0;

	(void)state;
	for (unsigned i = 0; i < COUNT; i++) {
		char payload = (char)('a' + i);

		lens[i] = encode(wires[i], sizeof(wires[i]), PROTO_REQUEST, i + 1, API_REQ_PAUSE,
				 &payload, 1);
		memcpy(stream + n, wires[i], lens[i]);
		n += lens[i];
		memcpy(stream + n, "log\n", 4); /* text between frames */
		n += 4;
	}
	for (size_t drop = 0; drop < n; drop++) {
		memcpy(damaged, stream, drop);
		memcpy(damaged + drop, stream + drop + 1, n - drop - 1);
		check_damaged_stream(damaged, n - 1, COUNT);
	}
	for (size_t dup = 0; dup < n; dup++) {
		memcpy(damaged, stream, dup + 1);
		memcpy(damaged + dup + 1, stream + dup, n - dup);
		check_damaged_stream(damaged, n + 1, COUNT);
	}
}

static void test_peer_disconnects_mid_frame(void **state)
{
	uint8_t f1[64], f2[64];
	struct proto_decoder d;
	struct sink *s = new_sink(&d);
	size_t l1 = encode(f1, sizeof(f1), PROTO_REQUEST, 1, API_REQ_TURN_OFF, "x", 1);
	size_t l2 = encode(f2, sizeof(f2), PROTO_REQUEST, 2, API_REQ_TURN_OFF, "y", 1);

	(void)state;
	/* Half a frame, then the owner's inter-byte timeout fires. */
	feed(&d, s, f1, l1 / 2, 0);
	assert_true(d.in_frame);
	proto_decoder_reset(&d);
	assert_int_equal(d.stats.truncated, 1);
	assert_false(d.in_frame);
	/* A reset between frames counts nothing. */
	proto_decoder_reset(&d);
	assert_int_equal(d.stats.truncated, 1);
	/* The reconnected peer's frame is found; no half frame ever came out. */
	feed(&d, s, f2, l2, 0);
	assert_int_equal(s->count, 1);
	expect_frame(&s->frames[0], PROTO_REQUEST, 2, API_REQ_TURN_OFF, "y", 1);

	/* Without a reset, the next frame's opening 0x00 ends the half frame. */
	feed(&d, s, f1, l1 / 2, 0);
	feed(&d, s, f2, l2, 0);
	assert_int_equal(s->count, 2);
	expect_frame(&s->frames[1], PROTO_REQUEST, 2, API_REQ_TURN_OFF, "y", 1);
	free(s);
}

static void test_decode_stops_after_each_frame(void **state)
{
	uint8_t stream[256];
	struct proto_decoder d;
	struct proto_frame f;
	size_t n = 0;

	(void)state;
	for (uint32_t id = 1; id <= 3; id++)
		n += encode(stream + n, sizeof(stream) - n, PROTO_REQUEST, id, API_REQ_GET_STATE,
			    "", 0);
	proto_decoder_init(&d, NULL, NULL);
	const uint8_t *p = stream;
	size_t left = n;
	for (uint32_t id = 1; id <= 3; id++) {
		assert_true(proto_decode(&d, &p, &left, &f));
		assert_int_equal(f.id, id);
	}
	assert_false(proto_decode(&d, &p, &left, &f));
	assert_int_equal(left, 0);
}

/* ---- Replay cache ---- */

static struct proto_frame request(uint32_t id, uint16_t code, const char *payload)
{
	return (struct proto_frame){
		.type = PROTO_REQUEST, .id = id, .code = code,
		.length = (uint16_t)strlen(payload), .payload = (const uint8_t *)payload,
	};
}

/* A management VM loop in miniature: executes, answers, caches. */
struct server {
	struct proto_replay replay;
	unsigned executed;
	uint8_t out[PROTO_MAX_WIRE];
	size_t out_len;
};

static void serve(struct server *srv, const struct proto_frame *req)
{
	const uint8_t *wire;
	size_t len;

	switch (proto_replay_check(&srv->replay, req, &wire, &len)) {
	case PROTO_REPLAY_EXECUTE: {
		uint8_t payload[8];
		struct tlv_writer w;

		srv->executed++;
		tlv_writer_init(&w, payload, sizeof(payload));
		tlv_put_u8(&w, API_TAG_STATE, VM_STATE_PAUSED);
		struct proto_frame resp = { .type = PROTO_RESPONSE, .id = req->id,
					    .code = req->code, .length = (uint16_t)w.len,
					    .payload = payload };
		int n = proto_encode(srv->out, sizeof(srv->out), &resp);
		assert_true(n > 0);
		srv->out_len = (size_t)n;
		proto_replay_store(&srv->replay, req, srv->out, srv->out_len);
		break;
	}
	case PROTO_REPLAY_ANSWER:
		memcpy(srv->out, wire, len);
		srv->out_len = len;
		break;
	case PROTO_REPLAY_IN_PROGRESS:
		srv->out_len = 0;
		break;
	}
}

static void test_duplicate_request_is_answered_from_cache(void **state)
{
	static struct server srv;
	uint8_t first[PROTO_MAX_WIRE], wire[128];
	struct proto_decoder d;
	struct sink *s = new_sink(&d);

	(void)state;
	proto_replay_init(&srv.replay);
	/* The request arrives twice on the line (duplicated bytes). */
	size_t n = encode(wire, sizeof(wire), PROTO_REQUEST, 77, API_REQ_PAUSE, "\x20\x03\x00web", 6);
	memcpy(wire + n, wire, n);
	feed(&d, s, wire, 2 * n, 0);
	assert_int_equal(s->count, 2);
	serve(&srv, &s->frames[0]);
	memcpy(first, srv.out, srv.out_len);
	size_t first_len = srv.out_len;
	serve(&srv, &s->frames[1]);
	assert_int_equal(srv.executed, 1);
	assert_int_equal(srv.out_len, first_len);
	assert_memory_equal(srv.out, first, first_len);

	/* A retransmission with the retry flag is the same request. */
	struct proto_frame retry = s->frames[0];
	retry.flags = PROTO_FLAG_RETRY;
	serve(&srv, &retry);
	assert_int_equal(srv.executed, 1);
	assert_memory_equal(srv.out, first, first_len);
	free(s);
}

static void test_replay_in_progress_and_reused_ids(void **state)
{
	static struct proto_replay r;
	struct proto_frame a = request(5, API_REQ_STARTUP, "web");
	struct proto_frame b = request(5, API_REQ_STARTUP, "db");
	const uint8_t *wire;
	size_t len;

	(void)state;
	proto_replay_init(&r);
	assert_int_equal(proto_replay_check(&r, &a, &wire, &len), PROTO_REPLAY_EXECUTE);
	/* Retransmitted while still executing: dropped, the answer will come. */
	assert_int_equal(proto_replay_check(&r, &a, &wire, &len), PROTO_REPLAY_IN_PROGRESS);
	proto_replay_store(&r, &a, (const uint8_t *)"\0A\0", 3);
	assert_int_equal(proto_replay_check(&r, &a, &wire, &len), PROTO_REPLAY_ANSWER);
	assert_int_equal(len, 3);
	assert_memory_equal(wire, "\0A\0", 3);
	/* Same id, other content (a restarted tool): a new request. */
	assert_int_equal(proto_replay_check(&r, &b, &wire, &len), PROTO_REPLAY_EXECUTE);
	proto_replay_store(&r, &b, (const uint8_t *)"\0B\0", 3);
	assert_int_equal(proto_replay_check(&r, &b, &wire, &len), PROTO_REPLAY_ANSWER);
	assert_memory_equal(wire, "\0B\0", 3);
	/* Another code with the same payload is another request too. */
	struct proto_frame c = request(5, API_REQ_TURN_OFF, "db");
	assert_int_equal(proto_replay_check(&r, &c, &wire, &len), PROTO_REPLAY_EXECUTE);
	/* An answer too long to keep is not kept. */
	proto_replay_store(&r, &c, wire, PROTO_MAX_WIRE + 1);
	assert_int_equal(proto_replay_check(&r, &c, &wire, &len), PROTO_REPLAY_IN_PROGRESS);
}

static void test_replay_forgets_oldest_answered_first(void **state)
{
	static struct proto_replay r;
	const uint8_t *wire;
	size_t len;

	(void)state;
	proto_replay_init(&r);
	/* Request 1 keeps executing; 2..SLOTS are answered. */
	struct proto_frame one = request(1, API_REQ_RESET, "");
	assert_int_equal(proto_replay_check(&r, &one, &wire, &len), PROTO_REPLAY_EXECUTE);
	for (uint32_t id = 2; id <= PROTO_REPLAY_SLOTS; id++) {
		struct proto_frame f = request(id, API_REQ_RESET, "");
		assert_int_equal(proto_replay_check(&r, &f, &wire, &len), PROTO_REPLAY_EXECUTE);
		proto_replay_store(&r, &f, (const uint8_t *)"r", 1);
	}
	/* A new request takes the oldest answered slot (2), not the executing one. */
	struct proto_frame next = request(100, API_REQ_RESET, "");
	assert_int_equal(proto_replay_check(&r, &next, &wire, &len), PROTO_REPLAY_EXECUTE);
	assert_int_equal(proto_replay_check(&r, &one, &wire, &len), PROTO_REPLAY_IN_PROGRESS);
	struct proto_frame two = request(2, API_REQ_RESET, "");
	assert_int_equal(proto_replay_check(&r, &two, &wire, &len), PROTO_REPLAY_EXECUTE);
	struct proto_frame three = request(3, API_REQ_RESET, "");
	assert_int_equal(proto_replay_check(&r, &three, &wire, &len), PROTO_REPLAY_EXECUTE);
	/* Request 1 finishing after its slot was taken is not an error. */
	for (uint32_t id = 200; id < 200 + PROTO_REPLAY_SLOTS; id++) {
		struct proto_frame f = request(id, API_REQ_RESET, "");
		proto_replay_check(&r, &f, &wire, &len);
	}
	proto_replay_store(&r, &one, (const uint8_t *)"late", 4);
	assert_int_equal(proto_replay_check(&r, &one, &wire, &len), PROTO_REPLAY_EXECUTE);
}

/* ---- TLV ---- */

static void test_tlv_writer_and_typed_getters(void **state)
{
	uint8_t buf[128];
	struct tlv_writer w;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	char str[8];
	const uint8_t *bytes;
	size_t n;

	(void)state;
	tlv_writer_init(&w, buf, sizeof(buf));
	tlv_put_u8(&w, API_TAG_STATE, VM_STATE_RUNNING);
	tlv_put_u16(&w, API_TAG_ERROR, API_E_INVALID_STATE);
	tlv_put_u32(&w, API_TAG_VM_ID, 0x01020304);
	tlv_put_u64(&w, API_TAG_MEMORY, 64ull << 20);
	tlv_put_str(&w, API_TAG_VM, "web");
	tlv_put(&w, API_TAG_MAC, "\x02\x00\x00\x00\x00\x01", 6);
	assert_true(tlv_writer_ok(&w));
	assert_int_equal(w.len, 4 + 5 + 7 + 11 + 6 + 9);
	/* Little-endian on the wire. */
	assert_memory_equal(buf + 9, "\x21\x04\x00\x04\x03\x02\x01", 7);

	assert_int_equal(tlv_get_u8(buf, w.len, API_TAG_STATE, &u8), TLV_OK);
	assert_int_equal(u8, VM_STATE_RUNNING);
	assert_int_equal(tlv_get_u16(buf, w.len, API_TAG_ERROR, &u16), TLV_OK);
	assert_int_equal(u16, API_E_INVALID_STATE);
	assert_int_equal(tlv_get_u32(buf, w.len, API_TAG_VM_ID, &u32), TLV_OK);
	assert_int_equal(u32, 0x01020304);
	assert_int_equal(tlv_get_u64(buf, w.len, API_TAG_MEMORY, &u64), TLV_OK);
	assert_int_equal(u64, 64ull << 20);
	assert_int_equal(tlv_get_str(buf, w.len, API_TAG_VM, str, sizeof(str)), TLV_OK);
	assert_string_equal(str, "web");
	assert_int_equal(tlv_get_bytes(buf, w.len, API_TAG_MAC, &bytes, &n), TLV_OK);
	assert_int_equal(n, 6);
	assert_memory_equal(bytes, "\x02\x00\x00\x00\x00\x01", 6);

	/* Wrong width, absent tag, string that does not fit. */
	assert_int_equal(tlv_get_u32(buf, w.len, API_TAG_STATE, &u32), TLV_BAD);
	assert_int_equal(tlv_get_u8(buf, w.len, API_TAG_MEMORY, &u8), TLV_BAD);
	assert_int_equal(tlv_get_u16(buf, w.len, API_TAG_VM_ID, &u16), TLV_BAD);
	assert_int_equal(tlv_get_u64(buf, w.len, API_TAG_VM_ID, &u64), TLV_BAD);
	assert_int_equal(tlv_get_u8(buf, w.len, API_TAG_NIC, &u8), TLV_ABSENT);
	assert_int_equal(tlv_get_str(buf, w.len, API_TAG_REASON, str, sizeof(str)), TLV_ABSENT);
	assert_int_equal(tlv_get_bytes(buf, w.len, API_TAG_DATA, &bytes, &n), TLV_ABSENT);
	assert_int_equal(tlv_get_str(buf, w.len, API_TAG_VM, str, 3), TLV_BAD);
	assert_int_equal(tlv_get_str(buf, w.len, API_TAG_VM, str, 4), TLV_OK);
	/* A string holding a NUL is refused. */
	tlv_put(&w, API_TAG_REASON, "a\0b", 3);
	assert_int_equal(tlv_get_str(buf, w.len, API_TAG_REASON, str, sizeof(str)), TLV_BAD);
}

static void test_tlv_writer_overflow_is_sticky(void **state)
{
	uint8_t buf[16];
	struct tlv_writer w;

	(void)state;
	memset(buf, 0xee, sizeof(buf));
	tlv_writer_init(&w, buf, 10);
	tlv_put_u32(&w, API_TAG_VM_ID, 1);         /* 7 bytes */
	tlv_put_u32(&w, API_TAG_VM_ID, 2);         /* does not fit */
	tlv_put_u8(&w, API_TAG_STATE, 1);          /* would fit, but the payload is already broken */
	assert_false(tlv_writer_ok(&w));
	assert_int_equal(w.len, 7);
	for (size_t i = 7; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xee);
	/* Not an integer width. */
	tlv_writer_init(&w, buf, sizeof(buf));
	tlv_put_uint(&w, API_TAG_VM_ID, 1, 9);
	assert_false(tlv_writer_ok(&w));
	/* A list whose end does not fit either. */
	tlv_writer_init(&w, buf, 4);
	size_t l = tlv_list_begin(&w, API_TAG_VM_ENTRY);
	tlv_put_u8(&w, API_TAG_STATE, 1);
	tlv_list_end(&w, l);
	assert_false(tlv_writer_ok(&w));
}

static void test_tlv_reader_skips_unknown_and_stops_at_damage(void **state)
{
	/* Unknown tag 0xee, then a known one; then a TLV whose length runs past the end. */
	static const uint8_t buf[] = { 0xee, 2, 0, 'z', 'z', API_TAG_STATE, 1, 0, 5,
				       API_TAG_VM, 9, 0, 'a' };
	struct tlv_reader r;
	struct tlv t;
	uint8_t u8;

	(void)state;
	assert_int_equal(tlv_get_u8(buf, sizeof(buf), API_TAG_STATE, &u8), TLV_OK);
	assert_int_equal(u8, 5);
	tlv_reader_init(&r, buf, sizeof(buf));
	assert_true(tlv_next(&r, &t));
	assert_int_equal(t.tag, 0xee);
	assert_true(tlv_next(&r, &t));
	assert_false(tlv_next(&r, &t));
	assert_true(r.malformed);
	assert_false(tlv_next(&r, &t));
	assert_false(api_payload_valid(buf, sizeof(buf)));
	assert_true(api_payload_valid(buf, 9)); /* unknown tags are fine */
	/* A header cut short. */
	tlv_reader_init(&r, buf, 2);
	assert_false(tlv_next(&r, &t));
	assert_true(r.malformed);
	/* Empty payload. */
	tlv_reader_init(&r, buf, 0);
	assert_false(tlv_next(&r, &t));
	assert_false(r.malformed);
}

static void test_nested_lists(void **state)
{
	uint8_t buf[256];
	struct tlv_writer w;
	struct tlv_reader r, inner;
	struct tlv t, e;
	unsigned entries = 0;

	(void)state;
	tlv_writer_init(&w, buf, sizeof(buf));
	tlv_put_u32(&w, API_TAG_CURSOR, 2);
	for (unsigned i = 0; i < 2; i++) {
		size_t l = tlv_list_begin(&w, API_TAG_VM_ENTRY);
		tlv_put_u32(&w, API_TAG_VM_ID, i);
		tlv_put_str(&w, API_TAG_VM, i ? "db" : "web");
		tlv_put_u8(&w, API_TAG_STATE, VM_STATE_TURNED_OFF);
		tlv_list_end(&w, l);
	}
	assert_true(tlv_writer_ok(&w));
	assert_true(api_payload_valid(buf, w.len));
	tlv_reader_init(&r, buf, w.len);
	while (tlv_next(&r, &t)) {
		if (t.tag != API_TAG_VM_ENTRY)
			continue;
		uint32_t id;
		assert_int_equal(tlv_get_u32(t.value, t.len, API_TAG_VM_ID, &id), TLV_OK);
		assert_int_equal(id, entries);
		tlv_reader_init(&inner, t.value, t.len);
		unsigned fields = 0;
		while (tlv_next(&inner, &e))
			fields++;
		assert_int_equal(fields, 3);
		entries++;
	}
	assert_int_equal(entries, 2);
	/* A list inside a list inside a list is refused. */
	tlv_writer_init(&w, buf, sizeof(buf));
	size_t a = tlv_list_begin(&w, API_TAG_VM_ENTRY);
	size_t b = tlv_list_begin(&w, API_TAG_NIC_ENTRY);
	size_t c = tlv_list_begin(&w, API_TAG_NET_ENTRY);
	tlv_list_end(&w, c);
	tlv_list_end(&w, b);
	tlv_list_end(&w, a);
	assert_true(tlv_writer_ok(&w));
	assert_false(api_payload_valid(buf, w.len));
	assert_true(api_payload_valid(buf + 3, w.len - 3)); /* two levels are fine */
}

static void test_value_validation(void **state)
{
	(void)state;
	assert_true(api_value_valid(API_T_BOOL, (const uint8_t *)"\1", 1));
	assert_false(api_value_valid(API_T_BOOL, (const uint8_t *)"\2", 1));
	assert_true(api_value_valid(API_T_NAME, (const uint8_t *)"web-1.a_b", 9));
	assert_false(api_value_valid(API_T_NAME, (const uint8_t *)"", 0));
	assert_false(api_value_valid(API_T_NAME, (const uint8_t *)"a b", 3));
	assert_false(api_value_valid(API_T_NAME, (const uint8_t *)"abcdefghijabcdefghijabcdefghijab",
				     32));
	assert_true(api_value_valid(API_T_STR, (const uint8_t *)"console=ttyS0 quiet", 19));
	assert_false(api_value_valid(API_T_STR, (const uint8_t *)"\x1b[2J", 4));
	assert_true(api_value_valid(API_T_IPV4_RANGE, (const uint8_t *)"\x0a\0\0\x0a\x0a\0\0\x63", 8));
	assert_false(api_value_valid(API_T_IPV4_RANGE, (const uint8_t *)"\x0a\0\0\x63\x0a\0\0\x0a", 8));
	assert_false(api_value_valid(API_T_IPV4_LIST, (const uint8_t *)"", 0));
	assert_false(api_value_valid(API_T_IPV4_LIST, (const uint8_t *)"12345", 5));
	assert_false(api_value_valid(API_T_IPV4_LIST, (const uint8_t *)"11112222333344445555", 20));
	assert_false(api_value_valid(API_T_MAC, (const uint8_t *)"12345", 5));
	assert_false(api_value_valid(API_T_U16, (const uint8_t *)"1", 1));
	assert_true(api_value_valid(API_T_BYTES, (const uint8_t *)"\0\xff", 2));
}

/* ---- Catalogue ---- */

#define LIST_REQUEST(sym, code, name) code,
#define LIST_EVENT(sym, code, name) code,
#define LIST_TAG(sym, tag, type, name) tag,
static const uint16_t all_requests[] = { API_REQUESTS(LIST_REQUEST) };
static const uint16_t all_events[] = { API_EVENTS(LIST_EVENT) };
static const uint8_t all_tags[] = { API_TAGS(LIST_TAG) };

/* A valid value of each type. */
static size_t sample_value(enum api_type type, uint8_t *v)
{
	switch (type) {
	case API_T_U8: v[0] = 7; return 1;
	case API_T_U16: memcpy(v, "\x01\x02", 2); return 2;
	case API_T_U32: memcpy(v, "\x01\x02\x03\x04", 4); return 4;
	case API_T_U64:
	case API_T_SIZE: memcpy(v, "\x00\x00\x00\x04\x00\x00\x00\x00", 8); return 8;
	case API_T_BOOL: v[0] = 1; return 1;
	case API_T_STR: memcpy(v, "text ok", 7); return 7;
	case API_T_NAME: memcpy(v, "web", 3); return 3;
	case API_T_BYTES:
	case API_T_HEX: memcpy(v, "\x00\x01\xff", 3); return 3;
	case API_T_MAC: memcpy(v, "\x02\x00\x00\x00\x00\x01", 6); return 6;
	case API_T_IPV4: memcpy(v, "\x0a\x00\x00\x01", 4); return 4;
	case API_T_IPV4_RANGE: memcpy(v, "\x0a\x00\x00\x0a\x0a\x00\x00\x63", 8); return 8;
	case API_T_IPV4_LIST: memcpy(v, "\x0a\x00\x00\x01\x08\x08\x08\x08", 8); return 8;
	case API_T_LIST: memcpy(v, "\x23\x01\x00\x05", 4); return 4;
	}
	fail();
	return 0;
}

/* Every request, response, error and event code with a TLV of every tag. */
static void test_every_message_round_trips(void **state)
{
	static uint8_t payload[PROTO_MAX_PAYLOAD], wire[PROTO_MAX_WIRE];
	struct tlv_writer w;
	uint8_t value[16];

	(void)state;
	tlv_writer_init(&w, payload, sizeof(payload));
	for (size_t i = 0; i < sizeof(all_tags); i++) {
		enum api_type type;

		assert_true(api_tag_type(all_tags[i], &type));
		tlv_put(&w, all_tags[i], value, sample_value(type, value));
	}
	assert_true(tlv_writer_ok(&w));
	assert_true(api_payload_valid(payload, w.len));

	for (size_t t = PROTO_REQUEST; t <= PROTO_ERROR; t++) {
		const uint16_t *codes = t == PROTO_EVENT ? all_events : all_requests;
		size_t count = t == PROTO_EVENT ? sizeof(all_events) / 2 : sizeof(all_requests) / 2;

		for (size_t c = 0; c < count; c++) {
			struct proto_decoder d;
			struct sink *s = new_sink(&d);
			uint32_t id = t == PROTO_EVENT ? 0 : (uint32_t)(c * 7919 + 1);
			size_t n = encode(wire, sizeof(wire), (uint8_t)t, id, codes[c], payload, w.len);

			feed(&d, s, wire, n, 0);
			assert_int_equal(s->count, 1);
			expect_frame(&s->frames[0], (uint8_t)t, id, codes[c], payload, w.len);
			for (size_t i = 0; i < sizeof(all_tags); i++) {
				enum api_type type;
				struct tlv found;

				api_tag_type(all_tags[i], &type);
				size_t len = sample_value(type, value);
				assert_int_equal(tlv_find(s->frames[0].payload, s->frames[0].length,
							  all_tags[i], &found), TLV_OK);
				assert_int_equal(found.len, len);
				assert_memory_equal(found.value, value, len);
			}
			free(s);
		}
	}
}

static void test_names(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(all_requests) / 2; i++)
		assert_non_null(api_request_name(all_requests[i]));
	for (size_t i = 0; i < sizeof(all_events) / 2; i++)
		assert_non_null(api_event_name(all_events[i]));
	for (size_t i = 0; i < sizeof(all_tags); i++)
		assert_non_null(api_tag_name(all_tags[i]));
	assert_string_equal(api_request_name(API_REQ_CREATE_VIRTUAL_MACHINE), "CreateVirtualMachine");
	assert_string_equal(api_request_name(API_REQ_TURN_OFF), "TurnOff");
	assert_string_equal(api_event_name(API_EVENT_VM_STATE_CHANGE), "VMStateChange");
	assert_string_equal(api_tag_name(API_TAG_DHCP_RANGE), "dhcp_range");
	assert_null(api_request_name(0));
	assert_null(api_request_name(0xffff));
	assert_null(api_event_name(0));
	assert_null(api_tag_name(0));
	enum api_type type;
	assert_false(api_tag_type(0xff, &type));

	assert_string_equal(api_error_name(API_E_OK), "ok");
	assert_string_equal(api_error_name(API_E_INVALID_STATE), "invalid state transition");
	assert_string_equal(api_error_name(API_E_NOT_SUPPORTED), "not supported yet");
	assert_string_equal(api_error_name(999), "unknown error");
	for (uint16_t e = API_E_OK; e <= API_E_NO_RESOURCES; e++)
		assert_string_not_equal(api_error_name(e), "unknown error");
	/* VM states travel as Virtual Server's VMVMState values. */
	assert_int_equal(VM_STATE_TURNED_OFF, 1);
	assert_int_equal(VM_STATE_RUNNING, 5);
	assert_int_equal(VM_STATE_DELETE_MACHINE, 10);
}

/* The figure the issue sets: a state query round trip under 200 bytes. */
static void test_state_query_is_small(void **state)
{
	uint8_t payload[64], wire[PROTO_MAX_WIRE];
	struct tlv_writer w;
	size_t total;

	(void)state;
	tlv_writer_init(&w, payload, sizeof(payload));
	tlv_put_str(&w, API_TAG_VM, "web");
	total = encode(wire, sizeof(wire), PROTO_REQUEST, 0x12345678, API_REQ_GET_STATE, payload,
		       w.len);
	tlv_writer_init(&w, payload, sizeof(payload));
	tlv_put_str(&w, API_TAG_VM, "web");
	tlv_put_u32(&w, API_TAG_VM_ID, 1);
	tlv_put_u8(&w, API_TAG_STATE, VM_STATE_RUNNING);
	tlv_put_u64(&w, API_TAG_MEMORY, 64ull << 20);
	tlv_put_u64(&w, API_TAG_VM_UPTIME_MS, 123456);
	tlv_put_u32(&w, API_TAG_NIC_COUNT, 1);
	total += encode(wire, sizeof(wire), PROTO_RESPONSE, 0x12345678, API_REQ_GET_STATE, payload,
			w.len);
	assert_true(total < 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32_is_ieee),
		cmocka_unit_test(test_round_trip_all_types_and_sizes),
		cmocka_unit_test(test_flags_survive),
		cmocka_unit_test(test_encode_errors),
		cmocka_unit_test(test_crc_error_is_dropped),
		cmocka_unit_test(test_bad_header_fields_are_counted),
		cmocka_unit_test(test_short_and_broken_chunks_are_truncated),
		cmocka_unit_test(test_oversize_chunk_is_given_back_as_text),
		cmocka_unit_test(test_payload_over_the_maximum_is_refused),
		cmocka_unit_test(test_log_text_between_frames),
		cmocka_unit_test(test_text_callback_may_be_null),
		cmocka_unit_test(test_noise_before_between_and_inside),
		cmocka_unit_test(test_lost_opening_delimiter_costs_one_frame),
		cmocka_unit_test(test_dropped_and_duplicated_bytes),
		cmocka_unit_test(test_peer_disconnects_mid_frame),
		cmocka_unit_test(test_decode_stops_after_each_frame),
		cmocka_unit_test(test_duplicate_request_is_answered_from_cache),
		cmocka_unit_test(test_replay_in_progress_and_reused_ids),
		cmocka_unit_test(test_replay_forgets_oldest_answered_first),
		cmocka_unit_test(test_tlv_writer_and_typed_getters),
		cmocka_unit_test(test_tlv_writer_overflow_is_sticky),
		cmocka_unit_test(test_tlv_reader_skips_unknown_and_stops_at_damage),
		cmocka_unit_test(test_nested_lists),
		cmocka_unit_test(test_value_validation),
		cmocka_unit_test(test_every_message_round_trips),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_state_query_is_small),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
