/*
 * sg_simulator: synthetic responses for sandbox calls.  The output always
 * conforms to the operation's output schema, and it is a pure function of
 * (seed, salt, input): the same call gives the same answer, which makes
 * explorers' experiments repeatable.
 */
#ifndef SG_SIMULATOR_H
#define SG_SIMULATOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json/sg_json.h"
#include "schema/sg_schema.h"

/*
 * Appends the synthetic output for one call to `out` as one JSON value.
 * `input`/`input_len`: the call's body as JSON text (already validated; ""
 * or NULL means no input, like {}).  The simulator parses it itself with
 * sg_json_parse when it needs it (the per-thread parser: any document the
 * caller held is dead afterwards), draws, writes, then checks the written
 * output against `output` by parsing it and validating (retrying once
 * without re-rolled ids).  Returns 0, or -1 (schema cannot be satisfied,
 * input that does not parse within SG_SCHEMA_MAX_DEPTH, out of memory) with
 * out->len restored.
 *
 * `examples` (may be NULL) is an array of example outputs from the
 * definition; one is chosen deterministically and then completed: its
 * keys first, then the schema's other properties in schema order, then
 * required names left to additionalProperties.  Output properties whose
 * name matches a top-level input property, and whose value the output
 * schema accepts, echo the input (create_contact returns the email it was
 * given).  `salt` separates operations ("crm.create_contact").  `checked`
 * says the caller has checked every example against `output` (the
 * connector loader does), so the chosen one is not checked again; the
 * output is the same either way.
 *
 * No jansson value is made: the schema's and examples' json_t are only
 * read, and nothing is allocated once the thread's slab and parser have
 * grown.  Two things cost more: examples not `checked`, and a container in
 * an enum, a const or a schema's own examples, are each checked through
 * sg_schema_validate_sub_jansson (a dump and a parse).  To place the output
 * inside a value another writer is writing, call sg_jw_slot on that writer
 * first.
 */
int sg_sim_write(struct sg_jbuf *out, const struct sg_schema *output, const json_t *examples,
                 const char *input, size_t input_len, uint64_t seed, const char *salt,
                 bool checked);

/*
 * The same as a new jansson value, for cold callers (apply-time checks,
 * tests): a new reference, or NULL when sg_sim_write fails.  `input` may
 * be NULL (no input).
 */
json_t *sg_sim_generate(const struct sg_schema *output, const json_t *examples, const json_t *input,
                        uint64_t seed, const char *salt);

/* The same with `checked` set: for examples the caller has checked against `output`. */
json_t *sg_sim_generate_checked(const struct sg_schema *output, const json_t *examples,
                                const json_t *input, uint64_t seed, const char *salt);

#endif
