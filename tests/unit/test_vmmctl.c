/*
 * vmmctl without a hypervisor: argument parsing and request encoding for
 * every subcommand, rendering of answers (tables, JSON with hostile
 * strings), events, and the session against a fake management VM on a
 * socketpair. The fake answers from the protocol (proto_decode, the replay
 * cache, TLVs) and can lose requests and answers, add noise, repeat
 * answers, stay silent or hang up mid-frame.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mgmt/vmmctl/vmmctl.h"

/* ---- A tiny JSON validator (RFC 8259 grammar), for hostile output ---- */

static const char *js_ws(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	return s;
}

static const char *js_value(const char *s, int depth);

static const char *js_string(const char *s)
{
	if (*s++ != '"')
		return NULL;
	while (*s != '"') {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c >= 0x80) /* we only emit ASCII */
			return NULL;
		if (c == '\\') {
			s++;
			if (*s == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", s[i]) || !s[i])
						return NULL;
				s += 5;
				continue;
			}
			if (!*s || !strchr("\"\\/bfnrt", *s))
				return NULL;
		}
		s++;
	}
	return s + 1;
}

static const char *js_value(const char *s, int depth)
{
	s = js_ws(s);
	if (depth > 32)
		return NULL;
	if (*s == '{' || *s == '[') {
		char close = *s == '{' ? '}' : ']';
		bool obj = *s == '{';

		s = js_ws(s + 1);
		if (*s == close)
			return s + 1;
		for (;;) {
			if (obj) {
				s = js_string(js_ws(s));
				if (!s)
					return NULL;
				s = js_ws(s);
				if (*s++ != ':')
					return NULL;
			}
			s = js_value(s, depth + 1);
			if (!s)
				return NULL;
			s = js_ws(s);
			if (*s == ',') {
				s++;
				continue;
			}
			if (*s == close)
				return s + 1;
			return NULL;
		}
	}
	if (*s == '"')
		return js_string(s);
	if (strncmp(s, "true", 4) == 0 || strncmp(s, "null", 4) == 0)
		return s + 4;
	if (strncmp(s, "false", 5) == 0)
		return s + 5;
	if (*s == '-' || (*s >= '0' && *s <= '9')) {
		s++;
		while (*s >= '0' && *s <= '9')
			s++;
		return s;
	}
	return NULL;
}

/* Every line of text is one valid JSON document (lines: true) or the whole text is. */
static bool json_valid(const char *text, bool lines)
{
	if (!lines) {
		const char *e = js_value(text, 0);

		return e && *js_ws(e) == '\0';
	}
	while (*text) {
		const char *e = js_value(text, 0);

		if (!e || *e != '\n')
			return false;
		text = e + 1;
	}
	return true;
}

/* ---- Capture of FILE output ---- */

struct cap {
	char *buf;
	size_t len;
	FILE *f;
};

static void cap_open(struct cap *c)
{
	c->buf = NULL;
	c->len = 0;
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
}

static char *cap_text(struct cap *c)
{
	fflush(c->f);
	return c->buf;
}

static void cap_close(struct cap *c)
{
	fclose(c->f);
	free(c->buf);
}

/* ---- SHA-256, HMAC ---- */

static void hex_of(const uint8_t *v, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", v[i]);
}

static void test_sha256_hmac_vectors(void **state)
{
	uint8_t out[32], key[20];
	char hex[65];
	struct sha256 s;

	(void)state;
	sha256_init(&s);
	sha256_update(&s, "abc", 3);
	sha256_final(&s, out);
	hex_of(out, 32, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* RFC 4231 test cases 1 and 2 */
	memset(key, 0x0b, sizeof(key));
	hmac_sha256(key, sizeof(key), (const uint8_t *)"Hi There", 8, out);
	hex_of(out, 32, hex);
	assert_string_equal(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	hmac_sha256((const uint8_t *)"Jefe", 4, (const uint8_t *)"what do ya want for nothing?",
		    28, out);
	hex_of(out, 32, hex);
	assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

/* ---- Argument parsing and request encoding ---- */

static const char *no_env(const char *name)
{
	(void)name;
	return NULL;
}

static const char *test_env(const char *name)
{
	if (strcmp(name, "VMMCTL_CONNECT") == 0)
		return "tcp:localhost:4555";
	return NULL;
}

static struct vmmctl_parsed parsed;

static int parse_line(const char *const *words, const char *(*env)(const char *))
{
	char *argv[40];
	int argc = 0;

	argv[argc++] = (char *)"vmmctl";
	for (; *words; words++)
		argv[argc++] = (char *)*words;
	return vmmctl_parse(&parsed, argc, argv, env);
}

#define PARSE(...) parse_line((const char *const[]){ __VA_ARGS__, NULL }, no_env)

static void test_parse_create_payload(void **state)
{
	const uint8_t *p;
	size_t n;
	uint64_t mem;
	uint8_t b;
	char s[64];
	struct tlv_reader r;
	struct tlv t;
	int nics = 0;

	(void)state;
	assert_int_equal(PARSE("-c", "/dev/ttyS0", "create", "web", "--memory", "64M", "--image=/g/a.bin",
			       "--nic", "lan", "--nic", "dmz,mac=02:00:00:00:00:07", "--autostart",
			       "--cmdline", "console=ttyS0 quiet", "--json"),
			 VMMCTL_EXIT_OK);
	assert_string_equal(parsed.opts.connect, "/dev/ttyS0");
	assert_true(parsed.opts.json);
	assert_int_equal(parsed.cmd.request, API_REQ_CREATE_VIRTUAL_MACHINE);
	p = parsed.cmd.payload;
	n = parsed.cmd.payload_len;
	assert_true(api_payload_valid(p, n));
	assert_int_equal(tlv_get_str(p, n, API_TAG_VM, s, sizeof(s)), TLV_OK);
	assert_string_equal(s, "web");
	assert_int_equal(tlv_get_u64(p, n, API_TAG_MEMORY, &mem), TLV_OK);
	assert_int_equal(mem, 64u << 20);
	assert_int_equal(tlv_get_str(p, n, API_TAG_IMAGE, s, sizeof(s)), TLV_OK);
	assert_string_equal(s, "/g/a.bin");
	assert_int_equal(tlv_get_u8(p, n, API_TAG_AUTOSTART, &b), TLV_OK);
	assert_int_equal(b, 1);
	assert_int_equal(tlv_get_str(p, n, API_TAG_CMDLINE, s, sizeof(s)), TLV_OK);
	assert_string_equal(s, "console=ttyS0 quiet");
	tlv_reader_init(&r, p, n);
	while (tlv_next(&r, &t))
		nics += t.tag == API_TAG_NIC_SPEC;
	assert_int_equal(nics, 2);

	/* --no-autostart, and a boolean with an explicit word */
	assert_int_equal(PARSE("create", "web", "--memory", "1M", "--image", "x", "--no-autostart"),
			 VMMCTL_EXIT_OK);
	assert_int_equal(tlv_get_u8(parsed.cmd.payload, parsed.cmd.payload_len, API_TAG_AUTOSTART, &b),
			 TLV_OK);
	assert_int_equal(b, 0);
	assert_int_equal(PARSE("guest-timesync", "web", "off"), VMMCTL_EXIT_OK);
	assert_int_equal(tlv_get_u8(parsed.cmd.payload, parsed.cmd.payload_len, API_TAG_TIME_SYNC, &b),
			 TLV_OK);
	assert_int_equal(b, 0);
}

/* Every API request has a subcommand, and each builds a valid request. */
static void test_parse_every_subcommand(void **state)
{
	static const struct {
		const char *words[8];
		uint16_t request;
	} cases[] = {
		{ { "info" }, API_REQ_GET_HOST_INFO },
		{ { "list" }, API_REQ_LIST_VIRTUAL_MACHINES },
		{ { "find", "web" }, API_REQ_FIND_VIRTUAL_MACHINE },
		{ { "create", "web", "--memory", "64M", "--image", "/a" }, API_REQ_CREATE_VIRTUAL_MACHINE },
		{ { "delete", "web" }, API_REQ_DELETE_VIRTUAL_MACHINE },
		{ { "net-create", "lan", "--mtu", "9000" }, API_REQ_CREATE_VIRTUAL_NETWORK },
		{ { "net-delete", "lan" }, API_REQ_DELETE_VIRTUAL_NETWORK },
		{ { "net-list" }, API_REQ_LIST_VIRTUAL_NETWORKS },
		{ { "state", "web" }, API_REQ_GET_STATE },
		{ { "show", "web" }, API_REQ_GET_STATE },
		{ { "start", "web" }, API_REQ_STARTUP },
		{ { "turnoff", "web", "--reason", "maintenance" }, API_REQ_TURN_OFF },
		{ { "reset", "web" }, API_REQ_RESET },
		{ { "save", "web" }, API_REQ_SAVE },
		{ { "discard", "web" }, API_REQ_DISCARD_SAVED_STATE },
		{ { "pause", "web" }, API_REQ_PAUSE },
		{ { "resume", "web" }, API_REQ_RESUME },
		{ { "nic-add", "web", "--mac", "02:00:00:00:00:01" }, API_REQ_ADD_NETWORK_ADAPTER },
		{ { "nic-remove", "web", "1" }, API_REQ_REMOVE_NETWORK_ADAPTER },
		{ { "nic-list", "web" }, API_REQ_LIST_NETWORK_ADAPTERS },
		{ { "nic-mac", "web", "0" }, API_REQ_GET_MAC_ADDRESS },
		{ { "nic-attach", "web", "0", "lan" }, API_REQ_ATTACH_TO_VIRTUAL_NETWORK },
		{ { "nic-detach", "web", "0" }, API_REQ_DETACH_FROM_VIRTUAL_NETWORK },
		{ { "net-stats", "lan" }, API_REQ_GET_STATISTICS },
		{ { "net-adapters", "lan" }, API_REQ_GET_ADAPTERS },
		{ { "dhcp-get", "lan" }, API_REQ_GET_DHCP_SETTINGS },
		{ { "dhcp-set", "lan", "--range", "10.0.0.10-10.0.0.99", "--dns", "10.0.0.1,10.0.0.2" },
		  API_REQ_SET_DHCP_SETTINGS },
		{ { "leases", "lan" }, API_REQ_GET_LEASES },
		{ { "guest-heartbeat", "web" }, API_REQ_GET_HEARTBEAT },
		{ { "guest-shutdown", "web" }, API_REQ_SHUTDOWN },
		{ { "guest-os", "web" }, API_REQ_GET_OS_NAME },
		{ { "guest-additions", "web" }, API_REQ_GET_ADDITIONS_VERSION },
		{ { "guest-install", "web" }, API_REQ_INSTALL_ADDITIONS },
		{ { "guest-timesync", "web" }, API_REQ_SYNC_TIME },
		{ { "guest-exec", "web", "a=b c" }, API_REQ_EXECUTE_COMMAND },
		{ { "guest-set", "web", "k", "v" }, API_REQ_SET_PARAMETER },
		{ { "disk-create", "data1", "--size", "64M" }, API_REQ_CREATE_VIRTUAL_HARD_DISK },
		{ { "disk-list" }, API_REQ_LIST_VIRTUAL_HARD_DISKS },
		{ { "disk-delete", "data1" }, API_REQ_DELETE_VIRTUAL_HARD_DISK },
	};
	bool covered[256] = { false };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = parse_line(cases[i].words, no_env);

		if (rc != VMMCTL_EXIT_OK)
			print_error("%s: %s\n", cases[i].words[0], parsed.error);
		assert_int_equal(rc, VMMCTL_EXIT_OK);
		assert_int_equal(parsed.cmd.request, cases[i].request);
		assert_true(api_payload_valid(parsed.cmd.payload, parsed.cmd.payload_len));
		covered[cases[i].request & 0xff] = true;
	}
	/* A positional word with '=' stays a value. */
	char cmdtext[32];

	assert_int_equal(PARSE("guest-exec", "web", "a=b c"), VMMCTL_EXIT_OK);
	assert_int_equal(tlv_get_str(parsed.cmd.payload, parsed.cmd.payload_len, API_TAG_COMMAND,
				     cmdtext, sizeof(cmdtext)),
			 TLV_OK);
	assert_string_equal(cmdtext, "a=b c");
	/* The session requests are the tool's own; ConsoleRead/Write and
	 * SubscribeEvents are sent by console and events (tested below). */
	covered[API_REQ_HELLO] = covered[API_REQ_GOODBYE] = true;
	covered[API_REQ_AUTH_CHALLENGE] = covered[API_REQ_AUTH_RESPONSE] = true;
	covered[API_REQ_CONSOLE_READ] = covered[API_REQ_CONSOLE_WRITE] = true;
	covered[API_REQ_SUBSCRIBE_EVENTS] = true;
	/* export and import send theirs in chunks (mgmt-boot.sh moves a VM with them). */
	covered[API_REQ_EXPORT_SAVED_STATE] = covered[API_REQ_IMPORT_VIRTUAL_MACHINE] = true;
	assert_int_equal(PARSE("export", "web", "web.vmsave"), VMMCTL_EXIT_OK);
	assert_string_equal(parsed.local.vm, "web");
	assert_string_equal(parsed.local.file, "web.vmsave");
	assert_int_equal(PARSE("export", "web"), VMMCTL_EXIT_USAGE);
	assert_int_equal(PARSE("import", "web.vmsave", "--name", "web2", "--resume"),
			 VMMCTL_EXIT_OK);
	assert_string_equal(parsed.local.file, "web.vmsave");
	assert_string_equal(parsed.local.vm, "web2");
	assert_true(parsed.local.resume);
	assert_int_equal(PARSE("export", "web", "web.vmsave", "--with-disk"), VMMCTL_EXIT_OK);
	assert_true(parsed.local.with_disk);
	assert_int_equal(PARSE("import", "web.vmsave", "--disk", "web-disk"), VMMCTL_EXIT_OK);
	assert_string_equal(parsed.local.disk, "web-disk");
	assert_int_equal(PARSE("import", "web.vmsave", "--with-disk"), VMMCTL_EXIT_USAGE);
	assert_int_equal(PARSE("import"), VMMCTL_EXIT_USAGE);
	for (unsigned code = 1; code < 256; code++)
		if (api_request_name((uint16_t)code))
			assert_true(covered[code]);

	/* The tool's own subcommands */
	assert_int_equal(PARSE("events", "--follow", "--count", "3", "--vm", "web"), VMMCTL_EXIT_OK);
	assert_true(parsed.local.follow);
	assert_int_equal(parsed.local.count, 3);
	assert_int_equal(PARSE("wait", "web", "running", "--max-wait", "2.5"), VMMCTL_EXIT_OK);
	assert_int_equal(parsed.local.wait_ms, 2500);
	assert_int_equal(PARSE("console", "web", "--escape", "^a"), VMMCTL_EXIT_OK);
	assert_int_equal(parsed.local.escape, 1);
	assert_int_equal(PARSE("console", "web", "--dump", "--raw"), VMMCTL_EXIT_OK);
	assert_int_equal(PARSE("net-show", "lan"), VMMCTL_EXIT_OK);
}

static void test_parse_errors_and_globals(void **state)
{
	(void)state;
	assert_int_equal(PARSE("frob"), VMMCTL_EXIT_USAGE);
	assert_non_null(strstr(parsed.error, "unknown subcommand 'frob'"));
	assert_int_equal(PARSE("create", "web", "--memroy", "64M"), VMMCTL_EXIT_USAGE);
	assert_non_null(strstr(parsed.error, "unknown option '--memroy'"));
	assert_int_equal(PARSE("create", "web", "--memory", "64M"), VMMCTL_EXIT_USAGE);
	assert_non_null(strstr(parsed.error, "create: missing image"));
	assert_non_null(strstr(parsed.error, "vmmctl create --help"));
	assert_int_equal(PARSE("pause", "web", "db"), VMMCTL_EXIT_USAGE);
	assert_non_null(strstr(parsed.error, "unexpected argument 'db'"));
	assert_int_equal(PARSE("pause"), VMMCTL_EXIT_USAGE);
	assert_int_equal(PARSE("pause", "bad/name"), VMMCTL_EXIT_USAGE);
	assert_int_equal(PARSE("nic-add", "web", "--mac", "01:00:5e"), VMMCTL_EXIT_USAGE);
	assert_int_equal(PARSE("dhcp-set", "lan"), VMMCTL_EXIT_USAGE);
	assert_non_null(strstr(parsed.error, "nothing to change"));
	assert_int_equal(PARSE("-b", "12345", "list"), VMMCTL_EXIT_USAGE);
	assert_int_equal(PARSE("list", "--timeout"), VMMCTL_EXIT_USAGE);
	assert_int_equal(PARSE("list", "--timeout", "-1"), VMMCTL_EXIT_USAGE);
	assert_int_equal(PARSE("wait", "web", "Sleeping"), VMMCTL_EXIT_USAGE);
	assert_int_equal(PARSE("console", "web", "--raw"), VMMCTL_EXIT_USAGE);
	assert_int_equal(PARSE("events", "--count", "0"), VMMCTL_EXIT_USAGE);
	assert_int_equal(PARSE("--json=yes", "list"), VMMCTL_EXIT_USAGE);
	assert_int_equal(parse_line((const char *const[]){ NULL }, no_env), VMMCTL_EXIT_USAGE);

	/* Globals anywhere, help on every subcommand, environment */
	assert_int_equal(PARSE("list", "-j", "--timeout", "0.25", "-r", "5", "--show-log"),
			 VMMCTL_EXIT_OK);
	assert_true(parsed.opts.json && parsed.opts.show_log);
	assert_int_equal(parsed.opts.timeout_ms, 250);
	assert_int_equal(parsed.opts.retries, 5);
	for (size_t i = 0; i < vmmctl_sub_count; i++) {
		struct cap c;

		assert_int_equal(PARSE(vmmctl_subs[i].name, "--help"), VMMCTL_EXIT_OK);
		assert_true(parsed.sub_help);
		cap_open(&c);
		vmmctl_sub_help(c.f, parsed.sub);
		assert_non_null(strstr(cap_text(&c), "usage: vmmctl "));
		cap_close(&c);
	}
	assert_int_equal(PARSE("help", "create"), VMMCTL_EXIT_OK);
	assert_true(parsed.sub_help);
	assert_string_equal(parsed.sub->name, "create");
	assert_int_equal(parse_line((const char *const[]){ "list", NULL }, test_env), VMMCTL_EXIT_OK);
	assert_string_equal(parsed.opts.connect, "tcp:localhost:4555");
	assert_int_equal(PARSE("-c", "unix:/x", "list"), VMMCTL_EXIT_OK);
	assert_string_equal(parsed.opts.connect, "unix:/x");
}

/* ---- Rendering ---- */

static void test_json_escapes_hostile_strings(void **state)
{
	uint8_t buf[512], nasty[] = "q\"b\\s/\n\r\t\x1b[2J\x07\x7f\xff\x80 end";
	struct tlv_writer w;
	struct cap c;
	char *t;

	(void)state;
	tlv_writer_init(&w, buf, sizeof(buf));
	tlv_put_str(&w, API_TAG_VM, "web");
	tlv_put(&w, API_TAG_DATA, nasty, sizeof(nasty) - 1);     /* bytes: anything */
	tlv_put_str(&w, API_TAG_MESSAGE, "say \"hi\" \\ back");  /* str: printable */
	tlv_put(&w, API_TAG_REASON, "bad\x1b", 4);               /* invalid str: skipped */
	tlv_put_u8(&w, API_TAG_STATE, 77);                        /* unknown state */
	tlv_put_u8(&w, 0xee, 1);                                  /* unknown tag: skipped */
	tlv_put_str(&w, API_TAG_VM, "second");                    /* duplicate: first wins */
	assert_true(tlv_writer_ok(&w));

	cap_open(&c);
	vmmctl_render_json(c.f, buf, w.len);
	t = cap_text(&c);
	assert_true(json_valid(t, true));
	assert_non_null(strstr(t, "\"data\":\"q\\\"b\\\\s/\\n\\r\\t\\u001b[2J\\u0007\\u007f\\u00ff\\u0080 end\""));
	assert_non_null(strstr(t, "\"message\":\"say \\\"hi\\\" \\\\ back\""));
	assert_null(strstr(t, "reason"));
	assert_null(strstr(t, "second"));
	assert_non_null(strstr(t, "\"state\":\"77\",\"state_code\":77"));
	cap_close(&c);

	/* For people: no control byte reaches the terminal. */
	cap_open(&c);
	vmmctl_render_human(c.f, buf, w.len);
	t = cap_text(&c);
	for (size_t i = 0; t[i]; i++)
		assert_true(t[i] == '\n' || (t[i] >= 0x20 && t[i] <= 0x7e));
	assert_non_null(strstr(t, "\\x1b[2J\\x07\\x7f\\xff"));
	assert_non_null(strstr(t, "state:           77"));
	cap_close(&c);
}

static size_t vm_entry(struct tlv_writer *w, uint32_t id, const char *name, uint8_t st)
{
	size_t at = tlv_list_begin(w, API_TAG_VM_ENTRY);

	tlv_put_u32(w, API_TAG_VM_ID, id);
	tlv_put_str(w, API_TAG_VM, name);
	tlv_put_u8(w, API_TAG_STATE, st);
	tlv_list_end(w, at);
	return at;
}

static void test_tables_and_merge(void **state)
{
	uint8_t p1[256], p2[256], *m = NULL;
	size_t mlen = 0, mcap = 0;
	struct tlv_writer w;
	struct cap c;
	char *t;

	(void)state;
	tlv_writer_init(&w, p1, sizeof(p1));
	vm_entry(&w, 1, "web", 5);
	vm_entry(&w, 2, "database-primary", 1);
	tlv_put_u32(&w, API_TAG_CURSOR, 2);
	size_t n1 = w.len;

	tlv_writer_init(&w, p2, sizeof(p2));
	vm_entry(&w, 3, "mail", 6);
	assert_true(vmmctl_merge_page(&m, &mlen, &mcap, p1, n1, true));
	assert_true(vmmctl_merge_page(&m, &mlen, &mcap, p2, w.len, false));
	assert_true(api_payload_valid(m, mlen));
	assert_int_equal(tlv_find(m, mlen, API_TAG_CURSOR, &(struct tlv){ 0 }), TLV_ABSENT);

	cap_open(&c);
	vmmctl_render_list(c.f, false, m, mlen, API_TAG_VM_ENTRY);
	t = cap_text(&c);
	assert_string_equal(t, "VM_ID  VM                STATE\n"
			       "1      web               Running\n"
			       "2      database-primary  TurnedOff\n"
			       "3      mail              Paused\n");
	cap_close(&c);

	cap_open(&c);
	vmmctl_render_list(c.f, true, m, mlen, API_TAG_VM_ENTRY);
	t = cap_text(&c);
	assert_true(json_valid(t, false));
	assert_non_null(strstr(t, "{\"vms\":[{\"vm_id\":1,\"vm\":\"web\",\"state\":\"Running\",\"state_code\":5}"));
	cap_close(&c);

	/* An empty list is still a list */
	cap_open(&c);
	vmmctl_render_list(c.f, true, NULL, 0, API_TAG_NET_ENTRY);
	assert_string_equal(cap_text(&c), "{\"networks\":[]}\n");
	cap_close(&c);
	cap_open(&c);
	vmmctl_render_list(c.f, false, NULL, 0, API_TAG_LEASE_ENTRY);
	assert_string_equal(cap_text(&c), "(no leases)\n");
	cap_close(&c);
	free(m);

	/* Values by type */
	uint8_t p[256], range[8] = { 10, 0, 0, 10, 10, 0, 0, 99 }, dns[8] = { 10, 0, 0, 1, 8, 8, 8, 8 };
	uint8_t mac[6] = { 2, 0, 0, 0, 0, 0xab };

	tlv_writer_init(&w, p, sizeof(p));
	tlv_put(&w, API_TAG_DHCP_RANGE, range, 8);
	tlv_put(&w, API_TAG_DNS, dns, 8);
	tlv_put(&w, API_TAG_MAC, mac, 6);
	tlv_put_u64(&w, API_TAG_MEMORY, 64u << 20);
	tlv_put_u64(&w, API_TAG_UPTIME_MS, 3723004);
	tlv_put_u8(&w, API_TAG_DHCP_ENABLED, 1);
	cap_open(&c);
	vmmctl_render_human(c.f, p, w.len);
	t = cap_text(&c);
	assert_non_null(strstr(t, "dhcp range:      10.0.0.10-10.0.0.99\n"));
	assert_non_null(strstr(t, "dns:             10.0.0.1,8.8.8.8\n"));
	assert_non_null(strstr(t, "mac:             02:00:00:00:00:ab\n"));
	assert_non_null(strstr(t, "memory:          64 MiB\n"));
	assert_non_null(strstr(t, "uptime ms:       01:02:03.004\n"));
	assert_non_null(strstr(t, "dhcp enabled:    yes\n"));
	cap_close(&c);
	cap_open(&c);
	vmmctl_render_json(c.f, p, w.len);
	t = cap_text(&c);
	assert_true(json_valid(t, false));
	assert_non_null(strstr(t, "\"dhcp_range\":[\"10.0.0.10\",\"10.0.0.99\"],\"dns\":[\"10.0.0.1\",\"8.8.8.8\"]"));
	assert_non_null(strstr(t, "\"memory\":67108864"));
	cap_close(&c);
}

static void test_event_and_error_printing(void **state)
{
	struct vmmctl_frame ev = { .type = PROTO_EVENT, .code = API_EVENT_VM_STATE_CHANGE };
	struct tlv_writer w;
	struct cap c, e;
	static struct vmmctl_conn conn;

	(void)state;
	tlv_writer_init(&w, ev.payload, sizeof(ev.payload));
	tlv_put_u64(&w, API_TAG_SEQ, 42);
	tlv_put_u32(&w, API_TAG_VM_ID, 1);
	tlv_put_str(&w, API_TAG_VM, "web");
	tlv_put_u8(&w, API_TAG_STATE, 8);
	tlv_put_str(&w, API_TAG_REASON, "TurnOff");
	ev.length = (uint16_t)w.len;
	cap_open(&c);
	vmmctl_print_event(c.f, false, &ev);
	assert_string_equal(cap_text(&c), "event 42: web TurningOff (TurnOff)\n");
	cap_close(&c);
	cap_open(&c);
	vmmctl_print_event(c.f, true, &ev);
	assert_string_equal(cap_text(&c),
			    "{\"event\":\"VMStateChange\",\"seq\":42,\"vm_id\":1,\"vm\":\"web\","
			    "\"state\":\"TurningOff\",\"state_code\":8,\"reason\":\"TurnOff\"}\n");
	cap_close(&c);

	/* Console output with terminal escapes, and an unknown event */
	ev.code = API_EVENT_CONSOLE_OUTPUT;
	tlv_writer_init(&w, ev.payload, sizeof(ev.payload));
	tlv_put_str(&w, API_TAG_VM, "web");
	tlv_put_u64(&w, API_TAG_OFFSET, 7);
	tlv_put(&w, API_TAG_DATA, "hi\x1b]0;pwned\x07", 12);
	ev.length = (uint16_t)w.len;
	cap_open(&c);
	vmmctl_print_event(c.f, false, &ev);
	assert_string_equal(cap_text(&c), "console web @7: hi\\x1b]0;pwned\\x07\n");
	cap_close(&c);
	ev.code = 0x99;
	cap_open(&c);
	vmmctl_print_event(c.f, true, &ev);
	assert_true(json_valid(cap_text(&c), true));
	assert_non_null(strstr(cap_text(&c), "\"event\":\"153\""));
	cap_close(&c);

	/* API errors: code name, message, state */
	conn.err_code = API_E_INVALID_STATE;
	strcpy(conn.err_msg, "Pause: web is turned off");
	conn.err_has_state = true;
	conn.err_state = 1;
	cap_open(&c);
	cap_open(&e);
	vmmctl_print_api_error(c.f, e.f, true, "Pause", &conn);
	assert_string_equal(cap_text(&e), "vmmctl: Pause: INVALID_STATE (invalid state transition): "
					  "Pause: web is turned off [state: TurnedOff]\n");
	assert_true(json_valid(cap_text(&c), false));
	assert_non_null(strstr(cap_text(&c), "\"name\":\"INVALID_STATE\""));
	cap_close(&c);
	cap_close(&e);
	conn.err_code = 999;
	conn.err_has_state = false;
	conn.err_msg[0] = '\0';
	cap_open(&c);
	cap_open(&e);
	vmmctl_print_api_error(c.f, e.f, false, "X", &conn);
	assert_string_equal(cap_text(&e), "vmmctl: X: unknown error 999\n");
	cap_close(&c);
	cap_close(&e);
}

/* ---- The fake management VM ---- */

#define FAKE_VMS 4
static const uint8_t fake_key[16] = "0123456789abcdef";

struct fake {
	int fd;
	pthread_t thread;
	struct proto_decoder dec;
	struct proto_replay replay;
	/* behaviour */
	int drop_requests;    /* requests lost on the way in */
	int drop_answers;     /* answers lost on the way out (executed) */
	bool noise;           /* log text, stray zeros and a broken frame before answers */
	bool duplicate;       /* every answer twice, and a stale one */
	bool silent;          /* never answers */
	bool hang_up_mid_frame; /* after Hello: half an answer, then close */
	bool auth;            /* a key is configured */
	bool state_later;     /* GetState says TurnedOff, then events bring Running */
	bool hostile;         /* GetState answers with hostile text */
	bool malformed;       /* GetState answers with an invalid value */
	bool save_fails;      /* a Save ends with the VM Running again, for want of memory */
	unsigned page_size;
	/* state */
	bool subscribed;
	struct session_table sessions;
	unsigned signed_requests; /* requests that verified as signed by a session */
	uint64_t seq;
	unsigned vm_count;
	char vm[FAKE_VMS][16];
	uint8_t vm_state[FAKE_VMS];
	unsigned executed[0x60];
	unsigned requests_seen, retries_seen;
	unsigned send_failures; /* writes after the client hung up */
};

/*
 * The fake runs in its own thread: a cmocka assertion there exits the
 * whole test binary (status 255, no report). The client may also have hung
 * up already (a test's end, close(client_fd)), so a failed write is only
 * counted; the tests assert on what the client received.
 */
static void fake_send(struct fake *f, const void *wire, size_t len)
{
	if (!vmmctl_write_all(f->fd, wire, len))
		f->send_failures++;
}

static size_t fake_encode(uint8_t *out, uint8_t type, uint32_t id, uint16_t code,
			  const uint8_t *payload, size_t len)
{
	struct proto_frame fr = { .type = type, .id = id, .code = code, .length = (uint16_t)len,
				  .payload = payload };
	int n = proto_encode(out, PROTO_MAX_WIRE, &fr);

	return n > 0 ? (size_t)n : 0;
}

static void fake_event_why(struct fake *f, unsigned vm, uint8_t st, const char *reason)
{
	uint8_t p[192], wire[PROTO_MAX_WIRE];
	struct tlv_writer w;

	f->vm_state[vm] = st;
	f->seq++;
	if (!f->subscribed)
		return;
	tlv_writer_init(&w, p, sizeof(p));
	tlv_put_u64(&w, API_TAG_SEQ, f->seq);
	tlv_put_u32(&w, API_TAG_VM_ID, vm + 1);
	tlv_put_str(&w, API_TAG_VM, f->vm[vm]);
	tlv_put_u8(&w, API_TAG_STATE, st);
	if (reason)
		tlv_put_str(&w, API_TAG_REASON, reason);
	fake_send(f, wire, fake_encode(wire, PROTO_EVENT, 0, API_EVENT_VM_STATE_CHANGE, p, w.len));
}

static void fake_event(struct fake *f, unsigned vm, uint8_t st)
{
	fake_event_why(f, vm, st, NULL);
}

static int fake_find(struct fake *f, const uint8_t *p, size_t n)
{
	char name[API_NAME_MAX + 1];

	if (tlv_get_str(p, n, API_TAG_VM, name, sizeof(name)) != TLV_OK)
		return -2;
	for (unsigned i = 0; i < f->vm_count; i++)
		if (strcmp(f->vm[i], name) == 0)
			return (int)i;
	return -1;
}

static const char console_text[] = "boot ok\r\n\x1b[31mred\x1b[0m done\n";

/* Executes a request; returns the encoded answer's length in out. */
static size_t fake_execute(struct fake *f, const struct proto_frame *req, uint8_t *out)
{
	uint8_t p[PROTO_MAX_PAYLOAD];
	struct tlv_writer w;
	uint16_t err = 0;
	const char *msg = NULL;
	int vm = -1;

	tlv_writer_init(&w, p, sizeof(p));
	if (req->code < 0x60)
		f->executed[req->code]++;
	if (f->auth && !session_open_request(req->code)) {
		/* As the management VM does: a valid signature and a fresh sequence number. */
		unsigned slot;
		uint64_t seq;
		enum session_verdict v = session_authentic(&f->sessions, req, 0, &slot, &seq);

		if (v == SESSION_OK && !session_fresh(&f->sessions, slot, seq))
			v = SESSION_REPLAYED;
		if (v != SESSION_OK) {
			err = API_E_PERMISSION_DENIED;
			msg = session_verdict_text(v);
			goto answer;
		}
		session_accept(&f->sessions, slot, seq, 0);
		f->signed_requests++;
	}
	if (req->code >= API_REQ_GET_STATE) {
		vm = fake_find(f, req->payload, req->length);
		if (vm == -1 && req->code < API_REQ_GET_ADAPTERS) {
			err = API_E_NOT_FOUND;
			msg = "no such VM";
			goto answer;
		}
	}
	switch (req->code) {
	case API_REQ_HELLO:
		tlv_put_u16(&w, API_TAG_API_VERSION, API_VERSION);
		tlv_put_str(&w, API_TAG_SOFTWARE, "fake 1");
		tlv_put_u8(&w, API_TAG_AUTH_REQUIRED, f->auth);
		tlv_put_u64(&w, API_TAG_SEQ, f->seq);
		f->subscribed = false;
		break;
	case API_REQ_GOODBYE:
		f->subscribed = false;
		break;
	case API_REQ_AUTH_CHALLENGE: {
		uint8_t nonce[SESSION_NONCE_SIZE];

		for (unsigned i = 0; i < sizeof(nonce); i++)
			nonce[i] = (uint8_t)(rand() & 0xff);
		unsigned slot = session_open(&f->sessions, nonce, 0);
		tlv_put(&w, API_TAG_NONCE, nonce, sizeof(nonce));
		tlv_put_u32(&w, API_TAG_SESSION, f->sessions.slot[slot].id);
		break;
	}
	case API_REQ_AUTH_RESPONSE: {
		const uint8_t *v;
		size_t n;
		uint32_t id = 0;
		unsigned slot;

		tlv_get_u32(req->payload, req->length, API_TAG_SESSION, &id);
		if (tlv_get_bytes(req->payload, req->length, API_TAG_AUTH_MAC, &v, &n) != TLV_OK ||
		    session_answer(&f->sessions, id, fake_key, sizeof(fake_key), v, n, 0, &slot) !=
			    SESSION_OK) {
			err = API_E_PERMISSION_DENIED;
			msg = "wrong answer";
		}
		break;
	}
	case API_REQ_LIST_VIRTUAL_MACHINES: {
		uint32_t cursor = 0;
		unsigned per = f->page_size ? f->page_size : FAKE_VMS;

		tlv_get_u32(req->payload, req->length, API_TAG_CURSOR, &cursor);
		for (unsigned i = cursor; i < f->vm_count && i < cursor + per; i++)
			vm_entry(&w, i + 1, f->vm[i], f->vm_state[i]);
		if (cursor + per < f->vm_count)
			tlv_put_u32(&w, API_TAG_CURSOR, cursor + per);
		break;
	}
	case API_REQ_SUBSCRIBE_EVENTS: {
		uint8_t on = 0;

		tlv_get_u8(req->payload, req->length, API_TAG_STATE_EVENTS, &on);
		f->subscribed = on;
		tlv_put_u64(&w, API_TAG_SEQ, f->seq);
		break;
	}
	case API_REQ_GET_STATE:
		tlv_put_u32(&w, API_TAG_VM_ID, (uint32_t)vm + 1);
		tlv_put_str(&w, API_TAG_VM, f->vm[vm]);
		tlv_put_u8(&w, API_TAG_STATE, f->vm_state[vm]);
		tlv_put_u64(&w, API_TAG_MEMORY, 64u << 20);
		if (f->hostile)
			tlv_put_str(&w, API_TAG_IMAGE, "\\\"}{,\"x\":1");
		if (f->malformed)
			tlv_put(&w, API_TAG_BOOT, "\x1b[2J", 4); /* not a str: the answer is invalid */
		break;
	case API_REQ_STARTUP:
		if (f->vm_state[vm] != VM_STATE_TURNED_OFF) {
			err = API_E_INVALID_STATE;
			msg = "Startup: not turned off";
			tlv_put_u8(&w, API_TAG_STATE, f->vm_state[vm]);
			break;
		}
		fake_event(f, (unsigned)vm, VM_STATE_TURNING_ON);
		fake_event(f, (unsigned)vm, VM_STATE_RUNNING);
		tlv_put_u8(&w, API_TAG_STATE, f->vm_state[vm]);
		tlv_put_u64(&w, API_TAG_SEQ, f->seq);
		break;
	case API_REQ_SAVE:
		/* Saving at once; the steps' end comes as events, here before the answer. */
		fake_event(f, (unsigned)vm, VM_STATE_SAVING);
		tlv_put_u8(&w, API_TAG_STATE, VM_STATE_SAVING);
		tlv_put_u64(&w, API_TAG_SEQ, f->seq);
		if (f->save_fails) {
			fake_event_why(f, (unsigned)vm, VM_STATE_RUNNING,
				       "no memory for a save file of up to 9 KiB");
			break;
		}
		fake_event(f, (unsigned)vm, VM_STATE_TURNING_OFF);
		fake_event(f, (unsigned)vm, VM_STATE_DELETE_MACHINE);
		fake_event(f, (unsigned)vm, VM_STATE_TURNED_OFF);
		f->vm_state[vm] = VM_STATE_SAVED;
		break;
	case API_REQ_CONSOLE_READ: {
		uint64_t off = 0;
		size_t total = sizeof(console_text) - 1, n;

		tlv_get_u64(req->payload, req->length, API_TAG_OFFSET, &off);
		if (off > total)
			off = total;
		n = total - off > 8 ? 8 : total - off; /* small pieces: several reads */
		tlv_put_u64(&w, API_TAG_OFFSET, off);
		tlv_put(&w, API_TAG_DATA, console_text + off, n);
		tlv_put_u64(&w, API_TAG_NEXT_OFFSET, off + n);
		tlv_put_u64(&w, API_TAG_LOST, 0);
		break;
	}
	case API_REQ_GET_HEARTBEAT:
	case API_REQ_SHUTDOWN:
	case API_REQ_GET_OS_NAME:
		err = API_E_NOT_SUPPORTED;
		msg = "the guest additions do not exist yet";
		break;
	default:
		err = API_E_UNKNOWN_REQUEST;
		break;
	}
answer:
	if (err) {
		struct tlv_writer e;
		uint8_t ep[PROTO_MAX_PAYLOAD];

		tlv_writer_init(&e, ep, sizeof(ep));
		tlv_put_u16(&e, API_TAG_ERROR, err);
		if (msg)
			tlv_put_str(&e, API_TAG_MESSAGE, msg);
		if (err == API_E_INVALID_STATE)
			tlv_put(&e, w.buf[0], w.buf + 3, w.len - 3); /* the state TLV */
		return fake_encode(out, PROTO_ERROR, req->id, req->code, ep, e.len);
	}
	return fake_encode(out, PROTO_RESPONSE, req->id, req->code, p, w.len);
}

static void fake_noise(struct fake *f)
{
	static const uint8_t junk[] = "[  1.000] INFO  log line\n\x1b[31mred\x1b[0m\n\x00\x00garbage\x00"
				      "\x05\x01\x02\x03\x00";

	fake_send(f, junk, sizeof(junk) - 1);
}

static void fake_answer(struct fake *f, const uint8_t *wire, size_t len, uint32_t id)
{
	if (f->noise)
		fake_noise(f);
	if (f->hang_up_mid_frame) {
		fake_send(f, wire, len / 2);
		shutdown(f->fd, SHUT_RDWR);
		return;
	}
	fake_send(f, wire, len);
	if (f->duplicate) {
		uint8_t stale[PROTO_MAX_WIRE];

		fake_send(f, wire, len);
		fake_send(f, stale, fake_encode(stale, PROTO_RESPONSE, id - 7, API_REQ_GET_HOST_INFO,
						NULL, 0));
	}
}

static void fake_frame(struct fake *f, const struct proto_frame *req)
{
	static uint8_t out[PROTO_MAX_WIRE];
	const uint8_t *wire;
	size_t len;

	if (req->type != PROTO_REQUEST)
		return;
	f->requests_seen++;
	if (req->flags & PROTO_FLAG_RETRY)
		f->retries_seen++;
	if (f->drop_requests > 0) {
		f->drop_requests--;
		return;
	}
	if (f->silent)
		return;
	switch (proto_replay_check(&f->replay, req, &wire, &len)) {
	case PROTO_REPLAY_ANSWER:
		fake_answer(f, wire, len, req->id);
		return;
	case PROTO_REPLAY_IN_PROGRESS:
		return;
	case PROTO_REPLAY_EXECUTE:
		break;
	}
	len = fake_execute(f, req, out);
	proto_replay_store(&f->replay, req, out, len);
	if (f->drop_answers > 0 && req->code != API_REQ_HELLO) {
		f->drop_answers--;
		return;
	}
	if (f->hang_up_mid_frame && req->code == API_REQ_HELLO) {
		fake_send(f, out, len);
		return;
	}
	fake_answer(f, out, len, req->id);
	if (f->state_later && req->code == API_REQ_GET_STATE) {
		/* Another client starts the VM right after this answer. */
		f->state_later = false;
		fake_event(f, 0, VM_STATE_TURNING_ON);
		fake_event(f, 0, VM_STATE_RUNNING);
	}
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	uint8_t buf[2048];

	for (;;) {
		ssize_t n = read(f->fd, buf, sizeof(buf));
		const uint8_t *p = buf;
		size_t left;
		struct proto_frame fr;

		if (n <= 0)
			break;
		left = (size_t)n;
		while (proto_decode(&f->dec, &p, &left, &fr))
			fake_frame(f, &fr);
	}
	close(f->fd);
	return NULL;
}

static struct fake *fake_new(void)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	proto_decoder_init(&f->dec, NULL, NULL);
	proto_replay_init(&f->replay);
	f->vm_count = 3;
	strcpy(f->vm[0], "web");
	strcpy(f->vm[1], "db");
	strcpy(f->vm[2], "mail");
	f->vm_state[0] = VM_STATE_TURNED_OFF;
	f->vm_state[1] = VM_STATE_RUNNING;
	f->vm_state[2] = VM_STATE_PAUSED;
	f->seq = 10;
	return f;
}

static int client_fd;

static int fake_start(struct fake *f)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	f->fd = sv[1];
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	return sv[0];
}

static void fake_stop(struct fake *f, int fd)
{
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	pthread_join(f->thread, NULL);
	free(f);
}

/* ---- Session against the fake ---- */

static struct vmmctl_conn conn;

static void session_start(struct fake *f, int timeout_ms)
{
	client_fd = fake_start(f);
	vmmctl_conn_init(&conn, client_fd, 1000);
	conn.timeout_ms = timeout_ms;
	assert_int_equal(vmmctl_hello(&conn), VMMCTL_CALL_OK);
	assert_int_equal(conn.server_api_version, API_VERSION);
	assert_string_equal(conn.server_software, "fake 1");
	assert_int_equal(conn.hello_seq, 10);
}

static enum vmmctl_call call_vm(uint16_t code, const char *vm)
{
	uint8_t p[64];
	struct tlv_writer w;

	tlv_writer_init(&w, p, sizeof(p));
	tlv_put_str(&w, API_TAG_VM, vm);
	return vmmctl_call(&conn, code, p, w.len);
}

static void test_session_retry_same_id_runs_once(void **state)
{
	struct fake *f = fake_new();

	(void)state;
	session_start(f, 60);
	uint8_t sub[8];
	struct tlv_writer w;

	tlv_writer_init(&w, sub, sizeof(sub));
	tlv_put_u8(&w, API_TAG_STATE_EVENTS, 1);
	assert_int_equal(vmmctl_call(&conn, API_REQ_SUBSCRIBE_EVENTS, sub, w.len), VMMCTL_CALL_OK);
	/* The request is lost twice: resent with the same id, executed once. */
	f->drop_requests = 2;
	assert_int_equal(call_vm(API_REQ_STARTUP, "web"), VMMCTL_CALL_OK);
	assert_int_equal(conn.resent, 2);
	assert_int_equal(f->retries_seen, 2);
	assert_int_equal(f->executed[API_REQ_STARTUP], 1);
	/* The answer is lost: the retry gets the stored answer, not a second Startup. */
	f->vm_state[0] = VM_STATE_TURNED_OFF;
	f->drop_answers = 1;
	assert_int_equal(call_vm(API_REQ_STARTUP, "web"), VMMCTL_CALL_OK);
	assert_int_equal(f->executed[API_REQ_STARTUP], 2);
	uint8_t st;

	assert_int_equal(tlv_get_u8(conn.resp.payload, conn.resp.length, API_TAG_STATE, &st), TLV_OK);
	assert_int_equal(st, VM_STATE_RUNNING);
	/* Events that came before the answer are queued in order. */
	struct vmmctl_frame ev;
	uint64_t seq;

	for (uint64_t want = 11; want <= 14; want++) {
		assert_int_equal(vmmctl_next_event(&conn, 0, &ev), 1);
		assert_int_equal(tlv_get_u64(ev.payload, ev.length, API_TAG_SEQ, &seq), TLV_OK);
		assert_int_equal(seq, want);
	}
	assert_int_equal(vmmctl_next_event(&conn, 0, &ev), 0);
	close(client_fd);
	fake_stop(f, -1);
}

static void test_session_timeout(void **state)
{
	struct fake *f = fake_new();
	struct timespec a, b;

	(void)state;
	session_start(f, 40);
	f->silent = true;
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(call_vm(API_REQ_GET_STATE, "web"), VMMCTL_CALL_TIMEOUT);
	clock_gettime(CLOCK_MONOTONIC, &b);
	long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;

	assert_true(ms >= 4 * 40 - 5 && ms < 2000);
	assert_int_equal(conn.resent, 3);
	close(client_fd);
	fake_stop(f, -1);
	assert_int_equal(vmmctl_default_timeout_ms(API_REQ_STARTUP), 5000);
	assert_int_equal(vmmctl_default_timeout_ms(API_REQ_GET_STATE), 1000);
}

struct logcap {
	struct cap c;
};

static void test_session_noise_and_duplicates(void **state)
{
	struct fake *f = fake_new();
	struct cap log;

	(void)state;
	session_start(f, 500);
	cap_open(&log);
	conn.log = log.f;
	f->noise = true;
	f->duplicate = true;
	for (int i = 0; i < 5; i++) {
		uint8_t st;

		assert_int_equal(call_vm(API_REQ_GET_STATE, i % 2 ? "db" : "mail"), VMMCTL_CALL_OK);
		assert_int_equal(tlv_get_u8(conn.resp.payload, conn.resp.length, API_TAG_STATE, &st),
				 TLV_OK);
		assert_int_equal(st, i % 2 ? VM_STATE_RUNNING : VM_STATE_PAUSED);
	}
	assert_int_equal(conn.resent, 0);
	assert_true(conn.stale_answers >= 8); /* the repeats and the stale ids */
	assert_true(conn.dec.stats.truncated + conn.dec.stats.crc_errors > 0);
	char *t = cap_text(&log);

	assert_non_null(strstr(t, "[  1.000] INFO  log line\n"));
	assert_non_null(strstr(t, "\\x1b[31mred"));
	assert_null(strchr(t, 0x1b));
	cap_close(&log);
	conn.log = NULL;
	close(client_fd);
	fake_stop(f, -1);
}

static void test_session_interbyte_timeout(void **state)
{
	struct fake *f = fake_new();
	uint8_t wire[PROTO_MAX_WIRE], p[16];
	struct tlv_writer w;
	size_t n;
	struct vmmctl_frame ev;

	(void)state;
	session_start(f, 200);
	/* Half an event, silence, then a whole one: the half is dropped. */
	tlv_writer_init(&w, p, sizeof(p));
	tlv_put_u64(&w, API_TAG_SEQ, 11);
	n = fake_encode(wire, PROTO_EVENT, 0, API_EVENT_VM_STATE_CHANGE, p, w.len);
	fake_send(f, wire, n - 5);
	assert_int_equal(vmmctl_next_event(&conn, 700, &ev), 0);
	assert_false(conn.dec.in_frame && conn.dec.len > 0);
	assert_int_equal(conn.dec.stats.truncated, 1);
	fake_send(f, wire, n);
	assert_int_equal(vmmctl_next_event(&conn, 500, &ev), 1);
	assert_int_equal(ev.code, API_EVENT_VM_STATE_CHANGE);
	close(client_fd);
	fake_stop(f, -1);
}

static void test_session_hang_up_mid_frame(void **state)
{
	struct fake *f = fake_new();
	struct timespec a, b;

	(void)state;
	session_start(f, 1000);
	f->hang_up_mid_frame = true;
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(call_vm(API_REQ_GET_STATE, "web"), VMMCTL_CALL_CLOSED);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_true(b.tv_sec - a.tv_sec < 1); /* no waiting for timeouts */
	close(client_fd);
	fake_stop(f, -1);
}

/* ---- Whole subcommands against the fake ---- */

struct runctx {
	struct fake *f;
	int fd;
	int connects;
};

static int run_connect(void *ctx, const struct vmmctl_opts *o)
{
	struct runctx *r = ctx;

	(void)o;
	if (r->connects++)
		return -1; /* no reconnection in these tests */
	r->fd = fake_start(r->f);
	return r->fd;
}

struct result {
	int rc;
	struct cap out, err;
};

static void run_cmd(struct fake *f, struct result *res, const char *const *words)
{
	struct runctx ctx = { .f = f, .fd = -1 };
	struct vmmctl_env env = { 0 };
	char *argv[40];
	int argc = 0;

	argv[argc++] = (char *)"vmmctl";
	for (; *words; words++)
		argv[argc++] = (char *)*words;
	assert_int_equal(vmmctl_parse(&parsed, argc, argv, no_env), VMMCTL_EXIT_OK);
	cap_open(&res->out);
	cap_open(&res->err);
	env.out = res->out.f;
	env.err = res->err.f;
	env.connect = run_connect;
	env.connect_ctx = &ctx;
	env.first_id = 77;
	env.keepalive_ms = 300;
	env.console_in = -1;
	if (f->auth) {
		env.key = fake_key;
		env.key_len = sizeof(fake_key);
	}
	res->rc = vmmctl_run(&parsed, &env);
	fflush(res->out.f);
	fflush(res->err.f);
	pthread_join(f->thread, NULL);
}

#define RUN(f, res, ...) run_cmd(f, res, (const char *const[]){ __VA_ARGS__, NULL })

static void result_free(struct result *res)
{
	cap_close(&res->out);
	cap_close(&res->err);
}

static void test_run_list_paged_json(void **state)
{
	struct fake *f = fake_new();
	struct result r;

	(void)state;
	f->page_size = 1;
	RUN(f, &r, "list", "--json", "-t", "0.5");
	assert_int_equal(r.rc, VMMCTL_EXIT_OK);
	assert_true(json_valid(r.out.buf, false));
	assert_string_equal(r.out.buf,
			    "{\"vms\":[{\"vm_id\":1,\"vm\":\"web\",\"state\":\"TurnedOff\",\"state_code\":1},"
			    "{\"vm_id\":2,\"vm\":\"db\",\"state\":\"Running\",\"state_code\":5},"
			    "{\"vm_id\":3,\"vm\":\"mail\",\"state\":\"Paused\",\"state_code\":6}]}\n");
	assert_int_equal(f->executed[API_REQ_LIST_VIRTUAL_MACHINES], 3);
	assert_int_equal(f->executed[API_REQ_GOODBYE], 1);
	result_free(&r);
	free(f);
}

static void test_run_errors_and_exit_codes(void **state)
{
	struct fake *f = fake_new();
	struct result r;

	(void)state;
	RUN(f, &r, "pause", "nosuch");
	assert_int_equal(r.rc, VMMCTL_EXIT_API);
	assert_non_null(strstr(r.err.buf, "NOT_FOUND (not found): no such VM"));
	result_free(&r);
	free(f);

	f = fake_new();
	RUN(f, &r, "start", "db", "--json");
	assert_int_equal(r.rc, VMMCTL_EXIT_API);
	assert_non_null(strstr(r.err.buf, "INVALID_STATE"));
	assert_non_null(strstr(r.err.buf, "[state: Running]"));
	assert_true(json_valid(r.out.buf, false));
	result_free(&r);
	free(f);

	f = fake_new();
	RUN(f, &r, "guest-os", "web");
	assert_int_equal(r.rc, VMMCTL_EXIT_API);
	assert_non_null(strstr(r.err.buf, "NOT_SUPPORTED (not supported yet)"));
	result_free(&r);
	free(f);

	f = fake_new();
	RUN(f, &r, "start", "web");
	assert_int_equal(r.rc, VMMCTL_EXIT_OK);
	assert_string_equal(r.out.buf, "web: Running\n");
	result_free(&r);
	free(f);

	f = fake_new();
	f->silent = true;
	RUN(f, &r, "info", "-t", "0.02", "-r", "1");
	assert_int_equal(r.rc, VMMCTL_EXIT_CONN);
	assert_non_null(strstr(r.err.buf, "Hello: no answer after 2 attempts"));
	result_free(&r);
	free(f);

	f = fake_new();
	f->hostile = true;
	RUN(f, &r, "state", "web", "--json");
	assert_int_equal(r.rc, VMMCTL_EXIT_OK);
	assert_true(json_valid(r.out.buf, false));
	assert_non_null(strstr(r.out.buf, "\"image\":\"\\\\\\\"}{,\\\"x\\\":1\""));
	result_free(&r);
	free(f);

	f = fake_new();
	f->malformed = true;
	RUN(f, &r, "state", "web");
	assert_int_equal(r.rc, VMMCTL_EXIT_PROTO);
	assert_non_null(strstr(r.err.buf, "protocol error"));
	assert_null(strchr(r.out.buf ? r.out.buf : "", 0x1b));
	result_free(&r);
	free(f);
}

static void test_run_auth(void **state)
{
	struct fake *f = fake_new();
	struct result r;

	(void)state;
	f->auth = true;
	RUN(f, &r, "state", "web");
	assert_int_equal(r.rc, VMMCTL_EXIT_OK);
	assert_non_null(strstr(r.out.buf, "state:           TurnedOff\n"));
	assert_int_equal(f->executed[API_REQ_AUTH_RESPONSE], 1);
	/* GetState and Goodbye went signed. */
	assert_int_equal(f->signed_requests, 2);
	result_free(&r);
	free(f);

	/* A wrong key is refused: exit 1 with the code name. */
	static const uint8_t bad[16] = "not the key!!!!";
	struct runctx ctx = { .f = fake_new(), .fd = -1 };
	struct vmmctl_env env = { 0 };
	char *argv[] = { (char *)"vmmctl", (char *)"list", NULL };

	ctx.f->auth = true;
	assert_int_equal(vmmctl_parse(&parsed, 2, argv, no_env), VMMCTL_EXIT_OK);
	cap_open(&r.out);
	cap_open(&r.err);
	env.out = r.out.f;
	env.err = r.err.f;
	env.connect = run_connect;
	env.connect_ctx = &ctx;
	env.key = bad;
	env.key_len = sizeof(bad);
	assert_int_equal(vmmctl_run(&parsed, &env), VMMCTL_EXIT_API);
	fflush(r.err.f);
	assert_non_null(strstr(r.err.buf, "PERMISSION_DENIED"));
	pthread_join(ctx.f->thread, NULL);
	result_free(&r);
	free(ctx.f);
}

static void test_run_events_follow_and_wait(void **state)
{
	struct fake *f = fake_new();
	struct result r;

	(void)state;
	f->subscribed = false;
	/* Subscribe, then the fake produces two events after the first keepalive. */
	f->vm_state[0] = VM_STATE_TURNED_OFF;
	RUN(f, &r, "events", "--json");
	assert_int_equal(r.rc, VMMCTL_EXIT_OK);
	assert_string_equal(r.out.buf, "{\"seq\":10}\n");
	result_free(&r);
	free(f);

	/* wait: the VM gets there through Startup by another client (simulated). */
	f = fake_new();
	f->state_later = true;
	RUN(f, &r, "wait", "web", "Running", "--max-wait", "2");
	assert_int_equal(r.rc, VMMCTL_EXIT_OK);
	assert_string_equal(r.out.buf, "web: Running\n");
	result_free(&r);
	free(f);

	f = fake_new();
	RUN(f, &r, "wait", "web", "Paused", "--max-wait", "0.3");
	assert_int_equal(r.rc, VMMCTL_EXIT_CONN);
	assert_non_null(strstr(r.err.buf, "web is still TurnedOff"));
	result_free(&r);
	free(f);
}

/*
 * save follows the Save's state changes to their end: Saved with the seq
 * of its TurnedOff event, or an error with the reason when the VM runs on.
 */
static void test_run_save_follows_its_events(void **state)
{
	struct fake *f = fake_new();
	struct result r;

	(void)state;
	f->subscribed = false;
	f->vm_state[0] = VM_STATE_RUNNING;
	RUN(f, &r, "--json", "save", "web");
	assert_int_equal(r.rc, VMMCTL_EXIT_OK);
	assert_non_null(strstr(r.out.buf, "\"state\":\"Saved\""));
	char want[64];
	snprintf(want, sizeof(want), "\"seq\":%llu}", (unsigned long long)f->seq);
	assert_non_null(strstr(r.out.buf, want));
	result_free(&r);
	free(f);

	f = fake_new();
	f->subscribed = false;
	f->vm_state[0] = VM_STATE_RUNNING;
	f->save_fails = true;
	RUN(f, &r, "save", "web");
	assert_int_equal(r.rc, VMMCTL_EXIT_API);
	assert_non_null(strstr(r.err.buf, "web is Running again, not saved: no memory for a save "
					  "file"));
	result_free(&r);
	free(f);
}

/* events --follow with a second client changing states: driven from a helper thread. */
struct driver {
	struct fake *f;
};

static void *drive(void *arg)
{
	struct fake *f = arg;
	struct timespec ts = { 0, 100 * 1000000L };

	/* Wait for the subscription, then make events (one is "lost"). */
	for (int i = 0; i < 50 && !f->subscribed; i++)
		nanosleep(&ts, NULL);
	nanosleep(&ts, NULL);
	fake_event(f, 0, VM_STATE_TURNING_ON);
	f->seq++; /* an event lost on the line */
	fake_event(f, 0, VM_STATE_RUNNING);
	return NULL;
}

static void test_run_events_follow(void **state)
{
	struct fake *f = fake_new();
	struct result r;
	pthread_t t;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, drive, f), 0);
	RUN(f, &r, "events", "--follow", "--json", "--count", "2");
	pthread_join(t, NULL);
	assert_int_equal(r.rc, VMMCTL_EXIT_OK);
	assert_true(json_valid(r.out.buf, true));
	assert_string_equal(r.out.buf,
			    "{\"event\":\"VMStateChange\",\"seq\":11,\"vm_id\":1,\"vm\":\"web\",\"state\":\"TurningOn\",\"state_code\":3}\n"
			    "{\"event\":\"EventsLost\",\"seq\":12,\"lost\":1,\"detected_by\":\"vmmctl\"}\n"
			    "{\"event\":\"VMStateChange\",\"seq\":13,\"vm_id\":1,\"vm\":\"web\",\"state\":\"Running\",\"state_code\":5}\n");
	result_free(&r);
	free(f);
}

static void test_run_console_dump(void **state)
{
	struct fake *f = fake_new();
	struct result r;

	(void)state;
	RUN(f, &r, "console", "web", "--dump");
	assert_int_equal(r.rc, VMMCTL_EXIT_OK);
	assert_string_equal(r.out.buf, "boot ok\r\n\\x1b[31mred\\x1b[0m done\n");
	assert_true(f->executed[API_REQ_CONSOLE_READ] >= 4);
	result_free(&r);
	free(f);

	f = fake_new();
	RUN(f, &r, "console", "web", "--dump", "--json");
	assert_int_equal(r.rc, VMMCTL_EXIT_OK);
	assert_true(json_valid(r.out.buf, false));
	assert_non_null(strstr(r.out.buf, "\"data\":\"boot ok\\r\\n\\u001b[31mred\\u001b[0m done\\n\""));
	result_free(&r);
	free(f);

	f = fake_new();
	RUN(f, &r, "console", "web", "--dump", "--raw");
	assert_int_equal(r.rc, VMMCTL_EXIT_OK);
	assert_string_equal(r.out.buf, console_text);
	result_free(&r);
	free(f);
}

static void test_key_and_hex(void **state)
{
	uint8_t key[64];
	size_t n;
	char err[256], path[] = "/tmp/vmmctl-key-XXXXXX";
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "00112233445566778899aabbccddeeff\n", 33), 33);
	close(fd);
	assert_int_equal(vmmctl_read_key(path, key, sizeof(key), &n, err, sizeof(err)), 0);
	assert_int_equal(n, 16);
	assert_int_equal(key[15], 0xff);
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "0011zz", 6), 6);
	close(fd);
	assert_int_equal(vmmctl_read_key(path, key, sizeof(key), &n, err, sizeof(err)), -1);
	unlink(path);
	assert_int_equal(vmmctl_read_key(path, key, sizeof(key), &n, err, sizeof(err)), -1);
	assert_false(vmmctl_parse_hex("abc", key, sizeof(key), &n));
	uint8_t st;

	assert_true(vmmctl_state_parse("turnedoff", &st));
	assert_int_equal(st, 1);
	assert_true(vmmctl_state_parse("6", &st));
	assert_false(vmmctl_state_parse("0", &st));
	assert_false(vmmctl_state_parse("256", &st));

	char out[16];

	vmmctl_safe(out, sizeof(out), (const uint8_t *)"\x1b\x1b\x1b\x1b\x1b", 5);
	assert_string_equal(out, "\\x1b\\x1b\\x1b...");
}

/* exec:COMMAND: the program's stdout is the line's input, its stdin the output. */
static void test_open_exec(void **state)
{
	char err[256], buf[16] = { 0 };
	size_t got = 0;

	(void)state;
	int fd = vmmctl_open("exec:cat", 115200, 1000, err, sizeof(err));
	assert_true(fd >= 0);
	assert_true(vmmctl_write_all(fd, "ping", 4));
	for (int tries = 0; got < 4 && tries < 500; tries++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 10) > 0) {
			ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
			if (n > 0)
				got += (size_t)n;
		}
	}
	assert_string_equal(buf, "ping");
	close(fd);
	assert_int_equal(vmmctl_open("exec:", 115200, 1000, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "exec:COMMAND"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_hmac_vectors),
		cmocka_unit_test(test_parse_create_payload),
		cmocka_unit_test(test_parse_every_subcommand),
		cmocka_unit_test(test_parse_errors_and_globals),
		cmocka_unit_test(test_json_escapes_hostile_strings),
		cmocka_unit_test(test_tables_and_merge),
		cmocka_unit_test(test_event_and_error_printing),
		cmocka_unit_test(test_session_retry_same_id_runs_once),
		cmocka_unit_test(test_session_timeout),
		cmocka_unit_test(test_session_noise_and_duplicates),
		cmocka_unit_test(test_session_interbyte_timeout),
		cmocka_unit_test(test_session_hang_up_mid_frame),
		cmocka_unit_test(test_run_list_paged_json),
		cmocka_unit_test(test_run_errors_and_exit_codes),
		cmocka_unit_test(test_run_auth),
		cmocka_unit_test(test_run_events_follow_and_wait),
		cmocka_unit_test(test_run_save_follows_its_events),
		cmocka_unit_test(test_run_events_follow),
		cmocka_unit_test(test_run_console_dump),
		cmocka_unit_test(test_key_and_hex),
		cmocka_unit_test(test_open_exec),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
