/*
 * route: sandbox calls, and live calls to connectors whose live side is
 * built in, are answered by the simulator.  Live calls to a real upstream
 * are refused plainly until upstream routing exists, rather than pretending.
 */
#include "core/sg_fmt.h"
#include "path/sg_path.h"
#include "path/step_throttle.h"
#include "store/sg_recorder.h"
#include "upstream/sg_simulator.h"

/* When the call reached route: its simulated upstream's wait is measured from here. */
struct route_ctx {
	uint64_t start_ns;
};

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

enum sg_step_rc
sg_step_route(struct sg_req *r)
{
	const struct sg_environment *env =
	    r->principal.mode == SG_MODE_LIVE ? &r->connector->live : &r->connector->sandbox;
	struct route_ctx *rc = sg_req_slot_get(r, SG_SLOT_ROUTE, sizeof(*rc), NULL);
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
	/*
	 * Wait first, as a real upstream would, then answer.  The loop's timers
	 * run on libevent's coarse clock (a 4 ms tick here) from the loop
	 * turn's cached time, so one can fire a little early; the wait is
	 * measured on the precise clock (now_ns is read at every resume) and
	 * finished if it fell short.
	 */
	uint64_t want = env->latency_ms * 1000000ull, waited = r->now_ns - rc->start_ns;
	if (env->simulator && waited < want && r->io != NULL &&
	    r->io->wake_after(r, want - waited) == 0)
		return SG_STEP_AGAIN;
	if (env->simulator)
		return simulate(r, rc);
	return sg_req_fail(r, SG_P_LIVE_UNAVAILABLE,
	                   "connector \"%s\" has no built-in %s side on this gateway",
	                   r->connector->name, sg_mode_name(r->principal.mode));
}
