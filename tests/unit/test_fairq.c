/*
 * test_fairq: deficit round robin between tenants, deadlines, readiness,
 * bounds and weighted costs, with a scripted "limiter" as try_admit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "throttle/sg_fairq.h"

#define MAX_ITEMS 64

struct script {
	int tokens;        /* admissions left in this run; -1: unlimited */
	uint64_t retry_ns; /* ready_at = now + this on a refusal */
	uint64_t admitted[MAX_ITEMS];
	size_t n_admitted;
	uint64_t expired[MAX_ITEMS];
	size_t n_expired;
	size_t tries;
};

static bool
try_admit(void *ud, struct sg_fairq_item *it, uint64_t now)
{
	struct script *s = ud;
	s->tries++;
	if (s->tokens == 0) {
		it->ready_at = now + s->retry_ns;
		return false;
	}
	if (s->tokens > 0)
		s->tokens--;
	s->admitted[s->n_admitted++] = it->tenant;
	return true;
}

static void
expire(void *ud, struct sg_fairq_item *it, uint64_t now)
{
	struct script *s = ud;
	(void)now;
	s->expired[s->n_expired++] = it->tenant;
}

static void
fill(struct sg_fairq *q, struct sg_fairq_item *items, size_t n, uint64_t tenant, uint32_t cost,
     uint64_t deadline)
{
	for (size_t i = 0; i < n; i++) {
		items[i] =
		    (struct sg_fairq_item){.tenant = tenant, .cost = cost, .deadline = deadline};
		assert_int_equal(sg_fairq_push(q, &items[i]), 0);
	}
}

static void
test_tenants_take_turns(void **state)
{
	(void)state;
	struct sg_fairq *q = sg_fairq_new(16, 1);
	struct sg_fairq_item heavy[10], light[2];
	struct script s = {.tokens = 4, .retry_ns = 100};
	fill(q, heavy, 10, 1, 1, 1000000);
	fill(q, light, 2, 2, 1, 1000000);
	assert_int_equal(sg_fairq_len(q), 12);
	assert_int_equal(sg_fairq_position(q, &light[1]), 2);
	uint64_t next = sg_fairq_run(q, 10, &(struct sg_fairq_ops){&s, try_admit, expire});
	/* Four tokens: the light tenant gets two of them though it asked for far less. */
	assert_int_equal(s.n_admitted, 4);
	assert_int_equal(s.admitted[0] + s.admitted[1], 3);
	assert_int_equal(s.admitted[2] + s.admitted[3], 3);
	assert_int_equal(sg_fairq_len(q), 8);
	assert_int_equal(next, 110); /* the refused head may fit again then */
	/* Nothing is tried before it is ready. */
	size_t tries = s.tries;
	s.tokens = -1;
	assert_int_equal(sg_fairq_run(q, 50, &(struct sg_fairq_ops){&s, try_admit, expire}), 110);
	assert_int_equal(s.tries, tries);
	assert_int_equal(sg_fairq_run(q, 110, &(struct sg_fairq_ops){&s, try_admit, expire}),
	                 UINT64_MAX);
	assert_int_equal(s.n_admitted, 12);
	assert_int_equal(sg_fairq_len(q), 0);
	sg_fairq_free(q);
}

static void
test_deadlines_expire_in_order(void **state)
{
	(void)state;
	struct sg_fairq *q = sg_fairq_new(16, 1);
	struct sg_fairq_item a[3], b[1];
	struct script s = {.tokens = 0, .retry_ns = 1000};
	fill(q, a, 3, 7, 1, 500);
	fill(q, b, 1, 8, 1, 5000);
	uint64_t next = sg_fairq_run(q, 10, &(struct sg_fairq_ops){&s, try_admit, expire});
	assert_int_equal(next, 500); /* a's deadline comes before anyone's readiness */
	next = sg_fairq_run(q, 500, &(struct sg_fairq_ops){&s, try_admit, expire});
	assert_int_equal(s.n_expired, 3);
	assert_int_equal(s.expired[2], 7);
	assert_int_equal(sg_fairq_len(q), 1);
	assert_int_equal(next, 1010);
	sg_fairq_free(q);
}

static void
test_depth_is_bounded_per_tenant(void **state)
{
	(void)state;
	struct sg_fairq *q = sg_fairq_new(2, 1);
	struct sg_fairq_item a[3] = {
	    {.tenant = 1, .cost = 1}, {.tenant = 1, .cost = 1}, {.tenant = 1, .cost = 1}};
	struct sg_fairq_item other = {.tenant = 2, .cost = 1};
	assert_int_equal(sg_fairq_push(q, &a[0]), 0);
	assert_int_equal(sg_fairq_push(q, &a[1]), 0);
	assert_int_equal(sg_fairq_push(q, &a[2]), -1); /* N+1 */
	assert_int_equal(sg_fairq_push(q, &other), 0); /* another tenant is unaffected */
	assert_int_equal(sg_fairq_position(q, &a[2]), 0);
	sg_fairq_free(q);
}

static void
test_costly_calls_earn_deficit(void **state)
{
	(void)state;
	struct sg_fairq *q = sg_fairq_new(16, 1);
	struct sg_fairq_item big[2], small[6];
	struct script s = {.tokens = -1};
	fill(q, big, 2, 1, 3, 1000000);
	fill(q, small, 6, 2, 1, 1000000);
	sg_fairq_run(q, 1, &(struct sg_fairq_ops){&s, try_admit, expire});
	assert_int_equal(s.n_admitted, 8);
	/* Units, not calls, are shared: by the first big call, small has had 3 units. */
	size_t small_before_big = 0;
	while (s.admitted[small_before_big] == 2)
		small_before_big++;
	assert_int_equal(small_before_big, 2);
	sg_fairq_free(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tenants_take_turns),
	    cmocka_unit_test(test_deadlines_expire_in_order),
	    cmocka_unit_test(test_depth_is_bounded_per_tenant),
	    cmocka_unit_test(test_costly_calls_earn_deficit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
