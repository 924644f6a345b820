#include <stdatomic.h>

#include "core/sg_clock.h"
#include "path/sg_path.h"

typedef enum sg_step_rc (*step_fn)(struct sg_req *);

static const step_fn steps[] = {
	sg_step_identify,
	sg_step_capability,
	sg_step_resolve,
	sg_step_authorize,
	sg_step_validate,
	sg_step_screen_request,
	sg_step_throttle,
	sg_step_route,
	/* Synchronous: route stays the last step that may suspend. */
	sg_step_screen_response,
};

#define N_STEPS (sizeof(steps) / sizeof(steps[0]))
#define N_DECIDE_STEPS (N_STEPS - 2) /* identify .. throttle: neither route nor what follows it */

void
sg_path_begin(struct sg_req *r)
{
	atomic_fetch_add_explicit(&r->gw->in_flight, 1, memory_order_relaxed);
	r->in_flight = true;
	r->arrival_ns = r->now_ns ? r->now_ns : sg_mono_ns();
}

static enum sg_step_rc
run_until(struct sg_req *r, size_t end)
{
	while (r->next_step < end) {
		enum sg_step_rc rc = steps[r->next_step](r);
		switch (rc) {
		case SG_STEP_NEXT:
			r->next_step++;
			break;
		case SG_STEP_AGAIN:
			return SG_STEP_AGAIN;
		case SG_STEP_STOP:
			r->next_step = N_STEPS;
			return SG_STEP_STOP;
		case SG_STEP_ERROR:
		default:
			r->next_step = N_STEPS;
			sg_req_fail(r, SG_P_INTERNAL, "an internal step failed");
			return SG_STEP_STOP;
		}
	}
	return SG_STEP_STOP;
}

enum sg_step_rc
sg_path_run(struct sg_req *r)
{
	return run_until(r, N_STEPS);
}

enum sg_step_rc
sg_path_run_decide(struct sg_req *r)
{
	return run_until(r, N_DECIDE_STEPS);
}

void
sg_path_finish(struct sg_req *r, uint64_t latency_us)
{
	/* A request prepared but never walked (its run ended first) decided nothing. */
	if (r->next_step > 0)
		sg_step_record(r, latency_us);
	sg_req_finish(r);
}
