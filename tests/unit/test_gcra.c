/* GCRA: exact admission counts, refill edges, retry_after, saturation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>

#include "throttle/sg_gcra.h"

#define SEC 1000000000ull
#define NOW (1000 * SEC) /* an ordinary monotonic reading, far from 0 */

static struct sg_gcra_result
take(const struct sg_gcra_limit *l, _Atomic uint64_t *cell, uint64_t now, uint32_t cost)
{
	return sg_gcra_take(l, cell, now, cost);
}

/* Takes cost-1 units at `now` until denied; returns how many were admitted. */
static unsigned
drain(const struct sg_gcra_limit *l, _Atomic uint64_t *cell, uint64_t now)
{
	unsigned n = 0;
	while (take(l, cell, now, 1).allowed)
		n++;
	return n;
}

static void
test_fresh_bucket_admits_exactly_burst(void **state)
{
	(void)state;
	const uint32_t bursts[] = {1, 2, 5, 100};
	for (size_t i = 0; i < sizeof(bursts) / sizeof(bursts[0]); i++) {
		struct sg_gcra_limit l = {.emission_ns = 100, .burst = bursts[i]};
		_Atomic uint64_t cell = 0;
		struct sg_gcra_result r;
		for (uint32_t n = 1; n < l.burst; n++) {
			r = take(&l, &cell, NOW, 1);
			assert_true(r.allowed);
			assert_int_equal(r.remaining, l.burst - n);
		}
		r = take(&l, &cell, NOW, 1); /* the burst-th */
		assert_true(r.allowed);
		assert_int_equal(r.remaining, 0);
		assert_int_equal(r.limit, l.burst);
		r = take(&l, &cell, NOW, 1); /* burst + 1 */
		assert_false(r.allowed);
		assert_int_equal(r.remaining, 0);
		assert_int_equal(r.retry_after_ns, 100);
	}
}

static void
test_refills_one_unit_per_emission_interval(void **state)
{
	(void)state;
	const uint64_t t = 250;
	struct sg_gcra_limit l = {.emission_ns = t, .burst = 3};
	_Atomic uint64_t cell = 0;
	assert_int_equal(drain(&l, &cell, NOW), 3);
	assert_false(take(&l, &cell, NOW + t - 1, 1).allowed);
	assert_true(take(&l, &cell, NOW + t, 1).allowed);
	assert_false(take(&l, &cell, NOW + t, 1).allowed);
	/* Two intervals later exactly two more fit. */
	assert_int_equal(drain(&l, &cell, NOW + 3 * t), 2);
	/* A long idle refills to the burst and no further. */
	assert_int_equal(drain(&l, &cell, NOW + 1000 * t), 3);
}

static void
test_waiting_retry_after_is_exactly_enough(void **state)
{
	(void)state;
	const uint32_t costs[] = {1, 2, 3, 7};
	for (size_t i = 0; i < sizeof(costs) / sizeof(costs[0]); i++) {
		struct sg_gcra_limit l = {.emission_ns = 1000, .burst = 7};
		_Atomic uint64_t cell = 0;
		/* Spend 6 of 7 with an odd offset so nothing lines up by luck. */
		for (int n = 0; n < 6; n++)
			assert_true(take(&l, &cell, NOW + (uint64_t)n * 137, 1).allowed);
		uint64_t now = NOW + 700;
		struct sg_gcra_result r = take(&l, &cell, now, costs[i]);
		assert_int_equal(r.allowed, costs[i] == 1);
		if (r.allowed)
			continue; /* still fits: nothing to wait for */
		assert_true(r.retry_after_ns > 0);
		uint64_t before = atomic_load(&cell);
		assert_false(take(&l, &cell, now + r.retry_after_ns - 1, costs[i]).allowed);
		assert_int_equal(atomic_load(&cell), before);
		assert_true(take(&l, &cell, now + r.retry_after_ns, costs[i]).allowed);
	}
	/* Cost 1 after 6 of 7 was admitted; the others needed a wait. */
	struct sg_gcra_limit l = {.emission_ns = 1000, .burst = 7};
	_Atomic uint64_t cell = 0;
	for (int n = 0; n < 6; n++)
		assert_true(take(&l, &cell, NOW, 1).allowed);
	struct sg_gcra_result r = take(&l, &cell, NOW, 3);
	assert_false(r.allowed);
	assert_int_equal(r.retry_after_ns, 2000);
	assert_int_equal(r.remaining, 1);
}

static void
test_weighted_cost(void **state)
{
	(void)state;
	struct sg_gcra_limit l = {.emission_ns = 100, .burst = 10};
	_Atomic uint64_t cell = 0;
	for (int n = 1; n <= 3; n++) {
		struct sg_gcra_result r = take(&l, &cell, NOW, 3);
		assert_true(r.allowed);
		assert_int_equal(r.remaining, 10 - 3 * n);
		assert_int_equal(r.reset_ns, 300 * n);
	}
	struct sg_gcra_result r = take(&l, &cell, NOW, 3);
	assert_false(r.allowed);
	assert_int_equal(r.remaining, 1); /* one unit is still there for a cheaper call */
	assert_int_equal(r.retry_after_ns, 200);
	assert_int_equal(r.reset_ns, 900);
	r = take(&l, &cell, NOW, 1);
	assert_true(r.allowed);
	assert_int_equal(r.remaining, 0);
	assert_int_equal(r.reset_ns, 1000);
}

static void
test_cost_at_and_over_burst(void **state)
{
	(void)state;
	struct sg_gcra_limit l = {.emission_ns = 100, .burst = 5};
	_Atomic uint64_t cell = 0;
	struct sg_gcra_result r = take(&l, &cell, NOW, 6); /* burst + 1: never */
	assert_false(r.allowed);
	assert_true(r.retry_after_ns == UINT64_MAX);
	assert_int_equal(r.remaining, 5);
	assert_int_equal(atomic_load(&cell), 0);
	r = take(&l, &cell, NOW, 5); /* burst: fits a fresh bucket */
	assert_true(r.allowed);
	assert_int_equal(r.remaining, 0);
	assert_int_equal(r.reset_ns, 500);
	r = take(&l, &cell, NOW + 500, 4); /* burst - 1 after a full refill */
	assert_true(r.allowed);
	assert_int_equal(r.remaining, 1);
	/* Over the burst stays impossible however long the client waits. */
	r = take(&l, &cell, NOW + 1000 * SEC, 6);
	assert_false(r.allowed);
	assert_true(r.retry_after_ns == UINT64_MAX);
	r = take(&l, &cell, NOW, UINT32_MAX);
	assert_false(r.allowed);
	assert_true(r.retry_after_ns == UINT64_MAX);
}

static void
test_clock_going_backwards_refunds_nothing(void **state)
{
	(void)state;
	struct sg_gcra_limit l = {.emission_ns = 1000, .burst = 4};
	_Atomic uint64_t cell = 0;
	assert_int_equal(drain(&l, &cell, NOW), 4);
	uint64_t tat = atomic_load(&cell);
	assert_int_equal(tat, NOW + 4000);

	struct sg_gcra_result r = take(&l, &cell, NOW - 5000, 1);
	assert_false(r.allowed);
	assert_int_equal(r.retry_after_ns, 1000 + 5000); /* the lost 5 us count too */
	r = take(&l, &cell, 0, 1);
	assert_false(r.allowed);
	assert_int_equal(r.retry_after_ns, NOW + 1000);
	assert_int_equal(atomic_load(&cell), tat);
	assert_false(take(&l, &cell, NOW, 1).allowed);

	/* An admission at an earlier now moves the TAT forward from the stored one. */
	assert_true(take(&l, &cell, NOW + 1000, 1).allowed);
	_Atomic uint64_t c2 = NOW + 1000;
	r = take(&l, &c2, NOW - 10, 1);
	assert_true(r.allowed);
	assert_int_equal(atomic_load(&c2), NOW + 2000);
	assert_int_equal(r.reset_ns, 2010);
}

static void
test_saturates_near_the_top_of_the_range(void **state)
{
	(void)state;
	struct sg_gcra_limit l = {.emission_ns = 10, .burst = 1};
	/* The last TAT that fits is UINT64_MAX: N-1, N, N+1 around it. */
	_Atomic uint64_t cell = 0;
	assert_true(take(&l, &cell, UINT64_MAX - 11, 1).allowed);
	cell = 0;
	struct sg_gcra_result r = take(&l, &cell, UINT64_MAX - 10, 1);
	assert_true(r.allowed);
	assert_true(atomic_load(&cell) == UINT64_MAX);
	r = take(&l, &cell, UINT64_MAX - 10, 1);
	assert_false(r.allowed);
	assert_int_equal(r.retry_after_ns, 10);
	cell = 0;
	r = take(&l, &cell, UINT64_MAX - 9, 1);
	assert_false(r.allowed);
	assert_true(r.retry_after_ns == UINT64_MAX);
	assert_int_equal(atomic_load(&cell), 0);

	/* A stored TAT at the top never wraps into a fresh bucket. */
	cell = UINT64_MAX;
	for (uint64_t now = 0; now < 5; now++)
		assert_false(take(&l, &cell, now, 1).allowed);
	assert_true(atomic_load(&cell) == UINT64_MAX);

	/* Huge T: tau + T overflows; at most `burst` are ever admitted. */
	struct sg_gcra_limit h = {.emission_ns = UINT64_MAX / 2, .burst = 3};
	cell = 0;
	unsigned admitted = 0;
	uint64_t last = 0;
	for (int n = 0; n < 10; n++) {
		r = take(&h, &cell, 1, 1);
		admitted += r.allowed;
		assert_true(atomic_load(&cell) >= last);
		last = atomic_load(&cell);
	}
	assert_int_equal(admitted, 2); /* the third TAT would pass UINT64_MAX */
	assert_true(r.retry_after_ns == UINT64_MAX);

	/* (burst - cost) * T overflows: saturating means "room", which is true. */
	struct sg_gcra_limit w = {.emission_ns = 1ull << 62, .burst = 10};
	uint64_t next;
	r = sg_gcra_decide(&w, 1 + (1ull << 63), 1, 1, &next);
	assert_true(r.allowed);
	assert_true(next == 1 + 3 * (1ull << 62));
	assert_int_equal(r.remaining, 7);

	/* Everything at its maximum: no crash, sane answers. */
	struct sg_gcra_limit m = {.emission_ns = UINT64_MAX, .burst = UINT32_MAX};
	r = sg_gcra_decide(&m, 0, 0, 0, &next);
	assert_true(r.allowed);
	assert_int_equal(r.remaining, UINT32_MAX);
	r = sg_gcra_decide(&m, 0, 0, UINT32_MAX, &next);
	assert_false(r.allowed);
	assert_true(r.retry_after_ns == UINT64_MAX);
	r = sg_gcra_decide(&m, 0, 0, 1, &next);
	assert_true(r.allowed);
	assert_true(next == UINT64_MAX);
	assert_int_equal(r.remaining, UINT32_MAX - 1);
}

static void
test_peek_changes_nothing(void **state)
{
	(void)state;
	struct sg_gcra_limit l = {.emission_ns = 100, .burst = 5};
	_Atomic uint64_t cell = 0;
	struct sg_gcra_result r = take(&l, &cell, NOW, 0);
	assert_true(r.allowed);
	assert_int_equal(r.remaining, 5);
	assert_int_equal(r.reset_ns, 0);
	assert_int_equal(atomic_load(&cell), 0);

	assert_int_equal(drain(&l, &cell, NOW), 5);
	uint64_t tat = atomic_load(&cell);
	for (int n = 0; n < 3; n++) {
		r = take(&l, &cell, NOW, 0);
		assert_true(r.allowed); /* a peek is allowed even on an empty bucket */
		assert_int_equal(r.remaining, 0);
		assert_int_equal(r.reset_ns, 500);
	}
	assert_int_equal(atomic_load(&cell), tat);
	uint64_t next = 42;
	sg_gcra_decide(&l, tat, NOW, 0, &next);
	assert_int_equal(next, tat);
	/* Not even a stale TAT is brought up to now. */
	sg_gcra_decide(&l, 0, NOW, 0, &next);
	assert_int_equal(next, 0);
	sg_gcra_decide(&l, NOW - 5, NOW, 0, &next);
	assert_int_equal(next, NOW - 5);
	sg_gcra_decide(&l, NOW - 5, NOW, 6, &next); /* nor by a denial */
	assert_int_equal(next, NOW - 5);
}

static void
test_remaining_and_reset(void **state)
{
	(void)state;
	struct sg_gcra_limit l = {.emission_ns = 100, .burst = 5};
	uint64_t next;
	/* Fresh, through both "never seen" and a TAT long in the past. */
	struct sg_gcra_result r = sg_gcra_decide(&l, 0, NOW, 1, &next);
	assert_true(r.allowed);
	assert_int_equal(r.remaining, 4);
	assert_int_equal(r.reset_ns, 100);
	assert_int_equal(next, NOW + 100);
	r = sg_gcra_decide(&l, NOW - 1, NOW, 1, &next);
	assert_int_equal(next, NOW + 100);
	/* 250 ns committed: 2.5 units spent, so 2 whole units left. */
	r = sg_gcra_decide(&l, NOW + 250, NOW, 0, &next);
	assert_int_equal(r.remaining, 2);
	assert_int_equal(r.reset_ns, 250);
	r = sg_gcra_decide(&l, NOW + 250, NOW, 1, &next);
	assert_true(r.allowed);
	assert_int_equal(r.remaining, 1);
	assert_int_equal(r.reset_ns, 350);
	r = sg_gcra_decide(&l, NOW + 250, NOW, 3, &next);
	assert_false(r.allowed);
	assert_int_equal(r.remaining, 2);
	assert_int_equal(r.retry_after_ns, 50);
	assert_int_equal(r.reset_ns, 250);
	assert_int_equal(next, NOW + 250); /* a denial stores nothing new */
	/* Exactly at the edge of room: 200 committed, cost 3 fits, 0 left. */
	r = sg_gcra_decide(&l, NOW + 200, NOW, 3, &next);
	assert_true(r.allowed);
	assert_int_equal(r.remaining, 0);
	assert_int_equal(r.reset_ns, 500);
	r = sg_gcra_decide(&l, NOW + 201, NOW, 3, &next);
	assert_false(r.allowed);
	assert_int_equal(r.retry_after_ns, 1);
}

/*
 * A client that always wants more, polling a fake clock in uneven steps.
 * Steps stay within (burst - 1) * T: a slower poller lets the bucket fill
 * past its burst between polls and rightly loses the overflow.
 */
static uint64_t
window_poller(const struct sg_gcra_limit *l, uint64_t start, uint64_t end, uint64_t seed)
{
	_Atomic uint64_t cell = 0;
	uint64_t rng = seed, cap = l->emission_ns * (l->burst - 1);
	uint64_t admitted = drain(l, &cell, start);
	for (uint64_t now = start; now != end;) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t step = 1 + (rng >> 33) % (cap < 20000000 ? cap : 20000000);
		now = end - now < step ? end : now + step;
		admitted += drain(l, &cell, now);
	}
	return admitted;
}

/* The same client sleeping exactly retry_after after each denial. */
static uint64_t
window_sleeper(const struct sg_gcra_limit *l, uint64_t start, uint64_t end)
{
	_Atomic uint64_t cell = 0;
	uint64_t admitted = 0;
	for (uint64_t now = start;;) {
		struct sg_gcra_result r = take(l, &cell, now, 1);
		if (r.allowed) {
			admitted++;
			continue;
		}
		if (end - now < r.retry_after_ns)
			return admitted;
		now += r.retry_after_ns;
	}
}

static void
test_window_admits_burst_plus_rate_times_time(void **state)
{
	(void)state;
	const struct {
		uint64_t rate; /* per second */
		uint32_t burst;
		uint64_t secs;
	} cases[] = {
		{10, 5, 10}, {3, 2, 7}, {1, 60, 120}, {100, 20, 3}, {7, 7, 1}, {1000, 2, 2},
		{3, 1, 7}, {1000, 1, 2},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sg_gcra_limit l = {
			.emission_ns = SEC / cases[i].rate,
			.burst = cases[i].burst,
		};
		uint64_t start = NOW, end = NOW + cases[i].secs * SEC;
		uint64_t expect = cases[i].burst + cases[i].rate * cases[i].secs;
		/* What the integer emission interval implies, exactly. */
		uint64_t exact = cases[i].burst + cases[i].secs * SEC / l.emission_ns;
		assert_in_range(exact, expect, expect + 1);
		assert_int_equal(window_sleeper(&l, start, end), exact);
		if (l.burst > 1)
			assert_int_equal(window_poller(&l, start, end, i + 1), exact);
	}
}

/* Cost 2 against a burst of 3: one fits and leaves 1, the next cost-2 call does not. */
static void
test_cost_two_of_three(void **state)
{
	(void)state;
	struct sg_gcra_limit l = {.emission_ns = 1000, .burst = 3};
	_Atomic uint64_t cell = 0;
	struct sg_gcra_result r = take(&l, &cell, NOW, 2);
	assert_true(r.allowed);
	assert_int_equal(r.remaining, 1);
	assert_int_equal(atomic_load(&cell), NOW + 2000);
	r = take(&l, &cell, NOW, 2);
	assert_false(r.allowed);
	assert_int_equal(r.remaining, 1);
	assert_int_equal(r.retry_after_ns, 1000);
	assert_int_equal(atomic_load(&cell), NOW + 2000);
	/* The remaining 1 is real: a cost-1 call still fits, and then nothing does. */
	r = take(&l, &cell, NOW, 1);
	assert_true(r.allowed);
	assert_int_equal(r.remaining, 0);
	assert_false(take(&l, &cell, NOW, 1).allowed);
}

/* reset_ns is always the stored TAT minus now (0 for a full bucket). */
static void
test_reset_is_tat_minus_now(void **state)
{
	(void)state;
	struct sg_gcra_limit l = {.emission_ns = 700, .burst = 4};
	_Atomic uint64_t cell = 0;
	/* Fresh and over the burst, admits, denials, a peek, a full refill. */
	const uint64_t offsets[] = {0, 0, 0, 13, 13, 500, 1400, 1401, 9000, 9000, 9000, 9000, 9000};
	const uint32_t costs[] = {5, 1, 2, 1, 1, 1, 3, 1, 4, 1, 0, 2, 1};
	for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
		uint64_t now = NOW + offsets[i], before = atomic_load(&cell);
		struct sg_gcra_result r = take(&l, &cell, now, costs[i]);
		uint64_t tat = atomic_load(&cell);
		if (!r.allowed)
			assert_int_equal(tat, before);
		assert_int_equal(r.reset_ns, tat > now ? tat - now : 0);
	}
}

/* A client that tries on every tick of a clock moving in small fixed steps. */
static uint64_t
window_ticker(const struct sg_gcra_limit *l, uint64_t start, uint64_t end, uint64_t step)
{
	_Atomic uint64_t cell = 0;
	uint64_t admitted = 0;
	for (uint64_t now = start; now <= end; now += step)
		admitted += drain(l, &cell, now);
	return admitted;
}

static void
test_ticking_window_admits_burst_plus_rate_times_time(void **state)
{
	(void)state;
	const struct {
		uint64_t rate; /* per second */
		uint32_t burst;
		uint64_t secs;
		uint64_t step_ns;
	} cases[] = {
		{2, 3, 5, 1000000},  /* 1 ms ticks */
		{100, 10, 2, 100000}, /* 0.1 ms ticks */
		{100, 10, 2, 997},    /* ticks that never line up with T */
		{3, 2, 7, 999983},
		{50, 1, 4, 1000000},
		{1, 5, 10, 10000000},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sg_gcra_limit l = {
			.emission_ns = SEC / cases[i].rate,
			.burst = cases[i].burst,
		};
		uint64_t expect = cases[i].burst + cases[i].rate * cases[i].secs;
		uint64_t got = window_ticker(&l, NOW, NOW + cases[i].secs * SEC, cases[i].step_ns);
		if (got + 1 < expect || got > expect + 1)
			fail_msg("rate %" PRIu64 "/s burst %u over %" PRIu64 " s: %" PRIu64
				 " admitted, expected %" PRIu64 " +-1",
			    cases[i].rate, cases[i].burst, cases[i].secs, got, expect);
	}
}

enum { HAMMER_THREADS = 4, HAMMER_TRIES = 50000, HAMMER_BURST = 20000 };

struct hammer {
	const struct sg_gcra_limit *l;
	_Atomic uint64_t *cell;
	pthread_barrier_t *go;
	unsigned admitted;
};

static void *
hammer_main(void *arg)
{
	struct hammer *h = arg;
	pthread_barrier_wait(h->go);
	for (unsigned i = 0; i < HAMMER_TRIES; i++)
		h->admitted += sg_gcra_take(h->l, h->cell, NOW, 1).allowed;
	return NULL;
}

/* Frozen clock, four threads on one cell: exactly `burst` admissions in all. */
static void
test_threads_admit_exactly_burst(void **state)
{
	(void)state;
	const struct sg_gcra_limit l = {.emission_ns = 1000, .burst = HAMMER_BURST};
	_Atomic uint64_t cell = 0;
	pthread_barrier_t go;
	pthread_t th[HAMMER_THREADS];
	struct hammer h[HAMMER_THREADS];
	assert_int_equal(pthread_barrier_init(&go, NULL, HAMMER_THREADS), 0);
	for (int i = 0; i < HAMMER_THREADS; i++) {
		h[i] = (struct hammer){.l = &l, .cell = &cell, .go = &go};
		assert_int_equal(pthread_create(&th[i], NULL, hammer_main, &h[i]), 0);
	}
	unsigned total = 0;
	for (int i = 0; i < HAMMER_THREADS; i++) {
		pthread_join(th[i], NULL);
		total += h[i].admitted;
	}
	pthread_barrier_destroy(&go);
	assert_int_equal(total, HAMMER_BURST);
	assert_true(atomic_load(&cell) == NOW + (uint64_t)HAMMER_BURST * 1000);
	assert_false(sg_gcra_take(&l, &cell, NOW, 1).allowed);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fresh_bucket_admits_exactly_burst),
		cmocka_unit_test(test_refills_one_unit_per_emission_interval),
		cmocka_unit_test(test_waiting_retry_after_is_exactly_enough),
		cmocka_unit_test(test_weighted_cost),
		cmocka_unit_test(test_cost_at_and_over_burst),
		cmocka_unit_test(test_clock_going_backwards_refunds_nothing),
		cmocka_unit_test(test_saturates_near_the_top_of_the_range),
		cmocka_unit_test(test_peek_changes_nothing),
		cmocka_unit_test(test_remaining_and_reset),
		cmocka_unit_test(test_window_admits_burst_plus_rate_times_time),
		cmocka_unit_test(test_cost_two_of_three),
		cmocka_unit_test(test_reset_is_tat_minus_now),
		cmocka_unit_test(test_ticking_window_admits_burst_plus_rate_times_time),
		cmocka_unit_test(test_threads_admit_exactly_burst),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
