/*
 * GET /v1/me/usage: every limit that binds the caller, with where they
 * stand in each.  A bucket shared across operations (a rule that counts
 * per connector or across all calls) is listed once, not once per
 * operation it binds.
 */
#include "core/sg_fmt.h"
#include "http/sg_http.h"
#include "throttle/sg_spend.h"
#include "path/sg_path.h"
#include "throttle/sg_ratetable.h"

#define MAX_LISTED 1024

/* One listed bucket: a rule and the connector or operation it counts, if any. */
struct listed {
	size_t rule;
	const void *scope;
};

struct usage {
	struct sg_req *r;
	struct sg_limiter_ids ids; /* the caller's, for the operation being listed */
	struct listed seen[MAX_LISTED];
	size_t n_seen;
	json_t *limits;
};

static bool
already_listed(struct usage *u, const struct sg_rule *rule, const void *scope)
{
	for (size_t i = 0; i < u->n_seen; i++)
		if (u->seen[i].rule == rule->index && u->seen[i].scope == scope)
			return true;
	if (u->n_seen < MAX_LISTED)
		u->seen[u->n_seen++] = (struct listed){rule->index, scope};
	return false;
}

static json_t *
window_json(const struct sg_limit *w, const struct sg_gcra_result *res)
{
	return json_pack("{s:s, s:i, s:f, s:I, s:i, s:f}", "rate", w->spec, "burst",
	                 (int)w->gcra.burst, "per_second", 1e9 / (double)w->gcra.emission_ns,
	                 "window_s", (json_int_t)sg_limit_window_s(w), "remaining",
	                 (int)res->remaining, "full_in_seconds", (double)res->reset_ns / 1e9);
}

static json_t *
rule_json(struct usage *u, const struct sg_rule *rule, const struct sg_connector *c,
          const struct sg_operation *op)
{
	struct sg_req *r = u->r;
	const struct sg_limiter *lm = &r->gw->limiter;
	json_t *o = json_pack("{s:s, s:s, s:s, s:b}", "policy", rule->name, "who",
	                      sg_rule_who_name(rule->who), "counts", sg_rule_what_name(rule->what),
	                      "shadow", rule->shadow);
	if (o == NULL)
		return NULL;
	if (rule->what != SG_WHAT_ALL)
		json_object_set_new(o, "connector", json_string(c->name));
	if (rule->what == SG_WHAT_OPERATION)
		json_object_set_new(o, "operation", json_string(op->name));
	if (rule->concurrency) {
		struct sg_gcra_result res =
		    sg_limiter_standing(lm, rule, NULL, &u->ids, r->cls, r->now_ns);
		json_object_set_new(o, "concurrency",
		                    json_pack("{s:i, s:i}", "limit", (int)rule->concurrency,
		                              "in_flight",
		                              (int)(rule->concurrency - res.remaining)));
	}
	json_t *windows = json_array();
	for (size_t w = 0; w < rule->n_windows; w++) {
		struct sg_gcra_result res =
		    sg_limiter_standing(lm, rule, &rule->windows[w], &u->ids, r->cls, r->now_ns);
		json_array_append_new(windows, window_json(&rule->windows[w], &res));
	}
	json_object_set_new(o, "windows", windows);
	return o;
}

static void
add_operation(struct usage *u, const struct sg_connector *c, const struct sg_operation *op)
{
	struct sg_req *r = u->r;
	const struct sg_rule_list *rl = sg_role_rules(r->principal.role, r->principal.mode, op);
	const struct sg_key_entry *k = r->principal.key;
	sg_limiter_ids_set(&u->ids, k->id, k->tenant, k->user, c->name, op->name,
	                   (uint32_t)r->principal.mode);
	for (uint8_t i = 0; rl && i < rl->n; i++) {
		const struct sg_rule *rule = rl->v[i];
		const void *scope = rule->what == SG_WHAT_CONNECTOR   ? (const void *)c
		                    : rule->what == SG_WHAT_OPERATION ? (const void *)op
		                                                      : NULL;
		if (!already_listed(u, rule, scope))
			json_array_append_new(u->limits, rule_json(u, rule, c, op));
	}
}

static json_t *
utc_json(int64_t s)
{
	char buf[SG_UTC_LEN];
	sg_fmt_utc(s, buf);
	return json_string(buf);
}

/* Money: each live budget with what is spent and left, and what sandbox calls would have cost. */
static json_t *
budgets_json(struct sg_req *r)
{
	const struct sg_budgets *b = r->snap->defs->policy->budgets;
	const struct sg_key_entry *k = r->principal.key;
	struct sg_spend_hold h;
	if (r->gw->spend == NULL)
		return json_null();
	sg_spend_standing(r->gw->spend, b, k->tenant, k->user, r->wall_s, &h);
	json_t *lines = json_array();
	for (uint8_t i = 0; i < h.n; i++) {
		const struct sg_spend_line *ln = &h.line[i];
		json_t *o = json_pack(
		    "{s:s, s:s, s:f, s:f, s:f}", "scope", sg_budget_scope_name(ln->scope), "period",
		    sg_budget_period_name(ln->period), "limit", (double)ln->limit / SG_MICROS,
		    "spent", (double)ln->spent / SG_MICROS, "left",
		    (double)(ln->limit > ln->spent ? ln->limit - ln->spent : 0) / SG_MICROS);
		json_object_set_new(o, "resets_at", utc_json(ln->resets_at));
		json_array_append_new(lines, o);
	}
	json_t *would = json_object();
	for (int p = 0; p < SG_BUDGET_PERIODS; p++)
		json_object_set_new(
		    would, sg_budget_period_name((enum sg_budget_period)p),
		    json_real((double)sg_spend_get(r->gw->spend, SG_BUDGET_USER, k->tenant, k->user,
		                                   (enum sg_budget_period)p, r->wall_s, true) /
		              SG_MICROS));
	return json_pack("{s:s, s:s?, s:o, s:o}", "currency", b ? b->currency : "units", "ask",
	                 b ? b->ask : NULL, "budgets", lines, "sandbox_would_have_cost", would);
}

/* The caller's tenant's calls waiting for a turn right now, and the queue's bounds. */
static json_t *
queue_json(struct sg_req *r)
{
	const struct sg_key_entry *k = r->principal.key;
	uint64_t tenant = sg_ratetable_key("t", k->tenant);
	_Atomic uint64_t *w = r->gw->waiting ? sg_ratetable_peek(r->gw->waiting, tenant) : NULL;
	return json_pack("{s:I, s:f, s:i}", "tenant_waiting", (json_int_t)(w ? atomic_load(w) : 0),
	                 "max_wait_s", r->gw->config->queue_wait_ms / 1000.0, "depth_per_thread",
	                 r->gw->config->queue_depth);
}

void
sg_http_usage(struct sg_http_ctx *c)
{
	struct sg_req *r = &c->req_state;
	if (sg_http_identify_or_reply(c, r) != 0)
		return;
	struct usage *u = calloc(1, sizeof(*u));
	if (u == NULL) {
		sg_http_send_problem(c, SG_P_INTERNAL, "out of memory");
		return;
	}
	const struct sg_catalog *cat = r->snap->defs->catalog;
	const struct sg_role *role = r->principal.role;
	u->r = r;
	u->limits = json_array();
	for (size_t i = 0; i < cat->n; i++)
		for (size_t j = 0; j < cat->v[i]->n_ops; j++)
			if (sg_role_allows(role, r->principal.mode, &cat->v[i]->ops[j]))
				add_operation(u, cat->v[i], &cat->v[i]->ops[j]);
	json_t *body =
	    json_pack("{s:o, s:{s:s, s:s}, s:o, s:o, s:o}", "principal", sg_http_principal_json(r),
	              "priority", "default", sg_class_name(role->default_class), "max",
	              sg_class_name(role->max_class), "limits", u->limits, "money", budgets_json(r),
	              "queue", queue_json(r));
	/* Called with a session token: where the session stands too. */
	if (r->principal.session)
		json_object_set_new(body, "session", sg_http_session_json(r, r->principal.session));
	free(u);
	sg_http_send_json(c, 200, body, "application/json");
}
