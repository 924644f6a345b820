/* Problem details: shape, stable codes, and that echoed text cannot break out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include <jansson.h>

#include "core/sg_problem.h"

/* The body as the client reads it. */
static json_t *
body_of(const struct sg_problem_def *def, const char *detail, const char *trace_id,
        const char *instance, const struct sg_jbuf *ext)
{
	struct sg_jbuf out = {0};
	json_t *b = NULL;
	if (sg_problem_write(&out, def, detail, trace_id, instance, ext) == 0)
		b = json_loadb(out.data, out.len, JSON_REJECT_DUPLICATES, NULL);
	sg_jbuf_release(&out);
	return b;
}

static void
test_every_code_is_complete(void **state)
{
	(void)state;
	for (int i = 0; i < SG_P_COUNT; i++) {
		const struct sg_problem_def *d = sg_problem_def(i);
		assert_non_null(d->code);
		assert_non_null(d->title);
		assert_non_null(d->type);
		assert_non_null(d->remediation);
		assert_true(d->status >= 400 && d->status <= 599);
		assert_true(strlen(d->remediation) > 20);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(d->code, sg_problem_def(j)->code);
	}
}

static void
test_body_members(void **state)
{
	(void)state;
	json_t *b = body_of(sg_problem_def(SG_P_KEY_EXPIRED), "key abc has expired",
	    "0af7651916cd43dd8448eb211c80319c", "/v1/x", NULL);
	assert_non_null(b);
	assert_string_equal(json_string_value(json_object_get(b, "code")), "key_expired");
	assert_int_equal(json_integer_value(json_object_get(b, "status")), 401);
	assert_string_equal(json_string_value(json_object_get(b, "detail")), "key abc has expired");
	assert_string_equal(json_string_value(json_object_get(b, "trace_id")),
	    "0af7651916cd43dd8448eb211c80319c");
	assert_string_equal(json_string_value(json_object_get(b, "instance")), "/v1/x");
	assert_non_null(json_string_value(json_object_get(b, "remediation")));
	assert_non_null(strstr(json_string_value(json_object_get(b, "type")), "key-expired"));
	json_decref(b);
}

static void
test_rate_limit_uses_iana_type(void **state)
{
	(void)state;
	const struct sg_problem_def *d = sg_problem_def(SG_P_RATE_LIMITED);
	assert_int_equal(d->status, 429);
	assert_string_equal(d->type, "https://iana.org/assignments/http-problem-types#quota-exceeded");
	assert_int_equal(sg_problem_def(SG_P_CAPACITY)->status, 503);
}

static void
test_control_characters_are_stripped(void **state)
{
	(void)state;
	json_t *b = body_of(sg_problem_def(SG_P_CONNECTOR_NOT_FOUND),
	    "no connector \"x\r\nSet-Cookie: a=b\"", NULL, NULL, NULL);
	const char *detail = json_string_value(json_object_get(b, "detail"));
	assert_null(strchr(detail, '\r'));
	assert_null(strchr(detail, '\n'));
	assert_non_null(strstr(detail, "Set-Cookie"));
	assert_null(json_object_get(b, "trace_id"));
	json_decref(b);
}

static void
test_invalid_utf8_is_replaced(void **state)
{
	(void)state;
	json_t *b = body_of(sg_problem_def(SG_P_CONNECTOR_NOT_FOUND), "bad \xff\xfe name",
	    NULL, NULL, NULL);
	assert_non_null(b);
	assert_string_equal(json_string_value(json_object_get(b, "detail")), "bad ?? name");
	json_decref(b);
}

static void
test_extensions_cannot_replace_members(void **state)
{
	(void)state;
	struct sg_jbuf ext = {0};
	struct sg_jw w;
	sg_jw_begin(&w, &ext);
	sg_jw_object(&w);
	sg_jw_keyz(&w, "code");
	sg_jw_stringz(&w, "forged");
	sg_jw_keyz(&w, "errors");
	sg_jw_array(&w);
	sg_jw_int(&w, 1);
	sg_jw_array_end(&w);
	sg_jw_object_end(&w);
	assert_int_equal(sg_jw_end(&w), 0);
	json_t *b = body_of(sg_problem_def(SG_P_INVALID_INPUT), NULL, NULL, NULL, &ext);
	sg_jbuf_release(&ext);
	assert_non_null(b); /* one object: no member twice */
	assert_string_equal(json_string_value(json_object_get(b, "code")), "invalid_input");
	assert_int_equal(json_array_size(json_object_get(b, "errors")), 1);
	/* Without a detail the title stands in, so the member is never empty. */
	assert_string_equal(json_string_value(json_object_get(b, "detail")),
	    sg_problem_def(SG_P_INVALID_INPUT)->title);
	json_decref(b);
}

static void
test_out_of_range_code_is_internal(void **state)
{
	(void)state;
	assert_string_equal(sg_problem_def(SG_P_COUNT)->code, "internal");
	assert_string_equal(sg_decision_name(SG_DEC_THROTTLED), "throttled");
	assert_string_equal(sg_decision_name(SG_DEC_COUNT), "error");
}

static void
test_sanitize_truncates(void **state)
{
	(void)state;
	char out[4];
	sg_problem_sanitize(out, sizeof(out), "abcdef");
	assert_string_equal(out, "abc");
	sg_problem_sanitize(out, sizeof(out), "\t");
	assert_string_equal(out, " ");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_code_is_complete),
		cmocka_unit_test(test_body_members),
		cmocka_unit_test(test_rate_limit_uses_iana_type),
		cmocka_unit_test(test_control_characters_are_stripped),
		cmocka_unit_test(test_invalid_utf8_is_replaced),
		cmocka_unit_test(test_extensions_cannot_replace_members),
		cmocka_unit_test(test_out_of_range_code_is_internal),
		cmocka_unit_test(test_sanitize_truncates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
