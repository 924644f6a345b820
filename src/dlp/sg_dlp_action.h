/*
 * sg_dlp_action: what the screen does with a finding, and the rewrite that
 * does it.
 *
 * The policy's `dlp:` section (src/policy/sg_policy_dlp.c) compiles into an
 * sg_dlp_policy: custom rules, ordered action rules matched on data class x
 * data domain x role x mode x direction, per-class mask widths, and field
 * allowlists per role and operation.  The first action rule that matches
 * wins; when none does, the fail-closed defaults apply (see
 * sg_dlp_default_action).
 */
#ifndef SG_DLP_ACTION_H
#define SG_DLP_ACTION_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dlp/sg_dlp_rules.h"
#include "dlp/sg_dlp_scan.h"
#include "json/sg_json.h"

/* In rising order of strength: when two findings cover one value, the stronger acts. */
enum sg_dlp_action {
	SG_DLP_ALLOW,
	SG_DLP_ALERT,    /* allow, but count and record */
	SG_DLP_MASK,     /* keep the class's amount (a card's last 4), star the rest */
	SG_DLP_TOKENIZE, /* a stable keyed token, reversible by an audited admin command */
	SG_DLP_REDACT,   /* the span becomes "[REDACTED:class]" */
	SG_DLP_BLOCK,    /* 403 dlp_blocked naming the pointer and the rule, never the value */
	SG_DLP_ACTION_COUNT
};
const char *sg_dlp_action_name(enum sg_dlp_action a);
int sg_dlp_action_parse(const char *s, enum sg_dlp_action *out);

enum sg_dlp_direction { SG_DLP_REQUEST, SG_DLP_RESPONSE, SG_DLP_DIRECTION_COUNT };
const char *sg_dlp_direction_name(enum sg_dlp_direction d);

/* Who and what a finding is judged for. */
struct sg_dlp_subject {
	const char *data_domain; /* the operation's */
	const char *role;
	int mode; /* enum sg_mode */
	enum sg_dlp_direction direction;
	bool real_upstream; /* a reply from a real upstream (not the simulator) */
};

struct sg_dlp_policy;

/*
 * The action for one finding of `data_class`: the first policy rule that
 * matches, else the default.  `p` may be NULL (no dlp section: defaults).
 */
enum sg_dlp_action sg_dlp_policy_action(const struct sg_dlp_policy *p, const char *data_class,
                                        const struct sg_dlp_subject *s);
/*
 * The fail-closed defaults: secret.* blocked both ways for every role; in
 * a sandbox reply from a real upstream every class masked; elsewhere
 * alert (counted and recorded, the data left as it is).
 */
enum sg_dlp_action sg_dlp_default_action(const char *data_class, const struct sg_dlp_subject *s);

/* The custom rules to compile into the snapshot's database (borrowed from the policy). */
const struct sg_dlp_rule_def *sg_dlp_policy_rules(const struct sg_dlp_policy *p, size_t *n);

/*
 * The fields `role` may see in the reply of `op_name` ("connector.operation"),
 * as RFC 6901 pointers with "*" for array items; NULL when no allowlist
 * binds it (every field may be seen).
 */
const char *const *sg_dlp_policy_allowlist(const struct sg_dlp_policy *p, const char *role,
                                           const char *op_name, size_t *n);

/*
 * How many trailing characters a mask keeps for `data_class` (card 4, iban
 * 4, ssn 4, ...), or SG_DLP_MASK_KEEP_DOMAIN: an email keeps the part from
 * its '@' by default.
 */
#define SG_DLP_MASK_KEEP_DOMAIN UINT_MAX
unsigned sg_dlp_policy_mask_keep(const struct sg_dlp_policy *p, const char *data_class);

/* One finding with the action chosen for it. */
struct sg_dlp_verdict {
	const struct sg_dlp_hit *hit;
	enum sg_dlp_action action;
};

/*
 * The key a tokenize action uses: 32 bytes derived from the vault's master
 * key for "dlp-tokenize", so tokens are stable across restarts and differ
 * between installations.
 */
#define SG_DLP_TOKEN_KEY_LEN 32
struct sg_dlp_token_key {
	unsigned char k[SG_DLP_TOKEN_KEY_LEN];
};
struct sg_vault_key;
/* The token key of the installation whose master key is `master` (wipe it after use). */
void sg_dlp_token_key_derive(struct sg_dlp_token_key *out, const struct sg_vault_key *master);

/*
 * Writes `root` to `out` with every verdict of MASK, TOKENIZE or REDACT
 * applied to its span, and, when `allow` is not NULL, every object member
 * whose pointer is not on the allowlist (nor a prefix of an entry) left
 * out.  `key` may be NULL only when no verdict tokenizes.  The document
 * must be live.  0, or -1 out of memory.
 */
int sg_dlp_rewrite(struct sg_json_val root, const struct sg_dlp_result *res,
                   const struct sg_dlp_verdict *verdicts, size_t n_verdicts,
                   const struct sg_dlp_policy *p, const struct sg_dlp_token_key *key,
                   const char *const *allow, size_t n_allow, struct sg_jbuf *out);

/*
 * A tokenize action's token for `value` of `data_class`: "tok_" then a
 * base64url deterministic, authenticated encryption of the value (a
 * synthetic IV from keyed BLAKE2b, then XChaCha20), so equal values give
 * equal tokens and only the key holder can turn one back.  0, or -1 when
 * `cap` is too small.
 */
int sg_dlp_tokenize(const struct sg_dlp_token_key *key, const char *data_class, const char *value,
                    size_t len, char *out, size_t cap);
/* The inverse, for the admin command; -1 when the token is not one of this key's. */
int sg_dlp_detokenize(const struct sg_dlp_token_key *key, const char *token, char *class_out,
                      size_t class_cap, char *value_out, size_t value_cap, size_t *value_len);

#endif
