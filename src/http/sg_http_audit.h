/*
 * sg_http_audit: GET /admin/v1/audit and the reader thread that runs its
 * queries off the I/O threads (see sg_http_audit.c).
 */
#ifndef SG_HTTP_AUDIT_H
#define SG_HTTP_AUDIT_H

#include <stdint.h>

#include "store/sg_store.h"

/* The role a key must have to read the audit over HTTP. */
#define SG_AUDIT_ADMIN_ROLE "admin"

struct sg_http_audit;
struct sg_http_ctx;

/*
 * Starts the reader thread; it opens its own read-only connection to the
 * store in `data_dir` on its first query.  Cursors are signed with `key`
 * (the server secret).  NULL when the thread cannot start.
 */
struct sg_http_audit *sg_http_audit_new(const char *data_dir, const uint8_t key[SG_AUDIT_KEY_LEN]);
/*
 * Stops the reader: a query running finishes and wakes its request, queued
 * ones are never answered.  Call it before the event loops it wakes are
 * freed.  Idempotent; NULL does nothing.
 */
void sg_http_audit_stop(struct sg_http_audit *a);
/* Stops the reader and frees every query never answered; after the requests are gone. */
void sg_http_audit_free(struct sg_http_audit *a);

/* The handler: identifies the caller, checks the role, parks the request for the reader. */
void sg_http_audit(struct sg_http_ctx *c);

#endif
