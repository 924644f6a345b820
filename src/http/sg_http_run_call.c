/*
 * ctx.call: a CALL frame becomes a governed request made with the
 * caller's own credential, so it is identified, authorized, validated,
 * throttled, routed and recorded exactly like a call the person made
 * themselves, under the run's trace.  The template's declared
 * capabilities are checked first: a template never calls what it did not
 * declare, whatever its runner may do.
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

#include "http/sg_run_exec.h"
#include "path/sg_path.h"

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

static int
call_enqueue(struct sg_req *r)
{
	return sg_http_queue_push(exec_of(r)->t, r);
}

static const struct sg_req_io call_io = {call_wake_after, call_wake, call_enqueue};

/* ---- the answer ---- */

static void
add_span(struct sg_run_exec *x, const char *capability, const char *decision, int status,
         const char *code, const char *detail, double cost)
{
	double ms = (double)(sg_now_ns() - x->call_start_ns) / 1e6;
	json_t *span = json_pack("{s:i, s:s, s:s, s:i, s:s?, s:s?, s:f, s:f, s:s}", "seq",
	                         (int)x->seq, "capability", capability, "decision", decision,
	                         "status", status, "code", code, "detail", detail, "latency_ms", ms,
	                         "cost", cost, "span_id", x->call.trace.span_id);
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

/* The call is answered; the run may end now (x may be freed). */
static void
end_call(struct sg_run_exec *x)
{
	free(x->call_body);
	x->call_body = NULL;
	x->call_busy = false;
	sg_run_exec_call_done(x);
}

/* Releases what the call held, its snapshot last: its pointers point into it. */
static void
finish_call(struct sg_run_exec *x)
{
	struct sg_snapshot *snap = x->call.snap;
	sg_req_finish(&x->call);
	sg_snapshot_unref(snap);
	end_call(x);
}

static void
complete(struct sg_run_exec *x)
{
	struct sg_req *r = &x->call;
	const char *capability = x->call_cap;
	char detail[600];
	sg_step_record(r, (sg_now_ns() - x->call_start_ns) / 1000);
	atomic_fetch_sub_explicit(&x->gw->in_flight, 1, memory_order_relaxed);
	if (r->problem == NULL) {
		add_span(x, capability, "allowed", 200, NULL, NULL, r->op ? r->op->cost : 0);
		send_result(x, r->output ? r->output : json_null(), NULL, NULL);
	} else {
		sg_problem_sanitize(detail, sizeof(detail), r->detail);
		add_span(x, capability, sg_decision_name(r->decision), r->status, r->problem->code,
		         detail, 0);
		send_result(x, NULL, r->problem->code, detail);
	}
	finish_call(x);
}

static void
refuse_undeclared(struct sg_run_exec *x)
{
	char detail[400];
	snprintf(detail, sizeof(detail),
	         "the template did not declare \"%s\": add it to capabilities in template.yaml",
	         x->call_cap);
	x->call.trace = x->doc.trace;
	add_span(x, x->call_cap, "denied", 403, "capability_not_declared", detail, 0);
	send_result(x, NULL, "capability_not_declared", detail);
	end_call(x);
}

static void
on_call_wake(evutil_socket_t fd, short what, void *arg)
{
	struct sg_run_exec *x = arg;
	(void)fd;
	(void)what;
	bool prepared = x->call.gw != NULL; /* set by prepare(); unset: not declared */
	if (x->worker_done && !x->call_walked) {
		/* The worker was killed before the call began: nobody waits for it. */
		if (prepared) {
			atomic_fetch_sub_explicit(&x->gw->in_flight, 1, memory_order_relaxed);
			finish_call(x);
		} else {
			end_call(x);
		}
		return;
	}
	if (!prepared) {
		refuse_undeclared(x);
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
 * Each call is identified and authorized against the snapshot that is
 * live when it starts, not the one the run started with: a key revoked or
 * a permission removed mid-run stops the run's next call, as it stops the
 * next direct call.  The run keeps its own snapshot for the template.
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
	r->connector_name = x->call_conn;
	r->operation_name = x->call_op;
	r->content_type = "application/json";
	r->body = x->call_body;
	r->body_len = strlen(x->call_body);
	r->io = &call_io;
	r->redis = x->t->redis;
	atomic_fetch_add_explicit(&x->gw->in_flight, 1, memory_order_relaxed);
	return 0;
}

/* "connector.operation" into the two names; the frame checked their characters. */
static bool
split(struct sg_run_exec *x, const char *capability)
{
	const char *dot = strchr(capability, '.');
	if (dot == NULL || (size_t)(dot - capability) >= sizeof(x->call_conn) ||
	    strlen(dot + 1) >= sizeof(x->call_op))
		return false;
	memcpy(x->call_conn, capability, (size_t)(dot - capability));
	x->call_conn[dot - capability] = '\0';
	snprintf(x->call_op, sizeof(x->call_op), "%s", dot + 1);
	return true;
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
	memset(&x->call, 0, sizeof(x->call));
	/* Declared names fit the buffers; anything else is refused as undeclared. */
	if (sg_template_capability(x->tpl, call->capability) != NULL &&
	    split(x, call->capability)) {
		x->call_body = json_dumps(call->args, JSON_COMPACT);
		if (x->call_body == NULL || prepare(x) != 0) {
			free(x->call_body);
			x->call_body = NULL;
			x->call_busy = false;
			return false;
		}
	}
	event_active(x->call_wake, EV_TIMEOUT, 1);
	return true;
}
