/*
 * sg_clock: the monotonic clock in nanoseconds, for intervals and
 * deadlines.  Inline: it sits on every request's path, and is one vDSO
 * call.
 */
#ifndef SG_CLOCK_H
#define SG_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t
sg_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
