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
struct vm;

/* Finds the VM with role = management; without one the line is the log's alone. */
void mgmt_init(const struct boot_info *bi);

/*
 * The management VM's hypercalls, HC_CONTROL .. HC_MGMT_INFO, with the
 * registers of include/abi/hypercall.h; vmm/hypercall.c's table lets only the
 * management VM make them.
 */
long mgmt_hc_control(struct vcpu *vcpu, uint64_t gpa, uint64_t unused1, uint64_t unused2);
long mgmt_hc_line_write(struct vcpu *vcpu, uint64_t gpa, uint64_t len, uint64_t kind);
long mgmt_hc_line_read(struct vcpu *vcpu, uint64_t gpa, uint64_t cap, uint64_t unused);
long mgmt_hc_events(struct vcpu *vcpu, uint64_t after, uint64_t gpa, uint64_t max);
long mgmt_hc_info(struct vcpu *vcpu, uint64_t gpa, uint64_t unused1, uint64_t unused2);
long mgmt_hc_agent(struct vcpu *vcpu, uint64_t gpa, uint64_t write_gpa, uint64_t read_gpa);

/*
 * A guest's agent port has something for the management VM (bytes,
 * buffers, opened or closed): it is woken to look. ctx is the VM.
 */
void mgmt_agent_notify(void *ctx);

bool mgmt_is_management_vm(const struct vm *vm);
/* A management call from another VM: counted, logged now and then; HC_EPERM. */
long mgmt_refuse(const struct vm *vm, uint64_t nr);

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
