/*
 * sg_policy: roles, what each role may call in each mode, and its rate
 * limits, compiled against a catalog into lookup tables.
 */
#ifndef SG_POLICY_H
#define SG_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/sg_catalog.h"
#include "core/sg_diag.h"
#include "policy/sg_budgets.h"
#include "policy/sg_limit.h"
#include "policy/sg_rules.h"

struct sg_egress_policy;
struct sg_dlp_policy;

enum sg_mode { SG_MODE_SANDBOX = 0, SG_MODE_LIVE = 1, SG_MODE_COUNT };

const char *sg_mode_name(enum sg_mode m);
/* Returns 0 and sets *m for "sandbox" or "live"; -1 otherwise. */
int sg_mode_parse(const char *s, enum sg_mode *m);

struct sg_role {
	char *name;
	char *description;
	bool mode_allowed[SG_MODE_COUNT];
	/* allowed[m][op->index] != 0 when the role may call op in mode m. */
	uint8_t *allowed[SG_MODE_COUNT];
	/* Default limit per (key, connector) in each mode; gcra.emission_ns 0 = none set. */
	struct sg_limit limit[SG_MODE_COUNT];
	/* Per-connector overrides, indexed by connector->index; emission_ns 0 = use default. */
	struct sg_limit *connector_limit[SG_MODE_COUNT];
	/* Every limit a call passes, indexed by operation->index; built from all of the above. */
	struct sg_rule_list *rules[SG_MODE_COUNT];
	enum sg_class default_class; /* without a Sandgate-Priority header */
	enum sg_class max_class;     /* the most a request may claim */
};

struct sg_policy {
	struct sg_role *roles; /* sorted by name */
	size_t n_roles;
	size_t n_ops; /* size of each allowed[] bitmap */
	size_t n_connectors;
	struct sg_rule **rules; /* role limits, upstream limits and `rules:` entries */
	size_t n_rules;
	const struct sg_rule **rule_pool; /* storage behind every sg_rule_list */
	struct sg_budgets *budgets;       /* NULL: no cost budgets */
	struct sg_egress_policy *egress;  /* NULL: no endpoint rules */
	struct sg_dlp_policy *dlp;        /* NULL: no `dlp:` section, the defaults apply */
};

struct sg_policy_source {
	const char *file;
	const char *text;
	size_t len;
};

/*
 * Compiles every policy document in `src` against `cat`.  Roles may be split
 * across files but not defined twice.  Unknown connectors or operations,
 * bad modes and bad limits are reported to `d` with file, line, column and a
 * "did you mean" hint; returns NULL when any was found.
 */
struct sg_policy *sg_policy_compile(const struct sg_policy_source *src, size_t n,
                                    const struct sg_catalog *cat, struct sg_diags *d);
void sg_policy_free(struct sg_policy *p);

const struct sg_role *sg_policy_role(const struct sg_policy *p, const char *name);
bool sg_role_allows(const struct sg_role *r, enum sg_mode m, const struct sg_operation *op);
/*
 * Every limit a call to `op` passes.  Lists exist for operations the role
 * may not call too, so a refusal can still report the caller's standing.
 */
const struct sg_rule_list *sg_role_rules(const struct sg_role *r, enum sg_mode m,
                                         const struct sg_operation *op);
/*
 * The endpoint rules of the policy's `egress:` section, for sg_egress_judge;
 * NULL when there is none.  Owned by the policy.
 */
const struct sg_egress_policy *sg_policy_egress(const struct sg_policy *p);
/*
 * The `dlp:` section's rules, actions and allowlists (see dlp/sg_dlp_action.h);
 * NULL when there is none and the defaults apply.  Owned by the policy.
 */
const struct sg_dlp_policy *sg_policy_dlp(const struct sg_policy *p);
/* The limit for calls by this role to connector `c` in mode `m`, or NULL when unlimited. */
const struct sg_limit *sg_role_limit(const struct sg_role *r, enum sg_mode m,
                                     const struct sg_connector *c);

#endif
