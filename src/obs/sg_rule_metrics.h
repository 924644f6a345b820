/*
 * sg_rule_metrics: counters per limit rule name, for /metrics.
 *
 * Rules are recompiled on every reload, but their counters must survive
 * it, so counters live in a process-wide registry keyed by rule name and
 * are never freed.  Registering takes a lock (policy compile time only);
 * counting is one relaxed atomic add on the request path.
 */
#ifndef SG_RULE_METRICS_H
#define SG_RULE_METRICS_H

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

/* Writes the three counter families in Prometheus text format. */
void sg_metrics_rules_render(FILE *f);

#endif
