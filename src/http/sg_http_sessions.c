/*
 * POST /v1/sessions starts a time-bound session for the calling key;
 * GET /v1/sessions/{id} shows what it used; DELETE /v1/sessions/{id} ends
 * it.  A key may have sessions.max_per_key running at once, and each
 * start spends one call from the key's role limit.  A session is visible
 * only to the key that started it (and to its own token); any other caller
 * gets 404, so session ids leak nothing.
 */
#include <event2/buffer.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/sg_config.h"
#include "http/sg_http.h"
#include "core/sg_fmt.h"
#include "path/sg_path.h"
#include "path/step_throttle.h"

#define MAX_BODY 4096

static json_t *
utc(int64_t s)
{
	char buf[SG_UTC_LEN];
	sg_fmt_utc(s, buf);
	return json_string(buf);
}

static int
bad_request(struct sg_http_ctx *c, const char *detail)
{
	sg_http_send_problem(c, SG_P_REQUEST_INVALID, detail);
	return -1;
}

/* Refuses a member outside `allowed`, naming it; 0 when there is none. */
static int
only_members(struct sg_http_ctx *c, json_t *obj, const char *where, const char *const *allowed,
             size_t n)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v)
	{
		size_t i = 0;
		while (i < n && strcmp(key, allowed[i]) != 0)
			i++;
		if (i < n)
			continue;
		char detail[256];
		snprintf(detail, sizeof(detail), "%sunknown member \"%.40s\"; use %s, %s and %s",
		         where, key, allowed[0], allowed[1], allowed[2]);
		return bad_request(c, detail);
	}
	return 0;
}

static int
parse_ttl(struct sg_http_ctx *c, json_t *v, struct sg_session *p, int64_t now)
{
	uint64_t ms = 3600 * 1000;
	if (v && (!json_is_string(v) || sg_duration_parse_ms(json_string_value(v), &ms) != 0))
		return bad_request(c, "ttl must be a duration such as \"30m\" or \"2h\"");
	if (ms < 1000 || ms > (uint64_t)SG_SESSION_MAX_TTL_S * 1000)
		return bad_request(c, "ttl must be from 1s to 24h");
	p->created_at = now;
	p->expires_at = now + (int64_t)(ms / 1000);
	return 0;
}

static int
parse_limits(struct sg_http_ctx *c, json_t *lim, struct sg_session *p)
{
	json_t *rate = json_object_get(lim, "rate"), *burst = json_object_get(lim, "burst");
	json_t *calls = json_object_get(lim, "max_calls");
	static const char *const members[] = {"rate", "burst", "max_calls"};
	if (only_members(c, lim, "limits: ", members, 3) != 0)
		return -1;
	if (burst && (!json_is_integer(burst) || json_integer_value(burst) < 1 ||
	              json_integer_value(burst) > 100000))
		return bad_request(c, "limits.burst must be an integer from 1 to 100000");
	if (rate &&
	    (!json_is_string(rate) ||
	     sg_limit_parse(json_string_value(rate),
	                    burst ? (uint32_t)json_integer_value(burst) : 0, &p->window) != 0))
		return bad_request(c, "limits.rate must be calls per period such as \"2/s\" or "
		                      "\"100/h\"");
	if (calls && (!json_is_integer(calls) || json_integer_value(calls) < 1))
		return bad_request(c, "limits.max_calls must be a whole number above 0");
	p->max_calls = calls ? (uint64_t)json_integer_value(calls) : 0;
	return 0;
}

/* The request body, checked member by member; fills the session prototype. */
static int
parse_start(struct sg_http_ctx *c, struct sg_session *p, int64_t now)
{
	struct evbuffer *buf = evhttp_request_get_input_buffer(c->req);
	size_t len = evbuffer_get_length(buf);
	json_error_t err;
	if (len > MAX_BODY)
		return bad_request(c, "the body is larger than 4 KiB");
	json_t *body = len ? json_loadb((const char *)evbuffer_pullup(buf, -1), len,
	                                JSON_REJECT_DUPLICATES, &err)
	                   : json_object();
	if (!json_is_object(body)) {
		json_decref(body);
		return bad_request(c, "the body must be a JSON object such as {\"ttl\": \"30m\"}");
	}
	static const char *const members[] = {"ttl", "budget", "limits"};
	json_t *budget = json_object_get(body, "budget"), *lim = json_object_get(body, "limits");
	int rc = only_members(c, body, "", members, 3);
	if (rc == 0)
		rc = parse_ttl(c, json_object_get(body, "ttl"), p, now);
	if (rc == 0 && budget &&
	    (!json_is_number(budget) || json_number_value(budget) <= 0 ||
	     json_number_value(budget) > 1e9))
		rc = bad_request(c, "budget must be an amount above 0, such as 1.50");
	if (rc == 0 && budget)
		p->budget_micros = llround(json_number_value(budget) * SG_MICROS);
	if (rc == 0 && lim && !json_is_object(lim))
		rc = bad_request(c, "limits must be an object such as {\"rate\": \"1/s\"}");
	if (rc == 0 && lim)
		rc = parse_limits(c, lim, p);
	json_decref(body);
	return rc;
}

static json_t *
limits_json(const struct sg_session *ss)
{
	json_t *o = json_object();
	if (ss->rule.n_windows)
		json_object_set_new(o, "rate",
		                    json_pack("{s:s, s:i}", "rate", ss->window.spec, "burst",
		                              (int)ss->window.gcra.burst));
	if (ss->max_calls)
		json_object_set_new(o, "max_calls", json_integer((json_int_t)ss->max_calls));
	if (ss->budget_micros)
		json_object_set_new(o, "budget", json_real((double)ss->budget_micros / SG_MICROS));
	return o;
}

/* Sends the problem sg_req_fail set, with the rate-limit headers. */
static void
reply_refused(struct sg_http_ctx *c, struct sg_req *r)
{
	sg_http_rate_headers(c, r);
	sg_http_send_refusal(c, r);
}

/* Over the cap: 429 with Retry-After set to when the first of them expires. */
static void
refuse_cap(struct sg_http_ctx *c, struct sg_req *r, const struct sg_sessions_live *live)
{
	char v[32];
	int64_t wait = live->soonest_end > r->wall_s ? live->soonest_end - r->wall_s : 1;
	sg_throttle_session_start_refund(r); /* the refusal is the cap's, not a rate limit's */
	sg_req_fail(r, SG_P_SESSION_LIMIT,
	            "this API key has %zu sessions running and may have at most %d at once; the "
	            "next one expires in %lld s",
	            live->n, r->gw->config->sessions_max_per_key, (long long)wait);
	snprintf(v, sizeof(v), "%lld", (long long)wait);
	evhttp_add_header(evhttp_request_get_output_headers(c->req), "Retry-After", v);
	sg_http_send_refusal(c, r);
}

void
sg_http_session_start(struct sg_http_ctx *c)
{
	struct sg_req *r = &c->req_state;
	struct sg_session proto;
	struct sg_sessions_live live;
	char token[SG_KEY_MAX_LEN + 1];
	if (sg_http_identify_or_reply(c, r) != 0)
		return;
	if (r->principal.session != NULL) {
		bad_request(c, "start a session with your API key (sgk_...), not a session token");
		return;
	}
	memset(&proto, 0, sizeof(proto));
	memcpy(proto.key_id, r->principal.key->id, sizeof(proto.key_id));
	if (parse_start(c, &proto, r->wall_s) != 0)
		return;
	if (sg_throttle_session_start(r) != 0) {
		reply_refused(c, r);
		return;
	}
	struct sg_session *ss =
	    r->gw->sessions ? sg_sessions_start(r->gw->sessions, r->gw->server_secret, &proto,
	                                        (size_t)r->gw->config->sessions_max_per_key,
	                                        r->wall_s, token, sizeof(token), &live)
	                    : NULL;
	if (ss == NULL && r->gw->sessions != NULL &&
	    live.n >= (size_t)r->gw->config->sessions_max_per_key) {
		refuse_cap(c, r, &live);
		return;
	}
	if (ss == NULL) {
		sg_http_send_problem(c, SG_P_INTERNAL, "the session could not be started");
		return;
	}
	json_t *body = json_pack("{s:s, s:s, s:o, s:I, s:o, s:I, s:i}", "session", token, "id",
	                         ss->id, "expires_at", utc(ss->expires_at), "ttl_s",
	                         (json_int_t)(ss->expires_at - ss->created_at), "limits",
	                         limits_json(ss), "sessions_running", (json_int_t)live.n,
	                         "sessions_max", r->gw->config->sessions_max_per_key);
	sodium_memzero(token, sizeof(token));
	sg_session_unref(ss);
	sg_http_rate_headers(c, r);
	sg_http_send_json(c, 201, body, "application/json");
}

/*
 * DELETE /v1/sessions/{id}: ends the session now, for the key that started
 * it (or the session's own token), and shows what it used.
 */
void
sg_http_session_end(struct sg_http_ctx *c, const char *id)
{
	struct sg_req *r = &c->req_state;
	if (sg_http_identify_or_reply(c, r) != 0)
		return;
	struct sg_session *ss = r->gw->sessions ? sg_sessions_get(r->gw->sessions, id) : NULL;
	if (ss == NULL || strcmp(ss->key_id, r->principal.key->id) != 0) {
		sg_session_unref(ss);
		sg_http_send_problem(c, SG_P_ROUTE_NOT_FOUND, "you have no session with this id");
		return;
	}
	sg_session_end(ss, r->wall_s);
	json_t *body = sg_http_session_json(r, ss);
	sg_session_unref(ss);
	sg_http_send_json(c, 200, body, "application/json");
}

static json_t *
traces_json(struct sg_session *ss)
{
	json_t *list = json_array();
	pthread_mutex_lock(&ss->trace_lock);
	uint32_t n = ss->n_traces < SG_SESSION_TRACES ? ss->n_traces : SG_SESSION_TRACES;
	for (uint32_t i = 0; i < n; i++) /* newest first */
		json_array_append_new(
		    list, json_string(ss->traces[(ss->n_traces - 1 - i) % SG_SESSION_TRACES]));
	pthread_mutex_unlock(&ss->trace_lock);
	return list;
}

void
sg_http_session_show(struct sg_http_ctx *c, const char *id)
{
	struct sg_req *r = &c->req_state;
	if (sg_http_identify_or_reply(c, r) != 0)
		return;
	struct sg_session *ss = r->gw->sessions ? sg_sessions_get(r->gw->sessions, id) : NULL;
	if (ss == NULL || strcmp(ss->key_id, r->principal.key->id) != 0) {
		sg_session_unref(ss);
		sg_http_send_problem(c, SG_P_ROUTE_NOT_FOUND, "you have no session with this id");
		return;
	}
	json_t *body = sg_http_session_json(r, ss);
	sg_session_unref(ss);
	sg_http_send_json(c, 200, body, "application/json");
}

json_t *
sg_http_session_json(const struct sg_req *r, struct sg_session *ss)
{
	const struct sg_budgets *b = r->snap->defs->policy->budgets;
	return json_pack(
	    "{s:s, s:o, s:o, s:b, s:I, s:o, s:{s:I, s:I, s:f, s:s}, s:o}", "id", ss->id,
	    "created_at", utc(ss->created_at), "expires_at", utc(ss->expires_at), "expired",
	    r->wall_s >= ss->expires_at, "seconds_left",
	    (json_int_t)(ss->expires_at > r->wall_s ? ss->expires_at - r->wall_s : 0), "limits",
	    limits_json(ss), "usage", "calls", (json_int_t)atomic_load(&ss->calls), "refused",
	    (json_int_t)atomic_load(&ss->refused), "cost",
	    (double)atomic_load(&ss->spent_micros) / SG_MICROS, "currency",
	    b ? b->currency : "units", "traces", traces_json(ss));
}
