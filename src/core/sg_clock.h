/*
 * sg_clock: the monotonic clock, for intervals and deadlines: one copy
 * for the whole gateway.  Inline: it sits on every request's path, and is one vDSO
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

/* The same clock in milliseconds, for deadlines counted in ms (poll, waits). */
static inline int64_t
sg_mono_ms(void)
{
	return (int64_t)(sg_mono_ns() / 1000000ull);
}

#endif
