/*
 * sg_run_exec: one template run, driven on the I/O thread that accepted
 * it.  The run holds one sandbox worker for its whole life: it sends RUN,
 * answers each CALL by walking the governed path as the caller, and ends
 * on DONE, on a limit (wall clock, CPU) or when the worker dies.  Nothing
 * the worker says is trusted: any frame out of place kills it.
 *
 *   http/sg_http_runs.c   the HTTP API: start a run, show a run
 *   sg_run_exec.c         the worker's socket, timers, the end of a run
 *   sg_run_call.c         ctx.call through the governed path
 *   sg_run_doc.c          what a run ended with, as the run document
 *
 * A run lives on the I/O thread that accepted it (struct sg_io_thread):
 * its events are on that thread's base, and its calls wait in that
 * thread's fair queue.
 */
#ifndef SG_RUN_EXEC_H
#define SG_RUN_EXEC_H

#include <event2/bufferevent.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "catalog/sg_template.h"
#include "http/sg_http.h"
#include "runs/sg_run_doc.h"
#include "sandbox/sg_frame.h"
#include "sandbox/sg_sandbox.h"

struct sg_run_exec;

/* Called once when the run has ended and its document is published. */
typedef void (*sg_run_done_fn)(struct sg_run_exec *x, void *arg);

struct sg_run_exec {
	struct sg_io_thread *t;
	struct sg_gateway *gw;
	struct sg_snapshot *snap; /* a reference: the template and catalog stay valid */
	const struct sg_template *tpl;
	char *authorization; /* the caller's credential; every ctx.call identifies with it */
	char role[64];       /* the caller's role: the run's output and logs are screened for it */
	enum sg_mode mode;
	struct sg_run_doc doc;
	/* The worker, or the wait for the keeper to make one. */
	struct sg_sandbox_worker w;
	struct sg_sandbox_wait wait;
	struct event *wait_ev;
	bool has_worker;
	struct bufferevent *bev;
	struct sg_frame_decoder *dec;
	struct event *timer; /* wall clock and CPU checks, then waiting for an exit status */
	uint64_t start_ns, deadline_ns, cpu_start_ns;
	uint64_t oom_before;
	bool has_oom, has_cpu; /* the readings at the start worked */
	uint8_t *run_frame;    /* the RUN, encoded before a worker is taken */
	size_t run_frame_len;
	int exit_polls;
	bool worker_done; /* DONE read, or the worker is gone */
	/* The ctx.call in progress, at most one (the worker waits for its result). */
	bool call_busy, call_walked; /* walked: the path has run at least once */
	uint32_t seq;
	char call_cap[SG_FRAME_CAPABILITY_MAX + 1];
	struct sg_req call;
	struct event *call_wake;
	char call_conn[96], call_op[96];
	char *call_body;
	uint64_t call_start_ns;
	/* Who waits for the end. */
	sg_run_done_fn on_done;
	void *on_done_arg;
};

enum sg_run_start {
	SG_RUN_STARTED,     /* x is the run's now; on_done is called once, from the loop */
	SG_RUN_BUSY,        /* the tenant has tenant_runs runs in progress */
	SG_RUN_UNAVAILABLE, /* no worker: err says why (for the log) */
	SG_RUN_TOO_LARGE,   /* input and source do not fit in one frame: err says so */
};

/*
 * Starts `x` (filled by the caller: t, gw, snap with a reference taken,
 * tpl, authorization, on_done and doc's identity; `input` is borrowed).
 * Unless SG_RUN_STARTED, x stays the caller's to free (sg_run_exec_free).
 */
enum sg_run_start sg_run_exec_start(struct sg_run_exec *x, json_t *input, char *err, size_t errlen);
/* Frees a run that did not start. */
void sg_run_exec_free_unstarted(struct sg_run_exec *x);

/* sg_run_call.c: answers one CALL frame; false when the frame must kill the worker. */
bool sg_run_call_start(struct sg_run_exec *x, const struct sg_frame_call *call);
/*
 * sg_run_exec.c, for the call module: sends a frame to the worker.
 * -1 with err when the message cannot be a frame (nothing sent); a socket
 * failure kills the worker instead.  Call it only while call_busy is set,
 * so that a kill cannot end (and free) the run under the caller.
 */
int sg_run_exec_send(struct sg_run_exec *x, const struct sg_frame_msg *m, char *err, size_t errlen);
/* The call finished: the run may end now if the worker has. */
void sg_run_exec_call_done(struct sg_run_exec *x);

#endif
