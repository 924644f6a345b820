/*
 * sg_json: the request path's parser and writer.  JSONTestSuite-style cases
 * written for the gateway: what must be refused as malformed (and why),
 * what must parse, and that the writer emits what the parser reads back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/sg_slab.h"
#include "json/sg_json.h"

#define DEPTH 64

static enum sg_json_rc
parse(const char *text, struct sg_json_doc *doc, struct sg_json_error *err)
{
	return sg_json_parse(text, strlen(text), DEPTH, doc, err);
}

static void
assert_malformed(const char *text, const char *message_part)
{
	struct sg_json_doc doc;
	struct sg_json_error err;
	enum sg_json_rc rc = parse(text, &doc, &err);
	if (rc != SG_JSON_MALFORMED)
		fail_msg("accepted (%d): %s", (int)rc, text);
	if (message_part != NULL && strstr(err.message, message_part) == NULL)
		fail_msg("for %s the message is \"%s\", without \"%s\"", text, err.message,
		         message_part);
}

static void
test_refuses_what_is_not_json(void **state)
{
	(void)state;
	assert_malformed("{\"a\":1,}", "line 1, column 8");
	assert_malformed("[1,2", NULL);
	assert_malformed("{\"a\" 1}", "colon");
	assert_malformed("{'a':1}", NULL);
	assert_malformed("[01]", NULL);
	assert_malformed("[1.]", NULL);
	assert_malformed("[.5]", NULL);
	assert_malformed("[NaN]", NULL);
	assert_malformed("[Infinity]", NULL);
	assert_malformed("\"\\x41\"", NULL);
	assert_malformed("\"tab\there\"", NULL); /* raw control character in a string */
	assert_malformed("   ", "empty");
	assert_malformed("{\n\"a\":\n tru}", "line 3");
}

static void
test_refuses_trailing_bytes(void **state)
{
	(void)state;
	assert_malformed("{} {}", "more follows");
	assert_malformed("{}x", NULL);
	assert_malformed("[1]]", NULL);
	assert_malformed("1 2", NULL);
}

static void
test_refuses_bad_utf8_and_lone_surrogates(void **state)
{
	(void)state;
	assert_malformed("\"\xff\"", NULL);
	assert_malformed("\"\xc3\"", NULL);           /* truncated sequence */
	assert_malformed("\"\xed\xa0\x80\"", NULL);   /* an encoded surrogate */
	assert_malformed("\"\xc0\xaf\"", NULL);       /* overlong '/' */
	assert_malformed("\"\\ud800\"", NULL);        /* lone high surrogate */
	assert_malformed("\"\\udc00\"", NULL);        /* lone low surrogate */
	assert_malformed("\"\\ud800\\u0041\"", NULL); /* high surrogate then no low one */
	struct sg_json_doc doc;
	assert_int_equal(parse("\"\\ud83d\\ude00 \xc3\xa9\"", &doc, NULL), SG_JSON_OK);
	size_t n;
	const char *s = sg_json_string(doc.root, &n);
	assert_int_equal(n, 7);
	assert_memory_equal(s, "\xf0\x9f\x98\x80 \xc3\xa9", 7);
}

static void
test_refuses_duplicate_keys_with_a_pointer(void **state)
{
	(void)state;
	struct sg_json_doc doc;
	struct sg_json_error err;
	assert_int_equal(parse("{\"a\":{\"x/y\":[{\"k\":1,\"k\":2}]}}", &doc, &err),
	                 SG_JSON_MALFORMED);
	assert_string_equal(err.pointer, "/a/x~1y/0");
	assert_non_null(strstr(err.message, "\"k\" appears twice"));
	/* An escaped spelling of the same key is the same key. */
	assert_malformed("{\"ab\":1,\"a\\u0062\":2}", "appears twice");
	/* Many members take the sorted check. */
	assert_malformed("{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,\"i\":1,"
	                 "\"j\":1,\"b\":2}",
	                 "\"b\" appears twice");
	assert_int_equal(parse("{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,"
	                       "\"i\":1,\"j\":1,\"aa\":2}",
	                       &doc, NULL),
	                 SG_JSON_OK);
	assert_int_equal(sg_json_size(doc.root), 11);
}

static void
test_refuses_nul_escapes_and_raw_nul(void **state)
{
	(void)state;
	struct sg_json_doc doc;
	struct sg_json_error err;
	assert_int_equal(parse("{\"a\":[\"x\\u0000y\"]}", &doc, &err), SG_JSON_MALFORMED);
	assert_string_equal(err.pointer, "/a/0");
	assert_non_null(strstr(err.message, "\\u0000"));
	assert_malformed("{\"a\\u0000\":1}", "\\u0000");
	assert_int_equal(sg_json_parse("{\"a\":1}\0", 8, DEPTH, &doc, &err), SG_JSON_MALFORMED);
	assert_non_null(strstr(err.message, "byte 7 is a NUL"));
}

static void
nest(char *buf, int depth)
{
	for (int i = 0; i < depth; i++)
		buf[i] = '[';
	for (int i = 0; i < depth; i++)
		buf[depth + i] = ']';
	buf[2 * depth] = '\0';
}

static void
test_depth_cap_is_exact(void **state)
{
	(void)state;
	char buf[4 * DEPTH + 8];
	struct sg_json_doc doc;
	struct sg_json_error err;
	nest(buf, DEPTH);
	assert_int_equal(parse(buf, &doc, &err), SG_JSON_OK);
	nest(buf, DEPTH + 1);
	assert_int_equal(parse(buf, &doc, &err), SG_JSON_TOO_DEEP);
	assert_non_null(strstr(err.message, "more than 64 levels"));
	nest(buf, 2 * DEPTH);
	assert_int_equal(parse(buf, &doc, &err), SG_JSON_TOO_DEEP);
	/* A deep body that is also malformed is still only as deep as it got. */
	assert_int_equal(sg_json_parse("[[[]]]", 6, 2, &doc, &err), SG_JSON_TOO_DEEP);
	assert_int_equal(sg_json_parse("[[]]", 4, 2, &doc, &err), SG_JSON_OK);
}

static void
test_numbers(void **state)
{
	(void)state;
	struct sg_json_doc doc;
	assert_int_equal(parse("[-9223372036854775808, 18446744073709551615, 1.5e3, 2, 1.0]", &doc,
	                       NULL),
	                 SG_JSON_OK);
	struct sg_json_iter it;
	struct sg_json_val v;
	sg_json_iter_init(&it, doc.root);
	assert_true(sg_json_iter_next(&it, NULL, NULL, &v));
	assert_int_equal(sg_json_type(v), SG_JSON_INT);
	assert_true(sg_json_int(v) == INT64_MIN);
	assert_true(sg_json_iter_next(&it, NULL, NULL, &v));
	assert_int_equal(sg_json_type(v), SG_JSON_UINT);
	assert_true(sg_json_uint(v) == UINT64_MAX);
	assert_true(sg_json_iter_next(&it, NULL, NULL, &v));
	assert_int_equal(sg_json_type(v), SG_JSON_DOUBLE);
	assert_true(sg_json_double(v) == 1500.0);
	assert_true(sg_json_iter_next(&it, NULL, NULL, &v));
	assert_int_equal(sg_json_type(v), SG_JSON_INT);
	assert_true(sg_json_iter_next(&it, NULL, NULL, &v));
	assert_int_equal(sg_json_type(v), SG_JSON_DOUBLE); /* 1.0 is no integer, as in jansson */
	assert_false(sg_json_iter_next(&it, NULL, NULL, &v));
	assert_malformed("[18446744073709551616]", "out of range");
	assert_malformed("[-9223372036854775809]", "out of range");
	assert_malformed("[1e400]", NULL);
}

static void
test_objects_iterate_in_order_and_look_up(void **state)
{
	(void)state;
	struct sg_json_doc doc;
	assert_int_equal(parse("{\"b\":true,\"a\":null,\"c\":\"x\"}", &doc, NULL), SG_JSON_OK);
	assert_int_equal(sg_json_type(doc.root), SG_JSON_OBJECT);
	struct sg_json_iter it;
	struct sg_json_val v;
	const char *k;
	size_t kn;
	sg_json_iter_init(&it, doc.root);
	assert_true(sg_json_iter_next(&it, &k, &kn, &v));
	assert_int_equal(kn, 1);
	assert_memory_equal(k, "b", 1);
	assert_true(sg_json_bool(v));
	assert_true(sg_json_iter_next(&it, &k, &kn, &v));
	assert_int_equal(sg_json_type(v), SG_JSON_NULL);
	assert_true(sg_json_iter_next(&it, &k, &kn, &v));
	assert_false(sg_json_iter_next(&it, &k, &kn, &v));
	assert_true(sg_json_get(doc.root, "c", 1, &v));
	assert_int_equal(sg_json_type(v), SG_JSON_STRING);
	assert_false(sg_json_get(doc.root, "d", 1, &v));
	/* An empty container iterates nothing. */
	assert_int_equal(parse("[]", &doc, NULL), SG_JSON_OK);
	sg_json_iter_init(&it, doc.root);
	assert_false(sg_json_iter_next(&it, NULL, NULL, &v));
}

static void
test_a_document_dies_with_the_next_parse(void **state)
{
	(void)state;
	struct sg_json_doc first, second;
	assert_int_equal(parse("[1]", &first, NULL), SG_JSON_OK);
	assert_true(sg_json_doc_live(&first));
	assert_int_equal(parse("[2]", &second, NULL), SG_JSON_OK);
	assert_false(sg_json_doc_live(&first));
	assert_true(sg_json_doc_live(&second));
}

static void
test_writer_round_trips(void **state)
{
	(void)state;
	struct sg_jbuf out = {0};
	struct sg_jw w;
	sg_jw_begin(&w, &out);
	sg_jw_object(&w);
	sg_jw_keyz(&w, "s");
	sg_jw_stringz(&w, "quote\" back\\ nl\n \xc3\xa9 \x01");
	sg_jw_keyz(&w, "n");
	sg_jw_array(&w);
	sg_jw_int(&w, -3);
	sg_jw_uint(&w, UINT64_MAX);
	sg_jw_double(&w, 0.25);
	sg_jw_bool(&w, false);
	sg_jw_null(&w);
	sg_jw_raw(&w, "{\"pre\":1}", 9);
	sg_jw_array_end(&w);
	sg_jw_object_end(&w);
	assert_int_equal(sg_jw_end(&w), 0);
	assert_string_equal(out.data, "{\"s\":\"quote\\\" back\\\\ nl\\n \xc3\xa9 \\u0001\",\"n\":[-3,"
	                              "18446744073709551615,0.25,false,null,{\"pre\":1}]}");
	/* What the parser reads, the writer copies exactly. */
	struct sg_json_doc doc;
	assert_int_equal(sg_json_parse(out.data, out.len, DEPTH, &doc, NULL), SG_JSON_OK);
	struct sg_jbuf copy = {0};
	sg_jw_begin(&w, &copy);
	sg_jw_value(&w, doc.root);
	assert_int_equal(sg_jw_end(&w), 0);
	assert_string_equal(copy.data, out.data);
	sg_jbuf_release(&copy);
	sg_jbuf_release(&out);
}

static void
test_writer_fails_on_what_json_cannot_say(void **state)
{
	(void)state;
	struct sg_jbuf out = {0};
	struct sg_jw w;
	sg_jw_begin(&w, &out);
	sg_jw_array(&w);
	assert_false(sg_jw_failed(&w));
	sg_jw_string(&w, "\xff", 1);
	assert_true(sg_jw_failed(&w));
	sg_jw_array_end(&w);
	assert_int_equal(sg_jw_end(&w), -1);
	out.len = 0;
	sg_jw_begin(&w, &out);
	sg_jw_double(&w, 0.0 / 0.0);
	assert_int_equal(sg_jw_end(&w), -1);
	out.len = 0;
	sg_jw_begin(&w, &out);
	sg_jw_array(&w); /* never closed */
	assert_int_equal(sg_jw_end(&w), -1);
	sg_jbuf_release(&out);
}

static void
test_writer_grows_past_a_block_and_nests_deeply(void **state)
{
	(void)state;
	struct sg_jbuf out = {0};
	struct sg_jw w;
	sg_jw_begin(&w, &out);
	for (int i = 0; i < 200; i++)
		sg_jw_array(&w);
	for (int i = 0; i < 5000; i++)
		sg_jw_stringz(&w, "0123456789");
	for (int i = 0; i < 200; i++)
		sg_jw_array_end(&w);
	assert_int_equal(sg_jw_end(&w), 0);
	assert_true(out.len > 5000 * 12);
	assert_int_equal(out.data[out.len], '\0');
	sg_jbuf_release(&out);
}

static void
test_released_buffers_are_reused(void **state)
{
	(void)state;
	struct sg_jbuf out = {0};
	struct sg_jw w;
	sg_jw_begin(&w, &out);
	sg_jw_stringz(&w, "warm");
	assert_int_equal(sg_jw_end(&w), 0);
	char *first = out.data;
	sg_jbuf_release(&out);
	size_t pooled = sg_slab_pooled();
	assert_true(pooled >= 1);
	sg_jw_begin(&w, &out);
	sg_jw_stringz(&w, "again");
	assert_int_equal(sg_jw_end(&w), 0);
	assert_ptr_equal(out.data, first);
	assert_int_equal(sg_slab_pooled(), pooled - 1);
	sg_jbuf_release(&out);
}

/* Runs of plain ASCII are copied whole; what is around them is still escaped and checked. */
static void
test_writer_escapes_around_plain_runs(void **state)
{
	(void)state;
	static const char text[] = "a plain run longer than sixteen bytes/ then \"quoted\" and "
	                           "back\\slash, caf\xc3\xa9, \x01 and \x7f at the end\t";
	struct sg_jbuf out = {0};
	struct sg_jw w;
	sg_jw_begin(&w, &out);
	sg_jw_stringz(&w, text);
	assert_int_equal(sg_jw_end(&w), 0);
	assert_string_equal(out.data, "\"a plain run longer than sixteen bytes/ then \\\"quoted\\\" "
	                              "and back\\\\slash, caf\xc3\xa9, \\u0001 and \x7f at the "
	                              "end\\t\"");
	struct sg_json_doc doc;
	assert_int_equal(sg_json_parse(out.data, out.len, DEPTH, &doc, NULL), SG_JSON_OK);
	size_t n;
	assert_string_equal(sg_json_string(doc.root, &n), text);
	/* Bad UTF-8 after a plain run still fails the writer. */
	out.len = 0;
	sg_jw_begin(&w, &out);
	sg_jw_stringz(&w, "plain plain plain plain \xc3(");
	assert_true(sg_jw_failed(&w));
	assert_int_equal(sg_jw_end(&w), -1);
	sg_jbuf_release(&out);
}

/* A slot's value comes from another writer, and can be cut away and written again. */
static void
test_writer_slot(void **state)
{
	(void)state;
	struct sg_jbuf out = {0};
	struct sg_jw w, part;
	sg_jw_begin(&w, &out);
	sg_jw_object(&w);
	sg_jw_keyz(&w, "a");
	sg_jw_int(&w, 1);
	sg_jw_keyz(&w, "b");
	sg_jw_slot(&w);
	size_t mark = out.len;
	sg_jw_begin(&part, &out);
	sg_jw_array(&part);
	sg_jw_stringz(&part, "abandoned");
	assert_false(sg_jw_failed(&part));
	assert_int_equal(sg_jw_end(&part), -1); /* never closed */
	out.len = mark;
	sg_jw_begin(&part, &out);
	sg_jw_array(&part);
	sg_jw_int(&part, 2);
	sg_jw_array_end(&part);
	assert_int_equal(sg_jw_end(&part), 0);
	sg_jw_keyz(&w, "c");
	sg_jw_slot(&w);
	sg_jw_begin(&part, &out);
	sg_jw_null(&part);
	assert_int_equal(sg_jw_end(&part), 0);
	sg_jw_object_end(&w);
	assert_int_equal(sg_jw_end(&w), 0);
	assert_string_equal(out.data, "{\"a\":1,\"b\":[2],\"c\":null}");
	/* In an array, too. */
	out.len = 0;
	sg_jw_begin(&w, &out);
	sg_jw_array(&w);
	sg_jw_slot(&w);
	sg_jw_begin(&part, &out);
	sg_jw_stringz(&part, "x");
	assert_int_equal(sg_jw_end(&part), 0);
	sg_jw_slot(&w);
	sg_jw_begin(&part, &out);
	sg_jw_bool(&part, true);
	assert_int_equal(sg_jw_end(&part), 0);
	sg_jw_array_end(&w);
	assert_int_equal(sg_jw_end(&w), 0);
	assert_string_equal(out.data, "[\"x\",true]");
	sg_jbuf_release(&out);
}

/* A parser grown for a deep cap keeps a shallower caller's cap exact. */
static void
test_depth_cap_after_a_deeper_one(void **state)
{
	(void)state;
	char buf[2 * 200 + 1];
	struct sg_json_doc doc;
	nest(buf, 150);
	assert_int_equal(sg_json_parse(buf, strlen(buf), 200, &doc, NULL), SG_JSON_OK);
	nest(buf, 4);
	assert_int_equal(sg_json_parse(buf, strlen(buf), 3, &doc, NULL), SG_JSON_TOO_DEEP);
	nest(buf, 3);
	assert_int_equal(sg_json_parse(buf, strlen(buf), 3, &doc, NULL), SG_JSON_OK);
	nest(buf, 33);
	assert_int_equal(sg_json_parse(buf, strlen(buf), 32, &doc, NULL), SG_JSON_TOO_DEEP);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refuses_what_is_not_json),
		cmocka_unit_test(test_refuses_trailing_bytes),
		cmocka_unit_test(test_refuses_bad_utf8_and_lone_surrogates),
		cmocka_unit_test(test_refuses_duplicate_keys_with_a_pointer),
		cmocka_unit_test(test_refuses_nul_escapes_and_raw_nul),
		cmocka_unit_test(test_depth_cap_is_exact),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_objects_iterate_in_order_and_look_up),
		cmocka_unit_test(test_a_document_dies_with_the_next_parse),
		cmocka_unit_test(test_writer_round_trips),
		cmocka_unit_test(test_writer_fails_on_what_json_cannot_say),
		cmocka_unit_test(test_writer_grows_past_a_block_and_nests_deeply),
		cmocka_unit_test(test_released_buffers_are_reused),
		cmocka_unit_test(test_writer_escapes_around_plain_runs),
		cmocka_unit_test(test_writer_slot),
		cmocka_unit_test(test_depth_cap_after_a_deeper_one),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
