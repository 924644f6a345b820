/*
 * test_budgets: the `budgets:` section compiled, and sg_spend on an injected
 * clock: holds all or nothing, the warning level, period boundaries, and
 * sandbox spending kept apart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../support/sg_testcatalog.h"
#include "../support/sg_testdiag.h"

#include "catalog/sg_catalog.h"
#include "policy/sg_policy.h"
#include "throttle/sg_spend.h"

/* 2026-11-30T23:59:50Z: ten seconds before both a day and a month end. */
#define LATE_NOV 1796083190LL
#define M SG_MICROS

static const char roles[] = "kind: policy\nname: t\nroles:\n  dev:\n"
                            "    allow: [{ operations: [\"*\"], modes: [live] }]\n"
                            "    limits: { live: { rate: 10/s } }\n";

static struct sg_policy *
compile(struct sg_catalog *cat, const char *budgets, struct sg_diags *d)
{
	char text[4096];
	snprintf(text, sizeof(text), "%s%s", roles, budgets);
	struct sg_policy_source src = {"p.yaml", text, strlen(text)};
	return sg_policy_compile(&src, 1, cat, d);
}

static void
test_compile(void **state)
{
	(void)state;
	struct sg_catalog *cat = sg_test_example_catalog();
	assert_non_null(cat);
	struct sg_diags d = {0};
	struct sg_policy *p = compile(cat,
	                              "budgets:\n  currency: EUR\n  ask: Ask Ann.\n"
	                              "  tenants:\n    \"*\": { daily: 5, monthly: 50 }\n"
	                              "    acme: { daily: 0.25 }\n"
	                              "  users:\n    \"*\": { monthly: 2 }\n",
	                              &d);
	sg_diags_print(&d, stderr);
	assert_non_null(p);
	const struct sg_budgets *b = p->budgets;
	assert_string_equal(b->currency, "EUR");
	assert_string_equal(b->ask, "Ask Ann.");
	assert_int_equal(b->warn_pct, 80);
	assert_int_equal(sg_budgets_for(b, SG_BUDGET_TENANT, "acme")->micros[SG_BUDGET_DAILY],
	                 250000);
	assert_int_equal(sg_budgets_for(b, SG_BUDGET_TENANT, "acme")->micros[SG_BUDGET_MONTHLY], 0);
	assert_int_equal(sg_budgets_for(b, SG_BUDGET_TENANT, "zed")->micros[SG_BUDGET_MONTHLY],
	                 50 * M);
	assert_int_equal(sg_budgets_for(b, SG_BUDGET_USER, "ann")->micros[SG_BUDGET_MONTHLY],
	                 2 * M);
	sg_policy_free(p);
	assert_null(compile(cat,
	                    "budgets:\n  currency: euro\n  warn_at_percent: 0\n"
	                    "  tenants:\n    acme: { daily: -1, weekly: 3 }\n",
	                    &d));
	assert_string_equal(diag_at(&d, 0),
	                    "p.yaml:8:13: budgets.currency: expected a three-letter "
	                    "ISO 4217 code such as EUR or USD, got \"euro\"");
	assert_string_equal(diag_at(&d, 1), "p.yaml:9:20: budgets.warn_at_percent: expected an "
	                                    "integer from 1 to 100, got \"0\"");
	assert_string_equal(diag_at(&d, 2), "p.yaml:11:20: budgets.tenants.acme.daily: expected an "
	                                    "amount above 0 and up to 1000000000, got -1");
	assert_true(strstr(diag_at(&d, 3), "unknown key \"weekly\"") != NULL);
	sg_diags_free(&d);
	sg_catalog_free(cat);
}

static struct sg_budgets *
budgets(int64_t tenant_daily, int64_t user_monthly)
{
	struct sg_budgets *b = calloc(1, sizeof(*b));
	assert_non_null(b);
	memcpy(b->currency, "EUR", 4);
	b->warn_pct = 80;
	b->fallback[SG_BUDGET_TENANT].micros[SG_BUDGET_DAILY] = tenant_daily;
	b->fallback[SG_BUDGET_USER].micros[SG_BUDGET_MONTHLY] = user_monthly;
	return b;
}

static void
test_hold_is_all_or_nothing(void **state)
{
	(void)state;
	struct sg_spend *sp = sg_spend_new();
	struct sg_budgets *b = budgets(10 * M, 3 * M);
	struct sg_spend_hold h;
	/* The user's monthly 3 binds before the tenant's daily 10. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sg_spend_hold(sp, b, "acme", "ann", LATE_NOV, M, &h), 0);
		assert_int_equal(h.refused, -1);
	}
	assert_int_equal(sg_spend_hold(sp, b, "acme", "ann", LATE_NOV, M, &h), 0);
	assert_int_equal(h.refused, 1);
	assert_int_equal(h.line[1].scope, SG_BUDGET_USER);
	assert_int_equal(h.line[1].resets_at, LATE_NOV + 10); /* 2026-12-01T00:00:00Z */
	/* Refused: the tenant's counter did not keep the amount. */
	assert_int_equal(
	    sg_spend_get(sp, SG_BUDGET_TENANT, "acme", "x", SG_BUDGET_DAILY, LATE_NOV, false),
	    3 * M);
	/* Another user of the tenant still has room; a release gives a hold back. */
	assert_int_equal(sg_spend_hold(sp, b, "acme", "bob", LATE_NOV, 2 * M, &h), 0);
	assert_int_equal(h.refused, -1);
	sg_spend_release(&h);
	sg_spend_release(&h);
	assert_int_equal(
	    sg_spend_get(sp, SG_BUDGET_TENANT, "acme", "x", SG_BUDGET_DAILY, LATE_NOV, false),
	    3 * M);
	sg_spend_free(sp);
	sg_budgets_free(b);
}

static void
test_warning_level_is_crossed_once(void **state)
{
	(void)state;
	struct sg_spend *sp = sg_spend_new();
	struct sg_budgets *b = budgets(10 * M, 0);
	struct sg_spend_hold h;
	int crossings = 0, warned = 0;
	for (int i = 0; i < 10; i++) {
		assert_int_equal(sg_spend_hold(sp, b, "acme", "ann", LATE_NOV, M, &h), 0);
		crossings += h.crossed;
		warned += h.warn >= 0;
	}
	assert_int_equal(crossings, 1); /* at 8 of 10 */
	assert_int_equal(warned, 3);    /* 8, 9 and 10 */
	sg_spend_free(sp);
	sg_budgets_free(b);
}

static void
test_periods_reset_at_the_boundary(void **state)
{
	(void)state;
	struct sg_spend *sp = sg_spend_new();
	struct sg_budgets *b = budgets(2 * M, 3 * M);
	struct sg_spend_hold h;
	assert_int_equal(sg_spend_hold(sp, b, "acme", "ann", LATE_NOV, 2 * M, &h), 0);
	assert_int_equal(sg_spend_hold(sp, b, "acme", "ann", LATE_NOV + 9, 1, &h), 0);
	assert_int_equal(h.refused, 0); /* the day's 2 are spent, one second before midnight */
	/* At midnight a new day and a new month begin: both counters start again. */
	assert_int_equal(sg_spend_hold(sp, b, "acme", "ann", LATE_NOV + 10, 2 * M, &h), 0);
	assert_int_equal(h.refused, -1);
	assert_int_equal(sg_spend_period_end(SG_BUDGET_MONTHLY, LATE_NOV + 10),
	                 LATE_NOV + 10 + 31 * 86400); /* 2027-01-01 */
	assert_int_equal(sg_spend_period_end(SG_BUDGET_DAILY, LATE_NOV + 10),
	                 LATE_NOV + 10 + 86400);
	sg_spend_free(sp);
	sg_budgets_free(b);
}

static void
test_sandbox_spending_is_apart(void **state)
{
	(void)state;
	struct sg_spend *sp = sg_spend_new();
	struct sg_budgets *b = budgets(2 * M, 0);
	struct sg_spend_hold h;
	sg_spend_add(sp, "acme", "ann", LATE_NOV, 5 * M, true);
	assert_int_equal(
	    sg_spend_get(sp, SG_BUDGET_USER, "acme", "ann", SG_BUDGET_MONTHLY, LATE_NOV, true),
	    5 * M);
	assert_int_equal(sg_spend_hold(sp, b, "acme", "ann", LATE_NOV, 2 * M, &h), 0);
	assert_int_equal(h.refused, -1);
	/* Restored live spending counts against the budget. */
	sg_spend_add(sp, "globex", "gus", LATE_NOV, 2 * M, false);
	assert_int_equal(sg_spend_hold(sp, b, "globex", "gus", LATE_NOV, 1, &h), 0);
	assert_int_equal(h.refused, 0);
	sg_spend_standing(sp, b, "globex", "gus", LATE_NOV, &h);
	assert_int_equal(h.line[0].spent, 2 * M);
	assert_int_equal(h.warn, 0);
	sg_spend_free(sp);
	sg_budgets_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_compile),
	    cmocka_unit_test(test_hold_is_all_or_nothing),
	    cmocka_unit_test(test_warning_level_is_crossed_once),
	    cmocka_unit_test(test_periods_reset_at_the_boundary),
	    cmocka_unit_test(test_sandbox_spending_is_apart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
