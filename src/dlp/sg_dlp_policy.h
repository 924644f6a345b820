/*
 * sg_dlp_policy: the compiled form of the policy's `dlp:` section, shared by
 * its compiler (src/policy/sg_policy_dlp.c), which builds it, and
 * sg_dlp_action.c, which reads it.  Nothing else looks inside: the request
 * path asks through sg_dlp_action.h.
 *
 * Every string is owned by the policy (the YAML document it came from is
 * gone once the compile ends).
 */
#ifndef SG_DLP_POLICY_H
#define SG_DLP_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "dlp/sg_dlp_action.h"
#include "policy/sg_policy.h"

/* A string list; n == 0 means "any". */
struct sg_dlp_names {
	char **v;
	size_t n;
};

/* One `actions:` entry. */
struct sg_dlp_action_rule {
	char *selector; /* "pii.email", "secret.*" or "*" */
	struct sg_dlp_names roles, domains;
	bool modes[SG_MODE_COUNT]; /* all true when the entry names none */
	int direction;             /* enum sg_dlp_direction, or -1 for both */
	enum sg_dlp_action action;
};

/* One `mask:` entry: how much a mask keeps of a class (or family). */
struct sg_dlp_mask_rule {
	char *selector;
	unsigned keep;
};

/* One `allow_fields:` entry. */
struct sg_dlp_allow_rule {
	struct sg_dlp_names roles, ops; /* ops: "crm.get_contact", "crm.*" or "*" */
	struct sg_dlp_names fields;     /* RFC 6901 pointers, "*" for any index or name */
};

struct sg_dlp_policy {
	struct sg_dlp_rule_def *rules; /* custom rules; strings owned */
	size_t n_rules;
	struct sg_dlp_action_rule *actions; /* in policy order: the first match wins */
	size_t n_actions;
	struct sg_dlp_mask_rule *masks;
	size_t n_masks;
	struct sg_dlp_allow_rule *allows; /* in policy order: the first match gives the list */
	size_t n_allows;
};

void sg_dlp_policy_free(struct sg_dlp_policy *p);

/* Whether class `c` is selected by `sel` ("*", "family.*" or a class name). */
bool sg_dlp_class_selected(const char *sel, const char *c);
/*
 * Whether `s` is a data class name: dotted lowercase words ("pii.email",
 * "acme.customer.id"), at least two, [a-z][a-z0-9_]* each, at most 64
 * characters.  With `selector`, "*" and "family.*" are accepted too.
 */
bool sg_dlp_class_valid(const char *s, bool selector);

#endif
