#include "obs/sg_throttle_metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

struct sg_throttle_stats sg_throttle_stats;

/* Upper bounds in milliseconds; the last bucket is +Inf. */
static const uint64_t wait_ms[SG_QUEUE_WAIT_BUCKETS - 1] = {
    1, 5, 10, 25, 50, 100, 250, 1000, 5000,
};

static struct sg_metrics_rule registry[SG_RULE_METRICS_MAX + 1];
static _Atomic size_t n_registered;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

struct sg_metrics_rule *
sg_metrics_rule(const char *name)
{
	struct sg_metrics_rule *m = &registry[SG_RULE_METRICS_MAX];
	pthread_mutex_lock(&registry_lock);
	size_t n = atomic_load_explicit(&n_registered, memory_order_relaxed);
	for (size_t i = 0; i < n; i++)
		if (strcmp(registry[i].name, name) == 0) {
			m = &registry[i];
			goto out;
		}
	if (n < SG_RULE_METRICS_MAX && strlen(name) < sizeof(m->name)) {
		m = &registry[n];
		memcpy(m->name, name, strlen(name) + 1);
		/* Scrapes read entries below n_registered without the lock. */
		atomic_store_explicit(&n_registered, n + 1, memory_order_release);
	} else {
		memcpy(m->name, "_overflow", sizeof("_overflow"));
	}
out:
	pthread_mutex_unlock(&registry_lock);
	return m;
}

void
sg_metrics_rule_count(_Atomic uint64_t *counter)
{
	atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

static void
render_family(FILE *f, const char *name, const char *help, size_t field)
{
	size_t n = atomic_load_explicit(&n_registered, memory_order_acquire);
	fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (size_t i = 0; i <= n && i <= SG_RULE_METRICS_MAX; i++) {
		struct sg_metrics_rule *m = &registry[i == n ? SG_RULE_METRICS_MAX : i];
		_Atomic uint64_t *c = (_Atomic uint64_t *)((char *)m + field);
		uint64_t v = atomic_load_explicit(c, memory_order_relaxed);
		if (i == n && v == 0)
			continue; /* the overflow entry only when used */
		/* Rule names are [a-z0-9_:-], so they need no label escaping. */
		fprintf(f, "%s{rule=\"%s\"} %llu\n", name, i == n ? "_overflow" : m->name,
		        (unsigned long long)v);
	}
}

void
sg_metrics_queue_wait(uint64_t wait_us)
{
	size_t b = 0;
	while (b < SG_QUEUE_WAIT_BUCKETS - 1 && wait_us > wait_ms[b] * 1000)
		b++;
	atomic_fetch_add_explicit(&sg_throttle_stats.queue_wait_bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sg_throttle_stats.queue_wait_sum_us, wait_us,
	                          memory_order_relaxed);
}

static uint64_t
load(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static void
render_queue(FILE *f)
{
	struct sg_throttle_stats *s = &sg_throttle_stats;
	uint64_t cum = 0;
	fputs("# HELP sandgate_queue_wait_seconds Time admitted calls waited in a tenant queue.\n"
	      "# TYPE sandgate_queue_wait_seconds histogram\n",
	      f);
	for (size_t b = 0; b < SG_QUEUE_WAIT_BUCKETS; b++) {
		cum += load(&s->queue_wait_bucket[b]);
		if (b < SG_QUEUE_WAIT_BUCKETS - 1)
			fprintf(f, "sandgate_queue_wait_seconds_bucket{le=\"%g\"} %llu\n",
			        (double)wait_ms[b] / 1e3, (unsigned long long)cum);
		else
			fprintf(f, "sandgate_queue_wait_seconds_bucket{le=\"+Inf\"} %llu\n",
			        (unsigned long long)cum);
	}
	fprintf(f,
	        "sandgate_queue_wait_seconds_sum %.6f\nsandgate_queue_wait_seconds_count %llu\n"
	        "# HELP sandgate_queued_total Calls that waited in a tenant queue.\n"
	        "# TYPE sandgate_queued_total counter\nsandgate_queued_total %llu\n"
	        "# HELP sandgate_queue_refused_total Queued or queueing calls refused, by why.\n"
	        "# TYPE sandgate_queue_refused_total counter\n"
	        "sandgate_queue_refused_total{reason=\"full\"} %llu\n"
	        "sandgate_queue_refused_total{reason=\"deadline\"} %llu\n"
	        "# HELP sandgate_queue_depth Calls waiting in tenant queues now.\n"
	        "# TYPE sandgate_queue_depth gauge\nsandgate_queue_depth %lld\n",
	        (double)load(&s->queue_wait_sum_us) / 1e6, (unsigned long long)cum,
	        (unsigned long long)load(&s->queued), (unsigned long long)load(&s->queue_full),
	        (unsigned long long)load(&s->queue_expired),
	        (long long)atomic_load_explicit(&s->queue_depth, memory_order_relaxed));
	fputs("# HELP sandgate_shed_total Calls shed to protect the gateway, by class.\n"
	      "# TYPE sandgate_shed_total counter\n",
	      f);
	static const char *const classes[] = {"critical", "normal", "background"};
	for (size_t c = 0; c < 3; c++)
		fprintf(f, "sandgate_shed_total{class=\"%s\"} %llu\n", classes[c],
		        (unsigned long long)load(&s->shed[c]));
}

void
sg_metrics_rules_render(FILE *f)
{
	render_queue(f);
	render_family(f, "sandgate_limit_near_total",
	              "Calls admitted with a fifth or less of a limit window left.",
	              offsetof(struct sg_metrics_rule, near_limit));
	render_family(f, "sandgate_limit_over_total", "Calls refused by a limit rule.",
	              offsetof(struct sg_metrics_rule, over_limit));
	render_family(f, "sandgate_limit_shadow_total",
	              "Calls a shadow rule would have refused (not enforced).",
	              offsetof(struct sg_metrics_rule, shadow));
}
