/*
 * fuzz_simulator: one JSON document {"schema", "examples", "input", "seed",
 * "salt"} per run.  Beyond memory errors, three promises are checked: an
 * answer is always valid, the same call gives the same bytes, and an
 * answer with no input (what apply time proves) means every input gets one.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/sg_simulator.h"

/* NUL bytes are allowed so the NUL-in-key and NUL-in-string paths are reached. */
#define LOAD_FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL)
#define DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *
run(const struct sg_schema *s, const json_t *doc, const json_t *input)
{
	const json_t *seed = json_object_get(doc, "seed");
	json_t *out = sg_sim_generate(s, json_object_get(doc, "examples"), input,
	                              (uint64_t)json_integer_value(seed),
	                              json_string_value(json_object_get(doc, "salt")));
	if (out != NULL && sg_schema_validate_jansson(s, out, NULL, 0, NULL) != 0)
		__builtin_trap();
	return out;
}

static void
check_same_bytes(const json_t *a, const json_t *b)
{
	char *da = a ? json_dumps(a, DUMP_FLAGS) : NULL, *db = b ? json_dumps(b, DUMP_FLAGS) : NULL;
	if ((da == NULL) != (db == NULL) || (da != NULL && strcmp(da, db) != 0))
		__builtin_trap();
	free(da);
	free(db);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	struct sg_schema_error err;
	json_t *doc = json_loadb((const char *)data, size, LOAD_FLAGS, &jerr);
	json_t *schema = json_object_get(doc, "schema");
	struct sg_schema *s = schema ? sg_schema_compile(schema, &err) : NULL;

	if (s != NULL) {
		const json_t *input = json_object_get(doc, "input");
		json_t *a = run(s, doc, input), *b = run(s, doc, input), *bare = run(s, doc, NULL);
		check_same_bytes(a, b);
		if (bare != NULL && a == NULL)
			__builtin_trap();
		json_decref(a);
		json_decref(b);
		json_decref(bare);
	}
	sg_schema_free(s);
	json_decref(doc);
	return 0;
}
