/*
 * The controller's arithmetic runs once per WINDOW samples under the
 * controller's mutex; admission only reads and bumps atomics.
 */
#include "throttle/sg_adaptive.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#define REGISTRY_MAX 1024
#define LONG_WEIGHT 0.05 /* the long average follows about the last 20 windows */
#define SMOOTHING 0.2

static struct sg_adaptive registry[REGISTRY_MAX];
static _Atomic size_t n_registered;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

static double
clamp(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static void
publish_limit(struct sg_adaptive *a)
{
	atomic_store_explicit(&a->limit_now, (uint32_t)a->limit, memory_order_relaxed);
}

void
sg_adaptive_init(struct sg_adaptive *a, const char *name, const struct sg_adaptive_config *c)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->name, sizeof(a->name), "%s", name);
	pthread_mutex_init(&a->lock, NULL);
	a->cfg = *c;
	a->limit = c->initial;
	publish_limit(a);
}

struct sg_adaptive *
sg_adaptive_for(const char *connector, const struct sg_adaptive_config *cfg)
{
	struct sg_adaptive *found = NULL;
	pthread_mutex_lock(&registry_lock);
	size_t n = atomic_load_explicit(&n_registered, memory_order_relaxed);
	for (size_t i = 0; i < n && found == NULL; i++)
		if (strcmp(registry[i].name, connector) == 0)
			found = &registry[i];
	if (found == NULL && n < REGISTRY_MAX) {
		found = &registry[n];
		sg_adaptive_init(found, connector, cfg);
		/* Scrapes read entries below n_registered without the lock. */
		atomic_store_explicit(&n_registered, n + 1, memory_order_release);
	}
	pthread_mutex_unlock(&registry_lock);
	return found;
}

void
sg_adaptive_configure(struct sg_adaptive *a, const struct sg_adaptive_config *cfg)
{
	pthread_mutex_lock(&a->lock);
	if (memcmp(&a->cfg, cfg, sizeof(*cfg)) != 0) {
		a->cfg = *cfg;
		a->limit = clamp(a->limit, cfg->min, cfg->max);
		publish_limit(a);
	}
	pthread_mutex_unlock(&a->lock);
}

int
sg_adaptive_acquire(struct sg_adaptive *a)
{
	uint32_t before = atomic_fetch_add_explicit(&a->in_flight, 1, memory_order_relaxed);
	if (before < atomic_load_explicit(&a->limit_now, memory_order_relaxed))
		return 0;
	atomic_fetch_sub_explicit(&a->in_flight, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&a->refused, 1, memory_order_relaxed);
	return -1;
}

/* One Gradient2 step from the window's average; caller holds a->lock. */
static void
update(struct sg_adaptive *a, uint32_t in_flight)
{
	double short_rtt = a->window_sum_ns / a->window_n;
	a->window_sum_ns = 0;
	a->window_n = 0;
	if (a->long_rtt_ns == 0)
		a->long_rtt_ns = short_rtt;
	else
		a->long_rtt_ns = a->long_rtt_ns * (1 - LONG_WEIGHT) + short_rtt * LONG_WEIGHT;
	double gradient = clamp(a->long_rtt_ns / short_rtt, 0.5, 1.0);
	double next = a->limit * gradient + sqrt(a->limit);
	if (gradient >= 1.0 && in_flight < a->limit / 2)
		next = a->limit; /* not busy enough to learn that more would be fine */
	a->limit = clamp(a->limit * (1 - SMOOTHING) + next * SMOOTHING, a->cfg.min, a->cfg.max);
	publish_limit(a);
}

void
sg_adaptive_release(struct sg_adaptive *a, bool sample, uint64_t rtt_ns)
{
	uint32_t in_flight = atomic_fetch_sub_explicit(&a->in_flight, 1, memory_order_relaxed);
	if (!sample || rtt_ns == 0)
		return;
	pthread_mutex_lock(&a->lock);
	a->window_sum_ns += (double)rtt_ns;
	if (++a->window_n >= SG_ADAPTIVE_WINDOW)
		update(a, in_flight);
	pthread_mutex_unlock(&a->lock);
}

void
sg_adaptive_render(FILE *f)
{
	size_t n = atomic_load_explicit(&n_registered, memory_order_acquire);
	fputs("# HELP sandgate_upstream_concurrency_limit Calls at once the adaptive limit allows "
	      "each live upstream now.\n"
	      "# TYPE sandgate_upstream_concurrency_limit gauge\n",
	      f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "sandgate_upstream_concurrency_limit{connector=\"%s\"} %u\n",
		        registry[i].name, atomic_load(&registry[i].limit_now));
	fputs("# HELP sandgate_upstream_in_flight Calls to each live upstream now.\n"
	      "# TYPE sandgate_upstream_in_flight gauge\n",
	      f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "sandgate_upstream_in_flight{connector=\"%s\"} %u\n", registry[i].name,
		        atomic_load(&registry[i].in_flight));
	fputs("# HELP sandgate_upstream_refused_total Calls refused by an upstream's adaptive "
	      "limit.\n"
	      "# TYPE sandgate_upstream_refused_total counter\n",
	      f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "sandgate_upstream_refused_total{connector=\"%s\"} %llu\n",
		        registry[i].name, (unsigned long long)atomic_load(&registry[i].refused));
}
