/*
 * clock.h - the one clock kit: the monotonic clock every deadline, timeout
 * and duration in Wharf is measured with, and the wall clock for times that
 * are stored or shown.
 *
 * Never mix the two: a monotonic value means nothing outside this boot and
 * must never be written to disk or sent to another host; a wall-clock value
 * jumps when the administrator sets the time and must never time a deadline.
 */
#ifndef WHARF_BASE_CLOCK_H
#define WHARF_BASE_CLOCK_H

#include <stdint.h>
#include <sys/time.h>

/* CLOCK_MONOTONIC in milliseconds, the clock of every deadline in Wharf. */
int64_t monotonic_ms(void);
/* CLOCK_MONOTONIC in microseconds (sd_notify's MONOTONIC_USEC, rates). */
int64_t monotonic_us(void);
/* CLOCK_REALTIME in milliseconds since the epoch (due times in the spool). */
int64_t wallclock_ms(void);

/* A duration in milliseconds as the struct timeval libevent and setsockopt
 * take; a negative duration is zero (a deadline already past fires now). */
struct timeval clock_timeval_ms(int64_t ms);

#endif
