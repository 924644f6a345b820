/*
 * sg_path: the governed path.  Each step is one file (step_<name>.c) with one
 * job; it reads what earlier steps decided and returns NEXT or refuses the
 * request through sg_req_fail().  No step reaches into another's state: a
 * step that keeps state keeps it in its own slot of the request.
 *
 *   identify → capability → resolve → authorize → validate → screen
 *     → throttle → route → screen
 *
 * Recording runs after the loop for every request, refused or not, like
 * nginx's log phase: refusals are what an audit needs most.  Every
 * transport (HTTP, a template's ctx.call) walks a request the same way:
 *
 *   sg_req_init, inputs, sg_path_begin
 *   sg_path_run until it returns SG_STEP_STOP (resuming after each AGAIN)
 *   reply, then sg_path_finish
 */
#ifndef SG_PATH_H
#define SG_PATH_H

#include "path/sg_req.h"
#include "schema/sg_schema.h"

enum sg_step_rc sg_step_identify(struct sg_req *r);
enum sg_step_rc sg_step_capability(struct sg_req *r);
enum sg_step_rc sg_step_resolve(struct sg_req *r);
enum sg_step_rc sg_step_authorize(struct sg_req *r);
enum sg_step_rc sg_step_validate(struct sg_req *r);
enum sg_step_rc sg_step_throttle(struct sg_req *r);
enum sg_step_rc sg_step_route(struct sg_req *r);
/*
 * The data boundary (step_screen.c): DLP on what the caller sends, after
 * validate, and on what an upstream answers (plus the role's field
 * allowlist on every answer), after route.  Neither suspends.
 */
enum sg_step_rc sg_step_screen_request(struct sg_req *r);
enum sg_step_rc sg_step_screen_response(struct sg_req *r);

/*
 * The validate step's work against any schema: parses r->body (capped in
 * size and depth) and checks it, refusing with the failing JSON Pointers.
 * Nothing of the parse is kept: a later step that needs the input reads
 * r->body again.  Template runs use it for the template's input.
 */
enum sg_step_rc sg_validate_body(struct sg_req *r, const struct sg_schema *schema);

/* Counts the request as a call in flight (load shedding) until it finishes. */
void sg_path_begin(struct sg_req *r);

/*
 * Runs the steps from r->next_step until one stops the request or all have
 * run.  Returns SG_STEP_AGAIN if a step suspended (resume by calling again),
 * otherwise SG_STEP_STOP with the outcome in r.
 */
enum sg_step_rc sg_path_run(struct sg_req *r);

/* Decision path only (identify through throttle, the request screen too), for benchmarks. */
enum sg_step_rc sg_path_run_decide(struct sg_req *r);

/*
 * The log phase, once the reply is made: records the decision of a
 * request whose path ran (`latency_us` from receipt to reply), then
 * releases every step's state and what the request owns (sg_req_finish).
 */
void sg_path_finish(struct sg_req *r, uint64_t latency_us);

/* Writes the audit record, the log phase's first half (step_record.c). */
void sg_step_record(struct sg_req *r, uint64_t latency_us);

#endif
