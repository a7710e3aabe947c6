/*
 * The framed management protocol spoken on the serial line between the
 * admin tool and the management VM (docs/protocol.md is the reference).
 * Plain C shared by the freestanding guest and the host tool: no
 * allocation, every length from the line bounded.
 *
 * On the wire a frame is
 *
 *	0x00  COBS( header | payload | CRC-32 )  0x00
 *
 * Why COBS with a 0x00 delimiter rather than a start marker with a length:
 * the line also carries the hypervisor's log text, and text never contains
 * 0x00, while COBS guarantees a frame body never does either. So a 0x00 is
 * always a frame boundary, whatever bytes the payload holds, and after any
 * damage (noise, a dropped or duplicated byte, a peer that stopped
 * mid-frame) the decoder is back in step at the next 0x00 without having to
 * re-scan bytes it already consumed, which a length-based format must do
 * when a false start marker turns up inside a payload. The cost is one byte
 * per 254 plus the two delimiters.
 *
 * The writer of the line never puts a log line inside a frame: a frame is
 * written whole, delimiters included, between two log lines. Text between
 * frames is handed to a callback so a log line still reaches the user.
 */
#ifndef MGMT_PROTO_H
#define MGMT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Version of the framing (header layout, CRC, COBS). A frame with another
 * version is dropped and counted; the message catalogue evolves separately
 * (API_VERSION in include/abi/api.h) without touching this.
 */
#define PROTO_VERSION 1
#define PROTO_DELIMITER 0x00
#define PROTO_MAX_PAYLOAD 1024

enum proto_type {
	PROTO_REQUEST = 1,  /* tool -> management VM; code: enum api_request */
	PROTO_RESPONSE = 2, /* success; same id and code as the request */
	PROTO_EVENT = 3,    /* unsolicited; id 0; code: enum api_event */
	PROTO_ERROR = 4,    /* failure; same id and code; payload has API_TAG_ERROR */
};

/* Set on a retransmitted request. Informational: replay uses the id. */
#define PROTO_FLAG_RETRY 0x01

/*
 * The header, little-endian, as it is on the wire before COBS. All ends of
 * the line (x86-64 hypervisor, x86-64 or arm64 hosts) are little-endian, so
 * it is copied as is.
 */
struct proto_header {
	uint8_t version;  /* PROTO_VERSION */
	uint8_t type;     /* enum proto_type */
	uint8_t flags;    /* PROTO_FLAG_*; unknown bits are ignored */
	uint8_t reserved; /* 0 when sent, ignored when received */
	uint32_t id;      /* request id, echoed in the answer; 0 in events */
	uint16_t code;    /* enum api_request or enum api_event */
	uint16_t length;  /* payload bytes, <= PROTO_MAX_PAYLOAD */
} __attribute__((packed));

#define PROTO_HEADER_SIZE 12
#define PROTO_CRC_SIZE 4
_Static_assert(sizeof(struct proto_header) == PROTO_HEADER_SIZE, "wire layout");
_Static_assert(__builtin_offsetof(struct proto_header, id) == 4, "wire layout");
_Static_assert(__builtin_offsetof(struct proto_header, code) == 8, "wire layout");
_Static_assert(__builtin_offsetof(struct proto_header, length) == 10, "wire layout");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "header copied as is");

/* Header, payload and CRC before COBS. */
#define PROTO_MAX_RAW (PROTO_HEADER_SIZE + PROTO_MAX_PAYLOAD + PROTO_CRC_SIZE)
/*
 * COBS adds a code byte in front of every block: one per 254 non-zero
 * bytes, plus the first. (Zeros do not add: each becomes a code byte.)
 */
#define PROTO_MAX_BODY (PROTO_MAX_RAW + PROTO_MAX_RAW / 254 + 1)
/* A whole frame on the wire, both delimiters included. */
#define PROTO_MAX_WIRE (PROTO_MAX_BODY + 2)
#define PROTO_MIN_RAW (PROTO_HEADER_SIZE + PROTO_CRC_SIZE)

/* A frame to send, or one the decoder produced. */
struct proto_frame {
	uint8_t type;  /* enum proto_type */
	uint8_t flags;
	uint16_t code;
	uint32_t id;
	uint16_t length;
	const uint8_t *payload; /* decoded: valid until the next proto_decode() */
};

/* CRC-32 of IEEE 802.3 (zlib's crc32): start with 0, chain the result. */
uint32_t proto_crc32(uint32_t crc, const void *data, size_t len);

enum proto_encode_error {
	PROTO_E_NOSPACE = -1, /* the frame does not fit in the caller's buffer */
	PROTO_E_TOO_BIG = -2, /* payload longer than PROTO_MAX_PAYLOAD */
	PROTO_E_INVAL = -3,   /* unknown frame type */
};

/*
 * Writes the whole frame, both delimiters included, into out. Returns its
 * length (at most PROTO_MAX_WIRE), or a negative enum proto_encode_error
 * with nothing meaningful in out.
 */
int proto_encode(void *out, size_t cap, const struct proto_frame *frame);

/* Frames dropped by the decoder, by cause. */
struct proto_stats {
	uint32_t frames;      /* good frames returned */
	uint32_t crc_errors;
	uint32_t oversize;    /* longer than any frame: given back as text */
	uint32_t truncated;   /* shorter than its own structure says, or cut off by a reset */
	uint32_t bad_version;
	uint32_t malformed;   /* CRC-valid but inconsistent: length field, type */
};

/* Bytes that were not part of a frame (log text, a human's keys). */
typedef void (*proto_text_fn)(void *ctx, const uint8_t *text, size_t len);

struct proto_decoder {
	proto_text_fn text; /* may be NULL: text is then dropped */
	void *ctx;
	bool in_frame;      /* a 0x00 opened a frame that is not closed yet */
	size_t len;         /* COBS bytes held in buf */
	uint8_t buf[PROTO_MAX_BODY];
	struct proto_stats stats;
};

void proto_decoder_init(struct proto_decoder *d, proto_text_fn text, void *ctx);

/*
 * Consumes bytes from *data (advancing *data, decreasing *len) until a
 * frame is complete or the input is used up. Returns true with *frame set
 * when a CRC-valid frame was completed; its payload lives in the decoder
 * until the next call. Returns false when all input was consumed. Text
 * runs go to the text callback as they are found.
 *
 *	while (proto_decode(&d, &p, &n, &frame))
 *		handle(&frame);
 */
bool proto_decode(struct proto_decoder *d, const uint8_t **data, size_t *len,
		  struct proto_frame *frame);

/*
 * Abandons a partly received frame (counted as truncated) and goes back to
 * text. For the owner's inter-byte timeout: a frame is sent in one burst,
 * so silence in the middle of one means the peer went away.
 */
void proto_decoder_reset(struct proto_decoder *d);

/*
 * Payload TLVs: u8 tag, u16 little-endian length, value. Readers skip tags
 * they do not know, which is how the catalogue grows without a new
 * framing version. Value encodings per tag: enum api_type in include/abi/api.h.
 */
#define TLV_HEADER_SIZE 3

/* Writer with a sticky overflow flag: put everything, check once. */
struct tlv_writer {
	uint8_t *buf;
	size_t cap;
	size_t len;
	bool overflow;
};

void tlv_writer_init(struct tlv_writer *w, void *buf, size_t cap);
void tlv_put(struct tlv_writer *w, uint8_t tag, const void *value, size_t len);
/* An integer of width 1, 2, 4 or 8 bytes, little-endian. */
void tlv_put_uint(struct tlv_writer *w, uint8_t tag, uint64_t v, size_t width);
void tlv_put_u8(struct tlv_writer *w, uint8_t tag, uint8_t v);
void tlv_put_u16(struct tlv_writer *w, uint8_t tag, uint16_t v);
void tlv_put_u32(struct tlv_writer *w, uint8_t tag, uint32_t v);
void tlv_put_u64(struct tlv_writer *w, uint8_t tag, uint64_t v);
void tlv_put_str(struct tlv_writer *w, uint8_t tag, const char *s);
/* A nested list: tlv_list_end(w, tlv_list_begin(w, tag)) around its TLVs. */
size_t tlv_list_begin(struct tlv_writer *w, uint8_t tag);
void tlv_list_end(struct tlv_writer *w, size_t begin);
static inline bool tlv_writer_ok(const struct tlv_writer *w)
{
	return !w->overflow;
}

struct tlv {
	uint8_t tag;
	uint16_t len;
	const uint8_t *value;
};

struct tlv_reader {
	const uint8_t *buf;
	size_t len;
	size_t pos;
	bool malformed; /* a TLV ran past the end */
};

void tlv_reader_init(struct tlv_reader *r, const void *buf, size_t len);
/* The next TLV; false at the end or when the rest is malformed. */
bool tlv_next(struct tlv_reader *r, struct tlv *t);

enum tlv_result {
	TLV_OK = 0,
	TLV_ABSENT = -1, /* no such tag */
	TLV_BAD = -2,    /* wrong length, or a string that does not fit or holds a NUL */
};

/*
 * Typed getters: the first TLV with this tag. Check a received payload
 * with api_payload_valid() first; these only look as far as the tag.
 */
int tlv_find(const void *buf, size_t len, uint8_t tag, struct tlv *t);
int tlv_get_u8(const void *buf, size_t len, uint8_t tag, uint8_t *v);
int tlv_get_u16(const void *buf, size_t len, uint8_t tag, uint16_t *v);
int tlv_get_u32(const void *buf, size_t len, uint8_t tag, uint32_t *v);
int tlv_get_u64(const void *buf, size_t len, uint8_t tag, uint64_t *v);
/* Copies into out and terminates it: needs len + 1 <= cap. */
int tlv_get_str(const void *buf, size_t len, uint8_t tag, char *out, size_t cap);
int tlv_get_bytes(const void *buf, size_t len, uint8_t tag, const uint8_t **v, size_t *n);

/*
 * Idempotency. A retransmitted request (same id, same code and payload) is
 * answered again with the response already sent, never executed twice.
 * The last PROTO_REPLAY_SLOTS requests are remembered with their encoded
 * answer; a request whose id matches but whose content differs is a new
 * request (a tool that restarted and reused an id) and replaces the entry.
 */
#define PROTO_REPLAY_SLOTS 8

struct proto_replay_slot {
	uint8_t state;        /* free, executing, answered */
	uint32_t id;
	uint32_t fingerprint; /* CRC-32 of code and payload */
	uint32_t age;         /* higher is newer */
	uint16_t len;
	uint8_t wire[PROTO_MAX_WIRE];
};

struct proto_replay {
	uint32_t clock;
	struct proto_replay_slot slot[PROTO_REPLAY_SLOTS];
};

enum proto_replay_verdict {
	PROTO_REPLAY_EXECUTE,     /* new: execute it, then proto_replay_store() */
	PROTO_REPLAY_ANSWER,      /* seen: send *wire again, do nothing else */
	PROTO_REPLAY_IN_PROGRESS, /* seen and still executing: drop it */
};

void proto_replay_init(struct proto_replay *r);
enum proto_replay_verdict proto_replay_check(struct proto_replay *r,
					     const struct proto_frame *request,
					     const uint8_t **wire, size_t *len);
/* The encoded answer to a request proto_replay_check() said to execute. */
void proto_replay_store(struct proto_replay *r, const struct proto_frame *request,
			const uint8_t *wire, size_t len);

#endif
