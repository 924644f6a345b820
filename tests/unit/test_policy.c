/*
 * test_policy: roles compiled against the example catalog, rate specs, and
 * the errors a policy author sees.
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
#include "policy/sg_policy.h"
#include "upstream/sg_egress.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#ifndef SG_SOURCE_ROOT
#define SG_SOURCE_ROOT "."
#endif

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

/* The catalog of examples/connectors, shared by every test. */
static int
setup_catalog(void **state)
{
	static const char *const names[] = {"crm", "mail", "calendar"};
	struct sg_connector *v[3];
	struct sg_diags d = {0};
	for (size_t i = 0; i < 3; i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/examples/connectors/%s.yaml", SG_SOURCE_ROOT,
		    names[i]);
		char *text = slurp(path);
		v[i] = sg_connector_parse(path, text, strlen(text), 42, &d);
		free(text);
	}
	sg_diags_print(&d, stderr);
	if (d.n != 0)
		return -1;
	*state = sg_catalog_new(v, 3);
	return *state ? 0 : -1;
}

static int
teardown_catalog(void **state)
{
	sg_catalog_free(*state);
	return 0;
}

static struct sg_policy *
compile(const struct sg_catalog *cat, const char *text, struct sg_diags *d)
{
	struct sg_policy_source src = {"p.yaml", text, strlen(text)};
	return sg_policy_compile(&src, 1, cat, d);
}

static const struct sg_operation *
op(const struct sg_catalog *cat, const char *conn, const char *name)
{
	const struct sg_connector *c = sg_catalog_find(cat, conn);
	assert_non_null(c);
	const struct sg_operation *o = sg_connector_op(c, name);
	assert_non_null(o);
	return o;
}

static struct sg_policy *
example_policy(const struct sg_catalog *cat)
{
	struct sg_diags d = {0};
	char *text = slurp(SG_SOURCE_ROOT "/examples/policies/roles.yaml");
	struct sg_policy_source src = {"roles.yaml", text, strlen(text)};
	struct sg_policy *p = sg_policy_compile(&src, 1, cat, &d);
	sg_diags_print(&d, stderr);
	assert_int_equal(d.n, 0);
	free(text);
	assert_non_null(p);
	return p;
}

static void
test_example_roles(void **state)
{
	const struct sg_catalog *cat = *state;
	struct sg_policy *p = example_policy(cat);
	assert_int_equal(p->n_roles, 3);
	assert_int_equal(p->n_ops, cat->n_ops);
	assert_int_equal(p->n_connectors, 3);
	assert_string_equal(p->roles[0].name, "admin");
	assert_string_equal(p->roles[1].name, "explorer");
	assert_string_equal(p->roles[2].name, "maker");
	assert_null(sg_policy_role(p, "guest"));

	const struct sg_role *r = sg_policy_role(p, "explorer");
	assert_non_null(r);
	assert_true(r->mode_allowed[SG_MODE_SANDBOX]);
	assert_false(r->mode_allowed[SG_MODE_LIVE]);
	static const char *const crm_ops[] = {"create_contact", "get_contact", "list_contacts"};
	for (size_t i = 0; i < 3; i++) {
		assert_true(sg_role_allows(r, SG_MODE_SANDBOX, op(cat, "crm", crm_ops[i])));
		assert_false(sg_role_allows(r, SG_MODE_LIVE, op(cat, "crm", crm_ops[i])));
	}
	assert_true(sg_role_allows(r, SG_MODE_SANDBOX, op(cat, "mail", "send")));
	assert_false(sg_role_allows(r, SG_MODE_LIVE, op(cat, "mail", "send")));
	assert_false(sg_role_allows(r, SG_MODE_SANDBOX, op(cat, "mail", "get_status")));
	/* The explorer gets crm and mail.send only; calendar is the maker's. */
	assert_false(sg_role_allows(r, SG_MODE_SANDBOX, op(cat, "calendar", "list_holidays")));
	assert_false(sg_role_allows(r, SG_MODE_SANDBOX, op(cat, "calendar", "create_event")));
	assert_false(sg_role_allows(r, SG_MODE_SANDBOX, op(cat, "calendar", "list_events")));
	assert_false(sg_role_allows(r, SG_MODE_COUNT, op(cat, "mail", "send")));

	r = sg_policy_role(p, "maker");
	assert_true(sg_role_allows(r, SG_MODE_SANDBOX, op(cat, "mail", "get_status")));
	assert_false(sg_role_allows(r, SG_MODE_LIVE, op(cat, "mail", "get_status")));
	assert_true(sg_role_allows(r, SG_MODE_LIVE, op(cat, "calendar", "create_event")));
	r = sg_policy_role(p, "admin");
	for (size_t i = 0; i < cat->n; i++)
		for (size_t j = 0; j < cat->v[i]->n_ops; j++)
			assert_true(sg_role_allows(r, SG_MODE_LIVE, &cat->v[i]->ops[j]));
	sg_policy_free(p);
	sg_policy_free(NULL);
}

static void
test_example_limits(void **state)
{
	const struct sg_catalog *cat = *state;
	struct sg_policy *p = example_policy(cat);
	const struct sg_role *r = sg_policy_role(p, "explorer");
	const struct sg_connector *crm = sg_catalog_find(cat, "crm");
	const struct sg_connector *mail = sg_catalog_find(cat, "mail");

	const struct sg_limit *l = sg_role_limit(r, SG_MODE_SANDBOX, crm);
	assert_non_null(l);
	assert_ptr_equal(l, &r->limit[SG_MODE_SANDBOX]);
	assert_int_equal(l->gcra.emission_ns, 500000000);
	assert_int_equal(l->gcra.burst, 3);
	assert_string_equal(l->spec, "2/s");
	assert_int_equal(l->period_s, 1);
	/* The connector override wins for mail only. */
	l = sg_role_limit(r, SG_MODE_SANDBOX, mail);
	assert_int_equal(l->gcra.emission_ns, 1000000000);
	assert_int_equal(l->gcra.burst, 2);
	assert_null(sg_role_limit(r, SG_MODE_LIVE, crm));

	r = sg_policy_role(p, "maker");
	l = sg_role_limit(r, SG_MODE_LIVE, mail);
	assert_int_equal(l->gcra.emission_ns, 36000000000ULL); /* 100/h */
	assert_int_equal(l->gcra.burst, 10);
	l = sg_role_limit(r, SG_MODE_SANDBOX, mail); /* no sandbox override for maker */
	assert_int_equal(l->gcra.emission_ns, 100000000);
	assert_int_equal(l->gcra.burst, 20);
	sg_policy_free(p);
}

static void
test_unknown_names_hint(void **state)
{
	const struct sg_catalog *cat = *state;
	static const char text[] =
	    "kind: policy\n"                                               /* 1 */
	    "name: typos\n"                                                /* 2 */
	    "roles:\n"                                                     /* 3 */
	    "  explorer:\n"                                                /* 4 */
	    "    alow: []\n"                                               /* 5 */
	    "    allow:\n"                                                 /* 6 */
	    "      - operations: [\"crmm.*\", \"crm.get_contcat\", crm]\n" /* 7 */
	    "        modes: [sandbx]\n"                                    /* 8 */
	    "        data_domains: [pi]\n"                                 /* 9 */
	    "    limits: { sandbox: { rate: 2/s } }\n"                     /* 10 */
	    "    connector_limits: { mails: { sandbox: { rate: 1/s } } }\n"; /* 11 */
	struct sg_diags d = {0};
	assert_null(compile(cat, text, &d));
	assert_int_equal(d.n, 7);
	assert_string_equal(diag_at(&d, 0),
	    "p.yaml:5:5: unknown key \"alow\" (did you mean \"allow\"?)");
	assert_string_equal(diag_at(&d, 1), "p.yaml:7:22: role \"explorer\": unknown connector "
	    "\"crmm\" (did you mean \"crm\"?)");
	assert_string_equal(diag_at(&d, 2), "p.yaml:7:32: role \"explorer\": unknown operation "
	    "\"get_contcat\" in connector \"crm\" (did you mean \"get_contact\"?)");
	assert_string_equal(diag_at(&d, 3), "p.yaml:7:51: role \"explorer\": operation pattern "
	    "\"crm\": use connector.operation, connector.* or *");
	assert_string_equal(diag_at(&d, 4), "p.yaml:8:17: role \"explorer\": modes: unknown mode "
	    "\"sandbx\" (did you mean \"sandbox\"?); modes are sandbox and live");
	assert_string_equal(diag_at(&d, 5), "p.yaml:9:24: role \"explorer\": data_domains: no "
	    "operation in the catalog has data domain \"pi\" (did you mean \"pii\"?)");
	assert_string_equal(diag_at(&d, 6), "p.yaml:11:25: role \"explorer\": connector_limits: "
	    "unknown connector \"mails\" (did you mean \"mail\"?)");
	sg_diags_free(&d);
}

static void
test_role_defined_twice(void **state)
{
	const struct sg_catalog *cat = *state;
	static const char a[] =
	    "kind: policy\n"
	    "name: a\n"
	    "roles:\n"
	    "  viewer:\n"
	    "    allow: [{ operations: [\"crm.get_contact\"], modes: [sandbox] }]\n"
	    "    limits: { sandbox: { rate: 1/s } }\n"
	    "  explorer:\n"
	    "    allow: [{ operations: [\"crm.*\"], modes: [sandbox] }]\n"
	    "    limits: { sandbox: { rate: 1/s } }\n";
	static const char b[] =
	    "kind: policy\n"
	    "name: b\n"
	    "roles:\n"
	    "  explorer:\n"
	    "    allow: [{ operations: [\"mail.send\"], modes: [sandbox] }]\n"
	    "    limits: { sandbox: { rate: 1/s } }\n";
	struct sg_policy_source src[2] = {
		{"policies/a.yaml", a, strlen(a)},
		{"policies/b.yaml", b, strlen(b)},
	};
	struct sg_diags d = {0};
	assert_null(sg_policy_compile(src, 2, cat, &d));
	assert_int_equal(d.n, 1);
	assert_string_equal(diag_at(&d, 0), "policies/b.yaml:4:3: role \"explorer\" defined "
	    "twice (first at policies/a.yaml:7)");
	sg_diags_free(&d);

	/* Split across files without overlap is fine. */
	src[1].text = "kind: policy\nname: b\nroles: {}\n";
	src[1].len = strlen(src[1].text);
	struct sg_policy *p = sg_policy_compile(src, 2, cat, &d);
	assert_non_null(p);
	assert_int_equal(p->n_roles, 2);
	assert_string_equal(p->roles[0].name, "explorer");
	sg_policy_free(p);

	/* The same source twice: the second names the first's line. */
	src[1] = src[0];
	src[1].file = "policies/a.yaml";
	assert_null(sg_policy_compile(src, 2, cat, &d));
	assert_int_equal(d.n, 2);
	assert_string_equal(diag_at(&d, 0), "policies/a.yaml:4:3: role \"viewer\" defined twice "
	    "(first at line 4)");
	sg_diags_free(&d);
}

static void
test_missing_limits_fail_closed(void **state)
{
	const struct sg_catalog *cat = *state;
	static const char text[] =
	    "kind: policy\n"
	    "name: p\n"
	    "roles:\n"
	    "  maker:\n"
	    "    allow: [{ operations: [\"*\"], modes: [sandbox, live] }]\n"
	    "    limits: { sandbox: { rate: 1/s } }\n";
	struct sg_diags d = {0};
	assert_null(compile(cat, text, &d));
	assert_int_equal(d.n, 1);
	assert_string_equal(diag_at(&d, 0), "p.yaml:4:3: role \"maker\" may use live mode but has "
	    "no limits.live; add limits: { live: { rate: 10/s, burst: 20 } }");
	sg_diags_free(&d);
}

static void
test_pattern_matching_nothing(void **state)
{
	const struct sg_catalog *cat = *state;
	static const char text[] =
	    "kind: policy\n"
	    "name: p\n"
	    "roles:\n"
	    "  explorer:\n"
	    "    allow:\n"
	    "      - operations: [\"calendar.*\", \"crm.*\"]\n"
	    "        modes: [sandbox]\n"
	    "        data_domains: [pii]\n"
	    "    limits: { sandbox: { rate: 1/s } }\n";
	struct sg_diags d = {0};
	assert_null(compile(cat, text, &d));
	assert_int_equal(d.n, 1);
	assert_string_equal(diag_at(&d, 0), "p.yaml:6:22: role \"explorer\": \"calendar.*\" "
	    "matches no operation in the listed data_domains: remove it or widen the rule");
	sg_diags_free(&d);
}

static void
test_data_domain_filter(void **state)
{
	const struct sg_catalog *cat = *state;
	static const char text[] =
	    "kind: policy\n"
	    "name: p\n"
	    "roles:\n"
	    "  internal_only:\n"
	    "    allow:\n"
	    "      - { operations: [\"*\"], modes: [live], data_domains: [internal] }\n"
	    "    limits: { live: { rate: 0.5/s } }\n";
	struct sg_diags d = {0};
	struct sg_policy *p = compile(cat, text, &d);
	assert_non_null(p);
	const struct sg_role *r = sg_policy_role(p, "internal_only");
	for (size_t i = 0; i < cat->n; i++)
		for (size_t j = 0; j < cat->v[i]->n_ops; j++) {
			const struct sg_operation *o = &cat->v[i]->ops[j];
			bool want = strcmp(o->data_domain, "internal") == 0;
			assert_int_equal(sg_role_allows(r, SG_MODE_LIVE, o), want);
			assert_false(sg_role_allows(r, SG_MODE_SANDBOX, o));
		}
	assert_int_equal(r->limit[SG_MODE_LIVE].gcra.emission_ns, 2000000000);
	assert_int_equal(r->limit[SG_MODE_LIVE].gcra.burst, 1);
	sg_policy_free(p);
}

static void
test_document_checks(void **state)
{
	const struct sg_catalog *cat = *state;
	struct sg_diags d = {0};
	assert_null(compile(cat, "kind: polcy\nroles:\n  Bad Name: {}\n", &d));
	assert_int_equal(d.n, 3);
	assert_string_equal(diag_at(&d, 0), "p.yaml:1:1: missing key \"name\": a policy starts "
	    "with kind: policy and name: NAME");
	assert_string_equal(diag_at(&d, 1), "p.yaml:1:7: kind: expected \"policy\", got "
	    "\"polcy\"");
	assert_string_equal(diag_at(&d, 2), "p.yaml:3:3: role name: use 1 to 64 lowercase "
	    "letters, digits, '_' or '-', starting with a letter, got \"Bad Name\"");
	sg_diags_free(&d);

	assert_null(compile(cat, "kind: policy\nname: p\nroles:\n  r:\n    allow:\n"
	    "      - operations: [\"crm.*\"]\n    limits: { sandbox: { rate: 2/s, burst: 0 } }\n",
	    &d));
	assert_int_equal(d.n, 2);
	assert_string_equal(diag_at(&d, 0), "p.yaml:6:9: role \"r\": modes: missing; add modes: "
	    "[sandbox] or modes: [sandbox, live]");
	assert_string_equal(diag_at(&d, 1), "p.yaml:7:44: role \"r\": limits.sandbox.burst: "
	    "expected an integer from 1 to 100000, got \"0\"");
	sg_diags_free(&d);

	/* No sources at all: an empty policy that allows nothing. */
	struct sg_policy *p = sg_policy_compile(NULL, 0, cat, &d);
	assert_non_null(p);
	assert_int_equal(p->n_roles, 0);
	assert_null(sg_policy_role(p, "admin"));
	sg_policy_free(p);
}

/* The policy's verdict on (host, IPv4 address) with no connector allowlist. */
static struct sg_egress_verdict
egress_judge(const struct sg_policy *p, const char *host, const char *addr)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(443)};
	assert_int_equal(inet_pton(AF_INET, addr, &in.sin_addr), 1);
	struct sg_egress_verdict v;
	sg_egress_judge(NULL, sg_policy_egress(p), host, (struct sockaddr *)&in, sizeof(in), &v);
	return v;
}

static void
test_egress_rules(void **state)
{
	const struct sg_catalog *cat = *state;
	struct sg_diags d = {0};
	struct sg_policy *p = compile(cat,
	    "kind: policy\nname: net\negress:\n  rules:\n"
	    "    - { deny: \"*.internal\" }\n"
	    "    - { allow: \"API.example.com\" }\n"
	    "    - { deny: \"93.184.0.0/16\" }\n"
	    "  default: deny\n", &d);
	sg_diags_print(&d, stderr);
	assert_non_null(p);
	assert_non_null(sg_policy_egress(p));
	struct sg_egress_verdict v = egress_judge(p, "db.internal", "8.8.8.8");
	assert_false(v.allowed);
	assert_string_equal(v.rule, "policy endpoint rule 1 (deny *.internal)");
	v = egress_judge(p, "api.example.com", "93.184.216.34");
	assert_true(v.allowed);
	assert_string_equal(v.rule, "policy endpoint rule 2 (allow api.example.com)");
	v = egress_judge(p, "www.example.com", "93.184.216.34");
	assert_string_equal(v.rule, "policy endpoint rule 3 (deny 93.184.0.0/16)");
	v = egress_judge(p, "elsewhere.org", "8.8.8.8");
	assert_false(v.allowed);
	assert_string_equal(v.rule, "policy endpoint default (deny)");
	sg_policy_free(p);

	/* No section: no rules; an empty one defaults to allow. */
	p = compile(cat, "kind: policy\nname: net\negress: { rules: [] }\n", &d);
	assert_non_null(p);
	assert_string_equal(egress_judge(p, "a.org", "8.8.8.8").rule,
	    "policy endpoint default (allow)");
	sg_policy_free(p);
	p = compile(cat, "kind: policy\nname: net\nroles: {}\n", &d);
	assert_non_null(p);
	assert_null(sg_policy_egress(p));
	sg_policy_free(p);
	assert_null(sg_policy_egress(NULL));
}

static void
test_egress_errors(void **state)
{
	const struct sg_catalog *cat = *state;
	struct sg_diags d = {0};
	assert_null(compile(cat,
	    "kind: policy\nname: net\negress:\n  rules:\n"
	    "    - { deny: \"10.0.0.1/8\" }\n"                      /* 5 */
	    "    - { allow: \"a.com\", deny: \"b.com\" }\n"          /* 6 */
	    "    - { permit: \"c.com\" }\n"                         /* 7 */
	    "    - { allow: \"0x7f.1\" }\n"                         /* 8 */
	    "    - \"d.com\"\n"                                     /* 9 */
	    "    - { deny: 10.0.0.0/8, allow: 127.0.0.1 }\n"          /* 10 */
	    "  default: maybe\n"                                    /* 11 */
	    "  fallback: deny\n", &d));                             /* 12 */
	assert_int_equal(d.n, 8);
	assert_string_equal(diag_at(&d, 0), "p.yaml:5:15: egress.rules[1]: egress entry "
	    "\"10.0.0.1/8\": has address bits set past the prefix length; write the network's "
	    "first address, or /32 (/128) for one address");
	assert_string_equal(diag_at(&d, 1), "p.yaml:6:9: egress.rules[2]: give exactly one of "
	    "allow or deny, such as { deny: \"*.internal\" } or { allow: \"api.example.com\" }");
	assert_string_equal(diag_at(&d, 2), "p.yaml:7:9: unknown key \"permit\" in "
	    "egress.rules[3]: remove it");
	assert_string_equal(diag_at(&d, 3), "p.yaml:8:16: egress.rules[4]: egress entry "
	    "\"0x7f.1\": is an IPv4 address in a shorthand or numeric spelling; write it as four "
	    "decimal numbers such as 127.0.0.1/32");
	assert_string_equal(diag_at(&d, 4), "p.yaml:9:7: egress.rules[5]: expected a mapping, "
	    "got \"d.com\"");
	assert_string_equal(diag_at(&d, 5), "p.yaml:10:9: egress.rules[6]: give exactly one of "
	    "allow or deny, such as { deny: \"*.internal\" } or { allow: \"api.example.com\" }");
	assert_string_equal(diag_at(&d, 6), "p.yaml:11:12: egress.default: expected allow or "
	    "deny, got \"maybe\"");
	assert_string_equal(diag_at(&d, 7), "p.yaml:12:3: unknown key \"fallback\" in egress: "
	    "remove it");
	sg_diags_free(&d);

	/* Two documents may not both order the rules. */
	struct sg_policy_source src[2] = {
	    {"a.yaml", "kind: policy\nname: a\negress: { default: deny }\n", 0},
	    {"b.yaml", "kind: policy\nname: b\negress: { default: allow }\n", 0},
	};
	src[0].len = strlen(src[0].text);
	src[1].len = strlen(src[1].text);
	assert_null(sg_policy_compile(src, 2, cat, &d));
	assert_int_equal(d.n, 1);
	assert_string_equal(diag_at(&d, 0), "b.yaml:3:11: egress: defined in two policy documents; "
	    "keep one, since rules apply in order");
	sg_diags_free(&d);
	assert_null(compile(cat, "kind: policy\nname: a\negress: { rules: { deny: x.com } }\n",
	    &d));
	assert_string_equal(diag_at(&d, 0), "p.yaml:3:20: egress.rules: expected a list such as "
	    "- { deny: \"*.internal\" }");
	sg_diags_free(&d);
}

static void
test_limit_parse(void **state)
{
	(void)state;
	static const struct {
		const char *spec;
		uint32_t burst;
		int rc;
		uint64_t emission_ns;
		uint32_t want_burst;
	} cases[] = {
		{"2/s", 0, 0, 500000000, 2},
		{"100/m", 5, 0, 600000000, 5},
		{"10/h", 0, 0, 360000000000ULL, 10},
		{"5000/d", 5000, 0, 17280000000ULL, 5000},
		{"0.5/s", 0, 0, 2000000000, 1},
		{"2.5/s", 0, 0, 400000000, 3},
		{"0.001/s", 0, 0, 1000000000000ULL, 1},
		{"3/s", 0, 0, 333333333, 3},
		{"1000000/s", 0, 0, 1000, 100000},
		{"1000000.000/d", 1, 0, 86400000, 1},
		{"1/s", 100000, 0, 1000000000, 100000},
		{"1/s", 100001, -1, 0, 0},
		{"1000001/s", 0, -1, 0, 0},
		{"1000000.001/s", 0, -1, 0, 0},
		{"0/s", 0, -1, 0, 0},
		{"0.0001/s", 0, -1, 0, 0},
		{"1.2345/s", 0, -1, 0, 0},
		{"1./s", 0, -1, 0, 0},
		{".5/s", 0, -1, 0, 0},
		{"-1/s", 0, -1, 0, 0},
		{"1e3/s", 0, -1, 0, 0},
		{"2/x", 0, -1, 0, 0},
		{"2/ss", 0, -1, 0, 0},
		{"2/", 0, -1, 0, 0},
		{"/s", 0, -1, 0, 0},
		{"2", 0, -1, 0, 0},
		{"", 0, -1, 0, 0},
		{" 2/s", 0, -1, 0, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sg_limit l;
		memset(&l, 0xa5, sizeof(l));
		int rc = sg_limit_parse(cases[i].spec, cases[i].burst, &l);
		if (rc != cases[i].rc)
			fail_msg("\"%s\": rc %d, want %d", cases[i].spec, rc, cases[i].rc);
		if (rc != 0)
			continue;
		if (l.gcra.emission_ns != cases[i].emission_ns ||
		    l.gcra.burst != cases[i].want_burst)
			fail_msg("\"%s\": T %llu burst %u", cases[i].spec,
			    (unsigned long long)l.gcra.emission_ns, l.gcra.burst);
		assert_string_equal(l.spec, cases[i].spec);
	}
	assert_int_equal(sg_limit_parse(NULL, 0, &(struct sg_limit){0}), -1);
	struct sg_limit l;
	assert_int_equal(sg_limit_parse("100/m", 0, &l), 0);
	assert_true(l.rate == 100.0);
	assert_int_equal(l.period_s, 60);
}

static void
test_modes(void **state)
{
	(void)state;
	enum sg_mode m = SG_MODE_COUNT;
	assert_int_equal(sg_mode_parse("sandbox", &m), 0);
	assert_int_equal(m, SG_MODE_SANDBOX);
	assert_int_equal(sg_mode_parse("live", &m), 0);
	assert_int_equal(m, SG_MODE_LIVE);
	assert_int_equal(sg_mode_parse("Live", &m), -1);
	assert_int_equal(sg_mode_parse("", &m), -1);
	assert_int_equal(sg_mode_parse(NULL, &m), -1);
	assert_string_equal(sg_mode_name(SG_MODE_SANDBOX), "sandbox");
	assert_string_equal(sg_mode_name(SG_MODE_LIVE), "live");
	assert_string_equal(sg_mode_name(SG_MODE_COUNT), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_roles),
		cmocka_unit_test(test_example_limits),
		cmocka_unit_test(test_unknown_names_hint),
		cmocka_unit_test(test_role_defined_twice),
		cmocka_unit_test(test_missing_limits_fail_closed),
		cmocka_unit_test(test_pattern_matching_nothing),
		cmocka_unit_test(test_data_domain_filter),
		cmocka_unit_test(test_document_checks),
		cmocka_unit_test(test_egress_rules),
		cmocka_unit_test(test_egress_errors),
		cmocka_unit_test(test_limit_parse),
		cmocka_unit_test(test_modes),
	};
	return cmocka_run_group_tests(tests, setup_catalog, teardown_catalog);
}
