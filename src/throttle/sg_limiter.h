/*
 * sg_limiter: one call against every rule that binds it, all or nothing.
 *
 * Each window of each rate rule is a GCRA cell in the shared rate table;
 * each concurrency rule is a counter in a second table.  A call is admitted
 * only if every enforced window and cap admits it; if one refuses, what
 * the others took is refunded, so a refused call spends nothing anywhere.
 * Shadow rules run after the enforced ones, on admitted calls only, and
 * only count what they would have refused.
 */
#ifndef SG_LIMITER_H
#define SG_LIMITER_H

#include <stdbool.h>
#include <stdint.h>

#include "policy/sg_rules.h"
#include "throttle/sg_gcra.h"

struct sg_ratetable;

#define SG_VERDICT_MAX 8
#define SG_VERDICT_CELLS 32

/* The identities a call's buckets are keyed by, hashed once per call. */
struct sg_limiter_ids {
	uint64_t who[SG_WHO_EVERYONE + 1];    /* api key, user, tenant, everyone (0) */
	uint64_t what[SG_WHAT_OPERATION + 1]; /* all (0), connector, operation */
	uint32_t mode;                        /* sandbox and live never share a bucket */
};

void sg_limiter_ids_set(struct sg_limiter_ids *ids, const char *key_id, const char *tenant,
                        const char *user, const char *connector, const char *operation,
                        uint32_t mode);

/* One window's (or cap's) standing. */
struct sg_limit_hit {
	const struct sg_rule *rule;
	const struct sg_limit *window; /* NULL for a concurrency cap */
	struct sg_gcra_result res;     /* for a cap: limit = cap, remaining = free slots */
};

struct sg_verdict {
	bool allowed;
	bool has_closest;
	struct sg_limit_hit
	    closest; /* admitted: the window nearest its limit; refused: a violated one */
	struct sg_limit_hit violated[SG_VERDICT_MAX];
	uint8_t n_violated;
	uint64_t retry_after_ns; /* refused: the longest wait among violated windows */
	const struct sg_rule *shadowed[SG_VERDICT_MAX];
	uint8_t n_shadowed;
	/* What an admitted call holds: cells it charged and slots it occupies. */
	struct sg_verdict_cell {
		_Atomic uint64_t *cell;
		struct sg_gcra_limit
		    gcra; /* as taken: a local share may be smaller than the rule */
	} taken[SG_VERDICT_CELLS];
	uint8_t n_taken;
	_Atomic uint64_t *held[SG_RULE_MAX_PER_CALL];
	uint8_t n_held;
};

struct sg_limiter {
	struct sg_ratetable *cells; /* GCRA TATs */
	struct sg_ratetable *slots; /* calls in flight per concurrency bucket */
};

/* Creates both tables: `cells` GCRA cells, and a slot table a sixteenth that size. */
int sg_limiter_init(struct sg_limiter *lm, size_t cells);
/* Frees both tables; safe on a zeroed or half-made limiter. */
void sg_limiter_fini(struct sg_limiter *lm);

/*
 * Decides one call of `cost` units in class `cls` at `now`.  Returns 0 with
 * the decision in *v, or -1 when a table has no room for a new bucket:
 * the caller must refuse (forgetting a bucket is never safe).  An admitted
 * call must later be passed to sg_limiter_release.
 */
int sg_limiter_take(const struct sg_limiter *lm, const struct sg_rule_list *rl,
                    const struct sg_limiter_ids *ids, enum sg_class cls, uint32_t cost,
                    uint64_t now, struct sg_verdict *v);

/*
 * What one take covers.  With the Redis backend the windows are decided in
 * Redis and only the concurrency caps here; while Redis is unreachable
 * (failure mode "local") the windows are decided here with 1/share_div of
 * each rate and burst, the node's share of a quota that several gateways
 * split.
 */
struct sg_take_scope {
	bool windows, caps;
	uint32_t share_div; /* >= 1 */
};

int sg_limiter_take_scoped(const struct sg_limiter *lm, const struct sg_rule_list *rl,
                           const struct sg_limiter_ids *ids, enum sg_class cls, uint32_t cost,
                           uint64_t now, const struct sg_take_scope *scope, struct sg_verdict *v);

/* The bucket a window of `r` uses for this caller, locally and in Redis alike. */
uint64_t sg_limiter_bucket(const struct sg_rule *r, unsigned window,
                           const struct sg_limiter_ids *ids);

/*
 * Gives back everything an admitted call took (windows and slots), right
 * after the take: a later check refused it.  Safe to call twice.
 */
void sg_limiter_refund(struct sg_verdict *v, uint32_t cost);

/* Frees the concurrency slots an admitted call holds.  Safe to call twice. */
void sg_limiter_release(struct sg_verdict *v);

/* Adds cost the call turned out to have to every window it was charged in. */
void sg_limiter_charge(struct sg_verdict *v, uint64_t now, uint32_t extra);

/*
 * Standing without spending: fills v->closest with the enforced window or
 * cap nearest its limit.  Creates no buckets.
 */
void sg_limiter_peek(const struct sg_limiter *lm, const struct sg_rule_list *rl,
                     const struct sg_limiter_ids *ids, enum sg_class cls, uint64_t now,
                     struct sg_verdict *v);

/* Standing of one window (or, with window NULL, the cap) of `rule`. */
struct sg_gcra_result sg_limiter_standing(const struct sg_limiter *lm, const struct sg_rule *rule,
                                          const struct sg_limit *window,
                                          const struct sg_limiter_ids *ids, enum sg_class cls,
                                          uint64_t now);

#endif
