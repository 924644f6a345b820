/*
 * record: every governed decision, allowed or not, goes to the audit
 * store through the writer thread's queue.  The request thread copies a
 * small struct and never touches the disk.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "path/sg_path.h"
#include "path/step_throttle.h"
#include "store/sg_recorder.h"
#include "obs/sg_log.h"
#include "obs/sg_metrics.h"
#include "obs/sg_throttle_metrics.h"
#include "throttle/sg_unauth.h"

/* Truncates on purpose: audit columns are bounded. */
static void
copy(char *dst, size_t n, const char *src)
{
	size_t len = src ? strnlen(src, n - 1) : 0;
	if (len)
		memcpy(dst, src, len);
	dst[len] = '\0';
}

static void
fill_principal(struct sg_decision *d, const struct sg_req *r)
{
	const struct sg_key_entry *k = r->principal.key;
	if (k == NULL)
		return;
	copy(d->key_id, sizeof(d->key_id), k->id);
	copy(d->tenant, sizeof(d->tenant), k->tenant);
	copy(d->user, sizeof(d->user), k->user);
	copy(d->role, sizeof(d->role), k->role);
	copy(d->mode, sizeof(d->mode), sg_mode_name(k->mode));
}

/*
 * The first call to take a budget past its warning level leaves an event
 * in the audit store (decision "event") and a warning in the log.
 */
static void
record_budget_warning(struct sg_req *r, const struct sg_decision *call,
                      const struct sg_spend_line *ln)
{
	const struct sg_budgets *b = r->snap->defs->policy->budgets;
	struct sg_decision ev = *call;
	copy(ev.decision, sizeof(ev.decision), "event");
	copy(ev.code, sizeof(ev.code), "budget_warning");
	snprintf(ev.reason, sizeof(ev.reason), "%s %s budget passed %u%%: %.2f of %.2f %s spent",
	         sg_budget_scope_name(ln->scope), sg_budget_period_name(ln->period), b->warn_pct,
	         (double)ln->spent / SG_MICROS, (double)ln->limit / SG_MICROS, b->currency);
	ev.cost = 0;
	ev.dlp[0] = '\0'; /* the call's own row has its findings */
	sg_log(SG_LOG_WARN, json_pack("{s:s, s:s}", "tenant", call->tenant, "user", call->user),
	       "%s", ev.reason);
	if (sg_recorder_push(r->gw->recorder, &ev) != 0)
		sg_gauges.record_dropped = sg_recorder_dropped(r->gw->recorder);
}

/*
 * What an answered call cost, per tenant in /metrics.  Sandbox calls are
 * free, but what they would have cost is also kept for usage.
 */
static void
count_cost(struct sg_req *r)
{
	const struct sg_key_entry *k = r->principal.key;
	int64_t micros = llround(r->op->cost * SG_MICROS);
	bool sandbox = r->principal.mode == SG_MODE_SANDBOX;
	if (r->status != 200 || micros <= 0)
		return;
	sg_metrics_tenant_spend(k->tenant, micros, sandbox);
	if (r->gw->spend && sandbox)
		sg_spend_add(r->gw->spend, k->tenant, k->user, r->wall_s, micros, true);
}

/* Who answered a live call and how its attempts went; a write that does not fit is left out. */
static void
record_upstream(struct sg_decision *d, const struct sg_req *r)
{
	if (r->served_by != NULL)
		copy(d->served_by, sizeof(d->served_by), r->served_by);
	if (r->n_attempts == 0)
		return;
	struct sg_jbuf b = {0};
	if (sg_req_attempts_write(r, &b) == 0 && b.len < sizeof(d->upstream))
		memcpy(d->upstream, b.data, b.len + 1);
	sg_jbuf_release(&b);
}

/*
 * What the screens found, as the JSON array the decision's dlp column
 * holds; the screen kept whole events only, and room for the marker that
 * says how many more there were.
 */
static void
record_dlp(struct sg_decision *d, const struct sg_req *r)
{
	if (r->dlp_len == 0 && r->dlp_more == 0)
		return;
	if (r->dlp_more == 0)
		snprintf(d->dlp, sizeof(d->dlp), "[%s]", r->dlp);
	else
		snprintf(d->dlp, sizeof(d->dlp), "[%s%s{\"more\":%u}]", r->dlp,
		         r->dlp_len ? "," : "", r->dlp_more);
}

void
sg_step_record(struct sg_req *r, uint64_t latency_us)
{
	struct sg_decision d;
	struct timeval tv;

	/* Read with the latency, before any bookkeeping: ts_us - latency_us is the arrival. */
	gettimeofday(&tv, NULL);
	if (r->op != NULL && r->principal.key != NULL)
		count_cost(r);
	if (r->principal.session && r->status == 200)
		sg_session_note_trace(r->principal.session, r->trace.trace_id);
	if (r->gw->recorder == NULL)
		return;
	memset(&d, 0, sizeof(d));
	d.ts_us = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
	copy(d.trace_id, sizeof(d.trace_id), r->trace.trace_id);
	fill_principal(&d, r);
	/* Only resolved names are recorded verbatim; raw URL text is capped. */
	copy(d.connector, sizeof(d.connector),
	     r->connector ? r->connector->name : r->connector_name);
	copy(d.operation, sizeof(d.operation), r->op ? r->op->name : r->operation_name);
	copy(d.decision, sizeof(d.decision), sg_decision_name(r->decision));
	d.status = r->status;
	copy(d.code, sizeof(d.code), r->problem ? r->problem->code : "ok");
	copy(d.reason, sizeof(d.reason), r->problem ? r->detail : "allowed by policy");
	/* A flood without keys must not write a row each: sampled per client address. */
	if (r->decision == SG_DEC_UNAUTHENTICATED &&
	    !sg_unauth_record(r->gw->unauth, r->now_ns, d.reason, sizeof(d.reason)))
		return;
	d.latency_us = (int64_t)latency_us;
	d.queue_wait_us = (int64_t)r->queue_wait_us;
	d.cost = (r->op && r->decision == SG_DEC_ALLOWED) ? r->op->cost : 0.0;
	if (r->principal.session)
		copy(d.session_id, sizeof(d.session_id), r->principal.session->id);
	record_upstream(&d, r);
	record_dlp(&d, r);
	if (sg_recorder_push(r->gw->recorder, &d) != 0)
		sg_gauges.record_dropped = sg_recorder_dropped(r->gw->recorder);
	if (sg_throttle_budget_crossed(r) && r->status == 200)
		record_budget_warning(r, &d, sg_throttle_budget_warning(r));
}
