#include "mgmt/session.h"

#include "lib/le.h"
#include "abi/api.h"

#include <string.h>

static const char key_label[] = "vmm session key";

const char *session_verdict_text(enum session_verdict v)
{
	switch (v) {
	case SESSION_OK:
		return "ok";
	case SESSION_UNSIGNED:
		return "authentication required: the request is not signed";
	case SESSION_UNKNOWN:
		return "no such session (ended, expired or replaced): authenticate again";
	case SESSION_NOT_ANSWERED:
		return "the session's challenge is not (or already) answered";
	case SESSION_BAD_MAC:
		return "the signature does not verify";
	case SESSION_REPLAYED:
		return "replayed request (sequence number already used)";
	case SESSION_MALFORMED:
		return "malformed payload";
	}
	return "?";
}

void session_table_init(struct session_table *t, uint32_t first_id)
{
	memset(t, 0, sizeof(*t));
	t->last_id = first_id;
}

static bool idled_out(const struct session *s, uint64_t now_ms)
{
	return s->id && now_ms - s->last_ms > SESSION_IDLE_MS;
}

void session_close(struct session_table *t, unsigned slot)
{
	/* Wiped, not just marked: the key must not outlive the session. */
	memset(&t->slot[slot], 0, sizeof(t->slot[slot]));
}

void session_close_all(struct session_table *t)
{
	for (unsigned i = 0; i < SESSION_SLOTS; i++)
		session_close(t, i);
}

bool session_any_active(const struct session_table *t, uint64_t now_ms)
{
	for (unsigned i = 0; i < SESSION_SLOTS; i++)
		if (t->slot[i].active && !idled_out(&t->slot[i], now_ms))
			return true;
	return false;
}

unsigned session_open(struct session_table *t, const uint8_t nonce[SESSION_NONCE_SIZE],
		      uint64_t now_ms)
{
	unsigned pick = 0;

	for (unsigned i = 0; i < SESSION_SLOTS; i++) {
		const struct session *s = &t->slot[i], *best = &t->slot[pick];
		bool free_s = !s->id || idled_out(s, now_ms);
		bool free_best = !best->id || idled_out(best, now_ms);

		if (free_s && !free_best) {
			pick = i;
		} else if (free_s == free_best && !free_s && s->last_ms < best->last_ms) {
			pick = i;
		}
	}
	session_close(t, pick);
	struct session *s = &t->slot[pick];
	if (++t->last_id == 0)
		t->last_id = 1;
	s->id = t->last_id;
	memcpy(s->nonce, nonce, SESSION_NONCE_SIZE);
	s->last_ms = now_ms;
	return pick;
}

static int find(struct session_table *t, uint32_t id, uint64_t now_ms)
{
	for (unsigned i = 0; i < SESSION_SLOTS; i++) {
		if (!id || t->slot[i].id != id)
			continue;
		if (idled_out(&t->slot[i], now_ms)) {
			session_close(t, i);
			return -1;
		}
		return (int)i;
	}
	return -1;
}

void session_derive_key(const uint8_t *key, size_t key_len,
			const uint8_t nonce[SESSION_NONCE_SIZE], uint8_t out[SHA256_SIZE])
{
	/*
	 * Not HMAC(key, nonce): that is the challenge's answer, which crosses
	 * the line in clear. A distinct label keeps the session key secret.
	 */
	uint8_t msg[sizeof(key_label) + SESSION_NONCE_SIZE];

	memcpy(msg, key_label, sizeof(key_label));
	memcpy(msg + sizeof(key_label), nonce, SESSION_NONCE_SIZE);
	hmac_sha256(key, key_len, msg, sizeof(msg), out);
}

enum session_verdict session_answer(struct session_table *t, uint32_t id, const uint8_t *key,
				    size_t key_len, const uint8_t *mac, size_t mac_len,
				    uint64_t now_ms, unsigned *slot)
{
	uint8_t want[SHA256_SIZE];
	int i = find(t, id, now_ms);

	if (i < 0)
		return SESSION_UNKNOWN;
	struct session *s = &t->slot[i];
	if (s->active)
		return SESSION_NOT_ANSWERED;
	hmac_sha256(key, key_len, s->nonce, sizeof(s->nonce), want);
	if (mac_len != SHA256_SIZE || !sha256_equal(mac, want, SHA256_SIZE)) {
		session_close(t, (unsigned)i);
		return SESSION_BAD_MAC;
	}
	session_derive_key(key, key_len, s->nonce, s->key);
	s->active = true;
	s->last_ms = now_ms;
	*slot = (unsigned)i;
	return SESSION_OK;
}

/* HMAC-SHA256(session key, id | code | payload before the MAC), truncated. */
static void request_mac(const uint8_t key[SHA256_SIZE], uint32_t frame_id, uint16_t code,
			const uint8_t *body, size_t len, uint8_t out[SHA256_SIZE])
{
	uint8_t msg[6 + PROTO_MAX_PAYLOAD];

	le_put(msg, frame_id, 4);
	le_put(msg + 4, code, 2);
	memcpy(msg + 6, body, len);
	hmac_sha256(key, SHA256_SIZE, msg, 6 + len, out);
}

size_t session_sign(const uint8_t key[SHA256_SIZE], uint32_t session, uint64_t seq,
		    uint32_t frame_id, uint16_t code, uint8_t *payload, size_t len, size_t cap)
{
	struct tlv_writer w;
	uint8_t mac[SHA256_SIZE];

	if (cap > PROTO_MAX_PAYLOAD)
		cap = PROTO_MAX_PAYLOAD;
	if (len > cap || cap - len < SESSION_SIGN_OVERHEAD)
		return 0;
	w = (struct tlv_writer){ .buf = payload, .cap = cap, .len = len };
	tlv_put_u32(&w, API_TAG_SESSION, session);
	tlv_put_u64(&w, API_TAG_REQ_SEQ, seq);
	request_mac(key, frame_id, code, payload, w.len, mac);
	tlv_put(&w, API_TAG_REQ_MAC, mac, SESSION_MAC_SIZE);
	return tlv_writer_ok(&w) ? w.len : 0;
}

/*
 * The signed part and the MAC: the payload's last TLV must be req_mac (a
 * TLV boundary, not bytes inside another value), and the part before it
 * must name the session and the sequence number.
 */
static bool split_signed(const struct proto_frame *f, size_t *body_len, uint32_t *id,
			 uint64_t *seq)
{
	struct tlv_reader r;
	struct tlv t;
	size_t last = 0;
	bool any = false;

	tlv_reader_init(&r, f->payload, f->length);
	while (true) {
		size_t at = r.pos;
		if (!tlv_next(&r, &t))
			break;
		last = at;
		any = true;
	}
	if (!any || r.malformed || f->length - last != SESSION_MAC_TLV ||
	    f->payload[last] != API_TAG_REQ_MAC)
		return false;
	*body_len = last;
	return tlv_get_u32(f->payload, last, API_TAG_SESSION, id) == TLV_OK &&
	       tlv_get_u64(f->payload, last, API_TAG_REQ_SEQ, seq) == TLV_OK && *seq != 0;
}

static enum session_verdict check_signature(struct session_table *t, const struct proto_frame *f,
					    uint64_t now_ms, unsigned *slot, uint64_t *seq)
{
	uint8_t mac[SHA256_SIZE];
	size_t body;
	uint32_t id;

	if (!split_signed(f, &body, &id, seq))
		return SESSION_UNSIGNED;
	int i = find(t, id, now_ms);
	if (i < 0)
		return SESSION_UNKNOWN;
	const struct session *s = &t->slot[i];
	if (!s->active)
		return SESSION_NOT_ANSWERED;
	request_mac(s->key, f->id, f->code, f->payload, body, mac);
	if (!sha256_equal(mac, f->payload + body + TLV_HEADER_SIZE, SESSION_MAC_SIZE))
		return SESSION_BAD_MAC;
	*slot = (unsigned)i;
	return SESSION_OK;
}

enum session_verdict session_authentic(struct session_table *t, const struct proto_frame *f,
				       uint64_t now_ms, unsigned *slot, uint64_t *seq)
{
	return check_signature(t, f, now_ms, slot, seq);
}

bool session_fresh(const struct session_table *t, unsigned slot, uint64_t seq)
{
	const struct session *s = &t->slot[slot];

	if (seq > s->seq_top)
		return true;
	uint64_t back = s->seq_top - seq;
	return back < SESSION_SEQ_WINDOW && !(s->seq_seen >> back & 1);
}

void session_accept(struct session_table *t, unsigned slot, uint64_t seq, uint64_t now_ms)
{
	struct session *s = &t->slot[slot];

	if (seq > s->seq_top) {
		uint64_t shift = seq - s->seq_top;
		s->seq_seen = shift >= 64 ? 0 : s->seq_seen << shift;
		s->seq_seen |= 1;
		s->seq_top = seq;
	} else if (s->seq_top - seq < SESSION_SEQ_WINDOW) {
		s->seq_seen |= 1ULL << (s->seq_top - seq);
	}
	s->last_ms = now_ms;
}

bool session_open_request(uint16_t code)
{
	return code == API_REQ_HELLO || code == API_REQ_AUTH_CHALLENGE ||
	       code == API_REQ_AUTH_RESPONSE;
}

enum session_admit session_admit(struct session_table *t, struct proto_replay *r,
				 const struct proto_frame *f, bool key_configured,
				 uint64_t now_ms, struct session_admission *a)
{
	uint64_t seq = 0;

	*a = (struct session_admission){ .why = SESSION_OK };
	if (!api_payload_valid(f->payload, f->length)) {
		/* BAD_FRAME comes before any other check (docs/protocol.md). */
		a->why = SESSION_MALFORMED;
		return SESSION_ADMIT_REFUSE;
	}
	if (key_configured) {
		a->why = session_authentic(t, f, now_ms, &a->slot, &seq);
		a->signed_by_session = a->why == SESSION_OK;
		if (!a->signed_by_session && !(a->why == SESSION_UNSIGNED &&
					       session_open_request(f->code)))
			return SESSION_ADMIT_REFUSE;
	}
	switch (proto_replay_check(r, f, &a->wire, &a->len)) {
	case PROTO_REPLAY_ANSWER:
		return SESSION_ADMIT_REPLAY;
	case PROTO_REPLAY_IN_PROGRESS:
		return SESSION_ADMIT_DROP;
	case PROTO_REPLAY_EXECUTE:
		break;
	}
	if (!a->signed_by_session)
		return SESSION_ADMIT_EXECUTE;
	if (!session_fresh(t, a->slot, seq)) {
		a->why = SESSION_REPLAYED;
		return SESSION_ADMIT_STALE;
	}
	session_accept(t, a->slot, seq, now_ms);
	return SESSION_ADMIT_EXECUTE;
}
