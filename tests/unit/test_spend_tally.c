/* The writer's spending tally: sums per caller and day, grows, and stops at its bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "store/sg_spend_tally.h"

static struct sg_decision
call(const char *user, int day, double cost)
{
	struct sg_decision d = {0};
	d.ts_us = 1700000000000000LL + day * 86400000000LL;
	snprintf(d.decision, sizeof(d.decision), "allowed");
	snprintf(d.tenant, sizeof(d.tenant), "acme");
	snprintf(d.user, sizeof(d.user), "%s", user);
	snprintf(d.mode, sizeof(d.mode), "live");
	d.cost = cost;
	return d;
}

static int64_t
micros_of(const struct sg_spend_tally *t, const char *user, int64_t day)
{
	size_t n;
	const struct sg_spend_row *rows = sg_spend_tally_rows(t, &n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(rows[i].user, user) == 0 && rows[i].day == day)
			return rows[i].micros;
	return -1;
}

static void
test_sums_per_caller_and_day_across_growth(void **state)
{
	(void)state;
	struct sg_spend_tally *t = sg_spend_tally_new(100000);
	char user[32];
	for (int round = 0; round < 3; round++)
		for (int u = 0; u < 1000; u++) { /* past several doublings */
			snprintf(user, sizeof(user), "u%d", u);
			struct sg_decision d = call(user, u % 2, 0.0015);
			assert_int_equal(sg_spend_tally_add(t, &d), 0);
		}
	size_t n;
	sg_spend_tally_rows(t, &n);
	assert_int_equal(n, 1000);
	assert_int_equal(micros_of(t, "u7", 19675 + 1), 4500);
	assert_int_equal(micros_of(t, "u8", 19675), 4500);
	assert_int_equal(micros_of(t, "u8", 19675 + 1), -1);
	/* Refused, free and nameless calls spend nothing. */
	struct sg_decision free_call = call("u1", 0, 0), nobody = call("", 0, 1);
	struct sg_decision refused = call("u1", 0, 1);
	snprintf(refused.decision, sizeof(refused.decision), "throttled");
	assert_int_equal(sg_spend_tally_add(t, &free_call), 0);
	assert_int_equal(sg_spend_tally_add(t, &nobody), 0);
	assert_int_equal(sg_spend_tally_add(t, &refused), 0);
	sg_spend_tally_rows(t, &n);
	assert_int_equal(n, 1000);
	sg_spend_tally_clear(t);
	sg_spend_tally_rows(t, &n);
	assert_int_equal(n, 0);
	assert_int_equal(micros_of(t, "u7", 19676), -1);
	sg_spend_tally_free(t);
}

static void
test_full_tally_refuses_new_callers_only(void **state)
{
	(void)state;
	struct sg_spend_tally *t = sg_spend_tally_new(64);
	char user[32];
	for (int u = 0; u < 64; u++) {
		snprintf(user, sizeof(user), "u%d", u);
		struct sg_decision d = call(user, 0, 1);
		assert_int_equal(sg_spend_tally_add(t, &d), 0);
	}
	struct sg_decision known = call("u3", 0, 1), stranger = call("u64", 0, 1);
	struct sg_decision next_day = call("u3", 1, 1);
	assert_int_equal(sg_spend_tally_add(t, &known), 0);
	assert_int_equal(micros_of(t, "u3", 19675), 2000000);
	assert_int_equal(sg_spend_tally_add(t, &stranger), -1);
	assert_int_equal(sg_spend_tally_add(t, &next_day), -1);
	sg_spend_tally_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sums_per_caller_and_day_across_growth),
	    cmocka_unit_test(test_full_tally_refuses_new_callers_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
