#include "devices/lapic.h"

#include <string.h>

/* Register indexes: xAPIC offset / 16, also x2APIC MSR - 0x800 (SDM 11.12.1.2). */
enum {
	REG_ID = 0x02,
	REG_VERSION = 0x03,
	REG_TPR = 0x08,
	REG_APR = 0x09,
	REG_PPR = 0x0a,
	REG_EOI = 0x0b,
	REG_LDR = 0x0d,
	REG_DFR = 0x0e,
	REG_SVR = 0x0f,
	REG_ISR = 0x10,
	REG_TMR = 0x18,
	REG_IRR = 0x20,
	REG_ESR = 0x28,
	REG_LVT_CMCI = 0x2f,
	REG_ICR_LOW = 0x30,
	REG_ICR_HIGH = 0x31,
	REG_LVT_TIMER = 0x32, /* the LVT entries in enum lapic_lvt order... */
	REG_LVT_ERROR = 0x37, /* ...up to the error entry */
	REG_TIMER_INITIAL = 0x38,
	REG_TIMER_CURRENT = 0x39,
	REG_TIMER_DIVIDE = 0x3e,
	REG_SELF_IPI = 0x3f,
};

/* What a register access came to. */
enum access {
	ACCESS_OK,
	ACCESS_DENIED,   /* read of a write-only or write of a read-only register, or a bad value */
	ACCESS_RESERVED, /* no such register in this mode */
};

#define SVR_ENABLE (1U << 8)
#define SVR_WRITABLE 0x3ffU /* vector, enable, focus checking; no EOI suppression */
#define DFR_FLAT 0xfU
#define VECTOR_MASK 0xffU
/* Vectors 0-15 are the exceptions' and illegal for interrupts (SDM 11.5.2). */
#define FIRST_LEGAL_VECTOR 16

#define LVT_DELIVERY_MODE (7U << 8)
#define LVT_POLARITY (1U << 13)
#define LVT_LEVEL (1U << 15)
#define LVT_TIMER_MODE_SHIFT 17
#define TIMER_ONE_SHOT 0
#define TIMER_PERIODIC 1
#define TIMER_TSC_DEADLINE 2

#define ICR_LOGICAL (1U << 11)
#define ICR_ASSERT (1U << 14)
#define ICR_LEVEL (1U << 15)
#define ICR_SHORTHAND_SHIFT 18
#define ICR_WRITABLE 0x000ccfffU
enum { SHORTHAND_NONE, SHORTHAND_SELF, SHORTHAND_ALL, SHORTHAND_OTHERS };

#define NS_PER_S 1000000000ULL

static bool x2apic_mode(const struct lapic *l)
{
	return l->apic_base & LAPIC_BASE_EXTD;
}

static bool software_enabled(const struct lapic *l)
{
	return (l->apic_base & LAPIC_BASE_EN) && (l->regs.svr & SVR_ENABLE);
}

/* x2APIC logical IDs derive from the x2APIC ID: cluster and one bit (SDM 11.12.10.2). */
static uint32_t x2apic_ldr(uint32_t id)
{
	return (id >> 4) << 16 | 1U << (id & 0xf);
}

static void reset_registers(struct lapic *l)
{
	struct lapic_regs *r = &l->regs;

	/* Power-up and hardware-disable state (SDM 11.4.7.1). */
	memset(r, 0, sizeof(*r));
	r->dfr = 0xffffffffU;
	r->svr = 0xff;
	for (unsigned i = 0; i < LAPIC_LVT_COUNT; i++)
		r->lvt[i] = LAPIC_LVT_MASKED;
}

void lapic_init(struct lapic *l, const struct lapic_config *cfg)
{
	memset(l, 0, sizeof(*l));
	l->cfg = *cfg;
	l->apic_base = LAPIC_DEFAULT_BASE | LAPIC_BASE_EN | LAPIC_BASE_BSP;
	reset_registers(l);
	/*
	 * What PC firmware (SeaBIOS, for one) leaves for the operating system:
	 * the APIC software-enabled, LINT0 the 8259's ExtINT input and LINT1
	 * NMI, both level-triggered as the SDM requires for ExtINT (11.5.1).
	 */
	l->regs.svr |= SVR_ENABLE;
	l->regs.lvt[LAPIC_LVT_LINT0] = LVT_LEVEL | LAPIC_DM_EXTINT << 8;
	l->regs.lvt[LAPIC_LVT_LINT1] = LVT_LEVEL | LAPIC_DM_NMI << 8;
}

/* --- IRR, ISR, TMR and priorities ------------------------------------ */

static bool test_vector(const uint32_t reg[8], unsigned vector)
{
	return reg[vector / 32] & 1U << (vector % 32);
}

static void set_vector(uint32_t reg[8], unsigned vector, bool on)
{
	if (on)
		reg[vector / 32] |= 1U << (vector % 32);
	else
		reg[vector / 32] &= ~(1U << (vector % 32));
}

static int highest_vector(const uint32_t reg[8])
{
	for (int i = 7; i >= 0; i--) {
		if (reg[i])
			return i * 32 + 31 - __builtin_clz(reg[i]);
	}
	return -1;
}

/* A vector's priority class, its top four bits; none counts as class 0. */
static unsigned priority_class(int vector)
{
	return vector < 0 ? 0 : (unsigned)vector >> 4;
}

/* SDM 11.8.3.1: the TPR, or the class of the highest vector in service. */
static uint32_t processor_priority(const struct lapic *l)
{
	unsigned isr_class = priority_class(highest_vector(l->regs.isr));

	if ((l->regs.tpr >> 4) >= isr_class)
		return l->regs.tpr;
	return isr_class << 4;
}

/*
 * Arbitration priority (xAPIC only): what this APIC would bid for a
 * lowest-priority interrupt. No other APIC bids, but the register reads
 * as the SDM's description of the APR defines it.
 */
static uint32_t arbitration_priority(const struct lapic *l)
{
	unsigned tpr = l->regs.tpr >> 4;
	unsigned isr_class = priority_class(highest_vector(l->regs.isr));
	unsigned irr_class = priority_class(highest_vector(l->regs.irr));

	if (tpr >= irr_class && tpr > isr_class)
		return l->regs.tpr;
	unsigned top = tpr > isr_class ? tpr : isr_class;
	return (top > irr_class ? top : irr_class) << 4;
}

static void signal_error(struct lapic *l, uint32_t error);

bool lapic_accept(struct lapic *l, uint8_t vector, bool level_triggered)
{
	/* A software-disabled APIC answers only NMI, SMI, INIT and SIPI (SDM 11.4.7.2). */
	if (!software_enabled(l))
		return false;
	if (vector < FIRST_LEGAL_VECTOR) {
		signal_error(l, LAPIC_ESR_RECEIVE_ILLEGAL_VECTOR);
		return false;
	}
	/* TMR records how the latest acceptance was triggered, for the EOI (SDM 11.8.4). */
	set_vector(l->regs.irr, vector, true);
	l->regs.irr_nonzero = true;
	set_vector(l->regs.tmr, vector, level_triggered);
	return true;
}

/* SDM 11.5.3: latch the error; the error LVT entry may turn it into an interrupt. */
static void signal_error(struct lapic *l, uint32_t error)
{
	uint32_t lvt = l->regs.lvt[LAPIC_LVT_ERROR];

	l->regs.esr_pending |= error;
	if (lvt & LAPIC_LVT_MASKED)
		return;
	/* Checked here rather than by lapic_accept, which would report it back to us. */
	if ((lvt & VECTOR_MASK) < FIRST_LEGAL_VECTOR)
		l->regs.esr_pending |= LAPIC_ESR_RECEIVE_ILLEGAL_VECTOR;
	else
		lapic_accept(l, (uint8_t)lvt, false);
}

int lapic_pending(const struct lapic *l)
{
	int vector = highest_vector(l->regs.irr);

	/* Only a higher priority class than PPR's interrupts the processor (SDM 11.8.3.1). */
	if (vector < 0 || priority_class(vector) <= processor_priority(l) >> 4)
		return -1;
	return vector;
}

/* The timer's interrupt reached the CPU: how late, for timer_late_max_tsc. */
static void timer_delivered(struct lapic *l, uint64_t now_tsc)
{
	if (now_tsc > l->timer_due_tsc && now_tsc - l->timer_due_tsc > l->timer_late_max_tsc)
		l->timer_late_max_tsc = now_tsc - l->timer_due_tsc;
	l->timer_due_tsc = 0;
}

uint8_t lapic_acknowledge(struct lapic *l, uint64_t now_tsc)
{
	int vector = lapic_pending(l);

	if (vector < 0)
		return (uint8_t)l->regs.svr;
	if (l->timer_due_tsc && (unsigned)vector == (l->regs.lvt[LAPIC_LVT_TIMER] & 0xff))
		timer_delivered(l, now_tsc);
	set_vector(l->regs.irr, (unsigned)vector, false);
	l->regs.irr_nonzero = highest_vector(l->regs.irr) >= 0;
	set_vector(l->regs.isr, (unsigned)vector, true);
	return (uint8_t)vector;
}

/* SDM 11.8.5: the highest vector in service ends; a level-triggered one also at the I/O APIC. */
static void end_of_interrupt(struct lapic *l)
{
	int vector = highest_vector(l->regs.isr);

	if (vector < 0)
		return;
	set_vector(l->regs.isr, (unsigned)vector, false);
	if (test_vector(l->regs.tmr, (unsigned)vector) && l->eoi_broadcast)
		l->eoi_broadcast(l->ctx, (uint8_t)vector);
}

/* --- The virtual-APIC page (SDM Vol. 3C 29.1) -------------------------- */

static enum access reg_read(const struct lapic *l, unsigned reg, uint32_t *out, uint64_t now_ns);

/*
 * The registers APIC-register virtualization lets the guest read from the
 * page besides TPR, ISR, TMR and IRR (SDM 29.4.2). Of the writes the CPU
 * virtualizes (29.4.3.1), TPR, EOI, a self-IPI and the ICR's high half
 * complete in the page; the others exit once in it (29.4.3.3), and the
 * model takes them. PPR, APR, the current count and the CMCI entry are
 * read through exits, and the version is written through one.
 */
static const uint8_t page_read_registers[] = {
	REG_ID,		   REG_VERSION,	      REG_LDR,		 REG_DFR,
	REG_SVR,	   REG_ESR,	      REG_ICR_LOW,	 REG_ICR_HIGH,
	REG_LVT_TIMER,	   REG_LVT_TIMER + 1, REG_LVT_TIMER + 2, REG_LVT_TIMER + 3,
	REG_LVT_TIMER + 4, REG_LVT_ERROR,     REG_TIMER_INITIAL, REG_TIMER_DIVIDE,
};

/* Register reg (xAPIC offset >> 4) is the page's 32-bit word at reg * 4. */
static uint32_t *page_register(uint32_t *page, unsigned reg)
{
	return &page[reg * 4];
}

static void vectors_to_page(uint32_t *page, unsigned first_reg, const uint32_t reg[8])
{
	for (unsigned i = 0; i < 8; i++)
		*page_register(page, first_reg + i) = reg[i];
}

/* Vectors 0-15 never reach IRR or ISR (lapic_accept), whatever the page says. */
static void vectors_from_page(uint32_t reg[8], uint32_t *page, unsigned first_reg)
{
	for (unsigned i = 0; i < 8; i++)
		reg[i] = *page_register(page, first_reg + i);
	reg[0] &= ~((1U << FIRST_LEGAL_VECTOR) - 1);
}

struct lapic_page_status lapic_to_page(struct lapic *l, uint32_t *page, uint64_t now_tsc)
{
	const struct lapic_regs *r = &l->regs;
	int irr = highest_vector(r->irr), isr = highest_vector(r->isr);

	/*
	 * The CPU delivers the timer's interrupt from here on, without an
	 * exit that would date it: its lateness counts to this entry.
	 */
	if (l->timer_due_tsc && test_vector(r->irr, r->lvt[LAPIC_LVT_TIMER] & VECTOR_MASK))
		timer_delivered(l, now_tsc);
	*page_register(page, REG_TPR) = r->tpr;
	*page_register(page, REG_PPR) = processor_priority(l);
	vectors_to_page(page, REG_ISR, r->isr);
	vectors_to_page(page, REG_TMR, r->tmr);
	vectors_to_page(page, REG_IRR, r->irr);
	for (unsigned i = 0; i < sizeof(page_read_registers) / sizeof(page_read_registers[0]); i++) {
		uint32_t *word = page_register(page, page_read_registers[i]);
		if (reg_read(l, page_read_registers[i], word, 0) != ACCESS_OK)
			*word = 0;
	}
	*page_register(page, REG_EOI) = 0;
	struct lapic_page_status status = {
		.rvi = irr < 0 ? 0 : (uint8_t)irr,
		.svi = isr < 0 ? 0 : (uint8_t)isr,
		/*
		 * A software-disabled APIC refuses fixed interrupts (11.4.7.2),
		 * a self-IPI the CPU would put in the page among them.
		 */
		.virtualizable =
			(l->apic_base & (LAPIC_BASE_EN | LAPIC_BASE_EXTD)) == LAPIC_BASE_EN &&
			(l->apic_base & ~(uint64_t)(LAPIC_MMIO_SIZE - 1)) == LAPIC_DEFAULT_BASE &&
			software_enabled(l),
	};
	for (unsigned i = 0; i < 4; i++)
		status.level_vectors[i] = (uint64_t)r->tmr[2 * i + 1] << 32 | r->tmr[2 * i];
	return status;
}

void lapic_from_page(struct lapic *l, uint32_t *page)
{
	struct lapic_regs *r = &l->regs;
	uint32_t pushed_irr[8];

	memcpy(pushed_irr, r->irr, sizeof(pushed_irr));
	/* MOV to CR8 and a TPR write to the page clear bits 31:8 (SDM Vol. 3C 29.3, 29.4.3.2). */
	r->tpr = *page_register(page, REG_TPR) & VECTOR_MASK;
	vectors_from_page(r->isr, page, REG_ISR);
	vectors_from_page(r->irr, page, REG_IRR);
	r->irr_nonzero = highest_vector(r->irr) >= 0;
	/*
	 * A vector new in IRR is a self-IPI the CPU took (29.1.5): edge
	 * triggered, which clears its TMR bit as lapic_accept does. The ICR
	 * holds what the guest wrote last, through the page or not (the model
	 * writes the page's before each entry): the low half a self-IPI wrote,
	 * the high half a write the CPU virtualized (29.4.3.2, 310H).
	 */
	for (unsigned i = 0; i < 8; i++)
		r->tmr[i] &= ~(r->irr[i] & ~pushed_irr[i]);
	r->icr_low = *page_register(page, REG_ICR_LOW) & ICR_WRITABLE;
	if (!x2apic_mode(l))
		r->icr_high = *page_register(page, REG_ICR_HIGH) & 0xff000000U;
}

void lapic_virtual_eoi(struct lapic *l, uint8_t vector)
{
	if (test_vector(l->regs.tmr, vector) && l->eoi_broadcast)
		l->eoi_broadcast(l->ctx, vector);
}

bool lapic_extint_enabled(const struct lapic *l)
{
	uint32_t lint0 = l->regs.lvt[LAPIC_LVT_LINT0];

	if (!(l->apic_base & LAPIC_BASE_EN))
		return true;
	return !(lint0 & LAPIC_LVT_MASKED) && (lint0 & LVT_DELIVERY_MODE) == LAPIC_DM_EXTINT << 8;
}

/* --- Destinations and IPIs -------------------------------------------- */

/* SDM 11.6.2: whether dest names this APIC, and whether it names any other. */
static void match_destination(const struct lapic *l, uint32_t dest, bool logical, bool *self,
			      bool *others)
{
	bool x2 = x2apic_mode(l);

	if (dest == (x2 ? 0xffffffffU : 0xffU)) {
		*self = *others = true;
		return;
	}
	if (!logical) {
		*self = dest == l->cfg.id;
		*others = !*self;
		return;
	}
	/*
	 * A logical destination is a cluster and a bit set of members: x2APIC
	 * 16 + 16 bits, xAPIC cluster model 4 + 4 bits, flat model 8 member
	 * bits and no cluster.
	 */
	uint32_t mine = x2 ? x2apic_ldr(l->cfg.id) : l->regs.ldr >> 24;
	unsigned width = x2 ? 16 : (l->regs.dfr >> 28) == DFR_FLAT ? 8 : 4;
	uint32_t members = (1U << width) - 1;
	bool same_cluster = dest >> width == mine >> width;

	*self = same_cluster && (dest & mine & members);
	*others = !same_cluster || (dest & ~mine & members);
}

bool lapic_is_destination(const struct lapic *l, uint32_t dest, bool logical)
{
	bool self, others;

	match_destination(l, dest, logical, &self, &others);
	return self;
}

void lapic_deliver_nmi(struct lapic *l)
{
	l->regs.nmi_pending = true;
}

/* SDM 11.6.1: an ICR write sends the IPI at once; delivery status never reads busy. */
static void send_ipi(struct lapic *l, uint32_t icr, uint32_t dest)
{
	uint8_t vector = (uint8_t)icr;
	uint8_t mode = (icr & LVT_DELIVERY_MODE) >> 8;
	bool fixed = mode == LAPIC_DM_FIXED || mode == LAPIC_DM_LOWEST;
	bool self, others;

	/* Mode 3 is reserved and ExtINT is no IPI: nothing is sent. */
	if (mode == 3 || mode == LAPIC_DM_EXTINT)
		return;
	/* INIT level de-assert is a no-op since the Pentium 4. */
	if (mode == LAPIC_DM_INIT && (icr & ICR_LEVEL) && !(icr & ICR_ASSERT))
		return;
	if (fixed && vector < FIRST_LEGAL_VECTOR) {
		signal_error(l, LAPIC_ESR_SEND_ILLEGAL_VECTOR);
		return;
	}
	switch ((icr >> ICR_SHORTHAND_SHIFT) & 3) {
	case SHORTHAND_NONE:
		match_destination(l, dest, icr & ICR_LOGICAL, &self, &others);
		break;
	case SHORTHAND_SELF:
		self = true;
		others = false;
		break;
	case SHORTHAND_ALL:
		self = others = true;
		break;
	default: /* SHORTHAND_OTHERS */
		self = false;
		others = true;
		break;
	}
	if (self && fixed) {
		/* IPIs are edge-triggered: the ICR trigger bit only qualifies INIT. */
		lapic_accept(l, vector, false);
		self = false;
	}
	if (self && mode == LAPIC_DM_NMI) {
		lapic_deliver_nmi(l);
		self = false;
	}
	if ((self || others) && l->ipi) {
		struct lapic_ipi ipi = {
			.vector = vector, .delivery_mode = mode, .self = self, .others = others, .dest = dest,
		};
		l->ipi(l->ctx, &ipi);
	}
}

/* --- Timer (SDM 11.5.4) ----------------------------------------------- */

/*
 * Conversions split into whole seconds and the rest so that no product
 * overflows 64 bits for rates up to 10 GHz (and no 128-bit division,
 * which would need libgcc, is used).
 */
static uint64_t ns_to_clocks(uint64_t ns, uint64_t hz)
{
	return ns / NS_PER_S * hz + ns % NS_PER_S * hz / NS_PER_S;
}

/* Rounded up: at the returned time the clock has ticked. */
static uint64_t clocks_to_ns(uint64_t clocks, uint64_t hz)
{
	return clocks / hz * NS_PER_S + (clocks % hz * NS_PER_S + hz - 1) / hz;
}

static unsigned timer_mode(const struct lapic *l)
{
	return (l->regs.lvt[LAPIC_LVT_TIMER] >> LVT_TIMER_MODE_SHIFT) & 3;
}

/* Divide configuration bits 3, 1:0 (SDM 11.5.4): 2 to 128, or 1. */
static uint64_t timer_divisor(const struct lapic *l)
{
	unsigned code = (l->regs.timer_divide & 3) | (l->regs.timer_divide >> 1 & 4);

	return code == 7 ? 1 : 2ULL << code;
}

/* Ticks of the divided clock since the count was loaded. */
static uint64_t timer_ticks(const struct lapic *l, uint64_t now_ns)
{
	const struct lapic_regs *r = &l->regs;
	uint64_t ns = now_ns > r->timer_start_ns ? now_ns - r->timer_start_ns : 0;

	return r->timer_base_ticks + ns_to_clocks(ns, l->cfg.bus_hz) / timer_divisor(l);
}

/* One-shot and periodic modes count; the reserved mode 3 behaves as one-shot. */
static bool timer_counting(const struct lapic *l)
{
	return timer_mode(l) != TIMER_TSC_DEADLINE && l->regs.timer_initial;
}

/* How many times the count has reached zero. */
static uint64_t timer_zeros(const struct lapic *l, uint64_t now_ns)
{
	uint64_t ticks = timer_ticks(l, now_ns);

	if (timer_mode(l) == TIMER_PERIODIC)
		return ticks / l->regs.timer_initial;
	return ticks >= l->regs.timer_initial;
}

static uint32_t timer_current(const struct lapic *l, uint64_t now_ns)
{
	uint32_t initial = l->regs.timer_initial;

	if (!timer_counting(l))
		return 0;
	uint64_t ticks = timer_ticks(l, now_ns);
	if (timer_mode(l) == TIMER_PERIODIC)
		return (uint32_t)(initial - ticks % initial);
	return ticks >= initial ? 0 : (uint32_t)(initial - ticks);
}

/* Whether the timer expired since last asked; consumes the expiry. */
static bool timer_expired(struct lapic *l, uint64_t now_ns, uint64_t now_tsc)
{
	struct lapic_regs *r = &l->regs;

	if (timer_mode(l) == TIMER_TSC_DEADLINE) {
		if (!r->tsc_deadline || now_tsc < r->tsc_deadline)
			return false;
		/* SDM 11.5.4.1: the MSR reads 0 once the deadline has passed. */
		r->tsc_deadline = 0;
		return true;
	}
	if (!timer_counting(l))
		return false;
	uint64_t zeros = timer_zeros(l, now_ns);
	if (zeros <= r->timer_expiries)
		return false;
	r->timer_expiries = zeros;
	return true;
}

/* Within the floor after the last timer interrupt (never when time went back). */
static bool timer_quiet(const struct lapic *l, uint64_t now_ns)
{
	return now_ns - l->timer_fired_ns < l->cfg.timer_floor_ns;
}

bool lapic_timer_run(struct lapic *l, uint64_t now_ns, uint64_t now_tsc)
{
	uint32_t lvt = l->regs.lvt[LAPIC_LVT_TIMER];
	uint64_t deadline = timer_mode(l) == TIMER_TSC_DEADLINE ? l->regs.tsc_deadline : 0;

	/* Expiries within the floor stay pending: they are seen at the floor. */
	if (timer_quiet(l, now_ns))
		return false;
	/* A masked timer keeps counting; only the interrupt is suppressed. */
	if (!timer_expired(l, now_ns, now_tsc) || (lvt & LAPIC_LVT_MASKED))
		return false;
	l->timer_fired_ns = now_ns;
	if (!lapic_accept(l, (uint8_t)lvt, false))
		return false;
	l->timer_due_tsc = deadline;
	return true;
}

static uint64_t event_at(uint64_t at, uint64_t now_ns)
{
	if (at < now_ns)
		at = now_ns;
	return at ? at : 1; /* 0 means "none" */
}

static uint64_t next_event_ns(const struct lapic *l, uint64_t now_ns, uint64_t now_tsc)
{
	const struct lapic_regs *r = &l->regs;

	if (r->lvt[LAPIC_LVT_TIMER] & LAPIC_LVT_MASKED)
		return 0;
	if (timer_mode(l) == TIMER_TSC_DEADLINE) {
		if (!r->tsc_deadline)
			return 0;
		uint64_t wait = r->tsc_deadline > now_tsc ?
			clocks_to_ns(r->tsc_deadline - now_tsc, l->cfg.tsc_hz) : 0;
		return event_at(now_ns + wait, now_ns);
	}
	if (!timer_counting(l) || (timer_mode(l) != TIMER_PERIODIC && r->timer_expiries))
		return 0;
	uint64_t zero_at = (r->timer_expiries + 1) * r->timer_initial;
	uint64_t ticks = zero_at > r->timer_base_ticks ? zero_at - r->timer_base_ticks : 0;
	return event_at(r->timer_start_ns + clocks_to_ns(ticks * timer_divisor(l), l->cfg.bus_hz),
			now_ns);
}

uint64_t lapic_next_event_ns(const struct lapic *l, uint64_t now_ns, uint64_t now_tsc)
{
	uint64_t at = next_event_ns(l, now_ns, now_tsc);
	uint64_t quiet_until = l->timer_fired_ns + l->cfg.timer_floor_ns;

	return at && timer_quiet(l, now_ns) && at < quiet_until ? quiet_until : at;
}

static void timer_restart(struct lapic *l, uint64_t base_ticks, uint64_t now_ns)
{
	l->regs.timer_start_ns = now_ns;
	l->regs.timer_base_ticks = base_ticks;
}

static void write_timer_initial(struct lapic *l, uint32_t value, uint64_t now_ns)
{
	/* Ignored in TSC-deadline mode (SDM 11.5.4.1); 0 stops the timer. */
	if (timer_mode(l) == TIMER_TSC_DEADLINE)
		return;
	l->regs.timer_initial = value;
	l->regs.timer_expiries = 0;
	timer_restart(l, 0, now_ns);
}

static void write_timer_divide(struct lapic *l, uint32_t value, uint64_t now_ns)
{
	/* The count so far stands; the rest runs at the new rate. */
	timer_restart(l, timer_ticks(l, now_ns), now_ns);
	l->regs.timer_divide = value & 0xb;
}

/* --- LVT and SVR writes ------------------------------------------------ */

static uint32_t lvt_writable(const struct lapic *l, unsigned lvt)
{
	switch (lvt) {
	case LAPIC_LVT_TIMER:
		return VECTOR_MASK | LAPIC_LVT_MASKED |
		       (l->cfg.tsc_deadline ? 3U : 1U) << LVT_TIMER_MODE_SHIFT;
	case LAPIC_LVT_LINT0:
	case LAPIC_LVT_LINT1:
		return VECTOR_MASK | LVT_DELIVERY_MODE | LVT_POLARITY | LVT_LEVEL | LAPIC_LVT_MASKED;
	case LAPIC_LVT_ERROR:
		return VECTOR_MASK | LAPIC_LVT_MASKED;
	default: /* thermal, performance counters, CMCI */
		return VECTOR_MASK | LVT_DELIVERY_MODE | LAPIC_LVT_MASKED;
	}
}

static void write_lvt(struct lapic *l, unsigned lvt, uint32_t value, uint64_t now_ns,
		      uint64_t now_tsc)
{
	struct lapic_regs *r = &l->regs;
	uint32_t old = r->lvt[lvt];

	value &= lvt_writable(l, lvt);
	/* Software-disabled: every entry stays masked (SDM 11.4.7.2). */
	if (!(r->svr & SVR_ENABLE))
		value |= LAPIC_LVT_MASKED;
	if (lvt == LAPIC_LVT_TIMER) {
		if ((old ^ value) >> LVT_TIMER_MODE_SHIFT & 3) {
			/* A mode change disarms the timer (SDM 11.5.4.1). */
			r->timer_initial = 0;
			r->tsc_deadline = 0;
		} else if ((old & ~value) & LAPIC_LVT_MASKED) {
			/* Expiries while masked were lost: unmasking must not deliver them. */
			timer_expired(l, now_ns, now_tsc);
		}
	}
	r->lvt[lvt] = value;
}

static void write_svr(struct lapic *l, uint32_t value)
{
	l->regs.svr = value & SVR_WRITABLE;
	if (value & SVR_ENABLE)
		return;
	for (unsigned i = 0; i < LAPIC_LVT_COUNT; i++)
		l->regs.lvt[i] |= LAPIC_LVT_MASKED;
}

/* The LVT entry at a register index, or -1. */
static int lvt_index(unsigned reg)
{
	if (reg == REG_LVT_CMCI)
		return LAPIC_LVT_CMCI;
	if (reg >= REG_LVT_TIMER && reg <= REG_LVT_ERROR)
		return (int)(reg - REG_LVT_TIMER);
	return -1;
}

/* The 256-bit registers: ISR, TMR, IRR, or NULL. */
static const uint32_t *vector_register(const struct lapic *l, unsigned reg)
{
	if (reg >= REG_ISR && reg < REG_ISR + 8)
		return &l->regs.isr[reg - REG_ISR];
	if (reg >= REG_TMR && reg < REG_TMR + 8)
		return &l->regs.tmr[reg - REG_TMR];
	if (reg >= REG_IRR && reg < REG_IRR + 8)
		return &l->regs.irr[reg - REG_IRR];
	return NULL;
}

/* --- Register file, shared by the xAPIC page and the x2APIC MSRs --------- */

static enum access reg_read(const struct lapic *l, unsigned reg, uint32_t *out, uint64_t now_ns)
{
	const struct lapic_regs *r = &l->regs;
	bool x2 = x2apic_mode(l);
	const uint32_t *vectors = vector_register(l, reg);
	int lvt = lvt_index(reg);

	if (vectors) {
		*out = *vectors;
		return ACCESS_OK;
	}
	if (lvt >= 0) {
		*out = r->lvt[lvt];
		return ACCESS_OK;
	}
	switch (reg) {
	case REG_ID:
		*out = x2 ? l->cfg.id : l->cfg.id << 24;
		break;
	case REG_VERSION:
		*out = LAPIC_VERSION;
		break;
	case REG_TPR:
		*out = r->tpr;
		break;
	case REG_APR:
		if (x2)
			return ACCESS_RESERVED;
		*out = arbitration_priority(l);
		break;
	case REG_PPR:
		*out = processor_priority(l);
		break;
	case REG_LDR:
		*out = r->ldr;
		break;
	case REG_DFR:
		if (x2)
			return ACCESS_RESERVED;
		*out = r->dfr | 0x0fffffffU; /* the model bits; the rest read as ones */
		break;
	case REG_SVR:
		*out = r->svr;
		break;
	case REG_ESR:
		*out = r->esr;
		break;
	case REG_ICR_LOW:
		*out = r->icr_low;
		break;
	case REG_ICR_HIGH:
		if (x2)
			return ACCESS_RESERVED; /* part of MSR 0x830 */
		*out = r->icr_high;
		break;
	case REG_TIMER_INITIAL:
		*out = r->timer_initial;
		break;
	case REG_TIMER_CURRENT:
		*out = timer_current(l, now_ns);
		break;
	case REG_TIMER_DIVIDE:
		*out = r->timer_divide;
		break;
	case REG_EOI:
		return ACCESS_DENIED;
	case REG_SELF_IPI:
		return x2 ? ACCESS_DENIED : ACCESS_RESERVED;
	default:
		return ACCESS_RESERVED;
	}
	return ACCESS_OK;
}

static uint32_t icr_destination(const struct lapic *l)
{
	return x2apic_mode(l) ? l->regs.icr_high : l->regs.icr_high >> 24;
}

static enum access reg_write(struct lapic *l, unsigned reg, uint32_t value, uint64_t now_ns,
			     uint64_t now_tsc)
{
	struct lapic_regs *r = &l->regs;
	bool x2 = x2apic_mode(l);
	int lvt = lvt_index(reg);

	if (vector_register(l, reg))
		return ACCESS_DENIED;
	if (lvt >= 0) {
		write_lvt(l, (unsigned)lvt, value, now_ns, now_tsc);
		return ACCESS_OK;
	}
	switch (reg) {
	case REG_TPR:
		r->tpr = value & 0xff;
		break;
	case REG_EOI:
		/* x2APIC: only 0 may be written (SDM 11.12.1.2). */
		if (x2 && value)
			return ACCESS_DENIED;
		end_of_interrupt(l);
		break;
	case REG_LDR:
		if (x2)
			return ACCESS_DENIED; /* derived from the x2APIC ID */
		r->ldr = value & 0xff000000U;
		break;
	case REG_DFR:
		if (x2)
			return ACCESS_RESERVED;
		r->dfr = value & 0xf0000000U;
		break;
	case REG_SVR:
		write_svr(l, value);
		break;
	case REG_ESR:
		if (x2 && value)
			return ACCESS_DENIED;
		/* The write makes the errors since the previous one readable (SDM 11.5.3). */
		r->esr = r->esr_pending;
		r->esr_pending = 0;
		break;
	case REG_ICR_LOW:
		r->icr_low = value & ICR_WRITABLE;
		send_ipi(l, r->icr_low, icr_destination(l));
		break;
	case REG_ICR_HIGH:
		if (x2)
			return ACCESS_RESERVED;
		r->icr_high = value & 0xff000000U;
		break;
	case REG_TIMER_INITIAL:
		write_timer_initial(l, value, now_ns);
		break;
	case REG_TIMER_DIVIDE:
		write_timer_divide(l, value, now_ns);
		break;
	case REG_SELF_IPI:
		if (!x2)
			return ACCESS_RESERVED;
		send_ipi(l, (value & VECTOR_MASK) | SHORTHAND_SELF << ICR_SHORTHAND_SHIFT, 0);
		break;
	case REG_APR:
		return x2 ? ACCESS_RESERVED : ACCESS_DENIED;
	case REG_ID: /* read-only here: SDM 11.4.6 leaves xAPIC ID writes model-specific */
	case REG_VERSION:
	case REG_PPR:
	case REG_TIMER_CURRENT:
		return ACCESS_DENIED;
	default:
		return ACCESS_RESERVED;
	}
	return ACCESS_OK;
}

/* --- xAPIC page --------------------------------------------------------- */

/* The register index an MMIO access reaches, or -1. */
static int mmio_register(const struct lapic *l, uint64_t offset, unsigned size)
{
	if ((l->apic_base & (LAPIC_BASE_EN | LAPIC_BASE_EXTD)) != LAPIC_BASE_EN)
		return -1;
	if (size != 4 || offset >= LAPIC_MMIO_SIZE || (offset & 0xf))
		return -1;
	return (int)(offset >> 4);
}

uint32_t lapic_mmio_read(struct lapic *l, uint64_t offset, unsigned size, uint64_t now_ns)
{
	int reg = mmio_register(l, offset, size);
	uint32_t value = 0;

	if (reg >= 0 && reg_read(l, (unsigned)reg, &value, now_ns) == ACCESS_RESERVED)
		signal_error(l, LAPIC_ESR_ILLEGAL_REGISTER);
	return value;
}

void lapic_mmio_write(struct lapic *l, uint64_t offset, unsigned size, uint32_t value,
		      uint64_t now_ns, uint64_t now_tsc)
{
	int reg = mmio_register(l, offset, size);

	if (reg >= 0 && reg_write(l, (unsigned)reg, value, now_ns, now_tsc) == ACCESS_RESERVED)
		signal_error(l, LAPIC_ESR_ILLEGAL_REGISTER);
}

/* --- MSRs ---------------------------------------------------------------- */

enum apic_mode { MODE_DISABLED, MODE_INVALID, MODE_XAPIC, MODE_X2APIC };

static enum apic_mode apic_mode(uint64_t base)
{
	return (enum apic_mode)((base & LAPIC_BASE_EN ? 2 : 0) | (base & LAPIC_BASE_EXTD ? 1 : 0));
}

/* SDM 11.12.5: the valid IA32_APIC_BASE transitions. */
static bool write_apic_base(struct lapic *l, uint64_t value)
{
	uint64_t reserved = 0x2ffULL; /* bits 7:0 and 9; BSP (8) is read-only */
	enum apic_mode from = apic_mode(l->apic_base), to = apic_mode(value);

	if (l->cfg.phys_addr_bits < 64)
		reserved |= ~0ULL << l->cfg.phys_addr_bits;
	if (!l->cfg.x2apic)
		reserved |= LAPIC_BASE_EXTD;
	if ((value & reserved) || to == MODE_INVALID)
		return false;
	/* x2APIC goes back to xAPIC only through disabled, and is entered only from xAPIC. */
	if ((from == MODE_X2APIC && to == MODE_XAPIC) || (from == MODE_DISABLED && to == MODE_X2APIC))
		return false;
	l->apic_base = (value & ~LAPIC_BASE_BSP) | (l->apic_base & LAPIC_BASE_BSP);
	if (to == MODE_DISABLED && from != MODE_DISABLED)
		reset_registers(l);
	else if (to == MODE_X2APIC && from == MODE_XAPIC)
		l->regs.ldr = x2apic_ldr(l->cfg.id);
	return true;
}

bool lapic_msr_read(struct lapic *l, uint32_t msr, uint64_t *value, uint64_t now_ns)
{
	uint32_t low;

	if (msr == LAPIC_MSR_APIC_BASE) {
		*value = l->apic_base;
		return true;
	}
	if (msr == LAPIC_MSR_TSC_DEADLINE) {
		if (!l->cfg.tsc_deadline)
			return false;
		/* Reads 0 outside TSC-deadline mode (SDM 11.5.4.1). */
		*value = timer_mode(l) == TIMER_TSC_DEADLINE ? l->regs.tsc_deadline : 0;
		return true;
	}
	if (!x2apic_mode(l) || msr < LAPIC_MSR_X2APIC_FIRST || msr > LAPIC_MSR_X2APIC_LAST)
		return false;
	unsigned reg = msr - LAPIC_MSR_X2APIC_FIRST;
	if (reg_read(l, reg, &low, now_ns) != ACCESS_OK)
		return false;
	*value = low;
	if (reg == REG_ICR_LOW)
		*value |= (uint64_t)l->regs.icr_high << 32;
	return true;
}

bool lapic_msr_write(struct lapic *l, uint32_t msr, uint64_t value, uint64_t now_ns,
		     uint64_t now_tsc)
{
	if (msr == LAPIC_MSR_APIC_BASE)
		return write_apic_base(l, value);
	if (msr == LAPIC_MSR_TSC_DEADLINE) {
		if (!l->cfg.tsc_deadline)
			return false;
		/* Ignored outside TSC-deadline mode; 0 disarms. */
		if (timer_mode(l) == TIMER_TSC_DEADLINE)
			l->regs.tsc_deadline = value;
		return true;
	}
	if (!x2apic_mode(l) || msr < LAPIC_MSR_X2APIC_FIRST || msr > LAPIC_MSR_X2APIC_LAST)
		return false;
	unsigned reg = msr - LAPIC_MSR_X2APIC_FIRST;
	/* The ICR is one 64-bit register; every other upper half is reserved. */
	if (reg == REG_ICR_LOW)
		l->regs.icr_high = (uint32_t)(value >> 32);
	else if (value >> 32)
		return false;
	return reg_write(l, reg, (uint32_t)value, now_ns, now_tsc) == ACCESS_OK;
}

static bool timer_register(unsigned reg)
{
	return reg == REG_LVT_TIMER || reg == REG_TIMER_INITIAL || reg == REG_TIMER_DIVIDE;
}

bool lapic_mmio_moves_timer(unsigned offset)
{
	return timer_register(offset >> 4);
}

bool lapic_msr_moves_timer(uint32_t msr)
{
	return msr == LAPIC_MSR_TSC_DEADLINE ||
	       (msr >= LAPIC_MSR_X2APIC_FIRST && msr <= LAPIC_MSR_X2APIC_LAST &&
		timer_register(msr - LAPIC_MSR_X2APIC_FIRST));
}

/* --- Device state ---------------------------------------------------------- */

static void lapic_state_reset(void *state)
{
	struct lapic *l = state;
	/* A copy: lapic_init clears the structure before it reads cfg. */
	const struct lapic_config cfg = l->cfg;
	void (*eoi_broadcast)(void *ctx, uint8_t vector) = l->eoi_broadcast;
	void (*ipi)(void *ctx, const struct lapic_ipi *ipi) = l->ipi;
	void *ctx = l->ctx;

	lapic_init(l, &cfg);
	l->eoi_broadcast = eoi_broadcast;
	l->ipi = ipi;
	l->ctx = ctx;
}

/* The IA32_APIC_BASE bits write_apic_base refuses, BSP (read-only, always set here) aside. */
static const char *apic_base_fault(const struct lapic *l)
{
	uint64_t reserved = 0x2ffULL;

	if (l->cfg.phys_addr_bits < 64)
		reserved |= ~0ULL << l->cfg.phys_addr_bits;
	if (!l->cfg.x2apic)
		reserved |= LAPIC_BASE_EXTD;
	if (l->apic_base & reserved)
		return "sets reserved bits";
	if (apic_mode(l->apic_base) == MODE_INVALID)
		return "has x2APIC mode without the enable bit";
	if (!(l->apic_base & LAPIC_BASE_BSP))
		return "lacks the BSP bit of the only vCPU";
	return NULL;
}

/*
 * Vectors 0-15 never reach IRR, ISR or TMR: lapic_accept refuses them
 * (SDM 11.5.2). An LVT entry or the ICR may hold one, as on hardware: the
 * SDM lets software write it and reports the illegal vector in ESR when
 * the interrupt is sent (11.5.3), so such a state is the guest's and
 * loads.
 */
static bool vectors_legal(const struct lapic *l, const char *device, struct devstate_error *err)
{
	static const struct {
		const char *name;
		size_t offset;
	} regs[] = {
		{ "regs.irr[]", offsetof(struct lapic, regs.irr) },
		{ "regs.isr[]", offsetof(struct lapic, regs.isr) },
		{ "regs.tmr[]", offsetof(struct lapic, regs.tmr) },
	};
	const uint32_t illegal = (1U << FIRST_LEGAL_VECTOR) - 1;

	for (unsigned i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
		uint32_t low;
		memcpy(&low, (const uint8_t *)l + regs[i].offset, sizeof(low));
		if (low & illegal)
			return devstate_refuse(err, device, regs[i].name, 0,
					       "= 0x%x sets vector %d, below %u", low,
					       31 - __builtin_clz(low & illegal), FIRST_LEGAL_VECTOR);
	}
	return true;
}

/* What the register writes let a guest reach; see each writer above. */
static bool lapic_state_check(const void *state, const void *live, const char *device,
                              struct devstate_error *err)
{
	(void)live;
	const struct lapic *l = state;
	const struct lapic_regs *r = &l->regs;
	const char *fault = apic_base_fault(l);
	bool x2 = x2apic_mode(l);

	if (fault)
		return devstate_refuse(err, device, "apic_base", 0, "= 0x%llx %s",
				       (unsigned long long)l->apic_base, fault);
	if (!vectors_legal(l, device, err))
		return false;
	if (r->irr_nonzero != (highest_vector(r->irr) >= 0))
		return devstate_refuse(err, device, "regs.irr_nonzero", 0,
				       "= %d disagrees with regs.irr", r->irr_nonzero);
	if (x2 ? r->ldr != x2apic_ldr(l->cfg.id) : (r->ldr & 0x00ffffffU) != 0)
		return devstate_refuse(err, device, "regs.ldr", 0, "= 0x%x is not %s", r->ldr,
				       x2 ? "derived from the x2APIC ID" : "an xAPIC logical ID");
	if (r->dfr != 0xffffffffU && (r->dfr & 0x0fffffffU))
		return devstate_refuse(err, device, "regs.dfr", 0, "= 0x%x sets bits 27:0",
				       r->dfr);
	if ((r->esr | r->esr_pending) & ~(uint32_t)(LAPIC_ESR_SEND_ILLEGAL_VECTOR |
						    LAPIC_ESR_RECEIVE_ILLEGAL_VECTOR |
						    LAPIC_ESR_ILLEGAL_REGISTER))
		return devstate_refuse(err, device, "regs.esr", 0,
				       "= 0x%x (pending 0x%x) holds an error this model never signals",
				       r->esr, r->esr_pending);
	if (r->icr_low & ~ICR_WRITABLE)
		return devstate_refuse(err, device, "regs.icr_low", 0, "= 0x%x sets reserved bits",
				       r->icr_low);
	if (!x2 && (r->icr_high & 0x00ffffffU))
		return devstate_refuse(err, device, "regs.icr_high", 0,
				       "= 0x%x sets bits 23:0 outside x2APIC mode", r->icr_high);
	for (unsigned i = 0; i < LAPIC_LVT_COUNT; i++) {
		if (r->lvt[i] & ~lvt_writable(l, i))
			return devstate_refuse(err, device, "regs.lvt[]", i,
					       "= 0x%x sets bits this entry does not have", r->lvt[i]);
		if (!(r->svr & SVR_ENABLE) && !(r->lvt[i] & LAPIC_LVT_MASKED))
			return devstate_refuse(err, device, "regs.lvt[]", i,
					       "= 0x%x is unmasked in a software-disabled APIC",
					       r->lvt[i]);
	}
	if (r->timer_divide & ~0xbU)
		return devstate_refuse(err, device, "regs.timer_divide", 0,
				       "= 0x%x sets bit 2, which write_timer_divide drops",
				       r->timer_divide);
	/* Each timer mode disarms the other's register (write_lvt, write_timer_initial). */
	if (timer_mode(l) == TIMER_TSC_DEADLINE ? r->timer_initial != 0 : r->tsc_deadline != 0)
		return devstate_refuse(err, device,
				       timer_mode(l) == TIMER_TSC_DEADLINE ? "regs.timer_initial" :
									     "regs.tsc_deadline",
				       0, "is armed outside its timer mode");
	return true;
}

static const struct devstate_field lapic_fields[] = {
	DEVSTATE_FIELD(struct lapic, apic_base, DEVSTATE_U64, 0, UINT64_MAX, 1),
	DEVSTATE_FIELD(struct lapic, regs.tpr, DEVSTATE_U32, 0, 0xff, 1),
	DEVSTATE_FIELD(struct lapic, regs.ldr, DEVSTATE_U32, 0, UINT32_MAX, 1),
	DEVSTATE_FIELD(struct lapic, regs.dfr, DEVSTATE_U32, 0, UINT32_MAX, 1),
	DEVSTATE_FIELD(struct lapic, regs.svr, DEVSTATE_U32, 0, SVR_WRITABLE, 1),
	DEVSTATE_ARRAY(struct lapic, regs.irr, DEVSTATE_U32, 0, UINT32_MAX, 1),
	DEVSTATE_ARRAY(struct lapic, regs.isr, DEVSTATE_U32, 0, UINT32_MAX, 1),
	DEVSTATE_ARRAY(struct lapic, regs.tmr, DEVSTATE_U32, 0, UINT32_MAX, 1),
	DEVSTATE_FIELD(struct lapic, regs.irr_nonzero, DEVSTATE_BOOL, 0, 1, 1),
	DEVSTATE_FIELD(struct lapic, regs.esr, DEVSTATE_U32, 0, 0xe0, 1),
	DEVSTATE_FIELD(struct lapic, regs.esr_pending, DEVSTATE_U32, 0, 0xe0, 1),
	DEVSTATE_FIELD(struct lapic, regs.icr_low, DEVSTATE_U32, 0, ICR_WRITABLE, 1),
	DEVSTATE_FIELD(struct lapic, regs.icr_high, DEVSTATE_U32, 0, UINT32_MAX, 1),
	DEVSTATE_ARRAY(struct lapic, regs.lvt, DEVSTATE_U32, 0, 0x7ffff, 1),
	DEVSTATE_FIELD(struct lapic, regs.timer_initial, DEVSTATE_U32, 0, UINT32_MAX, 1),
	DEVSTATE_FIELD(struct lapic, regs.timer_divide, DEVSTATE_U32, 0, 0xb, 1),
	DEVSTATE_FIELD(struct lapic, regs.tsc_deadline, DEVSTATE_U64, 0, UINT64_MAX, 1),
	DEVSTATE_FIELD(struct lapic, regs.timer_start_ns, DEVSTATE_U64, 0, UINT64_MAX, 1),
	DEVSTATE_FIELD(struct lapic, regs.timer_base_ticks, DEVSTATE_U64, 0, UINT64_MAX, 1),
	DEVSTATE_FIELD(struct lapic, regs.timer_expiries, DEVSTATE_U64, 0, UINT64_MAX, 1),
	DEVSTATE_FIELD(struct lapic, timer_fired_ns, DEVSTATE_U64, 0, UINT64_MAX, 1),
	DEVSTATE_FIELD(struct lapic, regs.nmi_pending, DEVSTATE_BOOL, 0, 1, 2),
};

const struct devstate_desc lapic_state_desc = DEVSTATE_DESC(
	struct lapic, "lapic", 2, lapic_fields, lapic_state_reset, lapic_state_check);
