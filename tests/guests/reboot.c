/*
 * A guest that reboots itself through the PC reset port (0xcf9) and checks
 * that it comes back: the first boot leaves a mark in CMOS NVRAM, which
 * survives a reset as it does on a PC (RAM does not: the hypervisor clears
 * it and reloads the image).
 */
#include "guest.h"

#define CMOS_MARK 0x40
#define MARK 0xb0

static uint8_t cmos(uint8_t index)
{
	outb(0x70, index);
	return inb(0x71);
}

int main(void)
{
	if (cmos(CMOS_MARK) != MARK) {
		outb(0x70, CMOS_MARK);
		outb(0x71, MARK);
		put("reboot: first boot, resetting through port 0xcf9\n");
		outb(0xcf9, 0x06);
		check(false, "reboot: still running after the reset request");
		return 0;
	}
	check(true, "reboot: came back after the reset with its CMOS mark");
	return 0;
}
