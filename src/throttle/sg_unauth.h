/*
 * sg_unauth: requests refused for want of a valid key, per client address.
 *
 * Identify refuses them; each refusal is counted and spends from its
 * client address's allowance (a GCRA cell: unauthenticated_burst at once,
 * refilling at unauthenticated_rate).  An address with nothing left is
 * refused before identify, with 429, so a flood of junk keys costs neither
 * a key check each nor an audit row each: refusals are recorded at most
 * once per address per unauthenticated_audit_every, and all are counted.
 *
 * The transport says who the client is for the request it is handling on
 * this thread (sg_unauth_enter); refusals made outside one (a template's
 * ctx.call) are counted and recorded, and charge no address.
 */
#ifndef SG_UNAUTH_H
#define SG_UNAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sg_config;
struct sg_unauth;

/* NULL when out of memory.  The rate in `cfg` is one the config loader checked. */
struct sg_unauth *sg_unauth_new(const struct sg_config *cfg);
void sg_unauth_free(struct sg_unauth *u);

/*
 * The client of the request this thread handles until sg_unauth_leave:
 * `key` a keyed hash of its address (never 0), `addr` its text, borrowed
 * until then.
 */
void sg_unauth_enter(uint64_t key, const char *addr);
void sg_unauth_leave(void);

/*
 * Before identify: whether client `key` may have its key checked.  When
 * not, counts the refusal and sets *wait_ns to when it may.  `u` may be
 * NULL (no limit).
 */
bool sg_unauth_gate(struct sg_unauth *u, uint64_t key, uint64_t now, uint64_t *wait_ns);

/* Identify refused the request: counts it and charges the current client's allowance. */
void sg_unauth_refused(struct sg_unauth *u, uint64_t now);

/*
 * Whether the audit records this refusal (the current client's first in
 * its interval); when it does, names the client at the end of `reason`
 * (size n).  `u` may be NULL: every refusal is recorded.
 */
bool sg_unauth_record(struct sg_unauth *u, uint64_t now, char *reason, size_t n);

#endif
