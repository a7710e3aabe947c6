/*
 * The per-VM clock (vmm/vm_clock.c) on made-up host TSC values: offsets,
 * pause and resume without a jump or a burst, loaded time that goes on on
 * another host, conversion round trips, arithmetic near 2^64; and the PIT
 * and local APIC timers read through it across a pause.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/lapic.h"
#include "devices/pit.h"
#include "vmm/vm_clock.h"

#define HZ 2000000000ULL /* 2 ticks per ns */
#define S 1000000000ULL
#define MS 1000000ULL
#define HOST_START 123456789ULL

static struct vm_clock c;

static void test_a_new_clock_is_the_host_tsc_at_guest_time_zero(void **state)
{
	(void)state;
	vm_clock_init(&c, HZ, HOST_START);
	assert_false(vm_clock_stopped(&c));
	assert_int_equal(vm_clock_tsc_offset(&c), 0);
	assert_int_equal(vm_clock_guest_tsc(&c, HOST_START), HOST_START);
	assert_int_equal(vm_clock_ns(&c, HOST_START), 0);
	assert_int_equal(vm_clock_ns(&c, HOST_START + 3 * HZ + 2), 3 * S + 1);
	/* A rate of 0 (uncalibrated) must not divide by zero. */
	vm_clock_init(&c, 0, HOST_START);
	assert_int_equal(vm_clock_ns(&c, HOST_START + 1), S);
}

static void test_time_stands_still_while_stopped_and_goes_on_without_a_jump(void **state)
{
	(void)state;
	vm_clock_init(&c, HZ, HOST_START);
	uint64_t paused_at = HOST_START + 1 * HZ;
	vm_clock_stop(&c, paused_at);
	vm_clock_stop(&c, paused_at + HZ); /* a second stop changes nothing */
	assert_true(vm_clock_stopped(&c));
	uint64_t stopped_tsc = vm_clock_guest_tsc(&c, paused_at);
	for (uint64_t later = paused_at; later < paused_at + 100 * HZ; later += 7 * HZ) {
		assert_int_equal(vm_clock_ns(&c, later), 1 * S);
		assert_int_equal(vm_clock_guest_tsc(&c, later), stopped_tsc);
	}
	uint64_t resumed_at = paused_at + 100 * HZ;
	vm_clock_start(&c, resumed_at);
	vm_clock_start(&c, resumed_at + HZ); /* a second start changes nothing */
	assert_false(vm_clock_stopped(&c));
	/* On from where it stopped: the offset lost exactly the stopped time. */
	assert_int_equal(vm_clock_ns(&c, resumed_at), 1 * S);
	assert_int_equal(vm_clock_guest_tsc(&c, resumed_at), stopped_tsc);
	assert_int_equal(vm_clock_tsc_offset(&c), (uint64_t)0 - 100 * HZ);
	assert_int_equal(vm_clock_ns(&c, resumed_at + HZ / 2), 1 * S + S / 2);
	assert_int_equal(vm_clock_guest_tsc(&c, resumed_at + 5), stopped_tsc + 5);
}

static void test_a_guest_tsc_write_moves_the_tsc_not_guest_time(void **state)
{
	(void)state;
	vm_clock_init(&c, HZ, HOST_START);
	uint64_t now = HOST_START + 2 * HZ;
	vm_clock_set_guest_tsc(&c, now, 1000);
	assert_int_equal(vm_clock_guest_tsc(&c, now), 1000);
	assert_int_equal(vm_clock_guest_tsc(&c, now + 10), 1010);
	assert_int_equal(vm_clock_tsc_offset(&c), 1000 - now);
	assert_int_equal(vm_clock_ns(&c, now), 2 * S);
	assert_int_equal(vm_clock_ns(&c, now + HZ), 3 * S);
	assert_int_equal(vm_clock_host_tsc_at_guest_tsc(&c, 1010), now + 10);
	/* While stopped too: it reads the value written, and on from there. */
	vm_clock_stop(&c, now + HZ);
	vm_clock_set_guest_tsc(&c, now + 2 * HZ, 5);
	assert_int_equal(vm_clock_guest_tsc(&c, now + 3 * HZ), 5);
	assert_int_equal(vm_clock_ns(&c, now + 3 * HZ), 3 * S);
	vm_clock_start(&c, now + 4 * HZ);
	assert_int_equal(vm_clock_guest_tsc(&c, now + 4 * HZ + 2), 7);
	assert_int_equal(vm_clock_ns(&c, now + 4 * HZ + 2), 3 * S + 1);
}

/* What a Restore or a move does: the saved time goes on, on any host. */
static void test_loaded_time_goes_on_from_the_saved_values(void **state)
{
	(void)state;
	vm_clock_init(&c, HZ, HOST_START);
	uint64_t saved_at = HOST_START + 7 * HZ;
	vm_clock_stop(&c, saved_at);
	uint64_t saved_ns = vm_clock_ns(&c, saved_at), saved_tsc = vm_clock_guest_tsc(&c, saved_at);

	/* Another host: another rate, a TSC far behind this one's. */
	const uint64_t other_hz = 3000000000ULL, other_now = 42;
	struct vm_clock moved;
	vm_clock_init(&moved, other_hz, other_now);
	vm_clock_stop(&moved, other_now);
	vm_clock_load(&moved, other_now, saved_ns, saved_tsc);
	assert_int_equal(vm_clock_ns(&moved, other_now + 5 * other_hz), saved_ns);
	assert_int_equal(vm_clock_guest_tsc(&moved, other_now + 5 * other_hz), saved_tsc);
	uint64_t resumed = other_now + 5 * other_hz;
	vm_clock_start(&moved, resumed);
	uint64_t last = saved_ns;
	for (uint64_t t = resumed; t < resumed + 2 * other_hz; t += other_hz / 7) {
		uint64_t ns = vm_clock_ns(&moved, t);
		assert_true(ns >= last);
		last = ns;
	}
	assert_int_equal(vm_clock_ns(&moved, resumed + other_hz), saved_ns + S);
	assert_int_equal(vm_clock_guest_tsc(&moved, resumed + other_hz), saved_tsc + other_hz);

	/* Loaded into a running clock: it goes on at once. */
	vm_clock_init(&moved, other_hz, other_now);
	vm_clock_load(&moved, other_now, saved_ns, saved_tsc);
	assert_int_equal(vm_clock_ns(&moved, other_now), saved_ns);
	assert_int_equal(vm_clock_ns(&moved, other_now + 3), saved_ns + 1);
	assert_int_equal(vm_clock_guest_tsc(&moved, other_now + 3), saved_tsc + 3);
}

static void round_trips_at(uint64_t hz, uint64_t host_start)
{
	vm_clock_init(&c, hz, host_start);
	vm_clock_set_guest_tsc(&c, host_start, host_start * 3 + 17);
	for (uint64_t ns = 1; ns < 40 * S; ns = ns * 3 + 1) {
		uint64_t host = vm_clock_host_tsc_at_ns(&c, ns);
		/* Reached at that host TSC, and not one tick before. */
		assert_true(vm_clock_ns(&c, host) >= ns);
		assert_true(vm_clock_ns(&c, host - 1) < ns);
		uint64_t guest_tsc = vm_clock_guest_tsc(&c, host);
		assert_int_equal(vm_clock_host_tsc_at_guest_tsc(&c, guest_tsc), host);
	}
}

static void test_conversions_round_trip(void **state)
{
	(void)state;
	round_trips_at(HZ, HOST_START);
	round_trips_at(2399999999ULL, 987654321ULL);
	round_trips_at(17999999999ULL, 5);
	round_trips_at(1000, 77);
}

static void test_arithmetic_wraps_like_the_tsc_near_2_64(void **state)
{
	(void)state;
	/* The host TSC wraps while the VM runs: guest time does not notice. */
	uint64_t near_end = UINT64_MAX - 999;
	vm_clock_init(&c, HZ, near_end);
	assert_int_equal(vm_clock_ns(&c, near_end + 3000), 1500);
	assert_int_equal(vm_clock_guest_tsc(&c, near_end + 3000), 2000);
	assert_int_equal(vm_clock_host_tsc_at_ns(&c, 1500), 2000);

	/* The guest's TSC wraps past 2^64 as the hardware's does. */
	vm_clock_init(&c, HZ, HOST_START);
	vm_clock_set_guest_tsc(&c, HOST_START, UINT64_MAX - 9);
	assert_int_equal(vm_clock_guest_tsc(&c, HOST_START + 20), 10);
	assert_int_equal(vm_clock_ns(&c, HOST_START + 20), 10);
	assert_int_equal(vm_clock_host_tsc_at_guest_tsc(&c, 10), HOST_START + 20);

	/* A pause that straddles the wrap. */
	vm_clock_init(&c, HZ, near_end);
	vm_clock_stop(&c, near_end + 200);
	vm_clock_start(&c, near_end + 5000);
	assert_int_equal(vm_clock_ns(&c, near_end + 5000), 100);
	assert_int_equal(vm_clock_guest_tsc(&c, near_end + 5002), near_end + 202);

	/* A huge loaded guest time goes on without overflowing. */
	vm_clock_load(&c, 0, UINT64_MAX - 2 * S, 0);
	assert_int_equal(vm_clock_ns(&c, HZ), UINT64_MAX - S);

	/* The longest interval at the fastest rate converts exactly. */
	const uint64_t fast = 17999999999ULL;
	vm_clock_init(&c, fast, 0);
	unsigned __int128 want = (unsigned __int128)UINT64_MAX * S / fast;
	assert_true(vm_clock_ns(&c, UINT64_MAX) == (uint64_t)want);
}

/* --- the timer models on the VM's clock across a pause ---------------- */

/* PIT counter 0 in mode 2 (rate generator), lobyte/hibyte (8254 data sheet). */
static void pit_program_rate(struct pit *pit, uint16_t count, uint64_t now_ns)
{
	pit_write(pit, 3, 0x34, now_ns);
	pit_write(pit, 0, (uint8_t)count, now_ns);
	pit_write(pit, 0, (uint8_t)(count >> 8), now_ns);
}

static void test_a_pit_armed_before_a_pause_fires_on_guest_time(void **state)
{
	(void)state;
	struct pit pit;
	vm_clock_init(&c, HZ, HOST_START);
	pit_init(&pit);
	/* 1193 input clocks: one IRQ 0 every ~1 ms of guest time. */
	const uint64_t period_ns = 1193 * S / PIT_HZ;
	pit_program_rate(&pit, 1193, vm_clock_ns(&c, HOST_START));
	uint64_t first_due = pit_next_irq0_ns(&pit, 0);
	assert_true(first_due >= period_ns && first_due <= period_ns + 1);

	/* Paused half way through the first period, for ten host seconds. */
	uint64_t paused_at = HOST_START + HZ / 2000;
	vm_clock_stop(&c, paused_at);
	for (uint64_t t = paused_at; t <= paused_at + 10 * HZ; t += HZ)
		assert_false(pit_irq0_due(&pit, vm_clock_ns(&c, t)));
	uint64_t resumed_at = paused_at + 10 * HZ;
	vm_clock_start(&c, resumed_at);

	/* The scheduler's wake-up is the rest of the period after Resume. */
	uint64_t guest_due = pit_next_irq0_ns(&pit, vm_clock_ns(&c, resumed_at));
	uint64_t host_due = vm_clock_host_tsc_at_ns(&c, guest_due);
	assert_int_equal(guest_due, first_due);
	assert_int_equal(host_due, HOST_START + first_due * 2 + 10 * HZ);
	assert_false(pit_irq0_due(&pit, vm_clock_ns(&c, host_due - 1)));
	assert_true(pit_irq0_due(&pit, vm_clock_ns(&c, host_due)));
	/* No burst for the ten seconds: the next one is a whole period later. */
	assert_false(pit_irq0_due(&pit, vm_clock_ns(&c, host_due + HZ / 2000)));
	uint64_t second = pit_next_irq0_ns(&pit, vm_clock_ns(&c, host_due));
	assert_true(second >= 2 * period_ns && second <= 2 * period_ns + 1);
}

#define LAPIC_LVT_TIMER_REG 0x320
#define LAPIC_TIMER_INITIAL_REG 0x380
#define LAPIC_TIMER_DIVIDE_REG 0x3e0
#define LAPIC_DIVIDE_1 0xbU
#define LAPIC_TIMER_TSC_DEADLINE (2U << 17)

static struct lapic lapic;

static void lapic_start(void)
{
	const struct lapic_config cfg = { .bus_hz = 1000000000, .tsc_hz = HZ,
					  .tsc_deadline = true, .phys_addr_bits = 39,
					  .timer_floor_ns = LAPIC_TIMER_FLOOR_NS };
	lapic_init(&lapic, &cfg);
}

/* The LAPIC timer's state at host TSC value host: has it fired (now)? */
static bool lapic_fires_at(uint64_t host)
{
	return lapic_timer_run(&lapic, vm_clock_ns(&c, host), vm_clock_guest_tsc(&c, host));
}

static uint64_t lapic_next_host_tsc(uint64_t host)
{
	return vm_clock_host_tsc_at_ns(&c, lapic_next_event_ns(&lapic, vm_clock_ns(&c, host),
							     vm_clock_guest_tsc(&c, host)));
}

static void test_lapic_timers_armed_before_a_pause_fire_on_guest_time(void **state)
{
	(void)state;
	/* TSC-deadline mode compares with the guest's TSC: 1 ms of it ahead. */
	vm_clock_init(&c, HZ, HOST_START);
	vm_clock_set_guest_tsc(&c, HOST_START, 5000);
	lapic_start();
	lapic_mmio_write(&lapic, LAPIC_LVT_TIMER_REG, 4, LAPIC_TIMER_TSC_DEADLINE | 0xeb, 0, 5000);
	assert_true(lapic_msr_write(&lapic, LAPIC_MSR_TSC_DEADLINE, 5000 + HZ / 1000, 0, 5000));
	uint64_t paused_at = HOST_START + HZ / 2500; /* 0.4 ms on */
	vm_clock_stop(&c, paused_at);
	for (uint64_t t = paused_at; t <= paused_at + 30 * HZ; t += 3 * HZ)
		assert_false(lapic_fires_at(t));
	uint64_t resumed_at = paused_at + 30 * HZ;
	vm_clock_start(&c, resumed_at);
	uint64_t due = resumed_at + HZ / 1000 - HZ / 2500; /* the 0.6 ms left */
	assert_int_equal(lapic_next_host_tsc(resumed_at), due);
	assert_false(lapic_fires_at(due - 1));
	assert_true(lapic_fires_at(due));
	assert_int_equal(lapic_pending(&lapic), 0xeb);

	/* One-shot mode counts guest ns: 2 ms at one bus clock per ns. */
	vm_clock_init(&c, HZ, HOST_START);
	lapic_start();
	lapic_mmio_write(&lapic, LAPIC_LVT_TIMER_REG, 4, 0xec, 0, 0);
	lapic_mmio_write(&lapic, LAPIC_TIMER_DIVIDE_REG, 4, LAPIC_DIVIDE_1, 0, 0);
	lapic_mmio_write(&lapic, LAPIC_TIMER_INITIAL_REG, 4, 2 * MS, 0, 0);
	paused_at = HOST_START + HZ / 1000; /* 1 ms on */
	vm_clock_stop(&c, paused_at);
	assert_false(lapic_fires_at(paused_at + 60 * HZ));
	resumed_at = paused_at + 60 * HZ;
	vm_clock_start(&c, resumed_at);
	due = resumed_at + HZ / 1000;
	assert_int_equal(lapic_next_host_tsc(resumed_at), due);
	assert_false(lapic_fires_at(due - 1));
	assert_true(lapic_fires_at(due));
	assert_int_equal(lapic_pending(&lapic), 0xec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_new_clock_is_the_host_tsc_at_guest_time_zero),
		cmocka_unit_test(test_time_stands_still_while_stopped_and_goes_on_without_a_jump),
		cmocka_unit_test(test_a_guest_tsc_write_moves_the_tsc_not_guest_time),
		cmocka_unit_test(test_loaded_time_goes_on_from_the_saved_values),
		cmocka_unit_test(test_conversions_round_trip),
		cmocka_unit_test(test_arithmetic_wraps_like_the_tsc_near_2_64),
		cmocka_unit_test(test_a_pit_armed_before_a_pause_fires_on_guest_time),
		cmocka_unit_test(test_lapic_timers_armed_before_a_pause_fire_on_guest_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
