#include "devices/i6300esb.h"

#include <string.h>

void i6300esb_init(struct i6300esb *w, bool timed_out)
{
	memset(w, 0, sizeof(*w));
	w->timed_out = timed_out;
}

/*
 * How long a stage of `ticks` counts: 2^15 or 2^5 PCI clocks a tick. A
 * preload of 0 counts one tick, so every stage takes time and the
 * catch-up in i6300esb_run ends.
 */
static uint64_t stage_ns(const struct i6300esb *w, uint32_t ticks)
{
	unsigned shift = w->config & I6300ESB_CONFIG_FREQ ? 5 : 15;

	return ((uint64_t)(ticks ? ticks : 1) << shift) * I6300ESB_PCI_CLOCK_NS;
}

static bool counting(const struct i6300esb *w)
{
	return (w->lock & I6300ESB_LOCK_ENABLE) && !(w->lock & I6300ESB_LOCK_FREE_RUN);
}

/* A reload, or enabling: the first stage starts over. */
static void restart(struct i6300esb *w, uint64_t now_ns)
{
	if (!counting(w)) {
		w->stage = 0;
		w->deadline_ns = 0;
		return;
	}
	w->stage = 1;
	w->deadline_ns = now_ns + stage_ns(w, w->preload[0]);
}

void i6300esb_config_write(struct i6300esb *w, uint16_t config, uint8_t lock, uint64_t now_ns)
{
	bool was = counting(w);

	w->config = config & I6300ESB_CONFIG_WRITABLE;
	/* Once locked, nothing but a reset changes the lock register (6300ESB datasheet 11.2). */
	if (!(w->lock & I6300ESB_LOCK_LOCKED))
		w->lock = lock & I6300ESB_LOCK_WRITABLE;
	if (counting(w) != was)
		restart(w, now_ns);
}

uint32_t i6300esb_read(const struct i6300esb *w, uint64_t offset, unsigned size)
{
	(void)size;
	return offset == I6300ESB_RELOAD && w->timed_out ? I6300ESB_RELOAD_TIMEOUT : 0;
}

void i6300esb_write(struct i6300esb *w, uint64_t offset, unsigned size, uint32_t value,
		    uint64_t now_ns)
{
	bool unlocked = w->unlock == 2;

	/*
	 * The first unlock value starts the sequence whatever came before, as
	 * in QEMU's model: Linux unlocks, reads RELOAD, and unlocks again.
	 * Older drivers wrote it with byte accesses.
	 */
	if (offset == I6300ESB_RELOAD && (size == 1 || size == 2)) {
		if (value == I6300ESB_UNLOCK1) {
			w->unlock = 1;
			return;
		}
		if (value == I6300ESB_UNLOCK2 && w->unlock == 1) {
			w->unlock = 2;
			return;
		}
	}
	/* Any other access ends the sequence; only the one after it counts. */
	w->unlock = 0;
	if (!unlocked)
		return;
	if ((offset == I6300ESB_TIMER1 || offset == I6300ESB_TIMER2) && size == 4) {
		w->preload[offset == I6300ESB_TIMER2] = value & I6300ESB_PRELOAD_MASK;
	} else if (offset == I6300ESB_RELOAD && size == 2) {
		if (value & I6300ESB_RELOAD_TIMEOUT)
			w->timed_out = false;
		if (value & I6300ESB_RELOAD_KICK)
			restart(w, now_ns);
	}
}

bool i6300esb_run(struct i6300esb *w, uint64_t now_ns)
{
	while (w->stage && now_ns >= w->deadline_ns) {
		if (w->stage == 1) {
			w->stage = 2;
			w->deadline_ns += stage_ns(w, w->preload[1]);
			continue;
		}
		if (!(w->config & I6300ESB_CONFIG_NO_REBOOT)) {
			w->timed_out = true;
			w->stage = 0;
			w->deadline_ns = 0;
			return true;
		}
		/* The output is off: it counts on from now, as QEMU's does, and resets nothing. */
		restart(w, now_ns);
	}
	return false;
}

uint64_t i6300esb_next_event(const struct i6300esb *w)
{
	return w->stage ? w->deadline_ns : 0;
}

static void i6300esb_state_reset(void *state)
{
	i6300esb_init(state, false);
}

static bool i6300esb_state_check(const void *state, const void *live, const char *device,
				 struct devstate_error *err)
{
	const struct i6300esb *w = state;

	(void)live;
	if (w->stage > 2)
		return devstate_refuse(err, device, "stage", 0, "= %u: 0, 1 or 2", w->stage);
	if ((w->stage != 0) != counting(w))
		return devstate_refuse(err, device, "stage", 0, "= %u with the watchdog %s", w->stage,
				       counting(w) ? "enabled" : "stopped");
	/* Guest time in ns is far below 2^62 (146 years); the clock's arithmetic needs room. */
	if (w->deadline_ns >> 62)
		return devstate_refuse(err, device, "deadline_ns", 0, "= %llu: too far",
				       (unsigned long long)w->deadline_ns);
	return true;
}

static const struct devstate_field i6300esb_fields[] = {
	DEVSTATE_FIELD(struct i6300esb, config, DEVSTATE_U16, 0, I6300ESB_CONFIG_WRITABLE, 1),
	DEVSTATE_FIELD(struct i6300esb, lock, DEVSTATE_U8, 0, I6300ESB_LOCK_WRITABLE, 1),
	DEVSTATE_FIELD(struct i6300esb, unlock, DEVSTATE_U8, 0, 2, 1),
	DEVSTATE_ARRAY(struct i6300esb, preload, DEVSTATE_U32, 0, I6300ESB_PRELOAD_MASK, 1),
	DEVSTATE_FIELD(struct i6300esb, stage, DEVSTATE_U8, 0, 2, 1),
	DEVSTATE_FIELD(struct i6300esb, deadline_ns, DEVSTATE_U64, 0, UINT64_MAX, 1),
	DEVSTATE_FIELD(struct i6300esb, timed_out, DEVSTATE_BOOL, 0, 1, 1),
};

const struct devstate_desc i6300esb_state_desc =
	DEVSTATE_DESC(struct i6300esb, "i6300esb", 1, i6300esb_fields, i6300esb_state_reset,
		      i6300esb_state_check);
