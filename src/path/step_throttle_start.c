/*
 * Session starts (POST /v1/sessions) are not governed calls, but each
 * spends one call's worth of the key's own limit: the role's limit for
 * the key's mode ("role:mode"), in a bucket of its own per key, as if
 * starting sessions were one more connector.  Without it one key started
 * 5,000 sessions in a second.  The decision sits in the throttle slot like
 * a call's, so the reply reports it in RateLimit headers the same way.
 */
#include <stdio.h>
#include <string.h>

#include "path/step_throttle_int.h"

/*
 * The limit a session start spends from, or NULL when the role sets none.
 * Owned by the snapshot the request pinned.
 */
static const struct sg_rule *
start_rule(const struct sg_req *r)
{
	const struct sg_policy *p = r->snap->defs->policy;
	const struct sg_role *role = r->principal.role;
	char name[160];
	if (p == NULL || role == NULL || role->limit[r->principal.mode].gcra.emission_ns == 0)
		return NULL;
	snprintf(name, sizeof(name), "%s:%s", role->name, sg_mode_name(r->principal.mode));
	for (size_t i = 0; i < p->n_rules; i++)
		if (strcmp(p->rules[i]->name, name) == 0)
			return p->rules[i];
	return NULL; /* defensive: the compiler makes one for every role limit */
}

int
sg_throttle_session_start(struct sg_req *r)
{
	const struct sg_rule *rule = start_rule(r);
	const struct sg_key_entry *k = r->principal.key;
	struct sg_throttle_call *tc;
	if (rule == NULL)
		return 0;
	if ((tc = sg_throttle_call(r)) == NULL) {
		sg_req_fail(r, SG_P_INTERNAL, "out of request memory"); /* defensive */
		return -1;
	}
	struct sg_rule_list rl = {.v = &rule, .n = 1};
	r->cls = r->principal.role->default_class;
	/* "/" is in no connector name, so this bucket is no connector's. */
	sg_limiter_ids_set(&tc->ids, k->id, k->tenant, k->user, "/sessions", "start",
	                   (uint32_t)r->principal.mode);
	if (sg_limiter_take(&r->gw->limiter, &rl, &tc->ids, r->cls, 1, r->now_ns, &tc->verdict) !=
	    0) {
		sg_req_fail(r, SG_P_CAPACITY, "the gateway's rate table is full");
		return -1;
	}
	tc->has_verdict = tc->verdict.has_closest;
	if (tc->verdict.allowed)
		return 0;
	const struct sg_limit *w = tc->verdict.violated[0].window;
	sg_req_fail(r, SG_P_RATE_LIMITED,
	            "limit \"%s\" allows %s with bursts of %u for each API key, and starting a "
	            "session counts as one call; this one would exceed it",
	            rule->name, w ? w->spec : "?", w ? w->gcra.burst : 0);
	return -1;
}

void
sg_throttle_session_start_refund(struct sg_req *r)
{
	struct sg_throttle_call *tc = sg_req_slot(r, SG_SLOT_THROTTLE);
	if (tc == NULL)
		return;
	sg_limiter_refund(&tc->verdict, 1);
	tc->has_verdict = false; /* nothing to report: the start spent nothing */
}
