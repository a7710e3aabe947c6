/*
 * The scheduler's policy, plain C so the host tests it (vmm/sched.c runs
 * it on the hardware). Fair share: every vCPU accounts the TSC ticks it ran
 * (its virtual runtime) and the runnable one with the least runs next, so
 * over a period each runnable vCPU gets its share whatever its neighbours'
 * wake-ups. A vCPU that slept comes back at most a bounded credit behind
 * the queue (CFS's sleeper credit): a woken idle guest runs first, once,
 * so its timer tick is not lost behind busy guests, but halting does not
 * bank time. The slice is the period shared by the runnable vCPUs, never
 * below a floor (CFS's latency target and minimum granularity), so every
 * runnable vCPU runs at least once a period or once a floor per neighbour:
 * a guest that spins, never halting, takes its timer interrupt within that,
 * not after a whole slice of each busy neighbour. Slices are cut short by
 * timers, another VM's only down to the floor, so a guest storming its
 * timer cannot make the scheduler switch more often than that floor allows.
 */
#ifndef VMM_SCHED_POLICY_H
#define VMM_SCHED_POLICY_H

#include <stdbool.h>
#include <stdint.h>

/*
 * 10 ms: short enough for interactive guests, long against exit costs; the
 * period runnable vCPUs share, each its part of it.
 */
#define SCHED_SLICE_NS 10000000ULL
/*
 * 1 ms: no slice is shorter (however many vCPUs share the period, and
 * whatever another VM's timer says), so at most 1000 switches a second,
 * and an idle Linux guest's tick (4 ms at HZ=250) is late by less than a
 * tick, never lost.
 */
#define SCHED_MIN_SLICE_NS 1000000ULL
/* How far behind the queue a sleeper comes back: one minimum slice. */
#define SCHED_WAKE_CREDIT_NS SCHED_MIN_SLICE_NS
/*
 * How far ahead of the least runnable vCPU one whose timer came due may
 * still run first: one period. Within it a due timer reaches a vCPU that
 * spins (never halting, so it gets no sleeper's credit) at the next
 * scheduling point, at most a minimum slice away, rather than after a turn
 * of every busy neighbour; beyond it, it waits its turn, so a vCPU that
 * keeps a timer due takes at most its share plus one period.
 */
#define SCHED_TIMER_LEAD_NS SCHED_SLICE_NS
/*
 * How long a vCPU run ahead of its turn for its timer runs: 100 µs, enough
 * to take the interrupt and hand its work on, short enough that a guest
 * spinning beside ten busy ones with a timer every few milliseconds stays
 * within its share, so its lead never runs out and every timer comes on
 * time (tests/unit/test_sched_policy.c).
 */
#define SCHED_AHEAD_SLICE_NS 100000ULL
/*
 * The earliest a paravirtual timer (HC_SET_TIMER) fires after it is set:
 * 100 µs, the floor of the local APIC timer too (devices/lapic.h).
 */
#define SCHED_TIMER_FLOOR_NS 100000ULL

struct sched_entity {
	uint64_t vruntime; /* TSC ticks run, lifted on waking (sched_pick) */
	bool runnable;     /* set by the caller before each sched_pick */
	bool timer_due;    /* set by the caller when its timer fires, cleared when picked */
	bool ahead;        /* sched_pick chose it ahead of its turn for its timer */
};

struct sched_queue {
	uint64_t min_vruntime; /* never decreases: the least runnable vruntime seen */
	uint64_t wake_credit;  /* TSC ticks */
	uint64_t timer_lead;   /* TSC ticks */
};

/*
 * The runnable entity with the least vruntime (the lowest index on a tie),
 * or -1 when none is runnable; but a runnable one whose timer is due and
 * whose vruntime is at most timer_lead above that least goes first (the
 * least such). A runnable entity more than wake_credit behind min_vruntime
 * (it slept, or its VM was paused) is first lifted to min_vruntime -
 * wake_credit. The picked entity's timer_due is cleared and its ahead set
 * when it was not the least.
 */
int sched_pick(struct sched_queue *q, struct sched_entity *const *entities, unsigned count);

/* The entity ran ran_tsc TSC ticks. */
void sched_charge(struct sched_entity *e, uint64_t ran_tsc);

struct sched_slice_limits {
	uint64_t slice;       /* TSC ticks */
	uint64_t min_slice;   /* TSC ticks, at most slice */
	uint64_t ahead_slice; /* TSC ticks, at most min_slice */
};

/*
 * The TSC ticks the picked entity may run from now: its part of the slice
 * among `runnable` vCPUs (at least min_slice; ahead_slice when it runs
 * ahead of its turn), cut short by its own VM's next timer event
 * (own_next) and by any other VM's (others_next), the latter no shorter
 * than min_slice. 0: no event.
 */
uint64_t sched_slice(const struct sched_slice_limits *l, const struct sched_entity *picked,
		     unsigned runnable, uint64_t now, uint64_t own_next, uint64_t others_next);

/*
 * A guest's timer deadline (TSC) as armed: 0 (cancel) stays 0; one in the
 * past or closer than floor_tsc to now moves to now + floor_tsc, so a loop
 * of SET_TIMER(past); HLT wakes at most once per floor.
 */
uint64_t sched_timer_deadline(uint64_t deadline, uint64_t now, uint64_t floor_tsc);

#endif
