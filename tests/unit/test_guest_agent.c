/*
 * The host side of the guest agent protocol (mgmt/guest_agent.c): what
 * an agent writes split into messages, resynchronised on the sync byte,
 * and read as a reply; hostile streams included.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "mgmt/guest_agent.h"

static uint8_t buf[256];
static struct agent_stream s;
static struct json_token tok[AGENT_REPLY_TOKENS];

/* Feeds text from its start; returns the bytes consumed when a message completed, else -1. */
static long feed(const char *text)
{
	bool complete;
	size_t used = agent_stream_feed(&s, (const uint8_t *)text, strlen(text), &complete);

	return complete ? (long)used : -1;
}

static void test_skips_everything_before_the_sync(void **state)
{
	(void)state;
	agent_stream_init(&s, buf, sizeof(buf));
	agent_stream_expect_sync(&s);
	/* A late answer to an earlier request, then the sync's. */
	assert_int_equal(feed("{\"return\": 5}\n\xff{\"return\": 6}\n"), 28);
	assert_int_equal(s.len, 13);
	assert_memory_equal(buf, "{\"return\": 6}", 13);
	assert_int_equal(s.skipped, 14);
}

static void test_braces_inside_strings_do_not_count(void **state)
{
	const char *text = "\xff {\"return\": {\"a\": \"}{\\\"]\"}} {\"next\": 1}";

	(void)state;
	agent_stream_init(&s, buf, sizeof(buf));
	agent_stream_expect_sync(&s);
	long used = feed(text);
	assert_true(used > 0);
	assert_memory_equal(buf, "{\"return\": {\"a\": \"}{\\\"]\"}}", s.len);
	/* The next message follows from where the first ended. */
	agent_stream_next(&s);
	assert_true(feed(text + used) > 0);
	assert_memory_equal(buf, "{\"next\": 1}", s.len);
}

static void test_message_split_over_reads(void **state)
{
	(void)state;
	agent_stream_init(&s, buf, sizeof(buf));
	agent_stream_expect_sync(&s);
	assert_int_equal(feed("\xff{\"ret"), -1);
	assert_int_equal(feed("urn\": "), -1);
	assert_int_equal(feed("{}}\n"), 3);
	assert_memory_equal(buf, "{\"return\": {}}", s.len);
}

static void test_oversized_message_is_flagged(void **state)
{
	uint8_t small[8];
	bool complete;
	const char *text = "\xff{\"return\": \"a long answer\"}";

	(void)state;
	agent_stream_init(&s, small, sizeof(small));
	agent_stream_expect_sync(&s);
	agent_stream_feed(&s, (const uint8_t *)text, strlen(text), &complete);
	assert_true(complete);
	assert_true(s.overflow);
	assert_int_equal(s.len, sizeof(small));
}

static void test_reads_replies(void **state)
{
	struct json_doc doc;
	char error[64];
	int value;
	int64_t n;

	(void)state;
	static const char ok[] = "{\"return\": {\"pid\": 42}}";
	assert_int_equal(agent_reply_read(&doc, (const uint8_t *)ok, strlen(ok), tok, &value,
					  error, sizeof(error)), AGENT_REPLY_RETURN);
	assert_true(json_int(&doc, json_get(&doc, value, "pid"), &n));
	assert_int_equal(n, 42);
	static const char err[] = "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no such file\"}}";
	assert_int_equal(agent_reply_read(&doc, (const uint8_t *)err, strlen(err), tok, &value,
					  error, sizeof(error)), AGENT_REPLY_ERROR);
	assert_string_equal(error, "no such file");
	static const char class_only[] = "{\"error\": {\"class\": \"CommandNotFound\"}}";
	assert_int_equal(agent_reply_read(&doc, (const uint8_t *)class_only, strlen(class_only),
					  tok, &value, error, sizeof(error)), AGENT_REPLY_ERROR);
	assert_string_equal(error, "CommandNotFound");
	static const char *const bad[] = { "[1]", "{\"neither\": 1}", "{\"error\": 3}", "{\"return\"",
					   "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(agent_reply_read(&doc, (const uint8_t *)bad[i], strlen(bad[i]), tok,
						  &value, error, sizeof(error)),
				 AGENT_REPLY_MALFORMED);
}

static void test_writes_requests(void **state)
{
	char out[128];
	struct json_writer w;

	(void)state;
	agent_request_begin(&w, out, sizeof(out), "guest-exec-status");
	json_key(&w, "pid");
	json_put_int(&w, 7);
	size_t n = agent_request_end(&w);
	assert_int_equal(n, strlen(out));
	assert_string_equal(out, "{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":7}}\n");
	/* No room: no request rather than a cut one. */
	agent_request_begin(&w, out, 20, "guest-exec-status");
	assert_int_equal(agent_request_end(&w), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_skips_everything_before_the_sync),
		cmocka_unit_test(test_braces_inside_strings_do_not_count),
		cmocka_unit_test(test_message_split_over_reads),
		cmocka_unit_test(test_oversized_message_is_flagged),
		cmocka_unit_test(test_reads_replies),
		cmocka_unit_test(test_writes_requests),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
