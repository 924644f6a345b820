/*
 * ctx.call: a CALL frame becomes a governed request made with the
 * caller's own credential, so it is identified, checked against the
 * template's declared capabilities, authorized, validated, throttled,
 * routed and recorded exactly like a call the person made themselves,
 * under the run's trace.
 *
 * The path always runs from the run's wake-up event, never from inside
 * the frame reader, so a reply that kills the worker cannot end the run
 * under the reader's feet.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "path/sg_path.h"
#include "runs/sg_run_exec.h"

static struct sg_run_exec *
exec_of(struct sg_req *r)
{
	return (struct sg_run_exec *)((char *)r - offsetof(struct sg_run_exec, call));
}

static int
call_wake_after(struct sg_req *r, uint64_t delay_ns)
{
	struct sg_run_exec *x = exec_of(r);
	struct timeval tv = {(time_t)(delay_ns / 1000000000ull),
	                     (suseconds_t)(delay_ns % 1000000000ull / 1000)};
	return event_add(x->call_wake, &tv) == 0 ? 0 : -1;
}

static int
call_wake(struct sg_req *r)
{
	event_active(exec_of(r)->call_wake, EV_TIMEOUT, 1);
	return 0;
}

/* A template's call carries no caller headers: the worker has none to give. */
static const struct sg_req_io call_io = {call_wake_after, call_wake, NULL};

/* ---- the answer ---- */

/* A live call's upstream attempts, each a span within the call's (what retries and backoff did). */
static void
add_attempts(json_t *span, const struct sg_req *r)
{
	struct sg_jbuf b = {0};
	if (r->n_attempts > 0 && sg_req_attempts_write(r, &b) == 0)
		json_object_set_new(span, "upstream", json_loadb(b.data, b.len, 0, NULL));
	sg_jbuf_release(&b);
}

static void
add_span(struct sg_run_exec *x, const char *capability, const char *decision, int status,
         const char *code, const char *detail, double cost)
{
	double ms = (double)(sg_now_ns() - x->call_start_ns) / 1e6;
	json_t *span = json_pack("{s:i, s:s, s:s, s:i, s:s?, s:s?, s:f, s:f, s:s}", "seq",
	                         (int)x->seq, "capability", capability, "decision", decision,
	                         "status", status, "code", code, "detail", detail, "latency_ms", ms,
	                         "cost", cost, "span_id", x->call.trace.span_id);
	if (span != NULL)
		add_attempts(span, &x->call);
	json_array_append_new(x->doc.calls, span);
}

static void
send_result(struct sg_run_exec *x, json_t *result, const char *code, const char *detail)
{
	struct sg_frame_msg m = {.type = SG_FRAME_CALL_RESULT};
	char err[256];
	m.call_result.seq = x->seq;
	m.call_result.result = result;
	m.call_result.error_code = result ? NULL : code;
	m.call_result.error_detail = result ? NULL : detail;
	if (sg_run_exec_send(x, &m, err, sizeof(err)) == 0)
		return;
	/* Most likely a result over the frame cap: tell the script instead. */
	m.call_result.result = NULL;
	m.call_result.error_code = "result_too_large";
	m.call_result.error_detail = "the call's result is too large to hand to the template";
	(void)sg_run_exec_send(x, &m, err, sizeof(err));
}

/*
 * The log phase, then the call is over and the run may end (x may be
 * freed).  The snapshot goes last: the request's pointers point into it.
 */
static void
finish_call(struct sg_run_exec *x)
{
	struct sg_snapshot *snap = x->call.snap;
	sg_path_finish(&x->call, (sg_now_ns() - x->call_start_ns) / 1000);
	sg_snapshot_unref(snap);
	free(x->call_body);
	x->call_body = NULL;
	x->call_busy = false;
	sg_run_exec_call_done(x);
}

static void
complete(struct sg_run_exec *x)
{
	struct sg_req *r = &x->call;
	const char *capability = x->call_cap;
	char detail[600];
	if (r->problem == NULL) {
		add_span(x, capability, "allowed", 200, NULL, NULL, r->op ? r->op->cost : 0);
		/* The frames to the worker carry jansson values: the answer is read once more. */
		json_t *out = r->output.len
		                  ? json_loadb(r->output.data, r->output.len, JSON_DECODE_ANY, NULL)
		                  : json_null();
		if (out != NULL)
			send_result(x, out, NULL, NULL);
		else
			send_result(x, NULL, "internal", "out of memory while handing over the result");
		json_decref(out);
	} else {
		sg_problem_sanitize(detail, sizeof(detail), r->detail);
		add_span(x, capability, sg_decision_name(r->decision), r->status, r->problem->code,
		         detail, 0);
		send_result(x, NULL, r->problem->code, detail);
	}
	finish_call(x);
}

static void
on_call_wake(evutil_socket_t fd, short what, void *arg)
{
	struct sg_run_exec *x = arg;
	(void)fd;
	(void)what;
	if (x->worker_done && !x->call_walked) {
		/* The worker was killed before the call began: nobody waits for it. */
		finish_call(x);
		return;
	}
	x->call_walked = true;
	x->call.now_ns = sg_now_ns();
	if (sg_path_run(&x->call) == SG_STEP_AGAIN)
		return; /* a step arranged the next wake-up */
	complete(x);
}

/* ---- the start ---- */

/*
 * "connector.operation" into the two names, for the path and the audit.
 * A name that does not split or fit is cut: the capability step refuses
 * it before anything looks it up, since nothing declared is cut.
 */
static void
split(struct sg_run_exec *x, const char *capability)
{
	const char *dot = strchr(capability, '.');
	size_t clen = dot ? (size_t)(dot - capability) : strlen(capability);
	snprintf(x->call_conn, sizeof(x->call_conn), "%.*s", (int)clen, capability);
	snprintf(x->call_op, sizeof(x->call_op), "%s", dot ? dot + 1 : "");
}

/*
 * Each call is identified and authorized against the snapshot that is
 * live when it starts, not the one the run started with: a key revoked or
 * a permission removed mid-run refuses the run's next call, as it refuses
 * the next direct call.  The run keeps its own snapshot for the template.
 */
static int
prepare(struct sg_run_exec *x)
{
	struct sg_req *r = &x->call;
	char parent[64];
	struct timeval tv;
	struct sg_snapshot *snap = sg_http_snapshot(x->t);
	if (snap == NULL)
		return -1;
	sg_snapshot_ref(snap);
	sg_req_init(r, x->gw, snap);
	snprintf(parent, sizeof(parent), "00-%s-%s-%s", x->doc.trace.trace_id, x->doc.trace.span_id,
	         x->doc.trace.flags);
	sg_trace_begin(&r->trace, parent); /* a child span of the run */
	gettimeofday(&tv, NULL);
	r->wall_s = tv.tv_sec;
	r->authorization = x->authorization;
	r->tpl = x->tpl;
	r->capability = x->call_cap;
	r->connector_name = x->call_conn;
	r->operation_name = x->call_op;
	r->content_type = "application/json";
	r->body = x->call_body;
	r->body_len = strlen(x->call_body);
	r->io = &call_io;
	r->throttle = x->t->throttle;
	r->fetcher = x->t->fetcher;
	sg_path_begin(r);
	return 0;
}

bool
sg_run_call_start(struct sg_run_exec *x, const struct sg_frame_call *call)
{
	if (x->call_wake == NULL &&
	    (x->call_wake = event_new(x->t->base, -1, 0, on_call_wake, x)) == NULL)
		return false;
	x->call_busy = true;
	x->call_walked = false;
	x->seq = call->seq;
	x->call_start_ns = sg_now_ns();
	snprintf(x->call_cap, sizeof(x->call_cap), "%s", call->capability);
	split(x, call->capability);
	x->call_body = json_dumps(call->args, JSON_COMPACT);
	if (x->call_body == NULL || prepare(x) != 0) {
		free(x->call_body);
		x->call_body = NULL;
		x->call_busy = false;
		return false;
	}
	event_active(x->call_wake, EV_TIMEOUT, 1);
	return true;
}
