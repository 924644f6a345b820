/* The simulator: deterministic, input-sensitive, and always schema-valid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/sg_simulator.h"

static struct sg_schema *
compile(const char *text)
{
	struct sg_schema_error err;
	json_t *j = json_loads(text, 0, NULL);
	assert_non_null(j);
	struct sg_schema *s = sg_schema_compile(j, &err);
	json_decref(j);
	assert_non_null(s);
	return s;
}

static char *
dump(const json_t *v)
{
	return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
}

static const char contact_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"id\",\"email\",\"name\",\"company\",\"created_at\"],\"properties\":{"
    "\"id\":{\"type\":\"string\",\"pattern\":\"^ct_[a-z0-9]+$\"},"
    "\"email\":{\"type\":\"string\",\"format\":\"email\",\"maxLength\":254},"
    "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200},"
    "\"company\":{\"type\":\"string\",\"maxLength\":200},"
    "\"created_at\":{\"type\":\"string\",\"format\":\"date-time\"}}}";

static json_t *
contact_examples(void)
{
	return json_loads("[{\"id\":\"ct_8f2k1x\",\"email\":\"a@example.com\",\"name\":\"A\","
			  "\"company\":\"C\",\"created_at\":\"2024-03-01T09:30:00Z\"}]",
	    0, NULL);
}

static void
test_echo_and_determinism(void **state)
{
	(void)state;
	struct sg_schema *s = compile(contact_schema);
	json_t *ex = contact_examples();
	json_t *in = json_pack("{s:s, s:s, s:s}", "email", "ada@example.com", "name", "Ada",
	    "company", "Engines");
	json_t *a = sg_sim_generate(s, ex, in, 42, "crm.create_contact");
	json_t *b = sg_sim_generate(s, ex, in, 42, "crm.create_contact");
	assert_non_null(a);
	assert_int_equal(sg_schema_validate(s, a, NULL, 0, NULL), 0);
	char *da = dump(a), *db = dump(b);
	assert_string_equal(da, db);
	assert_string_equal(json_string_value(json_object_get(a, "email")), "ada@example.com");
	assert_string_equal(json_string_value(json_object_get(a, "company")), "Engines");
	/* The id keeps the example's shape but is not the example's value. */
	const char *id = json_string_value(json_object_get(a, "id"));
	assert_memory_equal(id, "ct_", 3);
	assert_string_not_equal(id, "ct_8f2k1x");
	free(da);
	free(db);
	json_decref(a);
	json_decref(b);
	json_decref(in);
	json_decref(ex);
	sg_schema_free(s);
}

static void
test_input_seed_and_salt_change_output(void **state)
{
	(void)state;
	struct sg_schema *s = compile(contact_schema);
	json_t *ex = contact_examples();
	json_t *in1 = json_pack("{s:s}", "name", "Ada"), *in2 = json_pack("{s:s}", "name", "Grace");
	json_t *a = sg_sim_generate(s, ex, in1, 42, "x"), *b = sg_sim_generate(s, ex, in2, 42, "x");
	json_t *c = sg_sim_generate(s, ex, in1, 43, "x"), *d = sg_sim_generate(s, ex, in1, 42, "y");
	const char *ida = json_string_value(json_object_get(a, "id"));
	assert_string_not_equal(ida, json_string_value(json_object_get(b, "id")));
	assert_string_not_equal(ida, json_string_value(json_object_get(c, "id")));
	assert_string_not_equal(ida, json_string_value(json_object_get(d, "id")));
	json_decref(a);
	json_decref(b);
	json_decref(c);
	json_decref(d);
	json_decref(in1);
	json_decref(in2);
	json_decref(ex);
	sg_schema_free(s);
}

static void
test_pattern_without_example_is_unsatisfiable(void **state)
{
	(void)state;
	struct sg_schema *s = compile("{\"type\":\"object\",\"required\":[\"id\"],\"properties\":"
				      "{\"id\":{\"type\":\"string\",\"pattern\":\"^x[0-9]+$\"}}}");
	assert_null(sg_sim_generate(s, NULL, NULL, 1, "t"));
	/* An echoed input that matches satisfies it. */
	json_t *in = json_pack("{s:s}", "id", "x42");
	json_t *out = sg_sim_generate(s, NULL, in, 1, "t");
	assert_null(out); /* generation fails before echo can help: examples are the way */
	json_t *ex = json_loads("[{\"id\":\"x7\"}]", 0, NULL);
	out = sg_sim_generate(s, ex, in, 1, "t");
	assert_non_null(out);
	assert_string_equal(json_string_value(json_object_get(out, "id")), "x42");
	json_decref(out);
	json_decref(ex);
	json_decref(in);
	sg_schema_free(s);
}

static const char every_keyword[] =
    "{\"type\":\"object\",\"required\":[\"n\",\"i\",\"e\",\"c\",\"arr\",\"o\",\"b\",\"d\",\"u\"],"
    "\"properties\":{"
    "\"n\":{\"type\":\"number\",\"exclusiveMinimum\":0.5,\"exclusiveMaximum\":0.75},"
    "\"i\":{\"type\":\"integer\",\"minimum\":-3,\"maximum\":3},"
    "\"e\":{\"enum\":[\"red\",\"green\",{\"x\":1}]},"
    "\"c\":{\"const\":[1,2]},"
    "\"arr\":{\"type\":\"array\",\"minItems\":2,\"maxItems\":3,"
    "  \"items\":{\"type\":\"string\",\"minLength\":5,\"maxLength\":6}},"
    "\"o\":{\"type\":\"object\",\"properties\":{\"deep\":{\"type\":[\"null\",\"boolean\"]}}},"
    "\"b\":{\"type\":\"boolean\"},"
    "\"d\":{\"type\":\"string\",\"format\":\"date\"},"
    "\"u\":{\"type\":\"string\",\"format\":\"uuid\",\"minLength\":36,\"maxLength\":36}}}";

static void
test_every_output_is_valid_over_many_seeds(void **state)
{
	(void)state;
	struct sg_schema *s = compile(every_keyword);
	for (uint64_t seed = 0; seed < 300; seed++) {
		json_t *out = sg_sim_generate(s, NULL, NULL, seed, "k");
		assert_non_null(out);
		assert_int_equal(sg_schema_validate(s, out, NULL, 0, NULL), 0);
		json_int_t i = json_integer_value(json_object_get(out, "i"));
		assert_true(i >= -3 && i <= 3);
		size_t n = json_array_size(json_object_get(out, "arr"));
		assert_true(n >= 2 && n <= 3);
		json_decref(out);
	}
	sg_schema_free(s);
}

static void
test_impossible_bounds_are_refused(void **state)
{
	(void)state;
	struct sg_schema *s = compile("{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}");
	assert_null(sg_sim_generate(s, NULL, NULL, 1, "t"));
	sg_schema_free(s);
	s = compile("{\"type\":\"array\",\"minItems\":3,\"maxItems\":2,\"items\":{}}");
	assert_null(sg_sim_generate(s, NULL, NULL, 1, "t"));
	sg_schema_free(s);
}

static void
test_deep_schema_is_bounded(void **state)
{
	(void)state;
	/* 60 nested objects: within the cap, generated fully. */
	char *text = calloc(1, 60 * 40 + 64);
	for (int i = 0; i < 60; i++)
		strcat(text, "{\"type\":\"object\",\"properties\":{\"a\":");
	strcat(text, "{\"type\":\"string\"}");
	for (int i = 0; i < 60; i++)
		strcat(text, "}}");
	struct sg_schema *s = compile(text);
	json_t *out = sg_sim_generate(s, NULL, NULL, 1, "t");
	assert_non_null(out);
	assert_int_equal(sg_json_depth(out, 100), 60);
	json_decref(out);
	sg_schema_free(s);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo_and_determinism),
		cmocka_unit_test(test_input_seed_and_salt_change_output),
		cmocka_unit_test(test_pattern_without_example_is_unsatisfiable),
		cmocka_unit_test(test_every_output_is_valid_over_many_seeds),
		cmocka_unit_test(test_impossible_bounds_are_refused),
		cmocka_unit_test(test_deep_schema_is_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
