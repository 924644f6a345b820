/*
 * test_conn: the two judgements sg_conn makes without a socket: how many
 * connections the open-files limit allows, and whether what evhttp left
 * unread can only be a body begun.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "http/sg_conn.h"

static void
test_auto_max(void **state)
{
	(void)state;
	/* Debian's default soft limit: 1024 - (128 + 64 workers) = 832, three quarters of it. */
	assert_int_equal(sg_conn_auto_max(1024, 192), 624);
	assert_int_equal(sg_conn_auto_max(1048576, 192), 786288);
	/* Never below 16, even when the reserve takes everything; never above a million. */
	assert_int_equal(sg_conn_auto_max(100, 192), 16);
	assert_int_equal(sg_conn_auto_max(0, 0), 16);
	assert_int_equal(sg_conn_auto_max(UINT64_MAX, 192), 1000000);
	assert_int_equal(sg_conn_auto_max(4 * 1000 + 3 + 128, 128), 3002);
}

static void
test_body_begun(void **state)
{
	(void)state;
	/* Nothing left: a head paused at a line's end, or a body not begun. Neither is a body. */
	assert_false(sg_conn_body_begun(0, 0, false, 8192));
	/* Part of a request line or a header line. */
	assert_false(sg_conn_body_begun('P', 3, false, 8192));
	assert_false(sg_conn_body_begun('x', 10, false, 8192));
	assert_false(sg_conn_body_begun('7', 1, false, 8192));
	assert_false(sg_conn_body_begun('!', 1, false, 8192));
	assert_false(sg_conn_body_begun(' ', 4, false, 8192)); /* an obsolete fold */
	assert_false(sg_conn_body_begun('\t', 4, false, 8192));
	assert_false(sg_conn_body_begun('\r', 1, false, 8192)); /* the blank line's CR */
	/* JSON bodies start with bytes no head line starts with. */
	assert_true(sg_conn_body_begun('{', 1, false, 8192));
	assert_true(sg_conn_body_begun('[', 2, false, 8192));
	assert_true(sg_conn_body_begun('"', 2, false, 8192));
	assert_true(sg_conn_body_begun(0, 1, false, 8192));
	/* evhttp consumes every complete head line: a line feed left over is body. */
	assert_true(sg_conn_body_begun('a', 10, true, 8192));
	/* So is more than a head may hold. */
	assert_true(sg_conn_body_begun('a', 8193, false, 8192));
	assert_false(sg_conn_body_begun('a', 8192, false, 8192));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_auto_max),
	    cmocka_unit_test(test_body_begun),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
