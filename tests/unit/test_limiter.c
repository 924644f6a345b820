/*
 * test_limiter: policy rules compiled against the example catalog, then
 * decided by sg_limiter on a fake clock: several windows, all-or-nothing
 * refunds, shadow rules, workload classes, concurrency caps, who shares a
 * bucket, sandbox/live separation, and the errors a policy author sees.
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
#include "obs/sg_throttle_metrics.h"
#include "policy/sg_policy.h"
#include "throttle/sg_limiter.h"

#define NOW 1000000000000ull /* an arbitrary monotonic start, 1000 s */
#define SEC 1000000000ull

/* Roles shared by every test; each test appends its own rules. */
static const char roles[] = "kind: policy\n"
                            "name: t\n"
                            "roles:\n"
                            "  dev:\n"
                            "    allow: [{ operations: [\"*\"], modes: [sandbox, live] }]\n"
                            "    limits:\n"
                            "      sandbox: { rate: 1000/s, burst: 1000 }\n"
                            "      live: { rate: 1000/s, burst: 1000 }\n"
                            "    priority: { default: normal, max: critical }\n"
                            "  ops:\n"
                            "    allow: [{ operations: [\"crm.*\"], modes: [sandbox] }]\n"
                            "    limits: { sandbox: { rate: 1000/s, burst: 1000 } }\n";

struct fx {
	struct sg_catalog *cat;
	struct sg_policy *p;
	struct sg_limiter lm;
	struct sg_diags d;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (f == NULL || (f->cat = sg_test_example_catalog()) == NULL ||
	    sg_limiter_init(&f->lm, 4096) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	sg_policy_free(f->p);
	sg_limiter_fini(&f->lm);
	sg_catalog_free(f->cat);
	sg_diags_free(&f->d);
	free(f);
	return 0;
}

/* Compiles roles plus `rules` (a YAML "rules:" block); NULL with errors in f->d. */
static struct sg_policy *
compile(struct fx *f, const char *rules)
{
	char text[8192];
	snprintf(text, sizeof(text), "%s%s", roles, rules);
	struct sg_policy_source src = {"p.yaml", text, strlen(text)};
	sg_diags_free(&f->d);
	memset(&f->d, 0, sizeof(f->d));
	sg_policy_free(f->p);
	f->p = sg_policy_compile(&src, 1, f->cat, &f->d);
	return f->p;
}

static const struct sg_rule_list *
rules_for(struct fx *f, const char *role, enum sg_mode m, const char *conn, const char *op)
{
	const struct sg_connector *c = sg_catalog_find(f->cat, conn);
	assert_non_null(c);
	const struct sg_rule_list *rl =
	    sg_role_rules(sg_policy_role(f->p, role), m, sg_connector_op(c, op));
	assert_non_null(rl);
	return rl;
}

static struct sg_limiter_ids
ids_of(const char *key, const char *tenant, const char *user, enum sg_mode m)
{
	struct sg_limiter_ids ids;
	sg_limiter_ids_set(&ids, key, tenant, user, "crm", "create_contact", (uint32_t)m);
	return ids;
}

/* Admitted calls of `cost` at a steady `every_ns` pace over [start, end). */
static unsigned
admitted(struct fx *f, const struct sg_rule_list *rl, const struct sg_limiter_ids *ids,
         enum sg_class cls, uint32_t cost, uint64_t start, uint64_t end, uint64_t every_ns)
{
	unsigned n = 0;
	struct sg_verdict v;
	for (uint64_t t = start; t < end; t += every_ns) {
		assert_int_equal(sg_limiter_take(&f->lm, rl, ids, cls, cost, t, &v), 0);
		n += v.allowed;
		sg_limiter_release(&v);
	}
	return n;
}

static void
test_lists_order_and_content(void **state)
{
	struct fx *f = *state;
	assert_non_null(
	    compile(f, "rules:\n"
	               "  - { name: shadowed, bucket_per: [user], windows: [{ rate: 1/s }], "
	               "shadow: true }\n"
	               "  - { name: cap, bucket_per: [tenant], concurrency: 3 }\n"
	               "  - { name: crm-only, match: { operations: [\"crm.*\"] }, "
	               "bucket_per: [tenant, connector], windows: [{ rate: 5/s }] }\n"
	               "  - { name: ops-live, match: { roles: [ops], modes: [live] }, "
	               "bucket_per: [], windows: [{ rate: 5/s }] }\n"));
	const struct sg_rule_list *rl = rules_for(f, "dev", SG_MODE_LIVE, "crm", "create_contact");
	/* Enforced windows (role, upstream, crm-only), then the cap, then shadow. */
	assert_int_equal(rl->n, 5);
	assert_string_equal(rl->v[0]->name, "dev:live");
	assert_string_equal(rl->v[1]->name, "upstream:crm");
	assert_string_equal(rl->v[2]->name, "crm-only");
	assert_string_equal(rl->v[3]->name, "cap");
	assert_string_equal(rl->v[4]->name, "shadowed");
	/* The upstream limit binds live calls only; crm-only does not bind mail. */
	rl = rules_for(f, "dev", SG_MODE_SANDBOX, "mail", "send");
	assert_int_equal(rl->n, 3);
	assert_string_equal(rl->v[0]->name, "dev:sandbox");
	assert_string_equal(rl->v[1]->name, "cap");
	/* ops-live matches no list of "ops" in sandbox, and never "dev". */
	rl = rules_for(f, "ops", SG_MODE_SANDBOX, "crm", "create_contact");
	for (uint8_t i = 0; i < rl->n; i++)
		assert_string_not_equal(rl->v[i]->name, "ops-live");
}

static void
test_several_windows_are_exact(void **state)
{
	struct fx *f = *state;
	/* 10/s with a burst of 5, and 30/m with a burst of 30. */
	assert_non_null(compile(f, "rules:\n  - name: two\n    bucket_per: [api_key]\n"
	                           "    windows: [{ rate: 10/s, burst: 5 }, { rate: 30/m }]\n"));
	const struct sg_rule_list *rl =
	    rules_for(f, "dev", SG_MODE_SANDBOX, "crm", "create_contact");
	struct sg_limiter_ids ids = ids_of("k1", "acme", "ann", SG_MODE_SANDBOX);
	/*
	 * Hammering every 1 ms over [0, 2 s): the short window gives b + r*t =
	 * 5 + 20, less the call due at exactly 2 s, which falls outside.
	 */
	assert_int_equal(admitted(f, rl, &ids, SG_CLASS_NORMAL, 1, NOW, NOW + 2 * SEC, SEC / 1000),
	                 24);
	/* Then the long window binds: 30 + 0.5/s * 12 s = 36 by t = 12 s, so 12 more. */
	unsigned more =
	    admitted(f, rl, &ids, SG_CLASS_NORMAL, 1, NOW + 2 * SEC, NOW + 12 * SEC, SEC / 1000);
	assert_in_range(more, 11, 12);
}

static void
test_weighted_cost_and_refund(void **state)
{
	struct fx *f = *state;
	assert_non_null(compile(f,
	                        "rules:\n"
	                        "  - { name: wide, bucket_per: [tenant], windows: [{ rate: 1/s, "
	                        "burst: 10 }] }\n"
	                        "  - { name: narrow, bucket_per: [api_key], windows: [{ rate: 1/s, "
	                        "burst: 4 }] }\n"));
	const struct sg_rule_list *rl =
	    rules_for(f, "dev", SG_MODE_SANDBOX, "crm", "create_contact");
	struct sg_limiter_ids ids = ids_of("k1", "acme", "ann", SG_MODE_SANDBOX);
	struct sg_verdict v;
	/* Cost 3: narrow (burst 4) admits once, then refuses; wide must get its 3 back. */
	assert_int_equal(sg_limiter_take(&f->lm, rl, &ids, SG_CLASS_NORMAL, 3, NOW, &v), 0);
	assert_true(v.allowed);
	assert_int_equal(sg_limiter_take(&f->lm, rl, &ids, SG_CLASS_NORMAL, 3, NOW, &v), 0);
	assert_false(v.allowed);
	assert_int_equal(v.n_violated, 1);
	assert_string_equal(v.violated[0].rule->name, "narrow");
	assert_int_equal(v.retry_after_ns, 2 * SEC); /* 2 more units must drain */
	const struct sg_rule *wide = rl->v[1];
	assert_string_equal(wide->name, "wide");
	struct sg_gcra_result s =
	    sg_limiter_standing(&f->lm, wide, &wide->windows[0], &ids, SG_CLASS_NORMAL, NOW);
	assert_int_equal(s.remaining, 7); /* 10 - 3: the refused call spent nothing */
	/* A cost above a burst can never fit: no wait would help. */
	assert_int_equal(sg_limiter_take(&f->lm, rl, &ids, SG_CLASS_NORMAL, 5, NOW + 60 * SEC, &v),
	                 0);
	assert_false(v.allowed);
	assert_true(v.retry_after_ns == UINT64_MAX);
}

static void
test_violations_are_all_named(void **state)
{
	struct fx *f = *state;
	assert_non_null(
	    compile(f, "rules:\n"
	               "  - { name: a, bucket_per: [api_key], windows: [{ rate: 1/s, "
	               "burst: 1 }, { rate: 1/m, burst: 1 }] }\n"
	               "  - { name: b, bucket_per: [user], windows: [{ rate: 1/h, burst: 1 }] "
	               "}\n"));
	const struct sg_rule_list *rl =
	    rules_for(f, "dev", SG_MODE_SANDBOX, "crm", "create_contact");
	struct sg_limiter_ids ids = ids_of("k1", "acme", "ann", SG_MODE_SANDBOX);
	struct sg_verdict v;
	assert_int_equal(sg_limiter_take(&f->lm, rl, &ids, SG_CLASS_NORMAL, 1, NOW, &v), 0);
	assert_true(v.allowed);
	assert_int_equal(sg_limiter_take(&f->lm, rl, &ids, SG_CLASS_NORMAL, 1, NOW, &v), 0);
	assert_false(v.allowed);
	assert_int_equal(v.n_violated, 3);
	assert_int_equal(v.retry_after_ns, 3600 * SEC); /* the longest wait */
	assert_string_equal(v.closest.rule->name, "a");
}

static void
test_shadow_counts_but_never_refuses(void **state)
{
	struct fx *f = *state;
	assert_non_null(compile(f, "rules:\n  - { name: trial-limit, bucket_per: [user], windows: "
	                           "[{ rate: 1/s, burst: 2 }], shadow: true }\n"));
	const struct sg_rule_list *rl =
	    rules_for(f, "dev", SG_MODE_SANDBOX, "crm", "create_contact");
	struct sg_metrics_rule *m = sg_metrics_rule("trial-limit");
	uint64_t before = m->shadow;
	struct sg_limiter_ids ids = ids_of("k1", "acme", "ann", SG_MODE_SANDBOX);
	assert_int_equal(admitted(f, rl, &ids, SG_CLASS_NORMAL, 1, NOW, NOW + 10, 1), 10);
	assert_int_equal(m->shadow - before, 8); /* it would have let 2 through */
}

static void
test_classes_share_a_bucket(void **state)
{
	struct fx *f = *state;
	assert_non_null(compile(f,
	                        "rules:\n  - { name: shared, bucket_per: [tenant], windows: [{ "
	                        "rate: 1/m, burst: 10 }], classes: { normal: 80, background: 30 } "
	                        "}\n"));
	const struct sg_rule_list *rl =
	    rules_for(f, "dev", SG_MODE_SANDBOX, "crm", "create_contact");
	struct sg_limiter_ids ids = ids_of("k1", "acme", "ann", SG_MODE_SANDBOX);
	/* Background fills 30% of the bucket, normal up to 80%, critical the rest. */
	assert_int_equal(admitted(f, rl, &ids, SG_CLASS_BACKGROUND, 1, NOW, NOW + 20, 1), 3);
	assert_int_equal(admitted(f, rl, &ids, SG_CLASS_NORMAL, 1, NOW, NOW + 20, 1), 5);
	assert_int_equal(admitted(f, rl, &ids, SG_CLASS_CRITICAL, 1, NOW, NOW + 20, 1), 2);
}

static void
test_concurrency_cap_and_release(void **state)
{
	struct fx *f = *state;
	assert_non_null(compile(f, "rules:\n  - { name: two-at-once, bucket_per: [tenant], "
	                           "concurrency: 2 }\n"));
	const struct sg_rule_list *rl =
	    rules_for(f, "dev", SG_MODE_SANDBOX, "crm", "create_contact");
	struct sg_limiter_ids a = ids_of("k1", "acme", "ann", SG_MODE_SANDBOX);
	struct sg_limiter_ids other = ids_of("k9", "globex", "gus", SG_MODE_SANDBOX);
	struct sg_verdict v1, v2, v3;
	assert_int_equal(sg_limiter_take(&f->lm, rl, &a, SG_CLASS_NORMAL, 1, NOW, &v1), 0);
	assert_int_equal(sg_limiter_take(&f->lm, rl, &a, SG_CLASS_NORMAL, 1, NOW, &v2), 0);
	assert_true(v1.allowed && v2.allowed);
	assert_int_equal(sg_limiter_take(&f->lm, rl, &a, SG_CLASS_NORMAL, 1, NOW, &v3), 0);
	assert_false(v3.allowed);
	assert_null(v3.violated[0].window);
	/* Another tenant has its own slots. */
	assert_int_equal(sg_limiter_take(&f->lm, rl, &other, SG_CLASS_NORMAL, 1, NOW, &v3), 0);
	assert_true(v3.allowed);
	sg_limiter_release(&v3);
	sg_limiter_release(&v1);
	sg_limiter_release(&v1); /* twice is harmless */
	assert_int_equal(sg_limiter_take(&f->lm, rl, &a, SG_CLASS_NORMAL, 1, NOW, &v1), 0);
	assert_true(v1.allowed);
	sg_limiter_release(&v1);
	sg_limiter_release(&v2);
	struct sg_gcra_result s =
	    sg_limiter_standing(&f->lm, rl->v[1], NULL, &a, SG_CLASS_NORMAL, NOW);
	assert_int_equal(s.remaining, 2);
}

/*
 * A take keeps the keys it prefetched for its first 32 cells and computes
 * the rest as it goes; rules past that point must bind exactly the same.
 */
static void
test_rules_past_the_prefetched_cells_still_bind(void **state)
{
	struct fx *f = *state;
	char rules[6144] = "rules:\n";
	size_t n = strlen(rules);
	/*
	 * Windows come first in a take, caps after them: the role's window, 24
	 * of six wide rules and the last one make 26, and seven caps make 33.
	 * (A policy allows 16 limits and 32 windows per operation, and live
	 * calls add the upstream's.)
	 */
	for (int i = 0; i < 6; i++)
		n += (size_t)snprintf(
		    rules + n, sizeof(rules) - n,
		    "  - { name: wide%d, bucket_per: [user], windows: [{ rate: 1000/s }, "
		    "{ rate: 2000/s }, { rate: 3000/s }, { rate: 4000/s }] }\n",
		    i);
	n += (size_t)snprintf(rules + n, sizeof(rules) - n,
	                      "  - { name: last, bucket_per: [user], windows: [{ rate: 3/m }] }\n");
	for (int i = 0; i < 6; i++)
		n += (size_t)snprintf(rules + n, sizeof(rules) - n,
		                      "  - { name: cap%d, bucket_per: [user], concurrency: 100 }\n",
		                      i);
	snprintf(rules + n, sizeof(rules) - n,
	         "  - { name: lastcap, bucket_per: [user], concurrency: 1 }\n");
	if (compile(f, rules) == NULL)
		fail_msg("%s", diag_at(&f->d, 0));
	const struct sg_rule_list *rl =
	    rules_for(f, "dev", SG_MODE_SANDBOX, "crm", "create_contact");
	assert_int_equal(rl->n, 15);
	assert_string_equal(rl->v[14]->name, "lastcap");
	struct sg_limiter_ids ids = ids_of("k1", "acme", "ann", SG_MODE_SANDBOX);
	assert_int_equal(admitted(f, rl, &ids, SG_CLASS_NORMAL, 1, NOW, NOW + SEC, SEC / 1000), 3);
	struct sg_verdict v;
	assert_int_equal(sg_limiter_take(&f->lm, rl, &ids, SG_CLASS_NORMAL, 1, NOW + SEC, &v), 0);
	assert_false(v.allowed);
	assert_string_equal(v.violated[0].rule->name, "last");
	/* Another user: the last cap holds one call at a time. */
	struct sg_limiter_ids bob = ids_of("k2", "acme", "bob", SG_MODE_SANDBOX);
	struct sg_verdict held, refused;
	assert_int_equal(sg_limiter_take(&f->lm, rl, &bob, SG_CLASS_NORMAL, 1, NOW, &held), 0);
	assert_true(held.allowed);
	assert_int_equal(sg_limiter_take(&f->lm, rl, &bob, SG_CLASS_NORMAL, 1, NOW, &refused), 0);
	assert_false(refused.allowed);
	assert_string_equal(refused.violated[0].rule->name, "lastcap");
	/* And the call holds the cap's own slot, the one a standing query finds. */
	struct sg_gcra_result s =
	    sg_limiter_standing(&f->lm, rl->v[14], NULL, &bob, SG_CLASS_NORMAL, NOW);
	assert_int_equal(s.remaining, 0);
	sg_limiter_release(&held);
	s = sg_limiter_standing(&f->lm, rl->v[14], NULL, &bob, SG_CLASS_NORMAL, NOW);
	assert_int_equal(s.remaining, 1);
}

static void
test_who_shares_and_modes_never_do(void **state)
{
	struct fx *f = *state;
	assert_non_null(compile(f, "rules:\n  - { name: per-tenant, bucket_per: [tenant], windows: "
	                           "[{ rate: 1/m, burst: 2 }] }\n"));
	const struct sg_rule_list *rl =
	    rules_for(f, "dev", SG_MODE_SANDBOX, "crm", "create_contact");
	const struct sg_rule_list *live =
	    rules_for(f, "dev", SG_MODE_LIVE, "crm", "create_contact");
	struct sg_limiter_ids ann = ids_of("k1", "acme", "ann", SG_MODE_SANDBOX);
	struct sg_limiter_ids bob = ids_of("k2", "acme", "bob", SG_MODE_SANDBOX);
	struct sg_limiter_ids bob_live = ids_of("k3", "acme", "bob", SG_MODE_LIVE);
	struct sg_limiter_ids eve = ids_of("k4", "evil", "eve", SG_MODE_SANDBOX);
	assert_int_equal(admitted(f, rl, &ann, SG_CLASS_NORMAL, 1, NOW, NOW + 1, 1), 1);
	assert_int_equal(admitted(f, rl, &bob, SG_CLASS_NORMAL, 1, NOW, NOW + 5, 1), 1);
	assert_int_equal(admitted(f, live, &bob_live, SG_CLASS_NORMAL, 1, NOW, NOW + 5, 1), 2);
	assert_int_equal(admitted(f, rl, &eve, SG_CLASS_NORMAL, 1, NOW, NOW + 5, 1), 2);
}

static void
test_charge_puts_bucket_in_debt(void **state)
{
	struct fx *f = *state;
	assert_non_null(compile(f, "rules:\n  - { name: metered, bucket_per: [api_key], windows: "
	                           "[{ rate: 1/s, burst: 5 }] }\n"));
	const struct sg_rule_list *rl =
	    rules_for(f, "dev", SG_MODE_SANDBOX, "crm", "create_contact");
	struct sg_limiter_ids ids = ids_of("k1", "acme", "ann", SG_MODE_SANDBOX);
	struct sg_verdict v;
	assert_int_equal(sg_limiter_take(&f->lm, rl, &ids, SG_CLASS_NORMAL, 1, NOW, &v), 0);
	sg_limiter_charge(&v, NOW, 9); /* the upstream said the call cost 10 in all */
	assert_int_equal(sg_limiter_take(&f->lm, rl, &ids, SG_CLASS_NORMAL, 1, NOW, &v), 0);
	assert_false(v.allowed);
	assert_int_equal(v.retry_after_ns, 6 * SEC); /* 10 owed, 4 of tolerance */
}

static void
test_rule_errors(void **state)
{
	struct fx *f = *state;
	assert_null(compile(f,
	                    "rules:\n"
	                    "  - name: Bad Name\n    bucket_per: []\n    concurrency: 1\n"
	                    "  - name: r2\n    match: { roles: [devv], operations: [\"crn.*\"] }\n"
	                    "    bucket_per: [tenant, usr]\n    windows: [{ rate: 1/s }]\n"
	                    "  - name: r3\n    bucket_per: [tenant, user]\n    concurrency: 2\n"
	                    "    windows: [{ rate: 1/s }]\n"
	                    "  - name: r3\n    bucket_per: []\n    concurrency: 1\n"
	                    "  - name: r5\n    windows: [{ rate: 1/s }]\n"
	                    "    classes: { critical: 50 }\n"));
	assert_string_equal(diag_at(&f->d, 0),
	                    "p.yaml:14:11: rule name: use 1 to 64 lowercase "
	                    "letters, digits, '_' or '-', starting with a letter, "
	                    "got \"Bad Name\"");
	assert_string_equal(diag_at(&f->d, 1),
	                    "p.yaml:18:22: rule \"r2\": match.roles: unknown role "
	                    "\"devv\" (did you mean \"dev\"?)");
	assert_string_equal(diag_at(&f->d, 2),
	                    "p.yaml:18:42: rule \"r2\": match.operations: "
	                    "\"crn.*\" matches no operation in the catalog (did you "
	                    "mean \"crm\"?); use connector.operation, connector.* or *");
	assert_string_equal(diag_at(&f->d, 3),
	                    "p.yaml:19:26: rule \"r2\": bucket_per: unknown "
	                    "\"usr\" (did you mean \"user\"?); use api_key, user or "
	                    "tenant, and connector or operation");
	assert_true(strstr(diag_at(&f->d, 4), "p.yaml:21:5: rule \"r3\": give either windows") !=
	            NULL);
	assert_string_equal(diag_at(&f->d, 5),
	                    "p.yaml:22:26: rule \"r3\": bucket_per: name at "
	                    "most one of api_key, user and tenant, and at most one "
	                    "of connector and operation");
	assert_string_equal(diag_at(&f->d, 6), "p.yaml:25:11: rule \"r3\" defined twice");
	assert_true(strstr(diag_at(&f->d, 7), "rule \"r5\": missing bucket_per") != NULL);
	assert_true(strstr(diag_at(&f->d, 8), "unknown key \"critical\"") != NULL);
	assert_int_equal(f->d.n, 9);
}

static void
test_priority_settings(void **state)
{
	struct fx *f = *state;
	assert_non_null(compile(f, ""));
	const struct sg_role *dev = sg_policy_role(f->p, "dev");
	assert_int_equal(dev->default_class, SG_CLASS_NORMAL);
	assert_int_equal(dev->max_class, SG_CLASS_CRITICAL);
	assert_int_equal(sg_policy_role(f->p, "ops")->max_class, SG_CLASS_NORMAL);
	char text[1024];
	snprintf(text, sizeof(text),
	         "kind: policy\nname: t\nroles:\n  x:\n"
	         "    allow: [{ operations: [\"*\"], modes: [sandbox] }]\n"
	         "    limits: { sandbox: { rate: 1/s } }\n"
	         "    priority: { default: critical, max: urgent }\n");
	struct sg_policy_source src = {"p.yaml", text, strlen(text)};
	sg_diags_free(&f->d);
	memset(&f->d, 0, sizeof(f->d));
	assert_null(sg_policy_compile(&src, 1, f->cat, &f->d));
	assert_string_equal(diag_at(&f->d, 0), "p.yaml:7:41: role \"x\": priority.max: expected "
	                                       "critical, normal or background, got \"urgent\"");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_lists_order_and_content, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_several_windows_are_exact, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_weighted_cost_and_refund, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_violations_are_all_named, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shadow_counts_but_never_refuses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_classes_share_a_bucket, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrency_cap_and_release, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rules_past_the_prefetched_cells_still_bind, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_who_shares_and_modes_never_do, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_charge_puts_bucket_in_debt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rule_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_priority_settings, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
