/*
 * libFuzzer target: what a guest agent writes, as the management VM reads
 * it (mgmt/guest_agent.c): the byte stream split into messages in
 * buffers of several sizes, fed in pieces the input chooses, and every
 * message read as a reply. Nothing may read or write out of bounds, a
 * message may never exceed its buffer, and every byte is consumed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mgmt/guest_agent.h"

static uint8_t buf[4096];
static struct json_token tok[AGENT_REPLY_TOKENS];

static void split(const uint8_t *data, size_t size, size_t cap, size_t piece)
{
	struct agent_stream s;
	size_t done = 0;

	agent_stream_init(&s, buf, cap);
	agent_stream_expect_sync(&s);
	while (done < size) {
		size_t n = size - done < piece ? size - done : piece;
		bool complete;
		size_t used = agent_stream_feed(&s, data + done, n, &complete);
		if (used == 0 || used > n || s.len > cap)
			abort();
		done += used;
		if (!complete)
			continue;
		if (!s.overflow) {
			struct json_doc doc;
			char error[64];
			int value;
			agent_reply_read(&doc, s.buf, s.len, tok, &value, error, sizeof(error));
			if (strlen(error) >= sizeof(error))
				abort();
		}
		agent_stream_next(&s);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t piece = size ? (size_t)data[0] % 64 + 1 : 1;

	split(data, size, sizeof(buf), size ? size : 1);
	split(data, size, 16, piece);
	split(data, size, sizeof(buf), piece);
	return 0;
}
