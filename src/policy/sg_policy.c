/*
 * sg_policy: policies/NAME.yaml compiled against the catalog.  Everything a
 * request needs is decided here, once: the authorize step reads one byte
 * of a bitmap and the throttle step reads one struct, so no pattern
 * matching or string comparison happens per call.
 *
 * The compiler fails closed: a role that may use a mode must say how fast,
 * and a rule that matches nothing is an error rather than a silent no-op.
 */
#include "policy/sg_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sg_yaml.h"
#include "dlp/sg_dlp_policy.h"
#include "policy/sg_policy_load.h"
#include "upstream/sg_egress.h"

#define COUNT(a) SG_COUNT(a)
#define MAX_ROLES 1024
#define mode_names sg_policy_mode_names

const char *const sg_policy_mode_names[SG_MODE_COUNT] = {"sandbox", "live"};
static const char *const top_keys[] = {
    "kind", "name", "description", "roles", "rules", "budgets", "egress", "dlp",
};
static const char *const role_keys[] = {
    "description", "allow", "limits", "connector_limits", "priority",
};
static const char *const rule_keys[] = {"operations", "modes", "data_domains"};
static const char *const limit_keys[] = {"rate", "burst"};
static const char *const priority_keys[] = {"default", "max"};

const char *
sg_mode_name(enum sg_mode m)
{
	return (unsigned)m < SG_MODE_COUNT ? mode_names[m] : "unknown";
}

int
sg_mode_parse(const char *s, enum sg_mode *m)
{
	for (int i = 0; s != NULL && i < SG_MODE_COUNT; i++)
		if (strcmp(s, mode_names[i]) == 0) {
			*m = (enum sg_mode)i;
			return 0;
		}
	return -1;
}

bool
sg_policy_valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64 || s[0] < 'a' || s[0] > 'z')
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

const char *
sg_policy_hint(const char *word, const char *const *candidates, size_t n, char *buf, size_t cap)
{
	const char *best = sg_did_you_mean(word, candidates, n);
	if (best == NULL)
		return "";
	snprintf(buf, cap, " (did you mean \"%s\"?)", best);
	return buf;
}

bool
sg_policy_in_list(const char *s, const char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, v[i]) == 0)
			return true;
	return false;
}

/* ---- patterns ---------------------------------------------------------- */

/* One allow rule: the role it grants to, in which modes, within which data domains. */
struct grant {
	struct sg_role *r;
	bool modes[SG_MODE_COUNT];
	const char *domains[64];
	size_t n_dom; /* 0: no data-domain filter */
};

/*
 * Grants `op` when it passes the rule's data-domain filter; returns 1 if it
 * did.  A policy with any error is discarded whole, so granting before every
 * error is known is harmless.
 */
static size_t
grant_op(const struct grant *g, const struct sg_operation *op)
{
	if (g->n_dom > 0 && !sg_policy_in_list(op->data_domain, g->domains, g->n_dom))
		return 0;
	for (int m = 0; m < SG_MODE_COUNT; m++)
		if (g->modes[m])
			g->r->allowed[m][op->index] = 1;
	return 1;
}

static size_t
grant_connector(const struct grant *g, const struct sg_connector *c)
{
	size_t n = 0;
	for (size_t i = 0; i < c->n_ops; i++)
		n += grant_op(g, &c->ops[i]);
	return n;
}

static void
unknown_op(struct pload *l, const char *role, struct fy_node *at, const struct sg_connector *c,
           const char *op)
{
	const char **names = calloc(c->n_ops ? c->n_ops : 1, sizeof(*names));
	char h[96];
	for (size_t i = 0; names && i < c->n_ops; i++)
		names[i] = c->ops[i].name;
	sg_yaml_error(l->d, l->file, at,
	              "role \"%s\": unknown operation \"%.64s\" in connector "
	              "\"%s\"%s",
	              role, op, c->name,
	              names ? sg_policy_hint(op, names, c->n_ops, h, sizeof(h)) : "");
	free(names);
}

/*
 * Grants what one pattern ("*", "crm.*" or "crm.create_contact") names.
 * Returns the number of operations granted, or -1 after an error.
 */
static long
match_pattern(struct pload *l, const struct grant *g, struct fy_node *at, const char *pat)
{
	const char *role = g->r->name;
	size_t n = 0;
	if (strcmp(pat, "*") == 0) {
		for (size_t i = 0; i < l->cat->n; i++)
			n += grant_connector(g, l->cat->v[i]);
		return (long)n;
	}
	const char *dot = strchr(pat, '.');
	char conn[72];
	if (dot == NULL || dot == pat || dot[1] == '\0' || (size_t)(dot - pat) >= sizeof(conn)) {
		sg_yaml_error(l->d, l->file, at,
		              "role \"%s\": operation pattern \"%.80s\": use "
		              "connector.operation, connector.* or *",
		              role, pat);
		return -1;
	}
	memcpy(conn, pat, (size_t)(dot - pat));
	conn[dot - pat] = '\0';
	const struct sg_connector *c = sg_catalog_find(l->cat, conn);
	if (c == NULL) {
		char h[96];
		sg_yaml_error(l->d, l->file, at, "role \"%s\": unknown connector \"%s\"%s", role,
		              conn, sg_policy_hint(conn, l->conn_names, l->cat->n, h, sizeof(h)));
		return -1;
	}
	if (strcmp(dot + 1, "*") == 0)
		return (long)grant_connector(g, c);
	const struct sg_operation *op = sg_connector_op(c, dot + 1);
	if (op == NULL) {
		unknown_op(l, role, at, c, dot + 1);
		return -1;
	}
	return (long)grant_op(g, op);
}

/* ---- rules ------------------------------------------------------------- */

/*
 * Reads a list of strings into `out` (borrowed from the document).  Returns
 * the count, or -1 after an error; `max` bounds what the caller can hold.
 */
long
sg_policy_str_list(struct pload *l, struct fy_node *n, const char *what, const char **out,
                   size_t max)
{
	if (!fy_node_is_sequence(n) || fy_node_sequence_item_count(n) < 1) {
		sg_yaml_error(l->d, l->file, n, "%s: expected a non-empty list", what);
		return -1;
	}
	size_t count = 0;
	void *it = NULL;
	struct fy_node *item;
	bool bad = false;
	while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
		const char *s = sg_yaml_str(l->d, l->file, item, what);
		if (s == NULL) {
			bad = true;
		} else if (count == max) {
			sg_yaml_error(l->d, l->file, item, "%s: at most %zu entries", what, max);
			return -1;
		} else {
			out[count++] = s;
		}
	}
	return bad ? -1 : (long)count;
}

static void
rule_modes(struct pload *l, const char *role, struct fy_node *rule, bool modes[SG_MODE_COUNT])
{
	struct fy_node *n = sg_yaml_get(rule, "modes");
	char what[96];
	snprintf(what, sizeof(what), "role \"%s\": modes", role);
	if (n == NULL) {
		sg_yaml_error(l->d, l->file, rule,
		              "%s: missing; add modes: [sandbox] or "
		              "modes: [sandbox, live]",
		              what);
		return;
	}
	sg_policy_modes(l, n, what, modes);
}

void
sg_policy_modes(struct pload *l, struct fy_node *n, const char *what, bool modes[SG_MODE_COUNT])
{
	const char *v[SG_MODE_COUNT * 4];
	long count = sg_policy_str_list(l, n, what, v, COUNT(v));
	for (long i = 0; i < count; i++) {
		enum sg_mode m;
		if (sg_mode_parse(v[i], &m) == 0) {
			modes[m] = true;
			continue;
		}
		char h[96];
		sg_yaml_error(l->d, l->file, fy_node_sequence_get_by_index(n, (int)i),
		              "%s: unknown mode \"%.40s\"%s; modes are sandbox and live", what,
		              v[i], sg_policy_hint(v[i], mode_names, SG_MODE_COUNT, h, sizeof(h)));
	}
}

/* The rule's data_domains filter; *n_out stays 0 when there is none (or it is broken). */
static void
rule_domains(struct pload *l, const char *role, struct fy_node *rule, const char **v, size_t max,
             size_t *n_out)
{
	struct fy_node *n = sg_yaml_get(rule, "data_domains");
	char what[96];
	snprintf(what, sizeof(what), "role \"%s\": data_domains", role);
	*n_out = 0;
	if (n == NULL)
		return;
	long count = sg_policy_str_list(l, n, what, v, max);
	for (long i = 0; i < count; i++) {
		if (sg_policy_in_list(v[i], l->domains, l->n_domains))
			continue;
		char h[96];
		sg_yaml_error(l->d, l->file, fy_node_sequence_get_by_index(n, (int)i),
		              "%s: no operation in the catalog has data domain \"%.40s\"%s", what,
		              v[i], sg_policy_hint(v[i], l->domains, l->n_domains, h, sizeof(h)));
	}
	*n_out = count > 0 ? (size_t)count : 0;
}

static void
compile_rule(struct pload *l, struct sg_role *r, struct fy_node *rule)
{
	char what[96];
	struct grant g = {.r = r};
	snprintf(what, sizeof(what), "role \"%s\": allow rule", r->name);
	if (sg_yaml_check_keys(l->d, l->file, rule, what, rule_keys, COUNT(rule_keys)) != 0 &&
	    !fy_node_is_mapping(rule))
		return;
	rule_modes(l, r->name, rule, g.modes);
	rule_domains(l, r->name, rule, g.domains, COUNT(g.domains), &g.n_dom);
	for (int m = 0; m < SG_MODE_COUNT; m++)
		r->mode_allowed[m] |= g.modes[m];
	struct fy_node *ops = sg_yaml_get(rule, "operations");
	if (ops == NULL) {
		sg_yaml_error(l->d, l->file, rule,
		              "%s: missing operations; add operations: "
		              "[\"connector.operation\"]",
		              what);
		return;
	}
	snprintf(what, sizeof(what), "role \"%s\": operations", r->name);
	if (!fy_node_is_sequence(ops) || fy_node_sequence_item_count(ops) < 1) {
		sg_yaml_error(l->d, l->file, ops, "%s: expected a non-empty list", what);
		return;
	}
	void *it = NULL;
	struct fy_node *item;
	while ((item = fy_node_sequence_iterate(ops, &it)) != NULL) {
		const char *pat = sg_yaml_str(l->d, l->file, item, what);
		if (pat && match_pattern(l, &g, item, pat) == 0)
			sg_yaml_error(l->d, l->file, item,
			              "role \"%s\": \"%.80s\" matches no "
			              "operation%s: remove it or widen the rule",
			              r->name, pat, g.n_dom ? " in the listed data_domains" : "");
	}
}

/* ---- limits ------------------------------------------------------------ */

void
sg_policy_limit(struct pload *l, struct fy_node *n, const char *what, struct sg_limit *out)
{
	long long burst = 0;
	if (sg_yaml_check_keys(l->d, l->file, n, what, limit_keys, COUNT(limit_keys)) != 0 &&
	    !fy_node_is_mapping(n))
		return;
	struct fy_node *rn = sg_yaml_get(n, "rate"), *bn = sg_yaml_get(n, "burst");
	char label[176]; /* what (up to 160) + ".burst" */
	snprintf(label, sizeof(label), "%s.burst", what);
	if (bn && sg_yaml_int(l->d, l->file, bn, label, 1, 100000, &burst) != 0)
		return;
	if (rn == NULL) {
		sg_yaml_error(l->d, l->file, n, "%s: missing rate; add rate: 10/s", what);
		return;
	}
	snprintf(label, sizeof(label), "%s.rate", what);
	const char *spec = sg_yaml_str(l->d, l->file, rn, label);
	if (spec && sg_limit_parse(spec, (uint32_t)burst, out) != 0)
		sg_yaml_error(l->d, l->file, rn,
		              "%s: expected calls per period such as 2/s, "
		              "100/m, 10/h or 5000/d (up to 1000000, 3 decimals), got \"%.40s\"",
		              label, spec);
}

static void
compile_mode_limits(struct pload *l, const char *prefix, struct fy_node *n,
                    struct sg_limit *limits[SG_MODE_COUNT], size_t idx)
{
	if (sg_yaml_check_keys(l->d, l->file, n, prefix, mode_names, SG_MODE_COUNT) != 0 &&
	    !fy_node_is_mapping(n))
		return;
	for (int m = 0; m < SG_MODE_COUNT; m++) {
		struct fy_node *v = sg_yaml_get(n, mode_names[m]);
		char what[160];
		snprintf(what, sizeof(what), "%s.%s", prefix, mode_names[m]);
		if (v != NULL)
			sg_policy_limit(l, v, what, &limits[m][idx]);
	}
}

static void
compile_connector_limits(struct pload *l, struct sg_role *r, struct fy_node *n)
{
	char what[160];
	snprintf(what, sizeof(what), "role \"%s\": connector_limits", r->name);
	if (!fy_node_is_mapping(n)) {
		sg_yaml_check_keys(l->d, l->file, n, what, NULL, 0);
		return;
	}
	void *it = NULL;
	struct fy_node_pair *p;
	while ((p = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct fy_node *k = fy_node_pair_key(p);
		const char *name = sg_yaml_str(l->d, l->file, k, what);
		const struct sg_connector *c = name ? sg_catalog_find(l->cat, name) : NULL;
		char h[96];
		if (name && c == NULL)
			sg_yaml_error(l->d, l->file, k, "%s: unknown connector \"%.64s\"%s", what,
			              name,
			              sg_policy_hint(name, l->conn_names, l->cat->n, h, sizeof(h)));
		if (c == NULL)
			continue;
		char prefix[200];
		snprintf(prefix, sizeof(prefix), "%s.%s", what, c->name);
		compile_mode_limits(l, prefix, fy_node_pair_value(p), r->connector_limit, c->index);
	}
}

/* ---- roles ------------------------------------------------------------- */

/* Appends an empty role with its tables; NULL when out of memory (reported). */
static struct sg_role *
add_role(struct pload *l, const char *name, int line)
{
	struct sg_policy *p = l->p;
	if (p->n_roles == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct sg_role *v = realloc(p->roles, cap * sizeof(*v));
		struct sg_policy_where *w = v ? realloc(l->where, cap * sizeof(*w)) : NULL;
		if (v)
			p->roles = v;
		if (w)
			l->where = w;
		if (v == NULL || w == NULL) {
			sg_diags_add(l->d, l->file, line, 0, "out of memory");
			return NULL;
		}
		l->cap = cap;
	}
	struct sg_role *r = &p->roles[p->n_roles];
	memset(r, 0, sizeof(*r));
	l->where[p->n_roles] = (struct sg_policy_where){l->file, line};
	p->n_roles++;
	bool ok = (r->name = strdup(name)) != NULL;
	for (int m = 0; m < SG_MODE_COUNT; m++) {
		ok &= (r->allowed[m] = calloc(p->n_ops ? p->n_ops : 1, 1)) != NULL;
		ok &= (r->connector_limit[m] = calloc(p->n_connectors ? p->n_connectors : 1,
		                                      sizeof(struct sg_limit))) != NULL;
	}
	if (!ok) {
		/* Not kept: every role in the list has a name that lookups compare. */
		free(r->name);
		for (int m = 0; m < SG_MODE_COUNT; m++) {
			free(r->allowed[m]);
			free(r->connector_limit[m]);
		}
		p->n_roles--;
		sg_diags_add(l->d, l->file, line, 0, "out of memory");
		return NULL;
	}
	return r;
}

/* Reports a second definition of `name`; true when there was one. */
static bool
defined_before(struct pload *l, const char *name, struct fy_node *key)
{
	for (size_t i = 0; i < l->p->n_roles; i++) {
		if (strcmp(l->p->roles[i].name, name) != 0)
			continue;
		if (strcmp(l->where[i].file, l->file) == 0)
			sg_yaml_error(l->d, l->file, key,
			              "role \"%s\" defined twice (first at "
			              "line %d)",
			              name, l->where[i].line);
		else
			sg_yaml_error(l->d, l->file, key,
			              "role \"%s\" defined twice (first at "
			              "%s:%d)",
			              name, l->where[i].file, l->where[i].line);
		return true;
	}
	return false;
}

/* Returns -1 after reporting a bad class; 0 when absent or valid. */
static int
compile_class(struct pload *l, struct fy_node *map, const char *key, const char *what,
              enum sg_class *out)
{
	struct fy_node *n = sg_yaml_get(map, key);
	const char *s = n ? sg_yaml_str(l->d, l->file, n, what) : NULL;
	if (n == NULL || (s && sg_class_parse(s, out) == 0))
		return 0;
	if (s)
		sg_yaml_error(l->d, l->file, n,
		              "%s: expected critical, normal or background, got \"%.40s\"", what,
		              s);
	return -1;
}

/* Which Sandgate-Priority a role gets by default and the most it may claim. */
static void
compile_priority(struct pload *l, struct sg_role *r, struct fy_node *n)
{
	char what[112];
	snprintf(what, sizeof(what), "role \"%s\": priority", r->name);
	if (sg_yaml_check_keys(l->d, l->file, n, what, priority_keys, COUNT(priority_keys)) != 0 &&
	    !fy_node_is_mapping(n))
		return;
	snprintf(what, sizeof(what), "role \"%s\": priority.default", r->name);
	int bad = compile_class(l, n, "default", what, &r->default_class);
	snprintf(what, sizeof(what), "role \"%s\": priority.max", r->name);
	bad |= compile_class(l, n, "max", what, &r->max_class);
	if (bad == 0 && r->default_class < r->max_class)
		sg_yaml_error(l->d, l->file, n,
		              "role \"%s\": priority.default (%s) is above "
		              "priority.max (%s); lower the default or raise the max",
		              r->name, sg_class_name(r->default_class),
		              sg_class_name(r->max_class));
}

static void
check_limits_present(struct pload *l, const struct sg_role *r, struct fy_node *key)
{
	for (int m = 0; m < SG_MODE_COUNT; m++)
		if (r->mode_allowed[m] && r->limit[m].gcra.emission_ns == 0)
			sg_yaml_error(l->d, l->file, key,
			              "role \"%s\" may use %s mode but has no "
			              "limits.%s; add limits: { %s: { rate: 10/s, burst: 20 } }",
			              r->name, mode_names[m], mode_names[m], mode_names[m]);
}

static void
compile_role(struct pload *l, struct fy_node *key, struct fy_node *val)
{
	int line, col;
	const char *name = sg_yaml_str(l->d, l->file, key, "role name");
	if (name == NULL)
		return;
	sg_yaml_pos(key, &line, &col);
	if (!sg_policy_valid_name(name)) {
		sg_yaml_error(l->d, l->file, key,
		              "role name: use 1 to 64 lowercase letters, "
		              "digits, '_' or '-', starting with a letter, got \"%.64s\"",
		              name);
		return;
	}
	if (defined_before(l, name, key))
		return;
	/* The duplicate check is linear, so the count is capped, far above real use. */
	if (l->p->n_roles >= MAX_ROLES) {
		sg_yaml_error(l->d, l->file, key,
		              "more than %d roles: merge roles that grant the "
		              "same things",
		              MAX_ROLES);
		return;
	}
	struct sg_role *r = add_role(l, name, line);
	char what[96];
	snprintf(what, sizeof(what), "role \"%s\"", name);
	if (r == NULL ||
	    (sg_yaml_check_keys(l->d, l->file, val, what, role_keys, COUNT(role_keys)) != 0 &&
	     !fy_node_is_mapping(val)))
		return;
	struct fy_node *n = sg_yaml_get(val, "description");
	const char *desc = n ? sg_yaml_str(l->d, l->file, n, "description") : "";
	if ((r->description = strdup(desc ? desc : "")) == NULL)
		sg_yaml_error(l->d, l->file, key, "%s: out of memory", what);
	struct fy_node *allow = sg_yaml_get(val, "allow");
	if (allow == NULL || !fy_node_is_sequence(allow))
		sg_yaml_error(l->d, l->file, allow ? allow : key,
		              "%s: allow: expected a list of "
		              "rules such as - { operations: [\"crm.*\"], modes: [sandbox] }",
		              what);
	void *it = NULL;
	struct fy_node *rule;
	while (allow && fy_node_is_sequence(allow) &&
	       (rule = fy_node_sequence_iterate(allow, &it)) != NULL)
		compile_rule(l, r, rule);
	snprintf(what, sizeof(what), "role \"%s\": limits", name);
	if ((n = sg_yaml_get(val, "limits")) != NULL) {
		struct sg_limit *defaults[SG_MODE_COUNT] = {&r->limit[0], &r->limit[1]};
		compile_mode_limits(l, what, n, defaults, 0);
	}
	if ((n = sg_yaml_get(val, "connector_limits")) != NULL)
		compile_connector_limits(l, r, n);
	r->default_class = r->max_class = SG_CLASS_NORMAL;
	if ((n = sg_yaml_get(val, "priority")) != NULL)
		compile_priority(l, r, n);
	check_limits_present(l, r, key);
}

/* ---- documents --------------------------------------------------------- */

static void
compile_doc(struct pload *l, struct fy_node *root)
{
	if (sg_yaml_check_keys(l->d, l->file, root, "policy", top_keys, COUNT(top_keys)) != 0 &&
	    !fy_node_is_mapping(root))
		return;
	struct fy_node *kind = sg_yaml_get(root, "kind"), *name = sg_yaml_get(root, "name");
	const char *k = kind ? sg_yaml_str(l->d, l->file, kind, "kind") : NULL;
	if (kind == NULL || name == NULL)
		sg_yaml_error(l->d, l->file, root,
		              "missing key \"%s\": a policy starts with "
		              "kind: policy and name: NAME",
		              kind == NULL ? "kind" : "name");
	if (k && strcmp(k, "policy") != 0)
		sg_yaml_error(l->d, l->file, kind, "kind: expected \"policy\", got \"%.40s\"", k);
	const char *nm = name ? sg_yaml_str(l->d, l->file, name, "name") : NULL;
	if (nm && !sg_policy_valid_name(nm))
		sg_yaml_error(l->d, l->file, name,
		              "name: use 1 to 64 lowercase letters, digits, "
		              "'_' or '-', starting with a letter");
	struct fy_node *d = sg_yaml_get(root, "description");
	if (d)
		sg_yaml_str(l->d, l->file, d, "description");
	struct fy_node *roles = sg_yaml_get(root, "roles"), *rules = sg_yaml_get(root, "rules");
	struct fy_node *budgets = sg_yaml_get(root, "budgets");
	struct fy_node *egress = sg_yaml_get(root, "egress"), *dlp = sg_yaml_get(root, "dlp");
	if (rules != NULL)
		sg_policy_rules_collect(l, rules);
	if (budgets != NULL)
		sg_policy_budgets_compile(l, budgets);
	if (egress != NULL)
		sg_policy_egress_compile(l, egress);
	if (dlp != NULL)
		sg_policy_dlp_collect(l, dlp);
	/* A document may hold only shared sections; otherwise it defines roles. */
	if (roles == NULL && (rules != NULL || budgets != NULL || egress != NULL || dlp != NULL))
		return;
	if (roles == NULL || !fy_node_is_mapping(roles)) {
		sg_yaml_error(l->d, l->file, roles ? roles : root,
		              "roles: expected a mapping of "
		              "role names to definitions");
		return;
	}
	void *it = NULL;
	struct fy_node_pair *p;
	while ((p = fy_node_mapping_iterate(roles, &it)) != NULL)
		compile_role(l, fy_node_pair_key(p), fy_node_pair_value(p));
}

/* Catalog-wide lists for "did you mean" hints and the data-domain check. */
static int
index_catalog(struct pload *l)
{
	const struct sg_catalog *cat = l->cat;
	l->conn_names = calloc(cat->n ? cat->n : 1, sizeof(*l->conn_names));
	l->domains = calloc(cat->n_ops ? cat->n_ops : 1, sizeof(*l->domains));
	if (l->conn_names == NULL || l->domains == NULL)
		return -1;
	for (size_t i = 0; i < cat->n; i++) {
		l->conn_names[i] = cat->v[i]->name;
		for (size_t j = 0; j < cat->v[i]->n_ops; j++) {
			const char *dom = cat->v[i]->ops[j].data_domain;
			if (!sg_policy_in_list(dom, l->domains, l->n_domains))
				l->domains[l->n_domains++] = dom;
		}
	}
	return 0;
}

static int
role_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sg_role *)a)->name, ((const struct sg_role *)b)->name);
}

struct sg_policy *
sg_policy_compile(const struct sg_policy_source *src, size_t n, const struct sg_catalog *cat,
                  struct sg_diags *d)
{
	size_t before = d->n;
	struct pload l = {.cat = cat, .d = d};
	l.p = calloc(1, sizeof(*l.p));
	if (l.p == NULL || index_catalog(&l) != 0) {
		sg_diags_add(d, NULL, 0, 0, "out of memory while compiling policies");
		goto done;
	}
	l.p->n_ops = cat->n_ops;
	l.p->n_connectors = cat->n;
	l.docs = calloc(n ? n : 1, sizeof(*l.docs));
	if (l.docs == NULL) {
		sg_diags_add(d, NULL, 0, 0, "out of memory while compiling policies");
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		size_t mark = d->n;
		l.file = src[i].file;
		struct fy_document *doc = sg_yaml_parse(src[i].file, src[i].text, src[i].len, d);
		if (doc != NULL) {
			l.docs[l.n_docs++] = doc;
			compile_doc(&l, fy_document_root(doc));
		}
		sg_yaml_sort_diags(d, mark);
	}
	if (d->n == before && l.p->n_roles > 1)
		qsort(l.p->roles, l.p->n_roles, sizeof(*l.p->roles), role_cmp);
	sg_policy_rules_compile(&l);
	sg_policy_dlp_compile(&l);
done:
	for (size_t i = 0; i < l.n_docs; i++)
		fy_document_destroy(l.docs[i]);
	free(l.docs);
	free(l.pending);
	free(l.where);
	free(l.conn_names);
	free(l.domains);
	if (d->n != before) {
		sg_policy_free(l.p);
		return NULL;
	}
	return l.p;
}

void
sg_policy_free(struct sg_policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n_roles; i++) {
		struct sg_role *r = &p->roles[i];
		free(r->name);
		free(r->description);
		for (int m = 0; m < SG_MODE_COUNT; m++) {
			free(r->allowed[m]);
			free(r->connector_limit[m]);
			free(r->rules[m]);
		}
	}
	free(p->roles);
	sg_policy_rules_free(p);
	sg_budgets_free(p->budgets);
	sg_egress_policy_free(p->egress);
	sg_dlp_policy_free(p->dlp);
	free(p);
}

static int
role_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct sg_role *)elem)->name);
}

const struct sg_role *
sg_policy_role(const struct sg_policy *p, const char *name)
{
	if (p == NULL || name == NULL || p->n_roles == 0)
		return NULL;
	return bsearch(name, p->roles, p->n_roles, sizeof(*p->roles), role_key_cmp);
}

/* `op` must come from the catalog the policy was compiled against. */
bool
sg_role_allows(const struct sg_role *r, enum sg_mode m, const struct sg_operation *op)
{
	if (r == NULL || op == NULL || (unsigned)m >= SG_MODE_COUNT || !r->mode_allowed[m])
		return false;
	return r->allowed[m][op->index] != 0;
}

const struct sg_limit *
sg_role_limit(const struct sg_role *r, enum sg_mode m, const struct sg_connector *c)
{
	if (r == NULL || (unsigned)m >= SG_MODE_COUNT)
		return NULL;
	if (c != NULL && r->connector_limit[m] != NULL &&
	    r->connector_limit[m][c->index].gcra.emission_ns != 0)
		return &r->connector_limit[m][c->index];
	return r->limit[m].gcra.emission_ns != 0 ? &r->limit[m] : NULL;
}

const struct sg_rule_list *
sg_role_rules(const struct sg_role *r, enum sg_mode m, const struct sg_operation *op)
{
	if (r == NULL || op == NULL || (unsigned)m >= SG_MODE_COUNT || r->rules[m] == NULL)
		return NULL;
	return &r->rules[m][op->index];
}
