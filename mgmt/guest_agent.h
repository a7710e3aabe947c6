/*
 * The host side of the guest agent protocol (the QEMU guest agent's,
 * docs/guest-agent.md), the part that is plain C: splitting what the
 * agent writes into messages and reading a reply. The management VM runs
 * it; the hypervisor only moves the bytes (HC_AGENT). Everything here
 * comes from a guest and is hostile: messages are bounded, the reader is
 * lib/json.c with a fixed token budget, and it is fuzzed.
 *
 * Requests are resynchronised the way the protocol provides: the host
 * sends 0xff, which makes the agent drop any half-read request, then
 * guest-sync-delimited with a fresh id; the agent answers 0xff and
 * {"return": id}. Everything before that 0xff (replies to requests that
 * timed out, noise) is skipped and counted, so a late answer can never
 * be taken for the answer to the next request.
 */
#ifndef MGMT_GUEST_AGENT_H
#define MGMT_GUEST_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/json.h"

#define AGENT_SYNC_BYTE 0xff
/* Tokens of one reply: guest-info lists ~40 commands of 3 members each. */
#define AGENT_REPLY_TOKENS 512

struct agent_stream {
	uint8_t *buf;           /* the message being collected */
	size_t cap, len;
	unsigned depth;
	bool in_string, escape;
	bool synced;            /* the 0xff answering a sync was seen */
	bool overflow;          /* the message is larger than cap: kept no further */
	uint64_t skipped;       /* bytes outside messages or before the sync */
};

/* Starts over expecting a sync's 0xff: the caller just sent one. */
void agent_stream_init(struct agent_stream *s, uint8_t *buf, size_t cap);
void agent_stream_expect_sync(struct agent_stream *s);

/*
 * Takes bytes up to the end of one message. Returns how many of in[0..n)
 * it consumed; sets *complete when buf[0..len) now holds a whole
 * message (or, with overflow set, held the start of one too long),
 * which the caller reads before feeding more.
 */
size_t agent_stream_feed(struct agent_stream *s, const uint8_t *in, size_t n, bool *complete);

/* The next message will be collected from the start of buf. */
void agent_stream_next(struct agent_stream *s);

enum agent_reply {
	AGENT_REPLY_RETURN,     /* *value: the token of "return" */
	AGENT_REPLY_ERROR,      /* class and desc copied (maybe empty) */
	AGENT_REPLY_MALFORMED,  /* not JSON, too many tokens, neither of the two */
};

/*
 * Reads one message: {"return": ...} or {"error": {"class": ..., "desc":
 * ...}}. tok has room for AGENT_REPLY_TOKENS.
 */
enum agent_reply agent_reply_read(struct json_doc *doc, const uint8_t *msg, size_t len,
				  struct json_token *tok, int *value, char *error, size_t error_cap);

/* Writes {"execute": command, "arguments": ...} opening the arguments object; see agent_request_end. */
void agent_request_begin(struct json_writer *w, char *buf, size_t cap, const char *command);
/* Closes the arguments and the request and adds the newline; the request's length, 0 on overflow. */
size_t agent_request_end(struct json_writer *w);

#endif
