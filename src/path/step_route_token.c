/*
 * route, OAuth2 client credentials (RFC 6749 §4.4): the stored
 * "client_id:client_secret" is exchanged at the connector's token_url for a
 * token, cached process-wide (sg_oauth.h) and sent as a bearer token.  The
 * exchange is a fetch like any attempt, through the same egress guard, and
 * is judged on the path when it resumes.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "path/sg_path.h"
#include "path/step_route_live.h"
#include "upstream/sg_oauth.h"
#include "upstream/sg_upreq.h"

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
	    .connect_timeout_ms = sg_live_capped_ms(lv->env->connect_timeout_ms, left),
	    .timeout_ms = sg_live_capped_ms(lv->env->timeout_ms, left),
	    .max_response = 64 * 1024,
	    .ca_bundle = lv->env->ca_bundle,
	    .resolve = (const char *const *)lv->env->resolve,
	    .n_resolve = lv->env->n_resolve,
	    .admit = sg_live_admit,
	    .admit_arg = lv,
	};
}

/* POST token_url with the client's id and secret: RFC 6749 §4.4. */
static enum sg_step_rc
fetch_token(struct live *lv)
{
	struct sg_req *r = lv->r;
	char secret[1024], *auth = NULL, *hdr = NULL, *form = NULL;
	int got =
	    sg_credential_secret(r->gw->creds, lv->conn->name, lv->cred, secret, sizeof(secret));
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
	    sg_live_url_host(lv->conn->auth_def.token_url, lv->host, sizeof(lv->host), NULL, 0) ==
	        0) {
		struct sg_fetch_request fr = token_request(lv, headers, 4, form);
		lv->token_fetch = true;
		lv->fetch = sg_fetch_start(r->fetcher, &fr, sg_live_fetched, lv);
	}
	sg_oauth_wipe_free(hdr);
	free(form);
	if (lv->fetch != NULL)
		return SG_STEP_AGAIN;
	sg_oauth_failed(lv->oauth);
	lv->token_fetch = false;
	if (got == 1)
		return sg_req_fail(
		    r, SG_P_CREDENTIAL_MISSING,
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
bool
sg_live_token_ready(struct live *lv, char *token, size_t n, enum sg_step_rc *rc)
{
	struct sg_req *r = lv->r;
	if (lv->oauth == NULL &&
	    (lv->oauth = sg_oauth_entry(r->gw->oauth, lv->conn->name, (int)lv->cred)) == NULL) {
		*rc = SG_STEP_ERROR;
		return false;
	}
	switch (sg_oauth_take(lv->oauth, r->now_ns, token, n)) {
	case SG_OAUTH_READY:
		lv->token_taken_ns = r->now_ns;
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

enum sg_step_rc
sg_live_judge_token(struct live *lv)
{
	struct sg_req *r = lv->r;
	char token[SG_OAUTH_TOKEN_MAX], err[160];
	int64_t expires_in;
	lv->token_fetch = false;
	bool parsed = lv->error == SG_FETCH_OK && lv->status == 200 &&
	              sg_oauth_parse(lv->body, lv->body_len, token, sizeof(token), &expires_in, err,
	                             sizeof(err)) == 0;
	if (lv->body != NULL) /* the answer holds the token */
		sodium_memzero(lv->body, lv->body_len);
	if (parsed) {
		sg_oauth_store(lv->oauth, r->now_ns, token, strlen(token), expires_in);
		sodium_memzero(token, sizeof(token));
		return sg_live_attempt(lv);
	}
	sg_oauth_failed(lv->oauth);
	if (lv->error != SG_FETCH_OK)
		return sg_live_transport_problem(lv);
	if (lv->status != 200)
		return sg_req_fail(r, SG_P_UPSTREAM_AUTH,
		                   "connector \"%s\": the token endpoint refused the client "
		                   "credentials (HTTP %ld); the platform team should check them "
		                   "(`sandgate secrets set %s`)",
		                   lv->conn->name, lv->status, lv->conn->name);
	return sg_req_fail(r, SG_P_UPSTREAM_AUTH, "connector \"%s\": %s", lv->conn->name, err);
}
