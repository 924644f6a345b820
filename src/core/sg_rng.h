/*
 * sg_rng: xoshiro256**, a small fast generator for values that must be
 * varied or repeatable but not secret (trace ids, simulated data).  Never
 * use it for keys or anything an attacker must not predict: that is
 * libsodium's job.
 */
#ifndef SG_RNG_H
#define SG_RNG_H

#include <stdint.h>

struct sg_rng {
	uint64_t s[4];
};

/* Expands one 64-bit seed into a full state (splitmix64), so any seed is usable. */
void sg_rng_seed(struct sg_rng *r, uint64_t seed);
uint64_t sg_rng_next(struct sg_rng *r);

#endif
