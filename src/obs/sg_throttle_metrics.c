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
	static const char *const modes[] = {"local", "deny", "allow"};
	fputs("# HELP sandgate_redis_fallback_total Calls decided without Redis, by failure mode.\n"
	      "# TYPE sandgate_redis_fallback_total counter\n",
	      f);
	for (size_t m = 0; m < 3; m++)
		fprintf(f, "sandgate_redis_fallback_total{mode=\"%s\"} %llu\n", modes[m],
		        (unsigned long long)load(&s->redis_fallback[m]));
	fprintf(f,
	        "# HELP sandgate_redis_links_down I/O threads whose Redis link is down now.\n"
	        "# TYPE sandgate_redis_links_down gauge\nsandgate_redis_links_down %lld\n",
	        (long long)atomic_load_explicit(&s->redis_links_down, memory_order_relaxed));
}

/*
 * Tenants in an open-addressing table: found without a lock (names are
 * published with a release store after they are written), added under the
 * registry lock.  Entries are never removed.
 */
struct tenant_spend {
	_Atomic uint64_t hash; /* 0: empty */
	char name[64];
	_Atomic uint64_t micros[2]; /* live, sandbox */
};

static struct tenant_spend tenants[SG_TENANT_METRICS_MAX * 2];
static struct tenant_spend tenant_overflow = {.name = "_overflow"};
static _Atomic size_t n_tenants;

static uint64_t
tenant_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h ? h : 1;
}

static struct tenant_spend *
tenant_slot(const char *tenant)
{
	uint64_t h = tenant_hash(tenant);
	size_t cap = sizeof(tenants) / sizeof(tenants[0]);
	for (size_t i = 0, at = h % cap; i < cap; i++, at = (at + 1) % cap) {
		struct tenant_spend *t = &tenants[at];
		uint64_t seen = atomic_load_explicit(&t->hash, memory_order_acquire);
		if (seen == h && strcmp(t->name, tenant) == 0)
			return t;
		if (seen != 0)
			continue;
		pthread_mutex_lock(&registry_lock);
		if (atomic_load_explicit(&t->hash, memory_order_relaxed) == 0 &&
		    atomic_load(&n_tenants) < SG_TENANT_METRICS_MAX &&
		    strlen(tenant) < sizeof(t->name)) {
			memcpy(t->name, tenant, strlen(tenant) + 1);
			atomic_fetch_add(&n_tenants, 1);
			atomic_store_explicit(&t->hash, h, memory_order_release);
		}
		pthread_mutex_unlock(&registry_lock);
		seen = atomic_load_explicit(&t->hash, memory_order_acquire);
		if (seen == h && strcmp(t->name, tenant) == 0)
			return t;
		if (seen == 0)
			return &tenant_overflow; /* full, or a name too long */
	}
	return &tenant_overflow;
}

void
sg_metrics_tenant_spend(const char *tenant, int64_t micros, bool sandbox)
{
	if (micros > 0)
		atomic_fetch_add_explicit(&tenant_slot(tenant)->micros[sandbox], (uint64_t)micros,
		                          memory_order_relaxed);
}

static void
render_spend(FILE *f)
{
	fputs(
	    "# HELP sandgate_budget_spend_total Catalog cost of answered calls per tenant, in the "
	    "budget currency; sandbox calls show what they would have cost.\n"
	    "# TYPE sandgate_budget_spend_total counter\n",
	    f);
	size_t cap = sizeof(tenants) / sizeof(tenants[0]);
	for (size_t i = 0; i <= cap; i++) {
		struct tenant_spend *t = i < cap ? &tenants[i] : &tenant_overflow;
		if (i < cap && atomic_load_explicit(&t->hash, memory_order_acquire) == 0)
			continue;
		for (int m = 0; m < 2; m++) {
			uint64_t v = atomic_load_explicit(&t->micros[m], memory_order_relaxed);
			if (i == cap && v == 0)
				continue;
			/* Tenant names are [A-Za-z0-9._@-] (keys create checks): no escaping. */
			fprintf(f, "sandgate_budget_spend_total{tenant=\"%s\",mode=\"%s\"} %.6f\n",
			        t->name, m ? "sandbox" : "live", (double)v / 1e6);
		}
	}
}

void
sg_metrics_rules_render(FILE *f)
{
	render_queue(f);
	render_spend(f);
	render_family(f, "sandgate_limit_near_total",
	              "Calls admitted with a fifth or less of a limit window left.",
	              offsetof(struct sg_metrics_rule, near_limit));
	render_family(f, "sandgate_limit_over_total", "Calls refused by a limit rule.",
	              offsetof(struct sg_metrics_rule, over_limit));
	render_family(f, "sandgate_limit_shadow_total",
	              "Calls a shadow rule would have refused (not enforced).",
	              offsetof(struct sg_metrics_rule, shadow));
}
