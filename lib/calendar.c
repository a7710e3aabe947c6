#include "lib/calendar.h"

#define SECONDS_PER_DAY 86400ULL

/*
 * Days since 1970-01-01 from a civil date and back, by H. Hinnant's
 * "chrono-compatible low-level date algorithms" (eras of 400 years).
 */
static uint64_t days_from_civil(unsigned y, unsigned m, unsigned d)
{
	y -= m <= 2;
	unsigned era = y / 400;
	unsigned yoe = y - era * 400;
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (uint64_t)era * 146097 + doe - 719468;
}

void calendar_from_epoch(uint64_t epoch_s, struct calendar_time *t)
{
	uint64_t days = epoch_s / SECONDS_PER_DAY, secs = epoch_s % SECONDS_PER_DAY;
	uint64_t z = days + 719468;
	uint64_t era = z / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;

	t->day = doy - (153 * mp + 2) / 5 + 1;
	t->month = mp < 10 ? mp + 3 : mp - 9;
	t->year = (unsigned)(yoe + era * 400) + (t->month <= 2);
	t->hour = (unsigned)(secs / 3600);
	t->minute = (unsigned)(secs / 60 % 60);
	t->second = (unsigned)(secs % 60);
	t->weekday = (unsigned)((days + 4) % 7) + 1; /* 1970-01-01 was a Thursday */
}

uint64_t calendar_to_epoch(const struct calendar_time *t)
{
	return days_from_civil(t->year, t->month, t->day) * SECONDS_PER_DAY +
	       t->hour * 3600ULL + t->minute * 60ULL + t->second;
}
