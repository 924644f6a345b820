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
 * so every decision is made on the path, in one place.
 */
#include <curl/curl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/sg_catalog.h"
#include "core/sg_clock.h"
#include "path/sg_path.h"
#include "path/step_route.h"
#include "path/step_throttle.h"
#include "policy/sg_policy.h"
#include "upstream/sg_breaker.h"
#include "upstream/sg_credential.h"
#include "upstream/sg_egress.h"
#include "upstream/sg_fetch.h"
#include "upstream/sg_oauth.h"
#include "upstream/sg_retry.h"
#include "upstream/sg_upreq.h"

#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull

struct live {
	struct sg_req *r;
	/* The connector answering: the one asked for, or its failover. */
	const struct sg_connector *conn;
	const struct sg_operation *op;
	const struct sg_environment *env;
	struct sg_breaker *breaker; /* NULL: unguarded (registry full) */
	struct sg_fetch *fetch;     /* in flight, or NULL */
	bool probe;                 /* this attempt is the half-open breaker's probe */
	bool failed_over;
	bool backing_off; /* woken by the backoff timer, not by a fetch */
	bool token_wait;  /* woken to look again for a token another call is fetching */
	bool token_fetch; /* what is in flight is the OAuth2 token exchange */
	struct sg_oauth_entry *oauth; /* oauth2: the token cache entry of conn's credential */
	bool cross_origin; /* a redirect left the base URL's origin: no credential */
	unsigned attempt;  /* attempts made on conn, the current one included */
	unsigned redirects;
	enum sg_cred_slot cred;
	int64_t cred_gen;  /* the credential table's generation when the request was built */
	bool auth_retried; /* a 401 was already tried again with a reloaded credential */
	char *url; /* a redirect's target, or NULL: built from the definition */
	bool as_get; /* a 303 turned the call into a GET without a body */
	char origin[320]; /* scheme://host:port of the base URL: the breaker's key */
	char host[256];   /* the host of the URL being fetched: the egress guard's */
	uint64_t start_ns;    /* when the call reached route: attempts are timed from here */
	uint64_t deadline_ns;
	uint64_t attempt_ns; /* when the current attempt started */
	uint64_t waited_ns;  /* the backoff slept before the next attempt */

	/* The last attempt's outcome, kept from its callback until the path resumes. */
	bool have_result;
	enum sg_fetch_error error;
	long status;
	char *body;
	size_t body_len;
	char *location;
	char retry_after[64];
	bool refused;
	struct sg_egress_verdict verdict; /* the refusal, when refused */
};

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

void
sg_route_live_release(struct sg_req *r, struct route_ctx *rc)
{
	struct live *lv = rc->live;
	(void)r;
	if (lv == NULL)
		return;
	rc->live = NULL;
	if (lv->fetch != NULL)
		sg_fetch_cancel(lv->fetch); /* its callback sees lv->r == NULL: no wake */
	forget_result(lv);
	free(lv->url);
	free(lv);
}

/* ---- the egress guard, at connect ---- */

static bool
admit_address(void *arg, const struct sockaddr *sa, socklen_t len)
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

static bool
host_failed(const struct sg_fetch_result *res)
{
	switch (res->error) {
	case SG_FETCH_OK:
		return res->status >= 500 || res->status == 429;
	case SG_FETCH_REFUSED:  /* our guard, not the host */
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

static void
on_fetched(void *arg, const struct sg_fetch_result *res)
{
	struct live *lv = arg;
	lv->fetch = NULL;
	if (lv->breaker != NULL && !lv->token_fetch) {
		if (res->error == SG_FETCH_CANCELLED)
			sg_breaker_forget_probe(lv->breaker);
		else
			sg_breaker_record(lv->breaker, sg_mono_ns(), host_failed(res), lv->probe);
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

static int
url_host(const char *url, char *host, size_t n, char *origin, size_t on)
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

static enum sg_step_rc fail_unavailable(struct live *lv, uint64_t retry_after_ns,
                                        const char *why);
static enum sg_step_rc attempt(struct live *lv);
static enum sg_step_rc transport_problem(struct live *lv);

static const struct sg_environment *
env_of(const struct sg_req *r, const struct sg_connector *c)
{
	return r->principal.mode == SG_MODE_LIVE ? &c->live : &c->sandbox;
}

static int
aim(struct live *lv, const struct sg_connector *c, const struct sg_operation *op)
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
	if (url_host(lv->env->base_url, lv->host, sizeof(lv->host), lv->origin,
	             sizeof(lv->origin)) != 0)
		return -1;
	sg_breaker_config_default(&bc);
	lv->breaker = lv->r->gw->breakers ? sg_breaker_of(lv->r->gw->breakers, lv->origin, &bc)
	                                  : NULL;
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
	if (sg_upreq_build(rq, lv->conn, lv->op, lv->env, r->body, r->body_len, tp, caller, nc,
	                   err, sizeof(err), &bad) != 0) {
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
		sg_req_fail(r, SG_P_CREDENTIAL_MISSING,
		            "connector \"%s\" needs a credential and none is stored: the platform team "
		            "sets it with `sandgate secrets set %s`",
		            lv->conn->name, lv->conn->name);
	if (rq->url == NULL || rc != 0) {
		sg_upreq_release(rq);
		return -1;
	}
	return 0;
}

static uint32_t
capped_ms(uint32_t want_ms, uint64_t left_ns)
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
	    .connect_timeout_ms = capped_ms(lv->env->connect_timeout_ms, left),
	    .timeout_ms = capped_ms(lv->env->timeout_ms, left),
	    .max_response = lv->conn->max_response,
	    .ca_bundle = lv->env->ca_bundle,
	    .resolve = (const char *const *)lv->env->resolve,
	    .n_resolve = lv->env->n_resolve,
	    .admit = admit_address,
	    .admit_arg = lv,
	};
	if (url_host(rq->url, lv->host, sizeof(lv->host), NULL, 0) != 0) {
		sg_upreq_release(rq);
		return sg_req_fail(r, SG_P_UPSTREAM_ERROR, "the upstream URL could not be parsed");
	}
	lv->attempt_ns = r->now_ns;
	note_attempt_start(lv);
	lv->fetch = sg_fetch_start(r->fetcher, &fr, on_fetched, lv);
	sg_upreq_release(rq); /* the fetch copied what it needs */
	if (lv->fetch == NULL) {
		if (lv->probe && lv->breaker)
			sg_breaker_forget_probe(lv->breaker);
		return SG_STEP_ERROR;
	}
	return SG_STEP_AGAIN;
}

static bool may_fail_over(struct live *lv, const struct sg_connector **alt,
                          const struct sg_operation **alt_op);

/* ---- OAuth2: the token exchange ---- */

static struct sg_fetch_request
token_request(struct live *lv, const char *const *headers, size_t n, const char *form)
{
	uint64_t left = lv->deadline_ns - lv->r->now_ns;
	return (struct sg_fetch_request){
	    .method = "POST",
	    .url = lv->conn->auth_def.token_url,
	    .headers = headers,
	    .n_headers = n,
	    .body = form,
	    .body_len = strlen(form),
	    .connect_timeout_ms = capped_ms(lv->env->connect_timeout_ms, left),
	    .timeout_ms = capped_ms(lv->env->timeout_ms, left),
	    .max_response = 64 * 1024,
	    .ca_bundle = lv->env->ca_bundle,
	    .resolve = (const char *const *)lv->env->resolve,
	    .n_resolve = lv->env->n_resolve,
	    .admit = admit_address,
	    .admit_arg = lv,
	};
}

/* POST token_url with the client's id and secret: RFC 6749 §4.4. */
static enum sg_step_rc
fetch_token(struct live *lv)
{
	struct sg_req *r = lv->r;
	char secret[1024], *auth = NULL, *hdr = NULL, *form = NULL;
	int got = sg_credential_secret(r->gw->creds, lv->conn->name, lv->cred, secret,
	                               sizeof(secret));
	if (got == 0) {
		auth = sg_oauth_basic(secret);
		form = sg_oauth_form(lv->conn->auth_def.scope);
		if (auth != NULL && asprintf(&hdr, "Authorization: %s", auth) < 0)
			hdr = NULL;
	}
	sodium_memzero(secret, sizeof(secret));
	sg_oauth_wipe_free(auth);
	const char *headers[] = {hdr, "Content-Type: application/x-www-form-urlencoded",
	                         "Accept: application/json", "User-Agent: " SG_UPSTREAM_USER_AGENT};
	if (got == 0 && hdr != NULL && form != NULL &&
	    url_host(lv->conn->auth_def.token_url, lv->host, sizeof(lv->host), NULL, 0) == 0) {
		struct sg_fetch_request fr = token_request(lv, headers, 4, form);
		lv->token_fetch = true;
		lv->fetch = sg_fetch_start(r->fetcher, &fr, on_fetched, lv);
	}
	sg_oauth_wipe_free(hdr);
	free(form);
	if (lv->fetch != NULL)
		return SG_STEP_AGAIN;
	sg_oauth_failed(lv->oauth);
	lv->token_fetch = false;
	if (got == 1)
		return sg_req_fail(r, SG_P_CREDENTIAL_MISSING,
		                   "connector \"%s\" needs OAuth2 client credentials and none are "
		                   "stored: the platform team sets them (\"client_id:client_secret\") "
		                   "with `sandgate secrets set %s`",
		                   lv->conn->name, lv->conn->name);
	return got < 0 ? SG_STEP_ERROR
	               : sg_req_fail(r, SG_P_UPSTREAM_AUTH,
	                             "connector \"%s\": its stored client credentials are not "
	                             "\"client_id:client_secret\"",
	                             lv->conn->name);
}

/*
 * A token for this attempt: true with it in `token`, or false with the
 * step's outcome in *rc (suspended to fetch one or to wait for another
 * call's fetch, or a problem).
 */
static bool
token_ready(struct live *lv, char *token, size_t n, enum sg_step_rc *rc)
{
	struct sg_req *r = lv->r;
	if (lv->oauth == NULL &&
	    (lv->oauth = sg_oauth_entry(r->gw->oauth, lv->conn->name, (int)lv->cred)) == NULL) {
		*rc = SG_STEP_ERROR;
		return false;
	}
	switch (sg_oauth_take(lv->oauth, r->now_ns, token, n)) {
	case SG_OAUTH_READY:
		return true;
	case SG_OAUTH_REFRESH:
		*rc = fetch_token(lv);
		return false;
	default: /* another call is fetching the first token: look again shortly */
		lv->token_wait = true;
		*rc = r->io->wake_after(r, 5 * NS_PER_MS) == 0 ? SG_STEP_AGAIN : SG_STEP_ERROR;
		return false;
	}
}

static enum sg_step_rc
judge_token(struct live *lv)
{
	struct sg_req *r = lv->r;
	char token[SG_OAUTH_TOKEN_MAX], err[160];
	int64_t expires_in;
	lv->token_fetch = false;
	if (lv->error == SG_FETCH_OK && lv->status == 200 &&
	    sg_oauth_parse(lv->body, lv->body_len, token, sizeof(token), &expires_in, err,
	                   sizeof(err)) == 0) {
		sg_oauth_store(lv->oauth, r->now_ns, token, strlen(token), expires_in);
		sodium_memzero(token, sizeof(token));
		return attempt(lv);
	}
	sg_oauth_failed(lv->oauth);
	if (lv->error != SG_FETCH_OK)
		return transport_problem(lv);
	if (lv->status != 200)
		return sg_req_fail(r, SG_P_UPSTREAM_AUTH,
		                   "connector \"%s\": the token endpoint refused the client "
		                   "credentials (HTTP %ld); the platform team should check them "
		                   "(`sandgate secrets set %s`)",
		                   lv->conn->name, lv->status, lv->conn->name);
	return sg_req_fail(r, SG_P_UPSTREAM_AUTH, "connector \"%s\": %s", lv->conn->name, err);
}

static enum sg_step_rc
attempt(struct live *lv)
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
		if (!token_ready(lv, token, sizeof(token), &rc))
			return rc;
	}
	lv->probe = false;
	enum sg_breaker_refusal no =
	    lv->breaker ? sg_breaker_admit(lv->breaker, r->now_ns, &lv->probe, &wait)
	                : SG_BREAKER_ADMITTED;
	if (no != SG_BREAKER_ADMITTED) {
		const struct sg_connector *alt;
		const struct sg_operation *alt_op;
		if (may_fail_over(lv, &alt, &alt_op) && aim(lv, alt, alt_op) == 0) {
			lv->failed_over = true;
			return attempt(lv);
		}
		return fail_unavailable(lv, wait,
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

static bool
may_fail_over(struct live *lv, const struct sg_connector **alt,
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

/* ---- judging the answer ---- */

static enum sg_step_rc
fail_unavailable(struct live *lv, uint64_t retry_after_ns, const char *why)
{
	uint64_t s = (retry_after_ns + NS_PER_S - 1) / NS_PER_S;
	lv->r->retry_after_s = s ? s : 1;
	return sg_req_fail(lv->r, SG_P_UPSTREAM_UNAVAILABLE, "connector \"%s\": %s",
	                   lv->conn->name, why);
}

/* Seconds the upstream asked us to wait, or -1. */
static int64_t
asked_wait(const struct live *lv)
{
	if ((lv->status != 429 && lv->status != 503) || lv->retry_after[0] == '\0')
		return -1;
	return sg_upreq_retry_after(lv->retry_after, lv->r->wall_s);
}

static enum sg_step_rc
retry_later(struct live *lv)
{
	struct sg_req *r = lv->r;
	int64_t asked = asked_wait(lv);
	uint64_t wait = sg_retry_backoff_ns(lv->attempt, randombytes_random() |
	                                                     (uint64_t)randombytes_random() << 32);
	if (asked >= 0 && (uint64_t)asked * NS_PER_S > wait)
		wait = (uint64_t)asked * NS_PER_S;
	if (r->now_ns + wait >= lv->deadline_ns || r->io->wake_after(r, wait) != 0)
		return SG_STEP_NEXT; /* no time left: the caller gets this attempt's problem */
	lv->backing_off = true;
	lv->waited_ns = wait;
	return SG_STEP_AGAIN;
}

static bool
may_retry(struct live *lv)
{
	return lv->op->idempotent && sg_retry_retryable(lv->error, lv->status) &&
	       lv->attempt < SG_RETRY_MAX_ATTEMPTS && lv->breaker != NULL &&
	       sg_retry_budget_withdraw(sg_breaker_budget(lv->breaker), lv->r->now_ns);
}

static enum sg_step_rc
transport_problem(struct live *lv)
{
	struct sg_req *r = lv->r;
	const char *name = lv->conn->name;
	switch (lv->error) {
	case SG_FETCH_REFUSED:
		return sg_req_fail(r, SG_P_EGRESS_DENIED,
		                   "connector \"%s\" may not reach that address: refused by %s", name,
		                   lv->verdict.rule);
	case SG_FETCH_TIMEOUT:
		return sg_req_fail(r, SG_P_UPSTREAM_TIMEOUT,
		                   "connector \"%s\": the upstream did not answer in time", name);
	case SG_FETCH_TOO_LARGE:
		return sg_req_fail(r, SG_P_UPSTREAM_TOO_LARGE,
		                   "connector \"%s\": the upstream's answer is over %zu bytes", name,
		                   lv->conn->max_response);
	case SG_FETCH_TLS:
		return sg_req_fail(r, SG_P_UPSTREAM_ERROR,
		                   "connector \"%s\": the upstream's TLS certificate could not be "
		                   "verified",
		                   name);
	case SG_FETCH_RESOLVE:
	case SG_FETCH_CONNECT:
		return fail_unavailable(lv, NS_PER_S, "the upstream could not be reached");
	case SG_FETCH_INTERNAL:
		return SG_STEP_ERROR;
	default:
		return sg_req_fail(r, SG_P_UPSTREAM_ERROR,
		                   "connector \"%s\": the upstream's answer was broken off or malformed",
		                   name);
	}
}

static enum sg_step_rc
follow_redirect(struct live *lv)
{
	CURLU *u = curl_url();
	char *next = NULL, from[320];
	bool ok = u && curl_url_set(u, CURLUPART_URL, lv->url ? lv->url : lv->env->base_url, 0) ==
	                   CURLUE_OK &&
	          curl_url_set(u, CURLUPART_URL, lv->location, 0) == CURLUE_OK &&
	          curl_url_get(u, CURLUPART_URL, &next, 0) == CURLUE_OK;
	curl_url_cleanup(u);
	if (!ok || url_host(next, lv->host, sizeof(lv->host), from, sizeof(from)) != 0 ||
	    (strncmp(next, "https://", 8) != 0 && strncmp(lv->origin, "https://", 8) == 0)) {
		curl_free(next);
		return sg_req_fail(lv->r, SG_P_REDIRECT_REFUSED,
		                   "connector \"%s\": the upstream redirected to an address that "
		                   "cannot be followed (not a URL, or from https to http)",
		                   lv->conn->name);
	}
	free(lv->url);
	lv->url = strdup(next);
	curl_free(next);
	/* A credential is for its own origin only, as curl and browsers do. */
	lv->cross_origin = lv->cross_origin || strcmp(from, lv->origin) != 0;
	lv->as_get = lv->as_get || lv->status == 303;
	lv->redirects++;
	if (lv->url == NULL)
		return SG_STEP_ERROR;
	return attempt(lv);
}

static enum sg_step_rc
accept_output(struct live *lv)
{
	struct sg_req *r = lv->r;
	struct sg_json_doc doc;
	struct sg_schema_error err;
	size_t n = 0;
	const char *name = lv->conn->name;
	if (sg_json_parse(lv->body, lv->body_len, SG_SCHEMA_MAX_DEPTH, &doc, NULL) != SG_JSON_OK)
		return sg_req_fail(r, SG_P_UPSTREAM_CONTRACT,
		                   "connector \"%s\": the upstream's answer is not JSON", name);
	if (sg_schema_validate(lv->op->output, doc.root, &err, 1, &n) != 0) {
		struct sg_jw w;
		sg_jw_begin(&w, &r->problem_ext);
		sg_jw_object(&w);
		sg_jw_keyz(&w, "schema_path");
		sg_jw_stringz(&w, n ? err.pointer : "");
		sg_jw_object_end(&w);
		if (sg_jw_end(&w) != 0)
			return SG_STEP_ERROR;
		return sg_req_fail(r, SG_P_UPSTREAM_CONTRACT,
		                   "connector \"%s\": the upstream's answer does not match operation "
		                   "\"%s\"'s output schema at \"%s\": %s",
		                   name, lv->op->name, n ? err.pointer : "", n ? err.message : "");
	}
	struct sg_jw w;
	sg_jw_begin(&w, &r->output);
	sg_jw_value(&w, doc.root);
	if (sg_jw_end(&w) != 0)
		return SG_STEP_ERROR;
	if (lv->failed_over)
		r->served_by = lv->conn->name;
	return SG_STEP_NEXT;
}

static enum sg_step_rc
status_problem(struct live *lv)
{
	struct sg_req *r = lv->r;
	int64_t asked = asked_wait(lv);
	if (asked >= 0 && lv->breaker != NULL)
		sg_breaker_pause(lv->breaker, r->now_ns + (uint64_t)asked * NS_PER_S);
	if (lv->status == 429 || lv->status == 503)
		return fail_unavailable(lv, asked > 0 ? (uint64_t)asked * NS_PER_S : NS_PER_S,
		                        "the upstream is busy and asked for calls to wait");
	return sg_req_fail_def(r, sg_upreq_status_problem(lv->status),
	                       "connector \"%s\": the upstream answered %ld", lv->conn->name,
	                       lv->status);
}

/*
 * A 401 mid-rotation: the upstream may already know only the next
 * credential, or the table was reloaded (a rotation) after this request
 * was built.  Either way the other credential gets one try.
 */
static bool
retry_with_other_credential(struct live *lv)
{
	struct sg_credstore *cs = lv->r->gw->creds;
	if (lv->cred == SG_CRED_CURRENT && sg_credential_has_next(cs, lv->conn->name)) {
		lv->cred = SG_CRED_NEXT;
		lv->oauth = NULL;
		return true;
	}
	if (!lv->auth_retried && sg_credstore_loaded_generation(cs) != lv->cred_gen) {
		lv->auth_retried = true;
		lv->cred = SG_CRED_CURRENT;
		lv->oauth = NULL;
		return true;
	}
	return false;
}

static enum sg_step_rc
judge(struct live *lv)
{
	struct sg_req *r = lv->r;
	sg_throttle_upstream_done(r, r->now_ns - lv->attempt_ns);
	if (lv->error == SG_FETCH_OK && lv->status >= 200 && lv->status < 300)
		return accept_output(lv);
	if (lv->error == SG_FETCH_OK && lv->status >= 300 && lv->status < 400 &&
	    lv->location != NULL && lv->redirects < lv->conn->max_redirects)
		return follow_redirect(lv);
	if (lv->error == SG_FETCH_OK && lv->status == 401 && !lv->cross_origin &&
	    retry_with_other_credential(lv))
		return attempt(lv);
	if (may_retry(lv)) {
		enum sg_step_rc rc = retry_later(lv);
		if (rc == SG_STEP_AGAIN)
			return rc;
	}
	const struct sg_connector *alt;
	const struct sg_operation *alt_op;
	if (host_failed(&(struct sg_fetch_result){.error = lv->error, .status = lv->status}) &&
	    may_fail_over(lv, &alt, &alt_op) && aim(lv, alt, alt_op) == 0) {
		lv->failed_over = true;
		return attempt(lv);
	}
	if (lv->error != SG_FETCH_OK)
		return transport_problem(lv);
	if (lv->status >= 300 && lv->status < 400)
		return sg_req_fail(r, SG_P_REDIRECT_REFUSED,
		                   "connector \"%s\": the upstream redirected the call, and this "
		                   "connector allows %u redirects",
		                   lv->conn->name, lv->conn->max_redirects);
	return status_problem(lv);
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
		lv->deadline_ns = rc->start_ns + (uint64_t)r->gw->config->upstream_deadline_ms * NS_PER_MS;
		if (aim(lv, r->connector, r->op) != 0)
			return sg_req_fail(r, SG_P_UPSTREAM_ERROR,
			                   "connector \"%s\": its base URL could not be parsed",
			                   r->connector->name);
		return attempt(lv);
	}
	if (lv->fetch != NULL)
		return SG_STEP_AGAIN; /* not ours to judge yet */
	if (lv->backing_off || lv->token_wait) {
		lv->backing_off = lv->token_wait = false;
		return attempt(lv);
	}
	if (!lv->have_result)
		return SG_STEP_ERROR;
	enum sg_step_rc out = lv->token_fetch ? judge_token(lv) : judge(lv);
	/* Judged: whatever comes next (a problem, or another attempt) starts afresh. */
	forget_result(lv);
	return out;
}
