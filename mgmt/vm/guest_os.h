/*
 * IVMGuestOS in the management VM, through the guest agent on each VM's
 * virtio-console port (mgmt/vm/guest_os.c, docs/guest-agent.md).
 */
#ifndef MGMT_VM_GUEST_OS_H
#define MGMT_VM_GUEST_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True for the requests guest_os_request answers (the IVMGuestOS ones). */
bool guest_os_handles(uint16_t request);

/*
 * Answers one of them: the answer's TLVs in out[0..*len) and API_E_OK,
 * or an error answer and its code. Returns within the call's timeout
 * whatever the guest does.
 */
uint16_t guest_os_request(uint16_t request, const uint8_t *payload, size_t len, uint8_t *out,
			  size_t *out_len);

/* From the main loop: heartbeat pings sent every few seconds, answers collected. */
void guest_os_poll(void);

/* Bytes read from vm's agent port outside a request: a ping's answer, perhaps. */
void guest_os_poll_bytes(const char *vm, const uint8_t *p, size_t n);

#endif
