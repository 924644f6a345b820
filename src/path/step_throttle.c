/*
 * throttle: every limit that binds the call, all or nothing (sg_limiter).
 * Runs after validate, so malformed requests never spend capacity, and
 * before route, so a slow upstream cannot let a client start many calls
 * before the first counts.  An operation's weight is the cost of one call.
 */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/sg_fmt.h"
#include "obs/sg_metrics.h"
#include "obs/sg_throttle_metrics.h"
#include "path/step_throttle_int.h"

_Static_assert(sizeof(struct sg_throttle_call) + 64 <= SG_REQ_ARENA,
               "the throttle step's context and route's must fit the request's arena");

static void
release(struct sg_req *r, void *ctx)
{
	struct sg_throttle_call *tc = ctx;
	struct sg_session *ss = r->principal.session;
	sg_limiter_release(&tc->verdict);
	/* Only a call that was answered costs anything. */
	if (r->status != 200) {
		sg_spend_release(&tc->spend);
		if (ss != NULL && tc->session_hold.call) {
			atomic_fetch_sub(&ss->calls, 1);
			atomic_fetch_add(&ss->refused, 1);
			/*
			 * The session's window unit is not given back: a refund is
			 * exact only right after the take, and this may be seconds later.
			 */
			atomic_fetch_sub(&ss->spent_micros, tc->session_hold.cost);
		}
	}
	if (tc->adaptive != NULL)
		sg_adaptive_release(tc->adaptive, r->status == 200, tc->upstream_ns);
	sg_throttle_remote_free(tc);
}

struct sg_throttle_call *
sg_throttle_call(struct sg_req *r)
{
	struct sg_throttle_call *tc = sg_req_slot(r, SG_SLOT_THROTTLE);
	if (tc != NULL)
		return tc;
	tc = sg_req_slot_get(r, SG_SLOT_THROTTLE, sizeof(*tc), release);
	if (tc == NULL)
		return NULL; /* defensive: the assertion above rules it out */
	tc->r = r;
	tc->spend.refused = tc->spend.warn = -1;
	return tc;
}

const struct sg_verdict *
sg_throttle_verdict(const struct sg_req *r)
{
	const struct sg_throttle_call *tc = sg_req_slot(r, SG_SLOT_THROTTLE);
	return tc != NULL && tc->has_verdict ? &tc->verdict : NULL;
}

const struct sg_spend_line *
sg_throttle_budget_refused(const struct sg_req *r)
{
	const struct sg_throttle_call *tc = sg_req_slot(r, SG_SLOT_THROTTLE);
	return tc != NULL && tc->spend.refused >= 0 ? &tc->spend.line[tc->spend.refused] : NULL;
}

const struct sg_spend_line *
sg_throttle_budget_warning(const struct sg_req *r)
{
	const struct sg_throttle_call *tc = sg_req_slot(r, SG_SLOT_THROTTLE);
	return tc != NULL && tc->spend.warn >= 0 ? &tc->spend.line[tc->spend.warn] : NULL;
}

bool
sg_throttle_budget_crossed(const struct sg_req *r)
{
	const struct sg_throttle_call *tc = sg_req_slot(r, SG_SLOT_THROTTLE);
	return tc != NULL && tc->spend.crossed && tc->spend.warn >= 0;
}

/* A request may ask for less than its role allows, never more. */
static int
resolve_class(struct sg_req *r)
{
	const struct sg_role *role = r->principal.role;
	enum sg_class asked;
	r->cls = role->default_class;
	if (r->priority == NULL)
		return 0;
	if (sg_class_parse(r->priority, &asked) != 0)
		return -1;
	r->cls = asked < role->max_class ? role->max_class : asked;
	return 0;
}

static void
set_ids(struct sg_req *r, struct sg_throttle_call *tc, const struct sg_connector *c,
        const struct sg_operation *op)
{
	const struct sg_key_entry *k = r->principal.key;
	sg_limiter_ids_set(&tc->ids, k->id, k->tenant, k->user, c->name, op->name,
	                   (uint32_t)r->principal.mode);
}

int
sg_throttle_standing(struct sg_req *r)
{
	struct sg_throttle_call *tc;
	if (r->principal.role == NULL || r->connector == NULL || r->op == NULL ||
	    (tc = sg_throttle_call(r)) == NULL)
		return -1;
	const struct sg_rule_list *rl = sg_role_rules(r->principal.role, r->principal.mode, r->op);
	if (rl == NULL)
		return -1;
	/* Into a copy: the call may hold slots in tc->verdict that finish must release. */
	struct sg_verdict peek;
	set_ids(r, tc, r->connector, r->op);
	sg_limiter_peek(&r->gw->limiter, rl, &tc->ids, r->principal.role->default_class, r->now_ns,
	                &peek);
	tc->verdict.closest = peek.closest;
	tc->verdict.has_closest = peek.has_closest;
	tc->has_verdict = peek.has_closest;
	return peek.has_closest ? 0 : -1;
}

static const char *const who_phrase[] = {
    "for your API key",
    "for you",
    "for your tenant",
    "for everyone",
};
static const char *const what_phrase[] = {
    "across all calls",
    "per connector",
    "per operation",
};

/* violated-policies: which limits refused the call and how long each needs. */
static int
write_violations(struct sg_jbuf *out, const struct sg_verdict *v)
{
	struct sg_jw w;
	sg_jw_begin(&w, out);
	sg_jw_object(&w);
	sg_jw_keyz(&w, "violated-policies");
	sg_jw_array(&w);
	for (uint8_t i = 0; i < v->n_violated; i++) {
		const struct sg_limit_hit *h = &v->violated[i];
		sg_jw_object(&w);
		sg_jw_keyz(&w, "policy");
		sg_jw_stringz(&w, h->rule->name);
		sg_jw_keyz(&w, "who");
		sg_jw_stringz(&w, sg_rule_who_name(h->rule->who));
		sg_jw_keyz(&w, "counts");
		sg_jw_stringz(&w, sg_rule_what_name(h->rule->what));
		sg_jw_keyz(&w, "quota");
		sg_jw_int(&w, h->res.limit);
		if (h->window) {
			sg_jw_keyz(&w, "rate");
			sg_jw_stringz(&w, h->window->spec);
		}
		if (h->res.retry_after_ns != UINT64_MAX) {
			sg_jw_keyz(&w, "retry_after_s");
			sg_jw_uint(&w, (h->res.retry_after_ns + 999999999) / 1000000000);
		}
		sg_jw_object_end(&w);
	}
	sg_jw_array_end(&w);
	sg_jw_object_end(&w);
	return sg_jw_end(&w);
}

enum sg_step_rc
sg_throttle_refuse(struct sg_req *r, struct sg_throttle_call *tc)
{
	/* Defensive: every caller has a violation to name. */
	if (tc->verdict.n_violated == 0) {
		tc->has_verdict = false;
		return sg_req_fail(r, SG_P_CAPACITY, "the gateway could not decide this call");
	}
	const struct sg_limit_hit *h = &tc->verdict.violated[0];
	const struct sg_rule *rule = h->rule;
	/* Out of memory a refusal that names no limit would mislead: a 500 instead. */
	if (write_violations(&r->problem_ext, &tc->verdict) != 0)
		return sg_req_fail(r, SG_P_INTERNAL, "out of memory while refusing the call");
	if (h->window == NULL)
		return sg_req_fail(
		    r, SG_P_CONCURRENCY_LIMITED,
		    "limit \"%s\" allows %u calls at once %s %s; that many are already running",
		    rule->name, rule->concurrency, who_phrase[rule->who], what_phrase[rule->what]);
	if (tc->verdict.retry_after_ns == UINT64_MAX)
		return sg_req_fail(
		    r, SG_P_RATE_LIMITED,
		    "%s.%s costs %u units but limit \"%s\" allows at most %u at once",
		    r->connector->name, r->op->name, r->op->weight, rule->name, h->res.limit);
	return sg_req_fail(
	    r, SG_P_RATE_LIMITED,
	    "limit \"%s\" allows %s with bursts of %u %s %s; this call would exceed it", rule->name,
	    h->window->spec, h->window->gcra.burst, who_phrase[rule->who], what_phrase[rule->what]);
}

/*
 * Stripe's fleet-usage shedder: when the gateway is busy, background work
 * goes first, then normal work, and critical work keeps the last share.
 * Load counts calls in flight, waiting ones included; this call is already in it.
 */
static enum sg_step_rc
shed_or_next(struct sg_req *r)
{
	const struct sg_config *cfg = r->gw->config;
	/* Calls waiting in queues are in flight already: they arrived and are not answered. */
	int64_t load = atomic_load_explicit(&r->gw->in_flight, memory_order_relaxed);
	int64_t max = cfg->shed_max_in_flight;
	int64_t limit = r->cls == SG_CLASS_BACKGROUND ? max * cfg->shed_background_pct / 100
	                : r->cls == SG_CLASS_NORMAL   ? max * cfg->shed_normal_pct / 100
	                                              : max;
	if (load <= limit)
		return SG_STEP_NEXT;
	atomic_fetch_add_explicit(&sg_throttle_stats.shed[r->cls], 1, memory_order_relaxed);
	return sg_req_fail(r, SG_P_CAPACITY,
	                   "the gateway is busy (%lld calls in progress) and is turning away %s "
	                   "work first",
	                   (long long)load, sg_class_name(r->cls));
}

static int
write_budget(struct sg_jbuf *out, const struct sg_spend_line *ln, const struct sg_budgets *b,
             const char *resets)
{
	struct sg_jw w;
	sg_jw_begin(&w, out);
	sg_jw_object(&w);
	sg_jw_keyz(&w, "budget");
	sg_jw_object(&w);
	sg_jw_keyz(&w, "scope");
	sg_jw_stringz(&w, sg_budget_scope_name(ln->scope));
	sg_jw_keyz(&w, "period");
	sg_jw_stringz(&w, sg_budget_period_name(ln->period));
	sg_jw_keyz(&w, "limit");
	sg_jw_double(&w, (double)ln->limit / SG_MICROS);
	sg_jw_keyz(&w, "spent");
	sg_jw_double(&w, (double)ln->spent / SG_MICROS);
	sg_jw_keyz(&w, "currency");
	sg_jw_stringz(&w, b->currency);
	sg_jw_keyz(&w, "resets_at");
	sg_jw_stringz(&w, resets);
	sg_jw_keyz(&w, "ask");
	sg_jw_stringz(&w, b->ask);
	sg_jw_object_end(&w);
	sg_jw_object_end(&w);
	return sg_jw_end(&w);
}

static enum sg_step_rc
refuse_budget(struct sg_req *r, struct sg_throttle_call *tc, const struct sg_budgets *b)
{
	const struct sg_spend_line *ln = &tc->spend.line[tc->spend.refused];
	char resets[SG_UTC_LEN];
	sg_fmt_utc(ln->resets_at, resets);
	if (write_budget(&r->problem_ext, ln, b, resets) != 0)
		return sg_req_fail(r, SG_P_INTERNAL, "out of memory while refusing the call");
	return sg_req_fail(r, SG_P_BUDGET_EXCEEDED,
	                   "%s.%s costs %.4f %s, and your %s's %s budget of %.2f %s has %.4f %s "
	                   "left; it resets at %s. %s",
	                   r->connector->name, r->op->name, r->op->cost, b->currency,
	                   sg_budget_scope_name(ln->scope), sg_budget_period_name(ln->period),
	                   (double)ln->limit / SG_MICROS, b->currency,
	                   (double)(ln->limit - ln->spent) / SG_MICROS, b->currency, resets,
	                   b->ask);
}

/*
 * Live calls hold their price against every budget before any limit is
 * taken; a call refused later gives it back when it ends (release).
 * Sandbox calls cost nothing real and are never held.
 */
static enum sg_step_rc
hold_budget(struct sg_req *r, struct sg_throttle_call *tc)
{
	const struct sg_budgets *b = r->snap->defs->policy->budgets;
	const struct sg_key_entry *k = r->principal.key;
	int64_t cost = llround(r->op->cost * SG_MICROS);
	tc->spend.refused = tc->spend.warn = -1;
	if (b == NULL || r->gw->spend == NULL || r->principal.mode != SG_MODE_LIVE || cost <= 0)
		return SG_STEP_NEXT;
	if (sg_spend_hold(r->gw->spend, b, k->tenant, k->user, r->wall_s, cost, &tc->spend) != 0)
		return sg_req_fail(r, SG_P_CAPACITY, "the gateway is tracking too many budgets");
	return tc->spend.refused < 0 ? SG_STEP_NEXT : refuse_budget(r, tc, b);
}

static enum sg_step_rc
refuse_session_window(struct sg_req *r, struct sg_throttle_call *tc,
                      const struct sg_gcra_result *res)
{
	struct sg_session *ss = r->principal.session;
	struct sg_verdict *v = &tc->verdict;
	memset(v, 0, sizeof(*v));
	v->violated[0] = (struct sg_limit_hit){&ss->rule, &ss->rule.windows[0], *res};
	v->n_violated = 1;
	v->closest = v->violated[0];
	v->has_closest = tc->has_verdict = true;
	v->retry_after_ns = res->retry_after_ns;
	return sg_throttle_refuse(r, tc);
}

/*
 * A session's own limits come first: they are the cheapest to check and
 * only ever stricter than the role's.  What is held here is given back by
 * release() when the call is not answered.
 */
static enum sg_step_rc
hold_session(struct sg_req *r, struct sg_throttle_call *tc)
{
	struct sg_session *ss = r->principal.session;
	if (ss == NULL)
		return SG_STEP_NEXT;
	uint64_t before = atomic_fetch_add(&ss->calls, 1);
	tc->session_hold.call = true;
	if (ss->max_calls != 0 && before >= ss->max_calls)
		return sg_req_fail(r, SG_P_SESSION_SPENT,
		                   "session %s has made all of its %llu calls", ss->id,
		                   (unsigned long long)ss->max_calls);
	if (ss->rule.n_windows != 0) {
		struct sg_gcra_result res =
		    sg_gcra_take(&ss->window.gcra, &ss->tat, r->now_ns, r->op->weight);
		if (!res.allowed)
			return refuse_session_window(r, tc, &res);
		tc->session_hold.window = true;
	}
	int64_t cost = llround(r->op->cost * SG_MICROS);
	int64_t spent = atomic_fetch_add(&ss->spent_micros, cost);
	tc->session_hold.cost = cost;
	if (ss->budget_micros != 0 && spent + cost > ss->budget_micros)
		return sg_req_fail(r, SG_P_SESSION_SPENT,
		                   "%s.%s costs %.4f but session %s has %.4f of its budget of %.4f "
		                   "left",
		                   r->connector->name, r->op->name, r->op->cost, ss->id,
		                   (double)(ss->budget_micros - spent) / SG_MICROS,
		                   (double)ss->budget_micros / SG_MICROS);
	return SG_STEP_NEXT;
}

/*
 * A live upstream with an adaptive limit takes only so many calls at once;
 * past it the call is shed like any overload (Envoy's adaptive concurrency
 * answers 503 the same way).  The place is given back by release().
 */
static enum sg_step_rc
upstream_place(struct sg_req *r, struct sg_throttle_call *tc)
{
	struct sg_adaptive *a = r->connector->adaptive;
	if (a == NULL || r->principal.mode != SG_MODE_LIVE)
		return SG_STEP_NEXT;
	if (sg_adaptive_acquire(a) == 0) {
		tc->adaptive = a;
		return SG_STEP_NEXT;
	}
	/* Refused after the limits admitted it: the call spends nothing. */
	sg_limiter_refund(&tc->verdict, r->op->weight);
	sg_throttle_remote_refund(r, tc);
	return sg_req_fail(r, SG_P_CAPACITY,
	                   "the %s upstream is answering slowly, so the gateway lets only %u calls "
	                   "reach it at once right now",
	                   r->connector->name, atomic_load(&a->limit_now));
}

bool
sg_throttle_retry(struct sg_req *r, struct sg_throttle_call *tc, uint64_t now)
{
	r->now_ns = now;
	if (r->gw->config->throttle_backend == SG_BACKEND_REDIS) {
		/* The turn is to ask Redis again; the step does it when the call wakes. */
		tc->queue_state = SG_Q_ASK_AGAIN;
		sg_throttle_remote_reset(tc);
		return true;
	}
	const struct sg_rule_list *rl = sg_role_rules(r->principal.role, r->principal.mode, r->op);
	struct sg_verdict v;
	if (sg_limiter_take(&r->gw->limiter, rl, &tc->ids, r->cls, r->op->weight, now, &v) != 0) {
		/* Table full: try again soon; the last refusal stays in tc->verdict. */
		tc->qitem.ready_at = now + 1000000ull;
		return false;
	}
	tc->verdict = v;
	if (!v.allowed) {
		uint64_t wait = v.retry_after_ns == UINT64_MAX ? 1000000ull : v.retry_after_ns;
		tc->qitem.ready_at = now + (wait ? wait : 1);
		return false;
	}
	tc->has_verdict = tc->verdict.has_closest;
	sg_throttle_note_admitted(tc, now);
	return true;
}

static enum sg_step_rc
remote_then_place(struct sg_req *r, struct sg_throttle_call *tc)
{
	const struct sg_rule_list *rl = sg_role_rules(r->principal.role, r->principal.mode, r->op);
	enum sg_step_rc rc = sg_throttle_remote(r, tc, rl);
	return rc == SG_STEP_NEXT ? upstream_place(r, tc) : rc;
}

enum sg_step_rc
sg_step_throttle(struct sg_req *r)
{
	struct sg_throttle_call *tc = sg_throttle_call(r);
	if (tc == NULL)
		return SG_STEP_ERROR;
	if (tc->queue_state == SG_Q_ADMITTED)
		return upstream_place(r, tc);
	if (tc->queue_state == SG_Q_EXPIRED)
		return sg_throttle_refuse_after_wait(r, tc);
	if (sg_throttle_remote_pending(tc) || tc->queue_state == SG_Q_ASK_AGAIN)
		return remote_then_place(r, tc); /* Redis has answered, or is to be asked again */
	if (resolve_class(r) != 0)
		return sg_req_fail(r, SG_P_PRIORITY_INVALID,
		                   "Sandgate-Priority \"%.32s\" is not one of critical, normal or "
		                   "background",
		                   r->priority);
	if (shed_or_next(r) != SG_STEP_NEXT || hold_session(r, tc) != SG_STEP_NEXT ||
	    hold_budget(r, tc) != SG_STEP_NEXT)
		return SG_STEP_STOP;
	const struct sg_rule_list *rl = sg_role_rules(r->principal.role, r->principal.mode, r->op);
	set_ids(r, tc, r->connector, r->op);
	if (r->gw->config->throttle_backend == SG_BACKEND_REDIS)
		return remote_then_place(r, tc);
	if (sg_limiter_take(&r->gw->limiter, rl, &tc->ids, r->cls, r->op->weight, r->now_ns,
	                    &tc->verdict) != 0) {
		/* Table full of live buckets: refusing is safer than forgetting one. */
		tc->has_verdict = false;
		return sg_req_fail(r, SG_P_CAPACITY, "the gateway is tracking too many clients");
	}
	tc->has_verdict = tc->verdict.has_closest;
	if (!tc->verdict.allowed)
		return sg_throttle_queue_or_refuse(r, tc);
	return upstream_place(r, tc);
}

void
sg_throttle_give_back(struct sg_req *r)
{
	struct sg_throttle_call *tc = sg_req_slot(r, SG_SLOT_THROTTLE);
	if (tc == NULL || !tc->verdict.allowed || r->op == NULL)
		return;
	sg_limiter_refund(&tc->verdict, r->op->weight);
	sg_throttle_remote_refund(r, tc);
}

void
sg_throttle_upstream_done(struct sg_req *r, uint64_t upstream_ns)
{
	struct sg_throttle_call *tc = sg_req_slot(r, SG_SLOT_THROTTLE);
	if (tc == NULL)
		return;
	tc->upstream_ns = upstream_ns;
	if (r->op->reported_weight == NULL || r->output.len == 0 || !tc->verdict.allowed)
		return;
	/* Only operations that report their weight pay for reading their answer again. */
	struct sg_json_doc doc;
	struct sg_json_val v;
	if (sg_json_parse(r->output.data, r->output.len, SG_SCHEMA_MAX_DEPTH + 1, &doc, NULL) !=
	        SG_JSON_OK ||
	    !sg_json_pointer(doc.root, r->op->reported_weight, &v) ||
	    sg_json_type(v) != SG_JSON_INT || sg_json_int(v) <= (int64_t)r->op->weight)
		return;
	int64_t extra = sg_json_int(v) - (int64_t)r->op->weight;
	uint32_t units = extra > 1000000 ? 1000000 : (uint32_t)extra;
	sg_limiter_charge(&tc->verdict, r->now_ns, units);
	sg_throttle_remote_charge(r, tc, units);
}
