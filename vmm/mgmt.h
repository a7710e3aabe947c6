/*
 * The management VM's side of the hypervisor: its privileged hypercalls
 * (include/abi/hypercall.h, HC_CONTROL and the line calls), the physical serial
 * line it owns (receive side polled here, transmit side shared with the
 * log, vmm/log.h), and the watchdog that restarts it when it dies.
 * docs/management.md describes the design.
 */
#ifndef VMM_MGMT_H
#define VMM_MGMT_H

#include <stdbool.h>
#include <stdint.h>

struct boot_info;
struct vcpu;

/* Finds the VM with role = management; without one the line is the log's alone. */
void mgmt_init(const struct boot_info *bi);

/* HC_CONTROL .. HC_MGMT_INFO from vcpu: HC_EPERM unless it is the management VM's. */
long mgmt_hypercall(struct vcpu *vcpu, uint64_t nr, uint64_t a, uint64_t b, uint64_t c);

/*
 * Once per scheduler pass, between vCPU runs: drains the UART's receive
 * FIFO, executes a deferred HC_CONTROL, wakes the management VM when it
 * has something to do, and restarts it when it died. Returns true when it
 * woke it (an idle scheduler then stops waiting).
 */
bool mgmt_poll(void);

/* True while a management VM exists: the line must be polled, never left idle. */
bool mgmt_line_active(void);

/*
 * The longest slice any vCPU may run while the line is active: the UART's
 * 16-byte receive FIFO fills in 1.4 ms at 115200 baud and is only drained
 * between slices.
 */
uint64_t mgmt_slice_limit(uint64_t slice_tsc);

/* Control hypercalls refused to a VM (by id), and to all VMs. */
uint32_t mgmt_denied(unsigned vm_id);
uint32_t mgmt_denied_total(void);

#endif
