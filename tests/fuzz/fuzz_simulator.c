/*
 * fuzz_simulator: one JSON document {"schema", "examples", "input", "seed",
 * "salt"} per run, through sg_sim_write.  Beyond memory errors, four
 * promises are checked: an answer always parses and validates, the same
 * call gives the same bytes, an answer with no input (what apply time
 * proves) means every input the path could pass gets one, and a failed
 * call leaves the buffer as it found it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json/sg_json.h"
#include "upstream/sg_simulator.h"

/* NUL bytes are allowed so the NUL-in-key and NUL-in-string paths are reached. */
#define LOAD_FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL)

/* What the buffer holds before each call; a call appends after it. */
static const char before[] = "\"before\"";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

/* The call's output alone (malloc'd), or NULL when it failed. */
static char *
run(const struct sg_schema *s, const json_t *doc, const char *input, size_t *len)
{
	struct sg_jbuf out = {0};
	struct sg_jw w;
	sg_jw_begin(&w, &out);
	sg_jw_raw(&w, before, sizeof(before) - 1);
	check(sg_jw_end(&w) == 0);
	size_t mark = out.len;
	int rc = sg_sim_write(&out, s, json_object_get(doc, "examples"), input,
	                      input ? strlen(input) : 0,
	                      (uint64_t)json_integer_value(json_object_get(doc, "seed")),
	                      json_string_value(json_object_get(doc, "salt")), false);
	check(memcmp(out.data, before, mark) == 0);
	char *text = NULL;
	if (rc == 0) {
		struct sg_json_doc parsed;
		check(sg_json_parse(out.data + mark, out.len - mark, SG_SCHEMA_MAX_DEPTH, &parsed,
		                    NULL) == SG_JSON_OK);
		check(sg_schema_validate(s, parsed.root, NULL, 0, NULL) == 0);
		*len = out.len - mark;
		text = malloc(*len + 1);
		check(text != NULL);
		memcpy(text, out.data + mark, *len + 1);
	} else {
		check(out.len == mark);
	}
	sg_jbuf_release(&out);
	return text;
}

/* Whether the path could hand this input over: it parses within the cap. */
static bool
passable(const char *input)
{
	struct sg_json_doc doc;
	return input == NULL ||
	       sg_json_parse(input, strlen(input), SG_SCHEMA_MAX_DEPTH, &doc, NULL) == SG_JSON_OK;
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
		const json_t *in = json_object_get(doc, "input");
		char *input = in ? json_dumps(in, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
		size_t la = 0, lb = 0, lbare = 0;
		char *a = run(s, doc, input, &la), *b = run(s, doc, input, &lb);
		char *bare = run(s, doc, NULL, &lbare);
		check((a == NULL) == (b == NULL));
		check(a == NULL || (la == lb && memcmp(a, b, la) == 0));
		check(bare == NULL || a != NULL || !passable(input));
		free(a);
		free(b);
		free(bare);
		free(input);
	}
	sg_schema_free(s);
	json_decref(doc);
	return 0;
}
