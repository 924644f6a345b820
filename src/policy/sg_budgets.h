/*
 * sg_budgets: cost budgets per tenant and per user, daily and monthly, in
 * one currency, as a policy's `budgets:` section declares them.
 *
 *   budgets:
 *     currency: EUR
 *     warn_at_percent: 80          # responses warn from here on
 *     ask: "Ask the platform team in #platform-help for a larger budget."
 *     tenants:
 *       "*": { daily: 5, monthly: 50 }   # every tenant not named
 *       acme: { daily: 20 }
 *     users:
 *       "*": { daily: 1 }
 *
 * Amounts are kept in millionths of the currency unit, so sums are exact.
 */
#ifndef SG_BUDGETS_H
#define SG_BUDGETS_H

#include <stdint.h>
#include <stddef.h>

#define SG_MICROS 1000000LL

enum sg_budget_scope { SG_BUDGET_TENANT, SG_BUDGET_USER, SG_BUDGET_SCOPES };
enum sg_budget_period { SG_BUDGET_DAILY, SG_BUDGET_MONTHLY, SG_BUDGET_PERIODS };

/* Limits in micro-units; 0 means no budget for that period. */
struct sg_budget_limits {
	int64_t micros[SG_BUDGET_PERIODS];
};

struct sg_budget_named {
	char *name; /* a tenant or a user name */
	struct sg_budget_limits limits;
};

struct sg_budgets {
	char currency[8];
	uint32_t warn_pct;
	char *ask; /* how to ask for more, in plain words */
	struct sg_budget_limits fallback[SG_BUDGET_SCOPES]; /* the "*" entries */
	struct sg_budget_named *named[SG_BUDGET_SCOPES];
	size_t n_named[SG_BUDGET_SCOPES];
};

const char *sg_budget_scope_name(enum sg_budget_scope s);
const char *sg_budget_period_name(enum sg_budget_period p);

/* The limits that apply to `name` (a tenant or user name) in `scope`. */
const struct sg_budget_limits *sg_budgets_for(const struct sg_budgets *b,
                                              enum sg_budget_scope scope, const char *name);

void sg_budgets_free(struct sg_budgets *b);

#endif
