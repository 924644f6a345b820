/*
 * screen: the data boundary, twice on the path.
 *
 *   request   after validate, before throttle: what the caller sends out
 *   response  after route, before record: what an upstream sends back
 *
 * Each scans the JSON once with the snapshot's DLP database (built at
 * apply and reload, never here), asks the policy what each finding's
 * class calls for in this call's data domain, role, mode and direction,
 * and then blocks, or rewrites the body (mask, tokenize, redact), or only
 * notes what it saw (alert).  Every finding that is not allowed becomes an
 * event in the decision's audit record and in /metrics: the pointer, the
 * rule and the action, never the value.
 *
 * Both run to completion: nothing here waits, so route stays the last step
 * that may suspend.  Both fail closed: when the screen cannot run, the
 * data does not pass.
 */
#include <stdio.h>
#include <string.h>

#include "dlp/sg_dlp_action.h"
#include "dlp/sg_dlp_scan.h"
#include "obs/sg_dlp_metrics.h"
#include "path/sg_path.h"
#include "path/step_route.h"

/* What the record step needs after the last event: `,{"more":4294967295}` and `]`. */
#define DLP_MARKER_ROOM 24

static const char no_input[] = "{}";

/* Out of memory or a broken scan: nothing unscreened may pass. */
static enum sg_step_rc
fail_closed(struct sg_req *r, enum sg_dlp_direction dir)
{
	return sg_req_fail(r, SG_P_INTERNAL,
	                   "the data screen could not check the %s (out of memory), so it was "
	                   "not %s",
	                   dir == SG_DLP_REQUEST ? "request" : "answer",
	                   dir == SG_DLP_REQUEST ? "sent" : "returned");
}

/* Appends one event to the request's list, whole or not at all. */
static void
note_event(struct sg_req *r, enum sg_dlp_direction dir, const char *pointer,
           const struct sg_dlp_hit *h, enum sg_dlp_action a)
{
	struct sg_jbuf b = {0};
	struct sg_jw w;
	sg_jw_begin(&w, &b);
	sg_jw_object(&w);
	sg_jw_keyz(&w, "dir");
	sg_jw_stringz(&w, sg_dlp_direction_name(dir));
	sg_jw_keyz(&w, "path");
	sg_jw_stringz(&w, pointer);
	sg_jw_keyz(&w, "rule");
	sg_jw_stringz(&w, h->rule);
	sg_jw_keyz(&w, "class");
	sg_jw_stringz(&w, h->data_class);
	sg_jw_keyz(&w, "action");
	sg_jw_stringz(&w, sg_dlp_action_name(a));
	sg_jw_object_end(&w);
	size_t room = sizeof(r->dlp) - r->dlp_len;
	size_t need = b.len + (r->dlp_len ? 1 : 0) + DLP_MARKER_ROOM + 2;
	if (sg_jw_end(&w) != 0 || need > room) {
		r->dlp_more++;
	} else {
		if (r->dlp_len)
			r->dlp[r->dlp_len++] = ',';
		memcpy(r->dlp + r->dlp_len, b.data, b.len);
		r->dlp_len += (uint16_t)b.len;
		r->dlp[r->dlp_len] = '\0';
	}
	sg_jbuf_release(&b);
	sg_dlp_metrics_count(h->data_class, sg_dlp_action_name(a), sg_dlp_direction_name(dir),
	                     r->connector->name);
}

/* What one screen decided. */
struct screen {
	enum sg_dlp_direction dir;
	struct sg_dlp_subject subject;
	struct sg_dlp_result res;
	struct sg_dlp_verdict verdicts[SG_DLP_MAX_HITS];
	const struct sg_dlp_hit *blocked; /* the first finding to block, or NULL */
	bool rewrite;                     /* a verdict masks, tokenizes or redacts */
	bool tokenize;
};

static void
subject_init(struct screen *s, const struct sg_req *r, enum sg_dlp_direction dir, bool real)
{
	memset(&s->subject, 0, sizeof(s->subject));
	s->dir = dir;
	s->subject.data_domain = r->op->data_domain;
	s->subject.role = r->principal.role->name;
	s->subject.mode = (int)r->principal.mode;
	s->subject.direction = dir;
	s->subject.real_upstream = real;
	s->blocked = NULL;
	s->rewrite = s->tokenize = false;
}

/* Each finding's action, the events they make, and whether the body must change. */
static void
judge(struct sg_req *r, struct screen *s)
{
	const struct sg_dlp_policy *p = sg_policy_dlp(r->snap->defs->policy);
	for (size_t i = 0; i < s->res.n_hits; i++) {
		const struct sg_dlp_hit *h = &s->res.hits[i];
		enum sg_dlp_action a = sg_dlp_policy_action(p, h->data_class, &s->subject);
		s->verdicts[i].hit = h;
		s->verdicts[i].action = a;
		if (a == SG_DLP_ALLOW)
			continue;
		note_event(r, s->dir, sg_dlp_pointer(&s->res, h->value), h, a);
		if (a == SG_DLP_BLOCK && s->blocked == NULL)
			s->blocked = h;
		if (a == SG_DLP_MASK || a == SG_DLP_TOKENIZE || a == SG_DLP_REDACT)
			s->rewrite = true;
		if (a == SG_DLP_TOKENIZE)
			s->tokenize = true;
	}
}

/*
 * The refusal names where and which rule, never what: the value stays
 * with the caller (or, for an answer, with the upstream).
 */
static enum sg_step_rc
refuse(struct sg_req *r, const struct screen *s)
{
	const struct sg_dlp_hit *h = s->blocked;
	const char *ptr = sg_dlp_pointer(&s->res, h->value);
	struct sg_jw w;
	sg_jbuf_release(&r->problem_ext);
	sg_jw_begin(&w, &r->problem_ext);
	sg_jw_object(&w);
	sg_jw_keyz(&w, "pointer");
	sg_jw_stringz(&w, ptr);
	sg_jw_keyz(&w, "rule");
	sg_jw_stringz(&w, h->rule);
	sg_jw_keyz(&w, "data_class");
	sg_jw_stringz(&w, h->data_class);
	sg_jw_keyz(&w, "direction");
	sg_jw_stringz(&w, sg_dlp_direction_name(s->dir));
	sg_jw_object_end(&w);
	if (sg_jw_end(&w) != 0) {
		sg_jbuf_release(&r->problem_ext);
		return fail_closed(r, s->dir);
	}
	const char *where = ptr[0] ? ptr : "(the whole body)";
	if (s->dir == SG_DLP_REQUEST)
		return sg_req_fail(
		    r, SG_P_DLP_BLOCKED,
		    "the request's field %.200s holds data of class %s (rule \"%s\"), "
		    "which your role may not send to %s; nothing was sent",
		    where, h->data_class, h->rule, r->connector->name);
	return sg_req_fail(r, SG_P_DLP_BLOCKED,
	                   "the answer's field %.200s holds data of class %s (rule \"%s\"), which "
	                   "your role may not receive from %s; the answer was withheld",
	                   where, h->data_class, h->rule, r->connector->name);
}

/* Findings past the scan's cap were not kept, so nothing could act on them: fail closed. */
static enum sg_step_rc
too_many(struct sg_req *r, enum sg_dlp_direction dir)
{
	return sg_req_fail(r, SG_P_DLP_BLOCKED,
	                   "the %s holds more than %d sensitive values, more than the data screen "
	                   "checks in one call; it was not %s",
	                   dir == SG_DLP_REQUEST ? "request" : "answer", SG_DLP_MAX_HITS,
	                   dir == SG_DLP_REQUEST ? "sent" : "returned");
}

/* The document rewritten into `out`; -1 out of memory (or tokenizing without a key). */
static int
rewrite(struct sg_req *r, struct sg_json_val root, const struct screen *s, const char *const *allow,
        size_t n_allow, struct sg_jbuf *out)
{
	const struct sg_dlp_policy *p = sg_policy_dlp(r->snap->defs->policy);
	if (s->tokenize && r->gw->dlp_token_key == NULL)
		return -1;
	return sg_dlp_rewrite(root, &s->res, s->verdicts, s->res.n_hits, p, r->gw->dlp_token_key,
	                      allow, n_allow, out);
}

static const struct sg_op_hints *
hints_of(const struct sg_req *r)
{
	const struct sg_defs *defs = r->snap->defs;
	return defs->op_hints && r->op->index < defs->catalog->n_ops ? &defs->op_hints[r->op->index]
	                                                             : NULL;
}

static enum sg_step_rc
parse(struct sg_req *r, const char *text, size_t len, struct sg_json_doc *doc,
      enum sg_dlp_direction dir)
{
	switch (sg_json_parse(text, len, r->gw->config->max_json_depth, doc, NULL)) {
	case SG_JSON_OK:
		return SG_STEP_NEXT;
	case SG_JSON_NO_MEMORY:
		return fail_closed(r, dir);
	default:
		/* Defensive: validate (or route's output check) accepted this very text. */
		return sg_req_fail(r, SG_P_INTERNAL, "the data screen could not read the %s",
		                   dir == SG_DLP_REQUEST ? "request" : "answer");
	}
}

enum sg_step_rc
sg_step_screen_request(struct sg_req *r)
{
	struct sg_json_doc doc;
	struct screen s;
	if (r->gw->dlp_screen_off_for_bench)
		return SG_STEP_NEXT;
	const struct sg_dlp_db *db = r->snap->defs->dlp_db;
	struct sg_dlp_scanner *sc = sg_dlp_scanner_thread();
	if (db == NULL || sc == NULL)
		return fail_closed(r, SG_DLP_REQUEST);
	/*
	 * Validate's document, when this thread has not parsed since and it is
	 * of this very body; otherwise (a template's input, another parse in
	 * between) the body is read again.
	 */
	const char *text = r->body_len ? r->body : no_input;
	size_t len = r->body_len ? r->body_len : sizeof(no_input) - 1;
	if (sg_json_doc_live(&r->body_doc) && r->body_doc_text == (r->body_len ? r->body : NULL))
		doc = r->body_doc;
	else if (parse(r, text, len, &doc, SG_DLP_REQUEST) != SG_STEP_NEXT)
		return SG_STEP_STOP;
	const struct sg_op_hints *oh = hints_of(r);
	if (sg_dlp_scan_json(sc, db, doc.root, oh ? oh->in : NULL, oh ? oh->n_in : 0, &s.res) != 0)
		return fail_closed(r, SG_DLP_REQUEST);
	if (s.res.n_hits == 0)
		return SG_STEP_NEXT;
	subject_init(&s, r, SG_DLP_REQUEST, false);
	judge(r, &s);
	if (s.blocked != NULL)
		return refuse(r, &s);
	if (s.res.truncated)
		return too_many(r, SG_DLP_REQUEST);
	if (!s.rewrite)
		return SG_STEP_NEXT;
	sg_jbuf_release(&r->screened_body);
	if (rewrite(r, doc.root, &s, NULL, 0, &r->screened_body) != 0)
		return fail_closed(r, SG_DLP_REQUEST);
	/* Route (simulator and upstream alike) sends what the screen left. */
	r->body = r->screened_body.data;
	r->body_len = r->screened_body.len;
	return SG_STEP_NEXT;
}

/* A reply from a real upstream: live, or a sandbox environment with a base_url. */
static bool
from_real_upstream(const struct sg_req *r)
{
	const struct route_ctx *rc = sg_req_slot(r, SG_SLOT_ROUTE);
	return rc != NULL && rc->live != NULL;
}

enum sg_step_rc
sg_step_screen_response(struct sg_req *r)
{
	struct sg_json_doc doc;
	struct screen s;
	size_t n_allow = 0;
	char op_name[160];
	if (r->gw->dlp_screen_off_for_bench || r->output.len == 0)
		return SG_STEP_NEXT;
	bool real = from_real_upstream(r);
	snprintf(op_name, sizeof(op_name), "%s.%s", r->connector->name, r->op->name);
	/* Field minimization binds synthetic data too: it is about what a role sees. */
	const char *const *allow = sg_dlp_policy_allowlist(
	    sg_policy_dlp(r->snap->defs->policy), r->principal.role->name, op_name, &n_allow);
	if (!real && allow == NULL)
		return SG_STEP_NEXT; /* the simulator's data is synthetic */
	const struct sg_dlp_db *db = r->snap->defs->dlp_db;
	struct sg_dlp_scanner *sc = sg_dlp_scanner_thread();
	if (db == NULL || sc == NULL)
		return fail_closed(r, SG_DLP_RESPONSE);
	if (parse(r, r->output.data, r->output.len, &doc, SG_DLP_RESPONSE) != SG_STEP_NEXT)
		return SG_STEP_STOP;
	memset(&s.res, 0, sizeof(s.res));
	subject_init(&s, r, SG_DLP_RESPONSE, real);
	if (real) {
		const struct sg_op_hints *oh = hints_of(r);
		if (sg_dlp_scan_json(sc, db, doc.root, oh ? oh->out : NULL, oh ? oh->n_out : 0,
		                     &s.res) != 0)
			return fail_closed(r, SG_DLP_RESPONSE);
		judge(r, &s);
	}
	if (s.blocked != NULL || s.res.truncated) {
		sg_jbuf_release(&r->output); /* the upstream's data never reaches the caller */
		return s.blocked ? refuse(r, &s) : too_many(r, SG_DLP_RESPONSE);
	}
	if (!s.rewrite && allow == NULL)
		return SG_STEP_NEXT;
	struct sg_jbuf out = {0};
	if (rewrite(r, doc.root, &s, allow, n_allow, &out) != 0) {
		sg_jbuf_release(&out);
		sg_jbuf_release(&r->output);
		return fail_closed(r, SG_DLP_RESPONSE);
	}
	sg_jbuf_release(&r->output);
	r->output = out;
	return SG_STEP_NEXT;
}
