/* The one naming rule: what it takes, what it refuses, and what it tells people. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/sg_name.h"

static void
test_accepts_the_rule(void **state)
{
	(void)state;
	const char *good[] = {"acme",       "a",          "0",  "9lives", "t1",
	                      "power-user", "snake_case", "a-", "a_",     "x0-_y"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char why[200];
		assert_true(sg_name_valid(good[i]));
		assert_string_equal(sg_name_why(good[i], why, sizeof(why)), "");
	}
}

static void
test_refuses_the_rest(void **state)
{
	(void)state;
	const char *bad[] = {"",      "acme.com", "../x", "x/y", "Acme",     "ACME",
	                     "-a",    "_a",       "a b",  "a\n", "ann@acme", "\xc3\xa9t\xc3\xa9",
	                     "tab\t", "a:b"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (sg_name_valid(bad[i]))
			fail_msg("\"%s\" was taken", bad[i]);
	assert_false(sg_name_valid(NULL));
}

static void
test_length_at_the_limit(void **state)
{
	(void)state;
	char s[SG_NAME_MAX + 2];
	for (size_t n = SG_NAME_MAX - 1; n <= SG_NAME_MAX + 1; n++) {
		memset(s, 'a', n);
		s[n] = '\0';
		assert_int_equal(sg_name_valid(s), n <= SG_NAME_MAX);
	}
	assert_int_equal(SG_NAME_MAX, 63); /* the store's char[64] columns */
}

static void
test_says_what_is_wrong(void **state)
{
	(void)state;
	char why[200], long_name[SG_NAME_MAX + 2];
	assert_non_null(strstr(sg_name_why("acme.com", why, sizeof(why)),
	                       "'.' at position 5 is not allowed; use 1 to 63 lowercase"));
	assert_non_null(strstr(sg_name_why("../x", why, sizeof(why)), "'.' at position 1"));
	assert_non_null(
	    strstr(sg_name_why("Acme", why, sizeof(why)), "uppercase 'A' at position 1"));
	assert_non_null(strstr(sg_name_why("-a", why, sizeof(why)), "'-' may not start a name"));
	assert_non_null(strstr(sg_name_why("", why, sizeof(why)), "it is empty"));
	assert_non_null(strstr(sg_name_why("a\nb", why, sizeof(why)), "byte 0x0a at position 2"));
	memset(long_name, 'a', SG_NAME_MAX + 1);
	long_name[SG_NAME_MAX + 1] = '\0';
	assert_non_null(
	    strstr(sg_name_why(long_name, why, sizeof(why)), "it is 64 characters long"));
	/* A short buffer is cut, never overrun. */
	char tiny[8];
	assert_int_equal(strlen(sg_name_why("acme.com", tiny, sizeof(tiny))), 7);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accepts_the_rule),
	    cmocka_unit_test(test_refuses_the_rest),
	    cmocka_unit_test(test_length_at_the_limit),
	    cmocka_unit_test(test_says_what_is_wrong),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
