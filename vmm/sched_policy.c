#include "vmm/sched_policy.h"

int sched_pick(struct sched_queue *q, struct sched_entity *const *entities, unsigned count)
{
	int best = -1;
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
		if (best < 0 || e->vruntime < entities[best]->vruntime)
			best = (int)i;
	}
	if (best >= 0 && entities[best]->vruntime > q->min_vruntime)
		q->min_vruntime = entities[best]->vruntime;
	return best;
}

void sched_charge(struct sched_entity *e, uint64_t ran_tsc)
{
	e->vruntime += ran_tsc;
}

static uint64_t until(uint64_t at, uint64_t now)
{
	return at > now ? at - now : 1;
}

uint64_t sched_slice(const struct sched_slice_limits *l, unsigned runnable, uint64_t now,
		     uint64_t own_next, uint64_t others_next)
{
	uint64_t slice = runnable > 1 ? l->slice / runnable : l->slice;

	if (slice < l->min_slice)
		slice = l->min_slice;
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
