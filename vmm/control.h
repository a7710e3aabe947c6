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
 */
#ifndef VMM_CONTROL_H
#define VMM_CONTROL_H

#include <stddef.h>
#include <stdint.h>

struct boot_info;
struct vm;

/* Networks and adapters of the boot configuration; the image library. */
void control_init(const struct boot_info *bi);

/*
 * Executes request with its payload (len bytes, a copy the caller owns)
 * for the management VM `caller`. Writes the response's TLVs (API_E_OK)
 * or the error frame's TLVs to out (cap >= PROTO_MAX_PAYLOAD) and returns
 * the enum api_error with *out_len set.
 */
uint16_t control_execute(const struct vm *caller, uint16_t request, const uint8_t *payload,
			 size_t len, uint8_t *out, size_t *out_len);

/*
 * Follows the event ring (uptime, last reason, console input) and feeds
 * queued console input to the guests' UARTs; once per scheduler pass.
 */
void control_poll(void);

#endif
