/*
 * throttle, with throttle.backend: redis.  The windows of every rule are
 * decided together in Redis by one atomic script (sg_redis), so gateways
 * sharing a Redis share their limits; concurrency caps stay local (a cap
 * counts calls this node is running).  The step suspends while Redis
 * answers and resumes here.
 *
 * A call refused by Redis may wait in the tenant's fair queue like any
 * other; its turn (sg_throttle_retry) only marks it SG_Q_ASK_AGAIN, and
 * the step asks Redis again when the call wakes.
 *
 * When Redis cannot answer (down, timed out), redis.failure_mode decides:
 * "local" takes the windows here at 1/redis.nodes of each rate and burst,
 * so the gateways together stay near the quota; "deny" refuses; "allow"
 * admits on caps alone.  Decisions go back to Redis as soon as it answers
 * again: its state kept counting for the other nodes, and what this node
 * took locally meanwhile is forgotten rather than replayed.
 */
#include <stdlib.h>
#include <string.h>

#include "obs/sg_throttle_metrics.h"
#include "path/step_throttle_int.h"
#include "throttle/sg_redis.h"
#include "throttle/sg_throttle_thread.h"

static const struct sg_take_scope caps_only = {false, true, 1};

/*
 * What a request keeps while Redis decides; allocated only with the Redis
 * backend, so local decisions do not pay for it.
 */
struct sg_remote {
	enum { SG_REMOTE_NONE, SG_REMOTE_WAITING, SG_REMOTE_ANSWERED, SG_REMOTE_LOCAL } state;
	struct sg_redis_reply reply;
	struct sg_redis_window w[SG_REDIS_WINDOWS_MAX];
	const struct sg_rule *rule[SG_REDIS_WINDOWS_MAX];
	uint8_t win[SG_REDIS_WINDOWS_MAX];
	uint8_t n;
};

static void
on_reply(void *arg, const struct sg_redis_reply *reply)
{
	struct sg_throttle_call *tc = arg;
	struct sg_req *r = tc->r;
	tc->remote->reply = *reply;
	tc->remote->state = SG_REMOTE_ANSWERED;
	/* Out of memory for the wake-up event: nothing can resume the request. */
	if (r->io->wake(r) != 0)
		abort();
}

/* Enforced windows first, then shadow ones, as the script expects; caps are left out. */
static void
build_windows(struct sg_req *r, struct sg_throttle_call *tc, const struct sg_rule_list *rl)
{
	tc->remote->n = 0;
	for (uint8_t i = 0; rl != NULL && i < rl->n; i++)
		for (unsigned w = 0; w < rl->v[i]->n_windows && tc->remote->n < SG_REDIS_WINDOWS_MAX;
		     w++) {
			const struct sg_rule *rule = rl->v[i];
			const struct sg_limit *win = &rule->windows[w];
			tc->remote->rule[tc->remote->n] = rule;
			tc->remote->win[tc->remote->n] = (uint8_t)w;
			tc->remote->w[tc->remote->n++] = (struct sg_redis_window){
			    .key = sg_limiter_bucket(rule, w, &tc->ids),
			    .emission_ns = win->gcra.emission_ns,
			    .burst = win->gcra.burst,
			    .reserve_ns = sg_rule_reserve_ns(rule, &win->gcra, r->cls),
			    .shadow = rule->shadow,
			};
		}
}

static void
note(struct sg_verdict *v, const struct sg_limit_hit *hit, bool refused)
{
	if (refused) {
		if (v->n_violated == 0)
			v->closest = *hit;
		if (v->n_violated < SG_VERDICT_MAX)
			v->violated[v->n_violated++] = *hit;
		if (hit->res.retry_after_ns > v->retry_after_ns)
			v->retry_after_ns = hit->res.retry_after_ns;
		sg_metrics_rule_count(&hit->rule->stats->over_limit);
	} else if (v->n_violated == 0 &&
	           (!v->has_closest || (uint64_t)hit->res.remaining * v->closest.res.limit <
	                                   (uint64_t)v->closest.res.remaining * hit->res.limit)) {
		v->closest = *hit;
	}
	v->has_closest = true;
}

/* The script's answer, as the verdict a local take would have given. */
static void
read_reply(struct sg_throttle_call *tc, struct sg_verdict *v)
{
	const struct sg_redis_reply *rep = &tc->remote->reply;
	memset(v, 0, sizeof(*v));
	for (uint8_t i = 0; i < tc->remote->n && i < rep->n; i++) {
		const struct sg_rule *rule = tc->remote->rule[i];
		struct sg_limit_hit hit = {rule, &rule->windows[tc->remote->win[i]], rep->res[i]};
		if (rule->shadow) {
			if (rep->allowed && !hit.res.allowed)
				sg_metrics_rule_count(&rule->stats->shadow);
			continue;
		}
		note(v, &hit, !hit.res.allowed);
	}
	v->allowed = rep->allowed;
}

/*
 * The windows an admitted call was charged in: every enforced one, and the
 * shadow ones that would have admitted it (the others were left alone).
 */
static size_t
charged_windows(const struct sg_remote *rm, struct sg_redis_window *out)
{
	size_t n = 0;
	for (uint8_t i = 0; i < rm->n; i++)
		if (!rm->w[i].shadow || rm->reply.res[i].allowed)
			out[n++] = rm->w[i];
	return n;
}

/* Caps are local; a cap that refuses gives the Redis windows back. */
static enum sg_step_rc
take_caps(struct sg_req *r, struct sg_throttle_call *tc, const struct sg_rule_list *rl)
{
	struct sg_verdict caps;
	if (sg_limiter_take_scoped(&r->gw->limiter, rl, &tc->ids, r->cls, r->op->weight, r->now_ns,
	                           &caps_only, &caps) != 0) {
		sg_throttle_remote_refund(r, tc);
		return sg_req_fail(r, SG_P_CAPACITY, "the gateway is tracking too many clients");
	}
	if (!caps.allowed) {
		sg_throttle_remote_refund(r, tc);
		tc->verdict = caps;
		tc->has_verdict = true;
		return sg_throttle_refuse(r, tc);
	}
	memcpy(tc->verdict.held, caps.held, sizeof(caps.held));
	tc->verdict.n_held = caps.n_held;
	if (!tc->verdict.has_closest && caps.has_closest) {
		tc->verdict.closest = caps.closest;
		tc->verdict.has_closest = tc->has_verdict = true;
	}
	return SG_STEP_NEXT;
}

static enum sg_step_rc
fall_back(struct sg_req *r, struct sg_throttle_call *tc, const struct sg_rule_list *rl)
{
	const struct sg_config *cfg = r->gw->config;
	struct sg_take_scope scope = {true, true, (uint32_t)cfg->redis_nodes};
	atomic_fetch_add_explicit(&sg_throttle_stats.redis_fallback[cfg->redis_failure], 1,
	                          memory_order_relaxed);
	if (cfg->redis_failure == SG_REDIS_FAIL_DENY)
		return sg_req_fail(r, SG_P_CAPACITY,
		                   "the shared rate-limit store is unreachable, "
		                   "and this gateway refuses calls until it is back");
	if (cfg->redis_failure == SG_REDIS_FAIL_ALLOW)
		scope = caps_only;
	tc->remote->state = SG_REMOTE_LOCAL;
	if (sg_limiter_take_scoped(&r->gw->limiter, rl, &tc->ids, r->cls, r->op->weight, r->now_ns,
	                           &scope, &tc->verdict) != 0)
		return sg_req_fail(r, SG_P_CAPACITY, "the gateway is tracking too many clients");
	tc->has_verdict = tc->verdict.has_closest;
	return tc->verdict.allowed ? SG_STEP_NEXT : sg_throttle_refuse(r, tc);
}

/* Redis could not decide: locally, and a call whose turn came still leaves the queue. */
static enum sg_step_rc
fall_back_after(struct sg_req *r, struct sg_throttle_call *tc, const struct sg_rule_list *rl)
{
	enum sg_step_rc rc = fall_back(r, tc, rl);
	if (rc == SG_STEP_NEXT && tc->queue_state == SG_Q_ASK_AGAIN)
		sg_throttle_note_admitted(tc, r->now_ns);
	return rc;
}

enum sg_step_rc
sg_throttle_remote(struct sg_req *r, struct sg_throttle_call *tc, const struct sg_rule_list *rl)
{
	struct sg_redis *redis = sg_throttle_thread_redis(r->throttle);
	if (tc->remote == NULL && (tc->remote = calloc(1, sizeof(*tc->remote))) == NULL)
		return sg_req_fail(r, SG_P_CAPACITY, "the gateway is out of memory");
	if (tc->remote->state == SG_REMOTE_NONE) {
		build_windows(r, tc, rl);
		if (tc->remote->n > 0 && redis != NULL &&
		    sg_redis_decide(redis, tc->remote->w, tc->remote->n, r->op->weight, on_reply,
		                    tc) == 0) {
			tc->remote->state = SG_REMOTE_WAITING;
			return SG_STEP_AGAIN;
		}
		if (tc->remote->n > 0)
			return fall_back_after(r, tc, rl);
		tc->remote->state = SG_REMOTE_ANSWERED; /* nothing to ask: caps only */
		tc->remote->reply = (struct sg_redis_reply){.allowed = true};
	}
	if (tc->remote->reply.status != 0)
		return fall_back_after(r, tc, rl);
	read_reply(tc, &tc->verdict);
	tc->has_verdict = tc->verdict.has_closest;
	if (!tc->verdict.allowed)
		return sg_throttle_queue_or_refuse(r, tc);
	if (tc->queue_state == SG_Q_ASK_AGAIN)
		sg_throttle_note_admitted(tc, r->now_ns);
	return take_caps(r, tc, rl);
}

void
sg_throttle_remote_refund(struct sg_req *r, struct sg_throttle_call *tc)
{
	struct sg_redis_window w[SG_REDIS_WINDOWS_MAX];
	struct sg_redis *redis = sg_throttle_thread_redis(r->throttle);
	if (tc->remote && tc->remote->state == SG_REMOTE_ANSWERED && tc->remote->reply.allowed &&
	    tc->remote->n > 0 && redis)
		sg_redis_refund(redis, w, charged_windows(tc->remote, w), r->op->weight);
}

bool
sg_throttle_remote_pending(const struct sg_throttle_call *tc)
{
	return tc->remote != NULL && tc->remote->state != SG_REMOTE_NONE;
}

void
sg_throttle_remote_charge(struct sg_req *r, struct sg_throttle_call *tc, uint32_t extra)
{
	struct sg_redis_window w[SG_REDIS_WINDOWS_MAX];
	struct sg_redis *redis = sg_throttle_thread_redis(r->throttle);
	if (tc->remote && tc->remote->state == SG_REMOTE_ANSWERED && tc->remote->n > 0 && redis &&
	    tc->remote->reply.allowed)
		sg_redis_charge(redis, w, charged_windows(tc->remote, w), extra);
}

void
sg_throttle_remote_reset(struct sg_throttle_call *tc)
{
	if (tc->remote != NULL)
		tc->remote->state = SG_REMOTE_NONE;
}

void
sg_throttle_remote_free(struct sg_throttle_call *tc)
{
	free(tc->remote);
	tc->remote = NULL;
}
