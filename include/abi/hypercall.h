/*
 * The hypercall ABI, shared by the hypervisor and guest code.
 *
 * A guest issues VMCALL with the call number in RAX and up to three
 * arguments in RBX, RCX, RDX; the result comes back in RAX: zero or a
 * positive value on success, a negative HC_E* code on failure. Every other
 * register is preserved. The ABI version is reported by HC_VERSION and by
 * CPUID leaf 0x40000001 (EAX), and changes whenever a call changes.
 * Hypercalls are only available from guest ring 0 (CPL 0): others get
 * HC_EPERM.
 */
#ifndef ABI_HYPERCALL_H
#define ABI_HYPERCALL_H

#define HYPERCALL_ABI_VERSION 3

#include <stdint.h>

/* CPUID leaves of the hypervisor range (0x40000000: max leaf + signature). */
#define CPUID_HV_BASE 0x40000000U
#define CPUID_HV_VERSION 0x40000001U
#define CPUID_HV_SIGNATURE "VMMvmmVMMvmm" /* EBX, ECX, EDX */

/*
 * The upcall: the one interrupt the hypervisor raises in a guest for its
 * own events (today the paravirtual timer). It is delivered like an
 * external interrupt when RFLAGS.IF allows, wakes a halted vCPU, and needs
 * no EOI. Vectors below 32 are the CPU's exceptions and are refused.
 */
enum hypercall {
	HC_VERSION = 0,           /* -> HYPERCALL_ABI_VERSION */
	HC_CONSOLE_WRITE = 1,     /* RBX: guest-physical address, RCX: length (<= 256) */
	HC_SET_UPCALL_VECTOR = 2, /* RBX: vector 32..255, or 0 to turn upcalls off */
	/*
	 * RBX: deadline for one upcall on the guest's TSC, what its RDTSC reads
	 * (at least 100 µs away; it does not run while the VM is paused); 0 cancels.
	 */
	HC_SET_TIMER = 3,
	/*
	 * Control calls (ABI 2): only the management VM (role = management in
	 * the boot configuration) may make them. Any other VM gets HC_EPERM,
	 * nothing else happens, and the attempt is counted and logged
	 * (docs/management.md).
	 */
	HC_CONTROL = 4,           /* RBX: GPA of a struct hc_control -> 0, or HC_E* */
	HC_LINE_WRITE = 5,        /* RBX: GPA, RCX: length (<= HC_LINE_MAX), RDX: HC_LINE_* */
	HC_LINE_READ = 6,         /* RBX: GPA, RCX: room -> bytes read from the line (0: none) */
	HC_EVENTS = 7,            /* RBX: after seq, RCX: GPA, RDX: max -> struct hc_event count */
	HC_MGMT_INFO = 8,         /* RBX: GPA of a struct hc_mgmt_info -> 0 */
	/*
	 * ABI 3. RBX: GPA of a struct hc_agent, RCX: GPA of the bytes to
	 * write, RDX: GPA of the room to read into -> 0, or HC_ENOENT (no
	 * such VM), HC_EFAULT, HC_EINVAL.
	 */
	HC_AGENT = 9,
	HC_COUNT,
};

/*
 * HC_CONTROL: one request of the management API (include/abi/api.h), executed by
 * the hypervisor. The management VM fills version, request, length and
 * payload (the request's TLVs, as on the wire); the hypervisor copies the
 * whole structure once, executes the request, and writes back error
 * (enum api_error), length and payload: the response's TLVs when error is
 * API_E_OK, else the error frame's TLVs (error, message, state...). The
 * result in RAX is 0 when that happened, HC_EFAULT when the structure is
 * not in the caller's RAM, HC_EINVAL for another version or a length over
 * HC_CONTROL_PAYLOAD. Session requests (Hello's auth_required,
 * authentication, event delivery) are the management VM's own business.
 *
 * The answer comes after the call returned: at the next scheduler pass,
 * or later for a request that waits (docs/protocol.md, "Pending
 * answers"). The caller sets error to HC_CONTROL_UNANSWERED before the
 * call and waits (HLT) until it changes; the hypervisor writes it last.
 * Until then HC_CONTROL returns HC_EAGAIN.
 */
#define HC_CONTROL_VERSION 1
#define HC_CONTROL_UNANSWERED 0xffff /* not an enum api_error */
#define HC_CONTROL_PAYLOAD 1024 /* PROTO_MAX_PAYLOAD */

struct hc_control {
	uint16_t version;  /* HC_CONTROL_VERSION */
	uint16_t request;  /* enum api_request */
	uint16_t length;   /* payload bytes, in and out */
	uint16_t error;    /* out: enum api_error */
	uint8_t payload[HC_CONTROL_PAYLOAD];
};
_Static_assert(sizeof(struct hc_control) == 8 + HC_CONTROL_PAYLOAD, "ABI layout");

/*
 * HC_LINE_WRITE: a whole frame (HC_LINE_FRAME: must begin and end with the
 * 0x00 delimiter) or a whole chunk of text (HC_LINE_TEXT: 0x00 becomes '?',
 * LF becomes CR LF) for the physical serial line. It is queued as one
 * piece between two log lines, never inside one (docs/protocol.md, "The
 * line"). Returns the length, or HC_EAGAIN when the console queue has no
 * room for all of it now (nothing was queued; try again after a HLT).
 */
#define HC_LINE_MAX 1100 /* >= PROTO_MAX_WIRE */
#define HC_LINE_TEXT 0
#define HC_LINE_FRAME 1

/*
 * HC_EVENTS: the VM state changes after seq `after`, oldest first. A
 * reader that fell behind the hypervisor's ring sees a gap in seq.
 */
struct hc_event {
	uint64_t seq;
	uint32_t vm_id;
	uint8_t state;     /* enum vm_state */
	uint8_t reserved[3];
	char vm[32];       /* NUL-terminated name */
	char reason[160];  /* NUL-terminated, "" for none */
};
_Static_assert(sizeof(struct hc_event) == 208, "ABI layout");

/*
 * HC_MGMT_INFO: what the management VM needs from the boot configuration
 * and the machine: the TSC rate (for HC_SET_TIMER deadlines and the line's
 * timeouts) and the line's authentication key (auth_key_len 0: none).
 */
#define HC_AUTH_KEY_MAX 64

struct hc_mgmt_info {
	uint64_t tsc_hz;
	uint32_t auth_key_len;
	uint8_t auth_key[HC_AUTH_KEY_MAX];
	uint32_t reserved;
};
_Static_assert(sizeof(struct hc_mgmt_info) == 80, "ABI layout");

/*
 * HC_AGENT: moves bytes between the management VM and one VM's guest
 * agent port (devices/virtio_console.h), writing first, then reading:
 * whole guest writes, as many as fit in read_cap (a write that does not
 * fit waits: read with HC_AGENT_IO_MAX of room, the largest write taken). Bytes
 * go to the guest only while a program there has the port open; what
 * did not fit in its receive buffers is left for a later call (written
 * says how much went in). The guest agent protocol is spoken in the
 * management VM: the hypervisor never parses it (docs/guest-agent.md).
 */
#define HC_AGENT_IO_MAX 65536
#define HC_AGENT_RUNNING 1u  /* the VM is running */
#define HC_AGENT_PORT 2u     /* it has the agent's port (guest_agent = yes) */
#define HC_AGENT_READY 4u    /* its driver set the port up */
#define HC_AGENT_OPEN 8u     /* a program in the guest has the port open */

struct hc_agent {
	char vm[32];        /* in: NUL-terminated name */
	uint32_t write_len; /* in: bytes at RCX, <= HC_AGENT_IO_MAX */
	uint32_t read_cap;  /* in: room at RDX, <= HC_AGENT_IO_MAX */
	uint32_t written;   /* out: bytes the guest's buffers took */
	uint32_t read;      /* out: bytes put at RDX */
	uint32_t status;    /* out: HC_AGENT_* */
	uint32_t reserved;
};
_Static_assert(sizeof(struct hc_agent) == 56, "ABI layout");

#define HC_EPERM (-1L)
#define HC_ENOENT (-2L)
#define HC_EAGAIN (-11L)
#define HC_EFAULT (-14L)
#define HC_EINVAL (-22L)
#define HC_ENOSYS (-38L)

#endif
