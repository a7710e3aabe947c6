/*
 * libFuzzer target: bytes from the line into the frame decoder, in chunks
 * of varying size, with resets; every frame that comes out is checked,
 * walked as TLVs, re-encoded and decoded again, and run through the replay
 * cache behind the session gate (mgmt/session.c) with one active session.
 * The input itself is also read as a payload.
 *
 * First input byte: bits 0-5 the chunk size - 1, bit 6 a key configured,
 * bit 7 a decoder reset after every chunk (the owner's inter-byte timeout).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "abi/api.h"
#include "mgmt/proto.h"
#include "mgmt/session.h"

static struct proto_decoder decoder, again;
static struct proto_replay replay;
static struct session_table sessions;
static bool keyed;
static uint8_t wire[PROTO_MAX_WIRE];
static volatile uint8_t sink;

static void on_text(void *ctx, const uint8_t *text, size_t len)
{
	(void)ctx;
	if (len == 0)
		abort();
	sink ^= text[0] ^ text[len - 1];
}

/* Walks every TLV, into lists, through the typed getters. */
static void walk(const uint8_t *p, size_t n, unsigned depth)
{
	struct tlv_reader r;
	struct tlv t;
	char str[API_STR_MAX + 1];

	tlv_reader_init(&r, p, n);
	while (tlv_next(&r, &t)) {
		enum api_type type;
		uint8_t u8;
		uint16_t u16;
		uint32_t u32;
		uint64_t u64;
		const uint8_t *bytes;
		size_t len;

		if (t.value < p || t.value + t.len > p + n)
			abort();
		if (!api_tag_type(t.tag, &type))
			continue;
		if (type == API_T_LIST && depth < 3)
			walk(t.value, t.len, depth + 1);
		tlv_get_u8(p, n, t.tag, &u8);
		tlv_get_u16(p, n, t.tag, &u16);
		tlv_get_u32(p, n, t.tag, &u32);
		tlv_get_u64(p, n, t.tag, &u64);
		tlv_get_str(p, n, t.tag, str, sizeof(str));
		if (tlv_get_bytes(p, n, t.tag, &bytes, &len) == TLV_OK && bytes + len > p + n)
			abort();
		api_value_valid(type, t.value, t.len);
	}
}

static void check_frame(const struct proto_frame *f)
{
	struct proto_frame g;
	const uint8_t *p = wire;
	size_t left;

	if (f->length > PROTO_MAX_PAYLOAD || f->type < PROTO_REQUEST || f->type > PROTO_ERROR)
		abort();
	api_payload_valid(f->payload, f->length);
	walk(f->payload, f->length, 0);

	/* What came out goes back in unchanged. */
	int n = proto_encode(wire, sizeof(wire), f);
	if (n <= 0 || n > PROTO_MAX_WIRE)
		abort();
	proto_decoder_init(&again, NULL, NULL);
	left = (size_t)n;
	if (!proto_decode(&again, &p, &left, &g) || left != 0 || g.type != f->type ||
	    g.flags != f->flags || g.id != f->id || g.code != f->code ||
	    g.length != f->length || memcmp(g.payload, f->payload, f->length) != 0)
		abort();

	if (f->type != PROTO_REQUEST)
		return;
	struct session_admission a;
	switch (session_admit(&sessions, &replay, f, keyed, 0, &a)) {
	case SESSION_ADMIT_EXECUTE:
	case SESSION_ADMIT_STALE:
		if (a.signed_by_session && a.slot >= SESSION_SLOTS)
			abort();
		proto_replay_store(&replay, f, wire, (size_t)n);
		break;
	case SESSION_ADMIT_REPLAY:
		if (!a.wire || a.len == 0 || a.len > PROTO_MAX_WIRE)
			abort();
		break;
	case SESSION_ADMIT_REFUSE:
		/* Without a key only a malformed payload is refused. */
		if (!keyed && a.why != SESSION_MALFORMED)
			abort();
		break;
	case SESSION_ADMIT_DROP:
		break;
	}
}

/* One answered session, as after a client's AuthChallenge and AuthResponse. */
static void open_session(void)
{
	static const uint8_t key[16] = "fuzz key 0123456";
	uint8_t nonce[SESSION_NONCE_SIZE] = { 1 }, mac[SHA256_SIZE];
	unsigned slot = session_open(&sessions, nonce, 0);

	hmac_sha256(key, sizeof(key), nonce, sizeof(nonce), mac);
	if (session_answer(&sessions, sessions.slot[slot].id, key, sizeof(key), mac, sizeof(mac), 0,
			   &slot) != SESSION_OK)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_frame f;

	if (size == 0)
		return 0;
	size_t chunk = (data[0] & 0x3f) + 1;
	int reset = data[0] & 0x80;
	keyed = data[0] & 0x40;

	data++;
	size--;
	api_payload_valid(data, size);
	walk(data, size, 0);

	proto_decoder_init(&decoder, on_text, NULL);
	proto_replay_init(&replay);
	session_table_init(&sessions, 0);
	open_session();
	while (size > 0) {
		size_t n = size < chunk ? size : chunk;
		const uint8_t *p = data;
		size_t left = n;

		while (proto_decode(&decoder, &p, &left, &f))
			check_frame(&f);
		if (left != 0 || p != data + n || decoder.len > sizeof(decoder.buf))
			abort();
		if (reset)
			proto_decoder_reset(&decoder);
		data += n;
		size -= n;
	}
	return 0;
}
