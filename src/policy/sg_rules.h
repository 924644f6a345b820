/*
 * sg_rules: every limit a call must pass, compiled into one list per
 * (role, mode, operation) so the throttle step does no matching per call.
 *
 * A rule comes from one of three places:
 *   - a role's `limits` and `connector_limits` (one bucket per API key and
 *     connector, as in the foundation);
 *   - a connector's `upstream_limit` (one bucket per connector, shared by
 *     every live caller, protecting the upstream);
 *   - a policy's `rules:` list, which says who shares a bucket (api_key,
 *     user, tenant or everyone) and what it counts (each connector, each
 *     operation, or all calls together), with one or more windows, or a
 *     concurrency cap, optional shadow mode and workload class shares.
 */
#ifndef SG_RULES_H
#define SG_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/sg_limit.h"

struct sg_metrics_rule;

#define SG_RULE_MAX_WINDOWS 4
#define SG_RULE_MAX_PER_CALL 16

/* Who shares one bucket. */
enum sg_rule_who { SG_WHO_KEY, SG_WHO_USER, SG_WHO_TENANT, SG_WHO_EVERYONE };
/* What one bucket counts. */
enum sg_rule_what { SG_WHAT_ALL, SG_WHAT_CONNECTOR, SG_WHAT_OPERATION };

/* Workload classes, most important first (Sandgate-Priority). */
enum sg_class { SG_CLASS_CRITICAL, SG_CLASS_NORMAL, SG_CLASS_BACKGROUND, SG_CLASS_COUNT };

const char *sg_class_name(enum sg_class c);
/* Returns 0 and sets *c for "critical", "normal" or "background"; -1 otherwise. */
int sg_class_parse(const char *s, enum sg_class *c);

struct sg_rule {
	char *name; /* unique; shown in headers, problems and metrics */
	enum sg_rule_who who;
	enum sg_rule_what what;
	bool shadow;          /* count and report, never refuse */
	uint32_t concurrency; /* > 0: caps calls in flight; the rule has no windows */
	struct sg_limit windows[SG_RULE_MAX_WINDOWS];
	size_t n_windows;
	/* Part of each window a class may fill, in thousandths; critical is 1000. */
	uint16_t share_permille[SG_CLASS_COUNT];
	uint64_t seed;                 /* separates the buckets of different rules */
	struct sg_metrics_rule *stats; /* process-wide counters for this rule name */
	size_t index;                  /* position in the policy's rule array */
};

/* The rules one call passes: enforced rate rules, then concurrency, then shadow. */
struct sg_rule_list {
	const struct sg_rule *const
	    *v; /* into the policy's rule pool; at most SG_RULE_MAX_PER_CALL */
	uint8_t n;
};

const char *sg_rule_who_name(enum sg_rule_who w);
const char *sg_rule_what_name(enum sg_rule_what w);

/*
 * The part of a window's bucket that `cls` must leave untouched, in ns of
 * GCRA tolerance: (1 - share) of burst * T.
 */
uint64_t sg_rule_reserve_ns(const struct sg_rule *r, const struct sg_gcra_limit *w,
                            enum sg_class cls);

#endif
