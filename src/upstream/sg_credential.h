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

struct sg_connector;
struct sg_upreq;
struct sg_credstore;

enum sg_cred_slot { SG_CRED_CURRENT, SG_CRED_NEXT };

/*
 * Adds `c`'s credential from `slot` to `rq` as its auth scheme says
 * (bearer, api_key header or query parameter, basic).  Returns 0; 1 when
 * the connector's scheme needs a credential and none is stored in that
 * slot; -1 when out of memory.  SG_AUTH_NONE adds nothing and returns 0.
 */
int sg_credential_apply(struct sg_credstore *cs, const struct sg_connector *c,
                        enum sg_cred_slot slot, struct sg_upreq *rq);
/* Whether `c` has a next credential (a rotation is under way). */
bool sg_credential_has_next(struct sg_credstore *cs, const char *connector);

#endif
