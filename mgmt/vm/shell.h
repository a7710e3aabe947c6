/*
 * The human side of the management line: a line editor for a plain
 * terminal and a parser that turns a command line into the same request
 * (enum api_request plus a TLV payload) a framed client sends. One command
 * table serves the parser, `help`, and the admin tool (shell_parse_argv),
 * so a command means the same thing however it arrives.
 *
 * Grammar of a line: words separated by spaces or tabs. A double quote
 * starts and ends a quoted span inside a word (no escapes, as in the boot
 * configuration); quotes are removed. A word with an '=' outside quotes is
 * an option key=value; other words are the command words and then
 * positional arguments. Printable ASCII only.
 *
 *	vm create name=web memory=64M image=/guests/a.bin
 *	vm pause web
 *	net dhcp lan range=10.0.0.10-10.0.0.99
 *	help vm
 */
#ifndef MGMT_VM_SHELL_H
#define MGMT_VM_SHELL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mgmt/proto.h"

#define SHELL_LINE_MAX 511   /* characters of one line */
#define SHELL_WORDS_MAX 24   /* words (command words included) in one line */
#define SHELL_WORD_MAX 300   /* characters of one word after quote removal */
#define SHELL_ERROR_MAX 192
#define SHELL_CMD_WORDS 2    /* "vm pause" */
#define SHELL_CMD_ARGS 17

/* Output sink for echo and help; len bytes, not NUL-terminated. */
typedef void (*shell_out_fn)(void *ctx, const char *s, size_t len);

/*
 * Line editor. Printable characters are appended and echoed; Backspace
 * (0x08) and DEL (0x7f) erase one; Ctrl-U erases the line; Ctrl-C abandons
 * it; CR or LF ends it (CR LF counts once). Terminal escape sequences
 * (arrow keys) and other control characters are ignored: no history, no
 * tab completion. A line longer than SHELL_LINE_MAX is refused whole when
 * it ends, never cut short and run: a truncated "vm delete web-old" must
 * not become "vm delete web".
 */
enum shell_line_result {
	SHELL_LINE_PENDING,   /* more keys needed */
	SHELL_LINE_READY,     /* buf holds the line (len, NUL-terminated) */
	SHELL_LINE_CANCELLED, /* Ctrl-C */
	SHELL_LINE_TOO_LONG,  /* ended, but longer than SHELL_LINE_MAX: dropped */
};

struct shell_line {
	char buf[SHELL_LINE_MAX + 1];
	size_t len;
	bool too_long;    /* characters were refused since the line began */
	bool ended;       /* the last key ended the line: start afresh */
	bool after_cr;    /* swallow the LF of CR LF */
	uint8_t esc;      /* escape-sequence state */
	uint8_t esc_len;  /* bytes of the sequence so far, bounded */
	shell_out_fn echo; /* may be NULL */
	void *ctx;
};

void shell_line_init(struct shell_line *l, shell_out_fn echo, void *ctx);
enum shell_line_result shell_line_feed(struct shell_line *l, uint8_t c);

/* How an argument of a command may be given. */
#define SHELL_ARG_REQUIRED 0x01
#define SHELL_ARG_POSITIONAL 0x02 /* also as the next bare word, in table order */
#define SHELL_ARG_REPEAT 0x04     /* key=value may be given more than once */

struct shell_arg {
	const char *name; /* the key; NULL ends the list */
	uint8_t tag;      /* enum api_tag: its type says how the value is read */
	uint8_t flags;
};

struct shell_command {
	const char *words[SHELL_CMD_WORDS]; /* words[1] NULL for one-word commands */
	uint16_t request;                   /* enum api_request */
	/* Request sent instead when no option (non-positional argument) is given. */
	uint16_t query;
	const char *summary;
	struct shell_arg args[SHELL_CMD_ARGS];
};

extern const struct shell_command shell_commands[];
extern const size_t shell_command_count;

enum shell_error {
	SHELL_OK = 0,
	SHELL_E_LINE_TOO_LONG = -1,
	SHELL_E_BAD_CHAR = -2,      /* control or non-ASCII character */
	SHELL_E_UNTERMINATED_QUOTE = -3,
	SHELL_E_TOO_MANY_WORDS = -4,
	SHELL_E_WORD_TOO_LONG = -5,
	SHELL_E_UNKNOWN_COMMAND = -6,
	SHELL_E_INCOMPLETE = -7,    /* a group word alone: "vm" */
	SHELL_E_UNKNOWN_OPTION = -8,
	SHELL_E_DUPLICATE = -9,
	SHELL_E_MISSING = -10,      /* a required argument */
	SHELL_E_EXTRA_ARG = -11,    /* a bare word with no positional argument left */
	SHELL_E_EMPTY_KEY = -12,    /* "=value" */
	SHELL_E_EMPTY_VALUE = -13,  /* "key=" */
	SHELL_E_BAD_VALUE = -14,    /* not a size, an address, a name, ... */
};

enum shell_kind {
	SHELL_EMPTY,   /* blank line: nothing to do */
	SHELL_HELP,    /* help [topic...]: topic[] */
	SHELL_REQUEST, /* request + payload */
};

struct shell_cmd {
	enum shell_kind kind;
	const struct shell_command *command;
	uint16_t request;
	size_t payload_len;
	uint8_t payload[PROTO_MAX_PAYLOAD];
	unsigned topic_count;
	const char *topic[SHELL_WORDS_MAX];
	char error[SHELL_ERROR_MAX]; /* set when parsing fails */
	/* Words after quote removal, NUL-separated; topic[] points here. */
	char storage[SHELL_LINE_MAX + SHELL_WORDS_MAX + 1];
};

/*
 * Parses len bytes of line (any bytes: they come from the line). Returns
 * SHELL_OK with cmd filled, or an enum shell_error with cmd->error saying
 * what is wrong in words a person understands.
 */
int shell_parse(struct shell_cmd *cmd, const char *line, size_t len);

/*
 * The same for words that are already split (the admin tool's argv after
 * its options): no quote processing, the same table and checks.
 */
int shell_parse_argv(struct shell_cmd *cmd, int argc, const char *const *argv);

/*
 * Writes help for the topic words (all commands when count is 0, a group
 * such as "vm", or one command in detail) to out. Returns SHELL_OK, or
 * SHELL_E_UNKNOWN_COMMAND (after writing a line that says so).
 */
int shell_help(const char *const *topic, unsigned count, shell_out_fn out, void *ctx);

#endif
