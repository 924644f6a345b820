/*
 * The policy's `dlp:` section: what the DLP screen looks for beyond the
 * built-in rules, and what it does with what it finds.  Only one document
 * may hold it: actions apply in order, and two files would have none.
 *
 *   dlp:
 *     rules:            # custom detection rules, added to the built-in ones
 *       - id: acme_customer_id          # snake_case, unique, not a built-in id
 *         class: pii.customer_id        # a dotted data class: family.kind
 *         pattern: "ACME-[0-9]{8}"      # Vectorscan (PCRE without lookaround)
 *         check: luhn                   # optional: luhn, mod97, ssn, jwt, ipv4,
 *                                       #   ipv6, phone, date, or entropy>=N
 *         confidence: 80                # optional, 0-100 (default 80)
 *         field_hint: "customer|client" # optional: only in fields so named
 *     actions:          # the first entry that matches a finding decides
 *       - class: pii.email              # a class, a family ("secret.*") or "*"
 *         roles: [explorer]             # optional: every role when absent
 *         modes: [live]                 # optional: sandbox, live
 *         direction: response           # optional: request or response
 *         domains: [pii]                # optional: the operations' data domains
 *         action: mask                  # allow, alert, mask, tokenize, redact, block
 *     mask:             # how much a mask keeps, per class or family
 *       financial.card: { keep_last: 4 }
 *     allow_fields:     # the reply fields a role may see; the first match decides
 *       - roles: [explorer]             # optional: every role when absent
 *         operations: ["crm.get_contact"]   # connector.operation, connector.* or *
 *         fields: ["/id", "/name"]      # JSON pointers; "*" is any index or name
 *
 * A finding no action entry matches gets the defaults (secrets blocked,
 * every class masked in a sandbox reply from a real upstream, the rest
 * alerted): see sg_dlp_default_action.  A class family the built-in rules
 * do not know is fine (custom rules make new ones), but every name is
 * checked: a role, mode, domain, operation, action or check that does not
 * exist is an error with a "did you mean", and each custom pattern is
 * compiled both ways the scanner compiles it, so one Vectorscan refuses is
 * an error at its line here, not a failed reload later.
 *
 * Roles may be defined in any document, so the section is compiled after
 * every document has been read.
 */
#include <hs/hs.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sg_yaml.h"
#include "dlp/sg_dlp_policy.h"
#include "policy/sg_policy_load.h"

#define MAX_DLP_RULES 256
#define MAX_ENTRIES 1024
#define MAX_NAMES 64
#define MAX_FIELDS 256
#define MAX_KEEP 64
#define DEFAULT_CONFIDENCE 80
#define MAX_PATTERN 1024 /* as sg_dlp_scan.c: longer ones are nearly always a mistake */

static const char *const dlp_keys[] = {"rules", "actions", "mask", "allow_fields"};
static const char *const rule_keys[] = {"id",    "class",      "pattern",
                                        "check", "confidence", "field_hint"};
static const char *const action_keys[] = {"class", "action",    "roles",
                                          "modes", "direction", "domains"};
static const char *const mask_keys[] = {"keep_last"};
static const char *const allow_keys[] = {"roles", "operations", "fields"};

/* The section's state while it compiles. */
struct dload {
	struct pload *l;
	struct sg_dlp_policy *p;
	bool oom;
};

static char *
keep_str(struct dload *x, const char *s)
{
	char *d = strdup(s);
	x->oom |= d == NULL;
	return d;
}

static void
names_copy(struct dload *x, struct sg_dlp_names *dst, const char *const *src, long n)
{
	if (n <= 0)
		return;
	dst->v = calloc((size_t)n, sizeof(*dst->v));
	if (dst->v == NULL) {
		x->oom = true;
		return;
	}
	for (long i = 0; i < n; i++)
		dst->v[dst->n++] = keep_str(x, src[i]);
}

/* The items of sequence `n` under `what`, or -1 after reporting. */
static long
seq_count(struct dload *x, struct fy_node *n, const char *what, const char *example, size_t max)
{
	if (!fy_node_is_sequence(n)) {
		sg_yaml_error(x->l->d, x->l->file, n, "%s: expected a list such as %s", what,
		              example);
		return -1;
	}
	if ((size_t)fy_node_sequence_item_count(n) > max) {
		sg_yaml_error(x->l->d, x->l->file, n, "%s: more than %zu entries; merge some", what,
		              max);
		return -1;
	}
	return fy_node_sequence_item_count(n);
}

/* A required string member; NULL after reporting. */
static const char *
need_str(struct dload *x, struct fy_node *map, const char *key, const char *what,
         const char *advice)
{
	struct fy_node *n = sg_yaml_get(map, key);
	if (n == NULL) {
		sg_yaml_error(x->l->d, x->l->file, map, "%s: missing %s; %s", what, key, advice);
		return NULL;
	}
	return sg_yaml_str(x->l->d, x->l->file, n, what);
}

static void
bad_class(struct dload *x, struct fy_node *n, const char *what, const char *s, bool selector)
{
	sg_yaml_error(x->l->d, x->l->file, n,
	              selector
	                  ? "%s: class \"%.64s\": expected a data class such as \"pii.email\", "
	                    "a family such as \"secret.*\", or \"*\" (dotted lowercase words)"
	                  : "%s: class \"%.64s\": expected a data class such as "
	                    "\"pii.customer_id\" (family.kind, dotted lowercase words)",
	              what, s);
}

/* ---- rules --------------------------------------------------------------- */

static bool
valid_id(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64 || s[0] < 'a' || s[0] > 'z')
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

static bool
builtin_id(const char *id)
{
	for (size_t i = 0; i < sg_dlp_builtin_count; i++)
		if (strcmp(sg_dlp_builtin_rules[i].id, id) == 0)
			return true;
	return false;
}

/* Where each custom rule sits, for "defined twice" errors. */
struct rule_at {
	struct fy_node *node;
};

static void
rule_id(struct dload *x, struct fy_node *n, const char *what, const struct rule_at *at,
        struct sg_dlp_rule_def *out)
{
	const char *id = need_str(x, n, "id", what, "give each rule a short name such as acme_id");
	struct fy_node *idn = sg_yaml_get(n, "id");
	if (id == NULL)
		return;
	if (!valid_id(id)) {
		sg_yaml_error(x->l->d, x->l->file, idn,
		              "%s: id \"%.64s\": use 1 to 64 lowercase letters, digits or '_', "
		              "starting with a letter",
		              what, id);
		return;
	}
	if (builtin_id(id)) {
		sg_yaml_error(x->l->d, x->l->file, idn,
		              "%s: id \"%s\" is a built-in rule's; choose another", what, id);
		return;
	}
	for (size_t i = 0; i < x->p->n_rules; i++)
		if (x->p->rules[i].id != NULL && strcmp(x->p->rules[i].id, id) == 0) {
			int line, col;
			sg_yaml_pos(at[i].node, &line, &col);
			sg_yaml_error(x->l->d, x->l->file, idn,
			              "%s: id \"%s\" defined twice (first at line %d)", what, id,
			              line);
			return;
		}
	out->id = keep_str(x, id);
}

static void
rule_class(struct dload *x, struct fy_node *n, const char *what, struct sg_dlp_rule_def *out)
{
	const char *c = need_str(x, n, "class", what, "say what it finds, such as pii.customer_id");
	if (c != NULL && !sg_dlp_class_valid(c, false))
		bad_class(x, sg_yaml_get(n, "class"), what, c, false);
	else if (c != NULL)
		out->data_class = keep_str(x, c);
}

/* "entropy>=3.5" (spaces allowed): the threshold, or -1 when it is none. */
static int
entropy_threshold(const char *s, double *out)
{
	char buf[64], *end;
	size_t n = 0;
	for (; *s != '\0' && n + 1 < sizeof(buf); s++)
		if (*s != ' ')
			buf[n++] = *s;
	buf[n] = '\0';
	if (*s != '\0' || strncmp(buf, "entropy>=", 9) != 0 || buf[9] == '\0')
		return -1;
	*out = strtod(buf + 9, &end);
	return *end == '\0' && isfinite(*out) ? 0 : -1;
}

static void
rule_check(struct dload *x, struct fy_node *n, const char *what, struct sg_dlp_rule_def *out)
{
	struct fy_node *cn = sg_yaml_get(n, "check");
	const char *c = cn != NULL ? sg_yaml_str(x->l->d, x->l->file, cn, what) : NULL;
	const char *names[SG_DLP_CHECK_COUNT];
	char h[96];
	double min;
	if (c == NULL)
		return;
	if (entropy_threshold(c, &min) == 0) {
		if (min <= 0 || min > 8)
			sg_yaml_error(x->l->d, x->l->file, cn,
			              "%s: check \"%.40s\": the entropy threshold is bits per "
			              "character, above 0 and at most 8 (3.5 suits random keys)",
			              what, c);
		out->check = SG_DLP_CHECK_ENTROPY;
		out->min_entropy = min;
		return;
	}
	if (sg_dlp_check_parse(c, &out->check) == 0 && out->check != SG_DLP_CHECK_ENTROPY)
		return;
	if (strcmp(c, "entropy") == 0) {
		sg_yaml_error(x->l->d, x->l->file, cn,
		              "%s: check \"entropy\" needs a threshold in bits per character, such "
		              "as \"entropy>=3.5\"",
		              what);
		return;
	}
	for (int i = 0; i < SG_DLP_CHECK_COUNT; i++)
		names[i] = sg_dlp_check_name((enum sg_dlp_check)i);
	sg_yaml_error(x->l->d, x->l->file, cn,
	              "%s: unknown check \"%.40s\"%s; checks are none, luhn, mod97, ssn, jwt, "
	              "ipv4, ipv6, phone, date and entropy>=N",
	              what, c, sg_policy_hint(c, names, SG_DLP_CHECK_COUNT, h, sizeof(h)));
}

/* Vectorscan's words for a few mistakes, in a policy writer's terms (as sg_dlp_scan.c). */
static const char *
pattern_advice(const char *hs_message)
{
	if (strstr(hs_message, "empty buffer") != NULL)
		return "it can match an empty string; make it require at least one character";
	if (strstr(hs_message, "too large") != NULL || strstr(hs_message, "exhausted") != NULL)
		return "it is too large to compile; use smaller repeat counts or fewer "
		       "alternatives";
	return NULL;
}

/*
 * Compiles one pattern alone, both ways the scanner will (plain, and with
 * start-of-match tracking, which refuses some patterns the plain way
 * takes), so a pattern the snapshot's database would refuse is an error
 * at its own line.  Not through sg_dlp_db_compile: that compiles every
 * built-in rule too, about 4 s of CPU, and a policy is compiled at every
 * apply, reload and key creation.
 */
static void
check_pattern(struct dload *x, struct fy_node *at, const char *what, const char *pat)
{
	static const unsigned flags[] = {0, HS_FLAG_SOM_LEFTMOST};
	hs_expr_info_t *info = NULL;
	hs_compile_error_t *ce = NULL;
	hs_database_t *db = NULL;
	const char *msg = NULL;
	if (strlen(pat) > MAX_PATTERN) {
		sg_yaml_error(x->l->d, x->l->file, at,
		              "%s: pattern: longer than %d characters; shorten it", what,
		              MAX_PATTERN);
		return;
	}
	if (hs_expression_info(pat, 0, &info, &ce) != HS_SUCCESS)
		msg = ce != NULL ? ce->message : "invalid";
	else if (info->min_width == 0)
		msg = "empty buffer";
	for (size_t i = 0; msg == NULL && i < SG_COUNT(flags); i++) {
		if (hs_compile(pat, flags[i], HS_MODE_BLOCK, NULL, &db, &ce) != HS_SUCCESS)
			msg = ce != NULL ? ce->message : "invalid";
		hs_free_database(db);
		db = NULL;
	}
	if (msg != NULL) {
		const char *advice = pattern_advice(msg);
		sg_yaml_error(
		    x->l->d, x->l->file, at, "%s: pattern \"%.80s\": %s%s", what, pat,
		    advice != NULL ? advice : "Vectorscan refuses it: ", advice != NULL ? "" : msg);
	}
	free(info);
	hs_free_compile_error(ce);
}

static void
rule_rest(struct dload *x, struct fy_node *n, const char *what, struct sg_dlp_rule_def *out)
{
	struct fy_node *v;
	char label[96];
	long long conf = DEFAULT_CONFIDENCE;
	const char *pat = need_str(x, n, "pattern", what,
	                           "give the regular expression it looks for, such as "
	                           "\"ACME-[0-9]{8}\"");
	if (pat != NULL)
		check_pattern(x, sg_yaml_get(n, "pattern"), what, pat);
	if (pat != NULL)
		out->pattern = keep_str(x, pat);
	snprintf(label, sizeof(label), "%s.confidence", what);
	if ((v = sg_yaml_get(n, "confidence")) != NULL)
		sg_yaml_int(x->l->d, x->l->file, v, label, 0, 100, &conf);
	out->confidence = (uint8_t)conf;
	if ((v = sg_yaml_get(n, "field_hint")) == NULL)
		return;
	const char *hint = sg_yaml_str(x->l->d, x->l->file, v, what);
	if (hint != NULL && (hint[0] == '\0' || hint[0] == '|' || hint[strlen(hint) - 1] == '|' ||
	                     strstr(hint, "||") != NULL))
		sg_yaml_error(x->l->d, x->l->file, v,
		              "%s: field_hint \"%.64s\": expected words a field's name holds, "
		              "separated by '|', such as \"birth|dob\"",
		              what, hint);
	else if (hint != NULL)
		out->field_hint = keep_str(x, hint);
}

static void
compile_rule(struct dload *x, struct fy_node *n, size_t i, struct rule_at *at)
{
	char what[64];
	struct sg_dlp_rule_def *out = &x->p->rules[x->p->n_rules];
	snprintf(what, sizeof(what), "dlp.rules[%zu]", i + 1);
	*out = (struct sg_dlp_rule_def){0};
	at[x->p->n_rules] = (struct rule_at){n};
	/* An unknown key is most likely a misspelt known one: that error alone. */
	if (sg_yaml_check_keys(x->l->d, x->l->file, n, what, rule_keys, SG_COUNT(rule_keys)) != 0)
		return;
	rule_id(x, n, what, at, out);
	x->p->n_rules++; /* kept even when broken: the policy is freed whole */
	rule_class(x, n, what, out);
	rule_check(x, n, what, out);
	rule_rest(x, n, what, out);
}

static void
compile_rules(struct dload *x, struct fy_node *n)
{
	long count = seq_count(x, n, "dlp.rules",
	                       "- { id: acme_id, class: pii.acme_id, pattern: \"ACME-[0-9]{8}\" }",
	                       MAX_DLP_RULES);
	if (count <= 0)
		return;
	struct rule_at *at = calloc((size_t)count, sizeof(*at));
	x->p->rules = calloc((size_t)count, sizeof(*x->p->rules));
	if (at == NULL || x->p->rules == NULL) {
		x->oom = true;
		free(at);
		return;
	}
	void *it = NULL;
	struct fy_node *item;
	for (size_t i = 0; (item = fy_node_sequence_iterate(n, &it)) != NULL; i++)
		compile_rule(x, item, i, at);
	free(at);
}

/* ---- actions ------------------------------------------------------------- */

static void
check_roles(struct dload *x, struct fy_node *n, const char *what, const char *const *v, long count)
{
	const struct sg_policy *p = x->l->p;
	for (long i = 0; i < count; i++) {
		if (sg_policy_role(p, v[i]) != NULL)
			continue;
		bool known = false;
		const char *names[64];
		size_t k = 0;
		for (size_t r = 0; r < p->n_roles; r++) {
			known |=
			    strcmp(p->roles[r].name, v[i]) == 0; /* roles unsorted after errors */
			if (k < 64)
				names[k++] = p->roles[r].name;
		}
		if (known)
			continue;
		char h[96];
		sg_yaml_error(x->l->d, x->l->file, fy_node_sequence_get_by_index(n, (int)i),
		              "%s: unknown role \"%.64s\"%s", what, v[i],
		              sg_policy_hint(v[i], names, k, h, sizeof(h)));
	}
}

static void
opt_roles(struct dload *x, struct fy_node *map, const char *prefix, struct sg_dlp_names *out)
{
	struct fy_node *n = sg_yaml_get(map, "roles");
	const char *v[MAX_NAMES];
	char what[96];
	if (n == NULL)
		return;
	snprintf(what, sizeof(what), "%s.roles", prefix);
	long count = sg_policy_str_list(x->l, n, what, v, MAX_NAMES);
	check_roles(x, n, what, v, count);
	names_copy(x, out, v, count);
}

static void
action_domains(struct dload *x, struct fy_node *map, const char *prefix, struct sg_dlp_names *out)
{
	struct fy_node *n = sg_yaml_get(map, "domains");
	const char *v[MAX_NAMES];
	char what[96], h[96];
	if (n == NULL)
		return;
	snprintf(what, sizeof(what), "%s.domains", prefix);
	long count = sg_policy_str_list(x->l, n, what, v, MAX_NAMES);
	for (long i = 0; i < count; i++)
		if (!sg_policy_in_list(v[i], x->l->domains, x->l->n_domains))
			sg_yaml_error(
			    x->l->d, x->l->file, fy_node_sequence_get_by_index(n, (int)i),
			    "%s: no operation in the catalog has data domain \"%.40s\"%s", what,
			    v[i],
			    sg_policy_hint(v[i], x->l->domains, x->l->n_domains, h, sizeof(h)));
	names_copy(x, out, v, count);
}

static void
action_direction(struct dload *x, struct fy_node *map, const char *what, int *out)
{
	static const char *const dirs[] = {"request", "response"};
	struct fy_node *n = sg_yaml_get(map, "direction");
	const char *s = n != NULL ? sg_yaml_str(x->l->d, x->l->file, n, what) : NULL;
	char h[96];
	*out = -1;
	if (s == NULL)
		return;
	for (int i = 0; i < SG_DLP_DIRECTION_COUNT; i++)
		if (strcmp(s, dirs[i]) == 0) {
			*out = i;
			return;
		}
	sg_yaml_error(x->l->d, x->l->file, n,
	              "%s: unknown direction \"%.40s\"%s; expected request or response (leave it "
	              "out for both)",
	              what, s, sg_policy_hint(s, dirs, SG_COUNT(dirs), h, sizeof(h)));
}

static void
action_action(struct dload *x, struct fy_node *map, const char *what, enum sg_dlp_action *out)
{
	const char *names[SG_DLP_ACTION_COUNT];
	char h[96];
	const char *s = need_str(x, map, "action", what,
	                         "add action: allow, alert, mask, tokenize, redact or block");
	if (s == NULL || sg_dlp_action_parse(s, out) == 0)
		return;
	for (int i = 0; i < SG_DLP_ACTION_COUNT; i++)
		names[i] = sg_dlp_action_name((enum sg_dlp_action)i);
	sg_yaml_error(x->l->d, x->l->file, sg_yaml_get(map, "action"),
	              "%s: unknown action \"%.40s\"%s; actions are allow, alert, mask, tokenize, "
	              "redact and block",
	              what, s, sg_policy_hint(s, names, SG_DLP_ACTION_COUNT, h, sizeof(h)));
}

static void
compile_action(struct dload *x, struct fy_node *n, size_t i)
{
	char what[64], label[96];
	struct sg_dlp_action_rule *a = &x->p->actions[x->p->n_actions];
	snprintf(what, sizeof(what), "dlp.actions[%zu]", i + 1);
	*a = (struct sg_dlp_action_rule){.direction = -1};
	if (sg_yaml_check_keys(x->l->d, x->l->file, n, what, action_keys, SG_COUNT(action_keys)) !=
	    0)
		return;
	x->p->n_actions++;
	const char *c =
	    need_str(x, n, "class", what, "name a class (pii.email), a family (secret.*) or *");
	if (c != NULL && !sg_dlp_class_valid(c, true))
		bad_class(x, sg_yaml_get(n, "class"), what, c, true);
	else if (c != NULL)
		a->selector = keep_str(x, c);
	action_action(x, n, what, &a->action);
	opt_roles(x, n, what, &a->roles);
	struct fy_node *m = sg_yaml_get(n, "modes");
	snprintf(label, sizeof(label), "%s.modes", what);
	if (m != NULL)
		sg_policy_modes(x->l, m, label, a->modes);
	else
		a->modes[SG_MODE_SANDBOX] = a->modes[SG_MODE_LIVE] = true;
	action_direction(x, n, what, &a->direction);
	action_domains(x, n, what, &a->domains);
}

static void
compile_actions(struct dload *x, struct fy_node *n)
{
	long count =
	    seq_count(x, n, "dlp.actions", "- { class: \"secret.*\", action: block }", MAX_ENTRIES);
	if (count <= 0)
		return;
	x->p->actions = calloc((size_t)count, sizeof(*x->p->actions));
	if (x->p->actions == NULL) {
		x->oom = true;
		return;
	}
	void *it = NULL;
	struct fy_node *item;
	for (size_t i = 0; (item = fy_node_sequence_iterate(n, &it)) != NULL; i++)
		compile_action(x, item, i);
}

/* ---- masks --------------------------------------------------------------- */

static void
compile_mask(struct dload *x, struct fy_node *k, struct fy_node *v)
{
	char what[128];
	long long keep = 0;
	const char *c = sg_yaml_str(x->l->d, x->l->file, k, "dlp.mask");
	if (c == NULL)
		return;
	if (!sg_dlp_class_valid(c, true)) {
		bad_class(x, k, "dlp.mask", c, true);
		return;
	}
	snprintf(what, sizeof(what), "dlp.mask.%s", c);
	if (sg_yaml_check_keys(x->l->d, x->l->file, v, what, mask_keys, SG_COUNT(mask_keys)) != 0)
		return;
	struct fy_node *kn = sg_yaml_get(v, "keep_last");
	if (kn == NULL) {
		sg_yaml_error(x->l->d, x->l->file, v,
		              "%s: missing keep_last; say how many trailing characters a mask "
		              "keeps, such as { keep_last: 4 }",
		              what);
		return;
	}
	snprintf(what, sizeof(what), "dlp.mask.%s.keep_last", c);
	if (sg_yaml_int(x->l->d, x->l->file, kn, what, 0, MAX_KEEP, &keep) != 0)
		return;
	x->p->masks[x->p->n_masks++] = (struct sg_dlp_mask_rule){keep_str(x, c), (unsigned)keep};
}

static void
compile_masks(struct dload *x, struct fy_node *n)
{
	if (!fy_node_is_mapping(n)) {
		sg_yaml_error(x->l->d, x->l->file, n,
		              "dlp.mask: expected a mapping of classes to widths such as "
		              "{ financial.card: { keep_last: 4 } }");
		return;
	}
	int count = fy_node_mapping_item_count(n);
	if (count <= 0)
		return;
	x->p->masks = calloc((size_t)count, sizeof(*x->p->masks));
	if (x->p->masks == NULL) {
		x->oom = true;
		return;
	}
	void *it = NULL;
	struct fy_node_pair *pr;
	while ((pr = fy_node_mapping_iterate(n, &it)) != NULL)
		compile_mask(x, fy_node_pair_key(pr), fy_node_pair_value(pr));
}

/* ---- field allowlists ------------------------------------------------------ */

static void
unknown_op(struct dload *x, struct fy_node *at, const char *what, const struct sg_connector *c,
           const char *op)
{
	const char **names = calloc(c->n_ops ? c->n_ops : 1, sizeof(*names));
	char h[96];
	for (size_t i = 0; names != NULL && i < c->n_ops; i++)
		names[i] = c->ops[i].name;
	sg_yaml_error(x->l->d, x->l->file, at,
	              "%s: unknown operation \"%.64s\" in connector \"%s\"%s", what, op, c->name,
	              names ? sg_policy_hint(op, names, c->n_ops, h, sizeof(h)) : "");
	free(names);
}

/* "*", "crm.*" or "crm.get_contact", each part known to the catalog. */
static void
check_op(struct dload *x, struct fy_node *at, const char *what, const char *pat)
{
	const char *dot = strchr(pat, '.');
	char conn[72], h[96];
	if (strcmp(pat, "*") == 0)
		return;
	if (dot == NULL || dot == pat || dot[1] == '\0' || (size_t)(dot - pat) >= sizeof(conn)) {
		sg_yaml_error(x->l->d, x->l->file, at,
		              "%s: \"%.80s\": use connector.operation, connector.* or *", what,
		              pat);
		return;
	}
	memcpy(conn, pat, (size_t)(dot - pat));
	conn[dot - pat] = '\0';
	const struct sg_connector *c = sg_catalog_find(x->l->cat, conn);
	if (c == NULL)
		sg_yaml_error(x->l->d, x->l->file, at, "%s: unknown connector \"%s\"%s", what, conn,
		              sg_policy_hint(conn, x->l->conn_names, x->l->cat->n, h, sizeof(h)));
	else if (strcmp(dot + 1, "*") != 0 && sg_connector_op(c, dot + 1) == NULL)
		unknown_op(x, at, what, c, dot + 1);
}

/* An RFC 6901 pointer ("" is the whole reply) whose "~" escapes are ~0 or ~1. */
static bool
valid_pointer(const char *s)
{
	if (s[0] != '\0' && s[0] != '/')
		return false;
	for (const char *t = strchr(s, '~'); t != NULL; t = strchr(t + 1, '~'))
		if (t[1] != '0' && t[1] != '1')
			return false;
	return true;
}

static void
allow_list(struct dload *x, struct fy_node *map, const char *prefix, const char *key, size_t max,
           struct sg_dlp_names *out)
{
	struct fy_node *n = sg_yaml_get(map, key);
	char what[96];
	const char **v = calloc(max, sizeof(*v));
	snprintf(what, sizeof(what), "%s.%s", prefix, key);
	if (v == NULL) {
		x->oom = true;
		return;
	}
	long count = n != NULL ? sg_policy_str_list(x->l, n, what, v, max) : 0;
	if (n == NULL)
		sg_yaml_error(x->l->d, x->l->file, map, "%s: missing %s; %s", prefix, key,
		              strcmp(key, "fields") == 0
		                  ? "list the reply fields the roles may see, such as [\"/id\"]"
		                  : "list the operations it binds, such as [\"crm.get_contact\"]");
	for (long i = 0; i < count; i++) {
		struct fy_node *at = fy_node_sequence_get_by_index(n, (int)i);
		if (strcmp(key, "operations") == 0)
			check_op(x, at, what, v[i]);
		else if (!valid_pointer(v[i]))
			sg_yaml_error(x->l->d, x->l->file, at,
			              "%s: \"%.80s\": a field is a JSON pointer such as \"/id\" or "
			              "\"/items/*/email\" (\"~\" written ~0, \"/\" in a name ~1)",
			              what, v[i]);
	}
	names_copy(x, out, v, count);
	free(v);
}

static void
compile_allow(struct dload *x, struct fy_node *n, size_t i)
{
	char what[64];
	struct sg_dlp_allow_rule *a = &x->p->allows[x->p->n_allows];
	snprintf(what, sizeof(what), "dlp.allow_fields[%zu]", i + 1);
	*a = (struct sg_dlp_allow_rule){0};
	if (sg_yaml_check_keys(x->l->d, x->l->file, n, what, allow_keys, SG_COUNT(allow_keys)) != 0)
		return;
	x->p->n_allows++;
	opt_roles(x, n, what, &a->roles);
	allow_list(x, n, what, "operations", MAX_NAMES, &a->ops);
	allow_list(x, n, what, "fields", MAX_FIELDS, &a->fields);
}

static void
compile_allows(struct dload *x, struct fy_node *n)
{
	long count = seq_count(x, n, "dlp.allow_fields",
	                       "- { roles: [explorer], operations: [\"crm.get_contact\"], fields: "
	                       "[\"/id\"] }",
	                       MAX_ENTRIES);
	if (count <= 0)
		return;
	x->p->allows = calloc((size_t)count, sizeof(*x->p->allows));
	if (x->p->allows == NULL) {
		x->oom = true;
		return;
	}
	void *it = NULL;
	struct fy_node *item;
	for (size_t i = 0; (item = fy_node_sequence_iterate(n, &it)) != NULL; i++)
		compile_allow(x, item, i);
}

/* ---- the section ----------------------------------------------------------- */

void
sg_policy_dlp_collect(struct pload *l, struct fy_node *n)
{
	if (l->dlp_node != NULL) {
		sg_yaml_error(l->d, l->file, n,
		              "dlp: defined in two policy documents (first in %s); keep one, since "
		              "actions apply in order",
		              l->dlp_file);
		return;
	}
	l->dlp_file = l->file;
	l->dlp_node = n;
}

void
sg_policy_dlp_compile(struct pload *l)
{
	struct fy_node *n = l->dlp_node, *v;
	if (n == NULL)
		return;
	l->file = l->dlp_file;
	size_t before = l->d->n;
	if (sg_yaml_check_keys(l->d, l->file, n, "dlp", dlp_keys, SG_COUNT(dlp_keys)) != 0 &&
	    !fy_node_is_mapping(n))
		return;
	struct dload x = {.l = l, .p = calloc(1, sizeof(*x.p))};
	if (x.p == NULL) {
		sg_yaml_error(l->d, l->file, n, "dlp: out of memory");
		return;
	}
	if ((v = sg_yaml_get(n, "rules")) != NULL)
		compile_rules(&x, v);
	if ((v = sg_yaml_get(n, "actions")) != NULL)
		compile_actions(&x, v);
	if ((v = sg_yaml_get(n, "mask")) != NULL)
		compile_masks(&x, v);
	if ((v = sg_yaml_get(n, "allow_fields")) != NULL)
		compile_allows(&x, v);
	if (x.oom)
		sg_yaml_error(l->d, l->file, n, "dlp: out of memory");
	sg_yaml_sort_diags(l->d, before);
	if (l->d->n != before) {
		sg_dlp_policy_free(x.p);
		return;
	}
	l->p->dlp = x.p;
}

const struct sg_dlp_policy *
sg_policy_dlp(const struct sg_policy *p)
{
	return p ? p->dlp : NULL;
}
