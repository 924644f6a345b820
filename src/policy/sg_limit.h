/*
 * sg_limit: one rate window ("2/s" with a burst of 3) as written in YAML and
 * as GCRA parameters.  Used by policies, rules and connectors alike.
 */
#ifndef SG_LIMIT_H
#define SG_LIMIT_H

#include <stdint.h>

#include "throttle/sg_gcra.h"

struct sg_limit {
	struct sg_gcra_limit gcra; /* emission_ns 0: no limit set */
	double rate;               /* calls per period, as written */
	uint32_t period_s;         /* 1, 60, 3600 or 86400 */
	char spec[32];             /* "2/s", for messages */
};

/* Parses "2/s", "100/m", "5000/d", "10/h" into rate and period; -1 when malformed. */
int sg_limit_parse(const char *spec, uint32_t burst, struct sg_limit *out);

/* Seconds an empty bucket takes to refill completely (the GCRA window), at least 1. */
uint64_t sg_limit_window_s(const struct sg_limit *l);

#endif
