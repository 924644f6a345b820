/*
 * test_dlp_action: the policy's `dlp:` section (good input and each kind of
 * bad input with the message an admin sees), the action chosen for a
 * finding, masks, redaction, tokens, and the rewrite of a document with its
 * field allowlist.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "../support/sg_testdiag.h"

#include "catalog/sg_catalog.h"
#include "core/sg_vault.h"
#include "dlp/sg_dlp_action.h"
#include "dlp/sg_dlp_policy.h"
#include "dlp/sg_dlp_scan.h"
#include "policy/sg_policy.h"

#ifndef SG_SOURCE_ROOT
#define SG_SOURCE_ROOT "."
#endif

#define DEPTH 64

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

static struct sg_catalog *cat;
static char *roles_text;

static int
setup(void **state)
{
	static const char *const names[] = {"crm", "mail", "calendar"};
	struct sg_connector *v[3];
	struct sg_diags d = {0};
	(void)state;
	if (sodium_init() < 0)
		return -1;
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
	cat = sg_catalog_new(v, 3);
	roles_text = slurp(SG_SOURCE_ROOT "/examples/policies/roles.yaml");
	return cat != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	sg_catalog_free(cat);
	free(roles_text);
	return 0;
}

/* The example roles plus `dlp_text` as dlp.yaml. */
static struct sg_policy *
compile(const char *dlp_text, struct sg_diags *d)
{
	struct sg_policy_source src[] = {
	    {"roles.yaml", roles_text, strlen(roles_text)},
	    {"dlp.yaml", dlp_text, strlen(dlp_text)},
	};
	return sg_policy_compile(src, 2, cat, d);
}

static struct sg_policy *
compile_ok(const char *dlp_text)
{
	struct sg_diags d = {0};
	struct sg_policy *p = compile(dlp_text, &d);
	sg_diags_print(&d, stderr);
	assert_int_equal(d.n, 0);
	assert_non_null(p);
	return p;
}

/* ---- the policy section --------------------------------------------------- */

static void
test_example_policy(void **state)
{
	(void)state;
	char *text = slurp(SG_SOURCE_ROOT "/examples/policies/dlp.yaml");
	struct sg_policy *p = compile_ok(text);
	const struct sg_dlp_policy *dp = sg_policy_dlp(p);
	assert_non_null(dp);
	size_t n;
	const struct sg_dlp_rule_def *r = sg_dlp_policy_rules(dp, &n);
	assert_int_equal(n, 2);
	assert_string_equal(r[0].id, "acme_customer_id");
	assert_string_equal(r[0].data_class, "pii.customer_id");
	assert_int_equal(r[0].check, SG_DLP_CHECK_NONE);
	assert_int_equal(r[0].confidence, 80);
	assert_string_equal(r[1].id, "acme_api_key");
	assert_int_equal(r[1].check, SG_DLP_CHECK_ENTROPY);
	assert_true(r[1].min_entropy > 3.49 && r[1].min_entropy < 3.51);
	assert_int_equal(r[1].confidence, 90);
	assert_int_equal(dp->n_actions, 3);
	assert_int_equal(sg_dlp_policy_mask_keep(dp, "pii.phone"), 2);
	const char *const *f = sg_dlp_policy_allowlist(dp, "explorer", "crm.get_contact", &n);
	assert_non_null(f);
	assert_int_equal(n, 4);
	assert_string_equal(f[0], "/id");
	assert_null(sg_dlp_policy_allowlist(dp, "maker", "crm.get_contact", &n));
	assert_int_equal(n, 0);
	assert_null(sg_dlp_policy_allowlist(dp, "explorer", "crm.list_contacts", &n));
	sg_policy_free(p);
	free(text);
}

static void
test_no_section(void **state)
{
	(void)state;
	struct sg_policy *p = compile_ok("kind: policy\nname: other\n"
	                                 "egress:\n  default: allow\n");
	assert_null(sg_policy_dlp(p));
	sg_policy_free(p);
}

/* Each bad input and the one message it gives, at its line and column. */
static void
test_policy_errors(void **state)
{
	(void)state;
	static const struct {
		const char *yaml, *msg;
	} cases[] = {
	    {"  actions:\n    - { class: \"PII..email\", action: mask }\n",
	     "dlp.yaml:5:16: dlp.actions[1]: class \"PII..email\": expected a data class such as "
	     "\"pii.email\", a family such as \"secret.*\", or \"*\" (dotted lowercase words)"},
	    {"  actions:\n    - { class: pii, action: mask }\n",
	     "dlp.yaml:5:16: dlp.actions[1]: class \"pii\": expected a data class such as "
	     "\"pii.email\", a family such as \"secret.*\", or \"*\" (dotted lowercase words)"},
	    {"  actions:\n    - { class: pii.email, action: maks }\n",
	     "dlp.yaml:5:35: dlp.actions[1]: unknown action \"maks\" (did you mean \"mask\"?); "
	     "actions are allow, alert, mask, tokenize, redact and block"},
	    {"  actions:\n    - { class: pii.email }\n",
	     "dlp.yaml:5:9: dlp.actions[1]: missing action; add action: allow, alert, mask, "
	     "tokenize, redact or block"},
	    {"  actions:\n    - { class: pii.email, modes: [lve], action: mask }\n",
	     "dlp.yaml:5:35: dlp.actions[1].modes: unknown mode \"lve\" (did you mean "
	     "\"live\"?); modes are sandbox and live"},
	    {"  actions:\n    - { class: pii.email, direction: responce, action: mask }\n",
	     "dlp.yaml:5:38: dlp.actions[1]: unknown direction \"responce\" (did you mean "
	     "\"response\"?); expected request or response (leave it out for both)"},
	    {"  actions:\n    - { class: pii.email, roles: [explrer], action: mask }\n",
	     "dlp.yaml:5:35: dlp.actions[1].roles: unknown role \"explrer\" (did you mean "
	     "\"explorer\"?)"},
	    {"  actions:\n    - { class: pii.email, domains: [pi], action: mask }\n",
	     "dlp.yaml:5:37: dlp.actions[1].domains: no operation in the catalog has data domain "
	     "\"pi\" (did you mean \"pii\"?)"},
	    {"  actions:\n    - { clas: pii.email, action: mask }\n",
	     "dlp.yaml:5:9: unknown key \"clas\" (did you mean \"class\"?)"},
	    {"  allow_fields:\n    - { operations: [crm.get_contct], fields: [/id] }\n",
	     "dlp.yaml:5:22: dlp.allow_fields[1].operations: unknown operation \"get_contct\" in "
	     "connector \"crm\" (did you mean \"get_contact\"?)"},
	    {"  allow_fields:\n    - { operations: [crmm.get_contact], fields: [/id] }\n",
	     "dlp.yaml:5:22: dlp.allow_fields[1].operations: unknown connector \"crmm\" (did you "
	     "mean \"crm\"?)"},
	    {"  allow_fields:\n    - { operations: [crm.get_contact], fields: [id] }\n",
	     "dlp.yaml:5:49: dlp.allow_fields[1].fields: \"id\": a field is a JSON pointer such as "
	     "\"/id\" or \"/items/*/email\" (\"~\" written ~0, \"/\" in a name ~1)"},
	    {"  allow_fields:\n    - { operations: [crm.get_contact] }\n",
	     "dlp.yaml:5:9: dlp.allow_fields[1]: missing fields; list the reply fields the roles "
	     "may see, such as [\"/id\"]"},
	    {"  rules:\n    - { id: acme, class: pii.acme, pattern: \"ACME-[0-9\" }\n",
	     "dlp.yaml:5:45: dlp.rules[1]: pattern \"ACME-[0-9\": Vectorscan refuses it: "
	     "Unterminated character class starting at index 5."},
	    {"  rules:\n    - { id: acme, class: pii.acme, pattern: \"x*\" }\n",
	     "dlp.yaml:5:45: dlp.rules[1]: pattern \"x*\": it can match an empty string; make it "
	     "require at least one character"},
	    {"  rules:\n    - { id: acme, class: pii.acme, pattern: \"A[0-9]+\", check: lunh }\n",
	     "dlp.yaml:5:63: dlp.rules[1]: unknown check \"lunh\" (did you mean \"luhn\"?); checks "
	     "are none, luhn, mod97, ssn, jwt, ipv4, ipv6, phone, date and entropy>=N"},
	    {"  rules:\n    - { id: acme, class: pii.acme, pattern: \"A[0-9]+\", check: entropy "
	     "}\n",
	     "dlp.yaml:5:63: dlp.rules[1]: check \"entropy\" needs a threshold in bits per "
	     "character, such as \"entropy>=3.5\""},
	    {"  rules:\n    - { id: acme, class: pii.acme, pattern: \"A[0-9]+\", check: "
	     "\"entropy>=9\" }\n",
	     "dlp.yaml:5:63: dlp.rules[1]: check \"entropy>=9\": the entropy threshold is bits "
	     "per character, above 0 and at most 8 (3.5 suits random keys)"},
	    {"  rules:\n    - { id: card, class: pii.acme, pattern: \"A[0-9]+\" }\n",
	     "dlp.yaml:5:13: dlp.rules[1]: id \"card\" is a built-in rule's; choose another"},
	    {"  rules:\n    - { id: acme, class: pii.acme, pattern: \"A[0-9]+\" }\n"
	     "    - { id: acme, class: pii.acme, pattern: \"B[0-9]+\" }\n",
	     "dlp.yaml:6:13: dlp.rules[2]: id \"acme\" defined twice (first at line 5)"},
	    {"  rules:\n    - { id: acme, class: \"pii.*\", pattern: \"A[0-9]+\" }\n",
	     "dlp.yaml:5:26: dlp.rules[1]: class \"pii.*\": expected a data class such as "
	     "\"pii.customer_id\" (family.kind, dotted lowercase words)"},
	    {"  rules:\n    - { id: acme, class: pii.acme, pattern: \"A[0-9]+\", confidence: 101 "
	     "}\n",
	     "dlp.yaml:5:68: dlp.rules[1].confidence: expected an integer from 0 to 100, got "
	     "\"101\""},
	    {"  mask:\n    financial.card: { keep_last: 99 }\n",
	     "dlp.yaml:5:34: dlp.mask.financial.card.keep_last: expected an integer from 0 to 64, "
	     "got \"99\""},
	    {"  mask:\n    Card: { keep_last: 4 }\n",
	     "dlp.yaml:5:5: dlp.mask: class \"Card\": expected a data class such as \"pii.email\", "
	     "a family such as \"secret.*\", or \"*\" (dotted lowercase words)"},
	    {"  action:\n    - { class: pii.email, action: mask }\n",
	     "dlp.yaml:4:3: unknown key \"action\" (did you mean \"actions\"?)"},
	};
	size_t bad = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[1024];
		struct sg_diags d = {0};
		snprintf(text, sizeof(text), "kind: policy\nname: dlp\ndlp:\n%s", cases[i].yaml);
		struct sg_policy *p = compile(text, &d);
		if (d.n != 1 || strcmp(diag_at(&d, 0), cases[i].msg) != 0) {
			fprintf(stderr, "case %zu: expected one error: %s\ngot:\n", i,
			        cases[i].msg);
			sg_diags_print(&d, stderr);
			bad++;
		}
		assert_null(p);
		sg_diags_free(&d);
	}
	assert_int_equal(bad, 0);
}

static void
test_two_documents(void **state)
{
	(void)state;
	const char *a =
	    "kind: policy\nname: a\ndlp:\n  actions: [{ class: \"*\", action: alert }]\n";
	const char *b =
	    "kind: policy\nname: b\ndlp:\n  actions: [{ class: \"*\", action: mask }]\n";
	struct sg_policy_source src[] = {
	    {"roles.yaml", roles_text, strlen(roles_text)},
	    {"a.yaml", a, strlen(a)},
	    {"b.yaml", b, strlen(b)},
	};
	struct sg_diags d = {0};
	assert_null(sg_policy_compile(src, 3, cat, &d));
	assert_int_equal(d.n, 1);
	assert_string_equal(diag_at(&d, 0), "b.yaml:4:3: dlp: defined in two policy documents "
	                                    "(first in a.yaml); keep one, since actions apply in "
	                                    "order");
	sg_diags_free(&d);
}

/* ---- choosing an action ----------------------------------------------------- */

static struct sg_dlp_subject
subj(const char *role, int mode, enum sg_dlp_direction dir, const char *domain, bool real)
{
	return (struct sg_dlp_subject){.data_domain = domain,
	                               .role = role,
	                               .mode = mode,
	                               .direction = dir,
	                               .real_upstream = real};
}

static void
test_defaults(void **state)
{
	(void)state;
	struct sg_dlp_subject s;
	for (int dir = 0; dir < SG_DLP_DIRECTION_COUNT; dir++)
		for (int m = 0; m < SG_MODE_COUNT; m++) {
			s = subj("explorer", m, (enum sg_dlp_direction)dir, "pii", true);
			assert_int_equal(sg_dlp_default_action("secret.aws", &s), SG_DLP_BLOCK);
			assert_int_equal(sg_dlp_policy_action(NULL, "secret.generic", &s),
			                 SG_DLP_BLOCK);
		}
	s = subj("explorer", SG_MODE_SANDBOX, SG_DLP_RESPONSE, "pii", true);
	assert_int_equal(sg_dlp_policy_action(NULL, "financial.card", &s), SG_DLP_MASK);
	assert_int_equal(sg_dlp_policy_action(NULL, "pii.email", &s), SG_DLP_MASK);
	s.real_upstream = false;
	assert_int_equal(sg_dlp_policy_action(NULL, "financial.card", &s), SG_DLP_ALERT);
	s = subj("explorer", SG_MODE_SANDBOX, SG_DLP_REQUEST, "pii", true);
	assert_int_equal(sg_dlp_policy_action(NULL, "financial.card", &s), SG_DLP_ALERT);
	s = subj("admin", SG_MODE_LIVE, SG_DLP_RESPONSE, "pii", true);
	assert_int_equal(sg_dlp_policy_action(NULL, "financial.card", &s), SG_DLP_ALERT);
	/* "secretive.x" is not a secret: the family is the whole first word. */
	assert_int_equal(sg_dlp_policy_action(NULL, "secretive.x", &s), SG_DLP_ALERT);
}

static void
test_action_selection(void **state)
{
	(void)state;
	struct sg_policy *p = compile_ok(
	    "kind: policy\nname: dlp\ndlp:\n  actions:\n"
	    "    - { class: pii.email, roles: [explorer], modes: [live], direction: response, "
	    "domains: [pii], action: redact }\n"
	    "    - { class: \"financial.*\", direction: request, action: tokenize }\n"
	    "    - { class: \"secret.*\", roles: [admin], action: alert }\n"
	    "    - { class: \"pii.*\", domains: [internal], action: block }\n"
	    "    - { class: \"*\", modes: [sandbox], direction: response, action: allow }\n");
	const struct sg_dlp_policy *dp = sg_policy_dlp(p);
	struct sg_dlp_subject s = subj("explorer", SG_MODE_LIVE, SG_DLP_RESPONSE, "pii", true);
	assert_int_equal(sg_dlp_policy_action(dp, "pii.email", &s), SG_DLP_REDACT);
	/* Each field of the first entry, changed alone, lets the call fall through. */
	s.role = "maker";
	assert_int_equal(sg_dlp_policy_action(dp, "pii.email", &s), SG_DLP_ALERT);
	s.role = NULL;
	assert_int_equal(sg_dlp_policy_action(dp, "pii.email", &s), SG_DLP_ALERT);
	s = subj("explorer", SG_MODE_SANDBOX, SG_DLP_RESPONSE, "pii", true);
	assert_int_equal(sg_dlp_policy_action(dp, "pii.email", &s), SG_DLP_ALLOW);
	s = subj("explorer", SG_MODE_LIVE, SG_DLP_REQUEST, "pii", true);
	assert_int_equal(sg_dlp_policy_action(dp, "pii.email", &s), SG_DLP_ALERT);
	s = subj("explorer", SG_MODE_LIVE, SG_DLP_RESPONSE, "internal", true);
	assert_int_equal(sg_dlp_policy_action(dp, "pii.email", &s), SG_DLP_BLOCK);
	s = subj("explorer", SG_MODE_LIVE, SG_DLP_RESPONSE, "pii", true);
	assert_int_equal(sg_dlp_policy_action(dp, "pii.phone", &s), SG_DLP_ALERT);
	/* A family wildcard, in one direction only. */
	s = subj("maker", SG_MODE_SANDBOX, SG_DLP_REQUEST, "public", false);
	assert_int_equal(sg_dlp_policy_action(dp, "financial.card", &s), SG_DLP_TOKENIZE);
	assert_int_equal(sg_dlp_policy_action(dp, "financial.iban", &s), SG_DLP_TOKENIZE);
	assert_int_equal(sg_dlp_policy_action(dp, "financialx.card", &s), SG_DLP_ALERT);
	s.direction = SG_DLP_RESPONSE;
	assert_int_equal(sg_dlp_policy_action(dp, "financial.card", &s), SG_DLP_ALLOW);
	s.mode = SG_MODE_LIVE;
	assert_int_equal(sg_dlp_policy_action(dp, "financial.card", &s), SG_DLP_ALERT);
	/* Secrets: the policy may let one role through; every other still blocked. */
	s = subj("admin", SG_MODE_LIVE, SG_DLP_REQUEST, "pii", false);
	assert_int_equal(sg_dlp_policy_action(dp, "secret.aws", &s), SG_DLP_ALERT);
	s.role = "maker";
	assert_int_equal(sg_dlp_policy_action(dp, "secret.aws", &s), SG_DLP_BLOCK);
	/* "*" in sandbox replies matches secrets too: the admin said so. */
	s = subj("maker", SG_MODE_SANDBOX, SG_DLP_RESPONSE, "pii", true);
	assert_int_equal(sg_dlp_policy_action(dp, "secret.aws", &s), SG_DLP_ALLOW);
	sg_policy_free(p);
}

static void
test_names(void **state)
{
	(void)state;
	enum sg_dlp_action a;
	for (int i = 0; i < SG_DLP_ACTION_COUNT; i++) {
		assert_int_equal(sg_dlp_action_parse(sg_dlp_action_name((enum sg_dlp_action)i), &a),
		                 0);
		assert_int_equal(a, i);
	}
	assert_int_equal(sg_dlp_action_parse("Mask", &a), -1);
	assert_string_equal(sg_dlp_direction_name(SG_DLP_RESPONSE), "response");
	assert_true(sg_dlp_class_valid("pii.email", false));
	assert_true(sg_dlp_class_valid("acme.customer.id", false));
	assert_false(sg_dlp_class_valid("pii", false));
	assert_false(sg_dlp_class_valid("pii.", false));
	assert_false(sg_dlp_class_valid(".email", false));
	assert_false(sg_dlp_class_valid("pii.*", false));
	assert_true(sg_dlp_class_valid("pii.*", true));
	assert_true(sg_dlp_class_valid("*", true));
	assert_false(sg_dlp_class_valid("*.email", true));
	assert_false(sg_dlp_class_valid("pii.E", true));
	assert_true(sg_dlp_class_selected("pii.*", "pii.email"));
	assert_false(sg_dlp_class_selected("pii.*", "piix.email"));
	assert_false(sg_dlp_class_selected("pii.*", "pii"));
}

/* ---- masks, redaction, tokens ------------------------------------------------ */

static void
test_mask_keep(void **state)
{
	(void)state;
	assert_int_equal(sg_dlp_policy_mask_keep(NULL, "financial.card"), 4);
	assert_int_equal(sg_dlp_policy_mask_keep(NULL, "financial.iban"), 4);
	assert_int_equal(sg_dlp_policy_mask_keep(NULL, "pii.ssn"), 4);
	assert_int_equal(sg_dlp_policy_mask_keep(NULL, "pii.phone"), 2);
	assert_int_equal(sg_dlp_policy_mask_keep(NULL, "pii.email"), SG_DLP_MASK_KEEP_DOMAIN);
	assert_int_equal(sg_dlp_policy_mask_keep(NULL, "pii.ip"), 0);
	struct sg_policy *p = compile_ok("kind: policy\nname: dlp\ndlp:\n  mask:\n"
	                                 "    \"financial.*\": { keep_last: 2 }\n"
	                                 "    financial.card: { keep_last: 6 }\n"
	                                 "    pii.email: { keep_last: 0 }\n"
	                                 "    \"*\": { keep_last: 1 }\n");
	const struct sg_dlp_policy *dp = sg_policy_dlp(p);
	assert_int_equal(sg_dlp_policy_mask_keep(dp, "financial.card"), 6);
	assert_int_equal(sg_dlp_policy_mask_keep(dp, "financial.iban"), 2);
	assert_int_equal(sg_dlp_policy_mask_keep(dp, "pii.email"), 0);
	assert_int_equal(sg_dlp_policy_mask_keep(dp, "pii.ssn"), 1);
	sg_policy_free(p);
}

/* A hand-made scan result over a parsed document: values found by pointer. */
struct fake {
	struct sg_dlp_value vals[16];
	char texts[16][64];
	struct sg_dlp_hit hits[16];
	struct sg_dlp_verdict vd[16];
	size_t n_hits;
	struct sg_dlp_result res;
};

static void
fake_value(struct fake *f, struct sg_json_val root, uint32_t idx, const char *ptr)
{
	struct sg_json_val v;
	size_t len;
	assert_true(sg_json_pointer(root, ptr, &v));
	if (sg_json_type(v) == SG_JSON_STRING) {
		const char *s = sg_json_string(v, &len);
		assert_true(len < sizeof(f->texts[idx]));
		memcpy(f->texts[idx], s, len + 1);
	} else {
		len = (size_t)snprintf(f->texts[idx], sizeof(f->texts[idx]), "%lld",
		                       (long long)sg_json_int(v));
	}
	f->vals[idx] = (struct sg_dlp_value){.v = v, .text = f->texts[idx], .len = (uint32_t)len};
	if (f->res.n_values <= idx)
		f->res.n_values = idx + 1;
	f->res.values = f->vals;
}

static void
fake_hit(struct fake *f, uint32_t idx, uint32_t start, uint32_t end, const char *cls,
         enum sg_dlp_action a)
{
	size_t i = f->n_hits++;
	f->hits[i] = (struct sg_dlp_hit){"test", cls, idx, start, end, 90};
	f->vd[i] = (struct sg_dlp_verdict){&f->hits[i], a};
}

static char *
rewrite(struct sg_json_val root, struct fake *f, const struct sg_dlp_policy *p,
        const struct sg_dlp_token_key *key, const char *const *allow, size_t n_allow)
{
	struct sg_jbuf out = {0};
	int rc = sg_dlp_rewrite(root, &f->res, f->vd, f->n_hits, p, key, allow, n_allow, &out);
	char *s = rc == 0 ? strdup(out.data) : NULL;
	if (rc != 0)
		assert_true(out.len == 0);
	sg_jbuf_release(&out);
	return s;
}

static struct sg_json_val
parse(struct sg_json_doc *doc, const char *text)
{
	assert_int_equal(sg_json_parse(text, strlen(text), DEPTH, doc, NULL), SG_JSON_OK);
	return doc->root;
}

/* Masks one whole string value of `cls` and returns the masked text. */
static void
assert_masked(const struct sg_dlp_policy *p, const char *cls, const char *value, const char *want)
{
	char text[256];
	struct sg_json_doc doc;
	struct fake f = {0};
	snprintf(text, sizeof(text), "{\"v\":\"%s\"}", value);
	struct sg_json_val root = parse(&doc, text);
	fake_value(&f, root, 0, "/v");
	fake_hit(&f, 0, 0, f.vals[0].len, cls, SG_DLP_MASK);
	char *got = rewrite(root, &f, p, NULL, NULL, 0);
	char expect[256];
	snprintf(expect, sizeof(expect), "{\"v\":\"%s\"}", want);
	assert_non_null(got);
	assert_string_equal(got, expect);
	free(got);
}

static void
test_mask_widths(void **state)
{
	(void)state;
	assert_masked(NULL, "financial.card", "4111 1111 1111 1111", "**** **** **** 1111");
	assert_masked(NULL, "financial.card", "4111-1111-1111-1111", "****-****-****-1111");
	assert_masked(NULL, "financial.card", "4111111111111111", "************1111");
	assert_masked(NULL, "financial.iban", "DE89 3704 0044 0532 0130 00",
	              "**** **** **** **** **30 00");
	assert_masked(NULL, "pii.ssn", "123-45-6789", "***-**-6789");
	assert_masked(NULL, "pii.phone", "+1 415-555-0199", "** ***-***-**99");
	assert_masked(NULL, "pii.email", "ada.lovelace@example.com", "************@example.com");
	assert_masked(NULL, "pii.email", "not an address", "*** ** *******");
	assert_masked(NULL, "pii.ip", "10.1.2.3", "********");
	/* Per character, not per byte: "é" is one star. */
	assert_masked(NULL, "pii.name", "Zoé", "***");
	/* Never more than half kept: a 5-digit value keeps 2 of the card's 4. */
	assert_masked(NULL, "financial.card", "12345", "***45");
	struct sg_policy *p = compile_ok("kind: policy\nname: dlp\ndlp:\n  mask:\n"
	                                 "    pii.email: { keep_last: 0 }\n"
	                                 "    financial.card: { keep_last: 6 }\n");
	assert_masked(sg_policy_dlp(p), "pii.email", "ada@example.com", "***************");
	assert_masked(sg_policy_dlp(p), "financial.card", "4111111111111111", "**********111111");
	sg_policy_free(p);
}

static void
test_redact_and_numbers(void **state)
{
	(void)state;
	struct sg_json_doc doc;
	struct fake f = {0};
	struct sg_json_val root =
	    parse(&doc, "{\"note\":\"card 4111111111111111 ok\",\"n\":4111111111111111,\"k\":7,"
	                "\"m\":123456789}");
	fake_value(&f, root, 0, "/note");
	fake_value(&f, root, 1, "/n");
	fake_value(&f, root, 3, "/m");
	fake_hit(&f, 0, 5, 21, "financial.card", SG_DLP_REDACT);
	fake_hit(&f, 1, 0, 16, "financial.card", SG_DLP_MASK);
	fake_hit(&f, 3, 0, 9, "pii.ssn", SG_DLP_ALERT); /* alert changes nothing */
	char *got = rewrite(root, &f, NULL, NULL, NULL, 0);
	assert_non_null(got);
	assert_string_equal(got, "{\"note\":\"card [REDACTED:financial.card] ok\","
	                         "\"n\":\"************1111\",\"k\":7,\"m\":123456789}");
	free(got);
}

static void
test_overlapping_spans(void **state)
{
	(void)state;
	struct sg_json_doc doc;
	struct fake f = {0};
	/*            0123456789012345678901234567890123456 */
	const char *v = "{\"v\":\"ada@example.com 4111111111111111 x\"}";
	struct sg_json_val root = parse(&doc, v);
	fake_value(&f, root, 0, "/v");
	fake_hit(&f, 0, 0, 15, "pii.email", SG_DLP_MASK);
	fake_hit(&f, 0, 16, 32, "financial.card", SG_DLP_MASK);
	/* A weaker alert and a stronger redaction over the card: redaction wins. */
	fake_hit(&f, 0, 16, 32, "pii.phone", SG_DLP_ALERT);
	fake_hit(&f, 0, 20, 32, "secret.generic", SG_DLP_REDACT);
	char *got = rewrite(root, &f, NULL, NULL, NULL, 0);
	assert_non_null(got);
	assert_string_equal(got, "{\"v\":\"***@example.com ****[REDACTED:secret.generic] x\"}");
	free(got);
}

static void
test_tokenize(void **state)
{
	(void)state;
	struct sg_dlp_token_key k, other;
	struct sg_vault_key vk;
	unsigned char raw[SG_VAULT_KEY_LEN];
	memset(raw, 7, sizeof(raw));
	sg_vault_key_from(&vk, raw);
	sg_dlp_token_key_derive(&k, &vk);
	raw[0] = 8;
	sg_vault_key_from(&vk, raw);
	sg_dlp_token_key_derive(&other, &vk);
	assert_memory_not_equal(k.k, other.k, sizeof(k.k));

	char t1[256], t2[256], t3[256], cls[64], val[64];
	size_t len = 0;
	assert_int_equal(
	    sg_dlp_tokenize(&k, "financial.card", "4111111111111111", 16, t1, sizeof(t1)), 0);
	assert_int_equal(
	    sg_dlp_tokenize(&k, "financial.card", "4111111111111111", 16, t2, sizeof(t2)), 0);
	assert_string_equal(t1, t2); /* stable */
	assert_memory_equal(t1, "tok_", 4);
	assert_null(strchr(t1, '=')); /* base64url, no padding */
	assert_null(strpbrk(t1, "+/"));
	assert_int_equal(sg_dlp_tokenize(&k, "pii.ssn", "4111111111111111", 16, t3, sizeof(t3)), 0);
	assert_string_not_equal(t1, t3); /* the class is part of what is sealed */
	assert_int_equal(
	    sg_dlp_tokenize(&other, "financial.card", "4111111111111111", 16, t3, sizeof(t3)), 0);
	assert_string_not_equal(t1, t3);

	assert_int_equal(sg_dlp_detokenize(&k, t1, cls, sizeof(cls), val, sizeof(val), &len), 0);
	assert_string_equal(cls, "financial.card");
	assert_int_equal(len, 16);
	assert_string_equal(val, "4111111111111111");
	/* Another key's token, a changed character, a cut token, no prefix: refused. */
	assert_int_equal(sg_dlp_detokenize(&k, t3, cls, sizeof(cls), val, sizeof(val), &len), -1);
	for (size_t i = 4; i < strlen(t1); i++) {
		strcpy(t2, t1);
		t2[i] = t2[i] == 'A' ? 'B' : 'A';
		assert_int_equal(
		    sg_dlp_detokenize(&k, t2, cls, sizeof(cls), val, sizeof(val), &len), -1);
	}
	strcpy(t2, t1);
	t2[strlen(t2) - 4] = '\0';
	assert_int_equal(sg_dlp_detokenize(&k, t2, cls, sizeof(cls), val, sizeof(val), &len), -1);
	assert_int_equal(sg_dlp_detokenize(&k, t1 + 4, cls, sizeof(cls), val, sizeof(val), &len),
	                 -1);
	assert_int_equal(sg_dlp_detokenize(&k, "tok_", cls, sizeof(cls), val, sizeof(val), &len),
	                 -1);
	/* Buffers too small: -1, never a cut value. */
	assert_int_equal(sg_dlp_detokenize(&k, t1, cls, sizeof(cls), val, 16, &len), -1);
	assert_int_equal(sg_dlp_detokenize(&k, t1, cls, 8, val, sizeof(val), &len), -1);
	assert_int_equal(sg_dlp_tokenize(&k, "financial.card", "4111111111111111", 16, t3, 20), -1);
}

static void
test_tokenize_rewrite(void **state)
{
	(void)state;
	struct sg_dlp_token_key k;
	memset(k.k, 3, sizeof(k.k));
	struct sg_json_doc doc;
	struct fake f = {0};
	struct sg_json_val root = parse(&doc, "{\"a\":\"x 123-45-6789\",\"b\":123456789}");
	fake_value(&f, root, 0, "/a");
	fake_value(&f, root, 1, "/b");
	fake_hit(&f, 0, 2, 13, "pii.ssn", SG_DLP_TOKENIZE);
	fake_hit(&f, 1, 0, 9, "pii.ssn", SG_DLP_TOKENIZE);
	assert_null(rewrite(root, &f, NULL, NULL, NULL, 0)); /* no key: refused */
	char *got = rewrite(root, &f, NULL, &k, NULL, 0);
	assert_non_null(got);
	char tok[256], want[600], cls[32], val[32];
	size_t len;
	assert_int_equal(sg_dlp_tokenize(&k, "pii.ssn", "123-45-6789", 11, tok, sizeof(tok)), 0);
	assert_int_equal(sg_dlp_detokenize(&k, tok, cls, sizeof(cls), val, sizeof(val), &len), 0);
	assert_string_equal(val, "123-45-6789");
	char tok2[256];
	assert_int_equal(sg_dlp_tokenize(&k, "pii.ssn", "123456789", 9, tok2, sizeof(tok2)), 0);
	snprintf(want, sizeof(want), "{\"a\":\"x %s\",\"b\":\"%s\"}", tok, tok2);
	assert_string_equal(got, want);
	free(got);
}

/* ---- the rewrite: pointers, the allowlist ----------------------------------- */

static const char nested[] =
    "{\"id\":\"ct_1\",\"email\":\"ada@example.com\",\"name\":\"Ada\","
    "\"items\":[{\"id\":1,\"card\":\"4111111111111111\"},{\"id\":2,\"card\":\"5500005555555559\"}],"
    "\"meta\":{\"a\":\"x\",\"b\":\"123-45-6789\"},\"ok\":true,\"none\":null}";

static void
test_allowlist(void **state)
{
	(void)state;
	struct sg_json_doc doc;
	struct fake f = {0};
	struct sg_json_val root = parse(&doc, nested);
	/* Values in scanner order: id 0, email 1, name 2, items/0/id 3, items/0/card 4,
	 * items/1/id 5, items/1/card 6, meta/a 7, meta/b 8. */
	fake_value(&f, root, 1, "/email");
	fake_value(&f, root, 4, "/items/0/card");
	fake_value(&f, root, 6, "/items/1/card");
	fake_value(&f, root, 8, "/meta/b");
	fake_hit(&f, 1, 0, 15, "pii.email", SG_DLP_MASK);
	fake_hit(&f, 4, 0, 16, "financial.card", SG_DLP_MASK);
	fake_hit(&f, 6, 0, 16, "financial.card", SG_DLP_REDACT);
	fake_hit(&f, 8, 0, 11, "pii.ssn", SG_DLP_MASK);

	/* No allowlist: every field, every verdict applied at its own pointer. */
	char *got = rewrite(root, &f, NULL, NULL, NULL, 0);
	assert_non_null(got);
	assert_string_equal(got, "{\"id\":\"ct_1\",\"email\":\"***@example.com\",\"name\":\"Ada\","
	                         "\"items\":[{\"id\":1,\"card\":\"************1111\"},{\"id\":2,"
	                         "\"card\":\"[REDACTED:financial.card]\"}],"
	                         "\"meta\":{\"a\":\"x\",\"b\":\"***-**-6789\"},\"ok\":true,"
	                         "\"none\":null}");
	free(got);

	/*
	 * The entry for every item's id keeps "/items" (a prefix of it) and each
	 * id; "/meta" keeps all under it, so its verdict, after removed members,
	 * still lands.
	 */
	static const char *const allow[] = {"/id", "/items/*/id", "/meta"};
	got = rewrite(root, &f, NULL, NULL, allow, 3);
	assert_non_null(got);
	assert_string_equal(got, "{\"id\":\"ct_1\",\"items\":[{\"id\":1},{\"id\":2}],"
	                         "\"meta\":{\"a\":\"x\",\"b\":\"***-**-6789\"}}");
	free(got);

	static const char *const allow2[] = {"/meta/*", "/items/1"};
	got = rewrite(root, &f, NULL, NULL, allow2, 2);
	assert_non_null(got);
	assert_string_equal(got,
	                    "{\"items\":[{},{\"id\":2,\"card\":\"[REDACTED:financial.card]\"}],"
	                    "\"meta\":{\"a\":\"x\",\"b\":\"***-**-6789\"}}");
	free(got);

	/* An empty list shows nothing; the whole document ("") shows all. */
	got = rewrite(root, &f, NULL, NULL, allow, 0);
	assert_string_equal(got, "{}");
	free(got);
	static const char *const all[] = {""};
	got = rewrite(root, &f, NULL, NULL, all, 1);
	assert_non_null(strstr(got, "\"ok\":true"));
	free(got);
}

static void
test_escaped_pointers(void **state)
{
	(void)state;
	struct sg_json_doc doc;
	struct fake f = {0};
	struct sg_json_val root = parse(&doc, "{\"a/b\":{\"c~d\":\"123-45-6789\"},\"x\":\"y\"}");
	fake_value(&f, root, 0, "/a~1b/c~0d");
	fake_hit(&f, 0, 0, 11, "pii.ssn", SG_DLP_REDACT);
	static const char *const allow[] = {"/a~1b/c~0d"};
	char *got = rewrite(root, &f, NULL, NULL, allow, 1);
	assert_non_null(got);
	assert_string_equal(got, "{\"a/b\":{\"c~d\":\"[REDACTED:pii.ssn]\"}}");
	free(got);
}

/* A result from another document must not mask whatever sits at its indexes. */
static void
test_foreign_result(void **state)
{
	(void)state;
	struct sg_json_doc doc;
	struct fake f = {0};
	struct sg_json_val root = parse(&doc, "{\"a\":\"123-45-6789\",\"b\":\"z\"}");
	fake_value(&f, root, 1, "/a"); /* index 1 is "/b" */
	fake_hit(&f, 1, 0, 1, "pii.ssn", SG_DLP_MASK);
	assert_null(rewrite(root, &f, NULL, NULL, NULL, 0));
}

/* The real scanner's numbering and the rewrite's walk agree. */
static void
test_with_scanner(void **state)
{
	(void)state;
	char err[512];
	struct sg_dlp_db *db = sg_dlp_db_compile(NULL, 0, err, sizeof(err));
	assert_non_null(db);
	struct sg_dlp_scanner *sc = sg_dlp_scanner_new();
	struct sg_json_doc doc;
	struct sg_json_val root = parse(
	    &doc,
	    "{\"list\":[{\"who\":\"x\",\"mail\":\"ada@example.com\"},{\"n\":4111111111111111}],"
	    "\"note\":\"ssn 123-45-6789\",\"flag\":false,\"drop\":\"grace@example.org\"}");
	struct sg_dlp_result res;
	assert_int_equal(sg_dlp_scan_json(sc, db, root, NULL, 0, &res), 0);
	struct sg_dlp_verdict vd[8];
	size_t n = 0;
	for (size_t i = 0; i < res.n_hits && n < 8; i++)
		vd[n++] = (struct sg_dlp_verdict){&res.hits[i], SG_DLP_MASK};
	assert_true(n >= 4);
	static const char *const allow[] = {"/list", "/note"};
	struct sg_jbuf out = {0};
	assert_int_equal(sg_dlp_rewrite(root, &res, vd, n, NULL, NULL, allow, 2, &out), 0);
	assert_string_equal(out.data,
	                    "{\"list\":[{\"who\":\"x\",\"mail\":\"***@example.com\"},"
	                    "{\"n\":\"************1111\"}],\"note\":\"ssn ***-**-6789\"}");
	sg_jbuf_release(&out);
	sg_dlp_scanner_free(sc);
	sg_dlp_db_free(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_example_policy),
	    cmocka_unit_test(test_no_section),
	    cmocka_unit_test(test_policy_errors),
	    cmocka_unit_test(test_two_documents),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_action_selection),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_mask_keep),
	    cmocka_unit_test(test_mask_widths),
	    cmocka_unit_test(test_redact_and_numbers),
	    cmocka_unit_test(test_overlapping_spans),
	    cmocka_unit_test(test_tokenize),
	    cmocka_unit_test(test_tokenize_rewrite),
	    cmocka_unit_test(test_allowlist),
	    cmocka_unit_test(test_escaped_pointers),
	    cmocka_unit_test(test_foreign_result),
	    cmocka_unit_test(test_with_scanner),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
