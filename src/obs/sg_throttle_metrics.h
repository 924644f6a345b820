/*
 * sg_throttle_metrics: what the throttling engine did, for /metrics:
 * counters per limit rule, and for the fair queue and load shedding.
 *
 * Rules are recompiled on every reload, but their counters must survive
 * it, so counters live in a process-wide registry keyed by rule name and
 * are never freed.  Registering takes a lock (policy compile time only);
 * counting is one relaxed atomic add on the request path.
 */
#ifndef SG_THROTTLE_METRICS_H
#define SG_THROTTLE_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SG_RULE_METRICS_MAX 4096

struct sg_metrics_rule {
	char name[160];
	_Atomic uint64_t near_limit; /* admitted with a fifth or less of a window left */
	_Atomic uint64_t over_limit; /* refused by this rule */
	_Atomic uint64_t shadow;     /* a shadow rule that would have refused */
};

/*
 * The counters for `name`, created on first use.  Never NULL: past
 * SG_RULE_METRICS_MAX names, every new name shares one "_overflow" entry.
 */
struct sg_metrics_rule *sg_metrics_rule(const char *name);

void sg_metrics_rule_count(_Atomic uint64_t *counter);

/* Fair queue and shedding, process-wide; bumped only when a call waits or is shed. */
#define SG_QUEUE_WAIT_BUCKETS 10
struct sg_throttle_stats {
	_Atomic uint64_t queued;        /* calls that waited in a tenant queue */
	_Atomic uint64_t queue_full;    /* refused: the tenant's queue was full */
	_Atomic uint64_t queue_expired; /* refused: the wait passed its deadline */
	_Atomic uint64_t queue_wait_bucket[SG_QUEUE_WAIT_BUCKETS];
	_Atomic uint64_t queue_wait_sum_us;
	_Atomic int64_t queue_depth;        /* calls waiting now */
	_Atomic uint64_t shed[3];           /* by class: critical, normal, background */
	_Atomic uint64_t redis_fallback[3]; /* decided without Redis, by failure mode */
	_Atomic int64_t redis_links_down;   /* I/O threads whose Redis link is down now */
};
extern struct sg_throttle_stats sg_throttle_stats;

/* Counts one call that left the queue admitted after waiting `wait_us`. */
void sg_metrics_queue_wait(uint64_t wait_us);

/*
 * Adds `micros` (millionths of the budget currency) to what `tenant` spent,
 * live or (with `sandbox`) what its sandbox calls would have cost.  Lock-free
 * after a tenant's first call; past SG_TENANT_METRICS_MAX tenants the rest
 * share one "_overflow" series.
 */
#define SG_TENANT_METRICS_MAX 4096
void sg_metrics_tenant_spend(const char *tenant, int64_t micros, bool sandbox);

/* Writes the rule, queue, shedding and spend families in Prometheus text format. */
void sg_metrics_rules_render(FILE *f);

#endif
