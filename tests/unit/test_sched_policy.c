#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/sched_policy.h"

/* The simulated TSC runs at 1 GHz: one tick per ns. */
#define US 1000ULL
#define MS 1000000ULL
#define SECOND 1000000000ULL

static const struct sched_slice_limits limits = { SCHED_SLICE_NS, SCHED_MIN_SLICE_NS,
						  SCHED_AHEAD_SLICE_NS };
static const struct sched_entity in_turn = { 0 };

/*
 * One CPU, two vCPUs: a storm that runs `storm_run` ticks each time it is
 * picked, then asks for a timer in the past and halts; and a busy one that
 * is always runnable and uses every slice it gets. Each switch costs the
 * hypervisor `switch_cost` ticks, charged to nobody. Returns the busy
 * vCPU's share of one simulated second, in per mille.
 */
static unsigned busy_share_beside_storm(uint64_t storm_run, uint64_t switch_cost)
{
	struct sched_entity storm = { 0 }, busy = { 0 };
	struct sched_entity *const entities[2] = { &storm, &busy };
	struct sched_queue queue = { 0, SCHED_WAKE_CREDIT_NS, SCHED_TIMER_LEAD_NS };
	uint64_t now = 0, busy_ran = 0, storm_deadline = 0;
	bool storm_halted = false;

	while (now < SECOND) {
		if (storm_halted && storm_deadline && now >= storm_deadline) {
			storm_halted = false;
			storm.timer_due = true;
			storm_deadline = 0;
		}
		storm.runnable = !storm_halted;
		busy.runnable = true;
		unsigned runnable = 1 + storm.runnable;
		int picked = sched_pick(&queue, entities, 2);
		assert_true(picked >= 0);
		uint64_t ran;
		if (picked == 0) {
			uint64_t slice = sched_slice(&limits, &storm, runnable, now, 0, 0);
			ran = storm_run < slice ? storm_run : slice;
			/* SET_TIMER(past); sti; hlt */
			storm_deadline = sched_timer_deadline(now + ran - 1, now + ran,
							      SCHED_TIMER_FLOOR_NS);
			storm_halted = true;
		} else {
			ran = sched_slice(&limits, &busy, runnable, now, 0, storm_halted ? storm_deadline : 0);
			busy_ran += ran;
		}
		sched_charge(entities[picked], ran);
		now += ran + switch_cost;
	}
	return (unsigned)(busy_ran * 1000 / now);
}

/* The storm of the issue: it halts at once; the busy one must not starve. */
static void test_busy_vcpu_beside_a_halting_timer_storm(void **state)
{
	(void)state;
	unsigned share = busy_share_beside_storm(2 * US, 20 * US);
	print_message("busy share beside a halting storm: %u per mille\n", share);
	assert_true(share >= 450);
}

/*
 * A woken vCPU goes first once, not forever: one that computes 5 ms after
 * each wake-up gets its share, not the CPU.
 */
static void test_woken_vcpu_does_not_take_more_than_its_share(void **state)
{
	(void)state;
	unsigned share = busy_share_beside_storm(5 * MS, 20 * US);
	print_message("busy share beside a storm that computes: %u per mille\n", share);
	assert_true(share >= 450);
}

/* An idle guest's tick is still served first: a sleeper comes back ahead. */
static void test_sleeper_runs_first_with_bounded_credit(void **state)
{
	(void)state;
	struct sched_entity idle = { 0 }, busy = { 0 };
	struct sched_entity *const entities[2] = { &idle, &busy };
	struct sched_queue queue = { 0, SCHED_WAKE_CREDIT_NS, SCHED_TIMER_LEAD_NS };

	idle.runnable = false;
	busy.runnable = true;
	for (int i = 0; i < 100; i++) {
		assert_int_equal(sched_pick(&queue, entities, 2), 1);
		sched_charge(&busy, SCHED_SLICE_NS);
	}
	/*
	 * It slept a second: it runs next, but comes back only the credit
	 * behind the queue as of the last pick (before the busy one's slice).
	 */
	idle.runnable = true;
	assert_int_equal(sched_pick(&queue, entities, 2), 0);
	assert_int_equal(idle.vruntime, busy.vruntime - SCHED_SLICE_NS - SCHED_WAKE_CREDIT_NS);
	sched_charge(&idle, SCHED_SLICE_NS + SCHED_WAKE_CREDIT_NS + 1);
	assert_int_equal(sched_pick(&queue, entities, 2), 1);

	/* Nothing runnable. */
	idle.runnable = busy.runnable = false;
	assert_int_equal(sched_pick(&queue, entities, 2), -1);
}

#define BUSY_NEIGHBOURS 10

/*
 * Issue 20, point 10: a vCPU that spins (it never halts) with a timer due
 * every `period`, beside ten vCPUs that use every slice they get. Returns
 * the longest a due timer waited for its vCPU to run; *share is the
 * spinner's share of the CPU, in per mille.
 */
static uint64_t due_timer_wait(uint64_t period, unsigned *share)
{
	struct sched_entity e[BUSY_NEIGHBOURS + 1] = { 0 };
	struct sched_entity *entities[BUSY_NEIGHBOURS + 1];
	struct sched_queue queue = { 0, SCHED_WAKE_CREDIT_NS, SCHED_TIMER_LEAD_NS };
	uint64_t now = 0, deadline = period, due_at = 0, longest = 0, spinner_ran = 0;
	const unsigned spinner = BUSY_NEIGHBOURS, runnable = BUSY_NEIGHBOURS + 1;

	for (unsigned i = 0; i < runnable; i++) {
		e[i].runnable = true;
		entities[i] = &e[i];
	}
	while (now < SECOND) {
		if (!due_at && now >= deadline) {
			due_at = deadline;
			e[spinner].timer_due = true;
			deadline += period;
		}
		int picked = sched_pick(&queue, entities, runnable);
		uint64_t ran;
		if (picked == (int)spinner) {
			if (due_at && now - due_at > longest)
				longest = now - due_at;
			due_at = 0;
			ran = sched_slice(&limits, &e[spinner], runnable, now, deadline, 0);
			spinner_ran += ran;
		} else {
			ran = sched_slice(&limits, entities[picked], runnable, now, 0,
					  due_at ? 0 : deadline);
		}
		sched_charge(entities[picked], ran);
		now += ran;
	}
	*share = (unsigned)(spinner_ran * 1000 / now);
	return longest;
}

/*
 * At the next scheduling point, within a minimum slice (a due timer goes
 * first, sched_pick), and still at its fair share.
 */
static void test_spinning_vcpu_takes_its_timer_within_a_slice(void **state)
{
	unsigned share;

	(void)state;
	uint64_t wait = due_timer_wait(2 * MS, &share);
	print_message("timer due beside ten busy vCPUs: waited %llu us at most, share %u per mille\n",
		      (unsigned long long)(wait / US), share);
	assert_true(wait <= SCHED_MIN_SLICE_NS);
	assert_true(share >= 80 && share <= 100); /* 1/11: 91 per mille */
}

/*
 * A vCPU whose timer is always due (a periodic local APIC timer at its
 * floor, never halting) goes first only while it is less than a period
 * ahead: the busy one beside it keeps its half.
 */
static void test_always_due_timer_does_not_take_more_than_its_share(void **state)
{
	struct sched_entity storm = { 0 }, busy = { 0 };
	struct sched_entity *const entities[2] = { &storm, &busy };
	struct sched_queue queue = { 0, SCHED_WAKE_CREDIT_NS, SCHED_TIMER_LEAD_NS };
	uint64_t now = 0, ran[2] = { 0, 0 };

	(void)state;
	storm.runnable = busy.runnable = true;
	while (now < SECOND) {
		storm.timer_due = true;
		int picked = sched_pick(&queue, entities, 2);
		assert_true(picked >= 0);
		uint64_t next = now + SCHED_TIMER_FLOOR_NS;
		uint64_t slice = sched_slice(&limits, entities[picked], 2, now, picked == 0 ? next : 0,
					     picked == 0 ? 0 : next);
		sched_charge(entities[picked], slice);
		ran[picked] += slice;
		now += slice;
		assert_true(storm.vruntime <= busy.vruntime + SCHED_TIMER_LEAD_NS + SCHED_MIN_SLICE_NS);
	}
	print_message("busy share beside an always-due timer: %llu per mille\n",
		      (unsigned long long)(ran[1] * 1000 / now));
	assert_true(ran[1] * 1000 / now >= 480);
}

/* The period is shared by the runnable vCPUs, each part no shorter than the floor. */
static void test_slice_is_a_share_of_the_period(void **state)
{
	(void)state;
	uint64_t now = 5 * SECOND;

	assert_int_equal(sched_slice(&limits, &in_turn, 0, now, 0, 0), SCHED_SLICE_NS);
	assert_int_equal(sched_slice(&limits, &in_turn, 2, now, 0, 0), SCHED_SLICE_NS / 2);
	assert_int_equal(sched_slice(&limits, &in_turn, 5, now, 0, 0), SCHED_SLICE_NS / 5);
	assert_int_equal(sched_slice(&limits, &in_turn, 11, now, 0, 0), SCHED_MIN_SLICE_NS);
	assert_int_equal(sched_slice(&limits, &in_turn, 64, now, 0, 0), SCHED_MIN_SLICE_NS);
	/* Its own timer still cuts below the floor. */
	assert_int_equal(sched_slice(&limits, &in_turn, 64, now, now + 200 * US, 0), 200 * US);
	/* Ahead of its turn, it runs only to take its interrupt. */
	const struct sched_entity ahead = { .ahead = true };
	assert_int_equal(sched_slice(&limits, &ahead, 2, now, 0, 0), SCHED_AHEAD_SLICE_NS);
	assert_int_equal(sched_slice(&limits, &ahead, 2, now, now + 50 * US, 0), 50 * US);
}

/* Another VM's timer cuts the slice only down to the floor; its own does not wait. */
static void test_slice_floor(void **state)
{
	(void)state;
	uint64_t now = 5 * SECOND;

	assert_int_equal(sched_slice(&limits, &in_turn, 1, now, 0, 0), SCHED_SLICE_NS);
	assert_int_equal(sched_slice(&limits, &in_turn, 1, now, 0, now + 10), SCHED_MIN_SLICE_NS);
	assert_int_equal(sched_slice(&limits, &in_turn, 1, now, 0, now - 10), SCHED_MIN_SLICE_NS);
	assert_int_equal(sched_slice(&limits, &in_turn, 1, now, 0, now + 3 * MS), 3 * MS);
	assert_int_equal(sched_slice(&limits, &in_turn, 1, now, 0, now + 30 * MS), SCHED_SLICE_NS);
	assert_int_equal(sched_slice(&limits, &in_turn, 1, now, now + 200 * US, now + 10), 200 * US);
	assert_int_equal(sched_slice(&limits, &in_turn, 1, now, now - 5, 0), 1);

	/* A neighbour's timer due every microsecond forces at most 1000 passes a second. */
	unsigned passes = 0;
	for (now = 0; now < SECOND; passes++)
		now += sched_slice(&limits, &in_turn, 1, now, 0, now + US);
	assert_true(passes <= SECOND / SCHED_MIN_SLICE_NS);
}

static void test_timer_deadline_floor(void **state)
{
	(void)state;
	const uint64_t now = 10 * SECOND, floor = SCHED_TIMER_FLOOR_NS;

	assert_int_equal(sched_timer_deadline(0, now, floor), 0);
	assert_int_equal(sched_timer_deadline(1, now, floor), now + floor);
	assert_int_equal(sched_timer_deadline(now, now, floor), now + floor);
	assert_int_equal(sched_timer_deadline(now + 1, now, floor), now + floor);
	assert_int_equal(sched_timer_deadline(now + floor, now, floor), now + floor);
	assert_int_equal(sched_timer_deadline(now + 5 * MS, now, floor), now + 5 * MS);
	assert_int_equal(sched_timer_deadline(UINT64_MAX, now, floor), UINT64_MAX);

	/* A loop of SET_TIMER(past); HLT wakes at most once per floor. */
	unsigned wakes = 0;
	for (uint64_t t = 0; t < SECOND; wakes++)
		t = sched_timer_deadline(t - 1, t, floor);
	assert_true(wakes <= SECOND / floor);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_busy_vcpu_beside_a_halting_timer_storm),
		cmocka_unit_test(test_woken_vcpu_does_not_take_more_than_its_share),
		cmocka_unit_test(test_sleeper_runs_first_with_bounded_credit),
		cmocka_unit_test(test_spinning_vcpu_takes_its_timer_within_a_slice),
		cmocka_unit_test(test_always_due_timer_does_not_take_more_than_its_share),
		cmocka_unit_test(test_slice_is_a_share_of_the_period),
		cmocka_unit_test(test_slice_floor),
		cmocka_unit_test(test_timer_deadline_floor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
