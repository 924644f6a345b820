/* W3C traceparent: accept valid headers, replace invalid ones, never fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "obs/sg_trace.h"

#define VALID "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static void
test_valid_header_keeps_trace_id(void **state)
{
	(void)state;
	struct sg_trace t;
	char out[64];
	sg_trace_begin(&t, VALID);
	assert_string_equal(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_string_equal(t.parent_id, "00f067aa0ba902b7");
	assert_string_equal(t.flags, "01");
	assert_int_equal(strlen(t.span_id), 16);
	assert_string_not_equal(t.span_id, t.parent_id);
	sg_trace_format(&t, out, sizeof(out));
	assert_int_equal(strlen(out), 55);
	assert_memory_equal(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36);
}

static void
test_invalid_headers_start_new_trace(void **state)
{
	(void)state;
	const char *bad[] = {
		NULL, "", "garbage",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", /* zero trace */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", /* zero parent */
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* forbidden version */
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", /* upper case */
		VALID "-extra",                                          /* v00 must end */
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sg_trace t;
		assert_false(sg_trace_parse(bad[i], &t));
		sg_trace_begin(&t, bad[i]);
		assert_int_equal(strlen(t.trace_id), 32);
		assert_string_not_equal(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
		assert_string_equal(t.parent_id, "");
	}
}

static void
test_new_traces_differ(void **state)
{
	(void)state;
	struct sg_trace a, b;
	sg_trace_begin(&a, NULL);
	sg_trace_begin(&b, NULL);
	assert_string_not_equal(a.trace_id, b.trace_id);
	assert_string_not_equal(a.span_id, b.span_id);
}

static void
test_future_version_may_extend(void **state)
{
	(void)state;
	struct sg_trace t;
	assert_true(sg_trace_parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz", &t));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_header_keeps_trace_id),
		cmocka_unit_test(test_invalid_headers_start_new_trace),
		cmocka_unit_test(test_new_traces_differ),
		cmocka_unit_test(test_future_version_may_extend),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
