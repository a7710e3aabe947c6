/*
 * Authenticated sessions on the management line (docs/protocol.md,
 * "Authentication"; docs/security.md, "The management line").
 *
 * The line is shared: a console server may relay it to several people, and
 * an admin tool may die without a Goodbye. So authentication belongs to
 * each request, not to the line: after a challenge and its answer, a
 * client holds a session key that only the key-holder can derive, and
 * every request it sends carries a MAC under that key over its session id,
 * sequence number, frame id, code and payload. A frame from anyone without
 * the key is refused whatever came before it on the line, and a recorded
 * frame is refused when it comes again (sequence numbers) or after its
 * session ended (the session id is never reused).
 *
 * Plain C shared by the management VM (the verifier) and the admin tool
 * (the signer), unit-tested and fuzzed on the host. No clock of its own:
 * callers pass milliseconds.
 */
#ifndef MGMT_SESSION_H
#define MGMT_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mgmt/proto.h"
#include "mgmt/sha256.h"

#define SESSION_SLOTS 8
#define SESSION_NONCE_SIZE 32
/* 128 bits of HMAC-SHA256: forging one needs 2^128 guesses, each refused. */
#define SESSION_MAC_SIZE 16
/* The TLV a signed payload ends with: tag, length, MAC. */
#define SESSION_MAC_TLV (TLV_HEADER_SIZE + SESSION_MAC_SIZE)
/* What signing adds to a payload: session (u32), req_seq (u64), req_mac. */
#define SESSION_SIGN_OVERHEAD (TLV_HEADER_SIZE + 4 + TLV_HEADER_SIZE + 8 + SESSION_MAC_TLV)
/*
 * A session unused this long ends: a tool that died without Goodbye leaves
 * nothing behind that outlives it for long. `events --follow` sends a
 * signed Hello well within it.
 */
#define SESSION_IDLE_MS (10 * 60 * 1000)
/*
 * Sequence numbers may arrive out of order by up to this many (a tool
 * keeps up to 4 requests outstanding and retries them); older ones, and
 * any seen before, are refused.
 */
#define SESSION_SEQ_WINDOW 64

struct session {
	uint32_t id;        /* 0: free slot */
	bool active;        /* the challenge was answered: key is valid */
	uint8_t nonce[SESSION_NONCE_SIZE];
	uint8_t key[SHA256_SIZE];
	uint64_t seq_top;   /* highest sequence number accepted */
	uint64_t seq_seen;  /* bit i: seq_top - i was accepted */
	uint64_t last_ms;   /* last challenge, answer or verified request */
};

struct session_table {
	uint32_t last_id;
	struct session slot[SESSION_SLOTS];
};

enum session_verdict {
	SESSION_OK = 0,
	SESSION_UNSIGNED,      /* no session, req_seq or req_mac: not a signed request */
	SESSION_UNKNOWN,       /* no such session (never, ended, expired or evicted) */
	SESSION_NOT_ANSWERED,  /* the session's challenge was not answered */
	SESSION_BAD_MAC,       /* wrong MAC: not from the key-holder, or altered */
	SESSION_REPLAYED,      /* a sequence number already used, or older than the window */
	SESSION_MALFORMED,     /* the payload is no valid TLV sequence: nothing to verify */
};

/* For messages: "signature does not verify", ... */
const char *session_verdict_text(enum session_verdict v);

/* first_id: where session ids start (the caller's random seed: ids of another boot differ). */
void session_table_init(struct session_table *t, uint32_t first_id);

/*
 * AuthChallenge: a session for a new client, in a free slot, else one that
 * idled out, else the least recently used. nonce is the fresh challenge.
 * Returns the slot index (the caller keeps per-slot state, such as
 * subscriptions, and clears it: the slot's previous session ended).
 */
unsigned session_open(struct session_table *t, const uint8_t nonce[SESSION_NONCE_SIZE],
		      uint64_t now_ms);

/*
 * AuthResponse: mac must be HMAC-SHA256(key, nonce). The session becomes
 * active, its key derived from the key and the nonce; a session answers
 * once. Returns SESSION_OK, SESSION_UNKNOWN, SESSION_NOT_ANSWERED (already
 * answered: a nonce is good for one answer) or SESSION_BAD_MAC (the session
 * is then closed: a new challenge is needed).
 */
enum session_verdict session_answer(struct session_table *t, uint32_t id, const uint8_t *key,
				    size_t key_len, const uint8_t *mac, size_t mac_len,
				    uint64_t now_ms, unsigned *slot);

/*
 * A request frame: does it carry a valid signature of an active session?
 * On SESSION_OK, *slot is its session's slot and *seq its sequence
 * number. A session idle for longer than SESSION_IDLE_MS is closed here.
 */
enum session_verdict session_authentic(struct session_table *t, const struct proto_frame *f,
				       uint64_t now_ms, unsigned *slot, uint64_t *seq);
/*
 * Whether seq was not used before in the session (nor is older than the
 * window). Asked after the replay cache: a retransmission of an executed
 * request is answered from the cache, anything else with an old number
 * is refused.
 */
bool session_fresh(const struct session_table *t, unsigned slot, uint64_t seq);
/* Records seq as used, once the request is to be executed. */
void session_accept(struct session_table *t, unsigned slot, uint64_t seq, uint64_t now_ms);

/* What anyone may send without being authenticated: Hello, AuthChallenge, AuthResponse. */
bool session_open_request(uint16_t code);

/* What to do with a request frame that arrived on the line. */
enum session_admit {
	SESSION_ADMIT_REFUSE,  /* not from the key-holder, or malformed (why): refuse;
				* never executed nor cached */
	SESSION_ADMIT_REPLAY,  /* the sender's retransmission: send wire again, nothing else */
	SESSION_ADMIT_DROP,    /* a retransmission of a request still executing */
	SESSION_ADMIT_STALE,   /* authentic, but its sequence number was used: refuse */
	SESSION_ADMIT_EXECUTE, /* execute it, then proto_replay_store() the answer */
};

struct session_admission {
	enum session_verdict why;
	bool signed_by_session; /* slot is the sender's session */
	unsigned slot;
	const uint8_t *wire;    /* SESSION_ADMIT_REPLAY */
	size_t len;
};

/*
 * The gate in front of the replay cache. With a key (key_configured), a
 * request must carry a valid signature unless it is an open request; a
 * signed one must verify whatever it is. Only then may the replay cache
 * answer it: a recorded answer never goes back to a frame that would now
 * be refused (after Goodbye, after the session expired). A new request's
 * sequence number is checked and recorded.
 */
enum session_admit session_admit(struct session_table *t, struct proto_replay *r,
				 const struct proto_frame *f, bool key_configured,
				 uint64_t now_ms, struct session_admission *a);

/* Goodbye, or the line taken back by hand. */
void session_close(struct session_table *t, unsigned slot);
void session_close_all(struct session_table *t);
/* An answered session that has not idled out. */
bool session_any_active(const struct session_table *t, uint64_t now_ms);

/* Both ends: the session key, HMAC-SHA256(key, "vmm session key" | nonce). */
void session_derive_key(const uint8_t *key, size_t key_len,
			const uint8_t nonce[SESSION_NONCE_SIZE], uint8_t out[SHA256_SIZE]);

/*
 * The client's end: appends session, req_seq and req_mac to the payload
 * (payload holds len bytes, cap in all). The MAC covers the frame id and
 * code and every payload byte before it. Returns the new length, or 0 when
 * it does not fit.
 */
size_t session_sign(const uint8_t key[SHA256_SIZE], uint32_t session, uint64_t seq,
		    uint32_t frame_id, uint16_t code, uint8_t *payload, size_t len, size_t cap);

#endif
