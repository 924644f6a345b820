/*
 * One template run on its I/O thread: the worker's socket, the run's
 * timers and its end.  A run ends once the worker is done (DONE read, or
 * the worker killed or gone) and no ctx.call is still walking the path;
 * only then is the document published and the waiting caller answered.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "runs/sg_run_exec.h"
#include "runs/sg_run_screen.h"
#include "obs/sg_log.h"
#include "runs/sg_runs.h"
#include "store/sg_recorder.h"

#define LOG_BYTES (64 * 1024)
#define EXIT_POLL_MS 10
#define EXIT_POLLS 50 /* how long a vanished worker's status is waited for: 0.5 s */

static void finish(struct sg_run_exec *x);
static void arm_timer(struct sg_run_exec *x);

static int64_t
wall_us(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* ---- leaving the worker ---- */

static void
detach(struct sg_run_exec *x)
{
	if (x->bev) {
		bufferevent_free(x->bev); /* the fd stays open: it is the pool's */
		x->bev = NULL;
	}
}

/* The worker cannot be trusted again (killed, dead, out of turn). */
static void
drop_worker(struct sg_run_exec *x)
{
	detach(x);
	if (x->has_worker)
		sg_sandbox_discard(x->gw->sandbox, &x->w);
	x->has_worker = false;
	x->worker_done = true;
}

static void
kill_for_limit(struct sg_run_exec *x, const char *limit, uint64_t value, const char *unit)
{
	sg_run_doc_limit(&x->doc, limit, value, unit);
	drop_worker(x);
	finish(x);
}

static void
kill_for_protocol(struct sg_run_exec *x, const char *why)
{
	sg_log(SG_LOG_WARN, NULL, "run %s: worker %d broke the protocol: %s", x->doc.id,
	       (int)x->w.pid, why);
	sg_run_doc_protocol(&x->doc, why);
	drop_worker(x);
	finish(x);
}

int
sg_run_exec_send(struct sg_run_exec *x, const struct sg_frame_msg *m, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	if (sg_frame_encode(m, SG_FRAME_MAX, &buf, &len, err, errlen) < 0)
		return -1;
	if (x->bev == NULL) {
		free(buf);
		return 0; /* the worker is gone already; the run is ending */
	}
	int rc = bufferevent_write(x->bev, buf, len);
	free(buf);
	if (rc != 0)
		kill_for_protocol(x, "cannot queue a frame for the worker");
	return 0;
}

/* ---- the worker's frames ---- */

static void
on_done_frame(struct sg_run_exec *x, const struct sg_frame_done *f, size_t left)
{
	if (strcmp(f->run_id, x->doc.id) != 0) {
		kill_for_protocol(x, "its DONE names another run");
		return;
	}
	sg_run_doc_done(&x->doc, f, &x->tpl->limits);
	x->worker_done = true;
	uint64_t cpu = 0;
	if (sg_sandbox_cpu_ns(x->w.pid, &cpu) && cpu > x->cpu_start_ns)
		x->doc.cpu_ms = (double)(cpu - x->cpu_start_ns) / 1e6;
	/*
	 * Bytes after DONE are out of turn, and a frame of ours still unsent
	 * means it answered before reading it: either way it is not given
	 * another run, which would start mid-frame.
	 */
	bool clean = left == 0 && evbuffer_get_length(bufferevent_get_output(x->bev)) == 0;
	detach(x);
	if (!clean)
		drop_worker(x);
	else {
		sg_sandbox_release(x->gw->sandbox, &x->w);
		x->has_worker = false;
	}
	finish(x);
}

/* One message from the worker; false when the run has ended (x may be gone). */
static bool
on_message(struct sg_run_exec *x, struct sg_frame_msg *m, size_t left)
{
	if (m->type == SG_FRAME_CALL) {
		if (x->call_busy || m->call.seq > x->tpl->limits.calls) {
			if (x->call_busy)
				kill_for_protocol(x, "a second CALL before the first was answered");
			else
				kill_for_limit(x, "calls", x->tpl->limits.calls, "calls");
			return false;
		}
		if (!sg_run_call_start(x, &m->call)) {
			kill_for_protocol(x, "a CALL the gateway cannot take");
			return false;
		}
		return true;
	}
	if (m->type == SG_FRAME_DONE && !x->call_busy) {
		on_done_frame(x, &m->done, left);
		return false;
	}
	kill_for_protocol(x, m->type == SG_FRAME_DONE ? "DONE while a call was unanswered"
	                                              : "a frame out of turn");
	return false;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct sg_run_exec *x = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	while ((len = evbuffer_get_length(in)) > 0) {
		struct sg_frame_msg m = {0};
		size_t used = 0;
		const uint8_t *p = evbuffer_pullup(in, -1);
		enum sg_frame_rc rc = sg_frame_decoder_feed(x->dec, p, len, &used, &m);
		evbuffer_drain(in, used);
		if (rc == SG_FRAME_ERROR) {
			kill_for_protocol(x, sg_frame_decoder_error(x->dec));
			return;
		}
		if (rc == SG_FRAME_MORE)
			return;
		bool go_on = on_message(x, &m, len - used);
		sg_frame_msg_clear(&m);
		if (!go_on)
			return;
	}
}

/* The worker closed its socket or it failed: wait for its exit status. */
static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct sg_run_exec *x = arg;
	(void)bev;
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	detach(x);
	x->exit_polls = 1;
	arm_timer(x);
}

/* ---- timers ---- */

static void
vanished(struct sg_run_exec *x, bool have_status, int status)
{
	uint64_t oom = 0;
	bool oom_killed = x->has_oom && sg_sandbox_oom_kills(x->gw->sandbox, x->doc.tenant, &oom) &&
	                  oom > x->oom_before;
	sg_run_doc_vanished(&x->doc, have_status, status, oom_killed,
	                    x->gw->config->sandbox_tenant_memory);
	drop_worker(x);
	finish(x);
}

static void
check_exit(struct sg_run_exec *x)
{
	int status;
	if (sg_sandbox_exit_status(x->gw->sandbox, x->w.pid, &status))
		vanished(x, true, status);
	else if (x->exit_polls++ >= EXIT_POLLS)
		vanished(x, false, 0);
	else
		arm_timer(x);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct sg_run_exec *x = arg;
	uint64_t now = sg_now_ns(), cpu = 0;
	(void)fd;
	(void)what;
	if (x->exit_polls > 0) {
		check_exit(x);
		return;
	}
	if (now >= x->deadline_ns) {
		kill_for_limit(x, "wall_time", x->tpl->limits.wall_ms, "ms");
		return;
	}
	if (x->has_cpu && sg_sandbox_cpu_ns(x->w.pid, &cpu) && cpu > x->cpu_start_ns &&
	    cpu - x->cpu_start_ns >= (uint64_t)x->tpl->limits.cpu_ms * 1000000ull) {
		kill_for_limit(x, "cpu_time", x->tpl->limits.cpu_ms, "ms");
		return;
	}
	arm_timer(x);
}

/*
 * Next check: the wall deadline, or sooner when the CPU limit could be
 * reached first (a run can use CPU no faster than wall time passes).
 */
static void
arm_timer(struct sg_run_exec *x)
{
	uint64_t now = sg_now_ns(), cpu = 0, at = x->deadline_ns;
	if (x->exit_polls > 0) {
		at = now + EXIT_POLL_MS * 1000000ull;
	} else if (x->has_cpu && sg_sandbox_cpu_ns(x->w.pid, &cpu)) {
		uint64_t used = cpu > x->cpu_start_ns ? cpu - x->cpu_start_ns : 0;
		uint64_t cap = (uint64_t)x->tpl->limits.cpu_ms * 1000000ull;
		uint64_t cpu_at = now + (cap > used ? cap - used : 0);
		if (cpu_at < at)
			at = cpu_at;
	}
	uint64_t d = at > now ? at - now : 0;
	struct timeval tv = {(time_t)(d / 1000000000ull), (suseconds_t)(d % 1000000000ull / 1000)};
	event_add(x->timer, &tv);
}

/* ---- the end ---- */

static void
persist(struct sg_run_exec *x, const char *doc)
{
	struct sg_run_row row = {.started_us = x->doc.started_us, .ended_us = x->doc.ended_us};
	snprintf(row.id, sizeof(row.id), "%s", x->doc.id);
	snprintf(row.tenant, sizeof(row.tenant), "%s", x->doc.tenant);
	snprintf(row.user, sizeof(row.user), "%s", x->doc.user);
	snprintf(row.template_name, sizeof(row.template_name), "%s", x->doc.template_name);
	snprintf(row.status, sizeof(row.status), "%s",
	         x->doc.status == SG_RUN_SUCCEEDED ? "succeeded" : "failed");
	snprintf(row.trace_id, sizeof(row.trace_id), "%s", x->doc.trace.trace_id);
	if (x->gw->recorder == NULL || (row.doc = strdup(doc)) == NULL)
		return;
	if (sg_recorder_push_run(x->gw->recorder, &row) != 0)
		free(row.doc);
}

/* Publishes the document as it stands; the text is kept by the registry. */
static void
publish(struct sg_run_exec *x, bool finished)
{
	json_t *j = sg_run_doc_json(&x->doc);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (text == NULL)
		return;
	if (finished)
		persist(x, text);
	sg_runs_publish(x->gw->runs, x->doc.id, x->doc.tenant, text, finished);
}

static void
free_exec(struct sg_run_exec *x)
{
	detach(x);
	if (x->timer)
		event_free(x->timer);
	if (x->call_wake)
		event_free(x->call_wake);
	if (x->wait_ev)
		event_free(x->wait_ev);
	sg_frame_decoder_free(x->dec);
	sg_run_doc_clear(&x->doc);
	sg_snapshot_unref(x->snap);
	if (x->on_done == NULL) { /* a run nobody waits for keeps the drain waiting itself */
		atomic_fetch_sub_explicit(&x->t->metrics->in_flight, 1, memory_order_relaxed);
		atomic_store_explicit(&x->t->last_done_ns, sg_now_ns(), memory_order_relaxed);
	}
	free(x->authorization);
	free(x->run_frame);
	free(x);
}

static void
finish(struct sg_run_exec *x)
{
	if (!x->worker_done || x->call_busy)
		return; /* the call in progress ends the run when it returns */
	event_del(x->timer);
	x->doc.ended_us = wall_us();
	/* A run that never got a worker never started its clock. */
	x->doc.wall_ms = x->start_ns ? (double)(sg_now_ns() - x->start_ns) / 1e6 : 0;
	x->doc.n_calls = (uint32_t)json_array_size(x->doc.calls);
	/* Before it is stored or shown: stored data outlives the call. */
	(void)sg_run_screen(&x->doc, x->snap, x->role, x->mode, x->gw->dlp_token_key);
	publish(x, true);
	if (x->on_done)
		x->on_done(x, x->on_done_arg);
	free_exec(x);
}

void
sg_run_exec_call_done(struct sg_run_exec *x)
{
	if (x->worker_done)
		finish(x);
}

/* ---- the start ---- */

/* The whole RUN frame, made before a worker is taken: one that cannot be sent costs none. */
static int
encode_run(struct sg_run_exec *x, json_t *input, char *err, size_t errlen)
{
	struct sg_frame_msg m = {.type = SG_FRAME_RUN};
	m.run.run_id = x->doc.id;
	m.run.template_name = x->tpl->name;
	m.run.source = x->tpl->source;
	m.run.input = input;
	m.run.limits = (struct sg_frame_limits){.instructions = x->tpl->limits.instructions,
	                                        .memory_bytes = x->tpl->limits.memory_bytes,
	                                        .calls = x->tpl->limits.calls,
	                                        .log_bytes = LOG_BYTES};
	return sg_frame_encode(&m, SG_FRAME_MAX, &x->run_frame, &x->run_frame_len, err, errlen);
}

static int
attach(struct sg_run_exec *x)
{
	x->bev = bufferevent_socket_new(x->t->base, x->w.fd, 0);
	x->dec = sg_frame_decoder_new(SG_FRAME_PEER_WORKER, SG_FRAME_MAX);
	if (x->bev == NULL || x->dec == NULL)
		return -1;
	sg_frame_decoder_skip_ready(x->dec); /* read when the worker was made */
	bufferevent_setcb(x->bev, on_read, NULL, on_event, x);
	return bufferevent_enable(x->bev, EV_READ);
}

/* The worker is x's: hand it the RUN and start the clocks.  -1: nothing was sent. */
static int
begin(struct sg_run_exec *x)
{
	if (attach(x) != 0 || bufferevent_write(x->bev, x->run_frame, x->run_frame_len) != 0) {
		/* The worker saw nothing of this run: it goes back as it was. */
		detach(x);
		sg_sandbox_release(x->gw->sandbox, &x->w);
		return -1;
	}
	x->has_worker = true;
	x->doc.worker_pid = x->w.pid;
	x->start_ns = sg_now_ns();
	x->deadline_ns = x->start_ns + (uint64_t)x->tpl->limits.wall_ms * 1000000ull;
	x->doc.started_us = wall_us();
	x->has_oom = sg_sandbox_oom_kills(x->gw->sandbox, x->doc.tenant, &x->oom_before);
	x->has_cpu = sg_sandbox_cpu_ns(x->w.pid, &x->cpu_start_ns);
	/* Only a run nobody waits for can be asked about before it ends. */
	if (x->on_done == NULL)
		publish(x, false);
	arm_timer(x);
	return 0;
}

static void
no_worker(struct sg_run_exec *x, const char *why)
{
	sg_log(SG_LOG_WARN, NULL, "sandbox: run %s: no worker: %s", x->doc.id, why);
	x->doc.status = SG_RUN_FAILED;
	x->doc.problem = SG_P_SANDBOX_UNAVAILABLE;
	x->doc.started_us = wall_us();
	snprintf(x->doc.error_code, sizeof(x->doc.error_code), "sandbox_unavailable");
	snprintf(x->doc.message, sizeof(x->doc.message), "no sandbox worker could be started");
	x->worker_done = true;
	finish(x);
}

/* The keeper made (or failed to make) this run's worker; on the run's own thread. */
static void
on_worker_made(evutil_socket_t fd, short what, void *arg)
{
	struct sg_run_exec *x = arg;
	(void)fd;
	(void)what;
	if (x->wait.rc != 0) {
		no_worker(x, x->wait.err);
		return;
	}
	x->w = x->wait.w;
	if (begin(x) != 0)
		no_worker(x, "the RUN could not be queued for the worker");
}

/* Called on the keeper thread: only wakes the run's own. */
static void
worker_made(void *arg)
{
	struct sg_run_exec *x = arg;
	event_active(x->wait_ev, EV_TIMEOUT, 1);
}

enum sg_run_start
sg_run_exec_start(struct sg_run_exec *x, json_t *input, char *err, size_t errlen)
{
	snprintf(err, errlen, "out of memory for a run");
	if (encode_run(x, input, err, errlen) != 0)
		return SG_RUN_TOO_LARGE;
	x->timer = event_new(x->t->base, -1, 0, on_timer, x);
	x->wait_ev = event_new(x->t->base, -1, 0, on_worker_made, x);
	if (x->timer == NULL || x->wait_ev == NULL)
		return SG_RUN_UNAVAILABLE;
	x->wait.ready = worker_made;
	x->wait.arg = x;
	enum sg_sandbox_acquire got = sg_sandbox_acquire(x->gw->sandbox, x->doc.tenant, x->doc.user,
	                                                 x->doc.mode, &x->w, &x->wait, err, errlen);
	if (got == SG_SANDBOX_BUSY || got == SG_SANDBOX_UNAVAILABLE)
		return got == SG_SANDBOX_BUSY ? SG_RUN_BUSY : SG_RUN_UNAVAILABLE;
	if (got == SG_SANDBOX_GOT && begin(x) != 0)
		return SG_RUN_UNAVAILABLE;
	/* Under way, or waiting for its worker: either way it ends through finish(). */
	if (x->on_done == NULL)
		atomic_fetch_add_explicit(&x->t->metrics->in_flight, 1, memory_order_relaxed);
	if (got == SG_SANDBOX_WAIT && x->on_done == NULL)
		publish(x, false);
	return SG_RUN_STARTED;
}

void
sg_run_exec_free_unstarted(struct sg_run_exec *x)
{
	if (x->timer)
		event_free(x->timer);
	if (x->wait_ev)
		event_free(x->wait_ev);
	sg_frame_decoder_free(x->dec);
	sg_snapshot_unref(x->snap);
	sg_run_doc_clear(&x->doc);
	free(x->authorization);
	free(x->run_frame);
	free(x);
}
