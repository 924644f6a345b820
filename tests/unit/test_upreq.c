/*
 * test_upreq: the upstream request built from a connector and an input.
 * Path parameters are the caller's only way into the upstream's address,
 * so every refusal is tried; caller headers pass only when listed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "catalog/sg_connector.h"
#include "core/sg_problem.h"
#include "upstream/sg_upreq.h"

static const char connector_yaml[] =
    "kind: connector\n"
    "name: items\n"
    "version: 1.0.0\n"
    "description: Items.\n"
    "auth: bearer\n"
    "environments:\n"
    "  sandbox: { simulator: true }\n"
    "  live: { base_url: \"https://api.example.test/v1/\" }\n"
    "forward_headers: [X-Request-Id]\n"
    "operations:\n"
    "  get_item:\n"
    "    method: GET\n"
    "    path: /items/{id}\n"
    "    data_domain: public\n"
    "    input: { type: object, required: [id], properties: { id: {} } }\n"
    "    output: { type: object }\n"
    "  search:\n"
    "    method: GET\n"
    "    path: /search\n"
    "    data_domain: public\n"
    "    input: { type: object }\n"
    "    output: { type: object }\n"
    "  add_entry:\n"
    "    method: POST\n"
    "    path: /groups/{group}/entries/{kind}\n"
    "    data_domain: public\n"
    "    input:\n"
    "      type: object\n"
    "      required: [group, kind]\n"
    "      properties: { group: {}, kind: {} }\n"
    "    output: { type: object }\n";

static struct sg_connector *conn;

static int
setup(void **state)
{
	(void)state;
	struct sg_diags d = {0};
	conn = sg_connector_parse("items.yaml", connector_yaml, strlen(connector_yaml), 1, &d);
	sg_diags_print(&d, stderr);
	sg_diags_free(&d);
	return conn == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	sg_connector_free(conn);
	return 0;
}

#define TP "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

struct built {
	struct sg_upreq rq;
	char err[256];
	const char *bad;
	int rc;
};

static void
build_h(struct built *b, const char *op, const char *input, const struct sg_upreq_caller_header *h,
        size_t n_h)
{
	const struct sg_operation *o = sg_connector_op(conn, op);
	assert_non_null(o);
	memset(b, 0, sizeof(*b));
	b->bad = "unset";
	b->rc = sg_upreq_build(&b->rq, conn, o, &conn->live, input, strlen(input), TP, h, n_h,
	                       b->err, sizeof(b->err), &b->bad);
}

static void
build(struct built *b, const char *op, const char *input)
{
	build_h(b, op, input, NULL, 0);
}

/* The URL built for get_item with this JSON value as id. */
static void
assert_item_url(const char *id_json, const char *want)
{
	char input[256];
	struct built b;
	snprintf(input, sizeof(input), "{\"id\":%s}", id_json);
	build(&b, "get_item", input);
	if (b.rc != 0)
		fail_msg("%s: %s", id_json, b.err);
	assert_string_equal(b.rq.url, want);
	assert_null(b.bad);
	sg_upreq_release(&b.rq);
}

static void
test_path_encoding(void **state)
{
	(void)state;
	assert_item_url("\"abc-1._~\"", "https://api.example.test/v1/items/abc-1._~");
	assert_item_url("\"a b\"", "https://api.example.test/v1/items/a%20b");
	assert_item_url("\"caf\xc3\xa9\"", "https://api.example.test/v1/items/caf%C3%A9");
	assert_item_url("\"\\u00e9\"", "https://api.example.test/v1/items/%C3%A9");
	assert_item_url("\"a?b\"", "https://api.example.test/v1/items/a%3Fb");
	assert_item_url("\"a#b\"", "https://api.example.test/v1/items/a%23b");
	/* A '%' that decodes to nothing harmful is kept, encoded. */
	assert_item_url("\"100%\"", "https://api.example.test/v1/items/100%25");
	assert_item_url("\"a%41\"", "https://api.example.test/v1/items/a%2541");
	assert_item_url("\"a&b=c;d\"", "https://api.example.test/v1/items/a%26b%3Dc%3Bd");
	assert_item_url("\"a.b\"", "https://api.example.test/v1/items/a.b");
	assert_item_url("42", "https://api.example.test/v1/items/42");
	assert_item_url("-7", "https://api.example.test/v1/items/-7");
	assert_item_url("1.5", "https://api.example.test/v1/items/1.5");
	assert_item_url("true", "https://api.example.test/v1/items/true");
}

static void
assert_refused(const char *id_json, const char *why)
{
	char input[256];
	struct built b;
	snprintf(input, sizeof(input), "{\"id\":%s}", id_json);
	build(&b, "get_item", input);
	if (b.rc == 0)
		fail_msg("%s was accepted: %s", id_json, b.rq.url);
	assert_int_equal(b.rc, -1);
	assert_non_null(b.bad);
	assert_string_equal(b.bad, "id");
	if (strstr(b.err, why) == NULL)
		fail_msg("%s: \"%s\" lacks \"%s\"", id_json, b.err, why);
	/* Nothing is left half-built. */
	assert_null(b.rq.url);
	assert_int_equal(b.rq.n_headers, 0);
	assert_null(b.rq.body);
}

static void
test_path_refusals(void **state)
{
	(void)state;
	assert_refused("\"a/b\"", "path parameter \"id\" cannot be used: it contains '/'");
	assert_refused("\"/\"", "it contains '/'");
	assert_refused("\"..\"", "it contains '..'");
	assert_refused("\"a..b\"", "it contains '..'");
	assert_refused("\".\"", "it is '.'");
	assert_refused("\"\"", "it is empty");
	assert_refused("\"a\\\\b\"", "it contains '\\'");
	assert_refused("\"a\\rb\"", "it contains a line break");
	assert_refused("\"a\\nb\"", "it contains a line break");
	assert_refused("\"a%2Fb\"",
	               "it contains '/' once %-decoded (an encoded form is refused too");
	assert_refused("\"a%2fb\"", "it contains '/' once %-decoded");
	assert_refused("\"%2e%2e\"", "it contains '..' once %-decoded");
	assert_refused("\"%2E.\"", "it contains '..' once %-decoded");
	assert_refused("\"a%252Fb\"", "it contains '/' once %-decoded");
	assert_refused("\"a%0d%0ab\"", "it contains a line break once %-decoded");
	assert_refused("\"a%00b\"", "it contains a NUL byte once %-decoded");
	assert_refused("\"a%5Cb\"", "it contains '\\' once %-decoded");
	assert_refused("{\"x\":1}", "path parameter \"id\" must be a string, number or boolean");
	assert_refused("[1]", "must be a string, number or boolean");
	assert_refused("null", "path parameter \"id\" is missing");

	struct built b;
	build(&b, "get_item", "{\"other\":1}");
	assert_int_equal(b.rc, -1);
	assert_string_equal(b.bad, "id");
	assert_string_equal(b.err, "path parameter \"id\" is missing");
}

static void
test_query(void **state)
{
	(void)state;
	struct built b;
	build(&b, "search",
	      "{\"q\":\"a b&c\",\"tags\":[\"x\",null,\"y/z\"],\"n\":3,\"ok\":false,"
	      "\"f\":{\"a\":1},\"z\":null,\"nest\":[[1]]}");
	assert_int_equal(b.rc, 0);
	assert_string_equal(b.rq.url, "https://api.example.test/v1/search?q=a%20b%26c&tags=x&tags="
	                              "y%2Fz&n=3&ok=false&f=%7B%22a%22%3A1%7D&nest=%5B1%5D");
	assert_string_equal(b.rq.method, "GET");
	assert_null(b.rq.body);
	sg_upreq_release(&b.rq);

	build(&b, "search", "{}");
	assert_int_equal(b.rc, 0);
	assert_string_equal(b.rq.url, "https://api.example.test/v1/search");
	/* A credential's parameter joins a URL with no query yet, then one with a query. */
	assert_int_equal(sg_upreq_add_query(&b.rq, "api_key", "k y/+"), 0);
	assert_string_equal(b.rq.url, "https://api.example.test/v1/search?api_key=k%20y%2F%2B");
	assert_int_equal(sg_upreq_add_query(&b.rq, "x", ""), 0);
	assert_string_equal(b.rq.url, "https://api.example.test/v1/search?api_key=k%20y%2F%2B&x=");
	sg_upreq_release(&b.rq);
	assert_null(b.rq.url);

	/* Path parameters leave the query. */
	build(&b, "get_item", "{\"id\":\"i1\",\"expand\":\"all\"}");
	assert_int_equal(b.rc, 0);
	assert_string_equal(b.rq.url, "https://api.example.test/v1/items/i1?expand=all");
	sg_upreq_release(&b.rq);
}

static void
test_body(void **state)
{
	(void)state;
	struct built b;
	build(&b, "add_entry",
	      "{\"group\":\"g 1\",\"name\":\"n\\u00e9\",\"kind\":7,\"tags\":[1,{\"a\":null}]}");
	assert_int_equal(b.rc, 0);
	assert_string_equal(b.rq.method, "POST");
	assert_string_equal(b.rq.url, "https://api.example.test/v1/groups/g%201/entries/7");
	assert_string_equal(b.rq.body, "{\"name\":\"n\xc3\xa9\",\"tags\":[1,{\"a\":null}]}");
	assert_int_equal(b.rq.body_len, strlen(b.rq.body));
	bool content_type = false;
	for (size_t i = 0; i < b.rq.n_headers; i++)
		content_type |= strcmp(b.rq.headers[i], "Content-Type: application/json") == 0;
	assert_true(content_type);
	sg_upreq_release(&b.rq);

	/* Every member in the path: the body is an empty object, still JSON. */
	build(&b, "add_entry", "{\"group\":\"g\",\"kind\":\"k\"}");
	assert_int_equal(b.rc, 0);
	assert_string_equal(b.rq.body, "{}");
	sg_upreq_release(&b.rq);

	/* A GET has neither body nor Content-Type. */
	build(&b, "search", "{\"a\":1}");
	assert_int_equal(b.rc, 0);
	assert_null(b.rq.body);
	for (size_t i = 0; i < b.rq.n_headers; i++)
		assert_null(strstr(b.rq.headers[i], "Content-Type"));
	sg_upreq_release(&b.rq);
}

static void
test_forward_headers(void **state)
{
	(void)state;
	const struct sg_upreq_caller_header h[] = {
	    {"x-request-id", "r-1"},
	    {"X-Other", "o"},
	    {"Authorization", "Bearer sgk_caller_secret"},
	    {"Cookie", "s=1"},
	    {"Sandgate-Priority", "critical"},
	    {"User-Agent", "curl/8"},
	};
	struct built b;
	build_h(&b, "search", "{}", h, sizeof(h) / sizeof(h[0]));
	assert_int_equal(b.rc, 0);
	assert_int_equal(b.rq.n_headers, 4);
	assert_string_equal(b.rq.headers[0], "User-Agent: sandgate/1");
	assert_string_equal(b.rq.headers[1], "Accept: application/json");
	assert_string_equal(b.rq.headers[2], "traceparent: " TP);
	assert_string_equal(b.rq.headers[3], "x-request-id: r-1");
	sg_upreq_release(&b.rq);

	/* Authorization never passes, even if a definition managed to list it. */
	char **saved = conn->forward_headers;
	size_t n_saved = conn->n_forward_headers;
	char *listed[] = {"authorization", "cookie", "x-other"};
	conn->forward_headers = listed;
	conn->n_forward_headers = 3;
	build_h(&b, "search", "{}", h, sizeof(h) / sizeof(h[0]));
	conn->forward_headers = saved;
	conn->n_forward_headers = n_saved;
	assert_int_equal(b.rc, 0);
	assert_int_equal(b.rq.n_headers, 4);
	assert_string_equal(b.rq.headers[3], "X-Other: o");
	for (size_t i = 0; i < b.rq.n_headers; i++) {
		assert_null(strcasestr(b.rq.headers[i], "authorization"));
		assert_null(strcasestr(b.rq.headers[i], "sgk_"));
		assert_null(strcasestr(b.rq.headers[i], "cookie"));
	}
	sg_upreq_release(&b.rq);

	/* No traceparent given: none sent. */
	const struct sg_operation *o = sg_connector_op(conn, "search");
	char err[128];
	assert_int_equal(sg_upreq_build(&b.rq, conn, o, &conn->live, "{}", 2, NULL, NULL, 0, err,
	                                sizeof(err), NULL),
	                 0);
	assert_int_equal(b.rq.n_headers, 2);
	sg_upreq_release(&b.rq);
}

static void
test_header_crlf(void **state)
{
	(void)state;
	const struct sg_upreq_caller_header h[] = {{"X-Request-Id", "a\r\nX-Injected: 1"}};
	struct built b;
	build_h(&b, "search", "{}", h, 1);
	assert_int_equal(b.rc, -1);
	assert_string_equal(b.bad, "X-Request-Id");
	assert_string_equal(b.err, "header X-Request-Id cannot be forwarded: its value contains a "
	                           "line break");
	assert_null(b.rq.url);
	assert_int_equal(b.rq.n_headers, 0);
	const struct sg_upreq_caller_header lf[] = {{"X-Request-Id", "a\nb"}};
	build_h(&b, "search", "{}", lf, 1);
	assert_int_equal(b.rc, -1);

	struct sg_upreq rq = {0};
	assert_int_equal(sg_upreq_add_header(&rq, "X-A", "v\r"), -1);
	assert_int_equal(sg_upreq_add_header(&rq, "X-A", "v\nw"), -1);
	assert_int_equal(sg_upreq_add_header(&rq, "X-A\r\nB", "v"), -1);
	assert_int_equal(sg_upreq_add_header(&rq, "X-A: b", "v"), -1);
	assert_int_equal(sg_upreq_add_header(&rq, "", "v"), -1);
	assert_int_equal(rq.n_headers, 0);
	/* Full at N: the N+1st is refused. */
	for (size_t i = 0; i < SG_UPREQ_MAX_HEADERS; i++)
		assert_int_equal(sg_upreq_add_header(&rq, "X-A", "v"), 0);
	assert_int_equal(sg_upreq_add_header(&rq, "X-A", "v"), -1);
	assert_int_equal(rq.n_headers, SG_UPREQ_MAX_HEADERS);
	assert_string_equal(rq.headers[0], "X-A: v");
	sg_upreq_release(&rq);
	assert_int_equal(rq.n_headers, 0);
	sg_upreq_release(&rq); /* twice is harmless */
}

static void
test_not_buildable(void **state)
{
	(void)state;
	struct built b;
	const struct sg_operation *o = sg_connector_op(conn, "search");
	/* The sandbox side is the simulator: there is no URL to build. */
	b.bad = "unset";
	b.rc = sg_upreq_build(&b.rq, conn, o, &conn->sandbox, "{}", 2, TP, NULL, 0, b.err,
	                      sizeof(b.err), &b.bad);
	assert_int_equal(b.rc, -1);
	assert_null(b.bad);
	assert_non_null(strstr(b.err, "no base_url"));
	build(&b, "search", "[1]");
	assert_int_equal(b.rc, -1);
	assert_null(b.bad);
	build(&b, "search", "{\"a\":");
	assert_int_equal(b.rc, -1);
	assert_null(b.bad);
}

static void
test_retry_after(void **state)
{
	(void)state;
	const int64_t date = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
	assert_int_equal(sg_upreq_retry_after("120", 0), 120);
	assert_int_equal(sg_upreq_retry_after(" 5 ", 0), 5);
	assert_int_equal(sg_upreq_retry_after("0", 0), 0);
	assert_int_equal(sg_upreq_retry_after("86399", 0), 86399);
	assert_int_equal(sg_upreq_retry_after("86400", 0), 86400);
	assert_int_equal(sg_upreq_retry_after("86401", 0), 86400);
	assert_int_equal(sg_upreq_retry_after("99999999999999999999999", 0), 86400);
	assert_int_equal(sg_upreq_retry_after("-1", 0), -1);
	assert_int_equal(sg_upreq_retry_after("1.5", 0), -1);
	assert_int_equal(sg_upreq_retry_after("", 0), -1);
	assert_int_equal(sg_upreq_retry_after("   ", 0), -1);
	assert_int_equal(sg_upreq_retry_after(NULL, 0), -1);
	assert_int_equal(sg_upreq_retry_after("soon", 0), -1);
	assert_int_equal(sg_upreq_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", date - 30), 30);
	assert_int_equal(sg_upreq_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", date - 30), 30);
	assert_int_equal(sg_upreq_retry_after("Sun Nov  6 08:49:37 1994", date - 30), 30);
	/* A date already past: come back now. */
	assert_int_equal(sg_upreq_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", date + 100), 0);
	assert_int_equal(sg_upreq_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", date - 900000),
	                 86400);
	assert_int_equal(sg_upreq_retry_after("Sun, 06 Nov 1994 08:49:37 GMTX", date), -1);
	assert_int_equal(sg_upreq_retry_after("Sun, 06 Nov 1994 08:49:37", date), -1);
	assert_int_equal(sg_upreq_retry_after("Sun, 06 Xyz 1994 08:49:37 GMT", date), -1);
}

static void
assert_maps(long status, const char *code, int http)
{
	const struct sg_problem_def *p = sg_upreq_status_problem(status);
	assert_non_null(p);
	if (strcmp(p->code, code) != 0)
		fail_msg("%ld -> %s, want %s", status, p->code, code);
	assert_int_equal(p->status, http);
}

static void
test_status_problem(void **state)
{
	(void)state;
	assert_null(sg_upreq_status_problem(200));
	assert_null(sg_upreq_status_problem(201));
	assert_null(sg_upreq_status_problem(204));
	assert_null(sg_upreq_status_problem(299));
	assert_maps(401, "upstream_auth", 502);
	assert_maps(403, "upstream_auth", 502);
	assert_maps(404, "upstream_not_found", 404);
	assert_maps(400, "upstream_rejected", 422);
	assert_maps(409, "upstream_rejected", 422);
	assert_maps(422, "upstream_rejected", 422);
	assert_maps(499, "upstream_rejected", 422);
	assert_maps(429, "upstream_unavailable", 503);
	assert_maps(503, "upstream_unavailable", 503);
	assert_maps(408, "upstream_timeout", 504);
	assert_maps(504, "upstream_timeout", 504);
	assert_maps(500, "upstream_error", 502);
	assert_maps(502, "upstream_error", 502);
	assert_maps(501, "upstream_error", 502);
	assert_maps(599, "upstream_error", 502);
	assert_maps(301, "redirect_refused", 502);
	assert_maps(308, "redirect_refused", 502);
	assert_maps(100, "upstream_error", 502);
	assert_maps(600, "upstream_error", 502);
	assert_maps(-1, "upstream_error", 502);
	/* The outcomes with no upstream status are defined too. */
	assert_string_equal(sg_problem_def(SG_P_EGRESS_DENIED)->code, "egress_denied");
	assert_int_equal(sg_problem_def(SG_P_EGRESS_DENIED)->status, 403);
	assert_int_equal(sg_problem_def(SG_P_BAD_PARAMETER)->status, 400);
	assert_int_equal(sg_problem_def(SG_P_CREDENTIAL_MISSING)->status, 503);
	assert_non_null(
	    strstr(sg_problem_def(SG_P_CREDENTIAL_MISSING)->remediation, "sandgate secrets set"));
	assert_non_null(
	    strstr(sg_problem_def(SG_P_UPSTREAM_AUTH)->remediation, "sandgate secrets set"));
	assert_int_equal(sg_problem_def(SG_P_UPSTREAM_TOO_LARGE)->status, 502);
	assert_int_equal(sg_problem_def(SG_P_UPSTREAM_CONTRACT)->status, 502);
	assert_int_equal(sg_problem_def(SG_P_LIVE_UNAVAILABLE)->status, 501);
}

static void
test_forward_refusal(void **state)
{
	(void)state;
	assert_non_null(sg_upreq_forward_refusal("authorization"));
	assert_non_null(sg_upreq_forward_refusal("Authorization"));
	assert_non_null(sg_upreq_forward_refusal("proxy-connection"));
	assert_non_null(sg_upreq_forward_refusal("sandgate-anything"));
	assert_null(sg_upreq_forward_refusal("x-request-id"));
	assert_null(sg_upreq_forward_refusal("accept-language"));
	assert_null(sg_upreq_forward_refusal("tee"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_path_encoding),   cmocka_unit_test(test_path_refusals),
	    cmocka_unit_test(test_query),           cmocka_unit_test(test_body),
	    cmocka_unit_test(test_forward_headers), cmocka_unit_test(test_header_crlf),
	    cmocka_unit_test(test_not_buildable),   cmocka_unit_test(test_retry_after),
	    cmocka_unit_test(test_status_problem),  cmocka_unit_test(test_forward_refusal),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
