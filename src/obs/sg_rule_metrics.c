#include "obs/sg_rule_metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

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
sg_metrics_rules_render(FILE *f)
{
	render_family(f, "sandgate_limit_near_total",
	              "Calls admitted with a fifth or less of a limit window left.",
	              offsetof(struct sg_metrics_rule, near_limit));
	render_family(f, "sandgate_limit_over_total", "Calls refused by a limit rule.",
	              offsetof(struct sg_metrics_rule, over_limit));
	render_family(f, "sandgate_limit_shadow_total",
	              "Calls a shadow rule would have refused (not enforced).",
	              offsetof(struct sg_metrics_rule, shadow));
}
