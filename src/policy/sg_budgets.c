/*
 * sg_budgets: lookups into a compiled `budgets:` section.
 */
#include "policy/sg_budgets.h"

#include <stdlib.h>
#include <string.h>

static const char *const scope_names[] = {"tenant", "user"};
static const char *const period_names[] = {"daily", "monthly"};

const char *
sg_budget_scope_name(enum sg_budget_scope s)
{
	return (unsigned)s < SG_BUDGET_SCOPES ? scope_names[s] : "unknown";
}

const char *
sg_budget_period_name(enum sg_budget_period p)
{
	return (unsigned)p < SG_BUDGET_PERIODS ? period_names[p] : "unknown";
}

/* Named entries are few and looked up once per priced call; a scan is enough. */
const struct sg_budget_limits *
sg_budgets_for(const struct sg_budgets *b, enum sg_budget_scope scope, const char *name)
{
	if (b == NULL || (unsigned)scope >= SG_BUDGET_SCOPES)
		return NULL;
	for (size_t i = 0; i < b->n_named[scope]; i++)
		if (b->named[scope][i].name && strcmp(b->named[scope][i].name, name) == 0)
			return &b->named[scope][i].limits;
	return &b->fallback[scope];
}

void
sg_budgets_free(struct sg_budgets *b)
{
	if (b == NULL)
		return;
	for (int s = 0; s < SG_BUDGET_SCOPES; s++) {
		for (size_t i = 0; i < b->n_named[s]; i++)
			free(b->named[s][i].name);
		free(b->named[s]);
	}
	free(b->ask);
	free(b);
}
