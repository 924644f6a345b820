/*
 * test_schema: the JSON Schema subset.  Error text is API (clients read it),
 * so pointers and messages are compared whole.
 *
 * Thread safety is not exercised here: it holds by construction, since a
 * compiled schema is never written after sg_schema_compile() returns and
 * validation keeps all of its state on the caller's stack.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

#include <cmocka.h>

#include "dlp/sg_dlp_scan.h"
#include "json/sg_json.h"
#include "schema/sg_schema.h"

#define MAX_ERRS 16

static json_t *
parse(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (j == NULL)
		fail_msg("bad test JSON %s: %s", text, jerr.text);
	return j;
}

static struct sg_schema *
compile(const char *text)
{
	struct sg_schema_error err = {{0}, {0}};
	json_t *j = parse(text);
	struct sg_schema *s = sg_schema_compile(j, &err);
	json_decref(j); /* the schema keeps its own reference */
	if (s == NULL)
		fail_msg("schema %s refused at \"%s\": %s", text, err.pointer, err.message);
	return s;
}

static void
expect_compile_error(const char *text, const char *pointer, const char *message)
{
	struct sg_schema_error err = {{0}, {0}};
	json_t *j = parse(text);
	struct sg_schema *s = sg_schema_compile(j, &err);
	json_decref(j);
	if (s != NULL) {
		sg_schema_free(s);
		fail_msg("schema %s compiled but should not have", text);
	}
	assert_string_equal(err.pointer, pointer);
	assert_string_equal(err.message, message);
}

static struct sg_schema_error errs[MAX_ERRS];

/* An instance as the request path has it: parsed by sg_json, live until the next parse. */
static struct sg_json_val
doc_of(const char *text)
{
	struct sg_json_doc doc;
	struct sg_json_error jerr;
	if (sg_json_parse(text, strlen(text), SG_SCHEMA_MAX_DEPTH, &doc, &jerr) != SG_JSON_OK)
		fail_msg("bad test instance %s: %s", text, jerr.message);
	return doc.root;
}

/* Validates a jansson value (the cold entry point); returns the number of errors. */
static size_t
run_json(const struct sg_schema *s, const json_t *inst, size_t max)
{
	size_t n = 12345;
	memset(errs, 0, sizeof(errs));
	int rc = sg_schema_validate_jansson(s, inst, errs, max, &n);
	assert_true(n <= max);
	if (n > 0)
		assert_int_equal(rc, -1);
	return rc == 0 ? 0 : n;
}

/*
 * Validates a JSON text parsed by sg_json, and checks that the jansson entry
 * point, which goes through the same validator, finds the very same errors.
 */
static size_t
run(const struct sg_schema *s, const char *inst, size_t max)
{
	struct sg_schema_error first[MAX_ERRS];
	json_t *j = parse(inst);
	size_t n_jansson = run_json(s, j, max);
	json_decref(j);
	memcpy(first, errs, sizeof(errs));

	size_t n = 12345;
	memset(errs, 0, sizeof(errs));
	int rc = sg_schema_validate(s, doc_of(inst), errs, max, &n);
	assert_true(n <= max);
	if (n > 0)
		assert_int_equal(rc, -1);
	n = rc == 0 ? 0 : n;
	assert_int_equal(n, n_jansson);
	assert_memory_equal(first, errs, sizeof(errs));
	return n;
}

static void
expect_valid(const struct sg_schema *s, const char *inst)
{
	size_t n = run(s, inst, MAX_ERRS);
	if (n != 0)
		fail_msg("%s: expected valid, got \"%s\": %s", inst, errs[0].pointer,
		         errs[0].message);
}

static void
expect_error(const struct sg_schema *s, const char *inst, const char *pointer, const char *message)
{
	size_t n = run(s, inst, MAX_ERRS);
	if (n != 1)
		fail_msg("%s: expected 1 error, got %zu", inst, n);
	assert_string_equal(errs[0].pointer, pointer);
	assert_string_equal(errs[0].message, message);
}

static void
test_type_each(void **state)
{
	(void)state;
	static const struct {
		const char *type, *good, *bad, *msg;
	} cases[] = {
	    {"string", "\"x\"", "1", "must be a string, not a number"},
	    {"number", "1.5", "\"1\"", "must be a number, not a string"},
	    {"integer", "7", "true", "must be an integer, not a boolean"},
	    {"boolean", "false", "null", "must be a boolean, not null"},
	    {"object", "{}", "[]", "must be an object, not an array"},
	    {"array", "[]", "{}", "must be an array, not an object"},
	    {"null", "null", "0", "must be null, not a number"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[64];
		snprintf(text, sizeof(text), "{\"type\": \"%s\"}", cases[i].type);
		struct sg_schema *s = compile(text);
		expect_valid(s, cases[i].good);
		expect_error(s, cases[i].bad, "", cases[i].msg);
		sg_schema_free(s);
	}
}

static void
test_type_list(void **state)
{
	(void)state;
	struct sg_schema *s = compile("{\"type\": [\"string\", \"null\"]}");
	expect_valid(s, "\"a\"");
	expect_valid(s, "null");
	expect_error(s, "3", "", "must be a string or null, not a number");
	sg_schema_free(s);

	s = compile("{\"type\": [\"array\", \"integer\", \"boolean\"]}");
	expect_error(s, "{}", "", "must be an integer, a boolean or an array, not an object");
	sg_schema_free(s);
}

static void
test_integer_vs_number(void **state)
{
	(void)state;
	struct sg_schema *s = compile("{\"type\": \"integer\"}");
	expect_valid(s, "3");
	expect_valid(s, "-3");
	expect_valid(s, "3.0"); /* a real with no fraction is an integer */
	expect_valid(s, "1e300");
	expect_error(s, "3.5", "", "must be an integer, not a number with a fractional part");
	expect_error(s, "-0.25", "", "must be an integer, not a number with a fractional part");
	sg_schema_free(s);

	s = compile("{\"type\": \"number\"}");
	expect_valid(s, "3");
	expect_valid(s, "3.5");
	sg_schema_free(s);

	/* "number" already covers integers, so the message does not list both. */
	s = compile("{\"type\": [\"integer\", \"number\"]}");
	expect_error(s, "\"3\"", "", "must be a number, not a string");
	sg_schema_free(s);
}

static void
test_required_and_properties(void **state)
{
	(void)state;
	struct sg_schema *s = compile("{\"type\": \"object\", \"required\": [\"name\", \"email\"],"
	                              " \"properties\": {\"name\": {\"type\": \"string\"}, "
	                              "\"age\": {\"type\": \"integer\"}}}");
	expect_valid(s, "{\"name\": \"a\", \"email\": 1}");
	expect_valid(s, "{\"name\": \"a\", \"email\": 1, \"other\": [1]}");
	expect_error(s, "{\"name\": \"a\"}", "/email", "is required");
	expect_error(s, "{\"name\": \"a\", \"email\": 1, \"age\": \"x\"}", "/age",
	             "must be an integer, not a string");
	/* Only objects are subject to object keywords. */
	expect_error(s, "[]", "", "must be an object, not an array");
	sg_schema_free(s);

	s = compile("{\"required\": [\"x\"]}");
	expect_valid(s, "\"not an object\"");
	sg_schema_free(s);
}

static void
test_additional_properties(void **state)
{
	(void)state;
	struct sg_schema *s =
	    compile("{\"properties\": {\"a\": {}}, \"additionalProperties\": false}");
	expect_valid(s, "{\"a\": 1}");
	expect_error(s, "{\"a\": 1, \"b\": 2}", "/b",
	             "is not allowed here (no additional properties)");
	sg_schema_free(s);

	s = compile("{\"properties\": {\"a\": {}}, \"additionalProperties\": true}");
	expect_valid(s, "{\"a\": 1, \"b\": 2}");
	sg_schema_free(s);

	s = compile("{\"properties\": {\"a\": {\"type\": \"string\"}},"
	            " \"additionalProperties\": {\"type\": \"integer\", \"minimum\": 0}}");
	expect_valid(s, "{\"a\": \"s\", \"b\": 2, \"c\": 0}");
	expect_error(s, "{\"a\": \"s\", \"b\": \"2\"}", "/b", "must be an integer, not a string");
	expect_error(s, "{\"b\": -1}", "/b", "must be at least 0");
	expect_error(s, "{\"a\": 1}", "/a", "must be a string, not a number");
	sg_schema_free(s);
}

/* A property schema of `false` is not the additionalProperties message. */
static void
test_boolean_schemas(void **state)
{
	(void)state;
	struct sg_schema *s = compile("{\"properties\": {\"secret\": false}}");
	expect_valid(s, "{\"other\": 1}");
	expect_error(s, "{\"secret\": 1}", "/secret", "is not allowed here");
	sg_schema_free(s);

	s = compile("true");
	expect_valid(s, "[1, {\"a\": null}]");
	sg_schema_free(s);

	s = compile("false");
	expect_error(s, "{}", "", "is not allowed here");
	sg_schema_free(s);
}

static void
test_enum(void **state)
{
	(void)state;
	struct sg_schema *s = compile("{\"enum\": [\"a\", \"b\"]}");
	expect_valid(s, "\"a\"");
	expect_valid(s, "\"b\"");
	expect_error(s, "\"c\"", "", "must be one of: \"a\", \"b\"");
	expect_error(s, "1", "", "must be one of: \"a\", \"b\"");
	sg_schema_free(s);

	s = compile("{\"enum\": [{\"a\": 1, \"b\": [1, 2]}, null, 0.5]}");
	expect_valid(s, "{\"b\": [1, 2], \"a\": 1}"); /* key order does not matter */
	expect_valid(s, "null");
	expect_valid(s, "0.5");
	expect_error(s, "{\"a\": 1, \"b\": [2, 1]}", "",
	             "must be one of: {\"a\":1,\"b\":[1,2]}, null, 0.5");
	expect_error(s, "{\"a\": 1}", "", "must be one of: {\"a\":1,\"b\":[1,2]}, null, 0.5");
	sg_schema_free(s);
}

/*
 * enum and const keep jansson's json_equal meaning: an integer and a real
 * differ even when equal in value; reals compare as doubles (-0.0 is 0.0).
 */
static void
test_enum_number_types(void **state)
{
	(void)state;
	struct sg_schema *s = compile("{\"enum\": [1, 2.5, 9223372036854775807]}");
	expect_valid(s, "1");
	expect_valid(s, "2.5");
	expect_valid(s, "25e-1");
	expect_valid(s, "9223372036854775807");
	expect_error(s, "1.0", "", "must be one of: 1, 2.5, 9223372036854775807");
	expect_error(s, "1e0", "", "must be one of: 1, 2.5, 9223372036854775807");
	/* Above INT64_MAX only sg_json can hold it, and it equals no schema value. */
	struct sg_schema_error e[2];
	size_t n = 0;
	assert_int_equal(sg_schema_validate(s, doc_of("18446744073709551615"), e, 2, &n), -1);
	assert_string_equal(e[0].message, "must be one of: 1, 2.5, 9223372036854775807");
	sg_schema_free(s);

	s = compile("{\"const\": [0.0, {\"a\": 1}]}");
	expect_valid(s, "[-0.0, {\"a\": 1}]");
	expect_valid(s, "[0e5, {\"a\": 1}]");
	expect_error(s, "[0, {\"a\": 1}]", "", "must be exactly [0.0,{\"a\":1}]");
	expect_error(s, "[0.0, {\"a\": 1.0}]", "", "must be exactly [0.0,{\"a\":1}]");
	expect_error(s, "[0.0, {\"a\": 1, \"b\": 1}]", "", "must be exactly [0.0,{\"a\":1}]");
	expect_error(s, "[0.0]", "", "must be exactly [0.0,{\"a\":1}]");
	sg_schema_free(s);

	/* An integer above INT64_MAX is an integer for type and bounds. */
	s = compile("{\"type\": \"integer\", \"maximum\": 1e19}");
	assert_int_equal(sg_schema_validate(s, doc_of("18446744073709551615"), e, 2, &n), -1);
	assert_string_equal(e[0].message, "must be at most 1e+19");
	assert_int_equal(sg_schema_validate(s, doc_of("9999999999999999999"), e, 2, &n), 0);
	sg_schema_free(s);
}

/* Scalars checked without a document: each type, and what no JSON text can hold. */
static void
test_accepts_scalar(void **state)
{
	(void)state;
	struct sg_schema *s =
	    compile("{\"properties\": {\"n\": {\"type\": \"number\", \"maximum\": 10},"
	            " \"i\": {\"type\": \"integer\"}, \"e\": {\"enum\": [true, null]}}}");
	const json_t *props = json_object_get(sg_schema_json(s), "properties");
	const json_t *num = json_object_get(props, "n"), *in = json_object_get(props, "i"),
	             *en = json_object_get(props, "e");
	struct sg_schema_scalar v = {.type = SG_JSON_DOUBLE, .d = 9.5};
	assert_int_equal(sg_schema_accepts_scalar(s, num, &v), 0);
	assert_int_equal(sg_schema_accepts_scalar(s, in, &v), -1);
	v.d = 10.5;
	assert_int_equal(sg_schema_accepts_scalar(s, num, &v), -1);
	v.d = 4.0;
	assert_int_equal(sg_schema_accepts_scalar(s, in, &v), 0);
	v = (struct sg_schema_scalar){.type = SG_JSON_INT, .i = -3};
	assert_int_equal(sg_schema_accepts_scalar(s, in, &v), 0);
	v = (struct sg_schema_scalar){.type = SG_JSON_UINT, .u = UINT64_MAX};
	assert_int_equal(sg_schema_accepts_scalar(s, in, &v), 0);
	assert_int_equal(sg_schema_accepts_scalar(s, num, &v), -1);
	v = (struct sg_schema_scalar){.type = SG_JSON_BOOL, .b = true};
	assert_int_equal(sg_schema_accepts_scalar(s, en, &v), 0);
	v.b = false;
	assert_int_equal(sg_schema_accepts_scalar(s, en, &v), -1);
	v = (struct sg_schema_scalar){.type = SG_JSON_NULL};
	assert_int_equal(sg_schema_accepts_scalar(s, en, &v), 0);
	/* No JSON text holds these, whatever the schema. */
	struct sg_schema *any = compile("{}");
	v = (struct sg_schema_scalar){.type = SG_JSON_DOUBLE, .d = NAN};
	assert_int_equal(sg_schema_accepts_scalar(any, sg_schema_json(any), &v), -1);
	v.d = INFINITY;
	assert_int_equal(sg_schema_accepts_scalar(any, sg_schema_json(any), &v), -1);
	v = (struct sg_schema_scalar){.type = SG_JSON_OBJECT};
	assert_int_equal(sg_schema_accepts_scalar(any, sg_schema_json(any), &v), -1);
	v = (struct sg_schema_scalar){.type = SG_JSON_STRING, .s = NULL};
	assert_int_equal(sg_schema_accepts_scalar(any, sg_schema_json(any), &v), -1);
	sg_schema_free(any);
	sg_schema_free(s);
}

static void
test_enum_message_is_clipped(void **state)
{
	(void)state;
	char text[2048];
	size_t len = (size_t)snprintf(text, sizeof(text), "{\"enum\": [");
	for (int i = 0; i < 40; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%s\"value-number-%02d\"",
		                        i ? ", " : "", i);
	snprintf(text + len, sizeof(text) - len, "]}");
	struct sg_schema *s = compile(text);
	expect_valid(s, "\"value-number-39\"");
	assert_int_equal(run(s, "\"x\"", MAX_ERRS), 1);
	const char *m = errs[0].message;
	assert_true(strlen(m) < sizeof(errs[0].message) - 1);
	assert_true(strncmp(m, "must be one of: \"value-number-00\", \"value-number-01\"", 51) ==
	            0);
	assert_string_equal(m + strlen(m) - 5, ", ...");
	assert_null(strstr(m, "value-number-39"));
	sg_schema_free(s);
}

static void
test_const(void **state)
{
	(void)state;
	struct sg_schema *s = compile("{\"const\": {\"v\": 1}}");
	expect_valid(s, "{\"v\": 1}");
	expect_error(s, "{\"v\": 2}", "", "must be exactly {\"v\":1}");
	sg_schema_free(s);

	s = compile("{\"const\": null}");
	expect_valid(s, "null");
	expect_error(s, "false", "", "must be exactly null");
	sg_schema_free(s);
}

static void
test_string_lengths(void **state)
{
	(void)state;
	struct sg_schema *s = compile("{\"minLength\": 3, \"maxLength\": 5}");
	expect_error(s, "\"ab\"", "", "must be at least 3 characters long");
	expect_valid(s, "\"abc\"");
	expect_valid(s, "\"abcd\"");
	expect_valid(s, "\"abcde\"");
	expect_error(s, "\"abcdef\"", "", "must be at most 5 characters long");
	/* Code points, not bytes: é is 2 bytes, € 3, 😀 4. */
	expect_valid(s, "\"\xc3\xa9\xc3\xa9\xc3\xa9\"");
	expect_valid(s, "\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xe2\x82\xac\xe2\x82\xac\xc3\xa9\"");
	expect_error(s, "\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\"", "",
	             "must be at least 3 characters long");
	expect_error(s, "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"", "",
	             "must be at most 5 characters long");
	/* Length keywords do not apply to other types. */
	expect_valid(s, "12345678");
	sg_schema_free(s);

	s = compile("{\"minLength\": 1, \"maxLength\": 1}");
	expect_error(s, "\"\"", "", "must be at least 1 character long");
	expect_error(s, "\"ab\"", "", "must be at most 1 character long");
	sg_schema_free(s);
}

static void
test_numeric_bounds(void **state)
{
	(void)state;
	struct sg_schema *s = compile("{\"minimum\": 3, \"maximum\": 100}");
	expect_error(s, "2", "", "must be at least 3");
	expect_error(s, "2.99", "", "must be at least 3");
	expect_valid(s, "3");
	expect_valid(s, "100");
	expect_valid(s, "100.0");
	expect_error(s, "101", "", "must be at most 100");
	expect_error(s, "100.5", "", "must be at most 100");
	expect_valid(s, "\"1000\"");
	sg_schema_free(s);

	s = compile("{\"exclusiveMinimum\": 0, \"exclusiveMaximum\": 1.5}");
	expect_error(s, "-1", "", "must be greater than 0");
	expect_error(s, "0", "", "must be greater than 0");
	expect_valid(s, "0.1");
	expect_valid(s, "1.4");
	expect_error(s, "1.5", "", "must be less than 1.5");
	expect_error(s, "2", "", "must be less than 1.5");
	sg_schema_free(s);

	s = compile("{\"maximum\": 0.1}");
	expect_error(s, "0.2", "", "must be at most 0.1");
	sg_schema_free(s);
}

static void
test_pattern(void **state)
{
	(void)state;
	struct sg_schema *s = compile("{\"pattern\": \"^[a-z]+$\"}");
	expect_valid(s, "\"abc\"");
	expect_error(s, "\"abC\"", "", "must match the pattern ^[a-z]+$");
	expect_error(s, "\"\"", "", "must match the pattern ^[a-z]+$");
	/* No body carries a NUL (the parser refuses "\u0000"), nor does a jansson value. */
	json_t *nul = json_stringn("abc\0DEF", 7);
	assert_int_equal(run_json(s, nul, MAX_ERRS), 1);
	assert_string_equal(errs[0].pointer, "");
	assert_string_equal(errs[0].message,
	                    "contains \\u0000, which the gateway does not accept; remove it");
	json_decref(nul);
	/* $ is the end of the string, as in ECMA-262: not before a final newline. */
	expect_error(s, "\"abc\\n\"", "", "must match the pattern ^[a-z]+$");
	expect_valid(s, "5");
	sg_schema_free(s);

	/* JSON Schema patterns are unanchored. */
	s = compile("{\"pattern\": \"[0-9]\"}");
	expect_valid(s, "\"ab1cd\"");
	expect_error(s, "\"abcd\"", "", "must match the pattern [0-9]");
	sg_schema_free(s);
}

/* What schema authors write, with the meaning ECMA-262 gives it. */
static void
test_pattern_syntax(void **state)
{
	(void)state;
	struct sg_schema *s = compile("{\"pattern\": \"^\\\\d{3}-\\\\w+$\"}");
	expect_valid(s, "\"123-ab_9\"");
	expect_error(s, "\"ddd-ab\"", "", "must match the pattern ^\\d{3}-\\w+$");
	sg_schema_free(s);
	/* A literal $ (escaped or in a class) stays literal; [:alpha:] is one element. */
	s = compile("{\"pattern\": \"^[[:alpha:]$]+\\\\$$\"}");
	expect_valid(s, "\"ab$c$\"");
	expect_error(s, "\"ab1$\"", "", "must match the pattern ^[[:alpha:]$]+\\$$");
	sg_schema_free(s);
	s = compile("{\"pattern\": \"^a+?b*?$\"}"); /* lazy, not stacked */
	expect_valid(s, "\"aab\"");
	sg_schema_free(s);
	s = compile("{\"pattern\": \"^$\"}");
	expect_valid(s, "\"\"");
	expect_error(s, "\"x\"", "", "must match the pattern ^$");
	sg_schema_free(s);
	s = compile("{\"pattern\": \"^é+.$\"}"); /* UTF-8: . is one character */
	expect_valid(s, "\"ééü\"");
	sg_schema_free(s);
	expect_compile_error("{\"pattern\": \"(a)\\\\1\"}", "/pattern",
	                     "pattern is not supported: Back-references are unsupported.");
	expect_compile_error("{\"pattern\": \"(?=a)a\"}", "/pattern",
	                     "pattern is not supported: Zero-width assertions are not supported.");
	expect_compile_error("{\"pattern\": \"^\\\\Q$\\\\E\"}", "/pattern",
	                     "pattern uses \\Q...\\E, which JSON Schema patterns do not have; "
	                     "escape each character instead");
	/* "[:]" is not a POSIX class: the class ends at its ']' and the $ is an anchor. */
	s = compile("{\"pattern\": \"^[a[:]+$|:]\"}");
	expect_valid(s, "\"a:\"");
	expect_error(s, "\"a\\n\"", "", "must match the pattern ^[a[:]+$|:]");
	sg_schema_free(s);
	/* . stops at \n and \r (U+2028 is the documented exception); [.] is a dot. */
	s = compile("{\"pattern\": \"^a.b[.]$\"}");
	expect_valid(s, "\"axb.\"");
	expect_valid(s, "\"a\u00e9b.\"");
	expect_error(s, "\"a\\rb.\"", "", "must match the pattern ^a.b[.]$");
	expect_error(s, "\"a\\nb.\"", "", "must match the pattern ^a.b[.]$");
	expect_valid(s, "\"a\u2028b.\"");
	expect_error(s, "\"axbx\"", "", "must match the pattern ^a.b[.]$");
	sg_schema_free(s);
}

struct matcher {
	struct sg_schema *s;
	const char *good, *bad;
	int wrong;
};

static void *
match_many(void *arg)
{
	struct matcher *m = arg;
	const json_t *root = sg_schema_json(m->s);
	struct sg_schema_scalar good = {
	    .type = SG_JSON_STRING, .s = m->good, .len = strlen(m->good)};
	struct sg_schema_scalar bad = {.type = SG_JSON_STRING, .s = m->bad, .len = strlen(m->bad)};
	for (int i = 0; i < 2000; i++) {
		m->wrong += sg_schema_accepts_scalar(m->s, root, &good) != 0;
		m->wrong += sg_schema_accepts_scalar(m->s, root, &bad) != -1;
	}
	return NULL;
}

/*
 * Each thread matches with its own scratch memory, which must follow the
 * patterns compiled after it first matched (here, a much larger one).
 */
static void
test_patterns_across_threads(void **state)
{
	(void)state;
	struct sg_schema *small = compile("{\"pattern\": \"^a$\"}");
	struct matcher m[3] = {{small, "a", "b", 0}};
	match_many(&m[0]);
	struct sg_schema *large = compile("{\"pattern\": \"^(x[a-z]{20,300}y|\\\\d{40,90}|"
	                                  "[^@ ]+@[^@ ]+\\\\.[a-z]{2,30})$\"}");
	m[0] = (struct matcher){large, "ada@example.com", "ada@", 0};
	match_many(&m[0]);
	assert_int_equal(m[0].wrong, 0);
	pthread_t t[2];
	m[1] = (struct matcher){large, "xabcdefghijklmnopqrstuvwxyzy", "xy", 0};
	m[2] = (struct matcher){small, "a", "aa", 0};
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, match_many, &m[i + 1]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(m[1].wrong + m[2].wrong, 0);
	sg_schema_free(small);
	sg_schema_free(large);
}

static void
test_items(void **state)
{
	(void)state;
	struct sg_schema *s = compile("{\"items\": {\"type\": \"string\"}, \"minItems\": 1,"
	                              " \"maxItems\": 10}");
	expect_error(s, "[]", "", "must have at least 1 item");
	expect_valid(s, "[\"a\"]");
	expect_valid(s, "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]");
	expect_valid(s, "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\"]");
	expect_error(s, "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\"]", "",
	             "must have at most 10 items");
	expect_error(s, "[\"a\", \"b\", 3]", "/2", "must be a string, not a number");
	expect_valid(s, "\"not an array\"");
	sg_schema_free(s);

	s = compile("{\"minItems\": 2}");
	expect_error(s, "[1]", "", "must have at least 2 items");
	expect_valid(s, "[1, 2]");
	sg_schema_free(s);
}

static void
test_unknown_format_and_annotations_ignored(void **state)
{
	(void)state;
	struct sg_schema *s =
	    compile("{\"type\": \"string\", \"format\": \"hostname\","
	            " \"title\": \"t\", \"description\": \"d\", \"examples\": [1], \"default\": 2,"
	            " \"$comment\": \"c\"}");
	expect_valid(s, "\"not a host name!\"");
	expect_error(s, "1", "", "must be a string, not a number");
	sg_schema_free(s);
}

struct format_case {
	const char *value; /* JSON string contents */
	const char *why;   /* NULL: valid; "": the generic message; else the reason */
};

/* Each value checked as `format`, at /v of an object, as a client would send it. */
static void
expect_formats(const char *format, const char *what, const struct format_case *c, size_t n)
{
	char schema[128], inst[512], msg[512];
	snprintf(schema, sizeof(schema), "{\"properties\": {\"v\": {\"format\": \"%s\"}}}", format);
	struct sg_schema *s = compile(schema);
	for (size_t i = 0; i < n; i++) {
		snprintf(inst, sizeof(inst), "{\"v\": \"%s\"}", c[i].value);
		if (c[i].why == NULL) {
			expect_valid(s, inst);
			continue;
		}
		snprintf(msg, sizeof(msg), "is not %s%s%s", what, c[i].why[0] ? ": " : "",
		         c[i].why);
		expect_error(s, inst, "/v", msg);
	}
	/* A format says nothing about other types. */
	expect_valid(s, "{\"v\": 5}");
	sg_schema_free(s);
}

#define FORMATS(f, what, cases) expect_formats(f, what, cases, sizeof(cases) / sizeof(cases[0]))

static void
test_format_date_time(void **state)
{
	(void)state;
	static const struct format_case cases[] = {
	    {"2026-12-07T09:30:00Z", NULL},
	    {"2026-12-07t09:30:00z", NULL},
	    {"2026-12-07T09:30:00.123456+01:00", NULL},
	    {"2026-12-07T09:30:00-23:59", NULL},
	    {"2024-02-29T00:00:00Z", NULL},
	    {"2000-02-29T00:00:00Z", NULL},
	    {"1998-12-31T23:59:60Z", NULL},
	    {"1998-12-31T15:59:60-08:00", NULL}, /* 23:59:60 UTC */
	    {"next tuesday-ish", ""},
	    {"", ""},
	    {"2026-12-07", ""},
	    {"2026-12-7T09:30:00Z", ""},
	    {"2026-12-07T9:30:00Z", ""},
	    {"2026-12-07T09:30Z", ""},
	    {"2026-12-07T09:30:00+0100", ""},
	    {"2026-12-07T09:30:00Z ", ""},
	    {"2026-12-07T09:30:00ZZ", ""},
	    {"+2026-12-07T09:30:00Z", ""},
	    {"2026-12-07T09:30:00.Z", "the fraction after '.' needs digits"},
	    {"2026-12-07T09:30:00", "it has no time zone; end it with Z or an offset like +01:00"},
	    {"2026-12-07 09:30:00Z", "the date and the time are joined by T, not a space"},
	    {"2025-02-29T10:00:00Z", "February 2025 has 28 days"},
	    {"1900-02-29T10:00:00Z", "February 1900 has 28 days"},
	    {"2026-04-31T10:00:00Z", "April 2026 has 30 days"},
	    {"2026-13-01T10:00:00Z", "month 13 does not exist"},
	    {"2026-00-01T10:00:00Z", "month 00 does not exist"},
	    {"2026-01-00T10:00:00Z", "day 00 does not exist"},
	    {"2026-12-07T24:00:00Z", "hours run from 00 to 23"},
	    {"2026-12-07T09:60:00Z", "minutes run from 00 to 59"},
	    {"2026-12-07T09:30:61Z",
	     "seconds run from 00 to 59 (60 only for a leap second, at 23:59 UTC)"},
	    {"1998-12-31T23:59:60+01:00",
	     "seconds run from 00 to 59 (60 only for a leap second, at 23:59 UTC)"},
	    {"2026-12-07T09:30:00+24:00", "the offset +24:00 is out of range (-23:59 to +23:59)"},
	};
	FORMATS("date-time", "a date-time (RFC 3339, e.g. 2026-12-07T09:30:00Z)", cases);
}

static void
test_format_date(void **state)
{
	(void)state;
	static const struct format_case cases[] = {
	    {"2026-12-07", NULL},
	    {"2024-02-29", NULL},
	    {"0000-01-01", NULL},
	    {"2026-12-07T09:30:00Z", ""},
	    {"07/12/2026", ""},
	    {"2026-1-07", ""},
	    {"20261207", ""},
	    {"2023-02-29", "February 2023 has 28 days"},
	    {"2026-06-31", "June 2026 has 30 days"},
	    {"2026-12-32", "December 2026 has 31 days"},
	    {"2026-13-07", "month 13 does not exist"},
	};
	FORMATS("date", "a date (RFC 3339, e.g. 2026-12-07)", cases);
}

static void
test_format_email(void **state)
{
	(void)state;
	static const struct format_case cases[] = {
	    {"ada@example.com", NULL},
	    {"ada.lovelace+news@mail.example.co.uk", NULL},
	    {"o'brien!#$%&*/=?^_`{|}~-@x-1.example", NULL},
	    {"ada", "it has no @"},
	    {"ada@@example.com", "it has more than one @"},
	    {"ada@example@com", "it has more than one @"},
	    {"@example.com", "there is nothing before the @"},
	    {"ada@", "there is nothing after the @"},
	    {".ada@example.com",
	     "the part before the @ starts or ends with a dot, or has two in a row"},
	    {"ada.@example.com",
	     "the part before the @ starts or ends with a dot, or has two in a row"},
	    {"a..da@example.com",
	     "the part before the @ starts or ends with a dot, or has two in a row"},
	    {"a da@example.com", "the character ' ' is not allowed before the @"},
	    {"ad(a)@example.com", "the character '(' is not allowed before the @"},
	    {"\u00e9@example.com", "a non-ASCII character is not allowed before the @"},
	    {"ada@localhost", "the domain has no dot"},
	    {"ada@-example.com", "the domain's parts are 1 to 63 letters, digits or hyphens, with "
	                         "no hyphen first or last"},
	    {"ada@example-.com", "the domain's parts are 1 to 63 letters, digits or hyphens, with "
	                         "no hyphen first or last"},
	    {"ada@example..com", "the domain's parts are 1 to 63 letters, digits or hyphens, with "
	                         "no hyphen first or last"},
	    {"ada@example.com.", "the domain's parts are 1 to 63 letters, digits or hyphens, with "
	                         "no hyphen first or last"},
	    {"ada@exa_mple.com", "the domain's parts are 1 to 63 letters, digits or hyphens, with "
	                         "no hyphen first or last"},
	};
	FORMATS("email", "an email address (e.g. ada@example.com)", cases);
}

/* Local part 64 and 65, label 63 and 64, domain 255 and 256. */
static void
test_format_email_lengths(void **state)
{
	(void)state;
	char local[66], label[65], domain[258], text[400];
	memset(local, 'a', sizeof(local) - 1);
	local[sizeof(local) - 1] = '\0';
	memset(label, 'b', sizeof(label) - 1);
	label[sizeof(label) - 1] = '\0';
	/* 4 labels of 63 and 3 dots: 255; then one more character. */
	snprintf(domain, sizeof(domain), "%.63s.%.63s.%.63s.%.63s", label, label, label, label);
	struct sg_schema *s = compile("{\"format\": \"email\"}");
	const char *is_not = "is not an email address (e.g. ada@example.com): ";
	char msg[256];

	snprintf(text, sizeof(text), "\"%.64s@example.com\"", local);
	expect_valid(s, text);
	snprintf(text, sizeof(text), "\"%.65s@example.com\"", local);
	snprintf(msg, sizeof(msg), "%sthe part before the @ is longer than 64 characters", is_not);
	expect_error(s, text, "", msg);
	snprintf(text, sizeof(text), "\"a@%.63s.com\"", label);
	expect_valid(s, text);
	snprintf(text, sizeof(text), "\"a@%.64s.com\"", label);
	snprintf(msg, sizeof(msg),
	         "%sthe domain's parts are 1 to 63 letters, digits or hyphens, with no hyphen "
	         "first or last",
	         is_not);
	expect_error(s, text, "", msg);
	assert_int_equal(strlen(domain), 255);
	snprintf(text, sizeof(text), "\"a@%s\"", domain);
	expect_valid(s, text);
	domain[0] = 'c';
	snprintf(text, sizeof(text), "\"a@c%s\"", domain);
	snprintf(msg, sizeof(msg), "%sthe domain is longer than 255 characters", is_not);
	expect_error(s, text, "", msg);
	sg_schema_free(s);
}

static void
test_format_uri(void **state)
{
	(void)state;
	static const char *const scheme =
	    "it needs a scheme (a letter, then letters, digits, +, - or .) and a colon, such as "
	    "https: or mailto:";
	static const struct format_case cases[] = {
	    {"mailto:x", NULL},
	    {"https://example.com/path", NULL},
	    {"http://foo.bar/?baz=qux#quux", NULL},
	    {"http://foo.com/blah_(wiki)#cite-1", NULL},
	    {"http://foo.bar/?q=Test%20URL-encoded%20stuff", NULL},
	    {"http://-.~_!$&'()*+,;=:%40:80%2f::::::@example.com", NULL},
	    {"http://223.255.255.254:8080", NULL},
	    {"ldap://[2001:db8::7]/c=GB?objectClass?one", NULL},
	    {"urn:oasis:names:specification:docbook:dtd:xml:4.1.2", NULL},
	    {"tel:+1-816-555-1212", NULL},
	    {"file:///etc/hosts", NULL},
	    {"not a uri", scheme},
	    {"//example.com/path", scheme},
	    {"/abc", scheme},
	    {"abc", scheme},
	    {":// should fail", scheme},
	    {"bar,baz:foo", scheme},
	    {"1http://example.com", scheme},
	    {"http:// shouldfail.com", "the character ' ' must be percent-encoded (%20)"},
	    {"http://example.com/a b", "the character ' ' must be percent-encoded (%20)"},
	    {"http://example.com/a\\\"b", "the character '\"' must be percent-encoded (%22)"},
	    {"http://example.com/#a#b", "the character '#' must be percent-encoded (%23)"},
	    {"http://example.com/a[1]", "the character '[' must be percent-encoded (%5B)"},
	    {"http://example.com/\u00e9", "non-ASCII characters must be percent-encoded as UTF-8"},
	    {"http://example.com/\\t", "the control character 0x09 must be percent-encoded (%09)"},
	    {"http://example.com/%2", "% must be followed by two hex digits"},
	    {"http://example.com/%zz", "% must be followed by two hex digits"},
	    {"http://example.com:80a/", "the port after the host must be digits"},
	    {"http://[::1/", "an IP literal opened with [ needs its ]"},
	    {"http://[::1]x/", "only a port may follow an IP literal's ]"},
	};
	FORMATS("uri", "an absolute URI (RFC 3986, e.g. https://example.com/path)", cases);
}

static void
test_format_uuid(void **state)
{
	(void)state;
	static const struct format_case cases[] = {
	    {"123e4567-e89b-12d3-a456-426614174000", NULL},
	    {"123E4567-E89B-12D3-A456-426614174000", NULL},
	    {"00000000-0000-0000-0000-000000000000", NULL},
	    {"123e4567-e89b-12d3-a456-42661417400", "group 5 has 11 digits, not 12"},
	    {"123e4567-e89b1-2d3-a456-426614174000", "group 2 has 5 digits, not 4"},
	    {"123e4567e89b12d3a456426614174000", "group 1 has 32 digits, not 8"},
	    {"123e4567-e89b-12d3-a456", "it has 4 groups, not 5"},
	    {"123e4567-e89b-12d3-a456-426614174000-1", "it has more than 5 groups"},
	    {"123e4567-e89b-12d3-a456-42661417400g", "the character 'g' is not a hex digit"},
	    {"{123e4567-e89b-12d3-a456-426614174000}", "the character '{' is not a hex digit"},
	    {"", "group 1 has 0 digits, not 8"},
	};
	FORMATS("uuid", "a UUID (8-4-4-4-12 hex digits, e.g. 123e4567-e89b-12d3-a456-426614174000)",
	        cases);
}

/* Format errors come with the others, after the pattern's. */
static void
test_format_with_other_keywords(void **state)
{
	(void)state;
	struct sg_schema *s =
	    compile("{\"format\": \"date\", \"pattern\": \"^2\", \"maxLength\": 3}");
	assert_int_equal(run(s, "\"1999-99-99\"", MAX_ERRS), 3);
	assert_string_equal(errs[0].message, "must be at most 3 characters long");
	assert_string_equal(errs[1].message, "must match the pattern ^2");
	assert_string_equal(errs[2].message,
	                    "is not a date (RFC 3339, e.g. 2026-12-07): month 99 does not exist");
	sg_schema_free(s);
	/* A scalar draw meets the same check. */
	s = compile("{\"format\": \"uuid\"}");
	struct sg_schema_scalar v = {.type = SG_JSON_STRING, .s = "not-a-uuid", .len = 10};
	assert_int_equal(sg_schema_accepts_scalar(s, sg_schema_json(s), &v), -1);
	v.s = "123e4567-e89b-12d3-a456-426614174000";
	v.len = strlen(v.s);
	assert_int_equal(sg_schema_accepts_scalar(s, sg_schema_json(s), &v), 0);
	sg_schema_free(s);
}

static void
test_nested_pointers_and_escaping(void **state)
{
	(void)state;
	struct sg_schema *s = compile(
	    "{\"properties\": {\"a/b\": {\"items\": {"
	    "\"properties\": {\"m~n\": {\"type\": \"string\"}, \"~/\": {\"maximum\": 1}}}}}}");
	expect_valid(s, "{\"a/b\": [{\"m~n\": \"s\"}]}");
	expect_error(s, "{\"a/b\": [{}, {\"m~n\": 5}]}", "/a~1b/1/m~0n",
	             "must be a string, not a number");
	expect_error(s, "{\"a/b\": [{\"~/\": 2}]}", "/a~1b/0/~0~1", "must be at most 1");
	sg_schema_free(s);
}

/* A pointer that would overflow stops at the deepest parent that fits. */
static void
test_long_pointer_is_clipped_to_parent(void **state)
{
	(void)state;
	char key[301], inst[400];
	memset(key, 'k', 300);
	key[300] = '\0';
	snprintf(inst, sizeof(inst), "{\"a\": {\"%s\": [true]}}", key);
	struct sg_schema *s =
	    compile("{\"properties\": {\"a\": {"
	            "\"additionalProperties\": {\"items\": {\"type\": \"string\"}}}}}");
	expect_error(s, inst, "/a", "must be a string, not a boolean");
	sg_schema_free(s);
}

/* A jansson key may hold NUL, which no body can: refused, pointing at the object. */
static void
test_key_with_nul(void **state)
{
	(void)state;
	struct sg_schema *s = compile("{\"properties\": {\"a\": {\"type\": \"string\"}},"
	                              " \"additionalProperties\": false}");
	json_t *inst = json_object();
	json_object_setn_new(inst, "a\0b", 3, json_integer(1));
	assert_int_equal(run_json(s, inst, MAX_ERRS), 1);
	assert_string_equal(errs[0].pointer, ""); /* a NUL cannot be written into a pointer */
	assert_string_equal(errs[0].message, "has a key that contains \\u0000, which the gateway "
	                                     "does not accept; remove it");
	json_decref(inst);
	sg_schema_free(s);
}

static const char *multi_schema = "{\"required\": [\"id\", \"name\"], \"properties\": {"
                                  "\"age\": {\"type\": \"integer\", \"minimum\": 0},"
                                  "\"tags\": {\"items\": {\"maxLength\": 2}},"
                                  "\"kind\": {\"enum\": [\"a\"]}}}";
static const char *multi_instance = "{\"age\": -1, \"tags\": [\"ok\", \"long\"], \"kind\": \"b\"}";

static void
test_multiple_errors(void **state)
{
	(void)state;
	struct sg_schema *s = compile(multi_schema);
	assert_int_equal(run(s, multi_instance, MAX_ERRS), 5);
	static const char *const want[5][2] = {
	    {"/id", "is required"},
	    {"/name", "is required"},
	    {"/age", "must be at least 0"},
	    {"/tags/1", "must be at most 2 characters long"},
	    {"/kind", "must be one of: \"a\""},
	};
	for (int i = 0; i < 5; i++) {
		assert_string_equal(errs[i].pointer, want[i][0]);
		assert_string_equal(errs[i].message, want[i][1]);
	}
	sg_schema_free(s);
}

static void
test_max_errs_cap(void **state)
{
	(void)state;
	struct sg_schema *s = compile(multi_schema);
	assert_int_equal(run(s, multi_instance, 4), 4);
	assert_string_equal(errs[3].pointer, "/tags/1");
	assert_string_equal(errs[4].pointer, ""); /* untouched past the cap */
	assert_int_equal(run(s, multi_instance, 5), 5);
	assert_int_equal(run(s, multi_instance, 6), 5);
	assert_int_equal(run(s, multi_instance, 1), 1);
	assert_string_equal(errs[0].pointer, "/id");

	/* With no room for errors the answer is still "invalid". */
	struct sg_json_val inst = doc_of(multi_instance);
	size_t n = 99;
	assert_int_equal(sg_schema_validate(s, inst, NULL, 0, &n), -1);
	assert_int_equal(n, 0);
	assert_int_equal(sg_schema_validate(s, inst, errs, 0, NULL), -1);
	assert_int_equal(sg_schema_validate(s, doc_of("{\"id\": 1, \"name\": 2}"), NULL, 0, &n), 0);
	json_t *j = parse(multi_instance);
	assert_int_equal(sg_schema_validate_jansson(s, j, NULL, 0, &n), -1);
	assert_int_equal(n, 0);
	json_decref(j);
	sg_schema_free(s);
}

static void
test_compile_errors(void **state)
{
	(void)state;
	expect_compile_error("{\"properties\": {\"age\": {\"minimum\": \"3\"}}}",
	                     "/properties/age/minimum", "minimum must be a number");
	expect_compile_error("{\"properties\": {\"name\": {\"minLenght\": 3}}}",
	                     "/properties/name/minLenght",
	                     "unknown keyword \"minLenght\" (did you mean \"minLength\"?)");
	expect_compile_error(
	    "{\"additionalProperty\": false}", "/additionalProperty",
	    "unknown keyword \"additionalProperty\" (did you mean \"additionalProperties\"?)");
	expect_compile_error("{\"$schema\": \"x\"}", "/$schema", "unknown keyword \"$schema\"");
	expect_compile_error("{\"type\": \"strng\"}", "/type",
	                     "unknown type \"strng\" (did you mean \"string\"?)");
	expect_compile_error(
	    "{\"type\": [\"string\", \"float\"]}", "/type/1",
	    "unknown type \"float\"; use string, number, integer, boolean, object, array or null");
	expect_compile_error("{\"type\": []}", "/type",
	                     "type must be a type name or a non-empty list of them");
	expect_compile_error("{\"type\": [1]}", "/type/0", "type names must be strings");
	expect_compile_error("{\"properties\": []}", "/properties",
	                     "properties must be an object mapping names to schemas");
	expect_compile_error("{\"properties\": {\"a~/b\": 3}}", "/properties/a~0~1b",
	                     "a schema must be an object, true or false");
	expect_compile_error("\"string\"", "", "a schema must be an object, true or false");
	expect_compile_error("{\"required\": \"id\"}", "/required",
	                     "required must be a list of property names");
	expect_compile_error("{\"required\": [\"id\", 7]}", "/required/1",
	                     "required must list property names as strings");
	expect_compile_error("{\"additionalProperties\": {\"typ\": \"string\"}}",
	                     "/additionalProperties/typ",
	                     "unknown keyword \"typ\" (did you mean \"type\"?)");
	expect_compile_error("{\"enum\": []}", "/enum",
	                     "enum must be a non-empty list of the allowed values");
	expect_compile_error("{\"enum\": \"a\"}", "/enum",
	                     "enum must be a non-empty list of the allowed values");
	expect_compile_error("{\"minLength\": -1}", "/minLength",
	                     "minLength must be a whole number, 0 or more");
	expect_compile_error("{\"maxItems\": 1.5}", "/maxItems",
	                     "maxItems must be a whole number, 0 or more");
	expect_compile_error("{\"maxLength\": \"5\"}", "/maxLength",
	                     "maxLength must be a whole number, 0 or more");
	expect_compile_error("{\"exclusiveMinimum\": true}", "/exclusiveMinimum",
	                     "exclusiveMinimum must be a number");
	expect_compile_error("{\"pattern\": 5}", "/pattern", "pattern must be a string");
	expect_compile_error("{\"items\": [{}]}", "/items",
	                     "items must be one schema; lists of schemas are not supported");
	expect_compile_error("{\"items\": {\"format\": 1}}", "/items/format",
	                     "format must be a string");
	expect_compile_error("{\"pattern\": \"a\\u0000b\"}", "/pattern",
	                     "pattern must not contain NUL characters");
}

static void
test_compile_bad_regex(void **state)
{
	(void)state;
	struct sg_schema_error err = {{0}, {0}};
	json_t *j = parse("{\"properties\": {\"code\": {\"pattern\": \"([a-z]\"}}}");
	assert_null(sg_schema_compile(j, &err));
	assert_string_equal(err.pointer, "/properties/code/pattern");
	/* Vectorscan's reason follows; its wording belongs to the library. */
	const char *lead = "pattern is not supported: ";
	assert_true(strncmp(err.message, lead, strlen(lead)) == 0);
	assert_true(strlen(err.message) > strlen(lead));
	/* A NULL error slot is allowed. */
	assert_null(sg_schema_compile(j, NULL));
	json_decref(j);
}

static void
test_compile_accepts_integral_counts(void **state)
{
	(void)state;
	struct sg_schema *s = compile("{\"maxLength\": 2.0, \"minItems\": 0}");
	expect_valid(s, "\"ab\"");
	expect_error(s, "\"abc\"", "", "must be at most 2 characters long");
	sg_schema_free(s);
}

static json_t *
nest_arrays(int depth)
{
	json_t *v = json_array();
	for (int i = 1; i < depth; i++) {
		json_t *outer = json_array();
		json_array_append_new(outer, v);
		v = outer;
	}
	return v;
}

static void
test_json_depth(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int depth;
	} cases[] = {
	    {"1", 1},
	    {"[]", 1},
	    {"[1]", 1},
	    {"{}", 1},
	    {"[[1]]", 2},
	    {"{\"a\": {\"b\": []}}", 3},
	    {"[1, [2, [3]], {\"x\": [[[]]]}, 4]", 5},
	    {"{\"a\": 1, \"b\": [[]], \"c\": {}}", 3},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *j = parse(cases[i].text);
		assert_int_equal(sg_json_depth(j, 100), cases[i].depth);
		json_decref(j);
	}
	json_t *j = nest_arrays(10);
	assert_int_equal(sg_json_depth(j, 100), 10);
	assert_int_equal(sg_json_depth(j, 11), 10);
	assert_int_equal(sg_json_depth(j, 10), 10);
	assert_int_equal(sg_json_depth(j, 9), 9); /* stops counting at the cap */
	assert_int_equal(sg_json_depth(j, 1), 1);
	json_decref(j);
}

static void
test_instance_depth_cap(void **state)
{
	(void)state;
	struct sg_schema *s = compile("{}");
	json_t *ok = nest_arrays(SG_SCHEMA_MAX_DEPTH - 1);
	assert_int_equal(run_json(s, ok, MAX_ERRS), 0);
	json_decref(ok);
	ok = nest_arrays(SG_SCHEMA_MAX_DEPTH);
	assert_int_equal(run_json(s, ok, MAX_ERRS), 0);
	json_decref(ok);

	json_t *deep = nest_arrays(SG_SCHEMA_MAX_DEPTH + 1);
	assert_int_equal(run_json(s, deep, MAX_ERRS), 1);
	assert_string_equal(errs[0].pointer, "");
	assert_string_equal(errs[0].message, "is nested too deeply (more than 64 levels)");
	json_decref(deep);
	sg_schema_free(s);
}

/* Built in memory, so jansson's own parser cap (2048) never sees it. */
static void
test_very_deep_instance(void **state)
{
	(void)state;
	struct sg_schema *s = compile("{\"items\": {\"items\": {\"type\": \"string\"}}}");
	json_t *deep = json_object();
	for (int i = 1; i < 10000; i++) {
		json_t *outer = i % 2 ? json_array() : json_object();
		if (json_is_array(outer))
			json_array_append_new(outer, deep);
		else
			json_object_set_new(outer, "k", deep);
		deep = outer;
	}
	assert_int_equal(sg_json_depth(deep, 1000000), 10000);
	assert_int_equal(run_json(s, deep, MAX_ERRS), 1);
	assert_string_equal(errs[0].message, "is nested too deeply (more than 64 levels)");
	json_decref(deep);
	sg_schema_free(s);
}

/* levels nested "items" schemas; the innermost requires strings. */
static char *
nested_items_schema(int levels)
{
	size_t cap = (size_t)levels * 12 + 32;
	char *text = malloc(cap);
	assert_non_null(text);
	size_t len = 0;
	for (int i = 1; i < levels; i++)
		len += (size_t)snprintf(text + len, cap - len, "{\"items\": ");
	len += (size_t)snprintf(text + len, cap - len, "{\"type\": \"string\"}");
	for (int i = 1; i < levels; i++)
		text[len++] = '}';
	text[len] = '\0';
	return text;
}

static void
test_schema_depth_cap(void **state)
{
	(void)state;
	char *text = nested_items_schema(SG_SCHEMA_MAX_DEPTH - 1);
	struct sg_schema *s = compile(text);
	sg_schema_free(s);
	free(text);

	text = nested_items_schema(SG_SCHEMA_MAX_DEPTH);
	s = compile(text);
	json_t *inst = nest_arrays(SG_SCHEMA_MAX_DEPTH - 1);
	assert_int_equal(run_json(s, inst, MAX_ERRS), 0); /* innermost array is empty */
	json_t *leaf = inst;
	while (json_array_size(leaf) > 0)
		leaf = json_array_get(leaf, 0);
	json_array_append_new(leaf, json_integer(1));
	assert_int_equal(run_json(s, inst, MAX_ERRS), 1);
	assert_string_equal(errs[0].message, "must be a string, not a number");
	char where[256] = "";
	for (int i = 0; i < SG_SCHEMA_MAX_DEPTH - 1; i++)
		strcat(where, "/0");
	assert_string_equal(errs[0].pointer, where);
	json_decref(inst);
	sg_schema_free(s);
	free(text);

	/*
	 * 64 "/items" segments would need 384 bytes; the pointer keeps the 42
	 * whole segments that fit in 255.
	 */
	text = nested_items_schema(SG_SCHEMA_MAX_DEPTH + 1);
	char want[256] = "";
	for (int i = 0; i < 42; i++)
		strcat(want, "/items");
	expect_compile_error(text, want, "schemas are nested too deeply (more than 64 levels)");
	free(text);
}

/* enum and const values are printed into messages, so their depth is capped too. */
static void
test_value_depth_cap(void **state)
{
	(void)state;
	struct sg_schema_error err = {{0}, {0}};
	static const char *const keys[] = {"const", "enum"};
	for (int k = 0; k < 2; k++) {
		for (int depth = SG_SCHEMA_MAX_DEPTH - 1; depth <= SG_SCHEMA_MAX_DEPTH + 1;
		     depth++) {
			json_t *value = nest_arrays(depth);
			if (k == 1)
				value = json_pack("[o]", value);
			json_t *doc = json_pack("{so}", keys[k], value);
			struct sg_schema *s = sg_schema_compile(doc, &err);
			if (depth <= SG_SCHEMA_MAX_DEPTH) {
				assert_non_null(s);
				json_t *inst = nest_arrays(depth);
				assert_int_equal(run_json(s, inst, MAX_ERRS), 0);
				json_decref(inst);
			} else {
				assert_null(s);
				assert_string_equal(err.pointer, k ? "/enum" : "/const");
				assert_string_equal(err.message,
				                    k ? "enum value is nested too deeply "
				                        "(more than 64 levels)"
				                      : "const value is nested too deeply "
				                        "(more than 64 levels)");
			}
			sg_schema_free(s);
			json_decref(doc);
		}
	}
}

static void
test_schema_keeps_its_document(void **state)
{
	(void)state;
	json_t *doc = parse("{\"type\": \"string\"}");
	struct sg_schema *s = sg_schema_compile(doc, NULL);
	assert_non_null(s);
	assert_ptr_equal(sg_schema_json(s), doc);
	assert_int_equal(doc->refcount, 2);
	json_decref(doc);
	assert_string_equal(json_string_value(json_object_get(sg_schema_json(s), "type")),
	                    "string");
	sg_schema_free(s);
	sg_schema_free(NULL);
}

/* A node of the compiled document validates on its own; a foreign node is reported. */
static void
test_validate_sub(void **state)
{
	(void)state;
	struct sg_schema *s =
	    compile("{\"type\": \"object\", \"properties\": {\"id\":"
	            " {\"type\": \"string\", \"pattern\": \"^ct_[a-z]+$\"},"
	            " \"tags\": {\"type\": \"array\", \"items\": {\"maxLength\": 2}}}}");
	const json_t *doc = sg_schema_json(s);
	const json_t *id = json_object_get(json_object_get(doc, "properties"), "id");
	const json_t *items =
	    json_object_get(json_object_get(json_object_get(doc, "properties"), "tags"), "items");
	json_t *foreign = json_pack("{s:s}", "type", "string");
	assert_int_equal(sg_schema_validate_sub(s, id, doc_of("\"ct_abc\"")), 0);
	assert_int_equal(sg_schema_validate_sub(s, id, doc_of("\"xx_abc\"")), -1);
	assert_int_equal(sg_schema_validate_sub(s, items, doc_of("\"abc\"")), -1);
	/* the root wants an object */
	assert_int_equal(sg_schema_validate_sub(s, doc, doc_of("\"ct_abc\"")), -1);
	assert_int_equal(sg_schema_validate_sub(s, foreign, doc_of("\"ct_abc\"")), 1);

	json_t *good = json_string("ct_abc"), *bad = json_string("xx_abc");
	assert_int_equal(sg_schema_validate_sub_jansson(s, id, good), 0);
	assert_int_equal(sg_schema_validate_sub_jansson(s, id, bad), -1);
	assert_int_equal(sg_schema_validate_sub_jansson(s, foreign, good), 1);
	json_decref(good);
	json_decref(bad);

	struct sg_schema_scalar v = {.type = SG_JSON_STRING, .s = "ct_abc", .len = 6};
	assert_int_equal(sg_schema_accepts_scalar(s, id, &v), 0);
	assert_int_equal(sg_schema_accepts_scalar(s, foreign, &v), 1);
	v.s = "ct_ABC";
	assert_int_equal(sg_schema_accepts_scalar(s, id, &v), -1);
	json_decref(foreign);
	sg_schema_free(s);
}

/* Patterns whose automata would take minutes to build are refused up front. */
static void
test_costly_patterns_are_refused(void **state)
{
	(void)state;
	expect_compile_error("{\"pattern\": \"^ev_+++$\"}", "/pattern",
	                     "pattern stacks quantifiers (like \"++\" or \"*{2}\"); use one");
	expect_compile_error("{\"pattern\": \"a*{2}\"}", "/pattern",
	                     "pattern stacks quantifiers (like \"++\" or \"*{2}\"); use one");
	expect_compile_error("{\"pattern\": \"a{1001}\"}", "/pattern",
	                     "pattern repeats more than 1000 times in all");
	expect_compile_error("{\"pattern\": \"a{2,30000}\"}", "/pattern",
	                     "pattern repeats more than 1000 times in all");
	/* Each count within bounds, but not their sum: minutes to compile otherwise. */
	expect_compile_error("{\"pattern\": \".{600}a.{600}b\"}", "/pattern",
	                     "pattern repeats more than 1000 times in all");
	char longp[600];
	memset(longp, 'a', sizeof(longp));
	memcpy(longp, "{\"pattern\": \"", 13);
	memcpy(longp + sizeof(longp) - 3, "\"}", 3);
	expect_compile_error(longp, "/pattern", "pattern is longer than 512 characters");
	/* Escaped and bracketed quantifier characters are literals; 1000 is allowed. */
	sg_schema_free(compile("{\"pattern\": \"^a\\\\++[+*]+x{1000}$\"}"));
	sg_schema_free(compile("{\"pattern\": \"^[]+]+$\"}"));
}

static void
expect_hint(const struct sg_dlp_hint *h, const char *pointer, const char *data_class)
{
	assert_string_equal(h->pointer, pointer);
	assert_string_equal(h->data_class, data_class);
}

/* x-data-class on any node; each listed with the instance pointer it covers. */
static void
test_data_class_hints(void **state)
{
	(void)state;
	struct sg_schema *s =
	    compile("{\"type\": \"object\", \"x-data-class\": \"doc.whole\","
	            " \"properties\": {"
	            "  \"email\": {\"type\": \"string\", \"x-data-class\": \"pii.email\"},"
	            "  \"contacts\": {\"type\": \"array\", \"items\": {\"type\": \"object\","
	            "    \"properties\": {\"phone\": {\"x-data-class\": \"pii.phone\"}}}},"
	            "  \"a/b~c\": {\"x-data-class\": \"acme.odd_name2\"},"
	            "  \"plain\": {\"type\": \"string\"}},"
	            " \"additionalProperties\": {\"x-data-class\": \"pii.other\"}}");
	struct sg_dlp_hint h[8];
	assert_int_equal(sg_schema_data_classes(s, h, 8), 5);
	expect_hint(&h[0], "", "doc.whole");
	expect_hint(&h[1], "/a~1b~0c", "acme.odd_name2");
	expect_hint(&h[2], "/contacts/*/phone", "pii.phone");
	expect_hint(&h[3], "/email", "pii.email");
	expect_hint(&h[4], "/*", "pii.other");
	/* Short of room: the count is still the whole, and only `cap` are written. */
	struct sg_dlp_hint two[3] = {{0}, {0}, {"untouched", "x.y"}};
	assert_int_equal(sg_schema_data_classes(s, two, 2), 5);
	expect_hint(&two[1], "/a~1b~0c", "acme.odd_name2");
	expect_hint(&two[2], "untouched", "x.y");
	/* A hint is no constraint: validation is unchanged. */
	json_t *ok = parse("{\"email\": 5, \"contacts\": [{\"phone\": true}]}");
	assert_int_equal(sg_schema_validate_jansson(s, ok, NULL, 0, NULL), -1);
	json_decref(ok);
	ok = parse("{\"email\": \"a@b.example\", \"contacts\": [{\"phone\": true}]}");
	assert_int_equal(sg_schema_validate_jansson(s, ok, NULL, 0, NULL), 0);
	json_decref(ok);
	sg_schema_free(s);

	s = compile("{\"type\": \"object\"}");
	assert_int_equal(sg_schema_data_classes(s, NULL, 0), 0);
	sg_schema_free(s);
}

/* A malformed class is refused where it stands, saying what a class looks like. */
static void
test_data_class_malformed(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "\"pii\"",
	    "\"PII.email\"",
	    "\"pii..email\"",
	    "\".pii\"",
	    "\"pii.\"",
	    "\"pii.e-mail\"",
	    "\"pii.1email\"",
	    "\"pii email\"",
	    "\"\"",
	    "\"pii.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[256], msg[256];
		snprintf(text, sizeof(text),
		         "{\"properties\": {\"email\": {\"x-data-class\": %s}}}", bad[i]);
		json_t *v = parse(bad[i]);
		snprintf(msg, sizeof(msg),
		         "x-data-class \"%s\" is not a data class name: write lowercase words "
		         "joined by dots, such as \"pii.email\" or \"financial.card\" (at most 64 "
		         "characters)",
		         json_string_value(v));
		json_decref(v);
		expect_compile_error(text, "/properties/email/x-data-class", msg);
	}
	expect_compile_error("{\"items\": {\"x-data-class\": [\"pii.email\"]}}",
	                     "/items/x-data-class",
	                     "x-data-class must be a string naming a data class, such as "
	                     "\"pii.email\"");
	/* The longest name that fits: 64 bytes. */
	sg_schema_free(
	    compile("{\"x-data-class\": "
	            "\"pii.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_type_each),
	    cmocka_unit_test(test_type_list),
	    cmocka_unit_test(test_integer_vs_number),
	    cmocka_unit_test(test_required_and_properties),
	    cmocka_unit_test(test_additional_properties),
	    cmocka_unit_test(test_boolean_schemas),
	    cmocka_unit_test(test_enum),
	    cmocka_unit_test(test_enum_number_types),
	    cmocka_unit_test(test_accepts_scalar),
	    cmocka_unit_test(test_pattern_syntax),
	    cmocka_unit_test(test_patterns_across_threads),
	    cmocka_unit_test(test_enum_message_is_clipped),
	    cmocka_unit_test(test_const),
	    cmocka_unit_test(test_string_lengths),
	    cmocka_unit_test(test_numeric_bounds),
	    cmocka_unit_test(test_pattern),
	    cmocka_unit_test(test_items),
	    cmocka_unit_test(test_unknown_format_and_annotations_ignored),
	    cmocka_unit_test(test_format_date_time),
	    cmocka_unit_test(test_format_date),
	    cmocka_unit_test(test_format_email),
	    cmocka_unit_test(test_format_email_lengths),
	    cmocka_unit_test(test_format_uri),
	    cmocka_unit_test(test_format_uuid),
	    cmocka_unit_test(test_format_with_other_keywords),
	    cmocka_unit_test(test_nested_pointers_and_escaping),
	    cmocka_unit_test(test_long_pointer_is_clipped_to_parent),
	    cmocka_unit_test(test_key_with_nul),
	    cmocka_unit_test(test_multiple_errors),
	    cmocka_unit_test(test_max_errs_cap),
	    cmocka_unit_test(test_compile_errors),
	    cmocka_unit_test(test_compile_bad_regex),
	    cmocka_unit_test(test_compile_accepts_integral_counts),
	    cmocka_unit_test(test_json_depth),
	    cmocka_unit_test(test_instance_depth_cap),
	    cmocka_unit_test(test_very_deep_instance),
	    cmocka_unit_test(test_schema_depth_cap),
	    cmocka_unit_test(test_value_depth_cap),
	    cmocka_unit_test(test_schema_keeps_its_document),
	    cmocka_unit_test(test_costly_patterns_are_refused),
	    cmocka_unit_test(test_data_class_hints),
	    cmocka_unit_test(test_data_class_malformed),
	    cmocka_unit_test(test_validate_sub),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
