/*
 * Microbenchmark of the throttle's hot path, single-threaded:
 *   take-admit   sg_gcra_take on one warm cell, the fake clock advancing one
 *                emission interval a call so every call admits (pays the CAS)
 *   take-deny    the same cell drained, clock frozen: every call is denied
 *   lookup+take  sg_ratetable_cell then sg_gcra_take over 10,000 warm keys
 * Each figure is the median of RUNS runs.  Then fills a 1,000,000-cell table
 * with live buckets to show the load at which the first lookup fails.
 *
 *   build/bench/bench_gcra [iterations]
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/sg_clock.h"
#include "throttle/sg_gcra.h"
#include "throttle/sg_ratetable.h"

#define RUNS 9
#define N_KEYS 10000
#define T_NS 1000

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Keeps the compiler from dropping calls whose results go unused. */
static volatile unsigned sink;

static double
run_take(uint64_t iters, uint64_t clock_step)
{
	const struct sg_gcra_limit l = {.emission_ns = T_NS, .burst = 10};
	_Atomic uint64_t cell = 0;
	uint64_t now = 1000000000ull;
	unsigned ok = 0;
	for (int i = 0; i < 20; i++) /* warm, and drained when the clock is frozen */
		ok += sg_gcra_take(&l, &cell, now, 1).allowed;
	uint64_t t0 = sg_mono_ns();
	for (uint64_t i = 0; i < iters; i++) {
		now += clock_step;
		ok += sg_gcra_take(&l, &cell, now, 1).allowed;
	}
	uint64_t t1 = sg_mono_ns();
	sink = ok;
	return (double)(t1 - t0) / (double)iters;
}

static double
run_lookup(struct sg_ratetable *t, const uint64_t *keys, uint64_t iters)
{
	const struct sg_gcra_limit l = {.emission_ns = T_NS, .burst = 10};
	uint64_t now = 1000000000ull;
	unsigned ok = 0;
	uint64_t t0 = sg_mono_ns();
	for (uint64_t i = 0; i < iters; i++) {
		now += T_NS;
		_Atomic uint64_t *c = sg_ratetable_cell(t, keys[i % N_KEYS], now);
		ok += c != NULL && sg_gcra_take(&l, c, now, 1).allowed;
	}
	uint64_t t1 = sg_mono_ns();
	sink = ok;
	return (double)(t1 - t0) / (double)iters;
}

static void
report(const char *name, double *v)
{
	qsort(v, RUNS, sizeof(*v), cmp_double);
	printf("%-12s median %6.1f ns/op  (min %.1f, max %.1f, %d runs)\n", name, v[RUNS / 2], v[0],
	    v[RUNS - 1], RUNS);
}

/* Fills with distinct keys whose buckets never refill, until one fails. */
static void
fill_until_full(size_t capacity)
{
	struct sg_ratetable *t = sg_ratetable_new(capacity);
	if (t == NULL) {
		fprintf(stderr, "bench_gcra: cannot allocate %zu cells\n", capacity);
		exit(1);
	}
	char id[32];
	for (size_t i = 0;; i++) {
		snprintf(id, sizeof(id), "key_%zu", i);
		_Atomic uint64_t *c = sg_ratetable_cell(t, sg_ratetable_key(id, "crm"), 1);
		if (c == NULL)
			break;
		atomic_store_explicit(c, UINT64_MAX, memory_order_relaxed);
	}
	size_t n = sg_ratetable_count(t);
	printf("fill         first failure after %zu live cells of %zu requested (%.1f%%)\n", n,
	    capacity, 100.0 * (double)n / (double)capacity);
	sg_ratetable_free(t);
}

int
main(int argc, char **argv)
{
	uint64_t iters = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
	if (iters == 0)
		iters = 1;
	double v[RUNS];

	for (int r = 0; r < RUNS; r++)
		v[r] = run_take(iters, T_NS);
	report("take-admit", v);
	for (int r = 0; r < RUNS; r++)
		v[r] = run_take(iters, 0);
	report("take-deny", v);

	struct sg_ratetable *t = sg_ratetable_new(1000000);
	static uint64_t keys[N_KEYS];
	char id[32];
	for (size_t i = 0; i < N_KEYS; i++) {
		snprintf(id, sizeof(id), "key_%zu", i);
		keys[i] = sg_ratetable_key(id, "crm");
		sg_ratetable_cell(t, keys[i], 0);
	}
	for (int r = 0; r < RUNS; r++)
		v[r] = run_lookup(t, keys, iters);
	report("lookup+take", v);
	sg_ratetable_free(t);

	fill_until_full(1000000);
	return 0;
}
