/* The log ring's admission rule (vmm/log_ring.c): the management line keeps its reserve. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "abi/hypercall.h"
#include "vmm/log_ring.h"

/* docs/protocol.md: the longest frame on the wire, both delimiters included. */
#define MAX_FRAME 1047

static char memory[LOG_RING_SIZE];
static struct log_ring ring;

static int setup(void **state)
{
	(void)state;
	memset(memory, 0x5a, sizeof(memory));
	ring = (struct log_ring){ .buf = memory };
	return 0;
}

/* What log_ring_used says, checked against the indexes it reads. */
static size_t used(void)
{
	assert_true(log_ring_used(&ring) == ring.head - ring.tail);
	return (size_t)log_ring_used(&ring);
}

/* A chatty guest's console lines: 100-byte lines until the log may take no more. */
static unsigned fill_with_log_lines(void)
{
	char line[100];
	unsigned lines = 0;

	memset(line, 'g', sizeof(line));
	line[sizeof(line) - 1] = '\n';
	while (log_ring_put(&ring, line, sizeof(line), LOG_RING_LOG))
		lines++;
	return lines;
}

/* Log lines stop short of the reserve, which then holds management frames and text. */
static void test_log_lines_leave_the_reserve(void **state)
{
	char frame[MAX_FRAME], text[HC_LINE_MAX];

	(void)state;
	assert_true(fill_with_log_lines() > 0);
	assert_true(used() <= LOG_RING_SIZE - LOG_RING_LINE_RESERVE);
	assert_true(used() > LOG_RING_SIZE - LOG_RING_LINE_RESERVE - 101);
	/* The rest up to the limit, then not one byte more of log. */
	memset(text, 'g', sizeof(text));
	assert_true(log_ring_put(&ring, text, LOG_RING_SIZE - LOG_RING_LINE_RESERVE - used(),
				 LOG_RING_LOG));
	assert_int_equal(used(), LOG_RING_SIZE - LOG_RING_LINE_RESERVE);
	assert_false(log_ring_put(&ring, "x", 1, LOG_RING_LOG));
	memset(frame, 'f', sizeof(frame));
	frame[0] = frame[sizeof(frame) - 1] = '\0';
	memset(text, '\n', sizeof(text));
	/* Two of the largest frames and a chunk of LFs only (twice its length) fit. */
	assert_true(log_ring_put(&ring, frame, sizeof(frame), LOG_RING_LINE_FRAME));
	assert_true(log_ring_put(&ring, frame, sizeof(frame), LOG_RING_LINE_FRAME));
	assert_true(log_ring_put(&ring, text, sizeof(text), LOG_RING_LINE_TEXT));
	/* The log still may not, though the ring is now past its limit. */
	assert_false(log_ring_put(&ring, "x", 1, LOG_RING_LOG));
}

/* The management line may fill the whole ring, and no more. */
static void test_line_uses_the_whole_ring(void **state)
{
	char frame[MAX_FRAME];
	unsigned frames = 0;

	(void)state;
	memset(frame, 'f', sizeof(frame));
	while (log_ring_put(&ring, frame, sizeof(frame), LOG_RING_LINE_FRAME))
		frames++;
	assert_int_equal(frames, LOG_RING_SIZE / MAX_FRAME);
	assert_true(log_ring_put(&ring, frame, LOG_RING_SIZE - used(), LOG_RING_LINE_FRAME));
	assert_int_equal(used(), LOG_RING_SIZE);
	assert_false(log_ring_put(&ring, frame, 1, LOG_RING_LINE_FRAME));
}

/* Text gets CR LF and no NUL; frames go byte for byte; all of it in order, across the wrap. */
static void test_conversions_and_order(void **state)
{
	char out[64];

	(void)state;
	ring.head = ring.tail = UINT64_MAX - 3;
	assert_true(log_ring_put(&ring, "a\nb", 3, LOG_RING_LOG));
	assert_true(log_ring_put(&ring, "c\0\n", 3, LOG_RING_LINE_TEXT));
	assert_true(log_ring_put(&ring, "\0d\n\0", 4, LOG_RING_LINE_FRAME));
	assert_int_equal(used(), 4 + 4 + 4);
	assert_int_equal(log_ring_take(&ring, out, 5), 5);
	assert_int_equal(log_ring_take(&ring, out + 5, sizeof(out) - 5), 7);
	assert_memory_equal(out, "a\r\nbc?\r\n\0d\n\0", 12);
	assert_true(log_ring_empty(&ring));
	assert_int_equal(log_ring_take(&ring, out, sizeof(out)), 0);
}

/* Room is counted exactly: a line that needs one byte more than is left is refused whole. */
static void test_exact_room(void **state)
{
	static char big[LOG_RING_SIZE];

	(void)state;
	memset(big, 'x', sizeof(big));
	big[0] = '\n';
	/* One LF: length + 1 bytes. */
	assert_false(log_ring_put(&ring, big, LOG_RING_SIZE - LOG_RING_LINE_RESERVE, LOG_RING_LOG));
	assert_int_equal(used(), 0);
	assert_true(log_ring_put(&ring, big, LOG_RING_SIZE - LOG_RING_LINE_RESERVE - 1,
				 LOG_RING_LOG));
	assert_int_equal(used(), LOG_RING_SIZE - LOG_RING_LINE_RESERVE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_log_lines_leave_the_reserve, setup),
		cmocka_unit_test_setup(test_line_uses_the_whole_ring, setup),
		cmocka_unit_test_setup(test_conversions_and_order, setup),
		cmocka_unit_test_setup(test_exact_room, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
