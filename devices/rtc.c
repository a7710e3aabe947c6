#include "devices/rtc.h"

#include "lib/calendar.h"

#include <string.h>

/* Register indexes and status bits (MC146818A data sheet, register map). */
enum {
	REG_SECONDS = 0x00,
	REG_MINUTES = 0x02,
	REG_HOURS = 0x04,
	REG_WEEKDAY = 0x06,
	REG_DAY = 0x07,
	REG_MONTH = 0x08,
	REG_YEAR = 0x09,
	REG_A = 0x0a,
	REG_B = 0x0b,
	REG_C = 0x0c,
	REG_D = 0x0d,
	REG_CENTURY = 0x32, /* the ACPI FADT's conventional century register */
};

#define INDEX_MASK 0x7f
#define A_UIP 0x80
#define A_DIVIDER_32K 0x20
#define A_RATE_1024 0x06
#define B_24H 0x02
#define B_BINARY 0x04
#define B_SET 0x80
#define D_VALID_RAM 0x80
#define HOUR_PM 0x80
#define NS_PER_S 1000000000ULL
/* The update cycle: UIP is set 244 us before the seconds change. */
#define UIP_WINDOW_NS 244000ULL

void rtc_init(struct rtc *rtc, uint64_t epoch_s, uint64_t now_ns)
{
	memset(rtc, 0, sizeof(*rtc));
	rtc->host_epoch_s = epoch_s;
	rtc->host_ns_base = now_ns;
	rtc->reg_a = A_DIVIDER_32K | A_RATE_1024;
	rtc->reg_b = B_24H;
}

static uint64_t guest_epoch(const struct rtc *rtc, uint64_t now_ns, uint64_t *ns_in_second)
{
	uint64_t elapsed = now_ns > rtc->host_ns_base ? now_ns - rtc->host_ns_base : 0;
	*ns_in_second = elapsed % NS_PER_S;
	return (uint64_t)((int64_t)(rtc->host_epoch_s + elapsed / NS_PER_S) + rtc->offset_s);
}

static uint8_t to_bcd(unsigned v)
{
	return (uint8_t)((v / 10) << 4 | v % 10);
}

static unsigned from_bcd(uint8_t v)
{
	return (v >> 4) * 10 + (v & 0xf);
}

static uint8_t encode(const struct rtc *rtc, unsigned v)
{
	return (rtc->reg_b & B_BINARY) ? (uint8_t)v : to_bcd(v);
}

static unsigned decode(const struct rtc *rtc, uint8_t v)
{
	return (rtc->reg_b & B_BINARY) ? v : from_bcd(v);
}

static uint8_t encode_hour(const struct rtc *rtc, unsigned hour)
{
	if (rtc->reg_b & B_24H)
		return encode(rtc, hour);
	unsigned h12 = hour % 12 ? hour % 12 : 12;
	return (uint8_t)(encode(rtc, h12) | (hour >= 12 ? HOUR_PM : 0));
}

static unsigned decode_hour(const struct rtc *rtc, uint8_t v)
{
	if (rtc->reg_b & B_24H)
		return decode(rtc, v);
	unsigned h = decode(rtc, v & ~HOUR_PM) % 12;
	return (v & HOUR_PM) ? h + 12 : h;
}

uint8_t rtc_read(struct rtc *rtc, unsigned offset, uint64_t now_ns)
{
	if (!(offset & 1))
		return 0xff; /* the index register is write-only */

	uint64_t ns;
	struct calendar_time t;
	calendar_from_epoch(guest_epoch(rtc, now_ns, &ns), &t);
	switch (rtc->index) {
	case REG_SECONDS: return encode(rtc, t.second);
	case REG_MINUTES: return encode(rtc, t.minute);
	case REG_HOURS: return encode_hour(rtc, t.hour);
	case REG_WEEKDAY: return encode(rtc, t.weekday);
	case REG_DAY: return encode(rtc, t.day);
	case REG_MONTH: return encode(rtc, t.month);
	case REG_YEAR: return encode(rtc, t.year % 100);
	case REG_CENTURY: return encode(rtc, t.year / 100);
	case REG_A:
		/* Guests wait for UIP to clear before reading the time. */
		return (uint8_t)(rtc->reg_a | (ns >= NS_PER_S - UIP_WINDOW_NS ? A_UIP : 0));
	case REG_B: return rtc->reg_b;
	case REG_C: return 0;
	case REG_D: return D_VALID_RAM;
	default: return rtc->nvram[rtc->index];
	}
}

/* A write to a time register moves the guest's clock, not the host's. */
static void set_field(struct rtc *rtc, uint8_t index, uint8_t value, uint64_t now_ns)
{
	uint64_t ns;
	struct calendar_time t;
	uint64_t now = guest_epoch(rtc, now_ns, &ns);

	calendar_from_epoch(now, &t);
	switch (index) {
	case REG_SECONDS: t.second = decode(rtc, value) % 60; break;
	case REG_MINUTES: t.minute = decode(rtc, value) % 60; break;
	case REG_HOURS: t.hour = decode_hour(rtc, value) % 24; break;
	case REG_DAY: t.day = decode(rtc, value); break;
	case REG_MONTH: t.month = decode(rtc, value); break;
	case REG_YEAR: t.year = t.year / 100 * 100 + decode(rtc, value) % 100; break;
	case REG_CENTURY: t.year = decode(rtc, value) % 100 * 100 + t.year % 100; break;
	default: return;
	}
	/* A nonsense date from the guest is ignored rather than wrapped. */
	if (t.month < 1 || t.month > 12 || t.day < 1 || t.day > 31 || t.year < 1970)
		return;
	rtc->offset_s += (int64_t)(calendar_to_epoch(&t) - now);
}

void rtc_write(struct rtc *rtc, unsigned offset, uint8_t value, uint64_t now_ns)
{
	if (!(offset & 1)) {
		rtc->index = value & INDEX_MASK; /* bit 7 is the NMI mask */
		return;
	}
	switch (rtc->index) {
	case REG_A:
		rtc->reg_a = value & ~A_UIP;
		break;
	case REG_B:
		rtc->reg_b = value;
		break;
	case REG_C:
	case REG_D:
	case REG_WEEKDAY: /* derived from the date */
		break;
	case REG_SECONDS:
	case REG_MINUTES:
	case REG_HOURS:
	case REG_DAY:
	case REG_MONTH:
	case REG_YEAR:
	case REG_CENTURY:
		set_field(rtc, rtc->index, value, now_ns);
		break;
	default:
		rtc->nvram[rtc->index] = value;
		break;
	}
}

/* 10000-01-01: the CMOS century register counts years up to 9999. */
#define GUEST_EPOCH_LIMIT 253402300800LL

static void rtc_state_reset(void *state)
{
	struct rtc *rtc = state;

	rtc_init(rtc, rtc->host_epoch_s, rtc->host_ns_base);
}

/*
 * guest_epoch() adds the offset to the host's clock in 64-bit signed
 * arithmetic: keep the sum a date the calendar handles, as set_field does.
 */
static bool rtc_state_check(const void *state, const void *live, const char *device,
                            struct devstate_error *err)
{
	(void)live;
	const struct rtc *rtc = state;
	int64_t host = rtc->host_epoch_s < GUEST_EPOCH_LIMIT ? (int64_t)rtc->host_epoch_s : 0;

	if (rtc->offset_s < -host || rtc->offset_s >= GUEST_EPOCH_LIMIT - host)
		return devstate_refuse(err, device, "offset_s", 0,
				       "= %lld puts the clock outside 1970..9999",
				       (long long)rtc->offset_s);
	return true;
}

/* index selects nvram[] (below RTC_NVRAM_SIZE); reg_a never holds UIP (bit 7). */
static const struct devstate_field rtc_fields[] = {
	DEVSTATE_FIELD(struct rtc, index, DEVSTATE_U8, 0, RTC_NVRAM_SIZE - 1, 1),
	DEVSTATE_FIELD(struct rtc, reg_a, DEVSTATE_U8, 0, 0x7f, 1),
	DEVSTATE_FIELD(struct rtc, reg_b, DEVSTATE_U8, 0, 0xff, 1),
	/* Two's complement, bounded by rtc_state_check. */
	DEVSTATE_FIELD(struct rtc, offset_s, DEVSTATE_U64, 0, UINT64_MAX, 1),
	DEVSTATE_ARRAY(struct rtc, nvram, DEVSTATE_U8, 0, 0xff, 1),
};

const struct devstate_desc rtc_state_desc =
	DEVSTATE_DESC(struct rtc, "rtc", 1, rtc_fields, rtc_state_reset, rtc_state_check);
