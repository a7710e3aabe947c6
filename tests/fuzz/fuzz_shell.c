/*
 * libFuzzer target: bytes typed into the line editor, every finished line
 * parsed; the whole input parsed as one line; and the input split at
 * newlines as an argv. A parse that succeeds must give a payload that is
 * valid by the catalogue's own rules and fits in a frame; one that fails
 * must say why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "abi/api.h"
#include "mgmt/proto.h"
#include "mgmt/vm/shell.h"

static struct shell_line line;
static struct shell_cmd cmd;
static uint8_t wire[PROTO_MAX_WIRE];
static volatile uint8_t sink;

static void out(void *ctx, const char *s, size_t len)
{
	(void)ctx;
	if (len)
		sink ^= (uint8_t)s[0] ^ (uint8_t)s[len - 1];
}

static void check(int rc)
{
	if (rc != SHELL_OK) {
		if (cmd.error[0] == '\0' || !memchr(cmd.error, 0, sizeof(cmd.error)) ||
		    cmd.kind != SHELL_EMPTY)
			abort();
		return;
	}
	if (cmd.kind == SHELL_HELP) {
		shell_help(cmd.topic, cmd.topic_count, out, NULL);
		return;
	}
	if (cmd.kind != SHELL_REQUEST)
		return;

	struct proto_frame f = {
		.type = PROTO_REQUEST, .id = 1, .code = cmd.request,
		.length = (uint16_t)cmd.payload_len, .payload = cmd.payload,
	};
	if (!api_request_name(cmd.request) || cmd.payload_len > PROTO_MAX_PAYLOAD ||
	    !api_payload_valid(cmd.payload, cmd.payload_len) ||
	    proto_encode(wire, sizeof(wire), &f) <= 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char words[SHELL_WORDS_MAX + 2][SHELL_WORD_MAX + 2];
	const char *argv[SHELL_WORDS_MAX + 2];
	int argc = 0;

	check(shell_parse(&cmd, (const char *)data, size));

	shell_line_init(&line, out, NULL);
	for (size_t i = 0; i < size; i++) {
		enum shell_line_result r = shell_line_feed(&line, data[i]);

		if (line.len > SHELL_LINE_MAX)
			abort();
		if (r == SHELL_LINE_READY) {
			if (strlen(line.buf) != line.len)
				abort();
			check(shell_parse(&cmd, line.buf, line.len));
		}
	}

	/* Newline-separated words, each cut to what fits, as an argv. */
	for (size_t i = 0, w = 0; i <= size && argc < SHELL_WORDS_MAX + 2; i++) {
		if (i == size || data[i] == '\n') {
			words[argc][w] = '\0';
			argv[argc] = words[argc];
			argc++;
			w = 0;
		} else if (w < SHELL_WORD_MAX + 1) {
			words[argc][w++] = (char)data[i];
		}
	}
	check(shell_parse_argv(&cmd, argc, argv));
	return 0;
}
