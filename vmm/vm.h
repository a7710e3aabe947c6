/*
 * Virtual machines and their virtual CPUs, as generic code sees them.
 * Vendor state (the VMCS, the EPT) hangs off opaque pointers that only the
 * backend behind vmm/virt.h interprets.
 */
#ifndef VMM_VM_H
#define VMM_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot/boot_info.h"
#include "devices/console.h"
#include "devices/disk.h"
#include "devices/pic.h"
#include "devices/pit.h"
#include "devices/port_bus.h"
#include "devices/rtc.h"
#include "devices/vuart.h"
#include "vmm/platform.h"
#include "vmm/sched_policy.h"
#include "vmm/vm_clock.h"
#include "vmm/vcpu_state.h"
#include "vmm/vm_save.h"
#include "vmm/xstate.h"
#include "abi/vm_state.h"

#define VM_MAX CFG_MAX_VMS
#define VM_CONSOLE_LINE_MAX 160
#define VM_REASON_MAX 160

/* Guest general-purpose registers not held in the VMCS; vmm/vmx/entry.S relies on the order. */
struct guest_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t cr2;
};
_Static_assert(sizeof(struct guest_regs) == 16 * 8, "vmm/vmx/entry.S offsets");

struct vm;

/* A port range's view of one of the two 8259As. */
struct pic_port {
	struct pic *pic;
	unsigned chip;
};

struct vcpu {
	struct vm *vm;
	struct guest_regs regs;
	/*
	 * x87, SSE, AVX and AVX-512 state: guests use it, the hypervisor never
	 * does (vmm/xstate.h: XSAVE standard format, or FXSAVE's without XSAVE).
	 */
	uint8_t xsave[XSAVE_AREA_SIZE] __attribute__((aligned(64)));
	uint64_t xcr0;
	/* Debug registers the VMCS does not hold (DR7 is in it). */
	uint64_t dr[4], dr6;
	uint64_t misc_enable; /* VCPU_MISC_ENABLE_BITS of IA32_MISC_ENABLE (vcpu_set_misc_enable) */
	bool cpuid_edited;    /* CPUID differs from the policy's (vcpu.c: guest_msr_view) */
	uint64_t tsc_adjust;  /* IA32_TSC_ADJUST: what guest writes added to its TSC */
	bool fpu_fresh;        /* xsave[], xcr0 and dr[] hold a state the CPU has not loaded */
	bool halted;           /* HLT with nothing to wake it */
	uint8_t upcall_vector; /* 0: no upcalls (include/abi/hypercall.h) */
	bool upcall_pending;   /* raised, not yet delivered */
	uint64_t timer_deadline; /* guest TSC value of the next timer upcall, 0: none */
	/*
	 * The guest armed, moved or stopped a timer during its slice: the
	 * backend asks vm_run_timers() again, so that a deadline inside the
	 * slice ends it there, not at its end.
	 */
	bool timers_moved;
	/*
	 * The virtual-APIC page when the CPU virtualizes the local APIC
	 * (NULL: the backend emulates every access), and whether the CPU owns
	 * the APIC's vectors now: the page was written from the model and the
	 * guest may have run since, delivering, ending and raising
	 * interrupts in it. vcpu_apic_from_page gives them back to the model.
	 */
	uint32_t *apic_page;
	bool apic_page_live;
	struct sched_entity sched; /* its fair share (vmm/sched_policy.h) */
	uint64_t exits;
	uint64_t slices;       /* times the scheduler ran it */
	uint64_t preemptions;  /* slices ended by the timer */
	void *vendor;
};

struct page_alloc;

struct vm {
	unsigned id; /* its slot: unique among the VMs that exist, reused after vm_delete */
	const struct cfg_vm *cfg;   /* &own_cfg */
	const struct boot_vm *boot; /* &own_boot */
	enum vm_state state;
	/* Guest time for every timer model and the guest TSC (docs/time.md). */
	struct vm_clock clock;
	void *vendor; /* nested paging root */
	/* The VM's own copies, so its creator need not keep them. */
	struct cfg_vm own_cfg;
	struct boot_vm own_boot;
	bool ram_from_pool; /* vm_delete gives its RAM back (VM_RAM_FROM_POOL) */
	/*
	 * Its saved state in the store was not taken at boot: autostart leaves
	 * it off, so that the admin decides (Startup boots it afresh and drops
	 * that state).
	 */
	bool stored_state_refused;
	struct page_alloc *pages; /* where its state, RAM and disk chunks came from */
	struct vcpu vcpu;
	/*
	 * While Paused: the vCPU's state as a record (vmm/vcpu_state.h) in a
	 * page of its own (0: none), so a VM that is not paused does not carry
	 * it; Resume loads it.
	 */
	uint64_t parked_vcpu;
	size_t parked_vcpu_len;
	/* Save's file while the VM is Saved (vmm/vm_save.h). */
	struct vm_saved saved;
	/* After a restore, while RAM is still loaded from its file (vmm/lazy_restore.h). */
	struct lazy_restore *lazy;
	/* A Save under way (the VM is Saving), and the state it was saved from. */
	struct save_job *save_job;
	enum vm_state saving_from;
	/*
	 * A guest-caused end or reset seen while the vCPU ran; it is applied
	 * (vm_control) when the vCPU is back in the scheduler.
	 */
	bool op_pending;
	enum vm_op pending_op;
	char op_reason[VM_REASON_MAX];
	struct port_bus ports;
	struct pic pic;
	struct pic_port pic_ports[2];
	struct pit pit;
	struct rtc rtc;
	struct vuart com1;
	struct platform platform;
	/*
	 * The VM's disk: boot->disk's pristine bytes under this VM's own
	 * copy-on-write chunks. Like a real disk it keeps its writes across
	 * Reset and TurnOff; they go back to the page allocator only when the
	 * VM is deleted (vm_delete).
	 */
	struct disk disk;
	/* Guest console output: the history, and the line being mirrored to the log. */
	struct console_ring console;
	struct console_rate console_rate;
	char console_line[VM_CONSOLE_LINE_MAX];
	unsigned console_len;
};

/*
 * Runs the VM's timers (the PIT, the local APIC's, the paravirtual timer)
 * up to host TSC value host_tsc, on the VM's clock, raising their
 * interrupts, and wakes a halted vCPU that has one. Returns the host TSC
 * value of the VM's next timer event (what the scheduler waits for), or 0
 * when none is armed.
 */
uint64_t vm_run_timers(struct vm *vm, uint64_t host_tsc);

/* The VM's clock at one moment: guest time in ns and the guest's TSC (vmm/vm_clock.h). */
struct vm_time {
	uint64_t ns, tsc;
};
struct vm_time vm_now(const struct vm *vm);
/* The guest wrote its TSC (IA32_TIME_STAMP_COUNTER): RDTSC reads on from guest_tsc. */
void vm_set_guest_tsc(struct vm *vm, uint64_t guest_tsc);

/*
 * Interrupts for the vCPU: the vector the guest would take next (the
 * PICs first, then the hypervisor's upcall), or -1; and its acknowledge,
 * which the vendor backend calls when it injects that vector. While the
 * CPU owns the local APIC's vectors (apic_page_live) those are not
 * among them: the CPU delivers them itself, after an event injected at
 * the same entry, so an upcall (which takes no EOI) may then come before
 * a local APIC interrupt that was pending first.
 */
int vcpu_interrupt_pending(const struct vcpu *vcpu);
uint8_t vcpu_interrupt_acknowledge(struct vcpu *vcpu);

/*
 * The local APIC's vectors to the CPU before a VM entry (the vCPU has an
 * apic_page and it is not live), with the guest interrupt status they
 * start from; and back to the model, a no-op unless live, before anything
 * reads or changes the model (vmm/platform.c does it for every device
 * path) and when the slice ends.
 */
struct lapic_page_status vcpu_apic_to_page(struct vcpu *vcpu);
void vcpu_apic_from_page(struct vcpu *vcpu);

/* An NMI for the vCPU (its local APIC latched one), and the backend taking it to inject. */
static inline bool vcpu_nmi_pending(const struct vcpu *vcpu)
{
	return lapic_nmi_pending(&vcpu->vm->platform.lapic);
}
static inline void vcpu_take_nmi(struct vcpu *vcpu)
{
	lapic_take_nmi(&vcpu->vm->platform.lapic);
}

/*
 * False when neither an NMI nor an interrupt (vcpu_interrupt_pending() is
 * -1) waits; inline for the exit path.
 */
static inline bool vcpu_interrupt_possible(const struct vcpu *vcpu)
{
	const struct vm *vm = vcpu->vm;
	return vcpu->upcall_pending || pic_may_interrupt(&vm->pic) ||
	       (!vcpu->apic_page_live && lapic_may_interrupt(&vm->platform.lapic)) ||
	       lapic_nmi_pending(&vm->platform.lapic);
}

/* Whether an NMI or an interrupt would wake the vCPU from HLT. */
static inline bool vcpu_wakes(const struct vcpu *vcpu)
{
	return vcpu_nmi_pending(vcpu) || vcpu_interrupt_pending(vcpu) >= 0;
}

/* One byte of guest console output (COM1, the debug port or a hypercall). */
void vm_console_putc(struct vm *vm, uint8_t byte);

/*
 * Every state change, in order, for the management API (OnStateChange /
 * OnVMStateChange). A bounded ring: a reader that falls more than
 * VM_EVENT_RING events behind sees a gap in the sequence numbers.
 */
#define VM_EVENT_RING 64

struct vm_event {
	uint64_t seq; /* 1, 2, 3, ... */
	unsigned vm_id;
	/* The VM's name then: a deleted VM's slot may hold another VM by the time it is read. */
	char vm_name[CFG_NAME_MAX];
	enum vm_state state;
	char reason[VM_REASON_MAX]; /* "" unless the change has one */
};

/* Copies up to max events with seq > after into out; returns how many. */
unsigned vm_events_since(uint64_t after, struct vm_event *out, unsigned max);
/* The seq of the last event (0: none yet). */
uint64_t vm_event_seq(void);

/* Console input for the guest's COM1 receiver; returns the bytes that fitted. */
size_t vm_console_input(struct vm *vm, const uint8_t *data, size_t len);

/* Creates a VM for every configured one (TurnedOff). */
void vm_create_all(const struct boot_info *bi);
/*
 * Starts the VMs configured with autostart, the management VM first; once
 * their networks and adapters exist, since devices are built at power-on.
 */
void vm_start_autostart(void);

/* Where a VM's RAM comes from. */
enum vm_ram {
	/*
	 * boot->ram_base, reserved from the firmware at boot outside the page
	 * pool (config-file VMs): it cannot go back to the pool, so vm_delete
	 * leaves it unused.
	 */
	VM_RAM_RESERVED,
	/* boot->ram_bytes from the page pool, taken by vm_create and given back by vm_delete. */
	VM_RAM_FROM_POOL,
};

/*
 * One VM, TurnedOff, in the lowest free slot, with copies of cfg and boot
 * and all its hypervisor state from pages. NULL, with nothing taken and
 * the reason in why, when VM_MAX VMs exist or memory is short.
 */
struct vm *vm_create(const struct cfg_vm *cfg, const struct boot_vm *boot, enum vm_ram ram,
		     struct page_alloc *pages, char *why, size_t why_size);

/*
 * Ends a TurnedOff VM's life: raises its last state-change event (Invalid:
 * it no longer exists), detaches its network adapters, and gives back, in
 * the reverse order of vm_create, its disk, backend state (VMCS, EPT),
 * pool RAM and state pages. Its slot is then free for vm_create and no
 * struct vm * to it may be kept: the scheduler forgets it here, every
 * other module finds VMs through vm_by_index.
 */
void vm_delete(struct vm *vm);

/*
 * Applies a control operation: runs its event sequence (vm_state.h) with
 * the side effects at each step. Returns 0, or -1 with nothing changed when
 * the operation is invalid in the VM's state or Save cannot capture the
 * state; -1 after the events that end it when a start or a restore fails.
 * Save stops the VM and raises Saving, and returns: vm_save_poll carries
 * it on in steps, and ends its sequence with the TurnedOff event, leaving
 * the VM Saved (or, should the file not be made, back in the state it was
 * saved from, with the reason). A Startup from Saved restores it and drops
 * the file, a failed one keeps the file and the VM Saved.
 */
int vm_control(struct vm *vm, enum vm_op op, const char *reason);

/*
 * One step of every Save under way (vm_save_step), of about budget_ns
 * each (the scheduler's loop gives SAVE_STEP_NS; 0: one piece); true
 * while one is left, so that the loop does not sleep.
 */
#define SAVE_STEP_NS 2000000ull
bool vm_save_poll(uint64_t budget_ns);
/*
 * The same, with the reason of a failure in why; VM_CONTROL_NO_MEMORY when
 * it failed for memory with the VM as it was (Save, Pause).
 */
#define VM_CONTROL_NO_MEMORY (-2)
int vm_control_why(struct vm *vm, enum vm_op op, const char *reason, char *why,
		   size_t why_size);

/*
 * A TurnedOff VM takes a save file made elsewhere (ImportVirtualMachine)
 * and is Saved: Startup restores it. -1 if it is not TurnedOff.
 */
int vm_adopt_saved_state(struct vm *vm, const struct vm_saved *saved);

/*
 * Saved -> TurnedOff, the saved state dropped, here and in the store
 * (DiscardSavedState); -1 with why if not Saved, or if the store keeps it.
 */
int vm_discard_saved_state(struct vm *vm, char *why, size_t why_size);

/*
 * A guest-caused end (power-off, triple fault, fault the hypervisor cannot
 * emulate): recorded now, applied when the vCPU is back in the scheduler.
 */
void vm_request_end(struct vm *vm, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

/* A guest-requested reset (the PC reset port): TurningOff ... Running. */
void vm_request_reset(struct vm *vm, const char *reason);

/* The VMs that exist, in the order they were created: index 0 .. vm_count() - 1. */
unsigned vm_count(void);
struct vm *vm_by_index(unsigned index);

/* True when the VM's guest-physical range [gpa, gpa+len) is its own RAM. */
bool vm_gpa_is_ram(const struct vm *vm, uint64_t gpa, uint64_t len);
/*
 * Host pointer for guest RAM [gpa, gpa + len), loaded if a restore had
 * not yet loaded it (vmm/lazy_restore.h); @pre vm_gpa_is_ram(vm, gpa, len).
 */
void *vm_gpa_to_host(struct vm *vm, uint64_t gpa, uint64_t len);
/* Copies guest RAM out (vm: a struct vm, as guest_walk's read_gpa takes it): 0, or -1 outside RAM. */
int vm_read_ram(void *vm, uint64_t gpa, void *buf, unsigned len);

#endif
