/*
 * Template runs over HTTP: POST /v1/templates/{name}/runs starts one,
 * GET /v1/runs/{id} shows one.  The caller is identified like any API
 * call; the template must exist, the caller's role must be allowed every
 * operation the template declares, and the input must match its schema,
 * all before a worker is taken.
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runs/sg_run_exec.h"
#include "obs/sg_log.h"
#include "path/sg_path.h"
#include "runs/sg_runs.h"

/* "run_" + 12 hex digits of milliseconds + 16 random: ordered by start, not guessable. */
static void
new_run_id(char *out, size_t n, int64_t now_us)
{
	uint8_t rnd[8];
	randombytes_buf(rnd, sizeof(rnd));
	snprintf(out, n, "run_%012llx%02x%02x%02x%02x%02x%02x%02x%02x",
	         (unsigned long long)(now_us / 1000) & 0xffffffffffffull, rnd[0], rnd[1], rnd[2],
	         rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
}

static bool
wants_no_wait(struct sg_http_ctx *c)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(c->req);
	const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq args;
	bool no_wait = false;
	if (q == NULL || evhttp_parse_query_str(q, &args) != 0)
		return false;
	const char *w = evhttp_find_header(&args, "wait");
	no_wait = w != NULL && strcmp(w, "false") == 0;
	evhttp_clear_headers(&args);
	return no_wait;
}

/* ---- checks before a worker is taken ---- */

/* The caller's role must be allowed every declared operation: a template adds no power. */
static bool
role_covers(struct sg_http_ctx *c, const struct sg_req *r, const struct sg_template *tpl)
{
	const struct sg_role *role = r->principal.role;
	enum sg_mode m = r->principal.mode;
	for (size_t i = 0; i < tpl->n_caps; i++) {
		if (sg_role_allows(role, m, tpl->ops[i]))
			continue;
		char detail[400];
		snprintf(detail, sizeof(detail),
		         "the template calls %s, which your role (%s) may not call in %s mode",
		         tpl->capabilities[i], role->name, sg_mode_name(m));
		sg_http_send_problem(c, SG_P_CAPABILITY_FORBIDDEN, detail);
		return false;
	}
	return true;
}

static void
send_req_problem(struct sg_http_ctx *c, struct sg_req *r)
{
	sg_http_send_refusal(c, r);
}

/* ---- answering ---- */

/* A run that did not succeed: its problem, with the run document in it. */
static void
send_run_problem(struct sg_http_ctx *c, struct sg_run_exec *x, json_t *doc)
{
	const struct sg_problem_def *p = sg_problem_def(x->doc.problem);
	/* Run documents are jansson's (written once per run, beside the store's copy). */
	char *run = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	struct sg_jbuf ext = {0}, body = {0};
	struct sg_jw w;
	sg_jw_begin(&w, &ext);
	sg_jw_object(&w);
	sg_jw_keyz(&w, "run_id");
	sg_jw_stringz(&w, x->doc.id);
	sg_jw_keyz(&w, "run");
	sg_jw_raw(&w, run ? run : "null", run ? strlen(run) : 4);
	sg_jw_object_end(&w);
	if (run != NULL && sg_jw_end(&w) == 0 &&
	    sg_problem_write(&body, p, x->doc.message, c->trace.trace_id, c->path, &ext) == 0)
		sg_http_send_jbuf(c, p->status, &body, "application/problem+json");
	else
		sg_http_send_problem(c, SG_P_INTERNAL, "the run's result could not be rendered");
	free(run);
	sg_jbuf_release(&ext);
	sg_jbuf_release(&body);
}

static void
answer_sync(struct sg_run_exec *x, void *arg)
{
	struct sg_http_ctx *c = arg;
	json_t *doc = sg_run_doc_json(&x->doc);
	if (doc == NULL) {
		sg_http_send_problem(c, SG_P_INTERNAL, "the run's result could not be rendered");
	} else if (x->doc.status == SG_RUN_SUCCEEDED) {
		sg_http_send_json(c, 200, doc, "application/json");
	} else {
		send_run_problem(c, x, doc);
	}
	c->is_suspended = false;
	sg_http_done(c);
}

static void
answer_accepted(struct sg_http_ctx *c, const char *id)
{
	char self[96];
	snprintf(self, sizeof(self), "/v1/runs/%s", id);
	evhttp_add_header(evhttp_request_get_output_headers(c->req), "Location", self);
	sg_http_send_json(
	    c, 202,
	    json_pack("{s:s, s:s, s:{s:s}}", "id", id, "status", "running", "links", "self", self),
	    "application/json");
}

/* ---- the run ---- */

static struct sg_run_exec *
new_exec(struct sg_http_ctx *c, struct sg_req *r, const struct sg_template *tpl)
{
	struct sg_run_exec *x = calloc(1, sizeof(*x));
	if (x == NULL || sg_run_doc_init(&x->doc) != 0 ||
	    (x->authorization = strdup(r->authorization)) == NULL) {
		if (x)
			sg_run_doc_clear(&x->doc);
		free(x);
		return NULL;
	}
	x->t = c->t;
	x->gw = r->gw;
	x->snap = r->snap;
	sg_snapshot_ref(x->snap);
	x->tpl = tpl;
	snprintf(x->role, sizeof(x->role), "%s", r->principal.role->name);
	x->mode = r->principal.mode;
	const struct sg_key_entry *k = r->principal.key;
	struct sg_run_doc *d = &x->doc;
	new_run_id(d->id, sizeof(d->id), (int64_t)r->wall_s * 1000000);
	snprintf(d->template_name, sizeof(d->template_name), "%s", tpl->name);
	snprintf(d->version, sizeof(d->version), "%s", tpl->version);
	snprintf(d->tenant, sizeof(d->tenant), "%s", k->tenant);
	snprintf(d->user, sizeof(d->user), "%s", k->user);
	snprintf(d->mode, sizeof(d->mode), "%s", sg_mode_name(r->principal.mode));
	d->trace = c->trace;
	return x;
}

static void
start_run(struct sg_http_ctx *c, struct sg_req *r, const struct sg_template *tpl)
{
	char err[512];
	bool no_wait = wants_no_wait(c);
	struct sg_run_exec *x = new_exec(c, r, tpl);
	if (x == NULL) {
		sg_http_send_problem(c, SG_P_INTERNAL, "out of memory for a run");
		return;
	}
	char id[40];
	snprintf(id, sizeof(id), "%s", x->doc.id);
	if (!no_wait) {
		x->on_done = answer_sync;
		x->on_done_arg = c;
		c->is_suspended = true; /* answered by answer_sync */
	}
	/* The sandbox's frames carry jansson values: the checked body is read once more. */
	json_t *input = r->body_len ? json_loadb(r->body, r->body_len, 0, NULL) : json_object();
	enum sg_run_start got = input ? sg_run_exec_start(x, input, err, sizeof(err)) : SG_RUN_UNAVAILABLE;
	json_decref(input);
	if (got == SG_RUN_STARTED) {
		if (no_wait)
			answer_accepted(c, id);
		return;
	}
	c->is_suspended = false;
	sg_run_exec_free_unstarted(x);
	if (got == SG_RUN_BUSY) {
		evhttp_add_header(evhttp_request_get_output_headers(c->req), "Retry-After", "1");
		sg_http_send_problem(c, SG_P_RUNS_LIMITED,
		                     "your team already has the most runs in progress at once");
	} else if (got == SG_RUN_TOO_LARGE) {
		sg_http_send_problem(
		    c, SG_P_BODY_TOO_LARGE,
		    "the input and the template's source together are over the 1 MiB "
		    "a run can be given; send a smaller input");
	} else {
		sg_log(SG_LOG_WARN, NULL, "sandbox: cannot run a template: %s", err);
		sg_http_send_problem(c, SG_P_SANDBOX_UNAVAILABLE,
		                     "no sandbox worker could be started");
	}
}

void
sg_http_run_start(struct sg_http_ctx *c, const char *name)
{
	struct sg_req *r = &c->req_state;
	struct sg_gateway *gw = c->t->server->gw;
	if (gw->sandbox == NULL) {
		sg_http_send_problem(c, SG_P_SANDBOX_UNAVAILABLE,
		                     "templates are turned off on this gateway (sandbox.enabled)");
		return;
	}
	if (sg_http_identify_or_reply(c, r) != 0)
		return;
	const struct sg_template *tpl = sg_defs_template(r->snap->defs, name);
	if (tpl == NULL) {
		char detail[200];
		snprintf(detail, sizeof(detail), "there is no template named \"%.100s\"", name);
		sg_http_send_problem(c, SG_P_TEMPLATE_NOT_FOUND, detail);
		return;
	}
	if (!role_covers(c, r, tpl))
		return;
	struct evbuffer *buf = evhttp_request_get_input_buffer(c->req);
	r->body_len = evbuffer_get_length(buf);
	r->body = r->body_len ? (const char *)evbuffer_pullup(buf, -1) : "";
	r->content_type =
	    evhttp_find_header(evhttp_request_get_input_headers(c->req), "Content-Type");
	if (sg_validate_body(r, tpl->input) != SG_STEP_NEXT) {
		send_req_problem(c, r);
		return;
	}
	start_run(c, r, tpl);
}

/* The reader thread has answered: on the request's own I/O thread. */
static void
on_stored_run(evutil_socket_t fd, short what, void *arg)
{
	struct sg_runs_read *rd = arg;
	struct sg_http_ctx *c = sg_runs_read_user(rd);
	char *doc = NULL;
	(void)fd;
	(void)what;
	int rc = sg_runs_read_finish(c->t->server->gw->runs, rd, &doc);
	sg_http_unsuspend(c);
	if (rc == 0)
		sg_http_send_text(c, 200, doc, strlen(doc), "application/json");
	else if (rc == 1)
		sg_http_send_problem(c, SG_P_RUN_UNKNOWN,
		                     "there is no run with this id for your team");
	else
		sg_http_send_problem(c, SG_P_INTERNAL,
		                     "the run could not be read from the store; try again");
	free(doc);
	sg_http_done(c);
}

/* On the reader thread: only wakes the request's own thread. */
static void
wake_request(void *arg)
{
	event_active(arg, EV_TIMEOUT, 1);
}

/*
 * A run no longer in memory is read from the store by the registry's
 * reader thread, so this thread never waits on disk.  The request is
 * parked meanwhile (its snapshot pinned: the principal points into it),
 * and answered by on_stored_run.  -1 when it cannot be parked.
 */
static int
show_from_store(struct sg_http_ctx *c, struct sg_runs *runs, const char *id, const char *tenant)
{
	struct sg_runs_read *rd = sg_runs_read_new(runs, id, tenant, c);
	if (rd == NULL)
		return -1;
	c->wake_ev = event_new(c->t->base, -1, 0, on_stored_run, rd); /* freed by sg_http_done */
	if (c->wake_ev == NULL) {
		sg_runs_read_finish(runs, rd, NULL);
		return -1;
	}
	sg_http_suspend(c);
	sg_runs_read_submit(runs, rd, wake_request, c->wake_ev);
	return 0;
}

void
sg_http_run_show(struct sg_http_ctx *c, const char *id)
{
	struct sg_req *r = &c->req_state;
	if (sg_http_identify_or_reply(c, r) != 0)
		return;
	struct sg_runs *runs = c->t->server->gw->runs;
	const char *tenant = r->principal.key->tenant;
	char *doc = NULL;
	int held = runs ? sg_runs_lookup(runs, id, tenant, &doc) : -1;
	if (held == 0) {
		sg_http_send_text(c, 200, doc, strlen(doc), "application/json");
		free(doc);
		return;
	}
	if (held == 1 && show_from_store(c, runs, id, tenant) == 0)
		return;
	sg_http_send_problem(c, SG_P_RUN_UNKNOWN, "there is no run with this id for your team");
}
