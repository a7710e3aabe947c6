/*
 * The legacy timer path a PC operating system uses: program both 8259As as
 * Linux does, run the 8254's counter 0 as a 100-Hz rate generator on
 * IRQ 0, take its interrupts while halted, and check the rate against a
 * one-shot of counter 2 polled through port 0x61 (TSC calibration). It
 * also prints the CMOS clock, which should show the host's date.
 */
#include "guest.h"

#define PIT_VECTOR 0x20
#define TICKS 10
#define PIT_100HZ 11932
#define PIT_10MS 11932

static volatile unsigned ticks;

static void on_timer(void)
{
	ticks++;
	outb(0x20, 0x20); /* non-specific EOI */
}

static void pic_init_like_linux(void)
{
	outb(0x20, 0x11);
	outb(0x21, PIT_VECTOR);
	outb(0x21, 0x04);
	outb(0x21, 0x01);
	outb(0xa0, 0x11);
	outb(0xa1, PIT_VECTOR + 8);
	outb(0xa1, 0x02);
	outb(0xa1, 0x01);
	outb(0xa1, 0xff);
	outb(0x21, 0xfe); /* only IRQ 0 */
}

static uint8_t cmos(uint8_t index)
{
	outb(0x70, index);
	return inb(0x71);
}

static void put_bcd(uint8_t v)
{
	char s[3] = { (char)('0' + (v >> 4)), (char)('0' + (v & 0xf)), 0 };
	put(s);
}

/* The CMOS clock, read as a PC BIOS does: wait out the update cycle. */
static void report_rtc(void)
{
	while (cmos(0x0a) & 0x80)
		;
	uint8_t century = cmos(0x32), year = cmos(0x09), month = cmos(0x08), day = cmos(0x07);
	uint8_t hour = cmos(0x04), minute = cmos(0x02), second = cmos(0x00);
	check((cmos(0x0b) & 0x06) == 0x02 && (cmos(0x0d) & 0x80),
	      "rtc: BCD, 24-hour, valid RAM");
	put("rtc: ");
	put_bcd(century);
	put_bcd(year);
	put("-");
	put_bcd(month);
	put("-");
	put_bcd(day);
	put(" ");
	put_bcd(hour);
	put(":");
	put_bcd(minute);
	put(":");
	put_bcd(second);
	put("\n");
}

int main(void)
{
	report_rtc();
	set_irq_handler(PIT_VECTOR, on_timer);
	pic_init_like_linux();
	check(inb(0x21) == 0xfe, "pic: the mask reads back");

	/* Counter 2, mode 0, 10 ms, gate on: how many TSC ticks is 10 ms? */
	outb(0x61, (inb(0x61) & ~0x02) | 0x01);
	outb(0x43, 0xb0);
	outb(0x42, PIT_10MS & 0xff);
	outb(0x42, PIT_10MS >> 8);
	uint64_t t0 = rdtsc();
	while (!(inb(0x61) & 0x20))
		;
	uint64_t tsc_per_10ms = rdtsc() - t0;
	check(tsc_per_10ms > 0, "pit: counter 2 reached terminal count (port 0x61 bit 5)");

	/* Counter 0 at 100 Hz: TICKS interrupts, halting in between. */
	outb(0x43, 0x34);
	outb(0x40, PIT_100HZ & 0xff);
	outb(0x40, PIT_100HZ >> 8);
	t0 = rdtsc();
	__asm__ volatile("sti");
	while (ticks < TICKS)
		__asm__ volatile("hlt");
	__asm__ volatile("cli");
	uint64_t elapsed = rdtsc() - t0;
	check(ticks == TICKS, "pit: IRQ 0 delivered through the PIC while halted");

	/*
	 * TICKS periods of 10 ms against the one-shot's measure of 10 ms. A
	 * wrong divisor or mode is off by far more than the halving or
	 * doubling allowed here; ticks that merge when other guests hog the
	 * CPU cost a few percent, not that.
	 */
	uint64_t expected = TICKS * tsc_per_10ms;
	put("pic_pit: 100 ms of IRQ 0 took ");
	put_u64(elapsed);
	put(" TSC ticks; 10 x the 10-ms one-shot: ");
	put_u64(expected);
	put("\n");
	check(elapsed * 2 >= expected && elapsed <= expected * 2,
	      "pit: the periodic rate agrees with the one-shot");

	/* Masked: no more interrupts. */
	outb(0x21, 0xff);
	unsigned before = ticks;
	__asm__ volatile("sti");
	t0 = rdtsc();
	while (rdtsc() - t0 < 3 * tsc_per_10ms)
		__asm__ volatile("pause");
	__asm__ volatile("cli");
	check(ticks == before, "pic: a masked IRQ 0 is not delivered");
	return 0;
}
