/*
 * Routing and the governed call.  The router is a handful of fixed paths;
 * anything else is a problem+json 404, never libevent's HTML page.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/time.h>

#include "http/sg_http.h"
#include "http/sg_http_audit.h"
#include "obs/sg_log.h"
#include "path/sg_path.h"
#include "sandbox/sg_frame.h"
#include "throttle/sg_unauth.h"

#define CONNECTOR_PREFIX "/v1/connectors/"

struct sg_snapshot *
sg_http_snapshot(struct sg_io_thread *t)
{
	uint64_t gen = sg_snapshot_generation();
	if (gen != t->snap_gen || t->snap == NULL) {
		sg_snapshot_unref(t->snap);
		t->snap = sg_snapshot_current();
		t->snap_gen = t->snap ? t->snap->generation : 0;
	}
	return t->snap;
}

#define SESSION_PREFIX "/v1/sessions/"
#define TEMPLATE_PREFIX "/v1/templates/"
#define RUN_PREFIX "/v1/runs/"

/* "/v1/templates/{name}/runs" → name; -1 when the shape is wrong. */
static int
template_run_path(const char *path, char *name, size_t n)
{
	const char *p = path + strlen(TEMPLATE_PREFIX);
	const char *slash = strchr(p, '/');
	if (slash == NULL || slash == p || strcmp(slash, "/runs") != 0 || (size_t)(slash - p) >= n)
		return -1;
	memcpy(name, p, (size_t)(slash - p));
	name[slash - p] = '\0';
	return 0;
}

/* Run ids are "run_" and hex; anything else cannot name a run. */
static bool
valid_run_id(const char *s)
{
	size_t n = strlen(s);
	return n > 4 && n < 40 && strncmp(s, "run_", 4) == 0 &&
	       strspn(s + 4, "0123456789abcdef") == n - 4;
}

static bool
valid_session_id(const char *s)
{
	return strlen(s) == SG_KEY_ID_LEN && strspn(s, "0123456789abcdef") == SG_KEY_ID_LEN;
}

static bool
method_is(struct sg_http_ctx *c, enum evhttp_cmd_type want, const char *allow)
{
	if (evhttp_request_get_command(c->req) == want)
		return true;
	evhttp_add_header(evhttp_request_get_output_headers(c->req), "Allow", allow);
	char detail[96];
	snprintf(detail, sizeof(detail), "%s accepts only %s", c->path, allow);
	sg_http_send_problem(c, SG_P_METHOD_NOT_ALLOWED, detail);
	return false;
}

/* Splits "/v1/connectors/{c}/{op}" into two short names; -1 when the shape is wrong. */
static int
split_connector_path(const char *path, char *conn, size_t cn, char *op, size_t on)
{
	const char *p = path + strlen(CONNECTOR_PREFIX);
	const char *slash = strchr(p, '/');
	if (slash == NULL || slash == p || slash[1] == '\0' || strchr(slash + 1, '/'))
		return -1;
	if ((size_t)(slash - p) >= cn || strlen(slash + 1) >= on)
		return -1;
	memcpy(conn, p, (size_t)(slash - p));
	conn[slash - p] = '\0';
	snprintf(op, on, "%s", slash + 1);
	return 0;
}

static void
dispatch(struct sg_http_ctx *c)
{
	const char *p = c->path;
	char conn[96], op[96], name[SG_FRAME_TEMPLATE_MAX + 1];

	if (strcmp(p, "/healthz") == 0) {
		if (method_is(c, EVHTTP_REQ_GET, "GET"))
			sg_http_healthz(c);
	} else if (strcmp(p, "/readyz") == 0) {
		if (method_is(c, EVHTTP_REQ_GET, "GET"))
			sg_http_readyz(c, sg_http_admin_token_ok(c));
	} else if (strcmp(p, "/metrics") == 0) {
		/* Every tenant's name and spend: the operators' alone. */
		if (!sg_http_admin_token_ok(c))
			sg_http_send_problem(
			    c, SG_P_ROUTE_NOT_FOUND,
			    "/metrics is served on the admin listener (admin_listen in "
			    "sandgate.yaml), and here only with the admin token");
		else if (method_is(c, EVHTTP_REQ_GET, "GET"))
			sg_http_metrics(c);
	} else if (strcmp(p, "/v1/catalog") == 0) {
		if (method_is(c, EVHTTP_REQ_GET, "GET"))
			sg_http_catalog(c);
	} else if (strcmp(p, "/admin/v1/audit") == 0) {
		if (method_is(c, EVHTTP_REQ_GET, "GET"))
			sg_http_audit(c);
	} else if (strcmp(p, "/v1/me/usage") == 0) {
		if (method_is(c, EVHTTP_REQ_GET, "GET"))
			sg_http_usage(c);
	} else if (strcmp(p, "/v1/sessions") == 0) {
		if (method_is(c, EVHTTP_REQ_POST, "POST"))
			sg_http_session_start(c);
	} else if (strncmp(p, SESSION_PREFIX, strlen(SESSION_PREFIX)) == 0 &&
	           valid_session_id(p + strlen(SESSION_PREFIX))) {
		if (evhttp_request_get_command(c->req) == EVHTTP_REQ_DELETE)
			sg_http_session_end(c, p + strlen(SESSION_PREFIX));
		else if (method_is(c, EVHTTP_REQ_GET, "GET, DELETE"))
			sg_http_session_show(c, p + strlen(SESSION_PREFIX));
	} else if (strncmp(p, TEMPLATE_PREFIX, strlen(TEMPLATE_PREFIX)) == 0 &&
	           template_run_path(p, name, sizeof(name)) == 0) {
		if (method_is(c, EVHTTP_REQ_POST, "POST"))
			sg_http_run_start(c, name);
	} else if (strncmp(p, RUN_PREFIX, strlen(RUN_PREFIX)) == 0 &&
	           valid_run_id(p + strlen(RUN_PREFIX))) {
		if (method_is(c, EVHTTP_REQ_GET, "GET"))
			sg_http_run_show(c, p + strlen(RUN_PREFIX));
	} else if (strncmp(p, CONNECTOR_PREFIX, strlen(CONNECTOR_PREFIX)) == 0 &&
	           split_connector_path(p, conn, sizeof(conn), op, sizeof(op)) == 0) {
		if (method_is(c, EVHTTP_REQ_POST, "POST"))
			sg_http_governed(c, conn, op);
	} else {
		sg_http_send_problem(c, SG_P_ROUTE_NOT_FOUND, "there is nothing at this path");
	}
}

/* The admin listener: the operators' endpoints and nothing else. */
static void
dispatch_admin(struct sg_http_ctx *c)
{
	const char *p = c->path;
	if (strcmp(p, "/healthz") == 0) {
		if (method_is(c, EVHTTP_REQ_GET, "GET"))
			sg_http_healthz(c);
	} else if (strcmp(p, "/readyz") == 0) {
		if (method_is(c, EVHTTP_REQ_GET, "GET"))
			sg_http_readyz(c, true);
	} else if (strcmp(p, "/metrics") == 0) {
		if (method_is(c, EVHTTP_REQ_GET, "GET"))
			sg_http_metrics(c);
	} else {
		sg_http_send_problem(
		    c, SG_P_ROUTE_NOT_FOUND,
		    "the admin listener serves /healthz, /readyz and /metrics; the "
		    "API is on the public listener");
	}
}

static void
log_member(struct sg_jw *w, const char *key, const char *value)
{
	sg_jw_keyz(w, key);
	sg_jw_stringz(w, value);
}

/* The path, as sent: it may hold any byte, and a log line must stay JSON. */
static void
log_path(struct sg_jw *w, const char *path)
{
	if (path == NULL)
		return;
	sg_jw_keyz(w, "path");
	size_t n = strlen(path);
	if (sg_json_utf8_valid(path, n))
		sg_jw_string(w, path, n);
	else
		sg_jw_stringz(w, "(not UTF-8)");
}

static void
log_request(struct sg_http_ctx *c, int status, uint64_t latency_us)
{
	if (!c->t->server->cfg->log_requests)
		return;
	const struct sg_req *r = c->gov;
	const struct sg_key_entry *k = r ? r->principal.key : NULL;
	struct sg_jw w;
	sg_logbuf_line_begin(&c->t->log, &w, "info", "request");
	log_member(&w, "trace_id", c->trace.trace_id);
	sg_jw_keyz(&w, "status");
	sg_jw_int(&w, status);
	sg_jw_keyz(&w, "latency_us");
	sg_jw_uint(&w, latency_us);
	log_member(&w, "method",
	           c->governed || evhttp_request_get_command(c->req) == EVHTTP_REQ_POST ? "POST"
	                                                                               : "GET");
	log_path(&w, c->path);
	if (k) {
		log_member(&w, "tenant", k->tenant);
		log_member(&w, "user", k->user);
		log_member(&w, "key_id", k->id);
	}
	if (r && r->connector)
		log_member(&w, "connector", r->connector->name);
	if (r && r->op)
		log_member(&w, "operation", r->op->name);
	if (r) {
		log_member(&w, "decision", sg_decision_name(r->decision));
		sg_jw_keyz(&w, "queue_wait_us");
		sg_jw_uint(&w, r->queue_wait_us);
		if (r->problem)
			log_member(&w, "code", r->problem->code);
	}
	sg_logbuf_line_end(&c->t->log, &w);
}

/*
 * A context is about 3 KiB, beyond glibc's per-thread cache, so malloc
 * took the slow path (and often a fastbin consolidation) on every request:
 * about 4,000 instructions of 170,000.  A thread keeps a few finished ones.
 * Bounded, so a burst of parked requests does not pin its peak for good.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SPARE_MAX 0 /* let AddressSanitizer see every use after sg_http_done */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPARE_MAX 0
#endif
#endif
#ifndef SPARE_MAX
#define SPARE_MAX 64
#endif

static struct sg_http_ctx *
ctx_take(struct sg_io_thread *t)
{
	struct sg_http_ctx *c = t->spare;
	if (c == NULL)
		return malloc(sizeof(*c));
	t->spare = c->next;
	t->n_spare--;
	return c;
}

static void
ctx_give(struct sg_io_thread *t, struct sg_http_ctx *c)
{
	if (t->n_spare >= SPARE_MAX) {
		free(c);
		return;
	}
	c->next = t->spare;
	t->spare = c;
	t->n_spare++;
}

void
sg_http_spare_free(struct sg_io_thread *t)
{
	while (t->spare != NULL) {
		struct sg_http_ctx *c = t->spare;
		t->spare = c->next;
		free(c);
	}
	t->n_spare = 0;
}

/* The digits without leading zeros, so that "007" and "7" compare as one length. */
static const char *
skip_zeros(const char *v)
{
	while (v[0] == '0' && v[1] != '\0')
		v++;
	return v;
}

/*
 * RFC 9112 section 6.3: a Content-Length that is not 1*DIGIT ("+5"), or two
 * that differ, leave the end of the message in doubt.  libevent frames by
 * the first; a proxy in front may have used another, and then the bytes
 * after this request are a request nobody checked.  So answer 400 and
 * close.  Copies of one value say the same thing and are accepted, as the
 * RFC allows.  Returns NULL when the framing is sound, else why not.
 */
static const char *
framing_problem(const struct evkeyvalq *in)
{
	static const char name[] = "Content-Length";
	const char *first = NULL;
	const struct evkeyval *h;
	TAILQ_FOREACH(h, in, next)
	{
		/* Most headers differ in their first letter: skip them without a compare. */
		if ((h->key[0] | 0x20) != 'c' || strcasecmp(h->key, name) != 0)
			continue;
		if (h->value[0] == '\0' || strspn(h->value, "0123456789") != strlen(h->value))
			return "Content-Length must be digits only (RFC 9112 section 6.3)";
		if (first != NULL && strcmp(skip_zeros(first), skip_zeros(h->value)) != 0)
			return "two Content-Length headers with different values (RFC 9112 section "
			       "6.3); send one";
		first = h->value;
	}
	return NULL;
}

/* Refuses a request whose body's end is ambiguous, closing the connection after the reply. */
static bool
framing_ok_or_reply(struct sg_http_ctx *c)
{
	const char *why = framing_problem(evhttp_request_get_input_headers(c->req));
	if (why == NULL)
		return true;
	evhttp_add_header(evhttp_request_get_output_headers(c->req), "Connection", "close");
	sg_http_send_problem(c, SG_P_REQUEST_INVALID, why);
	return false;
}

/*
 * An address whose requests keep failing identify is refused before it,
 * with 429: its key is not even checked (sg_unauth.h).  Only /v1/ and
 * /admin/v1/ paths identify; the health endpoints stay open.
 */
static bool
unauth_gate_or_reply(struct sg_http_ctx *c)
{
	const struct sg_client *cl = sg_conn_client(c->conn);
	uint64_t wait_ns = 0;
	char v[24], detail[192];
	if (cl == NULL ||
	    (strncmp(c->path, "/v1/", 4) != 0 && strncmp(c->path, "/admin/v1/", 10) != 0) ||
	    sg_unauth_gate(c->t->server->gw->unauth, cl->key, c->start_ns, &wait_ns))
		return true;
	unsigned long long s = wait_ns / 1000000000ull + (wait_ns % 1000000000ull != 0);
	s = s ? s : 1;
	snprintf(v, sizeof(v), "%llu", s);
	evhttp_add_header(evhttp_request_get_output_headers(c->req), "Retry-After", v);
	snprintf(detail, sizeof(detail),
	         "too many requests without a valid API key came from %s; it may try again in "
	         "%llu s",
	         cl->text, s);
	sg_http_send_problem(c, SG_P_UNAUTHENTICATED_LIMITED, detail);
	return false;
}

/* The public API: identify, and everything after it, knows who the client is. */
static void
dispatch_public(struct sg_http_ctx *c)
{
	const struct sg_client *cl = sg_conn_client(c->conn);
	if (!unauth_gate_or_reply(c))
		return;
	if (cl != NULL)
		sg_unauth_enter(cl->key, cl->text);
	dispatch(c);
	sg_unauth_leave();
}

static void
on_request(struct evhttp_request *req, struct sg_io_thread *t, bool admin)
{
	struct sg_http_ctx *c = ctx_take(t);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

	if (c == NULL) {
		evhttp_send_error(req, 503, "out of memory");
		return;
	}
	/* The request state is zeroed by sg_req_init when a handler needs it. */
	memset(c, 0, offsetof(struct sg_http_ctx, req_state));
	c->t = t;
	c->req = req;
	c->admin = admin;
	c->conn = sg_conn_of(t, req);
	c->start_ns = sg_now_ns();
	atomic_fetch_add_explicit(&t->metrics->in_flight, 1, memory_order_relaxed);
	c->path = (path && *path) ? path : "/";
	sg_trace_begin(&c->trace,
	               evhttp_find_header(evhttp_request_get_input_headers(req), "traceparent"));
	if (framing_ok_or_reply(c)) {
		if (admin)
			dispatch_admin(c);
		else
			dispatch_public(c);
	}
	if (!c->is_suspended)
		sg_http_done(c);
}

void
sg_http_on_request(struct evhttp_request *req, void *arg)
{
	on_request(req, arg, false);
}

void
sg_http_on_admin_request(struct evhttp_request *req, void *arg)
{
	on_request(req, arg, true);
}

void
sg_http_done(struct sg_http_ctx *c)
{
	struct sg_io_thread *t = c->t;
	int status = c->req ? evhttp_request_get_response_code(c->req) : 503;
	uint64_t done = sg_now_ns();
	uint64_t latency_us = (done - c->start_ns) / 1000;
	const char *conn = (c->gov && c->gov->connector) ? c->gov->connector->name : NULL;
	sg_metrics_observe(t->metrics, conn, status, c->governed ? c->gov->decision : SG_DEC_COUNT,
	                   latency_us);
	log_request(c, status, latency_us);
	if (c->gov)
		sg_req_finish(c->gov); /* after a parked request's abandon, or the read-only API */
	if (c->wake_ev)
		event_free(c->wake_ev);
	sg_snapshot_unref(c->pinned);
	atomic_store_explicit(&t->last_done_ns, done, memory_order_relaxed);
	atomic_fetch_sub_explicit(&t->metrics->in_flight, 1, memory_order_relaxed);
	ctx_give(t, c);
}
