/*
 * The management API inside the hypervisor: executes one request of
 * include/abi/api.h (its TLV payload as the management VM received it) against
 * the VMs, networks and adapters, and writes the answer's TLVs. The
 * management VM owns the line, the framing, sessions and authentication
 * (mgmt/vm/mgmt_vm.c); everything that changes the machine happens here, in
 * one place, so the shell and the framed mode cannot differ.
 *
 * Requests are executed by the scheduler between two vCPU runs, never
 * inside a VM exit: Startup, Reset and CreateVirtualMachine load other
 * VMs' VMCSs, which would pull the caller's VMCS out from under its exit
 * handler (vmm/mgmt.c defers them).
 *
 * vmm/control.c holds the table of request types with the privilege each
 * needs; the requests themselves are in one file per object
 * (control_host.c, control_vm.c, control_network.c, control_console.c).
 */
#ifndef VMM_CONTROL_H
#define VMM_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct boot_info;
struct vm;

/*
 * What a caller may do, each level including the ones below it. A
 * request type needs one level (control.c's table); a caller below it is
 * answered PERMISSION_DENIED and nothing happens.
 */
enum control_privilege {
	CONTROL_PRIV_NONE,    /* the session's own requests: Hello, Goodbye */
	CONTROL_PRIV_READ,    /* queries: lists, state, statistics, leases, event subscriptions */
	CONTROL_PRIV_OPERATE, /* what runs: VM state changes, the consoles, the guests' OS */
	CONTROL_PRIV_ADMIN,   /* what exists: VMs, networks, adapters and their cabling, DHCP */
};

/*
 * Who asks, and where its answers go. The management VM is the only
 * caller today, with CONTROL_PRIV_ADMIN (vmm/mgmt.c). The structure must
 * outlive the caller's requests: a pending one is answered later.
 */
struct control_caller {
	const struct vm *vm;
	enum control_privilege privilege;
	/*
	 * Receives the answer to request `id` (the caller's number for it):
	 * the response's TLVs when error is API_E_OK, else the error frame's.
	 * Called once per request, from control_execute or, for a request
	 * that waits (docs/protocol.md, "Pending answers"), from control_poll.
	 * The payload is only valid during the call.
	 */
	void (*answer)(uint32_t id, uint16_t error, const uint8_t *payload, size_t len);
};

/* Networks and adapters of the boot configuration; the image library. */
void control_init(const struct boot_info *bi);

/*
 * Executes request with its payload (len bytes, a copy the caller owns,
 * needed only during this call) for caller, who gets the answer through
 * caller->answer, now or from a later control_poll.
 */
void control_execute(const struct control_caller *caller, uint32_t id, uint16_t request,
		     const uint8_t *payload, size_t len);

/*
 * The privilege request needs; false for a request the hypervisor does not
 * execute (unknown, or the management VM's own AuthChallenge/AuthResponse).
 */
bool control_request_privilege(uint16_t request, enum control_privilege *needed);

/*
 * Follows the event ring (uptime, last reason, console input), feeds
 * queued console input to the guests' UARTs and answers the pending
 * requests that can be answered now; once per scheduler pass.
 */
void control_poll(void);

/*
 * True while a transfer's disk is read or written in steps (an export or
 * import with its disk, vmm/control_saved.c): the scheduler does not sleep.
 */
bool control_steps_pending(void);

#endif
