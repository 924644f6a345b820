/*
 * sg_schema: a JSON Schema subset, compiled once when a definition is loaded
 * and then checked against request and response bodies.
 *
 * Supported keywords: type (string or array of strings), properties,
 * required, additionalProperties (bool or schema), enum, const, minLength,
 * maxLength (in code points), minimum, maximum, exclusiveMinimum,
 * exclusiveMaximum, pattern (ECMA-262-like, compiled at load), items
 * (schema), minItems, maxItems, format,
 * description/title/examples/default/$comment (annotations, ignored), and
 * x-data-class (what the DLP screen is told a value holds, see below).
 * Any other keyword is a compile error, so a typo never silently disables a
 * check.
 *
 * format is enforced for date-time, date, email, uri and uuid (see
 * sg_schema_format.c for each rule); any other format name is an
 * annotation, as JSON Schema allows.
 *
 * Schemas are jansson values, read from configuration at load (cold).
 * Instances are sg_json values, parsed on the request path with no jansson
 * tree; there is one validator, and the jansson entry points below only
 * serialise their instance and parse it into an sg_json document.
 */
#ifndef SG_SCHEMA_H
#define SG_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json/sg_json.h"

/* Instances nested deeper than this are refused by the jansson entry points. */
#define SG_SCHEMA_MAX_DEPTH 64

struct sg_schema;

struct sg_schema_error {
	/* RFC 6901 JSON Pointer ("" is the root; "/a/0/b~1c"). */
	char pointer[256];
	char message[256];
};

/* A scalar candidate, checked without a document (the simulator's draws). */
struct sg_schema_scalar {
	enum sg_json_type type; /* SG_JSON_NULL, BOOL, INT, UINT, DOUBLE or STRING */
	bool b;
	int64_t i;
	uint64_t u;
	double d;
	const char *s;
	size_t len; /* valid UTF-8 */
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
 * Checks `instance`, a value of a live sg_json document.  Returns 0 when
 * valid.  Returns -1 when invalid and stores up to `max_errs` errors in
 * `errs` (pointers into the instance), with the number stored in *n_errs.
 *
 * The instance's depth is the parser's business: the caller parses with a
 * depth cap (the gateway's is at most SG_SCHEMA_MAX_DEPTH).  The validator
 * recurses only as deep as the compiled schema, which is capped at
 * SG_SCHEMA_MAX_DEPTH, so no instance can make it recurse further.
 */
int sg_schema_validate(const struct sg_schema *s, struct sg_json_val instance,
                       struct sg_schema_error *errs, size_t max_errs, size_t *n_errs);

/*
 * Checks `instance` against `sub`, a node inside this schema's document (as
 * returned by sg_schema_json), reusing what was compiled for it: no regex is
 * compiled again.  Returns 0 when valid, -1 when invalid, and 1 when `sub`
 * is not a schema node of this document.
 */
int sg_schema_validate_sub(const struct sg_schema *s, const json_t *sub,
                           struct sg_json_val instance);

/*
 * sg_schema_validate_sub for a scalar that is in no document.  A `v` that
 * no JSON text could hold (a container type, a NaN or an infinity) is
 * invalid.  Returns 0, -1, or 1 as sg_schema_validate_sub.
 */
int sg_schema_accepts_scalar(const struct sg_schema *s, const json_t *sub,
                             const struct sg_schema_scalar *v);

/*
 * Cold paths only (definitions' examples at load, tests, the CLI): a
 * jansson value, checked by the same validator (dumped and parsed with
 * sg_json_parse, with the calling thread's parser: a document this thread
 * parsed before is no longer live afterwards).  Same return values as above.  An instance deeper
 * than SG_SCHEMA_MAX_DEPTH is invalid with a single "nested too deeply" error, and one that no
 * request could carry (a "\u0000" in a string or key) is invalid with the parser's reason.
 */
int sg_schema_validate_jansson(const struct sg_schema *s, const json_t *instance,
                               struct sg_schema_error *errs, size_t max_errs, size_t *n_errs);
int sg_schema_validate_sub_jansson(const struct sg_schema *s, const json_t *sub,
                                   const json_t *instance);

/*
 * x-data-class: "pii.email" on any schema node says what the values there
 * hold, so the DLP screen flags them by place with no pattern at all.  A
 * class is a dotted name: lowercase words ([a-z][a-z0-9_]*) joined by dots,
 * at least two of them, at most SG_SCHEMA_DATA_CLASS_MAX bytes.
 *
 * sg_schema_data_classes lists the schema's classes as (pointer, class)
 * pairs: the pointer is RFC 6901 into an instance, with "*" for any array
 * item or any member additionalProperties covers ("/contacts/" "*"
 * "/email", one pointer split so as not to open a comment here), and ""
 * for the root.  It stores up to `cap` pairs in `out` and returns how many
 * there are (more than `cap`: call again with room for all).  The strings
 * are owned by `s` and valid until sg_schema_free(s).  A property
 * itself named "*" cannot be told from the wildcard.
 */
#define SG_SCHEMA_DATA_CLASS_MAX 64
struct sg_dlp_hint;
size_t sg_schema_data_classes(const struct sg_schema *s, struct sg_dlp_hint *out, size_t cap);

/* Depth of a JSON value: scalars are 1, [] is 1, [[1]] is 2.  Stops counting at `cap`. */
int sg_json_depth(const json_t *v, int cap);

#endif
