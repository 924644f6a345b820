/*
 * route: the environment the call's mode names answers it.  A simulated
 * environment (and every call to a simulator_only connector) is answered
 * by the simulator after its latency; a real one by the upstream
 * (step_route_live.c).  Live mode itself was allowed, or not, by
 * authorize: route only follows the mode.
 */
#include "core/sg_fmt.h"
#include "path/sg_path.h"
#include "path/step_route.h"
#include "path/step_throttle.h"
#include "store/sg_recorder.h"
#include "upstream/sg_simulator.h"

static enum sg_step_rc
simulate(struct sg_req *r, const struct route_ctx *rc)
{
	char salt[160];
	struct sg_fmt f;
	sg_fmt_init(&f, salt, sizeof(salt));
	sg_fmt_str(&f, r->connector->name);
	sg_fmt_str(&f, ".");
	sg_fmt_str(&f, r->op->name);
	if (sg_sim_write(&r->output, r->op->output, r->op->examples, r->body, r->body_len,
	                 r->gw->config->simulator_seed, salt, true) != 0)
		return sg_req_fail(r, SG_P_SIMULATOR_FAILED,
		                   "the simulator could not produce output for %s", salt);
	sg_throttle_upstream_done(r, r->now_ns - rc->start_ns);
	return SG_STEP_NEXT;
}

static void
release(struct sg_req *r, void *ctx)
{
	sg_route_live_release(r, ctx);
}

enum sg_step_rc
sg_step_route(struct sg_req *r)
{
	const struct sg_environment *env =
	    r->principal.mode == SG_MODE_LIVE ? &r->connector->live : &r->connector->sandbox;
	struct route_ctx *rc = sg_req_slot_get(r, SG_SLOT_ROUTE, sizeof(*rc), release);
	if (rc == NULL)
		return SG_STEP_ERROR;
	if (rc->start_ns == 0) {
		rc->start_ns = r->now_ns;
		/* Before any upstream effect: a fail_closed mode never acts unaudited. */
		bool closed =
		    sg_config_audit_fail_closed(r->gw->config, r->principal.mode == SG_MODE_LIVE);
		if (!sg_recorder_admit(r->gw->recorder, closed, r->now_ns)) {
			sg_throttle_give_back(r); /* refused: the call spends nothing */
			return sg_req_fail(
			    r, SG_P_AUDIT_UNAVAILABLE,
			    "the audit trail is behind (the store is not taking writes), "
			    "so %s calls are refused until it catches up",
			    sg_mode_name(r->principal.mode));
		}
	}
	if (!env->simulator && !r->connector->simulator_only)
		return sg_route_live(r, rc);
	/*
	 * Wait first, as a real upstream would, then answer.  The loop's timers
	 * run on libevent's coarse clock (a 4 ms tick here) from the loop
	 * turn's cached time, so one can fire a little early; the wait is
	 * measured on the precise clock (now_ns is read at every resume) and
	 * finished if it fell short.
	 */
	uint64_t want = env->latency_ms * 1000000ull, waited = r->now_ns - rc->start_ns;
	if (waited < want && r->io != NULL && r->io->wake_after(r, want - waited) == 0)
		return SG_STEP_AGAIN;
	return simulate(r, rc);
}
