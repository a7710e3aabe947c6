#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "abi/api.h"
#include "mgmt/vm/shell.h"

/* ---- Helpers ---- */

struct out {
	char text[16384];
	size_t len;
};

static void collect(void *ctx, const char *s, size_t len)
{
	struct out *o = ctx;

	assert_true(o->len + len < sizeof(o->text));
	memcpy(o->text + o->len, s, len);
	o->len += len;
	o->text[o->len] = '\0';
}

/* Feeds keys; returns the result of the last one. */
static enum shell_line_result keys(struct shell_line *l, const char *s, size_t n)
{
	enum shell_line_result r = SHELL_LINE_PENDING;

	for (size_t i = 0; i < n; i++)
		r = shell_line_feed(l, (uint8_t)s[i]);
	return r;
}

#define KEYS(l, s) keys(l, s, sizeof(s) - 1)

static struct shell_cmd *parse_ok(const char *line)
{
	static struct shell_cmd cmd;
	int rc = shell_parse(&cmd, line, strlen(line));

	if (rc != SHELL_OK)
		print_error("'%s': %s\n", line, cmd.error);
	assert_int_equal(rc, SHELL_OK);
	assert_true(api_payload_valid(cmd.payload, cmd.payload_len));
	return &cmd;
}

static void parse_fails(const char *line, int error, const char *message_part)
{
	static struct shell_cmd cmd;
	int rc = shell_parse(&cmd, line, strlen(line));

	if (rc != error || !strstr(cmd.error, message_part))
		print_error("'%s': %d '%s'\n", line, rc, cmd.error);
	assert_int_equal(rc, error);
	assert_non_null(strstr(cmd.error, message_part));
	assert_int_equal(cmd.kind, SHELL_EMPTY);
}

static void expect_str(const struct shell_cmd *cmd, uint8_t tag, const char *want)
{
	char buf[512];

	assert_int_equal(tlv_get_str(cmd->payload, cmd->payload_len, tag, buf, sizeof(buf)), TLV_OK);
	assert_string_equal(buf, want);
}

static void expect_uint(const struct shell_cmd *cmd, uint8_t tag, uint64_t want)
{
	struct tlv t;
	uint64_t v = 0;

	assert_int_equal(tlv_find(cmd->payload, cmd->payload_len, tag, &t), TLV_OK);
	for (unsigned i = 0; i < t.len; i++)
		v |= (uint64_t)t.value[i] << (8 * i);
	assert_int_equal(v, want);
}

static void expect_bytes(const struct shell_cmd *cmd, uint8_t tag, const void *want, size_t n)
{
	const uint8_t *v;
	size_t len;

	assert_int_equal(tlv_get_bytes(cmd->payload, cmd->payload_len, tag, &v, &len), TLV_OK);
	assert_int_equal(len, n);
	assert_memory_equal(v, want, n);
}

static unsigned count_tag(const struct shell_cmd *cmd, uint8_t tag)
{
	struct tlv_reader r;
	struct tlv t;
	unsigned n = 0;

	tlv_reader_init(&r, cmd->payload, cmd->payload_len);
	while (tlv_next(&r, &t))
		n += t.tag == tag;
	return n;
}

/* ---- Line editor ---- */

static void test_line_printable_and_enter(void **state)
{
	struct shell_line l;
	struct out echo = { 0 };

	(void)state;
	shell_line_init(&l, collect, &echo);
	assert_int_equal(KEYS(&l, "vm list"), SHELL_LINE_PENDING);
	assert_int_equal(KEYS(&l, "\r"), SHELL_LINE_READY);
	assert_string_equal(l.buf, "vm list");
	assert_int_equal(l.len, 7);
	assert_string_equal(echo.text, "vm list\r\n");
	/* The LF of CR LF does not end a second, empty line. */
	assert_int_equal(KEYS(&l, "\n"), SHELL_LINE_PENDING);
	assert_int_equal(KEYS(&l, "host info\n"), SHELL_LINE_READY);
	assert_string_equal(l.buf, "host info");
	/* A lone LF ends a line; an empty line is a line. */
	assert_int_equal(KEYS(&l, "\n"), SHELL_LINE_READY);
	assert_string_equal(l.buf, "");
	/* CR CR is two lines. */
	assert_int_equal(KEYS(&l, "\r"), SHELL_LINE_READY);
	assert_int_equal(l.len, 0);
}

static void test_line_erase_keys(void **state)
{
	struct shell_line l;
	struct out echo = { 0 };

	(void)state;
	shell_line_init(&l, collect, &echo);
	/* Backspace and DEL each erase one; on an empty line they do nothing. */
	assert_int_equal(KEYS(&l, "vm paux\b\x7fse web\r"), SHELL_LINE_READY);
	assert_string_equal(l.buf, "vm pase web");
	assert_string_equal(echo.text, "vm paux\b \b\b \bse web\r\n");
	echo.len = 0;
	echo.text[0] = '\0';
	assert_int_equal(KEYS(&l, "\b\x7f" "a\r"), SHELL_LINE_READY);
	assert_string_equal(l.buf, "a");
	assert_string_equal(echo.text, "a\r\n");
	/* Ctrl-U clears the line and erases it on the terminal. */
	echo.len = 0;
	assert_int_equal(KEYS(&l, "abc\x15xy\r"), SHELL_LINE_READY);
	assert_string_equal(l.buf, "xy");
	assert_string_equal(echo.text, "abc\b \b\b \b\b \bxy\r\n");
}

static void test_line_ctrl_c_abandons(void **state)
{
	struct shell_line l;
	struct out echo = { 0 };

	(void)state;
	shell_line_init(&l, collect, &echo);
	assert_int_equal(KEYS(&l, "vm delete web\x03"), SHELL_LINE_CANCELLED);
	assert_int_equal(l.len, 0);
	assert_non_null(strstr(echo.text, "^C\r\n"));
	assert_int_equal(KEYS(&l, "vm list\r"), SHELL_LINE_READY);
	assert_string_equal(l.buf, "vm list");
}

static void test_line_ignores_escapes_and_control_keys(void **state)
{
	struct shell_line l;

	(void)state;
	shell_line_init(&l, NULL, NULL);
	/* Arrow keys, Ctrl-Right, F1, Alt-x, a tab, a NUL, non-ASCII, Ctrl-A. */
	assert_int_equal(KEYS(&l, "vm\x1b[A\x1b[1;5C\x1bOP\x1bx\t\0\xc3\xa9\x01 list\r"),
			 SHELL_LINE_READY);
	assert_string_equal(l.buf, "vm list");
	/* An escape sequence cut by a control key ends there; the key still counts. */
	assert_int_equal(KEYS(&l, "ab\x1b[12\r"), SHELL_LINE_READY);
	assert_string_equal(l.buf, "ab");
	/* An endless sequence is given up after a bound: keys count again. */
	char seq[64] = "\x1b[";
	memset(seq + 2, '1', 40);
	memcpy(seq + 42, "\r", 2);
	assert_int_equal(keys(&l, seq, 43), SHELL_LINE_READY);
	assert_true(l.len > 0 && l.len < 40);
}

static void test_line_too_long(void **state)
{
	struct shell_line l;
	struct out echo = { 0 };
	unsigned bells = 0;

	(void)state;
	shell_line_init(&l, collect, &echo);
	for (unsigned i = 0; i < SHELL_LINE_MAX + 50; i++)
		assert_int_equal(shell_line_feed(&l, 'a'), SHELL_LINE_PENDING);
	assert_int_equal(l.len, SHELL_LINE_MAX);
	for (size_t i = 0; i < echo.len; i++)
		bells += echo.text[i] == '\a';
	assert_int_equal(bells, 1);
	/* Erasing does not save it: the line was not what was typed. */
	assert_int_equal(KEYS(&l, "\b\b\r"), SHELL_LINE_TOO_LONG);
	/* The next line is fine. */
	assert_int_equal(KEYS(&l, "vm list\r"), SHELL_LINE_READY);
	assert_string_equal(l.buf, "vm list");
	/* Ctrl-U starts over. */
	for (unsigned i = 0; i < SHELL_LINE_MAX + 1; i++)
		shell_line_feed(&l, 'a');
	assert_int_equal(KEYS(&l, "\x15host info\r"), SHELL_LINE_READY);
	assert_string_equal(l.buf, "host info");
	/* Exactly SHELL_LINE_MAX is fine. */
	for (unsigned i = 0; i < SHELL_LINE_MAX; i++)
		shell_line_feed(&l, 'b');
	assert_int_equal(KEYS(&l, "\r"), SHELL_LINE_READY);
	assert_int_equal(strlen(l.buf), SHELL_LINE_MAX);
}

/* ---- Parser: commands ---- */

static void test_parse_examples(void **state)
{
	struct shell_cmd *cmd;

	(void)state;
	cmd = parse_ok("vm pause web");
	assert_int_equal(cmd->kind, SHELL_REQUEST);
	assert_int_equal(cmd->request, API_REQ_PAUSE);
	expect_str(cmd, API_TAG_VM, "web");
	assert_int_equal(cmd->payload_len, 3 + 3);

	cmd = parse_ok("vm create name=web memory=64M image=/guests/a.bin");
	assert_int_equal(cmd->request, API_REQ_CREATE_VIRTUAL_MACHINE);
	expect_str(cmd, API_TAG_VM, "web");
	expect_uint(cmd, API_TAG_MEMORY, 64ull << 20);
	expect_str(cmd, API_TAG_IMAGE, "/guests/a.bin");

	cmd = parse_ok("net dhcp lan range=10.0.0.10-10.0.0.99");
	assert_int_equal(cmd->request, API_REQ_SET_DHCP_SETTINGS);
	expect_str(cmd, API_TAG_NET, "lan");
	expect_bytes(cmd, API_TAG_DHCP_RANGE, "\x0a\x00\x00\x0a\x0a\x00\x00\x63", 8);

	/* Without options the same words read the settings. */
	cmd = parse_ok("net dhcp lan");
	assert_int_equal(cmd->request, API_REQ_GET_DHCP_SETTINGS);
	cmd = parse_ok("net dhcp name=lan");
	assert_int_equal(cmd->request, API_REQ_GET_DHCP_SETTINGS);

	cmd = parse_ok("help");
	assert_int_equal(cmd->kind, SHELL_HELP);
	assert_int_equal(cmd->topic_count, 0);
	cmd = parse_ok("help vm");
	assert_int_equal(cmd->kind, SHELL_HELP);
	assert_int_equal(cmd->topic_count, 1);
	assert_string_equal(cmd->topic[0], "vm");
	cmd = parse_ok("  help   vm\tpause ");
	assert_int_equal(cmd->topic_count, 2);
	assert_string_equal(cmd->topic[1], "pause");
}

static void test_parse_empty_lines(void **state)
{
	static struct shell_cmd cmd;

	(void)state;
	assert_int_equal(shell_parse(&cmd, "", 0), SHELL_OK);
	assert_int_equal(cmd.kind, SHELL_EMPTY);
	assert_int_equal(shell_parse(&cmd, " \t  ", 4), SHELL_OK);
	assert_int_equal(cmd.kind, SHELL_EMPTY);
}

static void test_parse_every_value_type(void **state)
{
	struct shell_cmd *cmd;

	(void)state;
	cmd = parse_ok("vm create web memory=0x4000000 image=\"/guests/my file.bin\" boot=linux "
		       "load=0x100000 entry=1048576 cmdline=\"console=ttyS0 quiet\" "
		       "initrd=/i.img disk=/d.img nic=lan nic=lan,mac=02:00:00:00:00:09 "
		       "autostart=yes");
	expect_uint(cmd, API_TAG_MEMORY, 64ull << 20);
	expect_str(cmd, API_TAG_IMAGE, "/guests/my file.bin");
	expect_str(cmd, API_TAG_BOOT, "linux");
	expect_uint(cmd, API_TAG_LOAD, 0x100000);
	expect_uint(cmd, API_TAG_ENTRY, 0x100000);
	expect_str(cmd, API_TAG_CMDLINE, "console=ttyS0 quiet");
	expect_uint(cmd, API_TAG_AUTOSTART, 1);
	assert_int_equal(count_tag(cmd, API_TAG_NIC_SPEC), 2);

	/* Sizes: the boot configuration's suffixes, any case. */
	expect_uint(parse_ok("vm create w memory=512K image=/a"), API_TAG_MEMORY, 512 << 10);
	expect_uint(parse_ok("vm create w memory=2GiB image=/a"), API_TAG_MEMORY, 2ull << 30);
	expect_uint(parse_ok("vm create w memory=3mib image=/a"), API_TAG_MEMORY, 3 << 20);
	expect_uint(parse_ok("vm create w memory=4096 image=/a"), API_TAG_MEMORY, 4096);

	cmd = parse_ok("net dhcp lan enabled=on netmask=255.255.255.0 gateway=10.0.0.1 "
		       "dns=10.0.0.1,8.8.8.8 lease=3600");
	assert_int_equal(cmd->request, API_REQ_SET_DHCP_SETTINGS);
	expect_uint(cmd, API_TAG_DHCP_ENABLED, 1);
	expect_bytes(cmd, API_TAG_NETMASK, "\xff\xff\xff\x00", 4);
	expect_bytes(cmd, API_TAG_GATEWAY, "\x0a\x00\x00\x01", 4);
	expect_bytes(cmd, API_TAG_DNS, "\x0a\x00\x00\x01\x08\x08\x08\x08", 8);
	expect_uint(cmd, API_TAG_LEASE_TIME_S, 3600);

	cmd = parse_ok("nic add web mac=02:AB:cd:00:00:01");
	expect_bytes(cmd, API_TAG_MAC, "\x02\xab\xcd\x00\x00\x01", 6);
	cmd = parse_ok("nic attach web 0 lan");
	assert_int_equal(cmd->request, API_REQ_ATTACH_TO_VIRTUAL_NETWORK);
	expect_uint(cmd, API_TAG_NIC, 0);
	expect_str(cmd, API_TAG_NET, "lan");
	cmd = parse_ok("auth answer 00ff10Ab");
	expect_bytes(cmd, API_TAG_AUTH_MAC, "\x00\xff\x10\xab", 4);
	cmd = parse_ok("console write web \"ls -l\"");
	expect_bytes(cmd, API_TAG_DATA, "ls -l", 5);
	cmd = parse_ok("console read web offset=100 max=64");
	expect_uint(cmd, API_TAG_OFFSET, 100);
	expect_uint(cmd, API_TAG_MAX_BYTES, 64);
	cmd = parse_ok("events off console=web");
	expect_uint(cmd, API_TAG_STATE_EVENTS, 0);
	expect_str(cmd, API_TAG_CONSOLE_VM, "web");
	cmd = parse_ok("guest set web \"time zone\" UTC");
	expect_str(cmd, API_TAG_PARAMETER, "time zone");
	expect_str(cmd, API_TAG_VALUE, "UTC");
	cmd = parse_ok("net create lan mtu=9000");
	expect_uint(cmd, API_TAG_MTU, 9000);
}

static void test_parse_quotes_and_positional_binding(void **state)
{
	struct shell_cmd *cmd;

	(void)state;
	/* Quotes can cover part of a word and hide '=' and spaces. */
	cmd = parse_ok("guest exec web a\" b=c \"d");
	expect_str(cmd, API_TAG_COMMAND, "a b=c d");
	cmd = parse_ok("vm turnoff web reason=\"\"maintenance");
	expect_str(cmd, API_TAG_REASON, "maintenance");
	/* A positional argument may come after options, or be given by key. */
	cmd = parse_ok("vm create memory=64M image=/a web");
	expect_str(cmd, API_TAG_VM, "web");
	cmd = parse_ok("vm pause name=web");
	expect_str(cmd, API_TAG_VM, "web");
	/* Positional arguments fill those not given by key, in order. */
	cmd = parse_ok("nic attach vm=web 1 lan");
	expect_uint(cmd, API_TAG_NIC, 1);
	expect_str(cmd, API_TAG_NET, "lan");
	/* Optional positional: guest timesync with and without a value. */
	cmd = parse_ok("guest timesync web");
	assert_int_equal(count_tag(cmd, API_TAG_TIME_SYNC), 0);
	cmd = parse_ok("guest timesync web on");
	expect_uint(cmd, API_TAG_TIME_SYNC, 1);
}

/* ---- Parser: every error ---- */

static void test_parse_errors(void **state)
{
	char line[SHELL_LINE_MAX + 64];

	(void)state;
	memset(line, 'a', sizeof(line));
	line[SHELL_LINE_MAX + 1] = '\0';
	parse_fails(line, SHELL_E_LINE_TOO_LONG, "line too long");

	parse_fails("vm pause w\x1b[2Jeb", SHELL_E_BAD_CHAR, "0x1b at column 11");
	parse_fails("vm pause \xc3\xa9", SHELL_E_BAD_CHAR, "not printable ASCII");
	parse_fails("vm create web image=\"/a b", SHELL_E_UNTERMINATED_QUOTE, "word 4: missing");
	parse_fails("vm list a a a a a a a a a a a a a a a a a a a a a a a a", SHELL_E_TOO_MANY_WORDS,
		    "too many words");
	memcpy(line, "vm create web image=", 20);
	memset(line + 20, 'x', SHELL_WORD_MAX);
	line[20 + SHELL_WORD_MAX] = '\0';
	parse_fails(line, SHELL_E_WORD_TOO_LONG, "word 4 too long");
	/* A word that fits, but a value longer than any string on the wire. */
	memcpy(line, "vm turnoff web reason=", 22);
	memset(line + 22, 'x', API_STR_MAX + 1);
	line[22 + API_STR_MAX + 1] = '\0';
	parse_fails(line, SHELL_E_BAD_VALUE, "is not printable text of at most 255 characters");
	line[22 + API_STR_MAX] = '\0';
	parse_ok(line);

	parse_fails("frob", SHELL_E_UNKNOWN_COMMAND, "unknown command 'frob' (try 'help')");
	parse_fails("vm frob web", SHELL_E_UNKNOWN_COMMAND, "unknown command 'vm frob' (try 'help vm')");
	parse_fails("name=web", SHELL_E_UNKNOWN_COMMAND, "unknown command 'name=web'");
	parse_fails("vm", SHELL_E_INCOMPLETE, "'vm' needs one of: list, find, create");
	parse_fails("net name=lan", SHELL_E_INCOMPLETE, "'net' needs one of:");

	parse_fails("vm create web memroy=64M image=/a", SHELL_E_UNKNOWN_OPTION,
		    "vm create: unknown option 'memroy' (try 'help vm create')");
	parse_fails("vm create web memory=64M memory=1G image=/a", SHELL_E_DUPLICATE,
		    "vm create: memory given twice");
	parse_fails("vm pause web name=db", SHELL_E_DUPLICATE, "name given twice");
	parse_fails("vm create web image=/a", SHELL_E_MISSING, "vm create: missing memory=<size>");
	parse_fails("vm pause", SHELL_E_MISSING, "vm pause: missing <name>");
	parse_fails("vm pause web db", SHELL_E_EXTRA_ARG, "vm pause: unexpected argument 'db'");
	parse_fails("host info now", SHELL_E_EXTRA_ARG, "unexpected argument 'now'");
	parse_fails("vm pause =web", SHELL_E_EMPTY_KEY, "'=web' has no option name");
	parse_fails("vm create web memory= image=/a", SHELL_E_EMPTY_VALUE, "memory needs a value");
	parse_fails("vm pause \"\"", SHELL_E_EMPTY_VALUE, "name needs a value");
}

static void test_parse_bad_values(void **state)
{
	static const struct {
		const char *line;
		const char *message;
	} cases[] = {
		{ "vm create web memory=64Q image=/a", "memory: '64Q' is not a size" },
		{ "vm create web memory=M image=/a", "is not a size" },
		{ "vm create web memory=99999999999999999999 image=/a", "is not a size" },
		{ "vm create web memory=17179869184G image=/a", "is not a size" },
		{ "vm create web memory=0x image=/a", "is not a size" },
		{ "vm create web memory=1 image=/a load=0x1g", "load: '0x1g' is not a number" },
		{ "vm create web memory=1 image=/a load=18446744073709551616", "is not a number" },
		{ "vm create web memory=1 image=/a autostart=maybe", "is not yes/no" },
		{ "vm pause web!", "name: 'web!' is not a name" },
		{ "vm pause abcdefghijabcdefghijabcdefghijab", "is not a name" },
		{ "nic remove web 256", "nic: '256' is not a number 0..255" },
		{ "nic remove web -1", "is not a number" },
		{ "net create lan mtu=4294967296", "is not a number" },
		{ "nic add web mac=02:00:00:00:00", "is not a MAC address" },
		{ "nic add web mac=02:00:00:00:00:01:02", "is not a MAC address" },
		{ "nic add web mac=02:00:00:00:00:0g", "is not a MAC address" },
		{ "nic add web mac=002:00:00:00:00:01", "is not a MAC address" },
		{ "nic add web mac=02::00:00:00:01", "is not a MAC address" },
		{ "net dhcp lan gateway=10.0.0", "is not an IPv4 address" },
		{ "net dhcp lan gateway=10.0.0.256", "is not an IPv4 address" },
		{ "net dhcp lan gateway=10.0.0.1.", "is not an IPv4 address" },
		{ "net dhcp lan gateway=10.0.0.0001", "is not an IPv4 address" },
		{ "net dhcp lan gateway=10.0.0.x", "is not an IPv4 address" },
		{ "net dhcp lan range=10.0.0.99-10.0.0.10", "is not an IPv4 range" },
		{ "net dhcp lan range=10.0.0.1", "is not an IPv4 range" },
		{ "net dhcp lan range=10.0.0.1-10.0.0.2-10.0.0.3", "is not an IPv4 range" },
		{ "net dhcp lan dns=1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4,5.5.5.5", "1 to 4 IPv4" },
		{ "net dhcp lan dns=1.1.1.1,", "1 to 4 IPv4" },
		{ "auth answer abc", "even number of hex digits" },
		{ "auth answer zz", "even number of hex digits" },
		{ "events maybe", "enable: 'maybe' is not yes/no" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		parse_fails(cases[i].line, SHELL_E_BAD_VALUE, cases[i].message);
	/* The long-but-valid edges. */
	parse_ok("vm pause abcdefghijabcdefghijabcdefghija");
	parse_ok("nic remove web 255");
	parse_ok("net dhcp lan dns=1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4");
	parse_ok("net dhcp lan range=10.0.0.5-10.0.0.5");
	parse_ok("vm create web memory=16G image=/a load=18446744073709551615");
}

static void test_parse_argv_matches_parse(void **state)
{
	static struct shell_cmd a, b;
	static const char *const argv[] = { "vm", "create", "web", "memory=64M",
					    "image=/guests/my file.bin" };
	char long_word[SHELL_WORD_MAX + 2];
	const char *too_many[SHELL_WORDS_MAX + 1];

	(void)state;
	assert_int_equal(shell_parse_argv(&a, 5, argv), SHELL_OK);
	const char *line = "vm create web memory=64M image=\"/guests/my file.bin\"";
	assert_int_equal(shell_parse(&b, line, strlen(line)), SHELL_OK);
	assert_int_equal(a.request, b.request);
	assert_int_equal(a.payload_len, b.payload_len);
	assert_memory_equal(a.payload, b.payload, a.payload_len);
	/* The same errors. */
	static const char *const bad[] = { "vm", "pause", "web\n" };
	assert_int_equal(shell_parse_argv(&a, 3, bad), SHELL_E_BAD_CHAR);
	memset(long_word, 'x', sizeof(long_word) - 1);
	long_word[sizeof(long_word) - 1] = '\0';
	const char *long_argv[] = { "vm", "pause", long_word };
	assert_int_equal(shell_parse_argv(&a, 3, long_argv), SHELL_E_WORD_TOO_LONG);
	for (unsigned i = 0; i < SHELL_WORDS_MAX + 1; i++)
		too_many[i] = "x";
	assert_int_equal(shell_parse_argv(&a, SHELL_WORDS_MAX + 1, too_many),
			 SHELL_E_TOO_MANY_WORDS);
	/* Words that are each fine but together exceed what a line may hold. */
	long_word[SHELL_WORD_MAX] = '\0';
	const char *big[] = { "guest", "set", long_word, long_word, long_word };
	assert_int_equal(shell_parse_argv(&a, 5, big), SHELL_E_LINE_TOO_LONG);
	assert_int_equal(shell_parse_argv(&a, 0, NULL), SHELL_OK);
	assert_int_equal(a.kind, SHELL_EMPTY);
	static const char *const help[] = { "help", "net" };
	assert_int_equal(shell_parse_argv(&a, 2, help), SHELL_OK);
	assert_int_equal(a.kind, SHELL_HELP);
	assert_string_equal(a.topic[0], "net");
}

/* ---- The table ---- */

#define LIST_REQUEST(sym, code, name) code,
static const uint16_t all_requests[] = { API_REQUESTS(LIST_REQUEST) };

static void test_table_covers_the_api(void **state)
{
	(void)state;
	for (size_t r = 0; r < sizeof(all_requests) / 2; r++) {
		bool found = false;

		/*
		 * Session requests are framed-mode only, and so are a saved VM's
		 * binary chunks (vmmctl export and import move them).
		 */
		if (all_requests[r] == API_REQ_HELLO || all_requests[r] == API_REQ_GOODBYE ||
		    all_requests[r] == API_REQ_EXPORT_SAVED_STATE ||
		    all_requests[r] == API_REQ_IMPORT_VIRTUAL_MACHINE)
			continue;
		for (size_t i = 0; i < shell_command_count; i++)
			found |= shell_commands[i].request == all_requests[r] ||
				 shell_commands[i].query == all_requests[r];
		if (!found)
			print_error("no shell command for %s\n", api_request_name(all_requests[r]));
		assert_true(found);
	}
}

static void test_table_is_consistent(void **state)
{
	(void)state;
	for (size_t i = 0; i < shell_command_count; i++) {
		const struct shell_command *c = &shell_commands[i];
		bool optional_positional = false;

		assert_non_null(api_request_name(c->request));
		if (c->query)
			assert_non_null(api_request_name(c->query));
		assert_non_null(c->summary);
		/* Unique words. */
		for (size_t j = 0; j < i; j++) {
			const struct shell_command *o = &shell_commands[j];
			bool same = strcmp(o->words[0], c->words[0]) == 0 &&
				    ((!o->words[1] && !c->words[1]) ||
				     (o->words[1] && c->words[1] &&
				      strcmp(o->words[1], c->words[1]) == 0));
			assert_false(same);
			/* A one-word command cannot also be a group. */
			if (strcmp(o->words[0], c->words[0]) == 0)
				assert_true(!o->words[1] == !c->words[1]);
		}
		for (unsigned a = 0; a < SHELL_CMD_ARGS && c->args[a].name; a++) {
			const struct shell_arg *arg = &c->args[a];
			enum api_type type;

			/* Every argument's tag has a type the shell can read. */
			assert_true(api_tag_type(arg->tag, &type));
			assert_int_not_equal(type, API_T_LIST);
			for (unsigned b = 0; b < a; b++)
				assert_string_not_equal(c->args[b].name, arg->name);
			/* A required positional never follows an optional one. */
			if (arg->flags & SHELL_ARG_POSITIONAL) {
				if (arg->flags & SHELL_ARG_REQUIRED)
					assert_false(optional_positional);
				else
					optional_positional = true;
			}
		}
	}
}

/* ---- Help ---- */

static void test_help_all_group_and_command(void **state)
{
	static struct out o;
	const char *topic[2];

	(void)state;
	o.len = 0;
	assert_int_equal(shell_help(NULL, 0, collect, &o), SHELL_OK);
	for (size_t i = 0; i < shell_command_count; i++)
		assert_non_null(strstr(o.text, shell_commands[i].summary));
	assert_non_null(strstr(o.text, "help [command]"));
	/* Lists sum optional options up; the detail shows them. */
	assert_non_null(strstr(o.text, "  vm create <name> memory=<size> image=<text> [options] "));
	assert_non_null(strstr(o.text, "  guest timesync <vm> [<enabled>] "));

	o.len = 0;
	topic[0] = "net";
	assert_int_equal(shell_help(topic, 1, collect, &o), SHELL_OK);
	assert_non_null(strstr(o.text, "  net dhcp <name> [options] "));
	assert_null(strstr(o.text, "vm pause"));

	o.len = 0;
	topic[0] = "vm";
	topic[1] = "create";
	assert_int_equal(shell_help(topic, 2, collect, &o), SHELL_OK);
	assert_non_null(strstr(o.text, "usage: vm create <name> memory=<size> image=<text> "
					"[boot=<text>]"));
	assert_non_null(strstr(o.text, "[nic=<text>]... [autostart=<on|off>] [guest_agent=<on|off>] "));
	assert_non_null(strstr(o.text, "CreateVirtualMachine"));
	assert_non_null(strstr(o.text, "memory     a size such as 64M, 512K or 1G, required"));
	assert_non_null(strstr(o.text, "nic        printable text of at most 255 characters, may be repeated"));

	o.len = 0;
	topic[0] = "net";
	topic[1] = "dhcp";
	assert_int_equal(shell_help(topic, 2, collect, &o), SHELL_OK);
	assert_non_null(strstr(o.text, "SetDhcpSettings; without options: GetDhcpSettings"));

	/* A one-word command gets the detailed form. */
	o.len = 0;
	topic[0] = "events";
	assert_int_equal(shell_help(topic, 1, collect, &o), SHELL_OK);
	assert_non_null(strstr(o.text, "usage: events <enable> [console=<name>]"));

	o.len = 0;
	topic[0] = "help";
	assert_int_equal(shell_help(topic, 1, collect, &o), SHELL_OK);
	assert_non_null(strstr(o.text, "usage: help [command]"));
}

static void test_help_unknown_topic(void **state)
{
	static struct out o;
	const char *topic[3] = { "vm", "frob", "x" };

	(void)state;
	o.len = 0;
	assert_int_equal(shell_help(topic, 2, collect, &o), SHELL_E_UNKNOWN_COMMAND);
	assert_non_null(strstr(o.text, "no command 'vm frob' (try 'help')"));
	o.len = 0;
	topic[1] = "pause";
	assert_int_equal(shell_help(topic, 3, collect, &o), SHELL_E_UNKNOWN_COMMAND);
}

/* The parse result of a line typed through the editor. */
static void test_editor_to_request(void **state)
{
	struct shell_line l;
	static struct shell_cmd cmd;

	(void)state;
	shell_line_init(&l, NULL, NULL);
	assert_int_equal(KEYS(&l, "vm paise\b\b\buse web\r"), SHELL_LINE_READY);
	assert_int_equal(shell_parse(&cmd, l.buf, l.len), SHELL_OK);
	assert_int_equal(cmd.request, API_REQ_PAUSE);
	expect_str(&cmd, API_TAG_VM, "web");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_printable_and_enter),
		cmocka_unit_test(test_line_erase_keys),
		cmocka_unit_test(test_line_ctrl_c_abandons),
		cmocka_unit_test(test_line_ignores_escapes_and_control_keys),
		cmocka_unit_test(test_line_too_long),
		cmocka_unit_test(test_parse_examples),
		cmocka_unit_test(test_parse_empty_lines),
		cmocka_unit_test(test_parse_every_value_type),
		cmocka_unit_test(test_parse_quotes_and_positional_binding),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_bad_values),
		cmocka_unit_test(test_parse_argv_matches_parse),
		cmocka_unit_test(test_table_covers_the_api),
		cmocka_unit_test(test_table_is_consistent),
		cmocka_unit_test(test_help_all_group_and_command),
		cmocka_unit_test(test_help_unknown_topic),
		cmocka_unit_test(test_editor_to_request),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
