/*
 * route, to a real upstream: one call becomes one or more attempts.
 *
 *   admit     the host's breaker (and any pause the host asked for)
 *   build     the request from the definition, plus the credential
 *   fetch     through the thread's fetcher; the egress guard judges
 *             every address before connect
 *   judge     the answer: success (output schema checked), a redirect
 *             to follow, a retry after backoff, a failover, or a problem
 *
 * The fetch completes on the event loop; its callback only keeps the
 * outcome and wakes the request, and the path judges it when it resumes,
 * so every decision is made on the path, in one place: what an answer
 * becomes is step_route_judge.c, and the OAuth2 token exchange that may come
 * before an attempt is step_route_token.c.
 */
#include <curl/curl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/sg_catalog.h"
#include "core/sg_clock.h"
#include "path/sg_path.h"
#include "path/step_route_live.h"
#include "policy/sg_policy.h"
#include "upstream/sg_breaker.h"
#include "upstream/sg_oauth.h"
#include "upstream/sg_retry.h"
#include "upstream/sg_upreq.h"

static void
forget_result(struct live *lv)
{
	free(lv->body);
	free(lv->location);
	lv->body = lv->location = NULL;
	lv->body_len = 0;
	lv->have_result = false;
	lv->refused = false;
	lv->retry_after[0] = '\0';
}

static void
wipe_free(char *s)
{
	if (s != NULL) {
		sodium_memzero(s, strlen(s));
		free(s);
	}
}

void
sg_route_live_release(struct sg_req *r, struct route_ctx *rc)
{
	struct live *lv = rc->live;
	(void)r;
	if (lv == NULL)
		return;
	rc->live = NULL;
	if (lv->fetch != NULL)
		sg_fetch_cancel(lv->fetch); /* its callback sees SG_FETCH_CANCELLED: no wake */
	/* A refresher that goes away lets the next call refresh, rather than all wait. */
	if (lv->token_fetch && lv->oauth != NULL)
		sg_oauth_failed(lv->oauth);
	if (lv->token_fetch && lv->body != NULL)
		sodium_memzero(lv->body, lv->body_len);
	forget_result(lv);
	wipe_free(lv->url); /* a URL may carry an api_key parameter */
	wipe_free(lv->req_url);
	free(lv);
}

/* ---- the egress guard, at connect ---- */

bool
sg_live_admit(void *arg, const struct sockaddr *sa, socklen_t len)
{
	struct live *lv = arg;
	struct sg_egress_verdict v;
	sg_egress_judge(lv->conn->egress_allow, sg_policy_egress(lv->r->snap->defs->policy),
	                lv->host, sa, len, &v);
	if (!v.allowed) {
		lv->refused = true;
		lv->verdict = v;
	}
	return v.allowed;
}

/* ---- the fetch's end, on the event loop ---- */

bool
sg_live_host_failed(const struct sg_fetch_result *res)
{
	switch (res->error) {
	case SG_FETCH_OK:
		return res->status >= 500 || res->status == 429;
	case SG_FETCH_REFUSED:   /* our guard, not the host */
	case SG_FETCH_TOO_LARGE: /* the host answered */
	case SG_FETCH_CANCELLED:
	case SG_FETCH_INTERNAL:
		return false;
	default:
		return true;
	}
}

static char *
dup_bytes(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d != NULL) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* ---- the attempts, as spans of the call ---- */

static void
note_attempt_start(struct live *lv)
{
	struct sg_req *r = lv->r;
	if (r->n_attempts >= SG_REQ_MAX_ATTEMPTS)
		return;
	struct sg_attempt *a = &r->attempts[r->n_attempts];
	*a = (struct sg_attempt){
	    .at_us = (uint32_t)((r->now_ns - lv->start_ns) / 1000),
	    .waited_us = (uint32_t)(lv->waited_ns / 1000),
	    .failover = lv->failed_over,
	};
	lv->waited_ns = 0;
}

static void
note_attempt_end(struct sg_req *r, const struct sg_fetch_result *res)
{
	if (r->n_attempts >= SG_REQ_MAX_ATTEMPTS)
		return;
	struct sg_attempt *a = &r->attempts[r->n_attempts++];
	a->took_us = (uint32_t)(res->total_us ? res->total_us : 1);
	a->status = (int16_t)(res->error == SG_FETCH_OK ? res->status : 0);
	a->error = (uint8_t)res->error;
}

void
sg_live_fetched(void *arg, const struct sg_fetch_result *res)
{
	struct live *lv = arg;
	lv->fetch = NULL;
	if (lv->breaker != NULL && !lv->token_fetch) {
		if (res->error == SG_FETCH_CANCELLED)
			sg_breaker_forget_probe(lv->breaker);
		else
			sg_breaker_record(lv->breaker, sg_mono_ns(), sg_live_host_failed(res),
			                  lv->probe);
	}
	if (res->error == SG_FETCH_CANCELLED || lv->r == NULL)
		return;
	if (!lv->token_fetch)
		note_attempt_end(lv->r, res);
	lv->have_result = true;
	lv->error = res->error;
	lv->status = res->status;
	if (res->error == SG_FETCH_OK) {
		lv->body = dup_bytes(res->body ? res->body : "", res->body_len);
		lv->body_len = res->body_len;
		if (lv->body == NULL)
			lv->error = SG_FETCH_INTERNAL;
		if (res->location != NULL)
			lv->location = strdup(res->location);
		snprintf(lv->retry_after, sizeof(lv->retry_after), "%s",
		         res->retry_after ? res->retry_after : "");
	}
	if (lv->r->io->wake(lv->r) != 0)
		lv->error = SG_FETCH_INTERNAL; /* cannot happen once the event exists */
}

/* ---- one attempt ---- */

int
sg_live_url_host(const char *url, char *host, size_t n, char *origin, size_t on)
{
	CURLU *u = curl_url();
	char *h = NULL, *scheme = NULL, *port = NULL;
	int rc = -1;
	if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
	    strlen(h) < n) {
		/* A bracketed IPv6 literal is judged without its brackets. */
		size_t hl = strlen(h);
		if (hl > 2 && h[0] == '[' && h[hl - 1] == ']')
			snprintf(host, n, "%.*s", (int)(hl - 2), h + 1);
		else
			snprintf(host, n, "%s", h);
		if (origin != NULL)
			snprintf(origin, on, "%s://%s:%s", scheme, h, port);
		rc = 0;
	}
	curl_free(h);
	curl_free(scheme);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

static const struct sg_environment *
env_of(const struct sg_req *r, const struct sg_connector *c)
{
	return r->principal.mode == SG_MODE_LIVE ? &c->live : &c->sandbox;
}

int
sg_live_aim(struct live *lv, const struct sg_connector *c, const struct sg_operation *op)
{
	struct sg_breaker_config bc;
	lv->conn = c;
	lv->op = op;
	lv->env = env_of(lv->r, c);
	lv->attempt = 0;
	lv->redirects = 0;
	lv->cred = SG_CRED_CURRENT;
	lv->oauth = NULL;
	lv->cross_origin = lv->as_get = false;
	free(lv->url);
	lv->url = NULL;
	if (sg_live_url_host(lv->env->base_url, lv->base_host, sizeof(lv->base_host), lv->origin,
	                     sizeof(lv->origin)) != 0)
		return -1;
	sg_breaker_config_default(&bc);
	lv->breaker =
	    lv->r->gw->breakers ? sg_breaker_of(lv->r->gw->breakers, lv->origin, &bc) : NULL;
	return 0;
}

/* The caller's headers the connector lists, through the transport. */
static size_t
caller_headers(struct sg_req *r, const struct sg_connector *c, struct sg_upreq_caller_header *out,
               size_t max)
{
	size_t n = 0;
	if (r->io == NULL || r->io->header == NULL)
		return 0;
	for (size_t i = 0; i < c->n_forward_headers && n < max; i++) {
		const char *v = r->io->header(r, c->forward_headers[i]);
		if (v != NULL)
			out[n++] = (struct sg_upreq_caller_header){c->forward_headers[i], v};
	}
	return n;
}

static int
add_bearer(struct sg_upreq *rq, const char *token)
{
	char v[SG_OAUTH_TOKEN_MAX + 8];
	snprintf(v, sizeof(v), "Bearer %s", token);
	int rc = sg_upreq_add_header(rq, "Authorization", v);
	sodium_memzero(v, sizeof(v));
	return rc;
}

/* The request of this attempt; a problem is set and -1 returned when it cannot be made. */
static int
build(struct live *lv, struct sg_upreq *rq, const char *token)
{
	struct sg_req *r = lv->r;
	struct sg_upreq_caller_header caller[16];
	char tp[64], err[256];
	const char *bad = NULL;
	memset(rq, 0, sizeof(*rq));
	sg_trace_format(&r->trace, tp, sizeof(tp));
	size_t nc = caller_headers(r, lv->conn, caller, 16);
	if (sg_upreq_build(rq, lv->conn, lv->op, lv->env, r->body, r->body_len, tp, caller, nc, err,
	                   sizeof(err), &bad) != 0) {
		sg_req_fail(r, bad ? SG_P_BAD_PARAMETER : SG_P_INTERNAL, "%s", err);
		return -1;
	}
	if (lv->url != NULL) { /* a redirect: the definition's URL gives way to the hop's */
		free(rq->url);
		rq->url = strdup(lv->url);
		if (lv->as_get) {
			snprintf(rq->method, sizeof(rq->method), "GET");
			free(rq->body);
			rq->body = NULL;
			rq->body_len = 0;
		}
	}
	int rc = 0;
	lv->cred_gen = sg_credstore_loaded_generation(r->gw->creds);
	if (token != NULL)
		rc = add_bearer(rq, token);
	else if (!lv->cross_origin)
		rc = sg_credential_apply(r->gw->creds, lv->conn, lv->cred, rq);
	if (rq->url == NULL || rc < 0)
		sg_req_fail(r, SG_P_INTERNAL, "out of memory while building the upstream request");
	else if (rc == 1)
		sg_req_fail(
		    r, SG_P_CREDENTIAL_MISSING,
		    "connector \"%s\" needs a credential and none is stored: the platform team "
		    "sets it with `sandgate secrets set %s`",
		    lv->conn->name, lv->conn->name);
	if (rq->url == NULL || rc != 0) {
		sg_upreq_release(rq);
		return -1;
	}
	return 0;
}

uint32_t
sg_live_capped_ms(uint32_t want_ms, uint64_t left_ns)
{
	uint64_t left_ms = left_ns / NS_PER_MS;
	if (left_ms == 0)
		left_ms = 1;
	return want_ms < left_ms ? want_ms : (uint32_t)left_ms;
}

static enum sg_step_rc
start(struct live *lv, struct sg_upreq *rq)
{
	struct sg_req *r = lv->r;
	uint64_t left = lv->deadline_ns - r->now_ns;
	struct sg_fetch_request fr = {
	    .method = rq->method,
	    .url = rq->url,
	    .headers = (const char *const *)rq->headers,
	    .n_headers = rq->n_headers,
	    .body = rq->body,
	    .body_len = rq->body_len,
	    .connect_timeout_ms = sg_live_capped_ms(lv->env->connect_timeout_ms, left),
	    .timeout_ms = sg_live_capped_ms(lv->env->timeout_ms, left),
	    .max_response = lv->conn->max_response,
	    .ca_bundle = lv->env->ca_bundle,
	    .resolve = (const char *const *)lv->env->resolve,
	    .n_resolve = lv->env->n_resolve,
	    .admit = sg_live_admit,
	    .admit_arg = lv,
	};
	/* A request built from the definition goes to the base URL's host; only a hop is parsed. */
	if (lv->url == NULL)
		memcpy(lv->host, lv->base_host, sizeof(lv->host));
	else if (sg_live_url_host(rq->url, lv->host, sizeof(lv->host), NULL, 0) != 0) {
		sg_upreq_release(rq);
		return sg_req_fail(r, SG_P_UPSTREAM_ERROR, "the upstream URL could not be parsed");
	}
	lv->attempt_ns = r->now_ns;
	if (lv->conn->max_redirects > 0) { /* a Location may be relative to it */
		wipe_free(lv->req_url);
		lv->req_url = strdup(rq->url);
	}
	note_attempt_start(lv);
	lv->fetch = sg_fetch_start(r->fetcher, &fr, sg_live_fetched, lv);
	sg_upreq_release(rq); /* the fetch copied what it needs */
	if (lv->fetch == NULL) {
		if (lv->probe && lv->breaker)
			sg_breaker_forget_probe(lv->breaker);
		return SG_STEP_ERROR;
	}
	return SG_STEP_AGAIN;
}

enum sg_step_rc
sg_live_attempt(struct live *lv)
{
	struct sg_req *r = lv->r;
	uint64_t wait = 0;
	if (r->now_ns >= lv->deadline_ns)
		return sg_req_fail(r, SG_P_UPSTREAM_TIMEOUT,
		                   "the call's time ran out before the upstream answered");
	char token[SG_OAUTH_TOKEN_MAX];
	bool use_token = lv->conn->auth_def.scheme == SG_AUTH_OAUTH2 && !lv->cross_origin;
	if (use_token) {
		enum sg_step_rc rc;
		if (!sg_live_token_ready(lv, token, sizeof(token), &rc))
			return rc;
	}
	lv->probe = false;
	enum sg_breaker_refusal no =
	    lv->breaker ? sg_breaker_admit(lv->breaker, r->now_ns, &lv->probe, &wait)
	                : SG_BREAKER_ADMITTED;
	if (no != SG_BREAKER_ADMITTED) {
		const struct sg_connector *alt;
		const struct sg_operation *alt_op;
		sodium_memzero(token, sizeof(token));
		if (sg_live_may_fail_over(lv, &alt, &alt_op) && sg_live_aim(lv, alt, alt_op) == 0) {
			lv->failed_over = true;
			return sg_live_attempt(lv);
		}
		return sg_live_unavailable(
		    lv, wait,
		    no == SG_BREAKER_IS_PAUSED
		        ? "the upstream asked for a pause in calls"
		        : "the upstream is failing, so calls to it are paused "
		          "(its circuit breaker is open)");
	}
	struct sg_upreq rq;
	int built = build(lv, &rq, use_token ? token : NULL);
	sodium_memzero(token, sizeof(token));
	if (built != 0) {
		if (lv->probe && lv->breaker)
			sg_breaker_forget_probe(lv->breaker);
		return SG_STEP_STOP;
	}
	lv->attempt++;
	if (lv->attempt == 1 && lv->breaker != NULL)
		sg_retry_budget_deposit(sg_breaker_budget(lv->breaker), r->now_ns);
	return start(lv, &rq);
}

/* ---- failover ---- */

bool
sg_live_may_fail_over(struct live *lv, const struct sg_connector **alt,
                      const struct sg_operation **alt_op)
{
	struct sg_req *r = lv->r;
	if (lv->failed_over || r->op->failover == NULL)
		return false;
	*alt = sg_catalog_find(r->snap->defs->catalog, r->op->failover);
	*alt_op = *alt ? sg_connector_op(*alt, r->op->name) : NULL;
	/* The caller must be allowed to call the alternative in its own right. */
	if (*alt_op == NULL || !sg_role_allows(r->principal.role, r->principal.mode, *alt_op))
		return false;
	const struct sg_environment *env = env_of(r, *alt);
	return !env->simulator && env->base_url != NULL;
}

enum sg_step_rc
sg_route_live(struct sg_req *r, struct route_ctx *rc)
{
	struct live *lv = rc->live;
	if (r->fetcher == NULL || r->io == NULL)
		return sg_req_fail(r, SG_P_LIVE_UNAVAILABLE,
		                   "connector \"%s\" has a real upstream, and this gateway process "
		                   "cannot make upstream calls",
		                   r->connector->name);
	if (lv == NULL) {
		lv = rc->live = calloc(1, sizeof(*lv));
		if (lv == NULL)
			return SG_STEP_ERROR;
		lv->r = r;
		lv->start_ns = rc->start_ns;
		lv->deadline_ns =
		    rc->start_ns + (uint64_t)r->gw->config->upstream_deadline_ms * NS_PER_MS;
		/* The caller's own bound runs from arrival: time queued counts against it. */
		uint64_t caller = r->arrival_ns + (uint64_t)r->caller_timeout_ms * NS_PER_MS;
		if (r->caller_timeout_ms != 0 && caller < lv->deadline_ns)
			lv->deadline_ns = caller;
		if (sg_live_aim(lv, r->connector, r->op) != 0)
			return sg_req_fail(r, SG_P_UPSTREAM_ERROR,
			                   "connector \"%s\": its base URL could not be parsed",
			                   r->connector->name);
		return sg_live_attempt(lv);
	}
	if (lv->fetch != NULL)
		return SG_STEP_AGAIN; /* not ours to judge yet */
	if (lv->backing_off || lv->token_wait) {
		lv->backing_off = lv->token_wait = false;
		return sg_live_attempt(lv);
	}
	if (!lv->have_result)
		return SG_STEP_ERROR;
	enum sg_step_rc out = lv->token_fetch ? sg_live_judge_token(lv) : sg_live_judge(lv);
	/* Judged: whatever comes next (a problem, or another attempt) starts afresh. */
	forget_result(lv);
	return out;
}
