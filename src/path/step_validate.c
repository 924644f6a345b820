/*
 * validate: the body must be JSON, no deeper than the configured cap, and
 * match the operation's input schema.  Runs before throttle, so malformed
 * requests never spend anyone's capacity.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/sg_json_alloc.h"
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

static enum sg_step_rc
parse_body(struct sg_req *r)
{
	json_error_t jerr;
	if (r->body_len == 0) {
		/* No body means "no input", which is how a person would read it. */
		r->input = json_object();
		return r->input ? SG_STEP_NEXT : fail_no_memory(r);
	}
	/*
	 * JSON text has no raw NUL anywhere (inside strings it is escaped), and
	 * jansson takes one as the end of its input, which would let anything
	 * after it through unread.
	 */
	const char *nul = memchr(r->body, '\0', r->body_len);
	if (nul != NULL)
		return sg_req_fail(r, SG_P_MALFORMED_JSON,
		                   "byte %zu is a NUL character; JSON text never contains one, so "
		                   "send the body without it (write \\u0000 inside a string)",
		                   (size_t)(nul - r->body));
	sg_json_alloc_watch();
	r->input =
	    json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	/* Out of memory, jansson may call good JSON bad, or drop a byte and go on. */
	if (sg_json_alloc_unwatch()) {
		json_decref(r->input);
		r->input = NULL;
		return fail_no_memory(r);
	}
	if (r->input != NULL)
		return SG_STEP_NEXT;
	if (json_error_code(&jerr) == json_error_stack_overflow)
		return sg_req_fail(r, SG_P_NESTED_TOO_DEEPLY,
		                   "the body nests objects and arrays more than %d levels deep",
		                   r->gw->config->max_json_depth);
	return sg_req_fail(r, SG_P_MALFORMED_JSON, "line %d, column %d: %s", jerr.line, jerr.column,
	                   jerr.text);
}

static enum sg_step_rc
report_errors(struct sg_req *r, const struct sg_schema_error *errs, size_t n)
{
	json_t *list = json_array();
	int rc = list ? 0 : -1;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = json_array_append_new(list, json_pack("{s:s, s:s}", "pointer", errs[i].pointer,
		                                           "message", errs[i].message));
	if (rc != 0)
		json_decref(list);
	/* A refusal says all it found or, out of memory, nothing but a 500. */
	if (rc != 0 || (r->problem_ext = json_pack("{s:o}", "errors", list)) == NULL)
		return fail_no_memory(r);
	const char *where = errs[0].pointer[0] ? errs[0].pointer : "the body";
	if (n == 1)
		return sg_req_fail(r, SG_P_INVALID_INPUT, "%s %s", where, errs[0].message);
	return sg_req_fail(r, SG_P_INVALID_INPUT, "%s %s (and %zu more problem%s)", where,
	                   errs[0].message, n - 1, n == 2 ? "" : "s");
}

enum sg_step_rc
sg_step_validate(struct sg_req *r)
{
	return sg_validate_body(r, r->op->input);
}

enum sg_step_rc
sg_validate_body(struct sg_req *r, const struct sg_schema *schema)
{
	struct sg_schema_error errs[MAX_REPORTED_ERRORS];
	size_t n = 0;
	int max_depth = r->gw->config->max_json_depth;

	if (r->body_len > r->gw->config->max_body_bytes)
		return sg_req_fail(r, SG_P_BODY_TOO_LARGE,
		                   "the body is %zu bytes; the limit is %zu", r->body_len,
		                   r->gw->config->max_body_bytes);
	if (r->body_len > 0 && !is_json_type(r->content_type))
		return sg_req_fail(r, SG_P_UNSUPPORTED_MEDIA_TYPE, "the body was sent as %.80s",
		                   r->content_type);
	enum sg_step_rc rc = parse_body(r);
	if (rc != SG_STEP_NEXT)
		return rc;
	if (sg_json_depth(r->input, max_depth + 1) > max_depth)
		return sg_req_fail(r, SG_P_NESTED_TOO_DEEPLY,
		                   "the body nests objects and arrays more than %d levels deep",
		                   max_depth);
	/* The schema checks sg_json values: the same text again, with no body read as {}. */
	struct sg_json_doc doc;
	struct sg_json_error jerr;
	enum sg_json_rc jrc = sg_json_parse(r->body_len ? r->body : "{}",
	                                    r->body_len ? r->body_len : 2, max_depth, &doc, &jerr);
	if (jrc == SG_JSON_NO_MEMORY)
		return fail_no_memory(r);
	if (jrc != SG_JSON_OK)
		return sg_req_fail(r, SG_P_MALFORMED_JSON, "%s", jerr.message);
	if (sg_schema_validate(schema, doc.root, errs, MAX_REPORTED_ERRORS, &n) == 0)
		return SG_STEP_NEXT;
	if (n == 0) /* defensive: the validator always explains a refusal */
		return sg_req_fail(r, SG_P_INVALID_INPUT, "the input does not match the schema");
	return report_errors(r, errs, n);
}
