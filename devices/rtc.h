/*
 * Model of the PC's CMOS real-time clock (Motorola MC146818A data sheet)
 * at ports 0x70 (index, bit 7 masks NMI) and 0x71 (data). The time of day
 * runs from the host's wall clock at boot plus the time the caller passes
 * in (the VM's guest time, which stands still while it is paused:
 * docs/time.md); a guest that sets the clock gets an offset of its own.
 * BCD or binary and 12- or 24-hour formats follow status register B; the
 * update-in-progress flag is raised for the last 244 us of every second as
 * on the real part.
 * Not modelled: alarm, periodic and update interrupts (IRQ 8) — status C
 * reads 0 — and NVRAM contents other than the valid-RAM bit (reads 0).
 * Plain C, no hardware access.
 */
#ifndef DEVICES_RTC_H
#define DEVICES_RTC_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/devstate.h"

#define RTC_INDEX_PORT 0x70
#define RTC_NVRAM_SIZE 128

struct rtc {
	uint8_t index;
	uint8_t reg_a, reg_b;
	int64_t offset_s;      /* guest time minus host time */
	uint64_t host_epoch_s; /* host wall clock at host_ns_base, seconds since 1970 */
	uint64_t host_ns_base;
	uint8_t nvram[RTC_NVRAM_SIZE];
};

/* epoch_s: the host's time of day at now_ns (seconds since 1970-01-01 UTC). */
void rtc_init(struct rtc *rtc, uint64_t epoch_s, uint64_t now_ns);

/*
 * Device state (devstate.h): the registers, NVRAM and the guest's offset
 * from the host's wall clock. host_epoch_s and host_ns_base are the host's
 * clock reference, not the device's: a loaded clock keeps its offset from
 * the wall clock of the host it runs on.
 */
extern const struct devstate_desc rtc_state_desc;

uint8_t rtc_read(struct rtc *rtc, unsigned offset, uint64_t now_ns);
void rtc_write(struct rtc *rtc, unsigned offset, uint8_t value, uint64_t now_ns);

#endif
