/* Civil calendar conversions (proleptic Gregorian, UTC). Plain C. */
#ifndef LIB_CALENDAR_H
#define LIB_CALENDAR_H

#include <stdint.h>

struct calendar_time {
	unsigned year, month, day, hour, minute, second;
	unsigned weekday; /* 1 = Sunday, as the CMOS clock counts */
};

void calendar_from_epoch(uint64_t epoch_s, struct calendar_time *t);
/* @pre a valid date from 1970 on; months 1-12, days 1-31. */
uint64_t calendar_to_epoch(const struct calendar_time *t);

#endif
