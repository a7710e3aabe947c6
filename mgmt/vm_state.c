#include "abi/vm_state.h"

#include <stddef.h>

#define FROM(s) (1U << (s))

/*
 * Startup from a saved state (TurningOn, Restoring, Running) and Save
 * (Saving, TurningOff, DeleteMachine, TurnedOff) are in the table so the
 * sequences live in one place; the lifecycle code refuses them until
 * save/restore exists.
 */
static const struct vm_transition transitions[VM_OP_COUNT][2] = {
	[VM_OP_STARTUP] = {
		{ FROM(VM_STATE_TURNED_OFF),
		  { VM_STATE_TURNING_ON, VM_STATE_RUNNING }, 2 },
		{ FROM(VM_STATE_SAVED),
		  { VM_STATE_TURNING_ON, VM_STATE_RESTORING, VM_STATE_RUNNING }, 3 },
	},
	[VM_OP_SAVE] = {
		{ FROM(VM_STATE_RUNNING) | FROM(VM_STATE_PAUSED),
		  { VM_STATE_SAVING, VM_STATE_TURNING_OFF, VM_STATE_DELETE_MACHINE,
		    VM_STATE_TURNED_OFF }, 4 },
	},
	[VM_OP_RESET] = {
		{ FROM(VM_STATE_RUNNING) | FROM(VM_STATE_PAUSED),
		  { VM_STATE_TURNING_OFF, VM_STATE_DELETE_MACHINE, VM_STATE_TURNING_ON,
		    VM_STATE_RUNNING }, 4 },
	},
	[VM_OP_PAUSE] = {
		{ FROM(VM_STATE_RUNNING), { VM_STATE_PAUSED }, 1 },
	},
	[VM_OP_RESUME] = {
		{ FROM(VM_STATE_PAUSED), { VM_STATE_RUNNING }, 1 },
	},
	[VM_OP_TURN_OFF] = {
		{ FROM(VM_STATE_RUNNING) | FROM(VM_STATE_PAUSED),
		  { VM_STATE_TURNING_OFF, VM_STATE_DELETE_MACHINE, VM_STATE_TURNED_OFF }, 3 },
	},
	[VM_OP_GUEST_END] = {
		{ FROM(VM_STATE_RUNNING) | FROM(VM_STATE_PAUSED),
		  { VM_STATE_TURNING_OFF, VM_STATE_DELETE_MACHINE, VM_STATE_TURNED_OFF }, 3 },
	},
};

const struct vm_transition *vm_transition_for(enum vm_op op, enum vm_state from)
{
	if ((unsigned)op >= VM_OP_COUNT || (unsigned)from > VM_STATE_DELETE_MACHINE)
		return NULL;
	for (unsigned i = 0; i < 2; i++) {
		const struct vm_transition *t = &transitions[op][i];
		if (t->event_count && (t->valid_from & FROM(from)))
			return t;
	}
	return NULL;
}

const char *vm_state_name(enum vm_state s)
{
	static const char *const names[] = {
		[VM_STATE_INVALID] = "Invalid",
		[VM_STATE_TURNED_OFF] = "TurnedOff",
		[VM_STATE_SAVED] = "Saved",
		[VM_STATE_TURNING_ON] = "TurningOn",
		[VM_STATE_RESTORING] = "Restoring",
		[VM_STATE_RUNNING] = "Running",
		[VM_STATE_PAUSED] = "Paused",
		[VM_STATE_SAVING] = "Saving",
		[VM_STATE_TURNING_OFF] = "TurningOff",
		[VM_STATE_MERGING_DRIVES] = "MergingDrives",
		[VM_STATE_DELETE_MACHINE] = "DeleteMachine",
	};
	return (unsigned)s <= VM_STATE_DELETE_MACHINE ? names[s] : "Invalid";
}

const char *vm_op_name(enum vm_op op)
{
	static const char *const names[] = {
		[VM_OP_STARTUP] = "Startup", [VM_OP_TURN_OFF] = "TurnOff",
		[VM_OP_RESET] = "Reset",     [VM_OP_SAVE] = "Save",
		[VM_OP_PAUSE] = "Pause",     [VM_OP_RESUME] = "Resume",
		[VM_OP_GUEST_END] = "GuestEnd",
	};
	return (unsigned)op < VM_OP_COUNT ? names[op] : "?";
}
