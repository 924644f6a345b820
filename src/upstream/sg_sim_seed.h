/*
 * sg_sim_seed: the simulator's draw seed for one call, from the server's
 * seed, the operation and the call's input.  The same JSON input gives the
 * same seed whatever its key order or spacing, since it is hashed from the
 * parsed value (type tags, lengths, keys in byte order) rather than text.
 */
#ifndef SG_SIM_SEED_H
#define SG_SIM_SEED_H

#include <stdint.h>

#include "json/sg_json.h"

/*
 * SipHash-2-4 of (salt, input), keyed by `seed`.  NULL is no input, hashed
 * as {} (a call without a body reads as one with {}).  The input's document
 * must be live.  -1 when out of memory or the input nests deeper than 256
 * levels.
 */
int sg_sim_seed(uint64_t seed, const char *salt, const struct sg_json_val *input, uint64_t *out);

#endif
