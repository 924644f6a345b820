/*
 * sg_policy_load: state and helpers shared by the two halves of the policy
 * compiler, roles (sg_policy.c) and rules (sg_policy_rules.c).  Internal to
 * src/policy; nothing else includes it.
 */
#ifndef SG_POLICY_LOAD_H
#define SG_POLICY_LOAD_H

#include <libfyaml.h>

#include "policy/sg_policy.h"

#define SG_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Where a role was first defined, for "defined twice" errors. */
struct sg_policy_where {
	const char *file;
	int line;
};

/* One `rules:` entry waiting for every role to be known. */
struct sg_policy_pending {
	const char *file;
	struct fy_node *node;
};

struct pload {
	const struct sg_catalog *cat;
	struct sg_diags *d;
	const char *file; /* the source being compiled */
	struct sg_policy *p;
	struct sg_policy_where *where; /* parallel to p->roles */
	size_t cap;
	const char **conn_names;
	const char **domains; /* distinct data domains in the catalog */
	size_t n_domains;
	/* Documents stay parsed until the end, so rules can name roles from any file. */
	struct fy_document **docs;
	size_t n_docs;
	struct sg_policy_pending *pending;
	size_t n_pending;
	bool egress_seen; /* a document held `egress:`, even a broken one */
	/* The document that holds `dlp:`, compiled once every role is known. */
	const char *dlp_file;
	struct fy_node *dlp_node;
};

extern const char *const sg_policy_mode_names[SG_MODE_COUNT];

/* " (did you mean \"x\"?)" when some candidate is close, else "". */
const char *sg_policy_hint(const char *word, const char *const *candidates, size_t n, char *buf,
                           size_t cap);
bool sg_policy_in_list(const char *s, const char *const *v, size_t n);
bool sg_policy_valid_name(const char *s);
/* A non-empty list of strings, borrowed from the document; the count or -1. */
long sg_policy_str_list(struct pload *l, struct fy_node *n, const char *what, const char **out,
                        size_t max);
/* The modes named in list `n` (already known to exist). */
void sg_policy_modes(struct pload *l, struct fy_node *n, const char *what,
                     bool modes[SG_MODE_COUNT]);
/* One { rate, burst } mapping. */
void sg_policy_limit(struct pload *l, struct fy_node *n, const char *what, struct sg_limit *out);

/* Remembers a document's `rules:` entries for sg_policy_rules_compile. */
void sg_policy_rules_collect(struct pload *l, struct fy_node *rules);
/* Compiles the collected rules and every role's per-operation lists (roles sorted). */
void sg_policy_rules_compile(struct pload *l);
void sg_policy_rules_free(struct sg_policy *p);
/* Compiles a document's `budgets:` section into p->budgets. */
void sg_policy_budgets_compile(struct pload *l, struct fy_node *n);
/* Compiles a document's `egress:` section into p->egress. */
void sg_policy_egress_compile(struct pload *l, struct fy_node *n);
/* Remembers a document's `dlp:` section (one document may hold it). */
void sg_policy_dlp_collect(struct pload *l, struct fy_node *n);
/* Compiles the remembered `dlp:` section into p->dlp, after every document's roles. */
void sg_policy_dlp_compile(struct pload *l);

#endif
