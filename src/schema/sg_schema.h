/*
 * sg_schema: a JSON Schema subset, compiled once when a definition is loaded
 * and then checked against request and response bodies.
 *
 * Supported keywords: type (string or array of strings), properties,
 * required, additionalProperties (bool or schema), enum, const, minLength,
 * maxLength (in code points), minimum, maximum, exclusiveMinimum,
 * exclusiveMaximum, pattern (POSIX extended regex, compiled at load),
 * items (schema), minItems, maxItems, format (recorded, not enforced),
 * description/title/examples/default/$comment (annotations, ignored).
 * Any other keyword is a compile error, so a typo never silently disables a
 * check.
 */
#ifndef SG_SCHEMA_H
#define SG_SCHEMA_H

#include <jansson.h>
#include <stddef.h>

/* Instances nested deeper than this are refused before validation. */
#define SG_SCHEMA_MAX_DEPTH 64

struct sg_schema;

struct sg_schema_error {
	/* RFC 6901 JSON Pointer ("" is the root; "/a/0/b~1c"). */
	char pointer[256];
	char message[256];
};

/*
 * Compiles `schema`.  On failure returns NULL and fills `err`, whose pointer
 * then points into the schema document (e.g. "/properties/age/minimum").
 * The result is immutable and may be validated against from many threads.
 * It keeps its own reference to `schema`.
 */
struct sg_schema *sg_schema_compile(const json_t *schema, struct sg_schema_error *err);
void sg_schema_free(struct sg_schema *s);

/* The schema document as written.  Owned by `s`. */
const json_t *sg_schema_json(const struct sg_schema *s);

/*
 * Checks `instance`.  Returns 0 when valid.  Returns -1 when invalid and
 * stores up to `max_errs` errors in `errs` (pointers into the instance),
 * with the total found (capped at max_errs) in *n_errs.  An instance deeper
 * than SG_SCHEMA_MAX_DEPTH is invalid with a single "nested too deeply"
 * error, and the validator never recurses past that depth.
 */
int sg_schema_validate(const struct sg_schema *s, const json_t *instance,
    struct sg_schema_error *errs, size_t max_errs, size_t *n_errs);

/*
 * Checks `instance` against `sub`, a node inside this schema's document (as
 * returned by sg_schema_json), reusing what was compiled for it: no regex is
 * compiled again.  Returns 0 when valid, -1 when invalid, and 1 when `sub`
 * is not a schema node of this document.
 */
int sg_schema_validate_sub(const struct sg_schema *s, const json_t *sub, const json_t *instance);

/* Depth of a JSON value: scalars are 1, [] is 1, [[1]] is 2.  Stops counting at `cap`. */
int sg_json_depth(const json_t *v, int cap);

#endif
