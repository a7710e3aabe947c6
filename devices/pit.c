#include "devices/pit.h"

#include <string.h>

/* Control word (8254 data sheet, "Control Word Format"). */
#define CW_COUNTER_SHIFT 6
#define CW_READ_BACK 3
#define CW_ACCESS_SHIFT 4
#define CW_ACCESS_LATCH 0
#define CW_MODE_SHIFT 1
#define PORT_B_GATE2 0x01
#define PORT_B_SPEAKER 0x02
#define PORT_B_OUT2 0x20
#define NS_PER_S 1000000000ULL

void pit_init(struct pit *pit)
{
	memset(pit, 0, sizeof(*pit));
	/* Counters 0 and 1 have their gates tied high on PCs. */
	pit->c[0].gate = pit->c[1].gate = true;
	for (unsigned i = 0; i < 3; i++) {
		pit->c[i].reload = 0x10000;
		pit->c[i].access = 3;
	}
}

/*
 * Conversions between nanoseconds and input-clock ticks, split into whole
 * seconds and the rest so that no product overflows 64 bits (and no
 * 128-bit division, which would need libgcc, is used).
 */
static uint64_t ns_to_ticks(uint64_t ns)
{
	return ns / NS_PER_S * PIT_HZ + ns % NS_PER_S * PIT_HZ / NS_PER_S;
}

/* Rounded up: at the returned time the tick has happened. */
static uint64_t ticks_to_ns(uint64_t ticks)
{
	return ticks / PIT_HZ * NS_PER_S + (ticks % PIT_HZ * NS_PER_S + PIT_HZ - 1) / PIT_HZ;
}

static uint64_t ticks_since(uint64_t start_ns, uint64_t now_ns)
{
	return now_ns > start_ns ? ns_to_ticks(now_ns - start_ns) : 0;
}

static uint64_t ticks_done(const struct pit_counter *c, uint64_t now_ns)
{
	if (!c->armed)
		return 0;
	return c->paused_ticks + (c->gate ? ticks_since(c->start_ns, now_ns) : 0);
}

static bool periodic(const struct pit_counter *c)
{
	return c->mode == 2 || c->mode == 3;
}

/* The value a read (or a latch) sees now. */
static uint16_t current_count(const struct pit_counter *c, uint64_t now_ns)
{
	uint64_t done = ticks_done(c, now_ns);

	if (!c->armed)
		return (uint16_t)c->reload;
	if (periodic(c))
		return (uint16_t)(c->reload - done % c->reload);
	/* Mode 0 keeps counting down past zero, wrapping at 16 bits. */
	return (uint16_t)(c->reload - done);
}

static bool output(const struct pit_counter *c, uint64_t now_ns)
{
	uint64_t done = ticks_done(c, now_ns);

	if (!c->armed)
		return c->mode != 0;
	switch (c->mode) {
	case 2:
		/* Low for one clock when the count reaches 1. */
		return done % c->reload != c->reload - 1;
	case 3:
		/* High for the first half of each period. */
		return done % c->reload < (c->reload + 1) / 2;
	default:
		/* Mode 0: low until terminal count, then high. */
		return done >= c->reload;
	}
}

static void load_count(struct pit_counter *c, uint16_t value, uint64_t now_ns)
{
	c->reload = value ? value : 0x10000;
	c->armed = true;
	c->start_ns = now_ns;
	c->paused_ticks = 0;
}

void pit_write(struct pit *pit, unsigned offset, uint8_t value, uint64_t now_ns)
{
	offset &= 3;
	if (offset == 3) {
		unsigned sel = value >> CW_COUNTER_SHIFT;
		if (sel == CW_READ_BACK)
			return; /* read-back: unused by PC operating systems */
		struct pit_counter *c = &pit->c[sel];
		unsigned access = (value >> CW_ACCESS_SHIFT) & 3;
		if (access == CW_ACCESS_LATCH) {
			if (!c->latched) {
				c->latch = current_count(c, now_ns);
				c->latched = true;
			}
			return;
		}
		c->access = (uint8_t)access;
		c->mode = (value >> CW_MODE_SHIFT) & 7;
		if (c->mode > 5)
			c->mode -= 4; /* 6 and 7 are aliases of 2 and 3 */
		if (c->mode != 2 && c->mode != 3)
			c->mode = 0;
		c->armed = false;
		c->latched = false;
		c->write_msb_next = c->read_msb_next = false;
		if (sel == 0)
			pit->irq_ticks_seen = 0;
		return;
	}

	struct pit_counter *c = &pit->c[offset];
	switch (c->access) {
	case 1:
		load_count(c, value, now_ns);
		break;
	case 2:
		load_count(c, (uint16_t)(value << 8), now_ns);
		break;
	default:
		if (!c->write_msb_next) {
			c->pending_lsb = value;
			c->write_msb_next = true;
			break;
		}
		c->write_msb_next = false;
		load_count(c, (uint16_t)(c->pending_lsb | (value << 8)), now_ns);
		break;
	}
	if (offset == 0)
		pit->irq_ticks_seen = 0;
}

uint8_t pit_read(struct pit *pit, unsigned offset, uint64_t now_ns)
{
	offset &= 3;
	if (offset == 3)
		return 0xff; /* the control word register is write-only */
	struct pit_counter *c = &pit->c[offset];
	uint16_t value = c->latched ? c->latch : current_count(c, now_ns);
	uint8_t byte;

	switch (c->access) {
	case 1:
		byte = (uint8_t)value;
		c->latched = false;
		break;
	case 2:
		byte = (uint8_t)(value >> 8);
		c->latched = false;
		break;
	default:
		byte = c->read_msb_next ? (uint8_t)(value >> 8) : (uint8_t)value;
		if (c->read_msb_next)
			c->latched = false;
		c->read_msb_next = !c->read_msb_next;
		break;
	}
	return byte;
}

uint8_t pit_port_b_read(struct pit *pit, uint64_t now_ns)
{
	const struct pit_counter *c2 = &pit->c[2];

	return (uint8_t)((c2->gate ? PORT_B_GATE2 : 0) | (pit->speaker_data ? PORT_B_SPEAKER : 0) |
			 (output(c2, now_ns) ? PORT_B_OUT2 : 0));
}

void pit_port_b_write(struct pit *pit, uint8_t value, uint64_t now_ns)
{
	struct pit_counter *c2 = &pit->c[2];
	bool gate = value & PORT_B_GATE2;

	pit->speaker_data = value & PORT_B_SPEAKER;
	if (gate == c2->gate)
		return;
	if (!gate) {
		/* Counting stops; what was counted is kept. */
		c2->paused_ticks = ticks_done(c2, now_ns);
	} else if (periodic(c2)) {
		/* A rising gate restarts modes 2 and 3 from the reload value. */
		c2->paused_ticks = 0;
	}
	c2->start_ns = now_ns;
	c2->gate = gate;
}

bool pit_irq0_due(struct pit *pit, uint64_t now_ns)
{
	const struct pit_counter *c = &pit->c[0];

	if (!c->armed || now_ns < pit->irq_quiet_until_ns)
		return false;
	uint64_t done = ticks_done(c, now_ns);
	/* Rising edges so far: one per period (modes 2, 3), one at terminal count (0). */
	uint64_t edges = periodic(c) ? done / c->reload : (done >= c->reload ? 1 : 0);
	bool due = edges > pit->irq_ticks_seen;
	pit->irq_ticks_seen = edges;
	if (due)
		pit->irq_quiet_until_ns = now_ns + PIT_IRQ0_FLOOR_NS;
	return due;
}

uint64_t pit_next_irq0_ns(const struct pit *pit, uint64_t now_ns)
{
	const struct pit_counter *c = &pit->c[0];

	if (!c->armed)
		return 0;
	uint64_t next_edge_ticks;
	if (periodic(c))
		next_edge_ticks = (pit->irq_ticks_seen + 1) * c->reload;
	else if (pit->irq_ticks_seen == 0)
		next_edge_ticks = c->reload;
	else
		return 0;
	uint64_t at = c->start_ns + ticks_to_ns(next_edge_ticks - c->paused_ticks);
	if (at < pit->irq_quiet_until_ns)
		at = pit->irq_quiet_until_ns;
	return at > now_ns ? at : now_ns;
}

static void pit_state_reset(void *state)
{
	pit_init(state);
}

/*
 * pit_write stores modes 1, 4 and 5 as 0 (they behave as mode 0 here), so
 * a record holding one came from no build of this model. The range stays
 * the 8254's 0..5, so that a build that models them reads the same
 * records. Counters 0 and 1 have their gates tied high on a PC: only port
 * 0x61 moves counter 2's.
 */
static bool pit_state_check(const void *state, const void *live, const char *device,
                            struct devstate_error *err)
{
	(void)live;
	const struct pit *pit = state;

	for (unsigned i = 0; i < 3; i++) {
		uint8_t mode = pit->c[i].mode;
		if (mode != 0 && mode != 2 && mode != 3)
			return devstate_refuse(err, device, "c[].mode", i,
					       "= %u is stored as mode 0 by this model", mode);
		if (i < 2 && !pit->c[i].gate)
			return devstate_refuse(err, device, "c[].gate", i,
					       "= 0 on a counter whose gate is tied high");
	}
	return true;
}

/* access: 1 LSB, 2 MSB, 3 both (0 is the latch command, never stored); reload 1..65536. */
static const struct devstate_field pit_fields[] = {
	DEVSTATE_STRUCT_ARRAY(struct pit, c, mode, DEVSTATE_U8, 0, 5, 1),
	DEVSTATE_STRUCT_ARRAY(struct pit, c, access, DEVSTATE_U8, 1, 3, 1),
	DEVSTATE_STRUCT_ARRAY(struct pit, c, write_msb_next, DEVSTATE_BOOL, 0, 1, 1),
	DEVSTATE_STRUCT_ARRAY(struct pit, c, read_msb_next, DEVSTATE_BOOL, 0, 1, 1),
	DEVSTATE_STRUCT_ARRAY(struct pit, c, latched, DEVSTATE_BOOL, 0, 1, 1),
	DEVSTATE_STRUCT_ARRAY(struct pit, c, latch, DEVSTATE_U16, 0, 0xffff, 1),
	DEVSTATE_STRUCT_ARRAY(struct pit, c, pending_lsb, DEVSTATE_U16, 0, 0xff, 1),
	DEVSTATE_STRUCT_ARRAY(struct pit, c, reload, DEVSTATE_U32, 1, 0x10000, 1),
	DEVSTATE_STRUCT_ARRAY(struct pit, c, armed, DEVSTATE_BOOL, 0, 1, 1),
	DEVSTATE_STRUCT_ARRAY(struct pit, c, gate, DEVSTATE_BOOL, 0, 1, 1),
	DEVSTATE_STRUCT_ARRAY(struct pit, c, start_ns, DEVSTATE_U64, 0, UINT64_MAX, 1),
	DEVSTATE_STRUCT_ARRAY(struct pit, c, paused_ticks, DEVSTATE_U64, 0, UINT64_MAX, 1),
	DEVSTATE_FIELD(struct pit, speaker_data, DEVSTATE_BOOL, 0, 1, 1),
	DEVSTATE_FIELD(struct pit, irq_ticks_seen, DEVSTATE_U64, 0, UINT64_MAX, 1),
	DEVSTATE_FIELD(struct pit, irq_quiet_until_ns, DEVSTATE_U64, 0, UINT64_MAX, 1),
};

const struct devstate_desc pit_state_desc =
	DEVSTATE_DESC(struct pit, "pit", 1, pit_fields, pit_state_reset, pit_state_check);
