/*
 * The policy's `egress:` section: ordered endpoint rules and a default,
 * compiled into the guard's form (see upstream/sg_egress.h).  Only one
 * document may hold it: rules from two files would have no order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sg_yaml.h"
#include "policy/sg_policy_load.h"
#include "upstream/sg_egress.h"

#define MAX_EGRESS_RULES 1024

static const char *const egress_keys[] = {"rules", "default"};
static const char *const rule_keys[] = {"allow", "deny"};

/* One { allow: X } or { deny: X } entry into `out`; -1 after reporting. */
static int
compile_rule(struct pload *l, struct fy_node *n, size_t i, struct sg_egress_rule_def *out)
{
	char what[64], err[256];
	snprintf(what, sizeof(what), "egress.rules[%zu]", i + 1);
	if (sg_yaml_check_keys(l->d, l->file, n, what, rule_keys, SG_COUNT(rule_keys)) != 0)
		return -1;
	struct fy_node *a = sg_yaml_get(n, "allow"), *d = sg_yaml_get(n, "deny");
	if ((a == NULL) == (d == NULL)) {
		sg_yaml_error(l->d, l->file, n,
		              "%s: give exactly one of allow or deny, such as "
		              "{ deny: \"*.internal\" } or { allow: \"api.example.com\" }",
		              what);
		return -1;
	}
	const char *entry = sg_yaml_str(l->d, l->file, a ? a : d, what);
	if (entry == NULL)
		return -1;
	/* Checked one by one, so every bad entry is reported at its own line. */
	struct sg_egress_list *one = sg_egress_list_new(&entry, 1, err, sizeof(err));
	if (one == NULL) {
		sg_yaml_error(l->d, l->file, a ? a : d, "%s: %s", what, err);
		return -1;
	}
	sg_egress_list_free(one);
	*out = (struct sg_egress_rule_def){.allow = a != NULL, .entry = entry};
	return 0;
}

/* The rules list into `defs`; the count, or -1 after reporting. */
static long
compile_rules(struct pload *l, struct fy_node *n, struct sg_egress_rule_def *defs)
{
	if (!fy_node_is_sequence(n)) {
		sg_yaml_error(l->d, l->file, n,
		              "egress.rules: expected a list such as "
		              "- { deny: \"*.internal\" }");
		return -1;
	}
	if (fy_node_sequence_item_count(n) > MAX_EGRESS_RULES) {
		sg_yaml_error(l->d, l->file, n,
		              "egress.rules: more than %d rules; use CIDRs or wildcards",
		              MAX_EGRESS_RULES);
		return -1;
	}
	void *it = NULL;
	struct fy_node *item;
	size_t count = 0;
	bool bad = false;
	while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
		bad |= compile_rule(l, item, count, &defs[count]) != 0;
		count++;
	}
	return bad ? -1 : (long)count;
}

/* `default: allow | deny`; allow when absent. */
static int
compile_default(struct pload *l, struct fy_node *root, bool *allow)
{
	struct fy_node *n = sg_yaml_get(root, "default");
	*allow = true;
	if (n == NULL)
		return 0;
	const char *s = sg_yaml_str(l->d, l->file, n, "egress.default");
	if (s == NULL)
		return -1;
	if (strcmp(s, "allow") != 0 && strcmp(s, "deny") != 0) {
		sg_yaml_error(l->d, l->file, n,
		              "egress.default: expected allow or deny, got \"%.40s\"", s);
		return -1;
	}
	*allow = strcmp(s, "allow") == 0;
	return 0;
}

void
sg_policy_egress_compile(struct pload *l, struct fy_node *n)
{
	if (l->egress_seen) {
		sg_yaml_error(l->d, l->file, n,
		              "egress: defined in two policy documents; keep one, since rules "
		              "apply in order");
		return;
	}
	l->egress_seen = true;
	if (sg_yaml_check_keys(l->d, l->file, n, "egress", egress_keys, SG_COUNT(egress_keys)) !=
	        0 &&
	    !fy_node_is_mapping(n))
		return;
	struct sg_egress_rule_def *defs = calloc(MAX_EGRESS_RULES, sizeof(*defs));
	if (defs == NULL) {
		sg_yaml_error(l->d, l->file, n, "egress: out of memory");
		return;
	}
	struct fy_node *rules = sg_yaml_get(n, "rules");
	long count = rules ? compile_rules(l, rules, defs) : 0;
	bool allow;
	int bad = compile_default(l, n, &allow);
	if (count >= 0 && bad == 0) {
		char err[256];
		l->p->egress = sg_egress_policy_new(defs, (size_t)count, allow, err, sizeof(err));
		if (l->p->egress == NULL)
			sg_yaml_error(l->d, l->file, n, "%s", err);
	}
	free(defs);
}

const struct sg_egress_policy *
sg_policy_egress(const struct sg_policy *p)
{
	return p ? p->egress : NULL;
}
