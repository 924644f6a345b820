/*
 * sg_simulator: synthetic responses for sandbox calls.  The output always
 * conforms to the operation's output schema, and it is a pure function of
 * (seed, salt, input): the same call gives the same answer, which makes
 * explorers' experiments repeatable.
 */
#ifndef SG_SIMULATOR_H
#define SG_SIMULATOR_H

#include <jansson.h>
#include <stdint.h>

#include "schema/sg_schema.h"

/*
 * Returns a new reference to the synthetic output, or NULL when the schema
 * cannot be satisfied (apply-time checks call this to refuse such
 * definitions).
 *
 * `examples` (may be NULL) is an array of example outputs from the
 * definition; one is chosen deterministically and then completed.  Output
 * properties whose name matches a top-level input property, and whose value
 * the output schema accepts, echo the input (create_contact returns the
 * email it was given).  `salt` separates operations ("crm.create_contact").
 */
json_t *sg_sim_generate(const struct sg_schema *output, const json_t *examples, const json_t *input,
                        uint64_t seed, const char *salt);

/*
 * The same, for examples the caller has checked against `output` (the
 * connector loader does, for every operation): the output is identical,
 * without checking the chosen example again on every call.  The final
 * output is still checked against the schema.
 */
json_t *sg_sim_generate_checked(const struct sg_schema *output, const json_t *examples,
                                const json_t *input, uint64_t seed, const char *salt);

#endif
