/*
 * sg_credential: the connectors' upstream credentials, opened from the
 * vault and held in locked memory by the gateway process only.  The main
 * thread refreshes the table when the store's secrets change; I/O threads
 * read it under a read lock and copy what one call needs into that call's
 * upstream request, which wipes it when released.  A credential never
 * reaches a worker, a log, a problem, a metric, a trace or the audit.
 *
 * A connector holds a current credential and, during a rotation window, a
 * next one: the route step tries the current one, and the next one once
 * when the upstream answers 401 to the current.  Each may carry an expiry
 * date, warned about ahead of time in logs, metrics and /readyz.
 */
#ifndef SG_CREDENTIAL_H
#define SG_CREDENTIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

struct sg_connector;
struct sg_upreq;
struct sg_credstore;

enum sg_cred_slot { SG_CRED_CURRENT, SG_CRED_NEXT };

/*
 * Adds `c`'s credential from `slot` to `rq` as its auth scheme says
 * (bearer, api_key header or query parameter, basic).  Returns 0; 1 when
 * the connector's scheme needs a credential and none is stored in that
 * slot; -1 when out of memory.  SG_AUTH_NONE adds nothing and returns 0;
 * SG_AUTH_OAUTH2 returns -1: its credential is exchanged for a token by the
 * route step (sg_oauth.h, sg_credential_secret), never sent as it is.
 */
int sg_credential_apply(struct sg_credstore *cs, const struct sg_connector *c,
                        enum sg_cred_slot slot, struct sg_upreq *rq);
/*
 * Copies the stored value itself into `out` (n bytes), for a scheme that
 * exchanges it rather than sends it (OAuth2's client credentials).  The
 * caller wipes it.  0; 1 when nothing is stored in that slot; -1 when it
 * does not fit.
 */
int sg_credential_secret(struct sg_credstore *cs, const char *connector, enum sg_cred_slot slot,
                         char *out, size_t n);
/* Whether `c` has a next credential (a rotation is under way). */
bool sg_credential_has_next(struct sg_credstore *cs, const char *connector);

/* ---- the table itself: made at serve start, refreshed by the main thread ---- */

struct sg_store;

/*
 * An empty table.  `data_dir` names where master key files are looked for
 * when a record names a key the table has not met yet; `warn_before_s` is
 * how long ahead of an expiry date it is warned about.  NULL: out of memory.
 */
struct sg_credstore *sg_credstore_new(const char *data_dir, int64_t warn_before_s);
/* Wipes every credential and frees the table; NULL does nothing. */
void sg_credstore_free(struct sg_credstore *cs);
/*
 * Adds (or replaces) one credential, copied into locked memory.  The main
 * thread's building block; tests fill a table by hand with it.  -1: out
 * of memory.
 */
int sg_credstore_put(struct sg_credstore *cs, const char *connector, enum sg_cred_slot slot,
                     const char *value, size_t n, int64_t expires_at);
/*
 * Replaces the table with every credential the store holds, opening each
 * record with the key it names (the master key file, or its .new or .old
 * neighbour during a rotation).  Either all open and the new table is
 * published, or the old one stays and -1 comes back with `err`.
 */
int sg_credstore_refresh(struct sg_credstore *cs, struct sg_store *s, char *err, size_t errlen);
/* The store's secrets generation the table was last loaded at; -1: never loaded. */
int64_t sg_credstore_loaded_generation(const struct sg_credstore *cs);
/*
 * Logs a warning for each credential whose expiry date is within the
 * warning window, at most once per UTC day per credential.  Main thread.
 */
void sg_credstore_warn_expiring(struct sg_credstore *cs, int64_t now_s);
/* The credentials within the warning window, for /readyz's "warnings"; NULL: none. */
json_t *sg_credstore_warnings_json(struct sg_credstore *cs, int64_t now_s);
/* sandgate_credential_expiry_seconds{connector,slot}, in Prometheus text. */
void sg_credstore_render_metrics(struct sg_credstore *cs, int64_t now_s, FILE *f);

#endif
