/*
 * sg_sim_scalar: the simulator's strings, integers and numbers, each drawn
 * from the caller's generator and written as one value.  Each returns 0
 * when it wrote the value, -1 when the schema node rules out making one
 * (a pattern, bounds that leave nothing), or SG_SIM_NO_MEMORY.
 */
#ifndef SG_SIM_SCALAR_H
#define SG_SIM_SCALAR_H

#include <jansson.h>
#include <stdint.h>

#include "core/sg_rng.h"
#include "json/sg_json.h"

#define SG_SIM_NO_MEMORY (-2)

/* The keywords of one schema node the simulator reads; NULL when absent.  Borrowed from it. */
struct sg_sim_kw {
	const json_t *type, *konst, *enums, *examples;
	const json_t *properties, *required, *additional;
	const json_t *items, *min_items, *max_items;
	const json_t *pattern, *format, *min_length, *max_length;
	const json_t *minimum, *maximum, *xminimum, *xmaximum;
};

/* Reads `node`'s keywords in one pass (a schema of true or false has none). */
void sg_sim_kw_read(const json_t *node, struct sg_sim_kw *k);

/* minLength and friends (`v`), which compiling proved whole and not negative; `dflt` when NULL. */
uint64_t sg_sim_count(const json_t *v, uint64_t dflt);

/* Text for a property called `name` (may be NULL) of operation `salt`; see sg_sim_text.h. */
int sg_sim_string(struct sg_rng *r, struct sg_jw *w, const struct sg_sim_kw *k, const char *name,
                  const char *salt);
/* A whole number within the bounds, exact as a double. */
int sg_sim_integer(struct sg_rng *r, struct sg_jw *w, const struct sg_sim_kw *k);
/* A number within the bounds; an open side spans 1000 from the other. */
int sg_sim_number(struct sg_rng *r, struct sg_jw *w, const struct sg_sim_kw *k);

#endif
