/* sg_retry: what is retried, the backoff's bounds, the budget's share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "upstream/sg_retry.h"

#define S 1000000000ull
#define MS 1000000ull

static void
test_only_failures_that_are_safe_to_repeat_are_retryable(void **state)
{
	(void)state;
	assert_true(sg_retry_retryable(SG_FETCH_CONNECT, 0));
	assert_true(sg_retry_retryable(SG_FETCH_RESOLVE, 0));
	assert_true(sg_retry_retryable(SG_FETCH_OK, 429));
	assert_true(sg_retry_retryable(SG_FETCH_OK, 502));
	assert_true(sg_retry_retryable(SG_FETCH_OK, 503));
	assert_true(sg_retry_retryable(SG_FETCH_OK, 504));
	assert_false(sg_retry_retryable(SG_FETCH_OK, 200));
	assert_false(sg_retry_retryable(SG_FETCH_OK, 500));
	assert_false(sg_retry_retryable(SG_FETCH_OK, 400));
	assert_false(sg_retry_retryable(SG_FETCH_TIMEOUT, 0));
	assert_false(sg_retry_retryable(SG_FETCH_REFUSED, 0));
	assert_false(sg_retry_retryable(SG_FETCH_TLS, 0));
	assert_false(sg_retry_retryable(SG_FETCH_TOO_LARGE, 0));
}

static void
test_backoff_is_full_jitter_under_a_doubling_cap(void **state)
{
	(void)state;
	/* The largest draw reaches the ceiling; the ceiling doubles and stops at the cap. */
	assert_int_equal(sg_retry_backoff_ns(1, UINT64_MAX - (UINT64_MAX % (50 * MS + 1)) - 1),
	                 50 * MS);
	assert_int_equal(sg_retry_backoff_ns(1, 0), 0);
	uint64_t max2 = 0, max9 = 0;
	for (uint64_t i = 0; i < 100000; i++) {
		uint64_t r = i * 0x9e3779b97f4a7c15ull;
		uint64_t a = sg_retry_backoff_ns(2, r), b = sg_retry_backoff_ns(9, r);
		assert_true(a <= 100 * MS);
		assert_true(b <= 1000 * MS);
		max2 = a > max2 ? a : max2;
		max9 = b > max9 ? b : max9;
	}
	/* Spread over the whole range, not bunched at the bottom. */
	assert_true(max2 > 90 * MS);
	assert_true(max9 > 900 * MS);
}

static void
test_the_budget_allows_a_share_of_attempts_plus_a_floor(void **state)
{
	(void)state;
	struct sg_retry_budget b;
	sg_retry_budget_init(&b);
	uint64_t t = 100 * S;
	/* A quiet upstream still gets the floor. */
	for (int i = 0; i < SG_RETRY_BUDGET_MIN; i++)
		assert_true(sg_retry_budget_withdraw(&b, t));
	assert_false(sg_retry_budget_withdraw(&b, t));
	/* 100 first attempts buy 20 more retries. */
	for (int i = 0; i < 100; i++)
		sg_retry_budget_deposit(&b, t);
	int granted = 0;
	for (int i = 0; i < 50; i++)
		granted += sg_retry_budget_withdraw(&b, t);
	assert_int_equal(granted, 20);
	/* A window later, all of it is forgotten. */
	t += SG_RETRY_WINDOW_S * S;
	granted = 0;
	for (int i = 0; i < 50; i++)
		granted += sg_retry_budget_withdraw(&b, t);
	assert_int_equal(granted, SG_RETRY_BUDGET_MIN);
	sg_retry_budget_destroy(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_only_failures_that_are_safe_to_repeat_are_retryable),
	    cmocka_unit_test(test_backoff_is_full_jitter_under_a_doubling_cap),
	    cmocka_unit_test(test_the_budget_allows_a_share_of_attempts_plus_a_floor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
