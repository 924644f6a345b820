#include "path/sg_req.h"
#include "path/sg_path.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

void
sg_req_init(struct sg_req *r, struct sg_gateway *gw, struct sg_snapshot *snap)
{
	memset(r, 0, sizeof(*r));
	r->gw = gw;
	r->snap = snap;
	r->status = 200;
	r->decision = SG_DEC_ALLOWED;
	r->spend.refused = r->spend.warn = -1;
}

/* Gives back what a refused call held in its session, and counts the refusal. */
static void
release_session(struct sg_req *r)
{
	struct sg_session *ss = r->principal.session;
	if (ss == NULL || !r->session_hold.call)
		return;
	atomic_fetch_sub(&ss->calls, 1);
	atomic_fetch_add(&ss->refused, 1);
	/*
	 * The session's window unit is not given back: a refund is exact only
	 * right after the take, and this may be seconds later.
	 */
	atomic_fetch_sub(&ss->spent_micros, r->session_hold.cost);
	r->session_hold.call = r->session_hold.window = false;
	r->session_hold.cost = 0;
}

void
sg_req_finish(struct sg_req *r)
{
	sg_limiter_release(&r->verdict);
	/* Only a call that was answered costs anything. */
	if (r->status != 200) {
		sg_spend_release(&r->spend);
		release_session(r);
	}
	if (r->adaptive != NULL)
		sg_adaptive_release(r->adaptive, r->status == 200, r->upstream_ns);
	r->adaptive = NULL;
	sg_throttle_remote_free(r);
	sg_session_unref(r->principal.session);
	r->principal.session = NULL;
	json_decref(r->input);
	json_decref(r->output);
	json_decref(r->problem_ext);
	r->input = r->output = r->problem_ext = NULL;
}

enum sg_step_rc
sg_req_fail(struct sg_req *r, enum sg_problem_code code, const char *fmt, ...)
{
	const struct sg_problem_def *def = sg_problem_def(code);
	va_list ap;
	r->problem = def;
	r->status = def->status;
	r->decision = def->decision;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
	return SG_STEP_STOP;
}

json_t *
sg_req_problem_body(struct sg_req *r)
{
	const struct sg_problem_def *def = r->problem ? r->problem : sg_problem_def(SG_P_INTERNAL);
	json_t *ext = r->problem_ext;
	r->problem_ext = NULL;
	return sg_problem_body(def, r->detail[0] ? r->detail : NULL, r->trace.trace_id, NULL, ext);
}
