/*
 * test_failalloc: fault loops over every loader and one whole governed call,
 * as SQLite and Lua test themselves.  For n = 1, 2, ... the n-th allocation
 * fails (once, then in a second pass for good) until the operation runs
 * without reaching n.  Each run must end in a clean error or in exactly the
 * result of a run with memory to spare: never a crash, a leak, or a
 * half-built result that looks whole.
 *
 * What the allocator reaches is listed in ../support/sg_failalloc.h;
 * libfyaml's own allocations are out of its reach.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <cmocka.h>

#include "../support/sg_failalloc.h"
#include "core/sg_slab.h"
#include "json/sg_json.h"
#include "../support/sg_fixture.h"
#include "../support/sg_testcatalog.h"

#include "catalog/sg_template.h"
#include "path/sg_path.h"
#include "policy/sg_policy.h"
#include "upstream/sg_upreq.h"

#define MAX_POINTS 100000 /* no operation here comes near; a bound so a loop cannot hang */
#define EXAMPLES SG_SOURCE_ROOT "/examples"

/*
 * One operation under test.  `run` is called with the allocator armed and
 * keeps what it made in the context; `check` runs disarmed, asserts that
 * the outcome is a clean error or the reference result, and frees it.
 */
struct target {
	const char *name;
	void (*prepare)(void *ctx); /* NULL, or runs before each run, disarmed */
	void (*run)(void *ctx);
	void (*check)(void *ctx, size_t failures);
	void *ctx;
};

/* What every loop shares: the fixture, the example catalog and files. */
static struct {
	struct sg_fixture f;
	struct sg_catalog *cat;
	char *policy_text[2];
	char *connector_text[3];
	char *manifest, *lua;
	uint64_t clock;
} w;

static const char *const policy_files[] = {EXAMPLES "/policies/limits.yaml",
                                           EXAMPLES "/policies/roles.yaml"};
static const char *const connector_files[] = {EXAMPLES "/connectors/crm.yaml",
                                              EXAMPLES "/connectors/mail.yaml",
                                              EXAMPLES "/connectors/calendar.yaml"};

/*
 * Runs `t` with allocation 1, 2, ... failing until a run asks for fewer
 * allocations than the one armed.  Returns the number of allocation points.
 */
static size_t
fault_loop(const struct target *t, bool persistent)
{
	size_t n;
	bool trace = getenv("SG_FAILALLOC_TRACE") != NULL; /* which run a failure is in */
	/* A first run with memory to spare fills every cache the later ones would. */
	if (t->prepare)
		t->prepare(t->ctx);
	sg_failalloc_arm(SIZE_MAX, false);
	t->run(t->ctx);
	sg_failalloc_disarm();
	t->check(t->ctx, 0);
	if (trace)
		fprintf(stderr, "%s: %zu allocations\n", t->name, sg_failalloc_count());
	for (n = 1; n <= MAX_POINTS; n++) {
		size_t live = sg_failalloc_live_bytes();
		if (t->prepare)
			t->prepare(t->ctx);
		if (trace)
			fprintf(stderr, "%s: failing allocation %zu%s\n", t->name, n,
			        persistent ? " and every later one" : "");
		sg_failalloc_arm(n, persistent);
		t->run(t->ctx);
		sg_failalloc_disarm();
		size_t failures = sg_failalloc_failures();
		t->check(t->ctx, failures);
		if (sg_failalloc_live_bytes() != live) {
			sg_failalloc_report_leaks();
			fail_msg("%s: failing allocation %zu%s kept %zd more bytes", t->name, n,
			         persistent ? " and every later one" : "",
			         (ssize_t)(sg_failalloc_live_bytes() - live));
		}
		if (failures == 0)
			break;
	}
	assert_true(n <= MAX_POINTS);
	printf("%-24s %5zu allocation points, each failed %s\n", t->name, n - 1,
	       persistent ? "with every later one" : "alone");
	return n - 1;
}

static void
both_loops(const struct target *t)
{
	size_t once = fault_loop(t, false), forever = fault_loop(t, true);
	/* The same operation asks for the same allocations until the first refusal. */
	assert_int_equal(once, forever);
	assert_true(once > 0);
}

/* Equal strings, where a missing one fails the test instead of crashing it. */
static void
assert_same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

/* Equal JSON; the message shows both when they differ. */
static void
assert_same_json(const json_t *a, const json_t *b)
{
	if (a == NULL || b == NULL) {
		assert_ptr_equal(a, b);
		return;
	}
	if (!json_equal(a, b)) {
		char *x = json_dumps(a, JSON_SORT_KEYS), *y = json_dumps(b, JSON_SORT_KEYS);
		fail_msg("got %s, expected %s", x ? x : "?", y ? y : "?");
	}
}

/*
 * A warm thread allocates nothing for a body or a reply (its parser and its
 * slab have grown); each run starts cold, so the loops reach the points
 * where they grow.
 */
static void
cold_thread(void)
{
	sg_json_thread_release();
	sg_slab_release_thread();
}

/* Text the writer made, compared as JSON (NULL: none). */
static json_t *
text_json(const struct sg_jbuf *b)
{
	return b->len ? json_loadb(b->data, b->len, JSON_REJECT_DUPLICATES, NULL) : NULL;
}

static void
assert_same_text_json(const struct sg_jbuf *a, const json_t *b)
{
	json_t *x = text_json(a);
	if (a->len != 0 && x == NULL)
		fail_msg("the writer made text that is not JSON: %.*s", (int)a->len, a->data);
	assert_same_json(x, b);
	json_decref(x);
}

/* Field by field: a limit's padding and the bytes after its spec's NUL are noise. */
static void
assert_same_limit(const struct sg_limit *a, const struct sg_limit *b)
{
	assert_int_equal(a->gcra.emission_ns, b->gcra.emission_ns);
	assert_int_equal(a->gcra.burst, b->gcra.burst);
	assert_true(a->rate == b->rate);
	assert_int_equal(a->period_s, b->period_s);
	assert_string_equal(a->spec, b->spec);
}

static void
assert_same_schema(const struct sg_schema *a, const struct sg_schema *b)
{
	if (a == NULL || b == NULL) {
		assert_ptr_equal(a, b);
		return;
	}
	assert_same_json(sg_schema_json(a), sg_schema_json(b));
}

/* ---- diagnostics ------------------------------------------------------- */

/*
 * Every loader judges a file by whether the count of diagnostics grew, so
 * an error that cannot be stored must still be counted.
 */
static struct sg_diags diags;

static void
diags_run(void *ctx)
{
	(void)ctx;
	for (int i = 0; i < 12; i++)
		sg_diags_add(&diags, "roles.yaml", i + 1, 3, "error %d", i);
}

static void
diags_check(void *ctx, size_t failures)
{
	(void)ctx;
	char *buf = NULL;
	size_t len = 0;
	assert_true(diags.n >= 1);
	assert_true(diags.n <= 12);
	if (failures == 0)
		assert_int_equal(diags.n, 12);
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	sg_diags_print(&diags, f);
	fclose(f);
	/* The first error keeps its text, or says why it is missing. */
	assert_true(strstr(buf, "error 0\n") != NULL || strstr(buf, "out of memory") != NULL);
	free(buf);
	sg_diags_free(&diags);
}

static void
test_diags(void **state)
{
	(void)state;
	both_loops(&(struct target){"diagnostics", NULL, diags_run, diags_check, NULL});
}

/* ---- sandgate.yaml ------------------------------------------------------ */

static struct {
	const char *text; /* NULL: examples/sandgate.yaml */
	struct sg_config ref, c;
	struct sg_diags d;
	int rc;
} cfg;

/*
 * The defaults come first, as in serve, but outside the loop: they cannot
 * report a failure (sg_config_defaults() returns nothing).
 */
static void
config_prepare(void *ctx)
{
	(void)ctx;
	sg_config_defaults(&cfg.c);
}

/* Loads over the defaults. */
static void
config_run(void *ctx)
{
	(void)ctx;
	if (cfg.text == NULL)
		cfg.rc = sg_config_load(&cfg.c, EXAMPLES "/sandgate.yaml", &cfg.d);
	else
		cfg.rc =
		    sg_config_parse(&cfg.c, "sandgate.yaml", cfg.text, strlen(cfg.text), &cfg.d);
}

static void
config_check(void *ctx, size_t failures)
{
	(void)ctx;
	if (failures == 0 || cfg.rc == 0) {
		assert_int_equal(cfg.rc, 0);
		assert_non_null(cfg.c.data_dir);
		assert_string_equal(cfg.c.data_dir, cfg.ref.data_dir);
		struct sg_config a = cfg.c, b = cfg.ref;
		a.data_dir = b.data_dir = NULL;
		assert_memory_equal(&a, &b, sizeof(a));
	} else {
		assert_int_equal(cfg.rc, -1);
		assert_true(cfg.d.n > 0);
	}
	sg_config_free(&cfg.c);
	sg_diags_free(&cfg.d);
}

static void
config_loop(const char *name, const char *text)
{
	cfg.text = text;
	config_prepare(NULL);
	config_run(NULL);
	assert_int_equal(cfg.rc, 0);
	cfg.ref = cfg.c;
	sg_diags_free(&cfg.d);
	both_loops(&(struct target){name, config_prepare, config_run, config_check, NULL});
	sg_config_free(&cfg.ref);
}

static void
test_config(void **state)
{
	(void)state;
	config_loop("sandgate.yaml", NULL);
}

/* A file that leaves data_dir alone keeps the default's copy. */
static void
test_config_without_data_dir(void **state)
{
	(void)state;
	config_loop("config, no data_dir", "threads: 4\nlimits:\n  max_json_depth: 16\n");
}

/* ---- connectors --------------------------------------------------------- */

struct conn_case {
	size_t i; /* into connector_files */
	struct sg_connector *ref, *c;
	struct sg_diags d;
};

static void
connector_run(void *ctx)
{
	struct conn_case *k = ctx;
	const char *text = w.connector_text[k->i];
	k->c = sg_connector_parse(connector_files[k->i], text, strlen(text), 42, &k->d);
}

static void
assert_same_env(const struct sg_environment *a, const struct sg_environment *b)
{
	assert_int_equal(a->simulator, b->simulator);
	assert_int_equal(a->latency_ms, b->latency_ms);
	assert_same_str(a->base_url, b->base_url);
}

static void
assert_same_connector(const struct sg_connector *a, const struct sg_connector *b)
{
	assert_same_str(a->name, b->name);
	assert_same_str(a->version, b->version);
	assert_same_str(a->description, b->description);
	assert_same_str(a->auth, b->auth);
	assert_same_str(a->source, b->source);
	assert_same_env(&a->sandbox, &b->sandbox);
	assert_same_env(&a->live, &b->live);
	assert_same_limit(&a->upstream_limit, &b->upstream_limit);
	assert_int_equal(a->n_ops, b->n_ops);
	for (size_t i = 0; i < a->n_ops; i++) {
		const struct sg_operation *x = &a->ops[i], *y = &b->ops[i];
		assert_same_str(x->name, y->name);
		assert_same_str(x->description, y->description);
		assert_same_str(x->method, y->method);
		assert_same_str(x->path, y->path);
		assert_same_str(x->data_domain, y->data_domain);
		assert_true(x->cost == y->cost);
		assert_int_equal(x->weight, y->weight);
		assert_int_equal(x->idempotent, y->idempotent);
		assert_same_str(x->reported_weight, y->reported_weight);
		assert_same_schema(x->input, y->input);
		assert_same_schema(x->output, y->output);
		assert_same_json(x->examples, y->examples);
	}
}

static void
connector_check(void *ctx, size_t failures)
{
	struct conn_case *k = ctx;
	if (k->ref == NULL) { /* the reference run */
		sg_diags_print(&k->d, stderr);
		assert_non_null(k->c);
		assert_int_equal(k->d.n, 0);
		k->ref = k->c;
		k->c = NULL;
		return;
	}
	if (failures == 0)
		assert_non_null(k->c);
	if (k->c != NULL)
		assert_same_connector(k->c, k->ref);
	else
		assert_true(k->d.n > 0);
	sg_connector_free(k->c);
	k->c = NULL;
	sg_diags_free(&k->d);
}

static void
connector_loop(size_t i)
{
	struct conn_case k = {.i = i};
	both_loops(&(struct target){connector_files[i] + sizeof(EXAMPLES), NULL, connector_run,
	                            connector_check, &k});
	sg_connector_free(k.ref);
}

/*
 * Each run of a connector loop compiles every pattern again, which takes
 * Vectorscan long under ASan: crm's loops take minutes.  mail.yaml runs
 * always; SG_FAILALLOC_ALL=1 runs the other two as well.
 */
static void
test_connector_crm(void **state)
{
	(void)state;
	if (getenv("SG_FAILALLOC_ALL") == NULL)
		skip();
	connector_loop(0);
}

static void
test_connector_mail(void **state)
{
	(void)state;
	connector_loop(1);
}

static void
test_connector_calendar(void **state)
{
	(void)state;
	if (getenv("SG_FAILALLOC_ALL") == NULL)
		skip();
	connector_loop(2);
}

/* ---- policies ----------------------------------------------------------- */

static struct {
	struct sg_policy *ref, *p;
	struct sg_diags d;
} pol;

static void
policy_run(void *ctx)
{
	(void)ctx;
	struct sg_policy_source src[2];
	for (size_t i = 0; i < 2; i++)
		src[i] = (struct sg_policy_source){policy_files[i], w.policy_text[i],
		                                   strlen(w.policy_text[i])};
	pol.p = sg_policy_compile(src, 2, w.cat, &pol.d);
}

static void
assert_same_rule_list(const struct sg_rule_list *a, const struct sg_rule_list *b)
{
	assert_int_equal(a->n, b->n);
	for (uint8_t i = 0; i < a->n; i++)
		assert_same_str(a->v[i]->name, b->v[i]->name);
}

static void
assert_same_role(const struct sg_role *a, const struct sg_role *b, size_t n_ops, size_t n_conn)
{
	assert_same_str(a->name, b->name);
	assert_true((a->description == NULL) == (b->description == NULL));
	if (a->description)
		assert_same_str(a->description, b->description);
	assert_int_equal(a->default_class, b->default_class);
	assert_int_equal(a->max_class, b->max_class);
	for (int m = 0; m < SG_MODE_COUNT; m++) {
		assert_int_equal(a->mode_allowed[m], b->mode_allowed[m]);
		assert_same_limit(&a->limit[m], &b->limit[m]);
		assert_true((a->allowed[m] == NULL) == (b->allowed[m] == NULL));
		if (a->allowed[m])
			assert_memory_equal(a->allowed[m], b->allowed[m], n_ops);
		assert_true((a->connector_limit[m] == NULL) == (b->connector_limit[m] == NULL));
		for (size_t i = 0; a->connector_limit[m] && i < n_conn; i++)
			assert_same_limit(&a->connector_limit[m][i], &b->connector_limit[m][i]);
		assert_true((a->rules[m] == NULL) == (b->rules[m] == NULL));
		for (size_t i = 0; a->rules[m] && i < n_ops; i++)
			assert_same_rule_list(&a->rules[m][i], &b->rules[m][i]);
	}
}

static void
assert_same_policy(const struct sg_policy *a, const struct sg_policy *b)
{
	assert_int_equal(a->n_roles, b->n_roles);
	assert_int_equal(a->n_ops, b->n_ops);
	assert_int_equal(a->n_connectors, b->n_connectors);
	for (size_t i = 0; i < a->n_roles; i++)
		assert_same_role(&a->roles[i], &b->roles[i], a->n_ops, a->n_connectors);
	assert_int_equal(a->n_rules, b->n_rules);
	for (size_t i = 0; i < a->n_rules; i++) {
		const struct sg_rule *x = a->rules[i], *y = b->rules[i];
		assert_same_str(x->name, y->name);
		assert_int_equal(x->who, y->who);
		assert_int_equal(x->what, y->what);
		assert_int_equal(x->shadow, y->shadow);
		assert_int_equal(x->concurrency, y->concurrency);
		assert_int_equal(x->n_windows, y->n_windows);
		for (size_t k = 0; k < x->n_windows; k++)
			assert_same_limit(&x->windows[k], &y->windows[k]);
		assert_memory_equal(x->share_permille, y->share_permille,
		                    sizeof(x->share_permille));
		assert_true((x->stats == NULL) == (y->stats == NULL));
	}
	assert_true((a->budgets == NULL) == (b->budgets == NULL));
	if (a->budgets) {
		assert_same_str(a->budgets->currency, b->budgets->currency);
		assert_same_str(a->budgets->ask, b->budgets->ask);
		assert_int_equal(a->budgets->warn_pct, b->budgets->warn_pct);
		assert_memory_equal(a->budgets->fallback, b->budgets->fallback,
		                    sizeof(a->budgets->fallback));
		assert_memory_equal(a->budgets->n_named, b->budgets->n_named,
		                    sizeof(a->budgets->n_named));
	}
}

static void
policy_check(void *ctx, size_t failures)
{
	(void)ctx;
	if (failures == 0)
		assert_non_null(pol.p);
	if (pol.p != NULL)
		assert_same_policy(pol.p, pol.ref);
	else
		assert_true(pol.d.n > 0);
	sg_policy_free(pol.p);
	pol.p = NULL;
	sg_diags_free(&pol.d);
}

static void
test_policies(void **state)
{
	(void)state;
	policy_run(NULL);
	assert_non_null(pol.p);
	pol.ref = pol.p;
	pol.p = NULL;
	both_loops(&(struct target){"policies", NULL, policy_run, policy_check, NULL});
	sg_policy_free(pol.ref);
}

/* ---- templates ---------------------------------------------------------- */

static struct {
	struct sg_template *ref, *t;
	struct sg_diags d;
} tpl;

static void
template_run(void *ctx)
{
	(void)ctx;
	tpl.t = sg_template_parse("template.yaml", w.manifest, strlen(w.manifest), "main.lua",
	                          w.lua, strlen(w.lua), w.cat, &tpl.d);
}

static void
assert_same_template(const struct sg_template *a, const struct sg_template *b)
{
	assert_non_null(a->name);
	assert_same_str(a->name, b->name);
	assert_same_str(a->version, b->version);
	assert_same_str(a->description, b->description);
	assert_same_schema(a->input, b->input);
	assert_int_equal(a->n_caps, b->n_caps);
	for (size_t i = 0; i < a->n_caps; i++) {
		assert_non_null(a->capabilities[i]);
		assert_same_str(a->capabilities[i], b->capabilities[i]);
		assert_ptr_equal(a->ops[i], b->ops[i]);
	}
	assert_int_equal(a->limits.wall_ms, b->limits.wall_ms);
	assert_int_equal(a->limits.cpu_ms, b->limits.cpu_ms);
	assert_int_equal(a->limits.memory_bytes, b->limits.memory_bytes);
	assert_int_equal(a->limits.instructions, b->limits.instructions);
	assert_int_equal(a->limits.calls, b->limits.calls);
	assert_non_null(a->source);
	assert_int_equal(a->source_len, b->source_len);
	assert_memory_equal(a->source, b->source, a->source_len);
}

static void
template_check(void *ctx, size_t failures)
{
	(void)ctx;
	if (failures == 0)
		assert_non_null(tpl.t);
	if (tpl.t != NULL)
		assert_same_template(tpl.t, tpl.ref);
	else
		assert_true(tpl.d.n > 0);
	sg_template_free(tpl.t);
	tpl.t = NULL;
	sg_diags_free(&tpl.d);
}

static void
test_template(void **state)
{
	(void)state;
	template_run(NULL);
	assert_non_null(tpl.t);
	tpl.ref = tpl.t;
	tpl.t = NULL;
	both_loops(&(struct target){"template", NULL, template_run, template_check, NULL});
	sg_template_free(tpl.ref);
}

/* ---- request bodies ----------------------------------------------------- */

struct body_case {
	const char *body;
	struct sg_req r;
	enum sg_step_rc rc, ref_rc;
	int ref_status;
	char ref_detail[512];
	json_t *ref_ext;
};

static const struct sg_operation *
example_op(const char *connector, const char *op)
{
	const struct sg_connector *c = sg_catalog_find(w.f.snap->defs->catalog, connector);
	assert_non_null(c);
	const struct sg_operation *o = sg_connector_op(c, op);
	assert_non_null(o);
	return o;
}

static void
body_prepare(void *ctx)
{
	(void)ctx;
	cold_thread();
}

static void
body_run(void *ctx)
{
	struct body_case *b = ctx;
	sg_req_init(&b->r, &w.f.gw, w.f.snap);
	b->r.op = example_op("crm", "create_contact");
	b->r.body = b->body;
	b->r.body_len = strlen(b->body);
	b->rc = sg_validate_body(&b->r, b->r.op->input);
}

/*
 * Out of memory is the gateway's failure, never the caller's: a 500, or
 * the very answer a run with memory to spare gives.  The step sets the 500
 * itself, because template runs answer from sg_validate_body() directly.
 */
static bool
is_internal_error(enum sg_step_rc rc, const struct sg_req *r)
{
	return rc == SG_STEP_STOP && r->status == 500 && r->problem != NULL && r->detail[0];
}

static void
body_check(void *ctx, size_t failures)
{
	struct body_case *b = ctx;
	if (b->ref_status == 0) { /* the reference run */
		b->ref_rc = b->rc;
		b->ref_status = b->r.status;
		memcpy(b->ref_detail, b->r.detail, sizeof(b->ref_detail));
		b->ref_ext = text_json(&b->r.problem_ext);
	} else if (failures == 0 || !is_internal_error(b->rc, &b->r)) {
		assert_int_equal(b->rc, b->ref_rc);
		assert_int_equal(b->r.status, b->ref_status);
		assert_string_equal(b->r.detail, b->ref_detail);
		assert_same_text_json(&b->r.problem_ext, b->ref_ext);
	}
	sg_req_finish(&b->r);
	cold_thread(); /* what the run made is back where the next run starts */
}

static void
body_loop(const char *name, const char *body)
{
	struct body_case b = {.body = body};
	both_loops(&(struct target){name, body_prepare, body_run, body_check, &b});
	json_decref(b.ref_ext);
}

static void
test_body_valid(void **state)
{
	(void)state;
	body_loop("body, valid",
	          "{\"email\":\"ada@example.com\",\"name\":\"Ada Lovelace\",\"company\":\"AE\"}");
}

static void
test_body_invalid(void **state)
{
	(void)state;
	body_loop("body, invalid", "{\"email\":\"not an address\",\"name\":\"\",\"extra\":[1,2]}");
}

/* No body is {}, which create_contact refuses. */
static void
test_body_empty(void **state)
{
	(void)state;
	body_loop("body, empty", "");
}

/* ---- one whole governed call -------------------------------------------- */

struct call_case {
	const char *connector, *operation, *body;
	int spend;            /* calls made just before, to empty a bucket */
	const char *hintless; /* a detail also accepted: the same without a "did you mean" */
	uint64_t now;
	struct sg_req r;
	char auth[128];
	struct sg_jbuf problem_text; /* written under the fault, read after */
	json_t *problem;
	int ref_status;
	char ref_detail[512];
	json_t *ref_output, *ref_problem;
};

static void call_run(void *ctx);

/* Ten seconds on, every bucket has refilled; then `spend` calls empty one again. */
static void
call_prepare(void *ctx)
{
	struct call_case *c = ctx;
	c->now = (w.clock += 10000000000ull);
	for (int i = 0; i < c->spend; i++) {
		call_run(c);
		assert_int_equal(c->r.status, 200);
		sg_req_finish(&c->r);
	}
	cold_thread();
}

/* What a transport does with one request, from arrival to reply. */
static void
call_run(void *ctx)
{
	struct call_case *c = ctx;
	sg_req_init(&c->r, &w.f.gw, w.f.snap);
	c->r.authorization = c->auth;
	c->r.connector_name = c->connector;
	c->r.operation_name = c->operation;
	c->r.content_type = "application/json";
	c->r.body = c->body;
	c->r.body_len = strlen(c->body);
	c->r.now_ns = c->now;
	c->r.wall_s = 1700000000;
	sg_path_begin(&c->r);
	sg_path_run(&c->r);
	sg_step_record(&c->r, 1); /* sg_path_finish()'s first half; call_check() does the rest */
	if (c->r.status != 200 && sg_req_problem_write(&c->r, &c->problem_text) != 0)
		c->problem_text.len = 0;
}

static void
call_check(void *ctx, size_t failures)
{
	struct call_case *c = ctx;
	c->problem = text_json(&c->problem_text);
	sg_jbuf_release(&c->problem_text);
	if (c->ref_status == 0) {
		c->ref_status = c->r.status;
		memcpy(c->ref_detail, c->r.detail, sizeof(c->ref_detail));
		c->ref_output = text_json(&c->r.output);
		c->ref_problem = json_incref(c->problem);
	} else if (failures == 0 || c->r.status < 500) {
		assert_int_equal(c->r.status, c->ref_status);
		if (c->hintless == NULL || strcmp(c->r.detail, c->hintless) != 0)
			assert_string_equal(c->r.detail, c->ref_detail);
		assert_same_text_json(&c->r.output, c->ref_output);
	} else {
		assert_non_null(c->r.problem);
		assert_string_not_equal(c->r.detail, "");
	}
	/* Without memory the problem body may be missing, never wrong. */
	if (c->problem != NULL && c->ref_problem != NULL && c->r.status == c->ref_status &&
	    strcmp(c->r.detail, c->ref_detail) == 0)
		assert_same_json(c->problem, c->ref_problem);
	if (failures == 0 && c->ref_problem != NULL)
		assert_non_null(c->problem);
	json_decref(c->problem);
	c->problem = NULL;
	sg_req_finish(&c->r);
	cold_thread(); /* what the run made is back where the next run starts */
}

static void
call_loop(const char *name, struct call_case *c, size_t key)
{
	snprintf(c->auth, sizeof(c->auth), "Bearer %s", w.f.keys[key]);
	both_loops(&(struct target){name, call_prepare, call_run, call_check, c});
	json_decref(c->ref_output);
	json_decref(c->ref_problem);
}

static void
test_governed_call(void **state)
{
	(void)state;
	/* keys[0] is an explorer's, who may create CRM contacts in sandbox mode. */
	struct call_case c = {
	    .connector = "crm",
	    .operation = "create_contact",
	    .body = "{\"email\":\"ada@example.com\",\"name\":\"Ada Lovelace\"}",
	};
	call_loop("governed call", &c, 0);
	assert_int_equal(c.ref_status, 200);
}

static void
test_refused_call(void **state)
{
	(void)state;
	struct call_case c = {
	    .connector = "crm",
	    .operation = "create_contact",
	    .body = "{\"email\":\"ada@example.com\",\"name\":\"\"}",
	};
	call_loop("refused call", &c, 0);
	assert_int_equal(c.ref_status, 400);
}

static void
test_throttled_call(void **state)
{
	(void)state;
	/* An explorer may send 1 mail a second with bursts of 2 (roles.yaml): the third waits. */
	struct call_case c = {
	    .connector = "mail",
	    .operation = "send",
	    .body = "{\"to\":[\"ada@example.com\"],\"subject\":\"Hello\",\"body\":\"Hi.\"}",
	    .spend = 2,
	};
	call_loop("throttled call", &c, 0);
	assert_int_equal(c.ref_status, 429);
}

static void
test_unknown_connector(void **state)
{
	(void)state;
	struct call_case c = {
	    .connector = "crmm",
	    .operation = "create_contact",
	    .body = "{}",
	    .hintless = "there is no connector \"crmm\"",
	};
	call_loop("unknown connector", &c, 0);
	assert_int_equal(c.ref_status, 404);
	assert_string_equal(c.ref_detail, "there is no connector \"crmm\" (did you mean \"crm\"?)");
}

/*
 * Allocations one call makes from arrival to release, once the thread has
 * served the same call before: its buffers come from the thread's slab.
 */
static size_t
warm_call_allocations(struct call_case *c, int want_status)
{
	snprintf(c->auth, sizeof(c->auth), "Bearer %s", w.f.keys[0]);
	for (int i = 0; i < 4; i++) {
		bool measured = i == 3;
		c->now = (w.clock += 10000000000ull);
		if (measured)
			sg_failalloc_arm(SIZE_MAX, false);
		call_run(c);
		assert_int_equal(c->r.status, want_status);
		sg_jbuf_release(&c->problem_text);
		sg_req_finish(&c->r);
		if (measured)
			sg_failalloc_disarm();
	}
	return sg_failalloc_count();
}

static void
test_a_warm_call_allocates_nothing(void **state)
{
	(void)state;
	struct call_case allowed = {
	    .connector = "crm",
	    .operation = "create_contact",
	    .body = "{\"email\":\"ada@example.com\",\"name\":\"Ada Lovelace\"}",
	};
	assert_int_equal(warm_call_allocations(&allowed, 200), 0);
	struct call_case invalid = {
	    .connector = "crm",
	    .operation = "create_contact",
	    .body = "{\"email\":\"ada@example.com\",\"name\":\"\"}",
	};
	assert_int_equal(warm_call_allocations(&invalid, 400), 0);
}

/* ---- upstream requests --------------------------------------------------- */

/* "k 1" 33 times, spaced, as the URL carries it. */
#define K1 "k%201%20"
#define KEY_33                                                                                     \
	K1 K1 K1 K1 K1 K1 K1 K1 K1 K1 K1 K1 K1 K1 K1 K1 K1 K1 K1 K1 K1 K1 K1 K1 K1 K1 K1 K1 K1 K1 \
	    K1 K1 "k%201"

static struct {
	int rc[3]; /* get with a query, post with a body, the credential's query parameter */
	/* Copies in place: a result kept on the heap would count as a leak. */
	char url[2][1024], body[128];
	size_t n_headers[2];
} up;

static int
upreq_one(const char *op, const char *input, struct sg_upreq *rq)
{
	const struct sg_connector *c = sg_catalog_find(w.cat, "crm");
	const struct sg_upreq_caller_header h[] = {{"X-Request-Id", "r-1"}};
	char err[160];
	return sg_upreq_build(rq, c, sg_connector_op(c, op), &c->live, input, strlen(input),
	                      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", h, 1, err,
	                      sizeof(err), NULL);
}

static void
upreq_run(void *ctx)
{
	(void)ctx;
	struct sg_upreq rq[2];
	memset(&up, 0, sizeof(up));
	up.rc[0] =
	    upreq_one("get_contact", "{\"id\":\"c%41 1\",\"expand\":[\"a\",{\"b\":1}]}", &rq[0]);
	up.rc[1] = upreq_one("create_contact", "{\"email\":\"a@b.test\",\"name\":\"Ada\"}", &rq[1]);
	/* A key long enough that its encoding outgrows the URL's buffer more than once (KEY_33). */
	up.rc[2] = up.rc[0] == 0 ? sg_upreq_add_query(&rq[0], "api_key",
	                                              "k 1 k 1 k 1 k 1 k 1 k 1 k 1 k 1 k 1 k 1 k 1 "
	                                              "k 1 k 1 k 1 k 1 k 1 k 1 k 1 k 1 k 1 k 1 k 1 "
	                                              "k 1 k 1 k 1 k 1 k 1 k 1 k 1 k 1 k 1 k 1 k 1")
	                          : -1;
	for (int i = 0; i < 2; i++) {
		if (up.rc[i] != 0) {
			/* A refusal leaves nothing behind. */
			assert_null(rq[i].url);
			assert_int_equal(rq[i].n_headers, 0);
			continue;
		}
		up.n_headers[i] = rq[i].n_headers;
		snprintf(up.url[i], sizeof(up.url[i]), "%s", rq[i].url);
		if (i == 1 && rq[i].body)
			snprintf(up.body, sizeof(up.body), "%s", rq[i].body);
		sg_upreq_release(&rq[i]);
	}
}

static void
upreq_check(void *ctx, size_t failures)
{
	(void)ctx;
	static const char *const want[2] = {
	    "https://crm.example.com/api/v2/contacts/c%2541%201?expand=a&expand=%7B%22b%22%3A1%7D"
	    "&api_key=" KEY_33,
	    "https://crm.example.com/api/v2/contacts"};
	if (failures != 0)
		return; /* each part is checked whole or refused cleanly in upreq_run */
	for (int i = 0; i < 3; i++)
		assert_int_equal(up.rc[i], 0);
	for (int i = 0; i < 2; i++)
		assert_same_str(up.url[i], want[i]);
	assert_same_str(up.body, "{\"email\":\"a@b.test\",\"name\":\"Ada\"}");
	/* crm forwards no caller header: User-Agent, Accept, traceparent (+ Content-Type). */
	assert_int_equal(up.n_headers[0], 3);
	assert_int_equal(up.n_headers[1], 4);
}

static void
test_upreq(void **state)
{
	(void)state;
	const struct target t = {"upstream request", NULL, upreq_run, upreq_check, NULL};
	both_loops(&t);
}

/* ---- setup -------------------------------------------------------------- */

static int
setup(void **state)
{
	(void)state;
	if (sg_fixture_init(&w.f, 3) != 0 || (w.cat = sg_test_example_catalog()) == NULL)
		return -1;
	for (size_t i = 0; i < 2; i++)
		if ((w.policy_text[i] = sg_test_slurp(policy_files[i])) == NULL)
			return -1;
	for (size_t i = 0; i < 3; i++)
		if ((w.connector_text[i] = sg_test_slurp(connector_files[i])) == NULL)
			return -1;
	w.manifest = sg_test_slurp(EXAMPLES "/templates/onboard-contact/template.yaml");
	w.lua = sg_test_slurp(EXAMPLES "/templates/onboard-contact/main.lua");
	w.clock = 1000000000ull;
	/* glibc reads the time zone once, at first use; do it before anything is measured. */
	tzset();
	sg_failalloc_install();
	return w.manifest && w.lua ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	sg_failalloc_uninstall();
	sg_fixture_free(&w.f);
	sg_catalog_free(w.cat);
	for (size_t i = 0; i < 2; i++)
		free(w.policy_text[i]);
	for (size_t i = 0; i < 3; i++)
		free(w.connector_text[i]);
	free(w.manifest);
	free(w.lua);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_diags),
	    cmocka_unit_test(test_config),
	    cmocka_unit_test(test_config_without_data_dir),
	    cmocka_unit_test(test_connector_crm),
	    cmocka_unit_test(test_connector_mail),
	    cmocka_unit_test(test_connector_calendar),
	    cmocka_unit_test(test_policies),
	    cmocka_unit_test(test_template),
	    cmocka_unit_test(test_body_valid),
	    cmocka_unit_test(test_body_invalid),
	    cmocka_unit_test(test_body_empty),
	    cmocka_unit_test(test_governed_call),
	    cmocka_unit_test(test_refused_call),
	    cmocka_unit_test(test_throttled_call),
	    cmocka_unit_test(test_unknown_connector),
	    cmocka_unit_test(test_a_warm_call_allocates_nothing),
	    cmocka_unit_test(test_upreq),
	};
	if (getenv("SG_FAILALLOC_ONLY")) /* e.g. "test_template", to debug one loop */
		cmocka_set_test_filter(getenv("SG_FAILALLOC_ONLY"));
	if (getenv("SG_FAILALLOC_SKIP"))
		cmocka_set_skip_filter(getenv("SG_FAILALLOC_SKIP"));
	return cmocka_run_group_tests(tests, setup, teardown);
}
