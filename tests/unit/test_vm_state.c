#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "abi/vm_state.h"

/* The sequences of ../shared/seeds/002 ("Virtual Machine State Diagram"). */
static void expect_sequence(enum vm_op op, enum vm_state from, const enum vm_state *want,
			    unsigned n)
{
	const struct vm_transition *t = vm_transition_for(op, from);

	assert_non_null(t);
	assert_int_equal(t->event_count, n);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(t->events[i], want[i]);
}

static void test_sequences_match_the_state_table(void **state)
{
	(void)state;
	expect_sequence(VM_OP_STARTUP, VM_STATE_TURNED_OFF,
			(enum vm_state[]){ VM_STATE_TURNING_ON, VM_STATE_RUNNING }, 2);
	expect_sequence(VM_OP_SAVE, VM_STATE_RUNNING,
			(enum vm_state[]){ VM_STATE_SAVING, VM_STATE_TURNING_OFF,
					   VM_STATE_DELETE_MACHINE, VM_STATE_TURNED_OFF }, 4);
	expect_sequence(VM_OP_STARTUP, VM_STATE_SAVED,
			(enum vm_state[]){ VM_STATE_TURNING_ON, VM_STATE_RESTORING,
					   VM_STATE_RUNNING }, 3);
	expect_sequence(VM_OP_RESET, VM_STATE_RUNNING,
			(enum vm_state[]){ VM_STATE_TURNING_OFF, VM_STATE_DELETE_MACHINE,
					   VM_STATE_TURNING_ON, VM_STATE_RUNNING }, 4);
	expect_sequence(VM_OP_PAUSE, VM_STATE_RUNNING, (enum vm_state[]){ VM_STATE_PAUSED }, 1);
	expect_sequence(VM_OP_RESUME, VM_STATE_PAUSED, (enum vm_state[]){ VM_STATE_RUNNING }, 1);
	expect_sequence(VM_OP_TURN_OFF, VM_STATE_RUNNING,
			(enum vm_state[]){ VM_STATE_TURNING_OFF, VM_STATE_DELETE_MACHINE,
					   VM_STATE_TURNED_OFF }, 3);
	expect_sequence(VM_OP_GUEST_END, VM_STATE_RUNNING,
			(enum vm_state[]){ VM_STATE_TURNING_OFF, VM_STATE_DELETE_MACHINE,
					   VM_STATE_TURNED_OFF }, 3);
}

static void test_paused_vm_can_be_reset_saved_or_turned_off(void **state)
{
	(void)state;
	assert_non_null(vm_transition_for(VM_OP_RESET, VM_STATE_PAUSED));
	assert_non_null(vm_transition_for(VM_OP_SAVE, VM_STATE_PAUSED));
	assert_non_null(vm_transition_for(VM_OP_TURN_OFF, VM_STATE_PAUSED));
}

static void test_invalid_transitions_are_refused(void **state)
{
	(void)state;
	assert_null(vm_transition_for(VM_OP_PAUSE, VM_STATE_TURNED_OFF));
	assert_null(vm_transition_for(VM_OP_STARTUP, VM_STATE_RUNNING));
	assert_null(vm_transition_for(VM_OP_STARTUP, VM_STATE_PAUSED));
	assert_null(vm_transition_for(VM_OP_RESUME, VM_STATE_RUNNING));
	assert_null(vm_transition_for(VM_OP_PAUSE, VM_STATE_PAUSED));
	assert_null(vm_transition_for(VM_OP_TURN_OFF, VM_STATE_TURNED_OFF));
	assert_null(vm_transition_for(VM_OP_RESET, VM_STATE_TURNED_OFF));
	assert_null(vm_transition_for(VM_OP_SAVE, VM_STATE_TURNED_OFF));
	/* Nothing may start from a transient state. */
	for (int op = 0; op < VM_OP_COUNT; op++) {
		assert_null(vm_transition_for(op, VM_STATE_TURNING_ON));
		assert_null(vm_transition_for(op, VM_STATE_TURNING_OFF));
		assert_null(vm_transition_for(op, VM_STATE_DELETE_MACHINE));
		assert_null(vm_transition_for(op, VM_STATE_SAVING));
		assert_null(vm_transition_for(op, VM_STATE_RESTORING));
	}
}

static void test_out_of_range_values_are_refused(void **state)
{
	(void)state;
	assert_null(vm_transition_for(VM_OP_COUNT, VM_STATE_RUNNING));
	assert_null(vm_transition_for((enum vm_op)-1, VM_STATE_RUNNING));
	assert_null(vm_transition_for(VM_OP_PAUSE, (enum vm_state)99));
	assert_string_equal(vm_state_name((enum vm_state)99), "Invalid");
	assert_string_equal(vm_op_name(VM_OP_COUNT), "?");
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(vm_state_name(VM_STATE_TURNED_OFF), "TurnedOff");
	assert_string_equal(vm_state_name(VM_STATE_DELETE_MACHINE), "DeleteMachine");
	assert_string_equal(vm_op_name(VM_OP_TURN_OFF), "TurnOff");
	/* Virtual Server's VMVMState values, which the management API will carry. */
	assert_int_equal(VM_STATE_RUNNING, 5);
	assert_int_equal(VM_STATE_DELETE_MACHINE, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sequences_match_the_state_table),
		cmocka_unit_test(test_paused_vm_can_be_reset_saved_or_turned_off),
		cmocka_unit_test(test_invalid_transitions_are_refused),
		cmocka_unit_test(test_out_of_range_values_are_refused),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests_name("vm_state", tests, NULL, NULL);
}
