/* sg_fmt must print exactly what snprintf prints, and truncate the same way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sg_fmt.h"

static void
check_decimal(double v, unsigned places)
{
	char want[400], got[400];
	struct sg_fmt f;
	snprintf(want, sizeof(want), "%.*f", (int)places, v);
	sg_fmt_init(&f, got, sizeof(got));
	sg_fmt_decimal(&f, v, places);
	if (strcmp(want, got) != 0)
		fail_msg("%.17g with %u places: printf \"%s\", sg_fmt \"%s\"", v, places, want,
		         got);
}

static void
test_decimal_matches_printf(void **state)
{
	(void)state;
	const double fixed[] = {0,       0.002, 0.0020, 1,    1.5,       0.00005,      0.00015,
	                        0.12345, 2.5,   0.125,  1e-9, 999.99995, 1234567.0001, 3.9e15,
	                        4e15,    1e300, -0.002, -1,   NAN,       INFINITY};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		for (unsigned places = 0; places <= 10; places++)
			check_decimal(fixed[i], places);
	/* Random values, and values that sit on or near a half at 4 places. */
	srand(7);
	for (int i = 0; i < 200000; i++) {
		double v = (double)rand() / RAND_MAX * pow(10, rand() % 12 - 6);
		check_decimal(v, (unsigned)(rand() % 10));
		double half = (rand() % 1000000 + 0.5) / 1e4;
		check_decimal(half, 4);
		check_decimal(nextafter(half, 0), 4);
		check_decimal(nextafter(half, 1e9), 4);
	}
}

static void
test_u64_and_str(void **state)
{
	(void)state;
	const uint64_t vals[] = {0, 1, 9, 10, 99, 100, 4294967295u, 4294967296u, UINT64_MAX};
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		char want[64], got[64];
		struct sg_fmt f;
		snprintf(want, sizeof(want), "\"r\";q=%llu;w=1", (unsigned long long)vals[i]);
		sg_fmt_init(&f, got, sizeof(got));
		sg_fmt_str(&f, "\"r\";q=");
		sg_fmt_u64(&f, vals[i]);
		sg_fmt_str(&f, ";w=1");
		assert_string_equal(got, want);
		assert_false(sg_fmt_truncated(&f));
	}
}

static void
test_truncates_like_snprintf(void **state)
{
	(void)state;
	for (size_t size = 1; size <= 24; size++) {
		char want[32], got[32];
		struct sg_fmt f;
		int n = snprintf(want, size, "abc%llu-%.2f", 1234567ull, 3.14159);
		sg_fmt_init(&f, got, size);
		sg_fmt_str(&f, "abc");
		sg_fmt_u64(&f, 1234567);
		sg_fmt_str(&f, "-");
		sg_fmt_decimal(&f, 3.14159, 2);
		assert_string_equal(got, want);
		assert_int_equal(sg_fmt_truncated(&f), (size_t)n >= size);
	}
}

static void
test_utc_times_and_days(void **state)
{
	(void)state;
	char t[SG_UTC_LEN], d[SG_DAY_LEN];
	sg_fmt_utc(1798761599, t);
	assert_string_equal(t, "2026-12-31T23:59:59Z");
	sg_fmt_day(1798761599, d);
	assert_string_equal(d, "2026-12-31");
	sg_fmt_day(0, d);
	assert_string_equal(d, "1970-01-01");
	sg_fmt_day(INT64_MAX, d); /* no calendar day: nothing rather than garbage */
	assert_string_equal(d, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decimal_matches_printf),
	    cmocka_unit_test(test_u64_and_str),
	    cmocka_unit_test(test_truncates_like_snprintf),
	    cmocka_unit_test(test_utc_times_and_days),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
