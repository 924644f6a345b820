/*
 * fuzz_schema: a schema and an instance from one input.  The first two bytes
 * (little-endian) say where the schema text ends, so the fuzzer can grow
 * either side without disturbing the other.  The schema is read by jansson,
 * as configuration is; the instance by sg_json_parse, as a body is, and
 * also by jansson for the cold entry point, which must agree.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "schema/sg_schema.h"

/* NUL bytes are allowed in the schema so NUL-in-key and NUL-in-pattern paths are reached. */
#define LOAD_FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The validator always explains a refusal, and never claims errors on success. */
static void
check_rc(int rc, size_t n)
{
	if ((rc == 0) != (n == 0) || n > 4)
		__builtin_trap();
}

static void
run(const struct sg_schema *s, const char *text, size_t len)
{
	struct sg_schema_error errs[4], jerrs[4];
	struct sg_json_doc doc;
	size_t n = 0, jn = 0;

	json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	bool both = j != NULL;
	int jrc = both ? sg_schema_validate_jansson(s, j, jerrs, 4, &jn) : 0;
	json_decref(j);
	if (both)
		check_rc(jrc, jn);
	if (sg_json_parse(text, len, SG_SCHEMA_MAX_DEPTH, &doc, NULL) != SG_JSON_OK)
		return;
	int rc = sg_schema_validate(s, doc.root, errs, 4, &n);
	check_rc(rc, n);
	/* Both ways in reach one validator: the same answer, the same errors. */
	if (both && (rc != jrc || n != jn))
		__builtin_trap();
	for (size_t i = 0; both && i < n; i++)
		if (strcmp(errs[i].pointer, jerrs[i].pointer) != 0 ||
		    strcmp(errs[i].message, jerrs[i].message) != 0)
			__builtin_trap();
	if (sg_schema_validate(s, doc.root, NULL, 0, NULL) != rc)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t split = (size_t)data[0] | (size_t)data[1] << 8;
	data += 2;
	size -= 2;
	if (split > size)
		split = size;

	json_t *schema = json_loadb((const char *)data, split, LOAD_FLAGS, NULL);
	struct sg_schema_error err;
	struct sg_schema *s = schema ? sg_schema_compile(schema, &err) : NULL;
	if (s != NULL)
		run(s, (const char *)data + split, size - split);
	sg_schema_free(s);
	json_decref(schema);
	return 0;
}
