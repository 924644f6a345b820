#include "core/sg_problem.h"

#include <stdbool.h>
#include <string.h>

/* Extensions are small documents written by the gateway itself. */
#define SG_PROBLEM_EXT_DEPTH 16

#define TYPE_BASE "https://sandgate.dev/problems/"
/* The IANA-registered types from the RateLimit headers draft. */
#define IANA_TYPE "https://iana.org/assignments/http-problem-types#"

static const struct sg_problem_def defs[SG_P_COUNT] = {
    [SG_P_KEY_MISSING] = {"key_missing", 401, "API key required", TYPE_BASE "key-missing",
                          "Send your API key in the Authorization header as 'Bearer sgk_...'. "
                          "If you do not have a key, ask your platform admin for one.",
                          SG_DEC_UNAUTHENTICATED},
    [SG_P_KEY_MALFORMED] =
        {"key_malformed", 401, "API key is not valid", TYPE_BASE "key-malformed",
         "Check that you copied the whole key, starting with 'sgk_', with nothing added. "
         "Send it as 'Authorization: Bearer sgk_...'.",
         SG_DEC_UNAUTHENTICATED},
    [SG_P_KEY_UNKNOWN] =
        {"key_unknown", 401, "API key is not recognised", TYPE_BASE "key-unknown",
         "This key does not exist on this gateway. Check that you copied it exactly, "
         "or ask your platform admin for a new key.",
         SG_DEC_UNAUTHENTICATED},
    [SG_P_KEY_EXPIRED] =
        {"key_expired", 401, "API key has expired", TYPE_BASE "key-expired",
         "Your key reached the end of its lifetime. Ask your platform admin for a new key, "
         "then retry with it.",
         SG_DEC_UNAUTHENTICATED},
    [SG_P_KEY_REVOKED] = {"key_revoked", 401, "API key was revoked", TYPE_BASE "key-revoked",
                          "An admin switched this key off. Ask your platform admin for a new key; "
                          "do not keep retrying with this one.",
                          SG_DEC_UNAUTHENTICATED},
    [SG_P_SESSION_UNKNOWN] = {"session_unknown", 401, "Session is not recognised",
                              TYPE_BASE "session-unknown",
                              "This session does not exist on this gateway (sessions end when "
                              "it restarts). Start a new one: POST /v1/sessions with your API "
                              "key.",
                              SG_DEC_UNAUTHENTICATED},
    [SG_P_SESSION_EXPIRED] = {"session_expired", 401, "Session has expired",
                              TYPE_BASE "session-expired",
                              "Your session reached the end of its time. Start a new session: "
                              "POST /v1/sessions with your API key, then use the new sgs_ "
                              "token.",
                              SG_DEC_UNAUTHENTICATED},
    [SG_P_SESSION_SPENT] = {"session_spent", 429, "The session has used what it was given",
                            IANA_TYPE "quota-exceeded",
                            "This session has used all its calls or its budget. Start a new "
                            "session (POST /v1/sessions), with a larger budget or call count "
                            "if you need one.",
                            SG_DEC_THROTTLED},
    [SG_P_SESSION_LIMIT] = {"session_limit", 429, "Too many sessions for this key",
                            TYPE_BASE "session-limit",
                            "Your API key has as many sessions running as it may. End one you "
                            "no longer need (DELETE /v1/sessions/ID with the same key), or wait "
                            "for one to expire: the Retry-After header says when the next one "
                            "does.",
                            SG_DEC_THROTTLED},
    [SG_P_ROLE_UNKNOWN] =
        {"role_unknown", 403, "Your role has no policy", TYPE_BASE "role-unknown",
         "Your key names a role that the current policy does not define. "
         "Ask your platform admin to add the role to the policy or to issue a key with "
         "another role.",
         SG_DEC_DENIED},
    [SG_P_MODE_NOT_ALLOWED] =
        {"mode_not_allowed", 403, "Your role may not use this mode", TYPE_BASE "mode-not-allowed",
         "Your role is not allowed to make calls in this mode. Use a sandbox key to "
         "experiment, or ask your platform admin for access.",
         SG_DEC_DENIED},
    [SG_P_OPERATION_NOT_ALLOWED] =
        {"operation_not_allowed", 403, "Your role may not call this operation",
         TYPE_BASE "operation-not-allowed",
         "GET /v1/catalog lists what you may call. If you need this operation, ask your "
         "platform admin to allow it for your role.",
         SG_DEC_DENIED},
    [SG_P_CONNECTOR_NOT_FOUND] =
        {"connector_not_found", 404, "No such connector", TYPE_BASE "connector-not-found",
         "Check the connector name in the URL. GET /v1/catalog lists the connectors you may "
         "use.",
         SG_DEC_NOT_FOUND},
    [SG_P_OPERATION_NOT_FOUND] =
        {"operation_not_found", 404, "No such operation", TYPE_BASE "operation-not-found",
         "Check the operation name in the URL. GET /v1/catalog lists each connector's "
         "operations.",
         SG_DEC_NOT_FOUND},
    [SG_P_ROUTE_NOT_FOUND] = {"route_not_found", 404, "Nothing here", TYPE_BASE "route-not-found",
                              "Connector calls are POST /v1/connectors/{connector}/{operation}. "
                              "GET /v1/catalog lists what you may call.",
                              SG_DEC_NOT_FOUND},
    [SG_P_METHOD_NOT_ALLOWED] =
        {"method_not_allowed", 405, "Method not allowed here", TYPE_BASE "method-not-allowed",
         "Use the method named in the Allow header. Connector calls are always POST.",
         SG_DEC_INVALID},
    [SG_P_UNSUPPORTED_MEDIA_TYPE] =
        {"unsupported_media_type", 415, "Body must be JSON", TYPE_BASE "unsupported-media-type",
         "Send the body as JSON with the header 'Content-Type: application/json'.", SG_DEC_INVALID},
    [SG_P_MALFORMED_JSON] =
        {"malformed_json", 400, "Body is not valid JSON", TYPE_BASE "malformed-json",
         "Fix the JSON at the position given in the detail. A JSON checker or your "
         "tool's JSON view shows the exact spot.",
         SG_DEC_INVALID},
    [SG_P_BODY_TOO_LARGE] = {"body_too_large", 413, "Body is too large", TYPE_BASE "body-too-large",
                             "Send a smaller body. Split large batches into several calls.",
                             SG_DEC_INVALID},
    [SG_P_NESTED_TOO_DEEPLY] =
        {"nested_too_deeply", 400, "Body is nested too deeply", TYPE_BASE "nested-too-deeply",
         "Flatten the JSON: objects and arrays inside each other may go only a limited number "
         "of levels deep.",
         SG_DEC_INVALID},
    [SG_P_INVALID_INPUT] = {"invalid_input", 400, "Input does not match the operation",
                            TYPE_BASE "invalid-input",
                            "Fix the fields listed in 'errors' (each 'pointer' shows where). "
                            "GET /v1/catalog shows each operation's input schema.",
                            SG_DEC_INVALID},
    [SG_P_REQUEST_INVALID] = {"request_invalid", 400, "The request is not valid",
                              TYPE_BASE "request-invalid",
                              "Fix what the detail names, then send the request again.",
                              SG_DEC_INVALID},
    [SG_P_RATE_LIMITED] =
        {"rate_limited", 429, "Too many requests", IANA_TYPE "quota-exceeded",
         "Wait for the number of seconds in the Retry-After header, then try again. "
         "GET /v1/me/usage shows your limits.",
         SG_DEC_THROTTLED},
    [SG_P_CONCURRENCY_LIMITED] =
        {"concurrency_limited", 429, "Too many calls at once", IANA_TYPE "quota-exceeded",
         "Wait for some of your calls in progress to finish, then try again; send calls one "
         "after another rather than all at once. GET /v1/me/usage shows your limits.",
         SG_DEC_THROTTLED},
    [SG_P_BUDGET_EXCEEDED] = {"budget_exceeded", 429, "The budget for these calls is used up",
                              IANA_TYPE "quota-exceeded",
                              "Wait until the budget resets (the Retry-After header says when), "
                              "try the call in sandbox mode, where nothing is charged, or ask "
                              "for a larger budget as 'budget.ask' says.",
                              SG_DEC_THROTTLED},
    [SG_P_PRIORITY_INVALID] =
        {"priority_invalid", 400, "Sandgate-Priority is not valid", TYPE_BASE "priority-invalid",
         "Send Sandgate-Priority: critical, normal or background, or leave the header out "
         "to use your role's default.",
         SG_DEC_INVALID},
    [SG_P_CAPACITY] =
        {"capacity", 503, "The gateway is at capacity", IANA_TYPE "temporary-reduced-capacity",
         "The gateway is protecting itself from overload. Wait for the number of seconds in "
         "the Retry-After header, then try again.",
         SG_DEC_THROTTLED},
    [SG_P_LIVE_UNAVAILABLE] =
        {"live_unavailable", 501, "Live calls are not available here", TYPE_BASE "live-unavailable",
         "This gateway serves this connector from its simulator only. Use a sandbox key, or "
         "ask your platform admin when live calls will be enabled.",
         SG_DEC_ERROR},
    [SG_P_SIMULATOR_FAILED] =
        {"simulator_failed", 500, "The simulator could not answer", TYPE_BASE "simulator-failed",
         "This is a problem with the connector definition, not with your call. Tell your "
         "platform admin and include the trace_id.",
         SG_DEC_ERROR},
    [SG_P_NOT_READY] = {"not_ready", 503, "The gateway is not ready", TYPE_BASE "not-ready",
                        "The gateway is starting or reloading. Try again in a few seconds.",
                        SG_DEC_ERROR},
    [SG_P_TEMPLATE_NOT_FOUND] =
        {"template_not_found", 404, "No such template", TYPE_BASE "template-not-found",
         "Check the template name in the URL. GET /v1/catalog lists the templates you may run.",
         SG_DEC_NOT_FOUND},
    [SG_P_CAPABILITY_FORBIDDEN] =
        {"capability_forbidden", 403, "Your role may not call everything this template calls",
         TYPE_BASE "capability-forbidden",
         "A template can only do what you may do yourself. Ask your platform admin to allow "
         "the operation named in the detail for your role, or use another template.",
         SG_DEC_DENIED},
    [SG_P_CAPABILITY_NOT_DECLARED] =
        {"capability_not_declared", 403, "The template called something it did not declare",
         TYPE_BASE "capability-not-declared",
         "A template may call only the operations listed under capabilities in its "
         "template.yaml. Ask the template's maker to declare the operation named in the detail "
         "(a new version of the template), or call it directly.",
         SG_DEC_DENIED},
    [SG_P_RUNS_LIMITED] = {"runs_limited", 429, "Your team has too many runs in progress",
                           IANA_TYPE "quota-exceeded",
                           "Wait for a run to finish (the Retry-After header says how long to "
                           "wait), then start this one again.",
                           SG_DEC_THROTTLED},
    [SG_P_RUN_UNKNOWN] = {"run_unknown", 404, "No such run", TYPE_BASE "run-unknown",
                          "Check the run id: it is the \"id\" returned when the run started. "
                          "Runs can only be read with a key of the team that started them.",
                          SG_DEC_NOT_FOUND},
    [SG_P_TEMPLATE_FAILED] = {"template_failed", 422, "The template run failed",
                              TYPE_BASE "template-failed",
                              "The run's error says what went wrong and on which line of "
                              "main.lua. Fix the template or its input, then run it again.",
                              SG_DEC_ALLOWED},
    [SG_P_TEMPLATE_LIMIT] = {"template_limit", 422, "The template run hit one of its limits",
                             TYPE_BASE "template-limit",
                             "The run's stopped_by names the limit and its value. Make the "
                             "template do less work per run, or ask the template's maker to "
                             "raise that limit in template.yaml.",
                             SG_DEC_ALLOWED},
    [SG_P_SANDBOX_VIOLATION] = {"sandbox_violation", 422, "The sandbox stopped the template",
                                TYPE_BASE "sandbox-violation",
                                "The template's worker did something the sandbox forbids, or "
                                "crashed. Nothing outside the sandbox was affected. Tell the "
                                "template's maker, with the run id.",
                                SG_DEC_ALLOWED},
    [SG_P_SANDBOX_UNAVAILABLE] = {"sandbox_unavailable", 503, "Templates cannot run right now",
                                  TYPE_BASE "sandbox-unavailable",
                                  "The gateway cannot start a sandbox for this run. Try again "
                                  "in a minute; if it persists, tell your platform admin (GET "
                                  "/readyz shows the sandbox's state).",
                                  SG_DEC_ERROR},
    [SG_P_AUDIT_UNAVAILABLE] = {"audit_unavailable", 503, "Calls cannot be audited right now",
                                TYPE_BASE "audit-unavailable",
                                "The gateway cannot write its audit trail, and calls in this "
                                "mode are not made unrecorded. Nothing was sent or charged. "
                                "Retry after the number of seconds in the Retry-After header; "
                                "if it persists, tell your platform admin (the store may be "
                                "locked or its disk full; /metrics shows "
                                "sandgate_record_backlog).",
                                SG_DEC_ERROR},
    [SG_P_INTERNAL] = {"internal", 500, "Something went wrong inside the gateway",
                       TYPE_BASE "internal",
                       "Try again. If it keeps happening, tell your platform admin and include the "
                       "trace_id.",
                       SG_DEC_ERROR},
    [SG_P_REQUEST_TIMEOUT] = {"request_timeout", 408, "The request took too long to arrive",
                              TYPE_BASE "request-timeout",
                              "Send the whole request at once, without pauses: the gateway "
                              "waits a limited time for a request's headers and body. On a "
                              "slow link, send smaller bodies.",
                              SG_DEC_INVALID},
    [SG_P_UNAUTHENTICATED_LIMITED] =
        {"unauthenticated_limited", 429, "Too many requests without a valid key",
         IANA_TYPE "abnormal-usage-detected",
         "Requests from your address were refused for want of a valid API key too often. "
         "Check the key your client sends (GET /v1/me/usage with it says whether it works), "
         "then wait for the number of seconds in the Retry-After header.",
         SG_DEC_UNAUTHENTICATED},
    /*
     * Live calls.  The call was allowed; these say what the upstream did.
     * An upstream's own answer the caller could act on (404, a refusal of
     * the input) is recorded as allowed, as the call was made; a failure to
     * get a usable answer is an error.
     */
    [SG_P_UPSTREAM_CONTRACT] =
        {"upstream_contract", 502, "The upstream's answer did not match the operation",
         TYPE_BASE "upstream-contract",
         "The service behind this connector answered with data the connector's output schema "
         "does not allow ('errors' says where), so the answer was withheld. This is not a "
         "problem with your call: tell your platform admin, with the trace_id, so the "
         "connector definition or the service can be fixed.",
         SG_DEC_ERROR},
    [SG_P_UPSTREAM_ERROR] =
        {"upstream_error", 502, "The upstream service failed", TYPE_BASE "upstream-error",
         "The service behind this connector failed to answer your call (the detail gives its "
         "status). Try again in a little while; if it keeps failing, tell your platform "
         "admin with the trace_id.",
         SG_DEC_ERROR},
    [SG_P_UPSTREAM_UNAVAILABLE] =
        {"upstream_unavailable", 503, "The upstream service is unavailable for now",
         IANA_TYPE "temporary-reduced-capacity",
         "The service behind this connector is overloaded or failing, so calls to it are "
         "paused. Wait for the number of seconds in the Retry-After header, then try again.",
         SG_DEC_ERROR},
    [SG_P_UPSTREAM_TIMEOUT] =
        {"upstream_timeout", 504, "The upstream service took too long",
         TYPE_BASE "upstream-timeout",
         "The service behind this connector did not answer in time. Try again; if your call "
         "changes something (creates, sends, pays), check first whether it took effect, "
         "since the service may have done it without answering.",
         SG_DEC_ERROR},
    [SG_P_UPSTREAM_TOO_LARGE] =
        {"upstream_too_large", 502, "The upstream's answer was too large",
         TYPE_BASE "upstream-too-large",
         "The service behind this connector answered with more data than the connector "
         "allows (max_response). Ask for less at once (a smaller page or filter), or ask "
         "your platform admin to raise the connector's max_response.",
         SG_DEC_ERROR},
    [SG_P_UPSTREAM_AUTH] =
        {"upstream_auth", 502, "The upstream refused the connector's credential",
         TYPE_BASE "upstream-auth",
         "The service behind this connector did not accept the gateway's credential for it; "
         "your own key is fine. Tell your platform admin: the connector's credential has "
         "expired or lacks a permission, and must be replaced with `sandgate secrets set "
         "CONNECTOR`.",
         SG_DEC_ERROR},
    [SG_P_UPSTREAM_REJECTED] =
        {"upstream_rejected", 422, "The upstream refused the request",
         TYPE_BASE "upstream-rejected",
         "Your input matched the operation's schema, but the service behind this connector "
         "refused it (the detail gives its status). Check the values you sent against what "
         "the service expects, for instance an id that must already exist, then try again.",
         SG_DEC_ALLOWED},
    [SG_P_UPSTREAM_NOT_FOUND] =
        {"upstream_not_found", 404, "The upstream has no such item", TYPE_BASE "upstream-not-found",
         "The service behind this connector found nothing at what your input names. Check "
         "the id or name you sent; a list operation of the connector shows what exists.",
         SG_DEC_ALLOWED},
    [SG_P_EGRESS_DENIED] =
        {"egress_denied", 403, "The gateway may not connect to that address",
         TYPE_BASE "egress-denied",
         "The connector's upstream address is not one the gateway is allowed to reach (the "
         "detail names the rule). Nothing was sent. Tell your platform admin: the connector's "
         "egress allowlist or the policy's endpoint rules decide this.",
         SG_DEC_DENIED},
    [SG_P_CREDENTIAL_MISSING] =
        {"credential_missing", 503, "The connector has no credential set",
         TYPE_BASE "credential-missing",
         "Live calls to this connector need a credential that the gateway does not hold yet. "
         "Ask your platform admin to set it with `sandgate secrets set CONNECTOR` (the detail "
         "names the connector). Sandbox calls work meanwhile.",
         SG_DEC_ERROR},
    [SG_P_BAD_PARAMETER] =
        {"bad_parameter", 400, "A value cannot be placed in the upstream request",
         TYPE_BASE "bad-parameter",
         "The value named in the detail becomes part of the upstream's address, where '/', "
         "'..', line breaks and their %-encoded forms are not allowed, and it may not be "
         "empty. Send the plain id or name, without any of these.",
         SG_DEC_INVALID},
    [SG_P_REDIRECT_REFUSED] =
        {"redirect_refused", 502, "The upstream redirected the call elsewhere",
         TYPE_BASE "redirect-refused",
         "The service behind this connector answered with a redirect that the connector does "
         "not allow to be followed (or too many of them). Nothing more was sent. Tell your "
         "platform admin: the connector's base_url may be out of date.",
         SG_DEC_ERROR},
    [SG_P_ADMIN_ONLY] =
        {"admin_only", 403, "Only admins may use this", TYPE_BASE "admin-only",
         "This part of the API shows every team's calls, so only keys with the role \"admin\" "
         "may use it. Ask your platform admin for the answer, or for an admin key "
         "(`sandgate keys create --role admin ...`) if you are one of them.",
         SG_DEC_DENIED},
    [SG_P_DLP_BLOCKED] =
        {"dlp_blocked", 403, "Sensitive data stopped at the data boundary", TYPE_BASE "dlp-blocked",
         "A field of this call holds data that your organisation's data protection policy "
         "does not let through here, such as a password, an access token or a card number. "
         "The detail names the field (as a JSON pointer like /customer/note) and the rule that "
         "matched it; the value itself is never shown or stored. If you sent it, remove the "
         "value from that field (or send a reference to it instead) and call again. If the "
         "value must pass, ask your platform team for a policy exception for this connector "
         "and quote the field, the rule and the trace id.",
         SG_DEC_DENIED},
};

static const char *decision_names[SG_DEC_COUNT] = {
    [SG_DEC_ALLOWED] = "allowed", [SG_DEC_UNAUTHENTICATED] = "unauthenticated",
    [SG_DEC_DENIED] = "denied",   [SG_DEC_NOT_FOUND] = "not_found",
    [SG_DEC_INVALID] = "invalid", [SG_DEC_THROTTLED] = "throttled",
    [SG_DEC_ERROR] = "error",
};

const struct sg_problem_def *
sg_problem_def(enum sg_problem_code code)
{
	if ((unsigned)code >= SG_P_COUNT)
		return &defs[SG_P_INTERNAL];
	return &defs[code];
}

const char *
sg_decision_name(enum sg_decision_kind d)
{
	if ((unsigned)d >= SG_DEC_COUNT)
		return "error";
	return decision_names[d];
}

void
sg_problem_sanitize(char *out, size_t n, const char *in)
{
	size_t i = 0;
	if (n == 0)
		return;
	for (; in && in[i] && i + 1 < n; i++) {
		unsigned char ch = (unsigned char)in[i];
		out[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	out[i] = '\0';
}

/* Client input may not be UTF-8; JSON strings must be. */
static void
write_safe_string(struct sg_jw *w, const char *in)
{
	char clean[1024];
	sg_problem_sanitize(clean, sizeof(clean), in);
	size_t n = strlen(clean);
	if (!sg_json_utf8_valid(clean, n))
		for (char *p = clean; *p; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
	sg_jw_string(w, clean, n);
}

static void
write_member(struct sg_jw *w, const char *key, const char *value)
{
	sg_jw_keyz(w, key);
	sg_jw_stringz(w, value);
}

static const char *const standard_members[] = {
    "type", "title", "status", "detail", "code", "remediation", "trace_id", "instance",
};

static bool
is_standard(const char *key, size_t len)
{
	for (size_t i = 0; i < sizeof(standard_members) / sizeof(standard_members[0]); i++)
		if (strlen(standard_members[i]) == len && memcmp(standard_members[i], key, len) == 0)
			return true;
	return false;
}

/*
 * The extension's members, copied after the body's own: they may add but
 * never replace one.  Only refusals that carry extensions pay for reading
 * them back.  -1: the extension is not one JSON object.
 */
static int
write_extension(struct sg_jw *w, const struct sg_jbuf *ext)
{
	struct sg_json_doc doc;
	if (ext == NULL || ext->len == 0)
		return 0;
	if (sg_json_parse(ext->data, ext->len, SG_PROBLEM_EXT_DEPTH, &doc, NULL) != SG_JSON_OK ||
	    sg_json_type(doc.root) != SG_JSON_OBJECT)
		return -1;
	struct sg_json_iter it;
	struct sg_json_val v;
	const char *key;
	size_t len;
	sg_json_iter_init(&it, doc.root);
	while (sg_json_iter_next(&it, &key, &len, &v)) {
		if (is_standard(key, len))
			continue;
		sg_jw_key(w, key, len);
		sg_jw_value(w, v);
	}
	return 0;
}

int
sg_problem_write(struct sg_jbuf *out, const struct sg_problem_def *def, const char *detail,
                 const char *trace_id, const char *instance, const struct sg_jbuf *ext)
{
	size_t start = out->len;
	struct sg_jw w;
	sg_jw_begin(&w, out);
	sg_jw_object(&w);
	write_member(&w, "type", def->type);
	write_member(&w, "title", def->title);
	sg_jw_keyz(&w, "status");
	sg_jw_int(&w, def->status);
	sg_jw_keyz(&w, "detail");
	write_safe_string(&w, detail ? detail : def->title);
	write_member(&w, "code", def->code);
	write_member(&w, "remediation", def->remediation);
	if (trace_id != NULL)
		write_member(&w, "trace_id", trace_id);
	if (instance != NULL) {
		sg_jw_keyz(&w, "instance");
		write_safe_string(&w, instance);
	}
	int rc = write_extension(&w, ext);
	sg_jw_object_end(&w);
	/* Out of memory a body missing members would mislead: the caller sends a fixed 500. */
	if (sg_jw_end(&w) != 0 || rc != 0) {
		out->len = start;
		return -1;
	}
	return 0;
}
