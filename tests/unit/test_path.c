/*
 * test_path: the governed path on the fixture (the examples applied to a
 * real store), end to end through sg_path_run() and one step at a time,
 * each step given the request as the steps before it leave it.  Status,
 * problem code and detail are asserted exactly: error text is API.
 *
 * Keys: f.keys[0] is an explorer's, f.keys[1] a maker's, f.keys[2] an
 * admin's, all sandbox (sg_fixture.h).  Limits are those of
 * examples/policies/roles.yaml: an explorer may send one mail a second,
 * with bursts of two.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../support/sg_fixture.h"
#include "core/sg_keys.h"
#include "path/sg_path.h"
#include "path/step_throttle.h"

#define EXPLORER 0
#define MAKER 1

static const char contact[] = "{\"email\":\"ada@example.com\",\"name\":\"Ada Lovelace\"}";
static const char mail[] = "{\"to\":[\"ada@example.com\"],\"subject\":\"Hello\",\"body\":\"Hi.\"}";

static struct sg_fixture f;
/*
 * Every request is a minute after the one before, so buckets have always
 * refilled unless a test makes calls at one instant on purpose.
 */
static uint64_t clock_ns = 1000000000ull;

struct call {
	struct sg_req r;
	char auth[160];
};

/* A request as the HTTP layer hands it to the path. */
static void
call_init(struct call *c, const char *key, const char *connector, const char *op, const char *body)
{
	sg_req_init(&c->r, &f.gw, f.snap);
	if (key != NULL) {
		snprintf(c->auth, sizeof(c->auth), "Bearer %s", key);
		c->r.authorization = c->auth;
	}
	c->r.connector_name = connector;
	c->r.operation_name = op;
	c->r.content_type = "application/json";
	c->r.body = body;
	c->r.body_len = strlen(body);
	c->r.now_ns = (clock_ns += 60000000000ull);
	c->r.wall_s = (int64_t)time(NULL);
	sg_path_begin(&c->r);
}

/* Runs the steps before `last` (which must all go on), then `last` itself. */
static enum sg_step_rc
run_to(struct call *c, enum sg_step_rc (*last)(struct sg_req *))
{
	enum sg_step_rc (*const steps[])(struct sg_req *) = {
	    sg_step_identify, sg_step_capability, sg_step_resolve, sg_step_authorize,
	    sg_step_validate, sg_step_throttle,   sg_step_route,
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (steps[i] == last)
			return last(&c->r);
		assert_int_equal(steps[i](&c->r), SG_STEP_NEXT);
	}
	fail_msg("not a step");
	return SG_STEP_ERROR;
}

static void
assert_refused(const struct sg_req *r, int status, const char *code, const char *detail)
{
	assert_non_null(r->problem);
	assert_int_equal(r->status, status);
	assert_string_equal(r->problem->code, code);
	assert_string_equal(r->detail, detail);
}

static const char *
key_id(const char *key)
{
	static char id[SG_KEY_ID_LEN + 1];
	assert_int_equal(sg_key_parse(key, strlen(key), id), 0);
	return id;
}

/* ---- sg_path_run, end to end -------------------------------------------- */

/* The request's answer or refusal extension as a client reads it (NULL: none). */
static json_t *
text_json(const struct sg_jbuf *b)
{
	return b->len ? json_loadb(b->data, b->len, JSON_REJECT_DUPLICATES, NULL) : NULL;
}

static void
test_path_allows_a_call_and_answers_it(void **state)
{
	(void)state;
	struct call c;
	call_init(&c, f.keys[EXPLORER], "crm", "create_contact", contact);
	assert_int_equal(sg_path_run(&c.r), SG_STEP_STOP);
	assert_int_equal(c.r.status, 200);
	assert_null(c.r.problem);
	assert_int_equal(c.r.decision, SG_DEC_ALLOWED);
	json_t *out = text_json(&c.r.output);
	assert_true(json_is_object(out));
	/* The simulator echoes what it was sent. */
	assert_string_equal(json_string_value(json_object_get(out, "email")), "ada@example.com");
	json_decref(out);
	sg_path_finish(&c.r, 1);
}

static void
test_path_refuses_an_unknown_key(void **state)
{
	(void)state;
	char key[SG_KEY_MAX_LEN + 1], id[SG_KEY_ID_LEN + 1];
	struct call c;
	assert_int_equal(sg_key_generate(key, sizeof(key), id), 0); /* well formed, never stored */
	call_init(&c, key, "crm", "create_contact", contact);
	assert_int_equal(sg_path_run(&c.r), SG_STEP_STOP);
	assert_refused(&c.r, 401, "key_unknown", "this API key is not recognised");
	assert_int_equal(c.r.output.len, 0);
	sg_req_finish(&c.r);
}

static void
test_path_refuses_a_revoked_key(void **state)
{
	(void)state;
	char key[SG_KEY_MAX_LEN + 1], detail[96];
	struct call c;
	assert_int_equal(sg_fixture_add_key(&f, "maker", "sandbox", 0, key), 0);
	call_init(&c, key, "crm", "create_contact", contact);
	assert_int_equal(sg_path_run(&c.r), SG_STEP_STOP);
	assert_int_equal(c.r.status, 200);
	sg_req_finish(&c.r);

	assert_int_equal(sg_fixture_revoke(&f, key), 0);
	call_init(&c, key, "crm", "create_contact", contact);
	assert_int_equal(sg_path_run(&c.r), SG_STEP_STOP);
	snprintf(detail, sizeof(detail), "key %s was revoked", key_id(key));
	assert_refused(&c.r, 401, "key_revoked", detail);
	sg_req_finish(&c.r);
}

static void
test_path_names_what_an_unknown_connector_meant(void **state)
{
	(void)state;
	struct call c;
	call_init(&c, f.keys[EXPLORER], "crmm", "create_contact", contact);
	assert_int_equal(sg_path_run(&c.r), SG_STEP_STOP);
	assert_refused(&c.r, 404, "connector_not_found",
	               "there is no connector \"crmm\" (did you mean \"crm\"?)");
	sg_req_finish(&c.r);

	call_init(&c, f.keys[EXPLORER], "crm", "create_contat", contact);
	assert_int_equal(sg_path_run(&c.r), SG_STEP_STOP);
	assert_refused(&c.r, 404, "operation_not_found",
	               "connector \"crm\" has no operation \"create_contat\" (did you mean "
	               "\"create_contact\"?)");
	sg_req_finish(&c.r);
}

static void
test_path_refuses_what_the_role_may_not_call(void **state)
{
	(void)state;
	struct call c;
	/* Explorers may call crm.* and mail.send only. */
	call_init(&c, f.keys[EXPLORER], "calendar", "list_holidays", "{\"country\":\"DE\"}");
	assert_int_equal(sg_path_run(&c.r), SG_STEP_STOP);
	assert_refused(&c.r, 403, "operation_not_allowed",
	               "role \"explorer\" may not call calendar.list_holidays in sandbox mode");
	assert_int_equal(c.r.decision, SG_DEC_DENIED);
	sg_req_finish(&c.r);
}

static void
test_path_points_at_the_invalid_field(void **state)
{
	(void)state;
	struct call c;
	call_init(&c, f.keys[EXPLORER], "crm", "create_contact",
	          "{\"email\":\"ada@example.com\",\"name\":\"\"}");
	assert_int_equal(sg_path_run(&c.r), SG_STEP_STOP);
	assert_refused(&c.r, 400, "invalid_input", "/name must be at least 1 character long");
	json_t *ext = text_json(&c.r.problem_ext);
	json_t *errs = json_object_get(ext, "errors");
	assert_int_equal(json_array_size(errs), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(errs, 0), "pointer")),
	                    "/name");
	json_decref(ext);
	sg_req_finish(&c.r);
}

static void
test_path_refuses_a_call_over_the_limit(void **state)
{
	(void)state;
	struct call c;
	uint64_t now = (clock_ns += 3600000000000ull);
	/* Two at one instant fill the burst; the third would exceed it. */
	for (int i = 0; i < 3; i++) {
		call_init(&c, f.keys[EXPLORER], "mail", "send", mail);
		c.r.now_ns = now;
		assert_int_equal(sg_path_run(&c.r), SG_STEP_STOP);
		if (i < 2) {
			assert_int_equal(c.r.status, 200);
			sg_req_finish(&c.r);
		}
	}
	assert_refused(&c.r, 429, "rate_limited",
	               "limit \"explorer:sandbox:mail\" allows 1/s with bursts of 2 for your API "
	               "key per connector; this call would exceed it");
	assert_int_equal(c.r.output.len, 0);
	json_t *ext = text_json(&c.r.problem_ext);
	json_t *v = json_array_get(json_object_get(ext, "violated-policies"), 0);
	assert_string_equal(json_string_value(json_object_get(v, "policy")),
	                    "explorer:sandbox:mail");
	assert_int_equal(json_integer_value(json_object_get(v, "retry_after_s")), 1);
	json_decref(ext);
	sg_req_finish(&c.r);

	/* A second later one call fits again. */
	call_init(&c, f.keys[EXPLORER], "mail", "send", mail);
	c.r.now_ns = now + 1000000000ull;
	assert_int_equal(sg_path_run(&c.r), SG_STEP_STOP);
	assert_int_equal(c.r.status, 200);
	sg_req_finish(&c.r);
}

/* ---- identify ----------------------------------------------------------- */

static void
test_identify_finds_the_principal(void **state)
{
	(void)state;
	struct call c;
	call_init(&c, f.keys[MAKER], "crm", "create_contact", contact);
	assert_int_equal(sg_step_identify(&c.r), SG_STEP_NEXT);
	assert_non_null(c.r.principal.key);
	assert_string_equal(c.r.principal.key->id, key_id(f.keys[MAKER]));
	assert_string_equal(c.r.principal.key->user, "user1");
	assert_non_null(c.r.principal.role);
	assert_string_equal(c.r.principal.role->name, "maker");
	assert_int_equal(c.r.principal.mode, SG_MODE_SANDBOX);
	assert_null(c.r.problem);
	sg_req_finish(&c.r);
}

static void
test_identify_refusals(void **state)
{
	(void)state;
	struct call c;
	call_init(&c, NULL, "crm", "create_contact", contact);
	assert_int_equal(sg_step_identify(&c.r), SG_STEP_STOP);
	assert_refused(&c.r, 401, "key_missing", "no Authorization header was sent");
	assert_null(c.r.principal.key);
	sg_req_finish(&c.r);

	call_init(&c, NULL, "crm", "create_contact", contact);
	c.r.authorization = "Basic YWRhOmFkYQ==";
	assert_int_equal(sg_step_identify(&c.r), SG_STEP_STOP);
	assert_refused(&c.r, 401, "key_malformed",
	               "the Authorization header must be 'Bearer ' followed by a key starting "
	               "with 'sgk_' or a session token starting with 'sgs_'");
	sg_req_finish(&c.r);

	/* The right id with the wrong secret is as unknown as no key at all. */
	char forged[SG_KEY_MAX_LEN + 1];
	snprintf(forged, sizeof(forged), "%s", f.keys[MAKER]);
	size_t last = strlen(forged) - 1;
	forged[last] = forged[last] == 'a' ? 'b' : 'a';
	call_init(&c, forged, "crm", "create_contact", contact);
	assert_int_equal(sg_step_identify(&c.r), SG_STEP_STOP);
	assert_refused(&c.r, 401, "key_unknown", "this API key is not recognised");
	assert_null(c.r.principal.key);
	sg_req_finish(&c.r);
}

static void
test_identify_refuses_an_expired_key(void **state)
{
	(void)state;
	char key[SG_KEY_MAX_LEN + 1], detail[96];
	struct call c;
	int64_t at = (int64_t)time(NULL) + 3600;
	assert_int_equal(sg_fixture_add_key(&f, "explorer", "sandbox", at, key), 0);
	call_init(&c, key, "crm", "create_contact", contact);
	c.r.wall_s = at - 1;
	assert_int_equal(sg_step_identify(&c.r), SG_STEP_NEXT);
	sg_req_finish(&c.r);

	call_init(&c, key, "crm", "create_contact", contact);
	c.r.wall_s = at;
	assert_int_equal(sg_step_identify(&c.r), SG_STEP_STOP);
	snprintf(detail, sizeof(detail), "key %s has expired", key_id(key));
	assert_refused(&c.r, 401, "key_expired", detail);
	sg_req_finish(&c.r);
}

/* ---- capability --------------------------------------------------------- */

/*
 * A template's call may reach only what the template declared; the
 * example onboard-contact declares crm.create_contact and mail.send.
 */
static void
test_capability_binds_a_templates_calls_only(void **state)
{
	(void)state;
	struct call c;
	const struct sg_template *tpl = sg_defs_template(f.snap->defs, "onboard-contact");
	assert_non_null(tpl);

	call_init(&c, f.keys[MAKER], "crm", "create_contact", contact);
	c.r.tpl = tpl;
	c.r.capability = "crm.create_contact";
	assert_int_equal(run_to(&c, sg_step_capability), SG_STEP_NEXT);
	assert_null(c.r.problem);
	sg_req_finish(&c.r);

	/* The maker's role allows crm.list_contacts; the template did not declare it. */
	call_init(&c, f.keys[MAKER], "crm", "list_contacts", "{}");
	c.r.tpl = tpl;
	c.r.capability = "crm.list_contacts";
	assert_int_equal(run_to(&c, sg_step_capability), SG_STEP_STOP);
	assert_refused(&c.r, 403, "capability_not_declared",
	               "the template did not declare \"crm.list_contacts\": add it to capabilities "
	               "in template.yaml");
	assert_string_equal(c.r.principal.key->user, "user1"); /* audited under its runner */
	sg_req_finish(&c.r);

	/* A call that is not a template's passes. */
	call_init(&c, f.keys[MAKER], "crm", "list_contacts", "{}");
	assert_int_equal(run_to(&c, sg_step_capability), SG_STEP_NEXT);
	sg_req_finish(&c.r);
}

/* ---- resolve ------------------------------------------------------------ */

static void
test_resolve_finds_the_operation(void **state)
{
	(void)state;
	struct call c;
	call_init(&c, f.keys[EXPLORER], "crm", "list_contacts", "{}");
	assert_int_equal(run_to(&c, sg_step_resolve), SG_STEP_NEXT);
	assert_non_null(c.r.connector);
	assert_string_equal(c.r.connector->name, "crm");
	assert_non_null(c.r.op);
	assert_string_equal(c.r.op->name, "list_contacts");
	assert_int_equal(c.r.op->weight, 2);
	sg_req_finish(&c.r);
}

static void
test_resolve_refusals(void **state)
{
	(void)state;
	struct call c;
	/* Nothing close: no hint. */
	call_init(&c, f.keys[EXPLORER], "payments", "charge", "{}");
	assert_int_equal(run_to(&c, sg_step_resolve), SG_STEP_STOP);
	assert_refused(&c.r, 404, "connector_not_found", "there is no connector \"payments\"");
	assert_null(c.r.connector);
	sg_req_finish(&c.r);

	call_init(&c, f.keys[EXPLORER], "mail", "sned", "{}");
	assert_int_equal(run_to(&c, sg_step_resolve), SG_STEP_STOP);
	assert_refused(&c.r, 404, "operation_not_found",
	               "connector \"mail\" has no operation \"sned\" (did you mean \"send\"?)");
	assert_non_null(c.r.connector);
	assert_null(c.r.op);
	sg_req_finish(&c.r);
}

/* ---- authorize ---------------------------------------------------------- */

static void
test_authorize_allows_what_the_role_may_call(void **state)
{
	(void)state;
	struct call c;
	call_init(&c, f.keys[EXPLORER], "mail", "send", mail);
	assert_int_equal(run_to(&c, sg_step_authorize), SG_STEP_NEXT);
	assert_null(c.r.problem);
	assert_int_equal(c.r.status, 200);
	sg_req_finish(&c.r);
}

static void
test_authorize_refusals(void **state)
{
	(void)state;
	char key[SG_KEY_MAX_LEN + 1];
	struct call c;
	/* mail.get_status is in the "internal" data domain, which explorers do not get. */
	call_init(&c, f.keys[EXPLORER], "mail", "get_status", "{\"message_id\":\"msg_1\"}");
	assert_int_equal(run_to(&c, sg_step_authorize), SG_STEP_STOP);
	assert_refused(&c.r, 403, "operation_not_allowed",
	               "role \"explorer\" may not call mail.get_status in sandbox mode");
	sg_req_finish(&c.r);

	/* Explorers are sandbox only. */
	assert_int_equal(sg_fixture_add_key(&f, "explorer", "live", 0, key), 0);
	call_init(&c, key, "crm", "create_contact", contact);
	assert_int_equal(run_to(&c, sg_step_authorize), SG_STEP_STOP);
	assert_refused(&c.r, 403, "mode_not_allowed", "role \"explorer\" may not make live calls");
	sg_req_finish(&c.r);
}

/* ---- validate ----------------------------------------------------------- */

static void
test_validate_parses_the_input(void **state)
{
	(void)state;
	struct call c;
	call_init(&c, f.keys[EXPLORER], "crm", "create_contact", contact);
	assert_int_equal(run_to(&c, sg_step_validate), SG_STEP_NEXT);
	assert_null(c.r.problem);
	sg_req_finish(&c.r);

	/* No body is no input: {} for an operation that needs nothing. */
	call_init(&c, f.keys[EXPLORER], "crm", "list_contacts", "");
	assert_int_equal(run_to(&c, sg_step_validate), SG_STEP_NEXT);
	assert_null(c.r.problem);
	sg_req_finish(&c.r);
}

static void
test_validate_refusals(void **state)
{
	(void)state;
	struct call c;
	call_init(&c, f.keys[EXPLORER], "crm", "create_contact",
	          "{\"email\":\"not an address\",\"name\":\"Ada\",\"extra\":1}");
	assert_int_equal(run_to(&c, sg_step_validate), SG_STEP_STOP);
	assert_refused(&c.r, 400, "invalid_input",
	               "/email must match the pattern ^[^@ ]+@[^@ ]+\\.[^@ ]+$ (and 2 more "
	               "problems)");
	json_t *ext = text_json(&c.r.problem_ext);
	/* the pattern, format: email, /extra */
	assert_int_equal(json_array_size(json_object_get(ext, "errors")), 3);
	json_decref(ext);
	sg_req_finish(&c.r);

	call_init(&c, f.keys[EXPLORER], "crm", "create_contact", "{\"email\":");
	assert_int_equal(run_to(&c, sg_step_validate), SG_STEP_STOP);
	assert_refused(&c.r, 400, "malformed_json",
	               "line 1, column 9: the body ends before its JSON value is complete");
	sg_req_finish(&c.r);

	call_init(&c, f.keys[EXPLORER], "crm", "create_contact", contact);
	c.r.content_type = "text/plain";
	assert_int_equal(run_to(&c, sg_step_validate), SG_STEP_STOP);
	assert_refused(&c.r, 415, "unsupported_media_type", "the body was sent as text/plain");
	sg_req_finish(&c.r);
}

/*
 * JSONTestSuite-style bodies through the validate step: what is not JSON
 * (or JSON the gateway refuses) is malformed_json, JSON nested past the cap
 * is nested_too_deeply, and good JSON that breaks the schema is
 * invalid_input.  The event is calendar.create_event.
 */
#define EVENT_HEAD "{\"title\":\"Planning\",\"starts_at\":\"2026-12-07T09:30:00Z\","

static const struct body_case {
	const char *body;
	size_t len; /* 0: strlen */
	const char *code;
} body_cases[] = {
    {EVENT_HEAD "\"ends_at\":\"2026-12-07T10:00:00Z\"}", 0, NULL},
    {EVENT_HEAD "\"ends_at\":\"2026-12-07T10:00:00Z\",\"title\":\"again\"}", 0,
     "malformed_json"}, /* a duplicate key */
    {EVENT_HEAD "\"ends_at\":\"2026-12-07T10:00:00Z\",\"location\":\"a\\u0000b\"}", 0,
     "malformed_json"},
    {EVENT_HEAD "\"ends_at\":\"2026-12-07T10:00:00Z\"} {}", 0, "malformed_json"},
    {EVENT_HEAD "\"ends_at\":\"2026-12-07T10:00:00Z\"}x", 0, "malformed_json"},
    {EVENT_HEAD "\"ends_at\":\"2026-12-07T10:00:00Z\",\"location\":\"\xff\"}", 0,
     "malformed_json"}, /* not UTF-8 */
    {EVENT_HEAD "\"ends_at\":\"2026-12-07T10:00:00Z\",\"location\":\"\\ud800\"}", 0,
     "malformed_json"}, /* a lone surrogate */
    {EVENT_HEAD "\"ends_at\":\"2026-12-07T10:00:00Z\",\"location\":1e999}", 0,
     "malformed_json"},
    {EVENT_HEAD "\"ends_at\":\"2026-12-07T10:00:00Z\",\"location\":184467440737095516160}",
     0, "malformed_json"},
    {EVENT_HEAD "\"ends_at\":\"2026-12-07T10:00:00Z\",\"location\":12345678901234567890}", 0,
     "invalid_input"}, /* a big integer that fits: JSON, but not a string */
    {EVENT_HEAD "\"ends_at\":\"next tuesday-ish\"}", 0, "invalid_input"},
    {EVENT_HEAD "\"ends_at\":\"2026-02-29T10:00:00Z\"}", 0, "invalid_input"},
    {EVENT_HEAD "\"ends_at\":\"2026-12-07T10:00:00Z\",\"attendees\":[\"ada@@example.com\"]}",
     0, "invalid_input"},
    {EVENT_HEAD "\"ends_at\":\"2026-12-07T10:00:00Z\",\"attendees\":[\"ada@example.com\"]}",
     0, NULL},
    {"{\"title\":\"x\"} \0", 16, "malformed_json"}, /* a raw NUL after the value */
};

static void
test_validate_tells_malformed_from_invalid(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]); i++) {
		const struct body_case *bc = &body_cases[i];
		struct call c;
		call_init(&c, f.keys[MAKER], "calendar", "create_event", bc->body);
		if (bc->len != 0)
			c.r.body_len = bc->len;
		enum sg_step_rc rc = run_to(&c, sg_step_validate);
		const char *got = c.r.problem ? c.r.problem->code : NULL;
		if (bc->code == NULL ? rc != SG_STEP_NEXT
		                     : rc != SG_STEP_STOP || got == NULL || strcmp(got, bc->code) != 0)
			fail_msg("case %zu (%s): got %s (%s), want %s", i, bc->body, got ? got : "pass",
			         c.r.detail, bc->code ? bc->code : "pass");
		sg_req_finish(&c.r);
	}
	/* Nesting: at the cap the body is JSON (the wrong type), one level more is refused. */
	int cap = f.cfg.max_json_depth;
	for (int depth = cap; depth <= cap + 1; depth++) {
		char body[512];
		size_t n = (size_t)snprintf(body, sizeof(body), "{\"title\":");
		assert_true((size_t)depth * 2 + n + 2 < sizeof(body));
		for (int i = 1; i < depth; i++)
			body[n++] = '[';
		for (int i = 1; i < depth; i++)
			body[n++] = ']';
		body[n++] = '}';
		body[n] = '\0';
		struct call c;
		call_init(&c, f.keys[MAKER], "calendar", "create_event", body);
		assert_int_equal(run_to(&c, sg_step_validate), SG_STEP_STOP);
		assert_string_equal(c.r.problem->code,
		                    depth == cap ? "invalid_input" : "nested_too_deeply");
		sg_req_finish(&c.r);
	}
}

/* The size cap at N - 1, N and N + 1 bytes: only N + 1 is too large. */
static void
test_validate_caps_the_body_size(void **state)
{
	(void)state;
	size_t max = f.cfg.max_body_bytes;
	char *body = malloc(max + 2);
	assert_non_null(body);
	for (size_t n = max - 1; n <= max + 1; n++) {
		/* A JSON string padded to n bytes: too long a name, but well formed. */
		memset(body, 'x', n);
		body[0] = '"';
		body[n - 1] = '"';
		body[n] = '\0';
		struct call c;
		call_init(&c, f.keys[EXPLORER], "crm", "create_contact", body);
		assert_int_equal(run_to(&c, sg_step_validate), SG_STEP_STOP);
		if (n <= max) {
			assert_refused(&c.r, 400, "invalid_input",
			               "the body must be an object, not a string");
		} else {
			char detail[96];
			snprintf(detail, sizeof(detail), "the body is %zu bytes; the limit is %zu",
			         n, max);
			assert_refused(&c.r, 413, "body_too_large", detail);
		}
		sg_req_finish(&c.r);
	}
	free(body);
}

/* ---- throttle ----------------------------------------------------------- */

static void
test_throttle_admits_and_takes_capacity(void **state)
{
	(void)state;
	struct call c;
	call_init(&c, f.keys[MAKER], "crm", "list_contacts", "{}");
	assert_int_equal(run_to(&c, sg_step_throttle), SG_STEP_NEXT);
	const struct sg_verdict *v = sg_throttle_verdict(&c.r);
	assert_non_null(v);
	assert_true(v->allowed);
	assert_int_equal(c.r.cls, SG_CLASS_NORMAL);
	assert_null(c.r.problem);
	sg_req_finish(&c.r);
}

static void
test_throttle_refusals(void **state)
{
	(void)state;
	struct call c;
	call_init(&c, f.keys[MAKER], "crm", "list_contacts", "{}");
	c.r.priority = "urgent";
	assert_int_equal(run_to(&c, sg_step_throttle), SG_STEP_STOP);
	assert_refused(&c.r, 400, "priority_invalid",
	               "Sandgate-Priority \"urgent\" is not one of critical, normal or background");
	sg_req_finish(&c.r);

	uint64_t now = (clock_ns += 3600000000000ull);
	for (int i = 0; i < 2; i++) {
		call_init(&c, f.keys[EXPLORER], "mail", "send", mail);
		c.r.now_ns = now;
		assert_int_equal(run_to(&c, sg_step_throttle), SG_STEP_NEXT);
		sg_req_finish(&c.r);
	}
	call_init(&c, f.keys[EXPLORER], "mail", "send", mail);
	c.r.now_ns = now;
	assert_int_equal(run_to(&c, sg_step_throttle), SG_STEP_STOP);
	assert_refused(&c.r, 429, "rate_limited",
	               "limit \"explorer:sandbox:mail\" allows 1/s with bursts of 2 for your API "
	               "key per connector; this call would exceed it");
	const struct sg_verdict *v = sg_throttle_verdict(&c.r);
	assert_non_null(v);
	assert_false(v->allowed);
	assert_int_equal(v->retry_after_ns, 1000000000ull);
	sg_req_finish(&c.r);
}

/* ---- route -------------------------------------------------------------- */

static void
test_route_answers_from_the_simulator(void **state)
{
	(void)state;
	struct call c;
	call_init(&c, f.keys[EXPLORER], "crm", "create_contact", contact);
	assert_int_equal(run_to(&c, sg_step_route), SG_STEP_NEXT);
	json_t *out = text_json(&c.r.output);
	assert_true(json_is_object(out));
	assert_string_equal(json_string_value(json_object_get(out, "name")), "Ada Lovelace");
	assert_memory_equal(json_string_value(json_object_get(out, "id")), "ct_", 3);
	json_decref(out);
	assert_int_equal(c.r.status, 200);
	sg_req_finish(&c.r);
}

static void
test_route_refuses_a_live_upstream_without_a_fetcher(void **state)
{
	(void)state;
	char key[SG_KEY_MAX_LEN + 1];
	struct call c;
	assert_int_equal(sg_fixture_add_key(&f, "maker", "live", 0, key), 0);
	call_init(&c, key, "crm", "create_contact", contact);
	assert_int_equal(run_to(&c, sg_step_route), SG_STEP_STOP);
	assert_refused(&c.r, 501, "live_unavailable",
	               "connector \"crm\" has a real upstream, and this gateway process cannot "
	               "make upstream calls");
	assert_int_equal(c.r.output.len, 0);
	sg_req_finish(&c.r);
}

static int
setup(void **state)
{
	(void)state;
	return sg_fixture_init(&f, 3);
}

static int
teardown(void **state)
{
	(void)state;
	sg_fixture_free(&f);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_path_allows_a_call_and_answers_it),
	    cmocka_unit_test(test_path_refuses_an_unknown_key),
	    cmocka_unit_test(test_path_refuses_a_revoked_key),
	    cmocka_unit_test(test_path_names_what_an_unknown_connector_meant),
	    cmocka_unit_test(test_path_refuses_what_the_role_may_not_call),
	    cmocka_unit_test(test_path_points_at_the_invalid_field),
	    cmocka_unit_test(test_path_refuses_a_call_over_the_limit),
	    cmocka_unit_test(test_identify_finds_the_principal),
	    cmocka_unit_test(test_identify_refusals),
	    cmocka_unit_test(test_identify_refuses_an_expired_key),
	    cmocka_unit_test(test_capability_binds_a_templates_calls_only),
	    cmocka_unit_test(test_resolve_finds_the_operation),
	    cmocka_unit_test(test_resolve_refusals),
	    cmocka_unit_test(test_authorize_allows_what_the_role_may_call),
	    cmocka_unit_test(test_authorize_refusals),
	    cmocka_unit_test(test_validate_parses_the_input),
	    cmocka_unit_test(test_validate_refusals),
	    cmocka_unit_test(test_validate_caps_the_body_size),
	    cmocka_unit_test(test_validate_tells_malformed_from_invalid),
	    cmocka_unit_test(test_throttle_admits_and_takes_capacity),
	    cmocka_unit_test(test_throttle_refusals),
	    cmocka_unit_test(test_route_answers_from_the_simulator),
	    cmocka_unit_test(test_route_refuses_a_live_upstream_without_a_fetcher),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
