/*
 * vmmctl, the host-side admin tool of the management line
 * (docs/vmmctl.md is its manual, docs/protocol.md the wire contract).
 *
 * Modules (plus mgmt/proto.c, mgmt/vm/shell.c, mgmt/sha256.c, lib/fmt.c):
 *   vmmctl_conn.c    the session over any byte stream (an fd): decoder,
 *                    request ids, retries, events, Hello, auth, Goodbye
 *   vmmctl_io.c      opening serial devices, ptys, TCP and Unix sockets;
 *                    the raw terminal of `console`
 *   vmmctl_out.c     JSON writer, safe text, tables, event lines
 *   vmmctl_cli.c     options, the subcommand table, request building
 *                    (through the shell's table: shell_parse_argv), help
 *   vmmctl_cmd.c     running a subcommand on a session
 *   vmmctl.c         main()
 *
 * Everything that comes from the line is hostile: every length is bounded
 * and every string is escaped before it reaches a terminal or a JSON
 * document.
 */
#ifndef MGMT_VMMCTL_H
#define MGMT_VMMCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "abi/api.h"
#include "mgmt/proto.h"
#include "mgmt/session.h"
#include "mgmt/sha256.h"
#include "mgmt/vm/shell.h"

/* Exit codes (docs/vmmctl.md). */
enum vmmctl_exit {
	VMMCTL_EXIT_OK = 0,
	VMMCTL_EXIT_API = 1,      /* the server answered with an error frame */
	VMMCTL_EXIT_USAGE = 2,    /* bad command line, unreadable key file */
	VMMCTL_EXIT_CONN = 3,     /* cannot connect, no answer, line dropped, wait timed out */
	VMMCTL_EXIT_PROTO = 4,    /* a malformed or unexpected answer */
};

/* ---- Session ---- */

/* Protocol defaults (docs/protocol.md, "Retries and idempotency"). */
#define VMMCTL_TIMEOUT_MS 1000
#define VMMCTL_SLOW_TIMEOUT_MS 5000
/*
 * A call to a guest agent is answered when it ends: a command may run its
 * 60 s (ExecuteCommand's largest timeout_ms) and every attempt
 * (VMMCTL_RETRIES + 1) together wait longer; a retransmission meanwhile
 * is dropped as in progress, never run twice.
 */
#define VMMCTL_AGENT_TIMEOUT_MS 20000
#define VMMCTL_RETRIES 3
#define VMMCTL_INTERBYTE_MS 500 /* silence inside a frame: drop it */
#define VMMCTL_EVENT_QUEUE 64
#define VMMCTL_KEY_MAX 64

/* A frame with its own copy of the payload. */
struct vmmctl_frame {
	uint8_t type;
	uint8_t flags;
	uint16_t code;
	uint32_t id;
	uint16_t length;
	uint8_t payload[PROTO_MAX_PAYLOAD];
};

/* Result of a call; the API error is in conn->err when VMMCTL_CALL_ERROR. */
enum vmmctl_call {
	VMMCTL_CALL_OK = 0,       /* a response: conn->resp */
	VMMCTL_CALL_ERROR = 1,    /* an error frame: conn->err_code, err_msg, ... */
	VMMCTL_CALL_TIMEOUT = 3,  /* no answer after every retry */
	VMMCTL_CALL_CLOSED = 5,   /* the line dropped (EOF, I/O error) */
	VMMCTL_CALL_PROTO = 4,    /* an answer that breaks the protocol */
	VMMCTL_CALL_INTR = 6,     /* interrupted (Ctrl-C) */
};

struct vmmctl_conn {
	int fd;                 /* read and write; -1 when closed */
	struct proto_decoder dec;
	uint8_t rbuf[4096];     /* bytes read but not yet decoded */
	size_t rpos, rlen;
	int64_t last_byte_ms;   /* for the inter-byte timeout */

	uint32_t next_id;
	int timeout_ms;         /* per attempt; 0: the protocol's default per request */
	int retries;            /* resends after a timeout */

	/* Text between frames (the hypervisor's log). */
	FILE *log;              /* NULL: dropped */
	bool log_crlf;          /* raw terminal: \n becomes \r\n */
	bool log_bol;

	/* Events that arrived while waiting for an answer. */
	struct vmmctl_frame events[VMMCTL_EVENT_QUEUE];
	unsigned ev_head, ev_count;
	uint64_t events_dropped;

	/* The last answer. */
	struct vmmctl_frame resp;
	uint16_t err_code;
	char err_msg[API_STR_MAX + 1];
	bool err_has_state;
	uint8_t err_state;
	uint32_t err_retry_after_ms;

	/* From Hello. */
	uint16_t server_api_version;
	char server_software[API_STR_MAX + 1];
	bool auth_required;
	uint64_t hello_seq;

	/* After authentication: every request is signed (mgmt/session.h). */
	bool signing;
	uint32_t session_id;
	uint64_t session_seq;
	uint8_t session_key[SHA256_SIZE];

	/* Statistics, for tests and --verbose. */
	uint32_t sent, resent, stale_answers, ignored_frames;

	/* Set asynchronously (SIGINT) to end waits. */
	volatile int *interrupted;

	/* Clock (ms), replaceable by tests; NULL: CLOCK_MONOTONIC. */
	int64_t (*now_ms)(void);
};

void vmmctl_conn_init(struct vmmctl_conn *c, int fd, uint32_t first_id);
int64_t vmmctl_now_ms(const struct vmmctl_conn *c);
/* The answer timeout of a request when timeout_ms is 0. */
int vmmctl_default_timeout_ms(uint16_t request);

/*
 * Sends a request and waits for its answer, resending it with the same id
 * (PROTO_FLAG_RETRY) after each timeout. Events received meanwhile are
 * queued; answers with another id are ignored.
 */
enum vmmctl_call vmmctl_call(struct vmmctl_conn *c, uint16_t code, const uint8_t *payload,
			     size_t len);

/*
 * Waits up to timeout_ms (-1: forever) for an event frame (queued ones
 * first). Returns 1 with *ev set, 0 on timeout, or -VMMCTL_CALL_CLOSED,
 * -VMMCTL_CALL_INTR.
 */
int vmmctl_next_event(struct vmmctl_conn *c, int timeout_ms, struct vmmctl_frame *ev);

/* Reads and decodes for up to timeout_ms; frames are queued (events) or dropped. */
int vmmctl_pump(struct vmmctl_conn *c, int timeout_ms);

/* Hello (version check), then authentication when the server wants it and a key is given. */
enum vmmctl_call vmmctl_hello(struct vmmctl_conn *c);
enum vmmctl_call vmmctl_authenticate(struct vmmctl_conn *c, const uint8_t *key, size_t key_len);
/* Forgets the session key (requests are no longer signed). */
void vmmctl_end_session(struct vmmctl_conn *c);
/* Goodbye with one short attempt; errors are ignored. */
void vmmctl_goodbye(struct vmmctl_conn *c);

/* Writes all of buf (the fd may be non-blocking); false when the line dropped. */
bool vmmctl_write_all(int fd, const void *buf, size_t len);

/* ---- I/O: targets and terminal ---- */

/*
 * Opens a target: a device path (serial port, pty), tcp:HOST:PORT,
 * unix:PATH or exec:COMMAND. Returns an fd, or -1 with a message in err.
 */
int vmmctl_open(const char *target, int baud, int timeout_ms, char *err, size_t errcap);
bool vmmctl_baud_valid(int baud);
/* Puts the terminal on fd into raw mode; restore undoes it (also at exit). */
bool vmmctl_tty_raw(int fd);
void vmmctl_tty_restore(void);

/* Reads a key file: hex digits (whitespace ignored), 16..64 bytes. */
int vmmctl_read_key(const char *path, uint8_t *key, size_t cap, size_t *len, char *err,
		    size_t errcap);
bool vmmctl_parse_hex(const char *s, uint8_t *out, size_t cap, size_t *len);

/* ---- Output ---- */

struct json {
	FILE *f;
	unsigned depth;
	bool first[16];  /* no comma needed before the next member, per level */
	bool after_key;
};

void json_init(struct json *j, FILE *f);
void json_begin(struct json *j, char open);  /* '{' or '[' */
void json_end(struct json *j, char close);
void json_key(struct json *j, const char *key);
void json_str(struct json *j, const uint8_t *s, size_t len); /* escaped, valid JSON */
void json_cstr(struct json *j, const char *s);
void json_uint(struct json *j, uint64_t v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);

/*
 * Writes s for a person: printable ASCII as is, everything else as \xNN,
 * backslash as \\ (so nothing from the line can move the cursor, change
 * colours or retitle the terminal).
 */
void vmmctl_put_safe(FILE *f, const uint8_t *s, size_t len);
/* The same into a buffer, always terminated; truncated with "..." when long. */
void vmmctl_safe(char *out, size_t cap, const uint8_t *s, size_t len);
/* Console text: \n, \r and \t kept, other control bytes escaped. */
void vmmctl_put_console(FILE *f, const uint8_t *s, size_t len);

const char *vmmctl_state_name(uint8_t state);      /* NULL when unknown */
bool vmmctl_state_parse(const char *s, uint8_t *state); /* name (any case) or number */
const char *vmmctl_error_symbol(uint16_t code);     /* "INVALID_STATE"; NULL when unknown */

/*
 * A whole answer, possibly several pages merged (vmmctl_merge_page), as
 * JSON (one object) or for people ("key: value" lines, lists as tables).
 */
void vmmctl_render_json(FILE *f, const uint8_t *tlvs, size_t len);
void vmmctl_render_human(FILE *f, const uint8_t *tlvs, size_t len);
/* The same for a list answer: the list shows (empty) even when no entry came. */
void vmmctl_render_list(FILE *f, bool json, const uint8_t *tlvs, size_t len, uint8_t list_tag);
/* The members of an answer into an open JSON object; its "key: value" lines and tables. */
void vmmctl_json_fields(struct json *j, const uint8_t *tlvs, size_t len, uint8_t list_tag);
void vmmctl_human_fields(FILE *f, const uint8_t *tlvs, size_t len, uint8_t list_tag);
/* Appends a page to a merged answer: everything from the first page, lists from the rest. */
bool vmmctl_merge_page(uint8_t **buf, size_t *len, size_t *cap, const uint8_t *page,
		       size_t page_len, bool first);
#define VMMCTL_MERGED_MAX (1u << 20)

/* An event: one line for people, or one JSON object per line. */
void vmmctl_print_event(FILE *f, bool json, const struct vmmctl_frame *ev);
/* An API error from conn: a line on err (and a JSON document on out with json). */
void vmmctl_print_api_error(FILE *out, FILE *err, bool json, const char *what,
			    const struct vmmctl_conn *c);

/* ---- Command line ---- */

struct vmmctl_opts {
	const char *connect;
	int baud;
	bool json;
	bool show_log;
	bool verbose;
	const char *key_file;
	int timeout_ms;   /* 0: protocol defaults */
	int retries;
	bool help;
	bool version;
};

/* What a subcommand does beyond sending its request. */
enum vmmctl_kind {
	VK_REQUEST,     /* one request (paged when it is a list) */
	VK_STATE_OP,    /* Startup, TurnOff, ...: prints "vm: State" */
	VK_NET_SHOW,    /* statistics + adapters + DHCP */
	VK_DHCP_SET,    /* SetDhcpSettings, needs an option */
	VK_EVENTS,
	VK_WAIT,
	VK_CONSOLE,
	VK_EXPORT,      /* ExportSavedState in chunks into a file */
	VK_IMPORT,      /* ImportVirtualMachine in chunks from a file */
	VK_AUTH_ANSWER, /* offline: HMAC of a nonce */
	VK_HELP,
};

struct vmmctl_sub {
	const char *name;
	const char *alias;
	const char *shell[2];     /* the shell command it reuses; NULL for the tool's own */
	enum vmmctl_kind kind;
	const char *usage;        /* after "vmmctl NAME" */
	const char *summary;
};

extern const struct vmmctl_sub vmmctl_subs[];
extern const size_t vmmctl_sub_count;
const struct vmmctl_sub *vmmctl_find_sub(const char *name);

/* Options of the tool's own subcommands (events, wait, console). */
struct vmmctl_local {
	bool follow;
	long count;           /* events --count; 0: unlimited */
	const char *vm;       /* events --vm filter, wait, console */
	const char *state;    /* wait */
	int wait_ms;          /* wait --max-wait; -1: forever */
	bool dump;
	bool raw;
	const char *send;
	bool no_newline;
	uint8_t escape;       /* console escape key */
	const char *nonce;    /* auth-answer */
	const char *file;     /* export, import */
	bool resume;          /* import: go on with the hypervisor's unfinished import */
	const char *network;  /* import: the network its adapters go on */
	bool with_disk;       /* export: the file carries the VM's disk */
	const char *disk;     /* import: the store disk a carried disk becomes */
};

struct vmmctl_parsed {
	struct vmmctl_opts opts;
	const struct vmmctl_sub *sub;
	struct vmmctl_local local;
	struct shell_cmd cmd;     /* the request, for shell-backed subcommands */
	bool sub_help;
	char error[256];
};

/*
 * Parses the whole command line (argv[0] is the program). Returns
 * VMMCTL_EXIT_OK, or VMMCTL_EXIT_USAGE with p->error set. getenv may be
 * NULL (no environment).
 */
int vmmctl_parse(struct vmmctl_parsed *p, int argc, char **argv,
		 const char *(*getenv_fn)(const char *));
void vmmctl_usage(FILE *f);
void vmmctl_sub_help(FILE *f, const struct vmmctl_sub *s);

/* ---- Running a subcommand ---- */

struct vmmctl_env {
	FILE *out, *err;
	volatile int *interrupted;
	/* (Re)connects: an fd ready for the session, or -1 (message written to err). */
	int (*connect)(void *ctx, const struct vmmctl_opts *o);
	void *connect_ctx;
	int reconnect_max_ms;   /* backoff cap when the line drops (follow, console) */
	int keepalive_ms;       /* follow: check the line after this long without a frame */
	const uint8_t *key;
	size_t key_len;
	bool console_tty;       /* console: stdin is a terminal to put in raw mode */
	bool progress_tty;      /* export, import: err is a terminal for a progress bar */
	int console_in;         /* console: fd of the keys (stdin) */
	uint32_t first_id;      /* 0: random */
};

/* Runs a parsed subcommand: connects, Hello, auth, the command, Goodbye. */
int vmmctl_run(const struct vmmctl_parsed *p, struct vmmctl_env *env);

#endif
