/*
 * IVMGuestOS in the management VM, through the guest agent on each VM's
 * virtio-console port (mgmt/vm/guest_os.c, docs/guest-agent.md).
 */
#ifndef MGMT_VM_GUEST_OS_H
#define MGMT_VM_GUEST_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* guest_os_request's answer to a request it answers later, when its call ends. */
#define GUEST_OS_LATER 0xffffu
/* What the caller keeps of a request answered later (its frame id, its mode). */
#define GUEST_OS_ORIGIN_MAX 32

/* True for the requests guest_os_request answers (the IVMGuestOS ones). */
bool guest_os_handles(uint16_t request);

/*
 * Answers one of them at once (GetHeartbeat, a bad argument, no agent, a
 * refusal): the answer's TLVs in out[0..*len) and API_E_OK, or an error
 * answer and its code. A request for the agent starts a call and returns
 * GUEST_OS_LATER: mgmt_answer_later() gets its answer, with origin's
 * bytes, within the call's timeout whatever the guest does.
 */
uint16_t guest_os_request(uint16_t request, const uint8_t *payload, size_t len, uint8_t *out,
			  size_t *out_len, const void *origin, size_t origin_size);

/* From the main loop: each call runs until it waits; those that ended are answered. */
void guest_os_run(void);

/* From mgmt_wait(): inside a call, back to the main loop until its next turn (true). */
bool guest_os_yield(void);

/* From the main loop: heartbeat pings sent every few seconds, answers collected. */
void guest_os_poll(void);

#endif
