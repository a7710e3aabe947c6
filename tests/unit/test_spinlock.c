/*
 * lib/spinlock.h as a build for several CPUs uses it: mutual exclusion
 * between threads standing in for CPUs. (The one-CPU build's only rule,
 * a held lock traps, is what the hypervisor runs with.)
 */
#define _POSIX_C_SOURCE 200809L /* pthread barriers */
#define VMM_CPUS 4

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>

#include "lib/spinlock.h"

#define THREADS 4
#define ROUNDS 1000000

static struct spinlock lock;
static pthread_barrier_t start; /* all threads race from the same moment */
/* Updated non-atomically in two steps, so an unprotected race shows as a mismatch. */
static volatile uint64_t counter, shadow;

static void *hammer(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&start);
	for (unsigned i = 0; i < ROUNDS; i++) {
		spin_lock(&lock);
		uint64_t c = counter;
		shadow = c + 1;
		counter = shadow;
		spin_unlock(&lock);
	}
	return NULL;
}

static void test_threads_exclude_each_other(void **state)
{
	pthread_t t[THREADS];

	(void)state;
	assert_int_equal(pthread_barrier_init(&start, NULL, THREADS), 0);
	for (unsigned i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
	for (unsigned i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	pthread_barrier_destroy(&start);
	assert_int_equal(counter, (uint64_t)THREADS * ROUNDS);
	assert_false(spin_is_held(&lock));
}

static void test_trylock_refuses_a_held_lock(void **state)
{
	struct spinlock l = { 0 };

	(void)state;
	assert_true(spin_trylock(&l));
	assert_true(spin_is_held(&l));
	assert_false(spin_trylock(&l));
	spin_unlock(&l);
	assert_false(spin_is_held(&l));
	assert_true(spin_trylock(&l));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threads_exclude_each_other),
		cmocka_unit_test(test_trylock_refuses_a_held_lock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
