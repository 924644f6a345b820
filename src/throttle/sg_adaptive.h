/*
 * sg_adaptive: an adaptive concurrency limit per live upstream, in the
 * style of Netflix's Gradient2.  Each finished call reports how long the
 * upstream took; every WINDOW samples the controller compares the recent
 * average (short) with a slow average (long):
 *
 *   gradient = clamp(long / short, 0.5, 1)
 *   new      = limit * gradient + sqrt(limit)      (queue allowance)
 *   limit    = 0.8 * limit + 0.2 * new, within [min, max]
 *
 * So when the upstream slows down the limit falls, by up to half of it per
 * window, and when it recovers the limit climbs back by about sqrt(limit)
 * per window.  It does not climb while fewer than half of the allowed calls
 * are in flight: an idle upstream proves nothing about a busier one.
 *
 * Controllers live in a process-wide registry keyed by connector name, so
 * what they learned survives a reload.
 */
#ifndef SG_ADAPTIVE_H
#define SG_ADAPTIVE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SG_ADAPTIVE_WINDOW 10 /* samples per update */

struct sg_adaptive_config {
	uint32_t initial, min, max; /* 1 <= min <= initial <= max */
};

struct sg_adaptive {
	char name[65];        /* a connector name: up to 64 characters */
	pthread_mutex_t lock; /* guards the fields below it */
	struct sg_adaptive_config cfg;
	double limit;
	double long_rtt_ns; /* 0 until the first window */
	double window_sum_ns;
	uint32_t window_n;
	_Atomic uint32_t limit_now; /* floor(limit), read without the lock on admission */
	_Atomic uint32_t in_flight;
	_Atomic uint64_t refused;
};

/*
 * The controller for `connector`, made with `cfg` on first use.  An
 * existing controller is returned as it is: parsing a definition must not
 * change a live limit, since the snapshot it belongs to may never be
 * published.  NULL past the registry's size.
 */
struct sg_adaptive *sg_adaptive_for(const char *connector, const struct sg_adaptive_config *cfg);

/*
 * Adopts `cfg` (a published definition), keeping what was learned,
 * clamped to the new bounds.  Called when a snapshot is published.
 */
void sg_adaptive_configure(struct sg_adaptive *a, const struct sg_adaptive_config *cfg);

/* Takes a place for a call; -1 when the upstream already has `limit` calls. */
int sg_adaptive_acquire(struct sg_adaptive *a);

/*
 * Gives the place back.  With `sample`, `rtt_ns` (how long the upstream took
 * to answer) feeds the controller.
 */
void sg_adaptive_release(struct sg_adaptive *a, bool sample, uint64_t rtt_ns);

/* For tests: a standalone controller (not in the registry). */
void sg_adaptive_init(struct sg_adaptive *a, const char *name, const struct sg_adaptive_config *c);

/* Writes the limit, in-flight and refused families for every upstream. */
void sg_adaptive_render(FILE *f);

#endif
