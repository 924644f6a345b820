/*
 * The second half of the policy compiler: limits.  Role limits, connector
 * upstream limits and `rules:` entries all become sg_rule objects, and
 * every (role, mode, operation) gets the list of rules a call must pass.
 * The lists are built once here, so the throttle step only walks an array.
 *
 * Rules are compiled after every document's roles are known, because a rule
 * in one file may name roles defined in another.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sg_yaml.h"
#include "obs/sg_throttle_metrics.h"
#include "policy/sg_policy_load.h"
#include "throttle/sg_limiter.h"

#define MAX_RULES 4096
#define MAX_MATCH 64
#define DEFAULT_BG_PCT 50 /* background work may fill half a bucket unless told otherwise */

static const char *const rule_keys[] = {
    "name", "description", "match", "bucket_per", "windows", "concurrency", "classes", "shadow",
};
static const char *const match_keys[] = {"roles", "modes", "operations"};
static const char *const bucket_words[] = {"api_key", "user", "tenant", "connector", "operation"};
static const char *const class_keys[] = {"normal", "background"};

/* What a `rules:` entry applies to; the strings are borrowed from its document. */
struct rule_match {
	const char *roles[MAX_MATCH];
	size_t n_roles; /* 0: every role */
	bool modes[SG_MODE_COUNT];
	const char *ops[MAX_MATCH];
	size_t n_ops; /* 0: every operation */
};

/* Built-in rules keep an empty match; they are placed by role, mode and connector. */
struct rules_build {
	struct pload *l;
	struct rule_match *match; /* parallel to p->rules; NULL entries for built-ins */
	size_t cap;
};

static uint64_t
name_seed(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a: only has to separate rule names */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

static struct sg_rule *
add_rule(struct rules_build *b, const char *name, struct rule_match *m)
{
	struct sg_policy *p = b->l->p;
	if (p->n_rules == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct sg_rule **v = realloc(p->rules, cap * sizeof(*v));
		struct rule_match *mv = v ? realloc(b->match, cap * sizeof(*mv)) : NULL;
		if (v)
			p->rules = v;
		if (mv)
			b->match = mv;
		if (v == NULL || mv == NULL)
			return NULL;
		b->cap = cap;
	}
	struct sg_rule *r = calloc(1, sizeof(*r));
	if (r == NULL || (r->name = strdup(name)) == NULL) {
		free(r);
		return NULL;
	}
	r->seed = name_seed(name);
	r->index = p->n_rules;
	r->share_permille[SG_CLASS_CRITICAL] = 1000;
	r->share_permille[SG_CLASS_NORMAL] = 1000;
	r->share_permille[SG_CLASS_BACKGROUND] = DEFAULT_BG_PCT * 10;
	r->stats = sg_metrics_rule(name);
	if (m)
		b->match[p->n_rules] = *m;
	else
		memset(&b->match[p->n_rules], 0, sizeof(*m));
	p->rules[p->n_rules++] = r;
	return r;
}

static struct sg_rule *
add_window_rule(struct rules_build *b, const char *name, enum sg_rule_who who,
                enum sg_rule_what what, const struct sg_limit *lim)
{
	struct sg_rule *r = add_rule(b, name, NULL);
	if (r == NULL)
		return NULL;
	r->who = who;
	r->what = what;
	r->windows[0] = *lim;
	r->n_windows = 1;
	return r;
}

/* ---- built-in rules ----------------------------------------------------- */

/*
 * Role limits keep the foundation's meaning: one bucket per API key and
 * connector.  They are named "role:mode" and "role:mode:connector".
 */
static int
role_rules(struct rules_build *b, const struct sg_role *r, enum sg_mode m,
           const struct sg_rule **by_connector)
{
	char name[160];
	const struct sg_rule *def = NULL;
	snprintf(name, sizeof(name), "%s:%s", r->name, sg_mode_name(m));
	if (r->limit[m].gcra.emission_ns != 0 &&
	    (def = add_window_rule(b, name, SG_WHO_KEY, SG_WHAT_CONNECTOR, &r->limit[m])) == NULL)
		return -1;
	for (size_t c = 0; c < b->l->cat->n; c++) {
		by_connector[c] = def;
		if (r->connector_limit[m][c].gcra.emission_ns == 0)
			continue;
		snprintf(name, sizeof(name), "%s:%s:%s", r->name, sg_mode_name(m),
		         b->l->cat->v[c]->name);
		by_connector[c] = add_window_rule(b, name, SG_WHO_KEY, SG_WHAT_CONNECTOR,
		                                  &r->connector_limit[m][c]);
		if (by_connector[c] == NULL)
			return -1;
	}
	return 0;
}

/* A connector's upstream_limit protects the real upstream, so it binds live calls only. */
static int
upstream_rules(struct rules_build *b, const struct sg_rule **by_connector)
{
	char name[96];
	for (size_t c = 0; c < b->l->cat->n; c++) {
		const struct sg_connector *conn = b->l->cat->v[c];
		by_connector[c] = NULL;
		if (conn->upstream_limit.gcra.emission_ns == 0)
			continue;
		snprintf(name, sizeof(name), "upstream:%s", conn->name);
		by_connector[c] = add_window_rule(b, name, SG_WHO_EVERYONE, SG_WHAT_CONNECTOR,
		                                  &conn->upstream_limit);
		if (by_connector[c] == NULL)
			return -1;
	}
	return 0;
}

/* ---- `rules:` entries ---------------------------------------------------- */

void
sg_policy_rules_collect(struct pload *l, struct fy_node *rules)
{
	if (!fy_node_is_sequence(rules)) {
		sg_yaml_error(
		    l->d, l->file, rules,
		    "rules: expected a list of rules such as - { "
		    "name: tenant-calls, bucket_per: [tenant], windows: [{ rate: 10/s }] }");
		return;
	}
	void *it = NULL;
	struct fy_node *item;
	while ((item = fy_node_sequence_iterate(rules, &it)) != NULL) {
		if (l->n_pending >= MAX_RULES) {
			sg_yaml_error(l->d, l->file, item, "rules: more than %d rules", MAX_RULES);
			return;
		}
		struct sg_policy_pending *v =
		    realloc(l->pending, (l->n_pending + 1) * sizeof(*l->pending));
		if (v == NULL) {
			sg_yaml_error(l->d, l->file, item, "out of memory");
			return;
		}
		l->pending = v;
		l->pending[l->n_pending++] = (struct sg_policy_pending){l->file, item};
	}
}

/* "*", "crm.*" or "crm.create_contact": does it name `op` of `c`? */
static bool
pattern_matches(const char *pat, const struct sg_connector *c, const struct sg_operation *op)
{
	if (strcmp(pat, "*") == 0)
		return true;
	size_t n = strlen(c->name);
	if (strncmp(pat, c->name, n) != 0 || pat[n] != '.')
		return false;
	return strcmp(pat + n + 1, "*") == 0 || strcmp(pat + n + 1, op->name) == 0;
}

/* Reports a pattern that names no operation in the catalog. */
static void
check_pattern(struct pload *l, struct fy_node *at, const char *what, const char *pat)
{
	for (size_t c = 0; c < l->cat->n; c++)
		for (size_t i = 0; i < l->cat->v[c]->n_ops; i++)
			if (pattern_matches(pat, l->cat->v[c], &l->cat->v[c]->ops[i]))
				return;
	char conn[72] = "";
	const char *dot = strchr(pat, '.');
	if (dot && (size_t)(dot - pat) < sizeof(conn))
		memcpy(conn, pat, (size_t)(dot - pat));
	char h[96];
	sg_yaml_error(l->d, l->file, at,
	              "%s: \"%.80s\" matches no operation in the catalog%s; "
	              "use connector.operation, connector.* or *",
	              what, pat, sg_policy_hint(conn, l->conn_names, l->cat->n, h, sizeof(h)));
}

static void
compile_match_roles(struct pload *l, struct fy_node *n, const char *what, struct rule_match *m)
{
	long count = sg_policy_str_list(l, n, what, m->roles, MAX_MATCH);
	for (long i = 0; i < count; i++) {
		if (sg_policy_role(l->p, m->roles[i]) != NULL)
			continue;
		const char *names[64];
		size_t k = 0;
		for (; k < l->p->n_roles && k < 64; k++)
			names[k] = l->p->roles[k].name;
		char h[96];
		sg_yaml_error(l->d, l->file, fy_node_sequence_get_by_index(n, (int)i),
		              "%s: unknown role \"%.64s\"%s", what, m->roles[i],
		              sg_policy_hint(m->roles[i], names, k, h, sizeof(h)));
	}
	m->n_roles = count > 0 ? (size_t)count : 0;
}

static void
compile_match(struct pload *l, struct fy_node *n, const char *rule, struct rule_match *m)
{
	char what[128];
	m->modes[SG_MODE_SANDBOX] = m->modes[SG_MODE_LIVE] = true;
	if (n == NULL)
		return;
	snprintf(what, sizeof(what), "rule \"%s\": match", rule);
	if (sg_yaml_check_keys(l->d, l->file, n, what, match_keys, SG_COUNT(match_keys)) != 0 &&
	    !fy_node_is_mapping(n))
		return;
	struct fy_node *v;
	snprintf(what, sizeof(what), "rule \"%s\": match.roles", rule);
	if ((v = sg_yaml_get(n, "roles")) != NULL)
		compile_match_roles(l, v, what, m);
	snprintf(what, sizeof(what), "rule \"%s\": match.modes", rule);
	if ((v = sg_yaml_get(n, "modes")) != NULL) {
		m->modes[SG_MODE_SANDBOX] = m->modes[SG_MODE_LIVE] = false;
		sg_policy_modes(l, v, what, m->modes);
	}
	snprintf(what, sizeof(what), "rule \"%s\": match.operations", rule);
	if ((v = sg_yaml_get(n, "operations")) == NULL)
		return;
	long count = sg_policy_str_list(l, v, what, m->ops, MAX_MATCH);
	for (long i = 0; i < count; i++)
		check_pattern(l, fy_node_sequence_get_by_index(v, (int)i), what, m->ops[i]);
	m->n_ops = count > 0 ? (size_t)count : 0;
}

/* bucket_per: [tenant, connector] -> who shares a bucket and what it counts. */
static void
compile_bucket(struct pload *l, struct fy_node *n, const char *rule, struct sg_rule *r)
{
	char what[128];
	snprintf(what, sizeof(what), "rule \"%s\": bucket_per", rule);
	r->who = SG_WHO_EVERYONE;
	r->what = SG_WHAT_ALL;
	if (!fy_node_is_sequence(n)) {
		sg_yaml_error(l->d, l->file, n,
		              "%s: expected a list such as [tenant, connector]; "
		              "[] is one bucket for everyone",
		              what);
		return;
	}
	int who_set = 0, what_set = 0;
	void *it = NULL;
	struct fy_node *item;
	while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
		const char *s = sg_yaml_str(l->d, l->file, item, what);
		size_t k = 0;
		for (; s && k < SG_COUNT(bucket_words); k++)
			if (strcmp(s, bucket_words[k]) == 0)
				break;
		if (s == NULL)
			continue;
		if (k == SG_COUNT(bucket_words)) {
			char h[96];
			sg_yaml_error(
			    l->d, l->file, item,
			    "%s: unknown \"%.40s\"%s; use api_key, "
			    "user or tenant, and connector or operation",
			    what, s,
			    sg_policy_hint(s, bucket_words, SG_COUNT(bucket_words), h, sizeof(h)));
		} else if (k < 3 && who_set++ == 0) {
			r->who = k == 0 ? SG_WHO_KEY : k == 1 ? SG_WHO_USER : SG_WHO_TENANT;
		} else if (k >= 3 && what_set++ == 0) {
			r->what = k == 3 ? SG_WHAT_CONNECTOR : SG_WHAT_OPERATION;
		} else {
			sg_yaml_error(l->d, l->file, item,
			              "%s: name at most one of api_key, user "
			              "and tenant, and at most one of connector and operation",
			              what);
		}
	}
}

static void
compile_windows(struct pload *l, struct fy_node *n, const char *rule, struct sg_rule *r)
{
	char what[128];
	snprintf(what, sizeof(what), "rule \"%s\": windows", rule);
	int count = fy_node_is_sequence(n) ? fy_node_sequence_item_count(n) : 0;
	if (count < 1 || count > SG_RULE_MAX_WINDOWS) {
		sg_yaml_error(l->d, l->file, n,
		              "%s: expected a list of 1 to %d windows such as "
		              "[{ rate: 10/s, burst: 20 }, { rate: 5000/d }]",
		              what, SG_RULE_MAX_WINDOWS);
		return;
	}
	for (int i = 0; i < count; i++) {
		snprintf(what, sizeof(what), "rule \"%s\": windows[%d]", rule, i);
		sg_policy_limit(l, fy_node_sequence_get_by_index(n, i), what, &r->windows[i]);
	}
	r->n_windows = (size_t)count;
}

static void
compile_classes(struct pload *l, struct fy_node *n, const char *rule, struct sg_rule *r)
{
	char what[128];
	snprintf(what, sizeof(what), "rule \"%s\": classes", rule);
	if (sg_yaml_check_keys(l->d, l->file, n, what, class_keys, SG_COUNT(class_keys)) != 0 &&
	    !fy_node_is_mapping(n))
		return;
	for (size_t k = 0; k < SG_COUNT(class_keys); k++) {
		struct fy_node *v = sg_yaml_get(n, class_keys[k]);
		long long pct;
		snprintf(what, sizeof(what), "rule \"%s\": classes.%s (percent of each window)",
		         rule, class_keys[k]);
		if (v && sg_yaml_int(l->d, l->file, v, what, 1, 100, &pct) == 0)
			r->share_permille[SG_CLASS_NORMAL + k] = (uint16_t)(pct * 10);
	}
}

static const char *
rule_name(struct pload *l, struct fy_node *item, struct sg_policy *p)
{
	struct fy_node *n = sg_yaml_get(item, "name");
	const char *s = n ? sg_yaml_str(l->d, l->file, n, "rule name") : NULL;
	if (n == NULL)
		sg_yaml_error(l->d, l->file, item, "rule: missing name; add name: tenant-calls");
	if (s == NULL)
		return NULL;
	if (!sg_policy_valid_name(s)) {
		sg_yaml_error(l->d, l->file, n,
		              "rule name: use 1 to 64 lowercase letters, digits, "
		              "'_' or '-', starting with a letter, got \"%.64s\"",
		              s);
		return NULL;
	}
	for (size_t i = 0; i < p->n_rules; i++)
		if (strcmp(p->rules[i]->name, s) == 0) {
			sg_yaml_error(l->d, l->file, n, "rule \"%s\" defined twice", s);
			return NULL;
		}
	return s;
}

static void
compile_entry(struct rules_build *b, struct fy_node *item)
{
	struct pload *l = b->l;
	if (sg_yaml_check_keys(l->d, l->file, item, "rule", rule_keys, SG_COUNT(rule_keys)) != 0 &&
	    !fy_node_is_mapping(item))
		return;
	const char *name = rule_name(l, item, l->p);
	if (name == NULL)
		return;
	struct rule_match m;
	memset(&m, 0, sizeof(m));
	compile_match(l, sg_yaml_get(item, "match"), name, &m);
	struct sg_rule *r = add_rule(b, name, &m);
	if (r == NULL) {
		sg_yaml_error(l->d, l->file, item, "out of memory");
		return;
	}
	struct fy_node *n = sg_yaml_get(item, "bucket_per");
	if (n == NULL)
		sg_yaml_error(l->d, l->file, item,
		              "rule \"%s\": missing bucket_per; add "
		              "bucket_per: [tenant] (or [] for one bucket shared by everyone)",
		              name);
	else
		compile_bucket(l, n, name, r);
	struct fy_node *w = sg_yaml_get(item, "windows"), *c = sg_yaml_get(item, "concurrency");
	if ((w == NULL) == (c == NULL))
		sg_yaml_error(l->d, l->file, item,
		              "rule \"%s\": give either windows (calls per "
		              "period) or concurrency (calls at once), not %s",
		              name, w ? "both" : "neither");
	long long conc = 0;
	if (w)
		compile_windows(l, w, name, r);
	else if (c && sg_yaml_int(l->d, l->file, c, "concurrency", 1, 1000000, &conc) == 0)
		r->concurrency = (uint32_t)conc;
	if ((n = sg_yaml_get(item, "classes")) != NULL)
		compile_classes(l, n, name, r);
	if ((n = sg_yaml_get(item, "shadow")) != NULL)
		sg_yaml_bool(l->d, l->file, n, "shadow", &r->shadow);
}

/* ---- per-operation lists -------------------------------------------------- */

static bool
user_rule_applies(const struct rule_match *m, const struct sg_role *role, enum sg_mode mode,
                  const struct sg_connector *c, const struct sg_operation *op)
{
	if (!m->modes[mode])
		return false;
	bool role_ok = m->n_roles == 0;
	for (size_t i = 0; !role_ok && i < m->n_roles; i++)
		role_ok = strcmp(m->roles[i], role->name) == 0;
	bool op_ok = m->n_ops == 0;
	for (size_t i = 0; role_ok && !op_ok && i < m->n_ops; i++)
		op_ok = pattern_matches(m->ops[i], c, op);
	return role_ok && op_ok;
}

/* Order inside a list: enforced windows, enforced concurrency, then shadow rules. */
static int
rule_rank(const struct sg_rule *r)
{
	return r->shadow ? 2 : r->concurrency ? 1 : 0;
}

struct list_ctx {
	struct rules_build *b;
	size_t n_user; /* `rules:` entries come first in p->rules */
	const struct sg_rule **upstream;
	const struct sg_rule **role_rule;
	size_t pool_len, pool_cap;
	size_t *offsets; /* per list, into the pool */
};

static int
pool_push(struct list_ctx *x, const struct sg_rule *r)
{
	struct sg_policy *p = x->b->l->p;
	if (x->pool_len == x->pool_cap) {
		size_t cap = x->pool_cap ? x->pool_cap * 2 : 256;
		const struct sg_rule **v = realloc(p->rule_pool, cap * sizeof(*v));
		if (v == NULL)
			return -1;
		p->rule_pool = v;
		x->pool_cap = cap;
	}
	p->rule_pool[x->pool_len++] = r;
	return 0;
}

/* Appends the rules for one operation to the pool; -1 when there are too many. */
static int
fill_list(struct list_ctx *x, const struct sg_role *role, enum sg_mode mode, size_t conn,
          const struct sg_operation *op, struct sg_rule_list *out)
{
	const struct sg_policy *p = x->b->l->p;
	const struct sg_connector *c = x->b->l->cat->v[conn];
	size_t start = x->pool_len;
	for (int rank = 0; rank < 3; rank++) {
		if (rank == 0 && x->role_rule[conn] && pool_push(x, x->role_rule[conn]) != 0)
			return -1;
		if (rank == 0 && mode == SG_MODE_LIVE && x->upstream[conn] &&
		    pool_push(x, x->upstream[conn]) != 0)
			return -1;
		for (size_t i = 0; i < x->n_user; i++)
			if (rule_rank(p->rules[i]) == rank &&
			    user_rule_applies(&x->b->match[i], role, mode, c, op) &&
			    pool_push(x, p->rules[i]) != 0)
				return -1;
	}
	out->n = (uint8_t)(x->pool_len - start > 255 ? 255 : x->pool_len - start);
	out->v = NULL; /* set once the pool stops moving */
	/* A call's windows must fit the verdict (and one Redis script call) whole. */
	size_t windows = 0;
	for (size_t i = start; i < x->pool_len; i++)
		windows += x->b->l->p->rule_pool[i]->n_windows;
	return x->pool_len - start > SG_RULE_MAX_PER_CALL || windows > SG_VERDICT_CELLS ? -2 : 0;
}

static int
build_role_lists(struct list_ctx *x, struct sg_role *role, size_t *list_no)
{
	struct pload *l = x->b->l;
	for (int m = 0; m < SG_MODE_COUNT; m++) {
		if ((role->rules[m] = calloc(l->cat->n_ops ? l->cat->n_ops : 1,
		                             sizeof(struct sg_rule_list))) == NULL)
			return -1;
		if (role_rules(x->b, role, (enum sg_mode)m, x->role_rule) != 0)
			return -1;
		for (size_t c = 0; c < l->cat->n; c++)
			for (size_t i = 0; i < l->cat->v[c]->n_ops; i++) {
				const struct sg_operation *op = &l->cat->v[c]->ops[i];
				x->offsets[(*list_no)++] = x->pool_len;
				int rc = fill_list(x, role, (enum sg_mode)m, c, op,
				                   &role->rules[m][op->index]);
				if (rc == -2)
					sg_diags_add(
					    l->d, NULL, 0, 0,
					    "role \"%s\": %s.%s in %s mode "
					    "is bound by more than %d limits or %d windows; "
					    "merge rules",
					    role->name, l->cat->v[c]->name, op->name,
					    sg_mode_name((enum sg_mode)m), SG_RULE_MAX_PER_CALL,
					    SG_VERDICT_CELLS);
				if (rc == -1)
					return -1;
			}
	}
	return 0;
}

/* Points every list into the pool, now that it no longer moves. */
static void
link_lists(struct list_ctx *x)
{
	struct pload *l = x->b->l;
	size_t k = 0;
	for (size_t ri = 0; ri < l->p->n_roles; ri++)
		for (int m = 0; m < SG_MODE_COUNT; m++)
			for (size_t c = 0; c < l->cat->n; c++)
				for (size_t i = 0; i < l->cat->v[c]->n_ops; i++) {
					struct sg_rule_list *rl =
					    &l->p->roles[ri].rules[m][l->cat->v[c]->ops[i].index];
					rl->v = l->p->rule_pool + x->offsets[k++];
				}
}

static int
build_lists(struct rules_build *b, size_t n_user)
{
	struct pload *l = b->l;
	size_t n_conn = l->cat->n ? l->cat->n : 1;
	struct list_ctx x = {.b = b, .n_user = n_user};
	size_t n_lists = l->p->n_roles * SG_MODE_COUNT * l->cat->n_ops;
	x.upstream = calloc(n_conn, sizeof(*x.upstream));
	x.role_rule = calloc(n_conn, sizeof(*x.role_rule));
	x.offsets = calloc(n_lists ? n_lists : 1, sizeof(*x.offsets));
	int rc = -1;
	size_t list_no = 0;
	if (x.upstream == NULL || x.role_rule == NULL || x.offsets == NULL ||
	    upstream_rules(b, x.upstream) != 0)
		goto out;
	for (size_t ri = 0; ri < l->p->n_roles; ri++)
		if (build_role_lists(&x, &l->p->roles[ri], &list_no) != 0)
			goto out;
	link_lists(&x);
	rc = 0;
out:
	free(x.upstream);
	free(x.role_rule);
	free(x.offsets);
	return rc;
}

void
sg_policy_rules_compile(struct pload *l)
{
	struct rules_build b = {.l = l};
	size_t before = l->d->n;
	for (size_t i = 0; i < l->n_pending; i++) {
		l->file = l->pending[i].file;
		size_t mark = l->d->n;
		compile_entry(&b, l->pending[i].node);
		sg_yaml_sort_diags(l->d, mark);
	}
	/* Lists are only worth building for a policy that will be used. */
	if (l->d->n == before && build_lists(&b, l->p->n_rules) != 0)
		sg_diags_add(l->d, NULL, 0, 0, "out of memory while compiling limits");
	free(b.match);
}

void
sg_policy_rules_free(struct sg_policy *p)
{
	for (size_t i = 0; i < p->n_rules; i++) {
		free(p->rules[i]->name);
		free(p->rules[i]);
	}
	free(p->rules);
	free(p->rule_pool);
}
