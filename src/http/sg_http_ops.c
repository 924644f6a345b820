/*
 * Operator endpoints: liveness, readiness and metrics.  They never touch
 * the store: readiness reads a flag the main thread keeps current.  The
 * public listener shows only whether the gateway is ready and which checks
 * pass; the figures (tenants, spend, the sandbox's layout) are for the
 * admin listener or the admin token.
 */
#include <event2/keyvalq_struct.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http/sg_http.h"
#include "store/sg_recorder.h"
#include "throttle/sg_throttle_thread.h"
#include "upstream/sg_breaker.h"
#include "sandbox/sg_sandbox.h"
#include "upstream/sg_credential.h"

void
sg_http_healthz(struct sg_http_ctx *c)
{
	sg_http_send_json(c, 200, json_pack("{s:s}", "status", "alive"), "application/json");
}

static json_t *
snapshot_check(const struct sg_snapshot *snap)
{
	if (snap == NULL)
		return json_pack("{s:b, s:s}", "ok", 0, "detail", "no catalog or policy loaded");
	return json_pack("{s:b, s:I, s:I, s:I, s:I}", "ok", 1, "generation",
	                 (json_int_t)snap->generation, "connectors",
	                 (json_int_t)snap->defs->catalog->n, "roles",
	                 (json_int_t)snap->defs->policy->n_roles, "keys", (json_int_t)snap->n_keys);
}

bool
sg_http_admin_token_ok(struct sg_http_ctx *c)
{
	const struct sg_server *s = c->t->server;
	const char *h =
	    evhttp_find_header(evhttp_request_get_input_headers(c->req), "Authorization");
	unsigned char got[sizeof(s->admin_token_hash)];
	if (!s->has_admin_token || h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	h += 7;
	while (*h == ' ')
		h++;
	size_t len = strlen(h);
	while (len > 0 && h[len - 1] == ' ')
		len--;
	/* Hashing first makes the comparison's time independent of the token's length too. */
	crypto_generichash(got, sizeof(got), (const unsigned char *)h, len, NULL, 0);
	return sodium_memcmp(got, s->admin_token_hash, sizeof(got)) == 0;
}

/* Only the verdict of each check: the figures behind them are the operators'. */
static json_t *
bare_checks(json_t *checks)
{
	json_t *out = json_object();
	const char *name;
	json_t *v;
	json_object_foreach(checks, name, v)
	{
		json_t *ok = json_object_get(v, "ok");
		if (json_is_boolean(ok))
			json_object_set_new(out, name, json_pack("{s:O}", "ok", ok));
	}
	json_decref(checks);
	return out;
}

/* Each upstream host whose breaker is not closed, or that asked for a pause. */
static int
unhealthy_upstream(void *arg, const char *host, enum sg_breaker_state s, uint64_t opened,
                   bool paused)
{
	(void)opened;
	if (s != SG_BREAKER_CLOSED || paused)
		json_array_append_new(arg, json_pack("{s:s, s:s, s:b}", "host", host, "breaker",
		                                     sg_breaker_state_name(s), "paused", paused));
	return 0;
}

static json_t *
upstreams_check(struct sg_breakers *bs)
{
	json_t *bad = json_array();
	if (bs != NULL && bad != NULL)
		sg_breakers_each(bs, sg_now_ns(), unhealthy_upstream, bad);
	return bad;
}

void
sg_http_readyz(struct sg_http_ctx *c, bool detailed)
{
	struct sg_server *s = c->t->server;
	struct sg_snapshot *snap = sg_http_snapshot(c->t);
	bool store_ok = atomic_load(&s->store_ok);
	bool draining = atomic_load(&s->draining);
	bool ready = store_ok && snap != NULL && !draining;

	/* A Redis outage degrades limits as configured; it does not stop serving. */
	json_t *checks = json_pack("{s:{s:b}, s:o, s:{s:b}, s:o}", "store", "ok", store_ok,
	                           "snapshot", snapshot_check(snap), "accepting", "ok", !draining,
	                           "throttle_store", sg_throttle_store_check(s->cfg));
	if (!detailed) {
		json_t *body = json_pack("{s:s, s:o}", "status", ready ? "ready" : "not_ready",
		                         "checks", bare_checks(checks));
		sg_http_send_json(c, ready ? 200 : 503, body, "application/json");
		return;
	}
	/* A broken sandbox stops template runs only; connector calls go on. */
	struct sg_sandbox *sb = s->gw->sandbox;
	/* An unhealthy upstream fails its own calls fast; the gateway stays ready. */
	json_t *body = json_pack("{s:s, s:o, s:o, s:o}", "status", ready ? "ready" : "not_ready",
	                         "checks", checks, "sandbox",
	                         sb ? sg_sandbox_status_json(sb) : json_pack("{s:b}", "enabled", 0),
	                         "upstreams_unhealthy", upstreams_check(s->gw->breakers));
	/* What an operator should act on soon; it never makes the gateway unready. */
	json_t *warnings =
	    s->gw->creds ? sg_credstore_warnings_json(s->gw->creds, (int64_t)time(NULL)) : NULL;
	if (body != NULL && warnings != NULL)
		json_object_set_new(body, "warnings", warnings);
	else
		json_decref(warnings);
	sg_http_send_json(c, ready ? 200 : 503, body, "application/json");
}

/* Metrics kept outside the process-wide registry, each rendered after it. */
static void
render_breakers(FILE *f, struct sg_gateway *gw)
{
	if (gw->breakers != NULL)
		sg_breakers_render(gw->breakers, sg_now_ns(), f);
}

static void
render_credentials(FILE *f, struct sg_gateway *gw)
{
	if (gw->creds != NULL)
		sg_credstore_render_metrics(gw->creds, (int64_t)time(NULL), f);
}

/* `text` with the gateway's own series appended; NULL: out of memory. */
static char *
with_gateway_series(char *text, size_t *len, struct sg_gateway *gw)
{
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	if (f != NULL) {
		fwrite(text, 1, *len, f);
		render_breakers(f, gw);
		render_credentials(f, gw);
	}
	free(text);
	if (f == NULL || fclose(f) != 0) {
		free(out);
		return NULL;
	}
	*len = n;
	return out;
}

void
sg_http_metrics(struct sg_http_ctx *c)
{
	size_t len = 0;
	/* The writer's figures live in the recorder; request threads see only a full queue. */
	struct sg_recorder *rec = c->t->server->gw->recorder;
	if (rec) {
		sg_gauges.record_dropped = sg_recorder_dropped(rec);
		sg_gauges.record_written = sg_recorder_written(rec);
		sg_gauges.record_backlog = sg_recorder_backlog(rec);
		sg_gauges.record_oldest_age_us = sg_recorder_oldest_age_ns(rec, sg_now_ns()) / 1000;
		sg_gauges.record_retries = sg_recorder_retries(rec);
		sg_gauges.audit_refused = sg_recorder_refused(rec);
	}
	char *text = sg_metrics_render(&len);
	if (text != NULL)
		text = with_gateway_series(text, &len, c->t->server->gw);
	if (text == NULL) {
		sg_http_send_problem(c, SG_P_INTERNAL, "metrics could not be rendered");
		return;
	}
	sg_http_send_text(c, 200, text, len, "text/plain; version=0.0.4; charset=utf-8");
	free(text);
}
