/*
 * The governed call: POST /v1/connectors/{connector}/{operation}.  The
 * transport work (headers, body, response) happens here; every decision is
 * made by the path steps.
 */
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "core/sg_fmt.h"
#include "http/sg_http.h"
#include "path/sg_path.h"
#include "path/step_throttle.h"

/* Fills the transport inputs of the request. */
static void
prepare(struct sg_http_ctx *c, struct sg_req *r, struct sg_snapshot *snap)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(c->req);
	struct timeval tv;

	sg_req_init(r, c->t->server->gw, snap);
	c->gov = r;
	r->trace = c->trace;
	r->now_ns = c->start_ns;
	gettimeofday(&tv, NULL);
	r->wall_s = tv.tv_sec;
	r->authorization = evhttp_find_header(in, "Authorization");
	r->throttle = c->t->throttle;
	r->fetcher = c->t->fetcher;
}

static void
read_body(struct sg_http_ctx *c, struct sg_req *r)
{
	struct evbuffer *buf = evhttp_request_get_input_buffer(c->req);
	size_t len = evbuffer_get_length(buf);
	/* One contiguous copy is what the JSON parser needs anyway. */
	r->body = len ? (const char *)evbuffer_pullup(buf, -1) : "";
	r->body_len = len;
}

/*
 * What an answered call cost, on every 200: sandbox calls show the price
 * they would have had, so explorers see the money side of experiments.
 */
static void
cost_headers(struct sg_http_ctx *c, const struct sg_req *r)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
	const struct sg_budgets *b = r->snap->defs->policy->budgets;
	const char *cur = b ? b->currency : "units";
	char v[256];
	struct sg_fmt f;
	sg_fmt_init(&f, v, sizeof(v));
	sg_fmt_decimal(&f, r->op->cost, 4);
	sg_fmt_str(&f, " ");
	sg_fmt_str(&f, cur);
	sg_fmt_str(&f, r->principal.mode == SG_MODE_LIVE ? " (live, charged)"
	                                                 : " (sandbox, not charged)");
	evhttp_add_header(h, "Sandgate-Cost", v);
	const struct sg_spend_line *ln = sg_throttle_budget_warning(r);
	if (ln == NULL || b == NULL)
		return;
	char resets[SG_UTC_LEN];
	sg_fmt_utc(ln->resets_at, resets);
	snprintf(v, sizeof(v), "%s %s budget %lld%% used: %.2f of %.2f %s; resets %s",
	         sg_budget_scope_name(ln->scope), sg_budget_period_name(ln->period),
	         (long long)(ln->spent * 100 / ln->limit), (double)ln->spent / SG_MICROS,
	         (double)ln->limit / SG_MICROS, cur, resets);
	evhttp_add_header(h, "Sandgate-Budget-Warning", v);
}

/* A used-up budget is worth retrying when it resets, not before. */
static void
budget_retry_after(struct sg_http_ctx *c, const struct sg_req *r, const struct sg_spend_line *ln)
{
	char v[32];
	long long wait = (long long)(ln->resets_at - r->wall_s);
	snprintf(v, sizeof(v), "%lld", wait > 0 ? wait : 1);
	evhttp_add_header(evhttp_request_get_output_headers(c->req), "Retry-After", v);
}

/*
 * A rotated key still works until its overlap ends; every reply to it says
 * when, so a client notices before it is refused.
 */
static void
key_expiry_header(struct sg_http_ctx *c, const struct sg_req *r)
{
	const struct sg_key_entry *k = r->principal.key;
	char v[40];
	struct tm tm;
	time_t t;
	if (k == NULL || !k->rotated || k->expires_at <= 0)
		return;
	t = (time_t)k->expires_at;
	/* IMF-fixdate (RFC 9110); the C locale's names, as for Date. */
	if (gmtime_r(&t, &tm) != NULL &&
	    strftime(v, sizeof(v), "%a, %d %b %Y %H:%M:%S GMT", &tm) > 0)
		evhttp_add_header(evhttp_request_get_output_headers(c->req), "Sandgate-Key-Expires",
		                  v);
}

static void
respond(struct sg_http_ctx *c, struct sg_req *r)
{
	key_expiry_header(c, r);
	/* Refusals before throttle still tell the caller where they stand. */
	if (sg_throttle_verdict(r) == NULL)
		(void)sg_throttle_standing(r);
	sg_http_rate_headers(c, r);
	const struct sg_spend_line *refused = sg_throttle_budget_refused(r);
	if (r->problem == sg_problem_def(SG_P_BUDGET_EXCEEDED) && refused != NULL)
		budget_retry_after(c, r, refused);
	if (r->served_by != NULL) /* a failover answered: the caller should know */
		evhttp_add_header(evhttp_request_get_output_headers(c->req), "Sandgate-Served-By",
		                  r->served_by);
	if (r->problem == NULL) {
		cost_headers(c, r);
		sg_http_send_jbuf(c, 200, &r->output, "application/json");
		return;
	}
	sg_http_send_refusal(c, r);
}

/* The path has stopped: answer, then record the decision and release its state. */
static void
complete(struct sg_http_ctx *c, struct sg_req *r)
{
	respond(c, r);
	sg_path_finish(r, (sg_now_ns() - c->start_ns) / 1000);
}

static void
copy_name(char *dst, size_t n, const char *name)
{
	struct sg_fmt f;
	sg_fmt_init(&f, dst, n);
	sg_fmt_str(&f, name);
}

void
sg_http_governed(struct sg_http_ctx *c, const char *connector, const char *operation)
{
	struct sg_req *r = &c->req_state;
	struct sg_snapshot *snap = sg_http_snapshot(c->t);

	if (snap == NULL) {
		sg_http_send_problem(c, SG_P_NOT_READY, "no catalog is loaded yet");
		return;
	}
	prepare(c, r, snap);
	c->governed = true;
	sg_path_begin(r);
	r->io = &sg_http_req_io;
	/* The router's buffers live on its stack; a suspended request outlives them. */
	copy_name(c->connector_name, sizeof(c->connector_name), connector);
	copy_name(c->operation_name, sizeof(c->operation_name), operation);
	r->connector_name = c->connector_name;
	r->operation_name = c->operation_name;
	struct evkeyvalq *in = evhttp_request_get_input_headers(c->req);
	r->content_type = evhttp_find_header(in, "Content-Type");
	r->priority = evhttp_find_header(in, "Sandgate-Priority");
	r->timeout = evhttp_find_header(in, "Sandgate-Timeout");
	read_body(c, r);
	if (sg_path_run(r) == SG_STEP_AGAIN) {
		sg_http_suspend(c);
		return;
	}
	complete(c, r);
}

void
sg_http_governed_resume(struct sg_http_ctx *c)
{
	struct sg_req *r = &c->req_state;
	r->now_ns = sg_now_ns();
	if (sg_path_run(r) == SG_STEP_AGAIN) {
		sg_http_suspend(c);
		return;
	}
	complete(c, r);
	sg_http_done(c);
}

int
sg_http_identify_or_reply(struct sg_http_ctx *c, struct sg_req *r)
{
	struct sg_snapshot *snap = sg_http_snapshot(c->t);
	if (snap == NULL) {
		sg_http_send_problem(c, SG_P_NOT_READY, "no catalog is loaded yet");
		return -1;
	}
	prepare(c, r, snap);
	enum sg_step_rc rc = sg_step_identify(r);
	key_expiry_header(c, r);
	if (rc == SG_STEP_NEXT)
		return 0;
	sg_http_send_refusal(c, r);
	return -1;
}
