/*
 * validate: the body must be JSON, no deeper than the configured cap, and
 * match the operation's input schema.  Runs before throttle, so malformed
 * requests never spend anyone's capacity.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "path/sg_path.h"
#include "schema/sg_schema.h"

#define MAX_REPORTED_ERRORS 10

static bool
is_json_type(const char *ct)
{
	if (ct == NULL)
		return true; /* no header: take the body as JSON, as most clients mean */
	while (*ct == ' ')
		ct++;
	size_t n = strcspn(ct, ";");
	while (n > 0 && ct[n - 1] == ' ')
		n--;
	if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
		return true;
	/* application/<anything>+json, e.g. application/merge-patch+json */
	return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
	       strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/*
 * Out of memory is the gateway's failure, never the caller's, and the
 * refusal is set here because template runs answer from it directly.
 */
static enum sg_step_rc
fail_no_memory(struct sg_req *r)
{
	return sg_req_fail(r, SG_P_INTERNAL, "out of memory while checking the body");
}

/* No body means "no input", which is how a person would read it. */
static const char no_input[] = "{}";

/* The body's document, on this thread's parser: good until the thread parses again. */
static enum sg_step_rc
parse_body(struct sg_req *r, struct sg_json_doc *doc)
{
	struct sg_json_error err;
	int max_depth = r->gw->config->max_json_depth;
	const char *text = r->body_len ? r->body : no_input;
	size_t len = r->body_len ? r->body_len : sizeof(no_input) - 1;
	switch (sg_json_parse(text, len, max_depth, doc, &err)) {
	case SG_JSON_OK:
		return SG_STEP_NEXT;
	case SG_JSON_TOO_DEEP:
		return sg_req_fail(r, SG_P_NESTED_TOO_DEEPLY,
		                   "the body nests objects and arrays more than %d levels deep",
		                   max_depth);
	case SG_JSON_NO_MEMORY:
		return fail_no_memory(r);
	default:
		return sg_req_fail(r, SG_P_MALFORMED_JSON, "%s", err.message);
	}
}

static enum sg_step_rc
report_errors(struct sg_req *r, const struct sg_schema_error *errs, size_t n)
{
	struct sg_jw w;
	sg_jw_begin(&w, &r->problem_ext);
	sg_jw_object(&w);
	sg_jw_keyz(&w, "errors");
	sg_jw_array(&w);
	for (size_t i = 0; i < n; i++) {
		sg_jw_object(&w);
		sg_jw_keyz(&w, "pointer");
		sg_jw_stringz(&w, errs[i].pointer);
		sg_jw_keyz(&w, "message");
		sg_jw_stringz(&w, errs[i].message);
		sg_jw_object_end(&w);
	}
	sg_jw_array_end(&w);
	sg_jw_object_end(&w);
	/* A refusal says all it found or, out of memory, nothing but a 500. */
	if (sg_jw_end(&w) != 0)
		return fail_no_memory(r);
	const char *where = errs[0].pointer[0] ? errs[0].pointer : "the body";
	if (n == 1)
		return sg_req_fail(r, SG_P_INVALID_INPUT, "%s %s", where, errs[0].message);
	return sg_req_fail(r, SG_P_INVALID_INPUT, "%s %s (and %zu more problem%s)", where,
	                   errs[0].message, n - 1, n == 2 ? "" : "s");
}

/* Sandgate-Timeout: how long the caller will wait; it can only shorten upstream.deadline. */
static enum sg_step_rc
caller_timeout(struct sg_req *r)
{
	uint64_t ms;
	uint32_t most = r->gw->config->upstream_deadline_ms;
	if (sg_duration_parse_ms(r->timeout, &ms) != 0 || ms == 0 || ms > most)
		return sg_req_fail(r, SG_P_REQUEST_INVALID,
		                   "Sandgate-Timeout: expected a duration from 1ms to %ums such as "
		                   "5s, got \"%.40s\"",
		                   most, r->timeout);
	r->caller_timeout_ms = (uint32_t)ms;
	return SG_STEP_NEXT;
}

enum sg_step_rc
sg_step_validate(struct sg_req *r)
{
	if (r->timeout != NULL && caller_timeout(r) != SG_STEP_NEXT)
		return SG_STEP_STOP;
	return sg_validate_body(r, r->op->input);
}

enum sg_step_rc
sg_validate_body(struct sg_req *r, const struct sg_schema *schema)
{
	struct sg_schema_error errs[MAX_REPORTED_ERRORS];
	struct sg_json_doc doc;
	size_t n = 0;

	if (r->body_len > r->gw->config->max_body_bytes)
		return sg_req_fail(r, SG_P_BODY_TOO_LARGE,
		                   "the body is %zu bytes; the limit is %zu", r->body_len,
		                   r->gw->config->max_body_bytes);
	if (r->body_len > 0 && !is_json_type(r->content_type))
		return sg_req_fail(r, SG_P_UNSUPPORTED_MEDIA_TYPE, "the body was sent as %.80s",
		                   r->content_type);
	enum sg_step_rc rc = parse_body(r, &doc);
	if (rc != SG_STEP_NEXT)
		return rc;
	r->body_doc = doc;
	r->body_doc_text = r->body_len ? r->body : NULL;
	if (sg_schema_validate(schema, doc.root, errs, MAX_REPORTED_ERRORS, &n) == 0)
		return SG_STEP_NEXT;
	if (n == 0) /* defensive: the validator always explains a refusal */
		return sg_req_fail(r, SG_P_INVALID_INPUT, "the input does not match the schema");
	return report_errors(r, errs, n);
}
