/*
 * The throttle step's face to the rest of the request's life: what the
 * transport reports in its reply (the limit standing, budgets), what route
 * tells it once the upstream answered, and the callbacks the I/O thread's
 * fair queue runs.  Its state lives in the request's SG_SLOT_THROTTLE and
 * is released with the request.
 */
#ifndef SG_STEP_THROTTLE_H
#define SG_STEP_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

#include "path/sg_req.h"
#include "throttle/sg_fairq.h"
#include "throttle/sg_spend.h"

/*
 * The limit decision to report in RateLimit headers: the call's own, or a
 * peek at its standing (sg_throttle_standing).  NULL when no limit applies
 * or none was looked at.  Valid until the request ends.
 */
const struct sg_verdict *sg_throttle_verdict(const struct sg_req *r);

/*
 * Peeks at the caller's standing against the limits of r->op without
 * spending any, for refusals made before throttle.  Returns -1 when there
 * is nothing to report.
 */
int sg_throttle_standing(struct sg_req *r);

/* The budget that refused the call, or NULL. */
const struct sg_spend_line *sg_throttle_budget_refused(const struct sg_req *r);
/* The budget past its warning level after this call, or NULL. */
const struct sg_spend_line *sg_throttle_budget_warning(const struct sg_req *r);
/* True when this call is the one that took that budget past the warning level. */
bool sg_throttle_budget_crossed(const struct sg_req *r);

/*
 * From route, once the upstream answered in `upstream_ns`: the adaptive
 * limit learns the latency, and when the operation names a
 * reported_weight and the answer reports more units than its weight, the
 * difference is charged to every window the call was charged in.  The
 * call is not refused (it is done); later calls wait out the debt.
 */
void sg_throttle_upstream_done(struct sg_req *r, uint64_t upstream_ns);

/*
 * step_throttle_start.c: a session start spends one call of the role's
 * limit for the key's mode, in a bucket of its own per key.  0 admitted
 * (or no limit set); -1 refused, with sg_req_fail done (429 rate_limited,
 * or 503 capacity when the rate table is full).
 */
int sg_throttle_session_start(struct sg_req *r);
/* The start was refused after all (the session cap): gives the call back. */
void sg_throttle_session_start_refund(struct sg_req *r);

/*
 * A call refused after throttle admitted it, before any upstream effect
 * (route's audit check): gives back the rate units it took, here and in
 * Redis, so a refusal spends nothing.  Call it right after the take.
 */
void sg_throttle_give_back(struct sg_req *r);

/* What the I/O thread's fair queue runs for each waiting call (step_throttle_queue.c). */
extern const struct sg_fairq_ops sg_throttle_queue_ops;

#endif
