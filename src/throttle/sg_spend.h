/*
 * sg_spend: money spent against budgets, per tenant and per user, in the
 * current day and month (UTC).  Counters live in a cell table keyed by
 * (scope, who, period, period number), so a new day or month simply starts
 * at zero: nothing has to be reset at the boundary.
 *
 * The clock is a parameter (unix seconds), so period boundaries are tested
 * with an injected time.
 */
#ifndef SG_SPEND_H
#define SG_SPEND_H

#include <stdbool.h>
#include <stdint.h>

#include "policy/sg_budgets.h"

struct sg_spend;

/* One budget that applies to a call, and where it stands. */
struct sg_spend_line {
	enum sg_budget_scope scope;
	enum sg_budget_period period;
	int64_t limit;     /* micro-units */
	int64_t spent;     /* micro-units, including the call when it was held */
	int64_t resets_at; /* unix seconds: the start of the next period */
	_Atomic uint64_t *cell;
};

struct sg_spend_hold {
	struct sg_spend_line line[SG_BUDGET_SCOPES * SG_BUDGET_PERIODS];
	uint8_t n;
	int64_t held; /* micro-units taken from every line; 0 when nothing is held */
	int refused;  /* index of the line that refused the call, or -1 */
	int warn;     /* index of a line at or past the warning level, or -1 */
	bool crossed; /* this call took that line past the warning level */
};

struct sg_spend *sg_spend_new(void);
void sg_spend_free(struct sg_spend *sp);

/*
 * Holds `cost` (micro-units) in every budget of `b` that applies to
 * (tenant, user) at `wall_s`, all or nothing: when one would go past its
 * limit, nothing is held and h->refused names it.  Returns -1 when the
 * table has no room (the caller refuses the call).
 */
int sg_spend_hold(struct sg_spend *sp, const struct sg_budgets *b, const char *tenant,
                  const char *user, int64_t wall_s, int64_t cost, struct sg_spend_hold *h);
/* Gives a hold back: the call did not happen.  Safe to call twice. */
void sg_spend_release(struct sg_spend_hold *h);
/* Where (tenant, user) stands, holding nothing. */
void sg_spend_standing(struct sg_spend *sp, const struct sg_budgets *b, const char *tenant,
                       const char *user, int64_t wall_s, struct sg_spend_hold *h);

/*
 * Adds spending that already happened, with no limit: restoring the
 * store's record at start, and counting what sandbox calls would have cost
 * (`sandbox` true), which never counts against a budget.
 */
void sg_spend_add(struct sg_spend *sp, const char *tenant, const char *user, int64_t wall_s,
                  int64_t cost, bool sandbox);
/* What (tenant, user) spent (or, with `sandbox`, would have) in a period. */
int64_t sg_spend_get(struct sg_spend *sp, enum sg_budget_scope scope, const char *tenant,
                     const char *user, enum sg_budget_period period, int64_t wall_s, bool sandbox);

/* The start of the period after the one holding `wall_s`. */
int64_t sg_spend_period_end(enum sg_budget_period p, int64_t wall_s);

#endif
