#include "vmm/vm_clock.h"

#define NS_PER_S 1000000000ULL

/* Whole seconds and the rest, so no product overflows 64 bits (hz < 18 GHz). */
static uint64_t ticks_to_ns(uint64_t ticks, uint64_t hz)
{
	return ticks / hz * NS_PER_S + ticks % hz * NS_PER_S / hz;
}

/* Rounded up: the tick at which ns have passed, never one before. */
static uint64_t ns_to_ticks(uint64_t ns, uint64_t hz)
{
	return ns / NS_PER_S * hz + (ns % NS_PER_S * hz + NS_PER_S - 1) / NS_PER_S;
}

void vm_clock_init(struct vm_clock *c, uint64_t tsc_hz, uint64_t host_tsc)
{
	*c = (struct vm_clock){ .tsc_hz = tsc_hz ? tsc_hz : 1, .epoch_tsc = host_tsc };
}

uint64_t vm_clock_guest_tsc(const struct vm_clock *c, uint64_t host_tsc)
{
	return c->stopped ? c->stopped_tsc : host_tsc + c->tsc_offset;
}

uint64_t vm_clock_ns(const struct vm_clock *c, uint64_t host_tsc)
{
	return c->epoch_ns + ticks_to_ns(vm_clock_guest_tsc(c, host_tsc) - c->epoch_tsc, c->tsc_hz);
}

void vm_clock_set_guest_tsc(struct vm_clock *c, uint64_t host_tsc, uint64_t guest_tsc)
{
	uint64_t moved = guest_tsc - vm_clock_guest_tsc(c, host_tsc);

	c->tsc_offset += moved;
	c->stopped_tsc += moved;
	/* The same guest time is now called by a TSC value `moved` further on. */
	c->epoch_tsc += moved;
}

uint64_t vm_clock_tsc_offset(const struct vm_clock *c)
{
	return c->tsc_offset;
}

void vm_clock_stop(struct vm_clock *c, uint64_t host_tsc)
{
	if (c->stopped)
		return;
	c->stopped_tsc = vm_clock_guest_tsc(c, host_tsc);
	c->stopped = true;
}

void vm_clock_start(struct vm_clock *c, uint64_t host_tsc)
{
	if (!c->stopped)
		return;
	/* The guest TSC goes on from where it stopped: the offset loses the stopped time. */
	c->tsc_offset = c->stopped_tsc - host_tsc;
	c->stopped = false;
}

bool vm_clock_stopped(const struct vm_clock *c)
{
	return c->stopped;
}

void vm_clock_load(struct vm_clock *c, uint64_t host_tsc, uint64_t guest_ns, uint64_t guest_tsc)
{
	c->epoch_ns = guest_ns;
	c->epoch_tsc = guest_tsc;
	c->stopped_tsc = guest_tsc;
	c->tsc_offset = guest_tsc - host_tsc;
}

uint64_t vm_clock_host_tsc_at_ns(const struct vm_clock *c, uint64_t guest_ns)
{
	/* A time before the epoch has passed: the epoch's host TSC is as good. */
	uint64_t since_epoch = guest_ns > c->epoch_ns ? guest_ns - c->epoch_ns : 0;

	return vm_clock_host_tsc_at_guest_tsc(c, c->epoch_tsc + ns_to_ticks(since_epoch, c->tsc_hz));
}

uint64_t vm_clock_host_tsc_at_guest_tsc(const struct vm_clock *c, uint64_t guest_tsc)
{
	return guest_tsc - c->tsc_offset;
}
