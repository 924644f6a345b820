/*
 * sg_path: the governed path.  Each step is one file (step_<name>.c) with one
 * job; it reads what earlier steps decided and returns NEXT or refuses the
 * request through sg_req_fail().  No step reaches into another's state.
 *
 *   identify → resolve → authorize → validate → throttle → route
 *
 * Recording runs after the loop for every request, refused or not, like
 * nginx's log phase: refusals are what an audit needs most.
 */
#ifndef SG_PATH_H
#define SG_PATH_H

#include "path/sg_req.h"
#include "schema/sg_schema.h"

enum sg_step_rc sg_step_identify(struct sg_req *r);
enum sg_step_rc sg_step_resolve(struct sg_req *r);
enum sg_step_rc sg_step_authorize(struct sg_req *r);
enum sg_step_rc sg_step_validate(struct sg_req *r);
enum sg_step_rc sg_step_throttle(struct sg_req *r);
enum sg_step_rc sg_step_route(struct sg_req *r);

/*
 * The validate step's work against any schema: parses r->body into
 * r->input (capped in size and depth) and checks it, refusing with the
 * failing JSON Pointers.  Template runs use it for the template's input.
 */
enum sg_step_rc sg_validate_body(struct sg_req *r, const struct sg_schema *schema);

/*
 * Runs the steps from r->next_step until one stops the request or all have
 * run.  Returns SG_STEP_AGAIN if a step suspended (resume by calling again),
 * otherwise SG_STEP_STOP with the outcome in r.
 */
enum sg_step_rc sg_path_run(struct sg_req *r);

/* Decision path only (identify through throttle), for the microbenchmark. */
enum sg_step_rc sg_path_run_decide(struct sg_req *r);

/* Writes the audit record and returns how long the request took. */
void sg_step_record(struct sg_req *r, uint64_t latency_us);

/*
 * Fills r->verdict with the caller's standing against the limits of
 * r->op without spending any, for refusals made before throttle.  Returns
 * -1 when there is nothing to report.
 */
int sg_throttle_standing(struct sg_req *r);

/*
 * For the fair queue's owner: tries a waiting call again at `now`.  True
 * when admitted (r->queue_state becomes ADMITTED); otherwise r->qitem's
 * ready_at says when it may fit.
 */
bool sg_throttle_retry(struct sg_req *r, uint64_t now);

/*
 * After the upstream answered: when the operation names a reported_weight
 * and the answer reports more units than the operation's weight, the
 * difference is charged to every window the call was charged in.  The
 * call is not refused (it is done); later calls wait out the debt.
 */
void sg_throttle_settle(struct sg_req *r);

/* Refuses the call with r->verdict's violations (429, violated-policies). */
enum sg_step_rc sg_throttle_refuse(struct sg_req *r);
/* A refused call waits its turn in the tenant's queue when that can help; else refused. */
enum sg_step_rc sg_throttle_queue_or_refuse(struct sg_req *r);

/* step_throttle_redis.c: the windows decided in Redis, caps here; may suspend. */
enum sg_step_rc sg_throttle_remote(struct sg_req *r, const struct sg_rule_list *rl);
/* The call has been (or is being) decided by the Redis half. */
bool sg_throttle_remote_pending(const struct sg_req *r);
void sg_throttle_remote_charge(struct sg_req *r, uint32_t extra);
/* Gives back the Redis windows an admitted call was charged in. */
void sg_throttle_remote_refund(struct sg_req *r);
void sg_throttle_remote_free(struct sg_req *r);
/* Forgets Redis's last answer so the call asks again (its turn in the queue came). */
void sg_throttle_remote_reset(struct sg_req *r);

#endif
