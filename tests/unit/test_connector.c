/*
 * test_connector: connector definitions and the catalog built from them.
 * The shipped examples must load; broken definitions must say exactly
 * where and what to change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../support/sg_testdiag.h"

#include "catalog/sg_catalog.h"
#include "catalog/sg_connector.h"
#include "dlp/sg_dlp_scan.h"
#include "upstream/sg_egress.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#ifndef SG_SOURCE_ROOT
#define SG_SOURCE_ROOT "."
#endif

#define SEED 42

static bool
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char *buf = malloc(1 << 20);
	assert_non_null(buf);
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static struct sg_connector *
load_example(const char *name, struct sg_diags *d)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/examples/connectors/%s.yaml", SG_SOURCE_ROOT, name);
	char *text = slurp(path);
	struct sg_connector *c = sg_connector_parse(path, text, strlen(text), SEED, d);
	sg_diags_print(d, stderr);
	if (c != NULL)
		assert_string_equal(c->source, text);
	free(text);
	return c;
}

static struct sg_connector *
parse(const char *text, struct sg_diags *d)
{
	return sg_connector_parse("t.yaml", text, strlen(text), SEED, d);
}

/* A small valid connector; tests append to it or change one line. */
#define BASE                                                                                       \
	"kind: connector\n"                             /* 1 */                                    \
	"name: demo\n"                                  /* 2 */                                    \
	"version: 0.1.0\n"                              /* 3 */                                    \
	"description: Demo.\n"                          /* 4 */                                    \
	"environments:\n"                               /* 5 */                                    \
	"  sandbox: { simulator: true }\n"              /* 6 */                                    \
	"  live: { simulator: true }\n"                 /* 7 */                                    \
	"operations:\n"                                 /* 8 */                                    \
	"  ping:\n"                                     /* 9 */                                    \
	"    method: GET\n"                             /* 10 */                                   \
	"    path: /ping\n"                             /* 11 */                                   \
	"    data_domain: public\n"                     /* 12 */                                   \
	"    input: { type: object }\n"                 /* 13 */                                   \
	"    output:\n"                                 /* 14 */                                   \
	"      type: object\n"                          /* 15 */                                   \
	"      required: [ok]\n"                        /* 16 */                                   \
	"      properties: { ok: { type: boolean } }\n" /* 17 */

static void
test_examples_load(void **state)
{
	(void)state;
	struct sg_diags d = {0};
	struct sg_connector *crm = load_example("crm", &d);
	struct sg_connector *mail = load_example("mail", &d);
	struct sg_connector *cal = load_example("calendar", &d);
	assert_int_equal(d.n, 0);
	assert_non_null(crm);
	assert_non_null(mail);
	assert_non_null(cal);

	assert_string_equal(crm->name, "crm");
	assert_string_equal(crm->version, "1.0.0");
	assert_string_equal(crm->auth, "bearer");
	assert_true(crm->sandbox.simulator);
	assert_null(crm->sandbox.base_url);
	assert_false(crm->live.simulator);
	assert_string_equal(crm->live.base_url, "https://crm.example.com/api/v2");
	assert_int_equal(crm->upstream_limit.gcra.emission_ns, 20000000);
	assert_int_equal(crm->upstream_limit.gcra.burst, 100);
	assert_string_equal(crm->upstream_limit.spec, "50/s");
	assert_int_equal(crm->n_ops, 3);
	/* Sorted by name, whatever the file's order. */
	assert_string_equal(crm->ops[0].name, "create_contact");
	assert_string_equal(crm->ops[1].name, "get_contact");
	assert_string_equal(crm->ops[2].name, "list_contacts");

	const struct sg_operation *op = sg_connector_op(crm, "create_contact");
	assert_ptr_equal(op, &crm->ops[0]);
	assert_string_equal(op->method, "POST");
	assert_string_equal(op->path, "/contacts");
	assert_string_equal(op->data_domain, "pii");
	assert_true(op->cost == 0.002);
	assert_int_equal(op->weight, 1);
	assert_false(op->idempotent);
	assert_non_null(op->input);
	assert_non_null(op->output);
	assert_int_equal(json_array_size(op->examples), 1);
	/* GET defaults to idempotent and weight 1. */
	op = sg_connector_op(crm, "get_contact");
	assert_true(op->idempotent);
	assert_int_equal(op->weight, 1);
	assert_int_equal(sg_connector_op(crm, "list_contacts")->weight, 2);
	assert_null(sg_connector_op(crm, "delete_contact"));
	assert_null(sg_connector_op(crm, NULL));

	assert_string_equal(mail->auth, "api_key");
	assert_non_null(sg_connector_op(mail, "send"));
	assert_string_equal(cal->auth, "none");
	assert_true(cal->live.simulator);
	assert_null(cal->live.base_url);
	assert_int_equal(cal->upstream_limit.gcra.emission_ns, 0);
	sg_connector_free(crm);
	sg_connector_free(mail);
	sg_connector_free(cal);
	sg_connector_free(NULL);
}

static void
test_minimal_connector(void **state)
{
	(void)state;
	struct sg_diags d = {0};
	struct sg_connector *c = parse(BASE, &d);
	sg_diags_print(&d, stderr);
	assert_non_null(c);
	assert_string_equal(c->description, "Demo.");
	assert_string_equal(c->auth, "none");
	assert_int_equal(c->ops[0].weight, 1);
	assert_true(c->ops[0].cost == 0);
	assert_string_equal(c->ops[0].description, "");
	assert_null(c->ops[0].examples);
	sg_connector_free(c);
}

/* Replaces "name: demo" in BASE; the result is the connector, or NULL with d. */
static struct sg_connector *
parse_named(const char *name, struct sg_diags *d)
{
	char text[2048];
	const char *at = strstr(BASE, "name: demo\n");
	snprintf(text, sizeof(text), "%.*sname: \"%s\"\n%s", (int)(at - BASE), BASE, name,
	         at + strlen("name: demo\n"));
	return parse(text, d);
}

/* Connector names follow the one naming rule (sg_name.h), at the line of the name. */
static void
test_connector_names(void **state)
{
	(void)state;
	char name[80];
	const char *good[] = {"demo", "3scale", "my-crm_2"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct sg_diags d = {0};
		struct sg_connector *c = parse_named(good[i], &d);
		sg_diags_print(&d, stderr);
		assert_non_null(c);
		sg_connector_free(c);
	}
	const char *bad[] = {"acme.com", "../x", "Demo", "-demo"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sg_diags d = {0};
		assert_null(parse_named(bad[i], &d));
		assert_int_equal(d.n, 1);
		assert_memory_equal(diag_at(&d, 0), "t.yaml:2:7: name \"", 18);
		assert_non_null(strstr(diag_at(&d, 0), "; use 1 to 63 lowercase letters"));
		sg_diags_free(&d);
	}
	for (size_t n = 62; n <= 64; n++) { /* N-1, N, N+1 */
		struct sg_diags d = {0};
		memset(name, 'c', n);
		name[n] = '\0';
		struct sg_connector *c = parse_named(name, &d);
		assert_int_equal(c != NULL, n <= 63);
		if (c == NULL)
			assert_non_null(strstr(diag_at(&d, 0), "it is 64 characters long"));
		sg_connector_free(c);
		sg_diags_free(&d);
	}
}

static void
test_broken_reports_every_error(void **state)
{
	(void)state;
	static const char text[] =
	    "kind: connector\n"
	    "name: Demo\n"
	    "version: 1.0\n"
	    "description: Demo.\n"
	    "environments:\n"
	    "  sandbox: { simulator: true, base_url: \"https://x.example\" }\n"
	    "  live: { base_url: \"ftp://x.example\" }\n"
	    "opertions: {}\n"
	    "operations:\n"
	    "  ping:\n"
	    "    method: post\n"
	    "    path: ping\n"
	    "    data_domain: public\n"
	    "    weight: 0\n"
	    "    cost: free\n"
	    "    input: { type: object }\n"
	    "    output: { type: object }\n";
	struct sg_diags d = {0};
	assert_null(parse(text, &d));
	assert_int_equal(d.n, 9);
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:2:7: name \"Demo\": uppercase 'D' at position 1 is not "
	                    "allowed; use 1 to 63 lowercase letters, digits, '-' or '_', "
	                    "starting with a letter or digit");
	assert_string_equal(diag_at(&d, 1), "t.yaml:3:10: version: expected MAJOR.MINOR.PATCH "
	                                    "such as 1.0.0, got \"1.0\"");
	assert_string_equal(diag_at(&d, 2), "t.yaml:6:14: environments.sandbox: set exactly one "
	                                    "of simulator: true or base_url");
	assert_string_equal(diag_at(&d, 3), "t.yaml:7:21: environments.live.base_url: expected "
	                                    "an http:// or https:// URL");
	assert_string_equal(diag_at(&d, 4),
	                    "t.yaml:8:1: unknown key \"opertions\" (did you mean \"operations\"?)");
	assert_string_equal(diag_at(&d, 5), "t.yaml:11:13: operation \"ping\": method: expected "
	                                    "GET, POST, PUT, PATCH or DELETE, got \"post\"");
	assert_string_equal(diag_at(&d, 6),
	                    "t.yaml:12:11: operation \"ping\": path: expected a "
	                    "path starting with '/', without spaces, '?' or '#', got \"ping\"");
	assert_string_equal(diag_at(&d, 7), "t.yaml:14:13: operation \"ping\": weight: expected "
	                                    "an integer from 1 to 1000, got \"0\"");
	assert_string_equal(diag_at(&d, 8), "t.yaml:15:11: operation \"ping\": cost: expected a "
	                                    "number, got \"free\"");
	sg_diags_free(&d);
}

static void
test_missing_keys(void **state)
{
	(void)state;
	struct sg_diags d = {0};
	assert_null(parse("kind: connector\nname: x\n", &d));
	assert_int_equal(d.n, 4);
	assert_string_equal(diag_at(&d, 0), "t.yaml:1:1: missing key \"version\": add version: "
	                                    "1.0.0");
	assert_string_equal(diag_at(&d, 1), "t.yaml:1:1: missing key \"description\": add "
	                                    "description: one line on what it is for");
	assert_string_equal(
	    diag_at(&d, 2),
	    "t.yaml:1:1: missing key \"environments\": add "
	    "sandbox: { simulator: true } and live: { base_url: \"https://...\" } under it");
	assert_string_equal(diag_at(&d, 3), "t.yaml:1:1: missing key \"operations\": a connector "
	                                    "needs at least one operation");
	sg_diags_free(&d);

	assert_null(parse("", &d));
	assert_string_equal(diag_at(&d, 0), "t.yaml:0:0: connector: expected a mapping, got "
	                                    "nothing");
	sg_diags_free(&d);
}

static void
test_schema_error_points_at_node(void **state)
{
	(void)state;
	static const char text[] = BASE "  create_contact:\n"                              /* 18 */
	                                "    method: POST\n"                               /* 19 */
	                                "    path: /contacts\n"                            /* 20 */
	                                "    data_domain: pii\n"                           /* 21 */
	                                "    input:\n"                                     /* 22 */
	                                "      type: object\n"                             /* 23 */
	                                "      properties:\n"                              /* 24 */
	                                "        email: { type: string, minLength: -1 }\n" /* 25 */
	                                "    output: { type: objekt }\n";                  /* 26 */
	struct sg_diags d = {0};
	assert_null(parse(text, &d));
	assert_int_equal(d.n, 2);
	assert_true(starts_with(diag_at(&d, 0), "t.yaml:25:43: operation \"create_contact\": "
	                                        "input schema /properties/email/minLength: "));
	assert_true(starts_with(diag_at(&d, 1), "t.yaml:26:21: operation \"create_contact\": "
	                                        "output schema /type: "));
	assert_non_null(strstr(d.v[1].msg, "objekt"));
	sg_diags_free(&d);
}

static void
test_input_must_be_object(void **state)
{
	(void)state;
	static const char text[] = BASE "  get:\n"                        /* 18 */
	                                "    method: GET\n"               /* 19 */
	                                "    path: /things/{id}\n"        /* 20 */
	                                "    data_domain: public\n"       /* 21 */
	                                "    input: { type: array }\n"    /* 22 */
	                                "    output: { type: object }\n"; /* 23 */
	struct sg_diags d = {0};
	assert_null(parse(text, &d));
	assert_int_equal(d.n, 2);
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:20:11: operation \"get\": path parameter "
	                    "{id} must be an input property listed in input.required");
	assert_string_equal(diag_at(&d, 1), "t.yaml:22:20: operation \"get\": input schema must "
	                                    "have type: object (a call's input is a JSON object)");
	sg_diags_free(&d);
}

static void
test_bad_example(void **state)
{
	(void)state;
	static const char text[] =
	    BASE "  get:\n"                                                             /* 18 */
	         "    method: GET\n"                                                    /* 19 */
	         "    path: /things/{id}\n"                                             /* 20 */
	         "    data_domain: public\n"                                            /* 21 */
	         "    input:\n"                                                         /* 22 */
	         "      type: object\n"                                                 /* 23 */
	         "      required: [id]\n"                                               /* 24 */
	         "      properties: { id: { type: string } }\n"                         /* 25 */
	         "    output:\n"                                                        /* 26 */
	         "      type: object\n"                                                 /* 27 */
	         "      required: [id]\n"                                               /* 28 */
	         "      properties: { id: { type: string, pattern: '^th_[a-z]+$' } }\n" /* 29 */
	         "    examples:\n"                                                      /* 30 */
	         "      - { id: th_good }\n"                                            /* 31 */
	         "      - { id: \"TH-bad\" }\n"                                         /* 32 */
	         "      - { id: th_fine }\n";                                           /* 33 */
	struct sg_diags d = {0};
	assert_null(parse(text, &d));
	assert_int_equal(d.n, 1);
	assert_true(starts_with(diag_at(&d, 0), "t.yaml:32:15: operation \"get\": example 1 does "
	                                        "not match the output schema: /id: "));
	sg_diags_free(&d);
}

static void
test_unsatisfiable_pattern(void **state)
{
	(void)state;
	static const char text[] =
	    BASE "  get:\n"                                                                /* 18 */
	         "    method: GET\n"                                                       /* 19 */
	         "    path: /things\n"                                                     /* 20 */
	         "    data_domain: public\n"                                               /* 21 */
	         "    input: { type: object }\n"                                           /* 22 */
	         "    output:\n"                                                           /* 23 */
	         "      type: object\n"                                                    /* 24 */
	         "      required: [id]\n"                                                  /* 25 */
	         "      properties: { id: { type: string, pattern: '^th_[a-z]{8}$' } }\n"; /* 26 */
	struct sg_diags d = {0};
	assert_null(parse(text, &d));
	assert_int_equal(d.n, 1);
	assert_string_equal(
	    diag_at(&d, 0),
	    "t.yaml:24:7: operation \"get\": the simulator cannot "
	    "produce output for this schema (a pattern needs an example): add an example under "
	    "examples:");
	sg_diags_free(&d);

	/* The same schema with an example loads. */
	char *fixed = NULL;
	assert_true(asprintf(&fixed, "%s    examples: [{ id: th_abcdefgh }]\n", text) > 0);
	struct sg_connector *c = parse(fixed, &d);
	sg_diags_print(&d, stderr);
	assert_non_null(c);
	sg_connector_free(c);
	free(fixed);
}

static void
test_duplicate_key(void **state)
{
	(void)state;
	static const char text[] = BASE "  ping:\n"
	                                "    method: GET\n";
	struct sg_diags d = {0};
	assert_null(parse(text, &d));
	assert_int_equal(d.n, 1);
	assert_string_equal(diag_at(&d, 0), "t.yaml:18:3: duplicate key \"ping\": each key may "
	                                    "appear only once in a mapping");
	sg_diags_free(&d);
}

static void
test_aliases_refused(void **state)
{
	(void)state;
	/* A "billion laughs" document: refused, never expanded. */
	static const char text[] = BASE "  big:\n"
	                                "    method: GET\n"
	                                "    path: /big\n"
	                                "    data_domain: public\n"
	                                "    input: &a { type: object }\n"
	                                "    output: *a\n";
	struct sg_diags d = {0};
	assert_null(parse(text, &d));
	assert_int_equal(d.n, 2);
	assert_string_equal(diag_at(&d, 0), "t.yaml:22:17: YAML anchors (&name) are not allowed: "
	                                    "remove the anchor");
	assert_string_equal(diag_at(&d, 1), "t.yaml:23:13: YAML aliases (*name) are not allowed: "
	                                    "write the value out");
	sg_diags_free(&d);
}

/* Replaces the first occurrence of `from` in BASE with `to`. */
static struct sg_connector *
parse_with(const char *from, const char *to, struct sg_diags *d)
{
	char text[4096];
	const char *base = BASE;
	const char *at = strstr(base, from);
	assert_non_null(at);
	snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
	return parse(text, d);
}

static void
test_simulator_latency(void **state)
{
	(void)state;
	struct sg_diags d = {0};
	struct sg_connector *c = parse_with("sandbox: { simulator: true }",
	                                    "sandbox: { simulator: true, latency: 40ms }", &d);
	assert_non_null(c);
	assert_int_equal(c->sandbox.latency_ms, 40);
	assert_int_equal(c->live.latency_ms, 0);
	sg_connector_free(c);
	assert_null(parse_with("sandbox: { simulator: true }",
	                       "sandbox: { simulator: true, latency: 61s }", &d));
	assert_string_equal(diag_at(&d, 0), "t.yaml:6:40: environments.sandbox.latency: expected a "
	                                    "duration from 0ms to 60s such as 40ms, got \"61s\"");
	sg_diags_free(&d);
	memset(&d, 0, sizeof(d));
	assert_null(parse_with("live: { simulator: true }",
	                       "live: { base_url: \"https://x.test\", latency: 5ms }", &d));
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:7:48: environments.live.latency: only the "
	                    "simulator takes a latency; a real upstream has its own");
	sg_diags_free(&d);
}

static void
test_reported_weight(void **state)
{
	(void)state;
	struct sg_diags d = {0};
	struct sg_connector *c =
	    parse_with("    path: /ping\n", "    path: /ping\n    reported_weight: /ok\n", &d);
	assert_non_null(c);
	assert_string_equal(c->ops[0].reported_weight, "/ok");
	sg_connector_free(c);
	assert_null(
	    parse_with("    path: /ping\n", "    path: /ping\n    reported_weight: ok\n", &d));
	assert_string_equal(diag_at(&d, 0), "t.yaml:12:22: operation \"ping\": reported_weight: "
	                                    "expected a JSON Pointer into the output such as "
	                                    "/usage/units, got \"ok\"");
	sg_diags_free(&d);
}

static void
test_upstream_concurrency(void **state)
{
	(void)state;
	struct sg_diags d = {0};
	struct sg_connector *c = parse(BASE "upstream_concurrency: { initial: 8, max: 64 }\n", &d);
	assert_non_null(c);
	assert_int_equal(c->upstream_concurrency.initial, 8);
	assert_int_equal(c->upstream_concurrency.min, 1);
	assert_int_equal(c->upstream_concurrency.max, 64);
	assert_non_null(c->adaptive);
	sg_connector_free(c);
	assert_null(parse(BASE "upstream_concurrency: { initial: 80, max: 64 }\n", &d));
	assert_string_equal(diag_at(&d, 0), "t.yaml:18:25: upstream_concurrency: give initial and "
	                                    "max (and optionally min), with min <= initial <= max, "
	                                    "such as { initial: 20, min: 2, max: 200 }");
	sg_diags_free(&d);
}

static void
test_upstream_limit(void **state)
{
	(void)state;
	struct sg_diags d = {0};
	struct sg_connector *c = parse(BASE "upstream_limit: { rate: 600/m }\n", &d);
	assert_non_null(c);
	assert_int_equal(c->upstream_limit.gcra.emission_ns, 100000000); /* 10/s */
	assert_int_equal(c->upstream_limit.gcra.burst, 600); /* default: ceil(rate per period) */
	sg_connector_free(c);
	assert_null(parse(BASE "upstream_limit: { rate: 5/w, burts: 2 }\n", &d));
	assert_int_equal(d.n, 2);
	assert_true(starts_with(diag_at(&d, 0), "t.yaml:18:25: upstream_limit.rate: expected "
	                                        "calls per period such as 50/s"));
	assert_string_equal(diag_at(&d, 1), "t.yaml:18:30: unknown key \"burts\" (did you mean "
	                                    "\"burst\"?)");
	sg_diags_free(&d);
}

static void
test_egress_allow(void **state)
{
	(void)state;
	struct sg_diags d = {0};
	struct sg_connector *c =
	    parse(BASE "egress: { allow: [\"127.0.0.1/32\", mock.test] }\n", &d);
	assert_non_null(c);
	assert_non_null(c->egress_allow);
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(80)};
	struct sg_egress_verdict v;
	inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
	sg_egress_judge(c->egress_allow, NULL, "127.0.0.1", (struct sockaddr *)&in, sizeof(in), &v);
	assert_true(v.allowed);
	inet_pton(AF_INET, "127.0.0.2", &in.sin_addr);
	sg_egress_judge(c->egress_allow, NULL, "x.test", (struct sockaddr *)&in, sizeof(in), &v);
	assert_false(v.allowed);
	sg_connector_free(c);
	c = parse(BASE, &d);
	assert_non_null(c);
	assert_null(c->egress_allow);
	sg_connector_free(c);

	assert_null(parse(BASE "egress:\n  allow:\n    - 10.0.0.0/8\n    - \"127.1\"\n"
	                       "    - \"*.x.*\"\n",
	                  &d));
	assert_int_equal(d.n, 2);
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:21:7: egress.allow: egress entry \"127.1\": is "
	                    "an IPv4 address in a shorthand or numeric spelling; "
	                    "write it as four decimal numbers such as 127.0.0.1/32");
	assert_true(starts_with(diag_at(&d, 1), "t.yaml:22:7: egress.allow: egress entry "
	                                        "\"*.x.*\": expected a host name"));
	sg_diags_free(&d);
	assert_null(parse(BASE "egress: { alow: [] }\n", &d));
	assert_string_equal(diag_at(&d, 0), "t.yaml:18:11: unknown key \"alow\" (did you mean "
	                                    "\"allow\"?)");
	sg_diags_free(&d);
	assert_null(parse(BASE "egress: {}\n", &d));
	assert_string_equal(diag_at(&d, 0), "t.yaml:18:1: egress: missing allow; add allow: "
	                                    "[\"127.0.0.1/32\"] or allow: [\"api.example.com\"]");
	sg_diags_free(&d);
	assert_null(parse(BASE "egress: { allow: 10.0.0.0/8 }\n", &d));
	assert_string_equal(diag_at(&d, 0), "t.yaml:18:18: egress.allow: expected a list of at "
	                                    "most 256 host names and CIDRs");
	sg_diags_free(&d);
}

static struct sg_connector *
named(const char *name, struct sg_diags *d)
{
	char *text = NULL;
	assert_true(asprintf(&text, "%s", BASE) > 0);
	char *p = strstr(text, "name: demo");
	char *out = NULL;
	*p = '\0';
	assert_true(asprintf(&out, "%sname: %s%s", text, name, p + strlen("name: demo")) > 0);
	struct sg_connector *c = parse(out, d);
	free(text);
	free(out);
	assert_non_null(c);
	return c;
}

static void
test_catalog(void **state)
{
	(void)state;
	struct sg_diags d = {0};
	struct sg_connector *v[3] = {named("zeta", &d), named("alpha", &d), named("mid", &d)};
	struct sg_catalog *cat = sg_catalog_new(v, 3);
	assert_non_null(cat);
	assert_int_equal(cat->n, 3);
	assert_int_equal(cat->n_ops, 3);
	assert_string_equal(cat->v[0]->name, "alpha");
	assert_string_equal(cat->v[2]->name, "zeta");
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(cat->v[i]->index, i);
		assert_int_equal(cat->v[i]->ops[0].index, i);
	}
	assert_ptr_equal(sg_catalog_find(cat, "mid"), v[2]);
	assert_null(sg_catalog_find(cat, "mi"));
	assert_null(sg_catalog_find(cat, NULL));
	sg_catalog_free(cat);
	sg_catalog_free(NULL);

	/* A shared name fails, and the caller still owns (and frees) the connectors. */
	struct sg_connector *w[2] = {named("same", &d), named("same", &d)};
	assert_null(sg_catalog_new(w, 2));
	sg_connector_free(w[0]);
	sg_connector_free(w[1]);

	cat = sg_catalog_new(NULL, 0);
	assert_non_null(cat);
	assert_int_equal(cat->n_ops, 0);
	assert_null(sg_catalog_find(cat, "x"));
	sg_catalog_free(cat);
	assert_int_equal(d.n, 0);
}

/* Parses BASE with its live line replaced; expects exactly one error, returned as text. */
static const char *
live_error(const char *live, struct sg_diags *d)
{
	sg_diags_free(d);
	memset(d, 0, sizeof(*d));
	assert_null(parse_with("  live: { simulator: true }\n", live, d));
	assert_int_equal(d->n, 1);
	return diag_at(d, 0);
}

static void
test_upstream_environment(void **state)
{
	(void)state;
	struct sg_diags d = {0};
	struct sg_connector *c =
	    parse_with("  live: { simulator: true }\n",
	               "  live: { base_url: \"https://api.example.test/v2/\", ca_bundle: "
	               "/etc/sandgate/ca.pem, connect_timeout: 500ms, timeout: 3s, resolve: "
	               "[\"api.example.test:443:127.0.0.1\", \"api.example.test:443:[::1]\"] }\n",
	               &d);
	sg_diags_print(&d, stderr);
	assert_non_null(c);
	assert_string_equal(c->live.base_url, "https://api.example.test/v2"); /* one '/' less */
	assert_string_equal(c->live.ca_bundle, "/etc/sandgate/ca.pem");
	assert_int_equal(c->live.connect_timeout_ms, 500);
	assert_int_equal(c->live.timeout_ms, 3000);
	assert_int_equal(c->live.n_resolve, 2);
	assert_string_equal(c->live.resolve[1], "api.example.test:443:[::1]");
	/* Defaults, and nothing for the simulator side. */
	assert_int_equal(c->sandbox.connect_timeout_ms, 2000);
	assert_int_equal(c->sandbox.timeout_ms, 10000);
	assert_null(c->sandbox.ca_bundle);
	assert_int_equal(c->sandbox.n_resolve, 0);
	sg_connector_free(c);

	c = parse_with("  live: { simulator: true }\n", "  live: { base_url: \"http://x.test\" }\n",
	               &d);
	assert_non_null(c);
	assert_string_equal(c->live.base_url, "http://x.test");
	assert_int_equal(c->live.connect_timeout_ms, 2000);
	assert_int_equal(c->live.timeout_ms, 10000);
	sg_connector_free(c);
	/* A bare host with its slash keeps working. */
	c = parse_with("  live: { simulator: true }\n",
	               "  live: { base_url: \"http://x.test/\" }\n", &d);
	assert_non_null(c);
	assert_string_equal(c->live.base_url, "http://x.test");
	sg_connector_free(c);
	assert_int_equal(d.n, 0);
}

static void
test_upstream_environment_errors(void **state)
{
	(void)state;
	struct sg_diags d = {0};
	assert_string_equal(live_error("  live: { base_url: \"https://u:p@x.test/v1\" }\n", &d),
	                    "t.yaml:7:21: environments.live.base_url: remove the user name and "
	                    "password (user:pass@): the connector's credential is stored with "
	                    "`sandgate secrets set CONNECTOR` and sent as auth: says");
	assert_string_equal(live_error("  live: { base_url: \"https://x.test/v1?k=1\" }\n", &d),
	                    "t.yaml:7:21: environments.live.base_url: remove the query ('?...'): "
	                    "a call's input becomes the query string; a fixed value belongs in "
	                    "the path");
	assert_string_equal(live_error("  live: { base_url: \"https://x.test/v1#top\" }\n", &d),
	                    "t.yaml:7:21: environments.live.base_url: remove the fragment "
	                    "('#...'): it is never sent to a server");
	assert_non_null(strstr(live_error("  live: { base_url: \"https:///v1\" }\n", &d),
	                       "base_url: expected a host after the scheme"));
	assert_string_equal(live_error("  live: { base_url: \"https://x.test\", ca_bundle: ca.pem "
	                               "}\n",
	                               &d),
	                    "t.yaml:7:50: environments.live.ca_bundle: expected an absolute path "
	                    "to a PEM file, such as /etc/sandgate/ca/crm.pem, got \"ca.pem\"");
	/* Limits at N-1, N, N+1: connect_timeout up to 60s, timeout up to 300s, both from 1ms. */
	assert_string_equal(live_error("  live: { base_url: \"https://x.test\", connect_timeout: "
	                               "60001ms, timeout: 90s }\n",
	                               &d),
	                    "t.yaml:7:56: environments.live.connect_timeout: expected a duration "
	                    "from 1ms to 60s such as 2s, got \"60001ms\"");
	assert_string_equal(
	    live_error("  live: { base_url: \"https://x.test\", timeout: 0ms }\n", &d),
	    "t.yaml:7:48: environments.live.timeout: expected a duration from 1ms "
	    "to 300s such as 10s, got \"0ms\"");
	assert_non_null(
	    strstr(live_error("  live: { base_url: \"https://x.test\", timeout: 300001ms }\n", &d),
	           "got \"300001ms\""));
	struct sg_connector *c =
	    parse_with("  live: { simulator: true }\n",
	               "  live: { base_url: \"https://x.test\", connect_timeout: 60s, timeout: "
	               "300s }\n",
	               &d);
	assert_non_null(c);
	assert_int_equal(c->live.timeout_ms, 300000);
	sg_connector_free(c);
	assert_string_equal(live_error("  live: { base_url: \"https://x.test\", connect_timeout: "
	                               "3s, timeout: 2s }\n",
	                               &d),
	                    "t.yaml:7:69: environments.live.timeout (2000 ms) is shorter than "
	                    "connect_timeout (3000 ms): the whole exchange includes the connect; "
	                    "raise timeout or lower connect_timeout");
	const char *bad_pins[] = {
	    "x.test:443:localhost", "x.test:0:127.0.0.1", "x.test:65536:127.0.0.1",
	    "x.test:443:::1",       "x.test:443",         ":443:127.0.0.1",
	    "x.test:443:[1.2.3.4]"};
	for (size_t i = 0; i < sizeof(bad_pins) / sizeof(bad_pins[0]); i++) {
		char live[200];
		snprintf(live, sizeof(live),
		         "  live: { base_url: \"https://x.test\", resolve: [\"%s\"] }\n",
		         bad_pins[i]);
		assert_non_null(strstr(live_error(live, &d),
		                       "environments.live.resolve: expected HOST:PORT:ADDRESS with "
		                       "an IP address"));
	}
	assert_string_equal(live_error("  live: { simulator: true, timeout: 1s }\n", &d),
	                    "t.yaml:7:37: environments.live.timeout: only a real upstream "
	                    "(base_url) takes timeout; the simulator makes no connection: remove "
	                    "it");
	assert_string_equal(live_error("  live: { simulator: true, ca_bundle: /x.pem }\n", &d),
	                    "t.yaml:7:39: environments.live.ca_bundle: only a real upstream "
	                    "(base_url) takes ca_bundle; the simulator makes no connection: "
	                    "remove it");
	sg_diags_free(&d);
}

/* Parses BASE plus `extra` at the top level (line 18 on). */
static struct sg_connector *
parse_plus(const char *extra, struct sg_diags *d)
{
	char text[4096];
	sg_diags_free(d);
	memset(d, 0, sizeof(*d));
	snprintf(text, sizeof(text), "%s%s", BASE, extra);
	return parse(text, d);
}

static const char *
plus_error(const char *extra, struct sg_diags *d)
{
	assert_null(parse_plus(extra, d));
	assert_int_equal(d->n, 1);
	return diag_at(d, 0);
}

static void
test_upstream_top_level(void **state)
{
	(void)state;
	struct sg_diags d = {0};
	struct sg_connector *c = parse_plus("", &d);
	assert_non_null(c);
	assert_false(c->simulator_only);
	assert_int_equal(c->max_redirects, 0);
	assert_int_equal(c->max_response, 8 << 20);
	assert_int_equal(c->n_forward_headers, 0);
	assert_null(c->egress_allow);
	sg_connector_free(c);

	c = parse_plus("simulator_only: true\nredirects: 3\nmax_response: 1KiB\n"
	               "forward_headers: [X-Request-Id, Accept-Language]\n",
	               &d);
	sg_diags_print(&d, stderr);
	assert_non_null(c);
	assert_true(c->simulator_only);
	assert_int_equal(c->max_redirects, 3);
	assert_int_equal(c->max_response, 1024);
	assert_int_equal(c->n_forward_headers, 2);
	assert_string_equal(c->forward_headers[0], "x-request-id");
	assert_string_equal(c->forward_headers[1], "accept-language");
	sg_connector_free(c);
	c = parse_plus("max_response: 64MiB\n", &d);
	assert_non_null(c);
	assert_int_equal(c->max_response, 64 << 20);
	sg_connector_free(c);
	c = parse_plus("max_response: 2048B\n", &d);
	assert_non_null(c);
	assert_int_equal(c->max_response, 2048);
	sg_connector_free(c);

	assert_string_equal(plus_error("redirects: 4\n", &d),
	                    "t.yaml:18:12: redirects: expected an integer from 0 to 3, got \"4\"");
	assert_string_equal(plus_error("max_response: 1023B\n", &d),
	                    "t.yaml:18:15: max_response: expected a size from 1KiB to 64MiB such "
	                    "as 8MiB or 512KiB, got \"1023B\"");
	assert_non_null(strstr(plus_error("max_response: 65MiB\n", &d), "got \"65MiB\""));
	assert_non_null(strstr(plus_error("max_response: 8MB\n", &d), "got \"8MB\""));
	sg_diags_free(&d);
}

static void
test_simulator_only(void **state)
{
	(void)state;
	struct sg_diags d = {0};
	assert_null(parse_with("  live: { simulator: true }\n",
	                       "  live: { base_url: \"https://x.test\" }\nsimulator_only: true\n",
	                       &d));
	assert_int_equal(d.n, 1);
	assert_string_equal(diag_at(&d, 0),
	                    "t.yaml:7:21: environments.live: simulator_only is true, so this "
	                    "environment must be served by the simulator: write live: { "
	                    "simulator: true }, or remove simulator_only");
	sg_diags_free(&d);
}

static void
test_forward_headers_refused(void **state)
{
	(void)state;
	struct sg_diags d = {0};
	static const struct {
		const char *name, *why;
	} cases[] = {
	    {"Authorization", "it carries the caller's own credentials"},
	    {"cookie", "it carries the caller's own credentials"},
	    {"Host", "the gateway sets it for the upstream"},
	    {"Content-Length", "the gateway frames the upstream request itself"},
	    {"Transfer-Encoding", "the gateway frames the upstream request itself"},
	    {"Connection", "it is a hop-by-hop header"},
	    {"TE", "it is a hop-by-hop header"},
	    {"Upgrade", "it is a hop-by-hop header"},
	    {"Proxy-Authorization", "it carries the caller's own credentials"},
	    {"Proxy-Foo", "it is a hop-by-hop header"},
	    {"Sandgate-Priority", "it is the gateway's own header"},
	    {"traceparent", "the gateway sets it itself"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char extra[128], want[256];
		snprintf(extra, sizeof(extra), "forward_headers: [%s]\n", cases[i].name);
		snprintf(want, sizeof(want),
		         "t.yaml:18:19: forward_headers: \"%s\" cannot be forwarded: %s; remove it "
		         "from the list",
		         cases[i].name, cases[i].why);
		assert_string_equal(plus_error(extra, &d), want);
	}
	assert_string_equal(plus_error("forward_headers: [X-A, x-a]\n", &d),
	                    "t.yaml:18:24: forward_headers: \"x-a\" cannot be forwarded: it is "
	                    "listed twice; remove it from the list");
	assert_string_equal(plus_error("forward_headers: [\"X A\"]\n", &d),
	                    "t.yaml:18:19: forward_headers: expected a header name such as "
	                    "X-Request-Id, got \"X A\"");
	assert_non_null(strstr(plus_error("forward_headers: X-A\n", &d),
	                       "forward_headers: expected a list of up to 16 header names"));
	/* The api_key's own header is the connector's credential. */
	assert_string_equal(plus_error("auth: api_key\nforward_headers: [x-api-key]\n", &d),
	                    "t.yaml:19:19: forward_headers: \"x-api-key\" cannot be forwarded: "
	                    "the connector's own credential goes in it (auth.name); remove it "
	                    "from the list");
	sg_diags_free(&d);
}

static void
test_auth_forms(void **state)
{
	(void)state;
	struct sg_diags d = {0};
	struct sg_connector *c = parse_plus("auth: api_key\n", &d);
	assert_non_null(c);
	assert_string_equal(c->auth, "api_key");
	assert_int_equal(c->auth_def.scheme, SG_AUTH_API_KEY);
	assert_false(c->auth_def.in_query);
	assert_string_equal(c->auth_def.name, "X-API-Key");
	sg_connector_free(c);
	c = parse_plus("auth: bearer\n", &d);
	assert_non_null(c);
	assert_int_equal(c->auth_def.scheme, SG_AUTH_BEARER);
	assert_null(c->auth_def.name);
	sg_connector_free(c);
	c = parse_plus("", &d);
	assert_non_null(c);
	assert_string_equal(c->auth, "none");
	assert_int_equal(c->auth_def.scheme, SG_AUTH_NONE);
	sg_connector_free(c);
	c = parse_plus("auth: { scheme: api_key, in: query, name: apikey }\n", &d);
	assert_non_null(c);
	assert_string_equal(c->auth, "api_key");
	assert_true(c->auth_def.in_query);
	assert_string_equal(c->auth_def.name, "apikey");
	sg_connector_free(c);
	c = parse_plus("auth: { scheme: api_key, in: header, name: X-Api-Token }\n", &d);
	assert_non_null(c);
	assert_string_equal(c->auth_def.name, "X-Api-Token");
	sg_connector_free(c);
	c = parse_plus("auth: { scheme: oauth2, token_url: \"https://id.example.test/token\", "
	               "scope: \"read write\" }\n",
	               &d);
	assert_non_null(c);
	assert_string_equal(c->auth, "oauth2");
	assert_int_equal(c->auth_def.scheme, SG_AUTH_OAUTH2);
	assert_string_equal(c->auth_def.token_url, "https://id.example.test/token");
	assert_string_equal(c->auth_def.scope, "read write");
	sg_connector_free(c);
	c = parse_plus("auth: { scheme: basic }\n", &d);
	assert_non_null(c);
	assert_int_equal(c->auth_def.scheme, SG_AUTH_BASIC);
	sg_connector_free(c);
	sg_diags_free(&d);
}

static void
test_auth_errors(void **state)
{
	(void)state;
	struct sg_diags d = {0};
	assert_string_equal(plus_error("auth: digest\n", &d),
	                    "t.yaml:18:7: auth: expected none, bearer, api_key, basic or oauth2, "
	                    "got \"digest\"");
	assert_string_equal(plus_error("auth: oauth2\n", &d),
	                    "t.yaml:18:7: auth: oauth2 needs the token endpoint: write auth: { "
	                    "scheme: oauth2, token_url: \"https://...\" }");
	assert_string_equal(plus_error("auth: { scheme: oauth2 }\n", &d),
	                    "t.yaml:18:9: auth: scheme oauth2 needs the token endpoint: add "
	                    "token_url: \"https://...\"");
	assert_non_null(strstr(plus_error("auth: { scheme: oauth2, token_url: \"ftp://x\" }\n", &d),
	                       "auth.token_url: expected an http:// or https:// URL"));
	/* The client secret never crosses a network in clear: http only to this machine. */
	assert_non_null(strstr(
	    plus_error("auth: { scheme: oauth2, token_url: \"http://id.example.test/t\" }\n", &d),
	    "auth.token_url: the client secret is sent there, so it must be https://"));
	assert_non_null(strstr(
	    plus_error("auth: { scheme: oauth2, token_url: \"http://127.0.0.1.evil.test/t\" }\n",
	               &d),
	    "must be https://"));
	assert_string_equal(plus_error("auth: { scheme: api_key, naem: X }\n", &d),
	                    "t.yaml:18:26: unknown key \"naem\" (did you mean \"name\"?)");
	assert_string_equal(plus_error("auth: { name: X }\n", &d),
	                    "t.yaml:18:9: auth: missing key \"scheme\": add scheme: none, bearer, "
	                    "api_key, basic or oauth2");
	assert_string_equal(plus_error("auth: { scheme: bearer, name: X }\n", &d),
	                    "t.yaml:18:31: auth.name: applies only to scheme: api_key; remove it");
	assert_string_equal(plus_error("auth: { scheme: api_key, token_url: \"https://x\" }\n", &d),
	                    "t.yaml:18:37: auth.token_url: applies only to scheme: oauth2; remove "
	                    "it");
	assert_string_equal(plus_error("auth: { scheme: api_key, in: body }\n", &d),
	                    "t.yaml:18:30: auth.in: expected header or query, got \"body\"");
	assert_string_equal(plus_error("auth: { scheme: api_key, in: query }\n", &d),
	                    "t.yaml:18:9: auth: in: query needs the parameter's name: add name: "
	                    "api_key (or what the upstream expects)");
	assert_non_null(strstr(plus_error("auth: { scheme: api_key, name: \"X:Y\" }\n", &d),
	                       "auth.name: expected a header name such as X-API-Key"));
	sg_diags_free(&d);
}

static void
test_failover(void **state)
{
	(void)state;
	struct sg_diags d = {0};
	struct sg_connector *c =
	    parse_with("    path: /ping\n", "    path: /ping\n    failover: backup-crm\n", &d);
	assert_non_null(c);
	assert_string_equal(c->ops[0].failover, "backup-crm");
	sg_connector_free(c);
	c = parse(BASE, &d);
	assert_null(c->ops[0].failover);
	sg_connector_free(c);
	assert_null(parse_with("    path: /ping\n", "    path: /ping\n    failover: Backup\n", &d));
	assert_int_equal(d.n, 1);
	assert_true(starts_with(diag_at(&d, 0), "t.yaml:12:15: operation \"ping\": failover: "
	                                        "\"Backup\" is not a connector name: "));
	sg_diags_free(&d);
	memset(&d, 0, sizeof(d));
	assert_null(parse_with("    path: /ping\n", "    path: /ping\n    failover: demo\n", &d));
	assert_string_equal(diag_at(&d, 0), "t.yaml:12:15: operation \"ping\": failover: a "
	                                    "connector cannot fail over to itself; name another "
	                                    "connector that serves this operation with the same "
	                                    "schemas");
	sg_diags_free(&d);
}

/* x-data-class written in a connector's YAML survives the conversion to a JSON schema. */
static void
test_data_class_from_yaml(void **state)
{
	(void)state;
	static const char text[] =
	    BASE "  create_contact:\n"
	         "    method: POST\n"
	         "    path: /contacts\n"
	         "    data_domain: pii\n"
	         "    input:\n"
	         "      type: object\n"
	         "      properties:\n"
	         "        email: { type: string, x-data-class: pii.email }\n"
	         "        phones:\n"
	         "          type: array\n"
	         "          items: { type: string, x-data-class: pii.phone }\n"
	         "    output:\n"
	         "      type: object\n"
	         "      properties:\n"
	         "        iban: { type: string, x-data-class: financial.iban }\n";
	struct sg_diags d = {0};
	struct sg_connector *c = parse(text, &d);
	sg_diags_print(&d, stderr);
	assert_non_null(c);
	const struct sg_operation *op =
	    strcmp(c->ops[0].name, "create_contact") == 0 ? &c->ops[0] : &c->ops[1];
	const struct sg_operation *ping = op == &c->ops[0] ? &c->ops[1] : &c->ops[0];
	assert_string_equal(op->name, "create_contact");
	struct sg_dlp_hint h[4];
	assert_int_equal(sg_schema_data_classes(op->input, h, 4), 2);
	assert_string_equal(h[0].pointer, "/email");
	assert_string_equal(h[0].data_class, "pii.email");
	assert_string_equal(h[1].pointer, "/phones/*");
	assert_string_equal(h[1].data_class, "pii.phone");
	assert_int_equal(sg_schema_data_classes(op->output, h, 4), 1);
	assert_string_equal(h[0].pointer, "/iban");
	assert_string_equal(h[0].data_class, "financial.iban");
	assert_int_equal(sg_schema_data_classes(ping->input, h, 4), 0);
	sg_connector_free(c);
	sg_diags_free(&d);
}

/* A malformed class in YAML is refused at its line. */
static void
test_data_class_malformed_in_yaml(void **state)
{
	(void)state;
	static const char text[] =
	    BASE "  create_contact:\n"                                    /* 18 */
	         "    method: POST\n"                                     /* 19 */
	         "    path: /contacts\n"                                  /* 20 */
	         "    data_domain: pii\n"                                 /* 21 */
	         "    input:\n"                                           /* 22 */
	         "      type: object\n"                                   /* 23 */
	         "      properties:\n"                                    /* 24 */
	         "        email: { type: string, x-data-class: Email }\n" /* 25 */
	         "    output: { type: object }\n";                        /* 26 */
	struct sg_diags d = {0};
	assert_null(parse(text, &d));
	assert_int_equal(d.n, 1);
	assert_true(starts_with(
	    diag_at(&d, 0), "t.yaml:25:46: operation \"create_contact\": input schema "
	                    "/properties/email/x-data-class: x-data-class \"Email\" is not a data "
	                    "class name"));
	sg_diags_free(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_examples_load),
	    cmocka_unit_test(test_minimal_connector),
	    cmocka_unit_test(test_connector_names),
	    cmocka_unit_test(test_broken_reports_every_error),
	    cmocka_unit_test(test_missing_keys),
	    cmocka_unit_test(test_schema_error_points_at_node),
	    cmocka_unit_test(test_data_class_from_yaml),
	    cmocka_unit_test(test_data_class_malformed_in_yaml),
	    cmocka_unit_test(test_input_must_be_object),
	    cmocka_unit_test(test_bad_example),
	    cmocka_unit_test(test_unsatisfiable_pattern),
	    cmocka_unit_test(test_duplicate_key),
	    cmocka_unit_test(test_aliases_refused),
	    cmocka_unit_test(test_upstream_limit),
	    cmocka_unit_test(test_simulator_latency),
	    cmocka_unit_test(test_reported_weight),
	    cmocka_unit_test(test_upstream_concurrency),
	    cmocka_unit_test(test_catalog),
	    cmocka_unit_test(test_upstream_environment),
	    cmocka_unit_test(test_upstream_environment_errors),
	    cmocka_unit_test(test_upstream_top_level),
	    cmocka_unit_test(test_simulator_only),
	    cmocka_unit_test(test_forward_headers_refused),
	    cmocka_unit_test(test_auth_forms),
	    cmocka_unit_test(test_auth_errors),
	    cmocka_unit_test(test_failover),
	    cmocka_unit_test(test_egress_allow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
