/*
 * The guest agent (mgmt/additions/vmm_agent.c) as a host sees it: the
 * built binary runs with --stdio on two pipes, a fresh one per test, and
 * is sent QGA requests, good and hostile; its replies are read with
 * lib/json.c. The agent runs on this machine, so the tests stay clear of
 * guest-shutdown and guest-set-time with a time.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/base64.h"
#include "lib/json.h"

#ifndef VMM_AGENT
#define VMM_AGENT "build/additions/vmm-agent"
#endif

#define TIMEOUT_MS 10000
#define REQUEST_MAX (64 * 1024)
#define CAPTURE_MAX (64 * 1024)

static pid_t agent;
static int to_agent = -1, from_agent = -1;
/* What the agent wrote and the tests have not taken yet. */
static char inbuf[1 << 20];
static size_t inlen;
/* The reply being looked at: doc points into it. */
static char line[1 << 20];
static struct json_token tok[8192];
static struct json_doc doc;

static int start_agent(void **state)
{
	int in[2], out[2];

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	if (pipe(in) < 0 || pipe(out) < 0)
		return -1;
	agent = fork();
	if (agent == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		execl(VMM_AGENT, "vmm-agent", "--stdio", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	to_agent = in[1];
	from_agent = out[0];
	fcntl(to_agent, F_SETFL, O_NONBLOCK);
	inlen = 0;
	return agent > 0 ? 0 : -1;
}

/* The agent ends at the end of its input; it must not have crashed before. */
static int stop_agent(void **state)
{
	int status = 0;

	(void)state;
	close(to_agent);
	close(from_agent);
	for (int i = 0; i < TIMEOUT_MS / 10; i++) {
		if (waitpid(agent, &status, WNOHANG) == agent)
			return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
		usleep(10000);
	}
	kill(agent, SIGKILL);
	waitpid(agent, NULL, 0);
	return -1;
}

/* Reads what the agent has written into inbuf; false after TIMEOUT_MS without a byte. */
static bool take_output(int timeout)
{
	struct pollfd pfd = { .fd = from_agent, .events = POLLIN };
	ssize_t n;

	if (poll(&pfd, 1, timeout) <= 0)
		return false;
	n = read(from_agent, inbuf + inlen, sizeof(inbuf) - inlen);
	assert_true(n > 0);
	inlen += (size_t)n;
	return true;
}

/* Writes all of p; meanwhile takes the replies in, so neither side waits on the other. */
static void send_bytes(const void *p, size_t n)
{
	const char *s = p;

	while (n) {
		struct pollfd pfd[2] = { { .fd = to_agent, .events = POLLOUT },
					 { .fd = from_agent, .events = POLLIN } };
		ssize_t k;

		assert_true(poll(pfd, 2, TIMEOUT_MS) > 0);
		if (pfd[1].revents)
			assert_true(take_output(0));
		if (!pfd[0].revents)
			continue;
		k = write(to_agent, s, n);
		assert_true(k > 0 || errno == EAGAIN);
		if (k > 0) {
			s += k;
			n -= (size_t)k;
		}
	}
}

static void send_text(const char *s)
{
	send_bytes(s, strlen(s));
}

static __attribute__((format(printf, 1, 2))) void request(const char *fmt, ...)
{
	static char text[REQUEST_MAX + 2];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text) - 1, fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(text) - 1);
	text[n] = '\n';
	send_bytes(text, (size_t)n + 1);
}

static uint8_t peek_byte(void)
{
	while (inlen == 0)
		assert_true(take_output(TIMEOUT_MS));
	return (uint8_t)inbuf[0];
}

static uint8_t next_byte(void)
{
	uint8_t b = peek_byte();

	memmove(inbuf, inbuf + 1, --inlen);
	return b;
}

/* The next reply line, parsed into doc; its root is an object. */
static void next_reply(void)
{
	char *nl;
	size_t n;

	while (!(nl = memchr(inbuf, '\n', inlen)))
		assert_true(take_output(TIMEOUT_MS));
	n = (size_t)(nl - inbuf);
	memcpy(line, inbuf, n);
	line[n] = '\0';
	memmove(inbuf, nl + 1, inlen - n - 1);
	inlen -= n + 1;
	assert_int_equal(json_parse(&doc, line, n, tok, sizeof(tok) / sizeof(tok[0])), JSON_OK);
	assert_int_equal(tok[0].type, JSON_OBJECT);
}

/* The next reply must be a success: returns the token of its "return". */
static int expect_return(void)
{
	int ret;

	next_reply();
	ret = json_get(&doc, 0, "return");
	if (ret < 0)
		fail_msg("expected a return, got %s", line);
	return ret;
}

static void expect_error(const char *class, const char *desc)
{
	int err;

	next_reply();
	err = json_get(&doc, 0, "error");
	if (err < 0)
		fail_msg("expected an error, got %s", line);
	assert_true(json_string_is(&doc, json_get(&doc, err, "class"), class));
	if (desc && !json_string_is(&doc, json_get(&doc, err, "desc"), desc))
		fail_msg("expected \"%s\", got %s", desc, line);
}

static void expect_empty_return(void)
{
	int ret = expect_return();

	assert_int_equal(tok[ret].type, JSON_OBJECT);
	assert_int_equal(tok[ret].count, 0);
}

static int64_t int_member(int obj, const char *key)
{
	int64_t v;

	assert_true(json_int(&doc, json_get(&doc, obj, key), &v));
	return v;
}

static bool bool_member(int obj, const char *key)
{
	bool v;

	assert_true(json_bool(&doc, json_get(&doc, obj, key), &v));
	return v;
}

/* The base64 string at obj.key, decoded into out; -1 when absent. */
static long base64_member(int obj, const char *key, uint8_t *out, size_t cap)
{
	static char text[4 * CAPTURE_MAX];
	int t = json_get(&doc, obj, key);
	long n;

	if (t < 0)
		return -1;
	n = json_string(&doc, t, text, sizeof(text));
	assert_true(n >= 0);
	n = base64_decode(text, (size_t)n, out, cap);
	assert_true(n >= 0);
	return n;
}

static void test_sync_delimited(void **state)
{
	int ret;

	(void)state;
	send_text("\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":987654321}}\n");
	assert_int_equal(next_byte(), 0xff);
	ret = expect_return();
	assert_int_equal(int_member(0, "return"), 987654321);
	assert_int_equal(tok[ret].type, JSON_NUMBER);

	/* guest-sync has no sentinel; ids span int64_t. */
	request("{\"execute\":\"guest-sync\",\"arguments\":{\"id\":-9223372036854775808}}");
	assert_int_equal(peek_byte(), '{');
	expect_return();
	assert_true(int_member(0, "return") == INT64_MIN);
}

static void test_ping_and_id(void **state)
{
	(void)state;
	request("{\"execute\":\"guest-ping\"}");
	expect_empty_return();
	assert_int_equal(json_get(&doc, 0, "id"), -1);
	request("{\"execute\":\"guest-ping\",\"arguments\":{}}");
	expect_empty_return();

	request("{\"id\":\"abc\",\"execute\":\"guest-ping\"}");
	expect_empty_return();
	assert_true(json_string_is(&doc, json_get(&doc, 0, "id"), "abc"));
	request("{\"execute\":\"guest-ping\",\"id\":42}");
	expect_empty_return();
	assert_int_equal(int_member(0, "id"), 42);
	request("{\"execute\":\"guest-ping\",\"id\":\"a\\\"b\\u00e9\\n\"}");
	expect_empty_return();
	assert_true(json_string_is(&doc, json_get(&doc, 0, "id"), "a\"b\xc3\xa9\n"));

	/* Errors carry the id too. */
	request("{\"execute\":\"guest-nope\",\"id\":7}");
	expect_error("CommandNotFound", "The command guest-nope has not been found");
	assert_int_equal(int_member(0, "id"), 7);
	request("{\"execute\":\"guest-sync\",\"id\":\"s\"}");
	expect_error("GenericError", "Parameter 'id' is missing");
	assert_true(json_string_is(&doc, json_get(&doc, 0, "id"), "s"));
	/* What the agent could not echo exactly is refused. */
	request("{\"execute\":\"guest-ping\",\"id\":[1]}");
	expect_error("GenericError", "QMP input member 'id' must be a string or an integer");
	request("{\"execute\":\"guest-ping\",\"id\":1.5}");
	expect_error("GenericError", NULL);
	request("{\"execute\":\"guest-ping\",\"id\":\"a\\u0000\"}");
	expect_error("GenericError", NULL);
}

static void test_info(void **state)
{
	int ret, list, shutdown = -1, exec = -1;

	(void)state;
	request("{\"execute\":\"guest-info\"}");
	ret = expect_return();
	assert_true(json_string_is(&doc, json_get(&doc, ret, "version"), "vmm-agent 1.0"));
	list = json_get(&doc, ret, "supported_commands");
	assert_int_equal(tok[list].type, JSON_ARRAY);
	assert_true(tok[list].count >= 16);
	for (uint32_t i = 0; i < tok[list].count; i++) {
		int cmd = json_index(&doc, list, i);

		assert_true(bool_member(cmd, "enabled"));
		if (json_string_is(&doc, json_get(&doc, cmd, "name"), "guest-shutdown"))
			shutdown = cmd;
		if (json_string_is(&doc, json_get(&doc, cmd, "name"), "guest-exec"))
			exec = cmd;
	}
	assert_true(shutdown >= 0 && exec >= 0);
	assert_false(bool_member(shutdown, "success-response"));
	assert_true(bool_member(exec, "success-response"));
}

static void test_unknown_command(void **state)
{
	(void)state;
	request("{\"execute\":\"guest-fsfreeze-freeze\"}");
	expect_error("CommandNotFound", "The command guest-fsfreeze-freeze has not been found");
	/* A long hostile name is cut short in the message. */
	request("{\"execute\":\"%0200d\"}", 0);
	expect_error("CommandNotFound", NULL);
	assert_true(strlen(line) < 200);
}

static void test_malformed_then_good(void **state)
{
	static const char *const bad[] = {
		"{\"execute\": }", "{\"execute\":\"guest-ping\",}", "[1,2]", "\"str\"",
		"garbage words",
		"{\"execute\":\"guest-ping\" \"x\"}", "}", "]", "{\"execute\":\"guest-ping\n",
		"{\"execute\":\"guest-ping\",\"arguments\":[]}", "{\"arguments\":{}}",
		"{\"execute\":1}", "{\"execute\":\"guest-ping\",\"extra\":1}",
		"{\"execute\":\"guest-ping\",\"execute\":\"guest-ping\"}", "{}",
		"{\"execute\":\"guest-ping\"}}",
		"{\"execute\":\"guest-ping\",\"arguments\":{\"x\":1}}",
		"{\"execute\":\"guest-sync\",\"arguments\":{\"id\":\"1\"}}",
		"{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1.0}}",
		"{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1,\"id\":2}}",
		"{\"execute\":\"guest-sync\",\"arguments\":{\"id\":18446744073709551616}}",
		"{\"execute\":\"guest-exec\",\"arguments\":{\"path\":\"true\",\"arg\":[\"a\",1]}}",
		"{\"execute\":\"guest-exec\",\"arguments\":{\"path\":\"true\",\"capture-output\":1}}",
		"{\"execute\":\"guest-exec\",\"arguments\":{\"path\":\"true\",\"input-data\":\"!!\"}}",
		"{\"execute\":\"guest-exec\",\"arguments\":{\"path\":\"/bin/t\\u0000rue\"}}",
		"{\"execute\":\"guest-shutdown\",\"arguments\":{\"mode\":\"sleep\"}}",
		"{\"execute\":\"guest-set-time\",\"arguments\":{\"time\":-1}}",
	};
	char deep[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		request("%s", bad[i]);
		/* "}}" is a request and then a stray brace: two errors, the first a success. */
		if (strcmp(bad[i], "{\"execute\":\"guest-ping\"}}") == 0)
			expect_empty_return();
		expect_error("GenericError", NULL);
		request("{\"execute\":\"guest-ping\",\"id\":%zu}", i);
		expect_empty_return();
		assert_int_equal(int_member(0, "id"), i);
	}
	request("{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1,\"x\":2}}");
	expect_error("GenericError", "Parameter 'x' is unexpected");
	request("{\"execute\":\"guest-sync\",\"arguments\":{\"id\":\"1\"}}");
	expect_error("GenericError", "Invalid parameter type for 'id', expected: integer");
	request("{\"execute\":\"guest-ping\",\"arguments\":{}, \"bogus\":1}");
	expect_error("GenericError", "QMP input member 'bogus' is unexpected");

	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	deep[200] = '\0';
	request("%s", deep);
	expect_error("GenericError", "JSON parse error, nested too deeply");
	request("{\"execute\":\"guest-ping\"}");
	expect_empty_return();
}

static void test_0xff_resets(void **state)
{
	(void)state;
	send_text("{\"execute\":\"guest-ping\",\"id\":1");
	send_text("\xff{\"execute\":\"guest-ping\",\"id\":2}\n");
	expect_empty_return();
	assert_int_equal(int_member(0, "id"), 2);
	/* Inside a string, in garbage, twice in a row. */
	send_text("{\"execute\":\"guest-p\xff\xff{\"execute\":\"guest-ping\",\"id\":3}\n");
	expect_empty_return();
	assert_int_equal(int_member(0, "id"), 3);
	send_text("garbage \xff{\"execute\":\"guest-ping\",\"id\":4}\n");
	expect_empty_return();
	assert_int_equal(int_member(0, "id"), 4);
	/* Nothing else came of the dropped parts. */
	request("{\"execute\":\"guest-ping\",\"id\":5}");
	expect_empty_return();
	assert_int_equal(int_member(0, "id"), 5);
}

static void test_too_long(void **state)
{
	static char big[REQUEST_MAX + 100];
	const char *head = "{\"execute\":\"guest-ping\"";
	size_t n;

	(void)state;
	/* Exactly REQUEST_MAX bytes: white space inside the object. */
	n = strlen(head);
	memcpy(big, head, n);
	memset(big + n, ' ', REQUEST_MAX - n - 1);
	big[REQUEST_MAX - 1] = '}';
	send_bytes(big, REQUEST_MAX);
	expect_empty_return();
	/* One byte more. */
	big[REQUEST_MAX - 1] = ' ';
	big[REQUEST_MAX] = '}';
	send_bytes(big, REQUEST_MAX + 1);
	expect_error("GenericError", "request too long");
	request("{\"execute\":\"guest-ping\",\"id\":1}");
	expect_empty_return();
	assert_int_equal(int_member(0, "id"), 1);

	/* A long string argument: skipped to the request's end, braces in it or not. */
	send_text("{\"execute\":\"guest-ping\",\"arguments\":{\"x\":\"");
	memset(big, '}', sizeof(big));
	send_bytes(big, sizeof(big));
	send_text("\"}}\n{\"execute\":\"guest-ping\",\"id\":2}\n");
	expect_error("GenericError", "request too long");
	expect_empty_return();
	assert_int_equal(int_member(0, "id"), 2);

	/* A long line of garbage, and a long request cut by 0xFF. */
	memset(big, 'x', sizeof(big));
	send_bytes(big, sizeof(big));
	send_text("\n{\"execute\":\"guest-ping\",\"id\":3}\n");
	expect_error("GenericError", "request too long");
	expect_empty_return();
	assert_int_equal(int_member(0, "id"), 3);
	send_text("{\"execute\":\"guest-ping\",\"arguments\":{\"x\":[");
	memset(big, '[', sizeof(big));
	send_bytes(big, sizeof(big));
	send_text("\xff{\"execute\":\"guest-ping\",\"id\":4}\n");
	expect_error("GenericError", "request too long");
	expect_empty_return();
	assert_int_equal(int_member(0, "id"), 4);
}

/* guest-exec of a request's arguments: the pid. */
static int64_t exec(const char *arguments)
{
	int ret;

	request("{\"execute\":\"guest-exec\",\"arguments\":%s}", arguments);
	ret = expect_return();
	return int_member(ret, "pid");
}

/* Polls guest-exec-status until the process has exited: returns the "return" token. */
static int wait_exited(int64_t pid)
{
	for (int i = 0; i < TIMEOUT_MS / 10; i++) {
		int ret;

		request("{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":%lld}}",
			(long long)pid);
		ret = expect_return();
		if (bool_member(ret, "exited"))
			return ret;
		assert_int_equal(tok[ret].count, 1);
		usleep(10000);
	}
	fail_msg("process %lld did not exit", (long long)pid);
	return -1;
}

static void test_exec_capture(void **state)
{
	static uint8_t out[CAPTURE_MAX];
	int64_t pid;
	int ret;

	(void)state;
	pid = exec("{\"path\":\"/bin/sh\",\"arg\":[\"-c\",\"echo out; echo err >&2; exit 3\"],"
		   "\"capture-output\":true}");
	assert_true(pid > 0);
	ret = wait_exited(pid);
	assert_int_equal(int_member(ret, "exitcode"), 3);
	assert_int_equal(json_get(&doc, ret, "signal"), -1);
	assert_true(json_string_is(&doc, json_get(&doc, ret, "out-data"), "b3V0Cg=="));
	assert_true(json_string_is(&doc, json_get(&doc, ret, "err-data"), "ZXJyCg=="));
	assert_int_equal(json_get(&doc, ret, "out-truncated"), -1);
	assert_int_equal(json_get(&doc, ret, "err-truncated"), -1);
	/* Reported as exited: forgotten. */
	request("{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":%lld}}", (long long)pid);
	expect_error("GenericError", "Invalid parameter 'pid'");

	/* Input, the environment given, PATH searched, no capture. */
	pid = exec("{\"path\":\"cat\",\"input-data\":\"aGVsbG8KAHdvcmxk\","
		   "\"capture-output\":true}");
	ret = wait_exited(pid);
	assert_int_equal(base64_member(ret, "out-data", out, sizeof(out)), 12);
	assert_memory_equal(out, "hello\n\0world", 12);
	pid = exec("{\"path\":\"/bin/sh\",\"arg\":[\"-c\",\"echo $FOO; exit 0\"],"
		   "\"env\":[\"FOO=b\\u00e4r\"],\"capture-output\":true}");
	ret = wait_exited(pid);
	assert_int_equal(int_member(ret, "exitcode"), 0);
	assert_int_equal(base64_member(ret, "out-data", out, sizeof(out)), 5);
	assert_memory_equal(out, "b\xc3\xa4r\n", 5);
	pid = exec("{\"path\":\"/bin/sh\",\"arg\":[\"-c\",\"echo lost; exit 1\"]}");
	ret = wait_exited(pid);
	assert_int_equal(int_member(ret, "exitcode"), 1);
	assert_int_equal(json_get(&doc, ret, "out-data"), -1);
	/* Empty input-data: the child sees the end of its input. */
	pid = exec("{\"path\":\"cat\",\"input-data\":\"\",\"capture-output\":true}");
	ret = wait_exited(pid);
	assert_int_equal(int_member(ret, "exitcode"), 0);

	request("{\"execute\":\"guest-exec\",\"arguments\":{\"path\":\"/nonexistent/x\"}}");
	expect_error("GenericError",
		     "Failed to execute child process '/nonexistent/x': No such file or directory");
	request("{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":0}}");
	expect_error("GenericError", "Invalid parameter 'pid'");
	request("{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":-1}}");
	expect_error("GenericError", "Invalid parameter 'pid'");
}

static void test_exec_truncated(void **state)
{
	static uint8_t out[CAPTURE_MAX + 16];
	int64_t pid;
	int ret;

	(void)state;
	pid = exec("{\"path\":\"/bin/sh\","
		   "\"arg\":[\"-c\",\"head -c 102400 /dev/zero | tr '\\\\0' x\"],"
		   "\"capture-output\":true}");
	ret = wait_exited(pid);
	assert_int_equal(int_member(ret, "exitcode"), 0);
	assert_int_equal(base64_member(ret, "out-data", out, sizeof(out)), CAPTURE_MAX);
	for (size_t i = 0; i < CAPTURE_MAX; i++)
		assert_int_equal(out[i], 'x');
	assert_true(bool_member(ret, "out-truncated"));
	assert_int_equal(json_get(&doc, ret, "err-data"), -1);
	assert_int_equal(json_get(&doc, ret, "err-truncated"), -1);
}

static void test_exec_limits(void **state)
{
	int64_t pids[16];
	int ret;

	(void)state;
	for (int i = 0; i < 16; i++)
		pids[i] = exec("{\"path\":\"sleep\",\"arg\":[\"30\"]}");
	request("{\"execute\":\"guest-exec\",\"arguments\":{\"path\":\"true\"}}");
	expect_error("GenericError", NULL);
	for (int i = 0; i < 16; i++)
		assert_int_equal(kill((pid_t)pids[i], SIGKILL), 0);
	for (int i = 0; i < 16; i++) {
		ret = wait_exited(pids[i]);
		assert_int_equal(int_member(ret, "signal"), SIGKILL);
		assert_int_equal(json_get(&doc, ret, "exitcode"), -1);
	}
	ret = wait_exited(exec("{\"path\":\"true\"}"));
	assert_int_equal(int_member(ret, "exitcode"), 0);
}

static int64_t file_open(const char *path, const char *mode)
{
	int64_t v;

	request("{\"execute\":\"guest-file-open\",\"arguments\":{\"path\":\"%s\",\"mode\":\"%s\"}}",
		path, mode);
	assert_true(json_int(&doc, expect_return(), &v));
	return v;
}

static void file_handle_request(const char *command, int64_t handle)
{
	request("{\"execute\":\"%s\",\"arguments\":{\"handle\":%lld}}", command, (long long)handle);
}

static void test_files(void **state)
{
	static char dir[] = "/tmp/vmm-agent-test-XXXXXX", path[64], text[REQUEST_MAX];
	static uint8_t data[64 * 1024];
	int64_t h, more[16];
	int ret;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);

	h = file_open(path, "w");
	assert_true(h >= 1000);
	request("{\"execute\":\"guest-file-write\",\"arguments\":{\"handle\":%lld,"
		"\"buf-b64\":\"aGVsbG8gd29ybGQ=\"}}", (long long)h);
	ret = expect_return();
	assert_int_equal(int_member(ret, "count"), 11);
	assert_false(bool_member(ret, "eof"));
	/* count: part of the buffer; beyond it refused; "\/" unescaped first. */
	request("{\"execute\":\"guest-file-write\",\"arguments\":{\"handle\":%lld,"
		"\"buf-b64\":\"Pz8\\/\",\"count\":2}}", (long long)h);
	assert_int_equal(int_member(expect_return(), "count"), 2);
	request("{\"execute\":\"guest-file-write\",\"arguments\":{\"handle\":%lld,"
		"\"buf-b64\":\"Pz8/\",\"count\":4}}", (long long)h);
	expect_error("GenericError", "value '4' is invalid for argument count");
	request("{\"execute\":\"guest-file-write\",\"arguments\":{\"handle\":%lld,"
		"\"buf-b64\":\"Pz8\"}}", (long long)h);
	expect_error("GenericError", "Parameter 'buf-b64' is not valid base64");
	file_handle_request("guest-file-flush", h);
	expect_empty_return();
	file_handle_request("guest-file-close", h);
	expect_empty_return();
	file_handle_request("guest-file-close", h);
	expect_error("GenericError", NULL);
	file_handle_request("guest-file-read", h);
	expect_error("GenericError", NULL);

	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fread(text, 1, sizeof(text), f), 13);
	fclose(f);
	assert_memory_equal(text, "hello world??", 13);

	h = file_open(path, "r");
	request("{\"execute\":\"guest-file-read\",\"arguments\":{\"handle\":%lld,\"count\":4}}",
		(long long)h);
	ret = expect_return();
	assert_int_equal(int_member(ret, "count"), 4);
	assert_true(json_string_is(&doc, json_get(&doc, ret, "buf-b64"), "aGVsbA=="));
	assert_false(bool_member(ret, "eof"));
	file_handle_request("guest-file-read", h);
	ret = expect_return();
	assert_int_equal(int_member(ret, "count"), 9);
	assert_int_equal(base64_member(ret, "buf-b64", data, sizeof(data)), 9);
	assert_memory_equal(data, "o world??", 9);
	assert_true(bool_member(ret, "eof"));
	request("{\"execute\":\"guest-file-read\",\"arguments\":{\"handle\":%lld,\"count\":-1}}",
		(long long)h);
	expect_error("GenericError", "value '-1' is invalid for argument count");
	file_handle_request("guest-file-close", h);
	expect_empty_return();

	/* Reads are capped at 48 KiB: 60000 bytes written in two requests. */
	h = file_open(path, "w+");
	for (size_t i = 0; i < 30000; i++)
		data[i] = (uint8_t)(i * 7);
	assert_true(base64_encode(data, 30000, text, sizeof(text)) > 0);
	for (int i = 0; i < 2; i++) {
		request("{\"execute\":\"guest-file-write\",\"arguments\":{\"handle\":%lld,"
			"\"buf-b64\":\"%s\"}}", (long long)h, text);
		assert_int_equal(int_member(expect_return(), "count"), 30000);
	}
	file_handle_request("guest-file-close", h);
	expect_empty_return();
	h = file_open(path, "rb");
	request("{\"execute\":\"guest-file-read\",\"arguments\":{\"handle\":%lld,"
		"\"count\":100000}}", (long long)h);
	ret = expect_return();
	assert_int_equal(int_member(ret, "count"), 48 * 1024);
	assert_false(bool_member(ret, "eof"));
	assert_int_equal(base64_member(ret, "buf-b64", data, sizeof(data)), 48 * 1024);
	for (size_t i = 0; i < 48 * 1024; i++)
		assert_int_equal(data[i], (uint8_t)(i % 30000 * 7));
	file_handle_request("guest-file-close", h);
	expect_empty_return();

	/* Modes, missing files, the handle table's limit. */
	request("{\"execute\":\"guest-file-open\",\"arguments\":{\"path\":\"%s\",\"mode\":\"rw\"}}",
		path);
	expect_error("GenericError", "invalid file open mode 'rw'");
	request("{\"execute\":\"guest-file-open\",\"arguments\":{\"path\":\"%s/none\"}}", dir);
	expect_error("GenericError", NULL);
	assert_non_null(strstr(line, "No such file or directory"));
	for (int i = 0; i < 16; i++)
		more[i] = file_open(path, "a");
	request("{\"execute\":\"guest-file-open\",\"arguments\":{\"path\":\"%s\"}}", path);
	expect_error("GenericError", "at most 16 open files");
	for (int i = 0; i < 16; i++) {
		assert_true(i == 0 || more[i] > more[i - 1]);
		file_handle_request("guest-file-close", more[i]);
		expect_empty_return();
	}
	file_handle_request("guest-file-flush", 999);
	expect_error("GenericError", "handle '999' has not been found");

	unlink(path);
	rmdir(dir);
}

static void test_system(void **state)
{
	struct utsname u;
	char host[256] = { 0 };
	int ret;

	(void)state;
	request("{\"execute\":\"guest-get-time\"}");
	ret = expect_return();
	assert_true(llabs(int_member(0, "return") / 1000000000 - (int64_t)time(NULL)) < 60);
	assert_int_equal(tok[ret].type, JSON_NUMBER);

	assert_int_equal(uname(&u), 0);
	request("{\"execute\":\"guest-get-osinfo\"}");
	ret = expect_return();
	assert_true(json_string_is(&doc, json_get(&doc, ret, "kernel-release"), u.release));
	assert_true(json_string_is(&doc, json_get(&doc, ret, "machine"), u.machine));

	assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
	request("{\"execute\":\"guest-get-host-name\"}");
	ret = expect_return();
	assert_true(json_string_is(&doc, json_get(&doc, ret, "host-name"), host));

	/* Without a time: nothing to set. */
	request("{\"execute\":\"guest-set-time\"}");
	expect_empty_return();
}

/* Random bytes (0xFF aside, which would only reset), then a resync: the agent still answers. */
static void test_hostile_stream(void **state)
{
	static uint8_t noise[256 * 1024];
	uint32_t rng = 99;

	(void)state;
	for (size_t i = 0; i < sizeof(noise); i++) {
		rng = rng * 1103515245u + 12345u;
		noise[i] = (uint8_t)(rng >> 16);
		if (noise[i] == 0xff)
			noise[i] = i % 3 ? '{' : '\n';
	}
	for (size_t i = 0; i < sizeof(noise); i += 4096) {
		send_bytes(noise + i, 4096);
		/* Replies to the noise are dropped as they come. */
		inlen = 0;
	}
	send_text("\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":777}}\n");
	while (next_byte() != 0xff)
		;
	expect_return();
	assert_int_equal(int_member(0, "return"), 777);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sync_delimited, start_agent, stop_agent),
		cmocka_unit_test_setup_teardown(test_ping_and_id, start_agent, stop_agent),
		cmocka_unit_test_setup_teardown(test_info, start_agent, stop_agent),
		cmocka_unit_test_setup_teardown(test_unknown_command, start_agent, stop_agent),
		cmocka_unit_test_setup_teardown(test_malformed_then_good, start_agent, stop_agent),
		cmocka_unit_test_setup_teardown(test_0xff_resets, start_agent, stop_agent),
		cmocka_unit_test_setup_teardown(test_too_long, start_agent, stop_agent),
		cmocka_unit_test_setup_teardown(test_exec_capture, start_agent, stop_agent),
		cmocka_unit_test_setup_teardown(test_exec_truncated, start_agent, stop_agent),
		cmocka_unit_test_setup_teardown(test_exec_limits, start_agent, stop_agent),
		cmocka_unit_test_setup_teardown(test_files, start_agent, stop_agent),
		cmocka_unit_test_setup_teardown(test_system, start_agent, stop_agent),
		cmocka_unit_test_setup_teardown(test_hostile_stream, start_agent, stop_agent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
