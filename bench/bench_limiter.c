/*
 * Microbenchmark of a local throttle decision (sg_limiter_take), no HTTP:
 *   warm-1   one warm key, one rule with one window (a role's own limit)
 *   warm-6   one warm key, the bench engine: five windows and one slot
 *   2-thread the warm-1 loop on two threads, each with its own key, against
 *            one thread alone: near 2x means the table does not serialise them
 *   1M keys  one decision for each of 1,000,000 distinct keys, then RSS
 * Figures are medians of RUNS runs.
 *
 *   build/bench/bench_limiter [iterations]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sg_clock.h"
#include "obs/sg_throttle_metrics.h"
#include "throttle/sg_limiter.h"

#define RUNS 7
#define T_NS 1000

static struct sg_rule rules[5];
/* The fake clock never goes back between runs, or warm buckets would read as drained. */
static _Atomic uint64_t clock_base = 1000000000ull;
static const struct sg_rule *list_v[5];

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void
make_rule(struct sg_rule *r, const char *name, enum sg_rule_who who, enum sg_rule_what what,
          size_t n_windows, uint32_t concurrency)
{
	memset(r, 0, sizeof(*r));
	r->name = (char *)name;
	r->who = who;
	r->what = what;
	r->seed = (uint64_t)(uintptr_t)name * 0x9e3779b97f4a7c15ull;
	r->stats = sg_metrics_rule(name);
	r->concurrency = concurrency;
	r->share_permille[SG_CLASS_CRITICAL] = r->share_permille[SG_CLASS_NORMAL] = 1000;
	r->share_permille[SG_CLASS_BACKGROUND] = 500;
	for (size_t w = 0; w < n_windows; w++)
		r->windows[w].gcra = (struct sg_gcra_limit){T_NS, 100000};
	r->n_windows = n_windows;
}

/* rules[0] is a role limit; 1..4 are bench/defs/policies/engine.yaml less the shadow rule. */
static void
make_rules(void)
{
	make_rule(&rules[0], "bench:sandbox", SG_WHO_KEY, SG_WHAT_CONNECTOR, 1, 0);
	make_rule(&rules[1], "bench-tenant", SG_WHO_TENANT, SG_WHAT_ALL, 2, 0);
	make_rule(&rules[2], "bench-user-connector", SG_WHO_USER, SG_WHAT_CONNECTOR, 1, 0);
	make_rule(&rules[3], "bench-tenant-concurrency", SG_WHO_TENANT, SG_WHAT_ALL, 0, 100000);
	make_rule(&rules[4], "bench-extra", SG_WHO_KEY, SG_WHAT_OPERATION, 1, 0);
	for (int i = 0; i < 5; i++)
		list_v[i] = &rules[i];
}

struct loop {
	struct sg_limiter *lm;
	const struct sg_rule_list *rl;
	struct sg_limiter_ids ids;
	size_t n;
	unsigned admitted;
	double ns_per_call;
};

static void *
run_loop(void *arg)
{
	struct loop *lp = arg;
	struct sg_verdict v;
	struct sg_limiter_ids ids = lp->ids;
	unsigned admitted = 0; /* counted locally: two loops' structs share a cache line */
	uint64_t now = atomic_fetch_add(&clock_base, (lp->n + 1) * T_NS), t0 = sg_mono_ns();
	for (size_t i = 0; i < lp->n; i++, now += T_NS) {
		sg_limiter_take(lp->lm, lp->rl, &ids, SG_CLASS_NORMAL, 1, now, &v);
		admitted += v.allowed;
		sg_limiter_release(&v);
	}
	lp->ns_per_call = (double)(sg_mono_ns() - t0) / (double)lp->n;
	lp->admitted = admitted;
	return NULL;
}

static double
median_of(struct sg_limiter *lm, const struct sg_rule_list *rl, size_t n, const char *key)
{
	double v[RUNS];
	for (int r = 0; r < RUNS; r++) {
		struct loop lp = {.lm = lm, .rl = rl, .n = n};
		sg_limiter_ids_set(&lp.ids, key, "bench", "u1", "crm", "create_contact", 0);
		run_loop(&lp);
		if (lp.admitted != n)
			fprintf(stderr, "warning: %u of %zu admitted\n", lp.admitted, n);
		v[r] = lp.ns_per_call;
	}
	qsort(v, RUNS, sizeof(v[0]), cmp_double);
	return v[RUNS / 2];
}

/* Calls per second with `threads` threads, each on its own key; median of RUNS. */
static double
rate_with(struct sg_limiter *lm, const struct sg_rule_list *rl, size_t n, int threads)
{
	double v[RUNS];
	for (int r = 0; r < RUNS; r++) {
		pthread_t tid[2];
		struct loop lp[2];
		char key[2][16];
		uint64_t t0 = sg_mono_ns();
		for (int t = 0; t < threads; t++) {
			snprintf(key[t], sizeof(key[t]), "thread%d", t);
			lp[t] = (struct loop){.lm = lm, .rl = rl, .n = n};
			sg_limiter_ids_set(&lp[t].ids, key[t], "bench", key[t], "crm", "create_contact", 0);
			pthread_create(&tid[t], NULL, run_loop, &lp[t]);
		}
		for (int t = 0; t < threads; t++)
			pthread_join(tid[t], NULL);
		v[r] = (double)n * threads / ((double)(sg_mono_ns() - t0) / 1e9);
	}
	qsort(v, RUNS, sizeof(v[0]), cmp_double);
	return v[RUNS / 2];
}

static long
rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

static void
million_keys(const struct sg_rule_list *rl)
{
	struct sg_limiter lm;
	long before = rss_kib();
	/* Twice the keys, as sandgate.yaml advises for the cell table. */
	if (sg_limiter_init(&lm, 2000000) != 0)
		return;
	struct sg_verdict v;
	unsigned admitted = 0;
	char key[24];
	for (unsigned i = 0; i < 1000000; i++) {
		struct sg_limiter_ids ids;
		snprintf(key, sizeof(key), "k%u", i);
		sg_limiter_ids_set(&ids, key, "bench", key, "crm", "create_contact", 0);
		if (sg_limiter_take(&lm, rl, &ids, SG_CLASS_NORMAL, 1, clock_base, &v) == 0)
			admitted += v.allowed;
	}
	printf("1,000,000 distinct keys (one window each): %u admitted, RSS %.1f MiB "
	       "(%.1f MiB before the table; target <= 128)\n",
	       admitted, (double)rss_kib() / 1024, (double)before / 1024);
	sg_limiter_fini(&lm);
}

int
main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000000;
	struct sg_limiter lm;
	make_rules();
	if (n == 0 || sg_limiter_init(&lm, 1 << 20) != 0)
		return 1;
	struct sg_rule_list one = {list_v, 1}, engine = {list_v, 5};
	printf("warm key, 1 window (role limit):         median %6.1f ns/decision (target <= 150)\n",
	       median_of(&lm, &one, n, "warm1"));
	printf("warm key, 5 windows + 1 slot (engine):   median %6.1f ns/decision\n",
	       median_of(&lm, &engine, n, "warm6"));
	double r1 = rate_with(&lm, &one, n, 1), r2 = rate_with(&lm, &one, n, 2);
	printf("1 window: 1 thread %.1fM/s, 2 threads %.1fM/s: %.2fx (near-linear is 2x)\n", r1 / 1e6,
	       r2 / 1e6, r2 / r1);
	sg_limiter_fini(&lm);
	million_keys(&one);
	return 0;
}
