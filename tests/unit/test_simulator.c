/*
 * test_simulator: synthetic outputs are deterministic, sensitive to the
 * call, realistic, and always valid.  Every output any test gets is checked
 * against its schema inside gen(), so no test can pass on an invalid one.
 * Most tests go through the jansson wrapper (sg_sim_generate), which is
 * sg_sim_write with the input dumped and the output loaded; the writer's
 * own promises (bytes, buffers, failure) are tested on sg_sim_write.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <regex.h>

#include "core/sg_slab.h"
#include "json/sg_json.h"
#include "upstream/sg_sim_seed.h"
#include "upstream/sg_simulator.h"

#define SEEDS 300

#define RFC3339_UTC "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
#define UUID_V4 "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"

static json_t *
parse(const char *text)
{
	json_error_t jerr;
	json_t *j = text ? json_loads(text, JSON_DECODE_ANY, &jerr) : NULL;
	if (text != NULL && j == NULL)
		fail_msg("bad test JSON %s: %s", text, jerr.text);
	return j;
}

static struct sg_schema *
compile(const char *text)
{
	struct sg_schema_error err;
	json_t *j = parse(text);
	struct sg_schema *s = sg_schema_compile(j, &err);
	if (s == NULL)
		fail_msg("schema does not compile: %s: %s", err.pointer, err.message);
	json_decref(j);
	return s;
}

/* The simulator's answer, which must be valid whenever there is one. */
static json_t *
gen_json(const struct sg_schema *s, const json_t *ex, const json_t *in, uint64_t seed,
         const char *salt)
{
	struct sg_schema_error err;
	size_t n = 0;
	json_t *out = sg_sim_generate(s, ex, in, seed, salt);
	if (out != NULL && sg_schema_validate_jansson(s, out, &err, 1, &n) != 0)
		fail_msg("invalid output at %s: %s", err.pointer, err.message);
	return out;
}

static json_t *
gen(const struct sg_schema *s, const char *ex, const char *in, uint64_t seed, const char *salt)
{
	json_t *e = parse(ex), *i = parse(in);
	json_t *out = gen_json(s, e, i, seed, salt);
	json_decref(e);
	json_decref(i);
	return out;
}

static char *
dump(const json_t *v)
{
	return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

static bool
matches(const char *re, const char *s)
{
	regex_t r;
	assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
	bool ok = s != NULL && regexec(&r, s, 0, NULL, 0) == 0;
	regfree(&r);
	return ok;
}

static const char *
str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* ---- determinism and sensitivity -------------------------------------- */

static const char contact[] =
    "{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"id\",\"email\",\"name\",\"company\",\"created_at\"],\"properties\":{"
    "\"id\":{\"type\":\"string\"},"
    "\"email\":{\"type\":\"string\",\"format\":\"email\",\"maxLength\":254},"
    "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200},"
    "\"company\":{\"type\":\"string\",\"maxLength\":200},"
    "\"created_at\":{\"type\":\"string\",\"format\":\"date-time\"}}}";

static const char crm_contact[] =
    "{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"id\",\"email\",\"name\",\"company\",\"created_at\"],\"properties\":{"
    "\"id\":{\"type\":\"string\",\"pattern\":\"^ct_[a-z0-9]+$\"},"
    "\"email\":{\"type\":\"string\",\"format\":\"email\",\"maxLength\":254,"
    "  \"pattern\":\"^[^@ ]+@[^@ ]+\\\\.[^@ ]+$\"},"
    "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200},"
    "\"company\":{\"type\":\"string\",\"maxLength\":200},"
    "\"created_at\":{\"type\":\"string\",\"format\":\"date-time\"}}}";

static const char crm_example[] =
    "[{\"id\":\"ct_7f3k2m9q\",\"email\":\"ada@example.com\",\"name\":\"Ada Lovelace\","
    "\"company\":\"Analytical Engines Ltd\",\"created_at\":\"2024-03-01T09:30:00Z\"}]";

static const char ada[] =
    "{\"email\":\"ada@example.com\",\"name\":\"Ada\",\"company\":\"Engines\"}";

static void
assert_same_bytes(json_t *a, json_t *b)
{
	char *da = dump(a), *db = dump(b);
	assert_non_null(da);
	assert_string_equal(da, db);
	free(da);
	free(db);
	json_decref(a);
	json_decref(b);
}

static void
test_same_call_same_bytes(void **state)
{
	(void)state;
	struct sg_schema *s = compile(contact), *crm = compile(crm_contact);
	for (uint64_t seed = 0; seed < 20; seed++) {
		assert_same_bytes(gen(s, NULL, NULL, seed, "crm.create_contact"),
		                  gen(s, NULL, NULL, seed, "crm.create_contact"));
		assert_same_bytes(gen(crm, crm_example, ada, seed, "crm.create_contact"),
		                  gen(crm, crm_example, ada, seed, "crm.create_contact"));
	}
	/* The input is canonical: key order does not change the answer. */
	assert_same_bytes(gen(s, NULL, "{\"a\":1,\"b\":[true,{\"y\":2,\"x\":1}]}", 7, "t"),
	                  gen(s, NULL, "{\"b\":[true,{\"x\":1,\"y\":2}],\"a\":1}", 7, "t"));
	/* No input and an empty object are the same call (the path reads no body as {}). */
	assert_same_bytes(gen(s, NULL, NULL, 7, "t"), gen(s, NULL, "{}", 7, "t"));
	sg_schema_free(s);
	sg_schema_free(crm);
}

static void
test_input_seed_and_salt_change_output(void **state)
{
	(void)state;
	struct sg_schema *s = compile(contact);
	json_t *a = gen(s, NULL, "{\"q\":\"a\"}", 42, "x.y"),
	       *b = gen(s, NULL, "{\"q\":\"b\"}", 42, "x.y");
	json_t *c = gen(s, NULL, "{\"q\":\"a\"}", 43, "x.y"),
	       *d = gen(s, NULL, "{\"q\":\"a\"}", 42, "x.z");
	const char *id = str(a, "id");
	assert_non_null(id);
	assert_string_not_equal(id, str(b, "id"));
	assert_string_not_equal(id, str(c, "id"));
	assert_string_not_equal(id, str(d, "id"));
	json_decref(a);
	json_decref(b);
	json_decref(c);
	json_decref(d);
	sg_schema_free(s);
}

/* ---- every keyword, many seeds --------------------------------------- */

static const char every_keyword[] =
    "{\"type\":\"object\",\"title\":\"all\",\"description\":\"every keyword\","
    "\"$comment\":\"c\",\"additionalProperties\":{\"type\":\"integer\",\"minimum\":7,"
    "  \"maximum\":7},"
    "\"required\":[\"n\",\"i\",\"extra\"],"
    "\"properties\":{"
    "\"n\":{\"type\":\"number\",\"exclusiveMinimum\":0.5,\"exclusiveMaximum\":0.75},"
    "\"i\":{\"type\":\"integer\",\"minimum\":-3,\"maximum\":3,\"default\":0},"
    "\"xi\":{\"type\":\"integer\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":3},"
    "\"e\":{\"enum\":[\"red\",\"green\",{\"x\":1}]},"
    "\"c\":{\"const\":[1,2]},"
    "\"arr\":{\"type\":\"array\",\"minItems\":2,\"maxItems\":3,"
    "  \"items\":{\"type\":\"string\",\"minLength\":5,\"maxLength\":6}},"
    "\"o\":{\"type\":\"object\",\"additionalProperties\":false,"
    "  \"properties\":{\"deep\":{\"type\":[\"null\",\"boolean\"]}}},"
    "\"b\":{\"type\":\"boolean\"},"
    "\"z\":{\"type\":\"null\"},"
    "\"d\":{\"type\":\"string\",\"format\":\"date\"},"
    "\"t\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"u\":{\"type\":\"string\",\"format\":\"uuid\",\"minLength\":36,\"maxLength\":36},"
    "\"w\":{\"type\":\"string\",\"format\":\"uri\"},"
    "\"m\":{\"type\":\"string\",\"format\":\"email\"},"
    "\"p\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}$\",\"examples\":[\"GB\",\"DE\",\"x\"]},"
    "\"any\":{}}}";

static void
check_every_keyword(const json_t *out, bool echoed)
{
	double n = json_real_value(json_object_get(out, "n"));
	json_int_t i = json_integer_value(json_object_get(out, "i"));
	json_int_t xi = json_integer_value(json_object_get(out, "xi"));
	size_t arr = json_array_size(json_object_get(out, "arr"));
	assert_true(n > 0.5 && n < 0.75);
	assert_true(i >= -3 && i <= 3);
	assert_true(xi == 1 || xi == 2);
	assert_true(arr == 2 || arr == 3);
	assert_int_equal(json_integer_value(json_object_get(out, "extra")), 7);
	assert_true(json_is_null(json_object_get(out, "z")));
	assert_true(json_is_boolean(json_object_get(json_object_get(out, "o"), "deep")));
	assert_true(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", str(out, "d")));
	assert_true(matches(RFC3339_UTC, str(out, "t")));
	assert_true(matches(UUID_V4, str(out, "u")));
	assert_true(matches("^https://example\\.com/", str(out, "w")));
	assert_true(matches("^[a-z.0-9]+@example\\.com$", str(out, "m")));
	/* "x" in the annotation's examples breaks the pattern; the input's "FR" fits. */
	assert_true(matches(echoed ? "^FR$" : "^(GB|DE)$", str(out, "p")));
	assert_non_null(json_object_get(out, "any"));
}

static void
test_every_output_is_valid_over_many_seeds(void **state)
{
	(void)state;
	struct sg_schema *s = compile(every_keyword);
	int seen_xi[3] = {0};
	for (uint64_t seed = 0; seed < SEEDS; seed++) {
		char in[64];
		snprintf(in, sizeof(in), "{\"n\":%d,\"p\":\"FR\"}", (int)seed % 3);
		json_t *out = gen(s, NULL, seed % 2 ? in : NULL, seed, "k");
		assert_non_null(out);
		check_every_keyword(out, seed % 2);
		seen_xi[json_integer_value(json_object_get(out, "xi"))]++;
		json_decref(out);
	}
	/* The draws cover the range, not one lucky value. */
	assert_true(seen_xi[1] > 0 && seen_xi[2] > 0);
	sg_schema_free(s);
}

/* ---- echo -------------------------------------------------------------- */

static void
test_create_contact_echoes_input(void **state)
{
	(void)state;
	struct sg_schema *s = compile(contact);
	json_t *out = gen(s, NULL, ada, 1, "crm.create_contact");
	assert_non_null(out);
	assert_int_equal(json_object_size(out), 5);
	assert_string_equal(str(out, "email"), "ada@example.com");
	assert_string_equal(str(out, "name"), "Ada");
	assert_string_equal(str(out, "company"), "Engines");
	/* The id is tagged from the operation in the salt. */
	assert_true(matches("^cnt_[0-9a-f]{12}$", str(out, "id")));
	assert_true(matches(RFC3339_UTC, str(out, "created_at")));
	assert_true(strcmp(str(out, "created_at"), "2023") > 0);
	assert_true(strcmp(str(out, "created_at"), "2026") < 0);
	json_decref(out);
	sg_schema_free(s);
}

static void
test_crm_example_keeps_shape_and_varies_id(void **state)
{
	(void)state;
	struct sg_schema *s = compile(crm_contact);
	json_t *out = gen(s, crm_example, "{\"email\":\"grace@example.org\",\"name\":\"Grace\"}", 1,
	                  "crm.create_contact");
	assert_non_null(out);
	assert_string_equal(str(out, "email"), "grace@example.org");
	assert_string_equal(str(out, "name"), "Grace");
	assert_string_equal(str(out, "company"), "Analytical Engines Ltd"); /* not sent */
	assert_true(matches("^ct_[a-z0-9]{8}$", str(out, "id")));
	assert_string_not_equal(str(out, "id"), "ct_7f3k2m9q");
	json_t *other = gen(s, crm_example, "{\"email\":\"grace@example.org\",\"name\":\"Hopper\"}",
	                    1, "crm.create_contact");
	assert_string_not_equal(str(out, "id"), str(other, "id"));
	json_decref(other);
	json_decref(out);
	sg_schema_free(s);
}

static void
test_echo_only_what_the_schema_accepts(void **state)
{
	(void)state;
	struct sg_schema *s =
	    compile("{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
	            "\"email\":{\"type\":\"string\",\"maxLength\":20},\"n\":{\"type\":\"integer\"},"
	            "\"o\":{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"string\"}}}}}");
	json_t *out =
	    gen(s, NULL,
	        "{\"email\":\"a-very-long-address@example.com\",\"n\":\"seven\",\"stray\":1,"
	        "\"o\":{\"n\":5}}",
	        1, "t");
	assert_non_null(out);
	assert_string_not_equal(str(out, "email"), "a-very-long-address@example.com");
	assert_true(json_is_integer(json_object_get(out, "n")));
	assert_null(json_object_get(out, "stray"));
	assert_true(json_is_string(json_object_get(json_object_get(out, "o"), "n")));
	json_decref(out);
	/* Top-level names only: the input's "n" is not copied into o.n. */
	out = gen(s, NULL, "{\"n\":\"seven\"}", 1, "t");
	assert_string_not_equal(str(json_object_get(out, "o"), "n"), "seven");
	json_decref(out);
	out = gen(s, NULL, "{\"n\":5,\"o\":{\"n\":\"x\"},\"email\":\"a@b.c\"}", 1, "t");
	assert_int_equal(json_integer_value(json_object_get(out, "n")), 5);
	assert_string_equal(str(out, "email"), "a@b.c");
	assert_string_equal(str(json_object_get(out, "o"), "n"), "x");
	json_decref(out);
	sg_schema_free(s);
}

/*
 * Checking a container from the definition (here "meta"'s example and the
 * const list) parses with the thread's parser, which ends the input's
 * document: the echo after it must still read the input.
 */
static void
test_echo_after_a_container_check(void **state)
{
	(void)state;
	struct sg_schema *s =
	    compile("{\"type\":\"object\",\"properties\":{"
	            "\"meta\":{\"type\":\"object\",\"examples\":[{\"k\":1}]},"
	            "\"list\":{\"const\":[1,2]},"
	            "\"email\":{\"type\":\"string\"},\"n\":{\"type\":\"integer\"}}}");
	for (uint64_t seed = 0; seed < 10; seed++) {
		json_t *out = gen(s, NULL, "{\"n\":7,\"email\":\"grace@example.org\"}", seed, "t");
		assert_string_equal(str(out, "email"), "grace@example.org");
		assert_int_equal(json_integer_value(json_object_get(out, "n")), 7);
		assert_int_equal(
		    json_integer_value(json_object_get(json_object_get(out, "meta"), "k")), 1);
		json_decref(out);
	}
	sg_schema_free(s);
}

/* ---- examples ---------------------------------------------------------- */

static void
test_examples_are_chosen_and_completed(void **state)
{
	(void)state;
	struct sg_schema *s = compile(
	    "{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{"
	    "\"name\":{\"type\":\"string\"},\"note\":{\"type\":\"string\",\"maxLength\":40},"
	    "\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
	    "  \"k\":{\"const\":\"filled\"},\"v\":{\"type\":\"integer\"}}}}}}");
	const char *ex = "[{\"name\":\"one\",\"items\":[{\"v\":1}]},{\"name\":\"two\"},"
	                 "{\"name\":\"three\"},{\"name\":3}]";
	int seen[3] = {0};
	for (uint64_t seed = 0; seed < 60; seed++) {
		json_t *out = gen(s, ex, NULL, seed, "t");
		const char *name = str(out, "name");
		assert_non_null(name); /* the invalid fourth example is never used */
		seen[0] += strcmp(name, "one") == 0;
		seen[1] += strcmp(name, "two") == 0;
		seen[2] += strcmp(name, "three") == 0;
		assert_non_null(str(out, "note")); /* filled in */
		if (strcmp(name, "one") == 0) {
			json_t *item = json_array_get(json_object_get(out, "items"), 0);
			assert_int_equal(json_integer_value(json_object_get(item, "v")), 1);
			assert_string_equal(str(item, "k"), "filled");
		}
		json_decref(out);
	}
	assert_int_equal(seen[0] + seen[1] + seen[2], 60);
	assert_true(seen[0] > 0 && seen[1] > 0 && seen[2] > 0);
	/* No example fits: the schema alone answers. */
	json_t *out = gen(s, "[{\"name\":3}]", NULL, 1, "t");
	assert_non_null(out);
	assert_string_not_equal(str(out, "name"), "3");
	json_decref(out);
	sg_schema_free(s);
}

static void
test_pattern_needs_an_example_or_echo(void **state)
{
	(void)state;
	struct sg_schema *s =
	    compile("{\"type\":\"object\",\"required\":[\"code\"],\"properties\":"
	            "{\"code\":{\"type\":\"string\",\"pattern\":\"^x[0-9]+$\"}}}");
	assert_null(gen(s, NULL, NULL, 1, "t"));
	assert_null(gen(s, NULL, "{\"code\":\"nope\"}", 1, "t"));
	json_t *out = gen(s, NULL, "{\"code\":\"x42\"}", 1, "t");
	assert_string_equal(str(out, "code"), "x42");
	json_decref(out);
	out = gen(s, "[{\"code\":\"x7\"}]", NULL, 1, "t");
	assert_string_equal(str(out, "code"), "x7");
	json_decref(out);
	out = gen(s, "[{\"code\":\"x7\"}]", "{\"code\":\"x42\"}", 1, "t");
	assert_string_equal(str(out, "code"), "x42"); /* echo beats the example */
	json_decref(out);
	sg_schema_free(s);

	/* A type that cannot be made gives way to the next, then to null. */
	s = compile("{\"type\":[\"string\",\"integer\"],\"pattern\":\"^a$\",\"minimum\":4,"
	            "\"maximum\":4}");
	out = gen(s, NULL, NULL, 1, "t");
	assert_int_equal(json_integer_value(out), 4);
	json_decref(out);
	sg_schema_free(s);
	s = compile("{\"type\":[\"null\",\"string\"],\"pattern\":\"^a$\"}");
	out = gen(s, NULL, NULL, 1, "t");
	assert_true(json_is_null(out));
	json_decref(out);
	sg_schema_free(s);
}

static void
test_id_reroll_falls_back_to_the_example(void **state)
{
	(void)state;
	/* Any re-rolled id breaks this pattern, so the example's own id is used. */
	struct sg_schema *s = compile("{\"type\":\"object\",\"properties\":{\"id\":"
	                              "{\"type\":\"string\",\"pattern\":\"^ct_7f3k$\"}}}");
	json_t *out = gen(s, "[{\"id\":\"ct_7f3k\"}]", NULL, 1, "t");
	assert_string_equal(str(out, "id"), "ct_7f3k");
	json_decref(out);
	sg_schema_free(s);
}

/* ---- enum and const ---------------------------------------------------- */

static void
test_enum_and_const(void **state)
{
	(void)state;
	struct sg_schema *s = compile("{\"enum\":[\"red\",\"green\",\"blue\"]}");
	int seen = 0;
	for (uint64_t seed = 0; seed < 60; seed++) {
		json_t *out = gen(s, NULL, NULL, seed, "t");
		const char *v = json_string_value(out);
		seen |= (strcmp(v, "red") == 0) | (strcmp(v, "green") == 0) << 1 |
		        (strcmp(v, "blue") == 0) << 2;
		json_decref(out);
	}
	assert_int_equal(seen, 7);
	sg_schema_free(s);

	/* Members the rest of the schema refuses are never picked. */
	s = compile("{\"type\":\"string\",\"maxLength\":1,\"enum\":[1,\"long\",null,\"x\"]}");
	for (uint64_t seed = 0; seed < 20; seed++) {
		json_t *out = gen(s, NULL, NULL, seed, "t");
		assert_string_equal(json_string_value(out), "x");
		json_decref(out);
	}
	sg_schema_free(s);
	s = compile("{\"type\":\"string\",\"enum\":[1,2]}");
	assert_null(gen(s, NULL, NULL, 1, "t"));
	sg_schema_free(s);

	s = compile("{\"const\":{\"a\":[1,{\"b\":null}]}}");
	json_t *out = gen(s, NULL, NULL, 1, "t"), *want = parse("{\"a\":[1,{\"b\":null}]}");
	assert_true(json_equal(out, want));
	json_decref(out);
	json_decref(want);
	sg_schema_free(s);
	s = compile("{\"type\":\"integer\",\"const\":\"x\"}");
	assert_null(gen(s, NULL, NULL, 1, "t"));
	sg_schema_free(s);
	/* A member no body could carry (a NUL inside) is never picked. */
	json_t *nul = json_pack("{s:[s#,s]}", "enum", "a\0b", (size_t)3, "ok");
	struct sg_schema_error err;
	s = sg_schema_compile(nul, &err);
	assert_non_null(s);
	for (uint64_t seed = 0; seed < 20; seed++) {
		out = gen(s, NULL, NULL, seed, "t");
		assert_string_equal(json_string_value(out), "ok");
		json_decref(out);
	}
	sg_schema_free(s);
	json_decref(nul);
}

/* ---- numbers ----------------------------------------------------------- */

static void
assert_integer_range(const char *schema, json_int_t lo, json_int_t hi, bool all_seen)
{
	struct sg_schema *s = compile(schema);
	json_int_t min = hi, max = lo;
	for (uint64_t seed = 0; seed < SEEDS; seed++) {
		json_t *out = gen(s, NULL, NULL, seed, "t");
		assert_true(json_is_integer(out));
		json_int_t v = json_integer_value(out);
		assert_true(v >= lo && v <= hi);
		min = v < min ? v : min;
		max = v > max ? v : max;
		json_decref(out);
	}
	if (all_seen) {
		assert_int_equal(min, lo);
		assert_int_equal(max, hi);
	}
	sg_schema_free(s);
}

static void
assert_unsatisfiable(const char *schema)
{
	struct sg_schema *s = compile(schema);
	for (uint64_t seed = 0; seed < 5; seed++)
		assert_null(gen(s, NULL, NULL, seed, "t"));
	sg_schema_free(s);
}

static void
test_integer_bounds(void **state)
{
	(void)state;
	assert_integer_range("{\"type\":\"integer\",\"minimum\":-3,\"maximum\":3}", -3, 3, true);
	assert_integer_range("{\"type\":\"integer\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":3}",
	                     1, 2, true);
	assert_integer_range("{\"type\":\"integer\",\"minimum\":2.5,\"maximum\":3.5}", 3, 3, true);
	assert_integer_range("{\"type\":\"integer\",\"exclusiveMinimum\":-1.5,\"maximum\":0}", -1,
	                     0, true);
	assert_integer_range("{\"type\":\"integer\",\"maximum\":-5000}", -6000, -5000, false);
	/* Huge bounds are cut to the integers a double holds exactly. */
	assert_integer_range("{\"type\":\"integer\",\"minimum\":10,\"maximum\":1e300}", 10,
	                     9007199254740992LL, false);
	assert_unsatisfiable(
	    "{\"type\":\"integer\",\"exclusiveMinimum\":1,\"exclusiveMaximum\":2}");
	assert_unsatisfiable("{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}");
	assert_unsatisfiable("{\"type\":\"integer\",\"minimum\":0.2,\"maximum\":0.8}");
	assert_unsatisfiable("{\"type\":\"integer\",\"minimum\":1e300}");
}

static void
test_number_bounds(void **state)
{
	(void)state;
	struct sg_schema *s = compile(
	    "{\"type\":\"number\",\"exclusiveMinimum\":0.5,\"exclusiveMaximum\":0.5000001}");
	for (uint64_t seed = 0; seed < SEEDS; seed++) {
		json_t *out = gen(s, NULL, NULL, seed, "t");
		assert_true(json_real_value(out) > 0.5 && json_real_value(out) < 0.5000001);
		json_decref(out);
	}
	sg_schema_free(s);
	s = compile("{\"type\":\"number\",\"minimum\":-1.7e308,\"maximum\":1.7e308}");
	json_t *out = gen(s, NULL, NULL, 3, "t");
	assert_non_null(out);
	json_decref(out);
	sg_schema_free(s);
	s = compile("{\"type\":\"number\",\"minimum\":0.1,\"maximum\":0.1}");
	out = gen(s, NULL, NULL, 3, "t");
	assert_true(json_real_value(out) == 0.1);
	json_decref(out);
	sg_schema_free(s);
	assert_unsatisfiable("{\"type\":\"number\",\"exclusiveMinimum\":1,\"exclusiveMaximum\":1}");
	assert_unsatisfiable("{\"type\":\"number\",\"minimum\":2,\"exclusiveMaximum\":2}");
}

/* ---- arrays, objects, strings ------------------------------------------ */

static void
assert_lengths(const char *schema, size_t lo, size_t hi)
{
	struct sg_schema *s = compile(schema);
	size_t min = hi, max = lo;
	for (uint64_t seed = 0; seed < 100; seed++) {
		json_t *out = gen(s, NULL, NULL, seed, "t");
		size_t n = json_array_size(out);
		assert_true(json_is_array(out));
		assert_true(n >= lo && n <= hi);
		min = n < min ? n : min;
		max = n > max ? n : max;
		json_decref(out);
	}
	assert_int_equal(min, lo);
	assert_int_equal(max, hi);
	sg_schema_free(s);
}

static void
test_array_items(void **state)
{
	(void)state;
	assert_lengths("{\"type\":\"array\",\"minItems\":2,\"maxItems\":3}", 2, 3);
	assert_lengths("{\"type\":\"array\",\"minItems\":5,\"items\":{\"type\":\"integer\"}}", 5,
	               8);
	assert_lengths("{\"type\":\"array\",\"maxItems\":0}", 0, 0);
	assert_lengths("{\"items\":{\"type\":\"boolean\"},\"maxItems\":1}", 0, 1);
	/* Items that cannot be made: an empty list when allowed, else nothing. */
	assert_lengths("{\"type\":\"array\",\"items\":{\"type\":\"string\",\"pattern\":\"a\"}}", 0,
	               0);
	assert_unsatisfiable("{\"type\":\"array\",\"minItems\":1,\"items\":{\"pattern\":\"a\"}}");
	assert_unsatisfiable("{\"type\":\"array\",\"minItems\":3,\"maxItems\":2}");
}

static void
test_nested_objects_are_complete(void **state)
{
	(void)state;
	struct sg_schema *s = compile(
	    "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"object\",\"properties\":{"
	    "\"b\":{\"type\":\"object\",\"required\":[\"c\"],\"properties\":{"
	    "  \"c\":{\"type\":\"integer\"},\"d\":{\"type\":\"boolean\"}}},"
	    "\"e\":{\"type\":\"string\"}}},\"f\":{\"type\":\"array\",\"minItems\":1,"
	    "\"items\":{\"type\":\"object\",\"properties\":{\"g\":{\"type\":\"null\"}}}}}}");
	json_t *out = gen(s, NULL, NULL, 5, "t");
	json_t *a = json_object_get(out, "a"), *b = json_object_get(a, "b");
	assert_true(json_is_integer(json_object_get(b, "c")));
	assert_true(json_is_boolean(json_object_get(b, "d"))); /* optional, still there */
	assert_true(json_is_string(json_object_get(a, "e")));
	assert_true(
	    json_is_null(json_object_get(json_array_get(json_object_get(out, "f"), 0), "g")));
	json_decref(out);
	sg_schema_free(s);
	/* Required but not allowed: no output can exist. */
	assert_unsatisfiable("{\"type\":\"object\",\"required\":[\"x\"],"
	                     "\"additionalProperties\":false}");
}

static void
test_string_lengths_and_names(void **state)
{
	(void)state;
	struct sg_schema *s =
	    compile("{\"type\":\"object\",\"properties\":{"
	            "\"message_id\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"},"
	            "\"subject\":{\"type\":\"string\"},\"status\":{\"type\":\"string\"},"
	            "\"created_at\":{\"type\":\"string\"},\"email\":{\"type\":\"string\"},"
	            "\"short\":{\"type\":\"string\",\"maxLength\":3},"
	            "\"exact\":{\"type\":\"string\",\"minLength\":40,\"maxLength\":40},"
	            "\"empty\":{\"type\":\"string\",\"maxLength\":0},"
	            "\"user_id\":{\"type\":\"string\",\"format\":\"uuid\"}}}");
	json_t *out = gen(s, NULL, NULL, 9, "mail.send");
	assert_true(matches("^msg_[0-9a-f]{12}$", str(out, "message_id")));
	assert_true(matches("^[A-Z][a-z]+ [A-Z][a-z]+$", str(out, "name")));
	assert_true(matches("^[A-Z][a-z]+ [a-z]+ [a-z]+$", str(out, "subject")));
	assert_true(matches("^[a-z]+$", str(out, "status")));
	assert_true(matches(RFC3339_UTC, str(out, "created_at")));
	assert_true(matches("^[a-z]+\\.[a-z]+[0-9]*@example\\.com$", str(out, "email")));
	assert_true(strlen(str(out, "short")) <= 3);
	assert_int_equal(strlen(str(out, "exact")), 40);
	assert_string_equal(str(out, "empty"), "");
	assert_true(matches(UUID_V4, str(out, "user_id"))); /* the format beats the name */
	json_decref(out);
	sg_schema_free(s);
	assert_unsatisfiable("{\"type\":\"string\",\"minLength\":3,\"maxLength\":2}");
	assert_unsatisfiable("{\"type\":\"string\",\"minLength\":100000}");
}

/* ---- limits ------------------------------------------------------------ */

/* `levels` nested objects around a string: levels + 1 schema levels. */
static char *
nested_objects(int levels)
{
	static const char open[] = "{\"type\":\"object\",\"properties\":{\"a\":";
	char *text = calloc(1, (size_t)levels * (sizeof(open) + 2) + 32);
	for (int i = 0; i < levels; i++)
		strcat(text, open);
	strcat(text, "{\"type\":\"string\"}");
	for (int i = 0; i < levels; i++)
		strcat(text, "}}");
	return text;
}

static json_t *
nested_arrays(int levels)
{
	json_t *v = json_string("x");
	for (int i = 0; i < levels; i++)
		v = json_pack("[o]", v);
	return v;
}

static void
test_depth_cap(void **state)
{
	(void)state;
	/* The deepest schema that compiles: answered in full. */
	char *text = nested_objects(SG_SCHEMA_MAX_DEPTH - 1);
	struct sg_schema *s = compile(text);
	json_t *out = gen(s, NULL, NULL, 1, "t");
	assert_non_null(out);
	assert_int_equal(sg_json_depth(out, 100), SG_SCHEMA_MAX_DEPTH - 1);
	json_decref(out);
	sg_schema_free(s);
	free(text);

	/*
	 * The deepest input the cap lets in is echoed whole, one level below
	 * the output object: the output is exactly as deep as the cap allows.
	 */
	s = compile("{\"type\":\"object\",\"properties\":{\"v\":{}}}");
	json_t *in = json_pack("{s:o}", "v", nested_arrays(SG_SCHEMA_MAX_DEPTH - 1));
	out = gen_json(s, NULL, in, 1, "t");
	assert_int_equal(sg_json_depth(out, 100), SG_SCHEMA_MAX_DEPTH);
	json_decref(out);
	json_decref(in);
	/* An input deeper than the cap never passed validation: no answer rather than a guess. */
	in = json_pack("{s:o}", "v", nested_arrays(SG_SCHEMA_MAX_DEPTH));
	assert_null(sg_sim_generate(s, NULL, in, 1, "t"));
	json_decref(in);
	/* Nor is an example that is too deep used. */
	json_t *ex = json_pack("[{s:o}]", "v", nested_arrays(SG_SCHEMA_MAX_DEPTH));
	out = gen_json(s, ex, NULL, 1, "t");
	assert_true(json_is_string(json_object_get(out, "v")));
	json_decref(out);
	json_decref(ex);
	sg_schema_free(s);
}

static json_t *
fixed_array(int n)
{
	char text[128];
	snprintf(
	    text, sizeof(text),
	    "{\"type\":\"array\",\"minItems\":%d,\"maxItems\":%d,\"items\":{\"type\":\"boolean\"}}",
	    n, n);
	struct sg_schema *s = compile(text);
	json_t *out = gen(s, NULL, NULL, 1, "t");
	sg_schema_free(s);
	return out;
}

static void
test_node_cap(void **state)
{
	(void)state;
	/* 10,000 values (the array and its items) at most. */
	json_t *out = fixed_array(9998);
	assert_int_equal(json_array_size(out), 9998);
	json_decref(out);
	out = fixed_array(9999);
	assert_int_equal(json_array_size(out), 9999);
	json_decref(out);
	assert_null(fixed_array(10000));
}

static uint64_t
seed_of(const char *text)
{
	struct sg_json_doc doc;
	uint64_t h = 0;
	assert_int_equal(sg_json_parse(text, strlen(text), SG_SCHEMA_MAX_DEPTH, &doc, NULL),
	                 SG_JSON_OK);
	assert_int_equal(sg_sim_seed(42, "crm.create_contact", &doc.root, &h), 0);
	return h;
}

/* The seed depends on the value, never on how its text was written. */
static void
test_seed_follows_the_value_not_the_text(void **state)
{
	(void)state;
	assert_true(seed_of("{\"a\":1,\"b\":[true,null]}") ==
	            seed_of(" { \"b\" : [ true , null ] , \"a\" : 1 } "));
	assert_true(seed_of("{\"s\":\"\\u00e9\"}") == seed_of("{\"s\":\"\xc3\xa9\"}"));
	static const char *const differ[] = {
	    "{\"a\":1}",
	    "{\"a\":\"1\"}",
	    "{\"a\":1.0}",
	    "{\"ab\":\"c\"}",
	    "{\"a\":\"bc\"}",
	    "[]",
	    "{}",
	    "[[]]",
	    "[{}]",
	    "null",
	    "false",
	    "true",
	    "0",
	    "\"\"",
	    "[\"a\",\"b\"]",
	    "[\"ab\"]",
	    "-1",
	    "18446744073709551615", /* above INT64_MAX: not the same bits as -1 */
	};
	size_t n = sizeof(differ) / sizeof(differ[0]);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (seed_of(differ[i]) == seed_of(differ[j]))
				fail_msg("%s and %s share a seed", differ[i], differ[j]);
	uint64_t a, b;
	assert_int_equal(sg_sim_seed(42, "crm.create_contact", NULL, &a), 0);
	assert_int_equal(sg_sim_seed(43, "crm.create_contact", NULL, &b), 0);
	assert_true(a != b);
	assert_true(a == seed_of("{}")); /* no input is an empty object */
	assert_int_equal(sg_sim_seed(42, "x", NULL, &b), 0);
	assert_true(a != b); /* so does the salt */
	/* Many members are sorted in a borrowed block: still canonical. */
	char fwd[512] = "{", rev[512] = "{";
	for (int i = 0; i < 40; i++)
		snprintf(fwd + strlen(fwd), sizeof(fwd) - strlen(fwd), "%s\"k%02d\":%d",
		         i ? "," : "", i, i);
	for (int i = 39; i >= 0; i--)
		snprintf(rev + strlen(rev), sizeof(rev) - strlen(rev), "%s\"k%02d\":%d",
		         i < 39 ? "," : "", i, i);
	strcat(fwd, "}");
	strcat(rev, "}");
	assert_true(seed_of(fwd) == seed_of(rev));
	/* Nesting past the bound is refused, not followed. */
	char deep[2 * 300 + 1];
	for (int i = 0; i < 300; i++) {
		deep[i] = '[';
		deep[300 + i] = ']';
	}
	deep[600] = '\0';
	struct sg_json_doc doc;
	assert_int_equal(sg_json_parse(deep, 600, 300, &doc, NULL), SG_JSON_OK);
	assert_int_equal(sg_sim_seed(42, "x", &doc.root, &a), -1);
}

/* Examples the caller checked are taken without a check: the same output, draw for draw. */
static void
test_checked_examples_give_the_same_output(void **state)
{
	(void)state;
	struct sg_schema *s = compile(crm_contact);
	json_t *ex = parse("[{\"id\":\"ct_7f3k2m9q\",\"email\":\"ada@example.com\","
	                   "\"name\":\"Ada Lovelace\",\"company\":\"Analytical Engines Ltd\","
	                   "\"created_at\":\"2024-03-01T09:30:00Z\"},"
	                   "{\"id\":\"ct_2b8x4n1w\",\"email\":\"grace@example.org\","
	                   "\"name\":\"Grace Hopper\",\"company\":\"Navy Computing Lab\","
	                   "\"created_at\":\"2023-11-20T14:05:00Z\"}]");
	for (uint64_t seed = 1; seed <= 40; seed++) {
		char in[64];
		snprintf(in, sizeof(in), "{\"name\":\"n%llu\"}", (unsigned long long)seed);
		json_t *i = parse(in);
		json_t *a = sg_sim_generate(s, ex, i, seed, "crm.create_contact");
		json_t *b = sg_sim_generate_checked(s, ex, i, seed, "crm.create_contact");
		assert_non_null(a);
		assert_same_bytes(a, b);
		json_decref(i);
	}
	json_decref(ex);
	sg_schema_free(s);
}

/*
 * Outputs share the examples' values instead of deep-copying them, so
 * filling an output (here, "k" into a nested item, and a re-rolled id)
 * must never write into the examples, which every thread reads.
 */
static void
test_examples_are_never_changed(void **state)
{
	(void)state;
	struct sg_schema *s = compile(
	    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},"
	    "\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
	    "  \"k\":{\"const\":\"filled\"},\"v\":{\"type\":\"integer\"}}}},"
	    "\"meta\":{\"type\":\"object\",\"properties\":{\"tag\":{\"const\":\"t\"}}}}}");
	json_t *ex = parse("[{\"id\":\"ab_12\",\"items\":[{\"v\":1}],\"meta\":{}}]");
	json_t *before = json_deep_copy(ex);
	for (uint64_t seed = 0; seed < 20; seed++) {
		json_t *out = sg_sim_generate_checked(s, ex, NULL, seed, "t");
		assert_non_null(out);
		json_t *item = json_array_get(json_object_get(out, "items"), 0);
		assert_string_equal(str(item, "k"), "filled");
		assert_string_equal(str(json_object_get(out, "meta"), "tag"), "t");
		json_decref(out);
		assert_true(json_equal(ex, before));
	}
	json_decref(before);
	json_decref(ex);
	sg_schema_free(s);
}

/* ---- the writer ---------------------------------------------------------- */

/* sg_sim_write's output alone, as text; NULL when it fails. */
static char *
write_text(const struct sg_schema *s, const json_t *ex, const char *in, uint64_t seed, bool checked)
{
	struct sg_jbuf out = {0};
	char *text = NULL;
	if (sg_sim_write(&out, s, ex, in, in ? strlen(in) : 0, seed, "crm.create_contact",
	                 checked) == 0)
		text = strndup(out.data, out.len);
	sg_jbuf_release(&out);
	return text;
}

static void
test_write_same_bytes_whatever_the_key_order(void **state)
{
	(void)state;
	struct sg_schema *s = compile(crm_contact);
	json_t *ex = parse(crm_example);
	for (uint64_t seed = 0; seed < 20; seed++) {
		char *a = write_text(s, ex, ada, seed, true),
		     *b = write_text(s, ex, ada, seed, true);
		char *c = write_text(s, ex,
		                     " { \"company\" : \"Engines\", \"name\":\"Ada\",\n"
		                     "\"email\":\"ada@example.com\" } ",
		                     seed, true);
		char *d = write_text(s, ex, ada, seed, false);
		assert_non_null(a);
		assert_string_equal(a, b);
		assert_string_equal(a, c);
		assert_string_equal(a, d); /* checked examples change nothing but the work */
		/* The jansson wrapper gives the same value, key order included. */
		json_t *in = parse(ada),
		       *j = sg_sim_generate_checked(s, ex, in, seed, "crm.create_contact");
		char *dj = json_dumps(j, JSON_COMPACT);
		assert_string_equal(a, dj);
		free(dj);
		json_decref(j);
		json_decref(in);
		free(a);
		free(b);
		free(c);
		free(d);
	}
	/* No input, "" and {} are one call. */
	char *none = write_text(s, ex, NULL, 3, true), *empty = write_text(s, ex, "", 3, true);
	char *obj = write_text(s, ex, "{}", 3, true);
	assert_string_equal(none, empty);
	assert_string_equal(none, obj);
	free(none);
	free(empty);
	free(obj);
	json_decref(ex);
	sg_schema_free(s);
}

/* What was in the buffer stays; a failed call leaves nothing after it. */
static void
test_write_failure_restores_the_buffer(void **state)
{
	(void)state;
	static const char *const impossible[] = {
	    "{\"type\":\"string\",\"pattern\":\"^x$\"}",
	    /* fails after "a" and a nested fallback were written */
	    ("{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"x\"],"
	     "\"properties\":{\"a\":{\"type\":\"string\"},\"b\":{\"type\":[\"integer\",\"null\"]},"
	     "\"c\":{\"type\":\"array\",\"items\":{\"pattern\":\"y\"}}}}"),
	    ("{\"type\":\"array\",\"minItems\":2,\"items\":{\"type\":\"string\","
	     "\"format\":\"date-time\",\"maxLength\":10}}"),
	};
	struct sg_schema *ok = compile(contact);
	for (size_t i = 0; i < sizeof(impossible) / sizeof(impossible[0]); i++) {
		struct sg_schema *s = compile(impossible[i]);
		struct sg_jbuf out = {0};
		struct sg_jw w;
		sg_jw_begin(&w, &out);
		sg_jw_stringz(&w, "keep");
		assert_int_equal(sg_jw_end(&w), 0);
		assert_int_equal(sg_sim_write(&out, s, NULL, "{\"a\":\"z\"}", 9, 1, "t", false),
		                 -1);
		assert_int_equal(out.len, 6);
		assert_string_equal(out.data, "\"keep\"");
		/* And an answer goes after what was there. */
		assert_int_equal(sg_sim_write(&out, ok, NULL, NULL, 0, 1, "t", false), 0);
		assert_memory_equal(out.data, "\"keep\"{\"id\":", 12);
		sg_jbuf_release(&out);
		sg_schema_free(s);
	}
	/* Input that does not parse within the cap is refused the same way. */
	struct sg_jbuf out = {0};
	assert_int_equal(sg_sim_write(&out, ok, NULL, "{\"a\":", 5, 1, "t", false), -1);
	assert_int_equal(out.len, 0);
	sg_jbuf_release(&out);
	sg_schema_free(ok);
}

/* A caller places the output inside its own reply through a slot. */
static void
test_write_into_a_slot(void **state)
{
	(void)state;
	struct sg_schema *s = compile(crm_contact);
	json_t *ex = parse(crm_example);
	struct sg_jbuf out = {0};
	struct sg_jw w;
	sg_jw_begin(&w, &out);
	sg_jw_object(&w);
	sg_jw_keyz(&w, "call");
	sg_jw_stringz(&w, "crm.create_contact");
	sg_jw_keyz(&w, "output");
	sg_jw_slot(&w);
	assert_int_equal(sg_sim_write(&out, s, ex, ada, strlen(ada), 5, "crm.create_contact", true),
	                 0);
	sg_jw_keyz(&w, "n");
	sg_jw_int(&w, 1);
	sg_jw_object_end(&w);
	assert_int_equal(sg_jw_end(&w), 0);
	json_t *all = parse(out.data);
	struct sg_schema_error err;
	size_t n = 0;
	if (sg_schema_validate_jansson(s, json_object_get(all, "output"), &err, 1, &n) != 0)
		fail_msg("invalid output at %s: %s", err.pointer, err.message);
	assert_string_equal(str(json_object_get(all, "output"), "email"), "ada@example.com");
	assert_int_equal(json_integer_value(json_object_get(all, "n")), 1);
	json_decref(all);
	sg_jbuf_release(&out);
	json_decref(ex);
	sg_schema_free(s);
}

/* ---- formats ------------------------------------------------------------- */

#define EMAIL "^[a-z][a-z.0-9]*[a-z0-9]@example\\.com$"

/* Lengths that conflict with a format are met where the format allows, or not at all. */
static void
test_formats_keep_their_shape(void **state)
{
	(void)state;
	struct sg_schema *s = compile(
	    "{\"type\":\"object\",\"properties\":{"
	    "\"short\":{\"type\":\"string\",\"format\":\"email\",\"maxLength\":15},"
	    "\"long\":{\"type\":\"string\",\"format\":\"email\",\"minLength\":60},"
	    "\"max\":{\"type\":\"string\",\"format\":\"email\",\"minLength\":76},"
	    "\"web\":{\"type\":\"string\",\"format\":\"uri\",\"minLength\":80,\"maxLength\":80},"
	    "\"at\":{\"type\":\"string\",\"format\":\"date-time\",\"maxLength\":20},"
	    "\"on\":{\"type\":\"string\",\"format\":\"date\"},"
	    "\"uid\":{\"type\":\"string\",\"format\":\"uuid\"}}}");
	for (uint64_t seed = 0; seed < SEEDS; seed++) {
		json_t *out = gen(s, NULL, NULL, seed, "t");
		assert_non_null(out);
		assert_true(matches(EMAIL, str(out, "short")));
		assert_true(strlen(str(out, "short")) <= 15);
		assert_true(matches(EMAIL, str(out, "long")));
		assert_true(strlen(str(out, "long")) >= 60);
		assert_true(matches(EMAIL, str(out, "max")));
		assert_true(matches("^https://example\\.com/[a-z]+/[0-9a-f]{8}(/[a-z]*)*$",
		                    str(out, "web")));
		assert_int_equal(strlen(str(out, "web")), 80);
		assert_true(matches(RFC3339_UTC, str(out, "at")));
		assert_true(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", str(out, "on")));
		assert_true(matches(UUID_V4, str(out, "uid")));
		json_decref(out);
	}
	sg_schema_free(s);
	/* Never cut into something that only looks like the format. */
	assert_unsatisfiable("{\"type\":\"string\",\"format\":\"date-time\",\"maxLength\":10}");
	assert_unsatisfiable("{\"type\":\"string\",\"format\":\"uuid\",\"minLength\":40}");
	assert_unsatisfiable("{\"type\":\"string\",\"format\":\"email\",\"maxLength\":12}");
	assert_unsatisfiable("{\"type\":\"string\",\"format\":\"email\",\"minLength\":77}");
	assert_unsatisfiable("{\"type\":\"string\",\"format\":\"uri\",\"maxLength\":20}");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_examples_are_never_changed),
	    cmocka_unit_test(test_same_call_same_bytes),
	    cmocka_unit_test(test_input_seed_and_salt_change_output),
	    cmocka_unit_test(test_every_output_is_valid_over_many_seeds),
	    cmocka_unit_test(test_create_contact_echoes_input),
	    cmocka_unit_test(test_crm_example_keeps_shape_and_varies_id),
	    cmocka_unit_test(test_echo_only_what_the_schema_accepts),
	    cmocka_unit_test(test_echo_after_a_container_check),
	    cmocka_unit_test(test_examples_are_chosen_and_completed),
	    cmocka_unit_test(test_pattern_needs_an_example_or_echo),
	    cmocka_unit_test(test_id_reroll_falls_back_to_the_example),
	    cmocka_unit_test(test_enum_and_const),
	    cmocka_unit_test(test_integer_bounds),
	    cmocka_unit_test(test_number_bounds),
	    cmocka_unit_test(test_array_items),
	    cmocka_unit_test(test_nested_objects_are_complete),
	    cmocka_unit_test(test_string_lengths_and_names),
	    cmocka_unit_test(test_depth_cap),
	    cmocka_unit_test(test_node_cap),
	    cmocka_unit_test(test_seed_follows_the_value_not_the_text),
	    cmocka_unit_test(test_checked_examples_give_the_same_output),
	    cmocka_unit_test(test_write_same_bytes_whatever_the_key_order),
	    cmocka_unit_test(test_write_failure_restores_the_buffer),
	    cmocka_unit_test(test_write_into_a_slot),
	    cmocka_unit_test(test_formats_keep_their_shape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
