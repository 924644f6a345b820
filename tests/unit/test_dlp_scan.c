/*
 * sg_dlp_scan: the database, the walk that names each value by its RFC
 * 6901 pointer, and the attribution of every match to one value.  Custom
 * rules with patterns no built-in rule shares keep these tests about the
 * engine, not about what the built-in table happens to hold.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dlp/sg_dlp_scan.h"
#include "json/sg_json.h"

#define DEPTH 64

static const struct sg_dlp_rule_def zq_rule = {
    .id = "zq_id", .data_class = "pii.zq", .pattern = "zq[0-9]{3,}", .confidence = 70};

static struct sg_dlp_db *
compile(const struct sg_dlp_rule_def *rules, size_t n)
{
	char err[512];
	struct sg_dlp_db *db = sg_dlp_db_compile(rules, n, err, sizeof(err));
	if (db == NULL)
		fail_msg("compile: %s", err);
	return db;
}

static struct sg_json_val
parse(const char *text)
{
	struct sg_json_doc doc;
	struct sg_json_error err;
	if (sg_json_parse(text, strlen(text), DEPTH, &doc, &err) != SG_JSON_OK)
		fail_msg("parse %s: %s", text, err.message);
	return doc.root;
}

static void
scan(const struct sg_dlp_db *db, const char *json, const struct sg_dlp_hint *hints, size_t n_hints,
     struct sg_dlp_result *res)
{
	assert_int_equal(
	    sg_dlp_scan_json(sg_dlp_scanner_thread(), db, parse(json), hints, n_hints, res), 0);
}

/* The index of the value at `ptr`, failing the test when there is none. */
static uint32_t
value_of(const struct sg_dlp_result *r, const char *ptr)
{
	for (uint32_t i = 0; i < r->n_values; i++)
		if (strcmp(sg_dlp_pointer(r, i), ptr) == 0)
			return i;
	fail_msg("no value at \"%s\"", ptr);
	return 0;
}

static size_t
count_rule(const struct sg_dlp_result *r, const char *rule)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n_hits; i++)
		n += strcmp(r->hits[i].rule, rule) == 0;
	return n;
}

/* The k-th hit (from 0) of `rule`, failing the test when there is none. */
static const struct sg_dlp_hit *
nth_hit(const struct sg_dlp_result *r, const char *rule, size_t k)
{
	for (size_t i = 0; i < r->n_hits; i++)
		if (strcmp(r->hits[i].rule, rule) == 0 && k-- == 0)
			return &r->hits[i];
	fail_msg("too few hits of %s", rule);
	return NULL;
}

/* The one hit of `rule`, failing the test unless there is exactly one. */
static const struct sg_dlp_hit *
only_hit(const struct sg_dlp_result *r, const char *rule)
{
	const struct sg_dlp_hit *found = NULL;
	assert_int_equal(count_rule(r, rule), 1);
	for (size_t i = 0; i < r->n_hits; i++)
		if (strcmp(r->hits[i].rule, rule) == 0)
			found = &r->hits[i];
	return found;
}

static void
test_pointers_name_nested_and_escaped_values(void **state)
{
	struct sg_dlp_db *db = compile(&zq_rule, 1);
	struct sg_dlp_result r;
	(void)state;
	scan(db,
	     "{\"a\":{\"b/"
	     "c\":\"x\",\"t~y\":[\"p\",\"q\",{\"z\":1}]},\"e\":null,\"f\":true,\"\":\"g\","
	     "\"h\":[[\"i\"]]}",
	     NULL, 0, &r);
	/* Strings and numbers only, in document order. */
	const char *want[] = {"/a/b~1c", "/a/t~0y/0", "/a/t~0y/1", "/a/t~0y/2/z", "/", "/h/0/0"};
	const char *text[] = {"x", "p", "q", "1", "g", "i"};
	assert_int_equal(r.n_values, 6);
	for (uint32_t i = 0; i < 6; i++) {
		assert_string_equal(sg_dlp_pointer(&r, i), want[i]);
		assert_string_equal(r.values[i].text, text[i]);
		assert_int_equal(r.values[i].len, strlen(text[i]));
	}
	assert_true(r.values[3].is_number);
	assert_false(r.values[0].is_number);

	/* A scalar at the top is the root itself. */
	scan(db, "\"zq123\"", NULL, 0, &r);
	assert_int_equal(r.n_values, 1);
	assert_string_equal(sg_dlp_pointer(&r, 0), "");
	assert_int_equal(only_hit(&r, "zq_id")->value, 0);
	sg_dlp_db_free(db);
}

static void
test_numbers_are_scanned_as_their_text(void **state)
{
	static const struct sg_dlp_rule_def digits = {
	    .id = "seven_nines", .data_class = "pii.n", .pattern = "9999999", .confidence = 50};
	struct sg_dlp_db *db = compile(&digits, 1);
	struct sg_dlp_result r;
	(void)state;
	scan(db, "{\"n\":[1.5,-20,19999999,18446744073709551615,1e300]}", NULL, 0, &r);
	assert_int_equal(r.n_values, 5);
	assert_string_equal(r.values[0].text, "1.5");
	assert_string_equal(r.values[1].text, "-20");
	assert_string_equal(r.values[2].text, "19999999");
	assert_string_equal(r.values[3].text, "18446744073709551615");
	assert_string_equal(r.values[4].text, "1e+300");
	/* Amounts and other doubles read as a person would write them. */
	struct sg_dlp_result q;
	scan(db, "[19.99,0.05,-3.5,1e-4,100.0,0.1,2.675,123456.789,-0.0,0.30000000000000004]", NULL,
	     0, &q);
	const char *want[] = {"19.99", "0.05",  "-3.5",       "0.0001", "100",
	                      "0.1",   "2.675", "123456.789", "-0",     "0.30000000000000004"};
	assert_int_equal(q.n_values, 10);
	for (size_t i = 0; i < 10; i++)
		assert_string_equal(q.values[i].text, want[i]);
	scan(db, "{\"n\":[1.5,-20,19999999,18446744073709551615,1e300]}", NULL, 0, &r);
	const struct sg_dlp_hit *h = only_hit(&r, "seven_nines");
	assert_int_equal(h->value, 2);
	assert_int_equal(h->start, 1);
	assert_int_equal(h->end, 8);
	assert_true(r.values[h->value].is_number);
	sg_dlp_db_free(db);
}

static void
test_hits_name_their_value_and_span(void **state)
{
	struct sg_dlp_db *db = compile(&zq_rule, 1);
	struct sg_dlp_result r;
	(void)state;
	scan(db, "{\"a\":\"nothing\",\"b\":[\"x\",\"id zq12345 and zq777\"],\"c\":\"zq0001\"}",
	     NULL, 0, &r);
	assert_int_equal(count_rule(&r, "zq_id"), 3);
	uint32_t b1 = value_of(&r, "/b/1"), c = value_of(&r, "/c");
	/* Document order, then by start. */
	const struct sg_dlp_hit *h[3] = {nth_hit(&r, "zq_id", 0), nth_hit(&r, "zq_id", 1),
	                                 nth_hit(&r, "zq_id", 2)};
	assert_int_equal(h[0]->value, b1);
	assert_int_equal(h[0]->start, 3);
	assert_int_equal(h[0]->end, 10);
	assert_int_equal(h[1]->value, b1);
	assert_int_equal(h[1]->start, 15);
	assert_int_equal(h[1]->end, 20);
	assert_int_equal(h[2]->value, c);
	assert_int_equal(h[2]->start, 0);
	assert_int_equal(h[2]->end, 6);
	assert_string_equal(h[0]->data_class, "pii.zq");
	assert_int_equal(h[0]->confidence, 70);
	assert_false(r.truncated);
	sg_dlp_db_free(db);
}

/* Every end a pattern reports inside one finding is one hit, not several. */
static void
test_overlapping_matches_of_a_rule_are_one_hit(void **state)
{
	static const struct sg_dlp_rule_def run = {
	    .id = "q_run", .data_class = "pii.q", .pattern = "q[qx]*q", .confidence = 50};
	struct sg_dlp_db *db = compile(&run, 1);
	struct sg_dlp_result r;
	(void)state;
	scan(db, "[\"aqqxqqqb qq\"]", NULL, 0, &r);
	assert_int_equal(count_rule(&r, "q_run"), 2);
	assert_int_equal(nth_hit(&r, "q_run", 0)->start, 1);
	assert_int_equal(nth_hit(&r, "q_run", 0)->end, 7);
	assert_int_equal(nth_hit(&r, "q_run", 1)->start, 9);
	assert_int_equal(nth_hit(&r, "q_run", 1)->end, 11);
	sg_dlp_db_free(db);
}

/*
 * The values are joined with a NUL in one buffer: a pattern that would
 * match across it (the rule allows any byte between b and c) must not.
 */
static void
test_no_match_spans_two_values(void **state)
{
	static const struct sg_dlp_rule_def any = {
	    .id = "b_c", .data_class = "pii.bc", .pattern = "b[^x]c", .confidence = 50};
	struct sg_dlp_db *db = compile(&any, 1);
	struct sg_dlp_result r;
	(void)state;
	scan(db, "[\"ab\",\"cd\",\"zzb-c\"]", NULL, 0, &r);
	const struct sg_dlp_hit *h = only_hit(&r, "b_c");
	assert_int_equal(h->value, 2);
	assert_int_equal(h->start, 2);
	assert_int_equal(h->end, 5);

	scan(db, "{\"k\":\"ab\",\"l\":\"cb\",\"m\":{\"n\":\"c\"}}", NULL, 0, &r);
	assert_int_equal(count_rule(&r, "b_c"), 0);
	sg_dlp_db_free(db);
}

static void
test_hints_flag_values_by_pointer_with_star(void **state)
{
	struct sg_dlp_db *db = compile(&zq_rule, 1);
	struct sg_dlp_result r;
	const struct sg_dlp_hint hints[] = {
	    {"/contacts/*/email", "pii.email"},
	    {"/contacts/*/email", "pii.email"}, /* said twice: still one finding */
	    {"/id", "pii.acme"},
	    {"/contacts/*", "pii.contact"}, /* one segment: not the members below */
	    {"/a~1b", "pii.slash"},
	};
	(void)state;
	scan(db,
	     "{\"contacts\":[{\"email\":\"not-an-email\"},{\"email\":42,\"name\":\"x\"},{\"email\":"
	     "\"\"}],\"id\":\"7\","
	     "\"other\":{\"email\":\"zz\"},\"a/b\":\"s\"}",
	     hints, sizeof(hints) / sizeof(hints[0]), &r);
	/* An empty value holds nothing: no hint hit with an empty span. */
	assert_int_equal(count_rule(&r, "x-data-class"), 4);
	uint32_t want[] = {value_of(&r, "/contacts/0/email"), value_of(&r, "/contacts/1/email"),
	                   value_of(&r, "/id"), value_of(&r, "/a~1b")};
	const char *cls[] = {"pii.email", "pii.email", "pii.acme", "pii.slash"};
	for (size_t i = 0; i < 4; i++) {
		const struct sg_dlp_hit *h = nth_hit(&r, "x-data-class", i);
		assert_int_equal(h->value, want[i]);
		assert_string_equal(h->data_class, cls[i]);
		assert_int_equal(h->start, 0);
		assert_int_equal(h->end, r.values[want[i]].len);
		assert_int_equal(h->confidence, 100);
	}
	sg_dlp_db_free(db);
}

/* A rule with a field hint finds only under a member whose name holds one of its words. */
static void
test_field_hint_limits_a_rule_to_named_fields(void **state)
{
	static const struct sg_dlp_rule_def dob = {.id = "zz_dob",
	                                           .data_class = "pii.dob",
	                                           .pattern = "[0-9]{4}-[0-9]{2}-[0-9]{2}",
	                                           .confidence = 80,
	                                           .field_hint = "birth|dob"};
	struct sg_dlp_db *db = compile(&dob, 1);
	struct sg_dlp_result r;
	(void)state;
	scan(db,
	     "{\"created\":\"2024-01-02\",\"person\":{\"DOB\":\"1990-05-17\",\"birthDates\":"
	     "[\"1980-01-01\"],\"note\":\"born 1970-01-01\"}}",
	     NULL, 0, &r);
	assert_int_equal(count_rule(&r, "zz_dob"), 2);
	assert_int_equal(nth_hit(&r, "zz_dob", 0)->value, value_of(&r, "/person/DOB"));
	assert_int_equal(nth_hit(&r, "zz_dob", 1)->value, value_of(&r, "/person/birthDates/0"));
	/* The built-in rule works the same way. */
	assert_int_equal(count_rule(&r, "dob"), 2);
	assert_int_equal(nth_hit(&r, "dob", 0)->value, value_of(&r, "/person/DOB"));

	/* Plain text has no field name: a hinted rule never fires there. */
	assert_int_equal(sg_dlp_scan_text(sg_dlp_scanner_thread(), db, "dob 1990-05-17", 14, &r),
	                 0);
	assert_int_equal(count_rule(&r, "zz_dob"), 0);
	sg_dlp_db_free(db);
}

static void
expect_error(const struct sg_dlp_rule_def *rules, size_t n, const char *part)
{
	char err[512];
	struct sg_dlp_db *db = sg_dlp_db_compile(rules, n, err, sizeof(err));
	if (db != NULL)
		fail_msg("compiled, but expected an error with \"%s\"", part);
	if (strstr(err, part) == NULL)
		fail_msg("the error \"%s\" does not say \"%s\"", err, part);
}

static void
test_custom_rule_errors_name_the_rule(void **state)
{
	struct sg_dlp_rule_def bad = {.id = "acme_id", .data_class = "pii.acme", .pattern = "(abc"};
	struct sg_dlp_rule_def two[2] = {bad, bad};
	(void)state;
	expect_error(&bad, 1, "rule \"acme_id\": pattern: ");
	bad.pattern = "a*";
	expect_error(&bad, 1, "rule \"acme_id\": pattern: it can match an empty string");
	bad.pattern = "a(?=b)";
	expect_error(&bad, 1, "rule \"acme_id\": pattern: ");
	bad.pattern = NULL;
	expect_error(&bad, 1, "rule \"acme_id\": no pattern");
	bad.pattern = "abc";
	bad.data_class = "";
	expect_error(&bad, 1, "rule \"acme_id\": no data class");
	bad.data_class = "pii.acme";
	bad.confidence = 101;
	expect_error(&bad, 1, "rule \"acme_id\": confidence must be 0 to 100");

	/* Two bad rules: both named in one pass. */
	two[0].pattern = "[z";
	two[1].id = "other_id";
	two[1].pattern = "x{2,1}";
	expect_error(two, 2, "rule \"acme_id\": pattern: ");
	expect_error(two, 2, "; rule \"other_id\": pattern: ");

	two[0].pattern = two[1].pattern = "abc";
	two[1].id = "acme_id";
	expect_error(two, 2,
	             "rule \"acme_id\": defined twice (an earlier custom rule has this id)");
	if (sg_dlp_builtin_count > 0) {
		two[0].id = sg_dlp_builtin_rules[0].id;
		expect_error(two, 1, "defined twice (a built-in rule has this id)");
	}
}

/* n values each holding one finding; hits kept and whether the rest was cut. */
static void
scan_many(const struct sg_dlp_db *db, size_t n, struct sg_dlp_result *r)
{
	size_t cap = 16 + n * 12, len = 0;
	char *json = malloc(cap);
	assert_non_null(json);
	len += (size_t)snprintf(json + len, cap - len, "[");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(json + len, cap - len, "%s\"zq%03zu\"", i ? "," : "", i);
	snprintf(json + len, cap - len, "]");
	scan(db, json, NULL, 0, r);
	free(json);
}

static void
test_hits_are_capped_in_document_order(void **state)
{
	struct sg_dlp_db *db = compile(&zq_rule, 1);
	struct sg_dlp_result r;
	(void)state;
	scan_many(db, SG_DLP_MAX_HITS - 1, &r);
	assert_int_equal(r.n_hits, SG_DLP_MAX_HITS - 1);
	assert_false(r.truncated);
	scan_many(db, SG_DLP_MAX_HITS, &r);
	assert_int_equal(r.n_hits, SG_DLP_MAX_HITS);
	assert_false(r.truncated);
	scan_many(db, SG_DLP_MAX_HITS + 1, &r);
	assert_int_equal(r.n_hits, SG_DLP_MAX_HITS);
	assert_true(r.truncated);
	/* Far more than the scanner holds before it sorts and cuts: still the first ones. */
	scan_many(db, 20 * SG_DLP_MAX_HITS, &r);
	assert_int_equal(r.n_hits, SG_DLP_MAX_HITS);
	assert_true(r.truncated);
	assert_int_equal(r.n_values, 20 * SG_DLP_MAX_HITS);
	for (uint32_t i = 0; i < SG_DLP_MAX_HITS; i++)
		assert_int_equal(r.hits[i].value, i);
	sg_dlp_db_free(db);
}

static void
test_text_scan_is_one_value_at_the_root(void **state)
{
	struct sg_dlp_db *db = compile(&zq_rule, 1);
	struct sg_dlp_result r;
	const char line[] = "log: zq123\0zq456";
	(void)state;
	assert_int_equal(sg_dlp_scan_text(sg_dlp_scanner_thread(), db, line, sizeof(line) - 1, &r),
	                 0);
	assert_int_equal(r.n_values, 1);
	assert_string_equal(sg_dlp_pointer(&r, 0), "");
	assert_int_equal(r.values[0].len, sizeof(line) - 1);
	assert_int_equal(count_rule(&r, "zq_id"), 2);
	assert_int_equal(nth_hit(&r, "zq_id", 1)->start, 11);
	assert_int_equal(sg_dlp_scan_text(sg_dlp_scanner_thread(), db, "", 0, &r), 0);
	assert_int_equal(r.n_hits, 0);
	sg_dlp_db_free(db);
}

/* One scanner, two databases of different sizes, in turn: each scan sees its own rules. */
static void
scan_two_dbs(void)
{
	static const struct sg_dlp_rule_def big[] = {
	    {.id = "r1", .data_class = "c.one", .pattern = "alpha[0-9]+", .confidence = 1},
	    {.id = "r2", .data_class = "c.two", .pattern = "(?i)beta.{0,40}gamma", .confidence = 1},
	    {.id = "r3", .data_class = "c.three", .pattern = "zq[0-9]{3,}", .confidence = 1},
	};
	struct sg_dlp_db *a = compile(&zq_rule, 1), *b = compile(big, 3);
	struct sg_dlp_scanner *sc = sg_dlp_scanner_thread();
	struct sg_dlp_result r;
	const char *doc = "[\"zq123 alpha9 BETA x gamma\"]";
	assert_non_null(sc);
	assert_ptr_equal(sg_dlp_scanner_thread(), sc);
	assert_int_equal(sg_dlp_db_rules(b), sg_dlp_builtin_count + 3);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(sg_dlp_scan_json(sc, a, parse(doc), NULL, 0, &r), 0);
		assert_int_equal(count_rule(&r, "zq_id"), 1);
		assert_int_equal(count_rule(&r, "r2"), 0);
		assert_int_equal(sg_dlp_scan_json(sc, b, parse(doc), NULL, 0, &r), 0);
		assert_int_equal(count_rule(&r, "zq_id"), 0);
		assert_int_equal(count_rule(&r, "r1") + count_rule(&r, "r2") + count_rule(&r, "r3"),
		                 3);
	}
	sg_dlp_db_free(a);
	sg_dlp_db_free(b);
}

static void *
other_thread(void *mine)
{
	scan_two_dbs();
	return sg_dlp_scanner_thread() != mine ? mine : NULL;
}

static void
test_thread_scanner_serves_two_databases(void **state)
{
	pthread_t t;
	void *ok;
	(void)state;
	scan_two_dbs();
	/* Another thread has its own scanner, freed when it exits (LSan would say otherwise). */
	assert_int_equal(pthread_create(&t, NULL, other_thread, sg_dlp_scanner_thread()), 0);
	assert_int_equal(pthread_join(t, &ok), 0);
	assert_non_null(ok);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pointers_name_nested_and_escaped_values),
	    cmocka_unit_test(test_numbers_are_scanned_as_their_text),
	    cmocka_unit_test(test_hits_name_their_value_and_span),
	    cmocka_unit_test(test_overlapping_matches_of_a_rule_are_one_hit),
	    cmocka_unit_test(test_no_match_spans_two_values),
	    cmocka_unit_test(test_hints_flag_values_by_pointer_with_star),
	    cmocka_unit_test(test_field_hint_limits_a_rule_to_named_fields),
	    cmocka_unit_test(test_custom_rule_errors_name_the_rule),
	    cmocka_unit_test(test_hits_are_capped_in_document_order),
	    cmocka_unit_test(test_text_scan_is_one_value_at_the_root),
	    cmocka_unit_test(test_thread_scanner_serves_two_databases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
