/*
 * The VM state machine of the control API, as one table: which operation
 * is valid in which state, and the exact sequence of state-change events it
 * produces (Virtual Server 2005, "Virtual Machine State Diagram"). Plain C
 * with no side effects, so the table is unit-tested on the host and the
 * management API can expose it unchanged.
 */
#ifndef ABI_VM_STATE_H
#define ABI_VM_STATE_H

/* Values follow Virtual Server's VMVMState enumeration. */
enum vm_state {
	VM_STATE_INVALID = 0,
	VM_STATE_TURNED_OFF = 1,
	VM_STATE_SAVED = 2,
	VM_STATE_TURNING_ON = 3,
	VM_STATE_RESTORING = 4,
	VM_STATE_RUNNING = 5,
	VM_STATE_PAUSED = 6,
	VM_STATE_SAVING = 7,
	VM_STATE_TURNING_OFF = 8,
	VM_STATE_MERGING_DRIVES = 9,
	VM_STATE_DELETE_MACHINE = 10,
};

enum vm_op {
	VM_OP_STARTUP,
	VM_OP_TURN_OFF,
	VM_OP_RESET,
	VM_OP_SAVE,
	VM_OP_PAUSE,
	VM_OP_RESUME,
	/* The guest ended itself (power-off port, fatal fault): like TurnOff. */
	VM_OP_GUEST_END,
	VM_OP_COUNT,
};

#define VM_STATE_SEQUENCE_MAX 4

struct vm_transition {
	unsigned valid_from;  /* bit mask of enum vm_state */
	enum vm_state events[VM_STATE_SEQUENCE_MAX];
	unsigned event_count;
};

/*
 * The transition op takes from state `from`, or NULL when op is not valid
 * there (the caller refuses it and changes nothing).
 */
const struct vm_transition *vm_transition_for(enum vm_op op, enum vm_state from);

const char *vm_state_name(enum vm_state state);
const char *vm_op_name(enum vm_op op);

#endif
