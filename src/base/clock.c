/*
 * clock.c - monotonic and wall clock readings (see clock.h). Must never
 * cache a reading: every call asks the kernel (vDSO, no system call).
 */
#include "base/clock.h"

#include <time.h>

static int64_t read_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t monotonic_ms(void)
{
    return read_us(CLOCK_MONOTONIC) / 1000;
}

int64_t monotonic_us(void)
{
    return read_us(CLOCK_MONOTONIC);
}

int64_t wallclock_ms(void)
{
    return read_us(CLOCK_REALTIME) / 1000;
}

struct timeval clock_timeval_ms(int64_t ms)
{
    if (ms < 0)
        ms = 0;
    return (struct timeval){.tv_sec = (time_t)(ms / 1000),
                            .tv_usec = (suseconds_t)(ms % 1000) * 1000};
}
