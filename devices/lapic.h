/*
 * Model of one processor's local APIC (Intel SDM vol. 3A chapter 11,
 * "Advanced Programmable Interrupt Controller (APIC)"; section numbers
 * below are that chapter's, 10.x in editions before 2023), as the only
 * vCPU of a VM sees it: the xAPIC registers in the 4 KiB page at
 * IA32_APIC_BASE, the same registers as x2APIC MSRs 0x800-0x8ff,
 * IA32_APIC_BASE itself and IA32_TSC_DEADLINE.
 *
 * Modelled: IRR/ISR/TMR with TPR/PPR priorities, EOI with broadcast to the
 * I/O APIC for level-triggered vectors, the error status register, the
 * seven LVT entries (CMCI, timer, thermal, performance, LINT0, LINT1,
 * error), the timer in one-shot, periodic and TSC-deadline modes, IPIs
 * through the ICR and the x2APIC SELF IPI register, software and hardware
 * enable and the xAPIC/x2APIC mode transitions.
 * Not modelled (one vCPU, no other APIC on the "bus"): arbitration between
 * APICs, focus-processor checking, directed EOI (version bit 24 is clear),
 * remote read. Only the timer and error LVT entries have a source here;
 * the caller reaches LINT0 through lapic_extint_enabled().
 *
 * Time is passed in by the caller: guest nanoseconds and the guest's TSC
 * at the same moment. Plain C, no hardware access.
 */
#ifndef DEVICES_LAPIC_H
#define DEVICES_LAPIC_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/devstate.h"

#define LAPIC_DEFAULT_BASE 0xfee00000ULL
/*
 * What a VM's timer_floor_ns is (vmm/platform.c): the timer sets IRR at
 * most once per 100 µs in every mode (10 kHz), the idea of KVM's
 * min_timer_period_us (200 µs, periodic only). Unfloored, an initial count
 * of 1 at divide-by-1 fires every 40 ns and keeps the host busy waking the
 * guest. 100 µs is far above any guest's periodic tick (Linux: HZ <= 1000);
 * a one-shot or TSC deadline set closer than that after the last timer
 * interrupt is late by less than 100 µs, as under a busy host.
 */
#define LAPIC_TIMER_FLOOR_NS 100000ULL
#define LAPIC_MMIO_SIZE 0x1000

#define LAPIC_MSR_APIC_BASE 0x1b
#define LAPIC_MSR_TSC_DEADLINE 0x6e0
#define LAPIC_MSR_X2APIC_FIRST 0x800
#define LAPIC_MSR_X2APIC_LAST 0x8ff

/* IA32_APIC_BASE (SDM 11.4.4). */
#define LAPIC_BASE_BSP (1ULL << 8)
#define LAPIC_BASE_EXTD (1ULL << 10) /* x2APIC mode */
#define LAPIC_BASE_EN (1ULL << 11)

/*
 * Version register: version 0x14 (an integrated xAPIC) and bits 23:16 the
 * index of the last LVT entry, 6: seven entries, CMCI included, as on
 * Intel processors since Nehalem. Bit 24 (EOI-broadcast suppression) is
 * clear: the I/O APIC always sees EOIs.
 */
#define LAPIC_VERSION 0x00060014U

/* Error status register bits (SDM 11.5.3). */
#define LAPIC_ESR_SEND_ILLEGAL_VECTOR 0x20
#define LAPIC_ESR_RECEIVE_ILLEGAL_VECTOR 0x40
#define LAPIC_ESR_ILLEGAL_REGISTER 0x80

/* Local vector table entries, in register order from 0x320; CMCI at 0x2f0. */
enum lapic_lvt {
	LAPIC_LVT_TIMER,
	LAPIC_LVT_THERMAL,
	LAPIC_LVT_PERF,
	LAPIC_LVT_LINT0,
	LAPIC_LVT_LINT1,
	LAPIC_LVT_ERROR,
	LAPIC_LVT_CMCI,
	LAPIC_LVT_COUNT
};
#define LAPIC_LVT_MASKED (1U << 16)

/* ICR / LVT delivery modes (SDM 11.5.1, 11.6.1). */
#define LAPIC_DM_FIXED 0
#define LAPIC_DM_LOWEST 1
#define LAPIC_DM_SMI 2
#define LAPIC_DM_NMI 4
#define LAPIC_DM_INIT 5
#define LAPIC_DM_STARTUP 6
#define LAPIC_DM_EXTINT 7

/* Fixed by the caller at lapic_init. */
struct lapic_config {
	uint32_t id;           /* initial APIC ID, also the x2APIC ID */
	uint64_t bus_hz;       /* timer input clock before the divider, 1 Hz to 10 GHz */
	uint64_t tsc_hz;       /* guest TSC rate, 1 Hz to 10 GHz (used in TSC-deadline mode) */
	bool x2apic;           /* CPUID.1:ECX.x2APIC is advertised */
	bool tsc_deadline;     /* CPUID.1:ECX.TSC_DEADLINE is advertised */
	uint8_t phys_addr_bits; /* MAXPHYADDR advertised: bounds IA32_APIC_BASE */
	uint64_t timer_floor_ns; /* least time between timer interrupts: LAPIC_TIMER_FLOOR_NS */
};

/* Register state; a hardware disable returns it to its power-up values. */
struct lapic_regs {
	uint32_t tpr;
	uint32_t ldr, dfr;      /* xAPIC logical destination (x2APIC: derived) */
	uint32_t svr;
	uint32_t irr[8], isr[8], tmr[8];
	bool irr_nonzero;       /* some IRR bit is set: the entry path's cheap test */
	bool nmi_pending;       /* an NMI delivered to this APIC that the CPU has not taken */
	uint32_t esr;           /* what the last ESR write latched */
	uint32_t esr_pending;   /* errors since then */
	uint32_t icr_low;
	uint32_t icr_high;      /* xAPIC bits 31:24, x2APIC all 32 bits */
	uint32_t lvt[LAPIC_LVT_COUNT];
	uint32_t timer_initial;
	uint32_t timer_divide;  /* divide configuration register */
	uint64_t tsc_deadline;  /* IA32_TSC_DEADLINE, 0: disarmed */
	/*
	 * The counting timer: it has done timer_base_ticks (divided) ticks at
	 * timer_start_ns; timer_expiries counts the zeros it has reached and
	 * that lapic_timer_run already saw.
	 */
	uint64_t timer_start_ns;
	uint64_t timer_base_ticks;
	uint64_t timer_expiries;
};

/*
 * An IPI this APIC does not complete by itself: the caller emulates NMI,
 * SMI, INIT and SIPI, and owns every other CPU (there are none with one
 * vCPU). Fixed and lowest-priority IPIs to this CPU are already in IRR.
 */
struct lapic_ipi {
	uint8_t vector;
	uint8_t delivery_mode; /* LAPIC_DM_* */
	bool self;             /* this CPU is a target of a non-fixed mode */
	bool others;           /* other APIC IDs are targets too */
	uint32_t dest;         /* as written, for a log */
};

struct lapic {
	struct lapic_config cfg;
	uint64_t apic_base;     /* IA32_APIC_BASE */
	struct lapic_regs regs;
	/*
	 * When the timer last set IRR: it sets it again cfg.timer_floor_ns
	 * later at the earliest. Outside regs: a reset of the APIC keeps it.
	 */
	uint64_t timer_fired_ns;
	/*
	 * Statistics, not device state: the deadline whose interrupt waits in
	 * IRR (0: none), and the longest any waited from its deadline to its
	 * delivery (guest TSC ticks), what a guest sees of the timer's latency.
	 */
	uint64_t timer_due_tsc;
	uint64_t timer_late_max_tsc;

	/*
	 * Wiring, set by the caller after lapic_init; not device state (a
	 * restore keeps it). Either may be NULL.
	 */
	void (*eoi_broadcast)(void *ctx, uint8_t vector);
	void (*ipi)(void *ctx, const struct lapic_ipi *ipi);
	void *ctx;
};

/*
 * The state firmware hands over on a PC: power-up registers (SDM 11.4.7.1),
 * enabled in xAPIC mode at LAPIC_DEFAULT_BASE, this CPU the BSP, then
 * virtual wire mode (MultiProcessor Specification 3.6.2.2) as a BIOS sets
 * it up: the APIC software-enabled (SVR 0x1ff), LINT0 ExtINT and LINT1
 * NMI, so that the 8259's interrupts reach the CPU before the operating
 * system programs the APIC.
 */
void lapic_init(struct lapic *l, const struct lapic_config *cfg);

/*
 * Device state (devstate.h): apic_base, regs and timer_fired_ns. Left out:
 * cfg, which the platform fixed at lapic_init (the ID, the clock rates and
 * what CPUID advertises are the VM's configuration, checked against but
 * never taken from a record), and the wiring (eoi_broadcast, ipi, ctx).
 * The timer's current count is not stored: it follows from timer_start_ns
 * and timer_base_ticks on the caller's guest clock, which a restored VM
 * continues. Its reset is lapic_init's with the live cfg and wiring.
 */
extern const struct devstate_desc lapic_state_desc;

/*
 * The xAPIC page. Registers are 32 bits wide at 16-byte-aligned offsets
 * (SDM 11.4.1); only 4-byte accesses at such offsets reach them: every
 * other size or offset reads 0 and writes nothing. Reserved registers
 * read 0, ignore writes and set ESR "illegal register address", as on
 * processors since the Pentium 4. In x2APIC mode or with the APIC
 * hardware-disabled the page is not decoded: reads 0, writes ignored.
 */
uint32_t lapic_mmio_read(struct lapic *l, uint64_t offset, unsigned size, uint64_t now_ns);
void lapic_mmio_write(struct lapic *l, uint64_t offset, unsigned size, uint32_t value,
		      uint64_t now_ns, uint64_t now_tsc);

static inline bool lapic_is_msr(uint32_t msr)
{
	return msr == LAPIC_MSR_APIC_BASE || msr == LAPIC_MSR_TSC_DEADLINE ||
	       (msr >= LAPIC_MSR_X2APIC_FIRST && msr <= LAPIC_MSR_X2APIC_LAST);
}

/*
 * RDMSR/WRMSR of a lapic_is_msr() MSR; false: the instruction raises
 * #GP(0) and *value is untouched. x2APIC MSRs exist only in x2APIC mode;
 * IA32_TSC_DEADLINE only when advertised.
 */
bool lapic_msr_read(struct lapic *l, uint32_t msr, uint64_t *value, uint64_t now_ns);
bool lapic_msr_write(struct lapic *l, uint32_t msr, uint64_t value, uint64_t now_ns,
		     uint64_t now_tsc);

/* MOV from/to CR8, the TPR's priority class (SDM 11.8.6.1); false: #GP. */
static inline uint64_t lapic_read_cr8(const struct lapic *l)
{
	return l->regs.tpr >> 4;
}

static inline bool lapic_write_cr8(struct lapic *l, uint64_t value)
{
	if (value > 0xf)
		return false;
	l->regs.tpr = (uint32_t)value << 4;
	return true;
}

/*
 * A fixed or lowest-priority interrupt message for this APIC (from the
 * I/O APIC): sets IRR, and TMR when level-triggered. Refused (false) when
 * the APIC is disabled, or for vectors 0-15, which set ESR "receive
 * illegal vector".
 */
bool lapic_accept(struct lapic *l, uint8_t vector, bool level_triggered);

/* Whether an I/O APIC or MSI destination names this APIC (SDM 11.6.2). */
bool lapic_is_destination(const struct lapic *l, uint32_t dest, bool logical);

/* The vector to deliver now, or -1: the highest in IRR above PPR's class. */
int lapic_pending(const struct lapic *l);

/*
 * Cheap test for the VM-entry path: false means lapic_pending() is -1
 * (nothing is requested at all; priorities are not looked at).
 */
static inline bool lapic_may_interrupt(const struct lapic *l)
{
	return l->regs.irr_nonzero;
}

/*
 * NMIs bypass IRR and priorities (SDM 11.6.1, delivery mode NMI): one is
 * latched until the CPU takes it; a second before then is the same NMI.
 */
void lapic_deliver_nmi(struct lapic *l);
static inline bool lapic_nmi_pending(const struct lapic *l)
{
	return l->regs.nmi_pending;
}
/* The CPU takes the latched NMI (the backend injects it). */
static inline void lapic_take_nmi(struct lapic *l)
{
	l->regs.nmi_pending = false;
}

/*
 * The CPU's interrupt acknowledge: lapic_pending()'s vector moves from IRR
 * to ISR and is returned; with none, the spurious vector (SDM 11.9), which
 * needs no EOI. now_tsc (the guest TSC) dates the delivery of a
 * TSC-deadline timer interrupt (timer_late_max_tsc).
 */
uint8_t lapic_acknowledge(struct lapic *l, uint64_t now_tsc);

/*
 * Whether the 8259's INTR reaches the CPU through LINT0: when the APIC is
 * hardware-disabled (LINT0 is then the CPU's INTR pin, SDM 11.4.3) or LVT
 * LINT0 is unmasked in ExtINT mode. lapic_init leaves the latter, as
 * firmware does; Linux masks LINT0 when it moves to the I/O APIC (and
 * software-disabling the APIC masks every LVT entry, SDM 11.4.7.2).
 */
bool lapic_extint_enabled(const struct lapic *l);

/*
 * Whether a write of this register (xAPIC offset, or MSR) may arm, move or
 * stop the timer: the caller's next timer event is then to be asked again.
 */
bool lapic_mmio_moves_timer(unsigned offset);
bool lapic_msr_moves_timer(uint32_t msr);

/*
 * Turns timer expiries up to now into a timer interrupt in IRR; any number
 * of missed periods coalesce into one, and expiries within
 * cfg.timer_floor_ns of the last interrupt wait. Returns whether IRR was
 * set. Call it before each VM entry and at lapic_next_event_ns().
 */
bool lapic_timer_run(struct lapic *l, uint64_t now_ns, uint64_t now_tsc);

/* When the timer next sets IRR (at least 1), or 0: not armed or masked. */
uint64_t lapic_next_event_ns(const struct lapic *l, uint64_t now_ns, uint64_t now_tsc);

/*
 * The virtual-APIC page of VT-x's APIC virtualization (SDM Vol. 3C
 * chapter 29; AMD's AVIC backing page has the same layout): the xAPIC
 * register page, in which the CPU itself delivers the APIC's interrupts,
 * takes EOIs and keeps the TPR while the guest runs. The model stays the
 * state's owner: lapic_to_page writes PPR and every register the CPU may
 * let the guest read from the page into it before the guest runs, and
 * lapic_from_page takes back what the CPU changed (TPR, ISR, IRR, and the
 * ICR a self-IPI or a virtualized write left) before the model is used
 * again; a write to any other register exits, and the model takes it. page is 1024 words. The status is what
 * the CPU's own guest interrupt status starts from: the highest vector in
 * IRR and in ISR, 0 for none. A TSC-deadline interrupt waiting in IRR is
 * counted delivered at lapic_to_page's now_tsc (timer_late_max_tsc): the
 * CPU delivers it from then on as soon as the guest takes interrupts.
 * A self-IPI the CPU took clears its vector's TMR bit only when the
 * vector is still in IRR when the page is read back: one the guest
 * already ended, or sent again while pending, keeps a TMR bit a level
 * I/O APIC interrupt on the same vector left, and its EOI reaches the
 * I/O APIC too (a guest reusing such a vector for self-IPIs).
 */
struct lapic_page_status {
	uint8_t rvi, svi;
	/* TMR as four 64-bit words: the vectors whose EOI the I/O APIC must see. */
	uint64_t level_vectors[4];
	/*
	 * The CPU may virtualize the guest's accesses to the registers: they
	 * are at LAPIC_DEFAULT_BASE (xAPIC mode, enabled, not moved) and the
	 * APIC is software-enabled. Otherwise every access is the model's.
	 */
	bool virtualizable;
};
struct lapic_page_status lapic_to_page(struct lapic *l, uint32_t *page, uint64_t now_tsc);
void lapic_from_page(struct lapic *l, uint32_t *page);

/*
 * The CPU completed an EOI of vector itself (a virtual EOI, which cleared
 * it from ISR): a level-triggered vector's EOI reaches the I/O APIC as
 * lapic's own EOI does.
 */
void lapic_virtual_eoi(struct lapic *l, uint8_t vector);

#endif
