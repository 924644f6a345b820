/*
 * Operator endpoints: liveness, readiness and metrics.  They never touch
 * the store: readiness reads a flag the main thread keeps current.
 */
#include <stdlib.h>

#include "http/sg_http.h"
#include "store/sg_recorder.h"
#include "throttle/sg_throttle_thread.h"
#include "sandbox/sg_sandbox.h"

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

void
sg_http_readyz(struct sg_http_ctx *c)
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
	/* A broken sandbox stops template runs only; connector calls go on. */
	struct sg_sandbox *sb = s->gw->sandbox;
	json_t *body = json_pack(
	    "{s:s, s:o, s:o}", "status", ready ? "ready" : "not_ready", "checks", checks, "sandbox",
	    sb ? sg_sandbox_status_json(sb) : json_pack("{s:b}", "enabled", 0));
	sg_http_send_json(c, ready ? 200 : 503, body, "application/json");
}

void
sg_http_metrics(struct sg_http_ctx *c)
{
	size_t len = 0;
	/* The writer drops batches the store refused; request threads see only a full queue. */
	if (c->t->server->gw->recorder)
		sg_gauges.record_dropped = sg_recorder_dropped(c->t->server->gw->recorder);
	char *text = sg_metrics_render(&len);
	if (text == NULL) {
		sg_http_send_problem(c, SG_P_INTERNAL, "metrics could not be rendered");
		return;
	}
	sg_http_send_text(c, 200, text, len, "text/plain; version=0.0.4; charset=utf-8");
	free(text);
}
