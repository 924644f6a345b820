/*
 * The policy's `budgets:` section (see sg_budgets.h).  Only one document
 * may hold it: two currencies or two warning levels could not be merged.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sg_yaml.h"
#include "policy/sg_budgets.h"
#include "policy/sg_policy_load.h"

#define MAX_NAMED 4096
#define MAX_AMOUNT 1e9 /* currency units per period */

static const char *const budget_keys[] = {"currency", "warn_at_percent", "ask", "tenants", "users"};
static const char *const period_keys[] = {"daily", "monthly"};
static const char *const scope_keys[] = {"tenants", "users"};

static void
compile_limits(struct pload *l, struct fy_node *n, const char *what, struct sg_budget_limits *out)
{
	if (sg_yaml_check_keys(l->d, l->file, n, what, period_keys, SG_COUNT(period_keys)) != 0 &&
	    !fy_node_is_mapping(n))
		return;
	for (int p = 0; p < SG_BUDGET_PERIODS; p++) {
		struct fy_node *v = sg_yaml_get(n, period_keys[p]);
		char label[192];
		double amount;
		snprintf(label, sizeof(label), "%s.%s", what, period_keys[p]);
		if (v == NULL || sg_yaml_num(l->d, l->file, v, label, &amount) != 0)
			continue;
		if (amount <= 0 || amount > MAX_AMOUNT)
			sg_yaml_error(l->d, l->file, v,
			              "%s: expected an amount above 0 and up to "
			              "1000000000, got %g",
			              label, amount);
		else
			out->micros[p] = llround(amount * SG_MICROS);
	}
}

static void
compile_scope(struct pload *l, struct sg_budgets *b, struct fy_node *n, enum sg_budget_scope s)
{
	char what[80], entry[160];
	snprintf(what, sizeof(what), "budgets.%s", scope_keys[s]);
	if (!fy_node_is_mapping(n)) {
		sg_yaml_error(l->d, l->file, n,
		              "%s: expected a mapping of names (or \"*\" for "
		              "everyone else) to { daily: 5, monthly: 50 }",
		              what);
		return;
	}
	size_t count = (size_t)fy_node_mapping_item_count(n);
	if (count > MAX_NAMED) {
		sg_yaml_error(l->d, l->file, n, "%s: more than %d entries", what, MAX_NAMED);
		return;
	}
	b->named[s] = calloc(count ? count : 1, sizeof(*b->named[s]));
	if (b->named[s] == NULL)
		sg_yaml_error(l->d, l->file, n, "%s: out of memory", what);
	void *it = NULL;
	struct fy_node_pair *p;
	while (b->named[s] && (p = fy_node_mapping_iterate(n, &it)) != NULL) {
		const char *name = sg_yaml_str(l->d, l->file, fy_node_pair_key(p), what);
		if (name == NULL)
			continue;
		snprintf(entry, sizeof(entry), "%s.%.64s", what, name);
		if (strcmp(name, "*") == 0) {
			compile_limits(l, fy_node_pair_value(p), entry, &b->fallback[s]);
			continue;
		}
		struct sg_budget_named *e = &b->named[s][b->n_named[s]++];
		e->name = strdup(name);
		compile_limits(l, fy_node_pair_value(p), entry, &e->limits);
	}
}

static void
compile_header(struct pload *l, struct sg_budgets *b, struct fy_node *n)
{
	struct fy_node *v = sg_yaml_get(n, "currency");
	const char *cur = v ? sg_yaml_str(l->d, l->file, v, "budgets.currency") : NULL;
	if (v == NULL)
		sg_yaml_error(l->d, l->file, n, "budgets: missing currency; add currency: EUR");
	else if (cur && (strlen(cur) != 3 || strspn(cur, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3))
		sg_yaml_error(l->d, l->file, v,
		              "budgets.currency: expected a three-letter ISO 4217 "
		              "code such as EUR or USD, got \"%.16s\"",
		              cur);
	else if (cur)
		memcpy(b->currency, cur, 4);
	long long pct = 80;
	if ((v = sg_yaml_get(n, "warn_at_percent")) != NULL)
		sg_yaml_int(l->d, l->file, v, "budgets.warn_at_percent", 1, 100, &pct);
	b->warn_pct = (uint32_t)pct;
	const char *ask = NULL;
	if ((v = sg_yaml_get(n, "ask")) != NULL)
		ask = sg_yaml_str(l->d, l->file, v, "budgets.ask");
	b->ask = strdup(ask ? ask : "Ask your platform admin for a larger budget.");
	if (b->ask == NULL)
		sg_yaml_error(l->d, l->file, v ? v : n, "budgets.ask: out of memory");
}

void
sg_policy_budgets_compile(struct pload *l, struct fy_node *n)
{
	if (l->p->budgets != NULL) {
		sg_yaml_error(l->d, l->file, n,
		              "budgets: defined in two policy documents; keep one");
		return;
	}
	if (sg_yaml_check_keys(l->d, l->file, n, "budgets", budget_keys, SG_COUNT(budget_keys)) !=
	        0 &&
	    !fy_node_is_mapping(n))
		return;
	struct sg_budgets *b = calloc(1, sizeof(*b));
	if (b == NULL) {
		sg_yaml_error(l->d, l->file, n, "out of memory");
		return;
	}
	l->p->budgets = b;
	compile_header(l, b, n);
	for (int s = 0; s < SG_BUDGET_SCOPES; s++) {
		struct fy_node *v = sg_yaml_get(n, scope_keys[s]);
		if (v != NULL)
			compile_scope(l, b, v, (enum sg_budget_scope)s);
	}
}
