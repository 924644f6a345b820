/*
 * route, what an upstream's answer becomes: the caller's answer (after the
 * output contract), another attempt (a redirect, a retry after backoff, the
 * other credential mid-rotation, the failover) or a problem that says what
 * happened and what to do.
 */
#include <curl/curl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "path/sg_path.h"
#include "path/step_route_live.h"
#include "path/step_throttle.h"
#include "upstream/sg_breaker.h"
#include "upstream/sg_oauth.h"
#include "upstream/sg_retry.h"
#include "upstream/sg_upreq.h"

/* ---- judging the answer ---- */

enum sg_step_rc
sg_live_unavailable(struct live *lv, uint64_t retry_after_ns, const char *why)
{
	uint64_t s = (retry_after_ns + NS_PER_S - 1) / NS_PER_S;
	lv->r->retry_after_s = s ? s : 1;
	return sg_req_fail(lv->r, SG_P_UPSTREAM_UNAVAILABLE, "connector \"%s\": %s", lv->conn->name,
	                   why);
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

enum sg_step_rc
sg_live_transport_problem(struct live *lv)
{
	struct sg_req *r = lv->r;
	const char *name = lv->conn->name;
	switch (lv->error) {
	case SG_FETCH_REFUSED:
		return sg_req_fail(r, SG_P_EGRESS_DENIED,
		                   "connector \"%s\" may not reach that address: refused by %s",
		                   name, lv->verdict.rule);
	case SG_FETCH_TIMEOUT:
		return sg_req_fail(r, SG_P_UPSTREAM_TIMEOUT,
		                   "connector \"%s\": the upstream did not answer in time", name);
	case SG_FETCH_TOO_LARGE:
		return sg_req_fail(r, SG_P_UPSTREAM_TOO_LARGE,
		                   "connector \"%s\": the upstream's answer is over %zu bytes",
		                   name, lv->conn->max_response);
	case SG_FETCH_TLS:
		return sg_req_fail(r, SG_P_UPSTREAM_ERROR,
		                   "connector \"%s\": the upstream's TLS certificate could not be "
		                   "verified",
		                   name);
	case SG_FETCH_RESOLVE:
	case SG_FETCH_CONNECT:
		return sg_live_unavailable(lv, NS_PER_S, "the upstream could not be reached");
	case SG_FETCH_INTERNAL:
		return SG_STEP_ERROR;
	default:
		return sg_req_fail(
		    r, SG_P_UPSTREAM_ERROR,
		    "connector \"%s\": the upstream's answer was broken off or malformed", name);
	}
}

static enum sg_step_rc
follow_redirect(struct live *lv)
{
	CURLU *u = curl_url();
	char *next = NULL, from[320];
	/* A relative Location resolves against the URL this answer came from. */
	bool ok = u && lv->req_url != NULL &&
	          curl_url_set(u, CURLUPART_URL, lv->req_url, 0) == CURLUE_OK &&
	          curl_url_set(u, CURLUPART_URL, lv->location, 0) == CURLUE_OK &&
	          curl_url_get(u, CURLUPART_URL, &next, 0) == CURLUE_OK;
	curl_url_cleanup(u);
	if (!ok || sg_live_url_host(next, lv->host, sizeof(lv->host), from, sizeof(from)) != 0 ||
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
	return sg_live_attempt(lv);
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
		return sg_req_fail(
		    r, SG_P_UPSTREAM_CONTRACT,
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
		return sg_live_unavailable(lv, asked > 0 ? (uint64_t)asked * NS_PER_S : NS_PER_S,
		                           "the upstream is busy and asked for calls to wait");
	return sg_req_fail_def(r, sg_upreq_status_problem(lv->status),
	                       "connector \"%s\": the upstream answered %ld", lv->conn->name,
	                       lv->status);
}

/*
 * A 401: an OAuth2 token may have been revoked (a fresh one gets one try),
 * or, mid-rotation, the upstream may already know only the next credential,
 * or the table was reloaded after this request was built.  Either way the
 * other credential gets one try.
 */
static bool
retry_with_other_credential(struct live *lv)
{
	struct sg_credstore *cs = lv->r->gw->creds;
	if (lv->conn->auth_def.scheme == SG_AUTH_OAUTH2 && lv->oauth != NULL && !lv->auth_retried) {
		/* A revoked token: the next attempt fetches a fresh one, once. */
		sg_oauth_invalidate(lv->oauth, lv->token_taken_ns);
		lv->auth_retried = true;
		return true;
	}
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

enum sg_step_rc
sg_live_judge(struct live *lv)
{
	struct sg_req *r = lv->r;
	uint64_t took = r->now_ns - lv->attempt_ns;
	if (lv->error == SG_FETCH_OK && lv->status >= 200 && lv->status < 300) {
		/* After the answer is in r->output: a reported weight is read from it. */
		enum sg_step_rc rc = accept_output(lv);
		sg_throttle_upstream_done(r, took);
		return rc;
	}
	sg_throttle_upstream_done(r, took);
	if (lv->error == SG_FETCH_OK && lv->status >= 300 && lv->status < 400 &&
	    lv->location != NULL && lv->redirects < lv->conn->max_redirects)
		return follow_redirect(lv);
	if (lv->error == SG_FETCH_OK && lv->status == 401 && !lv->cross_origin &&
	    retry_with_other_credential(lv))
		return sg_live_attempt(lv);
	if (may_retry(lv)) {
		enum sg_step_rc rc = retry_later(lv);
		if (rc == SG_STEP_AGAIN)
			return rc;
	}
	const struct sg_connector *alt;
	const struct sg_operation *alt_op;
	if (sg_live_host_failed(
	        &(struct sg_fetch_result){.error = lv->error, .status = lv->status}) &&
	    sg_live_may_fail_over(lv, &alt, &alt_op) && sg_live_aim(lv, alt, alt_op) == 0) {
		lv->failed_over = true;
		return sg_live_attempt(lv);
	}
	if (lv->error != SG_FETCH_OK)
		return sg_live_transport_problem(lv);
	if (lv->status >= 300 && lv->status < 400)
		return sg_req_fail(r, SG_P_REDIRECT_REFUSED,
		                   "connector \"%s\": the upstream redirected the call, and this "
		                   "connector allows %u redirects",
		                   lv->conn->name, lv->conn->max_redirects);
	return status_problem(lv);
}
