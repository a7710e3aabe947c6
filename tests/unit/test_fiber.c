/*
 * Fibers (lib/fiber.c): a fiber keeps its locals and callee-saved state
 * across yields, several interleave in the order they are resumed, one
 * that finished is never run again, and a fiber's first frame meets the
 * ABI's 16-byte stack alignment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lib/fiber.h"

#define STACK_SIZE (64 * 1024)

struct counter {
	struct fiber fiber;
	int id;
	int steps;
	char *trace;                    /* shared: each step appends its id */
	size_t *trace_len;
};

static void count(void *arg)
{
	struct counter *c = arg;
	/* Live across the yields: kept in callee-saved registers or on this stack. */
	volatile unsigned long sum = 0;

	for (int i = 0; i < c->steps; i++) {
		sum += (unsigned long)i;
		c->trace[(*c->trace_len)++] = (char)('0' + c->id);
		fiber_yield(&c->fiber);
	}
	assert_int_equal(sum, (unsigned long)c->steps * (unsigned long)(c->steps - 1) / 2);
}

static void test_interleave(void **state)
{
	char trace[32] = { 0 };
	size_t len = 0;
	struct counter c[3];
	void *stacks[3];

	(void)state;
	for (int i = 0; i < 3; i++) {
		stacks[i] = malloc(STACK_SIZE);
		c[i] = (struct counter){ .id = i, .steps = i + 1, .trace = trace, .trace_len = &len };
		fiber_init(&c[i].fiber, stacks[i], STACK_SIZE, count, &c[i]);
	}
	for (int round = 0; round < 4; round++)
		for (int i = 0; i < 3; i++)
			fiber_resume(&c[i].fiber);
	/* Round by round: fiber i yields i + 1 times, then finishes. */
	assert_string_equal(trace, "012122");
	for (int i = 0; i < 3; i++) {
		assert_true(c[i].fiber.finished);
		assert_false(fiber_resume(&c[i].fiber));
		free(stacks[i]);
	}
}

static void once(void *arg)
{
	(*(int *)arg)++;
}

static void test_finish_without_yield(void **state)
{
	struct fiber f;
	int runs = 0;
	void *stack = malloc(STACK_SIZE);

	(void)state;
	fiber_init(&f, stack, STACK_SIZE, once, &runs);
	assert_false(fiber_resume(&f));
	assert_false(fiber_resume(&f));
	assert_int_equal(runs, 1);
	free(stack);
}

static void alignment(void *arg)
{
	/* A 16-byte-aligned local lives at an aligned address only on an aligned frame. */
	_Alignas(16) volatile char probe[16];

	*(uintptr_t *)arg = (uintptr_t)probe;
}

static void test_alignment(void **state)
{
	struct fiber f;
	uintptr_t at = 1;
	/* An odd base and size: fiber_init rounds the top down. */
	char *stack = malloc(STACK_SIZE + 8);

	(void)state;
	fiber_init(&f, stack + 3, STACK_SIZE - 3, alignment, &at);
	fiber_resume(&f);
	assert_int_equal(at % 16, 0);
	assert_true(at > (uintptr_t)stack && at < (uintptr_t)stack + STACK_SIZE);
	free(stack);
}

static void resume_inside(void *arg)
{
	struct fiber *self = arg;

	/* A fiber cannot resume itself: refused, not a corrupt stack. */
	assert_false(fiber_resume(self));
}

static void test_resume_self(void **state)
{
	struct fiber f;
	void *stack = malloc(STACK_SIZE);

	(void)state;
	fiber_init(&f, stack, STACK_SIZE, resume_inside, &f);
	assert_false(fiber_resume(&f));
	assert_true(f.finished);
	free(stack);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interleave),
		cmocka_unit_test(test_finish_without_yield),
		cmocka_unit_test(test_alignment),
		cmocka_unit_test(test_resume_self),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
