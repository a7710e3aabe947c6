#include "vmm/sched_policy.h"

static bool before(const struct sched_entity *a, int b, struct sched_entity *const *entities)
{
	return b < 0 || a->vruntime < entities[b]->vruntime;
}

int sched_pick(struct sched_queue *q, struct sched_entity *const *entities, unsigned count)
{
	int least = -1, least_due = -1;
	uint64_t floor = q->min_vruntime > q->wake_credit ? q->min_vruntime - q->wake_credit : 0;

	for (unsigned i = 0; i < count; i++) {
		struct sched_entity *e = entities[i];
		if (!e->runnable)
			continue;
		/*
		 * A vCPU runnable all along is never below min_vruntime; one that
		 * was not comes back with at most the credit, not its whole sleep.
		 */
		if (e->vruntime < floor)
			e->vruntime = floor;
		if (before(e, least, entities))
			least = (int)i;
		if (e->timer_due && before(e, least_due, entities))
			least_due = (int)i;
	}
	if (least < 0)
		return -1;
	/* The fair order alone moves min_vruntime: a due timer's lead is not everyone's. */
	if (entities[least]->vruntime > q->min_vruntime)
		q->min_vruntime = entities[least]->vruntime;
	int picked = least;
	if (least_due >= 0 &&
	    entities[least_due]->vruntime - entities[least]->vruntime <= q->timer_lead)
		picked = least_due;
	entities[picked]->timer_due = false;
	entities[picked]->ahead = picked != least;
	return picked;
}

void sched_charge(struct sched_entity *e, uint64_t ran_tsc)
{
	e->vruntime += ran_tsc;
}

static uint64_t until(uint64_t at, uint64_t now)
{
	return at > now ? at - now : 1;
}

uint64_t sched_slice(const struct sched_slice_limits *l, const struct sched_entity *picked,
		     unsigned runnable, uint64_t now, uint64_t own_next, uint64_t others_next)
{
	uint64_t slice = runnable > 1 ? l->slice / runnable : l->slice;

	if (slice < l->min_slice)
		slice = l->min_slice;
	if (picked->ahead)
		slice = l->ahead_slice;
	/* Its own timer: rate-limited by the device floors already. */
	if (own_next && until(own_next, now) < slice)
		slice = until(own_next, now);
	if (others_next) {
		uint64_t cut = until(others_next, now);
		if (cut < l->min_slice)
			cut = l->min_slice;
		if (cut < slice)
			slice = cut;
	}
	return slice;
}

uint64_t sched_timer_deadline(uint64_t deadline, uint64_t now, uint64_t floor_tsc)
{
	if (deadline && (deadline <= now || deadline - now < floor_tsc))
		return now + floor_tsc;
	return deadline;
}
