/*
 * What the management VM's pieces share (mgmt/vm/mgmt_vm.c): its clock,
 * its sleep, the hypervisor's control calls and the error answer.
 */
#ifndef MGMT_VM_MGMT_VM_H
#define MGMT_VM_MGMT_VM_H

#include <stddef.h>
#include <stdint.h>

uint64_t mgmt_now_ms(void);

/*
 * Sleeps until the hypervisor wakes the VM (line input, an answer, agent
 * bytes) or a tick passes; inside a guest agent call, lets the main loop
 * run until the call's next turn instead.
 */
void mgmt_wait(void);

/* HC_CONTROL: the hypervisor executes the request between two vCPU runs. */
uint16_t mgmt_control(uint16_t request, const uint8_t *payload, size_t len, uint8_t *out,
		      size_t *out_len);

/*
 * An event of the management VM's own (not a hypervisor state change) to
 * whoever follows state events: a frame in framed mode, text in the shell.
 */
void mgmt_guest_event(uint16_t code, const uint8_t *payload, size_t len, const char *text);

/*
 * The answer to a request guest_os_request() took with GUEST_OS_LATER:
 * payload[0..n) is the request's, answer[0..len) its answer with code e.
 * Dropped when the line changed hands since.
 */
void mgmt_answer_later(const void *origin, uint16_t request, const uint8_t *payload, size_t n,
		       uint16_t e, const uint8_t *answer, size_t len);

/* An error answer (ERROR and MESSAGE TLVs) in out; returns error. */
uint16_t mgmt_error(uint8_t *out, size_t *len, uint16_t error, const char *message,
		    uint32_t retry_after_ms);

#endif
