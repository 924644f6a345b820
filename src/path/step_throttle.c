/*
 * throttle: GCRA cells keyed by (key, connector).  Runs after validate, so
 * malformed requests never spend capacity, and before route, so a slow
 * upstream cannot let a client start many calls before the first counts.
 * An operation's weight is the cost of one call.
 */
#include "path/sg_path.h"
#include "throttle/sg_ratetable.h"

static _Atomic uint64_t *
cell_for(const struct sg_req *r, const struct sg_connector *c, bool create)
{
	uint64_t key = sg_ratetable_key(r->principal.key->id, c->name);
	if (create)
		return sg_ratetable_cell(r->gw->rates, key, r->now_ns);
	return sg_ratetable_peek(r->gw->rates, key);
}

int
sg_throttle_standing(const struct sg_req *r, const struct sg_connector *c,
    const struct sg_limit **limit, struct sg_gcra_result *res)
{
	uint64_t unused;
	*limit = sg_role_limit(r->principal.role, r->principal.mode, c);
	if (*limit == NULL)
		return -1;
	_Atomic uint64_t *cell = cell_for(r, c, false);
	uint64_t tat = cell ? atomic_load_explicit(cell, memory_order_relaxed) : 0;
	*res = sg_gcra_decide(&(*limit)->gcra, tat, r->now_ns, 0, &unused);
	return 0;
}

enum sg_step_rc
sg_step_throttle(struct sg_req *r)
{
	r->limit = sg_role_limit(r->principal.role, r->principal.mode, r->connector);
	if (r->limit == NULL)
		return SG_STEP_NEXT;
	_Atomic uint64_t *cell = cell_for(r, r->connector, true);
	if (cell == NULL) {
		/* Table full of live buckets: refusing is safer than forgetting one. */
		r->rate.retry_after_ns = 1000000000ull;
		r->has_rate = false;
		return sg_req_fail(r, SG_P_CAPACITY, "the gateway is tracking too many clients");
	}
	r->rate = sg_gcra_take(&r->limit->gcra, cell, r->now_ns, r->op->weight);
	r->has_rate = true;
	if (r->rate.allowed)
		return SG_STEP_NEXT;
	if (r->rate.retry_after_ns == UINT64_MAX)
		return sg_req_fail(r, SG_P_RATE_LIMITED,
		    "%s.%s costs %u units but your limit allows at most %u at once", r->connector->name,
		    r->op->name, r->op->weight, r->limit->gcra.burst);
	return sg_req_fail(r, SG_P_RATE_LIMITED,
	    "you may call %s at %s with bursts of %u; this call would exceed that",
	    r->connector->name, r->limit->spec, r->limit->gcra.burst);
}
