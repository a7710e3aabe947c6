/*
 * The 6300ESB watchdog (devices/i6300esb.c) driven as Linux's i6300esb
 * driver drives it: esb_initdevice, set_heartbeat, start, keepalive,
 * stop; the unlock sequence; the two stages and the reset; the lock.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "devices/i6300esb.h"

#define MS 1000000ULL

static struct i6300esb w;

static void unlock(uint64_t now)
{
	i6300esb_write(&w, I6300ESB_RELOAD, 2, I6300ESB_UNLOCK1, now);
	i6300esb_write(&w, I6300ESB_RELOAD, 2, I6300ESB_UNLOCK2, now);
}

/* esb_timer_set_heartbeat: seconds << 9 in each stage, then a reload. */
static void set_heartbeat(unsigned seconds, uint64_t now)
{
	unlock(now);
	i6300esb_write(&w, I6300ESB_TIMER1, 4, seconds << 9, now);
	unlock(now);
	i6300esb_write(&w, I6300ESB_TIMER2, 4, seconds << 9, now);
	unlock(now);
	i6300esb_write(&w, I6300ESB_RELOAD, 2, I6300ESB_RELOAD_KICK, now);
}

/* esb_initdevice and esb_timer_start with a 10-s heartbeat. */
static void linux_start(uint64_t now)
{
	i6300esb_config_write(&w, 0x0003, 0, now);
	/* It reads RELOAD behind an unlock (was it the watchdog's reset?), then clears it. */
	unlock(now);
	i6300esb_read(&w, I6300ESB_RELOAD, 2);
	unlock(now);
	i6300esb_write(&w, I6300ESB_RELOAD, 2, I6300ESB_RELOAD_TIMEOUT | I6300ESB_RELOAD_KICK, now);
	set_heartbeat(10, now);
	unlock(now);
	i6300esb_write(&w, I6300ESB_RELOAD, 2, I6300ESB_RELOAD_KICK, now);
	i6300esb_config_write(&w, 0x0003, I6300ESB_LOCK_ENABLE, now);
}

static int setup(void **state)
{
	(void)state;
	i6300esb_init(&w, false);
	return 0;
}

static void test_expires_after_both_stages(void **state)
{
	(void)state;
	linux_start(0);
	/* 5120 ticks of 2^15 * 30 ns each stage: 5.03 s, 10.07 s in all. */
	uint64_t stage = 5120ULL * 32768 * 30;
	assert_int_equal(i6300esb_next_event(&w), stage);
	assert_false(i6300esb_run(&w, stage - 1));
	assert_false(i6300esb_run(&w, stage));
	assert_int_equal(i6300esb_next_event(&w), 2 * stage);
	assert_true(i6300esb_run(&w, 2 * stage));
	assert_int_equal(i6300esb_read(&w, I6300ESB_RELOAD, 2), I6300ESB_RELOAD_TIMEOUT);
	assert_int_equal(i6300esb_next_event(&w), 0);
	/* After the reset the driver finds the TIMEOUT bit: bootstatus CARDRESET; then clears it. */
	i6300esb_init(&w, true);
	assert_int_equal(i6300esb_read(&w, I6300ESB_RELOAD, 2), I6300ESB_RELOAD_TIMEOUT);
	linux_start(0);
	assert_int_equal(i6300esb_read(&w, I6300ESB_RELOAD, 2), 0);
}

/* A preload of 0 still takes time: the catch-up after a long pause ends. */
static void test_zero_preload_terminates(void **state)
{
	(void)state;
	i6300esb_config_write(&w, 0x0003 | I6300ESB_CONFIG_NO_REBOOT | I6300ESB_CONFIG_FREQ,
			      I6300ESB_LOCK_ENABLE, 0);
	assert_false(i6300esb_run(&w, 1000000000000ULL));
	assert_true(i6300esb_next_event(&w) > 1000000000000ULL);
}

static void test_keepalive_restarts_stage_one(void **state)
{
	(void)state;
	linux_start(0);
	for (uint64_t t = 1000 * MS; t < 60000 * MS; t += 4000 * MS) {
		assert_false(i6300esb_run(&w, t));
		unlock(t);
		i6300esb_write(&w, I6300ESB_RELOAD, 2, I6300ESB_RELOAD_KICK, t);
		assert_true(i6300esb_next_event(&w) > t);
	}
}

static void test_reload_needs_the_unlock_sequence(void **state)
{
	(void)state;
	linux_start(0);
	uint64_t first = i6300esb_next_event(&w);
	/* A reload without the sequence, or after a broken one, is ignored. */
	i6300esb_write(&w, I6300ESB_RELOAD, 2, I6300ESB_RELOAD_KICK, 1000 * MS);
	i6300esb_write(&w, I6300ESB_RELOAD, 2, I6300ESB_UNLOCK1, 1000 * MS);
	i6300esb_write(&w, I6300ESB_GINTSR, 4, 0, 1000 * MS);
	i6300esb_write(&w, I6300ESB_RELOAD, 2, I6300ESB_UNLOCK2, 1000 * MS);
	i6300esb_write(&w, I6300ESB_RELOAD, 2, I6300ESB_RELOAD_KICK, 1000 * MS);
	assert_int_equal(i6300esb_next_event(&w), first);
	/* Timers too. */
	i6300esb_write(&w, I6300ESB_TIMER1, 4, 1, 1000 * MS);
	assert_int_equal(w.preload[0], 10 << 9);
}

static void test_stop_and_lock(void **state)
{
	(void)state;
	linux_start(0);
	i6300esb_config_write(&w, 0x0003, 0, 100 * MS);
	assert_int_equal(i6300esb_next_event(&w), 0);
	assert_false(i6300esb_run(&w, 1000000 * MS));
	/* nowayout: enable and lock; disabling then does nothing until reset. */
	i6300esb_config_write(&w, 0x0003, I6300ESB_LOCK_ENABLE | I6300ESB_LOCK_LOCKED, 200 * MS);
	i6300esb_config_write(&w, 0x0003, 0, 300 * MS);
	assert_true(i6300esb_next_event(&w) != 0);
	assert_true(i6300esb_run(&w, 1000000 * MS));
}

static void test_output_off_resets_nothing(void **state)
{
	(void)state;
	linux_start(0);
	i6300esb_config_write(&w, 0x0003 | I6300ESB_CONFIG_NO_REBOOT, I6300ESB_LOCK_ENABLE, 0);
	assert_false(i6300esb_run(&w, 100000 * MS));
	/* Nothing was reset, so nothing says it was. */
	assert_int_equal(i6300esb_read(&w, I6300ESB_RELOAD, 2), 0);
	assert_true(i6300esb_next_event(&w) > 100000 * MS);
	/* The fast clock: 2^5 PCI clocks a tick. */
	i6300esb_config_write(&w, 0x0003 | I6300ESB_CONFIG_FREQ, 0, 0);
	i6300esb_config_write(&w, 0x0003 | I6300ESB_CONFIG_FREQ, I6300ESB_LOCK_ENABLE, 0);
	assert_int_equal(i6300esb_next_event(&w), 5120ULL * 32 * 30);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_expires_after_both_stages, setup),
		cmocka_unit_test_setup(test_keepalive_restarts_stage_one, setup),
		cmocka_unit_test_setup(test_reload_needs_the_unlock_sequence, setup),
		cmocka_unit_test_setup(test_stop_and_lock, setup),
		cmocka_unit_test_setup(test_output_off_resets_nothing, setup),
		cmocka_unit_test_setup(test_zero_preload_terminates, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
