/*
 * Line editor, command table, parser and help of the human shell. The
 * table below is the only list of commands: parsing, help and the admin
 * tool's subcommands all read it.
 */
#include "mgmt/vm/shell.h"

#include <stdarg.h>
#include <string.h>

#include "lib/fmt.h"
#include "abi/api.h"

#define REQ SHELL_ARG_REQUIRED
#define POS SHELL_ARG_POSITIONAL
#define REP SHELL_ARG_REPEAT

/* The selector of the object a command acts on: given as the first bare word. */
#define ARG_VM(key) { key, API_TAG_VM, REQ | POS }
#define ARG_NET(key) { key, API_TAG_NET, REQ | POS }
#define ARG_NIC { "nic", API_TAG_NIC, REQ | POS }

const struct shell_command shell_commands[] = {
	{ { "host", "info" }, API_REQ_GET_HOST_INFO, 0,
	  "Version, CPUs, memory, uptime of the host", { { 0 } } },

	{ { "vm", "list" }, API_REQ_LIST_VIRTUAL_MACHINES, 0,
	  "All VMs and their states", { { 0 } } },
	{ { "vm", "find" }, API_REQ_FIND_VIRTUAL_MACHINE, 0,
	  "Look a VM up by name", { ARG_VM("name") } },
	{ { "vm", "create" }, API_REQ_CREATE_VIRTUAL_MACHINE, 0,
	  "Create a VM, turned off",
	  { ARG_VM("name"),
	    { "memory", API_TAG_MEMORY, REQ },
	    { "image", API_TAG_IMAGE, REQ },
	    { "boot", API_TAG_BOOT, 0 },
	    { "load", API_TAG_LOAD, 0 },
	    { "entry", API_TAG_ENTRY, 0 },
	    { "cmdline", API_TAG_CMDLINE, 0 },
	    { "initrd", API_TAG_INITRD, 0 },
	    { "disk", API_TAG_DISK, 0 },
	    { "store_disk", API_TAG_STORE_DISK, 0 },
	    { "nic", API_TAG_NIC_SPEC, REP },
	    { "autostart", API_TAG_AUTOSTART, 0 },
	    { "guest_agent", API_TAG_GUEST_AGENT, 0 },
	    { "watchdog", API_TAG_WATCHDOG, 0 },
	    { "free_page_reporting", API_TAG_FREE_PAGE_REPORTING, 0 },
	    { "on_heartbeat_loss", API_TAG_ON_HEARTBEAT_LOSS, 0 },
	    { "heartbeat_grace", API_TAG_HEARTBEAT_GRACE_S, 0 } } },
	{ { "vm", "delete" }, API_REQ_DELETE_VIRTUAL_MACHINE, 0,
	  "Delete a turned-off VM", { ARG_VM("name") } },
	{ { "vm", "info" }, API_REQ_GET_STATE, 0,
	  "State, memory, uptime, adapters of a VM", { ARG_VM("name") } },
	{ { "vm", "startup" }, API_REQ_STARTUP, 0,
	  "Start a turned-off or saved VM", { ARG_VM("name") } },
	{ { "vm", "turnoff" }, API_REQ_TURN_OFF, 0,
	  "Power a VM off without asking the guest",
	  { ARG_VM("name"), { "reason", API_TAG_REASON, 0 } } },
	{ { "vm", "reset" }, API_REQ_RESET, 0,
	  "Reset a running or paused VM", { ARG_VM("name") } },
	{ { "vm", "save" }, API_REQ_SAVE, 0,
	  "Save a VM's state and turn it off", { ARG_VM("name") } },
	{ { "vm", "discard" }, API_REQ_DISCARD_SAVED_STATE, 0,
	  "Drop a saved VM's state: it is TurnedOff", { ARG_VM("name") } },
	{ { "vm", "pause" }, API_REQ_PAUSE, 0,
	  "Pause a running VM", { ARG_VM("name") } },
	{ { "vm", "resume" }, API_REQ_RESUME, 0,
	  "Resume a paused VM", { ARG_VM("name") } },

	{ { "console", "read" }, API_REQ_CONSOLE_READ, 0,
	  "Buffered console output of a VM",
	  { ARG_VM("vm"), { "offset", API_TAG_OFFSET, 0 }, { "max", API_TAG_MAX_BYTES, 0 } } },
	{ { "console", "write" }, API_REQ_CONSOLE_WRITE, 0,
	  "Type text into a VM's console",
	  { ARG_VM("vm"), { "data", API_TAG_DATA, REQ | POS } } },

	{ { "nic", "add" }, API_REQ_ADD_NETWORK_ADAPTER, 0,
	  "Add an adapter; MAC generated unless given",
	  { ARG_VM("vm"), { "mac", API_TAG_MAC, 0 } } },
	{ { "nic", "remove" }, API_REQ_REMOVE_NETWORK_ADAPTER, 0,
	  "Remove a network adapter", { ARG_VM("vm"), ARG_NIC } },
	{ { "nic", "list" }, API_REQ_LIST_NETWORK_ADAPTERS, 0,
	  "Network adapters of a VM", { ARG_VM("vm") } },
	{ { "nic", "mac" }, API_REQ_GET_MAC_ADDRESS, 0,
	  "MAC address of an adapter", { ARG_VM("vm"), ARG_NIC } },
	{ { "nic", "attach" }, API_REQ_ATTACH_TO_VIRTUAL_NETWORK, 0,
	  "Connect an adapter to a virtual network",
	  { ARG_VM("vm"), ARG_NIC, ARG_NET("net") } },
	{ { "nic", "detach" }, API_REQ_DETACH_FROM_VIRTUAL_NETWORK, 0,
	  "Disconnect an adapter from its network", { ARG_VM("vm"), ARG_NIC } },

	{ { "disk", "create" }, API_REQ_CREATE_VIRTUAL_HARD_DISK, 0,
	  "Make a disk in the store, zeroed in the background",
	  { { "name", API_TAG_STORE_DISK, REQ | POS }, { "size", API_TAG_DISK_SIZE, REQ } } },
	{ { "disk", "list" }, API_REQ_LIST_VIRTUAL_HARD_DISKS, 0,
	  "Disks in the store: size, how far made, whose", { { 0 } } },
	{ { "disk", "delete" }, API_REQ_DELETE_VIRTUAL_HARD_DISK, 0,
	  "Delete a disk of the store that no VM has",
	  { { "name", API_TAG_STORE_DISK, REQ | POS } } },
	{ { "net", "list" }, API_REQ_LIST_VIRTUAL_NETWORKS, 0,
	  "All virtual networks", { { 0 } } },
	{ { "net", "create" }, API_REQ_CREATE_VIRTUAL_NETWORK, 0,
	  "Create a virtual network", { ARG_NET("name"), { "mtu", API_TAG_MTU, 0 } } },
	{ { "net", "delete" }, API_REQ_DELETE_VIRTUAL_NETWORK, 0,
	  "Delete a network (detaches its adapters)", { ARG_NET("name") } },
	{ { "net", "adapters" }, API_REQ_GET_ADAPTERS, 0,
	  "Adapters attached to a network", { ARG_NET("name") } },
	{ { "net", "stats" }, API_REQ_GET_STATISTICS, 0,
	  "Traffic statistics of a network", { ARG_NET("name") } },
	{ { "net", "dhcp" }, API_REQ_SET_DHCP_SETTINGS, API_REQ_GET_DHCP_SETTINGS,
	  "Show DHCP settings, or change those given",
	  { ARG_NET("name"),
	    { "enabled", API_TAG_DHCP_ENABLED, 0 },
	    { "range", API_TAG_DHCP_RANGE, 0 },
	    { "netmask", API_TAG_NETMASK, 0 },
	    { "gateway", API_TAG_GATEWAY, 0 },
	    { "dns", API_TAG_DNS, 0 },
	    { "lease", API_TAG_LEASE_TIME_S, 0 } } },
	{ { "net", "leases" }, API_REQ_GET_LEASES, 0,
	  "DHCP lease table of a network", { ARG_NET("name") } },

	{ { "guest", "heartbeat" }, API_REQ_GET_HEARTBEAT, 0,
	  "Is the guest OS alive, can it shut down", { ARG_VM("vm") } },
	{ { "guest", "shutdown" }, API_REQ_SHUTDOWN, 0,
	  "Ask the guest OS to shut down", { ARG_VM("vm") } },
	{ { "guest", "os" }, API_REQ_GET_OS_NAME, 0,
	  "Name of the guest OS", { ARG_VM("vm") } },
	{ { "guest", "additions" }, API_REQ_GET_ADDITIONS_VERSION, 0,
	  "Version of the guest additions", { ARG_VM("vm") } },
	{ { "guest", "install" }, API_REQ_INSTALL_ADDITIONS, 0,
	  "Install the guest additions", { ARG_VM("vm") } },
	{ { "guest", "timesync" }, API_REQ_SYNC_TIME, 0,
	  "Show or set host time synchronisation",
	  { ARG_VM("vm"), { "enabled", API_TAG_TIME_SYNC, POS } } },
	{ { "guest", "exec" }, API_REQ_EXECUTE_COMMAND, 0,
	  "Run a program in the guest OS",
	  { ARG_VM("vm"), { "command", API_TAG_COMMAND, REQ | POS },
	    { "timeout_ms", API_TAG_TIMEOUT_MS, 0 } } },
	{ { "guest", "set" }, API_REQ_SET_PARAMETER, 0,
	  "Set a parameter in the guest OS",
	  { ARG_VM("vm"), { "parameter", API_TAG_PARAMETER, REQ | POS },
	    { "value", API_TAG_VALUE, REQ | POS } } },

	{ { "events", NULL }, API_REQ_SUBSCRIBE_EVENTS, 0,
	  "Follow VM state changes (on|off)",
	  { { "enable", API_TAG_STATE_EVENTS, REQ | POS }, { "console", API_TAG_CONSOLE_VM, 0 } } },

	{ { "auth", "challenge" }, API_REQ_AUTH_CHALLENGE, 0,
	  "Get a challenge for the line's key", { { 0 } } },
	{ { "auth", "answer" }, API_REQ_AUTH_RESPONSE, 0,
	  "Answer: HMAC-SHA256(key, nonce) in hex",
	  { { "mac", API_TAG_AUTH_MAC, REQ | POS } } },
};

const size_t shell_command_count = sizeof(shell_commands) / sizeof(shell_commands[0]);

/* The worst case of one line stays within a frame payload. */
_Static_assert(SHELL_WORDS_MAX * (TLV_HEADER_SIZE + 8) + SHELL_LINE_MAX <= PROTO_MAX_PAYLOAD,
	       "a parsed line fits in one request");
_Static_assert(SHELL_CMD_ARGS <= 32, "argument bit mask");

/* ---- Line editor ---- */

enum { ESC_NONE, ESC_START, ESC_SEQUENCE };
#define ESC_LEN_MAX 16

#define CTRL(c) ((c) & 0x1f)

static void echo(struct shell_line *l, const char *s, size_t len)
{
	if (l->echo)
		l->echo(l->ctx, s, len);
}

void shell_line_init(struct shell_line *l, shell_out_fn echo_fn, void *ctx)
{
	memset(l, 0, sizeof(*l));
	l->echo = echo_fn;
	l->ctx = ctx;
}

static enum shell_line_result end_line(struct shell_line *l, bool cr)
{
	echo(l, "\r\n", 2);
	l->buf[l->len] = '\0';
	l->ended = true;
	l->after_cr = cr;
	return l->too_long ? SHELL_LINE_TOO_LONG : SHELL_LINE_READY;
}

/*
 * Swallows the rest of an escape sequence (ESC [ ... final, ESC O x, or
 * ESC x). True when c belonged to it; a byte that cannot be part of one
 * ends it and is handled as a key.
 */
static bool in_escape(struct shell_line *l, uint8_t c)
{
	if (l->esc == ESC_START) {
		l->esc = (c == '[' || c == 'O') ? ESC_SEQUENCE : ESC_NONE;
		return c >= 0x20 && c < 0x7f;
	}
	if (c >= 0x40 && c <= 0x7e) {
		l->esc = ESC_NONE;
		return true;
	}
	if (c >= 0x20 && c <= 0x3f && ++l->esc_len < ESC_LEN_MAX)
		return true;
	l->esc = ESC_NONE;
	return false;
}

enum shell_line_result shell_line_feed(struct shell_line *l, uint8_t c)
{
	bool after_cr = l->after_cr;

	if (l->ended) {
		l->ended = false;
		l->len = 0;
		l->too_long = false;
	}
	l->after_cr = false;
	if (l->esc != ESC_NONE && in_escape(l, c))
		return SHELL_LINE_PENDING;

	switch (c) {
	case '\r':
		return end_line(l, true);
	case '\n':
		if (after_cr)
			return SHELL_LINE_PENDING;
		return end_line(l, false);
	case '\b':
	case 0x7f:
		if (l->len > 0) {
			l->len--;
			echo(l, "\b \b", 3);
		}
		break;
	case CTRL('U'):
		for (; l->len > 0; l->len--)
			echo(l, "\b \b", 3);
		l->too_long = false;
		break;
	case CTRL('C'):
		echo(l, "^C\r\n", 4);
		l->len = 0;
		l->buf[0] = '\0';
		l->ended = true;
		return SHELL_LINE_CANCELLED;
	case 0x1b:
		l->esc = ESC_START;
		l->esc_len = 0;
		break;
	default:
		if (c < 0x20 || c > 0x7e)
			break; /* other control keys, tab, non-ASCII: ignored */
		if (l->len < SHELL_LINE_MAX) {
			l->buf[l->len++] = (char)c;
			echo(l, (const char *)&c, 1);
		} else if (!l->too_long) {
			l->too_long = true;
			echo(l, "\a", 1);
		}
		break;
	}
	return SHELL_LINE_PENDING;
}

/* ---- Parser ---- */

struct word {
	const char *text; /* NUL-terminated, in cmd->storage */
	size_t len;
	long eq;          /* index of the first '=' outside quotes, or -1 */
};

/* How each value type is written by a person: help placeholder and rule. */
static const struct {
	const char *placeholder;
	const char *rule;
} syntax[] = {
	[API_T_U8] = { "n", "a number 0..255" },
	[API_T_U16] = { "n", "a number 0..65535" },
	[API_T_U32] = { "n", "a number (decimal or 0x hex)" },
	[API_T_U64] = { "n", "a number (decimal or 0x hex)" },
	[API_T_BOOL] = { "on|off", "yes/no, on/off, true/false or 1/0" },
	[API_T_SIZE] = { "size", "a size such as 64M, 512K or 1G" },
	[API_T_STR] = { "text", "printable text of at most 255 characters" },
	[API_T_NAME] = { "name", "a name: 1 to 31 of A-Z a-z 0-9 _ . -" },
	[API_T_BYTES] = { "text", "text" },
	[API_T_HEX] = { "hex", "an even number of hex digits" },
	[API_T_MAC] = { "mac", "a MAC address such as 02:00:00:00:00:01" },
	[API_T_IPV4] = { "ip", "an IPv4 address such as 10.0.0.1" },
	[API_T_IPV4_RANGE] = { "ip-ip", "an IPv4 range such as 10.0.0.10-10.0.0.99" },
	[API_T_IPV4_LIST] = { "ip,...", "1 to 4 IPv4 addresses separated by commas" },
	[API_T_LIST] = { "list", "not settable from the shell" },
};

static enum api_type arg_type(const struct shell_arg *a)
{
	enum api_type type = API_T_LIST;

	api_tag_type(a->tag, &type);
	return type;
}

static int fail(struct shell_cmd *cmd, int error, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct shell_cmd *cmd, int error, const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	fmt_vsnprintf(cmd->error, sizeof(cmd->error), format, ap);
	va_end(ap);
	return error;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_printable(uint8_t c)
{
	return c >= 0x20 && c <= 0x7e;
}

static int split_line(struct shell_cmd *cmd, const char *line, size_t len,
		      struct word *words, unsigned *count)
{
	size_t used = 0, i = 0;

	*count = 0;
	if (len > SHELL_LINE_MAX)
		return fail(cmd, SHELL_E_LINE_TOO_LONG, "line too long (more than %d characters)",
			    SHELL_LINE_MAX);
	for (size_t k = 0; k < len; k++)
		if (!is_printable((uint8_t)line[k]) && line[k] != '\t')
			return fail(cmd, SHELL_E_BAD_CHAR,
				    "character 0x%02x at column %zu is not printable ASCII",
				    (uint8_t)line[k], k + 1);
	for (;;) {
		while (i < len && is_space(line[i]))
			i++;
		if (i == len)
			return SHELL_OK;
		if (*count == SHELL_WORDS_MAX)
			return fail(cmd, SHELL_E_TOO_MANY_WORDS, "too many words (at most %d)",
				    SHELL_WORDS_MAX);

		struct word *w = &words[(*count)++];
		char *out = cmd->storage + used;
		bool quoted = false;

		w->text = out;
		w->len = 0;
		w->eq = -1;
		while (i < len && (quoted || !is_space(line[i]))) {
			char c = line[i++];

			if (c == '"') {
				quoted = !quoted;
				continue;
			}
			if (w->len == SHELL_WORD_MAX)
				return fail(cmd, SHELL_E_WORD_TOO_LONG,
					    "word %u too long (at most %d characters)", *count,
					    SHELL_WORD_MAX);
			if (c == '=' && !quoted && w->eq < 0)
				w->eq = (long)w->len;
			out[w->len++] = c;
		}
		if (quoted)
			return fail(cmd, SHELL_E_UNTERMINATED_QUOTE, "word %u: missing closing '\"'",
				    *count);
		out[w->len] = '\0';
		used += w->len + 1;
	}
}

/* ---- Values ---- */

static bool lower_equal(const char *s, size_t n, const char *word)
{
	size_t i = 0;

	for (; i < n && word[i]; i++) {
		char c = s[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != word[i])
			return false;
	}
	return i == n && word[i] == '\0';
}

/* Decimal, or hex with 0x; consumes the longest run of digits. */
static size_t parse_digits(const char *s, size_t n, uint64_t max, uint64_t *v)
{
	unsigned base = 10;
	size_t i = 0, start;

	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	start = i;
	*v = 0;
	for (; i < n; i++) {
		int d = fmt_hex_digit(s[i]);

		if (d < 0 || (unsigned)d >= base)
			break;
		if (*v > (max - (uint64_t)d) / base)
			return 0;
		*v = *v * base + (uint64_t)d;
	}
	return i > start ? i : 0;
}

static bool parse_uint(const char *s, size_t n, uint64_t max, uint64_t *v)
{
	return n > 0 && parse_digits(s, n, max, v) == n;
}

/* Same syntax as sizes in the boot configuration: binary multiples. */
static bool parse_size(const char *s, size_t n, uint64_t *v)
{
	static const struct {
		const char *suffix;
		unsigned shift;
	} units[] = {
		{ "", 0 }, { "k", 10 }, { "kib", 10 }, { "m", 20 }, { "mib", 20 },
		{ "g", 30 }, { "gib", 30 },
	};
	size_t digits = parse_digits(s, n, UINT64_MAX, v);

	if (digits == 0)
		return false;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (lower_equal(s + digits, n - digits, units[i].suffix)) {
			if (*v > (UINT64_MAX >> units[i].shift))
				return false;
			*v <<= units[i].shift;
			return true;
		}
	}
	return false;
}

static bool parse_bool(const char *s, size_t n, uint64_t *v)
{
	static const char *const words[][2] = {
		{ "no", "yes" }, { "off", "on" }, { "false", "true" }, { "0", "1" },
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		for (unsigned b = 0; b < 2; b++) {
			if (lower_equal(s, n, words[i][b])) {
				*v = b;
				return true;
			}
		}
	}
	return false;
}

/* count fields of 1..max_digits digits in base, separated by sep. */
static bool parse_fields(const char *s, size_t n, char sep, unsigned count, bool hex,
			 uint8_t *out)
{
	size_t i = 0;

	for (unsigned f = 0; f < count; f++) {
		size_t start = i;
		unsigned v = 0;

		for (; i < n && s[i] != sep; i++) {
			int d = fmt_hex_digit(s[i]);

			if (d < 0 || (!hex && d > 9) || i - start == (hex ? 2u : 3u))
				return false;
			v = v * (hex ? 16 : 10) + (unsigned)d;
		}
		if (i == start || v > 255 || (f + 1 < count && i == n))
			return false;
		out[f] = (uint8_t)v;
		if (f + 1 < count)
			i++; /* the separator */
	}
	return i == n;
}

static bool parse_ipv4(const char *s, size_t n, uint8_t *out)
{
	return parse_fields(s, n, '.', 4, false, out);
}

/* Splits at the first sep; each part goes to one parse_ipv4. */
static size_t parse_ipv4_seq(const char *s, size_t n, char sep, size_t max, uint8_t *out)
{
	size_t count = 0, start = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != sep)
			continue;
		if (count == max || !parse_ipv4(s + start, i - start, out + 4 * count))
			return 0;
		count++;
		start = i + 1;
	}
	return count;
}

/* Reads the value of one argument and appends it as a TLV. */
static bool put_value(struct tlv_writer *w, const struct shell_arg *a, const char *s, size_t n)
{
	static const uint8_t width[] = {
		[API_T_U8] = 1, [API_T_U16] = 2, [API_T_U32] = 4, [API_T_U64] = 8,
		[API_T_BOOL] = 1, [API_T_SIZE] = 8,
	};
	enum api_type type = arg_type(a);
	uint8_t value[SHELL_WORD_MAX];
	size_t len = 0;
	uint64_t v;

	switch (type) {
	case API_T_U8:
	case API_T_U16:
	case API_T_U32:
	case API_T_U64:
		if (!parse_uint(s, n, UINT64_MAX >> (64 - 8 * width[type]), &v))
			return false;
		tlv_put_uint(w, a->tag, v, width[type]);
		return true;
	case API_T_BOOL:
	case API_T_SIZE:
		if (!(type == API_T_BOOL ? parse_bool(s, n, &v) : parse_size(s, n, &v)))
			return false;
		tlv_put_uint(w, a->tag, v, width[type]);
		return true;
	case API_T_STR:
	case API_T_NAME:
	case API_T_BYTES:
		memcpy(value, s, n);
		len = n;
		break;
	case API_T_HEX:
		if (n % 2)
			return false;
		for (len = 0; len < n / 2; len++) {
			int hi = fmt_hex_digit(s[2 * len]), lo = fmt_hex_digit(s[2 * len + 1]);

			if (hi < 0 || lo < 0)
				return false;
			value[len] = (uint8_t)(hi << 4 | lo);
		}
		break;
	case API_T_MAC:
		if (!parse_fields(s, n, ':', 6, true, value))
			return false;
		len = 6;
		break;
	case API_T_IPV4:
		if (!parse_ipv4(s, n, value))
			return false;
		len = 4;
		break;
	case API_T_IPV4_RANGE:
		len = 4 * parse_ipv4_seq(s, n, '-', 2, value);
		if (len != 8)
			return false;
		break;
	case API_T_IPV4_LIST:
		len = 4 * parse_ipv4_seq(s, n, ',', API_IPV4_LIST_MAX, value);
		break;
	case API_T_LIST:
		return false;
	}
	if (!api_value_valid(type, value, len))
		return false;
	tlv_put(w, a->tag, value, len);
	return true;
}

/* ---- Commands ---- */

static unsigned command_words(const struct shell_command *c)
{
	return c->words[1] ? 2 : 1;
}

static bool word_is(const struct word *w, const char *s)
{
	return w->eq < 0 && strlen(s) == w->len && memcmp(w->text, s, w->len) == 0;
}

static const struct shell_command *find_command(const struct word *words, unsigned count)
{
	for (size_t i = 0; i < shell_command_count; i++) {
		const struct shell_command *c = &shell_commands[i];
		unsigned n = command_words(c);

		if (count >= n && word_is(&words[0], c->words[0]) &&
		    (n == 1 || word_is(&words[1], c->words[1])))
			return c;
	}
	return NULL;
}

/* "vm create <name> memory=<size> [boot=<text>] [nic=<text>]..." */
static size_t append_arg(char *buf, size_t cap, size_t pos, const struct shell_arg *a,
			 bool bracket)
{
	bool req = a->flags & SHELL_ARG_REQUIRED;
	const char *ph = syntax[arg_type(a)].placeholder;
	const char *open = bracket && !req ? "[" : "";
	const char *close = bracket && !req ? "]" : "";
	const char *more = a->flags & SHELL_ARG_REPEAT ? "..." : "";

	if (pos >= cap)
		return pos;
	if (a->flags & SHELL_ARG_POSITIONAL)
		return pos + (size_t)fmt_snprintf(buf + pos, cap - pos, " %s<%s>%s", open,
						  a->name, close);
	return pos + (size_t)fmt_snprintf(buf + pos, cap - pos, " %s%s=<%s>%s%s", open, a->name,
					  ph, close, more);
}

/*
 * The full usage, or for lists a short one where optional options are
 * summed up as "[options]".
 */
static void usage(const struct shell_command *c, bool full, char *buf, size_t cap)
{
	size_t pos = (size_t)fmt_snprintf(buf, cap, "%s%s%s", c->words[0], c->words[1] ? " " : "",
					  c->words[1] ? c->words[1] : "");
	bool options = false;

	for (const struct shell_arg *a = c->args; a < c->args + SHELL_CMD_ARGS && a->name; a++) {
		if (full || (a->flags & (SHELL_ARG_REQUIRED | SHELL_ARG_POSITIONAL)))
			pos = append_arg(buf, cap, pos, a, true);
		else
			options = true;
	}
	if (options && pos < cap)
		fmt_snprintf(buf + pos, cap - pos, " [options]");
}

static void command_name(const struct shell_command *c, char *buf, size_t cap)
{
	fmt_snprintf(buf, cap, "%s%s%s", c->words[0], c->words[1] ? " " : "",
		     c->words[1] ? c->words[1] : "");
}

static int no_command(struct shell_cmd *cmd, const struct word *words, unsigned count)
{
	char subs[SHELL_ERROR_MAX];
	size_t pos = 0;
	bool group = false;

	subs[0] = '\0';
	for (size_t i = 0; i < shell_command_count; i++) {
		const struct shell_command *c = &shell_commands[i];

		if (c->words[1] && word_is(&words[0], c->words[0])) {
			group = true;
			if (pos < sizeof(subs))
				pos += (size_t)fmt_snprintf(subs + pos, sizeof(subs) - pos, "%s%s",
							    pos ? ", " : "", c->words[1]);
		}
	}
	if (group && (count == 1 || words[1].eq >= 0))
		return fail(cmd, SHELL_E_INCOMPLETE, "'%s' needs one of: %s", words[0].text, subs);
	if (group)
		return fail(cmd, SHELL_E_UNKNOWN_COMMAND, "unknown command '%s %s' (try 'help %s')",
			    words[0].text, words[1].text, words[0].text);
	return fail(cmd, SHELL_E_UNKNOWN_COMMAND, "unknown command '%s' (try 'help')",
		    words[0].text);
}

static const struct shell_arg *find_arg(const struct shell_command *c, const char *key,
					size_t len)
{
	for (const struct shell_arg *a = c->args; a < c->args + SHELL_CMD_ARGS && a->name; a++)
		if (strlen(a->name) == len && memcmp(a->name, key, len) == 0)
			return a;
	return NULL;
}

/* Longest value quoted back in a message, so the rule still fits after it. */
#define QUOTE_MAX 40

static int bind_args(struct shell_cmd *cmd, const struct shell_command *c,
		     const struct word *words, unsigned count)
{
	struct tlv_writer w;
	uint32_t seen = 0;
	bool options = false;
	char name[32];

	command_name(c, name, sizeof(name));
	tlv_writer_init(&w, cmd->payload, sizeof(cmd->payload));
	for (unsigned i = command_words(c); i < count; i++) {
		const struct word *word = &words[i];
		const struct shell_arg *a = NULL;
		const char *value = word->text;
		size_t len = word->len;

		if (word->eq == 0)
			return fail(cmd, SHELL_E_EMPTY_KEY, "%s: '%s' has no option name before '='",
				    name, word->text);
		if (word->eq > 0) {
			a = find_arg(c, word->text, (size_t)word->eq);
			if (!a)
				return fail(cmd, SHELL_E_UNKNOWN_OPTION,
					    "%s: unknown option '%.*s' (try 'help %s')", name,
					    (int)word->eq, word->text, name);
			value += word->eq + 1;
			len -= (size_t)word->eq + 1;
		} else {
			for (const struct shell_arg *p = c->args;
			     p < c->args + SHELL_CMD_ARGS && p->name && !a; p++)
				if ((p->flags & SHELL_ARG_POSITIONAL) &&
				    !(seen & (1u << (p - c->args))))
					a = p;
			if (!a)
				return fail(cmd, SHELL_E_EXTRA_ARG, "%s: unexpected argument '%s'",
					    name, word->text);
		}

		uint32_t bit = 1u << (a - c->args);

		if ((seen & bit) && !(a->flags & SHELL_ARG_REPEAT))
			return fail(cmd, SHELL_E_DUPLICATE, "%s: %s given twice", name, a->name);
		if (len == 0)
			return fail(cmd, SHELL_E_EMPTY_VALUE, "%s: %s needs a value", name, a->name);
		if (!put_value(&w, a, value, len))
			return fail(cmd, SHELL_E_BAD_VALUE, "%s: %s: '%.*s%s' is not %s", name,
				    a->name, len > QUOTE_MAX ? QUOTE_MAX : (int)len, value,
				    len > QUOTE_MAX ? "..." : "", syntax[arg_type(a)].rule);
		seen |= bit;
		if (!(a->flags & SHELL_ARG_POSITIONAL))
			options = true;
	}
	for (const struct shell_arg *a = c->args; a < c->args + SHELL_CMD_ARGS && a->name; a++) {
		if ((a->flags & SHELL_ARG_REQUIRED) && !(seen & (1u << (a - c->args)))) {
			char what[64];

			append_arg(what, sizeof(what), 0, a, false);
			return fail(cmd, SHELL_E_MISSING, "%s: missing%s", name, what);
		}
	}
	cmd->kind = SHELL_REQUEST;
	cmd->command = c;
	cmd->request = c->query && !options ? c->query : c->request;
	cmd->payload_len = w.len;
	return SHELL_OK;
}

static int parse_words(struct shell_cmd *cmd, const struct word *words, unsigned count)
{
	if (count == 0)
		return SHELL_OK;
	if (word_is(&words[0], "help")) {
		cmd->kind = SHELL_HELP;
		for (unsigned i = 1; i < count; i++)
			cmd->topic[cmd->topic_count++] = words[i].text;
		return SHELL_OK;
	}

	const struct shell_command *c = find_command(words, count);

	if (!c)
		return no_command(cmd, words, count);
	return bind_args(cmd, c, words, count);
}

static void reset_cmd(struct shell_cmd *cmd)
{
	cmd->kind = SHELL_EMPTY;
	cmd->command = NULL;
	cmd->request = API_REQ_NONE;
	cmd->payload_len = 0;
	cmd->topic_count = 0;
	cmd->error[0] = '\0';
}

int shell_parse(struct shell_cmd *cmd, const char *line, size_t len)
{
	struct word words[SHELL_WORDS_MAX];
	unsigned count;
	int rc;

	reset_cmd(cmd);
	rc = split_line(cmd, line, len, words, &count);
	if (rc != SHELL_OK)
		return rc;
	return parse_words(cmd, words, count);
}

int shell_parse_argv(struct shell_cmd *cmd, int argc, const char *const *argv)
{
	struct word words[SHELL_WORDS_MAX];
	size_t used = 0;

	reset_cmd(cmd);
	if (argc > SHELL_WORDS_MAX)
		return fail(cmd, SHELL_E_TOO_MANY_WORDS, "too many words (at most %d)",
			    SHELL_WORDS_MAX);
	for (int i = 0; i < argc; i++) {
		const char *s = argv[i];
		struct word *w = &words[i];
		size_t n = 0;

		for (; s[n]; n++) {
			if (!is_printable((uint8_t)s[n]))
				return fail(cmd, SHELL_E_BAD_CHAR,
					    "word %d: character 0x%02x is not printable ASCII",
					    i + 1, (uint8_t)s[n]);
			if (n == SHELL_WORD_MAX)
				return fail(cmd, SHELL_E_WORD_TOO_LONG,
					    "word %d too long (at most %d characters)", i + 1,
					    SHELL_WORD_MAX);
		}
		if (n + 1 > sizeof(cmd->storage) - used)
			return fail(cmd, SHELL_E_LINE_TOO_LONG, "command too long (more than %d characters)",
				    SHELL_LINE_MAX);
		memcpy(cmd->storage + used, s, n + 1);
		w->text = cmd->storage + used;
		w->len = n;
		w->eq = -1;
		for (size_t k = 0; k < n && w->eq < 0; k++)
			if (s[k] == '=')
				w->eq = (long)k;
		used += n + 1;
	}
	return parse_words(cmd, words, argc > 0 ? (unsigned)argc : 0);
}

/* ---- Help ---- */

#define HELP_LINE_MAX 256

static void say(shell_out_fn out, void *ctx, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

static void say(shell_out_fn out, void *ctx, const char *format, ...)
{
	char line[HELP_LINE_MAX];
	va_list ap;
	int n;

	va_start(ap, format);
	n = fmt_vsnprintf(line, sizeof(line), format, ap);
	va_end(ap);
	out(ctx, line, n < (int)sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static bool str_equal(const char *a, const char *b)
{
	size_t n = strlen(a);

	return n == strlen(b) && memcmp(a, b, n) == 0;
}

static bool topic_matches(const struct shell_command *c, const char *const *topic,
			  unsigned count)
{
	if (count > command_words(c))
		return false;
	for (unsigned i = 0; i < count; i++)
		if (!str_equal(topic[i], c->words[i]))
			return false;
	return true;
}

static void help_detail(const struct shell_command *c, shell_out_fn out, void *ctx)
{
	char line[HELP_LINE_MAX];

	usage(c, true, line, sizeof(line));
	say(out, ctx, "usage: %s\n", line);
	say(out, ctx, "%s (request %s%s%s)\n", c->summary, api_request_name(c->request),
	    c->query ? "; without options: " : "", c->query ? api_request_name(c->query) : "");
	for (const struct shell_arg *a = c->args; a < c->args + SHELL_CMD_ARGS && a->name; a++)
		say(out, ctx, "  %-10s %s%s%s%s\n", a->name, syntax[arg_type(a)].rule,
		    a->flags & SHELL_ARG_REQUIRED ? ", required" : "",
		    a->flags & SHELL_ARG_POSITIONAL ? ", may be given as a bare word" : "",
		    a->flags & SHELL_ARG_REPEAT ? ", may be repeated" : "");
}

int shell_help(const char *const *topic, unsigned count, shell_out_fn out, void *ctx)
{
	static const char help_usage[] = "help [command]";
	const struct shell_command *only = NULL;
	unsigned matches = 0;
	char line[HELP_LINE_MAX];

	if (count == 1 && str_equal(topic[0], "help")) {
		say(out, ctx, "usage: %s\nAll commands, a group (help vm), or one in detail\n",
		    help_usage);
		return SHELL_OK;
	}
	for (size_t i = 0; i < shell_command_count; i++) {
		if (topic_matches(&shell_commands[i], topic, count)) {
			matches++;
			only = &shell_commands[i];
		}
	}
	if (matches == 0) {
		size_t pos = 0;

		line[0] = '\0';
		for (unsigned i = 0; i < count && pos < sizeof(line); i++)
			pos += (size_t)fmt_snprintf(line + pos, sizeof(line) - pos, "%s%s",
						    i ? " " : "", topic[i]);
		say(out, ctx, "no command '%s' (try 'help')\n", line);
		return SHELL_E_UNKNOWN_COMMAND;
	}
	if (matches == 1 && count == command_words(only)) {
		help_detail(only, out, ctx);
		return SHELL_OK;
	}
	if (count == 0)
		say(out, ctx, "Commands. <arg> may also be written arg=value; [ ] is optional.\n");
	for (size_t i = 0; i < shell_command_count; i++) {
		const struct shell_command *c = &shell_commands[i];

		if (!topic_matches(c, topic, count))
			continue;
		usage(c, false, line, sizeof(line));
		say(out, ctx, "  %-34s %s\n", line, c->summary);
	}
	if (count == 0)
		say(out, ctx, "  %-34s %s\n", help_usage, "All commands, a group, or one in detail");
	return SHELL_OK;
}
