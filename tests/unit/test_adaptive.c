/*
 * test_adaptive: the Gradient2-style controller fed synthetic round trips:
 * it climbs while the upstream is quick and busy, falls when it slows, and
 * climbs back when it recovers; it does not climb while mostly idle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "throttle/sg_adaptive.h"

#define MS 1000000ull

/*
 * `windows` windows of calls taking `rtt`, with about `busy` calls in flight:
 * each sample is one held call finishing and, limit permitting, another
 * taking its place.
 */
static void
feed(struct sg_adaptive *a, int windows, uint64_t rtt, uint32_t busy)
{
	uint32_t held = 0;
	while (held < busy && sg_adaptive_acquire(a) == 0)
		held++;
	for (int s = 0; s < windows * SG_ADAPTIVE_WINDOW; s++) {
		if (held == 0 && sg_adaptive_acquire(a) == 0)
			held++;
		sg_adaptive_release(a, true, rtt);
		held--;
		while (held < busy && sg_adaptive_acquire(a) == 0)
			held++;
	}
	while (held-- > 0)
		sg_adaptive_release(a, false, 0);
}

static void
test_falls_when_slow_and_recovers(void **state)
{
	(void)state;
	struct sg_adaptive a;
	sg_adaptive_init(&a, "t", &(struct sg_adaptive_config){20, 2, 100});
	feed(&a, 30, 20 * MS, 15);
	uint32_t quick = a.limit_now;
	assert_true(quick > 20);
	/* The long average lags, so each window takes about a tenth off. */
	feed(&a, 20, 200 * MS, 15);
	uint32_t slow = a.limit_now;
	assert_true(slow < quick / 2);
	assert_true(slow >= 2);
	feed(&a, 60, 20 * MS, 40);
	assert_true(a.limit_now > slow * 2);
	assert_true(a.limit_now <= 100);
}

static void
test_idle_upstream_does_not_raise_the_limit(void **state)
{
	(void)state;
	struct sg_adaptive a;
	sg_adaptive_init(&a, "t", &(struct sg_adaptive_config){20, 2, 100});
	feed(&a, 50, 20 * MS, 0); /* one call at a time: far below half the limit */
	assert_int_equal(a.limit_now, 20);
}

static void
test_acquire_honours_the_limit(void **state)
{
	(void)state;
	struct sg_adaptive a;
	sg_adaptive_init(&a, "t", &(struct sg_adaptive_config){3, 1, 10});
	for (int i = 0; i < 3; i++)
		assert_int_equal(sg_adaptive_acquire(&a), 0);
	assert_int_equal(sg_adaptive_acquire(&a), -1); /* N+1 */
	assert_int_equal(a.refused, 1);
	sg_adaptive_release(&a, false, 0);
	assert_int_equal(sg_adaptive_acquire(&a), 0);
}

static void
test_registry_keeps_what_it_learned_across_reloads(void **state)
{
	(void)state;
	struct sg_adaptive_config cfg = {20, 2, 100};
	struct sg_adaptive *a = sg_adaptive_for("crm-test", &cfg);
	assert_non_null(a);
	feed(a, 10, 20 * MS, 15);
	feed(a, 10, 400 * MS, 15);
	uint32_t learned = a->limit_now;
	assert_true(learned < 20);
	struct sg_adaptive_config narrower = {10, 12, 50};
	/* Finding it again for a definition being parsed changes nothing... */
	assert_ptr_equal(sg_adaptive_for("crm-test", &narrower), a);
	assert_int_equal(a->limit_now, learned);
	assert_int_equal(a->cfg.max, 100);
	/* ...until that definition is published. */
	sg_adaptive_configure(a, &narrower);
	assert_int_equal(a->limit_now, learned < 12 ? 12 : learned); /* clamped to the new min */
	assert_int_equal(a->cfg.max, 50);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_falls_when_slow_and_recovers),
	    cmocka_unit_test(test_idle_upstream_does_not_raise_the_limit),
	    cmocka_unit_test(test_acquire_honours_the_limit),
	    cmocka_unit_test(test_registry_keeps_what_it_learned_across_reloads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
